// LPM trie: drop packets from blocked IPv4 prefixes.
//
// The blocklist is a longest-prefix-match trie keyed by {prefix length, address}. A
// lookup with a full /32 key finds the most specific prefix that contains the address.
// The rules come from "control" packets, UDP to port 9999 carrying
// {u32 prefix length, 4 address bytes, u32 rule id, u32 remove}, the way a control
// plane would install them; the trie requires BPF_F_NO_PREALLOC.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define CONTROL_PORT 9999

struct ipv4_prefix {
	__u32 prefixlen; // in bits; the trie compares this many leading bits of addr
	__u8 addr[4];
};

struct rule {
	__u32 id;
	__u32 hits;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ipv4_prefix);
	__type(value, struct rule);
} blocklist SEC(".maps");

struct control {
	__u32 prefixlen;
	__u8 addr[4];
	__u32 id;
	__u32 remove;
};

// 0: passed, 1: dropped, 2: last result of a rule update or delete (signed),
// 3: id of the last rule that matched.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __s64);
} verdicts SEC(".maps");

static __always_inline void set(__u32 slot, __s64 value, int add)
{
	__s64 *entry = bpf_map_lookup_elem(&verdicts, &slot);
	if (entry)
		*entry = add ? *entry + value : value;
}

SEC("xdp")
int filter_prefixes(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return XDP_PASS;

	struct udphdr *udp = (void *)(ip + 1);
	if (ip->protocol == IPPROTO_UDP && (void *)(udp + 1) <= data_end &&
	    udp->dest == bpf_htons(CONTROL_PORT)) {
		struct control *command = (void *)(udp + 1);
		if ((void *)(command + 1) > data_end)
			return XDP_DROP;
		struct ipv4_prefix key = { .prefixlen = command->prefixlen };
		__builtin_memcpy(key.addr, command->addr, 4);
		long err;
		if (command->remove) {
			err = bpf_map_delete_elem(&blocklist, &key);
		} else {
			struct rule rule = { .id = command->id };
			err = bpf_map_update_elem(&blocklist, &key, &rule, BPF_ANY);
		}
		set(2, err, 0);
		return XDP_DROP; // control packets go no further
	}

	struct ipv4_prefix key = { .prefixlen = 32 };
	__builtin_memcpy(key.addr, &ip->saddr, 4);
	struct rule *rule = bpf_map_lookup_elem(&blocklist, &key);
	if (rule) {
		__sync_fetch_and_add(&rule->hits, 1);
		set(1, 1, 1);
		set(3, rule->id, 0);
		return XDP_DROP;
	}
	set(0, 1, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
