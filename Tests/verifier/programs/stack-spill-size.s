# kernel: invalid size of register spill
# A pointer saved to the stack with 4 bytes.
# prog-type: xdp
    stxw [%r10-8], %r1
    mov %r0, 0
    exit
