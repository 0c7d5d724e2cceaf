import ArgumentParser
import BPFSim
import Foundation

/// `bpfsim trace`: replay a system-call trace through an object's tracing programs.
struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a system-call trace through an object's tracing programs.",
        discussion: """
            Each event of the trace (--events, JSON Lines as docs/traces.md describes, or \
            --strace, what strace -f -tt writes) sets the task, CPU and clock the programs see, \
            places its string and buffer arguments in user memory, and fires every tracing \
            program of OBJECT attached where the event passes (tracepoint/syscalls/sys_enter_NAME, \
            tracepoint/raw_syscalls/sys_enter, raw_tp/sys_enter, kprobe/__x64_sys_NAME or \
            ksyscall/NAME, then the same on the exit side), or only those named with --program. \
            Those programs are verified first, as the kernel would at load (--no-verify skips it). \
            Maps keep their state across programs and events. Per event, a line says what fired \
            and what it produced: ring-buffer and perf-buffer records (hex, and decoded with the \
            object's BTF: --record-type names the struct, else the struct of the record's size \
            is used when only one fits), printk lines and faults, which name the event's line; \
            the run goes on after a fault. A summary closes the output. --json prints one JSON \
            object per line (docs/json.md). The exit status is 1 when a program faulted or the \
            engines differ.
            """
    )

    @Argument(help: "A BPF object file (.o from clang -target bpf) with tracing programs.")
    var object: String

    @Option(name: .customLong("program"), help: "Fire only this program (repeatable); default: every tracing program.")
    var programs: [String] = []

    @Option(help: "A trace in the JSON Lines format of docs/traces.md.")
    var events: String?

    @Option(help: "A trace as strace -f -tt (or -ttt, -T) writes it.")
    var strace: String?

    @Option(
        help: ArgumentHelp(
            "interp, jit, or both (run on each and report the first difference). kernel is refused: the kernel cannot test-run tracepoint or kprobe programs.",
            valueName: "engine"))
    var engine: String = "interp"

    @Option(help: "Emulated CPUs (per-CPU maps hold one value for each; events name CPUs below this).")
    var cpus: Int = 1

    @Option(help: "A directory of map state: maps found there are loaded first, and every map is saved back after the replay.")
    var state: String?

    @Option(name: .customLong("record-type"), help: "The struct that ring-buffer and perf-buffer records are decoded as.")
    var recordType: String?

    @Option(help: "Instructions one program run may execute before it faults.")
    var budget: UInt64 = ExecutionLimits().instructionBudget

    @Flag(
        name: .customLong("no-verify"),
        help: "Replay even when bpfsim's verifier says the kernel would refuse a program (docs/verifier.md).")
    var noVerify = false

    @Flag(help: "Print JSON Lines instead of text.")
    var json = false

    mutating func validate() throws {
        if (events == nil) == (strace == nil) { throw ValidationError("give one of --events or --strace") }
        if cpus < 1 || cpus > 1024 { throw ValidationError("--cpus must be between 1 and 1024") }
        if !["interp", "jit", "both", "kernel", "all"].contains(engine) {
            throw ValidationError("unknown engine '\(engine)' (engines: interp, jit, both)")
        }
    }

    func run() throws {
        if engine == "kernel" || engine == "all" {
            throw failure(
                "unsupported",
                "the kernel cannot test-run tracepoint or kprobe programs (BPF_PROG_TEST_RUN answers ENOTSUPP), so trace replay runs on interp or jit only"
            )
        }
        let trace: SyscallTrace
        let object: BPFObject
        do {
            object = try BPFObject(path: self.object)
            trace = try SyscallTrace(contentsOf: events ?? strace!, strace: strace != nil)
        } catch let error as LoaderError {
            throw failure(error.code, error.description)
        } catch {
            throw failure("input", "\(error)")
        }
        let engines: [Engine] = engine == "both" ? [.interpreter, .jit] : engine == "jit" ? [.jit] : [.interpreter]
        var outcomes: [(engine: Engine, replay: TraceReplay, result: TraceReplayResult)] = []
        for engine in engines {
            let configuration = RunConfiguration(
                engine: engine, limits: ExecutionLimits(instructionBudget: budget), world: World(cpuCount: cpus))
            let replay: TraceReplay
            do {
                let session = try Session(object: object, configuration: configuration)
                if let state { try MapState.load(session.machine, from: URL(fileURLWithPath: state)) }
                replay = try TraceReplay(session: session, programs: programs.isEmpty ? nil : programs)
                if !noVerify && outcomes.isEmpty { try replay.verify() }
            } catch let error as SessionError {
                throw failure(error.code, "\(self.object): \(error.message)")
            } catch let error as MapState.Failure {
                throw failure("state", error.description)
            } catch {
                throw failure("unknown_program", "\(self.object): \(error)")
            }
            outcomes.append((engine, replay, replay.replay(trace)))
        }
        let (_, replay, result) = outcomes[0]
        var decoder: RecordDecoder?
        if let btf = object.btf {
            do {
                decoder = try RecordDecoder(btf: btf, maps: object.maps, recordType: recordType)
            } catch {
                throw failure("record_type", error.description)
            }
        } else if recordType != nil {
            throw failure("record_type", "--record-type: \(self.object) has no BTF")
        }
        var difference: String?
        if outcomes.count == 2 {
            difference = TraceDifference.first(
                outcomes[0].result, outcomes[1].result, maps: (outcomes[0].replay.session, outcomes[1].replay.session))
        }
        if let state {
            do {
                try MapState.save(replay.session.machine, to: URL(fileURLWithPath: state))
            } catch {
                throw failure("state", error.description)
            }
        }
        let report = TraceReport(result: result, decoder: decoder)
        if json {
            report.printJSON(
                maps: MapDump.all(replay.session.machine, btf: replay.session.btf),
                engines: engines.map(\.rawValue), difference: difference)
        } else {
            report.printText(trace: trace, engines: engines.map(\.rawValue), difference: difference)
        }
        if result.faultCount > 0 || difference != nil { throw ExitCode(1) }
    }

    /// Reports a failure before the replay: one line (or one JSON object), status 1.
    private func failure(_ code: String, _ message: String) -> Error {
        if json {
            BPFSimCommands.printJSON(TraceReport.FailureLine(error: .init(code: code, message: message)))
            return ExitCode(1)
        }
        return CommandFailure(message)
    }
}

/// The first difference between two engines' replays of one trace.
enum TraceDifference {
    static func first(_ a: TraceReplayResult, _ b: TraceReplayResult, maps: (Session, Session)) -> String? {
        for (left, right) in zip(a.events, b.events) {
            let line = left.event.line
            for (x, y) in zip(left.firings, right.firings) {
                let name = x.attachment.name
                if (x.run.execution.fault == nil) != (y.run.execution.fault == nil) {
                    return "line \(line), \(name): a fault on one engine only"
                }
                if x.run.execution.returnValue != y.run.execution.returnValue {
                    return "line \(line), \(name): r0 \(x.run.execution.returnValue) and \(y.run.execution.returnValue)"
                }
                if x.run.events != y.run.events { return "line \(line), \(name): the records differ" }
                if x.run.printk != y.run.printk { return "line \(line), \(name): printk differs" }
            }
        }
        let first = MapDump.all(maps.0.machine)
        let second = MapDump.all(maps.1.machine)
        for name in first.keys.sorted() where first[name] != second[name] {
            return "map \(name) differs after the replay"
        }
        return nil
    }
}

/// What `bpfsim trace` prints.
struct TraceReport {
    let result: TraceReplayResult
    let decoder: RecordDecoder?

    struct FailureLine: Encodable {
        var type = "error"
        var version = 1
        var error: ErrorBody
        struct ErrorBody: Encodable {
            var code: String
            var message: String
        }
    }

    struct EventLine: Encodable {
        var type = "event"
        var version = 1
        var line: Int
        var time: UInt64
        var cpu: UInt32
        var pid: UInt32
        var tgid: UInt32
        var uid: UInt32
        var gid: UInt32
        var comm: String
        var syscall: String
        var number: Int32
        var args: [String]
        var ret: Int64?
        var runs: [Run]
        var error: String?

        struct Run: Encodable {
            var program: String
            var section: String
            var phase: String
            var retval: UInt64?
            var insns: UInt64?
            var records: Int
            var printk: [String]?
            var fault: Fault?
            var note: String?
        }

        struct Fault: Encodable {
            var code: String
            var message: String
            var pc: Int?
            var source: String?
        }
    }

    struct RecordLine: Encodable {
        var type = "record"
        var version = 1
        var line: Int
        var program: String
        var map: String
        var kind: String
        var cpu: Int?
        var size: Int
        var data: String
        var recordType: String?
        var formatted: BTFValue?

        enum CodingKeys: String, CodingKey {
            case type, version, line, program, map, kind, cpu, size, data, formatted
            case recordType = "record_type"
        }
    }

    struct SummaryLine: Encodable {
        var type = "summary"
        var version = 1
        var events: Int
        var runs: Int
        var records: Int
        var faults: Int
        var engines: [String]
        var difference: String?
        var maps: [String: MapDump]
    }

    static func argumentText(_ argument: SyscallArgument) -> String {
        switch argument {
        case .value(let value):
            // Addresses in hex, as strace shows them; everything else as a signed number.
            Int64(bitPattern: value) > 0xffff_ffff
                ? "0x" + String(value, radix: 16) : String(Int64(bitPattern: value))
        case .string(let text): "\"\(text.count > 40 ? String(text.prefix(40)) + "\"..." : text + "\"")"
        case .bytes(let bytes): "hex:\(Hex.string(Array(bytes.prefix(16))))\(bytes.count > 16 ? "..." : "")"
        case .zeroed(let count): "[\(count) zero bytes]"
        case .pointer(let address): "0x" + String(address, radix: 16)
        }
    }

    static func fault(_ run: ProgramRun) -> EventLine.Fault? {
        if let refusal = run.refusal { return .init(code: "refused", message: "\(refusal)", pc: nil, source: nil) }
        guard let fault = run.execution.fault else { return nil }
        return .init(code: fault.code, message: fault.message, pc: fault.pc, source: fault.sourceLine)
    }

    func eventLine(_ item: TraceEventResult) -> EventLine {
        let event = item.event
        return EventLine(
            line: event.line, time: event.time, cpu: event.cpu, pid: event.task.pid, tgid: event.task.tgid,
            uid: event.task.uid, gid: event.task.gid, comm: event.task.comm, syscall: event.syscall.name,
            number: event.syscall.number, args: event.arguments.map { Self.argumentText($0) },
            ret: event.firesExit ? event.returnValue : nil,
            runs: item.firings.map { firing in
                let fault = Self.fault(firing.run)
                return .init(
                    program: firing.attachment.name, section: firing.attachment.section,
                    phase: firing.attachment.point.isExit ? "exit" : "enter",
                    retval: fault == nil ? firing.run.execution.returnValue : nil,
                    insns: firing.run.execution.instructionCount, records: firing.run.events.count,
                    printk: firing.run.printk.isEmpty ? nil : firing.run.printk, fault: fault,
                    note: firing.run.fallback)
            }, error: item.error)
    }

    func recordLines(_ item: TraceEventResult) -> [RecordLine] {
        item.firings.flatMap { firing in
            firing.run.events.map { record in
                let decoded = decoder?.decode(record.data)
                return RecordLine(
                    line: item.event.line, program: firing.attachment.name, map: record.map,
                    kind: record.kind.rawValue, cpu: record.cpu, size: record.data.count, data: Hex.string(record.data),
                    recordType: decoded?.type, formatted: decoded?.value)
            }
        }
    }

    func printJSON(maps: [String: MapDump], engines: [String], difference: String?) {
        for item in result.events {
            BPFSimCommands.printJSON(eventLine(item))
            for record in recordLines(item) { BPFSimCommands.printJSON(record) }
        }
        BPFSimCommands.printJSON(
            SummaryLine(
                events: result.events.count, runs: result.firingCount, records: result.recordCount,
                faults: result.faultCount, engines: engines, difference: difference, maps: maps))
    }

    func printText(trace: SyscallTrace, engines: [String], difference: String?) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for item in result.events {
            let event = item.event
            let arguments = event.arguments.map { Self.argumentText($0) }.joined(separator: ", ")
            let returned = event.firesExit ? " = \(event.returnValue ?? 0)" : ""
            let micros = String(event.time % 1_000_000_000 / 1000)
            let seconds = "\(event.time / 1_000_000_000)." + String(repeating: "0", count: 6 - micros.count) + micros
            print(
                "line \(event.line)  \(seconds)  cpu \(event.cpu)  \(event.task.comm)[\(event.task.pid)]  "
                    + "\(event.syscall.name)(\(arguments))\(returned)")
            if let error = item.error { print("  error: \(error)") }
            let width = item.firings.map(\.attachment.name.count).max() ?? 0
            for firing in item.firings {
                let phase = firing.attachment.point.isExit ? "exit " : "enter"
                let name = firing.attachment.name.padding(toLength: width, withPad: " ", startingAt: 0)
                var text = "  \(phase)  \(name)  "
                if let fault = Self.fault(firing.run) {
                    text += "fault (line \(event.line)): \(fault.message)" + (fault.source.map { " at \($0)" } ?? "")
                } else {
                    text += "r0 = \(Int64(bitPattern: firing.run.execution.returnValue))"
                    if !firing.run.events.isEmpty {
                        text += ", \(firing.run.events.count) record\(firing.run.events.count == 1 ? "" : "s")"
                    }
                }
                print(text)
                if let note = firing.run.fallback { print("    note: \(note)") }
                for line in firing.run.printk { print("    printk: \(line)") }
                for record in firing.run.events {
                    let cpu = record.cpu.map { " cpu \($0)" } ?? ""
                    print("    \(record.kind.rawValue) \(record.map)\(cpu), \(record.data.count) bytes: \(Hex.string(record.data))")
                    if let (type, value) = decoder?.decode(record.data),
                        let data = try? encoder.encode(value)
                    {
                        print("      \(type) \(String(decoding: data, as: UTF8.self))")
                    }
                }
            }
        }
        let engineText = engines.count > 1 ? " (\(engines.joined(separator: ", ")))" : ""
        print(
            "\(result.events.count) event\(result.events.count == 1 ? "" : "s"), \(result.firingCount) program run\(result.firingCount == 1 ? "" : "s"), "
                + "\(result.recordCount) record\(result.recordCount == 1 ? "" : "s"), \(result.faultCount) fault\(result.faultCount == 1 ? "" : "s")\(engineText)"
        )
        if engines.count > 1 {
            if let difference {
                printError("engines differ: \(difference)")
            } else {
                print("\(engines.joined(separator: ", ")): no difference")
            }
        }
    }
}
