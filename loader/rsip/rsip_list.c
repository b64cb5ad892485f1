// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The operator's listing of the RSIP state (xdnatctl rsip list): see
 * rsip_server.h.  The rows come from the store (store.h, list()). */
#include <stdio.h>
#include "rsip_server.h"

struct list_ctx {
	bool json;
	FILE *f;
	uint64_t now_ms;
	struct xd_json j;
};

static void row_json(struct list_ctx *x, const struct xd_list_row *r, const char *name, int64_t left)
{
	char a[INET_ADDRSTRLEN];

	xd_json_obj_open(&x->j, NULL);
	xd_json_str(&x->j, "host", name);
	xd_json_bool(&x->j, "enrolled", r->enrolled);
	xd_json_str(&x->j, "lan", r->lan ? xd_ipstr(r->lan, a) : "any");
	xd_json_bool(&x->j, "registered", r->registered);
	if (r->registered) {
		xd_json_u64(&x->j, "client_id", r->client_id);
		xd_json_u64(&x->j, "host_id", r->host_id);
	}
	if (r->bound) {
		xd_json_u64(&x->j, "bind_id", r->b.id);
		xd_json_str(&x->j, "kind", r->b.kind == RSIP_KIND_SPI ? "spi" : "ports");
		xd_json_u64(&x->j, "first", r->b.first);
		xd_json_u64(&x->j, "last", r->b.last);
		xd_json_str(&x->j, "state", r->b.state == RSIP_BIND_ACTIVE ? "active" : "quarantine");
		xd_json_u64(&x->j, "remaining_s", (uint64_t)left);
	}
	xd_json_obj_close(&x->j);
}

static int row(void *arg, const struct xd_list_row *r)
{
	struct list_ctx *x = arg;
	const struct xd_binding *b = &r->b;
	const char *name = r->name[0] ? r->name : "?";   /* a binding older than owner names */
	int64_t left = r->bound ? (b->until_ms - (int64_t)x->now_ms) / 1000 : 0;
	char range[32] = "-", host[80], a[INET_ADDRSTRLEN];
	char cid[16] = "-", hid[16] = "-", bid[16] = "-", rem[24] = "-";

	if (left < 0)
		left = 0;
	if (r->bound)
		snprintf(range, sizeof(range), b->kind == RSIP_KIND_SPI ? "0x%x-0x%x" : "%u-%u", b->first,
			 b->last);
	if (x->json) {
		row_json(x, r, name, left);
		return 0;
	}
	if (r->registered) {
		snprintf(cid, sizeof(cid), "%u", r->client_id);
		snprintf(hid, sizeof(hid), "%u", r->host_id);
	}
	if (r->bound) {
		snprintf(bid, sizeof(bid), "%u", b->id);
		snprintf(rem, sizeof(rem), "%llds", (long long)left);
	}
	/* A host no longer enrolled is marked with a '*'. */
	snprintf(host, sizeof(host), "%s%s", name, r->enrolled ? "" : "*");
	fprintf(x->f, "%-16s %-15s %-9s %-7s %-8s %-5s %-23s %-10s %s\n", host,
		r->lan ? xd_ipstr(r->lan, a) : "any", cid, hid, bid,
		r->bound ? (b->kind == RSIP_KIND_SPI ? "spi" : "ports") : "-", range,
		r->bound ? (b->state == RSIP_BIND_ACTIVE ? "active" : "quarantine") : "-", rem);
	return 0;
}

int rsip_list(struct xd_store *st, bool json, FILE *f, uint64_t now_ms)
{
	struct list_ctx x = { .json = json, .f = f, .now_ms = now_ms };
	int rc;

	if (json) {
		xd_json_begin(&x.j, f);
		xd_json_arr_open(&x.j, "bindings");
	} else {
		fprintf(f, "%-16s %-15s %-9s %-7s %-8s %-5s %-23s %-10s %s\n", "host", "lan", "client",
			"hostid", "bind", "kind", "range", "state", "remaining");
	}
	rc = st->ops->list(st, row, &x);
	if (json) {
		xd_json_arr_close(&x.j);
		xd_json_end(&x.j);
	}
	if (rc)
		xd_err("%s", xd_store_error(st));
	return rc;
}
