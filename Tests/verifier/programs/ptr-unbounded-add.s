# kernel: math between pkt pointer and register with unbounded min value is not allowed
# A packet pointer plus a number with no lower bound.
# prog-type: xdp
    mov %r6, %r1
    call 5
    ldxw %r2, [%r6+0]
    add %r2, %r0
    mov %r0, 0
    exit
