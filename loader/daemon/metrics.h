/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Prometheus text exposition of a router instance's counters. */
#ifndef XDNAT_METRICS_H
#define XDNAT_METRICS_H

#include <stddef.h>
#include <stdio.h>
#include "xdnat.h"
#include "counters.h"

/* Render every reason counter, per-host counter and table gauge of @m into
 * a malloc'd text (format 0.0.4).  With @s (counters.h), counters are the
 * totals across map generations: @s's baselines plus the maps.  0 or -errno. */
int xd_metrics_render(struct xd_maps *m, const struct xd_ctr_state *s, char **text, size_t *len);

/* What xd_metrics_http serves: @maps, with the baselines of
 * STATE_DIR/INSTANCE.db when @state_dir is set and the database has them
 * (read at every scrape). */
struct xd_metrics_ctx {
	struct xd_maps *maps;
	const char *state_dir, *instance;
	struct xd_elect *elect;    /* the cluster's elections (cluster_elect.h), or NULL */
	/* More series appended to every scrape (called in the HTTP thread). */
	void (*extra)(void *arg, FILE *f);
	void *extra_arg;
};

/* xd_http_handler serving xd_metrics_render(); @ctx is a struct xd_metrics_ctx *. */
int xd_metrics_http(void *ctx, const char *path, char **body, size_t *len, const char **ctype);

#endif
