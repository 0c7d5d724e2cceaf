import BPFTestSupport
import Foundation
import Testing

/// `bpfsim inspect` and `bpfsim disasm` on corpus objects (expected values from the C
/// sources in corpus/elf and `llvm-readelf --sections`).
struct ObjectCommandTests {
    @Test func inspectPrintsAlignedTables() throws {
        let path = try BPFCorpus.object("legacy_maps")
        let result = bpfsim(["inspect", path])
        #expect(result.status == 0)
        #expect(
            result.out == """
                \(path): 1 program, 2 maps, license "GPL"

                programs:
                ID  NAME           SECTION  TYPE           ATTACH_TO  INSNS
                 0  count_packets  socket   socket_filter  -             20

                maps:
                ID  NAME          TYPE   KEY  VALUE  MAX_ENTRIES  FLAGS
                 0  packet_count  array    4      8          256  0x0
                 1  conn_table    hash     8     16         1000  0x1

                """)
    }

    @Test func inspectJSON() throws {
        let path = try BPFCorpus.object("map_in_map")
        let result = bpfsim(["inspect", path, "--json"])
        #expect(result.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        #expect(object["version"] as? Int == 1)
        #expect(object["license"] as? String == "GPL")
        let programs = try #require(object["programs"] as? [[String: Any]])
        #expect(programs.map { $0["name"] as? String } == ["tail_one", "tail_two", "dispatch"])
        #expect(programs[2]["type"] as? String == "xdp")
        #expect(programs[2]["expectedAttachType"] as? Int == 37)  // BPF_XDP
        let maps = try #require(object["maps"] as? [[String: Any]])
        #expect(maps.map { $0["name"] as? String } == ["inner_a", "inner_b", "outer", "jumps", "by_id"])
        #expect(maps[2]["initialEntries"] as? Int == 2)
        let inner = try #require(maps[2]["inner"] as? [String: Any])
        #expect(inner["type"] as? String == "array" && inner["maxEntries"] as? Int == 8)
    }

    @Test func inspectReportsLoaderErrors() throws {
        let path = try temporaryFile("bad.o", "\u{7f}ELF not really")
        let result = bpfsim(["inspect", path])
        #expect(result.status == 1)
        #expect(
            result.err
                == "error: \(path): offset 0x0: the file is truncated: 64 bytes are needed here, 15 are present\n")
        let json = bpfsim(["inspect", path, "--json"])
        #expect(json.status == 1)
        #expect(json.out.contains(#""code":"truncated""#))
    }

    @Test func disasmListsSourceLines() throws {
        let path = try BPFCorpus.object("line_info")
        let result = bpfsim(["disasm", path, "--program", "lines"])
        #expect(result.status == 0)
        #expect(
            result.out == """
                # lines: section socket, type socket_filter, 8 instructions
                # <lines>
                # line_info.c:15: int length = skb->len;
                ldxw %r1, [%r1]         # 0
                # line_info.c:16: int capped = clamp(length, 1500);
                call local +2           # 1  -> 4
                # line_info.c:17: return capped * 2;
                lsh32 %r0, 1            # 2
                exit                    # 3
                # <clamp>
                # line_info.c:5: static __attribute__((noinline)) int clamp(int value, int limit)
                mov32 %r0, %r1          # 4
                jslt32 %r0, 1500, +1    # 5  -> 7
                mov32 %r0, 1500         # 6
                # line_info.c:10: }
                exit                    # 7

                """)
    }

    @Test func disasmOfAnObjectReassembles() throws {
        let path = try BPFCorpus.object("global_data")
        let listing = bpfsim(["disasm", path])
        #expect(listing.status == 0)
        #expect(listing.out.contains("lddw %r2, map_idx_value 3, 4  # 19  map .bss"))
        let source = try temporaryFile("again.s", listing.out)
        let assembled = bpfsim(["asm", source, "-o", source + ".bin"])
        #expect(assembled.status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: source + ".bin")).count == 40 * 8)
    }

    @Test func disasmUnknownProgram() throws {
        let path = try BPFCorpus.object("multi_prog")
        let result = bpfsim(["disasm", path, "--program", "missing"])
        #expect(result.status == 1)
        #expect(
            result.err
                == "error: \(path): no program named 'missing' (the object has: xdp_pass_all, xdp_drop_all, xdp_drop_short, tc_first, tc_second)\n"
        )
    }
}
