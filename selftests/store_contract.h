/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The store's contract (store.h), whatever the backend: included by
 * test_store.c (SQLite) and test_store_etcd.c (etcd), each of which
 * defines the handle `st` under test before including this file (and
 * includes lca.h, counters.h, <time.h>).
 */
#ifndef XDNAT_STORE_CONTRACT_H
#define XDNAT_STORE_CONTRACT_H

static void contract_enrolments(void)
{
	uint8_t sec[RSIP_SECRET_LEN], got[RSIP_SECRET_LEN];
	uint32_t lan = 1;

	cr_assert_eq(xd_store_enroll_new(st, "h1", htonl(0x0a000002), sec), 0);
	cr_assert_eq(st->ops->host_secret(st, "h1", got, &lan), 0);
	cr_assert_eq(memcmp(sec, got, sizeof(sec)), 0);
	cr_assert_eq(lan, htonl(0x0a000002));
	/* Enrolling again replaces the secret. */
	cr_assert_eq(xd_store_enroll_new(st, "h1", 0, sec), 0);
	cr_assert_eq(st->ops->host_secret(st, "h1", got, &lan), 0);
	cr_assert_eq(memcmp(sec, got, sizeof(sec)), 0);
	cr_assert_eq(lan, 0);
	/* Errors come back with a message; nothing is printed. */
	cr_assert_eq(st->ops->enroll(st, "bad name", 0, sec, 1), -EINVAL);
	cr_assert_not_null(strstr(xd_store_error(st), "not a valid host name"), "%s", xd_store_error(st));
	cr_assert_eq(st->ops->host_secret(st, "nobody", got, &lan), -ENOENT);
	cr_assert_eq(st->ops->unenroll(st, "h1"), 0);
	cr_assert_eq(st->ops->unenroll(st, "h1"), -ENOENT);
	cr_assert_not_null(strstr(xd_store_error(st), "no enrolled host 'h1'"), "%s", xd_store_error(st));
}

static void contract_registrations(void)
{
	struct xd_client c;
	uint32_t id1, id2;

	cr_assert_eq(st->ops->client_add(st, "h1", 11, 100, &id1), 0);
	cr_assert_eq(st->ops->client_add(st, "h2", 12, 100, &id2), 0);
	cr_assert_neq(id1, id2);
	cr_assert_eq(st->ops->client_add(st, "h1", 13, 100, &id2), -EIO, "a name registers once");
	cr_assert_eq(st->ops->client_get(st, id1, &c), 1);
	cr_assert_str_eq(c.name, "h1");
	cr_assert_eq(c.lan, 11);
	cr_assert_eq(c.host_id, 0);
	cr_assert_eq(c.gidx, -1);
	cr_assert_eq(st->ops->client_get(st, 999, &c), 0);
	cr_assert_eq(st->ops->client_by_name(st, "h2", &c), 1);
	cr_assert_eq(c.lan, 12);
	cr_assert_eq(st->ops->client_by_lan(st, 11, &c), 1);
	cr_assert_eq(c.id, id1);
	cr_assert_eq(st->ops->client_touch(st, id1, 21, 200), 0);
	cr_assert_eq(st->ops->client_touch(st, id1, 0, 300), 0);
	cr_assert_eq(st->ops->client_get(st, id1, &c), 1);
	cr_assert_eq(c.lan, 21, "lan 0 keeps it");
	cr_assert_eq(c.last_seen_ms, 300);
	cr_assert_eq(st->ops->client_set_host(st, id1, 7, 0), 0);
	cr_assert_eq(st->ops->host_id_taken(st, 7), 1);
	cr_assert_eq(st->ops->host_id_taken(st, 8), 0);
	/* Expiry forgets idle registrations without a host id only. */
	cr_assert_eq(st->ops->clients_expire(st, 1000), 0);
	cr_assert_eq(st->ops->client_get(st, id1, &c), 1);
	cr_assert_eq(st->ops->client_by_name(st, "h2", &c), 0);
	cr_assert_eq(st->ops->client_del(st, id1), 0);
	cr_assert_eq(st->ops->client_get(st, id1, &c), 0);
}

static int count_b(void *arg, const struct xd_binding *b)
{
	(void)b;
	(*(unsigned *)arg)++;
	return 0;
}

static int count_c(void *arg, const struct xd_client *c)
{
	(void)c;
	(*(unsigned *)arg)++;
	return 0;
}

static uint32_t claim(uint32_t cid, int kind, uint32_t gidx, uint32_t first, uint32_t last, int64_t until,
		      int expect)
{
	struct xd_claim c = { .client_id = cid, .host_id = 5, .gidx = gidx, .kind = kind, .first = first,
			      .last = last, .until_ms = until, .now_ms = 10 };
	uint32_t bid = 0;

	cr_assert_eq(st->ops->claim(st, &c, &bid), expect, "claim %u-%u: %s", first, last,
		     xd_store_error(st));
	return bid;
}

static void contract_bindings(void)
{
	struct xd_binding b, out[8];
	struct xd_held h;
	struct xd_run *runs;
	struct xd_client c;
	uint32_t cid, b1, b2, b3, ids[8];
	unsigned n = 0;
	size_t nr;
	int64_t v;

	cr_assert_eq(st->ops->client_add(st, "h1", 11, 1, &cid), 0);
	b1 = claim(cid, RSIP_KIND_PORTS, 0, 2000, 2099, 5000, 0);
	b2 = claim(cid, RSIP_KIND_PORTS, 0, 2100, 2149, 6000, 0);
	/* Claims are all or nothing: an overlap on the same address fails. */
	claim(cid, RSIP_KIND_PORTS, 0, 2149, 2200, 1, -EBUSY);
	cr_assert_not_null(strstr(xd_store_error(st), "overlap"));
	claim(cid, RSIP_KIND_PORTS, 0, 1990, 2000, 1, -EBUSY);
	claim(cid, RSIP_KIND_PORTS, 1, 2000, 2099, 9000, 0);  /* another global address */
	b3 = claim(cid, RSIP_KIND_SPI, 0, 0x10000, 0x1ffff, 7000, 0);
	claim(cid, RSIP_KIND_SPI, 1, 0x1ff00, 0x2ffff, 1, -EBUSY);  /* SPIs: one space */
	claim(999, RSIP_KIND_PORTS, 0, 3000, 3000, 1, -ENOENT);
	cr_assert_eq(st->ops->client_get(st, cid, &c), 1);
	cr_assert_eq(c.host_id, 5);
	cr_assert_eq(st->ops->binding_get(st, b1, &b), 1);
	cr_assert(b.first == 2000 && b.last == 2099 && b.state == RSIP_BIND_ACTIVE && b.until_ms == 5000);
	cr_assert_eq(st->ops->each_binding(st, count_b, &n), 0);
	cr_assert_eq(n, 4);
	n = 0;
	cr_assert_eq(st->ops->each_client(st, count_c, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(st->ops->client_runs(st, cid, RSIP_KIND_PORTS, &runs, &nr), 0);
	cr_assert_eq(nr, 2, "2000-2149 on address 0 merged, 2000-2099 on address 1");
	cr_assert(runs[0].first == 2000 && runs[0].last == 2099 && runs[1].first == 2000 &&
		  runs[1].last == 2149);
	free(runs);
	cr_assert_eq(st->ops->client_held(st, cid, RSIP_KIND_PORTS, &h), 0);
	cr_assert(h.count == 3 && h.size == 250 && h.min_first == 2000 && h.max_last == 2149 &&
		  h.min_until == 5000);
	cr_assert_eq(st->ops->client_held(st, cid, 0, &h), 0);
	cr_assert_eq(h.count, 4);
	cr_assert_eq(st->ops->last_before(st, RSIP_KIND_PORTS, 0, 2120, &v), 1);
	cr_assert_eq(v, 2149);
	cr_assert_eq(st->ops->last_before(st, RSIP_KIND_PORTS, 0, 1000, &v), 0);
	cr_assert_eq(st->ops->held_at(st, "h1", RSIP_KIND_SPI, 0x18000, &v), 1);
	cr_assert_eq(v, 0x1ffff);
	cr_assert_eq(st->ops->held_at(st, "h1", RSIP_KIND_SPI, 0x28000, &v), 0);
	cr_assert_eq(st->ops->client_bindings(st, cid, out, 2, &n), 0);
	cr_assert_eq(n, 4, "all are counted, 2 returned");
	cr_assert_eq(out[0].id, b1);
	cr_assert_eq(st->ops->lapsed(st, 6000, ids, 8, &n), 0);
	cr_assert_eq(n, 2);
	/* Quarantine, its end, the deadlines. */
	cr_assert_eq(st->ops->binding_set(st, b1, RSIP_BIND_QUARANTINE, 8000), 0);
	cr_assert_eq(st->ops->next_until(st, RSIP_BIND_QUARANTINE, &v), 1);
	cr_assert_eq(v, 8000);
	cr_assert_eq(st->ops->next_until(st, RSIP_BIND_ACTIVE, &v), 1);
	cr_assert_eq(v, 6000);
	n = 0;
	cr_assert_eq(st->ops->quarantine_end(st, 7999, count_b, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(st->ops->quarantine_end(st, 8000, count_b, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(st->ops->binding_get(st, b1, &b), 0);
	cr_assert_eq(st->ops->binding_del(st, b2), 0);
	cr_assert_eq(st->ops->binding_get(st, b2, &b), 0);
	cr_assert_eq(st->ops->binding_get(st, b3, &b), 1);
}

static int count_row(void *arg, const struct xd_list_row *r)
{
	unsigned *n = arg;

	n[0]++;
	n[1] += r->bound;
	return 0;
}

static void contract_listing_counts_settings(void)
{
	uint8_t sec[RSIP_SECRET_LEN];
	unsigned n[2] = { 0, 0 };
	int64_t v[4], x;
	uint32_t cid;

	cr_assert_eq(xd_store_enroll_new(st, "h1", 0, sec), 0);
	cr_assert_eq(xd_store_enroll_new(st, "h2", 0, sec), 0);
	cr_assert_eq(st->ops->client_add(st, "h1", 11, 1, &cid), 0);
	claim(cid, RSIP_KIND_PORTS, 0, 2000, 2009, 5000, 0);
	claim(cid, RSIP_KIND_PORTS, 0, 2010, 2019, 5000, 0);
	cr_assert_eq(st->ops->list(st, count_row, n), 0);
	cr_assert_eq(n[0], 3, "h1 twice (two bindings), h2 once");
	cr_assert_eq(n[1], 2);
	cr_assert_eq(st->ops->counts(st, v), 0);
	cr_assert(v[0] == 2 && v[1] == 1 && v[2] == 2 && v[3] == 0);
	cr_assert_eq(st->ops->setting_get(st, "quarantine", &x), -ENOENT);
	cr_assert_eq(st->ops->setting_set(st, "quarantine", 120), 0);
	cr_assert_eq(st->ops->setting_set(st, "quarantine", 60), 0);
	cr_assert_eq(st->ops->setting_get(st, "quarantine", &x), 0);
	cr_assert_eq(x, 60);
}

static void contract_counter_baselines(void)
{
	struct xd_ctr_sample smp[2] = { { .key = "reason:a", .v = { 1, 2, 0, 0 } },
					{ .key = "host:3", .v = { 3, 4, 5, 6 } } };
	struct xd_ctr_state s = { 0 }, l;
	uint32_t cid;

	cr_assert_eq(xd_ctr_load(st, "g1", &l), 0, "%s", xd_store_error(st));
	cr_assert_eq(l.since_ms, 0);
	xd_ctr_free(&l);
	cr_assert_eq(st->ops->client_add(st, "h1", 11, 1, &cid), 0);
	cr_assert_eq(st->ops->client_set_host(st, cid, 3, 0), 0);
	cr_assert_eq(xd_ctr_fold(&s, "g1", smp, 2, 777), 0);
	cr_assert_eq(st->ops->ctr_store(st, &s), 0, "%s", xd_store_error(st));
	cr_assert_eq(xd_ctr_load(st, "g1", &l), 0);
	cr_assert(l.same_gen);
	cr_assert_eq(l.since_ms, 777);
	cr_assert_eq(l.n, 2);
	cr_assert_str_eq(l.rows[0].key, "host:3");
	cr_assert_eq(l.rows[0].last[3], 6);
	cr_assert(l.rows[0].has_last);
	cr_assert_eq(l.n_names, 1);
	cr_assert_str_eq(l.names[0].name, "h1");
	cr_assert_eq(l.names[0].host_id, 3);
	xd_ctr_free(&l);
	xd_ctr_free(&s);
}

/* ---- the CA's record store (struct lca_certdb) and the cert_* ops */

static int keep_rec(void *arg, const struct lca_record *r)
{
	struct lca_record *o = arg;

	/* what the tests look at; strings only live during the callback */
	o->not_after = r->not_after;
	o->issued_at = r->issued_at;
	o->revoked = r->revoked;
	o->reason = r->reason;
	o->der_len = r->der_len;
	o->identity = !strcmp(r->host_id, "h1") && !strcmp(r->lan, "10.0.0.2") &&
		      !strcmp(r->ports, "2000-2099") && r->der_len == 3 && !memcmp(r->der, "\x30\x01\x02", 3)
		      ? "ok" : "differs";
	return 0;
}

static int serials(void *arg, const struct lca_record *r)
{
	char *out = arg;

	strcat(out, r->serial);
	strcat(out, " ");
	return 0;
}

static int count_revoked(void *arg, const struct xd_cert_revoked *r)
{
	char *out = arg;

	strcat(out, r->serial);
	strcat(out, " ");
	return 0;
}

static void put_rec(struct lca_certdb *d, const char *serial, const char *host, int64_t issued, int expect)
{
	struct lca_err e = { { 0 } };
	struct lca_record r = { .serial = serial, .host_id = host, .identity = "id", .lan = "10.0.0.2",
				.ports = "2000-2099", .spis = "", .not_before = 100, .not_after = 5000,
				.issued_at = issued, .der = (const unsigned char *)"\x30\x01\x02", .der_len = 3 };

	cr_assert_eq(d->ops->insert(d, &r, &e), expect, "insert %s: %s", serial, e.msg);
}

static void contract_ca_records(void)
{
	struct lca_err e = { { 0 } };
	struct lca_certdb *d = st->ops->ca_certdb(st, &e);
	struct lca_record r = { 0 };
	char list[256] = "", un[256] = "";
	int64_t num = 0, tu = 0, n2, t2;
	unsigned char *der;
	size_t len;

	cr_assert_not_null(d, "%s", e.msg);
	cr_assert_eq(d->ops->init(d, &e), 0, "%s", e.msg);
	put_rec(d, "0B", "h1", 20, 0);
	put_rec(d, "0A", "h2", 10, 0);
	put_rec(d, "0C", "h1", 30, 0);
	put_rec(d, "0A", "h3", 40, -EEXIST);        /* a serial is given once */
	cr_assert_eq(d->ops->list(d, NULL, serials, list, &e), 0, "%s", e.msg);
	cr_assert_str_eq(list, "0A 0B 0C ", "oldest first");
	list[0] = 0;
	cr_assert_eq(d->ops->list(d, "h1", serials, list, &e), 0);
	cr_assert_str_eq(list, "0B 0C ");
	cr_assert_eq(d->ops->get(d, "0b", keep_rec, &r, &e), 0, "%s", e.msg);
	cr_assert_str_eq(r.identity, "ok");
	cr_assert(r.not_after == 5000 && r.issued_at == 20 && !r.revoked);
	cr_assert_eq(d->ops->get(d, "0D", keep_rec, &r, &e), -ENOENT);
	/* revocation, once; the announcement queue */
	cr_assert_eq(d->ops->revoke(d, "0B", LCA_REASON_KEY_COMPROMISE, 50, &e), 0, "%s", e.msg);
	cr_assert_eq(d->ops->revoke(d, "0B", LCA_REASON_KEY_COMPROMISE, 51, &e), -EALREADY);
	cr_assert_eq(d->ops->revoke(d, "0D", LCA_REASON_KEY_COMPROMISE, 51, &e), -EALREADY);
	cr_assert_eq(st->ops->cert_revoke(st, "0C", LCA_REASON_SUPERSEDED, 45, &e), 0, "%s", e.msg);
	cr_assert_eq(st->ops->cert_revoke(st, "0C", LCA_REASON_SUPERSEDED, 45, &e), -EALREADY);
	cr_assert_eq(d->ops->get(d, "0B", keep_rec, &r, &e), 0);
	cr_assert(r.revoked && r.reason == LCA_REASON_KEY_COMPROMISE);
	cr_assert_eq(st->ops->cert_unannounced(st, 16, count_revoked, un), 0, "%s", xd_store_error(st));
	cr_assert_str_eq(un, "0C 0B ", "oldest revocation first");
	cr_assert_eq(st->ops->cert_announced(st, "0C", 60), 0, "%s", xd_store_error(st));
	un[0] = 0;
	cr_assert_eq(st->ops->cert_unannounced(st, 16, count_revoked, un), 0);
	cr_assert_str_eq(un, "0B ");
	/* CRL numbers and times strictly increase; never back in time */
	cr_assert_eq(d->ops->next_crl(d, "", 1000, &num, &tu, &e), 0, "%s", e.msg);
	cr_assert(num == 1 && tu == 1000);
	cr_assert_eq(d->ops->next_crl(d, "", 1000, &n2, &t2, &e), 0);
	cr_assert(n2 == 2 && t2 == 1001);
	cr_assert_eq(d->ops->next_crl(d, "", 100, &n2, &t2, &e), -EINVAL);
	cr_assert_not_null(strstr(e.msg, "back in time"), "%s", e.msg);
	/* the latest CRL: a lower number never replaces a higher one */
	cr_assert_eq(d->ops->crl_get(d, &der, &len, &num, &e), -ENOENT);
	cr_assert_eq(d->ops->crl_put(d, 2, (const unsigned char *)"two", 3, &e), 0, "%s", e.msg);
	cr_assert_eq(d->ops->crl_put(d, 1, (const unsigned char *)"one", 3, &e), 0);
	cr_assert_eq(d->ops->crl_get(d, &der, &len, &num, &e), 0, "%s", e.msg);
	cr_assert(num == 2 && len == 3 && !memcmp(der, "two", 3));
	free(der);
	/* groups of writes are all or nothing */
	cr_assert_eq(d->ops->begin(d, &e), 0);
	put_rec(d, "0E", "h1", 70, 0);
	cr_assert_eq(d->ops->end(d, -EIO, &e), -EIO);
	cr_assert_eq(d->ops->get(d, "0E", keep_rec, &r, &e), -ENOENT);
}

/* The Local CA over the store: issue, revoke the overlapping, sign CRLs
 * (numbers 1, 2), and the latest CRL is the store's. */
static void contract_ca_library(void)
{
	struct lca_err e = { { 0 } };
	struct lca_config cfg = { .crl_period_s = 3600 };
	int64_t now = time(NULL), num = 0;
	EVP_PKEY *rk, *lk, *hk;
	X509 *root, *lcert;
	X509_REQ *req;
	struct lca_ns ns;
	struct lca *ca;
	struct lca_range ports = { 2000, 2099 };
	struct lca_issued out;
	unsigned char *csr = NULL, *crl1 = NULL, *crl2 = NULL, *kept = NULL;
	size_t csr_len, l1, l2, lk_len;
	unsigned n = 0;
	char un[256] = "";

	cr_assert(rk = lca_keygen(LCA_KEY_EC_P256, &e), "%s", e.msg);
	cr_assert(lk = lca_keygen(LCA_KEY_EC_P256, &e), "%s", e.msg);
	cr_assert(hk = lca_keygen(LCA_KEY_EC_P256, &e), "%s", e.msg);
	cr_assert(root = lca_root_create(rk, "O=test, CN=root", now - 60, now + 86400, &e));
	cr_assert_eq(lca_ns_init(&ns, htonl(0xcb007107), NULL, NULL, &e), 0, "%s", e.msg);
	cr_assert(req = lca_csr_create(lk, &ns, &e), "%s", e.msg);
	cr_assert(lcert = lca_cert_sign(req, root, rk, &ns, now - 60, now + 86400, &e), "%s", e.msg);
	X509_REQ_free(req);
	lca_ns_release(&ns);
	cr_assert_eq(lca_open_mem_certdb(&cfg, lk, lcert, NULL, st->ops->ca_certdb(st, &e), &ca, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(lca_host_csr(hk, "h", &csr, &csr_len, &e), 0, "%s", e.msg);
	struct lca_issue_req rq = { .csr = csr, .csr_len = csr_len, .host_id = "h1",
				    .lan_be = htonl(0x0a000002), .ports = &ports, .n_ports = 1,
				    .not_before = now - 60, .not_after = now + 3600 };
	cr_assert_eq(lca_issue(ca, &rq, &out, &e), 0, "%s", e.msg);
	cr_assert_eq(st->ops->cert_revoke_overlapping(st, RSIP_KIND_PORTS, 2050, 2050,
						      LCA_REASON_CESSATION, now, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 1);
	cr_assert_eq(st->ops->cert_unannounced(st, 16, count_revoked, un), 0);
	cr_assert_not_null(strstr(un, out.serial), "%s", un);
	cr_assert_eq(lca_crl(ca, now, &crl1, &l1, &e), 0, "%s", e.msg);
	cr_assert_eq(lca_crl(ca, now, &crl2, &l2, &e), 0, "%s", e.msg);
	cr_assert_eq(lca_crl_latest(ca, &kept, &lk_len, &num, &e), 0, "%s", e.msg);
	cr_assert_eq(num, 2);
	cr_assert(lk_len == l2 && !memcmp(kept, crl2, l2), "the store keeps the latest CRL");
	{
		const unsigned char *p = kept;
		X509_CRL *c = d2i_X509_CRL(NULL, &p, (long)lk_len);

		cr_assert_not_null(c);
		cr_assert_eq(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(c)), 1);
		X509_CRL_free(c);
	}
	free(kept);
	OPENSSL_free(crl1);
	OPENSSL_free(crl2);
	OPENSSL_free(csr);
	lca_issued_free(&out);
	lca_close(ca);
	X509_free(root);
	X509_free(lcert);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(lk);
	EVP_PKEY_free(hk);
}

#endif
