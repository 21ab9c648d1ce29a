#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
@preconcurrency import Darwin
#endif
import MurmurCLI
import Tensors

// First, before any thread starts: if OpenBLAS fell back to slow generic kernels on a CPU with
// AVX2/AVX-512, restart this same binary once with OPENBLAS_CORETYPE set (one line on stderr says
// so; MURMUR_BLAS_CORE=off or the user's own OPENBLAS_CORETYPE prevent it). Peers started by
// `murmur up` inherit the environment, so this happens at most once per process tree.
BLASCoreSelection.reexecIfNeeded()

// Line-buffered even into a pipe (`murmur chaos … | tee`): progress lines appear as they happen.
// Done once, before any thread starts; the C global is why the import is @preconcurrency.
setvbuf(stdout, nil, _IOLBF, 0)
MurmurCommand.main()
