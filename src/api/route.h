/*
 * route.h - the API's route table and request-line parsing (private to
 * src/api): the raw request URI split into %-decoded path segments and
 * query parameters, the table of (method, path pattern, scope, query
 * parameters), and the parsers of query values (times, intervals, limits,
 * aggregations, SSE filters). Pure functions with no I/O, so unit tests and
 * the fuzzer reach every byte of request parsing without a server.
 *
 * Threading: stateless; the table is const. Ownership: api_uri owns one
 * buffer (api_uri_free); the filters own their device list
 * (api_events_filter_free).
 */
#ifndef MOTE_API_ROUTE_H
#define MOTE_API_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/tstore.h"

#define API_URI_MAX 8192   /* longer request targets: 414-like 400 */
#define API_MAX_SEGS 8
#define API_MAX_QUERY 32
#define API_MAX_SSE_DEVICES 64

struct api_kv {
	const char *key;
	const char *value;  /* "" for a bare key */
};

struct api_uri {
	char *buf;          /* every decoded string lives here */
	const char *seg[API_MAX_SEGS];
	unsigned nseg;
	struct api_kv q[API_MAX_QUERY];
	unsigned nq;
};

/*
 * Splits a request target ("/api/v1/devices/p%2D1?limit=5") into decoded
 * path segments and query parameters ('+' is a space in the query only).
 * MOTE_EMALFORMED with a sentence in err: not starting with '/', a bad or
 * NUL %-escape, a control byte, too long, too many segments or parameters.
 * MOTE_ENOMEM. On failure out holds nothing to free.
 */
enum mote_err api_uri_parse(const char *raw, size_t len, struct api_uri *out, char *err,
			    size_t errcap);
void api_uri_free(struct api_uri *u);
/* The first value of key, or NULL. */
const char *api_query_get(const struct api_uri *u, const char *key);

/* What a route needs of the caller's token. The numbers order the scopes. */
enum api_need { API_NEED_NONE, API_NEED_READ, API_NEED_WRITE, API_NEED_ADMIN };

enum api_route_id {
	API_R_DEVICES_LIST,
	API_R_DEVICES_CREATE,
	API_R_DEVICE_GET,
	API_R_DEVICE_UPDATE,
	API_R_DEVICE_DELETE,
	API_R_TWIN_GET,
	API_R_TWIN_PATCH,
	API_R_TELEMETRY,
	API_R_TELEMETRY_LATEST,
	API_R_ANALYTICS,
	API_R_SIMULATE,
	API_R_RULES_LIST,
	API_R_RULES_CREATE,
	API_R_RULE_GET,
	API_R_RULE_UPDATE,
	API_R_RULE_DELETE,
	API_R_ALERTS_LIST,
	API_R_ALERT_GET,
	API_R_ALERT_ACK,
	API_R_ALERT_CLEAR,
	API_R_WEBHOOKS_LIST,
	API_R_WEBHOOKS_CREATE,
	API_R_WEBHOOK_DELETE,
	API_R_WEBHOOK_DELIVERIES,
	API_R_EVENTS,
	API_R_METRICS,
	API_R_HEALTHZ,
	API_R_OPENAPI,
	API_R_UI_INDEX,
	API_R_UI_ASSET,
	API_R_COUNT_
};

struct api_route {
	enum api_route_id id;
	const char *method;   /* "GET", "POST", "PATCH", "PUT", "DELETE" */
	const char *path;     /* "/api/v1/devices/{id}": {id} is one non-empty segment; "/" no segment */
	uint8_t need;         /* enum api_need */
	bool json_body;       /* the request carries a JSON body */
	/* Query parameters it takes, comma-separated; "name*" may repeat. */
	const char *params;
	/* The dashboard (ui.c): not part of the API, so not in the OpenAPI
	 * document; docs/api.md and docs/dashboard.md describe it. */
	bool ui;
};

extern const struct api_route api_routes[];
extern const size_t api_nroutes;

enum api_match { API_MATCH_OK, API_MATCH_NO_PATH, API_MATCH_NO_METHOD };

/*
 * The route for (method, path). API_MATCH_OK: *route and *id ({id}'s value
 * or NULL). API_MATCH_NO_METHOD: allow holds "GET, POST" (the methods this
 * path takes). API_MATCH_NO_PATH: nothing has this path.
 */
enum api_match api_route_find(const char *method, const struct api_uri *u,
			      const struct api_route **route, const char **id, char *allow,
			      size_t allowcap);

/* Unknown or wrongly repeated query parameters for the route: false with a
 * sentence in err. */
bool api_query_check(const struct api_route *r, const struct api_uri *u, char *err,
		     size_t errcap);

/* ---- query values: false for anything else than the documented forms ---- */

/* Unix milliseconds (digits only) or RFC 3339 ("2026-12-05T06:00:00.5+01:00",
 * 't'/'z' in either case), years 1970-9999. */
bool api_parse_time(const char *s, int64_t *ms);
/* A duration: milliseconds ("60000") or a number with a unit ms, s, m, h, d
 * ("90s", "5m"); > 0 and at most 366 days. */
bool api_parse_interval(const char *s, int64_t *ms);
/* A decimal integer in [min, max]. */
bool api_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
/* none|raw, avg, min, max, sum, count, last. */
bool api_parse_agg(const char *s, enum tstore_agg *out);
const char *api_agg_name(enum tstore_agg a);
/* true/false/1/0/yes/no. */
bool api_parse_bool(const char *s, bool *out);

/* Writes ms as "2026-12-05T06:00:00.000Z" (buf >= 32 bytes). */
void api_format_time(int64_t ms, char *buf, size_t cap);

/* The telemetry query's parameters, checked. */
struct api_tquery {
	const char *metric;
	int64_t from_ms, to_ms;      /* defaults: to = now, from = to - 1 day */
	enum tstore_agg agg;         /* default none (raw points) */
	int64_t interval_ms;         /* 0: one bucket (with agg) */
	uint32_t limit;              /* 0: the store's cap */
	int format;                  /* -1: from Accept, 0: json, 1: csv */
	bool csv_ms;                 /* CSV timestamps in ms (time=ms) instead of RFC 3339 */
};
bool api_tquery_parse(const struct api_uri *u, int64_t now_ms, struct api_tquery *out,
		      char *err, size_t errcap);

/* SSE event types (bit per type). */
enum {
	API_EV_TELEMETRY = 1u << 0,
	API_EV_TWIN = 1u << 1,
	API_EV_ALERT = 1u << 2,
	API_EV_CONNECTION = 1u << 3,
	API_EV_DEVICE = 1u << 4,
	API_EV_ALL = 0x1f,
};
/* The bit of an event type word; 0 when unknown. */
unsigned api_event_type_bit(const char *type);

struct api_events_filter {
	unsigned types;          /* API_EV_* mask */
	char **devices;          /* NULL: every device */
	unsigned ndevices;
};
/* ?device=a&device=b,c&types=telemetry,alert. false with a sentence. */
bool api_events_filter_parse(const struct api_uri *u, struct api_events_filter *f, char *err,
			     size_t errcap);
bool api_events_filter_match(const struct api_events_filter *f, unsigned type_bit,
			     const char *device_id);
void api_events_filter_free(struct api_events_filter *f);

/* The OpenAPI 3.0 document (openapi.c), NUL-terminated JSON. */
extern const char api_openapi_json[];

#endif
