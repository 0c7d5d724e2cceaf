import ArgumentParser
import BPFSim
import Foundation

/// `bpfsim replay`: run every packet of a capture through a program (docs/replay.md).
struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every packet of a pcap or pcapng capture through a packet program.",
        discussion: """
            The program (XDP, tc, socket filter or cgroup_skb, from a BPF object; or assembly \
            run as --type) runs on each packet in turn, its maps kept from packet to packet. \
            Packet timestamps set the clock; packets are spread over --cpus CPUs by a Toeplitz \
            hash of their flow, as a NIC's RSS spreads them. Prints a summary (verdicts, \
            redirects, faults, packets/s); --json prints one line per packet, then the summary \
            with the final maps. A packet that faults is reported and the replay goes on. \
            --engine both (or all, or --compare) runs each packet on several engines and stops \
            at the first difference, with exit status 1. docs/replay.md has the details, \
            docs/json.md the JSON lines.
            """
    )

    @Argument(help: "A BPF object (.o from clang -target bpf), or assembly (.s) or raw instructions (.bin).")
    var object: String

    @Option(name: .customLong("program"), help: "Which program of the object, by function name.")
    var programName: String?

    @Option(help: "The capture to replay (pcap or pcapng).")
    var pcap: String

    @Option(help: "Write the packets the program sent on (XDP_TX, redirects, clones), as modified, to this pcap.")
    var out: String?

    @Option(help: "Emulated CPUs packets are spread over by flow (RSS).")
    var cpus: Int = 1

    @Option(help: "Replay at most this many packets.")
    var limit: Int?

    @Option(
        help: "A directory of map state: maps found there are loaded first, and every map is saved back at the end.")
    var state: String?

    @Option(help: "Instructions one packet's run may execute before it faults.")
    var budget: UInt64 = ExecutionLimits().instructionBudget

    @Option(
        help: ArgumentHelp(
            "The type of an assembly program: xdp, sched_cls, sched_act, socket_filter, cgroup_skb.",
            valueName: "type"))
    var type: String?

    @Option(help: ArgumentHelp(EngineSelection.help, valueName: "engine"))
    var engine: String?

    @Option(
        help: ArgumentHelp(
            "Run each packet on each of these engines and stop at the first difference (comma-separated, e.g. interp,kernel).",
            valueName: "engines"))
    var compare: String?

    @Flag(
        name: .customLong("no-verify"),
        help: "Replay even what bpfsim's verifier predicts the kernel would refuse (for experiments).")
    var noVerify = false

    @Flag(help: "Print one JSON line per packet, then a summary line.")
    var json = false

    mutating func validate() throws {
        do {
            _ = try EngineSelection.parse(engine: engine, compare: compare)
        } catch {
            throw ValidationError(error.description)
        }
        if cpus < 1 || cpus > 1024 { throw ValidationError("--cpus must be between 1 and 1024") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let type, Self.programType(type) == nil {
            throw ValidationError("--type takes xdp, sched_cls, sched_act, socket_filter or cgroup_skb")
        }
    }

    static func programType(_ name: String) -> ProgramType? {
        ProgramType.allCases.first { $0.kernelName == name && PacketReplay.packetTypes.contains($0) }
    }

    func run() throws {
        var output = ReplayOutput(json: json)
        let status = replay(&output)
        if status != 0 { throw ExitCode(status) }
    }

    /// Replays and prints; returns the exit status.
    func replay(_ output: inout ReplayOutput) -> Int32 {
        let selection: EngineSelection
        do {
            selection = try EngineSelection.parse(engine: engine, compare: compare)
        } catch {
            return output.fail(code: "input", message: error.description)
        }
        let packetReplay: PacketReplay
        let reader: CaptureReader
        var writer: CaptureWriter?
        var notes: [String] = []
        do {
            packetReplay = try makeReplay(selection)
            reader = try CaptureReader(path: pcap)
            if let out { writer = try CaptureWriter(path: out) }
        } catch let error as CaptureError {
            return output.fail(code: error.code, message: error.description)
        } catch let error as ReplayError {
            let message = error.code == "kernel_unavailable" ? error.message : "\(object): \(error.message)"
            return output.fail(code: error.code, message: message)
        } catch let error as ProgramError {
            return output.fail(code: error.code, message: "\(object): \(error)")
        } catch let error as LoaderError {
            return output.fail(code: error.code, message: error.description)
        } catch {
            return output.fail(code: "input", message: "\(error)")
        }
        if let note = reader.synthesisNote {
            printError("note: \(pcap): \(note)")
            notes.append(note)
        }
        if selection.backends.contains(.kernel) && cpus > 1 {
            let note =
                "the kernel's test run puts every packet on lo's one receive queue, so rx_queue_index is 0 on every engine"
            if packetReplay.programType == .xdp { notes.append(note) }
        }
        var progress = ReplayProgress(path: pcap, format: reader.format)
        var writeError: CaptureError?
        let summary = packetReplay.replay(reader, limit: limit) { result in
            output.packet(result)
            if let writer, writeError == nil {
                let cut = result.wireLength - result.lengthIn
                for frame in result.transmitted {
                    do throws(CaptureError) {
                        try writer.write(frame, timestamp: result.timestamp ?? 0, originalLength: frame.count + cut)
                    } catch {
                        writeError = error
                    }
                }
            }
            progress.update(result)
        }
        progress.finish()
        do throws(CaptureError) {
            try writer?.close()
        } catch {
            writeError = writeError ?? error
        }
        var saveError: String?
        if let state {
            if selection.backends.count == 1, let machine = packetReplay.machine() {
                do {
                    try MapState.save(machine, to: URL(fileURLWithPath: state))
                } catch {
                    saveError = error.description
                }
            } else {
                notes.append("the maps are not written back to --state when the kernel runs or engines are compared")
            }
        }
        output.summary(
            summary, replay: packetReplay, capture: pcap, out: out, notes: notes, maps: packetReplay.maps())
        var status: Int32 = 0
        if let error = summary.captureError {
            output.error(code: error.code, message: error.description)
            status = 1
        }
        if let writeError {
            output.error(code: writeError.code, message: writeError.description)
            status = 1
        }
        if let saveError {
            output.error(code: "state", message: saveError)
            status = 1
        }
        if summary.divergence != nil { status = 1 }
        return status
    }

    func makeReplay(_ selection: EngineSelection) throws -> PacketReplay {
        var engine = Engine.interpreter
        if case .engine(let first) = selection.backends[0] { engine = first }
        let configuration = RunConfiguration(engine: engine, limits: ExecutionLimits(instructionBudget: budget))
        let stateLoader: ((Machine) throws -> Void)? = state.map { directory in
            { machine in try MapState.load(machine, from: URL(fileURLWithPath: directory)) }
        }
        let options = ReplayOptions(cpus: cpus, verify: !noVerify)
        if BPFObject.isELF(try readFile(object)) {
            guard type == nil else {
                throw CommandFailure("--type is for assembly programs; an object's sections give types")
            }
            let loaded = try BPFObject(path: object)
            let name: String
            if let programName {
                name = programName
            } else {
                let packetPrograms = loaded.programs.filter { PacketReplay.packetTypes.contains($0.type) }
                guard packetPrograms.count == 1 else {
                    throw CommandFailure(
                        "\(object): the object has \(packetPrograms.count) packet programs; choose one with --program (\(loaded.programs.map(\.name).joined(separator: ", ")))"
                    )
                }
                name = packetPrograms[0].name
            }
            return try PacketReplay(
                object: loaded, program: name, backends: selection.backends, configuration: configuration,
                options: options, state: stateLoader)
        }
        if selection.backends.contains(.kernel) {
            throw CommandFailure("the kernel engine runs BPF object files (clang -target bpf -c); \(object) is not one")
        }
        let file = try ProgramFile(path: object)
        let definition = ProgramDefinition(
            name: URL(fileURLWithPath: object).lastPathComponent, type: type.flatMap(Self.programType) ?? .xdp,
            instructions: file.instructions)
        return try PacketReplay(
            programs: [definition], index: 0, backends: selection.backends, configuration: configuration,
            options: options, state: stateLoader)
    }
}

/// A progress line on standard error, rewritten in place twice a second, when standard
/// error is a terminal and the command prints to the real console (not in tests).
struct ReplayProgress {
    let enabled: Bool
    let fileSize: Int?
    let headerBytes: Int
    let recordOverhead: Int
    var consumed = 0
    var packets = 0
    var lastUpdate = ContinuousClock.now
    let start = ContinuousClock.now
    var shown = false

    init(path: String, format: CaptureFormat) {
        enabled = isatty(STDERR_FILENO) == 1 && Console.current === Console.standard
        // Percent is known for pcap, whose records are a 16-byte header and the bytes;
        // pcapng blocks carry options of their own size, so it is left out there.
        fileSize =
            format == .pcapng
            ? nil : (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        headerBytes = 24
        recordOverhead = 16
    }

    mutating func update(_ result: ReplayResult) {
        guard enabled else { return }
        packets += 1
        consumed += recordOverhead + result.lengthIn
        let now = ContinuousClock.now
        guard now - lastUpdate >= .milliseconds(500) else { return }
        lastUpdate = now
        let seconds = Double((now - start).components.seconds) + Double((now - start).components.attoseconds) / 1e18
        var line = "\(ReplayOutput.grouped(packets)) packets, \(ReplayOutput.grouped(Int(Double(packets) / max(seconds, 1e-9))))/s"
        if let fileSize, fileSize > 0 {
            line += String(format: ", %.0f%%", min(99, Double(headerBytes + consumed) * 100 / Double(fileSize)))
        }
        FileHandle.standardError.write(Data(("\r\u{1b}[K" + line).utf8))
        shown = true
    }

    func finish() {
        if shown { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)) }
    }
}

/// What `bpfsim replay` prints: text for people, or JSON lines (docs/json.md).
struct ReplayOutput {
    let json: Bool
    /// Faults and failed runs named on standard error in text mode, before "and N more".
    static let namedLimit = 10
    var named = 0
    var unnamed = 0

    init(json: Bool) { self.json = json }

    /// A replay that could not start: one line, exit status 1.
    mutating func fail(code: String, message: String) -> Int32 {
        error(code: code, message: message)
        return 1
    }

    func error(code: String, message: String) {
        if json {
            printJSON(ReplayLine(type: "error", error: .init(code: code, message: message)))
        } else {
            printError("error: \(message)")
        }
    }

    mutating func packet(_ result: ReplayResult) {
        if json {
            printJSON(ReplayLine(packet: result))
            return
        }
        var problem: String?
        if let fault = result.fault {
            problem = "fault: " + ReplaySummary.describe(fault)
        } else if let refusal = result.refusal {
            problem = "refused: the kernel would refuse it: \(refusal)"
        } else if let error = result.error {
            problem = "could not run: \(error)"
        }
        if let problem {
            if named < Self.namedLimit {
                printError("packet \(result.number): \(problem)")
                named += 1
            } else {
                unnamed += 1
            }
        }
        if let divergence = result.divergence {
            printError(
                "engines differ at packet \(divergence.input): \(divergence.field): \(divergence.first) \(divergence.firstValue), \(divergence.second) \(divergence.secondValue)"
                    + (divergence.note.map { " (\($0))" } ?? ""))
        }
    }

    func summary(
        _ summary: ReplaySummary, replay: PacketReplay, capture: String, out: String?, notes: [String],
        maps: [String: MapDump]
    ) {
        if json {
            printJSON(
                ReplayLine(
                    summary: summary, replay: replay, capture: capture, out: out, notes: notes, maps: maps))
            return
        }
        if unnamed > 0 { printError("... and \(unnamed) more packets with a fault or error (--json lists every packet)") }
        for note in notes where !note.hasPrefix("link type") { printError("note: \(note)") }
        let engines = replay.backends.map(\.name).joined(separator: ", ")
        var headline =
            "\(capture): \(Self.grouped(summary.packets)) packet\(summary.packets == 1 ? "" : "s") through \(replay.programName) (\(replay.programType.kernelName)) on \(engines)"
        if replay.options.cpus > 1 { headline += ", \(replay.options.cpus) CPUs" }
        if let rate = summary.packetsPerSecond {
            headline +=
                String(format: ", %.3f s", Double(summary.elapsedNanoseconds) / 1e9)
                + ", \(Self.grouped(Int(rate.rounded()))) packets/s"
        }
        print(headline)
        var rows: [[String]] = [["outcome", "packets", "share"]]
        func row(_ name: String, _ count: Int) {
            let share = summary.packets == 0 ? 0 : Double(count) * 100 / Double(summary.packets)
            rows.append([name, Self.grouped(count), String(format: "%.1f%%", share)])
        }
        for (name, count) in summary.verdicts.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) {
            row(name, count)
        }
        if summary.faults > 0 { row("fault", summary.faults) }
        if summary.refusals > 0 { row("refused", summary.refusals) }
        if summary.errors > 0 { row("not run", summary.errors) }
        if summary.leftOut > 0 { row("left out", summary.leftOut) }
        print(Self.table(rows, rightAligned: [1, 2]))
        if !summary.redirects.isEmpty {
            var targets: [[String]] = [["redirect target", "packets"]]
            for (target, count) in summary.redirects.sorted(by: { $0.key < $1.key }) {
                targets.append([target, Self.grouped(count)])
            }
            print("")
            print(Self.table(targets, rightAligned: [1]))
        }
        if summary.packetsPerCPU.count > 1 {
            var perCPU: [[String]] = [["cpu", "packets"]]
            for (cpu, count) in summary.packetsPerCPU.enumerated() { perCPU.append(["\(cpu)", Self.grouped(count)]) }
            print("")
            print(Self.table(perCPU, rightAligned: [0, 1]))
        }
        if let out { print("\nsent on: \(Self.grouped(summary.transmitted)) frame\(summary.transmitted == 1 ? "" : "s") written to \(out)") }
        if let first = summary.leftOutSamples.first {
            printError(
                "note: \(summary.leftOut) packet\(summary.leftOut == 1 ? " was" : "s were") left out on every engine because \(first.message) (packet \(first.packet); docs/kernel.md)"
            )
        }
        if summary.skippedRecords > 0 {
            printError(
                "note: \(summary.skippedRecords) record\(summary.skippedRecords == 1 ? "" : "s") could not be presented as Ethernet and were skipped; the first: \(summary.skippedSamples[0])"
            )
        }
        if replay.backends.count > 1 && summary.divergence == nil && summary.captureError == nil {
            print("\(engines): no difference")
        }
        if summary.limitReached { print("stopped at --limit") }
    }

    /// Rows of cells padded to their column's width; columns in `rightAligned` are
    /// right-aligned (numbers), the rest left-aligned. Two spaces between columns.
    static func table(_ rows: [[String]], rightAligned: Set<Int>) -> String {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                if rightAligned.contains(column) { return padding + cell }
                return column == row.count - 1 ? cell : cell + padding
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// 1234567 → "1,234,567".
    static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var result = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
            result.append(digit)
        }
        return (value < 0 ? "-" : "") + result
    }
}

/// One line of `bpfsim replay --json` (docs/json.md): a packet, the summary, or an error.
struct ReplayLine: Encodable {
    var version = 1
    /// `packet`, `summary` or `error`.
    var type: String

    // A packet.
    var packet: Int?
    var timestamp: UInt64?
    var cpu: UInt32?
    var lenIn: Int?
    var wireLen: Int?
    var lenOut: Int?
    var verdict: String?
    var retval: UInt64?
    var redirect: RedirectTarget?
    var printk: [String]?
    var fault: Fault?
    var refusal: String?
    var sent: Int?
    /// Why the packet ran on no engine (the kernel, compared, cannot test-run it).
    var leftOutReason: String?

    // The summary.
    var capture: String?
    var program: String?
    var engines: [String]?
    var cpus: Int?
    var packets: Int?
    var bytes: Int?
    var verdicts: [String: Int]?
    var redirects: [String: Int]?
    var faults: Int?
    var refusals: Int?
    var errors: Int?
    var leftOut: Int?
    var transmitted: Int?
    var out: String?
    var perCPU: [Int]?
    var skippedRecords: Int?
    var elapsedNanoseconds: UInt64?
    var packetsPerSecond: Double?
    var limitReached: Bool?
    var maps: [String: MapDump]?
    var notes: [String]?

    // Either.
    var divergence: Divergence?
    var error: ErrorReport?

    enum CodingKeys: String, CodingKey {
        case version, type, packet, timestamp, cpu, lenIn = "len_in", wireLen = "wire_len", lenOut = "len_out", verdict,
            retval, redirect, printk, fault, refusal, sent, leftOutReason = "left_out_reason"
        case capture, program, engines, cpus, packets, bytes, verdicts, redirects, faults, refusals, errors,
            leftOut = "left_out", transmitted, out, perCPU = "per_cpu", skippedRecords = "skipped_records",
            elapsedNanoseconds = "elapsed_ns", packetsPerSecond = "packets_per_second",
            limitReached = "limit_reached", maps, notes
        case divergence, error
    }

    struct Fault: Encodable {
        var code: String
        var message: String
        var pc: Int
        var instruction: String?
        /// `file.c:LINE`, when the object has line info.
        var source: String?
    }

    struct Divergence: Encodable {
        var packet: Int
        var field: String
        var engines: [String]
        var values: [String]
        var note: String?

        init(_ divergence: RunComparison.Divergence) {
            packet = divergence.input
            field = divergence.field
            engines = [divergence.first.name, divergence.second.name]
            values = [divergence.firstValue, divergence.secondValue]
            note = divergence.note
        }
    }

    struct ErrorReport: Encodable {
        var code: String
        var message: String
        /// The capture record the error is in, counted from 1.
        var record: Int?
    }

    init(type: String, error: ErrorReport) {
        self.type = type
        self.error = error
    }

    init(packet result: ReplayResult) {
        type = "packet"
        packet = result.number
        timestamp = result.timestamp
        cpu = result.cpu
        lenIn = result.lengthIn
        wireLen = result.wireLength
        divergence = result.divergence.map(Divergence.init)
        if let reason = result.leftOut {
            leftOutReason = reason
            return
        }
        guard let run = result.run else {
            error = .init(code: "not_run", message: result.error ?? "the run failed")
            return
        }
        if let refusal = run.refusal {
            self.refusal = "\(refusal)"
            return
        }
        if !run.printk.isEmpty { printk = run.printk }
        if let fault = run.execution.fault {
            self.fault = Fault(
                code: fault.code, message: fault.message, pc: fault.pc, instruction: fault.instruction,
                source: fault.sourceLine)
            return
        }
        lenOut = result.packetOut?.count
        verdict = result.verdict?.description
        retval = run.execution.returnValue
        redirect = result.redirect
        let frames = result.transmitted.count
        if frames > 0 { sent = frames }
    }

    init(
        summary: ReplaySummary, replay: PacketReplay, capture: String, out: String?, notes: [String],
        maps: [String: MapDump]
    ) {
        type = "summary"
        self.capture = capture
        program = replay.programName
        engines = replay.backends.map(\.name)
        cpus = replay.options.cpus
        packets = summary.packets
        bytes = summary.bytes
        verdicts = summary.verdicts
        redirects = summary.redirects
        faults = summary.faults
        refusals = summary.refusals
        errors = summary.errors
        leftOut = summary.leftOut
        transmitted = summary.transmitted
        self.out = out
        perCPU = summary.packetsPerCPU
        skippedRecords = summary.skippedRecords
        elapsedNanoseconds = summary.elapsedNanoseconds
        packetsPerSecond = summary.packetsPerSecond
        limitReached = summary.limitReached
        self.maps = maps
        self.notes = notes.isEmpty ? nil : notes
        divergence = summary.divergence.map(Divergence.init)
        if let captureError = summary.captureError {
            error = .init(code: captureError.code, message: captureError.description, record: captureError.record)
        }
    }
}
