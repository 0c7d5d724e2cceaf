// Accepted: a socket filter reading __sk_buff fields and a legacy packet load.
#include "common.h"
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
SEC("socket")
int fields(struct __sk_buff *skb)
{
	if (skb->len < 20 || skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	return load_half(skb, 2) > 40 ? skb->len : 0;
}
char LICENSE[] SEC("license") = "GPL";
