# kernel: accept
# tc programs may set skb->mark: accepted.
# prog-type: tc
    stw [%r1+8], 7
    ldxb %r0, [%r1+0]
    mov %r0, 0
    exit
