// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatctl's changes: host add|del, ports|spi add|del, ike default, enroll,
 * unenroll, and -b FILE.  Each is a request to xdnatd, the one writer of the
 * instance (writer.h), which applies it between its own RSIP changes.  Only
 * when no xdnatd runs does xdnatctl apply it itself, through the same
 * writer, holding the instance lock xdnatd holds while it runs; while the
 * lock is held by someone else it refuses.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"
#include "ctl_sock.h"
#include "writer.h"

#define CLI_LOCK_WAIT_MS 5000   /* xdnatd holds the lock but has no socket yet */
#define CLI_CHUNK        256    /* batch lines in flight to xdnatd */

int cli_offline_lock(const char *what, bool wait)
{
	char path[128];
	long pid = 0;
	int fd = -EBUSY;

	ctl_sock_path(cli.instance, path, sizeof(path));
	for (int waited = 0; fd == -EBUSY; waited += 100) {
		fd = xd_instance_lock(cli.instance, &pid);
		if (fd != -EBUSY || cli.direct || !wait || waited >= CLI_LOCK_WAIT_MS)
			break;
		usleep(100 * 1000);  /* xdnatd starting: its socket comes last */
	}
	if (fd == -EBUSY) {
		char who[48] = "another process";

		if (pid > 0 && xd_is_xdnatd(pid))
			snprintf(who, sizeof(who), "pid %ld (xdnatd)", pid);
		if (cli.direct)
			xd_err("instance '%s' is held by %s (lock %s/%s.lock): --direct changes only an "
			       "instance no xdnatd runs; refusing to change it; nothing changed",
			       cli.instance, who, XD_RUN_DIR, cli.instance);
		else
			xd_err("instance '%s' is held by %s (lock %s/%s.lock) but no xdnatd answers on %s "
			       "within %d s: refusing to change it; nothing changed", cli.instance, who,
			       XD_RUN_DIR, cli.instance, path, CLI_LOCK_WAIT_MS / 1000);
		return -1;
	}
	if (fd == -EACCES || fd == -EPERM) {
		xd_err("permission denied: changing instance '%s' needs root", cli.instance);
		return -1;
	}
	if (fd < 0) {
		xd_err("cannot take the instance lock %s/%s.lock: %s", XD_RUN_DIR, cli.instance,
		       strerror(-fd));
		return -1;
	}
	fprintf(stderr, "xdnatctl: no xdnatd answers on %s: %s\n", path, what);
	return fd;
}

/*
 * Hand change @argv to xdnatd.  Returns its exit status when xdnatd
 * answered (a text result in *text), or -1 with the instance lock in *lock
 * when this process is to apply it, or -2 when it must not (said why).
 */
static int route(int argc, char **argv, char **text, int *lock, const char *what)
{
	int rc;

	*lock = -1;
	if (!cli.direct) {
		for (int waited = 0;; waited += 100) {
			long pid;
			int fd;

			if ((rc = cli_via_daemon(argc, argv, text)) >= 0)
				return rc;
			fd = xd_instance_lock(cli.instance, &pid);
			if (fd >= 0) {
				close(fd);  /* taken again below, with the message */
				break;
			}
			if (fd != -EBUSY || waited >= CLI_LOCK_WAIT_MS)
				break;
			usleep(100 * 1000);
		}
	}
	*lock = cli_offline_lock(what, false);   /* waited above */
	return *lock < 0 ? -2 : -1;
}

/* Apply @argv here (no xdnatd: we hold the lock); result text in *text. */
static int apply_offline(int argc, char **argv, bool maps, char **text)
{
	struct xd_writer w = { .state_dir = cli.state_dir, .instance = cli.instance };
	struct xd_maps m;
	char err[320];
	size_t len = 0;
	FILE *f;
	int rc;

	if (maps) {
		if (xd_maps_open(cli.pin_base, cli.instance, &m))
			return 1;
		w.maps = &m;
	}
	f = open_memstream(text, &len);
	if (!f) {
		rc = -ENOMEM;
		snprintf(err, sizeof(err), "out of memory");
	} else {
		rc = xd_writer_apply(&w, argc, argv, true, f, err, sizeof(err));
		if (fclose(f))
			rc = rc ? rc : -ENOMEM;
	}
	if (rc)
		xd_err("%s", err);
	xd_writer_close(&w);
	if (maps)
		xd_maps_close(&m);
	return rc ? 1 : 0;
}

/* host add|del, ports|spi add|del, ike default */
int cli_change(int argc, char **argv)
{
	char err[320], *text = NULL;
	int lock, rc;

	if (xd_change_check(argc, argv, err, sizeof(err))) {
		xd_err("%s", err);
		return 2;
	}
	rc = route(argc, argv, &text, &lock, "changing the pinned maps directly");
	if (rc == -2)
		return 1;
	if (rc == -1) {
		rc = apply_offline(argc, argv, true, &text);
		close(lock);
	}
	if (text)
		fputs(text, stdout);
	free(text);
	return rc;
}

static int write_secret(const char *path, const char *hex)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t n = strlen(hex);

	if (fd < 0) {
		xd_err("cannot create %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fchmod(fd, 0600) || write(fd, hex, n) != (ssize_t)n || write(fd, "\n", 1) != 1) {
		xd_err("cannot write %s: %s", path, strerror(errno));
		close(fd);
		return -EIO;
	}
	return close(fd) ? -errno : 0;
}

/* enroll NAME [lan ADDR] [secret-file PATH] | unenroll NAME */
int cli_enroll(int argc, char **argv)
{
	char *words[4], err[320], *text = NULL;
	const char *file = NULL;
	int n = 0, lock, rc;

	if (!strcmp(argv[0], "unenroll") && argc != 2)
		return cli_usage_err("unenroll: expected NAME%s", NULL);
	if (argc < 2 || argc % 2)
		return cli_usage_err("enroll: expected NAME [lan ADDR] [secret-file PATH]%s", NULL);
	words[n++] = argv[0];
	words[n++] = argv[1];
	for (int i = 2; i < argc; i += 2) {
		if (!strcmp(argv[i], "secret-file")) {
			file = argv[i + 1];  /* written here: the secret comes back */
		} else if (!strcmp(argv[i], "lan") && n == 2) {
			words[n++] = argv[i];
			words[n++] = argv[i + 1];
		} else {
			return cli_usage_err("enroll: unknown argument '%s'", argv[i]);
		}
	}
	if (xd_change_check(n, words, err, sizeof(err))) {
		xd_err("%s", err);
		return 2;
	}
	rc = route(n, words, &text, &lock, "changing the state database directly");
	if (rc == -2)
		return 1;
	if (rc == -1) {
		rc = apply_offline(n, words, false, &text);
		close(lock);
	}
	if (!rc && text && argv[0][0] == 'e') {
		text[strcspn(text, "\n")] = '\0';
		if (file)
			rc = write_secret(file, text) ? 1 : 0;
		else
			printf("%s\n", text);
		memset(text, 0, strlen(text));
	}
	free(text);
	return rc;
}

/* ------------------------------------------------------------------ -b */

struct batch {
	const char *path;
	int fd;
	char in[CTL_BATCH_BUF];
	size_t len, off;
	bool eof;
	unsigned lineno, done;
	/* changes: to xdnatd (mode 1) or applied here under the lock (mode 2) */
	int mode, lock;
	struct ctl_batch cb;
	char *pend;                  /* lines in flight, CLI_CHUNK at most */
	size_t plen, pcap;
	unsigned pn, plines[CLI_CHUNK];
	struct xd_maps maps;
	bool maps_open;
	struct xd_writer w;
};

static int batch_fail(struct batch *b, unsigned lineno, int rc)
{
	xd_err("%s:%u: failed; %u earlier command%s applied, the rest not run", b->path, lineno,
	       b->done, b->done == 1 ? "" : "s");
	return rc;
}

/* Send the changes in flight and read their answers; 0 or the exit status. */
static int batch_flush(struct batch *b)
{
	unsigned n = b->pn;
	int rc = 0;

	if (!n)
		return 0;
	b->pn = 0;
	rc = ctl_batch_send(&b->cb, b->pend, b->plen);
	b->plen = 0;
	for (unsigned i = 0; i < n && !rc; i++) {
		char *resp = NULL;
		int r = ctl_batch_recv(&b->cb, &resp);

		if (r) {
			xd_err("xdnatd's control socket: %s", strerror(-r));
			return batch_fail(b, b->plines[i], 1);
		}
		if (cli_print_response(resp, NULL)) {
			free(resp);
			return batch_fail(b, b->plines[i], 1);
		}
		free(resp);
		b->done++;
	}
	if (rc) {
		xd_err("xdnatd's control socket: %s", strerror(-rc));
		return batch_fail(b, b->plines[0], 1);
	}
	return 0;
}

/* Decide where the changes go: xdnatd, or here under the lock. */
static int batch_mode(struct batch *b)
{
	char path[128];
	int rc;

	if (b->mode)
		return 0;
	rc = -ENOENT;
	for (int i = 0; !cli.direct && i < CLI_BUSY_TRIES; i++) {
		rc = ctl_batch_open(cli.instance, true, CLI_TIMEOUT_MS, &b->cb);
		if (rc != -EBUSY)
			break;
		usleep(20 * 1000);
	}
	if (!rc) {
		b->mode = 1;
		return 0;
	}
	ctl_sock_path(cli.instance, path, sizeof(path));
	if (rc == -EACCES || rc == -EPERM) {
		xd_err("%s: permission denied (the control socket is for root only)", path);
		return 1;
	}
	if (rc != -ENOENT && rc != -ECONNREFUSED) {
		xd_err("xdnatd's control socket %s: %s", path, strerror(-rc));
		return 1;
	}
	b->lock = cli_offline_lock("changing the pinned maps directly", true);
	if (b->lock < 0)
		return 1;
	b->mode = 2;
	return 0;
}

static int batch_maps(struct batch *b)
{
	if (!b->maps_open && xd_maps_open(cli.pin_base, cli.instance, &b->maps))
		return 1;
	b->maps_open = true;
	return 0;
}

/* One change: queued for xdnatd, or applied here. */
static int batch_change(struct batch *b, int n, char **args, const char *line)
{
	char err[320];
	size_t ll = strlen(line);
	int rc;

	if (xd_change_check(n, args, err, sizeof(err))) {
		xd_err("%s", err);
		return (rc = batch_flush(b)) ? rc : batch_fail(b, b->lineno, 2);
	}
	if ((rc = batch_mode(b)))
		return rc;
	if (b->mode == 2) {
		if (batch_maps(b))
			return batch_fail(b, b->lineno, 1);
		b->w = (struct xd_writer){ .maps = &b->maps, .instance = cli.instance,
					   .state_dir = cli.state_dir };
		if (xd_writer_apply(&b->w, n, args, true, stdout, err, sizeof(err))) {
			xd_err("%s", err);
			return batch_fail(b, b->lineno, 1);
		}
		b->done++;
		return 0;
	}
	if (b->plen + ll + 1 > b->pcap) {
		size_t cap = b->pcap ? b->pcap * 2 : 16384;
		char *np;

		while (cap < b->plen + ll + 1)
			cap *= 2;
		if (!(np = realloc(b->pend, cap)))
			return batch_fail(b, b->lineno, 1);
		b->pend = np;
		b->pcap = cap;
	}
	memcpy(b->pend + b->plen, line, ll);
	b->pend[b->plen + ll] = '\n';
	b->plen += ll + 1;
	b->plines[b->pn++] = b->lineno;
	return b->pn == CLI_CHUNK ? batch_flush(b) : 0;
}

/* The next line (NUL-terminated in b->in), or NULL at the end.  Before
 * waiting for input, the changes in flight are sent: a pipe fed slowly is
 * applied as it comes. */
static char *batch_line(struct batch *b, int *rc)
{
	for (;;) {
		char *nl = memchr(b->in + b->off, '\n', b->len - b->off);
		ssize_t n;

		if (nl || (b->eof && b->off < b->len)) {
			char *l = b->in + b->off;

			if (!nl)
				nl = b->in + b->len;  /* no newline at the end: room kept */
			*nl = '\0';
			b->off = (size_t)(nl - b->in) + 1;
			return l;
		}
		if (b->eof)
			return NULL;
		memmove(b->in, b->in + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len >= sizeof(b->in) - 1) {
			xd_err("%s:%u: line too long", b->path, b->lineno + 1);
			*rc = 2;
			return NULL;
		}
		if (b->pn && poll(&(struct pollfd){ .fd = b->fd, .events = POLLIN }, 1, 0) == 0 &&
		    (*rc = batch_flush(b)))
			return NULL;
		n = read(b->fd, b->in + b->len, sizeof(b->in) - 1 - b->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			xd_err("reading %s: %s", b->path, strerror(errno));
			*rc = 1;
			return NULL;
		}
		if (n == 0)
			b->eof = true;
		b->len += (size_t)n;
	}
}

static bool batch_allowed(const char *o)
{
	static const char *const ok[] = { "host", "ports", "spi", "stats", "config", "lookup", "ike" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strcmp(o, ok[i]))
			return true;
	return false;
}

/* One line: a change, or a view of the maps once the changes before it
 * are applied (in order, as written). */
static int batch_run_line(struct batch *b, char *line)
{
	char copy[CTL_MAX_REQ], *args[64], *save = NULL, *tok;
	int n = 0, rc;

	line[strcspn(line, "#")] = '\0';
	snprintf(copy, sizeof(copy), "%s", line);
	for (tok = strtok_r(line, " \t\r\n", &save); tok && n < 64; tok = strtok_r(NULL, " \t\r\n", &save))
		args[n++] = tok;
	if (!n)
		return 0;
	if (tok || strlen(copy) >= sizeof(copy) - 1) {
		xd_err("%s:%u: too many words", b->path, b->lineno);
		return (rc = batch_flush(b)) ? rc : 2;
	}
	if (!batch_allowed(args[0])) {
		xd_err("%s:%u: '%s' cannot be used in a batch", b->path, b->lineno, args[0]);
		return (rc = batch_flush(b)) ? rc : 2;
	}
	if (xd_change_kind(n, args) == XD_CHANGE_MAPS)
		return batch_change(b, n, args, copy);
	if ((rc = batch_flush(b)))
		return rc;
	if (!strcmp(args[0], "host") && !cli_is_view(n, args))
		rc = cli_usage_err("host: expected add, del or show%s", NULL);
	else if ((rc = batch_maps(b)) == 0)
		rc = cli_view(&b->maps, n, args);
	if (rc)
		return batch_fail(b, b->lineno, rc);
	b->done++;
	return 0;
}

/*
 * -b FILE: one command per line ('#' starts a comment), in order; changes
 * travel to xdnatd CLI_CHUNK at a time over one connection, so thousands
 * per second are possible.  Stops at the first failing line, naming it;
 * earlier lines stay applied.
 */
int cli_batch(const char *path)
{
	struct batch *b = calloc(1, sizeof(*b));
	char *line;
	int rc = 0;

	if (!b)
		return 1;
	b->path = path;
	b->lock = -1;
	b->cb.fd = -1;
	b->fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	if (b->fd < 0) {
		xd_err("cannot open %s: %s", path, strerror(errno));
		free(b);
		return 1;
	}
	while (!rc && (line = batch_line(b, &rc))) {
		b->lineno++;
		rc = batch_run_line(b, line);
	}
	if (!rc)
		rc = batch_flush(b);
	if (b->mode == 1)
		ctl_batch_close(&b->cb);
	if (b->lock >= 0)
		close(b->lock);
	if (b->maps_open)
		xd_maps_close(&b->maps);
	if (b->fd > 0)
		close(b->fd);
	free(b->pend);
	free(b);
	return rc;
}
