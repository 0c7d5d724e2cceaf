/// A pure x86-64 encoder: every function appends the bytes of one instruction to
/// `bytes` and touches nothing else, so its output can be checked byte for byte against
/// a disassembler without executing anything (Tests/BPFJITTests/EncoderTests.swift).
///
/// Each function's comment gives the encoding (Intel SDM notation: `REX.W 01 /r` is an
/// optional REX prefix with W set, opcode 0x01, then a ModRM byte whose reg field is a
/// register) and the assembly it stands for.
///
/// Jumps to labels go through a relocation list: the rel8/rel32 field is written as 0
/// and patched by `finish()`, once every label has an offset. Whether a forward jump is
/// short (rel8) is decided from the previous pass's layout (`X86Layout`); the compiler
/// repeats passes until the code size stops changing, so every short jump is known to
/// fit (code between a jump and its target only ever shrinks from one pass to the next).

/// General-purpose registers, numbered as ModRM and REX number them.
public enum X86Register: UInt8, CaseIterable, Sendable {
    case rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15

    /// The three bits that go into ModRM, SIB or the opcode.
    var low: UInt8 { rawValue & 7 }
    /// The fourth bit, which goes into REX (R, X or B).
    var high: UInt8 { rawValue >> 3 }

    /// The register's name at a width, as Intel syntax (and capstone) spell it.
    public func name(_ width: X86Width) -> String {
        let legacy = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"]
        if rawValue >= 8 {
            let base = "r\(rawValue)"
            switch width {
            case .byte: return base + "b"
            case .word: return base + "w"
            case .dword: return base + "d"
            case .qword: return base
            }
        }
        let stem = legacy[Int(rawValue)]
        switch width {
        case .byte: return ["al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil"][Int(rawValue)]
        case .word: return stem
        case .dword: return "e" + stem
        case .qword: return "r" + stem
        }
    }
}

/// Operand sizes.
public enum X86Width: Int, Sendable, CaseIterable {
    case byte = 1, word = 2, dword = 4, qword = 8

    public var bytes: Int { rawValue }
}

/// A memory operand: `[base + index*scale + displacement]`, or `[rip + displacement]`
/// aimed at an offset from the start of the code.
public struct X86Memory: Sendable, Hashable {
    public enum Base: Sendable, Hashable {
        case register(X86Register)
        /// RIP-relative: the operand is at this offset from the start of the code (it may
        /// be negative: the JIT's context page sits just before its code).
        case rip(Int)
    }

    public var base: Base
    public var index: X86Register?
    /// 1, 2, 4 or 8.
    public var scale: UInt8
    public var displacement: Int32

    public init(base: Base, index: X86Register? = nil, scale: UInt8 = 1, displacement: Int32 = 0) {
        precondition(index != .rsp, "rsp cannot be an index register")
        precondition([1, 2, 4, 8].contains(scale), "scale must be 1, 2, 4 or 8")
        if case .rip = base { precondition(index == nil, "RIP-relative operands have no index") }
        self.base = base
        self.index = index
        self.scale = scale
        self.displacement = displacement
    }

    /// `[base + displacement]`
    public static func at(_ base: X86Register, _ displacement: Int32 = 0) -> X86Memory {
        X86Memory(base: .register(base), displacement: displacement)
    }

    /// `[base + index*scale + displacement]`
    public static func at(_ base: X86Register, index: X86Register, scale: UInt8 = 1, _ displacement: Int32 = 0)
        -> X86Memory
    {
        X86Memory(base: .register(base), index: index, scale: scale, displacement: displacement)
    }

    /// `[rip + ...]` aimed at `offset` bytes from the start of the code.
    public static func rip(_ offset: Int) -> X86Memory { X86Memory(base: .rip(offset)) }
}

/// A register or memory operand (the ModRM `r/m` field).
public enum X86Operand: Sendable, Hashable {
    case register(X86Register)
    case memory(X86Memory)
}

extension X86Operand {
    var isMemory: Bool {
        if case .memory = self { return true }
        return false
    }
}

/// The eight classic two-operand operations; the raw value is their `/digit` and
/// their opcode row (`op << 3`).
public enum X86Arithmetic: UInt8, Sendable, CaseIterable {
    case add = 0, or = 1, adc = 2, sbb = 3, and = 4, sub = 5, xor = 6, cmp = 7

    public var mnemonic: String { ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"][Int(rawValue)] }
}

/// Shifts and rotates (`C1 /digit`, `D3 /digit`).
public enum X86Shift: UInt8, Sendable, CaseIterable {
    case rol = 0, ror = 1, shl = 4, shr = 5, sar = 7

    public var mnemonic: String {
        switch self {
        case .rol: "rol"
        case .ror: "ror"
        case .shl: "shl"
        case .shr: "shr"
        case .sar: "sar"
        }
    }
}

/// The `F7 /digit` group of one-operand operations.
public enum X86Unary: UInt8, Sendable, CaseIterable {
    case not = 2, neg = 3, mul = 4, imul = 5, div = 6, idiv = 7

    public var mnemonic: String { ["", "", "not", "neg", "mul", "imul", "div", "idiv"][Int(rawValue)] }
}

/// Condition codes, as `jcc` (0x70 + cc) numbers them.
public enum X86Condition: UInt8, Sendable, CaseIterable {
    case overflow = 0, notOverflow, below, aboveOrEqual, equal, notEqual, belowOrEqual, above
    case sign, notSign, parity, notParity, less, greaterOrEqual, lessOrEqual, greater

    public var suffix: String {
        ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"][Int(rawValue)]
    }
}

/// A position in the code that jumps can name before it is known.
public struct X86Label: Hashable, Sendable {
    public let id: Int
}

/// Where every label and jump ended up in one pass: the next pass uses it to choose
/// short jumps.
public struct X86Layout: Sendable {
    public var labelOffsets: [Int?]
    /// The offset of each label-jump, in emission order.
    public var jumpStarts: [Int]
    public var size: Int
}

public struct X86Assembler {
    public private(set) var bytes: [UInt8] = []
    private var labelOffsets: [Int?] = []
    private var jumpStarts: [Int] = []
    private var relocations: [Relocation] = []
    private let previous: X86Layout?
    /// A RIP-relative displacement to fill in once the instruction's length is known.
    private var pendingRIP: (position: Int, target: Int)?

    private struct Relocation {
        var position: Int
        var size: Int
        var label: X86Label
        /// The offset the displacement is relative to: the end of the instruction.
        var end: Int
    }

    /// `previous` is the layout of the last pass, if there was one.
    public init(previous: X86Layout? = nil) {
        self.previous = previous
    }

    /// The offset the next instruction will have.
    public var offset: Int { bytes.count }

    public var layout: X86Layout { X86Layout(labelOffsets: labelOffsets, jumpStarts: jumpStarts, size: bytes.count) }

    // MARK: - Labels and the relocation list

    public mutating func makeLabel() -> X86Label {
        labelOffsets.append(nil)
        return X86Label(id: labelOffsets.count - 1)
    }

    /// Gives `label` the current offset.
    public mutating func bind(_ label: X86Label) {
        precondition(labelOffsets[label.id] == nil, "label bound twice")
        labelOffsets[label.id] = offset
    }

    public func offset(of label: X86Label) -> Int? { labelOffsets[label.id] }

    /// Patches every jump through the relocation list and returns the code.
    public func finish() -> [UInt8] {
        var code = bytes
        for relocation in relocations {
            guard let target = labelOffsets[relocation.label.id] else { preconditionFailure("unbound label") }
            let distance = target - relocation.end
            if relocation.size == 1 {
                precondition(distance >= -128 && distance <= 127, "a short jump does not reach its target")
                code[relocation.position] = UInt8(bitPattern: Int8(distance))
            } else {
                precondition(distance >= Int(Int32.min) && distance <= Int(Int32.max), "code larger than 2 GiB")
                withUnsafeBytes(of: Int32(distance).littleEndian) { raw in
                    for index in 0..<4 { code[relocation.position + index] = raw[index] }
                }
            }
        }
        return code
    }

    /// Whether a jump starting here can use a rel8 field. Backward: the distance is exact.
    /// Forward: the previous pass's distance is an upper bound on this pass's.
    private func shortReaches(_ label: X86Label) -> Bool {
        if let target = labelOffsets[label.id] { return fitsInt8(target - (offset + 2)) }
        let index = jumpStarts.count
        guard let previous, index < previous.jumpStarts.count, label.id < previous.labelOffsets.count,
            let target = previous.labelOffsets[label.id]
        else { return false }
        return fitsInt8(target - (previous.jumpStarts[index] + 2))
    }

    private mutating func relocate(_ label: X86Label, size: Int) {
        relocations.append(Relocation(position: offset - size, size: size, label: label, end: offset))
    }

    // MARK: - Control flow

    /// `EB cb` jmp rel8, or `E9 cd` jmp rel32.
    public mutating func jmp(_ label: X86Label) {
        let short = shortReaches(label)
        jumpStarts.append(offset)
        if short {
            emit(0xeb, 0)
            relocate(label, size: 1)
        } else {
            emit(0xe9, 0, 0, 0, 0)
            relocate(label, size: 4)
        }
    }

    /// `70+cc cb` jcc rel8, or `0F 80+cc cd` jcc rel32.
    public mutating func jcc(_ condition: X86Condition, _ label: X86Label) {
        let short = shortReaches(label)
        jumpStarts.append(offset)
        if short {
            emit(0x70 + condition.rawValue, 0)
            relocate(label, size: 1)
        } else {
            emit(0x0f, 0x80 + condition.rawValue, 0, 0, 0, 0)
            relocate(label, size: 4)
        }
    }

    /// `E8 cd` call rel32.
    public mutating func call(_ label: X86Label) {
        emit(0xe8, 0, 0, 0, 0)
        relocate(label, size: 4)
    }

    /// `FF /2` call r/m64 (no REX.W needed: near calls are 64-bit in long mode).
    public mutating func call(_ target: X86Operand) {
        encode(w: false, opcode: [0xff], reg: 2, rm: target)
    }

    /// `FF /4` jmp r/m64 (no REX.W needed: near jumps are 64-bit in long mode).
    public mutating func jmp(_ target: X86Operand) {
        encode(w: false, opcode: [0xff], reg: 4, rm: target)
    }

    /// `C3` ret.
    public mutating func ret() { emit(0xc3) }

    /// `0F 0B` ud2: marks code that must be unreachable.
    public mutating func ud2() { emit(0x0f, 0x0b) }

    /// `50+rd` push r64 (`41 50+rd` for r8-r15).
    public mutating func push(_ register: X86Register) {
        if register.high != 0 { emit(0x41) }
        emit(0x50 + register.low)
    }

    /// `58+rd` pop r64 (`41 58+rd` for r8-r15).
    public mutating func pop(_ register: X86Register) {
        if register.high != 0 { emit(0x41) }
        emit(0x58 + register.low)
    }

    // MARK: - Moves

    /// Register to register: `88 /r` mov r/m8, r8; `66 89 /r` (16); `89 /r` (32, zero-extends
    /// into 64); `REX.W 89 /r` (64).
    public mutating func mov(_ width: X86Width, _ destination: X86Register, _ source: X86Register) {
        encodeSized(width, opcode8: 0x88, opcode: 0x89, reg: source.rawValue, rm: .register(destination))
    }

    /// Store: `88 /r` mov m8, r8; `66 89 /r` mov m16, r16; `89 /r` mov m32, r32; `REX.W 89 /r` mov m64, r64.
    public mutating func mov(_ width: X86Width, _ destination: X86Memory, _ source: X86Register) {
        encodeSized(width, opcode8: 0x88, opcode: 0x89, reg: source.rawValue, rm: .memory(destination))
    }

    /// Load: `8B /r` mov r32, m32 (zero-extends); `REX.W 8B /r` mov r64, m64. Narrower loads
    /// are `movzx`/`movsx`.
    public mutating func mov(_ width: X86Width, _ destination: X86Register, _ source: X86Memory) {
        precondition(width == .dword || width == .qword, "use movzx or movsx for 8- and 16-bit loads")
        encode(w: width == .qword, opcode: [0x8b], reg: destination.rawValue, rm: .memory(source))
    }

    /// Store an immediate: `C6 /0 ib` mov m8, imm8; `66 C7 /0 iw` mov m16, imm16;
    /// `C7 /0 id` mov m32, imm32; `REX.W C7 /0 id` mov m64, imm32 (sign-extended).
    public mutating func mov(_ width: X86Width, _ destination: X86Memory, immediate: Int32) {
        switch width {
        case .byte:
            encode(w: false, opcode: [0xc6], reg: 0, rm: .memory(destination), immediate: imm8(immediate))
        case .word:
            encode(
                prefixes: [0x66], w: false, opcode: [0xc7], reg: 0, rm: .memory(destination),
                immediate: imm16(immediate))
        case .dword, .qword:
            encode(w: width == .qword, opcode: [0xc7], reg: 0, rm: .memory(destination), immediate: imm32(immediate))
        }
    }

    /// `B8+rd id` mov r32, imm32: the upper 32 bits become 0.
    public mutating func mov32(_ destination: X86Register, immediate: UInt32) {
        if destination.high != 0 { emit(0x41) }
        emit(0xb8 + destination.low)
        emit(imm32(Int32(bitPattern: immediate)))
    }

    /// `REX.W C7 /0 id` mov r64, imm32: the immediate is sign-extended to 64 bits.
    public mutating func mov64(_ destination: X86Register, signExtended immediate: Int32) {
        encode(w: true, opcode: [0xc7], reg: 0, rm: .register(destination), immediate: imm32(immediate))
    }

    /// `REX.W B8+rd io` movabs r64, imm64.
    public mutating func movabs(_ destination: X86Register, _ value: UInt64) {
        emit(0x48 | destination.high)
        emit(0xb8 + destination.low)
        emit(ByteRun(UInt32(truncatingIfNeeded: value)))
        emit(ByteRun(UInt32(truncatingIfNeeded: value >> 32)))
    }

    /// The shortest way to put a 64-bit constant in a register: `xor r32, r32` for 0,
    /// `mov r32, imm32` when it fits unsigned, `mov r64, imm32` when it fits signed,
    /// `movabs` otherwise. (`xor` changes the flags; the compiler never keeps flags
    /// across a BPF instruction.)
    public mutating func load(_ destination: X86Register, constant value: UInt64) {
        if value == 0 {
            arithmetic(.xor, .dword, .register(destination), destination)
        } else if value <= UInt64(UInt32.max) {
            mov32(destination, immediate: UInt32(value))
        } else if Int64(bitPattern: value) >= Int64(Int32.min) && Int64(bitPattern: value) < 0 {
            mov64(destination, signExtended: Int32(truncatingIfNeeded: Int64(bitPattern: value)))
        } else {
            movabs(destination, value)
        }
    }

    /// Zero-extending loads and moves into a 32-bit register (the upper half of the
    /// 64-bit register becomes 0): `0F B6 /r` movzx r32, r/m8; `0F B7 /r` movzx r32, r/m16.
    public mutating func movzx(_ destination: X86Register, _ source: X86Operand, from width: X86Width) {
        precondition(width == .byte || width == .word, "movzx extends 8 or 16 bits")
        encode(
            w: false, opcode: [0x0f, width == .byte ? 0xb6 : 0xb7], reg: destination.rawValue, rm: source,
            byteRM: width == .byte)
    }

    /// Sign-extending moves: `REX.W 0F BE /r` movsx r64, r/m8; `REX.W 0F BF /r` movsx r64, r/m16;
    /// `REX.W 63 /r` movsxd r64, r/m32; without REX.W, `0F BE`/`0F BF` into a 32-bit register.
    public mutating func movsx(
        _ width: X86Width, _ destination: X86Register, _ source: X86Operand, from sourceWidth: X86Width
    ) {
        precondition(width == .dword || width == .qword, "movsx writes 32 or 64 bits")
        switch sourceWidth {
        case .byte:
            encode(
                w: width == .qword, opcode: [0x0f, 0xbe], reg: destination.rawValue, rm: source, byteRM: true)
        case .word:
            encode(w: width == .qword, opcode: [0x0f, 0xbf], reg: destination.rawValue, rm: source)
        case .dword:
            precondition(width == .qword, "movsxd writes 64 bits")
            encode(w: true, opcode: [0x63], reg: destination.rawValue, rm: source)
        case .qword:
            preconditionFailure("nothing to extend")
        }
    }

    /// `REX.W 8D /r` lea r64, m; `8D /r` lea r32, m (the sum is truncated to 32 bits and
    /// zero-extended).
    public mutating func lea(_ width: X86Width, _ destination: X86Register, _ source: X86Memory) {
        precondition(width == .dword || width == .qword, "lea writes 32 or 64 bits")
        encode(w: width == .qword, opcode: [0x8d], reg: destination.rawValue, rm: .memory(source))
    }

    // MARK: - Arithmetic

    /// `op r/m, r`: `00+8*op /r` (8-bit), `66 01+8*op /r` (16), `01+8*op /r` (32),
    /// `REX.W 01+8*op /r` (64), with an `F0` lock prefix when asked (memory destinations only).
    public mutating func arithmetic(
        _ op: X86Arithmetic, _ width: X86Width, _ destination: X86Operand, _ source: X86Register, lock: Bool = false
    ) {
        precondition(!lock || (op != .cmp && destination.isMemory), "lock needs a memory destination and not cmp")
        encodeSized(
            width, opcode8: op.rawValue << 3, opcode: op.rawValue << 3 | 1, reg: source.rawValue, rm: destination,
            lock: lock)
    }

    /// `op r, r/m`: `03+8*op /r` (32), `REX.W 03+8*op /r` (64).
    public mutating func arithmetic(
        _ op: X86Arithmetic, _ width: X86Width, _ destination: X86Register, _ source: X86Memory
    ) {
        precondition(width == .dword || width == .qword, "only 32- and 64-bit register destinations")
        encode(w: width == .qword, opcode: [op.rawValue << 3 | 3], reg: destination.rawValue, rm: .memory(source))
    }

    /// `op r/m, imm`: `83 /op ib` when the immediate fits in a signed byte, else
    /// `81 /op id`; `REX.W` for 64 bits (the immediate is sign-extended), `66` and `iw`
    /// for 16 bits; `80 /op ib` for 8 bits.
    public mutating func arithmetic(
        _ op: X86Arithmetic, _ width: X86Width, _ destination: X86Operand, immediate: Int32, lock: Bool = false
    ) {
        precondition(!lock || (op != .cmp && destination.isMemory), "lock needs a memory destination and not cmp")
        var prefixes: ByteRun = lock ? [0xf0] : []
        if width == .word { prefixes.append(0x66) }
        if width == .byte {
            encode(
                prefixes: prefixes, w: false, opcode: [0x80], reg: op.rawValue, rm: destination,
                immediate: imm8(immediate), byteRM: true)
        } else if fitsInt8(Int(immediate)) {
            encode(
                prefixes: prefixes, w: width == .qword, opcode: [0x83], reg: op.rawValue, rm: destination,
                immediate: imm8(immediate))
        } else {
            encode(
                prefixes: prefixes, w: width == .qword, opcode: [0x81], reg: op.rawValue, rm: destination,
                immediate: width == .word ? imm16(immediate) : imm32(immediate))
        }
    }

    /// `85 /r` test r/m32, r32; `REX.W 85 /r` test r/m64, r64.
    public mutating func test(_ width: X86Width, _ a: X86Register, _ b: X86Register) {
        precondition(width == .dword || width == .qword, "only 32- and 64-bit tests")
        encode(w: width == .qword, opcode: [0x85], reg: b.rawValue, rm: .register(a))
    }

    /// `F7 /0 id` test r/m32, imm32; `REX.W F7 /0 id` test r/m64, imm32 (sign-extended).
    public mutating func test(_ width: X86Width, _ a: X86Register, immediate: Int32) {
        precondition(width == .dword || width == .qword, "only 32- and 64-bit tests")
        encode(w: width == .qword, opcode: [0xf7], reg: 0, rm: .register(a), immediate: imm32(immediate))
    }

    /// `0F AF /r` imul r32, r/m32; `REX.W 0F AF /r` imul r64, r/m64 (the low half of the
    /// product, which is the same for signed and unsigned operands).
    public mutating func imul(_ width: X86Width, _ destination: X86Register, _ source: X86Register) {
        precondition(width == .dword || width == .qword, "only 32- and 64-bit multiplies")
        encode(w: width == .qword, opcode: [0x0f, 0xaf], reg: destination.rawValue, rm: .register(source))
    }

    /// `6B /r ib` imul r, r/m, imm8, or `69 /r id` imul r, r/m, imm32 (`REX.W` for 64 bits;
    /// the immediate is sign-extended).
    public mutating func imul(
        _ width: X86Width, _ destination: X86Register, _ source: X86Register, immediate: Int32
    ) {
        precondition(width == .dword || width == .qword, "only 32- and 64-bit multiplies")
        if fitsInt8(Int(immediate)) {
            encode(
                w: width == .qword, opcode: [0x6b], reg: destination.rawValue, rm: .register(source),
                immediate: imm8(immediate))
        } else {
            encode(
                w: width == .qword, opcode: [0x69], reg: destination.rawValue, rm: .register(source),
                immediate: imm32(immediate))
        }
    }

    /// `C1 /op ib` shift r/m, imm8 (`66` for 16 bits, `REX.W` for 64).
    public mutating func shift(_ op: X86Shift, _ width: X86Width, _ destination: X86Register, by amount: UInt8) {
        precondition(width != .byte, "8-bit shifts are not used")
        encode(
            prefixes: width == .word ? [0x66] : [], w: width == .qword, opcode: [0xc1], reg: op.rawValue,
            rm: .register(destination), immediate: [amount])
    }

    /// `D3 /op` shift r/m, cl (`REX.W` for 64 bits). The CPU masks the count to 5 or 6
    /// bits, as BPF does.
    public mutating func shiftByCL(_ op: X86Shift, _ width: X86Width, _ destination: X86Register) {
        precondition(width == .dword || width == .qword, "only 32- and 64-bit shifts by cl")
        encode(w: width == .qword, opcode: [0xd3], reg: op.rawValue, rm: .register(destination))
    }

    /// `F7 /op` not/neg/mul/imul/div/idiv r/m (`REX.W` for 64 bits). `div` and `idiv`
    /// divide rdx:rax (edx:eax) by the operand: quotient in rax, remainder in rdx.
    public mutating func unary(_ op: X86Unary, _ width: X86Width, _ operand: X86Register) {
        precondition(width == .dword || width == .qword, "only 32- and 64-bit operands")
        encode(w: width == .qword, opcode: [0xf7], reg: op.rawValue, rm: .register(operand))
    }

    /// `REX.W 99` cqo: rdx = the sign of rax, for a 64-bit `idiv`.
    public mutating func cqo() { emit(0x48, 0x99) }

    /// `99` cdq: edx = the sign of eax, for a 32-bit `idiv`.
    public mutating func cdq() { emit(0x99) }

    /// `0F C8+rd` bswap r32 (zero-extends); `REX.W 0F C8+rd` bswap r64.
    public mutating func bswap(_ width: X86Width, _ register: X86Register) {
        precondition(width == .dword || width == .qword, "bswap swaps 32 or 64 bits")
        let rex = (width == .qword ? 0x48 : 0x40) | register.high
        if rex != 0x40 { emit(rex) }
        emit(0x0f, 0xc8 + register.low)
    }

    // MARK: - Atomics

    /// `F0 0F C1 /r` lock xadd m32, r32; `F0 REX.W 0F C1 /r` lock xadd m64, r64:
    /// adds the register to memory and puts the old memory value in the register.
    public mutating func lockXadd(_ width: X86Width, _ destination: X86Memory, _ source: X86Register) {
        precondition(width == .dword || width == .qword, "only 32- and 64-bit atomics")
        encode(
            prefixes: [0xf0], w: width == .qword, opcode: [0x0f, 0xc1], reg: source.rawValue,
            rm: .memory(destination))
    }

    /// `F0 0F B1 /r` lock cmpxchg m32, r32; `F0 REX.W 0F B1 /r` lock cmpxchg m64, r64:
    /// if memory equals eax/rax, store the register there; else load memory into eax/rax.
    public mutating func lockCmpxchg(_ width: X86Width, _ destination: X86Memory, _ source: X86Register) {
        precondition(width == .dword || width == .qword, "only 32- and 64-bit atomics")
        encode(
            prefixes: [0xf0], w: width == .qword, opcode: [0x0f, 0xb1], reg: source.rawValue,
            rm: .memory(destination))
    }

    /// `87 /r` xchg m32, r32; `REX.W 87 /r` xchg m64, r64 (locked implicitly).
    public mutating func xchg(_ width: X86Width, _ destination: X86Memory, _ source: X86Register) {
        precondition(width == .dword || width == .qword, "only 32- and 64-bit atomics")
        encode(w: width == .qword, opcode: [0x87], reg: source.rawValue, rm: .memory(destination))
    }

    // MARK: - Encoding

    // One byte at a time: no array is built per instruction (array temporaries were
    // about half of the compile time in a perf profile).
    private mutating func emit(_ a: UInt8) { bytes.append(a) }
    private mutating func emit(_ a: UInt8, _ b: UInt8) {
        bytes.append(a)
        bytes.append(b)
    }
    /// An opcode byte or two followed by a zero rel32 field (patched through the relocation list).
    private mutating func emit(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, _ e: UInt8) {
        emit(a)
        emit(ByteRun(UInt32(UInt32(b) | UInt32(c) << 8 | UInt32(d) << 16 | UInt32(e) << 24)))
    }
    private mutating func emit(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, _ e: UInt8, _ f: UInt8) {
        emit(a, b)
        emit(ByteRun(UInt32(UInt32(c) | UInt32(d) << 8 | UInt32(e) << 16 | UInt32(f) << 24)))
    }
    private mutating func emit(_ run: ByteRun) {
        var bits = run.bits
        for _ in 0..<run.count {
            bytes.append(UInt8(truncatingIfNeeded: bits))
            bits >>= 8
        }
    }

    /// An instruction whose 8-bit form has its own opcode and whose 16-bit form takes `66`.
    private mutating func encodeSized(
        _ width: X86Width, opcode8: UInt8, opcode: UInt8, reg: UInt8, rm: X86Operand, lock: Bool = false
    ) {
        var prefixes: ByteRun = lock ? [0xf0] : []
        if width == .word { prefixes.append(0x66) }
        encode(
            prefixes: prefixes, w: width == .qword, opcode: [width == .byte ? opcode8 : opcode], reg: reg, rm: rm,
            immediate: [], byteReg: width == .byte, byteRM: width == .byte)
    }

    /// Legacy prefixes, REX, opcode, ModRM (+SIB, displacement), immediate.
    ///
    /// `byteReg`/`byteRM`: the reg or r/m register is used as 8 bits, so registers 4-7 need
    /// a REX prefix to mean spl/bpl/sil/dil rather than ah/ch/dh/bh.
    private mutating func encode(
        prefixes: ByteRun = [], w: Bool, opcode: ByteRun, reg: UInt8, rm: X86Operand, immediate: ByteRun = [],
        byteReg: Bool = false, byteRM: Bool = false
    ) {
        emit(prefixes)
        var rex: UInt8 = 0x40
        if w { rex |= 0x08 }
        if reg >= 8 { rex |= 0x04 }
        var forceREX = byteReg && reg >= 4 && reg < 8
        switch rm {
        case .register(let register):
            rex |= register.high
            if byteRM && register.rawValue >= 4 && register.rawValue < 8 { forceREX = true }
        case .memory(let memory):
            if let index = memory.index { rex |= index.high << 1 }
            if case .register(let base) = memory.base { rex |= base.high }
        }
        if rex != 0x40 || forceREX { emit(rex) }
        emit(opcode)
        modRM(reg: reg & 7, rm: rm)
        emit(immediate)
        if let pending = pendingRIP {
            let displacement = Int32(pending.target - offset)
            withUnsafeBytes(of: displacement.littleEndian) { raw in
                for index in 0..<4 { bytes[pending.position + index] = raw[index] }
            }
            pendingRIP = nil
        }
    }

    private mutating func modRM(reg: UInt8, rm: X86Operand) {
        switch rm {
        case .register(let register):
            emit(0xc0 | reg << 3 | register.low)
        case .memory(let memory):
            switch memory.base {
            case .rip(let target):
                // mod 00, r/m 101: [rip + disp32], relative to the end of the instruction.
                emit(reg << 3 | 0b101)
                pendingRIP = (offset, target + Int(memory.displacement))
                emit(ByteRun(UInt32(0)))
            case .register(let base):
                let displacement = memory.displacement
                // [rbp]/[r13] with no displacement means [rip]/no base, so they take a disp8 of 0.
                let mod: UInt8 =
                    displacement == 0 && base.low != 5 ? 0b00 : fitsInt8(Int(displacement)) ? 0b01 : 0b10
                if let index = memory.index {
                    emit(mod << 6 | reg << 3 | 0b100)
                    emit(scaleBits(memory.scale) << 6 | index.low << 3 | base.low)
                } else if base.low == 4 {
                    // [rsp]/[r12] need a SIB byte with no index.
                    emit(mod << 6 | reg << 3 | 0b100)
                    emit(0b00_100_100)
                } else {
                    emit(mod << 6 | reg << 3 | base.low)
                }
                if mod == 0b01 { emit(UInt8(bitPattern: Int8(displacement))) }
                if mod == 0b10 { emit(imm32(displacement)) }
            }
        }
    }

    private func scaleBits(_ scale: UInt8) -> UInt8 {
        switch scale {
        case 1: 0
        case 2: 1
        case 4: 2
        default: 3
        }
    }

    private func imm8(_ value: Int32) -> ByteRun { [UInt8(truncatingIfNeeded: value)] }
    private func imm16(_ value: Int32) -> ByteRun {
        [UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8)]
    }
    private func imm32(_ value: Int32) -> ByteRun { ByteRun(UInt32(bitPattern: value)) }
}

/// Up to eight bytes of an instruction (prefixes, an opcode, an immediate) in one
/// integer, least significant byte first: the encoder passes these by value instead of
/// allocating an array for each part of each instruction.
struct ByteRun: ExpressibleByArrayLiteral {
    private(set) var bits: UInt64 = 0
    private(set) var count = 0

    @inline(__always) init(arrayLiteral elements: UInt8...) {
        precondition(elements.count <= 8, "at most eight bytes")
        for element in elements { append(element) }
    }

    /// Four little-endian bytes.
    @inline(__always) init(_ value: UInt32) {
        bits = UInt64(value)
        count = 4
    }

    @inline(__always) mutating func append(_ byte: UInt8) {
        precondition(count < 8, "at most eight bytes")
        bits |= UInt64(byte) << UInt64(8 * count)
        count += 1
    }
}

@inline(__always)
func fitsInt8(_ value: Int) -> Bool { value >= -128 && value <= 127 }
