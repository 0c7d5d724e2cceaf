// Array map: count packets and bytes per protocol.
//
// An array's elements always exist and start zeroed, so counting needs no insert: look
// the slot up and add to it. The verifier still insists on the NULL check, because an
// index at or beyond max_entries gives NULL. The program also records what the other
// array operations answer (an update past the end, BPF_NOEXIST on an element that
// always exists, a delete), so the kernel's error codes are pinned too.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum protocol {
	PROTO_OTHER = 0,
	PROTO_IPV4_TCP = 1,
	PROTO_IPV4_UDP = 2,
	PROTO_IPV4_ICMP = 3,
	PROTO_IPV4_OTHER = 4,
	PROTO_IPV6 = 5,
	PROTO_COUNT = 6,
};

struct counters {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PROTO_COUNT);
	__type(key, __u32);
	__type(value, struct counters);
} stats SEC(".maps");

// What the other array operations returned, as signed 64-bit values:
// 0: update at index PROTO_COUNT (past the end), 1: update with BPF_NOEXIST,
// 2: delete, 3: lookup past the end (1 if it gave NULL).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __s64);
} array_errors SEC(".maps");

static __always_inline __u32 classify(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return PROTO_OTHER;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return PROTO_IPV6;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return PROTO_OTHER;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return PROTO_OTHER;
	switch (ip->protocol) {
	case IPPROTO_TCP:
		return PROTO_IPV4_TCP;
	case IPPROTO_UDP:
		return PROTO_IPV4_UDP;
	case IPPROTO_ICMP:
		return PROTO_IPV4_ICMP;
	default:
		return PROTO_IPV4_OTHER;
	}
}

static __always_inline void record(__u32 slot, __s64 result)
{
	__s64 *value = bpf_map_lookup_elem(&array_errors, &slot);
	if (value)
		*value = result;
}

SEC("xdp")
int count_protocols(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 slot = classify(data, data_end);

	struct counters *counters = bpf_map_lookup_elem(&stats, &slot);
	if (!counters)
		return XDP_ABORTED;
	__sync_fetch_and_add(&counters->packets, 1);
	__sync_fetch_and_add(&counters->bytes, data_end - data);

	struct counters zero = {};
	__u32 past_end = PROTO_COUNT;
	record(0, bpf_map_update_elem(&stats, &past_end, &zero, BPF_ANY));
	record(1, bpf_map_update_elem(&stats, &slot, &zero, BPF_NOEXIST));
	record(2, bpf_map_delete_elem(&stats, &slot));
	record(3, bpf_map_lookup_elem(&stats, &past_end) == NULL);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
