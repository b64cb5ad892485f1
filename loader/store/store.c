// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The store's entry points, whatever the backend: see store.h. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "store.h"

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

/* The one place that picks a backend: etcd://HOST:PORT[/PREFIX] selects
 * etcd (store_etcd.c), anything else is a directory for SQLite. */
int xd_store_open(const char *state_dir, const char *instance, unsigned flags,
		  struct xd_store **out, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int n;

	*out = NULL;
	if (xd_store_is_etcd(state_dir)) {
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
