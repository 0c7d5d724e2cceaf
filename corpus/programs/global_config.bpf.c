// Global data: configuration in .rodata, counters in .data and .bss.
//
// Global variables live in array maps with one element, one map per section: `const
// volatile` variables go to .rodata, which is read-only to the program (user space
// sets them before loading; `volatile` keeps the compiler from folding them into the
// code); initialised variables go to .data, zero-initialised ones to .bss. The program
// reads and writes them like ordinary C globals.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Configuration (.rodata).
const volatile __u16 blocked_ports[3] = { 23, 445, 3389 };
const volatile __u8 min_ttl = 2;
const volatile __u32 max_length = 1500;

// Counters with a starting value (.data).
__u64 packets_seen = 1000;
__u32 config_generation = 7;

// Zeroed counters (.bss).
__u64 blocked;
__u64 low_ttl;
__u64 oversized;
__u16 last_blocked_port;
static __u32 tcp_packets; // static globals are there too

SEC("xdp")
int apply_config(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	packets_seen++;
	if (data_end - data > max_length) {
		oversized++;
		return XDP_DROP;
	}
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return XDP_PASS;
	if (ip->ttl < min_ttl) {
		low_ttl++;
		return XDP_DROP;
	}
	if (ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	struct tcphdr *tcp = (void *)(ip + 1);
	if ((void *)(tcp + 1) > data_end)
		return XDP_DROP;
	tcp_packets++;
	__u16 port = bpf_ntohs(tcp->dest);
	for (int i = 0; i < 3; i++) {
		if (port == blocked_ports[i]) {
			blocked++;
			last_blocked_port = port;
			return XDP_DROP;
		}
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
