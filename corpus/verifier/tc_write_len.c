// Refused: tc programs may not write skb->len.
#include "common.h"
SEC("tc")
int write_len(struct __sk_buff *skb)
{
	skb->len = 0;
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
