// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnat-peer: the listener for remote IPsec systems.  It receives the
 * revocation notices xdnatd sends (ca/notice.h, docs/LCA.md), verifies each
 * against the operator's trust anchors, acknowledges it and runs a command
 * for the revoked certificates (e.g. swanctl --terminate).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include "notice.h"
#include "verify.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: xdnat-peer -a ANCHORS.pem [-l ADDR:PORT] [-e COMMAND] [OPTIONS]\n"
"\n"
"Listen for the revocation notices of xdnat routers.  A router's Local CA\n"
"(LCA) certifies the hosts behind it; when it revokes a host's certificate\n"
"(the host freed its ports, its lease lapsed, the operator evicted it), the\n"
"router sends every remote system that had ESP/AH traffic with that host a\n"
"notice: a CMS SignedData (RFC 5652) signed by the LCA, carrying the\n"
"revoked serial numbers, their identities and reasons, the CRL number and\n"
"the new CRL itself (format: docs/LCA.md, \"Revocation notices\").\n"
"\n"
"Each datagram is verified: DER only; the signature; the signer's chain up\n"
"to one of the trust anchors; the signer being a name-constrained LCA whose\n"
"global address is the one the notice names; the CRL signed by the same\n"
"LCA; a production time within --max-age.  A valid notice is acknowledged\n"
"(so the router stops resending it) and COMMAND runs once per notice (a\n"
"resent copy is acknowledged again but runs nothing).  Anything else is\n"
"logged and dropped, unanswered.\n"
"\n"
"Entries with reason superseded (a host renewed its certificate; its SAs\n"
"are fine) are acknowledged and printed but never passed to COMMAND: a\n"
"notice with nothing else runs nothing.  xdnatd does not announce them;\n"
"older routers did.\n"
"\n"
"Options:\n"
"  -a, --anchors FILE   trusted root certificates (PEM), e.g. the operator's\n"
"                       root; required\n"
"  -l, --listen ADDR:PORT  UDP address to listen on (default: 0.0.0.0:%d)\n"
"  -e, --exec COMMAND   run COMMAND with /bin/sh -c for each valid notice,\n"
"                       with these variables in its environment:\n"
"                         XDNAT_NOTICE_FROM       the router's address\n"
"                         XDNAT_NOTICE_GLOBAL     the global address G\n"
"                         XDNAT_NOTICE_CRL_NUMBER the CRL number\n"
"                         XDNAT_NOTICE_SIGNER     the LCA's subject\n"
"                         XDNAT_REVOKED_COUNT     N\n"
"                         XDNAT_REVOKED_SERIALS   the serials (hex), space-separated\n"
"                         XDNAT_REVOKED_IDENTITIES  their DNS/e-mail identities\n"
"                         XDNAT_REVOKED_<i>_SERIAL, _IDENTITY, _REASON (i = 0..N-1)\n"
"                       XDNAT_REVOKED_IDENTITIES is what to match SAs by: every\n"
"                       certificate of a host carries the same identity, so a\n"
"                       script that ends the SAs of any certificate with one\n"
"                       of these identities (docs/STRONGSWAN.md) also ends SAs\n"
"                       authenticated with the host's earlier certificates\n"
"  -c, --crl-out FILE   write the CRL carried by each notice to FILE (DER),\n"
"                       e.g. into swanctl/x509crl/, unless it is older than\n"
"                       a CRL of the same LCA seen before (lower CRL number,\n"
"                       same number other content, or earlier thisUpdate)\n"
"  -w, --crl-state FILE the CRL high-water state shared with xdnat-verify\n"
"                       (default /var/lib/xdnat/crl-seen for root, else\n"
"                       ~/.local/state/xdnat/crl-seen)\n"
"  -m, --max-age S      refuse notices produced more than S seconds ago or\n"
"                       ahead (default: 86400)\n"
"  -1, --once           exit 0 after the first valid notice\n"
"  -t, --timeout S      with --once: exit 1 if none came within S seconds\n"
"  -q, --quiet          no line per notice on stdout\n"
"      --version        print the program's name and version, exit\n"
"  -h, --help           this help\n"
"\n"
"Output: one line per valid notice on stdout:\n"
"  notice from ADDR: G CRL N: revoked SERIAL IDENTITY (REASON)...\n"
"Exit status: 0 on SIGTERM/SIGINT (or --once), 1 on error, 2 on usage error.\n",
		LCA_NOTICE_PORT);
}

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

struct seen {
	unsigned char h[8][SHA256_DIGEST_LENGTH];
	unsigned n;
};

static bool seen_before(struct seen *s, const unsigned char *h)
{
	for (unsigned i = 0; i < s->n && i < 8; i++)
		if (!memcmp(s->h[i], h, SHA256_DIGEST_LENGTH))
			return true;
	memcpy(s->h[s->n++ % 8], h, SHA256_DIGEST_LENGTH);
	return false;
}

static int run_command(const char *cmd, const char *from, const struct lca_notice *n)
{
	char g[INET_ADDRSTRLEN], buf[64];
	size_t cap = (size_t)n->n * 320 + 1;
	char *serials = calloc(1, cap), *ids = calloc(1, cap);
	pid_t pid;
	int status;

	if (!serials || !ids) {
		free(serials);
		free(ids);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n->n; i++) {
		size_t l = strlen(serials), m = strlen(ids);

		snprintf(serials + l, cap - l, "%s%s", i ? " " : "", n->e[i].serial);
		snprintf(ids + m, cap - m, "%s%s", i ? " " : "", n->e[i].identity);
	}
	pid = fork();
	if (pid < 0) {
		free(serials);
		free(ids);
		return -errno;
	}
	if (pid == 0) {
		inet_ntop(AF_INET, &n->g_be, g, sizeof(g));
		setenv("XDNAT_NOTICE_FROM", from, 1);
		setenv("XDNAT_NOTICE_GLOBAL", g, 1);
		snprintf(buf, sizeof(buf), "%lld", (long long)n->crl_number);
		setenv("XDNAT_NOTICE_CRL_NUMBER", buf, 1);
		setenv("XDNAT_NOTICE_SIGNER", n->signer, 1);
		snprintf(buf, sizeof(buf), "%u", n->n);
		setenv("XDNAT_REVOKED_COUNT", buf, 1);
		setenv("XDNAT_REVOKED_SERIALS", serials, 1);
		setenv("XDNAT_REVOKED_IDENTITIES", ids, 1);
		for (unsigned i = 0; i < n->n; i++) {
			char k[64];

			snprintf(k, sizeof(k), "XDNAT_REVOKED_%u_SERIAL", i);
			setenv(k, n->e[i].serial, 1);
			snprintf(k, sizeof(k), "XDNAT_REVOKED_%u_IDENTITY", i);
			setenv(k, n->e[i].identity, 1);
			snprintf(k, sizeof(k), "XDNAT_REVOKED_%u_REASON", i);
			setenv(k, lca_reason_name(n->e[i].reason), 1);
		}
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	free(serials);
	free(ids);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "xdnat-peer: command failed (status %d)\n",
			WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		return 1;
	}
	return 0;
}

static int write_crl(const char *path, X509_CRL *crl)
{
	char tmp[4200];
	FILE *f;
	int ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "wb");
	if (!f) {
		fprintf(stderr, "xdnat-peer: %s: %s\n", tmp, strerror(errno));
		return -errno;
	}
	ok = i2d_X509_CRL_fp(f, crl);
	if (fclose(f) || !ok || rename(tmp, path)) {
		fprintf(stderr, "xdnat-peer: cannot write %s\n", path);
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

struct peer_opts {
	const char *anchors_path, *cmd, *crl_out, *crl_state;
	long max_age, timeout;
	bool once, quiet;
	struct sockaddr_in sa;        /* where to listen */
};

/* --listen ADDR:PORT into sa; 0, or 2 (usage error, reported). */
static int parse_listen(const char *listen_s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(listen_s, ':');
	char *end;
	unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;

	if (!colon || (size_t)(colon - listen_s) >= sizeof(host) || *end || port < 1 ||
	    port > 65535) {
		fprintf(stderr, "xdnat-peer: --listen: '%s' is not ADDR:PORT\n", listen_s);
		return 2;
	}
	memcpy(host, listen_s, (size_t)(colon - listen_s));
	host[colon - listen_s] = 0;
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		fprintf(stderr, "xdnat-peer: --listen: '%s' is not an IPv4 address\n", host);
		return 2;
	}
	sa->sin_port = htons((uint16_t)port);
	return 0;
}

/* The command line into o: -1 to go on, else the exit status (0 after
 * --help or --version, 2 for a usage error). */
static int parse_args(int argc, char **argv, struct peer_opts *o)
{
	static const struct option lo[] = {
		{ "anchors", required_argument, NULL, 'a' }, { "listen", required_argument, NULL, 'l' },
		{ "exec", required_argument, NULL, 'e' }, { "crl-out", required_argument, NULL, 'c' },
		{ "max-age", required_argument, NULL, 'm' }, { "once", no_argument, NULL, '1' },
		{ "timeout", required_argument, NULL, 't' }, { "quiet", no_argument, NULL, 'q' },
		{ "crl-state", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' }, { 0 },
	};
	const char *listen_s = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "a:l:e:c:m:1t:qw:h", lo, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'a': o->anchors_path = optarg; break;
		case 'l': listen_s = optarg; break;
		case 'e': o->cmd = optarg; break;
		case 'c': o->crl_out = optarg; break;
		case 'w': o->crl_state = optarg; break;
		case 'm':
		case 't':
			errno = 0;
			long v = strtol(optarg, &end, 10);

			if (errno || *end || v < 1 || v > 100L * 366 * 86400) {
				fprintf(stderr, "xdnat-peer: -%c: '%s' is not a number of seconds\n", c, optarg);
				return 2;
			}
			*(c == 'm' ? &o->max_age : &o->timeout) = v;
			break;
		case '1': o->once = true; break;
		case 'q': o->quiet = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("xdnat-peer %s\n", XDNAT_VERSION); return 0;
		default: fprintf(stderr, "Try 'xdnat-peer --help'.\n"); return 2;
		}
	}
	if (optind < argc || !o->anchors_path) {
		fprintf(stderr, "xdnat-peer: %s\nTry 'xdnat-peer --help'.\n",
			optind < argc ? "unexpected argument" : "-a ANCHORS.pem is required");
		return 2;
	}
	if (listen_s && parse_listen(listen_s, &o->sa))
		return 2;
	if (!o->crl_state && !(o->crl_state = lca_crl_state_default())) {
		fprintf(stderr, "xdnat-peer: no HOME for the CRL state: give --crl-state FILE\n");
		return 2;
	}
	return -1;
}

/* A verified, fresh and new notice n from fs: record its CRL, print it,
 * write the CRL, run the command for its revocations. */
static void act_on_notice(const struct peer_opts *o, const char *fs, struct lca_notice *n)
{
	struct lca_err e = { { 0 } };
	/* Never go back to an older CRL (a late or replayed notice): its
	 * revocations still count, its CRL is not written. */
	bool crl_new = n->crl && !lca_crl_highwater(o->crl_state, n->crl, n->crl_key, true, &e);
	if (n->crl && !crl_new)
		fprintf(stderr, "xdnat-peer: notice from %s: CRL not used: %s\n", fs, e.msg);
	if (!o->quiet) {
		char g[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &n->g_be, g, sizeof(g));
		printf("notice from %s: %s CRL %lld:", fs, g, (long long)n->crl_number);
		for (unsigned i = 0; i < n->n; i++)
			printf(" revoked %s %s (%s)", n->e[i].serial, n->e[i].identity,
			       lca_reason_name(n->e[i].reason));
		printf("\n");
		fflush(stdout);
	}
	if (o->crl_out && crl_new)
		write_crl(o->crl_out, n->crl);
	/* Renewals are no revocation events: keep only the others. */
	unsigned k = 0;

	for (unsigned i = 0; i < n->n; i++)
		if (n->e[i].reason != LCA_REASON_SUPERSEDED)
			n->e[k++] = n->e[i];
	n->n = k;
	if (o->cmd && n->n)
		run_command(o->cmd, fs, n);
}

/* Receive, verify and acknowledge notices on fd until a signal (0), or with
 * --once the first valid notice (0) or the timeout after started (1). */
static int serve(const struct peer_opts *o, int fd, STACK_OF(X509) *anchors,
		 struct lca_notice *n, unsigned char *buf, time_t started)
{
	struct lca_err e = { { 0 } };
	struct seen seen = { 0 };

	while (!stop) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		unsigned char h[SHA256_DIGEST_LENGTH], ack[LCA_NOTICE_ACK_LEN];
		char fs[INET_ADDRSTRLEN];
		ssize_t r;
		int64_t now;

		if (o->once && o->timeout && time(NULL) - started >= o->timeout) {
			fprintf(stderr, "xdnat-peer: no valid notice within %lds\n", o->timeout);
			return 1;
		}
		if (poll(&p, 1, 500) <= 0)
			continue;
		r = recvfrom(fd, buf, 65536, 0, (struct sockaddr *)&from, &fl);
		if (r <= 0)
			continue;
		inet_ntop(AF_INET, &from.sin_addr, fs, sizeof(fs));
		now = (int64_t)time(NULL);
		if (lca_notice_verify(buf, (size_t)r, anchors, 0, n, &e)) {
			fprintf(stderr, "xdnat-peer: dropped %zd bytes from %s:%u: %s\n", r, fs,
				ntohs(from.sin_port), e.msg);
			continue;
		}
		if (n->produced_at < now - o->max_age || n->produced_at > now + o->max_age) {
			fprintf(stderr, "xdnat-peer: dropped a notice from %s produced %lld s from now "
				"(--max-age %ld)\n", fs, (long long)(n->produced_at - now), o->max_age);
			lca_notice_release(n);
			continue;
		}
		SHA256(buf, (size_t)r, h);
		memcpy(ack, LCA_NOTICE_ACK, 16);
		memcpy(ack + 16, h, sizeof(h));
		if (sendto(fd, ack, sizeof(ack), 0, (struct sockaddr *)&from, fl) < 0)
			fprintf(stderr, "xdnat-peer: cannot acknowledge to %s: %s\n", fs, strerror(errno));
		if (seen_before(&seen, h)) {
			lca_notice_release(n);
			continue;
		}
		act_on_notice(o, fs, n);
		lca_notice_release(n);
		if (o->once)
			break;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct peer_opts o = {
		.max_age = 86400,
		.sa = { .sin_family = AF_INET, .sin_port = htons(LCA_NOTICE_PORT) },
	};
	STACK_OF(X509) *anchors;
	struct lca_err e = { { 0 } };
	struct lca_notice *n = NULL;   /* allocated once the arguments are good */
	unsigned char *buf = NULL;
	struct sigaction sig = { .sa_handler = on_signal };
	time_t started = time(NULL);
	int fd, rc = parse_args(argc, argv, &o);

	if (rc >= 0)
		return rc;
	rc = 1;
	anchors = lca_read_certs(o.anchors_path, &e);
	if (!anchors) {
		fprintf(stderr, "xdnat-peer: %s\n", e.msg);
		return 1;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&o.sa, sizeof(o.sa))) {
		fprintf(stderr, "xdnat-peer: cannot listen on UDP port %u: %s\n",
			ntohs(o.sa.sin_port), strerror(errno));
		goto out;
	}
	n = calloc(1, sizeof(*n));
	buf = malloc(65536);
	if (!n || !buf) {
		fprintf(stderr, "xdnat-peer: out of memory\n");
		goto out;
	}
	sigaction(SIGTERM, &sig, NULL);
	sigaction(SIGINT, &sig, NULL);
	printf("xdnat-peer: listening on UDP %s:%u\n", inet_ntoa(o.sa.sin_addr),
	       ntohs(o.sa.sin_port));
	fflush(stdout);
	rc = serve(&o, fd, anchors, n, buf, started);
out:
	if (fd >= 0)
		close(fd);
	sk_X509_pop_free(anchors, X509_free);
	free(n);
	free(buf);
	return rc;
}
