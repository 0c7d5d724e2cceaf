import BPFCore
import BPFRuntime

/// The reference executor: one loop over validated, decoded instructions, with every
/// memory access checked against the machine's region table.
///
/// Semantics are RFC 9669's, with the Linux kernel deciding what the RFC leaves open:
/// 32-bit results are zero-extended, shift amounts are masked, unsigned division by zero
/// gives 0 and modulo by zero leaves the dividend, signed INT_MIN / -1 gives INT_MIN.
///
/// An `Interpreter` is bound to one program and one machine and can run many times.
public final class Interpreter: CallbackInvoker {
    public let program: Program
    public let machine: Machine

    /// r0-r10, then one spare slot so a `dst` of a validated program always fits.
    private let registers: UnsafeMutablePointer<UInt64>
    /// Saved state per frame: return index, r6-r9.
    private let frames: UnsafeMutablePointer<Frame>
    /// Instructions executed in the current run, synced around helper calls.
    private var executed: UInt64 = 0
    /// The call depth when a helper was called, for callbacks.
    private var depthAtCall = 0
    /// The program that called the helper (-1 for `program`, else an index into
    /// `machine.programs` after a tail call): a callback is a function of that program.
    private var programAtCall = -1
    private var deepestFrame = 0

    private struct Frame {
        var returnIndex: Int
        /// The program of the caller: -1 for `program`, else an index into `machine.programs`
        /// (after a tail call).
        var program: Int
        var r6: UInt64, r7: UInt64, r8: UInt64, r9: UInt64
    }

    public init(program: Program, machine: Machine) {
        precondition(program.pseudoLoads.isEmpty, "resolve pseudo lddw loads before running")
        self.program = program
        self.machine = machine
        registers = .allocate(capacity: 12)
        registers.initialize(repeating: 0, count: 12)
        frames = .allocate(capacity: max(machine.limits.maxCallDepth, 1))
    }

    deinit {
        registers.deallocate()
        frames.deallocate()
    }

    /// Runs the program from `entry` with r1-r5 = `arguments` (missing ones are 0).
    public func run(entry: Int = 0, arguments: [UInt64] = []) -> ExecutionResult {
        registers.update(repeating: 0, count: 12)
        for (index, value) in arguments.prefix(5).enumerated() { registers[index + 1] = value }
        machine.resetStack()
        executed = 0
        deepestFrame = 0
        defer { machine.noteFramesUsed(deepestFrame + 1) }
        do {
            let r0 = try execute(from: entry, baseDepth: 0)
            return ExecutionResult(returnValue: r0, instructionCount: executed, fault: nil)
        } catch {
            machine.enterFrame(depth: 0)
            return ExecutionResult(returnValue: 0, instructionCount: executed, fault: error.describing(program))
        }
    }

    /// Runs a callback at one frame below the helper's caller (bpf_loop and friends).
    public func invoke(function: Int, arguments: (UInt64, UInt64, UInt64, UInt64, UInt64), pc: Int)
        throws(ExecutionFault) -> UInt64
    {
        let depth = depthAtCall + 1
        guard depth < machine.limits.maxCallDepth else {
            throw ExecutionFault(.callDepthExceeded(limit: machine.limits.maxCallDepth), pc: pc)
        }
        // The caller's registers are the helper caller's: save them all around the callback.
        let saved = (0..<11).map { registers[$0] }
        defer {
            for index in 0..<11 { registers[index] = saved[index] }
            machine.enterFrame(depth: depthAtCall)
        }
        (registers[1], registers[2], registers[3], registers[4], registers[5]) = arguments
        let savedDepth = depthAtCall
        let savedProgram = programAtCall
        defer { (depthAtCall, programAtCall) = (savedDepth, savedProgram) }
        deepestFrame = max(deepestFrame, depth)
        return try execute(from: function, baseDepth: depth, program: programAtCall)
    }

    /// How the loop over one program's code ended.
    private enum LoopExit {
        /// The frame at the base depth exited with r0.
        case exit(UInt64)
        /// `bpf_tail_call` succeeded: continue in `machine.programs[program]` at the same depth.
        case tailCall(program: Int, depth: Int)
        /// An exit returned to a caller frame in another program (after a tail call).
        case resume(program: Int, at: Int, depth: Int)
    }

    /// Runs from `start` at frame `baseDepth` until that frame exits, following tail calls.
    private func execute(from start: Int, baseDepth: Int, program startProgram: Int = -1) throws(ExecutionFault)
        -> UInt64
    {
        var programID = startProgram
        var pc = start
        var depth = baseDepth
        while true {
            let current = programID < 0 ? program : machine.programs[programID]
            let exit = try current.decoded.withUnsafeBufferPointer { (code) throws(ExecutionFault) -> LoopExit in
                try loop(
                    code: code, current: current, programID: programID, start: pc, depth: depth, baseDepth: baseDepth)
            }
            switch exit {
            case .exit(let r0):
                return r0
            case .tailCall(let target, let at):
                (programID, pc, depth) = (target, 0, at)
            case .resume(let target, let index, let at):
                (programID, pc, depth) = (target, index, at)
            }
        }
    }

    // The hot path. Everything it touches per instruction is a local or a pointer.
    private func loop(
        code: UnsafeBufferPointer<DecodedInstruction>, current: Program, programID: Int, start: Int,
        depth startDepth: Int,
        baseDepth: Int
    ) throws(ExecutionFault) -> LoopExit {
        let r = registers
        let machine = self.machine
        let memory = machine.memory
        let table = memory.table
        let regionCount = UInt64(memory.capacity)
        let budget = machine.limits.instructionBudget
        let frameSize = machine.limits.stackFrameSize
        let maxDepth = machine.limits.maxCallDepth
        let count = code.count
        var executed = self.executed
        // The kernel lets `may_goto` fall through BPF_MAX_LOOPS (8M) times per run.
        var mayGotoAllowance: UInt64 = 8 * 1024 * 1024
        var depth = startDepth
        var pc = start

        r[10] = machine.framePointer(depth: depth)
        machine.enterFrame(depth: depth)

        // Translates a guest address; nil sends the access to the machine's slow path.
        @inline(__always)
        func host(_ address: UInt64, _ size: UInt64, write: Bool) -> UnsafeMutableRawPointer? {
            let region = address >> 32
            guard region < regionCount else { return nil }
            let entry = table + Int(truncatingIfNeeded: region)
            let offset = address & 0xffff_ffff
            // offset < 2^32 and size <= 8, so the sum cannot overflow.
            guard offset &+ size <= (write ? entry.pointee.writeLimit : entry.pointee.readLimit) else { return nil }
            return entry.pointee.base.unsafelyUnwrapped + Int(truncatingIfNeeded: offset)
        }

        @inline(__always)
        func load(_ address: UInt64, _ size: UInt64, at pc: Int) throws(ExecutionFault) -> UInt64 {
            if let p = host(address, size, write: false) {
                switch size {
                case 1: return UInt64(p.load(as: UInt8.self))
                case 2: return UInt64(p.loadUnaligned(as: UInt16.self))
                case 4: return UInt64(p.loadUnaligned(as: UInt32.self))
                default: return p.loadUnaligned(as: UInt64.self)
                }
            }
            return try machine.slowLoad(address, size: Int(size), pc: pc)
        }

        @inline(__always)
        func store(_ address: UInt64, _ size: UInt64, _ value: UInt64, at pc: Int) throws(ExecutionFault) {
            if let p = host(address, size, write: true) {
                switch size {
                case 1: p.storeBytes(of: UInt8(truncatingIfNeeded: value), as: UInt8.self)
                case 2: p.storeBytes(of: UInt16(truncatingIfNeeded: value), as: UInt16.self)
                case 4: p.storeBytes(of: UInt32(truncatingIfNeeded: value), as: UInt32.self)
                default: p.storeBytes(of: value, as: UInt64.self)
                }
                return
            }
            try machine.slowStore(address, size: Int(size), value: value, pc: pc)
        }

        // Atomics need a real host location: the context is never atomic.
        @inline(__always)
        func atomicLocation(_ address: UInt64, _ size: UInt64, at pc: Int) throws(ExecutionFault)
            -> UnsafeMutableRawPointer
        {
            if let p = host(address, size, write: true), host(address, size, write: false) != nil { return p }
            throw machine.outOfBounds(address, size: Int(size), write: true, pc: pc)
        }

        // Faults leave through the catch below, so the count of executed instructions is kept.
        do throws(ExecutionFault) {
            while true {
                guard pc < count else { throw ExecutionFault(.fellOffEnd, pc: pc - 1) }
                executed &+= 1
                if executed > budget {
                    executed -= 1
                    throw ExecutionFault(.budgetExhausted(budget: budget), pc: pc)
                }
                let i = code[pc]
                let d = Int(i.dst)
                let s = Int(i.src)
                let imm = UInt64(bitPattern: i.immediate)
                let imm32 = UInt32(truncatingIfNeeded: i.immediate)
                let here = pc
                pc += 1

                switch i.operation {
                // MARK: ALU64
                case .add64Imm: r[d] = r[d] &+ imm
                case .add64Reg: r[d] = r[d] &+ r[s]
                case .sub64Imm: r[d] = r[d] &- imm
                case .sub64Reg: r[d] = r[d] &- r[s]
                case .mul64Imm: r[d] = r[d] &* imm
                case .mul64Reg: r[d] = r[d] &* r[s]
                case .div64Imm: r[d] = imm == 0 ? 0 : r[d] / imm
                case .div64Reg: r[d] = r[s] == 0 ? 0 : r[d] / r[s]
                case .sdiv64Imm: r[d] = sdiv64(r[d], imm)
                case .sdiv64Reg: r[d] = sdiv64(r[d], r[s])
                case .mod64Imm: r[d] = imm == 0 ? r[d] : r[d] % imm
                case .mod64Reg: r[d] = r[s] == 0 ? r[d] : r[d] % r[s]
                case .smod64Imm: r[d] = smod64(r[d], imm)
                case .smod64Reg: r[d] = smod64(r[d], r[s])
                case .or64Imm: r[d] = r[d] | imm
                case .or64Reg: r[d] = r[d] | r[s]
                case .and64Imm: r[d] = r[d] & imm
                case .and64Reg: r[d] = r[d] & r[s]
                case .xor64Imm: r[d] = r[d] ^ imm
                case .xor64Reg: r[d] = r[d] ^ r[s]
                case .lsh64Imm: r[d] = r[d] &<< (imm & 63)
                case .lsh64Reg: r[d] = r[d] &<< (r[s] & 63)
                case .rsh64Imm: r[d] = r[d] &>> (imm & 63)
                case .rsh64Reg: r[d] = r[d] &>> (r[s] & 63)
                case .arsh64Imm: r[d] = UInt64(bitPattern: Int64(bitPattern: r[d]) &>> Int64(imm & 63))
                case .arsh64Reg: r[d] = UInt64(bitPattern: Int64(bitPattern: r[d]) &>> Int64(r[s] & 63))
                case .neg64: r[d] = 0 &- r[d]
                case .mov64Imm: r[d] = imm
                case .mov64Reg: r[d] = r[s]
                case .movsx8To64: r[d] = UInt64(bitPattern: Int64(Int8(truncatingIfNeeded: r[s])))
                case .movsx16To64: r[d] = UInt64(bitPattern: Int64(Int16(truncatingIfNeeded: r[s])))
                case .movsx32To64: r[d] = UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: r[s])))

                // MARK: ALU32: operate on the low halves, zero-extend the result
                case .add32Imm: r[d] = UInt64(lo(r[d]) &+ imm32)
                case .add32Reg: r[d] = UInt64(lo(r[d]) &+ lo(r[s]))
                case .sub32Imm: r[d] = UInt64(lo(r[d]) &- imm32)
                case .sub32Reg: r[d] = UInt64(lo(r[d]) &- lo(r[s]))
                case .mul32Imm: r[d] = UInt64(lo(r[d]) &* imm32)
                case .mul32Reg: r[d] = UInt64(lo(r[d]) &* lo(r[s]))
                case .div32Imm: r[d] = imm32 == 0 ? 0 : UInt64(lo(r[d]) / imm32)
                case .div32Reg: r[d] = lo(r[s]) == 0 ? 0 : UInt64(lo(r[d]) / lo(r[s]))
                case .sdiv32Imm: r[d] = UInt64(sdiv32(lo(r[d]), imm32))
                case .sdiv32Reg: r[d] = UInt64(sdiv32(lo(r[d]), lo(r[s])))
                case .mod32Imm: r[d] = imm32 == 0 ? UInt64(lo(r[d])) : UInt64(lo(r[d]) % imm32)
                case .mod32Reg: r[d] = lo(r[s]) == 0 ? UInt64(lo(r[d])) : UInt64(lo(r[d]) % lo(r[s]))
                case .smod32Imm: r[d] = UInt64(smod32(lo(r[d]), imm32))
                case .smod32Reg: r[d] = UInt64(smod32(lo(r[d]), lo(r[s])))
                case .or32Imm: r[d] = UInt64(lo(r[d]) | imm32)
                case .or32Reg: r[d] = UInt64(lo(r[d]) | lo(r[s]))
                case .and32Imm: r[d] = UInt64(lo(r[d]) & imm32)
                case .and32Reg: r[d] = UInt64(lo(r[d]) & lo(r[s]))
                case .xor32Imm: r[d] = UInt64(lo(r[d]) ^ imm32)
                case .xor32Reg: r[d] = UInt64(lo(r[d]) ^ lo(r[s]))
                case .lsh32Imm: r[d] = UInt64(lo(r[d]) &<< (imm32 & 31))
                case .lsh32Reg: r[d] = UInt64(lo(r[d]) &<< (lo(r[s]) & 31))
                case .rsh32Imm: r[d] = UInt64(lo(r[d]) &>> (imm32 & 31))
                case .rsh32Reg: r[d] = UInt64(lo(r[d]) &>> (lo(r[s]) & 31))
                case .arsh32Imm: r[d] = UInt64(UInt32(bitPattern: Int32(bitPattern: lo(r[d])) &>> Int32(imm32 & 31)))
                case .arsh32Reg: r[d] = UInt64(UInt32(bitPattern: Int32(bitPattern: lo(r[d])) &>> Int32(lo(r[s]) & 31)))
                case .neg32: r[d] = UInt64(0 &- lo(r[d]))
                case .mov32Imm: r[d] = UInt64(imm32)
                case .mov32Reg: r[d] = UInt64(lo(r[s]))
                case .movsx8To32: r[d] = UInt64(UInt32(bitPattern: Int32(Int8(truncatingIfNeeded: r[s]))))
                case .movsx16To32: r[d] = UInt64(UInt32(bitPattern: Int32(Int16(truncatingIfNeeded: r[s]))))

                // MARK: Byte order (the emulated machine is little-endian, like x86-64)
                case .le16: r[d] = UInt64(UInt16(truncatingIfNeeded: r[d]))
                case .le32: r[d] = UInt64(lo(r[d]))
                case .le64: break
                case .be16, .bswap16: r[d] = UInt64(UInt16(truncatingIfNeeded: r[d]).byteSwapped)
                case .be32, .bswap32: r[d] = UInt64(lo(r[d]).byteSwapped)
                case .be64, .bswap64: r[d] = r[d].byteSwapped

                // MARK: Loads and stores
                case .ldxb: r[d] = try load(r[s] &+ offset(i), 1, at: here)
                case .ldxh: r[d] = try load(r[s] &+ offset(i), 2, at: here)
                case .ldxw: r[d] = try load(r[s] &+ offset(i), 4, at: here)
                case .ldxdw: r[d] = try load(r[s] &+ offset(i), 8, at: here)
                case .ldxsb:
                    r[d] = UInt64(bitPattern: Int64(Int8(truncatingIfNeeded: try load(r[s] &+ offset(i), 1, at: here))))
                case .ldxsh:
                    r[d] = UInt64(
                        bitPattern: Int64(Int16(truncatingIfNeeded: try load(r[s] &+ offset(i), 2, at: here))))
                case .ldxsw:
                    r[d] = UInt64(
                        bitPattern: Int64(Int32(truncatingIfNeeded: try load(r[s] &+ offset(i), 4, at: here))))
                case .stb: try store(r[d] &+ offset(i), 1, imm, at: here)
                case .sth: try store(r[d] &+ offset(i), 2, imm, at: here)
                case .stw: try store(r[d] &+ offset(i), 4, imm, at: here)
                case .stdw: try store(r[d] &+ offset(i), 8, imm, at: here)
                case .stxb: try store(r[d] &+ offset(i), 1, r[s], at: here)
                case .stxh: try store(r[d] &+ offset(i), 2, r[s], at: here)
                case .stxw: try store(r[d] &+ offset(i), 4, r[s], at: here)
                case .stxdw: try store(r[d] &+ offset(i), 8, r[s], at: here)
                case .lddw:
                    r[d] = imm
                    pc += 1
                case .ldabsb, .ldabsh, .ldabsw, .ldindb, .ldindh, .ldindw:
                    // Out of range ends the program with r0 = 0, as the kernel's converted code does.
                    guard let value = legacyLoad(i, r) else {
                        self.executed = executed
                        machine.enterFrame(depth: baseDepth)
                        return .exit(0)
                    }
                    r[0] = value

                // MARK: Atomics (the machine runs one CPU at a time, so plain read-modify-write is atomic)
                case .atomicAdd32, .atomicOr32, .atomicAnd32, .atomicXor32,
                    .atomicFetchAdd32, .atomicFetchOr32, .atomicFetchAnd32, .atomicFetchXor32, .atomicXchg32:
                    let p = try atomicLocation(r[d] &+ offset(i), 4, at: here)
                    let old = p.loadUnaligned(as: UInt32.self)
                    let operand = lo(r[s])
                    let new: UInt32 =
                        switch i.operation {
                        case .atomicAdd32, .atomicFetchAdd32: old &+ operand
                        case .atomicOr32, .atomicFetchOr32: old | operand
                        case .atomicAnd32, .atomicFetchAnd32: old & operand
                        case .atomicXor32, .atomicFetchXor32: old ^ operand
                        default: operand  // xchg
                        }
                    p.storeBytes(of: new, as: UInt32.self)
                    if i.immediate & Int64(OpcodeField.fetch) != 0 { r[s] = UInt64(old) }
                case .atomicCmpxchg32:
                    let p = try atomicLocation(r[d] &+ offset(i), 4, at: here)
                    let old = p.loadUnaligned(as: UInt32.self)
                    if old == lo(r[0]) { p.storeBytes(of: lo(r[s]), as: UInt32.self) }
                    r[0] = UInt64(old)
                case .atomicAdd64, .atomicOr64, .atomicAnd64, .atomicXor64,
                    .atomicFetchAdd64, .atomicFetchOr64, .atomicFetchAnd64, .atomicFetchXor64, .atomicXchg64:
                    let p = try atomicLocation(r[d] &+ offset(i), 8, at: here)
                    let old = p.loadUnaligned(as: UInt64.self)
                    let operand = r[s]
                    let new: UInt64 =
                        switch i.operation {
                        case .atomicAdd64, .atomicFetchAdd64: old &+ operand
                        case .atomicOr64, .atomicFetchOr64: old | operand
                        case .atomicAnd64, .atomicFetchAnd64: old & operand
                        case .atomicXor64, .atomicFetchXor64: old ^ operand
                        default: operand  // xchg
                        }
                    p.storeBytes(of: new, as: UInt64.self)
                    if i.immediate & Int64(OpcodeField.fetch) != 0 { r[s] = old }
                case .atomicCmpxchg64:
                    let p = try atomicLocation(r[d] &+ offset(i), 8, at: here)
                    let old = p.loadUnaligned(as: UInt64.self)
                    if old == r[0] { p.storeBytes(of: r[s], as: UInt64.self) }
                    r[0] = old
                case .loadAcquire8: r[d] = try load(r[s] &+ offset(i), 1, at: here)
                case .loadAcquire16: r[d] = try load(r[s] &+ offset(i), 2, at: here)
                case .loadAcquire32: r[d] = try load(r[s] &+ offset(i), 4, at: here)
                case .loadAcquire64: r[d] = try load(r[s] &+ offset(i), 8, at: here)
                case .storeRelease8: try store(r[d] &+ offset(i), 1, r[s], at: here)
                case .storeRelease16: try store(r[d] &+ offset(i), 2, r[s], at: here)
                case .storeRelease32: try store(r[d] &+ offset(i), 4, r[s], at: here)
                case .storeRelease64: try store(r[d] &+ offset(i), 8, r[s], at: here)

                // MARK: Jumps: `offset` holds the absolute target
                case .ja, .ja32: pc = Int(i.offset)
                case .mayGoto:
                    if mayGotoAllowance == 0 { pc = Int(i.offset) } else { mayGotoAllowance -= 1 }
                case .jeq64Imm: if r[d] == imm { pc = Int(i.offset) }
                case .jeq64Reg: if r[d] == r[s] { pc = Int(i.offset) }
                case .jgt64Imm: if r[d] > imm { pc = Int(i.offset) }
                case .jgt64Reg: if r[d] > r[s] { pc = Int(i.offset) }
                case .jge64Imm: if r[d] >= imm { pc = Int(i.offset) }
                case .jge64Reg: if r[d] >= r[s] { pc = Int(i.offset) }
                case .jset64Imm: if r[d] & imm != 0 { pc = Int(i.offset) }
                case .jset64Reg: if r[d] & r[s] != 0 { pc = Int(i.offset) }
                case .jne64Imm: if r[d] != imm { pc = Int(i.offset) }
                case .jne64Reg: if r[d] != r[s] { pc = Int(i.offset) }
                case .jsgt64Imm: if sx(r[d]) > sx(imm) { pc = Int(i.offset) }
                case .jsgt64Reg: if sx(r[d]) > sx(r[s]) { pc = Int(i.offset) }
                case .jsge64Imm: if sx(r[d]) >= sx(imm) { pc = Int(i.offset) }
                case .jsge64Reg: if sx(r[d]) >= sx(r[s]) { pc = Int(i.offset) }
                case .jlt64Imm: if r[d] < imm { pc = Int(i.offset) }
                case .jlt64Reg: if r[d] < r[s] { pc = Int(i.offset) }
                case .jle64Imm: if r[d] <= imm { pc = Int(i.offset) }
                case .jle64Reg: if r[d] <= r[s] { pc = Int(i.offset) }
                case .jslt64Imm: if sx(r[d]) < sx(imm) { pc = Int(i.offset) }
                case .jslt64Reg: if sx(r[d]) < sx(r[s]) { pc = Int(i.offset) }
                case .jsle64Imm: if sx(r[d]) <= sx(imm) { pc = Int(i.offset) }
                case .jsle64Reg: if sx(r[d]) <= sx(r[s]) { pc = Int(i.offset) }
                case .jeq32Imm: if lo(r[d]) == imm32 { pc = Int(i.offset) }
                case .jeq32Reg: if lo(r[d]) == lo(r[s]) { pc = Int(i.offset) }
                case .jgt32Imm: if lo(r[d]) > imm32 { pc = Int(i.offset) }
                case .jgt32Reg: if lo(r[d]) > lo(r[s]) { pc = Int(i.offset) }
                case .jge32Imm: if lo(r[d]) >= imm32 { pc = Int(i.offset) }
                case .jge32Reg: if lo(r[d]) >= lo(r[s]) { pc = Int(i.offset) }
                case .jset32Imm: if lo(r[d]) & imm32 != 0 { pc = Int(i.offset) }
                case .jset32Reg: if lo(r[d]) & lo(r[s]) != 0 { pc = Int(i.offset) }
                case .jne32Imm: if lo(r[d]) != imm32 { pc = Int(i.offset) }
                case .jne32Reg: if lo(r[d]) != lo(r[s]) { pc = Int(i.offset) }
                case .jsgt32Imm: if sx32(r[d]) > Int32(bitPattern: imm32) { pc = Int(i.offset) }
                case .jsgt32Reg: if sx32(r[d]) > sx32(r[s]) { pc = Int(i.offset) }
                case .jsge32Imm: if sx32(r[d]) >= Int32(bitPattern: imm32) { pc = Int(i.offset) }
                case .jsge32Reg: if sx32(r[d]) >= sx32(r[s]) { pc = Int(i.offset) }
                case .jlt32Imm: if lo(r[d]) < imm32 { pc = Int(i.offset) }
                case .jlt32Reg: if lo(r[d]) < lo(r[s]) { pc = Int(i.offset) }
                case .jle32Imm: if lo(r[d]) <= imm32 { pc = Int(i.offset) }
                case .jle32Reg: if lo(r[d]) <= lo(r[s]) { pc = Int(i.offset) }
                case .jslt32Imm: if sx32(r[d]) < Int32(bitPattern: imm32) { pc = Int(i.offset) }
                case .jslt32Reg: if sx32(r[d]) < sx32(r[s]) { pc = Int(i.offset) }
                case .jsle32Imm: if sx32(r[d]) <= Int32(bitPattern: imm32) { pc = Int(i.offset) }
                case .jsle32Reg: if sx32(r[d]) <= sx32(r[s]) { pc = Int(i.offset) }

                // MARK: Calls and exit
                case .callHelper:
                    self.executed = executed
                    r[0] = try callHelper(Int64(i.immediate), depth: depth, program: programID, pc: here)
                    executed = self.executed
                    if let target = machine.pendingTailCall {
                        machine.pendingTailCall = nil
                        return .tailCall(program: target, depth: depth)
                    }
                case .callLocal:
                    try pushFrame(returnTo: pc, program: programID, depth: &depth, maxDepth: maxDepth, pc: here)
                    pc = Int(i.offset)
                case .callx:
                    let target = r[d]
                    if target >> 32 == UInt64(AddressSpace.Well.code.rawValue) {
                        let function = Int(truncatingIfNeeded: target & 0xffff_ffff)
                        guard current.functionEntries.contains(function) else {
                            throw ExecutionFault(.badCallTarget(value: target), pc: here)
                        }
                        try pushFrame(returnTo: pc, program: programID, depth: &depth, maxDepth: maxDepth, pc: here)
                        pc = function
                    } else if target <= UInt64(Int32.max) {
                        self.executed = executed
                        r[0] = try callHelper(Int64(target), depth: depth, program: programID, pc: here)
                        executed = self.executed
                        if let target = machine.pendingTailCall {
                            machine.pendingTailCall = nil
                            return .tailCall(program: target, depth: depth)
                        }
                    } else {
                        throw ExecutionFault(.badCallTarget(value: target), pc: here)
                    }
                case .callKfunc:
                    throw ExecutionFault(.unsupported("kfunc call (BTF id \(i.immediate))"), pc: here)
                case .exit:
                    if depth == baseDepth {
                        self.executed = executed
                        return .exit(r[0])
                    }
                    depth -= 1
                    let frame = frames[depth]
                    r[6] = frame.r6
                    r[7] = frame.r7
                    r[8] = frame.r8
                    r[9] = frame.r9
                    r[10] = UInt64(AddressSpace.Well.stack.rawValue) << 32 | UInt64((depth + 1) * frameSize)
                    memory.setLimit(AddressSpace.Well.stack.rawValue, size: UInt64((depth + 1) * frameSize))
                    pc = frame.returnIndex
                    if frame.program != programID {
                        self.executed = executed
                        return .resume(program: frame.program, at: pc, depth: depth)
                    }

                case .lddwSecondSlot:
                    preconditionFailure("validation lets no jump reach the second slot of an lddw (pc \(here))")
                }
            }
        } catch {
            // A helper that threw may have run callbacks: self.executed then counts them
            // and the local count is stale. Counts only grow, so the larger one is right.
            self.executed = max(self.executed, executed)
            throw error
        }
    }

    @inline(__always)
    private func pushFrame(returnTo: Int, program: Int, depth: inout Int, maxDepth: Int, pc: Int) throws(ExecutionFault)
    {
        guard depth + 1 < maxDepth else { throw ExecutionFault(.callDepthExceeded(limit: maxDepth), pc: pc) }
        let r = registers
        frames[depth] = Frame(returnIndex: returnTo, program: program, r6: r[6], r7: r[7], r8: r[8], r9: r[9])
        depth += 1
        deepestFrame = max(deepestFrame, depth)
        r[10] = machine.framePointer(depth: depth)
        machine.enterFrame(depth: depth)
    }

    /// Calls helper `id`; r1-r5 keep their values (as in the kernel's interpreter).
    private func callHelper(_ id: Int64, depth: Int, program: Int, pc: Int) throws(ExecutionFault) -> UInt64 {
        guard let helper = machine.helpers[id] else {
            throw ExecutionFault(
                .unknownHelper(id: id, name: HelperNames.name(of: Int32(truncatingIfNeeded: id))), pc: pc)
        }
        let r = registers
        var call = HelperCall(
            machine: machine, pc: pc, name: helper.name, registers: (r[1], r[2], r[3], r[4], r[5]), engine: self)
        let saved = (depthAtCall, programAtCall)
        (depthAtCall, programAtCall) = (depth, program)
        defer { (depthAtCall, programAtCall) = saved }
        return try helper.function(&call)
    }

    /// LD_ABS / LD_IND: a big-endian load from the packet at imm (+ src), or nil when out of range.
    private func legacyLoad(_ i: DecodedInstruction, _ r: UnsafeMutablePointer<UInt64>) -> UInt64? {
        let spec = InstructionSet.spec(for: i.operation)
        var offset = i.immediate
        if spec.form == .loadIndirect {
            offset = Int64(Int32(truncatingIfNeeded: r[Int(i.src)] &+ UInt64(bitPattern: i.immediate)))
        }
        let size = spec.accessSize
        return machine.legacyPacketLoad(offset: offset, size: size)
    }
}

// MARK: - Arithmetic with the RFC's edge cases

@inline(__always) private func lo(_ value: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: value) }
@inline(__always) private func sx(_ value: UInt64) -> Int64 { Int64(bitPattern: value) }
@inline(__always) private func sx32(_ value: UInt64) -> Int32 { Int32(truncatingIfNeeded: value) }
@inline(__always) private func offset(_ i: DecodedInstruction) -> UInt64 { UInt64(bitPattern: Int64(i.offset)) }

/// Signed division: by zero gives 0; INT64_MIN / -1 gives INT64_MIN (RFC 9669 4.1).
@inline(__always)
private func sdiv64(_ a: UInt64, _ b: UInt64) -> UInt64 {
    let x = Int64(bitPattern: a)
    let y = Int64(bitPattern: b)
    if y == 0 { return 0 }
    if y == -1 { return 0 &- a }
    return UInt64(bitPattern: x / y)
}

/// Signed modulo: by zero leaves the dividend; x % -1 is 0. The result takes the dividend's sign.
@inline(__always)
private func smod64(_ a: UInt64, _ b: UInt64) -> UInt64 {
    let x = Int64(bitPattern: a)
    let y = Int64(bitPattern: b)
    if y == 0 { return a }
    if y == -1 { return 0 }
    return UInt64(bitPattern: x % y)
}

@inline(__always)
private func sdiv32(_ a: UInt32, _ b: UInt32) -> UInt32 {
    let x = Int32(bitPattern: a)
    let y = Int32(bitPattern: b)
    if y == 0 { return 0 }
    if y == -1 { return 0 &- a }
    return UInt32(bitPattern: x / y)
}

@inline(__always)
private func smod32(_ a: UInt32, _ b: UInt32) -> UInt32 {
    let x = Int32(bitPattern: a)
    let y = Int32(bitPattern: b)
    if y == 0 { return a }
    if y == -1 { return 0 }
    return UInt32(bitPattern: x % y)
}
