# kernel: R2 !read_ok
# r1-r5 do not survive a helper call.
# prog-type: xdp
    call 5
    mov %r0, %r2
    exit
