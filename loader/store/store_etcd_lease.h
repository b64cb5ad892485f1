/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * etcd leases and leader keys for the cluster's elections
 * (loader/daemon/cluster_elect.c), over the same JSON gateway as the etcd
 * store (store_etcd_http.c) but on a handle of their own with a short
 * timeout, so that an election never waits behind a slow store request
 * and can run in a thread of its own.
 *
 * A role (expiry, signer) is held by the router whose id is the value of
 * PREFIX/INSTANCE/leader/ROLE.  The key is created only if absent
 * (create_revision == 0) and is attached to the router's lease: when the
 * router stops renewing the lease, etcd deletes the key after the TTL and
 * another router's campaign succeeds.
 */
#ifndef XDNAT_STORE_ETCD_LEASE_H
#define XDNAT_STORE_ETCD_LEASE_H

#include <stddef.h>
#include <stdint.h>
#include "store.h"

struct xd_etcd_lease;

/* A lease client on a store handle of its own, opened like the store of
 * @instance at @state_dir (with the process's [store] configuration: its
 * members, TLS, prefix), each request bounded by @timeout_ms (0: the
 * store's).  -EINVAL if that store is not etcd. */
int xd_etcd_lease_open(const char *state_dir, const char *instance, unsigned timeout_ms,
		       struct xd_etcd_lease **out, char *err, size_t errlen);
void xd_etcd_lease_close(struct xd_etcd_lease *l);
const char *xd_etcd_lease_error(const struct xd_etcd_lease *l);

/* Every call: 0 (or 1/0 found/not), -ENOENT for a lease etcd no longer
 * has, another negative errno when etcd did not answer (-ETIMEDOUT,
 * -EAGAIN: no quorum or no member reachable, -EIO). */
int xd_etcd_lease_grant(struct xd_etcd_lease *l, unsigned ttl_s, int64_t *id);
int xd_etcd_lease_keepalive(struct xd_etcd_lease *l, int64_t id, int64_t *ttl_left);
int xd_etcd_lease_revoke(struct xd_etcd_lease *l, int64_t id);
int xd_etcd_lease_ttl(struct xd_etcd_lease *l, int64_t id, int64_t *ttl_left);

/* Create leader/@role = @who with lease @lease unless the key exists.
 * 1: @who holds the role (now or already, with this lease); 0: someone
 * else does (its id in @holder); <0 error. */
int xd_etcd_campaign(struct xd_etcd_lease *l, const char *role, const char *who, int64_t lease,
		     char *holder, size_t hlen);
/* Who holds @role: 1 (id in @holder, its lease in *lease), 0 nobody. */
int xd_etcd_leader(struct xd_etcd_lease *l, const char *role, char *holder, size_t hlen,
		   int64_t *lease);
/* Give @role up if @who holds it. */
int xd_etcd_resign(struct xd_etcd_lease *l, const char *role, const char *who);

#endif
