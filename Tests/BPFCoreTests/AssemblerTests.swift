import BPFCore
import BPFTestSupport
import Foundation
import Testing

struct AssemblerTests {
    /// Encodings from the conformance suite's README and RFC 9669.
    @Test func encodesAsTheSuiteDoes() throws {
        // `lddw.data`: the raw form 0x5566778800000018 is lddw %r0 with imm 0x55667788.
        #expect(
            try Assembler.assemble("lddw %r0, 0x1122334455667788") == [
                Instruction(opcode: 0x18, immediate: 0x5566_7788), Instruction(opcode: 0, immediate: 0x1122_3344),
            ])
        #expect(try Assembler.assemble("mov %r0, 0x80000000") == [Instruction(opcode: 0xb7, immediate: Int32.min)])
        #expect(try Assembler.assemble("add32 %r1, %r2") == [Instruction(opcode: 0x0c, dst: 1, src: 2)])
        #expect(try Assembler.assemble("add64 %r1, -3") == [Instruction(opcode: 0x07, dst: 1, immediate: -3)])
        #expect(try Assembler.assemble("sdiv32 %r1, 7") == [Instruction(opcode: 0x34, dst: 1, offset: 1, immediate: 7)])
        #expect(try Assembler.assemble("movsx1664 %r1, %r2") == [Instruction(opcode: 0xbf, dst: 1, src: 2, offset: 16)])
        #expect(try Assembler.assemble("be16 %r3") == [Instruction(opcode: 0xdc, dst: 3, immediate: 16)])
        #expect(try Assembler.assemble("swap64 %r3") == [Instruction(opcode: 0xd7, dst: 3, immediate: 64)])
        #expect(try Assembler.assemble("ldxw %r0, [%r1+4]") == [Instruction(opcode: 0x61, dst: 0, src: 1, offset: 4)])
        #expect(
            try Assembler.assemble("stxdw [%r10-8], %r1") == [Instruction(opcode: 0x7b, dst: 10, src: 1, offset: -8)])
        #expect(
            try Assembler.assemble("lock fetch add [%r10-8], %r1") == [
                Instruction(opcode: 0xdb, dst: 10, src: 1, offset: -8, immediate: 0x01)
            ])
        #expect(
            try Assembler.assemble("lock cmpxchg32 [%r10-8], %r1") == [
                Instruction(opcode: 0xc3, dst: 10, src: 1, offset: -8, immediate: 0xf1)
            ])
        #expect(try Assembler.assemble("call local +2") == [Instruction(opcode: 0x85, src: 1, immediate: 2)])
        #expect(try Assembler.assemble("call %r2") == [Instruction(opcode: 0x8d, dst: 2)])
        #expect(try Assembler.assemble("ja32 -1") == [Instruction(opcode: 0x06, immediate: -1)])
    }

    @Test func labelsAndTheImplicitExitLabel() throws {
        let program = try Assembler.assemble(
            """
            jeq %r1, 0, exit   # the first exit
            ja skip
            mov %r0, 1
            skip:
            exit
            """)
        #expect(program[0].offset == 2)  // exit is slot 3
        #expect(program[1].offset == 1)
    }

    @Test func errorsNameTheLine() {
        let cases: [(String, String)] = [
            ("exit\nfrob %r1\n", "line 2: unknown mnemonic 'frob'"),
            ("mov %r0\n", "line 1: 'mov' takes 2 operands, got 1"),
            ("\n\nmov %r16, 1\n", "line 3: '%r16' is not a register (%r0-%r10)"),
            ("mov %r0, 0x100000000\n", "line 1: 32-bit immediate 0x100000000 is out of range"),
            ("mov %r0, 2147483648\n", "line 1: 32-bit immediate 2147483648 is out of range"),
            ("mov %r0, twelve\n", "line 1: 'twelve' is not a valid immediate"),
            ("ldxw %r0, %r1\n", "line 1: '%r1' is not a memory operand like [%r1+8]"),
            ("ldxw %r0, [%r1+40000]\n", "line 1: offset +40000 is out of range"),
            ("ja nowhere\nexit\n", "line 1: undefined label 'nowhere'"),
            ("a:\nexit\na:\n", "line 3: label 'a' is already defined on line 1"),
            ("call sideways 3\n", "line 1: 'sideways' is not a call kind (helper, local or runtime)"),
        ]
        for (text, message) in cases {
            do {
                _ = try Assembler.assemble(text)
                Issue.record("expected an error for \(text.debugDescription)")
            } catch {
                #expect(error.description == message)
            }
        }
    }

    @Test("every encoding in the table disassembles and assembles back")
    func everyEncodingRoundTrips() throws {
        for spec in InstructionSet.specs where spec.operation != .lddwSecondSlot {
            var instruction = Instruction(opcode: spec.opcode, dst: 3, src: 4, offset: -8, immediate: 12)
            switch spec.selector {
            case .offset(let value): instruction.offset = value
            case .immediate(let value): instruction.immediate = value
            case .source(let value): instruction.src = value
            case .none: break
            }
            var slots = [instruction]
            if spec.form == .loadImmediate64 { slots.append(Instruction(opcode: 0, immediate: 7)) }
            let text = Disassembler.text(slots)
            #expect(try Assembler.assemble(text) == slots, "\(spec.mnemonic): \(text)")
        }
    }

    @Test(
        "assembling the disassembly gives back every conformance program's bytes",
        .enabled(if: TestInputs.conformanceDirectory != nil, Comment(rawValue: TestInputs.conformanceSkipMessage)))
    func conformanceRoundTrip() throws {
        let files = TestInputs.conformanceFiles
        #expect(files.count == 313)
        for file in files {
            let test = try ConformanceTest(parsing: String(contentsOf: file, encoding: .utf8))
            let slots = try test.instructions()
            let text = Disassembler.text(slots)
            #expect(try Assembler.assemble(text) == slots, "\(file.lastPathComponent)")
            #expect(!text.contains(".slot"), "\(file.lastPathComponent) has a slot the syntax cannot express")
        }
    }

    @Test("bytes the syntax cannot express survive as .slot")
    func rawSlots() throws {
        let odd = [Instruction(opcode: 0xff, dst: 1), Instruction(opcode: 0x07, dst: 1, src: 2, immediate: 1)]
        let text = Disassembler.text(odd)
        #expect(text.contains(".slot 0x00000000000001ff"))
        #expect(try Assembler.assemble(text) == odd)
    }
}
