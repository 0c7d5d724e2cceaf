// Accepted: a bounded loop over the first 64 bytes, each read checked.
#include "common.h"
SEC("xdp")
int sum_loop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 sum = 0;
	for (int i = 0; i < 64; i++) {
		__u8 *byte = data + i;
		if ((void *)(byte + 1) > data_end)
			break;
		sum += *byte;
	}
	return sum & 1 ? XDP_PASS : XDP_DROP;
}
char LICENSE[] SEC("license") = "GPL";
