// SPDX-License-Identifier: GPL-2.0-only
/*
 * Malformed-packet corpus (issue 5, item 4): a property test of the router
 * datapath.  Valid frames (ESP, AH, TCP, UDP, ICMP echo, ICMP errors quoting
 * TCP/UDP/ESP/AH/echo, fragments, big DF/non-DF datagrams, IP options, and
 * IP-in-IP from hosts on the LAN side) are mutated at random -- truncated at
 * every length class, header fields flipped or randomised (version, IHL,
 * tot_len, flags/offset, protocol, TTL, addresses, checksums, ports, SPIs
 * 0..255 and block edges, ICMP type/code, the quoted header), junk appended
 * -- and each one is run with BPF_PROG_TEST_RUN through xdnat_wan_xdp and
 * xdnat_wan_tc (WAN frames) or xdnat_lan_xdp and xdnat_lan_tc (LAN frames).
 *
 * Every result is checked against a reference model written here from the
 * README / docs/DATAPATH-ROBUSTNESS.md verdict tables and the map ABI (it
 * shares no code with the programs): the model keeps its own copy of the
 * owner tables and of what the programs learn (fragment table, outbound
 * SAs), predicts the reason counter, the verdict and the output frame byte
 * for byte, and on top of that these invariants are checked on their own:
 *
 *   I1  the program runs (only frames < 14 bytes may be refused, EINVAL);
 *   I2  a frame tunnelled on the WAN side goes to the LAN address of exactly
 *       the host owning its SPI/port/echo id/fragment entry/quoted header,
 *       with an outer header as the ABI says (valid checksum) and the inner
 *       bytes unchanged; or it is an ICMP frag-needed, well formed, from the
 *       global address to the packet's source, quoting its header + 8;
 *   I3  nothing the model calls malformed or unowned goes to a host;
 *   I4  nothing leaves a host's tunnel for the WAN unless its inner source
 *       is the host's global address and its source port / echo id is the
 *       host's; hairpins go to the owner of the inner destination;
 *   I5  exactly one reason counter grows by one packet per run (the code
 *       has no multi-count path: every exit counts once).
 *
 * XDNAT_CORPUS_SEED (default fixed, printed) and XDNAT_CORPUS_N (frames per
 * policy run) override the defaults; a failure prints the frame in hex with
 * the seed and iteration, so it can be replayed.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
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

#include "xdnat_abi.h"
#include "xdnat_router.skel.h"
#include "pkt.h"
#include "dp_env.h"

#define DEFAULT_SEED 0x5eed0c0de5ull
#define DEFAULT_N    60000u

/* ------------------------------------------------------------ topology */

#define PIN_BASE   "/sys/fs/bpf/xdnat-corpus"
#define MAX_HOSTS  16u
#define SPI_BITS   16u
#define N_GADDRS   3u
#define MTU        1500u

#define G2             IP4(192, 0, 2, 129)

static const uint32_t GADDRS[N_GADDRS] = { G0, G1, G2 };

enum { H_A = 1, H_B, H_C, H_D, H_E, H_F, H_H, H_I, H_J, H_OUTSIDE = 100 };

static const struct hostdef HOSTS[] = {
	{ H_A, IP4(10, 77, 0, 2), { 2, 0, 0, 0, 0xaa, 0x02 }, true, 0, XDNAT_HOST_F_VALID, IP4(10, 77, 0, 2) },
	{ H_B, IP4(10, 77, 0, 3), { 2, 0, 0, 0, 0xaa, 0x03 }, true, 0, XDNAT_HOST_F_VALID, IP4(10, 77, 0, 3) },
	{ H_C, IP4(10, 77, 0, 4), { 2, 0, 0, 0, 0xaa, 0x04 }, true, 1, XDNAT_HOST_F_VALID, IP4(10, 77, 0, 4) },
	/* D: no neighbour entry. */
	{ H_D, IP4(10, 77, 0, 9), { 2, 0, 0, 0, 0xaa, 0x09 }, false, 0, XDNAT_HOST_F_VALID, IP4(10, 77, 0, 9) },
	/* E: allocated, not valid. */
	{ H_E, IP4(10, 77, 0, 5), { 2, 0, 0, 0, 0xaa, 0x05 }, true, 0, 0, IP4(10, 77, 0, 5) },
	/* F: G2; stale LAN index (10.77.0.66 -> F, F is .6). */
	{ H_F, IP4(10, 77, 0, 6), { 2, 0, 0, 0, 0xaa, 0x06 }, true, 2, XDNAT_HOST_F_VALID, IP4(10, 77, 0, 66) },
	/* H: LAN address off the LAN (routed out of the WAN NIC). */
	{ H_H, IP4(10, 99, 0, 1), { 2, 0, 0, 0, 0xaa, 0x0f }, false, 0, XDNAT_HOST_F_VALID, IP4(10, 99, 0, 1) },
	/* I: the other host of G2. */
	{ H_I, IP4(10, 77, 0, 8), { 2, 0, 0, 0, 0xaa, 0x08 }, true, 2, XDNAT_HOST_F_VALID, IP4(10, 77, 0, 8) },
	/* J: gaddr index beyond n_gaddrs (corrupt entry). */
	{ H_J, IP4(10, 77, 0, 10), { 2, 0, 0, 0, 0xaa, 0x0a }, true, 7, XDNAT_HOST_F_VALID, IP4(10, 77, 0, 10) },
};
#define N_HOSTDEFS (sizeof(HOSTS) / sizeof(HOSTS[0]))

/* Extra LAN index entries: an id outside the host array, and id 0. */
static const struct { uint32_t lan, id; } EXTRA_IDX[] = {
	{ IP4(10, 77, 0, 70), H_OUTSIDE }, { IP4(10, 77, 0, 71), 0 },
};

struct port_block { uint32_t gidx, first, last, id; };
static const struct port_block PORTS[] = {
	{ 0, 0, 0, H_A },         { 0, 20000, 20999, H_A }, { 0, 21000, 21999, H_B },
	{ 0, 65535, 65535, H_B }, { 0, 22000, 22099, H_D }, { 0, 23000, 23099, H_E },
	{ 0, 24000, 24009, H_H }, { 0, 25000, 25000, H_OUTSIDE }, { 0, 26000, 26009, H_J },
	{ 0, 31000, 31000, H_C }, { 1, 20000, 20999, H_C }, { 1, 30000, 30099, H_C },
	{ 1, 65535, 65535, H_C }, { 2, 0, 0, H_I },       { 2, 1024, 1100, H_I },
	{ 2, 40000, 40999, H_F }, { 2, 41000, 41999, H_I },
};
#define N_PORTS (sizeof(PORTS) / sizeof(PORTS[0]))

struct spi_block { uint32_t key, id; };
static const struct spi_block SPIS[] = {
	{ 0x0000, H_B }, { 0x0100, H_A }, { 0x0101, H_B }, { 0x0200, H_C }, { 0x0300, H_D },
	{ 0x0400, H_E }, { 0x0500, H_H }, { 0x0600, H_F }, { 0x0601, H_I },
	{ 0x0700, H_OUTSIDE }, { 0x0800, H_J }, { 0xffff, H_A },
};
#define N_SPIS (sizeof(SPIS) / sizeof(SPIS[0]))

/* Shared IKE ports (issue 8): kind and default host per global address.
 * G1's default host is invalid (E), G2's 500 names a host of G1 (C). */
struct shared_port { uint32_t gidx; uint16_t port; uint32_t kind, dflt; };
static const struct shared_port SHARED[] = {
	{ 0, 500, XDNAT_HOST_SHARED_IKE, H_A }, { 0, 4500, XDNAT_HOST_SHARED_NATT, 0 },
	{ 1, 500, XDNAT_HOST_SHARED_IKE, H_E }, { 1, 4500, XDNAT_HOST_SHARED_NATT, H_C },
	{ 2, 500, XDNAT_HOST_SHARED_IKE, H_C }, { 2, 4500, XDNAT_HOST_SHARED_NATT, H_I },
};
#define N_SHARED (sizeof(SHARED) / sizeof(SHARED[0]))

/* ------------------------------------------------------------ environment */

/* Private netns + bpffs and the topology of selftests/dp_env.h. */
static void env_up(void)
{
	dp_env_up(PIN_BASE, HOSTS, N_HOSTDEFS);
}

struct router {
	struct xdnat_router *skel;
	int prog[4];          /* WAN_XDP, LAN_XDP, WAN_TC, LAN_TC */
	int stats, hstats, frags;
	uint32_t flags;
};

static struct router *R;

enum prog_id { WAN_XDP, LAN_XDP, WAN_TC, LAN_TC };
static const char *const PROG_NAMES[] = { "xdnat_wan_xdp", "xdnat_lan_xdp", "xdnat_wan_tc",
					  "xdnat_lan_tc" };

static void map_set(int fd, uint32_t key, const void *val)
{
	cr_assert(bpf_map_update_elem(fd, &key, val, BPF_ANY) == 0, "map update [%u]: %s", key,
		  strerror(errno));
}

static void router_up(uint32_t flags)
{
	struct xdnat_router_cfg *cfg;
	struct xdnat_router *s;
	char dir[128];
	int err, hosts, idx, ports, spis, tx;
	uint32_t ifx;

	env_up();
	snprintf(dir, sizeof(dir), "%s/i%u", PIN_BASE, flags);
	cr_assert(mkdir(dir, 0700) == 0, "mkdir %s: %s", dir, strerror(errno));
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = dir);
	R = calloc(1, sizeof(*R));
	cr_assert(R, "out of memory");
	R->flags = flags;
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
	for (unsigned i = 0; i < N_GADDRS; i++)
		cfg->gaddrs[i] = htonl(GADDRS[i]);
	cr_assert(!bpf_map__set_max_entries(s->maps.xdnat_ports, N_GADDRS * XDNAT_PORTS_PER_GADDR) &&
		  !bpf_map__set_max_entries(s->maps.xdnat_spis, 1u << (32 - SPI_BITS)) &&
		  !bpf_map__set_max_entries(s->maps.xdnat_hosts, MAX_HOSTS) &&
		  !bpf_map__set_max_entries(s->maps.xdnat_lan_idx, MAX_HOSTS) &&
		  !bpf_map__set_max_entries(s->maps.xdnat_hstats, MAX_HOSTS), "set_max_entries");
	err = xdnat_router__load(s);
	cr_assert(err == 0, "loading xdnat_router: %s", strerror(-err));
	R->prog[WAN_XDP] = bpf_program__fd(s->progs.xdnat_wan_xdp);
	R->prog[LAN_XDP] = bpf_program__fd(s->progs.xdnat_lan_xdp);
	R->prog[WAN_TC] = bpf_program__fd(s->progs.xdnat_wan_tc);
	R->prog[LAN_TC] = bpf_program__fd(s->progs.xdnat_lan_tc);
	R->stats = bpf_map__fd(s->maps.xdnat_stats);
	R->hstats = bpf_map__fd(s->maps.xdnat_hstats);
	R->frags = bpf_map__fd(s->maps.xdnat_frags);

	hosts = bpf_map__fd(s->maps.xdnat_hosts);
	idx = bpf_map__fd(s->maps.xdnat_lan_idx);
	ports = bpf_map__fd(s->maps.xdnat_ports);
	spis = bpf_map__fd(s->maps.xdnat_spis);
	tx = bpf_map__fd(s->maps.xdnat_txports);
	ifx = (uint32_t)env.wan0;
	map_set(tx, XDNAT_TXPORT_WAN, &ifx);
	ifx = (uint32_t)env.lan0;
	map_set(tx, XDNAT_TXPORT_LAN, &ifx);
	for (size_t i = 0; i < N_HOSTDEFS; i++) {
		const struct hostdef *h = &HOSTS[i];
		struct xdnat_host v = { .lan_addr = htonl(h->lan), .gaddr_index = h->gidx,
					.flags = h->flags };
		__be32 key = htonl(h->idx_lan);

		map_set(hosts, h->id, &v);
		cr_assert(bpf_map_update_elem(idx, &key, &h->id, BPF_ANY) == 0, "lan_idx");
	}
	for (size_t i = 0; i < sizeof(EXTRA_IDX) / sizeof(EXTRA_IDX[0]); i++) {
		__be32 key = htonl(EXTRA_IDX[i].lan);

		cr_assert(bpf_map_update_elem(idx, &key, &EXTRA_IDX[i].id, BPF_ANY) == 0, "lan_idx");
	}
	for (size_t i = 0; i < N_PORTS; i++) {
		struct xdnat_owner o = { .host_id = PORTS[i].id };

		for (uint32_t p = PORTS[i].first; p <= PORTS[i].last; p++)
			map_set(ports, PORTS[i].gidx * XDNAT_PORTS_PER_GADDR + p, &o);
	}
	for (size_t i = 0; i < N_SPIS; i++) {
		struct xdnat_owner o = { .host_id = SPIS[i].id };

		map_set(spis, SPIS[i].key, &o);
	}
	for (size_t i = 0; i < N_SHARED; i++) {
		struct xdnat_owner o = { .host_id = SHARED[i].kind, .default_host = SHARED[i].dflt };

		map_set(ports, SHARED[i].gidx * XDNAT_PORTS_PER_GADDR + SHARED[i].port, &o);
	}
}

static void router_down(void)
{
	if (!R)
		return;
	xdnat_router__destroy(R->skel);
	free(R);
	R = NULL;
}

/* ------------------------------------------------------------ rng */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t rn(uint32_t n) /* 0 .. n-1 */
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

static bool chance(unsigned pct)
{
	return rn(100) < pct;
}

/* ------------------------------------------------------------ the model */

/*
 * The reference model: what the README and DATAPATH-ROBUSTNESS tables say
 * the router does, over its own copy of the tables the test installed and
 * of what the router learns at run time.
 */
struct mhost { uint32_t lan, gidx, flags; };

struct mfrag { uint32_t src, dst; uint16_t id; uint8_t proto; uint32_t host; bool fresh; };
struct mout { uint32_t spi, remote, host; };

#define MAX_MFRAG 32768
#define MAX_MOUT  8192

static struct {
	uint32_t *port_owner;         /* [gidx * 65536 + port] */
	uint32_t spi_owner[1u << (32 - SPI_BITS)];
	struct mhost host[MAX_HOSTS];
	struct mfrag *frag;
	size_t nfrag;
	struct mout *out;
	size_t nout;
	bool unknown_drop;
} M;

static void model_init(uint32_t flags)
{
	memset(M.spi_owner, 0, sizeof(M.spi_owner));
	memset(M.host, 0, sizeof(M.host));
	M.port_owner = calloc(N_GADDRS * 65536u, sizeof(uint32_t));
	M.frag = calloc(MAX_MFRAG, sizeof(*M.frag));
	M.out = calloc(MAX_MOUT, sizeof(*M.out));
	cr_assert(M.port_owner && M.frag && M.out, "out of memory");
	M.nfrag = M.nout = 0;
	M.unknown_drop = flags & XDNAT_F_UNKNOWN_DROP;
	for (size_t i = 0; i < N_HOSTDEFS; i++)
		if (HOSTS[i].id < MAX_HOSTS)
			M.host[HOSTS[i].id] = (struct mhost){ HOSTS[i].lan, HOSTS[i].gidx, HOSTS[i].flags };
	for (size_t i = 0; i < N_PORTS; i++)
		for (uint32_t p = PORTS[i].first; p <= PORTS[i].last; p++)
			M.port_owner[PORTS[i].gidx * 65536u + p] = PORTS[i].id;
	for (size_t i = 0; i < N_SPIS; i++)
		M.spi_owner[SPIS[i].key] = SPIS[i].id;
	for (size_t i = 0; i < N_SHARED; i++)
		M.port_owner[SHARED[i].gidx * 65536u + SHARED[i].port] = SHARED[i].kind;
}

static void model_fini(void)
{
	free(M.port_owner);
	free(M.frag);
	free(M.out);
	M.port_owner = NULL;
	M.frag = NULL;
	M.out = NULL;
}

static int m_gidx(uint32_t a)
{
	for (unsigned i = 0; i < N_GADDRS; i++)
		if (GADDRS[i] == a)
			return (int)i;
	return -1;
}

static const struct hostdef *hostdef_by_id(uint32_t id)
{
	for (size_t i = 0; i < N_HOSTDEFS; i++)
		if (HOSTS[i].id == id)
			return &HOSTS[i];
	return NULL;
}

/* LAN index lookup: the id listed under @lan, 0 if none. */
static uint32_t m_lan_idx(uint32_t lan)
{
	for (size_t i = 0; i < N_HOSTDEFS; i++)
		if (HOSTS[i].idx_lan == lan)
			return HOSTS[i].id;
	for (size_t i = 0; i < sizeof(EXTRA_IDX) / sizeof(EXTRA_IDX[0]); i++)
		if (EXTRA_IDX[i].lan == lan)
			return EXTRA_IDX[i].id;
	return 0;
}

static struct mfrag *m_frag_find(uint32_t src, uint32_t dst, uint16_t id, uint8_t proto)
{
	for (size_t i = 0; i < M.nfrag; i++) {
		struct mfrag *e = &M.frag[i];

		if (e->src == src && e->dst == dst && e->id == id && e->proto == proto)
			return e;
	}
	return NULL;
}

static void m_frag_learn(uint32_t src, uint32_t dst, uint16_t id, uint8_t proto, uint32_t host,
			 bool fresh)
{
	struct mfrag *e = m_frag_find(src, dst, id, proto);

	if (!e) {
		cr_assert(M.nfrag < MAX_MFRAG, "test bug: model fragment table full");
		e = &M.frag[M.nfrag++];
	}
	*e = (struct mfrag){ src, dst, id, proto, host, fresh };
}

static uint32_t m_out_find(uint32_t spi, uint32_t remote)
{
	for (size_t i = 0; i < M.nout; i++)
		if (M.out[i].spi == spi && M.out[i].remote == remote)
			return M.out[i].host;
	return 0;
}

static void m_out_learn(uint32_t spi, uint32_t remote, uint32_t host)
{
	for (size_t i = 0; i < M.nout; i++)
		if (M.out[i].spi == spi && M.out[i].remote == remote) {
			M.out[i].host = host;
			return;
		}
	cr_assert(M.nout < MAX_MOUT, "test bug: model SA table full");
	M.out[M.nout++] = (struct mout){ spi, remote, host };
}

enum act { ACT_PASS, ACT_DROP, ACT_FWD, ACT_UNKNOWN, ACT_HOLD };

struct decision {
	enum act act;
	int reason;
	uint32_t host;     /* WAN: owner; LAN: sender */
	uint32_t dst_host; /* LAN hairpin: receiver */
	bool hairpin;
};

static int decide(struct decision *d, enum act a, int reason)
{
	d->act = a;
	d->reason = reason;
	return 0;
}

/* The owner rule: nobody / not a valid host -> unknown policy; a host of
 * another global address -> drop; else forward. */
static int m_host_verdict(struct decision *d, uint32_t hid, int gidx, int fwd, int unknown)
{
	if (hid == 0 || hid >= MAX_HOSTS || !(M.host[hid].flags & XDNAT_HOST_F_VALID))
		return decide(d, ACT_UNKNOWN, unknown);
	if (M.host[hid].gidx != (uint32_t)gidx)
		return decide(d, ACT_DROP, XDNAT_R_DROP_WRONG_GADDR);
	d->host = hid;
	return decide(d, ACT_FWD, fwd);
}

static uint32_t m_port_owner(int gidx, uint16_t port)
{
	return M.port_owner[(uint32_t)gidx * 65536u + port];
}

/*
 * Shared IKE ports (docs/SHARED-IKE.md), read from the datagram @ip (valid,
 * not a later fragment, UDP).  What it names: a keepalive, an ESP-in-UDP
 * SPI, or an IKEv2 header's SPIs and Initiator flag.  The bytes used must be
 * inside the IP datagram and inside the UDP length.
 */
enum { MS_BAD, MS_KEEPALIVE, MS_ESP, MS_IKE, MS_OTHER };
struct mshared { uint32_t esp, spii, spir; bool rzero, init; };

static bool m_is_shared(uint32_t owner)
{
	return owner == XDNAT_HOST_SHARED_IKE || owner == XDNAT_HOST_SHARED_NATT;
}

static int m_shared_parse(const uint8_t *ip, uint32_t kind, struct mshared *v)
{
	unsigned hlen = (ip[0] & 15) * 4u, l4len = pkt_rd16(ip + 2) - hlen, ulen, have;
	const uint8_t *u = ip + hlen, *ike;

	if (l4len < 8)
		return MS_BAD;
	ulen = pkt_rd16(u + 4);
	have = ulen < l4len ? ulen : l4len;
	if (kind == XDNAT_HOST_SHARED_NATT) {
		if (ulen == 9)
			return l4len >= 9 && u[8] == 0xff ? MS_KEEPALIVE : MS_BAD;
		if (have < 12)
			return MS_BAD;
		v->esp = pkt_rd32(u + 8);
		if (v->esp)
			return MS_ESP;
		if (have < 12 + 28)
			return MS_BAD;
		ike = u + 12;
	} else {
		if (have < 8 + 28)
			return MS_BAD;
		ike = u + 8;
	}
	if ((ike[17] >> 4) != 2)
		return MS_OTHER;
	v->spii = pkt_rd32(ike);
	v->spir = pkt_rd32(ike + 8);
	v->rzero = !v->spir && !pkt_rd32(ike + 12);
	v->init = ike[19] & 0x08;
	return MS_IKE;
}

static uint32_t m_shared_default(int gidx, uint16_t port)
{
	for (size_t i = 0; i < N_SHARED; i++)
		if (SHARED[i].gidx == (uint32_t)gidx && SHARED[i].port == port)
			return SHARED[i].dflt;
	return 0;
}

/* WAN (or hairpin) UDP to a shared port. */
static int m_shared_in(struct decision *d, const uint8_t *ip, int gidx, uint32_t kind,
		       uint16_t port)
{
	struct mshared v = { 0 };

	switch (m_shared_parse(ip, kind, &v)) {
	case MS_BAD:
		return decide(d, ACT_DROP, XDNAT_R_DROP_MALFORMED);
	case MS_ESP:
		if (v.esp <= 255)
			return decide(d, ACT_DROP, XDNAT_R_DROP_SPI_RESERVED);
		return m_host_verdict(d, M.spi_owner[v.esp >> SPI_BITS], gidx,
				      XDNAT_R_ESP_UDP_TO_HOST, XDNAT_R_UNKNOWN_SPI);
	case MS_IKE:
		if (v.init && v.rzero) {
			m_host_verdict(d, m_shared_default(gidx, port), gidx, XDNAT_R_IKE_TO_DEFAULT,
				       XDNAT_R_IKE_NO_DEFAULT);
			if (d->act == ACT_UNKNOWN)
				d->act = ACT_DROP; /* no default host: dropped either way */
			return 0;
		}
		return m_host_verdict(d, M.spi_owner[(v.init ? v.spir : v.spii) >> SPI_BITS], gidx,
				      XDNAT_R_IKE_TO_HOST, XDNAT_R_UNKNOWN_IKE_SPI);
	default:
		return decide(d, ACT_UNKNOWN, XDNAT_R_UNKNOWN_SHARED);
	}
}

/* LAN: UDP from a shared port of @sender: forwarding reason or drop reason. */
static int m_shared_out(const uint8_t *ip, uint32_t kind, uint32_t sender)
{
	struct mshared v = { 0 };

	switch (m_shared_parse(ip, kind, &v)) {
	case MS_BAD:
		return XDNAT_R_DROP_MALFORMED;
	case MS_ESP:
	case MS_KEEPALIVE:
		return XDNAT_R_SHARED_UNCHECKED;
	case MS_IKE:
		if (!v.init && v.rzero)
			return XDNAT_R_SHARED_UNCHECKED;
		return M.spi_owner[(v.init ? v.spii : v.spir) >> SPI_BITS] == sender ?
			XDNAT_R_IKE_FROM_HOST : XDNAT_R_DROP_SPOOF_IKE;
	default:
		return XDNAT_R_DROP_SPOOF_IKE;
	}
}

/* An inbound ICMP error: the host whose packet (from G) it quotes. */
static int m_icmp_error(struct decision *d, const uint8_t *ip, unsigned hlen, unsigned tot,
			 int gidx)
{
	const uint8_t *e = ip + hlen + 8, *el4;
	unsigned ehlen;
	uint32_t hid;

	if (tot < hlen + 8 + 20 || (e[0] >> 4) != 4 || (e[0] & 15) < 5)
		return decide(d, ACT_DROP, XDNAT_R_DROP_MALFORMED);
	if (pkt_rd32(e + 12) != pkt_rd32(ip + 16) || (pkt_rd16(e + 6) & 0x1fff))
		return decide(d, ACT_UNKNOWN, XDNAT_R_ICMP_ERR_UNKNOWN);
	ehlen = (e[0] & 15) * 4u;
	if (hlen + 8 + ehlen + 8 > tot)
		return decide(d, ACT_DROP, XDNAT_R_DROP_MALFORMED);
	el4 = e + ehlen;
	switch (e[9]) {
	case PROTO_TCP:
	case PROTO_UDP:
		hid = m_port_owner(gidx, pkt_rd16(el4));
		break;
	case PROTO_ICMP:
		if (el4[0] != ICMP_ECHO)
			return decide(d, ACT_UNKNOWN, XDNAT_R_ICMP_ERR_UNKNOWN);
		hid = m_port_owner(gidx, pkt_rd16(el4 + 4));
		break;
	case PROTO_ESP:
		hid = m_out_find(pkt_rd32(el4), pkt_rd32(e + 16));
		break;
	case PROTO_AH:
		hid = m_out_find(pkt_rd32(el4 + 4), pkt_rd32(e + 16));
		break;
	default:
		return decide(d, ACT_UNKNOWN, XDNAT_R_ICMP_ERR_UNKNOWN);
	}
	return m_host_verdict(d, hid, gidx, XDNAT_R_ICMP_ERR_TO_HOST, XDNAT_R_ICMP_ERR_UNKNOWN);
}

/* A validated IPv4 datagram @ip to global address @gidx (WAN, or hairpin). */
static int m_inbound(struct decision *d, const uint8_t *ip, int gidx)
{
	unsigned hlen = (ip[0] & 15) * 4u, tot = pkt_rd16(ip + 2), l4len = tot - hlen;
	uint16_t frag = pkt_rd16(ip + 6);
	const uint8_t *l4 = ip + hlen;
	uint32_t hid, spi;
	int unknown;

	if (frag & 0x1fff) {
		struct mfrag *e = m_frag_find(pkt_rd32(ip + 12), pkt_rd32(ip + 16),
					      pkt_rd16(ip + 4), ip[9]);

		if (e && e->fresh)
			return m_host_verdict(d, e->host, gidx, XDNAT_R_FRAG_TO_HOST,
					      XDNAT_R_FRAGMENT);
		return decide(d, ACT_HOLD, XDNAT_R_FRAG_HELD);
	}
	switch (ip[9]) {
	case PROTO_ESP:
	case PROTO_AH:
		if (l4len < (ip[9] == PROTO_AH ? 8u : 4u))
			return decide(d, ACT_DROP, XDNAT_R_DROP_MALFORMED);
		spi = pkt_rd32(l4 + (ip[9] == PROTO_AH ? 4 : 0));
		if (spi <= 255)
			return decide(d, ACT_DROP, XDNAT_R_DROP_SPI_RESERVED);
		hid = M.spi_owner[spi >> SPI_BITS];
		unknown = XDNAT_R_UNKNOWN_SPI;
		break;
	case PROTO_TCP:
	case PROTO_UDP:
		if (l4len < 4)
			return decide(d, ACT_DROP, XDNAT_R_DROP_MALFORMED);
		hid = m_port_owner(gidx, pkt_rd16(l4 + 2));
		unknown = XDNAT_R_UNKNOWN_PORT;
		if (ip[9] == PROTO_UDP && m_is_shared(hid)) {
			m_shared_in(d, ip, gidx, hid, pkt_rd16(l4 + 2));
			goto learn;
		}
		break;
	case PROTO_ICMP:
		if (l4len < 8)
			return decide(d, ACT_DROP, XDNAT_R_DROP_MALFORMED);
		if (l4[0] == 3 || l4[0] == 11 || l4[0] == 12)
			return m_icmp_error(d, ip, hlen, tot, gidx);
		if (l4[0] != ICMP_ECHOREPLY)
			return decide(d, ACT_PASS, XDNAT_R_PASS_ICMP_LOCAL);
		hid = m_port_owner(gidx, pkt_rd16(l4 + 4));
		unknown = XDNAT_R_UNKNOWN_ICMP_ID;
		break;
	default:
		return decide(d, ACT_UNKNOWN, XDNAT_R_UNKNOWN_PROTO);
	}
	m_host_verdict(d, hid, gidx, XDNAT_R_WAN_TO_HOST, unknown);
learn:
	if (d->act == ACT_FWD && (frag & IP_MF)) /* a first fragment teaches */
		m_frag_learn(pkt_rd32(ip + 12), pkt_rd32(ip + 16), pkt_rd16(ip + 4), ip[9],
			     d->host, true);
	return 0;
}

/* version 4, IHL >= 5, IHL*4 <= tot_len <= @room. */
static bool m_ip_ok(const uint8_t *ip, size_t room)
{
	unsigned tot;

	if (room < 20 || (ip[0] >> 4) != 4 || (ip[0] & 15) < 5)
		return false;
	tot = pkt_rd16(ip + 2);
	return tot >= (ip[0] & 15) * 4u && tot <= room;
}

static int m_wan(struct decision *d, const struct pkt *f)
{
	const uint8_t *ip = f->b + 14;
	uint16_t et;
	int gidx;

	memset(d, 0, sizeof(*d));
	if (f->len < 14)
		return decide(d, ACT_DROP, XDNAT_R_DROP_MALFORMED);
	et = pkt_rd16(f->b + 12);
	if (et == ETHTYPE_VLAN || et == ETHTYPE_QINQ)
		return decide(d, ACT_PASS, XDNAT_R_PASS_VLAN);
	if (et != ETHTYPE_IPV4)
		return decide(d, ACT_PASS, XDNAT_R_PASS_NOT_IPV4);
	if (f->len < 34)
		return decide(d, ACT_DROP, XDNAT_R_DROP_MALFORMED);
	/* A global source from outside is forged, whatever the destination:
	 * the stack (accept_local=1) must never forward it. */
	if (m_gidx(pkt_rd32(ip + 12)) >= 0)
		return decide(d, ACT_DROP, XDNAT_R_DROP_SPOOF_SRC);
	gidx = m_gidx(pkt_rd32(ip + 16));
	if (gidx < 0)
		return decide(d, ACT_PASS, XDNAT_R_PASS_NOT_GLOBAL);
	if (!m_ip_ok(ip, f->len - 14))
		return decide(d, ACT_DROP, XDNAT_R_DROP_MALFORMED);
	return m_inbound(d, ip, gidx);
}

static int m_lan(struct decision *d, const struct pkt *f)
{
	const uint8_t *o = f->b + 14, *in = f->b + 34, *l4;
	uint32_t sender, osrc;
	int fwd_reason = XDNAT_R_HOST_TO_WAN;
	const struct mhost *h;
	uint16_t et;
	int gidx;

	memset(d, 0, sizeof(*d));
	if (f->len < 14)
		return decide(d, ACT_DROP, XDNAT_R_DROP_MALFORMED);
	et = pkt_rd16(f->b + 12);
	if (et == ETHTYPE_VLAN || et == ETHTYPE_QINQ)
		return decide(d, ACT_PASS, XDNAT_R_PASS_VLAN);
	if (et != ETHTYPE_IPV4)
		return decide(d, ACT_PASS, XDNAT_R_PASS_NOT_IPV4);
	if (f->len < 34 || (o[0] >> 4) != 4)
		return decide(d, ACT_PASS, XDNAT_R_PASS_LAN_OTHER);
	osrc = pkt_rd32(o + 12);
	if (m_gidx(osrc) >= 0)
		return decide(d, ACT_DROP, XDNAT_R_DROP_SPOOF_SRC);
	if (pkt_rd32(o + 16) != LAN_ROUTER || o[9] != PROTO_IPIP)
		return decide(d, ACT_PASS, XDNAT_R_PASS_LAN_OTHER);
	sender = m_lan_idx(osrc);
	if (sender == 0 || sender >= MAX_HOSTS || !(M.host[sender].flags & XDNAT_HOST_F_VALID) ||
	    M.host[sender].lan != osrc)
		return decide(d, ACT_DROP, XDNAT_R_DROP_UNREGISTERED);
	h = &M.host[sender];
	d->host = sender;
	if ((o[0] & 15) != 5 || !m_ip_ok(o, f->len - 14) || !m_ip_ok(in, f->len - 34) ||
	    pkt_rd16(o + 2) != pkt_rd16(in + 2) + 20)
		return decide(d, ACT_DROP, XDNAT_R_DROP_MALFORMED);
	if (pkt_rd16(o + 6) & (IP_MF | 0x1fff))
		return decide(d, ACT_DROP, XDNAT_R_FRAGMENT);
	if (h->gidx >= N_GADDRS || pkt_rd32(in + 12) != GADDRS[h->gidx])
		return decide(d, ACT_DROP, XDNAT_R_DROP_SPOOF_SRC);
	if (!(pkt_rd16(in + 6) & 0x1fff)) {
		unsigned hlen = (in[0] & 15) * 4u, l4len = pkt_rd16(in + 2) - hlen;
		int32_t port = -1;

		l4 = in + hlen;
		if (in[9] == PROTO_TCP || in[9] == PROTO_UDP) {
			if (l4len < 4)
				return decide(d, ACT_DROP, XDNAT_R_DROP_MALFORMED);
			port = pkt_rd16(l4);
		} else if (in[9] == PROTO_ICMP) {
			if (l4len < 8)
				return decide(d, ACT_DROP, XDNAT_R_DROP_MALFORMED);
			if (l4[0] == ICMP_ECHO || l4[0] == ICMP_ECHOREPLY)
				port = pkt_rd16(l4 + 4);
		}
		if (port >= 0 && in[9] == PROTO_UDP &&
		    m_is_shared(m_port_owner((int)h->gidx, (uint16_t)port))) {
			/* A shared IKE port: the host's IKE SPI is checked instead. */
			fwd_reason = m_shared_out(in, m_port_owner((int)h->gidx, (uint16_t)port),
						  sender);
			if (fwd_reason == XDNAT_R_DROP_MALFORMED || fwd_reason == XDNAT_R_DROP_SPOOF_IKE)
				return decide(d, ACT_DROP, fwd_reason);
		} else if (port >= 0 && m_port_owner((int)h->gidx, (uint16_t)port) != sender) {
			return decide(d, ACT_DROP, XDNAT_R_DROP_SPOOF_PORT);
		}
		/* The remote's SPI of an outbound SA: learnt for ICMP errors. */
		if ((in[9] == PROTO_ESP || in[9] == PROTO_AH) && l4len >= 8) {
			uint32_t spi = pkt_rd32(l4 + (in[9] == PROTO_AH ? 4 : 0));

			if (spi > 255)
				m_out_learn(spi, pkt_rd32(in + 16), sender);
		}
	}
	if (in[8] <= 1)
		return decide(d, ACT_DROP, XDNAT_R_DROP_TTL);
	gidx = m_gidx(pkt_rd32(in + 16));
	if (gidx >= 0) {
		struct decision dst = { 0 };

		m_inbound(&dst, in, gidx);
		if (dst.act == ACT_HOLD)
			return decide(d, ACT_DROP, XDNAT_R_FRAGMENT);
		if (dst.act != ACT_FWD) /* never to the stack: pass becomes drop */
			return decide(d, dst.act == ACT_UNKNOWN ? ACT_UNKNOWN : ACT_DROP, dst.reason);
		d->hairpin = true;
		d->dst_host = dst.host;
		return decide(d, ACT_FWD, XDNAT_R_HAIRPIN);
	}
	return decide(d, ACT_FWD, fwd_reason);
}

/* ------------------------------------------------------------ FIB model */

enum fib_kind { FIB_OK, FIB_NO_NEIGH, FIB_FAIL, FIB_UNSURE };

struct fib {
	enum fib_kind k;
	int ifindex;
	const uint8_t *mac;
};

/* Where the kernel routes @dst in the test topology. */
static struct fib m_route(uint32_t dst)
{
	struct fib r = { FIB_FAIL, 0, NULL };

	if (dst == WAN_ADDR || dst == LAN_ROUTER || dst == IP4(203, 0, 113, 255) ||
	    dst == IP4(10, 77, 0, 255) || (dst >> 24) == 127)
		return r; /* local / broadcast: not forwarded */
	if ((dst >> 24) == 0 || dst >= IP4(224, 0, 0, 0) || dst == IP4(203, 0, 113, 0) ||
	    dst == IP4(10, 77, 0, 0)) {
		r.k = FIB_UNSURE;
		return r;
	}
	if ((dst >> 8) == (WAN_ADDR >> 8)) {
		r.ifindex = env.wan0;
		r.k = dst == REMOTE || dst == WAN_GW ? FIB_OK : FIB_NO_NEIGH;
		r.mac = dst == REMOTE ? MAC_REMOTE : MAC_GW;
		return r;
	}
	if ((dst >> 8) == (LAN_ROUTER >> 8)) {
		r.ifindex = env.lan0;
		r.k = FIB_NO_NEIGH;
		for (size_t i = 0; i < N_HOSTDEFS; i++)
			if (HOSTS[i].lan == dst && HOSTS[i].has_neigh) {
				r.k = FIB_OK;
				r.mac = HOSTS[i].mac;
			}
		return r;
	}
	r.k = FIB_OK;
	r.ifindex = env.wan0;
	r.mac = MAC_GW;
	return r;
}

/* ------------------------------------------------------------ expectations */

#define MAX_ALT 8

struct alt {
	int reason;
	int verdict;
	struct pkt out;    /* expected frame */
	size_t ttl_off;    /* !0: IP header whose TTL went down: checksum by relation */
	uint32_t to_host, from_host;
	const char *what;
};

struct plan {
	bool refusable;
	int n;
	struct alt a[MAX_ALT];
};

static bool is_xdp(enum prog_id p)
{
	return p == WAN_XDP || p == LAN_XDP;
}

static int v_pass(enum prog_id p) { return is_xdp(p) ? XDP_PASS : TC_ACT_OK; }
static int v_drop(enum prog_id p) { return is_xdp(p) ? XDP_DROP : TC_ACT_SHOT; }
static int v_redir(enum prog_id p) { return is_xdp(p) ? XDP_REDIRECT : TC_ACT_REDIRECT; }

static struct alt *alt_add(struct plan *pl, int reason, int verdict, const struct pkt *out,
			   const char *what)
{
	struct alt *a;

	cr_assert(pl->n < MAX_ALT, "test bug: too many alternatives");
	a = &pl->a[pl->n++];
	memset(a, 0, sizeof(*a));
	a->reason = reason;
	a->verdict = verdict;
	a->out = *out;
	a->what = what;
	return a;
}

/* [eth][outer IPv4 as RFC 2003 + the ABI: TOS, ID, DF of the inner; TTL 64;
 * proto 4; tot_len inner + 20][all bytes of @in from @ip_off on]. */
static void tunnel_of(struct pkt *o, const uint8_t dmac[6], const uint8_t smac[6], uint32_t src,
		      uint32_t dst, const struct pkt *in, size_t ip_off)
{
	const uint8_t *ip = in->b + ip_off;
	struct ip4 h = { .src = src, .dst = dst, .proto = PROTO_IPIP, .tos = ip[1], .ttl = 64,
			 .id = pkt_rd16(ip + 4), .frag = pkt_rd16(ip + 6) & IP_DF };
	size_t off;

	pkt_reset(o);
	pkt_eth(o, dmac, smac, ETHTYPE_IPV4);
	off = pkt_ip4_begin(o, &h);
	pkt_put(o, ip, in->len - ip_off);
	pkt_wr16(o->b + off + 2, (uint16_t)(pkt_rd16(ip + 2) + 20));
	pkt_ip4_fix_csum(o, off);
}

/* ICMP frag-needed (RFC 792/1191) about the datagram at @in + @ip_off:
 * TOS 0xc0, TTL 64, ID 0, @src -> its source, quoting header + 8 bytes,
 * back to the MAC it came from; with @tun_dst wrapped in IP-in-IP from the
 * router's LAN address. */
static void frag_needed_of(struct pkt *o, const struct pkt *in, size_t ip_off, uint32_t src,
			   uint16_t mtu, uint32_t tun_dst)
{
	const uint8_t *ip = in->b + ip_off;
	size_t qlen = (ip[0] & 15) * 4u + 8;
	struct ip4 h = { .src = src, .dst = pkt_rd32(ip + 12), .proto = PROTO_ICMP, .tos = 0xc0,
			 .ttl = 64 };
	struct pkt icmp, tmp;
	size_t off, io;
	uint8_t *c;

	pkt_reset(&icmp);
	off = pkt_ip4_begin(&icmp, &h);
	io = icmp.len;
	c = pkt_put(&icmp, NULL, 8);
	c[0] = ICMP_UNREACH;
	c[1] = 4;
	pkt_wr16(c + 6, mtu);
	pkt_put(&icmp, ip, qlen);
	pkt_wr16(icmp.b + io + 2, pkt_csum(icmp.b + io, 8 + qlen));
	pkt_ip4_end(&icmp, off);
	if (tun_dst) {
		pkt_reset(&tmp);
		pkt_eth(&tmp, in->b + 6, in->b, ETHTYPE_IPV4);
		pkt_put(&tmp, icmp.b, icmp.len);
		tunnel_of(o, in->b + 6, in->b, LAN_ROUTER, tun_dst, &tmp, 14);
		return;
	}
	pkt_reset(o);
	pkt_eth(o, in->b + 6, in->b, ETHTYPE_IPV4);
	pkt_put(o, icmp.b, icmp.len);
}

/* @in without the outer header (LAN decap), Ethernet per @mac (NULL: kept),
 * inner TTL - 1 when @ttl. */
static void decap_of(struct pkt *o, const struct pkt *in, const uint8_t *mac, bool ttl)
{
	pkt_reset(o);
	if (mac)
		pkt_eth(o, mac, MAC_WAN0, ETHTYPE_IPV4);
	else
		pkt_put(o, in->b, 14);
	pkt_put(o, in->b + 34, in->len - 34);
	if (ttl)
		o->b[14 + 8]--;
}

/* RFC 1812 4.3.2.7: may the router answer @ip (@len bytes) with an ICMP
 * error?  Not about ICMP errors, later fragments, non-unicast addresses. */
static bool m_icmp_err_ok(const uint8_t *ip, size_t len)
{
	uint32_t src = pkt_rd32(ip + 12), dst = pkt_rd32(ip + 16);
	size_t hl = (size_t)(ip[0] & 0xf) * 4;

	if ((src >> 24) == 0 || (src >> 24) == 127 || (src >> 28) >= 0xe || (dst >> 28) >= 0xe ||
	    (pkt_rd16(ip + 6) & 0x1fff))
		return false;
	if (ip[9] == 1) {
		uint8_t t;

		if (hl >= len || hl >= pkt_rd16(ip + 2))
			return false;
		t = ip[hl];
		if (t == 3 || t == 4 || t == 5 || t == 11 || t == 12)
			return false;
	}
	return true;
}

/* The WAN-side expectations of an owned packet (after the classification). */
static void plan_wan_fwd(struct plan *pl, enum prog_id p, const struct pkt *in,
			 const struct decision *d)
{
	const struct hostdef *h = hostdef_by_id(d->host);
	const uint8_t *ip = in->b + 14;
	unsigned tot = pkt_rd16(ip + 2);
	struct fib r = m_route(h->lan);
	struct pkt o;
	struct alt *a;

	cr_assert(r.k == FIB_OK || r.k == FIB_NO_NEIGH, "test bug: host route");
	if (tot + 20 > MTU) {
		if ((pkt_rd16(ip + 6) & IP_DF) && !m_icmp_err_ok(ip, in->len - 14)) {
			alt_add(pl, XDNAT_R_DROP_TOO_BIG, v_drop(p), in, "too big, no ICMP error allowed");
		} else if (pkt_rd16(ip + 6) & IP_DF) {
			frag_needed_of(&o, in, 14, pkt_rd32(ip + 16), MTU - 20, 0);
			alt_add(pl, XDNAT_R_TOO_BIG_ICMP, v_redir(p), &o, "frag-needed (WAN)");
		} else {
			tunnel_of(&o, in->b, in->b + 6, LAN_ROUTER, h->lan, in, 14);
			alt_add(pl, XDNAT_R_PASS_TOO_BIG, v_pass(p), &o, "tunnel, too big: stack");
		}
		return;
	}
	if (r.ifindex != env.lan0) {
		alt_add(pl, XDNAT_R_DROP_NO_ROUTE, v_drop(p), in, "host routed off the LAN");
		return;
	}
	if (r.k == FIB_NO_NEIGH) {
		tunnel_of(&o, in->b, in->b + 6, LAN_ROUTER, h->lan, in, 14);
		if (is_xdp(p)) {
			alt_add(pl, XDNAT_R_PASS_NO_NEIGH, XDP_PASS, &o, "tunnel, no neighbour: stack");
		} else {
			a = alt_add(pl, d->reason, TC_ACT_REDIRECT, &o, "tunnel, redirect_neigh");
			a->to_host = d->host;
		}
		return;
	}
	tunnel_of(&o, h->mac, MAC_LAN0, LAN_ROUTER, h->lan, in, 14);
	a = alt_add(pl, d->reason, v_redir(p), &o, "tunnel to the owner");
	a->to_host = d->host;
}

/* Host -> WAN for one FIB answer @r (several when the route is unsure). */
static void plan_lan_out(struct plan *pl, enum prog_id p, const struct pkt *in,
			 const struct decision *d, struct fib r)
{
	const uint8_t *o = in->b + 14, *ip = in->b + 34;
	unsigned tot = pkt_rd16(ip + 2);
	struct pkt out;
	struct alt *a;

	if (r.k == FIB_FAIL) {
		alt_add(pl, XDNAT_R_DROP_NO_ROUTE, v_drop(p), in, "no route");
		return;
	}
	if (tot > MTU) {
		if ((pkt_rd16(ip + 6) & IP_DF) && !m_icmp_err_ok(ip, in->len - 34)) {
			alt_add(pl, XDNAT_R_DROP_TOO_BIG, v_drop(p), in, "too big, no ICMP error allowed");
		} else if (pkt_rd16(ip + 6) & IP_DF) {
			frag_needed_of(&out, in, 34, LAN_ROUTER, MTU, pkt_rd32(o + 12));
			alt_add(pl, XDNAT_R_TOO_BIG_ICMP, v_redir(p), &out, "frag-needed (LAN)");
		} else {
			decap_of(&out, in, NULL, false);
			alt_add(pl, XDNAT_R_PASS_TOO_BIG, v_pass(p), &out, "decap, too big: stack");
		}
		return;
	}
	/* README: "no route / route not via the WAN NIC: drop", whether or
	 * not the neighbour is resolved. */
	if (r.ifindex != env.wan0) {
		alt_add(pl, XDNAT_R_DROP_NO_ROUTE, v_drop(p), in, "routed off the WAN");
		return;
	}
	if (r.k == FIB_NO_NEIGH) {
		if (is_xdp(p)) {
			decap_of(&out, in, NULL, false);
			alt_add(pl, XDNAT_R_PASS_NO_NEIGH, XDP_PASS, &out, "decap, no neighbour: stack");
		} else {
			decap_of(&out, in, NULL, true);
			a = alt_add(pl, d->reason, TC_ACT_REDIRECT, &out, "decap, redirect_neigh");
			a->ttl_off = 14;
			a->from_host = d->host;
		}
		return;
	}
	decap_of(&out, in, r.mac, true);
	a = alt_add(pl, d->reason, v_redir(p), &out, "decap to the WAN");
	a->ttl_off = 14;
	a->from_host = d->host;
}

static void plan_hairpin(struct plan *pl, enum prog_id p, const struct pkt *in,
			 const struct decision *d)
{
	const struct hostdef *h = hostdef_by_id(d->dst_host);
	unsigned otot = pkt_rd16(in->b + 14 + 2);
	struct fib r = m_route(h->lan);
	struct pkt out;
	struct alt *a;

	if (otot > MTU) {
		alt_add(pl, XDNAT_R_PASS_TOO_BIG, v_drop(p), in, "hairpin too big");
		return;
	}
	if (r.ifindex != env.lan0) {
		alt_add(pl, XDNAT_R_DROP_NO_ROUTE, v_drop(p), in, "hairpin host off the LAN");
		return;
	}
	if (r.k == FIB_NO_NEIGH && is_xdp(p)) {
		alt_add(pl, XDNAT_R_PASS_NO_NEIGH, XDP_DROP, in, "hairpin, no neighbour");
		return;
	}
	out = *in;
	if (r.k == FIB_OK) {
		memcpy(out.b, h->mac, 6);
		memcpy(out.b + 6, MAC_LAN0, 6);
	}
	pkt_wr32(out.b + 14 + 12, LAN_ROUTER);
	pkt_wr32(out.b + 14 + 16, h->lan);
	out.b[14 + 8] = 64;
	pkt_ip4_fix_csum(&out, 14);
	out.b[34 + 8]--;
	a = alt_add(pl, XDNAT_R_HAIRPIN, is_xdp(p) ? XDP_TX : TC_ACT_REDIRECT, &out, "hairpin");
	a->ttl_off = 34;
	a->from_host = d->host;
	a->to_host = d->dst_host;
}

/* Everything the model expects of running @in through @p. */
static void plan_of(struct plan *pl, enum prog_id p, const struct pkt *in, struct decision *d)
{
	bool wan = p == WAN_XDP || p == WAN_TC;

	memset(pl, 0, sizeof(*pl));
	/* BPF_PROG_TEST_RUN refuses frames without an Ethernet header, and
	 * for tc (6.18) also IPv4/IPv6 frames without a whole L3 header: the
	 * program never sees them (then nothing may be counted). */
	pl->refusable = in->len < 14 ||
			(!is_xdp(p) && pkt_rd16(in->b + 12) == ETHTYPE_IPV4 && in->len < 34) ||
			(!is_xdp(p) && pkt_rd16(in->b + 12) == ETHTYPE_IPV6 && in->len < 54);
	if (wan)
		m_wan(d, in);
	else
		m_lan(d, in);
	switch (d->act) {
	case ACT_PASS:
		alt_add(pl, d->reason, v_pass(p), in, "pass");
		break;
	case ACT_DROP:
		alt_add(pl, d->reason, v_drop(p), in, "drop");
		break;
	case ACT_HOLD: /* no slow-path reader here: unknown policy */
		d->reason = XDNAT_R_FRAGMENT;
		/* fall through */
	case ACT_UNKNOWN:
		alt_add(pl, d->reason, wan && !M.unknown_drop ? v_pass(p) : v_drop(p), in, "unknown");
		break;
	case ACT_FWD:
		if (wan) {
			plan_wan_fwd(pl, p, in, d);
		} else if (d->hairpin) {
			plan_hairpin(pl, p, in, d);
		} else {
			struct fib r = m_route(pkt_rd32(in->b + 34 + 16));

			if (r.k != FIB_UNSURE) {
				plan_lan_out(pl, p, in, d, r);
			} else {
				plan_lan_out(pl, p, in, d, (struct fib){ FIB_FAIL, 0, NULL });
				plan_lan_out(pl, p, in, d, (struct fib){ FIB_OK, env.wan0, MAC_GW });
				plan_lan_out(pl, p, in, d, (struct fib){ FIB_NO_NEIGH, env.wan0, NULL });
			}
		}
		break;
	}
}

/* ------------------------------------------------------------ running */

struct counters {
	uint64_t r[XDNAT_R_MAX];
	uint64_t to[MAX_HOSTS], from[MAX_HOSTS];
};

static void *percpu_buf;

static void counters_read(struct counters *c)
{
	memset(c, 0, sizeof(*c));
	for (uint32_t k = 0; k < XDNAT_R_MAX; k++) {
		const struct xdnat_counter *v = percpu_buf;

		cr_assert(bpf_map_lookup_elem(R->stats, &k, percpu_buf) == 0, "stats lookup");
		for (int cpu = 0; cpu < env.ncpus; cpu++)
			c->r[k] += v[cpu].packets;
	}
	for (uint32_t k = 0; k < MAX_HOSTS; k++) {
		const struct xdnat_host_pcpu *v = percpu_buf;

		cr_assert(bpf_map_lookup_elem(R->hstats, &k, percpu_buf) == 0, "hstats lookup");
		for (int cpu = 0; cpu < env.ncpus; cpu++) {
			c->to[k] += v[cpu].stats.to_host_packets;
			c->from[k] += v[cpu].stats.from_host_packets;
		}
	}
}

struct result {
	int err;
	int verdict;
	struct pkt out;
	int64_t dr[XDNAT_R_MAX], dto[MAX_HOSTS], dfrom[MAX_HOSTS];
};

static struct counters cnt_before;

static void run_prog(enum prog_id p, const struct pkt *in, struct result *res)
{
	static uint8_t out[PKT_MAX + 256];
	struct counters after;
	struct xdp_md xctx;
	struct __sk_buff sctx;
	int ifx = p == WAN_XDP || p == WAN_TC ? env.wan0 : env.lan0;

	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in->b, .data_size_in = (__u32)in->len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
	memset(&xctx, 0, sizeof(xctx));
	memset(&sctx, 0, sizeof(sctx));
	if (is_xdp(p)) {
		xctx.data_end = (__u32)in->len;
		xctx.ingress_ifindex = (__u32)ifx;
		o.ctx_in = &xctx;
		o.ctx_size_in = sizeof(xctx);
	} else {
		sctx.ifindex = (__u32)ifx;
		sctx.ingress_ifindex = (__u32)ifx;
		o.ctx_in = &sctx;
		o.ctx_size_in = sizeof(sctx);
	}
	res->err = bpf_prog_test_run_opts(R->prog[p], &o);
	res->verdict = (int)o.retval;
	pkt_reset(&res->out);
	if (!res->err) {
		cr_assert(o.data_size_out <= PKT_MAX, "output of %u bytes", o.data_size_out);
		pkt_put(&res->out, out, o.data_size_out);
	}
	counters_read(&after);
	for (unsigned k = 0; k < XDNAT_R_MAX; k++)
		res->dr[k] = (int64_t)(after.r[k] - cnt_before.r[k]);
	for (unsigned k = 0; k < MAX_HOSTS; k++) {
		res->dto[k] = (int64_t)(after.to[k] - cnt_before.to[k]);
		res->dfrom[k] = (int64_t)(after.from[k] - cnt_before.from[k]);
	}
	cnt_before = after;
}

/* Output equal to @a's frame; at @a->ttl_off the IP checksum must be the
 * input's adjusted for the TTL decrement: the header's one's complement sum
 * is unchanged modulo 0xffff (RFC 1624), so a valid checksum stays valid
 * and a broken one stays exactly as broken. */
static bool out_matches(const struct alt *a, const struct pkt *in, const struct pkt *got,
			size_t in_ttl_off)
{
	size_t ck = a->ttl_off ? a->ttl_off + 10 : (size_t)-1;

	if (got->len != a->out.len)
		return false;
	for (size_t i = 0; i < got->len; i++)
		if (i != ck && i != ck + 1 && got->b[i] != a->out.b[i])
			return false;
	if (a->ttl_off) {
		const uint8_t *oh = in->b + in_ttl_off, *gh = got->b + a->ttl_off;
		size_t hl = (oh[0] & 15) * 4u;

		if (pkt_sum(oh, hl, 0) % 0xffff != pkt_sum(gh, hl, 0) % 0xffff)
			return false;
	}
	return true;
}

/* ------------------------------------------------------------ invariants */

static bool csum_ok(const uint8_t *d, size_t n)
{
	return pkt_fold(pkt_sum(d, n, 0)) == 0;
}

/* Independent invariants, on the actual result only (@d: the model's view
 * of who owns the packet).  Returns a message, or NULL. */
static const char *invariants(enum prog_id p, const struct pkt *in, const struct result *res,
			      const struct decision *d)
{
	bool wan = p == WAN_XDP || p == WAN_TC;
	bool changed = res->out.len != in->len || memcmp(res->out.b, in->b, in->len);
	bool sent = res->verdict == v_redir(p) || (is_xdp(p) && res->verdict == XDP_TX) ||
		    (changed && res->verdict == v_pass(p));
	const uint8_t *ob = res->out.b;
	int64_t sum = 0;

	if (res->err)
		return "I1: BPF_PROG_TEST_RUN failed";
	if (is_xdp(p) ? (res->verdict < XDP_DROP || res->verdict > XDP_REDIRECT) :
			(res->verdict != TC_ACT_OK && res->verdict != TC_ACT_SHOT &&
			 res->verdict != TC_ACT_REDIRECT))
		return "I1: unexpected verdict";
	for (unsigned k = 0; k < XDNAT_R_MAX; k++) {
		if (res->dr[k] < 0 || res->dr[k] > 1)
			return "I5: a reason counter moved by other than 0 or 1";
		sum += res->dr[k];
	}
	if (sum != 1)
		return "I5: reason counter deltas do not sum to 1";
	if (!sent)
		return NULL;
	if (res->out.len < 34 || pkt_rd16(ob + 12) != ETHTYPE_IPV4)
		return "I2: frame sent without an IPv4 header";
	/* LAN: a decapsulated datagram is the frame less 20 bytes (whatever it
	 * carries, even IP-in-IP, and with its own checksum, right or wrong). */
	if (!wan && res->out.len + 20 == in->len)
		goto leaves_for_wan;
	/* Otherwise a header the router wrote: it must be valid. */
	if (!csum_ok(ob + 14, 20))
		return "I2: router-written IPv4 header with a bad checksum";
	if (ob[14 + 9] == PROTO_ICMP && res->out.len >= 42 && ob[34] == 3 && ob[35] == 4 &&
	    ob[14] == 0x45 && ob[15] == 0xc0) {
		/* frag-needed from G (WAN) back to the sender */
		const uint8_t *ip = in->b + 14;
		size_t q = (ip[0] & 15) * 4u + 8;

		if (!wan)
			return "I2: bare ICMP sent on the LAN side";
		if (d->act != ACT_FWD)
			return "I3: frag-needed for a packet nobody owns";
		if (pkt_rd32(ob + 14 + 16) != pkt_rd32(ip + 12) || pkt_rd32(ob + 14 + 12) != pkt_rd32(ip + 16) ||
		    memcmp(ob, in->b + 6, 6) || res->out.len != 42 + q ||
		    pkt_rd16(ob + 16) != 28 + q || !csum_ok(ob + 34, 8 + q) ||
		    memcmp(ob + 42, ip, q))
			return "I2: malformed frag-needed";
		return NULL;
	}
	if (ob[14 + 9] == PROTO_IPIP) {
		const struct hostdef *h;
		uint32_t owner;

		if (res->out.len < 54 || (ob[14] & 15) != 5 || ob[14 + 8] != 64 ||
		    pkt_rd32(ob + 14 + 12) != LAN_ROUTER)
			return "I2: bad outer header";
		if (wan) {
			if (d->act != ACT_FWD)
				return "I3: tunnelled a packet the model says is unowned/malformed";
			owner = d->host;
			if (res->out.len != in->len + 20 || memcmp(ob + 34, in->b + 14, in->len - 14))
				return "I2: inner bytes changed";
			if (pkt_rd16(ob + 16) != pkt_rd16(in->b + 16) + 20 || ob[15] != in->b[15] ||
			    pkt_rd16(ob + 18) != pkt_rd16(in->b + 18) ||
			    pkt_rd16(ob + 20) != (pkt_rd16(in->b + 20) & IP_DF))
				return "I2: outer header not per the ABI";
		} else {
			if (d->act != ACT_FWD)
				return "I4: re-tunnelled a packet the model rejects";
			if (ob[34 + 9] == PROTO_ICMP && ob[54] == 3 && ob[55] == 4)
				return NULL; /* frag-needed back to the sender, checked exactly */
			owner = d->dst_host;
		}
		h = hostdef_by_id(owner);
		if (!h || pkt_rd32(ob + 14 + 16) != h->lan)
			return "I2: tunnel to a host that does not own the packet";
		return NULL;
	}
	if (wan)
		return "I2: WAN frame sent neither tunnelled nor as frag-needed";
	return "I2: LAN frame sent neither decapsulated nor tunnelled";
leaves_for_wan:
	/* Leaving for the WAN: sender registered, inner source its G, source
	 * port / echo id its own. */
	{
		const uint8_t *o = in->b + 14, *ip = in->b + 34;
		uint32_t s = in->len >= 54 ? m_lan_idx(pkt_rd32(o + 12)) : 0;
		const struct hostdef *h = s ? hostdef_by_id(s) : NULL;
		unsigned hl = (ip[0] & 15) * 4u;

		if (!h || !(h->flags & XDNAT_HOST_F_VALID) || h->lan != pkt_rd32(o + 12) ||
		    h->gidx >= N_GADDRS)
			return "I4: sent for an unregistered sender";
		if (pkt_rd32(ip + 12) != GADDRS[h->gidx] || pkt_rd32(ob + 14 + 12) != GADDRS[h->gidx])
			return "I4: inner source is not the sender's global address";
		if (!(pkt_rd16(ip + 6) & 0x1fff) && in->len >= 34 + hl + 8) {
			int32_t port = -1;

			if (ip[9] == PROTO_TCP || ip[9] == PROTO_UDP)
				port = pkt_rd16(ip + hl);
			else if (ip[9] == PROTO_ICMP && (ip[hl] == 0 || ip[hl] == 8))
				port = pkt_rd16(ip + hl + 4);
			if (port >= 0 && ip[9] == PROTO_UDP &&
			    m_is_shared(m_port_owner((int)h->gidx, (uint16_t)port))) {
				int r = m_shared_out(ip, m_port_owner((int)h->gidx, (uint16_t)port), s);

				if (r != XDNAT_R_IKE_FROM_HOST && r != XDNAT_R_SHARED_UNCHECKED)
					return "I4: shared IKE port without the sender's IKE SPI";
			} else if (port >= 0 && m_port_owner((int)h->gidx, (uint16_t)port) != s) {
				return "I4: source port / echo id not the sender's";
			}
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ generator */

static uint32_t pick_port(int gidx)
{
	const struct port_block *b;

	switch (rn(6)) {
	case 0:
		return rn(65536);
	case 1:
		return rn(2) ? 0 : 65535;
	default:
		b = &PORTS[rn(N_PORTS)];
		if (gidx >= 0 && chance(60)) /* prefer blocks of this address */
			for (int t = 0; t < 8 && b->gidx != (uint32_t)gidx; t++)
				b = &PORTS[rn(N_PORTS)];
		switch (rn(5)) {
		case 0: return (b->first - 1) & 0xffff;
		case 1: return b->first;
		case 2: return b->last;
		case 3: return (b->last + 1) & 0xffff;
		default: return b->first + rn(b->last - b->first + 1);
		}
	}
}

static uint32_t pick_spi(void)
{
	const struct spi_block *b = &SPIS[rn(N_SPIS)];

	switch (rn(8)) {
	case 0: return rn(256);
	case 1: return 256;
	case 2: return (uint32_t)rnd();
	case 3: return 0xffffffffu;
	case 4: return b->key << SPI_BITS;
	case 5: return b->key << SPI_BITS | 0xffff;
	case 6: return (b->key << SPI_BITS) - 1;
	default: return b->key << SPI_BITS | rn(65536);
	}
}

static uint32_t pick_addr(void)
{
	static const uint32_t pool[] = {
		G0, G1, G2, NOT_GLOBAL, REMOTE, REMOTE_FAR, REMOTE_NONEIGH, WAN_ADDR, WAN_GW,
		LAN_ROUTER, LAN_STRAY, IP4(10, 77, 0, 2), IP4(10, 77, 0, 3), IP4(10, 77, 0, 66),
		IP4(10, 77, 0, 70), IP4(10, 77, 0, 71), IP4(10, 99, 0, 1), 0, 0xffffffffu,
		IP4(224, 0, 0, 1), IP4(127, 0, 0, 1), IP4(10, 77, 0, 255),
	};

	return chance(90) ? pool[rn(sizeof(pool) / sizeof(pool[0]))] : (uint32_t)rnd();
}

static const uint8_t PROTOS[] = { PROTO_ICMP, PROTO_IPIP, PROTO_TCP, PROTO_UDP, PROTO_GRE,
				  PROTO_ESP, PROTO_AH, 0, 41, 132, 255 };

static struct ip4 gen_hdr(uint32_t src, uint32_t dst)
{
	static const uint8_t opts[40] = { 0x94, 0x04, 0, 0, 1, 1, 1, 1, 0x07, 0x0b, 0x04,
					  1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 1, 1, 1, 1, 1 };
	struct ip4 h = { .src = src, .dst = dst, .ttl = (uint8_t)(chance(90) ? 64 : rn(3)),
			 .id = (uint16_t)(0x1000 + rn(4)), .tos = (uint8_t)(chance(80) ? 0 : rnd()),
			 .frag = (uint16_t)(chance(60) ? IP_DF : 0) };

	if (chance(15)) {
		h.opt = opts;
		h.opt_len = 1 + rn(40);
	}
	return h;
}

/*
 * UDP on a shared IKE port (500/4500): IKE with or without the marker,
 * ESP-in-UDP, keepalives; SPIs from the blocks, zero or random; the Initiator
 * flag either way; sometimes cut short or with a lying UDP length.
 * Inbound the shared port is the destination, outbound the source.
 */
static void gen_shared_udp(struct pkt *d, size_t o, bool inbound)
{
	uint16_t sh = chance(50) ? 500 : 4500, other = chance(70) ? sh : (uint16_t)rn(65536);
	uint8_t b[160] = { 0 };
	size_t n = 0, body = rn(100);

	switch (rn(10)) {
	case 0:
		b[0] = chance(80) ? 0xff : (uint8_t)rnd();
		n = 1;
		break;
	case 1:
	case 2:
		pkt_wr32(b, chance(90) ? pick_spi() : 0);
		pkt_wr32(b + 4, (uint32_t)rnd());
		n = 8 + body;
		break;
	default: {
		uint64_t spii = chance(70) ? (uint64_t)pick_spi() << 32 | (uint32_t)rnd() : rnd();
		uint64_t spir = chance(30) ? 0 : chance(70) ? (uint64_t)pick_spi() << 32 | (uint32_t)rnd() :
			rnd();
		uint8_t *ike;

		if (chance(85) ? sh == 4500 : chance(50))
			n = 4; /* non-ESP marker */
		ike = b + n;
		pkt_wr32(ike, (uint32_t)(spii >> 32));
		pkt_wr32(ike + 4, (uint32_t)spii);
		pkt_wr32(ike + 8, (uint32_t)(spir >> 32));
		pkt_wr32(ike + 12, (uint32_t)spir);
		ike[16] = 33;
		ike[17] = chance(90) ? 0x20 : (uint8_t)rnd();
		ike[18] = 34;
		ike[19] = (uint8_t)(chance(80) ? (chance(50) ? 0x08 : 0x20) : rnd());
		pkt_wr32(ike + 24, (uint32_t)(28 + body));
		n += 28 + body;
	}
	}
	if (chance(15))
		n = rn((uint32_t)n + 1);
	pkt_udp_data(d, o, inbound ? other : sh, inbound ? sh : other, b, n);
	if (chance(8)) /* the UDP length disagrees with the datagram */
		pkt_wr16(d->b + o + (d->b[o] & 15) * 4u + 4, (uint16_t)rn(60));
}

/* One L4 payload of @proto after the IPv4 header begun at @o. */
static void gen_l4(struct pkt *d, size_t o, uint8_t proto, int gidx, bool inbound, size_t pay)
{
	uint16_t mine = (uint16_t)pick_port(gidx), other = (uint16_t)(chance(50) ? 4500 : rn(65536));

	switch (proto) {
	case PROTO_UDP:
		if (chance(30)) {
			gen_shared_udp(d, o, inbound);
			break;
		}
		pkt_udp(d, o, inbound ? other : mine, inbound ? mine : other, pay, (uint8_t)rnd());
		break;
	case PROTO_TCP:
		pkt_tcp(d, o, inbound ? other : mine, inbound ? mine : other, (uint32_t)rnd(),
			TCP_ACK, pay, (uint8_t)rnd());
		break;
	case PROTO_ICMP:
		pkt_icmp(d, (uint8_t)(chance(50) ? (inbound ? ICMP_ECHOREPLY : ICMP_ECHO) :
				      (inbound ? ICMP_ECHO : ICMP_ECHOREPLY)),
			 0, mine, (uint16_t)rnd(), pay, (uint8_t)rnd());
		break;
	case PROTO_ESP:
		pkt_esp(d, pick_spi(), (uint32_t)rnd(), pay, (uint8_t)rnd());
		break;
	case PROTO_AH:
		pkt_ah(d, PROTO_UDP, pick_spi(), (uint32_t)rnd(), pay, (uint8_t)rnd());
		break;
	default:
		pkt_payload(d, pay, (uint8_t)rnd());
	}
}

static size_t gen_paylen(void)
{
	switch (rn(6)) {
	case 0: return rn(8);
	case 1: return 1400 + rn(200); /* around the tunnel MTU */
	case 2: return 1472 - 20 + rn(40);
	default: return 8 + rn(120);
	}
}

/* An ICMP error from the Internet to @g quoting a datagram of a host. */
static void gen_icmp_err(struct pkt *d, uint32_t src, uint32_t g, int gidx)
{
	static const uint8_t qp[] = { PROTO_UDP, PROTO_TCP, PROTO_ESP, PROTO_AH, PROTO_ICMP,
				      PROTO_GRE };
	static const uint8_t types[] = { 3, 11, 12 };
	struct pkt q;
	struct ip4 h = gen_hdr(src, g), qh = gen_hdr(chance(85) ? g : pick_addr(),
						      chance(50) ? REMOTE : REMOTE_FAR);
	uint8_t proto = qp[rn(sizeof(qp))];
	size_t o, io, qlen;
	uint8_t *c;

	pkt_reset(&q);
	qh.proto = proto;
	if (chance(10))
		qh.frag = (uint16_t)(IP_MF | rn(0x1fff));
	o = pkt_ip4_begin(&q, &qh);
	if (proto == PROTO_ESP || proto == PROTO_AH) {
		/* a learnt outbound SA when there is one */
		uint32_t spi = pick_spi();

		if (M.nout && chance(70)) {
			const struct mout *sa = &M.out[rn((uint32_t)M.nout)];

			spi = sa->spi;
			pkt_wr32(q.b + o + 16, sa->remote);
		}
		if (proto == PROTO_ESP)
			pkt_esp(&q, spi, 1, 40, 3);
		else
			pkt_ah(&q, PROTO_TCP, spi, 1, 40, 3);
	} else {
		gen_l4(&q, o, proto, gidx, false, 40);
	}
	pkt_ip4_end(&q, o);
	qlen = chance(70) ? pkt_ip4_hlen(&q, 0) + 8 : rn((uint32_t)q.len + 1);

	pkt_reset(d);
	h.proto = PROTO_ICMP;
	h.frag = (uint16_t)(chance(80) ? 0 : IP_DF);
	o = pkt_ip4_begin(d, &h);
	io = d->len;
	c = pkt_put(d, NULL, 8);
	c[0] = types[rn(3)];
	c[1] = (uint8_t)rn(16);
	pkt_wr16(c + 6, (uint16_t)(chance(50) ? 1280 : 0));
	pkt_put(d, q.b, qlen);
	if (chance(10))
		pkt_payload(d, 1400 + rn(100), 5); /* a long quote */
	pkt_wr16(d->b + io + 2, pkt_csum(d->b + io, d->len - io));
	pkt_ip4_end(d, o);
}

/* A datagram arriving from the WAN. */
static void gen_wan_dg(struct pkt *d)
{
	int gidx = (int)rn(N_GADDRS);
	uint32_t dst = chance(85) ? GADDRS[gidx] : pick_addr();
	uint32_t src = chance(85) ? (chance(50) ? REMOTE : REMOTE_FAR) : pick_addr();
	struct ip4 h = gen_hdr(src, dst);
	size_t o;

	switch (rn(10)) {
	case 0:
		gen_icmp_err(d, src, dst, gidx);
		return;
	case 1: /* a later fragment */
		h.frag = (uint16_t)((chance(50) ? IP_MF : 0) | (1 + rn(300)) | (chance(10) ? IP_DF : 0));
		h.proto = PROTOS[rn(sizeof(PROTOS))];
		pkt_reset(d);
		o = pkt_ip4_begin(d, &h);
		pkt_payload(d, gen_paylen(), (uint8_t)rnd());
		pkt_ip4_end(d, o);
		return;
	case 2: /* a first fragment */
		h.frag = IP_MF;
		break;
	default:
		break;
	}
	h.proto = chance(85) ? (uint8_t[]){ PROTO_UDP, PROTO_TCP, PROTO_ESP, PROTO_AH,
					     PROTO_ICMP }[rn(5)] : PROTOS[rn(sizeof(PROTOS))];
	pkt_reset(d);
	o = pkt_ip4_begin(d, &h);
	gen_l4(d, o, h.proto, gidx, true, gen_paylen());
	pkt_ip4_end(d, o);
}

/* A host's datagram, as it enters its tunnel. */
static void gen_host_dg(struct pkt *d, const struct hostdef *hd)
{
	int gidx = hd->gidx < N_GADDRS ? (int)hd->gidx : 0;
	uint32_t src = chance(85) ? GADDRS[gidx] : pick_addr();
	uint32_t dst;
	struct ip4 h;
	size_t o;

	switch (rn(4)) {
	case 0: /* hairpin */
		dst = GADDRS[rn(N_GADDRS)];
		break;
	case 1:
		dst = pick_addr();
		break;
	default:
		dst = chance(50) ? REMOTE : REMOTE_FAR;
	}
	h = gen_hdr(src, dst);
	h.proto = chance(85) ? (uint8_t[]){ PROTO_UDP, PROTO_TCP, PROTO_ESP, PROTO_AH,
					     PROTO_ICMP }[rn(5)] : PROTOS[rn(sizeof(PROTOS))];
	if (chance(15))
		h.frag = (uint16_t)(chance(50) ? IP_MF : (1 + rn(300)) | (chance(50) ? IP_MF : 0));
	pkt_reset(d);
	o = pkt_ip4_begin(d, &h);
	if (h.frag & 0x1fff) {
		pkt_payload(d, gen_paylen(), (uint8_t)rnd());
	} else if (m_gidx(dst) >= 0) {
		/* to a global address: like an inbound packet, from our port */
		uint16_t sport = (uint16_t)pick_port(gidx), dport = (uint16_t)pick_port(m_gidx(dst));

		if (h.proto == PROTO_UDP && chance(30))
			gen_shared_udp(d, o, chance(50));
		else if (h.proto == PROTO_UDP)
			pkt_udp(d, o, sport, dport, gen_paylen(), 1);
		else if (h.proto == PROTO_TCP)
			pkt_tcp(d, o, sport, dport, 1, TCP_ACK, gen_paylen(), 2);
		else
			gen_l4(d, o, h.proto, gidx, false, gen_paylen());
	} else {
		gen_l4(d, o, h.proto, gidx, false, gen_paylen());
	}
	pkt_ip4_end(d, o);
	if (d->len > PKT_MAX - 64 - 34)
		d->len = PKT_MAX - 64 - 34, pkt_ip4_end(d, 0);
}

static void gen_wan_frame(struct pkt *f)
{
	struct pkt dg;

	gen_wan_dg(&dg);
	if (dg.len > PKT_MAX - 64 - 14)
		dg.len = PKT_MAX - 64 - 14, pkt_ip4_end(&dg, 0);
	pkt_reset(f);
	pkt_eth(f, MAC_WAN0, chance(50) ? MAC_REMOTE : MAC_GW,
		chance(97) ? ETHTYPE_IPV4 : (uint16_t[]){ ETHTYPE_ARP, ETHTYPE_IPV6, ETHTYPE_VLAN,
							   ETHTYPE_QINQ }[rn(4)]);
	pkt_put(f, dg.b, dg.len);
}

static void gen_lan_frame(struct pkt *f)
{
	const struct hostdef *hd = &HOSTS[chance(70) ? rn(4) : rn(N_HOSTDEFS)];
	struct ip4 oh = { .src = hd->lan, .dst = LAN_ROUTER, .proto = PROTO_IPIP, .ttl = 64 };
	struct pkt dg;
	size_t o;

	gen_host_dg(&dg, hd);
	if (chance(10))
		oh.src = pick_addr();
	if (chance(5))
		oh.dst = pick_addr();
	oh.tos = dg.b[1];
	oh.id = pkt_rd16(dg.b + 4);
	oh.frag = pkt_rd16(dg.b + 6) & IP_DF;
	pkt_reset(f);
	pkt_eth(f, MAC_LAN0, chance(95) ? hd->mac : MAC_STRAY,
		chance(97) ? ETHTYPE_IPV4 : (uint16_t[]){ ETHTYPE_ARP, ETHTYPE_IPV6, ETHTYPE_VLAN,
							   ETHTYPE_QINQ }[rn(4)]);
	if (chance(8)) { /* plain, untunnelled */
		pkt_put(f, dg.b, dg.len);
		return;
	}
	o = pkt_ip4_begin(f, &oh);
	pkt_put(f, dg.b, dg.len);
	pkt_ip4_end(f, o);
}

/* ------------------------------------------------------------ mutator */

/* Offsets of the IPv4 headers of @f worth mutating (outer, inner, quoted). */
static size_t ip_headers(const struct pkt *f, size_t offs[4])
{
	size_t n = 0, off = 14;

	while (n < 4 && off + 20 <= f->len && (f->b[off] >> 4) == 4) {
		size_t hl = (f->b[off] & 15) * 4u;

		offs[n++] = off;
		if (hl < 20)
			break;
		if (f->b[off + 9] == PROTO_IPIP)
			off += hl;
		else if (f->b[off + 9] == PROTO_ICMP && off + hl + 8 + 20 <= f->len &&
			 (f->b[off + hl] == 3 || f->b[off + hl] == 11 || f->b[off + hl] == 12))
			off += hl + 8;
		else
			break;
	}
	return n;
}

static void mut_ip(struct pkt *f, size_t off)
{
	uint8_t *ip = f->b + off;
	size_t hl = (ip[0] & 15) * 4u;

	switch (rn(13)) {
	case 0: ip[0] = (uint8_t)((rn(16) << 4) | (ip[0] & 15)); break;
	case 1: ip[0] = (uint8_t)((ip[0] & 0xf0) | rn(16)); break;
	case 2: pkt_wr16(ip + 2, (uint16_t)(pkt_rd16(ip + 2) + (int)rn(17) - 8)); break;
	case 3: pkt_wr16(ip + 2, (uint16_t)(chance(50) ? rnd() : f->len - off)); break;
	case 4: pkt_wr16(ip + 6, (uint16_t)rnd()); break;
	case 5: pkt_wr16(ip + 6, (uint16_t)(pkt_rd16(ip + 6) ^ (chance(50) ? IP_MF : IP_DF))); break;
	case 6: pkt_wr16(ip + 6, (uint16_t)((pkt_rd16(ip + 6) & 0xe000) | rn(4))); break;
	case 7: ip[8] = (uint8_t)(chance(50) ? rn(3) : rnd()); break;
	case 8: ip[9] = chance(70) ? PROTOS[rn(sizeof(PROTOS))] : (uint8_t)rnd(); break;
	case 9: pkt_wr32(ip + 12, pick_addr()); break;
	case 10: pkt_wr32(ip + 16, pick_addr()); break;
	case 11: pkt_wr16(ip + 10, (uint16_t)rnd()); break;
	default: pkt_wr16(ip + 4, (uint16_t)(0x1000 + rn(4))); break;
	}
	/* L4 fields after this header, when present */
	if (chance(40) && hl >= 20 && off + hl + 8 <= f->len) {
		uint8_t *l4 = ip + hl;

		switch (rn(5)) {
		case 0: pkt_wr16(l4, (uint16_t)pick_port(m_gidx(pkt_rd32(ip + 12)))); break;
		case 1: pkt_wr16(l4 + 2, (uint16_t)pick_port(m_gidx(pkt_rd32(ip + 16)))); break;
		case 2: pkt_wr32(l4 + (chance(50) ? 0 : 4), pick_spi()); break;
		case 3: l4[0] = (uint8_t[]){ 0, 3, 4, 5, 8, 11, 12, 13, 255 }[rn(9)];
			l4[1] = (uint8_t)(chance(50) ? 4 : rn(256)); break;
		default: pkt_wr16(l4 + 4, (uint16_t)pick_port(m_gidx(pkt_rd32(ip + 16)))); break;
		}
	}
}

/* Make lengths and IP checksums consistent again (so mutations reach the
 * deeper checks). */
static void fix_up(struct pkt *f)
{
	size_t offs[4], n = ip_headers(f, offs);

	for (size_t i = 0; i < n; i++) {
		uint8_t *ip = f->b + offs[i];

		if (i == 0 || f->b[offs[i - 1] + 9] == PROTO_IPIP)
			pkt_wr16(ip + 2, (uint16_t)(f->len - offs[i]));
	}
	for (size_t i = n; i-- > 0;)
		if ((f->b[offs[i]] & 15) >= 5 && offs[i] + pkt_ip4_hlen(f, offs[i]) <= f->len)
			pkt_ip4_fix_csum(f, offs[i]);
}

static void mutate(struct pkt *f)
{
	unsigned k = chance(20) ? 0 : 1 + rn(4);
	size_t offs[4], n;

	for (unsigned i = 0; i < k; i++) {
		switch (rn(10)) {
		case 0: /* truncate, by length class */
			switch (rn(5)) {
			case 0: f->len = rn(14); break;
			case 1: f->len = 14 + rn(20); break;
			case 2: f->len = f->len > 34 ? 34 + rn(20) : f->len; break;
			default: f->len = rn((uint32_t)f->len + 1); break;
			}
			if (f->len > PKT_MAX)
				f->len = PKT_MAX;
			break;
		case 1: { /* junk */
			size_t j = 1 + rn(64);

			if (f->len + j <= PKT_MAX)
				for (size_t x = 0; x < j; x++)
					f->b[f->len++] = (uint8_t)rnd();
			break;
		}
		case 2: /* flip a header bit */
			if (f->len)
				f->b[rn((uint32_t)(f->len < 96 ? f->len : 96))] ^= (uint8_t)(1u << rn(8));
			break;
		case 3: /* a random byte anywhere */
			if (f->len)
				f->b[rn((uint32_t)f->len)] = (uint8_t)rnd();
			break;
		default:
			n = ip_headers(f, offs);
			if (n)
				mut_ip(f, offs[rn((uint32_t)n)]);
			break;
		}
	}
	if (k && chance(50))
		fix_up(f);
}

/* ------------------------------------------------------------ the test */

static void hexdump(FILE *m, const char *what, const struct pkt *p)
{
	fprintf(m, "    %s (%zu bytes):", what, p->len);
	for (size_t i = 0; i < p->len; i++)
		fprintf(m, "%s%02x", i % 32 ? "" : "\n      ", p->b[i]);
	fputc('\n', m);
}

#define REASON_NAMES xdnat_reason_names /* the one table (maps/xdnat_abi.h) */

static const char *verdict_name(enum prog_id p, int v)
{
	static const char *const xn[] = { "XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX",
					  "XDP_REDIRECT" };

	if (is_xdp(p))
		return v >= 0 && v <= XDP_REDIRECT ? xn[v] : "?";
	return v == TC_ACT_OK ? "TC_ACT_OK" : v == TC_ACT_SHOT ? "TC_ACT_SHOT" :
	       v == TC_ACT_REDIRECT ? "TC_ACT_REDIRECT" : "?";
}

struct tally {
	uint64_t verdict[4][8];
	uint64_t reason[4][XDNAT_R_MAX];
	uint64_t refused[4], runs, failures, shown;
};

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return dflt;
	errno = 0;
	v = strtoull(s, &end, 0);
	cr_assert(!errno && !*end, "%s=%s: not a number", name, s);
	return v;
}

/* Run one frame through @p; compare with the model and the invariants. */
static void check_one(struct tally *t, enum prog_id p, const struct pkt *in, uint64_t seed,
		      uint64_t iter)
{
	static struct plan pl;
	static struct result res;
	struct decision d;
	const char *inv;
	int match = -1;
	bool ok;

	plan_of(&pl, p, in, &d);
	run_prog(p, in, &res);
	t->runs++;
	if (res.err && pl.refusable && res.err == -EINVAL) {
		t->refused[p]++;
		ok = true;
		for (unsigned k = 0; k < XDNAT_R_MAX; k++)
			ok &= res.dr[k] == 0;
		inv = ok ? NULL : "I5: counted a refused frame";
		if (!inv)
			return;
	} else {
		inv = invariants(p, in, &res, &d);
		if (!res.err) {
			t->verdict[p][res.verdict & 7]++;
			for (unsigned k = 0; k < XDNAT_R_MAX; k++)
				if (res.dr[k] > 0)
					t->reason[p][k]++;
		}
	}
	for (int i = 0; !res.err && i < pl.n && match < 0; i++) {
		const struct alt *a = &pl.a[i];

		ok = res.verdict == a->verdict && res.dr[a->reason] == 1 &&
		     out_matches(a, in, &res.out, a->ttl_off == 14 ? 34 : a->ttl_off);
		for (unsigned h = 0; ok && h < MAX_HOSTS; h++)
			ok = res.dto[h] == (a->to_host && a->to_host == h) &&
			     res.dfrom[h] == (a->from_host && a->from_host == h);
		if (ok)
			match = i;
	}
	if (!inv && match >= 0)
		return;
	t->failures++;
	if (t->shown++ < 12) {
		char *msg = NULL;
		size_t ml = 0;
		FILE *m = open_memstream(&msg, &ml);

		cr_assert(m, "open_memstream");
		fprintf(m, "%s: seed 0x%" PRIx64 " iteration %" PRIu64 ": %s\n", PROG_NAMES[p], seed,
			iter, inv ? inv : "result differs from the model");
		fprintf(m, "    got: err %d, %s, counters:", res.err, verdict_name(p, res.verdict));
		for (unsigned k = 0; k < XDNAT_R_MAX; k++)
			if (res.dr[k])
				fprintf(m, " %s%+" PRId64, REASON_NAMES[k], res.dr[k]);
		for (unsigned h = 0; h < MAX_HOSTS; h++)
			if (res.dto[h] || res.dfrom[h])
				fprintf(m, " host%u to%+" PRId64 "/from%+" PRId64, h, res.dto[h],
					res.dfrom[h]);
		fputc('\n', m);
		for (int i = 0; i < pl.n; i++) {
			fprintf(m, "    model alt %d: %s, %s, %s, to_host %u from_host %u\n", i,
				pl.a[i].what, verdict_name(p, pl.a[i].verdict),
				REASON_NAMES[pl.a[i].reason], pl.a[i].to_host, pl.a[i].from_host);
			if (i == 0 || pl.a[i].out.len != in->len)
				hexdump(m, "expected", &pl.a[i].out);
		}
		hexdump(m, "input", in);
		hexdump(m, "output", &res.out);
		fclose(m);
		cr_log_error("%s", msg);
		fprintf(stderr, "%s", msg);
		free(msg);
	}
}

static void corpus(uint32_t flags, uint64_t salt, unsigned div)
{
	uint64_t seed = env_u64("XDNAT_CORPUS_SEED", DEFAULT_SEED);
	uint64_t n = env_u64("XDNAT_CORPUS_N", DEFAULT_N) / div;
	struct tally *t = calloc(1, sizeof(*t));
	struct timespec t0, t1;
	struct timespec now;
	struct pkt *f = malloc(sizeof(*f));

	cr_assert(t && f, "out of memory");
	router_up(flags);
	model_init(flags);
	percpu_buf = calloc((size_t)env.ncpus, sizeof(struct xdnat_host_pcpu));
	cr_assert(percpu_buf, "out of memory");
	rng_state = seed ^ salt;
	fprintf(stderr, "test_corpus: %s policy: XDNAT_CORPUS_SEED=0x%" PRIx64 " XDNAT_CORPUS_N=%" PRIu64
		"%s\n", flags & XDNAT_F_UNKNOWN_DROP ? "unknown-drop" : "unknown-pass", seed, n * div,
		div > 1 ? " (this policy runs a quarter)" : "");

	/* Fragment entries written directly: stale, owner invalid, owner of
	 * another global address (fresh); the model knows them. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	{
		struct { uint16_t id; uint32_t host; uint64_t ns; bool fresh; } pre[] = {
			{ 0x1001, H_A, 1, false },
			{ 0x1002, H_E, (uint64_t)now.tv_sec * 1000000000ull, true },
			{ 0x1003, H_C, (uint64_t)now.tv_sec * 1000000000ull, true },
		};
		for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++) {
			struct xdnat_frag_key k = { .saddr = htonl(REMOTE), .daddr = htonl(G0),
						    .id = htons(pre[i].id), .protocol = PROTO_UDP };
			struct xdnat_frag_val v = { .host_id = pre[i].host, .learnt_ns = pre[i].ns };

			cr_assert(bpf_map_update_elem(R->frags, &k, &v, BPF_ANY) == 0, "frags");
			m_frag_learn(REMOTE, G0, pre[i].id, PROTO_UDP, pre[i].host, pre[i].fresh);
		}
	}

	counters_read(&cnt_before);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (getenv("XDNAT_CORPUS_FRAME")) {
		/* Replay one frame (hex) on XDNAT_CORPUS_SIDE (wan|lan) instead. */
		const char *hex = getenv("XDNAT_CORPUS_FRAME"), *side = getenv("XDNAT_CORPUS_SIDE");
		bool wan = !side || strcmp(side, "lan");
		unsigned byte;

		pkt_reset(f);
		for (; hex[0] && hex[1] && f->len < PKT_MAX; hex += 2) {
			cr_assert(sscanf(hex, "%2x", &byte) == 1, "XDNAT_CORPUS_FRAME: not hex");
			f->b[f->len++] = (uint8_t)byte;
		}
		n = 0;
		for (int k = 0; k < 2; k++) {
			enum prog_id p = wan ? (k ? WAN_TC : WAN_XDP) : (k ? LAN_TC : LAN_XDP);
			uint64_t before = t->failures;

			check_one(t, p, f, seed, 0);
			fprintf(stderr, "test_corpus: replay on %s: %s\n", PROG_NAMES[p],
				t->failures == before ? "as the model says" : "differs (above)");
		}
	}
	for (uint64_t i = 0; i < n; i++) {
		bool wan = chance(55);

		if (wan)
			gen_wan_frame(f);
		else
			gen_lan_frame(f);
		mutate(f);
		check_one(t, wan ? WAN_XDP : LAN_XDP, f, seed, i);
		check_one(t, wan ? WAN_TC : LAN_TC, f, seed, i);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

	fprintf(stderr, "test_corpus: %" PRIu64 " frames, %" PRIu64 " runs in %.1f s, %" PRIu64
		" failures; learnt %zu fragment entries, %zu outbound SAs\n", n, t->runs,
		(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
		t->failures, M.nfrag, M.nout);
	for (int p = 0; p < 4; p++) {
		fprintf(stderr, "  %-14s refused %" PRIu64, PROG_NAMES[p], t->refused[p]);
		for (int v = 0; v < 8; v++)
			if (t->verdict[p][v])
				fprintf(stderr, ", %s %" PRIu64, verdict_name((enum prog_id)p, v),
					t->verdict[p][v]);
		fprintf(stderr, "\n   ");
		for (unsigned k = 0; k < XDNAT_R_MAX; k++)
			if (t->reason[p][k])
				fprintf(stderr, " %s %" PRIu64, REASON_NAMES[k], t->reason[p][k]);
		fputc('\n', stderr);
	}
	cr_expect(t->failures == 0, "%" PRIu64 " of %" PRIu64 " runs broke the model or an "
		  "invariant (seed 0x%" PRIx64 "); details above", t->failures, t->runs, seed);
	free(t);
	free(f);
	free(percpu_buf);
	percpu_buf = NULL;
	model_fini();
}

static void fini(void)
{
	router_down();
}

TestSuite(corpus, .fini = fini, .timeout = 120);

Test(corpus, unknown_pass)
{
	corpus(0, 0, 1);
}

Test(corpus, unknown_drop)
{
	corpus(XDNAT_F_UNKNOWN_DROP, 0xd0d0d0d0ull, 4);
}
