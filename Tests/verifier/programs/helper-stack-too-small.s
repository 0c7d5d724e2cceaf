# kernel: invalid write to stack R1 off=-8 size=16
# A 16-byte helper buffer at fp-8.
# prog-type: kprobe
    mov %r1, %r10
    add %r1, -8
    mov %r2, 16
    call 16
    mov %r0, 0
    exit
