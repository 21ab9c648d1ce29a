// COpenBLAS: OpenBLAS's CBLAS interface (Debian's libopenblas-dev). Only the Swift module Tensors imports it.
#ifndef MURMUR_COPENBLAS_SHIM_H
#define MURMUR_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
