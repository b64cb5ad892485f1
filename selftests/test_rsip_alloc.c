// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * RSIP allocator (loader/rsip/rsip_server.c) against an in-memory fake datapath
 * and a reference model, driven through the server's message handler with
 * real authenticated messages and an injected clock:
 *   - random allocate/extend/free/expire/evict sequences: no port or SPI is
 *     ever owned by two hosts, reserved and statically owned ports/SPIs are
 *     never handed out, SPI blocks are aligned, per-host limits hold,
 *     exhaustion gives the RFC error, a freed/expired block leaves the
 *     datapath at once and is not handed out again before its quarantine
 *     ends; after every step the datapath equals the model;
 *   - persistence: close and reopen the store (maps intact, maps lost,
 *     maps stale, leases lapsed meanwhile) and check the reconciliation.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "rsip_auth.h"
#include "rsip_server.h"
#include "store.h"
#include "rsip_wire.h"

/* ------------------------------------------------------------ the clock */

static uint64_t now_ms_v = 1700000000000ull;
static uint64_t fake_now(void) { return now_ms_v; }

/* ----------------------------------------------------- the fake datapath */

#define FB_HOSTS     256
#define FB_SPI_BITS  24                        /* 256 SPI blocks: exhaustible */
#define FB_SPI_BLKS  (1u << (32 - FB_SPI_BITS))

struct fake_be {
	struct { bool on; uint32_t lan, gidx; } host[FB_HOSTS];
	uint16_t port[2][65536];               /* owner host id per (gidx, port) */
	uint16_t spi[FB_SPI_BLKS];             /* owner per SPI block */
	unsigned violations;                   /* an add over someone's slot, a bad del... */
	int fail_adds;                         /* fail the next N port/SPI adds */
};

static void viol(struct fake_be *f, const char *what, uint32_t id, uint32_t a, uint32_t b)
{
	f->violations++;
	fprintf(stderr, "fake datapath: %s (host %u, %u-%u)\n", what, id, a, b);
}

static int fb_host_add(void *c, uint32_t id, uint32_t lan, uint32_t g)
{
	struct fake_be *f = c;

	if (id == 0 || id >= FB_HOSTS || f->host[id].on || g >= 2) {
		viol(f, "host_add of a present or bad host", id, 0, 0);
		return -EEXIST;
	}
	f->host[id].on = true;
	f->host[id].lan = lan;
	f->host[id].gidx = g;
	return 0;
}

static int fb_host_del(void *c, uint32_t id)
{
	struct fake_be *f = c;

	if (id >= FB_HOSTS || !f->host[id].on)
		return -ENOENT;
	/* Like xd_host_del: its blocks go with it. */
	for (int g = 0; g < 2; g++)
		for (uint32_t p = 0; p < 65536; p++)
			if (f->port[g][p] == id)
				f->port[g][p] = 0;
	for (uint32_t b = 0; b < FB_SPI_BLKS; b++)
		if (f->spi[b] == id)
			f->spi[b] = 0;
	f->host[id].on = false;
	return 0;
}

static int fb_host_get(void *c, uint32_t id, uint32_t *lan, uint32_t *g)
{
	struct fake_be *f = c;

	if (id >= FB_HOSTS || !f->host[id].on)
		return -ENOENT;
	*lan = f->host[id].lan;
	*g = f->host[id].gidx;
	return 0;
}

static int fb_ports_add(void *c, uint32_t id, uint32_t a, uint32_t b)
{
	struct fake_be *f = c;
	uint32_t g;

	if (f->fail_adds > 0) {
		f->fail_adds--;
		return -EIO;
	}
	if (id >= FB_HOSTS || !f->host[id].on || a > b || b > 65535) {
		viol(f, "ports_add for an absent host", id, a, b);
		return -EINVAL;
	}
	g = f->host[id].gidx;
	for (uint32_t p = a; p <= b; p++)
		if (f->port[g][p]) {
			viol(f, "ports_add over an owned port", id, a, b);
			return -EEXIST;
		}
	for (uint32_t p = a; p <= b; p++)
		f->port[g][p] = (uint16_t)id;
	return 0;
}

static int fb_ports_del(void *c, uint32_t id, uint32_t a, uint32_t b)
{
	struct fake_be *f = c;
	uint32_t g;

	if (id >= FB_HOSTS || !f->host[id].on)
		return -ENOENT;
	g = f->host[id].gidx;
	for (uint32_t p = a; p <= b; p++)
		if (f->port[g][p] != id) {
			viol(f, "ports_del of a port not the host's", id, a, b);
			return -EPERM;
		}
	for (uint32_t p = a; p <= b; p++)
		f->port[g][p] = 0;
	return 0;
}

static bool spi_aligned(uint32_t a, uint32_t b)
{
	uint32_t m = (1u << FB_SPI_BITS) - 1;

	return (a & m) == 0 && (b & m) == m && a <= b;
}

static int fb_spis_add(void *c, uint32_t id, uint32_t a, uint32_t b)
{
	struct fake_be *f = c;

	if (f->fail_adds > 0) {
		f->fail_adds--;
		return -EIO;
	}
	if (id >= FB_HOSTS || !f->host[id].on || !spi_aligned(a, b)) {
		viol(f, "spis_add: absent host or unaligned block", id, a, b);
		return -EINVAL;
	}
	for (uint32_t k = a >> FB_SPI_BITS; k <= b >> FB_SPI_BITS; k++)
		if (f->spi[k]) {
			viol(f, "spis_add over an owned block", id, a, b);
			return -EEXIST;
		}
	for (uint32_t k = a >> FB_SPI_BITS; k <= b >> FB_SPI_BITS; k++)
		f->spi[k] = (uint16_t)id;
	return 0;
}

static int fb_spis_del(void *c, uint32_t id, uint32_t a, uint32_t b)
{
	struct fake_be *f = c;

	if (id >= FB_HOSTS || !f->host[id].on)
		return -ENOENT;
	if (!spi_aligned(a, b)) {
		viol(f, "spis_del of an unaligned range", id, a, b);
		return -EINVAL;
	}
	for (uint32_t k = a >> FB_SPI_BITS; k <= b >> FB_SPI_BITS; k++)
		if (f->spi[k] != id) {
			viol(f, "spis_del of a block not the host's", id, a, b);
			return -EPERM;
		}
	for (uint32_t k = a >> FB_SPI_BITS; k <= b >> FB_SPI_BITS; k++)
		f->spi[k] = 0;
	return 0;
}

static int64_t fb_ports_busy(void *c, uint32_t g, uint32_t a, uint32_t b)
{
	struct fake_be *f = c;

	for (uint32_t p = a; p <= b && p < 65536; p++)
		if (f->port[g][p])
			return p;
	return -1;
}

static int64_t fb_spis_busy(void *c, uint32_t a, uint32_t b)
{
	struct fake_be *f = c;

	for (uint64_t k = a >> FB_SPI_BITS; k <= b >> FB_SPI_BITS; k++)
		if (f->spi[k])
			return (int64_t)(k << FB_SPI_BITS) > (int64_t)a ? (int64_t)(k << FB_SPI_BITS) : a;
	return -1;
}

static int fb_runs(void *c, uint32_t id, int kind, struct xd_run **out, size_t *n)
{
	struct fake_be *f = c;
	struct xd_run *r = calloc(65536, sizeof(*r));
	size_t cnt = 0;

	if (!r)
		return -ENOMEM;
	if (kind == RSIP_KIND_PORTS) {
		uint32_t g = id < FB_HOSTS ? f->host[id].gidx : 0;

		for (uint32_t p = 0; p < 65536; p++) {
			if (f->port[g][p] != id)
				continue;
			if (cnt && r[cnt - 1].last + 1 == p)
				r[cnt - 1].last = p;
			else
				r[cnt++] = (struct xd_run){ p, p };
		}
	} else {
		for (uint32_t k = 0; k < FB_SPI_BLKS; k++) {
			uint32_t a = k << FB_SPI_BITS, b = a | ((1u << FB_SPI_BITS) - 1);

			if (f->spi[k] != id)
				continue;
			if (cnt && r[cnt - 1].last + 1 == a)
				r[cnt - 1].last = b;
			else
				r[cnt++] = (struct xd_run){ a, b };
		}
	}
	*out = r;
	*n = cnt;
	return 0;
}

static struct rsip_backend fake_backend(struct fake_be *f)
{
	return (struct rsip_backend){
		.ctx = f, .host_add = fb_host_add, .host_del = fb_host_del, .host_get = fb_host_get,
		.ports_add = fb_ports_add, .ports_del = fb_ports_del, .spis_add = fb_spis_add,
		.spis_del = fb_spis_del, .ports_busy = fb_ports_busy, .spis_busy = fb_spis_busy,
		.runs = fb_runs,
	};
}

/* Static hosts (xdnatctl host add), whose ports and SPIs RSIP must never
 * hand out: 200 on the first global address, 201 on the second. */
#define STATIC_ID  200
#define STATIC_ID2 201
static void fb_static(struct fake_be *f)
{
	cr_assert_eq(fb_host_add(f, STATIC_ID, htonl(0x0a0000c8), 0), 0);
	cr_assert_eq(fb_ports_add(f, STATIC_ID, 1250, 1259), 0);
	/* Most of the second address's pool: ports run out before the limits do. */
	cr_assert_eq(fb_host_add(f, STATIC_ID2, htonl(0x0a0000c9), 1), 0);
	cr_assert_eq(fb_ports_add(f, STATIC_ID2, 1124, 1323), 0);
	/* SPI blocks 1..250: RSIP has only blocks 251..255 (block 0 reserved). */
	cr_assert_eq(fb_spis_add(f, STATIC_ID, 1u << FB_SPI_BITS, (251u << FB_SPI_BITS) - 1), 0);
}

/* ------------------------------------------------------- test environment */

static char state_dir[64];

static void mk_state(void)
{
	snprintf(state_dir, sizeof(state_dir), "/tmp/xdnat-alloc-XXXXXX");
	cr_assert_not_null(mkdtemp(state_dir));
}

static void rm_state(void)
{
	static const char *const sfx[] = { ".db", ".db-wal", ".db-shm" };
	char p[128];

	for (unsigned i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/t%s", state_dir, sfx[i]);
		unlink(p);
	}
	rmdir(state_dir);
}

#define LEASE_DEF   60
#define LEASE_MAX   120
#define QUAR        30
#define POOL_MIN    1024
#define POOL_MAX    1323
#define MAX_PORTS   60
#define MAX_SPIB    2

static unsigned cfg_max_hosts;   /* 0: FB_HOSTS */

static struct rsip_config test_cfg(void)
{
	struct rsip_config c;

	rsip_config_defaults(&c);
	c.state_dir = state_dir;
	c.instance = "t";
	c.gaddrs[0] = htonl(0xc0000201);
	c.gaddrs[1] = htonl(0xc0000202);
	c.n_gaddrs = 2;
	c.router_lan = htonl(0x0a000001);
	c.local_net = htonl(0x0a000000);
	c.local_mask = htonl(0xffffff00);
	c.max_hosts = cfg_max_hosts ? cfg_max_hosts : FB_HOSTS;
	c.spi_bits = FB_SPI_BITS;
	c.port_min = POOL_MIN;
	c.port_max = POOL_MAX;
	c.reserved[c.n_reserved++] = 1100;
	c.reserved[c.n_reserved++] = 1200;
	c.default_ports = 10;
	c.max_ports_per_host = MAX_PORTS;
	c.max_spi_blocks_per_host = MAX_SPIB;
	c.lease_default = LEASE_DEF;
	c.lease_max = LEASE_MAX;
	c.quarantine = QUAR;
	c.reg_lease = 1000000;   /* idle registrations are not what is tested here */
	c.now_ms = fake_now;
	return c;
}

/* ------------------------------------------------ an in-process RSIP host */

struct th {
	char name[16];
	uint8_t secret[RSIP_SECRET_LEN];
	struct rsip_session sess;
	struct rsip_keys keys;
	uint32_t client_id, counter;
};

struct reply {
	uint16_t err;                 /* 0: the expected response */
	uint32_t bind_id, first, count, lease, gaddr;
	bool closed;
};

static void th_init(struct th *h, struct rsip_server *s, int i)
{
	uint32_t lan = 0;

	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "h%d", i);
	cr_assert_eq(xd_store_enroll_new(s->st, h->name, 0, h->secret), 0);
	cr_assert_eq(s->st->ops->host_secret(s->st, h->name, (uint8_t[RSIP_SECRET_LEN]){ 0 }, &lan), 0);
	h->sess.peer_lan = htonl(0x0a000000u + 10u + (uint32_t)i);
}

/* Run one message through the server and decode the answer. */
static void roundtrip(struct rsip_server *s, struct th *h, struct rsip_builder *b, size_t len,
		      uint8_t expect, struct reply *rp, struct rsip_msg *m, struct rsip_fields *f)
{
	uint8_t out[RSIP_MAX_MSG];
	bool close = false;
	size_t n;

	cr_assert_gt(len, 0);
	n = rsip_server_handle(s, &h->sess, b->buf, len, out, &close);
	memset(rp, 0, sizeof(*rp));
	rp->closed = close;
	cr_assert_gt(n, 0, "no response");
	cr_assert_eq(rsip_decode(out, n, m), RSIP_E_OK);
	cr_assert_eq(rsip_validate(m, f), RSIP_E_OK);
	if (m->type == RSIP_ERROR_RESPONSE) {
		rp->err = rsip_param_u16(&m->params[f->slot[RSIP_S_ERR_ERROR]]);
		cr_assert_neq(rp->err, 0);
		return;
	}
	cr_assert_eq(m->type, expect, "got message type %u, expected %u", m->type, expect);
	if (expect != RSIP_REGISTER_RESPONSE)
		cr_assert(rsip_verify(out, n, h->keys.s2c, RSIP_MAC_LEN, NULL), "response MAC");
	cr_assert_geq(f->counter, 0);
	cr_assert_eq(rsip_param_u32(&m->params[f->counter]), h->counter);
}

static void th_register(struct rsip_server *s, struct th *h)
{
	struct rsip_builder *b = malloc(sizeof(*b));
	struct rsip_msg *m = malloc(sizeof(*m));
	struct rsip_fields *f = malloc(sizeof(*f));
	uint8_t cn[RSIP_NONCE_LEN], out[RSIP_MAX_MSG];
	const uint8_t *pre;
	size_t prelen, n;
	bool close = false;

	cr_assert(b && m && f);
	memset(&h->sess, 0, offsetof(struct rsip_session, peer_lan));
	h->sess.have_counter = false;
	cr_assert_eq(rsip_random(cn, sizeof(cn)), 0);
	h->counter++;
	rsip_begin(b, RSIP_REGISTER_REQUEST);
	rsip_put_u32(b, RSIP_P_MESSAGE_COUNTER, h->counter);
	n = rsip_seal_hello(b, h->secret, h->name, cn);
	cr_assert_gt(n, 0);
	n = rsip_server_handle(s, &h->sess, b->buf, n, out, &close);
	cr_assert_gt(n, 0);
	cr_assert_not(close);
	cr_assert_eq(rsip_decode(out, n, m), RSIP_E_OK);
	cr_assert_eq(rsip_validate(m, f), RSIP_E_OK);
	cr_assert_eq(m->type, RSIP_REGISTER_RESPONSE);
	cr_assert_eq(rsip_auth_param(m, &pre, &prelen), XDNAT_AUTH_WELCOME);
	rsip_derive(h->secret, cn, pre, &h->keys);
	cr_assert(rsip_verify(out, n, h->keys.s2c, RSIP_MAC_LEN, NULL), "WELCOME MAC");
	h->client_id = rsip_param_u32(&m->params[f->slot[RSIP_S_REGRESP_CLIENT]]);
	cr_assert_neq(h->client_id, 0);
	free(b);
	free(m);
	free(f);
}

static size_t seal(struct th *h, struct rsip_builder *b)
{
	h->counter++;
	rsip_put_u32(b, RSIP_P_MESSAGE_COUNTER, h->counter);
	return rsip_seal_mac(b, h->keys.c2s);
}

/* n ports ("any" address unless gidx >= 0); first > 0: that exact range. */
static struct reply th_ports(struct rsip_server *s, struct th *h, int gidx, uint8_t n, uint16_t first)
{
	struct rsip_builder *b = malloc(sizeof(*b));
	struct rsip_msg *m = malloc(sizeof(*m));
	struct rsip_fields *f = malloc(sizeof(*f));
	struct rsip_ports p;
	struct rsip_addr a;
	struct reply r;

	cr_assert(b && m && f);
	rsip_begin(b, RSIP_ASSIGN_REQUEST_RSAP_IP);
	rsip_put_u32(b, RSIP_P_CLIENT_ID, h->client_id);
	rsip_put_addr4(b, gidx >= 0 ? s->cfg.gaddrs[gidx] : 0, gidx < 0);
	rsip_put_ports(b, n, first ? &first : NULL, first ? 1 : 0);
	rsip_put_addr4(b, 0, true);
	rsip_put_ports(b, 0, NULL, 0);
	rsip_put_u8(b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
	roundtrip(s, h, b, seal(h, b), RSIP_ASSIGN_RESPONSE_RSAP_IP, &r, m, f);
	if (!r.err) {
		r.bind_id = rsip_param_u32(&m->params[f->slot[RSIP_S_AP_BIND]]);
		r.lease = rsip_param_u32(&m->params[f->slot[RSIP_S_AP_LEASE]]);
		cr_assert_eq(rsip_param_ports(&m->params[f->slot[RSIP_S_AP_PORTS_LOCAL]], &p), 0);
		cr_assert_eq(p.count, 1);
		r.first = p.port[0];
		r.count = p.number;
		cr_assert_eq(rsip_param_addr(&m->params[f->slot[RSIP_S_AP_ADDR_LOCAL]], &a), 0);
		cr_assert_eq(a.len, 4);
		memcpy(&r.gaddr, a.bytes, 4);
	}
	free(b);
	free(m);
	free(f);
	return r;
}

static struct reply th_spi(struct rsip_server *s, struct th *h)
{
	struct rsip_builder *b = malloc(sizeof(*b));
	struct rsip_msg *m = malloc(sizeof(*m));
	struct rsip_fields *f = malloc(sizeof(*f));
	struct rsip_spi sp;
	struct reply r;

	cr_assert(b && m && f);
	rsip_begin(b, RSIP_ASSIGN_REQUEST_RSIPSEC);
	rsip_put_u32(b, RSIP_P_CLIENT_ID, h->client_id);
	rsip_put_addr4(b, 0, true);
	rsip_put_addr4(b, 0, true);
	rsip_put_u8(b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
	roundtrip(s, h, b, seal(h, b), RSIP_ASSIGN_RESPONSE_RSIPSEC, &r, m, f);
	if (!r.err) {
		r.bind_id = rsip_param_u32(&m->params[f->slot[RSIP_S_SP_BIND]]);
		r.lease = rsip_param_u32(&m->params[f->slot[RSIP_S_SP_LEASE]]);
		cr_assert_eq(rsip_param_spi(&m->params[f->slot[RSIP_S_SP_SPI]], &sp), 0);
		cr_assert_eq(sp.count, 1);
		r.first = sp.spi[0];
		r.count = sp.number;
	}
	free(b);
	free(m);
	free(f);
	return r;
}

/* EXTEND (lease > 0) or FREE (lease == 0) of @bind. */
static struct reply th_bind_op(struct rsip_server *s, struct th *h, uint32_t bind, uint32_t lease)
{
	struct rsip_builder *b = malloc(sizeof(*b));
	struct rsip_msg *m = malloc(sizeof(*m));
	struct rsip_fields *f = malloc(sizeof(*f));
	struct reply r;

	cr_assert(b && m && f);
	rsip_begin(b, lease ? RSIP_EXTEND_REQUEST : RSIP_FREE_REQUEST);
	rsip_put_u32(b, RSIP_P_CLIENT_ID, h->client_id);
	rsip_put_u32(b, RSIP_P_BIND_ID, bind);
	if (lease)
		rsip_put_u32(b, RSIP_P_LEASE_TIME, lease);
	roundtrip(s, h, b, seal(h, b), lease ? RSIP_EXTEND_RESPONSE : RSIP_FREE_RESPONSE, &r, m, f);
	if (!r.err && lease)
		r.lease = rsip_param_u32(&m->params[f->slot[RSIP_S_B_LEASE]]);
	free(b);
	free(m);
	free(f);
	return r;
}

static struct reply th_deregister(struct rsip_server *s, struct th *h)
{
	struct rsip_builder *b = malloc(sizeof(*b));
	struct rsip_msg *m = malloc(sizeof(*m));
	struct rsip_fields *f = malloc(sizeof(*f));
	struct reply r;

	cr_assert(b && m && f);
	rsip_begin(b, RSIP_DEREGISTER_REQUEST);
	rsip_put_u32(b, RSIP_P_CLIENT_ID, h->client_id);
	roundtrip(s, h, b, seal(h, b), RSIP_DEREGISTER_RESPONSE, &r, m, f);
	free(b);
	free(m);
	free(f);
	return r;
}

/* ---------------------------------------------------- the reference model */

#define NH       8
#define MAXB     4096

struct mb {
	bool used;
	int owner;             /* test host index */
	uint32_t bind_id;
	int kind, gidx;
	uint32_t first, last;
	int state;             /* RSIP_BIND_ACTIVE / RSIP_BIND_QUARANTINE */
	uint64_t until;
};

struct model {
	struct mb b[MAXB];
	int gidx[NH];          /* the host's global address while it holds an active binding */
	uint32_t lan[NH];
};

static bool is_reserved(uint32_t p) { return p == 1100 || p == 1200 || p == RSIP_DEFAULT_PORT; }
static bool is_static_port(int g, uint32_t p)
{
	return g == 0 ? p >= 1250 && p <= 1259 : p >= 1124 && p <= 1323;
}
static bool is_static(uint32_t id) { return id == STATIC_ID || id == STATIC_ID2; }

/* Is [a,b] on @g free in the model (no binding of any state), allowed? */
static bool model_ports_free(const struct model *md, int g, uint32_t a, uint32_t b)
{
	if (a < POOL_MIN || b > POOL_MAX)
		return false;
	for (uint32_t p = a; p <= b; p++)
		if (is_reserved(p) || is_static_port(g, p))
			return false;
	for (int i = 0; i < MAXB; i++)
		if (md->b[i].used && md->b[i].kind == RSIP_KIND_PORTS && md->b[i].gidx == g &&
		    md->b[i].first <= b && md->b[i].last >= a)
			return false;
	return true;
}

static bool model_has_run(const struct model *md, int g, uint32_t n)
{
	for (uint32_t a = POOL_MIN; a + n - 1 <= POOL_MAX; a++)
		if (model_ports_free(md, g, a, a + n - 1))
			return true;
	return false;
}

static bool model_spi_free(const struct model *md, uint32_t blk)
{
	if (blk < 251)
		return false;  /* reserved block 0 and the static host's 1..250 */
	for (int i = 0; i < MAXB; i++)
		if (md->b[i].used && md->b[i].kind == RSIP_KIND_SPI &&
		    md->b[i].first >> FB_SPI_BITS <= blk && md->b[i].last >> FB_SPI_BITS >= blk)
			return false;
	return true;
}

static uint32_t model_held(const struct model *md, int h, int kind)
{
	uint32_t n = 0;

	for (int i = 0; i < MAXB; i++)
		if (md->b[i].used && md->b[i].owner == h && md->b[i].kind == kind &&
		    md->b[i].state == RSIP_BIND_ACTIVE)
			n += kind == RSIP_KIND_PORTS ? md->b[i].last - md->b[i].first + 1 : 1;
	return n;
}

static struct mb *model_add(struct model *md)
{
	for (int i = 0; i < MAXB; i++)
		if (!md->b[i].used) {
			memset(&md->b[i], 0, sizeof(md->b[i]));
			md->b[i].used = true;
			return &md->b[i];
		}
	cr_assert_fail("model full");
	return NULL;
}

static struct mb *model_find(struct model *md, uint32_t bind_id)
{
	for (int i = 0; i < MAXB; i++)
		if (md->b[i].used && md->b[i].bind_id == bind_id)
			return &md->b[i];
	return NULL;
}

static void model_release(struct model *md, struct mb *b)
{
	b->state = RSIP_BIND_QUARANTINE;
	b->until = now_ms_v + QUAR * 1000ull;
	if (model_held(md, b->owner, RSIP_KIND_PORTS) == 0 && model_held(md, b->owner, RSIP_KIND_SPI) == 0)
		md->gidx[b->owner] = -1;
}

/* What the server's sweep must do at now_ms_v. */
static void model_sweep(struct model *md)
{
	for (int i = 0; i < MAXB; i++)
		if (md->b[i].used && md->b[i].state == RSIP_BIND_ACTIVE && md->b[i].until <= now_ms_v)
			model_release(md, &md->b[i]);
	for (int i = 0; i < MAXB; i++)
		if (md->b[i].used && md->b[i].state == RSIP_BIND_QUARANTINE && md->b[i].until <= now_ms_v)
			md->b[i].used = false;
}

/* The datapath holds exactly the model's active bindings, each host's on
 * one map host with the right LAN address and global address, and nothing
 * of anyone else; the static host is untouched. */
static void check_datapath(const struct model *md, const struct fake_be *f, int nh)
{
	uint32_t hid_of[NH] = { 0 };
	unsigned hosts_expected = 2, hosts_on = 0;

	cr_assert_eq(f->violations, 0, "the server misused the datapath (see stderr)");
	for (int h = 0; h < nh; h++) {
		bool any = false;

		for (int i = 0; i < MAXB; i++) {
			const struct mb *b = &md->b[i];
			uint32_t owner;

			if (!b->used || b->owner != h || b->state != RSIP_BIND_ACTIVE)
				continue;
			owner = b->kind == RSIP_KIND_PORTS ? f->port[b->gidx][b->first] : f->spi[b->first >> FB_SPI_BITS];
			cr_assert_neq(owner, 0, "h%d's bind %u (%u-%u) is not in the datapath", h, b->bind_id,
				      b->first, b->last);
			if (!any)
				hid_of[h] = owner;
			any = true;
			cr_assert_eq(owner, hid_of[h], "h%d's blocks are on two map hosts", h);
		}
		if (any) {
			hosts_expected++;
			cr_assert(f->host[hid_of[h]].on);
			cr_assert_eq(f->host[hid_of[h]].lan, md->lan[h]);
			cr_assert_eq((int)f->host[hid_of[h]].gidx, md->gidx[h]);
		}
	}
	for (uint32_t id = 0; id < FB_HOSTS; id++)
		hosts_on += f->host[id].on;
	cr_assert_eq(hosts_on, hosts_expected, "%u hosts in the datapath, %u expected", hosts_on, hosts_expected);
	/* Every owned slot belongs to a model binding of that host (or is static). */
	for (int g = 0; g < 2; g++) {
		for (uint32_t p = 0; p < 65536; p++) {
			uint32_t o = f->port[g][p];
			bool ok = false;

			if (!o)
				continue;
			if (is_static(o)) {
				cr_assert(is_static_port(g, p), "static host owns port %u", p);
				continue;
			}
			cr_assert(!is_reserved(p), "reserved port %u handed out", p);
			for (int i = 0; i < MAXB && !ok; i++) {
				const struct mb *b = &md->b[i];

				ok = b->used && b->state == RSIP_BIND_ACTIVE && b->kind == RSIP_KIND_PORTS &&
				     b->gidx == g && b->first <= p && p <= b->last && hid_of[b->owner] == o;
			}
			cr_assert(ok, "port %u of global address %d is in the datapath for host %u, "
				  "but the model has no such active binding", p, g, o);
		}
	}
	for (uint32_t k = 0; k < FB_SPI_BLKS; k++) {
		uint32_t o = f->spi[k];
		bool ok = false;

		if (!o)
			continue;
		if (is_static(o)) {
			cr_assert(k >= 1 && k <= 250);
			continue;
		}
		cr_assert_neq(k, 0, "SPI block 0 handed out");
		for (int i = 0; i < MAXB && !ok; i++) {
			const struct mb *b = &md->b[i];

			ok = b->used && b->state == RSIP_BIND_ACTIVE && b->kind == RSIP_KIND_SPI &&
			     b->first >> FB_SPI_BITS <= k && k <= b->last >> FB_SPI_BITS && hid_of[b->owner] == o;
		}
		cr_assert(ok, "SPI block %u is in the datapath for host %u, not in the model", k, o);
	}
}

struct store_walk {
	const struct model *md;
	unsigned n;
};

static int check_one(void *arg, const struct xd_binding *sb)
{
	struct store_walk *w = arg;
	const struct mb *b = model_find((struct model *)w->md, sb->id);

	cr_assert_not_null(b, "store has bind %u, the model does not", sb->id);
	cr_assert_eq(sb->kind, b->kind);
	cr_assert_eq(sb->first, b->first);
	cr_assert_eq(sb->last, b->last);
	cr_assert_eq(sb->state, b->state, "bind %u: state %d, model %d", b->bind_id, sb->state, b->state);
	cr_assert_eq((uint64_t)sb->until_ms, b->until, "bind %u: deadline", b->bind_id);
	w->n++;
	return 0;
}

/* The store's bindings (any state) equal the model's. */
static void check_store(const struct model *md, struct rsip_server *s)
{
	struct store_walk w = { .md = md };
	unsigned n, want = 0;

	cr_assert_eq(s->st->ops->each_binding(s->st, check_one, &w), 0);
	n = w.n;
	for (int i = 0; i < MAXB; i++)
		want += md->b[i].used;
	cr_assert_eq(n, want, "store has %u bindings, model %u", n, want);
}

/* ----------------------------------------------------------------- tests */

struct env {
	struct fake_be *fb;
	struct rsip_server s;
	struct model *md;
	struct th h[NH];
};

static void env_open(struct env *e, bool fresh_backend)
{
	struct rsip_config c = test_cfg();
	struct rsip_backend be;

	if (fresh_backend) {
		free(e->fb);
		e->fb = calloc(1, sizeof(*e->fb));
		cr_assert_not_null(e->fb);
		fb_static(e->fb);
	}
	be = fake_backend(e->fb);
	cr_assert_eq(rsip_server_open(&e->s, &c, &be), 0);
}

static void env_setup(struct env *e, int nh)
{
	memset(e, 0, sizeof(*e));
	now_ms_v = 1700000000000ull;
	mk_state();
	e->md = calloc(1, sizeof(*e->md));
	cr_assert_not_null(e->md);
	env_open(e, true);
	for (int i = 0; i < nh; i++) {
		th_init(&e->h[i], &e->s, i);
		th_register(&e->s, &e->h[i]);
		e->md->gidx[i] = -1;
		e->md->lan[i] = e->h[i].sess.peer_lan;
	}
}

static void env_teardown(struct env *e)
{
	rsip_server_close(&e->s);
	free(e->fb);
	free(e->md);
	rm_state();
}

static void sweep_all(struct env *e)
{
	/* The server sweeps at most 128 expiries per call; xdnatd calls it
	 * at least every second, so loop until a call changes nothing. */
	for (int i = 0; i < 64; i++)
		rsip_server_sweep(&e->s);
	model_sweep(e->md);
}

/* One random ASSIGN_REQUEST_RSAP-IP, checked against the model. */
static void op_ports(struct env *e, int h, unsigned *ok, unsigned *exhausted)
{
	struct model *md = e->md;
	uint8_t n = (uint8_t)(1 + rand() % 40);
	uint32_t held = model_held(md, h, RSIP_KIND_PORTS);
	bool fits_limit = held + n <= MAX_PORTS;
	bool can;
	struct reply r = th_ports(&e->s, &e->h[h], -1, n, 0);

	if (md->gidx[h] >= 0)
		can = model_has_run(md, md->gidx[h], n);
	else
		can = model_has_run(md, 0, n) || model_has_run(md, 1, n);
	if (!fits_limit || !can) {
		cr_assert_eq(r.err, RSIP_E_LOCAL_ADDRPORT_UNAVAILABLE,
			     "h%d: %u ports (holds %u; a free run: %d): got %u, expected 309", h, n, held, can,
			     r.err);
		(*exhausted)++;
		return;
	}
	cr_assert_eq(r.err, 0, "h%d: %u ports (holds %u) refused with %u though a run is free", h, n,
		     held, r.err);
	cr_assert_eq(r.count, n);
	cr_assert_eq(r.lease, LEASE_DEF);
	{
		int g = r.gaddr == e->s.cfg.gaddrs[0] ? 0 : 1;
		struct mb *b;

		cr_assert(r.gaddr == e->s.cfg.gaddrs[g]);
		if (md->gidx[h] >= 0)
			cr_assert_eq(g, md->gidx[h], "h%d moved global address", h);
		cr_assert(model_ports_free(md, g, r.first, r.first + n - 1),
			  "h%d got ports %u-%u of %d: reserved, static, someone's, or quarantined", h,
			  r.first, r.first + n - 1, g);
		cr_assert_null(model_find(md, r.bind_id), "bind id %u reused", r.bind_id);
		b = model_add(md);
		*b = (struct mb){ .used = true, .owner = h, .bind_id = r.bind_id, .kind = RSIP_KIND_PORTS,
				  .gidx = g, .first = r.first, .last = r.first + n - 1,
				  .state = RSIP_BIND_ACTIVE, .until = now_ms_v + LEASE_DEF * 1000ull };
		md->gidx[h] = g;
	}
	(*ok)++;
}

static void op_spi(struct env *e, int h, unsigned *ok, unsigned *exhausted)
{
	struct model *md = e->md;
	bool fits = model_held(md, h, RSIP_KIND_SPI) + 1 <= MAX_SPIB, can = false;
	struct reply r = th_spi(&e->s, &e->h[h]);
	struct mb *b;

	for (uint32_t k = 0; k < FB_SPI_BLKS; k++)
		can = can || model_spi_free(md, k);
	if (!fits || !can) {
		cr_assert_eq(r.err, RSIP_E_IPSEC_SPI_UNAVAILABLE, "h%d SPI: got %u, expected 401", h, r.err);
		(*exhausted)++;
		return;
	}
	cr_assert_eq(r.err, 0, "h%d: SPI block refused (%u) though one is free", h, r.err);
	cr_assert_eq(r.first & ((1u << FB_SPI_BITS) - 1), 0, "SPI block 0x%x not aligned", r.first);
	cr_assert(model_spi_free(md, r.first >> FB_SPI_BITS), "h%d got SPI block 0x%x: not free", h, r.first);
	cr_assert_eq(r.count, 0xffff); /* 2^24 SPIs announced as the first 65535 */
	b = model_add(md);
	*b = (struct mb){ .used = true, .owner = h, .bind_id = r.bind_id, .kind = RSIP_KIND_SPI,
			  .gidx = md->gidx[h] >= 0 ? md->gidx[h] : 0, .first = r.first,
			  .last = r.first + (1u << FB_SPI_BITS) - 1, .state = RSIP_BIND_ACTIVE,
			  .until = now_ms_v + LEASE_DEF * 1000ull };
	if (md->gidx[h] < 0)
		md->gidx[h] = 0;
	(*ok)++;
}

/* A random binding of host @h in @state (or of anyone if h < 0), or NULL. */
static struct mb *pick(struct model *md, int h, int state)
{
	int cand[MAXB], n = 0;

	for (int i = 0; i < MAXB; i++)
		if (md->b[i].used && md->b[i].state == state && (h < 0 || md->b[i].owner == h))
			cand[n++] = i;
	return n ? &md->b[cand[rand() % n]] : NULL;
}

static void run_random(unsigned seed, int steps)
{
	struct env e;
	unsigned ok = 0, exhausted = 0, freed = 0, expired = 0, extended = 0, denied = 0, evicted = 0;

	srand(seed);
	env_setup(&e, NH);
	for (int step = 0; step < steps; step++) {
		int h = rand() % NH, op = rand() % 100;
		struct mb *b;
		struct reply r;

		if (op < 35) {
			op_ports(&e, h, &ok, &exhausted);
		} else if (op < 45) {
			op_spi(&e, h, &ok, &exhausted);
		} else if (op < 60) {
			/* EXTEND one of its active bindings */
			if ((b = pick(e.md, h, RSIP_BIND_ACTIVE))) {
				uint32_t want = (uint32_t)(1 + rand() % 200);

				r = th_bind_op(&e.s, &e.h[h], b->bind_id, want);
				cr_assert_eq(r.err, 0, "extend of own bind %u: %u", b->bind_id, r.err);
				cr_assert_eq(r.lease, want > LEASE_MAX ? LEASE_MAX : want);
				b->until = now_ms_v + r.lease * 1000ull;
				extended++;
			}
		} else if (op < 72) {
			/* FREE one of its active bindings: out of the datapath at once */
			if ((b = pick(e.md, h, RSIP_BIND_ACTIVE))) {
				r = th_bind_op(&e.s, &e.h[h], b->bind_id, 0);
				cr_assert_eq(r.err, 0, "free of own bind %u: %u", b->bind_id, r.err);
				model_release(e.md, b);
				freed++;
			}
		} else if (op < 80) {
			/* Touch another host's binding (any state): refused, nothing changes */
			b = pick(e.md, -1, rand() % 2 ? RSIP_BIND_ACTIVE : RSIP_BIND_QUARANTINE);
			if (b && b->owner != h) {
				r = th_bind_op(&e.s, &e.h[h], b->bind_id, rand() % 2 ? 0 : 60);
				cr_assert_eq(r.err, RSIP_E_BAD_BIND_ID, "h%d touched h%d's bind %u: %u", h,
					     b->owner, b->bind_id, r.err);
				denied++;
			} else if ((b = pick(e.md, h, RSIP_BIND_QUARANTINE))) {
				/* its own quarantined block cannot be renewed either */
				r = th_bind_op(&e.s, &e.h[h], b->bind_id, 60);
				cr_assert_eq(r.err, RSIP_E_BAD_BIND_ID);
				denied++;
			}
		} else if (op < 97) {
			/* Time passes: leases lapse, quarantines end */
			unsigned before = 0, after = 0;

			for (int i = 0; i < MAXB; i++)
				before += e.md->b[i].used && e.md->b[i].state == RSIP_BIND_ACTIVE;
			now_ms_v += (uint64_t)(rand() % 40000);
			sweep_all(&e);
			for (int i = 0; i < MAXB; i++)
				after += e.md->b[i].used && e.md->b[i].state == RSIP_BIND_ACTIVE;
			expired += before - after;
		} else {
			/* The operator evicts the host: all its blocks at once */
			struct rsip_freed fr[64];
			unsigned n = 0, want = 0;

			for (int i = 0; i < MAXB; i++)
				want += e.md->b[i].used && e.md->b[i].owner == h &&
					e.md->b[i].state == RSIP_BIND_ACTIVE;
			cr_assert_eq(rsip_server_evict(&e.s, e.h[h].name, fr, 64, &n), 0);
			cr_assert_eq(n, want);
			for (int i = 0; i < MAXB; i++)
				if (e.md->b[i].used && e.md->b[i].owner == h &&
				    e.md->b[i].state == RSIP_BIND_ACTIVE)
					model_release(e.md, &e.md->b[i]);
			/* Its session is gone: the next request must register first. */
			r = th_bind_op(&e.s, &e.h[h], 1, 60);
			cr_assert_eq(r.err, RSIP_E_REGISTER_FIRST);
			th_register(&e.s, &e.h[h]);
			evicted++;
		}
		check_datapath(e.md, e.fb, NH);
		if (step % 25 == 0)
			check_store(e.md, &e.s);
	}
	check_store(e.md, &e.s);
	cr_log_info("seed %u: %u granted, %u exhausted, %u extended, %u freed, %u expired, %u refused, "
		    "%u evictions", seed, ok, exhausted, extended, freed, expired, denied, evicted);
	/* The sequence must have exercised what it claims to test. */
	cr_assert_gt(ok, 20);
	cr_assert_gt(exhausted, 0, "never ran out");
	cr_assert_gt(freed, 0);
	cr_assert_gt(expired, 0);
	env_teardown(&e);
}

Test(rsip_alloc, random_sequences_seed1, .timeout = 120) { run_random(1, 800); }
Test(rsip_alloc, random_sequences_seed2, .timeout = 120) { run_random(2, 800); }
Test(rsip_alloc, random_sequences_seed3, .timeout = 120) { run_random(0xdecafbad, 800); }

Test(rsip_alloc, quarantine_exact_boundary)
{
	struct env e;
	struct reply r, r2;

	env_setup(&e, 2);
	r = th_ports(&e.s, &e.h[0], 0, 50, POOL_MIN);
	cr_assert_eq(r.err, 0);
	cr_assert_eq(r.first, POOL_MIN);
	cr_assert_eq(th_bind_op(&e.s, &e.h[0], r.bind_id, 0).err, 0);
	cr_assert_eq(e.fb->port[0][POOL_MIN], 0, "freed block still in the datapath");
	/* The exact range, 1 ms before the quarantine ends: in use. */
	now_ms_v += QUAR * 1000ull - 1;
	rsip_server_sweep(&e.s);
	r2 = th_ports(&e.s, &e.h[1], 0, 50, POOL_MIN);
	cr_assert_eq(r2.err, RSIP_E_LOCAL_ADDRPORT_INUSE, "quarantined range handed out: %u", r2.err);
	/* "Any 50" goes elsewhere. */
	r2 = th_ports(&e.s, &e.h[1], 0, 50, 0);
	cr_assert_eq(r2.err, 0);
	cr_assert(r2.first > POOL_MIN + 49);
	/* At the end of the quarantine it is free again. */
	now_ms_v += 1;
	rsip_server_sweep(&e.s);
	r = th_ports(&e.s, &e.h[0], 0, 50, POOL_MIN);
	cr_assert_eq(r.err, 0, "range still refused after its quarantine: %u", r.err);
	env_teardown(&e);
}

Test(rsip_alloc, specific_requests_and_errors)
{
	struct env e;
	struct reply r;

	env_setup(&e, 2);
	cr_assert_eq(th_ports(&e.s, &e.h[0], 0, 5, 1098).err, RSIP_E_LOCAL_ADDRPORT_UNALLOWED, "reserved 1100");
	cr_assert_eq(th_ports(&e.s, &e.h[0], 0, 5, 1000).err, RSIP_E_LOCAL_ADDRPORT_UNALLOWED, "below pool");
	cr_assert_eq(th_ports(&e.s, &e.h[0], 0, 5, 1320).err, RSIP_E_LOCAL_ADDRPORT_UNALLOWED, "beyond pool");
	cr_assert_eq(th_ports(&e.s, &e.h[0], 0, 5, 1255).err, RSIP_E_LOCAL_ADDRPORT_INUSE, "static host's");
	cr_assert_eq(th_ports(&e.s, &e.h[0], 1, 5, 1255).err, RSIP_E_LOCAL_ADDRPORT_INUSE,
		     "static host 201's");
	cr_assert_eq(th_ports(&e.s, &e.h[0], 1, 5, 1050).err, 0, "port 1050 of the 2nd address is free");
	cr_assert_eq(th_ports(&e.s, &e.h[0], 0, 5, 1300).err, RSIP_E_LOCAL_ADDR_UNALLOWED,
		     "a host shares exactly one global address");
	r = th_ports(&e.s, &e.h[1], 1, 5, 1052);
	cr_assert_eq(r.err, RSIP_E_LOCAL_ADDRPORT_INUSE, "overlaps h0's: %u", r.err);
	/* Limit per host: 60 ports. */
	cr_assert_eq(th_ports(&e.s, &e.h[0], -1, 40, 0).err, 0);
	cr_assert_eq(th_ports(&e.s, &e.h[0], -1, 15, 0).err, 0);
	cr_assert_eq(th_ports(&e.s, &e.h[0], -1, 1, 0).err, RSIP_E_LOCAL_ADDRPORT_UNAVAILABLE);
	/* Adjacent placement keeps the host's ports one range. */
	r = th_ports(&e.s, &e.h[1], 0, 10, 0);
	cr_assert_eq(r.err, 0);
	{
		struct reply r2 = th_ports(&e.s, &e.h[1], -1, 10, 0);

		cr_assert_eq(r2.err, 0);
		cr_assert(r2.first == r.first + 10 || r2.first + 10 == r.first, "not adjacent: %u, %u",
			  r.first, r2.first);
	}
	cr_assert_eq(e.fb->violations, 0);
	env_teardown(&e);
}

Test(rsip_alloc, spi_exhaustion_and_limit)
{
	struct env e;
	uint32_t firsts[5];
	struct reply r;

	env_setup(&e, 4);
	/* 5 blocks free (251..255), 2 per host. */
	for (int i = 0; i < 5; i++) {
		r = th_spi(&e.s, &e.h[i / 2]);
		cr_assert_eq(r.err, 0, "block %d: %u", i, r.err);
		firsts[i] = r.first;
		cr_assert_geq(r.first >> FB_SPI_BITS, 251);
		cr_assert_eq(e.fb->spi[r.first >> FB_SPI_BITS] != 0, true);
		for (int k = 0; k < i; k++)
			cr_assert_neq(firsts[k], r.first);
	}
	cr_assert_eq(th_spi(&e.s, &e.h[0]).err, RSIP_E_IPSEC_SPI_UNAVAILABLE, "per-host limit");
	cr_assert_eq(th_spi(&e.s, &e.h[3]).err, RSIP_E_IPSEC_SPI_UNAVAILABLE, "pool exhausted");
	cr_assert_eq(e.fb->violations, 0);
	env_teardown(&e);
}

Test(rsip_alloc, datapath_failure_undoes_the_binding)
{
	struct env e;
	struct reply r;
	int64_t n = -1;

	env_setup(&e, 1);
	e.fb->fail_adds = 1;
	r = th_ports(&e.s, &e.h[0], -1, 10, 0);
	cr_assert_eq(r.err, RSIP_E_INTERNAL_SERVER_ERROR);
	cr_assert_not(e.fb->host[1].on, "new host left in the datapath");
	{
		int64_t v[4];

		cr_assert_eq(e.s.st->ops->counts(e.s.st, v), 0);
		n = v[2] + v[3];
	}
	cr_assert_eq(n, 0, "binding left in the store");
	r = th_ports(&e.s, &e.h[0], -1, 10, 0);
	cr_assert_eq(r.err, 0);
	cr_assert_eq(r.first, POOL_MIN, "the failed range was not given back");
	env_teardown(&e);
}

/* A request refused for want of a host id once left its store transaction
 * open: every later commit was a nested one, so grants were confirmed to
 * hosts and never written (two routers on one etcd store then gave one
 * block twice; one SQLite router lost them at its next restart). */
Test(rsip_alloc, no_free_host_id_leaves_no_transaction_open)
{
	struct xd_store *other;
	struct env e;
	struct reply r;
	char err[256];
	int64_t v[4];

	cfg_max_hosts = 3;      /* host ids 1 and 2 */
	env_setup(&e, 3);
	cr_assert_eq(th_ports(&e.s, &e.h[0], -1, 10, 0).err, 0);
	cr_assert_eq(th_ports(&e.s, &e.h[1], -1, 10, 0).err, 0);
	r = th_ports(&e.s, &e.h[2], -1, 10, 0);
	cr_assert_eq(r.err, RSIP_E_INTERNAL_SERVER_ERROR, "a third host id was given: %u", r.err);
	cr_assert_eq(e.s.tx_depth, 0, "%u transactions left open", e.s.tx_depth);
	r = th_ports(&e.s, &e.h[0], -1, 10, 0);
	cr_assert_eq(r.err, 0);
	/* committed: another process sees all three bindings */
	cr_assert_eq(xd_store_open(state_dir, "t", 0, &other, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(other->ops->counts(other, v), 0, "%s", xd_store_error(other));
	cr_assert_eq(v[2], 3, "%lld bindings committed, 3 granted", (long long)v[2]);
	xd_store_close(other);
	cr_assert_eq(e.s.tx_leaks, 0);
	cfg_max_hosts = 0;
	env_teardown(&e);
}

/* A host with more bindings than drop_client handles in one batch. */
Test(rsip_alloc, deregister_and_evict_many_bindings)
{
	struct env e;
	struct rsip_freed fr[8];
	unsigned n = 0;
	uint32_t h1_first, h1_id;
	struct reply r;

	env_setup(&e, 2);
	e.s.cfg.max_ports_per_host = 1000;
	r = th_ports(&e.s, &e.h[1], 0, 1, 0);
	cr_assert_eq(r.err, 0);
	h1_first = r.first;
	h1_id = e.fb->port[0][h1_first];
	for (int i = 0; i < 19; i++)
		cr_assert_eq(th_ports(&e.s, &e.h[1], 0, 1, 0).err, 0, "port %d", i);
	for (int i = 0; i < 260; i++)
		cr_assert_eq(th_ports(&e.s, &e.h[0], 0, 1, 0).err, 0, "port %d", i);
	cr_assert_eq(th_deregister(&e.s, &e.h[0]).err, 0);
	for (uint32_t p = 0; p < 65536; p++)
		cr_assert(e.fb->port[0][p] == 0 || e.fb->port[0][p] == STATIC_ID || e.fb->port[0][p] == h1_id,
			  "port %u still in the datapath after DE-REGISTER", p);
	cr_assert_eq(rsip_server_evict(&e.s, "h1", fr, 8, &n), 0);
	cr_assert_eq(n, 20);
	cr_assert_eq(fr[0].kind, RSIP_KIND_PORTS);
	cr_assert_eq(fr[0].first, h1_first);
	for (uint32_t p = 0; p < 65536; p++)
		cr_assert(e.fb->port[0][p] == 0 || e.fb->port[0][p] == STATIC_ID, "port %u left", p);
	for (uint32_t id = 1; id < FB_HOSTS; id++)
		cr_assert(!e.fb->host[id].on || is_static(id), "host %u left", id);
	/* Evicted blocks are quarantined, not free. */
	cr_assert_eq(th_ports(&e.s, &e.h[1], 0, 1, (uint16_t)h1_first).err, RSIP_E_REGISTER_FIRST);
	th_register(&e.s, &e.h[1]);
	cr_assert_eq(th_ports(&e.s, &e.h[1], 0, 1, (uint16_t)h1_first).err, RSIP_E_LOCAL_ADDRPORT_INUSE);
	cr_assert_eq(rsip_server_evict(&e.s, "nobody", fr, 8, &n), -ENOENT);
	cr_assert_eq(rsip_server_evict(&e.s, "h0", fr, 8, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(e.fb->violations, 0);
	env_teardown(&e);
}

/* ------------------------------------------------------------ persistence */

static void grant(struct env *e, int h, int kind, uint8_t n)
{
	struct reply r = kind == RSIP_KIND_PORTS ? th_ports(&e->s, &e->h[h], -1, n, 0) : th_spi(&e->s, &e->h[h]);
	struct mb *b;

	cr_assert_eq(r.err, 0);
	b = model_add(e->md);
	*b = (struct mb){ .used = true, .owner = h, .bind_id = r.bind_id, .kind = kind,
			  .gidx = r.gaddr == e->s.cfg.gaddrs[1] ? 1 : 0, .first = r.first,
			  .last = kind == RSIP_KIND_PORTS ? r.first + n - 1 : r.first + (1u << FB_SPI_BITS) - 1,
			  .state = RSIP_BIND_ACTIVE, .until = now_ms_v + r.lease * 1000ull };
	if (e->md->gidx[h] < 0)
		e->md->gidx[h] = b->gidx;
}

static void persist_setup(struct env *e)
{
	env_setup(e, 4);
	grant(e, 0, RSIP_KIND_PORTS, 20);
	grant(e, 0, RSIP_KIND_PORTS, 30);
	grant(e, 0, RSIP_KIND_SPI, 0);
	grant(e, 1, RSIP_KIND_PORTS, 40);
	grant(e, 2, RSIP_KIND_PORTS, 10);
	grant(e, 2, RSIP_KIND_SPI, 0);
	grant(e, 3, RSIP_KIND_PORTS, 5);
	/* h3 frees its block: quarantined, in the store, not in the maps */
	cr_assert_eq(th_bind_op(&e->s, &e->h[3], e->md->b[6].bind_id, 0).err, 0);
	model_release(e->md, &e->md->b[6]);
	/* h1's lease is longer */
	cr_assert_eq(th_bind_op(&e->s, &e->h[1], e->md->b[3].bind_id, LEASE_MAX).lease, LEASE_MAX);
	e->md->b[3].until = now_ms_v + LEASE_MAX * 1000ull;
	check_datapath(e->md, e->fb, 4);
	check_store(e->md, &e->s);
}

Test(rsip_alloc, restart_with_maps_intact_changes_nothing)
{
	struct env e;
	struct fake_be *before = malloc(sizeof(*before));

	cr_assert_not_null(before);
	persist_setup(&e);
	memcpy(before, e.fb, sizeof(*before));
	rsip_server_close(&e.s);
	now_ms_v += 5000;
	env_open(&e, false);
	cr_assert(memcmp(before, e.fb, sizeof(*before)) == 0, "a restart with the pins intact changed the maps");
	check_store(e.md, &e.s);
	/* The hosts resume their registrations and renew. */
	for (int h = 0; h < 3; h++) {
		uint32_t old = e.h[h].client_id;

		th_register(&e.s, &e.h[h]);
		cr_assert_eq(e.h[h].client_id, old, "h%d got a new client id", h);
	}
	cr_assert_eq(th_bind_op(&e.s, &e.h[0], e.md->b[0].bind_id, 60).err, 0);
	free(before);
	env_teardown(&e);
}

Test(rsip_alloc, reboot_rebuilds_the_maps_from_the_store)
{
	struct env e;

	persist_setup(&e);
	rsip_server_close(&e.s);
	env_open(&e, true);    /* maps gone: only the static host is back */
	check_datapath(e.md, e.fb, 4);
	check_store(e.md, &e.s);
	env_teardown(&e);
}

Test(rsip_alloc, stale_maps_are_corrected)
{
	struct env e;
	uint32_t hid;

	persist_setup(&e);
	rsip_server_close(&e.s);
	/* While down: h0's second block vanished from the maps, h2's host
	 * entry points at a wrong LAN address, h1 has an extra port. */
	hid = e.fb->port[0][e.md->b[0].first];
	cr_assert_eq(fb_ports_del(e.fb, hid, e.md->b[1].first, e.md->b[1].last), 0);
	hid = e.fb->port[e.md->b[4].gidx][e.md->b[4].first];
	e.fb->host[hid].lan = htonl(0x0a0000fe);
	hid = e.fb->port[e.md->b[3].gidx][e.md->b[3].first];
	cr_assert_eq(fb_ports_add(e.fb, hid, 1320, 1320), 0);
	env_open(&e, false);
	check_datapath(e.md, e.fb, 4);
	env_teardown(&e);
}

Test(rsip_alloc, leases_that_lapsed_while_down_expire_on_start)
{
	struct env e;

	persist_setup(&e);
	rsip_server_close(&e.s);
	/* Down for longer than the default lease, shorter than h1's. */
	now_ms_v += (LEASE_DEF + 1) * 1000ull;
	env_open(&e, false);
	model_sweep(e.md);
	cr_assert_eq(e.md->b[3].state, RSIP_BIND_ACTIVE);
	cr_assert_eq(e.md->b[0].state, RSIP_BIND_QUARANTINE);
	check_datapath(e.md, e.fb, 4);
	check_store(e.md, &e.s);
	/* A lapsed block cannot be renewed; the survivor can. */
	th_register(&e.s, &e.h[0]);
	cr_assert_eq(th_bind_op(&e.s, &e.h[0], e.md->b[0].bind_id, 60).err, RSIP_E_BAD_BIND_ID);
	th_register(&e.s, &e.h[1]);
	cr_assert_eq(th_bind_op(&e.s, &e.h[1], e.md->b[3].bind_id, 60).err, 0);
	/* Same after a reboot: the lapsed blocks are not rebuilt. */
	rsip_server_close(&e.s);
	env_open(&e, true);
	check_datapath(e.md, e.fb, 4);
	env_teardown(&e);
}

/* ------------------------------------------- the operator, from outside */

/* A second handle on the store, as xdnatctl opens it. */
static struct xd_store *other_db(void)
{
	struct xd_store *db = NULL;
	char err[256];

	cr_assert_eq(xd_store_open(state_dir, "t", 0, &db, err, sizeof(err)), 0, "%s", err);
	return db;
}

/* Another process writing the SQLite file directly. */
static void other_exec(const char *sql)
{
	char path[512];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/t.db", state_dir);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

Test(rsip_alloc, unenroll_ends_a_connected_session)
{
	struct env e;
	struct reply r;
	uint8_t secret[RSIP_SECRET_LEN];
	struct xd_store *db;

	env_setup(&e, 2);
	cr_assert_eq(th_ports(&e.s, &e.h[0], -1, 10, 0).err, 0);
	cr_assert_eq(th_ports(&e.s, &e.h[1], -1, 10, 0).err, 0);
	db = other_db();
	cr_assert_eq(db->ops->unenroll(db, "h0"), 0);
	/* h0's session ends with its next request, whatever it is. */
	r = th_ports(&e.s, &e.h[0], -1, 10, 0);
	cr_assert_eq(r.err, RSIP_E_REGISTRATION_DENIED, "unenrolled host still served: %u", r.err);
	cr_assert(r.closed, "the connection of an unenrolled host stays open");
	r = th_bind_op(&e.s, &e.h[0], 1, 60);
	cr_assert_eq(r.err, RSIP_E_REGISTER_FIRST, "the ended session still answered: %u", r.err);
	/* h1 is not affected... */
	cr_assert_eq(th_ports(&e.s, &e.h[1], -1, 10, 0).err, 0);
	/* ...until it is enrolled again (a new secret): its session ends too. */
	cr_assert_eq(xd_store_enroll_new(db, "h1", 0, secret), 0);
	r = th_bind_op(&e.s, &e.h[1], 2, 60);
	cr_assert_eq(r.err, RSIP_E_REGISTRATION_DENIED, "re-enrolled host served with the old keys: %u", r.err);
	cr_assert(r.closed);
	/* With the new secret it registers again and is served. */
	memcpy(e.h[1].secret, secret, sizeof(secret));
	th_register(&e.s, &e.h[1]);
	cr_assert_eq(th_ports(&e.s, &e.h[1], -1, 10, 0).err, 0);
	xd_store_close(db);
	cr_assert_eq(e.fb->violations, 0);
	env_teardown(&e);
}

Test(rsip_alloc, index_follows_writes_by_another_process)
{
	struct env e;
	struct reply r;
	unsigned before;

	env_setup(&e, 2);
	cr_assert_eq(e.s.idx.rebuilds, 1, "the index is built on start");
	cr_assert_eq(th_ports(&e.s, &e.h[0], 0, 10, 0).first, POOL_MIN);
	cr_assert_eq(e.s.idx.rebuilds, 1, "our own commits do not need a rebuild");
	/* Another process quarantines a block of a registration it ended
	 * (as xdnatctl rsip evict does), and frees h0's block. */
	before = e.s.idx.rebuilds;
	cr_assert_eq(fb_ports_del(e.fb, e.fb->port[0][POOL_MIN], POOL_MIN, POOL_MIN + 9), 0);
	other_exec("INSERT INTO bindings(client_id, owner, kind, gidx, first, last, state, until_ms, created_ms) "
		   "VALUES(999, 'gone', 1, 0, 1034, 1083, 2, 9000000000000, 0);"
		   "DELETE FROM bindings WHERE first = 1024;");
	r = th_ports(&e.s, &e.h[1], 0, 60, 0);
	cr_assert_eq(r.err, 0);
	cr_assert_eq(e.s.idx.rebuilds, before + 1, "the index was not re-read after another process wrote");
	cr_assert(r.first >= 1084, "got %u-%u over the block another process quarantined", r.first, r.first + 59);
	/* h0's block (deleted by the other process) is free again: first fit. */
	r = th_ports(&e.s, &e.h[0], 0, 10, 0);
	cr_assert_eq(r.err, 0);
	cr_assert_eq(r.first, POOL_MIN, "the block freed by another process was not handed out: %u", r.first);
	env_teardown(&e);
}

/* Lines of `rsip list` naming @host with @state, and the remaining time
 * of the first. */
static unsigned list_lines(struct rsip_server *s, const char *host, const char *state, long *left)
{
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0;
	unsigned n = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	cr_assert_eq(rsip_list(s->st, false, f, now_ms_v), 0);
	cr_assert_eq(fclose(f), 0);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char h[32], lan[32], cid[16], hid[16], bid[16], kind[8], range[32], st[16];
		long rem = -1;

		if (sscanf(line, "%31s %31s %15s %15s %15s %7s %31s %15s %lds", h, lan, cid, hid, bid, kind,
			   range, st, &rem) == 9 && !strcmp(h, host) && !strcmp(st, state)) {
			if (!n && left)
				*left = rem;
			n++;
		}
	}
	free(buf);
	return n;
}

Test(rsip_alloc, list_shows_quarantined_blocks_of_ended_registrations)
{
	struct env e;
	struct rsip_freed fr[8];
	unsigned n = 0;
	long left = -1;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	env_setup(&e, 3);
	cr_assert_eq(th_ports(&e.s, &e.h[0], -1, 10, 0).err, 0);
	cr_assert_eq(th_spi(&e.s, &e.h[0]).err, 0);
	cr_assert_eq(th_ports(&e.s, &e.h[1], -1, 10, 0).err, 0);
	cr_assert_eq(th_ports(&e.s, &e.h[2], -1, 10, 0).err, 0);
	cr_assert_eq(list_lines(&e.s, "h0", "active", NULL), 2);
	/* h0 de-registers, h1 is evicted: their blocks are quarantined and
	 * their registrations gone. */
	cr_assert_eq(th_deregister(&e.s, &e.h[0]).err, 0);
	cr_assert_eq(rsip_server_evict(&e.s, "h1", fr, 8, &n), 0);
	cr_assert_eq(n, 1);
	now_ms_v += 10000;
	cr_assert_eq(list_lines(&e.s, "h0", "quarantine", &left), 2, "h0's quarantined blocks not listed");
	cr_assert_eq(left, QUAR - 10, "quarantine time left %ld, expected %d", left, QUAR - 10);
	cr_assert_eq(list_lines(&e.s, "h1", "quarantine", NULL), 1, "h1's evicted block not listed");
	cr_assert_eq(list_lines(&e.s, "h2", "active", NULL), 1);
	/* h2 unenrolled: its registration and block are still listed, marked. */
	other_exec("DELETE FROM hosts WHERE name = 'h2'");
	cr_assert_eq(list_lines(&e.s, "h2*", "active", NULL), 1, "an unenrolled host's block is not listed");
	/* -j too. */
	f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	cr_assert_eq(rsip_list(e.s.st, true, f, now_ms_v), 0);
	cr_assert_eq(fclose(f), 0);
	n = 0;
	for (const char *p = buf; (p = strstr(p, "\"quarantine\"")); p++)
		n++;
	cr_assert_eq(n, 3, "%u quarantined bindings in rsip list -j: %s", n, buf);
	cr_assert_not_null(strstr(buf, "\"remaining_s\":20"), "%s", buf);
	cr_assert_not_null(strstr(buf, "\"enrolled\":false"), "%s", buf);
	free(buf);
	/* When the quarantine ends they go. */
	now_ms_v += QUAR * 1000ull;
	sweep_all(&e);
	cr_assert_eq(list_lines(&e.s, "h0", "quarantine", NULL), 0);
	cr_assert_eq(list_lines(&e.s, "h1", "quarantine", NULL), 0);
	env_teardown(&e);
}

/* A store that cannot answer (a cluster's etcd without quorum, loader/daemon/
 * cluster_elect.c): every request is refused with INTERNAL_SERVER_ERROR
 * before the store is asked, sealed for a registered host (its session goes
 * on), plain for a REGISTER; nothing changes; service resumes after. */
static bool store_up;
static bool store_available(void *ctx) { (void)ctx; return store_up; }

Test(rsip_alloc, unavailable_store_refuses_with_internal_server_error)
{
	struct rsip_builder *b = malloc(sizeof(*b));
	uint8_t cn[RSIP_NONCE_LEN], out[RSIP_MAX_MSG];
	struct env e;
	struct reply r, r2;
	struct rsip_session fresh = { 0 };
	struct rsip_msg m;
	struct rsip_fields f;
	bool close = false;
	size_t n;

	cr_assert_not_null(b);
	env_setup(&e, 2);
	r = th_ports(&e.s, &e.h[0], 0, 50, 0);
	cr_assert_eq(r.err, 0);
	store_up = false;
	e.s.available = store_available;
	r2 = th_ports(&e.s, &e.h[1], 0, 50, 0);
	cr_assert_eq(r2.err, RSIP_E_INTERNAL_SERVER_ERROR, "got %u", r2.err);
	cr_assert_not(r2.closed, "a registered host's session ends on 104");
	cr_assert_eq(th_bind_op(&e.s, &e.h[0], r.bind_id, 60).err, RSIP_E_INTERNAL_SERVER_ERROR);
	cr_assert_eq(th_bind_op(&e.s, &e.h[0], r.bind_id, 0).err, RSIP_E_INTERNAL_SERVER_ERROR);
	cr_assert_neq(e.fb->port[0][r.first], 0, "a refused FREE changed the datapath");
	/* A new session's REGISTER: refused in clear, connection closed. */
	fresh.peer_lan = e.h[1].sess.peer_lan;
	cr_assert_eq(rsip_random(cn, sizeof(cn)), 0);
	rsip_begin(b, RSIP_REGISTER_REQUEST);
	rsip_put_u32(b, RSIP_P_MESSAGE_COUNTER, 1);
	n = rsip_seal_hello(b, e.h[1].secret, e.h[1].name, cn);
	n = rsip_server_handle(&e.s, &fresh, b->buf, n, out, &close);
	cr_assert_gt(n, 0);
	cr_assert(close);
	cr_assert_eq(rsip_decode(out, n, &m), RSIP_E_OK);
	cr_assert_eq(rsip_validate(&m, &f), RSIP_E_OK);
	cr_assert_eq(m.type, RSIP_ERROR_RESPONSE);
	cr_assert_eq(rsip_param_u16(&m.params[f.slot[RSIP_S_ERR_ERROR]]), RSIP_E_INTERNAL_SERVER_ERROR);
	cr_assert_eq(e.s.refused_unavailable, 4);
	/* Quorum back: the same requests succeed. */
	store_up = true;
	cr_assert_eq(th_ports(&e.s, &e.h[1], 0, 50, 0).err, 0);
	cr_assert_eq(th_bind_op(&e.s, &e.h[0], r.bind_id, 60).err, 0);
	/* A name that is not enrolled is still refused as such. */
	memset(&fresh, 0, sizeof(fresh));
	close = false;
	rsip_begin(b, RSIP_REGISTER_REQUEST);
	rsip_put_u32(b, RSIP_P_MESSAGE_COUNTER, 1);
	n = rsip_seal_hello(b, e.h[1].secret, "stranger", cn);
	n = rsip_server_handle(&e.s, &fresh, b->buf, n, out, &close);
	cr_assert_eq(rsip_decode(out, n, &m), RSIP_E_OK);
	cr_assert_eq(rsip_validate(&m, &f), RSIP_E_OK);
	cr_assert_eq(rsip_param_u16(&m.params[f.slot[RSIP_S_ERR_ERROR]]), RSIP_E_REGISTRATION_DENIED);
	free(b);
	env_teardown(&e);
}
