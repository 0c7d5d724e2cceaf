import Foundation

/// Compiles the BPF C programs of `corpus/elf` (and ../shared's benchmarks) with the
/// toolchain's clang into a temporary directory, once per test process, and hands out
/// the object files' paths. Object files are never committed.
public enum BPFCorpus {
    public struct CompileError: Error, CustomStringConvertible {
        public let description: String
    }

    /// `corpus/elf` in the repository.
    public static let directory = TestInputs.repository.appendingPathComponent("corpus/elf")

    /// The C files of the corpus, without extension, sorted.
    public static var names: [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".c") }.map { String($0.dropLast(2)) }.sorted()
    }

    /// The object file for `corpus/elf/NAME.c`, compiled on first use.
    public static func object(_ name: String) throws -> String {
        try compile(source: directory.appendingPathComponent(name + ".c").path, defines: [], debugInfo: true)
    }

    /// The object file for any BPF C file (tests keep their own programs beside them),
    /// built like the corpus: `-O2 -g -target bpf`.
    public static func object(source: URL) throws -> String {
        try compile(source: source.path, defines: [], debugInfo: true)
    }

    /// An input file `../shared/bench/progs/gen_inputs.c` writes (`buf1500.bin`,
    /// `pkt_vlan_v4_tcp.bin`, `pkt_v4_tcp.bin`); the generator is built and run once.
    public static func benchInput(_ name: String) throws -> [UInt8] {
        guard let benchDirectory else { throw CompileError(description: "../shared/bench is absent") }
        lock.lock()
        defer { lock.unlock() }
        let directory = outputDirectory.appendingPathComponent("bench-inputs")
        let file = directory.appendingPathComponent(name)
        if !FileManager.default.fileExists(atPath: file.path) {
            try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let generator = outputDirectory.appendingPathComponent("gen_inputs").path
            let (built, errors) = try run(
                "clang", ["-O2", "-o", generator, benchDirectory.appendingPathComponent("gen_inputs.c").path])
            guard built == 0 else { throw CompileError(description: "clang failed on gen_inputs.c:\n\(errors)") }
            let (status, output) = try run(generator, [directory.path])
            guard status == 0 else { throw CompileError(description: "gen_inputs failed:\n\(output)") }
        }
        return Array(try Data(contentsOf: file))
    }

    /// `corpus/contexts`: programs for every program type's context, with kernel results.
    public static let contextsDirectory = TestInputs.repository.appendingPathComponent("corpus/contexts")

    /// A program of `corpus/contexts` (`source` with its `.c`), built with `-D` defines.
    public static func contextObject(_ source: String, defines: [String] = []) throws -> String {
        try compile(source: contextsDirectory.appendingPathComponent(source).path, defines: defines, debugInfo: true)
    }

    /// `corpus/verifier`: programs that teach the kernel verifier's rules.
    public static let verifierDirectory = TestInputs.repository.appendingPathComponent("corpus/verifier")

    /// The C files of `corpus/verifier`, without extension, sorted.
    public static var verifierNames: [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: verifierDirectory.path)) ?? []
        return files.filter { $0.hasSuffix(".c") }.map { String($0.dropLast(2)) }.sorted()
    }

    /// The object file for `corpus/verifier/NAME.c`, compiled on first use.
    public static func verifierObject(_ name: String) throws -> String {
        try compile(source: verifierDirectory.appendingPathComponent(name + ".c").path, defines: [], debugInfo: true)
    }

    /// `../shared/bench/progs`, when present.
    public static let benchDirectory: URL? = {
        guard let url = TestInputs.shared?.appendingPathComponent("bench/progs"),
            FileManager.default.fileExists(atPath: url.path)
        else { return nil }
        return url
    }()

    /// The benchmark programs (every `.c` there except the input generator).
    public static var benchNames: [String] {
        guard let benchDirectory else { return [] }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: benchDirectory.path)) ?? []
        return files.filter { $0.hasSuffix(".c") && $0 != "gen_inputs.c" }.map { String($0.dropLast(2)) }.sorted()
    }

    /// A benchmark built as its README says: `-DVARIANT_XDP` with `-g`, `-DVARIANT_MEM` without.
    /// `debugInfo` overrides that choice.
    public static func benchObject(_ name: String, variant: String, debugInfo: Bool? = nil) throws -> String {
        guard let benchDirectory else { throw CompileError(description: "../shared/bench is absent") }
        return try compile(
            source: benchDirectory.appendingPathComponent(name + ".c").path, defines: ["VARIANT_" + variant],
            debugInfo: debugInfo ?? (variant == "XDP"))
    }

    /// Where compiled objects go; removed with the machine's temporary files.
    static let outputDirectory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "bpfsim-corpus-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    private static let lock = NSLock()
    nonisolated(unsafe) private static var cache: [String: Result<String, CompileError>] = [:]

    /// `clang -O2 [-g] -target bpf -I/usr/include/x86_64-linux-gnu -c`, cached by source and defines.
    static func compile(source: String, defines: [String], debugInfo: Bool) throws -> String {
        let key = ([source] + defines + [debugInfo ? "g" : ""]).joined(separator: "|")
        lock.lock()
        defer { lock.unlock() }
        if let cached = cache[key] { return try cached.get() }
        let base = URL(fileURLWithPath: source).deletingPathExtension().lastPathComponent
        let suffix = defines.map { "." + $0.lowercased() }.joined() + (debugInfo ? ".g" : "")
        let output = outputDirectory.appendingPathComponent(base + suffix + ".o").path
        var arguments = ["-O2", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu"]
        if debugInfo { arguments.append("-g") }
        arguments += defines.map { "-D" + $0 }
        arguments += ["-c", source, "-o", output]
        let result: Result<String, CompileError>
        do {
            let (status, errors) = try run("clang", arguments)
            result =
                status == 0
                ? .success(output) : .failure(CompileError(description: "clang failed on \(source):\n\(errors)"))
        } catch {
            result = .failure(CompileError(description: "cannot run clang: \(error)"))
        }
        cache[key] = result
        return try result.get()
    }

    /// Runs a tool found on PATH; returns its exit status and standard error.
    public static func run(_ tool: String, _ arguments: [String]) throws -> (Int32, String) {
        let (status, _, errors) = try runCapturing(tool, arguments)
        return (status, errors)
    }

    /// Runs a tool found on PATH; returns its exit status, standard output and standard error.
    /// Output goes through temporary files, not pipes: FileHandle's pipe reads trap on an
    /// interrupted system call when several child processes run at once.
    public static func runCapturing(_ tool: String, _ arguments: [String]) throws -> (Int32, String, String) {
        let directory = FileManager.default.temporaryDirectory
        let outURL = directory.appendingPathComponent("bpfsim-run-\(UUID().uuidString).out")
        let errURL = directory.appendingPathComponent("bpfsim-run-\(UUID().uuidString).err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        process.waitUntilExit()
        let output = (try? Data(contentsOf: outURL)) ?? Data()
        let errors = (try? Data(contentsOf: errURL)) ?? Data()
        return (
            process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: errors, as: UTF8.self)
        )
    }

    /// Whether a tool is on PATH (the oracles: bpftool, llvm-readelf, llvm-objdump).
    public static func hasTool(_ tool: String) -> Bool {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        return paths.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
    }
}
