// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatd: attaches the xdnat router programs to a WAN and a LAN interface,
 * pins their maps under PIN_BASE/INSTANCE/ and keeps them attached until
 * SIGTERM/SIGINT.  XDP programs are attached through pinned BPF links: a
 * crashed daemon leaves them forwarding, and a restarted one swaps its
 * freshly loaded programs in atomically while the pinned maps keep their
 * contents.
 */
#include <sys/resource.h>
#include "xdnatd.h"
#include "xdnat_router.skel.h"


/*
 * reload-programs: hand over to a fresh copy of our binary (possibly a newer
 * build installed in its place).  Links, maps, sysctls and neighbours stay as
 * they are; the new process reuses the pins and swaps its programs in with
 * bpf_link_update.  Only what it would collide with is released here.
 */
static void xdd_reexec(struct daemon *d, char **argv)
{
	char saved[1024] = "";
	size_t off = 0;

	xdd_stop_metrics(d);
	xdd_stop_counters(d);
	xdd_stop_ctl(d);
	xdd_handover_cluster(d);
	xdd_stop_mobile(d);
	xdd_stop_ca(d);
	xdd_stop_rsip(d);
	xd_fragq_stop(NULL);
	for (int i = 0; i < d->n_sysctls; i++) {
		int n;

		if (!d->sysctls[i].changed)
			continue;
		n = snprintf(saved + off, sizeof(saved) - off, "%s%s=%s", off ? ";" : "",
			     d->sysctls[i].path, d->sysctls[i].old);
		if (n < 0 || (size_t)n >= sizeof(saved) - off) {
			xd_err("reload-programs: too many sysctls to hand over");
			return;
		}
		off += (size_t)n;
	}
	if (setenv(SAVED_SYSCTLS_ENV, saved, 1)) {
		xd_err("reload-programs: setenv: %s", strerror(errno));
		return;
	}
	/* The lock is O_CLOEXEC: released by exec, taken by the new process. */
	fflush(NULL);
	execv(d->self_exe, argv);
	xd_err("reload-programs: cannot execute %s: %s; exiting with the datapath "
	       "left forwarding (start xdnatd again to take it over)", d->self_exe,
	       strerror(errno));
}

/*
 * SIGHUP: is the configuration, read again, valid and applicable without a
 * restart?  Interfaces, global addresses, instance, pins, table sizes and
 * the state directory shape the pinned maps and the database; everything
 * else (policies, leases, metrics, RSIP, caches) is applied by re-executing.
 */
static bool reload_allowed(struct daemon *d)
{
	struct opts n;
	bool ok = false;
	const char *why = NULL;

	if (!d->o.config) {
		xd_warn("SIGHUP: no --config to re-read; nothing to do");
		return false;
	}
	if (xdd_parse_args(d->argc, d->argv, &n)) {
		xd_err("SIGHUP: %s is not valid (see above); keeping the running configuration",
		       d->o.config);
		goto out;
	}
	if (strcmp(n.wan, d->o.wan) || strcmp(n.lan, d->o.lan))
		why = "interfaces";
	else if (n.n_gaddrs != d->o.n_gaddrs ||
		 memcmp(n.gaddrs, d->o.gaddrs, n.n_gaddrs * sizeof(n.gaddrs[0])))
		why = "global addresses";
	else if (strcmp(n.instance, d->o.instance) || strcmp(n.pin_base, d->o.pin_base))
		why = "instance or pin base";
	else if (n.max_hosts != d->o.max_hosts || n.spi_bits != d->o.spi_bits)
		why = "max-hosts or spi-block-bits";
	else if (strcmp(n.rcfg.state_dir ? n.rcfg.state_dir : "",
			d->o.rcfg.state_dir ? d->o.rcfg.state_dir : ""))
		why = "state-dir";
	else if (!xd_store_cfg_same(&n.store, &d->o.store))
		why = "[store] settings";
	if (why)
		xd_err("SIGHUP: %s changes the %s, which needs a restart; keeping the running "
		       "configuration", d->o.config, why);
	else
		ok = true;
out:
	xdd_free_opts(&n);
	return ok;
}

static int wait_for_signal(struct daemon *d)
{
	sigset_t set;
	int sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		xd_err("signalfd: %s", strerror(errno));
		return -errno;
	}
	uint64_t last_scan = rsip_now_ms();
	/* A change may have added hosts: their neighbour entries are made at
	 * most NEIGH_SOON_MS later instead of at the next periodic scan, so a
	 * new host's first packets go through XDP, not pass_no_neigh. */
	bool scan_due = false;
	uint64_t next_sweep = 0;
	/* Sized for the connections of the moment (no fixed cap). */
	struct pollfd *p = NULL;
	size_t pcap = 0;

	for (;;) {
		struct signalfd_siginfo si;
		unsigned np = 1, nr = 0, nc = 0, nm = 0;
		int timeout = NEIGH_SCAN_MS, n;
		size_t need = 1 + 1 + CTL_MAX_CONNS + 2;  /* + home agent, cluster sync */
		uint64_t now;

		if (d->rsip_on)
			need += rsip_server_npollfds(&d->rsip);
		if (need > pcap) {
			struct pollfd *np2 = realloc(p, need * sizeof(*p));

			if (!np2) {
				xd_err("poll: out of memory");
				free(p);
				close(sfd);
				return -ENOMEM;
			}
			p = np2;
			pcap = need;
		}
		p[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		if (d->rsip_on) {
			uint64_t t0 = rsip_now_ms();
			int w, t = rsip_server_timeout(&d->rsip);

			/* With a shared store a sweep reads the whole prefix: not on
			 * every wake-up (cluster sync wakes the loop per change), only
			 * when its next deadline (at most 1 s away) has come. */
			if (!d->csync || t0 >= next_sweep) {
				w = xdd_sweep(d);
				next_sweep = t0 + (uint64_t)w;
			} else {
				w = (int)(next_sweep - t0);
			}

			if (w < timeout)
				timeout = w;
			if (t < timeout)
				timeout = t;
			nr = rsip_server_pollfds(&d->rsip, p + 1,
						 (unsigned)(pcap - 1 - (1 + CTL_MAX_CONNS) - 2));
			np += nr;
		}
		nc = ctl_pollfds(d->ctl, p + np, (unsigned)(pcap - np - 2));
		np += nc;
		/* The Mobile IPv4 home agent (mobile.c): its socket and expiries. */
		if (d->mip_on) {
			int w = mip_server_tick(&d->mip);

			if (w < timeout)
				timeout = w;
			p[np++] = (struct pollfd){ .fd = d->mip.fd, .events = POLLIN };
			nm = 1;
		}
		if (scan_due) {
			uint64_t since = rsip_now_ms() - last_scan;
			int left = since >= NEIGH_SOON_MS ? 0 : (int)(NEIGH_SOON_MS - since);

			if (left < timeout)
				timeout = left;
		}
		/* cluster sync: the store's changes, last in the array */
		if (d->csync) {
			int t = xd_csync_timeout(d->csync);

			p[np++] = (struct pollfd){ .fd = xd_csync_fd(d->csync), .events = POLLIN };
			if (t < timeout)
				timeout = t;
		}
		n = poll(p, np, timeout);
		if (n < 0 && errno != EINTR) {
			xd_err("poll: %s", strerror(errno));
			free(p);
			close(sfd);
			return -errno;
		}
		now = rsip_now_ms();
		if (now - last_scan >= NEIGH_SCAN_MS || (scan_due && now - last_scan >= NEIGH_SOON_MS)) {
			xdd_neigh_scan(d);
			last_scan = now;
			scan_due = false;
		}
		if (n > 0 && (nr || nc))
			scan_due = true;
		/* Also without events: the transport's deadlines and pauses. */
		if (d->rsip_on && nr) {
			if (n <= 0)
				for (unsigned i = 0; i < nr; i++)
					p[1 + i].revents = 0;
			rsip_server_events(&d->rsip, p + 1, nr);
		}
		/* Control requests run here, between the RSIP server's own. */
		if (n > 0 && nc)
			ctl_events(d->ctl, p + 1 + nr, nc);
		/* Registrations too: their map writes are the one writer's. */
		if (nm)
			xdd_mobile_run(d, n > 0 && (p[1 + nr + nc].revents & POLLIN));
		if (d->csync) {
			xd_csync_run(d->csync);
			if (n > 0)
				scan_due = true;  /* the other router's hosts too */
		}
		if (d->ctr_db && now - d->ctr_saved_ms >= (uint64_t)d->o.counters_interval * 1000)
			xdd_save_counters(d);
		if (d->ca && xdd_may_sign(d))
			xdd_ca_tick(d);
		if (d->notifier) {
			int w = xd_notifier_run(d->notifier, rsip_now_ms());

			(void)w; /* at most 1 s: the loop's own period */
		}
		if (n <= 0 || !p[0].revents)
			continue;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			if (!reload_allowed(d))
				continue;
			fprintf(stderr, "xdnatd: SIGHUP, applying %s by re-executing %s\n",
				d->o.config, d->self_exe);
			free(p);
			close(sfd);
			return 2;
		}
		if (si.ssi_signo == SIGUSR2) {
			fprintf(stderr, "xdnatd: SIGUSR2, re-executing %s to replace the programs\n",
				d->self_exe);
			free(p);
			close(sfd);
			return 2;
		}
		fprintf(stderr, "xdnatd: %s, detaching\n", strsignal((int)si.ssi_signo));
		free(p);
		close(sfd);
		return 0;
	}
}

/* The open-files limit up to its hard limit: RSIP and the CRL server keep
 * their connection caps below it (the systemd unit sets LimitNOFILE=). */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		xd_warn("cannot raise the open-files limit to %llu: %s",
			(unsigned long long)rl.rlim_max, strerror(errno));
}

/* Everything that can be checked before touching the system. */
static int validate(struct daemon *d)
{
	char addr[INET_ADDRSTRLEN];

	d->wan_ifindex = xd_ifindex(d->o.wan);
	if (d->wan_ifindex < 0) {
		xd_err("--wan: no interface '%s'", d->o.wan);
		return -EINVAL;
	}
	d->lan_ifindex = xd_ifindex(d->o.lan);
	if (d->lan_ifindex < 0) {
		xd_err("--lan: no interface '%s'", d->o.lan);
		return -EINVAL;
	}
	if (!d->o.lan_addr_set && xd_if_first_ipv4(d->o.lan, &d->o.lan_addr)) {
		xd_err("--lan: %s has no IPv4 address; give the router's LAN address with --lan-addr",
		       d->o.lan);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < d->o.n_gaddrs; i++) {
		if (d->o.gaddrs[i] == d->o.lan_addr) {
			xd_err("the LAN address %s is also given as a global address",
			       xd_ipstr(d->o.lan_addr, addr));
			return -EINVAL;
		}
	}
	if (xd_pin_dir(d->o.pin_base, d->o.instance, d->pin_dir, sizeof(d->pin_dir)))
		return -EINVAL;
	return 0;
}

/* Where a start stopped, so that the way down undoes only what was done. */
enum stage { UP_NONE, UP_SKEL, UP_SYSCTL, UP_DETACH, UP_RUNNING };

static void make_cfg(struct daemon *d)
{
	d->cfg.wan_ifindex = d->wan_ifindex;
	d->cfg.lan_ifindex = d->lan_ifindex;
	d->cfg.lan_addr = d->o.lan_addr;
	d->cfg.flags = d->o.unknown_drop ? XDNAT_F_UNKNOWN_DROP : 0;
	d->cfg.n_gaddrs = d->o.n_gaddrs;
	d->cfg.spi_block_bits = d->o.spi_bits;
	d->cfg.max_hosts = d->o.max_hosts;
	d->cfg.nh_cache_ms = d->o.nh_cache_ms;
	memcpy(d->cfg.gaddrs, d->o.gaddrs, sizeof(d->o.gaddrs));
}

/* PIN_BASE and PIN_BASE/INSTANCE; whether an earlier run left maps there. */
static int make_pin_dir(struct daemon *d)
{
	struct stat st;
	char info[300];

	if (stat(d->o.pin_base, &st) && mkdir(d->o.pin_base, 0700) && errno != EEXIST) {
		xd_err("cannot create %s: %s (is bpffs mounted at /sys/fs/bpf?)", d->o.pin_base,
		       strerror(errno));
		return -errno;
	}
	if (mkdir(d->pin_dir, 0700) && errno != EEXIST) {
		xd_err("cannot create %s: %s", d->pin_dir, strerror(errno));
		return -errno;
	}
	snprintf(info, sizeof(info), "%s/" XDNAT_MAP_INFO, d->pin_dir);
	d->maps_reused = access(info, F_OK) == 0;
	if (d->maps_reused && xd_pins_check_abi(d->pin_dir))
		return -EPROTO; /* said why and how to upgrade */
	return 0;
}

/* The datapath: programs loaded, maps pinned, sysctls set, hooks attached. */
static enum stage start_datapath(struct daemon *d)
{
	if (xdd_load(d) || xdd_apply_shared_ike(d))
		return UP_SKEL;
	if (!d->o.no_sysctl && xdd_setup_sysctls(d))
		return UP_SYSCTL;
	if (xdd_attach_all(d))
		return UP_SYSCTL;
	if (d->tc_mode) {
		__u32 zero = 0;

		d->cfg.flags |= XDNAT_F_TC_MODE;
		if (bpf_map_update_elem(bpf_map__fd(d->skel->maps.xdnat_info), &zero, &d->cfg, BPF_ANY))
			xd_warn("cannot record tc mode in %s: %s", XDNAT_MAP_INFO, strerror(errno));
	}
	if (!d->o.no_neigh) {
		d->neigh_want = calloc(d->o.max_hosts, sizeof(*d->neigh_want));
		d->neigh = d->neigh_want ? xd_neigh_open(d->lan_ifindex) : NULL;
		if (!d->neigh)
			xd_warn("cannot keep the hosts' neighbour entries (%s): the first packets to "
				"a host go through the stack until ARP resolves it", strerror(errno));
	}
	xdd_neigh_scan(d);
	if (xd_fragq_start(d->skel, d->wan_ifindex))
		xd_warn("no fragment slow path: out-of-order fragments follow the unknown policy");
	return UP_RUNNING;
}

/* The services beside the datapath: RSIP, Local CA, control socket,
 * counters, metrics. */
static enum stage start_services(struct daemon *d)
{
	if (d->o.rsip && xdd_start_rsip(d))
		return UP_DETACH;
	if (d->o.ca_key && xdd_start_ca(d))
		return UP_DETACH;
	if (d->rsip_on && xdd_start_cluster(d))
		return UP_DETACH;
	if (d->o.mobile && xdd_start_mobile(d))
		return UP_DETACH;
	xdd_start_ctl(d);
	xdd_start_counters(d);
	if ((d->o.metrics_unix || d->o.metrics_port) && xdd_start_metrics(d) &&
	    (d->o.metrics_explicit || d->o.metrics_group))
		return UP_DETACH;
	return UP_RUNNING;
}

/* Undo a start that reached @stage; @failed: leave an earlier run's maps. */
static void stop_all(struct daemon *d, enum stage stage, bool failed)
{
	struct xd_fragq_stats fq = { 0 };

	if (stage >= UP_DETACH) {
		xdd_stop_metrics(d);
		xdd_stop_ctl(d);
		xdd_stop_cluster(d);
		xdd_stop_mobile(d);
		xdd_stop_ca(d);
		xdd_stop_rsip(d);
		xdd_detach_all(d);
		/* After the detach: nothing counts any more. */
		xdd_stop_counters(d);
		xdd_neigh_cleanup(d);
	}
	if (stage >= UP_SYSCTL)
		xdd_restore_sysctls(d);
	/* A failed start leaves an earlier run's maps (still forwarding) alone. */
	if (failed ? !d->maps_reused : !d->o.keep_maps)
		xdd_unpin_maps(d);
	xd_fragq_stop(&fq);
	if (fq.held)
		xd_info("fragment slow path: %llu held, %llu re-injected, %llu expired, "
			"%llu evicted", (unsigned long long)fq.held,
			(unsigned long long)fq.reinjected, (unsigned long long)fq.expired,
			(unsigned long long)fq.evicted);
	xdnat_router__destroy(d->skel);
}

static int run(struct daemon *d, char **argv)
{
	enum stage stage = start_datapath(d);
	int rc;

	if (stage == UP_RUNNING)
		stage = start_services(d);
	if (stage != UP_RUNNING) {
		stop_all(d, stage, true);
		return 1;
	}
	printf("xdnatd: ready: instance %s, %s on %s (ifindex %d) and %s (ifindex %d), "
	       "%u global address%s, pins in %s\n", d->o.instance, d->tc_mode ? "tc" : "xdp",
	       d->o.wan, d->wan_ifindex, d->o.lan, d->lan_ifindex, d->o.n_gaddrs,
	       d->o.n_gaddrs == 1 ? "" : "es", d->pin_dir);
	fflush(stdout);

	rc = wait_for_signal(d);
	if (rc == 2) {
		xdd_reexec(d, argv); /* returns only on failure */
		/* The datapath keeps forwarding without us, as after SIGKILL;
		 * the next start takes it over. */
		xdd_stop_metrics(d);
		xdnat_router__destroy(d->skel);
		return 1;
	}
	stop_all(d, UP_DETACH, rc != 0);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct daemon d = { .lock_fd = -1, .link_fd = { -1, -1 } };
	sigset_t set;
	ssize_t n;
	int rc;

	xd_progname = "xdnatd";
	d.argc = argc;
	d.argv = argv;
	rc = xdd_parse_args(argc, argv, &d.o);
	if (rc) {
		xdd_free_opts(&d.o);
		return rc;
	}
	rc = validate(&d);
	if (rc || d.o.check_only) {
		if (!rc)
			printf("xdnatd: configuration OK%s%s\n", d.o.config ? ": " : "",
			       d.o.config ? d.o.config : "");
		xdd_free_opts(&d.o);
		return rc ? 1 : 0;
	}
	{
		char err[300];

		if (xd_store_configure(&d.o.store, err, sizeof(err))) {
			xd_err("%s", err);
			xdd_free_opts(&d.o);
			return XDD_EXIT_USAGE;
		}
	}
	make_cfg(&d);
	/* Secrets at rest: every file we create (the state database and its
	 * -wal, -shm and journals, keys) is ours alone; what an earlier run
	 * left readable is made private, or the start stops. */
	umask(077);
	raise_nofile();
	/* Signals are read from a signalfd; block them from here on so a
	 * SIGTERM during start-up still leads to a clean detach. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	n = readlink("/proc/self/exe", d.self_exe, sizeof(d.self_exe) - 1);
	d.self_exe[n > 0 ? n : 0] = '\0';

	rc = 1;
	if (!xdd_take_lock(&d) && !make_pin_dir(&d) && !xdd_check_state_perms(&d))
		rc = run(&d, argv);
	xdd_free_opts(&d.o);
	xd_neigh_close(d.neigh);
	free(d.neigh_want);
	if (d.lock_fd >= 0)
		close(d.lock_fd);
	return rc;
}
