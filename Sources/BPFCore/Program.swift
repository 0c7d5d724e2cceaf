/// An instruction after validation: its operation resolved from the opcode table and its
/// operands in the form engines want. 16 bytes, so a program walks one cache line per
/// four instructions.
public struct DecodedInstruction: Hashable, Sendable {
    public var operation: Operation
    public var dst: UInt8
    public var src: UInt8
    /// For an `lddw`, the pseudo source kind (0 once resolved); otherwise 0.
    public var pseudo: UInt8
    /// Memory offset for loads, stores and atomics; the absolute target index for jumps
    /// and local calls.
    public var offset: Int32
    /// The immediate sign-extended to 64 bits; for `lddw`, the whole 64-bit constant.
    public var immediate: Int64

    public init(operation: Operation, dst: UInt8, src: UInt8, pseudo: UInt8 = 0, offset: Int32, immediate: Int64) {
        self.operation = operation
        self.dst = dst
        self.src = src
        self.pseudo = pseudo
        self.offset = offset
        self.immediate = immediate
    }
}

/// How strictly to validate.
public enum Strictness: String, Sendable, CaseIterable {
    /// Run what RFC 9669 defines and the conformance suite runs: out-of-range immediate
    /// shifts are masked at run time, division by an immediate 0 gives 0, `callx` runs.
    case conformance
    /// Refuse at load, as the kernel does: immediate shifts outside 0..<width ("invalid
    /// shift"), immediate division by zero, `callx` ("unknown opcode 8d"), and a last
    /// instruction that is not `exit` or `ja`.
    case kernel
}

public struct ValidationOptions: Sendable, Hashable {
    public var strictness: Strictness
    /// The kernel's limit for a privileged loader is 1,000,000 instructions (`BPF_COMPLEXITY_LIMIT_INSNS`).
    public var maxInstructions: Int

    public init(strictness: Strictness = .conformance, maxInstructions: Int = 1_000_000) {
        self.strictness = strictness
        self.maxInstructions = maxInstructions
    }
}

/// A `lddw` whose constant stands for something the runtime must supply: a map, a map
/// value address, a kernel object or a function (linux/bpf.h `BPF_PSEUDO_*`).
public struct PseudoLoad: Hashable, Sendable {
    public enum Kind: UInt8, Sendable {
        /// `BPF_PSEUDO_MAP_FD` (1): imm is a map file descriptor.
        case mapFD = 1
        /// `BPF_PSEUDO_MAP_VALUE` (2): imm is a map fd, the second imm an offset into its value.
        case mapValue = 2
        /// `BPF_PSEUDO_BTF_ID` (3): imm is a BTF id of a kernel variable.
        case btfID = 3
        /// `BPF_PSEUDO_FUNC` (4): imm is the relative index of a function, as for a local call.
        case function = 4
        /// `BPF_PSEUDO_MAP_IDX` (5): imm is an index into the program's map array.
        case mapIndex = 5
        /// `BPF_PSEUDO_MAP_IDX_VALUE` (6): as `mapIndex`, the second imm an offset into the value.
        case mapIndexValue = 6
    }

    /// The slot index of the first half.
    public let index: Int
    public let kind: Kind
    public let immediate: Int32
    public let secondImmediate: Int32
    /// For `.function`: the absolute index of the function's first instruction.
    public let functionTarget: Int?
}

/// A validated program. It can only be made through validation, so engines can trust
/// every decoded field: registers are 0-10, jump targets are in range and never the
/// second slot of an `lddw`, and reserved fields are zero.
public struct Program: Sendable {
    public let instructions: [Instruction]
    public private(set) var decoded: [DecodedInstruction]
    /// Indices where a function begins: 0, every local call target and every function
    /// an `lddw` pseudo-function load names. Sorted.
    public let functionEntries: [Int]
    /// Pseudo `lddw`s that still need a value from the runtime.
    public private(set) var pseudoLoads: [PseudoLoad]

    public var count: Int { instructions.count }

    public init(bytes: some Collection<UInt8>, options: ValidationOptions = .init()) throws(ProgramError) {
        try self.init(instructions: Instruction.decode(bytes), options: options)
    }

    public init(instructions: [Instruction], options: ValidationOptions = .init()) throws(ProgramError) {
        var validator = Validator(instructions: instructions, options: options)
        try validator.run()
        self.instructions = instructions
        self.decoded = validator.decoded
        self.functionEntries = validator.functionEntries.sorted()
        self.pseudoLoads = validator.pseudoLoads
    }

    /// Returns a copy where every pseudo `lddw` holds the constant `resolve` gives it.
    public func resolvingPseudoLoads<E: Error>(_ resolve: (PseudoLoad) throws(E) -> UInt64) throws(E) -> Program {
        var copy = self
        for load in pseudoLoads {
            copy.decoded[load.index].immediate = Int64(bitPattern: try resolve(load))
            copy.decoded[load.index].pseudo = 0
        }
        copy.pseudoLoads = []
        return copy
    }

    /// The function that contains instruction `index`: the greatest entry not after it.
    public func functionEntry(containing index: Int) -> Int {
        var low = 0
        var high = functionEntries.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if functionEntries[mid] <= index { low = mid } else { high = mid - 1 }
        }
        return functionEntries[low]
    }

    /// The oldest ISA version that has every instruction of this program.
    public var requiredVersion: ISAVersion {
        decoded.map { InstructionSet.spec(for: $0.operation).version }.max() ?? .v1
    }
}

// MARK: - Validation

private struct Validator {
    let instructions: [Instruction]
    let options: ValidationOptions
    var decoded: [DecodedInstruction] = []
    var functionEntries: Set<Int> = [0]
    var pseudoLoads: [PseudoLoad] = []
    /// Indices that are second halves of an `lddw`.
    var secondSlots: Set<Int> = []
    /// (instruction index, target) pairs checked once every slot is known.
    var branchTargets: [(Int, Int)] = []

    init(instructions: [Instruction], options: ValidationOptions) {
        self.instructions = instructions
        self.options = options
    }

    mutating func run() throws(ProgramError) {
        guard !instructions.isEmpty else { throw .emptyProgram }
        guard instructions.count <= options.maxInstructions else {
            throw .tooLarge(count: instructions.count, limit: options.maxInstructions)
        }
        decoded.reserveCapacity(instructions.count)
        var index = 0
        while index < instructions.count {
            index += try decode(at: index)
        }
        for (index, target) in branchTargets {
            guard target >= 0 && target < instructions.count else {
                throw .jumpOutOfRange(target: target, count: instructions.count, at: index)
            }
            guard !secondSlots.contains(target) else { throw .jumpIntoLddw(target: target, at: index) }
        }
        if options.strictness == .kernel {
            let last = decoded[decoded.count - 1].operation
            let lastIndex = decoded.count - 1
            if ![.exit, .ja, .ja32].contains(last) && !secondSlots.contains(lastIndex) {
                throw .fallsOffEnd(at: lastIndex)
            }
            if secondSlots.contains(lastIndex) { throw .fallsOffEnd(at: lastIndex - 1) }
        }
    }

    /// Validates and decodes the instruction at `index`; returns the slots it used.
    mutating func decode(at index: Int) throws(ProgramError) -> Int {
        let instruction = instructions[index]
        let spec = try findSpec(instruction, at: index)
        let form = spec.form
        let dst = instruction.dst
        let src = instruction.src

        func requireZero(_ field: String, _ value: Int64) throws(ProgramError) {
            if value != 0 { throw .reservedField(field, value: value, mnemonic: spec.mnemonic, at: index) }
        }
        func requireRegister(_ register: UInt8, _ field: String) throws(ProgramError) {
            if register > 10 { throw .invalidRegister(register, field: field, at: index) }
        }
        func requireWritable(_ register: UInt8) throws(ProgramError) {
            if register == 10 { throw .writeToFramePointer(mnemonic: spec.mnemonic, at: index) }
        }
        // The offset is a selector for div/mod/mov/movsx; for other ALU operations it must be 0.
        func aluOffsetIsSelector() -> Bool {
            if case .offset = spec.selector { return true }
            return false
        }

        var offset = Int32(instruction.offset)
        var immediate = Int64(instruction.immediate)
        var slots = 1

        switch form {
        case .aluImmediate:
            try requireRegister(dst, "dst")
            try requireZero("src", Int64(src))
            if !aluOffsetIsSelector() { try requireZero("offset", Int64(instruction.offset)) }
            try requireWritable(dst)
            if options.strictness == .kernel { try checkKernelImmediate(spec, instruction.immediate, at: index) }
            offset = 0
        case .aluRegister:
            try requireRegister(dst, "dst")
            try requireRegister(src, "src")
            try requireZero("imm", Int64(instruction.immediate))
            if !aluOffsetIsSelector() { try requireZero("offset", Int64(instruction.offset)) }
            try requireWritable(dst)
            offset = 0
        case .aluUnary:
            try requireRegister(dst, "dst")
            try requireZero("src", Int64(src))
            try requireZero("offset", Int64(instruction.offset))
            if case .none = spec.selector { try requireZero("imm", Int64(instruction.immediate)) }
            try requireWritable(dst)
            offset = 0
        case .load, .loadAcquire:
            try requireRegister(dst, "dst")
            try requireRegister(src, "src")
            if form == .load { try requireZero("imm", Int64(instruction.immediate)) }
            try requireWritable(dst)
        case .storeImmediate:
            try requireRegister(dst, "dst")
            try requireZero("src", Int64(src))
        case .storeRegister, .storeRelease:
            try requireRegister(dst, "dst")
            try requireRegister(src, "src")
            if form == .storeRegister { try requireZero("imm", Int64(instruction.immediate)) }
        case .atomic:
            try requireRegister(dst, "dst")
            try requireRegister(src, "src")
            // Fetching atomics write the old value to src (cmpxchg writes r0).
            if instruction.immediate & OpcodeField.fetch != 0 && spec.operation != .atomicCmpxchg32
                && spec.operation != .atomicCmpxchg64
            {
                try requireWritable(src)
            }
        case .jumpAlways:
            try requireZero("dst", Int64(dst))
            try requireZero("src", Int64(src))
            try requireZero("imm", Int64(instruction.immediate))
            offset = Int32(index) + Int32(instruction.offset) + 1
            branchTargets.append((index, Int(offset)))
        case .jumpLong:
            try requireZero("dst", Int64(dst))
            try requireZero("src", Int64(src))
            try requireZero("offset", Int64(instruction.offset))
            let target = Int64(index) + Int64(instruction.immediate) + 1
            branchTargets.append((index, Int(target)))
            offset = Int32(clamping: target)
        case .jumpImmediate, .jumpRegister:
            try requireRegister(dst, "dst")
            if form == .jumpImmediate {
                try requireZero("src", Int64(src))
            } else {
                try requireRegister(src, "src")
                try requireZero("imm", Int64(instruction.immediate))
            }
            offset = Int32(index) + Int32(instruction.offset) + 1
            branchTargets.append((index, Int(offset)))
        case .callHelper:
            try requireZero("dst", Int64(dst))
            try requireZero("offset", Int64(instruction.offset))
        case .callLocal:
            try requireZero("dst", Int64(dst))
            try requireZero("offset", Int64(instruction.offset))
            let target = Int64(index) + Int64(instruction.immediate) + 1
            branchTargets.append((index, Int(target)))
            if target >= 0 && target < Int64(instructions.count) { functionEntries.insert(Int(target)) }
            offset = Int32(clamping: target)
        case .callKfunc:
            try requireZero("dst", Int64(dst))
        case .callx:
            if options.strictness == .kernel { throw .unknownOpcode(instruction.opcode, at: index) }
            try requireRegister(dst, "dst")
            try requireZero("src", Int64(src))
            try requireZero("offset", Int64(instruction.offset))
            try requireZero("imm", Int64(instruction.immediate))
        case .exit:
            try requireZero("dst", Int64(dst))
            try requireZero("src", Int64(src))
            try requireZero("offset", Int64(instruction.offset))
            try requireZero("imm", Int64(instruction.immediate))
        case .loadImmediate64:
            try requireRegister(dst, "dst")
            try requireZero("offset", Int64(instruction.offset))
            try requireWritable(dst)
            guard index + 1 < instructions.count else { throw .lddwWithoutSecondSlot(at: index) }
            let second = instructions[index + 1]
            if second.opcode != 0 {
                throw .lddwBadSecondSlot(field: "opcode", value: Int64(second.opcode), at: index)
            }
            if second.registers != 0 {
                throw .lddwBadSecondSlot(field: "registers", value: Int64(second.registers), at: index)
            }
            if second.offset != 0 {
                throw .lddwBadSecondSlot(field: "offset", value: Int64(second.offset), at: index)
            }
            immediate = Int64(
                bitPattern: UInt64(UInt32(bitPattern: instruction.immediate))
                    | UInt64(UInt32(bitPattern: second.immediate)) << 32)
            if src != 0 {
                guard let kind = PseudoLoad.Kind(rawValue: src) else { throw .invalidPseudoSource(src, at: index) }
                var functionTarget: Int? = nil
                if kind == .function {
                    let target = index + Int(instruction.immediate) + 1
                    branchTargets.append((index, target))
                    if target >= 0 && target < instructions.count { functionEntries.insert(target) }
                    functionTarget = target
                }
                pseudoLoads.append(
                    PseudoLoad(
                        index: index, kind: kind, immediate: instruction.immediate,
                        secondImmediate: second.immediate, functionTarget: functionTarget))
            }
            slots = 2
            secondSlots.insert(index + 1)
        case .loadAbsolute, .loadIndirect:
            try requireZero("dst", Int64(dst))
            try requireZero("offset", Int64(instruction.offset))
            if form == .loadAbsolute { try requireZero("src", Int64(src)) } else { try requireRegister(src, "src") }
        }

        decoded.append(
            DecodedInstruction(
                operation: spec.operation, dst: dst, src: form == .loadImmediate64 ? 0 : src,
                pseudo: form == .loadImmediate64 ? src : 0, offset: offset, immediate: immediate))
        if slots == 2 {
            decoded.append(DecodedInstruction(operation: .lddwSecondSlot, dst: 0, src: 0, offset: 0, immediate: 0))
        }
        return slots
    }

    func findSpec(_ instruction: Instruction, at index: Int) throws(ProgramError) -> InstructionSpec {
        let candidates = InstructionSet.byOpcode[Int(instruction.opcode)]
        guard !candidates.isEmpty else { throw .unknownOpcode(instruction.opcode, at: index) }
        for spec in candidates where spec.selector.matches(instruction) { return spec }
        // The byte is an opcode, but its modifier field selects nothing.
        let (field, value): (String, Int64) =
            switch candidates[0].selector {
            case .offset: ("offset", Int64(instruction.offset))
            case .immediate: ("imm", Int64(instruction.immediate))
            case .source: ("src", Int64(instruction.src))
            case .none: ("opcode", Int64(instruction.opcode))
            }
        let expected = candidates.map { spec -> String in
            switch spec.selector {
            case .offset(let v): "\(v) (\(spec.mnemonic))"
            case .immediate(let v): "\(v) (\(spec.mnemonic))"
            case .source(let v): "\(v) (\(spec.mnemonic))"
            case .none: spec.mnemonic
            }
        }
        throw .invalidModifier(opcode: instruction.opcode, field: field, value: value, expected: expected, at: index)
    }

    /// The kernel's load-time checks on immediates (kernel/bpf/verifier.c, check_alu_op).
    func checkKernelImmediate(_ spec: InstructionSpec, _ immediate: Int32, at index: Int) throws(ProgramError) {
        switch spec.operation {
        case .lsh64Imm, .rsh64Imm, .arsh64Imm:
            if immediate < 0 || immediate >= 64 { throw .shiftOutOfRange(immediate, bits: 64, at: index) }
        case .lsh32Imm, .rsh32Imm, .arsh32Imm:
            if immediate < 0 || immediate >= 32 { throw .shiftOutOfRange(immediate, bits: 32, at: index) }
        case .div64Imm, .div32Imm, .mod64Imm, .mod32Imm, .sdiv64Imm, .sdiv32Imm, .smod64Imm, .smod32Imm:
            if immediate == 0 { throw .divisionByZero(at: index) }
        default:
            break
        }
    }
}
