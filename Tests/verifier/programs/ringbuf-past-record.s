# kernel: invalid access to memory, mem_size=8 off=4 size=8
# Writes past the 8 bytes reserved.
# prog-type: xdp
# map: rb:ringbuf:0:0:4096
    lddw %r1, map_idx 0
    mov %r2, 8
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    stdw [%r0+4], 1
    mov %r1, %r0
    mov %r2, 0
    call 133
out:
    mov %r0, 2
    exit
