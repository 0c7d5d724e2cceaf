# kernel: R0 invalid mem access 'ringbuf_mem_or_null'
# Writes a record before checking it against NULL.
# prog-type: xdp
# map: rb:ringbuf:0:0:4096
    lddw %r1, map_idx 0
    mov %r2, 8
    mov %r3, 0
    call 131
    stdw [%r0+0], 1
    mov %r0, 2
    exit
