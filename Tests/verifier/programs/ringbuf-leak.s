# kernel: Unreleased reference id=2 alloc_insn=4
# A reserved ring-buffer record is never submitted.
# prog-type: xdp
# map: rb:ringbuf:0:0:4096
    lddw %r1, map_idx 0
    mov %r2, 8
    mov %r3, 0
    call 131
    mov %r0, 0
    exit
