// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnat-host mobile: this host's side of roaming (docs/ROAMING.md).  Away
 * from home it registers its care-of address with the router's home agent
 * on UDP 434 of G (Mobile IPv4, RFC 5944, authenticated with a key derived
 * from its enrolment secret), renews the registration at half its
 * lifetime, keeps the NAT binding alive (RFC 3519) and, with --tun, is its
 * end of the UDP tunnel: packets from G leave through a TUN device wrapped
 * in RFC 3519 tunnel data to G:434, tunnel data from G:434 is unwrapped into
 * it.  --deregister (at home) tells the router it is back.
 *
 * One UDP socket carries registrations, keepalives and tunnel data, so the
 * NAT maps them all to the one public port the home agent registers.
 * The tunnel's ends are in host_mobile_tunnel.c, --home-router's watch in
 * host_mobile_home.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "host_mobile_int.h"
#include "mip_wire.h"
#include "opts.h"
#include "rsip_auth.h"
#include "store.h"

#define ACCEPT_LOCAL "/proc/sys/net/ipv4/conf/all/accept_local"

static int write_file(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(val, f) < 0 || fclose(f)) {
		xd_err("mobile: cannot write %s: %s", path, strerror(errno));
		return -EIO;
	}
	return 0;
}

static const struct xo_opt mob_opts[] = {
	XO_HEAD("Required:"),
	{ "home-agent", 'g', "ADDR", .help = "the router's global address G (home agent and this "
					     "host's home address)" },
	{ "secret-file", 's', "PATH", .help = "this host's secret from 'xdnatctl enroll' (mode 0600)" },
	XO_HEAD("Options:"),
	{ "name", 'n', "NAME", .help = "the name it was enrolled under, sent as its NAI (default: "
				       "hostname)" },
	{ "lifetime", 'l', "S", .help = "registration lifetime to ask for (default: 600; the "
					"router may grant less); renewed at half the granted one" },
	{ "port", 'p', "N", .help = "local UDP port of registrations and of the tunnel (default: "
				    "434)" },
	{ "once", '1', NULL, .help = "register (or deregister) once, print the result, exit: 0 "
				     "accepted, 1 refused or no answer" },
	{ "deregister", 'D', NULL, .help = "deregister (lifetime 0): back home, the router sends "
					   "this host's traffic to its LAN address again" },
	{ "tun", 't', "IFNAME", .help = "be this end of the UDP tunnel: create TUN device IFNAME "
					"with G on it; packets from G leave through it to the "
					"router, tunnel data from it arrives there" },
	{ "dev", 'd', "IFNAME", .help = "be this end of the UDP tunnel in BPF instead (faster): "
					"G on lo, tc programs on IFNAME (the NIC of the foreign "
					"network) wrap packets from G and unwrap tunnel data "
					"(xdnat_host_roam_egress/_ingress)" },
	{ "route", 'R', "CIDR", .help = "with --tun or --dev: route CIDR through the tunnel with "
					"source G; may be repeated (must not cover G)" },
	{ "home-router", 0, "ADDR", 257, .help = "with --dev, or neither --dev nor --tun: detect "
						 "leaving and returning home: away while the router's LAN "
						 "address ADDR is not on-link (checked at every route, "
						 "address or link change, and every second); "
						 "register (and route --route CIDRs) when leaving, "
						 "deregister (and remove them) when back" },
	{ "dump-request", 0, "PATH", 256, .help = "write every registration request sent to PATH "
						  "(tests: a replay must be refused)" },
	XO_OPT_HELP,
	{ 0 }
};

static const struct xo_prog mob_prog = {
	.name = "xdnat-host mobile", .opts = mob_opts,
	.synopsis =
"Usage: xdnat-host mobile --home-agent G --secret-file PATH [--name NAME] [OPTIONS]\n"
"\n"
"Register this host, away from home, with its router's Mobile IPv4 home agent\n"
"(xdnatd --mobile, docs/ROAMING.md): the router then sends the host's traffic\n"
"(its ports and SPIs of G) to the address and port this registration came\n"
"from, the public side of any NAT in between, in RFC 3519 UDP tunnelling.\n"
"The host keeps its blocks, certificate and identity while away; it renews\n"
"the registration at half its lifetime and sends a NAT keepalive every\n"
"interval the router names, until SIGTERM or SIGINT.\n",
	.epilog = "\nExit status: 0 success, 1 error or refusal, 2 usage error.\n",
};

static int parse(int argc, char **argv, struct mob *m)
{
	struct xo_state st = { .prog = &mob_prog };
	int c;

	optind = 0;
	while ((c = xo_getopt(&st, argc, argv)) != XO_END) {
		switch (c) {
		case 'g':
			if (xd_parse_ipv4(optarg, &m->ha)) {
				xd_err("--home-agent: '%s' is not an IPv4 address", optarg);
				return -EINVAL;
			}
			break;
		case 's': m->secret_file = optarg; break;
		case 'n': m->name = optarg; break;
		case 'l':
			if (xd_parse_u32(optarg, 1, 65534, &m->lifetime)) {
				xd_err("--lifetime: 1-65534 seconds");
				return -EINVAL;
			}
			break;
		case 'p':
			if (xd_parse_u32(optarg, 1, 65535, &m->lport)) {
				xd_err("--port: 1-65535");
				return -EINVAL;
			}
			break;
		case '1': m->once = true; break;
		case 'D': m->dereg = true; break;
		case 't': m->tun_name = optarg; break;
		case 'd': m->dev = optarg; break;
		case 'R':
			if (m->n_routes == MAX_ROUTES) {
				xd_err("--route: at most %d", MAX_ROUTES);
				return -EINVAL;
			}
			m->routes[m->n_routes++] = optarg;
			break;
		case 256: m->dump = optarg; break;
		case 257:
			if (xd_parse_ipv4(optarg, &m->home_router)) {
				xd_err("--home-router: '%s' is not an IPv4 address", optarg);
				return -EINVAL;
			}
			break;
		case XO_ID_HELP: xo_help(&mob_prog, stdout); exit(0);
		default: return -EINVAL;
		}
	}
	if (optind < argc) {
		xd_err("unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (!m->ha || !m->secret_file) {
		xd_err("--home-agent and --secret-file are required");
		return -EINVAL;
	}
	if ((m->tun_name || m->dev) && (m->dereg || m->once)) {
		xd_err("--tun and --dev are for a host that stays registered (not with --once or "
		       "--deregister)");
		return -EINVAL;
	}
	if (m->tun_name && m->dev) {
		xd_err("--tun or --dev, not both");
		return -EINVAL;
	}
	if (m->home_router && (m->tun_name || m->once || m->dereg)) {
		xd_err("--home-router watches for moves: with --dev (or alone), not --tun, --once or "
		       "--deregister");
		return -EINVAL;
	}
	return 0;
}

static uint64_t now_ms(void)
{
	return rsip_now_ms();
}

/* `ip -o route get DST` into @out, with our socket's mark when @marked
 * (the route its packets take); -EIO when ip fails. */
int mob_route_get(uint32_t dst, bool marked, char *out, size_t cap)
{
	char d[INET_ADDRSTRLEN], mark[16];
	/* unmarked: the NULL in place of "mark" ends the arguments there */
	const char *get[] = { "ip", "-o", "route", "get", d, marked ? "mark" : NULL, mark, NULL };

	xd_ipstr(dst, d);
	snprintf(mark, sizeof(mark), "0x%x", MOB_MARK);
	return xd_run_capture(get, out, cap) ? -EIO : 0;
}

/* The word after @key (" dev ", " via ") in a route, cut off in place;
 * NULL without one. */
char *mob_route_field(char *route, const char *key)
{
	char *v = strstr(route, key);

	if (!v)
		return NULL;
	v += strlen(key);
	v[strcspn(v, " \n")] = '\0';
	return v;
}

/* The source towards G now (a fresh route lookup, marked like our
 * socket's packets: after a move it changes).  At home the routes carry
 * "src G" (the RSIP agent's), and a request from G would be wrapped by the
 * LAN tunnel and refused: then the address of the interface towards G. */
static int pick_source(struct mob *m, uint32_t *src)
{
	struct sockaddr_in ha = { .sin_family = AF_INET, .sin_port = htons(MIP_PORT),
				  .sin_addr.s_addr = m->ha }, me;
	socklen_t ml = sizeof(me);
	char out[512], *dev;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = -1;

	if (fd >= 0 && (!m->rules_set || !setsockopt(fd, SOL_SOCKET, SO_MARK, &(int){ MOB_MARK },
							sizeof(int))) &&
	    !connect(fd, (struct sockaddr *)&ha, sizeof(ha)) &&
	    !getsockname(fd, (struct sockaddr *)&me, &ml))
		rc = 0;
	if (fd >= 0)
		close(fd);
	if (rc) {
		xd_err("mobile: no route to the home agent: %s", strerror(errno));
		return -1;
	}
	*src = me.sin_addr.s_addr;
	if (*src != m->ha)
		return 0;
	if (mob_route_get(m->ha, true, out, sizeof(out)) || !(dev = mob_route_field(out, " dev ")))
		return -1;
	return xd_if_first_ipv4(dev, src) ? -1 : 0;
}

/* To G:434 from m->coa (IP_PKTINFO): the socket is bound to any address
 * and never connected, so the source follows the host's moves. */
ssize_t mob_send_ha(struct mob *m, const void *buf, size_t n)
{
	struct sockaddr_in ha = { .sin_family = AF_INET, .sin_port = htons(MIP_PORT),
				  .sin_addr.s_addr = m->ha };
	union { char b[CMSG_SPACE(sizeof(struct in_pktinfo))]; struct cmsghdr a; } cb;
	struct iovec iov = { (void *)buf, n };
	struct msghdr mh = { .msg_name = &ha, .msg_namelen = sizeof(ha), .msg_iov = &iov,
			     .msg_iovlen = 1, .msg_control = cb.b, .msg_controllen = sizeof(cb.b) };
	struct in_pktinfo pi = { .ipi_spec_dst.s_addr = m->coa };
	struct cmsghdr *c;

	memset(cb.b, 0, sizeof(cb.b));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = IPPROTO_IP;
	c->cmsg_type = IP_PKTINFO;
	c->cmsg_len = CMSG_LEN(sizeof(pi));
	memcpy(CMSG_DATA(c), &pi, sizeof(pi));
	return sendmsg(m->fd, &mh, MSG_DONTWAIT);
}

/* Send a registration request (lifetime @life), return its Identification. */
static int send_rrq(struct mob *m, uint16_t life, uint64_t *id_out)
{
	uint32_t src;
	uint8_t buf[MIP_MAX_MSG], low[4];
	struct mip_builder b;
	uint64_t id;
	size_t n;

	if (pick_source(m, &src))
		return -EHOSTUNREACH;
	m->coa = src;
	if (rsip_random(low, sizeof(low)))
		return -EIO;
	/* NTP format (RFC 5944 5.7): seconds, and the fraction of the second
	 * in the low 32 bits, so that requests of separate runs increase too;
	 * random bits below the millisecond make the low word unpredictable. */
	{
		uint64_t ms = (uint64_t)((int64_t)now_ms() + m->clock_off_s * 1000);
		uint32_t r = (uint32_t)low[0] << 24 | low[1] << 16 | low[2] << 8 | low[3];

		id = mip_id_from_unix_ms(ms, (uint32_t)((ms % 1000) * 4294967296ull / 1000) +
						 r % 4294967u);
	}
	if (id <= m->last_id)
		id = m->last_id + 1;
	m->last_id = id;
	mip_build_rrq(&b, buf, sizeof(buf), MIP_F_D | MIP_F_T, life, m->ha, m->ha,
		      life ? src : m->ha, id);
	mip_put_nai(&b, m->name, strlen(m->name));
	if (life)
		mip_put_tunreq(&b, 0, MIP_ENCAP_IPIP);
	if (!(n = mip_seal(&b, m->key)))
		return -EOVERFLOW;
	if (m->dump) {
		FILE *f = fopen(m->dump, "w");

		if (!f || fwrite(buf, 1, n, f) != n || fclose(f))
			xd_warn("mobile: cannot write %s", m->dump);
	}
	if (mob_send_ha(m, buf, n) != (ssize_t)n) {
		xd_err("mobile: send to the home agent: %s", strerror(errno));
		return -errno;
	}
	*id_out = id;
	return 0;
}

/* A datagram from G:434 (anything else on our port is ignored). */
static ssize_t recv_ha(struct mob *m, uint8_t *buf, size_t cap)
{
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(m->fd, buf, cap, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);

	if (n < 0 || fl != sizeof(from) || from.sin_addr.s_addr != m->ha ||
	    from.sin_port != htons(MIP_PORT))
		return -1;
	return n;
}

/* A datagram from G:434: a registration reply for @id (1 accepted, 0
 * refused, -1 not ours/bad), or tunnel data (-2, handled). */
static int on_datagram(struct mob *m, const uint8_t *buf, size_t n, uint64_t id)
{
	struct mip_rrp p;

	if (n >= 4 && buf[0] == MIP_T_TUNNEL_DATA) {
		/* RFC 3519 tunnel data: the inner IPv4 packet goes to the TUN. */
		if (m->tunfd >= 0 && buf[1] == 4 && n > 4 + 20 &&
		    write(m->tunfd, buf + 4, n - 4) < 0)
			xd_warn("mobile: tun write: %s", strerror(errno));
		return -2;
	}
	if (mip_rrp_parse(buf, n, &p) != MIP_OK || (uint32_t)p.id != (uint32_t)id)
		return -1;
	/* Only an authenticated reply counts (a forged refusal is ignored). */
	if (!p.have_auth || !mip_verify(buf, n, p.auth_off, p.spi, p.auth, p.auth_len, m->key)) {
		xd_warn("mobile: reply code %u without a valid authenticator: ignored", p.code);
		return -1;
	}
	if (p.code == MIP_C_ID_MISMATCH) {
		/* RFC 5944 5.7: the router's time is in the high 32 bits.  Take
		 * it, and start the next Identification in the second after it
		 * (above one accepted earlier in that second, e.g. from
		 * another agent of ours). */
		uint64_t next = ((p.id >> 32) + 1) << 32;

		m->clock_off_s = mip_id_unix_s(p.id) - (int64_t)(now_ms() / 1000);
		if (m->last_id < next - 1)
			m->last_id = next - 1;
		m->retry = true;
		xd_warn("mobile: Identification refused (the router's clock differs by %llds): "
			"retrying above its time", (long long)m->clock_off_s);
		return 0;
	}
	if (p.code > MIP_C_ACCEPTED_NO_SIMUL) {
		xd_err("mobile: registration refused: code %u (%s)", p.code, mip_code_name(p.code));
		return 0;
	}
	m->granted = p.lifetime;
	m->keepalive = p.have_tunrep && p.keepalive ? p.keepalive : 0;
	printf("xdnat-host: mobile: %s: lifetime %us%s\n",
	       p.lifetime ? "registered" : "deregistered", p.lifetime,
	       p.have_tunrep ? ", UDP tunnel" : "");
	if (m->keepalive)
		printf("xdnat-host: mobile: NAT keepalive every %us\n", m->keepalive);
	fflush(stdout);
	return 1;
}

/* Register (or deregister): up to 3 tries, 1 s apart; a 133 retries at once
 * with the router's time.  0 accepted, -1 refused or no answer. */
int mob_register(struct mob *m, uint16_t life)
{
	uint8_t buf[2048];

	for (unsigned t = 0; t < 4; t++) {
		uint64_t id = 0, deadline;

		/* 250 ms, then doubling: the first request after a move can meet
		 * a link that is not quite ready. */
		deadline = now_ms() + (250u << t);
		/* No route yet (a link coming up, DHCP not done): look again
		 * every 100 ms for up to 3 s before this try counts. */
		for (int r = 0; send_rrq(m, life, &id); r++) {
			if (r == 30)
				break;
			usleep(100 * 1000);
		}
		if (!id)
			continue;
		for (;;) {
			struct pollfd p = { .fd = m->fd, .events = POLLIN };
			int64_t w = (int64_t)(deadline - now_ms());
			ssize_t n;
			int rc;

			if (w <= 0 || poll(&p, 1, (int)w) <= 0)
				break;
			n = recv_ha(m, buf, sizeof(buf));
			if (n <= 0)
				continue;
			m->retry = false;
			rc = on_datagram(m, buf, (size_t)n, id);
			if (rc == 1)
				return 0;
			if (rc == 0 && m->retry && t == 0)
				break;    /* 133: again, above the router's time */
			if (rc == 0)
				return -1;
		}
	}
	xd_err("mobile: no answer from the home agent");
	return -1;
}

/* RFC 3519 keepalive: an ICMP echo request from G to G in tunnel data. */
static void keepalive(struct mob *m)
{
	uint8_t pkt[4 + 20 + 8] = { MIP_T_TUNNEL_DATA, 4, 0, 0 };
	struct iphdr *ip = (struct iphdr *)(pkt + 4);
	struct icmphdr *ic = (struct icmphdr *)(ip + 1);
	uint32_t sum = 0;

	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons(28);
	ip->ttl = 64;
	ip->protocol = IPPROTO_ICMP;
	ip->saddr = ip->daddr = m->ha;
	for (int i = 0; i < 10; i++)
		sum += ((uint16_t *)ip)[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ip->check = (uint16_t)~sum;
	ic->type = ICMP_ECHO;
	ic->checksum = htons((uint16_t)~(ICMP_ECHO << 8));
	if (mob_send_ha(m, pkt, sizeof(pkt)) < 0)
		xd_warn("mobile: keepalive: %s", strerror(errno));
}

/* Our socket's packets to G must not be delivered locally (G is a local
 * address here: on the TUN, or on lo with --dev): a rule before the local
 * table sends marked packets by main; replies from G are accepted. */
static int redirect_setup(struct mob *m)
{
	char mark[16], v[8] = "";
	int one = MOB_MARK;
	FILE *f;

	if (setsockopt(m->fd, SOL_SOCKET, SO_MARK, &one, sizeof(one))) {
		xd_err("mobile: SO_MARK: %s", strerror(errno));
		return -EIO;
	}
	f = fopen(ACCEPT_LOCAL, "r");
	if (f && fgets(v, sizeof(v), f))
		v[strcspn(v, "\n")] = '\0';
	if (f)
		fclose(f);
	if (!v[0] || write_file(ACCEPT_LOCAL, "1"))
		return -EIO;
	snprintf(m->old_accept_local, sizeof(m->old_accept_local), "%s", v);
	snprintf(mark, sizeof(mark), "0x%x", MOB_MARK);
	{
		const char *a[] = { "ip", "rule", "add", "pref", "90", "fwmark", mark, "lookup", "main", NULL };
		const char *b[] = { "ip", "rule", "add", "pref", "100", "lookup", "local", NULL };
		const char *c[] = { "ip", "rule", "del", "pref", "0", "lookup", "local", NULL };

		if (ip_cmd(a) || ip_cmd(b) || ip_cmd(c))
			return -EIO;
		m->rules_set = true;
	}
	return 0;
}

static void redirect_undo(struct mob *m)
{
	char mark[16];

	snprintf(mark, sizeof(mark), "0x%x", MOB_MARK);
	if (m->rules_set) {
		const char *a[] = { "ip", "rule", "add", "pref", "0", "lookup", "local", NULL };
		const char *b[] = { "ip", "rule", "del", "pref", "100", "lookup", "local", NULL };
		const char *c[] = { "ip", "rule", "del", "pref", "90", "fwmark", mark, "lookup", "main", NULL };

		ip_cmd(a);
		ip_cmd(b);
		ip_cmd(c);
		m->rules_set = false;
	}
	if (m->old_accept_local[0])
		(void)write_file(ACCEPT_LOCAL, m->old_accept_local);
	m->old_accept_local[0] = '\0';
}

static int run(struct mob *m)
{
	uint64_t next_reg = 0, next_ka = 0;
	uint8_t buf[4 + 65536];
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	m->sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (m->sfd < 0)
		return 1;
	if ((m->tun_name || m->dev) &&
	    (redirect_setup(m) || (m->tun_name ? mob_tun_up(m) : mob_dev_up(m)))) {
		mob_tun_down(m);
		mob_dev_down(m);
		redirect_undo(m);
		close(m->sfd);
		return 1;
	}
	mob_home_watch_start(m);
	for (;;) {
		struct pollfd p[4] = { { .fd = m->sfd, .events = POLLIN },
				       { .fd = m->fd, .events = POLLIN },
				       { .fd = m->nlfd, .events = POLLIN },
				       { .fd = m->tunfd, .events = POLLIN } };
		uint64_t now = now_ms();
		int64_t w;

		if (m->home_router)
			mob_home_check(m, now, &next_reg);
		if (!m->away) {
			next_reg = next_ka = UINT64_MAX;
		} else if (next_reg == UINT64_MAX) {
			next_reg = now;
		}
		if (now >= next_reg) {
			if (mob_register(m, (uint16_t)m->lifetime) == 0) {
				if (m->dev)
					mob_dev_set(m, true);
				next_reg = now_ms() + (uint64_t)m->granted * 500;
				next_ka = now_ms() + (uint64_t)m->keepalive * 1000;
			} else {
				next_reg = now_ms() + 5000;   /* try again */
			}
		}
		if (m->away && m->keepalive && now >= next_ka) {
			keepalive(m);
			next_ka = now + (uint64_t)m->keepalive * 1000;
		}
		w = next_reg == UINT64_MAX ? 1000 : (int64_t)(next_reg - now_ms());
		if (m->keepalive && next_ka != UINT64_MAX && (int64_t)(next_ka - now_ms()) < w)
			w = (int64_t)(next_ka - now_ms());
		if (m->home_router && w > 1000)
			w = 1000;       /* look for a move every second (and at each change) */
		if (poll(p, m->tunfd >= 0 ? 4 : 3, w < 0 ? 0 : (int)w) < 0 && errno != EINTR)
			break;
		if (p[2].revents & POLLIN)
			mob_home_drain(m);
		if (p[0].revents)
			break;
		if (p[1].revents & POLLIN) {
			ssize_t n = recv_ha(m, buf, sizeof(buf));

			if (n > 0)
				(void)on_datagram(m, buf, (size_t)n, 0);
		}
		if (m->tunfd >= 0 && (p[3].revents & POLLIN))
			mob_from_tun(m);
	}
	/* Leaving: the router's endpoint for us ends with this registration's
	 * lifetime; we do not deregister (the host may be moving on). */
	mob_tun_down(m);
	mob_dev_down(m);
	redirect_undo(m);
	mob_home_watch_stop(m);
	close(m->sfd);
	return 0;
}

int host_mobile_main(int argc, char **argv)
{
	struct mob m = { .lifetime = 600, .lport = MIP_PORT, .fd = -1,
			 .tunfd = -1, .sfd = -1 };
	struct sockaddr_in me = { .sin_family = AF_INET };
	uint8_t secret[RSIP_SECRET_LEN];
	int rc, one = 1;

	xd_progname = "xdnat-host";
	if (parse(argc, argv, &m))
		return 2;
	if (!m.name) {
		if (gethostname(m.name_buf, sizeof(m.name_buf) - 1)) {
			xd_err("--name: no hostname");
			return 2;
		}
		m.name = m.name_buf;
	}
	if (!rsip_valid_name(m.name, strlen(m.name))) {
		xd_err("--name: '%s' is not an enrolment name", m.name);
		return 2;
	}
	m.away = !m.home_router;   /* without --home-router: away from the start */
	if (rsip_secret_load(m.secret_file, secret))
		return 1;
	mip_derive_key(secret, m.key);
	OPENSSL_cleanse(secret, sizeof(secret));
	m.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	me.sin_port = htons((uint16_t)m.lport);
	if (m.fd < 0 || setsockopt(m.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(m.fd, (struct sockaddr *)&me, sizeof(me))) {
		xd_err("mobile: UDP port %u: %s", m.lport, strerror(errno));
		if (m.fd >= 0)
			close(m.fd);
		return 1;
	}
	if (m.once || m.dereg) {
		/* At home G is on lo (the RSIP agent's): our datagrams to G
		 * must still leave, and the reply from G be accepted. */
		char g[INET_ADDRSTRLEN + 3], out[256] = "";
		const char *show[] = { "ip", "-o", "addr", "show", "to", g, NULL };

		xd_ipstr(m.ha, g);
		strcat(g, "/32");
		if (xd_run_capture(show, out, sizeof(out)) == 0 && *out &&
		    redirect_setup(&m)) {
			redirect_undo(&m);
			if (m.fd >= 0)
				close(m.fd);
			return 1;
		}
		rc = mob_register(&m, m.dereg ? 0 : (uint16_t)m.lifetime) ? 1 : 0;
		redirect_undo(&m);
	} else
		rc = run(&m);
	close(m.fd);
	OPENSSL_cleanse(m.key, sizeof(m.key));
	return rc;
}
