import BPFSession
import Foundation

/// A test spec (`*.spec.yaml`, docs/specs.md): an object, a program, initial map
/// contents and cases with expectations, read with Yams. Values that depend on the
/// object (bare integers as wide as a map's key) are resolved when the spec runs.
public struct TestSpec: Sendable {
    /// The spec file as it was named (errors use this).
    public var file: String
    public var name: String
    /// The object or C source, resolved against the spec's directory.
    public var object: URL
    public var program: String?
    var objectLine: Int?
    var programLine: Int?
    public var verify: VerifyExpectation?
    public var cpus: Int
    var maps: [MapContents]
    public var cases: [Case]

    /// The static verifier's expected verdict.
    public struct VerifyExpectation: Sendable, Hashable {
        public var accept: Bool
        /// A substring of the first error line, for a rejection.
        public var message: String?
        var line: Int?
    }

    /// Elements of one map, written in the spec.
    struct MapContents: Sendable {
        var map: String
        var line: Int?
        var entries: [MapElement]
    }

    struct MapElement: Sendable {
        var key: TypedBytes?
        var value: TypedBytes?
        /// One value per CPU.
        var values: [TypedBytes]?
        /// The per-CPU values' sum (expectations only).
        var sum: TypedBytes?
        var line: Int?
    }

    /// What a map must hold after a case.
    struct MapExpectation: Sendable {
        var map: String
        var exact: Bool
        var entries: [MapElement]
        var line: Int?
    }

    /// One case of a spec.
    public struct Case: Sendable {
        public var name: String
        public var line: Int?
        var kind: Kind
        var expect: CaseExpectation

        enum Kind: Sendable {
            case packets([PacketInput])
            case pcap(Source)
            case events(Source)
            case strace(Source)
        }

        /// Where a capture or trace comes from; `missing` names a `shared:` file that is absent.
        struct Source: Sendable {
            var path: URL?
            var missing: String?
        }

        /// Whether the case runs inputs that only bpfsim's engines can (tracing events).
        var isTracing: Bool {
            switch kind {
            case .events, .strace: true
            default: false
            }
        }
    }

    struct PacketInput: Sendable {
        var bytes: [UInt8]
        var expect: PacketExpectation
        var line: Int?
    }

    /// Expectations about one run.
    struct PacketExpectation: Sendable {
        var verdict: (name: String, line: Int?)?
        var retval: (value: UInt64, line: Int?)?
        var output: (bytes: [UInt8], line: Int?)?
        var redirect: (kind: String, index: UInt32, line: Int?)?
        var printk: [String] = []
        /// true: must fault; false: must not; a string: must fault with this in its message.
        var fault: (expected: Bool, message: String?, line: Int?)?
        var ringbuf: [(record: TypedBytes?, fields: [(String, YAMLValue)]?, type: String?, line: Int?)]?
        var ringbufCount: (count: Int, line: Int?)?

        var isEmpty: Bool {
            verdict == nil && retval == nil && output == nil && redirect == nil && printk.isEmpty && fault == nil
                && ringbuf == nil && ringbufCount == nil
        }
    }

    /// Expectations about a whole case.
    struct CaseExpectation: Sendable {
        var last = PacketExpectation()
        var maps: [MapExpectation] = []
        var verdictCounts: [(name: String, count: Int, line: Int?)]?
        var perPacket: [(index: Int, verdict: String, line: Int?)]?
        var faults: (count: Int, line: Int?)?
    }

    /// A scalar from a decoded-field expectation, kept as text.
    struct YAMLValue: Sendable {
        var text: String
        var line: Int?
    }

    static let topKeys = ["name", "object", "program", "verify", "cpus", "maps", "cases"]
    static let caseKeys = ["name", "packet", "packets", "pcap", "events", "strace", "expect"]
    static let expectKeys = [
        "verdict", "retval", "output", "redirect", "printk", "fault", "faults", "maps", "verdicts", "packet", "ringbuf",
        "ringbuf_count",
    ]
    static let packetExpectKeys = [
        "verdict", "retval", "output", "redirect", "printk", "fault", "ringbuf", "ringbuf_count",
    ]

    /// Reads a spec file.
    public init(path: String) throws(SpecError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SpecError(file: path, line: nil, "cannot read the file")
        }
        try self.init(yaml: String(decoding: data, as: UTF8.self), path: path)
    }

    /// Reads a spec from text; `path` names it in errors and anchors relative paths.
    public init(yaml: String, path: String) throws(SpecError) {
        file = path
        let root = try YAMLNode.parse(yaml, file: path)
        let top = try root.mapping("the spec", known: Self.topKeys)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        var base = URL(fileURLWithPath: path).lastPathComponent
        for suffix in [".spec.yaml", ".spec.yml", ".yaml", ".yml"] where base.hasSuffix(suffix) {
            base = String(base.dropLast(suffix.count))
            break
        }
        name = try top["name"]?.string("name") ?? base
        let objectNode = try top.required("object")
        object = Self.resolve(try objectNode.string("object"), against: directory)
        objectLine = objectNode.line
        program = try top["program"]?.string("program")
        programLine = top["program"]?.line
        cpus = try top["cpus"]?.integer("cpus", as: Int.self) ?? 1
        if cpus < 1 || cpus > 1024 { throw top["cpus"]!.error("cpus must be between 1 and 1024") }
        if let node = top["verify"] { verify = try Self.verifyExpectation(node) }
        maps = []
        if let node = top["maps"] {
            for (mapName, entries, line) in try node.pairs("maps", known: []) {
                var elements: [MapElement] = []
                for item in try entries.sequence("maps: \(mapName)") {
                    elements.append(try Self.element(item, place: "an element of \(mapName)", expectation: false))
                }
                maps.append(MapContents(map: mapName, line: line, entries: elements))
            }
        }
        let caseNodes = try top.required("cases").sequence("cases")
        if caseNodes.isEmpty, let node = top["cases"] { throw node.error("cases: the list is empty") }
        cases = []
        for (number, node) in caseNodes.enumerated() {
            cases.append(try Self.parseCase(node, number: number, directory: directory))
        }
    }

    static func resolve(_ path: String, against directory: URL) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path).standardizedFileURL
    }

    /// `shared:NAME`: $BPFSIM_SHARED_PCAPS/NAME, else `shared/pcaps/NAME` in the spec's
    /// directory or an ancestor's (so ../shared/pcaps beside the repository is found).
    static func sharedCapture(_ name: String, from directory: URL) -> URL? {
        if let root = ProcessInfo.processInfo.environment["BPFSIM_SHARED_PCAPS"], !root.isEmpty {
            let url = URL(fileURLWithPath: root).appendingPathComponent(name)
            return FileManager.default.fileExists(atPath: url.path) ? url : nil
        }
        var folder = directory.standardizedFileURL
        while true {
            let url = folder.appendingPathComponent("shared/pcaps").appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path) { return url }
            let parent = folder.deletingLastPathComponent()
            if parent.path == folder.path { return nil }
            folder = parent
        }
    }

    private static func verifyExpectation(_ node: YAMLNode) throws(SpecError) -> VerifyExpectation {
        func verdict(_ n: YAMLNode) throws(SpecError) -> Bool {
            switch try n.string("verify") {
            case "accept": return true
            case "reject": return false
            case let other: throw n.error("verify: '\(other)' is not accept or reject")
            }
        }
        if node.isScalar { return VerifyExpectation(accept: try verdict(node), message: nil, line: node.line) }
        let f = try node.mapping("verify", known: ["verdict", "message"])
        let accept = try verdict(try f.required("verdict"))
        let message = try f["message"]?.string("verify message")
        if accept && message != nil { throw node.error("verify: a message goes with verdict: reject") }
        return VerifyExpectation(accept: accept, message: message, line: node.line)
    }

    private static func element(_ node: YAMLNode, place: String, expectation: Bool) throws(SpecError) -> MapElement {
        let known = expectation ? ["key", "value", "values", "sum"] : ["key", "value", "values"]
        let f = try node.mapping(place, known: known)
        var element = MapElement(line: node.line)
        element.key = try f["key"].map { (n) throws(SpecError) in try TypedBytes.parse(n, "key") }
        element.value = try f["value"].map { (n) throws(SpecError) in try TypedBytes.parse(n, "value") }
        if let list = f["values"] {
            var values: [TypedBytes] = []
            for item in try list.sequence("values") { values.append(try TypedBytes.parse(item, "values")) }
            element.values = values
        }
        element.sum = try f["sum"].map { (n) throws(SpecError) in try TypedBytes.parse(n, "sum") }
        let given = [element.value != nil, element.values != nil, element.sum != nil].filter { $0 }.count
        if given != 1 {
            throw node.error("\(place) needs one of \(expectation ? "value, values or sum" : "value or values")")
        }
        return element
    }

    private static func parseCase(_ node: YAMLNode, number: Int, directory: URL) throws(SpecError) -> Case {
        let f = try node.mapping("a case", known: caseKeys)
        let name = try f["name"]?.string("case name") ?? "case \(number + 1)"
        let inputs = ["packet", "packets", "pcap", "events", "strace"].filter { f.has($0) }
        guard inputs.count == 1 else {
            throw node.error(
                "case '\(name)' needs exactly one of packet, packets, pcap, events, strace"
                    + (inputs.isEmpty ? "" : " (it has \(inputs.joined(separator: ", ")))"))
        }
        var expect = CaseExpectation()
        let expectNode = f["expect"]
        var expectFields: Fields?
        if let expectNode { expectFields = try expectNode.mapping("expect", known: expectKeys) }
        let kind: Case.Kind
        switch inputs[0] {
        case "packet":
            kind = .packets([
                PacketInput(
                    bytes: try SpecPacket.parse(try f.required("packet")), expect: .init(), line: f["packet"]?.line)
            ])
        case "packets":
            var list: [PacketInput] = []
            for item in try f.required("packets").sequence("packets") {
                let p = try item.mapping("an item of packets", known: ["packet", "expect"])
                var input = PacketInput(
                    bytes: try SpecPacket.parse(try p.required("packet")), expect: .init(), line: item.line)
                if let e = p["expect"] {
                    input.expect = try packetExpectation(try e.mapping("expect", known: packetExpectKeys))
                }
                list.append(input)
            }
            if list.isEmpty { throw node.error("case '\(name)': packets is empty") }
            kind = .packets(list)
        default:
            let key = inputs[0]
            let valueNode = try f.required(key)
            let text = try valueNode.string(key)
            var source = Case.Source()
            if key == "pcap", text.hasPrefix("shared:") {
                let shared = String(text.dropFirst("shared:".count))
                source.path = sharedCapture(shared, from: directory)
                if source.path == nil { source.missing = "the shared capture '\(shared)' is absent" }
            } else {
                let url = resolve(text, against: directory)
                guard FileManager.default.fileExists(atPath: url.path) else {
                    throw valueNode.error("\(key): \(url.path) does not exist")
                }
                source.path = url
            }
            kind = key == "pcap" ? .pcap(source) : key == "events" ? .events(source) : .strace(source)
        }
        if let e = expectFields {
            expect.last = try packetExpectation(e)
            if let maps = e["maps"] {
                for (mapName, value, line) in try maps.pairs("expect maps", known: []) {
                    var exact = false
                    var entryNodes: [YAMLNode]
                    if value.isSequence {
                        entryNodes = try value.sequence("expect maps \(mapName)")
                    } else {
                        let m = try value.mapping("expect maps \(mapName)", known: ["match", "entries"])
                        if let match = m["match"] {
                            switch try match.string("match") {
                            case "exact": exact = true
                            case "subset": exact = false
                            case let other: throw match.error("match: '\(other)' is not exact or subset")
                            }
                        }
                        entryNodes = try m.required("entries").sequence("entries")
                    }
                    var elements: [MapElement] = []
                    for item in entryNodes {
                        elements.append(
                            try element(item, place: "an expected element of \(mapName)", expectation: true))
                    }
                    expect.maps.append(MapExpectation(map: mapName, exact: exact, entries: elements, line: line))
                }
            }
            if let counts = e["verdicts"] {
                var list: [(String, Int, Int?)] = []
                for (verdict, value, line) in try counts.pairs("verdicts", known: []) {
                    list.append((verdict, try value.integer("verdicts \(verdict)", as: Int.self), line))
                }
                expect.verdictCounts = list
            }
            if let perPacket = e["packet"] {
                var list: [(Int, String, Int?)] = []
                for (index, value, line) in try perPacket.pairs("expect packet", known: []) {
                    guard let number = Int(index), number >= 0 else {
                        throw SpecError(
                            file: node.file, line: line, "expect packet: '\(index)' is not a packet index (0-based)")
                    }
                    list.append((number, try value.string("expect packet \(index)"), line))
                }
                expect.perPacket = list
            }
            if let faults = e["faults"] { expect.faults = (try faults.integer("faults", as: Int.self), faults.line) }
            if case .packets = kind {
                if expect.verdictCounts != nil || expect.perPacket != nil || expect.faults != nil {
                    throw expectNode!.error("expect: verdicts, packet and faults are for pcap cases")
                }
            } else {
                let e = expect.last
                if e.verdict != nil || e.retval != nil || e.output != nil || e.redirect != nil || e.fault != nil {
                    if case .pcap = kind {
                        throw expectNode!.error("expect: a pcap case checks verdicts, packet, faults, maps and printk")
                    }
                }
            }
        }
        return Case(name: name, line: node.line, kind: kind, expect: expect)
    }

    private static func packetExpectation(_ f: Fields) throws(SpecError) -> PacketExpectation {
        var e = PacketExpectation()
        if let n = f["verdict"] { e.verdict = (try n.string("verdict"), n.line) }
        if let n = f["retval"] { e.retval = (try n.integer("retval"), n.line) }
        if let n = f["output"] {
            let bytes: [UInt8]
            if n.isMapping, let pairs = try? n.pairs("output", known: []),
                pairs.allSatisfy({ SpecPacket.layerKeys.contains($0.key) })
            {
                bytes = try SpecPacket.parse(n)
            } else {
                bytes = try TypedBytes.parse(n, "output").resolve(width: nil, file: n.file, place: "output")
            }
            e.output = (bytes, n.line)
        }
        if let n = f["redirect"] {
            let r = try n.mapping("redirect", known: ["ifindex", "cpu", "socket"])
            guard r.entries.count == 1, let entry = r.entries.first else {
                throw n.error("redirect takes one of ifindex, cpu, socket")
            }
            e.redirect = (entry.key, try entry.value.integer("redirect \(entry.key)", as: UInt32.self), n.line)
        }
        if let n = f["printk"] {
            var lines: [String] = []
            for item in n.items() { lines.append(try item.string("printk")) }
            e.printk = lines
        }
        if let n = f["fault"] {
            if n.isPlainScalar, let flag = try? n.bool("fault") {
                e.fault = (flag, nil, n.line)
            } else {
                e.fault = (true, try n.string("fault"), n.line)
            }
        }
        if let n = f["ringbuf"] {
            var records: [(TypedBytes?, [(String, YAMLValue)]?, String?, Int?)] = []
            for item in try n.sequence("ringbuf") {
                if item.isMapping, try item.pairs("a ringbuf record", known: []).contains(where: { $0.key == "fields" })
                {
                    let m = try item.mapping("a ringbuf record", known: ["fields", "type"])
                    var fields: [(String, YAMLValue)] = []
                    for (key, value, _) in try m.required("fields").pairs("fields", known: []) {
                        fields.append((key, YAMLValue(text: try value.string("field \(key)"), line: value.line)))
                    }
                    records.append((nil, fields, try m["type"]?.string("type"), item.line))
                } else {
                    records.append((try TypedBytes.parse(item, "ringbuf record"), nil, nil, item.line))
                }
            }
            e.ringbuf = records
        }
        if let n = f["ringbuf_count"] { e.ringbufCount = (try n.integer("ringbuf_count", as: Int.self), n.line) }
        return e
    }
}
