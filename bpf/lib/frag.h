/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Fragments: later fragments follow their first one, or go to the slow path.
 */
#ifndef XDNAT_LIB_FRAG_H
#define XDNAT_LIB_FRAG_H

#include "lib/owner.h"
#include "lib/parse.h"

static __always_inline void frag_key(struct xdnat_frag_key *k, const struct iphdr *ip)
{
	k->saddr = ip->saddr;
	k->daddr = ip->daddr;
	k->id = ip->id;
	k->protocol = ip->protocol;
	k->pad = 0;
}

/*
 * A later fragment carries no port or SPI: it goes where its first fragment
 * went, if that was seen less than XDNAT_FRAG_TIMEOUT_NS ago.  Otherwise it
 * is held for the slow path.
 */
static __always_inline enum xdnat_act
classify_later_fragment(struct iphdr *ip, __u32 gidx, struct xdnat_pkt *p)
{
	struct xdnat_frag_key k;
	struct xdnat_frag_val *v;

	frag_key(&k, ip);
	v = bpf_map_lookup_elem(&xdnat_frags, &k);
	if (v && bpf_ktime_get_ns() - v->learnt_ns < XDNAT_FRAG_TIMEOUT_NS)
		return host_verdict(v->host_id, gidx, XDNAT_R_FRAG_TO_HOST, XDNAT_R_FRAGMENT, p);
	p->reason = XDNAT_R_FRAG_HELD;
	return XDNAT_ACT_HOLD;
}

/* A first fragment that maps to a host teaches the fragment table. */
static __always_inline void learn_first_fragment(const struct iphdr *ip, __u32 host_id)
{
	struct xdnat_frag_val v = { .host_id = host_id };
	struct xdnat_frag_key k;

	frag_key(&k, ip);
	v.learnt_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&xdnat_frags, &k, &v, BPF_ANY);
}

/*
 * Slow path of a later fragment whose first fragment is unknown: copy the
 * whole frame to xdnatd (perf event), which re-injects it once the fragment
 * table knows the datagram.  Without a reader (or for frames too big to
 * hold) the unknown policy applies, counted as "fragment".  @ctx is the
 * xdp_md or __sk_buff: the helper copies the frame from either.
 */
static __always_inline int hold_frame(void *ctx, struct xdnat_pkt *p, __u32 ifindex)
{
	struct xdnat_frag_event ev = { .len = p->wire_len, .ifindex = ifindex };
	__u64 flags = BPF_F_CURRENT_CPU | ((__u64)(ev.len & 0xffff) << 32);

	if (ev.len > XDNAT_FRAG_HOLD_MAX ||
	    bpf_perf_event_output(ctx, &xdnat_frag_events, flags, &ev, sizeof(ev))) {
		p->reason = XDNAT_R_FRAGMENT;
		return -1;
	}
	return 0;
}

#endif /* XDNAT_LIB_FRAG_H */
