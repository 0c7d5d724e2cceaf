import ArgumentParser
import BPFSim
import Foundation

/// `bpfsim`: the root command. The executable target only calls `main()`.
public struct BPFSimCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bpfsim",
        abstract: "Run eBPF programs in user space, with no root and no kernel.",
        version: BPFSimVersion.string,
        subcommands: [
            Run.self, Replay.self, Trace.self, Verify.self, Assemble.self, Disassemble.self, Inspect.self,
            Conformance.self, BenchCommand.self, FuzzJIT.self, TestSpecs.self,
        ]
    )

    public init() {}
}

public enum BPFSimVersion {
    public static let string = "0.1.0"
}

// MARK: - Output

/// Where commands write. Tests replace it (per task) to capture what a command prints.
public final class Console: @unchecked Sendable {
    private let writeOut: @Sendable (String) -> Void
    private let writeErr: @Sendable (String) -> Void

    public init(out: @escaping @Sendable (String) -> Void, err: @escaping @Sendable (String) -> Void) {
        writeOut = out
        writeErr = err
    }

    /// Standard output and standard error.
    public static let standard = Console(
        out: { text in FileHandle.standardOutput.write(Data(text.utf8)) },
        err: { text in FileHandle.standardError.write(Data(text.utf8)) })

    @TaskLocal public static var current: Console = .standard

    public func out(_ text: String, terminator: String = "\n") { writeOut(text + terminator) }
    public func err(_ text: String, terminator: String = "\n") { writeErr(text + terminator) }
}

/// Writes a line to the current console's standard output.
func print(_ text: String, terminator: String = "\n") {
    Console.current.out(text, terminator: terminator)
}

/// Writes a line to the current console's standard error.
func printError(_ text: String) {
    Console.current.err(text)
}

/// Encodes a `--json` value: one line, keys sorted, so output is stable.
func printJSON(_ value: some Encodable) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
    print(String(decoding: data, as: UTF8.self))
}

/// `--engine`: one engine, or both compared.
enum EngineChoice: String, ExpressibleByArgument, CaseIterable {
    case interp
    case jit
    case both

    var engines: [Engine] {
        switch self {
        case .interp: [.interpreter]
        case .jit: [.jit]
        case .both: [.interpreter, .jit]
        }
    }
}

/// A failure the CLI reports as one line and exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Parses hex bytes, allowing spaces, colons and an optional 0x.
func parseHex(_ text: String) throws -> [UInt8] {
    var digits = text.lowercased()
    if digits.hasPrefix("0x") { digits.removeFirst(2) }
    digits.removeAll { $0 == " " || $0 == ":" || $0 == "\n" || $0 == "\t" }
    guard digits.count % 2 == 0 else { throw CommandFailure("hex input has an odd number of digits") }
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        guard let byte = UInt8(digits[index..<next], radix: 16) else {
            throw CommandFailure("'\(digits[index..<next])' is not a hex byte")
        }
        bytes.append(byte)
        index = next
    }
    return bytes
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

func readFile(_ path: String) throws -> Data {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CommandFailure("\(path): cannot read the file")
    }
    return data
}

/// A program given on the command line: assembly text (`.s`), raw slots (`.bin`), or a
/// conformance test (`.data`, whose `-- mem` becomes the default memory). Throws
/// `ProgramError` for text or bytes that are not a program, `CommandFailure` otherwise.
struct ProgramFile {
    var instructions: [Instruction]
    var memory: [UInt8]?

    init(path: String) throws {
        let data = try readFile(path)
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        switch ext {
        case "s", "asm":
            instructions = try Assembler.assemble(String(decoding: data, as: UTF8.self))
        case "data":
            let test = try ConformanceTest(parsing: String(decoding: data, as: UTF8.self))
            instructions = try test.instructions()
            memory = test.memory
        case _ where data.starts(with: [0x7f, 0x45, 0x4c, 0x46]):
            throw CommandFailure(
                "\(path): a BPF object file; list it with 'bpfsim inspect' or 'bpfsim disasm' (running one needs its maps)"
            )
        default:
            instructions = try Instruction.decode(Array(data))
        }
    }
}
