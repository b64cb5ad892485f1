// SPDX-License-Identifier: GPL-2.0-only
/*
 * xdnat-bench: per-packet program cost and live throughput of the xdnat
 * router, next to baselines measured in the same run, printed as one table.
 *
 * bench/bench.sh builds the namespaces and calls this program; it can also
 * print the configuration the script applies (--emit-setup).  Topology
 * (namespace names are TAG-<name>):
 *
 *   gen: g-a  ----------------------------------------- s-a  :sink  (a) direct
 *        g-b1 ---- wan [r1: xdnat, 1 host]       lan -- s-b1 :sink  (b) 1 host
 *        g-bf ---- wan [rf: xdnat, full tables]  lan -- s-bf :sink  (b) full
 *        g-m  ---- wan [rm: minimal encap router] lan -- s-m  :sink  (m)
 *        g-c  ---- wan [rc: ip_forward + nftables DNAT + masquerade] lan -- s-c (c)
 *
 * Per-packet cost: non-live BPF_PROG_TEST_RUN with `repeat`, kernel-reported
 * duration.  The router's XDP programs, compiled from their source into a
 * harness that restores the frame after each run (bench/bench_cost.bpf.c),
 * share the maps of the live router instance of the same scale.
 *
 * Live: BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES runs the generator
 * (bench/bench_gen.bpf.c), whose XDP_TX frames go out of the g-* veth; every
 * hop after it runs in softirq on the same (pinned) CPU; the sinks
 * (bench/bench_sink.bpf.c) check and count.  Slices of the scenarios are
 * interleaved; ratios are taken per round, then their median.
 *
 * Scaling: (a), (b) full UDP, (m) and (c) again, alternating one generator
 * on one CPU with one generator per CPU on two CPUs at once (every veth has
 * a queue per CPU, so each CPU's frames take their own queue and NAPI).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "xdnat_abi.h"
#include "bench_common.h"
#include "xdnat_router.skel.h"
#include "bench_cost.skel.h"
#include "bench_gen.skel.h"
#include "bench_sink.skel.h"

#define NS_GEN  "gen"
#define NS_SINK "sink"
#define NS_R1   "r1"
#define NS_RF   "rf"
#define NS_RM   "rm"
#define NS_RC   "rc"
#define IF_WAN  "wan"
#define IF_LAN  "lan"

/* ------------------------------------------------------------ options */

struct opts {
	const char *tag;
	const char *emit_dir;
	const char *only;      /* "cost" or "live": run one phase (profiling) */
	uint32_t gaddr_base;   /* host order; global addresses are base, base+1, ... */
	uint32_t n_gaddrs;
	uint32_t hosts;
	uint32_t lan_base;     /* host order; router = base+1, host i = base+1+i */
	uint32_t lan_plen;
	uint32_t remote;       /* remote peer (generator's source address) */
	uint32_t spi_bits;
	uint32_t one_first;    /* 1-host scale: the host's ports one_first..65535 */
	uint32_t flows;
	int cpu;
	uint32_t rounds;
	uint32_t repeat;
	uint32_t slices;
	uint32_t slice_pkts;
	uint32_t scale_rounds;
	uint32_t size;
	uint32_t batch;
	uint64_t seed;
	bool verbose;
};

static struct opts O = {
	.tag = "xdb",
	.gaddr_base = 0xc0000201,  /* 192.0.2.1 (RFC 5737) */
	.n_gaddrs = 4,
	.hosts = 4000,
	.lan_base = 0x0a400000,    /* 10.64.0.0 (RFC 1918) */
	.lan_plen = 16,
	.remote = 0xcb007102,      /* 203.0.113.2 (RFC 5737) */
	.spi_bits = XDNAT_DEFAULT_SPI_BITS,
	.one_first = 1024,
	.flows = 4096,
	.cpu = -1,
	.rounds = 15,
	.repeat = 200000,
	.slices = 9,
	.slice_pkts = 1000000,
	.scale_rounds = 5,
	.size = 64,
	.batch = 64,
	.seed = 0x5eed,
};

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "xdnat-bench: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see --help)\n");
	exit(2);
}

static void usage(void)
{
	printf("usage: xdnat-bench [options]\n"
	       "  --tag NAME          namespace prefix (TAG-gen, TAG-sink, TAG-r1, TAG-rf, TAG-rm, TAG-rc) [%s]\n"
	       "  --emit-setup DIR    write DIR/nat.nft and DIR/neigh.batch for bench.sh, then exit\n"
	       "  --only cost|live|scale  run one phase only (e.g. under perf) and its part of the table\n"
	       "  --gaddr A.B.C.D     first global address; the others follow it [192.0.2.1]\n"
	       "  --gaddrs N          global addresses (1-%u) [%u]\n"
	       "  --hosts N           hosts sharing them (full tables) [%u]\n"
	       "  --lan NET/PLEN      LAN; router = NET+1, host i = NET+1+i [10.64.0.0/16]\n"
	       "  --remote A.B.C.D    remote peer (generator source) [203.0.113.2]\n"
	       "  --spi-bits N        SPIs per block = 2^N (%u-%u) [%u]\n"
	       "  --flows N           flows per scenario, power of 2 [%u]\n"
	       "  --cpu N             CPU to pin to [last CPU]\n"
	       "  --rounds N          cost rounds [%u]\n"
	       "  --repeat N          repetitions per cost run [%u]\n"
	       "  --slices N          live slices per scenario [%u]\n"
	       "  --slice-pkts N      packets per live slice (half of it per scaling slice) [%u]\n"
	       "  --scale-rounds N    rounds of the 1 -> 2 CPU scaling scenario, 0: skip it [%u]\n"
	       "  --size N            frame size in bytes (%u-1500) [%u]\n"
	       "  --batch N           live-frames batch size (1-256) [%u]\n"
	       "  --seed N            flow generator seed\n"
	       "  -v, --verbose       libbpf debug output\n",
	       O.tag, XDNAT_MAX_GADDRS, O.n_gaddrs, O.hosts, XDNAT_MIN_SPI_BITS,
	       XDNAT_MAX_SPI_BITS, O.spi_bits, O.flows, O.rounds, O.repeat, O.slices,
	       O.slice_pkts, O.scale_rounds, BENCH_MIN_FRAME, O.size, O.batch);
}

static uint64_t parse_u64(const char *s, const char *what, uint64_t min, uint64_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || v < min || v > max)
		die_usage("%s: '%s' is not a number in %llu..%llu", what, s,
			  (unsigned long long)min, (unsigned long long)max);
	return v;
}

static uint32_t parse_ip(const char *s, const char *what)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		die_usage("%s: '%s' is not an IPv4 address", what, s);
	return ntohl(a.s_addr);
}

static void parse_opts(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "tag", required_argument, NULL, 't' },
		{ "emit-setup", required_argument, NULL, 'E' },
		{ "only", required_argument, NULL, 'O' },
		{ "gaddr", required_argument, NULL, 'G' },
		{ "gaddrs", required_argument, NULL, 'g' },
		{ "hosts", required_argument, NULL, 'H' },
		{ "lan", required_argument, NULL, 'L' },
		{ "remote", required_argument, NULL, 'R' },
		{ "spi-bits", required_argument, NULL, 'S' },
		{ "flows", required_argument, NULL, 'f' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "repeat", required_argument, NULL, 'n' },
		{ "slices", required_argument, NULL, 's' },
		{ "slice-pkts", required_argument, NULL, 'p' },
		{ "scale-rounds", required_argument, NULL, 'P' },
		{ "size", required_argument, NULL, 'z' },
		{ "batch", required_argument, NULL, 'b' },
		{ "seed", required_argument, NULL, 'e' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (c) {
		case 't': O.tag = optarg; break;
		case 'E': O.emit_dir = optarg; break;
		case 'O':
			if (strcmp(optarg, "cost") && strcmp(optarg, "live") && strcmp(optarg, "scale"))
				die_usage("--only: want cost, live or scale");
			O.only = optarg;
			break;
		case 'G': O.gaddr_base = parse_ip(optarg, "--gaddr"); break;
		case 'g': O.n_gaddrs = (uint32_t)parse_u64(optarg, "--gaddrs", 1, XDNAT_MAX_GADDRS); break;
		case 'H': O.hosts = (uint32_t)parse_u64(optarg, "--hosts", 1, XDNAT_LIMIT_MAX_HOSTS - 2); break;
		case 'L': {
			char buf[64], *slash;

			if (strlen(optarg) >= sizeof(buf))
				die_usage("--lan: too long");
			strcpy(buf, optarg);
			slash = strchr(buf, '/');
			if (!slash)
				die_usage("--lan: want NET/PLEN");
			*slash = 0;
			O.lan_base = parse_ip(buf, "--lan");
			O.lan_plen = (uint32_t)parse_u64(slash + 1, "--lan prefix length", 8, 30);
			break;
		}
		case 'R': O.remote = parse_ip(optarg, "--remote"); break;
		case 'S': O.spi_bits = (uint32_t)parse_u64(optarg, "--spi-bits", XDNAT_MIN_SPI_BITS, XDNAT_MAX_SPI_BITS); break;
		case 'f': O.flows = (uint32_t)parse_u64(optarg, "--flows", 1, BENCH_MAX_FLOWS / 2); break;
		case 'c': O.cpu = (int)parse_u64(optarg, "--cpu", 0, CPU_SETSIZE - 1); break;
		case 'r': O.rounds = (uint32_t)parse_u64(optarg, "--rounds", 1, 1000); break;
		case 'n': O.repeat = (uint32_t)parse_u64(optarg, "--repeat", 1, 100000000); break;
		case 's': O.slices = (uint32_t)parse_u64(optarg, "--slices", 1, 1000); break;
		case 'p': O.slice_pkts = (uint32_t)parse_u64(optarg, "--slice-pkts", 4, 1000000000); break;
		case 'P': O.scale_rounds = (uint32_t)parse_u64(optarg, "--scale-rounds", 0, 1000); break;
		case 'z': O.size = (uint32_t)parse_u64(optarg, "--size", BENCH_MIN_FRAME, 1500); break;
		case 'b': O.batch = (uint32_t)parse_u64(optarg, "--batch", 1, 256); break;
		case 'e': O.seed = parse_u64(optarg, "--seed", 0, UINT64_MAX); break;
		case 'v': O.verbose = true; break;
		case 'h': usage(); exit(0);
		default: die_usage("bad option");
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (O.flows & (O.flows - 1))
		die_usage("--flows must be a power of 2");
	if (O.hosts < O.n_gaddrs)
		die_usage("--hosts (%u) must be >= --gaddrs (%u): every port of every global address is allocated",
			  O.hosts, O.n_gaddrs);
	if ((uint64_t)O.hosts + 2 >= (1ull << (32 - O.lan_plen)))
		die_usage("--lan /%u has no room for %u hosts", O.lan_plen, O.hosts);
	if (O.n_gaddrs > 1 && (O.gaddr_base & 0xff) + O.n_gaddrs > 255)
		die_usage("--gaddr: the %u addresses must stay in one /24", O.n_gaddrs);
}

/* ------------------------------------------------------------ the plan */

/* Hosts are 1..hosts.  Host j shares global address (j-1) % n_gaddrs; the
 * hosts of one address split all its 65536 ports into consecutive blocks.
 * SPI block b belongs to host (b % hosts) + 1: every block is allocated. */
static uint32_t host_gidx(uint32_t j)
{
	return (j - 1) % O.n_gaddrs;
}

static void host_ports(uint32_t j, uint32_t *first, uint32_t *last)
{
	uint32_t g = host_gidx(j), k = (j - 1) / O.n_gaddrs;
	uint32_t n = (O.hosts - g + O.n_gaddrs - 1) / O.n_gaddrs;
	uint32_t blk = XDNAT_PORTS_PER_GADDR / n;

	*first = k * blk;
	*last = k == n - 1 ? XDNAT_PORTS_PER_GADDR - 1 : *first + blk - 1;
}

static uint32_t n_spi_blocks(void)
{
	return 1u << (32 - O.spi_bits);
}

static uint32_t gaddr(uint32_t g)
{
	return O.gaddr_base + g;
}

static uint32_t host_lan(uint32_t j)
{
	return O.lan_base + 1 + j;
}

static uint32_t router_lan(void)
{
	return O.lan_base + 1;
}

static char *ipstr(uint32_t a, char buf[16])
{
	struct in_addr in = { .s_addr = htonl(a) };

	return (char *)inet_ntop(AF_INET, &in, buf, 16);
}

static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static uint32_t rng_in(uint32_t lo, uint32_t hi)
{
	return lo + (uint32_t)(rng() % ((uint64_t)hi - lo + 1));
}

/* Flows over all hosts (full) or to host 1 only (1 host scale). */
static void make_flows(struct bench_flow *f, uint32_t n, uint8_t proto, bool one_host)
{
	uint32_t nb = n_spi_blocks(), mask = (1u << O.spi_bits) - 1;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t j, first, last;

		memset(&f[i], 0, sizeof(f[i]));
		if (proto == IPPROTO_ESP || proto == IPPROTO_AH) {
			uint32_t b = one_host ? 1 : rng_in(1, nb - 1);

			j = one_host ? 1 : b % O.hosts + 1;
			f[i].key = b << O.spi_bits | ((uint32_t)rng() & mask);
			if (f[i].key <= XDNAT_SPI_RESERVED_MAX)
				f[i].key = XDNAT_SPI_RESERVED_MAX + 1;
		} else {
			j = one_host ? 1 : rng_in(1, O.hosts);
			if (one_host) {
				first = O.one_first;
				last = XDNAT_PORTS_PER_GADDR - 1;
			} else {
				host_ports(j, &first, &last);
			}
			f[i].key = rng_in(first, last);
		}
		f[i].gaddr = htonl(gaddr(one_host ? 0 : host_gidx(j)));
		f[i].lan = htonl(host_lan(j));
		f[i].sport = (uint16_t)(1024 + i % 60000);
		f[i].proto = proto;
	}
}

/* nftables ruleset and neighbour entries that bench.sh applies. */
static int emit_setup(const char *dir)
{
	char path[512], a[16], b[16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/nat.nft", dir);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "xdnat-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "# kernel-forwarding baseline: DNAT to the host owning (address, port), masquerade\n"
		   "table ip xdnat_bench {\n"
		   "\tmap owner {\n\t\ttype ipv4_addr . inet_service : ipv4_addr\n"
		   "\t\tflags interval\n\t\telements = {\n");
	for (uint32_t j = 1; j <= O.hosts; j++) {
		uint32_t first, last;

		host_ports(j, &first, &last);
		fprintf(f, "\t\t\t%s . %u-%u : %s,\n", ipstr(gaddr(host_gidx(j)), a), first, last,
			ipstr(host_lan(j), b));
	}
	fprintf(f, "\t\t}\n\t}\n"
		   "\tchain pre {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
		   "\t\tmeta l4proto { tcp, udp } dnat ip to ip daddr . th dport map @owner\n\t}\n"
		   "\tchain post {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
		   "\t\toifname \"%s\" masquerade\n\t}\n}\n", IF_LAN);
	if (fclose(f)) {
		fprintf(stderr, "xdnat-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}

	snprintf(path, sizeof(path), "%s/neigh.batch", dir);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "xdnat-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* @MAC@: the sink's address, filled in by bench.sh per router. */
	for (uint32_t j = 1; j <= O.hosts; j++)
		fprintf(f, "neigh replace %s lladdr @MAC@ dev %s nud permanent\n",
			ipstr(host_lan(j), a), IF_LAN);
	if (fclose(f)) {
		fprintf(stderr, "xdnat-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/addrs", dir);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "xdnat-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "ROUTER_LAN=%s/%u\n", ipstr(router_lan(), a), O.lan_plen);
	fprintf(f, "REMOTE=%s\n", ipstr(O.remote, a));
	fprintf(f, "ROUTER_WAN=%s/24\n", ipstr((O.remote & ~0xffu) | ((O.remote & 0xff) == 1 ? 2 : 1), a));
	if (fclose(f)) {
		fprintf(stderr, "xdnat-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ namespaces */

static int ns_orig = -1;

static int ns_open(const char *name)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "/var/run/netns/%s-%s", O.tag, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fprintf(stderr, "xdnat-bench: %s: %s (run bench/bench.sh)\n", path, strerror(errno));
	return fd;
}

static int ns_enter(int fd)
{
	if (setns(fd, CLONE_NEWNET)) {
		fprintf(stderr, "xdnat-bench: setns: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* ifindex and MAC of @ifname in the current namespace. */
static int if_info(const char *ifname, int *ifindex, uint8_t mac[6])
{
	struct ifreq ifr;
	int s, rc = -1;

	*ifindex = (int)if_nametoindex(ifname);
	if (!*ifindex) {
		fprintf(stderr, "xdnat-bench: no interface %s: %s\n", ifname, strerror(errno));
		return -1;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		fprintf(stderr, "xdnat-bench: socket: %s\n", strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(s, SIOCGIFHWADDR, &ifr))
		fprintf(stderr, "xdnat-bench: SIOCGIFHWADDR %s: %s\n", ifname, strerror(errno));
	else {
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
		rc = 0;
	}
	close(s);
	return rc;
}

/* ------------------------------------------------------------ state */

struct xdp_att {
	int ns;        /* namespace fd (borrowed) */
	int ifindex;   /* 0: nothing attached */
};

struct router {
	const char *name;
	bool one_host;
	int ns;
	int wan, lan;
	uint8_t wan_mac[6];
	struct xdnat_router *live;    /* attached to wan */
	struct bench_cost *cost;      /* the same programs in the cost harness */
	struct xdp_att att;
	void *ports_mem, *spis_mem;
	size_t ports_len, spis_len;
};

enum scen { SC_A, SC_B1, SC_BF, SC_BE, SC_M, SC_C, SC_MAX };

static const char *const scen_name[SC_MAX] = {
	"(a) direct: generator -> sink",
	"(b) xdnat, 1 host, UDP",
	"(b) xdnat, full tables, UDP",
	"(b) xdnat, full tables, ESP",
	"(m) minimal encap router, same UDP flows",
	"(c) kernel fwd + nft DNAT + masq, UDP",
};

/* The scenarios of the scaling phase. */
static const enum scen scale_sc[] = { SC_A, SC_BF, SC_M, SC_C };
#define N_SCALE (sizeof(scale_sc) / sizeof(scale_sc[0]))

struct sink {
	const char *ifname;
	struct bench_sink *skel;
	struct xdp_att att;
};

struct gen {
	const char *ifname;
	int ifindex;
	struct bench_gen *skel;
	struct bench_gen *skel2; /* a second instance for the second CPU (scaling) */
	struct sink *sink;
};

enum { SK_A, SK_B1, SK_BF, SK_M, SK_C, SK_MAX };

/* The minimal encapsulating router, live in TAG-rm. */
struct minrt {
	int ns;
	int wan, lan;
	uint8_t wan_mac[6], lan_mac[6];
	struct bench_cost *skel;
	struct xdp_att att;
};

struct bench {
	int ns_gen, ns_sink, ns_rc;
	struct router r[2]; /* r1, rf */
	struct minrt m;
	struct xdp_att rc_pass;
	struct sink sink[SK_MAX];
	struct gen gen[SC_MAX];
	int cpu2;           /* the second CPU of the scaling phase, -1: none */
	int ncpus;
	bool failed;
};

static int xdp_attach(struct xdp_att *a, int ns, int ifindex, int prog_fd, const char *what)
{
	int err;

	if (ns_enter(ns))
		return -1;
	err = bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_DRV_MODE, NULL);
	if (err) {
		fprintf(stderr, "xdnat-bench: attaching XDP to %s: %s\n", what, strerror(-err));
		return -1;
	}
	a->ns = ns;
	a->ifindex = ifindex;
	return 0;
}

static void xdp_detach(struct xdp_att *a)
{
	int err;

	if (!a->ifindex)
		return;
	if (ns_enter(a->ns))
		return;
	err = bpf_xdp_detach(a->ifindex, XDP_FLAGS_DRV_MODE, NULL);
	if (err)
		fprintf(stderr, "xdnat-bench: detaching XDP from ifindex %d: %s\n", a->ifindex,
			strerror(-err));
	a->ifindex = 0;
}

/* ------------------------------------------------------------ router */

static int map_mmap(struct bpf_map *m, void **mem, size_t *len)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t n = (size_t)bpf_map__max_entries(m) * bpf_map__value_size(m);

	*len = (n + (size_t)pg - 1) / (size_t)pg * (size_t)pg;
	*mem = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(m), 0);
	if (*mem == MAP_FAILED) {
		*mem = NULL;
		fprintf(stderr, "xdnat-bench: mmap %s: %s\n", bpf_map__name(m), strerror(errno));
		return -1;
	}
	return 0;
}

static int map_put(struct bpf_map *m, const void *key, const void *val)
{
	if (bpf_map_update_elem(bpf_map__fd(m), key, val, BPF_ANY)) {
		fprintf(stderr, "xdnat-bench: update %s: %s\n", bpf_map__name(m), strerror(errno));
		return -1;
	}
	return 0;
}

static struct bpf_map *obj_map(struct bpf_object *obj, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	if (!m)
		fprintf(stderr, "xdnat-bench: no map %s in %s\n", name, bpf_object__name(obj));
	return m;
}

/* The maps the cost object shares with the live one (names: xdnat_maps[]). */
static const enum xdnat_map router_maps[] = {
	XDNAT_M_INFO, XDNAT_M_PORTS, XDNAT_M_SPIS, XDNAT_M_HOSTS, XDNAT_M_LAN_IDX,
	XDNAT_M_HSTATS, XDNAT_M_STATS, XDNAT_M_TXPORTS,
};
#define N_ROUTER_MAPS (sizeof(router_maps) / sizeof(router_maps[0]))

/*
 * Configure an opened object holding the router's programs: cfg, map sizes,
 * no pinning; with @share, use @share's router maps instead of new ones.
 */
static int router_prepare(struct router *r, struct bpf_object *obj,
			  struct xdnat_router_cfg *cfg, struct bpf_object *share)
{
	struct bpf_map *m;
	int err;

	memset(cfg, 0, sizeof(*cfg));
	cfg->wan_ifindex = (uint32_t)r->wan;
	cfg->lan_ifindex = (uint32_t)r->lan;
	cfg->lan_addr = htonl(router_lan());
	cfg->flags = XDNAT_F_UNKNOWN_DROP;
	cfg->n_gaddrs = O.n_gaddrs;
	cfg->spi_block_bits = O.spi_bits;
	cfg->max_hosts = O.hosts + 1;
	cfg->nh_cache_ms = XDNAT_DEFAULT_NH_CACHE_MS; /* as xdnatd runs it */
	for (uint32_t g = 0; g < O.n_gaddrs; g++)
		cfg->gaddrs[g] = htonl(gaddr(g));

	struct { const char *map; uint32_t n; } sizes[] = {
		{ XDNAT_MAP_PORTS, O.n_gaddrs * XDNAT_PORTS_PER_GADDR },
		{ XDNAT_MAP_SPIS, n_spi_blocks() },
		{ XDNAT_MAP_HOSTS, O.hosts + 1 },
		{ XDNAT_MAP_LAN_IDX, O.hosts + 1 },
		{ XDNAT_MAP_HSTATS, O.hosts + 1 },
	};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (!(m = obj_map(obj, sizes[i].map)))
			return -1;
		err = bpf_map__set_max_entries(m, sizes[i].n);
		if (err) {
			fprintf(stderr, "xdnat-bench: set_max_entries(%s): %s\n", sizes[i].map,
				strerror(-err));
			return -1;
		}
	}
	/* Private maps: never pin into (or reuse from) the bpffs. */
	bpf_object__for_each_map(m, obj) {
		err = bpf_map__set_pin_path(m, NULL);
		if (err) {
			fprintf(stderr, "xdnat-bench: unpin %s: %s\n", bpf_map__name(m), strerror(-err));
			return -1;
		}
	}
	for (size_t i = 0; share && i < N_ROUTER_MAPS; i++) {
		const char *name = xdnat_maps[router_maps[i]].name;
		struct bpf_map *from = obj_map(share, name);

		if (!from || !(m = obj_map(obj, name)))
			return -1;
		err = bpf_map__reuse_fd(m, bpf_map__fd(from));
		if (err) {
			fprintf(stderr, "xdnat-bench: sharing %s: %s\n", name, strerror(-err));
			return -1;
		}
	}
	/* Only the XDP programs are measured. */
	struct bpf_program *p;

	bpf_object__for_each_program(p, obj) {
		const char *n = bpf_program__name(p);

		if (!strcmp(n, "xdnat_wan_tc") || !strcmp(n, "xdnat_lan_tc")) {
			err = bpf_program__set_autoload(p, false);
			if (err) {
				fprintf(stderr, "xdnat-bench: autoload %s: %s\n", n, strerror(-err));
				return -1;
			}
		}
	}
	return 0;
}

static int router_fill(struct router *r)
{
	struct xdnat_router *s = r->live;
	struct xdnat_owner *ports, *spis;
	uint32_t ifx, nh = r->one_host ? 1 : O.hosts;

	if (map_mmap(s->maps.xdnat_ports, &r->ports_mem, &r->ports_len) ||
	    map_mmap(s->maps.xdnat_spis, &r->spis_mem, &r->spis_len))
		return -1;
	ports = r->ports_mem;
	spis = r->spis_mem;
	if (r->one_host) {
		for (uint32_t p = O.one_first; p < XDNAT_PORTS_PER_GADDR; p++)
			ports[p].host_id = 1;
		spis[1].host_id = 1;
	} else {
		for (uint32_t j = 1; j <= O.hosts; j++) {
			uint32_t first, last, base = host_gidx(j) * XDNAT_PORTS_PER_GADDR;

			host_ports(j, &first, &last);
			for (uint32_t p = first; p <= last; p++)
				ports[base + p].host_id = j;
		}
		for (uint32_t b = 0; b < n_spi_blocks(); b++)
			spis[b].host_id = b % O.hosts + 1;
	}
	for (uint32_t j = 1; j <= nh; j++) {
		struct xdnat_host h = {
			.lan_addr = htonl(host_lan(j)),
			.gaddr_index = r->one_host ? 0 : host_gidx(j),
			.flags = XDNAT_HOST_F_VALID,
		};
		__be32 lan = h.lan_addr;

		if (map_put(s->maps.xdnat_hosts, &j, &h) || map_put(s->maps.xdnat_lan_idx, &lan, &j))
			return -1;
	}
	/* devmap entries resolve the ifindex in the current namespace */
	if (ns_enter(r->ns))
		return -1;
	ifx = (uint32_t)r->wan;
	if (map_put(s->maps.xdnat_txports, &(uint32_t){ XDNAT_TXPORT_WAN }, &ifx))
		return -1;
	ifx = (uint32_t)r->lan;
	return map_put(s->maps.xdnat_txports, &(uint32_t){ XDNAT_TXPORT_LAN }, &ifx);
}

static int router_up(struct router *r)
{
	uint8_t lanmac[6];
	int err;

	if (ns_enter(r->ns) || if_info(IF_WAN, &r->wan, r->wan_mac) || if_info(IF_LAN, &r->lan, lanmac))
		return -1;

	r->live = xdnat_router__open();
	if (!r->live) {
		fprintf(stderr, "xdnat-bench: opening xdnat_router: %s\n", strerror(errno));
		return -1;
	}
	if (router_prepare(r, r->live->obj, &r->live->rodata->cfg, NULL))
		return -1;
	err = xdnat_router__load(r->live);
	if (err) {
		fprintf(stderr, "xdnat-bench: loading xdnat_router: %s\n", strerror(-err));
		return -1;
	}
	if (router_fill(r))
		return -1;
	if (xdp_attach(&r->att, r->ns, r->wan, bpf_program__fd(r->live->progs.xdnat_wan_xdp),
		       "router wan"))
		return -1;

	r->cost = bench_cost__open();
	if (!r->cost) {
		fprintf(stderr, "xdnat-bench: opening bench_cost: %s\n", strerror(errno));
		return -1;
	}
	if (router_prepare(r, r->cost->obj, &r->cost->rodata->cfg, r->live->obj))
		return -1;
	err = bench_cost__load(r->cost);
	if (err) {
		fprintf(stderr, "xdnat-bench: loading bench_cost: %s\n", strerror(-err));
		return -1;
	}
	return 0;
}

static void router_down(struct router *r)
{
	xdp_detach(&r->att);
	if (r->ports_mem)
		munmap(r->ports_mem, r->ports_len);
	if (r->spis_mem)
		munmap(r->spis_mem, r->spis_len);
	bench_cost__destroy(r->cost); /* NULL-safe */
	xdnat_router__destroy(r->live);
	if (r->ns >= 0)
		close(r->ns);
}

/*
 * The minimal encapsulating router live (bench_min_live of bench_cost.bpf.c):
 * its table holds the UDP flows (@fl, n) -> the owning host's LAN address
 * and the sink's MAC; it redirects out of its LAN veth like xdnat does.
 */
static int min_up(struct minrt *m, int ns_sink, const struct bench_flow *fl, uint32_t n)
{
	struct bpf_program *p;
	struct bpf_map *map;
	uint8_t sink_mac[6];
	int err, sink_ifx;
	uint32_t ifx;

	if (ns_enter(ns_sink) || if_info("s-m", &sink_ifx, sink_mac))
		return -1;
	if (ns_enter(m->ns) || if_info(IF_WAN, &m->wan, m->wan_mac) ||
	    if_info(IF_LAN, &m->lan, m->lan_mac))
		return -1;
	m->skel = bench_cost__open();
	if (!m->skel) {
		fprintf(stderr, "xdnat-bench: opening bench_cost: %s\n", strerror(errno));
		return -1;
	}
	m->skel->rodata->cfg.lan_addr = htonl(router_lan());
	bpf_object__for_each_program(p, m->skel->obj) {
		if (p == m->skel->progs.bench_min_live)
			continue;
		err = bpf_program__set_autoload(p, false);
		if (err) {
			fprintf(stderr, "xdnat-bench: autoload %s: %s\n", bpf_program__name(p),
				strerror(-err));
			return -1;
		}
	}
	bpf_object__for_each_map(map, m->skel->obj) {
		err = bpf_map__set_pin_path(map, NULL);
		if (err) {
			fprintf(stderr, "xdnat-bench: unpin %s: %s\n", bpf_map__name(map), strerror(-err));
			return -1;
		}
	}
	err = bpf_map__set_max_entries(m->skel->maps.bench_min_fwd, n);
	if (!err)
		err = bench_cost__load(m->skel);
	if (err) {
		fprintf(stderr, "xdnat-bench: loading the minimal router: %s\n", strerror(-err));
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct bench_min_key k = { .daddr = fl[i].gaddr, .dport = htons((uint16_t)fl[i].key) };
		struct bench_min_val v = { .lan = fl[i].lan };

		memcpy(v.dmac, sink_mac, 6);
		memcpy(v.smac, m->lan_mac, 6);
		if (map_put(m->skel->maps.bench_min_fwd, &k, &v))
			return -1;
	}
	ifx = (uint32_t)m->lan;
	if (map_put(m->skel->maps.bench_tx, &(uint32_t){ 0 }, &ifx))
		return -1;
	return xdp_attach(&m->att, m->ns, m->wan, bpf_program__fd(m->skel->progs.bench_min_live),
			  "minimal router wan");
}

static void min_down(struct minrt *m)
{
	xdp_detach(&m->att);
	bench_cost__destroy(m->skel);
	if (m->ns >= 0)
		close(m->ns);
}

/* ------------------------------------------------------------ frames */

struct frame {
	size_t len;
	uint8_t b[1600];
};

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, (uint16_t)(v >> 16));
	wr16(p + 2, (uint16_t)v);
}

static void ip_hdr(uint8_t *ip, uint8_t proto, uint16_t tot, uint32_t src, uint32_t dst)
{
	uint32_t sum = 0;

	memset(ip, 0, 20);
	ip[0] = 0x45;
	wr16(ip + 2, tot);
	wr16(ip + 4, 1);
	ip[8] = 64;
	ip[9] = proto;
	wr32(ip + 12, src);
	wr32(ip + 16, dst);
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	wr16(ip + 10, (uint16_t)~sum);
}

/* WAN frame to a global address: remote -> G, one flow.  L4 checksums are
 * left zero: nothing on the measured paths checks them. */
static void wan_frame(struct frame *f, const uint8_t dmac[6], const struct bench_flow *fl)
{
	uint8_t *l4 = f->b + BENCH_OFF_L4;

	memset(f, 0, sizeof(*f));
	f->len = O.size;
	memcpy(f->b, dmac, 6);
	memcpy(f->b + 6, (uint8_t[6]){ 2, 0, 0, 0, 0xee, 1 }, 6);
	wr16(f->b + 12, 0x0800);
	ip_hdr(f->b + BENCH_OFF_IP, fl->proto, (uint16_t)(f->len - BENCH_OFF_IP), O.remote,
	       ntohl(fl->gaddr));
	switch (fl->proto) {
	case IPPROTO_UDP:
		wr16(l4, fl->sport);
		wr16(l4 + 2, (uint16_t)fl->key);
		wr16(l4 + 4, (uint16_t)(f->len - BENCH_OFF_L4));
		break;
	case IPPROTO_TCP:
		wr16(l4, fl->sport);
		wr16(l4 + 2, (uint16_t)fl->key);
		l4[12] = 5 << 4;
		l4[13] = 0x10;
		wr16(l4 + 14, 65535);
		break;
	/* A sequence number in the middle of an SA: the router learns IPsec
	 * peers only from an SA's first packets and every 1024th, so a
	 * steady-state packet does not (the live generator counts up). */
	case IPPROTO_ESP:
		wr32(l4, fl->key);
		wr32(l4 + 4, 100000);
		break;
	case IPPROTO_AH:
		l4[0] = 59;
		l4[1] = (12 + 12) / 4 - 2;
		wr32(l4 + 4, fl->key);
		wr32(l4 + 8, 100000);
		break;
	}
}

/* LAN frame: host -> router IP-in-IP around host(G) -> remote UDP. */
static void lan_frame(struct frame *f, const uint8_t dmac[6], uint32_t host, uint16_t sport)
{
	uint8_t *in = f->b + BENCH_OFF_L4, *udp = in + 20;

	memset(f, 0, sizeof(*f));
	f->len = O.size + 20;
	memcpy(f->b, dmac, 6);
	memcpy(f->b + 6, (uint8_t[6]){ 2, 0, 0, 0, 0xee, 2 }, 6);
	wr16(f->b + 12, 0x0800);
	ip_hdr(f->b + BENCH_OFF_IP, IPPROTO_IPIP, (uint16_t)(f->len - BENCH_OFF_IP), host_lan(host),
	       router_lan());
	ip_hdr(in, IPPROTO_UDP, (uint16_t)(f->len - BENCH_OFF_L4), gaddr(host_gidx(host)), O.remote);
	wr16(udp, sport);
	wr16(udp + 2, 4500);
	wr16(udp + 4, (uint16_t)(f->len - BENCH_OFF_L4 - 20));
}

/* ------------------------------------------------------------ cost */

enum ccase {
	CC_PASS, CC_REDIRECT, CC_FIB, CC_NOP,
	CC_ESP, CC_AH, CC_UDP, CC_TCP, CC_LAN, /* 1 host; + CC_SCALE: full tables */
	/* floods to unallocated ports / SPIs, dropped in XDP (1-host tables) */
	CC_FLOOD_TCP = CC_LAN + 1 + 5, CC_FLOOD_ESP,
	CC_MIN,   /* the minimal encapsulating router, UDP flows of the full tables */
	CC_MAX,
};
#define CC_SCALE 5
#define CC_ROUTER_FIRST CC_ESP

static const char *const cc_name[] = {
	"XDP_PASS baseline", "redirect-only baseline", "redirect + bpf_fib_lookup (profile)",
	"harness overhead (subtracted)",
	"WAN->LAN ESP (SPI)", "WAN->LAN AH (SPI)", "WAN->LAN UDP (port)", "WAN->LAN TCP (port)",
	"LAN->WAN UDP (decap + checks)",
};
static const char *const min_name = "minimal encapsulating router (UDP)";
static const char *const flood_name[] = {
	"flood: TCP SYN to unallocated ports", "flood: ESP to unallocated SPIs",
};

struct ccfg {
	const char *name;
	struct bench_cost *skel; /* the program's object (its .bss) */
	int prog_fd;
	int ns;
	int ifindex;
	struct frame fr;
	uint32_t vary, base; /* harness only */
	bool harness;
	uint32_t want;       /* verdict every repetition must return */
};

struct cost_res {
	bool done;
	double ns[CC_MAX];       /* robust centre of the rounds */
	uint32_t *dur[CC_MAX];
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Interquartile mean of the kernel's per-run figures, + 0.5 ns: the kernel
 * truncates its time/repeat division to whole ns. */
static double centre(uint32_t *v, uint32_t n)
{
	uint32_t lo = n / 4, hi = n - n / 4;
	double s = 0;

	qsort(v, n, sizeof(*v), cmp_u32);
	if (hi <= lo) {
		lo = 0;
		hi = n;
	}
	for (uint32_t i = lo; i < hi; i++)
		s += v[i];
	return s / (hi - lo) + 0.5;
}

static int cost_run(const struct ccfg *c, uint32_t *dur)
{
	struct xdp_md ctx = { .data_end = (uint32_t)c->fr.len, .ingress_ifindex = (uint32_t)c->ifindex };
	struct bench_cost__bss *bss = c->skel->bss;
	int err;

	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = c->fr.b,
		.data_size_in = (uint32_t)c->fr.len,
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = O.repeat,
	);
	if (ns_enter(c->ns))
		return -1;
	bss->vary_mode = c->vary;
	bss->vary_base = c->base;
	bss->iter = 0;
	memset((void *)bss->verdicts, 0, sizeof(bss->verdicts));
	err = bpf_prog_test_run_opts(c->prog_fd, &o);
	if (err) {
		fprintf(stderr, "xdnat-bench: BPF_PROG_TEST_RUN: %s\n", strerror(-err));
		return -1;
	}
	if (o.retval != c->want ||
	    (c->harness && bss->verdicts[c->want] != O.repeat)) {
		int fd = bpf_map__fd(c->skel->maps.xdnat_stats), n = libbpf_num_possible_cpus();
		struct xdnat_counter *v = calloc((size_t)(n > 0 ? n : 1), sizeof(*v));

		for (uint32_t k = 0; v && n > 0 && k < XDNAT_R_MAX; k++) {
			uint64_t t = 0;

			if (bpf_map_lookup_elem(fd, &k, v))
				break;
			for (int i = 0; i < n; i++)
				t += v[i].packets;
			if (t)
				fprintf(stderr, "  router counter %s: %llu\n", xdnat_reason_names[k], (unsigned long long)t);
		}
		free(v);
		fprintf(stderr, "xdnat-bench: cost run %s: verdict %u, want %u for all %u (%llu did, %llu harness failures)\n",
			c->name, o.retval, c->want, O.repeat,
			(unsigned long long)bss->verdicts[c->want & 7],
			(unsigned long long)bss->verdicts[7]);
		return -1;
	}
	*dur = o.duration;
	return 0;
}

static int cost_phase(struct bench *B, struct cost_res *res)
{
	static struct ccfg cc[CC_MAX];
	static struct bench_flow fl[BENCH_COST_FLOWS];
	static const uint8_t protos[4] = { IPPROTO_ESP, IPPROTO_AH, IPPROTO_UDP, IPPROTO_TCP };
	static const uint32_t vary[4] = { BENCH_VARY_ESP_SPI, BENCH_VARY_AH_SPI, BENCH_VARY_DPORT,
					  BENCH_VARY_DPORT };
	struct router *rf = &B->r[1];
	struct bench_cost *s = rf->cost;

	/* baselines, run in the full-tables router's namespace */
	cc[CC_PASS] = (struct ccfg){ .name = cc_name[CC_PASS], .skel = s, .prog_fd = bpf_program__fd(s->progs.bench_pass),
				     .ns = rf->ns, .ifindex = rf->wan, .want = XDP_PASS };
	cc[CC_REDIRECT] = (struct ccfg){ .name = cc_name[CC_REDIRECT], .skel = s,
					 .prog_fd = bpf_program__fd(s->progs.bench_redirect),
					 .ns = rf->ns, .ifindex = rf->wan, .want = XDP_REDIRECT };
	cc[CC_FIB] = (struct ccfg){ .name = cc_name[CC_FIB], .skel = s,
				    .prog_fd = bpf_program__fd(s->progs.bench_fib),
				    .ns = rf->ns, .ifindex = rf->wan, .want = XDP_REDIRECT,
				    .harness = true };
	cc[CC_NOP] = (struct ccfg){ .name = cc_name[CC_NOP], .skel = s, .prog_fd = bpf_program__fd(s->progs.bench_harness_nop),
				    .ns = rf->ns, .ifindex = rf->wan, .want = XDP_PASS,
				    .harness = true, .vary = BENCH_VARY_DPORT };

	for (int sc = 0; sc < 2; sc++) {
		struct router *r = &B->r[sc];

		for (uint32_t p = 0; p < 5; p++) {
			struct ccfg *c = &cc[CC_ROUTER_FIRST + p + sc * CC_SCALE];

			c->name = cc_name[CC_ROUTER_FIRST + p];
			c->skel = r->cost;
			c->ns = r->ns;
			c->harness = true;
			c->want = XDP_REDIRECT;
			c->base = p * BENCH_COST_FLOWS;
			c->prog_fd = p == 4 ? bpf_program__fd(r->cost->progs.bench_harness_lan) :
					      bpf_program__fd(r->cost->progs.bench_harness_wan);
			c->ifindex = p == 4 ? r->lan : r->wan;
			if (p < 4) {
				make_flows(fl, BENCH_COST_FLOWS, protos[p], r->one_host);
				c->vary = vary[p];
				wan_frame(&c->fr, r->wan_mac, &fl[0]);
				for (uint32_t i = 0; i < BENCH_COST_FLOWS; i++) {
					struct bench_vary_val v = { .a = fl[i].key, .c = fl[i].gaddr };
					uint32_t k = c->base + i;

					if (map_put(r->cost->maps.bench_vals, &k, &v))
						return -1;
					/* The minimal router's table: the same UDP flows. */
					if (sc == 1 && protos[p] == IPPROTO_UDP) {
						struct bench_min_key mk = { .daddr = fl[i].gaddr,
									    .dport = htons((uint16_t)fl[i].key) };
						struct bench_min_val mv = { .lan = fl[i].lan,
									    .dmac = { 2, 0, 0, 0, 0xbb, 1 },
									    .smac = { 2, 0, 0, 0, 0xbb, 2 } };

						if (map_put(r->cost->maps.bench_min_fwd, &mk, &mv))
							return -1;
					}
				}
			} else {
				c->vary = BENCH_VARY_LAN;
				for (uint32_t i = 0; i < BENCH_COST_FLOWS; i++) {
					uint32_t j = r->one_host ? 1 : rng_in(1, O.hosts), first, last;
					struct bench_vary_val v;
					uint32_t k = c->base + i;

					if (r->one_host) {
						first = O.one_first;
						last = XDNAT_PORTS_PER_GADDR - 1;
					} else {
						host_ports(j, &first, &last);
					}
					v = (struct bench_vary_val){
						.a = rng_in(first, last), .b = htonl(host_lan(j)),
						.c = htonl(gaddr(r->one_host ? 0 : host_gidx(j))),
					};
					if (map_put(r->cost->maps.bench_vals, &k, &v))
						return -1;
					if (i == 0)
						lan_frame(&c->fr, r->wan_mac, j, (uint16_t)v.a);
				}
			}
		}
	}
	/* Floods (issue 5): what --unknown drop costs per junk packet.  The
	 * 1-host router owns ports one_first..65535 and SPI block 1 only. */
	for (int f = 0; f < 2; f++) {
		struct router *r = &B->r[0];
		struct ccfg *c = &cc[CC_FLOOD_TCP + f];
		struct bench_flow fb;

		c->name = flood_name[f];
		c->skel = r->cost;
		c->ns = r->ns;
		c->harness = true;
		c->want = XDP_DROP;
		c->base = (uint32_t)(5 + f) * BENCH_COST_FLOWS;
		c->prog_fd = bpf_program__fd(r->cost->progs.bench_harness_wan);
		c->ifindex = r->wan;
		c->vary = f ? BENCH_VARY_ESP_SPI : BENCH_VARY_DPORT;
		for (uint32_t i = 0; i < BENCH_COST_FLOWS; i++) {
			struct bench_vary_val v = { .c = htonl(gaddr(0)) };
			uint32_t k = c->base + i;

			if (f) /* any SPI outside block 1 and the reserved range */
				do
					v.a = (uint32_t)rng();
				while (v.a <= XDNAT_SPI_RESERVED_MAX || v.a >> O.spi_bits == 1);
			else
				v.a = rng_in(1, O.one_first - 1);
			if (map_put(r->cost->maps.bench_vals, &k, &v))
				return -1;
		}
		make_flows(&fb, 1, f ? IPPROTO_ESP : IPPROTO_TCP, true);
		wan_frame(&c->fr, r->wan_mac, &fb);
	}
	cc[CC_MIN] = (struct ccfg){ .name = min_name, .skel = s,
				    .prog_fd = bpf_program__fd(s->progs.bench_harness_min),
				    .ns = rf->ns, .ifindex = rf->wan, .want = XDP_REDIRECT,
				    .harness = true, .vary = BENCH_VARY_DPORT,
				    .base = cc[CC_UDP + CC_SCALE].base, .fr = cc[CC_UDP + CC_SCALE].fr };
	/* the nop harness varies like the UDP case (full tables) */
	cc[CC_NOP].base = cc[CC_UDP + CC_SCALE].base;
	cc[CC_NOP].fr = cc[CC_UDP + CC_SCALE].fr;
	cc[CC_PASS].fr = cc[CC_UDP + CC_SCALE].fr;
	cc[CC_REDIRECT].fr = cc[CC_UDP + CC_SCALE].fr;
	cc[CC_FIB].fr = cc[CC_UDP + CC_SCALE].fr;
	cc[CC_FIB].base = cc[CC_LAN + CC_SCALE].base; /* .b: a host's LAN address */
	if (ns_enter(rf->ns) ||
	    map_put(s->maps.bench_tx, &(uint32_t){ 0 }, &(uint32_t){ (uint32_t)rf->lan }))
		return -1;

	for (int i = 0; i < CC_MAX; i++) {
		res->dur[i] = calloc(O.rounds, sizeof(uint32_t));
		if (!res->dur[i]) {
			fprintf(stderr, "xdnat-bench: out of memory\n");
			return -1;
		}
	}
	/* warm-up, then interleaved rounds, rotating the order */
	for (int i = 0; i < CC_MAX; i++)
		if (cost_run(&cc[i], &res->dur[i][0]))
			return -1;
	for (uint32_t r = 0; r < O.rounds; r++)
		for (int k = 0; k < CC_MAX; k++) {
			int i = (int)((k + r) % CC_MAX);

			if (cost_run(&cc[i], &res->dur[i][r]))
				return -1;
		}
	for (int i = 0; i < CC_MAX; i++)
		res->ns[i] = centre(res->dur[i], O.rounds);
	res->done = true;
	return 0;
}

/* ------------------------------------------------------------ live */

static int sink_up(struct bench *B, struct sink *k, uint32_t mode, uint32_t n_flows,
		   const struct bench_flow *fl)
{
	int ifindex;
	uint8_t mac[6];
	int err;

	if (ns_enter(B->ns_sink) || if_info(k->ifname, &ifindex, mac))
		return -1;
	k->skel = bench_sink__open();
	if (!k->skel) {
		fprintf(stderr, "xdnat-bench: opening sink: %s\n", strerror(errno));
		return -1;
	}
	k->skel->rodata->mode = mode;
	k->skel->rodata->n_flows = n_flows;
	k->skel->rodata->router_lan = htonl(router_lan());
	err = bench_sink__load(k->skel);
	if (err) {
		fprintf(stderr, "xdnat-bench: loading sink: %s\n", strerror(-err));
		return -1;
	}
	for (uint32_t i = 0; i < n_flows; i++)
		if (map_put(k->skel->maps.flows, &i, &fl[i]))
			return -1;
	return xdp_attach(&k->att, B->ns_sink, ifindex, bpf_program__fd(k->skel->progs.bench_sink),
			  k->ifname);
}

static struct bench_gen *gen_load(const uint8_t dmac[6], const uint8_t smac[6], uint32_t tag_base,
				   const struct bench_flow *fl)
{
	struct bench_gen *g = bench_gen__open();
	int err;

	if (!g) {
		fprintf(stderr, "xdnat-bench: opening generator: %s\n", strerror(errno));
		return NULL;
	}
	g->rodata->flow_mask = O.flows - 1;
	g->rodata->frame_len = O.size;
	g->rodata->tag_base = tag_base;
	g->rodata->saddr = htonl(O.remote);
	memcpy((void *)g->rodata->dmac, dmac, 6);
	memcpy((void *)g->rodata->smac, smac, 6);
	err = bench_gen__load(g);
	if (err) {
		fprintf(stderr, "xdnat-bench: loading generator: %s\n", strerror(-err));
		bench_gen__destroy(g);
		return NULL;
	}
	for (uint32_t i = 0; i < O.flows; i++)
		if (map_put(g->maps.flows, &i, &fl[i])) {
			bench_gen__destroy(g);
			return NULL;
		}
	return g;
}

/* A generator on g->ifname; a second instance (own counters) for the second
 * CPU of the scaling phase. */
static int gen_up(struct bench *B, struct gen *g, const uint8_t dmac[6], uint32_t tag_base,
		  const struct bench_flow *fl)
{
	uint8_t mac[6];

	if (ns_enter(B->ns_gen) || if_info(g->ifname, &g->ifindex, mac))
		return -1;
	g->skel = gen_load(dmac, mac, tag_base, fl);
	if (!g->skel)
		return -1;
	if (B->cpu2 >= 0 && !(g->skel2 = gen_load(dmac, mac, tag_base, fl)))
		return -1;
	return 0;
}

static int sink_read(struct bench *B, struct sink *k, uint64_t out[BENCH_SINK_CTR_MAX])
{
	uint64_t *v = calloc((size_t)B->ncpus, sizeof(*v));

	if (!v) {
		fprintf(stderr, "xdnat-bench: out of memory\n");
		return -1;
	}
	for (uint32_t c = 0; c < BENCH_SINK_CTR_MAX; c++) {
		if (bpf_map_lookup_elem(bpf_map__fd(k->skel->maps.counters), &c, v)) {
			fprintf(stderr, "xdnat-bench: reading sink counters: %s\n", strerror(errno));
			free(v);
			return -1;
		}
		out[c] = 0;
		for (int i = 0; i < B->ncpus; i++)
			out[c] += v[i];
	}
	free(v);
	return 0;
}

struct slice {
	double mpps;
	uint64_t sent, ok, bad;
};

struct live_res {
	struct slice *sl[SC_MAX]; /* [slices] */
	uint64_t bad[SC_MAX][BENCH_SINK_CTR_MAX];
	uint64_t sent[SC_MAX], ok[SC_MAX];
	double mpps[SC_MAX];
	double r_ba, r_bc, r_flat, r_bm, r_ma;
	bool done;
};

/* Scaling phase: per scenario of scale_sc[], 1 CPU and 2 CPUs. */
struct scale_res {
	bool done;
	double mpps1[N_SCALE], mpps2[N_SCALE], scale[N_SCALE];
	double spread_lo[N_SCALE], spread_hi[N_SCALE]; /* of the per-round scale */
	uint64_t bad[N_SCALE];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int live_slice(struct bench *B, struct gen *g, uint32_t pkts, struct slice *out)
{
	static uint8_t zero[1600];
	uint64_t c0[BENCH_SINK_CTR_MAX], c1[BENCH_SINK_CTR_MAX];
	struct xdp_md ctx = { .data_end = O.size, .ingress_ifindex = (uint32_t)g->ifindex };
	uint64_t sent0 = g->skel->bss->sent;
	double t0, t1;
	int err;

	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = zero,
		.data_size_in = O.size,
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = pkts,
		.flags = BPF_F_TEST_XDP_LIVE_FRAMES,
		.batch_size = O.batch,
	);
	if (sink_read(B, g->sink, c0))
		return -1;
	t0 = now_s();
	err = bpf_prog_test_run_opts(bpf_program__fd(g->skel->progs.bench_gen), &o);
	t1 = now_s();
	if (err) {
		fprintf(stderr, "xdnat-bench: live BPF_PROG_TEST_RUN: %s\n", strerror(-err));
		return -1;
	}
	usleep(5000); /* let softirq work deferred to ksoftirqd finish */
	if (sink_read(B, g->sink, c1))
		return -1;
	out->sent = g->skel->bss->sent - sent0;
	out->ok = c1[BENCH_SINK_OK] - c0[BENCH_SINK_OK];
	out->bad = 0;
	for (int c = 1; c < BENCH_SINK_CTR_MAX; c++)
		out->bad += c1[c] - c0[c];
	out->mpps = (double)out->ok / (t1 - t0) / 1e6;
	return 0;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, uint32_t n)
{
	qsort(v, n, sizeof(*v), cmp_dbl);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int live_phase(struct bench *B, struct live_res *res)
{
	double *tmp = calloc(O.slices, sizeof(double));
	struct slice warm;
	int rc = -1;

	if (!tmp) {
		fprintf(stderr, "xdnat-bench: out of memory\n");
		return -1;
	}
	for (int s = 0; s < SC_MAX; s++) {
		res->sl[s] = calloc(O.slices, sizeof(struct slice));
		if (!res->sl[s]) {
			fprintf(stderr, "xdnat-bench: out of memory\n");
			goto out;
		}
	}
	if (ns_enter(B->ns_gen))
		goto out;
	/* warm-up: conntrack entries, caches, page pools */
	for (int s = 0; s < SC_MAX; s++)
		if (live_slice(B, &B->gen[s], O.slice_pkts / 4 + O.flows, &warm))
			goto out;
	for (uint32_t i = 0; i < O.slices; i++)
		for (int k = 0; k < SC_MAX; k++) {
			int s = (int)((k + i) % SC_MAX);

			if (live_slice(B, &B->gen[s], O.slice_pkts, &res->sl[s][i]))
				goto out;
		}
	for (int s = 0; s < SC_MAX; s++) {
		for (uint32_t i = 0; i < O.slices; i++) {
			res->sent[s] += res->sl[s][i].sent;
			res->ok[s] += res->sl[s][i].ok;
			tmp[i] = res->sl[s][i].mpps;
		}
		res->mpps[s] = median(tmp, O.slices);
		if (sink_read(B, B->gen[s].sink, res->bad[s]))
			goto out;
	}
	for (uint32_t i = 0; i < O.slices; i++)
		tmp[i] = res->sl[SC_BF][i].mpps / res->sl[SC_A][i].mpps;
	res->r_ba = median(tmp, O.slices);
	for (uint32_t i = 0; i < O.slices; i++)
		tmp[i] = res->sl[SC_BF][i].mpps / res->sl[SC_C][i].mpps;
	res->r_bc = median(tmp, O.slices);
	for (uint32_t i = 0; i < O.slices; i++)
		tmp[i] = res->sl[SC_BF][i].mpps / res->sl[SC_B1][i].mpps;
	res->r_flat = median(tmp, O.slices);
	for (uint32_t i = 0; i < O.slices; i++)
		tmp[i] = res->sl[SC_BF][i].mpps / res->sl[SC_M][i].mpps;
	res->r_bm = median(tmp, O.slices);
	for (uint32_t i = 0; i < O.slices; i++)
		tmp[i] = res->sl[SC_M][i].mpps / res->sl[SC_A][i].mpps;
	res->r_ma = median(tmp, O.slices);
	res->done = true;
	rc = 0;
out:
	free(tmp);
	return rc;
}

/* ------------------------------------------------------------ scaling */

struct gen_thread {
	struct bench *B;
	struct bench_gen *skel;
	int ifindex;
	int cpu;
	uint32_t pkts;
	pthread_barrier_t *start;
	double t0, t1;
	int err;
};

static void *gen_thread_run(void *arg)
{
	static uint8_t zero[1600];
	struct gen_thread *t = arg;
	struct xdp_md ctx = { .data_end = O.size, .ingress_ifindex = (uint32_t)t->ifindex };
	cpu_set_t set;

	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = zero,
		.data_size_in = O.size,
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = t->pkts,
		.flags = BPF_F_TEST_XDP_LIVE_FRAMES,
		.batch_size = O.batch,
	);
	CPU_ZERO(&set);
	CPU_SET(t->cpu, &set);
	t->err = -1;
	/* the generator's ifindex is looked up in the caller's namespace */
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "xdnat-bench: pinning to CPU %d: %s\n", t->cpu, strerror(errno));
		pthread_barrier_wait(t->start);
		return NULL;
	}
	if (setns(t->B->ns_gen, CLONE_NEWNET)) {
		fprintf(stderr, "xdnat-bench: setns: %s\n", strerror(errno));
		pthread_barrier_wait(t->start);
		return NULL;
	}
	pthread_barrier_wait(t->start);
	t->t0 = now_s();
	t->err = bpf_prog_test_run_opts(bpf_program__fd(t->skel->progs.bench_gen), &o);
	t->t1 = now_s();
	if (t->err)
		fprintf(stderr, "xdnat-bench: live BPF_PROG_TEST_RUN on CPU %d: %s\n", t->cpu,
			strerror(-t->err));
	return NULL;
}

/* One slice on two CPUs at once, @pkts frames each: a generator instance
 * per CPU into the same veth.  Mpps = frames the sink accepted / the time
 * from the first start to the last end. */
static int scale_slice(struct bench *B, struct gen *g, uint32_t pkts, struct slice *out)
{
	uint64_t c0[BENCH_SINK_CTR_MAX], c1[BENCH_SINK_CTR_MAX];
	struct gen_thread t[2];
	pthread_barrier_t start;
	pthread_t th[2];
	double t0, t1;
	int n = 0;

	if (sink_read(B, g->sink, c0))
		return -1;
	if (pthread_barrier_init(&start, NULL, 2)) {
		fprintf(stderr, "xdnat-bench: pthread_barrier_init failed\n");
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		t[i] = (struct gen_thread){ .B = B, .skel = i ? g->skel2 : g->skel, .ifindex = g->ifindex,
					    .cpu = i ? B->cpu2 : O.cpu, .pkts = pkts, .start = &start };
		if (pthread_create(&th[i], NULL, gen_thread_run, &t[i])) {
			fprintf(stderr, "xdnat-bench: pthread_create failed\n");
			break;
		}
		n++;
	}
	if (n == 1) /* release the waiting thread: the barrier wants two */
		pthread_barrier_wait(&start);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	if (n < 2 || t[0].err || t[1].err)
		return -1;
	usleep(5000);
	if (sink_read(B, g->sink, c1))
		return -1;
	t0 = t[0].t0 < t[1].t0 ? t[0].t0 : t[1].t0;
	t1 = t[0].t1 > t[1].t1 ? t[0].t1 : t[1].t1;
	out->sent = 2ull * pkts;
	out->ok = c1[BENCH_SINK_OK] - c0[BENCH_SINK_OK];
	out->bad = 0;
	for (int c = 1; c < BENCH_SINK_CTR_MAX; c++)
		out->bad += c1[c] - c0[c];
	out->mpps = (double)out->ok / (t1 - t0) / 1e6;
	return 0;
}

/*
 * Per round and scenario: a slice of slice_pkts / 2 frames on one CPU, then
 * the same number of frames split over two CPUs; the scale factor of the round
 * is their Mpps ratio, reported as the median over rounds (and its range).
 */
static int scale_phase(struct bench *B, struct scale_res *res)
{
	uint32_t n = O.scale_rounds;
	double *one = calloc(n, sizeof(double)), *two = calloc(n, sizeof(double));
	double *r = calloc(n, sizeof(double));
	struct slice sl;
	int rc = -1;

	if (!one || !two || !r) {
		fprintf(stderr, "xdnat-bench: out of memory\n");
		goto out;
	}
	if (ns_enter(B->ns_gen))
		goto out;
	for (size_t k = 0; k < N_SCALE; k++) {
		struct gen *g = &B->gen[scale_sc[k]];

		/* warm-up of the second CPU's path (page pools, conntrack) */
		if (scale_slice(B, g, O.slice_pkts / 8 + O.flows, &sl))
			goto out;
		for (uint32_t i = 0; i < n; i++) {
			if (live_slice(B, g, O.slice_pkts / 2, &sl))
				goto out;
			one[i] = sl.mpps;
			res->bad[k] += sl.bad;
			if (scale_slice(B, g, O.slice_pkts / 4, &sl))
				goto out;
			two[i] = sl.mpps;
			res->bad[k] += sl.bad;
			r[i] = two[i] / one[i];
		}
		res->mpps1[k] = median(one, n);
		res->mpps2[k] = median(two, n);
		res->scale[k] = median(r, n); /* sorts r */
		res->spread_lo[k] = r[0];
		res->spread_hi[k] = r[n - 1];
	}
	res->done = true;
	rc = 0;
out:
	free(one);
	free(two);
	free(r);
	return rc;
}

/* ------------------------------------------------------------ report */

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(buf, len, "unknown CPU");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && c) {
			c += 2;
			c[strcspn(c, "\n")] = 0;
			snprintf(buf, len, "%s", c);
			break;
		}
	}
	fclose(f);
}

static const char *verdict_str(bool ok)
{
	return ok ? "met" : "MISSED";
}

static void target(const char *what, const char *value, bool met, int *n_met, int *n)
{
	printf("  %-46s %-28s %s\n", what, value, verdict_str(met));
	*n_met += met;
	(*n)++;
}

static void report(struct bench *B, struct cost_res *c, struct live_res *l, struct scale_res *sc,
		   double secs)
{
	char cpu[256], a[16], v[64];
	struct utsname u;
	double pass = c->ns[CC_PASS], nop = c->ns[CC_NOP], worst = 0, flat = 0, lan = 0, flood = 1e9;
	bool checks = true;
	int n_met = 0, n = 0;

	cpu_model(cpu, sizeof(cpu));
	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "?");
	printf("\nxdnat benchmark: %s, %ld CPUs, Linux %s, pinned to CPU %d\n", cpu,
	       sysconf(_SC_NPROCESSORS_ONLN), u.release, O.cpu);
	printf("full tables = %u global addresses from %s, every port allocated to %u hosts, %u SPI blocks of 2^%u; "
	       "%u flows per scenario, %u-byte frames\n",
	       O.n_gaddrs, ipstr(O.gaddr_base, a), O.hosts, n_spi_blocks(), O.spi_bits, O.flows, O.size);
	if (!c->done)
		goto live;
	printf("\n%-40s %10s %8s %10s %8s %9s\n", "per-packet program cost (ns)", "1 host", "x PASS",
	       "full", "x PASS", "full/1");
	printf("%-40s %10.1f %8s %10s %8s %9s\n", cc_name[CC_PASS], pass, "1.00", "", "", "");
	printf("%-40s %10.1f %8.2f %10s %8s %9s\n", cc_name[CC_REDIRECT], c->ns[CC_REDIRECT],
	       c->ns[CC_REDIRECT] / pass, "", "", "");
	printf("%-40s %10.1f %8.2f %10s %8s %9s\n", cc_name[CC_FIB], c->ns[CC_FIB],
	       c->ns[CC_FIB] / pass, "", "", "");
	printf("%-40s %10.1f %8s %10s %8s %9s\n", cc_name[CC_NOP], nop, "", "", "", "");
	for (int p = 0; p < 5; p++) {
		double one = pass + c->ns[CC_ROUTER_FIRST + p] - nop;
		double full = pass + c->ns[CC_ROUTER_FIRST + p + CC_SCALE] - nop;

		printf("%-40s %10.1f %8.2f %10.1f %8.2f %9.2f\n", cc_name[CC_ROUTER_FIRST + p], one,
		       one / pass, full, full / pass, full / one);
		if (p < 4) {
			worst = full / pass > worst ? full / pass : worst;
			flat = full / one > flat ? full / one : flat;
		}
	}
	lan = (pass + c->ns[CC_LAN + CC_SCALE] - nop) / pass;
	for (int f = 0; f < 2; f++) {
		double ns = pass + c->ns[CC_FLOOD_TCP + f] - nop;

		printf("%-40s %10.1f %8.2f %10s %8s %9s   = %.1f Mpps dropped per core\n",
		       flood_name[f], ns, ns / pass, "", "", "", 1e3 / ns);
		flood = 1e3 / ns < flood ? 1e3 / ns : flood;
	}
	{
		double min = pass + c->ns[CC_MIN] - nop;
		double xd = pass + c->ns[CC_UDP + CC_SCALE] - nop;

		printf("%-40s %10s %8s %10.1f %8.2f %9s\n", min_name, "", "", min, min / pass, "");
		printf("  xdnat WAN->LAN UDP, full tables: %.2fx the minimal router's cost "
		       "(classification, checks, counters, next-hop cache)\n", xd / min);
	}
live:
	if (!l->done)
		goto scale;
	printf("\n%-40s %10s %8s %10s %8s %9s\n", "live throughput (Mpps, median of slices)", "Mpps",
	       "x (a)", "delivered", "sent", "checks");
	for (int s = 0; s < SC_MAX; s++) {
		uint64_t bad = 0;
		bool ok;

		for (int k = 1; k < BENCH_SINK_CTR_MAX; k++)
			bad += l->bad[s][k];
		ok = bad == 0 && l->ok[s] > 0;
		checks = checks && ok;
		printf("%-40s %10.3f %8.2f %9.1f%% %8.1fM %9s\n", scen_name[s], l->mpps[s],
		       l->mpps[s] / l->mpps[SC_A], l->sent[s] ? 100.0 * (double)l->ok[s] / (double)l->sent[s] : 0.0,
		       (double)l->sent[s] / 1e6, ok ? "ok" : "FAILED");
		if (!ok) {
			static const char *const names[] = BENCH_SINK_CTR_NAMES;

			for (int k = 1; k < BENCH_SINK_CTR_MAX; k++)
				if (l->bad[s][k])
					printf("    sink %s: %llu\n", names[k], (unsigned long long)l->bad[s][k]);
		}
	}
	printf("\nratios (b = xdnat full tables UDP; per round, median)  b/a %.2f   b/m %.2f   b/c %.2f   "
	       "b(full)/b(1 host) %.2f   m/a %.2f\n",
	       l->r_ba, l->r_bm, l->r_bc, l->r_flat, l->r_ma);

scale:
	if (sc->done) {
		printf("\n%-40s %10s %10s %8s %15s\n", "scaling 1 -> 2 CPUs (Mpps, median)", "1 CPU",
		       "2 CPUs", "x", "range of x");
		for (size_t k = 0; k < N_SCALE; k++) {
			printf("%-40s %10.3f %10.3f %8.2f %7.2f-%-7.2f%s\n", scen_name[scale_sc[k]],
			       sc->mpps1[k], sc->mpps2[k], sc->scale[k], sc->spread_lo[k], sc->spread_hi[k],
			       sc->bad[k] ? "  sink checks FAILED" : "");
			checks = checks && !sc->bad[k];
		}
		printf("scaling: xdnat %.2fx, kernel NAT %.2fx, minimal router %.2fx, direct %.2fx from 1 to 2 CPUs "
		       "(generator on CPUs %d and %d, %u rounds)\n",
		       sc->scale[1], sc->scale[3], sc->scale[2], sc->scale[0], O.cpu, B->cpu2, O.scale_rounds);
	} else {
		printf("\nscaling: not measured (%s)\n",
		       B->cpu2 < 0 ? "one CPU online" : "--scale-rounds 0");
	}

	printf("\ntargets (issue 15):\n");
	if (c->done) {
		snprintf(v, sizeof(v), "worst %.2fx PASS", worst);
		target("WAN->LAN, full tables <= 3.5x XDP_PASS", v, worst <= 3.5, &n_met, &n);
		snprintf(v, sizeof(v), "worst %.2f", flat);
		target("WAN->LAN full / 1 host <= 1.15", v, flat <= 1.15, &n_met, &n);
		snprintf(v, sizeof(v), "%.2fx PASS (full tables)", lan);
		target("LAN->WAN <= 4.5x XDP_PASS", v, lan <= 4.5, &n_met, &n);
		snprintf(v, sizeof(v), "%.1f Mpps (slower flood)", flood);
		target("junk floods dropped >= 20 Mpps per core", v, flood >= 20, &n_met, &n);
	}
	if (l->done) {
		snprintf(v, sizeof(v), "%.2fx (b/m)", l->r_bm);
		target("live xdnat >= 1.15x the minimal router", v, l->r_bm >= 1.15, &n_met, &n);
		snprintf(v, sizeof(v), "%.2fx (b/a)", l->r_ba);
		target("live xdnat >= 0.60x (a)", v, l->r_ba >= 0.60, &n_met, &n);
	}
	printf("targets: %d of %d met\n", n_met, n);
	printf("sink checks: %s; cost verdicts: all as expected; %u cost rounds x %u repeats, %u live slices x %u packets, %.0f s\n",
	       checks ? "all passed" : "FAILED", O.rounds, O.repeat, O.slices, O.slice_pkts, secs);
	if (!checks)
		B->failed = true;
}

/* ------------------------------------------------------------ main */

static int libbpf_quiet(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	if (lvl == LIBBPF_DEBUG && !O.verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int setup(struct bench *B, struct bench_flow *udp, struct bench_flow *esp,
		 struct bench_flow *one, struct bench_flow *sink_bf)
{
	int ifindex;
	uint8_t mac[6];

	if (router_up(&B->r[0]) || router_up(&B->r[1]) || min_up(&B->m, B->ns_sink, udp, O.flows))
		return -1;

	/* (c): XDP_PASS on the kernel router's WAN, so that it takes the
	 * generator's redirected frames (veth rule), then plain forwarding. */
	if (ns_enter(B->ns_rc) || if_info(IF_WAN, &ifindex, mac) ||
	    xdp_attach(&B->rc_pass, B->ns_rc, ifindex, bpf_program__fd(B->r[1].cost->progs.bench_pass), "rc wan"))
		return -1;

	if (sink_up(B, &B->sink[SK_A], BENCH_SINK_DIRECT, O.flows, udp) ||
	    sink_up(B, &B->sink[SK_B1], BENCH_SINK_TUNNEL, O.flows, one) ||
	    sink_up(B, &B->sink[SK_BF], BENCH_SINK_TUNNEL, 2 * O.flows, sink_bf) ||
	    sink_up(B, &B->sink[SK_M], BENCH_SINK_TUNNEL, O.flows, udp) ||
	    sink_up(B, &B->sink[SK_C], BENCH_SINK_NAT, O.flows, udp))
		return -1;

	B->gen[SC_A].sink = &B->sink[SK_A];
	B->gen[SC_B1].sink = &B->sink[SK_B1];
	B->gen[SC_BF].sink = &B->sink[SK_BF];
	B->gen[SC_BE].sink = &B->sink[SK_BF];
	B->gen[SC_M].sink = &B->sink[SK_M];
	B->gen[SC_C].sink = &B->sink[SK_C];
	if (ns_enter(B->ns_sink) || if_info("s-a", &ifindex, mac) ||
	    gen_up(B, &B->gen[SC_A], mac, 0, udp) ||
	    gen_up(B, &B->gen[SC_B1], B->r[0].wan_mac, 0, one) ||
	    gen_up(B, &B->gen[SC_BF], B->r[1].wan_mac, 0, udp) ||
	    gen_up(B, &B->gen[SC_BE], B->r[1].wan_mac, O.flows, esp) ||
	    gen_up(B, &B->gen[SC_M], B->m.wan_mac, 0, udp))
		return -1;
	if (ns_enter(B->ns_rc) || if_info(IF_WAN, &ifindex, mac) ||
	    gen_up(B, &B->gen[SC_C], mac, 0, udp))
		return -1;
	return 0;
}

static void teardown(struct bench *B)
{
	for (int s = 0; s < SC_MAX; s++) {
		bench_gen__destroy(B->gen[s].skel);
		bench_gen__destroy(B->gen[s].skel2);
	}
	for (int k = 0; k < SK_MAX; k++) {
		xdp_detach(&B->sink[k].att);
		bench_sink__destroy(B->sink[k].skel);
	}
	xdp_detach(&B->rc_pass);
	for (int i = 0; i < 2; i++)
		router_down(&B->r[i]);
	min_down(&B->m);
	if (B->ns_gen >= 0)
		close(B->ns_gen);
	if (B->ns_sink >= 0)
		close(B->ns_sink);
	if (B->ns_rc >= 0)
		close(B->ns_rc);
	if (ns_orig >= 0) {
		if (setns(ns_orig, CLONE_NEWNET))
			fprintf(stderr, "xdnat-bench: back to the original namespace: %s\n", strerror(errno));
		close(ns_orig);
	}
}

int main(int argc, char **argv)
{
	static struct bench B = {
		.ns_gen = -1, .ns_sink = -1, .ns_rc = -1,
		.r = { { .name = NS_R1, .one_host = true, .ns = -1 }, { .name = NS_RF, .ns = -1 } },
		.m = { .ns = -1 },
		.sink = { { .ifname = "s-a" }, { .ifname = "s-b1" }, { .ifname = "s-bf" }, { .ifname = "s-m" },
			  { .ifname = "s-c" } },
		.gen = { { .ifname = "g-a" }, { .ifname = "g-b1" }, { .ifname = "g-bf" }, { .ifname = "g-bf" },
			 { .ifname = "g-m" }, { .ifname = "g-c" } },
		.cpu2 = -1,
	};
	struct bench_flow *udp = NULL, *esp = NULL, *one = NULL, *sink_bf = NULL;
	struct cost_res cres = { 0 };
	struct live_res lres = { 0 };
	struct scale_res sres = { 0 };
	cpu_set_t set;
	double t0 = now_s();
	int rc = 1;

	parse_opts(argc, argv);
	rng_state = O.seed ? O.seed : 1;
	if (O.emit_dir)
		return emit_setup(O.emit_dir) ? 1 : 0;

	libbpf_set_print(libbpf_quiet);
	B.ncpus = libbpf_num_possible_cpus();
	if (B.ncpus <= 0) {
		fprintf(stderr, "xdnat-bench: cannot count CPUs: %s\n", strerror(-B.ncpus));
		return 1;
	}
	if (O.cpu < 0)
		O.cpu = (int)sysconf(_SC_NPROCESSORS_ONLN) - 1;
	/* the scaling phase's second CPU: the next online one */
	if (sysconf(_SC_NPROCESSORS_ONLN) > 1 && O.scale_rounds > 0)
		B.cpu2 = (O.cpu + 1) % (int)sysconf(_SC_NPROCESSORS_ONLN);
	CPU_ZERO(&set);
	CPU_SET(O.cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "xdnat-bench: pinning to CPU %d: %s\n", O.cpu, strerror(errno));
		return 1;
	}

	udp = calloc(O.flows, sizeof(*udp));
	esp = calloc(O.flows, sizeof(*esp));
	one = calloc(O.flows, sizeof(*one));
	sink_bf = calloc(2 * (size_t)O.flows, sizeof(*sink_bf));
	if (!udp || !esp || !one || !sink_bf) {
		fprintf(stderr, "xdnat-bench: out of memory\n");
		goto out;
	}
	make_flows(udp, O.flows, IPPROTO_UDP, false);
	make_flows(esp, O.flows, IPPROTO_ESP, false);
	make_flows(one, O.flows, IPPROTO_UDP, true);
	memcpy(sink_bf, udp, O.flows * sizeof(*udp));
	memcpy(sink_bf + O.flows, esp, O.flows * sizeof(*esp));

	ns_orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns_orig < 0) {
		fprintf(stderr, "xdnat-bench: /proc/self/ns/net: %s\n", strerror(errno));
		goto out;
	}
	if ((B.ns_gen = ns_open(NS_GEN)) < 0 || (B.ns_sink = ns_open(NS_SINK)) < 0 ||
	    (B.ns_rc = ns_open(NS_RC)) < 0 || (B.r[0].ns = ns_open(NS_R1)) < 0 ||
	    (B.r[1].ns = ns_open(NS_RF)) < 0 || (B.m.ns = ns_open(NS_RM)) < 0)
		goto out;

	fprintf(stderr, "xdnat-bench: loading and filling tables...\n");
	if (setup(&B, udp, esp, one, sink_bf))
		goto out;
	if (!O.only || !strcmp(O.only, "cost")) {
		fprintf(stderr, "xdnat-bench: per-packet cost, %u rounds...\n", O.rounds);
		if (cost_phase(&B, &cres))
			goto out;
	}
	if (!O.only || !strcmp(O.only, "live")) {
		fprintf(stderr, "xdnat-bench: live throughput, %u slices per scenario...\n", O.slices);
		if (live_phase(&B, &lres))
			goto out;
	}
	if (B.cpu2 >= 0 && (!O.only || !strcmp(O.only, "scale"))) {
		fprintf(stderr, "xdnat-bench: scaling 1 -> 2 CPUs, %u rounds...\n", O.scale_rounds);
		if (scale_phase(&B, &sres))
			goto out;
	}
	report(&B, &cres, &lres, &sres, now_s() - t0);
	rc = B.failed ? 1 : 0;
out:
	teardown(&B);
	for (int i = 0; i < CC_MAX; i++)
		free(cres.dur[i]);
	for (int s = 0; s < SC_MAX; s++)
		free(lres.sl[s]);
	free(udp);
	free(esp);
	free(one);
	free(sink_bf);
	return rc;
}
