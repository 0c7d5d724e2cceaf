#!/usr/bin/env python3
"""Compare bpfsim's verifier with the running kernel's on generated XDP programs.

A development tool, not a test: it writes small random programs built from the shapes
real XDP code has (packet loads behind data_end checks of varying length, map lookups
with and without NULL checks, arithmetic that bounds or unbounds an offset, stack
spills, bounded loops), verifies each with `bpfsim verify --json` and with the kernel
(kernel_oracle.py verify), and prints every program where the verdicts or the first
error lines differ, false accepts first.

Usage (needs root): python3 Tests/verifier/compare.py [-n 300] [--seed 1] [--keep DIR]
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate  # noqa: E402


def program(rng):
    lines = ["# prog-type: xdp", "# map: m:array:4:16:4", "# map: h:hash:4:8:16",
             "    mov %r6, %r1", "    ldxw %r2, [%r6+0]", "    ldxw %r3, [%r6+4]", "    mov %r7, 0"]
    label = 0
    for _ in range(rng.randint(1, 6)):
        label += 1
        kind = rng.choice(["pkt", "pkt", "map", "alu", "stack", "loop", "signed", "ctx", "ringbuf", "spillpkt", "varstack"])
        if kind == "pkt":
            check = rng.randint(0, 40)
            off = rng.randint(0, 40)
            size = rng.choice(["b", "h", "w", "dw"])
            lines += ["    mov %r4, %r2", "    add %%r4, %d" % check,
                      "    %s %%r4, %%r3, l%d" % (rng.choice(["jgt", "jge", "jgt"]), label),
                      "    ldx%s %%r5, [%%r2+%d]" % (size, off), "    add %r7, %r5", "l%d:" % label]
        elif kind == "map":
            m = rng.randint(0, 1)
            lines += ["    stw [%%r10-4], %d" % rng.randint(0, 5), "    lddw %%r1, map_idx %d" % m,
                      "    mov %r2, %r10", "    add %r2, -4", "    call 1"]
            if rng.random() < 0.7:
                lines += ["    jeq %%r0, 0, l%d" % label]
            off = rng.choice([0, 4, 8, 12, 16])
            lines += ["    ldxw %%r5, [%%r0+%d]" % off, "    add %r7, %r5", "l%d:" % label]
        elif kind == "alu":
            mask = rng.choice([7, 15, 63, 255, 1023])
            lines += ["    ldxw %r5, [%r6+12]", "    %s %%r5, %d" % (rng.choice(["and", "mod", "rsh", "lsh"]), rng.choice([1, 3, mask])),
                      "    stw [%r10-4], 0", "    lddw %r1, map_idx 0", "    mov %r2, %r10", "    add %r2, -4", "    call 1",
                      "    jeq %%r0, 0, l%d" % label, "    ldxw %r5, [%r6+12]",
                      "    and %%r5, %d" % mask, "    add %r0, %r5", "    ldxb %r5, [%r0+0]", "    add %r7, %r5", "l%d:" % label]
        elif kind == "stack":
            off = rng.choice([8, 16, 24, 4, 12])
            lines += ["    stxdw [%%r10-%d], %%r2" % off if off % 8 == 0 else "    stxw [%%r10-%d], %%r7" % off,
                      "    ldxdw %%r2, [%%r10-%d]" % (off - off % 8 or 8)]
        elif kind == "signed":
            jump = rng.choice(["jsgt", "jsge", "jgt", "jsgt32", "jgt32", "jslt", "jset"])
            limit = rng.choice([0, 7, 15, 16, -1])
            lines += ["    ldxw %r5, [%r6+16]", "    %s %%r5, %d, l%d" % (jump, limit, label),
                      "    stw [%r10-4], 0", "    lddw %r1, map_idx 0", "    mov %r2, %r10", "    add %r2, -4", "    call 1",
                      "    jeq %%r0, 0, l%d" % label, "    ldxw %r5, [%r6+16]", "    %s %%r5, %d, l%d" % (jump, limit, label),
                      "    add %r0, %r5", "    ldxb %r5, [%r0+0]", "    add %r7, %r5", "l%d:" % label]
        elif kind == "ctx":
            off = rng.choice([0, 4, 8, 12, 16, 20, 24, 2])
            size = rng.choice(["w", "w", "h", "b", "dw"])
            lines += ["    ldx%s %%r5, [%%r6+%d]" % (size, off), "    add %r7, %r5"] if off not in (0, 4, 8) else ["    ldx%s %%r5, [%%r6+%d]" % (size, off)]
        elif kind == "ringbuf":
            if "# map: rb:ringbuf:0:0:4096" not in lines:
                lines.insert(3, "# map: rb:ringbuf:0:0:4096")
            size = rng.choice([8, 16])
            lines += ["    lddw %r1, map_idx 2", "    mov %%r2, %d" % size, "    mov %r3, 0", "    call 131"]
            if rng.random() < 0.8:
                lines += ["    jeq %%r0, 0, l%d" % label]
            lines += ["    stdw [%%r0+%d], 1" % rng.choice([0, 8]), "    mov %r1, %r0", "    mov %r2, 0"]
            if rng.random() < 0.85:
                lines += ["    call %d" % rng.choice([132, 133])]
            lines += ["l%d:" % label]
        elif kind == "spillpkt":
            lines += ["    mov %r4, %r2", "    add %r4, 20", "    jgt %%r4, %%r3, l%d" % label, "    stxdw [%r10-16], %r2",
                      "    ldxdw %r4, [%r10-16]", "    ldx%s %%r5, [%%r4+%d]" % (rng.choice(["b", "w"]), rng.choice([0, 16, 18])),
                      "    add %r7, %r5", "l%d:" % label]
        elif kind == "varstack":
            lines += ["    stdw [%r10-32], 0", "    stdw [%r10-24], 0", "    ldxw %r5, [%r6+12]", "    and %%r5, %d" % rng.choice([7, 15, 31]),
                      "    mov %r4, %r10", "    add %r4, -32", "    add %r4, %r5", "    ldxb %r5, [%r4+0]", "    add %r7, %r5"]
        else:
            bound = rng.choice([4, 16, 64])
            lines += ["    mov %r8, 0", "lp%d:" % label, "    mov %r4, %r2", "    add %r4, %r8", "    mov %r5, %r4", "    add %r5, 1",
                      "    jgt %%r5, %%r3, l%d" % label, "    ldxb %r5, [%r4+0]", "    add %r7, %r5", "    add %r8, 1",
                      "    jlt %%r8, %d, lp%d" % (bound, label), "l%d:" % label]
    lines += ["    mov %r0, %r7", "    and %r0, 3", "    exit"]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep")
    parser.add_argument("--oracle", default=generate.DEFAULT_ORACLE)
    parser.add_argument("--bpfsim", default=generate.DEFAULT_BPFSIM)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    directory = args.keep or tempfile.mkdtemp()
    os.makedirs(directory, exist_ok=True)
    false_accepts, false_rejects, lines_differ, agree = [], [], [], 0
    for i in range(args.n):
        path = os.path.join(directory, "p%04d.s" % i)
        open(path, "w").write(program(rng))
        kernel = generate.kernel_verdict(args.oracle, args.bpfsim, path)
        maps = [a for m in generate.header(open(path).read(), "map") for a in ("--map", m)]
        ours = subprocess.run([args.bpfsim, "verify", path] + maps + ["--json"],
                              capture_output=True, text=True)
        report = json.loads(ours.stdout)["programs"][0]
        mine = "accept" if report["verdict"] == "accept" else report["message"]
        if mine == kernel:
            agree += 1
        elif kernel == "accept":
            false_rejects.append((path, mine))
        elif mine == "accept":
            false_accepts.append((path, kernel))
        else:
            lines_differ.append((path, mine, kernel))
    print("%d programs: %d agree, %d false accepts, %d false rejects, %d refused with another first line"
          % (args.n, agree, len(false_accepts), len(false_rejects), len(lines_differ)))
    for path, kernel in false_accepts:
        print("FALSE ACCEPT %s: kernel says %s" % (path, kernel))
    for path, mine in false_rejects:
        print("FALSE REJECT %s: bpfsim says %s" % (path, mine))
    for path, mine, kernel in lines_differ:
        print("LINE %s: bpfsim %r, kernel %r" % (path, mine, kernel))
    return 1 if false_accepts else 0


if __name__ == "__main__":
    sys.exit(main())
