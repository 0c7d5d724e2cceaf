# kernel: R0 invalid mem access 'map_value_or_null'
# Uses a map lookup's result without a NULL check.
# prog-type: xdp
# map: m:hash:4:8:16
    lddw %r1, map_idx 0
    mov %r2, %r10
    add %r2, -4
    stw [%r10-4], 0
    call 1
    ldxw %r0, [%r0+0]
    exit
