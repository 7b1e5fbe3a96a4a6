/* test_store_telemetry.c - decoding SenML and plain JSON telemetry, good and hostile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/block.h"
#include "store/telemetry.h"

#define NOW 1733380000000LL /* 2024-12-05T06:26:40Z */

static struct telemetry_batch b;
static char err[256];

static enum mote_err dec(const char *json)
{
	struct telemetry_limits lim;
	telemetry_limits_defaults(&lim);
	return telemetry_decode((const uint8_t *)json, strlen(json), NOW, &lim, &b, err, sizeof err);
}

static int teardown(void **state)
{
	(void)state;
	telemetry_batch_clear(&b);
	return 0;
}

static void senml_base_fields(void **state)
{
	(void)state;
	const char *j = "[{\"bn\":\"dev1/\",\"bt\":1733380000,\"bu\":\"Cel\",\"bver\":10,"
			"\"n\":\"temp\",\"v\":21.5},"
			"{\"n\":\"temp\",\"t\":10,\"v\":22},"
			"{\"n\":\"hum\",\"u\":\"%RH\",\"t\":-5.5,\"v\":40},"
			"{\"bn\":\"\",\"n\":\"door\",\"vb\":true},"
			"{\"n\":\"label\",\"vs\":\"hello\"},"
			"{\"n\":\"blob\",\"vd\":\"aGk\"},"
			"{\"bv\":100,\"n\":\"count\",\"v\":5}]";
	assert_int_equal(dec(j), MOTE_OK);
	assert_int_equal(b.n, 5);
	assert_string_equal(b.pts[0].metric, "dev1/temp");
	assert_int_equal(b.pts[0].ts_ms, 1733380000000LL);
	assert_true(b.pts[0].value == 21.5);
	assert_string_equal(b.pts[1].metric, "dev1/temp");
	assert_int_equal(b.pts[1].ts_ms, 1733380010000LL);
	assert_string_equal(b.pts[2].metric, "dev1/hum");
	assert_int_equal(b.pts[2].ts_ms, 1733379994500LL);
	assert_string_equal(b.pts[3].metric, "door"); /* bn changed to "" */
	assert_true(b.pts[3].value == 1.0);
	assert_string_equal(b.pts[4].metric, "count");
	assert_true(b.pts[4].value == 105.0); /* bv + v */
	assert_int_equal(b.pts[4].ts_ms, 1733380000000LL);
}

static void senml_relative_times(void **state)
{
	(void)state;
	/* no time: now; t < 2^28: relative to now; a negative t: in the past */
	assert_int_equal(dec("[{\"n\":\"a\",\"v\":1},{\"n\":\"a\",\"t\":-60,\"v\":2},"
			     "{\"n\":\"a\",\"t\":1.25,\"v\":3},{\"n\":\"a\",\"bt\":-10,\"t\":5,\"v\":4}]"),
			 MOTE_OK);
	assert_int_equal(b.n, 4);
	assert_int_equal(b.pts[0].ts_ms, NOW);
	assert_int_equal(b.pts[1].ts_ms, NOW - 60000);
	assert_int_equal(b.pts[2].ts_ms, NOW + 1250);
	assert_int_equal(b.pts[3].ts_ms, NOW - 5000);
	/* 2^28 exactly is absolute (1978) */
	assert_int_equal(dec("[{\"n\":\"a\",\"t\":268435456,\"v\":1}]"), MOTE_OK);
	assert_int_equal(b.pts[0].ts_ms, 268435456000LL);
}

static void senml_skips_and_sums(void **state)
{
	(void)state;
	/* only strings, data, sums: nothing to store, not an error */
	assert_int_equal(dec("[{\"n\":\"a\",\"vs\":\"x\"},{\"n\":\"b\",\"s\":3},{\"bn\":\"x\"}]"),
			 MOTE_OK);
	assert_int_equal(b.n, 0);
	/* an unknown field is ignored, one ending in '_' must be understood */
	assert_int_equal(dec("[{\"n\":\"a\",\"v\":1,\"foo\":[1,2]}]"), MOTE_OK);
	assert_int_equal(b.n, 1);
	assert_int_equal(dec("[{\"n\":\"a\",\"v\":1,\"foo_\":1}]"), MOTE_EPROTO);
	assert_non_null(strstr(err, "foo_"));
	assert_int_equal(b.n, 0);
}

static void senml_wrong_types(void **state)
{
	(void)state;
	static const struct {
		const char *json, *words;
	} cases[] = {
		{ "[{\"n\":\"a\",\"v\":\"1\"}]", "record 0: \"v\" is a string, not a number" },
		{ "[{\"n\":1,\"v\":1}]", "record 0: \"n\" is a number, not a string" },
		{ "[{\"bn\":null,\"v\":1}]", "\"bn\" is null" },
		{ "[{\"n\":\"a\",\"v\":1},{\"n\":\"a\",\"t\":\"now\",\"v\":1}]", "record 1: \"t\"" },
		{ "[{\"n\":\"a\",\"vb\":1}]", "\"vb\" is a number, not a boolean" },
		{ "[{\"n\":\"a\",\"v\":1,\"vb\":true}]", "both" },
		{ "[{\"n\":\"a\",\"v\":1},2]", "record 1 is a number, not an object" },
		{ "[[]]", "record 0 is an array" },
		{ "[{\"n\":\"a\",\"v\":1,\"u\":5}]", "\"u\" is a number" },
		{ "[{\"n\":\"a\",\"v\":{}}]", "\"v\" is an object" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum mote_err e = dec(cases[i].json);
		assert_true(e == MOTE_EINVAL || e == MOTE_EMALFORMED);
		if (!strstr(err, cases[i].words))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].words);
		assert_int_equal(b.n, 0);
	}
}

static void senml_names(void **state)
{
	(void)state;
	assert_int_equal(dec("[{\"v\":1}]"), MOTE_EINVAL); /* empty after concatenation */
	assert_non_null(strstr(err, "name is empty"));
	assert_int_equal(dec("[{\"n\":\"temp C\",\"v\":1}]"), MOTE_EINVAL);
	assert_non_null(strstr(err, "letters, digits"));
	assert_int_equal(dec("[{\"n\":\"-x\",\"v\":1}]"), MOTE_EINVAL); /* must start alnum */
	assert_int_equal(dec("[{\"n\":\"a\\u0000b\",\"v\":1}]"), MOTE_OK); /* cJSON stops at NUL */
	assert_int_equal(dec("[{\"n\":\"\\u00e9t\\u00e9\",\"v\":1}]"), MOTE_EINVAL);
	assert_int_equal(dec("[{\"n\":\"a\\n\",\"v\":1}]"), MOTE_EINVAL);
	assert_non_null(strstr(err, "\\x0a")); /* control bytes are escaped in messages */
	assert_int_equal(dec("[{\"n\":\"urn:dev:mac:0024befffe804ff1/temp_1.x\",\"v\":1}]"), MOTE_OK);
	/* 64 bytes fit, 65 do not, also across bn + n */
	char j[400];
	char name[80];
	memset(name, 'x', 64);
	name[64] = 0;
	snprintf(j, sizeof j, "[{\"n\":\"%s\",\"v\":1}]", name);
	assert_int_equal(dec(j), MOTE_OK);
	name[63] = 0;
	snprintf(j, sizeof j, "[{\"bn\":\"ab\",\"n\":\"%s\",\"v\":1}]", name);
	assert_int_equal(dec(j), MOTE_ETOOBIG);
	assert_non_null(strstr(err, "longer than 64"));
	memset(name, 'y', 70);
	name[70] = 0;
	snprintf(j, sizeof j, "[{\"bn\":\"%s\",\"v\":1}]", name);
	assert_int_equal(dec(j), MOTE_ETOOBIG);
}

static void senml_times_and_values_out_of_range(void **state)
{
	(void)state;
	assert_int_equal(dec("[{\"n\":\"a\",\"v\":1e999}]"), MOTE_EINVAL); /* inf */
	assert_non_null(strstr(err, "finite"));
	assert_int_equal(dec("[{\"n\":\"a\",\"v\":-1e400}]"), MOTE_EINVAL);
	assert_int_equal(dec("[{\"n\":\"a\",\"v\":1.7e308,\"bv\":1.7e308}]"), MOTE_EINVAL);
	assert_int_equal(dec("[{\"n\":\"a\",\"v\":NaN}]"), MOTE_EMALFORMED);
	assert_int_equal(dec("[{\"n\":\"a\",\"t\":1e300,\"v\":1}]"), MOTE_EINVAL);
	assert_int_equal(dec("[{\"n\":\"a\",\"t\":-1e300,\"v\":1}]"), MOTE_EINVAL);
	assert_int_equal(dec("[{\"n\":\"a\",\"t\":-1e10,\"v\":1}]"), MOTE_EINVAL); /* before 1970 */
	assert_non_null(strstr(err, "before 1970"));
	/* more than a day ahead */
	assert_int_equal(dec("[{\"n\":\"a\",\"t\":90000,\"v\":1}]"), MOTE_EINVAL);
	assert_non_null(strstr(err, "future"));
	assert_int_equal(dec("[{\"n\":\"a\",\"t\":80000,\"v\":1}]"), MOTE_OK);
	assert_int_equal(dec("[{\"n\":\"a\",\"v\":123456789012345678901234567890}]"), MOTE_OK);
	assert_true(b.pts[0].value > 1.2e29);
	assert_int_equal(dec("[{\"n\":\"a\",\"v\":-0.0}]"), MOTE_OK);
}

static void senml_limits(void **state)
{
	(void)state;
	assert_int_equal(dec("[]"), MOTE_EINVAL);
	assert_non_null(strstr(err, "empty"));
	/* 1000 records fit, 1001 do not; 10k are refused quickly */
	size_t cap = 10001 * 32 + 16;
	char *j = malloc(cap);
	for (int n = 1000; n <= 10000; n += (n == 1000 ? 1 : 8999)) {
		size_t o = 0;
		j[o++] = '[';
		for (int i = 0; i < n; i++)
			o += (size_t)snprintf(j + o, cap - o, "%s{\"n\":\"m%d\",\"v\":%d}", i ? "," : "",
					      i % 7, i);
		j[o++] = ']';
		j[o] = 0;
		enum mote_err e = dec(j);
		if (n == 1000) {
			assert_int_equal(e, MOTE_OK);
			assert_int_equal(b.n, 1000);
			assert_string_equal(b.pts[999].metric, "m5");
			assert_true(b.pts[999].value == 999);
		} else {
			assert_int_equal(e, MOTE_ETOOBIG);
			assert_int_equal(b.n, 0);
		}
	}
	free(j);
	/* a lower limit from the caller */
	struct telemetry_limits lim = { .max_points = 2, .max_future_ms = 0 };
	const char *three = "{\"a\":1,\"b\":2,\"c\":3}";
	assert_int_equal(telemetry_decode((const uint8_t *)three, strlen(three), NOW, &lim, &b, err,
					  sizeof err),
			 MOTE_ETOOBIG);
	assert_non_null(strstr(err, "more than 2 points"));
	/* max_future 0: a point 1 ms ahead is refused */
	const char *ahead = "{\"a\":1,\"ts\":1733380000001}";
	assert_int_equal(telemetry_decode((const uint8_t *)ahead, strlen(ahead), NOW, &lim, &b, err,
					  sizeof err),
			 MOTE_EINVAL);
}

static void plain_objects(void **state)
{
	(void)state;
	assert_int_equal(dec("{\"temp\":21.5,\"on\":true,\"off\":false,\"ts\":1733380000000,"
			     "\"name\":\"x\",\"n\":null,\"arr\":[1,2],"
			     "\"pos\":{\"lat\":47.5,\"lon\":8.5,\"alt\":{\"m\":400}}}"),
			 MOTE_OK);
	assert_int_equal(b.n, 6);
	assert_string_equal(b.pts[0].metric, "temp");
	assert_int_equal(b.pts[0].ts_ms, 1733380000000LL);
	assert_true(b.pts[1].value == 1.0);
	assert_true(b.pts[2].value == 0.0);
	assert_string_equal(b.pts[3].metric, "pos.lat");
	assert_string_equal(b.pts[5].metric, "pos.alt.m");
	assert_true(b.pts[5].value == 400);
	/* ts in seconds (below 1e11), with a fraction */
	assert_int_equal(dec("{\"a\":1,\"ts\":1733380000.5}"), MOTE_OK);
	assert_int_equal(b.pts[0].ts_ms, 1733380000500LL);
	/* ts as RFC 3339 */
	assert_int_equal(dec("{\"a\":1,\"ts\":\"2024-12-05T06:26:40.250Z\"}"), MOTE_OK);
	assert_int_equal(b.pts[0].ts_ms, NOW + 250);
	assert_int_equal(dec("{\"a\":1,\"ts\":\"2024-12-05T07:26:40+01:00\"}"), MOTE_OK);
	assert_int_equal(b.pts[0].ts_ms, NOW);
	/* no ts: now; a nested "ts" is a metric */
	assert_int_equal(dec(" \n{\"x\":{\"ts\":5}} \n"), MOTE_OK);
	assert_int_equal(b.n, 1);
	assert_string_equal(b.pts[0].metric, "x.ts");
	assert_int_equal(b.pts[0].ts_ms, NOW);
	/* only strings: nothing to store */
	assert_int_equal(dec("{\"state\":\"ok\"}"), MOTE_OK);
	assert_int_equal(b.n, 0);
}

static void plain_hostile(void **state)
{
	(void)state;
	static const struct {
		const char *json;
		enum mote_err e;
		const char *words;
	} cases[] = {
		{ "{}", MOTE_EINVAL, "empty" },
		{ "{\"ts\":1733380000}", MOTE_EINVAL, "only \"ts\"" },
		{ "{\"a\":1,\"ts\":true}", MOTE_EINVAL, "\"ts\" is a boolean" },
		{ "{\"a\":1,\"ts\":-5}", MOTE_EINVAL, "out of range" },
		{ "{\"a\":1,\"ts\":1e300}", MOTE_EINVAL, "out of range" },
		{ "{\"a\":1,\"ts\":\"yesterday\"}", MOTE_EINVAL, "RFC 3339" },
		{ "{\"a\":1,\"ts\":\"2024-02-30T00:00:00Z\"}", MOTE_EINVAL, "RFC 3339" },
		{ "{\"a\":1,\"ts\":\"2024-12-05T06:26:40\"}", MOTE_EINVAL, "RFC 3339" },
		{ "{\"a\":1,\"ts\":\"2024-12-05T06:26:40Zjunk\"}", MOTE_EINVAL, "RFC 3339" },
		{ "{\"\":1}", MOTE_EINVAL, "empty name" },
		{ "{\"a b\":1}", MOTE_EINVAL, "letters, digits" },
		{ "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}}}", MOTE_EINVAL, "deeper than 4" },
		{ "{\"a\":1e999}", MOTE_EINVAL, "finite" },
		{ "{\"a\":1,}", MOTE_EMALFORMED, "not valid JSON" },
		{ "{\"a\":1", MOTE_EMALFORMED, "not valid JSON" },
		{ "{\"a\":1}x", MOTE_EMALFORMED, "after the JSON" },
		{ "{\"a\":1}{}", MOTE_EMALFORMED, "after the JSON" },
		{ "", MOTE_EMALFORMED, "empty" },
		{ "   ", MOTE_EMALFORMED, "empty" },
		{ "21.5", MOTE_EMALFORMED, "neither" },
		{ "\"x\"", MOTE_EMALFORMED, "neither" },
		{ "hello", MOTE_EMALFORMED, "neither" },
		{ "[", MOTE_EMALFORMED, "not valid JSON" },
		{ "[{\"n\":\"a\",\"v\":1}", MOTE_EMALFORMED, "not valid JSON" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum mote_err e = dec(cases[i].json);
		if (e != cases[i].e || !strstr(err, cases[i].words))
			fail_msg("case %zu (%s): %d \"%s\", want %d \"%s\"", i, cases[i].json, e, err,
				 cases[i].e, cases[i].words);
		assert_int_equal(b.n, 0);
	}
	/* a long nested name */
	char j[300];
	char k[60];
	memset(k, 'k', 40);
	k[40] = 0;
	snprintf(j, sizeof j, "{\"%s\":{\"%s\":1}}", k, k);
	assert_int_equal(dec(j), MOTE_ETOOBIG);
	/* NUL bytes inside the payload */
	static const char nul[] = "{\"a\":1}\0{}";
	assert_int_equal(telemetry_decode((const uint8_t *)nul, sizeof nul - 1, NOW, NULL, &b, err,
					  sizeof err),
			 MOTE_EMALFORMED);
}

static void deep_nesting(void **state)
{
	(void)state;
	/* 100k brackets: cJSON's nesting limit refuses it without a deep recursion */
	size_t n = 100000;
	char *j = malloc(2 * n + 1);
	memset(j, '[', n);
	memset(j + n, ']', n);
	j[2 * n] = 0;
	assert_int_equal(dec(j), MOTE_EMALFORMED);
	size_t o = 0;
	for (size_t i = 0; i < 600; i++)
		o += (size_t)sprintf(j + o, "{\"a\":");
	o += (size_t)sprintf(j + o, "1");
	for (size_t i = 0; i < 600; i++)
		j[o++] = '}';
	j[o] = 0;
	assert_int_equal(dec(j), MOTE_EINVAL);
	assert_non_null(strstr(err, "deeper"));
	free(j);
}

static void rfc3339(void **state)
{
	(void)state;
	int64_t ms;
	assert_true(telemetry_parse_rfc3339("1970-01-01T00:00:00Z", &ms));
	assert_int_equal(ms, 0);
	assert_true(telemetry_parse_rfc3339("2000-02-29t12:00:00.5-02:30", &ms));
	assert_int_equal(ms, 951825600000LL + 500 + 9000000);
	assert_true(telemetry_parse_rfc3339("2016-12-31 23:59:60Z", &ms)); /* leap second */
	assert_false(telemetry_parse_rfc3339("2023-02-29T00:00:00Z", &ms));
	assert_false(telemetry_parse_rfc3339("2024-12-05T24:00:00Z", &ms));
	assert_false(telemetry_parse_rfc3339("2024-12-05T06:26:40.Z", &ms));
	assert_false(telemetry_parse_rfc3339("2024-12-05T06:26:40+1:00", &ms));
	assert_false(telemetry_parse_rfc3339("2024-12-05", &ms));
	assert_false(telemetry_parse_rfc3339("", &ms));
}

/* every prefix of a valid payload is refused with a sentence (none is valid JSON) */
static void truncated_everywhere(void **state)
{
	(void)state;
	static const char *const full[] = {
		"[{\"bn\":\"d/\",\"bt\":1733380000,\"n\":\"t\",\"v\":21.5},{\"n\":\"h\",\"vb\":false}]",
		"{\"temp\":21.5,\"pos\":{\"lat\":47.5},\"ts\":\"2024-12-05T06:26:40Z\"}",
	};
	for (size_t k = 0; k < 2; k++) {
		size_t len = strlen(full[k]);
		assert_int_equal(telemetry_decode((const uint8_t *)full[k], len, NOW, NULL, &b, err,
						  sizeof err),
				 MOTE_OK);
		for (size_t cut = 0; cut < len; cut++) {
			err[0] = 0;
			enum mote_err e = telemetry_decode((const uint8_t *)full[k], cut, NOW, NULL, &b, err,
							   sizeof err);
			if (e == MOTE_OK || !err[0] || b.n)
				fail_msg("prefix %zu of payload %zu: %d \"%s\"", cut, k, e, err);
		}
	}
}

/* the reused batch keeps working after errors and big payloads */
static void batch_reuse(void **state)
{
	(void)state;
	for (int i = 0; i < 50; i++) {
		assert_int_equal(dec("[{\"bn\":\"a-very-long-base-name-for-the-arena/\",\"n\":\"x\",\"v\":1},"
				     "{\"n\":\"y\",\"v\":2}]"),
				 MOTE_OK);
		assert_string_equal(b.pts[1].metric, "a-very-long-base-name-for-the-arena/y");
		assert_int_equal(dec("[{\"n\":\"a\",\"v\":true}]"), MOTE_EINVAL);
	}
}

/* numbers out: shortest for few decimals, exact always */
static void format_values(void **state)
{
	(void)state;
	static const struct {
		double v;
		const char *s;
	} cases[] = { { 21.53, "21.53" }, { 20, "20" }, { -0.5, "-0.5" }, { 0, "0" },
		      { 0.001, "0.001" }, { -12.000001, "-12.000001" }, { 1e14, "100000000000000" },
		      { 123456.5, "123456.5" }, { 0.1 + 0.2, "0.30000000000000004" },
		      { 1e300, "1e+300" }, { 1e-7, "1e-07" }, { -0.0, "-0" } };
	char buf[32];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = telemetry_format_value(cases[i].v, buf);
		assert_string_equal(buf, cases[i].s);
		assert_int_equal(n, strlen(cases[i].s));
	}
	assert_int_equal(telemetry_format_value(NAN, buf), 0);
	assert_string_equal(buf, "null");
	assert_int_equal(telemetry_format_value(-INFINITY, buf), 0);
	/* every value reads back bit for bit */
	uint64_t x = 88172645463325252u;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double v;
		if (i % 3 == 0)
			v = (double)(int64_t)(x % 2000001) / 100.0 - 10000; /* two decimals */
		else if (i % 3 == 1)
			v = (double)(int64_t)(x % 20000001) / 1000000.0;
		else
			memcpy(&v, &x, sizeof v);
		if (!isfinite(v))
			continue;
		telemetry_format_value(v, buf);
		double back = strtod(buf, NULL);
		if (memcmp(&back, &v, sizeof v) != 0)
			fail_msg("%.17g printed as %s", v, buf);
	}
}

/* the block codec: round trips of every kind, and damaged blocks refused */
static void block_codec(void **state)
{
	(void)state;
	enum { N = 1024 };
	static int64_t ts[N], ts2[N];
	static double v[N], v2[N];
	static uint8_t buf[BLOCK_BOUND(N)];
	size_t n;
	for (int kind = 0; kind < 5; kind++) {
		for (int i = 0; i < N; i++) {
			ts[i] = NOW + i * 1000 + (kind == 1 ? (i * 7919) % 13 : 0);
			switch (kind) {
			case 0: v[i] = 21.5; break;
			case 1: v[i] = 20 + (i % 100) / 100.0; break;          /* two decimals */
			case 2: v[i] = sin(i) * 1e6; break;                    /* arbitrary */
			case 3: v[i] = i % 2 ? -0.0 : 1e308; break;
			default: ts[i] = i % 2 ? INT64_MIN : INT64_MAX; v[i] = -(double)i * 3; break;
			}
		}
		size_t len = block_encode(ts, v, N, buf);
		assert_true(len <= BLOCK_BOUND(N));
		if (kind == 0)
			assert_true(len < 2 * N + 16); /* steady time, constant value: 2 bytes */
		if (kind == 1)
			assert_true(len < 3 * N + 16);
		assert_int_equal(block_decode(buf, len, ts2, v2, N, &n), MOTE_OK);
		assert_int_equal(n, N);
		assert_memory_equal(ts, ts2, sizeof ts);
		assert_memory_equal(v, v2, sizeof v); /* bit for bit, -0.0 included */
		/* every truncation and every single-byte change is refused or decodes in bounds */
		for (size_t cut = 0; cut < len; cut += 1 + cut / 8)
			assert_int_not_equal(block_decode(buf, cut, ts2, v2, N, &n), MOTE_OK);
		for (size_t i = 0; i < len; i += 1 + i / 16) {
			buf[i] ^= 0x5a;
			(void)block_decode(buf, len, ts2, v2, N, &n);
			buf[i] ^= 0x5a;
		}
	}
	static const uint8_t bad[][6] = { { 2, 0, 1, 0, 0, 0 },    { 1, 8, 1, 0, 0x80, 0 },
					  { 1, 0, 1, 0, 0x90, 0 }, { 1, 0, 2, 0, 0x80, 0 },
					  { 1, 0, 0xff, 0xff, 0xff, 0xff } };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_not_equal(block_decode(bad[i], 6, ts2, v2, N, &n), MOTE_OK);
	/* an empty block */
	size_t len = block_encode(ts, v, 0, buf);
	assert_int_equal(block_decode(buf, len, ts2, v2, N, &n), MOTE_OK);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(senml_base_fields, teardown),
		cmocka_unit_test_teardown(senml_relative_times, teardown),
		cmocka_unit_test_teardown(senml_skips_and_sums, teardown),
		cmocka_unit_test_teardown(senml_wrong_types, teardown),
		cmocka_unit_test_teardown(senml_names, teardown),
		cmocka_unit_test_teardown(senml_times_and_values_out_of_range, teardown),
		cmocka_unit_test_teardown(senml_limits, teardown),
		cmocka_unit_test_teardown(plain_objects, teardown),
		cmocka_unit_test_teardown(plain_hostile, teardown),
		cmocka_unit_test_teardown(deep_nesting, teardown),
		cmocka_unit_test(rfc3339),
		cmocka_unit_test_teardown(truncated_everywhere, teardown),
		cmocka_unit_test_teardown(batch_reuse, teardown),
		cmocka_unit_test(format_values),
		cmocka_unit_test(block_codec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
