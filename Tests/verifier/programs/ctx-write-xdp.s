# kernel: invalid bpf_context access off=12 size=4
# XDP programs may not write their context.
# prog-type: xdp
    stw [%r1+12], 0
    mov %r0, 0
    exit
