// bpf_trace_printk and bpf_trace_vprintk: debug output to the trace pipe.
//
// bpf_trace_printk(fmt, fmt_size, a, b, c) takes at most three arguments and writes a
// line to /sys/kernel/tracing/trace_pipe; bpf_printk() (bpf_helpers.h) calls it, or
// bpf_trace_vprintk (arguments in an array) when there are more than three. Both
// return the length of the text they wrote, or -EINVAL for a format the kernel does not
// accept. The formats are the kernel's printf subset: %d %i %u %x %X with l or ll,
// %c, %s, %%, %pI4/%pI6 (an address read through the pointer), flags 0 + - space and a
// width.
//
// The text itself only reaches the trace pipe, so the program keeps each helper's
// return value in `lengths`.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

static const char owner[] = "bpfsim";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __s64);
} lengths SEC(".maps");

static __always_inline void keep(__u32 slot, long value)
{
	__s64 *entry = bpf_map_lookup_elem(&lengths, &slot);
	if (entry)
		*entry = value;
}

SEC("xdp")
int print_packets(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	__u32 length = data_end - data;
	__u32 addresses[2] = { ip->saddr, ip->daddr };
	__s32 delta = (__s32)length - 100;

	static const char basic[] = "len=%u proto=0x%x ttl=%d\n";
	keep(0, bpf_trace_printk(basic, sizeof(basic), length, ip->protocol, ip->ttl));

	static const char route[] = "from %pI4 to %pI4\n";
	keep(1, bpf_trace_printk(route, sizeof(route), (long)&addresses[0], (long)&addresses[1]));

	// More than three arguments: bpf_printk uses bpf_trace_vprintk.
	keep(2, bpf_printk("[%5d] [%-5d] [%05u] [%+d] [% d]", delta, delta, length, length, delta));
	keep(3, bpf_printk("%c%c %s %lld %llx %X %%", 'o', 'k', owner, -1LL, 0xdeadbeefcafeULL, length));

	// %s of a pointer that cannot be read.
	static const char bad_string[] = "owner=%s\n";
	keep(4, bpf_trace_printk(bad_string, sizeof(bad_string), 0));

	// A conversion the kernel does not accept.
	static const char invalid[] = "%q\n";
	keep(5, bpf_trace_printk(invalid, sizeof(invalid), 1));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
