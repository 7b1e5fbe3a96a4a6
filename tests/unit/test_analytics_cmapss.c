/* test_analytics_cmapss.c - the C-MAPSS reader: good files, and every kind of
 * bad row named by file and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analytics/cmapss.h"

/* A valid row for unit u, cycle c: settings then sensors 1..21. */
static void row(char *buf, size_t n, int u, int c)
{
	int off = snprintf(buf, n, "%d %d 0.0023 -0.0003 100.0", u, c);
	for (int s = 1; s <= CMAPSS_SENSORS; s++)
		off += snprintf(buf + off, n - (size_t)off, " %d.%02d", 500 + s, (c * 7 + s) % 100);
	snprintf(buf + off, n - (size_t)off, " \n");
}

/* Text of units 1..nu with cycles[u] rows each. */
static char *file_of(int nu, const int *cycles)
{
	size_t cap = 1 << 20, len = 0;
	char *t = malloc(cap);
	assert_non_null(t);
	t[0] = '\0';
	for (int u = 1; u <= nu; u++)
		for (int c = 1; c <= cycles[u - 1]; c++) {
			row(t + len, cap - len, u, c);
			len += strlen(t + len);
		}
	return t;
}

static enum mote_err parse(const char *text, struct cmapss *d, char *err, size_t errlen)
{
	return cmapss_parse("f.txt", text, strlen(text), d, err, errlen);
}

static void good_file_groups_engines(void **state)
{
	(void)state;
	int cycles[] = {3, 5, 1};
	char *t = file_of(3, cycles);
	struct cmapss d;
	char err[256] = "";
	assert_int_equal(parse(t, &d, err, sizeof err), MOTE_OK);
	assert_int_equal(d.nunits, 3);
	assert_int_equal(d.nrows, 9);
	assert_int_equal(d.units[1].id, 2);
	assert_int_equal(d.units[1].first, 3);
	assert_int_equal(d.units[1].cycles, 5);
	assert_true(d.rows[0].setting[2] == 100.0);
	assert_true(d.rows[0].sensor[0] > 501.0 && d.rows[0].sensor[0] < 502.0);
	cmapss_free(&d);
	free(t);
}

static void crlf_tabs_blank_lines_and_no_final_newline(void **state)
{
	(void)state;
	char r1[1024], r2[1024], text[4096];
	row(r1, sizeof r1, 1, 1);
	row(r2, sizeof r2, 1, 2);
	r1[strlen(r1) - 1] = '\0';
	r2[strlen(r2) - 2] = '\0'; /* no trailing blank, no newline */
	for (char *p = r2; *p; p++)
		if (*p == ' ')
			*p = '\t';
	snprintf(text, sizeof text, "\n%s\r\n   \n%s", r1, r2);
	struct cmapss d;
	char err[256] = "";
	assert_int_equal(parse(text, &d, err, sizeof err), MOTE_OK);
	assert_int_equal(d.nrows, 2);
	cmapss_free(&d);
}

/* Replaces line `line` (1-based) of a 2-engine file with `bad`, expects the
 * error to name f.txt:line and contain `want`. */
static void expect_error(int line, const char *bad, const char *want)
{
	int cycles[] = {3, 3};
	char *t = file_of(2, cycles);
	char *out = malloc(strlen(t) + strlen(bad) + 16);
	assert_non_null(out);
	const char *p = t;
	size_t o = 0;
	for (int l = 1; *p; l++) {
		const char *eol = strchr(p, '\n');
		if (l == line) {
			o += (size_t)sprintf(out + o, "%s\n", bad);
		} else {
			memcpy(out + o, p, (size_t)(eol - p + 1));
			o += (size_t)(eol - p + 1);
		}
		p = eol + 1;
	}
	out[o] = '\0';
	struct cmapss d = {0};
	char err[256] = "", where[32];
	assert_int_not_equal(parse(out, &d, err, sizeof err), MOTE_OK);
	assert_null(d.rows);
	snprintf(where, sizeof where, "f.txt:%d: ", line);
	if (!strstr(err, where) || !strstr(err, want))
		fail_msg("line %d '%s': got '%s', want '%s' and '%s'", line, bad, err, where, want);
	free(out);
	free(t);
}

static void bad_rows_name_file_and_line(void **state)
{
	(void)state;
	char r[1024];
	expect_error(2, "1 2 0 0 100 1 2 3", "8 columns, expected 26");
	row(r, sizeof r, 1, 2);
	strcat(r, " 7");
	r[strlen(r) - 3] = ' '; /* drop the newline, keep 27 fields */
	expect_error(2, r, "more than 26 columns");
	row(r, sizeof r, 1, 2);
	r[strlen(r) - 2] = '\0';
	strcat(r, "x");
	expect_error(2, r, "sensor 21: ");
	row(r, sizeof r, 1, 2);
	memcpy(strstr(r, "0.0023"), "nan   ", 6);
	expect_error(2, r, "setting 1: 'nan' is not a finite number");
	row(r, sizeof r, 1, 2);
	memcpy(strstr(r, "0.0023"), "1e999 ", 6);
	expect_error(2, r, "not a finite number");
	row(r, sizeof r, 1, 2);
	memcpy(strstr(r, "0.0023"), "0x10  ", 6);
	expect_error(2, r, "not a finite number");
	row(r, sizeof r, 1, 2);
	r[0] = 'a';
	expect_error(2, r, "unit: 'a' is not an integer");
	row(r, sizeof r, 1, 2);
	r[2] = '-';
	expect_error(2, r, "cycle: '-' is not an integer");
	row(r, sizeof r, 1, 1);
	expect_error(2, r, "duplicate cycle");
	row(r, sizeof r, 1, 4);
	expect_error(2, r, "gap in cycles");
	row(r, sizeof r, 1, 1);
	expect_error(3, r, "cycle out of order");
	row(r, sizeof r, 2, 2);
	expect_error(4, r, "unit 2 starts at cycle 2, expected 1");
	row(r, sizeof r, 1, 1);
	expect_error(6, r, "unit 1 after unit 2"); /* an engine's rows must be together */
	row(r, sizeof r, 0, 1);
	expect_error(1, r, "unit: '0' is not an integer between 1");
	char longv[200];
	memset(longv, '1', sizeof longv - 1);
	longv[sizeof longv - 1] = '\0';
	row(r, sizeof r, 1, 2);
	char big[2048];
	snprintf(big, sizeof big, "%s %s", "1 2", longv);
	expect_error(2, big, "longer than 64 characters");
}

static void empty_nul_and_truncated_input(void **state)
{
	(void)state;
	struct cmapss d;
	char err[256];
	assert_int_equal(cmapss_parse("f.txt", "", 0, &d, err, sizeof err), MOTE_EMALFORMED);
	assert_non_null(strstr(err, "f.txt: no data rows"));
	assert_int_equal(cmapss_parse("f.txt", " \n\n", 3, &d, err, sizeof err), MOTE_EMALFORMED);
	char r[1024];
	row(r, sizeof r, 1, 1);
	r[10] = '\0';
	assert_int_equal(cmapss_parse("f.txt", r, strlen(r) + 3, &d, err, sizeof err),
			 MOTE_EMALFORMED);
	assert_non_null(strstr(err, "f.txt:1: NUL byte"));
	/* A row cut before its last value is short (cut inside it, it is a
	 * valid row with a shorter number: nothing can tell). */
	row(r, sizeof r, 1, 1);
	r[strlen(r) - 2] = '\0';
	size_t last = (size_t)(strrchr(r, ' ') - r);
	for (size_t n = 1; n <= last; n++) {
		enum mote_err rc = cmapss_parse("f.txt", r, n, &d, err, sizeof err);
		assert_int_equal(rc, MOTE_EMALFORMED);
		assert_non_null(strstr(err, "f.txt:1: "));
	}
	/* errlen 0 and a tiny buffer are fine */
	assert_int_equal(cmapss_parse("f.txt", "x", 1, &d, NULL, 0), MOTE_EMALFORMED);
	assert_int_equal(cmapss_parse("f.txt", "x", 1, &d, err, 4), MOTE_EMALFORMED);
	assert_int_equal(strlen(err), 3);
}

static void oversized_values_and_counts(void **state)
{
	(void)state;
	struct cmapss d;
	char err[256], r[1024];
	row(r, sizeof r, 1, 1);
	char big[1200];
	snprintf(big, sizeof big, "99999999999999999999%s", r + 1);
	assert_int_equal(cmapss_parse("f.txt", big, strlen(big), &d, err, sizeof err),
			 MOTE_EMALFORMED);
	assert_non_null(
	    strstr(err, "unit: '99999999999999999999' is not an integer between 1 and 1000000"));
	snprintf(big, sizeof big, "1 100001%s", strchr(r, ' ') + 2);
	assert_int_equal(cmapss_parse("f.txt", big, strlen(big), &d, err, sizeof err),
			 MOTE_EMALFORMED);
	/* one engine with many cycles is fine */
	int cycles[] = {2000};
	char *t = file_of(1, cycles);
	assert_int_equal(cmapss_parse("f.txt", t, strlen(t), &d, err, sizeof err), MOTE_OK);
	assert_int_equal(d.units[0].cycles, 2000);
	cmapss_free(&d);
	free(t);
}

static void truth_file(void **state)
{
	(void)state;
	double *v;
	size_t n;
	char err[256];
	const char *good = "112\n98 \r\n\n69\n";
	assert_int_equal(cmapss_parse_truth("t.txt", good, strlen(good), &v, &n, err, sizeof err),
			 MOTE_OK);
	assert_int_equal(n, 3);
	assert_true(v[0] == 112 && v[1] == 98 && v[2] == 69);
	free(v);
	const char *bad[] = {"1\n2 3\n", "1\n-2\n", "1\n2.5\n", "1\nabc\n", ""};
	const char *want[] = {"t.txt:2: more than one value", "t.txt:2: '-2' is not a RUL",
			      "t.txt:2: '2.5'", "t.txt:2: 'abc'", "t.txt: no values"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(
		    cmapss_parse_truth("t.txt", bad[i], strlen(bad[i]), &v, &n, err, sizeof err),
		    MOTE_EMALFORMED);
		if (!strstr(err, want[i]))
			fail_msg("'%s': got '%s'", bad[i], err);
		assert_null(v);
	}
}

static void load_missing_file(void **state)
{
	(void)state;
	struct cmapss d;
	char err[256];
	assert_int_equal(cmapss_load("/nonexistent/train.txt", &d, err, sizeof err),
			 MOTE_ENOTFOUND);
	assert_non_null(strstr(err, "/nonexistent/train.txt: cannot read"));
	char path[] = "/tmp/test_cmapss_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	int cycles[] = {2, 2};
	char *t = file_of(2, cycles);
	assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
	close(fd);
	assert_int_equal(cmapss_load(path, &d, err, sizeof err), MOTE_OK);
	assert_int_equal(d.nunits, 2);
	cmapss_free(&d);
	unlink(path);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(good_file_groups_engines),
	    cmocka_unit_test(crlf_tabs_blank_lines_and_no_final_newline),
	    cmocka_unit_test(bad_rows_name_file_and_line),
	    cmocka_unit_test(empty_nul_and_truncated_input),
	    cmocka_unit_test(oversized_values_and_counts),
	    cmocka_unit_test(truth_file),
	    cmocka_unit_test(load_missing_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
