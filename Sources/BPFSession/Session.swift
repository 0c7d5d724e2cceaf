import BPFInterpreter
import BPFLoader
import BPFJIT

/// A program as a loader hands it over: relocated instructions whose map references are
/// `lddw` pseudo loads by map index (`BPF_PSEUDO_MAP_IDX`, `BPF_PSEUDO_MAP_IDX_VALUE`).
public struct ProgramDefinition: Sendable {
    public var name: String
    public var section: String
    public var type: ProgramType
    /// What the section names after its prefix (`syscalls/sys_enter_openat` for a
    /// tracepoint): it decides a tracing program's context layout.
    public var attachTarget: String?
    public var instructions: [Instruction]
    /// `file.c:LINE` per instruction index, when the object has line info.
    public var sourceLines: [Int: String]

    public init(
        name: String, section: String = "", type: ProgramType, attachTarget: String? = nil,
        instructions: [Instruction], sourceLines: [Int: String] = [:]
    ) {
        self.name = name
        self.section = section
        self.type = type
        self.attachTarget = attachTarget
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
    /// bpfsim's verifier's verdict, when it refused the program (code `verifier`).
    public var verification: VerifierResult?
    /// `file.c:LINE` of the instruction a verifier refusal is at, when known.
    public var sourceLine: String?
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
    /// A packet and nothing else, as `BPF_PROG_TEST_RUN` without a context: for XDP, tc,
    /// socket filter and cgroup_skb programs.
    case packet([UInt8])
    /// A packet with what the kernel would know about it (wire length, device, time) and
    /// an optional `__sk_buff` (`ctx_in`).
    case frame(Packet)
    /// A tracing program's context as raw bytes (`ctx_in`): a tracepoint record, the
    /// arguments of a raw tracepoint, a `struct pt_regs`.
    case context([UInt8])
    /// A tracing event, laid out for the program's type and attach target.
    case event(TraceEvent)
}

/// A packet with its metadata. For tc, socket filter and cgroup_skb programs the
/// metadata becomes the `__sk_buff` a test run passes as `ctx_in`: `wireLength` sets
/// `wire_len` (with `len` the captured length, as for a truncated capture),
/// `ingressIfindex` sets `ingress_ifindex`, `timestamp` sets `tstamp`; `context` gives the
/// rest (mark, priority, cb, ifindex, gso_segs, gso_size, hwtstamp). Without any of them
/// the run has no `ctx_in`, and `wire_len` reads 0 as it does in the kernel. For XDP,
/// `ingressIfindex` sets `xdp_md.ingress_ifindex` and `rxQueueIndex` its
/// `rx_queue_index`; the rest does not apply.
public struct Packet: Sendable, Hashable {
    public var data: [UInt8]
    public var wireLength: Int?
    public var ingressIfindex: UInt32?
    /// The receive queue an XDP program sees (`xdp_md.rx_queue_index`); 0 when nil. A
    /// test run's `__sk_buff` has no such field (`queue_mapping` is refused in ctx_in).
    public var rxQueueIndex: UInt32?
    /// Nanoseconds, as `skb->tstamp` holds them.
    public var timestamp: UInt64?
    /// An `__sk_buff` (up to 192 bytes) whose fields apply first.
    public var context: [UInt8]?

    public init(
        _ data: [UInt8], wireLength: Int? = nil, ingressIfindex: UInt32? = nil, timestamp: UInt64? = nil,
        context: [UInt8]? = nil, rxQueueIndex: UInt32? = nil
    ) {
        self.data = data
        self.rxQueueIndex = rxQueueIndex
        self.wireLength = wireLength
        self.ingressIfindex = ingressIfindex
        self.timestamp = timestamp
        self.context = context
    }

    /// The `__sk_buff` for `ctx_in`, or nil when the packet carries no metadata.
    public var skbContext: [UInt8]? {
        guard context != nil || wireLength != nil || ingressIfindex != nil || timestamp != nil else { return nil }
        var bytes = Array((context ?? []).prefix(SKBContext.size))
        bytes += Array(repeating: 0, count: SKBContext.size - bytes.count)
        func put(_ value: UInt64, at offset: Int, size: Int) {
            for index in 0..<size { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> UInt64(8 * index)) }
        }
        if let wireLength { put(UInt64(wireLength), at: 160, size: 4) }
        if let ingressIfindex { put(UInt64(ingressIfindex), at: 36, size: 4) }
        if let timestamp { put(timestamp, at: 152, size: 8) }
        return bytes + (context.map { Array($0.dropFirst(SKBContext.size)) } ?? [])
    }
}

/// A tracing event, turned into a context for the program that runs on it.
public enum TraceEvent: Sendable, Hashable {
    /// Entry to system call `number`: for a `syscalls/sys_enter_*` or
    /// `raw_syscalls/sys_enter` tracepoint the record, for a `sys_enter` raw tracepoint
    /// `(struct pt_regs *regs, long id)`.
    case syscallEnter(number: Int32, arguments: [UInt64])
    /// Return from system call `number`: `sys_exit_*` records, or a `sys_exit` raw
    /// tracepoint's `(struct pt_regs *regs, long ret)`.
    case syscallExit(number: Int32, returnValue: Int64)
    /// A kprobe at the entry of a function called with these arguments.
    case functionEntry(arguments: [UInt64])
    /// A kretprobe: the function returned this value.
    case functionReturn(UInt64)
    /// A kprobe's registers, all of them.
    case registers(PtRegs)
    /// A raw tracepoint's arguments.
    case rawArguments([UInt64])
}

/// The outcome of one run of one program.
public struct ProgramRun: Sendable {
    public var execution: ExecutionResult
    /// The packet or memory after the run, as BPF_PROG_TEST_RUN returns it: for XDP the
    /// metadata, then the packet; for tc the packet from the MAC header; for socket
    /// filters and cgroup_skb 14 zero bytes, then the packet from the network header.
    public var dataOut: [UInt8]?
    /// How many bytes at the start of `dataOut` are XDP metadata (`bpf_xdp_adjust_meta`),
    /// so the frame itself is `dataOut.dropFirst(metadataLength)`; 0 for other types and
    /// for the kernel, whose test run does not say.
    public var metadataLength: Int = 0
    /// The `__sk_buff` BPF_PROG_TEST_RUN would return as `ctx_out`, when a context was passed in.
    public var contextOut: [UInt8]?
    /// What the return value means for the program's type; nil after a fault.
    public var verdict: Verdict?
    public var printk: [String]
    public var events: [EventRecord]
    public var redirect: RedirectTarget?
    /// Copies sent with `bpf_clone_redirect`.
    public var clones: [SKBContext.Clone] = []
    /// Set when the input was refused before the program ran, as BPF_PROG_TEST_RUN would
    /// refuse it; the run did not happen.
    public var refusal: InputRefusal?
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
    /// The object the programs came from, when they came from one: its maps' BTF, its
    /// license and its line info are what the verifier checks against.
    public internal(set) var object: BPFObject?
    /// The maps as they were specified, before they were created.
    public let mapSpecs: [MapSpec]
    /// The object's BTF, when the programs came from one: map dumps format keys and
    /// values with it (`MapDump.all(_:btf:)`).
    public var btf: BTF? { object?.btf }
    private var interpreters: [Int: Interpreter] = [:]
    private var jits: [Int: JIT] = [:]
    /// Why the JIT cannot run a program, once found, so it is tried once.
    private var jitRefusals: [Int: String] = [:]

    public init(programs: [ProgramDefinition], maps: [MapSpec], configuration: RunConfiguration = .init())
        throws(SessionError)
    {
        machine = Machine(helpers: configuration.helpers, world: configuration.world, limits: configuration.limits)
        definitions = programs
        mapSpecs = maps
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

    /// Runs program `index` once on `input`. An input the kernel's `BPF_PROG_TEST_RUN`
    /// would refuse is refused here too (`ProgramRun.refusal`), and the program does not run.
    public func run(_ index: Int, input: ProgramInput) -> ProgramRun {
        let definition = definitions[index]
        machine.beginRun()
        let prepared: PreparedInput
        do {
            prepared = try prepare(input, for: definition)
        } catch {
            return ProgramRun(
                execution: ExecutionResult(returnValue: 0, instructionCount: 0, fault: nil), dataOut: nil,
                contextOut: nil, verdict: nil, printk: [], events: [], redirect: nil, refusal: error)
        }
        let (execution, fallback) = execute(index, arguments: prepared.arguments)
        var run = ProgramRun(
            execution: execution, dataOut: prepared.dataOut(), contextOut: prepared.contextOut(),
            verdict: execution.fault == nil ? Verdict(type: prepared.type, returnValue: execution.returnValue) : nil,
            printk: machine.printk, events: machine.drainEvents(), redirect: machine.redirect, fallback: fallback)
        if let skb = machine.context as? SKBContext { run.clones = skb.clones }
        if prepared.type == .xdp, let xdp = machine.context as? XDPContext { run.metadataLength = xdp.data - xdp.dataMeta }
        machine.printk.removeAll()
        machine.tracePipe.removeAll()
        if let fault = execution.fault, let line = definition.sourceLines[fault.pc] {
            run.faultSourceLine = line
            run.execution.fault?.sourceLine = line
        }
        return run
    }

    /// r1-r5 for a run, and how to read its results afterwards.
    private struct PreparedInput {
        var arguments: [UInt64]
        /// The type whose verdict the return value is (XDP for an untyped program on a packet).
        var type: ProgramType
        var dataOut: () -> [UInt8]? = { nil }
        var contextOut: () -> [UInt8]? = { nil }
    }

    private func prepare(_ input: ProgramInput, for definition: ProgramDefinition) throws(InputRefusal)
        -> PreparedInput
    {
        let type = definition.type
        switch input {
        case .memory(let bytes):
            machine.context = nil
            resetLegacyLoads()
            let address = machine.setInput(bytes ?? [])
            return PreparedInput(
                arguments: bytes.map { [address, UInt64($0.count)] } ?? [0, 0], type: type,
                dataOut: { [machine] in bytes == nil ? nil : machine.inputBytes })
        case .packet(let bytes):
            return try preparePacket(Packet(bytes), type: type)
        case .frame(let packet):
            return try preparePacket(packet, type: type)
        case .context(let bytes):
            guard let kind = TracingContext.Kind(type) else {
                throw InputRefusal(
                    errno: 22, reason: "a \(type.kernelName) program takes a packet, not a raw context")
            }
            return prepareTracing(kind, bytes: bytes, type: type)
        case .event(let event):
            guard let kind = TracingContext.Kind(type) else {
                throw InputRefusal(errno: 22, reason: "a \(type.kernelName) program does not run on tracing events")
            }
            let context = tracingContext(kind)
            let bytes = try TraceContexts.bytes(
                for: event, kind: kind, attachTarget: definition.attachTarget, context: context, machine: machine)
            return prepareTracing(kind, bytes: bytes, type: type)
        }
    }

    private func resetLegacyLoads() {
        machine.legacyDataOffset = 0
        machine.legacyNegativeOffsetLoad = nil
    }

    private func preparePacket(_ packet: Packet, type: ProgramType) throws(InputRefusal) -> PreparedInput {
        if let kind = SKBContext.Kind(type) {
            let context =
                (machine.context as? SKBContext).flatMap { $0.kind == kind ? $0 : nil } ?? SKBContext(kind: kind)
            machine.context = context
            let contextIn = packet.skbContext
            try context.load(
                packet: packet.data, contextIn: contextIn, interfaces: machine.world.world.interfaces, machine: machine)
            return PreparedInput(
                arguments: [SKBContext.contextAddress], type: type, dataOut: { context.output },
                contextOut: { contextIn.map(context.contextOut(from:)) })
        }
        guard type == .xdp || type == .unspec else {
            throw InputRefusal(errno: 22, reason: "a \(type.kernelName) program does not run on packets")
        }
        resetLegacyLoads()
        let context = (machine.context as? XDPContext) ?? XDPContext()
        machine.context = context
        context.ingressIfindex = packet.ingressIfindex ?? 1
        context.rxQueueIndex = packet.rxQueueIndex ?? 0
        context.load(packet: packet.data, into: machine)
        return PreparedInput(arguments: [XDPContext.contextAddress], type: .xdp, dataOut: { context.output })
    }

    /// One tracing context per kind, kept for the session: a context owns the kernel
    /// memory its pointers lead to (and the region that maps it), so replacing it on
    /// every change of kind would leave regions behind, mapped to freed memory.
    private var tracingContexts: [TracingContext.Kind: TracingContext] = [:]

    private func tracingContext(_ kind: TracingContext.Kind) -> TracingContext {
        let context = tracingContexts[kind] ?? TracingContext(kind: kind)
        tracingContexts[kind] = context
        machine.context = context
        return context
    }

    private func prepareTracing(_ kind: TracingContext.Kind, bytes: [UInt8], type: ProgramType) -> PreparedInput {
        let context = tracingContext(kind)
        context.load(bytes, into: machine)
        return PreparedInput(arguments: [TracingContext.contextAddress], type: type)
    }

    /// The input `bpfsim run` uses when none is given: for tracing programs a zeroed
    /// context of the size the kernel would hand them (a syscall tracepoint's record
    /// carries the syscall's number); nil when the size cannot be known (a tracepoint
    /// other than the syscall ones needs its record given).
    public func defaultInput(for index: Int) -> ProgramInput? {
        let definition = definitions[index]
        guard let kind = TracingContext.Kind(definition.type) else { return nil }
        return TraceContexts.defaultInput(kind: kind, attachTarget: definition.attachTarget)
    }

    private func execute(_ index: Int, arguments: [UInt64]) -> (ExecutionResult, fallback: String?) {
        if engine == .jit {
            if let jit = jits[index] { return (jit.run(arguments: arguments), nil) }
            if jitRefusals[index] == nil {
                do {
                    let jit = try JIT(program: machine.programs[index], machine: machine)
                    jits[index] = jit
                    return (jit.run(arguments: arguments), nil)
                } catch {
                    jitRefusals[index] = "the JIT cannot run this program (\(error))"
                }
            }
        }
        let interpreter = interpreters[index] ?? Interpreter(program: machine.programs[index], machine: machine)
        interpreters[index] = interpreter
        let fallback = jitRefusals[index].map { "\($0); the interpreter ran it" }
        return (interpreter.run(arguments: arguments), engine == .jit ? fallback : nil)
    }
}
