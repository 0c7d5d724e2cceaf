#!/usr/bin/env python3
"""Attaches the tracing examples to the running kernel's tracepoints and runs real commands.

    sudo python3 corpus/examples/kernel_trace_check.py

The kernel cannot test-run tracepoint programs, so the tracing specs' expectations come
from the programs' logic and the tracefs formats. This script is the live cross-check:
it loads shadow_monitor and opensnoop through shared/tools/kernel_oracle.py's ELF loader,
attaches every program with perf_event_open(PERF_TYPE_TRACEPOINT) and
PERF_EVENT_IOC_SET_BPF, runs a few commands, reads the ring buffers by mmap and prints
the records of those commands' processes, so a reader can see that the kernel fills
the records as the specs say (layout, syscall numbers, return values, ids).
"""
import ctypes
import mmap
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernel_check  # noqa: E402  (finds kernel_oracle and compiles with clang)

k = kernel_check.k
libc = ctypes.CDLL(None, use_errno=True)
PERF_TYPE_TRACEPOINT = 2
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_SET_BPF = 0x40042408
SYS_PERF_EVENT_OPEN = 298
TRACEFS = "/sys/kernel/tracing"


def tracepoint_id(name):
    if not os.path.exists(os.path.join(TRACEFS, "events")):
        subprocess.run(["mount", "-t", "tracefs", "tracefs", TRACEFS], check=False)
    with open(os.path.join(TRACEFS, "events", name, "id")) as f:
        return int(f.read())


def attach(prog_fd, tracepoint):
    """One perf event on CPU 0, as libbpf opens it: a tracepoint's programs hang off the
    tracepoint itself and run on every CPU."""
    fds = []
    for cpu in [0]:
        attr = bytearray(128)
        struct.pack_into("<IIQQQ", attr, 0, PERF_TYPE_TRACEPOINT, 128, tracepoint_id(tracepoint), 1, 0)
        struct.pack_into("<Q", attr, 40, 0)  # flags: enabled later
        buf = ctypes.create_string_buffer(bytes(attr))
        fd = libc.syscall(SYS_PERF_EVENT_OPEN, buf, -1, cpu, -1, 8)  # PERF_FLAG_FD_CLOEXEC
        if fd < 0:
            raise OSError(ctypes.get_errno(), "perf_event_open %s" % tracepoint)
        if libc.ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd) != 0:
            raise OSError(ctypes.get_errno(), "PERF_EVENT_IOC_SET_BPF")
        libc.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)
        fds.append(fd)
    return fds


def ring_records(fd, size):
    """Every record committed to a BPF ring buffer map (consumer position 0)."""
    page = mmap.PAGESIZE
    producer = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
    end = struct.unpack_from("<Q", producer, 0)[0]
    records, pos = [], 0
    while pos < end:
        header = struct.unpack_from("<I", producer, page + pos % size)[0]
        length = header & 0x3FFFFFFF
        if not header & (1 << 31 | 1 << 30):  # neither busy nor discarded
            start = page + (pos + 8) % size
            records.append(bytes(producer[start:start + length]))
        pos += (8 + length + 7) // 8 * 8
    producer.close()
    return records


def load(example, functions):
    obj = kernel_check.compile_object(os.path.join(kernel_check.HERE, example, example + ".bpf.c"))
    loader = k.OwnElfLoader(obj)
    progs = {}
    for function in functions:
        section, _, insns = loader.build(func=function)
        result = k.prog_load(insns, 5, license=loader.license, name=function)  # BPF_PROG_TYPE_TRACEPOINT
        if not result.ok:
            raise SystemExit("%s: the kernel refused %s: %s" % (example, function, result.reason()))
        progs[section[len("tracepoint/"):]] = result
    return loader, progs


def cstr(b):
    return b.split(b"\0")[0].decode(errors="replace")


def main():
    shadow, shadow_progs = load("shadow_monitor", ["shadow_openat", "shadow_openat2", "shadow_open"])
    snoop, snoop_progs = load("opensnoop", ["opensnoop_enter", "opensnoop_exit"])
    maps = {m["name"]: m for m in list(shadow.maps.values())}
    allowed = {m["name"]: m for m in shadow.maps.values()}["allowed_comms"]
    k.map_update(allowed["fd"], b"sshd".ljust(16, b"\0"), b"\x01")
    events = [fd for tp, r in list(shadow_progs.items()) + list(snoop_progs.items()) for fd in attach(r.fd, tp)]

    # comm is the name of the executable file, so a copy of head named sshd is "sshd".
    sshd = os.path.join(tempfile.mkdtemp(prefix="bpfsim-examples-"), "sshd")
    shutil.copy(shutil.which("head"), sshd)
    runs = [subprocess.Popen(["head", "-c0", "/etc/shadow"]),
            subprocess.Popen(["cat", "/nonexistent"], stderr=subprocess.DEVNULL),
            subprocess.Popen([sshd, "-c0", "/etc/shadow"])]
    pids = {p.pid for p in runs}
    for p in runs:
        p.wait()
    for fd in events:
        os.close(fd)

    print("shadow_monitor alerts from these commands (pid, tid, uid, nr, comm, filename):")
    for rec in ring_records(maps["alerts"]["fd"], 64 * 1024):
        pid, tid, uid, nr = struct.unpack_from("<IIII", rec)
        if pid in pids:
            print("  %d %d %d %d %r %r" % (pid, tid, uid, nr, cstr(rec[16:32]), cstr(rec[32:96])))
    counts = {m["name"]: m for m in shadow.maps.values()}["counts"]
    print("  counts (all processes):", [struct.unpack("<Q", k.map_lookup(counts["fd"], struct.pack("<I", i), 8))[0]
                                        for i in range(4)])

    print("opensnoop events from these commands (pid, tid, uid, flags, ret, comm, filename):")
    events_map = {m["name"]: m for m in snoop.maps.values()}["events"]
    for rec in ring_records(events_map["fd"], 256 * 1024):
        pid, tid, uid, flags, ret = struct.unpack_from("<IIIIq", rec)
        if pid in pids:
            print("  %d %d %d %d %d %r %r" % (pid, tid, uid, flags, ret, cstr(rec[24:40]), cstr(rec[40:168])))
    for r in list(shadow_progs.values()) + list(snoop_progs.values()):
        r.close()
    shadow.close()
    snoop.close()


if __name__ == "__main__":
    main()
