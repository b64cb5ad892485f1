// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatd's services beside the datapath: the RSIP server, the Local CA (CRL,
 * revocation notices), counter totals, metrics and the control socket.
 */
#include <grp.h>
#include <sys/resource.h>
#include "xdnatd.h"
#include "xdnat_router.skel.h"

/* ---------------------------------------------------------- RSIP server */

/* The LAN's network (for QUERY: which destinations are local). */
/* The LAN network of @addr_be: the prefix of that address on @ifname, or,
 * for a virtual address not (yet) on it (VRRP backup), the prefix of the
 * interface address whose network holds it; else @addr_be/32. */
static void lan_network(const char *ifname, uint32_t addr_be, uint32_t *net, uint32_t *mask)
{
	struct ifaddrs *ifa, *i;
	bool exact = false;

	*net = addr_be;
	*mask = 0xffffffffu;
	if (getifaddrs(&ifa))
		return;
	for (i = ifa; i && !exact; i = i->ifa_next) {
		uint32_t a, m;

		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, ifname) ||
		    !i->ifa_netmask)
			continue;
		a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
		m = ((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr;
		exact = a == addr_be;
		if (exact || (a & m) == (addr_be & m)) {
			*mask = m;
			*net = addr_be & m;
		}
	}
	freeifaddrs(ifa);
}

/*
 * Shared IKE ports: mark them in the pinned port map on every global
 * address (before the hooks run and before RSIP hands out ports), and free
 * the ones an earlier run shared that are no longer configured.  Default
 * hosts set with xdnatctl survive a restart.
 */
int xdd_apply_shared_ike(struct daemon *d)
{
	struct xd_maps m;
	int rc;

	if (xd_maps_open(d->o.pin_base, d->o.instance, &m))
		return -EIO;
	rc = xd_shared_ports_apply(&m, d->o.shared_ike, d->o.n_shared_ike);
	/* The router's own service ports, the same way (after the shared ones,
	 * which they must not overlap). */
	if (!rc)
		rc = xd_router_ports_apply(&m, d->o.router_ports, d->o.n_router_ports);
	xd_maps_close(&m);
	if (!rc && d->o.n_shared_ike) {
		char list[64] = "";
		size_t l = 0;

		for (unsigned i = 0; i < d->o.n_shared_ike; i++)
			l += (size_t)snprintf(list + l, sizeof(list) - l, "%s%u", i ? "," : "",
					      d->o.shared_ike[i]);
		printf("xdnatd: shared IKE ports %s (IKE and ESP-in-UDP steered by SPI)\n", list);
	}
	return rc;
}

int xdd_start_rsip(struct daemon *d)
{
	struct rsip_config *c = &d->o.rcfg;
	struct rsip_backend be;
	char a[INET_ADDRSTRLEN], where[400];

	if (xd_maps_open(d->o.pin_base, d->o.instance, &d->maps))
		return -EIO;
	c->instance = d->o.instance;
	memcpy(c->gaddrs, d->o.gaddrs, sizeof(c->gaddrs));
	c->n_gaddrs = d->o.n_gaddrs;
	c->router_lan = d->o.lan_addr;
	c->max_hosts = d->o.max_hosts;
	c->spi_bits = d->o.spi_bits;
	/* Announce the shared IKE ports to the hosts (docs/SHARED-IKE.md):
	 * 500 carries plain IKE, every other shared port RFC 3948 framing,
	 * as the datapath treats them. */
	_Static_assert(XDNAT_MAX_SHARED_PORTS <= RSIP_SHARED_IKE_MAX, "shared ports fit the wire");
	memset(&c->shared_ike, 0, sizeof(c->shared_ike));
	for (unsigned i = 0; i < d->o.n_shared_ike; i++) {
		c->shared_ike.port[i] = d->o.shared_ike[i];
		c->shared_ike.framing[i] = d->o.shared_ike[i] == XDNAT_IKE_PORT ?
			XDNAT_IKE_FRAMING_IKE : XDNAT_IKE_FRAMING_RFC3948;
	}
	c->shared_ike.n = d->o.n_shared_ike;
	lan_network(d->o.lan, d->o.lan_addr, &c->local_net, &c->local_mask);
	rsip_backend_maps(&be, &d->maps);
	if (rsip_server_open(&d->rsip, c, &be)) {
		xd_maps_close(&d->maps);
		return -EIO;
	}
	/* LAN side only: the router's LAN address, bound to the LAN device. */
	d->rsip.per_addr_max = d->o.rsip_per_addr;
	d->rsip.preauth_s = d->o.rsip_preauth;
	if (rsip_server_listen(&d->rsip, d->o.lan_addr, (uint16_t)d->o.rsip_port, d->o.lan,
			       d->o.rsip_max_clients, d->o.rsip_idle)) {
		rsip_server_close(&d->rsip);
		xd_maps_close(&d->maps);
		return -EIO;
	}
	d->rsip_on = true;
	printf("xdnatd: RSIP server on %s:%u (dev %s), state %s\n", xd_ipstr(d->o.lan_addr, a),
	       d->o.rsip_port, d->o.lan, xd_store_where(c->state_dir, d->o.instance, where, sizeof(where)));
	/* A shared store: every router's writes reach these maps too. */
	if (!strcmp(d->rsip.st->ops->name, "etcd")) {
		if (xd_csync_start(&d->rsip, &d->maps, &d->csync)) {
			xdd_stop_rsip(d);
			return -EIO;
		}
		printf("xdnatd: cluster sync: the maps follow %s\n", where);
	}
	return 0;
}

void xdd_stop_rsip(struct daemon *d)
{
	xd_csync_stop(d->csync);
	d->csync = NULL;
	if (!d->rsip_on)
		return;
	rsip_server_close(&d->rsip);
	xd_maps_close(&d->maps);
	d->rsip_on = false;
}

/* ------------------------------------------------------------- Local CA */

static int crl_http(void *ctx, const char *path, char **body, size_t *len, const char **ctype)
{
	struct daemon *d = ctx;
	int status = 503;

	(void)path;
	pthread_mutex_lock(&d->crl_mu);
	if (d->crl && (*body = malloc(d->crl_len))) {
		memcpy(*body, d->crl, d->crl_len);
		*len = d->crl_len;
		*ctype = "application/pkix-crl";
		status = 200;
	}
	pthread_mutex_unlock(&d->crl_mu);
	return status;
}

/*
 * Revocation notices: every remote the datapath saw sending ESP/AH to a host
 * whose certificate was just revoked gets one notice with those of the
 * revoked certificates it dealt with.
 */
static void notify_peers(struct daemon *d, const struct xd_ca_revoked *rv, unsigned n)
{
	int fd = bpf_map__fd(d->skel->maps.xdnat_peers);
	struct xdnat_peer_key k, next;
	uint32_t remotes[256];
	unsigned nr = 0, guard = 0;
	struct lca_notice_entry *e = calloc(n, sizeof(*e));
	size_t crl_len = 0;
	const uint8_t *crl = xd_ca_crl(d->ca, &crl_len);
	int rc;

	if (!e) {
		xd_warn("out of memory: no revocation notices");
		return;
	}
	for (rc = bpf_map_get_next_key(fd, NULL, &next); !rc && guard++ < XDNAT_PEER_ENTRIES;
	     rc = bpf_map_get_next_key(fd, &k, &next)) {
		k = next;
		for (unsigned i = 0; i < n; i++) {
			bool dup = false;

			if (!rv[i].dp_host_id || rv[i].dp_host_id != k.host_id)
				continue;
			for (unsigned j = 0; j < nr; j++)
				dup |= remotes[j] == k.remote;
			if (!dup && nr < sizeof(remotes) / sizeof(remotes[0]))
				remotes[nr++] = k.remote;
		}
	}
	for (unsigned r = 0; r < nr; r++) {
		struct lca_err err = { { 0 } };
		unsigned char *der = NULL;
		size_t len = 0;
		unsigned m = 0;
		char what[96], a[INET_ADDRSTRLEN];

		for (unsigned i = 0; i < n; i++) {
			struct xdnat_peer_key pk = { .host_id = rv[i].dp_host_id, .remote = remotes[r] };
			struct xdnat_peer_val pv;

			if (!rv[i].dp_host_id || bpf_map_lookup_elem(fd, &pk, &pv))
				continue;
			snprintf(e[m].serial, sizeof(e[m].serial), "%.40s", rv[i].serial);
			snprintf(e[m].identity, sizeof(e[m].identity), "%s", rv[i].identity);
			e[m].revoked_at = rv[i].revoked_at;
			e[m].reason = rv[i].reason;
			m++;
		}
		if (!m)
			continue;
		if (lca_notice_make(xd_ca_lca(d->ca), e, m, crl, crl_len, (int64_t)time(NULL), &der, &len,
				    &err)) {
			xd_warn("revocation notice to %s: %s", xd_ipstr(remotes[r], a), err.msg);
			continue;
		}
		snprintf(what, sizeof(what), "%u certificate%s, first %.16s...", m, m == 1 ? "" : "s",
			 e[0].serial);
		if (!xd_notifier_queue(d->notifier, remotes[r], der, len, what))
			printf("xdnatd: revocation notice (%s) to %s\n", what, xd_ipstr(remotes[r], a));
		OPENSSL_free(der);
	}
	fflush(stdout);
	free(e);
}

/* New revocations (from any process on the store): a new CRL, published. */
void xdd_ca_tick(struct daemon *d)
{
	struct xd_ca_revoked rv[32];
	unsigned n = 0;
	int rc = xd_ca_poll(d->ca, (int64_t)time(NULL), rv, sizeof(rv) / sizeof(rv[0]), &n);

	for (unsigned i = 0; i < n; i++)
		printf("xdnatd: certificate %s of '%s' (%s) revoked: %s\n", rv[i].serial, rv[i].host,
		       rv[i].identity, lca_reason_name(rv[i].reason));
	if (n)
		fflush(stdout);
	if (n && d->notifier)
		notify_peers(d, rv, n);
	if (rc == 1) {
		size_t len;
		const uint8_t *crl = xd_ca_crl(d->ca, &len);
		uint8_t *copy = malloc(len);

		if (!copy) {
			xd_warn("out of memory: the published CRL is not the newest");
			return;
		}
		memcpy(copy, crl, len);
		pthread_mutex_lock(&d->crl_mu);
		free(d->crl);
		d->crl = copy;
		d->crl_len = len;
		pthread_mutex_unlock(&d->crl_mu);
	}
}

void xdd_stop_ca(struct daemon *d)
{
	if (!d->ca)
		return;
	xd_httpd_free(d->crl_httpd);
	d->crl_httpd = NULL;
	xd_notifier_close(d->notifier);
	d->notifier = NULL;
	memset(&d->rsip.certs, 0, sizeof(d->rsip.certs));
	xd_ca_close(d->ca);
	d->ca = NULL;
	free(d->crl);
	d->crl = NULL;
	pthread_mutex_destroy(&d->crl_mu);
}

/* The CRL server's connection limit, kept below the open-files limit with
 * room for everything else xdnatd holds: when the limit is reached new
 * connections are refused, not the process's other files. */
static unsigned crl_max_conns(unsigned want)
{
	const rlim_t spare = 256;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= want + spare)
		return want;
	want = rl.rlim_cur > 2 * spare ? (unsigned)(rl.rlim_cur - spare) : (unsigned)rl.rlim_cur / 4;
	xd_warn("--crl-max-conns lowered to %u for the open-files limit %llu", want ? want : 1,
		(unsigned long long)rl.rlim_cur);
	return want ? want : 1;
}

int xdd_start_ca(struct daemon *d)
{
	struct xd_ca_config cc = {
		.key_path = d->o.ca_key, .cert_path = d->o.ca_cert, .chain_path = d->o.ca_chain,
		.crl_url = d->o.crl_url, .crl_period_s = d->o.crl_period,
	};
	char a[INET_ADDRSTRLEN];
	unsigned n = 0;

	if (xd_ca_open(&cc, d->rsip.st, &d->ca))
		return -EINVAL;
	pthread_mutex_init(&d->crl_mu, NULL);
	xd_ca_rsip_ops(d->ca, &d->rsip.certs);
	/* Before recovery: the notices owed from before a crash go out too. */
	if (d->o.notify_port && xd_notifier_open(d->o.gaddrs[0], (uint16_t)d->o.notify_port,
						 &d->notifier))
		xd_warn("revocation notices are off (--notify-port 0 silences this)");
	/* Recovery: what lapsed while we were down is revoked (the store's
	 * allocations are the truth), then a fresh CRL. */
	if (xd_ca_reconcile(d->ca, (int64_t)time(NULL), &n)) {
		xdd_stop_ca(d);
		return -EIO;
	}
	if (n)
		printf("xdnatd: local CA: %u certificate%s revoked: their allocations lapsed while "
		       "xdnatd was down\n", n, n == 1 ? "" : "s");
	xdd_ca_tick(d);
	d->crl_httpd = xd_httpd_new(d->o.crl_addr, d->o.crl_port);
	if (d->crl_httpd)
		xd_httpd_limits(d->crl_httpd, &(struct xd_http_limits){
			.max_conns = crl_max_conns(d->o.crl_max_conns),
			.per_ip = d->o.crl_per_ip, .timeout_s = d->o.crl_timeout });
	if (!d->crl_httpd || xd_httpd_route(d->crl_httpd, "/crl/lca.crl", crl_http, d) ||
	    xd_httpd_start(d->crl_httpd)) {
		xd_err("cannot serve the CRL on %s:%u (--crl-listen)", xd_ipstr(d->o.crl_addr, a),
		       d->o.crl_port);
		xdd_stop_ca(d);
		return -EADDRNOTAVAIL;
	}
	printf("xdnatd: Local CA on, CRL at %s (served on %s:%u)\n", d->o.crl_url,
	       xd_ipstr(d->o.crl_addr, a), d->o.crl_port);
	return 0;
}

/* ---------------------------------------------------------------- main */

/* Counter totals across map generations (counters.h): with --rsip or
 * --state-dir.  The first save folds what an earlier generation left. */
void xdd_save_counters(struct daemon *d)
{
	int rc;

	if (!d->ctr_db)
		return;
	rc = xd_ctr_save(d->ctr_db, &d->cmaps);
	if (rc)
		xd_warn("cannot save the counters' totals: %s", strerror(-rc));
	d->ctr_saved_ms = rsip_now_ms();
}

void xdd_start_counters(struct daemon *d)
{
	if (!d->o.rsip && !d->o.state_dir_set)
		return;
	if (xd_maps_open(d->o.pin_base, d->o.instance, &d->cmaps))
		return;
	char err[256], where[400];

	if (xd_store_open(d->o.rcfg.state_dir, d->o.instance, 0, &d->ctr_db, err, sizeof(err))) {
		xd_warn("%s", err);
		xd_maps_close(&d->cmaps);
		xd_warn("counter totals are not kept across reboots");
		return;
	}
	xdd_save_counters(d);
	printf("xdnatd: counter totals in %s, saved every %u s\n",
	       xd_store_where(d->o.rcfg.state_dir, d->o.instance, where, sizeof(where)),
	       d->o.counters_interval);
}

void xdd_stop_counters(struct daemon *d)
{
	if (!d->ctr_db)
		return;
	xdd_save_counters(d);
	xd_store_close(d->ctr_db);
	d->ctr_db = NULL;
	xd_maps_close(&d->cmaps);
}

/* The metrics socket's path: --metrics unix:PATH or RUN_DIR/INSTANCE.metrics. */
static void metrics_path(const struct daemon *d, char *buf, size_t len)
{
	if (d->o.metrics_path)
		snprintf(buf, len, "%s", d->o.metrics_path);
	else
		snprintf(buf, len, RUN_DIR "/%s.metrics", d->o.instance);
}

int xdd_start_metrics(struct daemon *d)
{
	char a[INET_ADDRSTRLEN], path[108];
	gid_t gid = (gid_t)-1;

	if (d->o.metrics_group) {
		struct group *g = getgrnam(d->o.metrics_group);

		if (!g) {
			xd_err("--metrics-group: no group '%s'", d->o.metrics_group);
			return -ENOENT;
		}
		gid = g->gr_gid;
	}
	if (xd_maps_open(d->o.pin_base, d->o.instance, &d->mmaps))
		return -ENOENT;
	d->mmaps_open = true;
	metrics_path(d, path, sizeof(path));
	/* A local endpoint: a few connections, no per-address limit. */
	d->httpd = d->o.metrics_unix ? xd_httpd_new_unix(path, gid != (gid_t)-1 ? 0660 : 0600, gid)
				     : xd_httpd_new(d->o.metrics_addr, d->o.metrics_port);
	d->mctx = (struct xd_metrics_ctx){
		.maps = &d->mmaps, .instance = d->o.instance,
		/* (etcd keeps no counter baselines yet: a scrape must not wait
		 * on a store without quorum) */
		.state_dir = d->ctr_db && !xd_store_is_etcd(d->o.rcfg.state_dir) ? d->o.rcfg.state_dir
										: NULL,
		.elect = d->elect,
		.extra = d->o.mobile ? xdd_mobile_metrics : NULL, .extra_arg = d,
	};
	if (!d->httpd || xd_httpd_route(d->httpd, "/metrics", xd_metrics_http, &d->mctx) ||
	    xd_httpd_start(d->httpd)) {
		xd_httpd_free(d->httpd);
		d->httpd = NULL;
		if (d->o.metrics_explicit)
			return -EADDRNOTAVAIL;
		xd_warn("metrics endpoint disabled (use --metrics unix:PATH, ADDR:PORT or off)");
		return -EADDRNOTAVAIL;
	}
	if (d->o.metrics_unix)
		xd_info("metrics at /metrics on the UNIX socket %s (mode %s)", path,
			gid != (gid_t)-1 ? "0660" : "0600");
	else
		xd_info("metrics at http://%s:%u/metrics", xd_ipstr(d->o.metrics_addr, a),
			xd_httpd_port(d->httpd));
	return 0;
}

void xdd_stop_metrics(struct daemon *d)
{
	xd_httpd_free(d->httpd);
	d->httpd = NULL;
	if (d->mmaps_open)
		xd_maps_close(&d->mmaps);
	d->mmaps_open = false;
}

/* Control socket (ctl_sock.h): after a revocation through it, the new CRL
 * and the notices go out before the answer does. */
static void ctl_changed(void *arg)
{
	struct daemon *d = arg;

	if (d->ca)
		xdd_ca_tick(d);
}

void xdd_start_ctl(struct daemon *d)
{
	/* Every change to the instance comes through here (writer.h). */
	struct ctl_ops ops = {
		.rsip = d->rsip_on ? &d->rsip : NULL, .maps = d->rsip_on ? &d->maps : NULL,
		.instance = d->o.instance, .pin_base = d->o.pin_base,
		.state_dir = d->o.rcfg.state_dir ? d->o.rcfg.state_dir : XDNAT_STATE_DIR,
		.mip = d->mip_on ? &d->mip : NULL, .arg = d, .changed = ctl_changed,
	};
	char path[128];

	if (ctl_open(&ops, &d->ctl)) {
		xd_warn("no control socket: xdnatctl cannot change this instance while xdnatd runs");
		return;
	}
	ctl_sock_path(d->o.instance, path, sizeof(path));
	printf("xdnatd: control socket %s\n", path);
}

void xdd_stop_ctl(struct daemon *d)
{
	ctl_close(d->ctl);
	d->ctl = NULL;
}
