// Time, randomness and the CPU: what a program may rely on.
//
// Clock values differ from run to run, so only relations between readings are
// recorded: a second bpf_ktime_get_ns() is never before the first; boot time
// (which also counts suspend) and TAI time read after it are never smaller; the coarse
// clock (the last tick) is never after a precise reading taken later; jiffies are never
// 0. bpf_get_prandom_u32() is only used to sample 1 in `sample_rate` packets, and the
// rate is 1. The CPU is the one the run was pinned to.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 sample_rate = 1;

enum fact {
	MONOTONIC_ORDERED,  // second ktime_get_ns >= first
	BOOT_NOT_BEHIND,    // ktime_get_boot_ns >= an earlier ktime_get_ns
	COARSE_NOT_AHEAD,   // ktime_get_coarse_ns <= a later ktime_get_ns
	TAI_NOT_BEHIND,     // ktime_get_tai_ns >= an earlier ktime_get_ns
	JIFFIES_NONZERO,    // jiffies64 != 0
	SAMPLED,            // packets picked by the 1-in-sample_rate sampler
	CPU,                // bpf_get_smp_processor_id
	NUMA_NODE,          // bpf_get_numa_node_id
	FACT_COUNT,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FACT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} facts SEC(".maps");

static __always_inline void add(__u32 fact, __u64 amount)
{
	__u64 *value = bpf_map_lookup_elem(&facts, &fact);
	if (value)
		*value += amount;
}

static __always_inline void set(__u32 fact, __u64 amount)
{
	__u64 *value = bpf_map_lookup_elem(&facts, &fact);
	if (value)
		*value = amount;
}

SEC("xdp")
int observe_world(struct xdp_md *ctx)
{
	__u64 first = bpf_ktime_get_ns();
	__u64 second = bpf_ktime_get_ns();
	add(MONOTONIC_ORDERED, second >= first);

	__u64 before = bpf_ktime_get_ns();
	add(BOOT_NOT_BEHIND, bpf_ktime_get_boot_ns() >= before);

	__u64 coarse = bpf_ktime_get_coarse_ns();
	add(COARSE_NOT_AHEAD, coarse <= bpf_ktime_get_ns() && coarse != 0);

	before = bpf_ktime_get_ns();
	add(TAI_NOT_BEHIND, bpf_ktime_get_tai_ns() >= before);

	add(JIFFIES_NONZERO, bpf_jiffies64() != 0);

	if (bpf_get_prandom_u32() % sample_rate == 0)
		add(SAMPLED, 1);

	set(CPU, bpf_get_smp_processor_id());
	set(NUMA_NODE, bpf_get_numa_node_id());
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
