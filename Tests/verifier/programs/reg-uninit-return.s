# kernel: R0 !read_ok
# r0 is returned without being set.
# prog-type: xdp
    mov %r1, 0
    exit
