// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Unit tests of the option tables (loader/common/opts.c): the getopt they
 * generate, typed storage with ranges, configuration keys, --help layout. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "opts.h"
#include "xdnat.h"

struct topts {
	const char *name;
	uint32_t count;
	bool flag;
};

#define OFF(f) offsetof(struct topts, f)
enum { T_LIST = 300 };

static const struct xo_opt topts_table[] = {
	XO_HEAD("Options:"),
	{ "name", 'n', "NAME", .type = XO_STR, .off = OFF(name), .ini = "main",
	  .help = "a name" },
	{ "count", 'c', "N", .type = XO_U32, .off = OFF(count), .min = 2, .max = 10,
	  .ini = "main.number", .help = "how many, from 2 to 10" },
	{ "flag", 'f', NULL, .type = XO_FLAG, .off = OFF(flag), .ini = "other",
	  .help = "a switch" },
	{ "list", 0, "A,B", T_LIST, .ini = "other.items",
	  .help = "a list the program parses itself; this help text is long enough to "
		  "be wrapped onto a second line at the help column" },
	{ "a-rather-long-option-name", 0, "VALUE", T_LIST + 1, .help = "short" },
	XO_OPT_VERSION,
	XO_OPT_HELP,
	{ 0 }
};

static const struct xo_prog tprog = {
	.name = "tprog", .opts = topts_table, .synopsis = "Usage: tprog [OPTIONS]\n",
	.epilog = "\nEnd.\n", .retired = "q=name x=count",
};

/* Run xo_getopt over @args (NULL-terminated) into @o; returns the ids of the
 * XO_CALL options in @ids (up to 8), the last return value as the result. */
static int parse(struct topts *o, char **args, int *ids, int *n_ids)
{
	struct xo_state st = { .prog = &tprog, .base = o };
	int argc = 0, c;

	while (args[argc])
		argc++;
	*n_ids = 0;
	optind = 0;
	while ((c = xo_getopt(&st, argc, args)) != XO_END) {
		if (c == XO_USAGE)
			return c;
		if (*n_ids < 8)
			ids[(*n_ids)++] = c;
	}
	return 0;
}

Test(opts, typed_options_are_stored_call_options_returned)
{
	struct topts o = { 0 };
	char *args[] = { "tprog", "-n", "x", "--count", "7", "-f", "--list", "a,b", "--version",
			 "rest", NULL };
	int ids[8], n;

	cr_assert_eq(parse(&o, args, ids, &n), 0);
	cr_assert_str_eq(o.name, "x");
	cr_assert_eq(o.count, 7);
	cr_assert(o.flag);
	cr_assert_eq(n, 2);
	cr_assert_eq(ids[0], T_LIST);
	cr_assert_eq(ids[1], XO_ID_VERSION);
	cr_assert_str_eq(args[optind], "rest");
}

Test(opts, usage_errors, .init = cr_redirect_stderr)
{
	const char *bad[][3] = {
		{ "--count", "11" }, { "--count", "1" }, { "-c", "x" }, { "--nope" }, { "-z" },
		{ "--count" }, { "--flag=1" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct topts o = { .count = 3 };
		char *args[] = { "tprog", (char *)bad[i][0], (char *)bad[i][1], NULL };
		int ids[8], n;

		cr_expect_eq(parse(&o, args, ids, &n), XO_USAGE, "%s %s accepted", bad[i][0],
			     bad[i][1] ? bad[i][1] : "");
		cr_expect_eq(o.count, 3, "%s %s changed the value", bad[i][0],
			     bad[i][1] ? bad[i][1] : "");
	}
}

Test(opts, ini_keys_from_the_table)
{
	cr_assert_eq(xo_ini_find(topts_table, "main", "name"), &topts_table[1]);
	cr_assert_eq(xo_ini_find(topts_table, "main", "number"), &topts_table[2]);
	cr_assert_null(xo_ini_find(topts_table, "main", "count"));
	cr_assert_eq(xo_ini_find(topts_table, "other", "flag"), &topts_table[3]);
	cr_assert_eq(xo_ini_find(topts_table, "other", "items"), &topts_table[4]);
	cr_assert_null(xo_ini_find(topts_table, "main", "flag"));
	cr_assert_null(xo_ini_find(topts_table, "", "name"));
	cr_assert_null(xo_ini_find(topts_table, "main", "a-rather-long-option-name"));
}

Test(opts, bool_values)
{
	const char *yes[] = { "yes", "true", "on", "1" }, *no[] = { "no", "false", "off", "0" };
	bool b;

	for (int i = 0; i < 4; i++) {
		cr_expect_eq(xo_parse_bool(yes[i], &b), 0);
		cr_expect(b);
		cr_expect_eq(xo_parse_bool(no[i], &b), 0);
		cr_expect(!b);
	}
	cr_expect_eq(xo_parse_bool("maybe", &b), -EINVAL);
	cr_expect_eq(xo_parse_bool("", &b), -EINVAL);
}

/* --help: every option, short and long, its argument, the help wrapped at
 * the column; nothing wider than 79 columns. */
Test(opts, help_layout)
{
	char *text = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	xo_help(&tprog, f);
	cr_assert_eq(fclose(f), 0);
	cr_expect(strstr(text, "Usage: tprog [OPTIONS]\n\nOptions:\n"));
	cr_expect(strstr(text, "  -n, --name NAME         a name\n"));
	cr_expect(strstr(text, "  -f, --flag              a switch\n"));
	cr_expect(strstr(text, "      --list A,B          a list the program parses itself;"));
	cr_expect(strstr(text, "\n                          long enough to be wrapped"), "%s", text);
	cr_expect(strstr(text, "      --a-rather-long-option-name VALUE\n"
			       "                          short\n"));
	cr_expect(strstr(text, "      --version           print"));
	cr_expect(strstr(text, "  -h, --help              this help\n\nEnd.\n"));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		cr_expect_leq(strlen(line), 79, "too wide: '%s'", line);
	free(text);
}

Test(opts, ini_reference_by_section)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	char *main_s, *other_s;

	cr_assert_not_null(f);
	xo_help_ini(&tprog, f);
	cr_assert_eq(fclose(f), 0);
	main_s = strstr(text, "\n[main]\n");
	other_s = strstr(text, "\n[other]\n");
	cr_assert(main_s && other_s && main_s < other_s, "%s", text);
	cr_expect(strstr(main_s, "  name = NAME") < other_s);
	cr_expect(strstr(main_s, "  number = N") < other_s);
	cr_expect(strstr(other_s, "  flag = yes|no"));
	cr_expect(strstr(other_s, "  items = A,B"));
	cr_expect(strstr(text, "(--count) how many"));
	cr_expect_null(strstr(text, "a-rather-long"));
	free(text);
}

Test(opts, version_line, .init = cr_redirect_stdout)
{
	char line[128] = "";
	FILE *f;

	xo_version(&tprog);
	fflush(stdout);
	/* The version of the library's build (-DXDNAT_VERSION), which need not
	 * be this file's when only one was rebuilt: "tprog VERSION\n". */
	f = cr_get_redirected_stdout();
	cr_assert_not_null(fgets(line, sizeof(line), f));
	cr_assert_eq(strncmp(line, "tprog ", 6), 0, "%s", line);
	cr_assert_gt(strlen(line), 7, "%s", line);
	cr_assert_eq(strcspn(line + 6, " \n"), strlen(line) - 7, "%s", line);
}

Test(opts, retired_short_option_names_its_long_form, .init = cr_redirect_stderr)
{
	struct topts o = { 0 };
	char *args[] = { "tprog", "-x", "3", NULL };
	int ids[8], n;

	cr_assert_eq(parse(&o, args, ids, &n), XO_USAGE);
	fflush(stderr);
	cr_assert_stderr_eq_str("tprog: invalid option -- 'x'\n"
				"tprog: -x is retired: use --count\n"
				"Try 'tprog --help'.\n");
}
