// Hash map: a flow table keyed by the IPv4 5-tuple.
//
// A new flow is inserted with BPF_NOEXIST; a full table refuses it with -E2BIG (the
// kernel preallocates max_entries elements), which the program counts. TCP flows are
// updated in place through the pointer a lookup returns; UDP flows are rewritten with
// bpf_map_update_elem(BPF_EXIST), which also works when the table is full (the kernel
// keeps a spare element per CPU for exactly that). A TCP FIN or RST ends the flow:
// the program deletes it, freeing the element for the next new flow.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 protocol;
	__u8 pad[3]; // zeroed, so equal flows have equal key bytes
};

struct flow_stats {
	__u64 packets;
	__u64 bytes;
	__u32 tcp_flags; // every TCP flag seen in the flow
	__u32 updates;   // how many times the value was rewritten with BPF_EXIST
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, struct flow_key);
	__type(value, struct flow_stats);
} flows SEC(".maps");

enum event {
	EV_NEW_FLOW,    // inserted
	EV_TABLE_FULL,  // insert refused with -E2BIG
	EV_CLOSED,      // deleted on FIN/RST
	EV_DELETE_MISS, // deleting a flow that is not there
	EV_LAST_ERROR,  // the last negative return value of a map operation
	EV_COUNT,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EV_COUNT);
	__type(key, __u32);
	__type(value, __s64);
} events SEC(".maps");

static __always_inline void count(__u32 event)
{
	__s64 *value = bpf_map_lookup_elem(&events, &event);
	if (value)
		*value += 1;
}

static __always_inline void last_error(long error)
{
	__u32 event = EV_LAST_ERROR;
	__s64 *value = bpf_map_lookup_elem(&events, &event);
	if (value && error < 0)
		*value = error;
}

SEC("xdp")
int track_flows(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return XDP_PASS;

	struct flow_key key;
	__builtin_memset(&key, 0, sizeof(key));
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.protocol = ip->protocol;
	__u8 tcp_flags = 0;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip + 1);
		if ((void *)(tcp + 1) > data_end)
			return XDP_DROP;
		key.sport = bpf_ntohs(tcp->source);
		key.dport = bpf_ntohs(tcp->dest);
		tcp_flags = ((__u8 *)tcp)[13];
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);
		if ((void *)(udp + 1) > data_end)
			return XDP_DROP;
		key.sport = bpf_ntohs(udp->source);
		key.dport = bpf_ntohs(udp->dest);
	} else {
		return XDP_PASS;
	}
	__u64 length = data_end - data;

	struct flow_stats *stats = bpf_map_lookup_elem(&flows, &key);
	if (!stats) {
		struct flow_stats fresh = { .packets = 1, .bytes = length, .tcp_flags = tcp_flags };
		long err = bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
		if (err == -E2BIG) {
			count(EV_TABLE_FULL);
			last_error(err);
			return XDP_DROP;
		}
		last_error(err);
		count(EV_NEW_FLOW);
	} else if (ip->protocol == IPPROTO_TCP) {
		stats->packets += 1;
		stats->bytes += length;
		stats->tcp_flags |= tcp_flags;
	} else {
		struct flow_stats copy = *stats;
		copy.packets += 1;
		copy.bytes += length;
		copy.updates += 1;
		last_error(bpf_map_update_elem(&flows, &key, &copy, BPF_EXIST));
	}

	if (tcp_flags & (0x01 | 0x04)) { // FIN or RST
		if (bpf_map_delete_elem(&flows, &key) == 0)
			count(EV_CLOSED);
		long err = bpf_map_delete_elem(&flows, &key); // a second delete finds nothing
		if (err == -ENOENT)
			count(EV_DELETE_MISS);
		last_error(err);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
