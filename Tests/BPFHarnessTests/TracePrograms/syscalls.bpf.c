// Programs on every system-call attachment bpfsim's trace replay fires, for
// TraceReplayTests. Record layouts come from this machine's tracefs format files
// (/sys/kernel/tracing/events/syscalls/sys_enter_openat/format and friends).
#define __TARGET_ARCH_x86
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

enum source { FROM_TRACEPOINT = 1, FROM_RAW_TP = 2, FROM_KPROBE = 3 };

struct open_event {
    __u64 ts;
    __u32 pid;
    __u32 tgid;
    __u32 uid;
    __u32 gid;
    __u32 cpu;
    __s32 len;
    enum source source;
    __s32 flags;
    char comm[16];
    char filename[32];
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} events SEC(".maps");

// The last open_event per tgid (its value type also puts struct open_event in the BTF).
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, __u32);
    __type(value, struct open_event);
    __uint(max_entries, 64);
} last SEC(".maps");

// Counts per system call number, from raw_syscalls/sys_enter.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, __u64);
    __type(value, __u64);
    __uint(max_entries, 512);
} counts SEC(".maps");

// openat's returns, from the kretprobe, through a perf buffer.
struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} exits SEC(".maps");

struct exit_event {
    __u32 pid;
    __s32 ret;
};

// Slots: 0 sys_exit_openat ret, 1 raw_tp sys_enter id, 2 raw_tp di, 3 raw_tp filename length,
// 4 kprobe dfd, 5 kprobe flags, 6 kprobe filename length, 7 kretprobe ax, 8 raw_tp sys_exit ret,
// 9 raw_syscalls sys_exit ret, 10 probe_read_user on a bad pointer.
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __s64);
    __uint(max_entries, 16);
} slots SEC(".maps");

static __always_inline void put(__u32 index, __s64 value) {
    bpf_map_update_elem(&slots, &index, &value, BPF_ANY);
}

static __always_inline void fill(struct open_event *e, const char *filename, enum source source, long flags) {
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u64 uid_gid = bpf_get_current_uid_gid();
    e->ts = bpf_ktime_get_ns();
    e->pid = (__u32)pid_tgid;
    e->tgid = pid_tgid >> 32;
    e->uid = (__u32)uid_gid;
    e->gid = uid_gid >> 32;
    e->cpu = bpf_get_smp_processor_id();
    e->source = source;
    e->flags = flags;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    e->len = bpf_probe_read_user_str(e->filename, sizeof(e->filename), filename);
}

// syscalls/sys_enter_openat: int __syscall_nr at 8, dfd at 16, filename at 24, flags at 32, mode at 40.
struct openat_enter_args {
    __u64 common;
    int syscall_nr;
    long dfd;
    const char *filename;
    long flags;
    long mode;
};

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_openat(struct openat_enter_args *ctx) {
    struct open_event e = {};
    fill(&e, ctx->filename, FROM_TRACEPOINT, ctx->flags);
    __u32 tgid = e.tgid;
    bpf_map_update_elem(&last, &tgid, &e, BPF_ANY);
    bpf_printk("openat %s", e.filename);
    bpf_ringbuf_output(&events, &e, sizeof(e), 0);
    return 0;
}

// syscalls/sys_exit_openat: int __syscall_nr at 8, long ret at 16.
struct exit_args {
    __u64 common;
    int syscall_nr;
    long ret;
};

SEC("tracepoint/syscalls/sys_exit_openat")
int tp_openat_exit(struct exit_args *ctx) {
    put(0, ctx->ret);
    return 0;
}

// raw_syscalls/sys_enter: long id at 8, unsigned long args[6] at 16.
struct raw_enter_args {
    __u64 common;
    long id;
    unsigned long args[6];
};

SEC("tracepoint/raw_syscalls/sys_enter")
int tp_raw_enter(struct raw_enter_args *ctx) {
    __u64 id = ctx->id, one = 1;
    __u64 *count = bpf_map_lookup_elem(&counts, &id);
    if (count)
        __sync_fetch_and_add(count, 1);
    else
        bpf_map_update_elem(&counts, &id, &one, BPF_ANY);
    return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int tp_raw_exit(struct exit_args *ctx) {
    put(9, ctx->ret);
    return 0;
}

// raw_tp/sys_enter: (struct pt_regs *regs, long id).
SEC("raw_tp/sys_enter")
int raw_enter(struct bpf_raw_tracepoint_args *ctx) {
    struct pt_regs regs;
    char name[32];
    if (ctx->args[1] != 257)  // openat
        return 0;
    bpf_probe_read_kernel(&regs, sizeof(regs), (void *)ctx->args[0]);
    put(1, ctx->args[1]);
    put(2, regs.rdi);
    put(3, bpf_probe_read_user_str(name, sizeof(name), (void *)regs.rsi));
    return 0;
}

// raw_tp/sys_exit: (struct pt_regs *regs, long ret).
SEC("raw_tp/sys_exit")
int raw_exit(struct bpf_raw_tracepoint_args *ctx) {
    put(8, ctx->args[1]);
    return 0;
}

// The x86-64 wrapper __x64_sys_openat(const struct pt_regs *regs): the user registers
// are behind PARM1 (PT_REGS_SYSCALL_REGS), read as BPF_KSYSCALL reads them on a kernel
// with syscall wrappers, here copied whole so no CO-RE relocation is needed.
SEC("kprobe/__x64_sys_openat")
int kp_openat(struct pt_regs *ctx) {
    struct pt_regs regs;
    char name[32];
    long bad;
    bpf_probe_read_kernel(&regs, sizeof(regs), (void *)PT_REGS_SYSCALL_REGS(ctx));
    put(4, PT_REGS_PARM1_SYSCALL(&regs));
    put(5, PT_REGS_PARM3_SYSCALL(&regs));
    put(6, bpf_probe_read_user_str(name, sizeof(name), (void *)PT_REGS_PARM2_SYSCALL(&regs)));
    put(10, bpf_probe_read_user(&bad, sizeof(bad), (void *)PT_REGS_PARM4_SYSCALL(&regs)));
    return 0;
}

SEC("kretprobe/__x64_sys_openat")
int BPF_KRETPROBE(kretp_openat, long ret) {
    struct exit_event e = { .pid = (__u32)bpf_get_current_pid_tgid(), .ret = ret };
    put(7, ret);
    bpf_perf_event_output(ctx, &exits, BPF_F_CURRENT_CPU, &e, sizeof(e));
    return 0;
}
