# kernel: invalid shift 64
# A constant shift by 64.
# prog-type: xdp
    mov %r0, 1
    lsh %r0, 64
    exit
