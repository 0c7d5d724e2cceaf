/// A test in the bpf_conformance `.data` format: a program (assembly or raw slots), an
/// optional input memory and the expected `r0` or error. The format is described in
/// ../shared/conformance/README.md; bpfsim's own instruction tests use it too.
public struct ConformanceTest: Sendable {
    /// Lines of the `-- asm` section, with their 1-based line numbers in the file.
    public var assembly: [(line: Int, text: Substring)] = []
    /// The `-- raw` section, when present (it wins over `-- asm`).
    public var raw: [Instruction]? = nil
    /// The `-- mem` bytes; nil when the test has no memory.
    public var memory: [UInt8]? = nil
    /// The `-- result` value (the last line of the section counts).
    public var expectedResult: UInt64? = nil
    /// The `-- error` text.
    public var expectedError: String? = nil

    public init() {}

    /// Parses a file's text. Section names follow upstream's rules: a line containing `--`
    /// starts a section whose kind is the first of `asm`, `result`, `mem`, `raw`,
    /// `no register offset`, ` c`, `error` that it contains.
    public init(parsing text: String) throws(ProgramError) {
        enum Section { case asm, result, mem, raw, ignored, error }
        var section: Section? = nil
        var resultLine: (Int, Substring)? = nil
        var errorLines: [Substring] = []
        var rawSlots: [Instruction] = []
        var memory: [UInt8] = []
        var sawMemory = false
        var number = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            var line = rawLine
            if line.hasSuffix("\r") { line = line.dropLast() }
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            if line.contains("--") {
                let kinds: [(String, Section)] = [
                    ("asm", .asm), ("result", .result), ("mem", .mem), ("raw", .raw),
                    ("no register offset", .ignored), (" c", .ignored), ("error", .error),
                ]
                guard let kind = kinds.first(where: { line.contains($0.0) }) else {
                    throw .badConformanceFile("unknown section header '\(line)'", line: number)
                }
                section = kind.1
                if kind.1 == .mem { sawMemory = true }
                continue
            }
            let trimmed = line.trimmingSpaces
            guard !trimmed.isEmpty else { continue }
            switch section {
            case .asm: assembly.append((number, line))
            case .result: resultLine = (number, trimmed)
            case .error: errorLines.append(trimmed)
            case .ignored: break
            case .mem:
                for word in trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                    guard let byte = UInt8(word, radix: 16) else {
                        throw .badConformanceFile("'\(word)' is not a hex byte", line: number)
                    }
                    memory.append(byte)
                }
            case .raw:
                for word in trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                    let value = word.hasPrefix("0x") ? UInt64(word.dropFirst(2), radix: 16) : UInt64(word)
                    guard let value else { throw .badConformanceFile("'\(word)' is not a 64-bit slot", line: number) }
                    rawSlots.append(Instruction(rawValue: value))
                }
            case nil:
                throw .badConformanceFile("text before the first section header", line: number)
            }
        }
        if sawMemory { self.memory = memory }
        if !rawSlots.isEmpty { raw = rawSlots }
        if let (line, text) = resultLine {
            let value: UInt64?
            if let range = text.firstRange(of: "0x") ?? text.firstRange(of: "0X") {
                value = UInt64(text[range.upperBound...], radix: 16)
            } else {
                value = UInt64(text) ?? Int64(text).map { UInt64(bitPattern: $0) }
            }
            guard let value else { throw .badConformanceFile("'\(text)' is not a result value", line: line) }
            expectedResult = value
        }
        if !errorLines.isEmpty { expectedError = errorLines.joined(separator: "\n") }
    }

    /// The program's slots: `-- raw` if present, else the assembled `-- asm`.
    public func instructions() throws(ProgramError) -> [Instruction] {
        if let raw { return raw }
        return try Assembler.assemble(lines: assembly)
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" { result = result.dropLast() }
        return result
    }
}
