/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside the etcd backend: store_etcd.c (values, enrolments,
 * registrations, the handle), store_etcd_bind.c (bindings, the operator's
 * view, settings), store_etcd_aux.c (counter baselines, the certificate
 * ops), store_etcd_ca.c (the CA's record store, struct lca_certdb),
 * store_etcd_kv.c (reads, scans, the Txn buffer) and store_etcd_http.c
 * (the JSON gateway over libcurl).
 */
#ifndef XDNAT_STORE_ETCD_INT_H
#define XDNAT_STORE_ETCD_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>
#include "store.h"

#define ET_KEY_MAX   256
#define ET_DEPTH_MAX 32
#define ET_RETRIES   64      /* reruns of an operation whose guard failed */
#define ET_MAX_EP    XD_STORE_MAX_ENDPOINTS

struct et_kv { char *key, *val; int64_t mod, create; };   /* mod -1: only in the buffer */
struct et_kvs { struct et_kv *v; size_t n, cap; };
struct et_write { char *key, *val; bool del; };
struct et_cmp { char *key; int64_t mod; };

struct et {
	struct xd_store base;
	void *curl;                    /* CURL * */
	struct curl_slist *hdrs;
	char url[200];                 /* the endpoint in use: http(s)://host:port */
	char prefix[128];              /* /xdnat/INSTANCE/ */
	char *resp;
	size_t rlen, rcap;
	/* the open unit: writes and guards, and where each nested level began */
	struct et_write *w;
	size_t nw, wcap;
	struct et_cmp *c;
	size_t nc, ccap;
	struct { size_t nw, nc; } mark[ET_DEPTH_MAX];
	unsigned depth;
	uint64_t commits, retries;     /* Txns sent, operations rerun */
	int64_t last_rev;              /* revision of our last committed Txn (cluster sync) */
	/* the cluster: members tried in turn from the last that answered */
	char ep[ET_MAX_EP][200];
	unsigned n_ep, cur_ep;
	uint32_t timeout_ms;           /* bound of one request, all members tried */
	unsigned max_ops;              /* etcd's --max-txn-ops ([store] max-txn-ops) */
	char router_id[XD_STORE_ID_MAX + 1];
	char inst_prefix[128];         /* the same as prefix (PREFIX/INSTANCE/) */
	bool guard_failed;             /* the last Txn failed a compare (nothing written) */
	struct lca_certdb *certdb;     /* store_etcd_ca.c, made on first use */
	/* version(): other writers' commits, told from this handle's own */
	uint64_t own_txns;             /* successful Txns of this handle */
	uint64_t ver_own;              /* own_txns at the last version() */
	int64_t ver_rev, ver;          /* etcd's revision then, the number returned */
	/* tests only: called after each range answer (another writer's
	 * commit put exactly between a read and what follows it) */
	void (*after_range)(struct et *q, void *arg);
	void *after_range_arg;
};
#define ET(st) ((struct et *)(st))

/* ---- store_etcd_http.c: the transport (JSON gateway over libcurl) */
int et_connect(struct et *q);
void et_disconnect(struct et *q);
int64_t et_revision(struct et *q);
/* POST @req (consumed) to the gateway's @path ("/v3/kv/range", ...), trying
 * the members in turn (a write only while none received it); the parsed
 * answer in *out.  -ETIMEDOUT (no answer in time), -EAGAIN (no member
 * reachable, or no leader), -EIO; the message names the endpoints. */
int et_post(struct et *q, const char *path, json_object *req, json_object **out);
/* Add @val as field @key of object @o (et_jadd) or to array @a
 * (et_jpush): 0, or -ENOMEM when @val is NULL (its allocation failed) or
 * json-c could not add it.  @val is consumed either way, so a caller
 * builds on and checks once:  rc |= et_jadd(o, "k", json_object_new_...) */
int et_jadd(json_object *o, const char *key, json_object *val);
int et_jpush(json_object *a, json_object *val);
/* @o with field @key = @val, or NULL (@o, @val put) when @o is NULL or
 * the field could not be added: o = et_with(o, "k", ...) chains like
 * et_obj(), and et_put_json(q, sub, NULL) is the -ENOMEM error. */
json_object *et_with(json_object *o, const char *key, json_object *val);
/* Base64 of @n bytes of @s into field @field of @o; 0 or -ENOMEM. */
int et_add_b64(json_object *o, const char *field, const char *s, size_t n);
/* Base64 of @n bytes of @s, malloc'd (NULL: out of memory). */
char *et_b64(const char *s, size_t n);
/* Decode base64 into malloc'd bytes (*len of them, NUL-terminated). */
char *et_unb64(const char *s, size_t *len);
/* "http://a:2379, http://b:2379" for messages. */
void et_endpoints_str(const struct et *q, char *buf, size_t len);

/* ---- store_etcd_kv.c: the key-value layer (other files build on these) */
/* Free the open unit's buffers (et_disconnect). */
void et_unit_free(struct et *q);
int et_full_key(struct et *q, const char *sub, char *out, size_t len);
/* Reads see the open unit's writes.  et_get: 1 found (*val malloc'd), 0 not;
 * @guarded: the commit fails if etcd's copy changes meanwhile. */
int et_get(struct et *q, const char *sub, char **val, bool guarded);
int et_scan(struct et *q, const char *sub, struct et_kvs *out);   /* sub ends in '/' */
int et_scan_between(struct et *q, const char *sub_from, const char *sub_to, struct et_kvs *out);
/* The last (first) key of [sub_from, sub_to): 1 (one entry in @out), 0
 * none.  et_scan_first costs etcd one key however large the range;
 * et_scan_last makes etcd sort the range (3.4). */
int et_scan_last(struct et *q, const char *sub_from, const char *sub_to, struct et_kvs *out);
int et_scan_first(struct et *q, const char *sub_from, const char *sub_to, struct et_kvs *out);
void et_kvs_free(struct et_kvs *k);
int et_put(struct et *q, const char *sub, const char *val);
int et_del(struct et *q, const char *sub);
/* Guard @sub's absence: the commit fails if it exists then (create-only). */
int et_guard_absent(struct et *q, const char *sub);
int et_begin(struct xd_store *st);
/* A commit whose unit (all levels) would exceed q->max_ops fails with
 * -E2BIG, nothing sent: an inner level stays open for the caller's
 * rollback, the outermost unit is over. */
int et_commit(struct xd_store *st);
void et_rollback(struct xd_store *st);
/* Run @fn in a unit; rerun it when the unit is its own and a guard failed. */
int et_tx(struct et *q, int (*fn)(struct et *, void *), void *arg);
/* What etcd counts against --max-txn-ops for the open unit: the larger of
 * its compares and its writes (one per key); store op unit_size. */
unsigned et_unit_ops(const struct et *q);
void et_unit_size(struct xd_store *st, unsigned *ops, unsigned *limit);

/* ---- store_etcd.c: values */
/* Field @f of @o (either may be NULL): its integer (0 if none), the value (NULL). */
int64_t et_jget(json_object *o, const char *f);
json_object *et_jobj(json_object *o, const char *f);
const char *et_jstr(json_object *o, const char *f);
json_object *et_parse(struct et *q, const char *what, const char *val);
int et_put_json(struct et *q, const char *sub, json_object *o);    /* @o consumed */
json_object *et_obj(const char *k1, ...);     /* pairs (name, int64_t) until NULL */
void et_client_from(json_object *o, uint32_t id, struct xd_client *c);
int et_put_client(struct et *q, const struct xd_client *c);
void et_binding_from(json_object *o, uint32_t id, struct xd_binding *b);
uint32_t et_id_of(const char *key);
const char *et_leaf(const char *key);

/* Every client and binding (whole-prefix reads). */
struct et_snap {
	struct xd_client *c;
	size_t nc;
	struct xd_binding *b;
	char (*owner)[RSIP_KEYID_MAX + 1];
	size_t nb;
};
void et_snap_free(struct et_snap *s);
int et_load_clients(struct et *q, struct et_snap *s);
int et_load_bindings(struct et *q, struct et_snap *s);
int et_client_read(struct et *q, uint32_t id, struct xd_client *c, bool guarded);
int et_next_id(struct et *q, const char *seq, uint32_t *id);
int et_client_by_name(struct xd_store *st, const char *name, struct xd_client *c);
/* Client @client_id moves from datapath host id @old_id to @new_id (0:
 * none), guarded: -EBUSY if another client holds @new_id. */
int et_host_id_set(struct et *q, uint32_t old_id, uint32_t new_id, uint32_t client_id);

/* ---- store_etcd_bind.c: bindings, the operator's view, settings */
void et_space_of(int kind, uint32_t gidx, char *sub, size_t len);
int et_binding_read(struct et *q, uint32_t id, struct xd_binding *b, bool guarded,
		    json_object **out);
int et_drop_binding(struct et *q, const struct xd_binding *b);
int et_last_before(struct xd_store *st, int kind, uint32_t gidx, uint32_t at, int64_t *last);
int et_claim(struct xd_store *st, const struct xd_claim *c, uint32_t *bind_id);
int et_binding_get(struct xd_store *st, uint32_t id, struct xd_binding *b);
int et_binding_set(struct xd_store *st, uint32_t id, int state, int64_t until_ms);
int et_binding_del(struct xd_store *st, uint32_t id);
int et_each_binding(struct xd_store *st, xd_store_binding_fn fn, void *arg);
int et_client_bindings(struct xd_store *st, uint32_t client_id, struct xd_binding *out,
		       unsigned max, unsigned *n);
int et_client_runs(struct xd_store *st, uint32_t client_id, int kind, struct xd_run **out,
		   size_t *n);
int et_client_held(struct xd_store *st, uint32_t client_id, int kind, struct xd_held *h);
int et_held_at(struct xd_store *st, const char *name, int kind, uint32_t at, int64_t *last);
int et_lapsed(struct xd_store *st, int64_t now_ms, uint32_t *ids, unsigned max, unsigned *n);
int et_quarantine_end(struct xd_store *st, int64_t now_ms, xd_store_binding_fn fn, void *arg);
int et_next_until(struct xd_store *st, int state, int64_t *until_ms);
int et_list(struct xd_store *st, xd_store_row_fn fn, void *arg);
int et_counts(struct xd_store *st, int64_t v[4]);
int et_setting_set(struct xd_store *st, const char *key, int64_t value);
int et_setting_get(struct xd_store *st, const char *key, int64_t *value);

/* ---- store_etcd_aux.c: counter baselines (per router), certificate ops */
int et_ctr_load(struct xd_store *st, const char *gen, struct xd_ctr_state *s);
int et_ctr_store(struct xd_store *st, const struct xd_ctr_state *s);
int et_ca_open(struct xd_store *st, const struct lca_config *cfg, struct lca **out,
	       struct lca_err *e);
int et_ca_init(struct xd_store *st, struct lca_err *e);
int et_cert_revoke(struct xd_store *st, const char *serial, int reason, int64_t when,
		   struct lca_err *e);
int et_cert_revoke_overlapping(struct xd_store *st, int kind, uint32_t first, uint32_t last,
			       int reason, int64_t when, unsigned *n, struct lca_err *e);
int et_cert_list(struct xd_store *st, const char *host, xd_store_cert_fn fn, void *arg,
		 struct lca_err *e);
int et_cert_list_print(struct xd_store *st, const char *host, bool json, FILE *f, int64_t now,
		       struct lca_err *e);
int et_cert_get(struct xd_store *st, const char *serial, xd_store_cert_fn fn, void *arg,
		struct lca_err *e);
int et_cert_unannounced(struct xd_store *st, unsigned max, xd_store_revoked_fn fn, void *arg);
int et_cert_announced(struct xd_store *st, const char *serial, int64_t at);
int et_cert_enrolment_record(struct xd_store *st, const char *serial, const char *host,
			     const uint8_t *tag, size_t len);
int et_cert_enrolment_is(struct xd_store *st, const char *serial, const uint8_t *tag, size_t len);
int et_cert_enrolment_tag(struct xd_store *st, const char *serial, uint8_t *tag, size_t len);
struct lca_certdb *et_ca_certdb(struct xd_store *st, struct lca_err *e);

/* ---- store_etcd_ca.c: the CA library's record store on etcd */
struct lca_certdb *et_certdb_new(struct et *q);

#endif
