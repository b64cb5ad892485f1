/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The Local CA inside xdnatd (issue 4, docs/LCA.md): the certificate
 * callbacks of the RSIP server (issue on a CSR, supersede, revoke before a
 * block is freed), the CRL kept in memory for the HTTP listener, recovery
 * against the allocations, and the queue of revocations to announce.
 *
 * Every revocation, whoever makes it (the RSIP server, lca_reconcile,
 * `xdnatctl cert revoke` on the same database), is found by
 * xd_ca_poll(): a revoked certificate not yet in table ca_notified.  So
 * notices owed when xdnatd crashed are sent after the restart.
 */
#ifndef XDNAT_CA_PLANE_H
#define XDNAT_CA_PLANE_H

#include <stdbool.h>
#include <stdint.h>
#include "rsip_server.h"

struct xd_ca_config {
	const char *key_path, *cert_path, *chain_path;  /* PEM */
	const char *crl_url;                              /* distribution point */
	uint32_t crl_period_s;                            /* 0: one day */
	/* A renewal's predecessors are revoked (superseded) by xd_ca_poll
	 * this long after the renewal: 0: a quarter of the lease, 1 to 10 s;
	 * -1: at the next poll (tests). */
	int32_t supersede_grace_s;
};

struct xd_ca;

/* One newly found revocation (xd_ca_poll). */
struct xd_ca_revoked {
	char serial[48];
	char host[72];             /* enrolled host name */
	char identity[300];
	int64_t revoked_at;
	int reason;
	uint32_t dp_host_id;       /* datapath host id it had (0: unknown) */
};

/* Open the LCA over the control plane's store @st.  Errors printed. */
int xd_ca_open(const struct xd_ca_config *cfg, struct xd_store *st, struct xd_ca **out);
void xd_ca_close(struct xd_ca *ca);
/* The callbacks for rsip_server.certs. */
void xd_ca_rsip_ops(struct xd_ca *ca, struct rsip_cert_ops *ops);
struct lca *xd_ca_lca(struct xd_ca *ca);

/* Recovery: revoke the certificates whose allocations are no longer held
 * in the store (lapsed while xdnatd was down).  *n: how many. */
int xd_ca_reconcile(struct xd_ca *ca, int64_t now, unsigned *n);

/* Does a revocation for @reason lock the host out of new certificates
 * until it is enrolled again?  (All but superseded, cessationOfOperation
 * and affiliationChanged, which xdnatd makes by itself.) */
bool xd_ca_reason_locks(int reason);
/* Is enrolled host @name locked out: one of the certificates issued under
 * its current enrolment (its current secret) revoked for such a reason?
 * 1 (with that certificate's serial and reason), 0, or a negative errno. */
int xd_ca_locked_out(struct xd_store *st, const char *name, char *serial, size_t len, int *reason);

/*
 * Find revocations not announced yet (at most @max into @out; *n how many
 * were found; superseded ones are marked but never returned: renewal is no
 * revocation event for peers), mark them announced, and make a new CRL if there were any
 * or if the current one is half-way to its nextUpdate (or absent).
 * Returns 1 if the CRL changed, 0 if not, <0 on error.
 */
int xd_ca_poll(struct xd_ca *ca, int64_t now, struct xd_ca_revoked *out, unsigned max, unsigned *n);
/* The current CRL (DER), its number; NULL before the first poll. */
const uint8_t *xd_ca_crl(const struct xd_ca *ca, size_t *len);

#endif
