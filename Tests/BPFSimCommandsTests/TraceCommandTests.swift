import BPFSim
import BPFSimCommands
import BPFTestSupport
import Foundation
import Testing

/// `bpfsim trace`: text and --json output, program selection, strace input, errors. The
/// program and its expected values are those of Tests/BPFHarnessTests/TraceReplayTests
/// (tracefs format files, include/uapi/linux/bpf.h).
struct TraceCommandTests {
    static let programs = TestInputs.repository.appendingPathComponent("Tests/BPFHarnessTests/TracePrograms")
    static let strace = TestInputs.repository.appendingPathComponent(
        "Tests/BPFHarnessTests/TraceInputs/sh-cat.strace.txt").path

    static func object() throws -> String {
        try BPFCorpus.object(source: programs.appendingPathComponent("syscalls.bpf.c"))
    }

    static let events = """
        # one openat of /etc/shadow by cat, then a close
        {"time": 5000000000, "pid": 4242, "tgid": 4240, "uid": 1000, "gid": 1001, "comm": "cat", "syscall": "openat", "args": [-100, {"str": "/etc/shadow"}, 0, 0], "ret": 3}
        {"syscall": "close", "args": [3], "ret": 0}
        """

    @Test(arguments: ["interp", "jit", "both"])
    func text(engine: String) throws {
        let path = try temporaryFile("t.jsonl", Self.events)
        let result = bpfsim(["trace", try Self.object(), "--events", path, "--engine", engine])
        #expect(result.status == 0, "\(result.err)")
        let lines = result.out.split(separator: "\n").map(String.init)
        #expect(lines[0] == "line 2  5.000000  cpu 0  cat[4242]  openat(-100, \"/etc/shadow\", 0, 0) = 3")
        #expect(lines[1] == "  enter  tp_openat       r0 = 0, 1 record")
        #expect(lines[2] == "    printk: openat /etc/shadow")
        #expect(lines[3].hasPrefix("    ringbuf events, 88 bytes: 00f2052a01000000"))
        // Decoded as struct open_event, the only struct of 88 bytes.
        #expect(lines[4].hasPrefix("      struct open_event {\"comm\":\"cat\",\"cpu\":0,\"filename\":\"/etc/shadow\""))
        #expect(lines[4].contains("\"pid\":4242,\"source\":\"FROM_TRACEPOINT\",\"tgid\":4240,\"ts\":5000000000"))
        #expect(lines.contains("  exit   kretp_openat    r0 = 0, 1 record"))
        // struct exit_event is only a local variable: not in the BTF, so the record stays hex.
        #expect(lines.contains("    perf_event exits cpu 0, 8 bytes: 9210000003000000"))
        #expect(lines.contains("2 events, 12 program runs, 2 records, 0 faults" + (engine == "both" ? " (interp, jit)" : "")))
        if engine == "both" { #expect(lines.last == "interp, jit: no difference") }
    }

    @Test func jsonLines() throws {
        let path = try temporaryFile("t.jsonl", Self.events)
        let result = bpfsim(["trace", try Self.object(), "--events", path, "--json", "--program", "tp_openat"])
        #expect(result.status == 0)
        let objects = try result.out.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(objects.map { $0["type"] as? String } == ["event", "record", "event", "summary"])
        #expect(objects.allSatisfy { $0["version"] as? Int == 1 })
        let event = objects[0]
        #expect(event["line"] as? Int == 2 && event["syscall"] as? String == "openat" && event["number"] as? Int == 257)
        let runs = try #require(event["runs"] as? [[String: Any]])
        #expect(runs.map { $0["program"] as? String } == ["tp_openat"])
        #expect(runs[0]["printk"] as? [String] == ["openat /etc/shadow"])
        let record = objects[1]
        #expect(record["record_type"] as? String == "struct open_event" && record["size"] as? Int == 88)
        let formatted = try #require(record["formatted"] as? [String: Any])
        #expect(formatted["filename"] as? String == "/etc/shadow" && formatted["len"] as? Int == 12)
        let summary = objects[3]
        #expect(summary["events"] as? Int == 2 && summary["runs"] as? Int == 1 && summary["records"] as? Int == 1)
        #expect(summary["faults"] as? Int == 0)
        // The last map holds the open_event by tgid 4240, formatted like bpftool.
        let maps = try #require(summary["maps"] as? [String: [[String: Any]]])
        let last = try #require(maps["last"]?.first?["formatted"] as? [String: Any])
        #expect(last["key"] as? Int == 4240)
        #expect((last["value"] as? [String: Any])?["comm"] as? String == "cat")
    }

    @Test func straceInput() throws {
        let result = bpfsim(["trace", try Self.object(), "--strace", Self.strace, "--program", "tp_openat"])
        #expect(result.status == 0)
        // 67 openat calls in the recorded trace, one record each.
        #expect(result.out.contains("135 events, 67 program runs, 67 records, 0 faults"))
        #expect(result.out.contains("cat[25320]  openat(-100, \"/nonexistent\", 0) = -2"))
    }

    @Test func recordTypeAndErrors() throws {
        let path = try temporaryFile("t.jsonl", Self.events)
        let object = try Self.object()
        let unknown = bpfsim(["trace", object, "--events", path, "--record-type", "nosuch"])
        #expect(unknown.status == 1 && unknown.err.contains("the object's BTF has no struct 'nosuch'"))
        let named = bpfsim(["trace", object, "--events", path, "--record-type", "struct open_event"])
        #expect(named.status == 0 && named.out.contains("      struct open_event {\"comm\":\"cat\""))
        let kernel = bpfsim(["trace", object, "--events", path, "--engine", "kernel"])
        #expect(kernel.status == 1)
        #expect(kernel.err.contains("the kernel cannot test-run tracepoint or kprobe programs"))
        let kernelJSON = bpfsim(["trace", object, "--events", path, "--engine", "kernel", "--json"])
        #expect(kernelJSON.status == 1)
        #expect(kernelJSON.out.hasPrefix("{\"error\":{\"code\":\"unsupported\",\"message\":\"the kernel cannot test-run"))
        #expect(kernelJSON.out.hasSuffix("\"type\":\"error\",\"version\":1}\n"))
        let bad = try temporaryFile("bad.jsonl", "{\"syscall\": \"openat\"}\n{\"syscall\": 1.5}\n")
        let badResult = bpfsim(["trace", object, "--events", bad])
        #expect(badResult.status == 1 && badResult.err.contains("bad.jsonl:2: 'syscall' must be a name or a number"))
        let program = bpfsim(["trace", object, "--events", path, "--program", "nosuch"])
        #expect(program.status == 1 && program.err.contains("no program named 'nosuch'"))
        let neither = bpfsim(["trace", object])
        #expect(neither.status != 0 && neither.err.contains("give one of --events or --strace"))
    }

    /// Faults and events that cannot run name the event's line, and the replay goes on.
    @Test(arguments: ["interp", "jit"])
    func faultsNameTheLine(engine: String) throws {
        let path = try temporaryFile(
            "t.jsonl",
            "{\"cpu\": 5, \"syscall\": \"close\", \"args\": [3]}\n"
                + Self.events.replacingOccurrences(of: "{\"time\"", with: "{\"cpu\": 0, \"time\""))
        let result = bpfsim(["trace", try Self.object(), "--events", path, "--engine", engine])
        #expect(result.status == 1)
        #expect(result.out.contains("  error: line 1: CPU 5, but the emulated machine has 1 (--cpus)"))
        #expect(result.out.contains("3 events, 12 program runs, 2 records, 1 fault"))

        let beyond = try BPFCorpus.object(source: Self.programs.appendingPathComponent("past_record.bpf.c"))
        let faulting = bpfsim(["trace", beyond, "--events", path, "--engine", engine])
        #expect(faulting.status == 1)
        #expect(faulting.out.contains("  enter  close_beyond  fault (line 4): "), "\(faulting.out)")
        #expect(faulting.out.contains("past the end of the 24 bytes given"))
        #expect(faulting.out.contains("3 events, 1 program run, 0 records, 2 faults"))
    }

    /// --state keeps maps from one replay to the next: raw_syscalls/sys_enter counts each
    /// call number, so a second replay of the same trace doubles the counts.
    @Test func stateCarriesOver() throws {
        let path = try temporaryFile("t.jsonl", Self.events)
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("bpfsim-trace-state-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        var counts: [Int: Int] = [:]
        for _ in 0..<2 {
            let result = bpfsim(["trace", try Self.object(), "--events", path, "--state", state.path, "--json"])
            #expect(result.status == 0, "\(result.err)")
            let summary = try #require(result.out.split(separator: "\n").last)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(summary.utf8)) as? [String: Any])
            let maps = try #require(object["maps"] as? [String: [[String: Any]]])
            counts = [:]
            for entry in maps["counts"] ?? [] {
                let formatted = try #require(entry["formatted"] as? [String: Any])
                counts[try #require(formatted["key"] as? Int)] = formatted["value"] as? Int
            }
        }
        // openat (257) and close (3), once per replay, twice in all.
        #expect(counts == [257: 2, 3: 2])
    }

    /// Programs are verified before the replay, as the kernel verifies them at load (the
    /// kernel refuses this one: "R0 invalid mem access 'map_value_or_null'").
    @Test func verifiesFirst() throws {
        let path = try temporaryFile("t.jsonl", Self.events)
        let object = try BPFCorpus.object(source: Self.programs.appendingPathComponent("unchecked_lookup.bpf.c"))
        let refused = bpfsim(["trace", object, "--events", path])
        #expect(refused.status == 1)
        #expect(refused.err.contains("program 'count_unchecked' would be refused by the kernel's verifier"))
        // Run anyway, the empty hash map's NULL is dereferenced: a fault at each event.
        let forced = bpfsim(["trace", object, "--events", path, "--no-verify"])
        #expect(forced.status == 1)
        #expect(forced.out.contains("  enter  count_unchecked  fault (line 2): "), "\(forced.out)")
        #expect(forced.out.contains("2 events, 2 program runs, 0 records, 2 faults"))
    }
}
