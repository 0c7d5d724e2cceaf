/// The one opcode table. Every encoding bpfsim understands is a row here, and the
/// decoder, validator, assembler, disassembler and both engines read it.
///
/// Opcode values are those of RFC 9669 (section 4 and 5) and `linux/bpf.h`; where the
/// kernel has more than the RFC (load-acquire/store-release, kfunc calls), the kernel's
/// values are used.
public enum InstructionSet {
    /// All rows, in opcode order within each family.
    public static let specs: [InstructionSpec] = buildSpecs()

    /// Rows by opcode byte. An empty list means the byte is not an instruction.
    public static let byOpcode: [[InstructionSpec]] = {
        var table = Array(repeating: [InstructionSpec](), count: 256)
        for spec in specs where spec.operation != .lddwSecondSlot { table[Int(spec.opcode)].append(spec) }
        return table
    }()

    /// The row of each operation.
    public static let byOperation: [InstructionSpec] = {
        var table = [InstructionSpec?](repeating: nil, count: Operation.allCases.count)
        for spec in specs where table[Int(spec.operation.rawValue)] == nil {
            table[Int(spec.operation.rawValue)] = spec
        }
        return table.enumerated().map { index, spec in
            guard let spec else { preconditionFailure("no table row for \(Operation.allCases[index])") }
            return spec
        }
    }()

    /// Finds the row an instruction slot encodes, or nil. The slot's other fields are not
    /// checked here; `Program` validation does that.
    public static func spec(for instruction: Instruction) -> InstructionSpec? {
        for spec in byOpcode[Int(instruction.opcode)] where spec.selector.matches(instruction) {
            return spec
        }
        return nil
    }

    public static func spec(for operation: Operation) -> InstructionSpec {
        byOperation[Int(operation.rawValue)]
    }
}

/// One encoding: an opcode byte, plus the modifier field value that selects it.
public struct InstructionSpec: Sendable, Hashable {
    public let opcode: UInt8
    public let selector: Selector
    public let operation: Operation
    /// The mnemonic of the conformance suite's assembler (`add32`, `ldxw`, `lock fetch add`).
    public let mnemonic: String
    public let form: Form
    /// Bytes touched by a memory access (1, 2, 4 or 8), else 0.
    public let accessSize: Int
    /// The ISA version (RFC 9669 section 2.4 "conformance groups" and cpu versions) that
    /// introduced this encoding.
    public let version: ISAVersion

    public var instructionClass: InstructionClass { InstructionClass(rawValue: opcode & 0x07)! }
    /// Whether this is a 32-bit ALU or JMP32 operation.
    public var is32Bit: Bool { instructionClass == .alu || instructionClass == .jmp32 }
}

/// Which field, besides the opcode, tells encodings sharing an opcode byte apart.
public enum Selector: Sendable, Hashable {
    case none
    case offset(Int16)
    case immediate(Int32)
    case source(UInt8)

    func matches(_ instruction: Instruction) -> Bool {
        switch self {
        case .none: true
        case .offset(let value): instruction.offset == value
        case .immediate(let value): instruction.immediate == value
        case .source(let value): instruction.src == value
        }
    }
}

/// The operand shape of an encoding: which fields it reads, which must be zero, and how
/// it is written in assembly.
public enum Form: Sendable, Hashable {
    /// `op %rD, IMM`
    case aluImmediate
    /// `op %rD, %rS`
    case aluRegister
    /// `neg %rD`, `be16 %rD`: dst only.
    case aluUnary
    /// `ldxw %rD, [%rS+OFF]`
    case load
    /// `stw [%rD+OFF], IMM`
    case storeImmediate
    /// `stxw [%rD+OFF], %rS`
    case storeRegister
    /// `lock [fetch] op [%rD+OFF], %rS`
    case atomic
    /// `ldacqw %rD, [%rS+OFF]`
    case loadAcquire
    /// `strelw [%rD+OFF], %rS`
    case storeRelease
    /// `ja TARGET` (offset)
    case jumpAlways
    /// `ja32 TARGET` (imm)
    case jumpLong
    /// `jeq %rD, IMM, TARGET`
    case jumpImmediate
    /// `jeq %rD, %rS, TARGET`
    case jumpRegister
    /// `call N`
    case callHelper
    /// `call local TARGET`
    case callLocal
    /// `call runtime N`
    case callKfunc
    /// `call %rN`
    case callx
    case exit
    /// `lddw %rD, IMM64`, or one of the pseudo forms.
    case loadImmediate64
    /// `ldabsw IMM`
    case loadAbsolute
    /// `ldindw %rS, IMM`
    case loadIndirect
}

/// ISA versions as clang's `-mcpu=v1..v4` and the conformance suite count them.
public enum ISAVersion: Int, Sendable, Comparable, CaseIterable {
    case v1 = 1, v2, v3, v4
    public static func < (a: ISAVersion, b: ISAVersion) -> Bool { a.rawValue < b.rawValue }
}

// MARK: - Opcode fields (RFC 9669 section 3 and 4)

/// Named opcode field values, for code that builds instructions.
public enum OpcodeField {
    // source
    public static let k: UInt8 = 0x00
    public static let x: UInt8 = 0x08
    // sizes (load/store)
    public static let w: UInt8 = 0x00
    public static let h: UInt8 = 0x08
    public static let b: UInt8 = 0x10
    public static let dw: UInt8 = 0x18
    // modes (load/store)
    public static let imm: UInt8 = 0x00
    public static let abs: UInt8 = 0x20
    public static let ind: UInt8 = 0x40
    public static let mem: UInt8 = 0x60
    public static let memsx: UInt8 = 0x80
    public static let atomic: UInt8 = 0xc0
    /// `BPF_FETCH`: an atomic that returns the old value.
    public static let fetch: Int32 = 0x01
    public static let xchg: Int32 = 0xe0 | 0x01
    public static let cmpxchg: Int32 = 0xf0 | 0x01
    public static let loadAcquire: Int32 = 0x100
    public static let storeRelease: Int32 = 0x110
    // LD_IMM64 pseudo sources (linux/bpf.h)
    public static let pseudoMapFD: UInt8 = 1
    public static let pseudoMapValue: UInt8 = 2
    public static let pseudoBTFID: UInt8 = 3
    public static let pseudoFunc: UInt8 = 4
    public static let pseudoMapIndex: UInt8 = 5
    public static let pseudoMapIndexValue: UInt8 = 6
    // call sources
    public static let pseudoCall: UInt8 = 1
    public static let pseudoKfuncCall: UInt8 = 2
}

// MARK: - Building the table

private func buildSpecs() -> [InstructionSpec] {
    var specs: [InstructionSpec] = []
    func add(
        _ opcode: UInt8, _ selector: Selector = .none, _ operation: Operation, _ mnemonic: String,
        _ form: Form, size: Int = 0, _ version: ISAVersion = .v1
    ) {
        specs.append(
            InstructionSpec(
                opcode: opcode, selector: selector, operation: operation, mnemonic: mnemonic, form: form,
                accessSize: size, version: version))
    }

    // ALU and ALU64: opcode = op << 4 | source | class.
    // (name, op code, (imm64, reg64, imm32, reg32), selector offset, version)
    typealias ALURow = (String, UInt8, [Operation], Int16?, ISAVersion)
    let alu: [ALURow] = [
        ("add", 0x0, [.add64Imm, .add64Reg, .add32Imm, .add32Reg], nil, .v1),
        ("sub", 0x1, [.sub64Imm, .sub64Reg, .sub32Imm, .sub32Reg], nil, .v1),
        ("mul", 0x2, [.mul64Imm, .mul64Reg, .mul32Imm, .mul32Reg], nil, .v1),
        ("div", 0x3, [.div64Imm, .div64Reg, .div32Imm, .div32Reg], 0, .v1),
        ("sdiv", 0x3, [.sdiv64Imm, .sdiv64Reg, .sdiv32Imm, .sdiv32Reg], 1, .v4),
        ("or", 0x4, [.or64Imm, .or64Reg, .or32Imm, .or32Reg], nil, .v1),
        ("and", 0x5, [.and64Imm, .and64Reg, .and32Imm, .and32Reg], nil, .v1),
        ("lsh", 0x6, [.lsh64Imm, .lsh64Reg, .lsh32Imm, .lsh32Reg], nil, .v1),
        ("rsh", 0x7, [.rsh64Imm, .rsh64Reg, .rsh32Imm, .rsh32Reg], nil, .v1),
        ("mod", 0x9, [.mod64Imm, .mod64Reg, .mod32Imm, .mod32Reg], 0, .v1),
        ("smod", 0x9, [.smod64Imm, .smod64Reg, .smod32Imm, .smod32Reg], 1, .v4),
        ("xor", 0xa, [.xor64Imm, .xor64Reg, .xor32Imm, .xor32Reg], nil, .v1),
        ("mov", 0xb, [.mov64Imm, .mov64Reg, .mov32Imm, .mov32Reg], 0, .v1),
        ("arsh", 0xc, [.arsh64Imm, .arsh64Reg, .arsh32Imm, .arsh32Reg], nil, .v1),
    ]
    for (name, op, ops, offset, version) in alu {
        let selector: Selector = offset.map { .offset($0) } ?? .none
        add(op << 4 | OpcodeField.k | 0x07, selector, ops[0], name, .aluImmediate, version)
        add(op << 4 | OpcodeField.x | 0x07, selector, ops[1], name, .aluRegister, version)
        add(op << 4 | OpcodeField.k | 0x04, selector, ops[2], name + "32", .aluImmediate, version)
        add(op << 4 | OpcodeField.x | 0x04, selector, ops[3], name + "32", .aluRegister, version)
    }
    add(0x87, .none, .neg64, "neg", .aluUnary)
    add(0x84, .none, .neg32, "neg32", .aluUnary)
    // movsx: mov (register source) with offset 8, 16 or 32.
    add(0xbf, .offset(8), .movsx8To64, "movsx864", .aluRegister, .v4)
    add(0xbf, .offset(16), .movsx16To64, "movsx1664", .aluRegister, .v4)
    add(0xbf, .offset(32), .movsx32To64, "movsx3264", .aluRegister, .v4)
    add(0xbc, .offset(8), .movsx8To32, "movsx832", .aluRegister, .v4)
    add(0xbc, .offset(16), .movsx16To32, "movsx1632", .aluRegister, .v4)

    // Byte order: 0xd4 (ALU | END | TO_LE), 0xdc (ALU | END | TO_BE), 0xd7 (ALU64 | END).
    for (bits, le, be, swap) in [
        (16, Operation.le16, Operation.be16, Operation.bswap16),
        (32, .le32, .be32, .bswap32),
        (64, .le64, .be64, .bswap64),
    ] {
        add(0xd4, .immediate(Int32(bits)), le, "le\(bits)", .aluUnary)
        add(0xdc, .immediate(Int32(bits)), be, "be\(bits)", .aluUnary)
        add(0xd7, .immediate(Int32(bits)), swap, "bswap\(bits)", .aluUnary, .v4)
    }

    // Loads and stores: opcode = mode | size | class.
    let sizes: [(UInt8, String, Int)] = [
        (OpcodeField.b, "b", 1), (OpcodeField.h, "h", 2), (OpcodeField.w, "w", 4), (OpcodeField.dw, "dw", 8),
    ]
    let ldx: [Operation] = [.ldxb, .ldxh, .ldxw, .ldxdw]
    let st: [Operation] = [.stb, .sth, .stw, .stdw]
    let stx: [Operation] = [.stxb, .stxh, .stxw, .stxdw]
    for (index, (sizeBits, suffix, bytes)) in sizes.enumerated() {
        add(OpcodeField.mem | sizeBits | 0x01, .none, ldx[index], "ldx" + suffix, .load, size: bytes)
        add(OpcodeField.mem | sizeBits | 0x02, .none, st[index], "st" + suffix, .storeImmediate, size: bytes)
        add(OpcodeField.mem | sizeBits | 0x03, .none, stx[index], "stx" + suffix, .storeRegister, size: bytes)
    }
    let ldsx: [Operation] = [.ldxsb, .ldxsh, .ldxsw]
    for (index, (sizeBits, suffix, bytes)) in sizes.prefix(3).enumerated() {
        add(OpcodeField.memsx | sizeBits | 0x01, .none, ldsx[index], "ldxs" + suffix, .load, size: bytes, .v4)
    }

    add(0x18, .none, .lddw, "lddw", .loadImmediate64, size: 8)

    // Legacy packet loads. BPF_DW is not a valid size for them (the kernel refuses it).
    let abs: [Operation] = [.ldabsb, .ldabsh, .ldabsw]
    let ind: [Operation] = [.ldindb, .ldindh, .ldindw]
    for (index, (sizeBits, suffix, bytes)) in sizes.prefix(3).enumerated() {
        add(OpcodeField.abs | sizeBits | 0x00, .none, abs[index], "ldabs" + suffix, .loadAbsolute, size: bytes)
        add(OpcodeField.ind | sizeBits | 0x00, .none, ind[index], "ldind" + suffix, .loadIndirect, size: bytes)
    }

    // Atomics: opcode = ATOMIC | W or DW | STX, operation in imm.
    typealias AtomicRow = (String, Int32, Operation, Operation)
    let atomics: [AtomicRow] = [
        ("add", 0x00, .atomicAdd32, .atomicAdd64),
        ("or", 0x40, .atomicOr32, .atomicOr64),
        ("and", 0x50, .atomicAnd32, .atomicAnd64),
        ("xor", 0xa0, .atomicXor32, .atomicXor64),
        ("fetch add", 0x01, .atomicFetchAdd32, .atomicFetchAdd64),
        ("fetch or", 0x41, .atomicFetchOr32, .atomicFetchOr64),
        ("fetch and", 0x51, .atomicFetchAnd32, .atomicFetchAnd64),
        ("fetch xor", 0xa1, .atomicFetchXor32, .atomicFetchXor64),
        ("xchg", OpcodeField.xchg, .atomicXchg32, .atomicXchg64),
        ("cmpxchg", OpcodeField.cmpxchg, .atomicCmpxchg32, .atomicCmpxchg64),
    ]
    for (name, imm, op32, op64) in atomics {
        add(0xc3, .immediate(imm), op32, "lock " + name + "32", .atomic, size: 4, .v3)
        add(0xdb, .immediate(imm), op64, "lock " + name, .atomic, size: 8, .v3)
    }
    let acquire: [Operation] = [.loadAcquire8, .loadAcquire16, .loadAcquire32, .loadAcquire64]
    let release: [Operation] = [.storeRelease8, .storeRelease16, .storeRelease32, .storeRelease64]
    for (index, (sizeBits, suffix, bytes)) in sizes.enumerated() {
        let opcode = OpcodeField.atomic | sizeBits | 0x03
        add(
            opcode, .immediate(OpcodeField.loadAcquire), acquire[index], "ldacq" + suffix, .loadAcquire, size: bytes,
            .v4)
        add(
            opcode, .immediate(OpcodeField.storeRelease), release[index], "strel" + suffix, .storeRelease, size: bytes,
            .v4)
    }

    // Jumps: opcode = op << 4 | source | class.
    add(0x05, .none, .ja, "ja", .jumpAlways)
    add(0x06, .none, .ja32, "ja32", .jumpLong, .v4)
    add(0xe5, .source(0), .mayGoto, "may_goto", .jumpAlways, .v4)
    typealias JumpRow = (String, UInt8, [Operation], ISAVersion)
    let jumps: [JumpRow] = [
        ("jeq", 0x1, [.jeq64Imm, .jeq64Reg, .jeq32Imm, .jeq32Reg], .v1),
        ("jgt", 0x2, [.jgt64Imm, .jgt64Reg, .jgt32Imm, .jgt32Reg], .v1),
        ("jge", 0x3, [.jge64Imm, .jge64Reg, .jge32Imm, .jge32Reg], .v1),
        ("jset", 0x4, [.jset64Imm, .jset64Reg, .jset32Imm, .jset32Reg], .v1),
        ("jne", 0x5, [.jne64Imm, .jne64Reg, .jne32Imm, .jne32Reg], .v1),
        ("jsgt", 0x6, [.jsgt64Imm, .jsgt64Reg, .jsgt32Imm, .jsgt32Reg], .v1),
        ("jsge", 0x7, [.jsge64Imm, .jsge64Reg, .jsge32Imm, .jsge32Reg], .v1),
        ("jlt", 0xa, [.jlt64Imm, .jlt64Reg, .jlt32Imm, .jlt32Reg], .v2),
        ("jle", 0xb, [.jle64Imm, .jle64Reg, .jle32Imm, .jle32Reg], .v2),
        ("jslt", 0xc, [.jslt64Imm, .jslt64Reg, .jslt32Imm, .jslt32Reg], .v2),
        ("jsle", 0xd, [.jsle64Imm, .jsle64Reg, .jsle32Imm, .jsle32Reg], .v2),
    ]
    for (name, op, ops, version) in jumps {
        add(op << 4 | OpcodeField.k | 0x05, .none, ops[0], name, .jumpImmediate, version)
        add(op << 4 | OpcodeField.x | 0x05, .none, ops[1], name, .jumpRegister, version)
        add(op << 4 | OpcodeField.k | 0x06, .none, ops[2], name + "32", .jumpImmediate, .v3)
        add(op << 4 | OpcodeField.x | 0x06, .none, ops[3], name + "32", .jumpRegister, .v3)
    }
    add(0x85, .source(0), .callHelper, "call", .callHelper)
    add(0x85, .source(OpcodeField.pseudoCall), .callLocal, "call local", .callLocal, .v3)
    add(0x85, .source(OpcodeField.pseudoKfuncCall), .callKfunc, "call runtime", .callKfunc, .v3)
    add(0x8d, .none, .callx, "callx", .callx, .v4)
    add(0x95, .none, .exit, "exit", .exit)

    // The second lddw slot has opcode 0; it is only ever matched positionally.
    add(0x00, .none, .lddwSecondSlot, "", .loadImmediate64)
    return specs
}
