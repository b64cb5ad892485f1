// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Durable control-plane state in SQLite: see rsip_store.h. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <openssl/crypto.h>
#include "rsip_store.h"
#include "xdnat.h"

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS hosts("
	"  name TEXT PRIMARY KEY, secret BLOB NOT NULL, lan_addr INTEGER NOT NULL DEFAULT 0,"
	"  enrolled_ms INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS clients("
	"  client_id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
	"  lan_addr INTEGER NOT NULL, host_id INTEGER NOT NULL DEFAULT 0,"
	"  gidx INTEGER NOT NULL DEFAULT -1, registered_ms INTEGER NOT NULL,"
	"  last_seen_ms INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS bindings("
	"  bind_id INTEGER PRIMARY KEY AUTOINCREMENT, client_id INTEGER NOT NULL,"
	"  owner TEXT NOT NULL DEFAULT '', kind INTEGER NOT NULL, gidx INTEGER NOT NULL, first INTEGER NOT NULL,"
	"  last INTEGER NOT NULL, state INTEGER NOT NULL, until_ms INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS bindings_by_range ON bindings(kind, gidx, first);"
	"CREATE INDEX IF NOT EXISTS bindings_by_until ON bindings(state, until_ms);"
	"DROP INDEX IF EXISTS bindings_by_client;"
	"CREATE INDEX IF NOT EXISTS bindings_by_client_kind ON bindings(client_id, kind, state, first);"
	"CREATE INDEX IF NOT EXISTS bindings_by_first ON bindings(kind, first);"
	"CREATE INDEX IF NOT EXISTS clients_by_host_id ON clients(host_id, last_seen_ms);"
	"CREATE INDEX IF NOT EXISTS clients_by_lan ON clients(lan_addr);"
	"CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value INTEGER NOT NULL);";

uint64_t rsip_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int rsip_db_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		xd_err("state database: %s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

int rsip_db_begin(sqlite3 *db) { return rsip_db_exec(db, "BEGIN IMMEDIATE"); }
int rsip_db_commit(sqlite3 *db) { return rsip_db_exec(db, "COMMIT"); }
void rsip_db_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* Databases created before bindings had an owner (the enrolled name, so
 * that a quarantined block stays attributable after its registration
 * ends): add the column and fill it from the registrations still there. */
static int migrate_owner(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (rsip_db_begin(db))
		return -EIO;
	rc = sqlite3_prepare_v2(db, "SELECT owner FROM bindings LIMIT 0", -1, &st, NULL);
	sqlite3_finalize(st);
	if (rc == SQLITE_OK) {
		rsip_db_rollback(db);
		return 0;
	}
	if (rsip_db_exec(db, "ALTER TABLE bindings ADD COLUMN owner TEXT NOT NULL DEFAULT ''") ||
	    rsip_db_exec(db, "UPDATE bindings SET owner=COALESCE((SELECT name FROM clients c "
			     "WHERE c.client_id=bindings.client_id), '')") ||
	    rsip_db_commit(db)) {
		rsip_db_rollback(db);
		return -EIO;
	}
	return 0;
}

int rsip_db_open(const char *state_dir, const char *instance, sqlite3 **dbp)
{
	char path[PATH_MAX];
	sqlite3 *db = NULL;
	int n;

	*dbp = NULL;
	if (mkdir(state_dir, 0700) && errno != EEXIST) {
		xd_err("cannot create state directory %s: %s", state_dir, strerror(errno));
		return -errno;
	}
	if (!xd_valid_instance(instance)) {
		xd_err("invalid instance name '%s'", instance ? instance : "");
		return -EINVAL;
	}
	n = snprintf(path, sizeof(path), "%s/%s.db", state_dir, instance);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		xd_err("state directory path too long");
		return -ENAMETOOLONG;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		xd_err("cannot open state database %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return -EIO;
	}
	sqlite3_busy_timeout(db, 5000);
	if (rsip_db_exec(db, "PRAGMA journal_mode=WAL") ||
	    rsip_db_exec(db, "PRAGMA synchronous=FULL") ||
	    rsip_db_exec(db, "PRAGMA foreign_keys=ON") ||
	    rsip_db_exec(db, schema) || migrate_owner(db)) {
		xd_err("cannot initialise state database %s", path);
		sqlite3_close(db);
		return -EIO;
	}
	if (chmod(path, 0600))
		xd_warn("cannot chmod 600 %s: %s", path, strerror(errno));
	*dbp = db;
	return 0;
}

void rsip_db_close(sqlite3 *db)
{
	if (db && sqlite3_close(db) != SQLITE_OK)
		xd_warn("state database did not close cleanly: %s", sqlite3_errmsg(db));
}

int rsip_enroll(sqlite3 *db, const char *name, uint32_t lan_be, uint8_t secret[RSIP_SECRET_LEN])
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!rsip_valid_name(name, strlen(name))) {
		xd_err("'%s' is not a valid host name (1-%d of [A-Za-z0-9_.-])", name, RSIP_KEYID_MAX);
		return -EINVAL;
	}
	if (rsip_random(secret, RSIP_SECRET_LEN)) {
		xd_err("no randomness for the secret");
		return -EIO;
	}
	if (sqlite3_prepare_v2(db, "INSERT INTO hosts(name, secret, lan_addr, enrolled_ms) "
			       "VALUES(?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
			       "secret=excluded.secret, lan_addr=excluded.lan_addr", -1, &st, NULL)) {
		xd_err("state database: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, secret, RSIP_SECRET_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, lan_be);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)rsip_now_ms());
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	if (rc)
		xd_err("cannot enrol %s: %s", name, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

int rsip_unenroll(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, "DELETE FROM hosts WHERE name=?", -1, &st, NULL)) {
		xd_err("state database: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	if (rc)
		xd_err("cannot remove %s: %s", name, sqlite3_errmsg(db));
	else if (sqlite3_changes(db) == 0) {
		xd_err("no enrolled host '%s'", name);
		rc = -ENOENT;
	}
	sqlite3_finalize(st);
	return rc;
}

int rsip_host_secret(sqlite3 *db, const char *name, uint8_t secret[RSIP_SECRET_LEN], uint32_t *lan_be)
{
	sqlite3_stmt *st = NULL;
	int rc = -ENOENT;

	if (sqlite3_prepare_v2(db, "SELECT secret, lan_addr FROM hosts WHERE name=?", -1, &st, NULL))
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == RSIP_SECRET_LEN) {
		memcpy(secret, sqlite3_column_blob(st, 0), RSIP_SECRET_LEN);
		*lan_be = (uint32_t)sqlite3_column_int64(st, 1);
		rc = 0;
	} else {
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? -ENOENT : -EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * Three kinds of rows, by host name then binding:
 *   - enrolled hosts with their registration (if any) and its bindings;
 *   - registrations (and bindings) of hosts no longer enrolled;
 *   - bindings whose registration ended (de-registered, evicted): they are
 *     quarantined until their deadline and listed under their owner's name.
 * An enrolled host that is not registered but has such bindings is listed
 * by them only.
 */
static const char list_sql[] =
	"SELECT h.name, 1, h.lan_addr, c.client_id, c.lan_addr, c.host_id, "
	"       b.bind_id, b.kind, b.first, b.last, b.state, b.until_ms "
	"FROM hosts h LEFT JOIN clients c ON c.name = h.name "
	"LEFT JOIN bindings b ON b.client_id = c.client_id "
	"WHERE c.client_id IS NOT NULL OR NOT EXISTS (SELECT 1 FROM bindings o WHERE o.owner = h.name "
	"      AND NOT EXISTS (SELECT 1 FROM clients x WHERE x.client_id = o.client_id)) "
	"UNION ALL "
	"SELECT c.name, 0, 0, c.client_id, c.lan_addr, c.host_id, "
	"       b.bind_id, b.kind, b.first, b.last, b.state, b.until_ms "
	"FROM clients c LEFT JOIN bindings b ON b.client_id = c.client_id "
	"WHERE NOT EXISTS (SELECT 1 FROM hosts h WHERE h.name = c.name) "
	"UNION ALL "
	"SELECT b.owner, EXISTS (SELECT 1 FROM hosts h WHERE h.name = b.owner), "
	"       COALESCE((SELECT h.lan_addr FROM hosts h WHERE h.name = b.owner), 0), NULL, NULL, NULL, "
	"       b.bind_id, b.kind, b.first, b.last, b.state, b.until_ms "
	"FROM bindings b WHERE NOT EXISTS (SELECT 1 FROM clients x WHERE x.client_id = b.client_id) "
	"ORDER BY 1, 7";

int rsip_list(sqlite3 *db, bool json, FILE *f, uint64_t now_ms)
{
	sqlite3_stmt *st = NULL;
	struct xd_json j;
	char a[INET_ADDRSTRLEN];
	int rc;

	if (sqlite3_prepare_v2(db, list_sql, -1, &st, NULL)) {
		xd_err("state database: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	if (json) {
		xd_json_begin(&j, f);
		xd_json_arr_open(&j, "bindings");
	} else {
		fprintf(f, "%-16s %-15s %-9s %-7s %-8s %-5s %-23s %-10s %s\n", "host", "lan", "client",
			"hostid", "bind", "kind", "range", "state", "remaining");
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		bool enrolled = sqlite3_column_int(st, 1) != 0;
		bool reg = sqlite3_column_type(st, 3) != SQLITE_NULL;
		bool bound = sqlite3_column_type(st, 6) != SQLITE_NULL;
		uint32_t lan = (uint32_t)sqlite3_column_int64(st, reg ? 4 : 2);
		int kind = sqlite3_column_int(st, 7), state = sqlite3_column_int(st, 10);
		uint32_t first = (uint32_t)sqlite3_column_int64(st, 8), last = (uint32_t)sqlite3_column_int64(st, 9);
		int64_t until = sqlite3_column_int64(st, 11);
		int64_t left = bound ? (until - (int64_t)now_ms) / 1000 : 0;
		char range[32] = "-", host[48];

		if (left < 0)
			left = 0;
		if (!name || !*name)
			name = "?";   /* a binding older than owner names */
		if (bound)
			snprintf(range, sizeof(range), kind == RSIP_KIND_SPI ? "0x%x-0x%x" : "%u-%u",
				 first, last);
		if (json) {
			xd_json_obj_open(&j, NULL);
			xd_json_str(&j, "host", name);
			xd_json_bool(&j, "enrolled", enrolled);
			xd_json_str(&j, "lan", lan ? xd_ipstr(lan, a) : "any");
			xd_json_bool(&j, "registered", reg);
			if (reg) {
				xd_json_u64(&j, "client_id", (uint64_t)sqlite3_column_int64(st, 3));
				xd_json_u64(&j, "host_id", (uint64_t)sqlite3_column_int64(st, 5));
			}
			if (bound) {
				xd_json_u64(&j, "bind_id", (uint64_t)sqlite3_column_int64(st, 6));
				xd_json_str(&j, "kind", kind == RSIP_KIND_SPI ? "spi" : "ports");
				xd_json_u64(&j, "first", first);
				xd_json_u64(&j, "last", last);
				xd_json_str(&j, "state", state == RSIP_BIND_ACTIVE ? "active" : "quarantine");
				xd_json_u64(&j, "remaining_s", (uint64_t)left);
			}
			xd_json_obj_close(&j);
		} else {
			char cid[16] = "-", hid[16] = "-", bid[16] = "-", rem[24] = "-";

			if (reg) {
				snprintf(cid, sizeof(cid), "%lld", (long long)sqlite3_column_int64(st, 3));
				snprintf(hid, sizeof(hid), "%lld", (long long)sqlite3_column_int64(st, 5));
			}
			if (bound) {
				snprintf(bid, sizeof(bid), "%lld", (long long)sqlite3_column_int64(st, 6));
				snprintf(rem, sizeof(rem), "%llds", (long long)left);
			}
			/* A host no longer enrolled is marked with a '*'. */
			snprintf(host, sizeof(host), "%s%s", name, enrolled ? "" : "*");
			fprintf(f, "%-16s %-15s %-9s %-7s %-8s %-5s %-23s %-10s %s\n", host,
				lan ? xd_ipstr(lan, a) : "any", cid, hid, bid,
				bound ? (kind == RSIP_KIND_SPI ? "spi" : "ports") : "-", range,
				bound ? (state == RSIP_BIND_ACTIVE ? "active" : "quarantine") : "-", rem);
		}
	}
	if (json) {
		xd_json_arr_close(&j);
		xd_json_end(&j);
	}
	if (rc != SQLITE_DONE)
		xd_err("state database: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int rsip_setting_set(sqlite3 *db, const char *key, int64_t value)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, "INSERT INTO settings(key, value) VALUES(?, ?) "
			       "ON CONFLICT(key) DO UPDATE SET value=excluded.value", -1, &st, NULL)) {
		xd_err("state database: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, value);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	if (rc)
		xd_err("state database: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

int rsip_setting_get(sqlite3 *db, const char *key, int64_t *value)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key=?", -1, &st, NULL)) {
		xd_err("state database: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*value = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
	}
	sqlite3_finalize(st);
	return rc;
}
