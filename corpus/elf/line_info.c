// Line info: the test names the lines of this file, so keep them where they are.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __attribute__((noinline)) int clamp(int value, int limit)
{
	if (value > limit)
		return limit;
	return value;
}

SEC("socket")
int lines(struct __sk_buff *skb)
{
	int length = skb->len;
	int capped = clamp(length, 1500);
	return capped * 2;
}

char LICENSE[] SEC("license") = "GPL";
