import ArgumentParser
import BPFSimCommands
import BPFTestSupport
import Foundation
import Testing

/// What a command printed and its exit status.
struct CLIResult {
    var out = ""
    var err = ""
    var status: Int32 = 0
}

/// Runs `bpfsim ARGS` in-process, capturing its output.
func bpfsim(_ arguments: [String]) -> CLIResult {
    final class Buffer: @unchecked Sendable {
        var out = ""
        var err = ""
        let lock = NSLock()
    }
    let buffer = Buffer()
    let console = Console(
        out: { text in buffer.lock.withLock { buffer.out += text } },
        err: { text in buffer.lock.withLock { buffer.err += text } })
    var status: Int32 = 0
    Console.$current.withValue(console) {
        do {
            var command = try BPFSimCommand.parseAsRoot(arguments)
            try command.run()
        } catch {
            status = BPFSimCommand.exitCode(for: error).rawValue
            let message = BPFSimCommand.message(for: error)
            if !message.isEmpty && status != 0 && !(error is ExitCode) { console.err(message) }
        }
    }
    return CLIResult(out: buffer.out, err: buffer.err, status: status)
}

func temporaryFile(_ name: String, _ contents: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bpfsim-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let url = directory.appendingPathComponent(name)
    try contents.write(to: url, atomically: true, encoding: .utf8)
    return url.path
}

struct RunCommandTests {
    @Test func printsR0AndTheInstructionCount() throws {
        let program = try temporaryFile("p.s", "mov %r0, -2\nexit\n")
        let result = bpfsim(["run", program])
        #expect(result.status == 0)
        #expect(result.out == "r0 = 0xfffffffffffffffe (18446744073709551614) (-2 signed)\n2 instructions\n")
    }

    @Test func jsonHasRetvalAndInsns() throws {
        // mem-len.data from the conformance suite: r0 = r2 = the memory's length.
        let program = try temporaryFile("p.s", "mov %r0, %r2\nexit\n")
        let result = bpfsim(["run", program, "--mem-hex", "00 00 00 01 00 00 00 02", "--json"])
        #expect(result.status == 0)
        #expect(result.out == #"{"insns":2,"memory":"0000000100000002","retval":8,"version":1}"# + "\n")
    }

    @Test func outOfBoundsStoreExitsOne() throws {
        let program = try temporaryFile("oob.s", "mov %r0, 5\nstxw [%r1+6], %r0\nexit\n")
        let result = bpfsim(["run", program, "--mem-hex", "0011223344556677"])
        #expect(result.status == 1)
        #expect(result.err.hasPrefix("error: instruction 1 (stxw [%r1+6], %r0): out-of-bounds write of 4 bytes"))
        let json = bpfsim(["run", program, "--mem-hex", "0011223344556677", "--json"])
        #expect(json.status == 1)
        let object = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any]
        let error = object?["error"] as? [String: Any]
        #expect(error?["code"] as? String == "out_of_bounds")
        #expect(error?["kind"] as? String == "fault")
        #expect(error?["pc"] as? Int == 1)
        #expect(object?["retval"] == nil)
    }

    @Test func endlessLoopExitsOne() throws {
        let program = try temporaryFile("loop.s", "loop:\nja loop\n")
        let result = bpfsim(["run", program, "--budget", "1000"])
        #expect(result.status == 1)
        #expect(
            result.err
                == "error: instruction 0 (ja -1): instruction budget of 1000 exhausted (the program may never end; raise it with --budget)\nafter 1000 instructions\n"
        )
    }

    @Test func unknownOpcodeExitsOne() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).bin")
        try Data([0x06, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0]).write(to: url)
        let result = bpfsim(["run", url.path])
        #expect(result.status == 1)
        #expect(result.err == "error: \(url.path): instruction 1: unknown opcode 0xff\n")
    }

    @Test func assemblyErrorsNameTheLine() throws {
        let program = try temporaryFile("e.s", "mov %r0, 1\nadd %r0, foo\nexit\n")
        let result = bpfsim(["run", program, "--json"])
        #expect(result.status == 1)
        #expect(result.out.contains(#""line":2"#))
        #expect(result.out.contains(#""code":"bad_number""#))
    }

    @Test func kernelStrictRefusesWhatTheKernelRefuses() throws {
        let program = try temporaryFile("s.s", "mov %r0, 1\nlsh %r0, 68\nexit\n")
        #expect(bpfsim(["run", program]).status == 0)
        let strict = bpfsim(["run", program, "--kernel-strict"])
        #expect(strict.status == 1)
        #expect(strict.err.contains("invalid shift 68"))
    }
}

struct ToolCommandTests {
    @Test func asmThenDisasmRoundTrips() throws {
        let source = try temporaryFile(
            "p.s",
            """
            mov %r0, 0
            loop:
            add %r0, 1
            jlt %r0, 10, loop
            lddw %r1, 0x1122334455667788
            call 5
            exit
            """)
        let binary = source + ".bin"
        let assembled = bpfsim(["asm", source, "-o", binary])
        #expect(assembled.status == 0)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: binary))
        #expect(bytes.count == 7 * 8)
        let listing = bpfsim(["disasm", binary])
        #expect(listing.status == 0)
        #expect(listing.out.contains("jlt %r0, 10, -2"))
        #expect(listing.out.contains("call 5"))
        #expect(listing.out.contains("bpf_ktime_get_ns"))
        let again = try temporaryFile("again.s", listing.out)
        _ = bpfsim(["asm", again, "-o", again + ".bin"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: again + ".bin")) == bytes)
    }

    @Test func asmRefusesAnInvalidProgram() throws {
        let source = try temporaryFile("w.s", "mov %r10, 1\nexit\n")
        let result = bpfsim(["asm", source, "-o", source + ".bin"])
        #expect(result.status == 1)
        #expect(result.err.contains("instruction 0: mov writes r10, which is read-only"))
    }

    @Test(
        "bpfsim conformance prints 313 passed, 0 failed",
        .enabled(if: TestInputs.conformanceDirectory != nil, Comment(rawValue: TestInputs.conformanceSkipMessage)))
    func conformance() throws {
        let result = bpfsim(["conformance", TestInputs.conformanceDirectory!.path])
        #expect(result.status == 0)
        #expect(result.out == "313 passed, 0 failed\n")
    }

    @Test func conformanceReportsFailures() throws {
        let good = try temporaryFile("good.data", "-- asm\nmov %r0, 1\nexit\n-- result\n0x1\n")
        let bad = try temporaryFile("bad.data", "-- asm\nmov %r0, 2\nexit\n-- result\n0x1\n")
        let result = bpfsim(["conformance", good, bad])
        #expect(result.status == 1)
        #expect(result.out == "FAIL bad.data: expected r0 = 0x1, got 0x2\n1 passed, 1 failed\n")
    }
}

struct JITCommandTests {
    @Test func disasmJitShowsEachInstructionsCode() throws {
        let source = try temporaryFile("p.s", "mov %r0, 7\nldxw %r1, [%r1+4]\nexit\n")
        let result = bpfsim(["disasm", "--jit", source])
        #expect(result.status == 0)
        let out = result.out
        #expect(out.contains("\n0: mov %r0, 7\n"))
        #expect(out.contains("mov eax, 7\n"))
        #expect(out.contains("\n1: ldxw %r1, [%r1+4]\n"))
        #expect(out.contains("lea rcx, [rdi + 4]\n"))
        #expect(out.contains("mov edi, dword ptr [r11 - 4]\n"))
        #expect(out.contains("\n2: exit\n"))
        #expect(out.contains("; slow load for instruction 1\n"))
        #expect(out.contains("; memory thunk\n"))
    }

    @Test func runAndConformanceCompareBothEngines() throws {
        let program = try temporaryFile("p.s", "mov %r0, %r2\nstb [%r1], 9\nexit\n")
        let result = bpfsim(["run", program, "--mem-hex", "0001", "--engine", "both"])
        #expect(result.status == 0)
        #expect(
            result.out
                == "interp, jit: no difference\nresults of interp:\nr0 = 0x0000000000000002 (2)\n3 instructions\n")
        let jit = bpfsim(["run", program, "--mem-hex", "0001", "--engine", "jit", "--json"])
        #expect(jit.out == #"{"insns":3,"memory":"0901","retval":2,"version":1}"# + "\n")
        let test = try temporaryFile("t.data", "-- asm\nmov %r0, 1\nexit\n-- result\n0x1\n")
        #expect(bpfsim(["conformance", "--engine", "both", test]).out == "1 passed, 0 failed\n")
    }
}
