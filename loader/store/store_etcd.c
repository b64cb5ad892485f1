// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd v3 backend of the store (store.h), selected by [store] backend =
 * etcd (struct xd_store_cfg: endpoints, prefix, TLS, timeout) or a state
 * location etcd://HOST:PORT[/PREFIX].  The client path (etcd's JSON
 * gateway over libcurl + json-c) is in store_etcd_http.c, the transaction
 * buffer in store_etcd_kv.c; bindings in store_etcd_bind.c; counters and the
 * certificate ops in store_etcd_aux.c, the CA's record store in
 * store_etcd_ca.c.  Keys, under PREFIX/INSTANCE/ (default /xdnat/INSTANCE/):
 *
 *   hosts/NAME              {"secret": hex, "lan", "enrolled"}
 *   names/NAME              client id of the registration of NAME (unique)
 *   clients/ID              {"name", "lan", "host_id", "gidx", "seen"}   ID %08x
 *   bindings/ID             {"client", "owner", "kind", "gidx", "first",
 *                            "last", "state", "until", "created"}
 *   blocks/pGIDX/FIRST      "ID LAST" of the port block starting at FIRST
 *   blocks/s/FIRST          the same for SPI blocks (one space)
 *   ends/pGIDX/LAST, ends/s/LAST   "ID FIRST": the same blocks by their end
 *   space/pGIDX, space/s    a counter every claim in that space bumps
 *   seq/clients, seq/bindings   the last id given
 *   hostids/ID              the client id that holds datapath host id ID
 *   settings/KEY            decimal integer
 *   ca/certs/SERIAL         a certificate: its record and DER (base64)
 *   ca/crl                  {"number", "this_update"}: the last CRL's
 *   ca/crl_latest           {"number", "der"}: the latest signed CRL
 *   ca/notified/SERIAL      a revocation announced (its time)
 *   ca/enrolment/SERIAL     {"host", "tag"}: the enrolment it was issued under
 *   routers/ID/counters     this router's counter baselines (one JSON value)
 *
 * Everything is shared by the routers of the instance except routers/ID/,
 * which only router ID writes: counters count one router's datapath.
 *
 * claim() is one Txn: it reads the space counter and the block ending
 * first at or after the new block's first (the only one that can overlap,
 * since blocks never overlap: one ascending read of one key of ends/,
 * however many blocks there are), and commits only if the counter's
 * mod_revision is unchanged, putting the binding, its block key and the
 * counter + 1 together.  Two routers claiming in one space at the same
 * moment read the same counter revision: one Txn succeeds, the other
 * fails its compare and reruns from fresh reads, where it sees the winner's
 * block (-EBUSY) or none in its way.  Deletions need no bump: they only
 * free space.  A grid of one key per port (compare create_revision == 0 on
 * each) was rejected: blocks have any size (an SPI block is 65,536 values)
 * and etcd caps a Txn at 128 operations by default.
 *
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
#include "lca.h"
#include "store_etcd_int.h"

/* ------------------------------------------------------------ values */

int64_t et_jget(json_object *o, const char *f)
{
	json_object *v;

	/* the gateway writes int64 as strings; json-c converts either */
	return o && json_object_object_get_ex(o, f, &v) ? json_object_get_int64(v) : 0;
}

json_object *et_jobj(json_object *o, const char *f)
{
	json_object *v;

	return o && json_object_object_get_ex(o, f, &v) ? v : NULL;
}

const char *et_jstr(json_object *o, const char *f)
{
	json_object *v;

	return json_object_object_get_ex(o, f, &v) ? json_object_get_string(v) : "";
}

json_object *et_parse(struct et *q, const char *what, const char *val)
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
int et_put_json(struct et *q, const char *sub, json_object *o)
{
	const char *v = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
	int rc;

	/* never et_put(NULL): that is a deletion */
	rc = v ? et_put(q, sub, v) : xd_store_fail(&q->base, -ENOMEM, "out of memory");
	json_object_put(o);
	return rc;
}

json_object *et_obj(const char *k1, ...)
{
	json_object *o = json_object_new_object();
	va_list ap;

	/* pairs of (name, int64) until NULL */
	va_start(ap, k1);
	for (const char *k = k1; o && k; k = va_arg(ap, const char *))
		o = et_with(o, k, json_object_new_int64(va_arg(ap, int64_t)));
	va_end(ap);
	return o;
}

void et_client_from(json_object *o, uint32_t id, struct xd_client *c)
{
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->lan = (uint32_t)et_jget(o, "lan");
	c->host_id = (uint32_t)et_jget(o, "host_id");
	c->gidx = (int32_t)et_jget(o, "gidx");
	c->last_seen_ms = et_jget(o, "seen");
	snprintf(c->name, sizeof(c->name), "%s", et_jstr(o, "name"));
}

int et_put_client(struct et *q, const struct xd_client *c)
{
	char sub[32];
	json_object *o = et_obj("lan", (int64_t)c->lan, "host_id", (int64_t)c->host_id, "gidx",
			     (int64_t)c->gidx, "seen", c->last_seen_ms, NULL);

	snprintf(sub, sizeof(sub), "clients/%08" PRIx32, c->id);
	return et_put_json(q, sub, et_with(o, "name", json_object_new_string(c->name)));
}

void et_binding_from(json_object *o, uint32_t id, struct xd_binding *b)
{
	b->id = id;
	b->client_id = (uint32_t)et_jget(o, "client");
	b->kind = (int)et_jget(o, "kind");
	b->gidx = (int)et_jget(o, "gidx");
	b->first = (uint32_t)et_jget(o, "first");
	b->last = (uint32_t)et_jget(o, "last");
	b->state = (int)et_jget(o, "state");
	b->until_ms = et_jget(o, "until");
}

uint32_t et_id_of(const char *key)
{
	const char *s = strrchr(key, '/');

	return s ? (uint32_t)strtoul(s + 1, NULL, 16) : 0;
}

/* The name after the last '/'. */
const char *et_leaf(const char *key)
{
	const char *s = strrchr(key, '/');

	return s ? s + 1 : key;
}

/* ------------------------------------------------- whole-prefix reads */


void et_snap_free(struct et_snap *s)
{
	free(s->c);
	free(s->b);
	free(s->owner);
	memset(s, 0, sizeof(*s));
}

int et_load_clients(struct et *q, struct et_snap *s)
{
	struct et_kvs k;
	int rc = et_scan(q, "clients/", &k);

	if (rc)
		return rc;
	s->c = calloc(k.n + 1, sizeof(*s->c));
	if (!s->c)
		rc = xd_store_fail(&q->base, -ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < k.n; i++) {
		json_object *o = et_parse(q, "client", k.v[i].val);

		if (!o) {
			rc = -EIO;
			break;
		}
		et_client_from(o, et_id_of(k.v[i].key), &s->c[s->nc++]);
		json_object_put(o);
	}
	et_kvs_free(&k);
	return rc;
}

int et_load_bindings(struct et *q, struct et_snap *s)
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
		json_object *o = et_parse(q, "binding", k.v[i].val);

		if (!o) {
			rc = -EIO;
			break;
		}
		et_binding_from(o, et_id_of(k.v[i].key), &s->b[s->nb]);
		snprintf(s->owner[s->nb], sizeof(s->owner[0]), "%s", et_jstr(o, "owner"));
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
	o = et_obj("lan", (int64_t)lan_be, "enrolled", now_ms, NULL);
	o = et_with(o, "secret", json_object_new_string(hex));
	if ((rc = et_begin(st)))
		return rc;
	if ((rc = et_put_json(q, sub, o)) || (rc = et_commit(st))) {
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
	o = et_parse(q, "host", v);
	free(v);
	if (!o)
		return -EIO;
	hex = et_jstr(o, "secret");
	rc = strlen(hex) == 2 * RSIP_SECRET_LEN ? 0 : xd_store_fail(st, -EIO, "etcd: bad secret of '%s'", name);
	for (int i = 0; !rc && i < RSIP_SECRET_LEN; i++) {
		unsigned x;

		if (sscanf(hex + 2 * i, "%2x", &x) != 1)
			rc = xd_store_fail(st, -EIO, "etcd: bad secret of '%s'", name);
		secret[i] = (uint8_t)x;
	}
	*lan_be = (uint32_t)et_jget(o, "lan");
	json_object_put(o);
	return rc;
}

/* --------------------------------------------------------- registrations */

int et_client_read(struct et *q, uint32_t id, struct xd_client *c, bool guarded)
{
	char sub[32], *v;
	json_object *o;
	int rc;

	snprintf(sub, sizeof(sub), "clients/%08" PRIx32, id);
	if ((rc = et_get(q, sub, &v, guarded)) <= 0)
		return rc;
	o = et_parse(q, "client", v);
	free(v);
	if (!o)
		return -EIO;
	et_client_from(o, id, c);
	json_object_put(o);
	return 1;
}

static int et_client_get(struct xd_store *st, uint32_t id, struct xd_client *c)
{
	return et_client_read(ET(st), id, c, false);
}

int et_client_by_name(struct xd_store *st, const char *name, struct xd_client *c)
{
	struct et *q = ET(st);
	char sub[ET_KEY_MAX], *v;
	int rc;

	if (!rsip_valid_name(name, strlen(name)))
		return 0;
	snprintf(sub, sizeof(sub), "names/%s", name);
	if ((rc = et_get(q, sub, &v, false)) <= 0)
		return rc;
	rc = et_client_read(q, (uint32_t)strtoul(v, NULL, 10), c, false);
	free(v);
	return rc;
}

static int et_client_by_lan(struct xd_store *st, uint32_t lan_be, struct xd_client *c)
{
	struct et_snap s = { 0 };
	int rc = et_load_clients(ET(st), &s);

	for (size_t i = 0; !rc && i < s.nc; i++)
		if (s.c[i].lan == lan_be) {
			*c = s.c[i];
			rc = 1;
		}
	et_snap_free(&s);
	return rc;
}

/* The next id of @seq ("clients" or "bindings"), guarded. */
int et_next_id(struct et *q, const char *seq, uint32_t *id)
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
	if ((rc = et_next_id(q, "clients", &c.id)))
		return rc;
	snprintf(c.name, sizeof(c.name), "%s", a->name);
	snprintf(v, sizeof(v), "%" PRIu32, c.id);
	if ((rc = et_put(q, sub, v)) || (rc = et_put_client(q, &c)))
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
	int rc = et_client_read(q, a->id, &c, true);

	if (rc <= 0)
		return rc;
	if (a->touch) {
		if (a->lan)
			c.lan = a->lan;
		c.last_seen_ms = a->now;
	} else {
		if (c.host_id != a->host_id && (rc = et_host_id_set(q, c.host_id, a->host_id, c.id)))
			return rc;
		c.host_id = a->host_id;
		c.gidx = a->gidx;
	}
	return et_put_client(q, &c);
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

	if (c->host_id && (rc = et_host_id_set(q, c->host_id, 0, c->id)))
		return rc;
	snprintf(sub, sizeof(sub), "clients/%08" PRIx32, c->id);
	if ((rc = et_del(q, sub)))
		return rc;
	snprintf(sub, sizeof(sub), "names/%s", c->name);
	return et_del(q, sub);
}

static int cdel_body(struct et *q, void *arg)
{
	struct xd_client c;
	int rc = et_client_read(q, *(uint32_t *)arg, &c, true);

	return rc <= 0 ? rc : del_client(q, &c);
}

static int et_client_del(struct xd_store *st, uint32_t id)
{
	return et_tx(ET(st), cdel_body, &id);
}

static int expire_body(struct et *q, void *arg)
{
	int64_t before = *(int64_t *)arg;
	struct et_snap s = { 0 };
	int rc = et_load_clients(q, &s);

	if (!rc)
		rc = et_load_bindings(q, &s);
	for (size_t i = 0; !rc && i < s.nc; i++) {
		bool bound = false;
		struct xd_client c;

		if (s.c[i].host_id || s.c[i].last_seen_ms > before)
			continue;
		for (size_t j = 0; j < s.nb; j++)
			bound |= s.b[j].client_id == s.c[i].id && s.b[j].state == RSIP_BIND_ACTIVE;
		/* guarded: a router that touches it meanwhile wins */
		if (!bound && (rc = et_client_read(q, s.c[i].id, &c, true)) == 1)
			rc = del_client(q, &c);
	}
	et_snap_free(&s);
	return rc < 0 ? rc : 0;
}

static int et_clients_expire(struct xd_store *st, int64_t before_ms)
{
	return et_tx(ET(st), expire_body, &before_ms);
}

/* Datapath host ids are unique across routers: hostids/ID names the
 * client that holds ID, and taking one is guarded on that key (a second
 * router taking the same id at the same moment fails its compare). */
int et_host_id_set(struct et *q, uint32_t old_id, uint32_t new_id, uint32_t client_id)
{
	char sub[32], *v;
	int rc;

	if (old_id) {
		snprintf(sub, sizeof(sub), "hostids/%08" PRIx32, old_id);
		if ((rc = et_get(q, sub, &v, true)) < 0)
			return rc;
		/* only its own entry: another client may hold it by now */
		if (rc && strtoul(v, NULL, 10) == client_id && (rc = et_del(q, sub))) {
			free(v);
			return rc;
		}
		free(v);
	}
	if (!new_id)
		return 0;
	snprintf(sub, sizeof(sub), "hostids/%08" PRIx32, new_id);
	if ((rc = et_get(q, sub, &v, true)) < 0)
		return rc;
	if (rc && strtoul(v, NULL, 10) != client_id) {
		free(v);
		return xd_store_fail(&q->base, -EBUSY, "host id %u is taken (another router's "
				     "registration)", new_id);
	}
	free(v);
	if (rc)
		return 0;
	{
		char val[16];

		snprintf(val, sizeof(val), "%" PRIu32, client_id);
		return et_put(q, sub, val);
	}
}

static int et_host_id_taken(struct xd_store *st, uint32_t host_id)
{
	char sub[32], *v;
	int rc;

	snprintf(sub, sizeof(sub), "hostids/%08" PRIx32, host_id);
	rc = et_get(ET(st), sub, &v, false);
	free(v);
	return rc;
}

static int et_each_client(struct xd_store *st, xd_store_client_fn fn, void *arg)
{
	struct et_snap s = { 0 };
	int rc = et_load_clients(ET(st), &s);

	for (size_t i = 0; !rc && i < s.nc; i++)
		rc = fn(arg, &s.c[i]);
	et_snap_free(&s);
	return rc;
}

/* ------------------------------------------------------------ handle */

/* A number that changes when another writer committed since the last
 * call (the RSIP server then re-reads its index).  Every successful Txn
 * is one etcd revision: the revision moved by more than this handle's
 * own Txns means someone else wrote (anywhere in etcd: a write outside
 * the prefix costs a needless re-read, never a missed one). */
static int64_t et_version(struct xd_store *st)
{
	struct et *q = ET(st);
	int64_t rev = et_revision(q);

	if (rev < 0)
		return -1;
	if (!q->ver_rev || rev - q->ver_rev != (int64_t)(q->own_txns - q->ver_own))
		q->ver++;
	q->ver_rev = rev;
	q->ver_own = q->own_txns;
	return q->ver;
}

static void et_close(struct xd_store *st)
{
	struct et *q = ET(st);

	if (q->certdb)
		q->certdb->ops->free(q->certdb);
	et_disconnect(q);
	free(st);
}

static const struct xd_store_ops et_ops = {
	.name = "etcd", .close = et_close,
	.begin = et_begin, .commit = et_commit, .rollback = et_rollback, .version = et_version,
	.unit_size = et_unit_size,
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
	.cert_enrolment_tag = et_cert_enrolment_tag, .ca_certdb = et_ca_certdb,
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

/* One member: http(s)://HOST:PORT (HOST a name, IPv4 or [IPv6]), nothing
 * after but one optional '/'. */
static int endpoint_ok(const char *s, size_t n, char *err, size_t errlen)
{
	size_t skip = !strncmp(s, "http://", 7) ? 7 : !strncmp(s, "https://", 8) ? 8 : 0;
	const char *hp = s + skip, *colon;
	size_t hl = n - skip;
	char port[8];
	unsigned long p;
	char *end;

	if (hl && hp[hl - 1] == '/')
		hl--;
	colon = hl ? memrchr(hp, ':', hl) : NULL;
	if (!skip || !colon || colon == hp || (size_t)(hp + hl - colon - 1) >= sizeof(port) ||
	    strspn(hp, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") < hl ||
	    n >= sizeof(((struct et *)0)->ep[0]))
		goto bad;
	snprintf(port, sizeof(port), "%.*s", (int)(hp + hl - colon - 1), colon + 1);
	p = strtoul(port, &end, 10);
	if (!port[0] || *end || p < 1 || p > 65535)
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "store endpoint '%.*s': want http://HOST:PORT or https://HOST:PORT",
		 (int)n, s);
	return -EINVAL;
}

/* Split @list into q->ep (or only check it when @q is NULL). */
static int parse_endpoints(struct et *q, const char *list, char *err, size_t errlen)
{
	unsigned n = 0;

	for (const char *p = list; *p;) {
		size_t len;
		int rc;

		p += strspn(p, " \t,");
		len = strcspn(p, " \t,");
		if (!len)
			break;
		if ((rc = endpoint_ok(p, len, err, errlen)))
			return rc;
		if (n == XD_STORE_MAX_ENDPOINTS) {
			snprintf(err, errlen, "store endpoints: at most %d", XD_STORE_MAX_ENDPOINTS);
			return -EINVAL;
		}
		if (q) {
			snprintf(q->ep[n], sizeof(q->ep[n]), "%.*s", (int)len, p);
			q->ep[n][strcspn(q->ep[n] + 8, "/") + 8] = 0;    /* no trailing '/' */
		}
		n++;
		p += len;
	}
	if (!n) {
		snprintf(err, errlen, "store endpoints: none given (http(s)://HOST:PORT[,...])");
		return -EINVAL;
	}
	if (q)
		q->n_ep = n;
	return 0;
}

int xd_store_etcd_check_endpoints(const char *list, char *err, size_t errlen)
{
	return parse_endpoints(NULL, list, err, errlen);
}

/* Members and key prefix: from etcd://HOST:PORT[/PREFIX] (the shorthand)
 * or from the process's [store] configuration. */
static int locate(struct et *q, const char *loc, const char *instance, char *err, size_t errlen)
{
	const struct xd_store_cfg *c = xd_store_config();
	const char *path = c->prefix;
	size_t pl;
	int rc, n;

	if (xd_store_is_etcd(loc)) {
		const char *hp = loc + 7, *slash = strchr(hp, '/');
		int hl = slash ? (int)(slash - hp) : (int)strlen(hp);
		char ep[220];

		snprintf(ep, sizeof(ep), "http://%.*s", hl, hp);
		if ((rc = parse_endpoints(q, ep, err, errlen))) {
			snprintf(err, errlen, "bad etcd location '%s' (etcd://HOST:PORT[/PREFIX])", loc);
			return rc;
		}
		if (slash && slash[1])
			path = slash;
	} else if ((rc = parse_endpoints(q, c->endpoints, err, errlen))) {
		return rc;
	}
	pl = strlen(path);
	while (pl > 1 && path[pl - 1] == '/')
		pl--;
	n = snprintf(q->prefix, sizeof(q->prefix), "%.*s/%s/", (int)pl, path, instance);
	if (n < 0 || (size_t)n >= sizeof(q->prefix) || path[0] != '/') {
		snprintf(err, errlen, "etcd key prefix too long or malformed: %s", path);
		return -EINVAL;
	}
	snprintf(q->inst_prefix, sizeof(q->inst_prefix), "%s", q->prefix);
	snprintf(q->url, sizeof(q->url), "%s", q->ep[0]);
	q->timeout_ms = c->timeout_ms ? c->timeout_ms : XD_STORE_DEFAULT_TIMEOUT;
	q->max_ops = c->max_txn_ops ? c->max_txn_ops : XD_STORE_DEFAULT_MAX_TXN_OPS;
	snprintf(q->router_id, sizeof(q->router_id), "%s", xd_store_router_id());
	return 0;
}

int xd_store_etcd_open(const char *loc, const char *instance, unsigned flags, struct xd_store **out,
		       char *err, size_t errlen)
{
	struct et *q;
	int rc;

	(void)flags;   /* read-only handles are not distinguished */
	*out = NULL;
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
	if ((rc = locate(q, loc, instance, err, errlen))) {
		free(q);
		return rc;
	}
	if ((rc = et_connect(q))) {
		snprintf(err, errlen, "%s", xd_store_error(&q->base));
		et_close(&q->base);
		return rc;
	}
	q->base.err[0] = 0;
	*out = &q->base;
	return 0;
}
