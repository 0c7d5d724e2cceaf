// Who opens /etc/shadow?
//
// Tracepoints on the three system calls that open a file by name (open, openat and
// openat2) read the file name from the caller's memory. When it is exactly
// "/etc/shadow" and the calling task's name (comm) is not in `allowed_comms`, an alert
// goes to the `alerts` ring buffer with the task's pid, uid, comm, the file name and the
// system call's number. `counts` keeps [0] opens of /etc/shadow seen, [1] alerts raised,
// [2] alerts lost because the ring buffer was full, [3] names that could not be read.
//
// The context layouts are those of /sys/kernel/tracing/events/syscalls/*/format on
// Linux 6.18 (declared here rather than taken from a generated vmlinux.h).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define COMM_LEN 16
#define NAME_LEN 64

// syscalls/sys_enter_openat and sys_enter_openat2: the name is the second argument.
struct sys_enter_at {
	unsigned short common_type;
	unsigned char common_flags;
	unsigned char common_preempt_count;
	int common_pid;
	int syscall_nr;
	int pad;
	long dfd;
	const char *filename;
	long arg3; // openat: flags; openat2: struct open_how *
	long arg4; // openat: mode; openat2: size
};

// syscalls/sys_enter_open: the name is the first argument.
struct sys_enter_open {
	unsigned short common_type;
	unsigned char common_flags;
	unsigned char common_preempt_count;
	int common_pid;
	int syscall_nr;
	int pad;
	const char *filename;
	long flags;
	long mode;
};

struct alert {
	__u32 pid; // the process (tgid)
	__u32 tid; // the thread
	__u32 uid;
	__u32 syscall_nr;
	char comm[COMM_LEN];
	char filename[NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} alerts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[COMM_LEN]); // zero-padded
	__type(value, __u8);
} allowed_comms SEC(".maps");

enum { SHADOW_OPENS, ALERTS, ALERTS_LOST, UNREADABLE, COUNT_MAX };

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

static const char shadow[] = "/etc/shadow";

static __always_inline int check(const char *user_name, int syscall_nr)
{
	char name[NAME_LEN] = {};
	long n = bpf_probe_read_user_str(name, sizeof(name), user_name);
	if (n < 0) {
		count(UNREADABLE);
		return 0;
	}
	if (n != sizeof(shadow)) // the length read includes the NUL
		return 0;
#pragma unroll
	for (int i = 0; i < (int)sizeof(shadow) - 1; i++)
		if (name[i] != shadow[i])
			return 0;
	count(SHADOW_OPENS);

	char comm[COMM_LEN] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	if (bpf_map_lookup_elem(&allowed_comms, comm))
		return 0;

	struct alert *a = bpf_ringbuf_reserve(&alerts, sizeof(*a), 0);
	if (!a) {
		count(ALERTS_LOST);
		return 0;
	}
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	a->pid = pid_tgid >> 32;
	a->tid = (__u32)pid_tgid;
	a->uid = (__u32)bpf_get_current_uid_gid();
	a->syscall_nr = syscall_nr;
	__builtin_memcpy(a->comm, comm, COMM_LEN);
	__builtin_memcpy(a->filename, name, NAME_LEN);
	bpf_ringbuf_submit(a, 0);
	count(ALERTS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int shadow_openat(struct sys_enter_at *ctx)
{
	return check(ctx->filename, ctx->syscall_nr);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int shadow_openat2(struct sys_enter_at *ctx)
{
	return check(ctx->filename, ctx->syscall_nr);
}

SEC("tracepoint/syscalls/sys_enter_open")
int shadow_open(struct sys_enter_open *ctx)
{
	return check(ctx->filename, ctx->syscall_nr);
}

char LICENSE[] SEC("license") = "GPL";
