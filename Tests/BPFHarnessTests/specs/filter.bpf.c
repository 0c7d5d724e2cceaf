// An XDP filter for the spec tests: drops sources in a blocklist (LPM-free hash of IPv4
// addresses), counts verdicts in an array and packets per CPU, answers UDP echo (port 7)
// by swapping MAC addresses (XDP_TX), redirects TCP port 9999 to ifindex 3, logs
// ICMP with printk, and writes a ring buffer record for every UDP packet to port 53.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u8);
} blocklist SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 5);
    __type(key, __u32);
    __type(value, __u64);
} verdicts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} packets SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} dns SEC(".maps");

struct dns_record {
    __u32 saddr;
    __u16 sport;
    __u16 len;
};

// Read-only data that names the record's type, so the object's BTF describes it.
const volatile struct dns_record dns_record_layout = {0};

static __always_inline int count(int verdict)
{
    __u32 key = verdict;
    __u64 *value = bpf_map_lookup_elem(&verdicts, &key);
    if (value)
        __sync_fetch_and_add(value, 1);
    return verdict;
}

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    __u32 zero = 0;
    __u64 *seen = bpf_map_lookup_elem(&packets, &zero);
    if (seen)
        *seen += 1;

    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end)
        return count(XDP_ABORTED);
    if (eth->h_proto != bpf_htons(ETH_P_IP))
        return count(XDP_PASS);
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end)
        return count(XDP_DROP);
    __u32 saddr = ip->saddr;
    if (bpf_map_lookup_elem(&blocklist, &saddr))
        return count(XDP_DROP);
    void *l4 = (void *)ip + ip->ihl * 4;
    if (ip->protocol == IPPROTO_ICMP) {
        // Three arguments: bpfsim's verifier (not the kernel's) wants r5 set for bpf_trace_printk.
        bpf_printk("icmp from %x ttl %d proto %d", bpf_ntohl(saddr), ip->ttl, ip->protocol);
        return count(XDP_PASS);
    }
    if (ip->protocol == IPPROTO_TCP) {
        struct tcphdr *tcp = l4;
        if ((void *)(tcp + 1) > data_end)
            return count(XDP_DROP);
        if (tcp->dest == bpf_htons(9999)) {
            count(XDP_REDIRECT);
            return bpf_redirect(3, 0);
        }
        return count(XDP_PASS);
    }
    if (ip->protocol == IPPROTO_UDP) {
        struct udphdr *udp = l4;
        if ((void *)(udp + 1) > data_end)
            return count(XDP_DROP);
        if (udp->dest == bpf_htons(53)) {
            struct dns_record *record = bpf_ringbuf_reserve(&dns, sizeof(*record), 0);
            if (record) {
                record->saddr = saddr;
                record->sport = bpf_ntohs(udp->source);
                record->len = bpf_ntohs(udp->len);
                bpf_ringbuf_submit(record, 0);
            }
            return count(XDP_PASS);
        }
        if (udp->dest == bpf_htons(7)) {
            unsigned char tmp[ETH_ALEN];
            __builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
            __builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
            __builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
            return count(XDP_TX);
        }
        return count(XDP_PASS);
    }
    return count(XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
