# Verifies the IPv4 header checksum of an Ethernet frame (RFC 1071).
# Input: r1 = frame, r2 = its length (bpfsim run's flat memory).
# Returns 1 if the header checksum is correct, 0 if not, 2 if the frame is not IPv4.
    mov %r0, 2
    jlt %r2, 34, done            # Ethernet (14) + minimal IPv4 header (20)
    ldxh %r3, [%r1+12]           # EtherType, network order
    be16 %r3
    jne %r3, 0x800, done
    ldxb %r4, [%r1+14]           # version and IHL
    and %r4, 15
    lsh %r4, 2                   # header length in bytes
    jlt %r4, 20, done
    mov %r5, %r4
    add %r5, 14
    jgt %r5, %r2, done           # header must fit in the frame
    mov %r5, 0                   # sum
    mov %r6, %r1
    add %r6, 14                  # header start
loop:
    ldxh %r7, [%r6]
    be16 %r7
    add %r5, %r7
    add %r6, 2
    sub %r4, 2
    jne %r4, 0, loop
fold:
    mov %r7, %r5
    rsh %r7, 16
    and %r5, 0xffff
    add %r5, %r7
    mov %r7, %r5
    rsh %r7, 16
    jne %r7, 0, fold
    mov %r0, 0
    jne %r5, 0xffff, done        # a correct header sums to 0xffff
    mov %r0, 1
done:
    exit
