/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * RSIP wire format (RFC 3103 section 4, RFC 3104 section 6): message
 * encoder, decoder and per-message parameter validation.
 *
 *   message   = Version(1)=1 | Message Type(1) | Overall Length(2) | parameters
 *   parameter = Code(1) | Length(2) | Value(Length)
 *
 * Every integer is in network byte order; Overall Length counts the whole
 * message including its 4-byte header.  The decoder never reads outside the
 * buffer it is given and never allocates; every failure maps to the RSIP
 * error code the peer must get in an ERROR_RESPONSE.
 */
#ifndef XDNAT_RSIP_WIRE_H
#define XDNAT_RSIP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RSIP_VERSION        1
#define RSIP_DEFAULT_PORT   4555
#define RSIP_HDR_LEN        4
#define RSIP_PARAM_HDR_LEN  3
/* Our limit on a message (the wire allows 65535): nothing we exchange comes
 * close; anything larger is refused with BAD_MESSAGE before it is read. */
#define RSIP_MAX_MSG        4096
#define RSIP_MAX_PARAMS     64

/* Message types (RFC 3103 section 5, RFC 3104 section 6.2). */
enum rsip_msg_type {
	RSIP_ERROR_RESPONSE = 1,
	RSIP_REGISTER_REQUEST = 2,
	RSIP_REGISTER_RESPONSE = 3,
	RSIP_DEREGISTER_REQUEST = 4,
	RSIP_DEREGISTER_RESPONSE = 5,
	RSIP_ASSIGN_REQUEST_RSA_IP = 6,
	RSIP_ASSIGN_RESPONSE_RSA_IP = 7,
	RSIP_ASSIGN_REQUEST_RSAP_IP = 8,
	RSIP_ASSIGN_RESPONSE_RSAP_IP = 9,
	RSIP_EXTEND_REQUEST = 10,
	RSIP_EXTEND_RESPONSE = 11,
	RSIP_FREE_REQUEST = 12,
	RSIP_FREE_RESPONSE = 13,
	RSIP_QUERY_REQUEST = 14,
	RSIP_QUERY_RESPONSE = 15,
	RSIP_LISTEN_REQUEST = 16,
	RSIP_LISTEN_RESPONSE = 17,
	RSIP_ASSIGN_REQUEST_RSIPSEC = 22,
	RSIP_ASSIGN_RESPONSE_RSIPSEC = 23,
};

/* Parameter codes (RFC 3103 section 4.3, RFC 3104 section 6.2). */
enum rsip_param_code {
	RSIP_P_ADDRESS = 1,
	RSIP_P_PORTS = 2,
	RSIP_P_LEASE_TIME = 3,
	RSIP_P_CLIENT_ID = 4,
	RSIP_P_BIND_ID = 5,
	RSIP_P_TUNNEL_TYPE = 6,
	RSIP_P_RSIP_METHOD = 7,
	RSIP_P_ERROR = 8,
	RSIP_P_FLOW_POLICY = 9,
	RSIP_P_INDICATOR = 10,
	RSIP_P_MESSAGE_COUNTER = 11,
	RSIP_P_VENDOR_SPECIFIC = 12,
	RSIP_P_SPI = 22,
};

enum rsip_addr_type {
	RSIP_ADDR_RESERVED = 0,
	RSIP_ADDR_IPV4 = 1,
	RSIP_ADDR_IPV4_NETMASK = 2,
	RSIP_ADDR_IPV6 = 3,
	RSIP_ADDR_FQDN = 4,
};

enum { RSIP_TUNNEL_IPIP = 1, RSIP_TUNNEL_GRE = 2, RSIP_TUNNEL_L2TP = 3 };
enum { RSIP_METHOD_RSA_IP = 1, RSIP_METHOD_RSAP_IP = 2, RSIP_METHOD_RSIPSEC = 3 };
enum { RSIP_FLOW_MACRO = 1, RSIP_FLOW_MICRO = 2, RSIP_FLOW_NONE = 3 };

/* Error codes (RFC 3103 section 4.3.8 / appendix A, RFC 3104 section 6.2). */
enum rsip_error {
	RSIP_E_OK = 0, /* not on the wire: "no error" */
	RSIP_E_UNKNOWN_ERROR = 101,
	RSIP_E_USE_TCP = 102,
	RSIP_E_FLOW_POLICY_VIOLATION = 103,
	RSIP_E_INTERNAL_SERVER_ERROR = 104,
	RSIP_E_MESSAGE_COUNTER_REQUIRED = 105,
	RSIP_E_UNSUPPORTED_RSIP_VERSION = 106,
	RSIP_E_MISSING_PARAM = 201,
	RSIP_E_DUPLICATE_PARAM = 202,
	RSIP_E_EXTRA_PARAM = 203,
	RSIP_E_ILLEGAL_PARAM = 204,
	RSIP_E_BAD_PARAM = 205,
	RSIP_E_ILLEGAL_MESSAGE = 206,
	RSIP_E_BAD_MESSAGE = 207,
	RSIP_E_UNSUPPORTED_MESSAGE = 208,
	RSIP_E_REGISTER_FIRST = 301,
	RSIP_E_ALREADY_REGISTERED = 302,
	RSIP_E_ALREADY_UNREGISTERED = 303,
	RSIP_E_REGISTRATION_DENIED = 304,
	RSIP_E_BAD_CLIENT_ID = 305,
	RSIP_E_BAD_BIND_ID = 306,
	RSIP_E_BAD_TUNNEL_TYPE = 307,
	RSIP_E_LOCAL_ADDR_UNAVAILABLE = 308,
	RSIP_E_LOCAL_ADDRPORT_UNAVAILABLE = 309,
	RSIP_E_LOCAL_ADDR_INUSE = 310,
	RSIP_E_LOCAL_ADDRPORT_INUSE = 311,
	RSIP_E_LOCAL_ADDR_UNALLOWED = 312,
	RSIP_E_LOCAL_ADDRPORT_UNALLOWED = 313,
	RSIP_E_REMOTE_ADDR_UNALLOWED = 314,
	RSIP_E_REMOTE_ADDRPORT_UNALLOWED = 315,
	RSIP_E_IPSEC_UNALLOWED = 400,
	RSIP_E_IPSEC_SPI_UNAVAILABLE = 401,
	RSIP_E_IPSEC_SPI_INUSE = 402,
};

const char *rsip_msg_name(uint8_t type);
const char *rsip_error_name(uint16_t code);

/* One parameter as it sits in the buffer (val points into it). */
struct rsip_param {
	uint8_t code;
	uint16_t len;
	const uint8_t *val;
};

/* Decoded message; params[] in wire order. */
struct rsip_msg {
	uint8_t version;
	uint8_t type;
	uint16_t length;
	unsigned n_params;
	struct rsip_param params[RSIP_MAX_PARAMS];
};

/*
 * Framing: given at least RSIP_HDR_LEN bytes, the total length of the
 * message (>= 4), or 0 with *err set when the header is unacceptable
 * (version, length below 4 or above RSIP_MAX_MSG).
 */
size_t rsip_frame_len(const uint8_t *buf, size_t avail, uint16_t *err);

/*
 * Decode @len bytes into @m: header, then every parameter with its value
 * length checked against its code.  Returns RSIP_E_OK or the error code.
 * The parameters are not yet checked against the message type.
 */
uint16_t rsip_decode(const uint8_t *buf, size_t len, struct rsip_msg *m);

/* Typed views of single parameters (valid after rsip_decode). */
struct rsip_addr {
	uint8_t type;         /* RSIP_ADDR_* */
	uint8_t len;          /* bytes of value after the type: 0 = "any" */
	uint8_t bytes[255];
};
struct rsip_ports {
	uint8_t number;       /* Number field */
	uint8_t count;        /* ports listed (0 = "any Number ports") */
	uint16_t port[127];   /* host order */
};
struct rsip_spi {
	uint16_t number;      /* Number field */
	uint16_t count;       /* SPIs listed (0 = "any Number SPIs") */
	uint32_t spi[64];     /* host order; more than 64 listed is refused */
};
struct rsip_vendor {
	uint16_t vendor;
	uint16_t subtype;
	uint16_t len;
	const uint8_t *val;
};

uint16_t rsip_param_addr(const struct rsip_param *p, struct rsip_addr *a);
uint16_t rsip_param_ports(const struct rsip_param *p, struct rsip_ports *ports);
uint16_t rsip_param_spi(const struct rsip_param *p, struct rsip_spi *s);
uint16_t rsip_param_vendor(const struct rsip_param *p, struct rsip_vendor *v);
uint32_t rsip_param_u32(const struct rsip_param *p);
uint16_t rsip_param_u16(const struct rsip_param *p);
uint8_t rsip_param_u8(const struct rsip_param *p);

/*
 * Per-message parameter schema.  Each message type has an ordered list of
 * slots (for instance ASSIGN_REQUEST_RSAP-IP: Client ID, Address (local),
 * Ports (local), Address (remote), Ports (remote), [Lease Time],
 * [Tunnel Type]).  Required parameters must appear in the order listed
 * (that order is what tells Address (local) from Address (remote)); a
 * Message Counter may appear anywhere, once; Vendor Specific parameters
 * anywhere, any number of times.  Result: slot -> index in m->params, or -1.
 */
#define RSIP_MAX_SLOTS 12
struct rsip_fields {
	int slot[RSIP_MAX_SLOTS];
	int counter;              /* Message Counter parameter, or -1 */
	unsigned n_vendor;
	int vendor[8];            /* Vendor Specific parameters */
	/* Repeated slots (RSIP Method..., Tunnel Type..., QUERY tuples). */
	unsigned n_repeat;
	int repeat[RSIP_MAX_PARAMS];
};

/* Slot names per message type, for the handlers. */
enum {
	/* REGISTER_RESPONSE */
	RSIP_S_REGRESP_CLIENT = 0, RSIP_S_REGRESP_LEASE, RSIP_S_REGRESP_FLOW,
	/* ERROR_RESPONSE */
	RSIP_S_ERR_ERROR = 0, RSIP_S_ERR_CLIENT, RSIP_S_ERR_BIND,
	/* DE-REGISTER_*, QUERY_* */
	RSIP_S_CLIENT = 0,
	/* ASSIGN_REQUEST_RSAP-IP */
	RSIP_S_AR_CLIENT = 0, RSIP_S_AR_ADDR_LOCAL, RSIP_S_AR_PORTS_LOCAL, RSIP_S_AR_ADDR_REMOTE,
	RSIP_S_AR_PORTS_REMOTE, RSIP_S_AR_LEASE, RSIP_S_AR_TUNNEL,
	/* ASSIGN_RESPONSE_RSAP-IP */
	RSIP_S_AP_CLIENT = 0, RSIP_S_AP_BIND, RSIP_S_AP_ADDR_LOCAL, RSIP_S_AP_PORTS_LOCAL,
	RSIP_S_AP_ADDR_REMOTE, RSIP_S_AP_PORTS_REMOTE, RSIP_S_AP_LEASE, RSIP_S_AP_TUNNEL,
	RSIP_S_AP_ADDR_TUNNEL,
	/* ASSIGN_REQUEST_RSIPSEC */
	RSIP_S_SR_CLIENT = 0, RSIP_S_SR_ADDR_LOCAL, RSIP_S_SR_ADDR_REMOTE, RSIP_S_SR_PORTS_REMOTE,
	RSIP_S_SR_LEASE, RSIP_S_SR_TUNNEL, RSIP_S_SR_SPI,
	/* ASSIGN_RESPONSE_RSIPSEC */
	RSIP_S_SP_CLIENT = 0, RSIP_S_SP_BIND, RSIP_S_SP_ADDR_LOCAL, RSIP_S_SP_ADDR_REMOTE,
	RSIP_S_SP_PORTS_REMOTE, RSIP_S_SP_SPI, RSIP_S_SP_LEASE, RSIP_S_SP_TUNNEL,
	RSIP_S_SP_ADDR_TUNNEL,
	/* EXTEND_*, FREE_* */
	RSIP_S_B_CLIENT = 0, RSIP_S_B_BIND, RSIP_S_B_LEASE,
};

/* Returns RSIP_E_OK, UNSUPPORTED_MESSAGE, MISSING_PARAM, DUPLICATE_PARAM
 * or EXTRA_PARAM. */
uint16_t rsip_validate(const struct rsip_msg *m, struct rsip_fields *f);

/* ---- encoder ---- */
struct rsip_builder {
	uint8_t buf[RSIP_MAX_MSG];
	size_t len;
	bool overflow;  /* a put did not fit: the message must not be sent */
};

void rsip_begin(struct rsip_builder *b, uint8_t type);
void rsip_put_raw(struct rsip_builder *b, uint8_t code, const void *val, size_t len);
void rsip_put_u8(struct rsip_builder *b, uint8_t code, uint8_t v);
void rsip_put_u16(struct rsip_builder *b, uint8_t code, uint16_t v);
void rsip_put_u32(struct rsip_builder *b, uint8_t code, uint32_t v);
/* IPv4 address in network order; addr_be == 0 with any=true: "any" (type only). */
void rsip_put_addr4(struct rsip_builder *b, uint32_t addr_be, bool any);
/* Ports: count == 0 -> "any @number ports"; count == 1 && number > 1 -> range. */
void rsip_put_ports(struct rsip_builder *b, uint8_t number, const uint16_t *ports, unsigned count);
void rsip_put_spi(struct rsip_builder *b, uint16_t number, const uint32_t *spis, unsigned count);
void rsip_put_flow(struct rsip_builder *b, uint8_t local, uint8_t remote);
void rsip_put_vendor(struct rsip_builder *b, uint16_t vendor, uint16_t subtype,
		     const void *val, size_t len);
/* Sets Overall Length; returns the message length or 0 on overflow. */
size_t rsip_finish(struct rsip_builder *b);

/* ERROR_RESPONSE with optional Message Counter, Client ID, Bind ID (0 = omit
 * for the IDs; has_counter for the counter). */
size_t rsip_build_error(struct rsip_builder *b, uint16_t error, bool has_counter,
			uint32_t counter, uint32_t client_id, uint32_t bind_id);

#endif
