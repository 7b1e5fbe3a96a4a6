/*
 * telemetry.h - decoding telemetry payloads into points: SenML JSON (RFC 8428:
 * base name, base time, base unit, base value, several records, relative
 * times) and plain JSON objects ({"temp": 21.5, "rpm": 1200, "ts": ...}).
 * Part of src/store; the pipeline decodes once and hands the same points to
 * the store and to the rules.
 *
 * Ownership: a decoded batch owns its names (one arena per batch);
 * telemetry_batch_clear frees them. Pure: no I/O, no globals, any thread.
 */
#ifndef MOTE_STORE_TELEMETRY_H
#define MOTE_STORE_TELEMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define TELEMETRY_METRIC_MAX 64     /* bytes of a metric name */

struct telemetry_point {
	const char *metric; /* NUL-terminated, 1..TELEMETRY_METRIC_MAX bytes, owned by the batch */
	int64_t ts_ms;      /* Unix time in milliseconds */
	double value;       /* numbers; booleans as 0/1 */
};

struct telemetry_batch {
	struct telemetry_point *pts;
	size_t n, cap;
	/* the batch's arena and bookkeeping: private to telemetry.c */
	char *arena;
	size_t arena_len, arena_cap;
};

struct telemetry_limits {
	size_t max_points;   /* per payload (default 1000) */
	int64_t max_future_ms; /* points further in the future are refused (default 1 day) */
};

void telemetry_limits_defaults(struct telemetry_limits *l);

/*
 * Decodes payload[0..len) (SenML array or plain object) received at now_ms
 * for device_id into out (cleared first). MOTE_EMALFORMED / MOTE_ETOOBIG /
 * MOTE_EINVAL with a sentence in err naming what is wrong ("record 3: "v"
 * is not a number"); on error out is empty. Records without a numeric or
 * boolean value (vs, vd) are skipped, not errors.
 */
enum mote_err telemetry_decode(const uint8_t *payload, size_t len, int64_t now_ms,
			       const struct telemetry_limits *lim, struct telemetry_batch *out,
			       char *err, size_t errcap);
void telemetry_batch_clear(struct telemetry_batch *b);

/*
 * Parses an RFC 3339 time ("2024-12-05T06:30:00Z", "...00.250+01:00"; 't' or
 * ' ' for 'T'; at most millisecond precision kept) into Unix ms. false if it
 * is not one. For the API's from/to too.
 */
bool telemetry_parse_rfc3339(const char *s, int64_t *ms);

/*
 * Writes a finite value as the shortest JSON number that reads back as the
 * same double, fast for the common case of few decimals ("21.53" without
 * printf: integer arithmetic; anything else "%.15g", or "%.17g" when 15
 * digits do not read back exactly). out needs 32 bytes;
 * returns the length (0 and "null" for NaN or infinity). For the API's JSON
 * and CSV of query results, where printf dominated the time of a one-day query.
 */
size_t telemetry_format_value(double v, char *out);

#endif
