/// A deterministic generator of realistic Ethernet traffic, for performance and memory
/// tests that need captures far larger than any checked in.
///
/// Packets are IPv4 and IPv6, TCP and UDP, over many flows whose popularity is skewed (half
/// of the packets belong to a tenth of the flows). A TCP flow opens with a handshake
/// (SYN with MSS, SACK-permitted, timestamps and window scale; SYN-ACK; ACK), carries data
/// mostly from server to client in full 1,448-byte segments and shorter pushes, with
/// timestamp options and sequence and acknowledgement numbers that add up, and closes with a
/// FIN after a few dozen to a few thousand packets, when a new connection from a new port
/// takes its place. UDP flows are DNS-like (port 53: short queries, longer answers) or
/// QUIC-like (port 443: 1,200 to 1,350-byte datagrams). IPv4 header, TCP and UDP checksums
/// are correct. Payloads are pseudo-random bytes, as encrypted traffic looks.
///
/// The same configuration gives the same packets and timestamps, byte for byte, on every
/// machine: the only source of variation is a SplitMix64 stream seeded by `seed`.
public struct CaptureSynthesizer: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// The seed of the random stream.
        public var seed: UInt64
        /// How many flows are open at once.
        public var flowCount: Int
        /// Percent of flows over IPv6.
        public var ipv6Percent: Int
        /// Percent of flows over UDP.
        public var udpPercent: Int
        /// The first packet's timestamp, in nanoseconds since the epoch (default 2023-11-14 22:13:20 UTC).
        public var startTime: UInt64
        /// The mean time between packets, in nanoseconds (gaps are uniform in 0...2×mean).
        public var meanGap: UInt64

        public init(
            seed: UInt64 = 1, flowCount: Int = 4096, ipv6Percent: Int = 20, udpPercent: Int = 25,
            startTime: UInt64 = 1_700_000_000_000_000_000, meanGap: UInt64 = 20_000
        ) {
            precondition(flowCount > 0, "a synthesized capture needs at least one flow")
            self.seed = seed
            self.flowCount = flowCount
            self.ipv6Percent = ipv6Percent
            self.udpPercent = udpPercent
            self.startTime = startTime
            self.meanGap = meanGap
        }
    }

    /// What `write` produced.
    public struct Summary: Hashable, Sendable {
        /// Records written.
        public let packets: Int
        /// The file's size in bytes (header and records).
        public let fileBytes: Int
    }

    public let configuration: Configuration
    /// How many packets `next` has made.
    public private(set) var packetsMade = 0
    private var random: SplitMix64
    private var flows: [Flow] = []
    private var clock: UInt64

    public init(_ configuration: Configuration = .init()) {
        self.configuration = configuration
        random = SplitMix64(seed: configuration.seed)
        clock = configuration.startTime
        flows.reserveCapacity(configuration.flowCount)
        for index in 0..<configuration.flowCount { flows.append(makeFlow(index)) }
    }

    /// The next packet and its timestamp.
    public mutating func next() -> (bytes: [UInt8], timestamp: UInt64) {
        var bytes: [UInt8] = []
        let timestamp = next(into: &bytes)
        return (bytes, timestamp)
    }

    /// Builds the next packet in `buffer` (replacing what it held, keeping its capacity) and
    /// returns its timestamp in nanoseconds.
    public mutating func next(into buffer: inout [UInt8]) -> UInt64 {
        packetsMade += 1
        clock &+= random.next() % (2 * configuration.meanGap + 1)
        // Skew: half of the packets go to the first tenth of the flows.
        let count = UInt64(flows.count)
        let hot = max(count / 10, 1)
        let index = Int(random.next() % 2 == 0 ? random.next() % hot : random.next() % count)
        buffer.removeAll(keepingCapacity: true)
        if flows[index].isUDP {
            udpPacket(flow: index, into: &buffer)
        } else {
            tcpPacket(flow: index, into: &buffer)
        }
        return clock
    }

    /// Writes synthesized packets to a pcap file through `CaptureWriter` until `packets`
    /// records are written or the file has reached `bytes` bytes, whichever comes first (at
    /// least one limit must be given). One buffer is reused for every packet.
    public static func write(
        to path: String, packets: Int? = nil, bytes: Int? = nil, configuration: Configuration = .init()
    ) throws(CaptureError) -> Summary {
        precondition(packets != nil || bytes != nil, "give a packet count or a size")
        let writer = try CaptureWriter(path: path)
        var synthesizer = CaptureSynthesizer(configuration)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1_600)
        var fileBytes = 24  // the pcap file header
        var written = 0
        while written < (packets ?? Int.max) && fileBytes < (bytes ?? Int.max) {
            let timestamp = synthesizer.next(into: &buffer)
            try writer.write(buffer, timestamp: timestamp)
            fileBytes += 16 + buffer.count  // record header and frame
            written += 1
        }
        try writer.close()
        return Summary(packets: written, fileBytes: fileBytes)
    }

    // MARK: - Flows

    private struct Flow: Sendable {
        var isIPv6: Bool
        var isUDP: Bool
        var clientMAC: [UInt8]
        var clientAddress: [UInt8]
        var serverAddress: [UInt8]
        var clientPort: UInt16
        var serverPort: UInt16
        /// Next sequence number each side sends (TCP).
        var clientSequence: UInt32
        var serverSequence: UInt32
        /// Packets sent on this connection so far, and after how many it closes (TCP).
        var sent: Int
        var lifetime: Int
        var ipIdentification: UInt16
        var flowLabel: UInt32
    }

    /// The gateway all flows go through, on the server side of every packet.
    private static let gatewayMAC: [UInt8] = [0x02, 0x00, 0x5E, 0x10, 0x00, 0x01]

    private mutating func makeFlow(_ index: Int) -> Flow {
        let isIPv6 = Int(random.next() % 100) < configuration.ipv6Percent
        let isUDP = Int(random.next() % 100) < configuration.udpPercent
        let a = random.next()
        var clientMAC: [UInt8] = [0x02]
        for shift in stride(from: 0, to: 40, by: 8) { clientMAC.append(UInt8(truncatingIfNeeded: a >> shift)) }
        let server = random.next() % 64
        let clientAddress: [UInt8]
        let serverAddress: [UInt8]
        if isIPv6 {
            // fd00::/8 clients (unique local), 2001:db8::/32 servers (documentation).
            var client: [UInt8] = [0xFD, 0x00, 0, 0, 0, 0, 0, 1]
            let b = random.next()
            for shift in stride(from: 0, to: 64, by: 8) { client.append(UInt8(truncatingIfNeeded: b >> shift)) }
            clientAddress = client
            serverAddress = [0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, UInt8(server + 1)]
        } else {
            // 10.0.0.0/8 clients, 198.51.100.0/24 and 203.0.113.0/24 servers (documentation).
            clientAddress = [10, UInt8(truncatingIfNeeded: a >> 40), UInt8(truncatingIfNeeded: a >> 48), UInt8(truncatingIfNeeded: a >> 56) | 1]
            serverAddress = server < 32 ? [198, 51, 100, UInt8(server + 1)] : [203, 0, 113, UInt8(server - 31)]
        }
        let serverPort: UInt16
        if isUDP {
            serverPort = random.next() % 2 == 0 ? 53 : 443
        } else {
            let ports: [UInt16] = [443, 443, 443, 80, 22, 8080]
            serverPort = ports[Int(random.next() % UInt64(ports.count))]
        }
        return Flow(
            isIPv6: isIPv6, isUDP: isUDP, clientMAC: clientMAC, clientAddress: clientAddress,
            serverAddress: serverAddress, clientPort: ephemeralPort(), serverPort: serverPort,
            clientSequence: UInt32(truncatingIfNeeded: random.next()),
            serverSequence: UInt32(truncatingIfNeeded: random.next()), sent: 0, lifetime: lifetime(),
            ipIdentification: UInt16(truncatingIfNeeded: random.next()),
            flowLabel: UInt32(truncatingIfNeeded: random.next()) & 0xF_FFFF)
    }

    private mutating func ephemeralPort() -> UInt16 { UInt16(32_768 + random.next() % 28_232) }

    /// Packets per TCP connection: 20 to ~2,000, most of them short.
    private mutating func lifetime() -> Int {
        let scale = random.next() % 4 == 0 ? 2_000 : 200
        return 20 + Int(random.next() % UInt64(scale))
    }

    // MARK: - Packets

    private mutating func tcpPacket(flow index: Int, into buffer: inout [UInt8]) {
        var flow = flows[index]
        defer { flows[index] = flow }
        let fromClient: Bool
        var flags: UInt8
        var payload = 0
        var synOptions = false
        switch flow.sent {
        case 0:
            (fromClient, flags, synOptions) = (true, 0x02, true)  // SYN
        case 1:
            (fromClient, flags, synOptions) = (false, 0x12, true)  // SYN, ACK
        case 2:
            (fromClient, flags) = (true, 0x10)  // ACK
        case flow.lifetime...:
            (fromClient, flags) = (true, 0x11)  // FIN, ACK
        default:
            fromClient = random.next() % 10 < 3
            flags = 0x10
            switch random.next() % 10 {
            case 0..<2: payload = 0  // a pure ACK
            case 2..<8: payload = fromClient ? 1 + Int(random.next() % 600) : 1_448
            default: payload = 1 + Int(random.next() % 1_448)
            }
            if payload > 0 && payload < 1_448 { flags |= 0x08 }  // PSH
        }
        let optionsLength = synOptions ? 20 : 12
        let tcpLength = 20 + optionsLength + payload
        let sequence = fromClient ? flow.clientSequence : flow.serverSequence
        let acknowledgement = flow.sent == 0 ? 0 : (fromClient ? flow.serverSequence : flow.clientSequence)
        // SYN and FIN take one sequence number each.
        let advance = UInt32(payload) + (flags & 0x03 != 0 ? 1 : 0)
        if fromClient { flow.clientSequence &+= advance } else { flow.serverSequence &+= advance }

        let l4Start = ipHeader(&flow, fromClient: fromClient, protocolNumber: 6, payloadLength: tcpLength, into: &buffer)
        let (sourcePort, destinationPort) = fromClient ? (flow.clientPort, flow.serverPort) : (flow.serverPort, flow.clientPort)
        append16(sourcePort, &buffer)
        append16(destinationPort, &buffer)
        append32(sequence, &buffer)
        append32(acknowledgement, &buffer)
        buffer.append(UInt8((20 + optionsLength) / 4) << 4)
        buffer.append(flags)
        append16(fromClient ? 502 : 509, &buffer)  // window, scaled by the negotiated factor
        append16(0, &buffer)  // checksum, filled in below
        append16(0, &buffer)  // urgent pointer
        let timestampValue = UInt32(truncatingIfNeeded: clock / 1_000_000)
        if synOptions {
            buffer += [0x02, 0x04, 0x05, 0xB4]  // MSS 1460
            buffer += [0x04, 0x02]  // SACK permitted
            buffer += [0x08, 0x0A]  // timestamps
            append32(timestampValue, &buffer)
            append32(flow.sent == 0 ? 0 : timestampValue &- 1, &buffer)
            buffer += [0x01, 0x03, 0x03, 0x07]  // NOP, window scale 7
        } else {
            buffer += [0x01, 0x01, 0x08, 0x0A]  // NOP, NOP, timestamps
            append32(timestampValue, &buffer)
            append32(timestampValue &- 3, &buffer)
        }
        appendPayload(payload, &buffer)
        transportChecksum(&buffer, flow: flow, fromClient: fromClient, l4Start: l4Start, protocolNumber: 6, checksumOffset: 16)

        flow.sent += 1
        if flags & 0x01 != 0 {
            // The connection closed: the next packet opens a new one from a new port.
            flow.sent = 0
            flow.clientPort = ephemeralPort()
            flow.lifetime = lifetime()
        }
    }

    private mutating func udpPacket(flow index: Int, into buffer: inout [UInt8]) {
        var flow = flows[index]
        defer { flows[index] = flow }
        let fromClient = flow.sent % 2 == 0
        let payload: Int
        if flow.serverPort == 53 {
            payload = fromClient ? 28 + Int(random.next() % 40) : 60 + Int(random.next() % 440)
        } else {
            payload = 1_200 + Int(random.next() % 151)
        }
        let l4Start = ipHeader(&flow, fromClient: fromClient, protocolNumber: 17, payloadLength: 8 + payload, into: &buffer)
        let (sourcePort, destinationPort) = fromClient ? (flow.clientPort, flow.serverPort) : (flow.serverPort, flow.clientPort)
        append16(sourcePort, &buffer)
        append16(destinationPort, &buffer)
        append16(UInt16(8 + payload), &buffer)
        append16(0, &buffer)
        appendPayload(payload, &buffer)
        transportChecksum(&buffer, flow: flow, fromClient: fromClient, l4Start: l4Start, protocolNumber: 17, checksumOffset: 6)
        flow.sent += 1
    }

    /// Ethernet and IP headers; returns where the transport header starts.
    private func ipHeader(
        _ flow: inout Flow, fromClient: Bool, protocolNumber: UInt8, payloadLength: Int, into buffer: inout [UInt8]
    ) -> Int {
        buffer += fromClient ? Self.gatewayMAC : flow.clientMAC
        buffer += fromClient ? flow.clientMAC : Self.gatewayMAC
        let (source, destination) = fromClient ? (flow.clientAddress, flow.serverAddress) : (flow.serverAddress, flow.clientAddress)
        if flow.isIPv6 {
            append16(0x86DD, &buffer)
            append32(0x6000_0000 | flow.flowLabel, &buffer)
            append16(UInt16(payloadLength), &buffer)
            buffer.append(protocolNumber)
            buffer.append(fromClient ? 64 : 57)  // hop limit
            buffer += source
            buffer += destination
            return 54
        }
        append16(0x0800, &buffer)
        buffer += [0x45, 0x00]
        append16(UInt16(20 + payloadLength), &buffer)
        flow.ipIdentification &+= 1
        append16(flow.ipIdentification, &buffer)
        append16(0x4000, &buffer)  // don't fragment
        buffer.append(fromClient ? 64 : 57)  // TTL
        buffer.append(protocolNumber)
        append16(0, &buffer)
        buffer += source
        buffer += destination
        let checksum = Self.onesComplement(Self.sum(buffer, 14..<34, initial: 0))
        buffer[24] = UInt8(checksum >> 8)
        buffer[25] = UInt8(checksum & 0xFF)
        return 34
    }

    /// The TCP or UDP checksum over the pseudo-header and segment.
    private func transportChecksum(
        _ buffer: inout [UInt8], flow: Flow, fromClient: Bool, l4Start: Int, protocolNumber: UInt8, checksumOffset: Int
    ) {
        let length = buffer.count - l4Start
        let addresses = flow.isIPv6 ? (22..<54) : (26..<34)
        var sum = Self.sum(buffer, addresses, initial: 0)
        sum += UInt32(protocolNumber) + UInt32(length & 0xFFFF) + UInt32(length >> 16)
        sum = Self.sum(buffer, l4Start..<buffer.count, initial: sum)
        var checksum = Self.onesComplement(sum)
        if checksum == 0 && protocolNumber == 17 { checksum = 0xFFFF }  // UDP sends 0 as all ones
        buffer[l4Start + checksumOffset] = UInt8(checksum >> 8)
        buffer[l4Start + checksumOffset + 1] = UInt8(checksum & 0xFF)
    }

    /// The 16-bit big-endian word sum of `range` (an odd last byte padded with zero).
    static func sum(_ bytes: [UInt8], _ range: Range<Int>, initial: UInt32) -> UInt32 {
        bytes.withUnsafeBufferPointer { buffer in
            var sum = UInt64(initial)
            var index = range.lowerBound
            while index + 1 < range.upperBound {
                sum += UInt64(buffer[index]) << 8 | UInt64(buffer[index + 1])
                index += 2
            }
            if index < range.upperBound { sum += UInt64(buffer[index]) << 8 }
            while sum > 0xFFFF_FFFF { sum = (sum & 0xFFFF_FFFF) + (sum >> 32) }
            return UInt32(sum)
        }
    }

    static func onesComplement(_ sum: UInt32) -> UInt16 {
        var folded = sum
        while folded > 0xFFFF { folded = (folded & 0xFFFF) + (folded >> 16) }
        return ~UInt16(folded)
    }

    private mutating func appendPayload(_ count: Int, _ buffer: inout [UInt8]) {
        var remaining = count
        while remaining > 0 {
            var word = random.next()
            for _ in 0..<min(8, remaining) {
                buffer.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
            remaining -= 8
        }
    }

    private func append16(_ value: UInt16, _ buffer: inout [UInt8]) {
        buffer.append(UInt8(value >> 8))
        buffer.append(UInt8(value & 0xFF))
    }

    private func append32(_ value: UInt32, _ buffer: inout [UInt8]) {
        append16(UInt16(value >> 16), &buffer)
        append16(UInt16(value & 0xFFFF), &buffer)
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a small, fast, well-mixed stream that is the
/// same on every platform, unlike the standard library's system generator.
struct SplitMix64: Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
