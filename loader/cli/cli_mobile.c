// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatctl mobile show: the roaming hosts' care-of endpoints
 * (docs/ROAMING.md).  The running xdnatd's home agent knows names, care-of
 * addresses and lifetimes; without one (stopped with --keep-maps, the
 * datapath still tunnelling) the pinned maps still say which host ids are
 * away and where their tunnel goes.
 */
#include <string.h>
#include "cli.h"
#include "ctl_sock.h"

/* The care-of endpoints in xdnat_coa, read directly. */
static int from_maps(void)
{
	struct xd_maps m;
	struct xd_json j;
	char a[INET_ADDRSTRLEN];
	int rc = 0;

	if (xd_maps_open(cli.pin_base, cli.instance, &m))
		return 1;
	if (cli.json) {
		xd_json_begin(&j, stdout);
		xd_json_str(&j, "source", "maps");
		xd_json_arr_open(&j, "mobile");
	} else {
		printf("no xdnatd answers: the care-of endpoints in the pinned maps\n");
		printf("%5s %-21s\n", "id", "tunnel");
	}
	for (uint32_t id = 1; id < m.cfg.max_hosts; id++) {
		struct xdnat_coa c;

		if ((rc = xd_coa_get(&m, id, &c)))
			break;
		if (!(c.ep.flags & XDNAT_COA_F_ACTIVE))
			continue;
		xd_ipstr(c.ep.addr, a);
		if (!cli.json) {
			printf("%5u %s:%u\n", id, a, ntohs(c.ep.port));
			continue;
		}
		xd_json_obj_open(&j, NULL);
		xd_json_u64(&j, "host_id", id);
		xd_json_str(&j, "tunnel_addr", a);
		xd_json_u64(&j, "tunnel_port", ntohs(c.ep.port));
		xd_json_u64(&j, "generation", c.generation);
		xd_json_obj_close(&j);
	}
	if (cli.json) {
		xd_json_arr_close(&j);
		xd_json_end(&j);
	}
	xd_maps_close(&m);
	if (rc)
		xd_err("cannot read the care-of endpoints: %s", strerror(-rc));
	return rc ? 1 : 0;
}

int cli_mobile(int argc, char **argv)
{
	int rc;

	if (argc != 2 || strcmp(argv[1], "show"))
		return cli_usage_err("mobile: expected 'show'%s", NULL);
	rc = cli.direct ? -1 : cli_via_daemon(argc, argv, NULL);
	return rc < 0 ? from_maps() : rc;
}
