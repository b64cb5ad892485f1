// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Cluster sync: this router's maps follow the store (cluster_sync.h).
 *
 * A mirror of the store's registrations (clients/) and bindings
 * (bindings/) is kept here, fed by the watch thread's batches in revision
 * order.  Changes mark registrations and host ids dirty; a flush then makes
 * the maps of exactly those host ids what the mirror says (host entry, port
 * runs, SPI runs of the active bindings whose lease has not lapsed),
 * writing only differences: a host whose entry is right is not touched, a
 * run that is in the maps already is not written again.  A snapshot (start,
 * reconnect, compaction) replaces the mirror and looks at every host id.
 *
 * Ordering against this router's own writes: the RSIP server installs its
 * own bindings in the maps at once, before the watch reports them.  A
 * mirror older than this router's last commit could undo such a write
 * (re-add a block just freed, or give a host id just reused its old LAN
 * address), so a flush waits until the mirror has reached the revision of
 * the last Txn this router committed (xd_store_etcd_last_rev), at most a
 * few ms; from then on the mirror is a state of the store that includes
 * every write of ours, and the maps become that state.
 *
 * Host ids that the mirror does not hold are removed only if they carry
 * XDNAT_HOST_F_RSIP (installed for a registration) or the mirror held them
 * before: static hosts (xdnatctl host add) are never touched.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <json-c/json.h>
#include "cluster_sync.h"
#include "store_watch.h"
#include "xdnat.h"

#define CATCHUP_MS 10     /* longest wait for the watch to reach our own commit */

struct mc { uint32_t id, host_id, lan; int32_t gidx; };
struct mb { uint32_t id, client, first, last; int32_t kind, state, gidx; int64_t until; };
struct blk { int32_t kind; uint32_t gidx, first, last; bool on; };

/* A table sorted by its elements' leading uint32_t id. */
struct tab { char *v; size_t n, cap, esz; };

struct ids { uint32_t *v; size_t n, cap; };

struct xd_csync {
	struct rsip_server *s;
	struct xd_maps *m;
	struct xd_watch *w;
	struct tab c, b;
	int64_t rev;               /* the mirror's revision */
	/* changes not applied to the maps yet */
	struct ids dc, dh;         /* dirty registrations; host ids to look at */
	struct blk *ix;            /* index changes, in order */
	size_t nix, capix;
	bool full, resync;         /* a snapshot came: look at every host id */
	char why[64];
	size_t events;             /* changes taken since the last flush */
	int64_t next_lapse, lapse_done;
	uint32_t *owner;           /* per host id: index + 1 of its client in c */
};

/* ------------------------------------------------------------- tables */

static void *tab_at(const struct tab *t, size_t i) { return t->v + i * t->esz; }

/* Index of @id, or where it would go (with *found false). */
static size_t tab_pos(const struct tab *t, uint32_t id, bool *found)
{
	size_t lo = 0, hi = t->n;

	/* ids grow: most inserts go at the end */
	if (t->n && *(uint32_t *)tab_at(t, t->n - 1) < id) {
		*found = false;
		return t->n;
	}
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		uint32_t k = *(uint32_t *)tab_at(t, mid);

		if (k < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < t->n && *(uint32_t *)tab_at(t, lo) == id;
	return lo;
}

static void *tab_find(const struct tab *t, uint32_t id)
{
	bool f;
	size_t i = tab_pos(t, id, &f);

	return f ? tab_at(t, i) : NULL;
}

static int tab_put(struct tab *t, const void *e)
{
	bool f;
	size_t i = tab_pos(t, *(const uint32_t *)e, &f);

	if (!f) {
		if (t->n == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 64;
			char *v = realloc(t->v, cap * t->esz);

			if (!v)
				return -ENOMEM;
			t->v = v;
			t->cap = cap;
		}
		memmove(tab_at(t, i + 1), tab_at(t, i), (t->n - i) * t->esz);
		t->n++;
	}
	memcpy(tab_at(t, i), e, t->esz);
	return 0;
}

static void tab_del(struct tab *t, uint32_t id)
{
	bool f;
	size_t i = tab_pos(t, id, &f);

	if (!f)
		return;
	memmove(tab_at(t, i), tab_at(t, i + 1), (t->n - i - 1) * t->esz);
	t->n--;
}

static int id_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int ids_add(struct ids *s, uint32_t id)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint32_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = id;
	return 0;
}

static void ids_sort(struct ids *s)
{
	size_t j = 0;

	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), id_cmp);
	for (size_t i = 0; i < s->n; i++)
		if (!j || s->v[j - 1] != s->v[i])
			s->v[j++] = s->v[i];
	s->n = j;
}

static bool ids_has(const struct ids *s, uint32_t id)
{
	return s->n && bsearch(&id, s->v, s->n, sizeof(*s->v), id_cmp);
}

/* ------------------------------------------------------------ records */

static int64_t jget(json_object *o, const char *f)
{
	json_object *v;

	return json_object_object_get_ex(o, f, &v) ? json_object_get_int64(v) : 0;
}

/* "clients/ID" or "bindings/ID": 'c' or 'b' with the id; 0 otherwise. */
static char kind_of(const char *key, uint32_t *id)
{
	const char *s = strchr(key, '/');
	char *end;

	if (!s)
		return 0;
	*id = (uint32_t)strtoul(s + 1, &end, 16);
	if (*end)
		return 0;
	return !strncmp(key, "clients/", 8) ? 'c' : !strncmp(key, "bindings/", 9) ? 'b' : 0;
}

static bool parse_client(const char *val, uint32_t id, struct mc *c)
{
	json_object *o = json_tokener_parse(val);

	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return false;
	}
	*c = (struct mc){ .id = id, .host_id = (uint32_t)jget(o, "host_id"), .lan = (uint32_t)jget(o, "lan"),
			  .gidx = (int32_t)jget(o, "gidx") };
	json_object_put(o);
	return true;
}

static bool parse_binding(const char *val, uint32_t id, struct mb *b)
{
	json_object *o = json_tokener_parse(val);

	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return false;
	}
	*b = (struct mb){ .id = id, .client = (uint32_t)jget(o, "client"), .first = (uint32_t)jget(o, "first"),
			  .last = (uint32_t)jget(o, "last"), .kind = (int32_t)jget(o, "kind"),
			  .state = (int32_t)jget(o, "state"), .gidx = (int32_t)jget(o, "gidx"),
			  .until = jget(o, "until") };
	json_object_put(o);
	return true;
}

static int ix_add(struct xd_csync *cs, const struct mb *b, bool on)
{
	if (cs->nix == cs->capix) {
		size_t cap = cs->capix ? cs->capix * 2 : 64;
		struct blk *v = realloc(cs->ix, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		cs->ix = v;
		cs->capix = cap;
	}
	cs->ix[cs->nix++] = (struct blk){ .kind = b->kind, .gidx = (uint32_t)b->gidx, .first = b->first,
					  .last = b->last, .on = on };
	return 0;
}

/* An active binding stays in the maps until the store says otherwise: a
 * lapsed lease is taken out by the elected expiry worker (a state change
 * or a deletion that reaches every router through the watch), which keeps
 * the quorum-loss grace; dropping it here on the local clock would cut a
 * host's traffic while the store cannot be asked (e2e_cluster_quorum). */
static bool wanted(const struct mb *b, int64_t now)
{
	(void)now;
	return b->state == RSIP_BIND_ACTIVE;
}

/* One change of the watch. */
static int take_event(struct xd_csync *cs, const struct xd_watch_ev *e, int64_t now)
{
	uint32_t id;
	char k = kind_of(e->key, &id);
	int rc = 0;

	if (k == 'c') {
		struct mc *old = tab_find(&cs->c, id), nc;
		bool have = e->val && parse_client(e->val, id, &nc);

		if (!old || !have || old->host_id != nc.host_id || old->lan != nc.lan || old->gidx != nc.gidx) {
			rc = ids_add(&cs->dc, id);
			if (!rc && old && old->host_id)
				rc = ids_add(&cs->dh, old->host_id);
		}
		if (have)
			rc = rc ? rc : tab_put(&cs->c, &nc);
		else
			tab_del(&cs->c, id);
	} else if (k == 'b') {
		struct mb *old = tab_find(&cs->b, id), nb;
		bool have = e->val && parse_binding(e->val, id, &nb);
		bool moved = !old || !have || old->first != nb.first || old->last != nb.last ||
			     old->kind != nb.kind || old->gidx != nb.gidx;

		if (moved || old->client != nb.client || wanted(old, now) != wanted(&nb, now)) {
			if (old)
				rc = ids_add(&cs->dc, old->client);
			if (!rc && have)
				rc = ids_add(&cs->dc, nb.client);
		}
		if (!rc && moved && old)
			rc = ix_add(cs, old, false);
		if (!rc && moved && have)
			rc = ix_add(cs, &nb, true);
		if (have)
			rc = rc ? rc : tab_put(&cs->b, &nb);
		else
			tab_del(&cs->b, id);
	}
	return rc;
}

/* A snapshot replaces the mirror; every host id is looked at. */
static int take_snapshot(struct xd_csync *cs, const struct xd_watch_batch *bt)
{
	int rc = 0;

	/* the hosts the old mirror held leave the maps if the new one lacks them */
	for (size_t i = 0; !rc && i < cs->c.n; i++) {
		const struct mc *c = tab_at(&cs->c, i);

		if (c->host_id)
			rc = ids_add(&cs->dh, c->host_id);
	}
	cs->c.n = cs->b.n = 0;
	for (size_t i = 0; !rc && i < bt->n; i++) {
		uint32_t id;
		char k = kind_of(bt->ev[i].key, &id);
		struct mc c;
		struct mb b;

		if (k == 'c' && parse_client(bt->ev[i].val, id, &c))
			rc = tab_put(&cs->c, &c);
		else if (k == 'b' && parse_binding(bt->ev[i].val, id, &b))
			rc = tab_put(&cs->b, &b);
	}
	/* the index is rebuilt from the store before the next allocation */
	cs->s->idx.valid = false;
	cs->nix = 0;
	cs->full = cs->resync = true;
	snprintf(cs->why, sizeof(cs->why), "%s", bt->why);
	return rc;
}

/* ------------------------------------------------------------ applying */

struct tally { unsigned added, removed, rewritten, unchanged, runs_added, runs_removed, failed; };


/* Call @fn on each range of @a (merged) that @b (merged) does not cover. */
static int minus(struct xd_maps *m, uint32_t hid, const struct xd_run *a, size_t na, const struct xd_run *b,
		 size_t nb, int (*fn)(struct xd_maps *, uint32_t, uint32_t, uint32_t), unsigned *count)
{
	size_t j = 0;
	int bad = 0;

	for (size_t i = 0; i < na; i++) {
		uint64_t p = a[i].first;

		while (p <= a[i].last) {
			while (j < nb && b[j].last < p)
				j++;
			if (j < nb && b[j].first <= p) {
				p = (uint64_t)b[j].last + 1;
				continue;
			}
			uint64_t end = j < nb && b[j].first <= a[i].last ? (uint64_t)b[j].first - 1 : a[i].last;

			if (fn(m, hid, (uint32_t)p, (uint32_t)end))
				bad++;
			else
				(*count)++;
			p = end + 1;
		}
	}
	return bad;
}

/* What host id @hid should be in the maps. */
struct want {
	const struct mc *c;            /* NULL: not an RSIP host (any more) */
	struct xd_run *r[2];           /* ports, SPIs */
	size_t n[2];
	bool touched;                  /* something of it was written */
};

static int mark_rsip(struct xd_maps *m, uint32_t hid)
{
	struct xdnat_host h;

	if (bpf_map_lookup_elem(m->hosts, &hid, &h))
		return -errno;
	h.flags |= XDNAT_HOST_F_RSIP;
	return bpf_map_update_elem(m->hosts, &hid, &h, BPF_EXIST) ? -errno : 0;
}

/* Phase 1 (@add false): remove what is wrong; phase 2: add what is missing. */
static void apply_host(struct xd_csync *cs, uint32_t hid, struct want *wt, bool add, struct tally *t)
{
	struct xd_maps *m = cs->m;
	struct xdnat_host h;
	struct xd_run *have[2] = { NULL, NULL };
	size_t nh[2] = { 0, 0 };
	unsigned before = t->runs_added + t->runs_removed + t->failed;
	bool exists = xd_host_get(m, hid, &h) == 0;

	if (!wt->c) {
		if (!add && exists && ((h.flags & XDNAT_HOST_F_RSIP) || ids_has(&cs->dh, hid))) {
			if (xd_host_del(m, hid))
				t->failed++;
			else
				t->removed++;
		}
		return;
	}
	if (!add && exists && (h.lan_addr != wt->c->lan || h.gaddr_index != (uint32_t)wt->c->gidx)) {
		if (xd_host_del(m, hid))
			t->failed++;
		else
			t->rewritten++;
		wt->touched = true;
		return;
	}
	if (add && !exists) {
		if (xd_host_add(m, hid, wt->c->lan, (uint32_t)wt->c->gidx) || mark_rsip(m, hid)) {
			t->failed++;
			return;
		}
		t->added++;
		wt->touched = true;
	} else if (!exists) {
		return;                 /* added in phase 2 */
	}
	if (xd_ports_of(m, hid, &have[0], &nh[0]) || xd_spis_of(m, hid, &have[1], &nh[1])) {
		t->failed++;
		goto out;
	}
	if (!add) {
		t->failed += (unsigned)minus(m, hid, have[0], nh[0], wt->r[0], wt->n[0], xd_ports_del, &t->runs_removed);
		t->failed += (unsigned)minus(m, hid, have[1], nh[1], wt->r[1], wt->n[1], xd_spis_del, &t->runs_removed);
		wt->touched |= before != t->runs_added + t->runs_removed + t->failed;
	} else {
		t->failed += (unsigned)minus(m, hid, wt->r[0], wt->n[0], have[0], nh[0], xd_ports_add, &t->runs_added);
		t->failed += (unsigned)minus(m, hid, wt->r[1], wt->n[1], have[1], nh[1], xd_spis_add, &t->runs_added);
		if (before == t->runs_added + t->runs_removed + t->failed && !wt->touched)
			t->unchanged++;
	}
out:
	free(have[0]);
	free(have[1]);
}

static int host_cmp(const void *a, const void *b)
{
	const struct mb *x = *(const struct mb *const *)a, *y = *(const struct mb *const *)b;

	if (x->client != y->client)
		return x->client < y->client ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->first < y->first ? -1 : x->first > y->first;
}

static void flush(struct xd_csync *cs)
{
	struct rsip_server *s = cs->s;
	uint32_t max = s->cfg.max_hosts;
	int64_t now = (int64_t)rsip_now_ms();
	struct ids look = { 0 };
	const struct mb **sel = NULL;
	struct xd_run *runs = NULL;
	struct want *wt = NULL;
	struct tally t = { 0 };
	size_t nsel = 0;
	int rc = 0;

	/* The free-range index: other routers' blocks in, freed ones out. */
	for (size_t i = 0; i < cs->nix; i++)
		rsip_server_index_block(s, cs->ix[i].kind, cs->ix[i].gidx, cs->ix[i].first, cs->ix[i].last,
					cs->ix[i].on);
	cs->nix = 0;
	/* Who holds each host id now. */
	memset(cs->owner, 0, max * sizeof(*cs->owner));
	for (size_t i = 0; i < cs->c.n; i++) {
		const struct mc *c = tab_at(&cs->c, i);

		if (c->host_id && c->host_id < max && c->gidx >= 0)
			cs->owner[c->host_id] = (uint32_t)i + 1;
	}
	ids_sort(&cs->dc);
	ids_sort(&cs->dh);
	/* The host ids to look at. */
	for (uint32_t h = 1; !rc && cs->full && h < max; h++)
		rc = ids_add(&look, h);
	for (size_t i = 0; !rc && !cs->full && i < cs->dh.n; i++)
		rc = cs->dh.v[i] < max ? ids_add(&look, cs->dh.v[i]) : 0;
	for (size_t i = 0; !rc && !cs->full && i < cs->dc.n; i++) {
		const struct mc *c = tab_find(&cs->c, cs->dc.v[i]);

		if (c && c->host_id && c->host_id < max)
			rc = ids_add(&look, c->host_id);
	}
	ids_sort(&look);
	for (size_t i = 0; i < look.n; i++)
		if (cs->owner[look.v[i]])
			rsip_server_index_hid(s, look.v[i], true);
		else if (ids_has(&cs->dh, look.v[i]))
			rsip_server_index_hid(s, look.v[i], false);
	/* The wanted bindings of the clients holding those ids, by client. */
	sel = calloc(cs->b.n + 1, sizeof(*sel));
	runs = calloc(cs->b.n + 1, sizeof(*runs));
	wt = calloc(look.n + 1, sizeof(*wt));
	if (rc || !sel || !runs || !wt) {
		xd_warn("cluster sync: out of memory: the maps are brought in step at the next resync");
		goto out;
	}
	cs->next_lapse = INT64_MAX;
	for (size_t i = 0; i < cs->b.n; i++) {
		const struct mb *b = tab_at(&cs->b, i);
		const struct mc *c;

		if (b->state == RSIP_BIND_ACTIVE && b->until > now && b->until < cs->next_lapse)
			cs->next_lapse = b->until;
		if (!wanted(b, now) || !(c = tab_find(&cs->c, b->client)) || !c->host_id || c->host_id >= max ||
		    (!cs->full && !ids_has(&look, c->host_id)))
			continue;
		sel[nsel++] = b;
	}
	if (nsel > 1)
		qsort(sel, nsel, sizeof(*sel), host_cmp);
	for (size_t i = 0; i < nsel; i++)
		runs[i] = (struct xd_run){ sel[i]->first, sel[i]->last };
	for (size_t i = 0; i < look.n; i++) {
		uint32_t o = cs->owner[look.v[i]];
		const struct mc *c = o ? tab_at(&cs->c, o - 1) : NULL;
		size_t lo = 0, hi = nsel;

		if (!c)
			continue;
		while (lo < hi) {        /* the client's first selected binding */
			size_t mid = (lo + hi) / 2;

			if (sel[mid]->client < c->id)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (int k = 0; k < 2; k++) {
			size_t a = lo;

			while (lo < nsel && sel[lo]->client == c->id && sel[lo]->kind == (k ? RSIP_KIND_SPI : RSIP_KIND_PORTS))
				lo++;
			wt[i].r[k] = &runs[a];
			wt[i].n[k] = xd_runs_merge(&runs[a], lo - a);
		}
		/* a registration whose every lease lapsed leaves the maps */
		wt[i].c = wt[i].n[0] || wt[i].n[1] ? c : NULL;
	}
	for (size_t i = 0; i < look.n; i++)
		apply_host(cs, look.v[i], &wt[i], false, &t);
	for (size_t i = 0; i < look.n; i++)
		apply_host(cs, look.v[i], &wt[i], true, &t);
	if (cs->resync) {
		printf("xdnatd: cluster sync: resync (%s) at revision %" PRId64 ": %zu registrations, %zu "
		       "bindings; hosts %u added, %u removed, %u rewritten, %u unchanged; runs %u added, "
		       "%u removed%s\n", cs->why, cs->rev, cs->c.n, cs->b.n, t.added, t.removed, t.rewritten,
		       t.unchanged, t.runs_added, t.runs_removed, t.failed ? " (some failed, see above)" : "");
		fflush(stdout);
	} else if (t.failed)
		xd_warn("cluster sync: %u map changes failed at revision %" PRId64 " (see above)", t.failed,
			cs->rev);
	cs->full = cs->resync = false;
	cs->dc.n = cs->dh.n = 0;
	cs->events = 0;
out:
	free(look.v);
	free(sel);
	free(runs);
	free(wt);
}

/* ------------------------------------------------------------- the loop */

static int take(struct xd_csync *cs)
{
	struct xd_watch_batch *b;
	int64_t now = (int64_t)rsip_now_ms();
	size_t n;
	int rc = xd_watch_take(cs->w, &b, &n);

	for (size_t i = 0; !rc && i < n; i++) {
		if (b[i].snapshot)
			rc = take_snapshot(cs, &b[i]);
		for (size_t j = 0; !rc && !b[i].snapshot && j < b[i].n; j++)
			rc = take_event(cs, &b[i].ev[j], now);
		cs->events += b[i].n;
		cs->rev = b[i].rev;
	}
	if (!rc)
		xd_watch_batches_free(b, n);
	else {
		xd_watch_batches_free(b, n);
		xd_warn("cluster sync: out of memory: waiting for the next resync");
	}
	return (int)n;
}

static bool pending(const struct xd_csync *cs)
{
	return cs->full || cs->dc.n || cs->dh.n || cs->nix;
}

void xd_csync_run(struct xd_csync *cs)
{
	int64_t now = (int64_t)rsip_now_ms();

	take(cs);
	/* Leases that lapsed since the last look: their clients are dirty. */
	if (cs->next_lapse <= now) {
		for (size_t i = 0; i < cs->b.n; i++) {
			const struct mb *b = tab_at(&cs->b, i);

			if (b->state == RSIP_BIND_ACTIVE && b->until <= now && b->until > cs->lapse_done &&
			    ids_add(&cs->dc, b->client))
				break;
		}
		cs->lapse_done = now;
		cs->next_lapse = INT64_MAX;
	}
	if (!pending(cs))
		return;
	/* Behind our own last commit: the watch reports it within a few ms. */
	for (int i = 0; i < CATCHUP_MS && cs->rev < xd_store_etcd_last_rev(cs->s->st); i++) {
		struct pollfd p = { .fd = xd_watch_fd(cs->w), .events = POLLIN };

		if (poll(&p, 1, 1) > 0)
			take(cs);
	}
	if (cs->rev < xd_store_etcd_last_rev(cs->s->st))
		return;        /* the next batch brings us there */
	flush(cs);
}

int xd_csync_fd(const struct xd_csync *cs)
{
	return xd_watch_fd(cs->w);
}

int xd_csync_timeout(const struct xd_csync *cs)
{
	int64_t d = cs->next_lapse - (int64_t)rsip_now_ms();

	if (pending(cs))
		return 20;         /* waiting to catch up with our own writes */
	return d > 1000 ? 1000 : d < 0 ? 0 : (int)d;
}

void xd_csync_stop(struct xd_csync *cs)
{
	if (!cs)
		return;
	xd_watch_stop(cs->w);
	cs->s->idx_fed = false;
	free(cs->c.v);
	free(cs->b.v);
	free(cs->dc.v);
	free(cs->dh.v);
	free(cs->ix);
	free(cs->owner);
	free(cs);
}

int xd_csync_start(struct rsip_server *s, struct xd_maps *m, struct xd_csync **out)
{
	static const char *const subs[] = { "clients/", "bindings/", NULL };
	struct xd_csync *cs = calloc(1, sizeof(*cs));
	char err[256];
	int rc;

	*out = NULL;
	if (!cs || !(cs->owner = calloc(s->cfg.max_hosts + 1, sizeof(*cs->owner)))) {
		free(cs);
		xd_err("cluster sync: out of memory");
		return -ENOMEM;
	}
	cs->s = s;
	cs->m = m;
	cs->c.esz = sizeof(struct mc);
	cs->b.esz = sizeof(struct mb);
	cs->next_lapse = INT64_MAX;
	if ((rc = xd_watch_start(s->st, subs, &cs->w, err, sizeof(err)))) {
		xd_err("cluster sync: %s", err);
		free(cs->owner);
		free(cs);
		return rc;
	}
	s->idx_fed = true;
	*out = cs;
	return 0;
}
