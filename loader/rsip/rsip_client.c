// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* RSIP client: see rsip_client.h. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include "rsip_client.h"
#include "xdnat.h"

void rsip_client_init(struct rsip_client *c, uint32_t server_be, uint16_t port, const char *name,
		      const uint8_t secret[RSIP_SECRET_LEN], unsigned timeout_ms)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->server_be = server_be;
	c->port = port;
	snprintf(c->name, sizeof(c->name), "%s", name);
	memcpy(c->secret, secret, RSIP_SECRET_LEN);
	c->timeout_ms = timeout_ms;
}

void rsip_client_close(struct rsip_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->client_id = 0;
	OPENSSL_cleanse(&c->keys, sizeof(c->keys));
}

bool rsip_client_connected(const struct rsip_client *c) { return c->fd >= 0 && c->client_id; }

static int io_wait(int fd, short ev, unsigned ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int n;

	do
		n = poll(&p, 1, (int)ms);
	while (n < 0 && errno == EINTR);
	return n > 0 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
}

static int do_connect(struct rsip_client *c)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(c->port),
				  .sin_addr.s_addr = c->server_be };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), rc, err = 0;
	socklen_t el = sizeof(err);

	if (fd < 0)
		return -errno;
	if (c->src_be) {
		struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr.s_addr = c->src_be };

		if (bind(fd, (struct sockaddr *)&src, sizeof(src))) {
			rc = -errno;
			close(fd);
			return rc;
		}
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if ((rc = io_wait(fd, POLLOUT, c->timeout_ms)) ||
	    (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) ? (rc = -errno) : 0) || (err && (rc = -err))) {
		close(fd);
		return rc;
	}
	c->fd = fd;
	return 0;
}

static int send_all(struct rsip_client *c, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t w = send(c->fd, buf, len, MSG_NOSIGNAL);
		int rc;

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			if ((rc = io_wait(c->fd, POLLOUT, c->timeout_ms)))
				return rc;
			continue;
		}
		if (w <= 0)
			return w < 0 ? -errno : -EPIPE;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static int recv_n(struct rsip_client *c, uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t r = recv(c->fd, buf, len, 0);
		int rc;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			if ((rc = io_wait(c->fd, POLLIN, c->timeout_ms)))
				return rc;
			continue;
		}
		if (r <= 0)
			return r < 0 ? -errno : -ECONNRESET;
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

struct resp {
	uint8_t buf[RSIP_MAX_MSG];
	size_t len;
	struct rsip_msg m;
	struct rsip_fields f;
};

/* Send @b (finished, sealed) and read/verify the response into @r.  For
 * REGISTER the WELCOME is checked by the caller (it carries the nonce the
 * keys derive from). */
static int exchange(struct rsip_client *c, const struct rsip_builder *b, size_t len, uint8_t expect,
		    uint32_t counter, bool registering, struct resp *r)
{
	const uint8_t *pre;
	size_t prelen, need;
	uint16_t e;
	int rc, auth;

	if ((rc = send_all(c, b->buf, len)) || (rc = recv_n(c, r->buf, RSIP_HDR_LEN)))
		goto broken;
	need = rsip_frame_len(r->buf, RSIP_HDR_LEN, &e);
	if (!need) {
		rc = -EPROTO;
		goto broken;
	}
	if ((rc = recv_n(c, r->buf + RSIP_HDR_LEN, need - RSIP_HDR_LEN)))
		goto broken;
	r->len = need;
	if (rsip_decode(r->buf, r->len, &r->m) || rsip_validate(&r->m, &r->f)) {
		xd_warn("router sent a malformed %s", rsip_msg_name(r->m.type));
		rc = -EPROTO;
		goto broken;
	}
	auth = rsip_auth_param(&r->m, &pre, &prelen);
	if (!registering || r->m.type == RSIP_ERROR_RESPONSE) {
		bool ok = auth == XDNAT_AUTH_MAC && c->client_id &&
			  rsip_verify(r->buf, r->len, c->keys.s2c, RSIP_MAC_LEN, NULL);

		if (!ok && r->m.type == RSIP_ERROR_RESPONSE) {
			/* Unauthenticated refusal (before keys exist): report it,
			 * trust nothing else from it. */
			e = rsip_param_u16(&r->m.params[r->f.slot[RSIP_S_ERR_ERROR]]);
			xd_warn("router refused %s: %s (%u) [unauthenticated answer]",
				rsip_msg_name(b->buf[1]), rsip_error_name(e), e);
			rsip_client_close(c);
			return e;
		}
		if (!ok) {
			xd_err("response from %s fails authentication: not our router?", "router");
			rc = -EACCES;
			goto broken;
		}
	}
	if (r->f.counter < 0 || rsip_param_u32(&r->m.params[r->f.counter]) != counter) {
		xd_err("response does not answer our request (message counter)");
		rc = -EPROTO;
		goto broken;
	}
	if (r->m.type == RSIP_ERROR_RESPONSE) {
		e = rsip_param_u16(&r->m.params[r->f.slot[RSIP_S_ERR_ERROR]]);
		return e ? e : RSIP_E_UNKNOWN_ERROR;
	}
	if (r->m.type != expect) {
		rc = -EPROTO;
		goto broken;
	}
	/* Certificates only from responses whose MAC was checked above (the
	 * REGISTER_RESPONSE is checked by the caller and carries none). */
	for (unsigned i = 0; !registering && i < r->f.n_vendor; i++) {
		struct rsip_vendor v;
		uint8_t **dst;
		size_t *dlen;
		uint8_t *copy;

		if (rsip_param_vendor(&r->m.params[r->f.vendor[i]], &v) || v.vendor != XDNAT_RSIP_VENDOR_ID ||
		    (v.subtype != XDNAT_VS_CERT && v.subtype != XDNAT_VS_CACERT) || !v.len)
			continue;
		dst = v.subtype == XDNAT_VS_CERT ? &c->cert : &c->cacert;
		dlen = v.subtype == XDNAT_VS_CERT ? &c->cert_len : &c->cacert_len;
		copy = malloc(v.len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, v.val, v.len);
		free(*dst);
		*dst = copy;
		*dlen = v.len;
		if (v.subtype == XDNAT_VS_CERT)
			c->cert_new = true;
	}
	return 0;
broken:
	rsip_client_close(c);
	return rc;
}

int rsip_client_register(struct rsip_client *c)
{
	struct rsip_builder *b = malloc(sizeof(*b));
	struct resp *r = malloc(sizeof(*r));
	uint8_t cn[RSIP_NONCE_LEN];
	const uint8_t *pre;
	size_t prelen, len;
	uint16_t e;
	int rc;

	if (!b || !r) {
		rc = -ENOMEM;
		goto out;
	}
	rsip_client_close(c);
	memset(&c->shared_ike, 0, sizeof(c->shared_ike));
	if ((rc = do_connect(c)))
		goto out;
	if (rsip_random(cn, sizeof(cn))) {
		rc = -EIO;
		goto out;
	}
	c->counter++;
	rsip_begin(b, RSIP_REGISTER_REQUEST);
	rsip_put_u32(b, RSIP_P_MESSAGE_COUNTER, c->counter);
	len = rsip_seal_hello(b, c->secret, c->name, cn);
	if (!len) {
		rc = -EINVAL;
		goto out;
	}
	rc = exchange(c, b, len, RSIP_REGISTER_RESPONSE, c->counter, true, r);
	if (rc)
		goto out;
	if (rsip_auth_param(&r->m, &pre, &prelen) != XDNAT_AUTH_WELCOME) {
		xd_err("router's REGISTER_RESPONSE carries no authenticator");
		rc = -EACCES;
		rsip_client_close(c);
		goto out;
	}
	rsip_derive(c->secret, cn, pre, &c->keys);
	if (!rsip_verify(r->buf, r->len, c->keys.s2c, RSIP_MAC_LEN, NULL)) {
		xd_err("router failed to prove it knows our secret: not our router, or wrong secret");
		rc = -EACCES;
		rsip_client_close(c);
		goto out;
	}
	c->client_id = rsip_param_u32(&r->m.params[r->f.slot[RSIP_S_REGRESP_CLIENT]]);
	c->reg_lease = rsip_param_u32(&r->m.params[r->f.slot[RSIP_S_REGRESP_LEASE]]);
	if (!c->client_id) {
		rc = -EPROTO;
		rsip_client_close(c);
		goto out;
	}
	/* Shared-port mode (docs/SHARED-IKE.md), covered by the WELCOME MAC
	 * just checked.  Malformed from an authenticated router: a bug there;
	 * refuse rather than guess. */
	e = rsip_shared_ike_find(&r->m, &r->f, &c->shared_ike);
	if (e) {
		xd_err("router's shared IKE port announcement is malformed (%s)", rsip_error_name(e));
		rc = -EPROTO;
		rsip_client_close(c);
	}
out:
	free(b);
	free(r);
	return rc;
}

static void begin(struct rsip_client *c, struct rsip_builder *b, uint8_t type)
{
	rsip_begin(b, type);
	rsip_put_u32(b, RSIP_P_CLIENT_ID, c->client_id);
}

static int request(struct rsip_client *c, struct rsip_builder *b, uint8_t expect, struct resp *r)
{
	size_t len;

	if (!rsip_client_connected(c))
		return -ENOTCONN;
	if (c->csr_next && c->csr && (b->buf[1] == RSIP_ASSIGN_REQUEST_RSAP_IP ||
				      b->buf[1] == RSIP_ASSIGN_REQUEST_RSIPSEC ||
				      b->buf[1] == RSIP_EXTEND_REQUEST)) {
		rsip_put_vendor(b, XDNAT_RSIP_VENDOR_ID, XDNAT_VS_CSR, c->csr, c->csr_len);
		c->csr_next = false;
	}
	c->counter++;
	rsip_put_u32(b, RSIP_P_MESSAGE_COUNTER, c->counter);
	len = rsip_seal_mac(b, c->keys.c2s);
	if (!len)
		return -EMSGSIZE;
	return exchange(c, b, len, expect, c->counter, false, r);
}

static void grant_from(const struct resp *r, int bind, int addr, int lease, int tunnel_addr,
		       struct rsip_grant *g)
{
	struct rsip_addr a;

	memset(g, 0, sizeof(*g));
	g->bind_id = rsip_param_u32(&r->m.params[r->f.slot[bind]]);
	g->lease = rsip_param_u32(&r->m.params[r->f.slot[lease]]);
	if (rsip_param_addr(&r->m.params[r->f.slot[addr]], &a) == 0 && a.type == RSIP_ADDR_IPV4 && a.len == 4)
		memcpy(&g->gaddr_be, a.bytes, 4);
	if (r->f.slot[tunnel_addr] >= 0 &&
	    rsip_param_addr(&r->m.params[r->f.slot[tunnel_addr]], &a) == 0 && a.type == RSIP_ADDR_IPV4 &&
	    a.len == 4)
		memcpy(&g->tunnel_be, a.bytes, 4);
}

int rsip_client_assign_ports(struct rsip_client *c, uint32_t gaddr_be, uint8_t n, uint32_t lease,
			     struct rsip_grant *g)
{
	struct rsip_builder *b = malloc(sizeof(*b));
	struct resp *r = malloc(sizeof(*r));
	struct rsip_ports p;
	int rc = -ENOMEM;

	if (!b || !r)
		goto out;
	begin(c, b, RSIP_ASSIGN_REQUEST_RSAP_IP);
	rsip_put_addr4(b, gaddr_be, gaddr_be == 0);
	rsip_put_ports(b, n, NULL, 0);
	rsip_put_addr4(b, 0, true);
	rsip_put_ports(b, 0, NULL, 0);
	if (lease)
		rsip_put_u32(b, RSIP_P_LEASE_TIME, lease);
	rsip_put_u8(b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
	rc = request(c, b, RSIP_ASSIGN_RESPONSE_RSAP_IP, r);
	if (rc)
		goto out;
	grant_from(r, RSIP_S_AP_BIND, RSIP_S_AP_ADDR_LOCAL, RSIP_S_AP_LEASE, RSIP_S_AP_ADDR_TUNNEL, g);
	if (rsip_param_ports(&r->m.params[r->f.slot[RSIP_S_AP_PORTS_LOCAL]], &p) || p.count != 1 ||
	    !g->gaddr_be || !g->bind_id) {
		xd_err("router's port assignment is not one range");
		rc = -EPROTO;
		goto out;
	}
	g->first = p.port[0];
	g->count = p.number;
out:
	free(b);
	free(r);
	return rc;
}

int rsip_client_assign_spi(struct rsip_client *c, uint32_t gaddr_be, uint16_t nspis, uint32_t lease,
			   struct rsip_grant *g)
{
	struct rsip_builder *b = malloc(sizeof(*b));
	struct resp *r = malloc(sizeof(*r));
	struct rsip_spi s;
	int rc = -ENOMEM;

	if (!b || !r)
		goto out;
	begin(c, b, RSIP_ASSIGN_REQUEST_RSIPSEC);
	rsip_put_addr4(b, gaddr_be, gaddr_be == 0);
	rsip_put_addr4(b, 0, true);
	if (lease)
		rsip_put_u32(b, RSIP_P_LEASE_TIME, lease);
	rsip_put_u8(b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
	if (nspis)
		rsip_put_spi(b, nspis, NULL, 0);
	rc = request(c, b, RSIP_ASSIGN_RESPONSE_RSIPSEC, r);
	if (rc)
		goto out;
	grant_from(r, RSIP_S_SP_BIND, RSIP_S_SP_ADDR_LOCAL, RSIP_S_SP_LEASE, RSIP_S_SP_ADDR_TUNNEL, g);
	if (rsip_param_spi(&r->m.params[r->f.slot[RSIP_S_SP_SPI]], &s) || s.count != 1 || !g->bind_id) {
		xd_err("router's SPI assignment is not one range");
		rc = -EPROTO;
		goto out;
	}
	g->first = s.spi[0];
	g->count = s.number;
	/* The Number field stops at 65535: the router says the exact size. */
	for (unsigned i = 0; i < r->f.n_vendor; i++) {
		struct rsip_vendor v;

		if (rsip_param_vendor(&r->m.params[r->f.vendor[i]], &v) == 0 &&
		    v.vendor == XDNAT_RSIP_VENDOR_ID && v.subtype == XDNAT_VS_SPI_COUNT && v.len == 4) {
			uint32_t n = (uint32_t)v.val[0] << 24 | (uint32_t)v.val[1] << 16 |
				     (uint32_t)v.val[2] << 8 | v.val[3];

			if (n >= s.number && (uint64_t)g->first + n - 1 <= UINT32_MAX)
				g->count = n;
		}
	}
	/* An older router does not say; its bindings are whole blocks of at
	 * least 256 SPIs, so a saturated 65535 means 65536 or more. */
	if (g->count == 0xffff)
		g->count = 0x10000;
out:
	free(b);
	free(r);
	return rc;
}

static int bind_op(struct rsip_client *c, uint8_t type, uint8_t expect, uint32_t bind_id, uint32_t lease,
		   uint32_t *granted)
{
	struct rsip_builder *b = malloc(sizeof(*b));
	struct resp *r = malloc(sizeof(*r));
	int rc = -ENOMEM;

	if (!b || !r)
		goto out;
	begin(c, b, type);
	if (type != RSIP_DEREGISTER_REQUEST)
		rsip_put_u32(b, RSIP_P_BIND_ID, bind_id);
	if (type == RSIP_EXTEND_REQUEST && lease)
		rsip_put_u32(b, RSIP_P_LEASE_TIME, lease);
	rc = request(c, b, expect, r);
	if (!rc && granted)
		*granted = rsip_param_u32(&r->m.params[r->f.slot[RSIP_S_B_LEASE]]);
out:
	free(b);
	free(r);
	return rc;
}

int rsip_client_extend(struct rsip_client *c, uint32_t bind_id, uint32_t lease, uint32_t *granted)
{
	return bind_op(c, RSIP_EXTEND_REQUEST, RSIP_EXTEND_RESPONSE, bind_id, lease, granted);
}

int rsip_client_free(struct rsip_client *c, uint32_t bind_id)
{
	return bind_op(c, RSIP_FREE_REQUEST, RSIP_FREE_RESPONSE, bind_id, 0, NULL);
}

int rsip_client_deregister(struct rsip_client *c)
{
	int rc = bind_op(c, RSIP_DEREGISTER_REQUEST, RSIP_DEREGISTER_RESPONSE, 0, 0, NULL);

	rsip_client_close(c);
	return rc;
}

void rsip_client_attach_csr(struct rsip_client *c, const uint8_t *csr, size_t len)
{
	c->csr = csr;
	c->csr_len = len;
	c->csr_next = csr != NULL;
}

void rsip_client_free_certs(struct rsip_client *c)
{
	free(c->cert);
	free(c->cacert);
	c->cert = c->cacert = NULL;
	c->cert_len = c->cacert_len = 0;
	c->cert_new = false;
}
