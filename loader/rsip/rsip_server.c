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

/* ------------------------------------------------------------ SQL helpers */

sqlite3_stmt *rs_prep(struct rsip_server *s, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		xd_err("state database: %s (%s)", sqlite3_errmsg(s->db), sql);
		return NULL;
	}
	return st;
}

/* Run a statement with up to 4 integer parameters; -EIO on failure. */
int rs_exec4(struct rsip_server *s, const char *sql, int n, int64_t a, int64_t b, int64_t c, int64_t d)
{
	sqlite3_stmt *st = rs_prep(s, sql);
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
int rs_query4(struct rsip_server *s, const char *sql, int64_t *out, int n, int64_t a, int64_t b,
		  int64_t c, int64_t d)
{
	sqlite3_stmt *st = rs_prep(s, sql);
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


int rs_get_client(struct rsip_server *s, uint32_t id, struct client *c)
{
	sqlite3_stmt *st = rs_prep(s, "SELECT lan_addr, host_id, gidx FROM clients WHERE client_id=?");
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

int rs_get_binding(struct rsip_server *s, uint32_t id, struct binding *b)
{
	sqlite3_stmt *st = rs_prep(s, "SELECT client_id, kind, gidx, first, last, state, until_ms "
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


/* The enrolled name of client @id into @name; 1 found, 0 not, <0 error. */
int rs_client_name(struct rsip_server *s, uint32_t id, char name[RSIP_KEYID_MAX + 1])
{
	sqlite3_stmt *st = rs_prep(s, "SELECT name FROM clients WHERE client_id=?");
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
	if (rs_idx_build(s))
		xd_warn("cannot build the free-range index: retrying at the first allocation");
	return 0;
}

void rsip_server_close(struct rsip_server *s)
{
	if (s->conns) {
		for (unsigned i = 0; i < s->max_conns; i++)
			rs_conn_close(&s->conns[i]);
		free(s->conns);
		s->conns = NULL;
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
	rsip_db_close(s->db);
	s->db = NULL;
	rs_idx_free(&s->idx);
}
