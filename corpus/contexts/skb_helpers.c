// One tc program per skb helper. Each stores the helper's return values (and whatever
// else shows what it did) in the array map `out`, and the packet it leaves is data_out.
// Built with -DSOCKET, the programs that socket filters may run are built as socket
// filters instead.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 32);
} out SEC(".maps");

static __always_inline void put(__u32 index, __u64 value) {
    bpf_map_update_elem(&out, &index, &value, BPF_ANY);
}

static __always_inline __u64 word(const __u8 *b) {
    return (__u64)b[0] << 24 | (__u64)b[1] << 16 | (__u64)b[2] << 8 | b[3];
}

#ifdef SOCKET
#define SECTION "socket"
#define VERDICT 0
#else
#define SECTION "tc"
#define VERDICT TC_ACT_OK
#endif

SEC(SECTION)
int load_bytes(struct __sk_buff *skb) {
    __u8 buf[16] = {};
    put(0, bpf_skb_load_bytes(skb, 0, buf, 14));
    put(1, word(buf));
    put(2, word(buf + 10));
    put(3, bpf_skb_load_bytes(skb, skb->len - 4, buf, 4));
    put(4, word(buf));
    put(5, bpf_skb_load_bytes(skb, skb->len - 3, buf, 4));
    put(6, word(buf));
    put(7, bpf_skb_load_bytes(skb, 0x80000000, buf, 4));
    put(8, bpf_skb_load_bytes_relative(skb, 0, buf, 14, BPF_HDR_START_MAC));
    put(9, word(buf + 10));
    put(10, bpf_skb_load_bytes_relative(skb, 0, buf, 16, BPF_HDR_START_NET));
    put(11, word(buf + 12));
    put(12, bpf_skb_load_bytes_relative(skb, 0x10000, buf, 4, BPF_HDR_START_NET));
    put(13, bpf_skb_load_bytes_relative(skb, 0, buf, 4, 7));
    put(14, bpf_skb_load_bytes_relative(skb, skb->len - 2, buf, 4, BPF_HDR_START_NET));
    return VERDICT;
}

// Legacy packet loads: offsets from skb->data, from the network header (SKF_NET_OFF)
// and from the MAC header (SKF_LL_OFF); one out of range ends the program with r0 = 0.
unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

SEC(SECTION)
int legacy_loads(struct __sk_buff *skb) {
    put(0, load_byte(skb, 0));
    put(1, load_half(skb, 2));
    put(2, load_word(skb, 12));
    put(3, load_word(skb, -0x100000 + 12));
    put(4, load_half(skb, -0x200000 + 12));
    put(5, load_byte(skb, -0x200000));
    put(6, 1);
    __u64 past = load_word(skb, skb->len - 2);
    put(7, past);
    return 77;
}

#ifndef SOCKET
SEC("tc")
int store_bytes(struct __sk_buff *skb) {
    __u8 addr[4] = {192, 168, 1, 1};
    bpf_set_hash(skb, 0x1234);
    put(0, bpf_skb_store_bytes(skb, 26, addr, 4, 0));
    put(1, skb->hash);
    put(2, bpf_skb_store_bytes(skb, 30, addr, 4, BPF_F_INVALIDATE_HASH | BPF_F_RECOMPUTE_CSUM));
    put(3, skb->hash);
    put(4, bpf_skb_store_bytes(skb, 0, addr, 4, 4));
    put(5, bpf_skb_store_bytes(skb, skb->len - 3, addr, 4, 0));
    put(6, bpf_skb_store_bytes(skb, skb->len - 4, addr, 4, 0));
    return TC_ACT_OK;
}

// Rewrites the IPv4 source address and fixes the IP and TCP checksums, the way NAT does.
SEC("tc")
int csum_replace(struct __sk_buff *skb) {
    __u32 old_addr, new_addr = bpf_htonl(0xc0a80101);
    __u16 old_port, new_port = bpf_htons(8080);
    bpf_skb_load_bytes(skb, 26, &old_addr, 4);
    bpf_skb_load_bytes(skb, 34, &old_port, 2);
    put(0, bpf_skb_store_bytes(skb, 26, &new_addr, 4, 0));
    put(1, bpf_l3_csum_replace(skb, 24, old_addr, new_addr, 4));
    put(2, bpf_l4_csum_replace(skb, 50, old_addr, new_addr, BPF_F_PSEUDO_HDR | 4));
    put(3, bpf_skb_store_bytes(skb, 34, &new_port, 2, 0));
    put(4, bpf_l4_csum_replace(skb, 50, old_port, new_port, 2));
    put(5, bpf_l3_csum_replace(skb, 25, 0, 0, 2));
    put(6, bpf_l3_csum_replace(skb, 24, 1, 2, 3));
    put(7, bpf_l3_csum_replace(skb, 24, 1, 2, 0));
    put(8, bpf_l3_csum_replace(skb, 24, 1, 2, 0x10));
    put(9, bpf_l4_csum_replace(skb, 0x10000, 1, 2, 2));
    put(10, bpf_l3_csum_replace(skb, skb->len - 1, 1, 2, 2));
    put(11, bpf_l4_csum_replace(skb, 50, 0, 0x1234, 0));
    put(12, bpf_l4_csum_replace(skb, 50, 0, 0, 0x100));
    __u16 sum;
    bpf_skb_load_bytes(skb, 24, &sum, 2);
    put(13, sum);
    bpf_skb_load_bytes(skb, 50, &sum, 2);
    put(14, sum);
    return TC_ACT_OK;
}

// A UDP checksum of 0 means "no checksum": BPF_F_MARK_MANGLED_0 leaves it alone, and
// turns a result of 0 into 0xffff.
SEC("tc")
int csum_mangled(struct __sk_buff *skb) {
    __u16 sum;
    put(0, bpf_l4_csum_replace(skb, 40, 1, 2, BPF_F_MARK_MANGLED_0 | 2));
    bpf_skb_load_bytes(skb, 40, &sum, 2);
    put(1, sum);
    __u16 one = bpf_htons(0xfffe);
    bpf_skb_store_bytes(skb, 40, &one, 2, 0);
    put(2, bpf_l4_csum_replace(skb, 40, bpf_htons(1), 0, BPF_F_MARK_MANGLED_0 | 2));
    bpf_skb_load_bytes(skb, 40, &sum, 2);
    put(3, sum);
    put(4, bpf_l4_csum_replace(skb, 40, 0, bpf_htons(0x10), BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | 2));
    bpf_skb_load_bytes(skb, 40, &sum, 2);
    put(5, sum);
    put(6, bpf_csum_update(skb, 5));
    put(7, bpf_csum_level(skb, BPF_CSUM_LEVEL_QUERY));
    put(8, bpf_csum_level(skb, BPF_CSUM_LEVEL_INC));
    put(9, bpf_csum_level(skb, BPF_CSUM_LEVEL_QUERY));
    put(10, bpf_csum_level(skb, BPF_CSUM_LEVEL_INC));
    put(11, bpf_csum_level(skb, BPF_CSUM_LEVEL_QUERY));
    put(12, bpf_csum_level(skb, 9));
    return TC_ACT_OK;
}

SEC("tc")
int change_tail_grow(struct __sk_buff *skb) {
    __u32 len = skb->len;
    put(0, bpf_skb_change_tail(skb, len + 10, 0));
    put(1, skb->len);
    put(2, bpf_skb_change_tail(skb, len + 10, 1));
    put(3, bpf_skb_change_tail(skb, 13, 0));
    put(4, bpf_skb_change_tail(skb, 14, 0));
    put(5, skb->len);
    put(6, bpf_skb_change_tail(skb, 20000, 0));
    put(7, bpf_skb_change_tail(skb, len + 2, 0));
    put(8, skb->len);
    return TC_ACT_OK;
}

SEC("tc")
int change_head(struct __sk_buff *skb) {
    put(0, bpf_skb_change_head(skb, 14, 0));
    put(1, skb->len);
    put(2, bpf_skb_change_head(skb, 4, 1));
    put(3, bpf_skb_change_head(skb, 20000, 0));
    put(4, bpf_skb_change_head(skb, 100, 0));
    put(5, skb->len);
    __u8 buf[4];
    put(6, bpf_skb_load_bytes_relative(skb, 0, buf, 4, BPF_HDR_START_NET));
    put(7, word(buf));
    put(8, bpf_skb_load_bytes_relative(skb, 0, buf, 4, BPF_HDR_START_MAC));
    put(9, word(buf));
    return TC_ACT_OK;
}

SEC("tc")
int adjust_room_net(struct __sk_buff *skb) {
    put(0, bpf_skb_adjust_room(skb, 8, BPF_ADJ_ROOM_NET, 0));
    put(1, skb->len);
    put(2, bpf_skb_adjust_room(skb, -8, BPF_ADJ_ROOM_NET, 0));
    put(3, skb->len);
    put(4, bpf_skb_adjust_room(skb, 4, BPF_ADJ_ROOM_MAC, 0));
    put(5, skb->len);
    put(6, bpf_skb_adjust_room(skb, 4, 2, 0));
    put(7, bpf_skb_adjust_room(skb, 0x1000, BPF_ADJ_ROOM_MAC, 0));
    put(8, bpf_skb_adjust_room(skb, 4, BPF_ADJ_ROOM_MAC, 1ULL << 10));
    put(9, bpf_skb_adjust_room(skb, -1000, BPF_ADJ_ROOM_MAC, 0));
    put(10, bpf_skb_adjust_room(skb, -4, BPF_ADJ_ROOM_MAC, 0));
    put(11, skb->len);
    return TC_ACT_OK;
}

SEC("tc")
int adjust_room_encap(struct __sk_buff *skb) {
    put(0, bpf_skb_adjust_room(skb, 20, BPF_ADJ_ROOM_MAC,
                               BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO));
    put(1, skb->len);
    put(2, bpf_skb_adjust_room(skb, 20, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4));
    put(3, bpf_skb_change_tail(skb, skb->len, 0));
    put(4, skb->protocol);
    __u8 buf[4];
    put(5, bpf_skb_load_bytes_relative(skb, 0, buf, 4, BPF_HDR_START_NET));
    put(6, word(buf));
    return TC_ACT_OK;
}

SEC("tc")
int adjust_room_other(struct __sk_buff *skb) {
    put(0, bpf_skb_adjust_room(skb, 8, BPF_ADJ_ROOM_NET, 0));
    put(1, bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0));
    return TC_ACT_OK;
}

SEC("tc")
int change_proto(struct __sk_buff *skb) {
    put(0, bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 1));
    put(1, bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0));
    put(2, skb->protocol);
    put(3, skb->len);
    put(4, bpf_skb_change_proto(skb, bpf_htons(ETH_P_ARP), 0));
    put(5, bpf_skb_change_type(skb, 0 /* PACKET_HOST */));
    put(6, skb->pkt_type);
    put(7, bpf_skb_change_type(skb, 7));
    return TC_ACT_OK;
}

SEC("tc")
int vlan(struct __sk_buff *skb) {
    put(0, bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), 0x123));
    put(1, skb->vlan_present);
    put(2, skb->vlan_tci);
    put(3, skb->vlan_proto);
    put(4, skb->len);
    put(5, bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021AD), 0x456));
    put(6, skb->vlan_tci);
    put(7, skb->vlan_proto);
    put(8, skb->protocol);
    put(9, skb->len);
    __u8 buf[4];
    put(10, bpf_skb_load_bytes_relative(skb, 0, buf, 4, BPF_HDR_START_NET));
    put(11, word(buf));
    put(12, bpf_skb_vlan_push(skb, bpf_htons(0x1234), 0x789));
    put(13, skb->vlan_proto);
    put(14, skb->len);
    return TC_ACT_OK;
}

SEC("tc")
int vlan_pop(struct __sk_buff *skb) {
    put(0, skb->protocol);
    put(1, bpf_skb_vlan_pop(skb));
    put(2, skb->protocol);
    put(3, skb->vlan_present);
    put(4, skb->vlan_tci);
    put(5, skb->vlan_proto);
    put(6, skb->len);
    put(7, bpf_skb_vlan_pop(skb));
    put(8, skb->vlan_present);
    put(9, skb->protocol);
    put(10, bpf_skb_vlan_pop(skb));
    put(11, skb->len);
    return TC_ACT_OK;
}

// The kernel's flow hash has a random key drawn at boot, so only its properties are
// pinned: the value once computed stays, and a flow's two directions hash alike.
SEC("tc")
int hashes(struct __sk_buff *skb) {
    put(0, skb->hash);
    __u32 hash = bpf_get_hash_recalc(skb);
    put(1, hash != 0);
    put(2, skb->hash == hash);
    put(3, bpf_get_hash_recalc(skb) == hash);
    bpf_set_hash_invalid(skb);
    put(4, skb->hash);
    put(5, bpf_get_hash_recalc(skb) == hash);
    bpf_set_hash(skb, 0xabcd);
    put(6, skb->hash);
    put(7, bpf_get_hash_recalc(skb));
    return TC_ACT_OK;
}

SEC("tc")
int pull_data(struct __sk_buff *skb) {
    put(0, bpf_skb_pull_data(skb, 0));
    put(1, bpf_skb_pull_data(skb, skb->len));
    put(2, bpf_skb_pull_data(skb, skb->len + 1));
    put(3, bpf_get_cgroup_classid(skb));
    return TC_ACT_OK;
}

SEC("tc")
int redirect(struct __sk_buff *skb) {
    put(0, bpf_redirect(5, 2));
    put(1, bpf_clone_redirect(skb, 9999, 0));
    put(2, bpf_clone_redirect(skb, 1, 2));
    return bpf_redirect(5, BPF_F_INGRESS);
}

SEC("tc")
int clone_redirect(struct __sk_buff *skb) {
    put(0, bpf_clone_redirect(skb, 1, 0));
    return TC_ACT_SHOT;
}

SEC("tc")
int writes(struct __sk_buff *skb) {
    // The barriers keep clang from merging neighbouring stores into one wider store.
    skb->mark = 0x11223344;
    asm volatile("" ::: "memory");
    skb->priority = 7;
    asm volatile("" ::: "memory");
    skb->tc_index = 0x12345;
    asm volatile("" ::: "memory");
    skb->tc_classid = 0x10002;
    asm volatile("" ::: "memory");
    skb->queue_mapping = 3;
    put(0, skb->queue_mapping);
    skb->queue_mapping = 0xffff;
    put(1, skb->queue_mapping);
    skb->tstamp = 123456789;
    skb->cb[1] = 0xa1a1a1a1;
    *(volatile __u8 *)((char *)skb + 48 + 18) = 0x5a;
    put(2, skb->mark);
    put(3, skb->priority);
    put(4, skb->tc_index);
    put(5, skb->tc_classid);
    put(6, skb->tstamp);
    put(7, skb->cb[1]);
    put(8, skb->cb[4]);
    return TC_ACT_UNSPEC;
}
#endif

char LICENSE[] SEC("license") = "GPL";
