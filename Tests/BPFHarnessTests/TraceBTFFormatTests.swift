import BPFHarness
import BPFSession
import BPFTestSupport
import Foundation
import Testing

/// BTF-formatted values against the kernel's bpftool. TracePrograms/btf_values.bpf.c was
/// loaded on this machine (Linux 6.18, bpftool v7) with
/// `bpftool prog loadall btf_values.o /sys/fs/bpf/x pinmaps /sys/fs/bpf/x_maps`, entries
/// were written with `bpftool map update`, and `bpftool map dump -j` printed
/// TraceInputs/btf-values.bpftool.json and btf-colors.bpftool.json (2 possible CPUs).
/// Each entry's raw key and value bytes, formatted by bpfsim, must give bpftool's
/// "formatted" object.
struct TraceBTFFormatTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    struct BpftoolEntry: Decodable {
        var key: [String]
        var value: [String]?
        var values: [CPUValue]?
        var formatted: BTFValue
        struct CPUValue: Decodable {
            var cpu: Int
            var value: [String]
        }
    }

    static func fixture(_ name: String) throws -> [BpftoolEntry] {
        let data = try Data(contentsOf: directory.appendingPathComponent("TraceInputs/\(name)"))
        return try JSONDecoder().decode([BpftoolEntry].self, from: data)
    }

    static func bytes(_ list: [String]) -> [UInt8] { list.map { UInt8($0.dropFirst(2), radix: 16)! } }

    /// JSON text with sorted keys: bpftool prints members in order, `--json` sorts them.
    static func text(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func object() throws -> BPFObject {
        try BPFObject(path: try BPFCorpus.object(source: directory.appendingPathComponent("TracePrograms/btf_values.bpf.c")))
    }

    @Test func structsUnionsEnumsBitfieldsAndStrings() throws {
        let object = try Self.object()
        let btf = try #require(object.btf)
        let spec = try #require(object.maps.first { $0.name == "values" })
        let entries = try Self.fixture("btf-values.bpftool.json")
        #expect(entries.count == 2)
        for entry in entries {
            let key = try #require(btf.format(Self.bytes(entry.key), as: spec.btfKeyTypeID))
            let value = try #require(btf.format(Self.bytes(entry.value ?? []), as: spec.btfValueTypeID))
            let formatted = BTFValue.object([.init("key", key), .init("value", value)])
            #expect(try Self.text(formatted) == Self.text(entry.formatted))
        }
        // Members keep their declaration order before encoding.
        let first = try #require(btf.format(Self.bytes(entries[0].value ?? []), as: spec.btfValueTypeID))
        guard case .object(let fields) = first else { Issue.record("not an object"); return }
        #expect(fields.map(\.name).prefix(4) == ["big", "negative", "name", "color"])
        #expect(first["color"] == .string("BLUE") && first["mode"] == .string("0x5"))
    }

    /// MapDump carries the same "formatted" object for each entry, per-CPU maps included.
    @Test(arguments: Engine.allCases)
    func mapDumpFormatted(engine: Engine) throws {
        let object = try Self.object()
        let session = try Session(object: object, configuration: RunConfiguration(engine: engine, world: World(cpuCount: 2)))
        let values = try Self.fixture("btf-values.bpftool.json")
        let colors = try Self.fixture("btf-colors.bpftool.json")
        let valuesMap = try #require(session.machine.map(named: "values"))
        for entry in values { try valuesMap.update(key: Self.bytes(entry.key), value: Self.bytes(entry.value ?? [])) }
        let colorsMap = try #require(session.machine.map(named: "colors"))
        for entry in colors {
            // Per-CPU values go in padded to 8 bytes each.
            let joined: [UInt8] = (entry.values ?? []).flatMap { (cpu: BpftoolEntry.CPUValue) -> [UInt8] in Self.bytes(cpu.value) + [0, 0, 0, 0] }
            try colorsMap.update(key: Self.bytes(entry.key), value: joined)
        }
        let dumps = MapDump.all(session.machine, btf: session.btf)
        for (name, fixture) in [("values", values), ("colors", colors)] {
            let dump = try #require(dumps[name])
            let expected = Dictionary(uniqueKeysWithValues: fixture.map { (Hex.string(Self.bytes($0.key)), $0.formatted) })
            #expect(dump.entries.count == fixture.count)
            for entry in dump.entries {
                let formatted = try #require(entry.formatted, "\(name) \(entry.key)")
                #expect(try Self.text(formatted) == Self.text(try #require(expected[entry.key])))
            }
        }
        // Without BTF there is nothing to format.
        #expect(MapDump.all(session.machine)["values"]?.entries.allSatisfy { $0.formatted == nil } == true)
    }
}
