import BPFSim
import BPFTestSupport
import Foundation
import Testing

/// What the verifier accepts must not fault when it runs: the accepted XDP programs of
/// the test programs and the corpus run in the interpreter on packets of every length
/// of lengths around the usual header boundaries (random contents, a fixed seed), and none may fault.
struct AcceptedProgramsRunTests {
    struct Candidate: CustomTestStringConvertible, Sendable {
        let name: String
        let instructions: [Instruction]
        let maps: [MapSpec]
        var testDescription: String { name }
    }

    static var candidates: [Candidate] {
        var result: [Candidate] = []
        for program in VerifierProgram.all where program.kernel == "accept" && program.programType == .xdp {
            guard let instructions = try? Assembler.assemble(program.text) else { continue }
            result.append(Candidate(name: program.name, instructions: instructions, maps: program.maps))
        }
        for program in CorpusProgram.all {
            guard let object = try? program.object(), let objectProgram = try? object.program(named: program.program),
                objectProgram.type == .xdp
            else { continue }
            let verdict = Verifier.verify(object: object, program: objectProgram, withBTF: false)
            guard verdict.accepted else { continue }
            result.append(Candidate(name: program.key, instructions: objectProgram.instructions, maps: object.maps))
        }
        return result
    }

    @Test(arguments: candidates)
    func neverFaults(candidate: Candidate) throws {
        let verdict = Verifier.verify(
            instructions: candidate.instructions, type: .xdp, maps: candidate.maps,
            options: VerifierOptions(hasFunctionInfo: false))
        #expect(verdict.accepted)
        let definition = ProgramDefinition(name: candidate.name, type: .xdp, instructions: candidate.instructions)
        let session = try Session(programs: [definition], maps: candidate.maps)
        var seed: UInt64 = 0x9e37_79b9_7f4a_7c15
        for length in [0, 1, 2, 13, 14, 15, 19, 20, 33, 34, 35, 41, 42, 54, 55, 60, 64, 80] {
            var packet: [UInt8] = []
            for _ in 0..<length {
                seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                packet.append(UInt8(truncatingIfNeeded: seed >> 33))
            }
            // Some packets look like IPv4 over Ethernet, so parsers go deeper.
            if length >= 14 && length % 2 == 0 {
                packet[12] = 0x08
                packet[13] = 0x00
                if length >= 34 { packet[14] = 0x45 }
            }
            let run = session.run(0, input: .packet(packet))
            guard let fault = run.execution.fault else { continue }
            if case .budgetExhausted = fault.kind { continue }
            Issue.record("\(candidate.name) faulted on a \(length)-byte packet: \(fault)")
            return
        }
    }
}
