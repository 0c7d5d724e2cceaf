# kernel: R0 pointer arithmetic on map_value_or_null prohibited, null-check it first
# Pointer arithmetic before the NULL check.
# prog-type: xdp
# map: m:hash:4:8:16
    lddw %r1, map_idx 0
    mov %r2, %r10
    add %r2, -4
    stw [%r10-4], 0
    call 1
    add %r0, 4
    mov %r0, 0
    exit
