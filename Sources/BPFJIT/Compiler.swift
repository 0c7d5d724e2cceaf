import BPFCore
import BPFRuntime

/// Machine code for one program, before it is placed in executable memory.
struct CompiledProgram: Sendable {
    var code: [UInt8]
    /// The code offset of each instruction slot's first byte (an `lddw`'s second slot
    /// has an empty range at the end of the first's), for every unit one after the other:
    /// unit u's slot i is at index `unitBases[u] + i`.
    var instructionOffsets: [Int]
    /// Where each unit's slots start in the global numbering. Unit 0 is the program; unit
    /// k > 0 is `machine.programs[k - 1]`, compiled in for tail calls. Generated code names
    /// instructions by their global number (`slowPC`).
    var unitBases: [Int]
    /// The program's own slot count (unit 0), for listings.
    var mainCount: Int
    /// The end of the main body: what follows are out-of-line paths and thunks.
    var bodyEnd: Int
    /// Named ranges after the body, for listings: slow paths (with their instruction) and thunks.
    var outOfLine: [(name: String, pc: Int?, start: Int)]
    /// For each slot: instructions in its basic block after it. The JIT charges a block
    /// on entry, so a run that stops inside one has executed its charge minus this.
    var tailAfter: [Int32]
    /// The frame layout the code was compiled for.
    var frameSize: Int
    var maxDepth: Int

    /// Offset of the entry sequence: `UInt64 entry(function code address)`.
    static let entryOffset = 0
}

/// Compiles a validated program to x86-64. The code assumes the register map and context
/// layout in Layout.swift, and the context page `contextDistance` bytes before the code.
struct Compiler {
    /// The program, then the programs a tail call may reach (docs/jit.md, "Tail calls").
    let units: [Program]
    let frameSize: Int
    let maxDepth: Int
    let contextDistance: Int

    /// Sizes and emits until the layout is stable (at most a handful of passes), then
    /// patches jumps through the relocation list.
    func compile() throws(JITError) -> CompiledProgram {
        let blocks = BasicBlocks(units)
        var layout: X86Layout? = nil
        var pass = Pass(compiler: self, blocks: blocks, previous: nil)
        for _ in 0..<16 {
            pass = Pass(compiler: self, blocks: blocks, previous: layout)
            pass.emitAll()
            if let layout, layout.size == pass.assembler.offset { break }
            layout = pass.assembler.layout
        }
        // rel32 jumps and RIP-relative operands reach +-2 GiB; stay well inside.
        guard pass.assembler.offset < 1 << 30 else { throw .codeTooLarge(bytes: pass.assembler.offset) }
        return CompiledProgram(
            code: pass.assembler.finish(), instructionOffsets: pass.instructionOffsets, unitBases: blocks.bases,
            mainCount: units[0].count, bodyEnd: pass.bodyEnd, outOfLine: pass.outOfLine, tailAfter: blocks.tailAfter,
            frameSize: frameSize, maxDepth: maxDepth)
    }
}

/// Basic blocks, for the budget: a block is charged its length when it is entered.
/// Leaders are the entry, function entries, jump targets, and every instruction after a
/// jump, a call or an exit (so a fault inside a callee or a callback never leaves a
/// caller's charged-but-unexecuted tail behind).
struct BasicBlocks {
    /// For each slot, the block length to charge there, or 0 when it is not a leader.
    var charge: [Int32] = []
    var tailAfter: [Int32] = []
    /// Each unit's first slot in the global numbering.
    var bases: [Int] = []

    /// Every unit's blocks, one after the other (each unit's entry is a leader).
    init(_ units: [Program]) {
        for program in units {
            bases.append(charge.count)
            let unit = BasicBlocks(program)
            charge += unit.charge
            tailAfter += unit.tailAfter
        }
    }

    init(_ program: Program) {
        let code = program.decoded
        let count = code.count
        var leader = [Bool](repeating: false, count: count + 1)
        leader[0] = true
        for entry in program.functionEntries { leader[entry] = true }
        for (pc, instruction) in code.enumerated() {
            switch instruction.operation {
            case .ja, .ja32, .mayGoto:
                leader[Int(instruction.offset)] = true
                leader[pc + 1] = true
            case .exit, .callHelper, .callLocal, .callx, .callKfunc:
                if instruction.operation == .callLocal { leader[Int(instruction.offset)] = true }
                leader[pc + 1] = true
            case let operation
            where InstructionSet.spec(for: operation).form == .jumpImmediate
                || InstructionSet.spec(for: operation).form == .jumpRegister:
                leader[Int(instruction.offset)] = true
                leader[pc + 1] = true
            default:
                break
            }
        }
        charge = [Int32](repeating: 0, count: count)
        tailAfter = [Int32](repeating: 0, count: count)
        var pc = count - 1
        var after: Int32 = 0  // instructions after pc in its block
        while pc >= 0 {
            let counts: Int32 = code[pc].operation == .lddwSecondSlot ? 0 : 1
            tailAfter[pc] = after
            if leader[pc] {
                charge[pc] = after + counts
                after = 0
            } else {
                after += counts
            }
            pc -= 1
        }
        // A second slot shares its lddw's tail.
        for pc in 0..<count where code[pc].operation == .lddwSecondSlot { tailAfter[pc] = tailAfter[pc - 1] }
    }
}

/// One emission pass over the program.
private struct Pass {
    let compiler: Compiler
    let blocks: BasicBlocks
    var assembler: X86Assembler
    var instructionOffsets: [Int] = []
    var bodyEnd = 0
    var outOfLine: [(name: String, pc: Int?, start: Int)] = []

    // Labels, made in the same order every pass so the layout lines up.
    var instructionLabels: [X86Label] = []
    let epilogue: X86Label
    let statusExit: X86Label
    let memoryThunk: X86Label
    let helperThunk: X86Label
    let raiseThunk: X86Label
    /// Out-of-line code, emitted after the body: (name, pc, emitter).
    var stubs: [(String, Int, (inout Pass) -> Void)] = []

    init(compiler: Compiler, blocks: BasicBlocks, previous: X86Layout?) {
        self.compiler = compiler
        self.blocks = blocks
        assembler = X86Assembler(previous: previous)
        epilogue = assembler.makeLabel()
        statusExit = assembler.makeLabel()
        memoryThunk = assembler.makeLabel()
        helperThunk = assembler.makeLabel()
        raiseThunk = assembler.makeLabel()
        for _ in 0..<blocks.charge.count { instructionLabels.append(assembler.makeLabel()) }
    }

    /// The global number of the current unit's slot 0, while its body is emitted: jump
    /// and call targets are relative to it. Stubs, emitted later, capture global numbers.
    var unitBase = 0

    /// The label of slot `local` of the unit being emitted.
    func target(_ local: Int32) -> X86Label { instructionLabels[unitBase + Int(local)] }

    /// A context field as a RIP-relative operand.
    func context(_ field: Int) -> X86Memory { .rip(field - compiler.contextDistance) }

    mutating func emitAll() {
        emitEntry()
        for (unit, program) in compiler.units.enumerated() {
            unitBase = blocks.bases[unit]
            for (local, instruction) in program.decoded.enumerated() {
                let pc = unitBase + local
                instructionOffsets.append(assembler.offset)
                assembler.bind(instructionLabels[pc])
                if blocks.charge[pc] > 0 { emitCharge(blocks.charge[pc], pc: pc) }
                emit(instruction, pc: pc)
            }
            // Falling through the last instruction: the interpreter reports the last slot.
            raise(.fellOffEnd, pc: unitBase + program.count - 1)
        }
        bodyEnd = assembler.offset
        var index = 0
        while index < stubs.count {
            let (name, pc, body) = stubs[index]
            outOfLine.append((name, pc, assembler.offset))
            body(&self)
            index += 1
        }
        emitThunks()
    }

    mutating func stub(_ name: String, pc: Int, _ body: @escaping (inout Pass) -> Void) -> X86Label {
        let label = assembler.makeLabel()
        stubs.append(
            (
                name, pc,
                { pass in
                    pass.assembler.bind(label)
                    body(&pass)
                }
            ))
        return label
    }

    // MARK: - Registers

    func register(_ bpf: UInt8) -> X86Register {
        precondition(bpf < 10, "r10 has no register; read it with source(_:into:)")
        return RegisterMap.bpf[Int(bpf)]
    }

    /// The x86 register holding BPF register `bpf`; r10 is computed into `scratch`.
    mutating func source(_ bpf: UInt8, into scratch: X86Register) -> X86Register {
        if bpf == 10 {
            loadFramePointer(into: scratch)
            return scratch
        }
        return register(bpf)
    }

    /// guest r10 = host frame pointer + guestBias.
    mutating func loadFramePointer(into destination: X86Register) {
        assembler.mov(.qword, destination, context(ContextLayout.guestBias))  // mov dst, [rip+guestBias]
        assembler.arithmetic(.add, .qword, .register(destination), RegisterMap.hostFrame)  // add dst, rbp
    }

    // MARK: - Budget and faults

    /// `sub r10, len; jb exhausted`: charge the block about to run. On exhaustion the
    /// budget is restored (the block did not run) and the run faults at its first instruction.
    mutating func emitCharge(_ length: Int32, pc: Int) {
        assembler.arithmetic(.sub, .qword, .register(RegisterMap.budget), immediate: length)
        let exhausted = stub("budget", pc: pc) { pass in
            pass.assembler.arithmetic(.add, .qword, .register(RegisterMap.budget), immediate: length)
            pass.raise(.budget, pc: pc)
        }
        assembler.jcc(.below, exhausted)
    }

    /// Records the fault's instruction and code and leaves through the raise thunk.
    mutating func raise(_ code: RaiseCode, pc: Int) {
        assembler.mov(.dword, context(ContextLayout.slowPC), immediate: Int32(pc))
        assembler.mov(.dword, context(ContextLayout.faultCode), immediate: code.rawValue)
        assembler.jmp(raiseThunk)
    }

    mutating func setSlowPC(_ pc: Int) {
        assembler.mov(.dword, context(ContextLayout.slowPC), immediate: Int32(pc))
    }

    // MARK: - One instruction

    mutating func emit(_ i: DecodedInstruction, pc: Int) {
        let op = i.operation
        let imm = Int32(truncatingIfNeeded: i.immediate)
        switch op {
        // ALU, 64 and 32 bits
        case .add64Imm, .sub64Imm, .and64Imm, .or64Imm, .xor64Imm:
            assembler.arithmetic(arithmetic(op), .qword, .register(register(i.dst)), immediate: imm)
        case .add32Imm, .sub32Imm, .and32Imm, .or32Imm, .xor32Imm:
            assembler.arithmetic(arithmetic(op), .dword, .register(register(i.dst)), immediate: imm)
        case .add64Reg, .sub64Reg, .and64Reg, .or64Reg, .xor64Reg:
            let s = source(i.src, into: .r11)
            assembler.arithmetic(arithmetic(op), .qword, .register(register(i.dst)), s)
        case .add32Reg, .sub32Reg, .and32Reg, .or32Reg, .xor32Reg:
            let s = source(i.src, into: .r11)
            assembler.arithmetic(arithmetic(op), .dword, .register(register(i.dst)), s)
        case .mul64Imm, .mul32Imm:
            let d = register(i.dst)
            assembler.imul(op == .mul64Imm ? .qword : .dword, d, d, immediate: imm)
        case .mul64Reg, .mul32Reg:
            let s = source(i.src, into: .r11)
            assembler.imul(op == .mul64Reg ? .qword : .dword, register(i.dst), s)
        case .div64Imm, .div64Reg, .mod64Imm, .mod64Reg, .sdiv64Imm, .sdiv64Reg, .smod64Imm, .smod64Reg,
            .div32Imm, .div32Reg, .mod32Imm, .mod32Reg, .sdiv32Imm, .sdiv32Reg, .smod32Imm, .smod32Reg:
            emitDivision(i, pc: pc)
        case .lsh64Imm, .rsh64Imm, .arsh64Imm:
            let amount = UInt8(truncatingIfNeeded: imm & 63)
            if amount != 0 { assembler.shift(shift(op), .qword, register(i.dst), by: amount) }
        case .lsh32Imm, .rsh32Imm, .arsh32Imm:
            let amount = UInt8(truncatingIfNeeded: imm & 31)
            let d = register(i.dst)
            if amount != 0 {
                assembler.shift(shift(op), .dword, d, by: amount)
            } else {
                assembler.mov(.dword, d, d)  // a shift by 0 still zero-extends
            }
        case .lsh64Reg, .rsh64Reg, .arsh64Reg:
            shiftCount(i.src)
            assembler.shiftByCL(shift(op), .qword, register(i.dst))
        case .lsh32Reg, .rsh32Reg, .arsh32Reg:
            shiftCount(i.src)
            let d = register(i.dst)
            assembler.shiftByCL(shift(op), .dword, d)
            // A shift by cl = 0 leaves flags and, on some CPUs, the register untouched:
            // zero-extend explicitly, as every BPF ALU32 result must be.
            assembler.mov(.dword, d, d)
        case .neg64: assembler.unary(.neg, .qword, register(i.dst))
        case .neg32: assembler.unary(.neg, .dword, register(i.dst))
        case .mov64Imm: assembler.load(register(i.dst), constant: UInt64(bitPattern: i.immediate))
        case .mov32Imm:
            let value = UInt32(bitPattern: imm)
            if value == 0 {
                assembler.arithmetic(.xor, .dword, .register(register(i.dst)), register(i.dst))
            } else {
                assembler.mov32(register(i.dst), immediate: value)
            }
        case .mov64Reg:
            if i.src == 10 {
                loadFramePointer(into: register(i.dst))
            } else if i.src != i.dst {
                assembler.mov(.qword, register(i.dst), register(i.src))
            }
        case .mov32Reg:
            let s = source(i.src, into: .r11)
            assembler.mov(.dword, register(i.dst), s)
        case .movsx8To64, .movsx16To64, .movsx32To64, .movsx8To32, .movsx16To32:
            let s = source(i.src, into: .r11)
            let (width, from): (X86Width, X86Width) =
                switch op {
                case .movsx8To64: (.qword, .byte)
                case .movsx16To64: (.qword, .word)
                case .movsx32To64: (.qword, .dword)
                case .movsx8To32: (.dword, .byte)
                default: (.dword, .word)
                }
            assembler.movsx(width, register(i.dst), .register(s), from: from)

        // Byte order
        case .le16: assembler.movzx(register(i.dst), .register(register(i.dst)), from: .word)
        case .le32: assembler.mov(.dword, register(i.dst), register(i.dst))
        case .le64: break
        case .be16, .bswap16:
            let d = register(i.dst)
            assembler.shift(.ror, .word, d, by: 8)
            assembler.movzx(d, .register(d), from: .word)
        case .be32, .bswap32: assembler.bswap(.dword, register(i.dst))
        case .be64, .bswap64: assembler.bswap(.qword, register(i.dst))

        // Memory
        case .ldxb, .ldxh, .ldxw, .ldxdw, .ldxsb, .ldxsh, .ldxsw,
            .loadAcquire8, .loadAcquire16, .loadAcquire32, .loadAcquire64:
            emitLoad(i, pc: pc)
        case .stb, .sth, .stw, .stdw, .stxb, .stxh, .stxw, .stxdw,
            .storeRelease8, .storeRelease16, .storeRelease32, .storeRelease64:
            emitStore(i, pc: pc)
        case .atomicAdd32, .atomicOr32, .atomicAnd32, .atomicXor32, .atomicFetchAdd32, .atomicFetchOr32,
            .atomicFetchAnd32, .atomicFetchXor32, .atomicXchg32, .atomicCmpxchg32,
            .atomicAdd64, .atomicOr64, .atomicAnd64, .atomicXor64, .atomicFetchAdd64, .atomicFetchOr64,
            .atomicFetchAnd64, .atomicFetchXor64, .atomicXchg64, .atomicCmpxchg64:
            emitAtomic(i, pc: pc)
        case .lddw: assembler.load(register(i.dst), constant: UInt64(bitPattern: i.immediate))
        case .lddwSecondSlot: break
        case .ldabsb, .ldabsh, .ldabsw, .ldindb, .ldindh, .ldindw:
            emitLegacyLoad(i, pc: pc)

        // Jumps
        case .ja, .ja32: assembler.jmp(target(i.offset))
        case .mayGoto:
            // Jump once the allowance is used up; otherwise use one unit and fall through.
            assembler.arithmetic(.cmp, .qword, .memory(context(ContextLayout.mayGoto)), immediate: 0)
            assembler.jcc(.equal, target(i.offset))
            assembler.arithmetic(.sub, .qword, .memory(context(ContextLayout.mayGoto)), immediate: 1)
        case .jeq64Imm, .jeq64Reg, .jgt64Imm, .jgt64Reg, .jge64Imm, .jge64Reg, .jset64Imm, .jset64Reg,
            .jne64Imm, .jne64Reg, .jsgt64Imm, .jsgt64Reg, .jsge64Imm, .jsge64Reg,
            .jlt64Imm, .jlt64Reg, .jle64Imm, .jle64Reg, .jslt64Imm, .jslt64Reg, .jsle64Imm, .jsle64Reg,
            .jeq32Imm, .jeq32Reg, .jgt32Imm, .jgt32Reg, .jge32Imm, .jge32Reg, .jset32Imm, .jset32Reg,
            .jne32Imm, .jne32Reg, .jsgt32Imm, .jsgt32Reg, .jsge32Imm, .jsge32Reg,
            .jlt32Imm, .jlt32Reg, .jle32Imm, .jle32Reg, .jslt32Imm, .jslt32Reg, .jsle32Imm, .jsle32Reg:
            emitConditionalJump(i)

        // Calls and exit
        case .callHelper:
            setSlowPC(pc)
            assembler.call(helperThunk)
        case .callLocal:
            emitLocalCall(pc: pc, target: .label(target(i.offset)))
        case .callx:
            emitCallx(i, pc: pc)
        case .callKfunc:
            raise(.kfunc, pc: pc)
        case .exit:
            assembler.ret()
        }
    }

    func arithmetic(_ op: Operation) -> X86Arithmetic {
        switch op {
        case .add64Imm, .add64Reg, .add32Imm, .add32Reg: .add
        case .sub64Imm, .sub64Reg, .sub32Imm, .sub32Reg: .sub
        case .and64Imm, .and64Reg, .and32Imm, .and32Reg: .and
        case .or64Imm, .or64Reg, .or32Imm, .or32Reg: .or
        default: .xor
        }
    }

    func shift(_ op: Operation) -> X86Shift {
        switch op {
        case .lsh64Imm, .lsh64Reg, .lsh32Imm, .lsh32Reg: .shl
        case .rsh64Imm, .rsh64Reg, .rsh32Imm, .rsh32Reg: .shr
        default: .sar
        }
    }

    /// ecx = the shift count (the CPU masks it to 5 or 6 bits, as BPF does).
    mutating func shiftCount(_ bpf: UInt8) {
        if bpf == 10 {
            loadFramePointer(into: .rcx)
        } else {
            assembler.mov(.dword, .rcx, register(bpf))
        }
    }

    // MARK: - Division

    /// div/mod/sdiv/smod with the RFC's edge cases: x / 0 = 0, x % 0 = x, and for signed
    /// operations INT_MIN / -1 = INT_MIN (negation wraps) and x % -1 = 0. The edge cases
    /// are out of line; the x86 divide needs rax and rdx (BPF r0 and r3), which are saved
    /// in a push and rcx unless they are the destination.
    mutating func emitDivision(_ i: DecodedInstruction, pc: Int) {
        let op = i.operation
        let spec = InstructionSet.spec(for: op)
        let width: X86Width = spec.is32Bit ? .dword : .qword
        let signed = [.sdiv64Imm, .sdiv64Reg, .smod64Imm, .smod64Reg, .sdiv32Imm, .sdiv32Reg, .smod32Imm, .smod32Reg]
            .contains(op)
        let quotient = [.div64Imm, .div64Reg, .sdiv64Imm, .sdiv64Reg, .div32Imm, .div32Reg, .sdiv32Imm, .sdiv32Reg]
            .contains(op)
        let d = register(i.dst)

        // The edge cases' results.
        func byZero(_ pass: inout Pass) {
            if quotient {
                pass.assembler.arithmetic(.xor, .dword, .register(d), d)  // x / 0 = 0
            } else if width == .dword {
                pass.assembler.mov(.dword, d, d)  // x % 0 = x, zero-extended
            }
        }
        func byMinusOne(_ pass: inout Pass) {
            if quotient {
                pass.assembler.unary(.neg, width, d)  // x / -1 = -x (INT_MIN stays INT_MIN)
            } else {
                pass.assembler.arithmetic(.xor, .dword, .register(d), d)  // x % -1 = 0
            }
        }

        let done = assembler.makeLabel()
        if spec.form == .aluImmediate {
            let value: Int64 = width == .qword ? i.immediate : Int64(Int32(truncatingIfNeeded: i.immediate))
            let isZero = width == .qword ? value == 0 : UInt32(truncatingIfNeeded: value) == 0
            if isZero {
                byZero(&self)
                assembler.bind(done)
                return
            }
            if signed && value == -1 {
                byMinusOne(&self)
                assembler.bind(done)
                return
            }
            if width == .qword {
                assembler.load(.r11, constant: UInt64(bitPattern: value))
            } else {
                assembler.mov32(.r11, immediate: UInt32(truncatingIfNeeded: value))
            }
        } else {
            let s = source(i.src, into: .r11)
            if s != .r11 { assembler.mov(width, .r11, s) }
            assembler.test(width, .r11, .r11)
            let zero = stub("divide by zero", pc: pc) { pass in
                byZero(&pass)
                pass.assembler.jmp(done)
            }
            assembler.jcc(.equal, zero)
            if signed {
                assembler.arithmetic(.cmp, width, .register(.r11), immediate: -1)
                let minusOne = stub("divide by -1", pc: pc) { pass in
                    byMinusOne(&pass)
                    pass.assembler.jmp(done)
                }
                assembler.jcc(.equal, minusOne)
            }
        }
        let saveRAX = d != .rax
        let saveRDX = d != .rdx
        if saveRDX { assembler.mov(.qword, .rcx, .rdx) }
        if saveRAX {
            assembler.push(.rax)
            assembler.mov(.qword, .rax, d)
        }
        if signed {
            if width == .qword { assembler.cqo() } else { assembler.cdq() }
        } else {
            assembler.arithmetic(.xor, .dword, .register(.rdx), .rdx)
        }
        assembler.unary(signed ? .idiv : .div, width, .r11)
        let result: X86Register = quotient ? .rax : .rdx
        if d != result { assembler.mov(.qword, d, result) }
        if saveRAX { assembler.pop(.rax) }
        if saveRDX { assembler.mov(.qword, .rdx, .rcx) }
        assembler.bind(done)
    }

    // MARK: - Memory

    /// Whether `[r10 + offset]` of `size` bytes lies inside the current frame, which is
    /// always accessible (r10 is read-only, and the stack's limit is r10's offset).
    func insideFrame(_ offset: Int32, size: Int) -> Bool {
        Int(offset) >= -compiler.frameSize && Int(offset) + size <= 0
    }

    /// rcx = the guest address `base + offset`.
    mutating func guestAddress(base: UInt8, offset: Int32) {
        if base == 10 {
            loadFramePointer(into: .rcx)
            if offset != 0 { assembler.arithmetic(.add, .qword, .register(.rcx), immediate: offset) }
        } else if offset == 0 {
            assembler.mov(.qword, .rcx, register(base))
        } else {
            assembler.lea(.qword, .rcx, .at(register(base), offset))
        }
    }

    /// The inline check (docs/jit.md, "Memory"). Leaves r11 = host address + size, so the
    /// access is `[r11 - size]`; jumps to `slow` when the region table refuses.
    ///
    ///     lea   rcx, [base + offset]        ; guest address
    ///     mov   r11d, ecx                   ; offset within the region
    ///     shr   rcx, 32                     ; region number
    ///     cmp   ecx, [rip + capacity]
    ///     jae   slow
    ///     shl   ecx, 5                      ; 32-byte table entries
    ///     add   r11, size                   ; end of the access (< 2^32 + 8: no overflow)
    ///     cmp   r11, [r12 + rcx + limit]    ; readLimit (+8) or writeLimit (+16)
    ///     ja    slow
    ///     add   r11, [r12 + rcx]            ; + host base
    mutating func checkedAddress(base: UInt8, offset: Int32, size: Int, read: Bool, write: Bool, slow: X86Label) {
        guestAddress(base: base, offset: offset)
        assembler.mov(.dword, .r11, .rcx)
        assembler.shift(.shr, .qword, .rcx, by: 32)
        assembler.arithmetic(.cmp, .dword, .rcx, context(ContextLayout.capacity))
        assembler.jcc(.aboveOrEqual, slow)
        assembler.shift(.shl, .dword, .rcx, by: 5)
        assembler.arithmetic(.add, .qword, .register(.r11), immediate: Int32(size))
        if read {
            assembler.arithmetic(.cmp, .qword, .r11, .at(RegisterMap.regionTable, index: .rcx, 8))
            assembler.jcc(.above, slow)
        }
        if write {
            assembler.arithmetic(.cmp, .qword, .r11, .at(RegisterMap.regionTable, index: .rcx, 16))
            assembler.jcc(.above, slow)
        }
        assembler.arithmetic(.add, .qword, .r11, .at(RegisterMap.regionTable, index: .rcx, 0))
    }

    func width(_ size: Int) -> X86Width { X86Width(rawValue: size)! }

    mutating func emitLoad(_ i: DecodedInstruction, pc: Int) {
        let spec = InstructionSet.spec(for: i.operation)
        let size = spec.accessSize
        let signed = [.ldxsb, .ldxsh, .ldxsw].contains(i.operation)
        let d = register(i.dst)
        if i.src == 10 && insideFrame(i.offset, size: size) {
            loadValue(d, .memory(.at(RegisterMap.hostFrame, i.offset)), size: size, signed: signed)
            return
        }
        let resume = assembler.makeLabel()
        let (src, offset) = (i.src, i.offset)
        let slow = stub("slow load", pc: pc) { pass in
            pass.guestAddress(base: src, offset: offset)
            pass.setSlowPC(pc)
            pass.assembler.call(pass.memoryThunk)  // r11 = the value, zero-extended
            // The slow path's value is already as wide as it should be: a context field
            // such as xdp_md.data is a 32-bit load that yields a 64-bit pointer, as the
            // kernel's rewrite does. Only sign-extending loads narrow it.
            if signed {
                pass.loadValue(d, .register(.r11), size: size, signed: true)
            } else {
                pass.assembler.mov(.qword, d, .r11)  // mov d, r11
            }
            pass.assembler.jmp(resume)
        }
        checkedAddress(base: i.src, offset: i.offset, size: size, read: true, write: false, slow: slow)
        loadValue(d, .memory(.at(.r11, Int32(-size))), size: size, signed: signed)
        assembler.bind(resume)
    }

    /// d = the `size`-byte value at `source`, zero- or sign-extended to 64 bits.
    mutating func loadValue(_ d: X86Register, _ source: X86Operand, size: Int, signed: Bool) {
        switch (size, signed) {
        case (1, false): assembler.movzx(d, source, from: .byte)
        case (2, false): assembler.movzx(d, source, from: .word)
        case (1, true): assembler.movsx(.qword, d, source, from: .byte)
        case (2, true): assembler.movsx(.qword, d, source, from: .word)
        case (4, true): assembler.movsx(.qword, d, source, from: .dword)
        case (4, false):
            switch source {
            case .memory(let m): assembler.mov(.dword, d, m)
            case .register(let r): assembler.mov(.dword, d, r)
            }
        default:
            switch source {
            case .memory(let m): assembler.mov(.qword, d, m)
            case .register(let r): assembler.mov(.qword, d, r)
            }
        }
    }

    mutating func emitStore(_ i: DecodedInstruction, pc: Int) {
        let spec = InstructionSet.spec(for: i.operation)
        let size = spec.accessSize
        let immediate = spec.form == .storeImmediate
        let imm = Int32(truncatingIfNeeded: i.immediate)
        let target: X86Memory
        if i.dst == 10 && insideFrame(i.offset, size: size) {
            target = .at(RegisterMap.hostFrame, i.offset)
        } else {
            let resume = assembler.makeLabel()
            let (dst, src, offset) = (i.dst, i.src, i.offset)
            let slow = stub("slow store", pc: pc) { pass in
                pass.guestAddress(base: dst, offset: offset)
                if !immediate {
                    // The value travels in r11 (an immediate is read from the instruction).
                    if src == 10 {
                        pass.loadFramePointer(into: .r11)
                    } else {
                        pass.assembler.mov(.qword, .r11, pass.register(src))
                    }
                }
                pass.setSlowPC(pc)
                pass.assembler.call(pass.memoryThunk)
                pass.assembler.jmp(resume)
            }
            checkedAddress(base: i.dst, offset: i.offset, size: size, read: false, write: true, slow: slow)
            target = .at(.r11, Int32(-size))
            storeValue(target, size: size, immediate: immediate ? imm : nil, src: i.src)
            assembler.bind(resume)
            return
        }
        storeValue(target, size: size, immediate: immediate ? imm : nil, src: i.src)
    }

    mutating func storeValue(_ target: X86Memory, size: Int, immediate: Int32?, src: UInt8) {
        if let immediate {
            assembler.mov(width(size), target, immediate: immediate)
        } else {
            let s = source(src, into: .rcx)
            assembler.mov(width(size), target, s)
        }
    }

    mutating func emitAtomic(_ i: DecodedInstruction, pc: Int) {
        let op = i.operation
        let size = InstructionSet.spec(for: op).accessSize
        let w = width(size)
        let target: X86Memory
        if i.dst == 10 && insideFrame(i.offset, size: size) {
            target = .at(RegisterMap.hostFrame, i.offset)
        } else {
            let operation = assembler.makeLabel()
            let (dst, offset) = (i.dst, i.offset)
            let slow = stub("slow atomic", pc: pc) { pass in
                pass.guestAddress(base: dst, offset: offset)
                pass.setSlowPC(pc)
                pass.assembler.call(pass.memoryThunk)  // r11 = the host address, or a fault
                pass.assembler.arithmetic(.add, .qword, .register(.r11), immediate: Int32(size))
                pass.assembler.jmp(operation)
            }
            checkedAddress(base: i.dst, offset: i.offset, size: size, read: true, write: true, slow: slow)
            assembler.bind(operation)
            target = .at(.r11, Int32(-size))
        }
        switch op {
        case .atomicAdd32, .atomicOr32, .atomicAnd32, .atomicXor32, .atomicAdd64, .atomicOr64, .atomicAnd64,
            .atomicXor64:
            let s = source(i.src, into: .rcx)
            let x86: X86Arithmetic =
                switch op {
                case .atomicAdd32, .atomicAdd64: .add
                case .atomicOr32, .atomicOr64: .or
                case .atomicAnd32, .atomicAnd64: .and
                default: .xor
                }
            assembler.arithmetic(x86, w, .memory(target), s, lock: true)
        case .atomicFetchAdd32, .atomicFetchAdd64:
            assembler.lockXadd(w, target, register(i.src))  // src = old value
        case .atomicFetchOr32, .atomicFetchAnd32, .atomicFetchXor32, .atomicFetchOr64, .atomicFetchAnd64,
            .atomicFetchXor64:
            // One emulated CPU: read the old value, then update with a locked operation.
            let x86: X86Arithmetic =
                switch op {
                case .atomicFetchOr32, .atomicFetchOr64: .or
                case .atomicFetchAnd32, .atomicFetchAnd64: .and
                default: .xor
                }
            let s = register(i.src)
            assembler.mov(w, .rcx, target)
            assembler.arithmetic(x86, w, .memory(target), s, lock: true)
            assembler.mov(w, s, .rcx)  // 32-bit: zero-extends
        case .atomicXchg32, .atomicXchg64:
            assembler.xchg(w, target, register(i.src))
        case .atomicCmpxchg32, .atomicCmpxchg64:
            let s = source(i.src, into: .rcx)
            assembler.lockCmpxchg(w, target, s)
            // r0 = the old value, zero-extended (eax is not written when the compare succeeds).
            if w == .dword { assembler.mov(.dword, .rax, .rax) }
        default:
            preconditionFailure("not an atomic: \(op)")
        }
    }

    /// LD_ABS / LD_IND: out of line, through `machine.legacyPacketLoad`. rcx = the offset
    /// (imm, or the 32-bit sum src + imm, sign-extended); r0 = the value, or the run ends.
    mutating func emitLegacyLoad(_ i: DecodedInstruction, pc: Int) {
        let imm = Int32(truncatingIfNeeded: i.immediate)
        if InstructionSet.spec(for: i.operation).form == .loadIndirect {
            let s = source(i.src, into: .rcx)
            assembler.lea(.dword, .rcx, .at(s, imm))
            assembler.movsx(.qword, .rcx, .register(.rcx), from: .dword)
        } else {
            assembler.load(.rcx, constant: UInt64(bitPattern: Int64(imm)))
        }
        setSlowPC(pc)
        assembler.call(memoryThunk)
        assembler.mov(.dword, .rax, .r11)
    }

    // MARK: - Jumps and calls

    mutating func emitConditionalJump(_ i: DecodedInstruction) {
        let spec = InstructionSet.spec(for: i.operation)
        let width: X86Width = spec.is32Bit ? .dword : .qword
        let d = source(i.dst, into: .r11)
        let mnemonic = spec.mnemonic.hasSuffix("32") ? String(spec.mnemonic.dropLast(2)) : spec.mnemonic
        let condition: X86Condition =
            switch mnemonic {
            case "jeq": .equal
            case "jne", "jset": .notEqual
            case "jgt": .above
            case "jge": .aboveOrEqual
            case "jlt": .below
            case "jle": .belowOrEqual
            case "jsgt": .greater
            case "jsge": .greaterOrEqual
            case "jslt": .less
            default: .lessOrEqual  // jsle
            }
        if spec.form == .jumpRegister {
            let s = source(i.src, into: .rcx)
            if mnemonic == "jset" {
                assembler.test(width, d, s)
            } else {
                assembler.arithmetic(.cmp, width, .register(d), s)
            }
        } else {
            let imm = Int32(truncatingIfNeeded: i.immediate)
            if mnemonic == "jset" {
                assembler.test(width, d, immediate: imm)
            } else if imm == 0 {
                assembler.test(width, d, d)  // same flags as cmp d, 0 for every condition used
            } else {
                assembler.arithmetic(.cmp, width, .register(d), immediate: imm)
            }
        }
        assembler.jcc(condition, target(i.offset))
    }

    enum CallTarget {
        case label(X86Label)
        /// The code address is in r11.
        case r11
    }

    /// bpf-to-bpf call: check the depth, save r6-r9 and the frame, move to the next frame
    /// and grow the stack region's limit to it (`machine.enterFrame(depth:)`), call, then
    /// undo all of it. The callee's `exit` is `ret`.
    mutating func emitLocalCall(pc: Int, target: CallTarget) {
        let tooDeep = stub("call depth", pc: pc) { pass in pass.raise(.callDepth, pc: pc) }
        assembler.arithmetic(.cmp, .qword, RegisterMap.hostFrame, context(ContextLayout.frameCeiling))
        assembler.jcc(.above, tooDeep)
        for bpf in RegisterMap.calleeSaved { assembler.push(register(UInt8(bpf))) }
        assembler.push(RegisterMap.hostFrame)  // also keeps rsp 16-byte aligned in the callee
        assembler.arithmetic(.add, .qword, .register(RegisterMap.hostFrame), immediate: Int32(compiler.frameSize))
        setStackLimit()
        let notDeeper = assembler.makeLabel()
        assembler.arithmetic(.cmp, .qword, RegisterMap.hostFrame, context(ContextLayout.deepest))
        assembler.jcc(.belowOrEqual, notDeeper)
        assembler.mov(.qword, context(ContextLayout.deepest), RegisterMap.hostFrame)
        assembler.bind(notDeeper)
        switch target {
        case .label(let label): assembler.call(label)
        case .r11: assembler.call(.register(.r11))
        }
        assembler.pop(RegisterMap.hostFrame)
        for bpf in RegisterMap.calleeSaved.reversed() { assembler.pop(register(UInt8(bpf))) }
        setStackLimit()
    }

    /// The stack region's read and write limits = the current frame's end offset.
    mutating func setStackLimit() {
        let stackEntry = Int32(AddressSpace.Well.stack.rawValue) * 32
        assembler.mov(.qword, .rcx, RegisterMap.hostFrame)
        assembler.arithmetic(.sub, .qword, .rcx, context(ContextLayout.hostStack))
        assembler.mov(.qword, .at(RegisterMap.regionTable, stackEntry + 8), .rcx)
        assembler.mov(.qword, .at(RegisterMap.regionTable, stackEntry + 16), .rcx)
    }

    /// callx: a function address (region 4, validated in Swift against the function
    /// entries), or a helper id (at most Int32.max), else a fault.
    mutating func emitCallx(_ i: DecodedInstruction, pc: Int) {
        if i.dst == 10 {
            loadFramePointer(into: .rcx)
        } else {
            assembler.mov(.qword, .rcx, register(i.dst))
        }
        let function = assembler.makeLabel()
        let done = assembler.makeLabel()
        let bad = stub("bad call target", pc: pc) { pass in
            pass.assembler.mov(.qword, pass.context(ContextLayout.slowValue), .rcx)
            pass.raise(.badCallTarget, pc: pc)
        }
        assembler.mov(.qword, .r11, .rcx)
        assembler.shift(.shr, .qword, .r11, by: 32)
        assembler.arithmetic(.cmp, .dword, .register(.r11), immediate: Int32(AddressSpace.Well.code.rawValue))
        assembler.jcc(.equal, function)
        assembler.mov32(.r11, immediate: UInt32(Int32.max))
        assembler.arithmetic(.cmp, .qword, .register(.rcx), .r11)
        assembler.jcc(.above, bad)
        assembler.mov(.qword, context(ContextLayout.slowValue), .rcx)
        setSlowPC(pc)
        assembler.call(helperThunk)
        assembler.jmp(done)
        assembler.bind(function)
        setSlowPC(pc)
        assembler.call(memoryThunk)  // r11 = the function's code address, or a fault
        emitLocalCall(pc: pc, target: .r11)
        assembler.bind(done)
    }

    // MARK: - Entry, exits and thunks

    /// `UInt64 entry(code address)`, called from Swift with the C calling convention:
    /// saves the callee-saved registers, loads the BPF registers from the context, calls
    /// the function, stores the budget back and returns r0.
    mutating func emitEntry() {
        for register in [X86Register.rbx, .rbp, .r12, .r13, .r14, .r15] { assembler.push(register) }
        assembler.mov(.qword, context(ContextLayout.entryRSP), .rsp)
        assembler.mov(.qword, .r11, .rdi)
        for bpf in 0..<10 {
            assembler.mov(.qword, RegisterMap.bpf[bpf], context(ContextLayout.registers + 8 * bpf))
        }
        assembler.mov(.qword, RegisterMap.hostFrame, context(ContextLayout.hostFrame))
        assembler.mov(.qword, RegisterMap.budget, context(ContextLayout.budget))
        assembler.mov(.qword, RegisterMap.regionTable, context(ContextLayout.table))
        assembler.call(.register(.r11))
        assembler.mov(.qword, context(ContextLayout.budget), RegisterMap.budget)
        assembler.bind(epilogue)
        for register in [X86Register.rbx, .rbp, .r12, .r13, .r14, .r15].reversed() { assembler.pop(register) }
        assembler.ret()
        // A fault or an aborted run: Swift has recorded why; unwind every frame at once.
        assembler.bind(statusExit)
        assembler.mov(.qword, .rsp, context(ContextLayout.entryRSP))
        assembler.arithmetic(.xor, .dword, .register(.rax), .rax)
        assembler.jmp(epilogue)
    }

    mutating func emitThunks() {
        // Memory slow path, LD_ABS/LD_IND and callx resolution. In: rcx = address,
        // r11 = value, slowPC. Out: r11 = the result; every BPF register kept.
        outOfLine.append(("memory thunk", nil, assembler.offset))
        assembler.bind(memoryThunk)
        assembler.mov(.qword, context(ContextLayout.slowAddress), .rcx)
        assembler.mov(.qword, context(ContextLayout.slowValue), .r11)
        callSwift(ContextLayout.memoryFunction, spillCalleeSaved: false)
        assembler.mov(.qword, .r11, .rax)
        for bpf in RegisterMap.callerSaved {
            assembler.mov(.qword, RegisterMap.bpf[bpf], context(ContextLayout.registers + 8 * bpf))
        }
        assembler.ret()

        // Helper calls. In: slowPC (and slowValue = the id, for callx). Out: r0 = the
        // helper's result; r1-r5 keep their values. After a successful bpf_tail_call,
        // Swift has put the target's code address in `tailTarget`: drop the return
        // address and jump there, so the target runs in the caller's frame and its
        // `exit` returns where the caller's would have.
        outOfLine.append(("helper thunk", nil, assembler.offset))
        assembler.bind(helperThunk)
        callSwift(ContextLayout.helperFunction, spillCalleeSaved: true)
        for bpf in RegisterMap.callerSaved where bpf != 0 {
            assembler.mov(.qword, RegisterMap.bpf[bpf], context(ContextLayout.registers + 8 * bpf))
        }
        let tailCall = assembler.makeLabel()
        assembler.mov(.qword, .r11, context(ContextLayout.tailTarget))  // mov r11, [rip+tailTarget]
        assembler.test(.qword, .r11, .r11)
        assembler.jcc(.notEqual, tailCall)
        assembler.ret()
        assembler.bind(tailCall)
        assembler.mov(.qword, context(ContextLayout.tailTarget), immediate: 0)
        assembler.pop(.rcx)  // the return address into the caller's code
        assembler.jmp(.register(.r11))

        // Faults raised by the code itself. In: slowPC, faultCode, slowValue.
        outOfLine.append(("raise thunk", nil, assembler.offset))
        assembler.bind(raiseThunk)
        assembler.mov(.qword, context(ContextLayout.budget), RegisterMap.budget)
        assembler.mov(.qword, .rsp, context(ContextLayout.entryRSP))
        assembler.arithmetic(.sub, .qword, .register(.rsp), immediate: 8)  // 16-byte alignment for the call
        assembler.lea(.qword, .rdi, context(0))
        assembler.call(.memory(context(ContextLayout.raiseFunction)))
        assembler.jmp(statusExit)
    }

    /// Spills what Swift must see or may clobber, calls a Swift slow path with the
    /// context as its argument (rsp aligned to 16 bytes, whatever the caller pushed),
    /// leaves through `statusExit` if it recorded a fault, and restores the budget and the
    /// region table. The caller reloads the BPF registers it needs.
    mutating func callSwift(_ function: Int, spillCalleeSaved: Bool) {
        let bpfs = RegisterMap.callerSaved + (spillCalleeSaved ? RegisterMap.calleeSaved : [])
        for bpf in bpfs {
            assembler.mov(.qword, context(ContextLayout.registers + 8 * bpf), RegisterMap.bpf[bpf])
        }
        assembler.mov(.qword, context(ContextLayout.hostFrame), RegisterMap.hostFrame)
        assembler.mov(.qword, context(ContextLayout.budget), RegisterMap.budget)
        assembler.push(.rbp)
        assembler.mov(.qword, .rbp, .rsp)
        assembler.arithmetic(.and, .qword, .register(.rsp), immediate: -16)
        assembler.lea(.qword, .rdi, context(0))
        assembler.call(.memory(context(function)))
        assembler.mov(.qword, .rsp, .rbp)
        assembler.pop(.rbp)
        assembler.arithmetic(.cmp, .qword, .memory(context(ContextLayout.status)), immediate: 0)
        assembler.jcc(.notEqual, statusExit)
        assembler.mov(.qword, RegisterMap.budget, context(ContextLayout.budget))
        assembler.mov(.qword, RegisterMap.regionTable, context(ContextLayout.table))
    }
}
