// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The Local CA inside xdnatd: see ca_plane.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include "ca_plane.h"
#include "lca.h"
#include "store.h"
#include "xdnat.h"

#define HOSTMAP_MAX 1024
#define CASCADE_MAX 32     /* hosts revoked per poll whose other certificates follow */

struct xd_ca {
	struct lca *lca;
	struct xd_store *st;
	uint8_t *ca_der;           /* the LCA certificate */
	size_t ca_der_len;
	unsigned char *crl;        /* OPENSSL_malloc'ed */
	size_t crl_len;
	int64_t crl_made, crl_period;
	int32_t grace;             /* xd_ca_config.supersede_grace_s */
	/* enrolled name -> datapath host id, remembered while it is known so
	 * that revocations made at release time still find the host's peers */
	struct { char name[RSIP_KEYID_MAX + 1]; uint32_t id; } hostmap[HOSTMAP_MAX];
	unsigned n_hostmap, next_hostmap;
	/* Renewals whose predecessors are to be revoked (superseded) once
	 * the grace period is over (xd_ca_poll); one entry per host. */
	struct pending_sup { char name[RSIP_KEYID_MAX + 1]; char keep[LCA_SERIAL_STRLEN]; int64_t due; } *sup;
	unsigned n_sup, cap_sup;
};

/* The daemon's own tables (store.h, cert_announced and cert_enrolment_*):
 * ca_notified: revocations already seen by xd_ca_poll (announced, or
 * deliberately not: superseded ones).
 * ca_enrolment: for each certificate issued over RSIP, a tag of the
 * enrolment (the host's secret) it was issued under, so that an operator
 * revocation locks out exactly that enrolment: re-enrolling (a new secret)
 * lifts it, whatever the clocks say. */
#define TAG_LEN 16

struct lca *xd_ca_lca(struct xd_ca *ca) { return ca->lca; }

/* The datapath host id of client @name, from the store (0: none). */
static uint32_t db_host_id(struct xd_store *st, const char *name)
{
	struct xd_client c;

	return st->ops->client_by_name(st, name, &c) == 1 ? c.host_id : 0;
}

static void remember(struct xd_ca *ca, const char *name)
{
	uint32_t id = db_host_id(ca->st, name);

	if (!id)
		return;
	for (unsigned i = 0; i < ca->n_hostmap; i++) {
		if (!strcmp(ca->hostmap[i].name, name)) {
			ca->hostmap[i].id = id;
			return;
		}
	}
	unsigned i = ca->n_hostmap < HOSTMAP_MAX ? ca->n_hostmap++ : ca->next_hostmap++ % HOSTMAP_MAX;

	snprintf(ca->hostmap[i].name, sizeof(ca->hostmap[i].name), "%s", name);
	ca->hostmap[i].id = id;
}

static uint32_t host_id_of(struct xd_ca *ca, const char *name)
{
	uint32_t id = db_host_id(ca->st, name);

	for (unsigned i = 0; !id && i < ca->n_hostmap; i++)
		if (!strcmp(ca->hostmap[i].name, name))
			id = ca->hostmap[i].id;
	return id;
}

/* ------------------------------------------------------ RSIP callbacks */

struct superseded {
	const char *keep;
	int64_t now;
	char (*serials)[LCA_SERIAL_STRLEN];
	unsigned n, cap;
};

static int cb_live(void *arg, const struct lca_record *r)
{
	struct superseded *s = arg;

	if (r->revoked || r->not_after < s->now || !strcmp(r->serial, s->keep))
		return 0;
	if (s->n == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 8;
		void *p = realloc(s->serials, cap * sizeof(*s->serials));

		if (!p)
			return -ENOMEM;
		s->serials = p;
		s->cap = cap;
	}
	snprintf(s->serials[s->n++], LCA_SERIAL_STRLEN, "%s", r->serial);
	return 0;
}

/* The tag of host @name's current enrolment: a hash of its secret (the
 * secret stays where it is; the tag only tells enrolments apart). */
static int enrolment_tag(struct xd_store *st, const char *name, uint8_t tag[TAG_LEN])
{
	static const char label[] = "xdnat ca_enrolment v1";
	uint8_t buf[sizeof(label) + RSIP_SECRET_LEN], md[SHA256_DIGEST_LENGTH];
	uint32_t lan;
	int rc = st->ops->host_secret(st, name, buf + sizeof(label), &lan);

	if (rc)
		return rc;
	memcpy(buf, label, sizeof(label));
	if (!SHA256(buf, sizeof(buf), md))
		rc = -EIO;
	OPENSSL_cleanse(buf, sizeof(buf));
	memcpy(tag, md, TAG_LEN);
	return rc;
}

/* Revocations that lock a host out: everything but the ones the system
 * makes by itself (superseded: renewal; cessationOfOperation: blocks
 * freed or lapsed; affiliationChanged: eviction, which unenrol completes). */
bool xd_ca_reason_locks(int reason)
{
	return reason != LCA_REASON_SUPERSEDED && reason != LCA_REASON_CESSATION &&
	       reason != LCA_REASON_AFFILIATION_CHANGED;
}

struct lockout {
	struct xd_store *st;
	const uint8_t *tag;
	char serial[LCA_SERIAL_STRLEN];
	int reason;
	bool locked;
};

/* Was @r (revoked by the operator) issued under the current enrolment? */
static int cb_lockout(void *arg, const struct lca_record *r)
{
	struct lockout *l = arg;
	int rc;

	if (!r->revoked || !xd_ca_reason_locks(r->reason))
		return 0;
	rc = l->st->ops->cert_enrolment_is(l->st, r->serial, l->tag, TAG_LEN);
	if (rc == 1) {
		l->locked = true;
		l->reason = r->reason;
		snprintf(l->serial, sizeof(l->serial), "%s", r->serial);
	}
	return rc < 0 ? rc : 0;
}

int xd_ca_locked_out(struct xd_store *st, const char *name, char *serial, size_t len, int *reason)
{
	uint8_t tag[TAG_LEN];
	struct lockout l = { .st = st, .tag = tag };
	struct lca_err e = { { 0 } };
	int rc = enrolment_tag(st, name, tag);

	if (rc == -ENOENT)
		return 0;   /* not enrolled: the RSIP server refuses it anyway */
	if (rc || (rc = st->ops->cert_list(st, name, cb_lockout, &l, &e)))
		return rc < 0 ? rc : -EIO;
	if (l.locked && serial)
		snprintf(serial, len, "%s", l.serial);
	if (l.locked && reason)
		*reason = l.reason;
	return l.locked ? 1 : 0;
}

/*
 * Superseding is deferred by a grace period: the host's IKE daemon needs a
 * moment to load the new certificate, and an IKE_AUTH already under way
 * carries the previous one.  Revoked at once, that one would fail against
 * a peer holding a fresh CRL: a renewal would disturb an SA.  A quarter of
 * the lease, at least 1 s, at most 10 s; the previous certificate is valid
 * for half a lease anyway.  Lost on a crash: those certificates then just
 * expire (they bind only what the host still holds; FREE and expiry revoke
 * every certificate binding a block).
 */
static int64_t supersede_grace(const struct xd_ca *ca, int64_t lease)
{
	int64_t g = lease / 4;

	if (ca->grace)
		return ca->grace < 0 ? 0 : ca->grace;
	return g < 1 ? 1 : g > 10 ? 10 : g;
}

static int defer_supersede(struct xd_ca *ca, const char *name, const char *keep, int64_t due)
{
	unsigned i;

	for (i = 0; i < ca->n_sup && strcmp(ca->sup[i].name, name); i++)
		;
	if (i == ca->n_sup) {
		if (ca->n_sup == ca->cap_sup) {
			unsigned cap = ca->cap_sup ? ca->cap_sup * 2 : 16;
			void *p = realloc(ca->sup, cap * sizeof(*ca->sup));

			if (!p)
				return -ENOMEM;
			ca->sup = p;
			ca->cap_sup = cap;
		}
		ca->n_sup++;
	}
	snprintf(ca->sup[i].name, sizeof(ca->sup[i].name), "%s", name);
	snprintf(ca->sup[i].keep, sizeof(ca->sup[i].keep), "%s", keep);
	ca->sup[i].due = due;
	return 0;
}

static int cb_found(void *arg, const struct lca_record *r)
{
	*(const struct lca_record **)arg = r;   /* only compared with NULL */
	return 0;
}

/* The enrolment tag @serial was issued under: 1 and @tag, 0 if none is
 * recorded, <0 on error. */
static int tag_of(struct xd_store *st, const char *serial, uint8_t tag[TAG_LEN])
{
	return st->ops->cert_enrolment_tag(st, serial, tag, TAG_LEN);
}

/* Revoke, with @reason at @now, every live certificate of @name but @keep
 * (NULL: all); with @like, only those issued under the same enrolment as
 * certificate @like (a host enrolled again meanwhile keeps its new ones).
 * *n: how many. */
static int revoke_others(struct xd_ca *ca, const char *name, const char *keep, const char *like,
			 int reason, int64_t now, unsigned *n)
{
	struct superseded sup = { .keep = keep ? keep : "", .now = now };
	struct lca_err e = { { 0 } };
	uint8_t ref[TAG_LEN], t[TAG_LEN];
	int rc = ca->st->ops->cert_list(ca->st, name, cb_live, &sup, &e);
	int have_ref = like && !rc ? tag_of(ca->st, like, ref) : 0;

	*n = 0;
	for (unsigned i = 0; !rc && i < sup.n; i++) {
		if (have_ref > 0 && tag_of(ca->st, sup.serials[i], t) > 0 && memcmp(t, ref, TAG_LEN))
			continue;
		rc = lca_revoke(ca->lca, sup.serials[i], reason, now, &e);
		if (rc == -EALREADY)
			rc = 0;
		else if (!rc)
			(*n)++;
	}
	free(sup.serials);
	if (rc)
		xd_warn("certificates of '%s': cannot revoke (%s): %s", name, lca_reason_name(reason), e.msg);
	return rc;
}

/* Supersede what is due (xd_ca_poll).  A renewal whose transaction was
 * rolled back left an entry whose certificate does not exist: dropped. */
static void run_supersedes(struct xd_ca *ca, int64_t now)
{
	for (unsigned i = 0; i < ca->n_sup;) {
		struct pending_sup *p = &ca->sup[i];
		const struct lca_record *found = NULL;
		struct lca_err e = { { 0 } };
		unsigned n = 0;

		if (p->due > now) {
			i++;
			continue;
		}
		if (ca->st->ops->cert_get(ca->st, p->keep, cb_found, &found, &e) == 0 && found)
			revoke_others(ca, p->name, p->keep, NULL, LCA_REASON_SUPERSEDED, now, &n);
		*p = ca->sup[--ca->n_sup];
	}
}

static int op_issue(void *ctx, const struct rsip_cert_req *rq, uint8_t **der, size_t *len)
{
	struct xd_ca *ca = ctx;
	struct lca_range ports[LCA_MAX_RANGES], spis[LCA_MAX_RANGES];
	struct lca_issued out = { 0 };
	struct superseded sup = { 0 };
	struct lca_err e = { { 0 } };
	uint8_t tag[TAG_LEN];
	char locked_by[LCA_SERIAL_STRLEN];
	int rc, why = 0;

	/* A host whose certificate the operator revoked gets no other one
	 * until it is enrolled again (docs/LCA.md, "Revocation"). */
	rc = xd_ca_locked_out(ca->st, rq->name, locked_by, sizeof(locked_by), &why);
	if (rc < 0) {
		xd_warn("certificate for '%s': cannot read its revocations: no certificate", rq->name);
		return -EIO;
	}
	if (rc > 0) {
		xd_warn("certificate for '%s' refused: certificate %s was revoked (%s); enrol the host "
			"again (xdnatctl enroll) to let it have one", rq->name, locked_by,
			lca_reason_name(why));
		return -EACCES;
	}
	if ((rc = enrolment_tag(ca->st, rq->name, tag))) {
		xd_warn("certificate for '%s': host not enrolled", rq->name);
		return rc == -ENOENT ? -EPERM : -EIO;
	}
	if (rq->n_ports > LCA_MAX_RANGES || rq->n_spis > LCA_MAX_RANGES) {
		xd_warn("certificate for '%s': more than %d ranges", rq->name, LCA_MAX_RANGES);
		return -EPERM;
	}
	for (size_t i = 0; i < rq->n_ports; i++)
		ports[i] = (struct lca_range){ rq->ports[i].first, rq->ports[i].last };
	for (size_t i = 0; i < rq->n_spis; i++)
		spis[i] = (struct lca_range){ rq->spis[i].first, rq->spis[i].last };
	struct lca_issue_req req = {
		.csr = rq->csr, .csr_len = rq->csr_len, .host_id = rq->name, .lan_be = rq->lan_be,
		.ports = ports, .n_ports = (unsigned)rq->n_ports, .spis = spis, .n_spis = (unsigned)rq->n_spis,
		.not_before = rq->not_before, .not_after = rq->not_after,
	};
	rc = lca_issue(ca->lca, &req, &out, &e);
	if (rc) {
		xd_warn("certificate for '%s' refused: %s", rq->name, e.msg);
		return rc;
	}
	/* The host's earlier certificates are superseded by this one, after
	 * a grace period (see defer_supersede). */
	sup.keep = out.serial;
	sup.now = rq->not_before;
	rc = ca->st->ops->cert_list(ca->st, rq->name, cb_live, &sup, &e);
	if (!rc && sup.n)
		rc = defer_supersede(ca, rq->name, out.serial,
				     rq->not_before + supersede_grace(ca, rq->not_after - rq->not_before));
	free(sup.serials);
	if (rc)
		xd_warn("certificate for '%s': cannot schedule the superseded ones: %s", rq->name,
			e.msg[0] ? e.msg : strerror(-rc));
	else if ((rc = ca->st->ops->cert_enrolment_record(ca->st, out.serial, rq->name, tag, TAG_LEN)))
		xd_warn("certificate for '%s': cannot record its enrolment: %s", rq->name,
			xd_store_error(ca->st));
	if (rc) {
		lca_issued_free(&out);
		return -EIO;
	}
	*der = malloc(out.der_len);
	if (!*der) {
		lca_issued_free(&out);
		return -ENOMEM;
	}
	memcpy(*der, out.der, out.der_len);
	*len = out.der_len;
	remember(ca, rq->name);
	xd_info("issued certificate %s to '%s' (%s), valid until %lld%s", out.serial, rq->name,
		out.identity, (long long)rq->not_after, sup.n ? ", superseding the previous one" : "");
	lca_issued_free(&out);
	return 0;
}

static const uint8_t *op_ca_der(void *ctx, size_t *len)
{
	struct xd_ca *ca = ctx;

	*len = ca->ca_der_len;
	return ca->ca_der;
}

static int op_release(void *ctx, const char *name, int kind, uint32_t first, uint32_t last, int reason)
{
	struct xd_ca *ca = ctx;
	struct lca_err e = { { 0 } };
	unsigned n = 0;
	int rc;

	remember(ca, name);
	rc = lca_revoke_overlapping(ca->lca, kind == RSIP_KIND_PORTS ? LCA_KIND_PORTS : LCA_KIND_SPI,
				    first, last, reason, (int64_t)(rsip_now_ms() / 1000), &n, &e);
	if (rc) {
		xd_warn("cannot revoke the certificates binding %s %u-%u of '%s': %s",
			kind == RSIP_KIND_PORTS ? "ports" : "SPIs", first, last, name, e.msg);
		return rc;
	}
	if (n)
		xd_info("revoked %u certificate%s of '%s' binding %s %u-%u (%s)", n, n == 1 ? "" : "s",
			name, kind == RSIP_KIND_PORTS ? "ports" : "SPIs", first, last,
			lca_reason_name(reason));
	return 0;
}

void xd_ca_rsip_ops(struct xd_ca *ca, struct rsip_cert_ops *ops)
{
	*ops = (struct rsip_cert_ops){
		.ctx = ca, .issue = op_issue, .ca_der = op_ca_der, .release = op_release,
	};
}

/* ------------------------------------------------------------ open/close */

int xd_ca_open(const struct xd_ca_config *cfg, struct xd_store *st, struct xd_ca **out)
{
	struct xd_ca *ca = calloc(1, sizeof(*ca));
	struct lca_err e = { { 0 } };
	struct lca_config lc = {
		.key_path = cfg->key_path, .cert_path = cfg->cert_path, .chain_path = cfg->chain_path,
		.crl_url = cfg->crl_url, .crl_period_s = cfg->crl_period_s,
	};
	unsigned char *p = NULL;
	int len;

	*out = NULL;
	if (!ca) {
		xd_err("out of memory");
		return -ENOMEM;
	}
	ca->st = st;
	ca->crl_period = cfg->crl_period_s ? cfg->crl_period_s : LCA_DEFAULT_CRL_PERIOD;
	ca->grace = cfg->supersede_grace_s;
	if (st->ops->ca_open(st, &lc, &ca->lca, &e)) {
		xd_err("local CA: %s", e.msg);
		free(ca);
		return -EINVAL;
	}
	len = i2d_X509(lca_cert(ca->lca), &p);
	if (len <= 0 || !(ca->ca_der = malloc((size_t)len))) {
		OPENSSL_free(p);
		xd_err("local CA: cannot encode the LCA certificate");
		xd_ca_close(ca);
		return -EIO;
	}
	memcpy(ca->ca_der, p, (size_t)len);
	ca->ca_der_len = (size_t)len;
	OPENSSL_free(p);
	*out = ca;
	return 0;
}

void xd_ca_close(struct xd_ca *ca)
{
	if (!ca)
		return;
	lca_close(ca->lca);
	free(ca->sup);
	free(ca->ca_der);
	OPENSSL_free(ca->crl);
	free(ca);
}

/* -------------------------------------------------------------- recovery */

struct held_ctx {
	struct xd_store *st;
	int err;
};

/* Is every range of @a inside the active bindings of client @name? */
static bool held(void *arg, const struct lca_record *r, const struct lca_alloc *a)
{
	struct held_ctx *h = arg;

	for (int k = 0; k < 2; k++) {
		const struct lca_range *rg = k ? a->spis : a->ports;
		unsigned n = k ? a->n_spis : a->n_ports;

		for (unsigned i = 0; i < n; i++) {
			/* Bindings of a host are disjoint; a certified range may span
			 * adjacent bindings: walk it binding by binding. */
			uint64_t at = rg[i].first;

			while (at <= rg[i].last) {
				int64_t last = -1;
				int rc = h->st->ops->held_at(h->st, r->host_id, k ? RSIP_KIND_SPI :
							     RSIP_KIND_PORTS, (uint32_t)at, &last);

				if (rc < 0) {
					h->err = -EIO;
					return true; /* keep it: better than a wrong revocation */
				}
				if (rc == 0 || last < 0)
					return false;
				at = (uint64_t)last + 1;
			}
		}
	}
	return true;
}

int xd_ca_reconcile(struct xd_ca *ca, int64_t now, unsigned *n)
{
	struct held_ctx h = { .st = ca->st };
	struct lca_err e = { { 0 } };
	int rc = lca_reconcile(ca->lca, now, held, &h, n, &e);

	if (rc) {
		xd_err("local CA: recovery: %s", e.msg);
		return rc;
	}
	if (h.err)
		xd_warn("local CA: recovery: the store could not be read fully; kept what was unclear");
	return 0;
}

/* ------------------------------------------------------- revocations, CRL */

/* Mark @serial seen (inside the caller's transaction). */
static int mark_notified(struct xd_store *st, const char *serial, int64_t now)
{
	return st->ops->cert_announced(st, serial, now);
}

/*
 * A superseded certificate is not a revocation event for peers: the host
 * renewed, its IKE_SAs authenticated with the previous certificate are
 * fine and stay (docs/LCA.md, "Revocation notices").  Such revocations
 * go into the CRL and are marked seen, but are not returned, so no notice
 * is sent for them.
 */
struct unannounced {
	struct xd_cert_revoked *v;
	unsigned n;
};

static int collect(void *arg, const struct xd_cert_revoked *r)
{
	struct unannounced *u = arg;

	u->v[u->n++] = *r;
	return 0;
}

/* Record the reported and the quiet (superseded) revocations as announced,
 * in one transaction. */
static int mark_all(struct xd_ca *ca, const struct xd_ca_revoked *out, unsigned reported,
		    char (*quiet)[LCA_SERIAL_STRLEN], unsigned n_quiet, int64_t now)
{
	int rc = 0;

	if (ca->st->ops->begin(ca->st))
		return -EIO;
	for (unsigned i = 0; i < reported && !rc; i++)
		rc = mark_notified(ca->st, out[i].serial, now);
	for (unsigned i = 0; i < n_quiet && !rc; i++)
		rc = mark_notified(ca->st, quiet[i], now);
	if (rc || ca->st->ops->commit(ca->st)) {
		ca->st->ops->rollback(ca->st);
		xd_err("local CA: %s", xd_store_error(ca->st));
		return -EIO;
	}
	return 0;
}

/* A new CRL for the HTTP server: 1, or -EIO. */
static int refresh_crl(struct xd_ca *ca, int64_t now)
{
	struct lca_err e = { { 0 } };
	unsigned char *der = NULL;
	size_t len = 0;

	if (lca_crl(ca->lca, now, &der, &len, &e)) {
		xd_err("local CA: cannot make the CRL: %s", e.msg);
		return -EIO;
	}
	OPENSSL_free(ca->crl);
	ca->crl = der;
	ca->crl_len = len;
	ca->crl_made = now;
	return 1;
}

/* The CRL number of a DER CRL, -1 if it has none. */
static int64_t crl_number(const unsigned char *der, size_t len)
{
	X509_CRL *c = d2i_X509_CRL(NULL, &der, (long)len);
	ASN1_INTEGER *num = c ? X509_CRL_get_ext_d2i(c, NID_crl_number, NULL, NULL) : NULL;
	int64_t v = -1;

	if (!num || !ASN1_INTEGER_get_int64(&v, num))
		v = -1;
	ASN1_INTEGER_free(num);
	X509_CRL_free(c);
	return v;
}

/* Serve the store's latest CRL when another router (a shared store)
 * signed a newer one than ours: 1 if it changed, else 0. */
static int adopt_latest_crl(struct xd_ca *ca)
{
	struct lca_err e = { { 0 } };
	unsigned char *der = NULL, *copy;
	size_t len = 0;
	int64_t num = 0;

	if (lca_crl_latest(ca->lca, &der, &len, &num, &e))
		return 0;            /* none yet, or the store is unreachable: keep ours */
	if (num <= crl_number(ca->crl, ca->crl_len) || !(copy = OPENSSL_malloc(len))) {
		free(der);
		return 0;
	}
	memcpy(copy, der, len);
	free(der);
	OPENSSL_free(ca->crl);
	ca->crl = copy;
	ca->crl_len = len;
	return 1;
}

int xd_ca_poll(struct xd_ca *ca, int64_t now, struct xd_ca_revoked *out, unsigned max, unsigned *n)
{
	struct unannounced u = { .v = calloc(256, sizeof(*u.v)) };
	char (*quiet)[LCA_SERIAL_STRLEN] = NULL;
	unsigned found = 0, reported = 0, n_quiet = 0, cap_quiet = 0, cascaded = 0, n_casc = 0;
	struct { char name[RSIP_KEYID_MAX + 1]; char serial[LCA_SERIAL_STRLEN]; int reason; } casc[CASCADE_MAX];
	int rc = 0;
	bool again = true;

	*n = 0;
	if (!u.v)
		return -ENOMEM;
	run_supersedes(ca, now);
rescan:
	found = reported = n_quiet = u.n = 0;
	if (ca->st->ops->cert_unannounced(ca->st, 256, collect, &u)) {
		xd_err("local CA: %s", xd_store_error(ca->st));
		free(u.v);
		return -EIO;
	}
	for (unsigned q = 0; q < u.n && !rc; q++) {
		const char *serial = u.v[q].serial;
		const char *host = u.v[q].host[0] ? u.v[q].host : NULL;
		const char *id = u.v[q].identity;
		int reason = u.v[q].reason;

		found++;
		if (reason == LCA_REASON_SUPERSEDED) {
			if (n_quiet == cap_quiet) {
				unsigned c = cap_quiet ? cap_quiet * 2 : 16;
				void *p = realloc(quiet, c * sizeof(*quiet));

				if (!p) {
					rc = -ENOMEM;
					break;
				}
				quiet = p;
				cap_quiet = c;
			}
			snprintf(quiet[n_quiet++], LCA_SERIAL_STRLEN, "%.*s", LCA_SERIAL_STRLEN - 1, serial);
			continue;
		}
		/* Revoking a host's certificate revokes the host: its other
		 * live certificates (earlier ones in their grace period) go too,
		 * for the same reason, and are announced with it (below). */
		if (again && host && xd_ca_reason_locks(reason) && n_casc < CASCADE_MAX) {
			unsigned j = 0;

			while (j < n_casc && (strcmp(casc[j].name, host) || casc[j].reason != reason))
				j++;
			if (j == n_casc) {
				snprintf(casc[n_casc].name, sizeof(casc[0].name), "%.*s", (int)sizeof(casc[0].name) - 1, host);
				snprintf(casc[n_casc].serial, sizeof(casc[0].serial), "%.*s", (int)sizeof(casc[0].serial) - 1, serial);
				casc[n_casc++].reason = reason;
			}
		}
		if (reported < max) {
			struct xd_ca_revoked *r = &out[reported++];

			memset(r, 0, sizeof(*r));
			snprintf(r->serial, sizeof(r->serial), "%s", serial ? serial : "");
			snprintf(r->host, sizeof(r->host), "%s", host ? host : "");
			snprintf(r->identity, sizeof(r->identity), "%s", id ? id : "");
			r->revoked_at = u.v[q].revoked_at;
			r->reason = reason;
			r->dp_host_id = host ? host_id_of(ca, host) : 0;
		}
	}
	if (rc) {
		free(quiet);
		free(u.v);
		xd_err("local CA: %s", strerror(-rc));
		return rc;
	}
	for (unsigned j = 0; j < n_casc; j++) {
		unsigned k = 0;

		if (!revoke_others(ca, casc[j].name, NULL, casc[j].serial, casc[j].reason, now, &k))
			cascaded += k;
	}
	if (again && cascaded) {   /* once: report them in this round */
		again = false;
		n_casc = 0;
		goto rescan;
	}
	/* Mark them (only those reported; the rest come next time). */
	rc = (reported || n_quiet) ? mark_all(ca, out, reported, quiet, n_quiet, now) : 0;
	free(quiet);
	free(u.v);
	if (rc)
		return rc;
	*n = reported;
	if (found || !ca->crl || now >= ca->crl_made + ca->crl_period / 2)
		return refresh_crl(ca, now);
	return adopt_latest_crl(ca);
}

const uint8_t *xd_ca_crl(const struct xd_ca *ca, size_t *len)
{
	*len = ca->crl_len;
	return ca->crl;
}
