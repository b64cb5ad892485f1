// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * RSIP server: see rsip_server.h.
 *
 * Ordering rules that keep the maps a cache of the store across crashes:
 *   allocate: commit the binding to the store, then install it in the maps
 *             (on failure the binding is deleted again);
 *   release:  remove from the maps first, then commit the quarantine.
 * So after a crash the store never lacks something the maps have, and
 * rsip_server_reconcile() only has to (re)install what the store holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include "rsip_server.h"

void rsip_config_defaults(struct rsip_config *c)
{
	memset(c, 0, sizeof(*c));
	c->state_dir = XDNAT_STATE_DIR;
	c->instance = XDNAT_DEFAULT_INSTANCE;
	c->max_hosts = XDNAT_DEFAULT_MAX_HOSTS;
	c->spi_bits = XDNAT_DEFAULT_SPI_BITS;
	c->port_min = 1024;
	c->port_max = 65535;
	c->reserved[c->n_reserved++] = RSIP_DEFAULT_PORT;
	c->default_ports = 250;
	c->max_ports_per_host = 4096;
	c->max_spi_blocks_per_host = 4;
	c->lease_default = 600;
	c->lease_max = 3600;
	c->quarantine = 120;
	c->reg_lease = 600;
}

/* ------------------------------------------------------------ SQL helpers */

static sqlite3_stmt *prep(struct rsip_server *s, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		xd_err("state database: %s (%s)", sqlite3_errmsg(s->db), sql);
		return NULL;
	}
	return st;
}

/* Run a statement with up to 4 integer parameters; -EIO on failure. */
static int exec4(struct rsip_server *s, const char *sql, int n, int64_t a, int64_t b, int64_t c, int64_t d)
{
	sqlite3_stmt *st = prep(s, sql);
	int64_t v[4] = { a, b, c, d };
	int rc;

	if (!st)
		return -EIO;
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(st, i + 1, v[i]);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		xd_err("state database: %s", sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		return -EIO;
	}
	sqlite3_finalize(st);
	return 0;
}

/* One integer result (column 0 of the first row); 1 found, 0 none/NULL, <0 error. */
static int query4(struct rsip_server *s, const char *sql, int64_t *out, int n, int64_t a, int64_t b,
		  int64_t c, int64_t d)
{
	sqlite3_stmt *st = prep(s, sql);
	int64_t v[4] = { a, b, c, d };
	int rc;

	if (!st)
		return -EIO;
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(st, i + 1, v[i]);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*out = sqlite3_column_int64(st, 0);
		rc = 1;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		rc = 0;
	} else {
		xd_err("state database: %s", sqlite3_errmsg(s->db));
		rc = -EIO;
	}
	sqlite3_finalize(st);
	return rc;
}


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
static uint64_t bits_next_clear(const struct rsip_bits *b, uint64_t p)
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
static uint64_t bits_next_set(const struct rsip_bits *b, uint64_t p, uint64_t z)
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
static int64_t bits_find(const struct rsip_bits *b, uint64_t lo, uint64_t hi, uint64_t cnt)
{
	uint64_t p = lo;

	if (!b->w || cnt == 0 || hi >= b->n)
		return -1;
	while (p <= hi && hi - p + 1 >= cnt) {
		uint64_t q;

		p = bits_next_clear(b, p);
		if (p > hi || hi - p + 1 < cnt)
			return -1;
		q = bits_next_set(b, p, p + cnt - 1);
		if (q == UINT64_MAX)
			return (int64_t)p;
		p = q + 1;
	}
	return -1;
}

enum { PEND_SET, PEND_CLEAR, PEND_HID_SET, PEND_HID_CLEAR };
struct rsip_pending {
	uint8_t op, kind;
	uint16_t gidx;
	uint32_t first, last;
};

static void idx_free(struct rsip_index *x)
{
	for (unsigned g = 0; g < XDNAT_MAX_GADDRS; g++)
		bits_free(&x->ports[g]);
	bits_free(&x->spis);
	bits_free(&x->hids);
	free(x->pend);
	memset(x, 0, sizeof(*x));
}

/* Mark (or unmark) a binding of the store in the index. */
static void idx_range(struct rsip_server *s, int kind, uint32_t gidx, uint32_t first, uint32_t last, bool on)
{
	struct rsip_index *x = &s->idx;

	if (kind == RSIP_KIND_PORTS && gidx < s->cfg.n_gaddrs)
		bits_range(&x->ports[gidx], first, last, on);
	else if (kind == RSIP_KIND_SPI)
		bits_range(&x->spis, first >> s->cfg.spi_bits, last >> s->cfg.spi_bits, on);
}

static int64_t data_version(struct rsip_server *s)
{
	int64_t v = -1;

	return query4(s, "PRAGMA data_version", &v, 0, 0, 0, 0, 0) == 1 ? v : -1;
}

/* Build the index from the store (inside the caller's transaction or not). */
static int idx_build(struct rsip_server *s)
{
	struct rsip_index *x = &s->idx;
	sqlite3_stmt *st;
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
	st = prep(s, "SELECT kind, gidx, first, last FROM bindings");
	if (!st)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		idx_range(s, sqlite3_column_int(st, 0), (uint32_t)sqlite3_column_int64(st, 1),
			  (uint32_t)sqlite3_column_int64(st, 2), (uint32_t)sqlite3_column_int64(st, 3), true);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -EIO;
	st = prep(s, "SELECT host_id FROM clients WHERE host_id>0");
	if (!st)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		bits_range(&x->hids, (uint64_t)sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 0),
			   true);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || x->data_version < 0)
		return -EIO;
	x->valid = true;
	x->rebuilds++;
	return 0;
}

/* Before allocating (inside the transaction): the index matches the store. */
static int idx_sync(struct rsip_server *s)
{
	if (s->idx.valid && data_version(s) == s->idx.data_version)
		return 0;
	if (s->idx.valid)
		xd_info("RSIP: the state database was changed by another process: re-reading it");
	return idx_build(s);
}

int rsip_server_host_in_use(struct rsip_server *s, uint32_t id)
{
	if (idx_sync(s))
		return -EIO;
	return id < s->idx.hids.n && (s->idx.hids.w[id / 64] >> (id % 64) & 1) ? 1 : 0;
}

/* Queue a change for the commit of the open transaction. */
static void idx_queue(struct rsip_server *s, int op, int kind, uint32_t gidx, uint32_t first, uint32_t last)
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

static int srv_begin(struct rsip_server *s)
{
	s->idx.n_pend = 0;
	s->idx.pend_lost = false;
	return rsip_db_begin(s->db);
}

static void srv_rollback(struct rsip_server *s)
{
	s->idx.n_pend = 0;
	s->idx.pend_lost = false;
	rsip_db_rollback(s->db);
}

/* Commit, then apply the queued changes to the index. */
static int srv_commit(struct rsip_server *s)
{
	struct rsip_index *x = &s->idx;

	if (rsip_db_commit(s->db))
		return -EIO;
	if (x->pend_lost)
		x->valid = false;     /* rebuilt before the next allocation */
	for (size_t i = 0; x->valid && i < x->n_pend; i++) {
		const struct rsip_pending *p = &x->pend[i];

		switch (p->op) {
		case PEND_SET: case PEND_CLEAR:
			idx_range(s, p->kind, p->gidx, p->first, p->last, p->op == PEND_SET);
			break;
		default:
			bits_range(&x->hids, p->first, p->first, p->op == PEND_HID_SET);
		}
	}
	x->n_pend = 0;
	x->pend_lost = false;
	return 0;
}

struct client {
	uint32_t id, lan, host_id;
	int32_t gidx;
};

static int get_client(struct rsip_server *s, uint32_t id, struct client *c)
{
	sqlite3_stmt *st = prep(s, "SELECT lan_addr, host_id, gidx FROM clients WHERE client_id=?");
	int rc = 0;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		c->id = id;
		c->lan = (uint32_t)sqlite3_column_int64(st, 0);
		c->host_id = (uint32_t)sqlite3_column_int64(st, 1);
		c->gidx = (int32_t)sqlite3_column_int64(st, 2);
		rc = 1;
	}
	sqlite3_finalize(st);
	return rc;
}

struct binding {
	uint32_t id, client_id, first, last;
	int kind, state, gidx;
	int64_t until;
};

static int get_binding(struct rsip_server *s, uint32_t id, struct binding *b)
{
	sqlite3_stmt *st = prep(s, "SELECT client_id, kind, gidx, first, last, state, until_ms "
				   "FROM bindings WHERE bind_id=?");
	int rc = 0;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		b->id = id;
		b->client_id = (uint32_t)sqlite3_column_int64(st, 0);
		b->kind = sqlite3_column_int(st, 1);
		b->gidx = sqlite3_column_int(st, 2);
		b->first = (uint32_t)sqlite3_column_int64(st, 3);
		b->last = (uint32_t)sqlite3_column_int64(st, 4);
		b->state = sqlite3_column_int(st, 5);
		b->until = sqlite3_column_int64(st, 6);
		rc = 1;
	}
	sqlite3_finalize(st);
	return rc;
}

static int db_runs(struct rsip_server *s, uint32_t client_id, int kind, struct xd_run **out, size_t *n);

/* The enrolled name of client @id into @name; 1 found, 0 not, <0 error. */
static int client_name(struct rsip_server *s, uint32_t id, char name[RSIP_KEYID_MAX + 1])
{
	sqlite3_stmt *st = prep(s, "SELECT name FROM clients WHERE client_id=?");
	int rc = 0;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
		snprintf(name, RSIP_KEYID_MAX + 1, "%s", (const char *)sqlite3_column_text(st, 0));
		rc = 1;
	}
	sqlite3_finalize(st);
	return rc;
}

/* -------------------------------------------------------------- allocator */

static uint32_t clamp_lease(const struct rsip_config *c, bool given, uint32_t req)
{
	uint32_t l = given && req ? req : c->lease_default;

	return l > c->lease_max ? c->lease_max : l;
}

/* The binding of @kind (on @gidx for ports) that starts last at or before
 * @at: 1 with its last in *last, 0 none, <0 error.  Bindings of a kind
 * never overlap (per global address for ports), so [a,b] is free in the
 * store iff the one starting last at or before b ends before a: one
 * indexed lookup, however many bindings there are. */
static int last_before(struct rsip_server *s, int kind, uint32_t gidx, uint32_t at, int64_t *last)
{
	return kind == RSIP_KIND_PORTS
	       ? query4(s, "SELECT last FROM bindings WHERE kind=1 AND gidx=? AND first<=? "
			   "ORDER BY first DESC LIMIT 1", last, 2, gidx, at, 0, 0)
	       : query4(s, "SELECT last FROM bindings WHERE kind=2 AND first<=? "
			   "ORDER BY first DESC LIMIT 1", last, 1, at, 0, 0, 0);
}

/* 0 if [first,last] may go to a host on @gidx; else the RSIP error and,
 * in *skip, the next start worth trying.  The index must be in sync. */
static uint16_t check_ports(struct rsip_server *s, uint32_t gidx, uint32_t first, uint32_t last,
			    uint32_t *skip)
{
	uint64_t q;
	int64_t v;
	int rc;

	*skip = last + 1;
	if (first < s->cfg.port_min || last > s->cfg.port_max || first == 0)
		return RSIP_E_LOCAL_ADDRPORT_UNALLOWED;
	for (uint32_t i = 0; i < s->cfg.n_reserved; i++) {
		if (s->cfg.reserved[i] >= first && s->cfg.reserved[i] <= last) {
			*skip = s->cfg.reserved[i] + 1u;
			return RSIP_E_LOCAL_ADDRPORT_UNALLOWED;
		}
	}
	/* The index holds every binding's ports, whatever its state. */
	q = bits_next_set(&s->idx.ports[gidx], first, last);
	if (q != UINT64_MAX) {
		*skip = (uint32_t)q + 1;
		return RSIP_E_LOCAL_ADDRPORT_INUSE;
	}
	rc = last_before(s, RSIP_KIND_PORTS, gidx, last, &v);
	if (rc < 0)
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if (rc == 1 && v >= first) {
		xd_warn("RSIP: the free-range index missed ports up to %lld of global address %u: "
			"rebuilding it", (long long)v, gidx);
		s->idx.valid = false;
		*skip = (uint32_t)v + 1;
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	v = s->be.ports_busy(s->be.ctx, gidx, first, last);
	if (v >= 0) {
		*skip = (uint32_t)v + 1;
		return RSIP_E_LOCAL_ADDRPORT_INUSE;
	}
	return RSIP_E_OK;
}

static uint16_t find_ports(struct rsip_server *s, const struct client *c, uint32_t gidx, uint32_t n,
			   uint32_t *first)
{
	uint32_t skip, start;
	int64_t v;

	/* Next to the client's own ports first, so its ports stay one range. */
	if (c->host_id && query4(s, "SELECT MAX(last) FROM bindings WHERE client_id=? AND kind=1 "
				    "AND state=1", &v, 1, c->id, 0, 0, 0) == 1 &&
	    v + n <= s->cfg.port_max && check_ports(s, gidx, (uint32_t)v + 1, (uint32_t)v + n, &skip) == 0) {
		*first = (uint32_t)v + 1;
		return RSIP_E_OK;
	}
	if (c->host_id && query4(s, "SELECT MIN(first) FROM bindings WHERE client_id=? AND kind=1 "
				    "AND state=1", &v, 1, c->id, 0, 0, 0) == 1 &&
	    v >= (int64_t)s->cfg.port_min + n &&
	    check_ports(s, gidx, (uint32_t)v - n, (uint32_t)v - 1, &skip) == 0) {
		*first = (uint32_t)v - n;
		return RSIP_E_OK;
	}
	if (!s->idx.valid)
		return RSIP_E_INTERNAL_SERVER_ERROR;
	/* First fit: the index proposes the first free run, the checks confirm
	 * it (a statically owned port in the maps sends the search past it). */
	for (start = s->cfg.port_min; start + n - 1 <= s->cfg.port_max;) {
		int64_t cand = bits_find(&s->idx.ports[gidx], start, s->cfg.port_max, n);
		uint16_t e;

		if (cand < 0)
			break;
		e = check_ports(s, gidx, (uint32_t)cand, (uint32_t)cand + n - 1, &skip);
		if (e == RSIP_E_OK) {
			*first = (uint32_t)cand;
			return RSIP_E_OK;
		}
		if (e == RSIP_E_INTERNAL_SERVER_ERROR)
			return e;
		start = skip > cand ? skip : (uint32_t)cand + 1;
	}
	return RSIP_E_LOCAL_ADDRPORT_UNAVAILABLE;
}

static uint16_t check_spis(struct rsip_server *s, uint32_t first, uint32_t last, uint32_t *skip)
{
	uint32_t bs = 1u << s->cfg.spi_bits;
	uint64_t q;
	int64_t v;
	int rc;

	*skip = last;
	if (first <= XDNAT_SPI_RESERVED_MAX)
		return RSIP_E_IPSEC_SPI_UNAVAILABLE;
	q = bits_next_set(&s->idx.spis, first >> s->cfg.spi_bits, last >> s->cfg.spi_bits);
	if (q != UINT64_MAX) {
		*skip = (uint32_t)(((q + 1) << s->cfg.spi_bits) - 1);
		return RSIP_E_IPSEC_SPI_INUSE;
	}
	rc = last_before(s, RSIP_KIND_SPI, 0, last, &v);
	if (rc < 0)
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if (rc == 1 && v >= first) {
		xd_warn("RSIP: the free-range index missed SPIs up to 0x%llx: rebuilding it",
			(unsigned long long)v);
		s->idx.valid = false;
		*skip = (uint32_t)v;
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	v = s->be.spis_busy(s->be.ctx, first, last);
	if (v >= 0) {
		*skip = (uint32_t)v | (bs - 1);
		return RSIP_E_IPSEC_SPI_INUSE;
	}
	return RSIP_E_OK;
}

/* @nb whole blocks; *first is block-aligned. */
static uint16_t find_spis(struct rsip_server *s, uint32_t nb, uint32_t *first)
{
	uint64_t nblk = 1ull << (32 - s->cfg.spi_bits);
	uint64_t start = 1; /* block 0 holds the reserved SPIs 0-255 */

	if (!s->idx.valid)
		return RSIP_E_INTERNAL_SERVER_ERROR;
	while (start + nb - 1 < nblk) {
		int64_t cand = bits_find(&s->idx.spis, start, nblk - 1, nb);
		uint32_t skip, f;
		uint16_t e;

		if (cand < 0)
			break;
		f = (uint32_t)((uint64_t)cand << s->cfg.spi_bits);
		e = check_spis(s, f, (uint32_t)(((uint64_t)cand + nb) << s->cfg.spi_bits) - 1, &skip);
		if (e == RSIP_E_OK) {
			*first = f;
			return RSIP_E_OK;
		}
		if (e == RSIP_E_INTERNAL_SERVER_ERROR)
			return e;
		/* the block after skip's */
		start = ((uint64_t)skip >> s->cfg.spi_bits) + 1;
		if (start <= (uint64_t)cand)
			start = (uint64_t)cand + 1;
	}
	return RSIP_E_IPSEC_SPI_UNAVAILABLE;
}

/* The lowest host id neither registered (the index) nor in the maps
 * (static hosts). */
static int pick_host_id(struct rsip_server *s, uint32_t *id)
{
	uint64_t p = 1;
	int64_t v;

	if (!s->idx.valid)
		return -EIO;
	for (;; p++) {
		uint32_t l, g;
		int rc;

		p = bits_next_clear(&s->idx.hids, p);
		if (p >= s->cfg.max_hosts)
			return -ENOSPC;
		rc = query4(s, "SELECT 1 FROM clients WHERE host_id=? LIMIT 1", &v, 1, (int64_t)p, 0, 0, 0);
		if (rc < 0)
			return -EIO;
		if (rc == 1) {
			xd_warn("RSIP: the free-range index missed host id %llu: rebuilding it",
				(unsigned long long)p);
			s->idx.valid = false;
			return -EIO;
		}
		if (s->be.host_get(s->be.ctx, (uint32_t)p, &l, &g) == -ENOENT) {
			*id = (uint32_t)p;
			return 0;
		}
	}
}

static int install(struct rsip_server *s, uint32_t host_id, int kind, uint32_t first, uint32_t last)
{
	return kind == RSIP_KIND_PORTS ? s->be.ports_add(s->be.ctx, host_id, first, last)
				       : s->be.spis_add(s->be.ctx, host_id, first, last);
}

static void uninstall(struct rsip_server *s, uint32_t host_id, int kind, uint32_t first, uint32_t last)
{
	int rc = kind == RSIP_KIND_PORTS ? s->be.ports_del(s->be.ctx, host_id, first, last)
					 : s->be.spis_del(s->be.ctx, host_id, first, last);

	if (rc)
		xd_warn("host %u: could not remove %s %u-%u from the maps (%s); reconciling later",
			host_id, kind == RSIP_KIND_PORTS ? "ports" : "SPIs", first, last, strerror(-rc));
}

struct req;
static uint16_t issue_cert(struct rsip_server *s, const struct client *c, struct req *r);

/*
 * Allocate [first,last] of @kind to client @c: store first (committed,
 * together with the certificate a CSR in @r asks for), then the maps.
 * Returns RSIP error; *bind_id on success.
 */
static uint16_t commit_binding(struct rsip_server *s, struct client *c, uint32_t gidx, int kind,
			       uint32_t first, uint32_t last, uint32_t lease, uint32_t *bind_id,
			       struct req *r)
{
	uint16_t ce;
	uint64_t now = s->now_ms();
	bool new_host = c->host_id == 0;
	uint32_t host_id = c->host_id;
	int64_t bid;

	if (new_host && pick_host_id(s, &host_id)) {
		xd_warn("no free host id (raise --max-hosts)");
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	if (exec4(s, "INSERT INTO bindings(client_id, owner, kind, gidx, first, last, state, until_ms, "
		     "created_ms) VALUES(?1, COALESCE((SELECT name FROM clients WHERE client_id=?1), ''), "
		     "?2, ?3, ?4, ?4, 1, 0, 0)", 4, c->id, kind, gidx, first) ||
	    query4(s, "SELECT last_insert_rowid()", &bid, 0, 0, 0, 0, 0) != 1 ||
	    exec4(s, "UPDATE bindings SET last=?, until_ms=?, created_ms=? WHERE bind_id=?", 4, last,
		  (int64_t)(now + (uint64_t)lease * 1000), (int64_t)now, bid) ||
	    exec4(s, "UPDATE clients SET host_id=?, gidx=?, last_seen_ms=? WHERE client_id=?", 4, host_id,
		  gidx, (int64_t)now, c->id)) {
		srv_rollback(s);
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	if ((ce = issue_cert(s, c, r))) {
		srv_rollback(s);
		return ce;
	}
	idx_queue(s, PEND_SET, kind, gidx, first, last);
	if (new_host)
		idx_queue(s, PEND_HID_SET, 0, 0, host_id, host_id);
	if (srv_commit(s)) {
		srv_rollback(s);
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	if ((new_host && s->be.host_add(s->be.ctx, host_id, c->lan, gidx)) ||
	    install(s, host_id, kind, first, last)) {
		xd_warn("client %u: cannot install %s %u-%u in the maps; undoing", c->id,
			kind == RSIP_KIND_PORTS ? "ports" : "SPIs", first, last);
		if (new_host && s->be.host_get(s->be.ctx, host_id, &(uint32_t){0}, &(uint32_t){0}) == 0)
			s->be.host_del(s->be.ctx, host_id);
		if (srv_begin(s) == 0 &&
		    exec4(s, "DELETE FROM bindings WHERE bind_id=?", 1, bid, 0, 0, 0) == 0 &&
		    (!new_host || exec4(s, "UPDATE clients SET host_id=0, gidx=-1 WHERE client_id=?", 1,
					c->id, 0, 0, 0) == 0)) {
			idx_queue(s, PEND_CLEAR, kind, gidx, first, last);
			if (new_host)
				idx_queue(s, PEND_HID_CLEAR, 0, 0, host_id, host_id);
			if (srv_commit(s)) {
				xd_warn("client %u: cannot undo bind %lld in the store", c->id, (long long)bid);
				srv_rollback(s);
			}
		} else {
			srv_rollback(s);
		}
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	c->host_id = host_id;
	c->gidx = (int32_t)gidx;
	*bind_id = (uint32_t)bid;
	return RSIP_E_OK;
}

/* Release an active binding (inside a transaction the caller commits):
 * out of the maps at once, into quarantine; the host leaves the maps with
 * its last binding. */
static int release_binding(struct rsip_server *s, const struct binding *b, uint64_t now, int reason)
{
	struct client c;
	int64_t left;

	if (s->certs.release) {
		/* Seed rule: never free a block a valid certificate binds. */
		char name[RSIP_KEYID_MAX + 1];
		int rc = client_name(s, b->client_id, name);

		if (rc < 0 || (rc == 1 && s->certs.release(s->certs.ctx, name, b->kind, b->first, b->last,
							   reason))) {
			xd_warn("bind %u: cannot revoke the certificates that bind %s %u-%u: keeping it",
				b->id, b->kind == RSIP_KIND_PORTS ? "ports" : "SPIs", b->first, b->last);
			return -EIO;
		}
	}
	if (get_client(s, b->client_id, &c) == 1 && c.host_id) {
		uninstall(s, c.host_id, b->kind, b->first, b->last);
		if (query4(s, "SELECT COUNT(*) FROM bindings WHERE client_id=? AND state=1 AND bind_id<>?",
			   &left, 2, c.id, b->id, 0, 0) == 1 && left == 0) {
			if (s->be.host_del(s->be.ctx, c.host_id))
				xd_warn("host %u: could not remove it from the maps", c.host_id);
			if (exec4(s, "UPDATE clients SET host_id=0, gidx=-1 WHERE client_id=?", 1, c.id, 0, 0, 0))
				return -EIO;
			idx_queue(s, PEND_HID_CLEAR, 0, 0, c.host_id, c.host_id);
		}
	}
	return exec4(s, "UPDATE bindings SET state=2, until_ms=? WHERE bind_id=?", 2,
		     (int64_t)(now + (uint64_t)s->cfg.quarantine * 1000), b->id, 0, 0);
}

/* ---------------------------------------------------------------- handlers */

struct req {
	const struct rsip_msg *m;
	const struct rsip_fields *f;
	struct rsip_builder *b;      /* response */
	uint32_t client_id;
	uint32_t bind_id;            /* for errors */
	uint8_t *cert;               /* issued for a CSR in the request (malloc'ed) */
	size_t cert_len;
};

static const struct rsip_param *slot(const struct req *r, int i)
{
	return r->f->slot[i] >= 0 ? &r->m->params[r->f->slot[i]] : NULL;
}

/* A CSR in the request (Vendor Specific, our vendor, sub-type CSR): issue
 * a certificate over every active binding of the client, valid for the
 * shortest of their leases, inside the open transaction.  No CSR or no
 * CA: nothing to do. */
static uint16_t issue_cert(struct rsip_server *s, const struct client *c, struct req *r)
{
	struct rsip_vendor v, cv, *csr = NULL;
	struct xd_run *runs[2] = { NULL, NULL };
	size_t nr[2] = { 0, 0 };
	char name[RSIP_KEYID_MAX + 1];
	int64_t until;
	uint16_t e = RSIP_E_INTERNAL_SERVER_ERROR;
	int rc;

	for (unsigned i = 0; i < r->f->n_vendor; i++) {
		if (rsip_param_vendor(&r->m->params[r->f->vendor[i]], &v) == RSIP_E_OK &&
		    v.vendor == XDNAT_RSIP_VENDOR_ID && v.subtype == XDNAT_VS_CSR) {
			if (csr)
				return RSIP_E_DUPLICATE_PARAM;
			cv = v;
			csr = &cv;
		}
	}
	if (!csr || !s->certs.issue)
		return RSIP_E_OK;
	if (client_name(s, c->id, name) != 1 || db_runs(s, c->id, RSIP_KIND_PORTS, &runs[0], &nr[0]) ||
	    db_runs(s, c->id, RSIP_KIND_SPI, &runs[1], &nr[1]) ||
	    query4(s, "SELECT MIN(until_ms) FROM bindings INDEXED BY bindings_by_client_kind "
		   "WHERE client_id=? AND state=1", &until, 1,
		   c->id, 0, 0, 0) != 1)
		goto out;
	{
		struct rsip_cert_req rq = {
			.name = name, .lan_be = c->lan, .ports = runs[0], .n_ports = nr[0],
			.spis = runs[1], .n_spis = nr[1], .not_before = (int64_t)(s->now_ms() / 1000),
			.not_after = until / 1000, .csr = csr->val, .csr_len = csr->len,
		};

		free(r->cert);
		r->cert = NULL;
		rc = s->certs.issue(s->certs.ctx, &rq, &r->cert, &r->cert_len);
		if (rc == -EINVAL || rc == -EPERM)
			e = RSIP_E_BAD_PARAM;
		else if (rc == -EACCES)   /* certificate revoked: locked out until re-enrolled */
			e = RSIP_E_REGISTRATION_DENIED;
		else if (rc == 0)
			e = RSIP_E_OK;
	}
out:
	free(runs[0]);
	free(runs[1]);
	return e;
}

/* Global address index from an Address (local) parameter: -1 any, -2 not ours. */
static int local_gidx(struct rsip_server *s, const struct rsip_param *p)
{
	struct rsip_addr a;
	uint32_t be;

	if (rsip_param_addr(p, &a) || a.type != RSIP_ADDR_IPV4)
		return -2;
	if (a.len == 0)
		return -1;
	memcpy(&be, a.bytes, 4);
	for (uint32_t i = 0; i < s->cfg.n_gaddrs; i++)
		if (s->cfg.gaddrs[i] == be)
			return (int)i;
	return -2;
}

static uint16_t check_tunnel(const struct rsip_param *p)
{
	return p && rsip_param_u8(p) != RSIP_TUNNEL_IPIP ? RSIP_E_BAD_TUNNEL_TYPE : RSIP_E_OK;
}

static uint16_t choose_gidx(const struct client *c, int want, uint32_t *gidx)
{
	if (want == -2)
		return RSIP_E_LOCAL_ADDR_UNALLOWED;
	if (c->host_id && c->gidx >= 0) {
		/* A host shares exactly one global address (the map's host entry). */
		if (want >= 0 && want != c->gidx)
			return RSIP_E_LOCAL_ADDR_UNALLOWED;
		*gidx = (uint32_t)c->gidx;
		return RSIP_E_OK;
	}
	*gidx = want >= 0 ? (uint32_t)want : 0;
	return RSIP_E_OK;
}

static uint16_t do_assign_ports(struct rsip_server *s, struct client *c, struct req *r)
{
	const struct rsip_param *pl = slot(r, RSIP_S_AR_PORTS_LOCAL), *lt = slot(r, RSIP_S_AR_LEASE);
	struct rsip_ports ports;
	uint32_t gidx, n, first = 0, skip, lease, bind_id;
	int64_t held = 0;
	uint16_t e;
	bool any_gaddr;
	int want = local_gidx(s, slot(r, RSIP_S_AR_ADDR_LOCAL));

	if ((e = check_tunnel(slot(r, RSIP_S_AR_TUNNEL))))
		return e;
	if (rsip_param_ports(pl, &ports))
		return RSIP_E_BAD_PARAM;
	if (ports.count > 1) {
		/* Lists of single ports: only a contiguous ascending list is a block. */
		for (unsigned i = 1; i < ports.count; i++)
			if (ports.port[i] != ports.port[0] + i)
				return RSIP_E_LOCAL_ADDRPORT_UNALLOWED;
	}
	n = ports.number ? ports.number : s->cfg.default_ports;
	lease = clamp_lease(&s->cfg, lt != NULL, lt ? rsip_param_u32(lt) : 0);
	any_gaddr = want == -1 && !(c->host_id && c->gidx >= 0);
	if ((e = choose_gidx(c, want, &gidx)))
		return e;
	if (srv_begin(s))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if (idx_sync(s)) {
		xd_err("RSIP: cannot build the free-range index");
		srv_rollback(s);
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	if (query4(s, "SELECT COALESCE(SUM(last-first+1),0) FROM bindings WHERE client_id=? AND kind=1 "
		      "AND state=1", &held, 1, c->id, 0, 0, 0) < 0) {
		srv_rollback(s);
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	if ((uint64_t)held + n > s->cfg.max_ports_per_host) {
		srv_rollback(s);
		return RSIP_E_LOCAL_ADDRPORT_UNAVAILABLE;
	}
	for (;;) {
		if (ports.count) {
			first = ports.port[0];
			e = check_ports(s, gidx, first, first + n - 1, &skip);
		} else
			e = find_ports(s, c, gidx, n, &first);
		/* "Any address": try the next global address when one is full. */
		if (e == RSIP_E_LOCAL_ADDRPORT_UNAVAILABLE && any_gaddr && gidx + 1 < s->cfg.n_gaddrs) {
			gidx++;
			continue;
		}
		break;
	}
	if (e) {
		srv_rollback(s);
		return e;
	}
	if ((e = commit_binding(s, c, gidx, RSIP_KIND_PORTS, first, first + n - 1, lease, &bind_id, r)))
		return e;
	xd_info("client %u: ports %u-%u of global address %u, bind %u, lease %us", c->id, first,
		first + n - 1, gidx, bind_id, lease);
	rsip_begin(r->b, RSIP_ASSIGN_RESPONSE_RSAP_IP);
	rsip_put_u32(r->b, RSIP_P_CLIENT_ID, c->id);
	rsip_put_u32(r->b, RSIP_P_BIND_ID, bind_id);
	rsip_put_addr4(r->b, s->cfg.gaddrs[gidx], false);
	rsip_put_ports(r->b, (uint8_t)n, (uint16_t[]){ (uint16_t)first }, 1);
	rsip_put_raw(r->b, RSIP_P_ADDRESS, slot(r, RSIP_S_AR_ADDR_REMOTE)->val, slot(r, RSIP_S_AR_ADDR_REMOTE)->len);
	rsip_put_raw(r->b, RSIP_P_PORTS, slot(r, RSIP_S_AR_PORTS_REMOTE)->val, slot(r, RSIP_S_AR_PORTS_REMOTE)->len);
	rsip_put_u32(r->b, RSIP_P_LEASE_TIME, lease);
	rsip_put_u8(r->b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
	rsip_put_addr4(r->b, s->cfg.router_lan, false);
	return RSIP_E_OK;
}

static uint16_t do_assign_spi(struct rsip_server *s, struct client *c, struct req *r)
{
	const struct rsip_param *sp = slot(r, RSIP_S_SR_SPI), *lt = slot(r, RSIP_S_SR_LEASE);
	const struct rsip_param *pr = slot(r, RSIP_S_SR_PORTS_REMOTE);
	uint64_t bs = 1ull << s->cfg.spi_bits;
	struct rsip_spi spi = { 0 };
	uint32_t gidx, nb = 1, first = 0, skip, lease, bind_id;
	int64_t held = 0;
	uint64_t total;
	uint16_t e;
	int want = local_gidx(s, slot(r, RSIP_S_SR_ADDR_LOCAL));

	if ((e = check_tunnel(slot(r, RSIP_S_SR_TUNNEL))))
		return e;
	if (sp && rsip_param_spi(sp, &spi))
		return RSIP_E_BAD_PARAM;
	if (spi.count > 1)
		return RSIP_E_IPSEC_SPI_UNAVAILABLE; /* lists of single SPIs: not handed out */
	if (spi.number)
		nb = (uint32_t)((spi.number + bs - 1) / bs);
	if (spi.count == 1) {
		/* The blocks covering the requested range. */
		uint64_t f = spi.spi[0] & ~(bs - 1), l = (uint64_t)spi.spi[0] + spi.number - 1;

		nb = (uint32_t)((l - f) / bs + 1);
		first = (uint32_t)f;
	}
	lease = clamp_lease(&s->cfg, lt != NULL, lt ? rsip_param_u32(lt) : 0);
	if ((e = choose_gidx(c, want, &gidx)))
		return e;
	if (srv_begin(s))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if (idx_sync(s)) {
		xd_err("RSIP: cannot build the free-range index");
		srv_rollback(s);
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	if (query4(s, "SELECT COALESCE(SUM((last-first+1)>>?),0) FROM bindings WHERE client_id=? AND "
		      "kind=2 AND state=1", &held, 2, s->cfg.spi_bits, c->id, 0, 0) < 0) {
		srv_rollback(s);
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	if ((uint64_t)held + nb > s->cfg.max_spi_blocks_per_host) {
		srv_rollback(s);
		return RSIP_E_IPSEC_SPI_UNAVAILABLE;
	}
	if (spi.count == 1) {
		e = (uint64_t)first + nb * bs - 1 > 0xffffffffull ? RSIP_E_IPSEC_SPI_UNAVAILABLE :
		    check_spis(s, first, (uint32_t)(first + nb * bs - 1), &skip);
	} else {
		e = find_spis(s, nb, &first);
	}
	if (e) {
		srv_rollback(s);
		return e;
	}
	total = nb * bs;
	if ((e = commit_binding(s, c, gidx, RSIP_KIND_SPI, first, (uint32_t)(first + total - 1), lease,
				&bind_id, r)))
		return e;
	xd_info("client %u: SPIs 0x%x-0x%x, bind %u, lease %us", c->id, first,
		(uint32_t)(first + total - 1), bind_id, lease);
	rsip_begin(r->b, RSIP_ASSIGN_RESPONSE_RSIPSEC);
	rsip_put_u32(r->b, RSIP_P_CLIENT_ID, c->id);
	rsip_put_u32(r->b, RSIP_P_BIND_ID, bind_id);
	rsip_put_addr4(r->b, s->cfg.gaddrs[gidx], false);
	rsip_put_raw(r->b, RSIP_P_ADDRESS, slot(r, RSIP_S_SR_ADDR_REMOTE)->val, slot(r, RSIP_S_SR_ADDR_REMOTE)->len);
	if (pr)
		rsip_put_raw(r->b, RSIP_P_PORTS, pr->val, pr->len);
	/* The SPI Number field is 16 bits: a larger binding is announced as
	 * its first 65535 SPIs (the host never uses more than it is told). */
	rsip_put_spi(r->b, (uint16_t)(total > 0xffff ? 0xffff : total), &first, 1);
	rsip_put_vendor(r->b, XDNAT_RSIP_VENDOR_ID, XDNAT_VS_SPI_COUNT,
			(uint8_t[4]){ (uint8_t)(total >> 24), (uint8_t)(total >> 16), (uint8_t)(total >> 8),
				      (uint8_t)total }, 4);
	rsip_put_u32(r->b, RSIP_P_LEASE_TIME, lease);
	rsip_put_u8(r->b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
	rsip_put_addr4(r->b, s->cfg.router_lan, false);
	return RSIP_E_OK;
}

/* The client's active binding @id, or BAD_BIND_ID (also for another's). */
static uint16_t own_binding(struct rsip_server *s, const struct client *c, uint32_t id, struct binding *b)
{
	int rc = get_binding(s, id, b);

	if (rc < 0)
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if (rc == 0 || b->client_id != c->id || b->state != RSIP_BIND_ACTIVE)
		return RSIP_E_BAD_BIND_ID;
	return RSIP_E_OK;
}

static uint16_t do_extend(struct rsip_server *s, struct client *c, struct req *r)
{
	const struct rsip_param *lt = slot(r, RSIP_S_B_LEASE);
	uint32_t lease = clamp_lease(&s->cfg, lt != NULL, lt ? rsip_param_u32(lt) : 0);
	struct binding b;
	uint16_t e;

	r->bind_id = rsip_param_u32(slot(r, RSIP_S_B_BIND));
	if (srv_begin(s))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if ((e = own_binding(s, c, r->bind_id, &b)) ||
	    exec4(s, "UPDATE bindings SET until_ms=? WHERE bind_id=?", 2,
		  (int64_t)(s->now_ms() + (uint64_t)lease * 1000), b.id, 0, 0) ||
	    (e = issue_cert(s, c, r)) || srv_commit(s)) {
		srv_rollback(s);
		return e ? e : RSIP_E_INTERNAL_SERVER_ERROR;
	}
	rsip_begin(r->b, RSIP_EXTEND_RESPONSE);
	rsip_put_u32(r->b, RSIP_P_CLIENT_ID, c->id);
	rsip_put_u32(r->b, RSIP_P_BIND_ID, b.id);
	rsip_put_u32(r->b, RSIP_P_LEASE_TIME, lease);
	return RSIP_E_OK;
}

static uint16_t do_free(struct rsip_server *s, struct client *c, struct req *r)
{
	struct binding b;
	uint16_t e;

	r->bind_id = rsip_param_u32(slot(r, RSIP_S_B_BIND));
	if (srv_begin(s))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if ((e = own_binding(s, c, r->bind_id, &b)) ||
	    release_binding(s, &b, s->now_ms(), RSIP_REVOKE_CESSATION) ||
	    srv_commit(s)) {
		srv_rollback(s);
		return e ? e : RSIP_E_INTERNAL_SERVER_ERROR;
	}
	xd_info("client %u: freed bind %u (%s %u-%u), quarantined %us", c->id, b.id,
		b.kind == RSIP_KIND_PORTS ? "ports" : "SPIs", b.first, b.last, s->cfg.quarantine);
	rsip_begin(r->b, RSIP_FREE_RESPONSE);
	rsip_put_u32(r->b, RSIP_P_CLIENT_ID, c->id);
	rsip_put_u32(r->b, RSIP_P_BIND_ID, b.id);
	return RSIP_E_OK;
}

/* Free every binding of client @id and forget the registration. */
static int drop_client(struct rsip_server *s, uint32_t id, int reason)
{
	uint64_t now = s->now_ms();
	uint32_t ids[256];
	unsigned n;

	/* In batches: a host may hold more bindings than one batch (every one
	 * must leave the maps before the client row goes). */
	do {
		sqlite3_stmt *st = prep(s, "SELECT bind_id FROM bindings WHERE client_id=? AND state=1 "
					   "LIMIT 256");

		if (!st)
			return -EIO;
		sqlite3_bind_int64(st, 1, id);
		for (n = 0; n < 256 && sqlite3_step(st) == SQLITE_ROW; n++)
			ids[n] = (uint32_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		for (unsigned i = 0; i < n; i++) {
			struct binding b;

			if (get_binding(s, ids[i], &b) != 1 || release_binding(s, &b, now, reason))
				return -EIO;
		}
	} while (n == 256);
	return exec4(s, "DELETE FROM clients WHERE client_id=?", 1, id, 0, 0, 0);
}

int rsip_server_evict(struct rsip_server *s, const char *name, struct rsip_freed *out, unsigned max,
		      unsigned *n)
{
	uint8_t secret[RSIP_SECRET_LEN];
	sqlite3_stmt *st;
	uint32_t lan;
	int64_t id = 0;
	int rc;

	*n = 0;
	rc = rsip_host_secret(s->db, name, secret, &lan);
	memset(secret, 0, sizeof(secret));
	if (rc)
		return rc;
	if (srv_begin(s))
		return -EIO;
	st = prep(s, "SELECT client_id FROM clients WHERE name=?");
	if (!st)
		goto fail;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	if (!id) {
		srv_rollback(s);
		return 0;
	}
	st = prep(s, "SELECT bind_id, kind, first, last FROM bindings WHERE client_id=? AND state=1 "
		     "ORDER BY bind_id");
	if (!st)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (*n < max)
			out[*n] = (struct rsip_freed){
				.bind_id = (uint32_t)sqlite3_column_int64(st, 0),
				.kind = sqlite3_column_int(st, 1),
				.first = (uint32_t)sqlite3_column_int64(st, 2),
				.last = (uint32_t)sqlite3_column_int64(st, 3),
			};
		(*n)++;
	}
	sqlite3_finalize(st);
	if (drop_client(s, (uint32_t)id, RSIP_REVOKE_AFFILIATION) || srv_commit(s))
		goto fail;
	xd_info("client %lld (%s) evicted: %u bindings quarantined %us", (long long)id, name, *n,
		s->cfg.quarantine);
	return 0;
fail:
	srv_rollback(s);
	*n = 0;
	return -EIO;
}

static uint16_t do_deregister(struct rsip_server *s, struct rsip_session *sess, struct client *c,
			      struct req *r)
{
	if (srv_begin(s))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if (drop_client(s, c->id, RSIP_REVOKE_CESSATION) || srv_commit(s)) {
		srv_rollback(s);
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	xd_info("client %u (%s) de-registered", c->id, sess->name);
	rsip_begin(r->b, RSIP_DEREGISTER_RESPONSE);
	rsip_put_u32(r->b, RSIP_P_CLIENT_ID, c->id);
	return RSIP_E_OK;
}

/* QUERY: Indicator 1 (address) / 2 (network) tuples; answered with
 * 1/2 = local address/network, 3/4 = remote address/network. */
static uint16_t do_query(struct rsip_server *s, struct client *c, struct req *r)
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
	struct client c;
	int64_t id, other;
	int rc;

	if (!rsip_valid_name((const char *)pre + 1, pre[0]) || prelen != 1u + pre[0] + RSIP_NONCE_LEN)
		return RSIP_E_REGISTRATION_DENIED;
	memcpy(name, pre + 1, pre[0]);
	name[pre[0]] = '\0';
	memcpy(cn, pre + 1 + pre[0], RSIP_NONCE_LEN);
	if (rsip_host_secret(s->db, name, secret, &enrolled_lan)) {
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
	if (srv_begin(s))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	rc = query4(s, "SELECT client_id FROM clients WHERE lan_addr=?", &other, 1, lan, 0, 0, 0);
	if (rc < 0)
		goto internal;
	{
		sqlite3_stmt *st = prep(s, "SELECT client_id FROM clients WHERE name=?");

		if (!st)
			goto internal;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		sqlite3_finalize(st);
	}
	if (rc == 1 && other != id) {
		xd_warn("RSIP: registration refused: LAN address of '%s' is registered by client %lld",
			name, (long long)other);
		srv_rollback(s);
		return RSIP_E_REGISTRATION_DENIED;
	}
	if (id) {
		/* Registration is bound to the enrolled identity, not to the TCP
		 * connection: a host reconnecting (router restart, network
		 * hiccup) resumes its registration and keeps its bindings. */
		if (get_client(s, (uint32_t)id, &c) != 1)
			goto internal;
		if (c.lan != lan && c.host_id) {
			xd_warn("RSIP: '%s' moved LAN address while holding bindings: refused", name);
			srv_rollback(s);
			return RSIP_E_REGISTRATION_DENIED;
		}
		if (exec4(s, "UPDATE clients SET lan_addr=?, last_seen_ms=? WHERE client_id=?", 3, lan,
			  (int64_t)now, id, 0))
			goto internal;
	} else {
		sqlite3_stmt *st = prep(s, "INSERT INTO clients(name, lan_addr, registered_ms, last_seen_ms) "
					   "VALUES(?, ?, ?, ?)");

		if (!st)
			goto internal;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, lan);
		sqlite3_bind_int64(st, 3, (int64_t)now);
		sqlite3_bind_int64(st, 4, (int64_t)now);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE || query4(s, "SELECT last_insert_rowid()", &id, 0, 0, 0, 0, 0) != 1)
			goto internal;
	}
	if (srv_commit(s))
		goto internal;
	if (rsip_random(sn, RSIP_NONCE_LEN))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	rsip_derive(secret, cn, sn, &sess->keys);
	memcpy(sess->secret, secret, sizeof(sess->secret));
	memset(secret, 0, sizeof(secret));
	snprintf(sess->name, sizeof(sess->name), "%s", name);
	sess->client_id = (uint32_t)id;
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
	srv_rollback(s);
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
	struct client c;
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
		int rc = rsip_host_secret(s->db, sess->name, secret, &elan);

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
		int rc = get_client(s, sess->client_id, &c);

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
	exec4(s, "UPDATE clients SET last_seen_ms=? WHERE client_id=?", 2, (int64_t)s->now_ms(), c.id, 0, 0);
	switch (m->type) {
	case RSIP_ASSIGN_REQUEST_RSAP_IP: e = do_assign_ports(s, &c, &r); break;
	case RSIP_ASSIGN_REQUEST_RSIPSEC: e = do_assign_spi(s, &c, &r); break;
	case RSIP_EXTEND_REQUEST: e = do_extend(s, &c, &r); break;
	case RSIP_FREE_REQUEST: e = do_free(s, &c, &r); break;
	case RSIP_QUERY_REQUEST: e = do_query(s, &c, &r); break;
	case RSIP_DEREGISTER_REQUEST:
		e = do_deregister(s, sess, &c, &r);
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

/* ------------------------------------------------------- leases, recovery */

int rsip_server_sweep(struct rsip_server *s)
{
	uint64_t now = s->now_ms();
	sqlite3_stmt *st;
	uint32_t ids[128];
	unsigned n = 0;
	int64_t next;
	int wait = 1000;

	st = prep(s, "SELECT bind_id FROM bindings WHERE state=1 AND until_ms<=? LIMIT 128");
	if (!st)
		return wait;
	sqlite3_bind_int64(st, 1, (int64_t)now);
	while (n < 128 && sqlite3_step(st) == SQLITE_ROW)
		ids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (n && srv_begin(s) == 0) {
		int rc = 0;

		for (unsigned i = 0; i < n && !rc; i++) {
			struct binding b;

			if (get_binding(s, ids[i], &b) == 1) {
				xd_info("lease of bind %u (client %u, %s %u-%u) expired: removed, "
					"quarantined %us", b.id, b.client_id,
					b.kind == RSIP_KIND_PORTS ? "ports" : "SPIs", b.first, b.last,
					s->cfg.quarantine);
				rc = release_binding(s, &b, now, RSIP_REVOKE_CESSATION);
			}
		}
		if (rc || srv_commit(s))
			srv_rollback(s);
	}
	/* Ended quarantines: the blocks are free again (and so in the index). */
	if (query4(s, "SELECT 1 FROM bindings WHERE state=2 AND until_ms<=? LIMIT 1", &next, 1,
		   (int64_t)now, 0, 0, 0) == 1 && srv_begin(s) == 0) {
		int rc = SQLITE_ERROR;

		st = prep(s, "DELETE FROM bindings WHERE state=2 AND until_ms<=? RETURNING kind, gidx, first, last");
		if (st) {
			sqlite3_bind_int64(st, 1, (int64_t)now);
			while ((rc = sqlite3_step(st)) == SQLITE_ROW)
				idx_queue(s, PEND_CLEAR, sqlite3_column_int(st, 0),
					  (uint32_t)sqlite3_column_int64(st, 1), (uint32_t)sqlite3_column_int64(st, 2),
					  (uint32_t)sqlite3_column_int64(st, 3));
			if (rc != SQLITE_DONE)
				xd_err("state database: %s", sqlite3_errmsg(s->db));
			sqlite3_finalize(st);
		}
		if (rc != SQLITE_DONE || srv_commit(s))
			srv_rollback(s);
	}
	exec4(s, "DELETE FROM clients WHERE host_id=0 AND last_seen_ms<=? AND NOT EXISTS "
		 "(SELECT 1 FROM bindings b WHERE b.client_id=clients.client_id AND b.state=1)", 1,
	      (int64_t)now - (int64_t)s->cfg.reg_lease * 1000, 0, 0, 0);
	if (query4(s, "SELECT MIN(until_ms) FROM bindings WHERE state=1", &next, 0, 0, 0, 0, 0) == 1) {
		int64_t d = next - (int64_t)s->now_ms();

		if (d < wait)
			wait = d < 0 ? 0 : (int)d;
	}
	return wait;
}

static int runs_equal(const struct xd_run *a, size_t na, const struct xd_run *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (a[i].first != b[i].first || a[i].last != b[i].last)
			return 0;
	return 1;
}

/* The client's active bindings of @kind as merged runs (sorted). */
static int db_runs(struct rsip_server *s, uint32_t client_id, int kind, struct xd_run **out, size_t *n)
{
	sqlite3_stmt *st = prep(s, "SELECT first, last FROM bindings WHERE client_id=? AND kind=? "
				   "AND state=1 ORDER BY first");
	struct xd_run *r = NULL;
	size_t cnt = 0, cap = 0;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, client_id);
	sqlite3_bind_int64(st, 2, kind);
	while (sqlite3_step(st) == SQLITE_ROW) {
		uint32_t f = (uint32_t)sqlite3_column_int64(st, 0), l = (uint32_t)sqlite3_column_int64(st, 1);

		if (cnt && r[cnt - 1].last + 1 == f) {
			r[cnt - 1].last = l;
			continue;
		}
		if (cnt == cap) {
			struct xd_run *nr = realloc(r, (cap = cap ? cap * 2 : 8) * sizeof(*r));

			if (!nr) {
				free(r);
				sqlite3_finalize(st);
				return -ENOMEM;
			}
			r = nr;
		}
		r[cnt].first = f;
		r[cnt].last = l;
		cnt++;
	}
	sqlite3_finalize(st);
	*out = r;
	*n = cnt;
	return 0;
}

int rsip_server_reconcile(struct rsip_server *s)
{
	sqlite3_stmt *st = prep(s, "SELECT client_id, lan_addr, host_id, gidx FROM clients WHERE host_id>0");
	int bad = 0;

	if (!st)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		uint32_t cid = (uint32_t)sqlite3_column_int64(st, 0);
		uint32_t lan = (uint32_t)sqlite3_column_int64(st, 1);
		uint32_t hid = (uint32_t)sqlite3_column_int64(st, 2);
		uint32_t gidx = (uint32_t)sqlite3_column_int64(st, 3);
		struct xd_run *want[2] = { NULL, NULL }, *have[2] = { NULL, NULL };
		size_t nw[2] = { 0, 0 }, nh[2] = { 0, 0 };
		uint32_t l, g;
		bool same;

		if (hid >= s->cfg.max_hosts || gidx >= s->cfg.n_gaddrs) {
			xd_warn("client %u: host id %u / global address %u do not fit this configuration",
				cid, hid, gidx);
			bad++;
			continue;
		}
		if (db_runs(s, cid, RSIP_KIND_PORTS, &want[0], &nw[0]) ||
		    db_runs(s, cid, RSIP_KIND_SPI, &want[1], &nw[1])) {
			bad++;
			goto next;
		}
		same = s->be.host_get(s->be.ctx, hid, &l, &g) == 0 && l == lan && g == gidx &&
		       s->be.runs(s->be.ctx, hid, RSIP_KIND_PORTS, &have[0], &nh[0]) == 0 &&
		       s->be.runs(s->be.ctx, hid, RSIP_KIND_SPI, &have[1], &nh[1]) == 0 &&
		       runs_equal(want[0], nw[0], have[0], nh[0]) && runs_equal(want[1], nw[1], have[1], nh[1]);
		if (same)
			goto next;
		xd_info("reconcile: host %u (client %u) differs from the store: reinstalling", hid, cid);
		if (s->be.host_get(s->be.ctx, hid, &l, &g) == 0)
			s->be.host_del(s->be.ctx, hid);
		if (s->be.host_add(s->be.ctx, hid, lan, gidx)) {
			bad++;
			goto next;
		}
		for (int k = 0; k < 2; k++)
			for (size_t i = 0; i < nw[k]; i++)
				if (install(s, hid, k ? RSIP_KIND_SPI : RSIP_KIND_PORTS, want[k][i].first,
					    want[k][i].last))
					bad++;
next:
		for (int k = 0; k < 2; k++) {
			free(want[k]);
			free(have[k]);
		}
	}
	sqlite3_finalize(st);
	return bad ? -EIO : 0;
}

int rsip_server_open(struct rsip_server *s, const struct rsip_config *cfg,
		     const struct rsip_backend *be)
{
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->be = *be;
	s->listen_fd = -1;
	s->now_ms = cfg->now_ms ? cfg->now_ms : rsip_now_ms;
	if (rsip_db_open(cfg->state_dir, cfg->instance, &s->db))
		return -EIO;
	/* xdnatctl rsip evict quarantines with the daemon's setting. */
	if (rsip_setting_set(s->db, "quarantine", cfg->quarantine))
		xd_warn("cannot record the quarantine in the state database");
	if (rsip_server_reconcile(s))
		xd_warn("the maps could not be fully reconciled with the state database");
	rsip_server_sweep(s); /* what lapsed while we were down */
	if (idx_build(s))
		xd_warn("cannot build the free-range index: retrying at the first allocation");
	return 0;
}

static void conn_close(struct rsip_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

void rsip_server_close(struct rsip_server *s)
{
	if (s->conns) {
		for (unsigned i = 0; i < s->max_conns; i++)
			conn_close(&s->conns[i]);
		free(s->conns);
		s->conns = NULL;
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
	rsip_db_close(s->db);
	s->db = NULL;
	idx_free(&s->idx);
}

/* ---------------------------------------------------------------- transport */

int rsip_server_listen(struct rsip_server *s, uint32_t addr_be, uint16_t port, const char *ifname,
		       unsigned max_conns, unsigned idle_timeout_s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = addr_be };
	char a[INET_ADDRSTRLEN];
	int one = 1, fd, rc;

	s->conns = calloc(max_conns, sizeof(*s->conns));
	if (!s->conns)
		return -ENOMEM;
	s->max_conns = max_conns;
	s->idle_timeout_s = idle_timeout_s;
	for (unsigned i = 0; i < max_conns; i++)
		s->conns[i].fd = -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (ifname && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname) + 1)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		rc = -errno;
		xd_err("RSIP: cannot listen on %s:%u%s%s: %s", xd_ipstr(addr_be, a), port,
		       ifname ? " dev " : "", ifname ? ifname : "", strerror(-rc));
		close(fd);
		return rc;
	}
	s->listen_fd = fd;
	return 0;
}

unsigned rsip_server_pollfds(struct rsip_server *s, struct pollfd *pfd, unsigned max)
{
	unsigned n = 0;

	if (s->listen_fd < 0 || max == 0)
		return 0;
	pfd[n++] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
	for (unsigned i = 0; i < s->max_conns && n < max; i++)
		if (s->conns[i].fd >= 0)
			pfd[n++] = (struct pollfd){ .fd = s->conns[i].fd, .events = POLLIN };
	return n;
}

static void conn_accept(struct rsip_server *s)
{
	for (;;) {
		struct sockaddr_in peer;
		socklen_t pl = sizeof(peer);
		int fd = accept4(s->listen_fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		unsigned i;

		if (fd < 0)
			return;
		for (i = 0; i < s->max_conns && s->conns[i].fd >= 0; i++)
			;
		if (i == s->max_conns || peer.sin_family != AF_INET) {
			xd_warn("RSIP: too many connections (%u): refusing one", s->max_conns);
			close(fd);
			continue;
		}
		memset(&s->conns[i], 0, sizeof(s->conns[i]));
		s->conns[i].fd = fd;
		s->conns[i].sess.peer_lan = peer.sin_addr.s_addr;
		s->conns[i].last_ms = s->now_ms();
	}
}

static bool send_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			/* Responses are small; a peer that does not read within
			 * a second is dropped. */
			if (poll(&p, 1, 1000) <= 0)
				return false;
			continue;
		}
		if (w <= 0)
			return false;
		buf += w;
		len -= (size_t)w;
	}
	return true;
}

static void conn_read(struct rsip_server *s, struct rsip_conn *c)
{
	uint8_t out[RSIP_MAX_MSG];
	ssize_t r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_close(c);
		return;
	}
	if (r < 0)
		return;
	c->in_len += (size_t)r;
	c->last_ms = s->now_ms();
	while (c->in_len >= RSIP_HDR_LEN) {
		uint16_t err;
		size_t need = rsip_frame_len(c->in, c->in_len, &err), n;
		bool cl = false;

		if (!need) {
			/* Unframeable: answer and hang up (we cannot resync). */
			struct rsip_builder *b = malloc(sizeof(*b));

			if (b && (n = rsip_build_error(b, err, false, 0, 0, 0)))
				send_all(c->fd, b->buf, n);
			free(b);
			conn_close(c);
			return;
		}
		if (c->in_len < need)
			break;
		n = rsip_server_handle(s, &c->sess, c->in, need, out, &cl);
		memmove(c->in, c->in + need, c->in_len - need);
		c->in_len -= need;
		if ((n && !send_all(c->fd, out, n)) || cl) {
			conn_close(c);
			return;
		}
	}
}

void rsip_server_events(struct rsip_server *s, const struct pollfd *pfd, unsigned n)
{
	uint64_t now = s->now_ms();

	for (unsigned i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (pfd[i].fd == s->listen_fd) {
			conn_accept(s);
			continue;
		}
		for (unsigned k = 0; k < s->max_conns; k++) {
			if (s->conns[k].fd == pfd[i].fd) {
				if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
					conn_read(s, &s->conns[k]);
				break;
			}
		}
	}
	/* Idle connections hold a slot: drop them. */
	for (unsigned k = 0; k < s->max_conns; k++)
		/* last_ms may be later than now (accepted or read above): not idle. */
		if (s->conns[k].fd >= 0 && s->idle_timeout_s && now > s->conns[k].last_ms &&
		    now - s->conns[k].last_ms > (uint64_t)s->idle_timeout_s * 1000)
			conn_close(&s->conns[k]);
}
