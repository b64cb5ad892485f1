/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared user-space helpers of xdnatd, xdnatctl and xdnat-host. */
#ifndef XDNAT_USER_H
#define XDNAT_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <netinet/in.h>
#include "xdnat_abi.h"

/* ---- util.c: parsing, messages ---- */
extern const char *xd_progname;
extern int xd_verbose;

void xd_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void xd_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void xd_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Until called again with NULL: xd_err() messages are collected in @buf
 * ("first; second", truncated) instead of printed, so that xdnatd can send
 * them back to the xdnatctl that made the request.  Warnings still print. */
void xd_err_capture(char *buf, size_t len);

/* Each returns 0 or -EINVAL; nothing is written on error. */
int xd_parse_ipv4(const char *s, uint32_t *addr_be);
int xd_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
/* "A-B" or "A"; decimal or 0x hex; min <= A <= B <= max. */
int xd_parse_range(const char *s, uint32_t min, uint32_t max, uint32_t *first, uint32_t *last);
/* "ADDR/LEN" or "default" (0.0.0.0/0). */
int xd_parse_prefix(const char *s, uint32_t *addr_be, uint32_t *len);
const char *xd_ipstr(uint32_t addr_be, char buf[INET_ADDRSTRLEN]);
/* Instance names become path components: [A-Za-z0-9_.-]{1,32}, not "." or "..". */
bool xd_valid_instance(const char *name);

/* Minimal JSON writer for -j output. */
struct xd_json {
	FILE *f;
	int depth;
	bool first[16];
};
void xd_json_begin(struct xd_json *j, FILE *f);
void xd_json_obj_open(struct xd_json *j, const char *key);
void xd_json_obj_close(struct xd_json *j);
void xd_json_arr_open(struct xd_json *j, const char *key);
void xd_json_arr_close(struct xd_json *j);
void xd_json_str(struct xd_json *j, const char *key, const char *val);
void xd_json_u64(struct xd_json *j, const char *key, uint64_t val);
void xd_json_bool(struct xd_json *j, const char *key, bool val);
void xd_json_end(struct xd_json *j);

/* ---- pins.c: the pinned maps of a router instance ---- */
struct xd_maps {
	int info, ports, spis, hosts, lan_idx, hstats, stats;
	int coa, coa_idx; /* roaming hosts' care-of endpoints (xd_coa_*) */
	struct xdnat_router_cfg cfg;
	int ncpus;
};
int xd_pin_dir(const char *base, const char *instance, char *buf, size_t len);
/* 0 if the maps pinned in @dir (if any) have this build's map ABI. */
int xd_pins_check_abi(const char *dir);
/* Open every pinned map of the instance; prints why on failure. */
int xd_maps_open(const char *base, const char *instance, struct xd_maps *m);
void xd_maps_close(struct xd_maps *m);

/* Host and block management on the maps.  Errors are printed; the maps are
 * left as they were (checks come before any write).  Only the instance's
 * one writer calls these (loader/daemon/writer.h): check-then-write is not
 * atomic against a second writing process. */
int xd_host_add(struct xd_maps *m, uint32_t id, uint32_t lan_be, uint32_t gidx);
int xd_host_del(struct xd_maps *m, uint32_t id);
int xd_host_get(struct xd_maps *m, uint32_t id, struct xdnat_host *h);
int xd_ports_add(struct xd_maps *m, uint32_t id, uint32_t first, uint32_t last);
int xd_ports_del(struct xd_maps *m, uint32_t id, uint32_t first, uint32_t last);
int xd_spis_add(struct xd_maps *m, uint32_t id, uint32_t first, uint32_t last);
int xd_spis_del(struct xd_maps *m, uint32_t id, uint32_t first, uint32_t last);
int xd_gaddr_index(const struct xd_maps *m, uint32_t addr_be);
/* First port of [first,last] on global address @gidx (first SPI of the
 * first owned block in [first,last]) that any host owns, or -1 if none. */
int64_t xd_ports_first_owned(struct xd_maps *m, uint32_t gidx, uint32_t first, uint32_t last);
int64_t xd_spis_first_owned(struct xd_maps *m, uint32_t first, uint32_t last);

/* Shared IKE ports (docs/SHARED-IKE.md): mark @ports (n <= XDNAT_MAX_SHARED_PORTS)
 * shared on every global address, free those no longer listed; refuses
 * (-EBUSY) when a host owns one.  Default host for IKE_SA_INIT of remote
 * initiators per global address and port (0: none, dropped). */
struct xd_shared { uint32_t gidx; uint16_t port; uint32_t kind, default_host; };
uint32_t xd_shared_kind(uint16_t port);
int xd_shared_ports_apply(struct xd_maps *m, const uint16_t *ports, unsigned n);
struct xd_run;
/* Mark ports @runs of every global address as the router's own services
 * (XDNAT_HOST_ROUTER: passed to its stack whatever the unknown policy) and
 * unmark the ones no longer listed.  Refuses ports a host or the shared IKE
 * mode holds, changing nothing. */
int xd_router_ports_apply(struct xd_maps *m, const struct xd_run *runs, unsigned n);
int xd_shared_default(struct xd_maps *m, uint32_t gidx, uint16_t port, uint32_t host);
int xd_shared_list(struct xd_maps *m, struct xd_shared *out, size_t max, size_t *n);

/* Roaming hosts (maps/xdnat_abi.h, "the care-of endpoint"): host @id is
 * reached at care-of endpoint @addr_be:@port_be (network order, as the home
 * agent sees them) with @flags (XDNAT_COA_F_ACTIVE: tunnel there; without
 * it the entry is kept but the host is reached on the LAN), @generation for
 * the caller.  One update of xdnat_coa switches the datapath; the reverse
 * index is written before it and cleaned after.  -EEXIST: another host
 * holds that endpoint (clear it first); -ENOENT: no host @id.
 * xd_coa_clear: back to the LAN address (no-op when not away).
 * xd_coa_get: 0 and *c (all zero when at home), or -errno. */
int xd_coa_set(struct xd_maps *m, uint32_t id, uint32_t addr_be, uint16_t port_be,
	       uint16_t flags, uint32_t generation);
int xd_coa_clear(struct xd_maps *m, uint32_t id);
int xd_coa_get(struct xd_maps *m, uint32_t id, struct xdnat_coa *c);

/* Blocks owned by a host, as [first,last] runs (caller frees *runs). */
struct xd_run { uint32_t first, last; };
/* Sort @r by first and merge overlapping or touching runs; the new count. */
size_t xd_runs_merge(struct xd_run *r, size_t n);
int xd_ports_of(struct xd_maps *m, uint32_t id, struct xd_run **runs, size_t *n);
int xd_spis_of(struct xd_maps *m, uint32_t id, struct xd_run **runs, size_t *n);
/* Sum a per-CPU value of the given map over CPUs. */
int xd_host_stats(struct xd_maps *m, uint32_t id, struct xdnat_host_stats *out);
int xd_reason_stats(struct xd_maps *m, uint32_t reason, struct xdnat_counter *out);

/* ---- netcfg.c: system configuration ---- */
/* Run a command (no shell); returns its exit status, or -1.  Quiet unless
 * verbose; on failure the command line and its stderr are shown. */
int xd_run(const char *const argv[]);
int xd_run_capture(const char *const argv[], char *out, size_t outlen);
int xd_sysctl_get(const char *path, char *buf, size_t len);
int xd_sysctl_set(const char *path, const char *val);
int xd_ifindex(const char *ifname);
int xd_if_first_ipv4(const char *ifname, uint32_t *addr_be);
/* bind() an IPv4 socket to @sa; an address not (yet) on this machine, a
 * virtual address VRRP moves here when this router becomes the master, is
 * bound with IP_FREEBIND and named in a warning (@what: the service). */
struct sockaddr_in;
int xd_bind_maybe_virtual(int fd, const struct sockaddr_in *sa, const char *what);
/* The MTU of @ifname in the caller's network namespace (SIOCGIFMTU): 0 or -errno. */
int xd_if_mtu(const char *ifname, uint32_t *mtu);

#endif
