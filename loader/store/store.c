// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The store's entry points, whatever the backend: see store.h. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "store.h"

/* The process's store configuration (xd_store_configure) and its copies. */
static struct xd_store_cfg cfg = { .prefix = XD_STORE_DEFAULT_PREFIX, .endpoints = "",
				   .cacert = "", .cert = "", .key = "",
				   .timeout_ms = XD_STORE_DEFAULT_TIMEOUT,
				   .max_txn_ops = XD_STORE_DEFAULT_MAX_TXN_OPS };
static char cfg_ep[XD_STORE_MAX_ENDPOINTS * 200], cfg_prefix[100], cfg_ca[PATH_MAX],
	    cfg_cert[PATH_MAX], cfg_key[PATH_MAX], cfg_id[XD_STORE_ID_MAX + 1];

uint64_t rsip_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int xd_store_fail(struct xd_store *st, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	return rc;
}

const char *xd_store_error(const struct xd_store *st)
{
	return st && st->err[0] ? st->err : "unknown error";
}

int xd_store_parse_backend(const char *s, enum xd_store_backend *out)
{
	if (s && !strcmp(s, "sqlite"))
		*out = XD_STORE_SQLITE;
	else if (s && !strcmp(s, "etcd"))
		*out = XD_STORE_ETCD;
	else
		return -EINVAL;
	return 0;
}

static bool id_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= XD_STORE_ID_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
							 "0123456789_.-") == n && s[0] != '.';
}

/* A key prefix: '/' then [A-Za-z0-9_.-/], no "//", no "." or ".." part. */
static bool prefix_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n < sizeof(cfg_prefix) && s[0] == '/' && !strstr(s, "//") &&
	       !strstr(s, "/./") && !strstr(s, "/../") && strspn(s, "abcdefghijklmnopqrstuvwxyz"
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/") == n;
}

static int copy_to(char *dst, size_t len, const char *src, const char *what, char *err, size_t errlen)
{
	if (strlen(src) >= len) {
		snprintf(err, errlen, "%s: too long", what);
		return -EINVAL;
	}
	memmove(dst, src, strlen(src) + 1);
	return 0;
}

/* A TLS file must exist and be readable now: a typo is a usage error at
 * start, not a failed handshake later. */
static int file_ok(const char *path, const char *what, char *err, size_t errlen)
{
	if (path && *path && access(path, R_OK)) {
		snprintf(err, errlen, "%s: cannot read %s: %s", what, path, strerror(errno));
		return -EINVAL;
	}
	return 0;
}

static const char *nz(const char *s)
{
	return s ? s : "";
}

bool xd_store_cfg_same(const struct xd_store_cfg *a, const struct xd_store_cfg *b)
{
	return a->backend == b->backend && !strcmp(nz(a->endpoints), nz(b->endpoints)) &&
	       !strcmp(nz(a->prefix), nz(b->prefix)) && !strcmp(nz(a->cacert), nz(b->cacert)) &&
	       !strcmp(nz(a->cert), nz(b->cert)) && !strcmp(nz(a->key), nz(b->key)) &&
	       a->timeout_ms == b->timeout_ms && !strcmp(nz(a->router_id), nz(b->router_id)) &&
	       a->max_txn_ops == b->max_txn_ops;
}

int xd_store_cfg_check(const struct xd_store_cfg *in, char *err, size_t errlen)
{
	const char *prefix = in->prefix && *in->prefix ? in->prefix : XD_STORE_DEFAULT_PREFIX;
	int rc;

	if (in->backend == XD_STORE_ETCD && (!in->endpoints || !*in->endpoints)) {
		snprintf(err, errlen, "[store] backend etcd (--store-backend) needs endpoints (--store-endpoints http(s)://HOST:PORT[,...])");
		return -EINVAL;
	}
	if (in->endpoints && *in->endpoints && (rc = xd_store_etcd_check_endpoints(in->endpoints, err, errlen)))
		return rc;
	if (!prefix_ok(prefix)) {
		snprintf(err, errlen, "store prefix '%s': want /NAME[/NAME...] of [A-Za-z0-9_.-]", prefix);
		return -EINVAL;
	}
	if ((in->cert && *in->cert) != (in->key && *in->key)) {
		snprintf(err, errlen, "store TLS: a client certificate needs its key and the key its "
			 "certificate (cert and key)");
		return -EINVAL;
	}
	if (in->timeout_ms && (in->timeout_ms < 10 || in->timeout_ms > 600000)) {
		snprintf(err, errlen, "store timeout %u ms: want 10 to 600000", in->timeout_ms);
		return -EINVAL;
	}
	if (in->max_txn_ops && (in->max_txn_ops < XD_STORE_MAX_TXN_OPS_MIN ||
				in->max_txn_ops > XD_STORE_MAX_TXN_OPS_MAX)) {
		snprintf(err, errlen, "store max-txn-ops %u: want %d to %d (etcd's --max-txn-ops, "
			 "default %d)", in->max_txn_ops, XD_STORE_MAX_TXN_OPS_MIN,
			 XD_STORE_MAX_TXN_OPS_MAX, XD_STORE_DEFAULT_MAX_TXN_OPS);
		return -EINVAL;
	}
	if (in->router_id && *in->router_id && !id_ok(in->router_id)) {
		snprintf(err, errlen, "router id '%s': want 1-%d of [A-Za-z0-9_.-], not starting with '.'",
			 in->router_id, XD_STORE_ID_MAX);
		return -EINVAL;
	}
	if ((rc = file_ok(in->cacert, "store cacert", err, errlen)) ||
	    (rc = file_ok(in->cert, "store cert", err, errlen)) ||
	    (rc = file_ok(in->key, "store key", err, errlen)))
		return rc;
	return 0;
}

int xd_store_configure(const struct xd_store_cfg *in, char *err, size_t errlen)
{
	const char *prefix = in->prefix && *in->prefix ? in->prefix : XD_STORE_DEFAULT_PREFIX;
	size_t pl = strlen(prefix);
	char host[256];
	int rc;

	if ((rc = xd_store_cfg_check(in, err, errlen)))
		return rc;
	while (pl > 1 && prefix[pl - 1] == '/')
		pl--;
	if (in->router_id && *in->router_id) {
		snprintf(cfg_id, sizeof(cfg_id), "%s", in->router_id);
	} else if (!gethostname(host, sizeof(host)) && (host[sizeof(host) - 1] = 0, 1)) {
		/* the host name's first label, as an id */
		host[strcspn(host, ".")] = 0;
		snprintf(cfg_id, sizeof(cfg_id), "%.*s", XD_STORE_ID_MAX, id_ok(host) ? host : "router");
	} else {
		snprintf(cfg_id, sizeof(cfg_id), "router");
	}
	if ((rc = copy_to(cfg_ep, sizeof(cfg_ep), in->endpoints ? in->endpoints : "", "store endpoints",
			  err, errlen)) ||
	    (rc = copy_to(cfg_ca, sizeof(cfg_ca), in->cacert ? in->cacert : "", "store cacert", err, errlen)) ||
	    (rc = copy_to(cfg_cert, sizeof(cfg_cert), in->cert ? in->cert : "", "store cert", err, errlen)) ||
	    (rc = copy_to(cfg_key, sizeof(cfg_key), in->key ? in->key : "", "store key", err, errlen)))
		return rc;
	snprintf(cfg_prefix, sizeof(cfg_prefix), "%.*s", (int)pl, prefix);
	cfg = (struct xd_store_cfg){
		.backend = in->backend, .endpoints = cfg_ep, .prefix = cfg_prefix, .cacert = cfg_ca,
		.cert = cfg_cert, .key = cfg_key, .router_id = cfg_id,
		.timeout_ms = in->timeout_ms ? in->timeout_ms : XD_STORE_DEFAULT_TIMEOUT,
		.max_txn_ops = in->max_txn_ops ? in->max_txn_ops : XD_STORE_DEFAULT_MAX_TXN_OPS,
	};
	return 0;
}

const char *xd_store_where(const char *state_dir, const char *instance, char *buf, size_t len)
{
	if (cfg.backend == XD_STORE_ETCD)
		snprintf(buf, len, "etcd %s/%s/ at %s", cfg.prefix, instance, cfg.endpoints);
	else if (xd_store_is_etcd(state_dir))
		snprintf(buf, len, "%s (instance %s)", state_dir, instance);
	else
		snprintf(buf, len, "%s/%s.db", state_dir, instance);
	return buf;
}

const struct xd_store_cfg *xd_store_config(void)
{
	return &cfg;
}

const char *xd_store_router_id(void)
{
	char err[64];

	if (!cfg.router_id) {
		struct xd_store_cfg c = cfg;

		c.router_id = NULL;
		if (xd_store_configure(&c, err, sizeof(err)))
			return "router";
	}
	return cfg.router_id;
}

/* The one place that picks a backend: [store] backend = etcd
 * (xd_store_configure) or a location etcd://HOST:PORT[/PREFIX] selects
 * etcd (store_etcd.c), anything else is a directory for SQLite. */
int xd_store_open(const char *state_dir, const char *instance, unsigned flags,
		  struct xd_store **out, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int n;

	*out = NULL;
	if (cfg.backend == XD_STORE_ETCD || xd_store_is_etcd(state_dir)) {
		if (!xd_valid_instance(instance)) {
			snprintf(err, errlen, "invalid instance name '%s'", instance ? instance : "");
			return -EINVAL;
		}
		return xd_store_etcd_open(state_dir, instance, flags, out, err, errlen);
	}
	if (!(flags & XD_STORE_RDONLY) && mkdir(state_dir, 0700) && errno != EEXIST) {
		n = -errno;
		snprintf(err, errlen, "cannot create state directory %s: %s", state_dir, strerror(-n));
		return n;
	}
	if (!xd_valid_instance(instance)) {
		snprintf(err, errlen, "invalid instance name '%s'", instance ? instance : "");
		return -EINVAL;
	}
	n = snprintf(path, sizeof(path), "%s/%s.db", state_dir, instance);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "state directory path too long");
		return -ENAMETOOLONG;
	}
	return xd_store_sqlite_open(path, flags, out, err, errlen);
}

void xd_store_close(struct xd_store *st)
{
	if (st)
		st->ops->close(st);
}

int xd_store_enroll_new(struct xd_store *st, const char *name, uint32_t lan_be,
			uint8_t secret[RSIP_SECRET_LEN])
{
	if (rsip_random(secret, RSIP_SECRET_LEN))
		return xd_store_fail(st, -EIO, "no randomness for the secret");
	return st->ops->enroll(st, name, lan_be, secret, (int64_t)rsip_now_ms());
}
