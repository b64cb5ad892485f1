// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatctl cluster: who holds each role of the cluster's elections
 * (expiry worker, signer; docs/CLUSTER.md "Elections and quorum loss"),
 * read from the etcd store itself, so every router shows the same answer
 * and it works with no xdnatd running here.  Each router's own view (is
 * it acting, does the store answer, the grace left) is in its /metrics.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "cluster_elect.h"
#include "store.h"
#include "store_etcd_lease.h"

int cli_cluster(int argc, char **argv)
{
	struct xd_etcd_lease *l = NULL;
	struct xd_store *db;
	struct xd_json j;
	char err[256];
	int rc = 0;

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "show")))
		return cli_usage_err("cluster: expected 'show' or nothing, not '%s'", argv[1]);
	if (xd_store_open(cli.state_dir, cli.instance, XD_STORE_RDONLY, &db, err, sizeof(err))) {
		xd_err("%s%s", err, xd_store_config()->backend == XD_STORE_ETCD ||
		       xd_store_is_etcd(cli.state_dir) ? " (quorum lost, or no member reachable?)" : "");
		return 1;
	}
	if (strcmp(db->ops->name, "etcd")) {
		printf("one router: the state store is %s, not etcd, so there are no elections "
		       "(this router does everything)\n", db->ops->name);
		xd_store_close(db);
		return 0;
	}
	if (xd_etcd_lease_open(cli.state_dir, cli.instance, 0, &l, err, sizeof(err))) {
		xd_err("%s", err);
		xd_store_close(db);
		return 1;
	}
	if (cli.json) {
		xd_json_begin(&j, stdout);
		xd_json_arr_open(&j, "roles");
	} else {
		printf("%-8s %-32s %-18s %s\n", "role", "router", "lease", "ttl_s");
	}
	for (int r = 0; r < XD_ROLE_N && !rc; r++) {
		char holder[XD_ELECT_ID_MAX], ls[24] = "-";
		int64_t lease = 0, ttl = 0;
		int found = xd_etcd_leader(l, xd_role_names[r], holder, sizeof(holder), &lease);

		if (found < 0) {
			xd_err("%s (quorum lost, or no member reachable?)", xd_etcd_lease_error(l));
			rc = 1;
			break;
		}
		if (found && lease && xd_etcd_lease_ttl(l, lease, &ttl))
			ttl = 0;
		if (found)
			snprintf(ls, sizeof(ls), "%" PRIx64, (uint64_t)lease);
		if (cli.json) {
			xd_json_obj_open(&j, NULL);
			xd_json_str(&j, "role", xd_role_names[r]);
			xd_json_bool(&j, "held", found == 1);
			if (found) {
				xd_json_str(&j, "router", holder);
				xd_json_str(&j, "lease", ls);
				xd_json_u64(&j, "ttl_s", (uint64_t)(ttl > 0 ? ttl : 0));
			}
			xd_json_obj_close(&j);
		} else {
			printf("%-8s %-32s %-18s %" PRId64 "\n", xd_role_names[r], found ? holder : "(none)",
			       ls, ttl);
		}
	}
	if (cli.json) {
		xd_json_arr_close(&j);
		xd_json_end(&j);
	}
	xd_etcd_lease_close(l);
	xd_store_close(db);
	return rc;
}
