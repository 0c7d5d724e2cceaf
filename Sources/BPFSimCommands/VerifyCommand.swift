import ArgumentParser
import BPFKernel
import BPFSim
import Foundation

/// `bpfsim verify`: a verifier's verdict on each program of an object.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask a verifier whether each program of an object would load.",
        discussion: """
            Prints, for each program (or the one named with --program), the verdict (accept or \
            reject), the line of the log that says why a program was refused, how many \
            instructions the verifier processed, and the end of its log (all of it with \
            --verbose). The verifier today is the running kernel's, through libbpf: it needs \
            bpf(2) (root or CAP_BPF); where that is refused, one sentence says why. Exits with \
            status 1 when a program is refused or cannot be verified. --json output is \
            described in docs/json.md.
            """
    )

    /// The verifiers `--engine` can name. bpfsim's own static verifier will join the kernel.
    enum VerifierEngine: String, ExpressibleByArgument, CaseIterable {
        case kernel
    }

    @Argument(help: "A BPF object file (clang -target bpf -c).")
    var object: String

    @Option(name: .customLong("program"), help: "Verify only this program, by function name.")
    var programName: String?

    @Option(help: "The verifier: kernel (the running kernel's, through libbpf).")
    var engine: VerifierEngine = .kernel

    @Flag(help: "Print the whole verifier log of each program.")
    var verbose = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    /// Log lines printed without --verbose.
    static let logTail = 12

    func run() throws {
        let report = makeReport()
        if json {
            printJSON(report)
        } else {
            report.printText(verbose: verbose)
        }
        if report.error != nil || report.programs.contains(where: { $0.verdict != "accept" }) { throw ExitCode(1) }
    }

    func makeReport() -> VerifyReport {
        var report = VerifyReport(engine: engine.rawValue, path: object)
        let loaded: BPFObject
        do {
            loaded = try BPFObject(path: object)
        } catch {
            report.error = .init(code: error.code, message: error.description)
            return report
        }
        if let refused = Kernel.unavailability() {
            report.error = .init(code: "kernel_unavailable", message: refused.message)
            return report
        }
        var programs = loaded.programs
        if let programName {
            guard let program = programs.first(where: { $0.name == programName }) else {
                report.error = .init(
                    code: "unknown_program",
                    message:
                        "\(object): no program named '\(programName)' (programs: \(programs.map(\.name).joined(separator: ", ")))"
                )
                return report
            }
            programs = [program]
        } else {
            // .text functions are subprograms to libbpf unless they are the object's only function.
            let typed = programs.filter { $0.type != .unspec }
            if !typed.isEmpty { programs = typed }
        }
        for program in programs {
            do {
                report.programs.append(.init(try KernelVerifier.verify(loaded, program: program.name)))
            } catch {
                report.programs.append(.init(program: program, error: error))
            }
        }
        return report
    }
}

/// `bpfsim verify --json` (see docs/json.md).
struct VerifyReport: Encodable {
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
