// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Parsing, messages and a small JSON writer shared by the xdnat tools. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "xdnat.h"

const char *xd_progname = "xdnat";
int xd_verbose;

/* xd_err_capture(): errors go to this buffer instead of stderr (per
 * thread: xdnatd's HTTP threads keep printing theirs). */
static _Thread_local char *cap_buf;
static _Thread_local size_t cap_len;

void xd_err_capture(char *buf, size_t len)
{
	cap_buf = len ? buf : NULL;
	cap_len = len;
	if (cap_buf)
		cap_buf[0] = '\0';
}

static void vmsg(const char *level, const char *fmt, va_list ap)
{
	if (cap_buf && !*level) {
		size_t used = strlen(cap_buf);

		/* Several errors of one request: "first; second". */
		if (used && used + 2 < cap_len) {
			memcpy(cap_buf + used, "; ", 3);
			used += 2;
		}
		if (used + 1 < cap_len)
			vsnprintf(cap_buf + used, cap_len - used, fmt, ap);
		return;
	}
	fprintf(stderr, "%s: %s", xd_progname, level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void xd_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

void xd_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

void xd_info(const char *fmt, ...)
{
	va_list ap;

	if (!xd_verbose)
		return;
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

int xd_parse_ipv4(const char *s, uint32_t *addr_be)
{
	struct in_addr a;

	/* inet_pton accepts only dotted quads: no "1", no octal, no spaces. */
	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*addr_be = a.s_addr;
	return 0;
}

int xd_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	/* Decimal, or hex with 0x; never octal: "010" is ten, as users mean. */
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (!isxdigit((unsigned char)s[2]))
			return -EINVAL;
		v = strtoull(s + 2, &end, 16);
	} else {
		v = strtoull(s, &end, 10);
	}
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int xd_parse_range(const char *s, uint32_t min, uint32_t max, uint32_t *first, uint32_t *last)
{
	char buf[64];
	char *dash;
	uint32_t a, b;

	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash)
		*dash++ = '\0';
	if (xd_parse_u32(buf, min, max, &a))
		return -EINVAL;
	if (dash) {
		if (xd_parse_u32(dash, min, max, &b) || b < a)
			return -EINVAL;
	} else {
		b = a;
	}
	*first = a;
	*last = b;
	return 0;
}

int xd_parse_prefix(const char *s, uint32_t *addr_be, uint32_t *len)
{
	char buf[INET_ADDRSTRLEN + 4];
	char *slash;
	uint32_t a, l = 32;

	if (!s)
		return -EINVAL;
	if (!strcmp(s, "default")) {
		*addr_be = 0;
		*len = 0;
		return 0;
	}
	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash++ = '\0';
		if (xd_parse_u32(slash, 0, 32, &l))
			return -EINVAL;
	}
	if (xd_parse_ipv4(buf, &a))
		return -EINVAL;
	/* Host bits set (10.0.0.1/8) is almost always a typo: refuse it. */
	if (l < 32 && (ntohl(a) & (0xffffffffu >> l)))
		return -EINVAL;
	*addr_be = a;
	*len = l;
	return 0;
}

const char *xd_ipstr(uint32_t addr_be, char buf[INET_ADDRSTRLEN])
{
	struct in_addr a = { .s_addr = addr_be };

	if (!inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN))
		strcpy(buf, "?");
	return buf;
}

bool xd_valid_instance(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 32 || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = name[i];

		if (!isalnum(c) && c != '_' && c != '-' && c != '.')
			return false;
	}
	return true;
}

/* ---- JSON ---- */

static void json_sep(struct xd_json *j)
{
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = false;
}

static void json_key(struct xd_json *j, const char *key)
{
	json_sep(j);
	if (key) {
		fputc('"', j->f);
		fputs(key, j->f);
		fputs("\":", j->f);
	}
}

static void json_escaped(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void xd_json_begin(struct xd_json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	fputc('{', f);
	j->first[0] = true;
}

static void json_open(struct xd_json *j, const char *key, char c)
{
	json_key(j, key);
	fputc(c, j->f);
	if (j->depth < 15)
		j->depth++;
	j->first[j->depth] = true;
}

void xd_json_obj_open(struct xd_json *j, const char *key) { json_open(j, key, '{'); }
void xd_json_arr_open(struct xd_json *j, const char *key) { json_open(j, key, '['); }

void xd_json_obj_close(struct xd_json *j)
{
	fputc('}', j->f);
	if (j->depth > 0)
		j->depth--;
}

void xd_json_arr_close(struct xd_json *j)
{
	fputc(']', j->f);
	if (j->depth > 0)
		j->depth--;
}

void xd_json_str(struct xd_json *j, const char *key, const char *val)
{
	json_key(j, key);
	json_escaped(j->f, val);
}

void xd_json_u64(struct xd_json *j, const char *key, uint64_t val)
{
	json_key(j, key);
	fprintf(j->f, "%llu", (unsigned long long)val);
}

void xd_json_bool(struct xd_json *j, const char *key, bool val)
{
	json_key(j, key);
	fputs(val ? "true" : "false", j->f);
}

void xd_json_end(struct xd_json *j)
{
	fputs("}\n", j->f);
}

static int run_cmp(const void *a, const void *b)
{
	const struct xd_run *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

size_t xd_runs_merge(struct xd_run *r, size_t n)
{
	size_t j = 0;

	if (n > 1)
		qsort(r, n, sizeof(*r), run_cmp);
	for (size_t i = 0; i < n; i++) {
		if (j && (uint64_t)r[j - 1].last + 1 >= r[i].first) {
			if (r[i].last > r[j - 1].last)
				r[j - 1].last = r[i].last;
		} else {
			r[j++] = r[i];
		}
	}
	return j;
}
