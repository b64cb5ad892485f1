// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "httpd.h"
#include "xdnat.h"

#define XD_HTTP_MAX_ROUTES 8
/* libmicrohttpd's messages (refused connections...) at most this often. */
#define XD_HTTP_LOG_PERIOD_S 10

struct route {
	char prefix[64];
	xd_http_handler fn;
	void *ctx;
};

struct xd_httpd {
	struct MHD_Daemon *mhd;
	struct sockaddr_in sa;
	struct sockaddr_un un;     /* UNIX socket server: sun_path set */
	int tcp_fd;                /* TCP: the listening socket (libmicrohttpd's) */
	mode_t un_mode;
	gid_t un_gid;
	struct xd_http_limits lim;
	struct route routes[XD_HTTP_MAX_ROUTES];
	int n_routes;
	/* Rate limit of libmicrohttpd's messages (its own thread). */
	pthread_mutex_t log_mu;
	time_t log_last;
	unsigned long log_suppressed;
};

int xd_parse_listen(const char *s, uint32_t *addr_be, uint16_t *port)
{
	char buf[32];
	char *colon;
	uint32_t a, p;

	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	colon = strrchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon++ = '\0';
	if (xd_parse_ipv4(buf, &a) || xd_parse_u32(colon, 0, 65535, &p))
		return -EINVAL;
	*addr_be = a;
	*port = (uint16_t)p;
	return 0;
}

static const struct route *find_route(const struct xd_httpd *h, const char *url)
{
	for (int i = 0; i < h->n_routes; i++) {
		const struct route *r = &h->routes[i];
		size_t n = strlen(r->prefix);

		if (r->prefix[n - 1] == '/' ? !strncmp(url, r->prefix, n) : !strcmp(url, r->prefix))
			return r;
	}
	return NULL;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned int status, char *body,
			       size_t len, const char *ctype)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if (ctype && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **req_cls)
{
	struct xd_httpd *h = cls;
	const struct route *r;
	const char *ctype = "text/plain; charset=utf-8";
	char *body = NULL;
	size_t len = 0;
	int status;

	(void)version;
	(void)upload_data;
	/* First call per request: headers only.  Answer on the second. */
	if (!*req_cls) {
		*req_cls = h;
		return MHD_YES;
	}
	if (*upload_size) /* a GET with a body: refuse it */
		return MHD_NO;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		body = strdup("only GET and HEAD\n");
		return body ? respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, body, strlen(body), ctype) : MHD_NO;
	}
	r = find_route(h, url);
	if (!r) {
		body = strdup("not found\n");
		return body ? respond(c, MHD_HTTP_NOT_FOUND, body, strlen(body), ctype) : MHD_NO;
	}
	status = r->fn(r->ctx, url, &body, &len, &ctype);
	if (!body) {
		body = strdup(status == 200 ? "" : "error\n");
		if (!body)
			return MHD_NO;
		len = strlen(body);
	}
	return respond(c, (unsigned int)status, body, len, ctype);
}

/*
 * libmicrohttpd's messages, rate-limited: under a flood of connections it
 * says "connection limit reached" for each one, which would fill the log.
 * One line per period, with the number of those left out.
 */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct xd_httpd *h = cls;
	time_t now = time(NULL);
	char msg[256];
	size_t n;

	pthread_mutex_lock(&h->log_mu);
	if (h->log_last && now - h->log_last < XD_HTTP_LOG_PERIOD_S) {
		h->log_suppressed++;
		pthread_mutex_unlock(&h->log_mu);
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	if (h->log_suppressed)
		xd_warn("http: %s (%lu more messages left out since the previous one)", msg,
			h->log_suppressed);
	else
		xd_warn("http: %s", msg);
	h->log_last = now;
	h->log_suppressed = 0;
	pthread_mutex_unlock(&h->log_mu);
}

static struct xd_httpd *httpd_alloc(void)
{
	struct xd_httpd *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->lim = (struct xd_http_limits){ .max_conns = XD_HTTP_DEFAULT_MAX_CONNS,
					  .timeout_s = XD_HTTP_DEFAULT_TIMEOUT };
	h->tcp_fd = -1;
	pthread_mutex_init(&h->log_mu, NULL);
	return h;
}

struct xd_httpd *xd_httpd_new(uint32_t addr_be, uint16_t port)
{
	struct xd_httpd *h = httpd_alloc();

	if (!h)
		return NULL;
	h->sa.sin_family = AF_INET;
	h->sa.sin_addr.s_addr = addr_be;
	h->sa.sin_port = htons(port);
	return h;
}

struct xd_httpd *xd_httpd_new_unix(const char *path, mode_t mode, gid_t gid)
{
	struct xd_httpd *h;

	if (!path || !*path || strlen(path) >= sizeof(h->un.sun_path))
		return NULL;
	if (!(h = httpd_alloc()))
		return NULL;
	h->un.sun_family = AF_UNIX;
	strcpy(h->un.sun_path, path);
	h->un_mode = mode;
	h->un_gid = gid;
	return h;
}

void xd_httpd_limits(struct xd_httpd *h, const struct xd_http_limits *l)
{
	h->lim = *l;
}

/* The UNIX socket, created with its final mode (no window in which anyone
 * else could connect), owned by root (or us) and the group asked for. */
static int unix_listen(struct xd_httpd *h)
{
	struct stat st;
	mode_t old;
	int fd, rc;

	/* A socket left by a run that was killed: ours (the instance lock is
	 * held), so it goes.  Anything else at that path stays. */
	if (!lstat(h->un.sun_path, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			xd_err("%s exists and is not a socket: not replacing it", h->un.sun_path);
			return -EEXIST;
		}
		unlink(h->un.sun_path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&h->un, sizeof(h->un));
	umask(old);
	if (rc || chown(h->un.sun_path, geteuid(), h->un_gid) ||
	    chmod(h->un.sun_path, h->un_mode) || listen(fd, 16)) {
		rc = -errno;
		xd_err("cannot serve HTTP on %s: %s", h->un.sun_path, strerror(errno));
		close(fd);
		unlink(h->un.sun_path);
		return rc;
	}
	return fd;
}

int xd_httpd_route(struct xd_httpd *h, const char *prefix, xd_http_handler fn, void *ctx)
{
	struct route *r;

	if (h->mhd || h->n_routes == XD_HTTP_MAX_ROUTES || !*prefix ||
	    strlen(prefix) >= sizeof(r->prefix))
		return -EINVAL;
	r = &h->routes[h->n_routes++];
	strcpy(r->prefix, prefix);
	r->fn = fn;
	r->ctx = ctx;
	return 0;
}

/* The TCP socket, made here rather than by libmicrohttpd so that an address
 * this router does not hold yet (G on a VRRP backup) can be bound: with
 * IP_FREEBIND, and a warning that says so (xd_bind_maybe_virtual). */
static int tcp_listen(struct xd_httpd *h)
{
	int one = 1, fd, rc;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    xd_bind_maybe_virtual(fd, &h->sa, "HTTP") || listen(fd, 128)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int xd_httpd_start(struct xd_httpd *h)
{
	/* epoll: no FD_SETSIZE ceiling on the connection limit. */
	const unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	char a[INET_ADDRSTRLEN];
	int lfd;

	if (h->un.sun_family == AF_UNIX) {
		if ((lfd = unix_listen(h)) < 0)
			return lfd;
		h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
					  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
					  MHD_OPTION_LISTEN_SOCKET, lfd,
					  MHD_OPTION_CONNECTION_LIMIT, h->lim.max_conns,
					  MHD_OPTION_CONNECTION_TIMEOUT, h->lim.timeout_s,
					  MHD_OPTION_END);
		if (!h->mhd) {
			xd_err("cannot serve HTTP on %s", h->un.sun_path);
			close(lfd);
			unlink(h->un.sun_path);
			return -EIO;
		}
		return 0;
	}
	if ((lfd = tcp_listen(h)) < 0) {
		xd_err("cannot serve HTTP on %s:%u: %s", xd_ipstr(h->sa.sin_addr.s_addr, a),
		       ntohs(h->sa.sin_port), strerror(-lfd));
		return lfd;
	}
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,  /* first: see its doc */
				  MHD_OPTION_LISTEN_SOCKET, lfd,
				  MHD_OPTION_CONNECTION_LIMIT, h->lim.max_conns,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, h->lim.per_ip,
				  MHD_OPTION_CONNECTION_TIMEOUT, h->lim.timeout_s,
				  MHD_OPTION_END);
	if (!h->mhd) {
		xd_err("cannot serve HTTP on %s:%u", xd_ipstr(h->sa.sin_addr.s_addr, a),
		       ntohs(h->sa.sin_port));
		close(lfd);
		return -EADDRNOTAVAIL;
	}
	h->tcp_fd = lfd;
	return 0;
}

uint16_t xd_httpd_port(const struct xd_httpd *h)
{
	const union MHD_DaemonInfo *i;

	if (!h->mhd)
		return 0;
	if (h->tcp_fd >= 0) {
		struct sockaddr_in sa;
		socklen_t len = sizeof(sa);

		return getsockname(h->tcp_fd, (struct sockaddr *)&sa, &len) ? 0 : ntohs(sa.sin_port);
	}
	i = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	return i ? i->port : 0;
}

void xd_httpd_free(struct xd_httpd *h)
{
	if (!h)
		return;
	if (h->mhd) {
		MHD_stop_daemon(h->mhd);
		if (h->un.sun_family == AF_UNIX)
			unlink(h->un.sun_path);
	}
	pthread_mutex_destroy(&h->log_mu);
	free(h);
}
