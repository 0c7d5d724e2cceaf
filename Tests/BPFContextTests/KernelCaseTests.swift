import BPFSim
import BPFTestSupport
import Foundation
import Testing

/// The kernel's results for the programs of corpus/contexts (`expected.json`, written by
/// corpus/contexts/generate.py with BPF_PROG_TEST_RUN on Linux 6.18), replayed in bpfsim:
/// the same packet and `ctx_in` must give the same return value, `data_out`, `ctx_out`
/// and map contents, and an input the kernel refuses must be refused with its errno.
enum KernelCases {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let source: String
        let defines: [String]
        let program: String
        let data: [UInt8]?
        let ctx: [UInt8]?
        let expected: [String: any Sendable]
        var testDescription: String { name }
    }

    static var document: [String: Any] {
        let url = BPFCorpus.contextsDirectory.appendingPathComponent("expected.json")
        guard let data = try? Data(contentsOf: url),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return object
    }

    static let all: [Case] = ((document["cases"] as? [[String: Any]]) ?? []).map { entry in
        Case(
            name: entry["name"] as! String, source: entry["source"] as! String,
            defines: entry["defines"] as? [String] ?? [], program: entry["program"] as! String,
            data: (entry["data"] as? String).map(bytes), ctx: (entry["ctx"] as? String).map(bytes),
            expected: (entry["kernel"] as! [String: Any]).mapValues { sendable($0) })
    }

    static func sendable(_ value: Any) -> any Sendable {
        switch value {
        case let string as String: string
        case let number as NSNumber: number.uint64Value
        case let dictionary as [String: Any]: dictionary.mapValues { sendable($0) }
        default: String(describing: value)
        }
    }

    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            out.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return out
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
}

@Suite("Kernel cases")
struct KernelCaseTests {
    @Test("expected.json is present and covers every context program")
    func present() {
        #expect(KernelCases.all.count >= 80)
    }

    @Test(arguments: Engine.allCases, KernelCases.all)
    func replay(engine: Engine, kernelCase: KernelCases.Case) throws {
        let object = try BPFObject(
            path: try BPFCorpus.contextObject(kernelCase.source, defines: kernelCase.defines))
        let session = try Session(object: object, configuration: RunConfiguration(engine: engine))
        let index = try session.programIndex(named: kernelCase.program)
        let input: ProgramInput =
            if let data = kernelCase.data { .frame(Packet(data, context: kernelCase.ctx)) } else {
                .context(kernelCase.ctx ?? [])
            }
        let run = session.run(index, input: input)
        let expected = kernelCase.expected
        if let errno = expected["errno"] as? String {
            #expect(run.refusal?.errnoName == errno, "\(kernelCase.name): \(String(describing: run.refusal))")
            return
        }
        #expect(run.refusal == nil, "\(kernelCase.name): refused: \(String(describing: run.refusal))")
        #expect(run.execution.fault == nil, "\(kernelCase.name): \(String(describing: run.execution.fault))")
        #expect(
            UInt64(UInt32(truncatingIfNeeded: run.execution.returnValue)) == expected["retval"] as? UInt64,
            "\(kernelCase.name): retval")
        #expect(KernelCases.hex(run.dataOut ?? []) == expected["data_out"] as? String, "\(kernelCase.name): data_out")
        // The oracle echoes a raw tracepoint's ctx_in as ctx_out; the kernel returns no
        // context for those, so only skb runs compare it.
        if kernelCase.data != nil, let contextOut = expected["ctx_out"] as? String {
            #expect(run.contextOut.map(KernelCases.hex) == contextOut, "\(kernelCase.name): ctx_out")
        }
        let maps = expected["maps"] as? [String: any Sendable] ?? [:]
        for (name, entries) in maps {
            let expectedEntries = entries as? [String: any Sendable] ?? [:]
            let map = try #require(session.machine.map(named: name))
            var actual: [String: String] = [:]
            for entry in map.entries() where entry.value.contains(where: { $0 != 0 }) {
                let key = entry.key.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
                actual[String(key)] = KernelCases.hex(entry.value)
            }
            let wanted = expectedEntries.compactMapValues { $0 as? String }
            for key in Set(actual.keys).union(wanted.keys).sorted(by: { Int($0)! < Int($1)! }) {
                #expect(actual[key] == wanted[key], "\(kernelCase.name): \(name)[\(key)]")
            }
        }
    }
}
