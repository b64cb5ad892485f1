// SPDX-License-Identifier: GPL-2.0-only
/*
 * Per-packet cost programs, run with non-live BPF_PROG_TEST_RUN:
 *
 *   bench_pass          XDP_PASS baseline
 *   bench_redirect      redirect-only baseline (devmap slot 0)
 *   bench_harness_wan   the router's WAN / LAN XDP paths (wan_path/lan_path
 *   bench_harness_lan   of bpf/lib/datapath.h, the code xdnat_wan_xdp and
 *                       xdnat_lan_xdp run), inlined here.  Around it the
 *                       harness varies the flow key and
 *                       afterwards undoes the head adjustment and restores
 *                       the header bytes, so that each of `repeat` runs sees
 *                       the original frame (a non-live run never resets it).
 *   bench_harness_nop   the same harness around nothing: its cost is
 *                       subtracted.
 *   bench_harness_min   the minimal encapsulating router (bench_common.h)
 *                       in the same harness: the baseline xdnat is
 *                       measured against.
 *   bench_min_live      the same minimal router as a plain XDP program,
 *                       attached to a veth for the live comparison.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bench_common.h"

/* The router's datapath library (bpf/lib/): its maps and configuration, and
 * the XDP action paths the harness calls. */
#include "lib/datapath.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_tx SEC(".maps");

/* Flow values, BENCH_COST_FLOWS per case, case c at c * BENCH_COST_FLOWS. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_COST_CASES * BENCH_COST_FLOWS);
	__type(key, __u32);
	__type(value, struct bench_vary_val);
} bench_vals SEC(".maps");

/* Set by the driver before each run (mmapped .bss). */
__u32 vary_mode;          /* enum bench_vary */
__u32 vary_base;          /* first bench_vals index of the case */
__u32 iter;
__u64 verdicts[8];        /* per XDP verdict; [7]: harness failures */

SEC("xdp")
int bench_pass(struct xdp_md *ctx __attribute__((unused)))
{
	return XDP_PASS;
}

SEC("xdp")
int bench_redirect(struct xdp_md *ctx __attribute__((unused)))
{
	return bpf_redirect_map(&bench_tx, 0, 0);
}

static __always_inline int harness_fail(void)
{
	verdicts[7]++;
	return XDP_ABORTED;
}

/* The minimal router's table, filled by the driver with the UDP flows. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BENCH_COST_FLOWS);
	__type(key, struct bench_min_key);
	__type(value, struct bench_min_val);
} bench_min_fwd SEC(".maps");

/* Parse Ethernet/IPv4/L4 ports, look the flow up, prepend IPv4, redirect. */
static __always_inline int minimal_router(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data, saved;
	struct iphdr *ip = (void *)(eth + 1), *outer, *inner;
	struct bench_min_key k = {};
	struct bench_min_val *v;
	struct udphdr *uh;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return XDP_PASS;
	uh = (void *)(ip + 1);
	if ((void *)(uh + 1) > data_end)
		return XDP_PASS;
	k.daddr = ip->daddr;
	k.dport = uh->dest;
	v = bpf_map_lookup_elem(&bench_min_fwd, &k);
	if (!v)
		return XDP_DROP;
	saved = *eth;
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	outer = (void *)(eth + 1);
	inner = outer + 1;
	if ((void *)(inner + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, v->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, v->smac, ETH_ALEN);
	eth->h_proto = saved.h_proto;
	xdnat_write_outer(outer, inner, cfg.lan_addr, v->lan);
	return bpf_redirect_map(&bench_tx, 0, 0);
}

/* Live: the minimal router on its own WAN veth (redirects to bench_tx[0]). */
SEC("xdp")
int bench_min_live(struct xdp_md *ctx)
{
	return minimal_router(ctx);
}

enum { H_NOP, H_WAN, H_LAN, H_MIN };

static __always_inline int harness(struct xdp_md *ctx, int which)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 save[BENCH_SAVE_LEN / 8];
	long len0, len1;
	int rc;

	if (data + BENCH_SAVE_LEN > data_end)
		return harness_fail();
	if (vary_mode != BENCH_VARY_NONE) {
		__u32 k = vary_base + (iter++ & (BENCH_COST_FLOWS - 1));
		struct bench_vary_val *v = bpf_map_lookup_elem(&bench_vals, &k);

		if (!v)
			return harness_fail();
		switch (vary_mode) {
		case BENCH_VARY_DPORT:
			*(__be32 *)(data + BENCH_OFF_IP + 16) = v->c;
			*(__be16 *)(data + BENCH_OFF_L4 + 2) = bpf_htons((__u16)v->a);
			break;
		case BENCH_VARY_ESP_SPI:
			*(__be32 *)(data + BENCH_OFF_IP + 16) = v->c;
			*(__be32 *)(data + BENCH_OFF_L4) = bpf_htonl(v->a);
			break;
		case BENCH_VARY_AH_SPI:
			*(__be32 *)(data + BENCH_OFF_IP + 16) = v->c;
			*(__be32 *)(data + BENCH_OFF_L4 + 4) = bpf_htonl(v->a);
			break;
		case BENCH_VARY_LAN:
			*(__be32 *)(data + BENCH_OFF_IP + 12) = v->b;
			*(__be32 *)(data + BENCH_OFF_L4 + 12) = v->c;
			*(__be16 *)(data + BENCH_OFF_L4 + 20) = bpf_htons((__u16)v->a);
			break;
		}
	}
	__builtin_memcpy(save, data, BENCH_SAVE_LEN);
	len0 = data_end - data;

	if (which == H_WAN) {
		rc = wan_path(ctx_xdp(ctx));
	} else if (which == H_LAN) {
		rc = lan_path(ctx_xdp(ctx));
	} else if (which == H_MIN) {
		rc = minimal_router(ctx);
	} else {
		/* mirrors the undo below, which the router cases always do */
		if (bpf_xdp_adjust_head(ctx, 0))
			return harness_fail();
		rc = XDP_PASS;
	}

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	len1 = data_end - data;
	if (len1 != len0 && bpf_xdp_adjust_head(ctx, (int)(len1 - len0)))
		return harness_fail();
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + BENCH_SAVE_LEN > data_end)
		return harness_fail();
	__builtin_memcpy(data, save, BENCH_SAVE_LEN);
	verdicts[rc & 7]++;
	return rc;
}

#define HARNESS(name, which)                    \
	SEC("xdp")                              \
	int name(struct xdp_md *ctx)            \
	{                                       \
		return harness(ctx, which);     \
	}

HARNESS(bench_harness_nop, H_NOP)
HARNESS(bench_harness_wan, H_WAN)
HARNESS(bench_harness_lan, H_LAN)
HARNESS(bench_harness_min, H_MIN)

/*
 * Profile baseline: what the router's WAN path pays for its next hop alone,
 * a bpf_fib_lookup() to a host's LAN address (varied like the LAN case's
 * hosts) followed by the redirect.
 */
SEC("xdp")
int bench_fib(struct xdp_md *ctx)
{
	__u32 k = vary_base + (iter++ & (BENCH_COST_FLOWS - 1));
	struct bench_vary_val *v = bpf_map_lookup_elem(&bench_vals, &k);
	struct bpf_fib_lookup fib = {};

	if (!v)
		return harness_fail();
	fib.family = AF_INET;
	fib.l4_protocol = IPPROTO_IPIP;
	fib.tot_len = 84;
	fib.ifindex = ctx->ingress_ifindex;
	fib.ipv4_src = cfg.lan_addr;
	fib.ipv4_dst = v->b;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return harness_fail();
	verdicts[XDP_REDIRECT]++;
	return bpf_redirect_map(&bench_tx, 0, 0);
}
