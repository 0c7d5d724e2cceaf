# kernel: invalid bpf_context access off=76 size=4
# Socket filters cannot reach the packet directly.
# prog-type: socket
    ldxw %r0, [%r1+76]
    exit
