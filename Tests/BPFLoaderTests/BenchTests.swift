import BPFLoader
import BPFRuntime
import BPFTestSupport
import Testing

/// The performance-anchor programs of ../shared/bench, built as its README says. Expected
/// values from that README: `-DVARIANT_XDP` gives program NAME in section `xdp` with a GPL
/// license; `-DVARIANT_MEM` gives function NAME in `.text`; map_lookup's `flows` is a
/// 1024-entry hash with 16-byte keys and values.
struct BenchTests {
    static let skip = Comment(rawValue: "../shared/bench is absent")

    @Test(.enabled(if: BPFCorpus.benchDirectory != nil, skip), arguments: BPFCorpus.benchNames)
    func xdpVariantLoads(name: String) throws {
        let object = try BPFObject(path: try BPFCorpus.benchObject(name, variant: "XDP"))
        let program = try object.program(named: name)
        #expect(program.section == "xdp" && program.type == .xdp)
        #expect(object.license == "GPL")
        _ = try program.validated()
        if name == "map_lookup" {
            #expect(object.maps.count == 1)
            let flows = try #require(object.maps.first)
            #expect(flows.name == "flows" && flows.type == .hash)
            #expect(flows.keySize == 16 && flows.valueSize == 16 && flows.maxEntries == 1024)
            #expect(program.instructions.contains { $0.opcode == 0x18 && $0.src == 5 && $0.immediate == 0 })
        }
    }

    @Test(.enabled(if: BPFCorpus.benchDirectory != nil, skip), arguments: BPFCorpus.benchNames)
    func memVariantLoads(name: String) throws {
        let path = try BPFCorpus.benchObject(name, variant: "MEM")
        if name == "map_lookup" {
            // Without -g there is no BTF to say what `flows` in `.maps` is; libbpf refuses
            // such an object too. With -g (which changes no instruction) it loads.
            #expect(throws: LoaderError.self) { try BPFObject(path: path) }
            do { _ = try BPFObject(path: path) } catch { #expect(error.code == "maps_without_btf") }
            let withBTF = try BPFObject(path: try BPFCorpus.benchObject(name, variant: "MEM", debugInfo: true))
            #expect(withBTF.maps.map(\.name) == ["flows"])
            _ = try withBTF.program(named: name).validated()
            return
        }
        let object = try BPFObject(path: path)
        let program = try object.program(named: name)
        #expect(program.section == ".text" && program.type == .unspec)
        _ = try program.validated()
        #expect(object.btf == nil)  // built without -g
    }
}
