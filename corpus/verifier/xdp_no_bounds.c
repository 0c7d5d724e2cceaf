// Refused: reads the EtherType without checking the packet is long enough.
#include "common.h"
SEC("xdp")
int no_bounds(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;
	return eth->h_proto == bpf_htons(ETH_P_IP) ? XDP_PASS : XDP_DROP;
}
char LICENSE[] SEC("license") = "GPL";
