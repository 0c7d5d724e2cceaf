# kernel: accept
# A branch the bounds decide: the refused access is on a dead path; accepted.
# prog-type: xdp
    ldxw %r2, [%r1+12]
    and %r2, 15
    jlt %r2, 16, ok
    ldxdw %r0, [%r2+0]
ok:
    mov %r0, 2
    exit
