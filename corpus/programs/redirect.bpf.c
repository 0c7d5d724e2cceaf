// Redirect maps: devmap, devmap_hash, cpumap and xskmap with bpf_redirect_map.
//
// bpf_redirect_map(&map, key, flags) returns XDP_REDIRECT when the map has an entry at
// key (an interface, a CPU or an AF_XDP socket), and otherwise the action in the low
// bits of flags: the fallback. Only user space can fill these maps, and nothing does
// here, so every lookup misses and the fallback is what comes back; a flag the helper
// does not know gives XDP_ABORTED. bpf_redirect(ifindex, 0) needs no map and always
// answers XDP_REDIRECT.
//
// The UDP destination port picks the case; the program returns what the helper said.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32); // ifindex
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} tx_by_name SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32); // queue size
} cpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} sockets SEC(".maps");

SEC("xdp")
int redirect_by_port(struct xdp_md *ctx)
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

	switch (bpf_ntohs(udp->dest)) {
	case 1:
		return bpf_redirect_map(&tx_ports, 0, XDP_PASS);
	case 2:
		return bpf_redirect_map(&tx_by_name, 7, XDP_DROP);
	case 3:
		return bpf_redirect_map(&cpus, 1, XDP_TX);
	case 4:
		return bpf_redirect_map(&sockets, 0, XDP_PASS);
	case 5:
		return bpf_redirect_map(&tx_ports, 100, XDP_DROP); // past max_entries
	case 6:
		return bpf_redirect_map(&tx_ports, 0, 1 << 6);     // an unknown flag
	case 7:
		return bpf_redirect(1, 0);                          // the loopback device
	default:
		return XDP_PASS;
	}
}

char LICENSE[] SEC("license") = "GPL";
