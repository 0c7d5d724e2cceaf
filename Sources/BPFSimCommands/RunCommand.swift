import ArgumentParser
import BPFSim
import Foundation

/// `bpfsim run`: run a program once.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a program once.",
        discussion: """
            PROGRAM is a BPF object file, or assembly text (.s), raw 8-byte instructions (.bin) or \
            a conformance test (.data, whose memory is used unless --mem or --mem-hex is given). \
            An object's program has the type its section gives it: XDP, tc (sched_cls, \
            sched_act), socket filter and cgroup_skb programs run on the packet given with --data \
            or --data-hex, as BPF_PROG_TEST_RUN runs them, with --ctx or --ctx-hex as the \
            __sk_buff it takes as ctx_in (mark, priority, cb, ifindex, tstamp, wire_len, ...); \
            tracepoint, raw_tracepoint and kprobe programs run on the context given with --ctx or \
            --ctx-hex (a tracepoint record, raw tracepoint arguments, a struct pt_regs), or on a \
            zeroed context of the size the kernel would give (a syscall tracepoint's record \
            carries the syscall's number); a function in .text runs on flat memory. Flat memory \
            runs as the conformance suite does: r1 = the memory, r2 = its length; with --data an \
            assembly program runs as XDP, or as the type given with --type. Maps given with --map are available to `lddw map_idx N` (N counts \
            --map options from 0). A fault or a program that does not load exits with status 1. \
            --engine kernel runs an object's program in the running kernel (libbpf and \
            BPF_PROG_TEST_RUN; needs root or CAP_BPF), --compare interp,kernel (or --engine all) \
            runs it on each and reports the first difference, exiting with status 1 when there \
            is one (docs/kernel.md). --json output is described in docs/json.md.
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

    @Option(help: "The context: an __sk_buff for packet programs (ctx_in), the whole context for tracing programs.")
    var ctx: String?

    @Option(name: .customLong("ctx-hex"), help: "The context as hex bytes.")
    var ctxHex: String?

    @Option(
        help: ArgumentHelp(
            "The type of an assembly program that runs on --data: xdp, sched_cls, sched_act, socket_filter, cgroup_skb.",
            valueName: "type"))
    var type: String?

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

    @Option(help: ArgumentHelp(EngineSelection.help, valueName: "engine"))
    var engine: String?

    @Option(
        help: ArgumentHelp(
            "Run on each of these engines and report the first difference (comma-separated, e.g. interp,kernel). With --state, the maps are read from DIR but not written back.",
            valueName: "engines"))
    var compare: String?

    @Flag(
        name: .customLong("no-verify"),
        help: "Run even what bpfsim's verifier predicts the kernel would refuse (for experiments).")
    var noVerify = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    mutating func validate() throws {
        do {
            _ = try EngineSelection.parse(engine: engine, compare: compare)
        } catch {
            throw ValidationError(error.description)
        }
        if [mem, memHex, data, dataHex].compactMap({ $0 }).count > 1 {
            throw ValidationError("give one of --mem, --mem-hex, --data, --data-hex")
        }
        if cpus < 1 || cpus > 1024 { throw ValidationError("--cpus must be between 1 and 1024") }
        if `repeat` < 1 { throw ValidationError("--repeat must be at least 1") }
        if ctx != nil && ctxHex != nil { throw ValidationError("give one of --ctx, --ctx-hex") }
        if (ctx != nil || ctxHex != nil) && (mem != nil || memHex != nil) {
            throw ValidationError("--ctx is for packet and tracing programs, not flat memory")
        }
        if let type {
            guard let known = ProgramType.allCases.first(where: { $0.kernelName == type }),
                [.xdp, .schedCls, .schedAct, .socketFilter, .cgroupSkb].contains(known)
            else {
                throw ValidationError("--type takes xdp, sched_cls, sched_act, socket_filter or cgroup_skb")
            }
        }
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
        let selection: EngineSelection
        do {
            selection = try EngineSelection.parse(engine: engine, compare: compare)
        } catch {
            report.error = .init(kind: "load", code: "input", message: error.description)
            return report
        }
        var firstEngine = Engine.interpreter
        if case .engine(let engine) = selection.backends[0] { firstEngine = engine }
        let configuration = RunConfiguration(
            engine: firstEngine, limits: ExecutionLimits(instructionBudget: budget), world: World(cpuCount: cpus),
            validation: ValidationOptions(strictness: kernelStrict ? .kernel : .conformance))
        let session: Session
        let index: Int
        let input: ProgramInput
        var object: BPFObject?
        var definitions: [ProgramDefinition] = []
        var specs: [MapSpec] = []
        do {
            let context: [UInt8]? =
                if let ctx { Array(try readFile(ctx)) } else if let ctxHex { try parseHex(ctxHex) } else { nil }
            let packet: [UInt8]? =
                if let data { Array(try readFile(data)) } else if let dataHex { try parseHex(dataHex) } else { nil }
            let memory: [UInt8]? =
                if let mem { Array(try readFile(mem)) } else if let memHex { try parseHex(memHex) } else { nil }
            if BPFObject.isELF(try readFile(program)) {
                let loaded = try BPFObject(path: program)
                object = loaded
                guard maps.isEmpty else {
                    throw CommandFailure("--map is for assembly programs; an object brings its own maps")
                }
                guard type == nil else {
                    throw CommandFailure("--type is for assembly programs; an object's sections give types")
                }
                session = try Session(object: loaded, configuration: configuration)
                index = try Self.choose(programName, in: session)
                if !noVerify { try session.verify(index) }
                input = try Self.input(
                    for: session, index: index, packet: packet, context: context, memory: memory,
                    memoryGiven: mem != nil || memHex != nil)
            } else {
                if selection.backends.contains(.kernel) {
                    throw CommandFailure(
                        "the kernel engine runs BPF object files (clang -target bpf -c); \(program) is not one")
                }
                let file = try ProgramFile(path: program)
                let packetType = type.flatMap { name in ProgramType.allCases.first { $0.kernelName == name } } ?? .xdp
                if let packet {
                    input = .frame(Packet(packet, context: context))
                } else if context != nil {
                    throw CommandFailure("--ctx needs a packet (--data or --data-hex) for an assembly program")
                } else {
                    input = .memory(memory ?? file.memory)
                }
                let definition = ProgramDefinition(
                    name: URL(fileURLWithPath: program).lastPathComponent, type: packet != nil ? packetType : .unspec,
                    instructions: file.instructions)
                definitions = [definition]
                specs = maps.compactMap(MapSpec.init(commandLine:))
                session = try Session(programs: definitions, maps: specs, configuration: configuration)
                index = 0
                if !noVerify { try session.verify(index) }
            }
        } catch let error as ProgramError {
            report.error = .init(loadError: error, path: program)
            return report
        } catch let error as SessionError {
            if let programError = error.programError {
                report.error = .init(loadError: programError, path: program)
            } else if let refusal = error.verification?.error {
                report.error = .init(
                    kind: "verify", code: "verifier", message: "\(program): \(error.message)", pc: refusal.index,
                    source: error.sourceLine)
                report.error?.verifier = refusal.code
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
        // The kernel, and comparisons, go through RunComparison; one bpfsim engine runs here.
        if selection.comparing || selection.backends.contains(.kernel) {
            let source: RunComparison.Source =
                object.map { .object($0, program: session.definitions[index].name) }
                ?? .programs(definitions, maps: specs, index: index)
            return otherEngineReport(source: source, input: input, selection: selection, configuration: configuration)
        }
        if let state {
            do {
                try MapState.load(session.machine, from: URL(fileURLWithPath: state))
            } catch {
                report.error = .init(kind: "load", code: "state", message: error.description)
                return report
            }
        }
        var result = session.run(index, input: input)
        if `repeat` > 1 {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 1..<`repeat` { result = session.run(index, input: input) }
            let elapsed = DispatchTime.now().uptimeNanoseconds - start
            report.nanosecondsPerRun = Double(elapsed) / Double(`repeat` - 1)
        }
        if let fallback = result.fallback { report.notes = [fallback] }
        if let state {
            do {
                try MapState.save(session.machine, to: URL(fileURLWithPath: state))
            } catch {
                report.error = .init(kind: "load", code: "state", message: error.description)
            }
        }
        if let refusal = result.refusal {
            report.error = .init(
                kind: "input", code: "refused", message: "\(program): the kernel would refuse this input: \(refusal)")
            return report
        }
        report.fill(from: result, input: input, maps: MapDump.all(session.machine, btf: session.btf))
        return report
    }
}

extension Run {
    /// A run on the kernel alone, or a comparison of several backends (whose report is the
    /// first backend's results, with the divergence when there is one).
    func otherEngineReport(
        source: RunComparison.Source, input: ProgramInput, selection: EngineSelection, configuration: RunConfiguration
    ) -> RunReport {
        var report = RunReport()
        let stateLoader: ((Machine) throws -> Void)? = state.map { directory in
            { machine in try MapState.load(machine, from: URL(fileURLWithPath: directory)) }
        }
        let outcome: RunComparison.Outcome
        do {
            outcome = try RunComparison.run(
                source, inputs: [input], backends: selection.backends, configuration: configuration,
                state: stateLoader)
        } catch {
            report.error = .init(kind: "load", code: error.code, message: "\(self.program): \(error.message)")
            return report
        }
        let first = outcome.results[0][0]
        report.engine = first.backend.name
        if selection.comparing {
            report.compared = selection.backends.map(\.name)
            report.divergence = outcome.divergence.map(RunReport.DivergenceReport.init)
        } else if state != nil {
            report.notes = ["the kernel's maps are not written back to --state"]
        }
        guard let result = first.run else {
            report.error = .init(kind: "run", code: "kernel_run", message: first.error ?? "the run failed")
            return report
        }
        report.fill(from: result, input: input, maps: first.maps)
        return report
    }

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

extension Run {
    /// The input for an object's program: a packet for packet types, a context (given or
    /// a zeroed default) for tracing types, flat memory for plain functions.
    static func input(
        for session: Session, index: Int, packet: [UInt8]?, context: [UInt8]?, memory: [UInt8]?, memoryGiven: Bool
    ) throws -> ProgramInput {
        let definition = session.definitions[index]
        let name = definition.name
        let type = definition.type
        switch type {
        case .xdp, .schedCls, .schedAct, .socketFilter, .cgroupSkb:
            guard let packet, !memoryGiven else {
                throw CommandFailure(
                    "'\(name)' is a \(type.kernelName) program: give a packet with --data or --data-hex")
            }
            if type == .xdp && context != nil {
                throw CommandFailure("--ctx for XDP programs (an xdp_md) is not supported; give the packet alone")
            }
            return .frame(Packet(packet, context: context))
        case .tracepoint, .rawTracepoint, .rawTracepointWritable, .kprobe:
            guard packet == nil, !memoryGiven else {
                throw CommandFailure(
                    "'\(name)' is a \(type.kernelName) program: it runs on a context (--ctx or --ctx-hex), not a packet or memory"
                )
            }
            if let context { return .context(context) }
            guard let input = session.defaultInput(for: index) else {
                throw CommandFailure(
                    "'\(name)' is attached to tracepoint '\(definition.attachTarget ?? "")', whose record layout bpfsim does not know: give the record with --ctx or --ctx-hex (its layout is in /sys/kernel/tracing/events/\(definition.attachTarget ?? "...")/format)"
                )
            }
            return input
        case .unspec:
            guard packet == nil, context == nil else {
                throw CommandFailure("'\(name)' is a plain function: give memory with --mem or --mem-hex")
            }
            return .memory(memory)
        default:
            throw CommandFailure(
                "'\(name)' is a \(type.kernelName) program; bpfsim runs XDP, tc, socket filter, cgroup_skb, tracepoint, raw_tracepoint and kprobe programs and plain functions"
            )
        }
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
    /// The packet after the run, as BPF_PROG_TEST_RUN returns it, as hex.
    var dataOut: String?
    /// The __sk_buff BPF_PROG_TEST_RUN returns, when one was passed in.
    var ctxOut: String?
    /// What the return value means for the program's type (`XDP_PASS`, `TC_ACT_SHOT`, ...).
    var verdict: String?
    var clones: [Clone]?
    var printk: [String]?
    var maps: [String: MapDump]?
    var events: [Event]?
    var redirect: RedirectTarget?
    var error: ErrorReport?
    /// With `--repeat N`: mean wall-clock time of runs 2...N.
    var nanosecondsPerRun: Double?
    /// The backend whose results these are, when it is not the interpreter.
    var engine: String?
    /// With --compare or --engine all: the backends compared, in order.
    var compared: [String]?
    /// The first difference between them; absent when they agree.
    var divergence: DivergenceReport?
    /// What the report leaves out, and why.
    var notes: [String]?

    enum CodingKeys: String, CodingKey {
        case version, retval, insns, memory, dataOut = "data_out", ctxOut = "ctx_out", verdict, clones, printk, maps,
            events, redirect, error, engine
        case compared, divergence, notes, nanosecondsPerRun = "ns_per_run"
    }

    struct DivergenceReport: Encodable {
        var input: Int
        var field: String
        var engines: [String]
        var values: [String]
        var note: String?

        init(_ divergence: RunComparison.Divergence) {
            input = divergence.input
            field = divergence.field
            engines = [divergence.first.name, divergence.second.name]
            values = [divergence.firstValue, divergence.secondValue]
            note = divergence.note
        }
    }

    struct Clone: Encodable {
        var ifindex: UInt32
        var flags: UInt64
        var data: String
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
        /// `load` (the program could not be read or validated), `input` (the kernel would
        /// refuse the input) or `fault` (it stopped while running).
        var kind: String
        var code: String
        var message: String
        /// The instruction index, when known.
        var pc: Int?
        var instruction: String?
        var line: Int?
        /// `file.c:LINE` of the faulting instruction, when the object has line info.
        var source: String?
        /// For `kind: verify`, the verifier's class of error (`packet_bounds`, ...).
        var verifier: String?
    }

    /// Fills in what a run produced (both the single-engine and the comparison paths).
    mutating func fill(from result: ProgramRun, input: ProgramInput, maps: [String: MapDump]) {
        insns = result.execution.instructionCount
        if case .memory(let bytes) = input {
            if bytes != nil { memory = result.dataOut.map(Hex.string) }
        } else {
            dataOut = result.dataOut.map(Hex.string)
        }
        ctxOut = result.contextOut.map(Hex.string)
        if !result.clones.isEmpty {
            clones = result.clones.map {
                RunReport.Clone(ifindex: $0.target.index, flags: $0.target.flags, data: Hex.string($0.packet))
            }
        }
        if !result.printk.isEmpty { printk = result.printk }
        if !maps.isEmpty { self.maps = maps }
        if !result.events.isEmpty { events = result.events.map(RunReport.Event.init) }
        redirect = result.redirect
        if let fault = result.execution.fault {
            error = .init(
                kind: "fault", code: fault.code, message: fault.message, pc: fault.pc, instruction: fault.instruction,
                source: fault.sourceLine)
        } else {
            retval = result.execution.returnValue
            verdict = result.verdict?.description
        }
    }

    func printText() {
        for note in notes ?? [] { printError("note: \(note)") }
        if let compared, error == nil {
            if let divergence {
                printError(
                    "engines differ: \(divergence.field): \(divergence.engines[0]) \(divergence.values[0]), "
                        + "\(divergence.engines[1]) \(divergence.values[1])"
                        + (divergence.note.map { " (\($0))" } ?? ""))
            } else {
                print("\(compared.joined(separator: ", ")): no difference")
            }
        }
        if let engine, compared != nil { print("results of \(engine):") }
        for line in printk ?? [] { print("printk: \(line)") }
        if let error {
            var text = "error: "
            if error.kind != "fault" {
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
        if let verdict { print("verdict: \(verdict)") }
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
        if let ctxOut { print("ctx_out: \(ctxOut)") }
        for clone in clones ?? [] { print("clone to ifindex \(clone.ifindex): \(clone.data)") }
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
