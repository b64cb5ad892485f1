/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdnat-host mobile's parts (docs/ROAMING.md): host_mobile.c (options, the
 * main loop, the registration client on UDP 434 of G), host_mobile_tunnel.c
 * (this host's end of the UDP tunnel: a TUN device or the tc-BPF programs,
 * and the routes through it), host_mobile_home.c (--home-router: noticing
 * that the host left home or came back).
 */
#ifndef XDNAT_HOST_MOBILE_INT_H
#define XDNAT_HOST_MOBILE_INT_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "host_agent.h"
#include "mip_wire.h"

#define MOB_MARK 0x4d49   /* "MI": our socket's packets skip the local G */

struct mob {
	uint32_t ha;                 /* G: home agent and home address */
	const char *name, *secret_file, *tun_name, *dev, *dump;
	char name_buf[RSIP_KEYID_MAX + 1];
	uint8_t key[MIP_KEY_LEN];
	uint32_t lifetime, lport, tries;
	const char *routes[MAX_ROUTES];
	int n_routes;
	bool once, dereg;
	int fd, tunfd, sfd;
	uint64_t last_id;
	int64_t clock_off_s;         /* from a 133 reply: the router's clock - ours */
	uint16_t granted, keepalive;
	bool rules_set, tun_addr_set;
	char old_accept_local[8];   /* restored on exit; "" unchanged */
	/* --dev: the hostside BPF programs (xdnat_host_roam_*) on the NIC */
	struct xdnat_hostside *skel;
	int ifindex;
	bool hook_created, eg_on, in_on, g_on_lo;
	uint32_t coa;               /* the socket's address at the last registration */
	bool retry;                 /* a 133: try again at once */
	uint32_t home_router;       /* --home-router: away when it is not on-link */
	bool away, routes_on;
	int nlfd;                   /* route/address/link changes: look again at once */
};

static inline int ip_cmd(const char *const argv[])
{
	return xd_run(argv) ? -EIO : 0;
}

/* host_mobile.c */
int mob_route_get(uint32_t dst, bool marked, char *out, size_t cap);
char *mob_route_field(char *route, const char *key);
ssize_t mob_send_ha(struct mob *m, const void *buf, size_t n);
int mob_register(struct mob *m, uint16_t life);

/* host_mobile_tunnel.c */
int mob_tun_up(struct mob *m);
void mob_tun_down(struct mob *m);
int mob_routes_up(struct mob *m);
void mob_routes_down(struct mob *m);
int mob_dev_up(struct mob *m);
void mob_dev_set(struct mob *m, bool active);
void mob_dev_down(struct mob *m);
void mob_from_tun(struct mob *m);

/* host_mobile_home.c */
void mob_home_watch_start(struct mob *m);
void mob_home_watch_stop(struct mob *m);
void mob_home_drain(struct mob *m);
void mob_home_check(struct mob *m, uint64_t now, uint64_t *next_reg);

#endif
