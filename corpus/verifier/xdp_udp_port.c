// Accepted: Ethernet, IPv4 with a variable header length, UDP destination port.
#include "common.h"
SEC("xdp")
int udp_port(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	__u32 ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return XDP_DROP;
	struct udphdr *udp = (void *)ip + ihl;
	if ((void *)(udp + 1) > data_end)
		return XDP_DROP;
	return udp->dest == bpf_htons(53) ? XDP_DROP : XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
