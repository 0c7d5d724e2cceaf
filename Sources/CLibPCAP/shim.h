// The one place bpfsim reaches libpcap. Only BPFHarness imports this module, and no
// libpcap type (pcap_t, pcap_dumper_t, struct pcap_pkthdr) appears in its public interface.
#ifndef BPFSIM_CLIBPCAP_SHIM_H
#define BPFSIM_CLIBPCAP_SHIM_H

#include <stdio.h>

// libpcap's classic-BPF `struct bpf_insn` and `struct bpf_program` share their names with
// the kernel's eBPF `struct bpf_insn` (linux/bpf.h, which CLibBPF includes). A Swift module
// that sees both C modules can then fail to build, depending on the order the module cache
// is filled. bpfsim uses neither of libpcap's, so they get names of their own here; the
// functions keep theirs, and the ABI is unchanged.
#define bpf_insn bpfsim_pcap_bpf_insn
#define bpf_program bpfsim_pcap_bpf_program
#include <pcap/pcap.h>
#undef bpf_insn
#undef bpf_program

// pcap_dump's first parameter is a `u_char *` so that it can be a pcap_handler; it is
// really the dumper. Taking the dumper here keeps that cast out of Swift.
static inline void bpfsim_pcap_dump(pcap_dumper_t *dumper, const struct pcap_pkthdr *header,
                                    const u_char *bytes) {
    pcap_dump((u_char *)dumper, header, bytes);
}

// Whether the dumper's stdio stream has seen a write error: pcap_dump itself reports none.
static inline int bpfsim_pcap_dump_failed(pcap_dumper_t *dumper) {
    return ferror(pcap_dump_file(dumper));
}

#endif
