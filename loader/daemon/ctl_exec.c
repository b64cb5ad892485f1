// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The control socket's requests (ctl_sock.h): parsing, the commands and
 * their responses.  Changes go to the one writer (writer.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ctl_sock.h"
#include "store.h"
#include "writer.h"
#include "lca.h"

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
	while (i && (!strcmp(r->argv[0], "--text") || !strcmp(r->argv[0], "--batch"))) {
		if (r->argv[0][2] == 't')
			r->text = true;
		else
			r->batch = true;
		memmove(r->argv, r->argv + 1, (size_t)--i * sizeof(r->argv[0]));
		r->argv[i] = NULL;
	}
	r->argc = i;
	if (r->batch && i) {
		*why = "--batch opens a batch: the requests follow on their own lines";
		return -EINVAL;
	}
	if (!i && !r->batch) {
		*why = "empty request";
		return -EINVAL;
	}
	if (!i)
		return 0;
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
		       const struct ctl_counters *cnt, struct xd_writer *w, char *err, size_t errlen);

static int cmd_ping(const struct ctl_ops *o, const struct ctl_req *r, FILE *f,
		    const struct ctl_counters *cnt, struct xd_writer *w, char *err, size_t errlen)
{
	struct xd_json j;

	(void)cnt, (void)w, (void)err, (void)errlen;
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
			 const struct ctl_counters *cnt, struct xd_writer *w, char *err, size_t errlen)
{
	struct xd_store *db = xd_writer_db(w, err, errlen);

	(void)cnt;
	if (!db)
		return -EIO;
	if (rsip_list(db, !r->text, f, now_ms(o))) {
		snprintf(err, errlen, "%s", xd_store_error(db));
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
	struct xd_store *st = ctx;
	unsigned n = 0;
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
			  const struct ctl_counters *cnt, struct xd_writer *w, char *err, size_t errlen)
{
	struct rsip_server *s = o->rsip;
	struct rsip_freed fr[64];
	struct rsip_cert_ops saved = s ? s->certs : (struct rsip_cert_ops){ 0 };
	const char *name = r->argv[2];
	struct xd_json j;
	unsigned n = 0;
	int rc;

	(void)cnt, (void)w;
	if (!s) {
		snprintf(err, errlen, "rsip evict: not available, xdnatd runs without --rsip");
		return -EOPNOTSUPP;
	}
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
		     const struct ctl_counters *cnt, struct xd_writer *w, char *err, size_t errlen)
{
	static const char *const rkeys[4] = { "hosts_enrolled", "registrations", "bindings_active",
					      "bindings_quarantine" };
	struct xdnat_counter c[XDNAT_R_MAX];
	int64_t v[4] = { 0 };
	struct xd_json j;

	(void)w;
	if (!o->maps) {
		snprintf(err, errlen, "stats: no pinned maps");
		return -EOPNOTSUPP;
	}
	for (uint32_t i = 0; i < XDNAT_R_MAX; i++) {
		int rc = xd_reason_stats(o->maps, i, &c[i]);

		if (rc) {
			snprintf(err, errlen, "cannot read counter %s: %s", xdnat_reason_names[i], strerror(-rc));
			return rc;
		}
	}
	/* Without --rsip the RSIP figures are 0. */
	if (o->rsip && o->rsip->st->ops->counts(o->rsip->st, v)) {
		snprintf(err, errlen, "cannot read the state database: %s", xd_store_error(o->rsip->st));
		return -EIO;
	}
	if (r->text) {
		fprintf(f, "%-20s %14s %16s\n", "reason", "packets", "bytes");
		for (uint32_t i = 0; i < XDNAT_R_MAX; i++)
			fprintf(f, "%-20s %14llu %16llu\n", xdnat_reason_names[i],
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
		xd_json_obj_open(&j, xdnat_reason_names[i]);
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
			   const struct ctl_counters *cnt, struct xd_writer *w, char *err, size_t errlen)
{
	struct lca_err e = { { 0 } };
	int reason = LCA_REASON_UNSPECIFIED, rc;
	struct xd_json j;
	struct xd_store *db;

	(void)cnt;
	if (r->argc == 4 && lca_reason_parse(r->argv[3], &reason)) {
		snprintf(err, errlen, "cert revoke: unknown reason '%s'", r->argv[3]);
		return -EINVAL;
	}
	if (!(db = xd_writer_db(w, err, errlen)))
		return -EIO;
	if (db->ops->ca_init(db, &e))
		goto fail;
	rc = db->ops->cert_revoke(db, r->argv[2], reason, (int64_t)(now_ms(o) / 1000), &e);
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

/* The roaming hosts' care-of endpoints (docs/ROAMING.md). */
static int cmd_mobile_show(const struct ctl_ops *o, const struct ctl_req *r, FILE *f,
			   const struct ctl_counters *cnt, struct xd_writer *w, char *err, size_t errlen)
{
	(void)cnt, (void)w;
	if (!o->mip) {
		snprintf(err, errlen, "mobile show: this xdnatd runs no home agent (--mobile)");
		return -EOPNOTSUPP;
	}
	mip_server_show(o->mip, !r->text, f);
	return 0;
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
	{ "mobile", "show", 2, 2, cmd_mobile_show },
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

/* A change (writer.h): applied by the one writer, in this thread. */
static int cmd_change(const struct ctl_ops *o, const struct ctl_req *r, FILE *f,
		      const struct ctl_counters *cnt, struct xd_writer *w, char *err, size_t errlen)
{
	int rc;

	(void)o, (void)cnt;
	rc = xd_writer_apply(w, r->argc, r->argv, r->text, f, err, errlen);
	/* Enrolments are rare and matter: the log says who was let in. */
	if (!rc && xd_change_kind(r->argc, r->argv) == XD_CHANGE_STORE) {
		printf("%s: control socket: %s %s\n", xd_progname,
		       r->argv[0][0] == 'e' ? "enrolled" : "unenrolled", r->argv[1]);
		fflush(stdout);
	}
	return rc;
}

static ctl_cmd_fn *lookup(const struct ctl_req *r, char *err, size_t errlen, int *rc)
{
	*rc = -EINVAL;
	if (xd_change_kind(r->argc, r->argv))
		return cmd_change;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(r->argv[0], cmds[i].w0) || (cmds[i].w1 && (r->argc < 2 ||
								       strcmp(r->argv[1], cmds[i].w1))))
			continue;
		if (r->argc < cmds[i].min || r->argc > cmds[i].max) {
			snprintf(err, errlen, "%s%s%s: wrong number of arguments", cmds[i].w0,
				 cmds[i].w1 ? " " : "", cmds[i].w1 ? cmds[i].w1 : "");
			return NULL;
		}
		return cmds[i].fn;
	}
	snprintf(err, errlen, "unknown command '%.64s' (ping, stats, rsip list, rsip evict NAME, "
		 "cert revoke SERIAL [REASON], mobile show, enroll, unenroll, host add|del, ports|spi add|del, "
		 "ike default)", r->argv[0]);
	return NULL;
}

char *ctl_execute(const struct ctl_ops *ops, const struct ctl_req *r, struct ctl_counters *cnt,
		  size_t *len)
{
	struct xd_writer w = { .maps = ops->maps, .rsip = ops->rsip, .state_dir = ops->state_dir,
			       .instance = ops->instance };
	char err[320] = "", *body = NULL, *out;
	size_t blen = 0;
	ctl_cmd_fn *fn;
	FILE *f;
	int rc = -EINVAL;

	cnt->requests++;
	if (!(fn = lookup(r, err, sizeof(err), &rc)))
		goto error;
	f = open_memstream(&body, &blen);
	if (!f)
		return NULL;
	rc = fn(ops, r, f, cnt, &w, err, sizeof(err));
	xd_writer_close(&w);
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

