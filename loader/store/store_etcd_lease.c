// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Leases and leader keys through etcd's JSON gateway: see
 * store_etcd_lease.h.  Endpoints used: /v3/lease/grant, /v3/lease/keepalive
 * (a stream in gRPC; one request, one answer through the gateway),
 * /v3/lease/revoke, /v3/lease/timetolive, /v3/kv/txn, /v3/kv/range.  The
 * requests go through et_post() of a store handle of our own (the same
 * members, TLS and failover as the store, our own timeout).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "store_etcd_int.h"
#include "store_etcd_lease.h"

struct xd_etcd_lease {
	struct xd_store *st;       /* a handle of our own: struct et */
	char err[256];
};

static int fail(struct xd_etcd_lease *l, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct xd_etcd_lease *l, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->err, sizeof(l->err), fmt, ap);
	va_end(ap);
	return rc;
}

const char *xd_etcd_lease_error(const struct xd_etcd_lease *l)
{
	return l && l->err[0] ? l->err : "unknown error";
}

/* POST @req (consumed) to @path: 0 with the answer in *out, or the
 * store's error (-ETIMEDOUT, -EAGAIN: no quorum or no member, -EIO). */
static int post(struct xd_etcd_lease *l, const char *path, json_object *req, json_object **out)
{
	struct et *q = ET(l->st);
	int rc;

	*out = NULL;
	if (!req)
		return fail(l, -ENOMEM, "out of memory");
	rc = et_post(q, path, req, out);
	if (rc)
		fail(l, rc, "%s", xd_store_error(l->st));
	return rc;
}

static int add_b64(json_object *o, const char *field, const char *s)
{
	return et_add_b64(o, field, s, strlen(s));
}

/* base64 @s into @out (text values: ids); "" if it does not decode. */
static void unb64(const char *s, char *out, size_t len)
{
	char *t = et_unb64(s, NULL);

	snprintf(out, len, "%s", t ? t : "");
	free(t);
}

static json_object *with_id(int64_t id)
{
	json_object *r = json_object_new_object();
	char s[24];

	snprintf(s, sizeof(s), "%" PRId64, id);
	return et_with(r, "ID", json_object_new_string(s));   /* NULL: post() says so */
}

int xd_etcd_lease_grant(struct xd_etcd_lease *l, unsigned ttl_s, int64_t *id)
{
	json_object *req = json_object_new_object(), *ans;
	int rc;

	req = et_with(req, "TTL", json_object_new_int64(ttl_s));
	if ((rc = post(l, "/v3/lease/grant", req, &ans)))
		return rc;
	*id = et_jget(ans, "ID");
	rc = *id ? 0 : fail(l, -EIO, "etcd lease grant: %s", json_object_get_string(et_jobj(ans, "error")));
	json_object_put(ans);
	return rc;
}

int xd_etcd_lease_keepalive(struct xd_etcd_lease *l, int64_t id, int64_t *ttl_left)
{
	json_object *ans, *res;
	int rc;

	if ((rc = post(l, "/v3/lease/keepalive", with_id(id), &ans)))
		return rc;
	/* one message of the stream: {"result": {...}} or {"error": {...}} */
	res = et_jobj(ans, "result");
	if (!res) {
		json_object *e = et_jobj(ans, "error");

		rc = fail(l, -EIO, "etcd lease keepalive: %s",
			  e ? json_object_get_string(e) : "no result");
	} else {
		*ttl_left = et_jget(res, "TTL");
		if (*ttl_left <= 0)
			rc = fail(l, -ENOENT, "etcd lease %" PRIx64 " expired", (uint64_t)id);
	}
	json_object_put(ans);
	return rc;
}

int xd_etcd_lease_revoke(struct xd_etcd_lease *l, int64_t id)
{
	json_object *ans;
	int rc = post(l, "/v3/lease/revoke", with_id(id), &ans);

	json_object_put(ans);
	return rc;
}

int xd_etcd_lease_ttl(struct xd_etcd_lease *l, int64_t id, int64_t *ttl_left)
{
	json_object *ans;
	int rc = post(l, "/v3/lease/timetolive", with_id(id), &ans);

	if (rc)
		return rc;
	*ttl_left = et_jget(ans, "TTL");
	json_object_put(ans);
	return *ttl_left > 0 ? 0 : fail(l, -ENOENT, "etcd lease %" PRIx64 " expired", (uint64_t)id);
}

static int role_key(struct xd_etcd_lease *l, const char *role, char *key, size_t len)
{
	int n = snprintf(key, len, "%sleader/%s", ET(l->st)->prefix, role);

	return n < 0 || (size_t)n >= len ? fail(l, -ENAMETOOLONG, "key too long") : 0;
}

/* The first kv of a range answer: 1 (value in @holder, lease), 0 none. */
static int first_kv(json_object *range, char *holder, size_t hlen, int64_t *lease)
{
	json_object *kvs = et_jobj(range, "kvs"), *kv;

	if (!kvs || !json_object_array_length(kvs))
		return 0;
	kv = json_object_array_get_idx(kvs, 0);
	unb64(json_object_get_string(et_jobj(kv, "value")), holder, hlen);
	if (lease)
		*lease = et_jget(kv, "lease");
	return 1;
}

int xd_etcd_campaign(struct xd_etcd_lease *l, const char *role, const char *who, int64_t lease,
		     char *holder, size_t hlen)
{
	json_object *req = json_object_new_object(), *cmp = json_object_new_array(),
		    *ok = json_object_new_array(), *no = json_object_new_array(),
		    *c = json_object_new_object(), *put = json_object_new_object(),
		    *get = json_object_new_object(), *op1 = json_object_new_object(),
		    *op2 = json_object_new_object(), *ans, *s, *resp;
	char key[ET_KEY_MAX], ls[24];
	int64_t hl = 0;
	int rc = !req || !cmp || !ok || !no || !c || !put || !get || !op1 || !op2 ? -ENOMEM : 0;

	if (!rc)
		rc = role_key(l, role, key, sizeof(key));
	if (!rc)
		rc = add_b64(c, "key", key) || add_b64(put, "key", key) || add_b64(put, "value", who) ||
		     add_b64(get, "key", key) ? -ENOMEM : 0;
	if (rc) {
		json_object *all[] = { req, cmp, ok, no, c, put, get, op1, op2 };

		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
			json_object_put(all[i]);
		return rc == -ENOMEM ? fail(l, rc, "out of memory") : rc;
	}
	/* absent: create_revision == 0 */
	snprintf(ls, sizeof(ls), "%" PRId64, lease);
	rc = et_jadd(c, "target", json_object_new_string("CREATE")) |
	     et_jadd(c, "result", json_object_new_string("EQUAL")) |
	     et_jadd(c, "create_revision", json_object_new_string("0")) |
	     et_jadd(put, "lease", json_object_new_string(ls));
	/* each part goes into its parent, which consumes it even on failure
	 * (so one statement each: a part is not used once its parent has it);
	 * in the end req alone holds (or has freed) everything */
	rc |= et_jpush(cmp, c);
	rc |= et_jadd(op1, "request_put", put);
	rc |= et_jpush(ok, op1);
	rc |= et_jadd(op2, "request_range", get);
	rc |= et_jpush(no, op2);
	rc |= et_jadd(req, "compare", cmp);
	rc |= et_jadd(req, "success", ok);
	rc |= et_jadd(req, "failure", no);
	if (rc) {
		json_object_put(req);
		return fail(l, -ENOMEM, "out of memory");
	}
	if ((rc = post(l, "/v3/kv/txn", req, &ans)))
		return rc;
	s = et_jobj(ans, "succeeded");
	if (s && json_object_get_boolean(s)) {
		snprintf(holder, hlen, "%s", who);
		rc = 1;
	} else {
		resp = et_jobj(ans, "responses");
		resp = resp && json_object_array_length(resp) ?
		       et_jobj(json_object_array_get_idx(resp, 0), "response_range") : NULL;
		holder[0] = 0;
		/* deleted in between: nobody holds it, the next round campaigns */
		if (first_kv(resp, holder, hlen, &hl) == 1 && !strcmp(holder, who) && hl == lease)
			rc = 1;
	}
	json_object_put(ans);
	return rc;
}

int xd_etcd_leader(struct xd_etcd_lease *l, const char *role, char *holder, size_t hlen,
		   int64_t *lease)
{
	json_object *req = json_object_new_object(), *ans;
	char key[ET_KEY_MAX];
	int rc;

	holder[0] = 0;
	if (!req || (rc = role_key(l, role, key, sizeof(key))) || add_b64(req, "key", key)) {
		json_object_put(req);
		return fail(l, -ENOMEM, "out of memory or key too long");
	}
	if ((rc = post(l, "/v3/kv/range", req, &ans)))
		return rc;
	rc = first_kv(ans, holder, hlen, lease);
	json_object_put(ans);
	return rc;
}

int xd_etcd_resign(struct xd_etcd_lease *l, const char *role, const char *who)
{
	json_object *req = json_object_new_object(), *cmp = json_object_new_array(),
		    *ok = json_object_new_array(), *c = json_object_new_object(),
		    *del = json_object_new_object(), *op = json_object_new_object(), *ans;
	char key[ET_KEY_MAX];
	int rc = !req || !cmp || !ok || !c || !del || !op ? -ENOMEM : role_key(l, role, key, sizeof(key));

	if (!rc && (add_b64(c, "key", key) || add_b64(c, "value", who) || add_b64(del, "key", key)))
		rc = -ENOMEM;
	if (rc) {
		json_object *all[] = { req, cmp, ok, c, del, op };

		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
			json_object_put(all[i]);
		return rc == -ENOMEM ? fail(l, rc, "out of memory") : rc;
	}
	rc = et_jadd(c, "target", json_object_new_string("VALUE")) |
	     et_jadd(c, "result", json_object_new_string("EQUAL"));
	/* as in xd_etcd_campaign: req alone is left to free */
	rc |= et_jpush(cmp, c);
	rc |= et_jadd(op, "request_delete_range", del);
	rc |= et_jpush(ok, op);
	rc |= et_jadd(req, "compare", cmp);
	rc |= et_jadd(req, "success", ok);
	if (rc) {
		json_object_put(req);
		return fail(l, -ENOMEM, "out of memory");
	}
	rc = post(l, "/v3/kv/txn", req, &ans);
	json_object_put(ans);
	return rc;
}

int xd_etcd_lease_open(const char *state_dir, const char *instance, unsigned timeout_ms,
		       struct xd_etcd_lease **out, char *err, size_t errlen)
{
	struct xd_etcd_lease *l;
	int rc;

	*out = NULL;
	if (!(l = calloc(1, sizeof(*l)))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = xd_store_open(state_dir, instance, XD_STORE_RDONLY, &l->st, err, errlen);
	if (!rc && strcmp(l->st->ops->name, "etcd")) {
		snprintf(err, errlen, "elections need the etcd store ([store] backend = etcd, or a "
			 "state location etcd://...)");
		rc = -EINVAL;
	}
	if (rc) {
		xd_store_close(l->st);
		free(l);
		return rc;
	}
	if (timeout_ms)
		ET(l->st)->timeout_ms = timeout_ms;
	*out = l;
	return 0;
}

void xd_etcd_lease_close(struct xd_etcd_lease *l)
{
	if (!l)
		return;
	xd_store_close(l->st);
	free(l);
}
