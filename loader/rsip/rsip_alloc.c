// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* RSIP server, the allocator: see rsip_server.h and rsip_server_int.h. */
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

/* -------------------------------------------------------------- allocator */

uint32_t rs_clamp_lease(const struct rsip_config *c, bool given, uint32_t req)
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
	int rc = OPS(s)->last_before(s->st, kind, gidx, at, last);

	if (rc < 0)
		xd_err("RSIP: %s", xd_store_error(s->st));
	return rc;
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
	q = rs_bits_next_set(&s->idx.ports[gidx], first, last);
	if (q != UINT64_MAX) {
		*skip = (uint32_t)q + 1;
		return RSIP_E_LOCAL_ADDRPORT_INUSE;
	}
	rc = last_before(s, RSIP_KIND_PORTS, gidx, last, &v);
	if (rc < 0)
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if (rc == 1 && v >= first && s->idx_fed) {
		/* another router's block the watch has not brought yet */
		*skip = (uint32_t)v + 1;
		return RSIP_E_LOCAL_ADDRPORT_INUSE;
	}
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

static uint16_t find_ports(struct rsip_server *s, const struct xd_client *c, uint32_t gidx, uint32_t n,
			   uint32_t *first)
{
	uint32_t skip, start;
	struct xd_held h = { .count = 0 };
	int64_t v;

	/* Next to the client's own ports first, so its ports stay one range. */
	if (c->host_id && OPS(s)->client_held(s->st, c->id, RSIP_KIND_PORTS, &h) == 0 && h.count &&
	    (v = h.max_last) + n <= s->cfg.port_max && check_ports(s, gidx, (uint32_t)v + 1, (uint32_t)v + n, &skip) == 0) {
		*first = (uint32_t)v + 1;
		return RSIP_E_OK;
	}
	if (h.count && (v = h.min_first) >= (int64_t)s->cfg.port_min + n &&
	    check_ports(s, gidx, (uint32_t)v - n, (uint32_t)v - 1, &skip) == 0) {
		*first = (uint32_t)v - n;
		return RSIP_E_OK;
	}
	if (!s->idx.valid)
		return RSIP_E_INTERNAL_SERVER_ERROR;
	/* First fit: the index proposes the first free run, the checks confirm
	 * it (a statically owned port in the maps sends the search past it). */
	for (start = s->cfg.port_min; start + n - 1 <= s->cfg.port_max;) {
		int64_t cand = rs_bits_find(&s->idx.ports[gidx], start, s->cfg.port_max, n);
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
	q = rs_bits_next_set(&s->idx.spis, first >> s->cfg.spi_bits, last >> s->cfg.spi_bits);
	if (q != UINT64_MAX) {
		*skip = (uint32_t)(((q + 1) << s->cfg.spi_bits) - 1);
		return RSIP_E_IPSEC_SPI_INUSE;
	}
	rc = last_before(s, RSIP_KIND_SPI, 0, last, &v);
	if (rc < 0)
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if (rc == 1 && v >= first && s->idx_fed) {
		*skip = (uint32_t)v;
		return RSIP_E_IPSEC_SPI_INUSE;
	}
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
		int64_t cand = rs_bits_find(&s->idx.spis, start, nblk - 1, nb);
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

	if (!s->idx.valid)
		return -EIO;
	for (;; p++) {
		uint32_t l, g;
		int rc;

		p = rs_bits_next_clear(&s->idx.hids, p);
		if (p >= s->cfg.max_hosts)
			return -ENOSPC;
		rc = OPS(s)->host_id_taken(s->st, (uint32_t)p);
		if (rc < 0) {
			xd_err("RSIP: %s", xd_store_error(s->st));
			return -EIO;
		}
		if (rc == 1 && s->idx_fed)
			continue;    /* another router's, not reported by the watch yet */
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

int rs_install(struct rsip_server *s, uint32_t host_id, int kind, uint32_t first, uint32_t last)
{
	return kind == RSIP_KIND_PORTS ? s->be.ports_add(s->be.ctx, host_id, first, last)
				       : s->be.spis_add(s->be.ctx, host_id, first, last);
}

void rs_uninstall(struct rsip_server *s, uint32_t host_id, int kind, uint32_t first, uint32_t last)
{
	int rc = kind == RSIP_KIND_PORTS ? s->be.ports_del(s->be.ctx, host_id, first, last)
					 : s->be.spis_del(s->be.ctx, host_id, first, last);

	if (rc)
		xd_warn("host %u: could not remove %s %u-%u from the maps (%s); reconciling later",
			host_id, kind == RSIP_KIND_PORTS ? "ports" : "SPIs", first, last, strerror(-rc));
}


/* Install a committed binding in the maps; on failure take it out of the
 * maps and the store again (its own transaction) and return -EIO. */
int rs_install_binding(struct rsip_server *s, const struct rsip_deferred *d)
{
	if ((!d->new_host || !s->be.host_add(s->be.ctx, d->host_id, d->lan, d->gidx)) &&
	    !rs_install(s, d->host_id, d->kind, d->first, d->last))
		return 0;
	xd_warn("client %u: cannot install %s %u-%u in the maps; undoing", d->client_id,
		d->kind == RSIP_KIND_PORTS ? "ports" : "SPIs", d->first, d->last);
	if (d->new_host && s->be.host_get(s->be.ctx, d->host_id, &(uint32_t){0}, &(uint32_t){0}) == 0)
		s->be.host_del(s->be.ctx, d->host_id);
	if (rs_srv_begin(s) == 0 && OPS(s)->binding_del(s->st, d->bind_id) == 0 &&
	    (!d->new_host || OPS(s)->client_set_host(s->st, d->client_id, 0, -1) == 0)) {
		rs_idx_queue(s, PEND_CLEAR, d->kind, d->gidx, d->first, d->last);
		if (d->new_host)
			rs_idx_queue(s, PEND_HID_CLEAR, 0, 0, d->host_id, d->host_id);
		if (rs_srv_commit(s)) {
			xd_warn("client %u: cannot undo bind %u in the store", d->client_id, d->bind_id);
			rs_srv_rollback(s);
		}
	} else {
		xd_warn("client %u: cannot undo bind %u in the store: %s", d->client_id, d->bind_id,
			xd_store_error(s->st));
		rs_srv_rollback(s);
	}
	return -EIO;
}

/* Inside a batch (group commit): install after the batch's commit. */
static int defer_install(struct rsip_server *s, const struct rsip_deferred *d)
{
	if (s->n_defer == s->cap_defer) {
		size_t cap = s->cap_defer ? s->cap_defer * 2 : 16;
		struct rsip_deferred *p = realloc(s->defer, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->defer = p;
		s->cap_defer = cap;
	}
	s->defer[s->n_defer++] = *d;
	return 0;
}

/*
 * Allocate [first,last] of @kind to client @c: store first (committed,
 * together with the certificate a CSR in @r asks for), then the maps (at
 * once, or after the batch's commit when one is open).
 * Returns RSIP error; *bind_id on success.
 */
uint16_t rs_commit_binding(struct rsip_server *s, struct xd_client *c, uint32_t gidx, int kind,
			   uint32_t first, uint32_t last, uint32_t lease, uint32_t *bind_id,
			   struct req *r)
{
	uint16_t ce;
	uint64_t now = s->now_ms();
	struct rsip_deferred d = { .client_id = c->id, .host_id = c->host_id, .lan = c->lan,
				   .gidx = gidx, .kind = kind, .first = first, .last = last,
				   .new_host = c->host_id == 0, .conn = s->cur_conn };
	struct xd_claim cl = { .client_id = c->id, .gidx = gidx, .kind = kind, .first = first,
			       .last = last, .until_ms = (int64_t)(now + (uint64_t)lease * 1000),
			       .now_ms = (int64_t)now };

	if (d.new_host) {
		int rc = pick_host_id(s, &d.host_id);

		/* a stale index (another router's registration) is rebuilt from
		 * the store, this unit's writes included, and asked once more */
		if (rc == -EIO && !s->idx.valid && rs_idx_build(s) == 0)
			rc = pick_host_id(s, &d.host_id);
		if (rc) {
			if (rc == -ENOSPC)
				xd_warn("no free host id (raise --max-hosts)");
			else
				xd_err("RSIP: client %u: cannot choose a host id", c->id);
			rs_srv_rollback(s);
			return RSIP_E_INTERNAL_SERVER_ERROR;
		}
	}
	cl.host_id = d.host_id;
	if (OPS(s)->claim(s->st, &cl, &d.bind_id)) {
		xd_warn("client %u: %s", c->id, xd_store_error(s->st));
		rs_srv_rollback(s);
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	if ((ce = rs_issue_cert(s, c, r))) {
		rs_srv_rollback(s);
		return ce;
	}
	rs_idx_queue(s, PEND_SET, kind, gidx, first, last);
	if (d.new_host)
		rs_idx_queue(s, PEND_HID_SET, 0, 0, d.host_id, d.host_id);
	if (rs_srv_commit(s)) {
		rs_srv_rollback(s);
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	if (!(s->batching && defer_install(s, &d) == 0) && rs_install_binding(s, &d))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	c->host_id = d.host_id;
	c->gidx = (int32_t)gidx;
	*bind_id = d.bind_id;
	return RSIP_E_OK;
}

/* Release an active binding (inside a transaction the caller commits):
 * out of the maps at once, into quarantine; the host leaves the maps with
 * its last binding. */
int rs_release_binding(struct rsip_server *s, const struct xd_binding *b, uint64_t now, int reason)
{
	struct xd_client c;
	struct xd_held h;

	if (s->certs.release) {
		/* Seed rule: never free a block a valid certificate binds. */
		char name[RSIP_KEYID_MAX + 1];
		int rc = rs_client_name(s, b->client_id, name);

		if (rc < 0 || (rc == 1 && s->certs.release(s->certs.ctx, name, b->kind, b->first, b->last,
							   reason))) {
			xd_warn("bind %u: cannot revoke the certificates that bind %s %u-%u: keeping it",
				b->id, b->kind == RSIP_KIND_PORTS ? "ports" : "SPIs", b->first, b->last);
			return -EIO;
		}
	}
	if (rs_get_client(s, b->client_id, &c) == 1 && c.host_id) {
		rs_uninstall(s, c.host_id, b->kind, b->first, b->last);
		/* the last one (this binding is still active) */
		if (OPS(s)->client_held(s->st, c.id, 0, &h) == 0 && h.count == 1) {
			if (s->be.host_del(s->be.ctx, c.host_id))
				xd_warn("host %u: could not remove it from the maps", c.host_id);
			if (OPS(s)->client_set_host(s->st, c.id, 0, -1))
				return -EIO;
			rs_idx_queue(s, PEND_HID_CLEAR, 0, 0, c.host_id, c.host_id);
		}
	}
	return OPS(s)->binding_set(s->st, b->id, RSIP_BIND_QUARANTINE,
				   (int64_t)(now + (uint64_t)s->cfg.quarantine * 1000));
}


/* A CSR in the request (Vendor Specific, our vendor, sub-type CSR): issue
 * a certificate over every active binding of the client, valid for the
 * shortest of their leases, inside the open transaction.  No CSR or no
 * CA: nothing to do. */
uint16_t rs_issue_cert(struct rsip_server *s, const struct xd_client *c, struct req *r)
{
	struct rsip_vendor v, cv, *csr = NULL;
	struct xd_run *runs[2] = { NULL, NULL };
	size_t nr[2] = { 0, 0 };
	char name[RSIP_KEYID_MAX + 1];
	struct xd_held h;
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
	if (rs_client_name(s, c->id, name) != 1 || rs_db_runs(s, c->id, RSIP_KIND_PORTS, &runs[0], &nr[0]) ||
	    rs_db_runs(s, c->id, RSIP_KIND_SPI, &runs[1], &nr[1]) ||
	    OPS(s)->client_held(s->st, c->id, 0, &h) || !h.count)
		goto out;
	until = h.min_until;
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

static uint16_t choose_gidx(const struct xd_client *c, int want, uint32_t *gidx)
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

uint16_t rs_do_assign_ports(struct rsip_server *s, struct xd_client *c, struct req *r)
{
	const struct rsip_param *pl = rs_slot(r, RSIP_S_AR_PORTS_LOCAL), *lt = rs_slot(r, RSIP_S_AR_LEASE);
	struct rsip_ports ports;
	uint32_t gidx, n, first = 0, skip, lease, bind_id;
	struct xd_held h;
	uint16_t e;
	bool any_gaddr;
	int want = local_gidx(s, rs_slot(r, RSIP_S_AR_ADDR_LOCAL));

	if ((e = check_tunnel(rs_slot(r, RSIP_S_AR_TUNNEL))))
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
	lease = rs_clamp_lease(&s->cfg, lt != NULL, lt ? rsip_param_u32(lt) : 0);
	any_gaddr = want == -1 && !(c->host_id && c->gidx >= 0);
	if ((e = choose_gidx(c, want, &gidx)))
		return e;
	if (rs_srv_begin(s))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if (rs_idx_sync(s)) {
		xd_err("RSIP: cannot build the free-range index");
		rs_srv_rollback(s);
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	if (OPS(s)->client_held(s->st, c->id, RSIP_KIND_PORTS, &h)) {
		xd_err("RSIP: %s", xd_store_error(s->st));
		rs_srv_rollback(s);
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	if (h.size + n > s->cfg.max_ports_per_host) {
		rs_srv_rollback(s);
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
		rs_srv_rollback(s);
		return e;
	}
	if ((e = rs_commit_binding(s, c, gidx, RSIP_KIND_PORTS, first, first + n - 1, lease, &bind_id, r)))
		return e;
	xd_info("client %u: ports %u-%u of global address %u, bind %u, lease %us", c->id, first,
		first + n - 1, gidx, bind_id, lease);
	rsip_begin(r->b, RSIP_ASSIGN_RESPONSE_RSAP_IP);
	rsip_put_u32(r->b, RSIP_P_CLIENT_ID, c->id);
	rsip_put_u32(r->b, RSIP_P_BIND_ID, bind_id);
	rsip_put_addr4(r->b, s->cfg.gaddrs[gidx], false);
	rsip_put_ports(r->b, (uint8_t)n, (uint16_t[]){ (uint16_t)first }, 1);
	rsip_put_raw(r->b, RSIP_P_ADDRESS, rs_slot(r, RSIP_S_AR_ADDR_REMOTE)->val, rs_slot(r, RSIP_S_AR_ADDR_REMOTE)->len);
	rsip_put_raw(r->b, RSIP_P_PORTS, rs_slot(r, RSIP_S_AR_PORTS_REMOTE)->val, rs_slot(r, RSIP_S_AR_PORTS_REMOTE)->len);
	rsip_put_u32(r->b, RSIP_P_LEASE_TIME, lease);
	rsip_put_u8(r->b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
	rsip_put_addr4(r->b, s->cfg.router_lan, false);
	return RSIP_E_OK;
}

uint16_t rs_do_assign_spi(struct rsip_server *s, struct xd_client *c, struct req *r)
{
	const struct rsip_param *sp = rs_slot(r, RSIP_S_SR_SPI), *lt = rs_slot(r, RSIP_S_SR_LEASE);
	const struct rsip_param *pr = rs_slot(r, RSIP_S_SR_PORTS_REMOTE);
	uint64_t bs = 1ull << s->cfg.spi_bits;
	struct rsip_spi spi = { 0 };
	uint32_t gidx, nb = 1, first = 0, skip, lease, bind_id;
	struct xd_held h;
	uint64_t total;
	uint16_t e;
	int want = local_gidx(s, rs_slot(r, RSIP_S_SR_ADDR_LOCAL));

	if ((e = check_tunnel(rs_slot(r, RSIP_S_SR_TUNNEL))))
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
	lease = rs_clamp_lease(&s->cfg, lt != NULL, lt ? rsip_param_u32(lt) : 0);
	if ((e = choose_gidx(c, want, &gidx)))
		return e;
	if (rs_srv_begin(s))
		return RSIP_E_INTERNAL_SERVER_ERROR;
	if (rs_idx_sync(s)) {
		xd_err("RSIP: cannot build the free-range index");
		rs_srv_rollback(s);
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	/* SPI bindings are whole blocks: their size in blocks adds up. */
	if (OPS(s)->client_held(s->st, c->id, RSIP_KIND_SPI, &h)) {
		xd_err("RSIP: %s", xd_store_error(s->st));
		rs_srv_rollback(s);
		return RSIP_E_INTERNAL_SERVER_ERROR;
	}
	if ((h.size >> s->cfg.spi_bits) + nb > s->cfg.max_spi_blocks_per_host) {
		rs_srv_rollback(s);
		return RSIP_E_IPSEC_SPI_UNAVAILABLE;
	}
	if (spi.count == 1) {
		e = (uint64_t)first + nb * bs - 1 > 0xffffffffull ? RSIP_E_IPSEC_SPI_UNAVAILABLE :
		    check_spis(s, first, (uint32_t)(first + nb * bs - 1), &skip);
	} else {
		e = find_spis(s, nb, &first);
	}
	if (e) {
		rs_srv_rollback(s);
		return e;
	}
	total = nb * bs;
	if ((e = rs_commit_binding(s, c, gidx, RSIP_KIND_SPI, first, (uint32_t)(first + total - 1), lease,
				&bind_id, r)))
		return e;
	xd_info("client %u: SPIs 0x%x-0x%x, bind %u, lease %us", c->id, first,
		(uint32_t)(first + total - 1), bind_id, lease);
	rsip_begin(r->b, RSIP_ASSIGN_RESPONSE_RSIPSEC);
	rsip_put_u32(r->b, RSIP_P_CLIENT_ID, c->id);
	rsip_put_u32(r->b, RSIP_P_BIND_ID, bind_id);
	rsip_put_addr4(r->b, s->cfg.gaddrs[gidx], false);
	rsip_put_raw(r->b, RSIP_P_ADDRESS, rs_slot(r, RSIP_S_SR_ADDR_REMOTE)->val, rs_slot(r, RSIP_S_SR_ADDR_REMOTE)->len);
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
