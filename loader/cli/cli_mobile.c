// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xdnatctl mobile show: the roaming hosts' care-of endpoints, from the
 * running xdnatd's home agent (docs/ROAMING.md): its registrations live in
 * its memory, so there is no offline view. */
#include <string.h>
#include "cli.h"
#include "ctl_sock.h"

int cli_mobile(int argc, char **argv)
{
	char path[128];
	int rc;

	if (argc != 2 || strcmp(argv[1], "show"))
		return cli_usage_err("mobile: expected 'show'%s", NULL);
	rc = cli_via_daemon(argc, argv, NULL);
	if (rc < 0) {
		ctl_sock_path(cli.instance, path, sizeof(path));
		xd_err("no xdnatd answers on %s: mobile show needs the running xdnatd", path);
		rc = 1;
	}
	return rc;
}
