# kernel: R3 invalid mem access 'pkt_end'
# data_end can only be compared.
# prog-type: xdp
    ldxw %r3, [%r1+4]
    ldxb %r0, [%r3+0]
    exit
