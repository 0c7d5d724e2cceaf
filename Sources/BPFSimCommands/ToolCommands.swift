import ArgumentParser
import BPFLoader
import BPFSim
import Foundation

/// `bpfsim asm`: assembly text to raw instructions.
struct Assemble: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "asm",
        abstract: "Assemble conformance-syntax assembly into raw 8-byte instructions.",
        discussion: "The syntax is described in docs/assembly.md. Errors name the line."
    )

    @Argument(help: "Assembly text (.s), or a conformance test (.data).")
    var input: String

    @Option(name: .shortAndLong, help: "Where to write the instructions.")
    var output: String

    @Flag(help: "Refuse what the kernel refuses at load, not only what is malformed.")
    var kernelStrict = false

    func run() throws {
        let file: ProgramFile
        do {
            file = try ProgramFile(path: input)
            // Validate, so a program that cannot run is reported now, with its index.
            _ = try Program(
                instructions: file.instructions,
                options: ValidationOptions(strictness: kernelStrict ? .kernel : .conformance))
        } catch let error as ProgramError {
            printError("error: \(input): \(error)")
            throw ExitCode(1)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let bytes = Instruction.encode(file.instructions)
        guard FileManager.default.createFile(atPath: output, contents: Data(bytes)) else {
            printError("error: \(output): cannot write the file")
            throw ExitCode(1)
        }
    }
}

/// `bpfsim disasm`: raw instructions to assembly text.
struct Disassemble: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disasm",
        abstract: "Disassemble raw instructions into assembly that `bpfsim asm` reads back byte for byte.",
        discussion:
            """
            Each line ends with a comment giving its instruction index, the target of a jump and the name of a helper. \
            For a BPF object file (recognised by its ELF magic), every program is listed, or the one --program \
            names, with the C source lines from its BTF line info as comments.
            """
    )

    @Argument(help: "Raw instructions (.bin), assembly (.s), a conformance test (.data) or a BPF object file (.o).")
    var input: String

    @Option(help: "For an object file: the program (function name) to list.")
    var program: String?

    @Flag(help: "Show the JIT's x86-64 code (capstone's disassembly), each block under its instruction.")
    var jit = false

    func run() throws {
        if let handle = FileHandle(forReadingAtPath: input) {
            let magic = handle.readData(ofLength: 4)
            try? handle.close()
            if BPFObject.isELF(magic) {
                if jit {
                    try printJIT(objectPath: input)
                } else {
                    try ObjectDisassembly.print(path: input, program: program)
                }
                return
            }
        }
        if program != nil {
            printError("error: --program applies only to BPF object files")
            throw ExitCode(1)
        }
        do {
            let file = try ProgramFile(path: input)
            if jit {
                let session = try Session(
                    programs: [ProgramDefinition(name: input, type: .unspec, instructions: file.instructions)], maps: []
                )
                print(try JITListing.text(session.machine.programs[0]), terminator: "")
                return
            }
            print(Disassembler.text(file.instructions), terminator: "")
        } catch let error as ProgramError {
            printError("error: \(input): \(error)")
            throw ExitCode(1)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}

extension Disassemble {
    /// `disasm --jit OBJECT`: the JIT's code for one program of an object, with its C lines.
    func printJIT(objectPath: String) throws {
        do {
            let session = try Session(object: try BPFObject(path: objectPath))
            let index: Int
            if let program {
                index = try session.programIndex(named: program)
            } else if session.definitions.count == 1 {
                index = 0
            } else {
                throw CommandFailure(
                    "\(objectPath) has \(session.definitions.count) programs; choose one with --program (\(session.programNames.joined(separator: ", ")))"
                )
            }
            print(
                try JITListing.text(
                    session.machine.programs[index], sourceLines: session.definitions[index].sourceLines),
                terminator: "")
        } catch let error as LoaderError {
            printError("error: \(error)")
            throw ExitCode(1)
        } catch let error as SessionError {
            printError("error: \(objectPath): \(error)")
            throw ExitCode(1)
        } catch let error as CommandFailure {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}

/// `bpfsim conformance`: run a directory of `.data` tests.
struct Conformance: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run bpf_conformance tests (.data files) and report failures.",
        discussion: """
            DIR defaults to $BPF_CONFORMANCE_DIR, else ../shared/conformance/tests. Prints one line \
            per failure and ends with 'N passed, M failed'; exits 1 if any failed.
            """
    )

    @Argument(help: "A directory of .data files, or single .data files.")
    var paths: [String] = []

    @Flag(name: .shortAndLong, help: "Print a line for every test, not only failures.")
    var verbose = false

    @Option(help: "The engine: interp, jit, or both (each test on both, reporting where they differ).")
    var engine: EngineChoice = .interp

    func run() throws {
        var files: [URL] = []
        if paths.isEmpty {
            guard let directory = ConformanceSuite.defaultDirectory() else {
                printError(
                    "error: no conformance tests found: give DIR, set BPF_CONFORMANCE_DIR, or run from a checkout with ../shared/conformance/tests"
                )
                throw ExitCode(1)
            }
            files = try ConformanceSuite.files(in: directory)
        } else {
            for path in paths {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                    printError("error: \(path): no such file or directory")
                    throw ExitCode(1)
                }
                files +=
                    isDirectory.boolValue
                    ? try ConformanceSuite.files(in: URL(fileURLWithPath: path)) : [URL(fileURLWithPath: path)]
            }
        }
        var passed = 0
        var failed = 0
        var skipped = 0
        for file in files {
            var failures: [String] = []
            var outcome: ConformanceSuite.Outcome?
            for engine in engine.engines {
                let result = ConformanceSuite.run(file: file, configuration: RunConfiguration(engine: engine))
                outcome = outcome ?? result
                if case .failed(let message) = result.status {
                    failures.append(self.engine == .both ? "[\(engine.rawValue)] \(message)" : message)
                }
            }
            if engine == .both, let divergence = ConformanceSuite.compareEngines(file: file) {
                failures.append("engines differ: \(divergence)")
            }
            guard let outcome else { continue }
            if !failures.isEmpty {
                failed += 1
                for message in failures { print("FAIL \(outcome.name): \(message)") }
                continue
            }
            switch outcome.status {
            case .passed, .failed:
                passed += 1
                if verbose { print("PASS \(outcome.name)") }
            case .skipped(let reason):
                skipped += 1
                if verbose { print("SKIP \(outcome.name): \(reason)") }
            }
        }
        print("\(passed) passed, \(failed) failed" + (skipped > 0 ? ", \(skipped) skipped" : ""))
        if failed > 0 { throw ExitCode(1) }
    }
}
