# kernel: R1 type=scalar expected=ringbuf_mem
# Submits the same record twice.
# prog-type: xdp
# map: rb:ringbuf:0:0:4096
    lddw %r1, map_idx 0
    mov %r2, 8
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    mov %r6, %r0
    mov %r1, %r6
    mov %r2, 0
    call 132
    mov %r1, %r6
    mov %r2, 0
    call 132
out:
    mov %r0, 2
    exit
