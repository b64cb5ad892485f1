/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdnatd's own state, shared by the files of the daemon (loader/daemon/):
 * options.c and config.c read the command line and the configuration file,
 * setup.c takes the instance lock and sets sysctls, attach.c loads and
 * attaches the BPF programs and keeps the hosts' neighbours (through
 * neigh.c), services.c runs RSIP, the Local CA, counters, metrics and the
 * control socket, and xdnatd.c starts it all and waits for signals.
 */
#ifndef XDNATD_H
#define XDNATD_H

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "xdnat.h"
#include "httpd.h"
#include "metrics.h"
#include "counters.h"
#include "store.h"
#include "fragq.h"
#include "rsip_server.h"
#include "ca_plane.h"
#include "ca_notify.h"
#include "ctl_sock.h"
#include "lca.h"
#include "notice.h"
#include "opts.h"
#include "neigh.h"
#include "cluster_elect.h"
#include "mip_server.h"
#include "cluster_sync.h"
#include <ifaddrs.h>
#include <pthread.h>
#include <time.h>

#define RUN_DIR "/run/xdnat"
#define TC_HANDLE 0x4555 /* RSIP's port, to recognise our filters */
#define TC_PRIO 1
#define NEIGH_SCAN_MS 1000
#define NEIGH_SOON_MS 50    /* after RSIP or control requests (xdnatd.c) */

enum attach_mode { MODE_AUTO, MODE_XDP, MODE_TC };

struct opts {
	const char *wan, *lan, *instance, *pin_base;
	uint32_t gaddrs[XDNAT_MAX_GADDRS];
	uint32_t n_gaddrs;
	uint32_t lan_addr;
	bool lan_addr_set;
	enum attach_mode mode;
	bool unknown_drop, keep_maps, no_sysctl, no_neigh;
	uint32_t max_hosts, spi_bits, nh_cache_ms;
	struct xd_run router_ports[32];            /* --router-ports */
	unsigned n_router_ports;
	uint16_t shared_ike[XDNAT_MAX_SHARED_PORTS]; /* --shared-ike-ports */
	unsigned n_shared_ike;
	/* RSIP control plane */
	bool rsip;
	uint32_t rsip_port, rsip_max_clients, rsip_idle, rsip_per_addr, rsip_preauth;
	struct rsip_config rcfg;
	uint32_t elect_ttl;        /* --elect-ttl */
	const char *config;        /* --config FILE */
	bool check_only;           /* --check-config */
	bool in_config, gaddrs_from_config;
	char *owned[128];          /* values read from the configuration file */
	int n_owned;
	/* Prometheus endpoint: a UNIX socket (default RUN_DIR/INSTANCE.metrics)
	 * or ADDR:PORT; off when neither */
	bool metrics_unix;
	const char *metrics_path;  /* NULL: the default path */
	const char *metrics_group; /* --metrics-group: socket mode 0660 with it */
	uint32_t metrics_addr;
	uint16_t metrics_port;
	bool metrics_explicit;
	/* Counter totals in the state database: with --rsip or --state-dir */
	bool state_dir_set;
	uint32_t counters_interval;  /* seconds between saves */
	/* Local CA (docs/LCA.md): off without --ca-key and --ca-cert */
	const char *ca_key, *ca_cert, *ca_chain, *crl_url;
	uint32_t crl_period;
	uint32_t crl_addr;
	uint16_t crl_port;
	bool crl_listen_set;
	uint32_t crl_max_conns, crl_per_ip, crl_timeout;  /* the CRL server's limits */
	char crl_url_buf[96];
	uint32_t notify_port;      /* revocation notices; 0: off */
	bool notify_set;
	/* [store]: the backend and how to reach it (store.h) */
	struct xd_store_cfg store;
	/* Roaming hosts (docs/ROAMING.md): the Mobile IPv4 home agent */
	bool mobile;
	uint32_t mobile_lifetime, mobile_keepalive;
};

#define METRICS_DEFAULT "unix"   /* RUN_DIR/INSTANCE.metrics, mode 0600 */
#define CRL_DEFAULT_MAX_CONNS 256
#define CRL_DEFAULT_PER_IP 4
#define CRL_DEFAULT_TIMEOUT 5
/* Sysctl values saved before the first run changed them, handed on to the
 * process that replaces us on reload-programs so it restores the originals. */
#define SAVED_SYSCTLS_ENV "XDNATD_SAVED_SYSCTLS"


struct sysctl_saved {
	char path[128];
	char old[32];
	bool changed;
};

/* The BPF skeleton (build/xdnat_router.skel.h): included by the files that
 * use it, so that a change to the BPF programs rebuilds only those. */
struct xdnat_router;

struct daemon {
	struct opts o;
	struct xdnat_router *skel;
	struct xdnat_router_cfg cfg;
	char pin_dir[256];
	int wan_ifindex, lan_ifindex;
	int lock_fd;
	bool tc_mode;
	int link_fd[2];            /* XDP mode: WAN, LAN */
	bool tc_attached[2], tc_hook_created[2];
	struct sysctl_saved sysctls[8];
	int n_sysctls;
	struct xd_neigh *neigh;    /* the hosts' neighbour entries (neigh.h) */
	uint32_t *neigh_want;      /* per host id: its LAN address, 0: none */
	bool maps_reused;          /* pins came from an earlier run: never remove on error */
	bool neigh_unsupported;
	struct xd_maps maps;       /* RSIP: the pinned maps, as the server's backend */
	struct rsip_server rsip;
	bool rsip_on;
	struct xd_csync *csync;    /* etcd store: the maps follow every router's writes */
	struct xd_maps mmaps;      /* metrics: our own view of the pinned maps */
	bool mmaps_open;
	struct xd_metrics_ctx mctx;
	struct xd_store *ctr_db;   /* counter totals (counters.h); NULL: off */
	struct xd_maps cmaps;
	uint64_t ctr_saved_ms;
	struct xd_httpd *httpd;
	struct xd_ca *ca;          /* Local CA, with the RSIP server */
	struct xd_httpd *crl_httpd;
	pthread_mutex_t crl_mu;    /* the CRL is served from libmicrohttpd's thread */
	uint8_t *crl;
	size_t crl_len;
	struct xd_notifier *notifier;  /* revocation notices to the hosts' IPsec peers */
	struct xd_elect *elect;    /* elections (etcd store; NULL: one router) */
	struct ctl_sock *ctl;      /* RUN_DIR/INSTANCE.ctl for xdnatctl, with RSIP */
	struct mip_server mip;     /* Mobile IPv4 home agent (mobile.c), with RSIP */
	bool mip_on;
	char self_exe[4096];       /* binary to re-execute on reload-programs */
	int argc;                  /* our command line, re-read on SIGHUP */
	char **argv;
};

/* Exit status: 1 error (also an invalid configuration file), 2 usage error. */
#define XDD_EXIT_ERROR 1
#define XDD_EXIT_USAGE 2

/* options.c: the option table; parse_args returns 0 or an exit status. */
extern const struct xo_prog xdd_prog;
int xdd_parse_args(int argc, char **argv, struct opts *o);
void xdd_free_opts(struct opts *o);
int xdd_apply_opt(struct opts *o, int id, char *arg);
int xdd_set_opt(struct opts *o, const struct xo_opt *e, char *arg);
/* config.c */
void xdd_usage_config(void);
int xdd_load_config(struct opts *o, const char *path);
/* setup.c */
int xdd_take_lock(struct daemon *d);
int xdd_setup_sysctls(struct daemon *d);
void xdd_restore_sysctls(struct daemon *d);
/* stateperm.c: the state directory and --ca-key private (refuse or fix) */
int xdd_check_state_perms(struct daemon *d);
/* attach.c */
int xdd_load(struct daemon *d);
int xdd_attach_all(struct daemon *d);
void xdd_detach_all(struct daemon *d);
void xdd_unpin_maps(struct daemon *d);
/* attach.c: the hosts' neighbour entries (neigh.c keeps them) */
void xdd_neigh_scan(struct daemon *d);
void xdd_neigh_cleanup(struct daemon *d);
/* services.c */
int xdd_apply_shared_ike(struct daemon *d);
int xdd_start_rsip(struct daemon *d);
void xdd_stop_rsip(struct daemon *d);
int xdd_start_ca(struct daemon *d);
void xdd_stop_ca(struct daemon *d);
void xdd_ca_tick(struct daemon *d);
void xdd_save_counters(struct daemon *d);
void xdd_start_counters(struct daemon *d);
void xdd_stop_counters(struct daemon *d);
int xdd_start_metrics(struct daemon *d);
void xdd_stop_metrics(struct daemon *d);
void xdd_start_ctl(struct daemon *d);
/* cluster_elect.c: elections with an etcd store (no-ops otherwise) */
int xdd_start_cluster(struct daemon *d);
void xdd_stop_cluster(struct daemon *d);
/* For a re-exec: the election lease goes to the new process (roles kept). */
void xdd_handover_cluster(struct daemon *d);
int xdd_sweep(struct daemon *d);          /* rsip_server_sweep if this router expires */
bool xdd_may_sign(struct daemon *d);
void xdd_stop_ctl(struct daemon *d);
/* mobile.c: the Mobile IPv4 home agent on UDP 434 (docs/ROAMING.md) */
int xdd_start_mobile(struct daemon *d);
void xdd_stop_mobile(struct daemon *d);
/* After the event loop's poll: its datagrams (if @readable) and expiries;
 * returns ms until its next deadline. */
int xdd_mobile_run(struct daemon *d, bool readable);
/* /metrics (the HTTP thread): the home agent's counters, from a snapshot. */
void xdd_mobile_metrics(void *arg, FILE *f);

#endif
