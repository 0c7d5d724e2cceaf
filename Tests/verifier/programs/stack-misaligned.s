# kernel: misaligned stack access off 0+0+-12 size 8
# An 8-byte store at an offset that is not a multiple of 8.
# prog-type: xdp
    stdw [%r10-12], 0
    mov %r0, 0
    exit
