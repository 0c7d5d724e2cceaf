// An XDP DDoS filter.
//
// Every IPv4 and IPv6 packet is looked up by its source address in a longest-prefix-match
// blocklist (one LPM trie per family); a match is dropped. Packets that pass are counted
// per source (packets and bytes), and a source that sends more than `config[0]` packets
// within one second is dropped until the second is over (0 turns the limit off). Other
// EtherTypes (ARP, LLDP, ...) pass untouched. One 802.1Q tag is skipped.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define NSEC_PER_SEC 1000000000ULL

struct vlan_tag {
	__be16 tci;
	__be16 encapsulated_proto;
};

struct lpm_v4 {
	__u32 prefixlen; // in bits
	__u8 addr[4];    // network order
};

struct lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

// A source address: IPv4 as ::ffff:a.b.c.d, so one table holds both families.
struct source {
	__u8 addr[16];
};

struct source_counters {
	__u64 packets;
	__u64 bytes;
	__u64 dropped; // by the rate limit
};

struct rate_window {
	__u64 start_ns;
	__u64 packets;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct lpm_v4);
	__type(value, __u32); // a rule number, for the operator
	__uint(map_flags, BPF_F_NO_PREALLOC);
} blocklist_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct lpm_v6);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} blocklist_v6 SEC(".maps");

// Per-source counters. Exact, so tests can check them.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct source);
	__type(value, struct source_counters);
} sources SEC(".maps");

// The current one-second window per source (holds clock values, so kept apart).
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct source);
	__type(value, struct rate_window);
} windows SEC(".maps");

// 0: packets per second allowed per source (0: no limit).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} config SEC(".maps");

enum { STAT_PASSED, STAT_BLOCKLISTED, STAT_RATE_LIMITED, STAT_NOT_IP, STAT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&stats, &slot);
	if (value)
		__sync_fetch_and_add(value, 1);
}

// True when the source has used up its packets for the current second.
static __always_inline int over_limit(struct source *src)
{
	__u32 zero = 0;
	__u64 *limit = bpf_map_lookup_elem(&config, &zero);
	if (!limit || *limit == 0)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	struct rate_window *window = bpf_map_lookup_elem(&windows, src);
	if (!window || now - window->start_ns >= NSEC_PER_SEC) {
		struct rate_window fresh = {.start_ns = now, .packets = 1};
		bpf_map_update_elem(&windows, src, &fresh, BPF_ANY);
		return 0;
	}
	window->packets += 1;
	return window->packets > *limit;
}

static __always_inline int account(struct source *src, __u64 bytes)
{
	int limited = over_limit(src);
	struct source_counters *counters = bpf_map_lookup_elem(&sources, src);
	if (!counters) {
		struct source_counters fresh = {};
		bpf_map_update_elem(&sources, src, &fresh, BPF_NOEXIST);
		counters = bpf_map_lookup_elem(&sources, src);
		if (!counters)
			return XDP_PASS;
	}
	counters->packets += 1;
	counters->bytes += bytes;
	if (limited) {
		counters->dropped += 1;
		count(STAT_RATE_LIMITED);
		return XDP_DROP;
	}
	count(STAT_PASSED);
	return XDP_PASS;
}

SEC("xdp")
int xdp_ddos(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP; // a runt frame
	__u16 proto = eth->h_proto;
	void *l3 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_tag *tag = l3;
		if ((void *)(tag + 1) > data_end)
			return XDP_DROP;
		proto = tag->encapsulated_proto;
		l3 = tag + 1;
	}

	struct source src = {};
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > data_end)
			return XDP_DROP;
		struct lpm_v4 key = {.prefixlen = 32};
		__builtin_memcpy(key.addr, &ip->saddr, 4);
		if (bpf_map_lookup_elem(&blocklist_v4, &key)) {
			count(STAT_BLOCKLISTED);
			return XDP_DROP;
		}
		src.addr[10] = 0xff;
		src.addr[11] = 0xff;
		__builtin_memcpy(&src.addr[12], &ip->saddr, 4);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > data_end)
			return XDP_DROP;
		struct lpm_v6 key = {.prefixlen = 128};
		__builtin_memcpy(key.addr, &ip6->saddr, 16);
		if (bpf_map_lookup_elem(&blocklist_v6, &key)) {
			count(STAT_BLOCKLISTED);
			return XDP_DROP;
		}
		__builtin_memcpy(src.addr, &ip6->saddr, 16);
	} else {
		count(STAT_NOT_IP);
		return XDP_PASS;
	}
	return account(&src, bytes);
}

char LICENSE[] SEC("license") = "GPL";
