/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Counter baselines in the state database (docs/CONTROL-PLANE.md, "Counter
 * totals across reboots").  The per-CPU counter maps start from zero
 * whenever they are created (a reboot, or a stop without --keep-maps); the
 * totals of earlier map generations are kept in STATE_DIR/INSTANCE.db:
 *
 *   counters       one row per counter key: base[4], the sum of every
 *                  finished generation (and of entries that were reset), and
 *                  last[4], the values of the current generation as last saved
 *   counters_meta  the generation the last[] values belong to, the time the
 *                  totals start from ("since") and the time of the last save
 *
 * Keys: "reason:NAME" (per verdict reason: packets, bytes); per host
 * "rsip:NAME" for a host that holds an RSIP registration (the enrolled name,
 * which outlives host ids), else "host:ID" (static hosts).  Host values are
 * to_host_packets, to_host_bytes, from_host_packets, from_host_bytes.
 *
 * A generation is "BOOT_ID/MAP_ID": the kernel's boot id and the BPF map id
 * of the pinned xdnat_stats map, which changes whenever the maps are created.
 *
 * Reported total = base + cur, plus last when the values in the maps no
 * longer contain it: another generation, or an entry that went down (a host
 * entry re-created).  Saving folds exactly that last into base, so a total
 * reads the same before and after a save.
 */
#ifndef XDNAT_COUNTERS_H
#define XDNAT_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XD_CTR_KEY_MAX  64
#define XD_CTR_GEN_MAX  96
#define XD_CTR_NVAL     4
#define XD_CTR_DEFAULT_INTERVAL 60

struct xd_maps;
struct xd_store;

struct xd_ctr_row {
	char key[XD_CTR_KEY_MAX];
	uint64_t base[XD_CTR_NVAL];
	uint64_t last[XD_CTR_NVAL];
	bool has_last;
	bool seen;          /* xd_ctr_fold's scratch */
};

struct xd_ctr_name {
	uint32_t host_id;
	char name[XD_CTR_KEY_MAX - 8];
};

struct xd_ctr_state {
	char gen[XD_CTR_GEN_MAX];  /* generation of last[] in the database ("" none) */
	bool same_gen;             /* ... equals the maps' generation */
	uint64_t since_ms;         /* totals count from here; 0: nothing recorded */
	uint64_t saved_ms;
	struct xd_ctr_row *rows;   /* sorted by key */
	size_t n, cap;
	struct xd_ctr_name *names; /* RSIP host ids, sorted by id */
	size_t n_names;
};

/* One current value read from the maps. */
struct xd_ctr_sample {
	char key[XD_CTR_KEY_MAX];
	uint64_t v[XD_CTR_NVAL];
};

/* ---- pure arithmetic (unit-tested with fake values) ---- */
/* Does @cur no longer contain @last (some value went down)? */
bool xd_ctr_went_down(const uint64_t last[XD_CTR_NVAL], const uint64_t cur[XD_CTR_NVAL]);
const struct xd_ctr_row *xd_ctr_find(const struct xd_ctr_state *s, const char *key);
/* The total to report for @key whose maps hold @cur now. */
void xd_ctr_total(const struct xd_ctr_state *s, const char *key, const uint64_t cur[XD_CTR_NVAL],
		  uint64_t out[XD_CTR_NVAL]);
/* Record @cur (every key the maps hold now) as generation @gen at @now_ms:
 * last[] that @cur no longer contains, and that of keys absent from @cur,
 * go into base.  0 or -ENOMEM. */
int xd_ctr_fold(struct xd_ctr_state *s, const char *gen, const struct xd_ctr_sample *cur, size_t n,
		uint64_t now_ms);
void xd_ctr_set_gen(struct xd_ctr_state *s, const char *gen);
void xd_ctr_free(struct xd_ctr_state *s);

/* ---- keys, generation ---- */
void xd_ctr_reason_key(uint32_t reason, char *buf, size_t len);
/* Key of map host @id; *name is its RSIP name or NULL. */
void xd_ctr_host_key(const struct xd_ctr_state *s, uint32_t id, char *buf, size_t len,
		     const char **name);
int xd_ctr_generation(struct xd_maps *m, char *buf, size_t len);

/* ---- persistence (through the store, store.h) ---- */
/* Add a row for @key (unsorted: xd_ctr_load sorts); NULL on ENOMEM. */
struct xd_ctr_row *xd_ctr_add_row(struct xd_ctr_state *s, const char *key);
/* Read the baselines (empty if none were saved) and compare with @gen. */
int xd_ctr_load(struct xd_store *st, const char *gen, struct xd_ctr_state *s);
/* The current values of @m, keyed with @s's RSIP names (caller frees). */
int xd_ctr_sample_maps(struct xd_maps *m, const struct xd_ctr_state *s,
		       struct xd_ctr_sample **out, size_t *n);
/* One save: load, sample, fold, store, in one transaction. */
int xd_ctr_save(struct xd_store *st, struct xd_maps *m);
/* Reader side (xdnatctl, /metrics): open STATE_DIR/INSTANCE.db read-only if
 * it exists and load its baselines against @m's generation.  -ENOENT (quiet)
 * when there is no database or no counter table. */
int xd_ctr_read(const char *state_dir, const char *instance, struct xd_maps *m,
		struct xd_ctr_state *s);

#endif
