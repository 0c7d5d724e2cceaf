// Per-CPU maps: counters without atomics.
//
// Each CPU has its own copy of every value of a per-CPU array or hash, so a program
// adds to its CPU's copy with plain loads and stores; user space reads one value per
// possible CPU and sums them. bpf_map_lookup_percpu_elem reads another CPU's copy (NULL
// past the last possible CPU). A new per-CPU hash element gets the value on the CPU
// that inserted it and zeros on the others.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct rx_stats {
	__u64 packets;
	__u64 bytes;
};

// Slot 0: every packet; slot 1: IPv4; slot 2: IPv6.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct rx_stats);
} rx SEC(".maps");

// Bytes per IP protocol number (IPv4 protocol or IPv6 next header).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8);
	__type(key, __u8);
	__type(value, __u64);
} bytes_by_protocol SEC(".maps");

// What the program saw of the CPUs: 0: bpf_get_smp_processor_id(); 1: packets counted
// in slot 0 on CPU 1 (read with bpf_map_lookup_percpu_elem); 2: 1 if the lookup on CPU
// 64 gave NULL; 3: bpf_get_numa_node_id().
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} cpu_view SEC(".maps");

static __always_inline void count(__u32 slot, __u64 length)
{
	struct rx_stats *stats = bpf_map_lookup_elem(&rx, &slot);
	if (stats) {
		stats->packets += 1;
		stats->bytes += length;
	}
}

static __always_inline void note(__u32 slot, __u64 value)
{
	__u64 *entry = bpf_map_lookup_elem(&cpu_view, &slot);
	if (entry)
		*entry = value;
}

SEC("xdp")
int percpu_counters(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 length = data_end - data;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;

	count(0, length);
	__u8 protocol = 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return XDP_DROP;
		count(1, length);
		protocol = ip->protocol;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return XDP_DROP;
		count(2, length);
		protocol = ip6->nexthdr;
	} else {
		return XDP_PASS;
	}

	__u64 *bytes = bpf_map_lookup_elem(&bytes_by_protocol, &protocol);
	if (bytes) {
		*bytes += length;
	} else {
		bpf_map_update_elem(&bytes_by_protocol, &protocol, &length, BPF_NOEXIST);
	}

	__u32 all = 0;
	note(0, bpf_get_smp_processor_id());
	struct rx_stats *other = bpf_map_lookup_percpu_elem(&rx, &all, 1);
	note(1, other ? other->packets : 0xffffffff);
	note(2, bpf_map_lookup_percpu_elem(&rx, &all, 64) == NULL);
	note(3, bpf_get_numa_node_id());
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
