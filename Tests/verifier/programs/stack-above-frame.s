# kernel: invalid read from stack R10 off=0 size=8
# Reads at r10, above the frame.
# prog-type: xdp
    ldxdw %r0, [%r10+0]
    exit
