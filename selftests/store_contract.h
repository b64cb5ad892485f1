/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The store's contract (store.h), whatever the backend: included by
 * test_store.c (SQLite) and test_store_etcd.c (etcd), each of which
 * defines the handle `st` under test before including this file.
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

#endif
