// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatctl: inspect a running xdnat router through its pinned maps and state
 * database, and change it through xdnatd (iproute2-style OBJECT COMMAND
 * syntax, -j for JSON).  The command groups live in cli_*.c (cli.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "store.h"
#include "writer.h"
#include "opts.h"
#include <ini.h>

/* Ids of the store options (XO_CALL). */
enum { OPT_CONFIG = 0x7100, OPT_BACKEND, OPT_ENDPOINTS, OPT_PREFIX, OPT_CACERT, OPT_CERT, OPT_KEY,
       OPT_TIMEOUT, OPT_ROUTER_ID, OPT_MAX_TXN_OPS };

struct cli cli = {
	.instance = XDNAT_DEFAULT_INSTANCE, .pin_base = XDNAT_PIN_BASE, .state_dir = XDNAT_STATE_DIR,
};

/* Global options (opts.h): getopt, --help and xdnatctl(8) come from this
 * table.  -p and -s are retired: iproute2 and bpftool use them for
 * --pretty and --statistics. */
static const struct xo_opt ctl_opts[] = {
	XO_HEAD("Options:"),
	{ "json", 'j', NULL, .help = "JSON output" },
	{ "instance", 'i', "NAME", .help = "router instance (default: " XDNAT_DEFAULT_INSTANCE ")" },
	{ "pin-base", 0, "DIR", 'p', .help = "bpffs directory of the pins (default: "
					      XDNAT_PIN_BASE ")" },
	{ "state-dir", 0, "DIR", 's', .help = "the state database to read, and to change when no "
					       "xdnatd runs (default: " XDNAT_STATE_DIR "); a running "
					       "xdnatd changes its own --state-dir's" },
	{ "config", 0, "FILE", OPT_CONFIG,
	  .help = "read the [store] section of xdnatd's configuration file FILE (xdnatd.conf(5)), "
		  "so that xdnatctl finds the same store; the options below override it" },
	{ "store-backend", 0, "sqlite|etcd", OPT_BACKEND,
	  .help = "where the state is: the SQLite file in --state-dir (default) or etcd" },
	{ "store-endpoints", 0, "URL[,URL...]", OPT_ENDPOINTS,
	  .help = "the etcd members' client URLs, http(s)://HOST:PORT, tried in turn" },
	{ "store-prefix", 0, "/PATH", OPT_PREFIX,
	  .help = "etcd key prefix (default: " XD_STORE_DEFAULT_PREFIX ")" },
	{ "store-cacert", 0, "FILE", OPT_CACERT, .help = "CA certificates of the members (PEM)" },
	{ "store-cert", 0, "FILE", OPT_CERT, .help = "client certificate for etcd (PEM)" },
	{ "store-key", 0, "FILE", OPT_KEY, .help = "its private key (PEM)" },
	{ "store-timeout", 0, "MS", OPT_TIMEOUT,
	  .help = "bound of every etcd request, all members tried (default: "
		  XO_STR(XD_STORE_DEFAULT_TIMEOUT) ")" },
	{ "store-max-txn-ops", 0, "N", OPT_MAX_TXN_OPS,
	  .help = "most operations of one etcd Txn: the members' --max-txn-ops (default: "
		  XO_STR(XD_STORE_DEFAULT_MAX_TXN_OPS) ")" },
	{ "router-id", 0, "NAME", OPT_ROUTER_ID,
	  .help = "the router whose counter totals to show (default: the host name)" },
	{ "direct", 'D', NULL, .help = "do not ask xdnatd: read the state database and the maps "
				       "directly; a change then needs the instance lock, so it is "
				       "refused while xdnatd runs" },
	{ "batch", 'b', "FILE", .help = "run the host/ports/spi/ike/stats/config/lookup commands in "
					"FILE ('-': stdin), one per line, '#' comments, in order "
					"(changes travel to xdnatd in batches); stops at the first "
					"failing line and names it" },
	XO_OPT_VERSION,
	XO_OPT_HELP,
	{ 0 }
};

static const struct xo_prog ctl_prog = {
	.name = "xdnatctl", .opts = ctl_opts, .col = 24, .in_order = true,
	.retired = "p=pin-base s=state-dir",
	.synopsis =
"Usage: xdnatctl [-j] [-i INSTANCE] [--pin-base DIR] OBJECT COMMAND [ARGS]\n"
"  or:  xdnatctl [-i INSTANCE] [--pin-base DIR] -b FILE\n"
"\n"
"Inspect a running xdnat router (its pinned maps and state database) and\n"
"change it: every change is a request to xdnatd, which applies it in order\n"
"with its own (docs/ARCHITECTURE.md, \"Who writes what\").  With no xdnatd\n"
"running, xdnatctl applies it itself under the instance lock.\n"
"\n"
"  host add ID lan ADDR [global ADDR] [ports A-B]... [spi A-B]...\n"
"                    register host ID (1..max-hosts-1) whose tunnel endpoint\n"
"                    is ADDR, sharing global address ADDR (default: the first),\n"
"                    optionally with port and SPI blocks\n"
"  host del ID       remove the host and free all its blocks\n"
"  host show [ID]    hosts, their blocks and per-host counters\n"
"  ports add ID A-B  give host ID the ports A..B of its global address\n"
"  ports del ID A-B  take them back (all must be the host's)\n"
"  spi add ID A-B    give host ID the SPIs A..B (decimal or 0x hex); the\n"
"                    range must consist of whole SPI blocks (see config)\n"
"  spi del ID A-B    take them back\n"
"  ike list          shared IKE ports (xdnatd --shared-ike-ports) and the\n"
"                    default host of each (docs/SHARED-IKE.md)\n"
"  ike default PORT HOST|none [global ADDR]\n"
"                    IKE_SA_INIT from remote initiators to shared port\n"
"                    PORT of ADDR (default: the first) goes to HOST;\n"
"                    none: dropped (counter ike_no_default)\n"
"  stats             packet and byte counters per verdict reason; with a\n"
"                    state database (--state-dir) that keeps them, the\n"
"                    totals since it first saw the router, across reboots\n"
"  config            the running configuration\n"
"  lookup port N [global ADDR]   which host owns port N\n"
"  lookup spi N                  which host owns SPI N\n"
"  reload-programs   make xdnatd re-execute its binary: the new programs\n"
"                    replace the running ones atomically (pinned BPF links),\n"
"                    hosts and blocks stay; waits until both hooks run them\n"
"\n"
"RSIP control plane (through the running xdnatd's control socket\n"
"/run/xdnat/INSTANCE.ctl, root only; without a running xdnatd, enroll,\n"
"unenroll and rsip list use the state database directly):\n"
"  enroll NAME [lan ADDR] [secret-file PATH]\n"
"                    allow host NAME to obtain blocks over RSIP; prints its\n"
"                    new secret (64 hex digits), or writes it to PATH (0600);\n"
"                    lan ADDR: accept it only from that LAN address.\n"
"                    Enrolling again replaces the secret.\n"
"  unenroll NAME     forget host NAME (it cannot register any more)\n"
"  rsip list         enrolled hosts, registrations and bindings with the\n"
"                    lease (or quarantine) time remaining\n"
"  rsip evict NAME   take all of host NAME's blocks at once: out of the maps\n"
"                    (needs the running xdnatd), into its quarantine;\n"
"                    its registration ends (unenroll it to keep it out);\n"
"                    the certificates that bind them are revoked first\n"
"  cluster [show]    with an etcd state store (--state-dir etcd://...): which\n"
"                    router holds each elected role (expiry: the one that\n"
"                    expires leases and quarantine; signer: the one whose\n"
"                    Local CA issues) and its lease's time left\n"
"  daemon stats      the running xdnatd's counters: per verdict reason, RSIP\n"
"                    hosts and bindings, control requests (needs xdnatd)\n"
"  daemon ping       does xdnatd answer on its control socket?\n"
"  mobile show       roaming hosts registered away from home (xdnatd --mobile,\n"
"                    docs/ROAMING.md): home and care-of address, the tunnel\n"
"                    endpoint (the NAT's address and port), encapsulation,\n"
"                    whether a NAT was detected, seconds left; without xdnatd\n"
"                    (or with -D) the host ids and tunnel endpoints in the maps\n"
"\n"
"Local CA (docs/LCA.md; the state database; revoke goes through xdnatd\n"
"when it runs):\n"
"  cert list [HOST]  issued host certificates: serial, host, identity, ports,\n"
"                    SPIs, validity and status (valid, expired, revoked)\n"
"  cert show SERIAL  one certificate, with its PEM\n"
"  cert revoke SERIAL [REASON]\n"
"                    revoke it (REASON: unspecified, keyCompromise,\n"
"                    affiliationChanged, superseded, cessationOfOperation;\n"
"                    default unspecified); a running xdnatd publishes the new\n"
"                    CRL and notifies the host's peers within a second;\n"
"                    unless REASON is superseded, cessationOfOperation or\n"
"                    affiliationChanged, it also revokes the host's other\n"
"                    certificates and refuses the host new ones until it is\n"
"                    enrolled again\n",
	.epilog = "\n"
"Blocks of different hosts never overlap: a command that would overlap, or\n"
"names a block that is not the host's, changes nothing and exits 1.\n"
"A change refused by xdnatd prints its reason.  With no xdnatd answering,\n"
"xdnatctl waits up to 5 s while another process (xdnatd starting) holds the\n"
"instance lock /run/xdnat/INSTANCE.lock, then refuses.\n"
"Exit status: 0 success, 1 error (nothing changed), 2 usage error (bad\n"
"syntax or malformed value).\n",
};

static void usage(FILE *f)
{
	xo_help(&ctl_prog, f);
}

int cli_usage_err(const char *fmt, const char *arg)
{
	fprintf(stderr, "xdnatctl: ");
	fprintf(stderr, fmt, arg ? arg : "");
	fprintf(stderr, "\nTry 'xdnatctl --help'.\n");
	return 2;
}

int cli_parse_id(const char *s, uint32_t *id)
{
	if (xd_parse_u32(s, 1, XDNAT_LIMIT_MAX_HOSTS, id)) {
		xd_err("'%s' is not a host id", s ? s : "");
		return -EINVAL;
	}
	return 0;
}

static bool known_object(const char *obj)
{
	static const char *const objs[] = { "host", "ports", "spi", "stats", "config", "lookup", "ike",
					    "help", "enroll", "unenroll", "rsip", "reload-programs",
					    "cert", "daemon", "cluster", "mobile" };

	for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++)
		if (!strcmp(obj, objs[i]))
			return true;
	return false;
}

/* A view of the maps (host show, stats, ...): read here. */
static int view(int argc, char **argv)
{
	struct xd_maps m;
	int rc;

	if (!strcmp(argv[0], "host") && !cli_is_view(argc, argv))
		return cli_usage_err("host: expected add, del or show%s", NULL);
	if (!strcmp(argv[0], "ports") || !strcmp(argv[0], "spi"))
		return cli_usage_err("%s: expected 'add|del ID A-B'", argv[0]);
	if (!strcmp(argv[0], "ike") && argc > 1 && strcmp(argv[1], "list"))
		return cli_usage_err("ike: expected 'list' or 'default PORT HOST|none [global ADDR]'%s",
				     NULL);
	if (xd_maps_open(cli.pin_base, cli.instance, &m))
		return 1;
	rc = cli_view(&m, argc, argv);
	xd_maps_close(&m);
	return rc;
}

static int dispatch(int argc, char **argv)
{
	const char *obj = argv[0];

	if (!known_object(obj))
		return cli_usage_err("unknown object '%s'", obj);
	if (!strcmp(obj, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(obj, "cert"))
		return cli_cert(argc, argv);
	if (!strcmp(obj, "daemon"))
		return cli_daemon(argc, argv);
	if (!strcmp(obj, "mobile"))
		return cli_mobile(argc, argv);
	if (!strcmp(obj, "rsip"))
		return cli_rsip(argc, argv);
	if (!strcmp(obj, "cluster"))
		return cli_cluster(argc, argv);
	if (!strcmp(obj, "enroll") || !strcmp(obj, "unenroll"))
		return cli_enroll(argc, argv);
	if (!strcmp(obj, "reload-programs"))
		return argc == 1 ? cli_reload() : cli_usage_err("reload-programs: unexpected '%s'", argv[1]);
	if (xd_change_kind(argc, argv) == XD_CHANGE_MAPS)
		return cli_change(argc, argv);
	return view(argc, argv);
}

/* One [store] setting, from --config FILE or the command line: 0 or a
 * message and -EINVAL. */
static int store_set(struct xd_store_cfg *c, int id, const char *v)
{
	switch (id) {
	case OPT_BACKEND:
		if (xd_store_parse_backend(v, &c->backend)) {
			xd_err("store backend '%s' is not one of sqlite, etcd", v);
			return -EINVAL;
		}
		return 0;
	case OPT_ENDPOINTS: c->endpoints = v; return 0;
	case OPT_PREFIX: c->prefix = v; return 0;
	case OPT_CACERT: c->cacert = v; return 0;
	case OPT_CERT: c->cert = v; return 0;
	case OPT_KEY: c->key = v; return 0;
	case OPT_ROUTER_ID: c->router_id = v; return 0;
	case OPT_MAX_TXN_OPS:
		if (xd_parse_u32(v, XD_STORE_MAX_TXN_OPS_MIN, XD_STORE_MAX_TXN_OPS_MAX, &c->max_txn_ops)) {
			xd_err("store max-txn-ops '%s' is not a number from %d to %d", v,
			       XD_STORE_MAX_TXN_OPS_MIN, XD_STORE_MAX_TXN_OPS_MAX);
			return -EINVAL;
		}
		return 0;
	case OPT_TIMEOUT:
		if (xd_parse_u32(v, 10, 600000, &c->timeout_ms)) {
			xd_err("store timeout '%s' is not a number of ms from 10 to 600000", v);
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

struct ini_ctx { struct xd_store_cfg *c; char *owned[16]; int n, err; };

static int ini_store(void *arg, const char *section, const char *key, const char *value)
{
	static const struct { const char *k; int id; } keys[] = {
		{ "backend", OPT_BACKEND }, { "endpoints", OPT_ENDPOINTS }, { "prefix", OPT_PREFIX },
		{ "cacert", OPT_CACERT }, { "cert", OPT_CERT }, { "key", OPT_KEY },
		{ "timeout", OPT_TIMEOUT }, { "router-id", OPT_ROUTER_ID },
		{ "max-txn-ops", OPT_MAX_TXN_OPS },
	};
	struct ini_ctx *x = arg;

	if (strcmp(section, "store"))
		return 1;                        /* xdnatd's other sections */
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *v;

		if (strcmp(key, keys[i].k))
			continue;
		if (x->n == 16 || !(v = strdup(value))) {
			x->err = -ENOMEM;
			return 0;
		}
		x->owned[x->n++] = v;
		if (store_set(x->c, keys[i].id, v))
			x->err = -EINVAL;
		return !x->err;
	}
	xd_err("%s: [store] has no key '%s'", cli.config, key);
	x->err = -EINVAL;
	return 0;
}

/* [store] of --config, then the command line's store options over it;
 * the configuration is the process's (xd_store_configure).  Exit status. */
static int store_setup(const struct xd_store_cfg *cmd, const unsigned *set)
{
	static struct ini_ctx x;
	static struct xd_store_cfg c;
	char err[300];
	int rc;

	x.c = &c;
	if (cli.config && (rc = ini_parse(cli.config, ini_store, &x))) {
		for (int i = 0; i < x.n; i++)
			free(x.owned[i]);
		if (rc < 0)
			xd_err("cannot read %s", cli.config);
		else if (!x.err)
			xd_err("%s: line %d: not INI syntax", cli.config, rc);
		return 2;
	}
	if (set[OPT_BACKEND - OPT_CONFIG]) c.backend = cmd->backend;
	if (set[OPT_ENDPOINTS - OPT_CONFIG]) c.endpoints = cmd->endpoints;
	if (set[OPT_PREFIX - OPT_CONFIG]) c.prefix = cmd->prefix;
	if (set[OPT_CACERT - OPT_CONFIG]) c.cacert = cmd->cacert;
	if (set[OPT_CERT - OPT_CONFIG]) c.cert = cmd->cert;
	if (set[OPT_KEY - OPT_CONFIG]) c.key = cmd->key;
	if (set[OPT_TIMEOUT - OPT_CONFIG]) c.timeout_ms = cmd->timeout_ms;
	if (set[OPT_ROUTER_ID - OPT_CONFIG]) c.router_id = cmd->router_id;
	if (set[OPT_MAX_TXN_OPS - OPT_CONFIG]) c.max_txn_ops = cmd->max_txn_ops;
	rc = xd_store_configure(&c, err, sizeof(err));     /* copies the strings */
	for (int i = 0; i < x.n; i++)
		free(x.owned[i]);
	return rc ? cli_usage_err("%s", err) : 0;
}

int main(int argc, char **argv)
{
	struct xo_state st = { .prog = &ctl_prog };
	struct xd_store_cfg store = { 0 };
	unsigned store_opt[OPT_MAX_TXN_OPS - OPT_CONFIG + 1] = { 0 };
	const char *batch = NULL;
	int c, rc;

	xd_progname = "xdnatctl";
	while ((c = xo_getopt(&st, argc, argv)) != XO_END) {
		switch (c) {
		case 'j': cli.json = true; break;
		case 'i': cli.instance = optarg; break;
		case 'p': cli.pin_base = optarg; break;
		case 'b': batch = optarg; break;
		case 's': cli.state_dir = optarg; break;
		case 'D': cli.direct = true; break;
		case OPT_CONFIG: cli.config = optarg; break;
		case OPT_BACKEND: case OPT_ENDPOINTS: case OPT_PREFIX: case OPT_CACERT: case OPT_CERT:
		case OPT_KEY: case OPT_TIMEOUT: case OPT_ROUTER_ID: case OPT_MAX_TXN_OPS:
			if (store_set(&store, c, optarg))
				return xo_try_help(&ctl_prog);
			store_opt[c - OPT_CONFIG] = 1;
			break;
		case 'h': usage(stdout); return 0;
		case XO_ID_VERSION: xo_version(&ctl_prog); return 0;
		default: return 2; /* xo_getopt said why */
		}
	}
	argc -= optind;
	argv += optind;
	if (!xd_valid_instance(cli.instance))
		return cli_usage_err("invalid instance name '%s' (use 1-32 of [A-Za-z0-9_.-])",
				     cli.instance);
	if ((rc = store_setup(&store, store_opt)))
		return rc;
	if (batch)
		return argc ? cli_usage_err("--batch: unexpected '%s' (commands come from the file)",
					    argv[0]) : cli_batch(batch);
	if (argc < 1)
		return cli_usage_err("missing OBJECT%s", NULL);
	return dispatch(argc, argv);
}
