import BPFRuntime

/// Which context fields each program type may read or write, at which sizes, and the
/// pointers some fields give (`*_is_valid_access` in net/core/filter.c and
/// kernel/trace/bpf_trace.c).
enum ContextRules {
    /// `struct __sk_buff` field offsets (linux/bpf.h).
    enum SKBuff {
        static let len = 0, pktType = 4, mark = 8, queueMapping = 12, proto = 16, vlanPresent = 20
        static let vlanTCI = 24, vlanProto = 28, priority = 32, ingressIfindex = 36, ifindex = 40, tcIndex = 44
        static let cb = 48, hash = 68, tcClassid = 72, data = 76, dataEnd = 80, napiID = 84, family = 88
        static let remoteIP4 = 92, localIP4 = 96, remoteIP6 = 100, localIP6 = 116, remotePort = 132, localPort = 136
        static let dataMeta = 140, flowKeys = 144, tstamp = 152, wireLen = 160, gsoSegs = 164, sk = 168
        static let gsoSize = 176, tstampType = 180, hwtstamp = 184, size = 192
    }

    /// `BPF_XDP_DEVMAP`.
    static let xdpDevmapAttach: UInt32 = 38

    /// Whether the access is allowed; if so, the register type a load gives (nil for a
    /// number). The outer optional is nil when the access is refused.
    static func access(_ type: ProgramType, offset: Int, size: Int, write: Bool, options: VerifierOptions)
        -> RegisterType??
    {
        switch type {
        case .xdp:
            return xdp(offset: offset, size: size, write: write, attach: options.expectedAttachType)
        case .socketFilter:
            return socketFilter(offset: offset, size: size, write: write)
        case .schedCls, .schedAct:
            return tc(offset: offset, size: size, write: write)
        case .cgroupSkb:
            return cgroupSkb(offset: offset, size: size, write: write)
        case .tracepoint:
            guard offset >= 8 && offset < 2048 && !write && offset % size == 0 else { return nil }
            return .some(nil)
        case .kprobe:
            // struct pt_regs on x86-64: 21 registers of 8 bytes.
            guard offset >= 0 && offset + size <= 168 && !write && offset % size == 0 else { return nil }
            return .some(nil)
        case .rawTracepoint, .rawTracepointWritable, .tracing:
            guard offset >= 0 && offset < 8 * 12 && !write && offset % size == 0 else { return nil }
            return .some(nil)
        case .perfEvent:
            // struct bpf_perf_event_data: pt_regs (168), sample_period (8), addr (8).
            guard offset >= 0 && offset + size <= 184 && !write && offset % size == 0 else { return nil }
            return .some(nil)
        default:
            // Program types whose context bpfsim does not describe: refuse nothing.
            return .some(nil)
        }
    }

    static func xdp(offset: Int, size: Int, write: Bool, attach: UInt32) -> RegisterType?? {
        if attach != xdpDevmapAttach && offset == 20 { return nil }
        if write { return nil }
        guard offset >= 0 && offset < 24 && offset % size == 0 && size == 4 else { return nil }
        switch offset {
        case 0: return .some(.packet)
        case 4: return .some(.packetEnd)
        case 8: return .some(.packetMeta)
        default: return .some(nil)
        }
    }

    static func socketFilter(offset: Int, size: Int, write: Bool) -> RegisterType?? {
        if within(offset, SKBuff.tcClassid, 4) || within(offset, SKBuff.data, 4) || within(offset, SKBuff.dataMeta, 4)
            || within(offset, SKBuff.dataEnd, 4) || (offset >= SKBuff.family && offset < SKBuff.localPort + 4)
            || within(offset, SKBuff.tstamp, 8) || within(offset, SKBuff.wireLen, 4) || within(offset, SKBuff.hwtstamp, 8)
        {
            return nil
        }
        if write && !(offset >= SKBuff.cb && offset < SKBuff.cb + 20) { return nil }
        return skb(offset: offset, size: size, write: write)
    }

    static func tc(offset: Int, size: Int, write: Bool) -> RegisterType?? {
        if write {
            let writable =
                within(offset, SKBuff.mark, 4) || within(offset, SKBuff.tcIndex, 4) || within(offset, SKBuff.priority, 4)
                || within(offset, SKBuff.tcClassid, 4) || (offset >= SKBuff.cb && offset < SKBuff.cb + 20)
                || within(offset, SKBuff.tstamp, 8) || within(offset, SKBuff.queueMapping, 4)
            if !writable { return nil }
        }
        if offset >= SKBuff.family && offset < SKBuff.localPort + 4 { return nil }
        if offset == SKBuff.tstampType { return size == 1 ? .some(nil) : nil }
        guard let result = skb(offset: offset, size: size, write: write) else { return nil }
        switch offset {
        case SKBuff.data: return .some(.packet)
        case SKBuff.dataMeta: return .some(.packetMeta)
        case SKBuff.dataEnd: return .some(.packetEnd)
        default: return result
        }
    }

    static func cgroupSkb(offset: Int, size: Int, write: Bool) -> RegisterType?? {
        if within(offset, SKBuff.tcClassid, 4) || within(offset, SKBuff.dataMeta, 4) || within(offset, SKBuff.wireLen, 4) {
            return nil
        }
        if write {
            let writable = within(offset, SKBuff.mark, 4) || within(offset, SKBuff.priority, 4)
                || (offset >= SKBuff.cb && offset < SKBuff.cb + 20) || within(offset, SKBuff.tstamp, 8)
            if !writable { return nil }
        }
        guard let result = skb(offset: offset, size: size, write: write) else { return nil }
        switch offset {
        case SKBuff.data: return .some(.packet)
        case SKBuff.dataEnd: return .some(.packetEnd)
        default: return result
        }
    }

    /// `bpf_skb_is_valid_access`.
    static func skb(offset: Int, size: Int, write: Bool) -> RegisterType?? {
        guard offset >= 0 && offset < SKBuff.size && size > 0 && offset % size == 0 else { return nil }
        if offset >= SKBuff.cb && offset < SKBuff.cb + 20 {
            if offset + size > SKBuff.cb + 20 { return nil }
            return .some(nil)
        }
        if (offset >= SKBuff.remoteIP6 && offset < SKBuff.localIP6 + 16) || within(offset, SKBuff.remoteIP4, 4)
            || within(offset, SKBuff.localIP4, 4) || within(offset, SKBuff.data, 4) || within(offset, SKBuff.dataMeta, 4)
            || within(offset, SKBuff.dataEnd, 4)
        {
            return size == 4 ? .some(nil) : nil
        }
        if within(offset, SKBuff.flowKeys, 8) { return nil }
        if within(offset, SKBuff.hwtstamp, 8) { return !write && size == 8 ? .some(nil) : nil }
        if within(offset, SKBuff.tstamp, 8) { return size == 8 ? .some(nil) : nil }
        if within(offset, SKBuff.sk, 8) { return !write && size == 8 ? .some(.socketCommon) : nil }
        if offset == SKBuff.tstampType { return nil }
        if offset > SKBuff.tstampType && offset < SKBuff.hwtstamp { return nil }
        // Other fields are u32: written whole, read with 1, 2 or 4 bytes.
        if write { return size == 4 ? .some(nil) : nil }
        return size <= 4 ? .some(nil) : nil
    }

    static func within(_ offset: Int, _ field: Int, _ width: Int) -> Bool {
        offset >= field && offset < field + width
    }

    /// Whether the program may write packet data directly (`may_access_direct_pkt_data`).
    static func canWritePacket(_ type: ProgramType) -> Bool {
        switch type {
        case .xdp, .schedCls, .schedAct, .lwtXmit, .skSkb, .skMsg: true
        default: false
        }
    }
}
