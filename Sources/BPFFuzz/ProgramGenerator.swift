import BPFSession

/// Makes random well-formed programs for differential testing: every instruction class,
/// loads, stores and atomics on the stack and the input memory (mostly in bounds, now
/// and then not), helper calls to the world helpers, local calls and `callx`, forward
/// jumps and bounded backward loops. The same seed always gives the same program.
///
/// Register discipline keeps every program finite: r9 holds the input pointer, r7 and r8
/// count loops, and random instructions write only r0-r6. Functions call only
/// functions after them, so calls never recurse.
public struct ProgramGenerator {
    public struct Case: Sendable {
        public let seed: UInt64
        public let assembly: String
        public let memory: [UInt8]
    }

    /// Bytes of input memory (r1 points to it, r2 holds its length).
    public static let memorySize = 128
    static let worldHelpers: [Int] = [5, 7, 8, 42, 118, 125, 160, 208]

    private var random: SplitMix64
    private var lines: [String] = []
    private var labels = 0
    private var statementsLeft = 0
    private var functionCount = 0
    private let seed: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        random = SplitMix64(seed: seed)
    }

    public static func generate(seed: UInt64) -> Case {
        var generator = ProgramGenerator(seed: seed)
        return generator.make()
    }

    mutating func make() -> Case {
        let memory = (0..<Self.memorySize).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        functionCount = random.int(0...3)
        emit("mov %r9, %r1")
        for register in 0...8 where random.chance(0.8) { emit("lddw %r\(register), \(constant64())") }
        function(index: 0)
        // Make every register and some stack visible in memory, so the comparison sees them.
        for register in 0...8 { emit("stxdw [%r9+\(8 * register)], %r\(register)") }
        emit("ldxdw %r1, [%r10-8]")
        emit("stxdw [%r9+72], %r1")
        emit("ldxdw %r1, [%r10-16]")
        emit("stxdw [%r9+80], %r1")
        emit("exit")
        for index in 1...max(1, functionCount) where index <= functionCount {
            emit("f\(index):")
            function(index: index)
            emit("exit")
        }
        return Case(seed: seed, assembly: lines.joined(separator: "\n") + "\n", memory: memory)
    }

    private mutating func function(index: Int) {
        statementsLeft = random.int(8...40)
        block(function: index, loopDepth: 0, nesting: 0)
    }

    private mutating func block(function: Int, loopDepth: Int, nesting: Int) {
        let count = random.int(1...8)
        for _ in 0..<count where statementsLeft > 0 {
            statementsLeft -= 1
            statement(function: function, loopDepth: loopDepth, nesting: nesting)
        }
    }

    // MARK: - Statements

    private mutating func statement(function: Int, loopDepth: Int, nesting: Int) {
        switch random.int(0...99) {
        case 0..<18: aluImmediate()
        case 18..<34: aluRegister()
        case 34..<38: unary()
        case 38..<40: emit("lddw \(dst()), \(constant64())")
        case 40..<48: load()
        case 48..<54: store()
        case 54..<60: stack(function: function)
        case 60..<65: atomic()
        case 65..<67: acquireRelease()
        case 67..<71: helper()
        case 71..<77 where nesting < 3: ifBlock(function: function, loopDepth: loopDepth, nesting: nesting)
        case 77..<81 where nesting < 3: ifElse(function: function, loopDepth: loopDepth, nesting: nesting)
        case 81..<85 where loopDepth < 2 && nesting < 3:
            loop(function: function, loopDepth: loopDepth, nesting: nesting)
        case 85..<88 where function < functionCount: call(from: function)
        case 88..<90: legacyLoad()
        case 90..<92: rareFault()
        default: aluRegister()
        }
    }

    private mutating func aluImmediate() {
        let spec = random.pick(InstructionSet.specs.filter { $0.form == .aluImmediate })
        emit("\(spec.mnemonic) \(dst()), \(immediate())")
    }

    private mutating func aluRegister() {
        let spec = random.pick(InstructionSet.specs.filter { $0.form == .aluRegister })
        emit("\(spec.mnemonic) \(dst()), \(src())")
    }

    private mutating func unary() {
        let spec = random.pick(InstructionSet.specs.filter { $0.form == .aluUnary })
        emit("\(spec.mnemonic) \(dst())")
    }

    private static let suffix = [1: "b", 2: "h", 4: "w", 8: "dw"]
    private static let loadMnemonics = ["ldxb", "ldxh", "ldxw", "ldxdw", "ldxsb", "ldxsh", "ldxsw"]
    private static let sizes = ["b": 1, "h": 2, "w": 4, "dw": 8, "sb": 1, "sh": 2, "sw": 4]

    private mutating func load() {
        let mnemonic = random.pick(Self.loadMnemonics)
        let size = Self.sizes[String(mnemonic.dropFirst(3))]!
        emit("\(mnemonic) \(dst()), [%r9\(signed(inputOffset(size)))]")
    }

    private mutating func store() {
        let size = random.pick([1, 2, 4, 8])
        let suffix = Self.suffix[size]!
        if random.chance(0.5) {
            emit("st\(suffix) [%r9\(signed(inputOffset(size)))], \(immediate())")
        } else {
            emit("stx\(suffix) [%r9\(signed(inputOffset(size)))], \(src())")
        }
    }

    /// Stack traffic: r10-relative (the JIT's unchecked path), through a copy of r10 (the
    /// checked path), and in a callee, the caller's frame above r10.
    private mutating func stack(function: Int) {
        let size = random.pick([1, 2, 4, 8])
        let suffix = Self.suffix[size]!
        let offset = -random.int(size...512)
        switch random.int(0...4) {
        case 0: emit("stx\(suffix) [%r10\(signed(offset))], \(src())")
        case 1: emit("st\(suffix) [%r10\(signed(offset))], \(immediate())")
        case 2: emit("ldx\(suffix) \(dst()), [%r10\(signed(offset))]")
        case 3:
            let pointer = dst()
            emit("mov \(pointer), %r10")
            emit("add \(pointer), \(offset)")
            if random.chance(0.5) {
                emit("stx\(suffix) [\(pointer)], \(src())")
            } else {
                emit("ldx\(suffix) \(dst()), [\(pointer)]")
            }
        default:
            if function > 0 {
                emit("ldx\(suffix) \(dst()), [%r10+\(random.int(0...(512 - size)))]")
            } else {
                emit("stxdw [%r10-8], %r10")
            }
        }
    }

    private mutating func atomic() {
        let spec = random.pick(InstructionSet.specs.filter { $0.form == .atomic })
        let base: String
        let offset: Int
        if random.chance(0.5) {
            base = "%r9"
            offset = inputOffset(spec.accessSize)
        } else {
            base = "%r10"
            offset = -random.int(spec.accessSize...512)
        }
        // Fetching atomics write their source, so it must be one of r0-r6.
        emit("\(spec.mnemonic) [\(base)\(signed(offset))], \(dst())")
    }

    private mutating func acquireRelease() {
        let size = random.pick([1, 2, 4, 8])
        let suffix = Self.suffix[size]!
        if random.chance(0.5) {
            emit("ldacq\(suffix) \(dst()), [%r9\(signed(inputOffset(size)))]")
        } else {
            emit("strel\(suffix) [%r9\(signed(inputOffset(size)))], \(src())")
        }
    }

    private mutating func helper() {
        let id = random.pick(Self.worldHelpers)
        if random.chance(0.7) {
            emit("call \(id)")
        } else {
            let register = dst()
            emit("mov \(register), \(id)")
            emit("call \(register)")
        }
    }

    private mutating func ifBlock(function: Int, loopDepth: Int, nesting: Int) {
        let end = label()
        emit(condition(target: end))
        block(function: function, loopDepth: loopDepth, nesting: nesting + 1)
        emit("\(end):")
    }

    private mutating func ifElse(function: Int, loopDepth: Int, nesting: Int) {
        let otherwise = label()
        let end = label()
        emit(condition(target: otherwise))
        block(function: function, loopDepth: loopDepth, nesting: nesting + 1)
        emit(random.chance(0.8) ? "ja \(end)" : "ja32 \(end)")
        emit("\(otherwise):")
        block(function: function, loopDepth: loopDepth, nesting: nesting + 1)
        emit("\(end):")
    }

    /// `counter = N; do { body } while (--counter != 0)`, sometimes guarded by may_goto
    /// (whose allowance a fuzz run never uses up).
    private mutating func loop(function: Int, loopDepth: Int, nesting: Int) {
        let counter = loopDepth == 0 ? "%r7" : "%r8"
        let top = label()
        let end = label()
        emit("mov \(counter), \(random.int(1...12))")
        emit("\(top):")
        if random.chance(0.3) { emit("may_goto \(end)") }
        block(function: function, loopDepth: loopDepth + 1, nesting: nesting + 1)
        emit("sub \(counter), 1")
        switch random.int(0...2) {
        case 0: emit("jne \(counter), 0, \(top)")
        case 1: emit("jsgt32 \(counter), 0, \(top)")
        default: emit("jgt \(counter), 0, \(top)")
        }
        emit("\(end):")
    }

    private mutating func call(from function: Int) {
        let callee = random.int((function + 1)...functionCount)
        if random.chance(0.7) {
            emit("call local f\(callee)")
        } else {
            let register = dst()
            emit("lddw \(register), func f\(callee)")
            emit("call \(register)")
        }
    }

    /// LD_ABS/LD_IND: in the packet usually; outside, the run ends with r0 = 0.
    private mutating func legacyLoad() {
        let size = random.pick([1, 2, 4])
        let suffix = ["b", "h", "", "w"][size - 1]
        let offset = random.chance(0.9) ? random.int(0...(Self.memorySize - size)) : random.int(-8...200)
        if random.chance(0.5) {
            emit("ldabs\(suffix) \(offset)")
        } else {
            // r9 is the input's address: its low 32 bits are 0, so the sum is the offset.
            emit("ldind\(suffix) %r9, \(offset)")
        }
    }

    /// Faults both engines must report identically.
    private mutating func rareFault() {
        switch random.int(0...9) {
        case 0: emit("ldxw \(dst()), [%r9+\(Self.memorySize - 2)]")
        case 1: emit("stxdw [%r10+0], \(src())")
        case 2: emit("ldxb \(dst()), [\(src())]")
        case 3: emit("call 1")
        case 4: emit("call runtime 7")
        case 5:
            let register = dst()
            emit("mov \(register), 999")
            emit("call \(register)")
        case 6: emit("lock add [\(src())+0], \(dst())")
        case 7: emit("stb [%r9-1], 1")
        default: emit("ldxdw \(dst()), [%r10-516]")
        }
    }

    // MARK: - Operands

    private mutating func emit(_ line: String) { lines.append(line) }

    private mutating func label() -> String {
        labels += 1
        return "L\(labels)"
    }

    private mutating func dst() -> String { "%r\(random.int(0...6))" }

    /// Any register may be read, r10 included.
    private mutating func src() -> String { "%r\(random.pick([0, 1, 2, 3, 4, 5, 6, 6, 7, 8, 9, 10]))" }

    private mutating func condition(target: String) -> String {
        let spec = random.pick(InstructionSet.specs.filter { $0.form == .jumpImmediate || $0.form == .jumpRegister })
        let left = src()
        let right = spec.form == .jumpRegister ? src() : immediate()
        return "\(spec.mnemonic) \(left), \(right), \(target)"
    }

    private mutating func inputOffset(_ size: Int) -> Int {
        random.chance(0.97) ? random.int(0...(Self.memorySize - size)) : random.int(-16...(Self.memorySize + 8))
    }

    private func signed(_ offset: Int) -> String { offset < 0 ? "\(offset)" : "+\(offset)" }

    private static let interesting: [Int64] = [
        0, 1, -1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256, 0x7fff, -0x8000, 0xffff,
        0x7fff_ffff, -0x8000_0000,
    ]

    private mutating func immediate() -> String {
        random.chance(0.7) ? String(random.pick(Self.interesting)) : String(Int32(truncatingIfNeeded: random.next()))
    }

    private mutating func constant64() -> String {
        let special: [UInt64] = [
            0, 1, UInt64.max, 1 << 63, (1 << 63) - 1, 0x8000_0000, 0xffff_ffff, 0x1_0000_0000, 0x3_0000_0000,
            0xffff_ffff_8000_0000,
        ]
        let value = random.chance(0.5) ? random.pick(special) : random.next()
        return "0x" + String(value, radix: 16)
    }
}

/// splitmix64: small, fast, and the same on every platform.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    mutating func chance(_ probability: Double) -> Bool {
        Double(next() >> 11) / Double(1 << 53) < probability
    }

    mutating func pick<T>(_ values: [T]) -> T { values[int(0...(values.count - 1))] }
}
