# kernel: cannot write into packet
# cgroup_skb programs may not write the packet.
# prog-type: cgroup_skb
    ldxw %r2, [%r1+76]
    ldxw %r3, [%r1+80]
    mov %r4, %r2
    add %r4, 4
    jgt %r4, %r3, out
    stw [%r2+0], 0
out:
    mov %r0, 1
    exit
