# kernel: unreachable insn 2
# Dead code after the exit.
# prog-type: xdp
    mov %r0, 2
    exit
    mov %r0, 1
    exit
