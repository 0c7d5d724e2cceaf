// LRU hashes: remember the most recent sources when there are more than fit.
//
// An LRU hash never refuses an insert: when it is full, it evicts an element it has
// not used recently. The kernel's LRU is approximate (active and inactive lists with a
// reference bit, per-CPU free lists, eviction in batches), so which sources survive is
// worth pinning down. `recent` is an LRU hash shared by all CPUs; `recent_percpu` is an
// LRU per-CPU hash, whose values are per CPU like any per-CPU map.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct source_stats {
	__u64 packets;
	__u64 last_length;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4);
	__type(key, __u32); // IPv4 source address
	__type(value, struct source_stats);
} recent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64); // packets from that source, per CPU
} recent_percpu SEC(".maps");

// Slot 0: lookups that hit in `recent`; slot 1: inserts; slot 2: failed inserts.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} lru_stats SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&lru_stats, &slot);
	if (value)
		*value += 1;
}

SEC("xdp")
int remember_sources(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	__u32 source = ip->saddr;

	struct source_stats *stats = bpf_map_lookup_elem(&recent, &source);
	if (stats) {
		stats->packets += 1;
		stats->last_length = data_end - data;
		count(0);
	} else {
		struct source_stats fresh = { .packets = 1, .last_length = data_end - data };
		if (bpf_map_update_elem(&recent, &source, &fresh, BPF_NOEXIST) == 0)
			count(1);
		else
			count(2);
	}

	__u64 *packets = bpf_map_lookup_elem(&recent_percpu, &source);
	if (packets) {
		*packets += 1;
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&recent_percpu, &source, &one, BPF_ANY);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
