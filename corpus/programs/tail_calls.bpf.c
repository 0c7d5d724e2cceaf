// Prog array and tail calls: a dispatcher that jumps to one program per protocol.
//
// bpf_tail_call(ctx, &prog_array, index) replaces the running program with the one in
// that slot: it does not return. When the slot is empty the call fails and the caller
// simply continues, so the code after a tail call is the fallback. The slots are filled
// when the object is loaded, from `.values` (libbpf does this; so does bpfsim).
// Programs reached by a tail call can tail-call again (here IPv4 hands TCP on).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum slot {
	SLOT_IPV4 = 0,
	SLOT_IPV6 = 1,
	SLOT_ARP = 2, // left empty: ARP falls through to the dispatcher's fallback
	SLOT_TCP = 3,
	SLOT_COUNT = 4,
};

// Who handled how many packets: one counter per slot, and SLOT_COUNT for the fallback.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOT_COUNT + 1);
	__type(key, __u32);
	__type(value, __u64);
} handled SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&handled, &slot);
	if (value)
		*value += 1;
}

int handle_ipv4(struct xdp_md *ctx);
int handle_ipv6(struct xdp_md *ctx);
int handle_tcp(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, SLOT_COUNT);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} handlers SEC(".maps") = {
	.values = {
		[SLOT_IPV4] = (void *)&handle_ipv4,
		[SLOT_IPV6] = (void *)&handle_ipv6,
		[SLOT_TCP] = (void *)&handle_tcp,
	},
};

SEC("xdp")
int handle_tcp(struct xdp_md *ctx)
{
	count(SLOT_TCP);
	return XDP_TX;
}

SEC("xdp")
int handle_ipv4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	count(SLOT_IPV4);
	if (ip->protocol == IPPROTO_TCP)
		bpf_tail_call(ctx, &handlers, SLOT_TCP);
	return XDP_PASS;
}

SEC("xdp")
int handle_ipv6(struct xdp_md *ctx)
{
	count(SLOT_IPV6);
	return XDP_DROP;
}

SEC("xdp")
int dispatch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;

	switch (bpf_ntohs(eth->h_proto)) {
	case ETH_P_IP:
		bpf_tail_call(ctx, &handlers, SLOT_IPV4);
		break;
	case ETH_P_IPV6:
		bpf_tail_call(ctx, &handlers, SLOT_IPV6);
		break;
	case ETH_P_ARP:
		bpf_tail_call(ctx, &handlers, SLOT_ARP); // empty slot: returns
		break;
	default:
		bpf_tail_call(ctx, &handlers, 1000); // past max_entries: returns
		break;
	}
	count(SLOT_COUNT);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
