// String helpers: parse "key=value" settings with bpf_strncmp, bpf_strtoul and
// bpf_strtol, and describe them with bpf_snprintf.
//
// Each UDP packet to port 7000 carries one setting as text ("rate=1500",
// "port=0x1f90", "delta=-42"). The program copies the payload to the stack,
// finds the key with bpf_strncmp (its second string must be a constant in read-only
// global data), parses the number, and writes a sentence about it into the map entry
// for that key with bpf_snprintf (whose format must be a constant too).
//
// bpf_strtoul/bpf_strtol(buf, len, base, &result) return how many characters they
// consumed, or -EINVAL (no number) or -ERANGE (it does not fit); base 0 accepts 0x
// and 0 prefixes. bpf_snprintf returns the length it needed, NUL included.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TEXT 32

static const char rate_key[] = "rate=";
static const char port_key[] = "port=";
static const char delta_key[] = "delta=";
static const char rate_format[] = "rate %lu pps";
static const char port_format[] = "port %u (0x%04x)";
static const char delta_format[] = "delta %+ld, %s";
static const char unknown_format[] = "unknown: '%s'";
static const char negative[] = "down";
static const char positive[] = "up";

enum setting { RATE, PORT, DELTA, UNKNOWN, SETTING_COUNT };

struct parsed_setting {
	__s64 value;
	__s64 parsed;  // what bpf_strtoul/bpf_strtol returned
	__s64 written; // what bpf_snprintf returned
	__s64 compare; // bpf_strncmp of the text against "rate="
	char text[40]; // bpf_snprintf's output
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SETTING_COUNT);
	__type(key, __u32);
	__type(value, struct parsed_setting);
} settings SEC(".maps");

SEC("xdp")
int parse_settings(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	struct udphdr *udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(7000))
		return XDP_PASS;
	char *payload = (void *)(udp + 1);
	if ((void *)(payload + TEXT) > data_end)
		return XDP_DROP;
	char text[TEXT + 1] = {};
	__builtin_memcpy(text, payload, TEXT); // text[TEXT] stays 0

	__u32 key;
	struct parsed_setting result = {};
	__u64 args[2] = {};
	result.compare = bpf_strncmp(text, sizeof(rate_key) - 1, rate_key);
	if (result.compare == 0) {
		key = RATE;
		result.parsed = bpf_strtoul(text + 5, TEXT - 5, 10, (unsigned long *)&result.value);
		args[0] = result.value;
		result.written = bpf_snprintf(result.text, sizeof(result.text), rate_format, args, 8);
	} else if (bpf_strncmp(text, sizeof(port_key) - 1, port_key) == 0) {
		key = PORT;
		result.parsed = bpf_strtoul(text + 5, TEXT - 5, 0, (unsigned long *)&result.value);
		args[0] = result.value;
		args[1] = result.value;
		result.written = bpf_snprintf(result.text, sizeof(result.text), port_format, args, 16);
	} else if (bpf_strncmp(text, sizeof(delta_key) - 1, delta_key) == 0) {
		key = DELTA;
		result.parsed = bpf_strtol(text + 6, TEXT - 6, 0, (long *)&result.value);
		args[0] = result.value;
		args[1] = (__u64)(long)(result.value < 0 ? negative : positive);
		result.written = bpf_snprintf(result.text, sizeof(result.text), delta_format, args, 16);
	} else {
		key = UNKNOWN;
		args[0] = (__u64)(long)text;
		result.written = bpf_snprintf(result.text, sizeof(result.text), unknown_format, args, 8);
	}
	bpf_map_update_elem(&settings, &key, &result, BPF_ANY);
	return result.parsed < 0 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
