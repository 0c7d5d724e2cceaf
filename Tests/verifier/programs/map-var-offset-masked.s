# kernel: accept
# The same index, masked to the value: accepted.
# prog-type: xdp
# map: m:array:4:64:1
    ldxw %r6, [%r1+12]
    and %r6, 63
    lddw %r1, map_idx 0
    mov %r2, %r10
    add %r2, -4
    stw [%r10-4], 0
    call 1
    jeq %r0, 0, out
    add %r0, %r6
    ldxb %r0, [%r0+0]
out:
    mov %r0, 0
    exit
