// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatd's fragment slow path.  The WAN program hands over (perf event
 * xdnat_frag_events) every later fragment whose first fragment it has not
 * seen, and drops it.  Here such frames wait up to XDNAT_FRAG_HOLD_MS, at
 * most XDNAT_FRAG_HOLD_FRAMES of them (oldest evicted first); as soon as the
 * fragment table (xdnat_frags) knows their datagram -- its first fragment
 * went through the fast path -- they are re-injected into the WAN XDP
 * program with BPF_PROG_TEST_RUN + BPF_F_TEST_XDP_LIVE_FRAMES, i.e. they take
 * the fast path as if they had just arrived.  Frames whose first fragment
 * never comes are dropped when their time is up.  One thread, bounded
 * memory, and nothing at all to do while fragments arrive in order.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include "xdnat.h"
#include "xdnat_router.skel.h"
#include "fragq.h"

struct held {
	uint64_t since_ns;
	uint32_t len;
	uint8_t frame[XDNAT_FRAG_HOLD_MAX];
};

static struct {
	pthread_t thread;
	bool running;
	volatile bool stop;
	struct perf_buffer *pb;
	int frags_fd, prog_fd, ifindex;
	struct held *h;
	unsigned n;
	struct xd_fragq_stats st;
} q;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* = bpf_ktime_get_ns() */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void drop_at(unsigned i)
{
	q.h[i] = q.h[--q.n];
}

static void on_event(void *ctx, int cpu, void *data, __u32 size)
{
	const struct xdnat_frag_event *ev = data;
	unsigned slot;

	(void)ctx;
	(void)cpu;
	if (size < sizeof(*ev) || ev->len < 34 || ev->len > XDNAT_FRAG_HOLD_MAX ||
	    size < sizeof(*ev) + ev->len)
		return;
	q.st.held++;
	if (q.n == XDNAT_FRAG_HOLD_FRAMES) {
		unsigned oldest = 0;

		for (unsigned i = 1; i < q.n; i++)
			if (q.h[i].since_ns < q.h[oldest].since_ns)
				oldest = i;
		drop_at(oldest);
		q.st.evicted++;
	}
	slot = q.n++;
	q.h[slot].since_ns = now_ns();
	q.h[slot].len = ev->len;
	memcpy(q.h[slot].frame, (const uint8_t *)data + sizeof(*ev), ev->len);
}

static void on_lost(void *ctx, int cpu, __u64 cnt)
{
	(void)ctx;
	(void)cpu;
	q.st.lost += cnt;
}

/* Does the fragment table know the datagram of this frame (Ethernet + IPv4)? */
static bool known(const struct held *h, uint64_t now)
{
	const uint8_t *ip = h->frame + 14;
	struct xdnat_frag_key k = { 0 };
	struct xdnat_frag_val v;

	memcpy(&k.saddr, ip + 12, 4);
	memcpy(&k.daddr, ip + 16, 4);
	memcpy(&k.id, ip + 4, 2);
	k.protocol = ip[9];
	if (bpf_map_lookup_elem(q.frags_fd, &k, &v))
		return false;
	return now - v.learnt_ns < XDNAT_FRAG_TIMEOUT_NS;
}

static void reinject(struct held *h)
{
	struct xdp_md ctx = { .data_end = h->len, .ingress_ifindex = (__u32)q.ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = h->frame,
		.data_size_in = h->len,
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = 1,
		.flags = BPF_F_TEST_XDP_LIVE_FRAMES,
	);

	if (bpf_prog_test_run_opts(q.prog_fd, &o))
		q.st.failed++;
	else
		q.st.reinjected++;
}

static void *loop(void *arg)
{
	(void)arg;
	while (!q.stop) {
		uint64_t now;

		perf_buffer__poll(q.pb, q.n ? 5 : 100);
		now = now_ns();
		for (unsigned i = 0; i < q.n;) {
			if (known(&q.h[i], now)) {
				reinject(&q.h[i]);
				drop_at(i);
			} else if (now - q.h[i].since_ns > XDNAT_FRAG_HOLD_MS * 1000000ull) {
				q.st.expired++;
				drop_at(i);
			} else {
				i++;
			}
		}
	}
	return NULL;
}

int xd_fragq_start(struct xdnat_router *skel, int wan_ifindex)
{
	int err;

	memset(&q, 0, sizeof(q));
	q.h = calloc(XDNAT_FRAG_HOLD_FRAMES, sizeof(*q.h));
	if (!q.h)
		return -ENOMEM;
	q.frags_fd = bpf_map__fd(skel->maps.xdnat_frags);
	q.prog_fd = bpf_program__fd(skel->progs.xdnat_wan_xdp);
	q.ifindex = wan_ifindex;
	q.pb = perf_buffer__new(bpf_map__fd(skel->maps.xdnat_frag_events), 16, on_event, on_lost,
				NULL, NULL);
	if (!q.pb) {
		err = -errno;
		free(q.h);
		q.h = NULL;
		return err;
	}
	err = pthread_create(&q.thread, NULL, loop, NULL);
	if (err) {
		perf_buffer__free(q.pb);
		free(q.h);
		q.h = NULL;
		return -err;
	}
	q.running = true;
	return 0;
}

void xd_fragq_stop(struct xd_fragq_stats *st)
{
	if (!q.running)
		return;
	q.stop = true;
	pthread_join(q.thread, NULL);
	perf_buffer__free(q.pb);
	free(q.h);
	q.running = false;
	if (st)
		*st = q.st;
}
