// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xdnat-verify: remote-side check of an xdnat host certificate (verify.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lca.h"
#include "verify.h"

static const char usage_text[] =
"NAME\n"
"    xdnat-verify - may this peer use this address, these ports and SPIs?\n"
"\n"
"SYNOPSIS\n"
"    xdnat-verify -a ANCHORS.pem -c CHAIN.pem -s ADDRESS [-p PORTS] [-S SPIS]\n"
"                 [-r CRL] [-t UNIXTIME] [-U] [-j]\n"
"\n"
"DESCRIPTION\n"
"    For a remote IPsec system talking to a host behind an xdnat router.  The\n"
"    host authenticates with a certificate issued by the router's Local CA\n"
"    (LCA), which a higher-level CA has confined with name constraints to the\n"
"    router's global address.  xdnat-verify answers yes or no, with the\n"
"    reason, after checking in this order:\n"
"      chain             the chain verifies to one of the trust anchors\n"
"      name-constraints  every name satisfies the LCA's name constraints, and\n"
"                        the LCA is confined to exactly one /32 = ADDRESS\n"
"      revoked, crl      with -r: the host certificate is not revoked and the\n"
"                        CRL is the LCA's, correctly signed and current\n"
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
"    -r, --crl FILE      CRL (PEM or DER) to check revocation against\n"
"    -t, --time T        verify at Unix time T instead of now\n"
"    -U, --unconstrained accept an issuer without name constraints (not\n"
"                        recommended: such an issuer may name anyone)\n"
"    -j, --json          one JSON object on stdout\n"
"        --version       print the program's name and version, exit\n"
"    -h, --help          this text\n"
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

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "anchors", 1, 0, 'a' }, { "chain", 1, 0, 'c' }, { "source", 1, 0, 's' },
		{ "ports", 1, 0, 'p' }, { "spis", 1, 0, 'S' }, { "crl", 1, 0, 'r' },
		{ "time", 1, 0, 't' }, { "unconstrained", 0, 0, 'U' }, { "json", 0, 0, 'j' },
		{ "help", 0, 0, 'h' }, { "version", 0, 0, 'V' }, { 0 }
	};
	const char *anchors = NULL, *chain = NULL, *src = NULL, *ports = NULL, *spis = NULL,
		   *crl = NULL;
	struct lca_verify_req q = { 0 };
	struct lca_range pr[LCA_MAX_RANGES], sr[LCA_MAX_RANGES];
	struct lca_err e;
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "a:c:s:p:S:r:t:Ujh", lo, NULL)) != -1) {
		switch (c) {
		case 'a': anchors = optarg; break;
		case 'c': chain = optarg; break;
		case 's': src = optarg; break;
		case 'p': ports = optarg; break;
		case 'S': spis = optarg; break;
		case 'r': crl = optarg; break;
		case 't': {
			char *end;
			errno = 0;
			long long t = strtoll(optarg, &end, 10);
			if (errno || *end || end == optarg || t <= 0)
				return usage_err("--time: Unix seconds");
			q.at = t;
			break;
		}
		case 'U': q.allow_unconstrained = true; break;
		case 'j': json = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': printf("xdnat-verify %s\n", XDNAT_VERSION); return 0;
		default: return usage_err("bad option");
		}
	}
	if (optind != argc)
		return usage_err("unexpected argument");
	if (!anchors || !chain || !src)
		return usage_err("-a ANCHORS, -c CHAIN and -s ADDRESS are required");
	struct in_addr a;
	if (inet_pton(AF_INET, src, &a) != 1)
		return usage_err("--source: not an IPv4 address");
	q.src_be = a.s_addr;
	if (ports) {
		if (lca_parse_ranges(ports, 0, 65535, pr, &q.n_ports, &e)) {
			fprintf(stderr, "xdnat-verify: --ports: %s\n", e.msg);
			return 2;
		}
		q.ports = pr;
	}
	if (spis) {
		if (lca_parse_ranges(spis, 0, UINT32_MAX, sr, &q.n_spis, &e)) {
			fprintf(stderr, "xdnat-verify: --spis: %s\n", e.msg);
			return 2;
		}
		q.spis = sr;
	}
	int rc = 2;
	STACK_OF(X509) *anc = lca_read_certs(anchors, &e), *ch = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	if (!anc || !(ch = lca_read_certs(chain, &e)) || (crl && !(crls = lca_read_crls(crl, &e)))) {
		fprintf(stderr, "xdnat-verify: %s\n", e.msg);
		goto out;
	}
	q.anchors = anc;
	q.leaf = sk_X509_shift(ch);
	q.untrusted = ch;
	q.crls = crls;
	struct lca_verify_res r;
	int err = lca_verify(&q, &r);
	X509_free(q.leaf);
	if (err) {
		fprintf(stderr, "xdnat-verify: %s\n", r.reason);
		goto out;
	}
	if (json) {
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
