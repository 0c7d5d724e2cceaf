// One program per kind of section: the type and expected attach type come from the name.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tracepoint/syscalls/sys_enter_openat")
int trace_openat(void *ctx) { return 0; }

SEC("tp/sched/sched_switch")
int trace_switch(void *ctx) { return 0; }

SEC("kprobe/do_unlinkat")
int probe_unlinkat(void *ctx) { return 0; }

SEC("kretprobe/do_unlinkat")
int probe_unlinkat_ret(void *ctx) { return 0; }

SEC("uprobe/usr/lib/libc.so.6:malloc")
int probe_malloc(void *ctx) { return 0; }

SEC("ksyscall/openat")
int probe_sys_openat(void *ctx) { return 0; }

SEC("raw_tp/sys_enter")
int raw_enter(void *ctx) { return 0; }

SEC("tp_btf/sched_wakeup")
int btf_wakeup(void *ctx) { return 0; }

SEC("fentry/do_unlinkat")
int entry_unlinkat(void *ctx) { return 0; }

SEC("fexit/do_unlinkat")
int exit_unlinkat(void *ctx) { return 0; }

SEC("lsm/file_open")
int lsm_open(void *ctx) { return 0; }

SEC("iter/task")
int iter_task(void *ctx) { return 0; }

SEC("syscall")
int run_syscall(void *ctx) { return 0; }

SEC("xdp")
int xdp_prog(struct xdp_md *ctx) { return XDP_PASS; }

SEC("xdp.frags")
int xdp_frags_prog(struct xdp_md *ctx) { return XDP_PASS; }

SEC("tc")
int tc_prog(struct __sk_buff *skb) { return 0; }

SEC("tcx/ingress")
int tcx_in(struct __sk_buff *skb) { return 0; }

SEC("classifier")
int classifier_prog(struct __sk_buff *skb) { return 0; }

SEC("action")
int action_prog(struct __sk_buff *skb) { return 0; }

SEC("socket")
int socket_prog(struct __sk_buff *skb) { return 0; }

SEC("cgroup_skb/ingress")
int cgroup_in(struct __sk_buff *skb) { return 1; }

SEC("cgroup/sock_create")
int sock_create(void *ctx) { return 1; }

SEC("cgroup/connect4")
int connect4(void *ctx) { return 1; }

SEC("sk_skb/stream_verdict")
int skb_verdict(struct __sk_buff *skb) { return 0; }

SEC("sk_msg")
int msg_verdict(void *ctx) { return 0; }

SEC("sockops")
int sock_ops(void *ctx) { return 0; }

SEC("flow_dissector")
int dissect(void *ctx) { return 0; }

SEC("perf_event")
int on_sample(void *ctx) { return 0; }

SEC("lwt_xmit")
int lwt_out(void *ctx) { return 0; }

SEC("sk_reuseport")
int reuseport(void *ctx) { return 0; }

SEC("sk_lookup")
int lookup(void *ctx) { return 0; }

SEC("netfilter")
int nf_hook(void *ctx) { return 1; }

SEC("usdt/libc:setjmp")
int usdt_probe(void *ctx) { return 0; }

SEC("not_a_libbpf_section")
int unknown_kind(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
