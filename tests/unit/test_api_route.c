/*
 * test_api_route.c - the API's request parsing without a server: the
 * request target (%-decoding, hostile bytes, limits), the route table
 * (every route reachable, 404 against 405 + Allow), query checks (unknown
 * and repeated parameters), the value parsers (Unix ms and RFC 3339 edge
 * cases, intervals, limits, aggregations), the telemetry query and SSE
 * filters with their sentences, and the OpenAPI document against the
 * route table in both directions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "api/route.h"

static struct api_uri parse_ok(const char *raw)
{
	struct api_uri u;
	char err[300];
	enum mote_err e = api_uri_parse(raw, strlen(raw), &u, err, sizeof err);
	if (e != MOTE_OK)
		fail_msg("%s: %s", raw, err);
	return u;
}

static void parse_bad(const char *raw, size_t len, const char *needle)
{
	struct api_uri u;
	char err[300];
	enum mote_err e = api_uri_parse(raw, len, &u, err, sizeof err);
	if (e != MOTE_EMALFORMED)
		fail_msg("'%.*s' was accepted", (int)len, raw);
	assert_null(u.buf);
	if (needle && !strstr(err, needle))
		fail_msg("'%s' does not say '%s'", err, needle);
}

static void test_uri_basic(void **state)
{
	(void)state;
	struct api_uri u = parse_ok("/api/v1/devices/pump-7/telemetry?metric=temp&from=1&agg=avg");
	assert_int_equal(u.nseg, 5);
	assert_string_equal(u.seg[3], "pump-7");
	assert_int_equal(u.nq, 3);
	assert_string_equal(api_query_get(&u, "metric"), "temp");
	assert_string_equal(api_query_get(&u, "agg"), "avg");
	assert_null(api_query_get(&u, "to"));
	api_uri_free(&u);

	u = parse_ok("/");
	assert_int_equal(u.nseg, 0);
	api_uri_free(&u);

	/* %-escapes decode inside one segment: %2F does not split */
	u = parse_ok("/api/v1/devices/a%2Fb%2d1");
	assert_int_equal(u.nseg, 4);
	assert_string_equal(u.seg[3], "a/b-1");
	api_uri_free(&u);

	/* '+' is a space in the query only; a bare key has value "" */
	parse_bad("/a+b?q=x+y%2B&flag&&=", strlen("/a+b?q=x+y%2B&flag&&="), "no name");
	u = parse_ok("/a+b?q=x+y%2B&flag&&");
	assert_string_equal(u.seg[0], "a+b");
	assert_string_equal(api_query_get(&u, "q"), "x y+");
	assert_string_equal(api_query_get(&u, "flag"), "");
	assert_int_equal(u.nq, 2);
	api_uri_free(&u);

	/* one trailing slash is ignored; an empty middle segment is kept */
	u = parse_ok("/api/v1/devices/");
	assert_int_equal(u.nseg, 3);
	api_uri_free(&u);
	u = parse_ok("/api//v1");
	assert_int_equal(u.nseg, 3);
	assert_string_equal(u.seg[1], "");
	api_uri_free(&u);
	/* UTF-8 passes through */
	u = parse_ok("/x?name=%C3%A9t%C3%A9");
	assert_string_equal(api_query_get(&u, "name"), "\xc3\xa9t\xc3\xa9");
	api_uri_free(&u);
}

static void test_uri_hostile(void **state)
{
	(void)state;
	parse_bad("", 0, "start with '/'");
	parse_bad("api/v1", 6, "start with '/'");
	parse_bad("*", 1, NULL);
	parse_bad("/a%", 3, "truncated");
	parse_bad("/a%4", 4, "truncated");
	parse_bad("/a%G1", 5, "invalid");
	parse_bad("/a%00b", 6, "NUL");
	parse_bad("/a?x=%00", 8, "NUL");
	parse_bad("/a?x=%0a", 8, "control");
	parse_bad("/a?x=1%", 7, "truncated");
	parse_bad("/a\x01", 3, "control");
	parse_bad("/a#frag", 7, "'#'");
	/* an embedded NUL byte in the raw target */
	parse_bad("/a\0b", 4, "control");
	parse_bad("/1/2/3/4/5/6/7/8/9", 18, "segments");
	char many[2048] = "/x?";
	for (int i = 0; i < API_MAX_QUERY + 1; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "k%d=v&", i);
	parse_bad(many, strlen(many), "query parameters");
	/* too long */
	size_t n = API_URI_MAX + 10;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'a', n);
	big[0] = '/';
	big[n] = '\0';
	parse_bad(big, n, "longer");
	/* at the limit it passes (one segment of 8191 bytes) */
	struct api_uri u;
	char err[200];
	assert_int_equal(api_uri_parse(big, API_URI_MAX, &u, err, sizeof err), MOTE_OK);
	assert_int_equal(strlen(u.seg[0]), API_URI_MAX - 1);
	api_uri_free(&u);
	/* a huge value made of escapes decodes to a third of its size */
	memcpy(big, "/?x=", 4);
	size_t m = 4;
	while (m + 3 <= API_URI_MAX) {
		memcpy(big + m, "%41", 3);
		m += 3;
	}
	assert_int_equal(api_uri_parse(big, m, &u, err, sizeof err), MOTE_OK);
	assert_int_equal(strlen(api_query_get(&u, "x")), (m - 4) / 3);
	api_uri_free(&u);
	free(big);
}

static void test_routes(void **state)
{
	(void)state;
	/* every route is reachable by its own method and path */
	for (size_t i = 0; i < api_nroutes; i++) {
		char path[256];
		const char *p = api_routes[i].path;
		const char *brace = strstr(p, "{id}");
		if (brace)
			snprintf(path, sizeof path, "%.*sdev-1%s", (int)(brace - p), p, brace + 4);
		else
			snprintf(path, sizeof path, "%s", p);
		struct api_uri u = parse_ok(path);
		const struct api_route *r = NULL;
		const char *id = NULL;
		char allow[64];
		assert_int_equal(api_route_find(api_routes[i].method, &u, &r, &id, allow, sizeof allow),
				 API_MATCH_OK);
		assert_ptr_equal(r, &api_routes[i]);
		if (brace)
			assert_string_equal(id, "dev-1");
		else
			assert_null(id);
		api_uri_free(&u);
	}
	struct api_uri u = parse_ok("/api/v1/devices/x");
	const struct api_route *r;
	const char *id;
	char allow[64];
	assert_int_equal(api_route_find("PUT", &u, &r, &id, allow, sizeof allow), API_MATCH_NO_METHOD);
	assert_string_equal(allow, "GET, PATCH, DELETE");
	assert_int_equal(api_route_find("get", &u, &r, &id, allow, sizeof allow), API_MATCH_NO_METHOD);
	api_uri_free(&u);
	u = parse_ok("/api/v1/devices");
	assert_int_equal(api_route_find("DELETE", &u, &r, &id, allow, sizeof allow), API_MATCH_NO_METHOD);
	assert_string_equal(allow, "GET, POST");
	api_uri_free(&u);
	/* "/" is the dashboard's page (no segment), /assets/{id} its files */
	u = parse_ok("/");
	assert_int_equal(api_route_find("GET", &u, &r, &id, allow, sizeof allow), API_MATCH_OK);
	assert_int_equal(r->id, API_R_UI_INDEX);
	assert_true(r->ui);
	assert_int_equal(api_route_find("POST", &u, &r, &id, allow, sizeof allow), API_MATCH_NO_METHOD);
	assert_string_equal(allow, "GET, HEAD");
	api_uri_free(&u);
	u = parse_ok("/assets/app.js");
	assert_int_equal(api_route_find("HEAD", &u, &r, &id, allow, sizeof allow), API_MATCH_OK);
	assert_int_equal(r->id, API_R_UI_ASSET);
	assert_string_equal(id, "app.js");
	api_uri_free(&u);
	const char *nopath[] = { "/x", "/assets", "/assets/a/b", "/api", "/api/v1", "/api/v2/devices", "/api/v1/devices/x/y",
				 "/api/v1/devices//twin", "/metrics/x", "/api/v1/Devices" };
	for (size_t i = 0; i < sizeof nopath / sizeof nopath[0]; i++) {
		u = parse_ok(nopath[i]);
		if (api_route_find("GET", &u, &r, &id, allow, sizeof allow) != API_MATCH_NO_PATH)
			fail_msg("%s matched", nopath[i]);
		api_uri_free(&u);
	}
	/* a tiny Allow buffer is truncated, never overrun */
	u = parse_ok("/api/v1/devices/x");
	char tiny[5];
	assert_int_equal(api_route_find("PUT", &u, &r, &id, tiny, sizeof tiny), API_MATCH_NO_METHOD);
	assert_true(strlen(tiny) < sizeof tiny);
	api_uri_free(&u);
}

static const struct api_route *route_of(const char *method, const char *path)
{
	struct api_uri u = parse_ok(path);
	const struct api_route *r = NULL;
	const char *id;
	char allow[64];
	assert_int_equal(api_route_find(method, &u, &r, &id, allow, sizeof allow), API_MATCH_OK);
	api_uri_free(&u);
	return r;
}

static void test_query_check(void **state)
{
	(void)state;
	char err[300];
	const struct api_route *tel = route_of("GET", "/api/v1/devices/d/telemetry");
	struct api_uri u = parse_ok("/x?metric=a&from=1&to=2&agg=avg&interval=5m&limit=3");
	assert_true(api_query_check(tel, &u, err, sizeof err));
	api_uri_free(&u);
	u = parse_ok("/x?metric=a&form=1");
	assert_false(api_query_check(tel, &u, err, sizeof err));
	assert_non_null(strstr(err, "unknown query parameter 'form'"));
	api_uri_free(&u);
	u = parse_ok("/x?metric=a&metric=b");
	assert_false(api_query_check(tel, &u, err, sizeof err));
	assert_non_null(strstr(err, "more than once"));
	api_uri_free(&u);
	const struct api_route *dev = route_of("GET", "/api/v1/devices/d");
	u = parse_ok("/x?a=1");
	assert_false(api_query_check(dev, &u, err, sizeof err));
	assert_non_null(strstr(err, "takes none"));
	api_uri_free(&u);
	const struct api_route *ev = route_of("GET", "/api/v1/events");
	u = parse_ok("/x?device=a&device=b&types=alert&types=twin");
	assert_true(api_query_check(ev, &u, err, sizeof err));
	api_uri_free(&u);
	/* a hostile parameter name is cut in the sentence */
	char longname[600] = "/x?";
	memset(longname + 3, 'k', 500);
	longname[503] = '\0';
	u = parse_ok(longname);
	assert_false(api_query_check(dev, &u, err, sizeof err));
	assert_true(strlen(err) < 200);
	api_uri_free(&u);
}

static void time_ok(const char *s, int64_t want)
{
	int64_t ms = -1;
	if (!api_parse_time(s, &ms))
		fail_msg("'%s' refused", s);
	if (ms != want)
		fail_msg("'%s' gave %lld, want %lld", s, (long long)ms, (long long)want);
}

static void time_bad(const char *s)
{
	int64_t ms;
	if (api_parse_time(s, &ms))
		fail_msg("'%s' accepted as %lld", s, (long long)ms);
}

static void test_times(void **state)
{
	(void)state;
	time_ok("0", 0);
	time_ok("1796450400000", 1796450400000LL);
	time_ok("2026-12-05T06:00:00Z", 1796450400000LL);
	time_ok("2026-12-05t06:00:00z", 1796450400000LL);
	time_ok("2026-12-05T07:30:00+01:30", 1796450400000LL);
	time_ok("2026-12-05T04:00:00-02:00", 1796450400000LL);
	time_ok("2026-12-05T06:00:00.5Z", 1796450400500LL);
	time_ok("2026-12-05T06:00:00.05Z", 1796450400050LL);
	time_ok("2026-12-05T06:00:00.123456789Z", 1796450400123LL);
	time_ok("2024-02-29T23:59:59.123Z", 1709251199123LL);
	time_ok("2000-02-29T00:00:00Z", 951782400000LL);
	time_ok("1970-01-01T00:00:00Z", 0);
	time_ok("9999-12-31T23:59:59.999Z", 253402300799999LL);
	time_ok("2026-12-31T23:59:60Z", 1798761600000LL); /* leap second: the next 0 */
	time_ok("253402300799999", 253402300799999LL);
	const char *bad[] = {
		"", " 1", "1 ", "-1", "+1", "1e3", "0x10", "253402300800000", "99999999999999999999",
		"2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
		"2026-00-01T00:00:00Z", "2026-04-31T00:00:00Z", "2026-12-00T00:00:00Z",
		"2026-12-05T24:00:00Z", "2026-12-05T23:60:00Z", "2026-12-05T23:59:61Z",
		"2026-12-05T06:00:00", "2026-12-05 06:00:00Z", "2026-12-05T06:00Z", "2026-12-05",
		"2026-12-05T06:00:00.Z", "2026-12-05T06:00:00.1234567890Z", "2026-12-05T06:00:00+24:00",
		"2026-12-05T06:00:00+01:60", "2026-12-05T06:00:00+0100", "2026-12-05T06:00:00+01",
		"2026-12-05T06:00:00ZZ", "1969-12-31T23:59:59Z", "1970-01-01T00:30:00+01:00",
		"2026-1-05T06:00:00Z", "２026-12-05T06:00:00Z", "2026-12-05T06:00:00Z\x01",
		"10000-01-01T00:00:00Z", "2026-12-05T06:00:00.123+",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		time_bad(bad[i]);
	assert_false(api_parse_time(NULL, &(int64_t){ 0 }));

	char buf[40];
	api_format_time(1796450400123LL, buf, sizeof buf);
	assert_string_equal(buf, "2026-12-05T06:00:00.123Z");
	api_format_time(0, buf, sizeof buf);
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
	/* what api_format_time writes reads back */
	int64_t back;
	api_format_time(1709251199123LL, buf, sizeof buf);
	assert_true(api_parse_time(buf, &back));
	assert_int_equal(back, 1709251199123LL);
}

static void test_values(void **state)
{
	(void)state;
	int64_t ms;
	assert_true(api_parse_interval("60000", &ms));
	assert_int_equal(ms, 60000);
	assert_true(api_parse_interval("5m", &ms));
	assert_int_equal(ms, 300000);
	assert_true(api_parse_interval("250ms", &ms));
	assert_int_equal(ms, 250);
	assert_true(api_parse_interval("1h", &ms));
	assert_int_equal(ms, 3600000);
	assert_true(api_parse_interval("366d", &ms));
	assert_int_equal(ms, 366LL * 86400000);
	const char *bad[] = { "", "0", "0s", "-5m", "5 m", "5M", "m", "1.5h", "367d", "1w",
			      "99999999999999", "5mm", "31622400001", "1e3" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (api_parse_interval(bad[i], &ms))
			fail_msg("interval '%s' accepted", bad[i]);

	uint32_t v;
	assert_true(api_parse_u32("1", 1, 10, &v));
	assert_true(api_parse_u32("0010", 1, 10, &v));
	assert_int_equal(v, 10);
	assert_false(api_parse_u32("0", 1, 10, &v));
	assert_false(api_parse_u32("11", 1, 10, &v));
	assert_false(api_parse_u32("4294967296", 0, UINT32_MAX, &v));
	assert_false(api_parse_u32("99999999999999999999", 0, UINT32_MAX, &v));
	assert_false(api_parse_u32("-1", 0, 10, &v));
	assert_false(api_parse_u32("", 0, 10, &v));
	assert_false(api_parse_u32(" 1", 0, 10, &v));
	assert_true(api_parse_u32("4294967295", 0, UINT32_MAX, &v));

	enum tstore_agg agg;
	const char *words[] = { "none", "avg", "min", "max", "sum", "count", "last" };
	for (unsigned i = 0; i < 7; i++) {
		assert_true(api_parse_agg(words[i], &agg));
		assert_string_equal(api_agg_name(agg), words[i]);
	}
	assert_true(api_parse_agg("raw", &agg));
	assert_int_equal(agg, TSTORE_AGG_NONE);
	assert_false(api_parse_agg("AVG", &agg));
	assert_false(api_parse_agg("mean", &agg));
	assert_false(api_parse_agg("", &agg));
	bool b;
	assert_true(api_parse_bool("true", &b) && b);
	assert_true(api_parse_bool("0", &b) && !b);
	assert_false(api_parse_bool("maybe", &b));
}

static bool tq(const char *raw, struct api_tquery *out, char *err, size_t cap)
{
	struct api_uri u = parse_ok(raw);
	bool ok = api_tquery_parse(&u, 1796450400000LL, out, err, cap);
	/* the metric points into u; keep a copy for the checks */
	static char metric[80];
	if (ok && out->metric) {
		snprintf(metric, sizeof metric, "%s", out->metric);
		out->metric = metric;
	}
	api_uri_free(&u);
	return ok;
}

static void tq_bad(const char *raw, const char *needle)
{
	struct api_tquery t;
	char err[300] = "";
	if (tq(raw, &t, err, sizeof err))
		fail_msg("%s accepted", raw);
	if (!strstr(err, needle))
		fail_msg("%s: '%s' does not say '%s'", raw, err, needle);
}

static void test_tquery(void **state)
{
	(void)state;
	struct api_tquery t;
	char err[300];
	assert_true(tq("/x?metric=temp", &t, err, sizeof err));
	assert_string_equal(t.metric, "temp");
	assert_int_equal(t.to_ms, 1796450400001LL);
	assert_int_equal(t.from_ms, 1796450400001LL - 86400000);
	assert_int_equal(t.agg, TSTORE_AGG_NONE);
	assert_int_equal(t.format, -1);
	assert_true(tq("/x?metric=t&from=2026-12-05T00:00:00Z&to=1796450400000&agg=max&interval=1h"
		       "&limit=24&format=csv&time=ms",
		       &t, err, sizeof err));
	assert_int_equal(t.from_ms, 1796428800000LL);
	assert_int_equal(t.agg, TSTORE_AGG_MAX);
	assert_int_equal(t.interval_ms, 3600000);
	assert_int_equal(t.limit, 24);
	assert_int_equal(t.format, 1);
	assert_true(t.csv_ms);
	/* from is left alone when only to is early: the default window follows to */
	assert_true(tq("/x?metric=t&to=1000", &t, err, sizeof err));
	assert_int_equal(t.from_ms, 0);

	tq_bad("/x", "metric is required");
	tq_bad("/x?metric=", "metric is required");
	tq_bad("/x?metric=t&from=yesterday", "from 'yesterday' is not a time");
	tq_bad("/x?metric=t&to=2026-02-30T00:00:00Z", "to '2026-02-30T00:00:00Z' is not a time");
	tq_bad("/x?metric=t&from=5&to=5", "from must be before to");
	tq_bad("/x?metric=t&from=6&to=5", "from must be before to");
	tq_bad("/x?metric=t&agg=median", "agg 'median' is not one of");
	tq_bad("/x?metric=t&agg=avg&interval=0", "interval '0' is not a duration");
	tq_bad("/x?metric=t&interval=5m", "interval needs agg");
	tq_bad("/x?metric=t&limit=0", "limit '0'");
	tq_bad("/x?metric=t&limit=abc", "limit 'abc'");
	tq_bad("/x?metric=t&limit=99999999999999999999999", "limit '99999999999999999999999'");
	tq_bad("/x?metric=t&format=xml", "format 'xml'");
	tq_bad("/x?metric=t&time=unix", "time 'unix'");
	/* a huge hostile value is cut in the sentence */
	char raw[3000] = "/x?metric=t&from=";
	memset(raw + strlen(raw), '9', 2000);
	struct api_tquery t2;
	char e2[300] = "";
	assert_false(tq(raw, &t2, e2, sizeof e2));
	assert_non_null(strstr(e2, "..."));
	char longmetric[200] = "/x?metric=";
	memset(longmetric + strlen(longmetric), 'm', 100);
	tq_bad(longmetric, "longer than");
}

static void test_events_filter(void **state)
{
	(void)state;
	char err[300];
	struct api_events_filter f;
	struct api_uri u = parse_ok("/x");
	assert_true(api_events_filter_parse(&u, &f, err, sizeof err));
	assert_int_equal(f.types, API_EV_ALL);
	assert_true(api_events_filter_match(&f, API_EV_TWIN, NULL));
	assert_true(api_events_filter_match(&f, API_EV_TELEMETRY, "a"));
	api_events_filter_free(&f);
	api_uri_free(&u);

	u = parse_ok("/x?device=a&device=b,c&types=telemetry,alert");
	assert_true(api_events_filter_parse(&u, &f, err, sizeof err));
	assert_int_equal(f.ndevices, 3);
	assert_int_equal(f.types, API_EV_TELEMETRY | API_EV_ALERT);
	assert_true(api_events_filter_match(&f, API_EV_TELEMETRY, "c"));
	assert_false(api_events_filter_match(&f, API_EV_TELEMETRY, "d"));
	assert_false(api_events_filter_match(&f, API_EV_TELEMETRY, NULL));
	assert_false(api_events_filter_match(&f, API_EV_TWIN, "a"));
	api_events_filter_free(&f);
	api_uri_free(&u);

	const char *bad[][2] = {
		{ "/x?types=telemetry,bogus", "types 'bogus'" },
		{ "/x?types=", "empty item" },
		{ "/x?device=a,,b", "empty item" },
		{ "/x?device=a,", "empty item" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		u = parse_ok(bad[i][0]);
		assert_false(api_events_filter_parse(&u, &f, err, sizeof err));
		if (!strstr(err, bad[i][1]))
			fail_msg("%s: '%s'", bad[i][0], err);
		assert_null(f.devices);
		api_uri_free(&u);
	}
	char many[4096] = "/x?device=";
	for (int i = 0; i < API_MAX_SSE_DEVICES + 1; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "%sd%d", i ? "," : "", i);
	u = parse_ok(many);
	assert_false(api_events_filter_parse(&u, &f, err, sizeof err));
	assert_non_null(strstr(err, "more than"));
	api_uri_free(&u);
	assert_int_equal(api_event_type_bit("connection"), API_EV_CONNECTION);
	assert_int_equal(api_event_type_bit("nope"), 0);
}

/* The OpenAPI document and the route table name the same (method, path)
 * pairs, with the same scope. */
static void test_openapi_matches_routes(void **state)
{
	(void)state;
	cJSON *doc = cJSON_Parse(api_openapi_json);
	assert_non_null(doc);
	assert_string_equal(cJSON_GetObjectItem(doc, "openapi")->valuestring, "3.0.3");
	const cJSON *paths = cJSON_GetObjectItem(doc, "paths");
	assert_true(cJSON_IsObject(paths));
	static const char *const methods[] = { "get", "post", "put", "patch", "delete", "head",
					       "options", "trace" };
	size_t documented = 0;
	const cJSON *p;
	cJSON_ArrayForEach(p, paths)
	{
		const cJSON *op;
		cJSON_ArrayForEach(op, p)
		{
			bool is_method = false;
			for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++)
				is_method |= strcmp(op->string, methods[m]) == 0;
			if (!is_method)
				continue;
			documented++;
			char upper[16];
			size_t k = 0;
			for (; op->string[k] && k < sizeof upper - 1; k++)
				upper[k] = (char)(op->string[k] - 'a' + 'A');
			upper[k] = '\0';
			const struct api_route *found = NULL;
			for (size_t i = 0; i < api_nroutes; i++)
				if (!api_routes[i].ui && !strcmp(api_routes[i].path, p->string) &&
				    !strcmp(api_routes[i].method, upper))
					found = &api_routes[i];
			if (!found)
				fail_msg("documented %s %s is not routed", upper, p->string);
			const cJSON *scope = cJSON_GetObjectItem(op, "x-scope");
			static const char *const needs[] = { "none", "read", "write", "admin" };
			if (!cJSON_IsString(scope) || strcmp(scope->valuestring, needs[found->need]))
				fail_msg("%s %s: x-scope differs from the table (%s)", upper, p->string,
					 needs[found->need]);
			assert_non_null(cJSON_GetObjectItem(op, "responses"));
		}
	}
	size_t ui = 0;
	for (size_t i = 0; i < api_nroutes; i++) {
		char lower[16];
		/* The dashboard's pages are not API (docs/dashboard.md). */
		if (api_routes[i].ui) {
			ui++;
			continue;
		}
		size_t k = 0;
		for (; api_routes[i].method[k] && k < sizeof lower - 1; k++)
			lower[k] = (char)(api_routes[i].method[k] - 'A' + 'a');
		lower[k] = '\0';
		const cJSON *pp = cJSON_GetObjectItem(paths, api_routes[i].path);
		if (!pp || !cJSON_GetObjectItem(pp, lower))
			fail_msg("routed %s %s is not documented", api_routes[i].method,
				 api_routes[i].path);
	}
	assert_true(ui > 0);
	assert_int_equal(documented + ui, api_nroutes);
	cJSON_Delete(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_basic),
		cmocka_unit_test(test_uri_hostile),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_query_check),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_tquery),
		cmocka_unit_test(test_events_filter),
		cmocka_unit_test(test_openapi_matches_routes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
