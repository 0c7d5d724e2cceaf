# kernel: unknown opcode 8d
# callx is not a kernel instruction.
# prog-type: xdp
    mov %r0, 0
    call %r0
    exit
