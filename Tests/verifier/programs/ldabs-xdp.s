# kernel: BPF_LD_[ABS|IND] instructions not allowed for this program type
# Legacy packet loads are for socket filters and tc.
# prog-type: xdp
    mov %r6, %r1
    ldabsb 0
    exit
