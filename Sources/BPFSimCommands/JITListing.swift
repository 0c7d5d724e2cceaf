import BPFJIT
import BPFSim
import X86Disassembly

/// `bpfsim disasm --jit`: the JIT's code for a program, as capstone reads it, each
/// instruction's x86 block under the BPF instruction it came from, then the out-of-line
/// slow paths (naming their instruction) and the thunks.
enum JITListing {
    /// `sourceLines` (instruction index to `file.c:LINE`) puts each C line above the
    /// instructions it produced.
    static func text(_ program: Program, sourceLines: [Int: String] = [:]) throws -> String {
        let map = try JIT.codeMap(for: program)
        var out = "; entry and exits\n"
        out += try block(map, map.prologue)
        let lines = Disassembler.lines(program.instructions)
        var lastSource: String?
        for line in lines {
            if let source = sourceLines[line.index], source != lastSource {
                out += "\n; \(source)"
                lastSource = source
            }
            out += "\n\(line.index): \(line.text)\n"
            let range =
                map.instructions[line.index].lowerBound..<map.instructions[line.index + line.slots - 1].upperBound
            out += try block(map, range)
        }
        for part in map.outOfLine {
            out += "\n; \(part.name)" + (part.pc.map { " for instruction \($0)" } ?? "") + "\n"
            out += try block(map, part.range)
        }
        return out
    }

    /// One x86 instruction per line: offset, bytes, assembly.
    static func block(_ map: JITCodeMap, _ range: Range<Int>) throws -> String {
        guard !range.isEmpty else { return "" }
        var out = ""
        for instruction in try X86Disassembler.disassemble(Array(map.code[range]), address: UInt64(range.lowerBound)) {
            let offset = String(instruction.address, radix: 16)
            let bytes = instruction.bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
            out += "  " + String(repeating: "0", count: max(0, 6 - offset.count)) + offset + "  "
            out += bytes.padding(toLength: 30, withPad: " ", startingAt: 0) + " " + instruction.text + "\n"
        }
        return out
    }
}
