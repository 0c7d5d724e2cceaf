// Refused: a packet pointer taken before bpf_xdp_adjust_head is used after it.
#include "common.h"
SEC("xdp")
int adjust_stale(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (bpf_xdp_adjust_head(ctx, 0))
		return XDP_DROP;
	return eth->h_proto == bpf_htons(ETH_P_IP) ? XDP_PASS : XDP_DROP;
}
char LICENSE[] SEC("license") = "GPL";
