// The one place bpfsim reaches libbpf. Only BPFKernel imports this module, and no
// libbpf type (struct bpf_object, struct bpf_program, ...) appears in its public interface.
//
// Two things Swift cannot do on Linux are done here, in small inline functions:
// receive libbpf's printf-style messages (a va_list callback), and pin the calling
// thread to a CPU (sched_setaffinity is a GNU extension the Glibc module leaves out).
#ifndef BPFSIM_CLIBBPF_SHIM_H
#define BPFSIM_CLIBBPF_SHIM_H

#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

/// Where libbpf's messages go, one formatted message at a time; NULL drops them.
typedef void (*bpfsim_libbpf_sink_fn)(int level, const char *message);

// A function-local static: Swift emits inline functions it calls, not header globals.
static inline bpfsim_libbpf_sink_fn *bpfsim_libbpf_sink_slot(void) {
    static bpfsim_libbpf_sink_fn sink;
    return &sink;
}

static inline int bpfsim_libbpf_print(enum libbpf_print_level level, const char *format, va_list args) {
    char message[2048];
    vsnprintf(message, sizeof message, format, args);
    bpfsim_libbpf_sink_fn sink = *bpfsim_libbpf_sink_slot();
    if (sink) sink((int)level, message);
    return 0;
}

/// Sends every libbpf message to `sink` (process-wide; libbpf has one print function).
static inline void bpfsim_libbpf_set_sink(bpfsim_libbpf_sink_fn sink) {
    *bpfsim_libbpf_sink_slot() = sink;
    libbpf_set_print(bpfsim_libbpf_print);
}

/// sched_getaffinity(2) and sched_setaffinity(2) for the calling thread; `mask` holds
/// `size` bytes of CPU bits. Return 0 or -1 with errno set (the raw syscalls return the
/// size copied for getaffinity, which is folded into 0 here).
static inline int bpfsim_get_affinity(void *mask, size_t size) {
    long result = syscall(SYS_sched_getaffinity, 0, size, mask);
    return result < 0 ? -1 : 0;
}

static inline int bpfsim_set_affinity(const void *mask, size_t size) {
    return (int)syscall(SYS_sched_setaffinity, 0, size, mask);
}

#endif
