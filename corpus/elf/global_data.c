// Global data: `.rodata`, `.data`, `.bss` and a custom `.data.*` section become array maps.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 threshold = 42;
const volatile __u64 limits[2] = { 100, 200 };
__u64 packets = 5;
__u32 flags_seen = 0x10;
__u64 drops;
__u32 last_len;
static __u32 hidden_counter;
__u64 custom_total SEC(".data.custom") = 9;

SEC("tc")
int account(struct __sk_buff *skb)
{
	packets++;
	hidden_counter += 2;
	last_len = skb->len;
	custom_total += limits[1];
	if (skb->len > threshold) {
		drops++;
		return 2;
	}
	flags_seen |= 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
