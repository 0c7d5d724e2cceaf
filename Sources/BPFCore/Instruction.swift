/// One 8-byte eBPF instruction slot, exactly as RFC 9669 section 3 lays it out:
///
///     opcode:8  dst_reg:4 (low)  src_reg:4 (high)  offset:16  imm:32
///
/// Multi-byte fields are little-endian on the wire. `lddw` occupies two slots; the
/// second slot carries the upper 32 bits of the constant in its `immediate`.
public struct Instruction: Hashable, Sendable {
    public var opcode: UInt8
    /// `dst_reg` in the low nibble, `src_reg` in the high nibble.
    public var registers: UInt8
    public var offset: Int16
    public var immediate: Int32

    public init(opcode: UInt8, registers: UInt8, offset: Int16, immediate: Int32) {
        self.opcode = opcode
        self.registers = registers
        self.offset = offset
        self.immediate = immediate
    }

    public init(opcode: UInt8, dst: UInt8 = 0, src: UInt8 = 0, offset: Int16 = 0, immediate: Int32 = 0) {
        self.init(
            opcode: opcode, registers: (dst & 0x0f) | (src << 4), offset: offset, immediate: immediate)
    }

    /// The destination register field (0-15; only 0-10 are valid registers).
    public var dst: UInt8 {
        get { registers & 0x0f }
        set { registers = (registers & 0xf0) | (newValue & 0x0f) }
    }

    /// The source register field (0-15; only 0-10 are valid registers).
    public var src: UInt8 {
        get { registers >> 4 }
        set { registers = (registers & 0x0f) | (newValue << 4) }
    }

    /// The instruction class: the low three bits of the opcode.
    public var instructionClass: InstructionClass { InstructionClass(rawValue: opcode & 0x07)! }

    /// The whole slot as a little-endian 64-bit number, the form `-- raw` sections use.
    public var rawValue: UInt64 {
        UInt64(opcode)
            | UInt64(registers) << 8
            | UInt64(UInt16(bitPattern: offset)) << 16
            | UInt64(UInt32(bitPattern: immediate)) << 32
    }

    public init(rawValue: UInt64) {
        self.init(
            opcode: UInt8(truncatingIfNeeded: rawValue),
            registers: UInt8(truncatingIfNeeded: rawValue >> 8),
            offset: Int16(bitPattern: UInt16(truncatingIfNeeded: rawValue >> 16)),
            immediate: Int32(bitPattern: UInt32(truncatingIfNeeded: rawValue >> 32)))
    }

    /// The 8 bytes of this slot, in wire order.
    public var bytes: [UInt8] {
        let raw = rawValue
        return (0..<8).map { UInt8(truncatingIfNeeded: raw >> (8 * $0)) }
    }
}

extension Instruction {
    /// Splits a byte buffer into instruction slots. The length must be a multiple of 8.
    public static func decode(_ bytes: some Collection<UInt8>) throws(ProgramError) -> [Instruction] {
        guard bytes.count % 8 == 0 else { throw .truncatedInstructionStream(byteCount: bytes.count) }
        var result: [Instruction] = []
        result.reserveCapacity(bytes.count / 8)
        var raw: UInt64 = 0
        var shift: UInt64 = 0
        for byte in bytes {
            raw |= UInt64(byte) << shift
            shift += 8
            if shift == 64 {
                result.append(Instruction(rawValue: raw))
                raw = 0
                shift = 0
            }
        }
        return result
    }

    /// The wire bytes of a sequence of slots.
    public static func encode(_ instructions: some Sequence<Instruction>) -> [UInt8] {
        var out: [UInt8] = []
        for instruction in instructions { out.append(contentsOf: instruction.bytes) }
        return out
    }
}

/// The eight instruction classes (RFC 9669 section 3.3).
public enum InstructionClass: UInt8, Sendable, CaseIterable {
    /// `BPF_LD`: only `lddw` and the legacy packet loads.
    case ld = 0x00
    /// `BPF_LDX`: loads into a register.
    case ldx = 0x01
    /// `BPF_ST`: stores of an immediate.
    case st = 0x02
    /// `BPF_STX`: stores of a register, and atomics.
    case stx = 0x03
    /// `BPF_ALU`: 32-bit arithmetic.
    case alu = 0x04
    /// `BPF_JMP`: 64-bit compares, calls and exit.
    case jmp = 0x05
    /// `BPF_JMP32`: 32-bit compares, and `gotol`.
    case jmp32 = 0x06
    /// `BPF_ALU64`: 64-bit arithmetic.
    case alu64 = 0x07
}
