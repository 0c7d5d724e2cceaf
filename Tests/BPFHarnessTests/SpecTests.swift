import BPFSession
import BPFTestSupport
import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif
import Testing

@testable import BPFHarness

/// `Tests/BPFHarnessTests/specs`: specs covering every feature of the format
/// (docs/specs.md), specs whose expectations fail on purpose (`failing/`), and specs
/// with one mistake each (`errors/`, the expected message on their first line).
enum SpecFolders {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("specs")
    static func path(_ name: String) -> String { root.appendingPathComponent(name).path }

    static var errorSpecs: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path("errors"))) ?? []).filter {
            $0.hasSuffix(".spec.yaml")
        }.sorted()
    }

    static let kernelSkip = Comment(rawValue: KernelSession.unavailability ?? "")
}

struct SpecTests {
    /// The feature specs pass on both engines: their expectations come from the kernel
    /// (see the comments in each spec).
    @Test func featureSpecsPassOnBothEngines() {
        let runner = SpecRunner(backends: Engine.allCases.map(Backend.engine))
        let files = SpecRunner.specFiles([SpecFolders.root.path]).filter {
            !$0.contains("/failing/") && !$0.contains("/errors/")
        }
        #expect(
            files.map { URL(fileURLWithPath: $0).lastPathComponent } == [
                "cgroup.spec.yaml", "filter.spec.yaml", "opens.spec.yaml", "pcap-absent.spec.yaml", "reject.spec.yaml",
                "socket.spec.yaml",
            ])
        for file in files {
            let report = runner.run(path: file)
            #expect(report.error == nil, "\(file)")
            for result in report.results where result.status == .failed {
                Issue.record("\(file): \(result.name) [\(result.backend)]: \(result.failures.joined(separator: "; "))")
            }
        }
        let filter = runner.run(path: SpecFolders.path("filter.spec.yaml"))
        #expect(filter.passed == 1 + (SharedCaptures.available ? 12 : 11) * 2)
        let opens = runner.run(path: SpecFolders.path("opens.spec.yaml"))
        #expect(opens.passed == 1 + 2)
        let reject = runner.run(path: SpecFolders.path("reject.spec.yaml"))
        #expect(reject.results.map(\.status) == [.passed, .skipped, .skipped])
        #expect(reject.results[1].reason == "the spec expects the verifier to reject the program")
    }

    /// The same specs on the running kernel: every expectation the kernel reports is
    /// checked against it (printk and redirect are noted as not reported), the capture
    /// case included; tracing cases are skipped there.
    @Test(.enabled(if: KernelSession.unavailability == nil, SpecFolders.kernelSkip))
    func featureSpecsPassOnTheKernel() {
        let report = SpecRunner(backends: [.kernel]).run(path: SpecFolders.path("filter.spec.yaml"))
        #expect(report.error == nil)
        #expect(report.failed == 0, "\(report.results.flatMap(\.failures))")
        #expect(report.passed == (SharedCaptures.available ? 13 : 12))
        let notes = Set(report.results.flatMap(\.notes))
        #expect(notes == ["printk is not reported by the kernel", "redirect is not reported by the kernel"])
        for name in ["socket.spec.yaml", "cgroup.spec.yaml"] {
            let other = SpecRunner(backends: [.kernel]).run(path: SpecFolders.path(name))
            #expect(other.results.map(\.status) == [.passed, .passed, .passed], "\(name)")
        }
        let opens = SpecRunner(backends: [.kernel]).run(path: SpecFolders.path("opens.spec.yaml"))
        #expect(opens.results.map(\.status) == [.passed, .skipped])
    }

    /// A shared capture that is absent skips its case with a reason instead of failing.
    @Test func absentSharedCaptureSkips() {
        let report = SpecRunner().run(path: SpecFolders.path("pcap-absent.spec.yaml"))
        #expect(report.error == nil)
        #expect(report.results.map(\.status) == [.skipped])
        #expect(report.results.first?.reason == "the shared capture 'no-such-capture.pcap' is absent")
    }

    /// Each failure says what was expected, what happened, and on which spec line; a
    /// wrong verdict is traced to the conditional jump that decided it (the blocklist
    /// lookup's `if (value)` in `count`, filter.bpf.c:53, seen from the interpreter).
    @Test(arguments: Engine.allCases)
    func failuresAreExplained(_ engine: Engine) {
        let report = SpecRunner(backends: [.engine(engine)]).run(path: SpecFolders.path("failing/wrong.spec.yaml"))
        #expect(report.error == nil)
        #expect(report.results.map(\.status) == [.failed, .failed, .failed])
        #expect(
            report.results[0].failures == [
                "line 9: verdict: expected XDP_PASS, got XDP_DROP",
                "  decided at pc 66: jeq %r0, 0, +175 (not taken) at filter.bpf.c:53: if (value)",
            ])
        #expect(
            report.results[1].failures == [
                "printk: expected a line containing 'no such line' (in order), got 'icmp from a000007 ttl 64 proto 1'",
                "line 16: map verdicts key 02000000: expected 0500000000000000, got 0100000000000000",
                "line 16: map verdicts: match exact, but it also holds keys 00000000, 01000000, 03000000, 04000000",
            ])
        #expect(report.results[2].failures.count == 2)
        #expect(
            report.results[2].failures[0].hasPrefix(
                "line 20: output: differs at byte 0: expected 1 bytes 00, got 42 bytes"))
        #expect(
            report.results[2].failures[1]
                == "line 21: ringbuf record 0: expected 0000000000000000, got 0a00000705000800")
    }

    /// Every mistake in a spec is reported with the file and the YAML line.
    @Test(arguments: SpecFolders.errorSpecs)
    func errorsNameFileAndLine(_ name: String) throws {
        let path = SpecFolders.path("errors/" + name)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let firstLine = String(text.split(separator: "\n")[0])
        #expect(firstLine.hasPrefix("# error: "))
        var expected = String(firstLine.dropFirst("# error: ".count))
        expected = expected.replacingOccurrences(of: "SPECDIR", with: SpecFolders.path("errors"))
        let report = SpecRunner().run(path: path)
        #expect(report.error == "\(path):\(expected)")
        #expect(report.results.isEmpty)
        #expect(report.failed == 1)
    }

    @Test func filterSelectsCases() {
        let report = SpecRunner(filter: "echo").run(path: SpecFolders.path("filter.spec.yaml"))
        #expect(report.results.map(\.name) == ["verify", "echo is bounced with swapped addresses"])
        #expect(SpecRunner(filter: "capture").run(path: SpecFolders.path("filter.spec.yaml")).results.count == 2)
    }

    /// The JUnit XML is well formed and counts what the run did.
    @Test func junitReport() throws {
        let runner = SpecRunner(backends: [.interpreter])
        let reports = [
            runner.run(path: SpecFolders.path("reject.spec.yaml")),
            runner.run(path: SpecFolders.path("failing/wrong.spec.yaml")),
            runner.run(path: SpecFolders.path("errors/typo-top.spec.yaml")),
        ]
        let xml = JUnitReport.xml(reports)
        final class Counter: NSObject, XMLParserDelegate {
            var elements: [String: Int] = [:]
            var first: [String: String]?
            func parser(
                _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]
            ) {
                elements[name, default: 0] += 1
                if name == "testsuites" { first = attributes }
            }
        }
        let counter = Counter()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.delegate = counter
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        #expect(counter.elements["testsuite"] == 3)
        #expect(counter.elements["testcase"] == 2 + 3 + 1)
        #expect(counter.elements["failure"] == 3 + 1)
        #expect(counter.elements["skipped"] == 1)
        #expect(counter.first?["tests"] == "6")
        #expect(counter.first?["failures"] == "4")
    }

    /// Typed bytes as docs/specs.md describes them.
    @Test func typedBytes() throws {
        func bytes(_ yaml: String, width: Int? = nil) throws -> [UInt8] {
            let node = try YAMLNode.parse(yaml, file: "t.yaml")
            return try TypedBytes.parse(node, "value").resolve(width: width, file: "t.yaml", place: "value")
        }
        #expect(try bytes("\"0a000001\"") == [10, 0, 0, 1])
        #expect(try bytes("0a000001") == [10, 0, 0, 1])
        #expect(try bytes("258", width: 4) == [2, 1, 0, 0])
        #expect(try bytes("-1", width: 2) == [0xff, 0xff])
        #expect(try bytes("{u16: 258}") == [2, 1])
        #expect(try bytes("{i32: -2}") == [0xfe, 0xff, 0xff, 0xff])
        #expect(try bytes("{be32: 0x01020304}") == [1, 2, 3, 4])
        #expect(try bytes("{be64: 1}") == [0, 0, 0, 0, 0, 0, 0, 1])
        #expect(try bytes("{ipv4: 192.168.1.1}") == [192, 168, 1, 1])
        #expect(try bytes("{ipv6: \"::1\"}") == Array(repeating: 0, count: 15) + [1])
        #expect(try bytes("{mac: \"02:00:00:00:00:0a\"}") == [2, 0, 0, 0, 0, 10])
        #expect(try bytes("{str: ab, size: 4}") == [0x61, 0x62, 0, 0])
        #expect(try bytes("{zero: 3}") == [0, 0, 0])
        #expect(try bytes("[{u8: 1}, {hex: \"ff ee\"}, {be16: 2}]") == [1, 0xff, 0xee, 0, 2])
        #expect(throws: SpecError.self) { try bytes("300", width: 1) }
        #expect(throws: SpecError.self) { try bytes("5") }
        #expect(throws: SpecError.self) { try bytes("{str: abcdef, size: 2}") }
        #expect(throws: SpecError.self) { try bytes("{u8: 1, u16: 2}") }
    }
}

/// Every spec under `corpus/examples` runs and passes on both engines. There may be
/// none yet (the examples arrive on their own branch); each one found must be read,
/// prepared and pass.
@Test func corpusExampleSpecsPass() {
    let examples = TestInputs.repository.appendingPathComponent("corpus/examples").path
    let files = FileManager.default.fileExists(atPath: examples) ? SpecRunner.specFiles([examples]) : []
    let runner = SpecRunner(backends: Engine.allCases.map(Backend.engine))
    let reports = files.map { runner.run(path: $0) }
    #expect(reports.map(\.file) == files)
    for report in reports {
        if let error = report.error { Issue.record("\(error)") }
        for result in report.results where result.status == .failed {
            Issue.record(
                "\(report.file): \(result.name) [\(result.backend)]: \(result.failures.joined(separator: "; "))")
        }
    }
}
