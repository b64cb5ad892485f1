// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The Mobile IPv4 home agent: see mip_server.h and docs/ROAMING.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "mip_server.h"
#include "rsip_server_int.h"
#include "store.h"

void mip_config_defaults(struct mip_config *c)
{
	memset(c, 0, sizeof(*c));
	c->max_lifetime = MIP_DEFAULT_MAX_LIFETIME;
	c->keepalive_s = MIP_DEFAULT_KEEPALIVE;
	c->skew_s = MIP_DEFAULT_SKEW_S;
	c->lease_grace_s = MIP_DEFAULT_LEASE_GRACE;
}

void mip_server_init(struct mip_server *s, const struct mip_config *cfg, struct xd_store *st,
		     struct rsip_server *rsip, const struct mip_dp *dp)
{
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->st = st;
	s->rsip = rsip;
	s->dp = *dp;
	s->now_ms = rsip_now_ms;
	s->fd = -1;
}

void mip_server_free(struct mip_server *s)
{
	mip_server_close(s);
	free(s->b);
	s->b = NULL;
	s->n = s->cap = 0;
}

/* A refusal's log line: at most one per 10 s, with the count left out. */
static void __attribute__((format(printf, 2, 3))) log_rl(struct mip_server *s, const char *fmt, ...)
{
	uint64_t now = s->now_ms();
	va_list ap;

	if (now < s->log_next_ms) {
		s->log_suppressed++;
		return;
	}
	s->log_next_ms = now + 10000;
	fprintf(stderr, "%s: mobile: ", xd_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (s->log_suppressed)
		fprintf(stderr, " (%lu similar lines left out)", s->log_suppressed);
	fputc('\n', stderr);
	s->log_suppressed = 0;
}

/* May a refusal go to @src now?  One per source per second, and at most
 * MIP_REFUSE_PER_S in every second in all. */
static bool refusal_allowed(struct mip_server *s, uint32_t src)
{
	uint64_t now = s->now_ms();
	uint32_t h = src * 2654435761u;
	unsigned i = (h >> 24) & 255;

	if (now - s->rl_window_ms >= 1000) {
		s->rl_window_ms = now;
		s->rl_in_window = 0;
	}
	if (s->rl[i].addr == src && s->rl[i].ms && now - s->rl[i].ms < 1000)
		return false;
	if (s->rl_in_window >= MIP_REFUSE_PER_S)
		return false;
	s->rl[i].addr = src;
	s->rl[i].ms = now ? now : 1;
	s->rl_in_window++;
	return true;
}

static struct mip_binding *find(struct mip_server *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->b[i].name, name))
			return &s->b[i];
	return NULL;
}

static struct mip_binding *find_or_add(struct mip_server *s, const char *name)
{
	struct mip_binding *b = find(s, name);

	if (b)
		return b;
	if (s->n == s->cap) {
		size_t nc = s->cap ? 2 * s->cap : 16;
		struct mip_binding *nb = realloc(s->b, nc * sizeof(*nb));

		if (!nb)
			return NULL;
		s->b = nb;
		s->cap = nc;
	}
	b = &s->b[s->n++];
	memset(b, 0, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "%s", name);
	return b;
}

static bool our_address(const struct mip_server *s, uint32_t a)
{
	for (uint32_t i = 0; i < s->cfg.n_gaddrs; i++)
		if (s->cfg.gaddrs[i] == a)
			return true;
	return false;
}

/* One request being answered. */
struct mreq {
	const uint8_t *in;
	size_t len;
	struct mip_rrq q;
	uint32_t src, dst;
	uint16_t sport;
	char name[MIP_NAI_MAX + 1];
	uint8_t key[MIP_KEY_LEN];
	bool authed;
	uint8_t *out;
};

/* The reply: authenticated when the request was; refusals rate-limited. */
static size_t reply(struct mip_server *s, struct mreq *r, uint8_t code, uint16_t lifetime,
		    uint32_t home, uint64_t id, const struct mip_binding *tun)
{
	struct mip_builder b;
	size_t n;

	if (code >= 128) {
		s->refused[code]++;
		if (!refusal_allowed(s, r->src)) {
			s->stat[MIP_ST_RATE_LIMITED]++;
			return 0;
		}
	}
	mip_build_rrp(&b, r->out, MIP_MAX_MSG, code, lifetime, home,
		      r->q.ha && our_address(s, r->q.ha) ? r->q.ha : r->dst, id);
	if (tun && r->q.have_tunreq)
		mip_put_tunrep(&b, tun->encap == MIP_ENCAP_UDP ? MIP_TUNREP_ACCEPT : MIP_TUNREP_DECLINE,
			       (r->q.tunreq_flags & MIP_TUNREQ_F) ? MIP_TUNREP_F : 0, s->cfg.keepalive_s);
	n = r->authed ? mip_seal(&b, r->key) : mip_finish(&b);
	/* No amplification: a reply is never longer than the request plus the
	 * fixed reply (20 + 8 + 38 bytes). */
	if (n > r->len + MIP_RRP_LEN + 8 + 6 + MIP_AUTH_LEN)
		return 0;
	return n;
}

static size_t refuse(struct mip_server *s, struct mreq *r, uint8_t code, const char *why)
{
	char a[INET_ADDRSTRLEN];

	log_rl(s, "refused %s%s%sfrom %s:%u: %s (code %u %s)", r->name[0] ? "'" : "", r->name,
	       r->name[0] ? "' " : "", xd_ipstr(r->src, a), ntohs(r->sport), why, code,
	       mip_code_name(code));
	return reply(s, r, code, 0, r->q.home, r->q.id, NULL);
}

/* Renew the host's RSIP leases to at least @until_ms (its registration's
 * end plus grace): the host cannot reach RSIP on the LAN while away. */
static int renew_leases(struct mip_server *s, uint32_t client_id, int64_t until_ms)
{
	struct xd_binding bs[64];
	unsigned n = 0;
	int rc = 0;

	if (!s->rsip)
		return 0;
	if (rs_srv_begin(s->rsip))
		return -EIO;
	if (OPS(s->rsip)->client_bindings(s->st, client_id, bs, 64, &n)) {
		rs_srv_rollback(s->rsip);
		return -EIO;
	}
	if (n > 64)
		xd_warn("mobile: client %u holds %u bindings: only the first 64 renewed", client_id, n);
	for (unsigned i = 0; i < n && i < 64 && !rc; i++)
		if (bs[i].until_ms < until_ms)
			rc = OPS(s->rsip)->binding_set(s->st, bs[i].id, RSIP_BIND_ACTIVE, until_ms);
	if (rc || rs_srv_commit(s->rsip)) {
		rs_srv_rollback(s->rsip);
		return -EIO;
	}
	return 0;
}

static void end_binding(struct mip_server *s, struct mip_binding *b)
{
	int rc;

	if (!b->active)
		return;
	rc = s->dp.clear ? s->dp.clear(s->dp.ctx, b->host_id) : 0;
	if (rc && rc != -ENOENT)
		xd_warn("mobile: %s: cannot restore the LAN endpoint of host %u: %s", b->name,
			b->host_id, strerror(-rc));
	b->active = false;
	b->adopted = false;
}

/* Authentication: the NAI names an enrolled host and the MH authenticator
 * verifies under its key.  0, or the refusal code. */
static uint8_t authenticate(struct mip_server *s, struct mreq *r, const char **why)
{
	uint8_t secret[RSIP_SECRET_LEN];
	uint32_t lan;
	size_t l = r->q.nai_len;
	int rc;

	if (!r->q.nai) {
		*why = "no NAI extension (the host's enrolment name)";
		return MIP_C_POORLY_FORMED;
	}
	/* NAI = name or name@realm; the realm is not checked. */
	for (size_t i = 0; i < r->q.nai_len; i++)
		if (r->q.nai[i] == '@') {
			l = i;
			break;
		}
	if (!rsip_valid_name(r->q.nai, l)) {
		*why = "NAI is not an enrolment name";
		return MIP_C_MN_AUTH_FAILED;
	}
	memcpy(r->name, r->q.nai, l);
	r->name[l] = '\0';
	if (!r->q.have_auth) {
		*why = "no mobile-home authentication extension";
		return MIP_C_MN_AUTH_FAILED;
	}
	rc = s->st->ops->host_secret(s->st, r->name, secret, &lan);
	if (rc == -ENOENT) {
		*why = "not enrolled";
		return MIP_C_MN_AUTH_FAILED;
	}
	if (rc) {
		*why = "cannot read the enrolment";
		return MIP_C_UNSPECIFIED;
	}
	mip_derive_key(secret, r->key);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (!mip_verify(r->in, r->len, r->q.auth_off, r->q.spi, r->q.auth, r->q.auth_len, r->key)) {
		OPENSSL_cleanse(r->key, sizeof(r->key));
		*why = r->q.spi != MIP_SPI_XDNAT ? "unknown SPI" : "wrong authenticator";
		return MIP_C_MN_AUTH_FAILED;
	}
	r->authed = true;
	return 0;
}

/* RFC 5944 5.7: the timestamp within skew of ours, above the last one. */
static bool id_ok(struct mip_server *s, const struct mip_binding *b, uint64_t id)
{
	int64_t now_s = (int64_t)(s->now_ms() / 1000), t = mip_id_unix_s(id);

	if (t < now_s - (int64_t)s->cfg.skew_s || t > now_s + (int64_t)s->cfg.skew_s)
		return false;
	return !b || id > b->last_id;
}

static size_t registration(struct mip_server *s, struct mreq *r)
{
	const struct mip_rrq *q = &r->q;
	struct mip_binding *b = find(s, r->name);
	struct xd_client c;
	uint8_t code = MIP_C_ACCEPTED;
	uint16_t life;
	uint32_t g;
	int rc;

	if (!id_ok(s, b, q->id)) {
		uint64_t hid = mip_id_from_unix_ms(s->now_ms(), (uint32_t)q->id);

		log_rl(s, "refused '%s': Identification %s (code 133)", r->name,
		       b && q->id <= b->last_id ? "replayed or not increasing" : "outside the clock skew");
		/* Our time in the high 32 bits, the request's low 32 bits. */
		return reply(s, r, MIP_C_ID_MISMATCH, 0, q->home, hid, NULL);
	}
	if (!our_address(s, q->ha))
		return refuse(s, r, MIP_C_UNKNOWN_HA, "home agent is not a global address of ours");
	if (q->flags & (MIP_F_R | MIP_F_X))
		return refuse(s, r, MIP_C_POORLY_FORMED, "reserved flag set");
	rc = s->st->ops->client_by_name(s->st, r->name, &c);
	if (rc < 0)
		return refuse(s, r, MIP_C_UNSPECIFIED, "cannot read the registration");
	if (rc == 0 || !c.host_id || c.gidx < 0 || (uint32_t)c.gidx >= s->cfg.n_gaddrs)
		return refuse(s, r, MIP_C_ADMIN_PROHIBITED, "holds no blocks: register over RSIP at home first");
	g = s->cfg.gaddrs[c.gidx];
	if (q->home && q->home != g)
		return refuse(s, r, MIP_C_ADMIN_PROHIBITED, "home address is not the host's global address");
	if (q->lifetime == 0) {
		/* Deregistration (RFC 5944 3.8.3): every binding, whatever the care-of address. */
		if (b)
			end_binding(s, b);
		else if (!(b = find_or_add(s, r->name)))
			return refuse(s, r, MIP_C_NO_RESOURCES, "out of memory");
		b->last_id = q->id;
		b->host_id = c.host_id;
		s->stat[MIP_ST_DEREGISTERED]++;
		xd_info("mobile: %s (host %u) deregistered: back at its LAN address", r->name, c.host_id);
		return reply(s, r, MIP_C_ACCEPTED, 0, g, q->id, NULL);
	}
	if (!(q->flags & MIP_F_D))
		return refuse(s, r, MIP_C_ADMIN_PROHIBITED, "registration through a foreign agent (no D flag)");
	if (q->flags & (MIP_F_M | MIP_F_G))
		return refuse(s, r, MIP_C_ENCAP_UNAVAIL, "minimal or GRE encapsulation asked");
	if (!(q->flags & MIP_F_T))
		return refuse(s, r, MIP_C_REV_TUNNEL_MANDATORY, "no reverse tunnelling (T flag)");
	if (q->have_tunreq && (q->tunreq_encap != MIP_ENCAP_IPIP || (q->tunreq_flags & MIP_TUNREQ_R)))
		return refuse(s, r, MIP_C_ENCAP_UNAVAIL, "UDP tunnel with other than IP-in-IP, or via a FA");
	if (!q->coa)
		return refuse(s, r, MIP_C_POORLY_FORMED, "no care-of address");

	struct mip_binding nb = { 0 };
	bool nat = r->src != q->coa;

	/* RFC 3519: a NAT between host and router (the source is not the
	 * care-of address) or a forced request: UDP to the NAT's address
	 * and port.  Otherwise plain IP-in-IP to the care-of address if the
	 * datapath can, else UDP all the same (declining needs both). */
	if (nat || (q->have_tunreq && (q->tunreq_flags & MIP_TUNREQ_F)) || !s->dp.ipip) {
		if (!q->have_tunreq && (nat || !s->dp.ipip))
			return refuse(s, r, MIP_C_ENCAP_UNAVAIL, nat ?
				      "behind a NAT without a UDP Tunnel Request extension" :
				      "no UDP Tunnel Request and no plain IP-in-IP datapath");
		nb.encap = MIP_ENCAP_UDP;
		nb.tun_addr = r->src;
		nb.tun_port = r->sport;
	} else {
		nb.encap = MIP_ENCAP_IPIP_DIRECT;
		nb.tun_addr = q->coa;
	}
	life = q->lifetime < s->cfg.max_lifetime ? q->lifetime : s->cfg.max_lifetime;
	if (q->flags & MIP_F_S)
		code = MIP_C_ACCEPTED_NO_SIMUL;
	if (!b && !(b = find_or_add(s, r->name)))
		return refuse(s, r, MIP_C_NO_RESOURCES, "out of memory");
	rc = s->dp.set ? s->dp.set(s->dp.ctx, c.host_id, nb.encap, nb.tun_addr, nb.tun_port) : 0;
	if (rc)
		return refuse(s, r, MIP_C_NO_RESOURCES, "cannot set the care-of endpoint in the maps");
	uint64_t now = s->now_ms();

	if (renew_leases(s, c.id, (int64_t)(now + ((uint64_t)life + s->cfg.lease_grace_s) * 1000)))
		xd_warn("mobile: %s: cannot renew its RSIP leases: %s", r->name, xd_store_error(s->st));
	bool moved = !b->active || b->tun_addr != nb.tun_addr || b->tun_port != nb.tun_port;

	b->host_id = c.host_id;
	b->active = true;
	b->adopted = false;
	b->encap = nb.encap;
	b->home = g;
	b->coa = q->coa;
	b->tun_addr = nb.tun_addr;
	b->tun_port = nb.tun_port;
	b->nat = nat;
	b->lifetime = life;
	b->registered_ms = now;
	b->expires_ms = now + (uint64_t)life * 1000;
	b->last_id = q->id;
	s->stat[MIP_ST_ACCEPTED]++;
	if (moved) {
		char a1[INET_ADDRSTRLEN], a2[INET_ADDRSTRLEN];

		xd_info("mobile: %s (host %u) registered care-of %s, tunnel %s to %s:%u, %us", r->name,
			c.host_id, xd_ipstr(q->coa, a1), nb.encap == MIP_ENCAP_UDP ? "UDP" : "IP-in-IP",
			xd_ipstr(nb.tun_addr, a2), ntohs(nb.tun_port), life);
	}
	return reply(s, r, code, life, g, q->id, b);
}

size_t mip_server_handle(struct mip_server *s, uint32_t src_be, uint16_t sport_be, uint32_t dst_be,
			 const uint8_t *in, size_t len, uint8_t *out)
{
	struct mreq r = { .in = in, .len = len, .src = src_be, .sport = sport_be, .dst = dst_be,
			  .out = out };
	const char *why = "";
	uint8_t code;
	int rc;
	size_t n;

	rc = mip_rrq_parse(in, len, &r.q);
	if (rc == MIP_DROP || !src_be || !sport_be) {
		s->stat[MIP_ST_DROPPED_MALFORMED]++;
		return 0;
	}
	if (rc == MIP_BAD)
		return refuse(s, &r, MIP_C_POORLY_FORMED, "malformed extension");
	code = authenticate(s, &r, &why);
	if (code)
		n = refuse(s, &r, code, why);
	else
		n = registration(s, &r);
	OPENSSL_cleanse(r.key, sizeof(r.key));
	return n;
}

int mip_server_tick(struct mip_server *s)
{
	uint64_t now = s->now_ms();
	int wait = 1000;

	for (size_t i = 0; i < s->n; i++) {
		struct mip_binding *b = &s->b[i];

		if (!b->active)
			continue;
		if (b->expires_ms <= now) {
			xd_info("mobile: %s (host %u): registration expired, back at its LAN address",
				b->name, b->host_id);
			end_binding(s, b);
			s->stat[MIP_ST_EXPIRED]++;
		} else if (b->expires_ms - now < (uint64_t)wait) {
			wait = (int)(b->expires_ms - now);
		}
	}
	return wait;
}

struct adopt_ctx {
	struct mip_server *s;
	unsigned n;
};

static int adopt_one(void *arg, const struct xd_client *c)
{
	struct adopt_ctx *a = arg;
	struct mip_server *s = a->s;
	struct mip_binding *b;
	enum mip_encap e;
	uint32_t addr;
	uint16_t port;

	if (!c->host_id || !s->dp.get || s->dp.get(s->dp.ctx, c->host_id, &e, &addr, &port) != 1)
		return 0;
	if (!(b = find_or_add(s, c->name)))
		return -ENOMEM;
	b->host_id = c->host_id;
	b->active = b->adopted = true;
	b->encap = e;
	b->tun_addr = b->coa = addr;
	b->tun_port = port;
	b->home = c->gidx >= 0 && (uint32_t)c->gidx < s->cfg.n_gaddrs ? s->cfg.gaddrs[c->gidx] : 0;
	b->lifetime = s->cfg.max_lifetime;
	b->registered_ms = s->now_ms();
	b->expires_ms = b->registered_ms + (uint64_t)s->cfg.max_lifetime * 1000;
	a->n++;
	return 0;
}

void mip_server_adopt(struct mip_server *s)
{
	struct adopt_ctx a = { .s = s };

	if (!s->dp.get)
		return;
	if (s->st->ops->each_client(s->st, adopt_one, &a))
		xd_warn("mobile: cannot read the registrations: %s", xd_store_error(s->st));
	if (a.n)
		xd_info("mobile: %u care-of endpoint%s found in the maps, kept for %us unless renewed",
			a.n, a.n == 1 ? "" : "s", s->cfg.max_lifetime);
}

static const char *encap_name(enum mip_encap e)
{
	return e == MIP_ENCAP_UDP ? "udp" : e == MIP_ENCAP_IPIP_DIRECT ? "ipip" : "none";
}

void mip_server_show(const struct mip_server *s, bool json, FILE *f)
{
	uint64_t now = s->now_ms();
	char a[INET_ADDRSTRLEN], c[INET_ADDRSTRLEN], t[INET_ADDRSTRLEN];
	struct xd_json j;

	if (!json)
		fprintf(f, "%-16s %5s %-15s %-15s %-21s %-5s %3s %9s\n", "host", "id", "home",
			"care-of", "tunnel", "encap", "nat", "remaining");
	else {
		xd_json_begin(&j, f);
		xd_json_arr_open(&j, "mobile");
	}
	for (size_t i = 0; i < s->n; i++) {
		const struct mip_binding *b = &s->b[i];
		uint64_t left = b->expires_ms > now ? (b->expires_ms - now) / 1000 : 0;

		if (!b->active)
			continue;
		xd_ipstr(b->home, a);
		xd_ipstr(b->coa, c);
		xd_ipstr(b->tun_addr, t);
		if (!json) {
			char tun[32];

			snprintf(tun, sizeof(tun), "%s:%u", t, ntohs(b->tun_port));
			fprintf(f, "%-16s %5u %-15s %-15s %-21s %-5s %3s %8llus%s\n", b->name, b->host_id,
				a, c, tun, encap_name(b->encap), b->nat ? "yes" : "no",
				(unsigned long long)left, b->adopted ? " (adopted)" : "");
			continue;
		}
		xd_json_obj_open(&j, NULL);
		xd_json_str(&j, "host", b->name);
		xd_json_u64(&j, "host_id", b->host_id);
		xd_json_str(&j, "home", a);
		xd_json_str(&j, "care_of", c);
		xd_json_str(&j, "tunnel_addr", t);
		xd_json_u64(&j, "tunnel_port", ntohs(b->tun_port));
		xd_json_str(&j, "encap", encap_name(b->encap));
		xd_json_bool(&j, "nat", b->nat);
		xd_json_u64(&j, "lifetime_s", b->lifetime);
		xd_json_u64(&j, "remaining_s", left);
		xd_json_bool(&j, "adopted", b->adopted);
		xd_json_obj_close(&j);
	}
	if (json) {
		xd_json_arr_close(&j);
		xd_json_u64(&j, "keepalive_s", s->cfg.keepalive_s);
		xd_json_u64(&j, "max_lifetime_s", s->cfg.max_lifetime);
		xd_json_end(&j);
	}
}

void mip_server_metrics(const struct mip_server *s, FILE *f)
{
	size_t active = 0;

	for (size_t i = 0; i < s->n; i++)
		active += s->b[i].active;
	fprintf(f, "# HELP xdnat_mobile_bindings Roaming hosts registered at a care-of endpoint.\n"
		"# TYPE xdnat_mobile_bindings gauge\nxdnat_mobile_bindings %zu\n", active);
	fprintf(f, "# HELP xdnat_mobile_registrations_total Mobile IP registration requests by "
		"result (accepted, deregistered, refused with a reply code, dropped).\n"
		"# TYPE xdnat_mobile_registrations_total counter\n");
	fprintf(f, "xdnat_mobile_registrations_total{result=\"accepted\"} %llu\n",
		(unsigned long long)s->stat[MIP_ST_ACCEPTED]);
	fprintf(f, "xdnat_mobile_registrations_total{result=\"deregistered\"} %llu\n",
		(unsigned long long)s->stat[MIP_ST_DEREGISTERED]);
	fprintf(f, "xdnat_mobile_registrations_total{result=\"dropped_malformed\"} %llu\n",
		(unsigned long long)s->stat[MIP_ST_DROPPED_MALFORMED]);
	static const uint8_t codes[] = { 128, 129, 130, 131, 133, 134, 136, 138, 139 };

	for (size_t i = 0; i < sizeof(codes); i++)
		fprintf(f, "xdnat_mobile_registrations_total{result=\"refused\",code=\"%u\",reason=\"%s\"} %llu\n",
			codes[i], mip_code_name(codes[i]), (unsigned long long)s->refused[codes[i]]);
	fprintf(f, "# HELP xdnat_mobile_replies_suppressed_total Refusals not sent (rate limit: one "
		"per source per second, %u per second in all).\n"
		"# TYPE xdnat_mobile_replies_suppressed_total counter\n"
		"xdnat_mobile_replies_suppressed_total %llu\n", MIP_REFUSE_PER_S,
		(unsigned long long)s->stat[MIP_ST_RATE_LIMITED]);
	fprintf(f, "# HELP xdnat_mobile_expired_total Registrations that ended by lifetime.\n"
		"# TYPE xdnat_mobile_expired_total counter\nxdnat_mobile_expired_total %llu\n",
		(unsigned long long)s->stat[MIP_ST_EXPIRED]);
}

/* ---------------------------------------------------------------- socket */

int mip_server_listen(struct mip_server *s, uint32_t addr_be, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = addr_be };
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		xd_err("mobile: socket: %s", strerror(errno));
		return -errno;
	}
	if (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;

		xd_err("mobile: cannot listen on UDP port %u: %s", port, strerror(e));
		close(fd);
		return -e;
	}
	s->fd = fd;
	return 0;
}

void mip_server_close(struct mip_server *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* One datagram: the reply leaves from the address the request went to. */
static bool input_one(struct mip_server *s)
{
	uint8_t in[MIP_MAX_MSG + 1], out[MIP_MAX_MSG];
	union { char buf[CMSG_SPACE(sizeof(struct in_pktinfo))]; struct cmsghdr align; } cb;
	struct sockaddr_in from;
	struct iovec iov = { in, sizeof(in) };
	struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
			     .msg_iovlen = 1, .msg_control = cb.buf, .msg_controllen = sizeof(cb.buf) };
	struct in_pktinfo pi = { 0 };
	bool have_pi = false;
	ssize_t n;
	size_t rl;

	n = recvmsg(s->fd, &mh, MSG_DONTWAIT);
	if (n < 0)
		return false;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			have_pi = true;
		}
	/* Only requests to a global address (G), nothing truncated. */
	if (!have_pi || !our_address(s, pi.ipi_addr.s_addr) || (size_t)n > MIP_MAX_MSG ||
	    (mh.msg_flags & MSG_TRUNC) || mh.msg_namelen != sizeof(from)) {
		s->stat[MIP_ST_DROPPED_MALFORMED]++;
		return true;
	}
	rl = mip_server_handle(s, from.sin_addr.s_addr, from.sin_port, pi.ipi_addr.s_addr, in,
			       (size_t)n, out);
	if (!rl)
		return true;
	{
		struct in_pktinfo spi = { .ipi_spec_dst = pi.ipi_addr };
		union { char buf[CMSG_SPACE(sizeof(struct in_pktinfo))]; struct cmsghdr align; } ob;
		struct iovec oiov = { out, rl };
		struct msghdr om = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &oiov,
				     .msg_iovlen = 1, .msg_control = ob.buf,
				     .msg_controllen = sizeof(ob.buf) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&om);

		memset(ob.buf, 0, sizeof(ob.buf));
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(spi));
		memcpy(CMSG_DATA(c), &spi, sizeof(spi));
		if (sendmsg(s->fd, &om, MSG_DONTWAIT) < 0)
			log_rl(s, "cannot send a reply: %s", strerror(errno));
	}
	return true;
}

void mip_server_input(struct mip_server *s)
{
	/* A bounded batch per event-loop turn: the loop's other work goes on
	 * under a flood. */
	for (int i = 0; i < 256 && s->fd >= 0; i++)
		if (!input_one(s))
			break;
}
