import Foundation

/// Map state on disk: `--state DIR` plays the role of pinning maps in the BPF filesystem.
/// Each map is one file, `DIR/NAME.json`; a map whose file exists when a session starts
/// takes its contents from there (if its definition matches), and every map is written
/// back after the run, so a sequence of runs shares state.
///
/// The file holds the map's definition and its entries in the layout of
/// `bpftool map dump -j`: keys and values as arrays of `"0xNN"` strings, per-CPU values
/// as `"values": [{"cpu": N, "value": [...]}]`.
public enum MapState {
    public struct File: Codable, Sendable {
        public var name: String
        public var type: String
        public var keySize: Int
        public var valueSize: Int
        public var maxEntries: Int
        public var flags: UInt32
        public var cpus: Int?
        public var entries: [BpftoolEntry]

        enum CodingKeys: String, CodingKey {
            case name, type, keySize = "key_size", valueSize = "value_size", maxEntries = "max_entries", flags, cpus
            case entries
        }
    }

    /// One element as `bpftool map dump -j` prints it without BTF.
    public struct BpftoolEntry: Codable, Sendable, Hashable {
        public var key: [String]
        public var value: [String]?
        public var values: [PerCPUValue]?

        public struct PerCPUValue: Codable, Sendable, Hashable {
            public var cpu: Int
            public var value: [String]
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    static func byteStrings(_ bytes: [UInt8]) -> [String] {
        bytes.map { "0x" + ($0 < 16 ? "0" : "") + String($0, radix: 16) }
    }

    static func bytes(_ strings: [String], file: String) throws(Failure) -> [UInt8] {
        var result: [UInt8] = []
        for text in strings {
            let digits = text.hasPrefix("0x") ? String(text.dropFirst(2)) : text
            guard let byte = UInt8(digits, radix: 16) else {
                throw Failure(description: "\(file): '\(text)' is not a byte")
            }
            result.append(byte)
        }
        return result
    }

    /// The bpftool-style entries of a map.
    public static func entries(of map: BPFMap) -> [BpftoolEntry] {
        map.entries().map { entry in
            if map.type.isPerCPU {
                let values = (0..<map.cpuCount).map { cpu -> BpftoolEntry.PerCPUValue in
                    let start = cpu * map.valueStride
                    return .init(cpu: cpu, value: byteStrings(Array(entry.value[start..<start + map.valueSize])))
                }
                return BpftoolEntry(key: byteStrings(entry.key), value: nil, values: values)
            }
            return BpftoolEntry(key: byteStrings(entry.key), value: byteStrings(entry.value), values: nil)
        }
    }

    /// Loads the maps that have a file in `directory` into `machine`.
    public static func load(_ machine: Machine, from directory: URL) throws(Failure) {
        for map in machine.maps {
            let url = directory.appendingPathComponent(fileName(map.name))
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            let file: File
            do {
                file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
            } catch {
                throw Failure(description: "\(url.path): not a bpfsim map state file (\(error.localizedDescription))")
            }
            guard file.type == map.type.kernelName, file.keySize == map.keySize, file.valueSize == map.valueSize,
                file.maxEntries == map.maxEntries
            else {
                throw Failure(
                    description:
                        "\(url.path): map '\(map.name)' is \(map.type.kernelName) \(map.keySize)/\(map.valueSize)/\(map.maxEntries) here, but \(file.type) \(file.keySize)/\(file.valueSize)/\(file.maxEntries) in the state directory"
                )
            }
            if map.type.isPerCPU, let cpus = file.cpus, cpus != map.cpuCount {
                throw Failure(
                    description: "\(url.path): saved with \(cpus) CPUs, this run has \(map.cpuCount) (--cpus)")
            }
            for entry in file.entries {
                let key = try bytes(entry.key, file: url.path)
                var value: [UInt8] = []
                if let values = entry.values {
                    for cpu in values.sorted(by: { $0.cpu < $1.cpu }) {
                        let bytes = try bytes(cpu.value, file: url.path)
                        value += bytes + [UInt8](repeating: 0, count: map.valueStride - bytes.count)
                    }
                } else {
                    value = try bytes(entry.value ?? [], file: url.path)
                }
                do {
                    if map.type == .queue || map.type == .stack {
                        try map.update(key: [], value: value, flags: UpdateFlags.any)
                    } else {
                        try map.update(key: key, value: value, flags: UpdateFlags.any)
                    }
                } catch {
                    throw Failure(description: "\(url.path): cannot restore an entry of '\(map.name)': \(error)")
                }
            }
        }
    }

    /// Writes every map of `machine` to `directory` (created if needed).
    public static func save(_ machine: Machine, to directory: URL) throws(Failure) {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            for map in machine.maps where map.type != .ringbuf && map.type != .perfEventArray {
                let file = File(
                    name: map.name, type: map.type.kernelName, keySize: map.keySize, valueSize: map.valueSize,
                    maxEntries: map.maxEntries, flags: map.spec.flags, cpus: map.type.isPerCPU ? map.cpuCount : nil,
                    entries: entries(of: map))
                try encoder.encode(file).write(
                    to: directory.appendingPathComponent(fileName(map.name)), options: .atomic)
            }
        } catch let error as Failure {
            throw error
        } catch {
            throw Failure(description: "\(directory.path): cannot save map state (\(error.localizedDescription))")
        }
    }

    /// Map names become file names; `/` (not allowed in a file name) becomes `_`.
    static func fileName(_ name: String) -> String {
        name.replacingOccurrences(of: "/", with: "_") + ".json"
    }
}
