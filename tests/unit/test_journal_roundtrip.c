/*
 * test_journal_roundtrip.c - records of random sizes (0 .. 1 MiB) written
 * across many segment rolls come back after reopen in order, with the same
 * LSNs and bytes; appends continue after the last LSN; uncommitted appends
 * are dropped by close; release deletes whole obsolete segments and LSNs
 * survive it; a directory that cannot be created is an error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "test_journal_util.h"

#define SEED 0x5eedu
#define BIG (1024u * 1024u)

static struct journal *open_j(const char *dir, enum journal_sync sync, struct tj_seen *seen,
			      struct journal_recovery *rec)
{
	struct journal_opts o = { .dir = dir, .sync = sync, .segment_bytes = 2u * 1024 * 1024 };
	struct journal *j = NULL;
	assert_int_equal(journal_open(&o, seen ? tj_replay : NULL, seen, &j, rec), MOTE_OK);
	assert_non_null(j);
	return j;
}

/* Appends n records, committing after every 1..8 of them. */
static void write_n(struct journal *j, uint64_t n, uint32_t *rng)
{
	uint64_t lsn, before = journal_last_lsn(j);
	uint32_t group = 0;
	for (uint64_t i = 0; i < n; i++) {
		assert_int_equal(tj_append(j, SEED, BIG, &lsn), MOTE_OK);
		assert_int_equal(lsn, before + i + 1);
		if (group == 0) {
			*rng = *rng * 1103515245u + 12345u;
			group = 1 + (*rng >> 16) % 8;
		}
		if (--group == 0 || i + 1 == n)
			assert_int_equal(journal_commit(j), MOTE_OK);
	}
	assert_int_equal(journal_written_lsn(j), before + n);
}

static void roundtrip(void **state)
{
	(void)state;
	char *root = tj_mkdtemp(), *dir = tj_subdir(root);
	uint32_t rng = 7;
	struct tj_seen seen;
	struct journal_recovery rec;

	struct journal *j = open_j(dir, JOURNAL_SYNC_NONE, NULL, &rec);
	assert_int_equal(rec.records, 0);
	assert_int_equal(journal_last_lsn(j), 0);
	write_n(j, 240, &rng);
	uint32_t segs = journal_segment_count(j);
	assert_true(segs >= 5); /* about 30 MiB over 2 MiB segments */
	journal_close(j);

	tj_seen_init(&seen, SEED, BIG);
	j = open_j(dir, JOURNAL_SYNC_ALWAYS, &seen, &rec);
	assert_int_equal(seen.count, 240);
	assert_int_equal(seen.first, 1);
	assert_int_equal(seen.last, 240);
	assert_int_equal(seen.gaps, 0);
	assert_int_equal(seen.bad, 0);
	assert_int_equal(rec.records, 240);
	assert_int_equal(rec.segments, segs);
	assert_int_equal(rec.damaged_segments, 0);
	assert_int_equal(rec.dropped_bytes, 0);
	assert_int_equal(rec.last_lsn, 240);
	assert_int_equal(journal_durable_lsn(j), 240);
	write_n(j, 60, &rng);
	assert_int_equal(journal_durable_lsn(j), 300);
	/* Appended but never committed: gone after close, LSNs 301.. reused. */
	uint64_t lsn;
	assert_int_equal(tj_append(j, SEED, BIG, &lsn), MOTE_OK);
	assert_int_equal(lsn, 301);
	journal_close(j);
	tj_seen_free(&seen);

	tj_seen_init(&seen, SEED, BIG);
	j = open_j(dir, JOURNAL_SYNC_BATCH, &seen, &rec);
	assert_int_equal(seen.count, 300);
	assert_int_equal(seen.last, 300);
	assert_int_equal(seen.gaps + seen.bad, 0);
	assert_int_equal(journal_last_lsn(j), 300);
	journal_close(j);
	tj_seen_free(&seen);
	tj_rmrf(root);
	free(dir);
	free(root);
}

static void release_segments(void **state)
{
	(void)state;
	char *root = tj_mkdtemp(), *dir = tj_subdir(root);
	uint32_t rng = 99, deleted = 0;
	struct tj_seen seen;
	struct journal_recovery rec;

	struct journal *j = open_j(dir, JOURNAL_SYNC_NONE, NULL, NULL);
	write_n(j, 200, &rng);
	uint32_t segs = journal_segment_count(j);
	assert_true(segs >= 4);
	/* Nothing obsolete: nothing deleted. */
	assert_int_equal(journal_release(j, 0, &deleted), MOTE_OK);
	assert_int_equal(deleted, 0);
	/* Obsolete up to 1: segment 1 still holds live records. */
	assert_int_equal(journal_release(j, 1, &deleted), MOTE_OK);
	assert_int_equal(deleted, 0);
	char path[600];
	tj_seg_path(path, sizeof path, dir, 1);
	assert_true(tj_file_size(path) > 0);
	assert_int_equal(journal_release(j, 100, &deleted), MOTE_OK);
	assert_true(deleted >= 1);
	assert_int_equal(journal_segment_count(j), segs - deleted);
	assert_int_equal(tj_file_size(path), -1);
	journal_close(j);

	tj_seen_init(&seen, SEED, BIG);
	j = open_j(dir, JOURNAL_SYNC_NONE, &seen, &rec);
	/* What survives starts at or below 101 and keeps its LSNs. */
	assert_true(seen.first > 1 && seen.first <= 101);
	assert_int_equal(seen.last, 200);
	assert_int_equal(seen.count, 200 - seen.first + 1);
	assert_int_equal(seen.gaps + seen.bad, 0);
	/* Everything obsolete: only the current segment stays. */
	assert_int_equal(journal_release(j, 200, &deleted), MOTE_OK);
	assert_int_equal(journal_segment_count(j), 1);
	uint64_t lsn;
	assert_int_equal(tj_append(j, SEED, BIG, &lsn), MOTE_OK);
	assert_int_equal(lsn, 201);
	assert_int_equal(journal_commit(j), MOTE_OK);
	journal_close(j);
	tj_seen_free(&seen);

	tj_seen_init(&seen, SEED, BIG);
	j = open_j(dir, JOURNAL_SYNC_NONE, &seen, &rec);
	assert_int_equal(seen.last, 201);
	assert_int_equal(seen.gaps + seen.bad, 0);
	assert_int_equal(rec.segments, 1);
	journal_close(j);
	tj_seen_free(&seen);
	tj_rmrf(root);
	free(dir);
	free(root);
}

static void bad_arguments(void **state)
{
	(void)state;
	char *root = tj_mkdtemp(), *dir = tj_subdir(root);
	struct journal *j = open_j(dir, JOURNAL_SYNC_NONE, NULL, NULL);
	uint64_t lsn = 77;
	assert_int_equal(journal_append(j, 0, "x", 1, &lsn), MOTE_EINVAL);
	assert_int_equal(journal_append(j, 1, NULL, 1, &lsn), MOTE_EINVAL);
	assert_int_equal(journal_append(j, 1, "x", (size_t)64 * 1024 * 1024 + 1, &lsn),
			 MOTE_ETOOBIG);
	assert_int_equal(lsn, 77);
	assert_int_equal(journal_append(j, 1, NULL, 0, &lsn), MOTE_OK);
	assert_int_equal(lsn, 1);
	/* A commit with nothing buffered writes nothing and succeeds. */
	assert_int_equal(journal_commit(j), MOTE_OK);
	assert_int_equal(journal_commit(j), MOTE_OK);
	journal_close(j);
	journal_close(NULL);

	struct journal_opts o = { .dir = NULL };
	assert_int_equal(journal_open(&o, NULL, NULL, &j, NULL), MOTE_EINVAL);
	tj_rmrf(root);
	free(dir);
	free(root);
}

static void unusable_directory(void **state)
{
	(void)state;
	char *root = tj_mkdtemp();
	char path[600];
	struct journal *j = NULL;

	/* Parent missing: cannot be created. */
	snprintf(path, sizeof path, "%s/no/such/dir", root);
	struct journal_opts o = { .dir = path, .sync = JOURNAL_SYNC_ALWAYS };
	assert_int_equal(journal_open(&o, NULL, NULL, &j, NULL), MOTE_EIO);
	assert_null(j);
	/* A regular file where the directory should be. */
	snprintf(path, sizeof path, "%s/file", root);
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(journal_open(&o, NULL, NULL, &j, NULL), MOTE_EIO);
	assert_null(j);
	/* Read-only directory (root ignores modes, so only as a normal user). */
	if (geteuid() != 0) {
		snprintf(path, sizeof path, "%s/ro", root);
		assert_int_equal(mkdir(path, 0555), 0);
		assert_int_equal(journal_open(&o, NULL, NULL, &j, NULL), MOTE_EIO);
		assert_null(j);
		chmod(path, 0755);
	}
	tj_rmrf(root);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(roundtrip),
		cmocka_unit_test(release_segments),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(unusable_directory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
