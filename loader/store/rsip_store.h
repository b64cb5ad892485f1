/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The control plane's durable state: one SQLite database (WAL journal,
 * synchronous=FULL, one transaction per state change) per router instance
 * at STATE_DIR/INSTANCE.db.  Tables:
 *   hosts     enrolled hosts: name, secret, optional fixed LAN address
 *   clients   RSIP registrations: client id, host name, LAN address, map
 *             host id and global address index while it holds bindings
 *   bindings  port and SPI blocks: owner, range, state (active or
 *             quarantined) and when that state ends
 * The BPF maps are a cache of the active bindings (rsip_server.c).
 */
#ifndef XDNAT_RSIP_STORE_H
#define XDNAT_RSIP_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sqlite3.h>
#include "rsip_auth.h"

#define XDNAT_STATE_DIR  "/var/lib/xdnat"

enum { RSIP_KIND_PORTS = 1, RSIP_KIND_SPI = 2 };
enum { RSIP_BIND_ACTIVE = 1, RSIP_BIND_QUARANTINE = 2 };

/* Create the directory (0700) if needed, open/create the database of router
 * instance @instance (STATE_DIR/INSTANCE.db) and its schema.  Errors are
 * printed. */
int rsip_db_open(const char *state_dir, const char *instance, sqlite3 **db);
void rsip_db_close(sqlite3 *db);
int rsip_db_exec(sqlite3 *db, const char *sql);  /* prints errors */
int rsip_db_begin(sqlite3 *db);
int rsip_db_commit(sqlite3 *db);
void rsip_db_rollback(sqlite3 *db);

/* Operator side (xdnatctl). lan_be 0: any LAN address (taken from the
 * connection the host registers over). */
int rsip_enroll(sqlite3 *db, const char *name, uint32_t lan_be, uint8_t secret[RSIP_SECRET_LEN]);
int rsip_unenroll(sqlite3 *db, const char *name);
int rsip_host_secret(sqlite3 *db, const char *name, uint8_t secret[RSIP_SECRET_LEN], uint32_t *lan_be);
/* Print enrolled hosts, registrations and bindings (lease remaining). */
int rsip_list(sqlite3 *db, bool json, FILE *f, uint64_t now_ms);

/* Small named integers the daemon records for the operator's tools
 * (e.g. "quarantine"); get returns -ENOENT if never set. */
int rsip_setting_set(sqlite3 *db, const char *key, int64_t value);
int rsip_setting_get(sqlite3 *db, const char *key, int64_t *value);

uint64_t rsip_now_ms(void);

/* The pinned maps as the server's datapath backend (rsip_server.h). */
struct rsip_backend;
struct xd_maps;
void rsip_backend_maps(struct rsip_backend *be, struct xd_maps *m);

#endif
