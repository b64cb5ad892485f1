/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The control plane's durable state behind one interface: a struct of
 * operations that a backend implements.  Nothing outside loader/store/
 * knows how the state is kept; the backends are SQLite, the default
 * (store_sqlite.c: STATE_DIR/INSTANCE.db, WAL, synchronous=FULL, schema
 * versioned with PRAGMA user_version), and etcd v3 (store_etcd*.c, selected
 * by [store] backend = etcd (struct xd_store_cfg below) or a state
 * location etcd://HOST:PORT[/PREFIX]; see docs/CLUSTER.md).  A new backend
 * is a new file that fills struct xd_store_ops and a case in
 * xd_store_open().
 *
 * What is kept:
 *   enrolments    host name -> secret, optional fixed LAN address
 *   clients       RSIP registrations: name, LAN address, datapath host id
 *                 and global address index while it holds bindings
 *   bindings      port and SPI blocks: owner, range, state (active or
 *                 quarantined) and when that state ends
 *   settings      small named integers (the daemon's quarantine, ...)
 *   counters      counter baselines across map generations (counters.h)
 *   certificates  the Local CA's certificates, revocations, CRL number and
 *                 latest CRL: the CA library reaches them through its
 *                 record-store interface (struct lca_certdb, ca/lca.h),
 *                 which each backend implements (SQLite: the CA's ca_
 *                 tables in the same database; etcd: store_etcd_ca.c);
 *                 ca_certdb() hands it out, the ca_* / cert_* ops use it.
 *
 * Rules every backend keeps:
 *   - Operations never print.  They return 0 (or 1 = found / 0 = not for
 *     lookups) or a negative errno, and leave a message for
 *     xd_store_error().
 *   - begin/commit nest: only the outermost commit makes the changes
 *     durable; an inner commit only ends a unit that an inner rollback
 *     would have undone.  The RSIP transport uses this to commit every
 *     request of one event-loop iteration at once (group commit) and sends
 *     the replies only after that commit.
 *   - claim() is the allocation primitive: it records a block for a
 *     client only if no binding of that kind overlaps it (per global
 *     address for ports), atomically, else -EBUSY.  A distributed backend
 *     implements it as a compare-and-swap transaction; the free-range index
 *     of the RSIP server is only a hint that makes a conflict rare.
 */
#ifndef XDNAT_STORE_H
#define XDNAT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "counters.h"
#include "rsip_auth.h"
#include "xdnat.h"

#define XDNAT_STATE_DIR  "/var/lib/xdnat"

enum { RSIP_KIND_PORTS = 1, RSIP_KIND_SPI = 2 };
enum { RSIP_BIND_ACTIVE = 1, RSIP_BIND_QUARANTINE = 2 };

/* A registration. */
struct xd_client {
	uint32_t id, lan, host_id;        /* lan in network order; host_id 0: none */
	int32_t gidx;                     /* -1 while it holds no binding */
	char name[RSIP_KEYID_MAX + 1];
	int64_t last_seen_ms;
};

/* A port (first..last) or SPI block of a client. */
struct xd_binding {
	uint32_t id, client_id, first, last;
	int kind, state, gidx;
	int64_t until_ms;                 /* end of lease or of quarantine */
};

/* claim(): what to record, all or nothing. */
struct xd_claim {
	uint32_t client_id;
	uint32_t host_id, gidx;           /* the client's (new or kept) map entry */
	int kind;
	uint32_t first, last;
	int64_t until_ms, now_ms;
};

/* Aggregate over one client's active bindings of a kind (0: any kind). */
struct xd_held {
	uint64_t count, size;             /* bindings, ports or SPIs in them */
	int64_t min_first, max_last;      /* -1 when count is 0 */
	int64_t min_until;                /* INT64_MAX when count is 0 */
};

/* One row of the operator's listing (see list()). */
struct xd_list_row {
	char name[RSIP_KEYID_MAX + 1];    /* "" for a binding older than owner names */
	bool enrolled, registered, bound;
	uint32_t lan;                     /* the registration's, else the enrolment's */
	uint32_t client_id, host_id;
	struct xd_binding b;              /* when bound */
};

struct xd_store;
struct lca;
struct lca_config;
struct lca_err;
struct lca_record;
struct lca_certdb;
typedef int (*xd_store_client_fn)(void *arg, const struct xd_client *c);
typedef int (*xd_store_binding_fn)(void *arg, const struct xd_binding *b);
typedef int (*xd_store_row_fn)(void *arg, const struct xd_list_row *r);
/* A revoked certificate not announced yet (cert_unannounced). */
struct xd_cert_revoked {
	char serial[48], host[72], identity[300];
	int64_t revoked_at;
	int reason;
};
typedef int (*xd_store_revoked_fn)(void *arg, const struct xd_cert_revoked *r);
typedef int (*xd_store_cert_fn)(void *arg, const struct lca_record *r);

struct xd_store_ops {
	const char *name;
	void (*close)(struct xd_store *st);

	/* transactions (nesting, see above) */
	int (*begin)(struct xd_store *st);
	int (*commit)(struct xd_store *st);
	void (*rollback)(struct xd_store *st);
	/* Changes by other processes since the last call: a number that differs
	 * when another writer committed (the RSIP server's index rebuild). */
	int64_t (*version)(struct xd_store *st);
	/* How many operations the open unit would send as its one transaction
	 * (*ops) and the most the backend sends in one (*limit, 0: no limit);
	 * NULL: no limit (SQLite).  The RSIP transport's group commit stops
	 * taking requests into a unit near the limit. */
	void (*unit_size)(struct xd_store *st, unsigned *ops, unsigned *limit);

	/* enrolments; lan_be 0: any LAN address */
	int (*enroll)(struct xd_store *st, const char *name, uint32_t lan_be,
		      const uint8_t secret[RSIP_SECRET_LEN], int64_t now_ms);
	int (*unenroll)(struct xd_store *st, const char *name);   /* -ENOENT */
	int (*host_secret)(struct xd_store *st, const char *name, uint8_t secret[RSIP_SECRET_LEN],
			   uint32_t *lan_be);                         /* -ENOENT */

	/* registrations; lookups return 1 found, 0 not, <0 error */
	int (*client_get)(struct xd_store *st, uint32_t id, struct xd_client *c);
	int (*client_by_name)(struct xd_store *st, const char *name, struct xd_client *c);
	int (*client_by_lan)(struct xd_store *st, uint32_t lan_be, struct xd_client *c);
	int (*client_add)(struct xd_store *st, const char *name, uint32_t lan_be, int64_t now_ms,
			  uint32_t *id);
	/* lan_be 0: keep it */
	int (*client_touch)(struct xd_store *st, uint32_t id, uint32_t lan_be, int64_t now_ms);
	/* host_id 0, gidx -1: the client leaves the maps */
	int (*client_set_host)(struct xd_store *st, uint32_t id, uint32_t host_id, int32_t gidx);
	int (*client_del)(struct xd_store *st, uint32_t id);
	/* Forget registrations without a host id idle since @before_ms. */
	int (*clients_expire)(struct xd_store *st, int64_t before_ms);
	int (*host_id_taken)(struct xd_store *st, uint32_t host_id);   /* 1/0/<0 */
	int (*each_client)(struct xd_store *st, xd_store_client_fn fn, void *arg);

	/* bindings */
	int (*claim)(struct xd_store *st, const struct xd_claim *c, uint32_t *bind_id); /* -EBUSY */
	int (*binding_get)(struct xd_store *st, uint32_t id, struct xd_binding *b);  /* 1/0/<0 */
	int (*binding_set)(struct xd_store *st, uint32_t id, int state, int64_t until_ms);
	int (*binding_del)(struct xd_store *st, uint32_t id);
	int (*each_binding)(struct xd_store *st, xd_store_binding_fn fn, void *arg);
	/* Active bindings of a client (ordered by id): up to @max in @out,
	 * *n how many there are. */
	int (*client_bindings)(struct xd_store *st, uint32_t client_id, struct xd_binding *out,
			       unsigned max, unsigned *n);
	/* The client's active bindings of @kind as merged runs (caller frees). */
	int (*client_runs)(struct xd_store *st, uint32_t client_id, int kind, struct xd_run **runs,
			   size_t *n);
	int (*client_held)(struct xd_store *st, uint32_t client_id, int kind, struct xd_held *h);
	/* Of the bindings of @kind (on @gidx for ports) the one starting last at
	 * or before @at: 1 with its last in *last, 0 none. */
	int (*last_before)(struct xd_store *st, int kind, uint32_t gidx, uint32_t at, int64_t *last);
	/* The active binding of enrolled @name that holds @at: 1 with its last. */
	int (*held_at)(struct xd_store *st, const char *name, int kind, uint32_t at, int64_t *last);
	/* Active bindings whose lease ended by @now: up to @max ids. */
	int (*lapsed)(struct xd_store *st, int64_t now_ms, uint32_t *ids, unsigned max, unsigned *n);
	/* Delete the quarantined bindings that ended by @now (fn sees each). */
	int (*quarantine_end)(struct xd_store *st, int64_t now_ms, xd_store_binding_fn fn, void *arg);
	/* Earliest until_ms of the bindings in @state: 1 found, 0 none. */
	int (*next_until)(struct xd_store *st, int state, int64_t *until_ms);

	/* the operator's view */
	int (*list)(struct xd_store *st, xd_store_row_fn fn, void *arg);
	/* enrolled, registrations, active bindings, quarantined bindings */
	int (*counts)(struct xd_store *st, int64_t v[4]);
	int (*setting_set)(struct xd_store *st, const char *key, int64_t value);
	int (*setting_get)(struct xd_store *st, const char *key, int64_t *value); /* -ENOENT */

	/* counter baselines (counters.h); ctr_load also fills the RSIP names */
	int (*ctr_load)(struct xd_store *st, const char *gen, struct xd_ctr_state *s); /* -ENOENT */
	int (*ctr_store)(struct xd_store *st, const struct xd_ctr_state *s);

	/* The Local CA's store (ca/lca.h), through the CA library. */
	int (*ca_open)(struct xd_store *st, const struct lca_config *cfg, struct lca **out,
		       struct lca_err *e);
	int (*ca_init)(struct xd_store *st, struct lca_err *e);
	int (*cert_revoke)(struct xd_store *st, const char *serial, int reason, int64_t when,
			   struct lca_err *e);
	int (*cert_revoke_overlapping)(struct xd_store *st, int kind, uint32_t first, uint32_t last,
				       int reason, int64_t when, unsigned *n, struct lca_err *e);
	int (*cert_list)(struct xd_store *st, const char *host, xd_store_cert_fn fn, void *arg,
			 struct lca_err *e);
	/* The CA library's own listing, printed to @f (lca_list_print). */
	int (*cert_list_print)(struct xd_store *st, const char *host, bool json, FILE *f, int64_t now,
			       struct lca_err *e);
	int (*cert_get)(struct xd_store *st, const char *serial, xd_store_cert_fn fn, void *arg,
			struct lca_err *e);
	/* Revocations not announced yet (oldest first, at most @max), and
	 * marking one announced. */
	int (*cert_unannounced)(struct xd_store *st, unsigned max, xd_store_revoked_fn fn, void *arg);
	int (*cert_announced)(struct xd_store *st, const char *serial, int64_t at);
	/* The enrolment (a tag of the host's secret) a certificate was issued
	 * under: record it; is @serial's tag @tag (1/0/<0)? */
	int (*cert_enrolment_record)(struct xd_store *st, const char *serial, const char *host,
				     const uint8_t *tag, size_t len);
	int (*cert_enrolment_is)(struct xd_store *st, const char *serial, const uint8_t *tag, size_t len);
	/* The tag @serial was issued under: 1 (into @tag, @len bytes), 0 none. */
	int (*cert_enrolment_tag)(struct xd_store *st, const char *serial, uint8_t *tag, size_t len);
	/* The CA library's record store over this backend (borrowed, lives
	 * as long as the handle): certificates, CRL number, latest CRL. */
	struct lca_certdb *(*ca_certdb)(struct xd_store *st, struct lca_err *e);
};

/* What every backend's handle starts with. */
struct xd_store {
	const struct xd_store_ops *ops;
	char err[256];
};

enum { XD_STORE_RDONLY = 1 };

/* Open the store of router instance @instance under @state_dir (created
 * 0700 if needed; files 0600), or in etcd when @state_dir is
 * etcd://HOST:PORT[/PREFIX] (keys under PREFIX/INSTANCE/, default prefix
 * /xdnat; store_etcd.c).  0, or a negative errno with a message in
 * @err.  XD_STORE_RDONLY: no schema change, -ENOENT if absent. */
int xd_store_open(const char *state_dir, const char *instance, unsigned flags,
		  struct xd_store **out, char *err, size_t errlen);
void xd_store_close(struct xd_store *st);
const char *xd_store_error(const struct xd_store *st);
/* Leave a message for xd_store_error(); returns @rc. */
int xd_store_fail(struct xd_store *st, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Enrol @name with a fresh random secret (returned in @secret). */
int xd_store_enroll_new(struct xd_store *st, const char *name, uint32_t lan_be,
			uint8_t secret[RSIP_SECRET_LEN]);

/* The schema version this build writes (PRAGMA user_version for SQLite). */
#define XD_STORE_SCHEMA 2

uint64_t rsip_now_ms(void);

/* The SQLite backend (store_sqlite.c). */
int xd_store_sqlite_open(const char *path, unsigned flags, struct xd_store **out, char *err,
			 size_t errlen);

/* The etcd v3 backend (store_etcd.c): @loc is etcd://HOST:PORT[/PREFIX]. */
bool xd_store_is_etcd(const char *loc);
int xd_store_etcd_open(const char *loc, const char *instance, unsigned flags, struct xd_store **out,
		       char *err, size_t errlen);

/*
 * Which backend and how to reach it: the [store] section of a program's
 * configuration file and the matching options (--store-backend, ...).
 * Set once per process, before the first xd_store_open(); every handle
 * the process opens then uses it (the state directory only names the
 * SQLite file).  Without it, or with backend sqlite, nothing changes.
 */
#define XD_STORE_MAX_ENDPOINTS 8
#define XD_STORE_ID_MAX        63
#define XD_STORE_DEFAULT_PREFIX  "/xdnat"
#define XD_STORE_DEFAULT_TIMEOUT 2000      /* ms */
#define XD_STORE_DEFAULT_MAX_TXN_OPS 128   /* etcd's own default --max-txn-ops */
#define XD_STORE_MAX_TXN_OPS_MIN 32        /* below this one claim may not fit */
#define XD_STORE_MAX_TXN_OPS_MAX 1000000
enum xd_store_backend { XD_STORE_SQLITE = 0, XD_STORE_ETCD = 1 };
struct xd_store_cfg {
	enum xd_store_backend backend;
	const char *endpoints;           /* http(s)://HOST:PORT[,...] */
	const char *prefix;              /* NULL: XD_STORE_DEFAULT_PREFIX */
	const char *cacert, *cert, *key; /* PEM files for TLS; NULL: none */
	uint32_t timeout_ms;             /* 0: XD_STORE_DEFAULT_TIMEOUT */
	const char *router_id;           /* NULL: the host name */
	uint32_t max_txn_ops;            /* etcd --max-txn-ops; 0: XD_STORE_DEFAULT_MAX_TXN_OPS */
};
/* Check @cfg (a message in @err: -EINVAL), and make it the process's
 * (copied).  Also fills the defaults. */
int xd_store_configure(const struct xd_store_cfg *cfg, char *err, size_t errlen);
/* Only the check. */
int xd_store_cfg_check(const struct xd_store_cfg *cfg, char *err, size_t errlen);
/* Do two configurations name the same store and router (NULL = "")? */
bool xd_store_cfg_same(const struct xd_store_cfg *a, const struct xd_store_cfg *b);
/* The process's configuration (defaults filled, strings never NULL but
 * cacert/cert/key may be ""). */
const struct xd_store_cfg *xd_store_config(void);
/* Check a list http(s)://HOST:PORT[,...] (store_etcd.c): 0 or -EINVAL. */
int xd_store_etcd_check_endpoints(const char *list, char *err, size_t errlen);
/* Parse "sqlite" or "etcd": 0, or -EINVAL. */
int xd_store_parse_backend(const char *s, enum xd_store_backend *out);
/* Where xd_store_open(@state_dir, @instance) keeps the state, for
 * messages: "DIR/INSTANCE.db" or "etcd PREFIX/INSTANCE/ at ENDPOINTS". */
const char *xd_store_where(const char *state_dir, const char *instance, char *buf, size_t len);
/* This router's id in the store (counter baselines, elections): the
 * configured router-id, else the host name. */
const char *xd_store_router_id(void);

#endif
