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

    public init(
        engine: Engine = .interpreter, limits: ExecutionLimits = .init(), world: World = .init(),
        validation: ValidationOptions = .init()
    ) {
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
    public static func run(_ program: Program, memory: [UInt8]?, configuration: RunConfiguration = .init())
        throws(ProgramError) -> FlatRunResult
    {
        let machine = Machine(world: configuration.world, limits: configuration.limits)
        return try run(program, memory: memory, machine: machine, engine: configuration.engine)
    }

    public static func run(_ program: Program, memory: [UInt8]?, machine: Machine, engine: Engine) throws(ProgramError)
        -> FlatRunResult
    {
        let program = try resolveWithoutMaps(program)
        let address = machine.setInput(memory ?? [])
        let arguments: [UInt64] = memory.map { [address, UInt64($0.count)] } ?? [0, 0]
        var fallback: String? = nil
        let execution: ExecutionResult
        switch engine {
        case .interpreter:
            execution = Interpreter(program: program, machine: machine).run(arguments: arguments)
        case .jit:
            do {
                execution = try JIT(program: program, machine: machine).run(arguments: arguments)
            } catch {
                fallback = "the JIT cannot run this program (\(error)); the interpreter ran it"
                execution = Interpreter(program: program, machine: machine).run(arguments: arguments)
            }
        }
        return FlatRunResult(
            execution: execution, memoryAfter: machine.inputBytes, printk: machine.printk, fallback: fallback)
    }

    /// Function addresses need no maps; every other pseudo `lddw` does.
    public static func resolveWithoutMaps(_ program: Program) throws(ProgramError) -> Program {
        try program.resolvingPseudoLoads { (load) throws(ProgramError) -> UInt64 in
            guard load.kind == .function, let target = load.functionTarget else {
                throw .unresolvedPseudoLoad(load.kind, at: load.index)
            }
            return AddressSpace.address(region: AddressSpace.Well.code.rawValue, offset: UInt32(target))
        }
    }
}
