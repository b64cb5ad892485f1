// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Remote-side verifier (verify.h): CRLs, the newest per signer, the
 * high-water state, reading CRL files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include "lca.h"
#include "verify.h"
#include "verify_priv.h"

static ASN1_INTEGER *crl_num(X509_CRL *c)
{
	return X509_CRL_get_ext_d2i(c, NID_crl_number, NULL, NULL);
}

static int crl_hash(X509_CRL *c, unsigned char h[SHA256_DIGEST_LENGTH])
{
	unsigned char *der = NULL;
	int n = i2d_X509_CRL(c, &der);
	if (n <= 0)
		return -EIO;
	SHA256(der, (size_t)n, h);
	OPENSSL_free(der);
	return 0;
}

static int64_t crl_time(X509_CRL *c)
{
	const ASN1_TIME *t = X509_CRL_get0_lastUpdate(c);
	struct tm tm;
	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return INT64_MIN;
	return (int64_t)timegm(&tm);
}

int lca_crl_newest(STACK_OF(X509_CRL) *sk, X509_CRL **best, struct lca_err *e)
{
	ASN1_INTEGER *bn = NULL;
	int err = 0;
	*best = NULL;
	for (int i = 0; !err && i < sk_X509_CRL_num(sk); i++) {
		X509_CRL *c = sk_X509_CRL_value(sk, i);
		ASN1_INTEGER *n = crl_num(c);
		if (!n) {
			err = lca_fail(e, -EINVAL, "a CRL without a CRL number (cannot tell its age)");
			break;
		}
		int d = bn ? ASN1_INTEGER_cmp(n, bn) : 1;
		if (d < 0 && crl_time(c) > crl_time(*best))
			err = lca_fail(e, -EINVAL, "CRL number %ld was issued after CRL number %ld "
				       "(thisUpdate goes back)", ASN1_INTEGER_get(n), ASN1_INTEGER_get(bn));
		if (d == 0) {
			unsigned char h1[SHA256_DIGEST_LENGTH], h2[SHA256_DIGEST_LENGTH];
			if (crl_hash(c, h1) || crl_hash(*best, h2))
				err = lca_fail(e, -EIO, "cannot encode a CRL");
			else if (memcmp(h1, h2, sizeof(h1)))
				err = lca_fail(e, -EINVAL, "two different CRLs carry the same CRL "
					       "number %ld", ASN1_INTEGER_get(n));
		} else if (d > 0) {
			if (*best && crl_time(c) < crl_time(*best))
				err = lca_fail(e, -EINVAL, "CRL number %ld was issued before CRL number "
					       "%ld (thisUpdate goes back)", ASN1_INTEGER_get(n),
					       ASN1_INTEGER_get(bn));
			ASN1_INTEGER_free(bn);
			bn = n;
			n = NULL;
			*best = c;
		}
		ASN1_INTEGER_free(n);
	}
	ASN1_INTEGER_free(bn);
	if (err)
		*best = NULL;
	return err;
}

const char *lca_crl_state_default(void)
{
	static char path[4096];
	if (geteuid() == 0)
		return "/var/lib/xdnat/crl-seen";
	const char *x = getenv("XDG_STATE_HOME"), *h = getenv("HOME");
	if (x && x[0] == '/')
		snprintf(path, sizeof(path), "%s/xdnat/crl-seen", x);
	else if (h && h[0] == '/')
		snprintf(path, sizeof(path), "%s/.local/state/xdnat/crl-seen", h);
	else
		return NULL;
	return path;
}

#define HW_MAX 4096     /* signers remembered; then the stalest is forgotten */
struct hw_ent {
	char key[65];          /* SHA-256 of the signer's public key, hex */
	char num[80];          /* CRL number, hex */
	long long this_update;
	char hash[65];         /* SHA-256 of the CRL's DER, hex */
};

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	out[2 * n] = 0;
}

/* Compare two hex CRL numbers (no leading zeros, as BN_bn2hex writes them). */
static int num_cmp(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la != lb)
		return la < lb ? -1 : 1;
	return strcasecmp(a, b);
}

/* mkdir -p of path's directory, new directories 0700. */
static int mkdir_parent(const char *path)
{
	char d[4096];
	snprintf(d, sizeof(d), "%s", path);
	char *s = strrchr(d, '/');
	if (!s || s == d)
		return 0;
	*s = 0;
	for (char *p = d + 1; ; p++) {
		bool last = !*p;
		if (*p == '/' || last) {
			*p = 0;
			if (mkdir(d, 0700) && errno != EEXIST)
				return -errno;
			if (last)
				return 0;
			*p = '/';
		}
	}
}

/* The entry for crl (signed by key) as the state file records it. */
static int hw_current(X509_CRL *crl, EVP_PKEY *key, struct hw_ent *cur, struct lca_err *e)
{
	unsigned char kh[SHA256_DIGEST_LENGTH], ch[SHA256_DIGEST_LENGTH], *kder = NULL;
	int klen;
	if (!key || X509_CRL_verify(crl, key) != 1)
		return lca_fail(e, -EINVAL, "the CRL's signature does not verify");
	ASN1_INTEGER *ai = crl_num(crl);
	BIGNUM *bn = ai ? ASN1_INTEGER_to_BN(ai, NULL) : NULL;
	char *nh = bn ? BN_bn2hex(bn) : NULL;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	if (!nh || nh[0] == '-' || strlen(nh) >= sizeof(cur->num)) {
		OPENSSL_free(nh);
		return lca_fail(e, -EINVAL, "a CRL without a usable CRL number");
	}
	snprintf(cur->num, sizeof(cur->num), "%s", nh);
	OPENSSL_free(nh);
	if ((klen = i2d_PUBKEY(key, &kder)) <= 0 || crl_hash(crl, ch)) {
		OPENSSL_free(kder);
		return lca_fail(e, -EIO, "cannot encode the CRL or its signer's key");
	}
	SHA256(kder, (size_t)klen, kh);
	OPENSSL_free(kder);
	hex(kh, sizeof(kh), cur->key);
	hex(ch, sizeof(ch), cur->hash);
	cur->this_update = crl_time(crl);
	return 0;
}

/* flock STATE.lock (created, with the state's directory, when recording;
 * when only checking, a missing lock file means no state: *lockfd -1). */
static int hw_lock(const char *state, bool record, int *lockfd, struct lca_err *e)
{
	char lockp[4200];
	*lockfd = -1;
	if (strlen(state) > 4000)
		return lca_fail(e, -EINVAL, "state path too long");
	snprintf(lockp, sizeof(lockp), "%s.lock", state);
	if (record && mkdir_parent(state))
		return lca_fail(e, -EIO, "%s: cannot create its directory: %s", state, strerror(errno));
	int fd = open(lockp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && (record || errno != ENOENT))
		return lca_fail(e, -EIO, "%s: %s", lockp, strerror(errno));
	if (fd >= 0 && flock(fd, LOCK_EX)) {
		int err = lca_fail(e, -EIO, "%s: flock: %s", lockp, strerror(errno));
		close(fd);
		return err;
	}
	*lockfd = fd;
	return 0;
}

/* The state file into tab (*n entries; a missing file is empty); *found:
 * the index of the entry of signer key, or -1. */
static int hw_read(const char *state, struct hw_ent *tab, int *n, const char *key, int *found,
		   struct lca_err *e)
{
	int err = 0, fd = open(state, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (fd >= 0 && !f)
		close(fd);
	if (!f && errno != ENOENT)
		return lca_fail(e, -EIO, "%s: %s", state, strerror(errno));
	char line[512];
	*found = -1;
	while (f && fgets(line, sizeof(line), f)) {
		struct hw_ent *t = &tab[*n];
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (*n >= HW_MAX || sscanf(line, "%64s %79s %lld %64s", t->key, t->num,
					   &t->this_update, t->hash) != 4) {
			err = lca_fail(e, -EIO, "%s: line %d is not 'KEY NUMBER THISUPDATE HASH'",
				       state, *n + 1);
			break;
		}
		if (!strcmp(t->key, key))
			*found = *n;
		(*n)++;
	}
	if (f)
		fclose(f);
	return err;
}

/* cur against s, the entry recorded for its signer: -ESTALE if it goes
 * back; *same when it is that very CRL. */
static int hw_check(const struct hw_ent *cur, const struct hw_ent *s, const char *issuer,
		    const char *state, bool *same, struct lca_err *e)
{
	int d = num_cmp(cur->num, s->num);
	*same = d == 0;
	if (d < 0)
		return lca_fail(e, -ESTALE, "CRL number 0x%s of '%s' is older than CRL 0x%s seen "
				"before (state %s): refusing to go back", cur->num, issuer, s->num,
				state);
	if (d == 0 && strcmp(cur->hash, s->hash))
		return lca_fail(e, -ESTALE, "CRL number 0x%s of '%s' differs from the CRL with "
				"that number seen before (state %s)", cur->num, issuer, state);
	if (cur->this_update < s->this_update)
		return lca_fail(e, -ESTALE, "CRL 0x%s of '%s' was issued (thisUpdate %lld) before "
				"the CRL seen before (%lld, state %s)", cur->num, issuer,
				cur->this_update, s->this_update, state);
	return 0;
}

/* Write the n entries of tab atomically: temporary file, fsync, rename. */
static int hw_write(const char *state, const struct hw_ent *tab, int n, struct lca_err *e)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", state);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		int err = lca_fail(e, -EIO, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err;
	}
	fprintf(f, "# xdnat CRL high-water: signer-key-sha256 crl-number-hex thisUpdate "
		"crl-sha256\n");
	for (int i = 0; i < n; i++)
		fprintf(f, "%s %s %lld %s\n", tab[i].key, tab[i].num, tab[i].this_update, tab[i].hash);
	if (fflush(f) || fsync(fileno(f))) {
		fclose(f);
		unlink(tmp);
		return lca_fail(e, -EIO, "%s: %s", tmp, strerror(errno));
	}
	if (fclose(f) || rename(tmp, state)) {
		unlink(tmp);
		return lca_fail(e, -EIO, "%s: %s", state, strerror(errno));
	}
	return 0;
}

int lca_crl_highwater(const char *state, X509_CRL *crl, EVP_PKEY *key, bool record,
		      struct lca_err *e)
{
	struct hw_ent cur = { 0 }, *tab = NULL;
	int err, n = 0, found = -1, lockfd = -1;
	char issuer[256];
	bool same = false;

	if ((err = hw_current(crl, key, &cur, e)))
		return err;
	lca_dn_str(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
	if ((err = hw_lock(state, record, &lockfd, e)))
		return err;
	if (!(tab = calloc(HW_MAX + 1, sizeof(*tab)))) {
		err = lca_fail(e, -ENOMEM, "out of memory");
		goto out;
	}
	if ((err = hw_read(state, tab, &n, cur.key, &found, e)))
		goto out;
	if (found >= 0) {
		err = hw_check(&cur, &tab[found], issuer, state, &same, e);
		if (err || same || !record)
			goto out;
		tab[found] = cur;
	} else {
		if (!record)
			goto out;
		if (n >= HW_MAX) {
			/* full: forget the signer whose last CRL is the oldest */
			int o = 0;
			for (int i = 1; i < n; i++)
				if (tab[i].this_update < tab[o].this_update)
					o = i;
			tab[o] = cur;
		} else {
			tab[n++] = cur;
		}
	}
	err = hw_write(state, tab, n, e);
out:
	free(tab);
	if (lockfd >= 0)
		close(lockfd);
	return err;
}

/* verify_priv.h */
int lca_pick_crls(const struct lca_verify_req *q, STACK_OF(X509_CRL) **out,
		  struct lca_verify_res *r)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	STACK_OF(X509_CRL) *res = sk_X509_CRL_new_null(), *grp = NULL;
	struct lca_err e = { { 0 } };
	int ret = -ENOMEM;
	*out = NULL;
	if (!certs || !res)
		goto out;
	for (int i = 0; i < sk_X509_num(q->anchors); i++)
		if (!sk_X509_push(certs, sk_X509_value(q->anchors, i)))
			goto out;
	for (int i = 0; i < sk_X509_num(q->untrusted); i++) {
		X509 *u = sk_X509_value(q->untrusted, i);
		bool dup = false;
		for (int k = 0; k < sk_X509_num(certs) && !dup; k++)
			dup = !X509_cmp(u, sk_X509_value(certs, k));   /* e.g. the root in both */
		if (!dup && !sk_X509_push(certs, u))
			goto out;
	}
	for (int k = 0; k < sk_X509_num(certs); k++) {
		X509 *s = sk_X509_value(certs, k);
		EVP_PKEY *key = X509_get0_pubkey(s);
		sk_X509_CRL_free(grp);
		if (!(grp = sk_X509_CRL_new_null()))
			goto out;
		for (int i = 0; key && i < sk_X509_CRL_num(q->crls); i++) {
			X509_CRL *c = sk_X509_CRL_value(q->crls, i);
			if (X509_NAME_cmp(X509_CRL_get_issuer(c), X509_get_subject_name(s)))
				continue;
			if (X509_CRL_verify(c, key) != 1)
				continue;   /* another key of the same name; OpenSSL decides */
			if (!sk_X509_CRL_push(grp, c))
				goto out;
		}
		ERR_clear_error();
		if (sk_X509_CRL_num(grp) == 0)
			continue;
		X509_CRL *best;
		if (lca_crl_newest(grp, &best, &e)) {
			ret = lca_verdict(r, LCA_V_CRL, "%s", e.msg);
			goto out;
		}
		int hw = q->crl_state ? lca_crl_highwater(q->crl_state, best, key, false, &e) : 0;
		if (hw == -ESTALE || hw == -EINVAL) {
			ret = lca_verdict(r, LCA_V_CRL, "%s", e.msg);
			goto out;
		} else if (hw) {
			snprintf(r->reason, sizeof(r->reason), "%s", e.msg);
			ret = hw;
			goto out;
		}
		if (!sk_X509_CRL_push(res, best))
			goto out;
		X509_CRL_up_ref(best);
	}
	*out = res;
	res = NULL;
	ret = 0;
out:
	if (ret == -ENOMEM)
		snprintf(r->reason, sizeof(r->reason), "out of memory");
	sk_X509_CRL_pop_free(res, X509_CRL_free);
	sk_X509_CRL_free(grp);
	sk_X509_free(certs);
	return ret;
}

/* verify_priv.h: after the chain verified, record the CRLs whose signer is
 * in it. */
int lca_record_crls(const struct lca_verify_req *q, STACK_OF(X509_CRL) *crls,
		    STACK_OF(X509) *chain, struct lca_verify_res *r)
{
	struct lca_err e = { { 0 } };
	for (int i = 0; q->crl_state && i < sk_X509_CRL_num(crls); i++) {
		X509_CRL *c = sk_X509_CRL_value(crls, i);
		for (int k = 0; k < sk_X509_num(chain); k++) {
			X509 *s = sk_X509_value(chain, k);
			if (X509_NAME_cmp(X509_CRL_get_issuer(c), X509_get_subject_name(s)) ||
			    X509_CRL_verify(c, X509_get0_pubkey(s)) != 1)
				continue;
			int err = lca_crl_highwater(q->crl_state, c, X509_get0_pubkey(s), true, &e);
			if (err == -ESTALE)
				return lca_verdict(r, LCA_V_CRL, "%s", e.msg);
			if (err) {
				snprintf(r->reason, sizeof(r->reason), "%s", e.msg);
				return err;
			}
			break;
		}
	}
	ERR_clear_error();
	return 0;
}
STACK_OF(X509_CRL) *lca_read_crls(const char *path, struct lca_err *e)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	if (lca_read_file(path, 16 << 20, &buf, &len, e))
		return NULL;
	STACK_OF(X509_CRL) *sk = sk_X509_CRL_new_null();
	int bad = !sk;
	if (!bad && len > 10 && !memcmp(buf, "-----BEGIN", 10)) {
		BIO *b = BIO_new_mem_buf(buf, (int)len);
		X509_CRL *crl;
		while (b && (crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)))
			if (!sk_X509_CRL_push(sk, crl)) {
				X509_CRL_free(crl);
				bad = 1;
				break;
			}
		BIO_free(b);
		if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE)
			ERR_clear_error();
	} else if (!bad) {
		const unsigned char *p = buf;
		X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
		if (!crl || (size_t)(p - buf) != len || !sk_X509_CRL_push(sk, crl)) {
			X509_CRL_free(crl);
			bad = 1;
		}
	}
	free(buf);
	if (bad || sk_X509_CRL_num(sk) == 0 || ERR_peek_error()) {
		lca_fail(e, -EINVAL, "%s: not a PEM or DER CRL", path);
		sk_X509_CRL_pop_free(sk, X509_CRL_free);
		return NULL;
	}
	return sk;
}
