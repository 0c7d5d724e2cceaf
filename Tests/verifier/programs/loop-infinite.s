# kernel: infinite loop detected at insn 1
# A loop whose state never changes.
# prog-type: xdp
    mov %r0, 0
loop:
    mov %r1, 0
    jeq %r1, 0, loop
    exit
