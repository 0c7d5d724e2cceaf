# kernel: value -2147483648 makes pkt pointer be out of bounds
# A packet pointer plus a number that may be -2^31.
# prog-type: xdp
    mov %r6, %r1
    call 7
    ldxw %r2, [%r6+0]
    mov %r3, %r0
    lsh %r3, 32
    arsh %r3, 32
    add %r2, %r3
    mov %r0, 0
    exit
