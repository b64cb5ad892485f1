// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include "httpd.h"
#include "xdnat.h"

#define XD_HTTP_MAX_ROUTES 8
#define XD_HTTP_MAX_CONNS  64

struct route {
	char prefix[64];
	xd_http_handler fn;
	void *ctx;
};

struct xd_httpd {
	struct MHD_Daemon *mhd;
	struct sockaddr_in sa;
	struct route routes[XD_HTTP_MAX_ROUTES];
	int n_routes;
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

struct xd_httpd *xd_httpd_new(uint32_t addr_be, uint16_t port)
{
	struct xd_httpd *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->sa.sin_family = AF_INET;
	h->sa.sin_addr.s_addr = addr_be;
	h->sa.sin_port = htons(port);
	return h;
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

int xd_httpd_start(struct xd_httpd *h)
{
	char a[INET_ADDRSTRLEN];

	h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
				  ntohs(h->sa.sin_port), NULL, NULL, on_request, h,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&h->sa,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)XD_HTTP_MAX_CONNS,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
				  MHD_OPTION_END);
	if (!h->mhd) {
		xd_err("cannot serve HTTP on %s:%u (address in use or not local?)",
		       xd_ipstr(h->sa.sin_addr.s_addr, a), ntohs(h->sa.sin_port));
		return -EADDRNOTAVAIL;
	}
	return 0;
}

uint16_t xd_httpd_port(const struct xd_httpd *h)
{
	const union MHD_DaemonInfo *i;

	if (!h->mhd)
		return 0;
	i = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	return i ? i->port : 0;
}

void xd_httpd_free(struct xd_httpd *h)
{
	if (!h)
		return;
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	free(h);
}
