/// Assembles the text syntax of the bpf_conformance suite (see ../shared/conformance/README.md
/// and docs/assembly.md) into instruction slots.
///
/// Beyond the suite's syntax it accepts the pseudo `lddw` forms (`lddw %r1, map_fd 3`),
/// the legacy packet loads (`ldabsw 12`, `ldindb %r2, 0`) and load-acquire/store-release.
public enum Assembler {
    /// Assembles `text`; errors name the 1-based line, counted from `firstLine`.
    public static func assemble(_ text: String, firstLine: Int = 1) throws(ProgramError) -> [Instruction] {
        var lines: [(Int, Substring)] = []
        var number = firstLine
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lines.append((number, line))
            number += 1
        }
        return try assemble(lines: lines)
    }

    /// Assembles numbered lines (the conformance file parser keeps the file's numbering).
    public static func assemble(lines: [(Int, Substring)]) throws(ProgramError) -> [Instruction] {
        var state = AssemblerState()
        for (number, raw) in lines {
            try state.add(line: raw, number: number)
        }
        return try state.finish()
    }
}

/// A pending reference to a label, patched when all labels are known.
private struct Fixup {
    enum Field { case offset, immediate }
    let slot: Int
    let label: String
    let field: Field
    let line: Int
}

private struct AssemblerState {
    var output: [Instruction] = []
    var labels: [String: (slot: Int, line: Int)] = [:]
    var firstExit: Int?
    var fixups: [Fixup] = []

    static let mnemonics: [String: [InstructionSpec]] = {
        var table: [String: [InstructionSpec]] = [:]
        for spec in InstructionSet.specs where spec.operation != .lddwSecondSlot {
            table[spec.mnemonic, default: []].append(spec)
            // "add64" is "add"; "swap16" is "bswap16"; "gotol" is "ja32".
            if spec.instructionClass == .alu64 && spec.form != .aluUnary && !spec.mnemonic.hasPrefix("movsx") {
                table[spec.mnemonic + "64", default: []].append(spec)
            }
            if spec.mnemonic.hasPrefix("bswap") { table[String(spec.mnemonic.dropFirst()), default: []].append(spec) }
            if spec.mnemonic == "ja32" { table["gotol", default: []].append(spec) }
        }
        return table
    }()

    mutating func add(line raw: Substring, number: Int) throws(ProgramError) {
        var text = raw
        if let hash = text.firstIndex(of: "#") { text = text[..<hash] }
        var words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map { word -> Substring in
            word.hasSuffix(",") ? word.dropLast() : word
        }
        words.removeAll { $0.isEmpty }
        guard let first = words.first else { return }

        if first.hasSuffix(":") {
            // A label; anything after it on the line is ignored, as upstream does.
            let label = String(first.dropLast())
            if let previous = labels[label] {
                throw .duplicateLabel(label, firstLine: previous.line, line: number)
            }
            labels[label] = (output.count, number)
            return
        }

        var mnemonic = String(first)
        var operands = words.dropFirst().map(String.init)
        if mnemonic == "lock" {
            // lock [fetch] op [%rD+OFF], %rS
            guard let op = operands.first else { throw .operandCount("lock", expected: 3, got: 0, line: number) }
            if op == "fetch", operands.count > 1 {
                mnemonic = "lock fetch " + operands[1]
                operands.removeFirst(2)
            } else {
                mnemonic = "lock " + op
                operands.removeFirst()
            }
            // xchg and cmpxchg always fetch; "lock fetch xchg" is accepted too.
            for name in ["xchg", "cmpxchg"] {
                if mnemonic == "lock fetch \(name)" || mnemonic == "lock fetch \(name)32" {
                    mnemonic = "lock " + mnemonic.dropFirst("lock fetch ".count)
                }
            }
        }
        if mnemonic == "call" { return try addCall(operands, line: number) }
        if mnemonic == ".slot" {
            // A raw 64-bit slot, as the disassembler writes what the syntax cannot express.
            guard operands.count == 1 else {
                throw .operandCount(".slot", expected: 1, got: operands.count, line: number)
            }
            output.append(Instruction(rawValue: try immediate64(operands[0], line: number)))
            return
        }
        if mnemonic == "exit" && firstExit == nil { firstExit = output.count }

        guard let specs = Self.mnemonics[mnemonic] else { throw .unknownMnemonic(mnemonic, line: number) }
        try encode(mnemonic: mnemonic, specs: specs, operands: operands, line: number)
    }

    mutating func encode(mnemonic: String, specs: [InstructionSpec], operands: [String], line: Int) throws(ProgramError)
    {
        var spec = specs[0]
        func expect(_ count: Int) throws(ProgramError) {
            if operands.count != count {
                throw .operandCount(mnemonic, expected: count, got: operands.count, line: line)
            }
        }
        // ALU and jump mnemonics have an immediate and a register form.
        if specs.count > 1 {
            let registerForm = operands.count >= 2 && operands[1].hasPrefix("%")
            let wanted: Form =
                switch spec.form {
                case .aluImmediate, .aluRegister: registerForm ? .aluRegister : .aluImmediate
                case .jumpImmediate, .jumpRegister: registerForm ? .jumpRegister : .jumpImmediate
                default: spec.form
                }
            spec = specs.first { $0.form == wanted } ?? spec
        }
        var instruction = Instruction(opcode: spec.opcode)
        switch spec.selector {
        case .offset(let value): instruction.offset = value
        case .immediate(let value): instruction.immediate = value
        case .source(let value): instruction.src = value
        case .none: break
        }

        switch spec.form {
        case .aluImmediate:
            try expect(2)
            instruction.dst = try register(operands[0], line: line)
            instruction.immediate = try immediate32(operands[1], line: line)
        case .aluRegister:
            try expect(2)
            instruction.dst = try register(operands[0], line: line)
            instruction.src = try register(operands[1], line: line)
        case .aluUnary:
            try expect(1)
            instruction.dst = try register(operands[0], line: line)
        case .load, .loadAcquire:
            try expect(2)
            instruction.dst = try register(operands[0], line: line)
            (instruction.src, instruction.offset) = try memory(operands[1], line: line)
        case .storeImmediate:
            try expect(2)
            (instruction.dst, instruction.offset) = try memory(operands[0], line: line)
            instruction.immediate = try immediate32(operands[1], line: line)
        case .storeRegister, .atomic, .storeRelease:
            try expect(2)
            (instruction.dst, instruction.offset) = try memory(operands[0], line: line)
            instruction.src = try register(operands[1], line: line)
        case .jumpAlways:
            try expect(1)
            instruction.offset = Int16(truncatingIfNeeded: try target(operands[0], field: .offset, line: line))
        case .jumpLong:
            try expect(1)
            instruction.immediate = (try target(operands[0], field: .immediate, line: line))
        case .jumpImmediate:
            try expect(3)
            instruction.dst = try register(operands[0], line: line)
            instruction.immediate = try immediate32(operands[1], line: line)
            instruction.offset = Int16(truncatingIfNeeded: try target(operands[2], field: .offset, line: line))
        case .jumpRegister:
            try expect(3)
            instruction.dst = try register(operands[0], line: line)
            instruction.src = try register(operands[1], line: line)
            instruction.offset = Int16(truncatingIfNeeded: try target(operands[2], field: .offset, line: line))
        case .exit:
            try expect(0)
        case .loadImmediate64:
            return try addLoadImmediate64(operands, line: line)
        case .loadAbsolute:
            try expect(1)
            instruction.immediate = try immediate32(operands[0], line: line)
        case .loadIndirect:
            try expect(2)
            instruction.src = try register(operands[0], line: line)
            instruction.immediate = try immediate32(operands[1], line: line)
        case .callHelper, .callLocal, .callKfunc, .callx:
            preconditionFailure("calls are assembled by addCall")
        }
        output.append(instruction)
    }

    /// `call N`, `call helper N`, `call helper %rN`, `call %rN`, `call local TARGET`, `call runtime N`.
    mutating func addCall(_ operands: [String], line: Int) throws(ProgramError) {
        var operands = operands
        if operands.count == 1 { operands.insert("helper", at: 0) }
        guard operands.count == 2 else { throw .operandCount("call", expected: 2, got: operands.count, line: line) }
        var instruction = Instruction(opcode: 0x85)
        switch operands[0] {
        case "helper":
            if operands[1].hasPrefix("%") {
                instruction.opcode = 0x8d
                instruction.dst = try register(operands[1], line: line)
            } else {
                instruction.immediate = try immediate32(operands[1], line: line)
            }
        case "local":
            instruction.src = OpcodeField.pseudoCall
            instruction.immediate = (try target(operands[1], field: .immediate, line: line))
        case "runtime":
            instruction.src = OpcodeField.pseudoKfuncCall
            instruction.immediate = try immediate32(operands[1], line: line)
        default:
            throw .badOperand(operands[0], expected: "a call kind (helper, local or runtime)", line: line)
        }
        output.append(instruction)
    }

    /// `lddw %rD, IMM64` or a pseudo form: `map_fd N`, `map_value N, OFF`, `btf_id N, M`,
    /// `func TARGET`, `map_idx N`, `map_idx_value N, OFF`.
    mutating func addLoadImmediate64(_ operands: [String], line: Int) throws(ProgramError) {
        guard operands.count >= 2 else { throw .operandCount("lddw", expected: 2, got: operands.count, line: line) }
        var first = Instruction(opcode: 0x18)
        var second = Instruction(opcode: 0)
        first.dst = try register(operands[0], line: line)
        let pseudo: [String: (UInt8, Int)] = [
            "map_fd": (1, 1), "map_value": (2, 2), "btf_id": (3, 2), "func": (4, 1), "map_idx": (5, 1),
            "map_idx_value": (6, 2),
        ]
        if let (source, arguments) = pseudo[operands[1]] {
            guard operands.count == 2 + arguments else {
                throw .operandCount("lddw \(operands[1])", expected: 1 + arguments, got: operands.count - 1, line: line)
            }
            first.src = source
            if source == OpcodeField.pseudoFunc {
                first.immediate = (try target(operands[2], field: .immediate, line: line))
            } else {
                first.immediate = try immediate32(operands[2], line: line)
                if arguments == 2 { second.immediate = try immediate32(operands[3], line: line) }
            }
        } else {
            guard operands.count == 2 else {
                throw .operandCount("lddw", expected: 2, got: operands.count, line: line)
            }
            let value = try immediate64(operands[1], line: line)
            first.immediate = Int32(bitPattern: UInt32(truncatingIfNeeded: value))
            second.immediate = Int32(bitPattern: UInt32(truncatingIfNeeded: value >> 32))
        }
        output.append(first)
        output.append(second)
    }

    mutating func finish() throws(ProgramError) -> [Instruction] {
        if labels["exit"] == nil, let firstExit { labels["exit"] = (firstExit, 0) }
        for fixup in fixups {
            guard let label = labels[fixup.label] else { throw .undefinedLabel(fixup.label, line: fixup.line) }
            let distance = label.slot - (fixup.slot + 1)
            switch fixup.field {
            case .offset:
                guard let offset = Int16(exactly: distance) else {
                    throw .numberOutOfRange(fixup.label, what: "jump distance to", line: fixup.line)
                }
                output[fixup.slot].offset = offset
            case .immediate:
                output[fixup.slot].immediate = Int32(distance)
            }
        }
        return output
    }

    // MARK: Operands

    func register(_ text: String, line: Int) throws(ProgramError) -> UInt8 {
        // %r11-%r15 are accepted so that tests can encode invalid registers.
        guard text.hasPrefix("%r"), let number = UInt8(text.dropFirst(2)), number <= 15 else {
            throw .badRegister(text, line: line)
        }
        return number
    }

    /// A signed decimal in Int32 range, or hex up to 0xffffffff taken as a bit pattern.
    func immediate32(_ text: String, line: Int) throws(ProgramError) -> Int32 {
        if let hex = hexDigits(text) {
            guard let value = UInt32(hex.digits, radix: 16) else {
                throw UInt64(hex.digits, radix: 16) == nil
                    ? .badNumber(text, what: "immediate", line: line)
                    : .numberOutOfRange(text, what: "32-bit immediate", line: line)
            }
            if hex.negative {
                guard value <= 0x8000_0000 else { throw .numberOutOfRange(text, what: "32-bit immediate", line: line) }
                return Int32(truncatingIfNeeded: -Int64(value))
            }
            return Int32(bitPattern: value)
        }
        guard let value = Int64(text) else { throw .badNumber(text, what: "immediate", line: line) }
        guard let result = Int32(exactly: value) else {
            throw .numberOutOfRange(text, what: "32-bit immediate", line: line)
        }
        return result
    }

    /// Hex is an unsigned 64-bit value; decimal may be negative.
    func immediate64(_ text: String, line: Int) throws(ProgramError) -> UInt64 {
        if let hex = hexDigits(text) {
            guard let value = UInt64(hex.digits, radix: 16) else {
                throw .badNumber(text, what: "64-bit immediate", line: line)
            }
            return hex.negative ? 0 &- value : value
        }
        if let value = Int64(text) { return UInt64(bitPattern: value) }
        if let value = UInt64(text) { return value }
        throw .badNumber(text, what: "64-bit immediate", line: line)
    }

    func hexDigits(_ text: String) -> (negative: Bool, digits: Substring)? {
        var rest = Substring(text)
        let negative = rest.hasPrefix("-")
        if negative { rest = rest.dropFirst() }
        guard rest.hasPrefix("0x") || rest.hasPrefix("0X") else { return nil }
        return (negative, rest.dropFirst(2))
    }

    /// `[%rN]`, `[%rN+OFF]`, `[%rN-OFF]`.
    func memory(_ text: String, line: Int) throws(ProgramError) -> (UInt8, Int16) {
        guard text.hasPrefix("["), text.hasSuffix("]") else { throw .badMemoryOperand(text, line: line) }
        let inner = text.dropFirst().dropLast()
        guard let sign = inner.firstIndex(where: { $0 == "+" || $0 == "-" }) else {
            return (try register(String(inner), line: line), 0)
        }
        let base = try register(String(inner[..<sign]), line: line)
        let offsetText = String(inner[sign...])
        let magnitude = offsetText.dropFirst()
        let value: Int64?
        if magnitude.hasPrefix("0x") {
            value = Int64(magnitude.dropFirst(2), radix: 16).map { offsetText.hasPrefix("-") ? -$0 : $0 }
        } else {
            value = Int64(offsetText)
        }
        guard let value else { throw .badMemoryOperand(text, line: line) }
        guard let offset = Int16(exactly: value) else {
            throw .numberOutOfRange(offsetText, what: "offset", line: line)
        }
        return (base, offset)
    }

    /// A literal `+N`/`-N` slot distance, or 0 and a fixup for a label resolved later.
    mutating func target(_ text: String, field: Fixup.Field, line: Int) throws(ProgramError) -> Int32 {
        guard text.hasPrefix("+") || text.hasPrefix("-") else {
            fixups.append(Fixup(slot: output.count, label: text, field: field, line: line))
            return 0
        }
        guard let value = Int64(text.hasPrefix("+") ? String(text.dropFirst()) : text) else {
            throw .badNumber(text, what: "jump offset", line: line)
        }
        let fits = field == .offset ? Int16(exactly: value) != nil : Int32(exactly: value) != nil
        guard fits else { throw .numberOutOfRange(text, what: "jump offset", line: line) }
        return Int32(value)
    }
}
