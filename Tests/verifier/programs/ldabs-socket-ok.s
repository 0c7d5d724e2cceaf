# kernel: accept
# A legacy packet load in a socket filter: accepted.
# prog-type: socket
    mov %r6, %r1
    ldabsh 12
    exit
