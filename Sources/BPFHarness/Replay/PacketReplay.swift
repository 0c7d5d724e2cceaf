import BPFSession

/// Runs a stream of packets (a capture, or any sequence) through one packet program,
/// packet after packet, on one backend or several compared side by side, without
/// printing anything: `bpfsim replay` and test specs' `pcap:` cases are built on it.
///
/// ```swift
/// let object = try BPFObject(path: "prog.o")
/// let replay = try PacketReplay(object: object, program: "xdp_main", backends: [.interpreter, .engine(.jit)],
///                               options: .init(cpus: 4))
/// let summary = replay.replay(try CaptureReader(path: "trace.pcap")) { result in
///     if let fault = result.fault { print("packet \(result.number): \(fault)") }
/// }
/// print(summary.verdicts, replay.maps())
/// ```
///
/// - **State.** Each backend keeps its maps from packet to packet, as a data path does.
/// - **Clock.** Before each packet, bpfsim's clock (`bpf_ktime_get_ns` and friends) is set
///   to the packet's timestamp (nanoseconds since 1970); within the run it steps as the
///   configuration's world says. The kernel's clock is its own.
/// - **CPUs.** Each packet runs on the CPU receive-side scaling gives its flow
///   (`ReceiveSideScaling`), which is also the XDP `rx_queue_index`; `ingress_ifindex` is
///   `options.ingressIfindex`. Per-CPU maps hold `options.cpus` values (the kernel's
///   possible CPUs when the kernel is compared).
/// - **Lengths.** A packet cut by the capture's snapshot length runs as captured; a tc,
///   socket filter or cgroup_skb program sees the original length as `wire_len`.
/// - **Faults.** A packet whose run faults is counted and reported in its result; the
///   replay goes on with the next packet and the maps as the fault left them.
/// - **Comparison.** With several backends every packet is compared as `RunComparison`
///   compares (everything between bpfsim's engines; with the kernel, what it reports);
///   the replay stops at the first divergence, since the states differ from there on.
///
/// Memory does not grow with the number of packets: a result is handed to the caller and
/// let go, and the summary holds counts.
public final class PacketReplay {
    /// The backends, in the order given; the first one's results are the reported ones.
    public let backends: [Backend]
    public let programName: String
    public let programType: ProgramType
    public let options: ReplayOptions
    /// What has been replayed so far.
    public private(set) var summary = ReplaySummary()

    private let stream: RunComparison.Stream
    private let rss: ReceiveSideScaling
    private let comparesWithKernel: Bool
    private var started: ContinuousClock.Instant?

    /// The program types a replay runs: those that take a packet.
    public static let packetTypes: [ProgramType] = [.xdp, .schedCls, .schedAct, .socketFilter, .cgroupSkb]

    /// Replays through `program` of a loaded object. `configuration` gives the limits and
    /// the world (its `cpuCount` is replaced by `options.cpus`); `state`, when given, fills
    /// the maps before the first packet (bpfsim's machine; the kernel copies its elements).
    /// Throws when the program is not a packet program or a backend cannot be set up
    /// (`kernel_unavailable` where bpf() is refused, with the kernel's one sentence).
    public convenience init(
        object: BPFObject, program: String, backends: [Backend] = [.interpreter],
        configuration: RunConfiguration = .init(), options: ReplayOptions = .init(),
        state: ((Machine) throws -> Void)? = nil
    ) throws(ReplayError) {
        guard let definition = object.programs.first(where: { $0.name == program }) else {
            throw ReplayError(
                code: "unknown_program",
                message:
                    "no program named '\(program)' (programs: \(object.programs.map(\.name).joined(separator: ", ")))")
        }
        try self.init(
            source: .object(object, program: program), name: program, type: definition.type, backends: backends,
            configuration: configuration, options: options, state: state)
    }

    /// Replays through program `index` of `programs` (bpfsim's engines only), for
    /// assembly programs and tests.
    public convenience init(
        programs: [ProgramDefinition], maps: [MapSpec] = [], index: Int, backends: [Backend] = [.interpreter],
        configuration: RunConfiguration = .init(), options: ReplayOptions = .init(),
        state: ((Machine) throws -> Void)? = nil
    ) throws(ReplayError) {
        precondition(programs.indices.contains(index), "no program \(index)")
        try self.init(
            source: .programs(programs, maps: maps, index: index), name: programs[index].name,
            type: programs[index].type, backends: backends, configuration: configuration, options: options,
            state: state)
    }

    private init(
        source: RunComparison.Source, name: String, type: ProgramType, backends: [Backend],
        configuration: RunConfiguration, options: ReplayOptions, state: ((Machine) throws -> Void)?
    ) throws(ReplayError) {
        guard !backends.isEmpty else { throw ReplayError(code: "no_backend", message: "no engine to replay on") }
        guard Self.packetTypes.contains(type) else {
            throw .notAPacketProgram(name, type: type)
        }
        guard (1...1024).contains(options.cpus) else {
            throw ReplayError(code: "bad_cpus", message: "--cpus must be between 1 and 1024, not \(options.cpus)")
        }
        comparesWithKernel = backends.contains(.kernel)
        if comparesWithKernel {
            if let reason = KernelSession.unavailability {
                throw ReplayError(code: "kernel_unavailable", message: reason)
            }
            let kernelCPUs = KernelSession.possibleCPUs
            if options.cpus > kernelCPUs {
                throw ReplayError(
                    code: "bad_cpus",
                    message:
                        "the kernel runs each packet on the CPU RSS gives it, and this machine has \(kernelCPUs) CPU\(kernelCPUs == 1 ? "" : "s"): give --cpus \(kernelCPUs) or fewer"
                )
            }
        }
        var configuration = configuration
        // Per-CPU maps hold a value for every possible CPU; beside the kernel that must be
        // the kernel's count (bpf_map_lookup_percpu_elem on CPU 1 finds a value there even
        // when every packet runs on CPU 0), while RSS still spreads over options.cpus.
        configuration.world.cpuCount = comparesWithKernel ? KernelSession.possibleCPUs : options.cpus
        if options.verify {
            // As the kernel does at load, and `bpfsim run` before it runs (Session.verify).
            do throws(SessionError) {
                let session: Session
                let index: Int
                switch source {
                case .object(let object, let program):
                    session = try Session(object: object, configuration: configuration)
                    index = try session.programIndex(named: program)
                case .programs(let programs, let maps, let programIndex):
                    session = try Session(programs: programs, maps: maps, configuration: configuration)
                    index = programIndex
                }
                try session.verify(index)
            } catch {
                throw ReplayError(session: error)
            }
        }
        do {
            stream = try RunComparison.Stream(
                source, backends: backends, configuration: configuration, state: state)
        } catch {
            throw ReplayError(session: error)
        }
        self.backends = backends
        self.programName = name
        self.programType = type
        self.options = options
        self.rss = ReceiveSideScaling(queues: options.cpus, key: options.hashKey)
        summary.packetsPerCPU = Array(repeating: 0, count: options.cpus)
    }

    /// The largest XDP packet `BPF_PROG_TEST_RUN` takes: 3520 bytes linear and 17
    /// page-sized fragments; beyond, it fails with ENOMEM (docs/kernel.md).
    public static let kernelXDPLimit = 3520 + 17 * 4096

    /// Why the kernel's test run cannot take this packet at all, where bpfsim runs it as a
    /// data path would (docs/kernel.md); nil when it can.
    func kernelCannotRun(_ packet: ReplayPacket) -> String? {
        guard comparesWithKernel, programType == .xdp else { return nil }
        if packet.bytes.count < 14 {
            return "the kernel's test run refuses packets shorter than 14 bytes (EINVAL); this one has \(packet.bytes.count)"
        }
        if packet.bytes.count > Self.kernelXDPLimit {
            return "the kernel's test run refuses XDP packets longer than \(Self.kernelXDPLimit) bytes (ENOMEM); this one has \(packet.bytes.count)"
        }
        return nil
    }

    /// Runs one packet on every backend and counts it in `summary`. When the kernel is
    /// compared, a packet its test run cannot take is left out on every backend, so
    /// their maps stay comparable (`ReplayResult.leftOut` says why).
    public func replay(_ packet: ReplayPacket) -> ReplayResult {
        if started == nil { started = ContinuousClock.now }
        let number = summary.packets + 1
        let queue = rss.queue(for: packet.bytes)
        if let reason = kernelCannotRun(packet) {
            let result = ReplayResult(
                number: number, timestamp: packet.timestamp, cpu: queue, lengthIn: packet.bytes.count,
                wireLength: max(packet.originalLength, packet.bytes.count), results: [], divergence: nil,
                leftOut: reason)
            summary.count(result)
            if let started { summary.elapsedNanoseconds = Self.nanoseconds(since: started) }
            return result
        }
        var frame = Packet(packet.bytes, ingressIfindex: options.ingressIfindex)
        // The kernel's test run puts an XDP packet on lo, which has one receive queue.
        frame.rxQueueIndex = comparesWithKernel ? 0 : queue
        let wireLength = max(packet.originalLength, packet.bytes.count)
        if programType != .xdp { frame.wireLength = wireLength }
        let (runResults, divergence) = stream.run(
            .frame(frame), number: number, cpu: queue, clock: options.clockFromTimestamps ? packet.timestamp : nil)
        var results = runResults
        // The kernel's runs carry a return value but no verdict: give them the one it means.
        for index in results.indices {
            guard var run = results[index].run, run.verdict == nil, run.refusal == nil, run.execution.fault == nil
            else { continue }
            run.verdict = Verdict(type: programType, returnValue: run.execution.returnValue)
            results[index].run = run
        }
        let result = ReplayResult(
            number: number, timestamp: packet.timestamp, cpu: queue, lengthIn: packet.bytes.count,
            wireLength: wireLength, results: results, divergence: divergence)
        summary.count(result)
        if let started { summary.elapsedNanoseconds = Self.nanoseconds(since: started) }
        return result
    }

    /// Replays a capture from where its reader stands, streaming, calling `each` with every
    /// result. Stops after `limit` packets, at the first divergence between backends, or
    /// at the end of the capture. A record that cannot be presented as Ethernet is
    /// skipped and counted (`skippedRecords`); a capture that ends with an error (a file
    /// cut in the middle of a record) ends the replay with `summary.captureError` set,
    /// after everything before it was counted. Errors thrown by `each` end the replay
    /// and are rethrown.
    @discardableResult
    public func replay(_ reader: CaptureReader, limit: Int? = nil) -> ReplaySummary {
        replay(reader, limit: limit) { _ in }
    }

    /// Replays a capture, calling `each` with every packet's result (see above).
    @discardableResult
    public func replay(
        _ reader: CaptureReader, limit: Int? = nil, each: (ReplayResult) throws -> Void
    ) rethrows -> ReplaySummary {
        while limit.map({ summary.packets < $0 }) ?? true, summary.divergence == nil {
            let record: CaptureRecord
            do throws(CaptureError) {
                guard let next = try reader.next() else { break }
                record = next
            } catch where error.isRecoverable {
                summary.skip(error)
                continue
            } catch {
                summary.captureError = error
                break
            }
            try each(replay(ReplayPacket(record)))
        }
        summary.limitReached = limit.map { summary.packets >= $0 } ?? false
        return summary
    }

    /// Replays packets from any sequence, as `replay(_:limit:each:)` does a capture.
    @discardableResult
    public func replay<Packets: Sequence>(packets: Packets, limit: Int? = nil) -> ReplaySummary
    where Packets.Element == ReplayPacket {
        replay(packets: packets, limit: limit) { _ in }
    }

    /// Replays packets from any sequence, calling `each` with every result.
    @discardableResult
    public func replay<Packets: Sequence>(
        packets: Packets, limit: Int? = nil, each: (ReplayResult) throws -> Void
    ) rethrows -> ReplaySummary where Packets.Element == ReplayPacket {
        for packet in packets {
            if let limit, summary.packets >= limit {
                summary.limitReached = true
                break
            }
            if summary.divergence != nil { break }
            try each(replay(packet))
        }
        return summary
    }

    /// The maps of backend `index` (0: the first given) as they are now, by name.
    public func maps(of index: Int = 0) -> [String: MapDump] { stream.maps(of: index) }

    /// The machine of backend `index` when it is one of bpfsim's engines (for
    /// `MapState.save`); nil for the kernel.
    public func machine(of index: Int = 0) -> Machine? { stream.machine(of: index) }

    private static func nanoseconds(since start: ContinuousClock.Instant) -> UInt64 {
        let elapsed = ContinuousClock.now - start
        let (seconds, attoseconds) = elapsed.components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds / 1_000_000_000))
    }
}

/// How a replay is run.
public struct ReplayOptions: Sendable, Hashable {
    /// Emulated CPUs (receive queues) packets are spread over; per-CPU maps hold this many values.
    public var cpus: Int
    /// The device packets arrive on (`xdp_md.ingress_ifindex`, `__sk_buff.ingress_ifindex`).
    /// 1 is the loopback device, where the kernel's test run puts them.
    public var ingressIfindex: UInt32
    /// Whether each packet's timestamp sets bpfsim's clock before it runs.
    public var clockFromTimestamps: Bool
    /// The RSS Toeplitz key (40 bytes or more).
    public var hashKey: [UInt8]
    /// Whether bpfsim's verifier checks the program first, as the kernel does at load
    /// (`Session.verify`); a refusal throws `ReplayError` with code `verifier`. False
    /// replays what the kernel would refuse (`--no-verify`).
    public var verify: Bool

    public init(
        cpus: Int = 1, ingressIfindex: UInt32 = 1, clockFromTimestamps: Bool = true,
        hashKey: [UInt8] = ReceiveSideScaling.defaultKey, verify: Bool = true
    ) {
        self.verify = verify
        self.cpus = cpus
        self.ingressIfindex = ingressIfindex
        self.clockFromTimestamps = clockFromTimestamps
        self.hashKey = hashKey
    }
}

/// One packet to replay: an Ethernet frame, its length on the wire, its time.
public struct ReplayPacket: Sendable, Hashable {
    public var bytes: [UInt8]
    /// The length on the wire (more than `bytes.count` for a packet cut by the snapshot length).
    public var originalLength: Int
    /// Nanoseconds since 1970, when known; it sets the clock the packet's run starts from.
    public var timestamp: UInt64?

    public init(_ bytes: [UInt8], originalLength: Int? = nil, timestamp: UInt64? = nil) {
        self.bytes = bytes
        self.originalLength = originalLength ?? bytes.count
        self.timestamp = timestamp
    }

    /// A capture record, as the reader presents it.
    public init(_ record: CaptureRecord) {
        self.init(record.bytes, originalLength: record.originalLength, timestamp: record.timestamp)
    }
}

/// Why a replay could not start.
public struct ReplayError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable identifier: `unknown_program`, `not_a_packet_program`, `bad_cpus`,
    /// `kernel_unavailable`, `verifier` (bpfsim's verifier predicts the kernel would refuse
    /// the program), or another `SessionError` code.
    public let code: String
    public let message: String
    public var description: String { message }

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public init(session error: SessionError) {
        self.init(code: error.code, message: error.message)
    }

    static func notAPacketProgram(_ name: String, type: ProgramType) -> ReplayError {
        ReplayError(
            code: "not_a_packet_program",
            message:
                "'\(name)' is a \(type.kernelName) program; a replay runs packet programs (xdp, sched_cls, sched_act, socket_filter, cgroup_skb)"
        )
    }
}
