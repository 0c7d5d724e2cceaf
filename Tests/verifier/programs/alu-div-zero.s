# kernel: div by zero
# Division by the constant 0.
# prog-type: xdp
    mov %r0, 1
    div %r0, 0
    exit
