/*
 * test_rules_expr.c - the rule expression language: precedence and
 * associativity, functions, metric names (bare and quoted), errors that
 * name a position, and hostile input (100k parentheses, endless unary
 * operators, long names, garbage bytes, oversized source).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules/expr.h"

/* Evaluates src with the variables named in names/values (missing: NaN). */
static double ev(const char *src, const char *const *names, const double *values, size_t n)
{
	struct rexpr *e = NULL;
	char err[200];
	size_t pos;
	enum mote_err rc = rexpr_parse(src, strlen(src), &e, &pos, err, sizeof err);
	if (rc != MOTE_OK)
		fail_msg("'%s' did not parse: %s", src, err);
	double vars[REXPR_MAX_VARS];
	for (size_t i = 0; i < rexpr_nvars(e); i++) {
		vars[i] = NAN;
		for (size_t k = 0; k < n; k++)
			if (strcmp(rexpr_var(e, i), names[k]) == 0)
				vars[i] = values[k];
	}
	double v = rexpr_eval(e, vars);
	rexpr_free(e);
	return v;
}

static double ev0(const char *src)
{
	return ev(src, NULL, NULL, 0);
}

/* Parses src expecting failure at position want_pos; returns the message. */
static void expect_error(const char *src, size_t len, size_t want_pos, const char *want_text)
{
	struct rexpr *e = (struct rexpr *)1;
	char err[200];
	size_t pos = 12345;
	enum mote_err rc = rexpr_parse(src, len, &e, &pos, err, sizeof err);
	if (rc == MOTE_OK)
		fail_msg("'%.60s' parsed but should not", src);
	assert_null(e);
	if (want_pos != (size_t)-1 && pos != want_pos)
		fail_msg("'%.60s': error at %zu, expected %zu (%s)", src, pos, want_pos, err);
	if (want_text && !strstr(err, want_text))
		fail_msg("'%.60s': message '%s' lacks '%s'", src, err, want_text);
	char prefix[32];
	snprintf(prefix, sizeof prefix, "position %zu:", pos);
	assert_non_null(strstr(err, prefix));
}

static void test_precedence(void **state)
{
	(void)state;
	assert_true(ev0("1 + 2 * 3") == 7);
	assert_true(ev0("(1 + 2) * 3") == 9);
	assert_true(ev0("10 - 4 - 3") == 3);     /* left-associative */
	assert_true(ev0("24 / 4 / 2") == 3);
	assert_true(ev0("-2 * -3") == 6);
	assert_true(ev0("- -2") == 2);
	assert_true(ev0("+5") == 5);
	assert_true(ev0("1 + 2 > 2") == 1);      /* arithmetic binds tighter than comparison */
	assert_true(ev0("1 < 2 == 1") == 1);     /* comparison tighter than equality */
	assert_true(ev0("1 || 0 && 0") == 1);    /* && tighter than || */
	assert_true(ev0("(1 || 0) && 0") == 0);
	assert_true(ev0("!0 && 1") == 1);
	assert_true(ev0("!1 || 1") == 1);
	assert_true(ev0("!(1 || 1)") == 0);
	assert_true(ev0("2 >= 2") == 1);
	assert_true(ev0("2 <= 1") == 0);
	assert_true(ev0("2 != 3") == 1);
	assert_true(ev0("1.5e2 == 150") == 1);
	assert_true(ev0(".5 * 4") == 2);
	assert_true(ev0("true && !false") == 1);
	assert_true(ev0("  \t1\n+\r1 ") == 2);
}

static void test_functions_and_names(void **state)
{
	(void)state;
	assert_true(ev0("abs(-3)") == 3);
	assert_true(ev0("min(4, 2, 8)") == 2);
	assert_true(ev0("max(4, 2, 8)") == 8);
	assert_true(ev0("max(1)") == 1);
	assert_true(ev0("abs(min(-1, -5)) + max(1, 2) * 2") == 9);
	const char *names[] = { "temp", "rpm", "battery-level", "env.humidity" };
	const double vals[] = { 85, 90, 12, 40 };
	assert_true(ev("temp > 80 && rpm < 100", names, vals, 4) == 1);
	assert_true(ev("temp > 80 && rpm < 50", names, vals, 4) == 0);
	assert_true(ev("'battery-level' < 15 || env.humidity > 90", names, vals, 4) == 1);
	assert_true(ev("abs(temp - rpm) <= 5", names, vals, 4) == 1);

	struct rexpr *e;
	char err[200];
	size_t pos;
	const char *src = "a + b * a - c / b";
	assert_int_equal(rexpr_parse(src, strlen(src), &e, &pos, err, sizeof err), MOTE_OK);
	assert_int_equal(rexpr_nvars(e), 3);
	assert_string_equal(rexpr_var(e, 0), "a");
	assert_string_equal(rexpr_var(e, 1), "b");
	assert_string_equal(rexpr_var(e, 2), "c");
	assert_null(rexpr_var(e, 3));
	rexpr_free(e);
}

static void test_truth_and_nan(void **state)
{
	(void)state;
	assert_false(rexpr_true(ev0("1 / 0 - 1 / 0"))); /* NaN is false */
	assert_true(rexpr_true(ev0("1 / 0")));          /* +inf is true */
	assert_false(rexpr_true(0));
	assert_true(rexpr_true(-0.5));
	assert_true(ev0("!(0/0)") == 1);
}

static void test_errors_with_position(void **state)
{
	(void)state;
	expect_error("", 0, 0, "empty expression");
	expect_error("   ", 3, 3, "empty expression");
	expect_error("1 +", 3, 3, "unexpected end");
	expect_error("(1 + 2", 6, 6, "expected ')'");
	expect_error("1 + 2)", 6, 5, "after the expression");
	expect_error("temp > > 3", 10, 7, "unexpected '>'");
	expect_error("temp = 3", 8, 5, "unexpected '='");
	expect_error("temp & rpm", 10, 5, "unexpected '&'");
	expect_error("foo(1)", 6, 0, "unknown function 'foo'");
	expect_error("abs(1, 2)", 9, 0, "abs takes one argument");
	expect_error("min()", 5, 0, "at least one argument");
	expect_error("max(1,", 6, 6, "unexpected end");
	expect_error("max(1 2)", 8, 6, "expected ',' or ')'");
	expect_error("1.2.3", 5, 3, "unexpected '.'");
	expect_error("12abc", 5, 2, "after a number");
	expect_error("1e", 2, 1, "exponent without digits");
	expect_error("'unterminated", 13, 0, "unterminated");
	expect_error("''", 2, 0, "empty metric name");
	expect_error("1 + 1e999", 9, 4, "out of range");
	expect_error("a @ b", 5, 2, "unexpected '@'");
	expect_error("a \x01 b", 5, 2, "byte 0x01");
}

static void test_hostile(void **state)
{
	(void)state;
	/* 100k opening parentheses: refused at the depth limit, no stack overflow. */
	size_t n = 100000;
	char *s = malloc(2 * n + 2);
	memset(s, '(', n);
	s[n] = '1';
	memset(s + n + 1, ')', n);
	s[2 * n + 1] = '\0';
	struct rexpr *e = NULL;
	char err[200];
	size_t pos;
	enum mote_err rc = rexpr_parse(s, 2 * n + 1, &e, &pos, err, sizeof err);
	assert_int_not_equal(rc, MOTE_OK);
	assert_null(e);
	assert_non_null(strstr(err, "position")); /* too long or too deep, with a place */
	/* the same nesting under the length limit: refused by depth */
	rc = rexpr_parse(s + n - 1000, 1001, &e, &pos, err, sizeof err);
	assert_int_equal(rc, MOTE_ETOOBIG);
	assert_non_null(strstr(err, "nested deeper"));
	assert_true(pos <= REXPR_MAX_DEPTH + 1);
	/* unary operators nest too */
	memset(s, '-', 3000);
	s[3000] = '1';
	rc = rexpr_parse(s, 3001, &e, &pos, err, sizeof err);
	assert_int_equal(rc, MOTE_ETOOBIG);
	memset(s, '!', 3000);
	rc = rexpr_parse(s, 3001, &e, &pos, err, sizeof err);
	assert_int_equal(rc, MOTE_ETOOBIG);
	/* exactly at the limit still parses */
	char ok[2 * 40 + 2];
	memset(ok, '(', 40);
	ok[40] = '7';
	memset(ok + 41, ')', 40);
	ok[81] = '\0';
	assert_true(ev0(ok) == 7);
	free(s);

	/* a name one byte too long, and one at the limit */
	char name[REXPR_NAME_MAX + 2];
	memset(name, 'x', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	expect_error(name, strlen(name), 0, "longer than");
	name[REXPR_NAME_MAX] = '\0';
	assert_int_equal(rexpr_parse(name, strlen(name), &e, &pos, err, sizeof err), MOTE_OK);
	rexpr_free(e);

	/* oversized source */
	char *big = malloc(REXPR_MAX_LEN + 2);
	memset(big, ' ', REXPR_MAX_LEN + 1);
	big[0] = '1';
	assert_int_equal(rexpr_parse(big, REXPR_MAX_LEN + 1, &e, &pos, err, sizeof err), MOTE_ETOOBIG);
	/* too many nodes within the length limit: 1+1+1+... */
	for (size_t i = 0; i + 1 < REXPR_MAX_LEN; i += 2) {
		big[i] = '1';
		big[i + 1] = '+';
	}
	big[REXPR_MAX_LEN - 1] = '1';
	assert_int_equal(rexpr_parse(big, REXPR_MAX_LEN, &e, &pos, err, sizeof err), MOTE_ETOOBIG);
	assert_non_null(strstr(err, "too long"));
	/* too many distinct metrics */
	size_t o = 0;
	for (int i = 0; i <= REXPR_MAX_VARS; i++)
		o += (size_t)snprintf(big + o, 32, "%sm%d", i ? "+" : "", i);
	assert_int_equal(rexpr_parse(big, o, &e, &pos, err, sizeof err), MOTE_ETOOBIG);
	assert_non_null(strstr(err, "distinct metrics"));
	free(big);

	/* NUL inside the given length is garbage, not an end */
	expect_error("1 +\0 2", 6, 3, "byte 0x00");
	/* pseudo-random garbage never crashes and always reports a position within the input */
	unsigned seed = 12345;
	for (int round = 0; round < 20000; round++) {
		char g[48];
		size_t len = (size_t)(round % 47) + 1;
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			static const char alphabet[] = "()!-+*/<>=&|, 01.9eaxmin'\t";
			g[i] = (round & 1) ? (char)(seed >> 16) : alphabet[(seed >> 16) % (sizeof alphabet - 1)];
		}
		rc = rexpr_parse(g, len, &e, &pos, err, sizeof err);
		if (rc == MOTE_OK) {
			double vars[REXPR_MAX_VARS] = { 0 };
			(void)rexpr_eval(e, vars);
			rexpr_free(e);
		} else {
			assert_null(e);
			assert_true(pos <= len);
			assert_true(err[0] != '\0');
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_functions_and_names),
		cmocka_unit_test(test_truth_and_nan),
		cmocka_unit_test(test_errors_with_position),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
