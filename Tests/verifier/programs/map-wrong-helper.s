# kernel: invalid zero-sized read
# A ring buffer cannot be looked up.
# prog-type: xdp
# map: rb:ringbuf:0:0:4096
    lddw %r1, map_idx 0
    mov %r2, %r10
    add %r2, -4
    stw [%r10-4], 0
    call 1
    mov %r0, 0
    exit
