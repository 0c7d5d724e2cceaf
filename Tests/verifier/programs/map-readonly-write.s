# kernel: write into map forbidden, value_size=8 off=0 size=4
# Writes a map the program may only read (BPF_F_RDONLY_PROG).
# prog-type: xdp
# map: ro:array:4:8:1:0x80
    lddw %r1, map_idx 0
    mov %r2, %r10
    add %r2, -4
    stw [%r10-4], 0
    call 1
    jeq %r0, 0, out
    stw [%r0+0], 1
out:
    mov %r0, 0
    exit
