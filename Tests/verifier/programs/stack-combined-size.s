# kernel: combined stack size of 2 calls is 576. Too large
# Two frames using 512 + 64 bytes of stack.
# prog-type: xdp
    stdw [%r10-512], 0
    call local f
    mov %r0, 0
    exit
f:
    stdw [%r10-64], 0
    mov %r0, 0
    exit
