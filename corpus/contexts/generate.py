#!/usr/bin/env python3
"""Generate corpus/contexts/expected.json: what the running Linux kernel gives the C
programs beside this script, so bpfsim's tests can compare against it without root.

Every case compiles a program (clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu
with the case's -D defines), runs it once with BPF_PROG_TEST_RUN through
../../../shared/tools/kernel_oracle.py elf-run (override with --oracle or
$KERNEL_ORACLE) on the case's packet and optional ctx_in, and records retval, data_out,
ctx_out and the non-zero entries of the map `out` or `fields`, or the errno when the
kernel refuses the input.

The file also holds the kernel verifier's verdict on every __sk_buff access a tc,
socket filter and cgroup_skb program can make (each offset 0..195, sizes 1/2/4/8, load
and store): a one-instruction program per access, loaded with bpf(2) through the
oracle's module; `access` lists the accepted ones.

What the kernel cannot run (tracepoint and kprobe programs) is pinned by
syscalls.py against tracefs and BTF instead.

Usage (root):
    python3 corpus/contexts/generate.py            # rewrite expected.json
    python3 corpus/contexts/generate.py --check    # re-run and report differences
Standard library only.
"""
import argparse, importlib.util, json, os, struct, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ORACLE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "tools", "kernel_oracle.py"))
EXPECTED = os.path.join(HERE, "expected.json")

# ---------------------------------------------------------------------------------------
# Packets
# ---------------------------------------------------------------------------------------


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac(text):
    return bytes.fromhex(text.replace(":", ""))


def eth(dst, src, ethertype):
    return mac(dst) + mac(src) + struct.pack("!H", ethertype)


def ipv4(src, dst, proto, payload, ident=1):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0,
                         bytes(src), bytes(dst))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def pseudo4(src, dst, proto, length):
    return bytes(src) + bytes(dst) + struct.pack("!BBH", 0, proto, length)


def tcp(sport, dport, payload=b"", pseudo=b""):
    header = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x02, 0x2000, 0, 0)
    segment = header + payload
    csum = checksum(pseudo + segment)
    return segment[:16] + struct.pack("!H", csum) + segment[18:]


def udp(sport, dport, payload=b"", with_checksum=False, pseudo=b""):
    segment = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if with_checksum:
        segment = segment[:6] + struct.pack("!H", checksum(pseudo + segment)) + segment[8:]
    return segment


A, B = [10, 0, 0, 1], [10, 0, 0, 2]
HOST_MAC, PEER_MAC = "00:00:00:00:00:00", "02:00:00:00:00:02"
OTHER_MAC = "02:00:00:00:00:01"


def ipv4_tcp(src=A, dst=B, sport=12345, dport=80, dmac=OTHER_MAC):
    payload = b"hello"
    seg = tcp(sport, dport, payload, pseudo4(src, dst, 6, 20 + len(payload)))
    return eth(dmac, PEER_MAC, 0x0800) + ipv4(src, dst, 6, seg)


def ipv4_udp(dmac=HOST_MAC):
    return eth(dmac, PEER_MAC, 0x0800) + ipv4(A, B, 17, udp(1000, 53, b"query"))


def ipv6_tcp():
    src = bytes.fromhex("20010db8000000000000000000000001")
    dst = bytes.fromhex("20010db8000000000000000000000002")
    seg = tcp(443, 55555, b"hi")
    header = struct.pack("!IHBB", 0x60000000, len(seg), 6, 64) + src + dst
    return eth("33:33:00:00:00:01", PEER_MAC, 0x86DD) + header + seg


def arp_broadcast():
    body = bytes.fromhex("0001080006040001") + mac(PEER_MAC) + bytes(A) + bytes(6) + bytes(B)
    return eth("ff:ff:ff:ff:ff:ff", PEER_MAC, 0x0806) + body


def llc():
    return eth(OTHER_MAC, PEER_MAC, 0x0026) + bytes.fromhex("aaaa03000000") + bytes(32)


def novell():
    return eth(OTHER_MAC, PEER_MAC, 0x0026) + bytes.fromhex("ffff") + bytes(36)


def vlan(outer=None):
    inner = struct.pack("!HH", 0x0064, 0x0800) + ipv4(A, B, 17, udp(1000, 53, b"tagged"))
    frame = mac(OTHER_MAC) + mac(PEER_MAC)
    if outer:
        frame += struct.pack("!HH", 0x88A8, outer) + struct.pack("!H", 0x8100) + inner
    else:
        frame += struct.pack("!H", 0x8100) + inner
    return frame


PACKETS = {
    "ipv4_tcp": ipv4_tcp(),
    "ipv4_tcp_reply": ipv4_tcp(src=B, dst=A, sport=80, dport=12345),
    "ipv4_udp_to_host": ipv4_udp(),
    "ipv6_tcp_multicast": ipv6_tcp(),
    "arp_broadcast": arp_broadcast(),
    "llc_802_2": llc(),
    "raw_802_3": novell(),
    "ipv4_header_only": eth(OTHER_MAC, PEER_MAC, 0x0800),
    "vlan_ipv4": vlan(),
    "qinq_ipv4": vlan(outer=0x0200),
    "too_short": bytes(10),
}


def skb_ctx(mark=0, priority=0, ingress_ifindex=0, ifindex=0, cb=(0,) * 5, tstamp=0, wire_len=0,
            gso_segs=0, gso_size=0, hwtstamp=0, poke=None, size=192):
    b = bytearray(size)
    struct.pack_into("<I", b, 8, mark)
    struct.pack_into("<I", b, 32, priority)
    struct.pack_into("<I", b, 36, ingress_ifindex)
    struct.pack_into("<I", b, 40, ifindex)
    struct.pack_into("<5I", b, 48, *cb)
    struct.pack_into("<Q", b, 152, tstamp)
    struct.pack_into("<I", b, 160, wire_len)
    struct.pack_into("<I", b, 164, gso_segs)
    struct.pack_into("<I", b, 176, gso_size)
    struct.pack_into("<Q", b, 184, hwtstamp)
    if poke:
        for offset, value in poke:
            b[offset] = value
    return b.hex()


FULL_CTX = skb_ctx(mark=0xDEADBEEF, priority=5, ingress_ifindex=7, ifindex=1, cb=(1, 2, 3, 4, 0x01020304),
                   tstamp=1000, wire_len=1500, gso_segs=2, gso_size=1400, hwtstamp=77)

# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------


def cases():
    out = []

    def add(name, source, program, packet=None, ctx=None, defines=()):
        out.append({"name": name, "source": source, "defines": list(defines), "program": program,
                    "data": PACKETS[packet].hex() if packet else None, "packet": packet, "ctx": ctx})

    kinds = {"tc": "TC", "socket": "SOCKET", "cgroup_skb": "CGROUP"}
    for kind, define in kinds.items():
        for packet in ("ipv4_tcp", "ipv4_udp_to_host", "ipv6_tcp_multicast", "arp_broadcast", "llc_802_2",
                       "raw_802_3", "ipv4_header_only", "vlan_ipv4"):
            add("fields/%s/%s" % (kind, packet), "skb_fields.c", "skb_fields", packet, defines=[define])
        add("fields/%s/full_ctx" % kind, "skb_fields.c", "skb_fields", "ipv4_tcp", FULL_CTX, [define])
        add("fields/%s/truncated_capture" % kind, "skb_fields.c", "skb_fields", "ipv4_tcp",
            skb_ctx(wire_len=1514, tstamp=1700000000123456789), [define])
        add("fields/%s/writes" % kind, "skb_fields.c", "skb_fields", "ipv4_tcp", FULL_CTX, [define, "WRITES"])
        add("refused/%s/len_set" % kind, "skb_fields.c", "skb_fields", "ipv4_tcp", skb_ctx(poke=[(0, 1)]),
            [define])
        add("refused/%s/wire_len_short" % kind, "skb_fields.c", "skb_fields", "ipv4_tcp", skb_ctx(wire_len=20),
            [define])
        add("refused/%s/no_device" % kind, "skb_fields.c", "skb_fields", "ipv4_tcp", skb_ctx(ifindex=99),
            [define])
        add("refused/%s/short_packet" % kind, "skb_fields.c", "skb_fields", "too_short", defines=[define])
        add("refused/%s/long_ctx" % kind, "skb_fields.c", "skb_fields", "ipv4_tcp",
            skb_ctx(size=200, poke=[(196, 1)]), [define])
        add("fields/%s/long_zero_ctx" % kind, "skb_fields.c", "skb_fields", "ipv4_tcp", skb_ctx(size=200),
            [define])

    for defines, kind in (((), "tc"), (("SOCKET",), "socket")):
        add("helpers/%s/load_bytes" % kind, "skb_helpers.c", "load_bytes", "ipv4_tcp", defines=defines)
        add("helpers/%s/legacy_loads" % kind, "skb_helpers.c", "legacy_loads", "ipv4_tcp", defines=defines)
        add("helpers/%s/legacy_loads_arp" % kind, "skb_helpers.c", "legacy_loads", "arp_broadcast",
            defines=defines)
    tc = [
        ("store_bytes", "ipv4_tcp"), ("csum_replace", "ipv4_tcp"), ("csum_mangled", "ipv4_udp_to_host"),
        ("change_tail_grow", "ipv4_tcp"), ("change_head", "ipv4_tcp"), ("adjust_room_net", "ipv4_tcp"),
        ("adjust_room_net", "ipv6_tcp_multicast"), ("adjust_room_encap", "ipv4_tcp"),
        ("adjust_room_other", "arp_broadcast"), ("change_proto", "ipv4_tcp"), ("change_proto", "ipv6_tcp_multicast"),
        ("vlan", "ipv4_tcp"), ("vlan_pop", "vlan_ipv4"), ("vlan_pop", "qinq_ipv4"), ("vlan_pop", "ipv4_tcp"),
        ("hashes", "ipv4_tcp"), ("hashes", "arp_broadcast"), ("pull_data", "ipv4_tcp"), ("redirect", "ipv4_tcp"),
        ("clone_redirect", "ipv4_tcp"), ("writes", "ipv4_tcp"),
    ]
    for program, packet in tc:
        add("helpers/tc/%s/%s" % (program, packet), "skb_helpers.c", program, packet)
    add("helpers/tc/writes/ctx", "skb_helpers.c", "writes", "ipv4_tcp", FULL_CTX)
    raw = struct.pack("<4Q", 0x1111, 0x2233445566778899, 3, 0xAABBCCDD00000000).hex()
    add("raw_tracepoint/args", "tracing.c", "raw_args", ctx=raw)
    return out


# ---------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------


def compile_source(source, defines, workdir, cache):
    key = (source, tuple(defines))
    if key not in cache:
        output = os.path.join(workdir, "%s%s.o" % (source[:-2], "".join("." + d.lower() for d in defines)))
        cmd = ["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu"]
        cmd += ["-D" + d for d in defines] + ["-c", os.path.join(HERE, source), "-o", output]
        subprocess.run(cmd, check=True)
        cache[key] = output
    return cache[key]


def run_case(case, oracle, workdir, cache):
    obj = compile_source(case["source"], case["defines"], workdir, cache)
    cmd = [sys.executable, oracle, "elf-run", "--obj", obj, "--prog", case["program"], "--json", "--loader", "own"]
    if case["data"] is not None:
        cmd += ["--data-hex", case["data"]]
    if case["ctx"] is not None:
        cmd += ["--ctx-hex", case["ctx"]]
    result = subprocess.run(cmd, capture_output=True, text=True)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        sys.exit("oracle failed on %s:\n%s%s" % (case["name"], result.stdout, result.stderr))
    if report.get("verdict") != "ACCEPT":
        sys.exit("the kernel refused %s: %s" % (case["name"], report.get("reason")))
    if "run_error" in report:
        return {"errno": report["run_error"].rsplit("(", 1)[1].rstrip(")")}
    maps = {}
    for m in report.get("maps", []):
        if m["name"] in ("out", "fields"):
            maps[m["name"]] = {str(e["key_u"]): e["value"] for e in m["entries"] if int(e["value"], 16)}
    res = {"retval": report["retval"], "data_out": report["data_out"], "maps": maps}
    if "ctx_out" in report:
        res["ctx_out"] = report["ctx_out"]
    return res


def access_table(oracle):
    spec = importlib.util.spec_from_file_location("kernel_oracle", oracle)
    ko = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ko)
    sizes = {1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18}

    def ins(code, dst=0, src=0, off=0, imm=0):
        return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)

    table = {}
    for name, prog_type in (("tc", 3), ("socket", 1), ("cgroup_skb", 8)):
        rows = []
        for off in range(0, 196):
            for size in (1, 2, 4, 8):
                if off % size:
                    continue
                for write in (False, True):
                    if write:  # mov r2, 0; stx [r1+off], r2
                        body = ins(0xB7, 2) + ins(0x63 | sizes[size], 1, 2, off)
                    else:  # ldx r0, [r1+off]
                        body = ins(0x61 | sizes[size], 0, 1, off)
                    loaded = ko.prog_load(body + ins(0xB7) + ins(0x95), prog_type, want_log_on_error=False)
                    if loaded.ok:
                        rows.append([off, size, "w" if write else "r"])
                        loaded.close()
        table[name] = rows
    return table


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--oracle", default=os.environ.get("KERNEL_ORACLE", DEFAULT_ORACLE))
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="bpfsim-contexts-")
    cache = {}
    results = []
    for case in cases():
        case = dict(case)
        case["kernel"] = run_case(case, args.oracle, workdir, cache)
        results.append(case)
    document = {
        "about": "Generated by corpus/contexts/generate.py with BPF_PROG_TEST_RUN; do not edit.",
        "kernel": os.uname().release,
        "cases": results,
        "access": access_table(args.oracle),
    }
    if args.check:
        old = json.load(open(EXPECTED))
        differ = 0
        old_cases = {c["name"]: c for c in old["cases"]}
        for case in results:
            if old_cases.get(case["name"]) != case:
                print("differs: %s" % case["name"])
                differ += 1
        if old["access"] != document["access"]:
            print("differs: the access table")
            differ += 1
        print("%d cases, %d differ" % (len(results), differ))
        return 1 if differ else 0
    with open(EXPECTED, "w") as f:
        json.dump(document, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote %d cases to %s" % (len(results), os.path.relpath(EXPECTED)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
