// A hash of maps filled at load time: `.values` slots are keys, not indices.
//
// For an array of maps, `.values = { [i] = &map }` fills index i, which must be below
// max_entries. A hash of maps has keys instead of indices: libbpf turns each slot
// number into a 4-byte key, so a slot may be any number, and max_entries only limits
// how many keys there are. Here the keys are IP protocol numbers (6 and 17) in a hash
// of maps with room for 4.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct packet_count {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
};

struct packet_count tcp_packets SEC(".maps");
struct packet_count udp_packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32); // IP protocol number
	__array(values, struct packet_count);
} by_protocol SEC(".maps") = {
	.values = { [IPPROTO_TCP] = &tcp_packets, [IPPROTO_UDP] = &udp_packets },
};

SEC("xdp")
int count_by_protocol(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	__u32 protocol = ip->protocol;
	void *counter = bpf_map_lookup_elem(&by_protocol, &protocol);
	if (!counter)
		return XDP_DROP; // no table for this protocol
	__u32 zero = 0;
	__u64 *packets = bpf_map_lookup_elem(counter, &zero);
	if (packets)
		*packets += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
