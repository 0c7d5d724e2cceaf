// Maps of maps and a prog array, with initial values given through relocations in `.maps`.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner inner_a SEC(".maps");
struct inner inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { [0] = &inner_a, [3] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 16);
	__type(key, __u64);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH);
		__uint(max_entries, 32);
		__type(key, __u32);
		__type(value, __u32);
	});
} by_id SEC(".maps");

SEC("xdp")
int tail_one(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int tail_two(struct xdp_md *ctx)
{
	return XDP_DROP;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jumps SEC(".maps") = {
	.values = { [1] = (void *)&tail_one, [2] = (void *)&tail_two },
};

SEC("xdp")
int dispatch(struct xdp_md *ctx)
{
	__u32 key = 0;
	void *inner = bpf_map_lookup_elem(&outer, &key);
	if (inner) {
		__u64 *v = bpf_map_lookup_elem(inner, &key);
		if (v)
			*v += 1;
	}
	bpf_tail_call(ctx, &jumps, 1);
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";
