/// How a replay spreads packets over the emulated CPUs, the way a NIC's receive-side
/// scaling (RSS) spreads flows over its receive queues: a Toeplitz hash of the flow's
/// addresses and ports, with the default 40-byte key of Microsoft's RSS specification
/// (the key Linux drivers such as ixgbe and mlx5 fall back to in their documentation and
/// `ethtool -x` shows on many NICs), then a 128-entry indirection table filled
/// round robin, as `ethtool_rxfh_indir_default(i, n) = i % n` fills it. Queue `q` is
/// served by CPU `q`, so a packet runs on CPU `table[hash & 127]`.
///
/// What is hashed (the NIC's "sdfn" for TCP and UDP, "sd" for the rest):
///
/// | packet | hash input |
/// |---|---|
/// | IPv4 TCP or UDP, not a fragment | source address, destination address, source port, destination port |
/// | IPv4, other protocols or a fragment | source address, destination address |
/// | IPv6 TCP or UDP (no extension header before it) | as IPv4, with 16-byte addresses |
/// | IPv6, other | source address, destination address |
/// | anything else (ARP, LLDP, a header cut short) | nothing: hash 0, queue 0 |
///
/// Up to two VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8) are skipped before the EtherType.
/// The hash is the same on every run and every machine, so a replay is reproducible;
/// the two directions of a flow may land on different CPUs, as they do under RSS.
public struct ReceiveSideScaling: Sendable, Hashable {
    /// The emulated CPUs (receive queues).
    public let queues: Int
    /// The Toeplitz key.
    public let key: [UInt8]

    /// Microsoft's default RSS key ("Verifying the RSS Hash Calculation", Windows driver
    /// documentation), 40 bytes: enough for an IPv6 4-tuple (36 bytes) plus 4.
    public static let defaultKey: [UInt8] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
        0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
        0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ]

    /// Entries of the indirection table.
    public static let indirectionTableSize = 128

    public init(queues: Int, key: [UInt8] = ReceiveSideScaling.defaultKey) {
        precondition(queues >= 1, "RSS needs a queue")
        precondition(key.count >= 40, "the Toeplitz key must cover a 36-byte IPv6 4-tuple")
        self.queues = queues
        self.key = key
    }

    /// The queue (and CPU) for an Ethernet frame.
    public func queue(for frame: [UInt8]) -> UInt32 {
        queue(forHash: Self.toeplitz(key: key, input: Self.hashInput(frame: frame) ?? []))
    }

    /// The queue the indirection table gives a hash.
    public func queue(forHash hash: UInt32) -> UInt32 {
        UInt32(Int(hash & UInt32(Self.indirectionTableSize - 1)) % queues)
    }

    /// The Toeplitz hash of `input` with `key`: for every set bit of the input, counted
    /// from the most significant bit of its first byte, the 32 key bits starting at that
    /// bit position are XORed into the result. An empty input hashes to 0.
    public static func toeplitz(key: [UInt8], input: [UInt8]) -> UInt32 {
        precondition(key.count >= input.count + 4, "the key must be 4 bytes longer than the input")
        var result: UInt32 = 0
        // The key's 32 bits at the current bit position; the next key byte feeds in from the right.
        var window = UInt32(key[0]) << 24 | UInt32(key[1]) << 16 | UInt32(key[2]) << 8 | UInt32(key[3])
        for (index, byte) in input.enumerated() {
            let next = key[index + 4]
            for bit in 0..<8 {
                if byte & (0x80 >> UInt8(bit)) != 0 { result ^= window }
                window = window << 1 | UInt32((next >> UInt8(7 - bit)) & 1)
            }
        }
        return result
    }

    /// The bytes the hash covers for a frame (see the type's table), nil for none.
    public static func hashInput(frame: [UInt8]) -> [UInt8]? {
        func u16(_ offset: Int) -> Int { Int(frame[offset]) << 8 | Int(frame[offset + 1]) }
        guard frame.count >= 14 else { return nil }
        var offset = 12
        var etherType = u16(offset)
        var tags = 0
        while (etherType == 0x8100 || etherType == 0x88a8) && tags < 2 {
            guard frame.count >= offset + 6 else { return nil }
            offset += 4
            etherType = u16(offset)
            tags += 1
        }
        let network = offset + 2
        let addressBytes: Int
        let addresses: Int
        var transport: Int?
        let protocolNumber: UInt8
        switch etherType {
        case 0x0800:
            guard frame.count >= network + 20, frame[network] >> 4 == 4 else { return nil }
            let headerLength = Int(frame[network] & 0x0f) * 4
            guard headerLength >= 20 else { return nil }
            protocolNumber = frame[network + 9]
            let fragment = u16(network + 6) & 0x3fff  // MF or a fragment offset
            addressBytes = 4
            addresses = network + 12
            if fragment == 0 { transport = network + headerLength }
        case 0x86dd:
            guard frame.count >= network + 40, frame[network] >> 4 == 6 else { return nil }
            protocolNumber = frame[network + 6]
            addressBytes = 16
            addresses = network + 8
            transport = network + 40
        default:
            return nil
        }
        var input = Array(frame[addresses..<addresses + 2 * addressBytes])
        if protocolNumber == 6 || protocolNumber == 17, let transport, frame.count >= transport + 4 {
            input += frame[transport..<transport + 4]
        }
        return input
    }
}
