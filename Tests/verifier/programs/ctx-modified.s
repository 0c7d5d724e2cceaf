# kernel: dereference of modified ctx ptr R1 off=4 disallowed
# The context through a moved pointer.
# prog-type: xdp
    add %r1, 4
    ldxw %r0, [%r1+0]
    exit
