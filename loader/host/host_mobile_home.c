// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnat-host mobile --home-router: away while the router's LAN address is
 * not on-link, looked at on every route, address or link change (netlink)
 * and every second; leaving registers, coming back deregisters.
 */
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "host_mobile_int.h"

/* Is the home router on-link (1), behind a gateway (0), unreachable (-1)? */
static int at_home(struct mob *m)
{
	char out[512] = "";

	if (mob_route_get(m->home_router, false, out, sizeof(out)) || !*out)
		return -1;
	return strstr(out, " via ") ? 0 : 1;
}

/* --home-router: netlink notifications of route, address and link changes
 * (m->nlfd, -1 without: then only the one-second look). */
void mob_home_watch_start(struct mob *m)
{
	m->nlfd = -1;
	if (m->home_router) {
		struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
					  .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR |
						       RTMGRP_IPV4_ROUTE };

		m->nlfd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
		if (m->nlfd >= 0 && bind(m->nlfd, (struct sockaddr *)&sa, sizeof(sa))) {
			close(m->nlfd);
			m->nlfd = -1;
		}
		if (m->nlfd < 0)
			xd_warn("mobile: no netlink notifications: looking for moves every second");
	}
}

void mob_home_watch_stop(struct mob *m)
{
	if (m->nlfd >= 0)
		close(m->nlfd);
}

/* A route, address or link changed: drain, look again now. */
void mob_home_drain(struct mob *m)
{
	char nb[8192];

	while (recv(m->nlfd, nb, sizeof(nb), MSG_DONTWAIT) > 0)
		;
}

/* Look where we are: back home deregisters (and takes the --route CIDRs
 * away), leaving registers now (*@next_reg) and routes them. */
void mob_home_check(struct mob *m, uint64_t now, uint64_t *next_reg)
{
	int h = at_home(m);

	if (h == 1 && m->away) {
		/* Back home: the router sends to the LAN address again. */
		m->away = false;
		mob_routes_down(m);
		if (mob_register(m, 0))
			xd_warn("mobile: back home, but the deregistration failed: the "
				"registration ends with its lifetime");
		printf("xdnat-host: mobile: home\n");
		fflush(stdout);
	} else if (h == 0 && !m->away) {
		m->away = true;
		*next_reg = now;
		printf("xdnat-host: mobile: away\n");
		fflush(stdout);
		if (m->dev && mob_routes_up(m))
			xd_warn("mobile: cannot route through the tunnel");
	}
}
