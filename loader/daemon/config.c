// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatd's configuration file (--config, xdnatd.conf(5)): INI read with
 * libinih.  Its sections and keys are those of the option table
 * (options.c): every key is applied as the option it names and checked the
 * same way; errors name the file, the line and the key, all of them at
 * once.  The command line overrides the file.
 */
#include <ini.h>
#include "xdnatd.h"

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

/* xdnatd --help-config: the reference of xdnatd.conf(5), from the table
 * the parser uses. */
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
	       "Booleans (yes|no) take yes/no, true/false, on/off or 1/0; 'no' keeps the\n"
	       "default.  global takes a list separated by commas.\n");
	xo_help_ini(&xdd_prog, stdout);
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
	       "  group = prometheus\n");
}

/* A boolean key: only "yes" switches the option on. */
static int config_flag(struct config_ctx *x, const struct xo_opt *opt, const char *key,
		       const char *value)
{
	bool on;
	int rc;

	if (xo_parse_bool(value, &on)) {
		fprintf(stderr, "%s: %s: '%s' is not yes or no\n", x->where, key, value);
		return -EINVAL;
	}
	if (!on)
		return 0;
	x->o->in_config = true;
	rc = xdd_set_opt(x->o, opt, NULL);
	x->o->in_config = false;
	return rc;
}

/* A key with a value: kept for the life of the options (they point to it). */
static int config_value(struct config_ctx *x, const struct xo_opt *opt, const char *value)
{
	const char *saved = xd_progname;
	char *val = strdup(value);
	int rc;

	if (!val || x->o->n_owned == sizeof(x->o->owned) / sizeof(x->o->owned[0])) {
		free(val);
		fprintf(stderr, "%s: too many keys\n", x->where);
		return -ENOMEM;
	}
	x->o->owned[x->o->n_owned++] = val;
	xd_progname = x->where; /* option errors then name file and line */
	x->o->in_config = true;
	rc = xdd_set_opt(x->o, opt, val);
	x->o->in_config = false;
	xd_progname = saved;
	return rc;
}

static int config_handler(void *user, const char *section, const char *key, const char *value)
{
	struct config_ctx *x = user;
	const struct xo_opt *opt;

	snprintf(x->where, sizeof(x->where), "xdnatd: %s:%d", x->path, x->line);
	opt = xo_ini_find(xdd_prog.opts, section, key);
	if (!opt) {
		if (*section)
			fprintf(stderr, "%s: unknown key '%s' in section [%s] (see xdnatd.conf(5))\n",
				x->where, key, section);
		else
			fprintf(stderr, "%s: key '%s' outside a section: put it under [router], "
				"[rsip], [metrics] or [ca]\n", x->where, key);
		x->errors++;
		return 1; /* keep going: report every error at once */
	}
	if (opt->arg ? config_value(x, opt, value) : config_flag(x, opt, key, value))
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
