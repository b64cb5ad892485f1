/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Inside the SQLite backend of the store (store_sqlite*.c). */
#ifndef XDNAT_STORE_SQLITE_INT_H
#define XDNAT_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include "store.h"

#define SQ_CACHE 64

struct sq {
	struct xd_store base;
	sqlite3 *db;
	unsigned depth;                  /* nested begin() */
	bool rdonly;
	struct { const char *sql; sqlite3_stmt *st; } cache[SQ_CACHE];
	struct lca_certdb *certdb;       /* the CA's ca_ tables (sq_ca_certdb) */
};

static inline struct sq *SQ(struct xd_store *st) { return (struct sq *)st; }

/* store_sqlite.c */
int sq_dberr(struct sq *q, int rc);
/* The cached statement for @sql (a string literal: its address is the key),
 * reset and unbound. */
sqlite3_stmt *sq_stmt(struct sq *q, const char *sql);
int sq_exec(struct sq *q, const char *sql);
/* One integer (column 0 of the first row): 1 found, 0 none/NULL, <0 error. */
int sq_one4(struct sq *q, const char *sql, int64_t *out, int n, int64_t a, int64_t b, int64_t c);
extern const struct xd_store_ops sq_ops;

/* store_sqlite_open.c */
void sq_close(struct xd_store *st);

/* store_sqlite_aux.c: counter baselines, the CA's store */
int sq_ctr_load(struct xd_store *st, const char *gen, struct xd_ctr_state *s);
int sq_ctr_store(struct xd_store *st, const struct xd_ctr_state *s);
int sq_ca_open(struct xd_store *st, const struct lca_config *cfg, struct lca **out, struct lca_err *e);
int sq_ca_init(struct xd_store *st, struct lca_err *e);
int sq_cert_revoke(struct xd_store *st, const char *serial, int reason, int64_t when, struct lca_err *e);
int sq_cert_revoke_overlapping(struct xd_store *st, int kind, uint32_t first, uint32_t last, int reason,
			       int64_t when, unsigned *n, struct lca_err *e);
int sq_cert_list(struct xd_store *st, const char *host, xd_store_cert_fn fn, void *arg,
		 struct lca_err *e);
int sq_cert_list_print(struct xd_store *st, const char *host, bool json, FILE *f, int64_t now,
		       struct lca_err *e);
int sq_cert_get(struct xd_store *st, const char *serial, xd_store_cert_fn fn, void *arg,
		struct lca_err *e);
int sq_cert_unannounced(struct xd_store *st, unsigned max, xd_store_revoked_fn fn, void *arg);
int sq_cert_announced(struct xd_store *st, const char *serial, int64_t at);
int sq_cert_enrolment_record(struct xd_store *st, const char *serial, const char *host, const uint8_t *tag,
			     size_t len);
int sq_cert_enrolment_is(struct xd_store *st, const char *serial, const uint8_t *tag, size_t len);
int sq_cert_enrolment_tag(struct xd_store *st, const char *serial, uint8_t *tag, size_t len);
struct lca_certdb *sq_ca_certdb(struct xd_store *st, struct lca_err *e);

#endif
