# kernel: invalid bpf_context access off=0 size=8
# A tracepoint's first 8 bytes are not readable.
# prog-type: tracepoint
    ldxdw %r0, [%r1+0]
    exit
