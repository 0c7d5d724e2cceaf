// Callbacks: bpf_loop and bpf_for_each_map_elem.
//
// bpf_loop(n, callback, ctx, 0) calls callback(i, ctx) for i = 0..n-1 and stops early
// when the callback returns 1; it returns how many times it called. The verifier checks
// the callback once instead of unrolling the loop, so n can be large.
// bpf_for_each_map_elem(&map, callback, ctx, 0) calls callback(map, key, value, ctx) for
// every element, with the same early stop, and returns how many elements it visited.
//
// The program copies the first 32 bytes of a UDP payload to the stack, counts its
// letters and digits with bpf_loop (stopping at a NUL byte), adds the counts to a
// histogram, then walks the histogram with bpf_for_each_map_elem.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_PAYLOAD 32

enum kind { LETTERS, DIGITS, OTHERS, KIND_COUNT };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KIND_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} histogram SEC(".maps");

// Per destination port: how many payload bytes the loop looked at.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u16);
	__type(value, __u64);
} scanned_by_port SEC(".maps");

// 0: what bpf_loop returned, 1: bpf_for_each_map_elem over the histogram, 2: the
// histogram total it computed, 3: its visits of the hash, 4: the hash total,
// 5: elements visited by a walk of the histogram that stops at DIGITS.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} results SEC(".maps");

struct scan {
	__u8 bytes[MAX_PAYLOAD];
	__u64 counts[KIND_COUNT];
};

static long classify_byte(__u64 index, void *ctx)
{
	struct scan *scan = ctx;
	if (index >= MAX_PAYLOAD)
		return 1;
	__u8 c = scan->bytes[index];
	if (c == 0)
		return 1; // stop at NUL
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		scan->counts[LETTERS]++;
	else if (c >= '0' && c <= '9')
		scan->counts[DIGITS]++;
	else
		scan->counts[OTHERS]++;
	return 0;
}

struct sum {
	__u64 total;
	__u64 visited;
};

static long add_value(void *map, void *key, __u64 *value, struct sum *sum)
{
	sum->total += *value;
	sum->visited++;
	return 0; // go on
}

static long add_until_digits(void *map, __u32 *key, __u64 *value, struct sum *sum)
{
	sum->total += *value;
	sum->visited++;
	return *key == DIGITS; // stop after the digits
}

static __always_inline void keep(__u32 slot, __u64 value)
{
	__u64 *entry = bpf_map_lookup_elem(&results, &slot);
	if (entry)
		*entry = value;
}

SEC("xdp")
int scan_payload(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	struct udphdr *udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;

	struct scan scan = {};
	__u8 *payload = (void *)(udp + 1);
	if ((void *)(payload + MAX_PAYLOAD) > data_end)
		return XDP_PASS; // too short to scan
	__builtin_memcpy(scan.bytes, payload, MAX_PAYLOAD);

	long iterations = bpf_loop(MAX_PAYLOAD, classify_byte, &scan, 0);
	keep(0, iterations);
	for (__u32 kind = 0; kind < KIND_COUNT; kind++) {
		__u64 *count = bpf_map_lookup_elem(&histogram, &kind);
		if (count)
			*count += scan.counts[kind];
	}
	__u16 port = bpf_ntohs(udp->dest);
	__u64 *scanned = bpf_map_lookup_elem(&scanned_by_port, &port);
	if (scanned)
		*scanned += iterations;
	else
		bpf_map_update_elem(&scanned_by_port, &port, &(__u64){ iterations }, BPF_NOEXIST);

	struct sum sum = {};
	keep(1, bpf_for_each_map_elem(&histogram, add_value, &sum, 0));
	keep(2, sum.total);
	struct sum ports = {};
	keep(3, bpf_for_each_map_elem(&scanned_by_port, add_value, &ports, 0));
	keep(4, ports.total);
	struct sum some = {};
	bpf_for_each_map_elem(&histogram, add_until_digits, &some, 0);
	keep(5, some.visited);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
