/*
 * test_journal_sync.c - durable-LSN semantics per policy, group commit
 * (one write and one fdatasync per commit however many records), and I/O
 * faults injected through struct journal_io: a disk that runs out of space
 * part-way through a write, EIO from fdatasync, failures while rolling to a
 * new segment, and buffer back-pressure. After every fault nothing is
 * claimed durable that is not, and the journal works again once the fault
 * goes away. Time for BATCH comes from a fake clock, so nothing here
 * depends on the machine's speed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "base/log.h"
#include "test_journal_util.h"

#define SEED 0x51u

struct fault {
	int64_t space;    /* bytes writes may still add; < 0: unlimited */
	int sync_errno;   /* non-zero: fdatasync fails with it */
	unsigned writes, syncs;
	uint64_t now;
};

static ssize_t f_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
	struct fault *f = ctx;
	f->writes++;
	if (f->space >= 0 && (int64_t)len > f->space) {
		if (f->space == 0) {
			errno = ENOSPC;
			return -1;
		}
		len = (size_t)f->space; /* a short write, like a filling disk */
	}
	ssize_t n = pwrite(fd, buf, len, off);
	if (n > 0 && f->space >= 0)
		f->space -= n;
	return n;
}

static int f_fdatasync(void *ctx, int fd)
{
	struct fault *f = ctx;
	f->syncs++;
	if (f->sync_errno) {
		errno = f->sync_errno;
		return -1;
	}
	return fdatasync(fd);
}

static uint64_t f_now(void *ctx)
{
	return ((struct fault *)ctx)->now;
}

struct fixture {
	char *root, *dir;
	struct fault fault;
	struct journal_io io;
	struct journal_opts opts;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	f->root = tj_mkdtemp();
	f->dir = tj_subdir(f->root);
	f->fault.space = -1;
	f->fault.now = 1000;
	f->io = (struct journal_io){ f_pwrite, f_fdatasync, &f->fault };
	f->opts = (struct journal_opts){ .dir = f->dir, .io = &f->io, .now_ms = f_now,
					 .clock_ctx = &f->fault, .batch_ms = 10 };
	*state = f;
	mote_log_setup(MOTE_LOG_ERROR, NULL); /* the faults log warnings by design */
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

static struct journal *open_j(struct fixture *f, enum journal_sync sync)
{
	struct journal *j = NULL;
	f->opts.sync = sync;
	assert_int_equal(journal_open(&f->opts, NULL, NULL, &j, NULL), MOTE_OK);
	return j;
}

static void append_n(struct journal *j, int n)
{
	uint64_t lsn;
	for (int i = 0; i < n; i++)
		assert_int_equal(tj_append(j, SEED, 0, &lsn), MOTE_OK);
}

/* Reopens the directory (real I/O) and checks records 1..last are all there. */
static void expect_on_disk(struct fixture *f, uint64_t last)
{
	struct journal_opts o = { .dir = f->dir, .sync = JOURNAL_SYNC_NONE };
	struct journal *j = NULL;
	struct tj_seen seen;
	tj_seen_init(&seen, SEED, 0);
	assert_int_equal(journal_open(&o, tj_replay, &seen, &j, NULL), MOTE_OK);
	assert_int_equal(seen.last, last);
	assert_int_equal(seen.count, last);
	assert_int_equal(seen.gaps + seen.bad, 0);
	journal_close(j);
	tj_seen_free(&seen);
}

static void policy_always(void **state)
{
	struct fixture *f = *state;
	struct journal *j = open_j(f, JOURNAL_SYNC_ALWAYS);
	unsigned w0 = f->fault.writes, s0 = f->fault.syncs;
	append_n(j, 100);
	assert_int_equal(journal_durable_lsn(j), 0);
	assert_int_equal(journal_commit(j), MOTE_OK);
	/* Group commit: 100 records, one write, one sync. */
	assert_int_equal(f->fault.writes - w0, 1);
	assert_int_equal(f->fault.syncs - s0, 1);
	assert_int_equal(journal_durable_lsn(j), 100);
	assert_int_equal(journal_written_lsn(j), 100);
	assert_int_equal(journal_sync_due_ms(j), UINT64_MAX);
	append_n(j, 1);
	assert_int_equal(journal_commit(j), MOTE_OK);
	assert_int_equal(journal_durable_lsn(j), 101);
	/* An empty commit costs nothing. */
	assert_int_equal(journal_commit(j), MOTE_OK);
	assert_int_equal(f->fault.writes - w0, 2);
	assert_int_equal(f->fault.syncs - s0, 2);
	journal_close(j);
	expect_on_disk(f, 101);
}

static void policy_batch(void **state)
{
	struct fixture *f = *state;
	struct journal *j = open_j(f, JOURNAL_SYNC_BATCH); /* last sync at t=1000 */
	unsigned s0 = f->fault.syncs;
	assert_int_equal(journal_sync_due_ms(j), UINT64_MAX);
	append_n(j, 5);
	assert_int_equal(journal_commit(j), MOTE_OK);
	assert_int_equal(journal_written_lsn(j), 5);
	assert_int_equal(journal_durable_lsn(j), 0);
	assert_int_equal(journal_sync_due_ms(j), 10);
	f->fault.now = 1009;
	assert_int_equal(journal_sync_due_ms(j), 1);
	assert_int_equal(journal_tick(j), MOTE_OK);
	assert_int_equal(journal_durable_lsn(j), 0);
	assert_int_equal(f->fault.syncs, s0);
	/* More commits inside the interval: still no sync. */
	append_n(j, 3);
	assert_int_equal(journal_commit(j), MOTE_OK);
	assert_int_equal(journal_durable_lsn(j), 0);
	f->fault.now = 1010;
	assert_int_equal(journal_sync_due_ms(j), 0);
	assert_int_equal(journal_tick(j), MOTE_OK);
	assert_int_equal(journal_durable_lsn(j), 8);
	assert_int_equal(f->fault.syncs, s0 + 1);
	assert_int_equal(journal_sync_due_ms(j), UINT64_MAX);
	/* Nothing written: tick does not sync. */
	f->fault.now = 2000;
	assert_int_equal(journal_tick(j), MOTE_OK);
	assert_int_equal(f->fault.syncs, s0 + 1);
	/* Interval long over: the commit itself syncs. */
	append_n(j, 2);
	assert_int_equal(journal_commit(j), MOTE_OK);
	assert_int_equal(journal_durable_lsn(j), 10);
	assert_int_equal(f->fault.syncs, s0 + 2);
	/* ...and the next one, 1 ms later, does not. */
	f->fault.now = 2001;
	append_n(j, 1);
	assert_int_equal(journal_commit(j), MOTE_OK);
	assert_int_equal(journal_durable_lsn(j), 10);
	assert_int_equal(journal_written_lsn(j), 11);
	assert_int_equal(journal_sync_due_ms(j), 9);
	journal_close(j);
	expect_on_disk(f, 11);
}

static void policy_none(void **state)
{
	struct fixture *f = *state;
	f->opts.segment_bytes = 1024; /* rolls must not sync either */
	struct journal *j = open_j(f, JOURNAL_SYNC_NONE);
	for (int i = 0; i < 50; i++) {
		append_n(j, 3);
		assert_int_equal(journal_commit(j), MOTE_OK);
		f->fault.now += 100;
		assert_int_equal(journal_tick(j), MOTE_OK);
	}
	assert_int_equal(journal_written_lsn(j), 150);
	assert_int_equal(journal_durable_lsn(j), 0);
	assert_int_equal(f->fault.syncs, 0);
	assert_true(journal_segment_count(j) > 3);
	assert_int_equal(journal_sync_due_ms(j), UINT64_MAX);
	journal_close(j);
	expect_on_disk(f, 150);
	j = open_j(f, JOURNAL_SYNC_NONE);
	assert_int_equal(journal_durable_lsn(j), 0);
	assert_int_equal(journal_last_lsn(j), 150);
	journal_close(j);
}

static off_t last_seg_size(struct fixture *f, struct journal *j)
{
	char path[600];
	tj_seg_path(path, sizeof path, f->dir, journal_segment_count(j));
	return tj_file_size(path);
}

static void enospc_on_write(void **state)
{
	struct fixture *f = *state;
	struct journal *j = open_j(f, JOURNAL_SYNC_ALWAYS);
	append_n(j, 10);
	assert_int_equal(journal_commit(j), MOTE_OK);
	off_t size = last_seg_size(f, j);

	/* Disk full before the write. */
	f->fault.space = 0;
	append_n(j, 5);
	assert_int_equal(journal_commit(j), MOTE_EIO);
	assert_int_equal(journal_last_errno(j), ENOSPC);
	assert_int_equal(journal_durable_lsn(j), 10);
	assert_int_equal(journal_written_lsn(j), 10);
	assert_int_equal(last_seg_size(f, j), size);

	/* Disk fills part-way: a short write, then ENOSPC; the part is cut off. */
	f->fault.space = 37;
	assert_int_equal(journal_commit(j), MOTE_EIO);
	assert_int_equal(journal_last_errno(j), ENOSPC);
	assert_int_equal(journal_durable_lsn(j), 10);
	assert_int_equal(last_seg_size(f, j), size);

	/* Appends go on being buffered while the disk is full. */
	append_n(j, 2);
	f->fault.space = -1;
	assert_int_equal(journal_commit(j), MOTE_OK);
	assert_int_equal(journal_durable_lsn(j), 17);
	journal_close(j);
	expect_on_disk(f, 17);
}

static void eio_on_sync(void **state)
{
	struct fixture *f = *state;
	struct journal *j = open_j(f, JOURNAL_SYNC_ALWAYS);
	append_n(j, 10);
	assert_int_equal(journal_commit(j), MOTE_OK);
	off_t size = last_seg_size(f, j);

	f->fault.sync_errno = EIO;
	append_n(j, 4);
	assert_int_equal(journal_commit(j), MOTE_EIO);
	assert_int_equal(journal_last_errno(j), EIO);
	assert_int_equal(journal_durable_lsn(j), 10);
	/* Written-but-unsynced pages are not trusted: cut back, written again later. */
	assert_int_equal(journal_written_lsn(j), 10);
	assert_int_equal(last_seg_size(f, j), size);
	assert_int_equal(journal_commit(j), MOTE_EIO);
	assert_int_equal(journal_durable_lsn(j), 10);

	f->fault.sync_errno = 0;
	unsigned w0 = f->fault.writes;
	assert_int_equal(journal_commit(j), MOTE_OK);
	assert_int_equal(f->fault.writes - w0, 1);
	assert_int_equal(journal_durable_lsn(j), 14);
	journal_close(j);
	expect_on_disk(f, 14);
}

static void batch_sync_failure(void **state)
{
	struct fixture *f = *state;
	struct journal *j = open_j(f, JOURNAL_SYNC_BATCH);
	append_n(j, 3);
	assert_int_equal(journal_commit(j), MOTE_OK);
	assert_int_equal(journal_written_lsn(j), 3);
	f->fault.sync_errno = ENOSPC;
	f->fault.now += 10;
	assert_int_equal(journal_tick(j), MOTE_EIO);
	assert_int_equal(journal_durable_lsn(j), 0);
	assert_int_equal(journal_written_lsn(j), 0);
	/* Nothing written, so nothing for tick to do until the next commit. */
	assert_int_equal(journal_sync_due_ms(j), UINT64_MAX);
	f->fault.sync_errno = 0;
	append_n(j, 1);
	assert_int_equal(journal_commit(j), MOTE_OK); /* interval passed: syncs */
	assert_int_equal(journal_durable_lsn(j), 4);
	journal_close(j);
	expect_on_disk(f, 4);
}

static void roll_failure(void **state)
{
	struct fixture *f = *state;
	f->opts.segment_bytes = 200;
	struct journal *j = open_j(f, JOURNAL_SYNC_ALWAYS);
	append_n(j, 5);
	assert_int_equal(journal_commit(j), MOTE_OK); /* fills segment 1 */
	assert_int_equal(journal_segment_count(j), 1);

	/* The new segment's header cannot be written: no segment 2 is left behind. */
	f->fault.space = 0;
	append_n(j, 2);
	assert_int_equal(journal_commit(j), MOTE_EIO);
	assert_int_equal(journal_segment_count(j), 1);
	char path[600];
	tj_seg_path(path, sizeof path, f->dir, 2);
	assert_int_equal(tj_file_size(path), -1);
	/* Its header cannot be synced. */
	f->fault.space = -1;
	f->fault.sync_errno = EIO;
	assert_int_equal(journal_commit(j), MOTE_EIO);
	assert_int_equal(tj_file_size(path), -1);
	assert_int_equal(journal_durable_lsn(j), 5);

	f->fault.sync_errno = 0;
	assert_int_equal(journal_commit(j), MOTE_OK);
	assert_int_equal(journal_segment_count(j), 2);
	assert_int_equal(journal_durable_lsn(j), 7);
	journal_close(j);
	expect_on_disk(f, 7);
}

static void backpressure(void **state)
{
	struct fixture *f = *state;
	f->opts.max_buffer = 1000;
	struct journal *j = open_j(f, JOURNAL_SYNC_ALWAYS);
	uint8_t rec[100] = { 0 };
	uint64_t lsn = 0, got = 0;
	f->fault.space = 0;
	enum mote_err err;
	while ((err = journal_append(j, 1, rec, sizeof rec, &lsn)) == MOTE_OK)
		got = lsn;
	assert_int_equal(err, MOTE_EFULL);
	assert_int_equal(got, 1000 / (9 + sizeof rec));
	assert_int_equal(journal_commit(j), MOTE_EIO);
	assert_int_equal(journal_append(j, 1, rec, sizeof rec, &lsn), MOTE_EFULL);
	assert_int_equal(journal_last_lsn(j), got); /* refusals use no LSN */
	f->fault.space = -1;
	assert_int_equal(journal_commit(j), MOTE_OK);
	assert_int_equal(journal_durable_lsn(j), got);
	assert_int_equal(journal_append(j, 1, rec, sizeof rec, &lsn), MOTE_OK);
	assert_int_equal(lsn, got + 1);
	/* One record bigger than the whole buffer still goes in alone. */
	assert_int_equal(journal_commit(j), MOTE_OK);
	uint8_t *big = calloc(1, 5000);
	assert_int_equal(journal_append(j, 1, big, 5000, &lsn), MOTE_OK);
	assert_int_equal(journal_commit(j), MOTE_OK);
	assert_int_equal(journal_durable_lsn(j), got + 2);
	free(big);
	journal_close(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(policy_always, setup, teardown),
		cmocka_unit_test_setup_teardown(policy_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(policy_none, setup, teardown),
		cmocka_unit_test_setup_teardown(enospc_on_write, setup, teardown),
		cmocka_unit_test_setup_teardown(eio_on_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(batch_sync_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(roll_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(backpressure, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
