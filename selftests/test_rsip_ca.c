// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Host certificates over RSIP (issue 4): the real client (loader/rsip/rsip_client.c)
 * talks TCP on loopback to the real server (loader/rsip/rsip_server.c, in a
 * thread) with an in-memory datapath and the Local CA of xdnatd
 * (loader/daemon/ca_plane.c):
 *   - a CSR on an ASSIGN brings back the certificate and the LCA certificate;
 *     it verifies (lca_verify) for the host's ports, SPIs and G, not beyond;
 *   - a new allocation or a renewal issues a fresh certificate and revokes
 *     the superseded one; validity is the lease;
 *   - FREE, DEREGISTER, lease expiry and eviction revoke before freeing;
 *   - a bad CSR is refused (BAD_PARAM) and allocates nothing;
 *   - xd_ca_poll reports each revocation once and makes a CRL listing it;
 *   - recovery: a certificate whose allocation lapsed while the daemon
 *     was down is revoked by xd_ca_reconcile.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/x509.h>
#include <sqlite3.h>
#include "ca_plane.h"
#include "lca.h"
#include "verify.h"
#include "rsip_client.h"
#include "rsip_server.h"
#include "store.h"

#define G_BE    htonl(0xc0000201)  /* 192.0.2.1 */
#define MAXH    64

/* ------------------------------------------------- a permissive datapath */

struct fb {
	bool on[MAXH];
};

static int fb_host_add(void *c, uint32_t id, uint32_t l, uint32_t g)
{
	struct fb *f = c;

	(void)l; (void)g;
	if (id >= MAXH || f->on[id])
		return -EEXIST;
	f->on[id] = true;
	return 0;
}
static int fb_host_del(void *c, uint32_t id)
{
	struct fb *f = c;

	if (id >= MAXH || !f->on[id])
		return -ENOENT;
	f->on[id] = false;
	return 0;
}
static int fb_host_get(void *c, uint32_t id, uint32_t *l, uint32_t *g)
{
	struct fb *f = c;

	*l = *g = 0;
	return id < MAXH && f->on[id] ? 0 : -ENOENT;
}
static int fb_ok(void *c, uint32_t id, uint32_t a, uint32_t b) { (void)c; (void)id; (void)a; (void)b; return 0; }
static int64_t fb_pbusy(void *c, uint32_t g, uint32_t a, uint32_t b) { (void)c; (void)g; (void)a; (void)b; return -1; }
static int64_t fb_sbusy(void *c, uint32_t a, uint32_t b) { (void)c; (void)a; (void)b; return -1; }
static int fb_runs(void *c, uint32_t id, int k, struct xd_run **r, size_t *n)
{
	(void)c; (void)id; (void)k;
	*r = NULL;
	*n = 0;
	return 0;
}

/* ------------------------------------------------------------ fixture */

static char dir[64];
static struct fb fbe;
static struct rsip_server srv;
static struct xd_ca *xca;
static pthread_t thr;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool stop;
static uint16_t port;
static X509 *root;

static void path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static void *serve(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		struct pollfd pfd[16];
		unsigned n;

		pthread_mutex_lock(&mu);
		n = rsip_server_pollfds(&srv, pfd, 16);
		pthread_mutex_unlock(&mu);
		if (poll(pfd, n, 20) > 0) {
			pthread_mutex_lock(&mu);
			rsip_server_events(&srv, pfd, n);
			/* Loopback is no host address for a certificate: the
			 * hosts of this test live at 10.0.0.2. */
			for (unsigned i = 0; i < srv.n_slots; i++)
				if (srv.conns[i].fd >= 0 && !srv.conns[i].sess.authed)
					srv.conns[i].sess.peer_lan = htonl(0x0a000002);
			pthread_mutex_unlock(&mu);
		}
	}
	return NULL;
}

static void make_ca(void)
{
	struct lca_err e = { { 0 } };
	int64_t now = time(NULL);
	EVP_PKEY *rk = lca_keygen(LCA_KEY_EC_P256, &e), *lk = lca_keygen(LCA_KEY_EC_P256, &e);
	struct lca_ns ns;
	X509_REQ *req;
	X509 *lc;
	char p[128];

	cr_assert(rk && lk, "%s", e.msg);
	cr_assert_not_null(root = lca_root_create(rk, "O=test, CN=root", now - 3600, now + 86400, &e));
	cr_assert_eq(lca_ns_init(&ns, G_BE, NULL, NULL, &e), 0, "%s", e.msg);
	cr_assert_not_null(req = lca_csr_create(lk, &ns, &e), "%s", e.msg);
	cr_assert_not_null(lc = lca_cert_sign(req, root, rk, &ns, now - 3600, now + 86400, &e), "%s", e.msg);
	path(p, sizeof(p), "lca.key");
	cr_assert_eq(lca_write_key(p, lk, &e), 0, "%s", e.msg);
	path(p, sizeof(p), "lca.crt");
	cr_assert_eq(lca_write_cert(p, lc, &e), 0, "%s", e.msg);
	path(p, sizeof(p), "root.crt");
	cr_assert_eq(lca_write_cert(p, root, &e), 0, "%s", e.msg);
	lca_ns_release(&ns);
	X509_REQ_free(req);
	X509_free(lc);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(lk);
}

static void open_server(void)
{
	struct rsip_config c;
	struct rsip_backend be = {
		.ctx = &fbe, .host_add = fb_host_add, .host_del = fb_host_del, .host_get = fb_host_get,
		.ports_add = fb_ok, .ports_del = fb_ok, .spis_add = fb_ok, .spis_del = fb_ok,
		.ports_busy = fb_pbusy, .spis_busy = fb_sbusy, .runs = fb_runs,
	};
	struct xd_ca_config cc = { 0 };
	char k[128], crt[128];

	rsip_config_defaults(&c);
	c.state_dir = dir;
	c.instance = "t";
	c.gaddrs[0] = G_BE;
	c.n_gaddrs = 1;
	c.router_lan = htonl(0x7f000001);
	c.max_hosts = MAXH;
	c.spi_bits = 16;
	c.port_min = 20000;
	c.port_max = 29999;
	c.lease_default = 300;
	c.lease_max = 600;
	c.quarantine = 5;
	memset(&fbe, 0, sizeof(fbe));
	cr_assert_eq(rsip_server_open(&srv, &c, &be), 0);
	path(k, sizeof(k), "lca.key");
	path(crt, sizeof(crt), "lca.crt");
	cc.key_path = k;
	cc.cert_path = crt;
	cc.crl_url = "http://192.0.2.1:8080/crl/lca.crl";
	cc.supersede_grace_s = -1;   /* predecessors revoked at the next poll */
	cr_assert_eq(xd_ca_open(&cc, srv.st, &xca), 0);
	xd_ca_rsip_ops(xca, &srv.certs);
	cr_assert_eq(rsip_server_listen(&srv, htonl(0x7f000001), 0, NULL, 8, 60), 0);
	{
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);

		cr_assert_eq(getsockname(srv.listen_fd, (struct sockaddr *)&sa, &sl), 0);
		port = ntohs(sa.sin_port);
	}
	atomic_store(&stop, false);
	cr_assert_eq(pthread_create(&thr, NULL, serve, NULL), 0);
}

static void close_server(void)
{
	atomic_store(&stop, true);
	pthread_join(thr, NULL);
	xd_ca_close(xca);
	xca = NULL;
	rsip_server_close(&srv);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/xdnat-rsipca-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	make_ca();
	open_server();
}

static void teardown(void)
{
	char cmd[128];

	close_server();
	X509_free(root);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

/* --------------------------------------------------------------- helpers */

struct host {
	struct rsip_client cl;
	EVP_PKEY *key;
	unsigned char *csr;
	size_t csr_len;
};

static void host_init(struct host *h, const char *name, uint32_t lan_be)
{
	uint8_t secret[RSIP_SECRET_LEN];
	struct lca_err e = { { 0 } };

	pthread_mutex_lock(&mu);
	cr_assert_eq(xd_store_enroll_new(srv.st, name, lan_be, secret), 0);
	pthread_mutex_unlock(&mu);
	rsip_client_init(&h->cl, htonl(0x7f000001), port, name, secret, 3000);
	cr_assert_not_null(h->key = lca_keygen(LCA_KEY_EC_P256, &e), "%s", e.msg);
	cr_assert_eq(lca_host_csr(h->key, name, &h->csr, &h->csr_len, &e), 0, "%s", e.msg);
	cr_assert_eq(rsip_client_register(&h->cl), 0);
}

static void host_fini(struct host *h)
{
	rsip_client_close(&h->cl);
	rsip_client_free_certs(&h->cl);
	EVP_PKEY_free(h->key);
	OPENSSL_free(h->csr);
}

/* Verify the host's current certificate as a remote peer would. */
static bool verify(struct host *h, uint32_t pf, uint32_t pl, uint32_t sf, uint32_t sl, char *serial)
{
	const unsigned char *p = h->cl.cert, *q = h->cl.cacert;
	X509 *leaf, *lc;
	STACK_OF(X509) *anchors = sk_X509_new_null(), *untrusted = sk_X509_new_null();
	struct lca_range pr = { pf, pl }, sr = { sf, sl };
	struct lca_verify_req rq = { 0 };
	struct lca_verify_res res;

	cr_assert_not_null(h->cl.cert);
	cr_assert_not_null(h->cl.cacert);
	cr_assert_not_null(leaf = d2i_X509(NULL, &p, (long)h->cl.cert_len));
	cr_assert_not_null(lc = d2i_X509(NULL, &q, (long)h->cl.cacert_len));
	cr_assert(sk_X509_push(anchors, root) && sk_X509_push(untrusted, lc));
	rq.anchors = anchors;
	rq.leaf = leaf;
	rq.untrusted = untrusted;
	rq.src_be = G_BE;
	rq.ports = &pr;
	rq.n_ports = pf ? 1 : 0;
	rq.spis = &sr;
	rq.n_spis = sf ? 1 : 0;
	cr_assert_eq(lca_verify(&rq, &res), 0, "%s", res.reason);
	if (serial)
		snprintf(serial, LCA_SERIAL_STRLEN, "%.40s", res.serial);
	sk_X509_free(anchors);
	sk_X509_free(untrusted);
	X509_free(leaf);
	X509_free(lc);
	return res.ok;
}

struct st { const char *want; const char *status; };
static int cb_status(void *arg, const struct lca_record *r)
{
	struct st *s = arg;

	s->status = r->revoked ? "revoked" : "valid";
	return 0;
}

/* "valid" or "revoked" for a serial (colons allowed in input). */
static const char *status_of(const char *serial)
{
	char hex[LCA_SERIAL_STRLEN + 40];
	struct st s = { 0 };
	size_t k = 0;

	for (const char *c = serial; *c && k + 1 < sizeof(hex); c++)
		if (*c != ':')
			hex[k++] = *c;
	hex[k] = 0;
	pthread_mutex_lock(&mu);
	int rc = srv.st->ops->cert_get(srv.st, hex, cb_status, &s, NULL);
	pthread_mutex_unlock(&mu);
	cr_assert_eq(rc, 0, "serial %s not in the store", hex);
	return s.status;
}

/* xdnatd's poll: due supersedes, notices, CRL. */
static void poll_now(void)
{
	struct xd_ca_revoked rv[8];
	unsigned n;

	pthread_mutex_lock(&mu);
	cr_assert_geq(xd_ca_poll(xca, time(NULL), rv, 8, &n), 0);
	pthread_mutex_unlock(&mu);
}

static int cb_valid(void *arg, const struct lca_record *r)
{
	if (!r->revoked)
		(*(unsigned *)arg)++;
	return 0;
}

static unsigned valid_count(const char *name)
{
	unsigned n = 0;

	pthread_mutex_lock(&mu);
	cr_assert_eq(srv.st->ops->cert_list(srv.st, name, cb_valid, &n, NULL), 0);
	pthread_mutex_unlock(&mu);
	return n;
}

/* Change the SQLite file behind the server's back (a lapse, a crash). */
static void raw_sql(const char *sql)
{
	char p[512];
	sqlite3 *db = NULL;

	path(p, sizeof(p), "t.db");
	cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
	sqlite3_close(db);
}

TestSuite(rsip_ca, .init = setup, .fini = teardown, .timeout = 60);

Test(rsip_ca, issue_supersede_renew_free)
{
	struct host h;
	struct rsip_grant gp, gs;
	char s1[LCA_SERIAL_STRLEN], s2[LCA_SERIAL_STRLEN], s3[LCA_SERIAL_STRLEN];
	uint32_t granted;

	host_init(&h, "h1", 0);
	/* Ports with a CSR: certificate for the ports. */
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_assign_ports(&h.cl, 0, 100, 0, &gp), 0);
	cr_assert(h.cl.cert_new);
	cr_assert(verify(&h, gp.first, gp.first + 99, 0, 0, s1));
	cr_assert_not(verify(&h, gp.first, gp.first + 100, 0, 0, NULL), "one port too many");
	cr_assert_not(verify(&h, gp.first + 100, gp.first + 100, 0, 0, NULL));
	/* Validity is the lease, notBefore backdated by LCA_BACKDATE_S for skewed clocks. */
	{
		const unsigned char *p = h.cl.cert;
		X509 *x = d2i_X509(NULL, &p, (long)h.cl.cert_len);
		int days, secs;

		cr_assert_not_null(x);
		cr_assert_eq(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
		cr_assert(days == 0 && secs >= 299 + LCA_BACKDATE_S && secs <= 301 + LCA_BACKDATE_S,
			  "validity %d d %d s", days, secs);
		X509_free(x);
	}
	/* A new allocation (SPIs) with a CSR: one certificate for both, the first superseded. */
	h.cl.cert_new = false;
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_assign_spi(&h.cl, 0, 0, 0, &gs), 0);
	/* The exact block (XDNAT_VS_SPI_COUNT), not the 65535 of the Number field. */
	cr_assert_eq(gs.count, 0x10000, "SPI block of 0x%x SPIs", gs.count);
	cr_assert(h.cl.cert_new);
	cr_assert(verify(&h, gp.first, gp.first + 99, gs.first, gs.first + 0xffff, s2));
	cr_assert_str_neq(s1, s2);
	cr_assert_str_eq(status_of(s1), "valid", "superseded only after the grace period");
	poll_now();
	cr_assert_str_eq(status_of(s1), "revoked");
	cr_assert_str_eq(status_of(s2), "valid");
	/* Without a CSR: no certificate, nothing revoked. */
	h.cl.cert_new = false;
	cr_assert_eq(rsip_client_extend(&h.cl, gp.bind_id, 0, &granted), 0);
	cr_assert_not(h.cl.cert_new);
	cr_assert_str_eq(status_of(s2), "valid");
	/* Renewal with a CSR: fresh certificate, old one superseded. */
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_extend(&h.cl, gs.bind_id, 0, &granted), 0);
	cr_assert(h.cl.cert_new);
	cr_assert(verify(&h, gp.first, gp.first + 99, gs.first, gs.first + 0xffff, s3));
	poll_now();
	cr_assert_str_eq(status_of(s2), "revoked");
	cr_assert_eq(valid_count("h1"), 1);
	/* FREE of the SPI block revokes the certificate that binds it. */
	cr_assert_eq(rsip_client_free(&h.cl, gs.bind_id), 0);
	cr_assert_str_eq(status_of(s3), "revoked");
	cr_assert_eq(valid_count("h1"), 0);
	pthread_mutex_lock(&mu);
	cr_assert_eq(lca_range_bound(xd_ca_lca(xca), LCA_KIND_PORTS, gp.first, gp.first + 99,
				     time(NULL), NULL), 0);
	pthread_mutex_unlock(&mu);
	host_fini(&h);
}

Test(rsip_ca, bad_csr_allocates_nothing)
{
	struct host h;
	struct rsip_grant g;
	static const uint8_t junk[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
	unsigned char *der = NULL;
	size_t len = 0;
	struct lca_err e;
	EVP_PKEY *other;

	host_init(&h, "h2", 0);
	rsip_client_attach_csr(&h.cl, junk, sizeof(junk));
	cr_assert_eq(rsip_client_assign_ports(&h.cl, 0, 10, 0, &g), RSIP_E_BAD_PARAM);
	cr_assert_null(h.cl.cert);
	/* A CSR whose key the LCA refuses (RSA-1024 is not allowed). */
	cr_assert_not_null(other = EVP_RSA_gen(1024));
	cr_assert_eq(lca_host_csr(other, "h2", &der, &len, &e), 0, "%s", e.msg);
	rsip_client_attach_csr(&h.cl, der, len);
	cr_assert_eq(rsip_client_assign_ports(&h.cl, 0, 10, 0, &g), RSIP_E_BAD_PARAM);
	/* Nothing was allocated: the next request gets the pool's first ports. */
	cr_assert_eq(rsip_client_assign_ports(&h.cl, 0, 10, 0, &g), 0);
	cr_assert_eq(g.first, 20000);
	cr_assert_null(h.cl.cert);
	OPENSSL_free(der);
	EVP_PKEY_free(other);
	host_fini(&h);
}

/* Shared IKE ports (docs/SHARED-IKE.md): the router announces them in its
 * REGISTER_RESPONSE (XDNAT_VS_SHARED_IKE) and the client takes them from
 * the authenticated answer; without them, none. */
Test(rsip_ca, shared_ike_announced_on_register)
{
	struct host h;
	struct rsip_grant g;
	const struct rsip_shared_ike on = { .n = 2, .port = { 500, 4500 },
		.framing = { XDNAT_IKE_FRAMING_IKE, XDNAT_IKE_FRAMING_RFC3948 } };

	host_init(&h, "h5", 0);
	cr_assert_eq(h.cl.shared_ike.n, 0, "no shared ports configured, yet announced");
	pthread_mutex_lock(&mu);
	srv.cfg.shared_ike = on;
	pthread_mutex_unlock(&mu);
	cr_assert_eq(rsip_client_register(&h.cl), 0);
	cr_assert_eq(h.cl.shared_ike.n, 2);
	cr_assert_eq(h.cl.shared_ike.port[0], 500);
	cr_assert_eq(h.cl.shared_ike.framing[0], XDNAT_IKE_FRAMING_IKE);
	cr_assert_eq(h.cl.shared_ike.port[1], 4500);
	cr_assert_eq(h.cl.shared_ike.framing[1], XDNAT_IKE_FRAMING_RFC3948);
	/* The session works on after it (MACs, counters). */
	cr_assert_eq(rsip_client_assign_ports(&h.cl, 0, 10, 0, &g), 0);
	cr_assert_eq(h.cl.shared_ike.n, 2, "a later response changed the announcement");
	/* A malformed announcement (a framing no one knows) under a good MAC:
	 * the client refuses the registration instead of guessing. */
	pthread_mutex_lock(&mu);
	srv.cfg.shared_ike.framing[1] = 9;
	pthread_mutex_unlock(&mu);
	cr_assert_eq(rsip_client_register(&h.cl), -EPROTO);
	cr_assert(!rsip_client_connected(&h.cl));
	cr_assert_eq(h.cl.shared_ike.n, 0);
	/* The router stops sharing: the next registration says so. */
	pthread_mutex_lock(&mu);
	memset(&srv.cfg.shared_ike, 0, sizeof(srv.cfg.shared_ike));
	pthread_mutex_unlock(&mu);
	cr_assert_eq(rsip_client_register(&h.cl), 0);
	cr_assert_eq(h.cl.shared_ike.n, 0);
	host_fini(&h);
}

Test(rsip_ca, deregister_evict_poll_crl)
{
	struct host a, b;
	struct rsip_grant g;
	char sa[LCA_SERIAL_STRLEN], sb[LCA_SERIAL_STRLEN];
	struct xd_ca_revoked rv[8];
	unsigned n = 0, freed = 0;
	struct rsip_freed fr[4];
	const uint8_t *crl;
	size_t crl_len;

	host_init(&a, "ha", htonl(0x0a000002));
	rsip_client_attach_csr(&a.cl, a.csr, a.csr_len);
	cr_assert_eq(rsip_client_assign_ports(&a.cl, 0, 10, 0, &g), 0);
	cr_assert(verify(&a, g.first, g.first + 9, 0, 0, sa));
	rsip_client_close(&a.cl);
	pthread_mutex_lock(&mu);
	cr_assert_eq(xd_ca_poll(xca, time(NULL), rv, 8, &n), 1, "first poll makes a CRL");
	cr_assert_eq(n, 0);
	pthread_mutex_unlock(&mu);
	/* Another host on another LAN address... same loopback: evict ha first. */
	pthread_mutex_lock(&mu);
	cr_assert_eq(rsip_server_evict(&srv, "ha", fr, 4, &freed), 0);
	cr_assert_eq(freed, 1);
	cr_assert_eq(xd_ca_poll(xca, time(NULL), rv, 8, &n), 1);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(rv[0].host, "ha");
	cr_assert_eq(rv[0].reason, 3, "affiliationChanged");
	cr_assert_neq(rv[0].dp_host_id, 0, "the datapath id is remembered");
	cr_assert_eq(xd_ca_poll(xca, time(NULL), rv, 8, &n), 0, "reported once");
	cr_assert_eq(n, 0);
	crl = xd_ca_crl(xca, &crl_len);
	pthread_mutex_unlock(&mu);
	cr_assert_str_eq(status_of(sa), "revoked");
	{
		const unsigned char *p = crl;
		X509_CRL *c = d2i_X509_CRL(NULL, &p, (long)crl_len);
		X509_REVOKED *r = NULL;
		const unsigned char *q = a.cl.cert;
		X509 *x = d2i_X509(NULL, &q, (long)a.cl.cert_len);

		cr_assert(c && x);
		cr_assert_eq(X509_CRL_get0_by_cert(c, &r, x), 1, "the evicted certificate is in the CRL");
		X509_CRL_free(c);
		X509_free(x);
	}
	/* DEREGISTER revokes. */
	host_init(&b, "hb", 0);
	rsip_client_attach_csr(&b.cl, b.csr, b.csr_len);
	cr_assert_eq(rsip_client_assign_ports(&b.cl, 0, 10, 0, &g), 0);
	cr_assert(verify(&b, g.first, g.first + 9, 0, 0, sb));
	cr_assert_eq(rsip_client_deregister(&b.cl), 0);
	cr_assert_str_eq(status_of(sb), "revoked");
	host_fini(&a);
	host_fini(&b);
}

Test(rsip_ca, expiry_and_recovery)
{
	struct host h;
	struct rsip_grant g;
	char s1[LCA_SERIAL_STRLEN], s2[LCA_SERIAL_STRLEN];
	unsigned n = 0;

	host_init(&h, "hx", 0);
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_assign_ports(&h.cl, 0, 10, 0, &g), 0);
	cr_assert(verify(&h, g.first, g.first + 9, 0, 0, s1));
	/* The lease lapses early (as if the clock had run): the sweep revokes
	 * before it frees. */
	pthread_mutex_lock(&mu);
	raw_sql("UPDATE bindings SET until_ms=1 WHERE state=1");
	rsip_server_sweep(&srv);
	pthread_mutex_unlock(&mu);
	cr_assert_str_eq(status_of(s1), "revoked");
	/* New block, new certificate; then the daemon "crashes", the
	 * allocation lapses in the store behind its back, and recovery
	 * revokes the certificate. */
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_assign_ports(&h.cl, 0, 10, 0, &g), 0);
	cr_assert(verify(&h, g.first, g.first + 9, 0, 0, s2));
	rsip_client_close(&h.cl);
	close_server();
	open_server();
	pthread_mutex_lock(&mu);
	cr_assert_eq(xd_ca_reconcile(xca, time(NULL), &n), 0);
	cr_assert_eq(n, 0, "allocation still held: nothing revoked");
	raw_sql("UPDATE bindings SET state=2 WHERE state=1");
	cr_assert_eq(xd_ca_reconcile(xca, time(NULL), &n), 0);
	cr_assert_eq(n, 1);
	pthread_mutex_unlock(&mu);
	cr_assert_str_eq(status_of(s2), "revoked");
	host_fini(&h);
}

/* Renewal is no revocation event for peers: the superseded certificate is
 * in the CRL, but xd_ca_poll reports nothing (no notice is sent). */
Test(rsip_ca, superseded_is_not_announced)
{
	struct host h;
	struct rsip_grant g;
	char s1[LCA_SERIAL_STRLEN], s2[LCA_SERIAL_STRLEN];
	struct xd_ca_revoked rv[8];
	unsigned n = 99;
	uint32_t granted;
	const uint8_t *crl;
	size_t crl_len;

	host_init(&h, "hs", 0);
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_assign_ports(&h.cl, 0, 10, 0, &g), 0);
	cr_assert(verify(&h, g.first, g.first + 9, 0, 0, s1));
	pthread_mutex_lock(&mu);
	cr_assert_eq(xd_ca_poll(xca, time(NULL), rv, 8, &n), 1);
	pthread_mutex_unlock(&mu);
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_extend(&h.cl, g.bind_id, 0, &granted), 0);
	cr_assert(verify(&h, g.first, g.first + 9, 0, 0, s2));
	pthread_mutex_lock(&mu);
	cr_assert_eq(xd_ca_poll(xca, time(NULL), rv, 8, &n), 1, "a new CRL (s1 superseded now)");
	cr_assert_eq(n, 0, "superseded: nothing to announce");
	cr_assert_eq(xd_ca_poll(xca, time(NULL), rv, 8, &n), 0, "seen once");
	crl = xd_ca_crl(xca, &crl_len);
	{
		const unsigned char *p = crl;
		X509_CRL *c = d2i_X509_CRL(NULL, &p, (long)crl_len);
		BIGNUM *bn = NULL;
		ASN1_INTEGER *sn;
		X509_REVOKED *r = NULL;

		cr_assert_not_null(c);
		cr_assert(BN_hex2bn(&bn, s1) > 0);
		cr_assert_not_null(sn = BN_to_ASN1_INTEGER(bn, NULL));
		cr_assert_eq(X509_CRL_get0_by_serial(c, &r, sn), 1, "the superseded one is in the CRL");
		ASN1_INTEGER_free(sn);
		BN_free(bn);
		X509_CRL_free(c);
	}
	/* An operator revocation is announced. */
	cr_assert_eq(srv.st->ops->cert_revoke(srv.st, s2, LCA_REASON_KEY_COMPROMISE, time(NULL), NULL), 0);
	cr_assert_eq(xd_ca_poll(xca, time(NULL), rv, 8, &n), 1);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(rv[0].serial, s2);
	pthread_mutex_unlock(&mu);
	cr_assert_str_eq(status_of(s1), "revoked");
	host_fini(&h);
}

/* `xdnatctl cert revoke` locks the host out: no certificate on renewal or
 * on a new allocation (REGISTRATION_DENIED), the blocks stay; enrolling it
 * again (a new secret) lets it have one.  Automatic revocations (renewal,
 * FREE) do not lock. */
Test(rsip_ca, operator_revocation_locks_out_until_reenrolled)
{
	struct host h;
	struct rsip_grant g, g2;
	char s1[LCA_SERIAL_STRLEN], s2[LCA_SERIAL_STRLEN], s3[LCA_SERIAL_STRLEN];
	uint8_t secret[RSIP_SECRET_LEN];
	uint32_t granted;
	char why[LCA_SERIAL_STRLEN];
	int reason = -1;

	host_init(&h, "hl", 0);
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_assign_ports(&h.cl, 0, 10, 0, &g), 0);
	cr_assert(verify(&h, g.first, g.first + 9, 0, 0, s1));
	/* FREE of a second block: cessationOfOperation, no lockout. */
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_assign_ports(&h.cl, 0, 10, 0, &g2), 0);
	cr_assert(verify(&h, g.first, g.first + 9, 0, 0, s2));
	cr_assert_eq(rsip_client_free(&h.cl, g2.bind_id), 0);
	cr_assert_str_eq(status_of(s2), "revoked");
	pthread_mutex_lock(&mu);
	cr_assert_eq(xd_ca_locked_out(srv.st, "hl", why, sizeof(why), &reason), 0);
	pthread_mutex_unlock(&mu);
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_extend(&h.cl, g.bind_id, 0, &granted), 0);
	cr_assert(verify(&h, g.first, g.first + 9, 0, 0, s3));
	/* The operator revokes it. */
	pthread_mutex_lock(&mu);
	cr_assert_eq(srv.st->ops->cert_revoke(srv.st, s3, LCA_REASON_UNSPECIFIED, time(NULL), NULL), 0);
	cr_assert_eq(xd_ca_locked_out(srv.st, "hl", why, sizeof(why), &reason), 1);
	cr_assert_str_eq(why, s3);
	cr_assert_eq(reason, LCA_REASON_UNSPECIFIED);
	pthread_mutex_unlock(&mu);
	h.cl.cert_new = false;
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_extend(&h.cl, g.bind_id, 0, &granted), RSIP_E_REGISTRATION_DENIED);
	cr_assert_not(h.cl.cert_new);
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_assign_ports(&h.cl, 0, 10, 0, &g2), RSIP_E_REGISTRATION_DENIED);
	/* The lease itself still renews without a CSR. */
	cr_assert_eq(rsip_client_extend(&h.cl, g.bind_id, 0, &granted), 0);
	/* The poll revokes the host's other live certificates with it. */
	poll_now();
	cr_assert_str_eq(status_of(s1), "revoked");
	cr_assert_eq(valid_count("hl"), 0);
	/* Enrolled again: a new secret, a new session, a certificate again. */
	rsip_client_close(&h.cl);
	pthread_mutex_lock(&mu);
	cr_assert_eq(xd_store_enroll_new(srv.st, "hl", 0, secret), 0);
	cr_assert_eq(xd_ca_locked_out(srv.st, "hl", NULL, 0, NULL), 0);
	pthread_mutex_unlock(&mu);
	rsip_client_free_certs(&h.cl);
	rsip_client_init(&h.cl, htonl(0x7f000001), port, "hl", secret, 3000);
	cr_assert_eq(rsip_client_register(&h.cl), 0);
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_extend(&h.cl, g.bind_id, 0, &granted), 0);
	cr_assert(h.cl.cert_new);
	cr_assert(verify(&h, g.first, g.first + 9, 0, 0, NULL));
	cr_assert_eq(valid_count("hl"), 1);
	host_fini(&h);
}

/* The poll revokes a revoked host's other certificates, but only those of
 * the enrolment the revoked one was issued under: a host enrolled again
 * (and certified) before the poll keeps its new certificate. */
Test(rsip_ca, host_revocation_spares_a_new_enrolment)
{
	struct host h;
	struct rsip_grant g;
	char s1[LCA_SERIAL_STRLEN], s2[LCA_SERIAL_STRLEN];
	uint8_t secret[RSIP_SECRET_LEN];

	host_init(&h, "hq", 0);
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_assign_ports(&h.cl, 0, 10, 0, &g), 0);
	cr_assert(verify(&h, g.first, g.first + 9, 0, 0, s1));
	rsip_client_close(&h.cl);
	pthread_mutex_lock(&mu);
	cr_assert_eq(srv.st->ops->cert_revoke(srv.st, s1, LCA_REASON_KEY_COMPROMISE, time(NULL), NULL), 0);
	cr_assert_eq(xd_store_enroll_new(srv.st, "hq", 0, secret), 0);
	pthread_mutex_unlock(&mu);
	rsip_client_free_certs(&h.cl);
	rsip_client_init(&h.cl, htonl(0x7f000001), port, "hq", secret, 3000);
	cr_assert_eq(rsip_client_register(&h.cl), 0);
	rsip_client_attach_csr(&h.cl, h.csr, h.csr_len);
	cr_assert_eq(rsip_client_assign_ports(&h.cl, 0, 10, 0, &g), 0, "re-enrolled: not locked out");
	cr_assert(verify(&h, g.first, g.first + 9, 0, 0, s2));
	poll_now();
	cr_assert_str_eq(status_of(s1), "revoked");
	cr_assert_str_eq(status_of(s2), "valid", "the new enrolment's certificate was revoked with the old one");
	host_fini(&h);
}
