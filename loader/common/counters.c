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
#include "store.h"
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

struct xd_ctr_row *xd_ctr_add_row(struct xd_ctr_state *s, const char *key)
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
		if (!r && !(r = xd_ctr_add_row(s, cur[i].key)))
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

/* ----------------------------------------------------------- persistence */

int xd_ctr_load(struct xd_store *st, const char *gen, struct xd_ctr_state *s)
{
	int rc;

	memset(s, 0, sizeof(*s));
	rc = st->ops->ctr_load(st, gen, s);
	if (rc) {
		xd_ctr_free(s);
		return rc;
	}
	/* Sorted in C: the store's order may differ from strcmp's. */
	if (s->n)
		qsort(s->rows, s->n, sizeof(*s->rows), row_cmp);
	if (s->n_names)
		qsort(s->names, s->n_names, sizeof(*s->names), name_cmp);
	xd_ctr_set_gen(s, gen);
	return 0;
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

int xd_ctr_save(struct xd_store *st, struct xd_maps *m)
{
	struct xd_ctr_state s;
	struct xd_ctr_sample *cur = NULL;
	char gen[XD_CTR_GEN_MAX];
	size_t n = 0;
	int rc;

	if ((rc = xd_ctr_generation(m, gen, sizeof(gen))))
		return rc;
	if (st->ops->begin(st))
		return -EIO;
	rc = xd_ctr_load(st, gen, &s);
	if (!rc)
		rc = xd_ctr_sample_maps(m, &s, &cur, &n);
	if (!rc)
		rc = xd_ctr_fold(&s, gen, cur, n, rsip_now_ms());
	if (!rc)
		rc = st->ops->ctr_store(st, &s);
	if (!rc)
		rc = st->ops->commit(st);
	if (rc)
		st->ops->rollback(st);
	free(cur);
	xd_ctr_free(&s);
	return rc;
}

int xd_ctr_read(const char *state_dir, const char *instance, struct xd_maps *m,
		struct xd_ctr_state *s)
{
	char gen[XD_CTR_GEN_MAX], err[256];
	struct xd_store *st;
	int rc;

	memset(s, 0, sizeof(*s));
	if (!state_dir || !instance || !xd_valid_instance(instance))
		return -ENOENT;
	if ((rc = xd_ctr_generation(m, gen, sizeof(gen))))
		return rc;
	if (xd_store_open(state_dir, instance, XD_STORE_RDONLY, &st, err, sizeof(err)))
		return -ENOENT;
	rc = xd_ctr_load(st, gen, s);
	xd_store_close(st);
	if (!rc && !s->since_ms) {
		xd_ctr_free(s);
		rc = -ENOENT;
	}
	return rc;
}
