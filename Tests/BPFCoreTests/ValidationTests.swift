import BPFCore
import Testing

/// Load-time validation: each refusal names the instruction index.
struct ValidationTests {
    func refusal(_ text: String, _ options: ValidationOptions = .init()) -> ProgramError? {
        do {
            _ = try Program(instructions: try Assembler.assemble(text), options: options)
            return nil
        } catch {
            return error
        }
    }

    func refusal(_ slots: [Instruction], _ options: ValidationOptions = .init()) -> ProgramError? {
        do {
            _ = try Program(instructions: slots, options: options)
            return nil
        } catch {
            return error
        }
    }

    @Test func unknownOpcode() {
        #expect(
            refusal([Instruction(opcode: 0xb7), Instruction(opcode: 0x38), Instruction(opcode: 0x95)])?.description
                == "instruction 1: unknown opcode 0x38")
    }

    @Test func badModifier() {
        // div with offset 2 is neither div (0) nor sdiv (1).
        #expect(
            refusal([Instruction(opcode: 0x3f, dst: 1, src: 2, offset: 2), Instruction(opcode: 0x95)])?.description
                == "instruction 0: offset 2 is not valid for opcode 0x3f (expected 0 (div) or 1 (sdiv))")
        #expect(
            refusal([Instruction(opcode: 0xd4, dst: 1, immediate: 8), Instruction(opcode: 0x95)])?.code
                == "invalid_modifier")
    }

    @Test func badRegister() {
        #expect(refusal("mov %r11, 1\nexit")?.description == "instruction 0: dst register r11 does not exist (r0-r10)")
        #expect(
            refusal("add %r1, %r12\nexit")?.description == "instruction 0: src register r12 does not exist (r0-r10)")
    }

    @Test func writeToFramePointer() {
        #expect(refusal("mov %r10, 1\nexit")?.description == "instruction 0: mov writes r10, which is read-only")
        #expect(
            refusal("mov %r0, 0\nldxdw %r10, [%r1]\nexit")?.description
                == "instruction 1: ldxdw writes r10, which is read-only")
        #expect(refusal("lock fetch add [%r1], %r10\nexit")?.code == "write_to_r10")
        // Storing through r10 is the normal way to use the stack.
        #expect(refusal("stdw [%r10-8], 1\nmov %r0, 0\nexit") == nil)
    }

    @Test func reservedFields() {
        // add with a register source must have imm 0.
        #expect(
            refusal([Instruction(opcode: 0x0f, dst: 1, src: 2, immediate: 5), Instruction(opcode: 0x95)])?.description
                == "instruction 0: add uses reserved field imm (5, must be 0)")
        #expect(
            refusal([Instruction(opcode: 0x95, dst: 1)])?.description
                == "instruction 0: exit uses reserved field dst (1, must be 0)")
        #expect(
            refusal([Instruction(opcode: 0x07, dst: 1, offset: 3), Instruction(opcode: 0x95)])?.code == "reserved_field"
        )
    }

    @Test func jumps() {
        #expect(refusal("ja +5\nexit")?.description == "instruction 0: jump to 6 is outside the program (0..<2)")
        #expect(refusal("ja -2\nexit")?.description == "instruction 0: jump to -1 is outside the program (0..<2)")
        #expect(
            refusal("ja +1\nlddw %r0, 1\nexit")?.description
                == "instruction 0: jump to 2 lands in the second half of an lddw")
        #expect(refusal("call local +5\nexit")?.code == "jump_out_of_range")
    }

    @Test func lddwPairs() {
        #expect(
            refusal([Instruction(opcode: 0xb7), Instruction(opcode: 0x18)])?.description
                == "instruction 1: lddw is missing its second slot")
        #expect(
            refusal([Instruction(opcode: 0x18), Instruction(opcode: 0x95), Instruction(opcode: 0x95)])?.description
                == "instruction 0: the second slot of an lddw must have only imm set (opcode is 149)")
        #expect(
            refusal([Instruction(opcode: 0x18, src: 7), Instruction(opcode: 0), Instruction(opcode: 0x95)])?.code
                == "invalid_pseudo_source")
    }

    @Test func emptyAndTooLarge() {
        #expect(refusal([Instruction]()) == .emptyProgram)
        #expect(
            refusal(
                [Instruction](repeating: Instruction(opcode: 0x95), count: 3), ValidationOptions(maxInstructions: 2))
                == .tooLarge(count: 3, limit: 2))
    }

    /// The kernel's stricter load-time rules. Its messages (Linux 6.18, kernel_oracle.py
    /// conformance): "invalid shift 68" for lsh64-imm-high.data, "unknown opcode 8d" for callx.data.
    @Test func kernelStrictness() {
        let kernel = ValidationOptions(strictness: .kernel)
        #expect(refusal("lsh %r0, 68\nexit") == nil)
        #expect(
            refusal("lsh %r0, 68\nexit", kernel)?.description
                == "instruction 0: invalid shift 68: the kernel refuses immediate shifts outside 0..<64")
        #expect(refusal("arsh32 %r0, -16\nexit", kernel)?.code == "invalid_shift")
        #expect(refusal("div %r0, 0\nexit", kernel)?.code == "division_by_zero")
        #expect(refusal("call %r2\nexit", kernel)?.description == "instruction 0: unknown opcode 0x8d")
        #expect(refusal("mov %r0, 0", kernel)?.code == "falls_off_end")
        #expect(refusal("mov %r0, 0\nexit", kernel) == nil)
    }

    @Test func functionsAndPseudoLoads() throws {
        let program = try Program(
            instructions: try Assembler.assemble(
                """
                lddw %r2, func +3
                call local +2
                exit
                mov %r0, 1
                exit
                lddw %r1, map_fd 4
                exit
                """))
        #expect(program.functionEntries == [0, 4, 5])
        #expect(program.pseudoLoads.map(\.kind) == [.function, .mapFD])
        #expect(program.pseudoLoads[0].functionTarget == 4)
        #expect(program.decoded[2].offset == 5)
        let resolved = program.resolvingPseudoLoads { load in load.kind == .mapFD ? 0xfeed : 0xf00d }
        #expect(resolved.pseudoLoads.isEmpty)
        #expect(resolved.decoded[6].immediate == 0xfeed)
    }
}
