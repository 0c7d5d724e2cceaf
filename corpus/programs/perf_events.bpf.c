// Perf event array: send samples to user space through per-CPU perf buffers.
//
// bpf_perf_event_output writes a record to the perf buffer at an index of the map,
// usually BPF_F_CURRENT_CPU (the buffer of the CPU the program runs on). For XDP, the
// upper 32 bits of the flags ask for that many bytes of the packet to be appended. What
// it returns depends on whether user space opened a perf event at that index; nothing
// is open during BPF_PROG_TEST_RUN. The program returns XDP_PASS when the output
// succeeded and XDP_DROP otherwise, and keeps every return value in `results`.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 2);
} samples SEC(".maps");

struct sample {
	__u32 length;
	__u32 ifindex;
};

// 0: output on the current CPU; 1: with 14 packet bytes appended; 2: at index 5, past
// max_entries; 3: with a flag the helper does not know; 4: asking for 4000 packet
// bytes, more than the packet has.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __s64);
} results SEC(".maps");

static __always_inline void keep(__u32 slot, long value)
{
	__s64 *entry = bpf_map_lookup_elem(&results, &slot);
	if (entry)
		*entry = value;
}

SEC("xdp")
int sample_packets(struct xdp_md *ctx)
{
	struct sample sample = {
		.length = ctx->data_end - ctx->data,
		.ifindex = ctx->ingress_ifindex,
	};
	long first = bpf_perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU, &sample, sizeof(sample));
	keep(0, first);
	keep(1, bpf_perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU | (14ULL << 32), &sample, sizeof(sample)));
	keep(2, bpf_perf_event_output(ctx, &samples, 5, &sample, sizeof(sample)));
	keep(3, bpf_perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU | (1ULL << 63), &sample, sizeof(sample)));
	keep(4, bpf_perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU | (4000ULL << 32), &sample, sizeof(sample)));
	return first == 0 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
