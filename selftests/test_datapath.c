// SPDX-License-Identifier: GPL-2.0-only
/*
 * Packet tests of the xdnat datapath: every BPF program is run with
 * BPF_PROG_TEST_RUN on crafted frames, and each case asserts the verdict,
 * the output bytes (exactly), and that exactly one per-reason counter grew
 * by exactly one packet (plus the per-host counters where a host is involved).
 *
 * Cases are tables of {name, input, verdict, expected output, reason};
 * an expected output of length 0 means "the program must not change the
 * frame".  On a mismatch the case name, both verdicts, the counter deltas
 * and a hex diff of expected vs actual output are printed.
 *
 * Environment: each test process (Criterion forks one per test) moves into
 * a private network and mount namespace, mounts its own bpffs on
 * /sys/fs/bpf (pins never leak to the host), and builds this topology:
 *
 *   remote 203.0.113.7 / gw .254 --- wan0 [router] lan0 10.77.0.1/24 --- hosts
 *     (permanent neighbours)   203.0.113.1/24       A .2, B .3, C .4 (neighbours)
 *                                                    D .9 (no neighbour entry)
 *
 * Global addresses: G0 = 192.0.2.1 (hosts A, B, D, ...), G1 = 198.51.100.1
 * (host C).  The veth peers wan1/lan1 only exist to give wan0/lan0 carrier.
 * Every name, MAC and address is fixed, so expected frames are constants.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include "xdnat.h"         /* xd_pins_check_abi */
#include "xdnat_abi.h"
#include "xdnat_router.skel.h"
#include "xdnat_hostside.skel.h"
#include "pkt.h"
#include "dp_env.h"

/* ------------------------------------------------------------ topology */

#define PIN_BASE   "/sys/fs/bpf/xdnat-test" /* inside our private bpffs */
#define MAX_HOSTS  64u
#define SPI_BITS   16u
#define N_GADDRS   2u

static const uint8_t MAC_BCAST[6]  = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static const uint32_t GADDRS[N_GADDRS] = { G0, G1 };

/* Registered hosts.  Ids >= MAX_HOSTS are outside the host arrays. */
enum { H_A = 1, H_B, H_C, H_D, H_E, H_F, H_H, H_OUTSIDE = 100 };

static const struct hostdef HOSTS[] = {
	/* A, B: ordinary hosts of G0; C: the host of G1. */
	{ H_A, IP4(10, 77, 0, 2), { 2, 0, 0, 0, 0xaa, 0x02 }, true, 0, XDNAT_HOST_F_VALID, IP4(10, 77, 0, 2) },
	{ H_B, IP4(10, 77, 0, 3), { 2, 0, 0, 0, 0xaa, 0x03 }, true, 0, XDNAT_HOST_F_VALID, IP4(10, 77, 0, 3) },
	{ H_C, IP4(10, 77, 0, 4), { 2, 0, 0, 0, 0xaa, 0x04 }, true, 1, XDNAT_HOST_F_VALID, IP4(10, 77, 0, 4) },
	/* D: valid, but its LAN address has no neighbour entry. */
	{ H_D, IP4(10, 77, 0, 9), { 2, 0, 0, 0, 0xaa, 0x09 }, false, 0, XDNAT_HOST_F_VALID, IP4(10, 77, 0, 9) },
	/* E: allocated but not valid (lease being set up or torn down). */
	{ H_E, IP4(10, 77, 0, 5), { 2, 0, 0, 0, 0xaa, 0x05 }, true, 0, 0, IP4(10, 77, 0, 5) },
	/* F: stale LAN index: 10.77.0.66 -> F, but F's address is .6. */
	{ H_F, IP4(10, 77, 0, 6), { 2, 0, 0, 0, 0xaa, 0x06 }, true, 0, XDNAT_HOST_F_VALID, IP4(10, 77, 0, 66) },
	/* H: LAN address off the LAN: the FIB routes it out of the WAN NIC. */
	{ H_H, IP4(10, 99, 0, 1), { 2, 0, 0, 0, 0xaa, 0x0f }, false, 0, XDNAT_HOST_F_VALID, IP4(10, 99, 0, 1) },
};

static const struct hostdef *host(uint32_t id)
{
	for (size_t i = 0; i < sizeof(HOSTS) / sizeof(HOSTS[0]); i++)
		if (HOSTS[i].id == id)
			return &HOSTS[i];
	cr_assert_fail("test bug: no host %u", id);
	return NULL;
}

/* Port blocks (per global address; ICMP echo ids share them). */
struct port_block {
	uint32_t gidx, first, last, id;
};

static const struct port_block PORTS[] = {
	{ 0, 20000, 20999, H_A },
	{ 0, 21000, 21999, H_B },
	{ 0, 22000, 22099, H_D },
	{ 0, 23000, 23099, H_E },        /* invalid host */
	{ 0, 24000, 24009, H_H },
	{ 0, 25000, 25000, H_OUTSIDE },  /* id beyond the host array */
	{ 0, 31000, 31000, H_C },        /* inconsistent: C shares G1, not G0 */
	{ 1, 20000, 20999, H_C },        /* same numbers as A's, other gaddr */
	{ 1, 30000, 30099, H_C },
};

/* SPI blocks: key = spi >> SPI_BITS.  Key 0 holds SPIs 0..65535, of which
 * 0..255 are reserved whoever owns the block. */
struct spi_block {
	uint32_t key, id;
};

static const struct spi_block SPIS[] = {
	{ 0x0000, H_B }, { 0x0100, H_A }, { 0x0101, H_B }, { 0x0200, H_C },
	{ 0x0300, H_D }, { 0x0400, H_E }, { 0x0500, H_H },
};

#define SPI(key, low) ((uint32_t)(key) << SPI_BITS | (low))

static void env_up(void)
{
	dp_env_up(PIN_BASE, HOSTS, sizeof(HOSTS) / sizeof(HOSTS[0]));
}

/* ------------------------------------------------------------ loading */

struct router {
	struct xdnat_router *skel;
	int wan_xdp, lan_xdp, wan_tc, lan_tc, onearm_xdp, onearm_tc;
	int stats, hstats;
};

struct hostside {
	struct xdnat_hostside *skel;
	int egress, ingress, stats;
};

static struct router *R;   /* the router of the running test */
static struct hostside *HS;

static void map_set(int fd, uint32_t key, const void *val, const char *what)
{
	cr_assert(bpf_map_update_elem(fd, &key, val, BPF_ANY) == 0,
		  "update %s[%u]: %s", what, key, strerror(errno));
}

/* Fill the maps the way xdnatd would after registering HOSTS/PORTS/SPIS. */
static void router_populate(struct router *r)
{
	struct xdnat_router *s = r->skel;
	int hosts = bpf_map__fd(s->maps.xdnat_hosts), idx = bpf_map__fd(s->maps.xdnat_lan_idx);
	int ports = bpf_map__fd(s->maps.xdnat_ports), spis = bpf_map__fd(s->maps.xdnat_spis);
	int tx = bpf_map__fd(s->maps.xdnat_txports);
	uint32_t ifx;

	ifx = (uint32_t)env.wan0;
	map_set(tx, XDNAT_TXPORT_WAN, &ifx, "xdnat_txports");
	ifx = (uint32_t)env.lan0;
	map_set(tx, XDNAT_TXPORT_LAN, &ifx, "xdnat_txports");

	for (size_t i = 0; i < sizeof(HOSTS) / sizeof(HOSTS[0]); i++) {
		const struct hostdef *h = &HOSTS[i];
		struct xdnat_host v = {
			.lan_addr = htonl(h->lan), .gaddr_index = h->gidx, .flags = h->flags,
		};
		__be32 key = htonl(h->idx_lan);

		map_set(hosts, h->id, &v, "xdnat_hosts");
		cr_assert(bpf_map_update_elem(idx, &key, &h->id, BPF_ANY) == 0,
			  "update xdnat_lan_idx: %s", strerror(errno));
	}
	for (size_t i = 0; i < sizeof(PORTS) / sizeof(PORTS[0]); i++) {
		struct xdnat_owner o = { .host_id = PORTS[i].id };

		for (uint32_t p = PORTS[i].first; p <= PORTS[i].last; p++)
			map_set(ports, PORTS[i].gidx * XDNAT_PORTS_PER_GADDR + p, &o, "xdnat_ports");
	}
	for (size_t i = 0; i < sizeof(SPIS) / sizeof(SPIS[0]); i++) {
		struct xdnat_owner o = { .host_id = SPIS[i].id };

		map_set(spis, SPIS[i].key, &o, "xdnat_spis");
	}
}

/* Open, configure, load and populate one router instance pinned under
 * PIN_BASE/@inst.  Stored in R at once so that fini frees partial state. */
/* Next-hop cache lifetime of the router under test: off except in the
 * nh_cache suite, so neighbour changes between cases take effect at once. */
static uint32_t test_nh_cache_ms;

static void router_up(uint32_t flags, const char *inst)
{
	char dir[128];
	struct xdnat_router_cfg *cfg;
	struct xdnat_router *s;
	int err;

	env_up();
	snprintf(dir, sizeof(dir), "%s/%s", PIN_BASE, inst);
	cr_assert(mkdir(dir, 0700) == 0, "mkdir %s: %s", dir, strerror(errno));

	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = dir);
	R = calloc(1, sizeof(*R));
	cr_assert(R, "out of memory");
	s = R->skel = xdnat_router__open_opts(&oo);
	cr_assert(s, "xdnat_router__open_opts: %s", strerror(errno));

	cfg = &s->rodata->cfg;
	memset(cfg, 0, sizeof(*cfg));
	cfg->wan_ifindex = (uint32_t)env.wan0;
	cfg->lan_ifindex = (uint32_t)env.lan0;
	cfg->lan_addr = htonl(LAN_ROUTER);
	cfg->flags = flags;
	cfg->n_gaddrs = N_GADDRS;
	cfg->spi_block_bits = SPI_BITS;
	cfg->max_hosts = MAX_HOSTS;
	cfg->nh_cache_ms = test_nh_cache_ms;
	for (unsigned i = 0; i < N_GADDRS; i++)
		cfg->gaddrs[i] = htonl(GADDRS[i]);

	/* Sized maps, as xdnatd sizes them from the configuration. */
	struct { struct bpf_map *map; uint32_t n; } sizes[] = {
		{ s->maps.xdnat_ports, N_GADDRS * XDNAT_PORTS_PER_GADDR },
		{ s->maps.xdnat_spis, 1u << (32 - SPI_BITS) },
		{ s->maps.xdnat_hosts, MAX_HOSTS },
		{ s->maps.xdnat_lan_idx, MAX_HOSTS },
		{ s->maps.xdnat_hstats, MAX_HOSTS },
	};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		err = bpf_map__set_max_entries(sizes[i].map, sizes[i].n);
		cr_assert(err == 0, "bpf_map__set_max_entries(%s): %s",
			  bpf_map__name(sizes[i].map), strerror(-err));
	}

	err = xdnat_router__load(s);
	cr_assert(err == 0,
		  "loading xdnat_router failed: %s (verifier log above; BPF unavailable?)",
		  strerror(-err));

	R->wan_xdp = bpf_program__fd(s->progs.xdnat_wan_xdp);
	R->lan_xdp = bpf_program__fd(s->progs.xdnat_lan_xdp);
	R->wan_tc = bpf_program__fd(s->progs.xdnat_wan_tc);
	R->lan_tc = bpf_program__fd(s->progs.xdnat_lan_tc);
	R->onearm_xdp = bpf_program__fd(s->progs.xdnat_onearm_xdp);
	R->onearm_tc = bpf_program__fd(s->progs.xdnat_onearm_tc);
	R->stats = bpf_map__fd(s->maps.xdnat_stats);
	R->hstats = bpf_map__fd(s->maps.xdnat_hstats);
	router_populate(R);
}

static void router_down(void)
{
	if (!R)
		return;
	xdnat_router__destroy(R->skel); /* NULL-safe */
	free(R);
	R = NULL;
}

/* Host-side programs as xdnat-host configures them for host A. */
static void hostside_up(void)
{
	struct xdnat_hostside *s;
	int err;

	env_up();
	HS = calloc(1, sizeof(*HS));
	cr_assert(HS, "out of memory");
	s = HS->skel = xdnat_hostside__open();
	cr_assert(s, "xdnat_hostside__open: %s", strerror(errno));
	s->rodata->cfg.gaddr = htonl(G0);
	s->rodata->cfg.lan_addr = htonl(host(H_A)->lan);
	s->rodata->cfg.router_addr = htonl(LAN_ROUTER);
	err = xdnat_hostside__load(s);
	cr_assert(err == 0,
		  "loading xdnat_hostside failed: %s (verifier log above; BPF unavailable?)",
		  strerror(-err));
	HS->egress = bpf_program__fd(s->progs.xdnat_host_egress);
	HS->ingress = bpf_program__fd(s->progs.xdnat_host_ingress);
	HS->stats = bpf_map__fd(s->maps.xdnat_hoststats);
}

static void hostside_down(void)
{
	if (!HS)
		return;
	xdnat_hostside__destroy(HS->skel);
	free(HS);
	HS = NULL;
}

static void init_router(void)
{
	router_up(0, "default");
}

static void init_router_drop(void)
{
	router_up(XDNAT_F_UNKNOWN_DROP, "drop");
}

static void fini_all(void)
{
	router_down();
	hostside_down();
}

/* ------------------------------------------------------------ targets */

/* One program under test, with the counters it must account to. */
struct target {
	const char *what;
	int prog_fd;
	bool xdp;
	int ifindex;               /* ingress device (and skb->dev for tc) */
	int stats_fd;              /* per-CPU struct xdnat_counter by reason */
	unsigned nreasons;
	const char *const *names;
	int hstats_fd;             /* per-CPU struct xdnat_host_stats, -1: none */
};

#define REASON_NAMES xdnat_reason_names          /* the one table (maps/xdnat_abi.h) */
#define HOST_REASON_NAMES xdnat_host_reason_names

enum prog_id { WAN_XDP, LAN_XDP, WAN_TC, LAN_TC, HOST_EGRESS, HOST_INGRESS };

/*
 * The hook a parameterized test runs on: the same cases for XDP and tc,
 * with each hook's programs and verdict codes (the tc router redirects its
 * hairpin where XDP uses XDP_TX).
 */
struct hook {
	bool xdp;
	enum prog_id wan, lan;
	int redirect, pass, drop, tx;
};

static struct hook HOOKS[] = {
	{ true, WAN_XDP, LAN_XDP, XDP_REDIRECT, XDP_PASS, XDP_DROP, XDP_TX },
	{ false, WAN_TC, LAN_TC, TC_ACT_REDIRECT, TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT },
};

/* Criterion's parameterized tests keep one allocation of their own (in
 * libcriterion) to the end: not ours, so not a leak report. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libcriterion.so\n";
}

/* A test run once per hook: ParameterizedTest with HOOKS. */
#define HOOK_TEST(suite, name)                                                   \
	ParameterizedTestParameters(suite, name)                                 \
	{                                                                        \
		return cr_make_param_array(struct hook, HOOKS,                   \
					   sizeof(HOOKS) / sizeof(HOOKS[0]));    \
	}                                                                        \
	ParameterizedTest(struct hook *h, suite, name)

/* Run router cases through the one-arm programs instead (same verdicts). */
static bool use_onearm;

static struct target tgt(enum prog_id id)
{
	struct target t = { .hstats_fd = -1 };

	switch (id) {
	case WAN_XDP:
	case LAN_XDP:
	case WAN_TC:
	case LAN_TC:
		cr_assert(R, "test bug: router not loaded");
		t.stats_fd = R->stats;
		t.hstats_fd = R->hstats;
		t.nreasons = XDNAT_R_MAX;
		t.names = REASON_NAMES;
		t.xdp = id == WAN_XDP || id == LAN_XDP;
		t.ifindex = id == WAN_XDP || id == WAN_TC ? env.wan0 : env.lan0;
		t.what = id == WAN_XDP ? "xdnat_wan_xdp" : id == LAN_XDP ? "xdnat_lan_xdp" :
			 id == WAN_TC ? "xdnat_wan_tc" : "xdnat_lan_tc";
		t.prog_fd = id == WAN_XDP ? R->wan_xdp : id == LAN_XDP ? R->lan_xdp :
			    id == WAN_TC ? R->wan_tc : R->lan_tc;
		if (use_onearm) {
			t.prog_fd = t.xdp ? R->onearm_xdp : R->onearm_tc;
			t.what = t.xdp ? "xdnat_onearm_xdp" : "xdnat_onearm_tc";
		}
		break;
	case HOST_EGRESS:
	case HOST_INGRESS:
		cr_assert(HS, "test bug: host programs not loaded");
		t.stats_fd = HS->stats;
		t.nreasons = XDNAT_HR_MAX;
		t.names = HOST_REASON_NAMES;
		t.ifindex = env.lan1; /* stands for the host's LAN NIC */
		t.what = id == HOST_EGRESS ? "xdnat_host_egress" : "xdnat_host_ingress";
		t.prog_fd = id == HOST_EGRESS ? HS->egress : HS->ingress;
		break;
	}
	return t;
}

/* ------------------------------------------------------------ counters */

struct snap {
	struct xdnat_counter r[XDNAT_R_MAX];
	struct xdnat_host_stats h[MAX_HOSTS];
};

/* Sum a per-CPU value made of __u64 fields over all CPUs. */
static void percpu_sum(int fd, uint32_t key, void *out, size_t vsize)
{
	size_t words = vsize / sizeof(uint64_t);
	uint64_t *vals = calloc((size_t)env.ncpus, vsize), *sum = out;

	cr_assert(vals, "out of memory");
	cr_assert(bpf_map_lookup_elem(fd, &key, vals) == 0, "per-CPU lookup [%u]: %s", key,
		  strerror(errno));
	memset(out, 0, vsize);
	for (int c = 0; c < env.ncpus; c++)
		for (size_t w = 0; w < words; w++)
			sum[w] += vals[(size_t)c * words + w];
	free(vals);
}

static void snap_take(const struct target *t, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	for (uint32_t r = 0; r < t->nreasons; r++)
		percpu_sum(t->stats_fd, r, &s->r[r], sizeof(s->r[r]));
	if (t->hstats_fd >= 0)
		for (uint32_t h = 0; h < MAX_HOSTS; h++)
			percpu_sum(t->hstats_fd, h, &s->h[h], sizeof(s->h[h]));
}

/* ------------------------------------------------------------ cases */

struct dp_case {
	char name[96];
	struct pkt in;
	struct pkt out;     /* expected output; len 0: must equal the input */
	int verdict;        /* XDP_* or TC_ACT_* */
	int reason;         /* the one counter that grows, by one packet */
	long long bytes;    /* byte growth of that counter and of the host
	                     * counters below; -1: reason bytes not checked */
	uint32_t to_host;   /* host whose to_host counters grow; 0: none */
	uint32_t from_host; /* host whose from_host counters grow; 0: none */
	int refusal_errno;  /* the kernel may refuse to run the program on this
	                     * input with this errno (then nothing may be
	                     * counted); if it does run it, the rest applies */
};

struct cases {
	struct dp_case *v;
	size_t n, cap;
};

static struct dp_case *case_add(struct cases *cs, int verdict, int reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static struct dp_case *case_add(struct cases *cs, int verdict, int reason, const char *fmt, ...)
{
	struct dp_case *c;
	va_list ap;

	if (cs->n == cs->cap) {
		size_t cap = cs->cap ? 2 * cs->cap : 16;
		struct dp_case *v = realloc(cs->v, cap * sizeof(*v));

		cr_assert(v, "out of memory");
		cs->v = v;
		cs->cap = cap;
	}
	c = &cs->v[cs->n++];
	memset(c, 0, sizeof(*c));
	va_start(ap, fmt);
	vsnprintf(c->name, sizeof(c->name), fmt, ap);
	va_end(ap);
	c->verdict = verdict;
	c->reason = reason;
	c->bytes = -1;
	return c;
}

static const char *verdict_name(bool xdp, int v)
{
	static const char *const xn[] = { "XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX",
					  "XDP_REDIRECT" };

	if (xdp)
		return v >= 0 && v <= XDP_REDIRECT ? xn[v] : "?";
	switch (v) {
	case TC_ACT_OK: return "TC_ACT_OK";
	case TC_ACT_SHOT: return "TC_ACT_SHOT";
	case TC_ACT_REDIRECT: return "TC_ACT_REDIRECT";
	case TC_ACT_UNSPEC: return "TC_ACT_UNSPEC";
	default: return "?";
	}
}

/* Side-by-side hex dump of the lines where @exp and @got differ (all lines
 * for short frames), with the differing offsets listed per line. */
static void hexdiff(FILE *m, const uint8_t *exp, size_t elen, const uint8_t *got, size_t glen)
{
	size_t max = elen > glen ? elen : glen;
	bool all = max <= 128;
	char head[64];

	snprintf(head, sizeof(head), "expected (%zu bytes)", elen);
	fprintf(m, "    offs  %-48s| actual (%zu bytes)\n", head, glen);
	for (size_t line = 0; line < max; line += 16) {
		char diffs[128] = "";
		size_t dl = 0;
		bool differs = false;

		for (size_t i = line; i < line + 16 && i < max; i++) {
			bool d = i >= elen || i >= glen || exp[i] != got[i];

			if (d && dl < sizeof(diffs) - 8)
				dl += (size_t)snprintf(diffs + dl, sizeof(diffs) - dl, " +%zu", i - line);
			differs |= d;
		}
		if (!differs && !all)
			continue;
		fprintf(m, "  %c %04zx  ", differs ? '!' : ' ', line);
		for (size_t i = line; i < line + 16; i++)
			fprintf(m, i < elen ? "%02x " : "   ", i < elen ? exp[i] : 0);
		fprintf(m, "| ");
		for (size_t i = line; i < line + 16; i++)
			fprintf(m, i < glen ? "%02x " : "   ", i < glen ? got[i] : 0);
		if (differs)
			fprintf(m, " <-%s", diffs);
		fputc('\n', m);
	}
}

/* Run one case; on any mismatch report everything about it and fail.
 * *refusedp tells whether the kernel refused the input (see refusal_errno). */
static bool run_case(const struct target *t, const struct dp_case *c, bool *refusedp)
{
	static uint8_t out[PKT_MAX + 256];
	const struct pkt *exp = c->out.len ? &c->out : &c->in;
	struct xdp_md xctx;
	struct __sk_buff sctx;
	struct snap *before, *after;
	char *msg = NULL;
	size_t msglen = 0;
	bool bad = false, refused = false;
	FILE *m;
	int err;

	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = c->in.b,
		.data_size_in = (__u32)c->in.len,
		.data_out = out,
		.data_size_out = sizeof(out),
		.repeat = 1, /* the programs rewrite the frame in place */
	);
	memset(&xctx, 0, sizeof(xctx));
	memset(&sctx, 0, sizeof(sctx));
	if (t->xdp) {
		xctx.data_end = (__u32)c->in.len;
		xctx.ingress_ifindex = (__u32)t->ifindex;
		o.ctx_in = &xctx;
		o.ctx_size_in = sizeof(xctx);
	} else {
		sctx.ifindex = (__u32)t->ifindex;
		sctx.ingress_ifindex = (__u32)t->ifindex;
		o.ctx_in = &sctx;
		o.ctx_size_in = sizeof(sctx);
	}

	before = calloc(1, sizeof(*before));
	after = calloc(1, sizeof(*after));
	cr_assert(before && after, "out of memory");
	memset(out, 0, sizeof(out));
	snap_take(t, before);
	err = bpf_prog_test_run_opts(t->prog_fd, &o);
	snap_take(t, after);

	m = open_memstream(&msg, &msglen);
	cr_assert(m, "open_memstream: %s", strerror(errno));
	if (err && c->refusal_errno && err == -c->refusal_errno) {
		refused = true; /* program not run: only check nothing was counted */
		goto counters;
	}
	if (err) {
		fprintf(m, "  BPF_PROG_TEST_RUN failed: %s\n", strerror(-err));
		bad = true;
		goto report;
	}
	if ((int)o.retval != c->verdict) {
		fprintf(m, "  verdict: expected %s (%d), got %s (%u)\n",
			verdict_name(t->xdp, c->verdict), c->verdict,
			verdict_name(t->xdp, (int)o.retval), o.retval);
		bad = true;
	}
	if (o.data_size_out != exp->len || memcmp(out, exp->b, exp->len) != 0) {
		fprintf(m, "  output differs from the %s:\n",
			c->out.len ? "expected frame" : "input (expected unchanged)");
		hexdiff(m, exp->b, exp->len, out, o.data_size_out);
		bad = true;
	}
counters:
	for (unsigned r = 0; r < t->nreasons; r++) {
		uint64_t dp = after->r[r].packets - before->r[r].packets;
		uint64_t db = after->r[r].bytes - before->r[r].bytes;
		uint64_t want = !refused && (int)r == c->reason ? 1 : 0;

		if (dp != want) {
			fprintf(m, "  counter %s: expected +%llu packets, got +%llu\n", t->names[r],
				(unsigned long long)want, (unsigned long long)dp);
			bad = true;
		}
		if (want && c->bytes >= 0 && db != (uint64_t)c->bytes) {
			fprintf(m, "  counter %s: expected +%lld bytes, got +%llu\n", t->names[r],
				c->bytes, (unsigned long long)db);
			bad = true;
		}
	}
	if (t->hstats_fd >= 0) {
		for (uint32_t h = 0; h < MAX_HOSTS; h++) {
			const struct xdnat_host_stats *a = &after->h[h], *b = &before->h[h];
			uint64_t tp = a->to_host_packets - b->to_host_packets;
			uint64_t tb = a->to_host_bytes - b->to_host_bytes;
			uint64_t fp = a->from_host_packets - b->from_host_packets;
			uint64_t fb = a->from_host_bytes - b->from_host_bytes;
			uint64_t wtp = !refused && c->to_host && h == c->to_host;
			uint64_t wfp = !refused && c->from_host && h == c->from_host;
			uint64_t wtb = wtp ? (uint64_t)c->bytes : 0, wfb = wfp ? (uint64_t)c->bytes : 0;

			if (tp != wtp || tb != wtb || fp != wfp || fb != wfb) {
				fprintf(m, "  host %u stats: to_host +%llu pkts/+%llu bytes, "
					"from_host +%llu/+%llu; expected +%llu/+%llu, +%llu/+%llu\n",
					h, (unsigned long long)tp, (unsigned long long)tb,
					(unsigned long long)fp, (unsigned long long)fb,
					(unsigned long long)wtp, (unsigned long long)wtb,
					(unsigned long long)wfp, (unsigned long long)wfb);
				bad = true;
			}
		}
	}
report:
	cr_assert(fclose(m) == 0, "fclose(memstream)");
	if (bad)
		cr_expect_fail("%s: case \"%s\" (expected %s, counter %s):\n%s", t->what, c->name,
			       verdict_name(t->xdp, c->verdict),
			       c->reason >= 0 ? t->names[c->reason] : "none", msg);
	free(msg);
	free(before);
	free(after);
	*refusedp = refused;
	return !bad;
}

/* Run a table; every case runs even after a failure.  Frees the table. */
static void run_cases(enum prog_id id, struct cases *cs)
{
	struct target t = tgt(id);
	size_t failed = 0, refused = 0;

	cr_assert(cs->n > 0, "test bug: empty table");
	for (size_t i = 0; i < cs->n; i++) {
		bool r;

		if (!run_case(&t, &cs->v[i], &r))
			failed++;
		refused += r;
	}
	cr_expect(failed == 0, "%s: %zu of %zu cases failed", t.what, failed, cs->n);
	if (refused)
		cr_log_info("%s: the kernel refused %zu of %zu inputs (frames < %d bytes); "
			    "the program did not see them", t.what, refused, cs->n, 14);
	free(cs->v);
	memset(cs, 0, sizeof(*cs));
}

/* ------------------------------------------------------------ builders */

/* Typical IPv4 header fields; tests override what they exercise. */
static struct ip4 hdr(uint32_t src, uint32_t dst)
{
	return (struct ip4){ .src = src, .dst = dst, .ttl = 61, .id = 0x1c46, .frag = IP_DF };
}

/* The same header without DF (routers may fragment the datagram). */
static struct ip4 nodf(struct ip4 h)
{
	h.frag &= (uint16_t)~IP_DF;
	return h;
}

static uint16_t ip_totlen(const struct pkt *dg)
{
	return pkt_rd16(dg->b + 2);
}

static void dg_udp(struct pkt *d, struct ip4 h, uint16_t sport, uint16_t dport, size_t paylen)
{
	size_t o;

	pkt_reset(d);
	h.proto = PROTO_UDP;
	o = pkt_ip4_begin(d, &h);
	pkt_udp(d, o, sport, dport, paylen, (uint8_t)dport);
	pkt_ip4_end(d, o);
}

static void dg_tcp(struct pkt *d, struct ip4 h, uint16_t sport, uint16_t dport, size_t paylen)
{
	size_t o;

	pkt_reset(d);
	h.proto = PROTO_TCP;
	o = pkt_ip4_begin(d, &h);
	pkt_tcp(d, o, sport, dport, 0x01020304u + dport, TCP_ACK, paylen, (uint8_t)sport);
	pkt_ip4_end(d, o);
}

static void dg_icmp(struct pkt *d, struct ip4 h, uint8_t type, uint16_t id, size_t paylen)
{
	size_t o;

	pkt_reset(d);
	h.proto = PROTO_ICMP;
	o = pkt_ip4_begin(d, &h);
	pkt_icmp(d, type, 0, id, 7, paylen, (uint8_t)id);
	pkt_ip4_end(d, o);
}

static void dg_esp(struct pkt *d, struct ip4 h, uint32_t spi, size_t paylen)
{
	size_t o;

	pkt_reset(d);
	h.proto = PROTO_ESP;
	o = pkt_ip4_begin(d, &h);
	pkt_esp(d, spi, 42, paylen, (uint8_t)spi);
	pkt_ip4_end(d, o);
}

static void dg_ah(struct pkt *d, struct ip4 h, uint32_t spi, size_t paylen)
{
	size_t o;

	pkt_reset(d);
	h.proto = PROTO_AH;
	o = pkt_ip4_begin(d, &h);
	pkt_ah(d, PROTO_UDP, spi, 9, paylen, (uint8_t)spi);
	pkt_ip4_end(d, o);
}

/* ESP / AH with a given sequence number. */
static void dg_esp_seq(struct pkt *d, struct ip4 h, uint32_t spi, uint32_t seq, size_t paylen)
{
	size_t o;

	pkt_reset(d);
	h.proto = PROTO_ESP;
	o = pkt_ip4_begin(d, &h);
	pkt_esp(d, spi, seq, paylen, (uint8_t)spi);
	pkt_ip4_end(d, o);
}

static void dg_ah_seq(struct pkt *d, struct ip4 h, uint32_t spi, uint32_t seq, size_t paylen)
{
	size_t o;

	pkt_reset(d);
	h.proto = PROTO_AH;
	o = pkt_ip4_begin(d, &h);
	pkt_ah(d, PROTO_UDP, spi, seq, paylen, (uint8_t)spi);
	pkt_ip4_end(d, o);
}

/* Any protocol, opaque payload (GRE, fragments, short L4 headers). */
static void dg_raw(struct pkt *d, struct ip4 h, uint8_t proto, size_t paylen, uint8_t seed)
{
	size_t o;

	pkt_reset(d);
	h.proto = proto;
	o = pkt_ip4_begin(d, &h);
	pkt_payload(d, paylen, seed);
	pkt_ip4_end(d, o);
}

/* Ethernet + the datagram's bytes. */
static void frame(struct pkt *f, const uint8_t dmac[6], const uint8_t smac[6], const struct pkt *dg)
{
	pkt_reset(f);
	pkt_eth(f, dmac, smac, ETHTYPE_IPV4);
	pkt_put(f, dg->b, dg->len);
}

/*
 * Ethernet + IP-in-IP header + the datagram's bytes, the outer header as
 * RFC 2003 and xdnat's design specify it: version 4, IHL 5, TOS and ID of
 * the inner header, DF of the inner header only, TTL 64, protocol 4, total
 * length = inner total length + 20, valid checksum.
 */
static void tunnel(struct pkt *f, const uint8_t dmac[6], const uint8_t smac[6], uint32_t osrc,
		   uint32_t odst, const struct pkt *dg)
{
	struct ip4 o = {
		.src = osrc, .dst = odst, .proto = PROTO_IPIP, .tos = dg->b[1], .ttl = 64,
		.id = pkt_rd16(dg->b + 4), .frag = pkt_rd16(dg->b + 6) & IP_DF,
	};
	size_t off;

	pkt_reset(f);
	pkt_eth(f, dmac, smac, ETHTYPE_IPV4);
	off = pkt_ip4_begin(f, &o);
	pkt_put(f, dg->b, dg->len);
	pkt_wr16(f->b + off + 2, (uint16_t)(ip_totlen(dg) + 20));
	pkt_ip4_fix_csum(f, off);
}

/* The datagram as a router forwards it: TTL - 1, checksum recomputed. */
static void ttl_dec(struct pkt *d, const struct pkt *dg)
{
	*d = *dg;
	d->b[8]--;
	pkt_ip4_fix_csum(d, 0);
}

/* Raw Ethernet frame with an arbitrary ethertype and payload. */
static void raw_frame(struct pkt *f, const uint8_t dmac[6], const uint8_t smac[6], uint16_t type,
		      size_t paylen)
{
	pkt_reset(f);
	pkt_eth(f, dmac, smac, type);
	pkt_payload(f, paylen, 0x33);
}

/* --- WAN side: frames from the remote peer to the router's WAN NIC --- */

static void wan_frame(struct pkt *f, const struct pkt *dg)
{
	frame(f, MAC_WAN0, MAC_REMOTE, dg);
}

/* @dg arriving on the WAN must be tunnelled to host @hid with @verdict. */
static void wan_fwd(struct cases *cs, int verdict, const struct pkt *dg, uint32_t hid,
		    const char *name)
{
	const struct hostdef *h = host(hid);
	struct dp_case *c = case_add(cs, verdict, XDNAT_R_WAN_TO_HOST, "%s", name);

	wan_frame(&c->in, dg);
	tunnel(&c->out, h->mac, MAC_LAN0, LAN_ROUTER, h->lan, dg);
	c->bytes = ip_totlen(dg);
	c->to_host = hid;
}

/* @dg arriving on the WAN gets @verdict/@reason and is left unchanged. */
static void wan_same(struct cases *cs, int verdict, int reason, const struct pkt *dg,
		     const char *name)
{
	struct dp_case *c = case_add(cs, verdict, reason, "%s", name);

	wan_frame(&c->in, dg);
}

/* --- LAN side: tunnel frames from a host to the router's LAN NIC --- */

static void lan_tunnel(struct pkt *f, uint32_t hid, const struct pkt *dg)
{
	const struct hostdef *h = host(hid);

	tunnel(f, MAC_LAN0, h->mac, h->lan, LAN_ROUTER, dg);
}

/* Tunnelled @dg from @hid must leave on the WAN towards @nh_mac, TTL - 1. */
static void lan_fwd(struct cases *cs, int verdict, uint32_t hid, const struct pkt *dg,
		    const uint8_t nh_mac[6], const char *name)
{
	struct dp_case *c = case_add(cs, verdict, XDNAT_R_HOST_TO_WAN, "%s", name);
	struct pkt fwd;

	lan_tunnel(&c->in, hid, dg);
	ttl_dec(&fwd, dg);
	frame(&c->out, nh_mac, MAC_WAN0, &fwd);
	c->bytes = ip_totlen(dg);
	c->from_host = hid;
}

static void lan_same(struct cases *cs, int verdict, int reason, uint32_t hid, const struct pkt *dg,
		     const char *name)
{
	struct dp_case *c = case_add(cs, verdict, reason, "%s", name);

	lan_tunnel(&c->in, hid, dg);
}

/* Hairpin: tunnelled @dg from @from, inner destination a global address
 * owned by @to, goes back out of the LAN NIC re-tunnelled to @to. */
static void hairpin(struct cases *cs, int verdict, uint32_t from, uint32_t to, const struct pkt *dg,
		    const char *name)
{
	const struct hostdef *h = host(to);
	struct dp_case *c = case_add(cs, verdict, XDNAT_R_HAIRPIN, "%s", name);
	struct pkt fwd;

	lan_tunnel(&c->in, from, dg);
	ttl_dec(&fwd, dg);
	tunnel(&c->out, h->mac, MAC_LAN0, LAN_ROUTER, h->lan, &fwd);
	c->bytes = ip_totlen(dg);
	c->from_host = from;
	c->to_host = to;
}

/* Plain IPv4 header of a host's global-address datagram: G -> remote. */
static struct ip4 from_g(uint32_t hid, uint32_t dst)
{
	return hdr(GADDRS[host(hid)->gidx], dst);
}

/* ------------------------------------------------------------ suites */

TestSuite(wan, .init = init_router, .fini = fini_all, .timeout = 120);
TestSuite(wan_drop, .init = init_router_drop, .fini = fini_all, .timeout = 120);
TestSuite(malformed, .init = init_router, .fini = fini_all, .timeout = 120);
TestSuite(lan, .init = init_router, .fini = fini_all, .timeout = 120);
TestSuite(tc, .init = init_router, .fini = fini_all, .timeout = 120);
TestSuite(host, .init = hostside_up, .fini = fini_all, .timeout = 120);

/*
 * WAN ingress, each protocol to each host with a neighbour.  TOS, ID and DF
 * differ per protocol so that copying them into the outer header is checked,
 * and so is "DF only" (no MF in the outer header).
 */
Test(wan, to_each_host)
{
	static const uint32_t hosts[] = { H_A, H_B, H_C };
	struct cases cs = { 0 };
	struct pkt dg;
	char name[96];

	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		const struct hostdef *h = host(hosts[i]);
		uint32_t g = GADDRS[h->gidx];
		uint16_t port = 0;
		uint32_t key = 0;
		struct ip4 ih;

		for (size_t p = 0; p < sizeof(PORTS) / sizeof(PORTS[0]); p++)
			if (PORTS[p].id == h->id && PORTS[p].gidx == h->gidx && !port)
				port = (uint16_t)(PORTS[p].first + 7);
		for (size_t s = 0; s < sizeof(SPIS) / sizeof(SPIS[0]); s++)
			if (SPIS[s].id == h->id && SPIS[s].key)
				key = SPIS[s].key;
		cr_assert(port && key, "test bug: host %u has no blocks", h->id);

		ih = hdr(REMOTE, g);
		ih.tos = 0xb8;
		ih.id = 0xbeef;
		dg_esp(&dg, ih, SPI(key, 0x1234), 48);
		snprintf(name, sizeof(name), "ESP spi %#x to host %u", SPI(key, 0x1234), h->id);
		wan_fwd(&cs, XDP_REDIRECT, &dg, h->id, name);

		ih = hdr(REMOTE, g);
		ih.tos = 0x10;
		ih.id = 0;
		dg_ah(&dg, ih, SPI(key, 0xfffe), 20);
		snprintf(name, sizeof(name), "AH spi %#x to host %u", SPI(key, 0xfffe), h->id);
		wan_fwd(&cs, XDP_REDIRECT, &dg, h->id, name);

		ih = hdr(REMOTE, g);
		ih.tos = 0x02;
		ih.id = 0x7777;
		dg_tcp(&dg, ih, 443, port, 10);
		snprintf(name, sizeof(name), "TCP dport %u to host %u", port, h->id);
		wan_fwd(&cs, XDP_REDIRECT, &dg, h->id, name);

		ih = hdr(REMOTE, g);
		ih.tos = 0x03; /* ECN CE must reach the host in the outer header too */
		ih.id = 0x0102;
		ih.frag = 0;
		dg_udp(&dg, ih, 4500, port, 33);
		snprintf(name, sizeof(name), "UDP dport %u (no DF) to host %u", port, h->id);
		wan_fwd(&cs, XDP_REDIRECT, &dg, h->id, name);

		ih = hdr(REMOTE, g);
		ih.id = 0xffff;
		ih.frag = 0;
		dg_icmp(&dg, ih, ICMP_ECHOREPLY, port, 56);
		snprintf(name, sizeof(name), "ICMP echo reply id %u to host %u", port, h->id);
		wan_fwd(&cs, XDP_REDIRECT, &dg, h->id, name);
	}
	run_cases(WAN_XDP, &cs);
}

/* First/last port of a block, and just outside it (other host or nobody). */
Test(wan, port_boundaries)
{
	struct cases cs = { 0 };
	struct pkt dg;

	dg_udp(&dg, hdr(REMOTE, G0), 53, 19999, 16);
	wan_same(&cs, XDP_PASS, XDNAT_R_UNKNOWN_PORT, &dg, "UDP 19999: below A's block, nobody");
	dg_udp(&dg, hdr(REMOTE, G0), 53, 20000, 16);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_A, "UDP 20000: A's first port");
	dg_udp(&dg, hdr(REMOTE, G0), 53, 20999, 16);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_A, "UDP 20999: A's last port");
	dg_udp(&dg, hdr(REMOTE, G0), 53, 21000, 16);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_B, "UDP 21000: B's first port, after A's");
	dg_udp(&dg, hdr(REMOTE, G0), 53, 21999, 16);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_B, "UDP 21999: B's last port");
	dg_udp(&dg, hdr(REMOTE, G0), 53, 22100, 16);
	wan_same(&cs, XDP_PASS, XDNAT_R_UNKNOWN_PORT, &dg, "UDP 22100: after D's block, nobody");
	dg_udp(&dg, hdr(REMOTE, G0), 53, 0, 16);
	wan_same(&cs, XDP_PASS, XDNAT_R_UNKNOWN_PORT, &dg, "UDP port 0");
	dg_udp(&dg, hdr(REMOTE, G0), 53, 65535, 16);
	wan_same(&cs, XDP_PASS, XDNAT_R_UNKNOWN_PORT, &dg, "UDP port 65535");
	dg_udp(&dg, hdr(REMOTE, G0), 21500, 20500, 16);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_A, "UDP sport in B's block, dport in A's: to A");
	dg_tcp(&dg, hdr(REMOTE, G0), 80, 20999, 0);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_A, "TCP 20999: A's last port");
	dg_tcp(&dg, hdr(REMOTE, G0), 80, 21000, 0);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_B, "TCP 21000: B's first port");
	dg_tcp(&dg, hdr(REMOTE, G0), 80, 23050, 0);
	wan_same(&cs, XDP_PASS, XDNAT_R_UNKNOWN_PORT, &dg, "TCP 23050: owner E not valid");
	dg_tcp(&dg, hdr(REMOTE, G0), 80, 25000, 0);
	wan_same(&cs, XDP_PASS, XDNAT_R_UNKNOWN_PORT, &dg,
		 "TCP 25000: owner id beyond max_hosts");
	dg_icmp(&dg, hdr(REMOTE, G0), ICMP_ECHOREPLY, 20000, 8);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_A, "echo reply id 20000: A's first");
	dg_icmp(&dg, hdr(REMOTE, G0), ICMP_ECHOREPLY, 19999, 8);
	wan_same(&cs, XDP_PASS, XDNAT_R_UNKNOWN_ICMP_ID, &dg, "echo reply id 19999: nobody");
	dg_icmp(&dg, hdr(REMOTE, G0), ICMP_ECHOREPLY, 21000, 8);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_B, "echo reply id 21000: B's first");
	run_cases(WAN_XDP, &cs);
}

/* SPI blocks: reserved range, first/last of a block, neighbours. */
Test(wan, spi_boundaries)
{
	static const struct {
		uint32_t spi;
		int reason;     /* WAN_TO_HOST: forwarded */
		uint32_t host;
		const char *what;
	} t[] = {
		{ 0, XDNAT_R_DROP_SPI_RESERVED, 0, "SPI 0 reserved" },
		{ 1, XDNAT_R_DROP_SPI_RESERVED, 0, "SPI 1 reserved" },
		{ 255, XDNAT_R_DROP_SPI_RESERVED, 0, "SPI 255 reserved (block 0 belongs to B)" },
		{ 256, XDNAT_R_WAN_TO_HOST, H_B, "SPI 256: first unreserved, B's block 0" },
		{ 0x0000ffff, XDNAT_R_WAN_TO_HOST, H_B, "SPI 0xffff: B's block 0, last" },
		{ 0x00010000, XDNAT_R_UNKNOWN_SPI, 0, "SPI 0x10000: block 1, nobody" },
		{ 0x00ffffff, XDNAT_R_UNKNOWN_SPI, 0, "SPI 0x00ffffff: just below A's block" },
		{ SPI(0x0100, 0), XDNAT_R_WAN_TO_HOST, H_A, "A's first SPI" },
		{ SPI(0x0100, 0xffff), XDNAT_R_WAN_TO_HOST, H_A, "A's last SPI" },
		{ SPI(0x0101, 0), XDNAT_R_WAN_TO_HOST, H_B, "B's first SPI, after A's" },
		{ SPI(0x0101, 0xffff), XDNAT_R_WAN_TO_HOST, H_B, "B's last SPI" },
		{ SPI(0x0102, 0), XDNAT_R_UNKNOWN_SPI, 0, "after B's block, nobody" },
		{ SPI(0x0400, 7), XDNAT_R_UNKNOWN_SPI, 0, "owner E not valid" },
		{ 0xffffffff, XDNAT_R_UNKNOWN_SPI, 0, "SPI 0xffffffff: last array entry" },
	};
	struct cases cs = { 0 };
	struct pkt dg;
	char name[96];

	/* RFC 4303: 1..255 reserved by IANA, 0 local use: never forwarded. */
	for (uint32_t spi = 0; spi <= XDNAT_SPI_RESERVED_MAX; spi++) {
		dg_esp(&dg, hdr(REMOTE, G0), spi, 8);
		snprintf(name, sizeof(name), "ESP SPI %u (reserved range sweep)", spi);
		wan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPI_RESERVED, &dg, name);
	}
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		for (int ah = 0; ah <= 1; ah++) {
			if (ah)
				dg_ah(&dg, hdr(REMOTE, G0), t[i].spi, 16);
			else
				dg_esp(&dg, hdr(REMOTE, G0), t[i].spi, 32);
			snprintf(name, sizeof(name), "%s %s", ah ? "AH" : "ESP", t[i].what);
			if (t[i].reason == XDNAT_R_WAN_TO_HOST)
				wan_fwd(&cs, XDP_REDIRECT, &dg, t[i].host, name);
			else
				wan_same(&cs, t[i].reason == XDNAT_R_UNKNOWN_SPI ? XDP_PASS : XDP_DROP,
					 t[i].reason, &dg, name);
		}
	}
	run_cases(WAN_XDP, &cs);
}

/*
 * Two global addresses.  Ports are per global address (C owns 20000-20999
 * of G1, A the same numbers of G0); SPIs are one space, so an SPI of a G1
 * host arriving on G0 is a wrong-gaddr drop, never a delivery.
 */
Test(wan, two_gaddrs)
{
	struct cases cs = { 0 };
	struct pkt dg;

	dg_udp(&dg, hdr(REMOTE, G1), 500, 20500, 20);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_C, "G1:20500 -> C");
	dg_udp(&dg, hdr(REMOTE, G0), 500, 20500, 20);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_A, "G0:20500 -> A (same port, other gaddr)");
	dg_udp(&dg, hdr(REMOTE, G1), 500, 21500, 20);
	wan_same(&cs, XDP_PASS, XDNAT_R_UNKNOWN_PORT, &dg, "G1:21500 (B's port on G0): unknown");
	dg_tcp(&dg, hdr(REMOTE, G1), 500, 30099, 0);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_C, "G1:30099 -> C (last of its 2nd block)");
	dg_tcp(&dg, hdr(REMOTE, G0), 500, 30050, 0);
	wan_same(&cs, XDP_PASS, XDNAT_R_UNKNOWN_PORT, &dg, "G0:30050 (C's port on G1): unknown");
	dg_udp(&dg, hdr(REMOTE, G0), 500, 31000, 20);
	wan_same(&cs, XDP_DROP, XDNAT_R_DROP_WRONG_GADDR, &dg,
		 "G0:31000 owned by C of G1 (inconsistent map): wrong gaddr");
	dg_icmp(&dg, hdr(REMOTE, G1), ICMP_ECHOREPLY, 20001, 16);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_C, "echo reply to G1 id 20001 -> C");
	dg_esp(&dg, hdr(REMOTE, G1), SPI(0x0200, 0x10), 40);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_C, "ESP C's SPI to G1 -> C");
	dg_esp(&dg, hdr(REMOTE, G0), SPI(0x0200, 0x10), 40);
	wan_same(&cs, XDP_DROP, XDNAT_R_DROP_WRONG_GADDR, &dg, "ESP C's SPI to G0: wrong gaddr");
	dg_esp(&dg, hdr(REMOTE, G1), SPI(0x0100, 0x10), 40);
	wan_same(&cs, XDP_DROP, XDNAT_R_DROP_WRONG_GADDR, &dg, "ESP A's SPI to G1: wrong gaddr");
	dg_ah(&dg, hdr(REMOTE, G0), SPI(0x0200, 0x20), 8);
	wan_same(&cs, XDP_DROP, XDNAT_R_DROP_WRONG_GADDR, &dg, "AH C's SPI to G0: wrong gaddr");
	run_cases(WAN_XDP, &cs);
}

/* Things without an owner, with the default policy (pass to the stack). */
static void unknown_cases(struct cases *cs, int verdict)
{
	struct ip4 ih;
	struct pkt dg;

	dg_udp(&dg, hdr(REMOTE, G0), 53, 40000, 16);
	wan_same(cs, verdict, XDNAT_R_UNKNOWN_PORT, &dg, "UDP unallocated port");
	dg_tcp(&dg, hdr(REMOTE, G1), 53, 21000, 0);
	wan_same(cs, verdict, XDNAT_R_UNKNOWN_PORT, &dg, "TCP unallocated port of G1");
	dg_esp(&dg, hdr(REMOTE, G0), SPI(0x0777, 1), 16);
	wan_same(cs, verdict, XDNAT_R_UNKNOWN_SPI, &dg, "ESP unallocated SPI");
	dg_ah(&dg, hdr(REMOTE, G0), SPI(0x0777, 1), 16);
	wan_same(cs, verdict, XDNAT_R_UNKNOWN_SPI, &dg, "AH unallocated SPI");
	dg_icmp(&dg, hdr(REMOTE, G0), ICMP_ECHOREPLY, 40000, 16);
	wan_same(cs, verdict, XDNAT_R_UNKNOWN_ICMP_ID, &dg, "echo reply unallocated id");
	dg_raw(&dg, hdr(REMOTE, G0), PROTO_GRE, 24, 1);
	wan_same(cs, verdict, XDNAT_R_UNKNOWN_PROTO, &dg, "GRE (proto 47)");
	dg_raw(&dg, hdr(REMOTE, G0), 132 /* SCTP */, 24, 2);
	wan_same(cs, verdict, XDNAT_R_UNKNOWN_PROTO, &dg, "SCTP (proto 132)");
	ih = hdr(REMOTE, G0);
	ih.frag = 185; /* offset 1480, last fragment */
	dg_raw(&dg, ih, PROTO_UDP, 40, 3);
	wan_same(cs, verdict, XDNAT_R_FRAGMENT, &dg, "UDP later fragment (offset 1480, last)");
	ih.frag = IP_MF | 1; /* offset 8, more follow: bytes of a UDP header look like a port */
	dg_raw(&dg, ih, PROTO_UDP, 40, 4);
	wan_same(cs, verdict, XDNAT_R_FRAGMENT, &dg, "UDP middle fragment (offset 8, MF)");
	ih.frag = 0x1fff; /* largest offset */
	dg_raw(&dg, ih, PROTO_ESP, 16, 5);
	wan_same(cs, verdict, XDNAT_R_FRAGMENT, &dg, "ESP later fragment (offset 0x1fff)");
}

Test(wan, unknown_pass_by_default)
{
	struct cases cs = { 0 };

	unknown_cases(&cs, XDP_PASS);
	run_cases(WAN_XDP, &cs);
}

Test(wan_drop, unknown_dropped_with_flag)
{
	struct cases cs = { 0 };
	struct pkt dg;

	unknown_cases(&cs, XDP_DROP);
	/* The flag changes nothing else. */
	dg_udp(&dg, hdr(REMOTE, G0), 53, 20000, 16);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_A, "allocated port still delivered");
	dg_esp(&dg, hdr(REMOTE, G0), SPI(0x0101, 5), 16);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_B, "allocated SPI still delivered");
	dg_icmp(&dg, hdr(REMOTE, G0), ICMP_ECHO, 40000, 16);
	wan_same(&cs, XDP_PASS, XDNAT_R_PASS_ICMP_LOCAL, &dg, "echo request still passed");
	dg_udp(&dg, hdr(REMOTE, NOT_GLOBAL), 53, 40000, 16);
	wan_same(&cs, XDP_PASS, XDNAT_R_PASS_NOT_GLOBAL, &dg, "not global still passed");
	dg_esp(&dg, hdr(REMOTE, G0), 7, 16);
	wan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPI_RESERVED, &dg, "reserved SPI still dropped");
	run_cases(WAN_XDP, &cs);
}

Test(wan_drop, lan_hairpin_unknown_dropped)
{
	struct cases cs = { 0 };
	struct pkt dg;

	dg_udp(&dg, from_g(H_A, G0), 20001, 40000, 16);
	lan_same(&cs, XDP_DROP, XDNAT_R_UNKNOWN_PORT, H_A, &dg, "hairpin to unallocated port");
	dg_udp(&dg, from_g(H_A, REMOTE), 20001, 53, 16);
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, "host to WAN unaffected");
	run_cases(LAN_XDP, &cs);
}

/* ICMP for the router, fragments with ports, IP options, padding. */
Test(wan, local_and_special)
{
	static const uint8_t opt_ra[4] = { 0x94, 0x04, 0x00, 0x00 }; /* router alert */
	static const uint8_t opt_nop7[8] = { 1, 1, 1, 1, 1, 1, 1, 0 };
	static const uint8_t opt_40[40] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
					    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
					    1, 1, 1, 1, 1, 1, 1, 0 };
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg;
	struct ip4 ih;

	dg_icmp(&dg, hdr(REMOTE, G0), ICMP_ECHO, 20000, 56);
	wan_same(&cs, XDP_PASS, XDNAT_R_PASS_ICMP_LOCAL, &dg,
		 "echo request to G0 (id in A's block): the router answers");
	dg_icmp(&dg, hdr(REMOTE, G1), ICMP_ECHO, 1, 56);
	wan_same(&cs, XDP_PASS, XDNAT_R_PASS_ICMP_LOCAL, &dg, "echo request to G1");
	dg_icmp(&dg, hdr(REMOTE, G0), 13 /* timestamp */, 20000, 12);
	wan_same(&cs, XDP_PASS, XDNAT_R_PASS_ICMP_LOCAL, &dg, "timestamp request to G0");

	ih = hdr(REMOTE, G0);
	ih.frag = IP_MF; /* first fragment: ports present */
	ih.id = 0x4321;
	dg_udp(&dg, ih, 4500, 20001, 64);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_A, "UDP first fragment (MF, offset 0) -> A, outer without MF");
	ih.frag = IP_MF | IP_DF;
	dg_esp(&dg, ih, SPI(0x0101, 3), 64);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_B, "ESP first fragment (MF|DF) -> B, outer DF only");

	ih = hdr(REMOTE, G0);
	ih.opt = opt_ra;
	ih.opt_len = sizeof(opt_ra);
	dg_udp(&dg, ih, 4500, 20002, 16);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_A, "UDP with router alert option (IHL 6) -> A");
	ih.opt = opt_nop7;
	ih.opt_len = sizeof(opt_nop7);
	dg_tcp(&dg, ih, 443, 21002, 16);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_B, "TCP with 8 option bytes (IHL 7) -> B");
	dg_esp(&dg, ih, SPI(0x0100, 9), 16);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_A, "ESP with options (IHL 7) -> A");
	ih.opt = opt_40;
	ih.opt_len = sizeof(opt_40);
	dg_icmp(&dg, ih, ICMP_ECHOREPLY, 20003, 8);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_A, "echo reply with 40 option bytes (IHL 15) -> A");

	/* Minimum Ethernet frame: 18 bytes of padding after a 28-byte datagram
	 * travel along (the outer length still covers the datagram only). */
	dg_udp(&dg, hdr(REMOTE, G0), 53, 20004, 0);
	c = case_add(&cs, XDP_REDIRECT, XDNAT_R_WAN_TO_HOST, "padded 60-byte frame -> A");
	wan_frame(&c->in, &dg);
	pkt_put(&c->in, NULL, 60 - c->in.len);
	pkt_put(&dg, NULL, 18);
	tunnel(&c->out, host(H_A)->mac, MAC_LAN0, LAN_ROUTER, host(H_A)->lan, &dg);
	c->bytes = 28;
	c->to_host = H_A;
	run_cases(WAN_XDP, &cs);
}

/* FIB outcomes other than "resolved, via the LAN NIC". */
Test(wan, next_hop)
{
	const struct hostdef *a = host(H_A), *d = host(H_D);
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg;

	/* No neighbour for D: the stack gets the tunnel packet to forward and
	 * resolve; the Ethernet header is still the received one. */
	dg_udp(&dg, hdr(REMOTE, G0), 53, 22050, 40);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_NO_NEIGH, "UDP to D (no neighbour)");
	wan_frame(&c->in, &dg);
	tunnel(&c->out, MAC_WAN0, MAC_REMOTE, LAN_ROUTER, d->lan, &dg);
	c->bytes = ip_totlen(&dg);
	dg_esp(&dg, hdr(REMOTE, G0), SPI(0x0300, 0x300), 40);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_NO_NEIGH, "ESP to D (no neighbour)");
	wan_frame(&c->in, &dg);
	tunnel(&c->out, MAC_WAN0, MAC_REMOTE, LAN_ROUTER, d->lan, &dg);
	c->bytes = ip_totlen(&dg);

	/* LAN MTU 1500: a 1480-byte datagram fits once tunnelled, 1481 not. */
	dg_udp(&dg, hdr(REMOTE, G0), 53, 20010, 1480 - 28);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_A, "1480-byte datagram: 1500 tunnelled, fits");
	dg_udp(&dg, nodf(hdr(REMOTE, G0)), 53, 20010, 1481 - 28);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_TOO_BIG,
		     "1481-byte datagram, no DF: too big once tunnelled, stack fragments");
	wan_frame(&c->in, &dg);
	tunnel(&c->out, MAC_WAN0, MAC_REMOTE, LAN_ROUTER, a->lan, &dg);
	c->bytes = ip_totlen(&dg);

	/* H's LAN address routes out of the WAN NIC: never sent there. */
	dg_udp(&dg, hdr(REMOTE, G0), 53, 24005, 40);
	wan_same(&cs, XDP_DROP, XDNAT_R_DROP_NO_ROUTE, &dg, "UDP to H (tunnel end routed via WAN)");
	dg_esp(&dg, hdr(REMOTE, G0), SPI(0x0500, 1), 40);
	wan_same(&cs, XDP_DROP, XDNAT_R_DROP_NO_ROUTE, &dg, "ESP to H (tunnel end routed via WAN)");
	run_cases(WAN_XDP, &cs);
}

/* ------------------------------------------------------------ malformed */

/*
 * Every prefix of a valid frame.  What xdnat_wan_xdp documents, per length:
 *   < 14      no Ethernet header: drop_malformed (but BPF_PROG_TEST_RUN on
 *             recent kernels, 6.18 included, refuses XDP input shorter than
 *             ETH_HLEN with EINVAL: then the program never sees it);
 *   14..33    IPv4 ethertype, no 20-byte header: drop_malformed;
 *   34..n-1   daddr is G, tot_len exceeds the bytes: drop_malformed;
 *   n         delivered.
 */
static void truncations(struct cases *cs, const struct pkt *dg, uint32_t hid, const char *what)
{
	struct pkt full;

	wan_frame(&full, dg);
	for (size_t len = 0; len < full.len; len++) {
		struct dp_case *c = case_add(cs, XDP_DROP, XDNAT_R_DROP_MALFORMED,
					     "%s truncated to %zu of %zu bytes", what, len, full.len);

		memcpy(c->in.b, full.b, len);
		c->in.len = len;
		if (len < 14)
			c->refusal_errno = EINVAL;
	}
	wan_fwd(cs, XDP_REDIRECT, dg, hid, what);
}

Test(malformed, truncated_udp)
{
	struct cases cs = { 0 };
	struct pkt dg;

	dg_udp(&dg, hdr(REMOTE, G0), 4500, 20020, 12);
	truncations(&cs, &dg, H_A, "UDP");
	run_cases(WAN_XDP, &cs);
}

Test(malformed, truncated_esp)
{
	struct cases cs = { 0 };
	struct pkt dg;

	dg_esp(&dg, hdr(REMOTE, G0), SPI(0x0101, 0xabc), 12);
	truncations(&cs, &dg, H_B, "ESP");
	run_cases(WAN_XDP, &cs);
}

Test(malformed, truncated_ah)
{
	struct cases cs = { 0 };
	struct pkt dg;

	dg_ah(&dg, hdr(REMOTE, G0), SPI(0x0100, 0xabc), 4);
	truncations(&cs, &dg, H_A, "AH");
	run_cases(WAN_XDP, &cs);
}

/*
 * Short but self-consistent L4 headers (tot_len says so): the router needs
 * 4 bytes of TCP/UDP/ESP (ports, SPI), 8 of AH (SPI at offset 4) and ICMP
 * (identifier at offset 4); one byte less is malformed.
 */
Test(malformed, short_l4)
{
	static const struct {
		uint8_t proto;
		size_t len;
		int reason;
		uint32_t host;
	} t[] = {
		{ PROTO_UDP, 3, XDNAT_R_DROP_MALFORMED, 0 },
		{ PROTO_UDP, 4, XDNAT_R_WAN_TO_HOST, H_A },
		{ PROTO_TCP, 3, XDNAT_R_DROP_MALFORMED, 0 },
		{ PROTO_TCP, 4, XDNAT_R_WAN_TO_HOST, H_A },
		{ PROTO_ESP, 0, XDNAT_R_DROP_MALFORMED, 0 },
		{ PROTO_ESP, 3, XDNAT_R_DROP_MALFORMED, 0 },
		{ PROTO_ESP, 4, XDNAT_R_WAN_TO_HOST, H_A },
		{ PROTO_AH, 7, XDNAT_R_DROP_MALFORMED, 0 },
		{ PROTO_AH, 8, XDNAT_R_WAN_TO_HOST, H_A },
		{ PROTO_ICMP, 7, XDNAT_R_DROP_MALFORMED, 0 },
		{ PROTO_ICMP, 8, XDNAT_R_WAN_TO_HOST, H_A },
	};
	struct cases cs = { 0 };
	char name[96];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		/* L4 bytes that map to A: dport 20030 at offset 2 (TCP/UDP), SPI
		 * 0x01004e3e (A's block) at 0 (ESP) and 4 (AH); for ICMP an echo
		 * reply (type 0) with identifier 20030 at offset 4. */
		static const uint8_t l4[8] = { 0x01, 0x00, 0x4e, 0x3e, 0x01, 0x00, 0x4e, 0x3e };
		static const uint8_t icmp[8] = { 0x00, 0x00, 0x00, 0x00, 0x4e, 0x3e, 0x00, 0x01 };
		struct pkt dg;
		struct ip4 ih = hdr(REMOTE, G0);
		size_t o;

		ih.proto = t[i].proto;
		pkt_reset(&dg);
		o = pkt_ip4_begin(&dg, &ih);
		pkt_put(&dg, t[i].proto == PROTO_ICMP ? icmp : l4, t[i].len);
		pkt_ip4_end(&dg, o);
		snprintf(name, sizeof(name), "proto %u with %zu L4 bytes", t[i].proto, t[i].len);
		if (t[i].host)
			wan_fwd(&cs, XDP_REDIRECT, &dg, t[i].host, name);
		else
			wan_same(&cs, XDP_DROP, t[i].reason, &dg, name);
	}
	run_cases(WAN_XDP, &cs);
}

/* Apply @edit to a copy of a valid datagram to G0 (checksum recomputed
 * unless the edit makes the header unreadable as such). */
static void bad_header(struct cases *cs, int verdict, int reason, const char *name,
		       void (*edit)(struct pkt *dg, int arg), int arg)
{
	struct pkt dg;
	struct dp_case *c;

	dg_udp(&dg, hdr(REMOTE, G0), 4500, 20040, 24);
	edit(&dg, arg);
	c = case_add(cs, verdict, reason, "%s", name);
	wan_frame(&c->in, &dg);
}

static void set_ihl(struct pkt *dg, int ihl)
{
	dg->b[0] = (uint8_t)((dg->b[0] & 0xf0) | ihl);
	pkt_wr16(dg->b + 10, 0);
	pkt_wr16(dg->b + 10, pkt_csum(dg->b, 20));
}

static void set_version(struct pkt *dg, int v)
{
	dg->b[0] = (uint8_t)((dg->b[0] & 0x0f) | v << 4);
	pkt_ip4_fix_csum(dg, 0);
}

static void add_totlen(struct pkt *dg, int delta)
{
	pkt_wr16(dg->b + 2, (uint16_t)(ip_totlen(dg) + delta));
	pkt_ip4_fix_csum(dg, 0);
}

static void set_totlen(struct pkt *dg, int v)
{
	pkt_wr16(dg->b + 2, (uint16_t)v);
	pkt_ip4_fix_csum(dg, 0);
}

static void set_daddr(struct pkt *dg, int which)
{
	pkt_wr32(dg->b + 16, which ? NOT_GLOBAL : G0);
	pkt_ip4_fix_csum(dg, 0);
}

static void v6_not_global(struct pkt *dg, int arg)
{
	set_daddr(dg, 1);
	set_version(dg, arg);
}

Test(malformed, bad_ipv4_headers)
{
	struct cases cs = { 0 };
	char name[64];
	struct dp_case *c;
	struct pkt dg;

	for (int ihl = 0; ihl < 5; ihl++) {
		snprintf(name, sizeof(name), "IHL %d", ihl);
		bad_header(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, name, set_ihl, ihl);
	}
	/* 52-byte datagram: IHL 14 (56) and 15 (60) reach beyond it, and
	 * beyond tot_len. */
	bad_header(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "IHL 14 beyond the packet", set_ihl, 14);
	bad_header(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "IHL 15 beyond the packet", set_ihl, 15);
	bad_header(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "tot_len one beyond the packet",
		   add_totlen, 1);
	bad_header(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "tot_len 65535", set_totlen, 65535);
	bad_header(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "tot_len 19 < IHL*4", set_totlen, 19);
	bad_header(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "tot_len 0", set_totlen, 0);
	bad_header(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "version 6 in an IPv4 frame",
		   set_version, 6);
	bad_header(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "version 0", set_version, 0);
	bad_header(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "version 15", set_version, 15);
	/* Not addressed to a global address: the stack judges it, not us. */
	bad_header(&cs, XDP_PASS, XDNAT_R_PASS_NOT_GLOBAL, "version 6, daddr not global",
		   v6_not_global, 6);

	/* tot_len shorter than the frame: the rest is Ethernet padding to the
	 * datapath, carried along after the datagram. */
	dg_udp(&dg, hdr(REMOTE, G0), 4500, 20040, 24);
	set_totlen(&dg, 20 + 4);
	c = case_add(&cs, XDP_REDIRECT, XDNAT_R_WAN_TO_HOST,
		     "tot_len covers the ports only: rest is padding");
	wan_frame(&c->in, &dg);
	tunnel(&c->out, host(H_A)->mac, MAC_LAN0, LAN_ROUTER, host(H_A)->lan, &dg);
	c->bytes = 24;
	c->to_host = H_A;
	run_cases(WAN_XDP, &cs);
}

/* Frames the WAN program leaves to the stack untouched. */
Test(malformed, not_for_the_datapath)
{
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg;

	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_NOT_IPV4, "ARP request");
	raw_frame(&c->in, MAC_BCAST, MAC_REMOTE, ETHTYPE_ARP, 28);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_NOT_IPV4, "IPv6");
	raw_frame(&c->in, MAC_WAN0, MAC_REMOTE, ETHTYPE_IPV6, 60);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_NOT_IPV4, "ethertype only (14 bytes, IPv6)");
	raw_frame(&c->in, MAC_WAN0, MAC_REMOTE, ETHTYPE_IPV6, 0);

	/* A VLAN tag in front of an IPv4 datagram to G0 (owned port). */
	dg_udp(&dg, hdr(REMOTE, G0), 53, 20000, 16);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_VLAN, "802.1Q tagged UDP to A's port");
	pkt_eth(&c->in, MAC_WAN0, MAC_REMOTE, ETHTYPE_VLAN);
	pkt_put16(&c->in, 0x0064);
	pkt_put16(&c->in, ETHTYPE_IPV4);
	pkt_put(&c->in, dg.b, dg.len);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_VLAN, "802.1ad tagged UDP to A's port");
	pkt_eth(&c->in, MAC_WAN0, MAC_REMOTE, ETHTYPE_QINQ);
	pkt_put16(&c->in, 0x0064);
	pkt_put16(&c->in, ETHTYPE_VLAN);
	pkt_put16(&c->in, 0x0001);
	pkt_put16(&c->in, ETHTYPE_IPV4);
	pkt_put(&c->in, dg.b, dg.len);

	dg_udp(&dg, hdr(REMOTE, NOT_GLOBAL), 53, 20000, 16);
	wan_same(&cs, XDP_PASS, XDNAT_R_PASS_NOT_GLOBAL, &dg, "UDP to 192.0.2.2 (not global)");
	dg_tcp(&dg, hdr(REMOTE, WAN_ADDR), 40000, 22, 0);
	wan_same(&cs, XDP_PASS, XDNAT_R_PASS_NOT_GLOBAL, &dg, "TCP to the router's WAN address");
	dg_esp(&dg, hdr(REMOTE, IP4(255, 255, 255, 255)), SPI(0x0100, 1), 8);
	wan_same(&cs, XDP_PASS, XDNAT_R_PASS_NOT_GLOBAL, &dg, "ESP to broadcast");
	dg_udp(&dg, hdr(REMOTE, host(H_A)->lan), 53, 20000, 16);
	wan_same(&cs, XDP_PASS, XDNAT_R_PASS_NOT_GLOBAL, &dg, "UDP to A's LAN address");
	run_cases(WAN_XDP, &cs);
}

/* ------------------------------------------------------------ LAN */

Test(lan, host_to_wan)
{
	static const uint8_t opt_ra[4] = { 0x94, 0x04, 0x00, 0x00 };
	struct cases cs = { 0 };
	struct pkt dg;
	struct ip4 ih;

	dg_udp(&dg, from_g(H_A, REMOTE), 20000, 4500, 40);
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, "A UDP from its first port");
	dg_tcp(&dg, from_g(H_A, REMOTE_FAR), 20999, 443, 100);
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_GW, "A TCP from its last port, via gateway");
	dg_udp(&dg, from_g(H_B, REMOTE), 21000, 4500, 40);
	lan_fwd(&cs, XDP_REDIRECT, H_B, &dg, MAC_REMOTE, "B UDP from its first port");
	dg_udp(&dg, from_g(H_C, REMOTE), 20000, 4500, 40);
	lan_fwd(&cs, XDP_REDIRECT, H_C, &dg, MAC_REMOTE, "C UDP from G1:20000 (its block on G1)");
	dg_icmp(&dg, from_g(H_A, REMOTE), ICMP_ECHO, 20500, 56);
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, "A echo request with its id");
	dg_icmp(&dg, from_g(H_A, REMOTE), ICMP_ECHOREPLY, 20501, 56);
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, "A echo reply with its id");
	dg_icmp(&dg, from_g(H_A, REMOTE), ICMP_UNREACH, 4500, 28);
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, "A ICMP unreachable (no id to check)");

	/* ESP/AH carry the peer's SPI: nothing to check. */
	ih = from_g(H_A, REMOTE);
	ih.tos = 0xb8;
	dg_esp(&dg, ih, 0x00c0ffee, 64);
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, "A ESP (peer's SPI)");
	dg_ah(&dg, from_g(H_B, REMOTE_FAR), 0x00000101, 32);
	lan_fwd(&cs, XDP_REDIRECT, H_B, &dg, MAC_GW, "B AH via gateway");
	dg_esp(&dg, from_g(H_C, REMOTE), 0x12345678, 64);
	lan_fwd(&cs, XDP_REDIRECT, H_C, &dg, MAC_REMOTE, "C ESP from G1");

	dg_raw(&dg, from_g(H_A, REMOTE), PROTO_GRE, 32, 9);
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, "A GRE (no port to check)");
	ih = from_g(H_A, REMOTE);
	ih.frag = 185;
	dg_raw(&dg, ih, PROTO_UDP, 32, 8);
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, "A UDP later fragment (no port)");
	ih = from_g(H_A, REMOTE);
	ih.frag = IP_MF;
	dg_udp(&dg, ih, 20002, 4500, 64);
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, "A UDP first fragment from its port");
	ih = from_g(H_A, REMOTE);
	ih.opt = opt_ra;
	ih.opt_len = sizeof(opt_ra);
	dg_udp(&dg, ih, 20003, 4500, 20);
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, "A UDP with IP options (IHL 6)");
	ih = from_g(H_A, REMOTE);
	ih.ttl = 2;
	dg_udp(&dg, ih, 20004, 4500, 20);
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, "A UDP TTL 2 -> leaves with TTL 1");
	ih = from_g(H_A, REMOTE);
	ih.ttl = 255;
	ih.id = 0xffff;
	dg_udp(&dg, ih, 20005, 4500, 20);
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, "A UDP TTL 255");
	run_cases(LAN_XDP, &cs);
}

/* The incremental TTL checksum update against a full recomputation, over
 * many headers (the carry cases of RFC 1624 included). */
Test(lan, ttl_checksum_sweep)
{
	struct cases cs = { 0 };
	struct pkt dg;
	struct ip4 ih;

	for (unsigned i = 0; i < 64; i++) {
		char name[64];

		ih = from_g(H_A, REMOTE);
		ih.ttl = (uint8_t)(2 + i * 4);
		ih.id = (uint16_t)(i * 0x0405 + 0xfe00);
		ih.tos = (uint8_t)(i * 3);
		dg_udp(&dg, ih, (uint16_t)(20100 + i), 4500, i);
		snprintf(name, sizeof(name), "ttl %u id %#x", ih.ttl, ih.id);
		lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, name);
	}
	run_cases(LAN_XDP, &cs);
}

Test(lan, anti_spoofing)
{
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg;
	struct ip4 ih;

	dg_udp(&dg, from_g(H_A, REMOTE), 21000, 4500, 20);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPOOF_PORT, H_A, &dg, "A UDP from B's port");
	dg_udp(&dg, from_g(H_A, REMOTE), 19999, 4500, 20);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPOOF_PORT, H_A, &dg, "A UDP from unallocated port");
	dg_tcp(&dg, from_g(H_A, REMOTE), 23000, 443, 0);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPOOF_PORT, H_A, &dg, "A TCP from E's port");
	dg_tcp(&dg, from_g(H_B, REMOTE), 20999, 443, 0);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPOOF_PORT, H_B, &dg, "B TCP from A's last port");
	dg_udp(&dg, from_g(H_C, REMOTE), 21000, 4500, 20);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPOOF_PORT, H_C, &dg,
		 "C (G1) UDP from 21000, unallocated on G1");
	dg_udp(&dg, from_g(H_C, REMOTE), 31000, 4500, 20);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPOOF_PORT, H_C, &dg,
		 "C (G1) UDP from 31000: C's only in G0's map");
	dg_icmp(&dg, from_g(H_A, REMOTE), ICMP_ECHO, 21000, 8);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPOOF_PORT, H_A, &dg, "A echo request with B's id");
	dg_icmp(&dg, from_g(H_A, REMOTE), ICMP_ECHOREPLY, 40000, 8);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPOOF_PORT, H_A, &dg,
		 "A echo reply with unallocated id");

	dg_udp(&dg, hdr(G1, REMOTE), 20000, 4500, 20);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPOOF_SRC, H_A, &dg, "A sends from G1 (C's gaddr)");
	dg_udp(&dg, hdr(host(H_A)->lan, REMOTE), 20000, 4500, 20);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPOOF_SRC, H_A, &dg, "A sends from its LAN address");
	dg_esp(&dg, hdr(REMOTE_FAR, REMOTE), 0x1000, 20);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPOOF_SRC, H_A, &dg, "A ESP from a foreign address");
	dg_udp(&dg, hdr(G0, REMOTE), 20000, 4500, 20);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPOOF_SRC, H_C, &dg, "C sends from G0 (not its gaddr)");

	/* Tunnel from LAN addresses that are not (validly) registered. */
	dg_udp(&dg, from_g(H_A, REMOTE), 20000, 4500, 20);
	c = case_add(&cs, XDP_DROP, XDNAT_R_DROP_UNREGISTERED, "outer source unregistered");
	tunnel(&c->in, MAC_LAN0, MAC_STRAY, LAN_STRAY, LAN_ROUTER, &dg);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_UNREGISTERED, H_E, &dg, "outer source E (not valid)");
	c = case_add(&cs, XDP_DROP, XDNAT_R_DROP_UNREGISTERED,
		     "outer source in a stale index entry (F's old address)");
	tunnel(&c->in, MAC_LAN0, host(H_F)->mac, host(H_F)->idx_lan, LAN_ROUTER, &dg);
	c = case_add(&cs, XDP_DROP, XDNAT_R_DROP_UNREGISTERED,
		     "outer source F's address, missing from the index");
	tunnel(&c->in, MAC_LAN0, host(H_F)->mac, host(H_F)->lan, LAN_ROUTER, &dg);

	ih = from_g(H_A, REMOTE);
	ih.ttl = 1;
	dg_udp(&dg, ih, 20000, 4500, 20);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_TTL, H_A, &dg, "inner TTL 1");
	ih.ttl = 0;
	dg_esp(&dg, ih, 0x1000, 20);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_TTL, H_A, &dg, "inner TTL 0 (ESP)");
	run_cases(LAN_XDP, &cs);
}

Test(lan, not_tunnel_traffic)
{
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg, inner;

	dg_udp(&dg, hdr(host(H_A)->lan, LAN_ROUTER), 5000, 53, 20);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_LAN_OTHER, "plain UDP to the router (DNS)");
	frame(&c->in, MAC_LAN0, host(H_A)->mac, &dg);
	dg_icmp(&dg, hdr(host(H_A)->lan, LAN_ROUTER), ICMP_ECHO, 1, 20);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_LAN_OTHER, "ping to the router");
	frame(&c->in, MAC_LAN0, host(H_A)->mac, &dg);
	dg_udp(&dg, hdr(host(H_A)->lan, REMOTE), 5000, 53, 20);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_LAN_OTHER, "plain UDP routed through");
	frame(&c->in, MAC_LAN0, host(H_A)->mac, &dg);
	dg_raw(&dg, hdr(host(H_A)->lan, LAN_ROUTER), PROTO_GRE, 40, 1);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_LAN_OTHER, "GRE to the router");
	frame(&c->in, MAC_LAN0, host(H_A)->mac, &dg);
	dg_udp(&inner, from_g(H_A, REMOTE), 20000, 4500, 20);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_LAN_OTHER, "IP-in-IP between two hosts");
	tunnel(&c->in, host(H_B)->mac, host(H_A)->mac, host(H_A)->lan, host(H_B)->lan, &inner);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_LAN_OTHER, "IP-in-IP to the router, outer version 6");
	lan_tunnel(&c->in, H_A, &inner);
	c->in.b[14] = (uint8_t)(0x60 | (c->in.b[14] & 0x0f));
	pkt_ip4_fix_csum(&c->in, 14);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_NOT_IPV4, "ARP request");
	raw_frame(&c->in, MAC_BCAST, host(H_A)->mac, ETHTYPE_ARP, 28);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_NOT_IPV4, "IPv6 neighbour solicitation");
	raw_frame(&c->in, MAC_LAN0, host(H_A)->mac, ETHTYPE_IPV6, 72);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_VLAN, "802.1Q tagged tunnel");
	pkt_eth(&c->in, MAC_LAN0, host(H_A)->mac, ETHTYPE_VLAN);
	pkt_put16(&c->in, 0x0005);
	pkt_put16(&c->in, ETHTYPE_IPV4);
	pkt_put(&c->in, inner.b, inner.len);
	run_cases(LAN_XDP, &cs);
}

/* Apply @edit to a valid tunnel frame from A (offsets: outer at 14,
 * inner at 34). */
static void lan_bad(struct cases *cs, int verdict, int reason, const char *name,
		    void (*edit)(struct pkt *f))
{
	struct dp_case *c = case_add(cs, verdict, reason, "%s", name);
	struct pkt dg;

	dg_udp(&dg, from_g(H_A, REMOTE), 20000, 4500, 24);
	lan_tunnel(&c->in, H_A, &dg);
	edit(&c->in);
}

static void outer_tot_plus1(struct pkt *f)
{
	pkt_wr16(f->b + 16, (uint16_t)(pkt_rd16(f->b + 16) + 1));
	pkt_ip4_fix_csum(f, 14);
}

static void outer_tot_minus1(struct pkt *f)
{
	pkt_wr16(f->b + 16, (uint16_t)(pkt_rd16(f->b + 16) - 1));
	pkt_ip4_fix_csum(f, 14);
}

static void outer_tot_huge(struct pkt *f)
{
	pkt_wr16(f->b + 16, 65535);
	pkt_ip4_fix_csum(f, 14);
}

static void outer_ihl6(struct pkt *f)
{
	/* Insert 4 option bytes (NOP NOP NOP EOL) after the outer header. */
	struct pkt g = *f;

	memcpy(f->b, g.b, 34);
	memcpy(f->b + 34, (const uint8_t[]){ 1, 1, 1, 0 }, 4);
	memcpy(f->b + 38, g.b + 34, g.len - 34);
	f->len = g.len + 4;
	f->b[14] = 0x46;
	pkt_wr16(f->b + 16, (uint16_t)(pkt_rd16(g.b + 16) + 4));
	pkt_ip4_fix_csum(f, 14);
}

static void outer_mf(struct pkt *f)
{
	pkt_wr16(f->b + 20, IP_MF);
	pkt_ip4_fix_csum(f, 14);
}

static void outer_offset(struct pkt *f)
{
	pkt_wr16(f->b + 20, 100);
	pkt_ip4_fix_csum(f, 14);
}

static void inner_ihl4(struct pkt *f)
{
	f->b[34] = 0x44;
	pkt_ip4_fix_csum(f, 34); /* over 16 bytes, as IHL says */
}

static void inner_v6(struct pkt *f)
{
	f->b[34] = 0x65;
	pkt_ip4_fix_csum(f, 34);
}

static void inner_tot_minus1(struct pkt *f)
{
	pkt_wr16(f->b + 36, (uint16_t)(pkt_rd16(f->b + 36) - 1));
	pkt_ip4_fix_csum(f, 34);
}

/* Both lengths consistent, frame shorter than they say. */
static void both_tot_plus4(struct pkt *f)
{
	pkt_wr16(f->b + 36, (uint16_t)(pkt_rd16(f->b + 36) + 4));
	pkt_ip4_fix_csum(f, 34);
	pkt_wr16(f->b + 16, (uint16_t)(pkt_rd16(f->b + 16) + 4));
	pkt_ip4_fix_csum(f, 14);
}

/* Outer header claims 10 bytes of inner datagram. */
static void inner_10_bytes(struct pkt *f)
{
	f->len = 34 + 10;
	pkt_wr16(f->b + 16, 30);
	pkt_ip4_fix_csum(f, 14);
}

/* Inner UDP cut to 3 bytes (lengths consistent): no source port. */
static void inner_udp_3(struct pkt *f)
{
	f->len = 34 + 23;
	pkt_wr16(f->b + 36, 23);
	pkt_ip4_fix_csum(f, 34);
	pkt_wr16(f->b + 16, 43);
	pkt_ip4_fix_csum(f, 14);
}

Test(lan, malformed_tunnels)
{
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg, full;

	lan_bad(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "outer tot_len beyond the frame", outer_tot_plus1);
	lan_bad(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "outer tot_len != inner + 20", outer_tot_minus1);
	lan_bad(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "outer tot_len 65535", outer_tot_huge);
	lan_bad(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "outer header with options (IHL 6)", outer_ihl6);
	lan_bad(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "inner IHL 4", inner_ihl4);
	lan_bad(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "inner version 6", inner_v6);
	lan_bad(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "inner tot_len 1 short of outer", inner_tot_minus1);
	lan_bad(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "both lengths 4 beyond the frame", both_tot_plus4);
	lan_bad(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "inner datagram of 10 bytes", inner_10_bytes);
	lan_bad(&cs, XDP_DROP, XDNAT_R_DROP_MALFORMED, "inner UDP of 3 bytes", inner_udp_3);
	lan_bad(&cs, XDP_DROP, XDNAT_R_FRAGMENT, "outer header MF (fragmented tunnel)", outer_mf);
	lan_bad(&cs, XDP_DROP, XDNAT_R_FRAGMENT, "outer header offset 800", outer_offset);

	/*
	 * Every prefix of a tunnel frame, as xdnat_lan_xdp documents it:
	 *   < 14      drop_malformed (no Ethernet header), if the kernel runs it;
	 *   14..33    pass_lan_other (not even an outer header to look at);
	 *   34..n-1   from registered A to the router: drop_malformed;
	 *   n         forwarded.
	 */
	dg_udp(&dg, from_g(H_A, REMOTE), 20000, 4500, 8);
	lan_tunnel(&full, H_A, &dg);
	for (size_t len = 0; len < full.len; len++) {
		int reason = len < 14 ? XDNAT_R_DROP_MALFORMED :
			     len < 34 ? XDNAT_R_PASS_LAN_OTHER : XDNAT_R_DROP_MALFORMED;

		c = case_add(&cs, reason == XDNAT_R_PASS_LAN_OTHER ? XDP_PASS : XDP_DROP, reason,
			     "tunnel truncated to %zu of %zu bytes", len, full.len);
		memcpy(c->in.b, full.b, len);
		c->in.len = len;
		if (len < 14)
			c->refusal_errno = EINVAL;
	}
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, "tunnel, complete");
	run_cases(LAN_XDP, &cs);
}

Test(lan, hairpin)
{
	struct cases cs = { 0 };
	struct pkt dg;
	struct ip4 ih;

	dg_udp(&dg, from_g(H_A, G0), 20000, 21005, 30);
	hairpin(&cs, XDP_TX, H_A, H_B, &dg, "A -> G0:21005 (B's port) -> B");
	ih = from_g(H_A, G0);
	ih.tos = 0x28;
	ih.id = 0x9999;
	dg_esp(&dg, ih, SPI(0x0101, 77), 40);
	hairpin(&cs, XDP_TX, H_A, H_B, &dg, "A -> G0 ESP B's SPI -> B");
	dg_tcp(&dg, from_g(H_A, G1), 20001, 20500, 10);
	hairpin(&cs, XDP_TX, H_A, H_C, &dg, "A -> G1:20500 (C's) -> C");
	dg_udp(&dg, from_g(H_C, G0), 20002, 20003, 10);
	hairpin(&cs, XDP_TX, H_C, H_A, &dg, "C (G1) -> G0:20003 (A's) -> A");
	dg_icmp(&dg, from_g(H_B, G0), ICMP_ECHOREPLY, 21001, 16);
	hairpin(&cs, XDP_TX, H_B, H_B, &dg, "B -> G0 echo reply id 21001 -> B itself");

	dg_udp(&dg, from_g(H_A, G0), 20000, 40000, 30);
	lan_same(&cs, XDP_DROP, XDNAT_R_UNKNOWN_PORT, H_A, &dg,
		 "A -> G0:40000 unallocated: dropped whatever the policy");
	dg_udp(&dg, from_g(H_A, G0), 20000, 31000, 30);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_WRONG_GADDR, H_A, &dg, "A -> G0:31000 (C of G1)");
	dg_esp(&dg, from_g(H_A, G0), 17, 30);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPI_RESERVED, H_A, &dg, "A -> G0 ESP reserved SPI");
	ih = from_g(H_A, G0);
	ih.ttl = 1;
	dg_udp(&dg, ih, 20000, 21005, 30);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_TTL, H_A, &dg, "A -> B with TTL 1");
	dg_udp(&dg, from_g(H_A, G0), 21000, 21005, 30);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPOOF_PORT, H_A, &dg, "A -> B from B's port");

	/* Receiver D has no neighbour: no stack fallback for a hairpin, the
	 * packet is dropped (counted under pass_no_neigh, as the code says);
	 * D received nothing, so D's to_host counters must not move. */
	dg_udp(&dg, from_g(H_A, G0), 20000, 22001, 30);
	lan_same(&cs, XDP_DROP, XDNAT_R_PASS_NO_NEIGH, H_A, &dg, "A -> D (no neighbour): dropped");
	dg_udp(&dg, from_g(H_A, G0), 20000, 24001, 30);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_NO_ROUTE, H_A, &dg, "A -> H (routed via WAN): dropped");
	/* Re-tunnelled 1501 bytes exceed the LAN MTU: dropped, counted too big. */
	dg_udp(&dg, from_g(H_A, G0), 20000, 21005, 1481 - 28);
	lan_same(&cs, XDP_DROP, XDNAT_R_PASS_TOO_BIG, H_A, &dg, "A -> B, 1501 bytes tunnelled: dropped");
	dg_udp(&dg, from_g(H_A, G0), 20000, 21005, 1480 - 28);
	hairpin(&cs, XDP_TX, H_A, H_B, &dg, "A -> B, 1500 bytes tunnelled: fits");
	run_cases(LAN_XDP, &cs);
}

/* FIB outcomes for host -> WAN other than a resolved WAN next hop. */
Test(lan, next_hop)
{
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg;

	/* No neighbour: the decapsulated datagram goes to the stack, TTL
	 * untouched (the stack forwards and decrements), Ethernet as received. */
	dg_udp(&dg, from_g(H_A, REMOTE_NONEIGH), 20000, 4500, 30);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_NO_NEIGH, "A -> remote without neighbour entry");
	lan_tunnel(&c->in, H_A, &dg);
	frame(&c->out, MAC_LAN0, host(H_A)->mac, &dg);
	c->bytes = ip_totlen(&dg);

	/* WAN MTU 1500: 1500 fits, 1501 goes to the stack (fragment or ICMP). */
	dg_udp(&dg, from_g(H_A, REMOTE), 20000, 4500, 1500 - 28);
	lan_fwd(&cs, XDP_REDIRECT, H_A, &dg, MAC_REMOTE, "1500-byte datagram fits the WAN");
	dg_udp(&dg, nodf(from_g(H_A, REMOTE)), 20000, 4500, 1501 - 28);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_TOO_BIG,
		     "1501-byte datagram, no DF: too big for the WAN, stack fragments");
	lan_tunnel(&c->in, H_A, &dg);
	frame(&c->out, MAC_LAN0, host(H_A)->mac, &dg);
	c->bytes = ip_totlen(&dg);

	/* Destination on the LAN itself: not via the WAN NIC. */
	dg_udp(&dg, from_g(H_A, host(H_B)->lan), 20000, 4500, 30);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_NO_ROUTE, H_A, &dg, "A -> B's LAN address via tunnel");
	run_cases(LAN_XDP, &cs);
}

/* ------------------------------------------------------------ tc */

/*
 * The tc variants, run through BPF_PROG_TEST_RUN with skb->dev and
 * skb_iif set to the ingress NIC.  bpf_redirect()/bpf_redirect_neigh()
 * only return TC_ACT_REDIRECT here; the frame is returned as the program
 * left it, so the output is checked exactly.
 */
Test(tc, wan)
{
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg;
	struct ip4 ih;

	ih = hdr(REMOTE, G0);
	ih.tos = 0xb8;
	dg_esp(&dg, ih, SPI(0x0100, 0x42), 64);
	wan_fwd(&cs, TC_ACT_REDIRECT, &dg, H_A, "ESP to A");
	dg_ah(&dg, hdr(REMOTE, G0), SPI(0x0101, 0x42), 16);
	wan_fwd(&cs, TC_ACT_REDIRECT, &dg, H_B, "AH to B");
	dg_udp(&dg, hdr(REMOTE, G0), 4500, 21234, 40);
	wan_fwd(&cs, TC_ACT_REDIRECT, &dg, H_B, "UDP to B");
	dg_udp(&dg, hdr(REMOTE, G1), 4500, 20001, 40);
	wan_fwd(&cs, TC_ACT_REDIRECT, &dg, H_C, "UDP to C on G1");
	dg_tcp(&dg, hdr(REMOTE, G0), 443, 20001, 40);
	wan_fwd(&cs, TC_ACT_REDIRECT, &dg, H_A, "TCP to A");
	dg_icmp(&dg, hdr(REMOTE, G0), ICMP_ECHOREPLY, 20001, 40);
	wan_fwd(&cs, TC_ACT_REDIRECT, &dg, H_A, "echo reply to A");

	/* No neighbour: bpf_redirect_neigh() resolves; the frame keeps its
	 * received Ethernet header and counts as delivered. */
	dg_udp(&dg, hdr(REMOTE, G0), 53, 22050, 40);
	c = case_add(&cs, TC_ACT_REDIRECT, XDNAT_R_WAN_TO_HOST, "UDP to D (no neighbour)");
	wan_frame(&c->in, &dg);
	tunnel(&c->out, MAC_WAN0, MAC_REMOTE, LAN_ROUTER, host(H_D)->lan, &dg);
	c->bytes = ip_totlen(&dg);
	c->to_host = H_D;

	/* Too big once tunnelled: encapsulated, then left to the stack. */
	dg_udp(&dg, nodf(hdr(REMOTE, G0)), 53, 20010, 1481 - 28);
	c = case_add(&cs, TC_ACT_OK, XDNAT_R_PASS_TOO_BIG, "1481-byte datagram to A, no DF: stack");
	wan_frame(&c->in, &dg);
	tunnel(&c->out, MAC_WAN0, MAC_REMOTE, LAN_ROUTER, host(H_A)->lan, &dg);
	c->bytes = ip_totlen(&dg);

	dg_udp(&dg, hdr(REMOTE, G0), 53, 40000, 16);
	wan_same(&cs, TC_ACT_OK, XDNAT_R_UNKNOWN_PORT, &dg, "UDP unallocated port: stack");
	dg_esp(&dg, hdr(REMOTE, G0), 200, 16);
	wan_same(&cs, TC_ACT_SHOT, XDNAT_R_DROP_SPI_RESERVED, &dg, "ESP reserved SPI");
	dg_udp(&dg, hdr(REMOTE, G0), 53, 20000, 16);
	add_totlen(&dg, 1);
	wan_same(&cs, TC_ACT_SHOT, XDNAT_R_DROP_MALFORMED, &dg, "tot_len beyond the frame");
	c = case_add(&cs, TC_ACT_OK, XDNAT_R_PASS_NOT_IPV4, "ARP");
	raw_frame(&c->in, MAC_BCAST, MAC_REMOTE, ETHTYPE_ARP, 28);
	run_cases(WAN_TC, &cs);
}

Test(tc, lan)
{
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg;

	dg_esp(&dg, from_g(H_A, REMOTE), 0xdeadbeef, 64);
	lan_fwd(&cs, TC_ACT_REDIRECT, H_A, &dg, MAC_REMOTE, "A ESP to remote");
	dg_udp(&dg, from_g(H_A, REMOTE_FAR), 20000, 4500, 64);
	lan_fwd(&cs, TC_ACT_REDIRECT, H_A, &dg, MAC_GW, "A UDP via gateway");
	dg_udp(&dg, from_g(H_C, REMOTE), 20999, 4500, 64);
	lan_fwd(&cs, TC_ACT_REDIRECT, H_C, &dg, MAC_REMOTE, "C UDP from G1");
	dg_tcp(&dg, from_g(H_B, REMOTE), 21999, 443, 64);
	lan_fwd(&cs, TC_ACT_REDIRECT, H_B, &dg, MAC_REMOTE, "B TCP");

	dg_udp(&dg, from_g(H_A, REMOTE), 21000, 4500, 20);
	lan_same(&cs, TC_ACT_SHOT, XDNAT_R_DROP_SPOOF_PORT, H_A, &dg, "A UDP from B's port");
	dg_udp(&dg, hdr(G1, REMOTE), 20000, 4500, 20);
	lan_same(&cs, TC_ACT_SHOT, XDNAT_R_DROP_SPOOF_SRC, H_A, &dg, "A sends from G1");
	c = case_add(&cs, TC_ACT_SHOT, XDNAT_R_DROP_UNREGISTERED, "unregistered outer source");
	tunnel(&c->in, MAC_LAN0, MAC_STRAY, LAN_STRAY, LAN_ROUTER, &dg);

	dg_udp(&dg, from_g(H_A, G0), 20000, 21005, 30);
	hairpin(&cs, TC_ACT_REDIRECT, H_A, H_B, &dg, "hairpin A -> B");

	/* Too big for the WAN: decapsulated, TTL left to the stack. */
	dg_udp(&dg, nodf(from_g(H_A, REMOTE)), 20000, 4500, 1501 - 28);
	c = case_add(&cs, TC_ACT_OK, XDNAT_R_PASS_TOO_BIG, "1501-byte datagram, no DF: stack");
	lan_tunnel(&c->in, H_A, &dg);
	frame(&c->out, MAC_LAN0, host(H_A)->mac, &dg);
	c->bytes = ip_totlen(&dg);

	dg_udp(&dg, hdr(host(H_A)->lan, LAN_ROUTER), 5000, 53, 20);
	c = case_add(&cs, TC_ACT_OK, XDNAT_R_PASS_LAN_OTHER, "plain UDP to the router");
	frame(&c->in, MAC_LAN0, host(H_A)->mac, &dg);
	run_cases(LAN_TC, &cs);
}

/* ------------------------------------------------------------ host */

/* Host A's view: G0 on lo, LAN address 10.77.0.2, router 10.77.0.1. */
Test(host, egress)
{
	const struct hostdef *a = host(H_A);
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg;
	struct ip4 ih;

	dg_udp(&dg, hdr(G0, REMOTE), 20000, 4500, 40);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_ENCAP, "UDP from G0: tunnelled to the router");
	frame(&c->in, MAC_LAN0, a->mac, &dg);
	tunnel(&c->out, MAC_LAN0, a->mac, a->lan, LAN_ROUTER, &dg);
	c->bytes = ip_totlen(&dg);

	ih = hdr(G0, REMOTE);
	ih.tos = 0xb8;
	ih.frag = 0;
	ih.id = 0x0bad;
	dg_esp(&dg, ih, 0xc0ffee00, 80);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_ENCAP, "ESP from G0 (tos, no DF)");
	frame(&c->in, MAC_LAN0, a->mac, &dg);
	tunnel(&c->out, MAC_LAN0, a->mac, a->lan, LAN_ROUTER, &dg);
	c->bytes = ip_totlen(&dg);

	dg_icmp(&dg, hdr(G0, REMOTE), ICMP_ECHO, 20001, 56);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_ENCAP, "ping from G0");
	frame(&c->in, MAC_LAN0, a->mac, &dg);
	tunnel(&c->out, MAC_LAN0, a->mac, a->lan, LAN_ROUTER, &dg);
	c->bytes = ip_totlen(&dg);

	dg_udp(&dg, hdr(a->lan, LAN_ROUTER), 5000, 53, 20);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_PASS, "UDP from the LAN address: untouched");
	frame(&c->in, MAC_LAN0, a->mac, &dg);
	c->bytes = (long long)c->in.len;
	dg_udp(&dg, hdr(G1, REMOTE), 5000, 53, 20);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_PASS, "UDP from another global address: untouched");
	frame(&c->in, MAC_LAN0, a->mac, &dg);
	c->bytes = (long long)c->in.len;
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_PASS, "ARP: untouched");
	raw_frame(&c->in, MAC_BCAST, a->mac, ETHTYPE_ARP, 28);
	c->bytes = (long long)c->in.len;
	run_cases(HOST_EGRESS, &cs);
}

Test(host, ingress)
{
	const struct hostdef *a = host(H_A);
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg, other;

	dg_udp(&dg, hdr(REMOTE, G0), 4500, 20000, 40);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_DECAP, "tunnelled UDP to G0: decapsulated");
	tunnel(&c->in, a->mac, MAC_LAN0, LAN_ROUTER, a->lan, &dg);
	frame(&c->out, a->mac, MAC_LAN0, &dg);
	c->bytes = ip_totlen(&dg);

	dg_esp(&dg, hdr(REMOTE, G0), SPI(0x0100, 1), 80);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_DECAP, "tunnelled ESP to G0: decapsulated");
	tunnel(&c->in, a->mac, MAC_LAN0, LAN_ROUTER, a->lan, &dg);
	frame(&c->out, a->mac, MAC_LAN0, &dg);
	c->bytes = ip_totlen(&dg);

	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_PASS, "tunnel from another LAN host: untouched");
	tunnel(&c->in, a->mac, host(H_B)->mac, host(H_B)->lan, a->lan, &dg);
	c->bytes = (long long)c->in.len;
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_PASS, "tunnel from the router to another host: untouched");
	tunnel(&c->in, a->mac, MAC_LAN0, LAN_ROUTER, host(H_B)->lan, &dg);
	c->bytes = (long long)c->in.len;
	dg_udp(&other, hdr(LAN_ROUTER, a->lan), 53, 5000, 20);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_PASS, "plain UDP from the router: untouched");
	frame(&c->in, a->mac, MAC_LAN0, &other);
	c->bytes = (long long)c->in.len;

	dg_udp(&other, hdr(REMOTE, G1), 4500, 20000, 40);
	c = case_add(&cs, TC_ACT_SHOT, XDNAT_HR_DROP_MALFORMED, "inner destination G1, not ours");
	tunnel(&c->in, a->mac, MAC_LAN0, LAN_ROUTER, a->lan, &other);
	c->bytes = (long long)c->in.len;
	dg_udp(&other, hdr(REMOTE, a->lan), 4500, 20000, 40);
	c = case_add(&cs, TC_ACT_SHOT, XDNAT_HR_DROP_MALFORMED, "inner destination our LAN address");
	tunnel(&c->in, a->mac, MAC_LAN0, LAN_ROUTER, a->lan, &other);
	c->bytes = (long long)c->in.len;
	c = case_add(&cs, TC_ACT_SHOT, XDNAT_HR_DROP_MALFORMED, "outer tot_len != inner + 20");
	tunnel(&c->in, a->mac, MAC_LAN0, LAN_ROUTER, a->lan, &dg);
	outer_tot_minus1(&c->in);
	c->bytes = (long long)c->in.len;
	c = case_add(&cs, TC_ACT_SHOT, XDNAT_HR_DROP_MALFORMED, "inner version 6");
	tunnel(&c->in, a->mac, MAC_LAN0, LAN_ROUTER, a->lan, &dg);
	inner_v6(&c->in);
	c->bytes = (long long)c->in.len;
	c = case_add(&cs, TC_ACT_SHOT, XDNAT_HR_DROP_MALFORMED, "outer header with options");
	tunnel(&c->in, a->mac, MAC_LAN0, LAN_ROUTER, a->lan, &dg);
	outer_ihl6(&c->in);
	c->bytes = (long long)c->in.len;
	run_cases(HOST_INGRESS, &cs);
}

/* ------------------------------------------------------------ robustness
 *
 * Issue 5: fragments, inbound ICMP errors, the tunnel MTU policy, floods and
 * a malformed corpus.  Cases in one table run in order in one process, so a
 * first fragment earlier in a table teaches the fragment table what a later
 * fragment further down relies on.
 */

TestSuite(robust, .init = init_router, .fini = fini_all, .timeout = 120);
TestSuite(robust_drop, .init = init_router_drop, .fini = fini_all, .timeout = 120);
TestSuite(robust_host, .init = hostside_up, .fini = fini_all, .timeout = 120);

/* A fragment of a datagram (@proto, IP ID @id) at byte offset @off. */
static void dg_frag(struct pkt *d, uint32_t src, uint32_t dst, uint8_t proto, uint16_t id,
		    uint16_t off, bool more, size_t paylen)
{
	struct ip4 h = hdr(src, dst);

	h.id = id;
	h.frag = (uint16_t)((more ? IP_MF : 0) | (off / 8));
	dg_raw(d, h, proto, paylen, (uint8_t)(id ^ off));
}

/* The 8-byte header of an ICMP error, followed by @quote (a datagram's
 * first bytes); RFC 792 checksum over both. */
static void dg_icmp_err(struct pkt *d, uint32_t src, uint32_t dst, uint8_t type, uint8_t code,
		       uint16_t mtu, const uint8_t *quote, size_t qlen)
{
	struct ip4 h = hdr(src, dst);
	size_t o, io;
	uint8_t *c;

	pkt_reset(d);
	h.proto = PROTO_ICMP;
	h.frag = 0;
	o = pkt_ip4_begin(d, &h);
	io = d->len;
	c = pkt_put(d, NULL, 8);
	c[0] = type;
	c[1] = code;
	pkt_wr16(c + 6, mtu);
	pkt_put(d, quote, qlen);
	pkt_wr16(d->b + io + 2, pkt_csum(d->b + io, 8 + qlen));
	pkt_ip4_end(d, o);
}

/* How the router answers a DF datagram @dg too big for the next hop: ICMP
 * frag-needed (tos 0xc0, TTL 64, ID 0) from @src to @dg's source, quoting
 * @dg's header and 8 bytes. */
static void frag_needed_of(struct pkt *icmp, const struct pkt *dg, uint32_t src, uint16_t mtu)
{
	size_t qlen = pkt_ip4_hlen(dg, 0) + 8;
	struct ip4 h = { .src = src, .dst = pkt_rd32(dg->b + 12), .proto = PROTO_ICMP,
			 .tos = 0xc0, .ttl = 64 };
	size_t o, io;
	uint8_t *c;

	pkt_reset(icmp);
	o = pkt_ip4_begin(icmp, &h);
	io = icmp->len;
	c = pkt_put(icmp, NULL, 8);
	c[0] = ICMP_UNREACH;
	c[1] = 4;
	pkt_wr16(c + 6, mtu);
	pkt_put(icmp, dg->b, qlen);
	pkt_wr16(icmp->b + io + 2, pkt_csum(icmp->b + io, 8 + qlen));
	pkt_ip4_end(icmp, o);
}

static void frag_entry_set(uint32_t src, uint32_t dst, uint8_t proto, uint16_t id, uint32_t hid,
			   uint64_t learnt_ns)
{
	struct xdnat_frag_key k = { .saddr = htonl(src), .daddr = htonl(dst), .id = htons(id),
				    .protocol = proto };
	struct xdnat_frag_val v = { .host_id = hid, .learnt_ns = learnt_ns };

	cr_assert(bpf_map_update_elem(bpf_map__fd(R->skel->maps.xdnat_frags), &k, &v, BPF_ANY) == 0,
		  "update xdnat_frags: %s", strerror(errno));
}

/* In-order fragments follow their first fragment; the key is exactly
 * {source, destination, protocol, IP ID}; stale or orphaned entries and
 * fragments never seen go to the unknown policy when no slow-path reader
 * is there (the tests' default: nobody reads xdnat_frag_events). */
static void frag_table_cases(struct cases *cs, int fwd, int pass)
{
	struct pkt dg;
	struct ip4 ih;

	ih = hdr(REMOTE, G0);
	ih.id = 0x1111;
	ih.frag = IP_MF;
	dg_udp(&dg, ih, 4500, 20001, 1200 - 8);
	wan_fwd(cs, fwd, &dg, H_A, "UDP first fragment (id 0x1111) -> A, teaches the table");
	dg_frag(&dg, REMOTE, G0, PROTO_UDP, 0x1111, 1200, true, 1200);
	wan_fwd(cs, fwd, &dg, H_A, "middle fragment (offset 1200, MF) -> A");
	cs->v[cs->n - 1].reason = XDNAT_R_FRAG_TO_HOST;
	dg_frag(&dg, REMOTE, G0, PROTO_UDP, 0x1111, 2400, false, 1040);
	wan_fwd(cs, fwd, &dg, H_A, "last fragment (offset 2400) -> A");
	cs->v[cs->n - 1].reason = XDNAT_R_FRAG_TO_HOST;

	dg_frag(&dg, REMOTE, G0, PROTO_UDP, 0x1112, 1480, false, 100);
	wan_same(cs, pass, XDNAT_R_FRAGMENT, &dg, "other IP ID: unknown");
	dg_frag(&dg, REMOTE_FAR, G0, PROTO_UDP, 0x1111, 1480, false, 100);
	wan_same(cs, pass, XDNAT_R_FRAGMENT, &dg, "other source: unknown");
	dg_frag(&dg, REMOTE, G0, PROTO_TCP, 0x1111, 1480, false, 100);
	wan_same(cs, pass, XDNAT_R_FRAGMENT, &dg, "other protocol: unknown");
	dg_frag(&dg, REMOTE, G1, PROTO_UDP, 0x1111, 1480, false, 100);
	wan_same(cs, pass, XDNAT_R_FRAGMENT, &dg, "other global address: unknown");

	ih = hdr(REMOTE, G0);
	ih.id = 0x2222;
	ih.frag = IP_MF;
	dg_esp(&dg, ih, SPI(0x0101, 0x77), 1200);
	wan_fwd(cs, fwd, &dg, H_B, "ESP first fragment (id 0x2222) -> B");
	dg_frag(&dg, REMOTE, G0, PROTO_ESP, 0x2222, 1216, false, 300);
	wan_fwd(cs, fwd, &dg, H_B, "ESP last fragment -> B");
	cs->v[cs->n - 1].reason = XDNAT_R_FRAG_TO_HOST;

	/* A first fragment to an unknown port teaches nothing. */
	ih = hdr(REMOTE, G0);
	ih.id = 0x3333;
	ih.frag = IP_MF;
	dg_udp(&dg, ih, 4500, 40000, 200);
	wan_same(cs, pass, XDNAT_R_UNKNOWN_PORT, &dg, "first fragment to an unallocated port");
	dg_frag(&dg, REMOTE, G0, PROTO_UDP, 0x3333, 208, false, 100);
	wan_same(cs, pass, XDNAT_R_FRAGMENT, &dg, "its later fragment: unknown");

	/* Same {src, dst, proto, id} later reused for a datagram to B: the
	 * newest first fragment wins. */
	ih = hdr(REMOTE, G0);
	ih.id = 0x1111;
	ih.frag = IP_MF;
	dg_udp(&dg, ih, 4500, 21001, 64);
	wan_fwd(cs, fwd, &dg, H_B, "IP ID 0x1111 reused, first fragment -> B");
	dg_frag(&dg, REMOTE, G0, PROTO_UDP, 0x1111, 72, false, 100);
	wan_fwd(cs, fwd, &dg, H_B, "its later fragment -> B, not A");
	cs->v[cs->n - 1].reason = XDNAT_R_FRAG_TO_HOST;

	/* Entries written directly: stale (learnt at boot), owner invalid,
	 * owner sharing the other global address. */
	dg_frag(&dg, REMOTE, G0, PROTO_UDP, 0x4444, 1480, false, 100);
	wan_same(cs, pass, XDNAT_R_FRAGMENT, &dg, "entry older than the reassembly timeout");
	dg_frag(&dg, REMOTE, G0, PROTO_UDP, 0x5555, 1480, false, 100);
	wan_same(cs, pass, XDNAT_R_FRAGMENT, &dg, "entry names host E (not valid)");
	dg_frag(&dg, REMOTE, G0, PROTO_UDP, 0x6666, 1480, false, 100);
	wan_same(cs, XDP_DROP == fwd ? XDP_DROP : (fwd == XDP_REDIRECT ? XDP_DROP : TC_ACT_SHOT),
		 XDNAT_R_DROP_WRONG_GADDR, &dg, "entry names host C of G1");
}

static void frag_table_entries(void)
{
	frag_entry_set(REMOTE, G0, PROTO_UDP, 0x4444, H_A, 1);
	frag_entry_set(REMOTE, G0, PROTO_UDP, 0x5555, H_E, (uint64_t)-1 / 2);
	frag_entry_set(REMOTE, G0, PROTO_UDP, 0x6666, H_C, 0);
}

HOOK_TEST(robust, fragment_table)
{
	struct cases cs = { 0 };
	struct timespec ts;

	frag_table_cases(&cs, h->redirect, h->pass);
	frag_table_entries();
	/* learnt_ns in the future (E's entry) is "now - learnt" wrapping to
	 * a huge age: stale too.  C's entry at 0 is stale as well, so make
	 * it fresh: the wrong-gaddr check must still apply. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	frag_entry_set(REMOTE, G0, PROTO_UDP, 0x6666, H_C,
		       (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
	run_cases(h->wan, &cs);
}

Test(robust_drop, fragment_unknown_dropped)
{
	struct cases cs = { 0 };
	struct pkt dg;

	dg_frag(&dg, REMOTE, G0, PROTO_UDP, 0x7777, 1480, false, 100);
	wan_same(&cs, XDP_DROP, XDNAT_R_FRAGMENT, &dg, "unknown later fragment, drop policy");
	run_cases(WAN_XDP, &cs);
}

/* Slow-path reader for the tests: remembers the last held frame. */
static struct pkt held;
static size_t n_held;

static void on_held(void *ctx, int cpu, void *data, __u32 size)
{
	const struct xdnat_frag_event *ev = data;

	(void)ctx;
	(void)cpu;
	if (size < sizeof(*ev) || ev->len > PKT_MAX || size < sizeof(*ev) + ev->len)
		return;
	pkt_reset(&held);
	pkt_put(&held, (const uint8_t *)data + sizeof(*ev), ev->len);
	n_held++;
}

/*
 * The slow path: with a reader on xdnat_frag_events, a later fragment whose
 * first fragment is unknown is dropped in XDP and handed over whole; once
 * the first fragment went through, re-running the held frame (what xdnatd
 * does with BPF_F_TEST_XDP_LIVE_FRAMES) delivers it to the right host.
 */
static void slow_path(enum prog_id wan, int drop, int fwd)
{
	struct perf_buffer *pb;
	struct cases cs = { 0 };
	struct pkt dg, frag;
	struct ip4 ih;

	pb = perf_buffer__new(bpf_map__fd(R->skel->maps.xdnat_frag_events), 8, on_held, NULL,
			      NULL, NULL);
	cr_assert(pb, "perf_buffer__new: %s", strerror(errno));
	n_held = 0;

	dg_frag(&frag, REMOTE, G0, PROTO_UDP, 0x0abc, 1480, false, 700);
	wan_same(&cs, drop, XDNAT_R_FRAG_HELD, &frag, "later fragment first: held for the slow path");
	run_cases(wan, &cs);
	cr_assert(perf_buffer__poll(pb, 1000) >= 0, "perf_buffer__poll");
	cr_assert_eq(n_held, 1, "one frame held, got %zu", n_held);
	{
		struct pkt in;

		wan_frame(&in, &frag);
		cr_assert(held.len == in.len && !memcmp(held.b, in.b, in.len),
			  "the held frame is the received frame, byte for byte (%zu vs %zu bytes)",
			  held.len, in.len);
	}

	ih = hdr(REMOTE, G0);
	ih.id = 0x0abc;
	ih.frag = IP_MF;
	dg_udp(&dg, ih, 4500, 21999, 1480 - 28);
	wan_fwd(&cs, fwd, &dg, H_B, "then the first fragment -> B");
	wan_fwd(&cs, fwd, &frag, H_B, "re-injected held fragment -> B");
	cs.v[cs.n - 1].reason = XDNAT_R_FRAG_TO_HOST;
	run_cases(wan, &cs);
	perf_buffer__free(pb);
}

HOOK_TEST(robust, fragment_slow_path)
{
	slow_path(h->wan, h->drop, h->redirect);
}

/* Inbound ICMP errors go to the host whose packet they quote. */
static void icmp_error_cases(struct cases *cs, int fwd, int pass, int drop)
{
	struct pkt dg, err;
	struct ip4 ih;

	/* A's UDP G0:20005 -> far:4500, too big on a link further on. */
	dg_udp(&dg, from_g(H_A, REMOTE_FAR), 20005, 4500, 1400);
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 4, 1280, dg.b, 28);
	wan_fwd(cs, fwd, &err, H_A, "frag-needed quoting A's UDP (sport 20005) -> A");
	cs->v[cs->n - 1].reason = XDNAT_R_ICMP_ERR_TO_HOST;
	/* A quote longer than 8 bytes (Linux quotes up to 576). */
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 3, 0, dg.b, 200);
	wan_fwd(cs, fwd, &err, H_A, "port unreachable quoting 200 bytes -> A");
	cs->v[cs->n - 1].reason = XDNAT_R_ICMP_ERR_TO_HOST;

	dg_tcp(&dg, from_g(H_B, REMOTE_FAR), 21003, 443, 0);
	dg_icmp_err(&err, WAN_GW, G0, 11, 0, 0, dg.b, 28);
	wan_fwd(cs, fwd, &err, H_B, "time exceeded quoting B's TCP (sport 21003) -> B");
	cs->v[cs->n - 1].reason = XDNAT_R_ICMP_ERR_TO_HOST;
	dg_icmp_err(&err, WAN_GW, G0, 12, 0, 0, dg.b, 28);
	wan_fwd(cs, fwd, &err, H_B, "parameter problem quoting B's TCP -> B");
	cs->v[cs->n - 1].reason = XDNAT_R_ICMP_ERR_TO_HOST;

	dg_icmp(&dg, from_g(H_A, REMOTE_FAR), ICMP_ECHO, 20007, 32);
	dg_icmp_err(&err, WAN_GW, G0, ICMP_UNREACH, 1, 0, dg.b, 28);
	wan_fwd(cs, fwd, &err, H_A, "host unreachable quoting A's echo request (id 20007) -> A");
	cs->v[cs->n - 1].reason = XDNAT_R_ICMP_ERR_TO_HOST;

	ih = from_g(H_A, REMOTE_FAR);
	ih.opt = (const uint8_t[4]){ 0x94, 0x04, 0, 0 };
	ih.opt_len = 4;
	dg_udp(&dg, ih, 20008, 53, 40);
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 4, 1400, dg.b, 32);
	wan_fwd(cs, fwd, &err, H_A, "quoted header with options (IHL 6) -> A");
	cs->v[cs->n - 1].reason = XDNAT_R_ICMP_ERR_TO_HOST;

	dg_udp(&dg, from_g(H_C, REMOTE_FAR), 30001, 53, 40);
	dg_icmp_err(&err, REMOTE, G1, ICMP_UNREACH, 3, 0, dg.b, 28);
	wan_fwd(cs, fwd, &err, H_C, "error to G1 quoting C's UDP -> C");
	cs->v[cs->n - 1].reason = XDNAT_R_ICMP_ERR_TO_HOST;

	/* Nothing of a host's: the router's own traffic, or junk. */
	dg_udp(&dg, hdr(G0, REMOTE_FAR), 40000, 53, 40);
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 3, 0, dg.b, 28);
	wan_same(cs, pass, XDNAT_R_ICMP_ERR_UNKNOWN, &err, "quoting an unallocated port");
	dg_udp(&dg, hdr(REMOTE, REMOTE_FAR), 20005, 53, 40);
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 3, 0, dg.b, 28);
	wan_same(cs, pass, XDNAT_R_ICMP_ERR_UNKNOWN, &err, "quoted source is not G0");
	dg_udp(&dg, from_g(H_A, REMOTE_FAR), 20005, 53, 40);
	dg_icmp_err(&err, REMOTE, G1, ICMP_UNREACH, 3, 0, dg.b, 28);
	wan_same(cs, pass, XDNAT_R_ICMP_ERR_UNKNOWN, &err, "sent to G1, quoting G0's packet");
	dg_frag(&dg, G0, REMOTE_FAR, PROTO_UDP, 9, 1480, false, 40);
	dg_icmp_err(&err, REMOTE, G0, 11, 1, 0, dg.b, 28);
	wan_same(cs, pass, XDNAT_R_ICMP_ERR_UNKNOWN, &err, "quoting a later fragment (no port)");
	dg_raw(&dg, from_g(H_A, REMOTE_FAR), PROTO_GRE, 40, 1);
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 2, 0, dg.b, 28);
	wan_same(cs, pass, XDNAT_R_ICMP_ERR_UNKNOWN, &err, "quoting GRE");
	dg_icmp(&dg, from_g(H_A, REMOTE_FAR), ICMP_ECHOREPLY, 20007, 32);
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 1, 0, dg.b, 28);
	wan_same(cs, pass, XDNAT_R_ICMP_ERR_UNKNOWN, &err, "quoting an echo reply");
	dg_esp(&dg, from_g(H_A, REMOTE_FAR), 0x0badcafe, 40);
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 4, 1300, dg.b, 28);
	wan_same(cs, pass, XDNAT_R_ICMP_ERR_UNKNOWN, &err, "quoting ESP of an unlearnt SA");

	/* Malformed: the quote is too short or not IPv4. */
	dg_udp(&dg, from_g(H_A, REMOTE_FAR), 20005, 53, 40);
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 3, 0, dg.b, 27);
	wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &err, "quote of 27 bytes: 7 after the header");
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 3, 0, dg.b, 19);
	wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &err, "quote of 19 bytes: no whole header");
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 3, 0, NULL, 0);
	wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &err, "no quote at all");
	dg_udp(&dg, from_g(H_A, REMOTE_FAR), 20005, 53, 40);
	dg.b[0] = 0x65; /* version 6 */
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 3, 0, dg.b, 28);
	wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &err, "quoted version 6");
	dg.b[0] = 0x44; /* IHL 4 */
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 3, 0, dg.b, 28);
	wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &err, "quoted IHL 4");
	dg.b[0] = 0x4f; /* IHL 15: the quote would need 68 bytes */
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 3, 0, dg.b, 28);
	wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &err, "quoted IHL 15, 28 bytes quoted");
}

HOOK_TEST(robust, icmp_errors)
{
	struct cases cs = { 0 };

	icmp_error_cases(&cs, h->redirect, h->pass, h->drop);
	run_cases(h->wan, &cs);
}

Test(robust_drop, icmp_error_unknown_dropped)
{
	struct cases cs = { 0 };
	struct pkt dg, err;

	dg_udp(&dg, hdr(G0, REMOTE_FAR), 40000, 53, 40);
	dg_icmp_err(&err, REMOTE, G0, ICMP_UNREACH, 3, 0, dg.b, 28);
	wan_same(&cs, XDP_DROP, XDNAT_R_ICMP_ERR_UNKNOWN, &err, "quoting an unallocated port");
	run_cases(WAN_XDP, &cs);
}

/*
 * ESP/AH: the quoted SPI is the remote's, chosen for the host's outbound SA;
 * the router learns SPI+remote -> host from what the host sends.
 */
static void out_spi(enum prog_id lan, enum prog_id wan, int lan_fwd_v, int wan_fwd_v, int pass)
{
	struct cases cs = { 0 };
	struct pkt esp_a, ah_b, err;

	dg_esp(&esp_a, from_g(H_A, REMOTE), 0xc0ffee01, 64);
	dg_ah(&ah_b, from_g(H_B, REMOTE), 0xc0ffee02, 64);

	dg_icmp_err(&err, WAN_GW, G0, ICMP_UNREACH, 4, 1300, esp_a.b, 28);
	wan_same(&cs, pass, XDNAT_R_ICMP_ERR_UNKNOWN, &err, "before A sent on the SA: unknown");
	run_cases(wan, &cs);

	lan_fwd(&cs, lan_fwd_v, H_A, &esp_a, MAC_REMOTE, "A sends ESP, SPI 0xc0ffee01, to the remote");
	lan_fwd(&cs, lan_fwd_v, H_B, &ah_b, MAC_REMOTE, "B sends AH, SPI 0xc0ffee02, to the remote");
	run_cases(lan, &cs);

	dg_icmp_err(&err, WAN_GW, G0, ICMP_UNREACH, 4, 1300, esp_a.b, 28);
	wan_fwd(&cs, wan_fwd_v, &err, H_A, "frag-needed quoting A's ESP -> A");
	cs.v[cs.n - 1].reason = XDNAT_R_ICMP_ERR_TO_HOST;
	dg_icmp_err(&err, WAN_GW, G0, 11, 0, 0, ah_b.b, 32);
	wan_fwd(&cs, wan_fwd_v, &err, H_B, "time exceeded quoting B's AH -> B");
	cs.v[cs.n - 1].reason = XDNAT_R_ICMP_ERR_TO_HOST;
	/* Same SPI, other remote: a different SA. */
	dg_esp(&esp_a, from_g(H_A, REMOTE_FAR), 0xc0ffee01, 64);
	dg_icmp_err(&err, WAN_GW, G0, ICMP_UNREACH, 4, 1300, esp_a.b, 28);
	wan_same(&cs, pass, XDNAT_R_ICMP_ERR_UNKNOWN, &err, "same SPI to another remote: unknown");
	run_cases(wan, &cs);

	/* B now sends with A's SA SPI to the remote (rekeyed SA moved): the
	 * newest sender wins. */
	dg_esp(&esp_a, from_g(H_B, REMOTE), 0xc0ffee01, 64);
	lan_fwd(&cs, lan_fwd_v, H_B, &esp_a, MAC_REMOTE, "B sends ESP with SPI 0xc0ffee01");
	run_cases(lan, &cs);
	dg_icmp_err(&err, WAN_GW, G0, ICMP_UNREACH, 4, 1300, esp_a.b, 28);
	wan_fwd(&cs, wan_fwd_v, &err, H_B, "frag-needed quoting that SA -> B");
	cs.v[cs.n - 1].reason = XDNAT_R_ICMP_ERR_TO_HOST;
	run_cases(wan, &cs);
}

/*
 * Inbound ESP/AH delivered to a host records {host, remote} in xdnat_peers
 * (the peers the Local CA notifies on revocation); nothing else does.
 */
static void peers(enum prog_id wan, int fwd)
{
	int fd = bpf_map__fd(R->skel->maps.xdnat_peers);
	struct xdnat_peer_key k, next;
	struct xdnat_peer_val v;
	struct cases cs = { 0 };
	struct pkt dg;
	unsigned n = 0;

	/* Learning is sampled by sequence number: the first packets of an SA
	 * (seq < 8) and every 1024th. */
	dg_esp_seq(&dg, hdr(REMOTE, G0), SPI(0x0100, 5), 1, 32);
	wan_fwd(&cs, fwd, &dg, H_A, "ESP seq 1 from REMOTE to A");
	dg_ah_seq(&dg, hdr(REMOTE_FAR, G0), SPI(0x0101, 9), 2, 16);
	wan_fwd(&cs, fwd, &dg, H_B, "AH seq 2 from REMOTE_FAR to B");
	dg_esp_seq(&dg, hdr(REMOTE, G0), SPI(0x0100, 6), 3, 32);
	wan_fwd(&cs, fwd, &dg, H_A, "ESP from REMOTE to A again: one entry");
	dg_esp_seq(&dg, hdr(WAN_GW, G0), SPI(0x0100, 7), 4242, 32);
	wan_fwd(&cs, fwd, &dg, H_A, "ESP seq 4242 from WAN_GW to A: not sampled");
	dg_ah_seq(&dg, hdr(REMOTE_FAR, G0), SPI(0x0100, 8), 2048, 16);
	wan_fwd(&cs, fwd, &dg, H_A, "AH seq 2048 from REMOTE_FAR to A: sampled");
	dg_udp(&dg, hdr(WAN_GW, G0), 40000, 20000, 8);
	wan_fwd(&cs, fwd, &dg, H_A, "UDP from WAN_GW to A: not an IPsec peer");
	run_cases(wan, &cs);
	k = (struct xdnat_peer_key){ .host_id = H_A, .remote = htonl(REMOTE) };
	cr_assert_eq(bpf_map_lookup_elem(fd, &k, &v), 0, "A's ESP peer not recorded");
	cr_assert_neq(v.seen_ns, 0);
	k = (struct xdnat_peer_key){ .host_id = H_B, .remote = htonl(REMOTE_FAR) };
	cr_assert_eq(bpf_map_lookup_elem(fd, &k, &v), 0, "B's AH peer not recorded");
	k = (struct xdnat_peer_key){ .host_id = H_A, .remote = htonl(REMOTE_FAR) };
	cr_assert_eq(bpf_map_lookup_elem(fd, &k, &v), 0, "A's AH peer (seq 2048) not recorded");
	k = (struct xdnat_peer_key){ .host_id = H_A, .remote = htonl(WAN_GW) };
	cr_assert_neq(bpf_map_lookup_elem(fd, &k, &v), 0, "UDP or ESP seq 4242 made a peer");
	for (int rc = bpf_map_get_next_key(fd, NULL, &next); !rc;
	     rc = bpf_map_get_next_key(fd, &k, &next)) {
		k = next;
		n++;
	}
	cr_assert_eq(n, 3, "%u peers recorded, expected 3", n);
}

HOOK_TEST(robust, ipsec_peers)
{
	peers(h->wan, h->redirect);
}

HOOK_TEST(robust, outbound_spi_learning)
{
	out_spi(h->lan, h->wan, h->redirect, h->redirect, h->pass);
}

/*
 * Tunnel MTU policy, router side.  WAN -> host: a DF datagram that does not
 * fit the LAN once wrapped (LAN MTU 1500 - 20) is answered with ICMP
 * frag-needed, MTU 1480, from the global address it was sent to; without DF
 * the stack gets the tunnel packet and fragments it (tests above).  Host ->
 * WAN: a DF datagram bigger than the WAN MTU is answered through the tunnel
 * from the router's LAN address (the stack would answer to G: itself).
 */
static void too_big_cases(struct cases *wan, struct cases *lan, int tx_wan, int tx_lan)
{
	static const uint8_t opt_nop7[8] = { 1, 1, 1, 1, 1, 1, 1, 0 };
	struct dp_case *c;
	struct pkt dg, icmp;
	struct ip4 ih;

	dg_udp(&dg, hdr(REMOTE, G0), 53, 20010, 1481 - 28);
	c = case_add(wan, tx_wan, XDNAT_R_TOO_BIG_ICMP, "1481-byte DF UDP to A: frag-needed 1480");
	wan_frame(&c->in, &dg);
	frag_needed_of(&icmp, &dg, G0, 1480);
	frame(&c->out, MAC_REMOTE, MAC_WAN0, &icmp);
	c->bytes = ip_totlen(&dg);

	dg_tcp(&dg, hdr(REMOTE_FAR, G0), 443, 21010, 1460);
	c = case_add(wan, tx_wan, XDNAT_R_TOO_BIG_ICMP, "1500-byte DF TCP to B via the gateway");
	frame(&c->in, MAC_WAN0, MAC_GW, &dg);
	frag_needed_of(&icmp, &dg, G0, 1480);
	frame(&c->out, MAC_GW, MAC_WAN0, &icmp);
	c->bytes = ip_totlen(&dg);

	ih = hdr(REMOTE, G0);
	ih.opt = opt_nop7;
	ih.opt_len = sizeof(opt_nop7);
	dg_esp(&dg, ih, SPI(0x0100, 5), 1480);
	c = case_add(wan, tx_wan, XDNAT_R_TOO_BIG_ICMP, "DF ESP with options: quote = 28 + 8 bytes");
	wan_frame(&c->in, &dg);
	frag_needed_of(&icmp, &dg, G0, 1480);
	frame(&c->out, MAC_REMOTE, MAC_WAN0, &icmp);
	c->bytes = ip_totlen(&dg);

	dg_udp(&dg, hdr(REMOTE, G0), 53, 20010, 1480 - 28);
	wan_fwd(wan, tx_wan, &dg, H_A,
		"1480-byte DF UDP: fits exactly");

	/* RFC 1812 4.3.2.7: no ICMP error to a source that is not a unicast
	 * host: dropped and counted instead. */
	dg_udp(&dg, hdr(IP4(127, 0, 0, 9), G0), 53, 20010, 1481 - 28);
	wan_same(wan, tx_wan == XDP_REDIRECT ? XDP_DROP : TC_ACT_SHOT, XDNAT_R_DROP_TOO_BIG, &dg,
		 "1481-byte DF UDP from 127.0.0.9: no frag-needed to a loopback source");
	dg_udp(&dg, hdr(IP4(0, 1, 2, 3), G0), 53, 20010, 1481 - 28);
	wan_same(wan, tx_wan == XDP_REDIRECT ? XDP_DROP : TC_ACT_SHOT, XDNAT_R_DROP_TOO_BIG, &dg,
		 "1481-byte DF UDP from 0.1.2.3: no frag-needed to 'this network'");
	dg_udp(&dg, hdr(IP4(240, 0, 0, 1), G0), 53, 20010, 1481 - 28);
	wan_same(wan, tx_wan == XDP_REDIRECT ? XDP_DROP : TC_ACT_SHOT, XDNAT_R_DROP_TOO_BIG, &dg,
		 "1481-byte DF UDP from class E: no frag-needed");

	dg_udp(&dg, from_g(H_A, REMOTE), 20000, 4500, 1501 - 28);
	c = case_add(lan, tx_lan, XDNAT_R_TOO_BIG_ICMP, "A's 1501-byte DF UDP: frag-needed 1500, tunnelled back");
	lan_tunnel(&c->in, H_A, &dg);
	frag_needed_of(&icmp, &dg, LAN_ROUTER, 1500);
	tunnel(&c->out, host(H_A)->mac, MAC_LAN0, LAN_ROUTER, host(H_A)->lan, &icmp);
	c->bytes = ip_totlen(&dg);

	dg_tcp(&dg, from_g(H_B, REMOTE_FAR), 21000, 443, 1501 - 40);
	c = case_add(lan, tx_lan, XDNAT_R_TOO_BIG_ICMP, "B's 1501-byte DF TCP: frag-needed 1500 to B");
	lan_tunnel(&c->in, H_B, &dg);
	frag_needed_of(&icmp, &dg, LAN_ROUTER, 1500);
	tunnel(&c->out, host(H_B)->mac, MAC_LAN0, LAN_ROUTER, host(H_B)->lan, &icmp);
	c->bytes = ip_totlen(&dg);
}

HOOK_TEST(robust, too_big)
{
	struct cases wan = { 0 }, lan = { 0 };

	too_big_cases(&wan, &lan, h->redirect, h->redirect);
	run_cases(h->wan, &wan);
	run_cases(h->lan, &lan);
}

/* Host side: outer fragments of tunnel packets go to the stack. */
Test(robust_host, outer_fragments_to_stack)
{
	const struct hostdef *a = host(H_A);
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg;

	dg_udp(&dg, hdr(REMOTE, G0), 4500, 20000, 1472);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_PASS_FRAGMENT, "first outer fragment: to the stack");
	tunnel(&c->in, a->mac, MAC_LAN0, LAN_ROUTER, a->lan, &dg);
	c->in.b[14 + 6] |= IP_MF >> 8;
	pkt_ip4_fix_csum(&c->in, 14);
	c->bytes = (long long)c->in.len;

	dg_raw(&dg, hdr(LAN_ROUTER, a->lan), PROTO_IPIP, 40, 9);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_PASS_FRAGMENT, "last outer fragment: to the stack");
	dg.b[6] = 0;
	dg.b[7] = 185;
	pkt_ip4_fix_csum(&dg, 0);
	frame(&c->in, a->mac, MAC_LAN0, &dg);
	c->bytes = (long long)c->in.len;
	run_cases(HOST_INGRESS, &cs);
}

/* ------------------------------------------------------------ nh cache */

static void init_router_nh_cache(void)
{
	test_nh_cache_ms = 60000;
	router_up(0, "nhcache");
}

TestSuite(nh_cache, .init = init_router_nh_cache, .fini = fini_all, .timeout = 120);
TestSuite(nh_race, .init = init_router_nh_cache, .fini = fini_all, .timeout = 120);

/*
 * With the next-hop cache on, a neighbour change is seen only after the
 * cache lifetime: the second packet still goes to the MAC learnt by the
 * first.  A packet larger than the cached path MTU bypasses the cache, so
 * fragmentation-needed handling never depends on it.
 */
Test(nh_cache, reuses_lookup_within_lifetime)
{
	const struct hostdef *a = host(H_A);
	static const uint8_t new_mac[6] = { 2, 0, 0, 0, 0xbb, 0x02 };
	struct cases cs = { 0 };
	struct xdnat_nh_key k = { 0 }, next;
	struct xdnat_nh nh;
	struct dp_case *c;
	struct pkt dg;
	char m[18], ip[16];
	int fd, n = 0;

	dg_udp(&dg, hdr(REMOTE, G0), 53, 20010, 40);
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_A, "UDP to A: looked up and cached");
	run_cases(WAN_XDP, &cs);

	/* The per-host cache (WAN->LAN) holds A's MAC and the LAN path MTU,
	 * for A's current LAN address, in the copy of the CPU that ran it. */
	fd = bpf_map__fd(R->skel->maps.xdnat_host_nh);
	{
		struct xdnat_host_nh *hn = calloc((size_t)env.ncpus, sizeof(*hn)), *h = NULL;
		uint32_t id = H_A;

		cr_assert(hn, "out of memory");
		cr_assert(bpf_map_lookup_elem(fd, &id, hn) == 0, "lookup host nh: %s", strerror(errno));
		for (int cpu = 0; cpu < env.ncpus; cpu++)
			if (hn[cpu].lan_addr)
				h = &hn[cpu];
		cr_assert(h, "no CPU cached A's next hop");
		cr_assert_eq(h->lan_addr, htonl(a->lan), "cached for another address");
		cr_assert(!memcmp(h->dmac, a->mac, 6), "cached dmac is not A's");
		cr_assert(!memcmp(h->smac, MAC_LAN0, 6), "cached smac is not lan0's");
		cr_assert_eq(h->mtu, 1500, "cached path MTU %u, expected the LAN MTU 1500", h->mtu);
		cr_assert_neq(h->stamp, 0);
		free(hn);
	}
	/* Nothing went through the per-destination cache (LAN->WAN only). */
	n = bpf_map_get_next_key(bpf_map__fd(R->skel->maps.xdnat_nh_cache), NULL, &next) == 0;
	cr_assert_eq(n, 0, "the WAN->LAN path used the per-destination cache");
	(void)k;
	(void)nh;

	sh("ip neigh replace %s lladdr %s dev lan0 nud permanent", ipstr(a->lan, ip),
	   macstr(new_mac, m));
	memset(&cs, 0, sizeof(cs));
	wan_fwd(&cs, XDP_REDIRECT, &dg, H_A, "UDP to A again: cached MAC, no lookup");
	/* Too big for the cached MTU: full lookup, stack fragments. */
	dg_udp(&dg, nodf(hdr(REMOTE, G0)), 53, 20010, 1481 - 28);
	c = case_add(&cs, XDP_PASS, XDNAT_R_PASS_TOO_BIG, "1481-byte datagram: bypasses the cache");
	wan_frame(&c->in, &dg);
	tunnel(&c->out, MAC_WAN0, MAC_REMOTE, LAN_ROUTER, a->lan, &dg);
	c->bytes = ip_totlen(&dg);
	run_cases(WAN_XDP, &cs);
	sh("ip neigh replace %s lladdr %s dev lan0 nud permanent", ipstr(a->lan, ip),
	   macstr(a->mac, m));
}

/* ------------------------------------------------------------ one-arm */

TestSuite(onearm, .init = init_router, .fini = fini_all, .timeout = 120);

/*
 * The one-arm programs dispatch by the tunnel's destination: IP-in-IP to
 * the router's LAN address takes the LAN path, everything else the WAN
 * path, with exactly the verdicts and frames of the two-NIC programs.
 */
static void onearm_cases(bool xdp)
{
	int fwd = xdp ? XDP_REDIRECT : TC_ACT_REDIRECT;
	int pass = xdp ? XDP_PASS : TC_ACT_OK;
	int drop = xdp ? XDP_DROP : TC_ACT_SHOT;
	struct cases wan = { 0 }, lan = { 0 };
	struct pkt dg;

	use_onearm = true;
	dg_esp(&dg, hdr(REMOTE, G0), SPI(0x0100, 0x42), 64);
	wan_fwd(&wan, fwd, &dg, H_A, "ESP to A");
	dg_udp(&dg, hdr(REMOTE, G1), 4500, 20001, 40);
	wan_fwd(&wan, fwd, &dg, H_C, "UDP to C on G1");
	dg_udp(&dg, hdr(REMOTE, G0), 53, 40000, 40);
	wan_same(&wan, pass, XDNAT_R_UNKNOWN_PORT, &dg, "UDP to an unallocated port");
	dg_udp(&dg, hdr(G0, REMOTE), 53, 40000, 40);
	wan_same(&wan, drop, XDNAT_R_DROP_SPOOF_SRC, &dg, "plain packet from G0: forged");
	dg_udp(&dg, hdr(REMOTE, WAN_GW), 53, 40000, 40);
	wan_same(&wan, pass, XDNAT_R_PASS_NOT_GLOBAL, &dg, "not to a global address");
	run_cases(xdp ? WAN_XDP : WAN_TC, &wan);

	dg_udp(&dg, from_g(H_A, REMOTE), 20000, 4500, 40);
	lan_fwd(&lan, fwd, H_A, &dg, MAC_REMOTE, "A UDP from its first port");
	dg_esp(&dg, from_g(H_B, REMOTE), 0x00c0ffee, 64);
	lan_fwd(&lan, fwd, H_B, &dg, MAC_REMOTE, "B ESP");
	run_cases(xdp ? LAN_XDP : LAN_TC, &lan);
	use_onearm = false;
}

HOOK_TEST(onearm, both_paths)
{
	onearm_cases(h->xdp);
}

/* ------------------------------------------------------------ shared IKE ports */

/*
 * Shared IKE ports (issue 8, docs/SHARED-IKE.md).  G0: UDP 500 (IKE, no
 * marker) with default host A, UDP 4500 (RFC 3948 framing) without a
 * default host; G1: 500 with default host C, 4500 with default host A
 * (inconsistent: A shares G0).  A host's IKE SPIs carry one of its SPI
 * blocks in their top 32 bits: IKE_SPI(key, low).
 */
#define IKE_SPI(key, low) ((uint64_t)SPI(key, 0x1234) << 32 | (uint32_t)(low))
#define IKE_I 0x08 /* Initiator flag */
#define IKE_R 0x20 /* Response flag */
#define IKE_V2 0x20
#define IKE_V1 0x10

static void shared_set(uint32_t gidx, uint16_t port, uint32_t kind, uint32_t dflt)
{
	struct xdnat_owner o = { .host_id = kind, .default_host = dflt };

	map_set(bpf_map__fd(R->skel->maps.xdnat_ports), gidx * XDNAT_PORTS_PER_GADDR + port, &o,
		"xdnat_ports");
}

static void init_router_shared_common(uint32_t flags, const char *inst)
{
	router_up(flags, inst);
	shared_set(0, 500, XDNAT_HOST_SHARED_IKE, H_A);
	shared_set(0, 4500, XDNAT_HOST_SHARED_NATT, 0);
	shared_set(1, 500, XDNAT_HOST_SHARED_IKE, H_C);
	shared_set(1, 4500, XDNAT_HOST_SHARED_NATT, H_A);
}

static void init_router_shared(void)
{
	init_router_shared_common(0, "shared");
}

static void init_router_shared_drop(void)
{
	init_router_shared_common(XDNAT_F_UNKNOWN_DROP, "shared_drop");
}

TestSuite(shared_ike, .init = init_router_shared, .fini = fini_all, .timeout = 120);
TestSuite(shared_ike_drop, .init = init_router_shared_drop, .fini = fini_all, .timeout = 120);

/* An IKE header (RFC 7296 3.1) followed by @body bytes. */
static size_t ike_hdr(uint8_t *b, uint64_t spii, uint64_t spir, uint8_t version, uint8_t flags,
		      size_t body)
{
	for (int i = 0; i < 8; i++) {
		b[i] = (uint8_t)(spii >> (56 - 8 * i));
		b[8 + i] = (uint8_t)(spir >> (56 - 8 * i));
	}
	b[16] = 33;      /* next payload: SA */
	b[17] = version;
	b[18] = spir ? 35 : 34; /* IKE_AUTH, or IKE_SA_INIT while SPIr is 0 */
	b[19] = flags;
	pkt_wr32(b + 20, spir ? 1 : 0);
	pkt_wr32(b + 24, (uint32_t)(28 + body));
	for (size_t i = 0; i < body; i++)
		b[28 + i] = (uint8_t)(0x5a + 3 * i);
	return 28 + body;
}

/* UDP @sport -> @dport carrying @n bytes of @data. */
static void dg_udp_data(struct pkt *d, struct ip4 h, uint16_t sport, uint16_t dport,
			const uint8_t *data, size_t n)
{
	size_t o;

	pkt_reset(d);
	h.proto = PROTO_UDP;
	o = pkt_ip4_begin(d, &h);
	pkt_udp_data(d, o, sport, dport, data, n);
	pkt_ip4_end(d, o);
}

/* IKE over UDP; with @marker the 4-byte non-ESP marker comes first. */
static void dg_ike(struct pkt *d, struct ip4 h, uint16_t sport, uint16_t dport, bool marker,
		   uint64_t spii, uint64_t spir, uint8_t version, uint8_t flags, size_t body)
{
	uint8_t b[512] = { 0 };
	size_t n = marker ? 4 : 0;

	n += ike_hdr(b + n, spii, spir, version, flags, body);
	dg_udp_data(d, h, sport, dport, b, n);
}

/* ESP-in-UDP (RFC 3948): SPI, sequence number, opaque bytes. */
static void dg_esp_udp(struct pkt *d, struct ip4 h, uint16_t sport, uint16_t dport, uint32_t spi,
		       size_t body)
{
	uint8_t b[512];

	pkt_wr32(b, spi);
	pkt_wr32(b + 4, 7);
	for (size_t i = 0; i < body; i++)
		b[8 + i] = (uint8_t)(0xe5 ^ i);
	dg_udp_data(d, h, sport, dport, b, 8 + body);
}

/* A case whose frame the program forwards to host @hid with a shared-port reason. */
static void wan_fwd_r(struct cases *cs, int verdict, int reason, const struct pkt *dg,
		      uint32_t hid, const char *name)
{
	wan_fwd(cs, verdict, dg, hid, name);
	cs->v[cs->n - 1].reason = reason;
}

static void lan_fwd_r(struct cases *cs, int verdict, int reason, uint32_t hid,
		      const struct pkt *dg, const char *name)
{
	lan_fwd(cs, verdict, hid, dg, MAC_REMOTE, name);
	cs->v[cs->n - 1].reason = reason;
}

/* Inbound: every branch of classify_shared_inbound(). */
static void shared_wan_cases(struct cases *cs, int fwd, int pass, int drop)
{
	struct pkt dg;
	struct ip4 ih;

	/* IKE on 500 (no marker). */
	dg_ike(&dg, hdr(REMOTE, G0), 500, 500, false, 0x1122334455667788ull, IKE_SPI(0x0100, 1),
	       IKE_V2, IKE_I, 40);
	wan_fwd_r(cs, fwd, XDNAT_R_IKE_TO_HOST, &dg, H_A,
		  "500: remote initiator, A's SPI as responder SPI -> A");
	dg_ike(&dg, hdr(REMOTE, G0), 500, 500, false, IKE_SPI(0x0101, 2), 0x99aabbccddeeff00ull,
	       IKE_V2, IKE_R, 40);
	wan_fwd_r(cs, fwd, XDNAT_R_IKE_TO_HOST, &dg, H_B,
		  "500: remote responder, B's SPI as initiator SPI -> B");
	dg_ike(&dg, hdr(REMOTE, G0), 500, 500, false, IKE_SPI(0x0100, 3), IKE_SPI(0x0101, 3),
	       IKE_V2, 0, 40);
	wan_fwd_r(cs, fwd, XDNAT_R_IKE_TO_HOST, &dg, H_A,
		  "500: A's SPIi, B's SPIr, I flag clear -> A (initiator position)");
	dg_ike(&dg, hdr(REMOTE, G0), 500, 500, false, IKE_SPI(0x0100, 3), IKE_SPI(0x0101, 3),
	       IKE_V2, IKE_I | IKE_R, 40);
	wan_fwd_r(cs, fwd, XDNAT_R_IKE_TO_HOST, &dg, H_B,
		  "500: A's SPIi, B's SPIr, I flag set -> B (responder position)");
	dg_ike(&dg, hdr(REMOTE, G0), 500, 500, false, IKE_SPI(0x0101, 4), 0, IKE_V2, IKE_R, 20);
	wan_fwd_r(cs, fwd, XDNAT_R_IKE_TO_HOST, &dg, H_B,
		  "500: responder's COOKIE answer (SPIr 0) to B's IKE_SA_INIT -> B");
	dg_ike(&dg, hdr(REMOTE, G0), 500, 500, false, IKE_SPI(0x0101, 4), 0, IKE_V2, IKE_I, 200);
	wan_fwd_r(cs, fwd, XDNAT_R_IKE_TO_DEFAULT, &dg, H_A,
		  "500: IKE_SA_INIT of a remote initiator -> default host A (SPIi ignored)");
	dg_ike(&dg, hdr(REMOTE, G1), 500, 500, false, 0x0102030405060708ull, 0, IKE_V2, IKE_I, 200);
	wan_fwd_r(cs, fwd, XDNAT_R_IKE_TO_DEFAULT, &dg, H_C, "G1 500: IKE_SA_INIT -> default host C");
	dg_ike(&dg, hdr(REMOTE, G1), 500, 500, false, 0x0102030405060708ull, IKE_SPI(0x0200, 9),
	       IKE_V2, IKE_I, 20);
	wan_fwd_r(cs, fwd, XDNAT_R_IKE_TO_HOST, &dg, H_C, "G1 500: C's SPI -> C");

	/* 4500: marker + IKE, ESP-in-UDP, keepalive. */
	dg_ike(&dg, hdr(REMOTE, G0), 4500, 4500, true, 0x1122334455667788ull, IKE_SPI(0x0101, 5),
	       IKE_V2, IKE_I, 80);
	wan_fwd_r(cs, fwd, XDNAT_R_IKE_TO_HOST, &dg, H_B, "4500 marker: B's SPI as SPIr -> B");
	dg_ike(&dg, hdr(REMOTE, G0), 4500, 4500, true, IKE_SPI(0x0100, 6), 0x1ull, IKE_V2, IKE_R, 80);
	wan_fwd_r(cs, fwd, XDNAT_R_IKE_TO_HOST, &dg, H_A, "4500 marker: A's SPI as SPIi -> A");
	ih = hdr(REMOTE, G0);
	ih.tos = 0x28;
	dg_esp_udp(&dg, ih, 4500, 4500, SPI(0x0100, 0x77), 64);
	wan_fwd_r(cs, fwd, XDNAT_R_ESP_UDP_TO_HOST, &dg, H_A, "4500 ESP-in-UDP, A's SPI -> A");
	dg_esp_udp(&dg, hdr(REMOTE, G0), 4500, 4500, SPI(0x0101, 0xfffe), 64);
	wan_fwd_r(cs, fwd, XDNAT_R_ESP_UDP_TO_HOST, &dg, H_B, "4500 ESP-in-UDP, B's SPI -> B");
	dg_esp_udp(&dg, hdr(REMOTE, G1), 4500, 4500, SPI(0x0200, 0x1), 8);
	wan_fwd_r(cs, fwd, XDNAT_R_ESP_UDP_TO_HOST, &dg, H_C, "G1 4500 ESP-in-UDP, C's SPI -> C");
	/* The same IKE datagram without the marker on 4500 is ESP: SPI = the
	 * top of SPIi. */
	dg_ike(&dg, hdr(REMOTE, G0), 4500, 4500, false, IKE_SPI(0x0101, 7), IKE_SPI(0x0100, 7),
	       IKE_V2, IKE_I, 40);
	wan_fwd_r(cs, fwd, XDNAT_R_ESP_UDP_TO_HOST, &dg, H_B,
		  "4500 without marker is ESP: routed by the first word (B's)");

	/* Nobody's, or not routable. */
	dg_ike(&dg, hdr(REMOTE, G0), 4500, 4500, true, 0x0102030405060708ull, 0, IKE_V2, IKE_I, 200);
	wan_same(cs, drop, XDNAT_R_IKE_NO_DEFAULT, &dg,
		 "4500 IKE_SA_INIT of a remote initiator, no default host: dropped");
	dg_ike(&dg, hdr(REMOTE, G1), 4500, 4500, true, 0x0102030405060708ull, 0, IKE_V2, IKE_I, 20);
	wan_same(cs, drop, XDNAT_R_DROP_WRONG_GADDR, &dg,
		 "G1 4500 IKE_SA_INIT, default host shares G0: dropped");
	dg_ike(&dg, hdr(REMOTE, G0), 500, 500, false, 0x1ull, IKE_SPI(0x0900, 1), IKE_V2, IKE_I, 20);
	wan_same(cs, pass, XDNAT_R_UNKNOWN_IKE_SPI, &dg, "500: SPIr in nobody's block: unknown");
	dg_ike(&dg, hdr(REMOTE, G0), 500, 500, false, IKE_SPI(0x0900, 1), 0, IKE_V2, 0, 20);
	wan_same(cs, pass, XDNAT_R_UNKNOWN_IKE_SPI, &dg, "500: SPIi in nobody's block: unknown");
	dg_ike(&dg, hdr(REMOTE, G0), 4500, 4500, true, IKE_SPI(0x0400, 1), 0, IKE_V2, 0, 20);
	wan_same(cs, pass, XDNAT_R_UNKNOWN_IKE_SPI, &dg, "4500: SPIi of invalid host E: unknown");
	dg_ike(&dg, hdr(REMOTE, G0), 500, 500, false, 1, IKE_SPI(0x0200, 1), IKE_V2, IKE_I, 20);
	wan_same(cs, drop, XDNAT_R_DROP_WRONG_GADDR, &dg, "G0 500: SPI of C (G1's host): dropped");
	dg_esp_udp(&dg, hdr(REMOTE, G0), 4500, 4500, SPI(0x0900, 1), 16);
	wan_same(cs, pass, XDNAT_R_UNKNOWN_SPI, &dg, "4500 ESP-in-UDP, nobody's SPI: unknown");
	dg_esp_udp(&dg, hdr(REMOTE, G0), 4500, 4500, 255, 16);
	wan_same(cs, drop, XDNAT_R_DROP_SPI_RESERVED, &dg, "4500 ESP-in-UDP SPI 255: dropped");
	dg_ike(&dg, hdr(REMOTE, G0), 500, 500, false, IKE_SPI(0x0100, 1), IKE_SPI(0x0100, 2),
	       IKE_V1, 0, 20);
	wan_same(cs, pass, XDNAT_R_UNKNOWN_SHARED, &dg, "500: IKEv1 header: names no host");
	dg_udp_data(&dg, hdr(REMOTE, G0), 4500, 4500, (const uint8_t[]){ 0xff }, 1);
	wan_same(cs, pass, XDNAT_R_UNKNOWN_SHARED, &dg, "4500: NAT keepalive: names no host");
	dg_udp_data(&dg, hdr(REMOTE, G0), 500, 500, (const uint8_t[]){ 0xff }, 1);
	wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &dg, "500: one 0xff byte is no IKE header");
	dg_udp_data(&dg, hdr(REMOTE, G0), 4500, 4500, (const uint8_t[]){ 0xfe }, 1);
	wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &dg, "4500: one byte other than 0xff");
	dg_tcp(&dg, hdr(REMOTE, G0), 4500, 4500, 40);
	wan_same(cs, pass, XDNAT_R_UNKNOWN_PORT, &dg, "TCP to 4500: shared ports are UDP only");
	dg_tcp(&dg, hdr(REMOTE, G0), 500, 500, 40);
	wan_same(cs, pass, XDNAT_R_UNKNOWN_PORT, &dg, "TCP to 500: unknown");

	/* The UDP length must cover what is routed by. */
	dg_ike(&dg, hdr(REMOTE, G0), 500, 500, false, 1, IKE_SPI(0x0100, 1), IKE_V2, IKE_I, 20);
	pkt_wr16(dg.b + 24, 8 + 27); /* UDP length: one byte short of the IKE header */
	wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &dg, "500: UDP length ends inside the IKE header");
	dg_esp_udp(&dg, hdr(REMOTE, G0), 4500, 4500, SPI(0x0100, 1), 16);
	pkt_wr16(dg.b + 24, 8 + 3);
	wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &dg, "4500: UDP length ends inside the SPI");
	dg_ike(&dg, hdr(REMOTE, G0), 4500, 4500, true, 1, IKE_SPI(0x0100, 1), IKE_V2, IKE_I, 20);
	pkt_wr16(dg.b + 24, 8 + 4 + 27);
	wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &dg, "4500: UDP length ends inside the IKE header");
}

HOOK_TEST(shared_ike, inbound)
{
	struct cases cs = { 0 };

	shared_wan_cases(&cs, h->redirect, h->pass, h->drop);
	run_cases(h->wan, &cs);
}

Test(shared_ike, inbound_onearm)
{
	struct cases cs = { 0 };

	use_onearm = true;
	shared_wan_cases(&cs, XDP_REDIRECT, XDP_PASS, XDP_DROP);
	run_cases(WAN_XDP, &cs);
	shared_wan_cases(&cs, TC_ACT_REDIRECT, TC_ACT_OK, TC_ACT_SHOT);
	run_cases(WAN_TC, &cs);
	use_onearm = false;
}

/* With --unknown drop, what names no host is dropped; the no-default
 * IKE_SA_INIT is dropped under either policy. */
static void shared_drop_cases(struct cases *cs, int drop)
{
	struct pkt dg;

	dg_ike(&dg, hdr(REMOTE, G0), 500, 500, false, 1, IKE_SPI(0x0900, 1), IKE_V2, IKE_I, 20);
	wan_same(cs, drop, XDNAT_R_UNKNOWN_IKE_SPI, &dg, "unknown IKE SPI: dropped");
	dg_esp_udp(&dg, hdr(REMOTE, G0), 4500, 4500, SPI(0x0900, 1), 16);
	wan_same(cs, drop, XDNAT_R_UNKNOWN_SPI, &dg, "unknown ESP-in-UDP SPI: dropped");
	dg_udp_data(&dg, hdr(REMOTE, G0), 4500, 4500, (const uint8_t[]){ 0xff }, 1);
	wan_same(cs, drop, XDNAT_R_UNKNOWN_SHARED, &dg, "keepalive: dropped");
	dg_ike(&dg, hdr(REMOTE, G0), 4500, 4500, true, 1, 0, IKE_V2, IKE_I, 20);
	wan_same(cs, drop, XDNAT_R_IKE_NO_DEFAULT, &dg, "IKE_SA_INIT, no default: dropped");
}

Test(shared_ike_drop, unknown_dropped)
{
	struct cases cs = { 0 };

	shared_drop_cases(&cs, XDP_DROP);
	run_cases(WAN_XDP, &cs);
	shared_drop_cases(&cs, TC_ACT_SHOT);
	run_cases(WAN_TC, &cs);
}

/*
 * Truncated headers at every length: (a) the frame cut anywhere (tot_len
 * then exceeds it), (b) self-consistent datagrams (IP and UDP lengths
 * agree) whose payload ends before the marker/SPI/IKE header does.
 */
static void shared_truncations(struct cases *cs, int fwd, int drop)
{
	struct pkt dg, full;
	uint8_t b[64] = { 0 };
	char name[96];

	dg_ike(&dg, hdr(REMOTE, G0), 500, 500, false, 1, IKE_SPI(0x0100, 1), IKE_V2, IKE_I, 0);
	wan_frame(&full, &dg);
	for (size_t len = 0; len < full.len; len++) {
		struct dp_case *c = case_add(cs, drop, XDNAT_R_DROP_MALFORMED,
					     "500 IKE frame cut to %zu of %zu bytes", len, full.len);

		memcpy(c->in.b, full.b, len);
		c->in.len = len;
		/* XDP test runs refuse frames < 14 bytes, tc ones < 34 (6.18). */
		if (len < 34)
			c->refusal_errno = EINVAL;
	}
	wan_fwd_r(cs, fwd, XDNAT_R_IKE_TO_HOST, &dg, H_A, "500 IKE header alone -> A");

	ike_hdr(b, 1, IKE_SPI(0x0100, 1), IKE_V2, IKE_I, 0);
	for (size_t n = 0; n < 28; n++) {
		dg_udp_data(&dg, hdr(REMOTE, G0), 500, 500, b, n);
		snprintf(name, sizeof(name), "500: %zu bytes of IKE header", n);
		wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &dg, name);
	}
	ike_hdr(b + 4, 1, IKE_SPI(0x0100, 1), IKE_V2, IKE_I, 0);
	for (size_t n = 0; n < 32; n++) {
		if (n == 1)
			continue; /* a zero byte: not a keepalive, still malformed below */
		dg_udp_data(&dg, hdr(REMOTE, G0), 4500, 4500, b, n);
		snprintf(name, sizeof(name), "4500: %zu bytes of marker + IKE header", n);
		wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &dg, name);
	}
	dg_udp_data(&dg, hdr(REMOTE, G0), 4500, 4500, b, 1);
	wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &dg, "4500: one zero byte");
	dg_udp_data(&dg, hdr(REMOTE, G0), 4500, 4500, b, 32);
	wan_fwd_r(cs, fwd, XDNAT_R_IKE_TO_HOST, &dg, H_A, "4500: marker + IKE header alone -> A");
	pkt_wr32(b, SPI(0x0101, 9));
	for (size_t n = 2; n < 4; n++) {
		dg_udp_data(&dg, hdr(REMOTE, G0), 4500, 4500, b, n);
		snprintf(name, sizeof(name), "4500: %zu bytes of ESP SPI", n);
		wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &dg, name);
	}
	dg_udp_data(&dg, hdr(REMOTE, G0), 4500, 4500, b, 4);
	wan_fwd_r(cs, fwd, XDNAT_R_ESP_UDP_TO_HOST, &dg, H_B, "4500: the ESP SPI alone -> B");
	dg_udp_data(&dg, hdr(REMOTE, G0), 500, 500, NULL, 0);
	pkt_reset(&dg);
	{
		struct ip4 ih = hdr(REMOTE, G0);
		size_t o;

		ih.proto = PROTO_UDP;
		o = pkt_ip4_begin(&dg, &ih);
		pkt_put(&dg, (const uint8_t[]){ 0x01, 0xf4, 0x01, 0xf4, 0, 8, 0 }, 7);
		pkt_ip4_end(&dg, o);
	}
	wan_same(cs, drop, XDNAT_R_DROP_MALFORMED, &dg, "500: 7 bytes of UDP header");
}

HOOK_TEST(shared_ike, truncated)
{
	struct cases cs = { 0 };

	shared_truncations(&cs, h->redirect, h->drop);
	run_cases(h->wan, &cs);
}

/*
 * ESP-in-UDP delivered to a host records its sender as an IPsec peer (the
 * Local CA notifies it on revocation): on the shared NAT-T port, and on a
 * host's own port when it comes from the peer's NAT-T port 4500 (RFC 3948
 * without NAT on the peer's side).  IKE (non-ESP marker), other source
 * ports and keepalives record nothing.
 */
static void esp_udp_peers(enum prog_id wan, int fwd)
{
	int fd = bpf_map__fd(R->skel->maps.xdnat_peers);
	struct xdnat_peer_key k, next;
	struct xdnat_peer_val v;
	struct cases cs = { 0 };
	struct pkt dg;
	unsigned n = 0;

	dg_esp_udp(&dg, hdr(REMOTE, G0), 4500, 4500, SPI(0x0100, 0x77), 64);
	wan_fwd_r(&cs, fwd, XDNAT_R_ESP_UDP_TO_HOST, &dg, H_A, "shared 4500 ESP-in-UDP -> A");
	dg_esp_udp(&dg, hdr(REMOTE_FAR, G0), 4500, 21001, 0xabcdef01, 64);
	wan_fwd(&cs, fwd, &dg, H_B, "ESP-in-UDP from NAT-T port 4500 to B's port 21001");
	dg_ike(&dg, hdr(WAN_GW, G0), 4500, 20001, true, IKE_SPI(0x0100, 1), 0, IKE_V2, IKE_I, 20);
	wan_fwd(&cs, fwd, &dg, H_A, "IKE (marker) from 4500 to A's port: not ESP");
	dg_esp_udp(&dg, hdr(WAN_GW, G0), 4501, 20001, 0xabcdef01, 64);
	wan_fwd(&cs, fwd, &dg, H_A, "SPI-looking UDP from port 4501: not NAT-T");
	run_cases(wan, &cs);
	k = (struct xdnat_peer_key){ .host_id = H_A, .remote = htonl(REMOTE) };
	cr_assert_eq(bpf_map_lookup_elem(fd, &k, &v), 0, "A's shared-port ESP-in-UDP peer not recorded");
	k = (struct xdnat_peer_key){ .host_id = H_B, .remote = htonl(REMOTE_FAR) };
	cr_assert_eq(bpf_map_lookup_elem(fd, &k, &v), 0, "B's ESP-in-UDP peer not recorded");
	k = (struct xdnat_peer_key){ .host_id = H_A, .remote = htonl(WAN_GW) };
	cr_assert_neq(bpf_map_lookup_elem(fd, &k, &v), 0, "IKE or non-NAT-T UDP made a peer");
	for (int rc = bpf_map_get_next_key(fd, NULL, &next); !rc;
	     rc = bpf_map_get_next_key(fd, &k, &next)) {
		k = next;
		n++;
	}
	cr_assert_eq(n, 2, "%u peers recorded, expected 2", n);
}

HOOK_TEST(shared_ike, esp_udp_peers)
{
	esp_udp_peers(h->wan, h->redirect);
}

/* A fragmented IKE message (IKE_AUTH with certificates): the first fragment
 * is routed by its IKE SPI and teaches the fragment table; the rest follows. */
static void shared_frag_cases(struct cases *cs, int fwd)
{
	struct pkt dg;
	struct ip4 ih;

	ih = hdr(REMOTE, G0);
	ih.id = 0x4242;
	ih.frag = IP_MF;
	dg_ike(&dg, ih, 4500, 4500, true, 1, IKE_SPI(0x0101, 1), IKE_V2, IKE_I, 200);
	pkt_wr16(dg.b + 24, 8 + 4 + 28 + 1200); /* UDP length of the whole datagram */
	pkt_wr16(dg.b + 26, 0);                 /* no checksum over a fragment */
	wan_fwd_r(cs, fwd, XDNAT_R_IKE_TO_HOST, &dg, H_B, "first fragment of an IKE_AUTH -> B");
	dg_frag(&dg, REMOTE, G0, PROTO_UDP, 0x4242, 8 + 4 + 28 + 200, false, 1000);
	wan_fwd_r(cs, fwd, XDNAT_R_FRAG_TO_HOST, &dg, H_B, "its later fragment follows -> B");
}

Test(shared_ike, fragmented_ike)
{
	struct cases cs = { 0 };

	shared_frag_cases(&cs, XDP_REDIRECT);
	run_cases(WAN_XDP, &cs);
	shared_frag_cases(&cs, TC_ACT_REDIRECT);
	run_cases(WAN_TC, &cs);
}

/* Outbound: hosts send from the shared ports; their IKE SPI is checked. */
static void shared_lan_cases(struct cases *cs, int fwd, int tx, int drop)
{
	uint8_t b[64] = { 0 };
	struct pkt dg;

	dg_ike(&dg, from_g(H_A, REMOTE), 500, 500, false, IKE_SPI(0x0100, 1), 0, IKE_V2, IKE_I, 200);
	lan_fwd_r(cs, fwd, XDNAT_R_IKE_FROM_HOST, H_A, &dg, "A initiates from 500 with its SPIi");
	dg_ike(&dg, from_g(H_B, REMOTE), 500, 500, false, IKE_SPI(0x0101, 1), 0, IKE_V2, IKE_I, 200);
	lan_fwd_r(cs, fwd, XDNAT_R_IKE_FROM_HOST, H_B, &dg, "B initiates from 500 too, its SPIi");
	dg_ike(&dg, from_g(H_A, REMOTE), 4500, 4500, true, IKE_SPI(0x0100, 1), 0x77ull, IKE_V2,
	       IKE_I, 80);
	lan_fwd_r(cs, fwd, XDNAT_R_IKE_FROM_HOST, H_A, &dg, "A IKE_AUTH from 4500 (marker), SPIi");
	dg_ike(&dg, from_g(H_A, REMOTE), 500, 500, false, 0x77ull, IKE_SPI(0x0100, 2), IKE_V2,
	       IKE_R, 80);
	lan_fwd_r(cs, fwd, XDNAT_R_IKE_FROM_HOST, H_A, &dg, "A responds with its SPIr");
	dg_ike(&dg, from_g(H_A, REMOTE), 500, 500, false, 0x77ull, 0, IKE_V2, IKE_R, 20);
	lan_fwd_r(cs, fwd, XDNAT_R_SHARED_UNCHECKED, H_A, &dg,
		  "A answers COOKIE with SPIr 0: nothing to check");
	dg_esp_udp(&dg, from_g(H_A, REMOTE), 4500, 4500, 0xc0ffee01, 64);
	lan_fwd_r(cs, fwd, XDNAT_R_SHARED_UNCHECKED, H_A, &dg,
		  "A ESP-in-UDP from 4500: the remote's SPI, unchecked");
	dg_udp_data(&dg, from_g(H_B, REMOTE), 4500, 4500, (const uint8_t[]){ 0xff }, 1);
	lan_fwd_r(cs, fwd, XDNAT_R_SHARED_UNCHECKED, H_B, &dg, "B NAT keepalive from 4500");
	dg_ike(&dg, from_g(H_C, REMOTE), 500, 500, false, IKE_SPI(0x0200, 1), 0, IKE_V2, IKE_I, 20);
	lan_fwd_r(cs, fwd, XDNAT_R_IKE_FROM_HOST, H_C, &dg, "C (G1) initiates from G1:500");
	dg_ike(&dg, from_g(H_A, REMOTE), 20000, 500, false, IKE_SPI(0x0101, 1), 0, IKE_V2, IKE_I, 20);
	lan_fwd(cs, fwd, H_A, &dg, MAC_REMOTE, "A from its own port 20000: no IKE check");

	dg_ike(&dg, from_g(H_A, REMOTE), 500, 500, false, IKE_SPI(0x0101, 1), 0, IKE_V2, IKE_I, 20);
	lan_same(cs, drop, XDNAT_R_DROP_SPOOF_IKE, H_A, &dg, "A initiates with B's SPIi: spoof");
	dg_ike(&dg, from_g(H_A, REMOTE), 4500, 4500, true, 0x77ull, IKE_SPI(0x0101, 1), IKE_V2,
	       IKE_R, 20);
	lan_same(cs, drop, XDNAT_R_DROP_SPOOF_IKE, H_A, &dg, "A responds with B's SPIr: spoof");
	dg_ike(&dg, from_g(H_A, REMOTE), 500, 500, false, IKE_SPI(0x0100, 1), IKE_SPI(0x0101, 1),
	       IKE_V2, 0, 20);
	lan_same(cs, drop, XDNAT_R_DROP_SPOOF_IKE, H_A, &dg,
		 "A's SPI as SPIi but I flag clear (its SPI must be SPIr): spoof");
	dg_ike(&dg, from_g(H_A, REMOTE), 500, 500, false, IKE_SPI(0x0900, 1), 0, IKE_V2, IKE_I, 20);
	lan_same(cs, drop, XDNAT_R_DROP_SPOOF_IKE, H_A, &dg, "A with an unallocated SPI: spoof");
	dg_ike(&dg, from_g(H_A, REMOTE), 500, 500, false, IKE_SPI(0x0100, 1), 0, IKE_V1, 0, 20);
	lan_same(cs, drop, XDNAT_R_DROP_SPOOF_IKE, H_A, &dg, "A sends IKEv1 from 500: not checkable");
	dg_ike(&dg, from_g(H_C, REMOTE), 500, 500, false, IKE_SPI(0x0100, 1), 0, IKE_V2, IKE_I, 20);
	lan_same(cs, drop, XDNAT_R_DROP_SPOOF_IKE, H_C, &dg, "C with A's SPI: spoof");
	dg_tcp(&dg, from_g(H_A, REMOTE), 500, 500, 20);
	lan_same(cs, drop, XDNAT_R_DROP_SPOOF_PORT, H_A, &dg, "A TCP from 500: not its port");
	ike_hdr(b, IKE_SPI(0x0100, 1), 0, IKE_V2, IKE_I, 0);
	for (size_t n = 0; n < 28; n++) {
		char name[64];

		dg_udp_data(&dg, from_g(H_A, REMOTE), 500, 500, b, n);
		snprintf(name, sizeof(name), "A from 500, %zu bytes of IKE header", n);
		lan_same(cs, drop, XDNAT_R_DROP_MALFORMED, H_A, &dg, name);
	}
	dg_udp_data(&dg, from_g(H_A, REMOTE), 500, 500, b, 28);
	lan_fwd_r(cs, fwd, XDNAT_R_IKE_FROM_HOST, H_A, &dg, "A from 500, the IKE header alone");

	/* Hairpin: A answers B (both behind G0) on 500: A's SPIr checked,
	 * delivered by B's SPIi. */
	dg_ike(&dg, from_g(H_A, G0), 500, 500, false, IKE_SPI(0x0101, 3), IKE_SPI(0x0100, 3),
	       IKE_V2, IKE_R, 40);
	hairpin(cs, tx, H_A, H_B, &dg, "A responds to B through G0:500 -> B");
}

HOOK_TEST(shared_ike, outbound)
{
	struct cases cs = { 0 };

	shared_lan_cases(&cs, h->redirect, h->tx, h->drop);
	run_cases(h->lan, &cs);
}

/* Without shared ports (the other suites' router), 500 is just a port. */
Test(wan, ike_ports_not_shared_by_default)
{
	struct cases cs = { 0 };
	struct pkt dg;

	dg_ike(&dg, hdr(REMOTE, G0), 500, 500, false, 1, IKE_SPI(0x0100, 1), IKE_V2, IKE_I, 20);
	wan_same(&cs, XDP_PASS, XDNAT_R_UNKNOWN_PORT, &dg, "IKE to 500, not shared: unknown port");
	run_cases(WAN_XDP, &cs);
	dg_ike(&dg, from_g(H_A, REMOTE), 500, 500, false, IKE_SPI(0x0100, 1), 0, IKE_V2, IKE_I, 20);
	lan_same(&cs, XDP_DROP, XDNAT_R_DROP_SPOOF_PORT, H_A, &dg, "A from 500, not shared: spoof");
	run_cases(LAN_XDP, &cs);
}

/*
 * Ports and SPI blocks marked as the router's own services (xdnatd
 * --router-ports) reach the router's stack even with --unknown drop, so its
 * services stay reachable under a flood of junk; the neighbouring
 * unallocated port is still dropped, and a host may not send from them.
 */
Test(wan_drop, router_service_ports)
{
	struct xdnat_owner router = { .host_id = XDNAT_HOST_ROUTER };
	int ports = bpf_map__fd(R->skel->maps.xdnat_ports);
	int spis = bpf_map__fd(R->skel->maps.xdnat_spis);
	uint32_t key = 0 * XDNAT_PORTS_PER_GADDR + 2222, blk = SPI(0x0777, 0) >> SPI_BITS;
	struct cases cs = { 0 }, lan = { 0 };
	struct dp_case *c;
	struct pkt dg;

	map_set(ports, key, &router, "xdnat_ports");
	map_set(spis, blk, &router, "xdnat_spis");
	dg_tcp(&dg, hdr(REMOTE, G0), 40001, 2222, 0);
	wan_same(&cs, XDP_PASS, XDNAT_R_PASS_ROUTER_PORT, &dg, "TCP to the router's port 2222");
	dg_udp(&dg, hdr(REMOTE, G0), 40001, 2222, 16);
	wan_same(&cs, XDP_PASS, XDNAT_R_PASS_ROUTER_PORT, &dg, "UDP to the router's port 2222");
	dg_esp(&dg, hdr(REMOTE, G0), SPI(0x0777, 9), 16);
	wan_same(&cs, XDP_PASS, XDNAT_R_PASS_ROUTER_PORT, &dg, "ESP to the router's SPI block");
	dg_tcp(&dg, hdr(REMOTE, G0), 40001, 2223, 0);
	wan_same(&cs, XDP_DROP, XDNAT_R_UNKNOWN_PORT, &dg, "TCP to the unallocated port next to it");
	dg_tcp(&dg, hdr(REMOTE, G1), 40001, 2222, 0);
	wan_same(&cs, XDP_DROP, XDNAT_R_UNKNOWN_PORT, &dg, "port 2222 of G1 is not marked");
	run_cases(WAN_XDP, &cs);

	dg_udp(&dg, from_g(H_A, REMOTE), 2222, 4500, 40);
	c = case_add(&lan, XDP_DROP, XDNAT_R_DROP_SPOOF_PORT, "host A sending from the router's port");
	lan_tunnel(&c->in, H_A, &dg);
	run_cases(LAN_XDP, &lan);
}

/* ------------------------------------------------------------ map ABI */

TestSuite(abi, .init = init_router, .fini = fini_all, .timeout = 60);

/* XDNAT_MAPS (maps/xdnat_abi.h) names exactly the router object's maps,
 * with their pinning, and the XDNAT_MAP_* spellings are the same names. */
Test(abi, map_list_matches_object)
{
	struct bpf_object *obj = R->skel->obj;
	const char *const literal[XDNAT_M_MAX] = {
		[XDNAT_M_INFO] = XDNAT_MAP_INFO, [XDNAT_M_PORTS] = XDNAT_MAP_PORTS,
		[XDNAT_M_SPIS] = XDNAT_MAP_SPIS, [XDNAT_M_HOSTS] = XDNAT_MAP_HOSTS,
		[XDNAT_M_LAN_IDX] = XDNAT_MAP_LAN_IDX, [XDNAT_M_HSTATS] = XDNAT_MAP_HSTATS,
		[XDNAT_M_STATS] = XDNAT_MAP_STATS, [XDNAT_M_TXPORTS] = XDNAT_MAP_TXPORTS,
		[XDNAT_M_HOST_NH] = XDNAT_MAP_HOST_NH, [XDNAT_M_FRAGS] = XDNAT_MAP_FRAGS,
		[XDNAT_M_OUT_SPIS] = XDNAT_MAP_OUT_SPIS,
		[XDNAT_M_FRAG_EVENTS] = XDNAT_MAP_FRAG_EVENTS, [XDNAT_M_PEERS] = XDNAT_MAP_PEERS,
	};
	struct bpf_map *m;
	int n = 0;

	for (int i = 0; i < XDNAT_M_MAX; i++) {
		m = bpf_object__find_map_by_name(obj, xdnat_maps[i].name);
		cr_assert(m, "listed map %s is not in the router object", xdnat_maps[i].name);
		cr_expect(!!bpf_map__pin_path(m) == !!xdnat_maps[i].pinned,
			  "map %s: pinned %d in the list, the object says %s", xdnat_maps[i].name,
			  xdnat_maps[i].pinned, bpf_map__pin_path(m) ? "pinned" : "not pinned");
		if (literal[i])
			cr_expect_str_eq(literal[i], xdnat_maps[i].name, "XDNAT_MAP_* spelling");
	}
	bpf_object__for_each_map(m, obj) {
		if (bpf_map__is_internal(m))
			continue;
		n++;
		bool listed = false;

		for (int i = 0; i < XDNAT_M_MAX; i++)
			listed |= !strcmp(xdnat_maps[i].name, bpf_map__name(m));
		cr_expect(listed, "map %s of the router object is missing from XDNAT_MAPS",
			  bpf_map__name(m));
	}
	cr_expect_eq(n, XDNAT_M_MAX, "%d maps in the object, %d listed", n, XDNAT_M_MAX);
	for (int r = 0; r < XDNAT_R_MAX; r++)
		cr_expect(xdnat_reason_names[r] && xdnat_reason_names[r][0], "reason %d has a name", r);
}

/* Pin an xdnat_info of @value_size bytes whose abi_version (if it has one) is
 * @version into a new pin directory; return the directory. */
static const char *pin_info(const char *inst, uint32_t value_size, uint32_t version)
{
	static char dir[160];
	char path[200];
	unsigned char val[256] = { 0 };
	uint32_t zero = 0;
	size_t at = offsetof(struct xdnat_router_cfg, abi_version);
	int fd;

	snprintf(dir, sizeof(dir), "%s/%s", PIN_BASE, inst);
	cr_assert(mkdir(dir, 0700) == 0, "mkdir %s: %s", dir, strerror(errno));
	if (!value_size)
		return dir;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, XDNAT_MAP_INFO, 4, value_size, 1, NULL);
	cr_assert(fd >= 0, "bpf_map_create: %s", strerror(errno));
	if (value_size >= at + 4)
		memcpy(val + at, &version, 4);
	cr_assert(bpf_map_update_elem(fd, &zero, val, BPF_ANY) == 0, "update: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/%s", dir, XDNAT_MAP_INFO);
	cr_assert(bpf_obj_pin(fd, path) == 0, "pin %s: %s", path, strerror(errno));
	close(fd);
	return dir;
}

/* xdnatd reuses pins only of its own map ABI version. */
Test(abi, version_checked_on_reuse)
{
	const uint32_t v1_size = offsetof(struct xdnat_router_cfg, abi_version);

	cr_expect_eq(xd_pins_check_abi(pin_info("abi-none", 0, 0)), 0, "nothing pinned: fresh start");
	cr_expect_eq(xd_pins_check_abi(pin_info("abi-cur", sizeof(struct xdnat_router_cfg),
						XDNAT_ABI_VERSION)), 0, "same version: reused");
	cr_expect_eq(xd_pins_check_abi(pin_info("abi-v1", v1_size, 0)), -EPROTO,
		     "maps from before versioning: refused");
	cr_expect_eq(xd_pins_check_abi(pin_info("abi-next", sizeof(struct xdnat_router_cfg) + 8,
						XDNAT_ABI_VERSION + 1)), -EPROTO,
		     "maps of a later version: refused");
}

/* ------------------------------------------------- next hop under races */

/*
 * The per-host next-hop cache must never hand out a torn entry (MACs of one
 * address with another address): two threads on two CPUs run WAN packets
 * to host A through BPF_PROG_TEST_RUN while a third, the control plane,
 * moves A between two LAN addresses with different neighbours, so entries
 * are relearnt all the time on both CPUs.  Every frame that leaves must
 * carry the MAC of the address it is tunnelled to.
 */
#define RACE_L2 IP4(10, 77, 0, 120)
static const uint8_t RACE_MAC2[6] = { 0x02, 0x22, 0x33, 0x44, 0x55, 0x66 };

struct race {
	int prog_fd, cpu;
	const struct pkt *frame;
	volatile bool *stop;
	unsigned long runs, sent, torn, other;
	int err;
};

static void *race_worker(void *arg)
{
	struct race *w = arg;
	const struct hostdef *a = host(H_A);
	uint8_t out[256];
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	if ((w->err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set)))
		return NULL;
	while (!*w->stop) {
		struct xdp_md xctx = { .data_end = (__u32)w->frame->len,
				       .ingress_ifindex = (__u32)env.wan0 };
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = w->frame->b,
			    .data_size_in = (__u32)w->frame->len, .data_out = out,
			    .data_size_out = sizeof(out), .ctx_in = &xctx,
			    .ctx_size_in = sizeof(xctx), .repeat = 1);
		uint32_t daddr;

		if ((w->err = bpf_prog_test_run_opts(w->prog_fd, &o)))
			return NULL;
		w->runs++;
		if (o.retval != XDP_REDIRECT || o.data_size_out < 14 + 20) {
			w->other++;
			continue;
		}
		w->sent++;
		memcpy(&daddr, out + 14 + 16, 4);
		if (!((daddr == htonl(a->lan) && !memcmp(out, a->mac, 6)) ||
		      (daddr == htonl(RACE_L2) && !memcmp(out, RACE_MAC2, 6))))
			w->torn++;
	}
	return NULL;
}

Test(nh_race, no_torn_entry_under_concurrent_updates, .timeout = 60)
{
	const struct hostdef *a = host(H_A);
	int hosts = bpf_map__fd(R->skel->maps.xdnat_hosts);
	struct xdnat_host h = { .gaddr_index = a->gidx, .flags = a->flags };
	volatile bool stop = false;
	struct race w[2];
	pthread_t th[2];
	struct pkt dg, frame;
	unsigned long flips = 0;
	char ip[16], m[18];
	struct timespec t0, t;

	cr_assert(env.ncpus >= 2, "the race needs two CPUs, this machine has %d", env.ncpus);
	sh("ip neigh add %s lladdr %s dev lan0 nud permanent", ipstr(RACE_L2, ip),
	   macstr(RACE_MAC2, m));
	dg_udp(&dg, hdr(REMOTE, G0), 53, 20010, 40);
	wan_frame(&frame, &dg);
	for (int i = 0; i < 2; i++) {
		w[i] = (struct race){ .prog_fd = R->wan_xdp, .cpu = i, .frame = &frame, .stop = &stop };
		cr_assert(pthread_create(&th[i], NULL, race_worker, &w[i]) == 0, "pthread_create");
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		h.lan_addr = htonl(flips & 1 ? RACE_L2 : a->lan);
		cr_assert(bpf_map_update_elem(hosts, &(uint32_t){ H_A }, &h, BPF_ANY) == 0,
			  "update xdnat_hosts: %s", strerror(errno));
		flips++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 1500);
	stop = true;
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	h.lan_addr = htonl(a->lan);
	bpf_map_update_elem(hosts, &(uint32_t){ H_A }, &h, BPF_ANY);

	for (int i = 0; i < 2; i++) {
		cr_assert_eq(w[i].err, 0, "worker on CPU %d: %s", i, strerror(abs(w[i].err)));
		cr_log_info("CPU %d: %lu runs, %lu sent, %lu torn, %lu other; %lu address flips",
			    i, w[i].runs, w[i].sent, w[i].torn, w[i].other, flips);
		cr_expect_gt(w[i].sent, 1000, "CPU %d forwarded only %lu packets", i, w[i].sent);
		cr_expect_eq(w[i].other, 0, "CPU %d: %lu packets not redirected", i, w[i].other);
		cr_expect_eq(w[i].torn, 0, "CPU %d sent %lu frames with another address's MAC",
			     i, w[i].torn);
	}
}

/* ------------------------------------------------------------ roaming hosts */

/*
 * Roaming hosts (issue 18, maps/xdnat_abi.h "the care-of endpoint"): host A
 * registered away at care-of endpoint COA:COA_PORT (the public side of a NAT,
 * reached through the WAN gateway); UDP 434 of G0 is the router's port (the
 * home agent), of G1 not.
 */
#define COA       IP4(198, 51, 100, 200)
#define COA_PORT  40434
#define MIP_PORT  434

static int coa_fd(void)
{
	return bpf_map__fd(R->skel->maps.xdnat_coa);
}

/* Host @hid at COA:@port, or at home with @active false: ONE update of
 * xdnat_coa (plus the reverse index the setter keeps). */
static void coa_put(uint32_t hid, uint32_t addr, uint16_t port, bool active)
{
	struct xdnat_coa v = { .ep = { .addr = htonl(addr), .port = htons(port),
				       .flags = active ? XDNAT_COA_F_ACTIVE : 0 } };
	struct xdnat_coa_key k = { .addr = htonl(addr), .port = htons(port) };

	cr_assert(bpf_map_update_elem(bpf_map__fd(R->skel->maps.xdnat_coa_idx), &k, &hid,
				      BPF_ANY) == 0, "index coa: %s", strerror(errno));
	map_set(coa_fd(), hid, &v, "xdnat_coa");
}

static void init_router_roam(void)
{
	struct xdnat_owner router = { .host_id = XDNAT_HOST_ROUTER };

	router_up(0, "default");
	map_set(bpf_map__fd(R->skel->maps.xdnat_ports), 0 * XDNAT_PORTS_PER_GADDR + MIP_PORT,
		&router, "xdnat_ports");
	coa_put(H_A, COA, COA_PORT, true);
}

TestSuite(roam, .init = init_router_roam, .fini = fini_all, .timeout = 120);

/*
 * RFC 3519 UDP tunnelling of @dg, written from the RFCs independently of
 * the BPF code: outer IPv4 @osrc -> @odst (version 4, IHL 5, TOS, ID and DF
 * of the inner header, TTL 64, protocol 17, valid checksum), UDP @sport ->
 * @dport with length and checksum 0, tunnel-data header: type 4, next
 * header 4, reserved 0; then the datagram, unchanged.
 */
static void udp_tunnel(struct pkt *f, const uint8_t dmac[6], const uint8_t smac[6], uint32_t osrc,
		       uint32_t odst, uint16_t sport, uint16_t dport, uint8_t type, uint8_t nh,
		       const struct pkt *dg)
{
	struct ip4 o = {
		.src = osrc, .dst = odst, .proto = PROTO_UDP, .tos = dg->b[1], .ttl = 64,
		.id = pkt_rd16(dg->b + 4), .frag = pkt_rd16(dg->b + 6) & IP_DF,
	};
	const uint8_t th[4] = { type, nh, 0, 0 };
	uint8_t *u;
	size_t off;

	pkt_reset(f);
	pkt_eth(f, dmac, smac, ETHTYPE_IPV4);
	off = pkt_ip4_begin(f, &o);
	u = pkt_put(f, NULL, 8);
	pkt_wr16(u, sport);
	pkt_wr16(u + 2, dport);
	pkt_wr16(u + 4, (uint16_t)(8 + 4 + dg->len));
	pkt_wr16(u + 6, 0);
	pkt_put(f, th, sizeof(th));
	pkt_put(f, dg->b, dg->len);
	pkt_ip4_end(f, off);
}

/* @dg from the WAN must reach roaming host @hid at COA:@port via the gateway. */
static void roam_fwd(struct cases *cs, int verdict, const struct pkt *dg, uint32_t hid,
		     uint16_t port, const char *name)
{
	struct dp_case *c = case_add(cs, verdict, XDNAT_R_ROAM_TO_COA, "%s", name);

	wan_frame(&c->in, dg);
	udp_tunnel(&c->out, MAC_GW, MAC_WAN0, pkt_rd32(dg->b + 16), COA, MIP_PORT, port,
		   4, 4, dg);
	c->bytes = ip_totlen(dg);
	c->to_host = hid;
}

/* Host @dg reverse-tunnelled from @src:@sport (via the gateway) to G0:434. */
static void rtun_frame(struct pkt *f, uint32_t src, uint16_t sport, const struct pkt *dg)
{
	udp_tunnel(f, MAC_WAN0, MAC_GW, src, G0, sport, MIP_PORT, 4, 4, dg);
}

HOOK_TEST(roam, to_care_of_endpoint)
{
	struct cases cs = { 0 };
	struct pkt dg;

	dg_udp(&dg, hdr(REMOTE, G0), 53, 20010, 100);
	roam_fwd(&cs, h->redirect, &dg, H_A, COA_PORT, "UDP to A's port: to its care-of endpoint");
	dg_tcp(&dg, hdr(REMOTE_FAR, G0), 443, 20999, 1000);
	roam_fwd(&cs, h->redirect, &dg, H_A, COA_PORT, "TCP to A's last port");
	dg_esp(&dg, nodf(hdr(REMOTE, G0)), SPI(0x0100, 7), 64);
	roam_fwd(&cs, h->redirect, &dg, H_A, COA_PORT, "ESP to A's SPI, no DF: outer no DF");
	dg_icmp(&dg, hdr(REMOTE, G0), ICMP_ECHOREPLY, 20001, 32);
	roam_fwd(&cs, h->redirect, &dg, H_A, COA_PORT, "echo reply to A's id");
	dg_udp(&dg, hdr(REMOTE, G0), 53, 20010, 1468 - 28);
	roam_fwd(&cs, h->redirect, &dg, H_A, COA_PORT, "1468-byte DF UDP: 1500 with the tunnel");
	/* B is at home: IP-in-IP on the LAN as before. */
	dg_udp(&dg, hdr(REMOTE, G0), 53, 21010, 100);
	wan_fwd(&cs, h->redirect, &dg, H_B, "UDP to B (at home): LAN tunnel");
	run_cases(h->wan, &cs);
}

HOOK_TEST(roam, too_big_for_the_tunnel)
{
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg, icmp;

	dg_udp(&dg, hdr(REMOTE, G0), 53, 20010, 1469 - 28);
	c = case_add(&cs, h->redirect, XDNAT_R_TOO_BIG_ICMP,
		     "1469-byte DF UDP to roaming A: frag-needed 1468 (path MTU - 32)");
	wan_frame(&c->in, &dg);
	frag_needed_of(&icmp, &dg, G0, 1468);
	frame(&c->out, MAC_REMOTE, MAC_WAN0, &icmp);
	c->bytes = ip_totlen(&dg);
	run_cases(h->wan, &cs);
}

/* Moving home is one update of xdnat_coa; so is moving on (another
 * endpoint) and away again. */
HOOK_TEST(roam, switch_with_one_update)
{
	struct xdnat_coa home = { 0 };
	struct cases cs = { 0 };
	struct pkt dg;

	dg_udp(&dg, hdr(REMOTE, G0), 53, 20010, 100);
	roam_fwd(&cs, h->redirect, &dg, H_A, COA_PORT, "away");
	run_cases(h->wan, &cs);

	map_set(coa_fd(), H_A, &home, "xdnat_coa");
	wan_fwd(&cs, h->redirect, &dg, H_A, "home after one update");
	run_cases(h->wan, &cs);

	coa_put(H_A, COA, COA_PORT + 1, true);
	roam_fwd(&cs, h->redirect, &dg, H_A, COA_PORT + 1, "away again, another NAT binding");
	run_cases(h->wan, &cs);

	coa_put(H_A, COA, COA_PORT + 1, false);
	wan_fwd(&cs, h->redirect, &dg, H_A, "entry kept, not active: home");
	run_cases(h->wan, &cs);
}

HOOK_TEST(roam, reverse_tunnel)
{
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg, fwd, bad;

	dg_udp(&dg, from_g(H_A, REMOTE), 20010, 53, 100);
	c = case_add(&cs, h->redirect, XDNAT_R_ROAM_FROM_COA, "A's UDP from its endpoint: to the WAN");
	rtun_frame(&c->in, COA, COA_PORT, &dg);
	ttl_dec(&fwd, &dg);
	frame(&c->out, MAC_REMOTE, MAC_WAN0, &fwd);
	c->bytes = ip_totlen(&dg);
	c->from_host = H_A;

	dg_esp(&dg, from_g(H_A, REMOTE_FAR), 0x77000001u, 64);
	c = case_add(&cs, h->redirect, XDNAT_R_ROAM_FROM_COA, "A's ESP (the remote's SPI) via the gateway");
	rtun_frame(&c->in, COA, COA_PORT, &dg);
	ttl_dec(&fwd, &dg);
	frame(&c->out, MAC_GW, MAC_WAN0, &fwd);
	c->bytes = ip_totlen(&dg);
	c->from_host = H_A;

	dg_udp(&dg, from_g(H_A, REMOTE), 20010, 53, 100);
	c = case_add(&cs, h->drop, XDNAT_R_DROP_COA_UNKNOWN, "spoofed outer source");
	rtun_frame(&c->in, COA + 1, COA_PORT, &dg);
	c = case_add(&cs, h->drop, XDNAT_R_DROP_COA_UNKNOWN, "registered address, wrong port");
	rtun_frame(&c->in, COA, COA_PORT + 7, &dg);
	c = case_add(&cs, h->drop, XDNAT_R_DROP_COA_UNKNOWN, "the remote's own address");
	rtun_frame(&c->in, REMOTE, COA_PORT, &dg);

	dg_udp(&bad, hdr(REMOTE_FAR, REMOTE), 20010, 53, 100);
	c = case_add(&cs, h->drop, XDNAT_R_DROP_SPOOF_SRC, "foreign inner source");
	rtun_frame(&c->in, COA, COA_PORT, &bad);
	c->bytes = ip_totlen(&bad);
	dg_udp(&bad, from_g(H_C, REMOTE), 20010, 53, 100);
	c = case_add(&cs, h->drop, XDNAT_R_DROP_SPOOF_SRC, "inner source G1, A shares G0");
	rtun_frame(&c->in, COA, COA_PORT, &bad);
	c->bytes = ip_totlen(&bad);
	dg_udp(&bad, from_g(H_A, REMOTE), 21000, 53, 100);
	c = case_add(&cs, h->drop, XDNAT_R_DROP_SPOOF_PORT, "inner source port of B's");
	rtun_frame(&c->in, COA, COA_PORT, &bad);
	c->bytes = ip_totlen(&bad);
	dg_icmp(&bad, from_g(H_A, G0), ICMP_ECHO, 20001, 8);
	c = case_add(&cs, h->drop, XDNAT_R_PASS_ICMP_LOCAL, "keepalive ping to G: dropped, counted");
	rtun_frame(&c->in, COA, COA_PORT, &bad);
	c->bytes = ip_totlen(&bad);
	run_cases(h->wan, &cs);
}

HOOK_TEST(roam, home_agent_port)
{
	static const uint8_t rrq[28] = { 1, 0x02, 0, 60 }; /* registration request, RFC 5944 */
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg, in;
	size_t o;

	pkt_reset(&dg);
	o = pkt_ip4_begin(&dg, &(struct ip4){ .src = COA, .dst = G0, .proto = PROTO_UDP, .ttl = 50 });
	pkt_udp_data(&dg, o, COA_PORT, MIP_PORT, rrq, sizeof(rrq));
	pkt_ip4_end(&dg, o);
	c = case_add(&cs, h->pass, XDNAT_R_PASS_MIP_REG, "registration request: to the stack");
	frame(&c->in, MAC_WAN0, MAC_GW, &dg);

	pkt_reset(&dg);
	o = pkt_ip4_begin(&dg, &(struct ip4){ .src = REMOTE, .dst = G0, .proto = PROTO_UDP, .ttl = 50 });
	pkt_udp_data(&dg, o, 50000, MIP_PORT, rrq, 2);
	pkt_ip4_end(&dg, o);
	c = case_add(&cs, h->pass, XDNAT_R_PASS_MIP_REG, "2-byte message from anyone: the stack's");
	frame(&c->in, MAC_WAN0, MAC_REMOTE, &dg);

	dg_udp(&dg, from_g(H_A, REMOTE), 20010, 53, 100);
	c = case_add(&cs, h->drop, XDNAT_R_DROP_MALFORMED, "tunnel data, next header 55");
	udp_tunnel(&c->in, MAC_WAN0, MAC_GW, COA, G0, COA_PORT, MIP_PORT, 4, 55, &dg);
	c = case_add(&cs, h->drop, XDNAT_R_FRAGMENT, "tunnel data in an outer fragment");
	rtun_frame(&c->in, COA, COA_PORT, &dg);
	c->in.b[14 + 6] |= IP_MF >> 8;
	pkt_ip4_fix_csum(&c->in, 14);
	c = case_add(&cs, h->drop, XDNAT_R_DROP_MALFORMED, "tunnel data, inner length + 1");
	rtun_frame(&c->in, COA, COA_PORT, &dg);
	pkt_wr16(c->in.b + 14 + 32 + 2, (uint16_t)(ip_totlen(&dg) + 1));

	/* 434 of G1 is no router port: an ordinary unallocated port. */
	rtun_frame(&in, COA, COA_PORT, &dg);
	pkt_wr32(in.b + 14 + 16, G1);
	pkt_ip4_fix_csum(&in, 14);
	c = case_add(&cs, h->pass, XDNAT_R_UNKNOWN_PORT, "UDP 434 of G1: not the home agent's");
	c->in = in;
	run_cases(h->wan, &cs);
}

/* Hairpin between a host away and another host of this router, either
 * way: the packet leaves in the destination's tunnel, TTL - 1. */
HOOK_TEST(roam, hairpin)
{
	const struct hostdef *b = host(H_B);
	struct cases cs = { 0 }, lan = { 0 };
	struct dp_case *c;
	struct pkt dg, fwd;

	dg_udp(&dg, from_g(H_B, G0), 21000, 20010, 100);
	c = case_add(&lan, h->redirect, XDNAT_R_HAIRPIN, "B (home) to A (away): to A's endpoint");
	lan_tunnel(&c->in, H_B, &dg);
	ttl_dec(&fwd, &dg);
	udp_tunnel(&c->out, MAC_GW, MAC_WAN0, G0, COA, MIP_PORT, COA_PORT, 4, 4, &fwd);
	c->bytes = ip_totlen(&dg);
	c->from_host = H_B;
	c->to_host = H_A;
	run_cases(h->lan, &lan);

	dg_tcp(&dg, from_g(H_A, G0), 20010, 21000, 300);
	c = case_add(&cs, h->redirect, XDNAT_R_HAIRPIN, "A (away) to B (home): IP-in-IP to B");
	rtun_frame(&c->in, COA, COA_PORT, &dg);
	ttl_dec(&fwd, &dg);
	tunnel(&c->out, b->mac, MAC_LAN0, LAN_ROUTER, b->lan, &fwd);
	c->bytes = ip_totlen(&dg);
	c->from_host = H_A;
	c->to_host = H_B;
	run_cases(h->wan, &cs);

	coa_put(H_B, COA, COA_PORT + 5, true);
	c = case_add(&cs, h->redirect, XDNAT_R_HAIRPIN, "A (away) to B (away): to B's endpoint");
	rtun_frame(&c->in, COA, COA_PORT, &dg);
	udp_tunnel(&c->out, MAC_GW, MAC_WAN0, G0, COA, MIP_PORT, COA_PORT + 5, 4, 4, &fwd);
	c->bytes = ip_totlen(&dg);
	c->from_host = H_A;
	c->to_host = H_B;
	run_cases(h->wan, &cs);
}

/* The user-space setter keeps the reverse index with the switch. */
Test(roam, setter)
{
	struct xdnat_router_cfg cfg = R->skel->rodata->cfg;
	struct xdnat_coa c;
	struct xd_maps m;
	uint32_t owner, zero = 0;
	struct xdnat_coa_key k = { .addr = htonl(COA), .port = htons(5555) };
	int idx = bpf_map__fd(R->skel->maps.xdnat_coa_idx);

	cfg.abi_version = XDNAT_ABI_VERSION;
	map_set(bpf_map__fd(R->skel->maps.xdnat_info), zero, &cfg, "xdnat_info");
	cr_assert_eq(xd_maps_open(PIN_BASE, "default", &m), 0);
	cr_assert_eq(xd_coa_set(&m, H_B, htonl(COA), htons(5555), XDNAT_COA_F_ACTIVE, 7), 0);
	cr_assert_eq(xd_coa_get(&m, H_B, &c), 0);
	cr_assert(c.ep.addr == htonl(COA) && c.ep.port == htons(5555) &&
		  c.ep.flags == XDNAT_COA_F_ACTIVE && c.generation == 7);
	cr_assert_eq(bpf_map_lookup_elem(idx, &k, &owner), 0);
	cr_assert_eq(owner, (uint32_t)H_B);
	cr_assert_eq(xd_coa_set(&m, H_D, htonl(COA), htons(5555), XDNAT_COA_F_ACTIVE, 1), -EEXIST,
		     "a live endpoint of B is not D's");
	cr_assert_eq(xd_coa_set(&m, H_B, htonl(COA), htons(5556), XDNAT_COA_F_ACTIVE, 8), 0);
	cr_assert(bpf_map_lookup_elem(idx, &k, &owner) != 0, "moved on: old endpoint unindexed");
	cr_assert_eq(xd_coa_set(&m, H_D, htonl(COA), htons(5555), XDNAT_COA_F_ACTIVE, 1), 0,
		     "free again: D may have it");
	cr_assert_eq(xd_coa_set(&m, H_B, htonl(G0), htons(5555), XDNAT_COA_F_ACTIVE, 1), -EINVAL);
	cr_assert_eq(xd_coa_set(&m, H_B, htonl(COA), 0, XDNAT_COA_F_ACTIVE, 1), -EINVAL);
	cr_assert_eq(xd_coa_set(&m, H_OUTSIDE, htonl(COA), htons(1), XDNAT_COA_F_ACTIVE, 1), -ERANGE);
	cr_assert_eq(xd_coa_clear(&m, H_B), 0);
	cr_assert_eq(xd_coa_get(&m, H_B, &c), 0);
	cr_assert(c.word == 0, "home: all zero");
	k.port = htons(5556);
	cr_assert(bpf_map_lookup_elem(idx, &k, &owner) != 0, "home: unindexed");
	cr_assert_eq(xd_coa_clear(&m, H_B), 0, "clearing twice is a no-op");
	cr_assert_eq(xd_host_del(&m, H_D), 0);
	cr_assert_eq(xd_coa_get(&m, H_D, &c), 0);
	cr_assert(c.word == 0, "a deleted host is home");
	xd_maps_close(&m);
}

/* Whatever classified the packet (ICMP error quote, fragment table), a host
 * away gets it at its care-of endpoint; so in one-arm mode. */
HOOK_TEST(roam, errors_fragments_onearm)
{
	struct cases cs = { 0 };
	struct pkt out, dg;
	struct ip4 ih;
	size_t qlen;

	dg_udp(&out, from_g(H_A, REMOTE_FAR), 20010, 53, 40);
	qlen = pkt_ip4_hlen(&out, 0) + 8;
	dg_icmp_err(&dg, REMOTE, G0, ICMP_UNREACH, 3, 0, out.b, qlen);
	roam_fwd(&cs, h->redirect, &dg, H_A, COA_PORT, "port unreachable quoting A's datagram");

	ih = hdr(REMOTE, G0);
	ih.id = 0x4242;
	ih.frag = IP_MF;
	dg_udp(&dg, ih, 53, 20010, 64);
	roam_fwd(&cs, h->redirect, &dg, H_A, COA_PORT, "first fragment to A's port");
	dg_frag(&dg, REMOTE, G0, PROTO_UDP, 0x4242, 72, false, 40);
	roam_fwd(&cs, h->redirect, &dg, H_A, COA_PORT, "later fragment: the table names A");
	run_cases(h->wan, &cs);

	use_onearm = true;
	dg_tcp(&dg, hdr(REMOTE, G0), 443, 20500, 200);
	roam_fwd(&cs, h->redirect, &dg, H_A, COA_PORT, "one-arm: TCP to A away");
	run_cases(h->wan, &cs);
	use_onearm = false;
}

/* ------------------------------------------------------------ host side, away */

#define AWAY_LOCAL IP4(10, 99, 0, 2) /* the host's address on the foreign network */
#define AWAY_PORT  43434
static const uint8_t MAC_AWAY[6] = { 0x02, 0, 0, 0, 0x99, 0x02 };
static const uint8_t MAC_NAT[6]  = { 0x02, 0, 0, 0, 0x99, 0x01 };

/* Host A away: the roam programs of xdnat_hostside in place of the LAN pair
 * (same counters), configured through xdnat_host_roam as a move would. */
static void hostside_away_up(void)
{
	struct xdnat_host_roam r = { .gaddr = htonl(G0), .ha_addr = htonl(G0),
				     .local_addr = htonl(AWAY_LOCAL), .local_port = htons(AWAY_PORT),
				     .flags = XDNAT_COA_F_ACTIVE };
	uint32_t zero = 0;

	hostside_up();
	HS->egress = bpf_program__fd(HS->skel->progs.xdnat_host_roam_egress);
	HS->ingress = bpf_program__fd(HS->skel->progs.xdnat_host_roam_ingress);
	map_set(bpf_map__fd(HS->skel->maps.xdnat_host_roam), zero, &r, "xdnat_host_roam");
}

TestSuite(host_away, .init = hostside_away_up, .fini = fini_all, .timeout = 120);

Test(host_away, egress)
{
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg;

	dg_tcp(&dg, hdr(G0, REMOTE), 20010, 443, 200);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_ROAM_ENCAP, "TCP from G0: tunnel data to G0:434");
	frame(&c->in, MAC_NAT, MAC_AWAY, &dg);
	udp_tunnel(&c->out, MAC_NAT, MAC_AWAY, AWAY_LOCAL, G0, AWAY_PORT, MIP_PORT, 4, 4, &dg);
	c->bytes = ip_totlen(&dg);
	dg_esp(&dg, nodf(hdr(G0, REMOTE)), 0xc0ffee00, 80);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_ROAM_ENCAP, "ESP from G0, no DF");
	frame(&c->in, MAC_NAT, MAC_AWAY, &dg);
	udp_tunnel(&c->out, MAC_NAT, MAC_AWAY, AWAY_LOCAL, G0, AWAY_PORT, MIP_PORT, 4, 4, &dg);
	c->bytes = ip_totlen(&dg);
	dg_udp(&dg, hdr(AWAY_LOCAL, G0), AWAY_PORT, MIP_PORT, 40);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_PASS, "registration from the local address: untouched");
	frame(&c->in, MAC_NAT, MAC_AWAY, &dg);
	c->bytes = (long long)c->in.len;
	run_cases(HOST_EGRESS, &cs);
}

Test(host_away, ingress)
{
	static const uint8_t rrp[20] = { 3, 0, 0, 60 }; /* registration reply */
	struct cases cs = { 0 };
	struct dp_case *c;
	struct pkt dg, reg;
	size_t o;

	dg_udp(&dg, hdr(REMOTE, G0), 53, 20010, 100);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_ROAM_DECAP, "tunnel data from the home agent: unwrapped");
	udp_tunnel(&c->in, MAC_AWAY, MAC_NAT, G0, AWAY_LOCAL, MIP_PORT, AWAY_PORT, 4, 4, &dg);
	frame(&c->out, MAC_AWAY, MAC_NAT, &dg);
	c->bytes = ip_totlen(&dg);

	c = case_add(&cs, TC_ACT_SHOT, XDNAT_HR_ROAM_DROP, "tunnel data, next header 55");
	udp_tunnel(&c->in, MAC_AWAY, MAC_NAT, G0, AWAY_LOCAL, MIP_PORT, AWAY_PORT, 4, 55, &dg);
	c->bytes = (long long)c->in.len;

	dg_udp(&reg, hdr(REMOTE, G1), 53, 20010, 100);
	c = case_add(&cs, TC_ACT_SHOT, XDNAT_HR_ROAM_DROP, "inner destination not G0");
	udp_tunnel(&c->in, MAC_AWAY, MAC_NAT, G0, AWAY_LOCAL, MIP_PORT, AWAY_PORT, 4, 4, &reg);
	c->bytes = (long long)c->in.len;

	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_PASS, "tunnel data to another port: not ours");
	udp_tunnel(&c->in, MAC_AWAY, MAC_NAT, G0, AWAY_LOCAL, MIP_PORT, AWAY_PORT + 1, 4, 4, &dg);
	c->bytes = (long long)c->in.len;
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_PASS, "tunnel data from another address: not ours");
	udp_tunnel(&c->in, MAC_AWAY, MAC_NAT, REMOTE, AWAY_LOCAL, MIP_PORT, AWAY_PORT, 4, 4, &dg);
	c->bytes = (long long)c->in.len;

	pkt_reset(&reg);
	o = pkt_ip4_begin(&reg, &(struct ip4){ .src = G0, .dst = AWAY_LOCAL, .proto = PROTO_UDP, .ttl = 60 });
	pkt_udp_data(&reg, o, MIP_PORT, AWAY_PORT, rrp, sizeof(rrp));
	pkt_ip4_end(&reg, o);
	c = case_add(&cs, TC_ACT_OK, XDNAT_HR_PASS, "registration reply: to the agent's socket");
	frame(&c->in, MAC_AWAY, MAC_NAT, &reg);
	c->bytes = (long long)c->in.len;
	run_cases(HOST_INGRESS, &cs);
}
