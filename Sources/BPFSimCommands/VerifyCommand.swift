import ArgumentParser
import BPFKernel
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

    @Option(help: "Which verifier: bpfsim (the static verifier, default) or kernel (the running kernel's, through libbpf; needs bpf(2)).")
    var engine: EngineChoice = .bpfsim

    @Option(help: "The program type for assembly and raw programs, as bpftool names it (xdp, socket_filter, sched_cls, ...).")
    var type: String = "xdp"

    @Option(
        name: .customLong("map"),
        parsing: .singleValue,
        help: ArgumentHelp(
            "For assembly programs, a map: NAME:TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES[:FLAGS].", valueName: "spec"))
    var maps: [String] = []

    @Flag(help: "With --engine kernel, print the whole verifier log of each program.")
    var verbose = false

    @Flag(help: "Print one JSON object (see docs/json.md).")
    var json = false

    /// Kernel log lines printed without --verbose.
    static let logTail = 12

    func run() throws {
        if engine == .kernel {
            let report = kernelReport()
            if json { printJSON(report) } else { report.printText(verbose: verbose) }
            if report.error != nil || report.programs.contains(where: { $0.verdict != "accept" }) { throw ExitCode(1) }
            return
        }
        let targets: [(name: String, verdict: VerifierResult, lines: (Int) -> LineInfo?)]
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

    func verdicts() throws -> [(name: String, verdict: VerifierResult, lines: (Int) -> LineInfo?)] {
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

    func kernelReport() -> KernelVerifyReport {
        var report = KernelVerifyReport(engine: "kernel", path: file)
        let loaded: BPFObject
        do {
            loaded = try BPFObject(path: file)
        } catch {
            report.error = .init(code: error.code, message: error.description)
            return report
        }
        if let refused = Kernel.unavailability() {
            report.error = .init(code: "kernel_unavailable", message: refused.message)
            return report
        }
        var programs = loaded.programs
        if let programName = program {
            guard let program = programs.first(where: { $0.name == programName }) else {
                report.error = .init(
                    code: "unknown_program",
                    message:
                        "\(file): no program named '\(programName)' (programs: \(programs.map(\.name).joined(separator: ", ")))"
                )
                return report
            }
            programs = [program]
        } else {
            // .text functions are subprograms to libbpf unless they are the object's only function.
            let typed = programs.filter { $0.type != .unspec }
            if !typed.isEmpty { programs = typed }
        }
        for candidate in programs {
            do {
                report.programs.append(.init(try KernelVerifier.verify(loaded, program: candidate.name)))
            } catch {
                report.programs.append(.init(program: candidate, error: error))
            }
        }
        return report
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

    static func text(name: String, verdict: VerifierResult, line: (Int) -> LineInfo?) -> String {
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
    var engine = "bpfsim"
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

        init(name: String, verdict: VerifierResult, line: (Int) -> LineInfo?) {
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

/// `bpfsim verify --json` (see docs/json.md).
struct KernelVerifyReport: Encodable {
    var version = 1
    var engine: String
    var path: String
    var programs: [Program] = []
    var error: ErrorReport?

    struct ErrorReport: Encodable {
        var code: String
        var message: String
    }

    struct Program: Encodable {
        var name: String
        var section: String
        var type: String
        /// `accept`, `reject`, or `error` (it could not be put to the verifier).
        var verdict: String
        /// The line that says why it was refused, or what stopped it from being verified.
        var message: String?
        /// The errno name of a refused load (`EACCES`, `EINVAL`, `E2BIG`...).
        var errno: String?
        /// "processed N insns": the instructions the verifier walked.
        var processed: Int?
        var log: String?
        var logTruncated: Bool?

        init(_ verdict: VerifierVerdict) {
            name = verdict.program
            section = verdict.section
            type = verdict.type
            self.verdict =
                verdict.accepted ? "accept" : (verdict.note != nil && verdict.log.isEmpty ? "error" : "reject")
            message = verdict.firstError ?? verdict.note
            errno = verdict.errno.map(errnoName)
            processed = verdict.processedInstructions
            log = verdict.log.isEmpty ? nil : verdict.log
            logTruncated = verdict.logTruncated ? true : nil
        }

        init(program: ObjectProgram, error: KernelError) {
            name = program.name
            section = program.section
            type = program.type.kernelName
            verdict = "error"
            message = error.message
            errno = error.errno.map(errnoName)
            log = error.log
        }
    }

    func printText(verbose: Bool) {
        if let error {
            printError("error: \(error.message)")
            return
        }
        for program in programs {
            var line = "\(program.name) (\(program.type), section \(program.section)): "
            switch program.verdict {
            case "accept": line += "accepted"
            case "reject": line += "refused" + (program.errno.map { " (\($0))" } ?? "")
            default: line += "not verified"
            }
            if let processed = program.processed { line += ", \(processed) instructions processed" }
            print(line)
            if program.verdict != "accept", let message = program.message { print("  \(message)") }
            guard let log = program.log, verbose || program.verdict != "accept" else { continue }
            var lines = log.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            while lines.last?.isEmpty == true { lines.removeLast() }
            if !verbose && lines.count > Verify.logTail {
                print("  ... \(lines.count - Verify.logTail) earlier lines (--verbose prints them)")
                lines = Array(lines.suffix(Verify.logTail))
            }
            if program.logTruncated == true { print("  (the log was longer than its buffer; this is its end)") }
            for logLine in lines { print("  | " + logLine) }
        }
    }
}

/// `EACCES` for 13.
func errnoName(_ errno: Int32) -> String {
    let names: [Int32: String] = [
        1: "EPERM", 2: "ENOENT", 7: "E2BIG", 9: "EBADF", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY",
        17: "EEXIST", 22: "EINVAL", 28: "ENOSPC", 38: "ENOSYS", 95: "EOPNOTSUPP", 524: "ENOTSUPP",
    ]
    return names[errno] ?? "errno \(errno)"
}
