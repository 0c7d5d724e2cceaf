import ArgumentParser
import BPFSim
import Foundation

/// `bpfsim run`: run a program once on flat memory.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a program once, as the conformance suite does: r1 = memory, r2 = its length.",
        discussion: """
            PROGRAM is assembly text (.s), raw 8-byte instructions (.bin) or a conformance test \
            (.data, whose memory is used unless --mem or --mem-hex is given). A fault or a program \
            that does not load exits with status 1. --json output is described in docs/json.md.
            """
    )

    @Argument(help: "The program: .s, .bin or .data.")
    var program: String

    @Option(help: "A file whose bytes are the input memory.")
    var mem: String?

    @Option(name: .customLong("mem-hex"), help: "The input memory as hex bytes.")
    var memHex: String?

    @Option(help: "Instructions a run may execute before it faults.")
    var budget: UInt64 = ExecutionLimits().instructionBudget

    @Flag(help: "Refuse at load what the kernel refuses (out-of-range shifts, division by an immediate 0, callx).")
    var kernelStrict = false

    @Option(help: "The engine: interp, jit, or both (run on each and report where they differ).")
    var engine: EngineChoice = .interp

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    mutating func validate() throws {
        if mem != nil && memHex != nil { throw ValidationError("give --mem or --mem-hex, not both") }
    }

    func run() throws {
        let report = RunReport.make(
            programPath: program, memPath: mem, memHex: memHex, budget: budget,
            strictness: kernelStrict ? .kernel : .conformance, engine: engine)
        if json {
            printJSON(report)
        } else {
            report.printText()
        }
        if report.error != nil || report.divergence != nil { throw ExitCode(1) }
    }
}

/// The result of `bpfsim run`, as printed with `--json` (see docs/json.md).
struct RunReport: Encodable {
    /// The version of this JSON layout.
    var version = 1
    /// r0 as an unsigned 64-bit integer.
    var retval: UInt64?
    /// Instructions executed.
    var insns: UInt64?
    /// The input memory after the run, as hex, when there was memory.
    var memory: String?
    var printk: [String]?
    var error: ErrorReport?
    /// Why the JIT did not run and the interpreter did, when `--engine jit` fell back.
    var fallback: String?
    /// With `--engine both`: the first difference between the engines (the rest of the
    /// report is the interpreter's).
    var divergence: String?

    struct ErrorReport: Encodable {
        /// `load` (the program could not be read or validated) or `fault` (it stopped while running).
        var kind: String
        var code: String
        var message: String
        /// The instruction index, when known.
        var pc: Int?
        var instruction: String?
        var line: Int?
    }

    static func make(
        programPath: String, memPath: String?, memHex: String?, budget: UInt64, strictness: Strictness,
        engine: EngineChoice = .interp
    ) -> RunReport
    {
        var report = RunReport()
        let file: ProgramFile
        let memory: [UInt8]?
        let program: Program
        do {
            file = try ProgramFile(path: programPath)
            if let memPath {
                memory = Array(try readFile(memPath))
            } else if let memHex {
                memory = try parseHex(memHex)
            } else {
                memory = file.memory
            }
            program = try Program(instructions: file.instructions, options: ValidationOptions(strictness: strictness))
        } catch let error as ProgramError {
            report.error = ErrorReport(loadError: error, path: programPath)
            return report
        } catch {
            report.error = ErrorReport(kind: "load", code: "input", message: "\(error)")
            return report
        }
        var configuration = RunConfiguration(limits: ExecutionLimits(instructionBudget: budget))
        let result: FlatRunResult
        do {
            if engine == .both {
                let outcome = try EngineComparison.run(program, memory: memory, configuration: configuration)
                result = outcome.interpreter
                report.divergence = outcome.divergence?.description
            } else {
                configuration.engine = engine.engines[0]
                result = try FlatRunner.run(program, memory: memory, configuration: configuration)
                report.fallback = result.fallback
            }
        } catch {
            report.error = ErrorReport(loadError: error, path: programPath)
            return report
        }
        report.insns = result.execution.instructionCount
        if memory != nil { report.memory = hexString(result.memoryAfter) }
        if !result.printk.isEmpty { report.printk = result.printk }
        if let fault = result.execution.fault {
            report.error = ErrorReport(
                kind: "fault", code: fault.code, message: fault.message, pc: fault.pc, instruction: fault.instruction)
        } else {
            report.retval = result.execution.returnValue
        }
        return report
    }

    func printText() {
        if let fallback { printError("note: \(fallback)") }
        if let divergence { printError("engines differ: \(divergence)") }
        for line in printk ?? [] { print("printk: \(line)") }
        if let error {
            var text = "error: "
            if error.kind == "load" {
                text += error.message
            } else {
                text += "instruction \(error.pc ?? 0)"
                if let instruction = error.instruction { text += " (\(instruction))" }
                text += ": " + error.message
            }
            printError(text)
            if let insns { printError("after \(insns) instructions") }
            return
        }
        guard let retval else { return }
        print(
            String(format: "r0 = 0x%016llx (%llu)", retval, retval)
                + (Int64(bitPattern: retval) < 0 ? " (\(Int64(bitPattern: retval)) signed)" : ""))
        if let insns { print("\(insns) instructions") }
    }
}

extension RunReport.ErrorReport {
    init(loadError error: ProgramError, path: String) {
        kind = "load"
        code = error.code
        message = "\(path): \(error)"
        pc = error.instructionIndex
        if case .line(let number) = error.location { line = number }
    }
}
