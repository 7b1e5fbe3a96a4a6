/*
 * route.c - the route table and the parsing of request targets and query
 * values (route.h).
 *
 * The request target is parsed here from the raw bytes the client sent
 * (libmicrohttpd's URI log callback hands them over) rather than from the
 * server's already-decoded path and argument table: one decoder, ours, with
 * one set of refusals that the unit tests and the fuzzer can reach, and a
 * %2F inside a device id stays inside its segment instead of splitting it.
 *
 * Every refusal carries a sentence naming the parameter and what was
 * expected; the API sends it back as a 400 in the stable error shape.
 */
#include "api/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/clock.h"

/*
 * The table. Scopes: read may GET (except webhooks: their URLs can carry
 * credentials); write may also change devices, twins and alerts; admin may
 * also change rules and webhooks and delete devices. The OpenAPI document
 * in openapi.c lists the same (method, path) pairs, except the dashboard's
 * (ui: true); test_api_route checks it.
 */
const struct api_route api_routes[] = {
	{ API_R_DEVICES_LIST, "GET", "/api/v1/devices", API_NEED_READ, false,
	  "model,tag,status,q,limit,offset", false },
	{ API_R_DEVICES_CREATE, "POST", "/api/v1/devices", API_NEED_WRITE, true, "", false },
	{ API_R_DEVICE_GET, "GET", "/api/v1/devices/{id}", API_NEED_READ, false, "", false },
	{ API_R_DEVICE_UPDATE, "PATCH", "/api/v1/devices/{id}", API_NEED_WRITE, true, "", false },
	{ API_R_DEVICE_DELETE, "DELETE", "/api/v1/devices/{id}", API_NEED_ADMIN, false, "", false },
	{ API_R_TWIN_GET, "GET", "/api/v1/devices/{id}/twin", API_NEED_READ, false, "", false },
	{ API_R_TWIN_PATCH, "PATCH", "/api/v1/devices/{id}/twin", API_NEED_WRITE, true, "", false },
	{ API_R_TELEMETRY, "GET", "/api/v1/devices/{id}/telemetry", API_NEED_READ, false,
	  "metric,from,to,agg,interval,limit,format,time", false },
	{ API_R_TELEMETRY_LATEST, "GET", "/api/v1/devices/{id}/telemetry/latest", API_NEED_READ,
	  false, "", false },
	{ API_R_ANALYTICS, "GET", "/api/v1/devices/{id}/analytics", API_NEED_READ, false, "", false },
	/* read scope: it computes and changes nothing */
	{ API_R_SIMULATE, "POST", "/api/v1/devices/{id}/simulate", API_NEED_READ, true, "", false },
	{ API_R_RULES_LIST, "GET", "/api/v1/rules", API_NEED_READ, false, "", false },
	{ API_R_RULES_CREATE, "POST", "/api/v1/rules", API_NEED_ADMIN, true, "", false },
	{ API_R_RULE_GET, "GET", "/api/v1/rules/{id}", API_NEED_READ, false, "", false },
	{ API_R_RULE_UPDATE, "PUT", "/api/v1/rules/{id}", API_NEED_ADMIN, true, "", false },
	{ API_R_RULE_DELETE, "DELETE", "/api/v1/rules/{id}", API_NEED_ADMIN, false, "", false },
	{ API_R_ALERTS_LIST, "GET", "/api/v1/alerts", API_NEED_READ, false,
	  "device,state,severity,acknowledged,limit", false },
	{ API_R_ALERT_GET, "GET", "/api/v1/alerts/{id}", API_NEED_READ, false, "", false },
	{ API_R_ALERT_ACK, "POST", "/api/v1/alerts/{id}/ack", API_NEED_WRITE, false, "", false },
	{ API_R_ALERT_CLEAR, "POST", "/api/v1/alerts/{id}/clear", API_NEED_WRITE, false, "", false },
	{ API_R_WEBHOOKS_LIST, "GET", "/api/v1/webhooks", API_NEED_ADMIN, false, "", false },
	{ API_R_WEBHOOKS_CREATE, "POST", "/api/v1/webhooks", API_NEED_ADMIN, true, "", false },
	{ API_R_WEBHOOK_DELETE, "DELETE", "/api/v1/webhooks/{id}", API_NEED_ADMIN, false, "", false },
	{ API_R_WEBHOOK_DELIVERIES, "GET", "/api/v1/webhooks/{id}/deliveries", API_NEED_ADMIN,
	  false, "limit", false },
	{ API_R_EVENTS, "GET", "/api/v1/events", API_NEED_READ, false, "device*,types*", false },
	{ API_R_METRICS, "GET", "/metrics", API_NEED_READ, false, "", false },
	{ API_R_HEALTHZ, "GET", "/healthz", API_NEED_NONE, false, "", false },
	{ API_R_OPENAPI, "GET", "/api/v1/openapi.json", API_NEED_READ, false, "", false },
	/* The dashboard: public (the page holds no data; its API calls carry
	 * the token). "/" takes ?token= so the link `make run` prints works;
	 * the page's script reads it, the server ignores it. */
	{ API_R_UI_INDEX, "GET", "/", API_NEED_NONE, false, "token", true },
	{ API_R_UI_INDEX, "HEAD", "/", API_NEED_NONE, false, "token", true },
	{ API_R_UI_ASSET, "GET", "/assets/{id}", API_NEED_NONE, false, "", true },
	{ API_R_UI_ASSET, "HEAD", "/assets/{id}", API_NEED_NONE, false, "", true },
};
const size_t api_nroutes = sizeof api_routes / sizeof api_routes[0];

/* ---- the request target ---- */

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decodes in[0..n) into *o (advancing it, NUL-terminating). plus: '+' is a
 * space (query). false with err: a bad escape, %00 or a control byte.
 */
static bool decode(const char *in, size_t n, bool plus, char **o, const char *what, char *err,
		   size_t errcap)
{
	char *w = *o;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '%') {
			if (i + 2 >= n) {
				snprintf(err, errcap, "%s has a truncated %%-escape", what);
				return false;
			}
			int h = hexval((unsigned char)in[i + 1]), l = hexval((unsigned char)in[i + 2]);
			if (h < 0 || l < 0) {
				snprintf(err, errcap, "%s has an invalid %%-escape", what);
				return false;
			}
			c = (unsigned char)(h * 16 + l);
			i += 2;
			if (c == 0) {
				snprintf(err, errcap, "%s contains a NUL byte (%%00)", what);
				return false;
			}
		} else if (plus && c == '+') {
			c = ' ';
		}
		if (c < 0x20 || c == 0x7f) {
			snprintf(err, errcap, "%s contains a control character", what);
			return false;
		}
		*w++ = (char)c;
	}
	*w++ = '\0';
	*o = w;
	return true;
}

enum mote_err api_uri_parse(const char *raw, size_t len, struct api_uri *out, char *err,
			    size_t errcap)
{
	memset(out, 0, sizeof *out);
	err[0] = '\0';
	if (len == 0 || raw[0] != '/') {
		snprintf(err, errcap, "the request target must start with '/'");
		return MOTE_EMALFORMED;
	}
	if (len > API_URI_MAX) {
		snprintf(err, errcap, "the request target is longer than %d bytes", API_URI_MAX);
		return MOTE_EMALFORMED;
	}
	/* Decoding never lengthens; one NUL per piece at most doubles the
	 * count of separators, bounded by len. */
	char *buf = malloc(2 * len + 2);
	if (!buf)
		return MOTE_ENOMEM;
	char *w = buf;
	const char *qm = memchr(raw, '?', len);
	size_t plen = qm ? (size_t)(qm - raw) : len;
	/* A fragment is never sent by a client; one that is sent is refused. */
	if (memchr(raw, '#', len)) {
		snprintf(err, errcap, "the request target contains '#'");
		goto bad;
	}
	/* Path: segments between '/'; one trailing '/' is ignored. */
	size_t i = 1;
	if (plen > 1 && raw[plen - 1] == '/')
		plen--;
	while (i <= plen && plen > 1) {
		const char *s = raw + i;
		const char *slash = memchr(s, '/', plen - i);
		size_t n = slash ? (size_t)(slash - s) : plen - i;
		if (out->nseg == API_MAX_SEGS) {
			snprintf(err, errcap, "the path has more than %d segments", API_MAX_SEGS);
			goto bad;
		}
		out->seg[out->nseg++] = w;
		if (!decode(s, n, false, &w, "the path", err, errcap))
			goto bad;
		i += n + 1;
	}
	if (qm) {
		const char *q = qm + 1, *end = raw + len;
		while (q < end) {
			const char *amp = memchr(q, '&', (size_t)(end - q));
			const char *pe = amp ? amp : end;
			if (pe > q) {
				if (out->nq == API_MAX_QUERY) {
					snprintf(err, errcap, "more than %d query parameters",
						 API_MAX_QUERY);
					goto bad;
				}
				const char *eq = memchr(q, '=', (size_t)(pe - q));
				const char *ke = eq ? eq : pe;
				struct api_kv *kv = &out->q[out->nq++];
				kv->key = w;
				if (!decode(q, (size_t)(ke - q), true, &w, "a query parameter name", err,
					    errcap))
					goto bad;
				kv->value = w;
				if (eq) {
					char what[80];
					snprintf(what, sizeof what, "query parameter '%.40s'", kv->key);
					if (!decode(eq + 1, (size_t)(pe - eq - 1), true, &w, what, err,
						    errcap))
						goto bad;
				} else {
					*w++ = '\0';
				}
				if (!kv->key[0]) {
					snprintf(err, errcap, "a query parameter has no name");
					goto bad;
				}
			}
			q = pe + 1;
		}
	}
	out->buf = buf;
	return MOTE_OK;
bad:
	free(buf);
	memset(out, 0, sizeof *out);
	return MOTE_EMALFORMED;
}

void api_uri_free(struct api_uri *u)
{
	if (!u)
		return;
	free(u->buf);
	memset(u, 0, sizeof *u);
}

const char *api_query_get(const struct api_uri *u, const char *key)
{
	for (unsigned i = 0; i < u->nq; i++)
		if (strcmp(u->q[i].key, key) == 0)
			return u->q[i].value;
	return NULL;
}

/* ---- routes ---- */

/* Whether pattern matches the segments; *id gets {id}'s segment. */
static bool path_matches(const char *pattern, const struct api_uri *u, const char **id)
{
	unsigned k = 0;
	const char *p = pattern;
	*id = NULL;
	if (strcmp(pattern, "/") == 0)
		return u->nseg == 0;
	while (*p == '/') {
		p++;
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (k >= u->nseg)
			return false;
		const char *seg = u->seg[k++];
		if (n == 4 && memcmp(p, "{id}", 4) == 0) {
			if (!seg[0])
				return false;
			*id = seg;
		} else if (strlen(seg) != n || memcmp(seg, p, n) != 0) {
			return false;
		}
		p += n;
	}
	return k == u->nseg;
}

enum api_match api_route_find(const char *method, const struct api_uri *u,
			      const struct api_route **route, const char **id, char *allow,
			      size_t allowcap)
{
	bool path_seen = false;
	size_t used = 0;
	if (allowcap)
		allow[0] = '\0';
	for (size_t i = 0; i < api_nroutes; i++) {
		const char *rid;
		if (!path_matches(api_routes[i].path, u, &rid))
			continue;
		if (strcmp(api_routes[i].method, method) == 0) {
			*route = &api_routes[i];
			*id = rid;
			return API_MATCH_OK;
		}
		path_seen = true;
		if (allowcap > used) {
			int n = snprintf(allow + used, allowcap - used, "%s%s", used ? ", " : "",
					 api_routes[i].method);
			if (n > 0)
				used += (size_t)n;
			if (used >= allowcap)
				used = allowcap - 1;
		}
	}
	return path_seen ? API_MATCH_NO_METHOD : API_MATCH_NO_PATH;
}

/* Whether name is in the comma list; *repeat: it carries '*'. */
static bool param_known(const char *list, const char *name, bool *repeat)
{
	size_t n = strlen(name);
	const char *p = list;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t m = e ? (size_t)(e - p) : strlen(p);
		bool star = m > 0 && p[m - 1] == '*';
		size_t k = star ? m - 1 : m;
		if (k == n && memcmp(p, name, n) == 0) {
			*repeat = star;
			return true;
		}
		p += m;
		if (*p == ',')
			p++;
	}
	return false;
}

bool api_query_check(const struct api_route *r, const struct api_uri *u, char *err,
		     size_t errcap)
{
	for (unsigned i = 0; i < u->nq; i++) {
		bool repeat = false;
		if (!param_known(r->params, u->q[i].key, &repeat)) {
			if (r->params[0])
				snprintf(err, errcap, "unknown query parameter '%.60s' (this route takes: %s)",
					 u->q[i].key, r->params);
			else
				snprintf(err, errcap, "unknown query parameter '%.60s' (this route takes none)",
					 u->q[i].key);
			return false;
		}
		if (repeat)
			continue;
		for (unsigned j = 0; j < i; j++) {
			if (strcmp(u->q[j].key, u->q[i].key) == 0) {
				snprintf(err, errcap, "query parameter '%.60s' is given more than once",
					 u->q[i].key);
				return false;
			}
		}
	}
	return true;
}

/* ---- values ---- */

/* Digits only, at most maxd of them; false on anything else. */
static bool digits(const char *s, size_t n, unsigned maxd, uint64_t *out)
{
	if (n == 0 || n > maxd)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : dm[m - 1];
}

/* The largest time accepted: 9999-12-31T23:59:59.999Z. */
#define MAX_TIME_MS 253402300799999LL

static bool rfc3339(const char *s, int64_t *ms)
{
	size_t n = strlen(s);
	uint64_t y, mo, d, h, mi, se;
	/* YYYY-MM-DDTHH:MM:SS is 19 characters. */
	if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return false;
	if (!digits(s, 4, 4, &y) || !digits(s + 5, 2, 2, &mo) || !digits(s + 8, 2, 2, &d) ||
	    !digits(s + 11, 2, 2, &h) || !digits(s + 14, 2, 2, &mi) || !digits(s + 17, 2, 2, &se))
		return false;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month((unsigned)y, (unsigned)mo) ||
	    h > 23 || mi > 59 || se > 60)
		return false;
	/* A leap second only where one can be: the last second of a minute
	 * that ends a UTC day is not checkable without the offset applied,
	 * so 60 is taken as the next minute's 0 (what POSIX time does). */
	const char *p = s + 19;
	int64_t frac_ms = 0;
	if (*p == '.') {
		p++;
		unsigned nd = 0;
		int64_t f = 0;
		while (*p >= '0' && *p <= '9') {
			if (nd < 3)
				f = f * 10 + (*p - '0');
			nd++;
			p++;
			if (nd > 9)
				return false;
		}
		if (nd == 0)
			return false;
		for (unsigned k = nd; k < 3; k++)
			f *= 10;
		frac_ms = f;
	}
	int64_t off_s = 0;
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		off_s = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		uint64_t oh, om;
		if (!digits(p + 1, 2, 2, &oh) || !digits(p + 4, 2, 2, &om) || oh > 23 || om > 59)
			return false;
		off_s = (int64_t)(oh * 3600 + om * 60);
		if (*p == '-')
			off_s = -off_s;
	} else {
		return false;
	}
	int64_t days = mote_days_from_civil((int64_t)y, (unsigned)mo, (unsigned)d);
	int64_t secs = days * 86400 + (int64_t)(h * 3600 + mi * 60 + se) - off_s;
	int64_t v = secs * 1000 + frac_ms;
	if (v < 0 || v > MAX_TIME_MS)
		return false;
	*ms = v;
	return true;
}

bool api_parse_time(const char *s, int64_t *ms)
{
	if (!s)
		return false;
	size_t n = strlen(s);
	uint64_t v;
	if (n > 0 && n <= 15 && digits(s, n, 15, &v)) {
		if (v > (uint64_t)MAX_TIME_MS)
			return false;
		*ms = (int64_t)v;
		return true;
	}
	return rfc3339(s, ms);
}

bool api_parse_interval(const char *s, int64_t *ms)
{
	if (!s)
		return false;
	size_t n = strlen(s), k = 0;
	while (k < n && s[k] >= '0' && s[k] <= '9')
		k++;
	uint64_t v;
	if (!digits(s, k, 12, &v))
		return false;
	const char *unit = s + k;
	uint64_t mul;
	if (!*unit || strcmp(unit, "ms") == 0)
		mul = 1;
	else if (strcmp(unit, "s") == 0)
		mul = 1000;
	else if (strcmp(unit, "m") == 0)
		mul = 60000;
	else if (strcmp(unit, "h") == 0)
		mul = 3600000;
	else if (strcmp(unit, "d") == 0)
		mul = 86400000;
	else
		return false;
	const uint64_t max = 366ull * 86400000ull;
	if (v == 0 || v > max / mul)
		return false;
	*ms = (int64_t)(v * mul);
	return true;
}

bool api_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;
	if (!s || !digits(s, strlen(s), 10, &v) || v < min || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

static const char *const agg_names[] = { "none", "avg", "min", "max", "sum", "count", "last" };

bool api_parse_agg(const char *s, enum tstore_agg *out)
{
	if (!s)
		return false;
	if (strcmp(s, "raw") == 0) {
		*out = TSTORE_AGG_NONE;
		return true;
	}
	for (unsigned i = 0; i < sizeof agg_names / sizeof agg_names[0]; i++) {
		if (strcmp(s, agg_names[i]) == 0) {
			*out = (enum tstore_agg)i;
			return true;
		}
	}
	return false;
}

const char *api_agg_name(enum tstore_agg a)
{
	unsigned i = (unsigned)a;
	return i < sizeof agg_names / sizeof agg_names[0] ? agg_names[i] : "none";
}

bool api_parse_bool(const char *s, bool *out)
{
	if (!s)
		return false;
	if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes")) {
		*out = true;
		return true;
	}
	if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "no")) {
		*out = false;
		return true;
	}
	return false;
}

void api_format_time(int64_t ms, char *buf, size_t cap)
{
	time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int64_t rem = ms - (int64_t)secs * 1000;
	struct tm tm;
	if (!gmtime_r(&secs, &tm)) {
		snprintf(buf, cap, "%lld", (long long)ms);
		return;
	}
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)rem);
}

/* A shown value, cut so a hostile one cannot flood the message. */
static const char *shown(const char *v, char *buf, size_t cap)
{
	size_t n = strlen(v);
	if (n + 1 <= cap && n <= 40)
		return v;
	snprintf(buf, cap, "%.40s...", v);
	return buf;
}

bool api_tquery_parse(const struct api_uri *u, int64_t now_ms, struct api_tquery *out,
		      char *err, size_t errcap)
{
	char sb[64];
	const char *v;
	memset(out, 0, sizeof *out);
	out->format = -1;
	out->metric = api_query_get(u, "metric");
	if (!out->metric || !out->metric[0]) {
		snprintf(err, errcap, "metric is required (e.g. ?metric=temp)");
		return false;
	}
	if (strlen(out->metric) > TELEMETRY_METRIC_MAX) {
		snprintf(err, errcap, "metric is longer than %d bytes", TELEMETRY_METRIC_MAX);
		return false;
	}
	out->to_ms = now_ms + 1;
	if ((v = api_query_get(u, "to")) && !api_parse_time(v, &out->to_ms)) {
		snprintf(err, errcap,
			 "to '%s' is not a time: Unix milliseconds or RFC 3339 "
			 "(2026-12-05T06:00:00Z)",
			 shown(v, sb, sizeof sb));
		return false;
	}
	out->from_ms = out->to_ms - 86400000;
	if (out->from_ms < 0)
		out->from_ms = 0;
	if ((v = api_query_get(u, "from")) && !api_parse_time(v, &out->from_ms)) {
		snprintf(err, errcap,
			 "from '%s' is not a time: Unix milliseconds or RFC 3339 "
			 "(2026-12-05T06:00:00Z)",
			 shown(v, sb, sizeof sb));
		return false;
	}
	if (out->from_ms >= out->to_ms) {
		snprintf(err, errcap, "from must be before to (the range is [from, to))");
		return false;
	}
	out->agg = TSTORE_AGG_NONE;
	if ((v = api_query_get(u, "agg")) && !api_parse_agg(v, &out->agg)) {
		snprintf(err, errcap, "agg '%s' is not one of none, avg, min, max, sum, count, last",
			 shown(v, sb, sizeof sb));
		return false;
	}
	if ((v = api_query_get(u, "interval"))) {
		if (!api_parse_interval(v, &out->interval_ms)) {
			snprintf(err, errcap,
				 "interval '%s' is not a duration: milliseconds or a number with ms, "
				 "s, m, h or d (e.g. 5m), above 0 and at most 366 days",
				 shown(v, sb, sizeof sb));
			return false;
		}
		if (out->agg == TSTORE_AGG_NONE) {
			snprintf(err, errcap, "interval needs agg (avg, min, max, sum, count or last)");
			return false;
		}
	}
	if ((v = api_query_get(u, "limit")) && !api_parse_u32(v, 1, 1000000, &out->limit)) {
		snprintf(err, errcap, "limit '%s' is not a whole number from 1 to 1000000",
			 shown(v, sb, sizeof sb));
		return false;
	}
	if ((v = api_query_get(u, "format"))) {
		if (!strcmp(v, "json"))
			out->format = 0;
		else if (!strcmp(v, "csv"))
			out->format = 1;
		else {
			snprintf(err, errcap, "format '%s' is not json or csv", shown(v, sb, sizeof sb));
			return false;
		}
	}
	if ((v = api_query_get(u, "time"))) {
		if (!strcmp(v, "ms"))
			out->csv_ms = true;
		else if (strcmp(v, "iso") != 0) {
			snprintf(err, errcap, "time '%s' is not iso or ms", shown(v, sb, sizeof sb));
			return false;
		}
	}
	return true;
}

/* ---- SSE filters ---- */

static const char *const ev_names[] = { "telemetry", "twin", "alert", "connection", "device" };

unsigned api_event_type_bit(const char *type)
{
	for (unsigned i = 0; i < sizeof ev_names / sizeof ev_names[0]; i++)
		if (type && strcmp(type, ev_names[i]) == 0)
			return 1u << i;
	return 0;
}

void api_events_filter_free(struct api_events_filter *f)
{
	for (unsigned i = 0; i < f->ndevices; i++)
		free(f->devices[i]);
	free(f->devices);
	f->devices = NULL;
	f->ndevices = 0;
}

bool api_events_filter_parse(const struct api_uri *u, struct api_events_filter *f, char *err,
			     size_t errcap)
{
	char sb[64];
	memset(f, 0, sizeof *f);
	bool any_types = false;
	unsigned types = 0;
	for (unsigned i = 0; i < u->nq; i++) {
		bool is_dev = strcmp(u->q[i].key, "device") == 0;
		bool is_types = strcmp(u->q[i].key, "types") == 0;
		if (!is_dev && !is_types)
			continue;
		const char *p = u->q[i].value;
		for (;;) {
			const char *c = strchr(p, ',');
			size_t n = c ? (size_t)(c - p) : strlen(p);
			if (n == 0) {
				snprintf(err, errcap, "%s has an empty item", is_dev ? "device" : "types");
				goto bad;
			}
			char item[128];
			if (n >= sizeof item) {
				snprintf(err, errcap, "%s has an item longer than 127 bytes",
					 is_dev ? "device" : "types");
				goto bad;
			}
			memcpy(item, p, n);
			item[n] = '\0';
			if (is_types) {
				unsigned b = api_event_type_bit(item);
				if (!b) {
					snprintf(err, errcap,
						 "types '%s' is not one of telemetry, twin, alert, "
						 "connection, device",
						 shown(item, sb, sizeof sb));
					goto bad;
				}
				types |= b;
				any_types = true;
			} else {
				if (f->ndevices == API_MAX_SSE_DEVICES) {
					snprintf(err, errcap, "more than %d devices in the filter",
						 API_MAX_SSE_DEVICES);
					goto bad;
				}
				if (!f->devices) {
					f->devices = calloc(API_MAX_SSE_DEVICES, sizeof *f->devices);
					if (!f->devices) {
						snprintf(err, errcap, "out of memory");
						goto bad;
					}
				}
				f->devices[f->ndevices] = strdup(item);
				if (!f->devices[f->ndevices]) {
					snprintf(err, errcap, "out of memory");
					goto bad;
				}
				f->ndevices++;
			}
			if (!c)
				break;
			p = c + 1;
		}
	}
	f->types = any_types ? types : API_EV_ALL;
	return true;
bad:
	api_events_filter_free(f);
	return false;
}

bool api_events_filter_match(const struct api_events_filter *f, unsigned type_bit,
			     const char *device_id)
{
	if (!(f->types & type_bit))
		return false;
	if (!f->ndevices)
		return true;
	if (!device_id)
		return false;
	for (unsigned i = 0; i < f->ndevices; i++)
		if (strcmp(f->devices[i], device_id) == 0)
			return true;
	return false;
}
