import ArgumentParser
import BPFLoader
import BPFSim
import Foundation

/// `bpfsim verify`: will the kernel accept this program?
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict whether the Linux kernel's verifier accepts a program, and explain a refusal.",
        discussion: """
            Checks each program of a BPF object (or one, with --program) the way the kernel's \
            verifier does for a privileged loader, without root. A refusal prints the kernel's \
            first error line, a plain explanation and the instructions that led there. Assembly \
            (.s) and raw (.bin) programs are checked as --type (default xdp) with the maps given \
            by --map. Exits with status 1 when a program is refused. See docs/verifier.md.
            """
    )

    enum EngineChoice: String, ExpressibleByArgument, CaseIterable {
        case bpfsim
        case kernel
    }

    @Argument(help: "A BPF object file (clang -target bpf -c), or an assembly (.s) or raw (.bin) program.")
    var file: String

    @Option(name: .customLong("program"), help: "Which program of an object to verify, by function name.")
    var program: String?

    @Option(help: "Which verifier: bpfsim (the static verifier, default) or kernel.")
    var engine: EngineChoice = .bpfsim

    @Option(help: "The program type for assembly and raw programs, as bpftool names it (xdp, socket_filter, sched_cls, ...).")
    var type: String = "xdp"

    @Option(
        name: .customLong("map"),
        parsing: .singleValue,
        help: ArgumentHelp(
            "For assembly programs, a map: NAME:TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES[:FLAGS].", valueName: "spec"))
    var maps: [String] = []

    @Flag(help: "Print one JSON object (see docs/json.md).")
    var json = false

    func run() throws {
        if engine == .kernel {
            if json {
                printJSON(VerifyReport(error: "kernel verification is not available in this build"))
            } else {
                printError("error: kernel verification is not available in this build")
            }
            throw ExitCode(1)
        }
        let targets: [(name: String, verdict: Verdict, lines: (Int) -> LineInfo?)]
        do {
            targets = try verdicts()
        } catch {
            if json { printJSON(VerifyReport(error: "\(error)")) } else { printError("error: \(error)") }
            throw ExitCode(1)
        }
        if json {
            printJSON(VerifyReport(targets.map { VerifyReport.Program(name: $0.name, verdict: $0.verdict, line: $0.lines) }))
        } else {
            for (index, target) in targets.enumerated() {
                if index > 0 { print("") }
                print(Self.text(name: target.name, verdict: target.verdict, line: target.lines))
            }
        }
        if targets.contains(where: { !$0.verdict.accepted }) { throw ExitCode(1) }
    }

    func verdicts() throws -> [(name: String, verdict: Verdict, lines: (Int) -> LineInfo?)] {
        let data = try readFile(file)
        if BPFObject.isELF(data) {
            let object = try BPFObject(path: file)
            let programs = try program.map { [try object.program(named: $0)] } ?? object.programs
            return programs.map { program in
                (program.name, Verifier.verify(object: object, program: program), { program.line(at: $0) })
            }
        }
        let loaded = try ProgramFile(path: file)
        guard let programType = ProgramType.allCases.first(where: { $0.kernelName == type || Self.alias(type) == $0 })
        else { throw CommandFailure("unknown program type '\(type)'") }
        var specs: [MapSpec] = []
        for text in maps {
            guard let spec = MapSpec(commandLine: text) else { throw CommandFailure("bad --map '\(text)'") }
            specs.append(spec)
        }
        let verdict = Verifier.verify(instructions: loaded.instructions, type: programType, maps: specs)
        return [(URL(fileURLWithPath: file).lastPathComponent, verdict, { _ in nil })]
    }

    static func alias(_ name: String) -> ProgramType? {
        switch name {
        case "socket": .socketFilter
        case "tc", "classifier": .schedCls
        case "action": .schedAct
        case "raw_tp": .rawTracepoint
        default: nil
        }
    }

    static func text(name: String, verdict: Verdict, line: (Int) -> LineInfo?) -> String {
        let stats = verdict.statistics
        let counts = "processed \(stats.processedInstructions) insns, peak states \(stats.peakStates)"
        guard let error = verdict.error else { return "\(name): accepted (\(counts))" }
        var lines = ["\(name): refused", error.message]
        lines += error.details
        var place = error.index.map { "at instruction \($0)" } ?? ""
        if let index = error.index, let source = line(index) {
            place += " (\(source.location): \(source.source.trimmingCharacters(in: .whitespaces)))"
        }
        lines.append("")
        lines.append((place.isEmpty ? "" : place + ": ") + error.explanation)
        if !error.path.isEmpty {
            lines.append("")
            lines.append("path:")
            for step in error.path {
                var row = "  \(String(step.index).leftPadded(5)): \(step.instruction)"
                if let note = step.note { row = row.padding(toLength: max(row.count, 40), withPad: " ", startingAt: 0) + " ; \(note)" }
                if let source = line(step.index) { row += "  [\(source.location)]" }
                lines.append(row)
            }
        }
        lines.append("(\(counts))")
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

/// `bpfsim verify --json` (see docs/json.md).
struct VerifyReport: Encodable {
    var version = 1
    var programs: [Program]?
    var error: String?

    struct Program: Encodable {
        var name: String
        var verdict: String
        var message: String?
        var details: [String]?
        var code: String?
        var explanation: String?
        var insn: Int?
        var line: String?
        var source: String?
        var path: [VerifierPathStep]?
        var stats: VerifierStatistics

        init(name: String, verdict: Verdict, line: (Int) -> LineInfo?) {
            self.name = name
            self.verdict = verdict.accepted ? "accept" : "reject"
            stats = verdict.statistics
            if let error = verdict.error {
                message = error.message
                details = error.details.isEmpty ? nil : error.details
                code = error.code
                explanation = error.explanation
                insn = error.index
                path = error.path.isEmpty ? nil : error.path
                if let index = error.index, let info = line(index) {
                    self.line = info.location
                    source = info.source
                }
            }
        }
    }

    init(_ programs: [Program]) { self.programs = programs }
    init(error: String) { self.error = error }
}
