// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xdnat-ca: operator CLI of the Local CA (docs/LCA.md). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "lca.h"

static const char usage_text[] =
"NAME\n"
"    xdnat-ca - the xdnat Local Certificate Authority (LCA), operator tool\n"
"\n"
"SYNOPSIS\n"
"    xdnat-ca init-root  -k ROOT.key -o ROOT.crt [-s DN] [-d DAYS] [-t KEYTYPE]\n"
"    xdnat-ca init-lca   -g G -k LCA.key (-R ROOT.crt -K ROOT.key -o LCA.crt [--crl-url URL]\n"
"                        | -r LCA.csr) [--domain D] [--dn DN] [-d DAYS] [-t KEYTYPE]\n"
"    xdnat-ca import-lca -k LCA.key -i LCA.crt [-C CHAIN.pem] [-o INSTALLED.crt]\n"
"    xdnat-ca issue      CA-OPTS --csr HOST.csr --host-id ID --lan A [--user U]\n"
"                        [--ports LIST] [--spis LIST] [--lease SECS] [--not-before T]\n"
"                        (--crl-url URL | --no-crl-url) -o HOST.crt\n"
"    xdnat-ca revoke     CA-OPTS (SERIAL... | --host ID) [--reason R] [--now T]\n"
"    xdnat-ca list       --db DB [--host ID] [-j] [--now T]\n"
"    xdnat-ca show       --db DB SERIAL          (PEM of a stored certificate)\n"
"    xdnat-ca crl        CA-OPTS -o CRL [--der] [--period SECS] [--now T]\n"
"    xdnat-ca revoke-lca --db ROOT.db -R ROOT.crt -i LCA.crt [--reason R] [--now T]\n"
"    xdnat-ca root-crl   --db ROOT.db -R ROOT.crt -K ROOT.key -o CRL [--der] [--period S]\n"
"                        [--now T]\n"
"    xdnat-ca bench      [-n N] [-t KEYTYPE]\n"
"    CA-OPTS = --db DB -k LCA.key -c LCA.crt [-C CHAIN.pem]\n"
"\n"
"DESCRIPTION\n"
"    The router is a Local CA: its certificate, issued by a higher-level CA,\n"
"    carries RFC 5280 name constraints confining it to its global address G\n"
"    (iPAddress G/32; URI, e-mail and DNS names under a domain that defaults\n"
"    to G's in-addr.arpa name; directoryName under 'O=xdnat, OU=G'), marked\n"
"    non-critical so strongSwan 5.9.8 can parse them (docs/LCA.md, profile).\n"
"    It issues each host a certificate for the host's own key (from a CSR):\n"
"    identity G + LAN address (DNS name A-B-C-D.DOMAIN, CN=LAN@G) or G + user\n"
"    (e-mail USER@DOMAIN), G as iPAddress SAN, notBefore 5 minutes before the\n"
"    lease (clock skew), and the allocated port and SPI ranges in the\n"
"    non-critical extension " LCA_OID_ALLOCATION ".\n"
"    Issued certificates, revocations and the CRL number live in the ca_*\n"
"    tables of an SQLite database (it may be the control plane's).\n"
"\n"
"COMMANDS\n"
"    init-root   Create a self-signed root CA (demo and tests; production uses\n"
"                the operator's CA).  Never overwrites an existing key file.\n"
"    init-lca    Create the LCA key, then either issue the LCA certificate from\n"
"                the demo root (-R/-K/-o; --crl-url: where the root's CRL is\n"
"                published, written as the LCA's CRL distribution point) or\n"
"                write a CSR (-r) for the operator's CA; the CSR requests\n"
"                exactly the extensions the operator's CA must copy.\n"
"    import-lca  Check a certificate the operator's CA issued for the LCA key\n"
"                against the whole profile and name what is missing: key\n"
"                match; basicConstraints critical CA:TRUE pathlen:0; keyUsage\n"
"                critical, exactly keyCertSign+cRLSign; permitted name\n"
"                constraints iPAddress G/32 and URI, DNS, e-mail of one domain\n"
"                and a directoryName, nothing wider; chain up to a self-signed\n"
"                root in -C; then copy it to -o.\n"
"    issue       Issue a host certificate from a CSR (PEM or DER; EC P-256/P-384,\n"
"                Ed25519 or RSA 2048-8192; signature checked; the CSR's subject\n"
"                and extensions are not copied).  Prints the serial.\n"
"    revoke      Revoke by serial, or every live certificate of --host.\n"
"    list        Table (or JSON with -j) of stored certificates and status.\n"
"    show        The stored certificate with that serial, PEM, on stdout.\n"
"    crl         Write a CRL signed by the LCA (PEM, or DER with --der).  CRL\n"
"                numbers and thisUpdate strictly increase: a second CRL in the\n"
"                same second gets thisUpdate + 1 s (written once that time has\n"
"                come); --now more than 60 s before the last CRL's thisUpdate\n"
"                is refused.\n"
"    revoke-lca  The demo root revokes an LCA certificate it issued (recorded\n"
"                in the root's database, listed by its next root-crl).\n"
"    root-crl    Write the demo root's CRL (publish it at the LCA's --crl-url).\n"
"    bench       Issuance rate of lca_issue against raw OpenSSL signing of a\n"
"                certificate of the same shape (in-memory CA, temporary DB).\n"
"\n"
"OPTIONS\n"
"    -k, --key FILE      private key (PEM); created by init-root/init-lca\n"
"    -c, --cert FILE     LCA certificate (PEM)\n"
"    -C, --chain FILE    certificates above the LCA, up to the root (PEM)\n"
"    -o, --out FILE      output file\n"
"    -s, --subject DN    root subject, default 'O=xdnat demo, CN=xdnat demo root'\n"
"    -d, --days N        validity of root/LCA certificates (default 3650/1825)\n"
"    -t, --key-type T    p256 (default), p384, ed25519, rsa3072\n"
"    -g, --global A      the global address G (IPv4)\n"
"        --domain D      namespace domain (default: G's in-addr.arpa name)\n"
"        --dn DN         DN subtree, 'ATTR=v, ATTR=v' (default 'O=xdnat, OU=G')\n"
"    -R, --root-cert F   issuing root certificate (init-lca)\n"
"    -K, --root-key F    issuing root key (init-lca)\n"
"    -r, --csr-out F     write the LCA CSR here (init-lca)\n"
"    -i, --in FILE       certificate to import (import-lca)\n"
"        --db FILE       SQLite database (created 0600 if missing)\n"
"        --csr FILE      host CSR, '-' for stdin (issue)\n"
"        --host-id ID    the control plane's name for the host (issue, revoke)\n"
"        --host ID       same, for revoke and list\n"
"        --lan A         host LAN address (issue)\n"
"        --user U        identity U@DOMAIN instead of the LAN address (issue)\n"
"        --ports LIST    e.g. 20000-20999,30000 (issue)\n"
"        --spis LIST     e.g. 0xa1000000-0xa1000fff (issue)\n"
"        --lease SECS    validity from --not-before (default 3600)\n"
"        --not-before T  Unix seconds (default now)\n"
"        --crl-url URL   CRL distribution point written into the certificate\n"
"        --no-crl-url    issue without one (verifiers then cannot find the CRL)\n"
"        --reason R      unspecified, keyCompromise, affiliationChanged,\n"
"                        superseded, cessationOfOperation (default)\n"
"        --period SECS   CRL nextUpdate - thisUpdate (default 86400)\n"
"        --der           DER output (crl)\n"
"        --now T         Unix seconds to act at (tests)\n"
"    -j, --json          JSON output (list)\n"
"    -n, --count N       certificates per bench run (default 2000)\n"
"        --version       print the program's name and version, exit\n"
"    -h, --help          this text\n"
"\n"
"EXIT STATUS\n"
"    0 success, 1 failure (reason on stderr), 2 usage error.\n"
"\n"
"FILES\n"
"    Private keys must be mode 0600 or 0400: a key readable by group or\n"
"    others is refused.\n"
"\n"
"EXAMPLES\n"
"    xdnat-ca init-root -k root.key -o root.crt\n"
"    xdnat-ca init-lca -g 203.0.113.7 -k lca.key -R root.crt -K root.key -o lca.crt\n"
"    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \\\n"
"        -keyout h1.key -subj /CN=h1 -out h1.csr        # on the host\n"
"    xdnat-ca issue --db ca.db -k lca.key -c lca.crt --csr h1.csr --host-id h1 \\\n"
"        --lan 10.77.0.11 --ports 20000-20999 --spis 0xa1000000-0xa1000fff \\\n"
"        --crl-url http://203.0.113.7/lca.crl -o h1.crt\n"
"    openssl verify -CAfile root.crt -untrusted lca.crt h1.crt\n"
"    xdnat-ca revoke-lca --db root.db -R root.crt -i lca.crt --reason keyCompromise\n"
"    xdnat-ca root-crl --db root.db -R root.crt -K root.key -o root.crl\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

static int die_usage(const char *msg)
{
	fprintf(stderr, "xdnat-ca: %s (see xdnat-ca --help)\n", msg);
	return 2;
}

struct opts {
	const char *key, *cert, *chain, *out, *subject, *global, *domain, *dn, *root_cert,
		*root_key, *csr_out, *in, *db, *csr, *host_id, *lan, *user, *ports, *spis, *crl_url,
		*reason;
	long days;
	enum lca_keytype kt;
	int64_t lease, not_before, now, period, count;
	bool json, der, no_crl_url;
};

static int parse_i64(const char *s, int64_t min, int64_t max, int64_t *v)
{
	char *end;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (errno || end == s || *end || x < min || x > max)
		return -EINVAL;
	*v = x;
	return 0;
}

static int fail(const struct lca_err *e)
{
	fprintf(stderr, "xdnat-ca: %s\n", e->msg);
	return 1;
}

static sqlite3 *open_db(const char *path, struct lca_err *e)
{
	sqlite3 *db = NULL;
	if (!path) {
		lca_fail(e, -EINVAL, "--db is required");
		return NULL;
	}
	/* The store holds every certificate and revocation: owner only.  SQLite
	 * creates -wal and -shm with the database file's mode. */
	mode_t old = umask(077);
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(db, 5000);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", NULL, NULL,
				  NULL);
	umask(old);
	if (rc != SQLITE_OK) {
		lca_fail(e, -EIO, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

static int open_ca(const struct opts *o, sqlite3 **db, struct lca **ca, struct lca_err *e)
{
	if (!o->key || !o->cert)
		return lca_fail(e, -EINVAL, "-k LCA.key and -c LCA.crt are required");
	if (!(*db = open_db(o->db, e)))
		return -EIO;
	struct lca_config cfg = { .key_path = o->key, .cert_path = o->cert, .chain_path = o->chain,
				  .crl_url = o->crl_url, .crl_period_s = (uint32_t)o->period };
	int err = lca_open(&cfg, *db, ca, e);
	if (err) {
		sqlite3_close(*db);
		*db = NULL;
	}
	return err;
}

static int cmd_init_root(const struct opts *o)
{
	struct lca_err e;
	if (!o->key || !o->out)
		return die_usage("init-root needs -k KEY and -o CERT");
	int64_t now = time(NULL);
	EVP_PKEY *k = lca_keygen(o->kt, &e);
	X509 *x = NULL;
	int rc = 1;
	if (k && !lca_write_key(o->key, k, &e) &&
	    (x = lca_root_create(k, o->subject ? o->subject : "O=xdnat demo, CN=xdnat demo root",
				 now - 300, now + (o->days ? o->days : 3650) * 86400L, &e)) &&
	    !lca_write_cert(o->out, x, &e))
		rc = 0;
	else
		fail(&e);
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

static int cmd_init_lca(const struct opts *o)
{
	struct lca_err e;
	struct in_addr g;
	if (!o->global || inet_pton(AF_INET, o->global, &g) != 1)
		return die_usage("init-lca needs -g G (IPv4 address)");
	if (!o->key || (!o->csr_out && (!o->root_cert || !o->root_key || !o->out)) ||
	    (o->csr_out && (o->root_cert || o->root_key)))
		return die_usage("init-lca needs -k KEY and either -R ROOT.crt -K ROOT.key -o LCA.crt "
				 "or -r LCA.csr");
	if (o->csr_out && o->crl_url)
		return die_usage("--crl-url goes with -R/-K (with -r the operator's CA sets it)");
	struct lca_ns ns;
	if (lca_ns_init(&ns, g.s_addr, o->domain, o->dn, &e))
		return fail(&e);
	int64_t now = time(NULL);
	EVP_PKEY *k = NULL, *rk = NULL;
	X509_REQ *req = NULL;
	X509 *root = NULL, *x = NULL;
	int rc = 1;
	/* read the root first: a typo there must not leave a new key behind */
	if (!o->csr_out && (!(root = lca_read_cert(o->root_cert, &e)) ||
			    !(rk = lca_read_key(o->root_key, &e))))
		goto out;
	if (!(k = lca_keygen(o->kt, &e)) || !(req = lca_csr_create(k, &ns, &e)) ||
	    lca_write_key(o->key, k, &e))
		goto out;
	if (o->csr_out) {
		if (lca_write_csr(o->csr_out, req, &e))
			goto out;
		printf("wrote %s: have the operator CA sign it (copying the requested extensions "
		       "as they are, plus its CRL distribution point), then: xdnat-ca import-lca "
		       "-k %s -i CERT -C CHAIN\n", o->csr_out, o->key);
		rc = 0;
		goto out;
	}
	if (!(x = lca_cert_sign_dp(req, root, rk, &ns, o->crl_url, now - 300,
				   now + (o->days ? o->days : 1825) * 86400L, &e)) ||
	    lca_write_cert(o->out, x, &e))
		goto out;
	printf("LCA for %s, namespace %s\n", o->global, ns.domain);
	rc = 0;
out:
	if (rc)
		fail(&e);
	lca_ns_release(&ns);
	X509_free(x);
	X509_free(root);
	X509_REQ_free(req);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(k);
	return rc;
}

static int cmd_import_lca(const struct opts *o)
{
	struct lca_err e;
	if (!o->key || !o->in)
		return die_usage("import-lca needs -k KEY -i CERT");
	EVP_PKEY *k = lca_read_key(o->key, &e);
	X509 *x = k ? lca_read_cert(o->in, &e) : NULL;
	STACK_OF(X509) *chain = NULL;
	int rc = 1;
	struct lca_ns ns = { 0 };
	if (x && (!o->chain || (chain = lca_read_certs(o->chain, &e))) &&
	    !lca_cert_check(x, k, chain, 0, &e) && !lca_ns_from_cert(x, &ns, &e) &&
	    (!o->out || !lca_write_cert(o->out, x, &e))) {
		char g[INET_ADDRSTRLEN], dn[256];
		struct in_addr a = { .s_addr = ns.g_be };
		inet_ntop(AF_INET, &a, g, sizeof(g));
		lca_dn_str(ns.dn, dn, sizeof(dn));
		printf("LCA certificate accepted: global %s, domain %s, DN subtree '%s'%s\n", g,
		       ns.domain, dn[0] ? dn : "(none)", chain ? ", chain verified" : "");
		int crit = 0;
		NAME_CONSTRAINTS_free(X509_get_ext_d2i(x, NID_name_constraints, &crit, NULL));
		if (crit)
			printf("note: critical name constraints: strongSwan before 5.9.12 cannot parse "
			       "this certificate (docs/LCA.md, profile)\n");
		if (X509_get_ext_by_NID(x, NID_crl_distribution_points, -1) < 0)
			printf("note: no CRL distribution point: verifiers cannot learn that the "
			       "issuing CA revoked this LCA\n");
		rc = 0;
	} else {
		fail(&e);
	}
	lca_ns_release(&ns);
	sk_X509_pop_free(chain, X509_free);
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

static int cmd_issue(const struct opts *o)
{
	struct lca_err e;
	struct in_addr lan;
	struct lca_range ports[LCA_MAX_RANGES], spis[LCA_MAX_RANGES];
	unsigned np = 0, ns = 0;
	if (!o->csr || !o->host_id || !o->lan || !o->out)
		return die_usage("issue needs --csr, --host-id, --lan and -o");
	if (!o->crl_url == !o->no_crl_url)
		return die_usage("issue needs --crl-url URL (where xdnatd publishes the CRL) or, "
				 "deliberately, --no-crl-url");
	if (inet_pton(AF_INET, o->lan, &lan) != 1)
		return die_usage("--lan: not an IPv4 address");
	if (o->ports && lca_parse_ranges(o->ports, 0, 65535, ports, &np, &e))
		return fail(&e);
	if (o->spis && lca_parse_ranges(o->spis, LCA_SPI_MIN, UINT32_MAX, spis, &ns, &e))
		return fail(&e);
	unsigned char *csr = NULL;
	size_t csr_len = 0;
	if (lca_read_file(o->csr, LCA_CSR_MAX, &csr, &csr_len, &e))
		return fail(&e);
	sqlite3 *db = NULL;
	struct lca *ca = NULL;
	struct lca_issued out = { 0 };
	int rc = 1;
	int64_t nb = o->not_before ? o->not_before : time(NULL);
	struct lca_issue_req rq = {
		.csr = csr, .csr_len = csr_len, .host_id = o->host_id, .lan_be = lan.s_addr,
		.user = o->user, .ports = ports, .n_ports = np, .spis = spis, .n_spis = ns,
		.not_before = nb, .not_after = nb + (o->lease ? o->lease : 3600),
	};
	if (open_ca(o, &db, &ca, &e) || lca_issue(ca, &rq, &out, &e)) {
		fail(&e);
		goto done;
	}
	const unsigned char *p = out.der;
	X509 *x = d2i_X509(NULL, &p, (long)out.der_len);
	if (!x || lca_write_cert(o->out, x, &e)) {
		if (!x)
			lca_fail(&e, -EIO, "cannot re-read the issued certificate");
		fail(&e);
		fprintf(stderr, "xdnat-ca: the certificate %s is recorded; fetch it with "
			"'xdnat-ca show --db %s %s'\n", out.serial, o->db, out.serial);
	} else {
		printf("serial %s identity %s\n", out.serial, out.identity);
		rc = 0;
	}
	X509_free(x);
done:
	lca_issued_free(&out);
	lca_close(ca);
	sqlite3_close(db);
	free(csr);
	return rc;
}

static int cmd_revoke(const struct opts *o, int argc, char **argv)
{
	struct lca_err e;
	int reason = LCA_REASON_CESSATION;
	if (o->reason && lca_reason_parse(o->reason, &reason))
		return die_usage("--reason: unknown reason");
	if ((optind >= argc) == !o->host_id)
		return die_usage("revoke needs serial numbers or --host ID (not both)");
	sqlite3 *db = NULL;
	struct lca *ca = NULL;
	if (open_ca(o, &db, &ca, &e))
		return fail(&e);
	int64_t now = o->now ? o->now : time(NULL);
	int rc = 0;
	if (o->host_id) {
		unsigned n = 0;
		if (lca_revoke_host(ca, o->host_id, reason, now, &n, &e))
			rc = fail(&e);
		else
			printf("revoked %u certificate(s) of %s\n", n, o->host_id);
	}
	for (int i = optind; i < argc; i++) {
		int err = lca_revoke(ca, argv[i], reason, now, &e);
		if (err == -EALREADY)
			printf("%s: already revoked\n", argv[i]);
		else if (err)
			rc = fail(&e);
		else
			printf("revoked %s (%s)\n", argv[i], lca_reason_name(reason));
	}
	lca_close(ca);
	sqlite3_close(db);
	return rc;
}

static int cmd_list(const struct opts *o)
{
	struct lca_err e;
	sqlite3 *db = open_db(o->db, &e);
	if (!db)
		return fail(&e);
	int rc = lca_store_init(db, &e) ||
		 lca_list_print(db, o->host_id, o->json, stdout, o->now ? o->now : time(NULL), &e);
	if (rc)
		fail(&e);
	sqlite3_close(db);
	return rc;
}

static int cb_show(void *arg, const struct lca_record *r)
{
	(void)arg;
	const unsigned char *p = r->der;
	X509 *x = d2i_X509(NULL, &p, (long)r->der_len);
	int ok = x && PEM_write_X509(stdout, x);
	X509_free(x);
	return ok ? 0 : -EIO;
}

static int cmd_show(const struct opts *o, int argc, char **argv)
{
	struct lca_err e;
	if (optind != argc - 1)
		return die_usage("show needs exactly one serial");
	sqlite3 *db = open_db(o->db, &e);
	if (!db)
		return fail(&e);
	int rc = lca_store_init(db, &e) || lca_get(db, argv[optind], cb_show, NULL, &e);
	if (rc)
		fail(&e);
	sqlite3_close(db);
	return rc;
}

/* A CRL's thisUpdate may be a second or two ahead when CRLs come in the
 * same second (lca_crl): publish it only once it is valid. */
static void wait_valid(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
	for (int i = 0; crl && i < 100 && X509_cmp_current_time(X509_CRL_get0_lastUpdate(crl)) > 0; i++)
		usleep(50000);
	X509_CRL_free(crl);
}

static int write_crl(const struct opts *o, const unsigned char *der, size_t len)
{
	if (!o->now)
		wait_valid(der, len);
	FILE *f = fopen(o->out, "we");
	if (!f) {
		fprintf(stderr, "xdnat-ca: %s: %s\n", o->out, strerror(errno));
		return 1;
	}
	int ok;
	if (o->der) {
		ok = fwrite(der, 1, len, f) == len;
	} else {
		const unsigned char *p = der;
		X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
		ok = crl && PEM_write_X509_CRL(f, crl);
		X509_CRL_free(crl);
	}
	if (fclose(f) || !ok) {
		fprintf(stderr, "xdnat-ca: %s: write failed\n", o->out);
		return 1;
	}
	return 0;
}

static int cmd_crl(const struct opts *o)
{
	struct lca_err e;
	if (!o->out)
		return die_usage("crl needs -o FILE");
	sqlite3 *db = NULL;
	struct lca *ca = NULL;
	if (open_ca(o, &db, &ca, &e))
		return fail(&e);
	unsigned char *der = NULL;
	size_t len = 0;
	int rc = lca_crl(ca, o->now ? o->now : time(NULL), &der, &len, &e) ? fail(&e)
									     : write_crl(o, der, len);
	OPENSSL_free(der);
	lca_close(ca);
	sqlite3_close(db);
	return rc;
}

static int cmd_revoke_lca(const struct opts *o)
{
	struct lca_err e;
	int reason = LCA_REASON_KEY_COMPROMISE;
	if (!o->db || !o->root_cert || !o->in)
		return die_usage("revoke-lca needs --db ROOT.db -R ROOT.crt -i LCA.crt");
	if (o->reason && lca_reason_parse(o->reason, &reason))
		return die_usage("--reason: unknown reason");
	X509 *root = lca_read_cert(o->root_cert, &e), *x = NULL;
	sqlite3 *db = NULL;
	int rc = 1;
	if (root && (x = lca_read_cert(o->in, &e)) && (db = open_db(o->db, &e)) &&
	    !lca_root_revoke(db, root, x, reason, o->now ? o->now : time(NULL), &e)) {
		printf("revoked %s (%s); publish the next 'xdnat-ca root-crl'\n", o->in,
		       lca_reason_name(reason));
		rc = 0;
	} else {
		fail(&e);
	}
	sqlite3_close(db);
	X509_free(x);
	X509_free(root);
	return rc;
}

static int cmd_root_crl(const struct opts *o)
{
	struct lca_err e;
	if (!o->db || !o->root_cert || !o->root_key || !o->out)
		return die_usage("root-crl needs --db ROOT.db -R ROOT.crt -K ROOT.key -o CRL");
	X509 *root = lca_read_cert(o->root_cert, &e);
	EVP_PKEY *rk = root ? lca_read_key(o->root_key, &e) : NULL;
	sqlite3 *db = rk ? open_db(o->db, &e) : NULL;
	unsigned char *der = NULL;
	size_t len = 0;
	int rc = !db || lca_root_crl(db, root, rk, o->now ? o->now : time(NULL),
				     (uint32_t)o->period, &der, &len, &e)
			 ? fail(&e) : write_crl(o, der, len);
	OPENSSL_free(der);
	sqlite3_close(db);
	EVP_PKEY_free(rk);
	X509_free(root);
	return rc;
}

/* ---- bench ------------------------------------------------------------ */

static int cmd_bench(const struct opts *o)
{
	static const char *const kt[] = { "EC P-256", "EC P-384", "Ed25519", "RSA 3072" };
	struct lca_bench_res r;
	struct lca_err e;
	long n = o->count ? o->count : 2000;
	if (lca_bench(o->kt, n, &r, &e))
		return fail(&e);
	printf("issuance benchmark: %ld certificates each, LCA key %s, host key EC P-256\n", n,
	       kt[o->kt]);
	printf("  %-58s %9.0f certs/s\n", "raw OpenSSL (build + sign same shape)", r.raw);
	printf("  %-58s %9.0f certs/s  (%.2fx raw)\n",
	       "lca_issue, CSR checks + sign, in-memory store, no selfcheck", r.fast,
	       r.fast / r.raw);
	printf("  %-58s %9.0f certs/s  (%.2fx raw)\n",
	       "lca_issue, full (selfcheck, SQLite WAL synchronous=FULL)", r.full, r.full / r.raw);
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_DOMAIN = 256, O_DN, O_DB, O_CSR, O_HOSTID, O_LAN, O_USER, O_PORTS, O_SPIS, O_LEASE,
	       O_NB, O_CRLURL, O_REASON, O_PERIOD, O_DER, O_NOW, O_NOCRLURL };
	static const struct option lo[] = {
		{ "key", 1, 0, 'k' }, { "cert", 1, 0, 'c' }, { "chain", 1, 0, 'C' },
		{ "out", 1, 0, 'o' }, { "subject", 1, 0, 's' }, { "days", 1, 0, 'd' },
		{ "key-type", 1, 0, 't' }, { "global", 1, 0, 'g' }, { "domain", 1, 0, O_DOMAIN },
		{ "dn", 1, 0, O_DN }, { "root-cert", 1, 0, 'R' }, { "root-key", 1, 0, 'K' },
		{ "csr-out", 1, 0, 'r' }, { "in", 1, 0, 'i' }, { "db", 1, 0, O_DB },
		{ "csr", 1, 0, O_CSR }, { "host-id", 1, 0, O_HOSTID }, { "host", 1, 0, O_HOSTID },
		{ "lan", 1, 0, O_LAN }, { "user", 1, 0, O_USER }, { "ports", 1, 0, O_PORTS },
		{ "spis", 1, 0, O_SPIS }, { "lease", 1, 0, O_LEASE }, { "not-before", 1, 0, O_NB },
		{ "crl-url", 1, 0, O_CRLURL }, { "no-crl-url", 0, 0, O_NOCRLURL },
		{ "reason", 1, 0, O_REASON },
		{ "period", 1, 0, O_PERIOD }, { "der", 0, 0, O_DER }, { "now", 1, 0, O_NOW },
		{ "json", 0, 0, 'j' }, { "count", 1, 0, 'n' }, { "help", 0, 0, 'h' }, { 0 }
	};
	struct opts o = { .kt = LCA_KEY_EC_P256 };
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("xdnat-ca %s\n", XDNAT_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	const char *cmd = argv[1];
	optind = 2;
	int c;
	int64_t v;
	while ((c = getopt_long(argc, argv, "k:c:C:o:s:d:t:g:R:K:r:i:jn:h", lo, NULL)) != -1) {
		switch (c) {
		case 'k': o.key = optarg; break;
		case 'c': o.cert = optarg; break;
		case 'C': o.chain = optarg; break;
		case 'o': o.out = optarg; break;
		case 's': o.subject = optarg; break;
		case 'd':
			if (parse_i64(optarg, 1, 36500, &v))
				return die_usage("--days: 1 to 36500");
			o.days = (long)v;
			break;
		case 't':
			if (lca_keytype_parse(optarg, &o.kt))
				return die_usage("--key-type: p256, p384, ed25519 or rsa3072");
			break;
		case 'g': o.global = optarg; break;
		case O_DOMAIN: o.domain = optarg; break;
		case O_DN: o.dn = optarg; break;
		case 'R': o.root_cert = optarg; break;
		case 'K': o.root_key = optarg; break;
		case 'r': o.csr_out = optarg; break;
		case 'i': o.in = optarg; break;
		case O_DB: o.db = optarg; break;
		case O_CSR: o.csr = optarg; break;
		case O_HOSTID: o.host_id = optarg; break;
		case O_LAN: o.lan = optarg; break;
		case O_USER: o.user = optarg; break;
		case O_PORTS: o.ports = optarg; break;
		case O_SPIS: o.spis = optarg; break;
		case O_LEASE:
			if (parse_i64(optarg, 1, LCA_DEFAULT_MAX_LEASE, &o.lease))
				return die_usage("--lease: 1 to 34560000 seconds");
			break;
		case O_NB:
			if (parse_i64(optarg, 1, INT32_MAX, &o.not_before))
				return die_usage("--not-before: Unix seconds");
			break;
		case O_CRLURL: o.crl_url = optarg; break;
		case O_NOCRLURL: o.no_crl_url = true; break;
		case O_REASON: o.reason = optarg; break;
		case O_PERIOD:
			if (parse_i64(optarg, 60, 366 * 86400L, &o.period))
				return die_usage("--period: 60 to 31622400 seconds");
			break;
		case O_DER: o.der = true; break;
		case O_NOW:
			if (parse_i64(optarg, 1, INT32_MAX, &o.now))
				return die_usage("--now: Unix seconds");
			break;
		case 'j': o.json = true; break;
		case 'n':
			if (parse_i64(optarg, 1, 10000000, &o.count))
				return die_usage("--count: 1 to 10000000");
			break;
		case 'h': usage(stdout); return 0;
		default: return die_usage("bad option");
		}
	}
	bool takes_args = !strcmp(cmd, "revoke") || !strcmp(cmd, "show");
	if (!takes_args && optind != argc)
		return die_usage("unexpected argument");
	if (!strcmp(cmd, "init-root")) return cmd_init_root(&o);
	if (!strcmp(cmd, "init-lca")) return cmd_init_lca(&o);
	if (!strcmp(cmd, "import-lca")) return cmd_import_lca(&o);
	if (!strcmp(cmd, "issue")) return cmd_issue(&o);
	if (!strcmp(cmd, "revoke")) return cmd_revoke(&o, argc, argv);
	if (!strcmp(cmd, "list")) return cmd_list(&o);
	if (!strcmp(cmd, "show")) return cmd_show(&o, argc, argv);
	if (!strcmp(cmd, "crl")) return cmd_crl(&o);
	if (!strcmp(cmd, "revoke-lca")) return cmd_revoke_lca(&o);
	if (!strcmp(cmd, "root-crl")) return cmd_root_crl(&o);
	if (!strcmp(cmd, "bench")) return cmd_bench(&o);
	return die_usage("unknown command");
}
