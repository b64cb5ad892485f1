/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Prometheus text exposition of a router instance's counters. */
#ifndef XDNAT_METRICS_H
#define XDNAT_METRICS_H

#include <stddef.h>
#include "xdnat.h"

/* Render every reason counter, per-host counter and table gauge of @m into
 * a malloc'd text (format 0.0.4).  0 or -errno. */
int xd_metrics_render(struct xd_maps *m, char **text, size_t *len);

/* xd_http_handler serving xd_metrics_render(); @ctx is a struct xd_maps *. */
int xd_metrics_http(void *ctx, const char *path, char **body, size_t *len, const char **ctype);

#endif
