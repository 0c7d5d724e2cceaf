// Map types with every kind of BTF value bpftool formats: TraceBTFFormatTests compares
// bpfsim's formatter with `bpftool map dump -j` on this object loaded in the kernel.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

enum color { RED = 0, GREEN = 1, BLUE = -2 };

struct inner {
    __u16 a;
    __s8 b;
    unsigned char bytes[3];
};

union word {
    __u32 value;
    __u8 bytes[4];
};

struct key {
    __u32 id;
    char tag[4];
};

struct value {
    __u64 big;
    __s32 negative;
    char name[8];
    enum color color;
    unsigned int flag : 1;
    unsigned int mode : 3;
    int signed_bits : 4;
    struct inner inner[2];
    union word word;
    _Bool ok;
    char raw[4];
    __u8 small[2];
    signed char tiny;
    void *pointer;
    __s64 matrix[2][2];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, struct key);
    __type(value, struct value);
    __uint(max_entries, 4);
} values SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __type(key, __u32);
    __type(value, enum color);
    __uint(max_entries, 2);
} colors SEC(".maps");

SEC("xdp")
int touch(struct xdp_md *ctx) {
    struct key k = {};
    struct value *v = bpf_map_lookup_elem(&values, &k);
    __u32 i = 0;
    enum color *c = bpf_map_lookup_elem(&colors, &i);
    return (v ? 1 : 0) + (c ? 1 : 0);
}
