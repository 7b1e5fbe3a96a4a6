/*
 * telemetry.c - decoding telemetry payloads into points (telemetry.h).
 *
 * Two formats, told apart by the first non-blank byte:
 *   '['  SenML JSON (RFC 8428): records with bn/bt/bu/bv/bver and n/u/v/vb/vs/vd/
 *        s/t/ut; base fields apply to every later record until changed; name =
 *        bn + n; time = bt + t in seconds, values below 2^28 relative to now;
 *        value = bv + v, or vb as 0/1; records with only vs, vd or s are skipped.
 *   '{'  a plain object: numbers and booleans become points named by their key;
 *        nested objects flatten to "outer.inner" (at most TELEMETRY_DEPTH levels);
 *        strings, nulls and arrays are skipped; "ts" at the top level is the time
 *        of every point (Unix seconds below 1e11, else milliseconds, or an RFC
 *        3339 string); without it the time is now.
 * Names follow RFC 8428 section 4.5.1: 1..64 bytes of letters, digits and
 * - : . / _, starting with a letter or digit.
 *
 * Invariants: on error the batch is empty; names live in the batch's arena
 * (offsets while decoding, because the arena may move, pointers at the end).
 */
#include "store/telemetry.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"

#define TELEMETRY_DEPTH 4              /* levels of nested objects in the plain format */
#define SENML_REL_LIMIT 268435456.0    /* 2^28 s: smaller times are relative (RFC 8428 4.5.3) */
#define TIME_MAX_S 253402300799.0      /* 9999-12-31T23:59:59Z */

struct dec {
	const struct telemetry_limits *lim;
	struct telemetry_batch *out;
	int64_t now_ms;
	char *err;
	size_t errcap;
};

static enum mote_err fail(struct dec *d, enum mote_err e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum mote_err fail(struct dec *d, enum mote_err e, const char *fmt, ...)
{
	if (d->err && d->errcap) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(d->err, d->errcap, fmt, ap);
		va_end(ap);
	}
	return e;
}

void telemetry_limits_defaults(struct telemetry_limits *l)
{
	l->max_points = 1000;
	l->max_future_ms = 86400000;
}

void telemetry_batch_clear(struct telemetry_batch *b)
{
	free(b->pts);
	free(b->arena);
	memset(b, 0, sizeof *b);
}

static int name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == ':' || c == '.' || c == '/' || c == '_';
}

static int alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Quotes at most 40 bytes of a hostile string for an error sentence. */
static const char *shown(const char *s, size_t len, char *buf, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i == 40) {
			o += (size_t)snprintf(buf + o, cap - o, "...");
			break;
		}
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
	}
	buf[o] = 0;
	return buf;
}

/* where, or (NULL: a plain field) the field named b; only on error paths */
static const char *where_of(const char *where, const char *b, size_t blen, char *buf, size_t cap)
{
	char q[200];
	if (where)
		return where;
	snprintf(buf, cap, "field \"%s\"", shown(b, blen, q, sizeof q));
	return buf;
}

/* Checks a name (a, b concatenated) and appends a point. where NULL: a plain field b. */
static enum mote_err push(struct dec *d, const char *where, const char *a, size_t alen,
			  const char *b, size_t blen, int64_t ts_ms, double value)
{
	struct telemetry_batch *o = d->out;
	size_t len = alen + blen;
	char q[200], wb[TELEMETRY_METRIC_MAX + 100];
#define W where_of(where, b, blen, wb, sizeof wb)
	if (len == 0)
		return fail(d, MOTE_EINVAL, "%s: the name is empty", W);
	if (len > TELEMETRY_METRIC_MAX) {
		char full[2 * TELEMETRY_METRIC_MAX + 1];
		size_t ca = alen < TELEMETRY_METRIC_MAX ? alen : TELEMETRY_METRIC_MAX;
		size_t cb = blen < TELEMETRY_METRIC_MAX ? blen : TELEMETRY_METRIC_MAX;
		memcpy(full, a, ca);
		memcpy(full + ca, b, cb);
		return fail(d, MOTE_ETOOBIG, "%s: the name \"%s\" is longer than %d bytes", W,
			    shown(full, ca + cb, q, sizeof q), TELEMETRY_METRIC_MAX);
	}
	char name[TELEMETRY_METRIC_MAX + 1];
	memcpy(name, a, alen);
	memcpy(name + alen, b, blen);
	name[len] = 0;
	for (size_t i = 0; i < len; i++) {
		if (!name_char((unsigned char)name[i]) || (i == 0 && !alnum((unsigned char)name[0])))
			return fail(d, MOTE_EINVAL,
				    "%s: the name \"%s\" must start with a letter or digit and hold only "
				    "letters, digits and - : . / _",
				    W, shown(name, len, q, sizeof q));
	}
	if (!isfinite(value))
		return fail(d, MOTE_EINVAL, "%s: the value of \"%s\" is not a finite number", W,
			    name);
	if (ts_ms < 0)
		return fail(d, MOTE_EINVAL, "%s: the time of \"%s\" is before 1970", W, name);
	if (ts_ms > d->now_ms + d->lim->max_future_ms)
		return fail(d, MOTE_EINVAL,
			    "%s: the time of \"%s\" is more than %lld s in the future", W, name,
			    (long long)(d->lim->max_future_ms / 1000));
	if (o->n >= d->lim->max_points)
		return fail(d, MOTE_ETOOBIG, "more than %zu points in one payload",
			    d->lim->max_points);
	if (o->n == o->cap) {
		size_t nc = o->cap ? o->cap * 2 : 16;
		void *p = realloc(o->pts, nc * sizeof *o->pts);
		if (!p)
			return fail(d, MOTE_ENOMEM, "out of memory");
		o->pts = p;
		o->cap = nc;
	}
	if (o->arena_len + len + 1 > o->arena_cap) {
		size_t nc = o->arena_cap ? o->arena_cap * 2 : 256;
		while (nc < o->arena_len + len + 1)
			nc *= 2;
		void *p = realloc(o->arena, nc);
		if (!p)
			return fail(d, MOTE_ENOMEM, "out of memory");
		o->arena = p;
		o->arena_cap = nc;
	}
#undef W
	memcpy(o->arena + o->arena_len, name, len + 1);
	/* an offset until the arena stops moving (fixed in telemetry_decode) */
	o->pts[o->n].metric = (const char *)(uintptr_t)o->arena_len;
	o->pts[o->n].ts_ms = ts_ms;
	o->pts[o->n].value = value;
	o->n++;
	o->arena_len += len + 1;
	return MOTE_OK;
}

/* seconds (SenML) to milliseconds, refusing what does not fit a date */
static int secs_to_ms(double s, int64_t *ms)
{
	if (!isfinite(s) || s < -TIME_MAX_S || s > TIME_MAX_S)
		return 0;
	*ms = (int64_t)llround(s * 1000.0);
	return 1;
}

static const char *type_name(const cJSON *j)
{
	if (cJSON_IsNumber(j))
		return "a number";
	if (cJSON_IsString(j))
		return "a string";
	if (cJSON_IsBool(j))
		return "a boolean";
	if (cJSON_IsNull(j))
		return "null";
	if (cJSON_IsArray(j))
		return "an array";
	return "an object";
}

/* "record N" without printf: it runs for every record */
static void record_name(char *buf, size_t i)
{
	char tmp[24];
	size_t n = 0;
	memcpy(buf, "record ", 7);
	do {
		tmp[n++] = (char)('0' + i % 10);
		i /= 10;
	} while (i);
	for (size_t k = 0; k < n; k++)
		buf[7 + k] = tmp[n - 1 - k];
	buf[7 + n] = 0;
}

static enum mote_err senml(struct dec *d, const cJSON *root)
{
	char bn[TELEMETRY_METRIC_MAX + 1] = "";
	size_t bn_len = 0;
	double bt = 0, bv = 0;
	size_t nrec = (size_t)cJSON_GetArraySize(root);
	if (nrec == 0)
		return fail(d, MOTE_EINVAL, "the SenML pack is empty");
	if (nrec > d->lim->max_points)
		return fail(d, MOTE_ETOOBIG, "more than %zu records in one SenML pack",
			    d->lim->max_points);
	size_t i = 0;
	for (const cJSON *r = root->child; r; r = r->next, i++) {
		char where[32];
		record_name(where, i);
		if (!cJSON_IsObject(r))
			return fail(d, MOTE_EMALFORMED, "%s is %s, not an object", where, type_name(r));
		const char *n = "";
		size_t n_len = 0;
		double t = 0, v = 0;
		int has_v = 0, has_vb = 0, vb = 0;
		for (const cJSON *f = r->child; f; f = f->next) {
			const char *k = f->string;
			char q[200];
			if (!strcmp(k, "bn") || !strcmp(k, "n")) {
				if (!cJSON_IsString(f))
					return fail(d, MOTE_EINVAL, "%s: \"%s\" is %s, not a string",
						    where, k, type_name(f));
				size_t l = strlen(f->valuestring);
				if (l > TELEMETRY_METRIC_MAX)
					return fail(d, MOTE_ETOOBIG,
						    "%s: \"%s\" (\"%s\") is longer than %d bytes", where,
						    k, shown(f->valuestring, l, q, sizeof q),
						    TELEMETRY_METRIC_MAX);
				if (k[0] == 'b') {
					memcpy(bn, f->valuestring, l + 1);
					bn_len = l;
				} else {
					n = f->valuestring;
					n_len = l;
				}
			} else if (!strcmp(k, "bu") || !strcmp(k, "u") || !strcmp(k, "vs") ||
				   !strcmp(k, "vd")) {
				if (!cJSON_IsString(f))
					return fail(d, MOTE_EINVAL, "%s: \"%s\" is %s, not a string",
						    where, k, type_name(f));
			} else if (!strcmp(k, "bt") || !strcmp(k, "bv") || !strcmp(k, "t") ||
				   !strcmp(k, "v") || !strcmp(k, "bs") || !strcmp(k, "s") ||
				   !strcmp(k, "ut") || !strcmp(k, "bver")) {
				if (!cJSON_IsNumber(f))
					return fail(d, MOTE_EINVAL, "%s: \"%s\" is %s, not a number",
						    where, k, type_name(f));
				double x = f->valuedouble;
				if (!isfinite(x))
					return fail(d, MOTE_EINVAL,
						    "%s: \"%s\" is not a finite number", where, k);
				if (!strcmp(k, "bt"))
					bt = x;
				else if (!strcmp(k, "bv"))
					bv = x;
				else if (!strcmp(k, "t"))
					t = x;
				else if (!strcmp(k, "v")) {
					v = x;
					has_v = 1;
				}
			} else if (!strcmp(k, "vb")) {
				if (!cJSON_IsBool(f))
					return fail(d, MOTE_EINVAL, "%s: \"vb\" is %s, not a boolean",
						    where, type_name(f));
				has_vb = 1;
				vb = cJSON_IsTrue(f);
			} else {
				size_t l = strlen(k);
				/* RFC 8428 4.4: a field ending in '_' must be understood */
				if (l && k[l - 1] == '_')
					return fail(d, MOTE_EPROTO,
						    "%s: the field \"%s\" must be understood and is not",
						    where, shown(k, l, q, sizeof q));
			}
		}
		if (has_v && has_vb)
			return fail(d, MOTE_EINVAL, "%s has both \"v\" and \"vb\"", where);
		if (!has_v && !has_vb)
			continue; /* a string, data or sum record, or only base fields */
		double ts = bt + t;
		int64_t ts_ms;
		if (!isfinite(ts) || fabs(ts) > TIME_MAX_S)
			return fail(d, MOTE_EINVAL, "%s: the time is out of range", where);
		if (ts < SENML_REL_LIMIT)
			ts += (double)d->now_ms / 1000.0;
		if (!secs_to_ms(ts, &ts_ms))
			return fail(d, MOTE_EINVAL, "%s: the time is out of range", where);
		double val = has_vb ? (double)vb : bv + v;
		enum mote_err e = push(d, where, bn, bn_len, n, n_len, ts_ms, val);
		if (e)
			return e;
	}
	return MOTE_OK;
}

bool telemetry_parse_rfc3339(const char *s, int64_t *ms)
{
	int Y, M, D, h, m, sec, frac = 0, tz = 0;
	size_t len = strlen(s), i = 19;
	if (len < 20 || !mote_parse_digits(s, 4, &Y) || s[4] != '-' ||
	    !mote_parse_digits(s + 5, 2, &M) || s[7] != '-' || !mote_parse_digits(s + 8, 2, &D) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !mote_parse_digits(s + 11, 2, &h) ||
	    s[13] != ':' || !mote_parse_digits(s + 14, 2, &m) || s[16] != ':' ||
	    !mote_parse_digits(s + 17, 2, &sec))
		return 0;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || m > 59 || sec > 60)
		return 0;
	if (M == 2 && D == 29 && !((Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0))
		return 0;
	if (sec == 60)
		sec = 59; /* a leap second: Unix time has none */
	if (s[i] == '.') {
		int nd = 0;
		for (i++; s[i] >= '0' && s[i] <= '9'; i++, nd++)
			if (nd < 3)
				frac = frac * 10 + (s[i] - '0');
		if (nd == 0)
			return 0;
		for (; nd < 3; nd++)
			frac *= 10;
	}
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		int th, tm;
		if (!mote_parse_digits(s + i + 1, 2, &th) || s[i + 3] != ':' ||
		    !mote_parse_digits(s + i + 4, 2, &tm) || th > 23 || tm > 59)
			return 0;
		tz = (th * 60 + tm) * (s[i] == '+' ? 1 : -1);
		i += 6;
	} else {
		return 0;
	}
	if (s[i])
		return 0;
	int64_t secs = mote_days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 +
		       m * 60 + sec - tz * 60;
	*ms = secs * 1000 + frac;
	return 1;
}

static enum mote_err flatten(struct dec *d, const cJSON *obj, char *prefix, size_t plen,
			     int depth, int64_t ts_ms)
{
	char q[200];
	if (!obj->child && depth == 0)
		return fail(d, MOTE_EINVAL, "the object is empty");
	for (const cJSON *f = obj->child; f; f = f->next) {
		const char *k = f->string;
		if (depth == 0 && !strcmp(k, "ts"))
			continue;
		size_t kl = strlen(k);
		if (kl == 0)
			return fail(d, MOTE_EINVAL, "a field has an empty name");
		if (cJSON_IsObject(f)) {
			if (depth + 1 >= TELEMETRY_DEPTH)
				return fail(d, MOTE_EINVAL,
					    "\"%s\" nests objects deeper than %d levels",
					    shown(k, kl, q, sizeof q), TELEMETRY_DEPTH);
			if (plen + kl + 1 > TELEMETRY_METRIC_MAX) {
				char q2[200];
				return fail(d, MOTE_ETOOBIG,
					    "the name \"%s%s.\" is longer than %d bytes",
					    shown(prefix, plen, q, sizeof q), shown(k, kl, q2, sizeof q2),
					    TELEMETRY_METRIC_MAX);
			}
			memcpy(prefix + plen, k, kl);
			prefix[plen + kl] = '.';
			enum mote_err e = flatten(d, f, prefix, plen + kl + 1, depth + 1, ts_ms);
			if (e)
				return e;
			continue;
		}
		double v;
		if (cJSON_IsNumber(f))
			v = f->valuedouble;
		else if (cJSON_IsBool(f))
			v = cJSON_IsTrue(f) ? 1 : 0;
		else
			continue; /* strings, nulls and arrays carry no number */
		enum mote_err e = push(d, NULL, prefix, plen, k, kl, ts_ms, v);
		if (e)
			return e;
	}
	return MOTE_OK;
}

static enum mote_err plain(struct dec *d, const cJSON *root)
{
	int64_t ts_ms = d->now_ms;
	const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "ts");
	if (ts) {
		if (cJSON_IsNumber(ts)) {
			double x = ts->valuedouble;
			if (!isfinite(x) || x < 0 || x > TIME_MAX_S * 1000.0)
				return fail(d, MOTE_EINVAL, "\"ts\" is out of range");
			/* 1e11 s is the year 5138; 1e11 ms is 1973: no real time is ambiguous */
			if (x < 1e11)
				secs_to_ms(x, &ts_ms);
			else
				ts_ms = (int64_t)llround(x);
		} else if (cJSON_IsString(ts)) {
			char q[200];
			if (!telemetry_parse_rfc3339(ts->valuestring, &ts_ms))
				return fail(d, MOTE_EINVAL,
					    "\"ts\" (\"%s\") is not an RFC 3339 time like "
					    "2024-12-05T06:30:00Z",
					    shown(ts->valuestring, strlen(ts->valuestring), q, sizeof q));
		} else {
			return fail(d, MOTE_EINVAL,
				    "\"ts\" is %s, not Unix time (s or ms) or an RFC 3339 string",
				    type_name(ts));
		}
		if (!root->child->next && root->child == ts)
			return fail(d, MOTE_EINVAL, "the object has only \"ts\"");
	}
	char prefix[TELEMETRY_METRIC_MAX + 2];
	return flatten(d, root, prefix, 0, 0, ts_ms);
}

enum mote_err telemetry_decode(const uint8_t *payload, size_t len, int64_t now_ms,
			       const struct telemetry_limits *lim, struct telemetry_batch *out,
			       char *err, size_t errcap)
{
	struct telemetry_limits deflim;
	if (!lim) {
		telemetry_limits_defaults(&deflim);
		lim = &deflim;
	}
	struct dec d = { .lim = lim, .out = out, .now_ms = now_ms, .err = err, .errcap = errcap };
	enum mote_err e;
	out->n = 0;
	out->arena_len = 0;
	if (err && errcap)
		err[0] = 0;
	size_t i = 0;
	while (i < len && (payload[i] == ' ' || payload[i] == '\t' || payload[i] == '\r' ||
			   payload[i] == '\n'))
		i++;
	if (i == len)
		return fail(&d, MOTE_EMALFORMED, "the payload is empty");
	if (payload[i] != '[' && payload[i] != '{')
		return fail(&d, MOTE_EMALFORMED,
			    "the payload is neither a SenML array nor a JSON object");
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts((const char *)payload, len, &end, 0);
	if (!root) {
		size_t at = end && end >= (const char *)payload ? (size_t)(end - (const char *)payload)
							       : 0;
		return fail(&d, MOTE_EMALFORMED, "the payload is not valid JSON (near byte %zu)", at);
	}
	for (const char *p = end; p && p < (const char *)payload + len; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			e = fail(&d, MOTE_EMALFORMED, "the payload has bytes after the JSON value");
			goto out;
		}
	}
	e = cJSON_IsArray(root) ? senml(&d, root) : plain(&d, root);
	if (e == MOTE_OK) {
		for (size_t k = 0; k < out->n; k++)
			out->pts[k].metric = out->arena + (uintptr_t)out->pts[k].metric;
	}
out:
	cJSON_Delete(root);
	if (e)
		out->n = 0;
	return e;
}

size_t telemetry_format_value(double v, char *out)
{
	static const double p10[7] = { 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0 };
	if (!isfinite(v)) {
		memcpy(out, "null", 5);
		return 0;
	}
	if (fabs(v) < 1e15) {
		for (int k = 0; k <= 6; k++) {
			double s = v * p10[k];
			if (!(fabs(s) < 9007199254740992.0))
				break;
			long long i = llround(s);
			double back = (double)i / p10[k];
			/* bitwise equal (so -0.0 takes the slow path and keeps its sign) */
			if (memcmp(&back, &v, sizeof v) != 0)
				continue;
			/* i / 10^k is the correctly rounded double of this decimal: it reads back exactly */
			char tmp[24];
			size_t n = 0, o = 0;
			unsigned long long u = i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;
			do {
				tmp[n++] = (char)('0' + u % 10);
				u /= 10;
			} while (u);
			while (n <= (size_t)k) /* at least one digit before the point */
				tmp[n++] = '0';
			if (i < 0)
				out[o++] = '-';
			for (size_t j = n; j > 0; j--) {
				if (j == (size_t)k && k > 0)
					out[o++] = '.';
				out[o++] = tmp[j - 1];
			}
			out[o] = 0;
			return o;
		}
	}
	/* the shortest of 15 or 17 significant digits that reads back exactly */
	int n = snprintf(out, 32, "%.15g", v);
	if (strtod(out, NULL) != v)
		n = snprintf(out, 32, "%.17g", v);
	return n > 0 ? (size_t)n : 0;
}
