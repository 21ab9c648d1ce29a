#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
@preconcurrency import Darwin
#endif
import MurmurCLI

// Line-buffered even into a pipe (`murmur chaos … | tee`): progress lines appear as they happen.
// Done once, before any thread starts; the C global is why the import is @preconcurrency.
setvbuf(stdout, nil, _IOLBF, 0)
MurmurCommand.main()
