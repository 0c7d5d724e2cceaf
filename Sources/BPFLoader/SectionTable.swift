import BPFRuntime

/// `enum bpf_attach_type` values the section table uses (linux/bpf.h, Linux 6.18).
public enum AttachType {
    public static let cgroupInetIngress: UInt32 = 0  // BPF_CGROUP_INET_INGRESS
    public static let cgroupInetEgress: UInt32 = 1  // BPF_CGROUP_INET_EGRESS
    public static let cgroupInetSockCreate: UInt32 = 2  // BPF_CGROUP_INET_SOCK_CREATE
    public static let cgroupSockOps: UInt32 = 3  // BPF_CGROUP_SOCK_OPS
    public static let skSkbStreamParser: UInt32 = 4  // BPF_SK_SKB_STREAM_PARSER
    public static let skSkbStreamVerdict: UInt32 = 5  // BPF_SK_SKB_STREAM_VERDICT
    public static let cgroupDevice: UInt32 = 6  // BPF_CGROUP_DEVICE
    public static let skMsgVerdict: UInt32 = 7  // BPF_SK_MSG_VERDICT
    public static let cgroupInet4Bind: UInt32 = 8  // BPF_CGROUP_INET4_BIND
    public static let cgroupInet6Bind: UInt32 = 9  // BPF_CGROUP_INET6_BIND
    public static let cgroupInet4Connect: UInt32 = 10  // BPF_CGROUP_INET4_CONNECT
    public static let cgroupInet6Connect: UInt32 = 11  // BPF_CGROUP_INET6_CONNECT
    public static let cgroupInet4PostBind: UInt32 = 12  // BPF_CGROUP_INET4_POST_BIND
    public static let cgroupInet6PostBind: UInt32 = 13  // BPF_CGROUP_INET6_POST_BIND
    public static let cgroupUDP4Sendmsg: UInt32 = 14  // BPF_CGROUP_UDP4_SENDMSG
    public static let cgroupUDP6Sendmsg: UInt32 = 15  // BPF_CGROUP_UDP6_SENDMSG
    public static let lircMode2: UInt32 = 16  // BPF_LIRC_MODE2
    public static let flowDissector: UInt32 = 17  // BPF_FLOW_DISSECTOR
    public static let cgroupSysctl: UInt32 = 18  // BPF_CGROUP_SYSCTL
    public static let cgroupUDP4Recvmsg: UInt32 = 19  // BPF_CGROUP_UDP4_RECVMSG
    public static let cgroupUDP6Recvmsg: UInt32 = 20  // BPF_CGROUP_UDP6_RECVMSG
    public static let cgroupGetsockopt: UInt32 = 21  // BPF_CGROUP_GETSOCKOPT
    public static let cgroupSetsockopt: UInt32 = 22  // BPF_CGROUP_SETSOCKOPT
    public static let traceRawTP: UInt32 = 23  // BPF_TRACE_RAW_TP
    public static let traceFentry: UInt32 = 24  // BPF_TRACE_FENTRY
    public static let traceFexit: UInt32 = 25  // BPF_TRACE_FEXIT
    public static let modifyReturn: UInt32 = 26  // BPF_MODIFY_RETURN
    public static let lsmMac: UInt32 = 27  // BPF_LSM_MAC
    public static let traceIter: UInt32 = 28  // BPF_TRACE_ITER
    public static let cgroupInet4Getpeername: UInt32 = 29  // BPF_CGROUP_INET4_GETPEERNAME
    public static let cgroupInet6Getpeername: UInt32 = 30  // BPF_CGROUP_INET6_GETPEERNAME
    public static let cgroupInet4Getsockname: UInt32 = 31  // BPF_CGROUP_INET4_GETSOCKNAME
    public static let cgroupInet6Getsockname: UInt32 = 32  // BPF_CGROUP_INET6_GETSOCKNAME
    public static let xdpDevmap: UInt32 = 33  // BPF_XDP_DEVMAP
    public static let cgroupInetSockRelease: UInt32 = 34  // BPF_CGROUP_INET_SOCK_RELEASE
    public static let xdpCpumap: UInt32 = 35  // BPF_XDP_CPUMAP
    public static let skLookup: UInt32 = 36  // BPF_SK_LOOKUP
    public static let xdp: UInt32 = 37  // BPF_XDP
    public static let skSkbVerdict: UInt32 = 38  // BPF_SK_SKB_VERDICT
    public static let skReuseportSelect: UInt32 = 39  // BPF_SK_REUSEPORT_SELECT
    public static let skReuseportSelectOrMigrate: UInt32 = 40  // BPF_SK_REUSEPORT_SELECT_OR_MIGRATE
    public static let perfEvent: UInt32 = 41  // BPF_PERF_EVENT
    public static let traceKprobeMulti: UInt32 = 42  // BPF_TRACE_KPROBE_MULTI
    public static let lsmCgroup: UInt32 = 43  // BPF_LSM_CGROUP
    public static let structOps: UInt32 = 44  // BPF_STRUCT_OPS
    public static let netfilter: UInt32 = 45  // BPF_NETFILTER
    public static let tcxIngress: UInt32 = 46  // BPF_TCX_INGRESS
    public static let tcxEgress: UInt32 = 47  // BPF_TCX_EGRESS
    public static let traceUprobeMulti: UInt32 = 48  // BPF_TRACE_UPROBE_MULTI
    public static let cgroupUnixConnect: UInt32 = 49  // BPF_CGROUP_UNIX_CONNECT
    public static let cgroupUnixSendmsg: UInt32 = 50  // BPF_CGROUP_UNIX_SENDMSG
    public static let cgroupUnixRecvmsg: UInt32 = 51  // BPF_CGROUP_UNIX_RECVMSG
    public static let cgroupUnixGetpeername: UInt32 = 52  // BPF_CGROUP_UNIX_GETPEERNAME
    public static let cgroupUnixGetsockname: UInt32 = 53  // BPF_CGROUP_UNIX_GETSOCKNAME
    public static let netkitPrimary: UInt32 = 54  // BPF_NETKIT_PRIMARY
    public static let netkitPeer: UInt32 = 55  // BPF_NETKIT_PEER
    public static let traceKprobeSession: UInt32 = 56  // BPF_TRACE_KPROBE_SESSION
    public static let traceUprobeSession: UInt32 = 57  // BPF_TRACE_UPROBE_SESSION
}

/// How an ELF section name maps to a program type, as libbpf decides it (the table
/// `section_defs` in libbpf 1.x src/libbpf.c, in the same order: the first match wins).
public struct SectionDefinition: Sendable, Hashable {
    public enum Match: Sendable, Hashable {
        /// The name is exactly this (`xdp`, `socket`).
        case exact
        /// Exactly this, or this followed by `/` and an attach target (libbpf's `type+`).
        case exactOrTarget
    }

    /// The section name or prefix, without libbpf's `+`.
    public let prefix: String
    public let match: Match
    public let programType: ProgramType
    /// libbpf's expected attach type (`enum bpf_attach_type`); 0 where libbpf gives 0.
    public let expectedAttachType: UInt32
    /// Whether the kernel may put the program to sleep (libbpf's `SEC_SLEEPABLE`, the `.s` forms).
    public let sleepable: Bool

    init(_ prefix: String, _ match: Match, _ type: ProgramType, _ attach: UInt32 = 0, sleepable: Bool = false) {
        self.prefix = prefix
        self.match = match
        self.programType = type
        self.expectedAttachType = attach
        self.sleepable = sleepable
    }

    /// Whether `section` is this definition's; the attach target after the `/` when it has one.
    func matches(_ section: String) -> (Bool, String?) {
        switch match {
        case .exact:
            return (section == prefix, nil)
        case .exactOrTarget:
            if section == prefix { return (true, nil) }
            guard section.hasPrefix(prefix + "/") else { return (false, nil) }
            let target = String(section.dropFirst(prefix.count + 1))
            return (true, target.isEmpty ? nil : target)
        }
    }

    /// The definition for a section name, and the attach target it names; nil when libbpf
    /// would not recognise the section.
    public static func find(_ section: String) -> (definition: SectionDefinition, attachTarget: String?)? {
        for definition in all {
            let (matched, target) = definition.matches(section)
            if matched { return (definition, target) }
        }
        return nil
    }

    /// libbpf's table, first match wins.
    public static let all: [SectionDefinition] = {
        typealias A = AttachType
        return [
            .init("socket", .exact, .socketFilter),
            .init("sk_reuseport/migrate", .exact, .skReuseport, A.skReuseportSelectOrMigrate),
            .init("sk_reuseport", .exact, .skReuseport, A.skReuseportSelect),
            .init("kprobe", .exactOrTarget, .kprobe),
            .init("uprobe", .exactOrTarget, .kprobe),
            .init("uprobe.s", .exactOrTarget, .kprobe, sleepable: true),
            .init("kretprobe", .exactOrTarget, .kprobe),
            .init("uretprobe", .exactOrTarget, .kprobe),
            .init("uretprobe.s", .exactOrTarget, .kprobe, sleepable: true),
            .init("kprobe.multi", .exactOrTarget, .kprobe, A.traceKprobeMulti),
            .init("kretprobe.multi", .exactOrTarget, .kprobe, A.traceKprobeMulti),
            .init("kprobe.session", .exactOrTarget, .kprobe, A.traceKprobeSession),
            .init("uprobe.multi", .exactOrTarget, .kprobe, A.traceUprobeMulti),
            .init("uretprobe.multi", .exactOrTarget, .kprobe, A.traceUprobeMulti),
            .init("uprobe.multi.s", .exactOrTarget, .kprobe, A.traceUprobeMulti, sleepable: true),
            .init("uretprobe.multi.s", .exactOrTarget, .kprobe, A.traceUprobeMulti, sleepable: true),
            .init("uprobe.session", .exactOrTarget, .kprobe, A.traceUprobeSession),
            .init("uprobe.session.s", .exactOrTarget, .kprobe, A.traceUprobeSession, sleepable: true),
            .init("ksyscall", .exactOrTarget, .kprobe),
            .init("kretsyscall", .exactOrTarget, .kprobe),
            .init("usdt", .exactOrTarget, .kprobe),
            .init("usdt.s", .exactOrTarget, .kprobe, sleepable: true),
            .init("tc/ingress", .exact, .schedCls, A.tcxIngress),
            .init("tc/egress", .exact, .schedCls, A.tcxEgress),
            .init("tcx/ingress", .exact, .schedCls, A.tcxIngress),
            .init("tcx/egress", .exact, .schedCls, A.tcxEgress),
            .init("tc", .exact, .schedCls),
            .init("classifier", .exact, .schedCls),
            .init("action", .exact, .schedAct),
            .init("netkit/primary", .exact, .schedCls, A.netkitPrimary),
            .init("netkit/peer", .exact, .schedCls, A.netkitPeer),
            .init("tracepoint", .exactOrTarget, .tracepoint),
            .init("tp", .exactOrTarget, .tracepoint),
            .init("raw_tracepoint", .exactOrTarget, .rawTracepoint),
            .init("raw_tp", .exactOrTarget, .rawTracepoint),
            .init("raw_tracepoint.w", .exactOrTarget, .rawTracepointWritable),
            .init("raw_tp.w", .exactOrTarget, .rawTracepointWritable),
            .init("tp_btf", .exactOrTarget, .tracing, A.traceRawTP),
            .init("fentry", .exactOrTarget, .tracing, A.traceFentry),
            .init("fmod_ret", .exactOrTarget, .tracing, A.modifyReturn),
            .init("fexit", .exactOrTarget, .tracing, A.traceFexit),
            .init("fentry.s", .exactOrTarget, .tracing, A.traceFentry, sleepable: true),
            .init("fmod_ret.s", .exactOrTarget, .tracing, A.modifyReturn, sleepable: true),
            .init("fexit.s", .exactOrTarget, .tracing, A.traceFexit, sleepable: true),
            .init("freplace", .exactOrTarget, .ext),
            .init("lsm", .exactOrTarget, .lsm, A.lsmMac),
            .init("lsm.s", .exactOrTarget, .lsm, A.lsmMac, sleepable: true),
            .init("lsm_cgroup", .exactOrTarget, .lsm, A.lsmCgroup),
            .init("iter", .exactOrTarget, .tracing, A.traceIter),
            .init("iter.s", .exactOrTarget, .tracing, A.traceIter, sleepable: true),
            .init("syscall", .exact, .syscall, sleepable: true),
            .init("xdp.frags/devmap", .exact, .xdp, A.xdpDevmap),
            .init("xdp/devmap", .exact, .xdp, A.xdpDevmap),
            .init("xdp.frags/cpumap", .exact, .xdp, A.xdpCpumap),
            .init("xdp/cpumap", .exact, .xdp, A.xdpCpumap),
            .init("xdp.frags", .exact, .xdp, A.xdp),
            .init("xdp", .exact, .xdp, A.xdp),
            .init("perf_event", .exact, .perfEvent),
            .init("lwt_in", .exact, .lwtIn),
            .init("lwt_out", .exact, .lwtOut),
            .init("lwt_xmit", .exact, .lwtXmit),
            .init("lwt_seg6local", .exact, .lwtSeg6local),
            .init("sockops", .exact, .sockOps, A.cgroupSockOps),
            .init("sk_skb/stream_parser", .exact, .skSkb, A.skSkbStreamParser),
            .init("sk_skb/stream_verdict", .exact, .skSkb, A.skSkbStreamVerdict),
            .init("sk_skb", .exact, .skSkb),
            .init("sk_msg", .exact, .skMsg, A.skMsgVerdict),
            .init("lirc_mode2", .exact, .lircMode2, A.lircMode2),
            .init("flow_dissector", .exact, .flowDissector, A.flowDissector),
            .init("cgroup_skb/ingress", .exact, .cgroupSkb, A.cgroupInetIngress),
            .init("cgroup_skb/egress", .exact, .cgroupSkb, A.cgroupInetEgress),
            .init("cgroup/skb", .exact, .cgroupSkb),
            .init("cgroup/sock_create", .exact, .cgroupSock, A.cgroupInetSockCreate),
            .init("cgroup/sock_release", .exact, .cgroupSock, A.cgroupInetSockRelease),
            .init("cgroup/sock", .exact, .cgroupSock, A.cgroupInetSockCreate),
            .init("cgroup/post_bind4", .exact, .cgroupSock, A.cgroupInet4PostBind),
            .init("cgroup/post_bind6", .exact, .cgroupSock, A.cgroupInet6PostBind),
            .init("cgroup/bind4", .exact, .cgroupSockAddr, A.cgroupInet4Bind),
            .init("cgroup/bind6", .exact, .cgroupSockAddr, A.cgroupInet6Bind),
            .init("cgroup/connect4", .exact, .cgroupSockAddr, A.cgroupInet4Connect),
            .init("cgroup/connect6", .exact, .cgroupSockAddr, A.cgroupInet6Connect),
            .init("cgroup/connect_unix", .exact, .cgroupSockAddr, A.cgroupUnixConnect),
            .init("cgroup/sendmsg4", .exact, .cgroupSockAddr, A.cgroupUDP4Sendmsg),
            .init("cgroup/sendmsg6", .exact, .cgroupSockAddr, A.cgroupUDP6Sendmsg),
            .init("cgroup/sendmsg_unix", .exact, .cgroupSockAddr, A.cgroupUnixSendmsg),
            .init("cgroup/recvmsg4", .exact, .cgroupSockAddr, A.cgroupUDP4Recvmsg),
            .init("cgroup/recvmsg6", .exact, .cgroupSockAddr, A.cgroupUDP6Recvmsg),
            .init("cgroup/recvmsg_unix", .exact, .cgroupSockAddr, A.cgroupUnixRecvmsg),
            .init("cgroup/getpeername4", .exact, .cgroupSockAddr, A.cgroupInet4Getpeername),
            .init("cgroup/getpeername6", .exact, .cgroupSockAddr, A.cgroupInet6Getpeername),
            .init("cgroup/getpeername_unix", .exact, .cgroupSockAddr, A.cgroupUnixGetpeername),
            .init("cgroup/getsockname4", .exact, .cgroupSockAddr, A.cgroupInet4Getsockname),
            .init("cgroup/getsockname6", .exact, .cgroupSockAddr, A.cgroupInet6Getsockname),
            .init("cgroup/getsockname_unix", .exact, .cgroupSockAddr, A.cgroupUnixGetsockname),
            .init("cgroup/sysctl", .exact, .cgroupSysctl, A.cgroupSysctl),
            .init("cgroup/getsockopt", .exact, .cgroupSockopt, A.cgroupGetsockopt),
            .init("cgroup/setsockopt", .exact, .cgroupSockopt, A.cgroupSetsockopt),
            .init("cgroup/dev", .exact, .cgroupDevice, A.cgroupDevice),
            .init("struct_ops", .exactOrTarget, .structOps),
            .init("struct_ops.s", .exactOrTarget, .structOps, sleepable: true),
            .init("sk_lookup", .exact, .skLookup, A.skLookup),
            .init("netfilter", .exact, .netfilter, A.netfilter),
        ]
    }()
}
