// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Mobile IPv4 registration (loader/rsip/mip_wire.c, mip_server.c): the
 * codec byte by byte, authentication (wrong key, truncated authenticator,
 * unknown SPI, unenrolled host), replay and clock skew of the
 * Identification, NAT detection and the RFC 3519 reply, lease renewal,
 * deregistration and expiry, rate-limited refusals, no amplification, and
 * a mutation fuzz of the parser (under the sanitizers).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "mip_server.h"
#include "mip_wire.h"
#include "rsip_server.h"
#include "store.h"

static uint64_t now_v = 1800000000000ull;   /* 2027-01-15 */
static uint64_t fake_now(void) { return now_v; }

static uint32_t ip(const char *s)
{
	struct in_addr a;

	cr_assert_eq(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

/* ------------------------------------------------------------- codec */

static size_t make_rrq(uint8_t *buf, const char *nai, uint8_t flags, uint16_t life, uint32_t home,
		       uint32_t ha, uint32_t coa, uint64_t id, bool tunreq, const uint8_t *key)
{
	struct mip_builder b;

	mip_build_rrq(&b, buf, MIP_MAX_MSG, flags, life, home, ha, coa, id);
	if (nai)
		mip_put_nai(&b, nai, strlen(nai));
	if (tunreq)
		mip_put_tunreq(&b, 0, MIP_ENCAP_IPIP);
	return key ? mip_seal(&b, key) : mip_finish(&b);
}

Test(codec, request_bytes_and_round_trip)
{
	uint8_t buf[MIP_MAX_MSG], key[MIP_KEY_LEN];
	struct mip_rrq q;
	size_t n;

	memset(key, 7, sizeof(key));
	n = make_rrq(buf, "h1", MIP_F_D | MIP_F_T, 300, ip("192.0.2.1"), ip("192.0.2.1"),
		     ip("10.9.0.2"), 0x1122334455667788ull, true, key);
	cr_assert_eq(n, 24 + 4 + 8 + 38);
	/* RFC 5944 3.3 fixed part */
	cr_assert_eq(buf[0], 1);
	cr_assert_eq(buf[1], 0x22);
	cr_assert_eq(buf[2], 1);
	cr_assert_eq(buf[3], 44);
	cr_assert(!memcmp(buf + 4, (uint8_t[]){ 192, 0, 2, 1 }, 4));
	cr_assert(!memcmp(buf + 12, (uint8_t[]){ 10, 9, 0, 2 }, 4));
	cr_assert_eq(buf[16], 0x11);
	cr_assert_eq(buf[23], 0x88);
	/* NAI (RFC 2794), UDP Tunnel Request (RFC 3519 3.1), MH auth */
	cr_assert(!memcmp(buf + 24, (uint8_t[]){ 131, 2, 'h', '1' }, 4));
	cr_assert(!memcmp(buf + 28, (uint8_t[]){ 144, 6, 0, 0, 0, 4, 0, 0 }, 8));
	cr_assert(!memcmp(buf + 36, (uint8_t[]){ 32, 36, 0, 0, 1, 0 }, 6));
	cr_assert_eq(mip_rrq_parse(buf, n, &q), MIP_OK);
	cr_assert_eq(q.flags, 0x22);
	cr_assert_eq(q.lifetime, 300);
	cr_assert_eq(q.coa, ip("10.9.0.2"));
	cr_assert_eq(q.id, 0x1122334455667788ull);
	cr_assert_eq(q.nai_len, 2);
	cr_assert(!memcmp(q.nai, "h1", 2));
	cr_assert(q.have_tunreq);
	cr_assert_eq(q.tunreq_encap, 4);
	cr_assert(q.have_auth);
	cr_assert_eq(q.spi, MIP_SPI_XDNAT);
	cr_assert_eq(q.auth_off, 42);
	cr_assert(mip_verify(buf, n, q.auth_off, q.spi, q.auth, q.auth_len, key));
	key[0] ^= 1;
	cr_assert(!mip_verify(buf, n, q.auth_off, q.spi, q.auth, q.auth_len, key));
	key[0] ^= 1;
	/* Any flipped bit before the authenticator breaks it. */
	for (size_t i = 0; i < q.auth_off; i++) {
		struct mip_rrq q2;

		buf[i] ^= 0x10;
		if (mip_rrq_parse(buf, n, &q2) == MIP_OK && q2.have_auth)
			cr_assert(!mip_verify(buf, n, q2.auth_off, q2.spi, q2.auth, q2.auth_len, key),
				  "byte %zu not covered", i);
		buf[i] ^= 0x10;
	}
}

Test(codec, reply_round_trip)
{
	uint8_t buf[MIP_MAX_MSG], key[MIP_KEY_LEN] = { 1 };
	struct mip_builder b;
	struct mip_rrp p;
	size_t n;

	mip_build_rrp(&b, buf, sizeof(buf), 0, 300, ip("192.0.2.1"), ip("192.0.2.1"), 42);
	mip_put_tunrep(&b, 0, MIP_TUNREP_F, 20);
	n = mip_seal(&b, key);
	cr_assert_eq(n, 20 + 8 + 38);
	cr_assert_eq(buf[0], 3);
	cr_assert(!memcmp(buf + 20, (uint8_t[]){ 44, 6, 0, 0, 0x80, 0, 0, 20 }, 8));
	cr_assert_eq(mip_rrp_parse(buf, n, &p), MIP_OK);
	cr_assert_eq(p.code, 0);
	cr_assert_eq(p.lifetime, 300);
	cr_assert_eq(p.id, 42);
	cr_assert(p.have_tunrep);
	cr_assert_eq(p.keepalive, 20);
	cr_assert_eq(p.tunrep_flags, MIP_TUNREP_F);
	cr_assert(mip_verify(buf, n, p.auth_off, p.spi, p.auth, p.auth_len, key));
}

Test(codec, malformed_requests)
{
	uint8_t buf[MIP_MAX_MSG], key[MIP_KEY_LEN] = { 0 };
	struct mip_rrq q;
	size_t n = make_rrq(buf, "h1", MIP_F_D | MIP_F_T, 300, 1, 2, 3, 4, true, key);

	/* Every truncation: dropped or poorly formed, never read past the end
	 * (the sanitizers watch a copy of exactly that size). */
	for (size_t l = 0; l < n; l++) {
		uint8_t *c = malloc(l ? l : 1);

		memcpy(c, buf, l);
		int rc = mip_rrq_parse(c, l, &q);

		if (rc == MIP_OK)
			cr_assert(!q.have_auth || q.auth_off + q.auth_len <= l);
		free(c);
	}
	cr_assert_eq(mip_rrq_parse(buf, 23, &q), MIP_DROP);
	buf[0] = 3;
	cr_assert_eq(mip_rrq_parse(buf, n, &q), MIP_DROP, "a reply is not a request");
	buf[0] = 1;
	/* An unknown extension below 128: silently discarded (RFC 5944 1.9). */
	buf[24] = 99;
	cr_assert_eq(mip_rrq_parse(buf, n, &q), MIP_DROP);
	/* 128 and above: skipped. */
	buf[24] = 200;
	cr_assert_eq(mip_rrq_parse(buf, n, &q), MIP_OK);
	cr_assert_null(q.nai);
	buf[24] = 131;
	/* A wrong UDP Tunnel Request length: poorly formed. */
	buf[29] = 5;
	cr_assert_neq(mip_rrq_parse(buf, n, &q), MIP_OK);
	buf[29] = 6;
	/* A NAI after the authenticator would be unauthenticated. */
	{
		struct mip_builder b;
		uint8_t t[MIP_MAX_MSG];
		size_t m;

		mip_build_rrq(&b, t, sizeof(t), 0, 1, 1, 1, 1, 1);
		n = mip_seal(&b, key);
		cr_assert(n);
		memcpy(t + n, (uint8_t[]){ 131, 2, 'x', 'y' }, 4);
		m = n + 4;
		cr_assert_eq(mip_rrq_parse(t, m, &q), MIP_BAD);
	}
	/* Longer than MIP_MAX_MSG: dropped. */
	cr_assert_eq(mip_rrq_parse(buf, MIP_MAX_MSG + 1, &q), MIP_DROP);
}

/* Mutation fuzz: flips, truncations, extension lengths and types on valid
 * requests; every outcome is one of the three results, and a parsed
 * authenticator lies inside the message. */
Test(codec, mutation_fuzz)
{
	uint8_t base[MIP_MAX_MSG], key[MIP_KEY_LEN] = { 3 };
	unsigned seed = 12345;
	size_t n = make_rrq(base, "host-1@example", MIP_F_D | MIP_F_T, 60, 1, 2, 3, 4, true, key);

	for (int it = 0; it < 200000; it++) {
		size_t l = n;
		uint8_t *c = malloc(MIP_MAX_MSG);
		struct mip_rrq q;
		struct mip_rrp p;
		int k = 1 + (int)(rand_r(&seed) % 6);

		memcpy(c, base, n);
		while (k--) {
			unsigned r = (unsigned)rand_r(&seed);

			switch (r % 4) {
			case 0: c[r / 4 % l] ^= (uint8_t)(1u << (r / 64 % 8)); break;
			case 1: c[r / 4 % l] = (uint8_t)(r >> 12); break;
			case 2: l = 1 + r / 4 % l; break;
			case 3:
				if (l + 4 <= MIP_MAX_MSG) {
					memcpy(c + l, &r, 4);
					l += 4;
				}
				break;
			}
		}
		uint8_t *e = malloc(l);       /* exactly l bytes: ASan sees overreads */

		memcpy(e, c, l);
		int rc = mip_rrq_parse(e, l, &q);

		cr_assert(rc == MIP_OK || rc == MIP_DROP || rc == MIP_BAD);
		if (rc == MIP_OK && q.have_auth) {
			cr_assert(q.auth >= e && q.auth + q.auth_len <= e + l);
			(void)mip_verify(e, l, q.auth_off, q.spi, q.auth, q.auth_len, key);
		}
		if (rc == MIP_OK && q.nai)
			cr_assert((const uint8_t *)q.nai + q.nai_len <= e + l);
		e[0] = MIP_T_RRP;
		rc = mip_rrp_parse(e, l, &p);
		cr_assert(rc == MIP_OK || rc == MIP_DROP || rc == MIP_BAD);
		free(e);
		free(c);
	}
}

/* ------------------------------------------------------------ server */

struct fake_dp {
	int sets, clears;
	uint32_t host;
	enum mip_encap encap;
	uint32_t addr;
	uint16_t port;
	bool on;
};

static int fd_set_ep(void *ctx, uint32_t host, enum mip_encap e, uint32_t a, uint16_t p)
{
	struct fake_dp *f = ctx;

	f->sets++;
	f->host = host;
	f->encap = e;
	f->addr = a;
	f->port = p;
	f->on = true;
	return 0;
}

static int fd_clear(void *ctx, uint32_t host)
{
	struct fake_dp *f = ctx;

	f->clears++;
	f->host = host;
	f->on = false;
	return 0;
}

static char dir[64];
static struct xd_store *st;
static struct rsip_server rs;
static struct mip_server ms;
static struct fake_dp fdp;
static uint8_t secret[RSIP_SECRET_LEN], key[MIP_KEY_LEN];
static uint32_t G, NAT, COA;
static uint32_t bind_id;

static void setup(void)
{
	struct rsip_backend be = { 0 };
	struct mip_config cfg;
	struct mip_dp dp = { .ctx = &fdp, .set = fd_set_ep, .clear = fd_clear };
	struct xd_claim cl = { 0 };
	char err[256];
	uint32_t cid;

	G = ip("192.0.2.1");
	NAT = ip("198.51.100.9");
	COA = ip("10.66.0.2");
	memset(&fdp, 0, sizeof(fdp));
	snprintf(dir, sizeof(dir), "/tmp/test_mip.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(xd_store_open(dir, "t", 0, &st, err, sizeof(err)), 0, "%s", err);
	memset(secret, 0x42, sizeof(secret));
	cr_assert_eq(st->ops->enroll(st, "h1", 0, secret, (int64_t)now_v), 0);
	cr_assert_eq(st->ops->enroll(st, "idle", 0, secret, (int64_t)now_v), 0);
	cr_assert_eq(st->ops->client_add(st, "h1", ip("10.0.0.2"), (int64_t)now_v, &cid), 0);
	cl = (struct xd_claim){ .client_id = cid, .host_id = 5, .gidx = 0, .kind = RSIP_KIND_PORTS,
				.first = 20000, .last = 20249, .until_ms = (int64_t)now_v + 60000,
				.now_ms = (int64_t)now_v };
	cr_assert_eq(st->ops->claim(st, &cl, &bind_id), 0, "%s", xd_store_error(st));
	mip_derive_key(secret, key);
	rsip_server_attach(&rs, st, &be, NULL);
	rs.now_ms = fake_now;
	mip_config_defaults(&cfg);
	cfg.gaddrs[0] = G;
	cfg.n_gaddrs = 1;
	mip_server_init(&ms, &cfg, st, &rs, &dp);
	ms.now_ms = fake_now;
}

static void teardown(void)
{
	char cmd[128];

	mip_server_free(&ms);
	rsip_server_detach(&rs);
	xd_store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static uint64_t id_now(int64_t off_s, uint32_t low)
{
	return mip_id_from_unix_ms((uint64_t)((int64_t)now_v + off_s * 1000), low);
}

static size_t ask(const uint8_t *rq, size_t n, uint32_t src, uint16_t sport, uint8_t *out,
		  struct mip_rrp *p)
{
	size_t r = mip_server_handle(&ms, src, htons(sport), G, rq, n, out);

	if (r) {
		cr_assert_eq(mip_rrp_parse(out, r, p), MIP_OK);
		/* No amplification. */
		cr_assert_leq(r, n + MIP_RRP_LEN + 8 + 6 + MIP_AUTH_LEN);
	}
	return r;
}

TestSuite(server, .init = setup, .fini = teardown);

Test(server, register_behind_nat_then_replay_then_deregister)
{
	uint8_t rq[MIP_MAX_MSG], out[MIP_MAX_MSG];
	struct mip_rrp p;
	struct xd_binding b;
	uint64_t id = id_now(0, 0xabcd);
	size_t n = make_rrq(rq, "h1", MIP_F_D | MIP_F_T, 300, G, G, COA, id, true, key), r;

	r = ask(rq, n, NAT, 40000, out, &p);
	cr_assert(r);
	cr_assert_eq(p.code, MIP_C_ACCEPTED);
	cr_assert_eq(p.lifetime, 300);
	cr_assert_eq(p.home, G);
	cr_assert_eq(p.ha, G);
	cr_assert_eq(p.id, id);
	cr_assert(p.have_tunrep);
	cr_assert_eq(p.tunrep_code, MIP_TUNREP_ACCEPT);
	cr_assert_eq(p.keepalive, MIP_DEFAULT_KEEPALIVE);
	cr_assert(p.have_auth);
	cr_assert(mip_verify(out, r, p.auth_off, p.spi, p.auth, p.auth_len, key));
	/* The datapath: UDP to the NAT's address and port. */
	cr_assert_eq(fdp.sets, 1);
	cr_assert_eq(fdp.host, 5);
	cr_assert_eq(fdp.encap, MIP_ENCAP_UDP);
	cr_assert_eq(fdp.addr, NAT);
	cr_assert_eq(fdp.port, htons(40000));
	/* The RSIP lease now lasts at least the registration. */
	cr_assert_eq(st->ops->binding_get(st, bind_id, &b), 1);
	cr_assert_geq(b.until_ms, (int64_t)now_v + 300000);
	/* The same request again: a replay, 133, nothing changes. */
	now_v += 1500;
	r = ask(rq, n, NAT, 40000, out, &p);
	cr_assert(r);
	cr_assert_eq(p.code, MIP_C_ID_MISMATCH);
	cr_assert_eq((uint32_t)p.id, 0xabcd, "low 32 bits copied");
	cr_assert_eq(p.id >> 32, id_now(0, 0) >> 32, "high 32 bits: our time");
	cr_assert(mip_verify(out, r, p.auth_off, p.spi, p.auth, p.auth_len, key));
	cr_assert_eq(fdp.sets, 1);
	cr_assert_eq(ms.refused[MIP_C_ID_MISMATCH], 1);
	/* Listing */
	{
		char *buf = NULL;
		size_t bl = 0;
		FILE *f = open_memstream(&buf, &bl);

		mip_server_show(&ms, true, f);
		fclose(f);
		cr_assert_not_null(strstr(buf, "\"tunnel_addr\":\"198.51.100.9\""), "%s", buf);
		cr_assert_not_null(strstr(buf, "\"tunnel_port\":40000"), "%s", buf);
		free(buf);
	}
	/* Deregistration (lifetime 0) from home. */
	now_v += 1000;
	n = make_rrq(rq, "h1", MIP_F_D | MIP_F_T, 0, G, G, G, id_now(0, 1), false, key);
	r = ask(rq, n, ip("10.0.0.2"), 434, out, &p);
	cr_assert(r);
	cr_assert_eq(p.code, MIP_C_ACCEPTED);
	cr_assert_eq(p.lifetime, 0);
	cr_assert_eq(fdp.clears, 1);
	cr_assert(!fdp.on);
	cr_assert_eq(ms.stat[MIP_ST_DEREGISTERED], 1);
}

Test(server, authentication_failures_change_nothing)
{
	uint8_t rq[MIP_MAX_MSG], out[MIP_MAX_MSG], bad[MIP_KEY_LEN];
	struct mip_rrp p;
	size_t n, r;
	uint16_t port = 1000;

	memcpy(bad, key, sizeof(bad));
	bad[5] ^= 0x80;
	/* wrong key */
	n = make_rrq(rq, "h1", MIP_F_D | MIP_F_T, 300, G, G, COA, id_now(0, 1), true, bad);
	r = ask(rq, n, NAT, port++, out, &p);
	cr_assert(r);
	cr_assert_eq(p.code, MIP_C_MN_AUTH_FAILED);
	cr_assert(!p.have_auth, "no key proven: an unauthenticated refusal");
	/* truncated authenticator (16 of 32 bytes, length fixed up) */
	n = make_rrq(rq, "h1", MIP_F_D | MIP_F_T, 300, G, G, COA, id_now(0, 2), true, key);
	rq[n - 38 + 1] = 4 + 16;
	now_v += 1100;
	r = ask(rq, n - 16, NAT, port++, out, &p);
	cr_assert(r);
	cr_assert_eq(p.code, MIP_C_MN_AUTH_FAILED);
	/* unknown SPI */
	n = make_rrq(rq, "h1", MIP_F_D | MIP_F_T, 300, G, G, COA, id_now(0, 3), true, key);
	rq[n - 38 + 5] = 7;
	now_v += 1100;
	r = ask(rq, n, NAT, port++, out, &p);
	cr_assert_eq(p.code, MIP_C_MN_AUTH_FAILED);
	/* unenrolled host */
	n = make_rrq(rq, "nobody", MIP_F_D | MIP_F_T, 300, G, G, COA, id_now(0, 4), true, key);
	now_v += 1100;
	r = ask(rq, n, NAT, port++, out, &p);
	cr_assert_eq(p.code, MIP_C_MN_AUTH_FAILED);
	/* no NAI */
	n = make_rrq(rq, NULL, MIP_F_D | MIP_F_T, 300, G, G, COA, id_now(0, 5), true, key);
	now_v += 1100;
	r = ask(rq, n, NAT, port++, out, &p);
	cr_assert_eq(p.code, MIP_C_POORLY_FORMED);
	cr_assert_eq(fdp.sets, 0);
	cr_assert_eq(ms.stat[MIP_ST_ACCEPTED], 0);
}

Test(server, clock_skew_and_policy_refusals)
{
	uint8_t rq[MIP_MAX_MSG], out[MIP_MAX_MSG];
	struct mip_rrp p;
	size_t n;
	uint32_t src = NAT;

	/* 30 s ahead: outside the 7 s skew */
	n = make_rrq(rq, "h1", MIP_F_D | MIP_F_T, 300, G, G, COA, id_now(30, 9), true, key);
	cr_assert(ask(rq, n, src++, 1, out, &p));
	cr_assert_eq(p.code, MIP_C_ID_MISMATCH);
	cr_assert_eq((uint32_t)p.id, 9);
	/* 5 s behind: inside */
	n = make_rrq(rq, "h1", MIP_F_D | MIP_F_T, 300, G, G, COA, id_now(-5, 9), true, key);
	cr_assert(ask(rq, n, src++, 1, out, &p));
	cr_assert_eq(p.code, MIP_C_ACCEPTED);
	/* no T flag: reverse tunnelling is mandatory */
	n = make_rrq(rq, "h1", MIP_F_D, 300, G, G, COA, id_now(0, 10), true, key);
	cr_assert(ask(rq, n, src++, 1, out, &p));
	cr_assert_eq(p.code, MIP_C_REV_TUNNEL_MANDATORY);
	/* GRE asked */
	n = make_rrq(rq, "h1", MIP_F_D | MIP_F_T | MIP_F_G, 300, G, G, COA, id_now(0, 11), true, key);
	cr_assert(ask(rq, n, src++, 1, out, &p));
	cr_assert_eq(p.code, MIP_C_ENCAP_UNAVAIL);
	/* behind a NAT without the UDP Tunnel Request */
	n = make_rrq(rq, "h1", MIP_F_D | MIP_F_T, 300, G, G, COA, id_now(0, 12), false, key);
	cr_assert(ask(rq, n, src++, 1, out, &p));
	cr_assert_eq(p.code, MIP_C_ENCAP_UNAVAIL);
	/* another home agent */
	n = make_rrq(rq, "h1", MIP_F_D | MIP_F_T, 300, G, ip("192.0.2.77"), COA, id_now(0, 13), true, key);
	cr_assert(ask(rq, n, src++, 1, out, &p));
	cr_assert_eq(p.code, MIP_C_UNKNOWN_HA);
	cr_assert_eq(p.ha, G);
	/* enrolled but holding no blocks */
	n = make_rrq(rq, "idle", MIP_F_D | MIP_F_T, 300, G, G, COA, id_now(0, 14), true, key);
	cr_assert(ask(rq, n, src++, 1, out, &p));
	cr_assert_eq(p.code, MIP_C_ADMIN_PROHIBITED);
	/* lifetime capped */
	n = make_rrq(rq, "h1", MIP_F_D | MIP_F_T | MIP_F_S, 0xffff, 0, G, COA, id_now(1, 15), true, key);
	cr_assert(ask(rq, n, src++, 1, out, &p));
	cr_assert_eq(p.code, MIP_C_ACCEPTED_NO_SIMUL);
	cr_assert_eq(p.lifetime, MIP_DEFAULT_MAX_LIFETIME);
	cr_assert_eq(p.home, G, "home address 0.0.0.0 is answered with G");
}

Test(server, refusals_rate_limited_and_expiry)
{
	uint8_t rq[MIP_MAX_MSG], out[MIP_MAX_MSG], bad[MIP_KEY_LEN] = { 0 };
	struct mip_rrp p;
	size_t n;

	n = make_rrq(rq, "h1", MIP_F_D | MIP_F_T, 300, G, G, COA, id_now(0, 1), true, bad);
	cr_assert(ask(rq, n, NAT, 5, out, &p));
	cr_assert_eq(ask(rq, n, NAT, 5, out, &p), 0, "second refusal within 1 s: no reply");
	cr_assert(ask(rq, n, NAT + htonl(1), 5, out, &p), "another source still gets one");
	now_v += 1001;
	cr_assert(ask(rq, n, NAT, 5, out, &p));
	cr_assert_eq(ms.stat[MIP_ST_RATE_LIMITED], 1);
	/* A flood from many sources: at most MIP_REFUSE_PER_S replies a second. */
	now_v += 1001;
	unsigned replies = 0;

	for (uint32_t i = 0; i < 1000; i++)
		replies += ask(rq, n, htonl(0xcb007100 + i), 5, out, &p) ? 1 : 0;
	cr_assert_leq(replies, MIP_REFUSE_PER_S);
	/* Garbage gets nothing. */
	cr_assert_eq(mip_server_handle(&ms, NAT, htons(5), G, (const uint8_t *)"xyz", 3, out), 0);
	/* Registration, then expiry. */
	now_v += 1001;
	n = make_rrq(rq, "h1", MIP_F_D | MIP_F_T, 10, G, G, COA, id_now(0, 2), true, key);
	cr_assert(ask(rq, n, NAT, 5, out, &p));
	cr_assert_eq(p.code, 0);
	cr_assert(fdp.on);
	now_v += 9000;
	mip_server_tick(&ms);
	cr_assert(fdp.on);
	now_v += 1001;
	mip_server_tick(&ms);
	cr_assert(!fdp.on);
	cr_assert_eq(ms.stat[MIP_ST_EXPIRED], 1);
}

/* Not a check: what an accepted registration costs the router (HMAC, the
 * enrolment lookup, the lease renewal's commit to SQLite with its fsync,
 * the map update through the fake). */
Test(server, registration_cost)
{
	uint8_t rq[MIP_MAX_MSG], out[MIP_MAX_MSG];
	struct mip_rrp p;
	struct timespec a, b;
	const int n = 300;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++) {
		size_t l = make_rrq(rq, "h1", MIP_F_D | MIP_F_T, 300, G, G, COA, id_now(0, (uint32_t)i + 1),
				    true, key);

		cr_assert(ask(rq, l, NAT, 40000, out, &p));
		cr_assert_eq(p.code, 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;

	fprintf(stderr, "test_mip: %d accepted registrations in %.1f ms: %.3f ms each (%s)\n", n, ms,
		ms / n, dir);
}

/* After a restart: the care-of endpoints the maps still hold are adopted
 * for one maximum lifetime, then end unless renewed. */
static int fd_get_ep(void *ctx, uint32_t host, enum mip_encap *e, uint32_t *a, uint16_t *p)
{
	struct fake_dp *f = ctx;

	if (!f->on || f->host != host)
		return 0;
	*e = f->encap;
	*a = f->addr;
	*p = f->port;
	return 1;
}

Test(server, restart_adopts_endpoints_from_the_maps)
{
	uint8_t rq[MIP_MAX_MSG], out[MIP_MAX_MSG];
	struct mip_config cfg = ms.cfg;
	struct mip_dp dp = { .ctx = &fdp, .set = fd_set_ep, .clear = fd_clear, .get = fd_get_ep };
	struct mip_rrp p;
	size_t n;

	/* Registered; the store gives h1 host id 5 (its RSIP claim). */
	n = make_rrq(rq, "h1", MIP_F_D | MIP_F_T, 300, G, G, COA, id_now(0, 1), true, key);
	cr_assert(ask(rq, n, NAT, 40000, out, &p));
	cr_assert_eq(p.code, 0);
	/* xdnatd restarts: a new server, the maps kept. */
	mip_server_free(&ms);
	mip_server_init(&ms, &cfg, st, &rs, &dp);
	ms.now_ms = fake_now;
	mip_server_adopt(&ms);
	cr_assert_eq(ms.n, 1);
	cr_assert(ms.b[0].active && ms.b[0].adopted);
	cr_assert_eq(ms.b[0].tun_addr, NAT);
	cr_assert_eq(ms.b[0].tun_port, htons(40000));
	/* The recorded request cannot be replayed after the restart: its
	 * timestamp is out of the window by then. */
	now_v += 8000;
	cr_assert(ask(rq, n, NAT, 40000, out, &p));
	cr_assert_eq(p.code, MIP_C_ID_MISMATCH);
	/* Not renewed: gone after one maximum lifetime. */
	now_v += (uint64_t)cfg.max_lifetime * 1000;
	mip_server_tick(&ms);
	cr_assert(!fdp.on);
}
