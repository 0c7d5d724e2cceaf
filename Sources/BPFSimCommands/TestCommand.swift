import ArgumentParser
import BPFSim
import Foundation

/// `bpfsim test`: run test specs (docs/specs.md).
struct TestSpecs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run test specs (*.spec.yaml) and report each case.",
        discussion: """
            Each SPEC is a test spec file, or a directory searched for *.spec.yaml files. A spec \
            names a BPF object (or a .bpf.c file, compiled with clang), a program, initial map \
            contents and cases: packets, flows, captures and traces with the verdicts, return \
            values, output packets, printk lines, ring buffer records and map contents to \
            expect (docs/specs.md). The program is first checked with bpfsim's verifier, as the \
            kernel would check it (--no-verify skips that). Every case starts from the spec's initial maps. One line is \
            printed per case and engine, failures explained underneath; the exit status is 1 \
            when any case fails. --engine kernel runs packet cases in the running kernel \
            (BPF_PROG_TEST_RUN; needs bpf(2)), all runs each case on interp, jit and kernel. \
            --json output is described in docs/json.md.
            """
    )

    @Argument(help: "Spec files, or directories holding *.spec.yaml files.")
    var specs: [String]

    @Option(help: ArgumentHelp(EngineSelection.help, valueName: "engine"))
    var engine: String = "interp"

    @Option(help: ArgumentHelp("Write a JUnit XML report to this file.", valueName: "file"))
    var junit: String?

    @Option(help: ArgumentHelp("Run only cases whose name contains this text.", valueName: "substring"))
    var filter: String?

    @Flag(help: "Run the cases without checking the program with bpfsim's verifier first.")
    var noVerify = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    mutating func validate() throws {
        do {
            _ = try EngineSelection.parse(engine: engine, compare: nil)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        let backends = try EngineSelection.parse(engine: engine, compare: nil).backends
        let runner = SpecRunner(backends: backends, filter: filter, verify: !noVerify)
        let files = SpecRunner.specFiles(specs)
        var reports: [SpecReport] = []
        for file in files {
            let report = runner.run(path: file)
            reports.append(report)
            if !json { for line in SpecTextReport.lines(report) { print(line) } }
        }
        if files.isEmpty && !json { print("no *.spec.yaml files in \(specs.joined(separator: ", "))") }
        if let junit {
            do {
                try Data(JUnitReport.xml(reports).utf8).write(to: URL(fileURLWithPath: junit), options: .atomic)
            } catch {
                throw CommandFailure("\(junit): cannot write the JUnit report (\(error.localizedDescription))")
            }
        }
        if json {
            printJSON(TestReportJSON(reports))
        } else {
            print(SpecTextReport.summary(reports))
        }
        if reports.contains(where: { !$0.succeeded }) { throw ExitCode(1) }
    }
}

/// `bpfsim test --json` (docs/json.md).
struct TestReportJSON: Encodable {
    var version = 1
    var specs: [SpecReport]
    var passed: Int
    var failed: Int
    var skipped: Int

    init(_ reports: [SpecReport]) {
        specs = reports
        passed = reports.reduce(0) { $0 + $1.passed }
        failed = reports.reduce(0) { $0 + $1.failed }
        skipped = reports.reduce(0) { $0 + $1.skipped }
    }
}
