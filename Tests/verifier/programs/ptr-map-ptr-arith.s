# kernel: R1 pointer arithmetic on map_ptr prohibited
# Arithmetic on a map pointer.
# prog-type: xdp
# map: m:hash:4:8:16
    lddw %r1, map_idx 0
    add %r1, 8
    mov %r0, 0
    exit
