/* fuzz_api_query.c - the API's request-target parser takes any bytes: it
 * refuses with a sentence or yields segments and parameters that route,
 * pass or fail the query checks, and parse as telemetry queries and SSE
 * filters; every query value also goes through the time, interval and
 * number parsers. A time that parses prints and reads back the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 3 * API_URI_MAX)
		return 0;
	struct api_uri u;
	char err[300];
	if (api_uri_parse((const char *)data, size, &u, err, sizeof err) != MOTE_OK) {
		if (!err[0] || strlen(err) >= sizeof err)
			abort();
		return 0;
	}
	static const char *const methods[] = { "GET", "POST", "PATCH", "PUT", "DELETE", "HEAD" };
	for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
		const struct api_route *r = NULL;
		const char *id = NULL;
		char allow[64];
		enum api_match k = api_route_find(methods[m], &u, &r, &id, allow, sizeof allow);
		if (k == API_MATCH_OK) {
			if (strcmp(r->method, methods[m]) != 0 || (strstr(r->path, "{id}") && (!id || !id[0])))
				abort();
			api_query_check(r, &u, err, sizeof err);
		} else if (k == API_MATCH_NO_METHOD && !allow[0]) {
			abort();
		}
	}
	struct api_tquery tq;
	if (api_tquery_parse(&u, 1796450400000LL, &tq, err, sizeof err)) {
		if (tq.from_ms >= tq.to_ms || !tq.metric)
			abort();
	}
	struct api_events_filter f;
	if (api_events_filter_parse(&u, &f, err, sizeof err)) {
		api_events_filter_match(&f, API_EV_TELEMETRY, "x");
		api_events_filter_free(&f);
	}
	for (unsigned i = 0; i < u.nq; i++) {
		int64_t ms;
		uint32_t v;
		enum tstore_agg agg;
		bool b;
		if (api_parse_time(u.q[i].value, &ms)) {
			char buf[40];
			int64_t back;
			api_format_time(ms, buf, sizeof buf);
			if (!api_parse_time(buf, &back) || back != ms)
				abort();
		}
		if (api_parse_interval(u.q[i].value, &ms) && ms <= 0)
			abort();
		api_parse_u32(u.q[i].value, 0, UINT32_MAX, &v);
		api_parse_agg(u.q[i].value, &agg);
		api_parse_bool(u.q[i].value, &b);
	}
	api_uri_free(&u);
	return 0;
}
