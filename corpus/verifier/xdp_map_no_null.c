// Refused: uses a hash map lookup's result without checking it against NULL.
#include "common.h"
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");
SEC("xdp")
int map_no_null(struct xdp_md *ctx)
{
	__u32 key = ctx->ingress_ifindex;
	__u64 *value = bpf_map_lookup_elem(&counts, &key);
	*value += 1;
	return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
