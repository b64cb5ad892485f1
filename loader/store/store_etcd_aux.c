// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd backend (store_etcd.c): counter baselines and the certificate
 * ops of the store interface.
 *
 * Counters count one router's datapath (its maps), so each router keeps
 * its own baselines, under PREFIX/INSTANCE/routers/ID/counters where ID is
 * the router id ([router] router-id, default the host name): one JSON
 * value {"gen", "since", "saved", "rows": {KEY: [b0..b3, has_last,
 * l0..l3]}} written with one put (etcd caps a Txn at 128 operations, a
 * router may have thousands of keys).  Only router ID writes that key.
 *
 * The certificate ops go through the CA's record store on etcd
 * (store_etcd_ca.c), the announcement queue and the enrolment tags through
 * ca/notified/SERIAL and ca/enrolment/SERIAL.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lca.h"
#include "store_etcd_int.h"

/* ------------------------------------------------------ counter baselines */

static void ctr_sub(struct et *q, char *sub, size_t len)
{
	snprintf(sub, len, "routers/%s/counters", q->router_id);
}

/* The RSIP names of the datapath host ids (registrations that hold one). */
static int ctr_names(struct et *q, struct xd_ctr_state *s)
{
	struct et_snap sn = { 0 };
	int rc = et_load_clients(q, &sn);
	size_t n = 0;

	for (size_t i = 0; !rc && i < sn.nc; i++)
		n += sn.c[i].host_id > 0;
	if (!rc && n && !(s->names = calloc(n, sizeof(*s->names))))
		rc = xd_store_fail(&q->base, -ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < sn.nc; i++) {
		if (!sn.c[i].host_id)
			continue;
		s->names[s->n_names].host_id = sn.c[i].host_id;
		snprintf(s->names[s->n_names].name, sizeof(s->names[0].name), "%.*s",
			 (int)sizeof(s->names[0].name) - 1, sn.c[i].name);
		s->n_names++;
	}
	et_snap_free(&sn);
	return rc;
}

static int ctr_rows(struct et *q, json_object *rows, struct xd_ctr_state *s)
{
	json_object_object_foreach(rows, key, val) {
		struct xd_ctr_row *r;

		if (!json_object_is_type(val, json_type_array) ||
		    json_object_array_length(val) != 2 * XD_CTR_NVAL + 1)
			return xd_store_fail(&q->base, -EIO, "etcd: malformed counter row '%s'", key);
		if (!(r = xd_ctr_add_row(s, key)))
			return xd_store_fail(&q->base, -ENOMEM, "out of memory");
		for (int i = 0; i < XD_CTR_NVAL; i++) {
			r->base[i] = (uint64_t)json_object_get_int64(json_object_array_get_idx(val, i));
			r->last[i] = (uint64_t)json_object_get_int64(
				json_object_array_get_idx(val, XD_CTR_NVAL + 1 + i));
		}
		r->has_last = json_object_get_int(json_object_array_get_idx(val, XD_CTR_NVAL)) != 0;
	}
	return 0;
}

int et_ctr_load(struct xd_store *st, const char *gen, struct xd_ctr_state *s)
{
	struct et *q = ET(st);
	json_object *o, *rows;
	char sub[ET_KEY_MAX], *v;
	int rc;

	(void)gen;
	ctr_sub(q, sub, sizeof(sub));
	if ((rc = et_get(q, sub, &v, false)) < 0)
		return rc;
	if (rc) {
		o = et_parse(q, "counter baselines", v);
		free(v);
		if (!o)
			return -EIO;
		snprintf(s->gen, sizeof(s->gen), "%s", et_jstr(o, "gen"));
		s->since_ms = (uint64_t)et_jget(o, "since");
		s->saved_ms = (uint64_t)et_jget(o, "saved");
		rc = json_object_object_get_ex(o, "rows", &rows) ? ctr_rows(q, rows, s) : 0;
		json_object_put(o);
		if (rc)
			return rc;
	}
	return ctr_names(q, s);
}

/* Rows worth keeping: those with a baseline or a last value (as SQLite). */
static json_object *ctr_json(const struct xd_ctr_state *s)
{
	json_object *o = et_obj("since", (int64_t)s->since_ms, "saved", (int64_t)s->saved_ms, NULL);
	json_object *rows = json_object_new_object();

	if (!o || !rows) {
		json_object_put(o);
		json_object_put(rows);
		return NULL;
	}
	int rc = et_jadd(o, "gen", json_object_new_string(s->gen));

	for (size_t i = 0; !rc && i < s->n; i++) {
		const struct xd_ctr_row *r = &s->rows[i];
		json_object *a;
		bool zero = !r->has_last;

		for (int k = 0; k < XD_CTR_NVAL; k++)
			zero = zero && !r->base[k];
		if (zero)
			continue;
		if (!(a = json_object_new_array())) {
			rc = -ENOMEM;
			break;
		}
		for (int k = 0; k < XD_CTR_NVAL; k++)
			rc |= et_jpush(a, json_object_new_int64((int64_t)r->base[k]));
		rc |= et_jpush(a, json_object_new_int(r->has_last));
		for (int k = 0; k < XD_CTR_NVAL; k++)
			rc |= et_jpush(a, json_object_new_int64((int64_t)r->last[k]));
		if (rc)
			json_object_put(a);
		else
			rc = et_jadd(rows, r->key, a);
	}
	if (rc) {
		json_object_put(rows);
		json_object_put(o);
		return NULL;
	}
	return et_with(o, "rows", rows);
}

int et_ctr_store(struct xd_store *st, const struct xd_ctr_state *s)
{
	struct et *q = ET(st);
	char sub[ET_KEY_MAX];
	int rc;

	ctr_sub(q, sub, sizeof(sub));
	if ((rc = et_begin(st)))
		return rc;
	if ((rc = et_put_json(q, sub, ctr_json(s))) || (rc = et_commit(st))) {
		et_rollback(st);
		return rc;
	}
	return 0;
}

/* ------------------------------------------------- certificates (ca/lca.h) */

struct lca_certdb *et_ca_certdb(struct xd_store *st, struct lca_err *e)
{
	struct et *q = ET(st);

	if (!q->certdb && !(q->certdb = et_certdb_new(q)))
		lca_fail(e, -ENOMEM, "out of memory");
	return q->certdb;
}

int et_ca_open(struct xd_store *st, const struct lca_config *cfg, struct lca **out, struct lca_err *e)
{
	struct lca_certdb *d = et_ca_certdb(st, e);

	*out = NULL;
	return d ? lca_open_certdb(cfg, d, out, e) : -ENOMEM;
}

int et_ca_init(struct xd_store *st, struct lca_err *e)
{
	struct lca_certdb *d = et_ca_certdb(st, e);

	return d ? d->ops->init(d, e) : -ENOMEM;
}

int et_cert_revoke(struct xd_store *st, const char *serial, int reason, int64_t when, struct lca_err *e)
{
	struct lca_certdb *d = et_ca_certdb(st, e);

	return d ? lca_certdb_revoke(d, serial, reason, when, e) : -ENOMEM;
}

int et_cert_revoke_overlapping(struct xd_store *st, int kind, uint32_t first, uint32_t last, int reason,
			       int64_t when, unsigned *n, struct lca_err *e)
{
	struct lca_certdb *d = et_ca_certdb(st, e);

	*n = 0;
	return d ? lca_certdb_revoke_overlapping(d, kind == RSIP_KIND_PORTS ? LCA_KIND_PORTS : LCA_KIND_SPI,
						 first, last, reason, when, n, e)
		 : -ENOMEM;
}

int et_cert_list(struct xd_store *st, const char *host, xd_store_cert_fn fn, void *arg, struct lca_err *e)
{
	struct lca_certdb *d = et_ca_certdb(st, e);

	return d ? d->ops->list(d, host, fn, arg, e) : -ENOMEM;
}

int et_cert_list_print(struct xd_store *st, const char *host, bool json, FILE *f, int64_t now,
		       struct lca_err *e)
{
	struct lca_certdb *d = et_ca_certdb(st, e);

	return d ? lca_certdb_list_print(d, host, json, f, now, e) : -ENOMEM;
}

int et_cert_get(struct xd_store *st, const char *serial, xd_store_cert_fn fn, void *arg, struct lca_err *e)
{
	struct lca_certdb *d = et_ca_certdb(st, e);

	return d ? d->ops->get(d, serial, fn, arg, e) : -ENOMEM;
}

/* Revocations not announced yet: revoked certificates without a key
 * ca/notified/SERIAL, oldest revocation first. */
struct unann { struct xd_cert_revoked *v; size_t n, cap; struct et_kvs done; };

static int cb_revoked(void *arg, const struct lca_record *r)
{
	struct unann *u = arg;

	if (!r->revoked)
		return 0;
	for (size_t i = 0; i < u->done.n; i++)
		if (!strcmp(et_leaf(u->done.v[i].key), r->serial))
			return 0;
	if (u->n == u->cap) {
		size_t cap = u->cap ? 2 * u->cap : 16;
		struct xd_cert_revoked *v = realloc(u->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		u->v = v;
		u->cap = cap;
	}
	memset(&u->v[u->n], 0, sizeof(u->v[0]));
	snprintf(u->v[u->n].serial, sizeof(u->v[0].serial), "%s", r->serial);
	snprintf(u->v[u->n].host, sizeof(u->v[0].host), "%s", r->host_id);
	snprintf(u->v[u->n].identity, sizeof(u->v[0].identity), "%s", r->identity);
	u->v[u->n].revoked_at = r->revoked_at;
	u->v[u->n].reason = r->reason;
	u->n++;
	return 0;
}

static int by_revoked_at(const void *a, const void *b)
{
	const struct xd_cert_revoked *x = a, *y = b;

	return x->revoked_at < y->revoked_at ? -1 : x->revoked_at > y->revoked_at;
}

int et_cert_unannounced(struct xd_store *st, unsigned max, xd_store_revoked_fn fn, void *arg)
{
	struct et *q = ET(st);
	struct lca_err e = { { 0 } };
	struct lca_certdb *d = et_ca_certdb(st, &e);
	struct unann u = { 0 };
	int rc;

	if (!d)
		return xd_store_fail(st, -ENOMEM, "out of memory");
	if ((rc = et_scan(q, "ca/notified/", &u.done)))
		return rc;
	rc = d->ops->list(d, NULL, cb_revoked, &u, &e);
	if (rc)
		rc = xd_store_fail(st, rc, "%s", e.msg[0] ? e.msg : "out of memory");
	if (!rc && u.n > 1)
		qsort(u.v, u.n, sizeof(*u.v), by_revoked_at);
	for (size_t i = 0; !rc && i < u.n && i < max; i++)
		rc = fn(arg, &u.v[i]);
	free(u.v);
	et_kvs_free(&u.done);
	return rc;
}

struct ann_arg { const char *serial; int64_t at; };

static int ann_body(struct et *q, void *arg)
{
	struct ann_arg *a = arg;
	char sub[ET_KEY_MAX], v[24], *old;
	int rc;

	if (!rsip_valid_name(a->serial, strlen(a->serial)))
		return xd_store_fail(&q->base, -EINVAL, "bad serial '%s'", a->serial);
	snprintf(sub, sizeof(sub), "ca/notified/%s", a->serial);
	if ((rc = et_get(q, sub, &old, true)) != 0) {       /* the first time stays */
		free(old);
		return rc < 0 ? rc : 0;
	}
	snprintf(v, sizeof(v), "%lld", (long long)a->at);
	return et_put(q, sub, v);
}

int et_cert_announced(struct xd_store *st, const char *serial, int64_t at)
{
	struct ann_arg a = { serial, at };

	return et_tx(ET(st), ann_body, &a);
}

static int tag_sub(struct et *q, const char *serial, char *sub, size_t len)
{
	if (!rsip_valid_name(serial, strlen(serial)))
		return xd_store_fail(&q->base, -EINVAL, "bad serial '%s'", serial);
	snprintf(sub, len, "ca/enrolment/%s", serial);
	return 0;
}

int et_cert_enrolment_record(struct xd_store *st, const char *serial, const char *host, const uint8_t *tag,
			     size_t len)
{
	struct et *q = ET(st);
	char sub[ET_KEY_MAX], *hex = malloc(2 * len + 1);
	json_object *o = json_object_new_object();
	int rc;

	if (!hex || !o) {
		free(hex);
		json_object_put(o);
		return xd_store_fail(st, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", tag[i]);
	hex[2 * len] = 0;
	o = et_with(et_with(o, "host", json_object_new_string(host)), "tag",
		    json_object_new_string(hex));
	free(hex);
	if (!o)
		return xd_store_fail(st, -ENOMEM, "out of memory");
	if ((rc = tag_sub(q, serial, sub, sizeof(sub))) || (rc = et_begin(st))) {
		json_object_put(o);
		return rc;
	}
	if ((rc = et_put_json(q, sub, o)) || (rc = et_commit(st))) {
		et_rollback(st);
		return rc;
	}
	return 0;
}

/* The tag of @serial: 1 into @tag (@len bytes), 0 none or another length. */
int et_cert_enrolment_tag(struct xd_store *st, const char *serial, uint8_t *tag, size_t len)
{
	struct et *q = ET(st);
	char sub[ET_KEY_MAX], *v;
	const char *hex;
	json_object *o;
	int rc;

	if ((rc = tag_sub(q, serial, sub, sizeof(sub))) || (rc = et_get(q, sub, &v, false)) <= 0)
		return rc;
	o = et_parse(q, "enrolment tag", v);
	free(v);
	if (!o)
		return -EIO;
	hex = et_jstr(o, "tag");
	rc = strlen(hex) == 2 * len;
	for (size_t i = 0; rc == 1 && i < len; i++) {
		unsigned x;

		if (sscanf(hex + 2 * i, "%2x", &x) != 1)
			rc = xd_store_fail(st, -EIO, "etcd: bad enrolment tag of %s", serial);
		else
			tag[i] = (uint8_t)x;
	}
	json_object_put(o);
	return rc;
}

int et_cert_enrolment_is(struct xd_store *st, const char *serial, const uint8_t *tag, size_t len)
{
	uint8_t *got = malloc(len ? len : 1);
	int rc;

	if (!got)
		return xd_store_fail(st, -ENOMEM, "out of memory");
	rc = et_cert_enrolment_tag(st, serial, got, len);
	if (rc == 1)
		rc = !memcmp(got, tag, len);
	free(got);
	return rc;
}
