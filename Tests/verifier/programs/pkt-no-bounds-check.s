# kernel: invalid access to packet, off=12 size=2, R2(id=0,off=12,r=0)
# Reads the EtherType without checking the packet length.
# prog-type: xdp
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    ldxh %r0, [%r2+12]
    mov %r0, 2
    exit
