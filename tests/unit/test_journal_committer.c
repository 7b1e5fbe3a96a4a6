/*
 * test_journal_committer.c - the committer thread over a journal
 * (journal/committer.h):
 *   - records submitted from several threads at once all come back on
 *     reopen, each thread's in its submit order, with contiguous LSNs equal
 *     to the ones jcommit_submit handed out; the safe LSN reaches the last
 *     one under every policy and is never ahead of what was submitted;
 *   - what "safe" means per policy: ALWAYS waits for fdatasync (a sync held
 *     in the test's I/O hook holds the safe LSN back), BATCH and NONE only
 *     for the write (BATCH syncs once its batch time passed on an injected
 *     clock; NONE never syncs), and a safe record is in the file when it is
 *     read back without the journal;
 *   - the fault file: writes fail while it exists, nothing more becomes
 *     safe, submit pushes back with MOTE_EFULL; once it is gone the thread
 *     recovers by itself within a second and every record is on disk once;
 *     after several failures all of max_pending is free again; a failing
 *     disk is retried every retry_ms (not in a busy loop, not half as
 *     often); close makes one last try;
 *   - jrec_begin/jrec_seal encode what journal_scan_records accepts; an
 *     empty submit says the next LSN; max_pending gives MOTE_EFULL;
 *   - segments are released by request (thread) and before start
 *     (jcommit_flush_sync + jcommit_release_now), and LSNs survive that.
 * Waiting is polling with a deadline; the only clock the BATCH case moves
 * is the injected one. The two rate checks (BATCH not spinning, retries
 * per second) sleep on purpose: elapsed time is what they measure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "base/log.h"
#include "journal/committer.h"
#include "journal/format.h"
#include "test_journal_util.h"

/* ---- helpers ------------------------------------------------------------------- */

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nap_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Polls until safe_lsn >= lsn; false after timeout_ms. */
static bool wait_safe(struct jcommit *c, uint64_t lsn, unsigned timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;
	while (jcommit_safe_lsn(c) < lsn) {
		if (mono_ms() > end)
			return false;
		nap_ms(1);
	}
	return true;
}

static bool wait_durable(struct jcommit *c, uint64_t lsn, unsigned timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;
	while (jcommit_durable_lsn(c) < lsn) {
		if (mono_ms() > end)
			return false;
		nap_ms(1);
	}
	return true;
}

static bool wait_failing(struct jcommit *c, bool want, unsigned timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;
	while (jcommit_failing(c) != want) {
		if (mono_ms() > end)
			return false;
		nap_ms(1);
	}
	return true;
}

/*
 * Record content: the payload names its writer and sequence number
 * ("t=T s=S ") followed by filler bytes whose length and values follow from
 * (T, S), so a replayed record is checked without keeping a copy. The type
 * is 1 + T.
 */
static size_t rec_payload(unsigned t, unsigned s, uint8_t *out, size_t cap)
{
	int n = snprintf((char *)out, cap, "t=%u s=%u ", t, s);
	assert_true(n > 0 && (size_t)n < cap);
	uint64_t h = tj_mix((uint64_t)t << 32 | s);
	size_t fill = (size_t)(h % 120);
	assert_true((size_t)n + fill <= cap);
	for (size_t i = 0; i < fill; i++)
		out[(size_t)n + i] = (uint8_t)(h >> (i % 56));
	return (size_t)n + fill;
}

#define REC_CAP 256

static void put_rec(struct jrec_buf *b, unsigned t, unsigned s)
{
	uint8_t tmp[REC_CAP];
	size_t len = rec_payload(t, s, tmp, sizeof tmp);
	uint8_t *p;
	assert_int_equal(jrec_begin(b, len, &p), MOTE_OK);
	memcpy(p, tmp, len);
	jrec_seal(b, (uint8_t)(1 + t), len);
}

/* Parses and checks one record; returns false if it is not one of ours. */
static bool parse_rec(uint8_t type, const uint8_t *p, size_t len, unsigned *t, unsigned *s)
{
	char head[40];
	size_t n = len < sizeof head - 1 ? len : sizeof head - 1;
	memcpy(head, p, n);
	head[n] = 0;
	if (sscanf(head, "t=%u s=%u ", t, s) != 2)
		return false;
	uint8_t want[REC_CAP];
	size_t wlen = rec_payload(*t, *s, want, sizeof want);
	return type == 1 + *t && wlen == len && memcmp(want, p, len) == 0;
}

#define MAX_THREADS 4
#define PER_THREAD 5000u

/* What a read of the log saw (replay or a file scan), checked as it comes. */
struct seen {
	uint64_t count, first, last;
	uint64_t gaps, bad, out_of_order;
	unsigned next_seq[MAX_THREADS];
	bool mid_start; /* released segments: a thread's first record may not be its seq 0 */
	const uint64_t (*expect_lsn)[PER_THREAD]; /* NULL: not checked */
	uint64_t wrong_lsn;
};

static void seen_init(struct seen *v, const uint64_t (*expect_lsn)[PER_THREAD])
{
	memset(v, 0, sizeof *v);
	v->expect_lsn = expect_lsn;
}

static enum mote_err seen_rec(void *arg, uint64_t lsn, uint8_t type, const void *payload,
			      size_t len)
{
	struct seen *v = arg;
	if (v->count && lsn != v->last + 1)
		v->gaps++;
	if (!v->count)
		v->first = lsn;
	v->last = lsn;
	v->count++;
	unsigned t, s;
	if (!parse_rec(type, payload, len, &t, &s) || t >= MAX_THREADS || s >= PER_THREAD) {
		v->bad++;
		return MOTE_OK;
	}
	if (s != v->next_seq[t] && !(v->mid_start && v->next_seq[t] == 0))
		v->out_of_order++;
	v->next_seq[t] = s + 1;
	if (v->expect_lsn && v->expect_lsn[t][s] != lsn)
		v->wrong_lsn++;
	return MOTE_OK;
}

static enum mote_err seen_scan_rec(void *arg, uint64_t lsn, uint8_t type, const uint8_t *payload,
				   size_t len)
{
	return seen_rec(arg, lsn, type, payload, len);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Reads the segment files directly (no journal involved, so it can run
 * while the committer owns the journal) and feeds every intact record to
 * fn. Returns the number of segment files.
 */
static unsigned scan_files(const char *dir, journal_record_fn fn, void *arg)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	char *names[4096];
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l == 12 && strcmp(e->d_name + 8, ".log") == 0) {
			assert_true(n < 4096);
			names[n++] = strdup(e->d_name);
		}
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_str);
	for (unsigned i = 0; i < n; i++) {
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		FILE *f = fopen(path, "rb");
		if (!f && errno == ENOENT) { /* released meanwhile */
			free(names[i]);
			continue;
		}
		assert_non_null(f);
		fseek(f, 0, SEEK_END);
		long size = ftell(f);
		fseek(f, 0, SEEK_SET);
		uint8_t *buf = malloc(size ? (size_t)size : 1);
		assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
		fclose(f);
		struct journal_seg_hdr h;
		assert_int_equal(journal_seg_hdr_decode(buf, (size_t)size, &h), MOTE_OK);
		struct journal_scan res;
		assert_int_equal(journal_scan_records(buf + JOURNAL_SEG_HDR,
						      (size_t)size - JOURNAL_SEG_HDR, h.base_lsn,
						      fn, arg, &res),
				 MOTE_OK);
		/* The committer only writes whole batches. */
		assert_int_equal(res.end, JOURNAL_SCAN_CLEAN);
		free(buf);
		free(names[i]);
	}
	return n;
}

static unsigned count_segments(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strlen(e->d_name) == 12 && strcmp(e->d_name + 8, ".log") == 0)
			n++;
	closedir(d);
	return n;
}

static bool wait_segments(const char *dir, unsigned want, unsigned timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;
	while (count_segments(dir) != want) {
		if (mono_ms() > end)
			return false;
		nap_ms(1);
	}
	return true;
}

struct fixture {
	char *root, *dir;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	f->root = tj_mkdtemp();
	assert_non_null(f->root);
	f->dir = tj_subdir(f->root);
	*state = f;
	/* The fault cases log errors and warnings by design. */
	mote_log_setup(MOTE_LOG_OFF, NULL);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	mote_log_setup(MOTE_LOG_INFO, NULL);
	tj_rmrf(f->root);
	free(f->dir);
	free(f->root);
	free(f);
	return 0;
}

static struct jcommit *open_c(const struct jcommit_opts *o, struct seen *v,
			      struct journal_recovery *rec)
{
	struct jcommit *c = NULL;
	assert_int_equal(jcommit_open(o, v ? seen_rec : NULL, v, rec, &c), MOTE_OK);
	assert_non_null(c);
	return c;
}

static void notify_count(void *ctx)
{
	atomic_fetch_add((atomic_uint *)ctx, 1);
}

/* The notify call follows the state change it reports: wait for it. */
static bool wait_notes_above(atomic_uint *notes, unsigned n, unsigned timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;
	while (atomic_load(notes) <= n) {
		if (mono_ms() > end)
			return false;
		nap_ms(1);
	}
	return true;
}

/* Submits records (t, from .. to-1) in one batch; returns the first LSN. */
static uint64_t submit_range(struct jcommit *c, struct jrec_buf *b, unsigned t, unsigned from,
			     unsigned to)
{
	b->len = 0;
	b->nrec = 0;
	for (unsigned s = from; s < to; s++)
		put_rec(b, t, s);
	uint64_t first = 0;
	assert_int_equal(jcommit_submit(c, b, &first), MOTE_OK);
	return first;
}

/* Reopens the journal and checks it holds records first..last of ours,
 * exactly once each and in order. */
static void expect_log(const char *dir, uint64_t first, uint64_t last, struct seen *v)
{
	struct jcommit_opts o = { .journal = { .dir = dir, .sync = JOURNAL_SYNC_NONE } };
	struct journal_recovery rec;
	struct jcommit *c = open_c(&o, v, &rec);
	assert_int_equal(v->count, last - first + 1);
	assert_int_equal(v->first, first);
	assert_int_equal(v->last, last);
	assert_int_equal(v->gaps, 0);
	assert_int_equal(v->bad, 0);
	assert_int_equal(v->out_of_order, 0);
	assert_int_equal(rec.dropped_bytes, 0);
	assert_int_equal(rec.last_lsn, last);
	assert_int_equal(jcommit_next_lsn(c), last + 1);
	jcommit_close(c);
}

/* ---- many threads ------------------------------------------------------------------ */

struct writer {
	pthread_t th;
	unsigned t;
	struct jcommit *c;
	uint64_t (*lsn)[PER_THREAD];
	enum mote_err err;
	uint64_t bad_range; /* batches whose LSNs were not a fresh range */
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct jrec_buf b = { 0 };
	uint32_t rng = 0x9e37u + w->t;
	uint64_t prev_end = 0;
	for (unsigned s = 0; s < PER_THREAD && w->err == MOTE_OK;) {
		rng = rng * 1103515245u + 12345u;
		unsigned n = 1 + (rng >> 16) % 8;
		if (s + n > PER_THREAD)
			n = PER_THREAD - s;
		b.len = 0;
		b.nrec = 0;
		for (unsigned i = 0; i < n; i++)
			put_rec(&b, w->t, s + i);
		uint64_t first = 0;
		w->err = jcommit_submit(w->c, &b, &first);
		if (w->err != MOTE_OK)
			break;
		if (first <= prev_end)
			w->bad_range++; /* a thread's batches get increasing LSNs */
		for (unsigned i = 0; i < n; i++)
			w->lsn[w->t][s + i] = first + i;
		prev_end = first + n - 1;
		s += n;
	}
	jrec_buf_free(&b);
	return NULL;
}

static void many_threads(struct fixture *f, enum journal_sync sync)
{
	const uint64_t total = (uint64_t)MAX_THREADS * PER_THREAD;
	uint64_t(*lsn)[PER_THREAD] = calloc(MAX_THREADS, sizeof *lsn);
	struct jcommit_opts o = { .journal = { .dir = f->dir, .sync = sync, .batch_ms = 5,
					       .segment_bytes = 256 * 1024 } };
	struct journal_recovery rec;
	struct jcommit *c = open_c(&o, NULL, &rec);
	assert_int_equal(rec.records, 0);
	assert_int_equal(jcommit_next_lsn(c), 1);
	atomic_uint notes = 0;
	assert_int_equal(jcommit_start(c, notify_count, &notes), MOTE_OK);

	struct writer w[MAX_THREADS];
	for (unsigned t = 0; t < MAX_THREADS; t++) {
		w[t] = (struct writer){ .t = t, .c = c, .lsn = lsn };
		assert_int_equal(pthread_create(&w[t].th, NULL, writer_main, &w[t]), 0);
	}
	/* While they run: safe never goes back and never passes what was
	 * handed out (next_lsn is read after safe and only grows). */
	uint64_t prev_safe = 0;
	for (int i = 0; i < 2000 && jcommit_next_lsn(c) <= total; i++) {
		uint64_t safe = jcommit_safe_lsn(c);
		uint64_t next = jcommit_next_lsn(c);
		assert_true(safe >= prev_safe);
		assert_true(safe < next);
		prev_safe = safe;
		nap_ms(0);
	}
	for (unsigned t = 0; t < MAX_THREADS; t++) {
		pthread_join(w[t].th, NULL);
		assert_int_equal(w[t].err, MOTE_OK);
		assert_int_equal(w[t].bad_range, 0);
	}
	assert_int_equal(jcommit_next_lsn(c), total + 1);
	if (!wait_safe(c, total, 10000))
		fail_msg("safe LSN %llu, submitted %llu", (unsigned long long)jcommit_safe_lsn(c),
			 (unsigned long long)total);
	assert_int_equal(jcommit_safe_lsn(c), total);
	assert_true(wait_notes_above(&notes, 0, 5000));
	assert_false(jcommit_failing(c));
	if (sync == JOURNAL_SYNC_ALWAYS)
		assert_int_equal(jcommit_durable_lsn(c), total);
	if (sync == JOURNAL_SYNC_BATCH)
		assert_true(wait_durable(c, total, 10000)); /* a tick follows within batch_ms */
	if (sync == JOURNAL_SYNC_NONE)
		assert_int_equal(jcommit_durable_lsn(c), 0);

	/* Safe means in the file: read back behind the committer's back. */
	struct seen v;
	seen_init(&v, (const uint64_t(*)[PER_THREAD])lsn);
	/* (how many segments depends on how the batches were grouped) */
	assert_true(scan_files(f->dir, seen_scan_rec, &v) >= 1);
	assert_int_equal(v.count, total);
	assert_int_equal(v.first, 1);
	assert_int_equal(v.gaps, 0);
	assert_int_equal(v.bad, 0);
	assert_int_equal(v.out_of_order, 0);
	assert_int_equal(v.wrong_lsn, 0);
	for (unsigned t = 0; t < MAX_THREADS; t++)
		assert_int_equal(v.next_seq[t], PER_THREAD);
	jcommit_close(c);

	/* And through a reopen's replay. */
	seen_init(&v, (const uint64_t(*)[PER_THREAD])lsn);
	expect_log(f->dir, 1, total, &v);
	assert_int_equal(v.wrong_lsn, 0);
	for (unsigned t = 0; t < MAX_THREADS; t++)
		assert_int_equal(v.next_seq[t], PER_THREAD);
	free(lsn);
}

static void many_threads_always(void **state)
{
	many_threads(*state, JOURNAL_SYNC_ALWAYS);
}

static void many_threads_batch(void **state)
{
	many_threads(*state, JOURNAL_SYNC_BATCH);
}

static void many_threads_none(void **state)
{
	many_threads(*state, JOURNAL_SYNC_NONE);
}

/* ---- what "safe" waits for, per policy ------------------------------------------- */

/* I/O hook: counts syncs and can hold them until the test lets go. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool closed;
	unsigned waiting;
	atomic_uint syncs;
	_Atomic uint64_t now; /* the injected clock */
	atomic_uint clock_reads;
	atomic_bool full;     /* writes fail with ENOSPC */
	atomic_uint failed_writes;
};

static ssize_t g_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
	struct gate *g = ctx;
	if (atomic_load(&g->full)) {
		atomic_fetch_add(&g->failed_writes, 1);
		errno = ENOSPC;
		return -1;
	}
	return pwrite(fd, buf, len, off);
}

static int g_fdatasync(void *ctx, int fd)
{
	struct gate *g = ctx;
	pthread_mutex_lock(&g->mu);
	g->waiting++;
	while (g->closed)
		pthread_cond_wait(&g->cond, &g->mu);
	g->waiting--;
	pthread_mutex_unlock(&g->mu);
	atomic_fetch_add(&g->syncs, 1);
	return fdatasync(fd);
}

static uint64_t g_now(void *ctx)
{
	struct gate *g = ctx;
	atomic_fetch_add(&g->clock_reads, 1);
	return atomic_load(&g->now);
}

static void gate_set(struct gate *g, bool closed)
{
	pthread_mutex_lock(&g->mu);
	g->closed = closed;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->mu);
}

static bool gate_wait_waiter(struct gate *g, unsigned timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;
	for (;;) {
		pthread_mutex_lock(&g->mu);
		unsigned n = g->waiting;
		pthread_mutex_unlock(&g->mu);
		if (n)
			return true;
		if (mono_ms() > end)
			return false;
		nap_ms(1);
	}
}

struct gated {
	struct gate g;
	struct journal_io io;
	struct jcommit *c;
	struct jrec_buf b;
};

static void gated_open(struct fixture *f, struct gated *x, enum journal_sync sync,
		       uint32_t batch_ms, uint32_t retry_ms)
{
	memset(x, 0, sizeof *x);
	pthread_mutex_init(&x->g.mu, NULL);
	pthread_cond_init(&x->g.cond, NULL);
	atomic_store(&x->g.now, 1000);
	x->io = (struct journal_io){ g_pwrite, g_fdatasync, &x->g };
	struct jcommit_opts o = { .journal = { .dir = f->dir, .sync = sync, .batch_ms = batch_ms,
					       .io = &x->io, .now_ms = g_now,
					       .clock_ctx = &x->g },
				  .retry_ms = retry_ms };
	x->c = open_c(&o, NULL, NULL);
	atomic_store(&x->g.syncs, 0); /* creating the first segment syncs */
	assert_int_equal(jcommit_start(x->c, NULL, NULL), MOTE_OK);
}

static void gated_close(struct gated *x)
{
	gate_set(&x->g, false);
	jcommit_close(x->c);
	jrec_buf_free(&x->b);
	pthread_mutex_destroy(&x->g.mu);
	pthread_cond_destroy(&x->g.cond);
}

static void always_waits_for_the_sync(void **state)
{
	struct fixture *f = *state;
	struct gated x;
	gated_open(f, &x, JOURNAL_SYNC_ALWAYS, 0, 0);
	gate_set(&x.g, true);
	uint64_t first = submit_range(x.c, &x.b, 0, 0, 3);
	assert_int_equal(first, 1);
	/* Written, syncing, not synced: not safe. */
	assert_true(gate_wait_waiter(&x.g, 5000));
	assert_int_equal(jcommit_safe_lsn(x.c), 0);
	assert_int_equal(jcommit_durable_lsn(x.c), 0);
	struct seen v;
	seen_init(&v, NULL);
	scan_files(f->dir, seen_scan_rec, &v);
	assert_int_equal(v.count, 3); /* the write is done */
	gate_set(&x.g, false);
	assert_true(wait_safe(x.c, 3, 5000));
	assert_int_equal(jcommit_durable_lsn(x.c), 3);
	assert_true(atomic_load(&x.g.syncs) >= 1);
	gated_close(&x);
}

static void batch_is_safe_once_written_and_syncs_on_time(void **state)
{
	struct fixture *f = *state;
	struct gated x;
	gated_open(f, &x, JOURNAL_SYNC_BATCH, 50, 0);
	/* The injected clock stands still: no sync is due. */
	submit_range(x.c, &x.b, 0, 0, 4);
	assert_true(wait_safe(x.c, 4, 5000));
	assert_int_equal(atomic_load(&x.g.syncs), 0);
	assert_int_equal(jcommit_durable_lsn(x.c), 0);
	struct seen v;
	seen_init(&v, NULL);
	scan_files(f->dir, seen_scan_rec, &v);
	assert_int_equal(v.count, 4);
	/* A sync is due 50 ms (injected) from now: the thread sleeps until then
	 * and looks again, it does not spin. A few looks per 50 ms of real time
	 * are fine; a busy loop reads the clock thousands of times. */
	atomic_store(&x.g.clock_reads, 0);
	uint64_t t0 = mono_ms();
	nap_ms(300);
	uint64_t looks = atomic_load(&x.g.clock_reads), waited = mono_ms() - t0;
	if (looks > 4 * (waited / 50 + 2))
		fail_msg("the clock was read %llu times in %llu ms: a busy wait",
			 (unsigned long long)looks, (unsigned long long)waited);
	assert_int_equal(jcommit_durable_lsn(x.c), 0);
	/* batch_ms later the thread syncs without anything new submitted. */
	atomic_store(&x.g.now, 1000 + 50);
	assert_true(wait_durable(x.c, 4, 5000));
	assert_int_equal(atomic_load(&x.g.syncs), 1);
	/* More records, clock still: safe again without a sync. */
	submit_range(x.c, &x.b, 0, 4, 6);
	assert_true(wait_safe(x.c, 6, 5000));
	assert_int_equal(jcommit_durable_lsn(x.c), 4);
	assert_int_equal(atomic_load(&x.g.syncs), 1);
	gated_close(&x);
}

static void none_is_safe_once_written_and_never_syncs(void **state)
{
	struct fixture *f = *state;
	struct gated x;
	gated_open(f, &x, JOURNAL_SYNC_NONE, 0, 0);
	gate_set(&x.g, true); /* a sync would hang the thread: none may come */
	submit_range(x.c, &x.b, 1, 0, 5);
	assert_true(wait_safe(x.c, 5, 5000));
	assert_int_equal(jcommit_durable_lsn(x.c), 0);
	struct seen v;
	seen_init(&v, NULL);
	scan_files(f->dir, seen_scan_rec, &v);
	assert_int_equal(v.count, 5);
	assert_int_equal(atomic_load(&x.g.syncs), 0);
	jcommit_close(x.c); /* with the gate closed: close must not sync either */
	x.c = NULL;
	gated_close(&x);
	assert_int_equal(atomic_load(&x.g.syncs), 0);
}

/* ---- the fault file ------------------------------------------------------------------- */

static void fault_file_stops_and_resumes(void **state)
{
	struct fixture *f = *state;
	char fault[600];
	snprintf(fault, sizeof fault, "%s/full", f->root);
	struct jcommit_opts o = { .journal = { .dir = f->dir, .sync = JOURNAL_SYNC_ALWAYS },
				  .fault_file = fault, .max_pending = 64 * 1024 };
	struct jcommit *c = open_c(&o, NULL, NULL);
	atomic_uint notes = 0;
	assert_int_equal(jcommit_start(c, notify_count, &notes), MOTE_OK);
	struct jrec_buf b = { 0 };

	submit_range(c, &b, 0, 0, 10);
	assert_true(wait_safe(c, 10, 5000));
	assert_false(jcommit_failing(c));

	FILE *ff = fopen(fault, "w");
	assert_non_null(ff);
	fclose(ff);
	assert_int_equal(submit_range(c, &b, 0, 10, 20), 11);
	assert_true(wait_failing(c, true, 5000));
	unsigned notes_at_failure = atomic_load(&notes);
	assert_true(notes_at_failure > 0);
	assert_int_equal(jcommit_safe_lsn(c), 10);
	/* While failing, records pile up until submit pushes back. */
	unsigned s = 20;
	enum mote_err err = MOTE_OK;
	uint64_t first = 0;
	while (s < PER_THREAD) {
		b.len = 0;
		b.nrec = 0;
		put_rec(&b, 0, s);
		err = jcommit_submit(c, &b, &first);
		if (err != MOTE_OK)
			break;
		assert_int_equal(first, (uint64_t)s + 1);
		s++;
	}
	assert_int_equal(err, MOTE_EFULL);
	assert_true(s > 100); /* 64 KiB of ~80-byte records */
	assert_int_equal(jcommit_next_lsn(c), (uint64_t)s + 1); /* a refusal takes no LSN */
	uint64_t last = s;
	/* Still failing, still nothing more safe. */
	assert_true(jcommit_failing(c));
	assert_int_equal(jcommit_safe_lsn(c), 10);

	assert_int_equal(unlink(fault), 0);
	if (!wait_safe(c, last, 1000))
		fail_msg("not recovered 1 s after the fault went: safe %llu of %llu",
			 (unsigned long long)jcommit_safe_lsn(c), (unsigned long long)last);
	assert_true(wait_failing(c, false, 1000));
	assert_int_equal(jcommit_durable_lsn(c), last);
	assert_true(wait_notes_above(&notes, notes_at_failure, 5000));
	/* Back-pressure is gone. */
	assert_int_equal(submit_range(c, &b, 0, s, s + 1), last + 1);
	last++;
	assert_true(wait_safe(c, last, 5000));
	jcommit_close(c);
	jrec_buf_free(&b);

	struct seen v;
	seen_init(&v, NULL);
	expect_log(f->dir, 1, last, &v);
	assert_int_equal(v.next_seq[0], last);
}

/*
 * The bytes a failing round handed to the journal count as pending until a
 * write succeeds, and then no longer: after several failures and recoveries
 * the whole max_pending is available again. (Each episode's first batch is
 * taken by a round that fails: failing is only set by one.)
 */
static void pending_bytes_come_back_after_failures(void **state)
{
	struct fixture *f = *state;
	char fault[600];
	snprintf(fault, sizeof fault, "%s/full", f->root);
	struct jcommit_opts o = { .journal = { .dir = f->dir, .sync = JOURNAL_SYNC_ALWAYS },
				  .fault_file = fault, .max_pending = 64 * 1024 };
	struct jcommit *c = open_c(&o, NULL, NULL);
	assert_int_equal(jcommit_start(c, NULL, NULL), MOTE_OK);
	struct jrec_buf b = { 0 };
	unsigned s = 0;
	for (int episode = 0; episode < 4; episode++) {
		FILE *ff = fopen(fault, "w");
		assert_non_null(ff);
		fclose(ff);
		unsigned from = s;
		b.len = 0;
		b.nrec = 0;
		while (b.len < 30 * 1024)
			put_rec(&b, 0, s++);
		uint64_t first = 0;
		enum mote_err err = jcommit_submit(c, &b, &first);
		if (err != MOTE_OK)
			fail_msg("episode %d: submit of %zu bytes: %s", episode, b.len,
				 mote_strerror(err));
		assert_int_equal(first, (uint64_t)from + 1);
		assert_true(wait_failing(c, true, 5000));
		assert_int_equal(jcommit_safe_lsn(c), from);
		assert_int_equal(unlink(fault), 0);
		assert_true(wait_safe(c, s, 5000));
		assert_true(wait_failing(c, false, 5000));
	}
	/* All of it is free again: one batch just under the bound goes in. */
	b.len = 0;
	b.nrec = 0;
	while (b.len < 60 * 1024)
		put_rec(&b, 0, s++);
	uint64_t first = 0;
	assert_int_equal(jcommit_submit(c, &b, &first), MOTE_OK);
	assert_true(wait_safe(c, s, 5000));
	jcommit_close(c);
	jrec_buf_free(&b);
	struct seen v;
	seen_init(&v, NULL);
	expect_log(f->dir, 1, s, &v);
	assert_int_equal(v.next_seq[0], s);
}

/* Closing while the thread waits to retry: one last try writes the records
 * when the disk is back by then. */
static void close_tries_once_more(void **state)
{
	struct fixture *f = *state;
	char fault[600];
	snprintf(fault, sizeof fault, "%s/full", f->root);
	struct jcommit_opts o = { .journal = { .dir = f->dir, .sync = JOURNAL_SYNC_ALWAYS },
				  .fault_file = fault, .retry_ms = 10000 };
	struct jcommit *c = open_c(&o, NULL, NULL);
	assert_int_equal(jcommit_start(c, NULL, NULL), MOTE_OK);
	struct jrec_buf b = { 0 };
	FILE *ff = fopen(fault, "w");
	assert_non_null(ff);
	fclose(ff);
	submit_range(c, &b, 1, 0, 5);
	assert_true(wait_failing(c, true, 5000));
	assert_int_equal(unlink(fault), 0);
	jcommit_close(c); /* long before the next retry is due */
	jrec_buf_free(&b);
	struct seen v;
	seen_init(&v, NULL);
	expect_log(f->dir, 1, 5, &v);
}

/* While writes fail the thread tries again every retry_ms, not in a loop. */
static void failing_writes_are_retried_at_retry_ms(void **state)
{
	struct fixture *f = *state;
	struct gated x;
	gated_open(f, &x, JOURNAL_SYNC_ALWAYS, 0, 100);
	atomic_store(&x.g.full, true);
	submit_range(x.c, &x.b, 0, 0, 3);
	assert_true(wait_failing(x.c, true, 5000));
	atomic_store(&x.g.failed_writes, 0);
	uint64_t t0 = mono_ms();
	nap_ms(1000);
	uint64_t tries = atomic_load(&x.g.failed_writes), waited = mono_ms() - t0;
	/* about waited / 100; far fewer would break the hub's promise of a
	 * retry every 200 ms (its retry_ms) */
	if (tries > waited / 100 + 2 || tries + 4 < waited / 100)
		fail_msg("%llu write attempts in %llu ms with retry_ms 100",
			 (unsigned long long)tries, (unsigned long long)waited);
	assert_int_equal(jcommit_safe_lsn(x.c), 0);
	atomic_store(&x.g.full, false);
	assert_true(wait_safe(x.c, 3, 5000));
	assert_false(jcommit_failing(x.c));
	gated_close(&x);
}

/* Before start: flush_sync reports a failing disk and works once it is back. */
static void fault_file_before_start(void **state)
{
	struct fixture *f = *state;
	char fault[600];
	snprintf(fault, sizeof fault, "%s/full", f->root);
	struct jcommit_opts o = { .journal = { .dir = f->dir, .sync = JOURNAL_SYNC_ALWAYS },
				  .fault_file = fault };
	struct jcommit *c = open_c(&o, NULL, NULL);
	struct jrec_buf b = { 0 };
	FILE *ff = fopen(fault, "w");
	assert_non_null(ff);
	fclose(ff);
	submit_range(c, &b, 2, 0, 7);
	assert_int_equal(jcommit_flush_sync(c), MOTE_EIO);
	assert_true(jcommit_failing(c));
	assert_int_equal(jcommit_safe_lsn(c), 0);
	submit_range(c, &b, 2, 7, 9);
	assert_int_equal(unlink(fault), 0);
	assert_int_equal(jcommit_flush_sync(c), MOTE_OK);
	assert_false(jcommit_failing(c));
	assert_int_equal(jcommit_safe_lsn(c), 9);
	jcommit_close(c);
	jrec_buf_free(&b);
	struct seen v;
	seen_init(&v, NULL);
	expect_log(f->dir, 1, 9, &v);
	assert_int_equal(v.next_seq[2], 9);
}

/* ---- record buffers, empty submits, back-pressure ------------------------------------ */

struct scanned {
	uint64_t n;
	uint8_t types[8];
	size_t lens[8];
	const uint8_t *payloads[8];
};

static enum mote_err collect(void *arg, uint64_t lsn, uint8_t type, const uint8_t *payload,
			     size_t len)
{
	struct scanned *s = arg;
	assert_int_equal(lsn, 100 + s->n);
	assert_true(s->n < 8);
	s->types[s->n] = type;
	s->lens[s->n] = len;
	s->payloads[s->n] = payload;
	s->n++;
	return MOTE_OK;
}

static void jrec_encodes_scannable_records(void **state)
{
	(void)state;
	struct jrec_buf b = { 0 };
	/* sizes across the first growth of the buffer, an empty payload too */
	const size_t lens[] = { 5, 0, 3000, 9000, 1 };
	const uint8_t types[] = { 1, 255, 7, 42, 9 };
	for (size_t i = 0; i < 5; i++) {
		uint8_t *p = NULL;
		assert_int_equal(jrec_begin(&b, lens[i], &p), MOTE_OK);
		assert_non_null(p);
		for (size_t k = 0; k < lens[i]; k++)
			p[k] = (uint8_t)(i * 31 + k);
		jrec_seal(&b, types[i], lens[i]);
	}
	/* begun and abandoned: leaves nothing */
	uint8_t *p;
	assert_int_equal(jrec_begin(&b, 50, &p), MOTE_OK);
	assert_int_equal(jrec_begin(&b, (size_t)JOURNAL_MAX_PAYLOAD + 1, &p), MOTE_ETOOBIG);
	assert_int_equal(b.nrec, 5);
	size_t total = 0;
	for (size_t i = 0; i < 5; i++)
		total += JOURNAL_REC_HDR + lens[i];
	assert_int_equal(b.len, total);

	struct scanned s = { 0 };
	struct journal_scan res;
	assert_int_equal(journal_scan_records(b.p, b.len, 100, collect, &s, &res), MOTE_OK);
	assert_int_equal(res.end, JOURNAL_SCAN_CLEAN);
	assert_int_equal(res.records, 5);
	assert_int_equal(res.good_bytes, b.len);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(s.types[i], types[i]);
		assert_int_equal(s.lens[i], lens[i]);
		for (size_t k = 0; k < lens[i]; k++)
			assert_int_equal(s.payloads[i][k], (uint8_t)(i * 31 + k));
	}
	/* A flipped payload byte is caught by the checksum jrec_seal wrote. */
	b.p[JOURNAL_REC_HDR + 2] ^= 0x40;
	s.n = 0;
	assert_int_equal(journal_scan_records(b.p, b.len, 100, collect, &s, &res), MOTE_OK);
	assert_int_equal(res.end, JOURNAL_SCAN_CORRUPT);
	assert_int_equal(res.records, 0);
	jrec_buf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.nrec, 0);
}

static void empty_submit_says_the_next_lsn(void **state)
{
	struct fixture *f = *state;
	struct jcommit_opts o = { .journal = { .dir = f->dir, .sync = JOURNAL_SYNC_NONE } };
	struct jcommit *c = open_c(&o, NULL, NULL);
	struct jrec_buf empty = { 0 }, b = { 0 };
	uint64_t first = 99;
	assert_int_equal(jcommit_submit(c, &empty, &first), MOTE_OK);
	assert_int_equal(first, 1);
	assert_int_equal(jcommit_start(c, NULL, NULL), MOTE_OK);
	assert_int_equal(submit_range(c, &b, 3, 0, 4), 1);
	assert_int_equal(jcommit_submit(c, &empty, &first), MOTE_OK);
	assert_int_equal(first, 5);
	assert_int_equal(jcommit_submit(c, &empty, &first), MOTE_OK);
	assert_int_equal(first, 5); /* takes no LSN */
	assert_int_equal(jcommit_next_lsn(c), 5);
	assert_true(wait_safe(c, 4, 5000));
	jcommit_close(c);

	struct seen v;
	seen_init(&v, NULL);
	c = open_c(&o, &v, NULL);
	assert_int_equal(v.count, 4);
	assert_int_equal(jcommit_submit(c, &empty, &first), MOTE_OK);
	assert_int_equal(first, 5); /* across a restart */
	assert_int_equal(jcommit_safe_lsn(c), 4);
	jcommit_close(c);
	jrec_buf_free(&b);
}

static void max_pending_gives_efull(void **state)
{
	struct fixture *f = *state;
	/* 10 records of 100 bytes each; the thread is not started, so nothing
	 * becomes safe until flush_sync. */
	struct jcommit_opts o = { .journal = { .dir = f->dir, .sync = JOURNAL_SYNC_ALWAYS },
				  .max_pending = 1000 };
	struct jcommit *c = open_c(&o, NULL, NULL);
	struct jrec_buf b = { 0 };
	uint8_t *p;
	assert_int_equal(jrec_begin(&b, 100 - JOURNAL_REC_HDR, &p), MOTE_OK);
	memset(p, 'x', 100 - JOURNAL_REC_HDR);
	jrec_seal(&b, 5, 100 - JOURNAL_REC_HDR);
	assert_int_equal(b.len, 100);
	uint64_t first;
	for (uint64_t i = 1; i <= 10; i++) {
		assert_int_equal(jcommit_submit(c, &b, &first), MOTE_OK);
		assert_int_equal(first, i);
	}
	assert_int_equal(jcommit_submit(c, &b, &first), MOTE_EFULL); /* exactly full */
	assert_int_equal(jcommit_next_lsn(c), 11);
	assert_int_equal(jcommit_bytes_since_release(c), 1000);
	assert_int_equal(jcommit_flush_sync(c), MOTE_OK);
	assert_int_equal(jcommit_safe_lsn(c), 10);
	assert_int_equal(jcommit_submit(c, &b, &first), MOTE_OK);
	assert_int_equal(first, 11);
	/* One batch larger than the bound can never go in. */
	struct jrec_buf big = { 0 };
	assert_int_equal(jrec_begin(&big, 2000, &p), MOTE_OK);
	memset(p, 'y', 2000);
	jrec_seal(&big, 5, 2000);
	assert_int_equal(jcommit_flush_sync(c), MOTE_OK);
	assert_int_equal(jcommit_submit(c, &big, &first), MOTE_EFULL);
	jcommit_close(c);
	jrec_buf_free(&b);
	jrec_buf_free(&big);

	struct journal_recovery rec;
	c = open_c(&o, NULL, &rec);
	assert_int_equal(rec.records, 11);
	jcommit_close(c);
}

/* ---- releasing segments ----------------------------------------------------------------- */

static void request_release_deletes_old_segments(void **state)
{
	struct fixture *f = *state;
	struct jcommit_opts o = { .journal = { .dir = f->dir, .sync = JOURNAL_SYNC_BATCH,
					       .batch_ms = 5, .segment_bytes = 4096 } };
	struct jcommit *c = open_c(&o, NULL, NULL);
	assert_int_equal(jcommit_start(c, NULL, NULL), MOTE_OK);
	struct jrec_buf b = { 0 };
	/* batches of 10 records (~1 KiB): a segment rolls every few batches */
	uint64_t first = 0;
	for (unsigned s = 0; s < 400; s += 10) {
		first = submit_range(c, &b, 1, s, s + 10);
		assert_int_equal(first, (uint64_t)s + 1);
		assert_true(wait_safe(c, s + 10, 5000)); /* one write per batch */
	}
	unsigned segs = count_segments(f->dir);
	assert_true(segs >= 6);
	uint64_t bytes = jcommit_bytes_since_release(c);
	assert_true(bytes > 30000);

	/* Up to 200: the segments holding only records <= 200 go. */
	jcommit_request_release(c, 200);
	assert_int_equal(jcommit_bytes_since_release(c), 0);
	struct seen v;
	uint64_t end = mono_ms() + 5000;
	for (;;) {
		seen_init(&v, NULL);
		v.mid_start = true;
		scan_files(f->dir, seen_scan_rec, &v);
		if (v.first > 1 || mono_ms() > end)
			break;
		nap_ms(1);
	}
	assert_true(v.first > 1 && v.first <= 201);
	assert_int_equal(v.last, 400);
	assert_true(count_segments(f->dir) < segs);
	/* Everything: only the segment being written stays. */
	jcommit_request_release(c, 400);
	assert_true(wait_segments(f->dir, 1, 5000));
	submit_range(c, &b, 1, 400, 410);
	assert_true(wait_safe(c, 410, 5000));
	jcommit_close(c);
	jrec_buf_free(&b);

	seen_init(&v, NULL);
	v.mid_start = true;
	struct journal_recovery rec;
	c = open_c(&o, &v, &rec);
	assert_int_equal(v.last, 410);
	assert_int_equal(v.gaps, 0);
	assert_int_equal(v.bad, 0);
	assert_int_equal(v.out_of_order, 0);
	assert_true(v.first > 200);
	assert_int_equal(rec.last_lsn, 410);
	assert_int_equal(jcommit_next_lsn(c), 411); /* LSNs go on after a release */
	jcommit_close(c);
}

static void flush_sync_and_release_now_before_start(void **state)
{
	struct fixture *f = *state;
	struct jcommit_opts o = { .journal = { .dir = f->dir, .sync = JOURNAL_SYNC_ALWAYS,
					       .segment_bytes = 4096 } };
	struct jcommit *c = open_c(&o, NULL, NULL);
	struct jrec_buf b = { 0 };
	for (unsigned s = 0; s < 300; s += 10) {
		submit_range(c, &b, 2, s, s + 10);
		assert_int_equal(jcommit_flush_sync(c), MOTE_OK);
		assert_int_equal(jcommit_safe_lsn(c), s + 10);
	}
	assert_int_equal(jcommit_durable_lsn(c), 300);
	assert_true(count_segments(f->dir) >= 4);
	/* What a start-up snapshot does: write it, sync it, drop what it supersedes. */
	submit_range(c, &b, 2, 300, 310);
	assert_int_equal(jcommit_flush_sync(c), MOTE_OK);
	assert_int_equal(jcommit_release_now(c, 300), MOTE_OK);
	struct seen v;
	seen_init(&v, NULL);
	v.mid_start = true;
	scan_files(f->dir, seen_scan_rec, &v);
	assert_true(v.first > 1 && v.first <= 301);
	assert_int_equal(v.last, 310);
	/* and the thread carries on after them */
	assert_int_equal(jcommit_start(c, NULL, NULL), MOTE_OK);
	assert_int_equal(submit_range(c, &b, 2, 310, 320), 311);
	assert_true(wait_safe(c, 320, 5000));
	jcommit_close(c);
	jrec_buf_free(&b);

	seen_init(&v, NULL);
	v.mid_start = true;
	c = open_c(&o, &v, NULL);
	assert_int_equal(v.last, 320);
	assert_int_equal(v.gaps, 0);
	assert_int_equal(v.bad, 0);
	assert_int_equal(v.out_of_order, 0);
	assert_true(v.first > 1 && v.first <= 301);
	assert_int_equal(v.next_seq[2], 320);
	jcommit_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(many_threads_always, setup, teardown),
		cmocka_unit_test_setup_teardown(many_threads_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(many_threads_none, setup, teardown),
		cmocka_unit_test_setup_teardown(always_waits_for_the_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(batch_is_safe_once_written_and_syncs_on_time,
						setup, teardown),
		cmocka_unit_test_setup_teardown(none_is_safe_once_written_and_never_syncs, setup,
						teardown),
		cmocka_unit_test_setup_teardown(fault_file_stops_and_resumes, setup, teardown),
		cmocka_unit_test_setup_teardown(pending_bytes_come_back_after_failures, setup,
						teardown),
		cmocka_unit_test_setup_teardown(close_tries_once_more, setup, teardown),
		cmocka_unit_test_setup_teardown(failing_writes_are_retried_at_retry_ms, setup,
						teardown),
		cmocka_unit_test_setup_teardown(fault_file_before_start, setup, teardown),
		cmocka_unit_test_setup_teardown(jrec_encodes_scannable_records, setup, teardown),
		cmocka_unit_test_setup_teardown(empty_submit_says_the_next_lsn, setup, teardown),
		cmocka_unit_test_setup_teardown(max_pending_gives_efull, setup, teardown),
		cmocka_unit_test_setup_teardown(request_release_deletes_old_segments, setup,
						teardown),
		cmocka_unit_test_setup_teardown(flush_sync_and_release_now_before_start, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
