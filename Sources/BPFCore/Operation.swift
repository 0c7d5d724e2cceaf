/// Every distinct operation of the instruction set, after the opcode byte and its
/// modifier field (offset for sdiv/smod/movsx, imm for byte swaps and atomics, src for
/// calls) have been resolved. Engines switch on this, never on raw opcode bytes.
///
/// Which encoding yields which operation is defined in exactly one place:
/// `InstructionSet.specs`. The raw values are dense so a `switch` is a jump table.
public enum Operation: UInt8, Sendable, CaseIterable {
    // MARK: ALU64 (BPF_ALU64, class 0x07)
    case add64Imm, add64Reg, sub64Imm, sub64Reg, mul64Imm, mul64Reg
    case div64Imm, div64Reg, sdiv64Imm, sdiv64Reg, mod64Imm, mod64Reg, smod64Imm, smod64Reg
    case or64Imm, or64Reg, and64Imm, and64Reg, xor64Imm, xor64Reg
    case lsh64Imm, lsh64Reg, rsh64Imm, rsh64Reg, arsh64Imm, arsh64Reg
    case neg64, mov64Imm, mov64Reg
    /// `movsx` (v4): sign-extend the low 8/16/32 bits of src into 64 bits.
    case movsx8To64, movsx16To64, movsx32To64

    // MARK: ALU (BPF_ALU, class 0x04): results are zero-extended to 64 bits
    case add32Imm, add32Reg, sub32Imm, sub32Reg, mul32Imm, mul32Reg
    case div32Imm, div32Reg, sdiv32Imm, sdiv32Reg, mod32Imm, mod32Reg, smod32Imm, smod32Reg
    case or32Imm, or32Reg, and32Imm, and32Reg, xor32Imm, xor32Reg
    case lsh32Imm, lsh32Reg, rsh32Imm, rsh32Reg, arsh32Imm, arsh32Reg
    case neg32, mov32Imm, mov32Reg
    /// `movsx` (v4): sign-extend the low 8/16 bits of src into 32 bits, then zero-extend.
    case movsx8To32, movsx16To32

    // MARK: Byte order (BPF_END)
    /// `le16/32/64` (0xd4): to little endian; on a little-endian machine a truncation.
    case le16, le32, le64
    /// `be16/32/64` (0xdc): to big endian.
    case be16, be32, be64
    /// `bswap16/32/64` (0xd7, v4): unconditional byte swap.
    case bswap16, bswap32, bswap64

    // MARK: Loads and stores
    case ldxb, ldxh, ldxw, ldxdw
    /// Sign-extending loads (v4, BPF_MEMSX).
    case ldxsb, ldxsh, ldxsw
    case stb, sth, stw, stdw
    case stxb, stxh, stxw, stxdw
    /// `lddw` (BPF_LD | BPF_IMM | BPF_DW): a 64-bit constant over two slots. Pseudo forms
    /// (map fd, map value, function, ...) are resolved to a constant before execution.
    case lddw
    /// Legacy packet loads (BPF_LD | BPF_ABS / BPF_IND): r0 = ntoh(packet[imm (+ src)]).
    case ldabsb, ldabsh, ldabsw, ldindb, ldindh, ldindw

    // MARK: Atomics (BPF_STX | BPF_ATOMIC)
    case atomicAdd32, atomicOr32, atomicAnd32, atomicXor32
    case atomicFetchAdd32, atomicFetchOr32, atomicFetchAnd32, atomicFetchXor32
    case atomicXchg32, atomicCmpxchg32
    case atomicAdd64, atomicOr64, atomicAnd64, atomicXor64
    case atomicFetchAdd64, atomicFetchOr64, atomicFetchAnd64, atomicFetchXor64
    case atomicXchg64, atomicCmpxchg64
    /// `BPF_LOAD_ACQ` (imm 0x100): dst = *(size *)(src + off), with acquire ordering.
    case loadAcquire8, loadAcquire16, loadAcquire32, loadAcquire64
    /// `BPF_STORE_REL` (imm 0x110): *(size *)(dst + off) = src, with release ordering.
    case storeRelease8, storeRelease16, storeRelease32, storeRelease64

    // MARK: Jumps (BPF_JMP, class 0x05)
    /// `ja`: pc += off.
    case ja
    case jeq64Imm, jeq64Reg, jgt64Imm, jgt64Reg, jge64Imm, jge64Reg, jset64Imm, jset64Reg
    case jne64Imm, jne64Reg, jsgt64Imm, jsgt64Reg, jsge64Imm, jsge64Reg
    case jlt64Imm, jlt64Reg, jle64Imm, jle64Reg, jslt64Imm, jslt64Reg, jsle64Imm, jsle64Reg

    // MARK: Jumps (BPF_JMP32, class 0x06)
    /// `may_goto` (BPF_JMP | BPF_JCOND, src 0): jump when the run's loop allowance is used
    /// up, otherwise use one unit of it and fall through.
    case mayGoto
    /// `gotol` / `ja32` (v4): pc += imm.
    case ja32
    case jeq32Imm, jeq32Reg, jgt32Imm, jgt32Reg, jge32Imm, jge32Reg, jset32Imm, jset32Reg
    case jne32Imm, jne32Reg, jsgt32Imm, jsgt32Reg, jsge32Imm, jsge32Reg
    case jlt32Imm, jlt32Reg, jle32Imm, jle32Reg, jslt32Imm, jslt32Reg, jsle32Imm, jsle32Reg

    // MARK: Calls and exit
    /// `call imm` with src 0: a helper by its kernel id.
    case callHelper
    /// `call` with src 1 (BPF_PSEUDO_CALL): a bpf-to-bpf call, target pc + imm + 1.
    case callLocal
    /// `call` with src 2 (BPF_PSEUDO_KFUNC_CALL): a kernel function by BTF id.
    case callKfunc
    /// `callx` (0x8d): call the helper or function whose id or address is in dst.
    case callx
    case exit

    /// The second slot of an `lddw`. Never executed: validation forbids jumping here.
    case lddwSecondSlot
}
