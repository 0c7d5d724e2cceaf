import BPFCore
import Testing

/// The opcode table, walked over all 256 opcode bytes.
struct OpcodeTableTests {
    /// Opcode bytes the Linux 6.18 kernel knows (`bpf_opcode_in_insntable`): for each byte,
    /// the program `{byte, 0, 0, 0}; exit` was loaded with kernel_oracle.py `verify` and the
    /// byte counted as known unless the verifier said "unknown opcode XX".
    static let kernelKnownOpcodes: Set<UInt8> = [
        0x01, 0x04, 0x05, 0x06, 0x07, 0x09, 0x0c, 0x0f, 0x11, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1c,
        0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2c, 0x2d, 0x2e, 0x2f, 0x30,
        0x31, 0x34, 0x35, 0x36, 0x37, 0x39, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41, 0x44, 0x45, 0x46, 0x47,
        0x48, 0x49, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x54, 0x55, 0x56, 0x57, 0x59, 0x5c, 0x5d, 0x5e,
        0x5f, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x71,
        0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f, 0x81, 0x84, 0x85,
        0x87, 0x89, 0x91, 0x94, 0x95, 0x97, 0x9c, 0x9f, 0xa1, 0xa4, 0xa5, 0xa6, 0xa7, 0xa9, 0xac, 0xad,
        0xae, 0xaf, 0xb1, 0xb4, 0xb5, 0xb6, 0xb7, 0xb9, 0xbc, 0xbd, 0xbe, 0xbf, 0xc1, 0xc3, 0xc4, 0xc5,
        0xc6, 0xc7, 0xc9, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd1, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd9, 0xdb,
        0xdc, 0xdd, 0xde, 0xe1, 0xe5, 0xe9, 0xf1, 0xf9,
    ]

    /// Bytes in the kernel's table that are not instructions a loader may pass: the kernel
    /// keeps them for its own rewrites, and refuses them at load ("BPF_LDX uses reserved
    /// fields"): BPF_LDX with mode IMM (0x00), PROBE_MEM (0x20), PROBE_MEMSX (0x40),
    /// PROBE_MEM32 (0xa0), PROBE_MEM32SX (0xc0) and PROBE_ATOMIC (0xe0).
    static let kernelInternalOpcodes: Set<UInt8> = [
        0x01, 0x09, 0x11, 0x19, 0x21, 0x29, 0x31, 0x39, 0x41, 0x49, 0x51, 0x59,
        0xa1, 0xa9, 0xb1, 0xb9, 0xc1, 0xc9, 0xd1, 0xd9, 0xe1, 0xe9, 0xf1, 0xf9,
    ]

    @Test("bpfsim knows exactly the kernel's loadable opcodes, plus callx")
    func opcodeSetMatchesKernel() {
        let ours = Set(InstructionSet.specs.filter { $0.operation != .lddwSecondSlot }.map(\.opcode))
        // callx (0x8d) is in the conformance suite and RFC 9669 but not in the kernel.
        let expected = Self.kernelKnownOpcodes.subtracting(Self.kernelInternalOpcodes).union([0x8d])
        #expect(
            ours == expected,
            "only ours: \(ours.subtracting(expected).sorted()), only kernel's: \(expected.subtracting(ours).sorted())")
    }

    @Test("every opcode byte either decodes or is refused as unknown", arguments: 0...255)
    func everyByte(_ byte: Int) throws {
        let opcode = UInt8(byte)
        var slots = [Instruction(opcode: opcode)]
        if opcode == 0x18 { slots.append(Instruction(opcode: 0)) }
        slots.append(Instruction(opcode: 0x95))
        let candidates = InstructionSet.byOpcode[byte]
        do {
            let program = try Program(instructions: slots)
            #expect(!candidates.isEmpty)
            #expect(program.decoded[0].operation == InstructionSet.spec(for: slots[0])?.operation)
        } catch {
            if candidates.isEmpty {
                #expect(error.code == "unknown_opcode")
                #expect(error.description == "instruction 0: unknown opcode 0x\(String(byte, radix: 16))")
            } else {
                // Known byte, but all-zero fields select nothing or break a field rule.
                #expect(error.code != "unknown_opcode", "\(error)")
            }
        }
    }

    @Test("every operation has exactly one row, and rows agree with their opcode's class")
    func rowsAreConsistent() {
        var seen: Set<Operation> = []
        for spec in InstructionSet.specs {
            #expect(!seen.contains(spec.operation), "\(spec.operation) has two rows")
            seen.insert(spec.operation)
            #expect(spec.opcode & 0x07 == spec.instructionClass.rawValue)
            if spec.accessSize > 0 { #expect([1, 2, 4, 8].contains(spec.accessSize)) }
        }
        #expect(seen == Set(Operation.allCases))
    }

    @Test("slots round-trip through their 64-bit and byte forms")
    func encodeDecode() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let raw = UInt64.random(in: .min ... .max, using: &generator)
            let instruction = Instruction(rawValue: raw)
            #expect(instruction.rawValue == raw)
            #expect(try Instruction.decode(instruction.bytes) == [instruction])
        }
        // RFC 9669 section 3: opcode, dst in the low nibble, src in the high nibble, offset, imm.
        let example = Instruction(opcode: 0xb7, dst: 1, src: 2, offset: -2, immediate: 0x1234_5678)
        #expect(example.bytes == [0xb7, 0x21, 0xfe, 0xff, 0x78, 0x56, 0x34, 0x12])
        throwsExactly(ProgramError.truncatedInstructionStream(byteCount: 7)) { () throws(ProgramError) in
            _ = try Instruction.decode([UInt8](repeating: 0, count: 7))
        }
    }
}

/// `#throws(error) { ... }`: the block throws exactly `error`.
func throwsExactly<E: Error & Equatable>(
    _ expected: E, _ body: () throws(E) -> Void, sourceLocation: SourceLocation = #_sourceLocation
) {
    do {
        try body()
        Issue.record("expected \(expected), nothing was thrown", sourceLocation: sourceLocation)
    } catch {
        #expect(error == expected, sourceLocation: sourceLocation)
    }
}
