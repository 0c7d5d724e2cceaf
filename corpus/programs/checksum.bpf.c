// bpf_csum_diff: IPv4, TCP and UDP checksums, checked and updated.
//
// bpf_csum_diff(from, from_size, to, to_size, seed) returns the 32-bit ones'-complement
// sum of `to` minus `from`, plus `seed`, not yet folded to 16 bits. With no `from` it
// sums a buffer: fold it and complement it and you have the Internet checksum. With
// both it updates a checksum incrementally when a few words change.
//
// The program acts as a tiny router with destination NAT: it drops IPv4 packets whose
// header checksum is wrong, decrements the TTL, rewrites the destination address
// 10.0.0.2 to 192.168.1.2, recomputes the header checksum from scratch and updates
// the TCP or UDP checksum incrementally (the address is in their pseudo header).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

static __always_inline __u16 fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

// 0: packets with a bad header checksum, 1: rewritten packets,
// 2: the last full-header sum bpf_csum_diff returned (unfolded).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} checksum_stats SEC(".maps");

static __always_inline void note(__u32 slot, __u64 value, int add)
{
	__u64 *entry = bpf_map_lookup_elem(&checksum_stats, &slot);
	if (entry)
		*entry = add ? *entry + value : value;
}

SEC("xdp")
int nat_router(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return XDP_PASS;

	// A correct header sums (checksum field included) to 0xffff.
	__s64 sum = bpf_csum_diff(NULL, 0, (__be32 *)ip, sizeof(*ip), 0);
	note(2, sum, 0);
	if (fold(sum) != 0xffff) {
		note(0, 1, 1);
		return XDP_DROP;
	}
	if (ip->ttl <= 1)
		return XDP_DROP;

	ip->ttl--;
	__be32 old_daddr = ip->daddr;
	__be32 new_daddr = old_daddr;
	if (old_daddr == bpf_htonl(0x0a000002)) // 10.0.0.2
		new_daddr = bpf_htonl(0xc0a80102); // 192.168.1.2
	ip->daddr = new_daddr;

	ip->check = 0;
	ip->check = ~fold(bpf_csum_diff(NULL, 0, (__be32 *)ip, sizeof(*ip), 0));

	// The TCP and UDP checksums cover the addresses too (the pseudo header): update
	// them by the difference between the old and the new address. (A UDP checksum of 0
	// means "none" and stays 0.)
	if (new_daddr != old_daddr) {
		__u16 *check = NULL;
		if (ip->protocol == IPPROTO_TCP) {
			struct tcphdr *tcp = (void *)(ip + 1);
			if ((void *)(tcp + 1) > data_end)
				return XDP_DROP;
			check = &tcp->check;
		} else if (ip->protocol == IPPROTO_UDP) {
			struct udphdr *udp = (void *)(ip + 1);
			if ((void *)(udp + 1) > data_end)
				return XDP_DROP;
			if (udp->check)
				check = &udp->check;
		}
		if (check) {
			__s64 diff = bpf_csum_diff(&old_daddr, 4, &new_daddr, 4, ~*check & 0xffff);
			*check = ~fold(diff);
		}
	}
	note(1, 1, 1);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
