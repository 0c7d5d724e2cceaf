// libbpf's BPF_KSYSCALL and kretsyscall, as tools write them: the macro tests the
// LINUX_HAS_SYSCALL_WRAPPER kconfig extern and, on x86-64 (which has the wrappers),
// reads the arguments from the user registers behind the wrapper's first argument.
#define __TARGET_ARCH_x86
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

SEC("ksyscall/openat")
int BPF_KSYSCALL(ks_openat, int dfd, const char *filename, int flags) {
    char name[32];
    long length = bpf_probe_read_user_str(name, sizeof(name), filename);
    bpf_printk("openat dfd=%d flags=%d len=%ld", dfd, flags, length);
    bpf_printk("openat %s", name);
    return 0;
}

SEC("kretsyscall/openat")
int BPF_KRETPROBE(kret_openat, long ret) {
    bpf_printk("openat returned %ld", ret);
    return 0;
}
