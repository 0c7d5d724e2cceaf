@_exported import BPFCore
@_exported import BPFRuntime
import BPFInterpreter
import BPFJIT

/// The engines that can run a program.
public enum Engine: String, CaseIterable, Sendable, Codable {
    /// The reference interpreter.
    case interpreter = "interp"
    /// The x86-64 JIT (docs/jit.md). Where it cannot run (another host architecture, a
    /// program it cannot compile), the interpreter runs instead and the result says so.
    case jit = "jit"
}

/// What a run is allowed and given: engine, limits and the injected world.
public struct RunConfiguration: Sendable {
    public var engine: Engine
    public var limits: ExecutionLimits
    public var world: World
    public var validation: ValidationOptions
    /// The helpers programs may call (default: every helper bpfsim emulates).
    public var helpers: HelperRegistry

    public init(
        engine: Engine = .interpreter, limits: ExecutionLimits = .init(), world: World = .init(),
        validation: ValidationOptions = .init(), helpers: HelperRegistry = StandardHelpers.registry
    ) {
        self.helpers = helpers
        self.engine = engine
        self.limits = limits
        self.world = world
        self.validation = validation
    }
}

/// The outcome of a flat-memory run.
public struct FlatRunResult: Sendable {
    public var execution: ExecutionResult
    /// The input memory after the run (the program may write to it).
    public var memoryAfter: [UInt8]
    /// Lines the program printed.
    public var printk: [String]
    /// Why the requested engine did not run and the interpreter did, if that happened.
    public var fallback: String? = nil
}

/// Runs a program the way the conformance suite does: r1 points to a private, writable
/// copy of `memory` and r2 holds its length; without memory both are 0.
public enum FlatRunner {
    public static func run(
        _ program: Program, memory: [UInt8]?, maps: [MapSpec] = [], configuration: RunConfiguration = .init()
    ) throws(SessionError) -> FlatRunResult {
        let definition = ProgramDefinition(name: "program", type: .unspec, instructions: program.instructions)
        let session = try Session(programs: [definition], maps: maps, configuration: configuration)
        let run = session.run(0, input: .memory(memory))
        return FlatRunResult(
            execution: run.execution, memoryAfter: run.dataOut ?? [], printk: run.printk, fallback: run.fallback)
    }
}
