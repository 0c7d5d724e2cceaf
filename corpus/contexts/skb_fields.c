// Reads every __sk_buff field the program type may read and stores each in the array
// map `fields` (index = the field's row below), so bpfsim and the kernel can be compared
// field by field. Built three ways: -DTC (sched_cls), -DSOCKET (socket filter),
// -DCGROUP (cgroup_skb ingress); -DWRITES first writes the fields the type may write.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 64);
} fields SEC(".maps");

static __always_inline void put(__u32 index, __u64 value) {
    bpf_map_update_elem(&fields, &index, &value, BPF_ANY);
}

// A load of `size` bytes at `offset` of the context, as clang emits it for a cast.
#define CTX(type, offset) (*(volatile type *)((char *)skb + (offset)))

#if defined(TC)
#define SECTION "tc"
#define HAVE_DATA 1
#define HAVE_META 1
#define HAVE_TSTAMP 1
#define HAVE_WIRE_LEN 1
#define HAVE_CLASSID 1
#elif defined(CGROUP)
#define SECTION "cgroup_skb/ingress"
#define HAVE_DATA 1
#define HAVE_TSTAMP 1
#define HAVE_SOCKET_FIELDS 1
#else
#define SECTION "socket"
#endif

SEC(SECTION)
int skb_fields(struct __sk_buff *skb) {
#ifdef WRITES
    // The barriers keep clang from merging neighbouring stores into one wider store,
    // which the verifier would refuse.
#if defined(TC) || defined(CGROUP)
    skb->mark = 0x11223344;
    asm volatile("" ::: "memory");
    skb->priority = 7;
    asm volatile("" ::: "memory");
#endif
    skb->cb[0] = 0xa0a0a0a0;
    asm volatile("" ::: "memory");
    skb->cb[4] = 0xa4a4a4a4;
    asm volatile("" ::: "memory");
#if defined(TC)
    skb->tc_index = 0x1234;
    asm volatile("" ::: "memory");
    skb->tc_classid = 0x10002;
    asm volatile("" ::: "memory");
    skb->queue_mapping = 3;
    asm volatile("" ::: "memory");
    skb->tstamp = 123456789;
#endif
#if defined(CGROUP)
    skb->tstamp = 987654321;
#endif
    asm volatile("" ::: "memory");
#endif
    put(0, skb->len);
    put(1, skb->pkt_type);
    put(2, skb->mark);
    put(3, skb->queue_mapping);
    put(4, skb->protocol);
    put(5, skb->vlan_present);
    put(6, skb->vlan_tci);
    put(7, skb->vlan_proto);
    put(8, skb->priority);
    put(9, skb->ingress_ifindex);
    put(10, skb->ifindex);
    put(11, skb->tc_index);
    put(12, skb->cb[0]);
    put(13, skb->cb[1]);
    put(14, skb->cb[2]);
    put(15, skb->cb[3]);
    put(16, skb->cb[4]);
    put(17, skb->hash);
#ifdef HAVE_CLASSID
    put(18, skb->tc_classid);
#endif
#ifdef HAVE_DATA
    put(19, (__u64)(long)skb->data_end - (__u64)(long)skb->data);
#endif
    put(20, skb->napi_id);
#ifdef HAVE_SOCKET_FIELDS
    put(21, skb->family);
    put(22, skb->remote_ip4);
    put(23, skb->local_ip4);
    put(24, skb->remote_ip6[0]);
    put(25, skb->remote_ip6[3]);
    put(26, skb->local_ip6[0]);
    put(27, skb->local_ip6[3]);
    put(28, skb->remote_port);
    put(29, skb->local_port);
#endif
#ifdef HAVE_META
    put(30, (__u64)(long)skb->data - (__u64)(long)skb->data_meta);
#endif
#ifdef HAVE_TSTAMP
    put(31, skb->tstamp);
#endif
#ifdef HAVE_WIRE_LEN
    put(32, skb->wire_len);
#endif
    put(33, skb->gso_segs);
    put(34, skb->gso_size);
#if defined(TC)
    put(35, skb->tstamp_type);
    put(36, skb->hwtstamp);
#endif
    // Narrow loads: the kernel loads the whole field, then shifts and masks.
    put(40, CTX(__u8, 16));   // protocol, low byte
    put(41, CTX(__u8, 17));   // protocol, second byte
    put(42, CTX(__u16, 18));  // protocol, upper half
    put(43, CTX(__u8, 4));    // pkt_type
    put(44, CTX(__u16, 2));   // len, upper half
    put(45, CTX(__u8, 49));   // cb[0], second byte
    put(46, CTX(__u64, 48));  // cb[0] and cb[1]
    put(47, CTX(__u8, 19));   // protocol, fourth byte
    put(48, CTX(__u16, 8));   // mark, lower half
#if defined(TC)
    return TC_ACT_OK;
#elif defined(CGROUP)
    return 1;
#else
    return skb->len;
#endif
}

char LICENSE[] SEC("license") = "GPL";
