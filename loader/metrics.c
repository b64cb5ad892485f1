// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "metrics.h"

static const char *const reason_names[] = XDNAT_REASON_NAMES;
_Static_assert(sizeof(reason_names) / sizeof(reason_names[0]) == XDNAT_R_MAX,
	       "one name per reason");

int xd_metrics_render(struct xd_maps *m, char **text, size_t *len)
{
	struct xdnat_counter c[XDNAT_R_MAX];
	FILE *f;
	uint32_t hosts = 0;
	int rc = 0;

	*text = NULL;
	*len = 0;
	/* Read everything first: a half-written page on error helps nobody. */
	for (uint32_t r = 0; r < XDNAT_R_MAX; r++)
		if ((rc = xd_reason_stats(m, r, &c[r])))
			return rc;
	f = open_memstream(text, len);
	if (!f)
		return -errno;
	fprintf(f, "# HELP xdnat_packets_total Packets by datapath verdict reason.\n"
		   "# TYPE xdnat_packets_total counter\n");
	for (uint32_t r = 0; r < XDNAT_R_MAX; r++)
		fprintf(f, "xdnat_packets_total{reason=\"%s\"} %llu\n", reason_names[r],
			(unsigned long long)c[r].packets);
	fprintf(f, "# HELP xdnat_bytes_total Bytes (IPv4 total length) by datapath verdict reason.\n"
		   "# TYPE xdnat_bytes_total counter\n");
	for (uint32_t r = 0; r < XDNAT_R_MAX; r++)
		fprintf(f, "xdnat_bytes_total{reason=\"%s\"} %llu\n", reason_names[r],
			(unsigned long long)c[r].bytes);

	fprintf(f, "# HELP xdnat_host_packets_total Packets per host and direction.\n"
		   "# TYPE xdnat_host_packets_total counter\n");
	for (int pass = 0; pass < 2 && !rc; pass++) {
		if (pass == 1)
			fprintf(f, "# HELP xdnat_host_bytes_total Bytes per host and direction.\n"
				   "# TYPE xdnat_host_bytes_total counter\n");
		for (uint32_t id = 1; id < m->cfg.max_hosts; id++) {
			struct xdnat_host h;
			struct xdnat_host_stats s;
			const char *name = pass ? "xdnat_host_bytes_total" : "xdnat_host_packets_total";

			if (xd_host_get(m, id, &h))
				continue;
			if ((rc = xd_host_stats(m, id, &s)))
				break;
			hosts += pass == 0;
			fprintf(f, "%s{host=\"%u\",direction=\"to_host\"} %llu\n", name, id,
				(unsigned long long)(pass ? s.to_host_bytes : s.to_host_packets));
			fprintf(f, "%s{host=\"%u\",direction=\"from_host\"} %llu\n", name, id,
				(unsigned long long)(pass ? s.from_host_bytes : s.from_host_packets));
		}
	}
	fprintf(f, "# HELP xdnat_hosts Registered hosts.\n# TYPE xdnat_hosts gauge\nxdnat_hosts %u\n",
		hosts);
	if (fclose(f) && !rc)
		rc = -EIO;
	if (rc) {
		free(*text);
		*text = NULL;
		*len = 0;
	}
	return rc;
}

int xd_metrics_http(void *ctx, const char *path, char **body, size_t *len, const char **ctype)
{
	(void)path;
	if (xd_metrics_render(ctx, body, len))
		return 500;
	*ctype = "text/plain; version=0.0.4; charset=utf-8";
	return 200;
}
