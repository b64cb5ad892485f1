// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatd's configuration file (--config, xdnatd.conf(5)): INI read with
 * libinih, every key applied as the option it names.
 */
#include "xdnatd.h"

/*
 * Configuration file: INI (parsed by libinih).  Keys are the long option
 * names; [router] takes the datapath options, [rsip] the control plane's
 * ("enabled", and "port", "max-clients", "idle" for --rsip-port etc.),
 * [metrics] "listen".  Booleans: yes/no, true/false, on/off, 1/0.
 * The command line overrides the file.
 */
struct config_ctx {
	struct opts *o;
	const char *path;
	FILE *f;
	int line;
	int errors;
	char where[512];
};

static char *config_reader(char *str, int num, void *stream)
{
	struct config_ctx *x = stream;
	char *r = fgets(str, num, x->f);

	if (r)
		x->line++;
	return r;
}

static int xdd_parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static const char *const router_keys[] = {
	"wan", "lan", "global", "lan-addr", "mode", "unknown", "instance", "pin-base",
	"max-hosts", "spi-block-bits", "keep-maps", "no-sysctl", "no-neigh", "verbose",
	"nexthop-cache", "shared-ike-ports", "router-ports", NULL,
};
static const char *const rsip_keys[] = {
	"state-dir", "port-range", "reserve-ports", "port-block", "max-ports",
	"max-spi-blocks", "lease", "max-lease", "quarantine", "reg-lease", "counters-interval", NULL,
};

static const char *const ca_keys[] = {
	"key", "cert", "chain", "crl-url", "crl-period", "crl-listen", "notify-port", NULL,
};

/* xdnatd --help-config: the reference of xdnatd.conf(5), from the same
 * tables the parser uses. */
void xdd_usage_config(void)
{
	printf("Usage: xdnatd --config FILE [OPTIONS]\n"
	       "\n"
	       "The configuration file of xdnatd: INI sections of 'key = value' lines;\n"
	       "'#' and ';' start comments.  Every key takes the value of the xdnatd\n"
	       "option named in parentheses and is checked the same way (see xdnatd(8)\n"
	       "for values and defaults); options on the command line override the file.\n"
	       "Errors name the file, the line and the key, and every error of a file is\n"
	       "reported at once.  'xdnatd --config FILE --check-config' validates a file\n"
	       "(and that its interfaces exist) without changing anything; SIGHUP makes a\n"
	       "running xdnatd re-read it.\n"
	       "\n"
	       "Booleans (keep-maps, no-sysctl, no-neigh, verbose, enabled) take yes/no,\n"
	       "true/false, on/off or 1/0.  global takes a list separated by commas.\n"
	       "\n[router]\n");
	for (int i = 0; router_keys[i]; i++)
		printf("  %-16s (--%s)\n", router_keys[i], router_keys[i]);
	printf("\n[rsip]\n  %-16s (--rsip)\n", "enabled");
	printf("  %-16s (--rsip-port)\n  %-16s (--rsip-max-clients)\n  %-16s (--rsip-idle)\n",
	       "port", "max-clients", "idle");
	for (int i = 0; rsip_keys[i]; i++)
		printf("  %-16s (--%s)\n", rsip_keys[i], rsip_keys[i]);
	printf("\n[metrics]\n  %-16s (--metrics)\n", "listen");
	printf("\n[ca]\n");
	for (int i = 0; ca_keys[i]; i++)
		printf("  %-16s (--%s%s)\n", ca_keys[i], i < 3 ? "ca-" : "", ca_keys[i]);
	printf("\nExample:\n"
	       "  [router]\n"
	       "  wan = eth0\n"
	       "  lan = eth1\n"
	       "  global = 203.0.113.5, 203.0.113.6\n"
	       "  unknown = drop\n"
	       "  keep-maps = yes\n"
	       "\n"
	       "  [rsip]\n"
	       "  enabled = yes\n"
	       "  lease = 600\n"
	       "  quarantine = 120\n"
	       "\n"
	       "  [metrics]\n"
	       "  listen = 127.0.0.1:9477\n");
}

/* Which long option a section/key names, or NULL. */
static const struct option *config_option(const char *section, const char *key, char *buf,
					  size_t len)
{
	const char *name = NULL;

	if (!strcmp(section, "router")) {
		for (int i = 0; router_keys[i]; i++)
			if (!strcmp(key, router_keys[i]))
				name = key;
	} else if (!strcmp(section, "rsip")) {
		for (int i = 0; rsip_keys[i]; i++)
			if (!strcmp(key, rsip_keys[i]))
				name = key;
		if (!strcmp(key, "enabled"))
			name = "rsip";
		else if (!strcmp(key, "port") || !strcmp(key, "max-clients") || !strcmp(key, "idle")) {
			snprintf(buf, len, "rsip-%s", key);
			name = buf;
		}
	} else if (!strcmp(section, "metrics") && !strcmp(key, "listen")) {
		name = "metrics";
	} else if (!strcmp(section, "ca")) {
		for (int i = 0; ca_keys[i]; i++) {
			if (strcmp(key, ca_keys[i]))
				continue;
			snprintf(buf, len, "%s%s", i < 3 ? "ca-" : "", key);
			name = buf;
		}
	}
	if (!name)
		return NULL;
	for (int i = 0; xdd_long_opts[i].name; i++)
		if (!strcmp(xdd_long_opts[i].name, name))
			return &xdd_long_opts[i];
	return NULL;
}

static int config_handler(void *user, const char *section, const char *key, const char *value)
{
	struct config_ctx *x = user;
	const struct option *opt;
	const char *saved = xd_progname;
	char buf[32], *val;
	int rc = 0;

	snprintf(x->where, sizeof(x->where), "xdnatd: %s:%d", x->path, x->line);
	opt = config_option(section, key, buf, sizeof(buf));
	if (!opt) {
		if (*section)
			fprintf(stderr, "%s: unknown key '%s' in section [%s] (see xdnatd.conf(5))\n",
				x->where, key, section);
		else
			fprintf(stderr, "%s: key '%s' outside a section: put it under [router], "
				"[rsip] or [metrics]\n", x->where, key);
		x->errors++;
		return 1; /* keep going: report every error at once */
	}
	if (opt->has_arg == no_argument) {
		bool on;

		if (xdd_parse_bool(value, &on)) {
			fprintf(stderr, "%s: %s: '%s' is not yes or no\n", x->where, key, value);
			x->errors++;
			return 1;
		}
		/* Booleans only switch on; "no" keeps the default (off). */
		if (on) {
			x->o->in_config = true;
			rc = opt->val == 'v' ? (xd_verbose = 1, 0) : xdd_apply_opt(x->o, opt->val, NULL);
			x->o->in_config = false;
		}
	} else {
		val = strdup(value);
		if (!val || x->o->n_owned == sizeof(x->o->owned) / sizeof(x->o->owned[0])) {
			free(val);
			fprintf(stderr, "%s: too many keys\n", x->where);
			x->errors++;
			return 0;
		}
		x->o->owned[x->o->n_owned++] = val;
		xd_progname = x->where; /* option errors then name file and line */
		x->o->in_config = true;
		rc = xdd_apply_opt(x->o, opt->val, val);
		x->o->in_config = false;
		xd_progname = saved;
	}
	if (rc)
		x->errors++;
	return 1;
}

int xdd_load_config(struct opts *o, const char *path)
{
	struct config_ctx x = { .o = o, .path = path };
	int rc;

	x.f = fopen(path, "r");
	if (!x.f) {
		xd_err("cannot read configuration %s: %s", path, strerror(errno));
		return -errno;
	}
	rc = ini_parse_stream(config_reader, &x, config_handler, &x);
	fclose(x.f);
	if (rc > 0) {
		fprintf(stderr, "xdnatd: %s:%d: syntax error (expected [section] or key = value)\n",
			path, rc);
		return -EINVAL;
	}
	if (rc < 0) {
		xd_err("cannot parse %s", path);
		return -EINVAL;
	}
	return x.errors ? -EINVAL : 0;
}
