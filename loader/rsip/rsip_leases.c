// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* RSIP server, leases, quarantine, release and recovery: see rsip_server.h and rsip_server_int.h. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include "rsip_server_int.h"

/* The client's active binding @id, or BAD_BIND_ID (also for another's). */
static uint16_t own_binding(struct rsip_server *s, const struct client *c, uint32_t id, struct binding *b)
{
	int rc = rs_get_binding(s, id, b);

	if (rc < 0)
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if (rc == 0 || b->client_id != c->id || b->state != RSIP_BIND_ACTIVE)
		return RSIP_E_BAD_BIND_ID;
	return RSIP_E_OK;
}

uint16_t rs_do_extend(struct rsip_server *s, struct client *c, struct req *r)
{
	const struct rsip_param *lt = rs_slot(r, RSIP_S_B_LEASE);
	uint32_t lease = rs_clamp_lease(&s->cfg, lt != NULL, lt ? rsip_param_u32(lt) : 0);
	struct binding b;
	uint16_t e;

	r->bind_id = rsip_param_u32(rs_slot(r, RSIP_S_B_BIND));
	if (rs_srv_begin(s))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if ((e = own_binding(s, c, r->bind_id, &b)) ||
	    rs_exec4(s, "UPDATE bindings SET until_ms=? WHERE bind_id=?", 2,
		  (int64_t)(s->now_ms() + (uint64_t)lease * 1000), b.id, 0, 0) ||
	    (e = rs_issue_cert(s, c, r)) || rs_srv_commit(s)) {
		rs_srv_rollback(s);
		return e ? e : RSIP_E_INTERNAL_SERVER_ERROR;
	}
	rsip_begin(r->b, RSIP_EXTEND_RESPONSE);
	rsip_put_u32(r->b, RSIP_P_CLIENT_ID, c->id);
	rsip_put_u32(r->b, RSIP_P_BIND_ID, b.id);
	rsip_put_u32(r->b, RSIP_P_LEASE_TIME, lease);
	return RSIP_E_OK;
}

uint16_t rs_do_free(struct rsip_server *s, struct client *c, struct req *r)
{
	struct binding b;
	uint16_t e;

	r->bind_id = rsip_param_u32(rs_slot(r, RSIP_S_B_BIND));
	if (rs_srv_begin(s))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if ((e = own_binding(s, c, r->bind_id, &b)) ||
	    rs_release_binding(s, &b, s->now_ms(), RSIP_REVOKE_CESSATION) ||
	    rs_srv_commit(s)) {
		rs_srv_rollback(s);
		return e ? e : RSIP_E_INTERNAL_SERVER_ERROR;
	}
	xd_info("client %u: freed bind %u (%s %u-%u), quarantined %us", c->id, b.id,
		b.kind == RSIP_KIND_PORTS ? "ports" : "SPIs", b.first, b.last, s->cfg.quarantine);
	rsip_begin(r->b, RSIP_FREE_RESPONSE);
	rsip_put_u32(r->b, RSIP_P_CLIENT_ID, c->id);
	rsip_put_u32(r->b, RSIP_P_BIND_ID, b.id);
	return RSIP_E_OK;
}

/* Free every binding of client @id and forget the registration. */
static int drop_client(struct rsip_server *s, uint32_t id, int reason)
{
	uint64_t now = s->now_ms();
	uint32_t ids[256];
	unsigned n;

	/* In batches: a host may hold more bindings than one batch (every one
	 * must leave the maps before the client row goes). */
	do {
		sqlite3_stmt *st = rs_prep(s, "SELECT bind_id FROM bindings WHERE client_id=? AND state=1 "
					   "LIMIT 256");

		if (!st)
			return -EIO;
		sqlite3_bind_int64(st, 1, id);
		for (n = 0; n < 256 && sqlite3_step(st) == SQLITE_ROW; n++)
			ids[n] = (uint32_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		for (unsigned i = 0; i < n; i++) {
			struct binding b;

			if (rs_get_binding(s, ids[i], &b) != 1 || rs_release_binding(s, &b, now, reason))
				return -EIO;
		}
	} while (n == 256);
	return rs_exec4(s, "DELETE FROM clients WHERE client_id=?", 1, id, 0, 0, 0);
}

int rsip_server_evict(struct rsip_server *s, const char *name, struct rsip_freed *out, unsigned max,
		      unsigned *n)
{
	uint8_t secret[RSIP_SECRET_LEN];
	sqlite3_stmt *st;
	uint32_t lan;
	int64_t id = 0;
	int rc;

	*n = 0;
	rc = rsip_host_secret(s->db, name, secret, &lan);
	memset(secret, 0, sizeof(secret));
	if (rc)
		return rc;
	if (rs_srv_begin(s))
		return -EIO;
	st = rs_prep(s, "SELECT client_id FROM clients WHERE name=?");
	if (!st)
		goto fail;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	if (!id) {
		rs_srv_rollback(s);
		return 0;
	}
	st = rs_prep(s, "SELECT bind_id, kind, first, last FROM bindings WHERE client_id=? AND state=1 "
		     "ORDER BY bind_id");
	if (!st)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (*n < max)
			out[*n] = (struct rsip_freed){
				.bind_id = (uint32_t)sqlite3_column_int64(st, 0),
				.kind = sqlite3_column_int(st, 1),
				.first = (uint32_t)sqlite3_column_int64(st, 2),
				.last = (uint32_t)sqlite3_column_int64(st, 3),
			};
		(*n)++;
	}
	sqlite3_finalize(st);
	if (drop_client(s, (uint32_t)id, RSIP_REVOKE_AFFILIATION) || rs_srv_commit(s))
		goto fail;
	xd_info("client %lld (%s) evicted: %u bindings quarantined %us", (long long)id, name, *n,
		s->cfg.quarantine);
	return 0;
fail:
	rs_srv_rollback(s);
	*n = 0;
	return -EIO;
}

uint16_t rs_do_deregister(struct rsip_server *s, struct rsip_session *sess, struct client *c,
			      struct req *r)
{
	if (rs_srv_begin(s))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if (drop_client(s, c->id, RSIP_REVOKE_CESSATION) || rs_srv_commit(s)) {
		rs_srv_rollback(s);
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	xd_info("client %u (%s) de-registered", c->id, sess->name);
	rsip_begin(r->b, RSIP_DEREGISTER_RESPONSE);
	rsip_put_u32(r->b, RSIP_P_CLIENT_ID, c->id);
	return RSIP_E_OK;
}

/* ------------------------------------------------------- leases, recovery */

int rsip_server_sweep(struct rsip_server *s)
{
	uint64_t now = s->now_ms();
	sqlite3_stmt *st;
	uint32_t ids[128];
	unsigned n = 0;
	int64_t next;
	int wait = 1000;

	st = rs_prep(s, "SELECT bind_id FROM bindings WHERE state=1 AND until_ms<=? LIMIT 128");
	if (!st)
		return wait;
	sqlite3_bind_int64(st, 1, (int64_t)now);
	while (n < 128 && sqlite3_step(st) == SQLITE_ROW)
		ids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (n && rs_srv_begin(s) == 0) {
		int rc = 0;

		for (unsigned i = 0; i < n && !rc; i++) {
			struct binding b;

			if (rs_get_binding(s, ids[i], &b) == 1) {
				xd_info("lease of bind %u (client %u, %s %u-%u) expired: removed, "
					"quarantined %us", b.id, b.client_id,
					b.kind == RSIP_KIND_PORTS ? "ports" : "SPIs", b.first, b.last,
					s->cfg.quarantine);
				rc = rs_release_binding(s, &b, now, RSIP_REVOKE_CESSATION);
			}
		}
		if (rc || rs_srv_commit(s))
			rs_srv_rollback(s);
	}
	/* Ended quarantines: the blocks are free again (and so in the index). */
	if (rs_query4(s, "SELECT 1 FROM bindings WHERE state=2 AND until_ms<=? LIMIT 1", &next, 1,
		   (int64_t)now, 0, 0, 0) == 1 && rs_srv_begin(s) == 0) {
		int rc = SQLITE_ERROR;

		st = rs_prep(s, "DELETE FROM bindings WHERE state=2 AND until_ms<=? RETURNING kind, gidx, first, last");
		if (st) {
			sqlite3_bind_int64(st, 1, (int64_t)now);
			while ((rc = sqlite3_step(st)) == SQLITE_ROW)
				rs_idx_queue(s, PEND_CLEAR, sqlite3_column_int(st, 0),
					  (uint32_t)sqlite3_column_int64(st, 1), (uint32_t)sqlite3_column_int64(st, 2),
					  (uint32_t)sqlite3_column_int64(st, 3));
			if (rc != SQLITE_DONE)
				xd_err("state database: %s", sqlite3_errmsg(s->db));
			sqlite3_finalize(st);
		}
		if (rc != SQLITE_DONE || rs_srv_commit(s))
			rs_srv_rollback(s);
	}
	rs_exec4(s, "DELETE FROM clients WHERE host_id=0 AND last_seen_ms<=? AND NOT EXISTS "
		 "(SELECT 1 FROM bindings b WHERE b.client_id=clients.client_id AND b.state=1)", 1,
	      (int64_t)now - (int64_t)s->cfg.reg_lease * 1000, 0, 0, 0);
	if (rs_query4(s, "SELECT MIN(until_ms) FROM bindings WHERE state=1", &next, 0, 0, 0, 0, 0) == 1) {
		int64_t d = next - (int64_t)s->now_ms();

		if (d < wait)
			wait = d < 0 ? 0 : (int)d;
	}
	return wait;
}

static int runs_equal(const struct xd_run *a, size_t na, const struct xd_run *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (a[i].first != b[i].first || a[i].last != b[i].last)
			return 0;
	return 1;
}

/* The client's active bindings of @kind as merged runs (sorted). */
int rs_db_runs(struct rsip_server *s, uint32_t client_id, int kind, struct xd_run **out, size_t *n)
{
	sqlite3_stmt *st = rs_prep(s, "SELECT first, last FROM bindings WHERE client_id=? AND kind=? "
				   "AND state=1 ORDER BY first");
	struct xd_run *r = NULL;
	size_t cnt = 0, cap = 0;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, client_id);
	sqlite3_bind_int64(st, 2, kind);
	while (sqlite3_step(st) == SQLITE_ROW) {
		uint32_t f = (uint32_t)sqlite3_column_int64(st, 0), l = (uint32_t)sqlite3_column_int64(st, 1);

		if (cnt && r[cnt - 1].last + 1 == f) {
			r[cnt - 1].last = l;
			continue;
		}
		if (cnt == cap) {
			struct xd_run *nr = realloc(r, (cap = cap ? cap * 2 : 8) * sizeof(*r));

			if (!nr) {
				free(r);
				sqlite3_finalize(st);
				return -ENOMEM;
			}
			r = nr;
		}
		r[cnt].first = f;
		r[cnt].last = l;
		cnt++;
	}
	sqlite3_finalize(st);
	*out = r;
	*n = cnt;
	return 0;
}

int rsip_server_reconcile(struct rsip_server *s)
{
	sqlite3_stmt *st = rs_prep(s, "SELECT client_id, lan_addr, host_id, gidx FROM clients WHERE host_id>0");
	int bad = 0;

	if (!st)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		uint32_t cid = (uint32_t)sqlite3_column_int64(st, 0);
		uint32_t lan = (uint32_t)sqlite3_column_int64(st, 1);
		uint32_t hid = (uint32_t)sqlite3_column_int64(st, 2);
		uint32_t gidx = (uint32_t)sqlite3_column_int64(st, 3);
		struct xd_run *want[2] = { NULL, NULL }, *have[2] = { NULL, NULL };
		size_t nw[2] = { 0, 0 }, nh[2] = { 0, 0 };
		uint32_t l, g;
		bool same;

		if (hid >= s->cfg.max_hosts || gidx >= s->cfg.n_gaddrs) {
			xd_warn("client %u: host id %u / global address %u do not fit this configuration",
				cid, hid, gidx);
			bad++;
			continue;
		}
		if (rs_db_runs(s, cid, RSIP_KIND_PORTS, &want[0], &nw[0]) ||
		    rs_db_runs(s, cid, RSIP_KIND_SPI, &want[1], &nw[1])) {
			bad++;
			goto next;
		}
		same = s->be.host_get(s->be.ctx, hid, &l, &g) == 0 && l == lan && g == gidx &&
		       s->be.runs(s->be.ctx, hid, RSIP_KIND_PORTS, &have[0], &nh[0]) == 0 &&
		       s->be.runs(s->be.ctx, hid, RSIP_KIND_SPI, &have[1], &nh[1]) == 0 &&
		       runs_equal(want[0], nw[0], have[0], nh[0]) && runs_equal(want[1], nw[1], have[1], nh[1]);
		if (same)
			goto next;
		xd_info("reconcile: host %u (client %u) differs from the store: reinstalling", hid, cid);
		if (s->be.host_get(s->be.ctx, hid, &l, &g) == 0)
			s->be.host_del(s->be.ctx, hid);
		if (s->be.host_add(s->be.ctx, hid, lan, gidx)) {
			bad++;
			goto next;
		}
		for (int k = 0; k < 2; k++)
			for (size_t i = 0; i < nw[k]; i++)
				if (rs_install(s, hid, k ? RSIP_KIND_SPI : RSIP_KIND_PORTS, want[k][i].first,
					    want[k][i].last))
					bad++;
next:
		for (int k = 0; k < 2; k++) {
			free(want[k]);
			free(have[k]);
		}
	}
	sqlite3_finalize(st);
	return bad ? -EIO : 0;
}
