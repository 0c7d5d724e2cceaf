// Ring buffer: send events to user space.
//
// bpf_ringbuf_reserve hands out space in the ring; the program fills it and either
// submits it (user space sees the record) or discards it. bpf_ringbuf_output copies a
// finished record in one call. The records themselves are read by user space through
// mmap, so this program also counts what it did in an array, which can be compared:
// successful reservations, submits, discards, outputs and failures, and the ring's
// size as bpf_ringbuf_query(BPF_RB_RING_SIZE) reports it.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct connection_event {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 length;
};

enum counter {
	RESERVED,
	SUBMITTED,
	DISCARDED,
	OUTPUT_OK,
	RESERVE_FAILED,
	OUTPUT_FAILED,
	RING_SIZE,
	COUNTER_COUNT,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, COUNTER_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void add(__u32 counter, __u64 amount)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &counter);
	if (value)
		*value += amount;
}

SEC("xdp")
int report_connections(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return XDP_PASS;

	__u32 slot = RING_SIZE;
	__u64 *size = bpf_map_lookup_elem(&counters, &slot);
	if (size)
		*size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);

	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip + 1);
		if ((void *)(tcp + 1) > data_end)
			return XDP_DROP;
		struct connection_event *event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
		if (!event) {
			add(RESERVE_FAILED, 1);
			return XDP_PASS;
		}
		add(RESERVED, 1);
		event->saddr = ip->saddr;
		event->daddr = ip->daddr;
		event->sport = bpf_ntohs(tcp->source);
		event->dport = bpf_ntohs(tcp->dest);
		event->length = data_end - data;
		// Only new connections are worth reporting.
		if (tcp->syn && !tcp->ack) {
			bpf_ringbuf_submit(event, 0);
			add(SUBMITTED, 1);
		} else {
			bpf_ringbuf_discard(event, 0);
			add(DISCARDED, 1);
		}
	} else if (ip->protocol == IPPROTO_UDP) {
		struct connection_event event = {
			.saddr = ip->saddr,
			.daddr = ip->daddr,
			.length = data_end - data,
		};
		if (bpf_ringbuf_output(&events, &event, sizeof(event), 0) == 0)
			add(OUTPUT_OK, 1);
		else
			add(OUTPUT_FAILED, 1);
	} else {
		// A record larger than the ring can never be reserved.
		void *huge = bpf_ringbuf_reserve(&events, 8192, 0);
		if (huge) {
			bpf_ringbuf_discard(huge, 0);
			add(RESERVED, 1);
		} else {
			add(RESERVE_FAILED, 1);
		}
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
