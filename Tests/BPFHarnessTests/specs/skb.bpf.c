// A socket filter that keeps the first 20 bytes of TCP and drops the rest, and a
// cgroup_skb program that denies UDP, for the verdict names of those program types.
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

SEC("socket")
int keep_tcp_headers(struct __sk_buff *skb)
{
    __u8 protocol = 0;
    // The network header starts at offset 0 for a socket filter: the IPv4 protocol byte is 9.
    if (bpf_skb_load_bytes(skb, 9, &protocol, 1) < 0)
        return 0;
    return protocol == IPPROTO_TCP ? 20 : 0;
}

SEC("cgroup_skb/egress")
int deny_udp(struct __sk_buff *skb)
{
    __u8 protocol = 0;
    if (bpf_skb_load_bytes(skb, 9, &protocol, 1) < 0)
        return 1;
    return protocol == IPPROTO_UDP ? 0 : 1;
}

char LICENSE[] SEC("license") = "GPL";
