/// What a program's return value means for its type: the packet's fate for packet
/// programs, whether the event is kept for tracing programs.
public enum Verdict: Sendable, Hashable, CustomStringConvertible {
    /// An XDP action; nil for a value `enum xdp_action` does not name (the kernel warns
    /// and drops the packet).
    case xdp(XDPAction?, value: UInt32)
    /// A tc action (linux/pkt_cls.h); nil for a value it does not name.
    case tc(TCAction?, value: Int32)
    /// A socket filter keeps this many bytes of the packet (from the network header);
    /// 0 drops it. The kernel trims to `max(value, cap)` but never grows the packet.
    case socketFilter(keep: UInt32)
    /// A cgroup_skb program allows (bit 0) or drops the packet; bit 1 asks for congestion
    /// notification on egress.
    case cgroupSkb(allow: Bool, congestionNotification: Bool)
    /// A kprobe or tracepoint program: 0 drops the event from its perf buffer, anything
    /// else keeps it. Raw tracepoint programs' return values are ignored.
    case tracing(keepsEvent: Bool?, value: UInt64)

    /// The verdict a program of `type` gave by returning `returnValue`; nil for types
    /// without one (plain functions).
    public init?(type: ProgramType, returnValue: UInt64) {
        let low = UInt32(truncatingIfNeeded: returnValue)
        switch type {
        case .xdp: self = .xdp(XDPAction(rawValue: low), value: low)
        case .schedCls, .schedAct:
            let value = Int32(bitPattern: low)
            self = .tc(TCAction(rawValue: value), value: value)
        case .socketFilter: self = .socketFilter(keep: low)
        case .cgroupSkb: self = .cgroupSkb(allow: low & 1 != 0, congestionNotification: low & 2 != 0)
        case .kprobe, .tracepoint: self = .tracing(keepsEvent: returnValue != 0, value: returnValue)
        case .rawTracepoint, .rawTracepointWritable: self = .tracing(keepsEvent: nil, value: returnValue)
        default: return nil
        }
    }

    /// The kernel's name (`XDP_PASS`, `TC_ACT_SHOT`) or a short phrase.
    public var description: String {
        switch self {
        case .xdp(let action, let value): action?.kernelName ?? "invalid XDP action \(value)"
        case .tc(let action, let value): action?.kernelName ?? "unknown tc action \(value)"
        case .socketFilter(let keep): keep == 0 ? "drop" : "keep \(keep) bytes"
        case .cgroupSkb(let allow, let cn): (allow ? "allow" : "drop") + (cn ? " (congestion notification)" : "")
        case .tracing(let keeps, let value):
            keeps.map { $0 ? "keep event" : "drop event" } ?? "returned \(value)"
        }
    }
}

/// tc actions (`TC_ACT_*` in linux/pkt_cls.h).
public enum TCAction: Int32, Sendable, CaseIterable, Codable {
    /// `TC_ACT_UNSPEC`: use the qdisc's default.
    case unspec = -1
    /// `TC_ACT_OK`
    case ok = 0
    /// `TC_ACT_RECLASSIFY`
    case reclassify = 1
    /// `TC_ACT_SHOT`: drop.
    case shot = 2
    /// `TC_ACT_PIPE`
    case pipe = 3
    /// `TC_ACT_STOLEN`
    case stolen = 4
    /// `TC_ACT_QUEUED`
    case queued = 5
    /// `TC_ACT_REPEAT`
    case `repeat` = 6
    /// `TC_ACT_REDIRECT`: to where `bpf_redirect` pointed.
    case redirect = 7
    /// `TC_ACT_TRAP`
    case trap = 8

    public var kernelName: String {
        switch self {
        case .unspec: "TC_ACT_UNSPEC"
        case .ok: "TC_ACT_OK"
        case .reclassify: "TC_ACT_RECLASSIFY"
        case .shot: "TC_ACT_SHOT"
        case .pipe: "TC_ACT_PIPE"
        case .stolen: "TC_ACT_STOLEN"
        case .queued: "TC_ACT_QUEUED"
        case .repeat: "TC_ACT_REPEAT"
        case .redirect: "TC_ACT_REDIRECT"
        case .trap: "TC_ACT_TRAP"
        }
    }
}
