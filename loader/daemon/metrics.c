// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "metrics.h"
#include "cluster_elect.h"

int xd_metrics_render(struct xd_maps *m, const struct xd_ctr_state *s, char **text, size_t *len)
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
	/* Totals since the first map generation the state database saw. */
	for (uint32_t r = 0; r < XDNAT_R_MAX && s; r++) {
		uint64_t cur[XD_CTR_NVAL] = { c[r].packets, c[r].bytes }, tot[XD_CTR_NVAL];
		char key[XD_CTR_KEY_MAX];

		xd_ctr_reason_key(r, key, sizeof(key));
		xd_ctr_total(s, key, cur, tot);
		c[r].packets = tot[0];
		c[r].bytes = tot[1];
	}
	f = open_memstream(text, len);
	if (!f)
		return -errno;
	fprintf(f, "# HELP xdnat_packets_total Packets by datapath verdict reason.\n"
		   "# TYPE xdnat_packets_total counter\n");
	for (uint32_t r = 0; r < XDNAT_R_MAX; r++)
		fprintf(f, "xdnat_packets_total{reason=\"%s\"} %llu\n", xdnat_reason_names[r],
			(unsigned long long)c[r].packets);
	fprintf(f, "# HELP xdnat_bytes_total Bytes (IPv4 total length) by datapath verdict reason.\n"
		   "# TYPE xdnat_bytes_total counter\n");
	for (uint32_t r = 0; r < XDNAT_R_MAX; r++)
		fprintf(f, "xdnat_bytes_total{reason=\"%s\"} %llu\n", xdnat_reason_names[r],
			(unsigned long long)c[r].bytes);

	fprintf(f, "# HELP xdnat_host_packets_total Packets per host and direction.\n"
		   "# TYPE xdnat_host_packets_total counter\n");
	for (int pass = 0; pass < 2 && !rc; pass++) {
		if (pass == 1)
			fprintf(f, "# HELP xdnat_host_bytes_total Bytes per host and direction.\n"
				   "# TYPE xdnat_host_bytes_total counter\n");
		for (uint32_t id = 1; id < m->cfg.max_hosts; id++) {
			struct xdnat_host h;
			struct xdnat_host_stats hs;
			const char *name = pass ? "xdnat_host_bytes_total" : "xdnat_host_packets_total";
			const char *rsip = NULL;
			char key[XD_CTR_KEY_MAX], lbl[XD_CTR_KEY_MAX + 24] = "";
			uint64_t v[XD_CTR_NVAL];

			if (xd_host_get(m, id, &h))
				continue;
			if ((rc = xd_host_stats(m, id, &hs)))
				break;
			hosts += pass == 0;
			v[0] = hs.to_host_packets;
			v[1] = hs.to_host_bytes;
			v[2] = hs.from_host_packets;
			v[3] = hs.from_host_bytes;
			if (s) {
				uint64_t cur[XD_CTR_NVAL];

				memcpy(cur, v, sizeof(cur));
				xd_ctr_host_key(s, id, key, sizeof(key), &rsip);
				xd_ctr_total(s, key, cur, v);
			}
			/* An RSIP host is also labelled with its enrolled name:
			 * its totals follow the name, and a host id handed to
			 * another host starts another series. */
			if (rsip)
				snprintf(lbl, sizeof(lbl), ",name=\"%s\"", rsip);
			fprintf(f, "%s{host=\"%u\"%s,direction=\"to_host\"} %llu\n", name, id, lbl,
				(unsigned long long)(pass ? v[1] : v[0]));
			fprintf(f, "%s{host=\"%u\"%s,direction=\"from_host\"} %llu\n", name, id, lbl,
				(unsigned long long)(pass ? v[3] : v[2]));
		}
	}
	fprintf(f, "# HELP xdnat_hosts Registered hosts.\n# TYPE xdnat_hosts gauge\nxdnat_hosts %u\n",
		hosts);
	if (s)
		fprintf(f, "# HELP xdnat_counters_since_seconds Start of the counter totals (Unix time), "
			   "kept across reboots in the state database.\n"
			   "# TYPE xdnat_counters_since_seconds gauge\n"
			   "xdnat_counters_since_seconds %llu\n", (unsigned long long)(s->since_ms / 1000));
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
	struct xd_metrics_ctx *x = ctx;
	struct xd_ctr_state s;
	bool have = x->state_dir && !xd_ctr_read(x->state_dir, x->instance, x->maps, &s);
	int rc;

	(void)path;
	rc = xd_metrics_render(x->maps, have ? &s : NULL, body, len);
	if (have)
		xd_ctr_free(&s);
	if (!rc && x->elect)
		rc = xd_elect_metrics_append(x->elect, body, len);
	if (rc)
		return 500;
	if (x->extra) {
		char *buf = NULL;
		size_t n = 0;
		FILE *f = open_memstream(&buf, &n);

		if (!f)
			return 500;
		fwrite(*body, 1, *len, f);
		x->extra(x->extra_arg, f);
		if (fclose(f)) {
			free(buf);
			return 500;
		}
		free(*body);
		*body = buf;
		*len = n;
	}
	*ctype = "text/plain; version=0.0.4; charset=utf-8";
	return 200;
}
