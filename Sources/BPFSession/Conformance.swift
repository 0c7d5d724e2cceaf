import Foundation

/// Runs tests in the bpf_conformance `.data` format: the upstream suite, and bpfsim's own
/// instruction tests in `Tests/cases`.
public enum ConformanceSuite {
    public struct Outcome: Sendable {
        public enum Status: Sendable, Equatable {
            case passed
            case failed(String)
            /// The file has no program or no expectation (upstream skips these too).
            case skipped(String)
        }

        public let name: String
        public let status: Status
        public let instructionCount: UInt64?

        public var passed: Bool { status == .passed }
    }

    /// `$BPF_CONFORMANCE_DIR`, else `../shared/conformance/tests` from the current
    /// directory, if it exists.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        if let path = environment["BPF_CONFORMANCE_DIR"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let fallback = URL(fileURLWithPath: "../shared/conformance/tests")
        return FileManager.default.fileExists(atPath: fallback.path) ? fallback : nil
    }

    /// The `.data` files of a directory, sorted by name.
    public static func files(in directory: URL) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "data" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    public static func run(file: URL, configuration: RunConfiguration = .init()) -> Outcome {
        let name = file.lastPathComponent
        let text: String
        do {
            text = try String(contentsOf: file, encoding: .utf8)
        } catch {
            return Outcome(
                name: name, status: .failed("cannot read: \(error.localizedDescription)"), instructionCount: nil)
        }
        return run(text: text, name: name, configuration: configuration)
    }

    public static func run(text: String, name: String, configuration: RunConfiguration = .init()) -> Outcome {
        let test: ConformanceTest
        let program: Program
        do {
            test = try ConformanceTest(parsing: text)
            let instructions = try test.instructions()
            if instructions.isEmpty {
                return Outcome(name: name, status: .skipped("no instructions"), instructionCount: nil)
            }
            program = try Program(instructions: instructions, options: configuration.validation)
        } catch {
            let parsed = try? ConformanceTest(parsing: text)
            if parsed?.expectedError != nil {
                return Outcome(name: name, status: .passed, instructionCount: nil)
            }
            return Outcome(name: name, status: .failed(error.description), instructionCount: nil)
        }
        guard test.expectedResult != nil || test.expectedError != nil else {
            return Outcome(name: name, status: .skipped("no result or error section"), instructionCount: nil)
        }
        let result: FlatRunResult
        do {
            result = try FlatRunner.run(program, memory: test.memory, configuration: configuration)
        } catch {
            return Outcome(
                name: name, status: test.expectedError != nil ? .passed : .failed(error.description),
                instructionCount: nil)
        }
        let execution = result.execution
        if let fault = execution.fault {
            let status: Outcome.Status = test.expectedError != nil ? .passed : .failed(fault.description)
            return Outcome(name: name, status: status, instructionCount: execution.instructionCount)
        }
        if let expectedError = test.expectedError {
            return Outcome(
                name: name,
                status: .failed("expected error '\(expectedError)', but r0 = \(hex(execution.returnValue))"),
                instructionCount: execution.instructionCount)
        }
        let expected = test.expectedResult ?? 0
        guard execution.returnValue == expected else {
            return Outcome(
                name: name, status: .failed("expected r0 = \(hex(expected)), got \(hex(execution.returnValue))"),
                instructionCount: execution.instructionCount)
        }
        return Outcome(name: name, status: .passed, instructionCount: execution.instructionCount)
    }

    static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

    /// Runs a test's program on both engines and returns how they differ, or nil when
    /// they agree (or the file has no runnable program).
    public static func compareEngines(file: URL, configuration: RunConfiguration = .init())
        -> EngineComparison.Divergence?
    {
        guard let text = try? String(contentsOf: file, encoding: .utf8),
            let test = try? ConformanceTest(parsing: text),
            let instructions = try? test.instructions(), !instructions.isEmpty,
            let program = try? Program(instructions: instructions, options: configuration.validation),
            let outcome = try? EngineComparison.run(program, memory: test.memory, configuration: configuration)
        else { return nil }
        return outcome.divergence
    }
}
