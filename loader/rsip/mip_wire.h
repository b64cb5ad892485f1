/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Mobile IPv4 registration messages (RFC 5944 section 3) as xdnat uses them
 * for roaming hosts (docs/ROAMING.md): the router is the home agent on UDP
 * 434 of the global address G; a host registers a co-located care-of
 * address directly (no foreign agent), usually from behind a NAT, asking
 * for RFC 3519 UDP tunnelling.
 *
 *   Registration Request (type 1), 24 bytes + extensions:
 *     type(1) flags(1) lifetime(2) home address(4) home agent(4)
 *     care-of address(4) identification(8)
 *   Registration Reply (type 3), 20 bytes + extensions:
 *     type(1) code(1) lifetime(2) home address(4) home agent(4)
 *     identification(8)
 *   extension = type(1) length(1) data(length)  (types 0..127 must be
 *     understood, 128..255 may be skipped: RFC 5944 section 1.9)
 *
 * xdnat's profile:
 *   - Identity: many hosts share the home address G, so the home address
 *     alone names nobody.  The request carries the host's enrolment name
 *     in the Mobile Node NAI extension (RFC 2794, type 131), before the
 *     authentication extension (so it is authenticated); the home address
 *     is G (or 0.0.0.0: "assign me my home address", answered with G).
 *   - Authentication: the Mobile-Home Authentication Extension (type 32)
 *     with SPI MIP_SPI_XDNAT and a 32-byte authenticator
 *       HMAC-SHA-256(K_mh, every byte of the message before the
 *                    authenticator: header, earlier extensions, and this
 *                    extension's type, length and SPI)
 *       K_mh = HMAC-SHA-256(enrolment secret, "xdnat-mip-1 mn-ha")
 *     K_mh is distinct from the RSIP keys (other labels), so a MAC of one
 *     protocol never verifies in the other.
 *   - Replay protection: Identification as an NTP-format timestamp
 *     (RFC 5944 section 5.7): seconds since 1900 in the high 32 bits.
 *   - NAT traversal (RFC 3519): UDP Tunnel Request (type 144) in the
 *     request, UDP Tunnel Reply (type 44) in the reply.
 */
#ifndef XDNAT_MIP_WIRE_H
#define XDNAT_MIP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIP_PORT             434
#define MIP_T_RRQ            1
#define MIP_T_RRP            3
#define MIP_T_TUNNEL_DATA    4   /* RFC 3519: the datapath's, not ours */
#define MIP_RRQ_LEN          24
#define MIP_RRP_LEN          20
/* The largest message we read or write; anything longer is dropped. */
#define MIP_MAX_MSG          512

/* Request flags (RFC 5944 section 3.3, RFC 3024 for T). */
#define MIP_F_S 0x80   /* simultaneous bindings */
#define MIP_F_B 0x40   /* broadcast datagrams */
#define MIP_F_D 0x20   /* decapsulation by the mobile node (co-located CoA) */
#define MIP_F_M 0x10   /* minimal encapsulation */
#define MIP_F_G 0x08   /* GRE */
#define MIP_F_R 0x04   /* reserved (was VJ compression): must be 0 */
#define MIP_F_T 0x02   /* reverse tunnelling (RFC 3024) */
#define MIP_F_X 0x01   /* reserved: must be 0 */

/* Extension types. */
#define MIP_EXT_MH_AUTH      32    /* Mobile-Home Authentication (RFC 5944 3.5.2) */
#define MIP_EXT_UDP_TUN_REP  44    /* UDP Tunnel Reply (RFC 3519 3.2) */
#define MIP_EXT_NAI          131   /* Mobile Node NAI (RFC 2794) */
#define MIP_EXT_UDP_TUN_REQ  144   /* UDP Tunnel Request (RFC 3519 3.1) */

/* Reply codes (RFC 5944 section 3.4, RFC 3024 section 5.3). */
enum mip_code {
	MIP_C_ACCEPTED = 0,
	MIP_C_ACCEPTED_NO_SIMUL = 1,      /* simultaneous bindings unsupported */
	MIP_C_UNSPECIFIED = 128,
	MIP_C_ADMIN_PROHIBITED = 129,
	MIP_C_NO_RESOURCES = 130,
	MIP_C_MN_AUTH_FAILED = 131,
	MIP_C_FA_AUTH_FAILED = 132,
	MIP_C_ID_MISMATCH = 133,
	MIP_C_POORLY_FORMED = 134,
	MIP_C_TOO_MANY_BINDINGS = 135,
	MIP_C_UNKNOWN_HA = 136,
	MIP_C_REV_TUNNEL_UNAVAIL = 137,
	MIP_C_REV_TUNNEL_MANDATORY = 138, /* reverse tunnel mandatory, T not set */
	MIP_C_ENCAP_UNAVAIL = 139,        /* requested encapsulation unavailable */
};

/* The SPI of the mobility security association between an enrolled host
 * and xdnatd (SPIs 0-255 are reserved, RFC 5944 section 1.6): one SA per
 * host, named by its NAI, algorithm HMAC-SHA-256 (above). */
#define MIP_SPI_XDNAT        0x00000100u
#define MIP_AUTH_LEN         32
#define MIP_KEY_LEN          32
#define MIP_KEY_LABEL        "xdnat-mip-1 mn-ha"
#define MIP_NAI_MAX          64     /* our enrolment names: RSIP_KEYID_MAX */
/* RFC 5944 section 5.7: the default clock skew a timestamp may have. */
#define MIP_DEFAULT_SKEW_S   7
/* RFC 3519 3.1: encapsulation of the UDP tunnel's payload: IP-in-IP. */
#define MIP_ENCAP_IPIP       4
#define MIP_TUNREQ_F         0x80   /* F: force UDP tunnelling */
#define MIP_TUNREQ_R         0x40   /* R: registration through a foreign agent */
#define MIP_TUNREP_F         0x8000 /* F: tunnelling forced (reply) */
/* UDP Tunnel Reply codes (RFC 3519 3.2). */
#define MIP_TUNREP_ACCEPT    0
#define MIP_TUNREP_DECLINE   1

/* A decoded Registration Request; pointers into the buffer it came from. */
struct mip_rrq {
	uint8_t flags;
	uint16_t lifetime;
	uint32_t home, ha, coa;           /* network order */
	uint64_t id;
	const char *nai;                  /* not NUL-terminated; NULL: none */
	size_t nai_len;
	bool have_tunreq;
	uint8_t tunreq_flags, tunreq_encap;
	bool have_auth;
	uint32_t spi;
	const uint8_t *auth;              /* the authenticator */
	size_t auth_len;
	size_t auth_off;                  /* bytes before the authenticator */
};

/* A decoded Registration Reply. */
struct mip_rrp {
	uint8_t code;
	uint16_t lifetime;
	uint32_t home, ha;
	uint64_t id;
	bool have_tunrep;
	uint8_t tunrep_code;
	uint16_t tunrep_flags, keepalive;
	bool have_auth;
	uint32_t spi;
	const uint8_t *auth;
	size_t auth_len, auth_off;
};

/*
 * Decoding results.  MIP_DROP: silently discarded as RFC 5944 demands (not
 * a request, shorter than its fixed part, an unknown extension of type
 * < 128, an extension running past the end): no reply at all.
 * MIP_BAD: well framed but poorly formed (134).  Never reads outside
 * [buf, buf + len), never allocates.
 */
enum { MIP_OK = 0, MIP_DROP = -1, MIP_BAD = -2 };
int mip_rrq_parse(const uint8_t *buf, size_t len, struct mip_rrq *q);
int mip_rrp_parse(const uint8_t *buf, size_t len, struct mip_rrp *p);

/* K_mh from the host's enrolment secret (32 bytes). */
void mip_derive_key(const uint8_t secret[32], uint8_t key[MIP_KEY_LEN]);
/* Does the authenticator of a parsed message verify under @key?  SPI,
 * length and the extension's place (the last one) are checked here too;
 * constant-time comparison. */
bool mip_verify(const uint8_t *buf, size_t len, size_t auth_off, uint32_t spi,
		const uint8_t *auth, size_t auth_len, const uint8_t key[MIP_KEY_LEN]);

/* Building messages: a fixed part, extensions, and (last) the
 * authenticator.  Returns the length, 0 on overflow of @cap. */
struct mip_builder {
	uint8_t *buf;
	size_t cap, len;
	bool overflow;
};
void mip_build_rrq(struct mip_builder *b, uint8_t *buf, size_t cap, uint8_t flags,
		   uint16_t lifetime, uint32_t home, uint32_t ha, uint32_t coa, uint64_t id);
void mip_build_rrp(struct mip_builder *b, uint8_t *buf, size_t cap, uint8_t code,
		   uint16_t lifetime, uint32_t home, uint32_t ha, uint64_t id);
void mip_put_nai(struct mip_builder *b, const char *nai, size_t len);
void mip_put_tunreq(struct mip_builder *b, uint8_t flags, uint8_t encap);
void mip_put_tunrep(struct mip_builder *b, uint8_t code, uint16_t flags, uint16_t keepalive);
/* Append the MH authentication extension and finish; 0 on overflow. */
size_t mip_seal(struct mip_builder *b, const uint8_t key[MIP_KEY_LEN]);
/* Finish without authentication (a refusal to an unknown host). */
size_t mip_finish(struct mip_builder *b);

/* Identification timestamps: NTP seconds (since 1900) in the high 32
 * bits, a fraction (or a nonce) in the low 32. */
#define MIP_NTP_OFFSET 2208988800u
uint64_t mip_id_from_unix_ms(uint64_t ms, uint32_t low);
/* The Unix time (seconds) of an identification's high 32 bits. */
int64_t mip_id_unix_s(uint64_t id);

const char *mip_code_name(uint8_t code);

#endif
