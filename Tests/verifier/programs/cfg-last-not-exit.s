# kernel: last insn is not an exit or jmp
# Execution can run past the last instruction.
# prog-type: xdp
    mov %r0, 2
    ja +0
    mov %r0, 1
