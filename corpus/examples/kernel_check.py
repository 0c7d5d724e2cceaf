#!/usr/bin/env python3
"""Runs the packet examples' inputs through the running kernel (BPF_PROG_TEST_RUN).

    sudo python3 corpus/examples/kernel_check.py            # every example
    sudo python3 corpus/examples/kernel_check.py ddos l4lb  # some

This is where the expected values in the XDP and tc specs (NAME/NAME.spec.yaml) come
from: for each case the program is compiled with clang, loaded through
shared/tools/kernel_oracle.py's ELF loader, its maps filled with the spec's `maps:`
entries (repeated here as bytes), and the case's packets run in order with map state
carried from one to the next, as a spec case does: single packets on CPU 0, a capture's
on the CPU receive-side scaling gives each (rss_cpu, as bpfsim replay spreads them) when
the spec has several CPUs. The answers (return values, output bytes, the maps after the
last packet) go to NAME/kernel.json, and the specs repeat them. Needs root and a kernel that lets it load programs; Linux 6.18 answered
the committed files.
"""
import ipaddress
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "pcaps"))
ORACLE_DIR = os.environ.get("BPFSIM_ORACLE_DIR", os.path.join(os.path.dirname(REPO), "shared", "tools"))
if not os.path.exists(os.path.join(ORACLE_DIR, "kernel_oracle.py")):
    raise SystemExit("kernel_oracle.py is not in %s (set BPFSIM_ORACLE_DIR)" % ORACLE_DIR)
sys.path.insert(0, ORACLE_DIR)

import generate as g  # noqa: E402  (pcaps/generate.py: the packet builder)
import kernel_oracle as k  # noqa: E402

SHARED_PCAPS = os.environ.get("BPFSIM_SHARED_PCAPS", os.path.join(os.path.dirname(REPO), "shared", "pcaps"))


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def ip4(text):
    return ipaddress.IPv4Address(text).packed


def ip6(text):
    return ipaddress.IPv6Address(text).packed


def shared(name):
    return os.path.join(SHARED_PCAPS, name)


def local(name):
    return os.path.join(REPO, "pcaps", name)


# ---------------------------------------------------------------- the examples' inputs

DDOS_MAPS = {
    "blocklist_v4": [(u32(24) + ip4("192.0.2.0"), u32(1)), (u32(32) + ip4("198.18.0.7"), u32(2))],
    "blocklist_v6": [(u32(48) + ip6("2001:db8:bad::"), u32(3))],
    "config": [(u32(0), u64(10))],
}
SERVER = "198.51.100.10"
DDOS = {
    "object": "ddos/ddos.bpf.c",
    "maps": DDOS_MAPS,
    "cases": [
        ("allowed IPv4 source passes", [g.tcp4("203.0.113.1", SERVER, 40000, 443, "S")]),
        ("source in a blocked /24 is dropped", [g.tcp4("192.0.2.77", SERVER, 40000, 80, "S")]),
        ("blocked /32, and its neighbour", [g.udp4("198.18.0.7", SERVER, 123, 123, b"ntp"),
                                            g.udp4("198.18.0.8", SERVER, 123, 123, b"ntp")]),
        ("blocked IPv6 /48", [g.tcp6("2001:db8:bad:1::1", "2001:db8:1::10", 3000, 443, "S")]),
        ("IPv6 outside the /48 passes", [g.tcp6("2001:db8:bae::1", "2001:db8:1::10", 3000, 443, "S")]),
        ("ARP passes", [g.arp_request("198.51.100.1", SERVER)]),
        ("802.1Q-tagged blocked source", [g.eth(g.vlan(g.ipv4(g.udp("192.0.2.5", SERVER, 1, 2), 17, "192.0.2.5",
                                                               SERVER), 0x0800, 100), 0x8100)]),
        ("rate limit: 11th packet in a second", [g.udp4("203.0.113.9", SERVER, 1000 + i, 53, b"q")
                                                 for i in range(12)]),
        ("capture: ddos_mix", local("ddos_mix.pcap")),
    ],
}

LB_MAPS = {
    # (VIP, port, proto) -> (first backend, count)
    "services": [(ip4("192.0.2.80") + struct.pack("!H", 80) + bytes([6, 0]), u32(0) + u32(3)),
                 (ip4("192.0.2.53") + struct.pack("!H", 53) + bytes([17, 0]), u32(3) + u32(1))],
    "backends": [(u32(0), ip4("10.10.0.1") + g.mac("0a:00:00:00:00:01") + b"\0\0"),
                 (u32(1), ip4("10.10.0.2") + g.mac("0a:00:00:00:00:02") + b"\0\0"),
                 (u32(2), ip4("10.10.0.3") + g.mac("0a:00:00:00:00:03") + b"\0\0"),
                 (u32(3), ip4("10.10.1.1") + g.mac("0a:00:00:00:01:01") + b"\0\0")],
    "config": [(u32(0), ip4("10.10.255.1"))],
}
L4LB = {
    "object": "l4lb/l4lb.bpf.c",
    "maps": LB_MAPS,
    "cases": [
        ("TCP SYN to the web VIP is encapsulated", [g.tcp4("198.51.100.20", "192.0.2.80", 30000, 80, "S")]),
        ("the same flow keeps its backend", [g.tcp4("198.51.100.20", "192.0.2.80", 30000, 80, "S"),
                                             g.tcp4("198.51.100.20", "192.0.2.80", 30000, 80, "A", seq=1, ack=1,
                                                    payload=b"GET /")]),
        ("UDP to the DNS VIP", [g.udp4("198.51.100.40", "192.0.2.53", 50000, 53, b"dns?")]),
        ("not a service port passes", [g.tcp4("198.51.100.20", "192.0.2.80", 30000, 443, "S")]),
        ("ICMP to the VIP passes", [g.eth(g.ipv4(g.icmp_echo(1, 1), 1, "198.51.100.20", "192.0.2.80"), 0x0800)]),
        ("capture: l4lb_flows", local("l4lb_flows.pcap")),
    ],
}

FRONTEND, BACKEND, OTHER = "10.0.1.10", "10.0.2.20", "10.0.3.30"
TC_MAPS = {
    "identities": [(ip4(FRONTEND), u32(1)), (ip4(BACKEND), u32(2)), (ip4(OTHER), u32(3))],
    "policy": [(u32(1) + u32(2) + bytes([6, 0]) + struct.pack("!H", 80), b"\x01")],
}
TC_POLICY = {
    "object": "tc_policy/tc_policy.bpf.c",
    "maps": TC_MAPS,
    "cases": [
        ("frontend to backend on TCP 80", [g.tcp4(FRONTEND, BACKEND, 41000, 80, "S")]),
        ("a connection both ways", [g.tcp4(FRONTEND, BACKEND, 41000, 80, "S", seq=1),
                                    g.tcp4(BACKEND, FRONTEND, 80, 41000, "SA", seq=9, ack=2),
                                    g.tcp4(FRONTEND, BACKEND, 41000, 80, "A", seq=2, ack=10)]),
        ("frontend to backend on TCP 443", [g.tcp4(FRONTEND, BACKEND, 41000, 443, "S")]),
        ("frontend to backend on UDP 80", [g.udp4(FRONTEND, BACKEND, 41000, 80, b"x")]),
        ("backend may not open to frontend", [g.tcp4(BACKEND, FRONTEND, 80, 41000, "S")]),
        ("other identity to backend", [g.tcp4(OTHER, BACKEND, 41000, 80, "S")]),
        ("unknown address to backend", [g.tcp4("172.16.0.1", BACKEND, 41000, 80, "S")]),
        ("ARP and IPv6 are dropped", [g.arp_request(FRONTEND, BACKEND),
                                      g.tcp6("fd00::1", "fd00::2", 41000, 80, "S")]),
    ],
}

CONNTRACK = {
    "object": "conntrack/conntrack.bpf.c",
    "maps": {},
    "cases": [
        ("half a handshake", [g.tcp4("10.1.0.1", "10.2.0.1", 45000, 80, "S", seq=100),
                              g.tcp4("10.2.0.1", "10.1.0.1", 80, 45000, "SA", seq=500, ack=101)]),
        ("a SYN-ACK with no SYN before it", [g.tcp4("10.2.0.1", "10.1.0.1", 80, 45000, "SA", seq=500, ack=101)]),
        ("capture: conntrack_session", local("conntrack_session.pcap")),
        ("capture: shared dns_tcp", shared("dns_tcp.pcap")),
        ("capture: shared bruteforce", shared("bruteforce.pcap")),
    ],
}

PERCPU = {
    "object": "percpu_counters/percpu_counters.bpf.c",
    "maps": {},
    "cpus": 2,  # a capture's packets are spread over them by RSS, as bpfsim replay does
    "cases": [
        ("one of each", [g.tcp4("10.0.0.1", "10.0.0.2", 1, 2, "S"),
                         g.udp4("10.0.0.1", "10.0.0.2", 1, 2, b"abc"),
                         g.eth(g.ipv4(g.icmp_echo(1, 1), 1, "10.0.0.1", "10.0.0.2"), 0x0800),
                         g.ping6("fd00::1", "fd00::2"),
                         g.arp_request("10.0.0.1", "10.0.0.2")]),
        ("capture: shared wikipedia", shared("wikipedia.pcap")),
    ],
}

EXAMPLES = {"ddos": DDOS, "l4lb": L4LB, "tc_policy": TC_POLICY, "conntrack": CONNTRACK,
            "percpu_counters": PERCPU}


# ---------------------------------------------------------------- receive-side scaling

# Microsoft's default RSS key (the RSS specification's verification page).
RSS_KEY = bytes.fromhex("6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c"
                        "6a42b73bbeac01fa")


def toeplitz(data, key=RSS_KEY):
    """The Toeplitz hash: for each set input bit, XOR in the key's 32 bits starting there."""
    key_int, key_bits = int.from_bytes(key, "big"), len(key) * 8
    result = 0
    for i, byte in enumerate(data):
        for bit in range(8):
            if byte & (0x80 >> bit):
                position = i * 8 + bit
                result ^= (key_int >> (key_bits - 32 - position)) & 0xFFFFFFFF
    return result


assert toeplitz(ip4("66.9.149.187") + ip4("161.142.100.80") + struct.pack("!HH", 2794, 1766)) == 0x51CCC178


def rss_cpu(frame, cpus):
    """The CPU a NIC's RSS would give a frame: the Toeplitz hash of the addresses (and, for
    TCP and UDP that is not a fragment, the ports), a 128-entry indirection table filled
    with i mod cpus, as Linux fills it by default (ethtool_rxfh_indir_default)."""
    if cpus == 1:
        return 0
    offset, ethertype = 12, None
    for _ in range(3):  # up to two VLAN tags
        if len(frame) < offset + 2:
            return 0
        ethertype = struct.unpack_from("!H", frame, offset)[0]
        if ethertype not in (0x8100, 0x88A8):
            break
        offset += 4
    offset += 2
    data = b""
    if ethertype == 0x0800 and len(frame) >= offset + 20:
        ihl = (frame[offset] & 15) * 4
        proto, fragment = frame[offset + 9], struct.unpack_from("!H", frame, offset + 6)[0] & 0x3FFF
        data = frame[offset + 12:offset + 20]
        if proto in (6, 17) and not fragment and len(frame) >= offset + ihl + 4:
            data += frame[offset + ihl:offset + ihl + 4]
    elif ethertype == 0x86DD and len(frame) >= offset + 40:
        data = frame[offset + 8:offset + 40]
        if frame[offset + 6] in (6, 17) and len(frame) >= offset + 44:
            data += frame[offset + 40:offset + 44]
    return (toeplitz(data) & 127) % cpus if data else 0


# ---------------------------------------------------------------- running them

def compile_object(source):
    out = os.path.join(tempfile.mkdtemp(prefix="bpfsim-examples-"), os.path.basename(source)[:-2] + ".o")
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", source,
                    "-o", out], check=True)
    return out


def run_case(obj, maps, packets):
    loader = k.OwnElfLoader(obj)
    try:
        section, function, prog = loader.build()
        prog_type = k.guess_prog_type(section)
        result = k.prog_load(prog, prog_type, license=loader.license, name=function)
        if not result.ok:
            raise SystemExit("%s: the kernel refused %s: %s" % (obj, function, result.reason()))
        by_name = {m["name"]: m for m in loader.maps.values()}
        for name, entries in maps.items():
            for key, value in entries:
                k.map_update(by_name[name]["fd"], key, value)
        runs = []
        for data in packets:
            cpu = 0
            if isinstance(data, tuple):  # (frame, the CPU to run it on)
                data, cpu = data
            k.pin_to_cpu(cpu)
            run = k.prog_test_run(result.fd, data, repeat=1)
            runs.append({"retval": run["retval"], "data_out": run["data_out"].hex()
                         if run["data_out"] != data else "unchanged"})
        dumped = k.dump_maps(loader.map_list())
        result.close()
        return {"program": function, "section": section, "runs": runs,
                # Entries sorted by key (a hash map dumps in no fixed order); zero values left out.
                "maps": {m["name"]: [{"key": e["key"], **({"per_cpu": e["per_cpu"]} if "per_cpu" in e
                                                           else {"value": e["value"]})}
                                     for e in sorted(m["entries"], key=lambda e: e["key"])
                                     if e.get("value", "").strip("0") or
                                     any(v.strip("0") for v in e.get("per_cpu", []))]
                         for m in dumped}}
    finally:
        loader.close()


def main():
    names = sys.argv[1:] or list(EXAMPLES)
    for name in names:
        example = EXAMPLES[name]
        obj = compile_object(os.path.join(HERE, example["object"]))
        report = {"kernel": os.uname().release, "cases": []}
        for title, inputs in example["cases"]:
            if isinstance(inputs, str):
                if not os.path.exists(inputs):
                    print("%s: %s: skipped, %s is absent" % (name, title, inputs))
                    continue
                packets = g.read_pcap(inputs)
                cpus = example.get("cpus", 1)
                packets = [(frame, rss_cpu(frame, cpus)) for frame in packets]
            else:
                packets = inputs
            case = run_case(obj, example["maps"], packets)
            verdicts = {}
            for run in case["runs"]:
                verdicts[run["retval"]] = verdicts.get(run["retval"], 0) + 1
            case = {"name": title, "packets": len(packets), "retvals": verdicts, **case}
            if isinstance(inputs, str):
                # A capture: one line of return values, and the packets that came back changed.
                case["pcap"] = os.path.basename(inputs)
                case["changed"] = {i: run["data_out"] for i, run in enumerate(case["runs"])
                                   if run["data_out"] != "unchanged"}
                case["runs"] = " ".join(str(run["retval"]) for run in case["runs"])
            report["cases"].append(case)
            print("%s: %s: %d packets, return values %s" % (name, title, len(packets), verdicts))
        with open(os.path.join(HERE, name, "kernel.json"), "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
