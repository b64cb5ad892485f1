// SPDX-License-Identifier: GPL-2.0-only
/*
 * Live-frames traffic generator: run with BPF_PROG_TEST_RUN and
 * BPF_F_TEST_XDP_LIVE_FRAMES; XDP_TX sends the frame out of the ingress
 * device given in the context, i.e. to its veth peer.
 *
 * Live mode recycles pages without copying the input frame again, and the
 * programs downstream (the router's encapsulation, NAT) write into the same
 * page, so every header byte is written here for every frame, from the
 * flow table (flow = packet counter modulo n_flows).
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bench_common.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 flow_mask = 0;     /* n_flows - 1, n_flows a power of 2 */
const volatile __u32 frame_len = BENCH_MIN_FRAME;
const volatile __u32 tag_base = 0;    /* flow index the sink sees = tag_base + k */
const volatile __be32 saddr = 0;
const volatile __u8 dmac[6] = {};
const volatile __u8 smac[6] = {};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct bench_flow);
} flows SEC(".maps");

__u64 sent;
__u64 errors;

static __always_inline __u16 csum20(const void *hdr)
{
	const __u16 *w = hdr;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("xdp")
int bench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *eth = data, *ip = data + BENCH_OFF_IP, *l4 = data + BENCH_OFF_L4;
	__u32 k = (__u32)sent & flow_mask, tag = tag_base + k;
	struct bench_flow *f;
	__u16 iplen;

	if (data + BENCH_MIN_FRAME > data_end)
		goto err;
	f = bpf_map_lookup_elem(&flows, &k);
	if (!f)
		goto err;
	iplen = (__u16)(frame_len - BENCH_OFF_IP);

#pragma unroll
	for (int i = 0; i < 6; i++) {
		eth[i] = dmac[i];
		eth[6 + i] = smac[i];
	}
	*(__be16 *)(eth + 12) = bpf_htons(0x0800);

	ip[0] = 0x45;
	ip[1] = 0;
	*(__be16 *)(ip + 2) = bpf_htons(iplen);
	*(__be16 *)(ip + 4) = bpf_htons((__u16)k);
	*(__be16 *)(ip + 6) = 0;
	ip[8] = 64;
	ip[9] = f->proto;
	*(__be16 *)(ip + 10) = 0;
	*(__be32 *)(ip + 12) = saddr;
	*(__be32 *)(ip + 16) = f->gaddr;
	*(__be16 *)(ip + 10) = csum20(ip);

	switch (f->proto) {
	case IPPROTO_UDP:
		*(__be16 *)(l4 + 0) = bpf_htons(f->sport);
		*(__be16 *)(l4 + 2) = bpf_htons((__u16)f->key);
		*(__be16 *)(l4 + 4) = bpf_htons(iplen - 20);
		*(__be16 *)(l4 + 6) = 0; /* no checksum (RFC 768) */
		*(__u32 *)(l4 + BENCH_UDP_TAG) = tag;
		break;
	case IPPROTO_TCP:
		*(__be16 *)(l4 + 0) = bpf_htons(f->sport);
		*(__be16 *)(l4 + 2) = bpf_htons((__u16)f->key);
		*(__be32 *)(l4 + 4) = bpf_htonl(k);
		*(__be32 *)(l4 + 8) = 0;
		l4[12] = 5 << 4;
		l4[13] = 0x10; /* ACK */
		*(__be16 *)(l4 + 14) = bpf_htons(65535);
		*(__be32 *)(l4 + 16) = 0;
		*(__u32 *)(l4 + BENCH_TCP_TAG) = tag;
		break;
	case IPPROTO_ESP:
		*(__be32 *)(l4 + 0) = bpf_htonl(f->key);
		*(__be32 *)(l4 + 4) = bpf_htonl(k + 1);
		*(__u32 *)(l4 + BENCH_ESP_TAG) = tag;
		break;
	case IPPROTO_AH:
		l4[0] = 59; /* no next header */
		l4[1] = (12 + 12) / 4 - 2;
		*(__be16 *)(l4 + 2) = 0;
		*(__be32 *)(l4 + 4) = bpf_htonl(f->key);
		*(__be32 *)(l4 + 8) = bpf_htonl(k + 1);
		*(__u32 *)(l4 + BENCH_AH_TAG) = tag;
		break;
	default:
		goto err;
	}
	sent++;
	return XDP_TX;
err:
	errors++;
	return XDP_DROP;
}
