// Several programs in one section, selected by function name.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass_all(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_drop_all(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int xdp_drop_short(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	return data + 64 > end ? XDP_DROP : XDP_PASS;
}

SEC("tc")
int tc_first(struct __sk_buff *skb)
{
	return 0;
}

SEC("tc")
int tc_second(struct __sk_buff *skb)
{
	return skb->len > 100;
}

char LICENSE[] SEC("license") = "GPL";
