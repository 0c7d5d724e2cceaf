#!/usr/bin/env python3
"""Record the kernel's answers for the BPF C programs of corpus/programs.

Every ``*.bpf.c`` here is an XDP program (or several). For each program this script
compiles it exactly as the tests do::

    clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c NAME.bpf.c -o NAME.o

builds the packets of its cases (Ethernet, VLAN, IPv4, IPv6, TCP, UDP, ICMP, with real
checksums), and runs each case through the running kernel with

    kernel_oracle.py elf-run --obj NAME.o --prog FUNCTION --loader bpftool \\
        --data-seq PACKETS.jsonl --json

``--loader bpftool`` loads the object the way libbpf does (BTF, callbacks, spin locks,
``.values`` of prog arrays and maps of maps, read-only ``.rodata``); ``--data-seq`` keeps
the one loaded program and its maps for the whole case, runs the packets in order with
BPF_PROG_TEST_RUN, pins the process to CPU 0 and dumps every map before the first packet
and after each one.

The answers go to ``expected/NAME.json``: for each case and each packet the kernel's
retval, data_out and the contents of every map; ``provenance`` says which kernel, tool
and date produced them. Map names are bpfsim's: libbpf pins a global data map as
``<object prefix>_bss`` (``_rodata_cst16`` for ``.rodata.cst16``), bpfsim names it after
its section (``.bss``, ``.rodata.cst16``); see ``libbpf_pin_name``. Some maps cannot
be listed through bpf(2) or list kernel object ids; for those the file keeps only what
can be compared (see ``normalise_map``) and says why in ``not_compared``.

Usage (needs root: bpf(2), BPF_PROG_TEST_RUN, bpffs):
    sudo python3 corpus/programs/generate.py             # (re)write every expected file
    sudo python3 corpus/programs/generate.py --check     # re-run the kernel and report
                                                         # every difference from the files
    options: -k SUBSTRING (only programs whose name contains it), --oracle PATH
             (default ../../../shared/tools/kernel_oracle.py, or $KERNEL_ORACLE)
Standard library only.
"""

import argparse
import datetime
import ipaddress
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED = os.path.join(HERE, "expected")
DEFAULT_ORACLE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "tools", "kernel_oracle.py"))
CLANG_FLAGS = ["-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c"]
FORMAT_VERSION = 1

# --------------------------------------------------------------------------------------
# Packets
# --------------------------------------------------------------------------------------

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"
ETH_P_IP, ETH_P_IPV6, ETH_P_ARP, ETH_P_8021Q = 0x0800, 0x86DD, 0x0806, 0x8100
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def mac(text):
    return bytes.fromhex(text.replace(":", ""))


def checksum(data):
    """The Internet checksum (RFC 1071) of bytes."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ether(payload, ethertype=ETH_P_IP, dst=MAC_B, src=MAC_A, vlan=None):
    """An Ethernet II frame; with ``vlan``, one 802.1Q tag carrying that VLAN id."""
    header = mac(dst) + mac(src)
    if vlan is not None:
        header += struct.pack("!HH", ETH_P_8021Q, vlan & 0xFFF)
    return header + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, payload, ttl=64, ident=1, tos=0, bad_checksum=False):
    """An IPv4 header (no options, DF set) with its checksum, then ``payload``."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), ident, 0x4000, ttl, proto, 0,
                         ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    csum = checksum(header) ^ (0x5555 if bad_checksum else 0)
    return header[:10] + struct.pack("!H", csum) + header[12:] + payload


def ipv6(src, dst, next_header, payload, hop_limit=64):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, hop_limit,
                       ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed) + payload


def _pseudo_header(src, dst, proto, length):
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if a.version == 4:
        return a.packed + b.packed + struct.pack("!BBH", 0, proto, length)
    return a.packed + b.packed + struct.pack("!IxxxB", length, proto)


def tcp(src, dst, sport, dport, flags=TCP_ACK, payload=b"", seq=1000, ack=0, window=65535):
    """A TCP segment (20-byte header) with its checksum over the pseudo header."""
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, window, 0, 0)
    csum = checksum(_pseudo_header(src, dst, 6, len(header) + len(payload)) + header + payload)
    return header[:16] + struct.pack("!H", csum) + header[18:] + payload


def udp(src, dst, sport, dport, payload=b""):
    header = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    proto = 17
    csum = checksum(_pseudo_header(src, dst, proto, len(header) + len(payload)) + header + payload) or 0xFFFF
    return header[:6] + struct.pack("!H", csum) + payload


def icmp_echo(ident=1, seq=1, payload=b"ping"):
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
    return body[:2] + struct.pack("!H", checksum(body)) + body[4:]


def tcp4(src, dst, sport, dport, flags=TCP_ACK, payload=b"", **ip):
    return ether(ipv4(src, dst, 6, tcp(src, dst, sport, dport, flags, payload), **ip))


def udp4(src, dst, sport, dport, payload=b"", vlan=None, **ip):
    return ether(ipv4(src, dst, 17, udp(src, dst, sport, dport, payload), **ip), vlan=vlan)


def icmp4(src, dst, **ip):
    return ether(ipv4(src, dst, 1, icmp_echo(), **ip))


def tcp6(src, dst, sport, dport, flags=TCP_ACK, payload=b""):
    return ether(ipv6(src, dst, 6, tcp(src, dst, sport, dport, flags, payload)), ETH_P_IPV6)


def udp6(src, dst, sport, dport, payload=b""):
    return ether(ipv6(src, dst, 17, udp(src, dst, sport, dport, payload)), ETH_P_IPV6)


def arp_request(sender="10.0.0.1", target="10.0.0.2"):
    body = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, mac(MAC_A), ipaddress.IPv4Address(sender).packed,
                       b"\0" * 6, ipaddress.IPv4Address(target).packed)
    return ether(body, ETH_P_ARP, dst="ff:ff:ff:ff:ff:ff")


def ipip4(outer_src, outer_dst, inner):
    """IPv4-in-IPv4 (protocol 4): an outer header around an inner IPv4 packet."""
    return ether(ipv4(outer_src, outer_dst, 4, inner))


# --------------------------------------------------------------------------------------
# Cases: program -> [(case name, function, what it shows, [(packet name, bytes)])]
# --------------------------------------------------------------------------------------

def case(name, function, description, packets):
    return {"name": name, "function": function, "description": description, "packets": packets}


def control_rule(prefix, rule_id=0, remove=False):
    """prefix_blocklist's control payload: u32 prefix length, 4 address bytes, u32 rule
    id, u32 remove (host byte order, little-endian)."""
    network = ipaddress.IPv4Network(prefix, strict=False)
    return struct.pack("<I4sII", network.prefixlen, network.network_address.packed, rule_id, int(remove))


def text(payload, size=32):
    """A text payload, NUL-padded to ``size`` bytes."""
    data = payload.encode()
    return data + b"\0" * (size - len(data)) if len(data) < size else data


def setting(line):
    """A strings.bpf.c packet: one setting as text, UDP to port 7000."""
    return (line, udp4("10.0.0.1", "10.0.0.2", 5000, 7000, text(line)))


def raw_prefix_rule(prefixlen, address, rule_id):
    return struct.pack("<I4sII", prefixlen, ipaddress.IPv4Address(address).packed, rule_id, 0)


CASES = {
    "packet_counter": [
        case("mixed-traffic", "count_protocols",
             "TCP, UDP, ICMP, GRE over IPv4, IPv6 and ARP: one slot per protocol counts packets and bytes",
             [("tcp syn", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("udp dns", udp4("10.0.0.1", "10.0.0.53", 5353, 53, b"\x12\x34\x01\x00")),
              ("icmp echo", icmp4("10.0.0.1", "10.0.0.2")),
              ("gre", ether(ipv4("10.0.0.1", "10.0.0.2", 47, b"\0\0\x08\0" + b"x" * 20))),
              ("tcp6", tcp6("2001:db8::1", "2001:db8::2", 40000, 443, TCP_SYN)),
              ("arp", arp_request()),
              ("tcp ack", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_ACK, b"GET / HTTP/1.1\r\n\r\n"))]),
    ],
    "flow_table": [
        case("fill-close-reuse", "track_flows",
             "four flows fill the table, a fifth is refused (-E2BIG), a UDP flow is rewritten with BPF_EXIST "
             "while the table is full, FIN and RST delete flows and free room",
             [("a: tcp syn", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("b: udp", udp4("10.0.0.1", "10.0.0.53", 5000, 53, b"query")),
              ("b: udp again", udp4("10.0.0.1", "10.0.0.53", 5000, 53, b"query2")),
              ("c: tcp syn", tcp4("10.0.0.3", "10.0.0.2", 1234, 22, TCP_SYN)),
              ("d: udp", udp4("10.0.0.4", "10.0.0.2", 7, 7, b"echo")),
              ("e: tcp syn, table full", tcp4("10.0.0.5", "10.0.0.2", 999, 80, TCP_SYN)),
              ("b: udp while full", udp4("10.0.0.1", "10.0.0.53", 5000, 53, b"q3")),
              ("a: tcp fin", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_FIN | TCP_ACK)),
              ("e: tcp syn again", tcp4("10.0.0.5", "10.0.0.2", 999, 80, TCP_SYN)),
              ("c: tcp rst", tcp4("10.0.0.3", "10.0.0.2", 1234, 22, TCP_RST)),
              ("icmp, ignored", icmp4("10.0.0.1", "10.0.0.2")),
              ("ipv6, ignored", udp6("2001:db8::1", "2001:db8::2", 5000, 53))]),
    ],
    "percpu_stats": [
        case("per-cpu-counters", "percpu_counters",
             "per-CPU array and hash counters on CPU 0, the other CPU read with bpf_map_lookup_percpu_elem",
             [("tcp", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("udp", udp4("10.0.0.1", "10.0.0.2", 5000, 53, b"x" * 30)),
              ("tcp6", tcp6("2001:db8::1", "2001:db8::2", 40000, 443)),
              ("udp6", udp6("2001:db8::1", "2001:db8::2", 5000, 53, b"y" * 10)),
              ("icmp", icmp4("10.0.0.1", "10.0.0.2")),
              ("arp", arp_request()),
              ("tcp again", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_ACK, b"z" * 100))]),
    ],
    "lru_flows": [
        case("more-sources-than-room", "remember_sources",
             "eight sources through LRU hashes of four: which sources the kernel keeps",
             [("s1", udp4("10.0.0.1", "10.0.1.1", 1000, 53)),
              ("s2", udp4("10.0.0.2", "10.0.1.1", 1000, 53)),
              ("s3", udp4("10.0.0.3", "10.0.1.1", 1000, 53)),
              ("s4", udp4("10.0.0.4", "10.0.1.1", 1000, 53)),
              ("s1 again", udp4("10.0.0.1", "10.0.1.1", 1000, 53, b"a")),
              ("s5", udp4("10.0.0.5", "10.0.1.1", 1000, 53)),
              ("s6", udp4("10.0.0.6", "10.0.1.1", 1000, 53)),
              ("s1 again", udp4("10.0.0.1", "10.0.1.1", 1000, 53, b"ab")),
              ("s7", udp4("10.0.0.7", "10.0.1.1", 1000, 53)),
              ("s8", udp4("10.0.0.8", "10.0.1.1", 1000, 53)),
              ("s2 again", udp4("10.0.0.2", "10.0.1.1", 1000, 53, b"abc")),
              ("s3 again", udp4("10.0.0.3", "10.0.1.1", 1000, 53, b"abcd"))]),
    ],
    "prefix_blocklist": [
        case("rules-and-lookups", "filter_prefixes",
             "rules for 10.0.0.0/8, 10.1.0.0/16 and 192.168.1.130/25 (the trie keeps the host bits it was "
             "given) come in control packets; the most specific rule matches; a rule is removed; invalid and "
             "missing rules give errors",
             [("add 10.0.0.0/8", udp4("10.255.0.1", "10.255.0.2", 9999, 9999, control_rule("10.0.0.0/8", 1))),
              ("add 10.1.0.0/16", udp4("10.255.0.1", "10.255.0.2", 9999, 9999, control_rule("10.1.0.0/16", 2))),
              ("add 192.168.1.130/25 (host bits set)",
               udp4("10.255.0.1", "10.255.0.2", 9999, 9999, raw_prefix_rule(25, "192.168.1.130", 3))),
              ("add /33: invalid", udp4("10.255.0.1", "10.255.0.2", 9999, 9999, raw_prefix_rule(33, "10.0.0.0", 4))),
              ("from 10.1.2.3", tcp4("10.1.2.3", "172.16.0.1", 1234, 80, TCP_SYN)),
              ("from 10.2.3.4", tcp4("10.2.3.4", "172.16.0.1", 1234, 80, TCP_SYN)),
              ("from 192.168.1.200", udp4("192.168.1.200", "172.16.0.1", 1234, 53)),
              ("from 192.168.1.5", udp4("192.168.1.5", "172.16.0.1", 1234, 53)),
              ("from 172.16.0.9", icmp4("172.16.0.9", "172.16.0.1")),
              ("remove 10.1.0.0/16",
               udp4("10.255.0.1", "10.255.0.2", 9999, 9999, control_rule("10.1.0.0/16", remove=True))),
              ("from 10.1.2.3 again", tcp4("10.1.2.3", "172.16.0.1", 1234, 80, TCP_SYN)),
              ("remove 10.1.0.0/16 again",
               udp4("10.255.0.1", "10.255.0.2", 9999, 9999, control_rule("10.1.0.0/16", remove=True)))]),
    ],
    "ringbuf_events": [
        case("reserve-submit-discard-output", "report_connections",
             "a SYN is submitted, other TCP segments discarded, UDP goes through bpf_ringbuf_output, and a "
             "record larger than the ring cannot be reserved",
             [("tcp syn", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("tcp ack", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_ACK, b"data")),
              ("udp", udp4("10.0.0.1", "10.0.0.53", 5000, 53, b"query")),
              ("icmp", icmp4("10.0.0.1", "10.0.0.2")),
              ("tcp syn", tcp4("10.0.0.9", "10.0.0.2", 40001, 443, TCP_SYN)),
              ("ipv6, ignored", tcp6("2001:db8::1", "2001:db8::2", 40000, 443, TCP_SYN))]),
    ],
    "perf_events": [
        case("no-reader", "sample_packets",
             "bpf_perf_event_output with no perf event open at the CPU's index, past max_entries, with an "
             "unknown flag and asking for more packet bytes than there are",
             [("tcp", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("udp", udp4("10.0.0.1", "10.0.0.53", 5000, 53, b"query"))]),
    ],
    "tail_calls": [
        case("dispatch", "dispatch",
             "IPv4 TCP goes dispatch -> handle_ipv4 -> handle_tcp; IPv4 UDP and IPv6 stop in their handler; "
             "ARP (an empty slot) and an unknown EtherType (past max_entries) fall through",
             [("tcp", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("udp", udp4("10.0.0.1", "10.0.0.53", 5000, 53, b"query")),
              ("ipv6", udp6("2001:db8::1", "2001:db8::2", 5000, 53)),
              ("arp", arp_request()),
              ("other ethertype", ether(b"\0" * 46, 0x88B5)),
              ("tcp again", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_ACK))]),
    ],
    "maps_of_maps": [
        case("tenants-and-ports", "count_tenants",
             "VLAN 0 and 1 count in their tenant's inner array; VLAN 2 has none; TCP and UDP destination "
             "ports count in the inner hash the outer hash gives for the protocol",
             [("vlan 0 udp 53", udp4("10.0.0.1", "10.0.0.53", 5000, 53, b"q")),
              ("vlan 1 tcp 80", ether(ipv4("10.1.0.1", "10.1.0.2", 6, tcp("10.1.0.1", "10.1.0.2", 4000, 80)),
                                      vlan=1)),
              ("vlan 1 udp 53", ether(ipv4("10.1.0.1", "10.1.0.53", 17, udp("10.1.0.1", "10.1.0.53", 5000, 53)),
                                      vlan=1)),
              ("vlan 2: no tenant", ether(ipv4("10.2.0.1", "10.2.0.2", 6, tcp("10.2.0.1", "10.2.0.2", 4000, 80)),
                                          vlan=2)),
              ("vlan 0 icmp", icmp4("10.0.0.1", "10.0.0.2")),
              ("vlan 0 tcp 443", tcp4("10.0.0.1", "10.0.0.2", 40000, 443, TCP_SYN)),
              ("vlan 0 tcp 443 again", tcp4("10.0.0.1", "10.0.0.2", 40000, 443, TCP_ACK)),
              ("vlan 1 ipv6", ether(ipv6("2001:db8::1", "2001:db8::2", 17, udp("2001:db8::1", "2001:db8::2", 1, 2)),
                                    ETH_P_IPV6, vlan=1))]),
    ],
    "hash_of_maps_keys": [
        case("protocol-keys", "count_by_protocol",
             "a hash of maps of size 4 holds keys 6 and 17 from .values; TCP and UDP count in their inner "
             "map, ICMP has none",
             [("tcp", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("udp", udp4("10.0.0.1", "10.0.0.53", 5000, 53, b"q")),
              ("icmp", icmp4("10.0.0.1", "10.0.0.2")),
              ("tcp again", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_ACK))]),
    ],
    "queue_stack": [
        case("push-pop-peek", "queue_commands",
             "pops from empty maps, three pushes fill them, a fourth is refused, peek, a forced push drops the "
             "oldest value, then pops until empty",
             [("pop: empty", udp4("10.0.0.1", "10.0.0.2", 1000, 7000, b"O")),
              ("push 1001", udp4("10.0.0.1", "10.0.0.2", 1001, 7000, b"P")),
              ("push 1002", udp4("10.0.0.1", "10.0.0.2", 1002, 7000, b"P")),
              ("push 1003", udp4("10.0.0.1", "10.0.0.2", 1003, 7000, b"P")),
              ("push 1004: full", udp4("10.0.0.1", "10.0.0.2", 1004, 7000, b"P")),
              ("peek", udp4("10.0.0.1", "10.0.0.2", 1000, 7000, b"K")),
              ("force 1005", udp4("10.0.0.1", "10.0.0.2", 1005, 7000, b"F")),
              ("pop", udp4("10.0.0.1", "10.0.0.2", 1000, 7000, b"O")),
              ("pop", udp4("10.0.0.1", "10.0.0.2", 1000, 7000, b"O")),
              ("pop", udp4("10.0.0.1", "10.0.0.2", 1000, 7000, b"O")),
              ("pop: empty again", udp4("10.0.0.1", "10.0.0.2", 1000, 7000, b"O")),
              ("peek: empty", udp4("10.0.0.1", "10.0.0.2", 1000, 7000, b"K")),
              ("unknown command", udp4("10.0.0.1", "10.0.0.2", 1000, 7000, b"X"))]),
    ],
    "redirect": [
        case("fallbacks", "redirect_by_port",
             "empty devmap, devmap_hash, cpumap and xskmap give the fallback action; a key past max_entries too; "
             "an unknown flag gives XDP_ABORTED; bpf_redirect gives XDP_REDIRECT",
             [("devmap", udp4("10.0.0.1", "10.0.0.2", 1000, 1)),
              ("devmap_hash", udp4("10.0.0.1", "10.0.0.2", 1000, 2)),
              ("cpumap", udp4("10.0.0.1", "10.0.0.2", 1000, 3)),
              ("xskmap", udp4("10.0.0.1", "10.0.0.2", 1000, 4)),
              ("devmap key 100", udp4("10.0.0.1", "10.0.0.2", 1000, 5)),
              ("unknown flag", udp4("10.0.0.1", "10.0.0.2", 1000, 6)),
              ("bpf_redirect", udp4("10.0.0.1", "10.0.0.2", 1000, 7)),
              ("no redirect", udp4("10.0.0.1", "10.0.0.2", 1000, 8))]),
    ],
    "bloom_filter": [
        case("known-hosts", "admit_known_hosts",
             "twelve hosts are added to a 64-bit filter with three hashes; known hosts pass, and so do the "
             "unknown ones whose bits happen to be set (false positives, which depend on the exact hashes)",
             [("add 10.0.0.%d" % i, udp4("10.0.0.%d" % i, "10.0.0.254", 1000, 9999)) for i in range(1, 13)]
             + [("known 10.0.0.%d" % i, tcp4("10.0.0.%d" % i, "10.0.0.254", 1000, 80)) for i in (1, 5, 12)]
             + [("probe 10.9.0.%d" % i, tcp4("10.9.0.%d" % i, "10.0.0.254", 1000, 80)) for i in range(1, 25)]),
    ],
    "global_config": [
        case("config-and-counters", "apply_config",
             "blocked ports, a TTL minimum and a length maximum from .rodata; counters in .data (with starting "
             "values) and .bss",
             [("tcp 80", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("tcp 23", tcp4("10.0.0.1", "10.0.0.2", 40000, 23, TCP_SYN)),
              ("tcp 3389", tcp4("10.0.0.1", "10.0.0.2", 40000, 3389, TCP_SYN)),
              ("udp", udp4("10.0.0.1", "10.0.0.2", 5000, 445)),
              ("ttl 1", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN, ttl=1)),
              ("1600 bytes", udp4("10.0.0.1", "10.0.0.2", 5000, 9000, b"\xab" * 1558)),
              ("tcp 445", tcp4("10.0.0.1", "10.0.0.2", 40000, 445, TCP_SYN)),
              ("ipv6", tcp6("2001:db8::1", "2001:db8::2", 40000, 23))]),
    ],
    "subprograms": [
        case("parse", "parse_headers",
             "the parser's functions call each other up to three frames deep; the global function classifies "
             "the destination port",
             [("tcp 80", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("udp 5353", udp4("10.0.0.1", "224.0.0.251", 5353, 5353)),
              ("udp6 50000", udp6("2001:db8::1", "2001:db8::2", 1000, 50000)),
              ("icmp", icmp4("10.0.0.1", "10.0.0.2")),
              ("arp", arp_request()),
              ("truncated ipv4", ether(b"\x45\x00\x00\x14", ETH_P_IP))]),
    ],
    "loops_callbacks": [
        case("scan-payloads", "scan_payload",
             "bpf_loop over 32 payload bytes stops at the first NUL; bpf_for_each_map_elem sums an array and a "
             "hash, and stops early in a third walk",
             [("hello", udp4("10.0.0.1", "10.0.0.2", 1000, 9000, text("Hello, World 2024!"))),
              ("digits", udp4("10.0.0.1", "10.0.0.2", 1000, 9001, text("abc123"))),
              ("no nul", udp4("10.0.0.1", "10.0.0.2", 1000, 9000,
                              b"The quick brown fox jumps over 13 lazy dogs")),
              ("too short", udp4("10.0.0.1", "10.0.0.2", 1000, 9000, b"short")),
              ("empty text", udp4("10.0.0.1", "10.0.0.2", 1000, 9002, text("")))]),
    ],
    "spin_lock": [
        case("locked-totals", "locked_totals",
             "totals in an array value and in hash values, each updated under its bpf_spin_lock",
             [("s1 tcp", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("s2 udp", udp4("10.0.0.2", "10.0.0.1", 5000, 53, b"x" * 200)),
              ("s1 udp", udp4("10.0.0.1", "10.0.0.2", 5000, 53, b"y" * 20)),
              ("ipv6", tcp6("2001:db8::1", "2001:db8::2", 40000, 443))]),
    ],
    "clock_random_cpu": [
        case("relations", "observe_world",
             "relations between clock readings, a 1-in-1 random sample, the CPU and NUMA node",
             [("packet 1", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("packet 2", udp4("10.0.0.1", "10.0.0.2", 5000, 53)),
              ("packet 3", arp_request())]),
    ],
    "checksum": [
        case("nat-router", "nat_router",
             "TTL decrement and destination NAT with the IPv4 checksum recomputed and the TCP/UDP checksum "
             "updated; a bad header checksum and TTL 1 are dropped",
             [("tcp to 10.0.0.2", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("udp to 10.0.0.2", udp4("10.0.0.1", "10.0.0.2", 5000, 53, b"query")),
              ("tcp to 10.0.0.3", tcp4("10.0.0.1", "10.0.0.3", 40000, 80, TCP_ACK, b"payload")),
              ("bad checksum", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN, bad_checksum=True)),
              ("ttl 1", udp4("10.0.0.1", "10.0.0.2", 5000, 53, ttl=1)),
              ("icmp to 10.0.0.2", icmp4("10.0.0.1", "10.0.0.2", ttl=9))]),
    ],
    "encap": [
        case("ipip", "ipip_tunnel",
             "packets to 10.0.0.0/24 get an outer IPv4 header (IPIP); IPIP packets lose theirs; others pass",
             [("tcp to 10.0.0.7", tcp4("10.0.0.1", "10.0.0.7", 40000, 80, TCP_SYN)),
              ("udp to 192.168.0.1", udp4("10.0.0.1", "192.168.0.1", 5000, 53)),
              ("ipip", ipip4("203.0.113.5", "198.51.100.1",
                             ipv4("10.0.0.7", "10.0.0.1", 6,
                                  tcp("10.0.0.7", "10.0.0.1", 80, 40000, TCP_SYN | TCP_ACK)))),
              ("icmp to 10.0.0.1", icmp4("192.168.0.1", "10.0.0.1"))]),
    ],
    "truncate": [
        case("snap-and-trailer", "snap_length",
             "a 100-byte packet is cut to 64, short packets get a 4-byte trailer, impossible adjustments fail",
             [("100 bytes", udp4("10.0.0.1", "10.0.0.2", 5000, 53, bytes(range(58)))),
              ("42 bytes", udp4("10.0.0.1", "10.0.0.2", 5000, 53)),
              ("60 bytes", udp4("10.0.0.1", "10.0.0.2", 5000, 53, b"\x11" * 18)),
              ("64 bytes", udp4("10.0.0.1", "10.0.0.2", 5000, 53, b"\x22" * 22)),
              ("14 bytes", ether(b"", 0x88B5))]),
    ],
    "metadata": [
        case("mark", "mark_packets",
             "8 bytes of metadata (a mark and the length) in front of the packet; invalid sizes are refused",
             [("tcp", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("arp", arp_request())]),
    ],
    "strings": [
        case("settings", "parse_settings",
             "numbers in decimal, hex and octal, negative numbers, overflow, no number, an unknown key",
             [setting(line) for line in (
                 "rate=1500",
                 "port=0x1f90",
                 "delta=-42",
                 "port=017",
                 "rate=  42 pps",
                 "delta=+7",
                 "rate=99999999999999999999",
                 "rate=abc",
                 "port=0x",
                 "delta=-9223372036854775808",
                 "delta=9223372036854775808",
                 "rate=-1",
                 "hello",
                 "Rate=1")]),
    ],
    "trace_printk": [
        case("formats", "print_packets",
             "the lengths bpf_trace_printk and bpf_trace_vprintk return for integer, address, string, flag "
             "and width conversions, an unreadable %s and an invalid conversion",
             [("tcp", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("udp 160 bytes", udp4("192.168.100.200", "8.8.8.8", 5000, 53, b"x" * 118, ttl=255))]),
    ],
    "probe_read": [
        case("copies", "read_memory",
             "copies from the stack, a map value and read-only data, cut strings, and reads from NULL",
             [("packet 1", tcp4("10.0.0.1", "10.0.0.2", 40000, 80, TCP_SYN)),
              ("packet 2", arp_request())]),
    ],
}

# --------------------------------------------------------------------------------------
# Running the kernel
# --------------------------------------------------------------------------------------


def run(command, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


def compile_program(name, directory):
    output = os.path.join(directory, name + ".o")
    result = run(["clang"] + CLANG_FLAGS + [os.path.join(HERE, name + ".bpf.c"), "-o", output])
    if result.returncode != 0:
        raise SystemExit("clang failed on %s.bpf.c:\n%s" % (name, result.stderr))
    return output


def oracle_run(oracle, obj, function, packets, directory):
    sequence = os.path.join(directory, "packets.jsonl")
    with open(sequence, "w") as f:
        for name, data in packets:
            f.write(json.dumps({"name": name, "hex": data.hex()}) + "\n")
    command = [sys.executable, oracle, "elf-run", "--obj", obj, "--prog", function, "--loader", "bpftool",
               "--data-seq", sequence, "--json"]
    result = run(command)
    try:
        answer = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise SystemExit("%s: no JSON from the oracle:\n%s\n%s" % (" ".join(command), result.stdout, result.stderr))
    if answer.get("verdict") != "ACCEPT":
        raise SystemExit("the kernel refused %s (%s):\n%s" % (function, answer.get("reason"), answer.get("log", "")))
    return answer


# Maps whose contents bpf(2) cannot list, or lists as kernel object ids that change from
# load to load. For the id kinds the keys (which slots are filled) are still compared.
UNLISTABLE = {
    "ringbuf": "records are read through mmap, not bpf(2); the program counts what it did in another map",
    "perf_event_array": "values are perf event fds, and none is open during BPF_PROG_TEST_RUN",
    "queue": "a queue has no keys to iterate; the program records what it pops in another map",
    "stack": "a stack has no keys to iterate; the program records what it pops in another map",
    "bloom_filter": "a bloom filter has no keys to iterate; the program records its answers in another map",
    "xskmap": "AF_XDP socket maps cannot be read through bpf(2)",
}
KEYS_ONLY = {
    "prog_array": "values read through bpf(2) are kernel program ids: only the filled slots are compared",
    "array_of_maps": "values read through bpf(2) are kernel map ids: only the filled slots are compared",
    "hash_of_maps": "values read through bpf(2) are kernel map ids: only the filled keys are compared",
}


def data_sections(obj):
    """The global data sections of an ELF object (.rodata*, .data*, .bss*), from its
    section header table (ELF64, little-endian)."""
    with open(obj, "rb") as f:
        elf = f.read()
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    strings_offset = headers[shstrndx][4]
    names = []
    for header in headers:
        start = strings_offset + header[0]
        name = elf[start:elf.index(b"\0", start)].decode()
        if re.match(r"^\.(rodata|data|bss)(\.|$)", name) and header[5] > 0:
            names.append(name)
    return names


def libbpf_pin_name(section, object_name):
    """The name under which libbpf 1.1 (bpftool ... pinmaps) pins the map of a global
    data section (libbpf.c internal_map_name, then '.' -> '_' for bpffs)."""
    suffix = max(7, len(section))
    prefix = 0 if suffix >= 16 or "." in section[1:] else min(16 - suffix - 1, len(object_name))
    name = (object_name[:prefix] + section)[:15]
    return re.sub(r"[^A-Za-z0-9_.]", "_", name).replace(".", "_")


def map_names(obj, stem):
    """libbpf's pinned name -> bpfsim's name, for the maps whose names differ: bpfsim
    names a global data map after its ELF section."""
    return {libbpf_pin_name(section, stem): section for section in data_sections(obj)}


def normalise_map(kernel_map):
    """(entries, reason): entries as bpfsim's map dumps give them, or None with a reason
    when the map is not compared."""
    kind = kernel_map["type"]
    if kind in UNLISTABLE:
        return None, UNLISTABLE[kind]
    entries = []
    for entry in kernel_map["entries"]:
        if "error" in entry:
            return None, "bpf(2) cannot list it: " + entry["error"]
        if kind in KEYS_ONLY:
            entries.append({"key": entry["key"]})
        elif "per_cpu" in entry:
            entries.append({"key": entry["key"], "values": entry["per_cpu"]})
        else:
            entries.append({"key": entry["key"], "value": entry["value"]})
    entries.sort(key=lambda e: e["key"])
    return entries, None


def normalise_maps(kernel_maps, names, not_compared):
    maps = {}
    for kernel_map in kernel_maps:
        name = names.get(kernel_map["name"], kernel_map["name"])
        entries, reason = normalise_map(kernel_map)
        if entries is None:
            not_compared[name] = "%s: %s" % (kernel_map["type"], reason)
            continue
        maps[name] = {"type": kernel_map["type"], "entries": entries}
        if kernel_map["type"] in KEYS_ONLY:
            maps[name]["compare"] = "keys"
    return maps


def record_case(oracle, obj, stem, spec, directory):
    answer = oracle_run(oracle, obj, spec["function"], spec["packets"], directory)
    names = map_names(obj, stem)
    not_compared = {}
    result = {
        "name": spec["name"],
        "function": spec["function"],
        "description": spec["description"],
        "maps_before": normalise_maps(answer["maps_before"], names, not_compared),
        "packets": [],
    }
    for run_answer in answer["runs"]:
        if "run_error" in run_answer:
            raise SystemExit("%s/%s packet %s: %s" % (stem, spec["name"], run_answer["name"], run_answer["run_error"]))
        result["packets"].append({
            "name": run_answer["name"],
            "data_in": run_answer["data_in"],
            "retval": run_answer["retval"],
            "data_out": run_answer["data_out"],
            "maps": normalise_maps(run_answer["maps"], names, not_compared),
        })
    if not_compared:
        result["not_compared"] = not_compared
    return result, answer


def provenance(answer):
    bpftool = run(["bpftool", "version"]).stdout.splitlines()
    clang = run(["clang", "--version"]).stdout.splitlines()
    return {
        "kernel": platform.release(),
        "machine": platform.machine(),
        "possible_cpus": answer.get("possible_cpus"),
        "pinned_cpu": answer.get("pinned_cpu"),
        "tool": "kernel_oracle.py elf-run --loader bpftool --data-seq (BPF_PROG_TEST_RUN)",
        "loader": ", ".join(line.strip() for line in bpftool[:2]),
        "compiler": (clang[0] if clang else "clang") + ": " + " ".join(["clang"] + CLANG_FLAGS),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
    }


def record_program(oracle, stem):
    directory = tempfile.mkdtemp(prefix="bpfsim-programs-")
    try:
        obj = compile_program(stem, directory)
        cases, last = [], None
        for spec in CASES[stem]:
            recorded, last = record_case(oracle, obj, stem, spec, directory)
            cases.append(recorded)
        return {"version": FORMAT_VERSION, "program": stem, "source": stem + ".bpf.c",
                "provenance": provenance(last), "cases": cases}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def to_json(value, level=0):
    """JSON with sorted keys, one item per line, except that a map entry ({"key": ...})
    and a list of strings stay on one line, so a dump reads like a table."""
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(value, dict) and value and "key" not in value:
        items = ["%s%s: %s" % (inner, json.dumps(k), to_json(value[k], level + 1)) for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value and not all(isinstance(item, str) for item in value):
        return "[\n" + ",\n".join(inner + to_json(item, level + 1) for item in value) + "\n" + pad + "]"
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


def write(path, document):
    with open(path, "w") as f:
        f.write(to_json(document) + "\n")


def differences(old, new, where=""):
    """Human-readable differences between two JSON values."""
    if type(old) is not type(new):
        return ["%s: %r -> %r" % (where or "/", old, new)]
    if isinstance(old, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            if key not in old:
                out.append("%s/%s: added" % (where, key))
            elif key not in new:
                out.append("%s/%s: removed" % (where, key))
            else:
                out += differences(old[key], new[key], "%s/%s" % (where, key))
        return out
    if isinstance(old, list):
        if len(old) != len(new):
            return ["%s: %d items -> %d items" % (where, len(old), len(new))]
        out = []
        for index, (a, b) in enumerate(zip(old, new)):
            out += differences(a, b, "%s[%d]" % (where, index))
        return out
    return [] if old == new else ["%s: %r -> %r" % (where, old, new)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="re-run the kernel and report differences; write nothing")
    parser.add_argument("-k", dest="only", help="only programs whose name contains this")
    parser.add_argument("--oracle", default=os.environ.get("KERNEL_ORACLE", DEFAULT_ORACLE))
    args = parser.parse_args(argv)
    if not os.path.exists(args.oracle):
        raise SystemExit("kernel_oracle.py not found at %s (use --oracle or $KERNEL_ORACLE)" % args.oracle)
    sources = sorted(f[:-len(".bpf.c")] for f in os.listdir(HERE) if f.endswith(".bpf.c"))
    missing = [s for s in sources if s not in CASES]
    if missing:
        raise SystemExit("no cases for: %s" % ", ".join(missing))
    os.makedirs(EXPECTED, exist_ok=True)
    changed = 0
    for stem in sources:
        if args.only and args.only not in stem:
            continue
        document = record_program(args.oracle, stem)
        path = os.path.join(EXPECTED, stem + ".json")
        packets = sum(len(c["packets"]) for c in document["cases"])
        if args.check:
            try:
                with open(path) as f:
                    stored = json.load(f)
            except FileNotFoundError:
                print("%s: no expected file" % stem)
                changed += 1
                continue
            found = differences(stored["cases"], document["cases"], "cases")
            if found:
                changed += 1
                print("%s: %d differences" % (stem, len(found)))
                for line in found:
                    print("   " + line)
            else:
                print("%s: same (%d cases, %d packets)" % (stem, len(document["cases"]), packets))
        else:
            write(path, document)
            print("%s: %d cases, %d packets" % (stem, len(document["cases"]), packets))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
