/*
 * tstore_int.h - the telemetry store's private state, shared by tstore.c
 * (open, append, flush thread, retention) and tstore_query.c (queries).
 *
 * Locks, in this order: flush_lock (one flush cycle, retention or device
 * deletion at a time: the only users of wdb) before mu (the series table,
 * the heads, the dirty list, counters). pool_mu guards the read connections
 * and is never held with another lock.
 *
 * Memory: a series' points not yet sealed into a full block live in its
 * `cur` head (arrays that only grow at the end; a full head moves to the
 * `sealed` list until the flush thread has written it). The flush thread
 * reads a head's points [0, n) without mu: the appender only writes beyond
 * n, and arrays it replaces while growing go to `retired`, freed by the
 * next flush cycle, when no reader can hold them any more. Queries copy
 * under mu.
 *
 * On disk (telemetry.db): full blocks in ts_blocks, appended in the order they
 * are sealed (rowid = next), found through the index (series, t_last,
 * t_first, seq); a head not yet full is written as parts (the points new
 * since the previous flush) in ts_parts, keyed by a rowid that packs
 * (series id << 40 | head seq << 10 | first point index), and its parts are
 * replaced by one block in ts_blocks when it is full.
 */
#ifndef MOTE_STORE_TSTORE_INT_H
#define MOTE_STORE_TSTORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/block.h"
#include "store/tstore.h"

#define TS_SERIES_SHIFT 40
#define TS_SEQ_SHIFT 10
#define TS_SERIES_MAX (INT64_C(1) << 23) /* series ids below this fit the rowid */
#define TS_SEQ_MAX (INT64_C(1) << 30)
#define TS_MINUTE 60000
#define TS_HOUR 3600000
#define TS_POOL 8

struct head {
	int64_t *ts;
	double *v;
	uint32_t n, cap;
	uint32_t written; /* points [0, written) are in SQLite */
	uint32_t rolled;  /* points [0, rolled) are in the rollups (== written after a flush) */
	int64_t seq;
	struct head *next; /* sealed list, oldest first */
};

struct series {
	struct series *hnext; /* hash chain */
	struct series *dnext; /* dirty list */
	uint64_t hash;
	int64_t id;
	char *device; /* one allocation: device NUL metric NUL */
	char *metric;
	struct head *cur;
	struct head *sealed;
	int64_t next_seq;
	int64_t last_ts;
	double last_v;
	bool has_last, dirty, is_new;
};

struct tstore {
	struct tstore_config cfg;
	char *path;
	sqlite3 *wdb;
	sqlite3_stmt *st_ins_series, *st_upd_series, *st_ins_block, *st_ins_part, *st_del_seq, *st_roll_m,
		*st_roll_h, *st_gen;

	pthread_mutex_t flush_lock;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* with mu: wakes the flush thread to stop */
	pthread_t thr;
	bool thr_started, stop;

	struct series **tab;
	size_t tabsz, nseries;
	struct series *dirty;
	void **retired;
	size_t nretired, capretired;
	int64_t next_id;
	uint64_t mem_gen; /* the ts_meta 'gen' that memory's written/rolled counts match */
	int64_t raw_cutoff, minute_cutoff, hour_cutoff; /* of the last retention run */
	uint64_t appended, flushed, pending, flush_errors, refused; /* mu */
	uint64_t blocks;     /* flush_lock */
	uint64_t blocks_pub; /* mu: blocks as of the last flush, for stats */
	uint64_t maint_due_mono;

	pthread_mutex_t pool_mu;
	sqlite3 *pool[TS_POOL];
	int npool;
};

uint64_t tstore_hash(const char *device, const char *metric);
/* mu held */
struct series *tstore_find(struct tstore *s, uint64_t h, const char *device, const char *metric);

sqlite3 *tstore_reader(struct tstore *s, char *err, size_t errcap);
void tstore_reader_put(struct tstore *s, sqlite3 *db);

#endif
