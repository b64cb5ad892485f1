// SPDX-License-Identifier: GPL-2.0-only
/*
 * Sink at the end of each benchmark path: checks every frame against the
 * flow the generator tagged it with (flow index in the payload), counts the
 * outcome and drops it.  Frames that are not IPv4 (stray ARP, IPv6) are
 * passed and counted apart; they are not a failure.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bench_common.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 mode = BENCH_SINK_DIRECT;
const volatile __u32 n_flows = 1;
const volatile __be32 router_lan = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct bench_flow);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BENCH_SINK_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

__u64 other; /* non-IPv4 frames passed (per program, not per CPU: rare) */

static __always_inline int verdict(__u32 ctr)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &ctr);

	if (c)
		(*c)++;
	return XDP_DROP;
}

SEC("xdp")
int bench_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *ip = data + BENCH_OFF_IP, *in, *l4;
	struct bench_flow *f;
	__u32 k, tag, key;

	if (data + BENCH_OFF_IP > data_end)
		return verdict(BENCH_SINK_BAD_FRAME);
	if (*(__be16 *)(data + 12) != bpf_htons(0x0800)) {
		__sync_fetch_and_add(&other, 1);
		return XDP_PASS;
	}
	in = ip;
	if (mode == BENCH_SINK_TUNNEL) {
		if (ip + 20 > (__u8 *)data_end || ip[0] != 0x45 || ip[9] != IPPROTO_IPIP)
			return verdict(BENCH_SINK_BAD_FRAME);
		in = ip + 20;
	}
	if (in + 20 > (__u8 *)data_end || in[0] != 0x45)
		return verdict(BENCH_SINK_BAD_FRAME);
	l4 = in + 20;
	switch (in[9]) {
	case IPPROTO_UDP:
		tag = BENCH_UDP_TAG;
		break;
	case IPPROTO_TCP:
		tag = BENCH_TCP_TAG;
		break;
	case IPPROTO_ESP:
		tag = BENCH_ESP_TAG;
		break;
	case IPPROTO_AH:
		tag = BENCH_AH_TAG;
		break;
	default:
		return verdict(BENCH_SINK_BAD_FRAME);
	}
	if (l4 + BENCH_AH_TAG + 4 > (__u8 *)data_end)
		return verdict(BENCH_SINK_BAD_FRAME);
	k = *(__u32 *)(l4 + (tag & 31));
	if (k >= n_flows)
		return verdict(BENCH_SINK_BAD_FLOW);
	f = bpf_map_lookup_elem(&flows, &k);
	if (!f)
		return verdict(BENCH_SINK_BAD_FLOW);
	if (in[9] != f->proto)
		return verdict(BENCH_SINK_BAD_FRAME);
	if (f->proto == IPPROTO_ESP)
		key = bpf_ntohl(*(__be32 *)l4);
	else if (f->proto == IPPROTO_AH)
		key = bpf_ntohl(*(__be32 *)(l4 + 4));
	else
		key = bpf_ntohs(*(__be16 *)(l4 + 2));
	if (key != f->key)
		return verdict(BENCH_SINK_BAD_INNER);

	switch (mode) {
	case BENCH_SINK_DIRECT:
		if (*(__be32 *)(in + 16) != f->gaddr)
			return verdict(BENCH_SINK_BAD_DST);
		break;
	case BENCH_SINK_TUNNEL:
		if (*(__be32 *)(ip + 16) != f->lan)
			return verdict(BENCH_SINK_BAD_DST);
		if (*(__be32 *)(ip + 12) != router_lan)
			return verdict(BENCH_SINK_BAD_SRC);
		if (*(__be32 *)(in + 16) != f->gaddr)
			return verdict(BENCH_SINK_BAD_INNER);
		break;
	case BENCH_SINK_NAT:
		if (*(__be32 *)(in + 16) != f->lan)
			return verdict(BENCH_SINK_BAD_DST);
		if (*(__be32 *)(in + 12) != router_lan)
			return verdict(BENCH_SINK_BAD_SRC);
		break;
	}
	return verdict(BENCH_SINK_OK);
}
