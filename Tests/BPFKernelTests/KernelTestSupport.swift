import BPFKernel
import BPFSim
import BPFTestSupport
import Foundation
import Testing

/// What every kernel comparison needs: whether it may run here (and the sentence it
/// skips with when not), a configuration whose per-CPU maps match the kernel's, and
/// packets.
enum KernelTests {
    /// Skips a test with the one sentence that says why bpf() is refused here.
    static var available: ConditionTrait {
        .enabled(
            if: Kernel.isAvailable, Comment(rawValue: Kernel.unavailability()?.message ?? "the kernel is available"))
    }

    /// bpfsim with as many CPUs as the kernel has, on CPU 0 like the pinned test runs.
    static var configuration: RunConfiguration {
        RunConfiguration(world: World(cpuCount: Kernel.possibleCPUs))
    }

    /// Runs `inputs` through `program` on the interpreter and the kernel and returns the
    /// first difference, as a sentence naming where it happened, or nil.
    static func divergence(
        _ object: BPFObject, program: String, packets: [[UInt8]], label: String = "",
        state: ((Machine) throws -> Void)? = nil
    ) throws -> String? {
        let outcome = try RunComparison.run(
            object: object, program: program, inputs: packets.map(ProgramInput.packet),
            backends: [.interpreter, .kernel], configuration: configuration, state: state)
        return outcome.divergence.map { "\(label)\(program): \($0)" }
    }

    /// Packets every XDP program gets: an IPv4/UDP frame, the shortest frame the kernel
    /// takes (an Ethernet header), a full-size frame, one past the linear 3520 bytes.
    static let packets: [[UInt8]] = {
        let ethernet: [UInt8] = [0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00]
        let ipv4: [UInt8] = [
            0x45, 0, 0, 50, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 10, 1, 2, 3, 192, 168, 7, 9,
        ]
        let udp: [UInt8] = [0x9c, 0x40, 0x00, 0x35, 0, 30, 0, 0]
        let payload = (0..<22).map { UInt8($0) }
        return [
            ethernet + ipv4 + udp + payload,
            ethernet,
            (0..<1514).map { UInt8(truncatingIfNeeded: $0 &* 7) },
            (0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 13) },
        ]
    }()

    /// Every XDP program of the corpus, as `object/program`.
    static let corpusXDPPrograms: [String] = BPFCorpus.names.flatMap { name -> [String] in
        guard let path = try? BPFCorpus.object(name), let object = try? BPFObject(path: path) else { return [] }
        return object.programs.filter { $0.type == .xdp }.map { "\(name)/\($0.name)" }
    }

    /// This directory's own programs (kernel_compare.c).
    static func ownObject() throws -> BPFObject {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Programs/kernel_compare.c")
        return try BPFObject(path: try BPFCorpus.object(source: source))
    }
}

/// Classic pcap files (not pcapng): every record's captured bytes. A minimal reader for
/// these tests only; bpfsim's replay will read captures through libpcap.
enum PcapFile {
    static func packets(_ url: URL) -> [[UInt8]]? {
        guard let data = try? Data(contentsOf: url), data.count >= 24 else { return nil }
        let bytes = [UInt8](data)
        let magic = Array(bytes[0..<4])
        let littleEndian: Bool
        switch magic {
        case [0xd4, 0xc3, 0xb2, 0xa1], [0x4d, 0x3c, 0xb2, 0xa1]: littleEndian = true
        case [0xa1, 0xb2, 0xc3, 0xd4], [0xa1, 0xb2, 0x3c, 0x4d]: littleEndian = false
        default: return nil  // pcapng, or not a capture
        }
        func u32(_ offset: Int) -> Int {
            let b = bytes[offset..<offset + 4].map(Int.init)
            return littleEndian
                ? b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24 : b[3] | b[2] << 8 | b[1] << 16 | b[0] << 24
        }
        var packets: [[UInt8]] = []
        var offset = 24
        while offset + 16 <= bytes.count {
            let length = u32(offset + 8)
            offset += 16
            guard length <= bytes.count - offset else { break }  // a truncated last record
            packets.append(Array(bytes[offset..<offset + length]))
            offset += length
        }
        return packets
    }

    /// The classic pcap files of ../shared/pcaps, sorted by name.
    static var files: [URL] {
        guard let directory = TestInputs.shared?.appendingPathComponent("pcaps") else { return [] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".pcap") }.sorted().map { directory.appendingPathComponent($0) }
    }
}
