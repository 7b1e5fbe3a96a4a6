/*
 * journal_int.h - the journal's private state, shared by its .c files only
 * (writer.c: append, commit, sync, roll, release; recover.c: open).
 *
 * Invariants (between calls):
 * - buf holds the encoded records with LSN in (durable_lsn, last_lsn] for
 *   ALWAYS and BATCH, (written_lsn, last_lsn] for NONE; buf[0] belongs at
 *   file offset seg_off of the current segment (fd).
 * - buf[0..buf_written) is in the file but not yet synced (always 0 for
 *   NONE); those are the records (durable_lsn, written_lsn].
 * - Only the current segment can hold unsynced data: a roll syncs first.
 * - segs[] is sorted by segno and base_lsn; the last entry is fd's segment.
 */
#ifndef MOTE_JOURNAL_JOURNAL_INT_H
#define MOTE_JOURNAL_JOURNAL_INT_H

#include "journal/journal.h"

struct journal_seg {
	uint32_t segno;
	uint64_t base_lsn;
};

struct journal {
	char *dir;
	int dirfd;
	int fd; /* current segment, opened read-write */
	enum journal_sync sync;
	uint32_t batch_ms;
	uint64_t seg_limit;
	size_t max_buffer;
	struct journal_io io;
	uint64_t (*now_ms)(void *ctx);
	void *clock_ctx;

	struct journal_seg *segs;
	uint32_t nsegs, segs_cap;

	uint8_t *buf;
	size_t buf_len, buf_cap, buf_written;
	uint64_t seg_off;

	uint64_t last_lsn, written_lsn, durable_lsn;
	uint64_t last_sync_ms;
	int err_no;
};

#define JOURNAL_SEG_NAME_LEN 13 /* "%08u.log" + NUL */

void journal_seg_name(char out[JOURNAL_SEG_NAME_LEN], uint32_t segno);
/* Adds a segment to segs[] (MOTE_ENOMEM). */
enum mote_err journal_segs_push(struct journal *j, uint32_t segno, uint64_t base_lsn);
/*
 * Creates segment segno starting at base_lsn, writes and (unless NONE)
 * syncs its header and the directory, and makes it the current segment.
 * On failure the old current segment stays current and MOTE_EIO/ENOMEM is
 * returned.
 */
enum mote_err journal_seg_create(struct journal *j, uint32_t segno, uint64_t base_lsn);
/* The default system calls. */
extern const struct journal_io journal_posix_io;

#endif
