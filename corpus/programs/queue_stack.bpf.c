// Queue and stack maps: FIFO and LIFO buffers of values.
//
// Queues and stacks have no keys: bpf_map_push_elem adds a value, bpf_map_pop_elem
// takes one out (the oldest from a queue, the newest from a stack) and
// bpf_map_peek_elem reads it without taking it. A full map refuses a push with -E2BIG,
// unless the push has BPF_EXIST, which drops the oldest value to make room; an empty
// map answers -ENOENT.
//
// The packets are UDP commands: the first payload byte is 'P' (push the source port),
// 'F' (push with BPF_EXIST: force), 'O' (pop) or 'K' (peek). Neither map can be listed
// through bpf(2), so the program keeps what it popped and each helper's return value
// in `last`.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 3);
	__uint(value_size, sizeof(__u32));
} arrivals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 3);
	__uint(value_size, sizeof(__u32));
} undo SEC(".maps");

// 0: queue helper's return value, 1: stack helper's return value,
// 2: value popped or peeked from the queue, 3: from the stack (0xffffffff if none).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __s64);
} last SEC(".maps");

static __always_inline void keep(__u32 slot, __s64 value)
{
	__s64 *entry = bpf_map_lookup_elem(&last, &slot);
	if (entry)
		*entry = value;
}

SEC("xdp")
int queue_commands(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	struct udphdr *udp = (void *)(ip + 1);
	__u8 *command = (void *)(udp + 1);
	if ((void *)(command + 1) > data_end)
		return XDP_PASS;

	__u32 port = bpf_ntohs(udp->source);
	__u32 from_queue = 0xffffffff, from_stack = 0xffffffff;
	switch (*command) {
	case 'P':
		keep(0, bpf_map_push_elem(&arrivals, &port, BPF_ANY));
		keep(1, bpf_map_push_elem(&undo, &port, BPF_ANY));
		return XDP_PASS;
	case 'F':
		keep(0, bpf_map_push_elem(&arrivals, &port, BPF_EXIST));
		keep(1, bpf_map_push_elem(&undo, &port, BPF_EXIST));
		return XDP_PASS;
	case 'O':
		keep(0, bpf_map_pop_elem(&arrivals, &from_queue));
		keep(1, bpf_map_pop_elem(&undo, &from_stack));
		break;
	case 'K':
		keep(0, bpf_map_peek_elem(&arrivals, &from_queue));
		keep(1, bpf_map_peek_elem(&undo, &from_stack));
		break;
	default:
		return XDP_DROP;
	}
	keep(2, from_queue);
	keep(3, from_stack);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
