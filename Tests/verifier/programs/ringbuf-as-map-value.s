# kernel: accept
# A ring-buffer record passed as the value of bpf_map_update_elem.
# prog-type: xdp
# map: rb:ringbuf:0:0:4096
# map: m:hash:4:8:16
    lddw %r1, map_idx 0
    mov %r2, 8
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    mov %r6, %r0
    stdw [%r6+0], 1
    stw [%r10-4], 0
    lddw %r1, map_idx 1
    mov %r2, %r10
    add %r2, -4
    mov %r3, %r6
    mov %r4, 0
    call 2
    mov %r1, %r6
    mov %r2, 0
    call 133
out:
    mov %r0, 2
    exit
