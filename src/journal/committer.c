/*
 * committer.c - the committer thread over a journal (see committer.h).
 *
 * Two buffers: `incoming` (guarded by mu) collects what threads submit;
 * the thread swaps it for an empty one and appends it to the journal,
 * which only this thread touches once started. So a submit never waits for
 * a write or a sync, only for a memcpy under the mutex.
 */
#include "journal/committer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "journal/format.h"

struct jcommit {
	struct journal *j;
	enum journal_sync sync;
	uint32_t retry_ms;
	size_t max_pending;
	char *fault_file;
	struct journal_io io; /* the real calls behind the fault-file check */

	pthread_t thread;
	bool started;
	jcommit_notify_fn notify;
	void *notify_ctx;

	pthread_mutex_t mu;
	pthread_cond_t cond;
	/* under mu */
	struct jrec_buf incoming;
	uint64_t next_lsn;      /* LSN of the next record submitted */
	uint64_t submitted_bytes, bytes_at_release;
	uint64_t release_lsn;   /* asked for, not done yet; 0 none */
	bool stop;

	/* thread only */
	struct jrec_buf work;   /* swapped out of incoming, not yet in the journal */
	size_t in_journal;      /* bytes handed to the journal, not yet confirmed by a
				 * successful commit (failed rounds keep adding) */

	/* read by any thread */
	_Atomic uint64_t safe_lsn, durable_lsn;
	atomic_bool failing;
	_Atomic uint64_t pending_bytes; /* submitted and not yet safe */
};

/* ---- record buffers ---------------------------------------------------------- */

enum mote_err jrec_begin(struct jrec_buf *b, size_t len, uint8_t **payload)
{
	if (len > JOURNAL_MAX_PAYLOAD)
		return MOTE_ETOOBIG;
	size_t need = b->len + JOURNAL_REC_HDR + len;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < need)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p)
			return MOTE_ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	*payload = b->p + b->len + JOURNAL_REC_HDR;
	return MOTE_OK;
}

void jrec_seal(struct jrec_buf *b, uint8_t type, size_t len)
{
	uint8_t *rec = b->p + b->len;
	journal_rec_hdr_encode(rec, type, rec + JOURNAL_REC_HDR, (uint32_t)len);
	b->len += JOURNAL_REC_HDR + len;
	b->nrec++;
}

void jrec_buf_free(struct jrec_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* ---- the fault-file hook ------------------------------------------------------ */

static ssize_t fault_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
	struct jcommit *c = ctx;
	if (access(c->fault_file, F_OK) == 0) {
		errno = ENOSPC;
		return -1;
	}
	return pwrite(fd, buf, len, off);
}

static int fault_fdatasync(void *ctx, int fd)
{
	(void)ctx;
	return fdatasync(fd);
}

/* ---- open / submit ------------------------------------------------------------- */

enum mote_err jcommit_open(const struct jcommit_opts *o, journal_replay_fn replay, void *arg,
			   struct journal_recovery *rec, struct jcommit **out)
{
	struct jcommit *c = calloc(1, sizeof *c);
	if (!c)
		return MOTE_ENOMEM;
	struct journal_opts jo = o->journal;
	if (o->fault_file) {
		c->fault_file = strdup(o->fault_file);
		if (!c->fault_file) {
			free(c);
			return MOTE_ENOMEM;
		}
		c->io = (struct journal_io){ fault_pwrite, fault_fdatasync, c };
		jo.io = &c->io;
	}
	jo.max_buffer = SIZE_MAX; /* back-pressure is max_pending, here */
	c->sync = jo.sync;
	c->retry_ms = o->retry_ms ? o->retry_ms : 200;
	c->max_pending = o->max_pending ? o->max_pending : (size_t)256 << 20;
	enum mote_err err = journal_open(&jo, replay, arg, &c->j, rec);
	if (err != MOTE_OK) {
		free(c->fault_file);
		free(c);
		return err;
	}
	pthread_mutex_init(&c->mu, NULL);
	/* mote_mono_deadline computes deadlines on CLOCK_MONOTONIC; a default condition
	 * variable reads them as CLOCK_REALTIME, i.e. long past, and every
	 * timed wait would return at once (a busy loop while BATCH waits for
	 * its sync or a failing disk waits for its retry). */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->next_lsn = journal_last_lsn(c->j) + 1;
	atomic_store(&c->safe_lsn, journal_last_lsn(c->j));
	atomic_store(&c->durable_lsn, journal_last_lsn(c->j));
	*out = c;
	return MOTE_OK;
}

enum mote_err jcommit_submit(struct jcommit *c, const struct jrec_buf *b, uint64_t *first)
{
	if (b->nrec == 0) {
		pthread_mutex_lock(&c->mu);
		*first = c->next_lsn;
		pthread_mutex_unlock(&c->mu);
		return MOTE_OK;
	}
	if (atomic_load_explicit(&c->pending_bytes, memory_order_relaxed) + b->len > c->max_pending)
		return MOTE_EFULL;
	pthread_mutex_lock(&c->mu);
	struct jrec_buf *in = &c->incoming;
	if (in->len + b->len > in->cap) {
		size_t cap = in->cap ? in->cap : 65536;
		while (cap < in->len + b->len)
			cap *= 2;
		uint8_t *p = realloc(in->p, cap);
		if (!p) {
			pthread_mutex_unlock(&c->mu);
			return MOTE_ENOMEM;
		}
		in->p = p;
		in->cap = cap;
	}
	memcpy(in->p + in->len, b->p, b->len);
	in->len += b->len;
	in->nrec += b->nrec;
	*first = c->next_lsn;
	c->next_lsn += b->nrec;
	c->submitted_bytes += b->len;
	atomic_fetch_add_explicit(&c->pending_bytes, b->len, memory_order_relaxed);
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->mu);
	return MOTE_OK;
}

uint64_t jcommit_next_lsn(struct jcommit *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t n = c->next_lsn;
	pthread_mutex_unlock(&c->mu);
	return n;
}

uint64_t jcommit_safe_lsn(const struct jcommit *c)
{
	return atomic_load_explicit(&c->safe_lsn, memory_order_acquire);
}

uint64_t jcommit_durable_lsn(const struct jcommit *c)
{
	return atomic_load_explicit(&c->durable_lsn, memory_order_acquire);
}

bool jcommit_failing(const struct jcommit *c)
{
	return atomic_load_explicit(&c->failing, memory_order_relaxed);
}

uint64_t jcommit_bytes_since_release(const struct jcommit *c)
{
	struct jcommit *m = (struct jcommit *)c; /* the mutex is not part of the value */
	pthread_mutex_lock(&m->mu);
	uint64_t n = m->submitted_bytes - m->bytes_at_release;
	pthread_mutex_unlock(&m->mu);
	return n;
}

void jcommit_request_release(struct jcommit *c, uint64_t lsn)
{
	pthread_mutex_lock(&c->mu);
	if (lsn > c->release_lsn)
		c->release_lsn = lsn;
	c->bytes_at_release = c->submitted_bytes;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->mu);
}

/* ---- the work -------------------------------------------------------------------- */

/* Moves `work` into the journal, commits, publishes the result. Returns
 * whether the journal is now healthy. */
static bool commit_work(struct jcommit *c)
{
	enum mote_err err = MOTE_OK;
	if (c->work.nrec) {
		uint64_t first;
		err = journal_append_encoded(c->j, c->work.p, c->work.len, c->work.nrec, &first);
		if (err == MOTE_OK) {
			c->in_journal += c->work.len;
			c->work.len = 0;
			c->work.nrec = 0;
		}
	}
	if (err == MOTE_OK)
		err = journal_commit(c->j);
	if (err == MOTE_OK && c->sync == JOURNAL_SYNC_BATCH)
		err = journal_tick(c->j);
	bool ok = err == MOTE_OK;
	/* Everything the journal was given is in the file now (or synced, for
	 * ALWAYS), including what failed rounds left there. Released before
	 * safe moves, so a thread that sees the new safe LSN finds the room. */
	if (ok) {
		atomic_fetch_sub_explicit(&c->pending_bytes, c->in_journal, memory_order_relaxed);
		c->in_journal = 0;
	}
	uint64_t safe = c->sync == JOURNAL_SYNC_ALWAYS ? journal_durable_lsn(c->j)
						       : journal_written_lsn(c->j);
	uint64_t old = atomic_load_explicit(&c->safe_lsn, memory_order_relaxed);
	if (safe > old)
		atomic_store_explicit(&c->safe_lsn, safe, memory_order_release);
	atomic_store_explicit(&c->durable_lsn, journal_durable_lsn(c->j), memory_order_release);
	bool was_failing = atomic_load_explicit(&c->failing, memory_order_relaxed);
	if (!ok && !was_failing)
		MOTE_ERROR("journal",
			   "event=journal_write_failed errno=%d why=\"%s\" action=\"QoS 1/2 publishes "
			   "are refused until writes succeed again\"",
			   journal_last_errno(c->j), strerror(journal_last_errno(c->j)));
	if (ok && was_failing)
		MOTE_WARN("journal", "event=journal_recovered_io lsn=%llu",
			  (unsigned long long)journal_written_lsn(c->j));
	atomic_store_explicit(&c->failing, !ok, memory_order_relaxed);
	if (c->notify && (safe > old || ok == was_failing))
		c->notify(c->notify_ctx);
	return ok;
}

/* Takes what was submitted into `work` (appending to what a failure left). */
static void take_incoming(struct jcommit *c)
{
	struct jrec_buf *in = &c->incoming;
	if (in->nrec == 0)
		return;
	if (c->work.nrec == 0) {
		struct jrec_buf t = c->work;
		c->work = *in;
		*in = t;
		in->len = 0;
		in->nrec = 0;
		return;
	}
	/* A failed round left records in work: the new ones go after them. */
	if (c->work.len + in->len > c->work.cap) {
		size_t cap = c->work.cap;
		while (cap < c->work.len + in->len)
			cap *= 2;
		uint8_t *p = realloc(c->work.p, cap);
		if (!p)
			return; /* try again next round */
		c->work.p = p;
		c->work.cap = cap;
	}
	memcpy(c->work.p + c->work.len, in->p, in->len);
	c->work.len += in->len;
	c->work.nrec += in->nrec;
	in->len = 0;
	in->nrec = 0;
}

static void *committer_main(void *arg)
{
	struct jcommit *c = arg;
	bool healthy = true;
	bool retry_now = false; /* the wait after a failure is over */
	pthread_mutex_lock(&c->mu);
	for (;;) {
		uint64_t release = 0;
		while (!retry_now && !c->stop && c->incoming.nrec == 0 && c->release_lsn == 0) {
			uint64_t wait = journal_sync_due_ms(c->j);
			if (!healthy && wait > c->retry_ms)
				wait = c->retry_ms;
			if (wait == UINT64_MAX) {
				pthread_cond_wait(&c->cond, &c->mu);
				continue;
			}
			if (wait == 0)
				break;
			struct timespec ts;
			ts = mote_mono_deadline(wait);
			if (pthread_cond_timedwait(&c->cond, &c->mu, &ts) == ETIMEDOUT)
				break;
		}
		retry_now = false;
		bool stop = c->stop;
		take_incoming(c);
		release = c->release_lsn;
		c->release_lsn = 0;
		pthread_mutex_unlock(&c->mu);

		healthy = commit_work(c);
		if (release && healthy) {
			uint32_t n = 0;
			if (journal_release(c->j, release, &n) != MOTE_OK)
				MOTE_WARN("journal", "event=release_failed errno=%d",
					  journal_last_errno(c->j));
			else if (n)
				MOTE_DEBUG("journal", "event=segments_released count=%u upto=%llu", n,
					   (unsigned long long)release);
		} else if (release) {
			pthread_mutex_lock(&c->mu);
			if (release > c->release_lsn)
				c->release_lsn = release; /* after the disk is back */
			pthread_mutex_unlock(&c->mu);
		}
		pthread_mutex_lock(&c->mu);
		if (stop && c->incoming.nrec == 0)
			break;
		if (!healthy && c->incoming.nrec == 0) {
			/* Wait retry_ms before trying the same records again. */
			struct timespec ts;
			ts = mote_mono_deadline(c->retry_ms);
			while (!c->stop && c->incoming.nrec == 0 &&
			       pthread_cond_timedwait(&c->cond, &c->mu, &ts) != ETIMEDOUT)
				;
			/* A stop goes round once more: the last try close promises.
			 * Either way the next round starts now, not after another
			 * wait at the top (which made retries 2 * retry_ms apart). */
			retry_now = true;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

enum mote_err jcommit_start(struct jcommit *c, jcommit_notify_fn notify, void *ctx)
{
	c->notify = notify;
	c->notify_ctx = ctx;
	if (pthread_create(&c->thread, NULL, committer_main, c) != 0)
		return MOTE_ENOMEM;
	c->started = true;
	return MOTE_OK;
}

enum mote_err jcommit_flush_sync(struct jcommit *c)
{
	pthread_mutex_lock(&c->mu);
	take_incoming(c);
	pthread_mutex_unlock(&c->mu);
	return commit_work(c) ? MOTE_OK : MOTE_EIO;
}

enum mote_err jcommit_release_now(struct jcommit *c, uint64_t lsn)
{
	return journal_release(c->j, lsn, NULL);
}

void jcommit_close(struct jcommit *c)
{
	if (!c)
		return;
	if (c->started) {
		pthread_mutex_lock(&c->mu);
		c->stop = true;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->thread, NULL);
	} else {
		pthread_mutex_lock(&c->mu);
		take_incoming(c);
		pthread_mutex_unlock(&c->mu);
		commit_work(c);
	}
	if (c->work.nrec)
		MOTE_ERROR("journal", "event=close_unwritten records=%u why=\"disk failing\"",
			   c->work.nrec);
	journal_close(c->j);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cond);
	jrec_buf_free(&c->incoming);
	jrec_buf_free(&c->work);
	free(c->fault_file);
	free(c);
}
