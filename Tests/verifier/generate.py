#!/usr/bin/env python3
"""Pin the Linux kernel's verdict on bpfsim's own verifier test programs.

Each program in programs/*.s is bpfsim assembly (docs/assembly.md) with a header:

    # prog-type: xdp                      the program type (kernel_oracle.py's names)
    # map: NAME:TYPE:KEY:VALUE:MAX[:FLAGS]  maps, in order; `lddw %r1, map_idx N` names the Nth
    # kernel: <the kernel's first error line>, or `accept`

This script assembles every program with bpfsim's own assembler (`bpfsim asm`; build
first, or pass --bpfsim), so map references are BPF_PSEUDO_MAP_IDX loads the kernel takes
with an fd array, and loads it into the running kernel through
../../../shared/tools/kernel_oracle.py (override with --oracle or $KERNEL_ORACLE), as a
privileged loader with no BTF, and writes the kernel's verdict into the `# kernel:` line:
`accept`, or the first line of the verifier log that is not an instruction or state
trace (the line a developer would search for). bpfsim's tests compare its verifier's
first line with the pinned one, so they pass without root.

Usage (needs root: bpf(2)):
    sudo python3 Tests/verifier/generate.py           # (re)write every `# kernel:` line
    sudo python3 Tests/verifier/generate.py --check   # report files whose pinned line differs
    options: --oracle PATH, --bpfsim PATH, -k SUBSTRING (only files whose name contains it)
Standard library only.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ORACLE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "tools", "kernel_oracle.py"))
DEFAULT_BPFSIM = os.path.normpath(os.path.join(HERE, "..", "..", ".build", "debug", "bpfsim"))

TRACE = re.compile(r"^(\d+: |from \d+ to \d+|;|\s*frame\d+:|R\d+(_w)?=|caller:|callee:|returning from|func#|Live regs|mark_precise|last_idx|regs=|parent|processed |verification time|stack depth|cur state|old state)")


def header(text, key):
    return [m.group(1).strip() for m in re.finditer(r"^#\s*%s:\s*(.*)$" % re.escape(key), text, re.M)]


def first_error_line(log):
    """The first line of the block of non-trace lines that ends the log."""
    lines = [l.rstrip() for l in log.splitlines() if l.strip()]
    while lines and lines[-1].startswith(("processed ", "verification time", "stack depth", "cur state", "old state")):
        lines.pop()
    block = []
    for line in reversed(lines):
        if TRACE.match(line):
            break
        block.append(line)
    block.reverse()
    return block[0] if block else (lines[0] if lines else "")


def kernel_verdict(oracle, bpfsim, path):
    text = open(path).read()
    prog_type = header(text, "prog-type")[0]
    maps = header(text, "map")
    with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as f:
        binary = f.name
    try:
        built = subprocess.run([bpfsim, "asm", path, "-o", binary], capture_output=True, text=True)
        if built.returncode != 0:
            raise SystemExit("%s: bpfsim asm failed:\n%s" % (path, built.stderr))
        args = [sys.executable, oracle, "verify", "--prog-type", prog_type, "--insns", binary, "--log-level", "1", "--json"]
        for m in maps:
            args += ["--map", m]
        out = subprocess.run(args, capture_output=True, text=True)
        try:
            result = json.loads(out.stdout)
        except ValueError:
            raise SystemExit("%s: the oracle failed:\n%s%s" % (path, out.stdout, out.stderr))
    finally:
        os.unlink(binary)
    if result["verdict"] == "ACCEPT":
        return "accept"
    return first_error_line(result.get("log", ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--oracle", default=os.environ.get("KERNEL_ORACLE", DEFAULT_ORACLE))
    parser.add_argument("--bpfsim", default=os.environ.get("BPFSIM", DEFAULT_BPFSIM))
    parser.add_argument("-k", default="")
    args = parser.parse_args()
    directory = os.path.join(HERE, "programs")
    differ = 0
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".s") or args.k not in name:
            continue
        path = os.path.join(directory, name)
        text = open(path).read()
        line = kernel_verdict(args.oracle, args.bpfsim, path)
        pinned = header(text, "kernel")
        if args.check:
            if not pinned or pinned[0] != line:
                differ += 1
                print("%s: pinned %r, kernel says %r" % (name, pinned[0] if pinned else None, line))
            continue
        if pinned:
            text = re.sub(r"^#\s*kernel:.*$", lambda m: "# kernel: " + line, text, count=1, flags=re.M)
        else:
            text = "# kernel: %s\n%s" % (line, text)
        open(path, "w").write(text)
        print("%s: %s" % (name, line))
    if args.check:
        print("%d file(s) differ" % differ)
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
