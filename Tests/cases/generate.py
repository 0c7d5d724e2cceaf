#!/usr/bin/env python3
"""Generate bpfsim's own instruction-level test cases (Tests/cases/*.data).

Each case is a small eBPF program in the bpf_conformance ``.data`` format (``-- asm``,
optional ``-- mem``, ``-- result``).  The cases cover what the upstream bpf_conformance
suite misses: edge operands of every ALU operation (32/64-bit, immediate/register
source), JMP/JMP32 comparisons at the signed/unsigned boundaries, atomics on the stack,
sign-extending and byte-size loads/stores at the edges of ``-- mem``, the legacy packet
loads LD_ABS/LD_IND, and bpf-to-bpf calls (an 8-frame chain, r6-r9 and caller stack
preserved).

Every expected value comes from the running Linux kernel, through
../../../shared/tools/kernel_oracle.py (override with --oracle or $KERNEL_ORACLE):

  * most files: ``kernel_oracle.py conformance`` in wrapper mode: the program runs as an
    XDP bpf-to-bpf subprogram and its full 64-bit r0 is stored in a map (with ``-- mem``
    the memory is the packet and an XDP prolog sets r1 = data, r2 = length);
  * the 8-frame call chain: ``conformance --mode direct`` (the wrapper would be a ninth
    frame); XDP's retval is 32 bits, so that program ends with a 32-bit ALU op;
  * LD_ABS/LD_IND: ``kernel_oracle.py load-run --prog-type socket`` with the packet
    ETH_HDR + mem (a socket filter sees skb->data = the bytes after the 14-byte Ethernet
    header); the program starts with ``mov %r6, %r1`` and its result fits in 32 bits.

ALU, atomic and memory cases fold every intermediate result into one 64-bit value,
FNV-1a style: acc = acc * 0x100000001b3 ^ result.  Jump cases build a bit mask: r0
starts at 1 and each comparison shifts in 1 (taken) or 0 (not taken).

The generator also evaluates ALU and jump cases with a small Python model and prints a
note when the kernel disagrees with it; the kernel's value is what is written.

Usage (needs root: bpf(2), BPF_PROG_TEST_RUN):
    sudo python3 Tests/cases/generate.py            # (re)write every .data file here
    sudo python3 Tests/cases/generate.py --check    # re-run the kernel, report any file
                                                    # whose stored expected value differs
    options: --oracle PATH, --out DIR, -k SUBSTRING (only cases whose name contains it)
Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ORACLE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "tools", "kernel_oracle.py"))

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
# Ethernet header put in front of the memory for socket-filter (LD_ABS/LD_IND) runs:
# dst 02:00:00:00:00:01, src 02:00:00:00:00:02, EtherType 0x88b5 (IEEE local
# experimental; with 0x0800 the kernel refuses packets shorter than an IPv4 header).
ETH_HDR = bytes.fromhex("020000000001" "020000000002" "88b5")

# ---------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------

Z, ONE, TWO, SEVEN = 0, 1, 2, 7
M1 = M64                      # -1
M2 = M64 - 1                  # -2
M7 = (-7) & M64               # -7
I32MAX = 0x7FFFFFFF
B31 = 0x80000000
U32MAX = 0xFFFFFFFF
B32 = 0x100000000
I64MAX = 0x7FFFFFFFFFFFFFFF
I64MIN = 0x8000000000000000
I64MIN1 = 0x8000000000000001
SX31 = 0xFFFFFFFF80000000     # INT32_MIN sign-extended
X1 = 0x123456789ABCDEF0
X2 = 0xFEDCBA9876543210
I32MIN = -0x80000000          # as a signed 32-bit immediate

# High halves put above 32-bit operands (must not matter to 32-bit operations).
JUNK = [0xDEADBEEF, 0xFFFFFFFF, 0x00000001, 0x80000000, 0x00000000, 0x7FFFFFFF]


def s64(x):
    x &= M64
    return x - (1 << 64) if x >> 63 else x


def s32(x):
    x &= M32
    return x - (1 << 32) if x >> 31 else x


def sext(x, bits):
    x &= (1 << bits) - 1
    return (x - (1 << bits) if x >> (bits - 1) else x) & M64


def bswap(x, nbytes):
    return int.from_bytes((x & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little"), "big")


def fnv(acc, value):
    return ((acc * FNV_PRIME) & M64) ^ (value & M64)


def hx(x):
    return "0x%x" % (x & M64)


def imm_text(v):
    """A signed 32-bit immediate as assembler text."""
    assert -0x80000000 <= v <= 0xFFFFFFFF
    v = s32(v)
    if -0x10000 < v < 0x10000:
        return str(v)
    if v < 0:
        return str(v)
    return "0x%x" % v


def load_const(reg, value):
    """Put a 64-bit constant in a register: mov if it fits a sign-extended imm32, else lddw."""
    value &= M64
    if -0x80000000 <= s64(value) <= 0x7FFFFFFF:
        return ["mov %%r%d, %s" % (reg, imm_text(s64(value)))]
    return ["lddw %%r%d, 0x%016x" % (reg, value)]


def slots(asm):
    n = 0
    for line in asm:
        t = line.split("#")[0].strip()
        if not t or t.endswith(":"):
            continue
        n += 2 if t.startswith("lddw") else 1
    return n


# ---------------------------------------------------------------------------------------
# Python model of the ALU and jumps (only a cross-check; the kernel is the oracle)
# ---------------------------------------------------------------------------------------

def sdiv(a, b, bits):
    sa, sb = (s64(a), s64(b)) if bits == 64 else (s32(a), s32(b))
    if sb == 0:
        return 0
    q = abs(sa) // abs(sb)
    if (sa < 0) != (sb < 0):
        q = -q
    return q


def alu(op, a, b, bits):
    """Result of dst = dst OP src (b already sign-extended/truncated as the instruction does)."""
    mask = M64 if bits == 64 else M32
    a &= mask
    b &= mask
    if op == "add":
        r = a + b
    elif op == "sub":
        r = a - b
    elif op == "mul":
        r = a * b
    elif op == "div":
        r = 0 if b == 0 else a // b
    elif op == "mod":
        r = a if b == 0 else a % b
    elif op == "sdiv":
        r = sdiv(a, b, bits)
    elif op == "smod":
        if b == 0:
            r = a
        else:
            sa = s64(a) if bits == 64 else s32(a)
            sb = s64(b) if bits == 64 else s32(b)
            r = sa - sdiv(a, b, bits) * sb
    elif op == "or":
        r = a | b
    elif op == "and":
        r = a & b
    elif op == "xor":
        r = a ^ b
    elif op == "lsh":
        r = a << (b & (bits - 1))
    elif op == "rsh":
        r = a >> (b & (bits - 1))
    elif op == "arsh":
        r = (s64(a) if bits == 64 else s32(a)) >> (b & (bits - 1))
    else:
        raise ValueError(op)
    return r & mask


def jcond(op, a, b, bits):
    mask = M64 if bits == 64 else M32
    a &= mask
    b &= mask
    sa, sb = (s64(a), s64(b)) if bits == 64 else (s32(a), s32(b))
    return {
        "jeq": a == b, "jne": a != b, "jgt": a > b, "jge": a >= b, "jlt": a < b, "jle": a <= b,
        "jsgt": sa > sb, "jsge": sa >= sb, "jslt": sa < sb, "jsle": sa <= sb, "jset": (a & b) != 0,
    }[op]


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------

class Case:
    def __init__(self, name, title, asm, method="wrapper", mem=None, notes=(), model=None):
        self.name = name            # file stem
        self.title = title          # one line
        self.asm = list(asm)
        self.method = method        # wrapper | direct | socket
        self.mem = mem              # bytes or None
        self.notes = list(notes)    # comment lines
        self.model = model          # Python model's r0, or None
        self.extra_checks = []      # (description, asm, prog_type) run through `verify`, result noted
        n = slots(self.asm)
        assert n < 200, "%s: %d slots" % (name, n)


CASES = []


def add(case):
    assert case.name not in {c.name for c in CASES}, case.name
    CASES.append(case)


FOLD = ["mul %r0, %r9", "xor %r0, %r1"]
ALU_PROLOG = ["lddw %%r0, 0x%x" % FNV_OFFSET, "lddw %%r9, 0x%x" % FNV_PRIME]


def alu_program(steps):
    """steps: list of (comment, [asm lines leaving the result in r1], model result)."""
    asm = list(ALU_PROLOG)
    acc = FNV_OFFSET
    notes = []
    for i, (comment, lines, result) in enumerate(steps, 1):
        asm.append("# %d: %s" % (i, comment))
        asm += lines
        asm += FOLD
        acc = fnv(acc, result)
        notes.append("%2d: %s" % (i, comment))
    asm.append("exit")
    return asm, acc, notes


BINOPS = ["add", "sub", "mul", "div", "sdiv", "mod", "smod", "or", "and", "xor", "lsh", "rsh", "arsh"]
DIVOPS = {"div", "sdiv", "mod", "smod"}
SHIFTOPS = {"lsh", "rsh", "arsh"}

ARITH64_REG = [(Z, Z), (ONE, M1), (M1, ONE), (M1, M1), (I64MAX, ONE), (I64MIN, M1), (I64MIN, I64MIN),
               (I64MAX, I64MAX), (I64MIN, I64MAX), (I32MAX, ONE), (U32MAX, ONE), (B31, B31),
               (U32MAX, U32MAX), (B32, M1), (B32, B32), (TWO, I64MIN), (M7, TWO), (SEVEN, M2),
               (X1, X2), (SX31, B31), (Z, I64MIN), (M2, I64MAX), (U32MAX, B32)]
DIV64_REG = [(Z, Z), (ONE, Z), (M1, Z), (I64MIN, Z), (I64MIN, M1), (I64MAX, M1), (M1, M1), (M7, TWO),
             (SEVEN, M2), (M7, M2), (SEVEN, TWO), (I64MIN, ONE), (I64MIN, TWO), (I64MIN, I64MIN),
             (I64MAX, I64MIN), (M1, I64MIN), (M1, TWO), (B32, U32MAX), (X2, X1), (X1, B32),
             (U32MAX, B31), (Z, M1), (I64MIN, SX31)]
SHIFT64_REG = [(X1, 0), (X1, 1), (ONE, 63), (I64MIN1, 1), (I64MIN, 63), (M1, 31), (U32MAX, 32), (X2, 33),
               (X1, 64), (X1, 65), (I64MIN1, 127), (X2, 128), (X2, M1), (X1, 0x100000001),
               (I64MIN, 0x8000000000000005), (X2, U32MAX), (I64MIN1, 63), (SX31, 0x40), (B31, 1),
               (X2, 31), (X2, M2), (I64MIN, B31)]

ARITH64_IMM = [(Z, 0), (ONE, -1), (M1, 1), (M1, -1), (I64MAX, 1), (I64MIN, -1), (I64MIN, I32MIN),
               (I64MAX, 0x7FFFFFFF), (U32MAX, 1), (B31, I32MIN), (U32MAX, -1), (B32, -1), (SX31, I32MIN),
               (X1, 0x7FFFFFFF), (X2, -7), (M7, 2), (SEVEN, -2), (TWO, 0x10000), (Z, I32MIN),
               (B32, 0x7FFFFFFF), (I32MAX, I32MIN)]
DIV64_IMM = [(ONE, 1), (M1, 1), (M1, -1), (I64MIN, -1), (I64MAX, -1), (I64MIN, 1), (I64MIN, 2),
             (I64MIN, I32MIN), (M7, 2), (SEVEN, -2), (M7, -2), (SEVEN, 2), (M1, 2), (B32, 0x7FFFFFFF),
             (X1, I32MIN), (X2, 7), (U32MAX, -1), (Z, -1), (SX31, I32MIN), (I64MAX, I32MIN), (M1, I32MIN),
             (SX31, -1)]
SHIFT64_IMM = [(X1, 0), (X1, 1), (ONE, 63), (I64MIN1, 1), (I64MIN, 63), (M1, 31), (U32MAX, 32), (X2, 33),
               (I64MIN1, 62), (X2, 4), (SX31, 32), (B31, 31), (X1, 63), (X2, 16), (I64MIN1, 63), (M1, 1)]

# 32-bit: (low dst, low src); high halves are junk the operation must ignore.
ARITH32 = [(0, 0), (1, 0xFFFFFFFF), (0xFFFFFFFF, 1), (0xFFFFFFFF, 0xFFFFFFFF), (0x7FFFFFFF, 1),
           (0x80000000, 0xFFFFFFFF), (0x80000000, 0x80000000), (0x7FFFFFFF, 0x7FFFFFFF),
           (0x80000000, 0x7FFFFFFF), (0xFFFFFFF9, 2), (7, 0xFFFFFFFE), (0x12345678, 0x9ABCDEF0),
           (0, 0x80000000), (0xFFFFFFFE, 0x7FFFFFFF), (0x10000, 0x10000), (0xFFFF, 0xFFFF1), (2, 0x80000000),
           (0x80000001, 0x80000001)]
DIV32 = [(1, 0), (0xFFFFFFFF, 0), (0x80000000, 0), (0x80000000, 0xFFFFFFFF), (0x7FFFFFFF, 0xFFFFFFFF),
         (0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFF9, 2), (7, 0xFFFFFFFE), (0xFFFFFFF9, 0xFFFFFFFE), (7, 2),
         (0x80000000, 1), (0x80000000, 2), (0x80000000, 0x80000000), (0x7FFFFFFF, 0x80000000),
         (0xFFFFFFFF, 0x80000000), (0xFFFFFFFF, 2), (0x12345678, 0x9ABC), (0, 0xFFFFFFFF),
         (0x9ABCDEF0, 0x12345678), (0, 0)]
# 32-bit shifts by register: (low dst, full 64-bit amount register)
SHIFT32_REG = [(0x80000001, 0), (0x80000001, 1), (0x12345678, 15), (0x80000000, 31), (0xFFFFFFFF, 31),
               (0x12345678, 32), (0x80000001, 33), (0x80000001, 63), (0xFFFFFFFF, 64),
               (0x80000001, 0xFFFFFFFF), (0x12345678, 0x100000001), (0x80000000, M1),
               (0x7FFFFFFF, 0x80000000), (0x80000000, 0x3F), (0xFEDCBA98, 0xDEADBEEF00000004),
               (0x80000001, 0x20), (0x1, 0x1F), (0xFFFFFFFF, 0xFFFFFFFF00000010)]
ARITH32_IMM = [(0, 0), (1, -1), (0xFFFFFFFF, 1), (0xFFFFFFFF, -1), (0x7FFFFFFF, 1), (0x80000000, -1),
               (0x80000000, I32MIN), (0x7FFFFFFF, 0x7FFFFFFF), (0xFFFFFFF9, 2), (7, -2),
               (0x12345678, s32(0x9ABCDEF0)), (0, I32MIN), (0xFFFFFFFE, 0x7FFFFFFF), (0xFFFF, 0x10001),
               (2, I32MIN), (0x80000001, 0x80000001 - (1 << 32))]
DIV32_IMM = [(1, 1), (0xFFFFFFFF, -1), (0x80000000, -1), (0x7FFFFFFF, -1), (0xFFFFFFF9, 2), (7, -2),
             (0xFFFFFFF9, -2), (7, 2), (0x80000000, 1), (0x80000000, 2), (0x80000000, I32MIN),
             (0x7FFFFFFF, I32MIN), (0xFFFFFFFF, I32MIN), (0xFFFFFFFF, 2), (0x12345678, 0x9ABC), (0, -1),
             (0x9ABCDEF0, 0x12345678)]
SHIFT32_IMM = [(0x80000001, 0), (0x80000001, 1), (0x12345678, 15), (0x80000000, 31), (0xFFFFFFFF, 31),
               (0x12345678, 16), (0x80000001, 30), (0x7FFFFFFF, 1), (0xFEDCBA98, 4), (0xFFFFFFFF, 1),
               (0x80000000, 16), (1, 31)]


def pairs_for(op, width, kind):
    if width == 64:
        if kind == "reg":
            return DIV64_REG if op in DIVOPS else SHIFT64_REG if op in SHIFTOPS else ARITH64_REG
        return DIV64_IMM if op in DIVOPS else SHIFT64_IMM if op in SHIFTOPS else ARITH64_IMM
    if kind == "reg":
        return DIV32 if op in DIVOPS else SHIFT32_REG if op in SHIFTOPS else ARITH32
    return DIV32_IMM if op in DIVOPS else SHIFT32_IMM if op in SHIFTOPS else ARITH32_IMM


def gen_binops():
    for op in BINOPS:
        for width in (64, 32):
            for kind in ("reg", "imm"):
                mn = op if width == 64 else op + "32"
                steps = []
                for i, (a, b) in enumerate(pairs_for(op, width, kind)):
                    if width == 32:
                        a = (JUNK[i % len(JUNK)] << 32) | (a & M32)
                    if kind == "reg":
                        if width == 32 and not (op in SHIFTOPS):
                            hi = JUNK[(i + 3) % len(JUNK)]
                            if (b & M32) == 0 and hi == 0:
                                hi = 1     # a zero low half: make the high half non-zero
                            b = (hi << 32) | (b & M32)
                        lines = load_const(1, a) + load_const(2, b) + ["%s %%r1, %%r2" % mn]
                        res = alu(op, a, b, width)
                        steps.append(("r1 = %s; r2 = %s; %s r1, r2" % (hx(a), hx(b), mn), lines, res))
                    else:
                        imm = s32(b)
                        lines = load_const(1, a) + ["%s %%r1, %s" % (mn, imm_text(imm))]
                        bv = (imm & M64) if width == 64 else (imm & M32)
                        res = alu(op, a, bv, width)
                        steps.append(("r1 = %s; %s r1, %s" % (hx(a), mn, imm_text(imm)), lines, res))
                if kind == "reg":
                    # the same register as source and destination
                    for v in ([X1, I64MIN, Z] if width == 64 else [0xDEADBEEF80000001, 0x0000000100000000]):
                        res = alu(op, v, v, width)
                        steps.append(("r1 = %s; %s r1, r1" % (hx(v), mn), load_const(1, v) + ["%s %%r1, %%r1" % mn],
                                      res))
                asm, model, notes = alu_program(steps)
                what = {"reg": "register source", "imm": "immediate source"}[kind]
                add(Case("alu%d-%s-%s-edges" % (width, op, kind),
                         "%s (%d-bit ALU, %s) on edge operands" % (mn, width, what), asm, notes=notes, model=model))


def gen_unary():
    # neg
    vals64 = [Z, ONE, M1, TWO, I64MIN, I64MAX, I64MIN1, B31, U32MAX, B32, SX31, X1, M7]
    for width in (64, 32):
        mn = "neg" if width == 64 else "neg32"
        steps = []
        for i, v in enumerate(vals64):
            if width == 32:
                v = (JUNK[i % len(JUNK)] << 32) | (v & M32)
            res = (-v) & (M64 if width == 64 else M32)
            steps.append(("r1 = %s; %s r1" % (hx(v), mn), load_const(1, v) + ["%s %%r1" % mn], res))
        asm, model, notes = alu_program(steps)
        add(Case("alu%d-neg-edges" % width, "%s on edge operands" % mn, asm, notes=notes, model=model))

    # mov imm / reg
    imms = [0, 1, -1, 0x7FFFFFFF, I32MIN, -2, 0x12345678, s32(0x80000001), s32(0xFFFF0000), 0xFFFF]
    for width in (64, 32):
        mn = "mov" if width == 64 else "mov32"
        steps = []
        for i, imm in enumerate(imms):
            junk = 0xDEADBEEFCAFEF00D ^ i
            res = (imm & M64) if width == 64 else (imm & M32)
            steps.append(("r1 = %s; %s r1, %s" % (hx(junk), mn, imm_text(imm)),
                          load_const(1, junk) + ["%s %%r1, %s" % (mn, imm_text(imm))], res))
        asm, model, notes = alu_program(steps)
        add(Case("alu%d-mov-imm-edges" % width, "%s with an immediate (sign/zero extension)" % mn, asm,
                 notes=notes, model=model))
        steps = []
        srcs = [Z, M1, I64MIN, I64MAX, B31, U32MAX, B32, SX31, X1, X2, 0xFFFFFFFF00000000]
        for i, v in enumerate(srcs):
            junk = 0xDEADBEEFCAFEF00D ^ (i << 8)
            res = v if width == 64 else v & M32
            steps.append(("r1 = %s; r2 = %s; %s r1, r2" % (hx(junk), hx(v), mn),
                          load_const(1, junk) + load_const(2, v) + ["%s %%r1, %%r2" % mn], res))
        for v in (X2, SX31, 0xFFFFFFFF00000000):
            res = v if width == 64 else v & M32
            steps.append(("r1 = %s; %s r1, r1" % (hx(v), mn), load_const(1, v) + ["%s %%r1, %%r1" % mn], res))
        asm, model, notes = alu_program(steps)
        add(Case("alu%d-mov-reg-edges" % width, "%s with a register source (32-bit form zero-extends)" % mn,
                 asm, notes=notes, model=model))

    # movsx
    variants = [("movsx832", 8, 32), ("movsx1632", 16, 32), ("movsx864", 8, 64), ("movsx1664", 16, 64),
                ("movsx3264", 32, 64)]
    srcs = {8: [0x00, 0x01, 0x7F, 0x80, 0x81, 0xFF, 0x17F, 0x180, 0xFFFFFFFFFFFFFF7F, 0x1234567890ABCD80,
                0xDEADBEEF000000FF, 0x8000000000000000, 0x7FFFFFFFFFFFFF00],
            16: [0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x17FFF, 0x18000, 0xFFFFFFFFFFFF7FFF,
                 0x1234567890AB8000, 0xDEADBEEF0000FFFF, 0x8000000000000000, 0x7FFFFFFFFFFF00FF],
            32: [0, 1, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFF, 0x17FFFFFFF, 0x180000000,
                 0xFFFFFFFF7FFFFFFF, 0x1234567880000000, 0xDEADBEEF00000000, I64MIN, I64MAX]}
    for mn, frm, width in variants:
        steps = []
        for i, v in enumerate(srcs[frm]):
            junk = 0xDEADBEEFCAFEF00D ^ (i << 16)
            res = sext(v, frm) if width == 64 else sext(v, frm) & M32
            steps.append(("r1 = %s; r2 = %s; %s r1, r2" % (hx(junk), hx(v), mn),
                          load_const(1, junk) + load_const(2, v) + ["%s %%r1, %%r2" % mn], res))
        for v in (srcs[frm][3], srcs[frm][10]):
            res = sext(v, frm) if width == 64 else sext(v, frm) & M32
            steps.append(("r1 = %s; %s r1, r1" % (hx(v), mn), load_const(1, v) + ["%s %%r1, %%r1" % mn], res))
        asm, model, notes = alu_program(steps)
        add(Case("alu%d-movsx%d-reg-edges" % (width, frm),
                 "%s: sign-extend the low %d bits into a %d-bit result" % (mn, frm, width), asm,
                 notes=notes, model=model))

    # byte order
    vals = [0x0123456789ABCDEF, X2, 0x80, 0x8000, 0x80000000, I64MIN, 0xFF, M1, 0xFF00, 0x100000001,
            0xFFFF0000FFFF0000, 0x00000000FFFF0001, 0xDEADBEEF12348001, Z]
    for kind, cls in (("le", 32), ("be", 32), ("bswap", 64)):
        for bits in (16, 32, 64):
            mn = "%s%d" % (kind, bits)
            steps = []
            for v in vals:
                if kind == "le":
                    res = v & ((1 << bits) - 1)
                else:
                    res = bswap(v, bits // 8)
                steps.append(("r1 = %s; %s r1" % (hx(v), mn), load_const(1, v) + ["%s %%r1" % mn], res))
            asm, model, notes = alu_program(steps)
            desc = {"le": "to little endian (a truncation on this little-endian machine), ALU class",
                    "be": "to big endian, ALU class (opcode 0xdc)",
                    "bswap": "unconditional byte swap, ALU64 class (opcode 0xd7)"}[kind]
            add(Case("alu%d-%s-edges" % (cls, mn), "%s: %s" % (mn, desc), asm, notes=notes, model=model))


# ---------------------------------------------------------------------------------------
# Jumps: operands come from -- mem so that the verifier cannot decide the branches itself
# (with known constants it would rewrite them into plain jumps); r0 is a bit mask.
# ---------------------------------------------------------------------------------------

JOPS = ["jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset"]
J64_REG = [(Z, Z), (Z, ONE), (ONE, Z), (Z, M1), (M1, Z), (M1, M1), (I64MAX, I64MIN), (I64MIN, I64MAX),
           (I64MIN, I64MIN), (I64MAX, I64MAX), (I64MIN, Z), (Z, I64MIN), (I64MAX, M1), (M1, I64MAX),
           (I32MAX, B31), (B31, I32MAX), (U32MAX, B32), (B32, U32MAX), (M2, M1), (M1, M2), (I64MIN, I64MIN1),
           (I64MIN1, I64MIN), (B32, ONE), (SX31, B31), (X1, X2), (ONE, I64MIN1)]
J64_IMM = [(Z, 0), (Z, 1), (ONE, 0), (Z, -1), (M1, 0), (M1, -1), (U32MAX, -1), (I64MAX, -1), (I64MIN, -1),
           (I64MIN, 0), (I64MAX, 0x7FFFFFFF), (I32MAX, 0x7FFFFFFF), (B31, 0x7FFFFFFF), (B31, I32MIN),
           (SX31, I32MIN), (0xFFFFFFFF7FFFFFFF, I32MIN), (I64MIN, I32MIN), (M2, -1), (M1, -2), (B32, 0),
           (B32, 1), (TWO, 2), (ONE, 2), (I64MIN1, 1)]
# JMP32: low halves at the boundaries, high halves chosen to disagree with the 64-bit answer.
J32_LOW = [(0, 0), (0, 1), (1, 0), (0, 0xFFFFFFFF), (0xFFFFFFFF, 0), (0xFFFFFFFF, 0xFFFFFFFF),
           (0x7FFFFFFF, 0x80000000), (0x80000000, 0x7FFFFFFF), (0x80000000, 0x80000000),
           (0x7FFFFFFF, 0x7FFFFFFF), (0x80000000, 0), (0, 0x80000000), (0x7FFFFFFF, 0xFFFFFFFF),
           (0xFFFFFFFF, 0x7FFFFFFF), (0xFFFFFFFE, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFE), (0x80000000, 0x80000001),
           (0x80000001, 0x80000000), (1, 3), (0x12345678, 0x87654321)]
J32_HIGH = [(1, 0), (0, 1), (0xFFFFFFFF, 0), (0, 0x80000000), (0x80000000, 0x7FFFFFFF), (0x12345678, 0x12345678)]
J32_IMM = [(B32, 0), (Z, 1), (ONE, 0), (Z, -1), (U32MAX, -1), (0xDEADBEEFFFFFFFFF, -1), (I32MAX, I32MIN),
           (B31, I32MIN), (SX31, 0x7FFFFFFF), (B31, 0), (I32MAX, -1), (0xFFFFFFFE, -1), (U32MAX, -2),
           (0x100000002, 2), (0x80000001, I32MIN), (0x57FFFFFFF, 0x7FFFFFFF), (0xFFFFFFFF00000000, 0),
           (0x0000000180000000, I32MIN), (0x7FFFFFFF00000001, 1), (0x8000000000000003, 2)]


def gen_jumps():
    for width in (64, 32):
        for kind in ("reg", "imm"):
            for op in JOPS:
                mn = op if width == 64 else op + "32"
                if kind == "reg":
                    if width == 64:
                        pairs = J64_REG
                    else:
                        pairs = []
                        for i, (lo_a, lo_b) in enumerate(J32_LOW):
                            ha, hb = J32_HIGH[i % len(J32_HIGH)]
                            pairs.append(((ha << 32) | lo_a, (hb << 32) | lo_b))
                        pairs += [(B32, B32), (B31, SX31), (0xFFFFFFFF00000000, M1)]
                else:
                    pairs = J64_IMM if width == 64 else J32_IMM
                table = []
                for a, b in pairs:
                    for v in ([a, b] if kind == "reg" else [a]):
                        if v not in table:
                            table.append(v)
                mem = b"".join(v.to_bytes(8, "little") for v in table)
                asm = ["# r1 = -- mem: a table of 8-byte little-endian operands", "mov %r0, 1"]
                notes = []
                model = 1
                for i, (a, b) in enumerate(pairs, 1):
                    if kind == "reg":
                        asm.append("# %d: %s %s, %s" % (i, mn, hx(a), hx(b)))
                        asm += ["ldxdw %%r4, [%%r1+%d]" % (8 * table.index(a)),
                                "ldxdw %%r5, [%%r1+%d]" % (8 * table.index(b)),
                                "lsh %r0, 1",
                                "%s %%r4, %%r5, +1" % mn]
                        bv = b
                        notes.append("%2d: %s %s, %s" % (i, mn, hx(a), hx(b)))
                    else:
                        asm.append("# %d: %s %s, %s" % (i, mn, hx(a), imm_text(b)))
                        asm += ["ldxdw %%r4, [%%r1+%d]" % (8 * table.index(a)),
                                "lsh %r0, 1",
                                "%s %%r4, %s, +1" % (mn, imm_text(b))]
                        bv = (b & M64) if width == 64 else (b & M32)
                        notes.append("%2d: %s %s, %s" % (i, mn, hx(a), imm_text(b)))
                    asm += ["ja +1", "or %r0, 1"]
                    model = ((model << 1) | int(jcond(op, a, bv, width))) & M64
                asm.append("exit")
                assert len(pairs) <= 63
                add(Case("jmp%s-%s-%s-edges" % ("" if width == 64 else "32", op, kind),
                         "%s (%s, %s) at the signed/unsigned boundaries; r0 = 1 followed by one bit per "
                         "comparison, 1 = taken, first comparison in the highest bit"
                         % (mn, "JMP class" if width == 64 else "JMP32 class: compares the low 32 bits only",
                            "register source" if kind == "reg" else "immediate, sign-extended"
                            if width == 64 else "immediate"),
                         asm, mem=mem, notes=notes, model=model))


# ---------------------------------------------------------------------------------------
# Atomics on the stack.  acc in r6, FNV prime in r7 (r0 is cmpxchg's operand).
# ---------------------------------------------------------------------------------------

ATOMIC_PROLOG = ["lddw %%r6, 0x%x" % FNV_OFFSET, "lddw %%r7, 0x%x" % FNV_PRIME]


def gen_atomics():
    slot_init = [0xAAAAAAAAFFFFFFFF, 0x111111117FFFFFFF, 0x7FFFFFFF12345678, 0xFFFFFFFF00000000,
                 0x0123456789ABCDEF, 0x80000000FFFFFFFF]
    operands = [0xDEADBEEF00000001, 0xFFFFFFFF00000001, 0x0000000000000001, 0x00000000FFFFFFFF,
                0xFFFFFFFFFFFFFFFF, 0x8000000080000000]
    for width in (32, 64):
        sfx = "32" if width == 32 else ""
        for op in ("add", "and", "or", "xor", "xchg", "cmpxchg"):
            asm = list(ATOMIC_PROLOG)
            notes = []
            n = 0
            combos = []
            for i in range(len(slot_init)):
                init, operand = slot_init[i], operands[i]
                # 32-bit ops: the low half of the slot ([r10-8]) and, every third case, the high half ([r10-4])
                off = -4 if (width == 32 and i % 3 == 2) else -8
                combos.append((init, operand, off))
            combos += [(I64MAX, ONE, -8)] if width == 64 else [(0x00000001FFFFFFFF, ONE, -8)]
            if op == "cmpxchg":
                combos = combos[:4]
            for init, operand, off in combos:
                if op == "cmpxchg":
                    # expected value in r0: equal, equal only in the low half, different
                    old = (init >> 32) & M32 if off == -4 else init & M32 if width == 32 else init
                    exps = [(old | (0xDEADBEEF << 32)) & M64 if width == 32 else old,
                            old ^ 1,
                            (old ^ (1 << 32)) & M64 if width == 64 else (old ^ 0x80000000) & M64]
                    for exp in exps:
                        n += 1
                        asm.append("# %d: slot = %s; r0 = %s; r2 = %s; lock cmpxchg%s [%%r10%d], %%r2"
                                   % (n, hx(init), hx(exp), hx(operand), sfx, off))
                        notes.append("%2d: [r10-8] = %s; r0 = %s; r2 = %s; lock cmpxchg%s [r10%d], r2; fold r0, r2, [r10-8]"
                                     % (n, hx(init), hx(exp), hx(operand), sfx, off))
                        asm += load_const(1, init) + ["stxdw [%r10-8], %r1"] + load_const(0, exp) + \
                            load_const(2, operand) + ["lock cmpxchg%s [%%r10%d], %%r2" % (sfx, off),
                                                      "ldxdw %r3, [%r10-8]",
                                                      "mul %r6, %r7", "xor %r6, %r0",
                                                      "mul %r6, %r7", "xor %r6, %r2",
                                                      "mul %r6, %r7", "xor %r6, %r3"]
                    continue
                forms = ["lock xchg%s" % sfx] if op == "xchg" else ["lock %s%s" % (op, sfx),
                                                                     "lock fetch %s%s" % (op, sfx)]
                for form in forms:
                    n += 1
                    asm.append("# %d: slot = %s; r2 = %s; %s [%%r10%d], %%r2" % (n, hx(init), hx(operand), form, off))
                    notes.append("%2d: [r10-8] = %s; r2 = %s; %s [r10%d], r2; fold r2, [r10-8]"
                                 % (n, hx(init), hx(operand), form, off))
                    asm += load_const(1, init) + ["stxdw [%r10-8], %r1"] + load_const(2, operand) + \
                        ["%s [%%r10%d], %%r2" % (form, off), "ldxdw %r3, [%r10-8]",
                         "mul %r6, %r7", "xor %r6, %r2", "mul %r6, %r7", "xor %r6, %r3"]
            asm += ["mov %r0, %r6", "exit"]
            what = {"add": "add and fetch-add", "and": "and and fetch-and", "or": "or and fetch-or",
                    "xor": "xor and fetch-xor", "xchg": "xchg", "cmpxchg": "cmpxchg"}[op]
            extra = (" (32-bit: the fetched value is zero-extended, only 4 bytes of the slot change;"
                     " cmpxchg32 compares the low 32 bits of r0)" if width == 32 else "")
            add(Case("atomic%d-%s-edges" % (width, op),
                     "%d-bit atomic %s on a stack slot%s; each case folds the register results and the whole "
                     "8-byte slot" % (width, what, extra), asm, notes=notes))


# ---------------------------------------------------------------------------------------
# Loads and stores at the edges of -- mem (r1 = memory, r2 = its length)
# ---------------------------------------------------------------------------------------

MEM_BYTES = bytes([0x80, 0x7F, 0xFF, 0x01, 0x00, 0xFE, 0x81, 0x7E, 0x55, 0xAA, 0x12, 0x34, 0x56, 0x78, 0x9A,
                   0xBC, 0xDE, 0xF0, 0x00, 0xFF, 0x80, 0x01, 0x7F, 0x8F, 0xFF, 0xFF, 0x80])   # 27 bytes


def gen_memory():
    n = len(MEM_BYTES)
    loads = [("ldxb", 1, False), ("ldxh", 2, False), ("ldxw", 4, False), ("ldxdw", 8, False),
             ("ldxsb", 1, True), ("ldxsh", 2, True), ("ldxsw", 4, True)]
    for mn, size, signed in loads:
        offs = sorted(set([0, 1, 2, 5, 6, 9, n - size - 1, n - size, n - 2 * size, 3, 19]))
        offs = [o for o in offs if 0 <= o <= n - size]
        steps = []
        for o in offs:
            raw = int.from_bytes(MEM_BYTES[o:o + size], "little")
            res = sext(raw, 8 * size) if signed else raw
            tag = " (last valid offset)" if o == n - size else ""
            steps.append(("r1 = %s; %s r1, [mem+%d]%s" % (hx(0xDEADBEEFCAFEF00D), mn, o, tag),
                          ["lddw %r1, 0xdeadbeefcafef00d", "%s %%r1, [%%r3+%d]" % (mn, o)], res))
        asm, model, notes = alu_program(steps)
        asm = ["mov %r3, %r1"] + asm
        add(Case("mem-%s-edges" % mn,
                 "%s at offsets 0..len-%d of a %d-byte -- mem (%s); the destination starts as junk"
                 % (mn, size, n, "sign-extends" if signed else "zero-extends"),
                 asm, mem=MEM_BYTES, notes=notes, model=model))

    # stores: write at the first and the last valid offsets (and odd ones), then read back
    # every 8-byte window of the buffer (the last window ends at the last byte).
    def readback():
        lines = []
        for o in list(range(0, n - 7, 8)) + [n - 8]:
            lines += ["ldxdw %%r1, [%%r3+%d]" % o] + FOLD
        return lines

    stores = [("stb", 1, [0x1FF, -1, 0x80, 0x7F, 0x12345601]), ("sth", 2, [0x1FFFF, -1, 0x8000, 0x12348001]),
              ("stw", 4, [-1, I32MIN, 0x7FFFFFFF, 0x12345678]), ("stdw", 8, [-1, I32MIN, 0x7FFFFFFF, -2])]
    for mn, size, imms in stores:
        asm = ["mov %r3, %r1"] + ALU_PROLOG
        notes = []
        offs = [0, n - size, 1, n - size - 1, 13]
        for i, o in enumerate(offs):
            imm = imms[i % len(imms)]
            asm += ["%s [%%r3+%d], %s" % (mn, o, imm_text(imm))]
            notes.append("%s [mem+%d], %s%s" % (mn, o, imm_text(imm), " (last valid offset)" if o == n - size else ""))
        asm += readback() + ["exit"]
        notes.append("then fold every 8-byte window of the memory (offsets 0, 8, 16, %d)" % (n - 8))
        add(Case("mem-%s-edges" % mn, "%s (store immediate: truncated to %d bytes%s) at the first and last valid "
                 "offsets of a %d-byte -- mem" % (mn, size, ", sign-extended from 32 bits" if size == 8 else "", n),
                 asm, mem=MEM_BYTES, notes=notes))
    srcs = [0xDEADBEEFCAFEF00D, M1, I64MIN1, 0x0123456789ABCD80, 0x7F7F7F7F7F7F7F7F]
    for mn, size in (("stxb", 1), ("stxh", 2), ("stxw", 4), ("stxdw", 8)):
        asm = ["mov %r3, %r1"] + ALU_PROLOG
        notes = []
        offs = [0, n - size, 1, n - size - 1, 13]
        for i, o in enumerate(offs):
            v = srcs[i % len(srcs)]
            asm += load_const(2, v) + ["%s [%%r3+%d], %%r2" % (mn, o)]
            notes.append("%s [mem+%d], %s%s" % (mn, o, hx(v), " (last valid offset)" if o == n - size else ""))
        asm += readback() + ["exit"]
        notes.append("then fold every 8-byte window of the memory (offsets 0, 8, 16, %d)" % (n - 8))
        add(Case("mem-%s-edges" % mn, "%s (store register: low %d bytes) at the first and last valid offsets "
                 "of a %d-byte -- mem" % (mn, size, n), asm, mem=MEM_BYTES, notes=notes))

    # addressing from the end: r4 = r1 + r2 (r2 = memory length)
    asm = ["mov %r3, %r1", "mov %r4, %r1", "add %r4, %r2"] + ALU_PROLOG
    notes = ["r4 = r1 + r2 (one past the last byte); r2 itself is folded first"]
    asm += ["mov %r1, %r2"] + FOLD
    for mn, size in (("ldxb", 1), ("ldxh", 2), ("ldxw", 4), ("ldxdw", 8), ("ldxsb", 1), ("ldxsh", 2),
                     ("ldxsw", 4)):
        asm += ["%s %%r1, [%%r4-%d]" % (mn, size)] + FOLD
        notes.append("%s r1, [r4-%d]" % (mn, size))
    asm += ["stb [%r4-1], 0x5a", "sth [%r4-4], -2", "mov %r2, -1", "stxw [%r4-9], %r2",
            "ldxdw %r1, [%r4-8]"] + FOLD + ["ldxdw %r1, [%r4-16]"] + FOLD + ["exit"]
    notes.append("stb [r4-1], 0x5a; sth [r4-4], -2; stxw [r4-9], -1; fold [r4-8] and [r4-16] as 8-byte words")
    add(Case("mem-end-relative-edges", "loads and stores addressed back from r1 + r2 (the -- mem length)", asm,
             mem=MEM_BYTES, notes=notes))


# ---------------------------------------------------------------------------------------
# LD_ABS / LD_IND (socket filter; ctx must be in r6; r1-r5 are clobbered by each load)
# accumulator: r7 = 32-bit FNV-1 (r7 = r7 * 0x01000193 ^ r0, 32-bit ops), index register r8
# ---------------------------------------------------------------------------------------

PKT = bytes([0x80, 0x7F, 0xFF, 0x01, 0x00, 0xFE, 0x81, 0x7E, 0x55, 0xAA, 0x12, 0x34, 0x56, 0x78, 0x9A,
             0xBC, 0xDE, 0xF0, 0xC3, 0x3C, 0xA5])   # 21 bytes


def gen_legacy():
    n = len(PKT)
    head = ["mov %r6, %r1", "mov32 %r7, 0x811c9dc5", "mov %r0, 0"]
    fold = ["mul32 %r7, 0x1000193", "xor32 %r7, %r0"]
    tail = ["mov %r0, %r7", "exit"]

    def be(off, size):
        return int.from_bytes(PKT[off:off + size], "big")

    def model(loads):
        acc = 0x811C9DC5
        for v in loads:
            acc = ((acc * 0x1000193) & M32) ^ v
        return acc

    # in range, absolute
    asm, vals, notes = list(head), [], []
    for mn, size in (("ldabsb", 1), ("ldabsh", 2), ("ldabsw", 4)):
        for o in sorted(set([0, 1, 2, 7, n - size - 1, n - size])):
            asm += ["%s %d" % (mn, o)] + fold
            vals.append(be(o, size))
            notes.append("%s %d%s" % (mn, o, " (last valid offset)" if o == n - size else ""))
    asm += tail
    add(Case("ldabs-inrange-edges", "LD_ABS b/h/w at offsets 0 .. last valid of a %d-byte packet (big-endian, "
             "zero-extended into r0)" % n, asm, method="socket", mem=PKT, notes=notes, model=model(vals)))

    # in range, indirect
    asm, vals, notes = list(head), [], []
    ind = [("ldindb", 1, 0, 0), ("ldindb", 1, n - 1, 0), ("ldindb", 1, 0, n - 1), ("ldindh", 2, 3, n - 5),
           ("ldindw", 4, n - 4, 0), ("ldindw", 4, 0, n - 4), ("ldindb", 1, -4, 6), ("ldindh", 2, -1000, 1003),
           ("ldindw", 4, 10, -7), ("ldindb", 1, 0x100000005, 0), ("ldindw", 4, 0xFFFFFFFF, 3),
           ("ldindh", 2, M1, 2), ("ldindb", 1, 0xDEADBEEF00000010, 1), ("ldindh", 2, -0x7FFFFFF0, 0x7FFFFFF0 + 3),
           ("ldindw", 4, 0x7FFFFFFF, -0x7FFFFFFF + 5)]
    for mn, size, reg, imm in ind:
        eff = s32(reg + imm)
        asm += load_const(8, reg) + ["%s %%r8, %s" % (mn, imm_text(imm))] + fold
        assert 0 <= eff <= n - size
        vals.append(be(eff, size))
        notes.append("r8 = %s; %s r8, %s  (offset = low 32 bits of r8 + imm = %d)" % (hx(reg), mn, imm_text(imm), eff))
    asm += tail
    add(Case("ldind-inrange-edges", "LD_IND b/h/w: offset = (int32)(src + imm); negative src with positive imm, "
             "upper 32 bits of src ignored, last valid offsets", asm, method="socket", mem=PKT, notes=notes,
             model=model(vals)))

    # out of range: each ends the program with r0 = 0.  Before it, an in-range load so r0 != 0.
    bad = [("ldabsb-past-end", "ldabsb %d" % n, "LD_ABS byte at offset len (one past the end)"),
           ("ldabsh-past-end", "ldabsh %d" % (n - 1), "LD_ABS half-word at offset len-1 (last byte in range, "
            "second past the end)"),
           ("ldabsw-past-end", "ldabsw %d" % (n - 3), "LD_ABS word at offset len-3 (straddles the end)"),
           ("ldabsw-huge-offset", "ldabsw 0x7fffffff", "LD_ABS word at offset 0x7fffffff"),
           ("ldabsb-negative-offset", "ldabsb -2097153", "LD_ABS byte at offset -0x200001 (below SKF_LL_OFF, "
            "not a special negative range)"),
           ("ldabsw-intmin-offset", "ldabsw 0x80000000", "LD_ABS word at offset INT32_MIN"),
           ("ldindb-past-end", None, "LD_IND byte: r8 = len, imm 0 (one past the end)"),
           ("ldindh-past-end", None, "LD_IND half-word: r8 = len-2, imm 1 (straddles the end)"),
           ("ldindw-past-end-imm", None, "LD_IND word: r8 = 0, imm = len-3 (straddles the end)"),
           ("ldindb-negative-offset", None, "LD_IND byte: r8 = 0, imm = -0x200001 (below SKF_LL_OFF)"),
           ("ldindw-negative-reg", None, "LD_IND word: r8 = INT32_MIN (as 0xffffffff80000000), imm 4"),
           ("ldindh-wrap-negative", None, "LD_IND half-word: r8 = 0x7fffffff, imm 1: the 32-bit sum wraps to "
            "INT32_MIN"),
           ("ldindb-negative-upper", None, "LD_IND byte: r8 = 0x00000001ffc00000 (upper bits ignored: offset "
            "-0x400000), imm 0")]
    ind_bad = {"ldindb-past-end": (n, 0, "ldindb"), "ldindh-past-end": (n - 2, 1, "ldindh"),
               "ldindw-past-end-imm": (0, n - 3, "ldindw"), "ldindb-negative-offset": (0, -0x200001, "ldindb"),
               "ldindw-negative-reg": (SX31, 4, "ldindw"), "ldindh-wrap-negative": (0x7FFFFFFF, 1, "ldindh"),
               "ldindb-negative-upper": (0x1FFC00000, 0, "ldindb")}
    for name, insn, title in bad:
        asm = list(head) + ["ldabsw 0"] + fold
        notes = ["ldabsw 0 (in range)"]
        if insn is None:
            reg, imm, mn = ind_bad[name]
            asm += load_const(8, reg) + ["%s %%r8, %s" % (mn, imm_text(imm))]
            notes.append("r8 = %s; %s r8, %s  -- out of range" % (hx(reg), mn, imm_text(imm)))
        else:
            asm += [insn]
            notes.append("%s  -- out of range" % insn)
        asm += fold + ["mov %r0, 0x1234", "exit"]
        notes.append("if the program went on it would return 0x1234; the kernel ends it with r0 = 0")
        add(Case(name, "%s in a %d-byte packet: ends the program with r0 = 0" % (title, n), asm, method="socket",
                 mem=PKT, notes=notes, model=0))


# ---------------------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------------------

def call_chain(frames, fold32):
    """main + (frames-1) nested callees.  Each frame keeps values in r6-r9 and on its stack,
    calls the next one with r1..r5 as arguments, then checks they survived by folding them."""
    asm = ["# frame 0 (main)"]
    asm += ["lddw %r6, 0x8000000000000006", "lddw %r7, 0xffffffff00000007", "mov %r8, -8",
            "lddw %r9, 0x7fffffff00000009",
            "lddw %r1, 0x1122334455667788", "stxdw [%r10-8], %r1", "stw [%r10-12], -1", "stb [%r10-16], 0x80",
            "mov %r1, 1", "mov %r2, 2", "mov %r3, 3", "mov %r4, 4", "mov %r5, 5",
            "call local f1",
            "# r0 from the chain; fold the callee-saved registers and the stack slots",
            "lddw %r1, 0x100000001b3",
            "mul %r0, %r1", "xor %r0, %r6", "mul %r0, %r1", "xor %r0, %r7",
            "mul %r0, %r1", "xor %r0, %r8", "mul %r0, %r1", "xor %r0, %r9",
            "ldxdw %r2, [%r10-8]", "mul %r0, %r1", "xor %r0, %r2",
            "ldxw %r2, [%r10-12]", "mul %r0, %r1", "xor %r0, %r2",
            "ldxb %r2, [%r10-16]", "mul %r0, %r1", "xor %r0, %r2"]
    if fold32:
        asm += ["# fold to 32 bits (the kernel run returns only r0's low 32 bits)",
                "mov %r1, %r0", "rsh %r1, 32", "xor32 %r0, %r1"]
    asm += ["exit"]
    for k in range(1, frames):
        last = k == frames - 1
        asm += ["# frame %d" % k, "f%d:" % k,
                "# keep the arguments on this frame's stack",
                "stxdw [%r10-8], %r1", "stxdw [%r10-24], %r5",
                "# clobber the callee-saved registers (the caller must get its own back)",
                "mov %%r6, %d" % (-0x10001 * k), "mov %%r7, %d" % (-k),
                "mov %%r8, %d" % (k * 0x1001), "mov %%r9, 0x%x" % (0x7FFFFFF0 | k)]
        if last:
            asm += ["# deepest frame: r0 = r1 * 3 + r2 ^ r3 + r4 - r5",
                    "mov %r0, %r1", "mul %r0, 3", "add %r0, %r2", "xor %r0, %r3", "add %r0, %r4", "sub %r0, %r5",
                    "stdw [%r10-8], 0", "exit"]
        else:
            asm += ["# arguments for the next frame",
                    "mul %%r1, %d" % (k + 2), "add %r2, %r1", "add %r5, -1",
                    "call local f%d" % (k + 1),
                    "# this frame's registers and stack survived the deeper calls",
                    "mul %r0, 31", "add %r0, %r6", "xor %r0, %r7", "add %r0, %r8", "xor %r0, %r9",
                    "ldxdw %r1, [%r10-8]", "add %r0, %r1", "ldxdw %r1, [%r10-24]", "xor %r0, %r1",
                    "exit"]
    return asm


def gen_calls():
    chain8 = call_chain(8, True)
    c = Case("call-chain-8-frames", "8 frames (main + 7 nested call local, the kernel's MAX_CALL_FRAMES): "
             "arguments, r0, r6-r9 and each frame's stack slots across the whole chain; the result is folded to "
             "32 bits", chain8, method="direct",
             notes=["main sets r6-r9 and three stack slots, calls f1 with r1..r5 = 1..5",
                    "f1..f6 save arguments on their stacks, clobber r6-r9, call the next frame, then fold",
                    "their own r6-r9 and stack slots into r0; f7 computes r0 from its arguments",
                    "main folds r6-r9 and its slots into r0 (FNV-style), then r0 = low32(r0) ^ high32(r0)"])
    c.extra_checks.append(("the same chain one frame deeper (9 frames)", call_chain(9, True), "xdp"))
    add(c)
    add(Case("call-chain-7-frames", "main + 6 nested call local frames (the most the wrapper run allows: the "
             "kernel's wrapper is an 8th frame), full 64-bit result", call_chain(7, False),
             notes=["as call-chain-8-frames, one frame shorter, without the final fold to 32 bits"]))

    # callee-saved registers with edge values, across a call that clobbers them and a nested call
    asm = ["lddw %r6, 0x8000000000000000", "lddw %r7, 0xffffffffffffffff", "lddw %r8, 0x00000000ffffffff",
           "lddw %r9, 0x123456789abcdef0",
           "lddw %r1, 0x7fffffffffffffff", "mov %r2, -1", "lddw %r3, 0x100000000", "mov %r4, 0", "mov %r5, 0x7fffffff",
           "call local clobber",
           "mov %r1, %r0",
           "lddw %r0, 0xcbf29ce484222325", "lddw %r2, 0x100000001b3",
           "mul %r0, %r2", "xor %r0, %r1",
           "mul %r0, %r2", "xor %r0, %r6", "mul %r0, %r2", "xor %r0, %r7",
           "mul %r0, %r2", "xor %r0, %r8", "mul %r0, %r2", "xor %r0, %r9",
           "# a second call: the registers must still be the caller's",
           "mov %r1, %r6", "mov %r2, %r7", "mov %r3, %r8", "mov %r4, %r9", "mov %r5, %r0",
           "call local clobber",
           "lddw %r2, 0x100000001b3",
           "mul %r0, %r2", "xor %r0, %r6", "mul %r0, %r2", "xor %r0, %r7",
           "mul %r0, %r2", "xor %r0, %r8", "mul %r0, %r2", "xor %r0, %r9",
           "exit",
           "clobber:",
           "# r0 = fold of the arguments r1..r5; r6-r9 overwritten; then a nested call",
           "mov %r6, %r1", "add %r6, %r2", "mov %r7, %r3", "xor %r7, %r4", "mov %r8, %r5", "mul %r8, %r6",
           "mov %r9, %r7", "sub %r9, %r8",
           "mov %r1, %r9", "call local leaf",
           "add %r0, %r6", "xor %r0, %r7", "add %r0, %r8", "xor %r0, %r9",
           "exit",
           "leaf:",
           "mov %r0, %r1", "lddw %r6, 0x1111111111111111", "lddw %r7, 0x2222222222222222",
           "lddw %r8, 0x3333333333333333", "lddw %r9, 0x4444444444444444", "arsh %r0, 3", "exit"]
    add(Case("call-callee-saved-edges", "r6-r9 hold edge values (INT64_MIN, -1, 0xffffffff, ...) across calls that "
             "overwrite them, including a nested call; r1-r5 pass arguments, r0 returns", asm,
             notes=["main: r6-r9 = 0x8000000000000000, -1, 0xffffffff, 0x123456789abcdef0; call clobber twice",
                    "clobber: computes r0 from r1..r5 and its own r6-r9, calls leaf, which overwrites r6-r9 too",
                    "main folds r0 and r6-r9 after each call"]))

    # caller's stack preserved; callee reads and writes the caller's stack through a pointer argument
    asm = ["lddw %r1, 0x0102030405060708", "stxdw [%r10-8], %r1", "mov %r1, -1", "stxdw [%r10-16], %r1",
           "stw [%r10-20], 0x7fffffff", "stw [%r10-24], 0x80000000", "sth [%r10-26], -2", "stb [%r10-27], 0x7f",
           "stb [%r10-28], 0x80", "sth [%r10-30], 0x1234", "stw [%r10-32], 0", "lddw %r1, 0x8000000000000000",
           "stxdw [%r10-256], %r1",
           "# callee gets a pointer to this frame's [r10-16]",
           "mov %r1, %r10", "add %r1, -16",
           "call local callee",
           "mov %r5, %r0",
           "lddw %r0, 0xcbf29ce484222325", "lddw %r2, 0x100000001b3",
           "mul %r0, %r2", "xor %r0, %r5",
           "ldxdw %r1, [%r10-8]", "mul %r0, %r2", "xor %r0, %r1",
           "ldxdw %r1, [%r10-16]", "mul %r0, %r2", "xor %r0, %r1",
           "ldxdw %r1, [%r10-24]", "mul %r0, %r2", "xor %r0, %r1",
           "ldxdw %r1, [%r10-32]", "mul %r0, %r2", "xor %r0, %r1",
           "ldxdw %r1, [%r10-256]", "mul %r0, %r2", "xor %r0, %r1",
           "exit",
           "callee:",
           "# its own stack: same offsets, different values (must not touch the caller's)",
           "mov %r2, 0", "stxdw [%r10-8], %r2", "stxdw [%r10-16], %r2", "stxdw [%r10-24], %r2",
           "stxdw [%r10-32], %r2", "stdw [%r10-192], -1",
           "# through the pointer: read the caller's [r10-8] and [r10-24], write its [r10-16] (one byte)",
           "ldxdw %r0, [%r1+8]", "ldxw %r3, [%r1-8]", "add %r0, %r3", "stb [%r1+0], 0x42",
           "ldxdw %r3, [%r10-192]", "xor %r0, %r3",
           "exit"]
    add(Case("call-caller-stack-edges", "the caller's stack slots (including [r10-256]) survive a call whose frame "
             "writes the same offsets; the callee reads and writes the caller's stack through a pointer argument",
             asm, notes=["main fills [r10-8..-32] and [r10-256], passes r1 = r10-16 to callee",
                         "callee zeroes its own [r10-8..-32], reads caller [r1+8], [r1-8], writes one byte at [r1]",
                         "main folds r0 and its slots"]))


# ---------------------------------------------------------------------------------------
# Running the kernel
# ---------------------------------------------------------------------------------------

def render(case, result, method_text):
    out = ["# bpfsim instruction test, generated by Tests/cases/generate.py (do not edit by hand).",
           "# %s" % case.title]
    for note in case.notes:
        out.append("#   %s" % note)
    for line in getattr(case, "check_notes", []):
        out.append("# %s" % line)
    out.append("# %s" % method_text)
    out.append("-- asm")
    out += case.asm
    if case.mem is not None:
        out.append("-- mem")
        hexes = ["%02x" % b for b in case.mem]
        for i in range(0, len(hexes), 16):
            out.append(" ".join(hexes[i:i + 16]))
    out.append("-- result")
    out.append(hx(result))
    return "\n".join(out) + "\n"


def method_text(case, date):
    kernel = "Linux %s" % platform.release()
    if case.method == "wrapper":
        how = "kernel_oracle.py conformance (wrapper mode, full 64-bit r0)"
    elif case.method == "direct":
        how = ("kernel_oracle.py conformance --mode direct (XDP retval = low 32 bits of r0; the program ends with "
               "a 32-bit ALU op, so r0's upper half is 0)")
    else:
        how = ("kernel_oracle.py load-run --prog-type socket (retval, 32 bits), data = 14-byte Ethernet header "
               "%s + the -- mem bytes (skb->data = -- mem)" % ETH_HDR.hex())
    return "expected r0 from %s via %s, %s" % (kernel, how, date)


def oracle_cmd(oracle, *args):
    return [sys.executable, oracle] + list(args)


def run_conformance(oracle, cases, mode, tmp):
    d = os.path.join(tmp, mode)
    os.makedirs(d, exist_ok=True)
    for c in cases:
        with open(os.path.join(d, c.name + ".data"), "w") as f:
            f.write(render(c, 0, "placeholder result"))
    js = os.path.join(tmp, mode + ".json")
    p = subprocess.run(oracle_cmd(oracle, "conformance", "--mode", mode, "--json", js, d),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not os.path.exists(js):
        sys.exit("kernel_oracle.py conformance failed:\n%s%s" % (p.stdout, p.stderr))
    with open(js) as f:
        results = json.load(f)
    out = {}
    for r in results:
        name = r["name"][:-len(".data")]
        if r["status"] in ("PASS", "FAIL") and "got" in r:
            out[name] = (int(r["got"], 16), None)
        else:
            out[name] = (None, "%s: %s %s" % (r["status"], r.get("errno", ""), r.get("reason", "")))
    return out


def run_socket(oracle, case, tmp):
    path = os.path.join(tmp, case.name + ".s")
    with open(path, "w") as f:
        f.write("\n".join(case.asm) + "\n")
    data = (ETH_HDR + case.mem).hex()
    p = subprocess.run(oracle_cmd(oracle, "load-run", "--prog-type", "socket", "--asm", path, "--data-hex", data,
                                  "--json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        r = json.loads(p.stdout)
    except ValueError:
        return None, "load-run failed: %s %s" % (p.stdout[-500:], p.stderr[-500:])
    if r.get("verdict") != "ACCEPT":
        return None, "REJECT: %s %s" % (r.get("errno"), r.get("reason"))
    if "retval" not in r:
        return None, "run error: %s" % r.get("run_error")
    return r["retval"], None


def run_verify(oracle, asm, prog_type, tmp, tag):
    path = os.path.join(tmp, tag + ".s")
    with open(path, "w") as f:
        f.write("\n".join(asm) + "\n")
    p = subprocess.run(oracle_cmd(oracle, "verify", "--prog-type", prog_type, "--asm", path, "--json"),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        r = json.loads(p.stdout)
    except ValueError:
        return "verify failed: %s" % (p.stdout[-300:] + p.stderr[-300:])
    if r.get("verdict") == "ACCEPT":
        return "ACCEPT"
    reason = r.get("reason") or ""
    return "REJECT (%s: %s)" % (r.get("errno"), reason.strip())


def kernel_results(oracle, cases):
    """{name: value}; exits if any case could not be run."""
    results, errors = {}, []
    with tempfile.TemporaryDirectory(prefix="bpfsim-cases-") as tmp:
        for mode in ("wrapper", "direct"):
            sel = [c for c in cases if c.method == mode]
            if sel:
                for name, (v, err) in run_conformance(oracle, sel, mode, tmp).items():
                    if err:
                        errors.append("%s: %s" % (name, err))
                    else:
                        results[name] = v
        for c in cases:
            if c.method == "socket":
                v, err = run_socket(oracle, c, tmp)
                if err:
                    errors.append("%s: %s" % (c.name, err))
                else:
                    results[c.name] = v
            c.check_notes = []
            for i, (desc, asm, pt) in enumerate(c.extra_checks):
                verdict = run_verify(oracle, asm, pt, tmp, "%s-extra%d" % (c.name, i))
                c.check_notes.append("kernel check: %s: %s" % (desc, verdict))
    if errors:
        sys.exit("the kernel could not run these cases:\n  " + "\n  ".join(errors))
    return results


def stored_result(path):
    value = None
    state = None
    with open(path) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if "--" in line:
                state = "result" if "result" in line and "asm" not in line else "other"
                continue
            if state == "result" and line:
                value = int(line, 16) if "0x" in line.lower() else int(line)
    return value


def main():
    ap = argparse.ArgumentParser(description="Generate Tests/cases/*.data from the running kernel (needs root).")
    ap.add_argument("--check", action="store_true", help="re-run the kernel; report files whose expected value "
                    "differs (writes nothing)")
    ap.add_argument("--oracle", default=os.environ.get("KERNEL_ORACLE", DEFAULT_ORACLE),
                    help="path to kernel_oracle.py (default: %(default)s)")
    ap.add_argument("--out", default=HERE, help="directory for the .data files (default: this script's)")
    ap.add_argument("-k", dest="only", help="only cases whose name contains this")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (bpf(2) and BPF_PROG_TEST_RUN)")
    if not os.path.exists(args.oracle):
        sys.exit("kernel_oracle.py not found at %s (use --oracle)" % args.oracle)

    gen_binops()
    gen_unary()
    gen_jumps()
    gen_atomics()
    gen_memory()
    gen_legacy()
    gen_calls()
    cases = [c for c in CASES if not args.only or args.only in c.name]
    results = kernel_results(args.oracle, cases)

    for c in cases:
        if c.model is not None and c.model != results[c.name]:
            print("note: %s: the kernel says %s, the Python model %s (the kernel's value is used)"
                  % (c.name, hx(results[c.name]), hx(c.model)))

    if args.check:
        bad = 0
        for c in cases:
            path = os.path.join(args.out, c.name + ".data")
            if not os.path.exists(path):
                print("MISSING  %s.data (kernel: %s)" % (c.name, hx(results[c.name])))
                bad += 1
                continue
            stored = stored_result(path)
            if stored != results[c.name]:
                print("DIFFERS  %s.data: stored %s, kernel now %s" % (c.name, "none" if stored is None else hx(stored),
                                                                     hx(results[c.name])))
                bad += 1
        known = {c.name + ".data" for c in CASES}
        if not args.only:
            for f in sorted(os.listdir(args.out)):
                if f.endswith(".data") and f not in known:
                    print("EXTRA    %s (not produced by this generator)" % f)
        print("%d cases checked against Linux %s: %d differ or are missing" % (len(cases), platform.release(), bad))
        return 1 if bad else 0

    date = datetime.date.today().isoformat()
    for c in cases:
        with open(os.path.join(args.out, c.name + ".data"), "w") as f:
            f.write(render(c, results[c.name], method_text(c, date)))
    print("wrote %d files to %s" % (len(cases), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
