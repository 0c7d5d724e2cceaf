# kernel: value -2147483648 makes map_value pointer be out of bounds
# A signed check leaves the index possibly negative.
# prog-type: xdp
# map: m:array:4:64:1
    ldxw %r6, [%r1+12]
    movsx3264 %r6, %r6
    lddw %r1, map_idx 0
    mov %r2, %r10
    add %r2, -4
    stw [%r10-4], 0
    call 1
    jeq %r0, 0, out
    jsgt %r6, 63, out
    add %r0, %r6
    ldxb %r0, [%r0+0]
out:
    mov %r0, 0
    exit
