/// The context of the program types that see a socket buffer: `struct __sk_buff` as the
/// program sees it, translated field by field the way the kernel's verifier rewrites
/// each access (net/core/filter.c `bpf_convert_ctx_access`), over an emulated
/// `struct sk_buff` laid out the way `BPF_PROG_TEST_RUN` builds one
/// (net/bpf/test_run.c `bpf_prog_test_run_skb`):
///
/// - the packet is copied after 64 bytes of headroom (`NET_SKB_PAD + NET_IP_ALIGN` on
///   x86-64), `eth_type_trans` on the loopback device sets `protocol` and `pkt_type`
///   and pulls the Ethernet header, and the network header is set where the data now
///   starts;
/// - tc programs (`sched_cls`, `sched_act`) get the Ethernet header pushed back, so
///   their `data` is the MAC header; socket filters and cgroup_skb programs start at the
///   network header;
/// - metadata comes from the optional `__sk_buff` the caller passes (`ctx_in`): mark,
///   priority, ingress_ifindex, ifindex, cb, tstamp, wire_len, gso_segs, gso_size,
///   hwtstamp; every other byte of it must be zero.
///
/// Which fields a program type may read or write, and at which sizes, follows the
/// kernel's `*_is_valid_access` functions; a refused access faults, where the kernel's
/// verifier would have refused the program. Narrow loads behave as the rewritten code
/// does: the whole field is loaded, then shifted and masked.
///
/// The packet region (region 3) covers `[data_meta, data_end)` and is remapped whenever
/// a helper moves them. The bytes before `data` (a socket filter's MAC header) stay in
/// the buffer, where `bpf_skb_load_bytes_relative` and `LD_ABS` with `SKF_LL_OFF` reach
/// them.
public final class SKBContext: ContextAccessor {
    /// Which `*_is_valid_access` and helper set applies.
    public enum Kind: String, Sendable, CaseIterable {
        /// `BPF_PROG_TYPE_SCHED_CLS` and `BPF_PROG_TYPE_SCHED_ACT`: data starts at the MAC header.
        case tc
        /// `BPF_PROG_TYPE_SOCKET_FILTER`: no direct packet access; data starts at the network header.
        case socketFilter
        /// `BPF_PROG_TYPE_CGROUP_SKB`: data starts at the network header.
        case cgroupSkb

        public init?(_ type: ProgramType) {
            switch type {
            case .schedCls, .schedAct: self = .tc
            case .socketFilter: self = .socketFilter
            case .cgroupSkb: self = .cgroupSkb
            default: return nil
            }
        }

        var name: String {
            switch self {
            case .tc: "tc (sched_cls/sched_act)"
            case .socketFilter: "socket filter"
            case .cgroupSkb: "cgroup_skb"
            }
        }
    }

    /// `NET_SKB_PAD + NET_IP_ALIGN` on x86-64.
    public static let headroom = 64
    /// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86-64.
    public static let tailroom = 320
    /// `BPF_SKB_MAX_LEN` (`SKB_MAX_ALLOC`): 16 KiB less the shared info.
    public static let maxLength = 16384 - 320
    public static let ethernetHeaderLength = 14
    /// `sizeof(struct __sk_buff)`.
    public static let size = 192
    /// `GSO_LEGACY_MAX_SIZE`, the largest `wire_len` `BPF_PROG_TEST_RUN` accepts.
    public static let maxWireLength = 65536

    public let kind: Kind

    // MARK: The buffer (offsets into `buffer`)

    public private(set) var buffer: UnsafeMutableRawPointer
    public private(set) var capacity: Int
    /// `skb->data` and `skb_tail_pointer(skb)`: the packet is `[data, tail)`.
    public private(set) var data: Int
    public private(set) var tail: Int
    /// `data_meta`: metadata before the packet (always empty in a test run, kept for tc's field).
    public private(set) var dataMeta: Int
    /// `skb->mac_header`, nil when unset.
    public internal(set) var macHeader: Int?
    public internal(set) var networkHeader: Int
    /// `skb->transport_header`, nil when unset (as after `eth_type_trans`).
    public internal(set) var transportHeader: Int?
    /// `skb->mac_len`: `eth_type_trans` leaves it 0; helpers reset it.
    public internal(set) var macLength: Int

    // MARK: Metadata (struct sk_buff and friends)

    /// `skb->pkt_type`: PACKET_HOST 0, BROADCAST 1, MULTICAST 2, OTHERHOST 3.
    public var packetType: UInt8 = 0
    public var mark: UInt32 = 0
    public var queueMapping: UInt16 = 0
    /// `skb->protocol` as a number (0x0800 for IPv4); the program reads it in network order.
    public var networkProtocol: UInt16 = 0
    /// The hardware-accelerated VLAN tag: `skb->vlan_all` (present, TCI, TPID).
    public var vlanPresent = false
    public var vlanTCI: UInt16 = 0
    public var vlanProto: UInt16 = 0
    public var priority: UInt32 = 0
    /// `skb->skb_iif`.
    public var ingressIfindex: UInt32 = 0
    /// `skb->dev->ifindex`.
    public var ifindex: UInt32 = 1
    public var tcIndex: UInt16 = 0
    /// `qdisc_skb_cb.data`: the 20 bytes behind `cb[5]`.
    public var cb = [UInt8](repeating: 0, count: 20)
    /// `skb->hash`, with `l4_hash` and `sw_hash`.
    public var hash: UInt32 = 0
    public var l4Hash = false
    public var softwareHash = false
    /// `qdisc_skb_cb.tc_classid`.
    public var tcClassid: UInt16 = 0
    /// `skb->tstamp`.
    public var timestamp: UInt64 = 0
    /// `qdisc_skb_cb.pkt_len`, what `wire_len` reads.
    public var wireLength: UInt32 = 0
    public var gsoSegs: UInt16 = 0
    public var gsoSize: UInt16 = 0
    public var hardwareTimestamp: UInt64 = 0
    /// `skb->encapsulation`, set by `bpf_skb_adjust_room` with encapsulation flags.
    public var encapsulation = false
    /// `skb->ip_summed`: CHECKSUM_NONE (0) in a test run; `bpf_csum_level` can make it
    /// CHECKSUM_UNNECESSARY (1).
    public var checksumUnnecessary = false
    public var checksumLevel: UInt8 = 0
    /// The socket `BPF_PROG_TEST_RUN` attaches: family and addresses from the packet.
    public var socket = Socket()
    /// Copies sent with `bpf_clone_redirect` during the run.
    public internal(set) var clones: [Clone] = []

    /// What `skb->sk` holds in a test run: a socket whose family and addresses come from
    /// the packet's IP header (its source is the socket's local address).
    public struct Socket: Sendable, Hashable {
        /// AF_INET (2), AF_INET6 (10) or AF_UNSPEC (0).
        public var family: UInt16 = 0
        /// Addresses as the bytes appear on the wire.
        public var remoteIPv4: [UInt8] = [0, 0, 0, 0]
        public var localIPv4: [UInt8] = [0, 0, 0, 0]
        public var remoteIPv6 = [UInt8](repeating: 0, count: 16)
        public var localIPv6 = [UInt8](repeating: 0, count: 16)
        /// `skc_dport`, as stored (network order), and `skc_num` (host order).
        public var remotePort: UInt16 = 0
        public var localPort: UInt16 = 0
        public init() {}
    }

    public init(kind: Kind) {
        self.kind = kind
        capacity = 4096
        buffer = .allocate(byteCount: capacity, alignment: 64)
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
        data = Self.headroom
        tail = Self.headroom
        dataMeta = Self.headroom
        networkHeader = Self.headroom
        macLength = 0
    }

    deinit { buffer.deallocate() }

    /// `skb->len`.
    public var length: Int { tail - data }
    /// The packet as the program left it, from `data`.
    public var packet: [UInt8] { bytes(data, length) }
    /// What `BPF_PROG_TEST_RUN` returns as `data_out`: for tc the packet from `data`; for
    /// the others the kernel pushes 14 zero bytes where the Ethernet header was.
    public var output: [UInt8] {
        kind == .tc ? packet : Array(repeating: 0, count: Self.ethernetHeaderLength) + packet
    }

    func bytes(_ start: Int, _ count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: buffer + start, count: count))
    }

    // MARK: Loading a packet (bpf_prog_test_run_skb)

    /// Places a packet as `BPF_PROG_TEST_RUN` does, applies the metadata of `contextIn`
    /// (an `__sk_buff`, validated as `convert___skb_to_skb` does) and maps the packet.
    public func load(
        packet: [UInt8], contextIn: [UInt8]?, interfaces: [NetworkInterface], machine: Machine
    ) throws(InputRefusal) {
        guard packet.count >= Self.ethernetHeaderLength else {
            throw InputRefusal(errno: 22, reason: "a packet needs at least the 14-byte Ethernet header")
        }
        var ctx = contextIn.map { Array($0.prefix(Self.size)) } ?? []
        if let contextIn, contextIn.count > Self.size, contextIn[Self.size...].contains(where: { $0 != 0 }) {
            throw InputRefusal(errno: 7, reason: "the __sk_buff is longer than 192 bytes and its tail is not zero")
        }
        if !ctx.isEmpty { ctx += Array(repeating: 0, count: Self.size - ctx.count) }

        reset()
        let needed = Self.headroom + packet.count + Self.tailroom
        if needed > capacity {
            buffer.deallocate()
            capacity = (needed + 4095) / 4096 * 4096
            buffer = .allocate(byteCount: capacity, alignment: 64)
        }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
        packet.withUnsafeBytes {
            buffer.advanced(by: Self.headroom).copyMemory(from: $0.baseAddress!, byteCount: packet.count)
        }
        data = Self.headroom
        tail = Self.headroom + packet.count

        // The device: loopback unless the context names another (ctx->ifindex > 1).
        let requested = ctx.isEmpty ? 0 : readU32(ctx, 40)
        var device = interfaces.first { $0.ifindex == 1 } ?? .loopback
        if requested > 1 {
            guard let named = interfaces.first(where: { $0.ifindex == requested }) else {
                throw InputRefusal(errno: 19, reason: "no network device with ifindex \(requested)")
            }
            device = named
        }
        ifindex = device.ifindex
        ethTypeTrans(device: device)
        networkHeader = data
        try fillSocket()
        if kind == .tc {
            data -= Self.ethernetHeaderLength
        }
        dataMeta = data
        if !ctx.isEmpty { try apply(ctx) }
        remap(machine)
    }

    private func reset() {
        packetType = 0
        mark = 0
        queueMapping = 0
        networkProtocol = 0
        vlanPresent = false
        vlanTCI = 0
        vlanProto = 0
        priority = 0
        ingressIfindex = 0
        ifindex = 1
        tcIndex = 0
        cb = Array(repeating: 0, count: 20)
        hash = 0
        l4Hash = false
        softwareHash = false
        tcClassid = 0
        timestamp = 0
        wireLength = 0
        gsoSegs = 0
        gsoSize = 0
        hardwareTimestamp = 0
        encapsulation = false
        checksumUnnecessary = false
        checksumLevel = 0
        socket = Socket()
        clones = []
        macHeader = nil
        transportHeader = nil
        macLength = 0
    }

    /// `eth_type_trans`: the packet type from the destination address, the protocol from
    /// the EtherType (or 802.3's length field), and the Ethernet header pulled.
    private func ethTypeTrans(device: NetworkInterface) {
        macHeader = data
        let destination = bytes(data, 6)
        if destination != device.address {
            if destination[0] & 1 != 0 {
                packetType = destination == device.broadcast ? 1 : 2
            } else {
                packetType = 3
            }
        }
        let type = UInt16(byte(data + 12)) << 8 | UInt16(byte(data + 13))
        data += Self.ethernetHeaderLength
        if type >= 0x0600 {
            networkProtocol = type
        } else if length >= 2, byte(data) == 0xff, byte(data + 1) == 0xff {
            networkProtocol = 0x0001  // ETH_P_802_3: raw 802.3 (Novell)
        } else {
            networkProtocol = 0x0004  // ETH_P_802_2
        }
    }

    /// The test run's socket takes the family and the addresses of an IP packet; an IPv4
    /// or IPv6 packet too short for its header is refused (Linux 6.18).
    private func fillSocket() throws(InputRefusal) {
        let headLength = tail - networkHeader
        switch networkProtocol {
        case 0x0800:
            guard headLength >= 20 else {
                throw InputRefusal(errno: 22, reason: "an IPv4 packet needs its 20-byte header")
            }
            socket.family = 2
            socket.localIPv4 = bytes(networkHeader + 12, 4)
            socket.remoteIPv4 = bytes(networkHeader + 16, 4)
        case 0x86dd:
            guard headLength >= 40 else {
                throw InputRefusal(errno: 22, reason: "an IPv6 packet needs its 40-byte header")
            }
            socket.family = 10
            socket.localIPv6 = bytes(networkHeader + 8, 16)
            socket.remoteIPv6 = bytes(networkHeader + 24, 16)
        default:
            break
        }
    }

    /// `convert___skb_to_skb`: only mark, priority, ingress_ifindex, ifindex, cb, tstamp,
    /// wire_len, gso_segs, gso_size and hwtstamp may be set.
    private func apply(_ ctx: [UInt8]) throws(InputRefusal) {
        let allowed: [Range<Int>] = [8..<12, 32..<44, 48..<68, 152..<168, 176..<180, 184..<192]
        for (offset, byte) in ctx.enumerated() where byte != 0 && !allowed.contains(where: { $0.contains(offset) }) {
            throw InputRefusal(
                errno: 22,
                reason: "__sk_buff byte \(offset) (\(Self.fieldName(at: offset))) may not be set for a test run")
        }
        mark = readU32(ctx, 8)
        priority = readU32(ctx, 32)
        ingressIfindex = readU32(ctx, 36)
        timestamp = readU64(ctx, 152)
        cb = Array(ctx[48..<68])
        let wire = readU32(ctx, 160)
        if wire == 0 {
            wireLength = UInt32(length)
        } else {
            guard wire >= UInt32(length), wire <= UInt32(Self.maxWireLength) else {
                throw InputRefusal(
                    errno: 22, reason: "wire_len \(wire) is below the packet's length \(length) or above 65536")
            }
            wireLength = wire
        }
        let segments = readU32(ctx, 164)
        guard segments <= 65535 else { throw InputRefusal(errno: 22, reason: "gso_segs \(segments) is above 65535") }
        gsoSegs = UInt16(segments)
        gsoSize = UInt16(truncatingIfNeeded: readU32(ctx, 176))
        hardwareTimestamp = readU64(ctx, 184)
    }

    /// `convert_skb_to___skb`: the context `BPF_PROG_TEST_RUN` returns as `ctx_out`, from
    /// the context that was passed in.
    public func contextOut(from contextIn: [UInt8]) -> [UInt8] {
        var out = Array(contextIn.prefix(Self.size))
        out += Array(repeating: 0, count: Self.size - out.count)
        writeU32(&out, 8, mark)
        writeU32(&out, 32, priority)
        writeU32(&out, 36, ingressIfindex)
        writeU32(&out, 40, ifindex)
        writeU64(&out, 152, timestamp)
        out.replaceSubrange(48..<68, with: cb)
        writeU32(&out, 160, wireLength)
        writeU32(&out, 164, UInt32(gsoSegs))
        writeU64(&out, 184, hardwareTimestamp)
        return out
    }

    // MARK: The packet region

    /// Maps `[data_meta, tail)` as the packet region and the context region, and tells
    /// the machine where LD_ABS offsets start.
    func remap(_ machine: Machine) {
        machine.memory.map(
            AddressSpace.Well.packet.rawValue, name: "the packet", kind: .packet, base: buffer + dataMeta,
            size: tail - dataMeta, writable: kind == .tc)
        machine.memory.map(
            AddressSpace.Well.context.rawValue, name: "the context (struct __sk_buff)", kind: .context, base: nil,
            size: Self.size, writable: false)
        // cgroup_skb programs may read the packet but not write it (may_access_direct_pkt_data).
        machine.legacyDataOffset = UInt32(data - dataMeta)
        machine.legacyNegativeOffsetLoad = { [unowned self] offset, size in self.negativeLoad(offset, size) }
    }

    /// The guest address of `struct __sk_buff`, what r1 holds at entry.
    public static var contextAddress: UInt64 { AddressSpace.address(region: AddressSpace.Well.context.rawValue) }

    private func address(_ offset: Int) -> UInt64 {
        AddressSpace.address(region: AddressSpace.Well.packet.rawValue, offset: UInt32(offset - dataMeta))
    }

    /// LD_ABS/LD_IND at a negative offset (`bpf_internal_load_pointer_neg_helper`):
    /// `SKF_NET_OFF + k` reads at the network header, `SKF_LL_OFF + k` at the MAC header;
    /// anything that is not inside `[head, tail)` ends the program.
    func negativeLoad(_ offset: Int64, _ size: Int) -> UInt64? {
        let netOff: Int64 = -0x10_0000
        let linkOff: Int64 = -0x20_0000
        let start: Int
        if offset >= netOff {
            start = networkHeader + Int(offset - netOff)
        } else if offset >= linkOff {
            guard let macHeader else { return nil }
            start = macHeader + Int(offset - linkOff)
        } else {
            return nil
        }
        guard start >= 0, start + size <= tail else { return nil }
        var value: UInt64 = 0
        for index in 0..<size { value = value << 8 | UInt64(byte(start + index)) }
        return value
    }

    // MARK: Field access (bpf_convert_ctx_access and the *_is_valid_access functions)

    /// Field names by offset, for messages.
    static let fields: [(offset: Int, name: String)] = [
        (0, "len"), (4, "pkt_type"), (8, "mark"), (12, "queue_mapping"), (16, "protocol"), (20, "vlan_present"),
        (24, "vlan_tci"), (28, "vlan_proto"), (32, "priority"), (36, "ingress_ifindex"), (40, "ifindex"),
        (44, "tc_index"), (48, "cb[0]"), (52, "cb[1]"), (56, "cb[2]"), (60, "cb[3]"), (64, "cb[4]"), (68, "hash"),
        (72, "tc_classid"), (76, "data"), (80, "data_end"), (84, "napi_id"), (88, "family"), (92, "remote_ip4"),
        (96, "local_ip4"), (100, "remote_ip6"), (116, "local_ip6"), (132, "remote_port"), (136, "local_port"),
        (140, "data_meta"), (144, "flow_keys"), (152, "tstamp"), (160, "wire_len"), (164, "gso_segs"), (168, "sk"),
        (176, "gso_size"), (180, "tstamp_type"), (181, "padding"), (184, "hwtstamp"),
    ]

    static func fieldName(at offset: Int) -> String {
        fields.last { $0.offset <= offset }?.name ?? "offset \(offset)"
    }

    /// Whether the kernel's verifier accepts a load (or store) of `size` bytes at `offset`
    /// for this program type.
    public func isValidAccess(offset: Int, size: Int, write: Bool) -> Bool {
        guard offset >= 0, offset < Self.size, [1, 2, 4, 8].contains(size), offset % size == 0 else { return false }
        // The per-type exclusions (sk_filter_, cg_skb_, tc_cls_act_is_valid_access).
        switch kind {
        case .socketFilter:
            if [72..<76, 76..<84, 140..<144, 88..<140, 152..<164, 180..<181, 184..<192].contains(where: {
                $0.contains(offset)
            }) {
                return false
            }
            if write && !(48..<68).contains(offset) { return false }
        case .cgroupSkb:
            if [72..<76, 140..<144, 160..<164, 180..<181].contains(where: { $0.contains(offset) }) { return false }
            if write && ![8..<12, 32..<36, 48..<68, 152..<160].contains(where: { $0.contains(offset) }) {
                return false
            }
        case .tc:
            if (88..<140).contains(offset) { return false }
            if offset == 180 { return size == 1 && !write }  // tstamp_type
            if write
                && ![8..<12, 44..<48, 32..<36, 72..<76, 48..<68, 152..<160, 12..<16].contains(where: {
                    $0.contains(offset)
                })
            {
                return false
            }
        }
        // bpf_skb_is_valid_access.
        switch offset {
        case 48..<68:
            return offset + size <= 68
        case 92..<132, 76..<84, 140..<144:
            return size == 4
        case 144..<152:
            return false
        case 152..<160:
            return size == 8
        case 168..<176:
            return offset == 168 && !write && size == 8
        case 180..<184:
            return false
        case 184..<192:
            return !write && size == 8
        default:
            // Narrow reads of a 4-byte field; writes of the whole field.
            return write ? size == 4 : size <= 4
        }
    }

    /// Why an access is refused, for the fault message.
    public func explainRefusal(offset: UInt32, size: Int, write: Bool) -> String? {
        let offset = Int(offset)
        guard offset < Self.size else { return nil }
        let field = Self.fieldName(at: offset)
        if offset == 168 && isValidAccess(offset: offset, size: size, write: write) {
            return "__sk_buff.sk (offset 168): the socket behind an skb is not emulated"
        }
        let verb = write ? "write" : "read"
        return
            "__sk_buff.\(field) (offset \(offset)): a \(kind.name) program may not \(verb) \(size) bytes there (the kernel's verifier refuses it)"
    }

    public func load(offset: UInt32, size: Int, machine: Machine) -> UInt64? {
        let offset = Int(offset)
        guard isValidAccess(offset: offset, size: size, write: false) else { return nil }
        switch offset {
        case 48..<68:
            var value: UInt64 = 0
            for index in (0..<size).reversed() { value = value << 8 | UInt64(cb[offset - 48 + index]) }
            return value
        case 76: return address(data)
        case 80: return address(tail)
        case 140: return address(dataMeta)
        case 152: return timestamp
        case 168: return nil  // skb->sk: not emulated
        case 180: return 0  // tstamp_type: SKB_CLOCK_REALTIME; test runs are not at ingress
        case 184: return hardwareTimestamp
        case 92..<132:
            let bytes: [UInt8] =
                switch offset {
                case 92: socket.remoteIPv4
                case 96: socket.localIPv4
                case 100..<116: Array(socket.remoteIPv6[(offset - 100)..<(offset - 96)])
                default: Array(socket.localIPv6[(offset - 116)..<(offset - 112)])
                }
            return UInt64(readU32(bytes, 0))
        default:
            let start = offset & ~3
            let (value, targetSize) = fieldValue(start)
            // A narrow load: the rewritten code loads the whole field, then shifts and masks
            // when the access is narrower than what it loaded.
            if size < 4 && size < targetSize {
                let shift = UInt64((offset & 3) * 8)
                return (value >> shift) & (UInt64(1) << UInt64(size * 8) - 1)
            }
            return value
        }
    }

    /// A 4-byte field's value as the rewritten load produces it, and the size the kernel
    /// loads from `struct sk_buff` (`target_size`).
    private func fieldValue(_ offset: Int) -> (UInt64, Int) {
        switch offset {
        case 0: return (UInt64(length), 4)
        case 4: return (UInt64(packetType & 7), 1)
        case 8: return (UInt64(mark), 4)
        case 12: return (UInt64(queueMapping), 2)
        case 16: return (UInt64(networkProtocol.byteSwapped), 2)
        case 20: return (vlanPresent ? 1 : 0, 1)
        case 24: return (UInt64(vlanTCI), 2)
        case 28: return (UInt64(vlanProto.byteSwapped), 2)
        case 32: return (UInt64(priority), 4)
        case 36: return (UInt64(ingressIfindex), 4)
        case 40: return (UInt64(ifindex), 4)
        case 44: return (UInt64(tcIndex), 2)
        case 68: return (UInt64(hash), 4)
        case 72: return (UInt64(tcClassid), 2)
        case 84: return (0, 4)  // napi_id: below MIN_NAPI_ID, so 0
        case 88: return (UInt64(socket.family), 2)
        case 132: return ((UInt64(socket.remotePort) << 16) & 0xffff_ffff, 2)  // loaded, then shifted left 16
        case 136: return (UInt64(socket.localPort), 2)
        case 160: return (UInt64(wireLength), 4)
        case 164: return (UInt64(gsoSegs), 2)
        case 176: return (UInt64(gsoSize), 2)
        default: preconditionFailure("no __sk_buff field at \(offset) passed the access check")
        }
    }

    public func store(offset: UInt32, size: Int, value: UInt64, machine: Machine) -> Bool {
        let offset = Int(offset)
        guard isValidAccess(offset: offset, size: size, write: true) else { return false }
        switch offset {
        case 48..<68:
            for index in 0..<size { cb[offset - 48 + index] = UInt8(truncatingIfNeeded: value >> UInt64(8 * index)) }
        case 8: mark = UInt32(truncatingIfNeeded: value)
        case 32: priority = UInt32(truncatingIfNeeded: value)
        case 44: tcIndex = UInt16(truncatingIfNeeded: value)
        case 72: tcClassid = UInt16(truncatingIfNeeded: value)
        case 152: timestamp = value
        case 12:
            // The rewritten store skips values >= NO_QUEUE_MAPPING (0xffff), compared as 64 bits.
            if value < 0xffff { queueMapping = UInt16(value) }
        default:
            preconditionFailure("no writable __sk_buff field at \(offset) passed the access check")
        }
        return true
    }

    // MARK: Packet operations for the helpers

    func byte(_ offset: Int) -> UInt8 { buffer.load(fromByteOffset: offset, as: UInt8.self) }

    /// Makes room for `count` more bytes before `data` (`skb_cow_head`): the buffer grows
    /// at the front when the headroom is short. Offsets are kept relative to the buffer.
    func ensureHeadroom(_ count: Int) {
        guard data - count < 0 || dataMeta - count < 0 else { return }
        let grow = (count + 63) / 64 * 64 + Self.headroom
        resize(front: grow, back: 0)
    }

    /// Makes room for the tail to reach `newTail`.
    func ensureTailroom(_ newTail: Int) {
        guard newTail > capacity else { return }
        resize(front: 0, back: newTail - capacity + Self.tailroom)
    }

    private func resize(front: Int, back: Int) {
        let newCapacity = capacity + front + back
        let newBuffer = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 64)
        newBuffer.initializeMemory(as: UInt8.self, repeating: 0, count: newCapacity)
        (newBuffer + front).copyMemory(from: buffer, byteCount: capacity)
        buffer.deallocate()
        buffer = newBuffer
        capacity = newCapacity
        data += front
        tail += front
        dataMeta += front
        macHeader = macHeader.map { $0 + front }
        networkHeader += front
        transportHeader = transportHeader.map { $0 + front }
    }

    /// `__skb_push`: `count` more bytes at the front.
    func push(_ count: Int) {
        ensureHeadroom(count)
        data -= count
        dataMeta = data
    }

    /// `__skb_pull`.
    func pull(_ count: Int) {
        data += count
        dataMeta = data
    }

    /// Sets data_meta back to data (metadata does not survive moving the head in bpfsim).
    func resetMeta() { dataMeta = data }

    func setTail(_ newTail: Int) {
        ensureTailroom(newTail)
        tail = newTail
    }

    func move(from source: Int, to destination: Int, count: Int) {
        guard count > 0 else { return }
        (buffer + destination).copyMemory(from: buffer + source, byteCount: count)
    }

    func zero(_ start: Int, _ count: Int) {
        guard count > 0 else { return }
        (buffer + start).initializeMemory(as: UInt8.self, repeating: 0, count: count)
    }

    func write(_ bytes: [UInt8], at start: Int) {
        bytes.withUnsafeBytes { (buffer + start).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }

    func loadU16BE(_ offset: Int) -> UInt16 { UInt16(byte(offset)) << 8 | UInt16(byte(offset + 1)) }

    func storeU16BE(_ value: UInt16, at offset: Int) {
        buffer.storeBytes(of: UInt8(value >> 8), toByteOffset: offset, as: UInt8.self)
        buffer.storeBytes(of: UInt8(value & 0xff), toByteOffset: offset + 1, as: UInt8.self)
    }

    /// `skb_clear_hash`.
    func clearHash() {
        hash = 0
        l4Hash = false
        softwareHash = false
    }
}

func readU32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
    UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
        | UInt32(bytes[offset + 3]) << 24
}

func readU64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
    UInt64(readU32(bytes, offset)) | UInt64(readU32(bytes, offset + 4)) << 32
}

func writeU32(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
    for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> UInt32(8 * index)) }
}

func writeU64(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt64) {
    for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> UInt64(8 * index)) }
}

/// Why `BPF_PROG_TEST_RUN` would refuse a run's input: the errno it would return and why.
/// bpfsim refuses the same inputs, so a run that works here works in the kernel.
public struct InputRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    /// The errno, positive (22 for EINVAL).
    public let errno: Int32
    public let reason: String

    public init(errno: Int32, reason: String) {
        self.errno = errno
        self.reason = reason
    }

    public var errnoName: String {
        switch errno {
        case 7: "E2BIG"
        case 19: "ENODEV"
        case 22: "EINVAL"
        default: "errno \(errno)"
        }
    }

    public var description: String { "\(reason) (\(errnoName))" }
}
