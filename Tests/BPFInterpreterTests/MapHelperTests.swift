import BPFSim
import BPFTestSupport
import Foundation
import Testing

/// Maps and helpers against the Linux kernel: every `Tests/maps/*.case` file (written by
/// `Tests/maps/generate.py` from BPF_PROG_TEST_RUN on Linux 6.18; the format is described
/// at the top of the generator) is replayed run by run on each engine, and the return
/// value, the packet after the run, every map's contents and the ring buffer records
/// must be the kernel's. Map state carries over from one run to the next, as it did in
/// the kernel.
struct MapHelperTests {
    static let directory = TestInputs.repository.appendingPathComponent("Tests/maps")

    static var caseNames: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".case") }.sorted()
    }

    @Test("the map and helper cases are present")
    func casesArePresent() {
        #expect(Self.caseNames.count >= 30)
    }

    @Test("a map and helper case behaves as the kernel did", arguments: caseNames, Engine.allCases)
    func kernelCase(_ name: String, _ engine: Engine) throws {
        try replay(name, engine)
    }

    func replay(_ name: String, _ engine: Engine) throws {
        let text = try String(contentsOf: Self.directory.appendingPathComponent(name), encoding: .utf8)
        let mapCase = try MapCase(parsing: text, file: name)
        let definition = ProgramDefinition(
            name: name, type: mapCase.programType,
            instructions: try Assembler.assemble(mapCase.asm, firstLine: mapCase.asmLine))
        let configuration = RunConfiguration(engine: engine, world: World(cpuCount: mapCase.cpus))
        let session = try Session(programs: [definition], maps: mapCase.specs, configuration: configuration)

        for (index, expected) in mapCase.runs.enumerated() {
            let place = "\(name) run \(index) '\(expected.name)'"
            let input: ProgramInput
            var kernelDataOut = expected.dataOut
            if mapCase.programType == .xdp {
                input = .packet(expected.input)
            } else {
                // A socket filter sees the packet from its network header; the kernel returns
                // the packet with the Ethernet header zeroed, so compare from byte 14 on.
                input = .memory(Array(expected.input.dropFirst(MapCase.ethernetHeaderLength)))
                kernelDataOut = String(kernelDataOut.dropFirst(2 * MapCase.ethernetHeaderLength))
            }
            session.machine.world.cpu = UInt32(expected.cpu)
            let run = session.run(0, input: input)
            let dataOut = run.dataOut.map(Hex.string) ?? ""
            #expect(run.execution.fault == nil, "\(place): \(run.execution.fault.map { "\($0)" } ?? "")")
            let retval = UInt32(truncatingIfNeeded: run.execution.returnValue)
            #expect(
                retval == expected.retval, "\(place): retval: kernel 0x\(hex(expected.retval)), bpfsim 0x\(hex(retval))"
            )
            #expect(dataOut == kernelDataOut, "\(place): data_out:\n  kernel \(kernelDataOut)\n  bpfsim \(dataOut)")

            for dump in expected.maps where dump.mode != .none {
                guard let map = session.machine.map(named: dump.name) else {
                    Issue.record("\(place): bpfsim has no map '\(dump.name)'")
                    continue
                }
                var actual = MapDump(map).entries.map(Self.line)
                var kernel = dump.entries
                if dump.mode == .set {
                    actual.sort()
                    kernel.sort()
                }
                if actual != kernel {
                    let missing = kernel.filter { !actual.contains($0) }
                    let extra = actual.filter { !kernel.contains($0) }
                    Issue.record(
                        """
                        \(place): map \(dump.name) (\(dump.mode.rawValue)) differs
                          only the kernel has: \(missing.isEmpty ? "-" : missing.joined(separator: " | "))
                          only bpfsim has:     \(extra.isEmpty ? "-" : extra.joined(separator: " | "))
                        """)
                }
            }

            for ring in mapCase.specs where ring.type == .ringbuf {
                let kernel = expected.events.filter { $0.map == ring.name }.map(\.data)
                let actual = run.events.filter { $0.map == ring.name }.map { Hex.string($0.data) }
                #expect(
                    actual == kernel,
                    "\(place): ring buffer \(ring.name) records:\n  kernel \(kernel)\n  bpfsim \(actual)")
            }
        }
    }

    /// An entry as the case file writes it: the key, then the value (or each CPU's value).
    static func line(_ entry: MapDump.Entry) -> String {
        switch entry.value {
        case .single(let value): "\(entry.key) \(value)"
        case .perCPU(let values): ([entry.key] + values).joined(separator: " ")
        }
    }

    func hex(_ value: UInt32) -> String { String(value, radix: 16) }
}

/// A parsed `.case` file (see Tests/maps/generate.py for the format).
struct MapCase {
    struct Run {
        var name: String
        /// The CPU the run executes on.
        var cpu = 0
        var input: [UInt8] = []
        var retval: UInt32 = 0
        var dataOut = ""
        var maps: [Dump] = []
        var events: [(map: String, data: String)] = []
    }

    struct Dump {
        enum Mode: String { case ordered, set, none }
        var name: String
        var mode: Mode
        /// `KEYHEX VALUEHEX` or `KEYHEX V0 V1 ...`, as in the file.
        var entries: [String] = []
    }

    struct FormatError: Error, CustomStringConvertible {
        var description: String
    }

    static let ethernetHeaderLength = 14

    var programType: ProgramType = .xdp
    var cpus = 1
    var specs: [MapSpec] = []
    var asm = ""
    /// The line of the file where the assembly starts, so assembler errors name it.
    var asmLine = 1
    var runs: [Run] = []

    init(parsing text: String, file: String) throws {
        enum Section { case header, asm, run }
        var section = Section.header
        var asmLines: [Substring] = []
        for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            func fail(_ message: String) -> FormatError { FormatError(description: "\(file):\(number): \(message)") }
            if raw.hasPrefix("-- ") {
                let words = raw.dropFirst(3).split(separator: " ").map(String.init)
                switch words.first {
                case "program":
                    guard words.count == 2 else { throw fail("expected: -- program xdp|socket") }
                    switch words[1] {
                    case "xdp": programType = .xdp
                    case "socket": programType = .socketFilter
                    default: throw fail("unknown program type \(words[1])")
                    }
                    section = .header
                case "cpus":
                    guard words.count == 2, let count = Int(words[1]), count > 0 else {
                        throw fail("expected: -- cpus N")
                    }
                    cpus = count
                    section = .header
                case "map":
                    guard words.count >= 7, let flags = UInt32(words[6].dropFirst(2), radix: 16),
                        let spec = MapSpec(commandLine: words[1...5].joined(separator: ":") + ":\(flags)")
                    else { throw fail("expected: -- map NAME TYPE KEY_SIZE VALUE_SIZE MAX_ENTRIES 0xFLAGS [frozen]") }
                    specs.append(spec)
                    section = .header
                case "init":
                    guard words.count == 4, let index = specs.firstIndex(where: { $0.name == words[1] }),
                        let key = Hex.bytes(words[2])
                    else { throw fail("expected: -- init NAME KEYHEX VALUEHEX[,VALUEHEX...] after its map") }
                    let spec = specs[index]
                    var value: [UInt8] = []
                    for part in words[3].split(separator: ",") {
                        guard var bytes = Hex.bytes(String(part)) else { throw fail("bad value hex") }
                        if spec.type.isPerCPU { bytes += [UInt8](repeating: 0, count: (8 - bytes.count % 8) % 8) }
                        value += bytes
                    }
                    specs[index].initialEntries.append(MapEntry(key: key, value: value))
                    section = .header
                case "asm":
                    section = .asm
                    asmLine = number + 1
                case "run":
                    runs.append(Run(name: words.dropFirst().joined(separator: " ")))
                    section = .run
                default:
                    throw fail("unknown section \(raw)")
                }
                continue
            }
            switch section {
            case .asm:
                asmLines.append(raw)
            case .header:
                guard raw.hasPrefix("#") || raw.allSatisfy(\.isWhitespace) else { throw fail("unexpected line") }
            case .run:
                if raw.isEmpty || raw.hasPrefix("#") { continue }
                let words = raw.split(separator: " ").map(String.init)
                switch words[0] {
                case "cpu":
                    guard words.count == 2, let cpu = Int(words[1]), cpu >= 0, cpu < cpus else {
                        throw fail("expected: cpu N, below the case's CPU count")
                    }
                    runs[runs.count - 1].cpu = cpu
                case "input":
                    guard let bytes = Hex.bytes(words.count > 1 ? words[1] : "") else { throw fail("bad input hex") }
                    runs[runs.count - 1].input = bytes
                case "retval":
                    guard words.count == 2, let value = UInt32(words[1].dropFirst(2), radix: 16) else {
                        throw fail("expected: retval 0xHEX")
                    }
                    runs[runs.count - 1].retval = value
                case "data_out":
                    runs[runs.count - 1].dataOut = words.count > 1 ? words[1] : ""
                case "map":
                    guard words.count == 3, let mode = Dump.Mode(rawValue: words[2]) else {
                        throw fail("expected: map NAME ordered|set|none")
                    }
                    runs[runs.count - 1].maps.append(Dump(name: words[1], mode: mode))
                case "event":
                    guard words.count == 3 else { throw fail("expected: event MAP HEX") }
                    runs[runs.count - 1].events.append((words[1], words[2]))
                default:
                    guard let dump = runs[runs.count - 1].maps.indices.last, Hex.bytes(words[0]) != nil else {
                        throw fail("unexpected line")
                    }
                    runs[runs.count - 1].maps[dump].entries.append(words.joined(separator: " "))
                }
            }
        }
        asm = asmLines.joined(separator: "\n")
        guard !runs.isEmpty else { throw FormatError(description: "\(file): no runs") }
        if programType == .socketFilter, runs.contains(where: { $0.input.count < Self.ethernetHeaderLength }) {
            throw FormatError(description: "\(file): a socket filter's input starts with a 14-byte Ethernet header")
        }
    }
}
