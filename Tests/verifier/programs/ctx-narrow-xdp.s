# kernel: invalid bpf_context access off=0 size=1
# xdp_md fields are read with 4 bytes.
# prog-type: xdp
    ldxb %r0, [%r1+0]
    exit
