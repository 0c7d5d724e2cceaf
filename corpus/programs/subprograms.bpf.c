// BPF-to-BPF calls: a parser split into functions.
//
// Functions marked __noinline stay real calls (`call` to another function of the same
// program): each has its own 512-byte stack frame, arguments travel in r1-r5 and the
// result in r0, and r6-r9 survive the call. A caller may pass a pointer to its own
// stack (here the parse cursor). Static functions are checked by the verifier as part
// of each call site; the global function `port_class` is checked once, on its own, so
// it may only take scalars (or pointers to memory it is told the size of).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct cursor {
	void *position;
	void *end;
};

struct parsed {
	__u32 ethertype;
	__u32 l4_protocol;
	__u32 source_port;
	__u32 dest_port;
	__u32 port_class;
	__u32 depth; // how many headers were parsed
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct parsed);
} last_parse SEC(".maps");

// 0: well known, 1: registered, 2: dynamic. A global function: verified on its own.
__noinline int port_class(__u32 port)
{
	if (port < 1024)
		return 0;
	if (port < 49152)
		return 1;
	return 2;
}

static __noinline int parse_ethernet(struct cursor *cursor, struct parsed *out)
{
	struct ethhdr *eth = cursor->position;
	if ((void *)(eth + 1) > cursor->end)
		return -1;
	cursor->position = eth + 1;
	out->ethertype = bpf_ntohs(eth->h_proto);
	out->depth++;
	return out->ethertype;
}

static __noinline int parse_ports(struct cursor *cursor, struct parsed *out)
{
	struct udphdr *ports = cursor->position; // TCP and UDP start with the ports
	if ((void *)(ports + 1) > cursor->end)
		return -1;
	out->source_port = bpf_ntohs(ports->source);
	out->dest_port = bpf_ntohs(ports->dest);
	out->port_class = port_class(out->dest_port);
	out->depth++;
	return 0;
}

static __noinline int parse_ip(struct cursor *cursor, struct parsed *out, int ethertype)
{
	if (ethertype == ETH_P_IP) {
		struct iphdr *ip = cursor->position;
		if ((void *)(ip + 1) > cursor->end)
			return -1;
		cursor->position = (void *)ip + ip->ihl * 4;
		out->l4_protocol = ip->protocol;
	} else if (ethertype == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = cursor->position;
		if ((void *)(ip6 + 1) > cursor->end)
			return -1;
		cursor->position = ip6 + 1;
		out->l4_protocol = ip6->nexthdr;
	} else {
		return -1;
	}
	out->depth++;
	if (out->l4_protocol == IPPROTO_TCP || out->l4_protocol == IPPROTO_UDP)
		return parse_ports(cursor, out); // a call three frames deep
	return 0;
}

SEC("xdp")
int parse_headers(struct xdp_md *ctx)
{
	struct cursor cursor = {
		.position = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	struct parsed parsed = {};
	int ethertype = parse_ethernet(&cursor, &parsed);
	int result = ethertype < 0 ? -1 : parse_ip(&cursor, &parsed, ethertype);

	__u32 zero = 0;
	bpf_map_update_elem(&last_parse, &zero, &parsed, BPF_ANY);
	if (result < 0)
		return XDP_DROP;
	return parsed.port_class == 0 ? XDP_PASS : XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
