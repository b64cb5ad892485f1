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
static uint16_t own_binding(struct rsip_server *s, const struct xd_client *c, uint32_t id, struct xd_binding *b)
{
	int rc = rs_get_binding(s, id, b);

	if (rc < 0)
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if (rc == 0 || b->client_id != c->id || b->state != RSIP_BIND_ACTIVE)
		return RSIP_E_BAD_BIND_ID;
	return RSIP_E_OK;
}

uint16_t rs_do_extend(struct rsip_server *s, struct xd_client *c, struct req *r)
{
	const struct rsip_param *lt = rs_slot(r, RSIP_S_B_LEASE);
	uint32_t lease = rs_clamp_lease(&s->cfg, lt != NULL, lt ? rsip_param_u32(lt) : 0);
	struct xd_binding b;
	uint16_t e;

	r->bind_id = rsip_param_u32(rs_slot(r, RSIP_S_B_BIND));
	if (rs_srv_begin(s))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if ((e = own_binding(s, c, r->bind_id, &b)) ||
	    OPS(s)->binding_set(s->st, b.id, RSIP_BIND_ACTIVE,
				(int64_t)(s->now_ms() + (uint64_t)lease * 1000)) ||
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

uint16_t rs_do_free(struct rsip_server *s, struct xd_client *c, struct req *r)
{
	struct xd_binding b;
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
	struct xd_binding b[256];
	unsigned n, all;

	/* In batches: a host may hold more bindings than one batch (every one
	 * must leave the maps before the client row goes). */
	do {
		if (OPS(s)->client_bindings(s->st, id, b, 256, &all))
			return -EIO;
		n = all < 256 ? all : 256;
		for (unsigned i = 0; i < n; i++)
			if (rs_release_binding(s, &b[i], now, reason))
				return -EIO;
	} while (all > 256);
	return OPS(s)->client_del(s->st, id);
}

int rsip_server_evict(struct rsip_server *s, const char *name, struct rsip_freed *out, unsigned max,
		      unsigned *n)
{
	uint8_t secret[RSIP_SECRET_LEN];
	struct xd_binding *b = NULL;
	struct xd_client c;
	uint32_t lan, id;
	int rc;

	*n = 0;
	rc = OPS(s)->host_secret(s->st, name, secret, &lan);
	memset(secret, 0, sizeof(secret));
	if (rc)
		return rc;
	if (rs_srv_begin(s))
		return -EIO;
	rc = OPS(s)->client_by_name(s->st, name, &c);
	if (rc < 0)
		goto fail;
	if (rc == 0) {
		rs_srv_rollback(s);
		return 0;
	}
	id = c.id;
	if (max && !(b = calloc(max, sizeof(*b))))
		goto fail;
	if (OPS(s)->client_bindings(s->st, id, b, max, n))
		goto fail;
	for (unsigned i = 0; i < *n && i < max; i++)
		out[i] = (struct rsip_freed){ .bind_id = b[i].id, .kind = b[i].kind, .first = b[i].first,
					      .last = b[i].last };
	free(b);
	b = NULL;
	if (drop_client(s, (uint32_t)id, RSIP_REVOKE_AFFILIATION) || rs_srv_commit(s))
		goto fail;
	xd_info("client %u (%s) evicted: %u bindings quarantined %us", id, name, *n, s->cfg.quarantine);
	return 0;
fail:
	free(b);
	xd_err("RSIP: evict %s: %s", name, xd_store_error(s->st));
	rs_srv_rollback(s);
	*n = 0;
	return -EIO;
}

uint16_t rs_do_deregister(struct rsip_server *s, struct rsip_session *sess, struct xd_client *c,
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

static int unindex(void *arg, const struct xd_binding *b)
{
	rs_idx_queue(arg, PEND_CLEAR, b->kind, (uint32_t)b->gidx, b->first, b->last);
	return 0;
}

int rsip_server_sweep(struct rsip_server *s)
{
	uint64_t now = s->now_ms();
	uint32_t ids[128];
	unsigned n = 0;
	int64_t next;
	int wait = 1000;

	if (OPS(s)->lapsed(s->st, (int64_t)now, ids, 128, &n))
		xd_err("RSIP: %s", xd_store_error(s->st));
	if (n && rs_srv_begin(s) == 0) {
		int rc = 0;

		for (unsigned i = 0; i < n && !rc; i++) {
			struct xd_binding b;

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
	if (OPS(s)->next_until(s->st, RSIP_BIND_QUARANTINE, &next) == 1 && next <= (int64_t)now &&
	    rs_srv_begin(s) == 0) {
		if (OPS(s)->quarantine_end(s->st, (int64_t)now, unindex, s) || rs_srv_commit(s)) {
			xd_err("RSIP: %s", xd_store_error(s->st));
			rs_srv_rollback(s);
		}
	}
	if (OPS(s)->clients_expire(s->st, (int64_t)now - (int64_t)s->cfg.reg_lease * 1000))
		xd_err("RSIP: %s", xd_store_error(s->st));
	if (OPS(s)->next_until(s->st, RSIP_BIND_ACTIVE, &next) == 1) {
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
	int rc = OPS(s)->client_runs(s->st, client_id, kind, out, n);

	if (rc)
		xd_err("RSIP: %s", xd_store_error(s->st));
	return rc;
}

/* One registration holding a host id: make its map entries match. */
static int reconcile_one(void *arg, const struct xd_client *c)
{
	struct rsip_server *s = arg;
	uint32_t cid = c->id, lan = c->lan, hid = c->host_id, gidx = (uint32_t)c->gidx;
	int bad = 0;

	if (!hid)
		return 0;
	{
		struct xd_run *want[2] = { NULL, NULL }, *have[2] = { NULL, NULL };
		size_t nw[2] = { 0, 0 }, nh[2] = { 0, 0 };
		uint32_t l, g;
		bool same;

		if (hid >= s->cfg.max_hosts || gidx >= s->cfg.n_gaddrs) {
			xd_warn("client %u: host id %u / global address %u do not fit this configuration",
				cid, hid, gidx);
			s->reconcile_bad++;
			return 0;
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
	s->reconcile_bad += (unsigned)bad;
	return 0;
}

int rsip_server_reconcile(struct rsip_server *s)
{
	s->reconcile_bad = 0;
	if (OPS(s)->each_client(s->st, reconcile_one, s)) {
		xd_err("RSIP: reconcile: %s", xd_store_error(s->st));
		return -EIO;
	}
	return s->reconcile_bad ? -EIO : 0;
}
