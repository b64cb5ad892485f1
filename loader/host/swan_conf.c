// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * strongSwan configuration from a host's allocation: see swan_conf.h and
 * docs/STRONGSWAN.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "xdnat.h"
#include "swan_conf.h"

#define MAX_CA 16

static int path(char *buf, size_t len, const char *dir, const char *rel)
{
	int n = snprintf(buf, len, "%s/%s", dir, rel);

	if (n < 0 || (size_t)n >= len) {
		xd_err("--swan-dir: path too long: %s/%s", dir, rel);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int mkdirs(const char *dir, const char *rel, mode_t mode)
{
	char p[512], *s;

	if (path(p, sizeof(p), dir, rel))
		return -ENAMETOOLONG;
	for (s = p + 1; ; s++) {
		if (*s == '/' || !*s) {
			char c = *s;

			*s = '\0';
			if (mkdir(p, c ? 0755 : mode) && errno != EEXIST) {
				xd_err("cannot create %s: %s", p, strerror(errno));
				return -errno;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	return 0;
}

int swan_charon_settings(const struct swan_conf *c, struct swan_charon *o)
{
	uint32_t x, mask;

	memset(o, 0, sizeof(*o));
	if (c->shared_ike) {
		o->port = c->ike_port ? c->ike_port : XDNAT_IKE_PORT;
		o->port_nat_t = c->ike_port_nat_t ? c->ike_port_nat_t : XDNAT_IKE_NATT_PORT;
		if (o->port == o->port_nat_t)
			return -EINVAL;
		if (!c->spi_last)
			return -EINVAL;
	} else {
		if (c->port_first == 0 || c->port_last > 65535 ||
		    c->port_last < c->port_first + 1)
			return -EINVAL;
		o->port = (uint16_t)c->port_first;
		o->port_nat_t = (uint16_t)(c->port_first + 1);
	}
	if (!c->spi_first && !c->spi_last)
		return 0;
	if (c->spi_first < 256 || c->spi_last < c->spi_first)
		return -EINVAL;
	o->spi_min = c->spi_first;
	o->spi_max = c->spi_last;
	if (c->shared_ike) {
		/* Every top-32-bit value the label allows must be one of our
		 * SPIs: the largest aligned run of 2^k SPIs at the start. */
		unsigned k = 0;

		while (k < 31 && !(c->spi_first & (1u << k)) &&
		       (uint64_t)c->spi_first + (2ull << k) - 1 <= c->spi_last)
			k++;
		o->spi_mask = ~0ull << (32 + k);
		o->spi_label = (uint64_t)c->spi_first << 32;
		o->has_spis = 1;
		return 0;
	}
	/* The IKE SPI label: the prefix the whole SPI range shares (an RSIP
	 * binding of a 2^16 block is announced as its first 65535 SPIs, so the
	 * range need not be a whole power of two). */
	x = c->spi_first ^ c->spi_last;
	mask = 0xffffffffu;
	while (x) {
		mask <<= 1;
		x >>= 1;
	}
	o->spi_mask = (uint64_t)mask << 32;
	o->spi_label = (uint64_t)(c->spi_first & mask) << 32;
	o->has_spis = 1;
	return 0;
}

/* strongSwan's DN string syntax has no quoting for ',' in a value (it
 * splits there), so such names are refused rather than mangled. */
int swan_identity(const char *cert_path, uint32_t gaddr, uint32_t lan_addr,
		  char *buf, size_t len)
{
	char g[INET_ADDRSTRLEN], l[INET_ADDRSTRLEN];
	X509 *x = NULL;
	FILE *f;
	size_t off = 0;
	int n, rc = 0;

	f = cert_path ? fopen(cert_path, "r") : NULL;
	if (!f) {
		xd_ipstr(gaddr, g);
		xd_ipstr(lan_addr, l);
		n = snprintf(buf, len, "O=xdnat, OU=%s, CN=%s@%s", g, l, g);
		return n < 0 || (size_t)n >= len ? -EINVAL : -ENOENT;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x) {
		xd_err("%s: not a PEM certificate", cert_path);
		return -EINVAL;
	}
	const X509_NAME *nm = X509_get_subject_name(x);
	int cnt = X509_NAME_entry_count(nm);

	buf[0] = '\0';
	for (int i = 0; i < cnt && !rc; i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(nm, i);
		int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
		unsigned char *v = NULL;
		const char *sn = nid == NID_undef ? NULL : OBJ_nid2sn(nid);
		int vl = ASN1_STRING_to_UTF8(&v, X509_NAME_ENTRY_get_data(e));

		if (!sn || vl < 0 || memchr(v, ',', (size_t)vl) || memchr(v, '"', (size_t)vl) ||
		    memchr(v, '\0', (size_t)vl)) {
			xd_err("%s: subject attribute %d cannot be written as a strongSwan identity",
			       cert_path, i);
			rc = -EINVAL;
		} else {
			n = snprintf(buf + off, len - off, "%s%s=%.*s", i ? ", " : "", sn, vl, v);
			if (n < 0 || (size_t)n >= len - off)
				rc = -EINVAL;
			else
				off += (size_t)n;
		}
		OPENSSL_free(v);
	}
	if (!rc && !cnt) {
		xd_err("%s: empty subject", cert_path);
		rc = -EINVAL;
	}
	X509_free(x);
	return rc;
}

/* Write CONTENT to DIR/REL atomically, mode MODE: a fresh temporary file
 * (O_EXCL|O_NOFOLLOW: never through a link someone planted, never into a
 * file someone else opened), then rename over REL. */
static int write_file(const char *dir, const char *rel, const void *content, size_t len,
		      mode_t mode)
{
	char p[512], tmp[540];
	int fd;
	ssize_t w;

	if (path(p, sizeof(p), dir, rel))
		return -ENAMETOOLONG;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", p, (long)getpid());
	if (unlink(tmp) && errno != ENOENT) {   /* a leftover of a crashed run of this pid */
		xd_err("cannot remove %s: %s", tmp, strerror(errno));
		return -errno;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		xd_err("cannot write %s: %s", tmp, strerror(errno));
		return -errno;
	}
	errno = 0;
	w = write(fd, content, len);
	if (w != (ssize_t)len || fchmod(fd, mode) || fsync(fd) || close(fd) || rename(tmp, p)) {
		xd_err("cannot write %s: %s", p, strerror(errno ? errno : EIO));
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

/* The key: made once (EC P-256), kept across restarts; the CSR from it. */
static int ensure_key_csr(const struct swan_conf *c)
{
	char kp[512], g[INET_ADDRSTRLEN], cn[64];
	EVP_PKEY *k = NULL;
	X509_REQ *rq = NULL;
	BIO *b = NULL;
	FILE *f;
	char *pem;
	long pl;
	int rc = -EIO;

	if (path(kp, sizeof(kp), c->dir, SWAN_CONF_KEY))
		return -ENAMETOOLONG;
	f = fopen(kp, "r");
	if (f) {
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		if (!k) {
			xd_err("%s: not a PEM private key (remove it to make a new one)", kp);
			return -EINVAL;
		}
	} else {
		int fd;

		k = EVP_EC_gen("P-256");
		if (!k) {
			xd_err("cannot generate an EC P-256 key");
			return -EIO;
		}
		fd = open(kp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		f = fd < 0 ? NULL : fdopen(fd, "w");
		if (!f || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) || fflush(f) ||
		    fsync(fileno(f))) {
			xd_err("cannot write %s: %s", kp, strerror(errno ? errno : EIO));
			if (f)
				fclose(f);
			else if (fd >= 0)
				close(fd);
			unlink(kp);
			goto out;
		}
		fclose(f);
		xd_info("generated the IKE key %s (EC P-256)", kp);
	}
	/* The LCA writes every field itself; the CSR's subject is a hint. */
	rq = X509_REQ_new();
	snprintf(cn, sizeof(cn), "%s@%s", xd_ipstr(c->lan_addr, (char[INET_ADDRSTRLEN]){0}),
		 xd_ipstr(c->gaddr, g));
	if (!rq || !X509_REQ_set_version(rq, 0) || !X509_REQ_set_pubkey(rq, k) ||
	    !X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(rq), "CN", MBSTRING_ASC,
					(const unsigned char *)cn, -1, -1, 0) ||
	    !X509_REQ_sign(rq, k, EVP_sha256()) || !(b = BIO_new(BIO_s_mem())) ||
	    !PEM_write_bio_X509_REQ(b, rq)) {
		xd_err("cannot make the CSR");
		goto out;
	}
	pl = BIO_get_mem_data(b, &pem);
	rc = write_file(c->dir, SWAN_CONF_CSR, pem, (size_t)pl, 0644);
out:
	BIO_free(b);
	X509_REQ_free(rq);
	EVP_PKEY_free(k);
	return rc;
}

/* Copy SRC to DIR/REL (mode MODE).  -ENOENT (quietly) when SRC is missing. */
static int copy_file(const char *src, const struct swan_conf *c, const char *rel, mode_t mode)
{
	char buf[65536];
	size_t n;
	FILE *f = fopen(src, "r");

	if (!f) {
		if (errno == ENOENT)
			return -ENOENT;
		xd_err("cannot read %s: %s", src, strerror(errno));
		return -errno;
	}
	n = fread(buf, 1, sizeof(buf), f);
	if (ferror(f) || !feof(f)) {
		xd_err("cannot read %s (or larger than %zu bytes)", src, sizeof(buf));
		fclose(f);
		return -EIO;
	}
	fclose(f);
	return write_file(c->dir, rel, buf, n, mode);
}

/* The key and certificate xdnat-host holds (RSIP enrolment). */
static int copy_enrolled(const struct swan_conf *c)
{
	char p[512];
	int rc = copy_file(c->key_path, c, SWAN_CONF_KEY, 0600);

	if (rc) {
		if (rc == -ENOENT)
			xd_err("--swan-dir: no key at %s", c->key_path);
		return rc;
	}
	if (!c->cert_path)
		return 0;
	rc = copy_file(c->cert_path, c, SWAN_CONF_CERT, 0644);
	if (rc == -ENOENT) {
		/* Not issued (yet): no stale certificate with another key. */
		if (!path(p, sizeof(p), c->dir, SWAN_CONF_CERT))
			unlink(p);
		return 0;
	}
	return rc;
}

/* Every certificate of CA_FILE as x509ca/ca-N.crt (swanctl loads one
 * certificate per file); stale ca-M.crt beyond the new count removed. */
static int install_cas(const struct swan_conf *c)
{
	char rel[64];
	X509 *x;
	FILE *f;
	int n = 0, rc = 0;

	const char *file = c->ca_file ? c->ca_file : c->key_path ? c->chain_path : NULL;

	if (!file)
		return 0;
	f = fopen(file, "r");
	if (!f) {
		if (!c->ca_file && errno == ENOENT)
			return 0;   /* the router sent no LCA certificate */
		xd_err("--swan-ca: cannot open %s: %s", file, strerror(errno));
		return -errno;
	}
	while (!rc && (x = PEM_read_X509(f, NULL, NULL, NULL))) {
		BIO *b = BIO_new(BIO_s_mem());
		char *pem;
		long pl;

		if (n == MAX_CA) {
			xd_err("--swan-ca: more than %d certificates in %s", MAX_CA, file);
			rc = -E2BIG;
		} else if (!b || !PEM_write_bio_X509(b, x)) {
			rc = -ENOMEM;
		} else {
			pl = BIO_get_mem_data(b, &pem);
			snprintf(rel, sizeof(rel), "swanctl/x509ca/ca-%d.crt", ++n);
			rc = write_file(c->dir, rel, pem, (size_t)pl, 0644);
		}
		BIO_free(b);
		X509_free(x);
	}
	fclose(f);
	if (!rc && !n) {
		xd_err("--swan-ca: no PEM certificate in %s", file);
		rc = -EINVAL;
	}
	for (int i = n + 1; !rc && i <= MAX_CA; i++) {
		char p[512];

		snprintf(rel, sizeof(rel), "swanctl/x509ca/ca-%d.crt", i);
		if (!path(p, sizeof(p), c->dir, rel))
			unlink(p);
	}
	return rc;
}

int swan_conf_write(const struct swan_conf *c)
{
	struct swan_charon s;
	char id[512], cert[512], g[INET_ADDRSTRLEN], text[2048];
	int n, rc;

	if (swan_charon_settings(c, &s)) {
		xd_err("--swan-dir: needs a port block of at least 2 ports (or --shared-ike) and "
		       "an SPI block above 255 (with --shared-ike) "
		       "(have ports %u-%u, SPIs 0x%x-0x%x)",
		       c->port_first, c->port_last, c->spi_first, c->spi_last);
		return -EINVAL;
	}
	/* swanctl --load-all reads every one of these (and complains when one
	 * is missing); keys only in private/, mode 0700. */
	static const char *const sub[] = { "strongswan.d", "swanctl/conf.d", "swanctl/x509",
		"swanctl/x509ca", "swanctl/x509crl", "swanctl/x509ocsp", "swanctl/x509aa",
		"swanctl/x509ac", "swanctl/pubkey", "swanctl/rsa", "swanctl/ecdsa", "swanctl/bliss",
		"swanctl/pkcs8", "swanctl/pkcs12" };

	for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++)
		if ((rc = mkdirs(c->dir, sub[i], 0755)))
			return rc;
	if ((rc = mkdirs(c->dir, "swanctl/private", 0700)))
		return rc;
	if ((rc = c->key_path ? copy_enrolled(c) : ensure_key_csr(c)) || (rc = install_cas(c)))
		return rc;
	if ((rc = path(cert, sizeof(cert), c->dir, SWAN_CONF_CERT)))
		return rc;
	rc = swan_identity(cert, c->gaddr, c->lan_addr, id, sizeof(id));
	if (rc && rc != -ENOENT)
		return rc;
	if (rc == -ENOENT)
		xd_info("no certificate at %s yet: identity '%s' (the LCA's default name)", cert, id);

	n = snprintf(text, sizeof(text),
		"# Written by xdnat-host from this host's allocation; rewritten when it\n"
		"# changes, removed when xdnat-host stops.  Include it from\n"
		"# strongswan.conf (top level): include %s/" SWAN_CONF_CHARON "\n"
		"charon {\n"
		"\tport = %u\n"
		"\tport_nat_t = %u\n",
		c->dir, s.port, s.port_nat_t);
	if (s.has_spis)
		n += snprintf(text + n, sizeof(text) - (size_t)n,
			"\tspi_min = 0x%08x\n"
			"\tspi_max = 0x%08x\n"
			"\tspi_mask = 0x%016llx\n"
			"\tspi_label = 0x%016llx\n",
			s.spi_min, s.spi_max, (unsigned long long)s.spi_mask,
			(unsigned long long)s.spi_label);
	else
		n += snprintf(text + n, sizeof(text) - (size_t)n,
			"\t# no SPI block: inbound ESP from the peer cannot be mapped to this\n"
			"\t# host unless it travels in UDP to the ports above\n");
	n += snprintf(text + n, sizeof(text) - (size_t)n, "}\n");
	if ((rc = write_file(c->dir, SWAN_CONF_CHARON, text, (size_t)n, 0644)))
		return rc;

	if (c->shared_ike)
		n = snprintf(text, sizeof(text),
			"# Written by xdnat-host: this host's IKE identity.  Inherit it in\n"
			"# swanctl.conf:  connections { peer : xdnat-local { ... } }\n"
			"# Shared IKE ports: the ports are charon's (the router's shared ports).\n"
			"xdnat-local {\n"
			"\tlocal_addrs = %s\n"
			"\tlocal {\n"
			"\t\tauth = pubkey\n"
			"\t\t# no certs = host.crt: charon picks x509/host.crt by id at\n"
			"\t\t# each IKE_AUTH (a connection would keep the one loaded first)\n"
			"\t\tid = \"%s\"\n"
			"\t}\n"
			"}\n",
			xd_ipstr(c->gaddr, g), id);
	else
		n = snprintf(text, sizeof(text),
			"# Written by xdnat-host: this host's IKE identity and ports.  Inherit it\n"
			"# in swanctl.conf:  connections { peer : xdnat-local { ... } }\n"
			"# (remote_port = the peer's NAT-T port, usually 4500).\n"
			"xdnat-local {\n"
			"\tlocal_addrs = %s\n"
			"\tlocal_port = %u\n"
			"\tlocal {\n"
			"\t\tauth = pubkey\n"
			"\t\t# no certs = host.crt: charon picks x509/host.crt by id at\n"
			"\t\t# each IKE_AUTH (a connection would keep the one loaded first)\n"
			"\t\tid = \"%s\"\n"
			"\t}\n"
			"}\n",
			xd_ipstr(c->gaddr, g), s.port_nat_t, id);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -EINVAL;
	return write_file(c->dir, SWAN_CONF_SWANCTL, text, (size_t)n, 0644);
}

int swan_conf_install_cert(const struct swan_conf *c, const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	BIO *b = NULL;
	char *pem;
	long pl;
	int rc = -EINVAL;

	if (!x || p != der + len) {
		xd_err("the certificate from the LCA is not DER");
		goto out;
	}
	if ((rc = mkdirs(c->dir, "swanctl/x509", 0755)))
		goto out;
	rc = -ENOMEM;
	if (!(b = BIO_new(BIO_s_mem())) || !PEM_write_bio_X509(b, x))
		goto out;
	pl = BIO_get_mem_data(b, &pem);
	if ((rc = write_file(c->dir, SWAN_CONF_CERT, pem, (size_t)pl, 0644)))
		goto out;
	rc = swan_conf_write(c);
out:
	BIO_free(b);
	X509_free(x);
	return rc;
}

void swan_conf_remove(const struct swan_conf *c)
{
	char p[512];

	if (!path(p, sizeof(p), c->dir, SWAN_CONF_CHARON) && unlink(p) && errno != ENOENT)
		xd_warn("cannot remove %s: %s", p, strerror(errno));
	if (!path(p, sizeof(p), c->dir, SWAN_CONF_SWANCTL) && unlink(p) && errno != ENOENT)
		xd_warn("cannot remove %s: %s", p, strerror(errno));
}
