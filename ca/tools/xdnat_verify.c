// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xdnat-verify: remote-side check of an xdnat host certificate (verify.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "lca.h"
#include "verify.h"

static const char usage_text[] =
"NAME\n"
"    xdnat-verify - may this peer use this address, these ports and SPIs?\n"
"\n"
"SYNOPSIS\n"
"    xdnat-verify -a ANCHORS.pem -c CHAIN.pem -s ADDRESS [-p PORTS] [-S SPIS]\n"
"                 [-r CRL]... [-C] [-f] [--crl-state FILE] [-t UNIXTIME]\n"
"                 [-U] [-j]\n"
"\n"
"DESCRIPTION\n"
"    For a remote IPsec system talking to a host behind an xdnat router.  The\n"
"    host authenticates with a certificate issued by the router's Local CA\n"
"    (LCA), which a higher-level CA has confined with name constraints to the\n"
"    router's global address.  xdnat-verify answers yes or no, with the\n"
"    reason, after checking in this order:\n"
"      crl               of several CRLs from one issuer only the newest (highest\n"
"                        CRL number) counts, whatever the order given; a CRL\n"
"                        older than one seen before is refused (see FILES)\n"
"      chain             the chain verifies to one of the trust anchors\n"
"      name-constraints  every name satisfies the LCA's name constraints, and\n"
"                        the LCA carries the complete set (one IPv4\n"
"                        /32 = ADDRESS, a URI host, an e-mail domain, a DNS\n"
"                        domain, a directoryName; nothing else; pathlen 0)\n"
"      identity          the host certificate names exactly what an LCA issues:\n"
"                        one iPAddress SAN = ADDRESS and one identity: DNS SAN\n"
"                        A-B-C-D.DOMAIN for LAN A.B.C.D, URI SAN\n"
"                        xdnat://DOMAIN/LAN (earlier profile) or e-mail SAN\n"
"                        USER@DOMAIN, each byte for byte (no userinfo, port,\n"
"                        query, fragment, %-escapes, case or trailing-dot\n"
"                        variants); no other SAN type (otherName,\n"
"                        registeredID, directoryName, ... are refused),\n"
"                        subject = the LCA's DN base + CN\n"
"      revoked, crl      with -r: the host certificate is not revoked and the\n"
"                        CRL is the LCA's, correctly signed and current; with\n"
"                        -C every certificate below the anchor\n"
"      address           ADDRESS is an iPAddress SAN of the host certificate\n"
"                        and the global address of its allocation extension\n"
"      ports, spis       every port / SPI in use lies inside the certified\n"
"                        ranges (extension 1.3.6.1.4.1.32473.7.1)\n"
"\n"
"OPTIONS\n"
"    -a, --anchors FILE  trusted root certificates (PEM, one or more)\n"
"    -c, --chain FILE    the host certificate first, then the LCA certificate\n"
"                        (PEM); further certificates are untrusted intermediates\n"
"    -s, --source ADDR   the IPv4 address the traffic comes from\n"
"    -p, --ports LIST    ports in use, e.g. 20001,20010-20019 (the traffic\n"
"                        selectors' ports on the host side)\n"
"    -S, --spis LIST     SPIs in use (decimal or 0x hex), e.g. 0xa1000080\n"
"    -r, --crl FILE      CRLs (PEM, one or more, or DER) to check revocation\n"
"                        against; may be repeated (e.g. the LCA's and the root's)\n"
"    -C, --chain-revocation\n"
"                        check the revocation of the whole chain: the LCA\n"
"                        against its issuer's CRL too.  Without a CRL from that\n"
"                        issuer in -r, it is fetched from the LCA certificate's\n"
"                        CRL distribution point (http, DER, 10 s)\n"
"    -f, --fetch         fetch the host certificate's CRL (DER, RFC 5280) from its\n"
"                        distribution point when -r gives none from the LCA;\n"
"                        without a CRL the answer is no\n"
"    -w, --crl-state FILE  the CRL high-water state (default: see FILES)\n"
"    -t, --time T        verify at Unix time T instead of now\n"
"    -U, --unconstrained accept an issuer without name constraints, and skip\n"
"                        the identity check (not recommended: such an issuer\n"
"                        may name anyone)\n"
"    -j, --json          one JSON object on stdout\n"
"        --version       print the program's name and version, exit\n"
"    -h, --help          this text\n"
"\n"
"FILES\n"
"    /var/lib/xdnat/crl-seen (root), else $XDG_STATE_HOME/xdnat/crl-seen or\n"
"    ~/.local/state/xdnat/crl-seen: for each CRL signer (by public key) the\n"
"    highest CRL number seen, its thisUpdate and digest.  A CRL with a lower\n"
"    number, the same number but other content, or an earlier thisUpdate is\n"
"    refused, so an old CRL cannot bring back a revoked certificate.  Written\n"
"    atomically, mode 0600; xdnat-peer keeps the same file.\n"
"\n"
"EXIT STATUS\n"
"    0 yes, 1 no (reason printed), 2 usage or unreadable input.\n"
"\n"
"EXAMPLE\n"
"    cat host.crt lca.crt > chain.pem\n"
"    xdnat-verify -a root.crt -c chain.pem -s 203.0.113.7 -p 20001 \\\n"
"        -S 0xa1000080 -r lca.crl\n";

static int usage_err(const char *m)
{
	fprintf(stderr, "xdnat-verify: %s (see xdnat-verify --help)\n", m);
	return 2;
}

static void print_json(const struct lca_verify_res *r)
{
	char buf[LCA_MAX_RANGES * 24];
	printf("{\"ok\":%s,\"code\":\"%s\",\"reason\":", r->ok ? "true" : "false",
	       lca_vcode_name(r->code));
	lca_json_str(stdout, r->reason);
	fputs(",\"subject\":", stdout);
	lca_json_str(stdout, r->subject);
	fputs(",\"identity\":", stdout);
	lca_json_str(stdout, r->identity);
	fputs(",\"serial\":", stdout);
	lca_json_str(stdout, r->serial);
	if (r->have_alloc) {
		char g[INET6_ADDRSTRLEN] = "";
		inet_ntop(r->alloc.gaddr_len == 4 ? AF_INET : AF_INET6, r->alloc.gaddr, g, sizeof(g));
		fputs(",\"global\":", stdout);
		lca_json_str(stdout, g);
		lca_ranges_fmt(buf, sizeof(buf), r->alloc.ports, r->alloc.n_ports, false);
		fputs(",\"ports\":", stdout);
		lca_json_str(stdout, buf);
		lca_ranges_fmt(buf, sizeof(buf), r->alloc.spis, r->alloc.n_spis, true);
		fputs(",\"spis\":", stdout);
		lca_json_str(stdout, buf);
	}
	fputs("}\n", stdout);
}

/* Is there a CRL from x's issuer? */
static bool crl_from(STACK_OF(X509_CRL) *crls, X509 *x)
{
	for (int i = 0; i < sk_X509_CRL_num(crls); i++)
		if (!X509_NAME_cmp(X509_CRL_get_issuer(sk_X509_CRL_value(crls, i)),
				   X509_get_issuer_name(x)))
			return true;
	return false;
}

/* The CRL at x's first http distribution point into crls.  No distribution
 * point or an unreachable one is not an error here: the check then finds no
 * CRL and says so.  -1 only when out of memory. */
static int fetch_into(STACK_OF(X509_CRL) *crls, X509 *x)
{
	STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
	int ret = 0;
	for (int i = 0; i < sk_DIST_POINT_num(dps); i++) {
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
		if (!dp->distpoint || dp->distpoint->type != 0)
			continue;
		GENERAL_NAMES *gn = dp->distpoint->name.fullname;
		for (int k = 0; k < sk_GENERAL_NAME_num(gn); k++) {
			GENERAL_NAME *g = sk_GENERAL_NAME_value(gn, k);
			char url[600];
			int n = g->type == GEN_URI ? ASN1_STRING_length(g->d.ia5) : 0;
			if (n <= 7 || (size_t)n >= sizeof(url))
				continue;
			memcpy(url, ASN1_STRING_get0_data(g->d.ia5), (size_t)n);
			url[n] = 0;
			if (strncmp(url, "http://", 7))
				continue;
			X509_CRL *c = X509_CRL_load_http(url, NULL, NULL, 10);
			if (!c) {
				fprintf(stderr, "xdnat-verify: cannot fetch the CRL from %s\n", url);
				ERR_clear_error();
				continue;
			}
			if (!sk_X509_CRL_push(crls, c)) {
				X509_CRL_free(c);
				ret = -1;
			}
			goto done;
		}
	}
done:
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	return ret;
}

struct verify_opts {
	const char *anchors, *chain, *crl[8], *state;
	unsigned ncrl;
	bool fetch, json;
};

/* --source, --ports and --spis into q (ranges stored in pr and sr); 0, or
 * 2 for a usage error (reported). */
static int parse_request(const char *src, const char *ports, const char *spis,
			 struct lca_verify_req *q, struct lca_range *pr, struct lca_range *sr)
{
	struct lca_err e;
	struct in_addr a;
	if (inet_pton(AF_INET, src, &a) != 1)
		return usage_err("--source: not an IPv4 address");
	q->src_be = a.s_addr;
	if (ports) {
		if (lca_parse_ranges(ports, 0, 65535, pr, &q->n_ports, &e)) {
			fprintf(stderr, "xdnat-verify: --ports: %s\n", e.msg);
			return 2;
		}
		q->ports = pr;
	}
	if (spis) {
		if (lca_parse_ranges(spis, 0, UINT32_MAX, sr, &q->n_spis, &e)) {
			fprintf(stderr, "xdnat-verify: --spis: %s\n", e.msg);
			return 2;
		}
		q->spis = sr;
	}
	return 0;
}

/* The command line into o and q: -1 to go on, else the exit status (0
 * after --help or --version, 2 for a usage error). */
static int parse_args(int argc, char **argv, struct verify_opts *o, struct lca_verify_req *q,
		      struct lca_range *pr, struct lca_range *sr)
{
	static const struct option lo[] = {
		{ "anchors", 1, 0, 'a' }, { "chain", 1, 0, 'c' }, { "source", 1, 0, 's' },
		{ "ports", 1, 0, 'p' }, { "spis", 1, 0, 'S' }, { "crl", 1, 0, 'r' },
		{ "time", 1, 0, 't' }, { "unconstrained", 0, 0, 'U' }, { "json", 0, 0, 'j' },
		{ "chain-revocation", 0, 0, 'C' }, { "fetch", 0, 0, 'f' },
		{ "crl-state", 1, 0, 'w' }, { "help", 0, 0, 'h' }, { "version", 0, 0, 'V' }, { 0 }
	};
	const char *src = NULL, *ports = NULL, *spis = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "a:c:s:p:S:r:t:UjCfw:h", lo, NULL)) != -1) {
		switch (c) {
		case 'a': o->anchors = optarg; break;
		case 'c': o->chain = optarg; break;
		case 's': src = optarg; break;
		case 'p': ports = optarg; break;
		case 'S': spis = optarg; break;
		case 'r':
			if (o->ncrl == sizeof(o->crl) / sizeof(o->crl[0]))
				return usage_err("at most 8 -r files");
			o->crl[o->ncrl++] = optarg;
			break;
		case 'C': q->check_chain = true; break;
		case 'f': o->fetch = true; break;
		case 'w': o->state = optarg; break;
		case 't': {
			char *end;
			errno = 0;
			long long t = strtoll(optarg, &end, 10);
			if (errno || *end || end == optarg || t <= 0)
				return usage_err("--time: Unix seconds");
			q->at = t;
			break;
		}
		case 'U': q->allow_unconstrained = true; break;
		case 'j': o->json = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': printf("xdnat-verify %s\n", XDNAT_VERSION); return 0;
		default: return usage_err("bad option");
		}
	}
	if (optind != argc)
		return usage_err("unexpected argument");
	if (!o->anchors || !o->chain || !src)
		return usage_err("-a ANCHORS, -c CHAIN and -s ADDRESS are required");
	if (parse_request(src, ports, spis, q, pr, sr))
		return 2;
	if (!o->state && !(o->state = lca_crl_state_default()))
		return usage_err("no HOME for the CRL state: give --crl-state FILE");
	return -1;
}

/* The CRLs of the n files into crls; 0 or -1 (reported). */
static int read_crl_files(const char *const *files, unsigned n, STACK_OF(X509_CRL) *crls)
{
	struct lca_err e;
	for (unsigned i = 0; i < n; i++) {
		STACK_OF(X509_CRL) *one = lca_read_crls(files[i], &e);
		if (!one) {
			fprintf(stderr, "xdnat-verify: %s\n", e.msg);
			return -1;
		}
		X509_CRL *x;
		while ((x = sk_X509_CRL_shift(one)))
			if (!sk_X509_CRL_push(crls, x)) {
				X509_CRL_free(x);
				sk_X509_CRL_pop_free(one, X509_CRL_free);
				return -1;
			}
		sk_X509_CRL_free(one);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct verify_opts o = { 0 };
	struct lca_verify_req q = { 0 };
	struct lca_range pr[LCA_MAX_RANGES], sr[LCA_MAX_RANGES];
	struct lca_err e;
	int rc = parse_args(argc, argv, &o, &q, pr, sr);
	if (rc >= 0)
		return rc;
	rc = 2;
	STACK_OF(X509) *anc = lca_read_certs(o.anchors, &e), *ch = NULL;
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	if (!anc || !(ch = lca_read_certs(o.chain, &e)) || !crls) {
		fprintf(stderr, "xdnat-verify: %s\n", crls ? e.msg : "out of memory");
		goto out;
	}
	if (read_crl_files(o.crl, o.ncrl, crls))
		goto out;
	q.anchors = anc;
	q.leaf = sk_X509_shift(ch);
	q.untrusted = ch;
	/* Missing CRLs from distribution points: the LCA's (--chain), the
	 * host's (--fetch).  Unreachable: the verdict says which is missing. */
	if (q.leaf && o.fetch && !crl_from(crls, q.leaf) && fetch_into(crls, q.leaf))
		goto out;
	if (q.leaf && q.check_chain && sk_X509_num(ch) > 0 &&
	    !crl_from(crls, sk_X509_value(ch, 0)) && fetch_into(crls, sk_X509_value(ch, 0)))
		goto out;
	q.crls = crls;
	q.crl_state = o.state;
	q.require_crl = o.fetch;
	struct lca_verify_res r;
	int err = lca_verify(&q, &r);
	X509_free(q.leaf);
	if (err) {
		fprintf(stderr, "xdnat-verify: %s\n", r.reason);
		goto out;
	}
	if (o.json) {
		print_json(&r);
	} else if (r.ok) {
		printf("yes: %s (%s)\n", r.reason, r.identity[0] ? r.identity : r.subject);
	} else {
		printf("no: %s: %s\n", lca_vcode_name(r.code), r.reason);
	}
	rc = r.ok ? 0 : 1;
out:
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	sk_X509_pop_free(ch, X509_free);
	sk_X509_pop_free(anc, X509_free);
	return rc;
}
