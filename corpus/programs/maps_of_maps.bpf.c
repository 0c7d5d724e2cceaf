// Maps of maps: per-tenant counters, chosen through an outer map.
//
// An array of maps or a hash of maps holds other maps; a lookup in the outer map gives
// the inner map itself, which the program then uses like any map. Programs cannot
// change which maps the outer map holds (user space does that); here the slots are
// filled at load time from `.values`. Every inner map must match the `values` template.
//
// `by_vlan` (an array of maps) picks a tenant by the packet's 802.1Q VLAN id;
// `by_protocol` (a hash of maps, keyed by IP protocol number) picks per-port counters.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct tenant_counters {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2); // 0: packets, 1: bytes
	__type(key, __u32);
	__type(value, __u64);
};

struct tenant_counters tenant_red SEC(".maps");
struct tenant_counters tenant_blue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4); // VLAN id 0-3; 2 and 3 have no tenant
	__type(key, __u32);
	__array(values, struct tenant_counters);
} by_vlan SEC(".maps") = {
	.values = { [0] = &tenant_red, [1] = &tenant_blue },
};

struct port_counters {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u16);   // destination port
	__type(value, __u64); // packets
};

struct port_counters tcp_ports SEC(".maps");
struct port_counters udp_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 32);
	__type(key, __u32); // IP protocol number
	__array(values, struct port_counters);
} by_protocol SEC(".maps") = {
	.values = { [IPPROTO_TCP] = &tcp_ports, [IPPROTO_UDP] = &udp_ports },
};

struct vlan_header {
	__be16 tci;
	__be16 encapsulated_proto;
};

SEC("xdp")
int count_tenants(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;

	__u32 vlan = 0;
	__be16 proto = eth->h_proto;
	void *l3 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_header *tag = l3;
		if ((void *)(tag + 1) > data_end)
			return XDP_DROP;
		vlan = bpf_ntohs(tag->tci) & 0x0fff;
		proto = tag->encapsulated_proto;
		l3 = tag + 1;
	}

	void *tenant = bpf_map_lookup_elem(&by_vlan, &vlan);
	if (!tenant)
		return XDP_DROP; // no tenant on this VLAN
	__u32 packets = 0, bytes = 1;
	__u64 *value = bpf_map_lookup_elem(tenant, &packets);
	if (value)
		*value += 1;
	value = bpf_map_lookup_elem(tenant, &bytes);
	if (value)
		*value += data_end - data;

	struct iphdr *ip = l3;
	if (proto != bpf_htons(ETH_P_IP) || (void *)(ip + 1) > data_end || ip->ihl != 5)
		return XDP_PASS;
	struct udphdr *ports = (void *)(ip + 1); // TCP and UDP start with the same two ports
	if ((void *)(ports + 1) > data_end)
		return XDP_PASS;
	__u32 protocol = ip->protocol;
	void *counters = bpf_map_lookup_elem(&by_protocol, &protocol);
	if (!counters)
		return XDP_PASS;
	__u16 port = bpf_ntohs(ports->dest);
	__u64 *count = bpf_map_lookup_elem(counters, &port);
	if (count) {
		*count += 1;
	} else {
		__u64 one = 1;
		bpf_map_update_elem(counters, &port, &one, BPF_NOEXIST);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
