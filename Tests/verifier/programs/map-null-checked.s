# kernel: accept
# The same lookup, checked: accepted.
# prog-type: xdp
# map: m:hash:4:8:16
    lddw %r1, map_idx 0
    mov %r2, %r10
    add %r2, -4
    stw [%r10-4], 0
    call 1
    jeq %r0, 0, out
    ldxw %r0, [%r0+0]
    exit
out:
    mov %r0, 2
    exit
