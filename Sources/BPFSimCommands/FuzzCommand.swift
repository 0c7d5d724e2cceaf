import ArgumentParser
import BPFFuzz
import BPFSim
import Foundation

/// `bpfsim fuzz-jit` (hidden): random programs on the interpreter and the JIT, compared.
struct FuzzJIT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz-jit",
        abstract: "Run random programs on both engines and report the first divergence.",
        discussion: "Prints each divergence as a reproducible case (seed, assembly, memory) and exits 1 if any.",
        shouldDisplay: false
    )

    @Option(help: "The first seed.")
    var seed: UInt64 = 0

    @Option(help: "How many seeds to try (0: until --seconds runs out).")
    var count: UInt64 = 1000

    @Option(help: "Stop after this many seconds.")
    var seconds: Double = 0

    @Flag(help: "Print the program of --seed and its results, then stop.")
    var show = false

    func run() throws {
        if show {
            let testCase = ProgramGenerator.generate(seed: seed)
            print(testCase.assembly, terminator: "")
            let program = try Program(instructions: try Assembler.assemble(testCase.assembly))
            let outcome = try EngineComparison.run(program, memory: testCase.memory)
            for (name, result) in [("interp", outcome.interpreter), ("jit", outcome.jit)] {
                let execution = result.execution
                print(
                    "\(name): r0 = 0x\(String(execution.returnValue, radix: 16)), "
                        + "\(execution.instructionCount.map(String.init) ?? "?") instructions, "
                        + (execution.fault?.description ?? "no fault"))
            }
            print(outcome.divergence.map { "differ: \($0)" } ?? "agree")
            return
        }
        let start = Date()
        var tried: UInt64 = 0
        var found = 0
        var current = seed
        while count == 0 || tried < count {
            if seconds > 0 && Date().timeIntervalSince(start) > seconds { break }
            if let finding = DifferentialFuzzer.check(seed: current) {
                found += 1
                print("\(finding)\n")
            }
            tried += 1
            current &+= 1
        }
        print("\(tried) programs from seed \(seed): \(found) diverged")
        if found > 0 { throw ExitCode(1) }
    }
}
