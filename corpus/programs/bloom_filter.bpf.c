// Bloom filter: a compact "have I seen this before?" set.
//
// bpf_map_push_elem adds a value; bpf_map_peek_elem answers 0 when the value may be in
// the set and -ENOENT when it certainly is not (false positives are possible, false
// negatives are not). The filter hashes each value with `map_extra` hash functions
// (here 3); BPF_F_ZERO_SEED makes the hashes the same on every load, so the answers
// are reproducible.
//
// Control packets (UDP to port 9999) add their source address to the set of known
// hosts; other packets from known hosts pass, the rest are dropped.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_ZERO_SEED);
	__uint(map_extra, 3); // hash functions
	__type(value, __u32);
} known_hosts SEC(".maps");

// 0: hosts added, 1: packets from maybe-known hosts, 2: from unknown hosts,
// 3: the last peek's return value.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __s64);
} answers SEC(".maps");

static __always_inline void add(__u32 slot, __s64 amount, int replace)
{
	__s64 *entry = bpf_map_lookup_elem(&answers, &slot);
	if (entry)
		*entry = replace ? amount : *entry + amount;
}

SEC("xdp")
int admit_known_hosts(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return XDP_PASS;
	__u32 source = ip->saddr;

	struct udphdr *udp = (void *)(ip + 1);
	if (ip->protocol == IPPROTO_UDP && (void *)(udp + 1) <= data_end && udp->dest == bpf_htons(9999)) {
		if (bpf_map_push_elem(&known_hosts, &source, BPF_ANY) == 0)
			add(0, 1, 0);
		return XDP_DROP;
	}

	long seen = bpf_map_peek_elem(&known_hosts, &source);
	add(3, seen, 1);
	if (seen == 0) {
		add(1, 1, 0);
		return XDP_PASS;
	}
	add(2, 1, 0);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
