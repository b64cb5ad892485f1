// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatd's hold on the system: the instance lock and the sysctls it sets
 * (restored on exit, handed over on reload-programs).
 */
#include "xdnatd.h"

/* ---------------------------------------------------------------- lock */

int xdd_take_lock(struct daemon *d)
{
	char path[300], pid[32];
	int fd;

	bool made = !mkdir(RUN_DIR, 0755);

	if (!made && errno != EEXIST) {
		xd_err("cannot create %s: %s", RUN_DIR, strerror(errno));
		return -errno;
	}
	/* Under our umask 077 it would be 0700: its sockets guard themselves
	 * (the control and metrics sockets are 0600) and the lock only says
	 * who runs, so that other users are told "permission denied". */
	if (made && chmod(RUN_DIR, 0755))
		xd_warn("cannot chmod 755 %s: %s", RUN_DIR, strerror(errno));
	snprintf(path, sizeof(path), RUN_DIR "/%s.lock", d->o.instance);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		xd_err("cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fchmod(fd, 0644)) /* the pid only, read by xdnatctl: not under umask 077 */
		xd_warn("cannot chmod 644 %s: %s", path, strerror(errno));
	/* xdnatctl's offline changes (no daemon running) hold the lock for a
	 * moment (writer.h): wait a second before calling it taken. */
	for (int i = 0; i < 20 && flock(fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK; i++)
		usleep(50 * 1000);
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ssize_t n = read(fd, pid, sizeof(pid) - 1);

		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		xd_err("instance '%s' is already running (pid %s, lock %s)", d->o.instance,
		       *pid ? pid : "?", path);
		close(fd);
		return -EBUSY;
	}
	if (ftruncate(fd, 0) == 0) {
		int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());

		if (write(fd, pid, (size_t)n) != n)
			xd_warn("cannot record pid in %s", path);
	}
	d->lock_fd = fd;
	return 0;
}

/* ------------------------------------------------------------ sysctls */

/* The value our predecessor (reload-programs) found before changing @path. */
static bool saved_sysctl(const char *path, char *old, size_t len)
{
	const char *env = getenv(SAVED_SYSCTLS_ENV);
	size_t n = strlen(path);

	while (env && *env) {
		const char *end = strchr(env, ';');
		size_t l = end ? (size_t)(end - env) : strlen(env);

		if (l > n && !strncmp(env, path, n) && env[n] == '=' && l - n - 1 < len) {
			memcpy(old, env + n + 1, l - n - 1);
			old[l - n - 1] = '\0';
			return true;
		}
		env = end ? end + 1 : NULL;
	}
	return false;
}

/* The current value of @path, or @fallback. */
static const char *cur_or(const char *path, const char *fallback)
{
	static char buf[32];

	return xd_sysctl_get(path, buf, sizeof(buf)) ? fallback : buf;
}

static int set_sysctl(struct daemon *d, const char *path, const char *val)
{
	struct sysctl_saved *s;
	int rc;

	if (d->n_sysctls == (int)(sizeof(d->sysctls) / sizeof(d->sysctls[0])))
		return -ENOSPC;
	s = &d->sysctls[d->n_sysctls];
	snprintf(s->path, sizeof(s->path), "%s", path);
	rc = xd_sysctl_get(path, s->old, sizeof(s->old));
	if (rc) {
		xd_err("cannot read %s: %s", path, strerror(-rc));
		return rc;
	}
	d->n_sysctls++;
	if (saved_sysctl(path, s->old, sizeof(s->old)))
		s->changed = true; /* our predecessor changed it: restore its original */
	if (!strcmp(s->old, val) || !strcmp(cur_or(path, s->old), val))
		return 0;
	rc = xd_sysctl_set(path, val);
	if (rc == 0)
		s->changed = true;
	return rc;
}

void xdd_restore_sysctls(struct daemon *d)
{
	for (int i = d->n_sysctls - 1; i >= 0; i--) {
		if (d->sysctls[i].changed && xd_sysctl_set(d->sysctls[i].path, d->sysctls[i].old))
			xd_warn("could not restore %s to %s", d->sysctls[i].path, d->sysctls[i].old);
	}
	d->n_sysctls = 0;
}

/*
 * ip_forward: the stack forwards what XDP hands it when a next hop is not
 * resolved yet.  accept_local: those packets carry the router's own
 * addresses (the global address from the LAN, the tunnel source towards the
 * LAN), which the kernel otherwise drops as martians.
 */
int xdd_setup_sysctls(struct daemon *d)
{
	const char *ifs[2] = { d->o.wan, d->o.lan };
	char path[128];
	int rc = set_sysctl(d, "/proc/sys/net/ipv4/ip_forward", "1");

	for (int i = 0; i < 2 && !rc; i++) {
		if (i == 1 && !strcmp(ifs[0], ifs[1]))
			break;
		snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/accept_local", ifs[i]);
		rc = set_sysctl(d, path, "1");
	}
	return rc;
}
