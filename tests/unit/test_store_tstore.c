/* test_store_tstore.c - the telemetry store: round trips, aggregations, rollups,
 * retention, durability, deletion, and queries racing appends and flushes. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/tstore.h"
#include "tmpdir.h"

#define T0 1733356800000LL /* 2024-12-05T00:00:00Z: on a whole hour */
#define DAY 86400000LL

struct fx {
	char dir[64];
	char path[128];
	struct tstore *s;
};

static struct tstore *open_store(struct fx *f, uint32_t flush_ms)
{
	struct tstore_config cfg;
	char err[256];
	tstore_config_defaults(&cfg);
	cfg.path = f->path;
	cfg.flush_ms = flush_ms;
	cfg.manual_maintenance = true;
	cfg.max_query_points = 100000;
	struct tstore *s = NULL;
	if (tstore_open(&cfg, &s, err, sizeof err) != MOTE_OK)
		fail_msg("open: %s", err);
	return s;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	strcpy(f->dir, "/tmp/mote-tstore-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/telemetry.db", f->dir);
	f->s = open_store(f, 60000); /* flushes only when a test asks */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	tstore_close(f->s);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void add(struct tstore *s, const char *dev, const char *metric, int64_t ts, double v)
{
	struct telemetry_point p = { metric, ts, v };
	assert_int_equal(tstore_append(s, dev, &p, 1), MOTE_OK);
}

static struct tstore_result query(struct tstore *s, const char *dev, const char *metric,
				  int64_t from, int64_t to, enum tstore_agg agg, int64_t interval)
{
	struct tstore_query q = { dev, metric, from, to, agg, interval, 0 };
	struct tstore_result r;
	char err[256];
	if (tstore_query(s, &q, &r, err, sizeof err) != MOTE_OK)
		fail_msg("query: %s", err);
	return r;
}

static void round_trip(void **state)
{
	struct fx *f = *state;
	/* 3000 points at 1 Hz: two sealed blocks, a head; decimals, then arbitrary doubles */
	for (int i = 0; i < 3000; i++)
		add(f->s, "d1", "temp", T0 + i * 1000LL, i < 1500 ? 20 + i / 100.0 : sin(i));
	add(f->s, "d2", "temp", T0, 99);
	for (int pass = 0; pass < 3; pass++) {
		struct tstore_result r = query(f->s, "d1", "temp", T0, T0 + DAY, TSTORE_AGG_NONE, 0);
		assert_int_equal(r.n, 3000);
		assert_false(r.truncated);
		for (int i = 0; i < 3000; i++) {
			assert_int_equal(r.rows[i].ts_ms, T0 + i * 1000LL);
			double want = i < 1500 ? 20 + i / 100.0 : sin(i);
			assert_memory_equal(&r.rows[i].value, &want, sizeof want);
		}
		tstore_result_free(&r);
		tstore_flush(f->s); /* then from disk: parts and blocks */
	}
	struct tstore_stats st;
	tstore_get_stats(f->s, &st);
	assert_int_equal(st.points_appended, 3001);
	assert_int_equal(st.points_flushed, 3001);
	assert_int_equal(st.points_pending, 0);
	assert_int_equal(st.series, 2);
	assert_true(st.blocks >= 3);
	assert_true(st.bytes_on_disk > 0);
	/* unknown device or metric: no rows */
	struct tstore_result r = query(f->s, "d1", "nope", T0, T0 + DAY, TSTORE_AGG_NONE, 0);
	assert_int_equal(r.n, 0);
	tstore_result_free(&r);
	r = query(f->s, "zz", "temp", T0, T0 + DAY, TSTORE_AGG_AVG, 0);
	assert_int_equal(r.n, 0);
	tstore_result_free(&r);
}

static void heads_and_blocks_merge(void **state)
{
	struct fx *f = *state;
	/* flush in the middle of a head: part on disk, the rest in memory, then sealed */
	for (int k = 0; k < 5; k++) {
		for (int i = 0; i < 700; i++)
			add(f->s, "d", "m", T0 + (k * 700 + i) * 10LL, k * 700 + i);
		if (k % 2 == 0)
			tstore_flush(f->s);
		struct tstore_result r = query(f->s, "d", "m", T0, T0 + DAY, TSTORE_AGG_NONE, 0);
		assert_int_equal(r.n, (k + 1) * 700);
		for (size_t i = 0; i < r.n; i++)
			assert_true(r.rows[i].value == (double)i);
		tstore_result_free(&r);
		r = query(f->s, "d", "m", T0, T0 + DAY, TSTORE_AGG_SUM, 0);
		assert_int_equal(r.n, 1);
		double n = (k + 1) * 700;
		assert_true(r.rows[0].value == n * (n - 1) / 2);
		tstore_result_free(&r);
	}
	/* out of order points are returned in time order */
	add(f->s, "d", "m", T0 - 5, -1);
	struct tstore_result r = query(f->s, "d", "m", T0 - 10, T0 + 20, TSTORE_AGG_NONE, 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.rows[0].ts_ms, T0 - 5);
	assert_int_equal(r.rows[1].ts_ms, T0);
	assert_int_equal(r.rows[2].ts_ms, T0 + 10);
	tstore_result_free(&r);
}

/* values 1..10 at T0 + 0, 10, ..., 90 s, and 100 at T0 + 120 s */
static void fill_agg(struct tstore *s)
{
	for (int i = 0; i < 10; i++)
		add(s, "a", "x", T0 + i * 10000LL, i + 1);
	add(s, "a", "x", T0 + 120000, 100);
}

static void check_aggs(struct tstore *s, const char *when)
{
	static const struct {
		enum tstore_agg agg;
		double one[1];     /* interval 0 over [T0, T0 + 3 min) */
		double per_min[3]; /* interval 60 s: minutes 0, 1, 2 */
	} cases[] = {
		{ TSTORE_AGG_AVG, { 155.0 / 11 }, { 3.5, 8.5, 100 } },
		{ TSTORE_AGG_MIN, { 1 }, { 1, 7, 100 } },
		{ TSTORE_AGG_MAX, { 100 }, { 6, 10, 100 } },
		{ TSTORE_AGG_SUM, { 155 }, { 21, 34, 100 } },
		{ TSTORE_AGG_COUNT, { 11 }, { 6, 4, 1 } },
		{ TSTORE_AGG_LAST, { 100 }, { 6, 10, 100 } },
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct tstore_result r = query(s, "a", "x", T0, T0 + 180000, cases[c].agg, 0);
		assert_int_equal(r.n, 1);
		assert_int_equal(r.rows[0].ts_ms, T0);
		if (fabs(r.rows[0].value - cases[c].one[0]) > 1e-9)
			fail_msg("%s agg %d: %g, want %g", when, cases[c].agg, r.rows[0].value,
				 cases[c].one[0]);
		tstore_result_free(&r);
		/* minute buckets: raw when 30 s, minute rollups for 60 s */
		for (int64_t iv = 60000; iv <= 60000; iv++) {
			r = query(s, "a", "x", T0, T0 + 180000, cases[c].agg, iv);
			assert_int_equal(r.n, 3);
			for (int b = 0; b < 3; b++) {
				assert_int_equal(r.rows[b].ts_ms, T0 + b * 60000LL);
				if (fabs(r.rows[b].value - cases[c].per_min[b]) > 1e-9)
					fail_msg("%s agg %d minute %d: %g, want %g", when, cases[c].agg,
						 b, r.rows[b].value, cases[c].per_min[b]);
			}
			tstore_result_free(&r);
		}
	}
	/* 30 s buckets come from raw points; empty buckets are left out */
	struct tstore_result r = query(s, "a", "x", T0, T0 + 180000, TSTORE_AGG_COUNT, 30000);
	assert_int_equal(r.n, 5);
	int64_t want_ts[5] = { T0, T0 + 30000, T0 + 60000, T0 + 90000, T0 + 120000 };
	double want_v[5] = { 3, 3, 3, 1, 1 };
	for (int i = 0; i < 5; i++) {
		assert_int_equal(r.rows[i].ts_ms, want_ts[i]);
		assert_true(r.rows[i].value == want_v[i]);
	}
	tstore_result_free(&r);
	/* hour rollups: one hour bucket */
	r = query(s, "a", "x", T0, T0 + 3600000, TSTORE_AGG_SUM, 3600000);
	assert_int_equal(r.n, 1);
	assert_true(r.rows[0].value == 155);
	tstore_result_free(&r);
	/* unaligned ends: whole minutes from rollups, the partial ones from raw points, exact */
	r = query(s, "a", "x", T0 + 5000, T0 + 125000, TSTORE_AGG_SUM, 60000);
	assert_int_equal(r.n, 3);
	assert_true(r.rows[0].value == 2 + 3 + 4 + 5 + 6);
	assert_true(r.rows[1].value == 7 + 8 + 9 + 10);
	assert_true(r.rows[2].value == 100);
	tstore_result_free(&r);
	r = query(s, "a", "x", T0 + 15000, T0 + 121000, TSTORE_AGG_COUNT, 0);
	assert_true(r.n == 1 && r.rows[0].value == 9 && r.rows[0].ts_ms == T0 + 15000);
	tstore_result_free(&r);
	r = query(s, "a", "x", T0 + 1, T0 + 3600001, TSTORE_AGG_AVG, 3600000);
	assert_true(r.n == 1 && fabs(r.rows[0].value - 154.0 / 10) < 1e-9);
	tstore_result_free(&r);
	/* unaligned from: raw, exact: [T0 + 5 s, T0 + 65 s) holds 2..7 */
	r = query(s, "a", "x", T0 + 5000, T0 + 65000, TSTORE_AGG_SUM, 60000);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.rows[0].ts_ms, T0);
	assert_true(r.rows[0].value == 2 + 3 + 4 + 5 + 6);
	assert_true(r.rows[1].value == 7);
	tstore_result_free(&r);
}

static void aggregations(void **state)
{
	struct fx *f = *state;
	fill_agg(f->s);
	check_aggs(f->s, "memory");
	tstore_flush(f->s);
	check_aggs(f->s, "disk");
	tstore_close(f->s);
	f->s = open_store(f, 60000);
	check_aggs(f->s, "reopened");
}

static void edges_caps_and_errors(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 100; i++)
		add(f->s, "e", "m", T0 + i, i);
	/* [from, to): from included, to excluded */
	struct tstore_result r = query(f->s, "e", "m", T0 + 10, T0 + 20, TSTORE_AGG_NONE, 0);
	assert_int_equal(r.n, 10);
	assert_int_equal(r.rows[0].ts_ms, T0 + 10);
	assert_int_equal(r.rows[9].ts_ms, T0 + 19);
	tstore_result_free(&r);
	/* caps: the query's own, never above the store's */
	struct tstore_query q = { "e", "m", T0, T0 + 1000, TSTORE_AGG_NONE, 0, 7 };
	char err[256];
	assert_int_equal(tstore_query(f->s, &q, &r, err, sizeof err), MOTE_OK);
	assert_int_equal(r.n, 7);
	assert_true(r.truncated);
	assert_int_equal(r.rows[6].ts_ms, T0 + 6);
	tstore_result_free(&r);
	q.max_points = 100;
	assert_int_equal(tstore_query(f->s, &q, &r, err, sizeof err), MOTE_OK);
	assert_int_equal(r.n, 100);
	assert_false(r.truncated);
	tstore_result_free(&r);
	q.agg = TSTORE_AGG_COUNT;
	q.interval_ms = 10;
	q.max_points = 5;
	assert_int_equal(tstore_query(f->s, &q, &r, err, sizeof err), MOTE_OK);
	assert_int_equal(r.n, 5);
	assert_true(r.truncated);
	assert_true(r.rows[4].value == 10);
	tstore_result_free(&r);
	/* bad queries */
	struct tstore_query bad[] = {
		{ "e", "m", T0, T0, TSTORE_AGG_NONE, 0, 0 },
		{ "e", "m", T0 + 1, T0, TSTORE_AGG_NONE, 0, 0 },
		{ "e", "m", T0, T0 + 1, TSTORE_AGG_AVG, -1, 0 },
		{ "e", "m", T0, T0 + 1, TSTORE_AGG_NONE, 1000, 0 },
		{ "e", NULL, T0, T0 + 1, TSTORE_AGG_NONE, 0, 0 },
		{ "", "m", T0, T0 + 1, TSTORE_AGG_NONE, 0, 0 },
		{ "e", "m", T0, T0 + 1, (enum tstore_agg)42, 0, 0 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = 0;
		assert_int_equal(tstore_query(f->s, &bad[i], &r, err, sizeof err), MOTE_EINVAL);
		assert_true(strlen(err) > 5);
		assert_null(r.rows);
	}
	/* bad appends */
	struct telemetry_point p = { "", T0, 1 };
	assert_int_equal(tstore_append(f->s, "e", &p, 1), MOTE_EINVAL);
	p.metric = "m";
	assert_int_equal(tstore_append(f->s, "", &p, 1), MOTE_EINVAL);
	assert_int_equal(tstore_append(f->s, "e", &p, 0), MOTE_OK);
	enum tstore_agg a;
	assert_true(tstore_agg_parse("count", &a));
	assert_int_equal(a, TSTORE_AGG_COUNT);
	assert_false(tstore_agg_parse("median", &a));
	assert_false(tstore_agg_parse(NULL, &a));
}

static void durability_and_latest(void **state)
{
	struct fx *f = *state;
	struct telemetry_point pts[3] = { { "t", T0 + 5000, 1.5 }, { "h", T0, 40 }, { "t", T0 + 1000, 9 } };
	assert_int_equal(tstore_append(f->s, "dev", pts, 3), MOTE_OK);
	for (int i = 0; i < 5000; i++)
		add(f->s, "many", "v", T0 + i, i * 0.25);
	struct tstore_latest *l;
	size_t n;
	assert_int_equal(tstore_latest(f->s, "dev", &l, &n), MOTE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(l[0].metric, "h");
	assert_string_equal(l[1].metric, "t");
	assert_int_equal(l[1].ts_ms, T0 + 5000); /* the newest time, not the last appended */
	assert_true(l[1].value == 1.5);
	free(l);
	/* close writes everything; reopen sees it, and appends continue the series */
	tstore_close(f->s);
	f->s = open_store(f, 60000);
	struct tstore_stats st;
	tstore_get_stats(f->s, &st);
	assert_int_equal(st.series, 3);
	assert_int_equal(st.points_pending, 0);
	assert_int_equal(tstore_latest(f->s, "dev", &l, &n), MOTE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(l[1].ts_ms, T0 + 5000);
	free(l);
	for (int i = 5000; i < 6000; i++)
		add(f->s, "many", "v", T0 + i, i * 0.25);
	struct tstore_result r = query(f->s, "many", "v", T0, T0 + DAY, TSTORE_AGG_NONE, 0);
	assert_int_equal(r.n, 6000);
	for (int i = 0; i < 6000; i++)
		assert_true(r.rows[i].value == i * 0.25);
	tstore_result_free(&r);
	tstore_close(f->s);
	f->s = open_store(f, 60000);
	r = query(f->s, "many", "v", T0, T0 + DAY, TSTORE_AGG_COUNT, 0);
	assert_true(r.n == 1 && r.rows[0].value == 6000);
	tstore_result_free(&r);
	assert_int_equal(tstore_latest(f->s, "nobody", &l, &n), MOTE_OK);
	assert_int_equal(n, 0);
	free(l);
}

/* a disk that cannot keep up: memory is bounded, appends are refused whole, then accepted again */
static void pending_bound(void **state)
{
	struct fx *f = *state;
	tstore_close(f->s);
	struct tstore_config cfg;
	char err[256];
	tstore_config_defaults(&cfg);
	cfg.path = f->path;
	cfg.flush_ms = 60000;
	cfg.max_pending = 100;
	assert_int_equal(tstore_open(&cfg, &f->s, err, sizeof err), MOTE_OK);
	struct telemetry_point pts[60];
	for (int i = 0; i < 60; i++)
		pts[i] = (struct telemetry_point){ "m", T0 + i, i };
	assert_int_equal(tstore_append(f->s, "p", pts, 60), MOTE_OK);
	assert_int_equal(tstore_append(f->s, "p", pts, 60), MOTE_EFULL);
	assert_int_equal(tstore_append(f->s, "p", pts, 40), MOTE_OK);
	struct tstore_stats st;
	tstore_get_stats(f->s, &st);
	assert_int_equal(st.points_pending, 100);
	assert_int_equal(st.points_refused, 60);
	tstore_flush(f->s);
	assert_int_equal(tstore_append(f->s, "p", pts, 60), MOTE_OK);
}

/* the flush thread makes points durable by itself within flush_ms */
static void background_flush(void **state)
{
	struct fx *f = *state;
	tstore_close(f->s);
	f->s = open_store(f, 20);
	for (int i = 0; i < 100; i++)
		add(f->s, "bg", "m", T0 + i, i);
	struct tstore_stats st;
	for (int i = 0; i < 500; i++) {
		tstore_get_stats(f->s, &st);
		if (st.points_flushed == 100)
			break;
		usleep(10000);
	}
	assert_int_equal(st.points_flushed, 100);
	assert_int_equal(st.points_pending, 0);
}

static void rollups_and_retention(void **state)
{
	struct fx *f = *state;
	/* 3 days at one point per 10 s, value = minute of the day */
	int64_t start = T0 - 3 * DAY;
	for (int64_t t = start; t < T0; t += 10000)
		add(f->s, "r", "m", t, (double)((t / 60000) % 1440));
	tstore_maintain(f->s, T0); /* nothing is old yet (7 days raw) */
	struct tstore_result r = query(f->s, "r", "m", start, T0, TSTORE_AGG_COUNT, 0);
	assert_true(r.n == 1 && r.rows[0].value == 3 * 8640);
	tstore_result_free(&r);
	struct tstore_stats before;
	tstore_get_stats(f->s, &before);
	/* 9 days later: raw (7 days) of the first 2 days is gone, rollups remain */
	tstore_maintain(f->s, T0 + 6 * DAY - 1);
	struct tstore_stats after;
	tstore_get_stats(f->s, &after);
	assert_true(after.blocks < before.blocks);
	r = query(f->s, "r", "m", start, start + DAY, TSTORE_AGG_NONE, 0);
	assert_true(r.n < 8640); /* raw points of day one: deleted (the block spanning the cut stays) */
	tstore_result_free(&r);
	/* an agg over the first day is answered from minute rollups, exactly */
	r = query(f->s, "r", "m", start, start + DAY, TSTORE_AGG_COUNT, 0);
	assert_true(r.n == 1 && r.rows[0].value == 8640);
	tstore_result_free(&r);
	r = query(f->s, "r", "m", start, start + DAY, TSTORE_AGG_MAX, 3600000);
	assert_int_equal(r.n, 24);
	assert_true(r.rows[0].value == 59);
	assert_true(r.rows[23].value == 1439);
	tstore_result_free(&r);
	/* an unaligned range past raw retention: widened to whole minutes */
	r = query(f->s, "r", "m", start + 30000, start + 90000, TSTORE_AGG_COUNT, 0);
	assert_true(r.n == 1 && r.rows[0].value == 12);
	tstore_result_free(&r);
	/* 100 days later: minute rollups gone, hour rollups answer */
	tstore_maintain(f->s, T0 + 100 * DAY);
	r = query(f->s, "r", "m", start, T0, TSTORE_AGG_AVG, DAY);
	assert_int_equal(r.n, 3);
	for (int i = 0; i < 3; i++)
		assert_true(fabs(r.rows[i].value - 719.5) < 1e-9);
	tstore_result_free(&r);
	r = query(f->s, "r", "m", start, start + 60000, TSTORE_AGG_COUNT, 60000);
	assert_true(r.n == 1 && r.rows[0].value == 360); /* the hour, widened */
	tstore_result_free(&r);
	/* 3 years later: all gone */
	tstore_maintain(f->s, T0 + 1000 * DAY);
	r = query(f->s, "r", "m", start, T0, TSTORE_AGG_COUNT, 0);
	assert_int_equal(r.n, 0);
	tstore_result_free(&r);
}

static void delete_device(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 2000; i++) {
		add(f->s, "gone", "a", T0 + i, i);
		add(f->s, "gone", "b", T0 + i, i);
		add(f->s, "kept", "a", T0 + i, i);
		if (i == 1500)
			tstore_flush(f->s);
	}
	assert_int_equal(tstore_delete_device(f->s, "gone"), MOTE_OK);
	assert_int_equal(tstore_delete_device(f->s, "never"), MOTE_OK);
	struct tstore_stats st;
	tstore_get_stats(f->s, &st);
	assert_int_equal(st.series, 1);
	assert_int_equal(st.points_pending, 499);
	struct tstore_result r = query(f->s, "gone", "a", T0, T0 + DAY, TSTORE_AGG_COUNT, 0);
	assert_int_equal(r.n, 0);
	tstore_result_free(&r);
	struct tstore_latest *l;
	size_t n;
	assert_int_equal(tstore_latest(f->s, "gone", &l, &n), MOTE_OK);
	assert_int_equal(n, 0);
	free(l);
	/* the same names again start empty, also after a reopen */
	add(f->s, "gone", "a", T0 + 5, 5);
	tstore_close(f->s);
	f->s = open_store(f, 60000);
	r = query(f->s, "gone", "a", T0, T0 + DAY, TSTORE_AGG_NONE, 0);
	assert_int_equal(r.n, 1);
	assert_true(r.rows[0].value == 5);
	tstore_result_free(&r);
	r = query(f->s, "gone", "b", T0, T0 + DAY, TSTORE_AGG_NONE, 0);
	assert_int_equal(r.n, 0);
	tstore_result_free(&r);
	r = query(f->s, "kept", "a", T0, T0 + DAY, TSTORE_AGG_COUNT, 3600000);
	assert_true(r.n == 1 && r.rows[0].value == 2000);
	tstore_result_free(&r);
}

/* a damaged block on disk is an error for the query, never a crash */
static void corrupt_block(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 50; i++)
		add(f->s, "c", "m", T0 + i, i);
	tstore_close(f->s);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE ts_parts SET data = x'0100ff'", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	f->s = open_store(f, 60000);
	struct tstore_query q = { "c", "m", T0, T0 + DAY, TSTORE_AGG_NONE, 0, 0 };
	struct tstore_result r;
	char err[256];
	assert_int_equal(tstore_query(f->s, &q, &r, err, sizeof err), MOTE_EIO);
	assert_non_null(strstr(err, "damaged"));
	/* a full block too */
	for (int i = 0; i < 1100; i++)
		add(f->s, "c2", "m", T0 + i, i);
	tstore_close(f->s);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE ts_blocks SET data = x'01000301'", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
	f->s = open_store(f, 60000);
	q.device_id = "c2";
	assert_int_equal(tstore_query(f->s, &q, &r, err, sizeof err), MOTE_EIO);
	assert_non_null(strstr(err, "ts_blocks"));
}

/* a telemetry.db of the earlier layout is refused with a sentence, not misread */
static void old_layout_refused(void **state)
{
	struct fx *f = *state;
	tstore_close(f->s);
	f->s = NULL;
	unlink(f->path);
	char wal[160];
	snprintf(wal, sizeof wal, "%s-wal", f->path);
	unlink(wal);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE ts_blocks(id INTEGER PRIMARY KEY, t_first, t_last,"
					  " count, data)", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	struct tstore_config cfg;
	char err[300];
	tstore_config_defaults(&cfg);
	cfg.path = f->path;
	assert_int_equal(tstore_open(&cfg, &f->s, err, sizeof err), MOTE_EIO);
	assert_non_null(strstr(err, "earlier development build"));
	f->s = NULL;
}

/* queries from several threads while one thread appends and the store flushes every 2 ms */
struct race {
	struct tstore *s;
	atomic_long appended; /* per metric, after tstore_append returned: a lower bound */
	atomic_long started;  /* per metric, before it was called: an upper bound */
	atomic_int done;
	atomic_int errors;
};

static void *appender(void *arg)
{
	struct race *rc = arg;
	struct telemetry_point pts[50];
	for (int k = 0; k < 2000; k++) {
		for (int i = 0; i < 50; i++) {
			pts[i].metric = i % 2 ? "a" : "b";
			pts[i].ts_ms = T0 + (k * 50 + i) * 100LL;
			pts[i].value = 1;
		}
		atomic_fetch_add(&rc->started, 25);
		if (tstore_append(rc->s, "race", pts, 50) != MOTE_OK)
			atomic_fetch_add(&rc->errors, 1);
		atomic_fetch_add(&rc->appended, 25); /* per metric */
		if (k % 50 == 0)
			usleep(1000);
	}
	atomic_store(&rc->done, 1);
	return NULL;
}

static void *querier(void *arg)
{
	struct race *rc = arg;
	double prev_raw = 0, prev_roll = 0;
	while (!atomic_load(&rc->done)) {
		long before = atomic_load(&rc->appended);
		/* raw source and minute-rollup source: never more than appended, never less than before */
		/* raw points (30 s buckets), minute rollups, rollups with raw edges */
		struct tstore_query qs[3] = {
			{ "race", "a", T0, T0 + DAY, TSTORE_AGG_COUNT, 30000, 0 },
			{ "race", "a", T0, T0 + DAY, TSTORE_AGG_SUM, 60000, 0 },
			{ "race", "a", T0 + 1, T0 + DAY - 1, TSTORE_AGG_SUM, 60000, 0 },
		};
		double got[3];
		long after = 0;
		for (int k = 0; k < 3; k++) {
			struct tstore_result r;
			char err[256];
			if (tstore_query(rc->s, &qs[k], &r, err, sizeof err)) {
				atomic_fetch_add(&rc->errors, 1);
				return NULL;
			}
			got[k] = 0;
			for (size_t i = 0; i < r.n; i++)
				got[k] += r.rows[i].value;
			tstore_result_free(&r);
			after = atomic_load(&rc->started);
			if (got[k] < (double)before || got[k] > (double)after) {
				fprintf(stderr, "race: query %d counted %g, before %ld after %ld\n", k,
					got[k], before, after);
				atomic_fetch_add(&rc->errors, 1);
			}
		}
		if (got[0] < prev_raw || got[1] < prev_roll) {
			fprintf(stderr, "race: counts went down\n");
			atomic_fetch_add(&rc->errors, 1);
		}
		prev_raw = got[0];
		prev_roll = got[1];
		struct tstore_stats st;
		tstore_get_stats(rc->s, &st);
		struct tstore_latest *l;
		size_t n;
		if (tstore_latest(rc->s, "race", &l, &n) == MOTE_OK)
			free(l);
	}
	return NULL;
}

static void concurrent_queries(void **state)
{
	struct fx *f = *state;
	tstore_close(f->s);
	f->s = open_store(f, 2);
	struct race rc = { .s = f->s };
	pthread_t a, q[3];
	assert_int_equal(pthread_create(&a, NULL, appender, &rc), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&q[i], NULL, querier, &rc), 0);
	pthread_join(a, NULL);
	for (int i = 0; i < 3; i++)
		pthread_join(q[i], NULL);
	assert_int_equal(atomic_load(&rc.errors), 0);
	struct tstore_result r = query(f->s, "race", "b", T0, T0 + DAY, TSTORE_AGG_COUNT, 0);
	assert_true(r.n == 1 && r.rows[0].value == 50000);
	tstore_result_free(&r);
	/* a delete while another thread queries */
	assert_int_equal(tstore_delete_device(f->s, "race"), MOTE_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(heads_and_blocks_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(aggregations, setup, teardown),
		cmocka_unit_test_setup_teardown(edges_caps_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(durability_and_latest, setup, teardown),
		cmocka_unit_test_setup_teardown(pending_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(background_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(rollups_and_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(delete_device, setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_block, setup, teardown),
		cmocka_unit_test_setup_teardown(old_layout_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrent_queries, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
