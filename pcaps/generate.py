#!/usr/bin/env python3
"""Writes the small captures in this folder, with the Python standard library only.

    python3 pcaps/generate.py          # rewrites every *.pcap here
    python3 pcaps/generate.py --check  # fails if a committed capture differs

Every capture is deterministic: fixed addresses, ports, sequence numbers and timestamps
(1 ms apart from 2026-01-01T00:00:00Z), classic pcap, little-endian, microsecond
timestamps, link type EN10MB. The packet builder here lays headers out the way the spec
format's builder does (docs/specs.md): checksums and lengths computed, no padding to
60 bytes, Ethernet 02:00:00:00:00:01 -> 02:00:00:00:00:02 unless given.
"""
import ipaddress
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EPOCH = 1767225600  # 2026-01-01T00:00:00Z


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def mac(text):
    return bytes(int(part, 16) for part in text.split(":"))


def eth(payload, ethertype, src="02:00:00:00:00:01", dst="02:00:00:00:00:02"):
    return mac(dst) + mac(src) + struct.pack("!H", ethertype) + payload


def vlan(payload, ethertype, vid, pcp=0):
    return struct.pack("!HH", (pcp << 13) | vid, ethertype) + payload


def ipv4(payload, proto, src, dst, ttl=64, tos=0, ident=0, flags=0, frag=0):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), ident, (flags << 13) | frag,
                         ttl, proto, 0, ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def ipv6(payload, next_header, src, dst, hop=64):
    return (struct.pack("!IHBB", 6 << 28, len(payload), next_header, hop)
            + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + payload)


def _pseudo(src, dst, proto, length):
    if ":" in src:
        return (ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
                + struct.pack("!IxxxB", length, proto))
    return ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed + struct.pack("!xBH", proto, length)


TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20}


def tcp(src, dst, sport, dport, flags="S", seq=0, ack=0, window=65535, payload=b""):
    bits = sum(TCP_FLAGS[c] for c in flags)
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, bits, window, 0, 0) + payload
    s = checksum(_pseudo(src, dst, 6, len(segment)) + segment)
    return segment[:16] + struct.pack("!H", s) + segment[18:]


def udp(src, dst, sport, dport, payload=b""):
    segment = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    s = checksum(_pseudo(src, dst, 17, len(segment)) + segment) or 0xFFFF
    return segment[:6] + struct.pack("!H", s) + segment[8:]


def icmp_echo(ident=0, seq=0, payload=b""):
    message = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def icmpv6_echo(src, dst, ident=0, seq=0, payload=b""):
    message = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + payload
    s = checksum(_pseudo(src, dst, 58, len(message)) + message)
    return message[:2] + struct.pack("!H", s) + message[4:]


# Whole frames.

def tcp4(src, dst, sport, dport, flags="S", seq=0, ack=0, payload=b"", **eth_args):
    return eth(ipv4(tcp(src, dst, sport, dport, flags, seq, ack, payload=payload), 6, src, dst), 0x0800, **eth_args)


def udp4(src, dst, sport, dport, payload=b"", **eth_args):
    return eth(ipv4(udp(src, dst, sport, dport, payload), 17, src, dst), 0x0800, **eth_args)


def tcp6(src, dst, sport, dport, flags="S", seq=0, ack=0, payload=b"", **eth_args):
    return eth(ipv6(tcp(src, dst, sport, dport, flags, seq, ack, payload=payload), 6, src, dst), 0x86DD, **eth_args)


def ping6(src, dst, seq=0, **eth_args):
    return eth(ipv6(icmpv6_echo(src, dst, 1, seq, b"ping"), 58, src, dst), 0x86DD, **eth_args)


def arp_request(sender, target):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac("02:00:00:00:00:01"),
                       ipaddress.IPv4Address(sender).packed, b"\0" * 6, ipaddress.IPv4Address(target).packed)
    return eth(body, 0x0806, dst="ff:ff:ff:ff:ff:ff")


def write_pcap(path, frames):
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, frame in enumerate(frames):
        usec = i * 1000
        out.append(struct.pack("<IIII", EPOCH + usec // 1000000, usec % 1000000, len(frame), len(frame)))
        out.append(frame)
    return b"".join(out)


def read_pcap(path):
    """Frames of a classic pcap (either byte order, us or ns timestamps)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    else:
        raise SystemExit("%s: not a classic pcap file" % path)
    frames, offset = [], 24
    while offset + 16 <= len(data):
        _, _, caplen, _ = struct.unpack_from(order + "IIII", data, offset)
        frames.append(data[offset + 16:offset + 16 + caplen])
        offset += 16 + caplen
    return frames


# The captures.

def ddos_mix():
    """Legitimate clients, one flooding source, blocklisted IPv4 and IPv6 sources, ARP."""
    frames = []
    server, server6 = "198.51.100.10", "2001:db8:1::10"
    for i in range(3):  # two well-behaved clients, 3 packets each
        frames.append(tcp4("203.0.113.1", server, 40000 + i, 443, "S", seq=1000 * i))
        frames.append(udp4("203.0.113.2", server, 5353, 53, b"query%d" % i))
    for i in range(12):  # a SYN flood from one source: more than 10 per second
        frames.append(tcp4("203.0.113.66", server, 1024 + i, 80, "S", seq=i))
    for i in range(4):  # sources in the blocked 192.0.2.0/24 and 198.18.0.7/32
        frames.append(tcp4("192.0.2.%d" % (10 + i), server, 2000 + i, 80, "S"))
    frames.append(udp4("198.18.0.7", server, 123, 123, b"ntp"))
    frames.append(udp4("198.18.0.8", server, 123, 123, b"ntp"))  # next to it: not blocked
    for i in range(3):  # IPv6: a blocked /48 and an allowed client
        frames.append(tcp6("2001:db8:bad:%d::1" % i, server6, 3000 + i, 443, "S"))
        frames.append(ping6("2001:db8:2::5", server6, seq=i))
    frames.append(arp_request("198.51.100.1", server))
    return frames


def l4lb_flows():
    """Eight TCP connections and four UDP flows to two services, and traffic that is not for them."""
    vip_web, vip_dns = "192.0.2.80", "192.0.2.53"
    frames = []
    for c in range(8):
        client = "198.51.100.%d" % (20 + c)
        frames.append(tcp4(client, vip_web, 30000 + c * 7, 80, "S", seq=c))
        frames.append(tcp4(client, vip_web, 30000 + c * 7, 80, "A", seq=c + 1, ack=1))
    for c in range(4):
        frames.append(udp4("198.51.100.%d" % (40 + c), vip_dns, 50000 + c, 53, b"dns?"))
    frames.append(tcp4("198.51.100.20", vip_web, 30001, 443, "S"))  # not a service port
    frames.append(tcp4("198.51.100.20", "192.0.2.81", 30002, 80, "S"))  # not a VIP
    frames.append(arp_request("198.51.100.20", vip_web))
    return frames


def conntrack_session():
    """A TCP connection from handshake to close, a UDP exchange, and out-of-state packets."""
    c, s = "10.1.0.1", "10.2.0.1"
    f = []
    f.append(tcp4(c, s, 45000, 80, "S", seq=100))
    f.append(tcp4(s, c, 80, 45000, "SA", seq=500, ack=101))
    f.append(tcp4(c, s, 45000, 80, "A", seq=101, ack=501))
    f.append(tcp4(c, s, 45000, 80, "PA", seq=101, ack=501, payload=b"GET / HTTP/1.0\r\n\r\n"))
    f.append(tcp4(s, c, 80, 45000, "PA", seq=501, ack=119, payload=b"HTTP/1.0 200 OK\r\n\r\n"))
    f.append(tcp4(c, s, 45000, 80, "FA", seq=119, ack=520))
    f.append(tcp4(s, c, 80, 45000, "FA", seq=520, ack=120))
    f.append(tcp4(c, s, 45000, 80, "A", seq=120, ack=521))
    f.append(udp4(c, "10.2.0.53", 53001, 53, b"query"))
    f.append(udp4("10.2.0.53", c, 53, 53001, b"answer"))
    f.append(tcp4("10.9.9.9", s, 6666, 80, "A", seq=1, ack=1))  # no handshake: out of state
    f.append(tcp4("10.9.9.9", s, 6667, 22, "R"))                 # a reset for nothing
    f.append(eth(ipv4(icmp_echo(7, 1, b"ping"), 1, c, s), 0x0800))  # untracked
    return f


CAPTURES = {
    "ddos_mix.pcap": ddos_mix,
    "l4lb_flows.pcap": l4lb_flows,
    "conntrack_session.pcap": conntrack_session,
}


def main():
    check = "--check" in sys.argv[1:]
    status = 0
    for name, make in CAPTURES.items():
        path = os.path.join(HERE, name)
        data = write_pcap(path, make())
        assert len(data) < 50 * 1024, name
        if check:
            with open(path, "rb") as f:
                if f.read() != data:
                    print("%s: differs from the generator" % name)
                    status = 1
        else:
            with open(path, "wb") as f:
                f.write(data)
            print("%s: %d bytes" % (name, len(data)))
    sys.exit(status)


if __name__ == "__main__":
    main()
