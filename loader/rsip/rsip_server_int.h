/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside the RSIP server (not for its users: they include rsip_server.h).
 * The server is split by concern:
 *   rsip_server.c     open/close, configuration, the store accessors
 *   rsip_index.c      the free-range index and the transactions that keep it
 *   rsip_alloc.c      the allocator: ASSIGN_REQUEST_RSAP-IP / RSIPSEC
 *   rsip_leases.c     EXTEND, FREE, DEREGISTER, eviction, lease expiry,
 *                     quarantine and reconciliation with the maps
 *   rsip_session.c    REGISTER, QUERY and the dispatch of one message
 *   rsip_transport.c  TCP: accept, framing, replies
 */
#ifndef XDNAT_RSIP_SERVER_INT_H
#define XDNAT_RSIP_SERVER_INT_H

#include "rsip_server.h"

/* One request being handled. */
struct req {
	const struct rsip_msg *m;
	const struct rsip_fields *f;
	struct rsip_builder *b;      /* response */
	uint32_t client_id;
	uint32_t bind_id;            /* for errors */
	uint8_t *cert;               /* issued for a CSR in the request (malloc'ed) */
	size_t cert_len;
};

static inline const struct rsip_param *rs_slot(const struct req *r, int i)
{
	return r->f->slot[i] >= 0 ? &r->m->params[r->f->slot[i]] : NULL;
}

/* rsip_server.c: records of the store */
int rs_get_client(struct rsip_server *s, uint32_t id, struct xd_client *c);
int rs_get_binding(struct rsip_server *s, uint32_t id, struct xd_binding *b);
int rs_client_name(struct rsip_server *s, uint32_t id, char name[RSIP_KEYID_MAX + 1]);
/* The store's operations, for short: OPS(s)->claim(...) */
#define OPS(s) ((s)->st->ops)

/* rsip_index.c */
enum { PEND_SET, PEND_CLEAR, PEND_HID_SET, PEND_HID_CLEAR };
uint64_t rs_bits_next_clear(const struct rsip_bits *b, uint64_t p);
uint64_t rs_bits_next_set(const struct rsip_bits *b, uint64_t p, uint64_t z);
int64_t rs_bits_find(const struct rsip_bits *b, uint64_t lo, uint64_t hi, uint64_t cnt);
void rs_idx_free(struct rsip_index *x);
void rs_idx_range(struct rsip_server *s, int kind, uint32_t gidx, uint32_t first, uint32_t last, bool on);
int rs_idx_build(struct rsip_server *s);
int rs_idx_sync(struct rsip_server *s);
void rs_idx_queue(struct rsip_server *s, int op, int kind, uint32_t gidx, uint32_t first, uint32_t last);
int rs_srv_begin(struct rsip_server *s);
void rs_srv_rollback(struct rsip_server *s);
int rs_srv_commit(struct rsip_server *s);

/* rsip_alloc.c */
uint32_t rs_clamp_lease(const struct rsip_config *c, bool given, uint32_t req);
int rs_install(struct rsip_server *s, uint32_t host_id, int kind, uint32_t first, uint32_t last);
void rs_uninstall(struct rsip_server *s, uint32_t host_id, int kind, uint32_t first, uint32_t last);
uint16_t rs_commit_binding(struct rsip_server *s, struct xd_client *c, uint32_t gidx, int kind,
			   uint32_t first, uint32_t last, uint32_t lease, uint32_t *bind_id,
			   struct req *r);
int rs_release_binding(struct rsip_server *s, const struct xd_binding *b, uint64_t now, int reason);
int rs_install_binding(struct rsip_server *s, const struct rsip_deferred *d);
uint16_t rs_issue_cert(struct rsip_server *s, const struct xd_client *c, struct req *r);
uint16_t rs_do_assign_ports(struct rsip_server *s, struct xd_client *c, struct req *r);
uint16_t rs_do_assign_spi(struct rsip_server *s, struct xd_client *c, struct req *r);

/* rsip_leases.c */
uint16_t rs_do_extend(struct rsip_server *s, struct xd_client *c, struct req *r);
uint16_t rs_do_free(struct rsip_server *s, struct xd_client *c, struct req *r);
uint16_t rs_do_deregister(struct rsip_server *s, struct rsip_session *sess, struct xd_client *c,
			  struct req *r);
int rs_db_runs(struct rsip_server *s, uint32_t client_id, int kind, struct xd_run **out, size_t *n);

/* rsip_transport.c */
void rs_conn_close(struct rsip_conn *c);
/* A warning that an event can repeat: at most one line per 10 s of class
 * @cls (RS_RL_*), with the count of those left out. */
void rs_warn_rl(struct rsip_server *s, int cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Was client nonce @cn seen in an accepted hello before?  Records it. */
bool rs_nonce_seen(struct rsip_server *s, const uint8_t cn[RSIP_NONCE_LEN]);

#endif
