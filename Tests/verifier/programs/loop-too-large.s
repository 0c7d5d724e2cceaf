# kernel: BPF program is too large. Processed 1000001 insn
# A bounded loop too long to verify: 1,000,000 instructions processed.
# prog-type: xdp
    mov %r1, 0
loop:
    add %r1, 1
    jlt %r1, 2000000, loop
    mov %r0, 0
    exit
