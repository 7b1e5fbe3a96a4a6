/*
 * tstore_query.c - answering queries and latest values (tstore.h), from any
 * thread at once.
 *
 * A query copies what it needs of memory under mu (the series' heads, their
 * seqs, how much of each is rolled up, mem_gen), then reads SQLite through a
 * pooled read connection without holding any lock:
 *   raw source: the series' blocks overlapping [from, to), except those of a
 *     head seq that memory still has (memory's copy is at least as new), plus
 *     memory's points;
 *   rollup source: the rollup rows of the range plus memory's points not yet
 *     rolled up, read in a transaction whose ts_meta gen must equal the
 *     mem_gen copied; if a flush committed in between, the query starts over
 *     (the window is the few microseconds between a commit and its update of
 *     memory).
 * Which source, for agg queries: a range reaching past raw retention uses
 * minute rollups (past minute retention: hour rollups), from/to widened to
 * whole rollup buckets; otherwise, when the interval is a multiple of an hour
 * (or 0: one bucket), the whole hours inside [from, to) come from hour
 * rollups and the partial hours at the ends from raw points; the same with
 * minutes; everything else reads raw points. So the answer is exact whenever
 * raw points still exist, and a month of 1 Hz data costs 720 hour rows.
 */
#include "store/tstore_int.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TS_SCAN_MAX 20000000u /* raw points one query may read (320 MB) */

struct pt {
	int64_t t;
	double v;
};

struct part {
	int64_t t, cnt, last_ts;
	double sum, mn, mx, last;
};

struct snap {
	int64_t id;
	bool found;
	struct pt *all, *unrolled;
	size_t nall, call, nun, cun;
	int64_t *seqs;
	size_t nseqs, cseqs;
	uint64_t gen;
	int64_t raw_cut, min_cut, hour_cut;
};

static void snap_free(struct snap *sn)
{
	free(sn->all);
	free(sn->unrolled);
	free(sn->seqs);
	memset(sn, 0, sizeof *sn);
}

static int push_pt(struct pt **a, size_t *n, size_t *cap, int64_t t, double v)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct pt *np = realloc(*a, nc * sizeof *np);
		if (!np)
			return -1;
		*a = np;
		*cap = nc;
	}
	(*a)[*n].t = t;
	(*a)[(*n)++].v = v;
	return 0;
}

static int snap_head(struct snap *sn, const struct head *h, int64_t from, int64_t to)
{
	if (sn->nseqs == sn->cseqs) {
		size_t nc = sn->cseqs ? sn->cseqs * 2 : 8;
		int64_t *np = realloc(sn->seqs, nc * sizeof *np);
		if (!np)
			return -1;
		sn->seqs = np;
		sn->cseqs = nc;
	}
	sn->seqs[sn->nseqs++] = h->seq;
	for (uint32_t i = 0; i < h->n; i++) {
		if (h->ts[i] < from || h->ts[i] >= to)
			continue;
		if (push_pt(&sn->all, &sn->nall, &sn->call, h->ts[i], h->v[i]))
			return -1;
		if (i >= h->rolled &&
		    push_pt(&sn->unrolled, &sn->nun, &sn->cun, h->ts[i], h->v[i]))
			return -1;
	}
	return 0;
}

static enum mote_err take_snap(struct tstore *s, const struct tstore_query *q, struct snap *sn)
{
	enum mote_err e = MOTE_OK;
	memset(sn, 0, sizeof *sn);
	pthread_mutex_lock(&s->mu);
	sn->gen = s->mem_gen;
	sn->raw_cut = s->raw_cutoff;
	sn->min_cut = s->minute_cutoff;
	sn->hour_cut = s->hour_cutoff;
	struct series *x = tstore_find(s, tstore_hash(q->device_id, q->metric), q->device_id,
				       q->metric);
	if (x) {
		sn->found = true;
		sn->id = x->id;
		for (struct head *h = x->sealed; h && !e; h = h->next)
			if (snap_head(sn, h, q->from_ms, q->to_ms))
				e = MOTE_ENOMEM;
		if (!e && x->cur && snap_head(sn, x->cur, q->from_ms, q->to_ms))
			e = MOTE_ENOMEM;
	}
	pthread_mutex_unlock(&s->mu);
	return e;
}

static int64_t floor_to(int64_t t, int64_t w)
{
	int64_t q = t / w;
	if (t % w < 0)
		q--;
	return q * w;
}

static int cmp_pt(const void *a, const void *b)
{
	const struct pt *x = a, *y = b;
	return (x->t > y->t) - (x->t < y->t);
}

static int cmp_latest(const void *a, const void *b)
{
	return strcmp(((const struct tstore_latest *)a)->metric,
		      ((const struct tstore_latest *)b)->metric);
}

static int cmp_part(const void *a, const void *b)
{
	const struct part *x = a, *y = b;
	return (x->t > y->t) - (x->t < y->t);
}

static int sorted_pts(const struct pt *p, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (p[i].t < p[i - 1].t)
			return 0;
	return 1;
}

/* Reads the series' raw blocks and parts into pts (appending). */
static enum mote_err read_blocks(sqlite3 *db, const struct tstore_query *q, const struct snap *sn,
				 struct pt **pts, size_t *n, size_t *cap, char *err, size_t errcap)
{
	sqlite3_stmt *st = NULL;
	enum mote_err e = MOTE_OK;
	int64_t *bts = NULL;
	double *bv = NULL;
	size_t bcap = 0;
	int rc;
	for (int table = 0; table < 2; table++) {
		sqlite3_finalize(st);
		st = NULL;
		if (table == 0) {
			/* the index (series, t_last, t_first, seq) answers the filter; rows only for data */
			if (sqlite3_prepare_v2(db,
					       "SELECT seq, data, rowid FROM ts_blocks WHERE series = ?1"
					       " AND t_last >= ?2 AND t_first < ?3",
					       -1, &st, NULL) != SQLITE_OK)
				goto sqlerr;
			sqlite3_bind_int64(st, 1, sn->id);
			sqlite3_bind_int64(st, 2, q->from_ms);
			sqlite3_bind_int64(st, 3, q->to_ms);
		} else {
			if (sqlite3_prepare_v2(db,
					       "SELECT (id >> 10) & 1073741823, data, id FROM ts_parts"
					       " WHERE id >= ?1 AND id < ?2 AND +t_last >= ?3 AND +t_first < ?4",
					       -1, &st, NULL) != SQLITE_OK)
				goto sqlerr;
			sqlite3_bind_int64(st, 1, sn->id << TS_SERIES_SHIFT);
			sqlite3_bind_int64(st, 2, (sn->id + 1) << TS_SERIES_SHIFT);
			sqlite3_bind_int64(st, 3, q->from_ms);
			sqlite3_bind_int64(st, 4, q->to_ms);
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			int64_t seq = sqlite3_column_int64(st, 0);
			int64_t id = sqlite3_column_int64(st, 2);
			bool in_mem = false;
			for (size_t i = 0; i < sn->nseqs && !in_mem; i++)
				in_mem = sn->seqs[i] == seq;
			if (in_mem)
				continue;
			const uint8_t *data = sqlite3_column_blob(st, 1);
			size_t len = (size_t)sqlite3_column_bytes(st, 1), cnt;
			if (!data || block_count(data, len, &cnt)) {
				e = MOTE_EIO;
				snprintf(err, errcap, "a damaged block (%s row %lld) in the telemetry database",
					 table ? "ts_parts" : "ts_blocks", (long long)id);
				goto out;
			}
			if (cnt > bcap) {
				free(bts);
				free(bv);
				bts = malloc(cnt * sizeof *bts);
				bv = malloc(cnt * sizeof *bv);
				bcap = cnt;
				if (!bts || !bv) {
					e = MOTE_ENOMEM;
					goto out;
				}
			}
			if (block_decode(data, len, bts, bv, bcap, &cnt)) {
				e = MOTE_EIO;
				snprintf(err, errcap, "a damaged block (%s row %lld) in the telemetry database",
					 table ? "ts_parts" : "ts_blocks", (long long)id);
				goto out;
			}
			for (size_t i = 0; i < cnt; i++) {
				if (bts[i] < q->from_ms || bts[i] >= q->to_ms)
					continue;
				if (*n >= TS_SCAN_MAX) {
					e = MOTE_EINVAL; /* the caller's range is too wide for raw points */
					snprintf(err, errcap,
						 "the range holds more than %u raw points; ask for an agg with an"
						 " interval of at least 60 s",
						 TS_SCAN_MAX);
					goto out;
				}
				if (push_pt(pts, n, cap, bts[i], bv[i])) {
					e = MOTE_ENOMEM;
					goto out;
				}
			}
		}
		if (rc != SQLITE_DONE)
			goto sqlerr;
	}
	goto out;
sqlerr:
	e = MOTE_EIO;
	snprintf(err, errcap, "reading telemetry: %s", sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	free(bts);
	free(bv);
	return e;
}

static double agg_value(enum tstore_agg agg, const struct part *a)
{
	switch (agg) {
	case TSTORE_AGG_AVG:
		return a->sum / (double)a->cnt;
	case TSTORE_AGG_MIN:
		return a->mn;
	case TSTORE_AGG_MAX:
		return a->mx;
	case TSTORE_AGG_SUM:
		return a->sum;
	case TSTORE_AGG_COUNT:
		return (double)a->cnt;
	default:
		return a->last;
	}
}

struct out_rows {
	struct tstore_result *r;
	size_t cap, limit;
};

static int emit(struct out_rows *o, int64_t t, double v)
{
	struct tstore_result *r = o->r;
	if (r->n >= o->limit) {
		r->truncated = true;
		return 1;
	}
	if (r->n == o->cap) {
		size_t nc = o->cap ? o->cap * 2 : 64;
		if (nc > o->limit)
			nc = o->limit;
		struct tstore_row *np = realloc(r->rows, nc * sizeof *np);
		if (!np)
			return -1;
		r->rows = np;
		o->cap = nc;
	}
	r->rows[r->n].ts_ms = t;
	r->rows[r->n++].value = v;
	return 0;
}

static void part_merge(struct part *a, const struct part *b)
{
	a->cnt += b->cnt;
	a->sum += b->sum;
	if (b->mn < a->mn)
		a->mn = b->mn;
	if (b->mx > a->mx)
		a->mx = b->mx;
	if (b->last_ts >= a->last_ts) {
		a->last_ts = b->last_ts;
		a->last = b->last;
	}
}

/* parts sorted by t; one row per non-empty bucket */
static int sweep(struct out_rows *o, const struct tstore_query *q, const struct part *p, size_t n)
{
	struct part acc = { 0 };
	int64_t key = 0;
	bool open = false;
	for (size_t i = 0; i < n; i++) {
		int64_t k = q->interval_ms ? floor_to(p[i].t, q->interval_ms) : q->from_ms;
		if (open && k != key) {
			int rc = emit(o, key, agg_value(q->agg, &acc));
			if (rc)
				return rc;
			open = false;
		}
		if (!open) {
			acc = p[i];
			key = k;
			open = true;
		} else {
			part_merge(&acc, &p[i]);
		}
	}
	return open ? emit(o, key, agg_value(q->agg, &acc)) : 0;
}

static struct part pt_part(const struct pt *x)
{
	return (struct part){ .t = x->t, .cnt = 1, .last_ts = x->t, .sum = x->v, .mn = x->v,
			      .mx = x->v, .last = x->v };
}

/* sweep over points without materialising parts */
static int sweep_pts(struct out_rows *o, const struct tstore_query *q, const struct pt *p, size_t n)
{
	struct part acc = { 0 };
	int64_t key = 0;
	bool open = false;
	for (size_t i = 0; i < n; i++) {
		int64_t k = q->interval_ms ? floor_to(p[i].t, q->interval_ms) : q->from_ms;
		struct part one = pt_part(&p[i]);
		if (open && k != key) {
			int rc = emit(o, key, agg_value(q->agg, &acc));
			if (rc)
				return rc;
			open = false;
		}
		if (!open) {
			acc = one;
			key = k;
			open = true;
		} else {
			part_merge(&acc, &one);
		}
	}
	return open ? emit(o, key, agg_value(q->agg, &acc)) : 0;
}

enum src { SRC_RAW, SRC_MINUTE, SRC_HOUR };

/* where a query's answer comes from: rollups for [lo, hi), raw points for the rest */
struct plan {
	enum src src;
	int64_t lo, hi;
	bool edges; /* [from, lo) and [hi, to) from raw points */
};

static struct plan choose(const struct tstore_query *q, const struct snap *sn)
{
	struct plan p = { SRC_RAW, q->from_ms, q->to_ms, false };
	if (q->agg == TSTORE_AGG_NONE)
		return p;
	if (q->from_ms < sn->min_cut) {
		p.src = SRC_HOUR; /* widened to whole hours */
		return p;
	}
	if (q->from_ms < sn->raw_cut) {
		p.src = SRC_MINUTE;
		return p;
	}
	static const int64_t widths[2] = { TS_HOUR, TS_MINUTE };
	for (int i = 0; i < 2; i++) {
		int64_t w = widths[i];
		if (q->interval_ms % w)
			continue;
		int64_t lo = floor_to(q->from_ms, w), hi = floor_to(q->to_ms, w);
		if (lo < q->from_ms)
			lo += w;
		if (lo >= hi)
			continue;
		p.src = i == 0 ? SRC_HOUR : SRC_MINUTE;
		p.lo = lo;
		p.hi = hi;
		p.edges = lo != q->from_ms || hi != q->to_ms;
		return p;
	}
	return p;
}

/* 1: the store moved on (gen changed), start over */
static int read_rollups(sqlite3 *db, const struct plan *pl, const struct snap *sn,
			struct part **parts, size_t *np, enum mote_err *e, char *err, size_t errcap)
{
	sqlite3_stmt *st = NULL, *gs = NULL;
	enum src src = pl->src;
	int64_t w = src == SRC_HOUR ? TS_HOUR : TS_MINUTE;
	size_t cap = 0;
	int retry = 0, rc;
	*e = MOTE_OK;
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		goto sqlerr;
	if (sqlite3_prepare_v2(db, "SELECT v FROM ts_meta WHERE k = 'gen'", -1, &gs, NULL) !=
		    SQLITE_OK ||
	    sqlite3_step(gs) != SQLITE_ROW)
		goto sqlerr;
	if ((uint64_t)sqlite3_column_int64(gs, 0) != sn->gen) {
		retry = 1;
		goto out;
	}
	char sql[160];
	snprintf(sql, sizeof sql,
		 "SELECT bucket, cnt, sum, mn, mx, last, last_ts FROM %s WHERE series = ?1"
		 " AND bucket > ?2 AND bucket < ?3 ORDER BY bucket",
		 src == SRC_HOUR ? "ts_roll_h" : "ts_roll_m");
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto sqlerr;
	sqlite3_bind_int64(st, 1, sn->id);
	sqlite3_bind_int64(st, 2, pl->lo - w); /* bucket + w > lo */
	sqlite3_bind_int64(st, 3, pl->hi);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*np == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct part *p = realloc(*parts, nc * sizeof *p);
			if (!p) {
				*e = MOTE_ENOMEM;
				goto out;
			}
			*parts = p;
			cap = nc;
		}
		(*parts)[(*np)++] = (struct part){
			.t = sqlite3_column_int64(st, 0),
			.cnt = sqlite3_column_int64(st, 1),
			.sum = sqlite3_column_double(st, 2),
			.mn = sqlite3_column_double(st, 3),
			.mx = sqlite3_column_double(st, 4),
			.last = sqlite3_column_double(st, 5),
			.last_ts = sqlite3_column_int64(st, 6),
		};
	}
	if (rc != SQLITE_DONE)
		goto sqlerr;
	if (sn->nun) {
		struct part *p = realloc(*parts, (*np + sn->nun) * sizeof *p);
		if (!p) {
			*e = MOTE_ENOMEM;
			goto out;
		}
		*parts = p;
		for (size_t i = 0; i < sn->nun; i++)
			if (sn->unrolled[i].t >= pl->lo && sn->unrolled[i].t < pl->hi)
				p[(*np)++] = pt_part(&sn->unrolled[i]);
	}
	goto out;
sqlerr:
	*e = MOTE_EIO;
	snprintf(err, errcap, "reading telemetry rollups: %s", sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqlite3_finalize(gs);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	return retry;
}

enum mote_err tstore_query(struct tstore *s, const struct tstore_query *q,
			   struct tstore_result *out, char *err, size_t errcap)
{
	char dummy[8];
	if (!err || !errcap) {
		err = dummy;
		errcap = sizeof dummy;
	}
	err[0] = 0;
	memset(out, 0, sizeof *out);
	if (!q->device_id || !*q->device_id || !q->metric || !*q->metric) {
		snprintf(err, errcap, "a query needs a device and a metric");
		return MOTE_EINVAL;
	}
	if (q->from_ms >= q->to_ms) {
		snprintf(err, errcap, "from (%lld) must be before to (%lld)", (long long)q->from_ms,
			 (long long)q->to_ms);
		return MOTE_EINVAL;
	}
	if ((unsigned)q->agg > TSTORE_AGG_LAST) {
		snprintf(err, errcap, "unknown aggregation");
		return MOTE_EINVAL;
	}
	if (q->interval_ms < 0 || (q->interval_ms > 0 && q->agg == TSTORE_AGG_NONE)) {
		snprintf(err, errcap, q->interval_ms < 0 ? "interval must not be negative"
							 : "interval needs agg (avg, min, max, sum,"
							   " count or last)");
		return MOTE_EINVAL;
	}
	struct out_rows o = { .r = out, .limit = s->cfg.max_query_points };
	if (q->max_points && q->max_points < o.limit)
		o.limit = q->max_points;

	struct snap sn;
	struct pt *pts = NULL;
	struct part *parts = NULL;
	size_t npts = 0, cpts = 0, nparts = 0;
	sqlite3 *db = NULL;
	enum mote_err e;
	for (int attempt = 0;; attempt++) {
		e = take_snap(s, q, &sn);
		if (e || !sn.found)
			goto out;
		struct plan pl = choose(q, &sn);
		db = tstore_reader(s, err, errcap);
		if (!db) {
			e = MOTE_EIO;
			goto out;
		}
		if (pl.src == SRC_RAW) {
			e = read_blocks(db, q, &sn, &pts, &npts, &cpts, err, errcap);
			for (size_t i = 0; !e && i < sn.nall; i++)
				if (push_pt(&pts, &npts, &cpts, sn.all[i].t, sn.all[i].v))
					e = MOTE_ENOMEM;
			if (e)
				goto out;
			if (!sorted_pts(pts, npts))
				qsort(pts, npts, sizeof *pts, cmp_pt);
			int rc = 0;
			if (q->agg == TSTORE_AGG_NONE) {
				for (size_t i = 0; i < npts && !rc; i++)
					rc = emit(&o, pts[i].t, pts[i].v);
			} else {
				rc = sweep_pts(&o, q, pts, npts);
			}
			if (rc < 0)
				e = MOTE_ENOMEM;
			goto out;
		}
		if (!read_rollups(db, &pl, &sn, &parts, &nparts, &e, err, errcap)) {
			if (e)
				goto out;
			if (pl.edges) {
				/* the partial rollup buckets at the ends, exactly, from raw points */
				struct tstore_query qe = *q;
				if (q->from_ms < pl.lo) {
					qe.to_ms = pl.lo;
					e = read_blocks(db, &qe, &sn, &pts, &npts, &cpts, err, errcap);
				}
				if (!e && pl.hi < q->to_ms) {
					qe.from_ms = pl.hi;
					qe.to_ms = q->to_ms;
					e = read_blocks(db, &qe, &sn, &pts, &npts, &cpts, err, errcap);
				}
				for (size_t i = 0; !e && i < sn.nall; i++)
					if ((sn.all[i].t < pl.lo || sn.all[i].t >= pl.hi) &&
					    push_pt(&pts, &npts, &cpts, sn.all[i].t, sn.all[i].v))
						e = MOTE_ENOMEM;
				if (e)
					goto out;
				struct part *np2 = realloc(parts, (nparts + npts + 1) * sizeof *np2);
				if (!np2) {
					e = MOTE_ENOMEM;
					goto out;
				}
				parts = np2;
				for (size_t i = 0; i < npts; i++)
					parts[nparts++] = pt_part(&pts[i]);
			}
			int sorted = 1;
			for (size_t i = 1; i < nparts && sorted; i++)
				sorted = parts[i].t >= parts[i - 1].t;
			if (!sorted)
				qsort(parts, nparts, sizeof *parts, cmp_part);
			if (sweep(&o, q, parts, nparts) < 0)
				e = MOTE_ENOMEM;
			goto out;
		}
		/* a flush committed between our copy of memory and our read: again */
		tstore_reader_put(s, db);
		db = NULL;
		snap_free(&sn);
		free(parts);
		parts = NULL;
		nparts = 0;
		if (attempt > 10000) {
			e = MOTE_EIO;
			snprintf(err, errcap, "the telemetry store is too busy to answer");
			goto out;
		}
		struct timespec ts = { 0, attempt < 10 ? 0 : 200000 };
		if (attempt < 10)
			sched_yield();
		else
			nanosleep(&ts, NULL);
	}
out:
	if (db)
		tstore_reader_put(s, db);
	snap_free(&sn);
	free(pts);
	free(parts);
	if (e) {
		tstore_result_free(out);
		if (!err[0])
			snprintf(err, errcap, "%s", mote_strerror(e));
	}
	return e;
}

void tstore_result_free(struct tstore_result *r)
{
	free(r->rows);
	memset(r, 0, sizeof *r);
}

enum mote_err tstore_latest(struct tstore *s, const char *device_id, struct tstore_latest **out,
			    size_t *n)
{
	struct tstore_latest *a = NULL;
	size_t cnt = 0, cap = 0;
	enum mote_err e = MOTE_OK;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->tabsz && !e; i++) {
		for (struct series *x = s->tab[i]; x; x = x->hnext) {
			if (!x->has_last || strcmp(x->device, device_id))
				continue;
			if (cnt == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct tstore_latest *na = realloc(a, nc * sizeof *na);
				if (!na) {
					e = MOTE_ENOMEM;
					break;
				}
				a = na;
				cap = nc;
			}
			snprintf(a[cnt].metric, sizeof a[cnt].metric, "%s", x->metric);
			a[cnt].ts_ms = x->last_ts;
			a[cnt].value = x->last_v;
			cnt++;
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (e) {
		free(a);
		return e;
	}
	if (cnt > 1)
		qsort(a, cnt, sizeof *a, cmp_latest);
	*out = a;
	*n = cnt;
	return MOTE_OK;
}
