import FuzzHarness

/// libFuzzer's entry point: the body is FuzzHarness.indexFile (Tests/FuzzHarness), which
/// Tests/FuzzRegressionTests also replays on every fail case and seed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzHarness.indexFile(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
