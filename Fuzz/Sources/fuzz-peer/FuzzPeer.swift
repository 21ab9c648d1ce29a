import FuzzHarness

/// libFuzzer entry point: one input through `FuzzHarness.peerHandler`; a finding traps so libFuzzer saves it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do {
        try FuzzHarness.peerHandler(Array(UnsafeBufferPointer(start: data, count: size)))
    } catch {
        fatalError(error.description)
    }
    return 0
}

/// With `MURMUR_FUZZ_SEEDS=DIR` set, writes the seed inputs into DIR and exits (scripts/fuzz.sh).
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>,
                       _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    FuzzSeedWriter.writeIfAsked(target: "peer", sourceFile: #filePath)
    return 0
}

/// libFuzzer's driver (the body of its own `main`).
@_extern(c, "LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>,
               _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ body: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

/// The program entry SwiftPM links as `main` (`--defsym main=fuzz_peer_main`): hand over to libFuzzer.
@_cdecl("fuzz_peer_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return runDriver(&argc, &argv, fuzz)
}
