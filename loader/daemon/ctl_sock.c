// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatd's control socket and xdnatctl's client for it (ctl_sock.h,
 * docs/CONTROL-PLANE.md "Control socket").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "ctl_sock.h"
#include "store.h"
#include "lca.h"

static const char *const reason_names[] = XDNAT_REASON_NAMES;
_Static_assert(sizeof(reason_names) / sizeof(reason_names[0]) == XDNAT_R_MAX,
	       "XDNAT_REASON_NAMES and enum xdnat_reason differ");

/* ------------------------------------------------------------ requests */

int ctl_parse_request(const char *line, size_t len, struct ctl_req *r, const char **why)
{
	char *p, *end;
	int i = 0;

	memset(r, 0, sizeof(*r));
	if (len && line[len - 1] == '\n')
		len--;
	if (len && line[len - 1] == '\r')
		len--;
	if (len >= CTL_MAX_REQ) {
		*why = "request too long";
		return -E2BIG;
	}
	for (size_t k = 0; k < len; k++) {
		unsigned char c = (unsigned char)line[k];

		if (c != ' ' && c != '\t' && (c < 0x21 || c > 0x7e)) {
			*why = "request has a byte that is not printable ASCII";
			return -EINVAL;
		}
	}
	memcpy(r->buf, line, len);
	r->buf[len] = '\0';
	p = r->buf;
	end = r->buf + len;
	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t'))
			*p++ = '\0';
		if (p == end)
			break;
		if (i == CTL_MAX_ARGS) {
			*why = "too many words in the request";
			return -E2BIG;
		}
		r->argv[i++] = p;
		while (p < end && *p != ' ' && *p != '\t')
			p++;
	}
	if (i && !strcmp(r->argv[0], "--text")) {
		r->text = true;
		memmove(r->argv, r->argv + 1, (size_t)--i * sizeof(r->argv[0]));
		r->argv[i] = NULL;
	}
	r->argc = i;
	if (!i) {
		*why = "empty request";
		return -EINVAL;
	}
	if (r->argv[0][0] == '-') {
		*why = "unknown option";
		return -EINVAL;
	}
	return 0;
}

/* ----------------------------------------------------------- responses */

static void json_escaped(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

char *ctl_error_response(int err, const char *msg, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	if (!f)
		return NULL;
	fputs("{\"ok\":false,\"error\":", f);
	json_escaped(f, msg);
	fprintf(f, ",\"errno\":%d}\n", err < 0 ? -err : err);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static uint64_t now_ms(const struct ctl_ops *o)
{
	return o->rsip && o->rsip->now_ms ? o->rsip->now_ms() : rsip_now_ms();
}

/* Each command writes its JSON object (xd_json) or its text to @f; on
 * failure it returns a negative errno and a message in @err. */
typedef int ctl_cmd_fn(const struct ctl_ops *o, const struct ctl_req *r, FILE *f,
		       const struct ctl_counters *cnt, char *err, size_t errlen);

static int cmd_ping(const struct ctl_ops *o, const struct ctl_req *r, FILE *f,
		    const struct ctl_counters *cnt, char *err, size_t errlen)
{
	struct xd_json j;

	(void)cnt, (void)err, (void)errlen;
	if (r->text) {
		fprintf(f, "xdnatd pid %d instance %s\n", (int)getpid(), o->instance);
		return 0;
	}
	xd_json_begin(&j, f);
	xd_json_u64(&j, "pid", (uint64_t)getpid());
	xd_json_str(&j, "instance", o->instance);
	xd_json_end(&j);
	return 0;
}

static int cmd_rsip_list(const struct ctl_ops *o, const struct ctl_req *r, FILE *f,
			 const struct ctl_counters *cnt, char *err, size_t errlen)
{
	(void)cnt;
	if (rsip_list(o->rsip->st, !r->text, f, now_ms(o))) {
		snprintf(err, errlen, "cannot read the state database (see xdnatd's log)");
		return -EIO;
	}
	return 0;
}

/* Without the Local CA in xdnatd, still revoke what binds an evicted block
 * (as `xdnatctl rsip evict` does on the database): certificates issued by
 * an earlier run with the CA stay valid otherwise. */
static int release_db(void *ctx, const char *name, int kind, uint32_t first, uint32_t last,
		      int reason)
{
	struct lca_err e = { { 0 } };
	unsigned n = 0;
	struct xd_store *st = ctx;
	int rc = st->ops->cert_revoke_overlapping(st, kind, first, last, reason,
						  (int64_t)(rsip_now_ms() / 1000), &n, &e);

	if (rc)
		xd_err("cannot revoke the certificates of '%s': %s", name, e.msg);
	else if (n)
		xd_info("revoked %u certificate%s of %s binding %s %u-%u", n, n == 1 ? "" : "s", name,
			kind == RSIP_KIND_PORTS ? "ports" : "SPIs", first, last);
	return rc;
}

static int cmd_rsip_evict(const struct ctl_ops *o, const struct ctl_req *r, FILE *f,
			  const struct ctl_counters *cnt, char *err, size_t errlen)
{
	struct rsip_server *s = o->rsip;
	struct rsip_freed fr[64];
	struct rsip_cert_ops saved = s->certs;
	const char *name = r->argv[2];
	struct xd_json j;
	unsigned n = 0;
	int rc;

	(void)cnt;
	if (strlen(name) > RSIP_KEYID_MAX) {
		snprintf(err, errlen, "no enrolled host '%.64s...'", name);
		return -ENOENT;
	}
	if (!s->certs.release) {
		struct lca_err e = { { 0 } };

		if (s->st->ops->ca_init(s->st, &e)) {
			snprintf(err, errlen, "cannot evict '%s': %s; nothing changed", name, e.msg);
			return -EIO;
		}
		s->certs.ctx = s->st;
		s->certs.release = release_db;
	}
	rc = rsip_server_evict(s, name, fr, sizeof(fr) / sizeof(fr[0]), &n);
	s->certs = saved;
	if (rc == -ENOENT) {
		snprintf(err, errlen, "no enrolled host '%s'", name);
		return rc;
	}
	if (rc) {
		snprintf(err, errlen, "cannot evict '%s': nothing changed", name);
		return rc;
	}
	printf("%s: control socket: evicted %s: %u binding%s out of the maps, quarantined %us\n",
	       xd_progname, name, n, n == 1 ? "" : "s", s->cfg.quarantine);
	fflush(stdout);
	if (o->changed)
		o->changed(o->arg);
	if (r->text) {
		fprintf(f, "evicted %s: %u binding%s out of the maps, quarantined %us\n", name, n,
			n == 1 ? "" : "s", s->cfg.quarantine);
		for (unsigned i = 0; i < n && i < sizeof(fr) / sizeof(fr[0]); i++)
			fprintf(f, fr[i].kind == RSIP_KIND_SPI ? "  bind %u spi 0x%x-0x%x\n" :
								 "  bind %u ports %u-%u\n",
				fr[i].bind_id, fr[i].first, fr[i].last);
		return 0;
	}
	xd_json_begin(&j, f);
	xd_json_str(&j, "host", name);
	xd_json_u64(&j, "quarantine_s", s->cfg.quarantine);
	xd_json_u64(&j, "freed_count", n);
	xd_json_arr_open(&j, "freed");
	for (unsigned i = 0; i < n && i < sizeof(fr) / sizeof(fr[0]); i++) {
		xd_json_obj_open(&j, NULL);
		xd_json_u64(&j, "bind_id", fr[i].bind_id);
		xd_json_str(&j, "kind", fr[i].kind == RSIP_KIND_SPI ? "spi" : "ports");
		xd_json_u64(&j, "first", fr[i].first);
		xd_json_u64(&j, "last", fr[i].last);
		xd_json_obj_close(&j);
	}
	xd_json_arr_close(&j);
	xd_json_end(&j);
	return 0;
}

static int cmd_stats(const struct ctl_ops *o, const struct ctl_req *r, FILE *f,
		     const struct ctl_counters *cnt, char *err, size_t errlen)
{
	static const char *const rkeys[4] = { "hosts_enrolled", "registrations", "bindings_active",
					      "bindings_quarantine" };
	struct xdnat_counter c[XDNAT_R_MAX];
	int64_t v[4] = { 0 };
	struct xd_json j;

	for (uint32_t i = 0; i < XDNAT_R_MAX; i++) {
		int rc = xd_reason_stats(o->maps, i, &c[i]);

		if (rc) {
			snprintf(err, errlen, "cannot read counter %s: %s", reason_names[i], strerror(-rc));
			return rc;
		}
	}
	if (o->rsip->st->ops->counts(o->rsip->st, v)) {
		snprintf(err, errlen, "cannot read the state database: %s", xd_store_error(o->rsip->st));
		return -EIO;
	}
	if (r->text) {
		fprintf(f, "%-20s %14s %16s\n", "reason", "packets", "bytes");
		for (uint32_t i = 0; i < XDNAT_R_MAX; i++)
			fprintf(f, "%-20s %14llu %16llu\n", reason_names[i],
				(unsigned long long)c[i].packets, (unsigned long long)c[i].bytes);
		fprintf(f, "rsip: %lld hosts enrolled, %lld registrations, %lld active bindings, "
			"%lld in quarantine\n", (long long)v[0], (long long)v[1], (long long)v[2],
			(long long)v[3]);
		fprintf(f, "control socket: %llu requests, %llu errors, %llu refused\n",
			(unsigned long long)cnt->requests, (unsigned long long)cnt->errors,
			(unsigned long long)cnt->refused);
		return 0;
	}
	xd_json_begin(&j, f);
	xd_json_obj_open(&j, "counters");
	for (uint32_t i = 0; i < XDNAT_R_MAX; i++) {
		xd_json_obj_open(&j, reason_names[i]);
		xd_json_u64(&j, "packets", c[i].packets);
		xd_json_u64(&j, "bytes", c[i].bytes);
		xd_json_obj_close(&j);
	}
	xd_json_obj_close(&j);
	xd_json_obj_open(&j, "rsip");
	for (int i = 0; i < 4; i++)
		xd_json_u64(&j, rkeys[i], (uint64_t)v[i]);
	xd_json_obj_close(&j);
	xd_json_obj_open(&j, "control");
	xd_json_u64(&j, "requests", cnt->requests);
	xd_json_u64(&j, "errors", cnt->errors);
	xd_json_u64(&j, "refused", cnt->refused);
	xd_json_obj_close(&j);
	xd_json_end(&j);
	return 0;
}

static int cmd_cert_revoke(const struct ctl_ops *o, const struct ctl_req *r, FILE *f,
			   const struct ctl_counters *cnt, char *err, size_t errlen)
{
	struct lca_err e = { { 0 } };
	int reason = LCA_REASON_UNSPECIFIED, rc;
	struct xd_json j;

	(void)cnt;
	if (r->argc == 4 && lca_reason_parse(r->argv[3], &reason)) {
		snprintf(err, errlen, "cert revoke: unknown reason '%s'", r->argv[3]);
		return -EINVAL;
	}
	if (o->rsip->st->ops->ca_init(o->rsip->st, &e))
		goto fail;
	rc = o->rsip->st->ops->cert_revoke(o->rsip->st, r->argv[2], reason, (int64_t)(now_ms(o) / 1000), &e);
	if (rc) {
		snprintf(err, errlen, "%s", e.msg[0] ? e.msg : strerror(-rc));
		return rc;
	}
	printf("%s: control socket: certificate %s revoked (%s)\n", xd_progname, r->argv[2],
	       lca_reason_name(reason));
	fflush(stdout);
	if (o->changed)
		o->changed(o->arg);
	if (r->text) {
		fprintf(f, "revoked %s (%s)\n", r->argv[2], lca_reason_name(reason));
		return 0;
	}
	xd_json_begin(&j, f);
	xd_json_str(&j, "serial", r->argv[2]);
	xd_json_bool(&j, "revoked", true);
	xd_json_str(&j, "reason", lca_reason_name(reason));
	xd_json_end(&j);
	return 0;
fail:
	snprintf(err, errlen, "%s", e.msg);
	return -EIO;
}

static const struct {
	const char *w0, *w1;
	int min, max;        /* words, the command's included */
	ctl_cmd_fn *fn;
} cmds[] = {
	{ "ping", NULL, 1, 1, cmd_ping },
	{ "rsip", "list", 2, 2, cmd_rsip_list },
	{ "rsip", "evict", 3, 3, cmd_rsip_evict },
	{ "stats", NULL, 1, 1, cmd_stats },
	{ "cert", "revoke", 3, 4, cmd_cert_revoke },
};

/* {"ok":true, + the command's object, or {"ok":true,"text":...}. */
static char *wrap_ok(const char *body, size_t blen, bool text, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	if (!f)
		return NULL;
	if (text) {
		fputs("{\"ok\":true,\"text\":", f);
		json_escaped(f, body);
		fputs("}\n", f);
	} else if (blen >= 3 && body[0] == '{') {
		fputs(body[1] == '}' ? "{\"ok\":true" : "{\"ok\":true,", f);
		fwrite(body + 1, 1, blen - 1, f);
	} else {
		fputs("{\"ok\":true}\n", f);
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

char *ctl_execute(const struct ctl_ops *ops, const struct ctl_req *r, struct ctl_counters *cnt,
		  size_t *len)
{
	char err[320] = "", *body = NULL, *out;
	size_t blen = 0;
	ctl_cmd_fn *fn = NULL;
	FILE *f;
	int rc = -EINVAL;

	cnt->requests++;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(r->argv[0], cmds[i].w0) || (cmds[i].w1 && (r->argc < 2 ||
								       strcmp(r->argv[1], cmds[i].w1))))
			continue;
		if (r->argc < cmds[i].min || r->argc > cmds[i].max) {
			snprintf(err, sizeof(err), "%s%s%s: wrong number of arguments", cmds[i].w0,
				 cmds[i].w1 ? " " : "", cmds[i].w1 ? cmds[i].w1 : "");
			goto error;
		}
		fn = cmds[i].fn;
		break;
	}
	if (!fn) {
		snprintf(err, sizeof(err), "unknown command '%.64s' (ping, rsip list, rsip evict NAME, "
			 "stats, cert revoke SERIAL [REASON])", r->argv[0]);
		goto error;
	}
	if (!ops->rsip || (!ops->maps && fn == cmd_stats)) {
		snprintf(err, sizeof(err), "not available: xdnatd runs without --rsip");
		rc = -EOPNOTSUPP;
		goto error;
	}
	f = open_memstream(&body, &blen);
	if (!f)
		return NULL;
	rc = fn(ops, r, f, cnt, err, sizeof(err));
	if (fclose(f)) {
		free(body);
		return NULL;
	}
	if (rc)
		goto error;
	if (blen > CTL_MAX_RESP) {
		snprintf(err, sizeof(err), "response too large (%zu bytes)", blen);
		rc = -E2BIG;
		goto error;
	}
	out = wrap_ok(body, blen, r->text, len);
	free(body);
	return out;
error:
	free(body);
	cnt->errors++;
	return ctl_error_response(rc, err[0] ? err : strerror(-rc), len);
}

/* -------------------------------------------------------------- daemon */

struct ctl_conn {
	int fd;                 /* -1: free slot */
	char in[CTL_MAX_REQ];
	size_t in_len;
	char *out;              /* the response being written */
	size_t out_len, out_off;
	uint64_t start_ms;
};

struct ctl_sock {
	struct ctl_ops ops;
	int lfd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	struct ctl_conn conns[CTL_MAX_CONNS];
	struct ctl_counters cnt;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int ctl_sock_path(const char *instance, char *buf, size_t len)
{
	int n = snprintf(buf, len, CTL_RUN_DIR "/%s.ctl", instance);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int ctl_open(const struct ctl_ops *ops, struct ctl_sock **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl_sock *c = calloc(1, sizeof(*c));
	struct stat st;
	mode_t old;
	int rc;

	if (!c)
		return -ENOMEM;
	c->ops = *ops;
	for (unsigned i = 0; i < CTL_MAX_CONNS; i++)
		c->conns[i].fd = -1;
	if (ctl_sock_path(ops->instance, c->path, sizeof(c->path))) {
		xd_err("control socket: path for instance '%s' too long", ops->instance);
		free(c);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, c->path, sizeof(c->path));
	if (mkdir(CTL_RUN_DIR, 0755) && errno != EEXIST) {
		rc = -errno;
		xd_err("cannot create %s: %s", CTL_RUN_DIR, strerror(errno));
		free(c);
		return rc;
	}
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->lfd < 0) {
		rc = -errno;
		xd_err("control socket: %s", strerror(errno));
		free(c);
		return rc;
	}
	/* We hold the instance lock: a socket left here is a dead run's. */
	if (unlink(c->path) && errno != ENOENT)
		xd_warn("cannot remove %s: %s", c->path, strerror(errno));
	old = umask(0177);  /* created 0600: no window with a wider mode */
	rc = bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc || chown(c->path, 0, 0) || chmod(c->path, 0600) || listen(c->lfd, 16) ||
	    stat(c->path, &st)) {
		rc = -errno;
		xd_err("control socket %s: %s", c->path, strerror(errno));
		close(c->lfd);
		unlink(c->path);
		free(c);
		return rc;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	*out = c;
	return 0;
}

static void conn_close(struct ctl_sock *c, struct ctl_conn *k)
{
	char scratch[CTL_MAX_REQ];

	(void)c;
	if (k->fd < 0)
		return;
	/* Read what the peer sent beyond its request, so that closing does not
	 * turn into a reset before it has read the response. */
	for (int i = 0; i < 8 && recv(k->fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0; i++)
		;
	close(k->fd);
	free(k->out);
	memset(k, 0, sizeof(*k));
	k->fd = -1;
}

void ctl_close(struct ctl_sock *c)
{
	struct stat st;

	if (!c)
		return;
	for (unsigned i = 0; i < CTL_MAX_CONNS; i++)
		conn_close(c, &c->conns[i]);
	close(c->lfd);
	/* Only our own socket: never one a newer daemon made. */
	if (!stat(c->path, &st) && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	free(c);
}

const struct ctl_counters *ctl_counters(const struct ctl_sock *c)
{
	return &c->cnt;
}

/* Write what the socket takes; close when the response is out. */
static void conn_write(struct ctl_sock *c, struct ctl_conn *k)
{
	while (k->out_off < k->out_len) {
		ssize_t n = send(k->fd, k->out + k->out_off, k->out_len - k->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_close(c, k);
			return;
		}
		k->out_off += (size_t)n;
	}
	conn_close(c, k);
}

static void conn_respond(struct ctl_sock *c, struct ctl_conn *k, char *resp, size_t len)
{
	if (!resp) {
		conn_close(c, k);
		return;
	}
	k->out = resp;
	k->out_len = len;
	k->out_off = 0;
	conn_write(c, k);
}

static void conn_error(struct ctl_sock *c, struct ctl_conn *k, int err, const char *msg)
{
	size_t len = 0;
	char *resp = ctl_error_response(err, msg, &len);

	c->cnt.errors++;
	conn_respond(c, k, resp, len);
}

static void conn_request(struct ctl_sock *c, struct ctl_conn *k, size_t len)
{
	struct ctl_req r;
	const char *why = NULL;
	size_t rlen = 0;
	char *resp;
	int rc = ctl_parse_request(k->in, len, &r, &why);

	if (rc) {
		c->cnt.requests++;
		conn_error(c, k, rc, why);
		return;
	}
	resp = ctl_execute(&c->ops, &r, &c->cnt, &rlen);
	conn_respond(c, k, resp, rlen);
}

static void conn_read(struct ctl_sock *c, struct ctl_conn *k)
{
	for (;;) {
		ssize_t n = recv(k->fd, k->in + k->in_len, sizeof(k->in) - k->in_len, MSG_DONTWAIT);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			conn_close(c, k);
			return;
		}
		if (n == 0) {
			/* End of input ends the line too. */
			if (k->in_len)
				conn_request(c, k, k->in_len);
			else
				conn_close(c, k);
			return;
		}
		nl = memchr(k->in + k->in_len, '\n', (size_t)n);
		k->in_len += (size_t)n;
		if (nl) {
			conn_request(c, k, (size_t)(nl - k->in) + 1);
			return;
		}
		if (k->in_len == sizeof(k->in)) {
			c->cnt.requests++;
			conn_error(c, k, -E2BIG, "request too long");
			return;
		}
	}
}

/* Refuse a connection at once: a short error, best effort, then close. */
static void refuse(struct ctl_sock *c, int fd, int err, const char *msg)
{
	size_t len = 0;
	char *resp = ctl_error_response(err, msg, &len);

	c->cnt.refused++;
	if (resp && send(fd, resp, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		xd_warn("control socket: cannot send a refusal: %s", strerror(errno));
	free(resp);
	{
		char scratch[CTL_MAX_REQ];

		(void)!recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
	}
	close(fd);
}

static void accept_all(struct ctl_sock *c)
{
	for (int tries = 0; tries < 16; tries++) {
		struct ucred cr;
		socklen_t cl = sizeof(cr);
		struct ctl_conn *k = NULL;
		int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				xd_warn("control socket: accept: %s", strerror(errno));
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl))
			cr = (struct ucred){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		if (cr.uid != 0) {
			xd_warn("control socket: refused a peer with uid %d (pid %d): root only",
				(int)cr.uid, (int)cr.pid);
			refuse(c, fd, -EPERM, "permission denied: the control socket is for root only");
			continue;
		}
		for (unsigned i = 0; i < CTL_MAX_CONNS && !k; i++)
			if (c->conns[i].fd < 0)
				k = &c->conns[i];
		if (!k) {
			refuse(c, fd, -EBUSY, "busy: too many control connections, try again");
			continue;
		}
		memset(k, 0, sizeof(*k));
		k->fd = fd;
		k->start_ms = mono_ms();
	}
}

unsigned ctl_pollfds(struct ctl_sock *c, struct pollfd *pfd, unsigned max)
{
	uint64_t now = mono_ms();
	unsigned n = 0;

	if (!c || !max)
		return 0;
	pfd[n++] = (struct pollfd){ .fd = c->lfd, .events = POLLIN };
	for (unsigned i = 0; i < CTL_MAX_CONNS && n < max; i++) {
		struct ctl_conn *k = &c->conns[i];

		if (k->fd < 0)
			continue;
		if (now - k->start_ms > CTL_TIMEOUT_MS) {
			c->cnt.errors++;
			conn_close(c, k);
			continue;
		}
		pfd[n++] = (struct pollfd){ .fd = k->fd, .events = k->out ? POLLOUT : POLLIN };
	}
	return n;
}

void ctl_events(struct ctl_sock *c, const struct pollfd *pfd, unsigned n)
{
	if (!c)
		return;
	for (unsigned i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (pfd[i].fd == c->lfd) {
			accept_all(c);
			continue;
		}
		for (unsigned k = 0; k < CTL_MAX_CONNS; k++) {
			struct ctl_conn *cn = &c->conns[k];

			if (cn->fd != pfd[i].fd)
				continue;
			if (cn->out)
				conn_write(c, cn);
			else
				conn_read(c, cn);
			break;
		}
	}
}

/* -------------------------------------------------------------- client */

int ctl_client_request(const char *instance, const char *line, int timeout_ms, char **resp)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	size_t cap = 4096, len = 0, ll = strlen(line);
	char *buf = NULL, *req;
	int fd, rc = 0;

	*resp = NULL;
	if (ctl_sock_path(instance, sa.sun_path, sizeof(sa.sun_path)))
		return -ENAMETOOLONG;
	if (ll + 1 >= CTL_MAX_REQ)
		return -E2BIG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
		close(fd);
		return rc;
	}
	req = malloc(ll + 1);
	buf = malloc(cap);
	if (!req || !buf) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(req, line, ll);
	req[ll] = '\n';
	if (send(fd, req, ll + 1, MSG_NOSIGNAL) != (ssize_t)(ll + 1)) {
		/* A refused peer may see its request bounce: read the reason. */
		if (errno != EPIPE && errno != ECONNRESET) {
			rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
	}
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *nb = cap > CTL_MAX_RESP + 4096 ? NULL : realloc(buf, cap * 2);

			if (!nb) {
				rc = cap > CTL_MAX_RESP ? -E2BIG : -ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ECONNRESET && len && buf[len - 1] == '\n')
			break;  /* the daemon closed without reading all we sent */
		if (n < 0) {
			rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (!len) {
		rc = -ECONNRESET;
		goto out;
	}
	buf[len] = '\0';
	*resp = buf;
	buf = NULL;
out:
	free(req);
	free(buf);
	close(fd);
	return rc;
}

/* ---------------------------------------------------------- JSON reader */

static const char *ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* End of the string literal at @p (on its opening quote), or NULL. */
static const char *skip_string(const char *p)
{
	for (p++; *p; p++) {
		if (*p == '\\') {
			if (!*++p)
				return NULL;
		} else if (*p == '"') {
			return p + 1;
		}
	}
	return NULL;
}

/* End of the value at @p, or NULL. */
static const char *skip_value(const char *p)
{
	int depth = 0;

	p = ws(p);
	if (*p == '"')
		return skip_string(p);
	if (*p != '{' && *p != '[') {
		const char *s = p;

		while (*p && !strchr(",}] \t\r\n", *p))
			p++;
		return p > s ? p : NULL;
	}
	for (; *p; ) {
		if (*p == '"') {
			p = skip_string(p);
			if (!p)
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0)
			return p + 1;
		p++;
	}
	return NULL;
}

int ctl_json_member(const char *json, const char *key, const char **val, size_t *vlen)
{
	const char *p = ws(json);

	if (*p++ != '{')
		return -EINVAL;
	p = ws(p);
	if (*p == '}')
		return -ENOENT;
	for (;;) {
		const char *k = p, *ke, *v, *ve;
		char *name = NULL;
		bool match;

		if (*k != '"' || !(ke = skip_string(k)))
			return -EINVAL;
		p = ws(ke);
		if (*p++ != ':')
			return -EINVAL;
		v = ws(p);
		ve = skip_value(v);
		if (!ve)
			return -EINVAL;
		if (ctl_json_string(k, (size_t)(ke - k), &name))
			return -EINVAL;
		match = !strcmp(name, key);
		free(name);
		if (match) {
			*val = v;
			*vlen = (size_t)(ve - v);
			return 0;
		}
		p = ws(ve);
		if (*p == '}')
			return -ENOENT;
		if (*p++ != ',')
			return -EINVAL;
		p = ws(p);
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int hex4(const char *s, const char *end, uint32_t *u)
{
	*u = 0;
	if (end - s < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int h = hexval(s[i]);

		if (h < 0)
			return -1;
		*u = *u << 4 | (uint32_t)h;
	}
	return 0;
}

static size_t utf8(uint32_t u, char *o)
{
	if (u < 0x80) {
		o[0] = (char)u;
		return 1;
	}
	if (u < 0x800) {
		o[0] = (char)(0xc0 | u >> 6);
		o[1] = (char)(0x80 | (u & 0x3f));
		return 2;
	}
	if (u < 0x10000) {
		o[0] = (char)(0xe0 | u >> 12);
		o[1] = (char)(0x80 | ((u >> 6) & 0x3f));
		o[2] = (char)(0x80 | (u & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | u >> 18);
	o[1] = (char)(0x80 | ((u >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((u >> 6) & 0x3f));
	o[3] = (char)(0x80 | (u & 0x3f));
	return 4;
}

int ctl_json_string(const char *s, size_t len, char **out)
{
	const char *end = s + len - 1, *p;
	char *o, *d;

	*out = NULL;
	if (len < 2 || s[0] != '"' || *end != '"')
		return -EINVAL;
	o = d = malloc(len);  /* decoding never grows: \uXXXX (6) >= 4 bytes */
	if (!o)
		return -ENOMEM;
	for (p = s + 1; p < end; p++) {
		uint32_t u, lo;

		if ((unsigned char)*p < 0x20 || *p == '"')
			goto bad;
		if (*p != '\\') {
			*d++ = *p;
			continue;
		}
		if (++p >= end)
			goto bad;
		switch (*p) {
		case '"': case '\\': case '/': *d++ = *p; break;
		case 'b': *d++ = '\b'; break;
		case 'f': *d++ = '\f'; break;
		case 'n': *d++ = '\n'; break;
		case 'r': *d++ = '\r'; break;
		case 't': *d++ = '\t'; break;
		case 'u':
			if (hex4(p + 1, end, &u))
				goto bad;
			p += 4;
			if (u >= 0xd800 && u < 0xdc00 && end - p > 6 && p[1] == '\\' && p[2] == 'u' &&
			    !hex4(p + 3, end, &lo) && lo >= 0xdc00 && lo < 0xe000) {
				u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			} else if (u >= 0xd800 && u < 0xe000) {
				u = 0xfffd;
			}
			if (!u)
				goto bad;  /* no NUL inside a C string */
			d += utf8(u, d);
			break;
		default:
			goto bad;
		}
	}
	*d = '\0';
	*out = o;
	return 0;
bad:
	free(o);
	return -EINVAL;
}
