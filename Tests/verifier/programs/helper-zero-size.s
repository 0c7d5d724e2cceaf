# kernel: R2 invalid zero-sized read: u64=[0,0]
# bpf_trace_printk with a size that may be 0.
# prog-type: xdp
    stdw [%r10-8], 0
    mov %r1, %r10
    add %r1, -8
    ldxw %r2, [%r1+0]
    and %r2, 7
    call 6
    mov %r0, 0
    exit
