# kernel: invalid write to stack R10 off=-520 size=8
# Writes below the 512-byte frame.
# prog-type: xdp
    stdw [%r10-520], 0
    mov %r0, 0
    exit
