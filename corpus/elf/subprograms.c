// Subprograms: static functions in .text, a global function in .text, nested calls,
// calls from two programs, and a bpf_loop callback (a function pointer).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __attribute__((noinline)) int square(int x)
{
	return x * x;
}

static __attribute__((noinline)) int sum_squares(int a, int b)
{
	return square(a) + square(b);
}

__attribute__((noinline)) int global_helper(int v)
{
	return v + 1;
}

struct loop_state {
	__u64 total;
};

static long add_index(__u64 index, void *data)
{
	struct loop_state *state = data;
	state->total += index;
	return 0;
}

SEC("xdp")
int uses_calls(struct xdp_md *ctx)
{
	return sum_squares(ctx->ingress_ifindex, 3) + global_helper(1);
}

SEC("tc")
int uses_loop(struct __sk_buff *skb)
{
	struct loop_state state = { .total = 0 };
	bpf_loop(10, add_index, &state, 0);
	return state.total + square(skb->len);
}

char LICENSE[] SEC("license") = "GPL";
