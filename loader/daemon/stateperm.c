// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Secrets at rest: the state directory holds the hosts' enrolment secrets
 * (INSTANCE.db and its -wal and -shm files) and the Local CA's records.
 * xdnatd creates everything under umask 077; at start it also checks what
 * an earlier version, a restored backup or a careless copy left: a file or
 * directory readable by group or others is made private, with a warning
 * naming it (its contents may have been read), and one it cannot fix stops
 * the start with the command that fixes it.  The Local CA's key is the
 * operator's file: a readable one stops the start.
 */
#include <dirent.h>
#include "xdnatd.h"

/* @path (lstat @st) made private; 0, or -errno after saying why. */
static int make_private(const char *path, const struct stat *st)
{
	mode_t want = st->st_mode & 0700;

	if (st->st_uid != geteuid()) {
		xd_err("%s is owned by uid %u, not by xdnatd's user (uid %u): it holds secrets; "
		       "fix: chown %u %s", path, (unsigned)st->st_uid, (unsigned)geteuid(),
		       (unsigned)geteuid(), path);
		return -EPERM;
	}
	if (chmod(path, want)) {
		int e = errno;

		xd_err("%s is readable by group or others (mode %04o) and chmod failed: %s; "
		       "fix: chmod go-rwx %s", path, (unsigned)(st->st_mode & 07777), strerror(e),
		       path);
		return -e;
	}
	xd_warn("%s was readable by group or others (mode %04o): now %04o; what it held may "
		"have been read (enrolment secrets: enrol the hosts again)", path,
		(unsigned)(st->st_mode & 07777), (unsigned)want);
	return 0;
}

int xdd_check_state_perms(struct daemon *d)
{
	const char *dir = d->o.rcfg.state_dir ? d->o.rcfg.state_dir : XDNAT_STATE_DIR;
	char path[PATH_MAX];
	struct dirent *e;
	struct stat st;
	DIR *dh;
	int rc = 0;

	if (d->o.ca_key) {
		if (stat(d->o.ca_key, &st)) {
			xd_err("--ca-key %s: %s", d->o.ca_key, strerror(errno));
			return -errno;
		}
		if (st.st_mode & 077) {
			xd_err("--ca-key %s is readable by group or others (mode %04o): the Local "
			       "CA's private key must be private; fix: chmod 600 %s", d->o.ca_key,
			       (unsigned)(st.st_mode & 07777), d->o.ca_key);
			return -EPERM;
		}
	}
	if (!d->o.rsip && !d->o.state_dir_set)
		return 0;
	if (lstat(dir, &st)) {
		if (errno == ENOENT)
			return 0; /* created 0700 */
		xd_err("state directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		xd_err("state directory %s is not a directory", dir);
		return -ENOTDIR;
	}
	if ((st.st_mode & 077) && (rc = make_private(dir, &st)))
		return rc;
	dh = opendir(dir);
	if (!dh) {
		xd_err("cannot read state directory %s: %s%s", dir, strerror(errno),
		       errno == EACCES ? " (xdnatd needs root)" : "");
		return -errno;
	}
	while ((e = readdir(dh)) && !rc) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		if (lstat(path, &st) || S_ISLNK(st.st_mode) || !(st.st_mode & 077))
			continue;
		if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
			rc = make_private(path, &st);
	}
	closedir(dh);
	return rc;
}
