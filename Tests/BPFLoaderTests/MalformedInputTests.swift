import BPFLoader
import BPFTestSupport
import Foundation
import Testing

/// Just enough ELF64 reading to find the bytes a test corrupts (the loader itself reads
/// ELF only through libelf). Field offsets from the ELF specification (elf.h).
struct ELFBytes {
    var bytes: [UInt8]

    init(_ path: String) throws {
        bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
    func u32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
    func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
    mutating func put32(_ at: Int, _ value: UInt32) {
        for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    }

    /// e_shoff, e_shentsize, e_shnum, e_shstrndx.
    var sectionHeaders: Int { u64(0x28) }
    var sectionCount: Int { u16(0x3c) }

    func header(_ index: Int) -> Int { sectionHeaders + index * 64 }

    func name(ofSection index: Int) -> String {
        let names = u64(header(u16(0x3e)) + 24)
        let start = names + u32(header(index))
        let end = bytes[start...].firstIndex(of: 0)!
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// The index of the section called `name`.
    func section(_ name: String) -> Int {
        (0..<sectionCount).first { self.name(ofSection: $0) == name }!
    }

    /// The file offset of a section's bytes (sh_offset).
    func contents(_ name: String) -> Int { u64(header(section(name)) + 24) }

    func load(as name: String = "corrupt.o") throws(LoaderError) -> BPFObject {
        try BPFObject(bytes: bytes, path: name)
    }
}

/// A good object with one field corrupted must fail with exactly this error. The good
/// objects are legacy_maps.c and btf_maps.c; `llvm-readelf -S -r` shows the fields.
struct MalformedInputTests {
    func error(_ body: () throws(LoaderError) -> BPFObject) -> LoaderError? {
        do {
            _ = try body()
            return nil
        } catch {
            return error
        }
    }

    @Test func truncatedHeader() throws {
        var elf = try ELFBytes(try BPFCorpus.object("legacy_maps"))
        elf.bytes = Array(elf.bytes.prefix(40))
        let failure = try #require(error { () throws(LoaderError) in try elf.load() })
        #expect(failure.code == "truncated")
        #expect(
            failure.description
                == "corrupt.o: offset 0x0: the file is truncated: 64 bytes are needed here, 40 are present")
    }

    @Test func truncatedBeforeTheSectionHeaders() throws {
        var elf = try ELFBytes(try BPFCorpus.object("legacy_maps"))
        let headers = elf.sectionHeaders
        elf.bytes = Array(elf.bytes.prefix(headers + 100))
        let failure = try #require(error { () throws(LoaderError) in try elf.load() })
        #expect(failure.code == "truncated")
        #expect(
            failure.description
                == "corrupt.o: offset 0x\(String(headers, radix: 16)): the file is truncated: \(elf.sectionCount * 64) bytes are needed here, 100 are present"
        )
    }

    @Test func notAnELFFile() throws {
        let failure = try #require(
            error { () throws(LoaderError) in
                try BPFObject(bytes: Array("#!/bin/sh\necho hello\n".utf8), path: "script.sh")
            })
        #expect(failure.code == "not_elf")
        #expect(failure.description == "script.sh: offset 0x0: not an ELF file (the first bytes are not 7f 45 4c 46)")
        #expect(error { () throws(LoaderError) in try BPFObject(bytes: [], path: "empty.o") }?.code == "not_elf")
    }

    @Test func wrongMachine() throws {
        var elf = try ELFBytes(try BPFCorpus.object("legacy_maps"))
        elf.bytes[18] = 62  // EM_X86_64
        let failure = try #require(error { () throws(LoaderError) in try elf.load() })
        #expect(failure.code == "wrong_machine")
        #expect(failure.offset == 18)
        #expect(failure.message == "e_machine is 62, not EM_BPF (247): this is not a BPF object")
    }

    @Test func wrongClassAndEndianness() throws {
        var elf = try ELFBytes(try BPFCorpus.object("legacy_maps"))
        elf.bytes[4] = 1  // ELFCLASS32
        #expect(error { () throws(LoaderError) in try elf.load() }?.code == "wrong_class")
        elf.bytes[4] = 2
        elf.bytes[5] = 2  // ELFDATA2MSB
        let failure = try #require(error { () throws(LoaderError) in try elf.load() })
        #expect(failure.code == "wrong_endianness")
        #expect(failure.offset == 5)
    }

    /// `.relsocket`'s sh_info names the section it relocates (3, `socket`); make it 99.
    @Test func badSectionIndexInARelocationSection() throws {
        var elf = try ELFBytes(try BPFCorpus.object("legacy_maps"))
        elf.put32(elf.header(elf.section(".relsocket")) + 44, 99)
        let failure = try #require(error { () throws(LoaderError) in try elf.load() })
        #expect(failure.code == "bad_section_index")
        #expect(failure.section == ".relsocket")
        #expect(
            failure.message
                == "sh_info (the section it relocates) names section 99, but the file has \(elf.sectionCount) sections")
    }

    /// The first relocation of `.relsocket` (r_info's upper half is the symbol index).
    @Test func badSymbolIndexInARelocation() throws {
        var elf = try ELFBytes(try BPFCorpus.object("legacy_maps"))
        elf.put32(elf.contents(".relsocket") + 12, 5000)
        let failure = try #require(error { () throws(LoaderError) in try elf.load() })
        #expect(failure.code == "bad_symbol_index")
        #expect(failure.section == ".relsocket")
        #expect(failure.offset == 0)
        #expect(failure.message.hasPrefix("the relocation names symbol 5000, but the symbol table has "))
    }

    /// packet_count's `type` is the first u32 of the `maps` section; 99 is no map type.
    @Test func unknownLegacyMapType() throws {
        var elf = try ELFBytes(try BPFCorpus.object("legacy_maps"))
        elf.put32(elf.contents("maps"), 99)
        let failure = try #require(error { () throws(LoaderError) in try elf.load() })
        #expect(failure.code == "unknown_map_type")
        #expect(
            failure.description
                == "corrupt.o: section 'maps' offset 0x0: map 'packet_count' has type 99, which is not a kernel map type"
        )
        // conn_table is the second definition, 20 bytes in.
        var second = try ELFBytes(try BPFCorpus.object("legacy_maps"))
        second.put32(second.contents("maps") + 20, 1000)
        let again = try #require(error { () throws(LoaderError) in try second.load() })
        #expect(again.offset == 20)
        #expect(again.message == "map 'conn_table' has type 1000, which is not a kernel map type")
    }

    /// A BTF map's type is the length of the array `__uint(type, ...)` points to: in
    /// btf_maps.o the first map's is the ARRAY with nelems 1 (BPF_MAP_TYPE_HASH). Change
    /// that array's element count to 77.
    @Test func unknownBTFMapType() throws {
        let path = try BPFCorpus.object("btf_maps")
        let object = try BPFObject(path: path)
        let btf = try #require(object.btf)
        let flowsVar = try #require(btf.firstType(named: "flows", kind: .variable))
        guard case .members(let members) = try #require(btf.type(flowsVar.sizeOrType)).detail else {
            Issue.record("flows is not a struct")
            return
        }
        let pointer = try #require(btf.type(members[0].type))
        let arrayID = pointer.sizeOrType
        // Find the ARRAY's record: walk the type section as the format lays it out.
        var elf = try ELFBytes(path)
        let base = elf.contents(".BTF")
        let typesStart = base + elf.u32(base + 4) + elf.u32(base + 8)
        var position = typesStart
        for id in 1..<arrayID {
            let info = elf.u32(position + 4)
            let vlen = info & 0xffff
            position += 12
            switch (info >> 24) & 0x1f {
            case 1, 14, 17: position += 4
            case 3: position += 12
            case 4, 5, 15: position += 12 * vlen
            case 6, 13: position += 8 * vlen
            case 19: position += 12 * vlen
            default: break
            }
            _ = id
        }
        #expect((elf.u32(position + 4) >> 24) & 0x1f == 3)  // BTF_KIND_ARRAY
        #expect(elf.u32(position + 20) == 1)  // nelems == BPF_MAP_TYPE_HASH
        elf.put32(position + 20, 77)
        let failure = try #require(error { () throws(LoaderError) in try elf.load() })
        #expect(failure.code == "unknown_map_type")
        #expect(failure.section == ".maps")
        #expect(failure.message == "map 'flows' has type 77, which is not a kernel map type")
    }

    @Test func malformedBTF() throws {
        var elf = try ELFBytes(try BPFCorpus.object("btf_maps"))
        let base = elf.contents(".BTF")
        elf.bytes[base] = 0x00  // magic
        let failure = try #require(error { () throws(LoaderError) in try elf.load() })
        #expect(failure.code == "malformed_btf")
        #expect(failure.section == ".BTF" && failure.offset == 0)

        var kinds = try ELFBytes(try BPFCorpus.object("btf_maps"))
        let typesStart = base + kinds.u32(base + 4) + kinds.u32(base + 8)
        kinds.put32(typesStart + 4, 31 << 24)  // the first type gets kind 31
        let badKind = try #require(error { () throws(LoaderError) in try kinds.load() })
        #expect(badKind.code == "malformed_btf")
        #expect(badKind.message == "type [1] has unknown kind 31")
        #expect(badKind.offset == kinds.u32(base + 4) + kinds.u32(base + 8))
    }

    /// Truncating at any point, or flipping any byte of the headers, must end in a
    /// `LoaderError` or a successful load, never a crash.
    @Test(arguments: ["legacy_maps", "btf_maps", "subprograms", "global_data", "map_in_map"])
    func noCorruptionCrashes(name: String) throws {
        let good = try ELFBytes(try BPFCorpus.object(name))
        for length in stride(from: 0, to: good.bytes.count, by: 97) {
            var cut = good
            cut.bytes = Array(good.bytes.prefix(length))
            #expect(error { () throws(LoaderError) in try cut.load() } != nil, "length \(length)")
        }
        // Every byte of the ELF header, every third byte of the section header table, and
        // every other byte of the first 256 of .BTF, .BTF.ext, .symtab, maps and the code
        // relocations, set to 0xff.
        var offsets =
            Array(0..<64)
            + Array(stride(from: good.sectionHeaders, to: good.sectionHeaders + good.sectionCount * 64, by: 3))
        for index in 1..<good.sectionCount {
            let sectionName = good.name(ofSection: index)
            guard
                sectionName.hasPrefix(".BTF") || sectionName == ".symtab" || sectionName == "maps"
                    || sectionName.hasPrefix(".rel") && !sectionName.contains("debug")
            else { continue }
            let start = good.contents(sectionName)
            offsets += Array(stride(from: start, to: min(start + 256, good.bytes.count), by: 2))
        }
        for offset in offsets {
            var bad = good
            bad.bytes[offset] = 0xff
            _ = error { () throws(LoaderError) in try bad.load() }
        }
    }
}
