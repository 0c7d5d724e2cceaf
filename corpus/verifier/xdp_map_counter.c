// Accepted: a per-CPU counter, NULL-checked, and a hash update.
#include "common.h"
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");
SEC("xdp")
int map_counter(struct xdp_md *ctx)
{
	__u32 key = ctx->rx_queue_index & 3;
	__u64 *value = bpf_map_lookup_elem(&stats, &key);
	if (!value)
		return XDP_ABORTED;
	*value += 1;
	__u32 ifindex = ctx->ingress_ifindex;
	__u64 one = 1;
	bpf_map_update_elem(&seen, &ifindex, &one, BPF_ANY);
	return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
