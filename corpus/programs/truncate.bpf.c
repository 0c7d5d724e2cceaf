// bpf_xdp_adjust_tail: cut packets short, or add a trailer.
//
// bpf_xdp_adjust_tail(ctx, delta) moves the end of the packet: a negative delta drops
// bytes from the end, a positive one adds zeroed bytes (up to the tailroom of the
// frame). A packet cannot become shorter than an Ethernet header. Packet pointers must
// be read again afterwards.
//
// Like a capture with a snap length, packets longer than 64 bytes are cut to 64. Short
// packets (under 60 bytes, the Ethernet minimum without the FCS) get a 4-byte trailer
// "BPF!". The program also records what two impossible adjustments answer.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SNAP_LENGTH 64

// 0: truncated, 1: extended, 2: answer to shrinking below 14 bytes,
// 3: answer to growing by 4096 bytes.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __s64);
} tail_stats SEC(".maps");

static __always_inline void set(__u32 slot, __s64 value)
{
	__s64 *entry = bpf_map_lookup_elem(&tail_stats, &slot);
	if (entry)
		*entry = value;
}

static __always_inline void count(__u32 slot)
{
	__s64 *entry = bpf_map_lookup_elem(&tail_stats, &slot);
	if (entry)
		*entry += 1;
}

SEC("xdp")
int snap_length(struct xdp_md *ctx)
{
	int length = ctx->data_end - ctx->data;

	set(2, bpf_xdp_adjust_tail(ctx, -(length - 10)));
	set(3, bpf_xdp_adjust_tail(ctx, 4096));

	if (length > SNAP_LENGTH) {
		if (bpf_xdp_adjust_tail(ctx, SNAP_LENGTH - length))
			return XDP_ABORTED;
		count(0);
		return XDP_PASS;
	}
	if (length < 60) {
		if (bpf_xdp_adjust_tail(ctx, 4))
			return XDP_ABORTED;
		void *data = (void *)(long)ctx->data;
		void *data_end = (void *)(long)ctx->data_end;
		// The trailer starts where the packet used to end. (The verifier allows no
		// arithmetic on data_end, so the offset is counted from data, masked so that
		// the verifier sees it is small.)
		char *trailer = data + (length & 0x3f);
		if ((void *)(trailer + 4) > data_end)
			return XDP_ABORTED;
		trailer[0] = 'B';
		trailer[1] = 'P';
		trailer[2] = 'F';
		trailer[3] = '!';
		count(1);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
