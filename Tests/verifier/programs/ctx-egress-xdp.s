# kernel: invalid bpf_context access off=20 size=4
# egress_ifindex is only for devmap programs.
# prog-type: xdp
    ldxw %r0, [%r1+20]
    exit
