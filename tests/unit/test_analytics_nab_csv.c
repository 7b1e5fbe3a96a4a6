/* test_analytics_nab_csv.c - the NAB CSV reader: good files, and every kind of bad one with its
 * line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/nab_csv.h"

static enum mote_err parse(const char *text, struct nab_series *s, struct nab_csv_error *e)
{
	return nab_csv_parse(text, strlen(text), s, e);
}

static void timestamps(void **state)
{
	(void)state;
	int64_t ms;
	assert_int_equal(nab_parse_timestamp("2014-04-01 00:00:00", 19, &ms), MOTE_OK);
	assert_true(ms == 1396310400000LL);
	assert_int_equal(nab_parse_timestamp("2014-04-01T00:00:01.5", 21, &ms), MOTE_OK);
	assert_true(ms == 1396310401500LL);
	assert_int_equal(nab_parse_timestamp("1970-01-01 00:00:00.123456", 26, &ms), MOTE_OK);
	assert_true(ms == 123);
	assert_int_equal(nab_parse_timestamp("2016-02-29 23:59:59", 19, &ms), MOTE_OK);
	assert_int_equal(nab_parse_timestamp("1969-12-31 23:59:59", 19, &ms), MOTE_OK);
	assert_true(ms == -1000);
	const char *bad[] = {"2015-02-29 00:00:00",
			     "2014-13-01 00:00:00",
			     "2014-04-31 00:00:00",
			     "2014-04-01 24:00:00",
			     "2014-04-01 00:60:00",
			     "2014-04-01",
			     "2014/04/01 00:00:00",
			     "2014-04-01 00:00:0x",
			     "2014-04-01 00:00:00.",
			     "2014-04-01 00:00:00Z",
			     "2014-04-01 00:00:00.1234567890",
			     "",
			     "-014-04-01 00:00:00",
			     "2014-00-01 00:00:00",
			     "2014-04-00 00:00:00"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(nab_parse_timestamp(bad[i], strlen(bad[i]), &ms), MOTE_EMALFORMED);
}

static void good_file(void **state)
{
	(void)state;
	struct nab_series s;
	struct nab_csv_error e;
	/* BOM, CRLF, extra columns in another order, blanks, quotes, no final newline */
	const char *text = "\xef\xbb\xbf"
			   "label,value,timestamp\r\n"
			   "0, 1.5 ,2014-04-01 00:00:00\r\n"
			   "\r\n"
			   "1,-2e3,\"2014-04-01 00:05:00\"\r\n"
			   "0,3,2014-04-01 00:05:00\n"
			   "0,4,2014-04-01 00:04:00\n"
			   "0,5,2014-04-01 02:00:00";
	assert_int_equal(parse(text, &s, &e), MOTE_OK);
	assert_int_equal(s.count, 5);
	assert_true(s.rows[0].value == 1.5);
	assert_true(s.rows[1].value == -2000.0);
	assert_int_equal(s.rows[1].line, 4);
	assert_int_equal(s.rows[1].ts_len, 19);
	assert_memory_equal(s.rows[1].ts_text, "2014-04-01 00:05:00", 19);
	assert_int_equal(s.duplicates, 1);
	assert_int_equal(s.out_of_order, 1);
	assert_int_equal(s.first_warning_line, 5);
	assert_int_equal(s.gaps, 1);
	nab_series_free(&s);
}

struct bad_case {
	const char *text;
	enum mote_err rc;
	uint32_t line;
	const char *says;
};

static void bad_files_name_the_line(void **state)
{
	(void)state;
	const struct bad_case cases[] = {
	    {"", MOTE_EMALFORMED, 0, "empty"},
	    {"\n\n", MOTE_EMALFORMED, 2, "empty"},
	    {"timestamp,value\n", MOTE_EMALFORMED, 1, "no data rows"},
	    {"time,value\n2014-04-01 00:00:00,1\n", MOTE_EMALFORMED, 1, "timestamp and value"},
	    {"timestamp,val\n2014-04-01 00:00:00,1\n", MOTE_EMALFORMED, 1, "timestamp and value"},
	    {"timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00\n", MOTE_EMALFORMED, 3,
	     "found 1"},
	    {"timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n", MOTE_EMALFORMED,
	     3, "\"abc\" is not a finite number"},
	    {"timestamp,value\n2014-04-01 00:00:00,nan\n", MOTE_EMALFORMED, 2, "finite"},
	    {"timestamp,value\n2014-04-01 00:00:00,inf\n", MOTE_EMALFORMED, 2, "finite"},
	    {"timestamp,value\n2014-04-01 00:00:00,1e999\n", MOTE_EMALFORMED, 2, "finite"},
	    {"timestamp,value\n2014-04-01 00:00:00,1.5x\n", MOTE_EMALFORMED, 2, "finite"},
	    {"timestamp,value\n2014-04-01 00:00:00,\n", MOTE_EMALFORMED, 2, "finite"},
	    {"timestamp,value\n2014-04-01 00:00:00,1\nyesterday,2\n", MOTE_EMALFORMED, 3,
	     "bad timestamp \"yesterday\""},
	    /* a truncated file: the last row cut in the middle of its timestamp */
	    {"timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:0", MOTE_EMALFORMED, 3,
	     "found 1"},
	    {"timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:0,3", MOTE_EMALFORMED, 3,
	     "bad timestamp"},
	    {"timestamp,value\n,,,\n", MOTE_EMALFORMED, 2, "bad timestamp"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct nab_series s;
		struct nab_csv_error e;
		enum mote_err rc = parse(cases[i].text, &s, &e);
		if (rc != cases[i].rc || e.line != cases[i].line || !strstr(e.msg, cases[i].says))
			fail_msg("case %zu: rc %d line %u msg '%s'", i, rc, e.line, e.msg);
		assert_null(s.rows);
		assert_int_equal(s.count, 0);
	}
}

static void hostile_input(void **state)
{
	(void)state;
	struct nab_series s;
	struct nab_csv_error e;
	/* a NUL byte */
	const char nul[] = "timestamp,value\n2014-04-01 00:00:00,1\0\n";
	assert_int_equal(nab_csv_parse(nul, sizeof nul - 1, &s, &e), MOTE_EMALFORMED);
	assert_non_null(strstr(e.msg, "NUL"));
	/* an oversized line */
	size_t big = NAB_CSV_MAX_LINE + 100;
	char *text = malloc(big + 64);
	assert_non_null(text);
	int n = snprintf(text, 64, "timestamp,value\n2014-04-01 00:00:00,");
	memset(text + n, '1', big);
	text[n + big] = '\n';
	assert_int_equal(nab_csv_parse(text, (size_t)n + big + 1, &s, &e), MOTE_ETOOBIG);
	assert_int_equal(e.line, 2);
	/* a value exactly as long as a line may be: converts without overflow */
	size_t fit = NAB_CSV_MAX_LINE - 20;
	memset(text + n, '0', fit);
	text[n + fit - 1] = '7';
	assert_int_equal(nab_csv_parse(text, (size_t)n + fit, &s, &e), MOTE_OK);
	assert_true(s.rows[0].value == 7.0);
	nab_series_free(&s);
	free(text);
	/* too many fields */
	char wide[512] = "timestamp,value";
	for (int i = 0; i < 80; i++)
		strcat(wide, ",x");
	strcat(wide, "\n");
	assert_int_equal(parse(wide, &s, &e), MOTE_EMALFORMED);
	assert_int_equal(e.line, 1);
	/* binary junk without newlines is one long line or one bad header */
	char junk[300];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (char)(0x80 + i % 100);
	assert_int_equal(nab_csv_parse(junk, sizeof junk, &s, &e), MOTE_EMALFORMED);
	assert_int_equal(e.line, 1);
	/* many rows: the table grows and every row is kept in order */
	size_t rows = 20000, cap = rows * 40 + 32, len = 0;
	char *many = malloc(cap);
	assert_non_null(many);
	len += (size_t)snprintf(many, cap, "timestamp,value\n");
	for (size_t i = 0; i < rows; i++)
		len += (size_t)snprintf(many + len, cap - len, "2014-04-%02zu %02zu:%02zu:00,%zu\n",
					1 + i / 1440, i / 60 % 24, i % 60, i);
	assert_int_equal(nab_csv_parse(many, len, &s, &e), MOTE_OK);
	assert_int_equal(s.count, rows);
	assert_true(s.rows[rows - 1].value == (double)(rows - 1));
	assert_int_equal(s.duplicates + s.out_of_order + s.gaps, 0);
	nab_series_free(&s);
	free(many);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(timestamps),
	    cmocka_unit_test(good_file),
	    cmocka_unit_test(bad_files_name_the_line),
	    cmocka_unit_test(hostile_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
