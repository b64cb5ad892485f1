// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * RSIP wire format: see rsip_wire.h.  Everything here is bounds-checked
 * against the caller's buffer length and allocation-free, so the decoder
 * can face arbitrary bytes from the network (and a fuzzer).
 */
#include <string.h>
#include "rsip_wire.h"

static uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

const char *rsip_msg_name(uint8_t type)
{
	switch (type) {
	case RSIP_ERROR_RESPONSE: return "ERROR_RESPONSE";
	case RSIP_REGISTER_REQUEST: return "REGISTER_REQUEST";
	case RSIP_REGISTER_RESPONSE: return "REGISTER_RESPONSE";
	case RSIP_DEREGISTER_REQUEST: return "DE-REGISTER_REQUEST";
	case RSIP_DEREGISTER_RESPONSE: return "DE-REGISTER_RESPONSE";
	case RSIP_ASSIGN_REQUEST_RSA_IP: return "ASSIGN_REQUEST_RSA-IP";
	case RSIP_ASSIGN_RESPONSE_RSA_IP: return "ASSIGN_RESPONSE_RSA-IP";
	case RSIP_ASSIGN_REQUEST_RSAP_IP: return "ASSIGN_REQUEST_RSAP-IP";
	case RSIP_ASSIGN_RESPONSE_RSAP_IP: return "ASSIGN_RESPONSE_RSAP-IP";
	case RSIP_EXTEND_REQUEST: return "EXTEND_REQUEST";
	case RSIP_EXTEND_RESPONSE: return "EXTEND_RESPONSE";
	case RSIP_FREE_REQUEST: return "FREE_REQUEST";
	case RSIP_FREE_RESPONSE: return "FREE_RESPONSE";
	case RSIP_QUERY_REQUEST: return "QUERY_REQUEST";
	case RSIP_QUERY_RESPONSE: return "QUERY_RESPONSE";
	case RSIP_LISTEN_REQUEST: return "LISTEN_REQUEST";
	case RSIP_LISTEN_RESPONSE: return "LISTEN_RESPONSE";
	case RSIP_ASSIGN_REQUEST_RSIPSEC: return "ASSIGN_REQUEST_RSIPSEC";
	case RSIP_ASSIGN_RESPONSE_RSIPSEC: return "ASSIGN_RESPONSE_RSIPSEC";
	default: return "unknown message";
	}
}

const char *rsip_error_name(uint16_t code)
{
	switch (code) {
	case RSIP_E_OK: return "OK";
	case RSIP_E_UNKNOWN_ERROR: return "UNKNOWN_ERROR";
	case RSIP_E_USE_TCP: return "USE_TCP";
	case RSIP_E_FLOW_POLICY_VIOLATION: return "FLOW_POLICY_VIOLATION";
	case RSIP_E_INTERNAL_SERVER_ERROR: return "INTERNAL_SERVER_ERROR";
	case RSIP_E_MESSAGE_COUNTER_REQUIRED: return "MESSAGE_COUNTER_REQUIRED";
	case RSIP_E_UNSUPPORTED_RSIP_VERSION: return "UNSUPPORTED_RSIP_VERSION";
	case RSIP_E_MISSING_PARAM: return "MISSING_PARAM";
	case RSIP_E_DUPLICATE_PARAM: return "DUPLICATE_PARAM";
	case RSIP_E_EXTRA_PARAM: return "EXTRA_PARAM";
	case RSIP_E_ILLEGAL_PARAM: return "ILLEGAL_PARAM";
	case RSIP_E_BAD_PARAM: return "BAD_PARAM";
	case RSIP_E_ILLEGAL_MESSAGE: return "ILLEGAL_MESSAGE";
	case RSIP_E_BAD_MESSAGE: return "BAD_MESSAGE";
	case RSIP_E_UNSUPPORTED_MESSAGE: return "UNSUPPORTED_MESSAGE";
	case RSIP_E_REGISTER_FIRST: return "REGISTER_FIRST";
	case RSIP_E_ALREADY_REGISTERED: return "ALREADY_REGISTERED";
	case RSIP_E_ALREADY_UNREGISTERED: return "ALREADY_UNREGISTERED";
	case RSIP_E_REGISTRATION_DENIED: return "REGISTRATION_DENIED";
	case RSIP_E_BAD_CLIENT_ID: return "BAD_CLIENT_ID";
	case RSIP_E_BAD_BIND_ID: return "BAD_BIND_ID";
	case RSIP_E_BAD_TUNNEL_TYPE: return "BAD_TUNNEL_TYPE";
	case RSIP_E_LOCAL_ADDR_UNAVAILABLE: return "LOCAL_ADDR_UNAVAILABLE";
	case RSIP_E_LOCAL_ADDRPORT_UNAVAILABLE: return "LOCAL_ADDRPORT_UNAVAILABLE";
	case RSIP_E_LOCAL_ADDR_INUSE: return "LOCAL_ADDR_INUSE";
	case RSIP_E_LOCAL_ADDRPORT_INUSE: return "LOCAL_ADDRPORT_INUSE";
	case RSIP_E_LOCAL_ADDR_UNALLOWED: return "LOCAL_ADDR_UNALLOWED";
	case RSIP_E_LOCAL_ADDRPORT_UNALLOWED: return "LOCAL_ADDRPORT_UNALLOWED";
	case RSIP_E_REMOTE_ADDR_UNALLOWED: return "REMOTE_ADDR_UNALLOWED";
	case RSIP_E_REMOTE_ADDRPORT_UNALLOWED: return "REMOTE_ADDRPORT_UNALLOWED";
	case RSIP_E_IPSEC_UNALLOWED: return "IPSEC_UNALLOWED";
	case RSIP_E_IPSEC_SPI_UNAVAILABLE: return "IPSEC_SPI_UNAVAILABLE";
	case RSIP_E_IPSEC_SPI_INUSE: return "IPSEC_SPI_INUSE";
	default: return "undefined error";
	}
}

size_t rsip_frame_len(const uint8_t *buf, size_t avail, uint16_t *err)
{
	uint16_t len;

	*err = RSIP_E_OK;
	if (avail < RSIP_HDR_LEN)
		return 0;
	if (buf[0] != RSIP_VERSION) {
		*err = RSIP_E_UNSUPPORTED_RSIP_VERSION;
		return 0;
	}
	len = rd16(buf + 2);
	if (len < RSIP_HDR_LEN || len > RSIP_MAX_MSG) {
		*err = RSIP_E_BAD_MESSAGE;
		return 0;
	}
	return len;
}

static bool known_type(uint8_t t)
{
	return (t >= RSIP_ERROR_RESPONSE && t <= RSIP_LISTEN_RESPONSE) ||
	       t == RSIP_ASSIGN_REQUEST_RSIPSEC || t == RSIP_ASSIGN_RESPONSE_RSIPSEC;
}

/* Value-length (BAD_PARAM) and value (ILLEGAL_PARAM) checks per code. */
static uint16_t check_param(const struct rsip_param *p)
{
	switch (p->code) {
	case RSIP_P_ADDRESS: {
		struct rsip_addr a;

		return rsip_param_addr(p, &a);
	}
	case RSIP_P_PORTS: {
		struct rsip_ports ports;

		return rsip_param_ports(p, &ports);
	}
	case RSIP_P_SPI: {
		struct rsip_spi s;

		return rsip_param_spi(p, &s);
	}
	case RSIP_P_VENDOR_SPECIFIC: {
		struct rsip_vendor v;

		return rsip_param_vendor(p, &v);
	}
	case RSIP_P_LEASE_TIME:
	case RSIP_P_CLIENT_ID:
	case RSIP_P_BIND_ID:
	case RSIP_P_MESSAGE_COUNTER:
		return p->len == 4 ? RSIP_E_OK : RSIP_E_BAD_PARAM;
	case RSIP_P_TUNNEL_TYPE:
		if (p->len != 1)
			return RSIP_E_BAD_PARAM;
		return p->val[0] >= RSIP_TUNNEL_IPIP && p->val[0] <= RSIP_TUNNEL_L2TP ?
			RSIP_E_OK : RSIP_E_ILLEGAL_PARAM;
	case RSIP_P_RSIP_METHOD:
		if (p->len != 1)
			return RSIP_E_BAD_PARAM;
		return p->val[0] >= RSIP_METHOD_RSA_IP && p->val[0] <= RSIP_METHOD_RSIPSEC ?
			RSIP_E_OK : RSIP_E_ILLEGAL_PARAM;
	case RSIP_P_FLOW_POLICY:
		if (p->len != 2)
			return RSIP_E_BAD_PARAM;
		return p->val[0] >= RSIP_FLOW_MACRO && p->val[0] <= RSIP_FLOW_MICRO &&
		       p->val[1] >= RSIP_FLOW_MACRO && p->val[1] <= RSIP_FLOW_NONE ?
			RSIP_E_OK : RSIP_E_ILLEGAL_PARAM;
	case RSIP_P_ERROR:
	case RSIP_P_INDICATOR:
		return p->len == 2 ? RSIP_E_OK : RSIP_E_BAD_PARAM;
	default:
		return RSIP_E_ILLEGAL_PARAM;
	}
}

uint16_t rsip_decode(const uint8_t *buf, size_t len, struct rsip_msg *m)
{
	size_t off = RSIP_HDR_LEN;
	uint16_t err;

	memset(m, 0, sizeof(*m));
	if (!buf || len < RSIP_HDR_LEN)
		return RSIP_E_BAD_MESSAGE;
	m->version = buf[0];
	m->type = buf[1];
	m->length = rd16(buf + 2);
	if (m->version != RSIP_VERSION)
		return RSIP_E_UNSUPPORTED_RSIP_VERSION;
	if (m->length != len || len > RSIP_MAX_MSG)
		return RSIP_E_BAD_MESSAGE;
	while (off < len) {
		struct rsip_param *p;

		if (len - off < RSIP_PARAM_HDR_LEN)
			return RSIP_E_BAD_MESSAGE;
		if (m->n_params == RSIP_MAX_PARAMS)
			return RSIP_E_BAD_MESSAGE;
		p = &m->params[m->n_params];
		p->code = buf[off];
		p->len = rd16(buf + off + 1);
		off += RSIP_PARAM_HDR_LEN;
		if (p->len > len - off)
			return RSIP_E_BAD_MESSAGE;
		p->val = buf + off;
		off += p->len;
		m->n_params++;
		if ((err = check_param(p)) != RSIP_E_OK)
			return err;
	}
	if (!known_type(m->type))
		return RSIP_E_UNSUPPORTED_MESSAGE;
	return RSIP_E_OK;
}

uint16_t rsip_param_addr(const struct rsip_param *p, struct rsip_addr *a)
{
	size_t want;

	memset(a, 0, sizeof(*a));
	if (p->code != RSIP_P_ADDRESS || p->len < 1)
		return RSIP_E_BAD_PARAM;
	a->type = p->val[0];
	switch (a->type) {
	case RSIP_ADDR_IPV4:
	case RSIP_ADDR_IPV4_NETMASK: want = 4; break;
	case RSIP_ADDR_IPV6: want = 16; break;
	case RSIP_ADDR_FQDN: want = 0; break;
	default: return RSIP_E_ILLEGAL_PARAM;
	}
	if (p->len - 1u > sizeof(a->bytes))
		return RSIP_E_BAD_PARAM;
	if (want && p->len != 1 && p->len - 1u != want)
		return RSIP_E_BAD_PARAM;
	a->len = (uint8_t)(p->len - 1);
	memcpy(a->bytes, p->val + 1, a->len);
	return RSIP_E_OK;
}

uint16_t rsip_param_ports(const struct rsip_param *p, struct rsip_ports *ports)
{
	size_t count;

	memset(ports, 0, sizeof(*ports));
	if (p->code != RSIP_P_PORTS || p->len < 1 || (p->len - 1) % 2)
		return RSIP_E_BAD_PARAM;
	count = (p->len - 1u) / 2;
	if (count > sizeof(ports->port) / sizeof(ports->port[0]))
		return RSIP_E_BAD_PARAM;
	ports->number = p->val[0];
	ports->count = (uint8_t)count;
	/* A list must hold Number ports; one port with Number > 1 is a range. */
	if ((count > 1 && count != ports->number) || (count == 1 && ports->number == 0))
		return RSIP_E_BAD_PARAM;
	for (size_t i = 0; i < count; i++)
		ports->port[i] = rd16(p->val + 1 + 2 * i);
	if (count == 1 && (uint32_t)ports->port[0] + ports->number - 1 > 65535)
		return RSIP_E_ILLEGAL_PARAM;
	return RSIP_E_OK;
}

uint16_t rsip_param_spi(const struct rsip_param *p, struct rsip_spi *s)
{
	size_t count;

	memset(s, 0, sizeof(*s));
	if (p->code != RSIP_P_SPI || p->len < 2 || (p->len - 2) % 4)
		return RSIP_E_BAD_PARAM;
	count = (p->len - 2u) / 4;
	if (count > sizeof(s->spi) / sizeof(s->spi[0]))
		return RSIP_E_BAD_PARAM;
	s->number = rd16(p->val);
	s->count = (uint16_t)count;
	if ((count > 1 && count != s->number) || (count == 1 && s->number == 0))
		return RSIP_E_BAD_PARAM;
	for (size_t i = 0; i < count; i++)
		s->spi[i] = rd32(p->val + 2 + 4 * i);
	if (count == 1 && (uint64_t)s->spi[0] + s->number - 1 > 0xffffffffull)
		return RSIP_E_ILLEGAL_PARAM;
	return RSIP_E_OK;
}

uint16_t rsip_param_vendor(const struct rsip_param *p, struct rsip_vendor *v)
{
	memset(v, 0, sizeof(*v));
	if (p->code != RSIP_P_VENDOR_SPECIFIC || p->len < 4)
		return RSIP_E_BAD_PARAM;
	v->vendor = rd16(p->val);
	v->subtype = rd16(p->val + 2);
	v->len = (uint16_t)(p->len - 4);
	v->val = p->val + 4;
	return RSIP_E_OK;
}

uint32_t rsip_param_u32(const struct rsip_param *p) { return p->len == 4 ? rd32(p->val) : 0; }
uint16_t rsip_param_u16(const struct rsip_param *p) { return p->len == 2 ? rd16(p->val) : 0; }
uint8_t rsip_param_u8(const struct rsip_param *p) { return p->len == 1 ? p->val[0] : 0; }

/* ---------------------------------------------------------------- schema */

struct slot {
	uint8_t code;
	bool required;
	bool repeat;     /* may occur any number of times (e.g. Tunnel Type...) */
};

struct schema {
	uint8_t type;
	unsigned n;
	struct slot s[RSIP_MAX_SLOTS];
};

#define R(c) { RSIP_P_##c, true, false }
#define O(c) { RSIP_P_##c, false, false }
#define M(c) { RSIP_P_##c, false, true }

static const struct schema schemas[] = {
	{ RSIP_ERROR_RESPONSE, 3, { R(ERROR), O(CLIENT_ID), O(BIND_ID) } },
	{ RSIP_REGISTER_REQUEST, 0, { { 0, false, false } } },
	{ RSIP_REGISTER_RESPONSE, 5, { R(CLIENT_ID), R(LEASE_TIME), R(FLOW_POLICY),
				       M(RSIP_METHOD), M(TUNNEL_TYPE) } },
	{ RSIP_DEREGISTER_REQUEST, 1, { R(CLIENT_ID) } },
	{ RSIP_DEREGISTER_RESPONSE, 1, { R(CLIENT_ID) } },
	{ RSIP_ASSIGN_REQUEST_RSAP_IP, 7, { R(CLIENT_ID), R(ADDRESS), R(PORTS), R(ADDRESS),
					    R(PORTS), O(LEASE_TIME), O(TUNNEL_TYPE) } },
	{ RSIP_ASSIGN_RESPONSE_RSAP_IP, 9, { R(CLIENT_ID), R(BIND_ID), R(ADDRESS), R(PORTS),
					     R(ADDRESS), R(PORTS), R(LEASE_TIME),
					     R(TUNNEL_TYPE), O(ADDRESS) } },
	{ RSIP_EXTEND_REQUEST, 3, { R(CLIENT_ID), R(BIND_ID), O(LEASE_TIME) } },
	{ RSIP_EXTEND_RESPONSE, 3, { R(CLIENT_ID), R(BIND_ID), R(LEASE_TIME) } },
	{ RSIP_FREE_REQUEST, 2, { R(CLIENT_ID), R(BIND_ID) } },
	{ RSIP_FREE_RESPONSE, 2, { R(CLIENT_ID), R(BIND_ID) } },
	/* QUERY tuples: Indicator followed by Address(es), any number. */
	{ RSIP_QUERY_REQUEST, 2, { R(CLIENT_ID), M(INDICATOR) } },
	{ RSIP_QUERY_RESPONSE, 2, { R(CLIENT_ID), M(INDICATOR) } },
	{ RSIP_ASSIGN_REQUEST_RSIPSEC, 7, { R(CLIENT_ID), R(ADDRESS), R(ADDRESS), O(PORTS),
					    O(LEASE_TIME), O(TUNNEL_TYPE), O(SPI) } },
	{ RSIP_ASSIGN_RESPONSE_RSIPSEC, 9, { R(CLIENT_ID), R(BIND_ID), R(ADDRESS), R(ADDRESS),
					     O(PORTS), R(SPI), R(LEASE_TIME), R(TUNNEL_TYPE),
					     O(ADDRESS) } },
};

#undef R
#undef O
#undef M

uint16_t rsip_validate(const struct rsip_msg *m, struct rsip_fields *f)
{
	const struct schema *sc = NULL;
	bool filled[RSIP_MAX_SLOTS] = { false };
	bool query;
	unsigned cursor = 0;

	memset(f, 0, sizeof(*f));
	for (unsigned i = 0; i < RSIP_MAX_SLOTS; i++)
		f->slot[i] = -1;
	f->counter = -1;
	for (size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++)
		if (schemas[i].type == m->type)
			sc = &schemas[i];
	if (!sc)
		return RSIP_E_UNSUPPORTED_MESSAGE;
	query = m->type == RSIP_QUERY_REQUEST || m->type == RSIP_QUERY_RESPONSE;
	for (unsigned i = 0; i < m->n_params; i++) {
		const struct rsip_param *p = &m->params[i];
		unsigned s;

		if (p->code == RSIP_P_MESSAGE_COUNTER) {
			if (f->counter >= 0)
				return RSIP_E_DUPLICATE_PARAM;
			f->counter = (int)i;
			continue;
		}
		if (p->code == RSIP_P_VENDOR_SPECIFIC) {
			if (f->n_vendor == sizeof(f->vendor) / sizeof(f->vendor[0]))
				return RSIP_E_EXTRA_PARAM;
			f->vendor[f->n_vendor++] = (int)i;
			continue;
		}
		/* QUERY tuples: after the Client ID, Indicator and Address
		 * parameters in any number; the handler pairs them. */
		if (query && filled[0] && (p->code == RSIP_P_INDICATOR || p->code == RSIP_P_ADDRESS)) {
			f->repeat[f->n_repeat++] = (int)i;
			continue;
		}
		for (s = cursor; s < sc->n; s++)
			if (sc->s[s].code == p->code && (!filled[s] || sc->s[s].repeat))
				break;
		if (s == sc->n) {
			for (unsigned t = 0; t < sc->n; t++)
				if (sc->s[t].code == p->code)
					return RSIP_E_DUPLICATE_PARAM;
			return RSIP_E_EXTRA_PARAM;
		}
		if (sc->s[s].repeat) {
			f->repeat[f->n_repeat++] = (int)i;
			if (!filled[s])
				f->slot[s] = (int)i;
		} else {
			f->slot[s] = (int)i;
		}
		filled[s] = true;
		cursor = sc->s[s].repeat ? s : s + 1;
	}
	for (unsigned s = 0; s < sc->n; s++)
		if (sc->s[s].required && !filled[s])
			return RSIP_E_MISSING_PARAM;
	return RSIP_E_OK;
}

/* ---------------------------------------------------------------- encoder */

static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

void rsip_begin(struct rsip_builder *b, uint8_t type)
{
	b->buf[0] = RSIP_VERSION;
	b->buf[1] = type;
	wr16(b->buf + 2, 0);
	b->len = RSIP_HDR_LEN;
	b->overflow = false;
}

/* Reserve a parameter with a @len-byte value; NULL on overflow. */
static uint8_t *put(struct rsip_builder *b, uint8_t code, size_t len)
{
	uint8_t *v;

	if (b->overflow || len > 0xffff || sizeof(b->buf) - b->len < RSIP_PARAM_HDR_LEN + len) {
		b->overflow = true;
		return NULL;
	}
	b->buf[b->len] = code;
	wr16(b->buf + b->len + 1, (uint16_t)len);
	v = b->buf + b->len + RSIP_PARAM_HDR_LEN;
	b->len += RSIP_PARAM_HDR_LEN + len;
	return v;
}

void rsip_put_raw(struct rsip_builder *b, uint8_t code, const void *val, size_t len)
{
	uint8_t *v = put(b, code, len);

	if (v && len)
		memcpy(v, val, len);
}

void rsip_put_u8(struct rsip_builder *b, uint8_t code, uint8_t val)
{
	uint8_t *v = put(b, code, 1);

	if (v)
		v[0] = val;
}

void rsip_put_u16(struct rsip_builder *b, uint8_t code, uint16_t val)
{
	uint8_t *v = put(b, code, 2);

	if (v)
		wr16(v, val);
}

void rsip_put_u32(struct rsip_builder *b, uint8_t code, uint32_t val)
{
	uint8_t *v = put(b, code, 4);

	if (v)
		wr32(v, val);
}

void rsip_put_addr4(struct rsip_builder *b, uint32_t addr_be, bool any)
{
	uint8_t *v = put(b, RSIP_P_ADDRESS, any ? 1 : 5);

	if (!v)
		return;
	v[0] = RSIP_ADDR_IPV4;
	if (!any)
		memcpy(v + 1, &addr_be, 4);
}

void rsip_put_ports(struct rsip_builder *b, uint8_t number, const uint16_t *ports, unsigned count)
{
	uint8_t *v = put(b, RSIP_P_PORTS, 1 + 2 * (size_t)count);

	if (!v)
		return;
	v[0] = number;
	for (unsigned i = 0; i < count; i++)
		wr16(v + 1 + 2 * i, ports[i]);
}

void rsip_put_spi(struct rsip_builder *b, uint16_t number, const uint32_t *spis, unsigned count)
{
	uint8_t *v = put(b, RSIP_P_SPI, 2 + 4 * (size_t)count);

	if (!v)
		return;
	wr16(v, number);
	for (unsigned i = 0; i < count; i++)
		wr32(v + 2 + 4 * i, spis[i]);
}

void rsip_put_flow(struct rsip_builder *b, uint8_t local, uint8_t remote)
{
	uint8_t *v = put(b, RSIP_P_FLOW_POLICY, 2);

	if (v) {
		v[0] = local;
		v[1] = remote;
	}
}

void rsip_put_vendor(struct rsip_builder *b, uint16_t vendor, uint16_t subtype,
		     const void *val, size_t len)
{
	uint8_t *v = put(b, RSIP_P_VENDOR_SPECIFIC, 4 + len);

	if (!v)
		return;
	wr16(v, vendor);
	wr16(v + 2, subtype);
	if (len)
		memcpy(v + 4, val, len);
}

size_t rsip_finish(struct rsip_builder *b)
{
	if (b->overflow)
		return 0;
	wr16(b->buf + 2, (uint16_t)b->len);
	return b->len;
}

size_t rsip_build_error(struct rsip_builder *b, uint16_t error, bool has_counter,
			uint32_t counter, uint32_t client_id, uint32_t bind_id)
{
	rsip_begin(b, RSIP_ERROR_RESPONSE);
	rsip_put_u16(b, RSIP_P_ERROR, error);
	if (client_id)
		rsip_put_u32(b, RSIP_P_CLIENT_ID, client_id);
	if (bind_id)
		rsip_put_u32(b, RSIP_P_BIND_ID, bind_id);
	if (has_counter)
		rsip_put_u32(b, RSIP_P_MESSAGE_COUNTER, counter);
	return rsip_finish(b);
}
