# kernel: R1 bitwise operator &= on pointer prohibited
# A bitwise operation on a pointer.
# prog-type: xdp
    and %r1, 7
    mov %r0, 0
    exit
