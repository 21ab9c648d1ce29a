#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
@preconcurrency import Darwin
#endif
import COpenBLAS

extension BLAS {
    /// The kernel family OpenBLAS picked when it loaded (`openblas_get_corename`), e.g. `Haswell`,
    /// `SkylakeX`, `Zen`, or `Prescott` when it fell back to its SSE3 kernels.
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// OpenBLAS's build configuration string (`openblas_get_config`), e.g.
    /// `OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64`.
    public static var configString: String {
        guard let p = openblas_get_config() else { return "unknown" }
        return String(cString: p)
    }
}

/// What the CPU can run, as far as choosing an OpenBLAS kernel family goes.
public enum CPUVectorLevel: Int, Sendable, Comparable, CustomStringConvertible {
    /// SSE2/SSE3 only (or unknown).
    case sse = 0
    /// AVX (256-bit float, no FMA).
    case avx = 1
    /// AVX2 + FMA.
    case avx2 = 2
    /// AVX-512 F + BW + VL + DQ (what OpenBLAS's SkylakeX kernels use).
    case avx512 = 3

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .sse: return "SSE only"
        case .avx: return "AVX"
        case .avx2: return "AVX2"
        case .avx512: return "AVX-512"
        }
    }

    /// The level a set of `/proc/cpuinfo` flags supports.
    public init(cpuFlags f: Set<String>) {
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(f.contains) && f.contains("fma") && f.contains("avx2") {
            self = .avx512
        } else if f.contains("avx2") && f.contains("fma") {
            self = .avx2
        } else if f.contains("avx") {
            self = .avx
        } else {
            self = .sse
        }
    }

    /// The OpenBLAS core (`OPENBLAS_CORETYPE` value) that uses this level best.
    public var bestCore: String? {
        switch self {
        case .avx512: return "SkylakeX"
        case .avx2: return "Haswell"
        case .avx: return "Sandybridge"
        case .sse: return nil
        }
    }
}

/// The pure decision behind `BLASCoreSelection`: given the CPU's flags, the core OpenBLAS chose and
/// the user's settings, keep the core or switch to a better one. No environment, no I/O.
public enum BLASCoreChoice {
    /// How the user steered the choice.
    public enum UserOverride: Equatable, Sendable {
        /// `OPENBLAS_CORETYPE` was already set (by the user, or by an earlier Murmur re-exec): OpenBLAS
        /// used it, Murmur changes nothing.
        case openBLASCoreType(String)
        /// `MURMUR_BLAS_CORE=off`: never switch.
        case off
        /// `MURMUR_BLAS_CORE=<name>`: use exactly this core.
        case core(String)
    }

    public enum Decision: Equatable, Sendable {
        /// Leave OpenBLAS as it is; `reason` says why (for `murmur bench` and tests).
        case keep(reason: String)
        /// Restart with `OPENBLAS_CORETYPE=core`; `message` is the one line to log.
        case use(core: String, message: String)
    }

    /// Vector level of OpenBLAS's x86 core names (lower-cased). Names not listed are left alone.
    static let coreLevels: [String: CPUVectorLevel] = [
        // AVX-512 kernels.
        "skylakex": .avx512, "cooperlake": .avx512, "sapphirerapids": .avx512, "zen4": .avx512,
        // AVX2 + FMA kernels (Zen uses the Haswell kernels).
        "haswell": .avx2, "zen": .avx2, "skylake": .avx2,
        // AVX (or AVX + FMA4 on the Bulldozer family) kernels.
        "sandybridge": .avx, "bulldozer": .avx, "piledriver": .avx, "steamroller": .avx, "excavator": .avx,
        // SSE-era fallbacks.
        "prescott": .sse, "core2": .sse, "penryn": .sse, "dunnington": .sse, "nehalem": .sse, "atom": .sse,
        "opteron": .sse, "opteron_sse3": .sse, "barcelona": .sse, "bobcat": .sse, "nano": .sse,
        "katmai": .sse, "coppermine": .sse, "northwood": .sse, "banias": .sse, "athlon": .sse,
        "generic": .sse, "unknown": .sse,
    ]

    /// Decides. `cpuFlags` are the words of a `/proc/cpuinfo` `flags` line, `currentCore` is
    /// `openblas_get_corename()`.
    ///
    /// Switches only when OpenBLAS fell back to an SSE- or AVX-class core while the CPU supports
    /// more (a CPU OpenBLAS 0.3.21 does not recognise, e.g. one with no model name under a
    /// hypervisor). An AVX2-class core on an AVX-512 CPU is kept: OpenBLAS chooses Haswell kernels
    /// on purpose where it knows its AVX-512 ones are not better.
    public static func choose(cpuFlags: Set<String>, currentCore: String, userOverride: UserOverride?) -> Decision {
        let level = CPUVectorLevel(cpuFlags: cpuFlags)
        switch userOverride {
        case .openBLASCoreType(let v):
            return .keep(reason: "OPENBLAS_CORETYPE=\(v) is set")
        case .off:
            return .keep(reason: "MURMUR_BLAS_CORE=off")
        case .core(let name):
            if name.lowercased() == currentCore.lowercased() { return .keep(reason: "MURMUR_BLAS_CORE=\(name) is in use") }
            return .use(core: name, message: "murmur: OpenBLAS chose \(currentCore); using \(name) (MURMUR_BLAS_CORE)")
        case nil:
            break
        }
        guard let current = coreLevels[currentCore.lowercased()] else {
            return .keep(reason: "\(currentCore) is not a core Murmur knows how to rank")
        }
        guard let best = level.bestCore else { return .keep(reason: "the CPU has no AVX") }
        if current >= .avx2 || current >= level {
            return .keep(reason: "\(currentCore) suits a CPU with \(level)")
        }
        return .use(core: best, message: "murmur: OpenBLAS chose \(currentCore) on a CPU with \(level); using \(best) "
                    + "(set MURMUR_BLAS_CORE or OPENBLAS_CORETYPE to override)")
    }

    /// The flags of the first `flags` line of `/proc/cpuinfo` text (empty if there is none).
    public static func cpuFlags(fromCPUInfo text: String) -> Set<String> {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingCharacters(in: " \t")
            if key == "flags" || key == "Features" {
                return Set(parts[1].split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init))
            }
        }
        return []
    }

    /// The override the environment asks for: `OPENBLAS_CORETYPE` first (OpenBLAS itself obeys it),
    /// then `MURMUR_BLAS_CORE` (`off`, or a core name). Empty values count as unset.
    public static func userOverride(environment env: [String: String]) -> UserOverride? {
        if let v = env["OPENBLAS_CORETYPE"], !v.isEmpty { return .openBLASCoreType(v) }
        if let v = env["MURMUR_BLAS_CORE"], !v.isEmpty {
            return v.lowercased() == "off" ? .off : .core(v)
        }
        return nil
    }
}

private extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return s
    }
}

/// The side-effecting half: reads `/proc/cpuinfo` and the environment, and re-executes the process
/// with `OPENBLAS_CORETYPE` set when `BLASCoreChoice` says so. Call it first thing in `main`,
/// before any thread starts (it may replace the process image).
public enum BLASCoreSelection {
    /// Set in the environment of the re-executed process (and inherited by its children), so the
    /// switch happens at most once per process tree.
    public static let markerVariable = "MURMUR_BLAS_REEXEC"

    /// Re-executes `/proc/self/exe` with the same arguments and `OPENBLAS_CORETYPE=<core>` when
    /// OpenBLAS fell back to a slow core; otherwise returns. Linux only (a no-op elsewhere). If the
    /// exec fails, logs why and returns (the process just keeps the slower kernels).
    public static func reexecIfNeeded() {
        #if os(Linux)
        let env = environment()
        if env[markerVariable] != nil { return }
        guard let text = readFile("/proc/cpuinfo") else { return }
        let decision = BLASCoreChoice.choose(cpuFlags: BLASCoreChoice.cpuFlags(fromCPUInfo: text),
                                             currentCore: BLAS.coreName,
                                             userOverride: BLASCoreChoice.userOverride(environment: env))
        guard case .use(let core, let message) = decision else { return }
        writeStderr(message + "\n")
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv(markerVariable, "1", 1)
        fflush(nil)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only reached when exec failed.
        writeStderr("murmur: could not restart with OPENBLAS_CORETYPE=\(core) (errno \(errno)); keeping \(BLAS.coreName)\n")
        #endif
    }

    static func writeStderr(_ s: String) {
        var bytes = Array(s.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }

    static func environment() -> [String: String] {
        var out: [String: String] = [:]
        for name in ["OPENBLAS_CORETYPE", "MURMUR_BLAS_CORE", markerVariable] {
            if let v = getenv(name) { out[name] = String(cString: v) }
        }
        return out
    }

    static func readFile(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            bytes.append(contentsOf: buf[0..<n])
            if bytes.count > 1 << 20 { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
