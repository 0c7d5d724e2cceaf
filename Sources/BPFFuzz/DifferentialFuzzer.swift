import BPFSession

/// Runs generated programs on the interpreter and the JIT and reports where they differ.
public enum DifferentialFuzzer {
    public struct Finding: Sendable, CustomStringConvertible {
        public let testCase: ProgramGenerator.Case
        /// How the engines differ, or why the generated program did not load (a generator bug).
        public let problem: String

        public var description: String {
            """
            seed \(testCase.seed): \(problem)
            -- asm
            \(testCase.assembly)-- mem
            \(testCase.memory.map { hex($0) }.joined(separator: " "))
            """
        }

        private func hex(_ byte: UInt8) -> String { (byte < 16 ? "0" : "") + String(byte, radix: 16) }
    }

    /// Generates the program for `seed`, runs it on both engines and returns the first
    /// divergence, or nil when they agree.
    public static func check(seed: UInt64) -> Finding? {
        check(ProgramGenerator.generate(seed: seed))
    }

    public static func check(_ testCase: ProgramGenerator.Case) -> Finding? {
        let program: Program
        do {
            program = try Program(instructions: try Assembler.assemble(testCase.assembly))
        } catch {
            return Finding(testCase: testCase, problem: "the generated program does not load: \(error)")
        }
        do {
            let outcome = try EngineComparison.run(program, memory: testCase.memory)
            return outcome.divergence.map { Finding(testCase: testCase, problem: $0.description) }
        } catch {
            return Finding(testCase: testCase, problem: "the program does not run: \(error)")
        }
    }
}
