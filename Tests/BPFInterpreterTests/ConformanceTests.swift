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
        arguments: TestInputs.conformanceFiles)
    func conformance(_ file: URL) {
        let outcome = ConformanceSuite.run(file: file)
        #expect(outcome.status == .passed, "\(file.lastPathComponent)")
    }

    @Test(
        "the suite has all 313 files", .enabled(if: suiteEnabled, Comment(rawValue: TestInputs.conformanceSkipMessage)))
    func suiteIsComplete() {
        #expect(TestInputs.conformanceFiles.count == 313)
    }

    @Test("bpfsim's own cases", arguments: TestInputs.ownCaseFiles)
    func ownCase(_ file: URL) {
        let outcome = ConformanceSuite.run(file: file)
        #expect(outcome.status == .passed, "\(file.lastPathComponent)")
    }
}
