/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Elections in a cluster of routers sharing one etcd store (docs/CLUSTER.md,
 * "Elections and quorum loss").  Two roles, each held by at most one router:
 *
 *   expiry  the only router that expires lapsed leases, ends quarantines
 *           and forgets idle registrations in the store;
 *   signer  the only router whose Local CA issues certificates (the others
 *           refuse the CSR, and the host keeps its blocks without one).
 *
 * A thread keeps one etcd lease (TTL ttl_s) alive and campaigns for each
 * wanted role with a Txn that creates PREFIX/INSTANCE/leader/ROLE only if
 * absent, attached to that lease.  The event loop asks xd_elect_acting()
 * before acting in a role; the answer turns false ttl_s/2 after the
 * sending of the last keepalive that succeeded: etcd measures the TTL from
 * a moment after that sending, so the key cannot vanish (and another
 * router cannot win) before ttl_s after it; we stop ttl_s/2 earlier.
 *
 * The store is "unavailable" from the second failed etcd request in a row
 * of the thread (timeout, no leader, refused) until one succeeds: RSIP requests
 * are refused meanwhile, nothing expires, and the maps stay as they are.
 * After an outage, and after winning the expiry role, nothing expires for
 * grace_s (one default lease, --lease, plus the host agent's longest retry
 * interval): every host had a whole lease to renew against a store that
 * answers.
 */
#ifndef XDNAT_CLUSTER_ELECT_H
#define XDNAT_CLUSTER_ELECT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "rsip_server.h"

enum { XD_ROLE_EXPIRY, XD_ROLE_SIGNER, XD_ROLE_N };
extern const char *const xd_role_names[XD_ROLE_N];

#define XD_ELECT_TTL_DEFAULT 10
#define XD_ELECT_ID_MAX 64
#define XD_ELECT_FAILS 2        /* failed requests in a row that make an outage */
/* xdnat-host retries a refused renewal with a backoff of at most this. */
#define XD_HOST_RETRY_MAX_S 30

/* The pure state of the election (no I/O; unit-tested): times are
 * CLOCK_MONOTONIC milliseconds. */
struct xd_elect_state {
	unsigned ttl_s, grace_s;
	bool want[XD_ROLE_N];
	bool leader[XD_ROLE_N];
	char holder[XD_ROLE_N][XD_ELECT_ID_MAX];   /* last seen holder ("" none) */
	uint64_t won_ms[XD_ROLE_N];
	uint64_t last_ok_ms;       /* sending time of the last successful keepalive/grant */
	bool store_ok, ever_ok;
	unsigned fails;            /* failed requests in a row */
	uint64_t outage_start_ms, outage_end_ms, outages;
	uint64_t hold_until_ms;    /* no expiry before (grace) */
	uint64_t elections_won, stepped_down;
};

void xd_elect_init(struct xd_elect_state *s, unsigned ttl_s, unsigned grace_s);
/* A lease request sent at @sent_ms succeeded (answered at @now_ms). */
void xd_elect_ok(struct xd_elect_state *s, uint64_t sent_ms, uint64_t now_ms);
/* An etcd request failed at @now_ms (store unavailable). */
void xd_elect_fail(struct xd_elect_state *s, uint64_t now_ms);
/* Our lease is gone (expired): every role is lost. */
void xd_elect_lease_lost(struct xd_elect_state *s);
/* A campaign for @role: won (1) or held by @holder (0). */
void xd_elect_result(struct xd_elect_state *s, int role, int won, const char *holder, uint64_t now_ms);
/* May this router act in @role now? */
bool xd_elect_acting(const struct xd_elect_state *s, int role, uint64_t now_ms);
/* May the expiry worker expire leases and quarantines now (acting, store
 * available, grace over)? */
bool xd_elect_may_expire(const struct xd_elect_state *s, uint64_t now_ms);
/* Does the store answer (as far as the last request tells)? */
bool xd_elect_store_ok(const struct xd_elect_state *s);

/* ------------------------------------------------------------ the daemon */

struct xd_store;
struct xd_etcd_lease;
struct xd_elect {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool running, stop;
	struct xd_elect_state s;
	struct xd_etcd_lease *lease_cl;
	int64_t lease;             /* 0: none */
	char id[XD_ELECT_ID_MAX];
	uint64_t (*now_ms)(void);  /* monotonic */
	/* The Local CA's issue(), called only while this router is the signer. */
	int (*issue)(void *ctx, const struct rsip_cert_req *rq, uint8_t **der, size_t *len);
	uint64_t refused_issue;
};

/* Start the election thread on the etcd store of @instance at @state_dir
 * (a handle of its own): roles @want, lease TTL @ttl_s, router id @id.  0,
 * or -errno with the reason printed. */
int xd_elect_start(struct xd_elect **out, const char *state_dir, const char *instance,
		   const char *id, unsigned ttl_s, unsigned grace_s, const bool want[XD_ROLE_N]);
/* Stop it; the lease is revoked so another router takes over at once. */
void xd_elect_stop(struct xd_elect *e);
/* Stop it for a re-exec of xdnatd: the lease is kept alive no longer but
 * not revoked, and its id goes into the environment (XD_ELECT_LEASE_ENV)
 * where the next xd_elect_start of the new process takes it up, so the
 * roles stay with this router instead of moving for the restart. */
void xd_elect_handover(struct xd_elect *e);
#define XD_ELECT_LEASE_ENV "XDNATD_ELECT_LEASE"
/* Thread-safe views for the event loop and the metrics thread. */
bool xd_elect_is(struct xd_elect *e, int role);
bool xd_elect_expire_ok(struct xd_elect *e);
bool xd_elect_available(struct xd_elect *e);
/* The election in Prometheus text; _append adds it to a malloc'd @body. */
void xd_elect_metrics(struct xd_elect *e, const char *instance, FILE *f);
int xd_elect_metrics_append(struct xd_elect *e, char **body, size_t *len);
uint64_t xd_mono_ms(void);

#endif
