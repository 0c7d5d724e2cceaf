// A tracepoint program the kernel's verifier refuses: it uses a map lookup's result
// without checking it for NULL. bpfsim trace refuses it too, unless --no-verify.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 1);
} calls SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int count_unchecked(void *ctx) {
    __u32 key = 0;
    __u64 *value = bpf_map_lookup_elem(&calls, &key);
    *value += 1;
    return 0;
}
