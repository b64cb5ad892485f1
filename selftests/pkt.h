/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Minimal packet builder for the datapath tests: Ethernet, IPv4 (with
 * options), TCP, UDP, ICMP, ESP and AH, with checksums computed here, from
 * RFC 791/768/793/792 and RFC 1071 -- deliberately not sharing a line with
 * the BPF code under test, so that a wrong checksum there cannot be
 * "confirmed" by the same mistake here.
 *
 * Usage: an IPv4 datagram is built between pkt_ip4_begin() and
 * pkt_ip4_end(); L4 helpers in between append their header and payload and
 * take the pseudo-header addresses from the enclosing IPv4 header.  Headers
 * nest (IP-in-IP): end the inner datagram before the outer one.
 *
 * Addresses and ports are passed in host byte order; the builder writes
 * network byte order.  On overflow of the fixed buffer the builder aborts:
 * a test bug, not a condition to recover from.
 */
#ifndef XDNAT_SELFTEST_PKT_H
#define XDNAT_SELFTEST_PKT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PKT_MAX 2048

#define ETHTYPE_IPV4 0x0800
#define ETHTYPE_ARP  0x0806
#define ETHTYPE_IPV6 0x86dd
#define ETHTYPE_VLAN 0x8100
#define ETHTYPE_QINQ 0x88a8

#define PROTO_ICMP 1
#define PROTO_IPIP 4
#define PROTO_TCP  6
#define PROTO_UDP  17
#define PROTO_GRE  47
#define PROTO_ESP  50
#define PROTO_AH   51

#define IP_DF 0x4000
#define IP_MF 0x2000

/* Host-order IPv4 address from its dotted quad. */
#define IP4(a, b, c, d) \
	((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

struct pkt {
	size_t len;
	uint8_t b[PKT_MAX];
};

/* Fields of an IPv4 header the tests choose; lengths/checksum are computed. */
struct ip4 {
	uint32_t src, dst;
	uint8_t proto;
	uint8_t tos;
	uint8_t ttl;
	uint16_t id;
	uint16_t frag;        /* flags (IP_DF, IP_MF) | offset in 8-byte units */
	const uint8_t *opt;   /* options, opt_len bytes, padded with EOL to 4 */
	size_t opt_len;       /* at most 40 */
};

static inline void pkt_reset(struct pkt *p)
{
	p->len = 0;
}

/* Append @n bytes (zeros when @data is NULL); returns where they went. */
static inline uint8_t *pkt_put(struct pkt *p, const void *data, size_t n)
{
	uint8_t *at;

	if (n > PKT_MAX - p->len) {
		fprintf(stderr, "pkt: %zu + %zu bytes exceed PKT_MAX\n", p->len, n);
		abort();
	}
	at = p->b + p->len;
	if (data)
		memcpy(at, data, n);
	else
		memset(at, 0, n);
	p->len += n;
	return at;
}

static inline void pkt_wr16(uint8_t *at, uint16_t v)
{
	at[0] = (uint8_t)(v >> 8);
	at[1] = (uint8_t)v;
}

static inline void pkt_wr32(uint8_t *at, uint32_t v)
{
	pkt_wr16(at, (uint16_t)(v >> 16));
	pkt_wr16(at + 2, (uint16_t)v);
}

static inline uint16_t pkt_rd16(const uint8_t *at)
{
	return (uint16_t)(at[0] << 8 | at[1]);
}

static inline uint32_t pkt_rd32(const uint8_t *at)
{
	return (uint32_t)pkt_rd16(at) << 16 | pkt_rd16(at + 2);
}

static inline void pkt_put16(struct pkt *p, uint16_t v)
{
	pkt_wr16(pkt_put(p, NULL, 2), v);
}

static inline void pkt_put32(struct pkt *p, uint32_t v)
{
	pkt_wr32(pkt_put(p, NULL, 4), v);
}

/* Deterministic, non-trivial payload bytes (seeded so packets differ). */
static inline void pkt_payload(struct pkt *p, size_t n, uint8_t seed)
{
	uint8_t *at = pkt_put(p, NULL, n);

	for (size_t i = 0; i < n; i++)
		at[i] = (uint8_t)(seed + 7 * i + (i >> 3));
}

/* RFC 1071 one's complement sum of big-endian 16-bit words, unfolded. */
static inline uint32_t pkt_sum(const uint8_t *d, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)d[i] << 8 | d[i + 1];
	if (n & 1)
		sum += (uint32_t)d[n - 1] << 8; /* pad the odd byte with zero */
	return sum;
}

static inline uint16_t pkt_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Checksum of @n bytes, for headers whose checksum field is zero. */
static inline uint16_t pkt_csum(const uint8_t *d, size_t n)
{
	return pkt_fold(pkt_sum(d, n, 0));
}

static inline void pkt_eth(struct pkt *p, const uint8_t dst[6], const uint8_t src[6],
			   uint16_t type)
{
	pkt_put(p, dst, 6);
	pkt_put(p, src, 6);
	pkt_put16(p, type);
}

/* IPv4 header at @off: header length from its IHL field. */
static inline size_t pkt_ip4_hlen(const struct pkt *p, size_t off)
{
	return (size_t)(p->b[off] & 0x0f) * 4;
}

/* Recompute the header checksum of the IPv4 header at @off (IHL-sized). */
static inline void pkt_ip4_fix_csum(struct pkt *p, size_t off)
{
	size_t hlen = pkt_ip4_hlen(p, off);

	pkt_wr16(p->b + off + 10, 0);
	pkt_wr16(p->b + off + 10, pkt_csum(p->b + off, hlen));
}

/* Start an IPv4 datagram; returns the offset of its header. */
static inline size_t pkt_ip4_begin(struct pkt *p, const struct ip4 *h)
{
	size_t off = p->len, optpad = (h->opt_len + 3) & ~(size_t)3;
	uint8_t *ip;

	if (optpad > 40) {
		fprintf(stderr, "pkt: %zu bytes of IPv4 options\n", h->opt_len);
		abort();
	}
	ip = pkt_put(p, NULL, 20);
	ip[0] = (uint8_t)(0x40 | (5 + optpad / 4));
	ip[1] = h->tos;
	/* ip[2..3] tot_len: pkt_ip4_end() */
	pkt_wr16(ip + 4, h->id);
	pkt_wr16(ip + 6, h->frag);
	ip[8] = h->ttl;
	ip[9] = h->proto;
	/* ip[10..11] checksum: pkt_ip4_end() */
	pkt_wr32(ip + 12, h->src);
	pkt_wr32(ip + 16, h->dst);
	if (optpad) {
		uint8_t *o = pkt_put(p, NULL, optpad); /* zero = EOL padding */

		memcpy(o, h->opt, h->opt_len);
	}
	return off;
}

/* Close the datagram started at @off: total length and header checksum. */
static inline void pkt_ip4_end(struct pkt *p, size_t off)
{
	pkt_wr16(p->b + off + 2, (uint16_t)(p->len - off));
	pkt_ip4_fix_csum(p, off);
}

/* TCP/UDP checksum over the pseudo header (RFC 793/768) and @len bytes. */
static inline uint16_t pkt_l4_csum(const struct pkt *p, size_t ip_off, size_t l4_off,
				   size_t len)
{
	const uint8_t *ip = p->b + ip_off;
	uint32_t sum = 0;

	sum = pkt_sum(ip + 12, 8, sum);   /* source and destination address */
	sum += ip[9];                     /* zero, protocol */
	sum += (uint32_t)len;             /* TCP/UDP length */
	return pkt_fold(pkt_sum(p->b + l4_off, len, sum));
}

static inline void pkt_udp(struct pkt *p, size_t ip_off, uint16_t sport, uint16_t dport,
			   size_t paylen, uint8_t seed)
{
	size_t off = p->len;
	uint8_t *u = pkt_put(p, NULL, 8);
	uint16_t c;

	pkt_wr16(u, sport);
	pkt_wr16(u + 2, dport);
	pkt_wr16(u + 4, (uint16_t)(8 + paylen));
	pkt_payload(p, paylen, seed);
	c = pkt_l4_csum(p, ip_off, off, 8 + paylen);
	pkt_wr16(p->b + off + 6, c ? c : 0xffff); /* RFC 768: 0 means "none" */
}

/* UDP with the given payload bytes (IKE, ESP-in-UDP, keepalives). */
static inline void pkt_udp_data(struct pkt *p, size_t ip_off, uint16_t sport, uint16_t dport,
				const uint8_t *data, size_t n)
{
	size_t off = p->len;
	uint8_t *u = pkt_put(p, NULL, 8);
	uint16_t c;

	pkt_wr16(u, sport);
	pkt_wr16(u + 2, dport);
	pkt_wr16(u + 4, (uint16_t)(8 + n));
	pkt_put(p, data, n);
	c = pkt_l4_csum(p, ip_off, off, 8 + n);
	pkt_wr16(p->b + off + 6, c ? c : 0xffff);
}

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_ACK 0x10

static inline void pkt_tcp(struct pkt *p, size_t ip_off, uint16_t sport, uint16_t dport,
			   uint32_t seq, uint8_t flags, size_t paylen, uint8_t seed)
{
	size_t off = p->len;
	uint8_t *t = pkt_put(p, NULL, 20);

	pkt_wr16(t, sport);
	pkt_wr16(t + 2, dport);
	pkt_wr32(t + 4, seq);
	pkt_wr32(t + 8, flags & TCP_ACK ? seq ^ 0x5a5a5a5a : 0);
	t[12] = 5 << 4; /* data offset */
	t[13] = flags;
	pkt_wr16(t + 14, 64240);
	pkt_payload(p, paylen, seed);
	pkt_wr16(p->b + off + 16, pkt_l4_csum(p, ip_off, off, 20 + paylen));
}

#define ICMP_ECHOREPLY   0
#define ICMP_UNREACH     3
#define ICMP_ECHO        8

/* ICMP echo/echo reply (RFC 792); for other types id/seq are the "unused"
 * or type-specific second word. */
static inline void pkt_icmp(struct pkt *p, uint8_t type, uint8_t code, uint16_t id,
			    uint16_t seq, size_t paylen, uint8_t seed)
{
	size_t off = p->len;
	uint8_t *c = pkt_put(p, NULL, 8);

	c[0] = type;
	c[1] = code;
	pkt_wr16(c + 4, id);
	pkt_wr16(c + 6, seq);
	pkt_payload(p, paylen, seed);
	pkt_wr16(p->b + off + 2, pkt_csum(p->b + off, 8 + paylen));
}

/* ESP (RFC 4303): SPI, sequence number, then opaque ciphertext. */
static inline void pkt_esp(struct pkt *p, uint32_t spi, uint32_t seq, size_t paylen,
			   uint8_t seed)
{
	pkt_put32(p, spi);
	pkt_put32(p, seq);
	pkt_payload(p, paylen, seed);
}

/* AH (RFC 4302) with a 96-bit ICV, followed by @paylen protected bytes. */
static inline void pkt_ah(struct pkt *p, uint8_t next, uint32_t spi, uint32_t seq,
			  size_t paylen, uint8_t seed)
{
	uint8_t *a = pkt_put(p, NULL, 12);

	a[0] = next;
	a[1] = (12 + 12) / 4 - 2; /* AH length in 32-bit words, minus 2 */
	pkt_wr32(a + 4, spi);
	pkt_wr32(a + 8, seq);
	pkt_payload(p, 12, (uint8_t)(seed ^ 0xa5)); /* ICV */
	pkt_payload(p, paylen, seed);
}

#endif /* XDNAT_SELFTEST_PKT_H */
