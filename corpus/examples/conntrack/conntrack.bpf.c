// An XDP connection tracker.
//
// Each IPv4 TCP or UDP flow has one entry in an LRU hash, keyed by the 5-tuple of the
// packet that opened it (the "original" direction); packets of the other direction find
// it through the reversed tuple. The entry counts packets and bytes in each direction
// and follows the TCP state from the flags:
//
//   SYN (no entry)            -> SYN_SENT
//   SYN+ACK (reply)           -> SYN_RECV
//   ACK (original, SYN_RECV)  -> ESTABLISHED
//   FIN (either direction)    -> FIN_WAIT, then a FIN from the other side -> CLOSING
//   ACK after both FINs       -> CLOSED;  RST (either direction) -> CLOSED
//
// A TCP packet without SYN that matches no entry is out of state and dropped (XDP_DROP),
// as is a SYN that would reopen a flow not yet closed. UDP flows start UNREPLIED and
// become REPLIED once the other side answers. Everything else passes; the LRU evicts the
// least recently used flows when the table is full.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum ct_state {
	CT_NONE,
	CT_SYN_SENT,
	CT_SYN_RECV,
	CT_ESTABLISHED,
	CT_FIN_WAIT,
	CT_CLOSING,
	CT_CLOSED,
	CT_UDP_UNREPLIED,
	CT_UDP_REPLIED,
};

struct flow_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct flow {
	__u32 state;      // enum ct_state
	__u32 fin_from;   // 1: the original side sent the first FIN, 2: the reply side
	__u64 packets[2]; // [0] original direction, [1] reply
	__u64 bytes[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow_key);
	__type(value, struct flow);
} flows SEC(".maps");

enum { NEW_FLOWS, TRACKED, INVALID, UNTRACKED, STAT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ct_stats SEC(".maps");

static __always_inline int count(__u32 slot, int action)
{
	__u64 *value = bpf_map_lookup_elem(&ct_stats, &slot);
	if (value)
		__sync_fetch_and_add(value, 1);
	return action;
}

static __always_inline void tcp_transition(struct flow *f, int reply, struct tcphdr *tcp)
{
	if (tcp->rst) {
		f->state = CT_CLOSED;
		return;
	}
	__u32 side = reply ? 2 : 1;
	switch (f->state) {
	case CT_SYN_SENT:
		if (reply && tcp->syn && tcp->ack)
			f->state = CT_SYN_RECV;
		break;
	case CT_SYN_RECV:
		if (!reply && tcp->ack && !tcp->syn)
			f->state = CT_ESTABLISHED;
		if (tcp->fin) {
			f->state = CT_FIN_WAIT;
			f->fin_from = side;
		}
		break;
	case CT_ESTABLISHED:
		if (tcp->fin) {
			f->state = CT_FIN_WAIT;
			f->fin_from = side;
		}
		break;
	case CT_FIN_WAIT:
		if (tcp->fin && f->fin_from != side)
			f->state = CT_CLOSING;
		break;
	case CT_CLOSING:
		if (tcp->ack && !tcp->fin)
			f->state = CT_CLOSED;
		break;
	}
}

SEC("xdp")
int xdp_conntrack(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 length = data_end - data;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return count(UNTRACKED, XDP_PASS);
	if (ip->ihl < 5 || (ip->frag_off & bpf_htons(0x1fff)))
		return count(UNTRACKED, XDP_PASS);
	void *l4 = (void *)ip + ip->ihl * 4;

	struct flow_key key = {.saddr = ip->saddr, .daddr = ip->daddr, .proto = ip->protocol};
	struct tcphdr *tcp = 0;
	if (ip->protocol == IPPROTO_TCP) {
		tcp = l4;
		if ((void *)(tcp + 1) > data_end)
			return count(INVALID, XDP_DROP);
		key.sport = tcp->source;
		key.dport = tcp->dest;
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = l4;
		if ((void *)(udp + 1) > data_end)
			return count(INVALID, XDP_DROP);
		key.sport = udp->source;
		key.dport = udp->dest;
	} else {
		return count(UNTRACKED, XDP_PASS);
	}

	int reply = 0;
	struct flow *f = bpf_map_lookup_elem(&flows, &key);
	if (!f) {
		struct flow_key back = {.saddr = key.daddr, .daddr = key.saddr, .sport = key.dport,
					.dport = key.sport, .proto = key.proto};
		f = bpf_map_lookup_elem(&flows, &back);
		reply = 1;
	}
	if (f && tcp && tcp->syn && !tcp->ack && !reply && f->state == CT_CLOSED) {
		// The same 5-tuple opened again after a close: a new connection.
		bpf_map_delete_elem(&flows, &key);
		f = 0;
	}
	if (!f) {
		struct flow fresh = {.packets = {1, 0}, .bytes = {length, 0}};
		if (tcp) {
			if (!tcp->syn || tcp->ack || tcp->rst)
				return count(INVALID, XDP_DROP);
			fresh.state = CT_SYN_SENT;
		} else {
			fresh.state = CT_UDP_UNREPLIED;
		}
		bpf_map_update_elem(&flows, &key, &fresh, BPF_ANY);
		return count(NEW_FLOWS, XDP_PASS);
	}

	if (tcp) {
		if (tcp->syn && !tcp->ack && f->state != CT_SYN_SENT)
			return count(INVALID, XDP_DROP);
		tcp_transition(f, reply, tcp);
	} else if (reply) {
		f->state = CT_UDP_REPLIED;
	}
	__sync_fetch_and_add(&f->packets[reply], 1);
	__sync_fetch_and_add(&f->bytes[reply], length);
	return count(TRACKED, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
