# kernel: R2 type=ctx expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_
# The context is not memory a map key may be read from.
# prog-type: xdp
# map: m:hash:4:8:16
    mov %r6, %r1
    lddw %r1, map_idx 0
    mov %r2, %r6
    call 1
    mov %r0, 2
    exit
