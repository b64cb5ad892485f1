// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* RSIP server, the free-range index: see rsip_server.h and rsip_server_int.h. */
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

/* ------------------------------------------------------- free-range index */

static void bits_free(struct rsip_bits *b)
{
	free(b->w);
	free(b->full);
	memset(b, 0, sizeof(*b));
}

static void bits_mark(struct rsip_bits *b, size_t k)
{
	if (b->w[k] == ~0ull)
		b->full[k / 64] |= 1ull << (k % 64);
	else
		b->full[k / 64] &= ~(1ull << (k % 64));
}

/* All clear; the bits past n (in the last word) count as taken. */
static void bits_reset(struct rsip_bits *b)
{
	memset(b->w, 0, b->nw * sizeof(*b->w));
	memset(b->full, 0, (b->nw + 63) / 64 * sizeof(*b->full));
	if (b->n % 64) {
		b->w[b->nw - 1] = ~0ull << (b->n % 64);
		bits_mark(b, b->nw - 1);
	}
}

static int bits_init(struct rsip_bits *b, uint64_t n)
{
	if (b->w && b->n == n) {
		bits_reset(b);
		return 0;
	}
	bits_free(b);
	b->nw = (size_t)((n + 63) / 64);
	b->w = malloc(b->nw * sizeof(*b->w));
	b->full = malloc((b->nw + 63) / 64 * sizeof(*b->full));
	b->n = n;
	if (!b->w || !b->full) {
		bits_free(b);
		return -ENOMEM;
	}
	bits_reset(b);
	return 0;
}

/* Set (@on) or clear bits [a,z] (clipped to the map). */
static void bits_range(struct rsip_bits *b, uint64_t a, uint64_t z, bool on)
{
	if (!b->w || a > z || a >= b->n)
		return;
	if (z >= b->n)
		z = b->n - 1;
	for (size_t k = (size_t)(a / 64); k <= z / 64; k++) {
		unsigned lo = k == a / 64 ? (unsigned)(a % 64) : 0, hi = k == z / 64 ? (unsigned)(z % 64) : 63;
		uint64_t m = (hi == 63 ? ~0ull : (1ull << (hi + 1)) - 1) & (~0ull << lo);

		if (on)
			b->w[k] |= m;
		else
			b->w[k] &= ~m;
		bits_mark(b, k);
	}
}

/* The first clear bit >= p, or n: the summary skips taken words 64 at a time. */
uint64_t rs_bits_next_clear(const struct rsip_bits *b, uint64_t p)
{
	size_t k, j;
	uint64_t m;

	if (p >= b->n)
		return b->n;
	k = (size_t)(p / 64);
	m = ~b->w[k] & (~0ull << (p % 64));
	if (m)
		return (uint64_t)k * 64 + (unsigned)__builtin_ctzll(m);
	for (j = k + 1; j < b->nw;) {
		size_t f = j / 64;
		uint64_t fm = ~b->full[f] & (~0ull << (j % 64));

		if (fm) {
			size_t kk = f * 64 + (unsigned)__builtin_ctzll(fm);

			if (kk >= b->nw)
				return b->n;
			return (uint64_t)kk * 64 + (unsigned)__builtin_ctzll(~b->w[kk]);
		}
		j = (f + 1) * 64;
	}
	return b->n;
}

/* The first set bit in [p,z], or UINT64_MAX. */
uint64_t rs_bits_next_set(const struct rsip_bits *b, uint64_t p, uint64_t z)
{
	if (!b->w)
		return UINT64_MAX;
	if (z >= b->n)
		z = b->n - 1;
	for (size_t k = (size_t)(p / 64); p <= z && k <= z / 64; k++) {
		unsigned lo = k == p / 64 ? (unsigned)(p % 64) : 0, hi = k == z / 64 ? (unsigned)(z % 64) : 63;
		uint64_t m = b->w[k] & (hi == 63 ? ~0ull : (1ull << (hi + 1)) - 1) & (~0ull << lo);

		if (m)
			return (uint64_t)k * 64 + (unsigned)__builtin_ctzll(m);
	}
	return UINT64_MAX;
}

/* The first @cnt clear bits in a row within [lo,hi]: their start, or -1.
 * One step per run of taken bits that is followed by too short a gap. */
int64_t rs_bits_find(const struct rsip_bits *b, uint64_t lo, uint64_t hi, uint64_t cnt)
{
	uint64_t p = lo;

	if (!b->w || cnt == 0 || hi >= b->n)
		return -1;
	while (p <= hi && hi - p + 1 >= cnt) {
		uint64_t q;

		p = rs_bits_next_clear(b, p);
		if (p > hi || hi - p + 1 < cnt)
			return -1;
		q = rs_bits_next_set(b, p, p + cnt - 1);
		if (q == UINT64_MAX)
			return (int64_t)p;
		p = q + 1;
	}
	return -1;
}

struct rsip_pending {
	uint8_t op, kind;
	uint16_t gidx;
	uint32_t first, last;
};

void rs_idx_free(struct rsip_index *x)
{
	for (unsigned g = 0; g < XDNAT_MAX_GADDRS; g++)
		bits_free(&x->ports[g]);
	bits_free(&x->spis);
	bits_free(&x->hids);
	free(x->pend);
	memset(x, 0, sizeof(*x));
}

/* Mark (or unmark) a binding of the store in the index. */
void rs_idx_range(struct rsip_server *s, int kind, uint32_t gidx, uint32_t first, uint32_t last, bool on)
{
	struct rsip_index *x = &s->idx;

	if (kind == RSIP_KIND_PORTS && gidx < s->cfg.n_gaddrs)
		bits_range(&x->ports[gidx], first, last, on);
	else if (kind == RSIP_KIND_SPI)
		bits_range(&x->spis, first >> s->cfg.spi_bits, last >> s->cfg.spi_bits, on);
}

static int64_t data_version(struct rsip_server *s) { return OPS(s)->version(s->st); }

static int idx_add_binding(void *arg, const struct xd_binding *b)
{
	rs_idx_range(arg, b->kind, (uint32_t)b->gidx, b->first, b->last, true);
	return 0;
}

static int idx_add_client(void *arg, const struct xd_client *c)
{
	struct rsip_server *s = arg;

	if (c->host_id)
		bits_range(&s->idx.hids, c->host_id, c->host_id, true);
	return 0;
}

/* Build the index from the store (inside the caller's transaction or not). */
int rs_idx_build(struct rsip_server *s)
{
	struct rsip_index *x = &s->idx;
	int rc = 0;

	x->valid = false;
	x->n_pend = 0;
	x->pend_lost = false;
	if (s->cfg.spi_bits < 1 || s->cfg.spi_bits > 31 || s->cfg.n_gaddrs > XDNAT_MAX_GADDRS ||
	    s->cfg.max_hosts < 2)
		return -EINVAL;
	for (unsigned g = 0; g < s->cfg.n_gaddrs && !rc; g++)
		rc = bits_init(&x->ports[g], 65536);
	if (rc || bits_init(&x->spis, 1ull << (32 - s->cfg.spi_bits)) || bits_init(&x->hids, s->cfg.max_hosts))
		return -ENOMEM;
	x->data_version = data_version(s);
	/* Never handed out: reserved ports, SPI block 0 (SPIs 0-255), host id 0. */
	for (unsigned g = 0; g < s->cfg.n_gaddrs; g++) {
		bits_range(&x->ports[g], 0, 0, true);
		for (uint32_t i = 0; i < s->cfg.n_reserved; i++)
			bits_range(&x->ports[g], s->cfg.reserved[i], s->cfg.reserved[i], true);
	}
	bits_range(&x->spis, 0, 0, true);
	bits_range(&x->hids, 0, 0, true);
	if (OPS(s)->each_binding(s->st, idx_add_binding, s) ||
	    OPS(s)->each_client(s->st, idx_add_client, s) || x->data_version < 0) {
		xd_err("RSIP: %s", xd_store_error(s->st));
		return -EIO;
	}
	x->valid = true;
	x->rebuilds++;
	return 0;
}

/* Before allocating (inside the transaction): the index matches the store. */
int rs_idx_sync(struct rsip_server *s)
{
	if (s->idx.valid && (s->idx_fed || data_version(s) == s->idx.data_version))
		return 0;
	if (s->idx.valid)
		xd_info("RSIP: the state database was changed by another process: re-reading it");
	return rs_idx_build(s);
}

void rsip_server_index_block(struct rsip_server *s, int kind, uint32_t gidx, uint32_t first,
			     uint32_t last, bool taken)
{
	if (s->idx.valid)
		rs_idx_range(s, kind, gidx, first, last, taken);
}

void rsip_server_index_hid(struct rsip_server *s, uint32_t hid, bool taken)
{
	if (s->idx.valid)
		bits_range(&s->idx.hids, hid, hid, taken);
}

int rsip_server_host_in_use(struct rsip_server *s, uint32_t id)
{
	if (rs_idx_sync(s))
		return -EIO;
	return id < s->idx.hids.n && (s->idx.hids.w[id / 64] >> (id % 64) & 1) ? 1 : 0;
}

/* Queue a change for the commit of the open transaction. */
void rs_idx_queue(struct rsip_server *s, int op, int kind, uint32_t gidx, uint32_t first, uint32_t last)
{
	struct rsip_index *x = &s->idx;

	if (!x->valid)
		return;
	if (x->n_pend == x->cap_pend) {
		size_t cap = x->cap_pend ? x->cap_pend * 2 : 16;
		struct rsip_pending *p = realloc(x->pend, cap * sizeof(*p));

		if (!p) {
			x->pend_lost = true;
			return;
		}
		x->pend = p;
		x->cap_pend = cap;
	}
	x->pend[x->n_pend++] = (struct rsip_pending){ .op = (uint8_t)op, .kind = (uint8_t)kind,
						     .gidx = (uint16_t)gidx, .first = first, .last = last };
}

int rs_srv_begin(struct rsip_server *s)
{
	s->idx.n_pend = 0;
	s->idx.pend_lost = false;
	if (OPS(s)->begin(s->st)) {
		xd_err("RSIP: %s", xd_store_error(s->st));
		return -EIO;
	}
	s->tx_depth++;
	return 0;
}

void rs_srv_rollback(struct rsip_server *s)
{
	s->idx.n_pend = 0;
	s->idx.pend_lost = false;
	if (s->tx_depth)
		s->tx_depth--;
	OPS(s)->rollback(s->st);
}

/* Commit, then apply the queued changes to the index. */
int rs_srv_commit(struct rsip_server *s)
{
	struct rsip_index *x = &s->idx;

	if (OPS(s)->commit(s->st)) {
		xd_err("RSIP: %s", xd_store_error(s->st));
		return -EIO;       /* the caller rolls back */
	}
	s->tx_depth--;
	if (x->pend_lost)
		x->valid = false;     /* rebuilt before the next allocation */
	for (size_t i = 0; x->valid && i < x->n_pend; i++) {
		const struct rsip_pending *p = &x->pend[i];

		switch (p->op) {
		case PEND_SET: case PEND_CLEAR:
			rs_idx_range(s, p->kind, p->gidx, p->first, p->last, p->op == PEND_SET);
			break;
		default:
			bits_range(&x->hids, p->first, p->first, p->op == PEND_HID_SET);
		}
	}
	x->n_pend = 0;
	x->pend_lost = false;
	return 0;
}
