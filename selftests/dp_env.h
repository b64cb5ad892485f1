/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The datapath test environment shared by test_datapath and test_corpus:
 * the topology's names, MACs and addresses, and dp_env_up(), which moves
 * the test process into private network and mount namespaces with its own
 * bpffs and builds
 *
 *   remote 203.0.113.7 / gw .254 --- wan0 [router] lan0 10.77.0.1/24 --- hosts
 *     (permanent neighbours)   203.0.113.1/24       (neighbours as listed)
 *
 * The veth peers wan1/lan1 only give wan0/lan0 carrier.  Header-only: each
 * test is one translation unit.
 */
#ifndef XDNAT_DP_ENV_H
#define XDNAT_DP_ENV_H

#include <criterion/criterion.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "pkt.h"

static const uint8_t MAC_WAN0[6]   = { 0x02, 0, 0, 0, 0x01, 0x00 };
static const uint8_t MAC_WAN1[6]   = { 0x02, 0, 0, 0, 0x01, 0x01 };
static const uint8_t MAC_LAN0[6]   = { 0x02, 0, 0, 0, 0x02, 0x00 };
static const uint8_t MAC_LAN1[6]   = { 0x02, 0, 0, 0, 0x02, 0x01 };
static const uint8_t MAC_REMOTE[6] = { 0x02, 0, 0, 0, 0x77, 0x07 };
static const uint8_t MAC_GW[6]     = { 0x02, 0, 0, 0, 0x77, 0xfe };
static const uint8_t MAC_STRAY[6]  = { 0x02, 0, 0, 0, 0xee, 0xee }; /* unknown LAN box */

#define WAN_ADDR      IP4(203, 0, 113, 1)
#define REMOTE        IP4(203, 0, 113, 7)   /* on-link, permanent neighbour */
#define WAN_GW        IP4(203, 0, 113, 254) /* default route, permanent neighbour */
#define REMOTE_FAR    IP4(198, 51, 100, 77) /* via the default route */
#define REMOTE_NONEIGH IP4(203, 0, 113, 99) /* on-link, no neighbour entry */
#define LAN_ROUTER    IP4(10, 77, 0, 1)
#define LAN_STRAY     IP4(10, 77, 0, 50)    /* not registered */
#define G0            IP4(192, 0, 2, 1)
#define G1            IP4(198, 51, 100, 1)
#define NOT_GLOBAL    IP4(192, 0, 2, 2)


/* A registered host of a test's table. */
struct hostdef {
	uint32_t id;
	uint32_t lan;       /* LAN (tunnel) address */
	uint8_t mac[6];     /* neighbour entry on lan0, when has_neigh */
	bool has_neigh;
	uint32_t gidx;      /* global address it shares */
	uint32_t flags;     /* xdnat_host.flags */
	uint32_t idx_lan;   /* key under which xdnat_lan_idx lists it */
};

struct env {
	bool ready;
	int wan0, lan0, lan1;
	int ncpus;
};

static struct env env;

/* Run a setup command through the shell; any failure fails the test. */
static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int n, st;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert(n > 0 && (size_t)n < sizeof(cmd), "test bug: command too long");
	st = system(cmd);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "setup command failed (wait status %d): %s", st, cmd);
}

static void write_file(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");

	cr_assert(f, "open %s: %s", path, strerror(errno));
	cr_assert(fputs(val, f) >= 0, "write %s: %s", path, strerror(errno));
	cr_assert(fclose(f) == 0, "close %s: %s", path, strerror(errno));
}

static const char *macstr(const uint8_t m[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return buf;
}

static const char *ipstr(uint32_t a, char buf[16])
{
	snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
	return buf;
}

static int ifindex_of(const char *name)
{
	unsigned int i = if_nametoindex(name);

	cr_assert(i != 0, "if_nametoindex(%s): %s", name, strerror(errno));
	return (int)i;
}

/*
 * Private namespaces and the veth topology, once per process.  Criterion
 * runs each test in its own process, so every test starts from scratch and
 * nothing survives it: the netns, its links and the bpffs vanish on exit.
 */
static void dp_env_up(const char *pin_base, const struct hostdef *hosts, size_t nhosts)
{
	char m1[18], m2[18], a[16];

	if (env.ready)
		return;
	cr_assert(geteuid() == 0,
		  "the packet tests load BPF programs and create network namespaces: run as root");
	cr_assert(unshare(CLONE_NEWNET | CLONE_NEWNS) == 0,
		  "unshare(CLONE_NEWNET|CLONE_NEWNS): %s", strerror(errno));
	cr_assert(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0,
		  "make / rprivate: %s", strerror(errno));
	cr_assert(mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") == 0,
		  "mount a private bpffs on /sys/fs/bpf: %s (is CONFIG_BPF_SYSCALL on?)",
		  strerror(errno));
	cr_assert(mkdir(pin_base, 0700) == 0, "mkdir %s: %s", pin_base, strerror(errno));

	/* bpf_fib_lookup() answers "forwarding disabled" unless it is on. */
	write_file("/proc/sys/net/ipv4/ip_forward", "1");

	sh("ip link set lo up");
	sh("ip link add wan0 address %s type veth peer name wan1 address %s",
	   macstr(MAC_WAN0, m1), macstr(MAC_WAN1, m2));
	sh("ip link add lan0 address %s type veth peer name lan1 address %s",
	   macstr(MAC_LAN0, m1), macstr(MAC_LAN1, m2));
	sh("ip link set wan0 up && ip link set wan1 up && ip link set lan0 up && ip link set lan1 up");
	sh("ip addr add %s/24 dev wan0", ipstr(WAN_ADDR, a));
	sh("ip addr add %s/24 dev lan0", ipstr(LAN_ROUTER, a));
	sh("ip neigh add %s lladdr %s dev wan0 nud permanent", ipstr(REMOTE, a), macstr(MAC_REMOTE, m1));
	sh("ip neigh add %s lladdr %s dev wan0 nud permanent", ipstr(WAN_GW, a), macstr(MAC_GW, m1));
	sh("ip route add default via %s dev wan0", ipstr(WAN_GW, a));
	for (size_t i = 0; i < nhosts; i++)
		if (hosts[i].has_neigh)
			sh("ip neigh add %s lladdr %s dev lan0 nud permanent",
			   ipstr(hosts[i].lan, a), macstr(hosts[i].mac, m1));

	env.wan0 = ifindex_of("wan0");
	env.lan0 = ifindex_of("lan0");
	env.lan1 = ifindex_of("lan1");
	env.ncpus = libbpf_num_possible_cpus();
	cr_assert(env.ncpus > 0, "libbpf_num_possible_cpus: %d", env.ncpus);
	env.ready = true;
}

#endif /* XDNAT_DP_ENV_H */
