// bpf_probe_read_kernel and bpf_probe_read_kernel_str: copy memory that may not be
// readable.
//
// Tracing programs use these to read kernel memory through pointers the verifier cannot
// check. A failed read returns -EFAULT and zeroes the destination instead of crashing.
// bpf_probe_read_kernel_str copies up to a NUL, always NUL-terminates, and returns the
// length copied including the NUL. Here the sources are the stack, a map value and
// read-only global data, and NULL for the failures.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static const char greeting[] = "hello, kernel";

struct copy {
	__s64 result;
	char bytes[24];
};

enum attempt {
	FROM_STACK,       // 16 bytes from the stack
	FROM_MAP,         // 8 bytes from another map value
	FROM_NULL,        // 8 bytes from NULL: -EFAULT, zeroed
	STRING,           // a whole string
	STRING_CUT,       // a string longer than the buffer: cut and NUL-terminated
	STRING_FROM_NULL, // -EFAULT
	ATTEMPT_COUNT,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ATTEMPT_COUNT);
	__type(key, __u32);
	__type(value, struct copy);
} copies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} secret SEC(".maps");

static __always_inline void save(__u32 attempt, struct copy *copy)
{
	bpf_map_update_elem(&copies, &attempt, copy, BPF_ANY);
}

SEC("xdp")
int read_memory(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *hidden = bpf_map_lookup_elem(&secret, &zero);
	if (!hidden)
		return XDP_ABORTED;
	*hidden += 0x1111111111111111; // changes with every packet

	char stack[16] = "on the stack!";
	struct copy copy = {};
	copy.result = bpf_probe_read_kernel(copy.bytes, sizeof(stack), stack);
	save(FROM_STACK, &copy);

	__builtin_memset(&copy, 0, sizeof(copy));
	copy.result = bpf_probe_read_kernel(copy.bytes, 8, hidden);
	save(FROM_MAP, &copy);

	__builtin_memset(&copy, 0xaa, sizeof(copy));
	copy.result = bpf_probe_read_kernel(copy.bytes, 8, NULL);
	save(FROM_NULL, &copy);

	__builtin_memset(&copy, 0, sizeof(copy));
	copy.result = bpf_probe_read_kernel_str(copy.bytes, sizeof(copy.bytes), greeting);
	save(STRING, &copy);

	__builtin_memset(&copy, 0, sizeof(copy));
	copy.result = bpf_probe_read_kernel_str(copy.bytes, 6, greeting);
	save(STRING_CUT, &copy);

	__builtin_memset(&copy, 0xaa, sizeof(copy));
	copy.result = bpf_probe_read_kernel_str(copy.bytes, sizeof(copy.bytes), NULL);
	save(STRING_FROM_NULL, &copy);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
