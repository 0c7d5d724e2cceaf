// Tracing programs. raw_args runs in the kernel (BPF_PROG_TEST_RUN takes a raw
// tracepoint's arguments as ctx_in); the others cannot be test-run by the kernel, so
// their layouts are pinned against this machine's tracefs format files and BTF
// (tracefs/ beside this file) instead.
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 16);
} out SEC(".maps");

static __always_inline void put(__u32 index, __u64 value) {
    bpf_map_update_elem(&out, &index, &value, BPF_ANY);
}

SEC("raw_tp/sys_enter")
int raw_args(struct bpf_raw_tracepoint_args *ctx) {
    put(0, ctx->args[0]);
    put(1, ctx->args[1]);
    put(2, ctx->args[2]);
    put(3, *(volatile __u32 *)((char *)ctx + 28));  // the upper half of args[3]
    put(4, *(volatile __u8 *)((char *)ctx + 8));    // the low byte of args[1]
    return 5;
}

// raw_syscalls' raw tracepoint: args[0] is the task's struct pt_regs *, args[1] the number.
SEC("raw_tp/sys_enter")
int raw_sys_enter(struct bpf_raw_tracepoint_args *ctx) {
    struct pt_regs regs;
    put(0, bpf_probe_read_kernel(&regs, sizeof(regs), (void *)ctx->args[0]));
    put(1, ctx->args[1]);
    put(2, regs.orig_rax);
    put(3, regs.rdi);
    put(4, regs.rsi);
    put(5, regs.r10);
    return 0;
}

// syscalls/sys_enter_openat, as /sys/kernel/tracing/events/syscalls/sys_enter_openat/format lays it out.
struct openat_enter {
    unsigned short common_type;
    unsigned char common_flags;
    unsigned char common_preempt_count;
    int common_pid;
    int syscall_nr;
    long dfd;
    long filename;
    long flags;
    long mode;
};

SEC("tracepoint/syscalls/sys_enter_openat")
int openat_enter(struct openat_enter *ctx) {
    put(0, ctx->syscall_nr);
    put(1, ctx->dfd);
    put(2, ctx->filename);
    put(3, ctx->flags);
    put(4, ctx->mode);
    return 1;
}

struct sys_exit {
    unsigned short common_type;
    unsigned char common_flags;
    unsigned char common_preempt_count;
    int common_pid;
    int syscall_nr;
    long ret;
};

SEC("tracepoint/syscalls/sys_exit_openat")
int openat_exit(struct sys_exit *ctx) {
    put(0, ctx->syscall_nr);
    put(1, ctx->ret);
    return 0;
}

// The common header is not readable: this program faults (the kernel's verifier refuses it).
SEC("tracepoint/syscalls/sys_exit_openat")
int reads_header(struct sys_exit *ctx) {
    return ctx->common_pid;
}

struct raw_enter {
    unsigned long long common;
    long id;
    unsigned long args[6];
};

SEC("tracepoint/raw_syscalls/sys_enter")
int any_enter(struct raw_enter *ctx) {
    put(0, ctx->id);
    put(1, ctx->args[0]);
    put(2, ctx->args[5]);
    return 1;
}

SEC("kprobe/do_sys_openat2")
int kprobe_args(struct pt_regs *ctx) {
    put(0, ctx->rdi);
    put(1, ctx->rsi);
    put(2, ctx->rdx);
    put(3, ctx->rcx);
    put(4, ctx->r8);
    put(5, ctx->r9);
    put(6, ctx->rip);
    return 0;
}

SEC("kretprobe/do_sys_openat2")
int kretprobe_ret(struct pt_regs *ctx) {
    put(0, ctx->rax);
    return 0;
}

// Tracing contexts are read-only: this store faults (the kernel's verifier refuses it).
SEC("kprobe/do_sys_openat2")
int kprobe_write(struct pt_regs *ctx) {
    ctx->rax = 1;
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
