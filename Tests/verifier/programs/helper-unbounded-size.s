# kernel: R2 min value is negative, either use unsigned or 'var &= const'
# bpf_probe_read_kernel with an unbounded size.
# prog-type: kprobe
    ldxdw %r2, [%r1+0]
    mov %r1, %r10
    add %r1, -64
    mov %r3, 0
    call 113
    mov %r0, 0
    exit
