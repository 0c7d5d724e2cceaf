// bpf_spin_lock: update several fields of a map value as one.
//
// A map value may hold one `struct bpf_spin_lock`; between bpf_spin_lock and
// bpf_spin_unlock the program may only touch memory (no helper calls, no function
// calls), and every path must unlock. Two CPUs updating the same value then never see
// each other's half-done work. The map needs BTF, which is how the kernel finds the
// lock inside the value. bpf(2) never shows the lock's own bytes: they read as zero.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct totals {
	struct bpf_spin_lock lock;
	__u32 largest;
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct totals);
} global_totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32); // IPv4 source address
	__type(value, struct totals);
} per_source SEC(".maps");

static __always_inline void account(struct totals *totals, __u32 length)
{
	bpf_spin_lock(&totals->lock);
	totals->packets++;
	totals->bytes += length;
	if (length > totals->largest)
		totals->largest = length;
	bpf_spin_unlock(&totals->lock);
}

SEC("xdp")
int locked_totals(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 length = data_end - data;

	__u32 zero = 0;
	struct totals *totals = bpf_map_lookup_elem(&global_totals, &zero);
	if (!totals)
		return XDP_ABORTED;
	account(totals, length);

	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	__u32 source = ip->saddr;
	struct totals *mine = bpf_map_lookup_elem(&per_source, &source);
	if (!mine) {
		struct totals fresh = {};
		bpf_map_update_elem(&per_source, &source, &fresh, BPF_NOEXIST);
		mine = bpf_map_lookup_elem(&per_source, &source);
		if (!mine)
			return XDP_ABORTED;
	}
	account(mine, length);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
