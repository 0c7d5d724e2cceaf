import BPFInterpreter
import BPFJIT

/// A program as a loader hands it over: relocated instructions whose map references are
/// `lddw` pseudo loads by map index (`BPF_PSEUDO_MAP_IDX`, `BPF_PSEUDO_MAP_IDX_VALUE`).
public struct ProgramDefinition: Sendable {
    public var name: String
    public var section: String
    public var type: ProgramType
    public var instructions: [Instruction]
    /// `file.c:LINE` per instruction index, when the object has line info.
    public var sourceLines: [Int: String]

    public init(
        name: String, section: String = "", type: ProgramType, instructions: [Instruction],
        sourceLines: [Int: String] = [:]
    ) {
        self.name = name
        self.section = section
        self.type = type
        self.instructions = instructions
        self.sourceLines = sourceLines
    }
}

/// Why a set of programs and maps could not be made ready to run.
public struct SessionError: Error, CustomStringConvertible, Sendable {
    public let code: String
    public let message: String
    /// The validation error behind this one, when a program did not validate.
    public var programError: ProgramError?
    /// The verifier's log or libbpf's messages, when the kernel refused (`KernelSession`).
    public var kernelLog: String?
    public var description: String { message }

    init(code: String, message: String, programError: ProgramError? = nil) {
        self.code = code
        self.message = message
        self.programError = programError
    }

    static func program(_ name: String, _ error: ProgramError) -> SessionError {
        SessionError(code: error.code, message: "program '\(name)': \(error)", programError: error)
    }

    static func map(_ name: String, _ error: MapError) -> SessionError {
        SessionError(code: "map", message: "map '\(name)': \(error)")
    }

    static func unknownProgram(_ name: String, known: [String]) -> SessionError {
        SessionError(
            code: "unknown_program", message: "no program named '\(name)' (programs: \(known.joined(separator: ", ")))")
    }

    static func unsupported(_ message: String) -> SessionError {
        SessionError(code: "unsupported", message: message)
    }
}

/// What a program runs on.
public enum ProgramInput: Sendable {
    /// Flat memory, as the conformance suite runs: r1 = memory, r2 = its length.
    case memory([UInt8]?)
    /// A packet, for packet program types (XDP).
    case packet([UInt8])
}

/// The outcome of one run of one program.
public struct ProgramRun: Sendable {
    public var execution: ExecutionResult
    /// The packet or memory after the run (for XDP, what BPF_PROG_TEST_RUN returns:
    /// metadata, then the packet).
    public var dataOut: [UInt8]?
    public var printk: [String]
    public var events: [EventRecord]
    public var redirect: RedirectTarget?
    /// The C source line of the faulting instruction, when known.
    public var faultSourceLine: String?
    /// Why the requested engine did not run and the interpreter did, if that happened.
    public var fallback: String?
}

/// Programs and maps loaded into one emulated machine, ready to run: the facade users
/// and the command line work with. Maps keep their state from run to run.
public final class Session {
    public let machine: Machine
    public let definitions: [ProgramDefinition]
    public let engine: Engine
    private var interpreters: [Int: Interpreter] = [:]
    private var jits: [Int: JIT] = [:]
    /// Why the JIT cannot run a program, once found, so it is tried once.
    private var jitRefusals: [Int: String] = [:]

    public init(programs: [ProgramDefinition], maps: [MapSpec], configuration: RunConfiguration = .init())
        throws(SessionError)
    {
        machine = Machine(helpers: configuration.helpers, world: configuration.world, limits: configuration.limits)
        definitions = programs
        engine = configuration.engine
        for spec in maps {
            do {
                try machine.createMap(spec)
            } catch {
                throw .map(spec.name, error)
            }
        }
        var resolved: [Program] = []
        for definition in programs {
            do {
                let program = try Program(instructions: definition.instructions, options: configuration.validation)
                resolved.append(
                    try program.resolvingPseudoLoads { (load) throws(ProgramError) -> UInt64 in try self.resolve(load) }
                )
            } catch {
                throw .program(definition.name, error)
            }
        }
        machine.programs = resolved
        machine.programNames = programs.map(\.name)
    }

    /// The constant a pseudo `lddw` stands for in this machine.
    private func resolve(_ load: PseudoLoad) throws(ProgramError) -> UInt64 {
        switch load.kind {
        case .function:
            guard let target = load.functionTarget else { throw .unresolvedPseudoLoad(load.kind, at: load.index) }
            return AddressSpace.address(region: AddressSpace.Well.code.rawValue, offset: UInt32(target))
        case .mapFD, .mapIndex:
            // bpfsim has no file descriptors: an fd is taken as an index, like BPF_PSEUDO_MAP_IDX.
            guard load.immediate >= 0, Int(load.immediate) < machine.maps.count else {
                throw .unresolvedPseudoLoad(load.kind, at: load.index)
            }
            return machine.maps[Int(load.immediate)].guestPointer
        case .mapValue, .mapIndexValue:
            guard load.immediate >= 0, Int(load.immediate) < machine.maps.count,
                let base = machine.maps[Int(load.immediate)].directValueAddress
            else { throw .unresolvedPseudoLoad(load.kind, at: load.index) }
            return base &+ UInt64(UInt32(bitPattern: load.secondImmediate))
        case .btfID:
            throw .unresolvedPseudoLoad(load.kind, at: load.index)
        }
    }

    public var programNames: [String] { definitions.map(\.name) }

    public func programIndex(named name: String) throws(SessionError) -> Int {
        guard let index = definitions.firstIndex(where: { $0.name == name }) else {
            throw .unknownProgram(name, known: programNames)
        }
        return index
    }

    /// Runs program `index` once on `input`.
    public func run(_ index: Int, input: ProgramInput) -> ProgramRun {
        let definition = definitions[index]
        machine.beginRun()
        var arguments: [UInt64] = []
        var xdp: XDPContext?
        switch input {
        case .memory(let bytes):
            machine.context = nil
            let address = machine.setInput(bytes ?? [])
            arguments = bytes.map { [address, UInt64($0.count)] } ?? [0, 0]
        case .packet(let bytes):
            let context = (machine.context as? XDPContext) ?? XDPContext()
            machine.context = context
            context.load(packet: bytes, into: machine)
            xdp = context
            arguments = [XDPContext.contextAddress]
        }
        let (execution, fallback) = execute(index, arguments: arguments)
        var run = ProgramRun(
            execution: execution, dataOut: xdp?.output ?? (input.isMemory ? machine.inputBytes : nil),
            printk: machine.printk, events: machine.drainEvents(), redirect: machine.redirect, fallback: fallback)
        machine.printk.removeAll()
        machine.tracePipe.removeAll()
        if let fault = execution.fault, let line = definition.sourceLines[fault.pc] {
            run.faultSourceLine = line
            run.execution.fault?.sourceLine = line
        }
        return run
    }

    private func execute(_ index: Int, arguments: [UInt64]) -> (ExecutionResult, fallback: String?) {
        if engine == .jit {
            if let jit = jits[index] { return (jit.run(arguments: arguments), nil) }
            if jitRefusals[index] == nil {
                if machine.maps.contains(where: { $0.type == .progArray }) {
                    jitRefusals[index] = "the JIT does not follow tail calls yet"
                } else {
                    do {
                        let jit = try JIT(program: machine.programs[index], machine: machine)
                        jits[index] = jit
                        return (jit.run(arguments: arguments), nil)
                    } catch {
                        jitRefusals[index] = "the JIT cannot run this program (\(error))"
                    }
                }
            }
        }
        let interpreter = interpreters[index] ?? Interpreter(program: machine.programs[index], machine: machine)
        interpreters[index] = interpreter
        let fallback = jitRefusals[index].map { "\($0); the interpreter ran it" }
        return (interpreter.run(arguments: arguments), engine == .jit ? fallback : nil)
    }
}

extension ProgramInput {
    var isMemory: Bool {
        if case .memory = self { return true }
        return false
    }
}
