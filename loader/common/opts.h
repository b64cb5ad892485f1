/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One table per program for its options: getopt_long's option string and
 * long options, the keys of a configuration file (INI: "section.key"), the
 * option list of --help (and so the man page, made from --help by
 * help2man) and --version all come from it, so they cannot disagree.
 *
 * A table is an array of struct xo_opt ending with { 0 }.  An entry with no
 * name is a heading of --help (its help text, printed at column 0 after a
 * blank line).  Typed entries (XO_FLAG, XO_STR, XO_U32) are stored by
 * xo_getopt()/xo_apply() into the program's options struct at .off;
 * XO_CALL entries are handed back to the program, which applies them.
 */
#ifndef XDNAT_OPTS_H
#define XDNAT_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <getopt.h>

/* A macro's value as a string literal, for defaults in help texts. */
#define XO_STR_(x) #x
#define XO_STR(x) XO_STR_(x)

enum xo_type {
	XO_CALL,   /* returned by xo_getopt() as .id; the program applies it */
	XO_FLAG,   /* bool at .off becomes true */
	XO_STR,    /* const char * at .off points to the argument */
	XO_U32,    /* uint32_t at .off, a number from .min to .max */
};

/* Ids of the options every program has. */
enum { XO_ID_HELP = 'h', XO_ID_VERSION = 0x7f00 };

/* xo_getopt()'s returns besides an XO_CALL id. */
enum { XO_END = -1, XO_USAGE = -2 };

struct xo_opt {
	const char *name;  /* long option without "--"; NULL: heading, or the end */
	int key;           /* short option character; 0: none */
	const char *arg;   /* the argument's name in --help; NULL: takes none */
	int id;            /* XO_CALL: what xo_getopt() returns (0: .key) */
	enum xo_type type;
	size_t off;        /* typed entries: offsetof(options struct, field) */
	uint32_t min, max; /* XO_U32 */
	const char *ini;   /* configuration file "section" (key = name) or
			    * "section.key"; NULL: command line only */
	const char *help;  /* one paragraph, word-wrapped; "\n" breaks a line */
};

/* Entries of --help and --version, the same in every program. */
#define XO_OPT_HELP { "help", 'h', NULL, XO_ID_HELP, .help = "this help" }
#define XO_OPT_VERSION { "version", 0, NULL, XO_ID_VERSION, \
			 .help = "print the program's name and version, exit" }
#define XO_HEAD(text) { NULL, 0, NULL, 0, .help = (text) }

struct xo_prog {
	const char *name;            /* "xdnatd" */
	const char *synopsis;        /* --help before the options: usage, description */
	const struct xo_opt *opts;
	const char *epilog;          /* --help after the options: signals, exit status */
	int indent;                  /* columns before an option (default 2) */
	int col;                     /* column of the help text (default 26) */
	bool in_order;               /* stop at the first non-option (OBJECT COMMAND syntax) */
	/* Short options taken away, each "K=LONG" separated by spaces: a usage
	 * error that names the long form to use instead. */
	const char *retired;
};

#define XO_MAX_OPTS 96

/* Iteration state of xo_getopt() over one command line. */
struct xo_state {
	const struct xo_prog *prog;
	void *base;                  /* typed entries go here; NULL: returned instead */
	bool quiet;                  /* no messages (a first pass over argv) */
	const struct xo_opt *opt;    /* the entry just returned */
	char optstring[2 * XO_MAX_OPTS + 4];
	struct option longopts[XO_MAX_OPTS + 1];
	bool ready;
};

/*
 * getopt_long over @st->prog's table.  Typed entries are stored into
 * @st->base; returns the next XO_CALL entry's id (its argument in optarg,
 * the entry in st->opt), XO_END after the last option (optind: the first
 * operand), or XO_USAGE after printing what is wrong (unknown option,
 * missing argument, bad value) and "Try 'PROG --help'.": exit 2 then.
 * Start a new pass with optind = 0.
 */
int xo_getopt(struct xo_state *st, int argc, char **argv);

/* Store @arg into @base by entry @o's type; 0 or -EINVAL (message printed,
 * naming --NAME, with xd_progname before it). */
int xo_apply(const struct xo_opt *o, const char *arg, void *base);

/* "--help": synopsis, the table's options, epilog. */
void xo_help(const struct xo_prog *p, FILE *f);
/* "--version": "PROG VERSION" from -DXDNAT_VERSION. */
void xo_version(const struct xo_prog *p);
/* "Try 'PROG --help'." on stderr; returns 2, the usage error status. */
int xo_try_help(const struct xo_prog *p);

/* Configuration file: the entry of [section] key, or NULL. */
const struct xo_opt *xo_ini_find(const struct xo_opt *t, const char *section, const char *key);
/* The file's reference: for each section in the table's order, its keys
 * with the option each stands for and that option's help. */
void xo_help_ini(const struct xo_prog *p, FILE *f);
/* yes/no, true/false, on/off, 1/0. */
int xo_parse_bool(const char *v, bool *out);

/* Word-wrap @text to @width columns, the first line from column @at (the
 * cursor's), the following ones indented by @indent. */
void xo_wrap(FILE *f, const char *text, int at, int indent, int width);

#endif
