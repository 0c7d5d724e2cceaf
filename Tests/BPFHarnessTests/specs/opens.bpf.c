// Counts openat calls and records each name (up to 32 bytes) in a ring buffer, for the
// trace cases of the spec tests.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} opens SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} names SEC(".maps");

struct openat_args {
    unsigned long long common;
    long syscall_nr;
    long dfd;
    const char *filename;
    long flags;
    long mode;
};

SEC("tracepoint/syscalls/sys_enter_openat")
int count_opens(struct openat_args *ctx)
{
    __u32 zero = 0;
    __u64 *count = bpf_map_lookup_elem(&opens, &zero);
    if (count)
        __sync_fetch_and_add(count, 1);
    char *name = bpf_ringbuf_reserve(&names, 32, 0);
    if (!name)
        return 0;
    if (bpf_probe_read_user_str(name, 32, ctx->filename) < 0)
        name[0] = 0;
    bpf_ringbuf_submit(name, 0);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
