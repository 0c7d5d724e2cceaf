import BPFCore
import BPFRuntime

/// Text people read about an object: aligned program and map tables (in the spirit of
/// `bpftool prog show` / `bpftool map show`) and disassembly with source lines.
public enum ObjectListing {
    /// One row per program: `ID NAME SECTION TYPE ATTACH INSNS`.
    public static func programTable(_ object: BPFObject) -> String {
        var rows = [["ID", "NAME", "SECTION", "TYPE", "ATTACH_TO", "INSNS"]]
        for (index, program) in object.programs.enumerated() {
            rows.append([
                "\(index)", program.name, program.section, program.type.kernelName, program.attachTarget ?? "-",
                "\(program.instructions.count)",
            ])
        }
        return table(rows, rightAligned: [0, 5])
    }

    /// One row per map: `ID NAME TYPE KEY VALUE MAX_ENTRIES FLAGS`.
    public static func mapTable(_ object: BPFObject) -> String {
        var rows = [["ID", "NAME", "TYPE", "KEY", "VALUE", "MAX_ENTRIES", "FLAGS"]]
        for (index, map) in object.maps.enumerated() {
            rows.append([
                "\(index)", map.name, map.type.kernelName, "\(map.keySize)", "\(map.valueSize)", "\(map.maxEntries)",
                "0x" + String(map.flags, radix: 16),
            ])
        }
        return table(rows, rightAligned: [0, 3, 4, 5])
    }

    /// Columns separated by two spaces, each as wide as its widest cell.
    static func table(_ rows: [[String]], rightAligned: Set<Int>) -> String {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                if column == row.count - 1 && !rightAligned.contains(column) { return cell }
                return rightAligned.contains(column) ? pad + cell : cell + pad
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    /// The program's disassembly (assembly `bpfsim asm` reads back), with a `<function>:`
    /// comment where each function starts and the C source line, from BTF line info,
    /// as a comment before the first instruction of each line:
    ///
    ///     # <count_flows>
    ///     # btf_maps.c:63: struct flow_key key = {};
    ///     mov %r1, 0              # 0
    public static func disassembly(_ program: ObjectProgram, maps: [MapSpec] = []) -> String {
        let lines = Disassembler.lines(program.instructions)
        let width = max(24, (lines.map(\.text.count).max() ?? 0) + 2)
        let indexWidth = String(max(0, program.instructions.count - 1)).count
        let starts = Dictionary(program.functions.map { ($0.start, $0.name) }, uniquingKeysWith: { a, _ in a })
        let sourceLines = Dictionary(
            program.lineInfo.map { ($0.instructionIndex, $0) }, uniquingKeysWith: { _, b in b })
        var out = ""
        var lastSource: (String, Int)?
        for line in lines {
            if let name = starts[line.index] {
                out += "# <\(name)>\n"
                lastSource = nil
            }
            if let source = sourceLines[line.index], lastSource.map({ $0 != (source.file, source.line) }) ?? true {
                let text = source.source.trimmingSpaces()
                out += "# \(source.location)" + (text.isEmpty ? "" : ": " + text) + "\n"
                lastSource = (source.file, source.line)
            }
            out += line.text + String(repeating: " ", count: width - line.text.count)
            out += "# " + String(repeating: " ", count: max(0, indexWidth - String(line.index).count)) + "\(line.index)"
            if let comment = line.comment ?? mapComment(program.instructions[line.index], maps: maps) {
                out += "  " + comment
            }
            out += "\n"
        }
        return out
    }

    /// Names the map an `lddw map_idx` refers to.
    static func mapComment(_ instruction: Instruction, maps: [MapSpec]) -> String? {
        guard instruction.opcode == 0x18,
            instruction.src == PseudoLoad.Kind.mapIndex.rawValue
                || instruction.src == PseudoLoad.Kind.mapIndexValue.rawValue,
            instruction.immediate >= 0, Int(instruction.immediate) < maps.count
        else { return nil }
        return "map " + maps[Int(instruction.immediate)].name
    }
}

extension String {
    func trimmingSpaces() -> String {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" || last == "\n" { text.removeLast() }
        return String(text)
    }
}
