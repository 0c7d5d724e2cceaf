# kernel: program of this type cannot use helper bpf_xdp_adjust_head#44
# bpf_xdp_adjust_head is for XDP only.
# prog-type: socket
    mov %r2, 0
    call 44
    mov %r0, 0
    exit
