// A program that reads past its tracepoint record: syscalls/sys_enter_close has one
// argument (fd at 16; the record is 24 bytes, /sys/kernel/tracing/events/syscalls/
// sys_enter_close/format), and this one reads a second. The kernel would refuse to attach
// it; bpfsim faults when it runs, and the trace replay reports the event's line.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct close_args {
    __u64 common;
    int syscall_nr;
    long fd;
    long beyond;
};

SEC("tracepoint/syscalls/sys_enter_close")
int close_beyond(struct close_args *ctx) {
    return ctx->beyond != 0;
}
