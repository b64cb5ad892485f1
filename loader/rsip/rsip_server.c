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
#include "rsip_server_int.h"

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

/* ------------------------------------------------------ store records */

int rs_get_client(struct rsip_server *s, uint32_t id, struct xd_client *c)
{
	int rc = OPS(s)->client_get(s->st, id, c);

	if (rc < 0)
		xd_err("RSIP: %s", xd_store_error(s->st));
	return rc;
}

int rs_get_binding(struct rsip_server *s, uint32_t id, struct xd_binding *b)
{
	int rc = OPS(s)->binding_get(s->st, id, b);

	if (rc < 0)
		xd_err("RSIP: %s", xd_store_error(s->st));
	return rc;
}

/* The enrolled name of client @id into @name; 1 found, 0 not, <0 error. */
int rs_client_name(struct rsip_server *s, uint32_t id, char name[RSIP_KEYID_MAX + 1])
{
	struct xd_client c;
	int rc = rs_get_client(s, id, &c);

	if (rc == 1)
		snprintf(name, RSIP_KEYID_MAX + 1, "%s", c.name);
	return rc;
}

int rsip_server_open(struct rsip_server *s, const struct rsip_config *cfg,
		     const struct rsip_backend *be)
{
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->be = *be;
	s->listen_fd = -1;
	s->now_ms = cfg->now_ms ? cfg->now_ms : rsip_now_ms;
	char err[256];

	if (xd_store_open(cfg->state_dir, cfg->instance, 0, &s->st, err, sizeof(err))) {
		xd_err("%s", err);
		return -EIO;
	}
	/* xdnatctl rsip evict quarantines with the daemon's setting. */
	if (OPS(s)->setting_set(s->st, "quarantine", cfg->quarantine))
		xd_warn("cannot record the quarantine in the state database: %s", xd_store_error(s->st));
	if (rsip_server_reconcile(s))
		xd_warn("the maps could not be fully reconciled with the state database");
	/* What lapsed while we were down; in a cluster (an etcd store) only
	 * the elected expiry worker expires (cluster_elect.h). */
	if (strcmp(OPS(s)->name, "etcd"))
		rsip_server_sweep(s);
	if (rs_idx_build(s))
		xd_warn("cannot build the free-range index: retrying at the first allocation");
	return 0;
}

void rsip_server_attach(struct rsip_server *s, struct xd_store *st, const struct rsip_backend *be,
			const struct rsip_cert_ops *certs)
{
	int64_t q;

	memset(s, 0, sizeof(*s));
	rsip_config_defaults(&s->cfg);
	s->st = st;
	s->be = *be;
	if (certs)
		s->certs = *certs;
	s->listen_fd = -1;
	s->now_ms = rsip_now_ms;
	/* The quarantine xdnatd runs with (recorded when its server starts). */
	if (st->ops->setting_get(st, "quarantine", &q) == 0 && q >= 0 && q <= UINT32_MAX)
		s->cfg.quarantine = (uint32_t)q;
}

void rsip_server_detach(struct rsip_server *s)
{
	s->st = NULL;
	rsip_server_close(s);
}

void rsip_server_close(struct rsip_server *s)
{
	if (s->conns) {
		for (unsigned i = 0; i < s->n_slots; i++)
			rs_conn_close(&s->conns[i]);
		free(s->conns);
		s->conns = NULL;
		s->n_slots = 0;
	}
	free(s->seen_cn);
	s->seen_cn = NULL;
	s->n_seen = s->seen_next = 0;
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
	xd_store_close(s->st);
	s->st = NULL;
	free(s->defer);
	s->defer = NULL;
	s->n_defer = s->cap_defer = 0;
	rs_idx_free(&s->idx);
}
