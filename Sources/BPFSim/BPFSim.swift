// `import BPFSim` is all a Swift user needs: sessions and engines (BPFSession, which
// re-exports the instruction model, the runtime and the verifier) and the harness
// (captures, replay, syscall traces, test specs).
@_exported import BPFHarness
@_exported import BPFSession
