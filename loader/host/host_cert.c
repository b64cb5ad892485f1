// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xdnat-host's certificate: see host_cert.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "host_cert.h"
#include "lca.h"
#include "xdnat.h"

int host_cert_init(struct host_cert *h, const char *dir, const char *name, const char *keytype)
{
	struct lca_err e = { { 0 } };
	enum lca_keytype t = LCA_KEY_EC_P256;
	EVP_PKEY *k;
	int n;

	memset(h, 0, sizeof(*h));
	if (keytype && lca_keytype_parse(keytype, &t)) {
		xd_err("--key-type: '%s' is not one of p256, p384, ed25519, rsa3072", keytype);
		return -EINVAL;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		xd_err("cannot create the state directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	n = snprintf(h->key_path, sizeof(h->key_path), "%s/%s.key", dir, name);
	if (n < 0 || (size_t)n >= sizeof(h->key_path) - 16) {
		xd_err("--state-dir: path too long");
		return -ENAMETOOLONG;
	}
	snprintf(h->crt_path, sizeof(h->crt_path), "%s/%s.crt", dir, name);
	snprintf(h->chain_path, sizeof(h->chain_path), "%s/%s-chain.pem", dir, name);
	if (access(h->key_path, F_OK) == 0) {
		struct stat st;

		if (stat(h->key_path, &st) || (st.st_mode & 077)) {
			xd_err("%s: the private key must not be readable by group or others (chmod 600)",
			       h->key_path);
			return -EPERM;
		}
		k = lca_read_key(h->key_path, &e);
	} else {
		k = lca_keygen(t, &e);
		if (k && lca_write_key(h->key_path, k, &e)) {
			EVP_PKEY_free(k);
			k = NULL;
		}
		if (k)
			xd_info("made a new key pair: %s", h->key_path);
	}
	if (!k) {
		xd_err("host key: %s", e.msg);
		return -EIO;
	}
	h->key = k;
	if (lca_host_csr(k, name, &h->csr, &h->csr_len, &e)) {
		xd_err("certificate request: %s", e.msg);
		host_cert_free(h);
		return -EIO;
	}
	return 0;
}

/* Write PEM certificate(s) to @path through a temporary file. */
static int write_pem(const char *path, X509 *x)
{
	char tmp[600];
	FILE *f;
	int fd, ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		xd_err("cannot write %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	ok = PEM_write_X509(f, x);
	if (fclose(f) || !ok || rename(tmp, path)) {
		xd_err("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

int host_cert_store(struct host_cert *h, const uint8_t *der, size_t len, const uint8_t *ca,
		    size_t ca_len)
{
	const unsigned char *p = der, *q = ca;
	X509 *x = d2i_X509(NULL, &p, (long)len), *c = NULL;
	struct tm tm;
	int rc = -EIO;

	if (!x || p != der + len) {
		xd_err("the router sent a certificate that does not parse");
		goto out;
	}
	if (X509_check_private_key(x, h->key) != 1) {
		xd_err("the router's certificate is not for our key");
		goto out;
	}
	if (ca && ca_len) {
		c = d2i_X509(NULL, &q, (long)ca_len);
		if (!c || q != ca + ca_len) {
			xd_err("the router sent an LCA certificate that does not parse");
			goto out;
		}
	}
	if (write_pem(h->crt_path, x) || (c && write_pem(h->chain_path, c)))
		goto out;
	snprintf(h->prev_serial, sizeof(h->prev_serial), "%s", h->have ? h->serial : "");
	{
		const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
		BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;

		snprintf(h->serial, sizeof(h->serial), "%s", hex ? hex : "?");
		OPENSSL_free(hex);
		BN_free(bn);
	}
	h->not_after = ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1 ? (int64_t)timegm(&tm) : 0;
	h->identity[0] = 0;
	{
		GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

		for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
			GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

			if (g->type == GEN_URI || g->type == GEN_EMAIL || g->type == GEN_DNS) {
				const ASN1_IA5STRING *s = g->d.ia5;

				snprintf(h->identity, sizeof(h->identity), "%.*s", s->length,
					 (const char *)s->data);
				break;
			}
		}
		GENERAL_NAMES_free(gens);
	}
	h->have = true;
	rc = 0;
out:
	X509_free(x);
	X509_free(c);
	return rc;
}

void host_cert_remove(struct host_cert *h)
{
	if (!h->have)
		return;
	if (unlink(h->crt_path) && errno != ENOENT)
		xd_warn("cannot remove %s: %s", h->crt_path, strerror(errno));
	if (unlink(h->chain_path) && errno != ENOENT)
		xd_warn("cannot remove %s: %s", h->chain_path, strerror(errno));
	h->have = false;
}

void host_cert_info(const struct host_cert *h, FILE *f)
{
	if (!h->have)
		return;
	fprintf(f, "XDNAT_CERT=%s\nXDNAT_CERT_CHAIN=%s\nXDNAT_KEY=%s\nXDNAT_CERT_SERIAL=%s\n"
		"XDNAT_CERT_NOT_AFTER=%lld\nXDNAT_CERT_IDENTITY=%s\n", h->crt_path, h->chain_path,
		h->key_path, h->serial, (long long)h->not_after, h->identity);
}

void host_cert_free(struct host_cert *h)
{
	EVP_PKEY_free(h->key);
	h->key = NULL;
	OPENSSL_free(h->csr);
	h->csr = NULL;
}

/* ------------------------------------------------- after a new certificate */

/* Run @argv (with @env: "K=V" strings added) in its own process group with
 * signals unblocked (xdnat-host blocks them for its signalfd); kill the
 * group after @timeout_s.  Exit status, 128+signal, or a negative errno. */
static int run(char *const argv[], char *const env[], unsigned timeout_s, int quiet)
{
	struct timespec t0, now, nap = { 0, 50 * 1000 * 1000 };
	pid_t pid;
	int status;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setpgid(0, 0);
		for (unsigned i = 0; env && env[i]; i++)
			putenv(env[i]);
		if (quiet) {   /* 1: no stdout, 2: nothing */
			int fd = open("/dev/null", O_WRONLY);

			if (fd >= 0 && dup2(fd, STDOUT_FILENO) >= 0 &&
			    (quiet < 2 || dup2(fd, STDERR_FILENO) >= 0))
				close(fd);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "xdnat-host: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -errno;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= (time_t)timeout_s) {
			xd_warn("%s did not finish within %us: killed", argv[0], timeout_s);
			kill(-pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return -ETIMEDOUT;
		}
		nanosleep(&nap, NULL);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int host_swan_reload(const char *swan_dir, const char *vici_uri, bool quiet)
{
	char sdir[600], conf[640], envdir[640];
	char *env[] = { envdir, NULL };
	const char *cmds[] = { "--load-creds", "--load-conns" };
	int n = snprintf(sdir, sizeof(sdir), "%s/swanctl", swan_dir);

	if (n < 0 || (size_t)n >= sizeof(sdir))
		return -ENAMETOOLONG;
	snprintf(conf, sizeof(conf), "%s/swanctl.conf", sdir);
	snprintf(envdir, sizeof(envdir), "SWANCTL_DIR=%s", sdir);
	for (unsigned i = 0; i < 2; i++) {
		char *argv[8];
		unsigned k = 0;
		int rc;

		if (i == 1 && access(conf, F_OK)) {
			xd_warn("--swan-dir: no %s: connections not reloaded (the next IKE_AUTH of a "
				"connection loaded before may send the old certificate; reload them, "
				"e.g. with --on-renew)", conf);
			return 0;
		}
		argv[k++] = (char *)"swanctl";
		argv[k++] = (char *)cmds[i];
		if (i == 0) {
			argv[k++] = (char *)"--noprompt";
			argv[k++] = (char *)"--clear";
		}
		if (vici_uri) {
			argv[k++] = (char *)"--uri";
			argv[k++] = (char *)vici_uri;
		}
		argv[k] = NULL;
		rc = run(argv, env, 30, quiet ? 2 : 1);
		if (rc) {
			if (!quiet)
				xd_warn("--swan-dir: swanctl %s%s%s failed (%d): charon keeps the old "
					"certificate", cmds[i], vici_uri ? " --uri " : "",
					vici_uri ? vici_uri : "", rc);
			return rc < 0 ? rc : -EIO;
		}
	}
	printf("xdnat-host: charon reloaded the certificate and connections (vici%s%s)\n",
	       vici_uri ? " " : "", vici_uri ? vici_uri : "");
	fflush(stdout);
	return 0;
}

int host_cert_hook(const struct host_cert *h, const char *cmd, const char *swan_dir,
		   unsigned timeout_s)
{
	char e[8][700];
	char *env[9];
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL };
	unsigned k = 0;
	int rc;

	snprintf(e[k++], sizeof(e[0]), "XDNAT_CERT=%s", h->crt_path);
	snprintf(e[k++], sizeof(e[0]), "XDNAT_CERT_CHAIN=%s", h->chain_path);
	snprintf(e[k++], sizeof(e[0]), "XDNAT_KEY=%s", h->key_path);
	snprintf(e[k++], sizeof(e[0]), "XDNAT_CERT_SERIAL=%s", h->serial);
	snprintf(e[k++], sizeof(e[0]), "XDNAT_CERT_PREVIOUS_SERIAL=%s", h->prev_serial);
	snprintf(e[k++], sizeof(e[0]), "XDNAT_CERT_NOT_AFTER=%lld", (long long)h->not_after);
	snprintf(e[k++], sizeof(e[0]), "XDNAT_CERT_IDENTITY=%s", h->identity);
	if (swan_dir)
		snprintf(e[k++], sizeof(e[0]), "XDNAT_SWAN_DIR=%s", swan_dir);
	for (unsigned i = 0; i < k; i++)
		env[i] = e[i];
	env[k] = NULL;
	rc = run(argv, env, timeout_s, 0);
	if (rc)
		xd_warn("--on-renew: the command failed (%d)", rc);
	return rc;
}
