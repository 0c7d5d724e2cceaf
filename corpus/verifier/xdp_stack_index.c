// Refused: a stack array indexed by a packet byte that may be out of range.
#include "common.h"
SEC("xdp")
int stack_index(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	volatile __u8 table[32] = {};
	if (data + 1 > data_end)
		return XDP_DROP;
	__u8 i = *(__u8 *)data;
	table[i] = 1;
	return table[3];
}
char LICENSE[] SEC("license") = "GPL";
