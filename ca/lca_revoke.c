// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The Local CA: revocation and restart reconciliation. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "lca_priv.h"

/* ---- revocation ----------------------------------------------------------- */

static const struct { int r; const char *n; } reasons[] = {
	{ LCA_REASON_UNSPECIFIED, "unspecified" },
	{ LCA_REASON_KEY_COMPROMISE, "keyCompromise" },
	{ LCA_REASON_AFFILIATION_CHANGED, "affiliationChanged" },
	{ LCA_REASON_SUPERSEDED, "superseded" },
	{ LCA_REASON_CESSATION, "cessationOfOperation" },
};

int lca_reason_parse(const char *s, int *reason)
{
	for (size_t i = 0; s && i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (!strcasecmp(s, reasons[i].n)) {
			*reason = reasons[i].r;
			return 0;
		}
	return -EINVAL;
}

const char *lca_reason_name(int reason)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].r == reason)
			return reasons[i].n;
	return "unknown";
}

static int reason_ok(int r)
{
	return strcmp(lca_reason_name(r), "unknown") != 0;
}

static int mark_revoked(struct lca_certdb *db, const char *serial, int reason, int64_t when,
			struct lca_err *e)
{
	struct lca_err quiet;
	int err = db->ops->revoke(db, serial, reason, when, &quiet);
	if (err && err != -EALREADY && e)
		*e = quiet;
	return err;
}

struct rev_one {
	bool found, revoked;
	char serial[LCA_SERIAL_STRLEN];
};

static int cb_one(void *arg, const struct lca_record *r)
{
	struct rev_one *o = arg;
	o->found = true;
	o->revoked = r->revoked;
	snprintf(o->serial, sizeof(o->serial), "%s", r->serial);
	return 0;
}

int lca_revoke(struct lca *ca, const char *serial, int reason, int64_t when, struct lca_err *e)
{
	struct rev_one o = { 0 };
	if (!reason_ok(reason))
		return lca_fail(e, -EINVAL, "unknown revocation reason %d", reason);
	if (!serial || strlen(serial) >= LCA_SERIAL_STRLEN)
		return lca_fail(e, -ENOENT, "no certificate with serial %s", serial ? serial : "(null)");
	int err = ca->db->ops->get(ca->db, serial, cb_one, &o, e);
	if (err)
		return err;
	if (o.revoked)
		return lca_fail(e, -EALREADY, "certificate %s is already revoked", o.serial);
	if ((err = ca->db->ops->begin(ca->db, e)))
		return err;
	err = mark_revoked(ca->db, o.serial, reason, when, e);
	if (err == -EALREADY)
		lca_fail(e, err, "certificate %s is already revoked", o.serial);
	return ca->db->ops->end(ca->db, err, e);
}

/* Collect serials first, then update: no writes while a SELECT is open. */
struct sel {
	struct lca *ca;
	int64_t now;
	enum lca_kind kind;
	uint32_t first, last;
	lca_held_fn held;
	void *arg;
	char (*serials)[LCA_SERIAL_STRLEN];
	size_t n, cap;
	int err;
	struct lca_err *e;
};

static int sel_push(struct sel *s, const char *serial)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		void *p = realloc(s->serials, cap * sizeof(*s->serials));
		if (!p)
			return lca_fail(s->e, -ENOMEM, "out of memory");
		s->serials = p;
		s->cap = cap;
	}
	snprintf(s->serials[s->n++], LCA_SERIAL_STRLEN, "%s", serial);
	return 0;
}

static int revoke_selected(struct lca *ca, struct sel *s, int reason, int64_t when, unsigned *n,
			   struct lca_err *e)
{
	unsigned cnt = 0;
	int err = ca->db->ops->begin(ca->db, e);
	bool sp_ok = !err;
	for (size_t i = 0; !err && i < s->n; i++) {
		int r = mark_revoked(ca->db, s->serials[i], reason, when, e);
		if (r == 0)
			cnt++;
		else if (r != -EALREADY)
			err = r;
	}
	if (sp_ok)
		err = ca->db->ops->end(ca->db, err, e);
	free(s->serials);
	s->serials = NULL;
	if (n)
		*n = err ? 0 : cnt;
	return err;
}

static bool live(const struct lca_record *r, int64_t now)
{
	return !r->revoked && now <= r->not_after;
}

static int cb_host(void *arg, const struct lca_record *r)
{
	struct sel *s = arg;
	return live(r, s->now) ? sel_push(s, r->serial) : 0;
}

int lca_revoke_host(struct lca *ca, const char *host_id, int reason, int64_t when, unsigned *n,
		    struct lca_err *e)
{
	struct sel s = { .ca = ca, .now = when, .e = e };
	if (!reason_ok(reason))
		return lca_fail(e, -EINVAL, "unknown revocation reason %d", reason);
	if (!host_id)
		return lca_fail(e, -EINVAL, "no host id");
	int err = ca->db->ops->list(ca->db, host_id, cb_host, &s, e);
	if (err) {
		free(s.serials);
		return err;
	}
	return revoke_selected(ca, &s, reason, when, n, e);
}

static int rec_alloc(const struct lca_record *r, struct lca_alloc *a, struct lca_err *e)
{
	const unsigned char *p = r->der;
	X509 *x = d2i_X509(NULL, &p, (long)r->der_len);
	if (!x)
		return lca_fail(e, -EIO, "stored certificate %s is unreadable", r->serial);
	int err = lca_alloc_from_cert(x, a, e);
	X509_free(x);
	return err;
}

static int cb_overlap(void *arg, const struct lca_record *r)
{
	struct sel *s = arg;
	struct lca_alloc a;
	if (!live(r, s->now))   /* a lease that starts later still binds its ranges */
		return 0;
	int err = rec_alloc(r, &a, s->e);
	if (err)
		return err;
	bool hit = s->kind == LCA_KIND_PORTS ? lca_ranges_overlap(a.ports, a.n_ports, s->first, s->last)
					     : lca_ranges_overlap(a.spis, a.n_spis, s->first, s->last);
	return hit ? sel_push(s, r->serial) : 0;
}

int lca_revoke_overlapping(struct lca *ca, enum lca_kind kind, uint32_t first, uint32_t last,
			   int reason, int64_t when, unsigned *n, struct lca_err *e)
{
	struct sel s = { .ca = ca, .now = when, .kind = kind, .first = first, .last = last, .e = e };
	if (!reason_ok(reason))
		return lca_fail(e, -EINVAL, "unknown revocation reason %d", reason);
	if ((kind != LCA_KIND_PORTS && kind != LCA_KIND_SPI) || first > last)
		return lca_fail(e, -EINVAL, "bad range");
	int err = ca->db->ops->list(ca->db, NULL, cb_overlap, &s, e);
	if (err) {
		free(s.serials);
		return err;
	}
	return revoke_selected(ca, &s, reason, when, n, e);
}

int lca_range_bound(struct lca *ca, enum lca_kind kind, uint32_t first, uint32_t last,
		    int64_t now, struct lca_err *e)
{
	struct sel s = { .ca = ca, .now = now, .kind = kind, .first = first, .last = last, .e = e };
	if ((kind != LCA_KIND_PORTS && kind != LCA_KIND_SPI) || first > last)
		return lca_fail(e, -EINVAL, "bad range");
	int err = ca->db->ops->list(ca->db, NULL, cb_overlap, &s, e);
	size_t n = s.n;
	free(s.serials);
	return err ? err : n > 0;
}

static int cb_reconcile(void *arg, const struct lca_record *r)
{
	struct sel *s = arg;
	struct lca_alloc a;
	if (!live(r, s->now))
		return 0;
	int err = rec_alloc(r, &a, s->e);
	if (err)
		return err;
	return s->held(s->arg, r, &a) ? 0 : sel_push(s, r->serial);
}

int lca_reconcile(struct lca *ca, int64_t now, lca_held_fn held, void *arg, unsigned *n,
		  struct lca_err *e)
{
	struct sel s = { .ca = ca, .now = now, .held = held, .arg = arg, .e = e };
	if (!held)
		return lca_fail(e, -EINVAL, "no callback");
	int err = ca->db->ops->list(ca->db, NULL, cb_reconcile, &s, e);
	if (err) {
		free(s.serials);
		return err;
	}
	return revoke_selected(ca, &s, LCA_REASON_CESSATION, now, n, e);
}

/* Revocation only writes the store: the next CRL (signed by the process
 * that holds the key) lists it. */
int lca_certdb_revoke(struct lca_certdb *db, const char *serial, int reason, int64_t when,
		      struct lca_err *e)
{
	struct lca tmp = { .db = db };
	return lca_revoke(&tmp, serial, reason, when, e);
}

int lca_certdb_revoke_overlapping(struct lca_certdb *db, enum lca_kind kind, uint32_t first,
				  uint32_t last, int reason, int64_t when, unsigned *n,
				  struct lca_err *e)
{
	struct lca tmp = { .db = db };
	return lca_revoke_overlapping(&tmp, kind, first, last, reason, when, n, e);
}

int lca_db_revoke(sqlite3 *db, const char *serial, int reason, int64_t when, struct lca_err *e)
{
	struct lca_certdb *d = lcap_sq_get(db, e);
	return d ? lcap_sq_put(d, lca_certdb_revoke(d, serial, reason, when, e)) : -ENOMEM;
}

int lca_db_revoke_overlapping(sqlite3 *db, enum lca_kind kind, uint32_t first, uint32_t last,
			      int reason, int64_t when, unsigned *n, struct lca_err *e)
{
	struct lca_certdb *d = lcap_sq_get(db, e);
	return d ? lcap_sq_put(d, lca_certdb_revoke_overlapping(d, kind, first, last, reason, when,
								n, e))
		 : -ENOMEM;
}
