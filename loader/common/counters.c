// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Counter baselines across map generations: see counters.h. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "counters.h"
#include "rsip_store.h"
#include "xdnat.h"

/* ------------------------------------------------------------ arithmetic */

bool xd_ctr_went_down(const uint64_t last[XD_CTR_NVAL], const uint64_t cur[XD_CTR_NVAL])
{
	for (int i = 0; i < XD_CTR_NVAL; i++)
		if (cur[i] < last[i])
			return true;
	return false;
}

static int row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct xd_ctr_row *)a)->key, ((const struct xd_ctr_row *)b)->key);
}

static struct xd_ctr_row *find_n(const struct xd_ctr_state *s, const char *key, size_t n)
{
	struct xd_ctr_row k;

	if (!s || !n)
		return NULL;
	snprintf(k.key, sizeof(k.key), "%s", key);
	return bsearch(&k, s->rows, n, sizeof(*s->rows), row_cmp);
}

const struct xd_ctr_row *xd_ctr_find(const struct xd_ctr_state *s, const char *key)
{
	return s ? find_n(s, key, s->n) : NULL;
}

/* last[] is no longer in the maps' values: another generation, or reset. */
static bool last_gone(const struct xd_ctr_state *s, const struct xd_ctr_row *r,
		      const uint64_t cur[XD_CTR_NVAL])
{
	return r->has_last && (!s->same_gen || xd_ctr_went_down(r->last, cur));
}

void xd_ctr_total(const struct xd_ctr_state *s, const char *key, const uint64_t cur[XD_CTR_NVAL],
		  uint64_t out[XD_CTR_NVAL])
{
	const struct xd_ctr_row *r = xd_ctr_find(s, key);
	bool gone = r && last_gone(s, r, cur);

	for (int i = 0; i < XD_CTR_NVAL; i++)
		out[i] = cur[i] + (r ? r->base[i] : 0) + (gone ? r->last[i] : 0);
}

static struct xd_ctr_row *add_row(struct xd_ctr_state *s, const char *key)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct xd_ctr_row *r = realloc(s->rows, cap * sizeof(*r));

		if (!r)
			return NULL;
		s->rows = r;
		s->cap = cap;
	}
	memset(&s->rows[s->n], 0, sizeof(s->rows[s->n]));
	snprintf(s->rows[s->n].key, sizeof(s->rows[s->n].key), "%s", key);
	return &s->rows[s->n++];
}

void xd_ctr_set_gen(struct xd_ctr_state *s, const char *gen)
{
	s->same_gen = !strcmp(s->gen, gen);
}

int xd_ctr_fold(struct xd_ctr_state *s, const char *gen, const struct xd_ctr_sample *cur, size_t n,
		uint64_t now_ms)
{
	size_t old = s->n;

	xd_ctr_set_gen(s, gen);
	for (size_t i = 0; i < s->n; i++)
		s->rows[i].seen = false;
	for (size_t i = 0; i < n; i++) {
		struct xd_ctr_row *r = find_n(s, cur[i].key, old);

		/* Keys are unique in @cur: a new one is appended (sorted below). */
		if (!r && !(r = add_row(s, cur[i].key)))
			return -ENOMEM;
		if (last_gone(s, r, cur[i].v))
			for (int k = 0; k < XD_CTR_NVAL; k++)
				r->base[k] += r->last[k];
		memcpy(r->last, cur[i].v, sizeof(r->last));
		r->has_last = true;
		r->seen = true;
	}
	/* Keys the maps no longer hold (a host that went away): their
	 * counters are gone with the entry. */
	for (size_t i = 0; i < s->n; i++) {
		struct xd_ctr_row *r = &s->rows[i];

		if (r->seen || !r->has_last)
			continue;
		for (int k = 0; k < XD_CTR_NVAL; k++)
			r->base[k] += r->last[k];
		memset(r->last, 0, sizeof(r->last));
		r->has_last = false;
	}
	if (s->n)
		qsort(s->rows, s->n, sizeof(*s->rows), row_cmp);
	snprintf(s->gen, sizeof(s->gen), "%s", gen);
	s->same_gen = true;
	if (!s->since_ms)
		s->since_ms = now_ms;
	s->saved_ms = now_ms;
	return 0;
}

void xd_ctr_free(struct xd_ctr_state *s)
{
	free(s->rows);
	free(s->names);
	memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------ keys, generation */

void xd_ctr_reason_key(uint32_t reason, char *buf, size_t len)
{
	if (reason < XDNAT_R_MAX)
		snprintf(buf, len, "reason:%s", xdnat_reason_names[reason]);
	else
		snprintf(buf, len, "reason:%u", reason);
}

static int name_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct xd_ctr_name *)a)->host_id, y = ((const struct xd_ctr_name *)b)->host_id;

	return x < y ? -1 : x > y;
}

void xd_ctr_host_key(const struct xd_ctr_state *s, uint32_t id, char *buf, size_t len,
		     const char **name)
{
	struct xd_ctr_name k = { .host_id = id };
	const struct xd_ctr_name *nm = s && s->n_names ?
		bsearch(&k, s->names, s->n_names, sizeof(*s->names), name_cmp) : NULL;

	if (name)
		*name = nm ? nm->name : NULL;
	if (nm)
		snprintf(buf, len, "rsip:%s", nm->name);
	else
		snprintf(buf, len, "host:%u", id);
}

int xd_ctr_generation(struct xd_maps *m, char *buf, size_t len)
{
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info);
	char boot[64] = "";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");

	if (f) {
		if (!fgets(boot, sizeof(boot), f))
			boot[0] = '\0';
		fclose(f);
		boot[strcspn(boot, "\n")] = '\0';
	}
	if (bpf_obj_get_info_by_fd(m->stats, &info, &ilen))
		return -errno;
	snprintf(buf, len, "%s/%u", boot[0] ? boot : "?", info.id);
	return 0;
}

/* -------------------------------------------------------------- database */

static const char ctr_schema[] =
	"CREATE TABLE IF NOT EXISTS counters("
	"  key TEXT PRIMARY KEY, b0 INTEGER NOT NULL, b1 INTEGER NOT NULL, b2 INTEGER NOT NULL,"
	"  b3 INTEGER NOT NULL, has_last INTEGER NOT NULL, l0 INTEGER NOT NULL,"
	"  l1 INTEGER NOT NULL, l2 INTEGER NOT NULL, l3 INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS counters_meta("
	"  id INTEGER PRIMARY KEY CHECK (id = 1), gen TEXT NOT NULL, since_ms INTEGER NOT NULL,"
	"  saved_ms INTEGER NOT NULL);";

int xd_ctr_schema(sqlite3 *db)
{
	char *msg = NULL;

	if (sqlite3_exec(db, ctr_schema, NULL, NULL, &msg) != SQLITE_OK) {
		xd_err("state database: counters: %s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

int xd_ctr_load(sqlite3 *db, const char *gen, struct xd_ctr_state *s)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(s, 0, sizeof(*s));
	if (sqlite3_prepare_v2(db, "SELECT gen, since_ms, saved_ms FROM counters_meta WHERE id=1",
			       -1, &st, NULL) != SQLITE_OK)
		return -ENOENT;   /* no table: nothing recorded yet */
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		snprintf(s->gen, sizeof(s->gen), "%s", (const char *)sqlite3_column_text(st, 0));
		s->since_ms = (uint64_t)sqlite3_column_int64(st, 1);
		s->saved_ms = (uint64_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -EIO;
	if (sqlite3_prepare_v2(db, "SELECT key, b0, b1, b2, b3, has_last, l0, l1, l2, l3 "
			       "FROM counters", -1, &st, NULL) != SQLITE_OK)
		return -ENOENT;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct xd_ctr_row *r = add_row(s, (const char *)sqlite3_column_text(st, 0));

		if (!r) {
			sqlite3_finalize(st);
			xd_ctr_free(s);
			return -ENOMEM;
		}
		for (int i = 0; i < XD_CTR_NVAL; i++) {
			r->base[i] = (uint64_t)sqlite3_column_int64(st, 1 + i);
			r->last[i] = (uint64_t)sqlite3_column_int64(st, 6 + i);
		}
		r->has_last = sqlite3_column_int(st, 5) != 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		xd_ctr_free(s);
		return -EIO;
	}
	/* Sorted in C: SQLite's order may differ from strcmp's for a key the
	 * database got from elsewhere. */
	if (s->n)
		qsort(s->rows, s->n, sizeof(*s->rows), row_cmp);
	xd_ctr_set_gen(s, gen);
	/* RSIP host ids, if this database has registrations. */
	if (sqlite3_prepare_v2(db, "SELECT host_id, name FROM clients WHERE host_id > 0 "
			       "ORDER BY host_id", -1, &st, NULL) == SQLITE_OK) {
		size_t cap = 0;

		while (sqlite3_step(st) == SQLITE_ROW) {
			if (s->n_names == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct xd_ctr_name *nn = realloc(s->names, nc * sizeof(*nn));

				if (!nn)
					break;
				s->names = nn;
				cap = nc;
			}
			s->names[s->n_names].host_id = (uint32_t)sqlite3_column_int64(st, 0);
			snprintf(s->names[s->n_names].name, sizeof(s->names[0].name), "%s",
				 (const char *)sqlite3_column_text(st, 1));
			s->n_names++;
		}
		sqlite3_finalize(st);
		if (s->n_names)
			qsort(s->names, s->n_names, sizeof(*s->names), name_cmp);
	}
	return 0;
}

int xd_ctr_store(sqlite3 *db, const struct xd_ctr_state *s)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (sqlite3_exec(db, "DELETE FROM counters", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO counters(key, b0, b1, b2, b3, has_last, l0, l1, l2, l3) "
			       "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < s->n && !rc; i++) {
		const struct xd_ctr_row *r = &s->rows[i];
		bool zero = !r->has_last;

		for (int k = 0; k < XD_CTR_NVAL; k++)
			zero = zero && !r->base[k];
		if (zero)
			continue;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, r->key, -1, SQLITE_STATIC);
		for (int k = 0; k < XD_CTR_NVAL; k++) {
			sqlite3_bind_int64(st, 2 + k, (sqlite3_int64)r->base[k]);
			sqlite3_bind_int64(st, 7 + k, (sqlite3_int64)r->last[k]);
		}
		sqlite3_bind_int(st, 6, r->has_last);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = -EIO;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc)
		goto fail;
	if (sqlite3_prepare_v2(db, "INSERT INTO counters_meta(id, gen, since_ms, saved_ms) "
			       "VALUES(1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET gen=excluded.gen, "
			       "since_ms=excluded.since_ms, saved_ms=excluded.saved_ms",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, s->gen, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)s->since_ms);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)s->saved_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	return 0;
fail:
	xd_err("state database: counters: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return -EIO;
}

int xd_ctr_sample_maps(struct xd_maps *m, const struct xd_ctr_state *s,
		       struct xd_ctr_sample **out, size_t *n)
{
	size_t cap = XDNAT_R_MAX + 64, k = 0;
	struct xd_ctr_sample *v = calloc(cap, sizeof(*v));
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (!v)
		return -ENOMEM;
	for (uint32_t r = 0; r < XDNAT_R_MAX && !rc; r++) {
		struct xdnat_counter c;

		if ((rc = xd_reason_stats(m, r, &c)))
			break;
		xd_ctr_reason_key(r, v[k].key, sizeof(v[k].key));
		v[k].v[0] = c.packets;
		v[k].v[1] = c.bytes;
		k++;
	}
	for (uint32_t id = 1; id < m->cfg.max_hosts && !rc; id++) {
		struct xdnat_host h;
		struct xdnat_host_stats hs;

		if (xd_host_get(m, id, &h))
			continue;
		if ((rc = xd_host_stats(m, id, &hs)))
			break;
		if (k == cap) {
			struct xd_ctr_sample *nv = realloc(v, cap * 2 * sizeof(*v));

			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
			cap *= 2;
		}
		memset(&v[k], 0, sizeof(v[k]));
		xd_ctr_host_key(s, id, v[k].key, sizeof(v[k].key), NULL);
		v[k].v[0] = hs.to_host_packets;
		v[k].v[1] = hs.to_host_bytes;
		v[k].v[2] = hs.from_host_packets;
		v[k].v[3] = hs.from_host_bytes;
		k++;
	}
	if (rc) {
		free(v);
		return rc;
	}
	*out = v;
	*n = k;
	return 0;
}

int xd_ctr_save(sqlite3 *db, struct xd_maps *m)
{
	struct xd_ctr_state s;
	struct xd_ctr_sample *cur = NULL;
	char gen[XD_CTR_GEN_MAX];
	size_t n = 0;
	int rc;

	if ((rc = xd_ctr_generation(m, gen, sizeof(gen))))
		return rc;
	if (xd_ctr_schema(db) || rsip_db_begin(db))
		return -EIO;
	rc = xd_ctr_load(db, gen, &s);
	if (!rc)
		rc = xd_ctr_sample_maps(m, &s, &cur, &n);
	if (!rc)
		rc = xd_ctr_fold(&s, gen, cur, n, rsip_now_ms());
	if (!rc)
		rc = xd_ctr_store(db, &s);
	if (!rc)
		rc = rsip_db_commit(db);
	if (rc)
		rsip_db_rollback(db);
	free(cur);
	xd_ctr_free(&s);
	return rc;
}

int xd_ctr_read(const char *state_dir, const char *instance, struct xd_maps *m,
		struct xd_ctr_state *s)
{
	char path[PATH_MAX], gen[XD_CTR_GEN_MAX];
	sqlite3 *db = NULL;
	int rc;

	memset(s, 0, sizeof(*s));
	if (!state_dir || !instance || !xd_valid_instance(instance))
		return -ENOENT;
	rc = snprintf(path, sizeof(path), "%s/%s.db", state_dir, instance);
	if (rc < 0 || (size_t)rc >= sizeof(path) || access(path, R_OK))
		return -ENOENT;
	if ((rc = xd_ctr_generation(m, gen, sizeof(gen))))
		return rc;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return -ENOENT;
	}
	sqlite3_busy_timeout(db, 2000);
	rc = xd_ctr_load(db, gen, s);
	sqlite3_close(db);
	if (!rc && !s->since_ms) {
		xd_ctr_free(s);
		rc = -ENOENT;
	}
	return rc;
}
