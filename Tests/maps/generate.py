#!/usr/bin/env python3
"""Generate bpfsim's map and helper tests (Tests/maps/*.case) from the running Linux kernel.

Each case is one eBPF program (in bpfsim's assembly syntax), the maps it uses, and a
sequence of runs; map state carries over from run to run.  For every run the file
records what the kernel produced: the program's return value, the packet after the run
(data_out), the contents of every map and the ring buffer records.  bpfsim's test
(Tests/BPFInterpreterTests/MapHelperTests.swift) replays the runs on every engine and
compares.  Results that do not show in the return value are stored by the programs
themselves into an array map (usually ``out``, u64 values), so they are compared with
all 64 bits.

Where the expected values come from
-----------------------------------
Most cases: ``kernel_oracle.py load-run --prog-type T --map ... --map-init ... --data-seq
RUNS.jsonl --json`` (../../../shared/tools/kernel_oracle.py; --oracle or $KERNEL_ORACLE):
one loaded program, every packet in turn with BPF_PROG_TEST_RUN, the process pinned to
CPU 0, every map dumped after each run.

Cases that need what load-run cannot do use the same file's bpf(2) functions directly
(imported as a module), with the same steps plus:
  * a map that must be frozen (``frozen``: bpf_snprintf's format and bpf_strncmp's second
    string must be in a read-only, frozen map: BPF_F_RDONLY_PROG + BPF_MAP_FREEZE);
  * a function pointer (``lddw %rN, func LABEL``, for bpf_loop): the program is loaded
    with a small generated BTF and func_info, which the verifier requires for callbacks;
  * a ring buffer: after each run the generator mmaps the ring, reads the submitted
    records (skipping discarded ones) and advances the consumer position, as a user-space
    reader would; bpfsim does the same after each run (Machine.drainEvents);
  * runs on another CPU (``cpu N`` in a run): the process is pinned to that CPU for the
    run (LRU maps keep per-CPU lists);
  * an LRU map with initial entries: the process is pinned to CPU 0 before the entries
    are written, since an LRU update takes its element from the current CPU's lists
    (load-run writes them before it pins).
Each file's header says which way its values were obtained.

Not covered, because the kernel cannot give a comparable answer: bpf_ktime_get_ns and
bpf_get_prandom_u32 (bpfsim's clock and random stream are injected); the text that
bpf_trace_printk prints (only its return value is recorded); the target of a redirect;
formats or sizes the verifier refuses at load time (an invalid bpf_snprintf format, a
zero-length bpf_strtol buffer), since a refused program has no runs.

Format of a .case file
----------------------
``#`` starts a comment (outside ``-- asm`` only at the start of a line).  Lines
starting with ``-- `` open a section:

  -- program TYPE          xdp or socket. bpfsim runs xdp cases with Session's .packet
                           input (r1 = struct xdp_md).  A socket filter sees the packet
                           from its network header, so bpfsim runs socket cases with
                           .memory(input without its first 14 bytes) (their programs do
                           not use r1) and compares data_out from byte 14 on (the kernel
                           returns the Ethernet header zeroed).
  -- cpus N                the kernel's possible CPUs: per-CPU values list N values;
                           bpfsim runs with World(cpuCount: N), on CPU 0 unless a run
                           says otherwise; initial entries are written on CPU 0.
  -- map NAME TYPE KEY_SIZE VALUE_SIZE MAX_ENTRIES FLAGS [frozen]
                           one per map, in index order (the program's
                           ``lddw %r1, map_idx N`` is the Nth, counting from 0); TYPE is
                           the kernel's name (hash, lru_percpu_hash, ...); FLAGS the
                           map_flags in hex; ``frozen``: frozen after its init.
  -- init NAME KEYHEX VALUEHEX[,VALUEHEX...]
                           written from user space (BPF_ANY) before the first run; a
                           per-CPU map lists one value per CPU.
  -- asm                   the program, bpfsim's syntax, up to the next section.
  -- run NAME              one run, in order; its lines:
       cpu N                 the CPU the run executes on (only when not 0)
       input HEX             the packet (xdp) or the input (socket)
       retval HEX            the kernel's retval (32 bits; bpfsim's r0 is cut to 32)
       data_out HEX          what BPF_PROG_TEST_RUN returned as data_out
       map NAME MODE         the map's contents after the run, one line per entry
                             below it: ``KEYHEX VALUEHEX``, or for per-CPU maps
                             ``KEYHEX V0 V1 ...``.  MODE: ``ordered`` (arrays, devmaps:
                             entries in index order), ``set`` (hash maps, LPM tries: the
                             kernel's iteration order is not bpfsim's; compared as a
                             set), ``none`` (queue, stack, bloom filter, ring buffer: the
                             kernel cannot list them; programs report their contents)
       event NAME HEX        a ring buffer record submitted during the run, in order
                             (every ring buffer's records are listed; none = no line)

Usage (needs root: bpf(2), BPF_PROG_TEST_RUN):
    sudo python3 Tests/maps/generate.py            # (re)write every .case file here
    sudo python3 Tests/maps/generate.py --check    # re-run the kernel; report every file
                                                   # whose stored expectations differ
    options: --oracle PATH, --out DIR, -k SUBSTRING (only cases whose name contains it)
Standard library only.
"""

import argparse
import datetime
import importlib.util
import json
import mmap
import os
import platform
import re
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ORACLE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "tools", "kernel_oracle.py"))

M64 = (1 << 64) - 1
SENTINEL = 0x5A5A5A5A5A5A5A5A

# Kernel constants used below (linux/bpf.h).
BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK = 0, 1, 2, 4
BPF_F_NO_PREALLOC, BPF_F_NO_COMMON_LRU, BPF_F_ZERO_SEED, BPF_F_RDONLY_PROG = 0x1, 0x2, 0x40, 0x80
HELPER = {
    "map_lookup_elem": 1, "map_update_elem": 2, "map_delete_elem": 3, "probe_read": 4, "ktime_get_ns": 5,
    "trace_printk": 6, "get_smp_processor_id": 8, "redirect": 23, "csum_diff": 28, "get_numa_node_id": 42,
    "xdp_adjust_head": 44, "redirect_map": 51, "xdp_adjust_meta": 54, "xdp_adjust_tail": 65,
    "map_push_elem": 87, "map_pop_elem": 88, "map_peek_elem": 89, "strtol": 105, "strtoul": 106,
    "probe_read_kernel": 113, "probe_read_kernel_str": 115, "ringbuf_output": 130, "ringbuf_reserve": 131,
    "ringbuf_submit": 132, "ringbuf_discard": 133, "ringbuf_query": 134, "snprintf": 165, "loop": 181,
    "strncmp": 182, "map_lookup_percpu_elem": 195,
}
ORDERED = {"array", "percpu_array", "devmap"}
UNLISTABLE = {"queue", "stack", "bloom_filter", "ringbuf"}
PERCPU = {"percpu_hash", "percpu_array", "lru_percpu_hash"}


def u64(x):
    return struct.pack("<Q", x & M64)


def u32(x):
    return struct.pack("<I", x & 0xFFFFFFFF)


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------

class Map:
    def __init__(self, name, type, key_size, value_size, max_entries, flags=0, frozen=False):
        self.name, self.type = name, type
        self.key_size, self.value_size, self.max_entries = key_size, value_size, max_entries
        self.flags, self.frozen = flags, frozen

    def oracle_spec(self):
        return "%s:%s:%d:%d:%d:0x%x" % (self.name, self.type, self.key_size, self.value_size, self.max_entries,
                                        self.flags)


class Case:
    def __init__(self, name, title, maps, asm, runs, inits=(), prog_type="xdp", notes=()):
        self.name, self.title = name, title
        self.maps = maps
        self.asm = asm
        self.runs = [r if len(r) == 3 else (r[0], r[1], 0) for r in runs]   # [(name, bytes, cpu)]
        self.inits = list(inits)      # [(map name, key bytes, value bytes or [per-CPU values])]
        self.prog_type = prog_type
        self.notes = list(notes)

    def needs_direct(self):
        reasons = []
        if any(m.frozen for m in self.maps):
            reasons.append("a frozen read-only map")
        if any(re.search(r"\blddw\s+%r\d+\s*,\s*func\b", l) for l in self.asm):
            reasons.append("a callback (BTF func_info)")
        if any(m.type == "ringbuf" for m in self.maps):
            reasons.append("ring buffer records")
        if any(cpu != 0 for _, _, cpu in self.runs):
            reasons.append("runs on other CPUs")
        lru = {m.name for m in self.maps if m.type.startswith("lru_")}
        if any(name in lru for name, _, _ in self.inits):
            reasons.append("an LRU map initialised on CPU 0")
        return reasons


CASES = []


def add(case):
    assert case.name not in {c.name for c in CASES}, case.name
    CASES.append(case)


# ---- assembly helpers (bpfsim syntax) ---------------------------------------------------

class Asm:
    """Builds assembly text with unique labels."""

    def __init__(self):
        self.lines = []
        self.n = 0

    def __call__(self, *lines):
        self.lines.extend(lines)

    def label(self, stem="l"):
        self.n += 1
        return "%s_%d" % (stem, self.n)

    def record(self, slot, reg="%r9", out=0):
        """out[slot] = reg (a callee-saved register), through a lookup of the array `out`
        (map index `out`).  Clobbers r0-r5 and [r10-4]."""
        self("stw [%%r10-4], %d" % slot,
             "lddw %%r1, map_idx %d" % out,
             "mov %r2, %r10",
             "add %r2, -4",
             "call 1",
             "jeq %r0, 0, +1",
             "stxdw [%%r0+0], %s" % reg)

    def stack_bytes(self, offset, data):
        """Writes `data` (padded to 8 bytes) at [r10+offset] (offset negative, 8-aligned)."""
        data = bytes(data) + b"\0" * (-len(data) % 8)
        for i in range(0, len(data), 8):
            self("lddw %%r1, 0x%016x" % struct.unpack("<Q", data[i:i + 8])[0],
                 "stxdw [%%r10%+d], %%r1" % (offset + i))

    def const(self, reg, value):
        value &= M64
        signed = value - (1 << 64) if value >> 63 else value
        if -0x80000000 <= signed <= 0x7FFFFFFF:
            self("mov %s, %d" % (reg, signed))
        else:
            self("lddw %s, 0x%x" % (reg, value))

    def xdp_prologue(self, need):
        """r6 = ctx, r7 = data, r8 = data_end; returns XDP_DROP (1) when the packet is
        shorter than `need` bytes."""
        ok = self.label("long_enough")
        self("mov %r6, %r1",
             "ldxw %r7, [%r6+0]",
             "ldxw %r8, [%r6+4]",
             "mov %r1, %r7",
             "add %%r1, %d" % need,
             "jle %%r1, %%r8, %s" % ok,
             "mov %r0, 1",
             "exit",
             "%s:" % ok)


# ---- maps: one op per run, driven by the packet -----------------------------------------

OP_UPDATE, OP_LOOKUP, OP_DELETE, OP_PUSH, OP_POP, OP_PEEK, OP_LOOKUP_PERCPU, OP_INCREMENT, OP_STALE = range(1, 10)
OP_NAMES = {OP_UPDATE: "update", OP_LOOKUP: "lookup", OP_DELETE: "delete", OP_PUSH: "push", OP_POP: "pop",
            OP_PEEK: "peek", OP_LOOKUP_PERCPU: "lookup_percpu", OP_INCREMENT: "increment", OP_STALE: "stale"}
FLAG_NAMES = {0: "BPF_ANY", 1: "BPF_NOEXIST", 2: "BPF_EXIST", 4: "BPF_F_LOCK"}


def map_ops_program(key_size, value_size, ops):
    """An XDP program that applies one operation to map 1 per packet and stores results
    in out (map 0): out[0] = the helper's return value (for lookups 1 = found, 0 = NULL),
    out[1] = the value read (first 8 bytes; 0 when none).  Packet: u8 op, 3 pad bytes,
    u32 flags (or CPU), then the key, then the value (value_size bytes)."""
    a = Asm()
    key, val = 8, 8 + key_size
    a.xdp_prologue(max(val + value_size, 14))
    a("mov %r9, 0", "mov %r8, 0", "ldxb %r1, [%r7+0]")
    for op in ops:
        a("jeq %%r1, %d, op_%s" % (op, OP_NAMES[op]))
    a("ja done")

    def ptr(reg, off):
        a("mov %s, %%r7" % reg, "add %s, %d" % (reg, off))

    def read_value(src="%r0"):
        if value_size >= 8:
            a("ldxdw %%r8, [%s+0]" % src)
        elif value_size >= 4:
            a("ldxw %%r8, [%s+0]" % src)
        else:
            a("ldxb %%r8, [%s+0]" % src)

    for op in ops:
        a("op_%s:" % OP_NAMES[op])
        if op == OP_UPDATE:
            a("lddw %r1, map_idx 1")
            ptr("%r2", key)
            ptr("%r3", val)
            a("ldxw %r4, [%r7+4]", "call 2", "mov %r9, %r0")
        elif op in (OP_LOOKUP, OP_LOOKUP_PERCPU, OP_INCREMENT):
            a("lddw %r1, map_idx 1")
            ptr("%r2", key)
            if op == OP_LOOKUP_PERCPU:
                a("ldxw %r3, [%r7+4]", "call 195")
            else:
                a("call 1")
            a("jeq %r0, 0, done", "mov %r9, 1")
            if op == OP_INCREMENT:
                a("ldxdw %r1, [%r0+0]", "add %r1, 1", "stxdw [%r0+0], %r1")
            read_value()
        elif op == OP_DELETE:
            a("lddw %r1, map_idx 1")
            ptr("%r2", key)
            a("call 3", "mov %r9, %r0")
        elif op == OP_PUSH:
            a("lddw %r1, map_idx 1")
            ptr("%r2", val)
            a("ldxw %r3, [%r7+4]", "call 87", "mov %r9, %r0")
        elif op in (OP_POP, OP_PEEK):
            a("lddw %%r1, 0x%x" % SENTINEL, "stxdw [%r10-16], %r1")
            if value_size > 8:
                a("stxdw [%r10-24], %r1")
            a("lddw %r1, map_idx 1", "mov %r2, %r10", "add %%r2, %d" % (-16 if value_size <= 8 else -24))
            a("call %d" % (88 if op == OP_POP else 89), "mov %r9, %r0",
              "ldxdw %%r8, [%%r10%d]" % (-16 if value_size <= 8 else -24))
        elif op == OP_STALE:
            # lookup -> pointer p; update the same key with the packet's value; read *p
            a("lddw %r1, map_idx 1")
            ptr("%r2", key)
            a("call 1", "jeq %r0, 0, done", "stxdw [%r10-16], %r0",
              "lddw %r1, map_idx 1")
            ptr("%r2", key)
            ptr("%r3", val)
            a("ldxw %r4, [%r7+4]", "call 2", "mov %r9, %r0", "ldxdw %r1, [%r10-16]")
            read_value("%r1")
        a("ja done")
    a("done:")
    a.record(0, "%r9")
    a.record(1, "%r8")
    a("mov %r0, 2", "exit")
    return a.lines


def op_packet(op, key=b"", value=b"", flags=0, size=32):
    p = bytes([op, 0, 0, 0]) + u32(flags) + key + value
    return p + b"\0" * max(0, size - len(p))


def k32(x):
    return u32(x)


def v64(x):
    return u64(x)


def op_run(op, key=b"", value=b"", flags=0, what=""):
    name = OP_NAMES[op]
    if key:
        name += " key %s" % (what or key.hex())
    if op in (OP_UPDATE, OP_PUSH, OP_STALE) and value:
        name += " value 0x%x" % int.from_bytes(value[:8], "little")
    if op in (OP_UPDATE, OP_PUSH, OP_STALE):
        name += " " + FLAG_NAMES.get(flags, "flags 0x%x" % flags)
    if op == OP_LOOKUP_PERCPU:
        name += " cpu %d" % flags
    return (name, op_packet(op, key, value, flags))


def out_map(n=2, name="out"):
    return Map(name, "array", 4, 8, n)


def gen_hash():
    ops = [OP_UPDATE, OP_LOOKUP, OP_DELETE, OP_INCREMENT, OP_STALE]
    runs = [
        op_run(OP_UPDATE, k32(1), v64(0x11), BPF_ANY),
        op_run(OP_UPDATE, k32(1), v64(0x12), BPF_NOEXIST),
        op_run(OP_UPDATE, k32(2), v64(0x21), BPF_EXIST),
        op_run(OP_UPDATE, k32(1), v64(0x13), BPF_EXIST),
        op_run(OP_UPDATE, k32(2), v64(0x22), BPF_NOEXIST),
        op_run(OP_UPDATE, k32(3), v64(0x31), 3),
        op_run(OP_UPDATE, k32(3), v64(0x31), BPF_F_LOCK),
        op_run(OP_UPDATE, k32(3), v64(0x31), BPF_ANY),
        op_run(OP_UPDATE, k32(4), v64(0x41), BPF_ANY),
        op_run(OP_UPDATE, k32(5), v64(0x51), BPF_ANY),
        op_run(OP_UPDATE, k32(5), v64(0x51), BPF_NOEXIST),
        op_run(OP_UPDATE, k32(2), v64(0x23), BPF_ANY),
        op_run(OP_UPDATE, k32(4), v64(0x42), BPF_EXIST),
        op_run(OP_LOOKUP, k32(2)),
        op_run(OP_LOOKUP, k32(5)),
        op_run(OP_INCREMENT, k32(3)),
        op_run(OP_STALE, k32(1), v64(0x14), BPF_ANY),
        op_run(OP_STALE, k32(1), v64(0x15), BPF_ANY),
        op_run(OP_DELETE, k32(5)),
        op_run(OP_DELETE, k32(3)),
        op_run(OP_DELETE, k32(3)),
        op_run(OP_LOOKUP, k32(3)),
        op_run(OP_UPDATE, k32(5), v64(0x52), BPF_NOEXIST),
        op_run(OP_UPDATE, k32(3), v64(0x32), BPF_ANY),
        op_run(OP_LOOKUP, k32(3)),
    ]
    add(Case("hash-update-flags-full-delete", "BPF_MAP_TYPE_HASH (4 entries, preallocated): update flags, a full "
             "map, invalid flags, updates of existing keys in a full map, delete, lookups, in-place writes and a "
             "pointer kept across an update",
             [out_map(), Map("h", "hash", 4, 8, 4)], map_ops_program(4, 8, ops), runs,
             notes=["one operation per run (packet: op, flags, key, value); out[0] = the helper's result "
                    "(lookups: 1 found, 0 NULL), out[1] = the value read",
                    "increment: lookup and add 1 in place; stale: lookup -> p, update the key, then read *p"]))

    # per-CPU hash: values on CPU 0 only; CPU 1's from user space
    runs = [
        op_run(OP_UPDATE, k32(7), v64(0x70), BPF_ANY),
        op_run(OP_LOOKUP, k32(7)),
        op_run(OP_LOOKUP_PERCPU, k32(7), flags=0),
        op_run(OP_LOOKUP_PERCPU, k32(7), flags=1),
        op_run(OP_LOOKUP_PERCPU, k32(9), flags=1),
        op_run(OP_LOOKUP_PERCPU, k32(9), flags=0),
        op_run(OP_UPDATE, k32(9), v64(0x90), BPF_EXIST),
        op_run(OP_LOOKUP_PERCPU, k32(9), flags=1),
        op_run(OP_LOOKUP_PERCPU, k32(9), flags=2),
        op_run(OP_INCREMENT, k32(9)),
        op_run(OP_UPDATE, k32(8), v64(0x80), BPF_NOEXIST),
        op_run(OP_UPDATE, k32(6), v64(0x60), BPF_NOEXIST),
        op_run(OP_UPDATE, k32(8), v64(0x81), BPF_ANY),
        op_run(OP_DELETE, k32(7)),
        op_run(OP_UPDATE, k32(6), v64(0x61), BPF_ANY),
        op_run(OP_LOOKUP, k32(7)),
    ]
    add(Case("percpu-hash", "BPF_MAP_TYPE_PERCPU_HASH (3 entries): programs see CPU 0's value; "
             "bpf_map_lookup_percpu_elem reads other CPUs; a new element is zero on the other CPUs; full map",
             [out_map(), Map("ph", "percpu_hash", 4, 8, 3)],
             map_ops_program(4, 8, [OP_UPDATE, OP_LOOKUP, OP_DELETE, OP_LOOKUP_PERCPU, OP_INCREMENT]), runs,
             inits=[("ph", k32(9), [v64(0x900), v64(0x901)])],
             notes=["key 9 starts with 0x900 on CPU 0 and 0x901 on CPU 1 (user-space update); runs are on CPU 0",
                    "lookup_percpu: bpf_map_lookup_percpu_elem with the CPU in the flags field"]))


def gen_array():
    ops = [OP_UPDATE, OP_LOOKUP, OP_DELETE, OP_INCREMENT]
    runs = [
        op_run(OP_LOOKUP, k32(0)),
        op_run(OP_UPDATE, k32(1), v64(0x1111), BPF_ANY),
        op_run(OP_UPDATE, k32(1), v64(0x1112), BPF_EXIST),
        op_run(OP_UPDATE, k32(1), v64(0x1113), BPF_NOEXIST),
        op_run(OP_UPDATE, k32(2), v64(0x2222), BPF_NOEXIST | BPF_F_LOCK),
        op_run(OP_UPDATE, k32(2), v64(0x2222), BPF_F_LOCK),
        op_run(OP_UPDATE, k32(2), v64(0x2222), 3),
        op_run(OP_UPDATE, k32(2), v64(0x2223), BPF_ANY),
        op_run(OP_UPDATE, k32(3), v64(0x3333), BPF_ANY),
        op_run(OP_UPDATE, k32(4), v64(0x4444), BPF_ANY),
        op_run(OP_UPDATE, k32(4), v64(0x4444), BPF_EXIST),
        op_run(OP_UPDATE, k32(0xFFFFFFFF), v64(0x5555), BPF_ANY),
        op_run(OP_UPDATE, k32(9), v64(0x5555), 7),
        op_run(OP_LOOKUP, k32(3)),
        op_run(OP_LOOKUP, k32(4)),
        op_run(OP_LOOKUP, k32(0x80000000)),
        op_run(OP_INCREMENT, k32(3)),
        op_run(OP_DELETE, k32(1)),
        op_run(OP_DELETE, k32(4)),
        op_run(OP_LOOKUP, k32(1)),
    ]
    add(Case("array-bounds-flags-delete", "BPF_MAP_TYPE_ARRAY (4 entries): lookups in and out of range, update "
             "flags, out-of-range updates, invalid flags, delete",
             [out_map(), Map("a", "array", 4, 8, 4)], map_ops_program(4, 8, ops), runs,
             notes=["one operation per run (packet: op, flags, key, value); out[0] = the helper's result "
                    "(lookups: 1 found, 0 NULL), out[1] = the value read"]))

    runs = [
        op_run(OP_LOOKUP, k32(1)),
        op_run(OP_LOOKUP_PERCPU, k32(1), flags=1),
        op_run(OP_UPDATE, k32(1), v64(0xA1), BPF_ANY),
        op_run(OP_LOOKUP_PERCPU, k32(1), flags=0),
        op_run(OP_LOOKUP_PERCPU, k32(1), flags=1),
        op_run(OP_LOOKUP_PERCPU, k32(1), flags=2),
        op_run(OP_LOOKUP_PERCPU, k32(3), flags=0),
        op_run(OP_INCREMENT, k32(0)),
        op_run(OP_UPDATE, k32(2), v64(0xA2), BPF_NOEXIST),
        op_run(OP_UPDATE, k32(3), v64(0xA3), BPF_ANY),
    ]
    add(Case("percpu-array", "BPF_MAP_TYPE_PERCPU_ARRAY (3 entries): CPU 0's values from programs, other CPUs "
             "through bpf_map_lookup_percpu_elem, bounds",
             [out_map(), Map("pa", "percpu_array", 4, 8, 3)],
             map_ops_program(4, 8, [OP_UPDATE, OP_LOOKUP, OP_LOOKUP_PERCPU, OP_INCREMENT]), runs,
             inits=[("pa", k32(1), [v64(0x100), v64(0x101)])],
             notes=["index 1 starts with 0x100 on CPU 0 and 0x101 on CPU 1 (user-space update); runs are on CPU 0"]))


# ---- LRU maps: several operations per run, and bulk operations -------------------------

OP_READ_SAVED, OP_FOR_EACH = 10, 11
SCRIPT_RECORD = 24


SCRIPT_NAMES = {OP_UPDATE: "update", OP_LOOKUP: "lookup", OP_LOOKUP_PERCPU: "lookup_percpu", OP_DELETE: "delete",
                OP_READ_SAVED: "read_saved", OP_FOR_EACH: "for_each"}


def script_program(slots, percpu=False):
    """An XDP program that applies up to `slots` operations to map 1 (u32 keys, u64 values)
    in one run, in order, so that pointers from lookups can be read after later
    operations.  Packet: `slots` records of 24 bytes: u8 op (0 = none), u8 pointer (0 or 1),
    2 pad, u32 flags (or CPU), u32 key, 4 pad, u64 value.  Ops: update, lookup (keeps the
    pointer in the record's pointer slot), lookup_percpu (per-CPU maps; keeps it too),
    delete, read_saved (reads through the kept pointer), for_each (bpf_for_each_map_elem
    with a callback that does nothing).  out[2j] = op j's result (lookups and read_saved:
    1 = a value, 0 = none), out[2j+1] = the value read."""
    a = Asm()
    a.xdp_prologue(max(SCRIPT_RECORD * slots, 14))
    a("stdw [%r10-16], 0", "stdw [%r10-24], 0")
    for j in range(slots):
        base = SCRIPT_RECORD * j
        p = "s%d_" % j

        def ptr(reg, off):
            a("mov %s, %%r7" % reg, "add %s, %d" % (reg, base + off))

        a("ldxb %%r1, [%%r7+%d]" % base, "mov %r9, 0", "mov %r8, 0")
        for op, name in SCRIPT_NAMES.items():
            if op != OP_LOOKUP_PERCPU or percpu:
                a("jeq %%r1, %d, %s%s" % (op, p, name))
        a("ja %sdone" % p)
        a("%supdate:" % p, "lddw %r1, map_idx 1")
        ptr("%r2", 8)
        ptr("%r3", 16)
        a("ldxw %%r4, [%%r7+%d]" % (base + 4), "call 2", "mov %r9, %r0", "ja %srecord" % p)
        a("%slookup:" % p, "lddw %r1, map_idx 1")
        ptr("%r2", 8)
        a("call 1", "ja %sfound" % p)
        if percpu:
            a("%slookup_percpu:" % p, "lddw %r1, map_idx 1")
            ptr("%r2", 8)
            a("ldxw %%r3, [%%r7+%d]" % (base + 4), "call 195")
        a("%sfound:" % p, "jeq %%r0, 0, %srecord" % p, "mov %r9, 1", "ldxdw %r8, [%r0+0]",
          "ldxb %%r1, [%%r7+%d]" % (base + 1), "jeq %%r1, 1, %skeep_1" % p,
          "stxdw [%r10-16], %r0", "ja %srecord" % p,
          "%skeep_1:" % p, "stxdw [%r10-24], %r0", "ja %srecord" % p)
        a("%sdelete:" % p, "lddw %r1, map_idx 1")
        ptr("%r2", 8)
        a("call 3", "mov %r9, %r0", "ja %srecord" % p)
        a("%sread_saved:" % p, "ldxb %%r1, [%%r7+%d]" % (base + 1), "jeq %%r1, 1, %sread_1" % p,
          "ldxdw %r1, [%r10-16]", "ja %sread" % p,
          "%sread_1:" % p, "ldxdw %r1, [%r10-24]",
          "%sread:" % p, "jeq %%r1, 0, %srecord" % p, "mov %r9, 1", "ldxdw %r8, [%r1+0]", "ja %srecord" % p)
        a("%sfor_each:" % p, "lddw %r1, map_idx 1", "lddw %r2, func for_each_callback", "mov %r3, 0",
          "mov %r4, 0", "call 164", "mov %r9, %r0")
        a("%srecord:" % p)
        a.record(2 * j, "%r9")
        a.record(2 * j + 1, "%r8")
        a("%sdone:" % p)
    a("mov %r0, 2", "exit",
      "# for_each_callback(map, key, value, ctx): visits every element",
      "for_each_callback:", "mov %r0, 0", "exit")
    return a.lines


def script_run(steps, slots, cpu=0):
    """steps: (op, key, value, flags, pointer) tuples (shorter ones padded with zeros)."""
    data, words = b"", []
    for step in steps:
        op, key, value, flags, pointer = tuple(step) + (0,) * (5 - len(step))
        data += bytes([op, pointer, 0, 0]) + u32(flags) + u32(key) + b"\0" * 4 + u64(value)
        w = SCRIPT_NAMES[op]
        if op in (OP_UPDATE, OP_LOOKUP, OP_LOOKUP_PERCPU, OP_DELETE):
            w += " %d" % key
        if op == OP_UPDATE:
            w += "=0x%x" % value + ("" if flags == 0 else " " + FLAG_NAMES.get(flags, "flags 0x%x" % flags))
        if op == OP_LOOKUP_PERCPU:
            w += " cpu %d" % flags
        if op in (OP_LOOKUP, OP_LOOKUP_PERCPU, OP_READ_SAVED):
            w += " p%d" % pointer
        words.append(w)
    assert len(steps) <= slots
    data += b"\0" * (SCRIPT_RECORD * slots - len(data))
    return (", ".join(words) + (" (CPU %d)" % cpu if cpu else ""), data, cpu)


def bulk_program():
    """An XDP program that applies one operation to a range of u32 keys of map 1 with
    bpf_loop.  Packet: u8 op (update, lookup, delete), 3 pad, u32 flags, u32 first key,
    u32 count, u32 stride, 4 pad, u64 tag; key i is first + i * stride, its value tag +
    key.  out[0] = bpf_loop's result, out[1] = the operations that succeeded (lookups:
    found), out[2] = the last error, out[3] = the sum of the values found."""
    a = Asm()
    a.xdp_prologue(32)
    # the callback's context: first, stride, flags, tag, op, ok, error, sum at r10-64..-8
    a("ldxw %r1, [%r7+8]", "stxdw [%r10-64], %r1",
      "ldxw %r1, [%r7+16]", "stxdw [%r10-56], %r1",
      "ldxw %r1, [%r7+4]", "stxdw [%r10-48], %r1",
      "ldxdw %r1, [%r7+24]", "stxdw [%r10-40], %r1",
      "ldxb %r1, [%r7+0]", "stxdw [%r10-32], %r1",
      "stdw [%r10-24], 0", "stdw [%r10-16], 0", "stdw [%r10-8], 0",
      "ldxw %r1, [%r7+12]", "lddw %r2, func bulk_callback", "mov %r3, %r10", "add %r3, -64", "mov %r4, 0",
      "call 181", "mov %r9, %r0")
    a.record(0, "%r9")
    for slot, off in ((1, -24), (2, -16), (3, -8)):
        a("ldxdw %%r9, [%%r10%d]" % off)
        a.record(slot, "%r9")
    a("mov %r0, 2", "exit",
      "# bulk_callback(index, ctx): one operation on key first + index * stride; returns 0",
      "bulk_callback:",
      "stxdw [%r10-24], %r2",
      "ldxdw %r3, [%r2+8]", "mul %r1, %r3", "ldxdw %r3, [%r2+0]", "add %r1, %r3", "stxw [%r10-4], %r1",
      "ldxdw %r3, [%r2+24]", "add %r3, %r1", "stxdw [%r10-16], %r3",
      "ldxdw %r1, [%r2+32]",
      "jeq %r1, 1, bulk_update", "jeq %r1, 2, bulk_lookup", "jeq %r1, 3, bulk_delete",
      "mov %r0, 1", "exit",
      "bulk_update:",
      "ldxdw %r4, [%r2+16]", "lddw %r1, map_idx 1", "mov %r2, %r10", "add %r2, -4", "mov %r3, %r10",
      "add %r3, -16", "call 2", "ja bulk_result",
      "bulk_delete:",
      "lddw %r1, map_idx 1", "mov %r2, %r10", "add %r2, -4", "call 3",
      "bulk_result:",
      "ldxdw %r2, [%r10-24]", "jne %r0, 0, bulk_error",
      "ldxdw %r1, [%r2+40]", "add %r1, 1", "stxdw [%r2+40], %r1", "mov %r0, 0", "exit",
      "bulk_error:",
      "stxdw [%r2+48], %r0", "mov %r0, 0", "exit",
      "bulk_lookup:",
      "lddw %r1, map_idx 1", "mov %r2, %r10", "add %r2, -4", "call 1",
      "ldxdw %r2, [%r10-24]", "jeq %r0, 0, bulk_missing",
      "ldxdw %r1, [%r0+0]", "ldxdw %r3, [%r2+56]", "add %r3, %r1", "stxdw [%r2+56], %r3",
      "ldxdw %r1, [%r2+40]", "add %r1, 1", "stxdw [%r2+40], %r1",
      "bulk_missing:",
      "mov %r0, 0", "exit")
    return a.lines


def bulk_run(op, first, count, stride=1, tag=0, flags=0, cpu=0):
    data = bytes([op, 0, 0, 0]) + u32(flags) + u32(first) + u32(count) + u32(stride) + b"\0" * 4 + u64(tag)
    keys = "keys %d..%d" % (first, first + (count - 1) * stride) + (" step %d" % stride if stride != 1 else "")
    name = "%s %s" % (OP_NAMES[op], keys)
    if op == OP_UPDATE:
        name += " (value 0x%x + key)" % tag + ("" if flags == 0 else " " + FLAG_NAMES.get(flags, "0x%x" % flags))
    if cpu:
        name += " (CPU %d)" % cpu
    return (name, data, cpu)


def gen_lru():
    ops = [OP_UPDATE, OP_LOOKUP, OP_DELETE]

    def inserts(keys):
        return [op_run(OP_UPDATE, k32(k), v64(0x100 + k), BPF_ANY) for k in keys]

    runs = inserts(range(1, 5)) + inserts(range(5, 9)) + inserts(range(9, 11))
    add(Case("lru-hash-evict-no-lookups", "BPF_MAP_TYPE_LRU_HASH (4 entries, common LRU): which keys survive "
             "when more keys than max_entries are inserted, without lookups",
             [out_map(), Map("lru", "lru_hash", 4, 8, 4)], map_ops_program(4, 8, ops), runs,
             notes=["keys 1..10 inserted in order (value 0x100 + key); the map dump after each run shows what the "
                    "kernel kept"]))

    runs = (inserts(range(1, 5)) + [op_run(OP_LOOKUP, k32(1)), op_run(OP_LOOKUP, k32(2))] + inserts([5])
            + [op_run(OP_LOOKUP, k32(1)), op_run(OP_LOOKUP, k32(3))] + inserts([6, 7])
            + [op_run(OP_UPDATE, k32(7), v64(0x777), BPF_EXIST), op_run(OP_DELETE, k32(7))] + inserts([8, 9]))
    add(Case("lru-hash-evict-with-lookups", "BPF_MAP_TYPE_LRU_HASH (4 entries, common LRU): evictions when "
             "lookups mark some keys as used between inserts",
             [out_map(), Map("lru", "lru_hash", 4, 8, 4)], map_ops_program(4, 8, ops), runs,
             notes=["keys 1..4 inserted, 1 and 2 looked up, 5 inserted, 1 and 3 looked up, 6 and 7 inserted, "
                    "7 updated (BPF_EXIST) and deleted, 8 and 9 inserted"]))

    runs = inserts(range(1, 9)) + [op_run(OP_LOOKUP, k32(k)) for k in (1, 2, 3)] + inserts(range(9, 14))
    add(Case("lru-hash-larger", "BPF_MAP_TYPE_LRU_HASH (8 entries, common LRU): 13 keys, with lookups of 1-3 "
             "after the map fills",
             [out_map(), Map("lru", "lru_hash", 4, 8, 8)], map_ops_program(4, 8, ops), runs,
             notes=["keys 1..8 inserted, 1, 2, 3 looked up, keys 9..13 inserted"]))

    runs = inserts(range(1, 5)) + [op_run(OP_LOOKUP, k32(1))] + inserts(range(5, 8))
    add(Case("lru-hash-no-common-lru", "BPF_MAP_TYPE_LRU_HASH with BPF_F_NO_COMMON_LRU (4 entries, per-CPU LRU "
             "lists): evictions from CPU 0's list",
             [out_map(), Map("lru", "lru_hash", 4, 8, 4, BPF_F_NO_COMMON_LRU)], map_ops_program(4, 8, ops), runs,
             notes=["keys 1..4 inserted, 1 looked up, keys 5..7 inserted"]))

    runs = (inserts(range(1, 5)) + [op_run(OP_LOOKUP, k32(2))] + inserts(range(5, 7))
            + [op_run(OP_LOOKUP_PERCPU, k32(k), flags=1) for k in (2, 6)])
    add(Case("lru-percpu-hash", "BPF_MAP_TYPE_LRU_PERCPU_HASH (4 entries): per-CPU values and evictions",
             [out_map(), Map("lru", "lru_percpu_hash", 4, 8, 4)],
             map_ops_program(4, 8, ops + [OP_LOOKUP_PERCPU]), runs,
             notes=["keys 1..4 inserted, 2 looked up, keys 5 and 6 inserted; then CPU 1's values read"]))


    # ---- updates and failed updates in a full map -------------------------------------
    runs = (inserts(range(1, 5)) + [op_run(OP_LOOKUP, k32(2))]
            + [op_run(OP_UPDATE, k32(3), v64(0x333), BPF_ANY), op_run(OP_UPDATE, k32(4), v64(0x444), BPF_EXIST),
               op_run(OP_UPDATE, k32(1), v64(0x111), BPF_NOEXIST), op_run(OP_UPDATE, k32(9), v64(0x999), BPF_EXIST),
               op_run(OP_UPDATE, k32(5), v64(0x105), 3), op_run(OP_UPDATE, k32(5), v64(0x105), BPF_F_LOCK),
               op_run(OP_STALE, k32(2), v64(0x222), BPF_ANY), op_run(OP_STALE, k32(4), v64(0x4444), BPF_EXIST),
               op_run(OP_LOOKUP, k32(3)), op_run(OP_LOOKUP, k32(1))]
            + inserts([5, 6]) + [op_run(OP_DELETE, k32(2)), op_run(OP_DELETE, k32(2))] + inserts([7, 8, 9])
            + [op_run(OP_UPDATE, k32(9), v64(0x909), BPF_NOEXIST), op_run(OP_LOOKUP, k32(9))])
    add(Case("lru-hash-full-updates", "BPF_MAP_TYPE_LRU_HASH (4 entries, common LRU): updates of existing keys in "
             "a full map, updates that fail (BPF_NOEXIST on a key that exists, BPF_EXIST on one that does not: "
             "the element is taken from the LRU first, so they still evict), invalid flags, a pointer kept "
             "across an update, deletes",
             [out_map(), Map("lru", "lru_hash", 4, 8, 4)], map_ops_program(4, 8, ops + [OP_STALE]), runs,
             notes=["one operation per run, as in lru-hash-evict-*; stale: lookup -> p, update the key, read *p"]))

    # ---- two CPUs: local free and pending lists, stealing -----------------------------
    def on(cpu, run):
        return run[:2] + (cpu,)

    def on_cpus(runs):
        """Names the CPU of runs not on CPU 0."""
        return [(r[0] + (" (CPU %d)" % r[2] if len(r) > 2 and r[2] else ""),) + tuple(r[1:]) for r in runs]

    runs = ([on(0, r) for r in inserts(range(1, 4))] + [on(1, r) for r in inserts(range(4, 7))]
            + [on(1, op_run(OP_LOOKUP, k32(1))), on(0, op_run(OP_LOOKUP, k32(5)))]
            + [on(0, r) for r in inserts([7, 8])] + [on(1, r) for r in inserts([9, 10, 11])]
            + [on(1, op_run(OP_DELETE, k32(7))), on(0, op_run(OP_DELETE, k32(10)))]
            + [on(1, r) for r in inserts([12, 13])] + [on(0, r) for r in inserts([14, 15, 16])]
            + [on(1, op_run(OP_UPDATE, k32(16), v64(0x1616), BPF_ANY)), on(1, op_run(OP_LOOKUP, k32(14)))]
            + [on(0, r) for r in inserts([17, 18, 19, 20])])
    runs = on_cpus(runs)
    add(Case("lru-hash-two-cpus", "BPF_MAP_TYPE_LRU_HASH (8 entries, common LRU) used from CPU 0 and CPU 1: "
             "each CPU takes elements in batches onto its local free list, new elements stay on its pending "
             "list until it next goes to the common list, and a CPU that finds nothing steals from the others",
             [out_map(), Map("lru", "lru_hash", 4, 8, 8)], map_ops_program(4, 8, ops), runs,
             notes=["one operation per run on the CPU the run names; a delete frees the element to the local "
                    "free list of the CPU that took it"]))

    runs = ([on(0, r) for r in inserts(range(1, 4))] + [on(1, r) for r in inserts(range(4, 8))]
            + [on(0, op_run(OP_LOOKUP, k32(1))), on(1, op_run(OP_LOOKUP, k32(1)))]
            + [on(0, r) for r in inserts([8, 9])] + [on(1, op_run(OP_DELETE, k32(2)))]
            + [on(0, r) for r in inserts([10])] + [on(1, r) for r in inserts([11])]
            + [on(0, op_run(OP_UPDATE, k32(10), v64(0x1010), BPF_ANY)), on(0, op_run(OP_UPDATE, k32(9), v64(0x909),
                                                                                  BPF_EXIST))]
            + [on(1, r) for r in inserts([12, 13])])
    runs = on_cpus(runs)
    add(Case("lru-hash-no-common-lru-two-cpus", "BPF_MAP_TYPE_LRU_HASH with BPF_F_NO_COMMON_LRU (5 entries, "
             "rounded up to 6: 3 per CPU) used from CPU 0 and CPU 1: each CPU evicts from its own list only, "
             "and a deleted element goes back to the list of the CPU that took it",
             [out_map(), Map("lru", "lru_hash", 4, 8, 5, BPF_F_NO_COMMON_LRU)], map_ops_program(4, 8, ops), runs,
             notes=["one operation per run on the CPU the run names"]))

    runs = on_cpus([on(0, op_run(OP_UPDATE, k32(1), v64(0x101), BPF_ANY)),
                    on(1, op_run(OP_UPDATE, k32(2), v64(0x102), BPF_ANY)), on(1, op_run(OP_LOOKUP, k32(2))),
                    on(0, op_run(OP_UPDATE, k32(3), v64(0x103), BPF_ANY)), on(0, op_run(OP_DELETE, k32(3))),
                    on(1, op_run(OP_UPDATE, k32(4), v64(0x104), BPF_ANY)),
                    on(1, op_run(OP_UPDATE, k32(4), v64(0x444), BPF_EXIST)),
                    on(1, op_run(OP_UPDATE, k32(5), v64(0x105), BPF_ANY)),
                    on(1, op_run(OP_UPDATE, k32(5), v64(0x555), BPF_ANY)),
                    on(0, op_run(OP_UPDATE, k32(5), v64(0x5555), BPF_NOEXIST)),
                    on(0, op_run(OP_UPDATE, k32(6), v64(0x106), BPF_ANY)),
                    on(1, op_run(OP_DELETE, k32(6))), on(1, op_run(OP_UPDATE, k32(7), v64(0x107), BPF_ANY)),
                    on(0, op_run(OP_UPDATE, k32(8), v64(0x108), BPF_ANY))])
    add(Case("lru-hash-one-entry-two-cpus", "BPF_MAP_TYPE_LRU_HASH with one entry, used from CPU 0 and CPU 1: the "
             "only element sits on one CPU's lists, so the other CPU steals it (evicting its key); an update of "
             "the existing key takes the element from the LRU first, evicting that very key, so BPF_EXIST fails "
             "and BPF_NOEXIST succeeds",
             [out_map(), Map("lru", "lru_hash", 4, 8, 1)], map_ops_program(4, 8, ops), runs,
             notes=["one operation per run on the CPU the run names"]))

    # ---- per-CPU values ------------------------------------------------------------------
    pops = ops + [OP_LOOKUP_PERCPU]
    runs = ([op_run(OP_UPDATE, k32(3), v64(0x30), BPF_ANY), op_run(OP_UPDATE, k32(4), v64(0x40), BPF_ANY),
             op_run(OP_UPDATE, k32(1), v64(0x11), BPF_EXIST), op_run(OP_UPDATE, k32(2), v64(0x22), BPF_EXIST),
             op_run(OP_UPDATE, k32(2), v64(0x23), BPF_ANY), op_run(OP_UPDATE, k32(3), v64(0x31), BPF_NOEXIST),
             op_run(OP_LOOKUP_PERCPU, k32(4), flags=1), op_run(OP_LOOKUP_PERCPU, k32(1), flags=2)]
            + [on(1, op_run(OP_UPDATE, k32(5), v64(0x51), BPF_ANY)), on(1, op_run(OP_UPDATE, k32(4), v64(0x41),
                                                                                 BPF_EXIST))]
            + [on(1, op_run(OP_LOOKUP, k32(4))), on(0, op_run(OP_UPDATE, k32(6), v64(0x60), BPF_ANY)),
               on(0, op_run(OP_DELETE, k32(5))), on(1, op_run(OP_UPDATE, k32(7), v64(0x71), BPF_ANY)),
               on(0, op_run(OP_UPDATE, k32(8), v64(0x80), BPF_ANY)), on(0, op_run(OP_UPDATE, k32(9), v64(0x90),
                                                                                 BPF_ANY))])
    runs = on_cpus(runs)
    add(Case("lru-percpu-hash-updates", "BPF_MAP_TYPE_LRU_PERCPU_HASH (4 entries, common LRU): elements written "
             "from user space, updates in place (BPF_EXIST takes no element from the LRU; BPF_ANY and BPF_NOEXIST "
             "do, even for a key that exists, and may evict), bpf_map_lookup_percpu_elem, updates from CPU 1",
             [out_map(), Map("lru", "lru_percpu_hash", 4, 8, 4)], map_ops_program(4, 8, pops), runs,
             inits=[("lru", k32(1), [v64(0x100), v64(0x101)]), ("lru", k32(2), [v64(0x200), v64(0x201)])],
             notes=["keys 1 and 2 written from user space on CPU 0 before the runs (0x100/0x101, 0x200/0x201)",
                    "one operation per run on the CPU the run names; lookup_percpu: the CPU in the flags field"]))

    runs = ([on(0, r) for r in inserts(range(1, 4))] + [on(1, r) for r in inserts(range(4, 7))]
            + [on(0, op_run(OP_LOOKUP_PERCPU, k32(1), flags=1)), on(1, op_run(OP_UPDATE, k32(1), v64(0x1111),
                                                                                 BPF_EXIST))]
            + [on(0, r) for r in inserts([7, 8])] + [on(1, op_run(OP_UPDATE, k32(5), v64(0x555), BPF_ANY))]
            + [on(1, r) for r in inserts([9])] + [on(0, op_run(OP_DELETE, k32(6)))]
            + [on(1, r) for r in inserts([10, 11])])
    runs = on_cpus(runs)
    add(Case("lru-percpu-hash-no-common-lru", "BPF_MAP_TYPE_LRU_PERCPU_HASH with BPF_F_NO_COMMON_LRU (6 entries, "
             "3 per CPU) used from CPU 0 and CPU 1",
             [out_map(), Map("lru", "lru_percpu_hash", 4, 8, 6, BPF_F_NO_COMMON_LRU)],
             map_ops_program(4, 8, pops), runs,
             notes=["one operation per run on the CPU the run names; lookup_percpu: the CPU in the flags field"]))

    # ---- which element is reused: pointers kept across operations ------------------------
    U, L, D, R, F = OP_UPDATE, OP_LOOKUP, OP_DELETE, OP_READ_SAVED, OP_FOR_EACH
    script_notes = ["up to 8 operations per run (packet: 24-byte records: op, pointer, flags, key, value); "
                    "out[2j] = operation j's result (lookups and read_saved: 1 = a value), out[2j+1] = the value "
                    "read",
                    "lookup keeps the pointer in p0 or p1; read_saved reads through it; for_each: "
                    "bpf_for_each_map_elem with a callback that does nothing (result: elements visited)"]
    runs = [script_run([(U, 1, 0x101), (U, 2, 0x102), (U, 3, 0x103), (U, 4, 0x104)], 8),
            script_run([(F,), (U, 5, 0x105), (L, 2)], 8),
            script_run([(L, 2), (D, 2), (U, 6, 0x106), (R,)], 8),
            script_run([(L, 6), (U, 6, 0x666), (R,), (L, 6, 0, 0, 1), (U, 3, 0x333), (R, 0, 0, 0, 1)], 8),
            script_run([(L, 5), (U, 5, 0x555), (U, 7, 0x107), (R,)], 8),
            script_run([(L, 7), (U, 7, 0x777, BPF_NOEXIST), (R,), (U, 8, 0x108), (R,)], 8),
            script_run([(L, 8), (D, 8), (U, 9, 0x109), (R,)], 8, cpu=1),
            script_run([(L, 9), (D, 9), (U, 10, 0x10a), (R,)], 8),
            script_run([(F,), (U, 11, 0x10b), (U, 12, 0x10c), (U, 13, 0x10d)], 8)]
    add(Case("lru-hash-element-reuse", "BPF_MAP_TYPE_LRU_HASH (4 entries, common LRU): which element a new key "
             "gets, seen through a pointer from an earlier lookup in the same run (a deleted or replaced element "
             "keeps its value until it is reused); bpf_for_each_map_elem does not mark elements as used",
             [out_map(16), Map("lru", "lru_hash", 4, 8, 4)], script_program(8), runs, notes=script_notes))

    runs = [script_run([(U, k, 0x100 + k) for k in range(1, 9)], 8),
            script_run([(L, 1), (L, 2, 0, 0, 1), (D, 1), (D, 2), (U, 9, 0x109), (R,), (R, 0, 0, 0, 1)], 8),
            script_run([(U, 10, 0x10a), (R,), (R, 0, 0, 0, 1), (L, 3), (L, 4, 0, 0, 1), (D, 4), (D, 3),
                        (U, 11, 0x10b)], 8),
            script_run([(R,), (R, 0, 0, 0, 1), (U, 12, 0x10c), (R,), (R, 0, 0, 0, 1)], 8),
            script_run([(L, 5), (L, 6, 0, 0, 1), (D, 5), (D, 6), (U, 13, 0x10d), (R,), (R, 0, 0, 0, 1)], 8, cpu=1),
            script_run([(U, 14, 0x10e), (R,), (R, 0, 0, 0, 1), (U, 15, 0x10f), (R,), (R, 0, 0, 0, 1)], 8, cpu=1),
            script_run([(L, 7), (U, 7, 0x777), (U, 16, 0x110), (R,), (U, 17, 0x111), (R,)], 8)]
    add(Case("lru-hash-element-reuse-batches", "BPF_MAP_TYPE_LRU_HASH (8 entries, common LRU: batches of 2): the "
             "order in which freed elements come back, within a batch taken from the common free list and from "
             "a CPU's local free list",
             [out_map(16), Map("lru", "lru_hash", 4, 8, 8)], script_program(8), runs, notes=script_notes))

    # ---- bulk: larger maps, batches of evictions --------------------------------------------
    B_U, B_L, B_D = OP_UPDATE, OP_LOOKUP, OP_DELETE
    runs = [bulk_run(B_U, 1, 40, tag=0x10000), bulk_run(B_L, 1, 10), bulk_run(B_U, 41, 5, tag=0x10000),
            bulk_run(B_L, 3, 12, stride=3), bulk_run(B_U, 46, 20, tag=0x10000),
            bulk_run(B_U, 66, 15, tag=0x20000, cpu=1), bulk_run(B_L, 1, 80), bulk_run(B_D, 50, 10, stride=2),
            bulk_run(B_U, 81, 30, tag=0x30000, cpu=1), bulk_run(B_U, 1, 12, tag=0x40000, flags=BPF_NOEXIST),
            bulk_run(B_U, 100, 8, tag=0x50000, flags=BPF_EXIST), bulk_run(B_L, 1, 120)]
    add(Case("lru-hash-bulk-40", "BPF_MAP_TYPE_LRU_HASH (40 entries, common LRU: batches of 10 elements per CPU): "
             "ranges of keys inserted, looked up and deleted in one run each, from CPU 0 and CPU 1",
             [out_map(4), Map("lru", "lru_hash", 4, 8, 40)], bulk_program(), runs,
             notes=["one bpf_loop per run over keys first + i * stride (packet: op, flags, first, count, stride, "
                    "tag); values tag + key; out[0] = iterations, out[1] = operations that succeeded (lookups: "
                    "found), out[2] = the last error, out[3] = the sum of the values found"]))

    runs = [bulk_run(B_U, 1, 520, tag=0x100000), bulk_run(B_L, 1, 300, stride=2), bulk_run(B_U, 521, 100,
                                                                                         tag=0x100000),
            bulk_run(B_U, 621, 200, tag=0x200000), bulk_run(B_L, 400, 150),
            bulk_run(B_U, 821, 260, tag=0x300000, cpu=1), bulk_run(B_L, 1, 1100)]
    add(Case("lru-hash-bulk-520", "BPF_MAP_TYPE_LRU_HASH (520 entries, common LRU: batches of 128, the most a "
             "rotation or shrink looks at)",
             [out_map(4), Map("lru", "lru_hash", 4, 8, 520)], bulk_program(), runs,
             notes=["as lru-hash-bulk-40"]))

    runs = [bulk_run(B_U, 1, 32, tag=0x10000), bulk_run(B_U, 33, 32, tag=0x10000, cpu=1),
            bulk_run(B_L, 1, 64, stride=3), bulk_run(B_U, 101, 10, tag=0x20000), bulk_run(B_L, 2, 20, stride=5),
            bulk_run(B_U, 111, 20, tag=0x20000), bulk_run(B_U, 131, 40, tag=0x30000, cpu=1),
            bulk_run(B_D, 1, 200, stride=1, cpu=1), bulk_run(B_U, 200, 40, tag=0x40000)]
    add(Case("lru-hash-no-common-lru-bulk", "BPF_MAP_TYPE_LRU_HASH with BPF_F_NO_COMMON_LRU (64 entries, 32 per "
             "CPU; each list evicts up to 4 at a time and looks at 4 nodes per rotation)",
             [out_map(4), Map("lru", "lru_hash", 4, 8, 64, BPF_F_NO_COMMON_LRU)], bulk_program(), runs,
             notes=["as lru-hash-bulk-40"]))


def lpm_key(prefixlen, addr):
    return u32(prefixlen) + bytes(int(x) for x in addr.split("."))


def gen_lpm():
    ops = [OP_UPDATE, OP_LOOKUP, OP_DELETE]

    def upd(plen, addr, value, flags=BPF_ANY):
        return op_run(OP_UPDATE, lpm_key(plen, addr), v64(value), flags, what="%s/%d" % (addr, plen))

    def look(plen, addr):
        return op_run(OP_LOOKUP, lpm_key(plen, addr), what="%s/%d" % (addr, plen))

    def dele(plen, addr):
        return op_run(OP_DELETE, lpm_key(plen, addr), what="%s/%d" % (addr, plen))

    runs = [
        upd(8, "10.0.0.0", 0x8),
        upd(16, "10.1.0.0", 0x16),
        upd(24, "10.1.2.0", 0x24),
        look(32, "10.1.2.3"),
        look(32, "10.1.3.3"),
        look(32, "10.2.0.1"),
        look(32, "11.0.0.1"),
        look(16, "10.1.2.3"),
        look(20, "10.1.2.3"),
        look(33, "10.1.2.3"),
        upd(33, "10.1.2.3", 0x33),
        upd(0, "0.0.0.0", 0x0),
        look(32, "11.0.0.1"),
        upd(32, "192.168.1.1", 0x32),
        upd(32, "192.168.1.2", 0x322),
        upd(24, "10.1.2.77", 0x2477),
        upd(24, "10.1.2.0", 0x2400, BPF_EXIST),
        upd(28, "10.1.2.0", 0x28, BPF_EXIST),
        upd(16, "10.1.0.0", 0x1600, BPF_NOEXIST),
        upd(16, "10.1.0.0", 0x1601, 3),
        dele(8, "10.9.9.9"),
        dele(12, "10.0.0.0"),
        dele(33, "10.0.0.0"),
        look(32, "10.3.3.3"),
        dele(24, "10.1.2.0"),
        look(32, "10.1.2.3"),
        upd(32, "192.168.1.2", 0x323),
        upd(32, "172.16.0.1", 0x17),
        dele(0, "0.0.0.0"),
        look(32, "11.0.0.1"),
    ]
    add(Case("lpm-trie", "BPF_MAP_TYPE_LPM_TRIE (IPv4 keys, 5 entries, BPF_F_NO_PREALLOC): longest-prefix match, "
             "the lookup key's own prefix length, prefixlen beyond 32, a full trie, update flags, exact delete",
             [out_map(), Map("lpm", "lpm_trie", 8, 8, 5, BPF_F_NO_PREALLOC)], map_ops_program(8, 8, ops), runs,
             notes=["keys are struct bpf_lpm_trie_key_u8 { u32 prefixlen; u8 data[4]; }; an update of "
                    "10.1.2.77/24 replaces 10.1.2.0/24 (the same prefix) and keeps its own data bytes"]))


def gen_queue_stack():
    ops = [OP_PUSH, OP_POP, OP_PEEK]
    for kind in ("queue", "stack"):
        runs = [
            op_run(OP_POP),
            op_run(OP_PEEK),
            op_run(OP_PUSH, value=v64(0x1), flags=BPF_ANY),
            op_run(OP_PUSH, value=v64(0x2), flags=BPF_ANY),
            op_run(OP_PEEK),
            op_run(OP_PUSH, value=v64(0x3), flags=BPF_ANY),
            op_run(OP_PUSH, value=v64(0x4), flags=BPF_ANY),
            op_run(OP_PUSH, value=v64(0x4), flags=BPF_NOEXIST),
            op_run(OP_PUSH, value=v64(0x5), flags=BPF_EXIST),
            op_run(OP_PUSH, value=v64(0x6), flags=3),
            op_run(OP_PUSH, value=v64(0x6), flags=8),
            op_run(OP_PEEK),
            op_run(OP_POP),
            op_run(OP_POP),
            op_run(OP_PUSH, value=v64(0x7), flags=BPF_EXIST),
            op_run(OP_POP),
            op_run(OP_POP),
            op_run(OP_POP),
            op_run(OP_PEEK),
        ]
        add(Case("%s-push-pop-peek" % kind, "BPF_MAP_TYPE_%s (3 values of 8 bytes): push/pop/peek order, empty "
                 "-ENOENT, full with and without BPF_EXIST, push flags" % kind.upper(),
                 [out_map(), Map(kind[0] + "s", kind, 0, 8, 3)], map_ops_program(0, 8, ops), runs,
                 notes=["one operation per run; out[0] = the helper's result, out[1] = the value popped or peeked "
                        "(0x5a5a5a5a5a5a5a5a when none was written)",
                        "the kernel cannot list a %s's values; the pops and peeks show them" % kind]))


def bloom_program(value_size):
    """op 1: push values start..start+count-1; op 2: peek them; op 3: push one value with
    the packet's flags.  Values are the low value_size bytes of a u64 (little-endian).
    Packet: u8 op, 3 pad, u32 flags, u32 start, u32 count (at most 63).
    out[0]: op 1 the number of failed pushes, op 2 a mask (bit i: value start+i is
    reported present), op 3 the helper's result; out[1]: the last helper result."""
    a = Asm()
    a.xdp_prologue(16)
    a("mov %r9, 0", "mov %r8, 0", "stdw [%r10-56], 0",              # [r10-64]: the value (16 bytes)
      "ldxw %r1, [%r7+8]", "stxdw [%r10-24], %r1",    # [r10-24]: next value
      "ldxw %r1, [%r7+12]", "and %r1, 63", "stxdw [%r10-32], %r1",  # [r10-32]: remaining
      "stdw [%r10-40], 0",                             # [r10-40]: bit index
      "ldxb %r1, [%r7+0]",
      "jeq %r1, 1, loop",
      "jeq %r1, 2, loop",
      "jeq %r1, 3, single",
      "ja done",
      "single:",
      "ldxw %r1, [%r7+8]", "stxdw [%r10-64], %r1",
      "lddw %r1, map_idx 1", "mov %r2, %r10", "add %r2, -64", "ldxw %r3, [%r7+4]",
      "call 87", "mov %r9, %r0", "mov %r8, %r0", "ja done",
      "loop:",
      "ldxdw %r1, [%r10-32]",
      "jeq %r1, 0, done",
      "sub %r1, 1", "stxdw [%r10-32], %r1",
      "ldxdw %r1, [%r10-24]", "stxdw [%r10-64], %r1", "add %r1, 1", "stxdw [%r10-24], %r1",
      "lddw %r1, map_idx 1", "mov %r2, %r10", "add %r2, -64",
      "ldxb %r3, [%r7+0]",
      "jeq %r3, 2, peek",
      "mov %r3, 0", "call 87", "mov %r8, %r0",
      "jeq %r0, 0, loop",
      "add %r9, 1", "ja loop",
      "peek:",
      "call 89", "mov %r8, %r0",
      "ldxdw %r1, [%r10-40]", "add %r1, 1", "stxdw [%r10-40], %r1",
      "jne %r0, 0, loop",
      "mov %r2, 1", "sub %r1, 1", "lsh %r2, %r1", "or %r9, %r2",
      "ja loop",
      "done:")
    a.record(0, "%r9")
    a.record(1, "%r8")
    a("mov %r0, 2", "exit")
    return a.lines


def gen_bloom():
    def pkt(op, start=0, count=0, flags=0):
        return bytes([op, 0, 0, 0]) + u32(flags) + u32(start) + u32(count) + b"\0" * 16

    for vs, max_entries in ((4, 4), (8, 4), (3, 2), (12, 16)):
        runs = [
            ("peek 1..63 (empty filter)", pkt(2, 1, 63)),
            ("push 1..10", pkt(1, 1, 10)),
            ("peek 1..63", pkt(2, 1, 63)),
            ("peek 1000..1062", pkt(2, 1000, 63)),
            ("push 0x12345678 BPF_EXIST", pkt(3, 0x12345678, 0, BPF_EXIST)),
            ("push 0x12345678 BPF_NOEXIST", pkt(3, 0x12345678, 0, BPF_NOEXIST)),
            ("push 0x12345678 BPF_ANY", pkt(3, 0x12345678, 0, BPF_ANY)),
            ("peek 0x12345678..", pkt(2, 0x12345678, 4)),
            ("push 100..139", pkt(1, 100, 40)),
            ("peek 2000..2062", pkt(2, 2000, 63)),
            ("peek 100..162", pkt(2, 100, 63)),
        ]
        hashfn = "jhash2" if vs % 4 == 0 else "jhash"
        add(Case("bloom-filter-v%d" % vs, "BPF_MAP_TYPE_BLOOM_FILTER with BPF_F_ZERO_SEED, %d-byte values (%s), "
                 "max_entries %d, 5 hashes: which never-pushed values peek as present (false positives), push flags"
                 % (vs, hashfn, max_entries),
                 [out_map(), Map("bloom", "bloom_filter", 0, vs, max_entries, BPF_F_ZERO_SEED)],
                 bloom_program(vs), runs,
                 notes=["values are the low %d bytes of a little-endian u64 counter; a peek run's out[0] has bit i "
                        "set when value start+i peeks as present" % vs]))


# ---- helpers ---------------------------------------------------------------------------

def gen_csum_diff():
    # A 1024-byte buffer from user space: bytes 0..511 a pattern, 512..639 0xff, 640.. zero.
    buf = bytearray(1024)
    x = 0x12345678
    for i in range(512):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        buf[i] = (x >> 16) & 0xFF
    for i in range(512, 640):
        buf[i] = 0xFF
    calls = [  # (from offset, from size, to offset, to size, seed, note)
        (0, 0, 0, 4, 0, "push 4 bytes"),
        (0, 4, 0, 0, 0, "pull 4 bytes"),
        (0, 4, 4, 4, 0, "diff 4 -> 4"),
        (0, 8, 8, 12, 0, "diff 8 -> 12"),
        (0, 20, 20, 20, 0, "diff 20 -> 20 (an IPv4 header)"),
        (0, 0, 0, 20, 0x12345678, "push 20, seed 0x12345678"),
        (0, 4, 0, 0, 0xFFFFFFFF, "pull 4, seed 0xffffffff"),
        (0, 16, 0, 16, 0, "the same 16 bytes both sides"),
        (0, 0, 0, 0, 0x1234, "nothing, seed 0x1234"),
        (0, 0, 0, 0, 0, "nothing, seed 0"),
        (512, 0, 512, 16, 0, "push 16 bytes of 0xff"),
        (640, 0, 640, 16, 0, "push 16 zero bytes"),
        (640, 16, 640, 0, 0, "pull 16 zero bytes"),
        (512, 16, 640, 0, 0, "pull 16 bytes of 0xff"),
        (0, 0, 512, 8, 0xFFFFFFFF, "push 8 bytes of 0xff, seed 0xffffffff"),
        (0, 0, 0, 4, 0x100000001, "push 4, 64-bit seed 0x100000001"),
        (1, 4, 9, 8, 0, "unaligned pointers"),
        (0, 256, 256, 256, 0, "512 bytes in all (the limit)"),
        (0, 260, 260, 256, 0, "516 bytes in all"),
        (0, 512, 0, 0, 0, "pull 512"),
        (0, 0, 0, 516, 0, "push 516"),
        (0, 3, 0, 0, 0, "from size 3"),
        (0, 0, 0, 6, 0, "to size 6"),
        (0, 2, 0, 2, 0, "sizes 2 and 2"),
    ]
    a = Asm()
    a.xdp_prologue(14)
    a("stw [%r10-8], 0", "lddw %r1, map_idx 1", "mov %r2, %r10", "add %r2, -8", "call 1",
      "jne %r0, 0, +2", "mov %r0, 1", "exit",
      "mov %r7, %r0")
    for i, (fo, fs, to, ts, seed, _) in enumerate(calls):
        a("mov %r1, %r7", "add %%r1, %d" % fo, "mov %%r2, %d" % fs, "mov %r3, %r7", "add %%r3, %d" % to,
          "mov %%r4, %d" % ts)
        a.const("%r5", seed)
        a("call 28", "mov %r9, %r0")
        a.record(i, "%r9")
    a("mov %r0, 2", "exit")
    add(Case("csum-diff", "bpf_csum_diff: from/to sizes, seeds, all-ones and zero data, unaligned pointers, the "
             "512-byte limit, sizes that are not a multiple of 4",
             [out_map(len(calls)), Map("buf", "array", 4, 1024, 1)], a.lines, [("one run", bytes(14))],
             inits=[("buf", k32(0), bytes(buf))],
             notes=["out[i] = bpf_csum_diff(buf + from, from_size, buf + to, to_size, seed) for:"]
             + ["%2d: from %d+%d, to %d+%d, seed 0x%x (%s)" % (i, fo, fs, to, ts, seed, n)
                for i, (fo, fs, to, ts, seed, n) in enumerate(calls)]))


def copy_to_stack(a, packet_offset, stack_offset, size):
    """Copies `size` bytes (a multiple of 8) of the packet (r7) to [r10+stack_offset]: the
    string helpers may not read packet memory."""
    for i in range(0, size, 8):
        a("ldxdw %%r1, [%%r7+%d]" % (packet_offset + i), "stxdw [%%r10%+d], %%r1" % (stack_offset + i))


def gen_strtol():
    a = Asm()
    a.xdp_prologue(80)
    copy_to_stack(a, 16, -96, 64)
    for fn, slot in ((105, 0), (106, 2)):
        a("lddw %%r1, 0x%x" % SENTINEL, "stxdw [%r10-16], %r1",
          "mov %r1, %r10", "add %r1, -96",
          "ldxb %r2, [%r7+8]", "and %r2, 63", "add %r2, 1",
          "ldxdw %r3, [%r7+0]",
          "mov %r4, %r10", "add %r4, -16",
          "call %d" % fn, "mov %r9, %r0")
        a.record(slot, "%r9")
        a("ldxdw %r9, [%r10-16]")
        a.record(slot + 1, "%r9")
    a("mov %r0, 2", "exit")

    def run(text, flags, length=None):
        data = text.encode("latin-1") if isinstance(text, str) else text
        n = len(data) if length is None else length
        assert 1 <= n <= 64 and len(data) <= 64
        pkt = u64(flags) + bytes([n - 1]) + b"\0" * 7 + data + b"\0" * (64 - len(data))
        return ("%r len %d flags %s" % (data.decode("latin-1"), n, flags if flags < 32 else hex(flags)), pkt)

    runs = [
        run("123", 0), run("123", 10), run("123", 8), run("123", 16),
        run("  42", 10), run("\t\n\v\f\r 7", 0), run("\xa05", 10),
        run("-17", 10), run("+5", 10), run("- 5", 10), run("-", 10), run("   ", 10), run("\0", 10),
        run("0x1f", 0), run("0X1F", 0), run("0x1f", 16), run("1f", 16), run("0x1f", 10), run("0x", 0),
        run("0x", 16), run("0xg", 16), run("0xg", 0), run("-0x10", 0), run("0x-1", 16),
        run("017", 0), run("019", 0), run("017", 10), run("777", 8), run("8", 8), run("-0", 10),
        run("12abc", 10), run("12 34", 10), run(b"1\x002", 10), run("123", 10, length=2), run("123\0\0", 10),
        run("9223372036854775807", 10), run("9223372036854775808", 10),
        run("-9223372036854775808", 10), run("-9223372036854775809", 10),
        run("18446744073709551615", 10), run("18446744073709551616", 10),
        run("0xffffffffffffffff", 0), run("0x10000000000000000", 0), run("1777777777777777777777", 8),
        run("2000000000000000000000", 8), run("-1", 10),
        run("0" * 63 + "7", 10), run("  " + "0" * 62, 10),
        run("123", 2), run("123", 26), run("123", 0x20 | 10), run("123", (1 << 32) | 10), run("123", 31),
    ]
    add(Case("strtol-strtoul", "bpf_strtol and bpf_strtoul: whitespace, signs, 0x prefixes, bases 0/8/10/16, "
             "overflow (-ERANGE), no digits (-EINVAL), invalid flags, the 63-character limit",
             [out_map(4)], a.lines, runs,
             notes=["packet: u64 flags, u8 length-1, 7 pad bytes, then the buffer (64 bytes, copied to the stack); "
                    "out[0], out[1] = bpf_strtol's result and *res; out[2], out[3] = bpf_strtoul's; "
                    "*res starts as 0x5a5a5a5a5a5a5a5a"]))


def rodata_strings(strings, size):
    blob, offsets = b"", []
    for s in strings:
        offsets.append(len(blob))
        blob += s + b"\0"
    assert len(blob) <= size, (len(blob), size)
    return blob + b"\0" * (size - len(blob)), offsets


def gen_strncmp():
    s2 = [b"hello", b"help", b"", b"hello world", b"abc", b"\x80", b"HELLO"]
    blob, offs = rodata_strings(s2, 64)
    a = Asm()
    a.xdp_prologue(80)
    copy_to_stack(a, 16, -96, 64)
    for i, off in enumerate(offs):
        a("mov %r1, %r10", "add %r1, -96", "ldxb %r2, [%r7+8]", "and %r2, 63", "add %r2, 1",
          "lddw %%r3, map_idx_value 1, %d" % off, "call 182", "mov %r9, %r0")
        a.record(i, "%r9")
    a("mov %r0, 2", "exit")

    def run(s1, n):
        return ("s1 %r size %d" % (s1.decode("latin-1"), n), b"\0" * 8 + bytes([n - 1]) + b"\0" * 7 + s1
                + b"\0" * (64 - len(s1)))

    runs = [run(b"hello", 5), run(b"hello", 6), run(b"hell", 4), run(b"hell", 5), run(b"help!", 5),
            run(b"help!", 4), run(b"", 1), run(b"hello world", 11), run(b"hello world", 12), run(b"HELLO", 5),
            run(b"\x80", 1), run(b"\x7f", 1), run(b"abd", 3), run(b"abc\0x", 5), run(b"hello", 3)]
    add(Case("strncmp", "bpf_strncmp(s1, s1_sz, s2): s2 a constant string in a frozen read-only map; results "
             "for equal strings, prefixes, the size limit, signedness of bytes",
             [out_map(len(s2)), Map("rodata", "array", 4, 64, 1, BPF_F_RDONLY_PROG, frozen=True)], a.lines, runs,
             inits=[("rodata", k32(0), blob)],
             notes=["s1 = the packet's bytes 16..79 copied to the stack, s1_sz from the packet; out[i] = bpf_strncmp(s1, s1_sz, s2[i]) for s2 = %s"
                    % ", ".join(repr(s.decode("latin-1")) for s in s2)]))


def gen_snprintf():
    # (format, [arguments], buffer size, note); an argument is an int, ("str", bytes) for a
    # pointer to a NUL-terminated string on the stack, or ("mem", bytes) for a pointer to bytes.
    calls = [
        ("%d", [-5], 64), ("%u", [-1], 64), ("%x", [0xDEADBEEF], 64), ("%X", [0xABCDEF], 64),
        ("%lld", [-1234567890123], 64), ("%llu", [M64], 64), ("%llx", [0x123456789ABCDEF0], 64),
        ("%ld", [-1], 64), ("%lx", [M64], 64), ("%i", [-3], 64), ("%d", [0x100000005], 64),
        ("%5d|%-5d|%05d", [42, 42, -42], 64), ("%+d % d %+d", [7, 7, -7], 64), ("%08x|%-08d|", [0xBEEF, 12], 64),
        ("%s!", [("str", b"hi there")], 64), ("%10s|%-10s|", [("str", b"abc"), ("str", b"ab")], 64),
        ("%c%c%c", [ord("a"), ord("b"), ord("c")], 64), ("a%cb", [0], 64), ("%5c|", [ord("z")], 64),
        ("%pI4", [("mem", bytes([192, 168, 1, 10]))], 64), ("%pi4", [("mem", bytes([10, 0, 0, 1]))], 64),
        ("%pI6", [("mem", bytes.fromhex("20010db8000000000000000000000001"))], 64),
        ("%pi6", [("mem", bytes.fromhex("20010db8000000000000000000000001"))], 64),
        ("%16pI4|", [("mem", bytes([1, 2, 3, 4]))], 64),
        ("%s", [("str", b"a string longer than the buffer")], 8), ("%d", [123456], 0),
        ("%s|", [0], 64), ("%pI4", [0], 64), ("%%", [], 64), ("100%% %d%%", [5], 64),
        ("%px", [0x1234], 64), ("%pks", [("str", b"kernel string")], 64),
        ("%d %d %d %d %d %d %d %d %d %d %d %d", list(range(1, 13)), 64),
        ("no conversions", [], 64), ("%u", [0x80000000], 64), ("%llx", [0], 64),
    ]
    formats = [f.encode() for f, _, _ in calls]
    blob, offs = rodata_strings(formats, 512)
    a = Asm()
    a.xdp_prologue(14)
    for i, ((fmt, args, size), off) in enumerate(zip(calls, offs)):
        # r7 = &text[i]
        a("stw [%%r10-4], %d" % i, "lddw %r1, map_idx 1", "mov %r2, %r10", "add %r2, -4", "call 1",
          "jne %r0, 0, +2", "mov %r0, 1", "exit", "mov %r7, %r0")
        # strings and bytes the arguments point to: [r10-200..-104], args at [r10-96..-1]
        strings_at = -200
        for j, arg in enumerate(args):
            slot = -96 + 8 * j
            if isinstance(arg, tuple):
                data = arg[1] + (b"\0" if arg[0] == "str" else b"")
                a.stack_bytes(strings_at, data)
                a("mov %r1, %r10", "add %%r1, %d" % strings_at, "stxdw [%%r10%+d], %%r1" % slot)
                strings_at += len(data) + (-len(data) % 8)
                assert strings_at <= -104
            else:
                a.const("%r1", arg)
                a("stxdw [%%r10%+d], %%r1" % slot)
        if size:
            a("mov %r1, %r7", "mov %%r2, %d" % size)
        else:
            a("mov %r1, 0", "mov %r2, 0")
        a("lddw %%r3, map_idx_value 2, %d" % off)
        if args:
            a("mov %r4, %r10", "add %r4, -96", "mov %%r5, %d" % (8 * len(args)))
        else:
            a("mov %r4, 0", "mov %r5, 0")
        a("call 165", "mov %r9, %r0")
        a.record(i, "%r9")
    a("mov %r0, 2", "exit")

    def show(arg):
        if isinstance(arg, tuple):
            return "&%r" % arg[1].decode("latin-1") if arg[0] == "str" else "&%s" % arg[1].hex()
        return hex(arg & M64) if abs(arg) > 9 else str(arg)

    add(Case("snprintf", "bpf_snprintf: %d %i %u %x %X with l/ll, %c, %s, %pI4/%pi4/%pI6/%pi6, %px, %pks, "
             "%%, flags and widths, truncation, a zero-size buffer, NULL string and address arguments",
             [out_map(len(calls)), Map("text", "array", 4, 64, len(calls)),
              Map("rodata", "array", 4, 512, 1, BPF_F_RDONLY_PROG, frozen=True)],
             a.lines, [("one run", bytes(14))], inits=[("rodata", k32(0), blob)],
             notes=["call i: bpf_snprintf(&text[i], size, fmt, args, 8 * nargs) (size 0: str = NULL); out[i] = its "
                    "result; text[i] = the output; formats in a frozen read-only map"]
             + ["%2d: %r size %d args [%s]" % (i, f, s, ", ".join(show(x) for x in args))
                for i, (f, args, s) in enumerate(calls)]))


def gen_trace_printk():
    calls = [  # (format bytes incl. NUL and beyond, fmt_size, args)
        (b"hello\n\0", 7, []), (b"%d\0", 3, [-5]), (b"%d %u %x\0", 9, [1, 2, 255]),
        (b"%s\0", 3, [("str", b"abc")]), (b"%q\0", 3, []), (b"%d %d %d %d\0", 12, [1, 2, 3]),
        (b"abc", 3, []), (b"ab\0cd\0", 6, []), (b"%sX\0", 4, [("str", b"abc")]), (b"%5d\0", 4, [7]),
        (b"%lld\0", 5, [-1]), (b"%pI4\0", 5, [("mem", bytes([1, 2, 3, 4]))]), (b"\x01\0", 2, []),
        (b"%.2d\0", 5, [3]), (b"%c\0", 3, [ord("x")]), (b"%%\0", 3, []), (b"%px\0", 4, [0x1234]),
        (b"%s|\0", 4, [0]), (b"%-3d|\0", 6, [4]), (b"abc%\0", 5, [1]), (b"%llx %llx %llx\0", 15, [M64, 0, 1]),
        (b"\xc3\xa9\0", 3, []), (b"%hd\0", 4, [1]),
    ]
    a = Asm()
    a.xdp_prologue(14)
    for i, (fmt, size, args) in enumerate(calls):
        a.stack_bytes(-64, fmt)
        r = 3
        strings_at = -128
        for arg in args:
            if isinstance(arg, tuple):
                data = arg[1] + (b"\0" if arg[0] == "str" else b"")
                a.stack_bytes(strings_at, data)
                strings_at += 16
        strings_at = -128
        for arg in args:
            if isinstance(arg, tuple):
                a("mov %%r%d, %%r10" % r, "add %%r%d, %d" % (r, strings_at))
                strings_at += 16
            else:
                a.const("%%r%d" % r, arg)
            r += 1
        a("mov %r1, %r10", "add %r1, -64", "mov %%r2, %d" % size, "call 6", "mov %r9, %r0")
        a.record(i, "%r9")
    a("mov %r0, 2", "exit")
    add(Case("trace-printk", "bpf_trace_printk's return value (the formatted length, or -EINVAL); the printed "
             "text goes to the kernel's trace buffer, which kernel_oracle cannot read",
             [out_map(len(calls))], a.lines, [("one run", bytes(14))],
             notes=["out[i] = bpf_trace_printk(fmt, fmt_size, args...) for:"]
             + ["%2d: %s size %d, %d args" % (i, repr(f)[1:], s, len(args))
                for i, (f, s, args) in enumerate(calls)]))


def gen_probe_read():
    a = Asm()
    a.xdp_prologue(14)
    a.stack_bytes(-64, b"stackdata-1234567\0")

    def call(slot, fn, dst_size, src_setup):
        a("lddw %%r1, 0x%x" % SENTINEL, "stxdw [%r10-32], %r1", "stxdw [%r10-24], %r1")
        src_setup()
        a("mov %r1, %r10", "add %r1, -32", "mov %%r2, %d" % dst_size, "call %d" % fn, "mov %r9, %r0")
        a.record(slot, "%r9")
        a("ldxdw %r9, [%r10-32]")
        a.record(slot + 1, "%r9")
        a("ldxdw %r9, [%r10-24]")
        a.record(slot + 2, "%r9")

    def stack(off):
        return lambda: a("mov %r3, %r10", "add %%r3, %d" % off)

    def const(v):
        return lambda: a.const("%r3", v)

    def packet():
        a("ldxw %r3, [%r6+0]")

    def map_value():
        a("stw [%r10-4], 1", "lddw %r1, map_idx 0", "mov %r2, %r10", "add %r2, -4", "call 1",
          "mov %r3, %r0")

    reads = [
        (113, 8, stack(-64), "probe_read_kernel 8 bytes from the stack"),
        (113, 16, stack(-60), "probe_read_kernel 16 bytes from the stack (unaligned)"),
        (113, 8, const(0), "probe_read_kernel 8 bytes from NULL"),
        (113, 8, const(0x1000), "probe_read_kernel 8 bytes from 0x1000"),
        (113, 8, const(0xFFFFFFFFFFFFF000), "probe_read_kernel 8 bytes from 0xfffffffffffff000"),
        (113, 8, const(0x8000000000000000), "probe_read_kernel 8 bytes from 0x8000000000000000 (non-canonical)"),
        (113, 0, stack(-64), "probe_read_kernel 0 bytes"),
        (113, 8, packet, "probe_read_kernel 8 bytes from the packet"),
        (113, 8, map_value, "probe_read_kernel 8 bytes from a map value (out[1], written just before)"),
        (115, 16, stack(-64), "probe_read_kernel_str, size 16, a 17-character string"),
        (115, 8, stack(-64), "probe_read_kernel_str, size 8"),
        (115, 16, stack(-54), "probe_read_kernel_str, size 16, a 7-character string"),
        (115, 1, stack(-64), "probe_read_kernel_str, size 1"),
        (115, 8, const(0), "probe_read_kernel_str from NULL"),
        (115, 8, const(0x1000), "probe_read_kernel_str from 0x1000"),
    ]
    for i, (fn, size, setup, _) in enumerate(reads):
        call(3 * i, fn, size, setup)
    a("mov %r0, 2", "exit")
    add(Case("probe-read-kernel", "bpf_probe_read_kernel and bpf_probe_read_kernel_str on the stack, the packet, a "
             "map value, NULL and addresses no program owns",
             [out_map(3 * len(reads))], a.lines, [("one run", bytes(range(1, 33)))],
             notes=["destination: 16 bytes at r10-32, filled with 0x5a first; out[3i] = the result, out[3i+1], "
                    "out[3i+2] = the destination's two u64 afterwards; stack string \"stackdata-1234567\" at r10-64"]
             + ["%2d: %s" % (i, n) for i, (_, _, _, n) in enumerate(reads)]))


def gen_misc():
    a = Asm()
    a.xdp_prologue(14)
    a("call 8", "mov %r9, %r0")
    a.record(0, "%r9")
    a("call 42", "mov %r9, %r0")
    a.record(1, "%r9")
    a("mov %r0, 2", "exit")
    add(Case("cpu-and-numa-ids", "bpf_get_smp_processor_id (runs pinned to CPU 0) and bpf_get_numa_node_id in an "
             "XDP program", [out_map(2)], a.lines, [("one run", bytes(14))],
             notes=["out[0] = bpf_get_smp_processor_id(), out[1] = bpf_get_numa_node_id()"]))
    a = Asm()
    a("call 8", "mov %r9, %r0")
    a.record(0, "%r9")
    a("call 42", "mov %r9, %r0")
    a.record(1, "%r9")
    a("lddw %r0, 0x123456789", "exit")
    add(Case("socket-cpu-id", "a socket filter that does not touch its context: bpf_get_smp_processor_id, "
             "bpf_get_numa_node_id, a retval cut to 32 bits",
             [out_map(2)], a.lines, [("one run", bytes.fromhex("020000000001020000000002" "88b5") + b"payload!")],
             prog_type="socket",
             notes=["the program sees the packet from byte 14 (after the Ethernet header); the kernel's data_out is "
                    "the whole packet with the Ethernet header zeroed"]))


def gen_xdp_adjust():
    # head: packet u32 delta; then data[0] = 0xee if the packet has a byte
    def adjust_program(steps, marker_meta=False):
        """steps: list of (helper, packet offset of its s32 delta); out[i] = each result,
        then out[n] = data_end - data, out[n+1] = data - data_meta."""
        a = Asm()
        a.xdp_prologue(24)
        for i in range(len(steps)):
            a("ldxw %%r1, [%%r7+%d]" % (4 * i), "stxdw [%%r10%+d], %%r1" % (-16 - 8 * i))
        for i, fn in enumerate(steps):
            a("mov %r1, %r6", "ldxdw %%r2, [%%r10%+d]" % (-16 - 8 * i), "lsh %r2, 32", "arsh %r2, 32",
              "call %d" % fn, "mov %r9, %r0")
            a.record(i, "%r9")
            if marker_meta and fn == HELPER["xdp_adjust_meta"]:
                ok = a.label("meta_small")
                a("ldxw %r2, [%r6+8]", "ldxw %r3, [%r6+0]", "mov %r4, %r2", "add %r4, 4",
                  "jgt %%r4, %%r3, %s" % ok, "stw [%r2+0], 0x44332211", "%s:" % ok)
        a("ldxw %r2, [%r6+0]", "ldxw %r3, [%r6+4]", "ldxw %r4, [%r6+8]",
          "mov %r9, %r3", "sub %r9, %r2", "mov %r8, %r2", "sub %r8, %r4")
        a.record(len(steps), "%r9")
        a.record(len(steps) + 1, "%r8")
        ok = a.label("empty")
        a("ldxw %r2, [%r6+0]", "ldxw %r3, [%r6+4]", "mov %r4, %r2", "add %r4, 1", "jgt %%r4, %%r3, %s" % ok,
          "stb [%r2+0], 0xee", "%s:" % ok, "mov %r0, 2", "exit")
        return a.lines

    def pkt(*deltas, size=64):
        p = b"".join(struct.pack("<i", d) for d in deltas)
        p += b"\0" * (24 - len(p))
        return p + bytes(range(0x80, 0x80 + size - 24))

    head = HELPER["xdp_adjust_head"]
    tail = HELPER["xdp_adjust_tail"]
    meta = HELPER["xdp_adjust_meta"]
    runs = [("delta %d" % d, pkt(d)) for d in (0, -1, -8, -216, -217, -256, 49, 50, 51, 64, -0x80000000)]
    add(Case("xdp-adjust-head", "bpf_xdp_adjust_head on a 64-byte packet: growing into the headroom (256 bytes, "
             "the first 40 hold struct xdp_frame), shrinking to the 14-byte minimum, and past both",
             [out_map(3)], adjust_program([head]), runs,
             notes=["out[0] = the result, out[1] = data_end - data, out[2] = data - data_meta; then data[0] = 0xee"]))

    runs = [("deltas %d, %d" % (d1, d2), pkt(d1, d2)) for d1, d2 in
            ((0, 0), (8, 0), (-50, 0), (-51, 0), (-64, 0), (3456, -3456), (3457, 0), (100, -100), (-40, 40),
             (-50, 3506), (-50, 3507))]
    add(Case("xdp-adjust-tail", "bpf_xdp_adjust_tail on a 64-byte packet: growing (zero-filled) up to the end of "
             "the 4096-byte frame less headroom and skb_shared_info (3520 bytes of packet), shrinking to 14 bytes, "
             "and past both",
             [out_map(4)], adjust_program([tail, tail]), runs,
             notes=["two calls per run with the packet's deltas; out[0], out[1] = the results, out[2] = data_end - "
                    "data, out[3] = data - data_meta; then data[0] = 0xee"]))

    runs = [("meta %d, %d, head %d" % d, pkt(*d)) for d in
            ((-4, 0, 0), (-8, 0, 0), (-3, 0, 0), (-32, 0, 0), (-36, 0, 0), (-216, 0, 0), (-220, 0, 0), (4, 0, 0),
             (-8, 4, 0), (-8, 12, 0), (-8, 0, -16), (-8, 0, 10), (-32, 0, -184), (-32, 0, -185), (-8, 0, 50),
             (-8, 0, 51), (0, -4, -216))]
    add(Case("xdp-adjust-meta", "bpf_xdp_adjust_meta: metadata sizes (multiples of 4, at most 32), bounds, and "
             "bpf_xdp_adjust_head moving the metadata with the data",
             [out_map(5)], adjust_program([meta, meta, head], marker_meta=True), runs,
             notes=["per run: adjust_meta(d1), adjust_meta(d2), then 0x44332211 written at data_meta when there "
                    "are 4 bytes of metadata, then adjust_head(d3); out[0..2] = the results, out[3] = data_end - "
                    "data, out[4] = data - data_meta; then data[0] = 0xee; data_out starts at data_meta"]))


def gen_redirect():
    a = Asm()
    a.xdp_prologue(24)
    a("ldxw %r1, [%r7+0]", "ldxdw %r2, [%r7+8]", "call 23", "mov %r9, %r0")
    a.record(0, "%r9")
    a("mov %r0, %r9", "exit")
    runs = [("ifindex %d flags 0x%x" % (i, f), u32(i) + b"\0" * 4 + u64(f) + b"\0" * 8)
            for i, f in ((1, 0), (7, 0), (0, 0), (1, 1), (1, 1 << 63))]
    add(Case("xdp-redirect", "bpf_redirect in XDP: XDP_REDIRECT, or XDP_ABORTED when flags are set (the target "
             "itself is not observable through BPF_PROG_TEST_RUN)",
             [out_map(1)], a.lines, runs, notes=["packet: u32 ifindex, 4 pad, u64 flags; retval = out[0] = the result"]))

    a = Asm()
    a.xdp_prologue(24)
    a("lddw %r1, map_idx 1", "ldxw %r2, [%r7+0]", "ldxdw %r3, [%r7+8]", "call 51", "mov %r9, %r0")
    a.record(0, "%r9")
    a("mov %r0, %r9", "exit")
    runs = [("key %d flags 0x%x" % (k, f), u32(k) + b"\0" * 4 + u64(f) + b"\0" * 8)
            for k, f in ((0, 0), (1, 0), (1, 1), (1, 2), (1, 3), (9, 2), (0, 4), (1, 8), (1, 0x18), (0, 0x10),
                         (1, 0x12), (2, 0))]
    add(Case("xdp-redirect-map-devmap", "bpf_redirect_map on a devmap (key 0 and 2 -> ifindex 1, loopback): "
             "present and absent keys, the fallback action in the flags' low bits, invalid flags, BPF_F_BROADCAST "
             "and BPF_F_EXCLUDE_INGRESS",
             [out_map(1), Map("dev", "devmap", 4, 4, 4)], a.lines, runs,
             inits=[("dev", k32(0), u32(1)), ("dev", k32(2), u32(1))],
             notes=["packet: u32 key, 4 pad, u64 flags; retval = out[0] = the result"]))


def gen_loop():
    a = Asm()
    a.xdp_prologue(24)
    a("stdw [%r10-24], 0", "stdw [%r10-16], 0", "ldxw %r1, [%r7+8]", "stxdw [%r10-8], %r1",
      "ldxw %r1, [%r7+0]", "lddw %r2, func callback", "mov %r3, %r10", "add %r3, -24", "ldxw %r4, [%r7+4]",
      "call 181", "mov %r9, %r0")
    a.record(0, "%r9")
    a("ldxdw %r9, [%r10-24]")
    a.record(1, "%r9")
    a("ldxdw %r9, [%r10-16]")
    a.record(2, "%r9")
    a("mov %r0, 2", "exit",
      "# callback(index, ctx): ctx[0] += 1, ctx[1] += index; returns 1 (stop) once index >= ctx[2]",
      "callback:",
      "ldxdw %r3, [%r2+0]", "add %r3, 1", "stxdw [%r2+0], %r3",
      "ldxdw %r3, [%r2+8]", "add %r3, %r1", "stxdw [%r2+8], %r3",
      "ldxdw %r3, [%r2+16]", "mov %r0, 0", "jlt %r1, %r3, +1", "mov %r0, 1", "exit")
    runs = [("%d loops, stop at %d, flags %d" % (n, s, f), u32(n) + u32(f) + u32(s) + b"\0" * 12)
            for n, s, f in ((5, 100, 0), (5, 2, 0), (0, 100, 0), (1, 0, 0), (1000, 1 << 30, 0),
                            ((1 << 23) + 1, 0, 0), (5, 100, 1), ((1 << 23) + 1, 100, 1))]
    add(Case("bpf-loop", "bpf_loop: iterations, early stop when the callback returns 1, zero iterations, more "
             "than BPF_MAX_LOOPS (-E2BIG), non-zero flags (-EINVAL)",
             [out_map(3)], a.lines, runs,
             notes=["packet: u32 nr_loops, u32 flags, u32 stop index; out[0] = bpf_loop's result, out[1] = the "
                    "callback's calls, out[2] = the sum of the indices it saw"]))


def gen_ringbuf():
    a = Asm()
    a.xdp_prologue(14)
    slot = [0]

    def rec():
        a("mov %r9, %r0")
        a.record(slot[0], "%r9")
        slot[0] += 1

    a.stack_bytes(-48, bytes(range(1, 17)))
    # output 16 bytes
    a("lddw %r1, map_idx 1", "mov %r2, %r10", "add %r2, -48", "mov %r3, 16", "mov %r4, 0", "call 130")
    rec()
    # reserve 24, fill, submit
    a("lddw %r1, map_idx 1", "mov %r2, 24", "mov %r3, 0", "call 131", "mov %r7, %r0", "mov %r9, 0",
      "jeq %r7, 0, reserved_24",
      "lddw %r1, 0x1111111111111111", "stxdw [%r7+0], %r1", "stxdw [%r7+8], %r1", "stxdw [%r7+16], %r1",
      "mov %r1, %r7", "mov %r2, 0", "call 132", "mov %r9, 1",
      "reserved_24:")
    a.record(slot[0], "%r9")
    slot[0] += 1
    # reserve 8, discard
    a("lddw %r1, map_idx 1", "mov %r2, 8", "mov %r3, 0", "call 131", "mov %r7, %r0", "mov %r9, 0",
      "jeq %r7, 0, reserved_8", "stdw [%r7+0], 0x2222", "mov %r1, %r7", "mov %r2, 0", "call 133", "mov %r9, 1",
      "reserved_8:")
    a.record(slot[0], "%r9")
    slot[0] += 1
    for flag in (0, 1, 2, 3, 99):
        a("lddw %r1, map_idx 1", "mov %%r2, %d" % flag, "call 134")
        rec()
    # output with each wakeup flag, and an invalid one
    for flag in (1, 2, 3, 4):
        a("lddw %r1, map_idx 1", "mov %r2, %r10", "add %r2, -48", "mov %r3, 8", "mov %%r4, %d" % flag,
          "call 130")
        rec()
    # reserve: too big, non-zero flags
    for size, flag in ((5000, 0), (8, 1)):
        skip = a.label("reserved")
        a("lddw %r1, map_idx 1", "mov %%r2, %d" % size, "mov %%r3, %d" % flag, "call 131", "mov %r7, %r0",
          "mov %r9, 0", "jeq %%r7, 0, %s" % skip, "mov %r1, %r7", "mov %r2, 0", "call 133", "mov %r9, 1",
          "%s:" % skip)
        a.record(slot[0], "%r9")
        slot[0] += 1
    # fill: 5 reservations of 1000 bytes, each discarded; out = how many succeeded
    a("mov %r8, 0", "stdw [%r10-56], 5",
      "fill:",
      "ldxdw %r1, [%r10-56]", "jeq %r1, 0, filled", "sub %r1, 1", "stxdw [%r10-56], %r1",
      "lddw %r1, map_idx 1", "mov %r2, 1000", "mov %r3, 0", "call 131", "jeq %r0, 0, fill",
      "add %r8, 1", "mov %r1, %r0", "mov %r2, 0", "call 133", "ja fill",
      "filled:")
    a.record(slot[0], "%r8")
    slot[0] += 1
    for flag in (0, 2, 3):
        a("lddw %r1, map_idx 1", "mov %%r2, %d" % flag, "call 134")
        rec()
    a("lddw %r1, map_idx 1", "mov %r2, %r10", "add %r2, -48", "mov %r3, 16", "mov %r4, 0", "call 130")
    rec()
    a("mov %r0, 2", "exit")
    add(Case("ringbuf", "BPF_MAP_TYPE_RINGBUF (4096 bytes): output, reserve+submit, reserve+discard, "
             "bpf_ringbuf_query (AVAIL_DATA, RING_SIZE, CONS_POS, PROD_POS, an unknown flag), wakeup and invalid "
             "flags, a reservation larger than the ring, filling the ring",
             [out_map(slot[0]), Map("rb", "ringbuf", 0, 0, 4096)], a.lines,
             [("first run", bytes(14)), ("second run (the reader consumed the first run's records)", bytes(14))],
             notes=["out, in order: output(16) result; reserve(24)+submit done (1/0); reserve(8)+discard done; "
                    "query flags 0, 1, 2, 3, 99; output(8) with flags 1, 2, 3, 4; reserve(5000) and reserve(8, "
                    "flags 1) succeeded (1/0); how many of 5 reserve(1000)+discard succeeded; query 0, 2, 3 after "
                    "that; a final output(16)",
                    "after each run the reader (the generator; bpfsim's Machine.drainEvents) takes every record and "
                    "advances the consumer position"]))


def build_cases():
    gen_hash()
    gen_array()
    gen_lru()
    gen_lpm()
    gen_queue_stack()
    gen_bloom()
    gen_csum_diff()
    gen_strtol()
    gen_strncmp()
    gen_snprintf()
    gen_trace_printk()
    gen_probe_read()
    gen_misc()
    gen_xdp_adjust()
    gen_redirect()
    gen_loop()
    gen_ringbuf()


# ---------------------------------------------------------------------------------------
# Translating to kernel_oracle's assembler
# ---------------------------------------------------------------------------------------

LDDW_PSEUDO = re.compile(r"^(\s*lddw\s+(%r\d+)\s*,\s*)(map_idx|map_idx_value|func)\s+([^\s,#]+)(?:\s*,\s*([^\s#]+))?")


def translate(case):
    """bpfsim assembly -> (kernel_oracle assembly, [(slot, label)] of `lddw func`, [subprogram labels])."""
    out, funcs, subprogs, slot = [], [], set(), 0
    for line in case.asm:
        text = line.split("#", 1)[0].strip()
        m = LDDW_PSEUDO.match(text)
        if m:
            reg, kind, arg, extra = m.group(2), m.group(3), m.group(4), m.group(5)
            if kind == "map_idx":
                out.append("lddw %s, map:%s" % (reg, case.maps[int(arg)].name))
            elif kind == "map_idx_value":
                out.append("lddw %s, map_value:%s+%d" % (reg, case.maps[int(arg)].name, int(extra or 0)))
            else:
                out.append("lddw %s, 0" % reg)
                funcs.append((slot, arg))
                subprogs.add(arg)
        else:
            out.append(line)
            cm = re.match(r"^call\s+local\s+(\S+)$", text)
            if cm:
                subprogs.add(cm.group(1))
        if text and not text.endswith(":"):
            slot += 2 if text.startswith("lddw") else 1
    return "\n".join(out) + "\n", funcs, sorted(subprogs)


def label_slots(lines):
    slots, n = {}, 0
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if text.endswith(":"):
            slots[text[:-1]] = n
            continue
        n += 2 if text.startswith("lddw") else 1
    return slots


# ---------------------------------------------------------------------------------------
# Running the kernel
# ---------------------------------------------------------------------------------------

def init_value(m, value, cpus):
    """The syscall value for --map-init / BPF_MAP_UPDATE_ELEM: per-CPU values padded to 8."""
    if isinstance(value, list):
        stride = (m.value_size + 7) // 8 * 8
        assert len(value) == cpus, "per-CPU init needs %d values" % cpus
        return b"".join(v + b"\0" * (stride - len(v)) for v in value)
    return value


def run_load_run(oracle, case, tmp, cpus):
    text, funcs, _ = translate(case)
    assert not funcs
    asm = os.path.join(tmp, case.name + ".s")
    with open(asm, "w") as f:
        f.write(text)
    seq = os.path.join(tmp, case.name + ".jsonl")
    with open(seq, "w") as f:
        for name, data, _ in case.runs:
            f.write(json.dumps({"name": name, "hex": data.hex()}) + "\n")
    cmd = [sys.executable, oracle, "load-run", "--prog-type", case.prog_type, "--asm", asm, "--data-seq", seq,
           "--json"]
    byname = {m.name: m for m in case.maps}
    for m in case.maps:
        cmd += ["--map", m.oracle_spec()]
    for name, key, value in case.inits:
        cmd += ["--map-init", "%s:%s=%s" % (name, key.hex(), init_value(byname[name], value, cpus).hex())]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        r = json.loads(p.stdout)
    except ValueError:
        raise SystemExit("%s: load-run failed:\n%s\n%s" % (case.name, p.stdout[-2000:], p.stderr[-2000:]))
    if r.get("verdict") != "ACCEPT":
        raise SystemExit("%s: the kernel refused the program: %s %s\n%s" % (
            case.name, r.get("errno"), r.get("reason"), (r.get("log") or "")[-3000:]))
    if r.get("pinned_cpu") != 0:
        raise SystemExit("%s: load-run could not pin to CPU 0" % case.name)
    runs = []
    for run in r["runs"]:
        if "run_error" in run:
            raise SystemExit("%s: run %s: %s" % (case.name, run["name"], run["run_error"]))
        runs.append({"name": run["name"], "retval": run["retval"], "data_in": run["data_in"],
                     "data_out": run["data_out"], "maps": run["maps"], "events": {}, "cpu": 0})
    return r["possible_cpus"], runs, "kernel_oracle.py load-run --prog-type %s --data-seq" % case.prog_type


def load_oracle_module(oracle):
    spec = importlib.util.spec_from_file_location("kernel_oracle", oracle)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BPF_BTF_LOAD = 18
BTF_KIND_INT, BTF_KIND_FUNC, BTF_KIND_FUNC_PROTO = 1, 12, 13


def build_btf(names):
    """A minimal BTF: int, one `int (void)` prototype and a FUNC per subprogram (the first
    global, the others static).  Returns (bytes, [type id of each FUNC])."""
    strings = b"\0int\0"
    types = struct.pack("<III", 1, BTF_KIND_INT << 24, 4) + struct.pack("<I", (1 << 24) | 32)   # [1] int
    types += struct.pack("<III", 0, BTF_KIND_FUNC_PROTO << 24, 1)                               # [2] int (void)
    ids = []
    for i, name in enumerate(names):
        off = len(strings)
        strings += name.encode() + b"\0"
        linkage = 1 if i == 0 else 0
        types += struct.pack("<III", off, (BTF_KIND_FUNC << 24) | linkage, 2)
        ids.append(3 + i)
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings, ids


def direct_load(ko, insns, prog_type, fd_array, btf, func_info):
    a = ko._Attr(152)
    _, ia = a.mem(insns)
    _, la = a.mem(b"GPL\0")
    log, lba = a.mem(1 << 20)
    a.u32(0, prog_type)
    a.u32(4, len(insns) // 8)
    a.u64(8, ia)
    a.u64(16, la)
    a.u32(24, 1)
    a.u32(28, 1 << 20)
    a.u64(32, lba)
    a.raw(48, b"maptest")
    a.u32(68, ko.DEFAULT_ATTACH.get(prog_type, 0))
    if btf is not None:
        b = ko._Attr(32)
        _, ba = b.mem(btf)
        blog, blba = b.mem(1 << 16)
        b.u64(0, ba)
        b.u64(8, blba)
        b.u32(16, len(btf))
        b.u32(20, 1 << 16)
        b.u32(24, 1)
        btf_fd = ko.sys_bpf(BPF_BTF_LOAD, b)
        if btf_fd < 0:
            raise SystemExit("BPF_BTF_LOAD failed (%d): %s" % (btf_fd, blog.raw.split(b"\0")[0].decode()))
        _, fa = a.mem(b"".join(struct.pack("<II", off, tid) for off, tid in func_info))
        a.u32(72, btf_fd)
        a.u32(76, 8)
        a.u64(80, fa)
        a.u32(88, len(func_info))
    if fd_array:
        _, fda = a.mem(struct.pack("<%di" % len(fd_array), *fd_array))
        a.u64(120, fda)
    fd = ko.sys_bpf(ko.BPF_PROG_LOAD, a)
    if btf is not None:
        os.close(btf_fd)
    if fd < 0:
        raise SystemExit("the kernel refused the program (%s):\n%s" % (
            ko.errno_name(-fd), log.raw.split(b"\0")[0].decode(errors="replace")[-3000:]))
    return fd


class RingReader:
    """A user-space reader of a BPF ring buffer: maps its consumer page (read/write) and
    its producer page and data (read-only, the data mapped twice as the kernel does)."""

    def __init__(self, fd, size):
        page = mmap.PAGESIZE
        self.size = size
        self.consumer = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self.producer = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        self.page = page

    def drain(self):
        cons = struct.unpack_from("<Q", self.consumer, 0)[0]
        prod = struct.unpack_from("<Q", self.producer, 0)[0]
        records = []
        while cons < prod:
            at = self.page + (cons & (self.size - 1))
            word = struct.unpack_from("<I", self.producer, at)[0]
            if word & (1 << 31):
                break
            length = word & ~((1 << 31) | (1 << 30)) & 0xFFFFFFFF
            if not word & (1 << 30):
                records.append(bytes(self.producer[at + 8:at + 8 + length]).hex())
            cons += (length + 8 + 7) & ~7
        struct.pack_into("<Q", self.consumer, 0, cons)
        return records

    def close(self):
        self.consumer.close()
        self.producer.close()


def run_direct(oracle, case, cpus):
    ko = load_oracle_module(oracle)
    text, funcs, subprogs = translate(case)
    specs = [ko.MapSpec(m.oracle_spec()) for m in case.maps]
    byname = {m.name: m for m in case.maps}
    try:
        for s in specs:
            s.create()
        fds = {m.name: s.fd for m, s in zip(case.maps, specs)}
        if ko.pin_to_cpu(0) != 0:
            raise SystemExit("%s: cannot pin to CPU 0" % case.name)
        for name, key, value in case.inits:
            ko.map_update(fds[name], key, init_value(byname[name], value, cpus))
        for m in case.maps:
            if m.frozen:
                ko.map_freeze(fds[m.name])
        insns = bytearray(ko.assemble(text, [m.name for m in case.maps]))
        slots = label_slots(case.asm)
        for slot, label in funcs:
            struct.pack_into("<B", insns, slot * 8 + 1, (4 << 4) | insns[slot * 8 + 1] & 0xF)
            struct.pack_into("<i", insns, slot * 8 + 4, slots[label] - (slot + 1))
        btf, func_info = None, None
        if subprogs:
            names = ["main"] + subprogs
            btf, ids = build_btf(names)
            func_info = [(0, ids[0])] + [(slots[l], ids[i + 1]) for i, l in enumerate(subprogs)]
            func_info.sort()
        prog_type = ko._prog_type(case.prog_type)
        fd = direct_load(ko, bytes(insns), prog_type, [s.fd for s in specs], btf, func_info)
        rings = {m.name: RingReader(fds[m.name], m.max_entries) for m in case.maps if m.type == "ringbuf"}
        dump = [(m.name, s.fd, s.type, s.key_size, s.value_size) for m, s in zip(case.maps, specs)]
        runs = []
        for name, data, cpu in case.runs:
            if ko.pin_to_cpu(cpu) != cpu:
                raise SystemExit("%s: cannot pin to CPU %d" % (case.name, cpu))
            r = ko.prog_test_run(fd, data)
            events = {n: ring.drain() for n, ring in rings.items()}
            runs.append({"name": name, "retval": r["retval"], "data_in": data.hex(), "data_out": r["data_out"].hex(),
                         "maps": ko.dump_maps(dump), "events": events, "cpu": cpu})
        for ring in rings.values():
            ring.close()
        os.close(fd)
    finally:
        for s in specs:
            if s.fd is not None:
                os.close(s.fd)
    how = ("kernel_oracle.py's bpf(2) functions (as load-run --data-seq: BPF_PROG_TEST_RUN pinned to CPU 0 unless "
           "a run says otherwise, maps dumped after each run), directly, for %s" % " and ".join(case.needs_direct()))
    return runs, how


# ---------------------------------------------------------------------------------------
# Rendering and checking
# ---------------------------------------------------------------------------------------

def render(case, cpus, runs, how, date):
    out = ["# bpfsim map and helper test, generated by Tests/maps/generate.py (do not edit by hand).",
           "# %s" % case.title]
    out += ["#   %s" % n for n in case.notes]
    pinned = "runs pinned to CPU 0" if all(r["cpu"] == 0 for r in runs) else "runs pinned to the CPU they name"
    out.append("# expected values: Linux %s (%d possible CPUs, %s) via %s, %s"
               % (platform.release(), cpus, pinned, how, date))
    out.append("-- program %s" % case.prog_type)
    out.append("-- cpus %d" % cpus)
    for m in case.maps:
        out.append("-- map %s %s %d %d %d 0x%x%s" % (m.name, m.type, m.key_size, m.value_size, m.max_entries,
                                                    m.flags, " frozen" if m.frozen else ""))
    byname = {m.name: m for m in case.maps}
    for name, key, value in case.inits:
        vals = value if isinstance(value, list) else [value]
        out.append("-- init %s %s %s" % (name, key.hex(), ",".join(v.hex() for v in vals)))
        assert isinstance(value, list) == (byname[name].type in PERCPU)
    out.append("-- asm")
    out += case.asm
    for run in runs:
        out.append("-- run %s" % run["name"])
        if run["cpu"]:
            out.append("cpu %d" % run["cpu"])
        out.append("input %s" % run["data_in"])
        out.append("retval 0x%x" % run["retval"])
        out.append("data_out %s" % run["data_out"])
        for dumped in run["maps"]:
            m = byname[dumped["name"]]
            if m.type in UNLISTABLE:
                out.append("map %s none" % m.name)
                continue
            entries = dumped["entries"]
            for e in entries:
                if "error" in e:
                    raise SystemExit("%s: the kernel could not dump map %s: %s" % (case.name, m.name, e["error"]))
            mode = "ordered" if m.type in ORDERED else "set"
            if mode == "set":
                entries = sorted(entries, key=lambda e: e["key"])
            out.append("map %s %s" % (m.name, mode))
            for e in entries:
                if m.type in PERCPU:
                    out.append("%s %s" % (e["key"], " ".join(e["per_cpu"])))
                else:
                    out.append("%s %s" % (e["key"], e["value"]))
        for name in sorted(run["events"]):
            for record in run["events"][name]:
                out.append("event %s %s" % (name, record))
    return "\n".join(out) + "\n"


def comparable(text):
    """The lines that carry expectations (comments and the provenance line excluded)."""
    return [l for l in text.splitlines() if l and not l.startswith("#")]


def main():
    ap = argparse.ArgumentParser(description="Generate Tests/maps/*.case from the running kernel (needs root).")
    ap.add_argument("--check", action="store_true", help="re-run the kernel; report files whose expectations "
                    "differ (writes nothing)")
    ap.add_argument("--oracle", default=os.environ.get("KERNEL_ORACLE", DEFAULT_ORACLE),
                    help="path to kernel_oracle.py (default: %(default)s)")
    ap.add_argument("--out", default=HERE, help="directory for the .case files (default: this script's)")
    ap.add_argument("-k", dest="only", help="only cases whose name contains this")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (bpf(2) and BPF_PROG_TEST_RUN)")
    if not os.path.exists(args.oracle):
        sys.exit("kernel_oracle.py not found at %s (use --oracle)" % args.oracle)

    build_cases()
    cases = [c for c in CASES if not args.only or args.only in c.name]
    ko = load_oracle_module(args.oracle)
    cpus = ko._possible_cpus()
    date = datetime.date.today().isoformat()
    rendered = {}
    with tempfile.TemporaryDirectory(prefix="bpfsim-maps-") as tmp:
        for c in cases:
            if c.needs_direct():
                runs, how = run_direct(args.oracle, c, cpus)
            else:
                reported, runs, how = run_load_run(args.oracle, c, tmp, cpus)
                assert reported == cpus
            rendered[c.name] = render(c, cpus, runs, how, date)

    if args.check:
        bad = 0
        for c in cases:
            path = os.path.join(args.out, c.name + ".case")
            if not os.path.exists(path):
                print("MISSING  %s.case" % c.name)
                bad += 1
                continue
            with open(path) as f:
                stored = comparable(f.read())
            fresh = comparable(rendered[c.name])
            if stored != fresh:
                bad += 1
                diff = next((i for i, (a, b) in enumerate(zip(stored, fresh)) if a != b), min(len(stored), len(fresh)))
                print("DIFFERS  %s.case, first at expectation line %d:\n  stored: %s\n  kernel: %s" % (
                    c.name, diff + 1, stored[diff] if diff < len(stored) else "(end)",
                    fresh[diff] if diff < len(fresh) else "(end)"))
        known = {c.name + ".case" for c in CASES}
        if not args.only:
            for f in sorted(os.listdir(args.out)):
                if f.endswith(".case") and f not in known:
                    print("EXTRA    %s (not produced by this generator)" % f)
        print("%d cases checked against Linux %s: %d differ or are missing" % (len(cases), platform.release(), bad))
        return 1 if bad else 0

    for c in cases:
        with open(os.path.join(args.out, c.name + ".case"), "w") as f:
            f.write(rendered[c.name])
    print("wrote %d files to %s" % (len(cases), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
