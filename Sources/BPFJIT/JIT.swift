import BPFCore
import BPFRuntime

/// The x86-64 JIT: a sibling of the interpreter with the same semantics, bound to one
/// program and one machine, able to run many times.
///
/// Generated code keeps BPF registers in x86 registers, checks every memory access
/// inline against the machine's region table and calls back into Swift (through the C
/// calling convention) for everything else: slow memory paths, helpers, faults. Those
/// slow paths use the same `Machine` functions as the interpreter, so faults, helpers
/// and the context are defined once. docs/jit.md describes the design.
public final class JIT: CallbackInvoker {
    public let program: Program
    public let machine: Machine
    /// The code and its context page. One reference, read once per run: class `var`s
    /// pay a dynamic exclusivity check on every access, and this keeps it to one.
    private var loaded: Loaded
    private var compiled: CompiledProgram { loaded.compiled }
    private var executable: ExecutableMemory { loaded.executable }
    /// The fault a slow path recorded; generated code only sees `status`.
    private var pendingFault: ExecutionFault?

    /// The kernel lets `may_goto` fall through BPF_MAX_LOOPS (8M) times per run.
    static let mayGotoAllowance: UInt64 = 8 * 1024 * 1024

    /// Compiles `program` for `machine`. Throws when the host cannot run x86-64 code or
    /// the code cannot be mapped; the facade then falls back to the interpreter.
    public init(program: Program, machine: Machine) throws(JITError) {
        precondition(program.pseudoLoads.isEmpty, "resolve pseudo lddw loads before running")
        #if arch(x86_64)
            self.program = program
            self.machine = machine
            let units = Self.units(program, machine)
            let compiled = try Self.compile(units, limits: machine.limits)
            loaded = Loaded(units: units, compiled: compiled, executable: try ExecutableMemory(code: compiled.code))
            installSlowPaths()
        #else
            throw JITError.unsupportedHost
        #endif
    }

    /// The code, and where each instruction's part of it is, without mapping anything
    /// (`bpfsim disasm --jit` works on any host).
    public static func codeMap(for program: Program, limits: ExecutionLimits = .init()) throws(JITError)
        -> JITCodeMap
    {
        JITCodeMap(try compile([program], limits: limits))
    }

    /// The code this engine runs.
    public var codeMap: JITCodeMap { JITCodeMap(compiled) }

    private static func compile(_ units: [Program], limits: ExecutionLimits) throws(JITError) -> CompiledProgram {
        try Compiler(
            units: units, frameSize: limits.stackFrameSize, maxDepth: limits.maxCallDepth,
            contextDistance: ExecutableMemory.pageSize
        ).compile()
    }

    /// What one code mapping holds: the program, then every program a tail call could
    /// reach (`machine.programs`, by index) when the machine has a prog array at all.
    private static func units(_ program: Program, _ machine: Machine) -> [Program] {
        machine.maps.contains { $0.type == .progArray } ? [program] + machine.programs : [program]
    }

    // MARK: - Running

    /// Runs the program from `entry` with r1-r5 = `arguments` (missing ones are 0).
    public func run(entry: Int = 0, arguments: [UInt64] = []) -> ExecutionResult {
        let limits = machine.limits
        if compiled.frameSize != limits.stackFrameSize || compiled.maxDepth != limits.maxCallDepth
            || (loaded.units.count > 1 && loaded.units.count != machine.programs.count + 1)
        {
            // The frame layout is baked into the code; the limits (or the programs tail
            // calls reach) changed since it was made.
            let units = Self.units(program, machine)
            guard let again = try? Self.compile(units, limits: limits),
                let memory = try? ExecutableMemory(code: again.code)
            else { preconditionFailure("the JIT compiled this program once and cannot again") }
            loaded = Loaded(units: units, compiled: again, executable: memory)
            installSlowPaths()
        }
        let loaded = self.loaded
        let context = loaded.executable.context
        let frameSize = UInt64(loaded.compiled.frameSize)
        func set(_ field: Int, _ value: UInt64) { context.storeBytes(of: value, toByteOffset: field, as: UInt64.self) }
        func get(_ field: Int) -> UInt64 { context.load(fromByteOffset: field, as: UInt64.self) }
        context.initializeMemory(as: UInt64.self, repeating: 0, count: 11)  // r0-r10
        for index in 0..<min(arguments.count, 5) { set(ContextLayout.registers + 8 * (index + 1), arguments[index]) }
        machine.resetStack()
        let budget = limits.instructionBudget
        let hostStack = UInt64(UInt(bitPattern: machine.stack))
        let firstFrame = hostStack + frameSize
        set(ContextLayout.budget, budget)
        set(ContextLayout.mayGoto, Self.mayGotoAllowance)
        set(ContextLayout.hostStack, hostStack)
        set(ContextLayout.guestBias, (1 << 32) &- hostStack)
        set(ContextLayout.frameCeiling, hostStack + frameSize * UInt64(limits.maxCallDepth - 1))
        set(ContextLayout.hostFrame, firstFrame)
        set(ContextLayout.deepest, firstFrame)
        set(ContextLayout.status, ContextLayout.Status.running)
        set(ContextLayout.table, UInt64(UInt(bitPattern: machine.memory.table)))
        set(ContextLayout.capacity, UInt64(machine.memory.capacity))
        set(ContextLayout.tailTarget, 0)
        machine.enterFrame(depth: 0)

        let r0 = loaded.enter(at: entry)

        let deepest = get(ContextLayout.deepest)
        if deepest != firstFrame { machine.noteFramesUsed(Int((deepest - hostStack) / frameSize)) }
        let executed = budget &- get(ContextLayout.budget)
        switch get(ContextLayout.status) {
        case ContextLayout.Status.running:
            return ExecutionResult(returnValue: r0, instructionCount: executed, fault: nil)
        case ContextLayout.Status.aborted:
            // LD_ABS/LD_IND outside the packet: the run ends with r0 = 0, as in the kernel.
            machine.enterFrame(depth: 0)
            return ExecutionResult(returnValue: 0, instructionCount: executed, fault: nil)
        default:
            guard let fault = pendingFault else { preconditionFailure("JIT code stopped with no fault recorded") }
            pendingFault = nil
            machine.enterFrame(depth: 0)
            return ExecutionResult(returnValue: 0, instructionCount: executed, fault: fault.describing(program))
        }
    }

    /// Runs a callback at one frame below the helper's caller (bpf_loop and friends), in
    /// JIT code, with the caller's registers saved around it as the interpreter does.
    public func invoke(function: Int, arguments: (UInt64, UInt64, UInt64, UInt64, UInt64), pc: Int)
        throws(ExecutionFault) -> UInt64
    {
        let frameSize = UInt64(compiled.frameSize)
        let hostStack = get(ContextLayout.hostStack)
        let depthAtCall = Int((get(ContextLayout.hostFrame) - hostStack) / frameSize) - 1
        let depth = depthAtCall + 1
        guard depth < machine.limits.maxCallDepth else {
            throw ExecutionFault(.callDepthExceeded(limit: machine.limits.maxCallDepth), pc: pc)
        }
        // The callback is a function of the program that called the helper (a tail-call
        // target, perhaps): slowPC still names the helper call.
        let (unit, _) = locate(Int(getPC()))
        guard function >= 0 && function < loaded.units[unit].count else {
            throw ExecutionFault(.fellOffEnd, pc: function - 1)
        }
        // Everything the nested run may change, except the budget, which is shared.
        let savedRegisters = (0..<11).map { register($0) }
        let saved = [
            ContextLayout.hostFrame, ContextLayout.mayGoto, ContextLayout.entryRSP, ContextLayout.slowPC,
            ContextLayout.slowAddress, ContextLayout.slowValue,
        ].map { ($0, get($0)) }
        defer {
            for (index, value) in savedRegisters.enumerated() { setRegister(index, value) }
            for (field, value) in saved { set(field, value) }
            set(ContextLayout.status, ContextLayout.Status.running)
            machine.enterFrame(depth: depthAtCall)
        }
        for (index, value) in [arguments.0, arguments.1, arguments.2, arguments.3, arguments.4].enumerated() {
            setRegister(index + 1, value)
        }
        let frame = hostStack + frameSize * UInt64(depth + 1)
        set(ContextLayout.hostFrame, frame)
        set(ContextLayout.deepest, max(get(ContextLayout.deepest), frame))
        set(ContextLayout.mayGoto, Self.mayGotoAllowance)
        machine.enterFrame(depth: depth)

        let r0 = loaded.enter(at: compiled.unitBases[unit] + function)

        switch get(ContextLayout.status) {
        case ContextLayout.Status.running:
            return r0
        case ContextLayout.Status.aborted:
            return 0
        default:
            guard let fault = pendingFault else { preconditionFailure("JIT code stopped with no fault recorded") }
            pendingFault = nil
            throw fault
        }
    }

    /// A compiled program in executable memory.
    private final class Loaded {
        /// The program, then the tail-call targets (see `JIT.units`).
        let units: [Program]
        /// Each unit's function entries, for callx.
        let functionEntries: [Set<Int>]
        let compiled: CompiledProgram
        let executable: ExecutableMemory

        init(units: [Program], compiled: CompiledProgram, executable: ExecutableMemory) {
            self.units = units
            functionEntries = units.map { Set($0.functionEntries) }
            self.compiled = compiled
            self.executable = executable
        }

        /// Enters generated code at global slot `function`. The slow paths it calls reach
        /// the engine through an unretained pointer: callers keep the engine alive.
        func enter(at function: Int) -> UInt64 {
            typealias Entry = @convention(c) (UnsafeRawPointer) -> UInt64
            // The code was built for this: the entry sequence follows the C calling convention.
            let entry = unsafeBitCast(executable.code + CompiledProgram.entryOffset, to: Entry.self)
            return withExtendedLifetime(self) { entry(executable.code + compiled.instructionOffsets[function]) }
        }
    }

    // MARK: - The context page

    private var context: UnsafeMutableRawPointer { executable.context }

    @inline(__always) private func get(_ field: Int) -> UInt64 {
        context.load(fromByteOffset: field, as: UInt64.self)
    }

    @inline(__always) private func set(_ field: Int, _ value: UInt64) {
        context.storeBytes(of: value, toByteOffset: field, as: UInt64.self)
    }

    private func getPC() -> UInt32 { context.load(fromByteOffset: ContextLayout.slowPC, as: UInt32.self) }

    /// The unit and the unit's own slot of a global slot number. Faults name the local
    /// slot, as the interpreter's do in a tail-called program.
    private func locate(_ global: Int) -> (unit: Int, pc: Int) {
        let bases = compiled.unitBases
        var unit = bases.count - 1
        while bases[unit] > global { unit -= 1 }
        return (unit, global - bases[unit])
    }

    private func register(_ index: Int) -> UInt64 { get(ContextLayout.registers + 8 * index) }
    private func setRegister(_ index: Int, _ value: UInt64) { set(ContextLayout.registers + 8 * index, value) }

    /// The region table can move when a helper adds a region; generated code reloads it
    /// after every call into Swift.
    private func refreshMemoryFields() {
        set(ContextLayout.table, UInt64(UInt(bitPattern: machine.memory.table)))
        set(ContextLayout.capacity, UInt64(machine.memory.capacity))
    }

    private func installSlowPaths() {
        typealias SlowPath = @convention(c) (UnsafeMutableRawPointer?) -> UInt64
        let memory: SlowPath = { context in JIT.owner(of: context).slowMemory() }
        let helper: SlowPath = { context in JIT.owner(of: context).slowHelper() }
        let raise: SlowPath = { context in JIT.owner(of: context).slowRaise() }
        for (field, function) in [
            (ContextLayout.memoryFunction, memory), (ContextLayout.helperFunction, helper),
            (ContextLayout.raiseFunction, raise),
        ] {
            set(field, UInt64(UInt(bitPattern: unsafeBitCast(function, to: UnsafeRawPointer.self))))
        }
        // Unretained: the engine outlives every run of its code (`run` and `invoke` are its methods).
        set(ContextLayout.owner, UInt64(UInt(bitPattern: Unmanaged.passUnretained(self).toOpaque())))
    }

    private static func owner(of context: UnsafeMutableRawPointer?) -> JIT {
        let raw = context.unsafelyUnwrapped.load(fromByteOffset: ContextLayout.owner, as: UnsafeRawPointer.self)
        return Unmanaged<JIT>.fromOpaque(raw).takeUnretainedValue()
    }

    private func record(_ fault: ExecutionFault) {
        pendingFault = fault
        set(ContextLayout.status, ContextLayout.Status.fault)
    }

    /// The run stops at `pc`, inside a block that was charged in full: give back the
    /// instructions after it, which will not run. (Calls end their blocks, so a stop
    /// inside a callee or a callback leaves no unexecuted tail in its callers.)
    private func refundTail(after pc: Int) {
        set(ContextLayout.budget, get(ContextLayout.budget) &+ UInt64(compiled.tailAfter[pc]))
    }

    // MARK: - Slow paths, called from generated code

    /// Loads and stores the inline check refused (the context region, or a fault),
    /// atomics' host address, LD_ABS/LD_IND, and callx's function address.
    private func slowMemory() -> UInt64 {
        defer { refreshMemoryFields() }
        let global = Int(getPC())
        let (unit, pc) = locate(global)
        let instruction = loaded.units[unit].decoded[pc]
        let spec = InstructionSet.spec(for: instruction.operation)
        let size = spec.accessSize
        let address = get(ContextLayout.slowAddress)
        let memory = machine.memory
        do throws(ExecutionFault) {
            switch spec.form {
            case .load, .loadAcquire:
                if let host = memory.translate(address, size: size, write: false) { return Self.load(host, size) }
                return try machine.slowLoad(address, size: size, pc: pc)
            case .storeImmediate, .storeRegister, .storeRelease:
                let value =
                    spec.form == .storeImmediate
                    ? UInt64(bitPattern: instruction.immediate) : get(ContextLayout.slowValue)
                if let host = memory.translate(address, size: size, write: true) {
                    Self.store(host, size, value)
                    return 0
                }
                try machine.slowStore(address, size: size, value: value, pc: pc)
                return 0
            case .atomic:
                // Atomics need a real host location: the context is never atomic.
                if let host = memory.translate(address, size: size, write: true),
                    memory.translate(address, size: size, write: false) != nil
                {
                    return UInt64(UInt(bitPattern: host))
                }
                throw machine.outOfBounds(address, size: size, write: true, pc: pc)
            case .loadAbsolute, .loadIndirect:
                if let value = machine.legacyPacketLoad(offset: Int64(bitPattern: address), size: size) {
                    return value
                }
                refundTail(after: global)
                set(ContextLayout.status, ContextLayout.Status.aborted)
                return 0
            case .callx:
                let function = Int(truncatingIfNeeded: address & 0xffff_ffff)
                guard loaded.functionEntries[unit].contains(function) else {
                    throw ExecutionFault(.badCallTarget(value: address), pc: pc)
                }
                let slot = compiled.unitBases[unit] + function
                return UInt64(UInt(bitPattern: executable.code + compiled.instructionOffsets[slot]))
            default:
                preconditionFailure("no memory slow path for \(instruction.operation) (pc \(pc))")
            }
        } catch {
            refundTail(after: global)
            record(error)
            return 0
        }
    }

    /// `call N` and `callx` of a helper id: the same registry and `HelperCall` as the
    /// interpreter; r1-r5 come from the context, where the thunk spilled them.
    private func slowHelper() -> UInt64 {
        defer { refreshMemoryFields() }
        let (unit, pc) = locate(Int(getPC()))
        let instruction = loaded.units[unit].decoded[pc]
        let id =
            instruction.operation == .callHelper
            ? instruction.immediate : Int64(bitPattern: get(ContextLayout.slowValue))
        guard let helper = machine.helpers[id] else {
            record(
                ExecutionFault(
                    .unknownHelper(id: id, name: HelperNames.name(of: Int32(truncatingIfNeeded: id))), pc: pc))
            return 0
        }
        var call = HelperCall(
            machine: machine, pc: pc, name: helper.name,
            registers: (register(1), register(2), register(3), register(4), register(5)), engine: self)
        do throws(ExecutionFault) {
            let r0 = try helper.function(&call)
            if let target = machine.pendingTailCall {
                // bpf_tail_call succeeded: the thunk jumps to the target's first slot.
                machine.pendingTailCall = nil
                guard loaded.units.count == machine.programs.count + 1, target + 1 < loaded.units.count else {
                    throw ExecutionFault(
                        .unsupported("a tail call into a program the JIT did not compile in (prog array added later)"),
                        pc: pc)
                }
                let slot = compiled.unitBases[target + 1]
                set(ContextLayout.tailTarget, UInt64(UInt(bitPattern: executable.code + compiled.instructionOffsets[slot])))
                // The interpreter starts each program it enters with a fresh may_goto allowance.
                set(ContextLayout.mayGoto, Self.mayGotoAllowance)
            }
            return r0
        } catch {
            record(error)
            return 0
        }
    }

    /// Faults the generated code detects itself.
    private func slowRaise() -> UInt64 {
        let global = Int(getPC())
        let (unit, pc) = locate(global)
        let code = context.load(fromByteOffset: ContextLayout.faultCode, as: Int32.self)
        let kind: ExecutionFault.Kind
        switch RaiseCode(rawValue: code) {
        case .budget: kind = .budgetExhausted(budget: machine.limits.instructionBudget)
        case .callDepth: kind = .callDepthExceeded(limit: machine.limits.maxCallDepth)
        case .badCallTarget: kind = .badCallTarget(value: get(ContextLayout.slowValue))
        case .fellOffEnd: kind = .fellOffEnd
        case .kfunc: kind = .unsupported("kfunc call (BTF id \(loaded.units[unit].decoded[pc].immediate))")
        case nil: preconditionFailure("unknown raise code \(code)")
        }
        // A budget fault stops before its block runs (the stub gave the charge back).
        if RaiseCode(rawValue: code) != .budget { refundTail(after: global) }
        record(ExecutionFault(kind, pc: pc))
        return 0
    }

    private static func load(_ host: UnsafeMutableRawPointer, _ size: Int) -> UInt64 {
        switch size {
        case 1: UInt64(host.load(as: UInt8.self))
        case 2: UInt64(host.loadUnaligned(as: UInt16.self))
        case 4: UInt64(host.loadUnaligned(as: UInt32.self))
        default: host.loadUnaligned(as: UInt64.self)
        }
    }

    private static func store(_ host: UnsafeMutableRawPointer, _ size: Int, _ value: UInt64) {
        switch size {
        case 1: host.storeBytes(of: UInt8(truncatingIfNeeded: value), as: UInt8.self)
        case 2: host.storeBytes(of: UInt16(truncatingIfNeeded: value), as: UInt16.self)
        case 4: host.storeBytes(of: UInt32(truncatingIfNeeded: value), as: UInt32.self)
        default: host.storeBytes(of: value, as: UInt64.self)
        }
    }
}

/// The machine code of a compiled program and where each part came from, for listings.
public struct JITCodeMap: Sendable {
    public let code: [UInt8]
    /// The entry sequence and the exits, before the first instruction.
    public let prologue: Range<Int>
    /// For each instruction slot, its code (empty for an `lddw`'s second slot).
    public let instructions: [Range<Int>]
    /// Out-of-line code after the body: slow paths (naming their instruction) and thunks.
    public let outOfLine: [(name: String, pc: Int?, range: Range<Int>)]

    init(_ compiled: CompiledProgram) {
        code = compiled.code
        let offsets = compiled.instructionOffsets
        prologue = 0..<(offsets.first ?? compiled.bodyEnd)
        // The program's own slots (a running engine's code may also hold tail-call targets).
        instructions = offsets.indices.prefix(compiled.mainCount).map { index in
            offsets[index]..<(index + 1 < offsets.count ? offsets[index + 1] : compiled.bodyEnd)
        }
        var parts: [(name: String, pc: Int?, range: Range<Int>)] = []
        // The fell-off-the-end fault follows the last instruction, inside the body.
        for (index, part) in compiled.outOfLine.enumerated() {
            let end = index + 1 < compiled.outOfLine.count ? compiled.outOfLine[index + 1].start : compiled.code.count
            parts.append((part.name, part.pc, part.start..<end))
        }
        outOfLine = parts
    }
}
