# kernel: R1 type=scalar expected=map_ptr
# A number where a map is expected.
# prog-type: xdp
    mov %r1, 0
    mov %r2, %r10
    add %r2, -8
    call 1
    mov %r0, 0
    exit
