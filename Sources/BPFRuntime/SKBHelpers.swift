import BPFCore

/// The helpers of programs that see a socket buffer (tc, socket filters, cgroup_skb),
/// with the semantics of net/core/filter.c. Each helper checks that the running
/// program's type may call it (the kernel's `*_func_proto` tables); calling it from
/// another type faults, naming the helper, where the kernel's verifier would have
/// refused the program.
///
/// A test run's skb is linear, uncloned and has `ip_summed == CHECKSUM_NONE`, so the
/// helpers never need to linearise and never update `skb->csum`
/// (`BPF_F_RECOMPUTE_CSUM` has nothing to recompute).
public enum SKBHelpers {
    static let efault = UInt64(bitPattern: -14)
    static let einval = UInt64(bitPattern: -22)
    static let enomem = UInt64(bitPattern: -12)
    static let eacces = UInt64(bitPattern: -13)
    static let ealready = UInt64(bitPattern: -114)
    /// The kernel's internal ENOTSUPP (524), which these helpers return as -524.
    static let enotsupp = UInt64(bitPattern: -524)

    /// `TC_ACT_SHOT` and `TC_ACT_REDIRECT` (linux/pkt_cls.h).
    static let tcActShot: UInt64 = 2
    static let tcActRedirect: UInt64 = 7

    // Flags (linux/bpf.h).
    static let recomputeChecksum: UInt64 = 1 << 0  // BPF_F_RECOMPUTE_CSUM
    static let invalidateHash: UInt64 = 1 << 1  // BPF_F_INVALIDATE_HASH
    static let headerFieldMask: UInt64 = 0xf  // BPF_F_HDR_FIELD_MASK

    /// The update l3_csum_replace and l4_csum_replace share: flags' low 4 bits are the size
    /// of the field that changed from `from` to `to` (2 or 4), or 0 when `to` is a
    /// checksum difference (from bpf_csum_diff) and `from` must be 0. False for any other
    /// size, or a non-zero `from` with size 0: the helper returns -EINVAL, checksum untouched.
    static func replaceChecksum(_ skb: SKBContext, at field: Int, flags: UInt64, from: UInt64, to: UInt64) -> Bool {
        switch flags & headerFieldMask {
        case 0:
            guard from == 0 else { return false }
            skb.replaceChecksum(at: field, diff: UInt32(truncatingIfNeeded: to))
        case 2:
            skb.replaceChecksum(
                at: field, from: UInt32(UInt16(truncatingIfNeeded: from)), to: UInt32(UInt16(truncatingIfNeeded: to)))
        case 4:
            skb.replaceChecksum(at: field, from: UInt32(truncatingIfNeeded: from), to: UInt32(truncatingIfNeeded: to))
        default:
            return false
        }
        return true
    }
    static let pseudoHeader: UInt64 = 1 << 4  // BPF_F_PSEUDO_HDR
    static let markMangled0: UInt64 = 1 << 5  // BPF_F_MARK_MANGLED_0
    static let markEnforce: UInt64 = 1 << 6  // BPF_F_MARK_ENFORCE
    static let ipv6Checksum: UInt64 = 1 << 7  // BPF_F_IPV6
    static let ingress: UInt64 = 1 << 0  // BPF_F_INGRESS

    static let tcOnly: Set<SKBContext.Kind> = [.tc]
    static let every: Set<SKBContext.Kind> = [.tc, .socketFilter, .cgroupSkb]

    public static var all: [Helper] {
        [
            // bpf_skb_load_bytes(skb, offset, to, len): 0, or -EFAULT with `to` zeroed.
            Helper(named: "skb_load_bytes") { call throws(ExecutionFault) in
                let skb = try call.skb(every)
                let count = Int(UInt32(truncatingIfNeeded: call.r4))
                let to = try call.mutablePointer(call.r3, count, "to")
                let offset = UInt32(truncatingIfNeeded: call.r2)
                guard offset <= UInt32(Int32.max), Int(offset) + count <= skb.length else {
                    if count > 0 { to.initializeMemory(as: UInt8.self, repeating: 0, count: count) }
                    return efault
                }
                if count > 0 { to.copyMemory(from: skb.buffer + skb.data + Int(offset), byteCount: count) }
                return 0
            },
            // bpf_skb_load_bytes_relative(skb, offset, to, len, start_header): from the MAC
            // (BPF_HDR_START_MAC, 0) or network (BPF_HDR_START_NET, 1) header.
            Helper(named: "skb_load_bytes_relative") { call throws(ExecutionFault) in
                let skb = try call.skb(every)
                let count = Int(UInt32(truncatingIfNeeded: call.r4))
                let to = try call.mutablePointer(call.r3, count, "to")
                let offset = UInt32(truncatingIfNeeded: call.r2)
                let start: Int? =
                    switch UInt32(truncatingIfNeeded: call.r5) {
                    case 0: skb.macHeader
                    case 1: skb.networkHeader
                    default: nil
                    }
                guard offset <= 0xffff, let start, start + Int(offset) + count <= skb.tail else {
                    if count > 0 { to.initializeMemory(as: UInt8.self, repeating: 0, count: count) }
                    return efault
                }
                if count > 0 { to.copyMemory(from: skb.buffer + start + Int(offset), byteCount: count) }
                return 0
            },
            // bpf_skb_store_bytes(skb, offset, from, len, flags).
            Helper(named: "skb_store_bytes") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                let flags = call.r5
                let count = Int(UInt32(truncatingIfNeeded: call.r4))
                let from = try call.read(call.r3, count: count)
                guard flags & ~(recomputeChecksum | invalidateHash) == 0 else { return einval }
                let offset = UInt32(truncatingIfNeeded: call.r2)
                guard offset <= UInt32(Int32.max), Int(offset) + count <= skb.length else { return efault }
                skb.write(from, at: skb.data + Int(offset))
                if flags & invalidateHash != 0 { skb.clearHash() }
                skb.remap(call.machine)
                return 0
            },
            // bpf_l3_csum_replace(skb, offset, from, to, flags): flags' low 4 bits are the
            // field size (0: `to` is a checksum difference, from bpf_csum_diff).
            Helper(named: "l3_csum_replace") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                let flags = call.r5
                guard flags & ~headerFieldMask == 0 else { return einval }
                guard let field = try skb.checksumField(call.r2) else { return efault }
                guard replaceChecksum(skb, at: field, flags: flags, from: call.r3, to: call.r4) else { return einval }
                skb.remap(call.machine)
                return 0
            },
            // bpf_l4_csum_replace(skb, offset, from, to, flags): as l3, plus BPF_F_PSEUDO_HDR
            // (which only matters for CHECKSUM_COMPLETE skbs) and BPF_F_MARK_MANGLED_0 (a UDP
            // checksum of 0 means "none": leave it, and write 0xffff for a result of 0).
            Helper(named: "l4_csum_replace") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                let flags = call.r5
                guard flags & ~(markMangled0 | markEnforce | pseudoHeader | headerFieldMask | ipv6Checksum) == 0 else {
                    return einval
                }
                guard let field = try skb.checksumField(call.r2) else { return efault }
                let mangled0 = flags & markMangled0 != 0
                if mangled0 && flags & markEnforce == 0 && skb.checksum(at: field) == 0 { return 0 }
                guard replaceChecksum(skb, at: field, flags: flags, from: call.r3, to: call.r4) else { return einval }
                if mangled0 && skb.checksum(at: field) == 0 { skb.setChecksum(0xffff, at: field) }  // CSUM_MANGLED_0
                skb.remap(call.machine)
                return 0
            },
            // bpf_csum_update(skb, csum): only CHECKSUM_COMPLETE skbs have a csum to update.
            Helper(named: "csum_update") { call throws(ExecutionFault) in
                _ = try call.skb(tcOnly)
                return enotsupp
            },
            // bpf_csum_level(skb, level): QUERY 0, INC 1, DEC 2, RESET 3.
            Helper(named: "csum_level") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                switch call.r2 {
                case 0: return skb.checksumUnnecessary ? UInt64(skb.checksumLevel) : eacces
                case 1:
                    if skb.checksumUnnecessary {
                        if skb.checksumLevel < 3 { skb.checksumLevel += 1 }  // SKB_MAX_CSUM_LEVEL
                    } else {
                        skb.checksumUnnecessary = true
                        skb.checksumLevel = 0
                    }
                case 2:
                    if skb.checksumUnnecessary {
                        if skb.checksumLevel == 0 { skb.checksumUnnecessary = false } else { skb.checksumLevel -= 1 }
                    }
                case 3:
                    skb.checksumUnnecessary = false
                    skb.checksumLevel = 0
                default:
                    return einval
                }
                return 0
            },
            // bpf_skb_pull_data(skb, len): the skb is linear, so this only checks the length.
            Helper(named: "skb_pull_data") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                let length = Int(UInt32(truncatingIfNeeded: call.r2))
                return length <= skb.length ? 0 : enomem
            },
            // bpf_skb_change_tail(skb, new_len, flags): grows (zero-filled) or trims the packet.
            Helper(named: "skb_change_tail") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                let newLength = UInt32(truncatingIfNeeded: call.r2)
                let minimum = UInt32(truncatingIfNeeded: skb.minimumLength)
                guard call.r3 == 0, newLength <= UInt32(SKBContext.maxLength), newLength >= minimum else {
                    return einval
                }
                guard !skb.encapsulation else { return enotsupp }
                let oldTail = skb.tail
                skb.setTail(skb.data + Int(newLength))
                if skb.tail > oldTail { skb.zero(oldTail, skb.tail - oldTail) }
                skb.gsoReset()
                skb.remap(call.machine)
                return 0
            },
            // bpf_skb_change_head(skb, head_room, flags): pushes zeroed room for a MAC header.
            Helper(named: "skb_change_head") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                let room = UInt32(truncatingIfNeeded: call.r2)
                let (newLength, overflow) = UInt32(skb.length).addingReportingOverflow(room)
                guard call.r3 == 0, !overflow, newLength <= UInt32(SKBContext.maxLength) else { return einval }
                skb.push(Int(room))
                skb.zero(skb.data, Int(room))
                skb.macHeader = skb.data
                skb.macLength = skb.networkHeader - skb.data
                skb.remap(call.machine)
                return 0
            },
            // bpf_skb_adjust_room(skb, len_diff, mode, flags).
            Helper(named: "skb_adjust_room") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                let result = skb.adjustRoom(
                    Int32(truncatingIfNeeded: call.r2), mode: UInt32(truncatingIfNeeded: call.r3), flags: call.r4)
                skb.remap(call.machine)
                return result
            },
            // bpf_skb_change_proto(skb, proto, flags): IPv4 <-> IPv6, header room only.
            Helper(named: "skb_change_proto") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                guard call.r3 == 0 else { return einval }
                let result = skb.changeProtocol(to: UInt16(truncatingIfNeeded: call.r2).byteSwapped)
                skb.remap(call.machine)
                return result
            },
            // bpf_skb_change_type(skb, type): among PACKET_HOST..PACKET_OTHERHOST only.
            Helper(named: "skb_change_type") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                let type = UInt32(truncatingIfNeeded: call.r2)
                guard skb.packetType <= 3, type <= 3 else { return einval }
                skb.packetType = UInt8(type)
                return 0
            },
            // bpf_skb_vlan_push(skb, vlan_proto, vlan_tci).
            Helper(named: "skb_vlan_push") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                var proto = UInt16(truncatingIfNeeded: call.r2).byteSwapped
                if proto != 0x8100 && proto != 0x88a8 { proto = 0x8100 }
                let result = skb.vlanPush(proto: proto, tci: UInt16(truncatingIfNeeded: call.r3))
                skb.remap(call.machine)
                return result
            },
            // bpf_skb_vlan_pop(skb).
            Helper(named: "skb_vlan_pop") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                let result = skb.vlanPop()
                skb.remap(call.machine)
                return result
            },
            // bpf_get_hash_recalc(skb): skb_get_hash, computing the flow hash when unset.
            Helper(named: "get_hash_recalc") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                if !skb.l4Hash && !skb.softwareHash {
                    let (hash, hasPorts) = skb.flowHash(seed: call.machine.world.world.randomSeed)
                    skb.hash = hash
                    skb.softwareHash = true
                    skb.l4Hash = hasPorts
                }
                return UInt64(skb.hash)
            },
            // bpf_set_hash_invalid(skb).
            Helper(named: "set_hash_invalid") { call throws(ExecutionFault) in
                try call.skb(tcOnly).clearHash()
                return 0
            },
            // bpf_set_hash(skb, hash): a software L4 hash.
            Helper(named: "set_hash") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                skb.hash = UInt32(truncatingIfNeeded: call.r2)
                skb.softwareHash = true
                skb.l4Hash = true
                return 0
            },
            // bpf_clone_redirect(skb, ifindex, flags): a copy leaves on the device; 0, or
            // -EINVAL for bad flags or an unknown device.
            Helper(named: "clone_redirect") { call throws(ExecutionFault) in
                let skb = try call.skb(tcOnly)
                let flags = call.r3
                let ifindex = UInt32(truncatingIfNeeded: call.r2)
                guard flags & ~ingress == 0 else { return einval }
                guard call.machine.world.world.interfaces.contains(where: { $0.ifindex == ifindex }) else {
                    return einval
                }
                guard let mac = skb.macHeader, mac < skb.networkHeader else {
                    return UInt64(bitPattern: -34)  // -ERANGE: no link-layer header to send
                }
                skb.clones.append(
                    SKBContext.Clone(
                        target: RedirectTarget(kind: .interface, index: ifindex, flags: flags), packet: skb.packet))
                return 0
            },
            // bpf_get_cgroup_classid(skb): the net_cls class of the task; bpfsim's task is in
            // the root class (a cgroup v2 machine has no net_cls classes), so 0.
            Helper(named: "get_cgroup_classid") { call throws(ExecutionFault) in
                _ = try call.skb(tcOnly)
                return 0
            },
        ]
    }

    /// `bpf_redirect(ifindex, flags)` for tc: TC_ACT_REDIRECT, or TC_ACT_SHOT for flags
    /// other than BPF_F_INGRESS. The device is only looked up after the program returns.
    static func tcRedirect(_ call: inout HelperCall) -> UInt64 {
        guard call.r2 & ~ingress == 0 else { return tcActShot }
        call.machine.redirect = RedirectTarget(
            kind: .interface, index: UInt32(truncatingIfNeeded: call.r1), flags: call.r2)
        return tcActRedirect
    }
}

extension HelperCall {
    /// The running program's skb, when its type may call this helper.
    func skb(_ kinds: Set<SKBContext.Kind>) throws(ExecutionFault) -> SKBContext {
        guard let skb = machine.context as? SKBContext else {
            throw fault("only programs that see an skb (tc, socket filter, cgroup_skb) may call bpf_\(name)")
        }
        guard kinds.contains(skb.kind) else {
            throw fault(
                "a \(skb.kind.name) program may not call bpf_\(name) (the kernel's verifier refuses it)")
        }
        return skb
    }
}

// MARK: - Packet work

extension SKBContext {
    /// A copy of the packet a program sent with `bpf_clone_redirect`.
    public struct Clone: Sendable, Hashable {
        public var target: RedirectTarget
        public var packet: [UInt8]
    }

    /// `__bpf_skb_min_len`: the network offset, or the transport offset when one is set.
    var minimumLength: Int {
        if let transportHeader { return transportHeader - data }
        return networkHeader - data
    }

    /// `skb_gso_reset`.
    func gsoReset() {
        gsoSize = 0
        gsoSegs = 0
    }

    /// The buffer offset of a 16-bit checksum field at `offset` from `data`, or nil
    /// (-EFAULT) when odd, beyond 0xffff or beyond the packet.
    func checksumField(_ offset: UInt64) throws(ExecutionFault) -> Int? {
        let offset = UInt32(truncatingIfNeeded: offset)
        guard offset <= 0xffff, offset & 1 == 0, Int(offset) + 2 <= length else { return nil }
        return data + Int(offset)
    }

    /// The checksum field as it sits in memory (a `__sum16`, loaded little-endian).
    func checksum(at field: Int) -> UInt16 { buffer.loadUnaligned(fromByteOffset: field, as: UInt16.self) }

    func setChecksum(_ value: UInt16, at field: Int) {
        buffer.storeBytes(of: value, toByteOffset: field, as: UInt16.self)
    }

    /// `csum_replace4`/`inet_proto_csum_replace4` on a CHECKSUM_NONE skb: takes `from` out
    /// of the checksum and puts `to` in, in ones'-complement arithmetic. The values are
    /// the bytes as they sit in the packet, loaded little-endian, like the checksum.
    func replaceChecksum(at field: Int, from: UInt32, to: UInt32) {
        let sum = UInt32(~checksum(at: field))
        setChecksum(~fold(Checksum.add32(Checksum.add32(sum, ~from), to)), at: field)
    }

    /// `csum_replace_by_diff`: adds a 32-bit checksum difference.
    func replaceChecksum(at field: Int, diff: UInt32) {
        let sum = UInt32(~checksum(at: field))
        setChecksum(~fold(Checksum.add32(sum, diff)), at: field)
    }

    private func fold(_ sum: UInt32) -> UInt16 {
        var value = (sum & 0xffff) + (sum >> 16)
        value = (value & 0xffff) + (value >> 16)
        return UInt16(value)
    }

    /// `bpf_skb_net_hdr_push`: `count` zero bytes inserted `offset` bytes after `data`;
    /// the MAC and network headers move with the front part.
    func insertRoom(at offset: Int, count: Int) {
        let transportFollows = transportHeader == networkHeader
        push(count)
        move(from: data + count, to: data, count: offset)
        zero(data + offset, count)
        macHeader = macHeader.map { $0 - count }
        networkHeader -= count
        if transportFollows { transportHeader = networkHeader }
    }

    /// `bpf_skb_net_hdr_pop`: `count` bytes removed `offset` bytes after `data`; -ENOMEM
    /// when the packet is too short.
    func removeRoom(at offset: Int, count: Int) -> Bool {
        guard offset + count <= length else { return false }
        let transportFollows = transportHeader == networkHeader
        move(from: data, to: data + count, count: offset)
        pull(count)
        macHeader = macHeader.map { $0 + count }
        networkHeader += count
        if transportFollows { transportHeader = networkHeader }
        return true
    }

    /// `bpf_skb_adjust_room`.
    func adjustRoom(_ difference: Int32, mode: UInt32, flags: UInt64) -> UInt64 {
        let fixedGSO: UInt64 = 1 << 0
        let encapIPv4: UInt64 = 1 << 1
        let encapIPv6: UInt64 = 1 << 2
        let encapGRE: UInt64 = 1 << 3
        let encapUDP: UInt64 = 1 << 4
        let noChecksumReset: UInt64 = 1 << 5
        let encapEthernet: UInt64 = 1 << 6
        let decapIPv4: UInt64 = 1 << 7
        let decapIPv6: UInt64 = 1 << 8
        let innerMACMask: UInt64 = 0xff << 56
        let known =
            fixedGSO | encapIPv4 | encapIPv6 | encapGRE | encapUDP | noChecksumReset | encapEthernet
            | decapIPv4 | decapIPv6 | innerMACMask
        guard flags & ~known == 0 else { return SKBHelpers.einval }
        let magnitude = Int(difference.magnitude)
        let shrink = difference < 0
        guard magnitude <= 0xfff else { return SKBHelpers.efault }
        guard networkProtocol == 0x0800 || networkProtocol == 0x86dd else { return SKBHelpers.enotsupp }
        let baseLength = networkProtocol == 0x0800 ? 20 : 40
        var minimum = baseLength
        if flags & (decapIPv4 | decapIPv6) != 0 {
            guard shrink else { return SKBHelpers.einval }
            switch flags & (decapIPv4 | decapIPv6) {
            case decapIPv4: minimum = 20
            case decapIPv6: minimum = 40
            default: return SKBHelpers.einval
            }
        }
        var offset = networkHeader - (macHeader ?? networkHeader)
        switch mode {
        case 0: offset += baseLength  // BPF_ADJ_ROOM_NET
        case 1: break  // BPF_ADJ_ROOM_MAC
        default: return SKBHelpers.enotsupp
        }
        let current = length - (networkHeader - data)
        if shrink {
            guard magnitude < current, current - magnitude >= minimum else { return SKBHelpers.enotsupp }
            guard flags & ~(fixedGSO | decapIPv4 | decapIPv6 | noChecksumReset) == 0 else { return SKBHelpers.einval }
            guard removeRoom(at: offset, count: magnitude) else { return SKBHelpers.enomem }
            if networkProtocol == 0x0800 && flags & decapIPv6 != 0 {
                networkProtocol = 0x86dd
            } else if networkProtocol == 0x86dd && flags & decapIPv4 != 0 {
                networkProtocol = 0x0800
            }
        } else {
            guard length + magnitude <= SKBContext.maxLength else { return SKBHelpers.enotsupp }
            let encap = flags & (encapIPv4 | encapIPv6) != 0
            let innerMAC = Int(flags >> 56)
            let macLength = networkHeader - (macHeader ?? networkHeader)
            if encap {
                if flags & encapIPv4 != 0 && flags & encapIPv6 != 0 { return SKBHelpers.einval }
                if flags & encapGRE != 0 && flags & encapUDP != 0 { return SKBHelpers.einval }
                if flags & encapEthernet != 0 && innerMAC != 14 { return SKBHelpers.einval }
                if encapsulation { return SKBHelpers.ealready }
                if innerMAC > magnitude { return SKBHelpers.einval }
            }
            insertRoom(at: offset, count: magnitude)
            if encap {
                encapsulation = true
                networkHeader = data + macLength
                if flags & (encapGRE | encapUDP) != 0 {
                    transportHeader = networkHeader + (flags & encapIPv6 != 0 ? 40 : 20)
                }
                if networkProtocol == 0x0800 && flags & encapIPv6 != 0 {
                    networkProtocol = 0x86dd
                } else if networkProtocol == 0x86dd && flags & encapIPv4 != 0 {
                    networkProtocol = 0x0800
                }
            }
        }
        if flags & noChecksumReset == 0 {
            checksumUnnecessary = false
            checksumLevel = 0
        }
        return 0
    }

    /// `bpf_skb_change_proto`: IPv4 to IPv6 inserts 20 zero bytes after the MAC header,
    /// IPv6 to IPv4 removes 20; anything else is -ENOTSUPP.
    func changeProtocol(to proto: UInt16) -> UInt64 {
        let offset = networkHeader - (macHeader ?? networkHeader)
        if networkProtocol == 0x0800 && proto == 0x86dd {
            insertRoom(at: offset, count: 20)
            networkProtocol = 0x86dd
        } else if networkProtocol == 0x86dd && proto == 0x0800 {
            guard removeRoom(at: offset, count: 20) else { return SKBHelpers.enomem }
            networkProtocol = 0x0800
        } else {
            return SKBHelpers.enotsupp
        }
        clearHash()
        return 0
    }

    /// `skb_vlan_push`: the tag goes into the skb's metadata (as a NIC with VLAN offload
    /// would have it); a tag already there is first written into the packet.
    func vlanPush(proto: UInt16, tci: UInt16) -> UInt64 {
        if vlanPresent {
            guard macHeader == data else { return SKBHelpers.einval }
            push(4)
            move(from: data + 4, to: data, count: 12)
            macHeader = macHeader.map { $0 - 4 }
            storeU16BE(vlanProto, at: data + 12)
            storeU16BE(vlanTCI, at: data + 14)
            networkProtocol = vlanProto
            networkHeader -= 4
        }
        vlanPresent = true
        vlanProto = proto
        vlanTCI = tci
        return 0
    }

    /// `skb_vlan_pop`: drops the offloaded tag, or removes the packet's outer tag; a next
    /// tag in the packet then becomes the offloaded one.
    func vlanPop() -> UInt64 {
        func isVLAN(_ proto: UInt16) -> Bool { proto == 0x8100 || proto == 0x88a8 }
        if vlanPresent {
            vlanPresent = false
            vlanTCI = 0
            vlanProto = 0
        } else {
            guard isVLAN(networkProtocol) else { return 0 }
            guard case .some = popPacketTag() else { return SKBHelpers.einval }
        }
        guard isVLAN(networkProtocol) else { return 0 }
        let proto = networkProtocol
        guard let tci = popPacketTag() else { return SKBHelpers.einval }
        vlanPresent = true
        vlanProto = proto
        vlanTCI = tci
        return 0
    }

    /// `__skb_vlan_pop`: the TCI of the tag removed from the packet, or nil.
    private func popPacketTag() -> UInt16? {
        guard macHeader == data, length >= 18 else { return nil }
        let tci = loadU16BE(data + 14)
        let inner = loadU16BE(data + 16)
        if inner >= 0x0600 {
            networkProtocol = inner
        } else if length >= 20, byte(data + 18) == 0xff, byte(data + 19) == 0xff {
            networkProtocol = 0x0001
        } else {
            networkProtocol = 0x0004
        }
        move(from: data, to: data + 4, count: 12)
        pull(4)
        macHeader = macHeader.map { $0 + 4 }
        if networkHeader - data < 14 { networkHeader = data + 14 }
        macLength = networkHeader - (macHeader ?? networkHeader)
        return tci
    }

    /// The flow hash `skb_get_hash` computes when the skb has none, and whether the flow
    /// had ports (`l4_hash`). The kernel dissects the flow (addresses, protocol, ports, or
    /// the IPv6 flow label) and hashes it with siphash under a key drawn at boot, after
    /// ordering the endpoints so both directions of a connection hash alike. bpfsim
    /// dissects the same keys and orders them the same way, but hashes them with FNV-1a
    /// seeded from the world's random seed: deterministic, and equal for both directions,
    /// but not the kernel's number.
    func flowHash(seed: UInt64) -> (UInt32, Bool) {
        var key: [UInt8] = [UInt8(networkProtocol >> 8), UInt8(networkProtocol & 0xff)]
        var hasPorts = false
        let net = networkHeader
        let available = tail - net
        var transport: Int?
        var ipProtocol: UInt8 = 0
        switch networkProtocol {
        case 0x0800 where available >= 20:
            let headerLength = Int(byte(net) & 0xf) * 4
            ipProtocol = byte(net + 9)
            let fragment = loadU16BE(net + 6) & 0x3fff != 0
            if !fragment && headerLength >= 20 { transport = net + headerLength }
            let flow = Self.ordered(bytes(net + 12, 4), bytes(net + 16, 4), transport.flatMap { portsAt($0, ipProtocol) })
            key += flow.a + flow.b + [ipProtocol]
            if let ports = flow.ports {
                hasPorts = true
                key += Self.portBytes(ports)
            }
        case 0x86dd where available >= 40:
            ipProtocol = byte(net + 6)
            let label = (UInt32(byte(net + 1) & 0xf) << 16) | UInt32(loadU16BE(net + 2))
            let flow = Self.ordered(
                bytes(net + 8, 16), bytes(net + 24, 16), label == 0 ? portsAt(net + 40, ipProtocol) : nil)
            key += flow.a + flow.b + [ipProtocol]
            if label != 0 {
                key += [UInt8(label >> 16), UInt8((label >> 8) & 0xff), UInt8(label & 0xff)]
            } else if let ports = flow.ports {
                hasPorts = true
                key += Self.portBytes(ports)
            }
        default:
            break
        }
        var state: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for byte in key {
            state ^= UInt64(byte)
            state = state &* 0x100_0000_01b3
        }
        let hash = UInt32(truncatingIfNeeded: state ^ (state >> 32))
        return (hash == 0 ? 1 : hash, hasPorts)
    }

    /// A flow's endpoints (address, port) in the order the kernel hashes them: the lower
    /// address first, and for equal addresses the lower port, so both directions of a
    /// connection give the same key.
    private static func ordered(_ a: [UInt8], _ b: [UInt8], _ ports: (UInt16, UInt16)?) -> (
        a: [UInt8], b: [UInt8], ports: (UInt16, UInt16)?
    ) {
        let swapped =
            if let p = ports { b.lexicographicallyPrecedes(a) || (a == b && p.1 < p.0) } else {
                b.lexicographicallyPrecedes(a)
            }
        return swapped ? (b, a, ports.map { ($0.1, $0.0) }) : (a, b, ports)
    }

    private static func portBytes(_ ports: (UInt16, UInt16)) -> [UInt8] {
        [UInt8(ports.0 >> 8), UInt8(ports.0 & 0xff), UInt8(ports.1 >> 8), UInt8(ports.1 & 0xff)]
    }

    /// The two ports of a TCP, UDP, UDP-Lite, SCTP or DCCP header at `offset`.
    private func portsAt(_ offset: Int, _ proto: UInt8) -> (UInt16, UInt16)? {
        guard [6, 17, 33, 132, 136].contains(proto), offset + 4 <= tail else { return nil }
        return (loadU16BE(offset), loadU16BE(offset + 2))
    }
}
