# kernel: map 'm' has to have BTF in order to use bpf_spin_lock
# bpf_spin_lock needs the map's BTF.
# prog-type: tc
# map: m:array:4:8:1
    lddw %r1, map_idx 0
    mov %r2, %r10
    add %r2, -4
    stw [%r10-4], 0
    call 1
    jeq %r0, 0, out
    mov %r1, %r0
    call 93
out:
    mov %r0, 0
    exit
