/*
 * journal.h - an append-only, checksummed log with group commit and
 * recovery: the storage engine under broker persistence (issue 4).
 *
 * A journal is a directory of segment files "00000001.log", "00000002.log",
 * ... (format in journal/format.h and docs/durability.md). Each record has a
 * type (1..255, chosen by the caller) and a payload, and gets a log sequence
 * number (LSN): 1, 2, 3, ... with no reuse, also across restarts.
 *
 * Group commit: journal_append() only copies the record into an in-memory
 * buffer; journal_commit() writes everything buffered with one write and,
 * per policy, one fdatasync. journal_durable_lsn() says up to which LSN the
 * records are on stable storage, so a caller that appended for many clients
 * acknowledges all of them after one commit.
 *
 * Threading: none inside. One thread owns a journal (append, commit, tick,
 * release, close); nothing here is safe to call concurrently on the same
 * journal. Different journals are independent. Recovery (the replay
 * callback) runs inside journal_open() on the caller's thread.
 *
 * Errors: a failed write or fsync makes journal_commit() return MOTE_EIO
 * (journal_last_errno() says ENOSPC, EIO, ...). Nothing is then claimed
 * durable that is not; the records stay buffered and the journal stays
 * usable: a later commit writes them again and may succeed.
 */
#ifndef MOTE_JOURNAL_JOURNAL_H
#define MOTE_JOURNAL_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"

struct journal;

enum journal_sync {
	JOURNAL_SYNC_ALWAYS, /* commit returns after fdatasync: durable == appended */
	JOURNAL_SYNC_BATCH,  /* fdatasync at most every batch_ms, from commit or tick */
	JOURNAL_SYNC_NONE,   /* never fdatasync; durable LSN stays 0 */
};

/*
 * The system calls the writer uses, replaceable for fault injection in
 * tests. Each has the contract of the POSIX call of the same name (return
 * -1 and set errno on failure); `ctx` is passed through.
 */
struct journal_io {
	ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, off_t off);
	int (*fdatasync)(void *ctx, int fd);
	void *ctx;
};

struct journal_opts {
	const char *dir;           /* created (one level) if missing; copied */
	enum journal_sync sync;
	uint32_t batch_ms;         /* BATCH: longest time a written record waits for fsync */
	uint64_t segment_bytes;    /* roll to a new segment once one reaches this; 0: 64 MiB */
	size_t max_buffer;         /* bytes buffered before append says MOTE_EFULL; 0: 64 MiB */
	const struct journal_io *io; /* NULL: the real system calls; must outlive the journal */
	/* Monotonic milliseconds for BATCH; NULL: mote_mono_ms. */
	uint64_t (*now_ms)(void *ctx);
	void *clock_ctx;
};

/* What journal_open() found on disk. */
struct journal_recovery {
	uint32_t segments;       /* segment files read */
	uint64_t records;        /* intact records replayed */
	uint64_t dropped_bytes;  /* bytes skipped or truncated as torn or corrupt */
	uint32_t damaged_segments; /* segments in which something was dropped */
	uint64_t last_lsn;       /* highest LSN replayed or handed out before; 0: none */
};

/*
 * Called once per intact record in LSN order during journal_open().
 * `payload` is valid during the call only. A non-zero return aborts the
 * open with that error.
 */
typedef enum mote_err (*journal_replay_fn)(void *arg, uint64_t lsn, uint8_t type,
					    const void *payload, size_t len);

/*
 * Opens (creating if needed) the journal in opts->dir, replays every intact
 * record through `replay` (may be NULL), and makes it ready to append after
 * the last LSN. A torn or corrupt tail of the last segment is truncated; a
 * bad record in an older segment ends that segment's replay; both are
 * logged with MOTE_WARN and counted in *rec (may be NULL). Never fails
 * because of bad log contents; fails with MOTE_EIO (and an error log line)
 * if the directory cannot be created, read or written, MOTE_EINVAL for bad
 * options, MOTE_ENOMEM, or the replay callback's error.
 * On success *out is owned by the caller (journal_close); on failure
 * nothing is allocated.
 */
enum mote_err journal_open(const struct journal_opts *opts, journal_replay_fn replay, void *arg,
			   struct journal **out, struct journal_recovery *rec);

/*
 * Closes the files and frees the journal. Records appended but not
 * committed are discarded: commit first. NULL is a no-op.
 */
void journal_close(struct journal *j);

/*
 * Buffers one record and gives it the next LSN in *lsn. The payload is
 * copied (the caller keeps ownership). MOTE_EINVAL for type 0,
 * MOTE_ETOOBIG for a payload over JOURNAL_MAX_PAYLOAD, MOTE_EFULL when the
 * buffer (uncommitted + not yet durable records) would exceed max_buffer:
 * back-pressure, typically while the disk is failing. On error nothing is
 * buffered and no LSN is used.
 */
enum mote_err journal_append(struct journal *j, uint8_t type, const void *payload, size_t len,
			     uint64_t *lsn);

/*
 * Buffers `nrec` records already encoded (record header + payload each, as
 * journal_rec_encode() writes them) and gives the first one LSN *first; the
 * others follow. The caller vouches for the encoding (it is not checked
 * here: a committer thread appends blobs built by other threads). Errors
 * as journal_append; on error nothing is buffered.
 */
enum mote_err journal_append_encoded(struct journal *j, const void *recs, size_t len,
				     uint32_t nrec, uint64_t *first);

/*
 * Writes all buffered records (one write) and syncs per policy: ALWAYS
 * syncs; BATCH syncs if batch_ms passed since the last sync; NONE never.
 * Rolls to a new segment first when the current one is full. MOTE_EIO on a
 * failed write, sync or segment creation (journal_last_errno() has errno).
 */
enum mote_err journal_commit(struct journal *j);

/*
 * BATCH: syncs what is written if the oldest unsynced write is batch_ms
 * old; the owner calls it from its timer (see journal_sync_due_ms). Other
 * policies: no-op. MOTE_EIO as for commit.
 */
enum mote_err journal_tick(struct journal *j);

/*
 * BATCH: milliseconds until journal_tick() has work (0: now), or UINT64_MAX
 * when nothing waits for a sync. Other policies: UINT64_MAX.
 */
uint64_t journal_sync_due_ms(const struct journal *j);

uint64_t journal_last_lsn(const struct journal *j);    /* highest LSN handed out */
uint64_t journal_written_lsn(const struct journal *j); /* highest LSN written to the file */
uint64_t journal_durable_lsn(const struct journal *j); /* highest LSN on stable storage */
int journal_last_errno(const struct journal *j);      /* errno of the last I/O failure */

/*
 * Declares every record with LSN <= lsn obsolete. Whole segments whose
 * records are all obsolete are deleted (never the segment being written).
 * That is all the compaction there is for now: a future compactor will
 * rewrite live records out of old segments; deleting whole segments is
 * enough while records are short-lived. *deleted (may be NULL) gets the
 * number of segment files removed. MOTE_EIO if an unlink fails.
 */
enum mote_err journal_release(struct journal *j, uint64_t lsn, uint32_t *deleted);

/* Number of segment files the journal currently has. */
uint32_t journal_segment_count(const struct journal *j);

#endif
