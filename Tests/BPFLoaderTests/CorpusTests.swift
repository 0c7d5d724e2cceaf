import BPFCore
import BPFLoader
import BPFRuntime
import BPFTestSupport
import Foundation
import Testing

func load(_ name: String) throws -> BPFObject {
    try BPFObject(path: try BPFCorpus.object(name))
}

/// The `lddw` instructions of a program with this pseudo source: (index, imm, second imm).
func pseudoLoads(_ program: ObjectProgram, source: UInt8) -> [(index: Int, imm: Int32, offset: Int32)] {
    var result: [(Int, Int32, Int32)] = []
    var i = 0
    while i < program.instructions.count {
        let instruction = program.instructions[i]
        if instruction.opcode == 0x18 {
            if instruction.src == source {
                result.append((i, instruction.immediate, program.instructions[i + 1].immediate))
            }
            i += 2
        } else {
            i += 1
        }
    }
    return result
}

struct CorpusTests {
    @Test(arguments: BPFCorpus.names)
    func everyObjectLoadsAndEveryProgramValidates(name: String) throws {
        let object = try load(name)
        #expect(!object.programs.isEmpty)
        #expect(object.license != nil)
        #expect(object.btf != nil)
        for program in object.programs {
            let validated = try program.validated()
            // Every function the loader placed is a function entry the validator sees.
            for function in program.functions { #expect(validated.functionEntries.contains(function.start)) }
            // Map references name maps of the object.
            for load in pseudoLoads(program, source: 5) + pseudoLoads(program, source: 6) {
                #expect(Int(load.imm) < object.maps.count)
            }
        }
    }

    /// Oracle: `llvm-readelf --symbols`. Each function the loader placed has the
    /// instruction count its symbol's size gives (size / 8).
    @Test(
        .enabled(if: BPFCorpus.hasTool("llvm-readelf"), "llvm-readelf is not installed"),
        arguments: BPFCorpus.names)
    func functionSizesMatchTheSymbolTable(name: String) throws {
        let path = try BPFCorpus.object(name)
        let (status, output, _) = try BPFCorpus.runCapturing("llvm-readelf", ["--symbols", path])
        #expect(status == 0)
        var sizes: [String: Int] = [:]
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 8 && fields[3] == "FUNC" { sizes[String(fields[7])] = Int(fields[2])! / 8 }
        }
        let object = try BPFObject(path: path)
        for program in object.programs {
            for function in program.functions { #expect(sizes[function.name] == function.count, "\(function.name)") }
            #expect(program.instructions.count == program.functions.map(\.count).reduce(0, +))
        }
    }
}

struct MapTests {
    /// Expected values from btf_maps.c; struct sizes from `bpftool btf dump file btf_maps.o`
    /// (`STRUCT 'flow_key' size=16`, `STRUCT 'counters' size=16`).
    @Test func btfDefinedMaps() throws {
        let object = try load("btf_maps")
        #expect(object.maps.map(\.name) == ["flows", "stats", "scratch", "recent", "events", "seen"])
        let flows = object.maps[0]
        #expect(flows.type == .hash && flows.keySize == 16 && flows.valueSize == 16 && flows.maxEntries == 1024)
        #expect(object.btf?.type(flows.btfKeyTypeID)?.name == "flow_key")
        #expect(object.btf?.type(flows.btfValueTypeID)?.name == "counters")
        let stats = object.maps[1]
        #expect(stats.type == .array && stats.keySize == 4 && stats.valueSize == 8 && stats.maxEntries == 16)
        #expect(stats.pinning == .byName)
        let scratch = object.maps[2]
        #expect(scratch.type == .percpuArray && scratch.keySize == 4 && scratch.valueSize == 24)
        #expect(scratch.btfKeyTypeID == 0 && scratch.btfValueTypeID == 0)
        let recent = object.maps[3]
        #expect(recent.type == .lruHash && recent.keySize == 8 && recent.valueSize == 4)
        #expect(recent.flags == MapFlags.noCommonLRU)
        let events = object.maps[4]
        #expect(events.type == .ringbuf && events.keySize == 0 && events.valueSize == 0 && events.maxEntries == 4096)
        let seen = object.maps[5]
        #expect(seen.type == .bloomFilter && seen.keySize == 0 && seen.valueSize == 4 && seen.mapExtra == 3)
        #expect(object.license == "Dual BSD/GPL")

        // Each helper call's map argument is the right map: flows, stats, scratch, recent,
        // events, seen are referenced in source order.
        let program = try object.program(named: "count_flows")
        #expect(pseudoLoads(program, source: 5).map(\.imm) == [0, 1, 2, 3, 4, 5])
    }

    /// Oracle: `bpftool btf dump file btf_maps.o`. Its `[N] STRUCT 'name' size=S` lines
    /// give the same ids and sizes as our BTF.
    @Test(.enabled(if: BPFCorpus.hasTool("bpftool"), "bpftool is not installed"))
    func btfAgreesWithBpftool() throws {
        let path = try BPFCorpus.object("btf_maps")
        let (status, output, _) = try BPFCorpus.runCapturing("bpftool", ["btf", "dump", "file", path])
        guard status == 0 else { return }  // bpftool may refuse without privileges; nothing to compare
        let btf = try #require(try BPFObject(path: path).btf)
        var compared = 0
        for line in output.split(separator: "\n") where line.hasPrefix("[") {
            let id = UInt32(line.dropFirst().prefix { $0 != "]" })!
            let kind = line.split(separator: " ")[1]
            let entry = try #require(btf.type(id))
            #expect(entry.kind.kernelName == kind, "\(line)")
            if let range = line.range(of: " size="), entry.kind != .dataSection {
                let size = Int(line[range.upperBound...].prefix { $0.isNumber })!
                #expect(btf.size(of: id) == size, "\(line)")
            }
            compared += 1
        }
        #expect(compared == btf.types.count - 1)
    }

    /// Expected values from map_in_map.c; symbol offsets from `llvm-readelf --symbols`.
    @Test func mapsOfMapsAndProgArrayInitialValues() throws {
        let object = try load("map_in_map")
        #expect(object.maps.map(\.name) == ["inner_a", "inner_b", "outer", "jumps", "by_id"])
        #expect(object.programs.map(\.name) == ["tail_one", "tail_two", "dispatch"])

        let outer = object.maps[2]
        #expect(outer.type == .arrayOfMaps && outer.keySize == 4 && outer.valueSize == 4 && outer.maxEntries == 4)
        let inner = try #require(outer.inner?.spec)
        #expect(inner.type == .array && inner.keySize == 4 && inner.valueSize == 8 && inner.maxEntries == 8)
        #expect(inner.name == "outer.inner")
        // .values = { [0] = &inner_a, [3] = &inner_b }: map indices 0 and 1.
        #expect(
            outer.initialEntries == [
                MapEntry(key: [0, 0, 0, 0], value: [0, 0, 0, 0]), MapEntry(key: [3, 0, 0, 0], value: [1, 0, 0, 0]),
            ])

        let jumps = object.maps[3]
        #expect(jumps.type == .progArray && jumps.keySize == 4 && jumps.valueSize == 4)
        // .values = { [1] = &tail_one, [2] = &tail_two }: program indices 0 and 1.
        #expect(
            jumps.initialEntries == [
                MapEntry(key: [1, 0, 0, 0], value: [0, 0, 0, 0]), MapEntry(key: [2, 0, 0, 0], value: [1, 0, 0, 0]),
            ])

        let byID = object.maps[4]
        #expect(byID.type == .hashOfMaps && byID.keySize == 8 && byID.valueSize == 4 && byID.initialEntries.isEmpty)
        let byIDInner = try #require(byID.inner?.spec)
        #expect(
            byIDInner.type == .hash && byIDInner.keySize == 4 && byIDInner.valueSize == 4 && byIDInner.maxEntries == 32)

        // dispatch looks up `outer` (index 2) and tail-calls through `jumps` (index 3).
        let dispatch = try object.program(named: "dispatch")
        #expect(pseudoLoads(dispatch, source: 5).map(\.imm) == [2, 3])
    }

    /// Expected values from legacy_maps.c (struct bpf_map_def initialisers).
    @Test func legacyMapsSection() throws {
        let object = try load("legacy_maps")
        #expect(
            object.maps == [
                MapSpec(name: "packet_count", type: .array, keySize: 4, valueSize: 8, maxEntries: 256),
                MapSpec(
                    name: "conn_table", type: .hash, keySize: 8, valueSize: 16, maxEntries: 1000,
                    flags: MapFlags.noPrealloc),
            ])
        #expect(object.license == "GPL")
        #expect(object.kernelVersion == 0x050a00)
        let program = try object.program(named: "count_packets")
        #expect(program.type == .socketFilter)
        #expect(pseudoLoads(program, source: 5).map(\.imm) == [0, 1])
    }

    /// Section sizes from `llvm-readelf --sections global_data.o` (.rodata 0x18, .data 0xc,
    /// .data.custom 0x8, .bss 0x10); variable offsets from `llvm-readelf --symbols`
    /// (limits at 8 in .rodata, flags_seen at 8 in .data, last_len at 4 and drops at 8 in .bss).
    @Test func globalDataBecomesArrayMaps() throws {
        let object = try load("global_data")
        #expect(object.maps.map(\.name) == [".rodata", ".data", ".data.custom", ".bss"])
        #expect(object.maps.map(\.section) == [".rodata", ".data", ".data.custom", ".bss"])
        #expect(object.maps.map(\.valueSize) == [24, 12, 8, 16])
        #expect(object.maps.map(\.flags) == [MapFlags.rdonlyProg, 0, 0, 0])
        for map in object.maps {
            #expect(map.type == .array && map.keySize == 4 && map.maxEntries == 1)
            #expect(map.initialEntries.count == 1 && map.initialEntries[0].key == [0, 0, 0, 0])
        }
        let rodata = object.maps[0].initialEntries[0].value
        #expect(rodata == [42, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0])
        #expect(object.maps[1].initialEntries[0].value == [5, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0])
        #expect(object.maps[3].initialEntries[0].value == [UInt8](repeating: 0, count: 16))

        // BTF describes the values, with offsets filled from the symbol table.
        let btf = try #require(object.btf)
        #expect(btf.format(rodata, as: object.maps[0].btfValueTypeID) == "{threshold = 42, limits = [100, 200]}")
        #expect(
            btf.format(object.maps[1].initialEntries[0].value, as: object.maps[1].btfValueTypeID)
                == "{packets = 5, flags_seen = 16}")

        // In source order: packets (.data+0), hidden_counter (.bss section symbol, +0),
        // limits (.rodata+8), custom_total (.data.custom+0), last_len (.bss+4),
        // threshold (.rodata+0), drops (.bss+8), flags_seen (.data+8).
        let program = try object.program(named: "account")
        let loads = pseudoLoads(program, source: 6).map { [Int($0.imm), Int($0.offset)] }
        #expect(loads == [[1, 0], [3, 0], [0, 8], [2, 0], [3, 4], [0, 0], [3, 8], [1, 8]])
        #expect(pseudoLoads(program, source: 5).isEmpty)
    }
}

struct ProgramTests {
    /// Expected from multi_prog.c: programs in section order, then by offset.
    @Test func severalProgramsInOneSection() throws {
        let object = try load("multi_prog")
        #expect(
            object.programs.map(\.name) == ["xdp_pass_all", "xdp_drop_all", "xdp_drop_short", "tc_first", "tc_second"])
        #expect(object.programs.map(\.section) == ["xdp", "xdp", "xdp", "tc", "tc"])
        #expect(object.programs.map(\.type) == [.xdp, .xdp, .xdp, .schedCls, .schedCls])
        let drop = try object.program(named: "xdp_drop_all")
        // mov32 %r0, 1 (XDP_DROP); exit
        #expect(drop.instructions == [Instruction(opcode: 0xb4, dst: 0, immediate: 1), Instruction(opcode: 0x95)])
        #expect(throws: LoaderError.self) { try object.program(named: "nope") }
        do {
            _ = try object.program(named: "nope")
        } catch {
            #expect(error.code == "no_such_program")
        }
    }

    /// Expected program types and attach types: libbpf 1.x `section_defs` (src/libbpf.c)
    /// and the `enum bpf_attach_type` values of linux/bpf.h.
    @Test func sectionNamesGiveTypesAndAttachTargets() throws {
        let object = try load("sections")
        let expected: [String: (ProgramType, UInt32, String?)] = [
            "trace_openat": (.tracepoint, 0, "syscalls/sys_enter_openat"),
            "trace_switch": (.tracepoint, 0, "sched/sched_switch"),
            "probe_unlinkat": (.kprobe, 0, "do_unlinkat"),
            "probe_unlinkat_ret": (.kprobe, 0, "do_unlinkat"),
            "probe_malloc": (.kprobe, 0, "usr/lib/libc.so.6:malloc"),
            "probe_sys_openat": (.kprobe, 0, "openat"),
            "raw_enter": (.rawTracepoint, 0, "sys_enter"),
            "btf_wakeup": (.tracing, AttachType.traceRawTP, "sched_wakeup"),
            "entry_unlinkat": (.tracing, AttachType.traceFentry, "do_unlinkat"),
            "exit_unlinkat": (.tracing, AttachType.traceFexit, "do_unlinkat"),
            "lsm_open": (.lsm, AttachType.lsmMac, "file_open"),
            "iter_task": (.tracing, AttachType.traceIter, "task"),
            "run_syscall": (.syscall, 0, nil),
            "xdp_prog": (.xdp, AttachType.xdp, nil),
            "xdp_frags_prog": (.xdp, AttachType.xdp, nil),
            "tc_prog": (.schedCls, 0, nil),
            "tcx_in": (.schedCls, AttachType.tcxIngress, nil),
            "classifier_prog": (.schedCls, 0, nil),
            "action_prog": (.schedAct, 0, nil),
            "socket_prog": (.socketFilter, 0, nil),
            "cgroup_in": (.cgroupSkb, AttachType.cgroupInetIngress, nil),
            "sock_create": (.cgroupSock, AttachType.cgroupInetSockCreate, nil),
            "connect4": (.cgroupSockAddr, AttachType.cgroupInet4Connect, nil),
            "skb_verdict": (.skSkb, AttachType.skSkbStreamVerdict, nil),
            "msg_verdict": (.skMsg, AttachType.skMsgVerdict, nil),
            "sock_ops": (.sockOps, AttachType.cgroupSockOps, nil),
            "dissect": (.flowDissector, AttachType.flowDissector, nil),
            "on_sample": (.perfEvent, 0, nil),
            "lwt_out": (.lwtXmit, 0, nil),
            "reuseport": (.skReuseport, AttachType.skReuseportSelect, nil),
            "lookup": (.skLookup, AttachType.skLookup, nil),
            "nf_hook": (.netfilter, AttachType.netfilter, nil),
            "usdt_probe": (.kprobe, 0, "libc:setjmp"),
            "unknown_kind": (.unspec, 0, nil),
        ]
        #expect(object.programs.count == expected.count)
        for program in object.programs {
            let (type, attach, target) = try #require(expected[program.name], "\(program.name)")
            #expect(program.type == type, "\(program.name)")
            #expect(program.expectedAttachType == attach, "\(program.name)")
            #expect(program.attachTarget == target, "\(program.name)")
        }
    }

    /// libbpf's matching rules: `type` is exact, `type+` is exact or `type/extras`, first match wins.
    @Test func sectionMatchingRules() {
        #expect(SectionDefinition.find("xdp/devmap")?.definition.expectedAttachType == AttachType.xdpDevmap)
        #expect(SectionDefinition.find("xdp/other") == nil)
        #expect(SectionDefinition.find("kprobe")?.definition.programType == .kprobe)
        #expect(SectionDefinition.find("kprobe")?.attachTarget == nil)
        #expect(SectionDefinition.find("kprobes/x") == nil)
        #expect(SectionDefinition.find("tc/ingress")?.definition.expectedAttachType == AttachType.tcxIngress)
        #expect(
            SectionDefinition.find("sk_skb/stream_parser")?.definition.expectedAttachType
                == AttachType.skSkbStreamParser)
        #expect(SectionDefinition.find("uprobe.s/bin/sh:main")?.definition.sleepable == true)
        #expect(SectionDefinition.find("lsm.s/file_open")?.definition.programType == .lsm)
        #expect(SectionDefinition.find("cgroup/sock")?.definition.expectedAttachType == AttachType.cgroupInetSockCreate)
        #expect(SectionDefinition.find("struct_ops/init")?.attachTarget == "init")
        #expect(SectionDefinition.find(".text") == nil)
    }

    /// Expected from `llvm-objdump -dr subprograms.o`: sum_squares and square are static
    /// in .text (square at .text+14, sum_squares at +3 calling it), global_helper is a
    /// global .text function, add_index is the bpf_loop callback at .text+9 (the lddw's
    /// imm is its byte offset, 72).
    @Test func subprogramsAreAppendedAndCallsFixed() throws {
        let object = try load("subprograms")
        // global_helper is a global function in .text: a program of its own (unspec type), and a subprogram.
        #expect(object.programs.map(\.name) == ["global_helper", "uses_calls", "uses_loop"])
        #expect(object.programs[0].type == .unspec && object.programs[0].section == ".text")

        let calls = try object.program(named: "uses_calls")
        #expect(calls.functions.map(\.name) == ["uses_calls", "sum_squares", "global_helper", "square"])
        #expect(calls.functions.map(\.start) == [0, 7, 13, 16])
        func callTarget(_ program: ObjectProgram, _ index: Int) -> Int {
            let instruction = program.instructions[index]
            #expect(instruction.opcode == 0x85 && instruction.src == 1)
            return index + Int(instruction.immediate) + 1
        }
        #expect(callTarget(calls, 1) == 7)  // sum_squares
        #expect(callTarget(calls, 4) == 13)  // global_helper
        #expect(callTarget(calls, 7) == 16)  // square, from sum_squares
        #expect(callTarget(calls, 10) == 16)

        let loop = try object.program(named: "uses_loop")
        #expect(loop.functions.map(\.name) == ["uses_loop", "add_index", "square"])
        let functionLoads = pseudoLoads(loop, source: 4)
        #expect(functionLoads.count == 1)
        let callback = try #require(functionLoads.first)
        #expect(callback.index + Int(callback.imm) + 1 == loop.functions[1].start)
        #expect(callTarget(loop, 12) == loop.functions[2].start)
        let validated = try loop.validated()
        #expect(validated.functionEntries == [0, 15, 20])
        #expect(validated.pseudoLoads.map(\.kind) == [.function])
    }

    /// Lines from line_info.c itself (the file says to keep them in place).
    @Test func lineInfoNamesTheSourceLine() throws {
        let program = try load("line_info").program(named: "lines")
        #expect(program.functions.map(\.name) == ["lines", "clamp"])
        #expect(program.line(at: 0)?.location == "line_info.c:15")
        #expect(program.line(at: 0)?.source.contains("int length = skb->len;") == true)
        #expect(program.line(at: 1)?.location == "line_info.c:16")
        #expect(program.line(at: 2)?.location == "line_info.c:17")
        // clamp, appended after the program, keeps its own lines.
        let clampStart = program.functions[1].start
        #expect(program.line(at: clampStart)?.line == 5)
        #expect(program.line(at: program.instructions.count - 1)?.location == "line_info.c:10")
        #expect(program.functionInfo.map(\.name) == ["lines", "clamp"])
        #expect(program.functionInfo.map(\.instructionIndex) == [0, clampStart])
        #expect(program.line(at: program.instructions.count) == nil)
    }
}

struct BTFTests {
    @Test func sizesNamesAndLayouts() throws {
        let btf = try #require(try load("btf_maps").btf)
        let key = try #require(btf.firstType(named: "flow_key", kind: .structure))
        #expect(btf.size(of: key.id) == 16)
        #expect(btf.typeName(key.id) == "struct flow_key")
        #expect(
            btf.layout(key.id) == """
                struct flow_key {  /* size 16 */
                    __u32 saddr;   /* offset 0, size 4 */
                    __u32 daddr;   /* offset 4, size 4 */
                    __u16 sport;   /* offset 8, size 2 */
                    __u16 dport;   /* offset 10, size 2 */
                    __u8 proto;    /* offset 12, size 1 */
                };
                """)
        let value: [UInt8] = [1, 0, 0, 0, 2, 0, 0, 0, 0x50, 0, 0xbb, 1, 6, 0, 0, 0]
        #expect(btf.format(value, as: key.id) == "{saddr = 1, daddr = 2, sport = 80, dport = 443, proto = 6}")
        #expect(btf.size(of: 0) == nil)
        #expect(btf.type(UInt32(btf.types.count)) == nil)
    }
}
