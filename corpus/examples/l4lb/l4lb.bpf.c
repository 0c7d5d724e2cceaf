// An XDP layer-4 load balancer.
//
// A packet to a virtual service (VIP, port, protocol) in `services` goes to one of the
// service's backends: the backend is picked by a hash of the flow (addresses, ports,
// protocol), so every packet of a connection lands on the same backend. The packet is
// encapsulated in IP-in-IP (a new outer IPv4 header from this balancer's address to the
// backend's, with its checksum) and sent back out of the interface it came in on
// (XDP_TX), its Ethernet header rewritten to the backend's next hop. Anything else passes
// to the kernel. Only IPv4 TCP and UDP, without IP options, are balanced.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_BACKENDS 64

struct service_key {
	__be32 vip;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct service {
	__u32 first; // index of its first backend in `backends`
	__u32 count; // how many consecutive backends serve it
};

struct backend {
	__be32 addr;        // the tunnel's far end
	__u8 mac[ETH_ALEN]; // the next hop towards it
	__u16 pad;
};

struct backend_stats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct service_key);
	__type(value, struct service);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend_stats);
} stats SEC(".maps");

// 0: this balancer's own address (the outer source), network order.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __be32);
} config SEC(".maps");

// A 32-bit mix of the 5-tuple (the murmur3 finalizer over a few rounds).
static __always_inline __u32 mix(__u32 h, __u32 v)
{
	h ^= v;
	h *= 0xcc9e2d51;
	h = (h << 15) | (h >> 17);
	h *= 0x1b873593;
	return h;
}

static __always_inline __u32 flow_hash(__be32 saddr, __be32 daddr, __u32 ports, __u8 proto)
{
	__u32 h = mix(0x9747b28c, saddr);
	h = mix(h, daddr);
	h = mix(h, ports);
	h = mix(h, proto);
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	return h;
}

// The Internet checksum of a 20-byte IPv4 header (RFC 1071).
static __always_inline __u16 ipv4_checksum(const struct iphdr *ip)
{
	const __u16 *words = (const __u16 *)ip;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < (int)sizeof(*ip) / 2; i++)
		sum += words[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int xdp_l4lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->ihl != 5 || (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP))
		return XDP_PASS;
	// TCP and UDP both start with the two ports.
	__be16 *ports = (void *)(ip + 1);
	if ((void *)(ports + 2) > data_end)
		return XDP_PASS;

	struct service_key key = {.vip = ip->daddr, .port = ports[1], .proto = ip->protocol};
	struct service *svc = bpf_map_lookup_elem(&services, &key);
	if (!svc || svc->count == 0)
		return XDP_PASS;
	__u32 hash = flow_hash(ip->saddr, ip->daddr, ((__u32)ports[0] << 16) | ports[1], ip->protocol);
	__u32 index = svc->first + hash % svc->count;
	struct backend *be = bpf_map_lookup_elem(&backends, &index);
	__u32 zero = 0;
	__be32 *self = bpf_map_lookup_elem(&config, &zero);
	if (!be || !self)
		return XDP_ABORTED;

	__u16 inner_length = bpf_ntohs(ip->tot_len);
	__u8 inner_tos = ip->tos;
	struct backend_stats *st = bpf_map_lookup_elem(&stats, &index);
	if (st) {
		__sync_fetch_and_add(&st->packets, 1);
		__sync_fetch_and_add(&st->bytes, (__u64)(data_end - data));
	}

	// Room for the outer header in front; every packet pointer must be read again.
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *new_eth = data;
	struct ethhdr *old_eth = data + sizeof(struct iphdr);
	struct iphdr *outer = (void *)(new_eth + 1);
	if ((void *)(outer + 1) > data_end || (void *)(old_eth + 1) > data_end)
		return XDP_ABORTED;

	// The frame leaves from this host (the old destination MAC) to the backend's next hop.
	__u8 our_mac[ETH_ALEN];
	__builtin_memcpy(our_mac, old_eth->h_dest, ETH_ALEN);
	__builtin_memcpy(new_eth->h_source, our_mac, ETH_ALEN);
	__builtin_memcpy(new_eth->h_dest, be->mac, ETH_ALEN);
	new_eth->h_proto = bpf_htons(ETH_P_IP);

	outer->version = 4;
	outer->ihl = 5;
	outer->tos = inner_tos;
	outer->tot_len = bpf_htons(sizeof(struct iphdr) + inner_length);
	outer->id = 0;
	outer->frag_off = bpf_htons(0x4000); // don't fragment
	outer->ttl = 64;
	outer->protocol = IPPROTO_IPIP;
	outer->check = 0;
	outer->saddr = *self;
	outer->daddr = be->addr;
	outer->check = ipv4_checksum(outer);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
