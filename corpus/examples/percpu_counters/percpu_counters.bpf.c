// Per-CPU packet and byte counters by protocol.
//
// One slot per protocol class in a BPF_MAP_TYPE_PERCPU_ARRAY: each CPU adds to its own
// copy of the slot, with no atomic operation and no cache line shared between CPUs; a
// reader sums the copies. Every packet passes.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum proto_class {
	CLASS_OTHER,  // not IP (ARP, LLDP, ...)
	CLASS_TCP,    // IPv4 or IPv6
	CLASS_UDP,
	CLASS_ICMP,   // ICMP and ICMPv6
	CLASS_OTHER_IP,
	CLASS_MAX,
};

struct counters {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CLASS_MAX);
	__type(key, __u32);
	__type(value, struct counters);
} proto_stats SEC(".maps");

static __always_inline __u32 classify(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return CLASS_TCP;
	case IPPROTO_UDP:
		return CLASS_UDP;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return CLASS_ICMP;
	default:
		return CLASS_OTHER_IP;
	}
}

SEC("xdp")
int xdp_percpu_counters(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 slot = CLASS_OTHER;
	if ((void *)(eth + 1) <= data_end) {
		if (eth->h_proto == bpf_htons(ETH_P_IP)) {
			struct iphdr *ip = (void *)(eth + 1);
			if ((void *)(ip + 1) <= data_end)
				slot = classify(ip->protocol);
		} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
			struct ipv6hdr *ip6 = (void *)(eth + 1);
			if ((void *)(ip6 + 1) <= data_end)
				slot = classify(ip6->nexthdr);
		}
	}
	struct counters *c = bpf_map_lookup_elem(&proto_stats, &slot);
	if (c) {
		c->packets += 1; // this CPU's copy: no atomics needed
		c->bytes += data_end - data;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
