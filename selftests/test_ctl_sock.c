// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatd's control socket (loader/daemon/ctl_sock.c): the request parser, the
 * responses of ctl_execute on a real state database, and the JSON reader
 * xdnatctl uses on them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ctl_sock.h"
#include "store.h"
#include "writer.h"

static int parse(const char *s, struct ctl_req *r, const char **why)
{
	*why = NULL;
	return ctl_parse_request(s, strlen(s), r, why);
}

Test(ctl_parse, words_and_line_ends)
{
	struct ctl_req r;
	const char *why;

	cr_assert_eq(parse("rsip list\n", &r, &why), 0);
	cr_assert_eq(r.argc, 2);
	cr_assert_str_eq(r.argv[0], "rsip");
	cr_assert_str_eq(r.argv[1], "list");
	cr_assert(!r.text);
	cr_assert_eq(parse("  rsip\t evict   h1 \r\n", &r, &why), 0);
	cr_assert_eq(r.argc, 3);
	cr_assert_str_eq(r.argv[2], "h1");
	cr_assert_eq(parse("stats", &r, &why), 0);   /* no newline: end of input */
	cr_assert_eq(r.argc, 1);
	cr_assert_eq(parse("--text cert revoke 0A1B keyCompromise\n", &r, &why), 0);
	cr_assert(r.text);
	cr_assert_eq(r.argc, 4);
	cr_assert_str_eq(r.argv[0], "cert");
	cr_assert_str_eq(r.argv[3], "keyCompromise");
	cr_assert_null(r.argv[4]);
}

Test(ctl_parse, refused)
{
	struct ctl_req r;
	const char *why;
	char big[CTL_MAX_REQ + 10];

	cr_assert_eq(parse("\n", &r, &why), -EINVAL);
	cr_assert_str_eq(why, "empty request");
	cr_assert_eq(parse("   \t \r\n", &r, &why), -EINVAL);
	cr_assert_eq(parse("--text\n", &r, &why), -EINVAL);
	cr_assert_eq(parse("--json rsip list\n", &r, &why), -EINVAL);
	cr_assert_str_eq(why, "unknown option");
	cr_assert_eq(parse("rsip list\nstats\n", &r, &why), -EINVAL);  /* a second line */
	cr_assert_eq(parse("rsip \x01list\n", &r, &why), -EINVAL);
	cr_assert_eq(parse("rsip l\xc3\xa9st\n", &r, &why), -EINVAL);
	cr_assert_eq(ctl_parse_request("rsip\0list\n", 10, &r, &why), -EINVAL);
	{
		char words[3 * CTL_MAX_ARGS + 8] = "";

		for (int i = 0; i < CTL_MAX_ARGS; i++)
			strcat(words, "a ");
		cr_assert_eq(parse(words, &r, &why), 0);
		cr_assert_eq(r.argc, CTL_MAX_ARGS);
		strcat(words, "b\n");
		cr_assert_eq(parse(words, &r, &why), -E2BIG);
	}
	/* A batch header: options only; a command after it is refused. */
	cr_assert_eq(parse("--batch\n", &r, &why), 0);
	cr_assert(r.batch && !r.text && r.argc == 0);
	cr_assert_eq(parse("--text --batch\n", &r, &why), 0);
	cr_assert(r.batch && r.text);
	cr_assert_eq(parse("--batch host del 1\n", &r, &why), -EINVAL);
	memset(big, 'x', sizeof(big));
	cr_assert_eq(ctl_parse_request(big, CTL_MAX_REQ, &r, &why), -E2BIG);
	cr_assert_eq(ctl_parse_request(big, CTL_MAX_REQ - 1, &r, &why), 0);
	big[CTL_MAX_REQ - 1] = '\n';
	cr_assert_eq(ctl_parse_request(big, CTL_MAX_REQ, &r, &why), 0);
	cr_assert_eq(strlen(r.argv[0]), CTL_MAX_REQ - 1);
}

static char *member(const char *json, const char *key)
{
	const char *v;
	size_t n;
	char *s;

	if (ctl_json_member(json, key, &v, &n))
		return NULL;
	s = strndup(v, n);
	cr_assert_not_null(s);
	return s;
}

Test(ctl_json, members_and_strings)
{
	const char *j = "{\"a\":{\"x\":[1,\"}\\\"]\",{}]},\"ok\" : true , \"t\":\"l1\\nl2 \\u00e9\\ud83d\\ude00\\\\\"}";
	char *v, *s;

	v = member(j, "ok");
	cr_assert_str_eq(v, "true");
	free(v);
	v = member(j, "a");
	cr_assert_str_eq(v, "{\"x\":[1,\"}\\\"]\",{}]}");
	free(v);
	cr_assert_null(member(j, "x"));    /* only top-level members */
	v = member(j, "t");
	cr_assert_eq(ctl_json_string(v, strlen(v), &s), 0);
	cr_assert_str_eq(s, "l1\nl2 \xc3\xa9\xf0\x9f\x98\x80\\");
	free(s);
	free(v);
	cr_assert_eq(ctl_json_member("[1]", "a", (const char **)&v, &(size_t){ 0 }), -EINVAL);
	cr_assert_eq(ctl_json_member("{}", "a", (const char **)&v, &(size_t){ 0 }), -ENOENT);
	cr_assert_eq(ctl_json_member("{\"a\" 1}", "a", (const char **)&v, &(size_t){ 0 }), -EINVAL);
	cr_assert_eq(ctl_json_member("{\"a\":\"open", "a", (const char **)&v, &(size_t){ 0 }), -EINVAL);
	cr_assert_eq(ctl_json_string("\"a\\u0000\"", 9, &s), -EINVAL);
	cr_assert_eq(ctl_json_string("\"a\\q\"", 5, &s), -EINVAL);
	cr_assert_eq(ctl_json_string("\"a", 2, &s), -EINVAL);
}

/* ctl_execute on a real (empty-ish) state database. */
static char dir[] = "/tmp/test_ctl_sock.XXXXXX";
static struct rsip_server srv;
static struct ctl_ops ops;
static struct ctl_counters cnt;

static void setup(void)
{
	uint8_t secret[RSIP_SECRET_LEN];

	cr_assert_not_null(mkdtemp(dir));
	memset(&srv, 0, sizeof(srv));
	rsip_config_defaults(&srv.cfg);
	srv.now_ms = rsip_now_ms;
	cr_assert_eq(xd_store_open(dir, "t", 0, &srv.st, (char[256]){ 0 }, 256), 0);
	cr_assert_eq(xd_store_enroll_new(srv.st, "h1", htonl(0x0a000002), secret), 0);
	ops = (struct ctl_ops){ .rsip = &srv, .instance = "t" };
	memset(&cnt, 0, sizeof(cnt));
}

static void teardown(void)
{
	char cmd[128];

	xd_store_close(srv.st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static char *run(const char *line)
{
	struct ctl_req r;
	const char *why;
	size_t len = 0;
	char *out;

	cr_assert_eq(parse(line, &r, &why), 0, "%s: %s", line, why);
	out = ctl_execute(&ops, &r, &cnt, &len);
	cr_assert_not_null(out);
	cr_assert_eq(strlen(out), len);
	cr_assert_eq(out[len - 1], '\n');
	return out;
}

Test(ctl_exec, commands, .init = setup, .fini = teardown)
{
	char *o, *v;

	o = run("rsip list");
	cr_assert(!strncmp(o, "{\"ok\":true,\"bindings\":[{\"host\":\"h1\"", 34), "%s", o);
	free(o);
	o = run("--text rsip list");
	v = member(o, "text");
	cr_assert_not_null(v);
	cr_assert(strstr(v, "h1") && strstr(v, "10.0.0.2"), "%s", v);
	free(v);
	free(o);
	o = run("ping");
	cr_assert(strstr(o, "\"instance\":\"t\""), "%s", o);
	free(o);
	o = run("rsip evict nobody");
	cr_assert(!strncmp(o, "{\"ok\":false,\"error\":\"no enrolled host 'nobody'\",\"errno\":2}", 56),
		  "%s", o);
	free(o);
	o = run("rsip evict h1");    /* enrolled, holds nothing */
	cr_assert(strstr(o, "\"ok\":true") && strstr(o, "\"freed_count\":0"), "%s", o);
	free(o);
	o = run("rsip list extra");
	cr_assert(strstr(o, "wrong number of arguments"), "%s", o);
	free(o);
	o = run("frobnicate");
	cr_assert(strstr(o, "\"ok\":false") && strstr(o, "unknown command 'frobnicate'"), "%s", o);
	free(o);
	o = run("stats");    /* no maps here */
	cr_assert(strstr(o, "\"ok\":false"), "%s", o);
	free(o);
	o = run("cert revoke 0123");
	cr_assert(strstr(o, "\"ok\":false") && strstr(o, "\"errno\":2"), "%s", o);
	free(o);
	o = run("cert revoke 0123 noSuchReason");
	cr_assert(strstr(o, "unknown reason"), "%s", o);
	free(o);
	cr_assert_eq(cnt.requests, 10);
	cr_assert_eq(cnt.errors, 6);
}

/* Changes go to the writer (writer.h): the store ones work here, the map
 * ones say there are no maps; a bad change is refused before anything. */
Test(ctl_exec, changes, .init = setup, .fini = teardown)
{
	uint8_t secret[RSIP_SECRET_LEN];
	uint32_t lan = 0;
	char *o, *v;

	o = run("enroll h2 lan 10.0.0.3");
	v = member(o, "secret");
	cr_assert_not_null(v, "%s", o);
	cr_assert_eq(strlen(v), 2 + 64, "%s", v);
	cr_assert_eq(srv.st->ops->host_secret(srv.st, "h2", secret, &lan), 0);
	cr_assert_eq(lan, htonl(0x0a000003));
	free(v);
	free(o);
	o = run("--text enroll h3");
	v = member(o, "text");
	cr_assert(v && strlen(v) == 2 + 64 + 2, "%s", o);   /* "hex\n", JSON-escaped */
	free(v);
	free(o);
	o = run("unenroll h3");
	cr_assert(!strncmp(o, "{\"ok\":true", 10), "%s", o);
	free(o);
	o = run("unenroll h3");
	cr_assert(strstr(o, "\"ok\":false") && strstr(o, "no enrolled host 'h3'") &&
		  strstr(o, "\"errno\":2"), "%s", o);
	free(o);
	o = run("enroll bad/name");
	cr_assert(strstr(o, "\"ok\":false") && strstr(o, "not a valid host name"), "%s", o);
	free(o);
	o = run("host add 3 lan 10.0.0.9 ports 2000-2999");
	cr_assert(strstr(o, "\"ok\":false") && strstr(o, "no pinned maps"), "%s", o);
	free(o);
	o = run("host add 3 lan 10.0.0.999");
	cr_assert(strstr(o, "'10.0.0.999' is not an IPv4 address") && strstr(o, "\"errno\":22"), "%s", o);
	free(o);
	o = run("ports add 3 9-1");
	cr_assert(strstr(o, "not a port range"), "%s", o);
	free(o);
	o = run("ike default 500 none global 192.0.2.1");
	cr_assert(strstr(o, "\"ok\":false"), "%s", o);
	free(o);
	cr_assert_eq(cnt.requests, 9);
	cr_assert_eq(cnt.errors, 6);
}

/* The syntax check xdnatctl runs before sending a change. */
Test(writer, check)
{
	char *ok1[] = { "host", "add", "5", "lan", "10.0.0.5", "ports", "100-200", "spi", "0x10000-0x1ffff" };
	char *ok2[] = { "ike", "default", "500", "none" };
	char *bad1[] = { "host", "add", "5", "ports", "100-200" };
	char *bad2[] = { "spi", "add", "5" };
	char *bad3[] = { "host", "add", "0", "lan", "10.0.0.5" };
	char err[200];

	cr_assert_eq(xd_change_kind(9, ok1), XD_CHANGE_MAPS);
	cr_assert_eq(xd_change_kind(2, (char *[]){ "enroll", "x" }), XD_CHANGE_STORE);
	cr_assert_eq(xd_change_kind(2, (char *[]){ "host", "show" }), XD_CHANGE_NONE);
	cr_assert_eq(xd_change_check(9, ok1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_change_check(4, ok2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_change_check(5, bad1, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "host add: 'lan ADDR' is required");
	cr_assert_eq(xd_change_check(3, bad2, err, sizeof(err)), -EINVAL);
	cr_assert_eq(xd_change_check(5, bad3, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "'0' is not a host id");
}
