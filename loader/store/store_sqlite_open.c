// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The SQLite backend of the store (store.h): opening a database, the
 * schema's migrations (PRAGMA user_version) and the files' modes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lca.h"
#include "store_sqlite_int.h"

/* ------------------------------------------------------------ migrations */

/*
 * PRAGMA user_version: 0 is a database of a release before versions (its
 * tables, if any, are those of step 1, perhaps without bindings.owner);
 * each step brings it one version up, in its own transaction.
 */
static const char schema_v1[] =
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
	"CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value INTEGER NOT NULL);";
static const char indexes_v1[] =
	"CREATE INDEX IF NOT EXISTS bindings_by_range ON bindings(kind, gidx, first);"
	"CREATE INDEX IF NOT EXISTS bindings_by_until ON bindings(state, until_ms);"
	"DROP INDEX IF EXISTS bindings_by_client;"
	"CREATE INDEX IF NOT EXISTS bindings_by_client_kind ON bindings(client_id, kind, state, first);"
	"CREATE INDEX IF NOT EXISTS bindings_by_first ON bindings(kind, first);"
	"CREATE INDEX IF NOT EXISTS clients_by_host_id ON clients(host_id, last_seen_ms);"
	"CREATE INDEX IF NOT EXISTS clients_by_lan ON clients(lan_addr);";
/* v2: the counter baselines, the CA's announcement queue and the
 * enrolment each certificate was issued under, which their modules used to
 * create themselves. */
static const char schema_v2[] =
	"CREATE TABLE IF NOT EXISTS counters("
	"  key TEXT PRIMARY KEY, b0 INTEGER NOT NULL, b1 INTEGER NOT NULL, b2 INTEGER NOT NULL,"
	"  b3 INTEGER NOT NULL, has_last INTEGER NOT NULL, l0 INTEGER NOT NULL,"
	"  l1 INTEGER NOT NULL, l2 INTEGER NOT NULL, l3 INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS counters_meta("
	"  id INTEGER PRIMARY KEY CHECK (id = 1), gen TEXT NOT NULL, since_ms INTEGER NOT NULL,"
	"  saved_ms INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS ca_notified (serial TEXT PRIMARY KEY, at INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS ca_enrolment (serial TEXT PRIMARY KEY, host TEXT NOT NULL,"
	" tag BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS ca_enrolment_host ON ca_enrolment(host);";

static int migrate_v1(struct sq *q)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sq_exec(q, schema_v1))
		return -EIO;
	/* Databases created before bindings had an owner (the enrolled name,
	 * so that a quarantined block stays attributable after its
	 * registration ends): add the column, filled from the registrations. */
	rc = sqlite3_prepare_v2(q->db, "SELECT owner FROM bindings LIMIT 0", -1, &s, NULL);
	sqlite3_finalize(s);
	if (rc != SQLITE_OK &&
	    (sq_exec(q, "ALTER TABLE bindings ADD COLUMN owner TEXT NOT NULL DEFAULT ''") ||
	     sq_exec(q, "UPDATE bindings SET owner=COALESCE((SELECT name FROM clients c "
		     "WHERE c.client_id=bindings.client_id), '')")))
		return -EIO;
	return sq_exec(q, indexes_v1);
}

static int migrate_v2(struct sq *q) { return sq_exec(q, schema_v2); }

static int (*const migrations[XD_STORE_SCHEMA])(struct sq *q) = { migrate_v1, migrate_v2 };

static int migrate(struct sq *q)
{
	int64_t v = 0;

	if (sq_one4(q, "PRAGMA user_version", &v, 0, 0, 0, 0) < 0)
		return -EIO;
	if (v > XD_STORE_SCHEMA)
		return xd_store_fail(&q->base, -EPROTO, "state database has schema version %lld, newer "
				     "than this program's %d: refusing to touch it", (long long)v,
				     XD_STORE_SCHEMA);
	if (q->rdonly)
		return 0;
	for (; v < XD_STORE_SCHEMA; v++) {
		char sql[48];

		snprintf(sql, sizeof(sql), "PRAGMA user_version=%lld", (long long)v + 1);
		if (sq_exec(q, "BEGIN IMMEDIATE"))
			return -EIO;
		if (migrations[v](q) || sq_exec(q, sql) || sq_exec(q, "COMMIT")) {
			char keep[sizeof(q->base.err)];

			memcpy(keep, q->base.err, sizeof(keep));
			sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
			return xd_store_fail(&q->base, -EIO, "migration to schema version %lld: %s",
					     (long long)v + 1, keep);
		}
	}
	return 0;
}

/* ------------------------------------------------------------ open/close */

void sq_close(struct xd_store *st)
{
	struct sq *q = SQ(st);

	for (unsigned i = 0; i < SQ_CACHE && q->cache[i].sql; i++)
		sqlite3_finalize(q->cache[i].st);
	if (q->certdb)
		q->certdb->ops->free(q->certdb);
	if (q->db)
		sqlite3_close_v2(q->db);
	free(q);
}

/* The database and its -wal and -shm are the operator's secrets (host
 * secrets, the CA's state): 0600 from their creation.  SQLite creates -wal
 * and -shm with the database file's mode; the umask covers the rest.
 * An existing file is only chmodded, never opened here: closing a
 * descriptor drops every POSIX lock this process holds on the file, and
 * with them the lock of another connection of this process (the daemon
 * has several), after which another process would take the database for
 * unused, checkpoint and delete the WAL under it. */
static int create_0600(struct sq *q, const char *path)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char p[PATH_MAX];
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd >= 0)
		close(fd);      /* new: nobody holds a lock on it yet */
	else if (errno != EEXIST)
		return xd_store_fail(&q->base, -errno, "cannot create state database %s: %s", path,
				     strerror(errno));
	for (unsigned i = 0; i < 3; i++)
		if (snprintf(p, sizeof(p), "%s%s", path, sfx[i]) < (int)sizeof(p) && chmod(p, 0600) &&
		    errno != ENOENT)
			return xd_store_fail(&q->base, -errno, "cannot chmod 600 %s: %s", p, strerror(errno));
	return 0;
}

static int sq_open_db(struct sq *q, const char *path)
{
	int fl = q->rdonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

	if (q->rdonly && access(path, R_OK))
		return xd_store_fail(&q->base, -ENOENT, "no state database %s", path);
	if (!q->rdonly && create_0600(q, path))
		return -EIO;
	if (sqlite3_open_v2(path, &q->db, fl | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK)
		return xd_store_fail(&q->base, -EIO, "cannot open state database %s: %s", path,
				     q->db ? sqlite3_errmsg(q->db) : "out of memory");
	sqlite3_busy_timeout(q->db, q->rdonly ? 2000 : 5000);
	if (!q->rdonly && (sq_exec(q, "PRAGMA journal_mode=WAL") || sq_exec(q, "PRAGMA synchronous=FULL") ||
			   sq_exec(q, "PRAGMA foreign_keys=ON")))
		return -EIO;
	return migrate(q);
}

int xd_store_sqlite_open(const char *path, unsigned flags, struct xd_store **out, char *err,
			 size_t errlen)
{
	struct sq *q = calloc(1, sizeof(*q));
	mode_t old;
	int rc;

	*out = NULL;
	if (!q) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	q->base.ops = &sq_ops;
	q->rdonly = flags & XD_STORE_RDONLY;
	old = umask(077);
	rc = sq_open_db(q, path);
	umask(old);
	if (rc) {
		snprintf(err, errlen, "%s", q->base.err);
		sq_close(&q->base);
		return rc;
	}
	q->base.err[0] = '\0';
	*out = &q->base;
	return 0;
}
