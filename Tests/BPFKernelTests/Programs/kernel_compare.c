// Programs for comparing bpfsim with the kernel where the two are known to meet or to
// part: each one isolates a difference docs/kernel.md describes, or pins an agreement.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} per_cpu_packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} lengths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 8);
	__type(value, __u32);
} recent_lengths SEC(".maps");

// The linear length the program sees: the kernel's test run gives an XDP program at
// most 3520 linear bytes (a page less headroom and tailroom).
SEC("xdp")
int packet_length(struct xdp_md *ctx)
{
	return ctx->data_end - ctx->data;
}

// A 64-bit r0: the kernel's test run reports 32 bits of it.
SEC("xdp")
long wide_return(struct xdp_md *ctx)
{
	volatile __u64 wide = 0x100000002ULL;
	return wide;
}

// Randomness differs by nature: bpfsim's stream is seeded, the kernel's is not.
SEC("xdp")
int random_verdict(struct xdp_md *ctx)
{
	return bpf_get_prandom_u32() | 0x100;
}

// Maps of three kinds, counted per packet length.
SEC("xdp")
int count_lengths(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u32 length = ctx->data_end - ctx->data;
	__u64 *count = bpf_map_lookup_elem(&per_cpu_packets, &zero);
	if (count)
		*count += 1;
	__u64 one = 1;
	__u64 *seen = bpf_map_lookup_elem(&lengths, &length);
	if (seen)
		*seen += 1;
	else
		bpf_map_update_elem(&lengths, &length, &one, BPF_NOEXIST);
	bpf_map_push_elem(&recent_lengths, &length, BPF_EXIST);
	return XDP_PASS;
}

// Packet writes, metadata and both ends moved: what BPF_PROG_TEST_RUN gives back.
SEC("xdp")
int rewrite(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_head(ctx, -4))
		return XDP_ABORTED;
	if (bpf_xdp_adjust_tail(ctx, 6))
		return XDP_ABORTED;
	if (bpf_xdp_adjust_meta(ctx, -8))
		return XDP_ABORTED;
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	unsigned char *meta = (void *)(long)ctx->data_meta;
	if (data + 20 > end || meta + 8 > data)
		return XDP_DROP;
	data[0] = 0xaa;
	data[1] = 0xbb;
	data[2] = data[4] ^ 0xff;
	data[3] = data[19];
	meta[0] = 0x11;
	meta[7] = 0x77;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
