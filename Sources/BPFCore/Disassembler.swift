/// Turns instruction slots back into the assembler's text. Assembling the output gives
/// back the same bytes, for any input: a slot the syntax cannot express (an unknown
/// opcode, a non-zero reserved field) is written as `.slot 0x<64-bit raw value>`.
public enum Disassembler {
    public struct Line: Sendable, Hashable {
        /// The slot index of the instruction's first slot.
        public let index: Int
        /// How many slots it occupies (2 for `lddw`).
        public let slots: Int
        /// The assembly text, without comments.
        public let text: String
        /// A note for people: the jump target, the helper's name.
        public let comment: String?
    }

    /// One line per instruction.
    public static func lines(_ instructions: [Instruction]) -> [Line] {
        var lines: [Line] = []
        var index = 0
        while index < instructions.count {
            let (text, comment, slots) = render(instructions, at: index)
            // Check that the text assembles to exactly these slots; otherwise fall back to raw.
            let expected = Array(instructions[index..<min(index + slots, instructions.count)])
            if slots <= instructions.count - index, (try? Assembler.assemble(text)) == expected {
                lines.append(Line(index: index, slots: slots, text: text, comment: comment))
                index += slots
            } else {
                let raw = ".slot 0x" + hex(instructions[index].rawValue, width: 16)
                lines.append(Line(index: index, slots: 1, text: raw, comment: "not a valid instruction"))
                index += 1
            }
        }
        return lines
    }

    /// The whole listing as assembly text, each line ending with `# index` (and a note).
    public static func text(_ instructions: [Instruction]) -> String {
        let lines = lines(instructions)
        let width = max(24, (lines.map(\.text.count).max() ?? 0) + 2)
        let indexWidth = String(max(0, instructions.count - 1)).count
        var out = ""
        for line in lines {
            out += line.text
            out += String(repeating: " ", count: width - line.text.count)
            out += "# " + pad(String(line.index), indexWidth)
            if let comment = line.comment { out += "  " + comment }
            out += "\n"
        }
        return out
    }

    /// Text and comment of the instruction starting at `index`, and its slot count.
    static func render(_ instructions: [Instruction], at index: Int) -> (String, String?, Int) {
        let instruction = instructions[index]
        guard let spec = InstructionSet.spec(for: instruction) else {
            return (".slot", nil, 1)
        }
        let mnemonic = spec.mnemonic
        let dst = reg(instruction.dst)
        let src = reg(instruction.src)
        let imm = instruction.immediate
        let target = { (distance: Int) -> String in "-> \(index + distance + 1)" }
        switch spec.form {
        case .aluImmediate: return ("\(mnemonic) \(dst), \(number(imm))", nil, 1)
        case .aluRegister: return ("\(mnemonic) \(dst), \(src)", nil, 1)
        case .aluUnary: return ("\(mnemonic) \(dst)", nil, 1)
        case .load, .loadAcquire: return ("\(mnemonic) \(dst), \(memory(instruction.src, instruction.offset))", nil, 1)
        case .storeImmediate:
            return ("\(mnemonic) \(memory(instruction.dst, instruction.offset)), \(number(imm))", nil, 1)
        case .storeRegister, .storeRelease, .atomic:
            return ("\(mnemonic) \(memory(instruction.dst, instruction.offset)), \(src)", nil, 1)
        case .jumpAlways: return ("\(mnemonic) \(signed(Int(instruction.offset)))", target(Int(instruction.offset)), 1)
        case .jumpLong: return ("ja32 \(signed(Int(imm)))", target(Int(imm)), 1)
        case .jumpImmediate:
            return (
                "\(mnemonic) \(dst), \(number(imm)), \(signed(Int(instruction.offset)))",
                target(Int(instruction.offset)), 1
            )
        case .jumpRegister:
            return (
                "\(mnemonic) \(dst), \(src), \(signed(Int(instruction.offset)))", target(Int(instruction.offset)), 1
            )
        case .callHelper: return ("call \(imm)", HelperNames.name(of: imm), 1)
        case .callLocal: return ("call local \(signed(Int(imm)))", target(Int(imm)), 1)
        case .callKfunc: return ("call runtime \(imm)", nil, 1)
        case .callx: return ("call \(dst)", nil, 1)
        case .exit: return ("exit", nil, 1)
        case .loadAbsolute: return ("\(mnemonic) \(imm)", nil, 1)
        case .loadIndirect: return ("\(mnemonic) \(src), \(imm)", nil, 1)
        case .loadImmediate64:
            guard index + 1 < instructions.count else { return (".slot", nil, 1) }
            let high = instructions[index + 1].immediate
            switch instruction.src {
            case 0:
                let value = UInt64(UInt32(bitPattern: imm)) | UInt64(UInt32(bitPattern: high)) << 32
                return ("lddw \(dst), 0x\(hex(value, width: 1))", nil, 2)
            case OpcodeField.pseudoMapFD: return ("lddw \(dst), map_fd \(imm)", nil, 2)
            case OpcodeField.pseudoMapValue: return ("lddw \(dst), map_value \(imm), \(high)", nil, 2)
            case OpcodeField.pseudoBTFID: return ("lddw \(dst), btf_id \(imm), \(high)", nil, 2)
            case OpcodeField.pseudoFunc: return ("lddw \(dst), func \(signed(Int(imm)))", target(Int(imm)), 2)
            case OpcodeField.pseudoMapIndex: return ("lddw \(dst), map_idx \(imm)", nil, 2)
            case OpcodeField.pseudoMapIndexValue: return ("lddw \(dst), map_idx_value \(imm), \(high)", nil, 2)
            default: return (".slot", nil, 1)
            }
        }
    }

    static func reg(_ number: UInt8) -> String { "%r\(number)" }

    /// Small immediates in decimal, large ones (masks, addresses) as a 32-bit hex pattern.
    static func number(_ value: Int32) -> String {
        if value > -65536 && value < 65536 { return "\(value)" }
        return "0x" + String(UInt32(bitPattern: value), radix: 16)
    }

    static func memory(_ base: UInt8, _ offset: Int16) -> String {
        offset == 0 ? "[\(reg(base))]" : "[\(reg(base))\(signed(Int(offset)))]"
    }

    static func signed(_ value: Int) -> String { value < 0 ? "\(value)" : "+\(value)" }

    static func hex(_ value: UInt64, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    static func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}
