// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd v3 backend of the store (store.h), selected by a state location
 * etcd://HOST:PORT[/PREFIX] (xd_store_open).  The client path (etcd's JSON
 * gateway over libcurl + json-c) and the transaction buffer are in
 * store_etcd_kv.c.  Keys, under PREFIX/INSTANCE/ (default /xdnat/INSTANCE/):
 *
 *   hosts/NAME              {"secret": hex, "lan", "enrolled"}
 *   names/NAME              client id of the registration of NAME (unique)
 *   clients/ID              {"name", "lan", "host_id", "gidx", "seen"}   ID %08x
 *   bindings/ID             {"client", "owner", "kind", "gidx", "first",
 *                            "last", "state", "until", "created"}
 *   blocks/pGIDX/FIRST      "ID LAST" of the port block starting at FIRST
 *   blocks/s/FIRST          the same for SPI blocks (one space)
 *   space/pGIDX, space/s    a counter every claim in that space bumps
 *   seq/clients, seq/bindings   the last id given
 *   hostids/H               client id holding map host id H (%08x; unique)
 *   settings/KEY            decimal integer
 *
 * claim() is one Txn: it reads the space counter and the block starting
 * last at or before the new block's last (the only one that can overlap,
 * since blocks never overlap), and commits only if the counter's
 * mod_revision is unchanged, putting the binding, its block key and the
 * counter + 1 together.  Two routers claiming in one space at the same
 * moment read the same counter revision: one Txn succeeds, the other
 * fails its compare and reruns from fresh reads, where it sees the winner's
 * block (-EBUSY) or none in its way.  Deletions need no bump: they only
 * free space.  A grid of one key per port (compare create_revision == 0 on
 * each) was rejected: blocks have any size (an SPI block is 65,536 values)
 * and etcd caps a Txn at 128 operations by default.
 *
 * Not implemented yet (-EOPNOTSUPP with a message): counter baselines
 * (ctr_load, ctr_store) and every certificate op (ca_*, cert_*): the Local
 * CA keeps its SQLite store until its tables move behind this interface.
 * Scans (each_*, list, counts, lapsed, ...) read the whole prefix: fine
 * for thousands of bindings, not for millions.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include "lca_ext.h"
#include "store_etcd_int.h"

/* ------------------------------------------------------------ values */

static int64_t jget(json_object *o, const char *f)
{
	json_object *v;

	return json_object_object_get_ex(o, f, &v) ? json_object_get_int64(v) : 0;
}

static const char *jstr(json_object *o, const char *f)
{
	json_object *v;

	return json_object_object_get_ex(o, f, &v) ? json_object_get_string(v) : "";
}

static json_object *parse(struct et *q, const char *what, const char *val)
{
	json_object *o = json_tokener_parse(val);

	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		xd_store_fail(&q->base, -EIO, "etcd: malformed %s record", what);
		return NULL;
	}
	return o;
}

/* Put @o (consumed) at @sub. */
static int put_json(struct et *q, const char *sub, json_object *o)
{
	int rc;

	if (!o)
		return xd_store_fail(&q->base, -ENOMEM, "out of memory");
	rc = et_put(q, sub, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return rc;
}

static json_object *obj(const char *k1, ...)
{
	json_object *o = json_object_new_object();
	va_list ap;

	/* pairs of (name, int64) until NULL */
	va_start(ap, k1);
	for (const char *k = k1; o && k; k = va_arg(ap, const char *))
		json_object_object_add(o, k, json_object_new_int64(va_arg(ap, int64_t)));
	va_end(ap);
	return o;
}

static void client_from(json_object *o, uint32_t id, struct xd_client *c)
{
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->lan = (uint32_t)jget(o, "lan");
	c->host_id = (uint32_t)jget(o, "host_id");
	c->gidx = (int32_t)jget(o, "gidx");
	c->last_seen_ms = jget(o, "seen");
	snprintf(c->name, sizeof(c->name), "%s", jstr(o, "name"));
}

static int put_client(struct et *q, const struct xd_client *c)
{
	char sub[32];
	json_object *o = obj("lan", (int64_t)c->lan, "host_id", (int64_t)c->host_id, "gidx",
			     (int64_t)c->gidx, "seen", c->last_seen_ms, NULL);

	snprintf(sub, sizeof(sub), "clients/%08" PRIx32, c->id);
	if (o)
		json_object_object_add(o, "name", json_object_new_string(c->name));
	return put_json(q, sub, o);
}

static void binding_from(json_object *o, uint32_t id, struct xd_binding *b)
{
	b->id = id;
	b->client_id = (uint32_t)jget(o, "client");
	b->kind = (int)jget(o, "kind");
	b->gidx = (int)jget(o, "gidx");
	b->first = (uint32_t)jget(o, "first");
	b->last = (uint32_t)jget(o, "last");
	b->state = (int)jget(o, "state");
	b->until_ms = jget(o, "until");
}

static uint32_t id_of(const char *key)
{
	const char *s = strrchr(key, '/');

	return s ? (uint32_t)strtoul(s + 1, NULL, 16) : 0;
}

/* The name after the last '/'. */
static const char *leaf(const char *key)
{
	const char *s = strrchr(key, '/');

	return s ? s + 1 : key;
}

/* ------------------------------------------------- whole-prefix reads */

struct snap {
	struct xd_client *c;
	size_t nc;
	struct xd_binding *b;
	char (*owner)[RSIP_KEYID_MAX + 1];
	size_t nb;
};

static void snap_free(struct snap *s)
{
	free(s->c);
	free(s->b);
	free(s->owner);
	memset(s, 0, sizeof(*s));
}

static int load_clients(struct et *q, struct snap *s)
{
	struct et_kvs k;
	int rc = et_scan(q, "clients/", &k);

	if (rc)
		return rc;
	s->c = calloc(k.n + 1, sizeof(*s->c));
	if (!s->c)
		rc = xd_store_fail(&q->base, -ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < k.n; i++) {
		json_object *o = parse(q, "client", k.v[i].val);

		if (!o) {
			rc = -EIO;
			break;
		}
		client_from(o, id_of(k.v[i].key), &s->c[s->nc++]);
		json_object_put(o);
	}
	et_kvs_free(&k);
	return rc;
}

static int load_bindings(struct et *q, struct snap *s)
{
	struct et_kvs k;
	int rc = et_scan(q, "bindings/", &k);

	if (rc)
		return rc;
	s->b = calloc(k.n + 1, sizeof(*s->b));
	s->owner = calloc(k.n + 1, sizeof(*s->owner));
	if (!s->b || !s->owner)
		rc = xd_store_fail(&q->base, -ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < k.n; i++) {
		json_object *o = parse(q, "binding", k.v[i].val);

		if (!o) {
			rc = -EIO;
			break;
		}
		binding_from(o, id_of(k.v[i].key), &s->b[s->nb]);
		snprintf(s->owner[s->nb], sizeof(s->owner[0]), "%s", jstr(o, "owner"));
		s->nb++;
		json_object_put(o);
	}
	et_kvs_free(&k);
	return rc;
}

/* ---------------------------------------------------------- enrolments */

static int et_enroll(struct xd_store *st, const char *name, uint32_t lan_be,
		     const uint8_t secret[RSIP_SECRET_LEN], int64_t now_ms)
{
	struct et *q = ET(st);
	char sub[ET_KEY_MAX], hex[2 * RSIP_SECRET_LEN + 1];
	json_object *o;
	int rc;

	if (!rsip_valid_name(name, strlen(name)))
		return xd_store_fail(st, -EINVAL, "'%s' is not a valid host name (1-%d of [A-Za-z0-9_.-])",
				     name, RSIP_KEYID_MAX);
	for (int i = 0; i < RSIP_SECRET_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", secret[i]);
	snprintf(sub, sizeof(sub), "hosts/%s", name);
	o = obj("lan", (int64_t)lan_be, "enrolled", now_ms, NULL);
	if (o)
		json_object_object_add(o, "secret", json_object_new_string(hex));
	if ((rc = et_begin(st)))
		return rc;
	if ((rc = put_json(q, sub, o)) || (rc = et_commit(st))) {
		et_rollback(st);
		return rc;
	}
	return 0;
}

static int un_body(struct et *q, void *arg)
{
	char sub[ET_KEY_MAX], *v;
	int rc;

	snprintf(sub, sizeof(sub), "hosts/%s", (const char *)arg);
	if ((rc = et_get(q, sub, &v, true)) <= 0)
		return rc ? rc : xd_store_fail(&q->base, -ENOENT, "no enrolled host '%s'", (const char *)arg);
	free(v);
	return et_del(q, sub);
}

static int et_unenroll(struct xd_store *st, const char *name)
{
	return et_tx(ET(st), un_body, (void *)name);
}

static int et_host_secret(struct xd_store *st, const char *name, uint8_t secret[RSIP_SECRET_LEN],
			  uint32_t *lan_be)
{
	struct et *q = ET(st);
	char sub[ET_KEY_MAX], *v;
	json_object *o;
	const char *hex;
	int rc;

	if (!rsip_valid_name(name, strlen(name)))
		return xd_store_fail(st, -ENOENT, "no enrolled host '%s'", name);
	snprintf(sub, sizeof(sub), "hosts/%s", name);
	if ((rc = et_get(q, sub, &v, false)) <= 0)
		return rc ? rc : xd_store_fail(st, -ENOENT, "no enrolled host '%s'", name);
	o = parse(q, "host", v);
	free(v);
	if (!o)
		return -EIO;
	hex = jstr(o, "secret");
	rc = strlen(hex) == 2 * RSIP_SECRET_LEN ? 0 : xd_store_fail(st, -EIO, "etcd: bad secret of '%s'", name);
	for (int i = 0; !rc && i < RSIP_SECRET_LEN; i++) {
		unsigned x;

		if (sscanf(hex + 2 * i, "%2x", &x) != 1)
			rc = xd_store_fail(st, -EIO, "etcd: bad secret of '%s'", name);
		secret[i] = (uint8_t)x;
	}
	*lan_be = (uint32_t)jget(o, "lan");
	json_object_put(o);
	return rc;
}

/* --------------------------------------------------------- registrations */

static int client_read(struct et *q, uint32_t id, struct xd_client *c, bool guarded)
{
	char sub[32], *v;
	json_object *o;
	int rc;

	snprintf(sub, sizeof(sub), "clients/%08" PRIx32, id);
	if ((rc = et_get(q, sub, &v, guarded)) <= 0)
		return rc;
	o = parse(q, "client", v);
	free(v);
	if (!o)
		return -EIO;
	client_from(o, id, c);
	json_object_put(o);
	return 1;
}

static int et_client_get(struct xd_store *st, uint32_t id, struct xd_client *c)
{
	return client_read(ET(st), id, c, false);
}

static int et_client_by_name(struct xd_store *st, const char *name, struct xd_client *c)
{
	struct et *q = ET(st);
	char sub[ET_KEY_MAX], *v;
	int rc;

	if (!rsip_valid_name(name, strlen(name)))
		return 0;
	snprintf(sub, sizeof(sub), "names/%s", name);
	if ((rc = et_get(q, sub, &v, false)) <= 0)
		return rc;
	rc = client_read(q, (uint32_t)strtoul(v, NULL, 10), c, false);
	free(v);
	return rc;
}

static int et_client_by_lan(struct xd_store *st, uint32_t lan_be, struct xd_client *c)
{
	struct snap s = { 0 };
	int rc = load_clients(ET(st), &s);

	for (size_t i = 0; !rc && i < s.nc; i++)
		if (s.c[i].lan == lan_be) {
			*c = s.c[i];
			rc = 1;
		}
	snap_free(&s);
	return rc;
}

/* The next id of @seq ("clients" or "bindings"), guarded. */
static int next_id(struct et *q, const char *seq, uint32_t *id)
{
	char sub[32], v[24], *cur;
	int rc;

	snprintf(sub, sizeof(sub), "seq/%s", seq);
	if ((rc = et_get(q, sub, &cur, true)) < 0)
		return rc;
	*id = (rc ? (uint32_t)strtoul(cur, NULL, 10) : 0) + 1;
	free(cur);
	if (!*id)
		return xd_store_fail(&q->base, -ENOSPC, "etcd: %s ids exhausted", seq);
	snprintf(v, sizeof(v), "%" PRIu32, *id);
	return et_put(q, sub, v);
}

/* hostids/H names the client that holds map host id H: two routers that
 * pick the same free id for different clients at once cannot both commit
 * (the key's absence is guarded), whatever block spaces they claim in. */
static int host_key(struct et *q, uint32_t client, uint32_t old, uint32_t id)
{
	char sub[32], v[16], *cur;
	int rc;

	if (old == id)
		return 0;
	snprintf(sub, sizeof(sub), "hostids/%08" PRIx32, old);
	if (old && (rc = et_del(q, sub)))
		return rc;
	if (!id)
		return 0;
	snprintf(sub, sizeof(sub), "hostids/%08" PRIx32, id);
	if ((rc = et_get(q, sub, &cur, true)) < 0)
		return rc;
	if (rc == 1) {
		unsigned long o = strtoul(cur, NULL, 10);

		free(cur);
		if (o != client)
			return xd_store_fail(&q->base, -EBUSY, "host id %" PRIu32 " is client %lu's", id, o);
	}
	snprintf(v, sizeof(v), "%" PRIu32, client);
	return et_put(q, sub, v);
}

struct add_arg { const char *name; uint32_t lan; int64_t now; uint32_t *id; };

static int add_body(struct et *q, void *arg)
{
	struct add_arg *a = arg;
	struct xd_client c = { .lan = a->lan, .gidx = -1, .last_seen_ms = a->now };
	char sub[ET_KEY_MAX], v[24], *old;
	int rc;

	if (!rsip_valid_name(a->name, strlen(a->name)))
		return xd_store_fail(&q->base, -EINVAL, "'%s' is not a valid host name", a->name);
	snprintf(sub, sizeof(sub), "names/%s", a->name);
	if ((rc = et_get(q, sub, &old, true)) < 0)
		return rc;
	free(old);
	if (rc)
		return xd_store_fail(&q->base, -EIO, "etcd: '%s' is registered already", a->name);
	if ((rc = next_id(q, "clients", &c.id)))
		return rc;
	snprintf(c.name, sizeof(c.name), "%s", a->name);
	snprintf(v, sizeof(v), "%" PRIu32, c.id);
	if ((rc = et_put(q, sub, v)) || (rc = put_client(q, &c)))
		return rc;
	*a->id = c.id;
	return 0;
}

static int et_client_add(struct xd_store *st, const char *name, uint32_t lan_be, int64_t now_ms,
			 uint32_t *id)
{
	struct add_arg a = { name, lan_be, now_ms, id };

	return et_tx(ET(st), add_body, &a);
}

/* Read-modify-write of one client; a missing client is not an error. */
struct upd_arg { uint32_t id, lan, host_id; int32_t gidx; int64_t now; bool touch; };

static int upd_body(struct et *q, void *arg)
{
	struct upd_arg *a = arg;
	struct xd_client c;
	int rc = client_read(q, a->id, &c, true);

	if (rc <= 0)
		return rc;
	if (a->touch) {
		if (a->lan)
			c.lan = a->lan;
		c.last_seen_ms = a->now;
	} else {
		if ((rc = host_key(q, c.id, c.host_id, a->host_id)))
			return rc;
		c.host_id = a->host_id;
		c.gidx = a->gidx;
	}
	return put_client(q, &c);
}

static int et_client_touch(struct xd_store *st, uint32_t id, uint32_t lan_be, int64_t now_ms)
{
	struct upd_arg a = { .id = id, .lan = lan_be, .now = now_ms, .touch = true };

	return et_tx(ET(st), upd_body, &a);
}

static int et_client_set_host(struct xd_store *st, uint32_t id, uint32_t host_id, int32_t gidx)
{
	struct upd_arg a = { .id = id, .host_id = host_id, .gidx = gidx };

	return et_tx(ET(st), upd_body, &a);
}

static int del_client(struct et *q, const struct xd_client *c)
{
	char sub[ET_KEY_MAX];
	int rc;

	snprintf(sub, sizeof(sub), "clients/%08" PRIx32, c->id);
	if ((rc = et_del(q, sub)) || (rc = host_key(q, c->id, c->host_id, 0)))
		return rc;
	snprintf(sub, sizeof(sub), "names/%s", c->name);
	return et_del(q, sub);
}

static int cdel_body(struct et *q, void *arg)
{
	struct xd_client c;
	int rc = client_read(q, *(uint32_t *)arg, &c, true);

	return rc <= 0 ? rc : del_client(q, &c);
}

static int et_client_del(struct xd_store *st, uint32_t id)
{
	return et_tx(ET(st), cdel_body, &id);
}

static int expire_body(struct et *q, void *arg)
{
	int64_t before = *(int64_t *)arg;
	struct snap s = { 0 };
	int rc = load_clients(q, &s);

	if (!rc)
		rc = load_bindings(q, &s);
	for (size_t i = 0; !rc && i < s.nc; i++) {
		bool bound = false;
		struct xd_client c;

		if (s.c[i].host_id || s.c[i].last_seen_ms > before)
			continue;
		for (size_t j = 0; j < s.nb; j++)
			bound |= s.b[j].client_id == s.c[i].id && s.b[j].state == RSIP_BIND_ACTIVE;
		/* guarded: a router that touches it meanwhile wins */
		if (!bound && (rc = client_read(q, s.c[i].id, &c, true)) == 1)
			rc = del_client(q, &c);
	}
	snap_free(&s);
	return rc < 0 ? rc : 0;
}

static int et_clients_expire(struct xd_store *st, int64_t before_ms)
{
	return et_tx(ET(st), expire_body, &before_ms);
}

static int et_host_id_taken(struct xd_store *st, uint32_t host_id)
{
	struct snap s = { 0 };
	int rc = load_clients(ET(st), &s);

	for (size_t i = 0; !rc && i < s.nc; i++)
		rc = s.c[i].host_id == host_id;
	snap_free(&s);
	return rc;
}

static int et_each_client(struct xd_store *st, xd_store_client_fn fn, void *arg)
{
	struct snap s = { 0 };
	int rc = load_clients(ET(st), &s);

	for (size_t i = 0; !rc && i < s.nc; i++)
		rc = fn(arg, &s.c[i]);
	snap_free(&s);
	return rc;
}

/* -------------------------------------------------------------- bindings */

static void space_of(int kind, uint32_t gidx, char *sub, size_t len)
{
	if (kind == RSIP_KIND_PORTS)
		snprintf(sub, len, "p%" PRIu32, gidx);
	else
		snprintf(sub, len, "s");
}

static int et_last_before(struct xd_store *st, int kind, uint32_t gidx, uint32_t at, int64_t *last)
{
	struct et *q = ET(st);
	char sp[16], from[48], to[48];
	struct et_kvs k;
	int rc;

	space_of(kind, gidx, sp, sizeof(sp));
	snprintf(from, sizeof(from), "blocks/%s/", sp);
	snprintf(to, sizeof(to), "blocks/%s/%08" PRIx32 "~", sp, at);   /* '~' sorts after hex */
	if ((rc = et_scan_between(q, from, to, &k)))
		return rc;
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

struct claim_arg { const struct xd_claim *c; uint32_t *bind_id; };

static int claim_body(struct et *q, void *arg)
{
	const struct xd_claim *c = ((struct claim_arg *)arg)->c;
	char sp[16], sub[ET_KEY_MAX], v[48], *cnt;
	struct xd_client cl;
	json_object *o;
	int64_t end, n;
	uint32_t id;
	int rc;

	space_of(c->kind, c->gidx, sp, sizeof(sp));
	snprintf(sub, sizeof(sub), "space/%s", sp);
	if ((rc = et_get(q, sub, &cnt, true)) < 0)
		return rc;
	n = rc ? strtoll(cnt, NULL, 10) : 0;
	free(cnt);
	rc = et_last_before(&q->base, c->kind, c->gidx, c->last, &end);
	if (rc < 0)
		return rc;
	if (rc == 1 && end >= c->first)
		return xd_store_fail(&q->base, -EBUSY, "claim: %s %u-%u overlap a binding",
				     c->kind == RSIP_KIND_PORTS ? "ports" : "SPIs", c->first, c->last);
	if ((rc = client_read(q, c->client_id, &cl, true)) <= 0)
		return rc ? rc : xd_store_fail(&q->base, -ENOENT, "claim: no client %u", c->client_id);
	snprintf(v, sizeof(v), "%lld", (long long)n + 1);
	if ((rc = et_put(q, sub, v)) || (rc = next_id(q, "bindings", &id)))
		return rc;
	snprintf(sub, sizeof(sub), "blocks/%s/%08" PRIx32, sp, c->first);
	snprintf(v, sizeof(v), "%" PRIu32 " %" PRIu32, id, c->last);
	if ((rc = et_put(q, sub, v)))
		return rc;
	o = obj("client", (int64_t)c->client_id, "kind", (int64_t)c->kind, "gidx", (int64_t)c->gidx,
		"first", (int64_t)c->first, "last", (int64_t)c->last, "state", (int64_t)RSIP_BIND_ACTIVE,
		"until", c->until_ms, "created", c->now_ms, NULL);
	if (o)
		json_object_object_add(o, "owner", json_object_new_string(cl.name));
	snprintf(sub, sizeof(sub), "bindings/%08" PRIx32, id);
	if ((rc = put_json(q, sub, o)))
		return rc;
	if ((rc = host_key(q, cl.id, cl.host_id, c->host_id)))
		return rc;
	cl.host_id = c->host_id;
	cl.gidx = (int32_t)c->gidx;
	cl.last_seen_ms = c->now_ms;
	if ((rc = put_client(q, &cl)))
		return rc;
	*((struct claim_arg *)arg)->bind_id = id;
	return 0;
}

static int et_claim(struct xd_store *st, const struct xd_claim *c, uint32_t *bind_id)
{
	struct claim_arg a = { c, bind_id };

	if (c->first > c->last || (c->kind != RSIP_KIND_PORTS && c->kind != RSIP_KIND_SPI))
		return xd_store_fail(st, -EINVAL, "claim: bad block");
	return et_tx(ET(st), claim_body, &a);
}

/* 1 found (with its raw JSON in *o), 0 not. */
static int binding_read(struct et *q, uint32_t id, struct xd_binding *b, bool guarded, json_object **out)
{
	char sub[32], *v;
	json_object *o;
	int rc;

	snprintf(sub, sizeof(sub), "bindings/%08" PRIx32, id);
	if ((rc = et_get(q, sub, &v, guarded)) <= 0)
		return rc;
	o = parse(q, "binding", v);
	free(v);
	if (!o)
		return -EIO;
	binding_from(o, id, b);
	if (out)
		*out = o;
	else
		json_object_put(o);
	return 1;
}

static int et_binding_get(struct xd_store *st, uint32_t id, struct xd_binding *b)
{
	return binding_read(ET(st), id, b, false, NULL);
}

struct bset_arg { uint32_t id; int state; int64_t until; };

static int bset_body(struct et *q, void *arg)
{
	struct bset_arg *a = arg;
	struct xd_binding b;
	json_object *o;
	char sub[32];
	int rc = binding_read(q, a->id, &b, true, &o);

	if (rc <= 0)
		return rc;
	json_object_object_add(o, "state", json_object_new_int64(a->state));
	json_object_object_add(o, "until", json_object_new_int64(a->until));
	snprintf(sub, sizeof(sub), "bindings/%08" PRIx32, a->id);
	return put_json(q, sub, o);
}

static int et_binding_set(struct xd_store *st, uint32_t id, int state, int64_t until_ms)
{
	struct bset_arg a = { id, state, until_ms };

	return et_tx(ET(st), bset_body, &a);
}

static int drop_binding(struct et *q, const struct xd_binding *b)
{
	char sp[16], sub[ET_KEY_MAX];
	int rc;

	snprintf(sub, sizeof(sub), "bindings/%08" PRIx32, b->id);
	if ((rc = et_del(q, sub)))
		return rc;
	space_of(b->kind, (uint32_t)b->gidx, sp, sizeof(sp));
	snprintf(sub, sizeof(sub), "blocks/%s/%08" PRIx32, sp, b->first);
	return et_del(q, sub);
}

static int bdel_body(struct et *q, void *arg)
{
	struct xd_binding b;
	int rc = binding_read(q, *(uint32_t *)arg, &b, true, NULL);

	return rc <= 0 ? rc : drop_binding(q, &b);
}

static int et_binding_del(struct xd_store *st, uint32_t id)
{
	return et_tx(ET(st), bdel_body, &id);
}

static int et_each_binding(struct xd_store *st, xd_store_binding_fn fn, void *arg)
{
	struct snap s = { 0 };
	int rc = load_bindings(ET(st), &s);

	for (size_t i = 0; !rc && i < s.nb; i++)
		rc = fn(arg, &s.b[i]);
	snap_free(&s);
	return rc;
}

static int et_client_bindings(struct xd_store *st, uint32_t client_id, struct xd_binding *out,
			      unsigned max, unsigned *n)
{
	struct snap s = { 0 };
	int rc = load_bindings(ET(st), &s);

	*n = 0;
	for (size_t i = 0; !rc && i < s.nb; i++) {   /* key order = id order */
		if (s.b[i].client_id != client_id || s.b[i].state != RSIP_BIND_ACTIVE)
			continue;
		if (*n < max)
			out[*n] = s.b[i];
		(*n)++;
	}
	snap_free(&s);
	return rc;
}

static int by_first(const void *a, const void *b)
{
	const struct xd_binding *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int et_client_runs(struct xd_store *st, uint32_t client_id, int kind, struct xd_run **out,
			  size_t *n)
{
	struct snap s = { 0 };
	struct xd_run *r;
	size_t cnt = 0;
	int rc = load_bindings(ET(st), &s);

	if (rc)
		return rc;
	if (s.nb > 1)
		qsort(s.b, s.nb, sizeof(*s.b), by_first);
	if (!(r = calloc(s.nb + 1, sizeof(*r)))) {
		snap_free(&s);
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
	snap_free(&s);
	*out = r;
	*n = cnt;
	return 0;
}

static int et_client_held(struct xd_store *st, uint32_t client_id, int kind, struct xd_held *h)
{
	struct snap s = { 0 };
	int rc = load_bindings(ET(st), &s);

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
	snap_free(&s);
	return rc;
}

static int et_held_at(struct xd_store *st, const char *name, int kind, uint32_t at, int64_t *last)
{
	struct xd_client c;
	struct snap s = { 0 };
	int rc = et_client_by_name(st, name, &c);

	if (rc <= 0)
		return rc;
	rc = load_bindings(ET(st), &s);
	for (size_t i = 0; !rc && i < s.nb; i++) {
		const struct xd_binding *b = &s.b[i];

		if (b->client_id == c.id && b->kind == kind && b->state == RSIP_BIND_ACTIVE &&
		    b->first <= at && b->last >= at) {
			*last = b->last;
			rc = 1;
		}
	}
	snap_free(&s);
	return rc;
}

static int et_lapsed(struct xd_store *st, int64_t now_ms, uint32_t *ids, unsigned max, unsigned *n)
{
	struct snap s = { 0 };
	int rc = load_bindings(ET(st), &s);

	*n = 0;
	for (size_t i = 0; !rc && i < s.nb && *n < max; i++)
		if (s.b[i].state == RSIP_BIND_ACTIVE && s.b[i].until_ms <= now_ms)
			ids[(*n)++] = s.b[i].id;
	snap_free(&s);
	return rc;
}

struct qend_arg { int64_t now; struct snap s; };

static int qend_body(struct et *q, void *arg)
{
	struct qend_arg *a = arg;
	int rc;

	snap_free(&a->s);
	if ((rc = load_bindings(q, &a->s)))
		return rc;
	for (size_t i = 0; i < a->s.nb; i++) {
		struct xd_binding b;

		if (a->s.b[i].state != RSIP_BIND_QUARANTINE || a->s.b[i].until_ms > a->now)
			continue;
		/* guarded: a binding changed meanwhile is looked at again */
		if ((rc = binding_read(q, a->s.b[i].id, &b, true, NULL)) < 0 ||
		    (rc == 1 && (rc = drop_binding(q, &b))))
			return rc;
	}
	return 0;
}

static int et_quarantine_end(struct xd_store *st, int64_t now_ms, xd_store_binding_fn fn, void *arg)
{
	struct qend_arg a = { .now = now_ms };
	int rc = et_tx(ET(st), qend_body, &a);

	/* the callbacks see what was deleted, once it is */
	for (size_t i = 0; !rc && i < a.s.nb; i++)
		if (a.s.b[i].state == RSIP_BIND_QUARANTINE && a.s.b[i].until_ms <= now_ms)
			rc = fn(arg, &a.s.b[i]);
	snap_free(&a.s);
	return rc;
}

static int et_next_until(struct xd_store *st, int state, int64_t *until_ms)
{
	struct snap s = { 0 };
	int rc = load_bindings(ET(st), &s);
	bool any = false;

	for (size_t i = 0; !rc && i < s.nb; i++)
		if (s.b[i].state == state && (!any || s.b[i].until_ms < *until_ms)) {
			*until_ms = s.b[i].until_ms;
			any = true;
		}
	snap_free(&s);
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
		json_object *o = parse(q, "host", k.v[i].val);

		if (!o) {
			rc = -EIO;
			break;
		}
		snprintf(h->name[h->n], sizeof(h->name[0]), "%s", leaf(k.v[i].key));
		h->lan[h->n++] = (uint32_t)jget(o, "lan");
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

static const struct xd_client *find_client(const struct snap *s, uint32_t id, const char *name)
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
static int et_list(struct xd_store *st, xd_store_row_fn fn, void *arg)
{
	struct et *q = ET(st);
	struct snap s = { 0 };
	struct hosts h;
	struct xd_list_row *r = NULL;
	size_t n = 0;
	int rc = load_hosts(q, &h);

	if (!rc)
		rc = load_clients(q, &s);
	if (!rc)
		rc = load_bindings(q, &s);
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
	snap_free(&s);
	hosts_free(&h);
	return rc;
}

static int et_counts(struct xd_store *st, int64_t v[4])
{
	struct et *q = ET(st);
	struct snap s = { 0 };
	struct hosts h;
	int rc = load_hosts(q, &h);

	if (!rc)
		rc = load_clients(q, &s);
	if (!rc)
		rc = load_bindings(q, &s);
	if (!rc) {
		v[0] = (int64_t)h.n;
		v[1] = (int64_t)s.nc;
		v[2] = v[3] = 0;
		for (size_t i = 0; i < s.nb; i++)
			v[2 + (s.b[i].state == RSIP_BIND_QUARANTINE)]++;
	}
	snap_free(&s);
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

static int et_setting_set(struct xd_store *st, const char *key, int64_t value)
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

static int et_setting_get(struct xd_store *st, const char *key, int64_t *value)
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

/* ------------------------------------------------------ not implemented */

#define NOTYET(st, what) xd_store_fail(st, -EOPNOTSUPP, "etcd store: %s is not implemented yet " \
				       "(docs/CLUSTER.md)", what)

static int nolca(struct xd_store *st, struct lca_err *e, const char *what)
{
	int rc = NOTYET(st, what);

	if (e)
		snprintf(e->msg, sizeof(e->msg), "%s", st->err);
	return rc;
}

static int et_ctr_load(struct xd_store *st, const char *gen, struct xd_ctr_state *s)
{
	(void)gen;
	(void)s;
	return NOTYET(st, "counter baselines");
}

static int et_ctr_store(struct xd_store *st, const struct xd_ctr_state *s)
{
	(void)s;
	return NOTYET(st, "counter baselines");
}

static int et_ca_open(struct xd_store *st, const struct lca_config *cfg, struct lca **out, struct lca_err *e)
{
	(void)cfg;
	*out = NULL;
	return nolca(st, e, "the Local CA's store");
}

static int et_ca_init(struct xd_store *st, struct lca_err *e)
{
	return nolca(st, e, "the Local CA's store");
}

static int et_cert_revoke(struct xd_store *st, const char *serial, int reason, int64_t when,
			  struct lca_err *e)
{
	(void)serial, (void)reason, (void)when;
	return nolca(st, e, "certificate revocation");
}

static int et_cert_revoke_overlapping(struct xd_store *st, int kind, uint32_t first, uint32_t last,
				      int reason, int64_t when, unsigned *n, struct lca_err *e)
{
	(void)kind, (void)first, (void)last, (void)reason, (void)when;
	*n = 0;
	return nolca(st, e, "certificate revocation");
}

static int et_cert_list(struct xd_store *st, const char *host, xd_store_cert_fn fn, void *arg,
			struct lca_err *e)
{
	(void)host, (void)fn, (void)arg;
	return nolca(st, e, "the certificate listing");
}

static int et_cert_list_print(struct xd_store *st, const char *host, bool json, FILE *f, int64_t now,
			      struct lca_err *e)
{
	(void)host, (void)json, (void)f, (void)now;
	return nolca(st, e, "the certificate listing");
}

static int et_cert_get(struct xd_store *st, const char *serial, xd_store_cert_fn fn, void *arg,
		       struct lca_err *e)
{
	(void)serial, (void)fn, (void)arg;
	return nolca(st, e, "certificate lookup");
}

static int et_cert_unannounced(struct xd_store *st, unsigned max, xd_store_revoked_fn fn, void *arg)
{
	(void)max, (void)fn, (void)arg;
	return NOTYET(st, "revocation notices");
}

static int et_cert_announced(struct xd_store *st, const char *serial, int64_t at)
{
	(void)serial, (void)at;
	return NOTYET(st, "revocation notices");
}

static int et_cert_enrolment_record(struct xd_store *st, const char *serial, const char *host,
				    const uint8_t *tag, size_t len)
{
	(void)serial, (void)host, (void)tag, (void)len;
	return NOTYET(st, "certificate enrolment tags");
}

static int et_cert_enrolment_is(struct xd_store *st, const char *serial, const uint8_t *tag, size_t len)
{
	(void)serial, (void)tag, (void)len;
	return NOTYET(st, "certificate enrolment tags");
}

static int et_cert_enrolment_tag(struct xd_store *st, const char *serial, uint8_t *tag, size_t len)
{
	(void)serial, (void)tag, (void)len;
	return NOTYET(st, "certificate enrolment tags");
}

/* ------------------------------------------------------------ handle */

/* A number that changes with every committed write under the prefix. */
static int64_t et_version(struct xd_store *st)
{
	return et_revision(ET(st));
}

static void et_close(struct xd_store *st)
{
	et_disconnect(ET(st));
	free(st);
}

static const struct xd_store_ops et_ops = {
	.name = "etcd", .close = et_close,
	.begin = et_begin, .commit = et_commit, .rollback = et_rollback, .version = et_version,
	.enroll = et_enroll, .unenroll = et_unenroll, .host_secret = et_host_secret,
	.client_get = et_client_get, .client_by_name = et_client_by_name,
	.client_by_lan = et_client_by_lan, .client_add = et_client_add,
	.client_touch = et_client_touch, .client_set_host = et_client_set_host,
	.client_del = et_client_del, .clients_expire = et_clients_expire,
	.host_id_taken = et_host_id_taken, .each_client = et_each_client,
	.claim = et_claim, .binding_get = et_binding_get, .binding_set = et_binding_set,
	.binding_del = et_binding_del, .each_binding = et_each_binding,
	.client_bindings = et_client_bindings, .client_runs = et_client_runs,
	.client_held = et_client_held, .last_before = et_last_before, .held_at = et_held_at,
	.lapsed = et_lapsed, .quarantine_end = et_quarantine_end, .next_until = et_next_until,
	.list = et_list, .counts = et_counts, .setting_set = et_setting_set,
	.setting_get = et_setting_get,
	.ctr_load = et_ctr_load, .ctr_store = et_ctr_store,
	.ca_open = et_ca_open, .ca_init = et_ca_init, .cert_revoke = et_cert_revoke,
	.cert_revoke_overlapping = et_cert_revoke_overlapping, .cert_list = et_cert_list,
	.cert_list_print = et_cert_list_print, .cert_get = et_cert_get,
	.cert_unannounced = et_cert_unannounced, .cert_announced = et_cert_announced,
	.cert_enrolment_record = et_cert_enrolment_record, .cert_enrolment_is = et_cert_enrolment_is,
	.cert_enrolment_tag = et_cert_enrolment_tag,
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

bool xd_store_is_etcd(const char *loc)
{
	return loc && !strncmp(loc, "etcd://", 7);
}

int xd_store_etcd_open(const char *loc, const char *instance, unsigned flags, struct xd_store **out,
		       char *err, size_t errlen)
{
	const char *hp = loc + 7, *slash = strchr(hp, '/');
	size_t hl = slash ? (size_t)(slash - hp) : strlen(hp);
	const char *path = slash && slash[1] ? slash : "/xdnat";
	size_t pl = strlen(path);
	struct et *q;
	int rc, n;

	(void)flags;   /* read-only handles are not distinguished yet */
	*out = NULL;
	while (pl > 1 && path[pl - 1] == '/')
		pl--;
	if (!xd_store_is_etcd(loc) || !hl || strspn(hp, "abcdefghijklmnopqrstuvwxyz"
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") < hl) {
		snprintf(err, errlen, "bad etcd location '%s' (etcd://HOST:PORT[/PREFIX])", loc);
		return -EINVAL;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "libcurl: %s", curl_easy_strerror(curl_init_rc));
		return -EIO;
	}
	if (!(q = calloc(1, sizeof(*q)))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	q->base.ops = &et_ops;
	n = snprintf(q->url, sizeof(q->url), "http://%.*s", (int)hl, hp);
	rc = n < 0 || (size_t)n >= sizeof(q->url) ? -ENAMETOOLONG : 0;
	n = snprintf(q->prefix, sizeof(q->prefix), "%.*s/%s/", (int)pl, path, instance);
	if (rc || n < 0 || (size_t)n >= sizeof(q->prefix) || path[0] != '/') {
		snprintf(err, errlen, "etcd location or prefix too long or malformed: %s", loc);
		free(q);
		return -EINVAL;
	}
	if ((rc = et_connect(q))) {
		snprintf(err, errlen, "%s", xd_store_error(&q->base));
		et_close(&q->base);
		return rc;
	}
	*out = &q->base;
	return 0;
}
