/*
 * tstore.h - the telemetry store: points per (device, metric) series kept in
 * SQLite (WAL) as compressed blocks, with 1-minute and 1-hour rollups and
 * retention that run in the background. The face of src/store/ (with
 * telemetry.h for decoding).
 *
 * Threading: tstore_append is called from one thread (the pipeline); every
 * other function is safe from any thread at the same time (the API's query
 * threads). Points appended are durable (in SQLite) within flush_ms.
 *
 * Ownership: the caller owns the store (tstore_close). Results are owned by
 * the caller and freed with their _free function.
 */
#ifndef MOTE_STORE_TSTORE_H
#define MOTE_STORE_TSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/telemetry.h"

struct tstore;

struct tstore_config {
	const char *path;        /* the database file, e.g. DATA/telemetry.db (borrowed) */
	uint32_t raw_days;       /* raw points kept this long (default 7) */
	uint32_t minute_days;    /* 1-minute rollups kept this long (default 90) */
	uint32_t hour_days;      /* 1-hour rollups kept this long (default 730) */
	uint32_t flush_ms;       /* longest time a point waits in memory (default 1000) */
	uint32_t max_query_points; /* cap on points a query returns (default 100000: a day at 1 Hz) */
	bool manual_maintenance; /* tests: retention runs only in tstore_maintain */
	uint64_t max_pending;    /* points in memory before appends are refused (default 20 million,
				    about 320 MB: a disk that cannot keep up must not take the RAM) */
};

void tstore_config_defaults(struct tstore_config *cfg);

/* MOTE_EIO with a sentence in err (file, SQLite's message). */
enum mote_err tstore_open(const struct tstore_config *cfg, struct tstore **out, char *err,
			  size_t errcap);
/* Flushes everything in memory to disk, stops the background work, frees. */
void tstore_close(struct tstore *s);

/*
 * Appends a decoded batch for device_id: a hash lookup and an array push per
 * point, no I/O. MOTE_ENOMEM; MOTE_EINVAL for an empty device id or a
 * metric name that is empty or too long; MOTE_EFULL past 8 million series,
 * or (the whole batch refused) when max_pending points wait for the disk.
 * Points before the failing one are kept.
 */
enum mote_err tstore_append(struct tstore *s, const char *device_id,
			    const struct telemetry_point *pts, size_t n);

enum tstore_agg {
	TSTORE_AGG_NONE, /* raw points (capped) */
	TSTORE_AGG_AVG,
	TSTORE_AGG_MIN,
	TSTORE_AGG_MAX,
	TSTORE_AGG_SUM,
	TSTORE_AGG_COUNT,
	TSTORE_AGG_LAST,
};

/* "avg" -> TSTORE_AGG_AVG ...; false for an unknown word. */
bool tstore_agg_parse(const char *word, enum tstore_agg *out);

struct tstore_query {
	const char *device_id;
	const char *metric;
	int64_t from_ms, to_ms;  /* [from, to) */
	enum tstore_agg agg;
	int64_t interval_ms;     /* bucket width for agg (0 with agg: one bucket for the range) */
	uint32_t max_points;     /* 0: the store's cap; never more than the cap */
};

struct tstore_row {
	int64_t ts_ms;   /* the point's time, or the bucket's start */
	double value;
};

struct tstore_result {
	struct tstore_row *rows;
	size_t n;
	bool truncated;  /* more rows matched than max_points */
};

/* MOTE_EINVAL (bad range or interval, with a sentence in err) / MOTE_EIO. */
enum mote_err tstore_query(struct tstore *s, const struct tstore_query *q,
			   struct tstore_result *out, char *err, size_t errcap);
void tstore_result_free(struct tstore_result *r);

struct tstore_latest {
	char metric[TELEMETRY_METRIC_MAX + 1];
	int64_t ts_ms;
	double value;
};

/* The latest value of every metric of a device (*out malloc'd, caller frees). */
enum mote_err tstore_latest(struct tstore *s, const char *device_id, struct tstore_latest **out,
			    size_t *n);
/* Removes every point, block and rollup of a device (memory and disk). */
enum mote_err tstore_delete_device(struct tstore *s, const char *device_id);

struct tstore_stats {
	uint64_t points_appended;  /* since open */
	uint64_t points_flushed;   /* durable in SQLite */
	uint64_t points_pending;   /* in memory, not yet on disk */
	uint64_t series;
	uint64_t blocks;
	uint64_t bytes_on_disk;    /* the database and its WAL */
	uint64_t flush_errors;
	uint64_t points_refused;   /* appends refused because max_pending points waited */
};
void tstore_get_stats(struct tstore *s, struct tstore_stats *out);

/* Writes everything in memory now (tests, benchmarks, shutdown); any thread. */
void tstore_flush(struct tstore *s);
/*
 * Flushes, then runs retention as if the time were now_ms: deletes raw
 * blocks whose newest point is older than raw_days, minute rollups older
 * than minute_days, hour rollups older than hour_days. The flush thread does
 * this every minute with the wall clock; tests call it with their own time.
 */
void tstore_maintain(struct tstore *s, int64_t now_ms);

#endif
