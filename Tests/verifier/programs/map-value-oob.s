# kernel: invalid access to map value, value_size=8 off=4 size=8
# Reads 8 bytes at offset 4 of an 8-byte value.
# prog-type: xdp
# map: m:array:4:8:16
    lddw %r1, map_idx 0
    mov %r2, %r10
    add %r2, -4
    stw [%r10-4], 0
    call 1
    jeq %r0, 0, out
    ldxdw %r0, [%r0+4]
out:
    mov %r0, 0
    exit
