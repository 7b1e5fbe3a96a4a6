/*
 * tstore.c - the telemetry store: open, append, the flush thread, rollups,
 * retention, device deletion, stats. Queries are in tstore_query.c; the
 * private state and its locking rules in tstore_int.h.
 *
 * Append is a hash lookup and an array push under mu, nothing else: the
 * pipeline thread never waits for SQLite. Every flush_ms the flush thread
 * writes, in one transaction, what is new: parts of heads, full blocks of
 * sealed heads (replacing their parts), rollup upserts for the new points,
 * the series' latest values, and ts_meta 'gen' (the number of the flush).
 * After the commit it records under mu that those points are written and
 * rolled up, and sets mem_gen to the same number: a query that sees the
 * same gen in its read transaction knows exactly which points of memory
 * are already in the rollups.
 */
#include "store/tstore_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"

#define TS_MAINT_EVERY_MS 60000
#ifndef TS_PAGE_SIZE
#define TS_PAGE_SIZE "16384"
#endif

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS ts_series(id INTEGER PRIMARY KEY, device TEXT NOT NULL,"
	" metric TEXT NOT NULL, last_ts INTEGER, last_v REAL, UNIQUE(device, metric));"
	"CREATE TABLE IF NOT EXISTS ts_blocks(id INTEGER PRIMARY KEY, series INTEGER NOT NULL,"
	" seq INTEGER NOT NULL, t_first INTEGER NOT NULL, t_last INTEGER NOT NULL,"
	" count INTEGER NOT NULL, data BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS ts_blocks_series ON ts_blocks(series, t_last, t_first, seq);"
	"CREATE INDEX IF NOT EXISTS ts_blocks_t_last ON ts_blocks(t_last);"
	"CREATE TABLE IF NOT EXISTS ts_parts(id INTEGER PRIMARY KEY, t_first INTEGER NOT NULL,"
	" t_last INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS ts_roll_m(series INTEGER NOT NULL, bucket INTEGER NOT NULL,"
	" cnt INTEGER NOT NULL, sum REAL NOT NULL, mn REAL NOT NULL, mx REAL NOT NULL,"
	" last REAL NOT NULL, last_ts INTEGER NOT NULL, PRIMARY KEY(series, bucket)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS ts_roll_h(series INTEGER NOT NULL, bucket INTEGER NOT NULL,"
	" cnt INTEGER NOT NULL, sum REAL NOT NULL, mn REAL NOT NULL, mx REAL NOT NULL,"
	" last REAL NOT NULL, last_ts INTEGER NOT NULL, PRIMARY KEY(series, bucket)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS ts_meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO ts_meta(k, v) VALUES('gen', 0);";

#define ROLL_UPSERT(t)                                                                          \
	"INSERT INTO " t "(series, bucket, cnt, sum, mn, mx, last, last_ts)"                     \
	" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(series, bucket) DO UPDATE SET"    \
	" cnt = cnt + excluded.cnt, sum = sum + excluded.sum, mn = min(mn, excluded.mn),"        \
	" mx = max(mx, excluded.mx),"                                                           \
	" last = CASE WHEN excluded.last_ts >= last_ts THEN excluded.last ELSE last END,"      \
	" last_ts = max(last_ts, excluded.last_ts)"

void tstore_config_defaults(struct tstore_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->raw_days = 7;
	cfg->minute_days = 90;
	cfg->hour_days = 730;
	cfg->flush_ms = 1000;
	cfg->max_query_points = 100000;
	cfg->max_pending = 20000000;
}

bool tstore_agg_parse(const char *word, enum tstore_agg *out)
{
	static const char *const words[] = { "none", "avg", "min", "max", "sum", "count", "last" };
	for (int i = 0; i < 7; i++) {
		if (word && !strcmp(word, words[i])) {
			*out = (enum tstore_agg)i;
			return true;
		}
	}
	return false;
}

uint64_t tstore_hash(const char *device, const char *metric)
{
	uint64_t h = 1469598103934665603u;
	for (const unsigned char *p = (const unsigned char *)device; *p; p++)
		h = (h ^ *p) * 1099511628211u;
	h = (h ^ 0xff) * 1099511628211u;
	for (const unsigned char *p = (const unsigned char *)metric; *p; p++)
		h = (h ^ *p) * 1099511628211u;
	return h ^ (h >> 29);
}

struct series *tstore_find(struct tstore *s, uint64_t h, const char *device, const char *metric)
{
	for (struct series *x = s->tab[h & (s->tabsz - 1)]; x; x = x->hnext)
		if (x->hash == h && !strcmp(x->metric, metric) && !strcmp(x->device, device))
			return x;
	return NULL;
}

static int grow_table(struct tstore *s)
{
	size_t nsz = s->tabsz * 2;
	struct series **nt = calloc(nsz, sizeof *nt);
	if (!nt)
		return -1;
	for (size_t i = 0; i < s->tabsz; i++) {
		for (struct series *x = s->tab[i], *nx; x; x = nx) {
			nx = x->hnext;
			x->hnext = nt[x->hash & (nsz - 1)];
			nt[x->hash & (nsz - 1)] = x;
		}
	}
	free(s->tab);
	s->tab = nt;
	s->tabsz = nsz;
	return 0;
}

static struct head *head_new(int64_t seq, uint32_t cap)
{
	struct head *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->ts = malloc(cap * sizeof *h->ts);
	h->v = malloc(cap * sizeof *h->v);
	if (!h->ts || !h->v) {
		free(h->ts);
		free(h->v);
		free(h);
		return NULL;
	}
	h->cap = cap;
	h->seq = seq;
	return h;
}

static void head_free(struct head *h)
{
	if (!h)
		return;
	free(h->ts);
	free(h->v);
	free(h);
}

static void series_free(struct series *x)
{
	head_free(x->cur);
	for (struct head *h = x->sealed, *nh; h; h = nh) {
		nh = h->next;
		head_free(h);
	}
	free(x->device);
	free(x);
}

/* mu held (or no other thread yet) */
static struct series *series_add(struct tstore *s, uint64_t h, int64_t id, const char *device,
				 const char *metric, int64_t next_seq)
{
	if (s->nseries >= s->tabsz && grow_table(s))
		return NULL;
	size_t dl = strlen(device), ml = strlen(metric);
	struct series *x = calloc(1, sizeof *x);
	char *k = malloc(dl + ml + 2);
	if (!x || !k) {
		free(x);
		free(k);
		return NULL;
	}
	memcpy(k, device, dl + 1);
	memcpy(k + dl + 1, metric, ml + 1);
	x->device = k;
	x->metric = k + dl + 1;
	x->hash = h;
	x->id = id;
	x->next_seq = next_seq;
	x->hnext = s->tab[h & (s->tabsz - 1)];
	s->tab[h & (s->tabsz - 1)] = x;
	s->nseries++;
	return x;
}

static int retire(struct tstore *s, void *p)
{
	if (s->nretired == s->capretired) {
		size_t nc = s->capretired ? s->capretired * 2 : 64;
		void **np = realloc(s->retired, nc * sizeof *np);
		if (!np)
			return -1;
		s->retired = np;
		s->capretired = nc;
	}
	s->retired[s->nretired++] = p;
	return 0;
}

/* Room for one more point in x->cur: grows it or seals it. mu held. */
static enum mote_err make_room(struct tstore *s, struct series *x)
{
	struct head *h = x->cur;
	if (h && h->n < h->cap)
		return MOTE_OK;
	if (h && h->cap < BLOCK_MAX_POINTS) {
		uint32_t nc = h->cap * 2;
		int64_t *nts = malloc(nc * sizeof *nts);
		double *nv = malloc(nc * sizeof *nv);
		/* reserve the retire slots first so that nothing can fail half-way */
		if (!nts || !nv || retire(s, NULL) || retire(s, NULL)) {
			free(nts);
			free(nv);
			return MOTE_ENOMEM;
		}
		s->nretired -= 2;
		memcpy(nts, h->ts, h->n * sizeof *nts);
		memcpy(nv, h->v, h->n * sizeof *nv);
		retire(s, h->ts);
		retire(s, h->v);
		h->ts = nts;
		h->v = nv;
		h->cap = nc;
		return MOTE_OK;
	}
	if (x->next_seq >= TS_SEQ_MAX)
		return MOTE_EFULL;
	/* a series that filled a block will likely fill the next: full size at once */
	struct head *nh = head_new(x->next_seq, h ? BLOCK_MAX_POINTS : 16);
	if (!nh)
		return MOTE_ENOMEM;
	x->next_seq++;
	if (h) {
		struct head **pp = &x->sealed;
		while (*pp)
			pp = &(*pp)->next;
		*pp = h;
	}
	x->cur = nh;
	return MOTE_OK;
}

enum mote_err tstore_append(struct tstore *s, const char *device_id,
			    const struct telemetry_point *pts, size_t n)
{
	enum mote_err e = MOTE_OK;
	if (!device_id || !*device_id)
		return MOTE_EINVAL;
	pthread_mutex_lock(&s->mu);
	if (s->pending + n > s->cfg.max_pending) {
		s->refused += n;
		pthread_mutex_unlock(&s->mu);
		return MOTE_EFULL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct telemetry_point *p = &pts[i];
		if (!p->metric || !*p->metric || strlen(p->metric) > TELEMETRY_METRIC_MAX) {
			e = MOTE_EINVAL;
			break;
		}
		uint64_t h = tstore_hash(device_id, p->metric);
		struct series *x = tstore_find(s, h, device_id, p->metric);
		if (!x) {
			if (s->next_id >= TS_SERIES_MAX) {
				e = MOTE_EFULL;
				break;
			}
			x = series_add(s, h, s->next_id, device_id, p->metric, 0);
			if (!x) {
				e = MOTE_ENOMEM;
				break;
			}
			s->next_id++;
			x->is_new = true;
		}
		e = make_room(s, x);
		if (e)
			break;
		struct head *hd = x->cur;
		hd->ts[hd->n] = p->ts_ms;
		hd->v[hd->n] = p->value;
		hd->n++;
		if (!x->has_last || p->ts_ms >= x->last_ts) {
			x->last_ts = p->ts_ms;
			x->last_v = p->value;
			x->has_last = true;
		}
		if (!x->dirty) {
			x->dirty = true;
			x->dnext = s->dirty;
			s->dirty = x;
		}
		s->appended++;
		s->pending++;
	}
	pthread_mutex_unlock(&s->mu);
	return e;
}

/* ---- the flush cycle ---- */

struct hjob {
	struct series *x;
	struct head *h;
	const int64_t *ts;
	const double *v;
	uint32_t n, written, rolled;
	bool sealed;
};

struct sjob {
	struct series *x;
	int64_t last_ts;
	double last_v;
	bool has_last, is_new;
};

struct roll_acc {
	int64_t bucket, last_ts;
	int64_t cnt;
	double sum, mn, mx, last;
};

static int64_t floor_to(int64_t t, int64_t w)
{
	int64_t q = t / w;
	if (t % w < 0)
		q--;
	return q * w;
}

static int step(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : rc;
}

static int roll_emit(sqlite3_stmt *st, int64_t series, const struct roll_acc *a)
{
	sqlite3_bind_int64(st, 1, series);
	sqlite3_bind_int64(st, 2, a->bucket);
	sqlite3_bind_int64(st, 3, a->cnt);
	sqlite3_bind_double(st, 4, a->sum);
	sqlite3_bind_double(st, 5, a->mn);
	sqlite3_bind_double(st, 6, a->mx);
	sqlite3_bind_double(st, 7, a->last);
	sqlite3_bind_int64(st, 8, a->last_ts);
	return step(st);
}

static int roll_points(struct tstore *s, int64_t series, const int64_t *ts, const double *v,
		       uint32_t from, uint32_t to, sqlite3_stmt *st, int64_t width)
{
	struct roll_acc a = { 0 };
	bool open = false;
	for (uint32_t i = from; i < to; i++) {
		int64_t b = floor_to(ts[i], width);
		if (open && b != a.bucket) {
			if (roll_emit(st, series, &a))
				return -1;
			open = false;
		}
		if (!open) {
			a = (struct roll_acc){ .bucket = b, .last_ts = ts[i], .mn = v[i], .mx = v[i],
					       .last = v[i] };
			open = true;
		}
		a.cnt++;
		a.sum += v[i];
		if (v[i] < a.mn)
			a.mn = v[i];
		if (v[i] > a.mx)
			a.mx = v[i];
		if (ts[i] >= a.last_ts) {
			a.last_ts = ts[i];
			a.last = v[i];
		}
	}
	(void)s;
	return open ? roll_emit(st, series, &a) : 0;
}

/* a full block (sealed: appended to ts_blocks) or a part of a head (ts_parts) */
static int write_block(struct tstore *s, int64_t series, int64_t seq, uint32_t start,
		       const int64_t *ts, const double *v, uint32_t n, uint8_t *buf, bool sealed)
{
	size_t len = block_encode(ts, v, n, buf);
	int64_t tf = ts[0], tl = ts[0];
	for (uint32_t i = 1; i < n; i++) {
		if (ts[i] < tf)
			tf = ts[i];
		if (ts[i] > tl)
			tl = ts[i];
	}
	sqlite3_stmt *st = sealed ? s->st_ins_block : s->st_ins_part;
	if (sealed) {
		sqlite3_bind_int64(st, 1, series);
		sqlite3_bind_int64(st, 2, seq);
	} else {
		sqlite3_bind_int64(st, 1, series << TS_SERIES_SHIFT | seq << TS_SEQ_SHIFT | start);
		sqlite3_bind_null(st, 2);
	}
	sqlite3_bind_int64(st, 3, tf);
	sqlite3_bind_int64(st, 4, tl);
	sqlite3_bind_int64(st, 5, n);
	sqlite3_bind_blob(st, 6, buf, (int)len, SQLITE_STATIC);
	int rc = step(st);
	sqlite3_clear_bindings(st);
	if (!rc)
		s->blocks++; /* flush_lock held: the only writer of blocks */
	return rc;
}

static int grow_arr(void **p, size_t *cap, size_t need, size_t sz)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 64;
	while (nc < need)
		nc *= 2;
	void *np = realloc(*p, nc * sz);
	if (!np)
		return -1;
	*p = np;
	*cap = nc;
	return 0;
}

/* One flush cycle; flush_lock held. */
static void flush_locked(struct tstore *s)
{
	struct hjob *hj = NULL;
	struct sjob *sj = NULL;
	size_t nh = 0, ch = 0, ns = 0, cs = 0;
	void **old = NULL;
	size_t nold = 0;
	bool ok = false, oom = false;
	uint8_t *buf = NULL;
	uint64_t gen;
	uint64_t blocks_before = s->blocks;

	pthread_mutex_lock(&s->mu);
	old = s->retired;
	nold = s->nretired;
	s->retired = NULL;
	s->nretired = s->capretired = 0;
	struct series *d = s->dirty;
	s->dirty = NULL;
	for (struct series *x = d; x && !oom; x = x->dnext) {
		x->dirty = false;
		if (grow_arr((void **)&sj, &cs, ns + 1, sizeof *sj)) {
			oom = true;
			break;
		}
		sj[ns++] = (struct sjob){ x, x->last_ts, x->last_v, x->has_last, x->is_new };
		for (struct head *h = x->sealed; h; h = h->next) {
			if (grow_arr((void **)&hj, &ch, nh + 1, sizeof *hj)) {
				oom = true;
				break;
			}
			hj[nh++] = (struct hjob){ x, h, h->ts, h->v, h->n, h->written, h->rolled, true };
		}
		struct head *h = x->cur;
		if (h && h->n > h->written && !oom) {
			if (grow_arr((void **)&hj, &ch, nh + 1, sizeof *hj)) {
				oom = true;
				break;
			}
			hj[nh++] = (struct hjob){ x, h, h->ts, h->v, h->n, h->written, h->rolled, false };
		}
	}
	if (oom) { /* try again next time, everything stays dirty */
		for (struct series *x = d; x; x = x->dnext)
			x->dirty = true;
		s->dirty = d;
		nh = ns = 0;
		d = NULL;
	}
	gen = s->mem_gen + 1;
	pthread_mutex_unlock(&s->mu);

	for (size_t i = 0; i < nold; i++)
		free(old[i]);
	free(old);
	if (oom) {
		pthread_mutex_lock(&s->mu);
		s->flush_errors++;
		pthread_mutex_unlock(&s->mu);
		goto out;
	}
	if (nh == 0 && ns == 0)
		goto out;

	buf = malloc(BLOCK_BOUND(BLOCK_MAX_POINTS));
	if (!buf)
		goto fail;
	if (sqlite3_exec(s->wdb, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < ns; i++) {
		struct sjob *j = &sj[i];
		if (j->is_new) {
			sqlite3_bind_int64(s->st_ins_series, 1, j->x->id);
			sqlite3_bind_text(s->st_ins_series, 2, j->x->device, -1, SQLITE_STATIC);
			sqlite3_bind_text(s->st_ins_series, 3, j->x->metric, -1, SQLITE_STATIC);
			if (step(s->st_ins_series))
				goto rollback;
		}
		if (j->has_last) {
			sqlite3_bind_int64(s->st_upd_series, 1, j->last_ts);
			sqlite3_bind_double(s->st_upd_series, 2, j->last_v);
			sqlite3_bind_int64(s->st_upd_series, 3, j->x->id);
			if (step(s->st_upd_series))
				goto rollback;
		}
	}
	for (size_t i = 0; i < nh; i++) {
		struct hjob *j = &hj[i];
		int64_t id = j->x->id;
		if (j->sealed) {
			if (j->written > 0) {
				int64_t base = id << TS_SERIES_SHIFT | j->h->seq << TS_SEQ_SHIFT;
				sqlite3_bind_int64(s->st_del_seq, 1, base);
				sqlite3_bind_int64(s->st_del_seq, 2, base + (1 << TS_SEQ_SHIFT));
				if (step(s->st_del_seq))
					goto rollback;
				s->blocks -= (uint64_t)sqlite3_changes(s->wdb);
			}
			if (j->n && write_block(s, id, j->h->seq, 0, j->ts, j->v, j->n, buf, true))
				goto rollback;
		} else if (write_block(s, id, j->h->seq, j->written, j->ts + j->written,
				       j->v + j->written, j->n - j->written, buf, false)) {
			goto rollback;
		}
		if (j->n > j->rolled &&
		    (roll_points(s, id, j->ts, j->v, j->rolled, j->n, s->st_roll_m, TS_MINUTE) ||
		     roll_points(s, id, j->ts, j->v, j->rolled, j->n, s->st_roll_h, TS_HOUR)))
			goto rollback;
	}
	sqlite3_bind_int64(s->st_gen, 1, (int64_t)gen);
	if (step(s->st_gen))
		goto rollback;
	if (sqlite3_exec(s->wdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto rollback;
	ok = true;
	goto apply;
rollback:
	mote_log(MOTE_LOG_WARN, "store", "event=flush_failed err=\"%s\"", sqlite3_errmsg(s->wdb));
	sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
	s->blocks = blocks_before;
fail:
apply:
	pthread_mutex_lock(&s->mu);
	if (ok) {
		for (size_t i = 0; i < nh; i++) {
			struct hjob *j = &hj[i];
			s->flushed += j->n - j->written;
			s->pending -= j->n - j->written;
			if (j->sealed) {
				struct head **pp = &j->x->sealed;
				while (*pp != j->h)
					pp = &(*pp)->next;
				*pp = j->h->next;
				head_free(j->h);
			} else {
				j->h->written = j->n;
				j->h->rolled = j->n;
			}
		}
		for (size_t i = 0; i < ns; i++)
			sj[i].x->is_new = false;
		s->mem_gen = gen;
		s->blocks_pub = s->blocks;
	} else {
		s->flush_errors++;
		for (size_t i = 0; i < ns; i++) {
			struct series *x = sj[i].x;
			if (!x->dirty) {
				x->dirty = true;
				x->dnext = s->dirty;
				s->dirty = x;
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
out:
	free(buf);
	free(hj);
	free(sj);
}

static void maintain_locked(struct tstore *s, int64_t now_ms)
{
	int64_t raw = now_ms - (int64_t)s->cfg.raw_days * 86400000;
	int64_t minute = now_ms - (int64_t)s->cfg.minute_days * 86400000;
	int64_t hour = now_ms - (int64_t)s->cfg.hour_days * 86400000;
	char sql[256];
	snprintf(sql, sizeof sql, "DELETE FROM ts_blocks WHERE t_last < %lld", (long long)raw);
	int rc = sqlite3_exec(s->wdb, sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		s->blocks -= (uint64_t)sqlite3_changes(s->wdb);
	snprintf(sql, sizeof sql, "DELETE FROM ts_parts WHERE t_last < %lld", (long long)raw);
	if (rc == SQLITE_OK && (rc = sqlite3_exec(s->wdb, sql, NULL, NULL, NULL)) == SQLITE_OK)
		s->blocks -= (uint64_t)sqlite3_changes(s->wdb);
	snprintf(sql, sizeof sql, "DELETE FROM ts_roll_m WHERE bucket < %lld", (long long)minute);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->wdb, sql, NULL, NULL, NULL);
	snprintf(sql, sizeof sql, "DELETE FROM ts_roll_h WHERE bucket < %lld", (long long)hour);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->wdb, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		mote_log(MOTE_LOG_WARN, "store", "event=retention_failed err=\"%s\"",
			 sqlite3_errmsg(s->wdb));
	pthread_mutex_lock(&s->mu);
	s->blocks_pub = s->blocks;
	s->raw_cutoff = raw;
	s->minute_cutoff = minute;
	s->hour_cutoff = hour;
	pthread_mutex_unlock(&s->mu);
}

void tstore_flush(struct tstore *s)
{
	pthread_mutex_lock(&s->flush_lock);
	flush_locked(s);
	pthread_mutex_unlock(&s->flush_lock);
}

void tstore_maintain(struct tstore *s, int64_t now_ms)
{
	pthread_mutex_lock(&s->flush_lock);
	flush_locked(s);
	maintain_locked(s, now_ms);
	pthread_mutex_unlock(&s->flush_lock);
}

static void *flush_main(void *arg)
{
	struct tstore *s = arg;
	for (;;) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)s->cfg.flush_ms * 1000000u;
		ts.tv_sec += (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		pthread_mutex_lock(&s->mu);
		while (!s->stop) {
			if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
				break;
		}
		bool stop = s->stop;
		pthread_mutex_unlock(&s->mu);
		if (stop)
			break;
		pthread_mutex_lock(&s->flush_lock);
		flush_locked(s);
		if (!s->cfg.manual_maintenance && mote_mono_ms() >= s->maint_due_mono) {
			maintain_locked(s, (int64_t)mote_wall_ms());
			s->maint_due_mono = mote_mono_ms() + TS_MAINT_EVERY_MS;
		}
		pthread_mutex_unlock(&s->flush_lock);
	}
	return NULL;
}

/* ---- read connections ---- */

sqlite3 *tstore_reader(struct tstore *s, char *err, size_t errcap)
{
	sqlite3 *db = NULL;
	pthread_mutex_lock(&s->pool_mu);
	if (s->npool > 0)
		db = s->pool[--s->npool];
	pthread_mutex_unlock(&s->pool_mu);
	if (db)
		return db;
	if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		if (err)
			snprintf(err, errcap, "cannot open %s: %s", s->path,
				 db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	return db;
}

void tstore_reader_put(struct tstore *s, sqlite3 *db)
{
	pthread_mutex_lock(&s->pool_mu);
	if (s->npool < TS_POOL) {
		s->pool[s->npool++] = db;
		db = NULL;
	}
	pthread_mutex_unlock(&s->pool_mu);
	sqlite3_close(db);
}

/* ---- open, close ---- */

static enum mote_err load(struct tstore *s, char *err, size_t errcap)
{
	sqlite3_stmt *st = NULL, *mx = NULL, *mp = NULL;
	enum mote_err e = MOTE_OK;
	if (sqlite3_prepare_v2(s->wdb,
			       "SELECT id, device, metric, last_ts, last_v FROM ts_series", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->wdb, "SELECT max(seq) FROM ts_blocks WHERE series = ?1", -1, &mx,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->wdb, "SELECT max(id) FROM ts_parts WHERE id >= ?1 AND id < ?2", -1,
			       &mp, NULL) != SQLITE_OK)
		goto sqlerr;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		const char *dev = (const char *)sqlite3_column_text(st, 1);
		const char *met = (const char *)sqlite3_column_text(st, 2);
		if (!dev || !met || id < 0 || id >= TS_SERIES_MAX)
			continue;
		/* new heads continue after every seq on disk, full or part */
		int64_t next_seq = 0;
		sqlite3_bind_int64(mx, 1, id);
		if (sqlite3_step(mx) == SQLITE_ROW && sqlite3_column_type(mx, 0) != SQLITE_NULL)
			next_seq = sqlite3_column_int64(mx, 0) + 1;
		sqlite3_reset(mx);
		sqlite3_bind_int64(mp, 1, id << TS_SERIES_SHIFT);
		sqlite3_bind_int64(mp, 2, (id + 1) << TS_SERIES_SHIFT);
		if (sqlite3_step(mp) == SQLITE_ROW && sqlite3_column_type(mp, 0) != SQLITE_NULL) {
			int64_t ps = ((sqlite3_column_int64(mp, 0) >> TS_SEQ_SHIFT) & (TS_SEQ_MAX - 1)) + 1;
			if (ps > next_seq)
				next_seq = ps;
		}
		sqlite3_reset(mp);
		if (next_seq >= TS_SEQ_MAX)
			next_seq = TS_SEQ_MAX; /* appends to it get MOTE_EFULL */
		struct series *x = series_add(s, tstore_hash(dev, met), id, dev, met, next_seq);
		if (!x) {
			e = MOTE_ENOMEM;
			snprintf(err, errcap, "out of memory loading %s", s->path);
			goto out;
		}
		if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
			x->has_last = true;
			x->last_ts = sqlite3_column_int64(st, 3);
			x->last_v = sqlite3_column_double(st, 4);
		}
		if (id >= s->next_id)
			s->next_id = id + 1;
	}
	if (rc != SQLITE_DONE)
		goto sqlerr;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(s->wdb, "SELECT (SELECT count(*) FROM ts_blocks) +"
				       " (SELECT count(*) FROM ts_parts), (SELECT v FROM ts_meta WHERE k = 'gen')",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto sqlerr;
	s->blocks = (uint64_t)sqlite3_column_int64(st, 0);
	s->mem_gen = (uint64_t)sqlite3_column_int64(st, 1);
	s->blocks_pub = s->blocks;
	goto out;
sqlerr:
	e = MOTE_EIO;
	snprintf(err, errcap, "%s: %s", s->path, sqlite3_errmsg(s->wdb));
out:
	sqlite3_finalize(st);
	sqlite3_finalize(mx);
	sqlite3_finalize(mp);
	return e;
}

/* A telemetry.db from a development build before blocks had a series column: refused, not mixed. */
static int old_layout(struct tstore *s, char *err, size_t errcap)
{
	sqlite3_stmt *st = NULL;
	int old = 0;
	if (sqlite3_prepare_v2(s->wdb,
			       "SELECT (SELECT count(*) FROM sqlite_schema WHERE name = 'ts_blocks'),"
			       " (SELECT count(*) FROM pragma_table_info('ts_blocks') WHERE name = 'series')",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		old = sqlite3_column_int(st, 0) == 1 && sqlite3_column_int(st, 1) == 0;
	sqlite3_finalize(st);
	if (old)
		snprintf(err, errcap,
			 "%s has the block layout of an earlier development build of mote; move it "
			 "away (its points cannot be read by this version)",
			 s->path);
	return old;
}

enum mote_err tstore_open(const struct tstore_config *cfg, struct tstore **out, char *err,
			  size_t errcap)
{
	char dummy[8];
	if (!err || !errcap) {
		err = dummy;
		errcap = sizeof dummy;
	}
	err[0] = 0;
	struct tstore *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errcap, "out of memory");
		return MOTE_ENOMEM;
	}
	enum mote_err e = MOTE_EIO;
	s->cfg = *cfg;
	struct tstore_config def;
	tstore_config_defaults(&def);
	if (!s->cfg.raw_days)
		s->cfg.raw_days = def.raw_days;
	if (!s->cfg.minute_days)
		s->cfg.minute_days = def.minute_days;
	if (!s->cfg.hour_days)
		s->cfg.hour_days = def.hour_days;
	if (!s->cfg.flush_ms)
		s->cfg.flush_ms = def.flush_ms;
	if (!s->cfg.max_query_points)
		s->cfg.max_query_points = def.max_query_points;
	if (!s->cfg.max_pending)
		s->cfg.max_pending = def.max_pending;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->flush_lock, NULL);
	pthread_mutex_init(&s->pool_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	s->tabsz = 1024;
	s->tab = calloc(s->tabsz, sizeof *s->tab);
	s->path = cfg->path ? strdup(cfg->path) : NULL;
	s->cfg.path = s->path;
	if (!s->tab || !s->path) {
		snprintf(err, errcap, cfg->path ? "out of memory" : "no database path");
		e = cfg->path ? MOTE_ENOMEM : MOTE_EINVAL;
		goto fail;
	}
	if (sqlite3_open_v2(s->path, &s->wdb,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		snprintf(err, errcap, "cannot open %s: %s", s->path,
			 s->wdb ? sqlite3_errmsg(s->wdb) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->wdb, 5000);
	if (sqlite3_exec(s->wdb,
			 "PRAGMA page_size=" TS_PAGE_SIZE "; PRAGMA journal_mode=WAL;"
			 " PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16000;"
			 " PRAGMA journal_size_limit=33554432;",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    old_layout(s, err, errcap) ||
	    sqlite3_exec(s->wdb, schema, NULL, NULL, NULL) != SQLITE_OK)
		goto sqlerr_or_layout;
	struct {
		sqlite3_stmt **st;
		const char *sql;
	} stmts[] = {
		{ &s->st_ins_series,
		  "INSERT OR IGNORE INTO ts_series(id, device, metric) VALUES(?1, ?2, ?3)" },
		{ &s->st_upd_series, "UPDATE ts_series SET last_ts = ?1, last_v = ?2 WHERE id = ?3" },
		/* full blocks get the next rowid: appended at the end of the table, so its pages
		 * fill up instead of splitting half-empty in the middle of each series' range */
		{ &s->st_ins_block, "INSERT INTO ts_blocks(series, seq, t_first, t_last, count, data)"
				    " VALUES(?1, ?2, ?3, ?4, ?5, ?6)" },
		{ &s->st_ins_part, "INSERT OR REPLACE INTO ts_parts(id, t_first, t_last, count, data)"
				   " VALUES(?1, ?3, ?4, ?5, ?6)" },
		{ &s->st_del_seq, "DELETE FROM ts_parts WHERE id >= ?1 AND id < ?2" },
		{ &s->st_roll_m, ROLL_UPSERT("ts_roll_m") },
		{ &s->st_roll_h, ROLL_UPSERT("ts_roll_h") },
		{ &s->st_gen, "UPDATE ts_meta SET v = ?1 WHERE k = 'gen'" },
	};
	for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++)
		if (sqlite3_prepare_v3(s->wdb, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
				       stmts[i].st, NULL) != SQLITE_OK)
			goto sqlerr;
	e = load(s, err, errcap);
	if (e)
		goto fail;
	int64_t now = (int64_t)mote_wall_ms();
	s->raw_cutoff = now - (int64_t)s->cfg.raw_days * 86400000;
	s->minute_cutoff = now - (int64_t)s->cfg.minute_days * 86400000;
	s->hour_cutoff = now - (int64_t)s->cfg.hour_days * 86400000;
	if (s->cfg.manual_maintenance) /* nothing is known to be deleted before tstore_maintain */
		s->raw_cutoff = s->minute_cutoff = s->hour_cutoff = INT64_MIN;
	s->maint_due_mono = mote_mono_ms(); /* retention once soon after start */
	if (pthread_create(&s->thr, NULL, flush_main, s)) {
		snprintf(err, errcap, "cannot start the flush thread");
		e = MOTE_ENOMEM;
		goto fail;
	}
	s->thr_started = true;
	*out = s;
	return MOTE_OK;
sqlerr_or_layout:
	if (err[0]) {
		e = MOTE_EIO;
		goto fail;
	}
sqlerr:
	e = MOTE_EIO;
	snprintf(err, errcap, "%s: %s", s->path, sqlite3_errmsg(s->wdb));
fail:
	tstore_close(s);
	return e;
}

void tstore_close(struct tstore *s)
{
	if (!s)
		return;
	if (s->thr_started) {
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thr, NULL);
		tstore_flush(s);
		tstore_flush(s); /* frees what the last cycle retired */
	}
	sqlite3_stmt *sts[] = { s->st_ins_series, s->st_upd_series, s->st_ins_block,
				s->st_ins_part,   s->st_del_seq,    s->st_roll_m,
				s->st_roll_h,     s->st_gen };
	for (size_t i = 0; i < sizeof sts / sizeof sts[0]; i++)
		sqlite3_finalize(sts[i]);
	for (int i = 0; i < s->npool; i++)
		sqlite3_close(s->pool[i]);
	sqlite3_close(s->wdb);
	for (size_t i = 0; s->tab && i < s->tabsz; i++) {
		for (struct series *x = s->tab[i], *nx; x; x = nx) {
			nx = x->hnext;
			series_free(x);
		}
	}
	for (size_t i = 0; i < s->nretired; i++)
		free(s->retired[i]);
	free(s->retired);
	free(s->tab);
	free(s->path);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->flush_lock);
	pthread_mutex_destroy(&s->pool_mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

enum mote_err tstore_delete_device(struct tstore *s, const char *device_id)
{
	enum mote_err e = MOTE_OK;
	int64_t *ids = NULL;
	size_t nids = 0, cids = 0;
	pthread_mutex_lock(&s->flush_lock);
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->tabsz; i++) {
		for (struct series **pp = &s->tab[i]; *pp;) {
			struct series *x = *pp;
			if (strcmp(x->device, device_id)) {
				pp = &x->hnext;
				continue;
			}
			if (grow_arr((void **)&ids, &cids, nids + 1, sizeof *ids)) {
				e = MOTE_ENOMEM;
				break;
			}
			ids[nids++] = x->id;
			*pp = x->hnext;
			if (x->dirty) {
				struct series **dp = &s->dirty;
				while (*dp != x)
					dp = &(*dp)->dnext;
				*dp = x->dnext;
			}
			for (struct head *h = x->sealed; h; h = h->next)
				s->pending -= h->n - h->written;
			if (x->cur)
				s->pending -= x->cur->n - x->cur->written;
			s->nseries--;
			series_free(x);
		}
	}
	pthread_mutex_unlock(&s->mu);
	sqlite3_stmt *st[4] = { NULL, NULL, NULL, NULL };
	if (sqlite3_exec(s->wdb, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->wdb, "DELETE FROM ts_parts WHERE id >= ?1 AND id < ?2", -1, &st[0],
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->wdb, "DELETE FROM ts_blocks WHERE series = ?1", -1, &st[3], NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(s->wdb, "DELETE FROM ts_roll_m WHERE series = ?1", -1, &st[1], NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(s->wdb, "DELETE FROM ts_roll_h WHERE series = ?1", -1, &st[2], NULL) !=
		    SQLITE_OK)
		goto sqlerr;
	for (size_t i = 0; i < nids; i++) {
		sqlite3_bind_int64(st[0], 1, ids[i] << TS_SERIES_SHIFT);
		sqlite3_bind_int64(st[0], 2, (ids[i] + 1) << TS_SERIES_SHIFT);
		if (step(st[0]))
			goto sqlerr;
		s->blocks -= (uint64_t)sqlite3_changes(s->wdb);
		sqlite3_bind_int64(st[3], 1, ids[i]);
		if (step(st[3]))
			goto sqlerr;
		s->blocks -= (uint64_t)sqlite3_changes(s->wdb);
		for (int k = 1; k < 3; k++) {
			sqlite3_bind_int64(st[k], 1, ids[i]);
			if (step(st[k]))
				goto sqlerr;
		}
	}
	sqlite3_finalize(st[0]);
	st[0] = NULL;
	if (sqlite3_prepare_v2(s->wdb, "DELETE FROM ts_series WHERE device = ?1", -1, &st[0], NULL) !=
		    SQLITE_OK ||
	    (sqlite3_bind_text(st[0], 1, device_id, -1, SQLITE_STATIC), step(st[0])) ||
	    sqlite3_exec(s->wdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto sqlerr;
	goto out;
sqlerr:
	mote_log(MOTE_LOG_WARN, "store", "event=delete_failed err=\"%s\"", sqlite3_errmsg(s->wdb));
	sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
	e = MOTE_EIO;
out:
	for (int k = 0; k < 4; k++)
		sqlite3_finalize(st[k]);
	pthread_mutex_lock(&s->mu);
	s->blocks_pub = s->blocks;
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->flush_lock);
	free(ids);
	return e;
}

static uint64_t file_size(const char *path, const char *suffix)
{
	char p[4096];
	struct stat st;
	snprintf(p, sizeof p, "%s%s", path, suffix);
	return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

void tstore_get_stats(struct tstore *s, struct tstore_stats *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&s->mu);
	out->points_appended = s->appended;
	out->points_flushed = s->flushed;
	out->points_pending = s->pending;
	out->series = s->nseries;
	out->flush_errors = s->flush_errors;
	out->blocks = s->blocks_pub;
	out->points_refused = s->refused;
	pthread_mutex_unlock(&s->mu);
	out->bytes_on_disk = file_size(s->path, "") + file_size(s->path, "-wal");
}
