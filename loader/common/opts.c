// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Options from one table per program (opts.h). */
#include <errno.h>
#include <string.h>
#include "opts.h"
#include "xdnat.h"

#ifndef XDNAT_VERSION
#define XDNAT_VERSION "unknown"
#endif

/* getopt_long's val of a long option: the entry's index above any short
 * option character or id. */
#define XO_VAL_BASE 0x10000
#define HELP_WIDTH 79

static int indent_of(const struct xo_prog *p)
{
	return p->indent ? p->indent : 2;
}

static int col_of(const struct xo_prog *p)
{
	return p->col ? p->col : 26;
}

static void prepare(struct xo_state *st)
{
	const struct xo_opt *t = st->prog->opts;
	size_t n = 0, s = 0;

	if (st->prog->in_order)
		st->optstring[s++] = '+';
	for (int i = 0; t[i].name || t[i].help; i++) {
		if (!t[i].name)
			continue;
		if (n == XO_MAX_OPTS) {
			xd_err("internal error: more than %d options", XO_MAX_OPTS);
			break;
		}
		st->longopts[n++] = (struct option){
			.name = t[i].name, .has_arg = t[i].arg ? required_argument : no_argument,
			.val = XO_VAL_BASE + i,
		};
		if (t[i].key) {
			st->optstring[s++] = (char)t[i].key;
			if (t[i].arg)
				st->optstring[s++] = ':';
		}
	}
	st->optstring[s] = '\0';
	st->longopts[n] = (struct option){ 0 };
	st->ready = true;
}

static const struct xo_opt *entry_of(const struct xo_opt *t, int c)
{
	if (c >= XO_VAL_BASE)
		return &t[c - XO_VAL_BASE];
	for (int i = 0; t[i].name || t[i].help; i++)
		if (t[i].name && t[i].key == c)
			return &t[i];
	return NULL;
}

/* After getopt refused -@key: say what replaced it, if it was retired. */
static void retired_hint(const struct xo_prog *p, int key)
{
	const char *r = p->retired;

	while (key && r && *r) {
		size_t n = strcspn(r, " ");

		if (n > 2 && r[0] == key && r[1] == '=') {
			fprintf(stderr, "%s: -%c is retired: use --%.*s\n", p->name, key, (int)(n - 2),
				r + 2);
			return;
		}
		r += n + (r[n] == ' ');
	}
}

int xo_getopt(struct xo_state *st, int argc, char **argv)
{
	const struct xo_opt *o;
	int c;

	if (!st->ready)
		prepare(st);
	opterr = !st->quiet;
	for (;;) {
		c = getopt_long(argc, argv, st->optstring, st->longopts, NULL);
		if (c == -1)
			return XO_END;
		o = entry_of(st->prog->opts, c);
		if (!o) { /* getopt named the problem */
			if (!st->quiet) {
				retired_hint(st->prog, c == '?' ? optopt : 0);
				xo_try_help(st->prog);
			}
			return XO_USAGE;
		}
		st->opt = o;
		if (o->type == XO_CALL)
			return o->id ? o->id : o->key;
		if (!st->base)
			continue;
		if (xo_apply(o, optarg, st->base)) {
			xo_try_help(st->prog);
			return XO_USAGE;
		}
	}
}

int xo_apply(const struct xo_opt *o, const char *arg, void *base)
{
	char *field = (char *)base + o->off;

	switch (o->type) {
	case XO_FLAG:
		*(bool *)field = true;
		return 0;
	case XO_STR:
		*(const char **)field = arg;
		return 0;
	case XO_U32:
		if (xd_parse_u32(arg, o->min, o->max, (uint32_t *)field)) {
			xd_err("--%s: '%s' is not a number from %u to %u", o->name, arg, o->min,
			       o->max);
			return -EINVAL;
		}
		return 0;
	case XO_CALL:
		break;
	}
	return -EINVAL;
}

void xo_wrap(FILE *f, const char *text, int at, int indent, int width)
{
	const char *p = text;
	int col = at;
	bool first = true;

	while (*p) {
		size_t w;

		if (*p == '\n') {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
			first = true;
			p++;
			continue;
		}
		if (*p == ' ') {
			p++;
			continue;
		}
		w = strcspn(p, " \n");
		/* "(default: X": never at a line's end without its value. */
		if (w > 1 && p[0] == '(' && p[w - 1] == ':' && p[w] == ' ' && p[w + 1] != ' ')
			w += 1 + strcspn(p + w + 1, " \n");
		if (!first && col + 1 + (int)w > width) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
			first = true;
		}
		if (!first) {
			/* Two spaces after a sentence, as the texts are written. */
			bool stop = p - text >= 2 && p[-1] == ' ' && p[-2] == ' ';

			fputs(stop ? "  " : " ", f);
			col += stop ? 2 : 1;
		}
		fwrite(p, 1, w, f);
		col += (int)w;
		p += w;
		first = false;
	}
	fputc('\n', f);
}

/* "-k, --name ARG" or "    --name ARG" at the program's indent. */
static int print_opt(const struct xo_prog *p, const struct xo_opt *o, FILE *f)
{
	int n = fprintf(f, "%*s", indent_of(p), "");

	if (o->key)
		n += fprintf(f, "-%c, ", o->key);
	else
		n += fprintf(f, "    ");
	n += fprintf(f, "--%s", o->name);
	if (o->arg)
		n += fprintf(f, " %s", o->arg);
	return n;
}

void xo_help(const struct xo_prog *p, FILE *f)
{
	const struct xo_opt *t = p->opts;
	int col = col_of(p);

	if (p->synopsis)
		fputs(p->synopsis, f);
	for (int i = 0; t[i].name || t[i].help; i++) {
		int n;

		if (!t[i].name) {
			fputc('\n', f);
			if (*t[i].help)
				xo_wrap(f, t[i].help, 0, 0, HELP_WIDTH);
			continue;
		}
		n = print_opt(p, &t[i], f);
		if (!t[i].help) {
			fputc('\n', f);
			continue;
		}
		if (n + 2 > col) {
			fputc('\n', f);
			n = 0;
		}
		fprintf(f, "%*s", col - n, "");
		xo_wrap(f, t[i].help, col, col, HELP_WIDTH);
	}
	if (p->epilog)
		fputs(p->epilog, f);
}

void xo_version(const struct xo_prog *p)
{
	printf("%s %s\n", p->name, XDNAT_VERSION);
}

int xo_try_help(const struct xo_prog *p)
{
	fprintf(stderr, "Try '%s --help'.\n", p->name);
	return 2;
}

/* Entry @o's configuration section (in @sec) and key. */
static const char *ini_key(const struct xo_opt *o, char *sec, size_t len)
{
	const char *dot = strchr(o->ini, '.');
	size_t n = dot ? (size_t)(dot - o->ini) : strlen(o->ini);

	if (n >= len)
		n = len - 1;
	memcpy(sec, o->ini, n);
	sec[n] = '\0';
	return dot ? dot + 1 : o->name;
}

const struct xo_opt *xo_ini_find(const struct xo_opt *t, const char *section, const char *key)
{
	char sec[32];

	for (int i = 0; t[i].name || t[i].help; i++) {
		const char *k;

		if (!t[i].name || !t[i].ini)
			continue;
		k = ini_key(&t[i], sec, sizeof(sec));
		if (!strcmp(sec, section) && !strcmp(k, key))
			return &t[i];
	}
	return NULL;
}

void xo_help_ini(const struct xo_prog *p, FILE *f)
{
	const struct xo_opt *t = p->opts;
	char done[16][32];
	int n_done = 0, col = col_of(p);
	char sec[32], cur[32];

	for (int i = 0; t[i].name || t[i].help; i++) {
		bool seen = false;

		if (!t[i].name || !t[i].ini)
			continue;
		ini_key(&t[i], cur, sizeof(cur));
		for (int j = 0; j < n_done; j++)
			seen |= !strcmp(done[j], cur);
		if (seen || n_done == (int)(sizeof(done) / sizeof(done[0])))
			continue;
		snprintf(done[n_done++], sizeof(done[0]), "%s", cur);
		fprintf(f, "\n[%s]\n", cur);
		for (int j = i; t[j].name || t[j].help; j++) {
			const char *k;
			int n;

			if (!t[j].name || !t[j].ini)
				continue;
			k = ini_key(&t[j], sec, sizeof(sec));
			if (strcmp(sec, cur))
				continue;
			n = fprintf(f, "  %s = %s", k, t[j].arg ? t[j].arg : "yes|no");
			if (n + 2 > col) {
				fputc('\n', f);
				n = 0;
			}
			fprintf(f, "%*s(--%s) ", col - n, "", t[j].name);
			xo_wrap(f, t[j].help ? t[j].help : "", col + (int)strlen(t[j].name) + 5, col,
				HELP_WIDTH);
		}
	}
}

int xo_parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}
