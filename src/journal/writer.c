/*
 * writer.c - the write side of the journal: buffered appends, group commit
 * (one pwrite of everything buffered, then at most one fdatasync), segment
 * roll, release of whole obsolete segments, and close.
 *
 * Failure handling is built on one rule: a record leaves the buffer only
 * once it is durable (or, under NONE, written). So when a write or sync
 * fails, the file is cut back to the last durable offset and the next
 * commit simply writes the same bytes at the same offsets again. This also
 * covers the Linux behaviour where a failed fsync drops the dirty pages and
 * a second fsync "succeeds" without them: we never trust pages that were
 * written before a failed sync, we write them again.
 *
 * Invariants: see journal_int.h.
 */
#include "journal/journal_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "journal/format.h"

static ssize_t posix_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
	(void)ctx;
	return pwrite(fd, buf, len, off);
}

static int posix_fdatasync(void *ctx, int fd)
{
	(void)ctx;
	return fdatasync(fd);
}

const struct journal_io journal_posix_io = { posix_pwrite, posix_fdatasync, NULL };

void journal_seg_name(char out[JOURNAL_SEG_NAME_LEN], uint32_t segno)
{
	snprintf(out, JOURNAL_SEG_NAME_LEN, "%08u.log", (unsigned)(segno % 100000000u));
}

enum mote_err journal_segs_push(struct journal *j, uint32_t segno, uint64_t base_lsn)
{
	if (j->nsegs == j->segs_cap) {
		uint32_t cap = j->segs_cap ? j->segs_cap * 2 : 8;
		struct journal_seg *s = realloc(j->segs, cap * sizeof *s);
		if (!s)
			return MOTE_ENOMEM;
		j->segs = s;
		j->segs_cap = cap;
	}
	j->segs[j->nsegs].segno = segno;
	j->segs[j->nsegs].base_lsn = base_lsn;
	j->nsegs++;
	return MOTE_OK;
}

/* Writes all of buf at off, retrying short writes. -1 with errno on failure. */
static int write_all(struct journal *j, const uint8_t *buf, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = j->io.pwrite(j->io.ctx, j->fd, buf, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

enum mote_err journal_seg_create(struct journal *j, uint32_t segno, uint64_t base_lsn)
{
	enum mote_err err = MOTE_EIO;
	char name[JOURNAL_SEG_NAME_LEN];
	uint8_t hdr[JOURNAL_SEG_HDR];
	int fd, old_fd = j->fd;

	journal_seg_name(name, segno);
	fd = openat(j->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		j->err_no = errno;
		return MOTE_EIO;
	}
	journal_seg_hdr_encode(hdr, &(struct journal_seg_hdr){ segno, base_lsn });
	/* write_all() and the sync go through the fault-injection table. */
	j->fd = fd;
	if (write_all(j, hdr, sizeof hdr, 0) != 0 ||
	    (j->sync != JOURNAL_SYNC_NONE &&
	     (j->io.fdatasync(j->io.ctx, fd) != 0 || fsync(j->dirfd) != 0))) {
		j->err_no = errno;
		goto out;
	}
	err = journal_segs_push(j, segno, base_lsn);
out:
	if (err) {
		j->fd = old_fd;
		close(fd);
		unlinkat(j->dirfd, name, 0);
		return err;
	}
	if (old_fd >= 0)
		close(old_fd);
	j->seg_off = JOURNAL_SEG_HDR;
	return MOTE_OK;
}

static uint64_t now_ms(const struct journal *j)
{
	return j->now_ms(j->clock_ctx);
}

/* Cuts the file back to `off` after a failed write or sync; best effort. */
static void cut_back(struct journal *j, uint64_t off)
{
	if (ftruncate(j->fd, (off_t)off) != 0)
		MOTE_WARN("journal", "event=truncate_failed dir=%s errno=%d", j->dir, errno);
}

/* Makes the written records durable; see the top comment on failure. */
static enum mote_err do_sync(struct journal *j)
{
	if (j->sync == JOURNAL_SYNC_NONE || j->written_lsn == j->durable_lsn)
		return MOTE_OK;
	if (j->io.fdatasync(j->io.ctx, j->fd) != 0) {
		j->err_no = errno;
		MOTE_WARN("journal", "event=sync_failed dir=%s errno=%d", j->dir, j->err_no);
		cut_back(j, j->seg_off);
		j->buf_written = 0;
		j->written_lsn = j->durable_lsn;
		return MOTE_EIO;
	}
	j->durable_lsn = j->written_lsn;
	memmove(j->buf, j->buf + j->buf_written, j->buf_len - j->buf_written);
	j->buf_len -= j->buf_written;
	j->seg_off += j->buf_written;
	j->buf_written = 0;
	j->last_sync_ms = now_ms(j);
	return MOTE_OK;
}

/* Writes the unwritten part of the buffer after the written part. */
static enum mote_err do_write(struct journal *j)
{
	if (j->buf_len == j->buf_written)
		return MOTE_OK;
	uint64_t off = j->seg_off + j->buf_written;
	if (write_all(j, j->buf + j->buf_written, j->buf_len - j->buf_written, off) != 0) {
		j->err_no = errno;
		MOTE_WARN("journal", "event=write_failed dir=%s errno=%d", j->dir, j->err_no);
		cut_back(j, off);
		return MOTE_EIO;
	}
	j->written_lsn = j->last_lsn;
	if (j->sync == JOURNAL_SYNC_NONE) {
		j->seg_off += j->buf_len;
		j->buf_len = 0;
	} else {
		j->buf_written = j->buf_len;
	}
	return MOTE_OK;
}

/* Starts a new segment if the current one is full and there is more to write. */
static enum mote_err maybe_roll(struct journal *j)
{
	enum mote_err err;
	if (j->buf_len == j->buf_written || j->seg_off + j->buf_written < j->seg_limit)
		return MOTE_OK;
	err = do_sync(j);
	if (err)
		return err;
	const struct journal_seg *cur = &j->segs[j->nsegs - 1];
	return journal_seg_create(j, cur->segno + 1, j->written_lsn + 1);
}

/* Makes room for `need` more buffered bytes (see journal_append's errors). */
static enum mote_err buf_room(struct journal *j, size_t need)
{
	/* An empty buffer takes anything, or a big record could never go in. */
	if (j->buf_len > 0 && j->buf_len + need > j->max_buffer)
		return MOTE_EFULL;
	if (j->buf_len + need > j->buf_cap) {
		size_t cap = j->buf_cap ? j->buf_cap : 4096;
		while (cap < j->buf_len + need)
			cap *= 2;
		uint8_t *b = realloc(j->buf, cap);
		if (!b)
			return MOTE_ENOMEM;
		j->buf = b;
		j->buf_cap = cap;
	}
	return MOTE_OK;
}

enum mote_err journal_append_encoded(struct journal *j, const void *recs, size_t len,
				     uint32_t nrec, uint64_t *first)
{
	if (nrec == 0 || !recs || len < (size_t)nrec * JOURNAL_REC_HDR)
		return MOTE_EINVAL;
	enum mote_err err = buf_room(j, len);
	if (err)
		return err;
	memcpy(j->buf + j->buf_len, recs, len);
	j->buf_len += len;
	*first = j->last_lsn + 1;
	j->last_lsn += nrec;
	return MOTE_OK;
}

enum mote_err journal_append(struct journal *j, uint8_t type, const void *payload, size_t len,
			     uint64_t *lsn)
{
	if (type == 0 || (len && !payload))
		return MOTE_EINVAL;
	if (len > JOURNAL_MAX_PAYLOAD)
		return MOTE_ETOOBIG;
	size_t need = JOURNAL_REC_HDR + len;
	enum mote_err err = buf_room(j, need);
	if (err)
		return err;
	uint8_t *p = j->buf + j->buf_len;
	journal_rec_hdr_encode(p, type, payload, (uint32_t)len);
	if (len)
		memcpy(p + JOURNAL_REC_HDR, payload, len);
	j->buf_len += need;
	*lsn = ++j->last_lsn;
	return MOTE_OK;
}

enum mote_err journal_commit(struct journal *j)
{
	enum mote_err err = maybe_roll(j);
	if (!err)
		err = do_write(j);
	if (err)
		return err;
	if (j->sync == JOURNAL_SYNC_ALWAYS)
		return do_sync(j);
	if (j->sync == JOURNAL_SYNC_BATCH && journal_sync_due_ms(j) == 0)
		return do_sync(j);
	return MOTE_OK;
}

enum mote_err journal_tick(struct journal *j)
{
	if (j->sync != JOURNAL_SYNC_BATCH || journal_sync_due_ms(j) != 0)
		return MOTE_OK;
	return do_sync(j);
}

uint64_t journal_sync_due_ms(const struct journal *j)
{
	if (j->sync != JOURNAL_SYNC_BATCH || j->written_lsn == j->durable_lsn)
		return UINT64_MAX;
	uint64_t now = now_ms(j), due = j->last_sync_ms + j->batch_ms;
	return now >= due ? 0 : due - now;
}

uint64_t journal_last_lsn(const struct journal *j)
{
	return j->last_lsn;
}

uint64_t journal_written_lsn(const struct journal *j)
{
	return j->written_lsn;
}

uint64_t journal_durable_lsn(const struct journal *j)
{
	return j->durable_lsn;
}

int journal_last_errno(const struct journal *j)
{
	return j->err_no;
}

uint32_t journal_segment_count(const struct journal *j)
{
	return j->nsegs;
}

enum mote_err journal_release(struct journal *j, uint64_t lsn, uint32_t *deleted)
{
	enum mote_err err = MOTE_OK;
	uint32_t n = 0;
	char name[JOURNAL_SEG_NAME_LEN];

	/* Segment i holds LSNs [base_i, base_{i+1}); the last one is never deleted. */
	while (n + 1 < j->nsegs && j->segs[n + 1].base_lsn - 1 <= lsn) {
		journal_seg_name(name, j->segs[n].segno);
		if (unlinkat(j->dirfd, name, 0) != 0 && errno != ENOENT) {
			j->err_no = errno;
			err = MOTE_EIO;
			break;
		}
		n++;
	}
	if (n) {
		memmove(j->segs, j->segs + n, (j->nsegs - n) * sizeof *j->segs);
		j->nsegs -= n;
		/* Not needed for safety (callers tolerate replay of obsolete records)
		 * but keeps deleted segments from coming back after a crash. */
		if (j->sync != JOURNAL_SYNC_NONE)
			fsync(j->dirfd);
	}
	if (deleted)
		*deleted = n;
	return err;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	free(j->segs);
	free(j->buf);
	free(j->dir);
	free(j);
}
