import BPFSim
import Testing

/// Helpers that read the injected world, on both engines.
struct WorldHelperTests {
    /// bpf_jiffies64 counts from INITIAL_JIFFIES, `(unsigned long)(unsigned int)(-300 * HZ)`
    /// (include/linux/jiffies.h), so it is never 0, even at the clock's start (a capture
    /// whose time stamps are 0 drives the clock there); bpfsim's HZ is 1000.
    @Test(arguments: Engine.allCases)
    func jiffiesStartAtTheKernelsInitialValue(engine: Engine) throws {
        let program = ProgramDefinition(
            name: "jiffies", type: .xdp, instructions: try Assembler.assemble("call 118\nexit\n"))
        for (clock, expected) in [(UInt64(0), UInt64(4_294_667_296)), (5_000_000, 4_294_667_301)] {
            let configuration = RunConfiguration(
                engine: engine, world: World(monotonicNanoseconds: clock, clockStep: 0))
            let session = try Session(programs: [program], maps: [], configuration: configuration)
            let run = session.run(0, input: .packet([UInt8](repeating: 0, count: 64)))
            #expect(run.execution.fault == nil)
            #expect(run.execution.returnValue == expected)
        }
    }
}
