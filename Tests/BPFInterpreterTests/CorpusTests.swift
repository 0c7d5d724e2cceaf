import BPFSim
import BPFTestSupport
import Foundation
import Testing

/// One case of a corpus program: packets run in order through one session, with the
/// kernel's answer for each.
struct KernelCase: Sendable, CustomTestStringConvertible {
    var program: String
    var index: Int
    var name: String
    var testDescription: String { "\(program)/\(name)" }

    /// Every case of every program in corpus/programs, from the expected files.
    static let all: [KernelCase] = ProgramCorpus.names.flatMap { program -> [KernelCase] in
        guard let expectation = try? ProgramCorpus.expectation(program) else {
            return [KernelCase(program: program, index: -1, name: "unreadable expected file")]
        }
        return expectation.cases.enumerated().map { KernelCase(program: program, index: $0, name: $1.name) }
    }
}

/// The programs of corpus/programs (real BPF C, compiled with clang) against the Linux
/// kernel. Oracle: the kernel itself, through `corpus/programs/generate.py`: the object
/// loaded by libbpf (bpftool), each case's packets run in order with BPF_PROG_TEST_RUN
/// on CPU 0, every map dumped through bpf(2) before the first packet and after each one.
/// The answers are committed in `corpus/programs/expected/*.json` (with the kernel
/// version and date), so these tests need no kernel and no privileges.
///
/// For each packet bpfsim must give the kernel's retval, data_out (metadata and packet)
/// and the same contents in every map the kernel could list, compared as sets of entries
/// (hash maps iterate in another order). Per-CPU maps are compared on both CPUs: the
/// kernel's dump has one value per possible CPU (2 on the machine that recorded them)
/// and its runs were pinned to CPU 0; bpfsim runs on CPU 0 of a 2-CPU world.
struct CorpusTests {
    /// Where bpfsim is known to differ from the kernel: the case ("program/case"), the
    /// engines (nil: every engine) and why. The test still compares everything and
    /// expects these cases to fail; when bpfsim is fixed the known issue is no longer
    /// recorded, the test fails, and the entry must go.
    struct KnownDisagreement {
        var testCase: String
        var engines: Set<Engine>?
        var reason: String
    }

    static let knownDisagreements: [KnownDisagreement] = []

    static func knownDisagreement(_ kernelCase: KernelCase, _ engine: Engine) -> KnownDisagreement? {
        knownDisagreements.first {
            $0.testCase == kernelCase.testDescription && ($0.engines?.contains(engine) ?? true)
        }
    }

    static func configuration(_ engine: Engine) -> RunConfiguration {
        // BPF_PROG_TEST_RUN has no perf events open, so the kernel's perf output finds no reader.
        var world = World(cpuCount: 2)
        world.perfEventReaders = false
        return RunConfiguration(engine: engine, world: world)
    }

    /// A fresh session for a program's object, and the index of the case's function.
    static func session(_ program: String, function: String, engine: Engine) throws -> (Session, Int) {
        let object = try BPFObject(path: try ProgramCorpus.object(program))
        let session = try Session(object: object, configuration: configuration(engine))
        return (session, try session.programIndex(named: function))
    }

    @Test(arguments: KernelCase.all, Engine.allCases)
    func matchesTheKernel(_ kernelCase: KernelCase, engine: Engine) throws {
        let expectation = try ProgramCorpus.expectation(kernelCase.program)
        let expected = try #require(
            expectation.cases.indices.contains(kernelCase.index) ? expectation.cases[kernelCase.index] : nil)
        let compare = {
            let (session, index) = try Self.session(kernelCase.program, function: expected.function, engine: engine)
            for difference in try Self.differences(expected, session: session, index: index) {
                Issue.record("\(kernelCase.testDescription) \(difference)")
            }
        }
        if let known = Self.knownDisagreement(kernelCase, engine) {
            withKnownIssue(Comment(rawValue: known.reason)) { try compare() }
        } else {
            try compare()
        }
    }

    /// Runs a case's packets and describes each difference from the kernel in a sentence.
    static func differences(_ expected: KernelExpectation.Case, session: Session, index: Int) throws -> [String] {
        var differences = compareMaps(expected.mapsBefore, session.machine, when: "before the first packet")
        for (number, packet) in expected.packets.enumerated() {
            let when = "after packet \(number) '\(packet.name)'"
            let run = session.run(index, input: .packet(try #require(Hex.bytes(packet.dataIn))))
            if let fault = run.execution.fault {
                differences.append("\(when): bpfsim faulted: \(fault)")
                break
            }
            let retval = UInt32(truncatingIfNeeded: run.execution.returnValue)
            if retval != packet.retval {
                differences.append("\(when): retval: kernel \(packet.retval), bpfsim \(retval)")
            }
            let dataOut = Hex.string(run.dataOut ?? [])
            if dataOut != packet.dataOut {
                differences.append("\(when): data_out: kernel \(packet.dataOut), bpfsim \(dataOut)")
            }
            differences += compareMaps(packet.maps, session.machine, when: when)
        }
        return differences
    }

    static func compareMaps(_ expected: [String: KernelExpectation.Map], _ machine: Machine, when: String) -> [String] {
        var differences: [String] = []
        for (name, map) in expected.sorted(by: { $0.key < $1.key }) {
            guard let actual = machine.map(named: name) else {
                differences.append("\(when): bpfsim has no map '\(name)'")
                continue
            }
            let keysOnly = map.compare == "keys"
            let kernel = Set(map.entries.map { keysOnly ? $0.key : text($0.key, $0.value, $0.values) })
            let bpfsim = Set(
                MapDump(actual).entries.map { entry -> String in
                    if keysOnly { return entry.key }
                    switch entry.value {
                    case .single(let value): return text(entry.key, value, nil)
                    case .perCPU(let values): return text(entry.key, nil, values)
                    }
                })
            if kernel != bpfsim {
                differences.append(
                    "\(when): map '\(name)' (\(map.type)): only in the kernel: \(kernel.subtracting(bpfsim).sorted()); "
                        + "only in bpfsim: \(bpfsim.subtracting(kernel).sorted())")
            }
        }
        return differences
    }

    /// An entry as text, `key=value` or `key=[cpu0,cpu1]`, so entries compare as sets.
    static func text(_ key: String, _ value: String?, _ values: [String]?) -> String {
        if let values { return "\(key)=[\(values.joined(separator: ","))]" }
        return "\(key)=\(value ?? "")"
    }

    /// The text bpfsim captures from trace_printk.bpf.c. Oracle: the C format semantics
    /// (the kernel's text only reaches its trace pipe, which the generator does not
    /// read): each line is what `cat trace_pipe` shows after "bpf_trace_printk: ", without
    /// the newline, for the packets of the recorded case (10.0.0.1 -> 10.0.0.2, 54 bytes,
    /// TCP, TTL 64; then 192.168.100.200 -> 8.8.8.8, 160 bytes, UDP, TTL 255). The
    /// kernel's return values (the lengths, checked by matchesTheKernel) agree with every
    /// line here.
    @Test(arguments: Engine.allCases)
    func tracePrintkText(engine: Engine) throws {
        let expected = try #require(ProgramCorpus.expectation("trace_printk").cases.first)
        let (session, index) = try Self.session("trace_printk", function: expected.function, engine: engine)
        let lines: [[String]] = [
            [
                "len=54 proto=0x6 ttl=64",  // %u %x %d
                "from 10.0.0.1 to 10.0.0.2",  // %pI4 reads 4 bytes through the pointer
                "[  -46] [-46  ] [00054] [+54] [-46]",  // delta = 54 - 100
                "ok bpfsim -1 deadbeefcafe 36 %",  // %c%c %s %lld %llx %X %%
                "owner=",  // %s of NULL prints nothing
            ],
            [
                "len=160 proto=0x11 ttl=255",
                "from 192.168.100.200 to 8.8.8.8",
                "[   60] [60   ] [00160] [+160] [ 60]",
                "ok bpfsim -1 deadbeefcafe A0 %",
                "owner=",
            ],
        ]
        #expect(expected.packets.count == lines.count)
        for (packet, expectedLines) in zip(expected.packets, lines) {
            let run = session.run(index, input: .packet(try #require(Hex.bytes(packet.dataIn))))
            #expect(run.execution.fault == nil)
            // The invalid "%q" prints nothing.
            #expect(run.printk == expectedLines, "\(packet.name)")
        }
    }

    /// The records ringbuf_events.bpf.c sends. Oracle: the kernel's counters (records
    /// submitted and output, per packet, from the expected file) give how many records
    /// each packet produced; what a record holds follows from the C source
    /// (`struct connection_event`: the packet's IPv4 addresses, ports and length).
    @Test(arguments: Engine.allCases)
    func ringBufferRecords(engine: Engine) throws {
        let expected = try #require(ProgramCorpus.expectation("ringbuf_events").cases.first)
        let (session, index) = try Self.session("ringbuf_events", function: expected.function, engine: engine)
        func counter(_ maps: [String: KernelExpectation.Map], _ slot: UInt8) -> UInt64 {
            let entry = maps["counters"]?.entries.first { $0.key == Hex.string([slot, 0, 0, 0]) }
            let bytes = Hex.bytes(entry?.value ?? "") ?? []
            return bytes.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * $1.offset) }
        }
        // SUBMITTED (1) and OUTPUT_OK (3) reach user space.
        var sent = counter(expected.mapsBefore, 1) + counter(expected.mapsBefore, 3)
        for packet in expected.packets {
            let bytes = try #require(Hex.bytes(packet.dataIn))
            let run = session.run(index, input: .packet(bytes))
            let now = counter(packet.maps, 1) + counter(packet.maps, 3)
            let records = run.events.filter { $0.map == "events" && $0.kind == .ringBuffer }
            #expect(UInt64(records.count) == now - sent, "\(packet.name)")
            sent = now
            for record in records {
                #expect(record.data.count == 16, "\(packet.name)")
                #expect(Array(record.data.prefix(8)) == Array(bytes[26..<34]), "\(packet.name): addresses")
                let length = UInt32(record.data[12]) | UInt32(record.data[13]) << 8
                #expect(Int(length) == bytes.count, "\(packet.name): length")
            }
        }
    }

    /// Every program has the kernel's answers, and every answer file names a program.
    @Test func everyProgramHasKernelAnswers() throws {
        #expect(ProgramCorpus.names.count > 0)
        for name in ProgramCorpus.names {
            let expectation = try ProgramCorpus.expectation(name)
            #expect(expectation.program == name)
            #expect(expectation.source == name + ".bpf.c")
            #expect(!expectation.cases.isEmpty, "\(name): no cases")
            for key in ["kernel", "tool", "date"] {
                #expect(expectation.provenance[key] != nil, "\(name): no \(key) in provenance")
            }
        }
        let files = try FileManager.default.contentsOfDirectory(
            atPath: ProgramCorpus.directory.appendingPathComponent("expected").path)
        for file in files where file.hasSuffix(".json") {
            #expect(ProgramCorpus.names.contains(String(file.dropLast(".json".count))), "\(file) has no program")
        }
        for known in Self.knownDisagreements {
            #expect(
                KernelCase.all.contains { $0.testDescription == known.testCase },
                "known disagreement \(known.testCase) names no case")
        }
    }
}
