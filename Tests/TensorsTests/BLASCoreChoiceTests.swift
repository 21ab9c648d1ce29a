import Testing
@testable import Tensors

/// Recorded `/proc/cpuinfo` flags lines, and what Murmur does with each.
@Suite struct BLASCoreChoiceTests {
    /// This project's build machine: AMD EPYC (Zen 3, family 25) under a hypervisor, AVX2, no AVX-512.
    static let epycZen3 = """
    processor	: 0
    vendor_id	: AuthenticAMD
    cpu family	: 25
    model name	: AMD EPYC
    flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext ssbd ibrs ibpb stibp vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves clzero xsaveerptr wbnoinvd arat umip pku ospke vaes vpclmulqdq rdpid fsrm
    bugs		: sysret_ss_attrs spectre_v1 spectre_v2 spec_store_bypass srso ibpb_no_ret spectre_v2_user
    """
    /// The machine of issue 13: Intel with AVX-512 under a hypervisor that hides the model name.
    static let skylakeXNoModel = """
    vendor_id	: GenuineIntel
    cpu family	: 6
    model		: 85
    model name	: Intel Xeon Processor
    flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch fsgsbase bmi1 hle avx2 smep bmi2 erms invpcid rtm avx512f avx512dq rdseed adx smap clflushopt clwb avx512cd avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves arat pku ospke avx512_vnni md_clear arch_capabilities
    """
    /// Haswell: AVX2 and FMA, no AVX-512.
    static let haswell = """
    model name	: Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz
    flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc arch_perfmon pebs bts rep_good nopl xtopology nonstop_tsc aperfmperf eagerfpu pni pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 fma cx16 xtpr pdcm pcid dca sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm abm epb tpr_shadow vnmi flexpriority ept vpid fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid cqm xsaveopt cqm_llc cqm_occup_llc dtherm ida arat pln pts
    """
    /// Core 2: SSE up to SSSE3, no AVX.
    static let core2 = """
    model name	: Intel(R) Core(TM)2 Duo CPU     E8400  @ 3.00GHz
    flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx lm constant_tsc arch_perfmon pebs bts rep_good nopl pni dtes64 monitor ds_cpl vmx est tm2 ssse3 cx16 xtpr pdcm sse4_1 lahf_lm
    """
    /// Sandy Bridge: AVX without AVX2/FMA.
    static let sandy = """
    flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx rdtscp lm constant_tsc pni pclmulqdq ssse3 cx16 sse4_1 sse4_2 popcnt aes xsave avx lahf_lm
    """

    static func flags(_ s: String) -> Set<String> { BLASCoreChoice.cpuFlags(fromCPUInfo: s) }

    @Test func parsesFlagsLines() {
        #expect(CPUVectorLevel(cpuFlags: Self.flags(Self.epycZen3)) == .avx2)
        #expect(CPUVectorLevel(cpuFlags: Self.flags(Self.skylakeXNoModel)) == .avx512)
        #expect(CPUVectorLevel(cpuFlags: Self.flags(Self.haswell)) == .avx2)
        #expect(CPUVectorLevel(cpuFlags: Self.flags(Self.sandy)) == .avx)
        #expect(CPUVectorLevel(cpuFlags: Self.flags(Self.core2)) == .sse)
        #expect(Self.flags("processor : 0\nvendor_id : X").isEmpty)
        // Partial AVX-512 (F only, e.g. Knights Landing) is not enough for the SkylakeX kernels.
        #expect(CPUVectorLevel(cpuFlags: ["avx", "avx2", "fma", "avx512f", "avx512cd"]) == .avx2)
    }

    @Test func prescottOnAVX512SwitchesToSkylakeX() {
        let d = BLASCoreChoice.choose(cpuFlags: Self.flags(Self.skylakeXNoModel), currentCore: "Prescott", userOverride: nil)
        #expect(d == .use(core: "SkylakeX", message: "murmur: OpenBLAS chose Prescott on a CPU with AVX-512; using SkylakeX (set MURMUR_BLAS_CORE or OPENBLAS_CORETYPE to override)"))
    }

    @Test func oldCoresOnAVX2SwitchToHaswell() {
        for core in ["Prescott", "Core2", "Nehalem", "Sandybridge", "Generic"] {
            let d = BLASCoreChoice.choose(cpuFlags: Self.flags(Self.haswell), currentCore: core, userOverride: nil)
            guard case .use(let c, _) = d else { Issue.record("\(core): \(d)"); continue }
            #expect(c == "Haswell")
        }
    }

    @Test func goodCoresAreKept() {
        // This machine: OpenBLAS 0.3.21 recognises Zen 3 and picks its Zen (Haswell-class) kernels.
        #expect(isKeep(BLASCoreChoice.choose(cpuFlags: Self.flags(Self.epycZen3), currentCore: "Zen", userOverride: nil)))
        #expect(isKeep(BLASCoreChoice.choose(cpuFlags: Self.flags(Self.haswell), currentCore: "Haswell", userOverride: nil)))
        #expect(isKeep(BLASCoreChoice.choose(cpuFlags: Self.flags(Self.skylakeXNoModel), currentCore: "SkylakeX", userOverride: nil)))
        // AVX2 kernels on an AVX-512 CPU: OpenBLAS's deliberate choice, kept.
        #expect(isKeep(BLASCoreChoice.choose(cpuFlags: Self.flags(Self.skylakeXNoModel), currentCore: "Haswell", userOverride: nil)))
        // Nothing better exists for an SSE-only CPU.
        #expect(isKeep(BLASCoreChoice.choose(cpuFlags: Self.flags(Self.core2), currentCore: "Core2", userOverride: nil)))
        #expect(isKeep(BLASCoreChoice.choose(cpuFlags: Self.flags(Self.sandy), currentCore: "Sandybridge", userOverride: nil)))
        // Names Murmur cannot rank (another architecture's cores) are left alone.
        #expect(isKeep(BLASCoreChoice.choose(cpuFlags: Self.flags(Self.haswell), currentCore: "NeoverseN1", userOverride: nil)))
    }

    @Test func zenOnPrescottFallbackSwitches() {
        // An AMD CPU OpenBLAS did not recognise gets the Haswell kernels (what its Zen target uses).
        let d = BLASCoreChoice.choose(cpuFlags: Self.flags(Self.epycZen3), currentCore: "Prescott", userOverride: nil)
        guard case .use(let c, let m) = d else { Issue.record("\(d)"); return }
        #expect(c == "Haswell")
        #expect(m.contains("Prescott") && m.contains("AVX2"))
    }

    @Test func userOverridesWin() {
        let f = Self.flags(Self.skylakeXNoModel)
        #expect(isKeep(BLASCoreChoice.choose(cpuFlags: f, currentCore: "Prescott", userOverride: .openBLASCoreType("Prescott"))))
        #expect(isKeep(BLASCoreChoice.choose(cpuFlags: f, currentCore: "Prescott", userOverride: .off)))
        #expect(BLASCoreChoice.choose(cpuFlags: f, currentCore: "Prescott", userOverride: .core("Haswell"))
            == .use(core: "Haswell", message: "murmur: OpenBLAS chose Prescott; using Haswell (MURMUR_BLAS_CORE)"))
        #expect(isKeep(BLASCoreChoice.choose(cpuFlags: f, currentCore: "Haswell", userOverride: .core("haswell"))))
    }

    @Test func environmentOverrides() {
        #expect(BLASCoreChoice.userOverride(environment: [:]) == nil)
        #expect(BLASCoreChoice.userOverride(environment: ["OPENBLAS_CORETYPE": ""]) == nil)
        #expect(BLASCoreChoice.userOverride(environment: ["MURMUR_BLAS_CORE": "OFF"]) == .off)
        #expect(BLASCoreChoice.userOverride(environment: ["MURMUR_BLAS_CORE": "Haswell"]) == .core("Haswell"))
        #expect(BLASCoreChoice.userOverride(environment: ["MURMUR_BLAS_CORE": "off", "OPENBLAS_CORETYPE": "Zen"])
            == .openBLASCoreType("Zen"))
    }

    @Test func coreNameIsReported() {
        #expect(!BLAS.coreName.isEmpty)
        #expect(BLAS.configString.contains("OpenBLAS"))
    }

    func isKeep(_ d: BLASCoreChoice.Decision) -> Bool {
        if case .keep = d { return true }
        return false
    }
}
