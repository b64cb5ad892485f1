// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The Local CA's record store (struct lca_certdb, ca/lca.h) on the etcd
 * backend, under PREFIX/INSTANCE/ca/ (keys: store_etcd.c).  What must never
 * happen twice is a compare-and-swap: a certificate is put only if its
 * serial's key does not exist (compare mod_revision 0), and the CRL number
 * is a read-modify-write guarded by the key's mod_revision, rerun on a
 * conflict, so two signers never issue one serial or one CRL number twice.
 * The latest signed CRL is kept (ca/crl_latest) so that every router
 * serves the same one.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lca.h"
#include "store_etcd_int.h"

struct etdb {
	struct lca_certdb base;
	struct et *q;
};
#define Q(d) (((struct etdb *)(d))->q)

/* The store's message as the CA library's error. */
static int fail(struct et *q, int rc, struct lca_err *e)
{
	return lca_fail(e, rc, "%s", xd_store_error(&q->base));
}

/* et_tx with the store's failures (transport, conflict, memory) as the
 * CA's error; the CA's own refusals (-EEXIST, -EALREADY, ...) carry
 * their message already. */
static int tx(struct et *q, int (*fn)(struct et *, void *), void *arg, struct lca_err *e)
{
	int rc = et_tx(q, fn, arg);

	if (rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EIO || rc == -ENOMEM)
		return fail(q, rc, e);
	return rc;
}

static int serial_key(const char *serial, char *sub, size_t len)
{
	size_t n = serial ? strlen(serial) : 0;
	int at;

	if (!n || n >= LCA_SERIAL_STRLEN || strspn(serial, "0123456789abcdefABCDEF") != n)
		return -ENOENT;
	at = snprintf(sub, len, "ca/certs/");
	for (size_t i = 0; i < n && (size_t)at + i + 1 < len; i++)
		sub[at + i] = (char)toupper((unsigned char)serial[i]);
	sub[at + n] = 0;
	return 0;
}

static int e_init(struct lca_certdb *d, struct lca_err *e)
{
	(void)d, (void)e;
	return 0;       /* keys need no schema */
}

struct ins_arg { const struct lca_record *r; struct lca_err *e; };

static int ins_body(struct et *q, void *arg)
{
	const struct lca_record *r = ((struct ins_arg *)arg)->r;
	char sub[ET_KEY_MAX], *old;
	json_object *o;
	int rc;

	if (serial_key(r->serial, sub, sizeof(sub)))
		return lca_fail(((struct ins_arg *)arg)->e, -EINVAL, "bad serial '%s'", r->serial);
	/* guarded while absent: the Txn fails if another signer puts it first */
	if ((rc = et_get(q, sub, &old, true)) < 0)
		return fail(q, rc, ((struct ins_arg *)arg)->e);
	free(old);
	if (rc)
		return lca_fail(((struct ins_arg *)arg)->e, -EEXIST, "serial %s is taken", r->serial);
	o = et_obj("not_before", r->not_before, "not_after", r->not_after, "issued_at", r->issued_at,
		   "revoked", (int64_t)0, "revoked_at", (int64_t)0, "reason", (int64_t)0, NULL);
	if (!o)
		return lca_fail(((struct ins_arg *)arg)->e, -ENOMEM, "out of memory");
	if (et_jadd(o, "host_id", json_object_new_string(r->host_id)) ||
	    et_jadd(o, "identity", json_object_new_string(r->identity)) ||
	    et_jadd(o, "lan", json_object_new_string(r->lan)) ||
	    et_jadd(o, "ports", json_object_new_string(r->ports)) ||
	    et_jadd(o, "spis", json_object_new_string(r->spis)) ||
	    et_add_b64(o, "der", (const char *)r->der, r->der_len)) {
		json_object_put(o);
		return lca_fail(((struct ins_arg *)arg)->e, -ENOMEM, "out of memory");
	}
	return (rc = et_put_json(q, sub, o)) ? fail(q, rc, ((struct ins_arg *)arg)->e) : 0;
}

static int e_insert(struct lca_certdb *d, const struct lca_record *r, struct lca_err *e)
{
	struct ins_arg a = { r, e };

	return tx(Q(d), ins_body, &a, e);
}

/* A parsed certificate key: the record points into @o and @der. */
struct rec {
	json_object *o;
	unsigned char *der;
	int64_t create;
	struct lca_record r;
};

static int rec_parse(struct et *q, const struct et_kv *kv, struct rec *x, struct lca_err *e)
{
	json_object *der;
	size_t len = 0;

	memset(x, 0, sizeof(*x));
	if (!(x->o = et_parse(q, "certificate", kv->val)))
		return fail(q, -EIO, e);
	if (!json_object_object_get_ex(x->o, "der", &der) ||
	    !(x->der = (unsigned char *)et_unb64(json_object_get_string(der), &len))) {
		json_object_put(x->o);
		x->o = NULL;
		return lca_fail(e, -EIO, "etcd: certificate %s has no DER", et_leaf(kv->key));
	}
	x->create = kv->create;
	x->r = (struct lca_record){
		.serial = et_leaf(kv->key), .host_id = et_jstr(x->o, "host_id"),
		.identity = et_jstr(x->o, "identity"), .lan = et_jstr(x->o, "lan"),
		.ports = et_jstr(x->o, "ports"), .spis = et_jstr(x->o, "spis"),
		.not_before = et_jget(x->o, "not_before"), .not_after = et_jget(x->o, "not_after"),
		.issued_at = et_jget(x->o, "issued_at"), .revoked = et_jget(x->o, "revoked") != 0,
		.revoked_at = et_jget(x->o, "revoked_at"), .reason = (int)et_jget(x->o, "reason"),
		.der = x->der, .der_len = len,
	};
	return 0;
}

static void rec_free(struct rec *x)
{
	json_object_put(x->o);
	free(x->der);
}

static int rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->r.issued_at != y->r.issued_at)
		return x->r.issued_at < y->r.issued_at ? -1 : 1;
	return x->create < y->create ? -1 : x->create > y->create;
}

static int e_list(struct lca_certdb *d, const char *host_id, lca_list_fn fn, void *arg,
		  struct lca_err *e)
{
	struct et *q = Q(d);
	struct et_kvs k;
	struct rec *v;
	size_t n = 0;
	int rc = et_scan(q, "ca/certs/", &k);

	if (rc)
		return fail(q, rc, e);
	if (!(v = calloc(k.n + 1, sizeof(*v)))) {
		et_kvs_free(&k);
		return lca_fail(e, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; !rc && i < k.n; i++) {
		if ((rc = rec_parse(q, &k.v[i], &v[n], e)))
			break;
		if (host_id && strcmp(v[n].r.host_id, host_id))
			rec_free(&v[n]);
		else
			n++;
	}
	if (!rc && n > 1)
		qsort(v, n, sizeof(*v), rec_cmp);
	for (size_t i = 0; !rc && i < n; i++)
		rc = fn(arg, &v[i].r);
	for (size_t i = 0; i < n; i++)
		rec_free(&v[i]);
	free(v);
	et_kvs_free(&k);     /* the serials pointed into its keys */
	return rc;
}

static int e_get(struct lca_certdb *d, const char *serial, lca_list_fn fn, void *arg,
		 struct lca_err *e)
{
	struct et *q = Q(d);
	char sub[ET_KEY_MAX], key[ET_KEY_MAX];
	struct et_kv kv = { .key = key };
	struct rec x;
	int rc;

	if (serial_key(serial, sub, sizeof(sub)))
		return lca_fail(e, -ENOENT, "no certificate with serial %s", serial ? serial : "(null)");
	if ((rc = et_get(q, sub, &kv.val, false)) < 0)
		return fail(q, rc, e);
	if (!rc)
		return lca_fail(e, -ENOENT, "no certificate with serial %s", serial);
	snprintf(key, sizeof(key), "%s", sub);
	rc = rec_parse(q, &kv, &x, e);
	free(kv.val);
	if (rc)
		return rc;
	rc = fn(arg, &x.r);
	rec_free(&x);
	return rc;
}

struct rev_arg { const char *serial; int reason; int64_t when; struct lca_err *e; };

static int rev_body(struct et *q, void *arg)
{
	struct rev_arg *a = arg;
	char sub[ET_KEY_MAX], *v;
	json_object *o;
	int rc;

	if (serial_key(a->serial, sub, sizeof(sub)))
		return lca_fail(a->e, -EALREADY, "no certificate with serial %s", a->serial);
	if ((rc = et_get(q, sub, &v, true)) <= 0)
		return rc ? fail(q, rc, a->e) : lca_fail(a->e, -EALREADY, "certificate %s is not valid",
							 a->serial);
	o = et_parse(q, "certificate", v);
	free(v);
	if (!o)
		return fail(q, -EIO, a->e);
	if (et_jget(o, "revoked")) {
		json_object_put(o);
		return lca_fail(a->e, -EALREADY, "certificate %s is not valid", a->serial);
	}
	o = et_with(et_with(et_with(o, "revoked", json_object_new_int64(1)), "revoked_at",
			    json_object_new_int64(a->when)), "reason", json_object_new_int64(a->reason));
	return (rc = et_put_json(q, sub, o)) ? fail(q, rc, a->e) : 0;
}

static int e_revoke(struct lca_certdb *d, const char *serial, int reason, int64_t when,
		    struct lca_err *e)
{
	struct rev_arg a = { serial, reason, when, e };

	return tx(Q(d), rev_body, &a, e);
}

struct crl_arg { const char *who; int64_t now, num, tu; struct lca_err *e; };

static int crl_body(struct et *q, void *arg)
{
	struct crl_arg *a = arg;
	char sub[64], *v;
	int64_t last = -1, num = 0;
	json_object *o;
	int rc;

	snprintf(sub, sizeof(sub), "ca/%scrl", a->who);
	if ((rc = et_get(q, sub, &v, true)) < 0)
		return fail(q, rc, a->e);
	if (rc) {
		o = et_parse(q, "CRL state", v);
		free(v);
		if (!o)
			return fail(q, -EIO, a->e);
		last = et_jget(o, "this_update");
		num = et_jget(o, "number");
		json_object_put(o);
	}
	if ((rc = lca_crl_next_time(last, a->now, &a->tu, a->e)))
		return rc;
	a->num = num + 1;
	rc = et_put_json(q, sub, et_obj("number", a->num, "this_update", a->tu, NULL));
	return rc ? fail(q, rc, a->e) : 0;
}

static int e_next_crl(struct lca_certdb *d, const char *who, int64_t now, int64_t *num,
		      int64_t *this_update, struct lca_err *e)
{
	struct crl_arg a = { .who = who, .now = now, .e = e };
	int rc;

	if (strcmp(who, "") && strcmp(who, "root_"))
		return lca_fail(e, -EINVAL, "no CRL series '%s'", who);
	if ((rc = tx(Q(d), crl_body, &a, e)))
		return rc;
	*num = a.num;
	*this_update = a.tu;
	return 0;
}

struct put_arg { int64_t num; const unsigned char *der; size_t len; struct lca_err *e; };

static int put_body(struct et *q, void *arg)
{
	struct put_arg *a = arg;
	json_object *o;
	char *v;
	int rc;

	if ((rc = et_get(q, "ca/crl_latest", &v, true)) < 0)
		return fail(q, rc, a->e);
	if (rc) {
		o = et_parse(q, "CRL", v);
		free(v);
		if (!o)
			return fail(q, -EIO, a->e);
		rc = et_jget(o, "number") >= a->num;     /* a later one is kept already */
		json_object_put(o);
		if (rc)
			return 0;
	}
	if (!(o = et_obj("number", a->num, NULL)) || et_add_b64(o, "der", (const char *)a->der, a->len)) {
		json_object_put(o);
		return lca_fail(a->e, -ENOMEM, "out of memory");
	}
	return (rc = et_put_json(q, "ca/crl_latest", o)) ? fail(q, rc, a->e) : 0;
}

static int e_crl_put(struct lca_certdb *d, int64_t num, const unsigned char *der, size_t len,
		     struct lca_err *e)
{
	struct put_arg a = { num, der, len, e };

	return tx(Q(d), put_body, &a, e);
}

static int e_crl_get(struct lca_certdb *d, unsigned char **der, size_t *len, int64_t *num,
		     struct lca_err *e)
{
	struct et *q = Q(d);
	json_object *o, *b;
	char *v;
	int rc;

	*der = NULL;
	if ((rc = et_get(q, "ca/crl_latest", &v, false)) <= 0)
		return rc ? fail(q, rc, e) : lca_fail(e, -ENOENT, "no CRL signed yet");
	o = et_parse(q, "CRL", v);
	free(v);
	if (!o)
		return fail(q, -EIO, e);
	*num = et_jget(o, "number");
	if (!json_object_object_get_ex(o, "der", &b) ||
	    !(*der = (unsigned char *)et_unb64(json_object_get_string(b), len)) || !*len) {
		free(*der);
		*der = NULL;
		json_object_put(o);
		return lca_fail(e, -EIO, "etcd: the kept CRL is unreadable");
	}
	json_object_put(o);
	return 0;
}

static int e_begin(struct lca_certdb *d, struct lca_err *e)
{
	int rc = et_begin(&Q(d)->base);

	return rc ? fail(Q(d), rc, e) : 0;
}

static int e_end(struct lca_certdb *d, int err, struct lca_err *e)
{
	int rc;

	if (err) {
		et_rollback(&Q(d)->base);
		return err;
	}
	rc = et_commit(&Q(d)->base);
	return rc ? fail(Q(d), rc, e) : 0;
}

static void e_free(struct lca_certdb *d)
{
	free(d);
}

static const struct lca_certdb_ops etdb_ops = {
	.init = e_init, .insert = e_insert, .list = e_list, .get = e_get, .revoke = e_revoke,
	.next_crl = e_next_crl, .crl_put = e_crl_put, .crl_get = e_crl_get, .begin = e_begin,
	.end = e_end, .free = e_free,
};

struct lca_certdb *et_certdb_new(struct et *q)
{
	struct etdb *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->base.ops = &etdb_ops;
	d->q = q;
	return &d->base;
}
