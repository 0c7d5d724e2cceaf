// bpf_xdp_adjust_head: add and remove an IP-in-IP tunnel header.
//
// bpf_xdp_adjust_head(ctx, delta) moves the start of the packet: a negative delta adds
// room in front (the headroom), a positive one drops bytes from the front. Every packet
// pointer is invalid afterwards and must be read again from ctx.
//
// Packets to 10.0.0.0/24 are encapsulated: a new outer IPv4 header (protocol 4, IPIP)
// from the tunnel's local address to its remote one goes between the Ethernet header
// and the original IP header. IPIP packets are decapsulated: the outer header goes.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

const volatile __u32 tunnel_local = 0xc6336401;  // 198.51.100.1
const volatile __u32 tunnel_remote = 0xcb007105; // 203.0.113.5

// 0: encapsulated, 1: decapsulated, 2: the last adjust_head error.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __s64);
} tunnel_stats SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__s64 *entry = bpf_map_lookup_elem(&tunnel_stats, &slot);
	if (entry)
		*entry += 1;
}

static __always_inline void failed(long err)
{
	__u32 slot = 2;
	__s64 *entry = bpf_map_lookup_elem(&tunnel_stats, &slot);
	if (entry)
		*entry = err;
}

static __always_inline __u16 ip_checksum(struct iphdr *ip)
{
	__u64 sum = bpf_csum_diff(NULL, 0, (__be32 *)ip, sizeof(*ip), 0);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

static __always_inline int encapsulate(struct xdp_md *ctx, __u16 inner_length)
{
	long err = bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr));
	if (err) {
		failed(err);
		return XDP_ABORTED;
	}
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *new_eth = data;
	struct ethhdr *old_eth = data + sizeof(struct iphdr);
	struct iphdr *outer = (void *)(new_eth + 1);
	if ((void *)(outer + 1) > data_end || (void *)(old_eth + 1) > data_end)
		return XDP_ABORTED;
	__builtin_memmove(new_eth, old_eth, sizeof(*new_eth)); // the Ethernet header stays first

	outer->version = 4;
	outer->ihl = 5;
	outer->tos = 0;
	outer->tot_len = bpf_htons(sizeof(struct iphdr) + inner_length);
	outer->id = 0;
	outer->frag_off = bpf_htons(0x4000); // don't fragment
	outer->ttl = 64;
	outer->protocol = IPPROTO_IPIP;
	outer->check = 0;
	outer->saddr = bpf_htonl(tunnel_local);
	outer->daddr = bpf_htonl(tunnel_remote);
	outer->check = ip_checksum(outer);
	count(0);
	return XDP_TX;
}

static __always_inline int decapsulate(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ethhdr *moved = data + sizeof(struct iphdr);
	if ((void *)(moved + 1) > data_end)
		return XDP_DROP;
	__builtin_memmove(moved, eth, sizeof(*eth));
	long err = bpf_xdp_adjust_head(ctx, sizeof(struct iphdr));
	if (err) {
		failed(err);
		return XDP_ABORTED;
	}
	count(1);
	return XDP_PASS;
}

SEC("xdp")
int ipip_tunnel(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return XDP_PASS;
	if (ip->protocol == IPPROTO_IPIP)
		return decapsulate(ctx);
	if ((bpf_ntohl(ip->daddr) & 0xffffff00) == 0x0a000000) // 10.0.0.0/24
		return encapsulate(ctx, bpf_ntohs(ip->tot_len));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
