# kernel: R1 32-bit pointer arithmetic prohibited
# 32-bit arithmetic on a pointer.
# prog-type: xdp
    add32 %r1, 4
    mov %r0, 0
    exit
