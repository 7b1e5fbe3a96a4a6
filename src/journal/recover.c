/*
 * recover.c - journal_open(): find the segments, replay every intact
 * record in LSN order, repair the tail, and set up the writer.
 *
 * Policy on damage (never refuse to start because of log contents):
 * - last segment: the first torn or corrupt record and everything after it
 *   is cut off (ftruncate + fdatasync) and appends continue there; a bad
 *   header makes the segment be rewritten empty.
 * - older segment: replay stops at the bad record and goes on with the next
 *   segment (whose header carries its own base LSN, so LSNs stay right); a
 *   bad header skips the whole file.
 * Every drop is logged with MOTE_WARN (file, offset, bytes) and counted.
 * LSNs only grow: a segment whose header claims a base LSN below what was
 * already replayed is treated as damaged.
 */
#include "journal/journal_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "journal/format.h"

#define DEFAULT_SEGMENT_BYTES (64ull * 1024 * 1024)
#define DEFAULT_MAX_BUFFER ((size_t)64 * 1024 * 1024)

static uint64_t default_clock(void *ctx)
{
	(void)ctx;
	return mote_mono_ms();
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* "NNNNNNNN.log" with eight digits -> segno; anything else is not ours. */
static int parse_seg_name(const char *s, uint32_t *segno)
{
	uint32_t v = 0;
	for (int i = 0; i < 8; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (strcmp(s + 8, ".log") != 0)
		return 0;
	*segno = v;
	return 1;
}

/* Lists segment numbers in ascending order into *out (caller frees). */
static enum mote_err list_segments(struct journal *j, uint32_t **out, uint32_t *n)
{
	enum mote_err err = MOTE_OK;
	uint32_t *v = NULL, cnt = 0, cap = 0;
	int fd = dup(j->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		j->err_no = errno;
		return MOTE_EIO;
	}
	rewinddir(d);
	while ((e = readdir(d)) != NULL) {
		uint32_t segno;
		if (!parse_seg_name(e->d_name, &segno))
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			uint32_t *nv = realloc(v, cap * sizeof *nv);
			if (!nv) {
				err = MOTE_ENOMEM;
				goto out;
			}
			v = nv;
		}
		v[cnt++] = segno;
	}
	if (cnt)
		qsort(v, cnt, sizeof *v, cmp_u32);
out:
	closedir(d);
	if (err) {
		free(v);
		return err;
	}
	*out = v;
	*n = cnt;
	return MOTE_OK;
}

/* Reads a whole file into *buf (caller frees), its size in *len. */
static enum mote_err read_file(struct journal *j, const char *name, uint8_t **buf, size_t *len)
{
	enum mote_err err = MOTE_EIO;
	uint8_t *b = NULL;
	struct stat st;
	size_t got = 0;
	int fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0)
		goto out;
	b = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (!b) {
		err = MOTE_ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* shrank under us: scan what we have */
		got += (size_t)r;
	}
	err = MOTE_OK;
out:
	if (err) {
		j->err_no = errno;
		free(b);
	} else {
		*buf = b;
		*len = got;
	}
	if (fd >= 0)
		close(fd);
	return err;
}

struct replay_ctx {
	journal_replay_fn fn;
	void *arg;
};

static enum mote_err replay_one(void *arg, uint64_t lsn, uint8_t type, const uint8_t *payload,
				size_t len)
{
	struct replay_ctx *c = arg;
	return c->fn ? c->fn(c->arg, lsn, type, payload, len) : MOTE_OK;
}

/* Opens the last segment for appending, cut to `size` bytes and synced. */
static enum mote_err open_tail(struct journal *j, const char *name, uint64_t size, int cut)
{
	j->fd = openat(j->dirfd, name, O_RDWR | O_CLOEXEC);
	if (j->fd < 0 || (cut && ftruncate(j->fd, (off_t)size) != 0) ||
	    (j->sync != JOURNAL_SYNC_NONE && j->io.fdatasync(j->io.ctx, j->fd) != 0)) {
		j->err_no = errno;
		return MOTE_EIO;
	}
	j->seg_off = size;
	return MOTE_OK;
}

/*
 * Replays segment segs[i] of n. *next is the LSN after the last one
 * replayed so far (in and out).
 */
static enum mote_err recover_segment(struct journal *j, uint32_t segno, int last,
				     struct replay_ctx *rc, uint64_t *next,
				     struct journal_recovery *rec)
{
	enum mote_err err;
	char name[JOURNAL_SEG_NAME_LEN];
	uint8_t *buf = NULL;
	size_t len = 0;
	struct journal_seg_hdr h;
	struct journal_scan scan;

	journal_seg_name(name, segno);
	err = read_file(j, name, &buf, &len);
	if (err) {
		MOTE_ERROR("journal", "event=read_failed dir=%s file=%s errno=%d", j->dir, name,
			   j->err_no);
		goto out;
	}
	rec->segments++;
	if (journal_seg_hdr_decode(buf, len, &h) != MOTE_OK || h.segno != segno ||
	    h.base_lsn < *next) {
		MOTE_WARN("journal", "event=bad_segment_header dir=%s file=%s bytes=%zu action=%s",
			  j->dir, name, len, last ? "rewrite" : "skip");
		rec->dropped_bytes += len;
		rec->damaged_segments++;
		/* Keep it listed (at the next LSN) so release can delete it later. */
		if (last)
			err = journal_seg_create(j, segno, *next);
		else
			err = journal_segs_push(j, segno, *next);
		goto out;
	}
	err = journal_scan_records(buf + JOURNAL_SEG_HDR, len - JOURNAL_SEG_HDR, h.base_lsn,
				   replay_one, rc, &scan);
	if (err)
		goto out;
	rec->records += scan.records;
	*next = h.base_lsn + scan.records;
	size_t good = JOURNAL_SEG_HDR + scan.good_bytes;
	if (scan.end != JOURNAL_SCAN_CLEAN) {
		MOTE_WARN("journal",
			  "event=dropped dir=%s file=%s offset=%zu bytes=%zu reason=%s "
			  "records_kept=%llu action=%s",
			  j->dir, name, good, len - good,
			  scan.end == JOURNAL_SCAN_TORN ? "torn" : "corrupt",
			  (unsigned long long)scan.records, last ? "truncate" : "skip_rest");
		rec->dropped_bytes += len - good;
		rec->damaged_segments++;
	}
	err = journal_segs_push(j, segno, h.base_lsn);
	if (!err && last)
		err = open_tail(j, name, good, scan.end != JOURNAL_SCAN_CLEAN);
	if (err == MOTE_EIO)
		MOTE_ERROR("journal", "event=open_tail_failed dir=%s file=%s errno=%d", j->dir,
			   name, j->err_no);
out:
	free(buf);
	return err;
}

static enum mote_err init(struct journal *j, const struct journal_opts *o)
{
	j->fd = -1;
	j->dirfd = -1;
	j->sync = o->sync;
	j->batch_ms = o->batch_ms;
	j->seg_limit = o->segment_bytes ? o->segment_bytes : DEFAULT_SEGMENT_BYTES;
	j->max_buffer = o->max_buffer ? o->max_buffer : DEFAULT_MAX_BUFFER;
	j->io = o->io ? *o->io : journal_posix_io;
	j->now_ms = o->now_ms ? o->now_ms : default_clock;
	j->clock_ctx = o->clock_ctx;
	j->dir = strdup(o->dir);
	if (!j->dir)
		return MOTE_ENOMEM;
	if (mkdir(o->dir, 0755) != 0 && errno != EEXIST) {
		j->err_no = errno;
		MOTE_ERROR("journal", "event=mkdir_failed dir=%s errno=%d error=%s", o->dir, errno,
			   strerror(errno));
		return MOTE_EIO;
	}
	j->dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dirfd < 0) {
		j->err_no = errno;
		MOTE_ERROR("journal", "event=open_dir_failed dir=%s errno=%d error=%s", o->dir,
			   errno, strerror(errno));
		return MOTE_EIO;
	}
	return MOTE_OK;
}

enum mote_err journal_open(const struct journal_opts *opts, journal_replay_fn replay, void *arg,
			   struct journal **out, struct journal_recovery *rec)
{
	enum mote_err err;
	struct journal *j = NULL;
	struct journal_recovery local = { 0 };
	struct replay_ctx rc = { replay, arg };
	uint32_t *segnos = NULL, n = 0;
	uint64_t next = 1;

	if (!opts || !opts->dir || !out || opts->sync > JOURNAL_SYNC_NONE ||
	    (opts->io && (!opts->io->pwrite || !opts->io->fdatasync)))
		return MOTE_EINVAL;
	j = calloc(1, sizeof *j);
	if (!j)
		return MOTE_ENOMEM;
	err = init(j, opts);
	if (err)
		goto out;
	err = list_segments(j, &segnos, &n);
	if (err)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		err = recover_segment(j, segnos[i], i + 1 == n, &rc, &next, &local);
		if (err)
			goto out;
	}
	if (n == 0) {
		err = journal_seg_create(j, 1, 1);
		if (err) {
			MOTE_ERROR("journal", "event=create_failed dir=%s errno=%d error=%s",
				   j->dir, j->err_no, strerror(j->err_no));
			goto out;
		}
	}
	j->last_lsn = j->written_lsn = next - 1;
	j->durable_lsn = j->sync == JOURNAL_SYNC_NONE ? 0 : j->last_lsn;
	j->last_sync_ms = j->now_ms(j->clock_ctx);
	local.last_lsn = j->last_lsn;
	if (local.damaged_segments)
		MOTE_WARN("journal",
			  "event=recovered dir=%s segments=%u records=%llu damaged_segments=%u "
			  "dropped_bytes=%llu",
			  j->dir, local.segments, (unsigned long long)local.records,
			  local.damaged_segments, (unsigned long long)local.dropped_bytes);
out:
	free(segnos);
	if (rec)
		*rec = local;
	if (err) {
		journal_close(j);
		return err;
	}
	*out = j;
	return MOTE_OK;
}
