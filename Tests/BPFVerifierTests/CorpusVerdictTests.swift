import BPFSim
import BPFTestSupport
import Foundation
import Testing

/// Every program of the corpus (corpus/elf and ../shared's benchmarks, XDP builds), with
/// the kernel's verdict recorded in Tests/verifier/kernel-verdicts.json. The kernel sees
/// the same relocated instructions bpfsim verifies, loaded by `kernel_oracle.py verify`
/// as a privileged loader with an fd array of the object's maps and no BTF, so bpfsim
/// verifies them the same way (`withBTF: false`).
///
/// Without root the test compares bpfsim's verdicts with the recorded ones. As root it
/// also asks the kernel again and checks the record; `BPFSIM_RECORD_VERDICTS=1`
/// rewrites the record from the kernel.
struct CorpusProgram: CustomTestStringConvertible, Sendable, Hashable {
    enum Source: Sendable, Hashable {
        case corpus(String)
        case verifier(String)
        case bench(String)
        /// corpus/programs: the XDP program corpus.
        case programs(String)
        /// corpus/contexts: a C file built with one -D define (or none).
        case contexts(String, define: String?)
    }

    let source: Source
    let program: String

    var key: String {
        switch source {
        case .corpus(let name): "corpus/\(name)/\(program)"
        case .verifier(let name): "verifier/\(name)/\(program)"
        case .bench(let name): "bench/\(name)/\(program)"
        case .programs(let name): "programs/\(name)/\(program)"
        case .contexts(let file, let define): "contexts/\(file)\(define.map { "+" + $0 } ?? "")/\(program)"
        }
    }

    var testDescription: String { key }

    func object() throws -> BPFObject {
        switch source {
        case .corpus(let name): try BPFObject(path: try BPFCorpus.object(name))
        case .verifier(let name): try BPFObject(path: try BPFCorpus.verifierObject(name))
        case .bench(let name): try BPFObject(path: try BPFCorpus.benchObject(name, variant: "XDP"))
        case .programs(let name): try BPFObject(path: try ProgramCorpus.object(name))
        case .contexts(let file, let define):
            try BPFObject(path: try BPFCorpus.contextObject(file, defines: define.map { [$0] } ?? []))
        }
    }

    /// Program types the kernel can load from bare instructions (no attach BTF id).
    static let loadable: Set<ProgramType> = [
        .socketFilter, .kprobe, .schedCls, .schedAct, .tracepoint, .xdp, .perfEvent, .cgroupSkb, .rawTracepoint,
    ]

    static var all: [CorpusProgram] {
        var result: [CorpusProgram] = []
        for name in BPFCorpus.names {
            guard let path = try? BPFCorpus.object(name), let object = try? BPFObject(path: path) else { continue }
            // Maps of maps need an inner map the bare loader cannot give.
            if object.maps.contains(where: { $0.inner != nil }) { continue }
            for program in object.programs where loadable.contains(program.type) {
                result.append(CorpusProgram(source: .corpus(name), program: program.name))
            }
        }
        for name in BPFCorpus.verifierNames {
            guard let path = try? BPFCorpus.verifierObject(name), let object = try? BPFObject(path: path) else { continue }
            for program in object.programs where loadable.contains(program.type) {
                result.append(CorpusProgram(source: .verifier(name), program: program.name))
            }
        }
        for name in BPFCorpus.benchNames {
            guard let path = try? BPFCorpus.benchObject(name, variant: "XDP"), let object = try? BPFObject(path: path)
            else { continue }
            for program in object.programs where program.type == .xdp {
                result.append(CorpusProgram(source: .bench(name), program: program.name))
            }
        }
        for name in ProgramCorpus.names {
            guard let path = try? ProgramCorpus.object(name), let object = try? BPFObject(path: path) else { continue }
            if object.maps.contains(where: { $0.inner != nil }) { continue }
            for program in object.programs where loadable.contains(program.type) {
                result.append(CorpusProgram(source: .programs(name), program: program.name))
            }
        }
        let contexts: [(String, String?)] = [
            ("skb_fields.c", "SOCKET"), ("skb_fields.c", "TC"), ("skb_fields.c", "CGROUP"), ("skb_helpers.c", nil),
            ("tracing.c", nil),
        ]
        for (file, define) in contexts {
            guard let path = try? BPFCorpus.contextObject(file, defines: define.map { [$0] } ?? []),
                let object = try? BPFObject(path: path)
            else { continue }
            for program in object.programs where loadable.contains(program.type) {
                result.append(CorpusProgram(source: .contexts(file, define: define), program: program.name))
            }
        }
        return result
    }
}

/// The recorded kernel verdicts.
struct KernelVerdict: Codable, Sendable, Equatable {
    /// `accept`, or the kernel's first error line.
    var kernel: String
    /// Instructions the kernel processed (`verified_insns`), when it accepted.
    var processed: Int?
}

enum VerdictRecord {
    static let url = TestInputs.repository.appendingPathComponent("Tests/verifier/kernel-verdicts.json")

    static func load() -> [String: KernelVerdict] {
        guard let data = try? Data(contentsOf: url) else { return [:] }
        return (try? JSONDecoder().decode([String: KernelVerdict].self, from: data)) ?? [:]
    }

    static func save(_ record: [String: KernelVerdict]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try (encoder.encode(record) + Data("\n".utf8)).write(to: url)
    }
}

struct OracleFailure: Error, CustomStringConvertible {
    let description: String
}

enum KernelOracle {
    static var path: String? {
        guard let shared = TestInputs.shared else { return nil }
        let path = shared.appendingPathComponent("tools/kernel_oracle.py").path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    static var available: Bool { getuid() == 0 && path != nil }

    /// The kernel's verdict on a program's instructions with the object's maps.
    static func verdict(_ program: ObjectProgram, maps: [MapSpec]) throws -> KernelVerdict {
        let binary = FileManager.default.temporaryDirectory.appendingPathComponent("bpfsim-verdict-\(UUID()).bin")
        try Data(Instruction.encode(program.instructions)).write(to: binary)
        defer { try? FileManager.default.removeItem(at: binary) }
        var arguments = [path!, "verify", "--prog-type", program.type.kernelName, "--insns", binary.path, "--json"]
        for map in maps {
            let name = map.name.replacingOccurrences(of: ".", with: "_")
            arguments += [
                "--map", "\(name):\(map.type.rawValue):\(map.keySize):\(map.valueSize):\(map.maxEntries):\(map.flags)",
            ]
        }
        let (_, output, errors) = try BPFCorpus.runCapturing("python3", arguments)
        guard let object = (try? JSONSerialization.jsonObject(with: Data(output.utf8))) as? [String: Any] else {
            throw OracleFailure(description: "kernel_oracle.py \(program.name): \(errors)")
        }
        if object["verdict"] as? String == "ACCEPT" {
            return KernelVerdict(kernel: "accept", processed: object["verified_insns"] as? Int)
        }
        return KernelVerdict(kernel: firstErrorLine(object["log"] as? String ?? ""), processed: nil)
    }

    /// The first line of the block of non-trace lines that ends a verifier log (as
    /// Tests/verifier/generate.py takes it).
    static func firstErrorLine(_ log: String) -> String {
        var lines = log.split(separator: "\n").map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        let tail = ["processed ", "verification time", "stack depth", "cur state", "old state"]
        while let last = lines.last, tail.contains(where: { last.hasPrefix($0) }) { lines.removeLast() }
        let trace = try! Regex(
            #"^(\d+: |from \d+ to \d+|;|\s*frame\d+:|R\d+(_w)?=|caller:|callee:|returning from|func#|Live regs|mark_precise|last_idx|regs=|parent|processed |verification time|stack depth|cur state|old state)"#
        )
        var block: [String] = []
        for line in lines.reversed() {
            if line.firstMatch(of: trace) != nil { break }
            block.append(line)
        }
        return block.last ?? lines.first ?? ""
    }
}

struct CorpusVerdictTests {
    static let record = VerdictRecord.load()

    @Test(arguments: CorpusProgram.all)
    func verdictMatchesTheKernel(program: CorpusProgram) throws {
        let object = try program.object()
        let objectProgram = try object.program(named: program.program)
        let verdict = Verifier.verify(object: object, program: objectProgram, withBTF: false)
        let expected = try #require(Self.record[program.key], "no recorded kernel verdict for \(program.key)")
        if expected.kernel == "accept" {
            #expect(verdict.accepted, "bpfsim refuses: \(verdict.error?.message ?? "")")
        } else {
            #expect(verdict.error?.message == expected.kernel)
        }
    }

    @Test(.enabled(if: KernelOracle.available, "needs root and ../shared/tools/kernel_oracle.py"))
    func recordMatchesTheKernel() throws {
        var fresh: [String: KernelVerdict] = [:]
        for program in CorpusProgram.all {
            let object = try program.object()
            fresh[program.key] = try KernelOracle.verdict(try object.program(named: program.program), maps: object.maps)
        }
        if ProcessInfo.processInfo.environment["BPFSIM_RECORD_VERDICTS"] == "1" {
            try VerdictRecord.save(fresh)
            return
        }
        for (key, verdict) in fresh.sorted(by: { $0.key < $1.key }) {
            #expect(Self.record[key]?.kernel == verdict.kernel, "\(key)")
        }
    }
}
