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
	if (OPS(s)->host_secret(s->st, name, secret, &enrolled_lan)) {
		xd_warn("RSIP: registration refused: '%s' is not enrolled", name);
		return RSIP_E_REGISTRATION_DENIED;
	}
	if (!rsip_verify(in, len, secret, RSIP_SECRET_LEN, RSIP_HELLO_LABEL)) {
		xd_warn("RSIP: registration refused: bad authenticator for '%s'", name);
		return RSIP_E_REGISTRATION_DENIED;
	}
	lan = sess->peer_lan;
	if (enrolled_lan && enrolled_lan != lan) {
		char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];

		xd_warn("RSIP: registration refused: '%s' is enrolled for %s, connects from %s", name,
			xd_ipstr(enrolled_lan, a), xd_ipstr(lan, b));
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
		xd_warn("RSIP: registration refused: LAN address of '%s' is registered by client %u",
			name, other.id);
		rs_srv_rollback(s);
		return RSIP_E_REGISTRATION_DENIED;
	}
	if (id) {
		/* Registration is bound to the enrolled identity, not to the TCP
		 * connection: a host reconnecting (router restart, network
		 * hiccup) resumes its registration and keeps its bindings. */
		if (c.lan != lan && c.host_id) {
			xd_warn("RSIP: '%s' moved LAN address while holding bindings: refused", name);
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

size_t rsip_server_handle(struct rsip_server *s, struct rsip_session *sess, const uint8_t *in,
			  size_t len, uint8_t *out, bool *close)
{
	struct rsip_builder *b = malloc(sizeof(*b));
	struct rsip_msg *m = malloc(sizeof(*m));
	struct rsip_fields *f = malloc(sizeof(*f));
	struct req r = { .m = m, .f = f, .b = b };
	const uint8_t *pre = NULL;
	size_t prelen = 0, n = 0;
	uint8_t sn[RSIP_NONCE_LEN];
	bool has_counter = false, sealed, end_session = false;
	uint32_t counter = 0;
	struct xd_client c;
	uint16_t e;
	int auth;

	*close = false;
	if (!b || !m || !f) {
		free(b); free(m); free(f);
		*close = true;
		return 0;
	}
	sealed = sess->authed;
	e = rsip_decode(in, len, m);
	if (e == RSIP_E_OK)
		e = rsip_validate(m, f);
	if (e == RSIP_E_OK && f->counter >= 0) {
		has_counter = true;
		counter = rsip_param_u32(&m->params[f->counter]);
	}
	if (e == RSIP_E_OK) {
		switch (m->type) {
		case RSIP_REGISTER_REQUEST: case RSIP_DEREGISTER_REQUEST:
		case RSIP_ASSIGN_REQUEST_RSAP_IP: case RSIP_ASSIGN_REQUEST_RSIPSEC:
		case RSIP_EXTEND_REQUEST: case RSIP_FREE_REQUEST: case RSIP_QUERY_REQUEST:
			break;
		default:
			e = RSIP_E_ILLEGAL_MESSAGE; /* responses are not for the server */
		}
	}
	if (e)
		goto error;
	auth = rsip_auth_param(m, &pre, &prelen);
	if (m->type == RSIP_REGISTER_REQUEST) {
		if (sess->authed) {
			e = RSIP_E_ALREADY_REGISTERED;
			r.client_id = sess->client_id;
			goto error;
		}
		if (auth != XDNAT_AUTH_HELLO) {
			e = RSIP_E_REGISTRATION_DENIED;
			goto error;
		}
		e = do_register(s, sess, in, len, pre, prelen, &r, sn);
		if (e)
			goto error;
		if (has_counter)
			rsip_put_u32(b, RSIP_P_MESSAGE_COUNTER, counter);
		n = rsip_seal_welcome(b, sess->keys.s2c, sn);
		goto out;
	}
	if (!sess->authed) {
		e = RSIP_E_REGISTER_FIRST;
		goto error;
	}
	if (auth != XDNAT_AUTH_MAC || !rsip_verify(in, len, sess->keys.c2s, RSIP_MAC_LEN, NULL)) {
		xd_warn("RSIP: client %u: message fails authentication: closing", sess->client_id);
		e = RSIP_E_REGISTRATION_DENIED;
		*close = true;
		goto error;
	}
	if (!has_counter) {
		e = RSIP_E_MESSAGE_COUNTER_REQUIRED;
		goto error;
	}
	if (sess->have_counter && counter <= sess->last_counter) {
		xd_warn("RSIP: client %u: replayed or reordered message (counter %u): closing",
			sess->client_id, counter);
		e = RSIP_E_BAD_MESSAGE;
		*close = true;
		goto error;
	}
	sess->have_counter = true;
	sess->last_counter = counter;
	r.client_id = rsip_param_u32(&m->params[f->slot[0]]);
	if (r.client_id != sess->client_id) {
		/* Another host's client id: never act on it. */
		e = RSIP_E_BAD_CLIENT_ID;
		goto error;
	}
	{
		/* Still enrolled, with the secret the session was opened with?
		 * (xdnatctl unenroll / enroll again end the session at once.) */
		uint8_t secret[RSIP_SECRET_LEN];
		uint32_t elan;
		int rc = OPS(s)->host_secret(s->st, sess->name, secret, &elan);

		if (rc == -EIO) {
			e = RSIP_E_INTERNAL_SERVER_ERROR;
			goto error;
		}
		if (rc || CRYPTO_memcmp(secret, sess->secret, sizeof(secret)) ||
		    (elan && elan != sess->peer_lan)) {
			xd_warn("RSIP: client %u: '%s' is no longer enrolled (or was enrolled again): "
				"ending its session", sess->client_id, sess->name);
			e = RSIP_E_REGISTRATION_DENIED;
			end_session = true;
			*close = true;
			memset(secret, 0, sizeof(secret));
			goto error;
		}
		memset(secret, 0, sizeof(secret));
	}
	{
		int rc = rs_get_client(s, sess->client_id, &c);

		if (rc < 0) {
			e = RSIP_E_INTERNAL_SERVER_ERROR;
			goto error;
		}
		if (rc == 0) {
			/* Registration lapsed or was evicted. */
			sess->authed = false;
			e = RSIP_E_REGISTER_FIRST;
			goto error;
		}
	}
	if (OPS(s)->client_touch(s->st, c.id, 0, (int64_t)s->now_ms()))
		xd_warn("RSIP: %s", xd_store_error(s->st));
	switch (m->type) {
	case RSIP_ASSIGN_REQUEST_RSAP_IP: e = rs_do_assign_ports(s, &c, &r); break;
	case RSIP_ASSIGN_REQUEST_RSIPSEC: e = rs_do_assign_spi(s, &c, &r); break;
	case RSIP_EXTEND_REQUEST: e = rs_do_extend(s, &c, &r); break;
	case RSIP_FREE_REQUEST: e = rs_do_free(s, &c, &r); break;
	case RSIP_QUERY_REQUEST: e = do_query(s, &c, &r); break;
	case RSIP_DEREGISTER_REQUEST:
		e = rs_do_deregister(s, sess, &c, &r);
		break;
	default: e = RSIP_E_UNSUPPORTED_MESSAGE;
	}
	if (e)
		goto error;
	if (r.cert && b->len + RSIP_PARAM_HDR_LEN + 4 + r.cert_len + 12 + RSIP_MAC_LEN > RSIP_MAX_MSG) {
		xd_warn("RSIP: client %u: certificate of %zu bytes does not fit a response: not sent",
			c.id, r.cert_len);
	} else if (r.cert) {
		size_t cal = 0;
		const uint8_t *ca = s->certs.ca_der ? s->certs.ca_der(s->certs.ctx, &cal) : NULL;

		rsip_put_vendor(b, XDNAT_RSIP_VENDOR_ID, XDNAT_VS_CERT, r.cert, r.cert_len);
		/* The LCA certificate only if the response still fits (the host
		 * can be given it by other means). */
		if (ca && b->len + 2 * RSIP_PARAM_HDR_LEN + 8 + cal + 12 + RSIP_MAC_LEN <= RSIP_MAX_MSG)
			rsip_put_vendor(b, XDNAT_RSIP_VENDOR_ID, XDNAT_VS_CACERT, ca, cal);
	}
	if (has_counter)
		rsip_put_u32(b, RSIP_P_MESSAGE_COUNTER, counter);
	n = rsip_seal_mac(b, sess->keys.s2c);
	if (m->type == RSIP_DEREGISTER_REQUEST)
		sess->authed = false;
	goto out;
error:
	if (!sealed || !sess->authed) {
		/* No keys yet: an unauthenticated error, then hang up. */
		n = rsip_build_error(b, e, has_counter, counter, 0, 0);
		*close = true;
	} else {
		rsip_begin(b, RSIP_ERROR_RESPONSE);
		rsip_put_u16(b, RSIP_P_ERROR, e);
		if (r.client_id)
			rsip_put_u32(b, RSIP_P_CLIENT_ID, r.client_id);
		if (r.bind_id)
			rsip_put_u32(b, RSIP_P_BIND_ID, r.bind_id);
		if (has_counter)
			rsip_put_u32(b, RSIP_P_MESSAGE_COUNTER, counter);
		n = rsip_seal_mac(b, sess->keys.s2c);
	}
	if (e == RSIP_E_UNSUPPORTED_RSIP_VERSION || e == RSIP_E_BAD_MESSAGE)
		*close = true;
out:
	if (end_session) {
		/* After the (sealed) error: the keys are of no further use. */
		sess->authed = false;
		memset(&sess->keys, 0, sizeof(sess->keys));
		memset(sess->secret, 0, sizeof(sess->secret));
	}
	if (n)
		memcpy(out, b->buf, n);
	free(r.cert);
	free(b);
	free(m);
	free(f);
	return n;
}
