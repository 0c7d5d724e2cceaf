import BPFSim
import BPFTestSupport
import Foundation
import Testing

/// The bpf_conformance suite (from ../shared or $BPF_CONFORMANCE_DIR) and bpfsim's own
/// cases in Tests/cases, in the same format.
struct ConformanceTests {
    static let suiteEnabled = TestInputs.conformanceDirectory != nil

    @Test(
        "bpf_conformance: every file passes",
        .enabled(if: suiteEnabled, Comment(rawValue: TestInputs.conformanceSkipMessage)),
        arguments: TestInputs.conformanceFiles, Engine.allCases)
    func conformance(_ file: URL, engine: Engine) {
        let outcome = ConformanceSuite.run(file: file, configuration: RunConfiguration(engine: engine))
        #expect(outcome.status == .passed, "\(file.lastPathComponent)")
    }

    @Test(
        "bpf_conformance: the engines agree on r0, memory, fault and instruction count",
        .enabled(if: suiteEnabled, Comment(rawValue: TestInputs.conformanceSkipMessage)),
        arguments: TestInputs.conformanceFiles)
    func enginesAgree(_ file: URL) {
        let divergence = ConformanceSuite.compareEngines(file: file)
        #expect(divergence == nil, "\(file.lastPathComponent): \(divergence.map(String.init(describing:)) ?? "")")
    }

    @Test(
        "the suite has all 313 files", .enabled(if: suiteEnabled, Comment(rawValue: TestInputs.conformanceSkipMessage)))
    func suiteIsComplete() {
        #expect(TestInputs.conformanceFiles.count == 313)
    }

    @Test("bpfsim's own cases", arguments: TestInputs.ownCaseFiles, Engine.allCases)
    func ownCase(_ file: URL, engine: Engine) {
        let outcome = ConformanceSuite.run(file: file, configuration: RunConfiguration(engine: engine))
        #expect(outcome.status == .passed, "\(file.lastPathComponent)")
    }
}
