import BPFKernel
import BPFSim
import BPFSimCommands
import BPFTestSupport
import Foundation
import Testing

/// `bpfsim replay`: the summary people read, the JSON lines, --out, and captures that end badly.
struct ReplayCommandTests {
    /// Returns XDP_PASS for packets of 100 bytes or less; reads 5000 bytes past a longer
    /// packet's start, which faults.
    static let faulty = """
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        sub %r3, %r2
        mov %r0, 2
        jgt %r3, 100, long
        exit
        long:
        ldxb %r0, [%r2+5000]
        exit
        """

    /// Rewrites the first byte of a packet of 14 bytes or more and sends it back (XDP_TX);
    /// passes shorter ones.
    static let bounce = """
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r0, 2
        mov %r4, %r2
        add %r4, 14
        jgt %r4, %r3, done
        stb [%r2+0], 0x42
        mov %r0, 3
        done:
        exit
        """

    /// Ethernet/IPv4/TCP frames from 10.0.0.1:port to 10.0.0.2:80, `length` bytes each.
    static func frame(port: UInt16, length: Int) -> [UInt8] {
        var frame: [UInt8] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]
        frame += [0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        frame += [UInt8(port >> 8), UInt8(port & 0xff), 0, 80] + Array(repeating: 0, count: 16)
        return frame + Array(repeating: 0, count: max(0, length - frame.count))
    }

    /// A capture of frames of these lengths, one second apart.
    static func capture(_ lengths: [Int]) throws -> String {
        let path = try temporaryFile("trace.pcap", "")
        let writer = try CaptureWriter(path: path)
        for (index, length) in lengths.enumerated() {
            try writer.write(
                frame(port: UInt16(1000 + index), length: length), timestamp: UInt64(1_700_000_000 + index) * 1_000_000_000)
        }
        try writer.close()
        return path
    }

    /// The headline's time and rate change from run to run.
    static func withoutTiming(_ text: String) -> String {
        text.replacingOccurrences(
            of: #", [0-9.]+ s, [0-9,]+ packets/s"#, with: ", TIME", options: .regularExpression)
    }

    @Test func textSummaryNamesFaultsAndCountsVerdicts() throws {
        let program = try temporaryFile("faulty.s", Self.faulty)
        let capture = try Self.capture([60, 200, 64, 1500, 90])
        let result = bpfsim(["replay", program, "--no-verify", "--pcap", capture])
        #expect(result.status == 0)
        #expect(
            result.err == """
                packet 2: fault: instruction 6 (ldxb %r0, [%r2+5000]): \(try Self.faultMessage(program, capture, packet: 2))
                packet 4: fault: instruction 6 (ldxb %r0, [%r2+5000]): \(try Self.faultMessage(program, capture, packet: 4))

                """)
        #expect(
            Self.withoutTiming(result.out) == """
                \(capture): 5 packets through faulty.s (xdp) on interp, TIME
                outcome   packets  share
                XDP_PASS        3  60.0%
                fault           2  40.0%

                """)
    }

    /// The fault's message as the JSON line gives it, so the text test does not restate
    /// the address space's wording; it must name the read and the packet.
    static func faultMessage(_ program: String, _ capture: String, packet: Int) throws -> String {
        let lines = bpfsim(["replay", program, "--no-verify", "--pcap", capture, "--json"]).out.split(separator: "\n")
        let object = try JSONSerialization.jsonObject(with: Data(lines[packet - 1].utf8)) as? [String: Any]
        let fault = object?["fault"] as? [String: Any]
        let message = fault?["message"] as? String ?? ""
        #expect(message.hasPrefix("out-of-bounds read of 1 byte at "), "\(message)")
        #expect(message.contains("after the end of the packet"), "\(message)")
        return message
    }

    @Test func jsonIsOneLinePerPacketThenTheSummary() throws {
        let program = try temporaryFile("faulty.s", Self.faulty)
        let capture = try Self.capture([60, 200, 64])
        let result = bpfsim(["replay", program, "--no-verify", "--pcap", capture, "--json", "--cpus", "2"])
        #expect(result.status == 0)
        let lines = result.out.split(separator: "\n").map {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(lines.count == 4)
        #expect(lines.allSatisfy { $0?["version"] as? Int == 1 })
        #expect(lines.prefix(3).map { $0?["type"] as? String } == ["packet", "packet", "packet"])
        #expect(lines.prefix(3).map { $0?["packet"] as? Int } == [1, 2, 3])
        #expect(lines[0]?["verdict"] as? String == "XDP_PASS")
        #expect(lines[0]?["retval"] as? Int == 2)
        #expect(lines[0]?["len_in"] as? Int == 60)
        #expect(lines[0]?["len_out"] as? Int == 60)
        #expect(lines[0]?["timestamp"] as? Int == 1_700_000_000_000_000_000)
        let fault = lines[1]?["fault"] as? [String: Any]
        #expect(fault?["pc"] as? Int == 6)
        #expect(fault?["code"] as? String == "out_of_bounds")
        #expect(lines[1]?["verdict"] == nil)
        let summary = lines[3]
        #expect(summary?["type"] as? String == "summary")
        #expect(summary?["packets"] as? Int == 3)
        #expect(summary?["faults"] as? Int == 1)
        #expect(summary?["verdicts"] as? [String: Int] == ["XDP_PASS": 2])
        #expect(summary?["engines"] as? [String] == ["interp"])
        #expect((summary?["per_cpu"] as? [Int])?.reduce(0, +) == 3)
        #expect(summary?["maps"] as? [String: Any] != nil)
    }

    @Test func outHoldsTheFramesSentOnAsModified() throws {
        let program = try temporaryFile("bounce.s", Self.bounce)
        let capture = try Self.capture([60, 80])
        let out = try temporaryFile("out.pcap", "")
        let result = bpfsim(["replay", program, "--pcap", capture, "--out", out])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.contains("sent on: 2 frames written to \(out)"))
        let reader = try CaptureReader(path: out)
        var frames: [CaptureRecord] = []
        while let record = try reader.next() { frames.append(record) }
        #expect(frames.count == 2)
        #expect(frames.map(\.bytes) == [60, 80].enumerated().map { index, length in
            [0x42] + Self.frame(port: UInt16(1000 + index), length: length).dropFirst()
        })
        #expect(frames.map(\.timestamp) == [1_700_000_000_000_000_000, 1_700_000_001_000_000_000])
    }

    @Test func aCaptureCutShortPrintsTheSummaryThenTheError() throws {
        let program = try temporaryFile("faulty.s", Self.faulty)
        let capture = try Self.capture([60, 60, 60])
        // Cut 10 bytes into the third record's frame: 24-byte file header, 16 + 60 per record.
        let handle = try #require(FileHandle(forUpdatingAtPath: capture))
        try handle.truncate(atOffset: UInt64(24 + 2 * 76 + 16 + 10))
        try handle.close()
        let result = bpfsim(["replay", program, "--no-verify", "--pcap", capture])
        #expect(result.status == 1)
        #expect(Self.withoutTiming(result.out).hasPrefix("\(capture): 2 packets through faulty.s (xdp) on interp, TIME\n"))
        #expect(result.err.hasPrefix("error: \(capture): record 3: libpcap stopped reading after 2 good records: "), "\(result.err)")
    }

    @Test func bothEnginesAgree() throws {
        let program = try temporaryFile("faulty.s", Self.faulty)
        let capture = try Self.capture([60, 200, 64])
        let result = bpfsim(["replay", program, "--no-verify", "--pcap", capture, "--engine", "both"])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.hasSuffix("interp, jit: no difference\n"))
    }

    @Test func limitStopsEarly() throws {
        let program = try temporaryFile("faulty.s", Self.faulty)
        let capture = try Self.capture([60, 60, 60, 60])
        let result = bpfsim(["replay", program, "--no-verify", "--pcap", capture, "--limit", "2", "--json"])
        let summary = result.out.split(separator: "\n").last.map(String.init) ?? ""
        #expect(summary.contains(#""packets":2"#))
        #expect(summary.contains(#""limit_reached":true"#))
    }

    @Test func theVerifierRefusesFirst() throws {
        let program = try temporaryFile("faulty.s", Self.faulty)
        let capture = try Self.capture([60])
        let result = bpfsim(["replay", program, "--pcap", capture])
        #expect(result.status == 1)
        #expect(result.err.hasPrefix("error: \(program): program 'faulty.s' would be refused by the kernel's verifier: "), "\(result.err)")
        #expect(result.out.isEmpty)
    }

    @Test func aProgramThatTakesNoPacketsIsRefused() throws {
        let program = try temporaryFile("p.s", "mov %r0, 0\nexit\n")
        let capture = try Self.capture([60])
        let result = bpfsim(["replay", program, "--no-verify", "--pcap", capture, "--type", "kprobe"])
        #expect(result.status != 0)
        #expect(result.err.contains("--type takes xdp, sched_cls, sched_act, socket_filter or cgroup_skb"))
    }

    /// The link type error CaptureReader gives, as one line.
    @Test(.enabled(if: TestInputs.shared != nil, "../shared is absent"))
    func anUnreadableLinkTypeIsAnError() throws {
        let program = try temporaryFile("faulty.s", Self.faulty)
        let capture = TestInputs.shared!.appendingPathComponent("pcaps/arp-who-has-radiotap.pcap").path
        let result = bpfsim(["replay", program, "--no-verify", "--pcap", capture])
        #expect(result.status == 1)
        #expect(result.err.hasPrefix("error: \(capture): link type IEEE802_11_RADIO (127, "), "\(result.err)")
    }

    /// A cooked capture gets a synthesized Ethernet header, said once on stderr.
    @Test(.enabled(if: TestInputs.shared != nil, "../shared is absent"))
    func aSynthesizedHeaderIsSaidOnce() throws {
        let program = try temporaryFile("faulty.s", Self.faulty)
        let capture = TestInputs.shared!.appendingPathComponent("pcaps/linuxsll-arp.pcap").path
        let result = bpfsim(["replay", program, "--no-verify", "--pcap", capture])
        #expect(result.status == 0)
        let notes = result.err.split(separator: "\n").filter { $0.hasPrefix("note: \(capture): link type LINUX_SLL (113)") }
        #expect(notes.count == 1, "\(result.err)")
    }
}

/// `bpfsim replay` with a clang-compiled object: state kept across replays, and the kernel.
struct ReplayObjectCommandTests {
    static var handshake: String? {
        TestInputs.shared.map { $0.appendingPathComponent("pcaps/tcp-handshake-nano.pcap").path }
    }

    /// corpus/programs/flow_table.bpf.c counts a flow's packets in one element; with
    /// --state each replay of tcp-handshake-nano.pcap (3 packets of one connection,
    /// INDEX.md) goes on from the last one's counts: two whole replays and one of its
    /// first packet (--limit 1) count 7 packets in all.
    @Test(.enabled(if: TestInputs.shared != nil, "../shared is absent"))
    func stateCarriesOverBetweenReplays() throws {
        let object = try ProgramCorpus.object("flow_table")
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("replay-state-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: state) }
        for _ in 0..<2 {
            let result = bpfsim(["replay", object, "--pcap", Self.handshake!, "--state", state.path])
            #expect(result.status == 0, "\(result.err)")
        }
        let result = bpfsim(["replay", object, "--pcap", Self.handshake!, "--state", state.path, "--json", "--limit", "1"])
        let summary = try #require(result.out.split(separator: "\n").last)
        let summaryObject = try JSONSerialization.jsonObject(with: Data(summary.utf8)) as? [String: Any]
        let flows = (summaryObject?["maps"] as? [String: Any])?["flows"] as? [[String: Any]] ?? []
        let packets = flows.compactMap { entry -> UInt64? in
            guard let hex = entry["value"] as? String, let bytes = Hex.bytes(hex) else { return nil }
            return bytes.prefix(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        #expect(packets.reduce(0, +) == 7)
    }

    @Test(
        .enabled(if: TestInputs.shared != nil, "../shared is absent"),
        .enabled(if: Kernel.isAvailable, Comment(rawValue: Kernel.unavailability()?.message ?? "")))
    func theKernelAgrees() throws {
        let object = try ProgramCorpus.object("flow_table")
        let result = bpfsim(["replay", object, "--pcap", Self.handshake!, "--engine", "all", "--cpus", "2"])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.hasSuffix("interp, jit, kernel: no difference\n"), "\(result.out)")
        // The kernel alone: its return values counted as verdicts (the handshake passes).
        let kernel = bpfsim(["replay", object, "--pcap", Self.handshake!, "--engine", "kernel", "--json"])
        #expect(kernel.status == 0, "\(kernel.err)")
        let summary = kernel.out.split(separator: "\n").last.map(String.init) ?? ""
        #expect(summary.contains(#""verdicts":{"XDP_PASS":3}"#), "\(summary)")
    }

    @Test(
        .enabled(if: TestInputs.shared != nil, "../shared is absent"),
        .enabled(if: !Kernel.isAvailable, "bpf() works here: the refusal cannot be shown"))
    func anUnavailableKernelIsOneSentence() throws {
        let object = try ProgramCorpus.object("flow_table")
        let result = bpfsim(["replay", object, "--pcap", Self.handshake!, "--engine", "kernel"])
        #expect(result.status == 1)
        #expect(result.err == "error: \(Kernel.unavailability()!.message)\n")
    }
}
