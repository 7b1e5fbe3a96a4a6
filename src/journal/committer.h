/*
 * committer.h - a journal shared by many threads: they hand in batches of
 * encoded records, one committer thread writes and syncs them (group
 * commit across threads), and every thread can read how far the log is
 * safe to acknowledge.
 *
 * Why a thread of its own: fdatasync takes 0.3 ms to several ms. Done on an
 * event loop it would stall every client of that loop; done here, the loops
 * keep appending while a sync runs, and the next sync covers all of it.
 *
 * Records are encoded by the submitting thread (jrec_put: header and CRC
 * computed there, not under the lock); jcommit_submit copies the batch
 * under a mutex and gives it its LSNs. The thread appends batches in the
 * order they were submitted, so the LSNs handed out are the LSNs on disk.
 *
 * "Acknowledgeable" (jcommit_safe_lsn) depends on the policy:
 *   ALWAYS: records synced (fdatasync returned);
 *   BATCH, NONE: records written to the file. A killed process loses
 *   nothing written; power loss can lose what was not synced yet.
 *
 * Errors: a failed write or sync (disk full, I/O error) sets the failing
 * flag (jcommit_failing) and the thread retries every retry_ms with the same
 * records (the journal keeps them); nothing is acknowledged meanwhile. The
 * first failure and the recovery are logged.
 *
 * Threading: submit, safe_lsn, failing, next_lsn and request_release are
 * thread-safe. open, start and close are called by the owner, once each.
 * Before jcommit_start the owner's thread may call jcommit_flush_sync (the
 * start-up snapshot is written that way).
 * Ownership: jcommit_open returns a committer owned by the caller, freed by
 * jcommit_close, which also closes the journal.
 */
#ifndef MOTE_JOURNAL_COMMITTER_H
#define MOTE_JOURNAL_COMMITTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "journal/journal.h"

struct jcommit;

/* A growable buffer of encoded records, built by one thread. */
struct jrec_buf {
	uint8_t *p;
	size_t len, cap;
	uint32_t nrec;
};

/*
 * Appends one record: reserves JOURNAL_REC_HDR + len bytes, lets the caller
 * fill the payload through *payload, and jrec_seal computes the checksum.
 * Two steps so encoders write in place. MOTE_ENOMEM, MOTE_ETOOBIG.
 */
enum mote_err jrec_begin(struct jrec_buf *b, size_t len, uint8_t **payload);
void jrec_seal(struct jrec_buf *b, uint8_t type, size_t len);
void jrec_buf_free(struct jrec_buf *b);

/* Called on the committer thread each time the safe LSN moved or the
 * failing flag changed. Must be quick and thread-safe (it wakes loops). */
typedef void (*jcommit_notify_fn)(void *ctx);

struct jcommit_opts {
	struct journal_opts journal;
	uint32_t retry_ms;      /* after a failure; 0: 200 */
	size_t max_pending;     /* bytes submitted and not yet safe before submit
				 * says MOTE_EFULL; 0: 256 MiB */
	/* Test hook: while this file exists, every write fails with ENOSPC.
	 * NULL: none. Copied. */
	const char *fault_file;
};

/*
 * Opens the journal (journal_open: replay runs here, on the caller's
 * thread) and prepares the committer; the thread starts with jcommit_start.
 */
enum mote_err jcommit_open(const struct jcommit_opts *o, journal_replay_fn replay, void *arg,
			   struct journal_recovery *rec, struct jcommit **out);
enum mote_err jcommit_start(struct jcommit *c, jcommit_notify_fn notify, void *ctx);

/*
 * Hands a batch over: copies b's records, gives them LSNs *first .. *first
 * + nrec - 1, and wakes the thread. The caller keeps b (and may reuse it).
 * MOTE_EFULL when max_pending would be exceeded (disk failing for long),
 * MOTE_ENOMEM.
 */
enum mote_err jcommit_submit(struct jcommit *c, const struct jrec_buf *b, uint64_t *first);

/* The LSN the next submitted record gets (stable only while no other
 * thread submits: used by the snapshot writer, which stops them). */
uint64_t jcommit_next_lsn(struct jcommit *c);

uint64_t jcommit_safe_lsn(const struct jcommit *c);
uint64_t jcommit_durable_lsn(const struct jcommit *c);
bool jcommit_failing(const struct jcommit *c);
/* Bytes submitted since the last release request (for compaction). */
uint64_t jcommit_bytes_since_release(const struct jcommit *c);

/* Asks the thread to delete the segments whose records are all <= lsn. */
void jcommit_request_release(struct jcommit *c, uint64_t lsn);

/* Before start: writes and syncs everything submitted, on this thread. */
enum mote_err jcommit_flush_sync(struct jcommit *c);
/* Before start: journal_release on this thread. */
enum mote_err jcommit_release_now(struct jcommit *c, uint64_t lsn);

/* Stops the thread after writing what was submitted (one last try if the
 * disk is failing), closes the journal, frees. NULL is a no-op. */
void jcommit_close(struct jcommit *c);

#endif
