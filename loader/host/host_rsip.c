// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnat-host's blocks from the router over RSIP (host_agent.h): obtain,
 * renew, free; shared IKE ports as the router announces them; the info
 * file for IKE daemons.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include "host_agent.h"
#include "rsip_wire.h"

static void log_refusal(const char *what, int rc)
{
	if (rc > 0)
		xd_err("%s: the router refused: %s (%d)", what, rsip_error_name((uint16_t)rc), rc);
	else
		xd_err("%s: %s", what, strerror(-rc));
}

static bool want_cert(const struct agent *a)
{
	return !a->no_cert && a->cert.csr;
}

/* Put the certificate the router just sent (if any) on disk. */
static void take_cert(struct agent *a)
{
	if (!a->cl.cert_new)
		return;
	a->cl.cert_new = false;
	if (host_cert_store(&a->cert, a->cl.cert, a->cl.cert_len, a->cl.cacert, a->cl.cacert_len))
		return;
	xd_info("certificate %s for %s, valid until %lld: %s", a->cert.serial, a->cert.identity,
		(long long)a->cert.not_after, a->cert.crt_path);
}

/* A request that carried our CSR and was refused: say why, and whether to
 * try again without it (the blocks matter more than the certificate). */
static bool cert_refused(struct agent *a, int rc)
{
	if (rc <= 0 || !want_cert(a) || rc == RSIP_E_BAD_BIND_ID || rc == RSIP_E_REGISTER_FIRST)
		return false;
	if (rc == RSIP_E_REGISTRATION_DENIED) {
		xd_err("the router refuses this host a certificate (%s, %d): the operator revoked "
		       "its certificate, and it gets none until it is enrolled again (xdnatctl "
		       "enroll); keeping the blocks", rsip_error_name((uint16_t)rc), rc);
		return true;
	}
	xd_warn("the router refused our certificate request (%s, %d): continuing without a "
		"new certificate", rsip_error_name((uint16_t)rc), rc);
	return true;
}

/*
 * Shared IKE ports in effect after a registration: forced (--shared-ike;
 * the announced ports if any, else 500/4500), refused (--no-shared-ike), or
 * as the router announced them.  From an announcement: port = the
 * plain-IKE port (500 preferred), port_nat_t = an RFC 3948 port (4500
 * preferred); without a plain-IKE port, a second RFC 3948 port serves as
 * charon.port (strongSwan frames IKE with the non-ESP marker on any port
 * but 500).  Returns true when the mode or its ports changed.
 */
static bool decide_shared_ike(struct agent *a)
{
	const struct rsip_shared_ike *o = &a->cl.shared_ike;
	bool was = a->shared_ike, on = false;
	uint16_t ike = 0, natt = 0, pw = a->ike_port, nw = a->ike_port_natt;

	for (unsigned i = 0; i < o->n; i++)
		if (o->framing[i] == XDNAT_IKE_FRAMING_RFC3948 &&
		    (!natt || o->port[i] == XDNAT_IKE_NATT_PORT))
			natt = o->port[i];
	for (unsigned i = 0; i < o->n; i++)
		if (o->framing[i] == XDNAT_IKE_FRAMING_IKE && (!ike || o->port[i] == XDNAT_IKE_PORT))
			ike = o->port[i];
	for (unsigned i = 0; i < o->n && !ike; i++)
		if (o->framing[i] == XDNAT_IKE_FRAMING_RFC3948 && o->port[i] != natt)
			ike = o->port[i];
	if (o->n && (!ike || !natt)) {
		if (a->shared_opt >= 0 && !a->n_grants)
			xd_warn("the router shares IKE ports this host cannot use (it needs an IKE "
				"port and a different RFC 3948 port)%s",
				a->shared_opt > 0 ? ": --shared-ike: using 500/4500" : "");
		ike = natt = 0;
	}
	if (a->shared_opt > 0) {
		on = true;
		if (!ike) {
			ike = XDNAT_IKE_PORT;
			natt = XDNAT_IKE_NATT_PORT;
		}
	} else if (a->shared_opt == 0 && ike) {
		on = true;
	}
	/* The router routes IKE on them by SPI: no SPI block, no use. */
	if (on && a->shared_opt == 0 && !a->spi_count)
		on = false;
	if (!on)
		ike = natt = 0;
	a->shared_ike = on;
	a->ike_port = ike;
	a->ike_port_natt = natt;
	a->shared_offered = o->n > 0;
	if (on == was && ike == pw && natt == nw)
		return false;
	/* After the start (a re-registration): the IKE daemon must follow. */
	if (a->n_grants && on)
		xd_warn("the router now shares IKE ports: IKE on %u, NAT-T on %u; the info file "
			"and fragment are rewritten, restart the IKE daemon", ike, natt);
	else if (a->n_grants)
		xd_warn("the router no longer shares IKE ports: this host's own ports again; the "
			"info file and fragment are rewritten, restart the IKE daemon");
	return true;
}

/* For the ready line: what became of shared IKE ports. */
void agent_print_shared_ike(const struct agent *a)
{
	if (a->shared_ike)
		printf(", shared IKE ports: IKE on %u, NAT-T on %u (%s)", a->ike_port, a->ike_port_natt,
		       a->shared_offered && a->shared_opt == 0 ? "announced by the router" : "--shared-ike");
	else if (a->shared_offered)
		printf(", shared IKE ports announced, not used (%s)",
		       a->shared_opt < 0 ? "--no-shared-ike" : !a->spi_count ? "no SPI block" :
		       "unusable");
}

/*
 * At start-up, a refusal that says "not now" is asked again: a router
 * whose store could not commit the request (another router of a cluster
 * won a race for the same keys, or the store has no quorum yet) answers
 * INTERNAL_SERVER_ERROR, or closes a registration's connection.  Up to
 * START_TRIES attempts, with a growing random pause so that hosts started
 * together spread out; 0 when the caller should stop asking.
 */
#define START_TRIES 8      /* pauses of 0.1 s to 6.4 s: about 13 s in all */

static bool ask_again(struct agent *a, const char *what, int rc, int *attempt, bool reconnect)
{
	struct timespec pause;
	long ms;

	if ((rc != RSIP_E_INTERNAL_SERVER_ERROR && rc != -ECONNRESET && rc != -EPIPE) ||
	    ++*attempt >= START_TRIES)
		return false;
	ms = (100L << (*attempt - 1)) + rand() % 100;
	xd_warn("%s: %s; asking again in %ld ms", what,
		rc > 0 ? rsip_error_name((uint16_t)rc) : strerror(-rc), ms);
	pause = (struct timespec){ ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&pause, NULL);
	if (reconnect && !rsip_client_connected(&a->cl))
		(void)rsip_client_register(&a->cl);   /* its failure shows in the next request */
	return true;
}

/* Ask for @want more ports, in requests of at most 255 (RSIP's limit), into
 * a->grants; the router places each next to this host's ports when it can.
 * Returns 0, or -EIO (said why unless @quiet) with what was granted kept in
 * a->grants. */
static int ask_ports(struct agent *a, uint32_t want, bool quiet)
{
	uint32_t got = 0;

	while (got < want) {
		uint32_t n = want - got > 255 ? 255 : want - got;
		struct rsip_grant *g = &a->grants[a->n_grants];
		int rc;

		if (a->n_grants == MAX_GRANTS - 1) {   /* one slot stays for the SPIs */
			xd_err("asking for ports: more than %d grants", MAX_GRANTS - 1);
			return -EIO;
		}
		int attempt = 0;

		do {
			rsip_client_attach_csr(&a->cl, NULL, 0);
			rc = rsip_client_assign_ports(&a->cl, a->gaddr, (uint8_t)n, a->lease, g);
		} while (rc && !quiet && ask_again(a, "asking for ports", rc, &attempt, true));
		if (rc) {
			if (!quiet)
				log_refusal("asking for ports", rc);
			else if (xd_verbose)
				xd_info("asking for ports again in one run: %s",
					rc > 0 ? rsip_error_name((uint16_t)rc) : strerror(-rc));
			return -EIO;
		}
		a->n_grants++;
		a->gaddr = g->gaddr_be;
		got += g->count;
	}
	return 0;
}

static int cmp_run(const void *x, const void *y)
{
	const struct xd_run *p = x, *q = y;

	return p->first < q->first ? -1 : p->first > q->first;
}

/* grants[from..to) as sorted runs of adjacent ports into @runs; their number. */
static int port_runs(const struct agent *a, int from, int to, struct xd_run *runs)
{
	int n = 0;

	for (int i = from; i < to; i++)
		runs[n++] = (struct xd_run){ a->grants[i].first, a->grants[i].first + a->grants[i].count - 1 };
	if (!n)
		return 0;
	qsort(runs, (size_t)n, sizeof(*runs), cmp_run);
	int k = 0;

	for (int i = 1; i < n; i++) {
		if (runs[i].first == runs[k].last + 1)
			runs[k].last = runs[i].last;
		else
			runs[++k] = runs[i];
	}
	return k + 1;
}

/* Free grants[from..to) (best effort: their leases end anyway). */
static void free_grants(struct agent *a, int from, int to)
{
	for (int i = from; i < to; i++) {
		int rc = rsip_client_free(&a->cl, a->grants[i].bind_id);

		if (rc)
			log_refusal("freeing a block", rc);
	}
}

/*
 * Hosts that start together get interleaved grants: the port after this
 * host's last grant went to another host meanwhile.  Ask once or twice more
 * for the whole count, after a random pause (the others do the same): new
 * grants that form one run replace the old ones, which are freed; otherwise
 * the new ones are freed and the host uses every run it holds (agent_setup()).
 */
static void consolidate_ports(struct agent *a)
{
	struct xd_run runs[MAX_GRANTS];

	for (int attempt = 0; attempt < 2 && a->n_port_runs > 1; attempt++) {
		int old = a->n_grants;
		struct timespec pause = { 0, (long)(rand() % 200 + 20) * 1000000L };

		nanosleep(&pause, NULL);
		if (ask_ports(a, a->port_count, true) == 0 && port_runs(a, old, a->n_grants, runs) == 1) {
			free_grants(a, 0, old);
			memmove(a->grants, a->grants + old, (size_t)(a->n_grants - old) * sizeof(a->grants[0]));
			a->n_grants -= old;
			a->n_port_grants = a->n_grants;
			xd_info("ports %u-%u: one run instead of %d", runs[0].first, runs[0].last,
				a->n_port_runs);
		} else {
			free_grants(a, old, a->n_grants);
			a->n_grants = old;
		}
		a->n_port_runs = port_runs(a, 0, a->n_port_grants, a->port_runs);
	}
	if (!rsip_client_connected(&a->cl))   /* a failure above closed it */
		(void)rsip_client_register(&a->cl);
}

/* Register and obtain the global address, ports and SPIs. */
int agent_acquire(struct agent *a)
{
	int rc;

	int attempt = 0;

	do
		rc = rsip_client_register(&a->cl);
	while (rc && ask_again(a, "registering with the router", rc, &attempt, false));
	if (rc) {
		log_refusal("registering with the router", rc);
		return -EACCES;
	}
	decide_shared_ike(a);
	if (ask_ports(a, a->port_count, false))
		return -EIO;
	a->n_port_grants = a->n_grants;
	a->n_port_runs = port_runs(a, 0, a->n_port_grants, a->port_runs);
	consolidate_ports(a);
	if (a->n_port_runs > 1)
		xd_warn("the router granted %d port runs, not one: the local port range spans them "
			"and the ports between them are reserved (ip_local_reserved_ports)",
			a->n_port_runs);
	/* The IKE daemon's ports (--swan-dir, XDNAT_PORTS): the first run. */
	a->port_first = a->port_runs[0].first;
	a->port_last = a->port_runs[0].last;
	a->ports_set = true;
	if (a->spi_count) {
		struct rsip_grant *g = &a->grants[a->n_grants];

		uint16_t ns = (uint16_t)(a->spi_count > 0xffff ? 0xffff : a->spi_count);

		attempt = 0;
		do {
			rsip_client_attach_csr(&a->cl, want_cert(a) ? a->cert.csr : NULL, a->cert.csr_len);
			rc = rsip_client_assign_spi(&a->cl, a->gaddr, ns, a->lease, g);
		} while (rc && ask_again(a, "asking for SPIs", rc, &attempt, true));
		if (cert_refused(a, rc)) {
			rsip_client_attach_csr(&a->cl, NULL, 0);
			rc = rsip_client_assign_spi(&a->cl, a->gaddr, ns, a->lease, g);
		}
		if (rc) {
			log_refusal("asking for SPIs", rc);
			return -EIO;
		}
		a->n_grants++;
		a->spi_first = g->first;
		a->spi_last = g->first + g->count - 1;
	} else if (want_cert(a)) {
		/* No SPI request to carry the CSR: the renewal of the last grant does. */
		uint32_t granted;
		struct rsip_grant *g = &a->grants[a->n_grants - 1];

		rsip_client_attach_csr(&a->cl, a->cert.csr, a->cert.csr_len);
		rc = rsip_client_extend(&a->cl, g->bind_id, a->lease, &granted);
		if (rc && !cert_refused(a, rc)) {
			log_refusal("asking for a certificate", rc);
			return -EIO;
		}
		if (!rc)
			g->lease = granted;
	}
	if (want_cert(a) && !a->cl.cert_new)
		xd_warn("the router issued no certificate (it runs no Local CA)");
	take_cert(a);
	return 0;
}

uint32_t agent_min_lease(const struct agent *a)
{
	uint32_t m = 0;

	for (int i = 0; i < a->n_grants; i++)
		if (!m || a->grants[i].lease < m)
			m = a->grants[i].lease;
	return m ? m : 60;
}

/* Renew every lease; reconnect (the registration resumes) if needed. */
int agent_renew(struct agent *a)
{
	int rc;

	if (!rsip_client_connected(&a->cl)) {
		rc = rsip_client_register(&a->cl);
		if (rc) {
			log_refusal("re-registering with the router", rc);
			return rc;
		}
		xd_info("re-registered with the router");
		/* A restarted router may share other ports now. */
		if (decide_shared_ike(a)) {
			if (a->info_written && agent_write_info(a))
				xd_warn("the info file does not reflect the shared IKE ports");
			if (a->swan.dir && agent_write_swan(a))
				xd_warn("--swan-dir: %s does not reflect the shared IKE ports", a->swan.dir);
		}
	}
	for (int i = 0; i < a->n_grants; i++) {
		uint32_t granted;

		/* A fresh certificate with the last renewal. */
		bool csr = want_cert(a) && i == a->n_grants - 1;

		rsip_client_attach_csr(&a->cl, csr ? a->cert.csr : NULL, a->cert.csr_len);
		rc = rsip_client_extend(&a->cl, a->grants[i].bind_id, a->lease, &granted);
		if (csr && cert_refused(a, rc)) {
			rsip_client_attach_csr(&a->cl, NULL, 0);
			rc = rsip_client_extend(&a->cl, a->grants[i].bind_id, a->lease, &granted);
		}
		if (rc) {
			log_refusal("renewing a lease", rc);
			return rc;
		}
		a->grants[i].lease = granted;
	}
	if (a->cl.cert_new) {
		take_cert(a);
		if (a->info_written && agent_write_info(a))
			xd_warn("the info file does not name the new certificate");
		if (a->swan.dir && agent_write_swan(a))
			xd_warn("--swan-dir: the new certificate is not in %s", a->swan.dir);
		else if (a->swan.dir && !a->swan_no_reload)
			host_swan_reload(a->swan.dir, a->swan_vici, false);
		if (a->on_renew && a->cert.have)
			host_cert_hook(&a->cert, a->on_renew, a->swan.dir, 30);
	}
	return 0;
}

/*
 * Free every block and de-register.  A router that restarted since our last
 * request has reset the connection ("Connection reset by peer" at the first
 * request): reconnect (the registration resumes) and go on, retrying for a
 * few seconds with growing pauses, so that the blocks do not stay mapped to
 * a host that is gone until their leases end.
 */
#define RELEASE_TRIES 5          /* at once, then pauses of 0.25, 0.5, 1 s */
void agent_release(struct agent *a)
{
	int done = 0, tries = 0, rc = 0;
	unsigned pause_ms = 250;

	while (a->n_grants && done <= a->n_grants) {   /* done == n_grants: de-register */
		if (!rsip_client_connected(&a->cl))
			rc = rsip_client_register(&a->cl);
		if (rsip_client_connected(&a->cl))
			rc = done < a->n_grants ? rsip_client_free(&a->cl, a->grants[done].bind_id)
						: rsip_client_deregister(&a->cl);
		if (rc < 0 && ++tries < RELEASE_TRIES) {
			struct timespec t = { pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L };

			/* The first time (a router restarted meanwhile) reconnect at
			 * once; then wait longer each time. */
			xd_warn("router unreachable while freeing the blocks (%s): %s", strerror(-rc),
				tries == 1 ? "reconnecting" : "retrying");
			if (tries > 1) {
				nanosleep(&t, NULL);
				pause_ms *= 2;
			}
			continue;
		}
		if (rc < 0) {
			xd_warn("cannot reach the router to free the blocks (%s): they expire with "
				"their leases", strerror(-rc));
			break;
		}
		if (rc > 0 && !rsip_client_connected(&a->cl)) {   /* registration refused */
			log_refusal("re-registering to free the blocks", rc);
			break;
		}
		if (rc > 0)   /* e.g. already gone: nothing more to do for this one */
			log_refusal(done < a->n_grants ? "freeing a block" : "de-registering", rc);
		done++;
	}
	rsip_client_close(&a->cl);
	a->n_grants = 0;
	/* The router revoked it with the blocks. */
	host_cert_remove(&a->cert);
}

/*
 * Shared IKE ports (docs/SHARED-IKE.md): the IKE daemon binds 500/4500 like
 * every other host; the router tells the hosts apart by SPI.  Inbound ESP
 * SPIs come from the block (spi_min/spi_max); the top 32 bits of every IKE
 * SPI must lie in it too: strongSwan's charon.spi_mask/spi_label force the
 * top bits of its 64-bit IKE SPIs (network byte order) to the label.  The
 * label covers the largest aligned power-of-two run at the block's start.
 */
static void write_shared_ike(FILE *f, const struct agent *a, uint32_t first, uint32_t last)
{
	unsigned k = 0;
	uint64_t mask;

	while (k < 31 && !(first & (1u << k)) && (uint64_t)first + (2ull << k) - 1 <= last)
		k++;
	mask = (~0ull << (32 + k));
	fprintf(f, "XDNAT_IKE_PORT=%u\nXDNAT_IKE_PORT_NAT_T=%u\n"
		"XDNAT_SPI_MIN=0x%08x\nXDNAT_SPI_MAX=0x%08x\n"
		"XDNAT_IKE_SPI_MASK=0x%016llx\nXDNAT_IKE_SPI_LABEL=0x%016llx\n",
		a->ike_port, a->ike_port_natt, first, last, (unsigned long long)mask,
		(unsigned long long)((uint64_t)first << 32));
}

/*
 * What tells this agent apart from the others on the machine: its interface
 * and, outside the initial network namespace, that namespace's name (as
 * `ip netns` knows it) or else its inode number.
 */
static void instance_id(const struct agent *a, char *buf, size_t len)
{
	struct stat self, init, st;
	char path[300], ns[64] = "";
	DIR *d;
	struct dirent *e;

	if (stat("/proc/self/ns/net", &self) ||
	    (stat("/proc/1/ns/net", &init) == 0 && init.st_ino == self.st_ino && init.st_dev == self.st_dev)) {
		snprintf(buf, len, "%s", a->dev);
		return;
	}
	if ((d = opendir("/run/netns"))) {
		while (!*ns && (e = readdir(d))) {
			snprintf(path, sizeof(path), "/run/netns/%s", e->d_name);
			if (e->d_name[0] != '.' && stat(path, &st) == 0 && st.st_ino == self.st_ino &&
			    st.st_dev == self.st_dev && strlen(e->d_name) < sizeof(ns))
				snprintf(ns, sizeof(ns), "%.63s", e->d_name);
		}
		closedir(d);
	}
	if (*ns)
		snprintf(buf, len, "%s-%s", ns, a->dev);
	else
		snprintf(buf, len, "netns%lu-%s", (unsigned long)self.st_ino, a->dev);
}

int agent_write_info(struct agent *a)
{
	char tmp[300], g[INET_ADDRSTRLEN], r[INET_ADDRSTRLEN], id[128];
	FILE *f;
	int fd;

	if (!a->info_file) {
		if (mkdir("/run/xdnat", 0755) && errno != EEXIST) {
			xd_err("cannot create /run/xdnat: %s", strerror(errno));
			return -errno;
		}
		instance_id(a, id, sizeof(id));
		snprintf(a->info_buf, sizeof(a->info_buf), "/run/xdnat/host-%s.env", id);
		a->info_file = a->info_buf;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", a->info_file);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		xd_err("cannot write %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	fprintf(f, "# written by xdnat-host: this host's share of the global address\n"
		"XDNAT_GLOBAL=%s\nXDNAT_ROUTER=%s\nXDNAT_PORTS=%u-%u\n", xd_ipstr(a->gaddr, g),
		xd_ipstr(a->router, r), a->port_first, a->port_last);
	fprintf(f, "XDNAT_PORT_RUNS=\"");
	for (int i = 0; i < a->n_port_runs; i++)
		fprintf(f, "%s%u-%u", i ? " " : "", a->port_runs[i].first, a->port_runs[i].last);
	fprintf(f, "\"\n");
	if (a->spi_last)
		fprintf(f, "XDNAT_SPIS=0x%08x-0x%08x\n", a->spi_first, a->spi_last);
	if (a->shared_ike && a->spi_last)
		write_shared_ike(f, a, a->spi_first, a->spi_last);
	host_cert_info(&a->cert, f);
	if (fclose(f) || rename(tmp, a->info_file)) {
		xd_err("cannot write %s: %s", a->info_file, strerror(errno));
		unlink(tmp);
		return -EIO;
	}
	a->info_written = true;
	return 0;
}

