// The legacy `maps` section: struct bpf_map_def (libbpf before 1.0, and iproute2's style).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") packet_count = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 256,
};

struct bpf_map_def SEC("maps") conn_table = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = 8,
	.value_size = 16,
	.max_entries = 1000,
	.map_flags = BPF_F_NO_PREALLOC,
};

SEC("socket")
int count_packets(struct __sk_buff *skb)
{
	__u32 key = skb->protocol & 0xff;
	__u64 *value = bpf_map_lookup_elem(&packet_count, &key);
	if (value)
		__sync_fetch_and_add(value, 1);
	__u64 conn = key;
	bpf_map_lookup_elem(&conn_table, &conn);
	return 0;
}

char _license[] SEC("license") = "GPL";
__u32 _version SEC("version") = 0x050a00;
