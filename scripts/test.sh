#!/usr/bin/env bash
# The test command of README.md: installs missing system libraries, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
# Suites run concurrently in one process and OpenBLAS's thread count is process-wide: a threaded
# GEMM called while other threads use the pool can split its work differently, so results that
# tests compare bit for bit could vary with the load. One BLAS thread unless a test asks for more.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
swift test --skip-build "$@"
