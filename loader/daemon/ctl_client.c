// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The client side of xdnatd's control socket (ctl_sock.h): one request,
 * a batch, and the small JSON reader xdnatctl uses on the responses.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include "ctl_sock.h"

/* -------------------------------------------------------------- client */

/* Connect to the control socket of @instance, with send/receive timeouts. */
static int ctl_connect(const char *instance, int timeout_ms, int *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	int fd, rc;

	if (ctl_sock_path(instance, sa.sun_path, sizeof(sa.sun_path)))
		return -ENAMETOOLONG;
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
	*out = fd;
	return 0;
}

int ctl_client_request(const char *instance, const char *line, int timeout_ms, char **resp)
{
	size_t cap = 4096, len = 0, ll = strlen(line);
	char *buf = NULL, *req;
	int fd, rc = 0;

	*resp = NULL;
	if (ll + 1 >= CTL_MAX_REQ)
		return -E2BIG;
	if ((rc = ctl_connect(instance, timeout_ms, &fd)))
		return rc;
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

int ctl_batch_open(const char *instance, bool text, int timeout_ms, struct ctl_batch *b)
{
	const char *hdr = text ? "--text --batch\n" : "--batch\n";
	int rc;

	memset(b, 0, sizeof(*b));
	b->fd = -1;
	if ((rc = ctl_connect(instance, timeout_ms, &b->fd)))
		return rc;
	rc = ctl_batch_send(b, hdr, strlen(hdr));
	if (!rc) {
		char *ack = NULL;
		const char *v;
		size_t vl;

		rc = ctl_batch_recv(b, &ack);
		if (!rc && (ctl_json_member(ack, "ok", &v, &vl) || vl != 4 || memcmp(v, "true", 4)))
			rc = strstr(ack, "\"errno\":16") ? -EBUSY :
			     strstr(ack, "\"errno\":1}") ? -EPERM : -EPROTO;
		free(ack);
	}
	if (rc)
		ctl_batch_close(b);
	return rc;
}

int ctl_batch_send(struct ctl_batch *b, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(b->fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int ctl_batch_recv(struct ctl_batch *b, char **line)
{
	*line = NULL;
	for (;;) {
		char *nl = b->len ? memchr(b->buf, '\n', b->len) : NULL;
		ssize_t n;

		if (nl) {
			size_t ll = (size_t)(nl - b->buf);
			char *l = malloc(ll + 1);

			if (!l)
				return -ENOMEM;
			memcpy(l, b->buf, ll);
			l[ll] = '\0';
			memmove(b->buf, nl + 1, b->len - ll - 1);
			b->len -= ll + 1;
			*line = l;
			return 0;
		}
		if (b->len == b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 4096;
			char *nb = cap > CTL_MAX_RESP ? NULL : realloc(b->buf, cap);

			if (!nb)
				return cap > CTL_MAX_RESP ? -E2BIG : -ENOMEM;
			b->buf = nb;
			b->cap = cap;
		}
		n = recv(b->fd, b->buf + b->len, b->cap - b->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n == 0)
			return -ECONNRESET;
		b->len += (size_t)n;
	}
}

void ctl_batch_close(struct ctl_batch *b)
{
	if (b->fd >= 0)
		close(b->fd);
	free(b->buf);
	memset(b, 0, sizeof(*b));
	b->fd = -1;
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
