/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A small HTTP/1.1 GET server for the router's read-only endpoints
 * (Prometheus metrics, CRLs).  Parsing and connection handling are
 * libmicrohttpd's; requests are answered from its own thread, so handlers
 * must only read state that is safe to read concurrently (BPF maps, files).
 */
#ifndef XDNAT_HTTPD_H
#define XDNAT_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct xd_httpd;

/* Fill *body (malloc'd, freed by the server) and *ctype for @path; return
 * the HTTP status (200, 404, 500...).  @path starts with the route prefix. */
typedef int (*xd_http_handler)(void *ctx, const char *path, char **body, size_t *len,
			       const char **ctype);

/* "ADDR:PORT" (IPv4), e.g. "127.0.0.1:9477".  0 or -EINVAL. */
int xd_parse_listen(const char *s, uint32_t *addr_be, uint16_t *port);

/* Create a server; routes are added before xd_httpd_start(). */
struct xd_httpd *xd_httpd_new(uint32_t addr_be, uint16_t port);
/* A server on the UNIX socket @path (replacing a stale socket there, never
 * another file), mode @mode, group @gid ((gid_t)-1: ours); removed when the
 * server is freed.  Access is the socket's mode: no per-address limit. */
struct xd_httpd *xd_httpd_new_unix(const char *path, mode_t mode, gid_t gid);

/*
 * What a client may hold, so that slow or many connections cannot shut the
 * others out: @max_conns connections at once (keep it below the open-files
 * limit), @per_ip of them from one IPv4 address (0: no limit), and a
 * connection idle for @timeout_s seconds is closed (0: never).
 */
struct xd_http_limits {
	unsigned max_conns, per_ip, timeout_s;
};
#define XD_HTTP_DEFAULT_MAX_CONNS 64
#define XD_HTTP_DEFAULT_TIMEOUT   10
/* Before xd_httpd_start(); without it, the defaults above and no per-address
 * limit. */
void xd_httpd_limits(struct xd_httpd *h, const struct xd_http_limits *l);
/* Requests whose path equals @prefix, or starts with it when it ends in '/'. */
int xd_httpd_route(struct xd_httpd *h, const char *prefix, xd_http_handler fn, void *ctx);
/* Bind and start serving; prints why on failure. */
int xd_httpd_start(struct xd_httpd *h);
/* The port actually bound (useful with port 0). */
uint16_t xd_httpd_port(const struct xd_httpd *h);
void xd_httpd_free(struct xd_httpd *h);

#endif
