// Accepted: the same index, checked against the array's length.
#include "common.h"
struct table { __u64 slots[16]; };
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct table);
} tables SEC(".maps");
SEC("xdp")
int value_index_checked(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct table *t = bpf_map_lookup_elem(&tables, &key);
	if (!t)
		return XDP_PASS;
	__u32 i = ctx->rx_queue_index;
	if (i >= 16)
		return XDP_PASS;
	t->slots[i] += 1;
	return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
