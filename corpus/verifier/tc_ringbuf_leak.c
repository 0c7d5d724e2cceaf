// Refused: the ring-buffer record is not submitted on the early-return path.
#include "common.h"
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");
SEC("tc")
int ringbuf_leak(struct __sk_buff *skb)
{
	__u32 *record = bpf_ringbuf_reserve(&events, sizeof(*record), 0);
	if (!record)
		return 0;
	if (skb->len < 64)
		return 0;
	*record = skb->len;
	bpf_ringbuf_submit(record, 0);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
