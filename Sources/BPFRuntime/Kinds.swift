/// Map types by their kernel id (`enum bpf_map_type`, Linux 6.18).
public enum MapType: UInt32, Sendable, Hashable, CaseIterable, Codable {
    case unspec = 0
    /// `BPF_MAP_TYPE_HASH`
    case hash = 1
    /// `BPF_MAP_TYPE_ARRAY`
    case array = 2
    /// `BPF_MAP_TYPE_PROG_ARRAY`
    case progArray = 3
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`
    case perfEventArray = 4
    /// `BPF_MAP_TYPE_PERCPU_HASH`
    case percpuHash = 5
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`
    case percpuArray = 6
    /// `BPF_MAP_TYPE_STACK_TRACE`
    case stackTrace = 7
    /// `BPF_MAP_TYPE_CGROUP_ARRAY`
    case cgroupArray = 8
    /// `BPF_MAP_TYPE_LRU_HASH`
    case lruHash = 9
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`
    case lruPercpuHash = 10
    /// `BPF_MAP_TYPE_LPM_TRIE`
    case lpmTrie = 11
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS`
    case arrayOfMaps = 12
    /// `BPF_MAP_TYPE_HASH_OF_MAPS`
    case hashOfMaps = 13
    /// `BPF_MAP_TYPE_DEVMAP`
    case devmap = 14
    /// `BPF_MAP_TYPE_SOCKMAP`
    case sockmap = 15
    /// `BPF_MAP_TYPE_CPUMAP`
    case cpumap = 16
    /// `BPF_MAP_TYPE_XSKMAP`
    case xskmap = 17
    /// `BPF_MAP_TYPE_SOCKHASH`
    case sockhash = 18
    /// `BPF_MAP_TYPE_CGROUP_STORAGE`
    case cgroupStorage = 19
    /// `BPF_MAP_TYPE_REUSEPORT_SOCKARRAY`
    case reuseportSockarray = 20
    /// `BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE`
    case percpuCgroupStorage = 21
    /// `BPF_MAP_TYPE_QUEUE`
    case queue = 22
    /// `BPF_MAP_TYPE_STACK`
    case stack = 23
    /// `BPF_MAP_TYPE_SK_STORAGE`
    case skStorage = 24
    /// `BPF_MAP_TYPE_DEVMAP_HASH`
    case devmapHash = 25
    /// `BPF_MAP_TYPE_STRUCT_OPS`
    case structOps = 26
    /// `BPF_MAP_TYPE_RINGBUF`
    case ringbuf = 27
    /// `BPF_MAP_TYPE_INODE_STORAGE`
    case inodeStorage = 28
    /// `BPF_MAP_TYPE_TASK_STORAGE`
    case taskStorage = 29
    /// `BPF_MAP_TYPE_BLOOM_FILTER`
    case bloomFilter = 30
    /// `BPF_MAP_TYPE_USER_RINGBUF`
    case userRingbuf = 31
    /// `BPF_MAP_TYPE_CGRP_STORAGE`
    case cgrpStorage = 32
    /// `BPF_MAP_TYPE_ARENA`
    case arena = 33

    /// The kernel's name without the prefix, lower case, as bpftool prints it (`percpu_hash`).
    public var kernelName: String {
        switch self {
        case .unspec: "unspec"
        case .hash: "hash"
        case .array: "array"
        case .progArray: "prog_array"
        case .perfEventArray: "perf_event_array"
        case .percpuHash: "percpu_hash"
        case .percpuArray: "percpu_array"
        case .stackTrace: "stack_trace"
        case .cgroupArray: "cgroup_array"
        case .lruHash: "lru_hash"
        case .lruPercpuHash: "lru_percpu_hash"
        case .lpmTrie: "lpm_trie"
        case .arrayOfMaps: "array_of_maps"
        case .hashOfMaps: "hash_of_maps"
        case .devmap: "devmap"
        case .sockmap: "sockmap"
        case .cpumap: "cpumap"
        case .xskmap: "xskmap"
        case .sockhash: "sockhash"
        case .cgroupStorage: "cgroup_storage"
        case .reuseportSockarray: "reuseport_sockarray"
        case .percpuCgroupStorage: "percpu_cgroup_storage"
        case .queue: "queue"
        case .stack: "stack"
        case .skStorage: "sk_storage"
        case .devmapHash: "devmap_hash"
        case .structOps: "struct_ops"
        case .ringbuf: "ringbuf"
        case .inodeStorage: "inode_storage"
        case .taskStorage: "task_storage"
        case .bloomFilter: "bloom_filter"
        case .userRingbuf: "user_ringbuf"
        case .cgrpStorage: "cgrp_storage"
        case .arena: "arena"
        }
    }

    public init?(kernelName: String) {
        guard let match = MapType.allCases.first(where: { $0.kernelName == kernelName }) else { return nil }
        self = match
    }

    /// Per-CPU types keep one value per CPU.
    public var isPerCPU: Bool {
        self == .percpuHash || self == .percpuArray || self == .lruPercpuHash || self == .percpuCgroupStorage
    }
}

/// Map flags (`BPF_F_*` for map creation, linux/bpf.h).
public enum MapFlags {
    public static let noPrealloc: UInt32 = 1 << 0
    public static let noCommonLRU: UInt32 = 1 << 1
    public static let numaNode: UInt32 = 1 << 2
    public static let rdonly: UInt32 = 1 << 3
    public static let wronly: UInt32 = 1 << 4
    public static let stackBuildID: UInt32 = 1 << 5
    public static let zeroSeed: UInt32 = 1 << 6
    public static let rdonlyProg: UInt32 = 1 << 7
    public static let wronlyProg: UInt32 = 1 << 8
    public static let cloneFlag: UInt32 = 1 << 9
    public static let mmapable: UInt32 = 1 << 10
    public static let presetIDs: UInt32 = 1 << 11
    public static let innerMap: UInt32 = 1 << 12
}

/// How a map is pinned (libbpf's `pinning` attribute): `byName` maps are shared through
/// bpfsim's `--state` directory, the way the kernel shares them through bpffs.
public enum MapPinning: UInt32, Sendable, Hashable, Codable {
    case none = 0
    case byName = 1
}

/// A map definition: what the loader reads from an object and what creates a map.
public struct MapSpec: Sendable, Hashable, Codable {
    public var name: String
    public var type: MapType
    public var keySize: Int
    public var valueSize: Int
    public var maxEntries: Int
    public var flags: UInt32
    /// `map_extra` (the bloom filter's hash count lives in its low 4 bits).
    public var mapExtra: UInt64
    public var pinning: MapPinning
    /// The inner map's definition, for array-of-maps and hash-of-maps.
    public var inner: InnerMapSpec?
    /// Initial contents: (key, value) pairs. For global data sections, one entry with key
    /// 0 holding the section's bytes; for prog arrays, values are program indices (u32)
    /// into the object's program list; for map-in-map, inner map indices (u32).
    public var initialEntries: [MapEntry]
    /// BTF type ids of key and value, when the object has BTF (0 when unknown).
    public var btfKeyTypeID: UInt32
    public var btfValueTypeID: UInt32
    /// For global data maps (`.rodata`, `.data`, `.bss`), the ELF section the map came from.
    public var section: String?
    /// Where the value's `struct bpf_spin_lock` is, when it has one (from BTF); only such
    /// maps accept `BPF_F_LOCK`.
    public var spinLockOffset: Int?

    public init(
        name: String, type: MapType, keySize: Int, valueSize: Int, maxEntries: Int, flags: UInt32 = 0,
        mapExtra: UInt64 = 0, pinning: MapPinning = .none, inner: InnerMapSpec? = nil,
        initialEntries: [MapEntry] = [], btfKeyTypeID: UInt32 = 0, btfValueTypeID: UInt32 = 0,
        section: String? = nil
    ) {
        self.name = name
        self.type = type
        self.keySize = keySize
        self.valueSize = valueSize
        self.maxEntries = maxEntries
        self.flags = flags
        self.mapExtra = mapExtra
        self.pinning = pinning
        self.inner = inner
        self.initialEntries = initialEntries
        self.btfKeyTypeID = btfKeyTypeID
        self.btfValueTypeID = btfValueTypeID
        self.section = section
    }
}

/// The definition of the maps a map-in-map holds (`__array(values, ...)`).
public final class InnerMapSpec: Sendable, Hashable, Codable {
    public let spec: MapSpec
    public init(_ spec: MapSpec) { self.spec = spec }
    public static func == (a: InnerMapSpec, b: InnerMapSpec) -> Bool { a.spec == b.spec }
    public func hash(into hasher: inout Hasher) { hasher.combine(spec) }
}

/// One key/value pair.
public struct MapEntry: Sendable, Hashable, Codable {
    public var key: [UInt8]
    public var value: [UInt8]
    public init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }
}

/// Program types by their kernel id (`enum bpf_prog_type`, Linux 6.18).
public enum ProgramType: UInt32, Sendable, Hashable, CaseIterable, Codable {
    case unspec = 0
    case socketFilter = 1
    case kprobe = 2
    case schedCls = 3
    case schedAct = 4
    case tracepoint = 5
    case xdp = 6
    case perfEvent = 7
    case cgroupSkb = 8
    case cgroupSock = 9
    case lwtIn = 10
    case lwtOut = 11
    case lwtXmit = 12
    case sockOps = 13
    case skSkb = 14
    case cgroupDevice = 15
    case skMsg = 16
    case rawTracepoint = 17
    case cgroupSockAddr = 18
    case lwtSeg6local = 19
    case lircMode2 = 20
    case skReuseport = 21
    case flowDissector = 22
    case cgroupSysctl = 23
    case rawTracepointWritable = 24
    case cgroupSockopt = 25
    case tracing = 26
    case structOps = 27
    case ext = 28
    case lsm = 29
    case skLookup = 30
    case syscall = 31
    case netfilter = 32

    /// bpftool's name (`sched_cls`, `xdp`).
    public var kernelName: String {
        switch self {
        case .unspec: "unspec"
        case .socketFilter: "socket_filter"
        case .kprobe: "kprobe"
        case .schedCls: "sched_cls"
        case .schedAct: "sched_act"
        case .tracepoint: "tracepoint"
        case .xdp: "xdp"
        case .perfEvent: "perf_event"
        case .cgroupSkb: "cgroup_skb"
        case .cgroupSock: "cgroup_sock"
        case .lwtIn: "lwt_in"
        case .lwtOut: "lwt_out"
        case .lwtXmit: "lwt_xmit"
        case .sockOps: "sock_ops"
        case .skSkb: "sk_skb"
        case .cgroupDevice: "cgroup_device"
        case .skMsg: "sk_msg"
        case .rawTracepoint: "raw_tracepoint"
        case .cgroupSockAddr: "cgroup_sock_addr"
        case .lwtSeg6local: "lwt_seg6local"
        case .lircMode2: "lirc_mode2"
        case .skReuseport: "sk_reuseport"
        case .flowDissector: "flow_dissector"
        case .cgroupSysctl: "cgroup_sysctl"
        case .rawTracepointWritable: "raw_tracepoint_writable"
        case .cgroupSockopt: "cgroup_sockopt"
        case .tracing: "tracing"
        case .structOps: "struct_ops"
        case .ext: "ext"
        case .lsm: "lsm"
        case .skLookup: "sk_lookup"
        case .syscall: "syscall"
        case .netfilter: "netfilter"
        }
    }
}
