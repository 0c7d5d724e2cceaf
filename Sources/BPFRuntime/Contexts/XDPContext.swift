/// The context of an XDP program: `struct xdp_md` as the program sees it, and the packet
/// buffer laid out as the kernel's `BPF_PROG_TEST_RUN` lays it out (net/bpf/test_run.c):
/// a 4096-byte frame with 256 bytes of headroom (`XDP_PACKET_HEADROOM`), of which the
/// first 40 hold the kernel's `struct xdp_frame`, the packet, and 320 bytes of tailroom
/// for `struct skb_shared_info`. So at most 3520 bytes are linear; as in the kernel, the
/// rest of a longer packet goes into page-sized fragments the program cannot address
/// (`data_end` stops at the linear part), which `bpf_xdp_adjust_tail` grows and shrinks
/// and which `BPF_PROG_TEST_RUN` appends to `data_out`. (The kernel refuses a packet
/// that needs more than 17 fragments with -ENOMEM; bpfsim runs it.)
///
/// The packet region (region 3) covers `[data_meta, data_end)` and is remapped whenever
/// a helper moves those bounds; the bytes outside are not accessible, as the verifier
/// would ensure.
public final class XDPContext: ContextAccessor {
    public static let headroom = 256
    public static let pageSize = 4096
    /// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86-64.
    public static let tailroom = 320
    /// `sizeof(struct xdp_frame)` on x86-64 (Linux 6.18 BTF).
    public static let frameHeader = 40
    public static let ethernetHeaderLength = 14
    /// The most metadata `bpf_xdp_adjust_meta` allows: `skb_shared_info.meta_len` is a u8.
    public static let maxMetadata = 255
    /// The linear part of a test-run packet: a page less headroom and tailroom (3520).
    public static let maxLinear = pageSize - headroom - tailroom

    /// Field offsets of `struct xdp_md`.
    public enum Field: UInt32 {
        case data = 0, dataEnd = 4, dataMeta = 8, ingressIfindex = 12, rxQueueIndex = 16, egressIfindex = 20
    }

    public private(set) var buffer: UnsafeMutableRawPointer
    public let frameSize: Int
    public private(set) var dataMeta: Int
    public private(set) var data: Int
    public private(set) var dataEnd: Int
    public var ingressIfindex: UInt32
    public var rxQueueIndex: UInt32
    /// Only set for programs attached to a devmap entry (egress); 0 otherwise.
    public var egressIfindex: UInt32
    /// The packet past the linear part, and the size of each page-sized fragment of it.
    public private(set) var fragments: [UInt8] = []
    private var fragmentSizes: [Int] = []

    public init(ingressIfindex: UInt32 = 1, rxQueueIndex: UInt32 = 0) {
        frameSize = Self.pageSize
        buffer = .allocate(byteCount: frameSize, alignment: 64)
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: frameSize)
        dataMeta = Self.headroom
        data = Self.headroom
        dataEnd = Self.headroom
        self.ingressIfindex = ingressIfindex
        self.rxQueueIndex = rxQueueIndex
        egressIfindex = 0
    }

    deinit { buffer.deallocate() }

    /// Where the tailroom starts: `data_end` may not grow past it.
    public var hardEnd: Int { frameSize - Self.tailroom }

    /// Places a packet in a fresh frame (zeroed headroom, no metadata) and maps it; bytes
    /// past `maxLinear` become fragments, as `BPF_PROG_TEST_RUN` makes them.
    public func load(packet: [UInt8], into machine: Machine) {
        let linear = min(packet.count, Self.maxLinear)
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: frameSize)
        packet.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress { (buffer + Self.headroom).copyMemory(from: base, byteCount: linear) }
        }
        fragments = Array(packet[linear...])
        fragmentSizes = stride(from: 0, to: fragments.count, by: Self.pageSize).map {
            min(Self.pageSize, fragments.count - $0)
        }
        dataMeta = Self.headroom
        data = Self.headroom
        dataEnd = Self.headroom + linear
        remap(machine)
    }

    /// The packet as the program left it, from `data` to `data_end`.
    public var packet: [UInt8] { Array(UnsafeRawBufferPointer(start: buffer + data, count: dataEnd - data)) }

    /// What `BPF_PROG_TEST_RUN` returns as `data_out`: the metadata, the packet and its fragments.
    public var output: [UInt8] {
        Array(UnsafeRawBufferPointer(start: buffer + dataMeta, count: dataEnd - dataMeta)) + fragments
    }

    public var metadata: [UInt8] { Array(UnsafeRawBufferPointer(start: buffer + dataMeta, count: data - dataMeta)) }

    func remap(_ machine: Machine) {
        machine.memory.map(
            AddressSpace.Well.packet.rawValue, name: "the packet", kind: .packet, base: buffer + dataMeta,
            size: dataEnd - dataMeta, writable: true)
        machine.memory.map(
            AddressSpace.Well.context.rawValue, name: "the context (struct xdp_md)", kind: .context, base: nil,
            size: 24,
            writable: false)
    }

    private func address(_ offset: Int) -> UInt64 {
        AddressSpace.address(region: AddressSpace.Well.packet.rawValue, offset: UInt32(offset - dataMeta))
    }

    /// The guest address of `struct xdp_md`, what r1 holds at entry.
    public static var contextAddress: UInt64 { AddressSpace.address(region: AddressSpace.Well.context.rawValue) }

    public func load(offset: UInt32, size: Int, machine: Machine) -> UInt64? {
        // Every xdp_md field is a u32, and the kernel accepts only 4-byte loads of them.
        guard size == 4, let field = Field(rawValue: offset) else { return nil }
        switch field {
        case .data: return address(data)
        case .dataEnd: return address(dataEnd)
        case .dataMeta: return address(dataMeta)
        case .ingressIfindex: return UInt64(ingressIfindex)
        case .rxQueueIndex: return UInt64(rxQueueIndex)
        case .egressIfindex: return UInt64(egressIfindex)
        }
    }

    /// XDP programs may not write their context.
    public func store(offset: UInt32, size: Int, value: UInt64, machine: Machine) -> Bool { false }

    // MARK: Helpers (net/core/filter.c)

    /// `bpf_xdp_adjust_head`: 0, or -EINVAL when the new start would enter the frame
    /// header or leave less than an Ethernet header.
    public func adjustHead(_ delta: Int32, machine: Machine) -> Int64 {
        let metaLength = data - dataMeta
        let newData = data + Int(delta)
        guard newData >= Self.frameHeader + metaLength, newData <= dataEnd - Self.ethernetHeaderLength else {
            return -22
        }
        if metaLength > 0 {
            (buffer + dataMeta + Int(delta)).copyMemory(from: buffer + dataMeta, byteCount: metaLength)
        }
        dataMeta += Int(delta)
        data = newData
        remap(machine)
        return 0
    }

    /// `bpf_xdp_adjust_tail`: grows (zero-filled) or shrinks the packet's end. With
    /// fragments, the end is the last fragment's (`bpf_xdp_frags_increase_tail` and
    /// `bpf_xdp_frags_shrink_tail`): growing stays inside its page, shrinking frees
    /// fragments from the end and then cuts the linear part.
    public func adjustTail(_ delta: Int32, machine: Machine) -> Int64 {
        if !fragments.isEmpty {
            if delta > 0 {
                guard let last = fragmentSizes.last, Int(delta) <= Self.pageSize - last else { return -22 }
                fragments += [UInt8](repeating: 0, count: Int(delta))
                fragmentSizes[fragmentSizes.count - 1] += Int(delta)
                return 0
            }
            var offset = -Int(delta)
            guard offset <= dataEnd - data + fragments.count - Self.ethernetHeaderLength else { return -22 }
            while offset > 0, let last = fragmentSizes.last {
                let shrink = min(offset, last)
                fragments.removeLast(shrink)
                offset -= shrink
                if shrink == last {
                    fragmentSizes.removeLast()
                } else {
                    fragmentSizes[fragmentSizes.count - 1] -= shrink
                }
            }
            if offset > 0 {
                dataEnd -= offset
                remap(machine)
            }
            return 0
        }
        let newEnd = dataEnd + Int(delta)
        guard newEnd <= hardEnd, newEnd >= data + Self.ethernetHeaderLength else { return -22 }
        if delta > 0 { (buffer + dataEnd).initializeMemory(as: UInt8.self, repeating: 0, count: Int(delta)) }
        dataEnd = newEnd
        remap(machine)
        return 0
    }

    /// `bpf_xdp_adjust_meta`: metadata is a multiple of 4 bytes, at most 255.
    public func adjustMeta(_ delta: Int32, machine: Machine) -> Int64 {
        let newMeta = dataMeta + Int(delta)
        guard newMeta >= Self.frameHeader, newMeta <= data else { return -22 }
        let length = data - newMeta
        guard length % 4 == 0, length <= Self.maxMetadata else { return -13 }  // -EACCES
        dataMeta = newMeta
        remap(machine)
        return 0
    }
}

/// XDP verdicts (`enum xdp_action`).
public enum XDPAction: UInt32, Sendable, CaseIterable, Codable {
    /// `XDP_ABORTED`
    case aborted = 0
    /// `XDP_DROP`
    case drop = 1
    /// `XDP_PASS`
    case pass = 2
    /// `XDP_TX`
    case tx = 3
    /// `XDP_REDIRECT`
    case redirect = 4

    public var kernelName: String {
        switch self {
        case .aborted: "XDP_ABORTED"
        case .drop: "XDP_DROP"
        case .pass: "XDP_PASS"
        case .tx: "XDP_TX"
        case .redirect: "XDP_REDIRECT"
        }
    }
}

/// Where a program asked for a packet to go (`bpf_redirect`, `bpf_redirect_map`).
public struct RedirectTarget: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable {
        /// An interface by ifindex (`bpf_redirect`, devmap entries).
        case interface
        /// A CPU (cpumap).
        case cpu
        /// An AF_XDP socket (xskmap).
        case socket
        /// Every entry of a devmap (`BPF_F_BROADCAST`).
        case broadcast
    }

    public var kind: Kind
    /// The ifindex, CPU or socket index.
    public var index: UInt32
    /// The map used, for `bpf_redirect_map`.
    public var map: String?
    /// The key in that map.
    public var key: UInt32?
    /// Flags given to the helper (`BPF_F_INGRESS` for tc).
    public var flags: UInt64

    public init(kind: Kind, index: UInt32, map: String? = nil, key: UInt32? = nil, flags: UInt64 = 0) {
        self.kind = kind
        self.index = index
        self.map = map
        self.key = key
        self.flags = flags
    }
}
