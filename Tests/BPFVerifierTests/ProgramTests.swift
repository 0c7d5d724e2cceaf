import BPFCore
import BPFRuntime
import BPFTestSupport
import BPFSim
import BPFVerifier
import Foundation
import Testing

/// A program of Tests/verifier/programs: bpfsim assembly with the kernel's verdict pinned
/// by Tests/verifier/generate.py.
struct VerifierProgram: CustomTestStringConvertible, Sendable {
    let name: String
    let text: String

    var testDescription: String { name }

    static let directory = TestInputs.repository.appendingPathComponent("Tests/verifier/programs")

    static var all: [VerifierProgram] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".s") }.sorted().compactMap { name in
            guard let text = try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8) else {
                return nil
            }
            return VerifierProgram(name: name, text: text)
        }
    }

    func header(_ key: String) -> [String] {
        text.split(separator: "\n").compactMap { line -> String? in
            let prefix = "# \(key):"
            guard line.hasPrefix(prefix) else { return nil }
            return line.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces)
        }
    }

    var programType: ProgramType {
        let name = header("prog-type").first ?? "xdp"
        switch name {
        case "socket": return .socketFilter
        case "tc": return .schedCls
        default: return ProgramType.allCases.first { $0.kernelName == name }!
        }
    }

    var maps: [MapSpec] { header("map").compactMap(MapSpec.init(commandLine:)) }

    /// `accept`, or the kernel's first error line.
    var kernel: String { header("kernel").first ?? "" }

    func verdict() throws -> VerifierResult {
        let instructions = try Assembler.assemble(text)
        return Verifier.verify(
            instructions: instructions, type: programType, maps: maps,
            options: VerifierOptions(hasFunctionInfo: false))
    }
}

struct ProgramTests {
    @Test(arguments: VerifierProgram.all)
    func firstLineMatchesTheKernel(program: VerifierProgram) throws {
        let verdict = try program.verdict()
        if program.kernel == "accept" {
            #expect(verdict.accepted, "refused: \(verdict.error?.message ?? "")")
        } else {
            #expect(verdict.error?.message == program.kernel)
        }
    }

    @Test func everyRefusalHasAnExplanationAndAPlace() throws {
        for program in VerifierProgram.all where program.kernel != "accept" {
            let verdict = try program.verdict()
            guard let error = verdict.error else { continue }
            #expect(!error.explanation.isEmpty, "\(program.name)")
            #expect(!error.code.isEmpty, "\(program.name)")
        }
    }

    @Test func aRefusalShowsThePathThatLedThere() throws {
        let program = try #require(VerifierProgram.all.first { $0.name == "pkt-short-bounds-check.s" })
        let error = try #require(try program.verdict().error)
        #expect(error.index == 6)
        // The loads of data and data_end, the check, and the failing load.
        let indices = error.path.map(\.index)
        #expect(indices.last == 6)
        #expect(indices.contains(0))
        #expect(error.path.contains { $0.note == "not taken" })
    }
}
