# kernel: accept
# A bounded loop: accepted.
# prog-type: xdp
    mov %r0, 0
    mov %r1, 0
loop:
    add %r0, %r1
    add %r1, 1
    jlt %r1, 100, loop
    exit
