// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* RSIP server, sessions: registration and request dispatch: see rsip_server.h and rsip_server_int.h. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include "rsip_server_int.h"

/* QUERY: Indicator 1 (address) / 2 (network) tuples; answered with
 * 1/2 = local address/network, 3/4 = remote address/network. */
static uint16_t do_query(struct rsip_server *s, struct xd_client *c, struct req *r)
{
	rsip_begin(r->b, RSIP_QUERY_RESPONSE);
	rsip_put_u32(r->b, RSIP_P_CLIENT_ID, c->id);
	for (unsigned i = 0; i < r->f->n_repeat; i++) {
		const struct rsip_param *ind = &r->m->params[r->f->repeat[i]], *ap;
		struct rsip_addr a;
		uint16_t kind;
		uint32_t be;
		bool local;

		if (ind->code != RSIP_P_INDICATOR)
			continue;
		kind = rsip_param_u16(ind);
		if ((kind != 1 && kind != 2) || i + 1 >= r->f->n_repeat)
			return RSIP_E_ILLEGAL_PARAM;
		ap = &r->m->params[r->f->repeat[i + 1]];
		if (ap->code != RSIP_P_ADDRESS || rsip_param_addr(ap, &a) || a.type != RSIP_ADDR_IPV4 ||
		    a.len != 4)
			return RSIP_E_ILLEGAL_PARAM;
		memcpy(&be, a.bytes, 4);
		local = (be & s->cfg.local_mask) == (s->cfg.local_net & s->cfg.local_mask);
		rsip_put_u16(r->b, RSIP_P_INDICATOR, (uint16_t)(local ? kind : kind + 2));
		rsip_put_raw(r->b, RSIP_P_ADDRESS, ap->val, ap->len);
		/* a network tuple carries its netmask next */
		if (kind == 2 && i + 2 < r->f->n_repeat &&
		    r->m->params[r->f->repeat[i + 2]].code == RSIP_P_ADDRESS) {
			const struct rsip_param *mp = &r->m->params[r->f->repeat[i + 2]];

			rsip_put_raw(r->b, RSIP_P_ADDRESS, mp->val, mp->len);
			i++;
		}
		i++;
	}
	return RSIP_E_OK;
}

static uint16_t do_register(struct rsip_server *s, struct rsip_session *sess, const uint8_t *in,
			    size_t len, const uint8_t *pre, size_t prelen, struct req *r,
			    uint8_t sn[RSIP_NONCE_LEN])
{
	uint8_t secret[RSIP_SECRET_LEN], cn[RSIP_NONCE_LEN];
	char name[RSIP_KEYID_MAX + 1];
	uint32_t lan, enrolled_lan;
	uint64_t now = s->now_ms();
	struct xd_client c, other;
	uint32_t id = 0;
	int rc;

	if (!rsip_valid_name((const char *)pre + 1, pre[0]) || prelen != 1u + pre[0] + RSIP_NONCE_LEN)
		return RSIP_E_REGISTRATION_DENIED;
	memcpy(name, pre + 1, pre[0]);
	name[pre[0]] = '\0';
	memcpy(cn, pre + 1 + pre[0], RSIP_NONCE_LEN);
	rc = OPS(s)->host_secret(s->st, name, secret, &enrolled_lan);
	if (rc == -ENOENT) {
		rs_warn_rl(s, RS_RL_AUTH, "RSIP: registration refused: '%s' is not enrolled", name);
		return RSIP_E_REGISTRATION_DENIED;
	}
	/* The store did not answer (an etcd without quorum): no verdict on the
	 * host, which tries again; REGISTRATION_DENIED would make it give up. */
	if (rc) {
		rs_warn_rl(s, RS_RL_AUTH, "RSIP: registration of '%s' not decided: %s", name,
			   xd_store_error(s->st));
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	if (!rsip_verify(in, len, secret, RSIP_SECRET_LEN, RSIP_HELLO_LABEL)) {
		rs_warn_rl(s, RS_RL_AUTH, "RSIP: registration refused: bad authenticator for '%s'", name);
		memset(secret, 0, sizeof(secret));
		return RSIP_E_REGISTRATION_DENIED;
	}
	/* A hello whose client nonce was seen before is a replay (a captured
	 * hello sent again, from wherever): it moves nothing. */
	if (rs_nonce_seen(s, cn)) {
		char a[INET_ADDRSTRLEN];

		rs_warn_rl(s, RS_RL_REPLAY, "RSIP: registration refused: replayed hello for '%s' "
			   "from %s", name, xd_ipstr(sess->peer_lan, a));
		memset(secret, 0, sizeof(secret));
		return RSIP_E_REGISTRATION_DENIED;
	}
	/* The registration's LAN address is the TCP session's peer, never a
	 * value the message carries. */
	lan = sess->peer_lan;
	if (enrolled_lan && enrolled_lan != lan) {
		char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];

		rs_warn_rl(s, RS_RL_AUTH, "RSIP: registration refused: '%s' is enrolled for %s, "
			   "connects from %s", name, xd_ipstr(enrolled_lan, a), xd_ipstr(lan, b));
		memset(secret, 0, sizeof(secret));
		return RSIP_E_REGISTRATION_DENIED;
	}
	if (rs_srv_begin(s))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	rc = OPS(s)->client_by_lan(s->st, lan, &other);
	if (rc < 0)
		goto internal;
	switch (OPS(s)->client_by_name(s->st, name, &c)) {
	case 1: id = c.id; break;
	case 0: break;
	default: goto internal;
	}
	if (rc == 1 && other.id != id) {
		rs_warn_rl(s, RS_RL_AUTH, "RSIP: registration refused: LAN address of '%s' is "
			   "registered by client %u", name, other.id);
		rs_srv_rollback(s);
		return RSIP_E_REGISTRATION_DENIED;
	}
	if (id) {
		/* Registration is bound to the enrolled identity, not to the TCP
		 * connection: a host reconnecting (router restart, network
		 * hiccup) resumes its registration and keeps its bindings. */
		if (c.lan != lan && c.host_id) {
			rs_warn_rl(s, RS_RL_AUTH, "RSIP: '%s' moved LAN address while holding "
				   "bindings: refused", name);
			rs_srv_rollback(s);
			return RSIP_E_REGISTRATION_DENIED;
		}
		if (OPS(s)->client_touch(s->st, id, lan, (int64_t)now))
			goto internal;
	} else if (OPS(s)->client_add(s->st, name, lan, (int64_t)now, &id)) {
		goto internal;
	}
	if (rs_srv_commit(s))
		goto internal;
	if (rsip_random(sn, RSIP_NONCE_LEN))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	rsip_derive(secret, cn, sn, &sess->keys);
	memcpy(sess->secret, secret, sizeof(sess->secret));
	memset(secret, 0, sizeof(secret));
	snprintf(sess->name, sizeof(sess->name), "%s", name);
	sess->client_id = id;
	sess->authed = true;
	sess->have_counter = false;
	xd_info("RSIP: '%s' registered as client %u", name, sess->client_id);
	rsip_begin(r->b, RSIP_REGISTER_RESPONSE);
	rsip_put_u32(r->b, RSIP_P_CLIENT_ID, sess->client_id);
	rsip_put_u32(r->b, RSIP_P_LEASE_TIME, s->cfg.reg_lease);
	rsip_put_flow(r->b, RSIP_FLOW_MACRO, RSIP_FLOW_NONE);
	rsip_put_u8(r->b, RSIP_P_RSIP_METHOD, RSIP_METHOD_RSAP_IP);
	rsip_put_u8(r->b, RSIP_P_RSIP_METHOD, RSIP_METHOD_RSIPSEC);
	rsip_put_u8(r->b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
	/* Shared-port mode, before the WELCOME that seals it. */
	rsip_put_shared_ike(r->b, &s->cfg.shared_ike);
	return RSIP_E_OK;
internal:
	rs_srv_rollback(s);
	memset(secret, 0, sizeof(secret));
	return RSIP_E_INTERNAL_SERVER_ERROR;
}

/* One message being handled (rsip_server_handle). */
struct hctx {
	struct rsip_server *s;
	struct rsip_session *sess;
	const uint8_t *in;
	size_t len;
	struct req r;
	bool has_counter, end_session, *close;
	uint32_t counter;
};

/* Decode and validate; only requests are for the server. */
static uint16_t decode(struct hctx *h)
{
	struct rsip_msg *m = (struct rsip_msg *)h->r.m;
	struct rsip_fields *f = (struct rsip_fields *)h->r.f;
	uint16_t e = rsip_decode(h->in, h->len, m);

	if (e == RSIP_E_OK)
		e = rsip_validate(m, f);
	if (e)
		return e;
	if (f->counter >= 0) {
		h->has_counter = true;
		h->counter = rsip_param_u32(&m->params[f->counter]);
	}
	switch (m->type) {
	case RSIP_REGISTER_REQUEST: case RSIP_DEREGISTER_REQUEST:
	case RSIP_ASSIGN_REQUEST_RSAP_IP: case RSIP_ASSIGN_REQUEST_RSIPSEC:
	case RSIP_EXTEND_REQUEST: case RSIP_FREE_REQUEST: case RSIP_QUERY_REQUEST:
		return RSIP_E_OK;
	default:
		return RSIP_E_ILLEGAL_MESSAGE; /* responses are not for the server */
	}
}

/* A request of an open session: its MAC, its counter, its client id. */
static uint16_t authenticate(struct hctx *h, int auth)
{
	struct rsip_session *sess = h->sess;

	if (!sess->authed)
		return RSIP_E_REGISTER_FIRST;
	if (auth != XDNAT_AUTH_MAC || !rsip_verify(h->in, h->len, sess->keys.c2s, RSIP_MAC_LEN, NULL)) {
		rs_warn_rl(h->s, RS_RL_AUTH, "RSIP: client %u: message fails authentication: closing",
			   sess->client_id);
		*h->close = true;
		return RSIP_E_REGISTRATION_DENIED;
	}
	if (!h->has_counter)
		return RSIP_E_MESSAGE_COUNTER_REQUIRED;
	if (sess->have_counter && h->counter <= sess->last_counter) {
		rs_warn_rl(h->s, RS_RL_REPLAY, "RSIP: client %u: replayed or reordered message "
			   "(counter %u): closing", sess->client_id, h->counter);
		*h->close = true;
		return RSIP_E_BAD_MESSAGE;
	}
	sess->have_counter = true;
	sess->last_counter = h->counter;
	h->r.client_id = rsip_param_u32(&h->r.m->params[h->r.f->slot[0]]);
	/* Another host's client id: never act on it. */
	return h->r.client_id != sess->client_id ? RSIP_E_BAD_CLIENT_ID : RSIP_E_OK;
}

/* Still enrolled, with the secret the session was opened with?
 * (xdnatctl unenroll / enroll again end the session at once.) */
static uint16_t still_enrolled(struct hctx *h)
{
	struct rsip_session *sess = h->sess;
	uint8_t secret[RSIP_SECRET_LEN];
	uint32_t elan;
	int rc = OPS(h->s)->host_secret(h->s->st, sess->name, secret, &elan);
	bool same = rc == 0 && !CRYPTO_memcmp(secret, sess->secret, sizeof(secret)) &&
		    (!elan || elan == sess->peer_lan);

	memset(secret, 0, sizeof(secret));
	/* Any store error but "not enrolled" (-EIO, and the etcd store's
	 * -ETIMEDOUT/-EAGAIN without quorum) is no verdict: the host retries. */
	if (rc && rc != -ENOENT) {
		xd_err("RSIP: %s", xd_store_error(h->s->st));
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	if (same)
		return RSIP_E_OK;
	xd_warn("RSIP: client %u: '%s' is no longer enrolled (or was enrolled again): "
		"ending its session", sess->client_id, sess->name);
	h->end_session = true;
	*h->close = true;
	return RSIP_E_REGISTRATION_DENIED;
}

/* The session's registration, touched. */
static uint16_t current_client(struct hctx *h, struct xd_client *c)
{
	int rc = rs_get_client(h->s, h->sess->client_id, c);

	if (rc < 0)
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if (rc == 0) {
		/* Registration lapsed or was evicted. */
		h->sess->authed = false;
		return RSIP_E_REGISTER_FIRST;
	}
	if (c->lan != h->sess->peer_lan) {
		/* The registration moved to another address (the host registered
		 * again from there): this session binds nothing to either. */
		h->sess->authed = false;
		return RSIP_E_REGISTER_FIRST;
	}
	if (OPS(h->s)->client_touch(h->s->st, c->id, 0, (int64_t)h->s->now_ms()))
		xd_warn("RSIP: %s", xd_store_error(h->s->st));
	return RSIP_E_OK;
}

static uint16_t dispatch(struct hctx *h, struct xd_client *c)
{
	switch (h->r.m->type) {
	case RSIP_ASSIGN_REQUEST_RSAP_IP: return rs_do_assign_ports(h->s, c, &h->r);
	case RSIP_ASSIGN_REQUEST_RSIPSEC: return rs_do_assign_spi(h->s, c, &h->r);
	case RSIP_EXTEND_REQUEST: return rs_do_extend(h->s, c, &h->r);
	case RSIP_FREE_REQUEST: return rs_do_free(h->s, c, &h->r);
	case RSIP_QUERY_REQUEST: return do_query(h->s, c, &h->r);
	case RSIP_DEREGISTER_REQUEST: return rs_do_deregister(h->s, h->sess, c, &h->r);
	default: return RSIP_E_UNSUPPORTED_MESSAGE;
	}
}

/* The certificate issued for a CSR (and the LCA's) into the response. */
static void put_cert(struct hctx *h, uint32_t client_id)
{
	struct rsip_builder *b = h->r.b;
	struct rsip_server *s = h->s;
	size_t cal = 0;
	const uint8_t *ca;

	if (!h->r.cert)
		return;
	if (b->len + RSIP_PARAM_HDR_LEN + 4 + h->r.cert_len + 12 + RSIP_MAC_LEN > RSIP_MAX_MSG) {
		xd_warn("RSIP: client %u: certificate of %zu bytes does not fit a response: not sent",
			client_id, h->r.cert_len);
		return;
	}
	ca = s->certs.ca_der ? s->certs.ca_der(s->certs.ctx, &cal) : NULL;
	rsip_put_vendor(b, XDNAT_RSIP_VENDOR_ID, XDNAT_VS_CERT, h->r.cert, h->r.cert_len);
	/* The LCA certificate only if the response still fits (the host can be
	 * given it by other means). */
	if (ca && b->len + 2 * RSIP_PARAM_HDR_LEN + 8 + cal + 12 + RSIP_MAC_LEN <= RSIP_MAX_MSG)
		rsip_put_vendor(b, XDNAT_RSIP_VENDOR_ID, XDNAT_VS_CACERT, ca, cal);
}

/* The error response: sealed if the session had keys, else plain (and
 * the connection closes). */
/* An ERROR_RESPONSE sealed with @sess's keys (ids and counter when set). */
static size_t build_sealed_error(struct rsip_builder *b, const struct rsip_session *sess, uint16_t e,
				 uint32_t client_id, uint32_t bind_id, bool has_counter, uint32_t counter)
{
	rsip_begin(b, RSIP_ERROR_RESPONSE);
	rsip_put_u16(b, RSIP_P_ERROR, e);
	if (client_id)
		rsip_put_u32(b, RSIP_P_CLIENT_ID, client_id);
	if (bind_id)
		rsip_put_u32(b, RSIP_P_BIND_ID, bind_id);
	if (has_counter)
		rsip_put_u32(b, RSIP_P_MESSAGE_COUNTER, counter);
	return rsip_seal_mac(b, sess->keys.s2c);
}

static size_t seal_error(struct hctx *h, uint16_t e, bool sealed)
{
	struct rsip_builder *b = h->r.b;
	size_t n;

	if (!sealed || !h->sess->authed) {
		n = rsip_build_error(b, e, h->has_counter, h->counter, 0, 0);
		*h->close = true;
		return n;
	}
	n = build_sealed_error(b, h->sess, e, h->r.client_id, h->r.bind_id, h->has_counter, h->counter);
	if (e == RSIP_E_UNSUPPORTED_RSIP_VERSION || e == RSIP_E_BAD_MESSAGE)
		*h->close = true;
	return n;
}

/* The store cannot answer (a cluster without quorum): refuse before asking it. */
static uint16_t store_available(struct hctx *h)
{
	if (!h->s->available || h->s->available(h->s->available_ctx))
		return RSIP_E_OK;
	h->s->refused_unavailable++;
	return RSIP_E_INTERNAL_SERVER_ERROR;
}

/* REGISTER: a new session, answered with the sealed WELCOME. */
static uint16_t handle_register(struct hctx *h, int auth, const uint8_t *pre, size_t prelen, size_t *n)
{
	uint8_t sn[RSIP_NONCE_LEN];
	uint16_t e;

	if (h->sess->authed) {
		h->r.client_id = h->sess->client_id;
		return RSIP_E_ALREADY_REGISTERED;
	}
	if (auth != XDNAT_AUTH_HELLO)
		return RSIP_E_REGISTRATION_DENIED;
	if ((e = store_available(h)))
		return e;
	e = do_register(h->s, h->sess, h->in, h->len, pre, prelen, &h->r, sn);
	if (e)
		return e;
	if (h->has_counter)
		rsip_put_u32(h->r.b, RSIP_P_MESSAGE_COUNTER, h->counter);
	*n = rsip_seal_welcome(h->r.b, h->sess->keys.s2c, sn);
	return RSIP_E_OK;
}

/* Everything but REGISTER: authenticated, enrolled, registered. */
static uint16_t handle_request(struct hctx *h, int auth, size_t *n)
{
	struct xd_client c;
	uint16_t e;

	if ((e = authenticate(h, auth)) || (e = store_available(h)) || (e = still_enrolled(h)) || (e = current_client(h, &c)) ||
	    (e = dispatch(h, &c)))
		return e;
	put_cert(h, c.id);
	if (h->has_counter)
		rsip_put_u32(h->r.b, RSIP_P_MESSAGE_COUNTER, h->counter);
	*n = rsip_seal_mac(h->r.b, h->sess->keys.s2c);
	if (h->r.m->type == RSIP_DEREGISTER_REQUEST)
		h->sess->authed = false;
	return RSIP_E_OK;
}

size_t rsip_server_handle(struct rsip_server *s, struct rsip_session *sess, const uint8_t *in,
			  size_t len, uint8_t *out, bool *close)
{
	struct hctx h = { .s = s, .sess = sess, .in = in, .len = len, .close = close };
	struct rsip_builder *b = malloc(sizeof(*b));
	struct rsip_msg *m = malloc(sizeof(*m));
	struct rsip_fields *f = malloc(sizeof(*f));
	bool sealed = sess->authed;
	const uint8_t *pre = NULL;
	size_t prelen = 0, n = 0;
	unsigned depth;
	uint16_t e;
	int auth;

	*close = false;
	if (!b || !m || !f) {
		free(b); free(m); free(f);
		*close = true;
		return 0;
	}
	h.r = (struct req){ .m = m, .f = f, .b = b };
	depth = s->tx_depth;
	e = decode(&h);
	if (!e) {
		auth = rsip_auth_param(m, &pre, &prelen);
		e = m->type == RSIP_REGISTER_REQUEST ? handle_register(&h, auth, pre, prelen, &n)
						     : handle_request(&h, auth, &n);
	}
	if (s->tx_depth > depth) {
		/* a bug: what it wrote is not committed, nor confirmed */
		xd_err("RSIP: bug: a request left %u store transactions open: rolled back",
		       s->tx_depth - depth);
		s->tx_leaks++;
		while (s->tx_depth > depth)
			rs_srv_rollback(s);
		s->idx.valid = false;
		e = RSIP_E_INTERNAL_SERVER_ERROR;
		n = 0;
	}
	if (e)
		n = seal_error(&h, e, sealed);
	if (h.end_session) {
		/* After the (sealed) error: the keys are of no further use. */
		sess->authed = false;
		memset(&sess->keys, 0, sizeof(sess->keys));
		memset(sess->secret, 0, sizeof(sess->secret));
	}
	if (n)
		memcpy(out, b->buf, n);
	free(h.r.cert);
	free(b);
	free(m);
	free(f);
	return n;
}

size_t rsip_server_retry_reply(const struct rsip_session *sess, uint8_t *out)
{
	struct rsip_builder *b;
	size_t n;

	if (!sess->authed || !sess->have_counter || !(b = malloc(sizeof(*b))))
		return 0;
	n = build_sealed_error(b, sess, RSIP_E_INTERNAL_SERVER_ERROR, sess->client_id, 0, true,
			       sess->last_counter);
	if (n)
		memcpy(out, b->buf, n);
	free(b);
	return n;
}
