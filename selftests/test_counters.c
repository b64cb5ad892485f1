// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Counter baselines across map generations (loader/common/counters.[ch]): the
 * arithmetic of totals and saves, generation changes, entries that were
 * reset or went away, and the round trip through the state database.  Map
 * values are made up; no BPF.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "counters.h"
#include "store.h"

#define GEN_A "boot-1/10"
#define GEN_B "boot-2/7"    /* after a reboot: another boot id, another map */
#define GEN_C "boot-2/31"   /* maps re-created without a reboot */

static struct xd_ctr_sample smp(const char *key, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	struct xd_ctr_sample s = { .v = { a, b, c, d } };

	snprintf(s.key, sizeof(s.key), "%s", key);
	return s;
}

static void total(const struct xd_ctr_state *s, const struct xd_ctr_sample *cur, uint64_t out[4])
{
	xd_ctr_total(s, cur->key, cur->v, out);
}

static void expect4(const uint64_t v[4], uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	cr_expect(v[0] == a && v[1] == b && v[2] == c && v[3] == d,
		  "got %llu %llu %llu %llu, want %llu %llu %llu %llu",
		  (unsigned long long)v[0], (unsigned long long)v[1], (unsigned long long)v[2],
		  (unsigned long long)v[3], (unsigned long long)a, (unsigned long long)b,
		  (unsigned long long)c, (unsigned long long)d);
}

Test(counters, empty_state_reports_the_maps)
{
	struct xd_ctr_state s = { 0 };
	struct xd_ctr_sample c = smp("reason:wan_to_host", 5, 500, 0, 0);
	uint64_t t[4];

	total(&s, &c, t);
	expect4(t, 5, 500, 0, 0);
	total(NULL, &c, t);
	expect4(t, 5, 500, 0, 0);
}

Test(counters, went_down_is_any_value_below_last)
{
	uint64_t last[4] = { 10, 1000, 3, 300 };
	uint64_t same[4] = { 10, 1000, 3, 300 }, up[4] = { 11, 1100, 3, 300 };
	uint64_t down[4] = { 11, 1100, 2, 300 };

	cr_expect(!xd_ctr_went_down(last, same));
	cr_expect(!xd_ctr_went_down(last, up));
	cr_expect(xd_ctr_went_down(last, down));
}

/* Saves within one generation change nothing that is reported. */
Test(counters, saves_in_one_generation_are_invisible)
{
	struct xd_ctr_state s = { 0 };
	struct xd_ctr_sample c[2] = { smp("reason:wan_to_host", 10, 1000, 0, 0),
				      smp("host:1", 4, 400, 6, 600) };
	uint64_t t[4];

	cr_assert_eq(xd_ctr_fold(&s, GEN_A, c, 2, 1000), 0);
	cr_expect_eq(s.since_ms, 1000);
	total(&s, &c[0], t);
	expect4(t, 10, 1000, 0, 0);
	c[0].v[0] = 25;
	c[0].v[1] = 2500;
	total(&s, &c[0], t);
	expect4(t, 25, 2500, 0, 0);
	cr_assert_eq(xd_ctr_fold(&s, GEN_A, c, 2, 61000), 0);
	cr_expect_eq(s.since_ms, 1000, "since stays");
	cr_expect_eq(s.saved_ms, 61000);
	total(&s, &c[0], t);
	expect4(t, 25, 2500, 0, 0);
	total(&s, &c[1], t);
	expect4(t, 4, 400, 6, 600);
	xd_ctr_free(&s);
}

/* A reboot: the maps start from zero in a new generation.  Before the
 * daemon's first save the reader already adds the old generation's last
 * values; after it, base holds them.  Both read the same. */
Test(counters, new_generation_adds_the_old_totals)
{
	struct xd_ctr_state s = { 0 };
	struct xd_ctr_sample c[2] = { smp("reason:wan_to_host", 100, 10000, 0, 0),
				      smp("rsip:h1", 40, 4000, 60, 6000) };
	uint64_t t[4];

	cr_assert_eq(xd_ctr_fold(&s, GEN_A, c, 2, 1000), 0);
	/* Reboot; new maps count 7 packets.  Not saved yet. */
	xd_ctr_set_gen(&s, GEN_B);
	cr_expect(!s.same_gen);
	c[0] = smp("reason:wan_to_host", 7, 700, 0, 0);
	c[1] = smp("rsip:h1", 1, 100, 2, 200);
	total(&s, &c[0], t);
	expect4(t, 107, 10700, 0, 0);
	total(&s, &c[1], t);
	expect4(t, 41, 4100, 62, 6200);
	/* Even values above the old ones: another generation never holds them. */
	c[0] = smp("reason:wan_to_host", 150, 15000, 0, 0);
	total(&s, &c[0], t);
	expect4(t, 250, 25000, 0, 0);
	/* The daemon starts and saves: the same totals. */
	cr_assert_eq(xd_ctr_fold(&s, GEN_B, c, 2, 90000), 0);
	cr_expect(s.same_gen);
	cr_expect_eq(s.since_ms, 1000);
	total(&s, &c[0], t);
	expect4(t, 250, 25000, 0, 0);
	total(&s, &c[1], t);
	expect4(t, 41, 4100, 62, 6200);
	cr_expect(xd_ctr_find(&s, "reason:wan_to_host")->base[0] == 100);
	/* Saving again changes nothing. */
	cr_assert_eq(xd_ctr_fold(&s, GEN_B, c, 2, 91000), 0);
	total(&s, &c[0], t);
	expect4(t, 250, 25000, 0, 0);
	/* A second re-creation (no reboot): base grows again. */
	xd_ctr_set_gen(&s, GEN_C);
	c[0] = smp("reason:wan_to_host", 0, 0, 0, 0);
	total(&s, &c[0], t);
	expect4(t, 250, 25000, 0, 0);
	cr_assert_eq(xd_ctr_fold(&s, GEN_C, c, 2, 92000), 0);
	cr_expect(xd_ctr_find(&s, "reason:wan_to_host")->base[0] == 250);
	xd_ctr_free(&s);
}

/* Totals over a run of random increments, saves and generation changes.
 * A clean stop saves first (xdnatd does at exit): the totals go on exactly
 * and never down.  A crash loses what came after the last save, no more. */
Test(counters, totals_across_generations_clean_and_crashed)
{
	struct xd_ctr_state s = { 0 };
	struct xd_ctr_sample c = smp("reason:host_to_wan", 0, 0, 0, 0);
	uint64_t t[4], prev = 0, sum = 0, saved = 0;
	char gen[32] = "boot-0/1";
	int crashes = 0, stops = 0;

	srand(7);
	for (int step = 0; step < 2000; step++) {
		bool crash = false;

		if (rand() % 10 == 0) {
			crash = rand() % 2;
			if (!crash) {
				cr_assert_eq(xd_ctr_fold(&s, gen, &c, 1, (uint64_t)step + 1), 0);
				saved = sum;
				stops++;
			} else {
				sum = saved;   /* what the last save had */
				crashes++;
			}
			snprintf(gen, sizeof(gen), "boot-%d/%d", step % 3, step);
			c.v[0] = c.v[1] = 0;   /* new maps */
			xd_ctr_set_gen(&s, gen);
		}
		uint64_t inc = (uint64_t)(rand() % 100);

		c.v[0] += inc;
		c.v[1] += inc * 64;
		sum += inc;
		total(&s, &c, t);
		cr_assert_eq(t[0], sum, "step %d: total %llu, counted %llu", step,
			     (unsigned long long)t[0], (unsigned long long)sum);
		cr_assert_eq(t[1], sum * 64);
		if (!crash)
			cr_assert_geq(t[0], prev, "step %d: %llu < %llu", step,
				      (unsigned long long)t[0], (unsigned long long)prev);
		else
			cr_assert_geq(t[0], saved);
		prev = t[0];
		if (rand() % 3 == 0) {
			cr_assert_eq(xd_ctr_fold(&s, gen, &c, 1, (uint64_t)step + 1), 0);
			saved = sum;
		}
	}
	cr_expect(crashes > 10 && stops > 10, "%d crashes, %d stops", crashes, stops);
	xd_ctr_free(&s);
}

/* A host entry re-created in the same generation starts from zero: its
 * last values go into base.  A host absent at a save has lost its counters
 * with its entry: folded at once, so its return starts from base. */
Test(counters, reset_and_absent_entries)
{
	struct xd_ctr_state s = { 0 };
	struct xd_ctr_sample c[2] = { smp("host:3", 10, 1000, 20, 2000), smp("rsip:h2", 5, 50, 5, 50) };
	uint64_t t[4];

	cr_assert_eq(xd_ctr_fold(&s, GEN_A, c, 2, 1), 0);
	c[0] = smp("host:3", 2, 200, 1, 100);   /* re-created: went down */
	total(&s, &c[0], t);
	expect4(t, 12, 1200, 21, 2100);
	cr_assert_eq(xd_ctr_fold(&s, GEN_A, c, 2, 2), 0);
	total(&s, &c[0], t);
	expect4(t, 12, 1200, 21, 2100);
	/* h2 goes away (no map entry) at the next save. */
	cr_assert_eq(xd_ctr_fold(&s, GEN_A, c, 1, 3), 0);
	const struct xd_ctr_row *r = xd_ctr_find(&s, "rsip:h2");

	cr_assert_not_null(r);
	cr_expect(!r->has_last);
	expect4(r->base, 5, 50, 5, 50);
	/* It comes back (maybe under another host id): from zero, on top. */
	c[1] = smp("rsip:h2", 1, 10, 0, 0);
	total(&s, &c[1], t);
	expect4(t, 6, 60, 5, 50);
	xd_ctr_free(&s);
}

Test(counters, keys)
{
	struct xd_ctr_name names[2] = { { .host_id = 2, .name = "h1" }, { .host_id = 9, .name = "h7" } };
	struct xd_ctr_state s = { .names = names, .n_names = 2 };
	char k[XD_CTR_KEY_MAX];
	const char *name = "x";

	xd_ctr_reason_key(0, k, sizeof(k));
	cr_expect(!strncmp(k, "reason:", 7) && strlen(k) > 7, "%s", k);
	xd_ctr_host_key(&s, 9, k, sizeof(k), &name);
	cr_expect_str_eq(k, "rsip:h7");
	cr_expect_str_eq(name, "h7");
	xd_ctr_host_key(&s, 3, k, sizeof(k), &name);
	cr_expect_str_eq(k, "host:3");
	cr_expect_null(name);
	xd_ctr_host_key(NULL, 2, k, sizeof(k), &name);
	cr_expect_str_eq(k, "host:2");
}

/* Store and load: the same state, sorted, RSIP names from clients. */
Test(counters, database_round_trip)
{
	char dir[] = "/tmp/test_counters-XXXXXX", cmd[64], err[256];
	struct xd_store *db;
	uint32_t id;
	struct xd_ctr_state s = { 0 }, l;
	struct xd_ctr_sample c[3] = { smp("rsip:h1", 1, 2, 3, 4), smp("host:12", 5, 6, 7, 8),
				      smp("reason:wan_to_host", 9, 10, 0, 0) };
	uint64_t t[4];

	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(xd_store_open(dir, "t", 0, &db, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_ctr_load(db, GEN_A, &l), 0);
	cr_assert_eq(l.since_ms, 0, "nothing recorded yet");
	cr_assert_eq(l.n, 0);
	xd_ctr_free(&l);
	cr_assert_eq(db->ops->client_add(db, "h1", 1, 1, &id), 0);
	cr_assert_eq(db->ops->client_set_host(db, id, 4, 0), 0);
	cr_assert_eq(db->ops->client_add(db, "h9", 2, 1, &id), 0);
	cr_assert_eq(xd_ctr_fold(&s, GEN_A, c, 3, 12345), 0);
	cr_assert_eq(db->ops->ctr_store(db, &s), 0);
	cr_assert_eq(xd_ctr_load(db, GEN_B, &l), 0);
	cr_expect_str_eq(l.gen, GEN_A);
	cr_expect(!l.same_gen);
	cr_expect_eq(l.since_ms, 12345);
	cr_assert_eq(l.n, 3);
	for (size_t i = 1; i < l.n; i++)
		cr_expect(strcmp(l.rows[i - 1].key, l.rows[i].key) < 0);
	cr_assert_eq(l.n_names, 1, "only registrations that hold a host id");
	xd_ctr_host_key(&l, 4, c[0].key, sizeof(c[0].key), NULL);
	cr_expect_str_eq(c[0].key, "rsip:h1");
	c[0].v[0] = c[0].v[1] = c[0].v[2] = c[0].v[3] = 0;
	total(&l, &c[0], t);
	expect4(t, 1, 2, 3, 4);
	xd_ctr_free(&l);
	xd_ctr_free(&s);
	xd_store_close(db);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}
