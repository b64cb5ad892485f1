/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Inside the etcd backend (store_etcd.c, store_etcd_kv.c). */
#ifndef XDNAT_STORE_ETCD_INT_H
#define XDNAT_STORE_ETCD_INT_H

#include <stdbool.h>
#include <stdint.h>
#include "store.h"

#define ET_KEY_MAX   256
#define ET_DEPTH_MAX 32
#define ET_RETRIES   64      /* reruns of an operation whose guard failed */

struct et_kv { char *key, *val; int64_t mod; };     /* mod -1: only in the buffer */
struct et_kvs { struct et_kv *v; size_t n, cap; };
struct et_write { char *key, *val; bool del; };
struct et_cmp { char *key; int64_t mod; };

struct et {
	struct xd_store base;
	void *curl;                    /* CURL * */
	struct curl_slist *hdrs;
	char url[200];                 /* http://host:port */
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
};
#define ET(st) ((struct et *)(st))

int et_connect(struct et *q);
void et_disconnect(struct et *q);
int et_full_key(struct et *q, const char *sub, char *out, size_t len);
/* Reads see the open unit's writes.  et_get: 1 found (*val malloc'd), 0 not;
 * @guarded: the commit fails if etcd's copy changes meanwhile. */
int et_get(struct et *q, const char *sub, char **val, bool guarded);
int et_scan(struct et *q, const char *sub, struct et_kvs *out);   /* sub ends in '/' */
int et_scan_between(struct et *q, const char *sub_from, const char *sub_to, struct et_kvs *out);
void et_kvs_free(struct et_kvs *k);
int et_put(struct et *q, const char *sub, const char *val);
int et_del(struct et *q, const char *sub);
int et_begin(struct xd_store *st);
int et_commit(struct xd_store *st);
void et_rollback(struct xd_store *st);
/* Run @fn in a unit; rerun it when the unit is its own and a guard failed. */
int et_tx(struct et *q, int (*fn)(struct et *, void *), void *arg);
int64_t et_revision(struct et *q);

#endif
