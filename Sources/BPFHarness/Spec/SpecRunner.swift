import BPFSession
import Foundation

/// The outcome of one case on one backend.
public struct SpecCaseResult: Sendable, Codable, Hashable {
    public enum Status: String, Sendable, Codable {
        case passed = "pass"
        case failed = "fail"
        case skipped = "skip"
    }

    public var name: String
    /// `interp`, `jit`, `kernel`, or `verifier` for the spec's `verify:` check.
    public var backend: String
    public var status: Status
    public var seconds: Double
    /// Each failed expectation, expected against actual, with the spec line.
    public var failures: [String]
    /// Why the case was skipped.
    public var reason: String?
    /// Expectations that were not checked on this backend, and why.
    public var notes: [String]

    enum CodingKeys: String, CodingKey {
        case name, backend, status, seconds, failures, reason, notes
    }
}

/// The outcome of one spec file.
public struct SpecReport: Sendable, Codable, Hashable {
    public var file: String
    public var name: String
    /// Why the spec could not be read or prepared; its cases did not run.
    public var error: String?
    public var results: [SpecCaseResult]

    public var passed: Int { results.filter { $0.status == .passed }.count }
    public var failed: Int { results.filter { $0.status == .failed }.count + (error == nil ? 0 : 1) }
    public var skipped: Int { results.filter { $0.status == .skipped }.count }
    public var succeeded: Bool { failed == 0 }
}

/// Runs test specs (docs/specs.md) on bpfsim's engines or the kernel. Each case starts
/// from the spec's initial maps on a fresh machine; the inputs of one case share state.
/// The program is first checked with bpfsim's static verifier, as the kernel would check
/// it when loading: a spec that expects `verify: reject` has its cases skipped.
public struct SpecRunner: Sendable {
    public var backends: [Backend]
    /// Only cases whose name contains this run.
    public var filter: String?
    /// Whether bpfsim's verifier checks the program first (`--no-verify` turns it off:
    /// no `verify` result, and the cases run whatever the verifier would say).
    public var verify: Bool

    public init(backends: [Backend] = [.interpreter], filter: String? = nil, verify: Bool = true) {
        self.backends = backends
        self.filter = filter
        self.verify = verify
    }

    /// Every spec file `paths` names: files as given, directories searched for
    /// `*.spec.yaml` (recursively, sorted).
    public static func specFiles(_ paths: [String]) -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                let enumerator = FileManager.default.enumerator(atPath: path)
                var found: [String] = []
                while let item = enumerator?.nextObject() as? String {
                    if item.hasSuffix(".spec.yaml") || item.hasSuffix(".spec.yml") {
                        found.append((path as NSString).appendingPathComponent(item))
                    }
                }
                files += found.sorted()
            } else {
                files.append(path)
            }
        }
        return files
    }

    /// Runs one spec file; a spec that cannot be read is reported as an error, not thrown.
    public func run(path: String) -> SpecReport {
        do {
            return run(try TestSpec(path: path))
        } catch {
            return SpecReport(file: path, name: path, error: error.description, results: [])
        }
    }

    /// Runs a parsed spec.
    public func run(_ spec: TestSpec) -> SpecReport {
        var report = SpecReport(file: spec.file, name: spec.name, error: nil, results: [])
        let prepared: PreparedSpec
        do {
            prepared = try PreparedSpec(spec)
        } catch {
            report.error = error.description
            return report
        }
        var casesRun = true
        var verifyRejection: String?
        let verifyStart = ContinuousClock.now
        // The named program, or every program of the object when none is named (tracing
        // specs attach them all), checked as libbpf would load them.
        var firstLine: String?
        for program in verify ? prepared.verifiedPrograms : [] {
            if let error = Verifier.verify(object: prepared.object, program: program).error {
                let line = String(error.message.split(separator: "\n").first ?? "")
                firstLine = prepared.verifiedPrograms.count > 1 ? "\(program.name): \(line)" : line
                break
            }
        }
        let verifySeconds = Self.seconds(since: verifyStart)
        if !verify {
            // Not checked: the cases run.
        } else if let expected = spec.verify {
            var failures: [String] = []
            let where_ = expected.line.map { "line \($0): " } ?? ""
            if expected.accept, let firstLine {
                failures.append("\(where_)verify: expected accept, got reject: \(firstLine)")
            } else if !expected.accept && firstLine == nil {
                failures.append("\(where_)verify: expected reject, got accept")
            } else if !expected.accept, let message = expected.message, let firstLine, !firstLine.contains(message) {
                failures.append("\(where_)verify: expected a rejection containing '\(message)', got: \(firstLine)")
            }
            report.results.append(
                SpecCaseResult(
                    name: "verify", backend: "verifier", status: failures.isEmpty ? .passed : .failed,
                    seconds: verifySeconds, failures: failures, reason: nil, notes: []))
            if !expected.accept && firstLine != nil {
                casesRun = false
                verifyRejection = "the spec expects the verifier to reject the program"
            }
        } else if let firstLine {
            // Without an expectation the kernel's behaviour decides: a program it would refuse does not run.
            report.results.append(
                SpecCaseResult(
                    name: "verify", backend: "verifier", status: .failed, seconds: verifySeconds,
                    failures: ["bpfsim's verifier rejects the program (as the kernel would): \(firstLine)"],
                    reason: nil, notes: []))
            casesRun = false
            verifyRejection = "the verifier rejects the program"
        }
        for specCase in spec.cases {
            if let filter, !filter.isEmpty, !specCase.name.contains(filter) { continue }
            for backend in backends {
                if !casesRun {
                    report.results.append(
                        SpecCaseResult(
                            name: specCase.name, backend: backend.name, status: .skipped, seconds: 0, failures: [],
                            reason: verifyRejection, notes: []))
                    continue
                }
                let start = ContinuousClock.now
                var result = CaseExecution(prepared: prepared, specCase: specCase, backend: backend).run()
                result.seconds = Self.seconds(since: start)
                report.results.append(result)
            }
        }
        return report
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}

/// A spec with its object loaded and every value resolved against the object's maps.
struct PreparedSpec {
    let spec: TestSpec
    let object: BPFObject
    /// The program packet cases run; nil when the spec names none and the object has
    /// several (tracing cases then fire every attached program).
    let program: ObjectProgram?
    let programIndex: Int?
    var programName: String { program?.name ?? "" }
    /// What the verifier checks: the program, or every program when none is named.
    var verifiedPrograms: [ObjectProgram] { program.map { [$0] } ?? object.programs }
    /// (map, key, value) in the layout `BPFMap.update` takes.
    let initial: [(map: String, key: [UInt8], value: [UInt8], line: Int?)]

    init(_ spec: TestSpec) throws(SpecError) {
        self.spec = spec
        let path = try ObjectCache.objectPath(for: spec.object, spec: spec.file, line: spec.objectLine)
        do {
            object = try BPFObject(path: path)
        } catch {
            throw SpecError(file: spec.file, line: spec.objectLine, "object \(spec.object.lastPathComponent): \(error)")
        }
        let names = object.programs.map(\.name)
        if let wanted = spec.program {
            guard let index = names.firstIndex(of: wanted) else {
                var message = "no program named '\(wanted)' in \(spec.object.lastPathComponent)"
                if let guess = SpecError.closest(wanted, among: names) { message += " (did you mean '\(guess)'?)" }
                throw SpecError(
                    file: spec.file, line: spec.programLine, message + " (programs: \(names.joined(separator: ", ")))")
            }
            programIndex = index
        } else if names.count == 1 {
            programIndex = 0
        } else {
            programIndex = nil
            if spec.cases.contains(where: { !$0.isTracing }) {
                throw SpecError(
                    file: spec.file, line: spec.objectLine,
                    "\(spec.object.lastPathComponent) has \(names.count) programs; name the one packets run through with 'program:' (\(names.joined(separator: ", ")))"
                )
            }
        }
        let programs = object.programs
        program = programIndex.map { programs[$0] }
        var initial: [(String, [UInt8], [UInt8], Int?)] = []
        for contents in spec.maps {
            let map = try Self.mapSpec(contents.map, in: object, file: spec.file, line: contents.line)
            for element in contents.entries {
                let (key, value) = try Self.element(element, of: map, cpus: spec.cpus, file: spec.file)
                initial.append((map.name, key, value, element.line))
            }
        }
        self.initial = initial
        for specCase in spec.cases {
            if let program { try Self.checkVerdictNames(specCase, type: program.type, file: spec.file) }
            for expectation in specCase.expect.maps {
                _ = try Self.mapSpec(expectation.map, in: object, file: spec.file, line: expectation.line)
            }
        }
    }

    static func mapSpec(_ name: String, in object: BPFObject, file: String, line: Int?) throws(SpecError) -> MapSpec {
        guard let map = object.maps.first(where: { $0.name == name }) else {
            let names = object.maps.map(\.name)
            var message = "no map named '\(name)' in the object"
            if let guess = SpecError.closest(name, among: names) { message += " (did you mean '\(guess)'?)" }
            throw SpecError(file: file, line: line, message + " (maps: \(names.joined(separator: ", ")))")
        }
        return map
    }

    /// The key and the value as `BPFMap.update` takes them (per-CPU: one padded value per CPU).
    static func element(_ element: TestSpec.MapElement, of map: MapSpec, cpus: Int, file: String) throws(SpecError)
        -> ([UInt8], [UInt8])
    {
        let keyless = map.type == .queue || map.type == .stack || map.type == .bloomFilter
        var key: [UInt8] = []
        if let keySpec = element.key {
            key = try keySpec.resolve(width: map.keySize, file: file, place: "key of \(map.name)")
            guard key.count == map.keySize else {
                throw SpecError(
                    file: file, line: element.line,
                    "key of \(map.name): \(key.count) bytes, but the map's keys have \(map.keySize)")
            }
        } else if !keyless {
            throw SpecError(file: file, line: element.line, "an element of \(map.name) needs a key")
        }
        let stride = (map.valueSize + 7) & ~7
        func value(_ typed: TypedBytes) throws(SpecError) -> [UInt8] {
            let bytes = try typed.resolve(width: map.valueSize, file: file, place: "value of \(map.name)")
            guard bytes.count == map.valueSize else {
                throw SpecError(
                    file: file, line: element.line,
                    "value of \(map.name): \(bytes.count) bytes, but the map's values have \(map.valueSize)")
            }
            return bytes
        }
        if map.type.isPerCPU {
            var values: [[UInt8]] = []
            if let list = element.values {
                guard list.count <= cpus else {
                    throw SpecError(
                        file: file, line: element.line,
                        "\(map.name): \(list.count) per-CPU values, but the spec has \(cpus) CPUs (cpus:)")
                }
                for item in list { values.append(try value(item)) }
                values += Array(repeating: Array(repeating: 0, count: map.valueSize), count: cpus - list.count)
            } else if let single = element.value {
                values = Array(repeating: try value(single), count: cpus)
            }
            return (key, values.flatMap { $0 + Array(repeating: 0, count: stride - $0.count) })
        }
        guard element.values == nil, let single = element.value else {
            throw SpecError(file: file, line: element.line, "\(map.name) is not a per-CPU map: give 'value'")
        }
        return (key, try value(single))
    }

    /// The verdict names a program of `type` can give, for checking a spec's spelling.
    static func verdictNames(_ type: ProgramType) -> [String]? {
        switch type {
        case .xdp: XDPAction.allCases.map(\.kernelName)
        case .schedCls, .schedAct: TCAction.allCases.map(\.kernelName)
        case .cgroupSkb: ["allow", "deny"]
        default: nil
        }
    }

    static func checkVerdictNames(_ specCase: TestSpec.Case, type: ProgramType, file: String) throws(SpecError) {
        var names: [(String, Int?)] = []
        if let verdict = specCase.expect.last.verdict { names.append(verdict) }
        if case .packets(let inputs) = specCase.kind {
            names += inputs.compactMap { $0.expect.verdict }
        }
        names += (specCase.expect.verdictCounts ?? []).map { ($0.name, $0.line) }
        names += (specCase.expect.perPacket ?? []).map { ($0.verdict, $0.line) }
        for (name, line) in names where name != "fault" {
            if type == .socketFilter {
                guard YAMLNode.integer(name) != nil || name == "drop" else {
                    throw SpecError(
                        file: file, line: line,
                        "verdict '\(name)': a socket filter's verdict is the number of bytes it keeps (0 or drop drops)"
                    )
                }
                continue
            }
            guard let known = verdictNames(type) else {
                throw SpecError(
                    file: file, line: line,
                    "verdict '\(name)': a \(type.kernelName) program has no verdict names; expect retval instead")
            }
            if !known.contains(name) {
                var message = "unknown verdict '\(name)' for program type \(type.kernelName)"
                if let guess = SpecError.closest(name, among: known) { message += " (did you mean '\(guess)'?)" }
                throw SpecError(file: file, line: line, message + " (verdicts: \(known.joined(separator: ", ")))")
            }
        }
    }
}

/// Compiled C sources, cached by path, size and modification time for the process.
enum ObjectCache {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var compiled: [String: String] = [:]

    /// The object file for `url`: itself for a `.o`, clang's output for a `.c`
    /// (`clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c`).
    static func objectPath(for url: URL, spec: String, line: Int? = nil) throws(SpecError) -> String {
        let path = url.path
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
            throw SpecError(file: spec, line: line, "object: \(path) does not exist")
        }
        guard path.hasSuffix(".c") else { return path }
        let stamp =
            "\(path)|\(attributes[.size] ?? 0)|\((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        lock.lock()
        defer { lock.unlock() }
        if let cached = compiled[stamp], FileManager.default.fileExists(atPath: cached) { return cached }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "bpfsim-spec-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let output = directory.appendingPathComponent(
            "\(compiled.count)-\(url.deletingPathExtension().lastPathComponent).o")
        let errors = directory.appendingPathComponent("clang-\(compiled.count).err")
        FileManager.default.createFile(atPath: errors.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", path, "-o", output.path,
        ]
        do {
            process.standardError = try FileHandle(forWritingTo: errors)
            process.standardOutput = FileHandle.nullDevice
            try process.run()
        } catch {
            throw SpecError(file: spec, line: line, "cannot run clang to compile \(url.lastPathComponent): \(error)")
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            let lines = text.split(separator: "\n").prefix(6).joined(separator: "\n")
            throw SpecError(file: spec, line: line, "clang failed on \(url.lastPathComponent):\n\(lines)")
        }
        compiled[stamp] = output.path
        return output.path
    }
}
