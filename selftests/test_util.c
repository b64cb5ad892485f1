// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Unit tests of the user-space parsers and the JSON writer (loader/common/util.c):
 * everything an operator types goes through these. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "xdnat.h"

Test(parse, ipv4_accepts_dotted_quads_only)
{
	uint32_t a = 0xdeadbeef;

	cr_assert_eq(xd_parse_ipv4("192.0.2.1", &a), 0);
	cr_assert_eq(a, htonl(0xc0000201));
	const char *bad[] = { "", "1", "192.0.2", "192.0.2.256", "192.0.2.1 ", " 192.0.2.1",
			      "192.0.2.1/32", "0x1.2.3.4", "a.b.c.d", "192.0.2.-1", "::1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = 7;
		cr_expect_eq(xd_parse_ipv4(bad[i], &a), -EINVAL, "'%s' accepted", bad[i]);
		cr_expect_eq(a, 7, "'%s' wrote the output on error", bad[i]);
	}
	cr_assert_eq(xd_parse_ipv4(NULL, &a), -EINVAL);
}

Test(parse, u32_decimal_hex_and_bounds)
{
	uint32_t v = 0;

	cr_assert_eq(xd_parse_u32("0", 0, 10, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(xd_parse_u32("010", 0, 100, &v), 0);
	cr_assert_eq(v, 10, "leading zero must not mean octal, got %u", v);
	cr_assert_eq(xd_parse_u32("0x1f", 0, 100, &v), 0);
	cr_assert_eq(v, 31);
	cr_assert_eq(xd_parse_u32("0XFFFFFFFF", 0, 0xffffffffu, &v), 0);
	cr_assert_eq(v, 0xffffffffu);
	cr_assert_eq(xd_parse_u32("4294967295", 0, 0xffffffffu, &v), 0);
	const char *bad[] = { "", "-1", "+1", " 1", "1 ", "1a", "0x", "0xg", "4294967296",
			      "99999999999999999999999", "1.5", "0x1ffffffff" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		cr_expect_eq(xd_parse_u32(bad[i], 0, 0xffffffffu, &v), -EINVAL, "'%s' accepted", bad[i]);
		cr_expect_eq(v, 7);
	}
	cr_assert_eq(xd_parse_u32("11", 0, 10, &v), -EINVAL);
	cr_assert_eq(xd_parse_u32("4", 5, 10, &v), -EINVAL);
	cr_assert_eq(xd_parse_u32(NULL, 0, 10, &v), -EINVAL);
}

Test(parse, ranges)
{
	uint32_t a = 0, b = 0;

	cr_assert_eq(xd_parse_range("20000-20999", 1, 65535, &a, &b), 0);
	cr_assert(a == 20000 && b == 20999);
	cr_assert_eq(xd_parse_range("80", 1, 65535, &a, &b), 0);
	cr_assert(a == 80 && b == 80);
	cr_assert_eq(xd_parse_range("0x10000-0x1ffff", 0, 0xffffffffu, &a, &b), 0);
	cr_assert(a == 0x10000 && b == 0x1ffff);
	cr_assert_eq(xd_parse_range("5-5", 1, 10, &a, &b), 0);
	const char *bad[] = { "", "-", "1-", "-5", "5-4", "0-10", "1-65536", "1--2", "1-2-3",
			      "a-b", "1 - 2",
			      "11111111111111111111111111111111111111111111111111111111111111111-2" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = b = 7;
		cr_expect_eq(xd_parse_range(bad[i], 1, 65535, &a, &b), -EINVAL, "'%s' accepted", bad[i]);
		cr_expect(a == 7 && b == 7, "'%s' wrote the output on error", bad[i]);
	}
}

Test(parse, prefixes)
{
	uint32_t a = 1, l = 1;

	cr_assert_eq(xd_parse_prefix("default", &a, &l), 0);
	cr_assert(a == 0 && l == 0);
	cr_assert_eq(xd_parse_prefix("198.51.100.0/24", &a, &l), 0);
	cr_assert(a == htonl(0xc6336400) && l == 24);
	cr_assert_eq(xd_parse_prefix("198.51.100.7", &a, &l), 0);
	cr_assert_eq(l, 32);
	cr_assert_eq(xd_parse_prefix("0.0.0.0/0", &a, &l), 0);
	const char *bad[] = { "", "/24", "198.51.100.0/", "198.51.100.0/33", "198.51.100.1/24",
			      "10.0.0.1/8", "198.51.100.0/-1", "198.51.100.0/24/1", "defaults" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(xd_parse_prefix(bad[i], &a, &l), -EINVAL, "'%s' accepted", bad[i]);
}

Test(parse, instance_names_are_safe_path_components)
{
	const char *good[] = { "default", "e2e-xd123", "wan0.lan0", "A_b", "x" };
	const char *bad[] = { "", ".", "..", "a/b", "../x", "a b", "a\nb",
			      "123456789012345678901234567890123" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_expect(xd_valid_instance(good[i]), "'%s' refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect(!xd_valid_instance(bad[i]), "'%s' accepted", bad[i]);
	cr_expect(!xd_valid_instance(NULL));
}

Test(format, ipstr_round_trip)
{
	char buf[INET_ADDRSTRLEN];
	uint32_t a;

	cr_assert_eq(xd_parse_ipv4("203.0.113.255", &a), 0);
	cr_assert_str_eq(xd_ipstr(a, buf), "203.0.113.255");
	cr_assert_str_eq(xd_ipstr(0, buf), "0.0.0.0");
}

/* Render a document with the JSON writer into a string (caller frees). */
static char *render(void (*fill)(struct xd_json *))
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	struct xd_json j;

	cr_assert_not_null(f);
	xd_json_begin(&j, f);
	fill(&j);
	xd_json_end(&j);
	cr_assert_eq(fclose(f), 0);
	return out;
}

static void fill_nested(struct xd_json *j)
{
	xd_json_str(j, "name", "h1");
	xd_json_u64(j, "big", 18446744073709551615ull);
	xd_json_bool(j, "ok", true);
	xd_json_arr_open(j, "ports");
	xd_json_obj_open(j, NULL);
	xd_json_u64(j, "first", 1);
	xd_json_u64(j, "last", 2);
	xd_json_obj_close(j);
	xd_json_obj_open(j, NULL);
	xd_json_obj_close(j);
	xd_json_arr_close(j);
	xd_json_obj_open(j, "empty");
	xd_json_obj_close(j);
}

Test(json, nested_document)
{
	char *s = render(fill_nested);

	cr_assert_str_eq(s, "{\"name\":\"h1\",\"big\":18446744073709551615,\"ok\":true,"
			    "\"ports\":[{\"first\":1,\"last\":2},{}],\"empty\":{}}\n");
	free(s);
}

static void fill_escapes(struct xd_json *j)
{
	xd_json_str(j, "s", "a\"b\\c\nd\x01");
}

Test(json, strings_are_escaped)
{
	char *s = render(fill_escapes);

	cr_assert_str_eq(s, "{\"s\":\"a\\\"b\\\\c\\u000ad\\u0001\"}\n");
	free(s);
}
