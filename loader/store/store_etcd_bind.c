// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd backend (store_etcd.c): bindings and their claim, the
 * operator's view and settings.  The claim Txn and why it cannot grant a
 * block twice: store_etcd.c's header comment, docs/CLUSTER.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include "store_etcd_int.h"

/* -------------------------------------------------------------- bindings */

void et_space_of(int kind, uint32_t gidx, char *sub, size_t len)
{
	if (kind == RSIP_KIND_PORTS)
		snprintf(sub, len, "p%" PRIu32, gidx);
	else
		snprintf(sub, len, "s");
}

int et_last_before(struct xd_store *st, int kind, uint32_t gidx, uint32_t at, int64_t *last)
{
	struct et *q = ET(st);
	char sp[16], from[48], to[48];
	struct et_kvs k;
	int rc;

	et_space_of(kind, gidx, sp, sizeof(sp));
	snprintf(from, sizeof(from), "blocks/%s/", sp);
	snprintf(to, sizeof(to), "blocks/%s/%08" PRIx32 "~", sp, at);   /* '~' sorts after hex */
	/* only the last one: a claim reads one key, however many blocks there are */
	if ((rc = et_scan_last(q, from, to, &k)) < 0)
		return rc;
	rc = 0;
	if (k.n) {
		unsigned long id, l;

		if (sscanf(k.v[k.n - 1].val, "%lu %lu", &id, &l) != 2)
			rc = xd_store_fail(st, -EIO, "etcd: malformed block %s", k.v[k.n - 1].key);
		else {
			*last = (int64_t)l;
			rc = 1;
		}
	}
	et_kvs_free(&k);
	return rc;
}

/* The block with the lowest last at or after @first (blocks never overlap,
 * so it is the only one that can overlap a new block starting at @first:
 * it does if it starts at or before the new one's last): 1 with its first
 * in *start, 0 none.  An ascending read of one key of ends/, whatever the
 * number of blocks. */
static int first_end_from(struct et *q, const char *sp, uint32_t first, int64_t *start)
{
	char from[48], to[48];
	struct et_kvs k;
	unsigned long id, f;
	int rc;

	snprintf(from, sizeof(from), "ends/%s/%08" PRIx32, sp, first);
	snprintf(to, sizeof(to), "ends/%s/~", sp);
	if ((rc = et_scan_first(q, from, to, &k)) <= 0)
		return rc;
	if (sscanf(k.v[0].val, "%lu %lu", &id, &f) != 2)
		rc = xd_store_fail(&q->base, -EIO, "etcd: malformed block end %s", k.v[0].key);
	else
		*start = (int64_t)f;
	et_kvs_free(&k);
	return rc;
}

struct claim_arg { const struct xd_claim *c; uint32_t *bind_id; };

static int claim_body(struct et *q, void *arg)
{
	const struct xd_claim *c = ((struct claim_arg *)arg)->c;
	char sp[16], sub[ET_KEY_MAX], v[48], *cnt;
	struct xd_client cl;
	json_object *o;
	int64_t start = -1, n;
	uint32_t id;
	int rc;

	et_space_of(c->kind, c->gidx, sp, sizeof(sp));
	snprintf(sub, sizeof(sub), "space/%s", sp);
	if ((rc = et_get(q, sub, &cnt, true)) < 0)
		return rc;
	n = rc ? strtoll(cnt, NULL, 10) : 0;
	free(cnt);
	rc = first_end_from(q, sp, c->first, &start);
	if (rc < 0)
		return rc;
	if (rc == 1 && start <= c->last)
		return xd_store_fail(&q->base, -EBUSY, "claim: %s %u-%u overlap a binding",
				     c->kind == RSIP_KIND_PORTS ? "ports" : "SPIs", c->first, c->last);
	if ((rc = et_client_read(q, c->client_id, &cl, true)) <= 0)
		return rc ? rc : xd_store_fail(&q->base, -ENOENT, "claim: no client %u", c->client_id);
	snprintf(v, sizeof(v), "%lld", (long long)n + 1);
	if ((rc = et_put(q, sub, v)) || (rc = et_next_id(q, "bindings", &id)))
		return rc;
	snprintf(sub, sizeof(sub), "blocks/%s/%08" PRIx32, sp, c->first);
	snprintf(v, sizeof(v), "%" PRIu32 " %" PRIu32, id, c->last);
	if ((rc = et_put(q, sub, v)))
		return rc;
	snprintf(sub, sizeof(sub), "ends/%s/%08" PRIx32, sp, c->last);
	snprintf(v, sizeof(v), "%" PRIu32 " %" PRIu32, id, c->first);
	if ((rc = et_put(q, sub, v)))
		return rc;
	o = et_obj("client", (int64_t)c->client_id, "kind", (int64_t)c->kind, "gidx", (int64_t)c->gidx,
		"first", (int64_t)c->first, "last", (int64_t)c->last, "state", (int64_t)RSIP_BIND_ACTIVE,
		"until", c->until_ms, "created", c->now_ms, NULL);
	o = et_with(o, "owner", json_object_new_string(cl.name));
	snprintf(sub, sizeof(sub), "bindings/%08" PRIx32, id);
	if ((rc = et_put_json(q, sub, o)))
		return rc;
	if (cl.host_id != c->host_id && (rc = et_host_id_set(q, cl.host_id, c->host_id, cl.id)))
		return rc;
	cl.host_id = c->host_id;
	cl.gidx = (int32_t)c->gidx;
	cl.last_seen_ms = c->now_ms;
	if ((rc = et_put_client(q, &cl)))
		return rc;
	*((struct claim_arg *)arg)->bind_id = id;
	return 0;
}

int et_claim(struct xd_store *st, const struct xd_claim *c, uint32_t *bind_id)
{
	struct claim_arg a = { c, bind_id };

	if (c->first > c->last || (c->kind != RSIP_KIND_PORTS && c->kind != RSIP_KIND_SPI))
		return xd_store_fail(st, -EINVAL, "claim: bad block");
	return et_tx(ET(st), claim_body, &a);
}

/* 1 found (with its raw JSON in *o), 0 not. */
int et_binding_read(struct et *q, uint32_t id, struct xd_binding *b, bool guarded, json_object **out)
{
	char sub[32], *v;
	json_object *o;
	int rc;

	snprintf(sub, sizeof(sub), "bindings/%08" PRIx32, id);
	if ((rc = et_get(q, sub, &v, guarded)) <= 0)
		return rc;
	o = et_parse(q, "binding", v);
	free(v);
	if (!o)
		return -EIO;
	et_binding_from(o, id, b);
	if (out)
		*out = o;
	else
		json_object_put(o);
	return 1;
}

int et_binding_get(struct xd_store *st, uint32_t id, struct xd_binding *b)
{
	return et_binding_read(ET(st), id, b, false, NULL);
}

struct bset_arg { uint32_t id; int state; int64_t until; };

static int bset_body(struct et *q, void *arg)
{
	struct bset_arg *a = arg;
	struct xd_binding b;
	json_object *o;
	char sub[32];
	int rc = et_binding_read(q, a->id, &b, true, &o);

	if (rc <= 0)
		return rc;
	o = et_with(et_with(o, "state", json_object_new_int64(a->state)), "until",
		    json_object_new_int64(a->until));
	snprintf(sub, sizeof(sub), "bindings/%08" PRIx32, a->id);
	return et_put_json(q, sub, o);
}

int et_binding_set(struct xd_store *st, uint32_t id, int state, int64_t until_ms)
{
	struct bset_arg a = { id, state, until_ms };

	return et_tx(ET(st), bset_body, &a);
}

int et_drop_binding(struct et *q, const struct xd_binding *b)
{
	char sp[16], sub[ET_KEY_MAX];
	int rc;

	snprintf(sub, sizeof(sub), "bindings/%08" PRIx32, b->id);
	if ((rc = et_del(q, sub)))
		return rc;
	et_space_of(b->kind, (uint32_t)b->gidx, sp, sizeof(sp));
	snprintf(sub, sizeof(sub), "blocks/%s/%08" PRIx32, sp, b->first);
	if ((rc = et_del(q, sub)))
		return rc;
	snprintf(sub, sizeof(sub), "ends/%s/%08" PRIx32, sp, b->last);
	return et_del(q, sub);
}

static int bdel_body(struct et *q, void *arg)
{
	struct xd_binding b;
	int rc = et_binding_read(q, *(uint32_t *)arg, &b, true, NULL);

	return rc <= 0 ? rc : et_drop_binding(q, &b);
}

int et_binding_del(struct xd_store *st, uint32_t id)
{
	return et_tx(ET(st), bdel_body, &id);
}

int et_each_binding(struct xd_store *st, xd_store_binding_fn fn, void *arg)
{
	struct et_snap s = { 0 };
	int rc = et_load_bindings(ET(st), &s);

	for (size_t i = 0; !rc && i < s.nb; i++)
		rc = fn(arg, &s.b[i]);
	et_snap_free(&s);
	return rc;
}

int et_client_bindings(struct xd_store *st, uint32_t client_id, struct xd_binding *out,
			      unsigned max, unsigned *n)
{
	struct et_snap s = { 0 };
	int rc = et_load_bindings(ET(st), &s);

	*n = 0;
	for (size_t i = 0; !rc && i < s.nb; i++) {   /* key order = id order */
		if (s.b[i].client_id != client_id || s.b[i].state != RSIP_BIND_ACTIVE)
			continue;
		if (*n < max)
			out[*n] = s.b[i];
		(*n)++;
	}
	et_snap_free(&s);
	return rc;
}

static int by_first(const void *a, const void *b)
{
	const struct xd_binding *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

int et_client_runs(struct xd_store *st, uint32_t client_id, int kind, struct xd_run **out,
			  size_t *n)
{
	struct et_snap s = { 0 };
	struct xd_run *r;
	size_t cnt = 0;
	int rc = et_load_bindings(ET(st), &s);

	if (rc)
		return rc;
	if (s.nb > 1)
		qsort(s.b, s.nb, sizeof(*s.b), by_first);
	if (!(r = calloc(s.nb + 1, sizeof(*r)))) {
		et_snap_free(&s);
		return xd_store_fail(st, -ENOMEM, "out of memory");
	}
	/* as the SQLite backend: ordered by first, adjacent blocks merged */
	for (size_t i = 0; i < s.nb; i++) {
		const struct xd_binding *b = &s.b[i];

		if (b->client_id != client_id || b->kind != kind || b->state != RSIP_BIND_ACTIVE)
			continue;
		if (cnt && r[cnt - 1].last + 1 == b->first) {
			r[cnt - 1].last = b->last;
			continue;
		}
		r[cnt].first = b->first;
		r[cnt++].last = b->last;
	}
	et_snap_free(&s);
	*out = r;
	*n = cnt;
	return 0;
}

int et_client_held(struct xd_store *st, uint32_t client_id, int kind, struct xd_held *h)
{
	struct et_snap s = { 0 };
	int rc = et_load_bindings(ET(st), &s);

	*h = (struct xd_held){ .min_first = -1, .max_last = -1, .min_until = INT64_MAX };
	for (size_t i = 0; !rc && i < s.nb; i++) {
		const struct xd_binding *b = &s.b[i];

		if (b->client_id != client_id || (kind && b->kind != kind) || b->state != RSIP_BIND_ACTIVE)
			continue;
		h->count++;
		h->size += (uint64_t)b->last - b->first + 1;
		if (h->min_first < 0 || b->first < h->min_first)
			h->min_first = b->first;
		if (b->last > h->max_last)
			h->max_last = b->last;
		if (b->until_ms < h->min_until)
			h->min_until = b->until_ms;
	}
	et_snap_free(&s);
	return rc;
}

int et_held_at(struct xd_store *st, const char *name, int kind, uint32_t at, int64_t *last)
{
	struct xd_client c;
	struct et_snap s = { 0 };
	int rc = et_client_by_name(st, name, &c);

	if (rc <= 0)
		return rc;
	rc = et_load_bindings(ET(st), &s);
	for (size_t i = 0; !rc && i < s.nb; i++) {
		const struct xd_binding *b = &s.b[i];

		if (b->client_id == c.id && b->kind == kind && b->state == RSIP_BIND_ACTIVE &&
		    b->first <= at && b->last >= at) {
			*last = b->last;
			rc = 1;
		}
	}
	et_snap_free(&s);
	return rc;
}

int et_lapsed(struct xd_store *st, int64_t now_ms, uint32_t *ids, unsigned max, unsigned *n)
{
	struct et_snap s = { 0 };
	int rc = et_load_bindings(ET(st), &s);

	*n = 0;
	for (size_t i = 0; !rc && i < s.nb && *n < max; i++)
		if (s.b[i].state == RSIP_BIND_ACTIVE && s.b[i].until_ms <= now_ms)
			ids[(*n)++] = s.b[i].id;
	et_snap_free(&s);
	return rc;
}

struct qend_arg { int64_t now; struct et_snap s; };

static int qend_body(struct et *q, void *arg)
{
	struct qend_arg *a = arg;
	int rc;

	et_snap_free(&a->s);
	if ((rc = et_load_bindings(q, &a->s)))
		return rc;
	for (size_t i = 0; i < a->s.nb; i++) {
		struct xd_binding b;

		if (a->s.b[i].state != RSIP_BIND_QUARANTINE || a->s.b[i].until_ms > a->now)
			continue;
		/* guarded: a binding changed meanwhile is looked at again */
		if ((rc = et_binding_read(q, a->s.b[i].id, &b, true, NULL)) < 0 ||
		    (rc == 1 && (rc = et_drop_binding(q, &b))))
			return rc;
	}
	return 0;
}

int et_quarantine_end(struct xd_store *st, int64_t now_ms, xd_store_binding_fn fn, void *arg)
{
	struct qend_arg a = { .now = now_ms };
	int rc = et_tx(ET(st), qend_body, &a);

	/* the callbacks see what was deleted, once it is */
	for (size_t i = 0; !rc && i < a.s.nb; i++)
		if (a.s.b[i].state == RSIP_BIND_QUARANTINE && a.s.b[i].until_ms <= now_ms)
			rc = fn(arg, &a.s.b[i]);
	et_snap_free(&a.s);
	return rc;
}

int et_next_until(struct xd_store *st, int state, int64_t *until_ms)
{
	struct et_snap s = { 0 };
	int rc = et_load_bindings(ET(st), &s);
	bool any = false;

	for (size_t i = 0; !rc && i < s.nb; i++)
		if (s.b[i].state == state && (!any || s.b[i].until_ms < *until_ms)) {
			*until_ms = s.b[i].until_ms;
			any = true;
		}
	et_snap_free(&s);
	return rc ? rc : any;
}

/* ------------------------------------------------------ operator's view */

struct hosts { char (*name)[RSIP_KEYID_MAX + 1]; uint32_t *lan; size_t n; };

static int load_hosts(struct et *q, struct hosts *h)
{
	struct et_kvs k;
	int rc = et_scan(q, "hosts/", &k);

	memset(h, 0, sizeof(*h));
	if (rc)
		return rc;
	h->name = calloc(k.n + 1, sizeof(*h->name));
	h->lan = calloc(k.n + 1, sizeof(*h->lan));
	if (!h->name || !h->lan)
		rc = xd_store_fail(&q->base, -ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < k.n; i++) {
		json_object *o = et_parse(q, "host", k.v[i].val);

		if (!o) {
			rc = -EIO;
			break;
		}
		snprintf(h->name[h->n], sizeof(h->name[0]), "%s", et_leaf(k.v[i].key));
		h->lan[h->n++] = (uint32_t)et_jget(o, "lan");
		json_object_put(o);
	}
	et_kvs_free(&k);
	return rc;
}

static void hosts_free(struct hosts *h)
{
	free(h->name);
	free(h->lan);
}

static int row_cmp(const void *a, const void *b)
{
	const struct xd_list_row *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	uint32_t i = x->bound ? x->b.id : 0, j = y->bound ? y->b.id : 0;

	return c ? c : i < j ? -1 : i > j;
}

static const struct xd_client *find_client(const struct et_snap *s, uint32_t id, const char *name)
{
	for (size_t i = 0; i < s->nc; i++)
		if (name ? !strcmp(s->c[i].name, name) : s->c[i].id == id)
			return &s->c[i];
	return NULL;
}

static ssize_t find_host(const struct hosts *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (!strcmp(h->name[i], name))
			return (ssize_t)i;
	return -1;
}

/* The rows of the SQLite backend's listing (store_sqlite.c, list_sql). */
int et_list(struct xd_store *st, xd_store_row_fn fn, void *arg)
{
	struct et *q = ET(st);
	struct et_snap s = { 0 };
	struct hosts h;
	struct xd_list_row *r = NULL;
	size_t n = 0;
	int rc = load_hosts(q, &h);

	if (!rc)
		rc = et_load_clients(q, &s);
	if (!rc)
		rc = et_load_bindings(q, &s);
	if (!rc && !(r = calloc(h.n + s.nc + s.nb + 1, sizeof(*r))))
		rc = xd_store_fail(st, -ENOMEM, "out of memory");
	/* every client with its bindings (or alone), enrolled or not */
	for (size_t i = 0; !rc && i < s.nc; i++) {
		const struct xd_client *c = &s.c[i];
		ssize_t hi = find_host(&h, c->name);
		struct xd_list_row base = { .enrolled = hi >= 0, .registered = true, .lan = c->lan,
					    .client_id = c->id, .host_id = c->host_id };
		bool any = false;

		snprintf(base.name, sizeof(base.name), "%s", c->name);
		for (size_t j = 0; j < s.nb; j++) {
			if (s.b[j].client_id != c->id)
				continue;
			r[n] = base;
			r[n].bound = any = true;
			r[n].b = s.b[j];
			n++;
		}
		if (!any)
			r[n++] = base;
	}
	/* bindings whose registration ended, under their owner's name */
	for (size_t j = 0; !rc && j < s.nb; j++) {
		ssize_t hi;

		if (find_client(&s, s.b[j].client_id, NULL))
			continue;
		hi = find_host(&h, s.owner[j]);
		r[n] = (struct xd_list_row){ .enrolled = hi >= 0, .bound = true,
					     .lan = hi >= 0 ? h.lan[hi] : 0, .b = s.b[j] };
		r[n].b.client_id = 0;
		snprintf(r[n].name, sizeof(r[n].name), "%s", s.owner[j]);
		n++;
	}
	/* enrolled hosts neither registered nor listed by such bindings */
	for (size_t i = 0; !rc && i < h.n; i++) {
		bool listed = find_client(&s, 0, h.name[i]) != NULL;

		for (size_t j = 0; !listed && j < s.nb; j++)
			listed = !strcmp(s.owner[j], h.name[i]) && !find_client(&s, s.b[j].client_id, NULL);
		if (listed)
			continue;
		r[n] = (struct xd_list_row){ .enrolled = true, .lan = h.lan[i] };
		snprintf(r[n].name, sizeof(r[n].name), "%s", h.name[i]);
		n++;
	}
	if (!rc && n > 1)
		qsort(r, n, sizeof(*r), row_cmp);
	for (size_t i = 0; !rc && i < n; i++)
		rc = fn(arg, &r[i]);
	free(r);
	et_snap_free(&s);
	hosts_free(&h);
	return rc;
}

int et_counts(struct xd_store *st, int64_t v[4])
{
	struct et *q = ET(st);
	struct et_snap s = { 0 };
	struct hosts h;
	int rc = load_hosts(q, &h);

	if (!rc)
		rc = et_load_clients(q, &s);
	if (!rc)
		rc = et_load_bindings(q, &s);
	if (!rc) {
		v[0] = (int64_t)h.n;
		v[1] = (int64_t)s.nc;
		v[2] = v[3] = 0;
		for (size_t i = 0; i < s.nb; i++)
			v[2 + (s.b[i].state == RSIP_BIND_QUARANTINE)]++;
	}
	et_snap_free(&s);
	hosts_free(&h);
	return rc;
}

static int setting_sub(struct et *q, const char *key, char *sub, size_t len)
{
	if (!rsip_valid_name(key, strlen(key)))
		return xd_store_fail(&q->base, -EINVAL, "bad setting name '%s'", key);
	snprintf(sub, len, "settings/%s", key);
	return 0;
}

int et_setting_set(struct xd_store *st, const char *key, int64_t value)
{
	struct et *q = ET(st);
	char sub[ET_KEY_MAX], v[24];
	int rc;

	if ((rc = setting_sub(q, key, sub, sizeof(sub))) || (rc = et_begin(st)))
		return rc;
	snprintf(v, sizeof(v), "%lld", (long long)value);
	if ((rc = et_put(q, sub, v)) || (rc = et_commit(st))) {
		et_rollback(st);
		return rc;
	}
	return 0;
}

int et_setting_get(struct xd_store *st, const char *key, int64_t *value)
{
	struct et *q = ET(st);
	char sub[ET_KEY_MAX], *v;
	int rc;

	if ((rc = setting_sub(q, key, sub, sizeof(sub))) || (rc = et_get(q, sub, &v, false)) < 0)
		return rc;
	if (!rc)
		return xd_store_fail(st, -ENOENT, "no setting %s", key);
	*value = strtoll(v, NULL, 10);
	free(v);
	return 0;
}
