# kernel: invalid access to packet, off=12 size=2, R2(id=0,off=12,r=12)
# Checks 12 bytes, reads 14.
# prog-type: xdp
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 12
    mov %r0, 1
    jgt %r4, %r3, out
    ldxh %r0, [%r2+12]
out:
    exit
