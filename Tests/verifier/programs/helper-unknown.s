# kernel: invalid func unknown#9999
# There is no helper 9999.
# prog-type: xdp
    call 9999
    mov %r0, 0
    exit
