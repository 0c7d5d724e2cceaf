# kernel: invalid size of register fill
# A saved pointer loaded back with 4 bytes.
# prog-type: xdp
    stxdw [%r10-8], %r1
    ldxw %r0, [%r10-8]
    exit
