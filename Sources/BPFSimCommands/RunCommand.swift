import ArgumentParser
import BPFSim
import Foundation

/// `bpfsim run`: run a program once.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a program once.",
        discussion: """
            PROGRAM is a BPF object file (the program's type comes from its section: an XDP program \
            runs on the packet given with --data or --data-hex; a function in .text runs on flat \
            memory), or assembly text (.s), raw 8-byte instructions (.bin) or a conformance test \
            (.data, whose memory is used unless --mem or --mem-hex is given). Flat memory runs as \
            the conformance suite does: r1 = the memory, r2 = its length; with --data an assembly \
            program runs as XDP. Maps given with --map are available to `lddw map_idx N` (N counts \
            --map options from 0). A fault or a program that does not load exits with status 1. \
            --json output is described in docs/json.md.
            """
    )

    @Argument(help: "The program: a BPF object (.o from clang -target bpf), or .s, .bin or .data.")
    var program: String

    @Option(name: .customLong("program"), help: "Which program of an object to run, by function name.")
    var programName: String?

    @Option(help: "A file whose bytes are the input memory.")
    var mem: String?

    @Option(name: .customLong("mem-hex"), help: "The input memory as hex bytes.")
    var memHex: String?

    @Option(help: "A packet file: run the program as XDP on it.")
    var data: String?

    @Option(name: .customLong("data-hex"), help: "The packet as hex bytes: run the program as XDP on it.")
    var dataHex: String?

    @Option(
        name: .customLong("map"),
        help: ArgumentHelp(
            "A map: NAME:TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES[:FLAGS], TYPE as bpftool names it.", valueName: "spec"))
    var maps: [String] = []

    @Option(
        help: "A directory of map state: maps found there are loaded first, and every map is saved back after the run.")
    var state: String?

    @Option(help: "Instructions a run may execute before it faults.")
    var budget: UInt64 = ExecutionLimits().instructionBudget

    @Option(
        help:
            "Run this many times (maps keep their state, as BPF_PROG_TEST_RUN's repeat does) and report the mean time per run."
    )
    var `repeat`: Int = 1

    @Option(help: "Emulated CPUs (per-CPU maps hold one value for each).")
    var cpus: Int = 1

    @Flag(help: "Refuse at load what the kernel refuses (out-of-range shifts, division by an immediate 0, callx).")
    var kernelStrict = false

    @Option(help: "The engine: interp, jit, or both (run on each and report the first difference, maps included).")
    var engine: EngineChoice = .interp

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    mutating func validate() throws {
        if [mem, memHex, data, dataHex].compactMap({ $0 }).count > 1 {
            throw ValidationError("give one of --mem, --mem-hex, --data, --data-hex")
        }
        if cpus < 1 || cpus > 1024 { throw ValidationError("--cpus must be between 1 and 1024") }
        if `repeat` < 1 { throw ValidationError("--repeat must be at least 1") }
        for spec in maps where MapSpec(commandLine: spec) == nil {
            throw ValidationError("'\(spec)' is not NAME:TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES[:FLAGS]")
        }
    }

    func run() throws {
        let report = makeReport()
        if json {
            printJSON(report)
        } else {
            report.printText()
        }
        if report.error != nil || report.divergence != nil { throw ExitCode(1) }
    }

    func makeReport() -> RunReport {
        var report = RunReport()
        let configuration = RunConfiguration(
            engine: engine.engines[0], limits: ExecutionLimits(instructionBudget: budget), world: World(cpuCount: cpus),
            validation: ValidationOptions(strictness: kernelStrict ? .kernel : .conformance))
        // Builds the session for one engine; `both` builds a second one with its own machine.
        var makeSession: (Engine) throws -> Session = { _ in preconditionFailure("set below") }
        let session: Session
        let index: Int
        let input: ProgramInput
        do {
            let explicit: ProgramInput? =
                if let mem { .memory(Array(try readFile(mem))) } else if let memHex {
                    .memory(try parseHex(memHex))
                } else if let data {
                    .packet(Array(try readFile(data)))
                } else if let dataHex { .packet(try parseHex(dataHex)) } else { nil }
            if BPFObject.isELF(try readFile(program)) {
                let object = try BPFObject(path: program)
                guard maps.isEmpty else {
                    throw CommandFailure("--map is for assembly programs; an object brings its own maps")
                }
                makeSession = { engine in
                    var configuration = configuration
                    configuration.engine = engine
                    return try Session(object: object, configuration: configuration)
                }
                session = try makeSession(configuration.engine)
                index = try Self.choose(programName, in: session)
                let type = session.definitions[index].type
                switch type {
                case .xdp:
                    guard case .packet = explicit else {
                        throw CommandFailure(
                            "'\(session.definitions[index].name)' is an XDP program: give a packet with --data or --data-hex"
                        )
                    }
                    input = explicit!
                case .unspec:
                    guard explicit == nil || !(explicit!.isPacket) else {
                        throw CommandFailure(
                            "'\(session.definitions[index].name)' is a plain function: give memory with --mem or --mem-hex"
                        )
                    }
                    input = explicit ?? .memory(nil)
                default:
                    throw CommandFailure(
                        "'\(session.definitions[index].name)' is a \(type.kernelName) program; bpfsim runs XDP programs and plain functions so far"
                    )
                }
            } else {
                let file = try ProgramFile(path: program)
                input = explicit ?? .memory(file.memory)
                let definition = ProgramDefinition(
                    name: URL(fileURLWithPath: program).lastPathComponent, type: input.isPacket ? .xdp : .unspec,
                    instructions: file.instructions)
                let specs = maps.compactMap(MapSpec.init(commandLine:))
                makeSession = { engine in
                    var configuration = configuration
                    configuration.engine = engine
                    return try Session(programs: [definition], maps: specs, configuration: configuration)
                }
                session = try makeSession(configuration.engine)
                index = 0
            }
        } catch let error as ProgramError {
            report.error = .init(loadError: error, path: program)
            return report
        } catch let error as SessionError {
            if let programError = error.programError {
                report.error = .init(loadError: programError, path: program)
            } else {
                report.error = .init(kind: "load", code: error.code, message: "\(program): \(error.message)")
            }
            return report
        } catch let error as LoaderError {
            report.error = .init(kind: "load", code: error.code, message: error.description)
            return report
        } catch {
            report.error = .init(kind: "load", code: "input", message: "\(error)")
            return report
        }
        var second: Session?
        if engine == .both { second = try? makeSession(.jit) }
        if let state {
            do {
                for session in [session] + (second.map { [$0] } ?? []) {
                    try MapState.load(session.machine, from: URL(fileURLWithPath: state))
                }
            } catch {
                report.error = .init(kind: "load", code: "state", message: error.description)
                return report
            }
        }
        var result = session.run(index, input: input)
        report.fallback = result.fallback
        if let second {
            let other = second.run(index, input: input)
            report.divergence = EngineComparison.compare(result, in: session, other, in: second)?.description
        }
        if `repeat` > 1 {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 1..<`repeat` { result = session.run(index, input: input) }
            let elapsed = DispatchTime.now().uptimeNanoseconds - start
            report.nanosecondsPerRun = Double(elapsed) / Double(`repeat` - 1)
        }
        if let state {
            do {
                try MapState.save(session.machine, to: URL(fileURLWithPath: state))
            } catch {
                report.error = .init(kind: "load", code: "state", message: error.description)
            }
        }
        report.insns = result.execution.instructionCount
        if input.isPacket {
            report.dataOut = result.dataOut.map(Hex.string)
        } else if case .memory(let bytes) = input, bytes != nil {
            report.memory = result.dataOut.map(Hex.string)
        }
        if !result.printk.isEmpty { report.printk = result.printk }
        if !session.machine.maps.isEmpty { report.maps = MapDump.all(session.machine) }
        if !result.events.isEmpty { report.events = result.events.map(RunReport.Event.init) }
        report.redirect = result.redirect
        if let fault = result.execution.fault {
            report.error = .init(
                kind: "fault", code: fault.code, message: fault.message, pc: fault.pc, instruction: fault.instruction)
        } else {
            report.retval = result.execution.returnValue
        }
        return report
    }
}

extension Run {
    /// The program to run: the one named, or the only one.
    static func choose(_ name: String?, in session: Session) throws -> Int {
        if let name { return try session.programIndex(named: name) }
        guard session.definitions.count == 1 else {
            throw CommandFailure(
                "the object has \(session.definitions.count) programs; choose one with --program (\(session.programNames.joined(separator: ", ")))"
            )
        }
        return 0
    }
}

extension ProgramInput {
    var isPacket: Bool {
        if case .packet = self { return true }
        return false
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
    /// The packet after the run (XDP: metadata, then the packet), as hex.
    var dataOut: String?
    var printk: [String]?
    var maps: [String: MapDump]?
    var events: [Event]?
    var redirect: RedirectTarget?
    /// Why the JIT did not run and the interpreter did, when `--engine jit` fell back.
    var fallback: String?
    /// With `--engine both`: the first difference between the engines (results, then maps).
    var divergence: String?
    /// With `--repeat N`: mean wall-clock time of runs 2...N.
    var nanosecondsPerRun: Double?
    var error: ErrorReport?

    enum CodingKeys: String, CodingKey {
        case version, retval, insns, memory, dataOut = "data_out", printk, maps, events, redirect, error
        case nanosecondsPerRun = "ns_per_run", fallback, divergence
    }

    struct Event: Encodable {
        var map: String
        var kind: String
        var cpu: Int?
        var data: String

        init(_ record: EventRecord) {
            map = record.map
            kind = record.kind.rawValue
            cpu = record.cpu
            data = Hex.string(record.data)
        }
    }

    struct ErrorReport: Encodable {
        /// `load` (the program could not be read or validated) or `fault` (it stopped while running).
        var kind: String
        var code: String
        var message: String
        /// The instruction index, when known.
        var pc: Int?
        var instruction: String?
        var line: Int?
        /// `file.c:LINE` of the faulting instruction, when the object has line info.
        var source: String?
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
                if let source = error.source { text += " at \(source)" }
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
        if let nanosecondsPerRun {
            var line = String(format: "%.1f ns per run", nanosecondsPerRun)
            if let insns, insns > 0 {
                line += String(format: ", %.2f ns per instruction", nanosecondsPerRun / Double(insns))
            }
            print(line)
        }
        if let redirect {
            print(
                "redirect: \(redirect.kind.rawValue) \(redirect.index)" + (redirect.map.map { " via map \($0)" } ?? ""))
        }
        if let dataOut { print("data_out: \(dataOut)") }
        for event in events ?? [] { print("\(event.kind) \(event.map): \(event.data)") }
        for (name, dump) in (maps ?? [:]).sorted(by: { $0.key < $1.key }) {
            print("map \(name): \(dump.entries.count) entr\(dump.entries.count == 1 ? "y" : "ies")")
            for entry in dump.entries.prefix(32) {
                switch entry.value {
                case .single(let value): print("  \(entry.key): \(value)")
                case .perCPU(let values): print("  \(entry.key): \(values.joined(separator: " "))")
                }
            }
            if dump.entries.count > 32 { print("  ... \(dump.entries.count - 32) more (use --json)") }
        }
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
