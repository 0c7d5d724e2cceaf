import Foundation

/// Where tests find their inputs: the repository itself, and the `shared` folder beside
/// it (the conformance suite, the captures, the kernel oracle), which may be absent.
public enum TestInputs {
    /// The repository root, found from this file's location.
    public static let repository: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // BPFTestSupport
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    /// `../shared` beside the repository, when present.
    public static let shared: URL? = {
        let url = repository.deletingLastPathComponent().appendingPathComponent("shared")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }()

    /// The conformance suite: `$BPF_CONFORMANCE_DIR`, else `../shared/conformance/tests`.
    public static let conformanceDirectory: URL? = {
        if let path = ProcessInfo.processInfo.environment["BPF_CONFORMANCE_DIR"], !path.isEmpty,
            FileManager.default.fileExists(atPath: path)
        {
            return URL(fileURLWithPath: path)
        }
        guard let url = shared?.appendingPathComponent("conformance/tests"),
            FileManager.default.fileExists(atPath: url.path)
        else { return nil }
        return url
    }()

    /// The conformance suite's `.data` files, sorted; empty when the suite is absent.
    public static var conformanceFiles: [URL] {
        guard let directory = conformanceDirectory else { return [] }
        return dataFiles(in: directory)
    }

    /// bpfsim's own instruction tests, in the conformance format.
    public static var ownCaseFiles: [URL] {
        dataFiles(in: repository.appendingPathComponent("Tests/cases"))
    }

    public static func dataFiles(in directory: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".data") }.sorted().map { directory.appendingPathComponent($0) }
    }

    public static let conformanceSkipMessage =
        "the bpf_conformance suite is absent: set BPF_CONFORMANCE_DIR or put it at ../shared/conformance/tests"
}
