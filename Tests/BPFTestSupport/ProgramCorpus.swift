import Foundation

/// The BPF C programs of `corpus/programs`, each checked against the kernel: the kernel's
/// answers for their cases are in `corpus/programs/expected/NAME.json`, written by
/// `corpus/programs/generate.py`. The programs are compiled here like the rest of the
/// corpus (`clang -O2 -g -target bpf`), once per test process.
public enum ProgramCorpus {
    /// `corpus/programs` in the repository.
    public static let directory = TestInputs.repository.appendingPathComponent("corpus/programs")

    /// The programs (`NAME.bpf.c`), by NAME, sorted.
    public static var names: [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".bpf.c") }.map { String($0.dropLast(".bpf.c".count)) }.sorted()
    }

    /// The object file for `corpus/programs/NAME.bpf.c`, compiled on first use.
    public static func object(_ name: String) throws -> String {
        try BPFCorpus.compile(
            source: directory.appendingPathComponent(name + ".bpf.c").path, defines: [], debugInfo: true)
    }

    /// The kernel's answers for program NAME.
    public static func expectation(_ name: String) throws -> KernelExpectation {
        let url = directory.appendingPathComponent("expected/\(name).json")
        return try JSONDecoder().decode(KernelExpectation.self, from: Data(contentsOf: url))
    }
}

/// `corpus/programs/expected/NAME.json`: what the kernel answered for each case of a
/// program (see generate.py there for how it was produced).
public struct KernelExpectation: Decodable, Sendable {
    public var version: Int
    public var program: String
    public var source: String
    /// Which kernel, tool and date produced the answers.
    public var provenance: [String: ProvenanceValue]
    public var cases: [Case]

    public enum ProvenanceValue: Decodable, Sendable, CustomStringConvertible {
        case text(String)
        case number(Int)
        case none

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int.self) {
                self = .number(number)
            } else if let text = try? container.decode(String.self) {
                self = .text(text)
            } else {
                self = .none
            }
        }

        public var description: String {
            switch self {
            case .text(let text): text
            case .number(let number): String(number)
            case .none: "-"
            }
        }
    }

    /// A sequence of packets run through one loaded program; maps carry over.
    public struct Case: Decodable, Sendable {
        public var name: String
        /// The XDP program (C function) that runs.
        public var function: String
        public var description: String
        /// Every compared map before the first packet.
        public var mapsBefore: [String: Map]
        public var packets: [Packet]
        /// Maps the kernel could not show, with the reason.
        public var notCompared: [String: String]?

        enum CodingKeys: String, CodingKey {
            case name, function, description, packets
            case mapsBefore = "maps_before"
            case notCompared = "not_compared"
        }
    }

    public struct Packet: Decodable, Sendable {
        public var name: String
        /// The packet, hex.
        public var dataIn: String
        /// The program's return value (an XDP action), as BPF_PROG_TEST_RUN reports it (u32).
        public var retval: UInt32
        /// The metadata and packet after the run, hex.
        public var dataOut: String
        /// Every compared map after this packet.
        public var maps: [String: Map]

        enum CodingKeys: String, CodingKey {
            case name, retval, maps
            case dataIn = "data_in"
            case dataOut = "data_out"
        }
    }

    public struct Map: Decodable, Sendable {
        /// The kernel's map type name (`hash`, `percpu_array`).
        public var type: String
        /// Sorted by key.
        public var entries: [Entry]
        /// `"keys"` when only the keys are comparable (values are kernel object ids).
        public var compare: String?
    }

    /// One element: `value` for ordinary maps, `values` (one per possible CPU) for per-CPU maps.
    public struct Entry: Decodable, Sendable, Hashable {
        public var key: String
        public var value: String?
        public var values: [String]?
    }
}
