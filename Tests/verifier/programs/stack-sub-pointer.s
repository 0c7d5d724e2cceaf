# kernel: R3 subtraction from stack pointer prohibited
# Subtracting a variable from the stack pointer.
# prog-type: xdp
    ldxw %r2, [%r1+12]
    and %r2, 7
    mov %r3, %r10
    sub %r3, %r2
    mov %r0, 0
    exit
