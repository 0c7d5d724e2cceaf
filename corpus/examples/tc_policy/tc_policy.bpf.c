// A tc (sched_cls) network policy between identities.
//
// `identities` maps an IPv4 address to an identity number (say 1 = frontend,
// 2 = backend; an address not in it is identity 0, "world"). `policy` holds the allowed
// (source identity, destination identity, IP protocol, destination port) tuples. A packet
// passes (TC_ACT_OK) when its tuple is in the policy, or when it answers an allowed
// connection: the reversed tuple (destination identity, source identity, protocol,
// source port) is allowed and, for TCP, the packet is not a bare SYN (no one may open a
// connection from the server's side). Everything else is dropped (TC_ACT_SHOT): other
// tuples, IPv6, ARP, IPv4 fragments after the first and truncated headers.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct policy_key {
	__u32 src_identity;
	__u32 dst_identity;
	__u8 proto;
	__u8 pad;
	__be16 dport; // 0 for protocols without ports
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __be32); // IPv4 address, network order
	__type(value, __u32);
} identities SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct policy_key);
	__type(value, __u8); // 1: allowed
} policy SEC(".maps");

enum { ALLOWED, ALLOWED_REPLY, DENIED, DENIED_NOT_IPV4, VERDICT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VERDICT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

static __always_inline int decide(__u32 slot, int action)
{
	__u64 *value = bpf_map_lookup_elem(&verdicts, &slot);
	if (value)
		__sync_fetch_and_add(value, 1);
	return action;
}

static __always_inline __u32 identity_of(__be32 addr)
{
	__u32 *id = bpf_map_lookup_elem(&identities, &addr);
	return id ? *id : 0;
}

static __always_inline int allowed(__u32 src, __u32 dst, __u8 proto, __be16 port)
{
	struct policy_key key = {.src_identity = src, .dst_identity = dst, .proto = proto, .dport = port};
	__u8 *rule = bpf_map_lookup_elem(&policy, &key);
	return rule && *rule == 1;
}

SEC("tc")
int tc_policy(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return decide(DENIED_NOT_IPV4, TC_ACT_SHOT);
	if (ip->frag_off & bpf_htons(0x1fff)) // a later fragment: no ports to check
		return decide(DENIED, TC_ACT_SHOT);

	__be16 sport = 0, dport = 0;
	int bare_syn = 0;
	void *l4 = (void *)ip + ip->ihl * 4;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;
		if ((void *)(tcp + 1) > data_end)
			return decide(DENIED, TC_ACT_SHOT);
		sport = tcp->source;
		dport = tcp->dest;
		bare_syn = tcp->syn && !tcp->ack;
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = l4;
		if ((void *)(udp + 1) > data_end)
			return decide(DENIED, TC_ACT_SHOT);
		sport = udp->source;
		dport = udp->dest;
	}

	__u32 src = identity_of(ip->saddr);
	__u32 dst = identity_of(ip->daddr);
	if (allowed(src, dst, ip->protocol, dport))
		return decide(ALLOWED, TC_ACT_OK);
	if (!bare_syn && allowed(dst, src, ip->protocol, sport))
		return decide(ALLOWED_REPLY, TC_ACT_OK);
	return decide(DENIED, TC_ACT_SHOT);
}

char LICENSE[] SEC("license") = "GPL";
