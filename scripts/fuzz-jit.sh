#!/usr/bin/env bash
# Differential fuzzing of the JIT against the interpreter, for as long as you like.
#
#   scripts/fuzz-jit.sh [SECONDS] [FIRST_SEED]
#
# Runs random well-formed programs (Sources/BPFFuzz) on both engines and prints every
# divergence as a reproducible case: its seed, the assembly and the input memory.
# `bpfsim fuzz-jit --seed N --show` replays one. Turn each finding into a test in
# Tests/BPFJITTests/RegressionTests.swift. Exits 1 if anything diverged.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
seed="${2:-$(date +%s)}"
swift build -c release --product bpfsim >/dev/null
exec "$(swift build -c release --show-bin-path)/bpfsim" fuzz-jit --seed "$seed" --count 0 --seconds "$seconds"
