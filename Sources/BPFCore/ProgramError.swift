/// Why a program could not be assembled, decoded or validated, and where.
///
/// Every message is built by one of the static factories below, so the wording of
/// each error lives in this file only. `code` is a stable identifier for `--json`.
public struct ProgramError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Where in the input the problem is.
    public enum Location: Hashable, Sendable {
        /// An instruction slot index (0-based, `lddw` counting as two).
        case instruction(Int)
        /// A 1-based line of assembly text.
        case line(Int)
        /// The program as a whole.
        case program
    }

    public let location: Location
    /// A short stable identifier, such as `unknown_opcode`.
    public let code: String
    /// The sentence for people, without the location.
    public let message: String

    private init(_ location: Location, _ code: String, _ message: String) {
        self.location = location
        self.code = code
        self.message = message
    }

    public var description: String {
        switch location {
        case .instruction(let index): "instruction \(index): \(message)"
        case .line(let line): "line \(line): \(message)"
        case .program: message
        }
    }

    /// The instruction index, when the error names one.
    public var instructionIndex: Int? {
        if case .instruction(let index) = location { return index }
        return nil
    }

    /// The same error placed at another location (the assembler uses it to turn an
    /// instruction index into the line that produced it).
    public func at(_ location: Location) -> ProgramError {
        ProgramError(location, code, message)
    }
}

// MARK: - Decoding and validation

extension ProgramError {
    static func hex(_ value: some BinaryInteger) -> String {
        "0x" + String(value, radix: 16)
    }

    public static func truncatedInstructionStream(byteCount: Int) -> ProgramError {
        .init(.program, "truncated", "\(byteCount) bytes is not a whole number of 8-byte instructions")
    }

    public static let emptyProgram = ProgramError(.program, "empty_program", "the program has no instructions")

    public static func tooLarge(count: Int, limit: Int) -> ProgramError {
        .init(.program, "too_large", "the program has \(count) instructions; the limit is \(limit)")
    }

    public static func unknownOpcode(_ opcode: UInt8, at index: Int) -> ProgramError {
        .init(.instruction(index), "unknown_opcode", "unknown opcode \(hex(opcode))")
    }

    public static func invalidModifier(
        opcode: UInt8, field: String, value: Int64, expected: [String], at index: Int
    ) -> ProgramError {
        .init(
            .instruction(index), "invalid_modifier",
            "\(field) \(value) is not valid for opcode \(hex(opcode)) (expected \(expected.joined(separator: " or ")))")
    }

    public static func invalidRegister(_ register: UInt8, field: String, at index: Int) -> ProgramError {
        .init(.instruction(index), "invalid_register", "\(field) register r\(register) does not exist (r0-r10)")
    }

    public static func writeToFramePointer(mnemonic: String, at index: Int) -> ProgramError {
        .init(.instruction(index), "write_to_r10", "\(mnemonic) writes r10, which is read-only")
    }

    public static func reservedField(_ field: String, value: Int64, mnemonic: String, at index: Int) -> ProgramError {
        .init(.instruction(index), "reserved_field", "\(mnemonic) uses reserved field \(field) (\(value), must be 0)")
    }

    public static func jumpOutOfRange(target: Int, count: Int, at index: Int) -> ProgramError {
        .init(.instruction(index), "jump_out_of_range", "jump to \(target) is outside the program (0..<\(count))")
    }

    public static func jumpIntoLddw(target: Int, at index: Int) -> ProgramError {
        .init(.instruction(index), "jump_into_lddw", "jump to \(target) lands in the second half of an lddw")
    }

    public static func lddwWithoutSecondSlot(at index: Int) -> ProgramError {
        .init(.instruction(index), "lddw_incomplete", "lddw is missing its second slot")
    }

    public static func lddwBadSecondSlot(field: String, value: Int64, at index: Int) -> ProgramError {
        .init(
            .instruction(index), "lddw_bad_second_slot",
            "the second slot of an lddw must have only imm set (\(field) is \(value))")
    }

    public static func invalidPseudoSource(_ source: UInt8, at index: Int) -> ProgramError {
        .init(.instruction(index), "invalid_pseudo_source", "lddw with src \(source) is not a kernel pseudo form (0-6)")
    }

    public static func shiftOutOfRange(_ amount: Int32, bits: Int, at index: Int) -> ProgramError {
        .init(
            .instruction(index), "invalid_shift",
            "invalid shift \(amount): the kernel refuses immediate shifts outside 0..<\(bits)")
    }

    public static func divisionByZero(at index: Int) -> ProgramError {
        .init(.instruction(index), "division_by_zero", "division by zero: the kernel refuses a zero immediate divisor")
    }

    public static func unresolvedPseudoLoad(_ kind: PseudoLoad.Kind, at index: Int) -> ProgramError {
        .init(
            .instruction(index), "unresolved_pseudo_load",
            "lddw with src \(kind.rawValue) (\(kind)) refers to a map or kernel object, and this run has none")
    }

    public static func fallsOffEnd(at index: Int) -> ProgramError {
        .init(
            .instruction(index), "falls_off_end",
            "the last instruction is not an exit or a jump, so execution can run past the end")
    }
}

// MARK: - Assembly text

extension ProgramError {
    public static func unknownMnemonic(_ mnemonic: String, line: Int) -> ProgramError {
        .init(.line(line), "unknown_mnemonic", "unknown mnemonic '\(mnemonic)'")
    }

    public static func operandCount(_ mnemonic: String, expected: Int, got: Int, line: Int) -> ProgramError {
        .init(
            .line(line), "operand_count",
            "'\(mnemonic)' takes \(expected) operand\(expected == 1 ? "" : "s"), got \(got)")
    }

    public static func badRegister(_ text: String, line: Int) -> ProgramError {
        .init(.line(line), "bad_register", "'\(text)' is not a register (%r0-%r10)")
    }

    public static func badNumber(_ text: String, what: String, line: Int) -> ProgramError {
        .init(.line(line), "bad_number", "'\(text)' is not a valid \(what)")
    }

    public static func numberOutOfRange(_ text: String, what: String, line: Int) -> ProgramError {
        .init(.line(line), "out_of_range", "\(what) \(text) is out of range")
    }

    public static func badMemoryOperand(_ text: String, line: Int) -> ProgramError {
        .init(.line(line), "bad_memory_operand", "'\(text)' is not a memory operand like [%r1+8]")
    }

    public static func undefinedLabel(_ label: String, line: Int) -> ProgramError {
        .init(.line(line), "undefined_label", "undefined label '\(label)'")
    }

    public static func duplicateLabel(_ label: String, firstLine: Int, line: Int) -> ProgramError {
        .init(.line(line), "duplicate_label", "label '\(label)' is already defined on line \(firstLine)")
    }

    public static func badOperand(_ text: String, expected: String, line: Int) -> ProgramError {
        .init(.line(line), "bad_operand", "'\(text)' is not \(expected)")
    }

    public static func badConformanceFile(_ message: String, line: Int) -> ProgramError {
        .init(.line(line), "bad_test_file", message)
    }
}
