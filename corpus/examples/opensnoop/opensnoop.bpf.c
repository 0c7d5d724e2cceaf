// opensnoop: every openat(2), with its result.
//
// The entry tracepoint reads the file name from the caller's memory while it is still
// there and keeps it, with the flags, under the calling thread's id in `pending`. The exit
// tracepoint takes that entry out, and sends one event with the process and thread ids,
// uid, comm, flags, the return value (a file descriptor, or -errno) and the name through
// the `events` ring buffer. `counts` keeps [0] events sent, [1] events lost because the
// ring buffer was full, [2] exits with no entry (a tracer attached mid-call).
//
// The context layouts are those of /sys/kernel/tracing/events/syscalls/sys_enter_openat
// and sys_exit_openat/format on Linux 6.18.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define COMM_LEN 16
#define NAME_LEN 128

struct sys_enter_openat {
	unsigned short common_type;
	unsigned char common_flags;
	unsigned char common_preempt_count;
	int common_pid;
	int syscall_nr;
	int pad;
	long dfd;
	const char *filename;
	long flags;
	long mode;
};

struct sys_exit {
	unsigned short common_type;
	unsigned char common_flags;
	unsigned char common_preempt_count;
	int common_pid;
	int syscall_nr;
	int pad;
	long ret;
};

struct pending_open {
	__u32 flags;
	__u32 pad;
	char filename[NAME_LEN];
};

struct open_event {
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 flags;
	__s64 ret;
	char comm[COMM_LEN];
	char filename[NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); // thread id
	__type(value, struct pending_open);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

enum { SENT, LOST, MISSED_ENTRY, COUNT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, COUNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&counts, &slot);
	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int opensnoop_enter(struct sys_enter_openat *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_open entry = {.flags = (__u32)ctx->flags};
	// A name that cannot be read is kept empty: the open is still reported.
	bpf_probe_read_user_str(entry.filename, sizeof(entry.filename), ctx->filename);
	bpf_map_update_elem(&pending, &tid, &entry, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int opensnoop_exit(struct sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct pending_open *entry = bpf_map_lookup_elem(&pending, &tid);
	if (!entry) {
		count(MISSED_ENTRY);
		return 0;
	}
	struct open_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(LOST);
		bpf_map_delete_elem(&pending, &tid);
		return 0;
	}
	e->pid = pid_tgid >> 32;
	e->tid = tid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->flags = entry->flags;
	e->ret = ctx->ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memcpy(e->filename, entry->filename, NAME_LEN);
	bpf_ringbuf_submit(e, 0);
	bpf_map_delete_elem(&pending, &tid);
	count(SENT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
