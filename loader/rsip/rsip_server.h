/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * RSIP server (RFC 3103 gateway side, RSAP-IP and RFC 3104 RSIPSEC): the
 * allocator, its leases and quarantine, authentication of every request,
 * and the TCP transport.  Allocation state lives in the store (store.h); the
 * datapath maps are reached through a backend (the pinned maps in xdnatd,
 * an in-memory fake in the unit tests).
 */
#ifndef XDNAT_RSIP_SERVER_H
#define XDNAT_RSIP_SERVER_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include "rsip_auth.h"
#include "store.h"
#include "rsip_wire.h"
#include "xdnat.h"

/* The datapath the allocations are installed into. */
struct rsip_backend {
	void *ctx;
	int (*host_add)(void *ctx, uint32_t id, uint32_t lan_be, uint32_t gidx);
	int (*host_del)(void *ctx, uint32_t id);
	/* 0 (with *lan_be, *gidx) if host @id is in the maps, -ENOENT if not. */
	int (*host_get)(void *ctx, uint32_t id, uint32_t *lan_be, uint32_t *gidx);
	int (*ports_add)(void *ctx, uint32_t id, uint32_t first, uint32_t last);
	int (*ports_del)(void *ctx, uint32_t id, uint32_t first, uint32_t last);
	int (*spis_add)(void *ctx, uint32_t id, uint32_t first, uint32_t last);
	int (*spis_del)(void *ctx, uint32_t id, uint32_t first, uint32_t last);
	/* First owned port of [first,last] on global address @gidx (or SPI
	 * of [first,last]), or -1 if all are free. */
	int64_t (*ports_busy)(void *ctx, uint32_t gidx, uint32_t first, uint32_t last);
	int64_t (*spis_busy)(void *ctx, uint32_t first, uint32_t last);
	/* The host's runs in the maps (caller frees). */
	int (*runs)(void *ctx, uint32_t id, int kind, struct xd_run **runs, size_t *n);
};

/*
 * Host certificates (issue 4, docs/LCA.md), optional: with issue == NULL
 * there is no CA and CSRs are ignored.  xdnatd's ca_plane.c implements it
 * with the Local CA library.
 */
enum { RSIP_REVOKE_AFFILIATION = 3, RSIP_REVOKE_CESSATION = 5 };  /* RFC 5280 CRLReason */
struct rsip_cert_req {
	const char *name;                   /* the enrolled host name */
	uint32_t lan_be;
	const struct xd_run *ports, *spis;  /* every active binding of the host, merged */
	size_t n_ports, n_spis;
	int64_t not_before, not_after;      /* Unix seconds: the shortest lease */
	const uint8_t *csr;
	size_t csr_len;
};
struct rsip_cert_ops {
	void *ctx;
	/* Inside the server's open transaction: issue a certificate and
	 * revoke the host's earlier ones (superseded).  0 with *der (malloc'ed),
	 * -EINVAL/-EPERM when the CSR or request is refused (BAD_PARAM to the
	 * host), -EACCES when the host may have no certificate until it is
	 * enrolled again (REGISTRATION_DENIED), another negative errno on
	 * failure (INTERNAL_SERVER_ERROR). */
	int (*issue)(void *ctx, const struct rsip_cert_req *rq, uint8_t **der, size_t *len);
	/* The LCA certificate (DER) sent along with each certificate, or NULL. */
	const uint8_t *(*ca_der)(void *ctx, size_t *len);
	/* Before [first,last] of @kind leaves host @name (inside the open
	 * transaction): revoke every valid certificate that binds it.  A
	 * failure keeps the block (the seed: ports are never de-allocated while
	 * a valid certificate binds them). */
	int (*release)(void *ctx, const char *name, int kind, uint32_t first, uint32_t last,
		       int reason);
};

#define RSIP_MAX_RESERVED 64

struct rsip_config {
	const char *state_dir;
	const char *instance;
	uint32_t gaddrs[XDNAT_MAX_GADDRS];
	uint32_t n_gaddrs;
	uint32_t router_lan;            /* tunnel endpoint announced to hosts */
	uint32_t local_net, local_mask; /* QUERY: what counts as local (network order) */
	uint32_t max_hosts;
	uint32_t spi_bits;
	uint32_t port_min, port_max;    /* the pool of ports handed out */
	uint16_t reserved[RSIP_MAX_RESERVED];
	uint32_t n_reserved;            /* never handed out (router services) */
	uint32_t default_ports;         /* "any" port request without a Number: 1..255 */
	uint32_t max_ports_per_host;
	uint32_t max_spi_blocks_per_host;
	uint32_t lease_default, lease_max;  /* seconds */
	uint32_t quarantine;                /* seconds */
	uint32_t reg_lease;                 /* idle registration lifetime, seconds */
	/* Shared IKE ports (xdnatd --shared-ike-ports), announced in every
	 * REGISTER_RESPONSE (XDNAT_VS_SHARED_IKE); n = 0: none. */
	struct rsip_shared_ike shared_ike;
	uint64_t (*now_ms)(void);           /* clock (NULL: rsip_now_ms); tests inject one */
};

void rsip_config_defaults(struct rsip_config *c);

struct rsip_session {
	bool authed;
	char name[RSIP_KEYID_MAX + 1];
	uint32_t client_id;
	uint32_t peer_lan;        /* network order */
	struct rsip_keys keys;
	bool have_counter;
	uint32_t last_counter;
	/* The enrolment the session was opened with: every request checks that
	 * it still holds (unenrolled or given a new secret: session over). */
	uint8_t secret[RSIP_SECRET_LEN];
};

/*
 * The free-range index: the ports (per global address), SPI blocks and map
 * host ids the store holds, as bitmaps (a bit per port, SPI block or id,
 * and a summary bit per 64 that are all taken), so that finding a free
 * block or id does not cost a query per existing binding.  It mirrors the
 * store: built on start, rebuilt when another process (xdnatctl) has
 * written to the database (PRAGMA data_version), and changed only by
 * commits (pending changes queued inside a transaction are applied when it
 * commits and dropped when it rolls back).
 */
struct rsip_bits {
	uint64_t *w, *full;
	uint64_t n;            /* bits */
	size_t nw;             /* words */
};
struct rsip_pending;
struct rsip_index {
	bool valid;
	int64_t data_version;
	struct rsip_bits ports[XDNAT_MAX_GADDRS], spis, hids;
	struct rsip_pending *pend;
	size_t n_pend, cap_pend;
	bool pend_lost;        /* a change could not be queued: rebuild after commit */
	unsigned rebuilds;     /* how often it was (re)built, for the tests */
};

struct rsip_conn {
	int fd;
	struct rsip_session sess;
	uint8_t in[RSIP_MAX_MSG];
	size_t in_len;
	/* Deadlines: last_ms moves with complete messages only (single bytes
	 * do not keep a connection alive); unauth_ms is when the connection
	 * was last without an authenticated session (accept, DEREGISTER). */
	uint64_t last_ms, unauth_ms, accept_ms;
	/* Replies not yet taken by the peer (non-blocking writes): a peer that
	 * lets more than RSIP_OUTQ_MAX pile up is cut off. */
	uint8_t *oq;
	size_t oq_len, oq_off, oq_cap;
	/* The reply held back until the batch's commit (group commit). */
	uint8_t out[RSIP_MAX_MSG];
	size_t out_len;
	bool pending, close_after, failed;   /* in the open batch */
	/* The request was of an open session that stays open, with a counter
	 * of its own: if the batch does not commit, it is answered with a
	 * sealed INTERNAL_SERVER_ERROR (the host asks again) instead of a
	 * closed connection. */
	bool retry_ok;
};

/* At most this many bytes of replies wait for a peer that does not read. */
#define RSIP_OUTQ_MAX (64u * 1024)
/* Transport defaults (xdnatd --rsip-per-address, --rsip-preauth). */
#define RSIP_DEFAULT_PER_ADDR  8
#define RSIP_DEFAULT_PREAUTH_S 5

/* A log line that can repeat once per event, at most once per period with
 * the count of the lines left out (rsip_transport.c). */
struct rsip_ratelog {
	uint64_t next_ms;
	unsigned long suppressed;
};
enum { RS_RL_CAP, RS_RL_ADDR, RS_RL_ACCEPT, RS_RL_OUTQ, RS_RL_AUTH, RS_RL_REPLAY, RS_RL_N };

/* A binding committed inside the open batch: it goes into the maps after
 * the batch's commit, before the reply that confirms it is sent. */
struct rsip_deferred {
	uint32_t client_id, host_id, lan, gidx, first, last, bind_id;
	int kind;
	bool new_host;
	struct rsip_conn *conn;
};

struct rsip_server {
	struct rsip_config cfg;
	struct rsip_backend be;
	struct xd_store *st;
	uint64_t (*now_ms)(void);
	/* transport */
	int listen_fd;
	struct rsip_conn *conns;        /* n_slots of them, grown on demand */
	unsigned n_slots;
	unsigned max_conns;             /* global cap (below the open-files limit) */
	/* Set before rsip_server_listen (xdnatd: RSIP_DEFAULT_*); 0: none. */
	unsigned per_addr_max;          /* connections per source address */
	unsigned idle_timeout_s;
	unsigned preauth_s;             /* the authenticated hello within this (0: none) */
	uint64_t listen_paused_until;   /* EMFILE/ENFILE: the listener rests */
	bool pending_work;              /* complete messages wait: poll must not sleep */
	struct rsip_ratelog rl[RS_RL_N];
	/* Client nonces of the hellos accepted lately: a hello seen before
	 * (a replay) is refused. */
	uint8_t (*seen_cn)[RSIP_NONCE_LEN];
	unsigned n_seen, seen_next;
	struct rsip_cert_ops certs;     /* zeroed: no CA */
	/* Can the store answer?  NULL: always.  false: every request that
	 * needs the store is refused with INTERNAL_SERVER_ERROR (104), which
	 * xdnat-host retries (a cluster's etcd without quorum, cluster_elect.h). */
	bool (*available)(void *ctx);
	void *available_ctx;
	uint64_t refused_unavailable;
	struct rsip_index idx;          /* zeroed: built when first needed */
	/* Group commit (rsip_transport.c): the messages of one event-loop
	 * iteration share one transaction; replies and map installs wait for
	 * its commit. */
	bool batching;
	bool no_group_commit;           /* one commit per request (rsip-bench's comparison) */
	struct rsip_conn *cur_conn;
	struct rsip_deferred *defer;
	size_t n_defer, cap_defer;
	unsigned reconcile_bad;
	/* The index follows the store through a watch (cluster sync): another
	 * writer's commit does not make it rebuild. */
	bool idx_fed;
	uint64_t batches, batched;      /* commits and messages in them (tests, bench) */
	/* A store with a limit on one transaction (etcd --max-txn-ops): a
	 * batch takes no further message once the most one message has added
	 * (msg_ops_max) might not fit; the next batch starts at batch_from. */
	unsigned msg_ops_max, batch_from;
	uint64_t batches_full;          /* batches cut at the limit */
	uint64_t batches_failed;        /* batches whose commit failed */
	uint64_t batch_retry_replies;   /* their requests answered "ask again" */
	/* Units opened by rs_srv_begin and not yet committed or rolled back:
	 * 0 between requests.  A request that leaves one open would make every
	 * later commit a nested one (nothing written, replies confirming
	 * grants that are not in the store): rsip_server_handle closes it. */
	unsigned tx_depth;
	uint64_t tx_leaks;
};

/* Open the store and reconcile the maps with it.  Errors are printed. */
int rsip_server_open(struct rsip_server *s, const struct rsip_config *cfg,
		     const struct rsip_backend *be);
void rsip_server_close(struct rsip_server *s);
/* A server over a store the caller keeps (an offline operator command):
 * default configuration with the quarantine the daemon recorded, no
 * listening, no reconciliation.  @certs may be NULL.  Undo with
 * rsip_server_detach (the store stays open). */
void rsip_server_attach(struct rsip_server *s, struct xd_store *st, const struct rsip_backend *be,
			const struct rsip_cert_ops *certs);
void rsip_server_detach(struct rsip_server *s);

/* Handle one complete message @in from a session; writes the response to
 * @out (RSIP_MAX_MSG bytes) and returns its length (0: nothing to send).
 * *close is set when the connection must be closed after sending. */
size_t rsip_server_handle(struct rsip_server *s, struct rsip_session *sess, const uint8_t *in,
			  size_t len, uint8_t *out, bool *close);
/* The sealed INTERNAL_SERVER_ERROR for the last request of @sess (its
 * message counter), in place of the reply of a request whose transaction
 * did not commit: the length written to @out, or 0 (no session keys). */
size_t rsip_server_retry_reply(const struct rsip_session *sess, uint8_t *out);

/* Expire lapsed leases (out of the maps at once, into quarantine), end
 * quarantines and idle registrations.  Returns ms until the next deadline
 * (capped at 1000). */
int rsip_server_sweep(struct rsip_server *s);

/* Cluster sync (loader/daemon/cluster_sync.c): another router's binding
 * block or host id enters (@taken) or leaves the free-range index. */
void rsip_server_index_block(struct rsip_server *s, int kind, uint32_t gidx, uint32_t first,
			     uint32_t last, bool taken);
void rsip_server_index_hid(struct rsip_server *s, uint32_t hid, bool taken);

/* Make the maps match the store (add what is missing, remove what is stale). */
int rsip_server_reconcile(struct rsip_server *s);

/* Operator eviction (xdnatctl rsip evict): every active binding of the
 * enrolled host @name leaves the maps at once and goes into quarantine,
 * and its registration is forgotten (its next request gets REGISTER_FIRST).
 * The first @max freed bindings are reported in @out; *n counts them all.
 * 0 on success (also when @name holds nothing), -ENOENT if @name is not
 * enrolled, another negative errno on failure (nothing changed). */
struct rsip_freed {
	uint32_t bind_id, first, last;
	int kind;
};
int rsip_server_evict(struct rsip_server *s, const char *name, struct rsip_freed *out, unsigned max,
		      unsigned *n);

/* Is map host id @id one the store gives a registered host?  1 yes, 0 no,
 * -EIO.  The operator's writes (xdnatctl host/ports/spi) leave such ids to
 * RSIP, so that the store and the maps never disagree about them. */
int rsip_server_host_in_use(struct rsip_server *s, uint32_t id);

/* Transport: listen on @addr:@port (TCP), bound to @ifname (LAN only). */
int rsip_server_listen(struct rsip_server *s, uint32_t addr_be, uint16_t port, const char *ifname,
		       unsigned max_conns, unsigned idle_timeout_s);
/* Fill @pfd with the listening socket and the connections; returns count.
 * rsip_server_npollfds tells how many @pfd needs room for. */
unsigned rsip_server_pollfds(struct rsip_server *s, struct pollfd *pfd, unsigned max);
unsigned rsip_server_npollfds(const struct rsip_server *s);
/* ms until the transport's next deadline (idle, pre-authentication, the
 * listener's pause), at most 1000: call rsip_server_events by then, with
 * n = 0 if nothing happened. */
int rsip_server_timeout(const struct rsip_server *s);
/* Process the events of the pollfds filled by rsip_server_pollfds. */
void rsip_server_events(struct rsip_server *s, const struct pollfd *pfd, unsigned n);

/* The pinned maps as the server's datapath backend (rsip_maps.c). */
struct xd_maps;
void rsip_backend_maps(struct rsip_backend *be, struct xd_maps *m);

/* The operator's listing of enrolments, registrations and bindings
 * (rsip_list.c), as a table or JSON. */
int rsip_list(struct xd_store *st, bool json, FILE *f, uint64_t now_ms);

#endif
