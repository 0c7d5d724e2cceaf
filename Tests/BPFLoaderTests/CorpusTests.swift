import BPFCore
import BPFLoader
import BPFRuntime
import BPFTestSupport
import Testing

struct CorpusTests {
    @Test(arguments: BPFCorpus.names)
    func everyObjectLoadsAndValidates(name: String) throws {
        let object = try BPFObject(path: try BPFCorpus.object(name))
        #expect(!object.programs.isEmpty)
        for program in object.programs {
            _ = try program.validated()
        }
    }
}
