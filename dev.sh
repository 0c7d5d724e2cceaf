#!/usr/bin/env bash
# bpfsim's one set-up script: installs the system packages bpfsim needs when they are
# missing (apt-get; sudo when not root), builds, then runs what was asked for.
#
#   ./dev.sh example   build and run the main job on the bundled example
#   ./dev.sh test      build and run the whole test suite (what CI runs)
#   ./dev.sh build     only install and build
#
# Needs the Swift toolchain (swift, and its clang, which has the BPF target) on PATH.
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(libelf-dev libpcap-dev libcapstone-dev libbpf-dev pkg-config)

install_missing() {
    local missing=()
    for package in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "dev.sh: installing ${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

command -v swift >/dev/null || { echo "dev.sh: swift is not on PATH; install the Swift toolchain first" >&2; exit 1; }

case "${1:-}" in
    example)
        install_missing
        swift build -c release --product bpfsim
        bin="$(swift build -c release --show-bin-path)/bpfsim"
        # The XDP load balancer example: its spec's packets and capture, on the interpreter
        # and the JIT, each verdict, rewritten frame and map checked (corpus/examples/l4lb).
        echo "\$ bpfsim test corpus/examples/l4lb --engine both"
        "$bin" test corpus/examples/l4lb --engine both
        ;;
    test)
        install_missing
        swift build --build-tests
        swift test
        ;;
    build)
        install_missing
        swift build
        ;;
    *)
        echo "usage: ./dev.sh example | test | build" >&2
        exit 2
        ;;
esac
