// bpf_xdp_adjust_meta: pass metadata in front of the packet.
//
// XDP metadata is a small area just before the packet, grown with
// bpf_xdp_adjust_meta(ctx, -size); its size must be a multiple of 4 bytes and fit in
// skb_shared_info's u8 meta_len (Linux 6.18 allows up to 255 bytes; older kernels
// allowed 32). ctx->data_meta points to it; a later program (tc, or an AF_XDP reader)
// finds it there. BPF_PROG_TEST_RUN returns it in front of the packet in data_out.
//
// The program first records what three other requests answer (undoing the one that
// succeeds), then stores a 4-byte mark and the packet's length in 8 bytes of metadata.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct meta {
	__u32 mark;
	__u32 length;
};

// 0: answer to a size that is not a multiple of 4, 1: to 36 bytes (more than older
// kernels allowed), 2: to shrinking the metadata below nothing.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __s64);
} meta_errors SEC(".maps");

static __always_inline void set(__u32 slot, __s64 value)
{
	__s64 *entry = bpf_map_lookup_elem(&meta_errors, &slot);
	if (entry)
		*entry = value;
}

SEC("xdp")
int mark_packets(struct xdp_md *ctx)
{
	set(0, bpf_xdp_adjust_meta(ctx, -6));
	long large = bpf_xdp_adjust_meta(ctx, -36);
	set(1, large);
	if (large == 0)
		bpf_xdp_adjust_meta(ctx, 36); // give it back
	set(2, bpf_xdp_adjust_meta(ctx, 4));

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct meta)))
		return XDP_ABORTED;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct meta *meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) > data)
		return XDP_ABORTED;
	meta->mark = 0xfeedf00d;
	meta->length = data_end - data;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
