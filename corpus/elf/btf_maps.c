// BTF-defined maps of several types. One concern: reading map definitions from `.maps`.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
};

struct counters {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow_key);
	__type(value, struct counters);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 24);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, __u64);
	__type(value, __u32);
} recent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 256);
	__uint(map_extra, 3);
	__type(value, __u32);
} seen SEC(".maps");

SEC("xdp")
int count_flows(struct xdp_md *ctx)
{
	struct flow_key key = {};
	__u32 index = 0;
	struct counters *c = bpf_map_lookup_elem(&flows, &key);
	if (c)
		c->packets++;
	__u64 *total = bpf_map_lookup_elem(&stats, &index);
	if (total)
		*total += 1;
	__u64 *tmp = bpf_map_lookup_elem(&scratch, &index);
	__u64 when = 7;
	__u32 hit = 1;
	bpf_map_update_elem(&recent, &when, &hit, BPF_ANY);
	bpf_ringbuf_output(&events, &index, sizeof(index), 0);
	bpf_map_push_elem(&seen, &hit, 0);
	return tmp ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
