// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatd's Mobile IPv4 home agent (docs/ROAMING.md): the registration
 * server of loader/rsip/mip_server.c on UDP 434, run in the event loop of
 * xdnatd.c (one thread, so its map writes are the one writer's), with the
 * datapath's care-of endpoints (xd_coa_*, maps/xdnat_abi.h) as its backend.
 */
#include "xdnatd.h"

/* ------------------------------------------------- the datapath backend */

static int dp_set(void *ctx, uint32_t host, enum mip_encap encap, uint32_t addr, uint16_t port)
{
	struct daemon *d = ctx;
	static uint32_t generation;

	if (encap != MIP_ENCAP_UDP)
		return -EOPNOTSUPP;   /* the datapath tunnels in UDP only (dp.ipip false) */
	return xd_coa_set(&d->maps, host, addr, port, XDNAT_COA_F_ACTIVE, ++generation);
}

static int dp_clear(void *ctx, uint32_t host)
{
	struct daemon *d = ctx;

	return xd_coa_clear(&d->maps, host);
}

static int dp_get(void *ctx, uint32_t host, enum mip_encap *encap, uint32_t *addr, uint16_t *port)
{
	struct daemon *d = ctx;
	struct xdnat_coa c;

	if (xd_coa_get(&d->maps, host, &c) || !(c.ep.flags & XDNAT_COA_F_ACTIVE))
		return 0;
	*encap = MIP_ENCAP_UDP;
	*addr = c.ep.addr;
	*port = c.ep.port;
	return 1;
}

/* ------------------------------------------------------------- metrics */

/* The HTTP thread reads a text the event loop renders after every change. */
static pthread_mutex_t metrics_mu = PTHREAD_MUTEX_INITIALIZER;
static char *metrics_text;
static size_t metrics_len;

static void render_metrics(struct daemon *d)
{
	char *buf = NULL, *old;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return;
	mip_server_metrics(&d->mip, f);
	if (fclose(f)) {
		free(buf);
		return;
	}
	pthread_mutex_lock(&metrics_mu);
	old = metrics_text;
	metrics_text = buf;
	metrics_len = len;
	pthread_mutex_unlock(&metrics_mu);
	free(old);
}

void xdd_mobile_metrics(void *arg, FILE *f)
{
	(void)arg;
	pthread_mutex_lock(&metrics_mu);
	if (metrics_text)
		fwrite(metrics_text, 1, metrics_len, f);
	pthread_mutex_unlock(&metrics_mu);
}

/* ------------------------------------------------------------ lifecycle */

int xdd_start_mobile(struct daemon *d)
{
	struct mip_config cfg;
	struct mip_dp dp = { .ctx = d, .set = dp_set, .clear = dp_clear, .get = dp_get,
			     .ipip = false };

	if (!d->rsip_on) {
		xd_err("--mobile needs the RSIP server");
		return -EINVAL;
	}
	mip_config_defaults(&cfg);
	memcpy(cfg.gaddrs, d->o.gaddrs, sizeof(cfg.gaddrs));
	cfg.n_gaddrs = d->o.n_gaddrs;
	cfg.max_lifetime = (uint16_t)d->o.mobile_lifetime;
	cfg.keepalive_s = (uint16_t)d->o.mobile_keepalive;
	mip_server_init(&d->mip, &cfg, d->rsip.st, &d->rsip, &dp);
	/* Every address, so the request's destination (IP_PKTINFO) tells
	 * which G it was for; anything not for a G is dropped. */
	if (mip_server_listen(&d->mip, htonl(INADDR_ANY), MIP_PORT)) {
		mip_server_free(&d->mip);
		return -EADDRNOTAVAIL;
	}
	mip_server_adopt(&d->mip);
	d->mip_on = true;
	render_metrics(d);
	printf("xdnatd: Mobile IPv4 home agent on UDP %u of the global address%s (max lifetime "
	       "%us, NAT keepalive %us)\n", MIP_PORT, d->o.n_gaddrs == 1 ? "" : "es",
	       cfg.max_lifetime, cfg.keepalive_s);
	return 0;
}

void xdd_stop_mobile(struct daemon *d)
{
	if (!d->mip_on)
		return;
	/* The care-of endpoints stay in the maps: a restarted xdnatd adopts
	 * them (mip_server_adopt), the hosts keep their traffic meanwhile. */
	mip_server_free(&d->mip);
	d->mip_on = false;
}

int xdd_mobile_run(struct daemon *d, bool readable)
{
	uint64_t before = d->mip.stat[MIP_ST_EXPIRED];
	int wait;

	if (!d->mip_on)
		return 1000;
	if (readable)
		mip_server_input(&d->mip);
	wait = mip_server_tick(&d->mip);
	if (readable || d->mip.stat[MIP_ST_EXPIRED] != before)
		render_metrics(d);
	return wait;
}
