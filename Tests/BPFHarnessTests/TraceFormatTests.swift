import BPFHarness
import BPFSession
import Testing

/// The JSON Lines trace format of docs/traces.md: good lines, defaults, and bad lines
/// whose errors name the file and line.
struct TraceFormatTests {
    @Test func fullLine() throws {
        let text = """
            # a comment, then a blank line

            {"time": 1700000000123456789, "cpu": 1, "pid": 4242, "tgid": 4240, "uid": 1000, "gid": 1001, "comm": "cat", "syscall": "openat", "args": [-100, {"str": "/etc/shadow"}, 0, 0], "ret": 3}
            """
        let trace = try SyscallTrace(jsonLines: text, source: "t.jsonl")
        #expect(trace.events.count == 1)
        let event = try #require(trace.events.first)
        #expect(event.line == 3)
        #expect(event.time == 1_700_000_000_123_456_789)
        #expect(event.cpu == 1)
        #expect(event.task == EmulatedTask(pid: 4242, tgid: 4240, uid: 1000, gid: 1001, comm: "cat"))
        // openat is system call 257 (<asm/unistd_64.h>).
        #expect(event.syscall.number == 257)
        #expect(
            event.arguments == [.value(UInt64(bitPattern: -100)), .string("/etc/shadow"), .value(0), .value(0)])
        #expect(event.returnValue == 3)
        #expect(event.phase == .both)
    }

    @Test func defaultsCarryOver() throws {
        let text = """
            {"syscall": 257, "args": [{"hex": "00ff"}, {"size": 3}, {"ptr": 16}]}
            {"time": "12:34:56.000001", "pid": 7, "comm": "sh", "syscall": "stat", "phase": "exit", "ret": -2}
            {"syscall": "close", "uid": 5}
            {"time": "1700000000.5", "syscall": "read", "phase": "enter", "ret": 4}
            """
        let events = try SyscallTrace(jsonLines: text, source: "t.jsonl").events
        #expect(events.count == 4)
        // First event: CPU 0, pid/tgid 1000, uid/gid 0, comm "bpfsim", 1 s after boot.
        #expect(events[0].task == EmulatedTask(pid: 1000, tgid: 1000, uid: 0, gid: 0, comm: "bpfsim"))
        #expect(events[0].time == 1_000_000_000)
        #expect(events[0].arguments == [.bytes([0, 0xff]), .zeroed(3), .pointer(16)])
        #expect(events[0].phase == .enter)
        // pid sets tgid too; strace's stat is the kernel's newstat, number 4.
        #expect(events[1].time == (12 * 3600 + 34 * 60 + 56) * 1_000_000_000 + 1_000)
        #expect(events[1].task == EmulatedTask(pid: 7, tgid: 7, uid: 0, gid: 0, comm: "sh"))
        #expect(events[1].syscall.number == 4 && events[1].syscall.name == "newstat")
        #expect(events[1].phase == .exit && events[1].returnValue == -2)
        // Time advances by 1 µs, the task carries over with the new uid.
        #expect(events[2].time == events[1].time + 1_000)
        #expect(events[2].task == EmulatedTask(pid: 7, tgid: 7, uid: 5, gid: 0, comm: "sh"))
        #expect(events[3].time == 1_700_000_000_500_000_000)
        #expect(events[3].phase == .enter)
    }

    @Test(arguments: [
        ("{\"syscall\": \"openat\"", "not a JSON object"),
        ("[1, 2]", "not a JSON object, but an array"),
        ("{\"args\": []}", "no 'syscall'"),
        ("{\"syscall\": \"nosuchcall\"}", "unknown system call 'nosuchcall'"),
        ("{\"syscall\": 9999}", "unknown x86-64 system call number 9999"),
        ("{\"syscall\": \"read\", \"pdi\": 3}", "unknown key 'pdi'"),
        ("{\"syscall\": \"read\", \"comm\": \"a-very-long-command\"}", "longer than 15 bytes"),
        ("{\"syscall\": \"read\", \"args\": [1, 2, 3, 4, 5, 6, 7]}", "7 arguments"),
        ("{\"syscall\": \"read\", \"args\": [{\"hex\": \"abc\"}]}", "argument 1: \"abc\" is not hex"),
        ("{\"syscall\": \"read\", \"args\": [0, {\"buf\": 3}]}", "argument 2: {\"buf\": 3}"),
        ("{\"syscall\": \"read\", \"args\": [1.5]}", "argument 1 must be an integer"),
        ("{\"syscall\": \"read\", \"pid\": -1}", "'pid' must be an integer from 0"),
        ("{\"syscall\": \"read\", \"time\": \"noon\"}", "'time' \"noon\""),
        ("{\"syscall\": \"read\", \"time\": \"999999999999999999:00:00.1\"}", "'time' \"999999999999999999:00:00.1\""),
        ("{\"syscall\": \"read\", \"phase\": \"exit\"}", "\"phase\": \"exit\" needs 'ret'"),
        ("{\"syscall\": \"read\", \"phase\": \"middle\"}", "'phase' must be"),
    ])
    func badLine(line: String, message: String) {
        let text = "{\"syscall\": \"close\"}\n\n" + line + "\n"
        do {
            _ = try SyscallTrace(jsonLines: text, source: "bad.jsonl")
            Issue.record("accepted \(line)")
        } catch {
            #expect(error.file == "bad.jsonl")
            #expect(error.line == 3)
            #expect(error.description.hasPrefix("bad.jsonl:3: "))
            #expect(error.message.contains(message), "\(error)")
        }
    }

    @Test func missingFile() {
        #expect(throws: TraceError(file: "/nonexistent/t.jsonl", line: 0, message: "cannot read the file")) {
            try SyscallTrace(contentsOf: "/nonexistent/t.jsonl")
        }
    }
}
