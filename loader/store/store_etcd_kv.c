// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd backend's key-value layer (store_etcd_int.h): reads, scans and
 * the transaction buffer that turns the store's nested begin/commit into
 * one etcd Txn, over the transport of store_etcd_http.c.
 *
 * Transactions: while a unit is open, puts and deletes are buffered with
 * the compares that guard them (mod_revision of every key whose value a
 * write was computed from); reads see the buffer over etcd's state (read
 * your writes).  The outermost commit sends one Txn: all compares, then all
 * writes.  If a compare fails, nothing is written and commit returns
 * -EAGAIN; an operation that opened the unit itself reruns from fresh reads
 * (a bounded number of times), a caller's unit fails as a whole.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "store_etcd_int.h"

int et_full_key(struct et *q, const char *sub, char *out, size_t len)
{
	int n = snprintf(out, len, "%s%s", q->prefix, sub);

	return n < 0 || (size_t)n >= len ? xd_store_fail(&q->base, -ENAMETOOLONG, "key too long") : 0;
}

void et_kvs_free(struct et_kvs *k)
{
	for (size_t i = 0; i < k->n; i++) {
		free(k->v[i].key);
		free(k->v[i].val);
	}
	free(k->v);
	k->v = NULL;
	k->n = k->cap = 0;
}

static int kvs_add(struct et_kvs *k, const char *key, const char *val, int64_t mod, int64_t create)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 16;
		struct et_kv *v = realloc(k->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		k->v = v;
		k->cap = cap;
	}
	k->v[k->n].key = strdup(key);
	k->v[k->n].val = strdup(val);
	k->v[k->n].mod = mod;
	k->v[k->n].create = create;
	if (!k->v[k->n].key || !k->v[k->n].val) {
		free(k->v[k->n].key);
		free(k->v[k->n].val);
		return -ENOMEM;
	}
	k->n++;
	return 0;
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct et_kv *)a)->key, ((const struct et_kv *)b)->key);
}

/* Keys [from, to) of etcd (to NULL: @from only), then the buffer over them. */
static int range_opt(struct et *q, const char *from, const char *to, int64_t last_n,
		     struct et_kvs *out);

static int range(struct et *q, const char *from, const char *to, struct et_kvs *out)
{
	return range_opt(q, from, to, 0, out);
}

/* @last_n > 0: only the last @last_n keys of etcd's (descending by key);
 * < 0: only the first -@last_n (ascending: etcd reads no more than that). */
static int range_opt(struct et *q, const char *from, const char *to, int64_t last_n,
		     struct et_kvs *out)
{
	json_object *req = json_object_new_object(), *ans, *kvs;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = !req || et_add_b64(req, "key", from, strlen(from)) ||
	     (to && et_add_b64(req, "range_end", to, strlen(to)));
	if (!rc && last_n > 0)
		rc = et_jadd(req, "limit", json_object_new_int64(last_n)) |
		     et_jadd(req, "sort_order", json_object_new_string("DESCEND")) |
		     et_jadd(req, "sort_target", json_object_new_string("KEY"));
	else if (!rc && last_n < 0)
		rc = et_jadd(req, "limit", json_object_new_int64(-last_n));
	if (rc) {
		json_object_put(req);
		return xd_store_fail(&q->base, -ENOMEM, "out of memory");
	}
	if ((rc = et_post(q, "/v3/kv/range", req, &ans)))
		return rc;
	if (q->after_range)
		q->after_range(q, q->after_range_arg);
	if (json_object_object_get_ex(ans, "kvs", &kvs)) {
		for (size_t i = 0; !rc && i < json_object_array_length(kvs); i++) {
			json_object *e = json_object_array_get_idx(kvs, i), *k, *v;
			char *key = json_object_object_get_ex(e, "key", &k) ? et_unb64(json_object_get_string(k), NULL) : NULL;
			char *val = json_object_object_get_ex(e, "value", &v) ? et_unb64(json_object_get_string(v), NULL)
									     : strdup("");

			rc = key && val ? kvs_add(out, key, val, et_jget(e, "mod_revision"),
						  et_jget(e, "create_revision")) : -ENOMEM;
			free(key);
			free(val);
		}
	}
	json_object_put(ans);
	/* The buffer, in order: the last write of a key wins. */
	for (size_t i = 0; !rc && i < q->nw; i++) {
		const struct et_write *w = &q->w[i];
		size_t j;

		if (to ? strcmp(w->key, from) < 0 || strcmp(w->key, to) >= 0 : strcmp(w->key, from))
			continue;
		for (j = 0; j < out->n && strcmp(out->v[j].key, w->key); j++)
			;
		if (j < out->n && w->del) {
			free(out->v[j].key);
			free(out->v[j].val);
			out->v[j] = out->v[--out->n];
		} else if (j < out->n) {
			char *nv = strdup(w->val);

			if (!nv)
				rc = -ENOMEM;
			else {
				free(out->v[j].val);
				out->v[j].val = nv;
			}
		} else if (!w->del) {
			rc = kvs_add(out, w->key, w->val, -1, INT64_MAX);
		}
	}
	if (rc) {
		et_kvs_free(out);
		return rc == -ENOMEM ? xd_store_fail(&q->base, rc, "out of memory") : rc;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), kv_cmp);
	return 0;
}

int et_scan(struct et *q, const char *sub, struct et_kvs *out)
{
	char from[ET_KEY_MAX], to[ET_KEY_MAX];
	size_t n;
	int rc;

	if ((rc = et_full_key(q, sub, from, sizeof(from))))
		return rc;
	n = strlen(from);
	memcpy(to, from, n + 1);
	to[n - 1]++;               /* every sub ends in '/': the prefix's range end */
	return range(q, from, to, out);
}

/* The first or last key of [sub_from, sub_to) with the unit's writes: 1
 * with it in @out (one entry), 0 none.  etcd sends its first or last
 * k + 1 keys of the range, k the unit's deletions in it: one of them
 * survives if any does. */
static int scan_edge(struct et *q, const char *sub_from, const char *sub_to, bool last,
		     struct et_kvs *out)
{
	char from[ET_KEY_MAX], to[ET_KEY_MAX];
	int64_t k = 0;
	int rc;

	if ((rc = et_full_key(q, sub_from, from, sizeof(from))) || (rc = et_full_key(q, sub_to, to, sizeof(to))))
		return rc;
	for (size_t i = 0; i < q->nw; i++)
		k += q->w[i].del && strcmp(q->w[i].key, from) >= 0 && strcmp(q->w[i].key, to) < 0;
	if ((rc = range_opt(q, from, to, last ? k + 1 : -(k + 1), out)))
		return rc;
	if (out->n > 1) {          /* sorted ascending: keep one end */
		struct et_kv keep = out->v[last ? out->n - 1 : 0];

		if (!last)
			out->v[0] = out->v[out->n - 1];
		out->n--;
		et_kvs_free(out);
		if (!(out->v = malloc(sizeof(*out->v)))) {
			free(keep.key);
			free(keep.val);
			return xd_store_fail(&q->base, -ENOMEM, "out of memory");
		}
		out->v[0] = keep;
		out->n = out->cap = 1;
	}
	return out->n ? 1 : 0;
}

int et_scan_last(struct et *q, const char *sub_from, const char *sub_to, struct et_kvs *out)
{
	return scan_edge(q, sub_from, sub_to, true, out);
}

int et_scan_first(struct et *q, const char *sub_from, const char *sub_to, struct et_kvs *out)
{
	return scan_edge(q, sub_from, sub_to, false, out);
}

/* Keys [sub_from, sub_to) in key order. */
int et_scan_between(struct et *q, const char *sub_from, const char *sub_to, struct et_kvs *out)
{
	char from[ET_KEY_MAX], to[ET_KEY_MAX];
	int rc;

	if ((rc = et_full_key(q, sub_from, from, sizeof(from))) || (rc = et_full_key(q, sub_to, to, sizeof(to))))
		return rc;
	return range(q, from, to, out);
}

/* The guard: the commit happens only if @key still has revision @mod. */
static int guard(struct et *q, const char *key, int64_t mod)
{
	for (size_t i = 0; i < q->nc; i++)
		if (!strcmp(q->c[i].key, key))
			return 0;
	if (q->nc == q->ccap) {
		size_t cap = q->ccap ? q->ccap * 2 : 16;
		struct et_cmp *c = realloc(q->c, cap * sizeof(*c));

		if (!c)
			return xd_store_fail(&q->base, -ENOMEM, "out of memory");
		q->c = c;
		q->ccap = cap;
	}
	if (!(q->c[q->nc].key = strdup(key)))
		return xd_store_fail(&q->base, -ENOMEM, "out of memory");
	q->c[q->nc++].mod = mod;
	return 0;
}

int et_get(struct et *q, const char *sub, char **val, bool guarded)
{
	char key[ET_KEY_MAX];
	struct et_write *w = q->w;
	size_t nw = q->nw;
	struct et_kvs k;
	int64_t mod = 0;
	int rc;

	*val = NULL;
	if ((rc = et_full_key(q, sub, key, sizeof(key))))
		return rc;
	/* One read of etcd's copy alone: the value and the revision guarded
	 * must come from the same answer.  (A second read for the revision
	 * could see another router's commit made after the first: the guard
	 * then held the winner's revision while the value was the older one,
	 * and two routers committed from one read, e.g. both took CRL number
	 * 1 or one port block.) */
	q->w = NULL;
	q->nw = 0;
	rc = range(q, key, NULL, &k);
	q->w = w;
	q->nw = nw;
	if (rc)
		return rc;
	if (k.n) {
		*val = k.v[0].val;
		k.v[0].val = NULL;
		mod = k.v[0].mod;       /* etcd compares an absent key's as 0 */
	}
	et_kvs_free(&k);
	/* Then the unit's own writes over it (read your writes): the last
	 * write of the key wins. */
	for (size_t i = nw; i-- > 0;) {
		if (strcmp(w[i].key, key))
			continue;
		free(*val);
		*val = NULL;
		if (!w[i].del && !(*val = strdup(w[i].val)))
			return xd_store_fail(&q->base, -ENOMEM, "out of memory");
		break;
	}
	if (guarded && (rc = guard(q, key, mod))) {
		free(*val);
		*val = NULL;
		return rc;
	}
	return *val ? 1 : 0;
}

int et_guard_absent(struct et *q, const char *sub)
{
	char key[ET_KEY_MAX];
	int rc;

	if ((rc = et_full_key(q, sub, key, sizeof(key))))
		return rc;
	/* etcd compares a missing key's mod_revision as 0 */
	return guard(q, key, 0);
}

static int buffer(struct et *q, const char *sub, const char *val)
{
	char key[ET_KEY_MAX];
	int rc;

	if (!q->depth)
		return xd_store_fail(&q->base, -EINVAL, "etcd: write outside a transaction (bug)");
	if ((rc = et_full_key(q, sub, key, sizeof(key))))
		return rc;
	if (q->nw == q->wcap) {
		size_t cap = q->wcap ? q->wcap * 2 : 16;
		struct et_write *w = realloc(q->w, cap * sizeof(*w));

		if (!w)
			return xd_store_fail(&q->base, -ENOMEM, "out of memory");
		q->w = w;
		q->wcap = cap;
	}
	q->w[q->nw].key = strdup(key);
	q->w[q->nw].val = val ? strdup(val) : NULL;
	q->w[q->nw].del = !val;
	if (!q->w[q->nw].key || (val && !q->w[q->nw].val)) {
		free(q->w[q->nw].key);
		free(q->w[q->nw].val);
		return xd_store_fail(&q->base, -ENOMEM, "out of memory");
	}
	q->nw++;
	return 0;
}

int et_put(struct et *q, const char *sub, const char *val)
{
	return buffer(q, sub, val);
}

int et_del(struct et *q, const char *sub)
{
	return buffer(q, sub, NULL);
}

static void truncate_to(struct et *q, size_t nw, size_t nc)
{
	while (q->nw > nw) {
		q->nw--;
		free(q->w[q->nw].key);
		free(q->w[q->nw].val);
	}
	while (q->nc > nc)
		free(q->c[--q->nc].key);
}

int et_begin(struct xd_store *st)
{
	struct et *q = ET(st);

	if (q->depth == ET_DEPTH_MAX)
		return xd_store_fail(st, -EOVERFLOW, "etcd: transactions nested too deep");
	q->mark[q->depth].nw = q->nw;
	q->mark[q->depth].nc = q->nc;
	q->depth++;
	return 0;
}

void et_rollback(struct xd_store *st)
{
	struct et *q = ET(st);

	if (!q->depth)
		return;
	q->depth--;
	truncate_to(q, q->mark[q->depth].nw, q->mark[q->depth].nc);
}

static bool later_write(const struct et *q, size_t i)
{
	for (size_t j = i + 1; j < q->nw; j++)
		if (!strcmp(q->w[j].key, q->w[i].key))
			return true;
	return false;
}

/* The one Txn of the outermost unit. */
static int send_txn(struct et *q)
{
	json_object *req = json_object_new_object(), *cmp = json_object_new_array(),
		    *ok = json_object_new_array(), *ans, *s;
	int rc = !req || !cmp || !ok ? -ENOMEM : 0;

	for (size_t i = 0; !rc && i < q->nc; i++) {
		json_object *c = json_object_new_object();
		char mod[24];

		snprintf(mod, sizeof(mod), "%lld", (long long)q->c[i].mod);
		if (!c || et_add_b64(c, "key", q->c[i].key, strlen(q->c[i].key)) ||
		    et_jadd(c, "target", json_object_new_string("MOD")) ||
		    et_jadd(c, "result", json_object_new_string("EQUAL")) ||
		    et_jadd(c, "mod_revision", json_object_new_string(mod))) {
			json_object_put(c);
			rc = -ENOMEM;
			break;
		}
		rc = et_jpush(cmp, c);
	}
	for (size_t i = 0; !rc && i < q->nw; i++) {
		const struct et_write *w = &q->w[i];
		json_object *op, *r;

		/* etcd refuses a key twice in one Txn: the last write of a key
		 * is the unit's, the earlier ones are dropped */
		if (later_write(q, i))
			continue;
		op = json_object_new_object();
		r = json_object_new_object();

		if (!op || !r || et_add_b64(r, "key", w->key, strlen(w->key)) ||
		    (!w->del && et_add_b64(r, "value", w->val, strlen(w->val)))) {
			json_object_put(op);
			json_object_put(r);
			rc = -ENOMEM;
			break;
		}
		if ((rc = et_jadd(op, w->del ? "request_delete_range" : "request_put", r))) {
			json_object_put(op);
			break;
		}
		rc = et_jpush(ok, op);
	}
	if (rc) {
		json_object_put(req);
		json_object_put(cmp);
		json_object_put(ok);
		return xd_store_fail(&q->base, rc, "out of memory");
	}
	/* each consumed whatever happens */
	rc = et_jadd(req, "compare", cmp) | et_jadd(req, "success", ok);
	if (rc) {
		json_object_put(req);
		return xd_store_fail(&q->base, -ENOMEM, "out of memory");
	}
	if ((rc = et_post(q, "/v3/kv/txn", req, &ans)))
		return rc;
	q->guard_failed = !json_object_object_get_ex(ans, "succeeded", &s) || !json_object_get_boolean(s);
	if (!q->guard_failed)
		q->own_txns++;          /* one revision of etcd's */
	if (q->guard_failed)
		rc = xd_store_fail(&q->base, -EAGAIN, "etcd: the keys this unit read changed meanwhile "
				   "(another router's write): nothing was written");
	else if (json_object_object_get_ex(ans, "header", &s))
		q->last_rev = et_jget(s, "revision");
	json_object_put(ans);
	q->commits++;
	return rc;
}

unsigned et_unit_ops(const struct et *q)
{
	size_t nw = q->nw;

	/* writes of one key more than once count once (send_txn); the
	 * quadratic count only when it can matter */
	if (nw > q->max_ops)
		for (size_t i = nw = 0; i < q->nw; i++)
			nw += !later_write(q, i);
	nw = nw > q->nc ? nw : q->nc;
	return nw > UINT_MAX ? UINT_MAX : (unsigned)nw;
}

void et_unit_size(struct xd_store *st, unsigned *ops, unsigned *limit)
{
	*ops = et_unit_ops(ET(st));
	*limit = ET(st)->max_ops;
}

/* On failure of the outermost commit the unit is over (nothing written).
 * Every level checks etcd's limit on the whole unit: an inner unit that
 * would take it over fails alone (its caller rolls it back), and what
 * the levels outside hold still commits. */
int et_commit(struct xd_store *st)
{
	struct et *q = ET(st);
	unsigned ops;
	int rc = 0;

	if (!q->depth)
		return xd_store_fail(st, -EINVAL, "etcd: commit without begin");
	if ((ops = et_unit_ops(q)) > q->max_ops) {
		rc = xd_store_fail(st, -E2BIG, "etcd: one unit of work needs %u operations in its Txn, "
				   "more than the %u etcd takes ([store] max-txn-ops, etcd "
				   "--max-txn-ops): nothing was written", ops, q->max_ops);
		if (q->depth == 1) {
			q->depth = 0;
			truncate_to(q, 0, 0);
		}
		return rc;
	}
	if (--q->depth)
		return 0;
	if (q->nw)
		rc = send_txn(q);
	truncate_to(q, 0, 0);
	return rc;
}

int et_tx(struct et *q, int (*fn)(struct et *, void *), void *arg)
{
	for (unsigned i = 0;; i++) {
		bool own = q->depth == 0;
		int rc = et_begin(&q->base), rc2;

		if (rc)
			return rc;
		rc = fn(q, arg);
		if (rc < 0) {
			et_rollback(&q->base);
			return rc;
		}
		q->guard_failed = false;
		rc2 = et_commit(&q->base);
		if (rc2 && !own)
			et_rollback(&q->base);   /* an inner level that did not end (-E2BIG) */
		/* rerun only after a failed compare: a cluster without quorum
		 * (also -EAGAIN) is not asked again and again */
		if (rc2 == -EAGAIN && q->guard_failed && own && i < ET_RETRIES) {
			q->retries++;
			continue;
		}
		return rc2 ? rc2 : rc;
	}
}

/* Free the unit's buffers (the handle is closing). */
void et_unit_free(struct et *q)
{
	truncate_to(q, 0, 0);
	free(q->w);
	free(q->c);
	q->w = NULL;
	q->c = NULL;
	q->wcap = q->ccap = 0;
}
