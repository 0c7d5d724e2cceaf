import ArgumentParser
import BPFBench
import Foundation

/// `bpfsim bench`: the ../shared/bench programs on the interpreter, the JIT, native code
/// and the kernel, with ratios to native from the same run (docs/performance.md).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the benchmark programs on both engines, native code and the kernel.",
        discussion: """
            Builds each program of the benchmark directory with clang (BPF and x86-64), then runs \
            each peer on the program's input: a warm-up sample and several timed samples, each of \
            --iterations runs (calibrated to about 20 ms when not given); times are medians in ns \
            per run, ratios are to native code from the same run. Exits 1 if a peer's result differs \
            from native's.
            """
    )

    @Option(help: "Only programs whose name contains this.")
    var filter: String?

    @Flag(help: "Print the report as JSON (docs/json.md).")
    var json = false

    @Option(help: "Runs per sample (default: calibrated per peer).")
    var iterations: Int?

    @Option(help: "Timed samples per peer, after one warm-up sample.")
    var samples = 5

    @Option(help: "The benchmark directory (holding progs/ and its README).")
    var benchDir = "../shared/bench"

    @Flag(help: "Do not run the kernel peer.")
    var noKernel = false

    func validate() throws {
        if let iterations, iterations < 1 { throw ValidationError("--iterations must be at least 1") }
        if samples < 1 { throw ValidationError("--samples must be at least 1") }
    }

    func run() throws {
        let options = BenchOptions(
            directory: URL(fileURLWithPath: benchDir), filter: filter, iterations: iterations, samples: samples,
            kernel: !noKernel)
        let report: BenchReport
        do {
            report = try Bench.run(options) { name in if !json { printError("measuring \(name)") } }
        } catch {
            throw CommandFailure(error.description)
        }
        if json {
            printJSON(report)
        } else {
            print(Self.render(report), terminator: "")
        }
        if report.programs.contains(where: { !$0.agree }) { throw ExitCode(1) }
    }

    // MARK: - Human output

    static let peers = ["native", "jit", "interpreter", "kernel"]

    static func render(_ report: BenchReport) -> String {
        let method = report.method
        var text =
            "median ns per run, \(method.samples) sample\(method.samples == 1 ? "" : "s") after a warm-up, "
            + (method.iterations.map { "\($0) run\($0 == 1 ? "" : "s") each" }
                ?? "each about \(Int(method.targetSampleMilliseconds)) ms")
            + "; \(report.machine.build) build, \(report.machine.cpus) CPUs, Linux \(report.machine.kernel)\n\n"
        let header = [
            "program", "insns", "executed", "native", "jit", "jit/nat", "interp", "int/nat", "ns/insn", "kernel",
            "krn/nat", "compile", "result",
        ]
        var rows: [[String]] = []
        for program in report.programs {
            let time = program.nsPerRun
            let ratio = program.ratioToNative
            rows.append([
                program.name, grouped(program.instructions), program.executedInstructions.map(grouped) ?? "-",
                nanoseconds(time.native), nanoseconds(time.jit), times(ratio.jit), nanoseconds(time.interpreter),
                times(ratio.interpreter), program.interpreterNsPerInstruction.map { String(format: "%.2f", $0) } ?? "-",
                nanoseconds(time.kernel), times(ratio.kernel),
                nanoseconds(program.compileNsPerInstruction),
                program.agree ? hex(program.results["native"] ?? program.results.values.first) : "DIFFER",
            ])
        }
        text += table([header] + rows, leftAligned: [0, 12])
        text += "\nexecuted: BPF instructions per run (interpreter); ns/insn: interpreter ns per executed instruction;\n"
        text += "compile: JIT ns per BPF instruction (code only, no mapping).\n"
        let slots = report.programs.reduce(0) { $0 + $1.instructions }
        let compileTime = report.programs.reduce(0.0) { $0 + Double($1.instructions) * $1.compileNsPerInstruction }
        if compileTime > 0 {
            text += String(
                format: "JIT compile: %.3g million BPF instructions/s over every program.\n",
                1e3 * Double(slots) / compileTime)
        }
        for (peer, reason) in report.unavailable.sorted(by: { $0.key < $1.key }) {
            text += "\(peer): not measured: \(reason)\n"
        }
        for program in report.programs {
            for (peer, note) in program.notes.sorted(by: { $0.key < $1.key }) {
                text += "\(program.name): \(peer): \(note)\n"
            }
            if !program.agree {
                let values = peers.compactMap { peer in program.results[peer].map { "\(peer) \(hex($0))" } }
                text += "\(program.name): results differ: \(values.joined(separator: ", "))\n"
            }
        }
        return text
    }

    static func hex(_ value: UInt32?) -> String { value.map { "0x" + String($0, radix: 16) } ?? "-" }

    static func grouped<T: BinaryInteger>(_ value: T) -> String {
        let digits = String(value)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out += "," }
            out.append(character)
        }
        return out
    }

    static func nanoseconds(_ value: Double?) -> String {
        guard let value else { return "-" }
        if value >= 1000 { return grouped(Int(value.rounded())) }
        return String(format: value >= 100 ? "%.0f" : value >= 10 ? "%.1f" : "%.2f", value)
    }

    static func times(_ value: Double?) -> String {
        guard let value else { return "-" }
        return String(format: value >= 100 ? "%.0f" : value >= 10 ? "%.1f" : "%.2f", value)
    }

    /// Columns padded to their widest cell; numbers right-aligned, the listed columns left.
    static func table(_ rows: [[String]], leftAligned: Set<Int>) -> String {
        let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return leftAligned.contains(column) ? cell + padding : padding + cell
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }.joined(separator: "\n") + "\n"
    }
}
