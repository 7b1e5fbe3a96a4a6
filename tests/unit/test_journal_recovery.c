/*
 * test_journal_recovery.c - damaged logs at start-up. The last record of
 * the last segment is cut at every byte offset and has every byte flipped:
 * open recovers all earlier records, truncates the file at that record,
 * and new appends after reopen are read back. A corrupt record or header in
 * a middle segment drops the rest of that segment only, is reported (log
 * line with file and offset, counters), and later segments keep their
 * LSNs. A last segment with a torn header is rewritten. Foreign files in
 * the directory are ignored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/log.h"
#include "test_journal_util.h"

#define SEED 0xabcdu
#define N 120
#define SEG_BYTES 4096u

struct fixture {
	char *root, *dir;
	uint32_t segs;
};

static struct journal *open_j(const char *dir, struct tj_seen *seen, struct journal_recovery *rec)
{
	struct journal_opts o = { .dir = dir, .sync = JOURNAL_SYNC_ALWAYS, .segment_bytes = SEG_BYTES };
	struct journal *j = NULL;
	assert_int_equal(journal_open(&o, seen ? tj_replay : NULL, seen, &j, rec), MOTE_OK);
	return j;
}

/* N small records (0..299 bytes) over four or more 4 KiB segments. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	f->root = tj_mkdtemp();
	f->dir = tj_subdir(f->root);
	struct journal *j = open_j(f->dir, NULL, NULL);
	for (int i = 0; i < N; i++) {
		uint64_t lsn;
		assert_int_equal(tj_append(j, SEED, 0, &lsn), MOTE_OK);
		assert_int_equal(journal_commit(j), MOTE_OK);
	}
	f->segs = journal_segment_count(j);
	assert_true(f->segs >= 4);
	journal_close(j);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tj_rmrf(f->root);
	free(f->dir);
	free(f->root);
	free(f);
	return 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	*len = (size_t)ftell(fp);
	rewind(fp);
	uint8_t *b = malloc(*len ? *len : 1);
	assert_int_equal(fread(b, 1, *len, fp), *len);
	fclose(fp);
	return b;
}

static void spit(const char *path, const uint8_t *b, size_t len)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(b, 1, len, fp), len);
	fclose(fp);
}

static uint64_t base_lsn(const uint8_t *seg)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | seg[16 + i];
	return v;
}

/* Offset of record `lsn` inside a segment image whose base LSN is in its header. */
static size_t rec_offset(const uint8_t *seg, uint64_t lsn)
{
	size_t off = 32;
	for (uint64_t l = base_lsn(seg); l < lsn; l++)
		off += 9 + tj_size(SEED, l, 0);
	return off;
}

/* Opens the damaged journal, expects N-1 records, appends LSN N, reopens, expects N. */
static void expect_tail_recovered(struct fixture *f, const char *last, size_t cut_at)
{
	struct tj_seen seen;
	struct journal_recovery rec;
	tj_seen_init(&seen, SEED, 0);
	struct journal *j = open_j(f->dir, &seen, &rec);
	assert_int_equal(seen.count, N - 1);
	assert_int_equal(seen.last, N - 1);
	assert_int_equal(seen.gaps + seen.bad, 0);
	assert_int_equal(rec.damaged_segments, 1);
	assert_int_equal(tj_file_size(last), (off_t)cut_at);
	uint64_t lsn;
	assert_int_equal(tj_append(j, SEED, 0, &lsn), MOTE_OK);
	assert_int_equal(lsn, N);
	assert_int_equal(journal_commit(j), MOTE_OK);
	journal_close(j);
	tj_seen_free(&seen);

	tj_seen_init(&seen, SEED, 0);
	j = open_j(f->dir, &seen, &rec);
	assert_int_equal(seen.count, N);
	assert_int_equal(seen.last, N);
	assert_int_equal(seen.gaps + seen.bad, 0);
	assert_int_equal(rec.damaged_segments, 0);
	journal_close(j);
	tj_seen_free(&seen);
}

static void torn_tail_every_offset(void **state)
{
	struct fixture *f = *state;
	char last[600];
	size_t len;
	tj_seg_path(last, sizeof last, f->dir, f->segs);
	uint8_t *orig = slurp(last, &len);
	size_t off = rec_offset(orig, N);
	assert_int_equal(off + 9 + tj_size(SEED, N, 0), len);
	assert_true(tj_size(SEED, N, 0) >= 50); /* enough offsets to be worth it */
	mote_log_setup(MOTE_LOG_ERROR, NULL); /* hundreds of expected warnings */
	for (size_t cut = off + 1; cut < len; cut++) {
		spit(last, orig, cut);
		expect_tail_recovered(f, last, off);
	}
	mote_log_setup(MOTE_LOG_INFO, NULL);
	free(orig);
}

static void flipped_bit_in_last_record(void **state)
{
	struct fixture *f = *state;
	char last[600];
	size_t len;
	tj_seg_path(last, sizeof last, f->dir, f->segs);
	uint8_t *orig = slurp(last, &len);
	size_t off = rec_offset(orig, N);
	mote_log_setup(MOTE_LOG_ERROR, NULL);
	for (size_t i = off; i < len; i++) {
		orig[i] ^= (uint8_t)(1u << (i % 8));
		spit(last, orig, len);
		orig[i] ^= (uint8_t)(1u << (i % 8));
		expect_tail_recovered(f, last, off);
	}
	mote_log_setup(MOTE_LOG_INFO, NULL);
	free(orig);
}

static void zero_filled_tail(void **state)
{
	struct fixture *f = *state;
	char last[600];
	size_t len;
	tj_seg_path(last, sizeof last, f->dir, f->segs);
	uint8_t *orig = slurp(last, &len);
	size_t off = rec_offset(orig, N);
	/* What some file systems leave after a crash: the size grew, the data did not. */
	orig = realloc(orig, len + 4096);
	memset(orig + off, 0, len + 4096 - off);
	spit(last, orig, len + 4096);
	expect_tail_recovered(f, last, off);
	free(orig);
}

/* Reads the whole log output written since `from`. */
static char *read_log(FILE *fp)
{
	fflush(fp);
	long n = ftell(fp);
	char *s = calloc(1, (size_t)n + 1);
	rewind(fp);
	assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
	return s;
}

static void corrupt_middle_segment(void **state)
{
	struct fixture *f = *state;
	char mid[600], expect[200];
	size_t len;
	tj_seg_path(mid, sizeof mid, f->dir, 2);
	uint8_t *img = slurp(mid, &len);
	uint64_t base = base_lsn(img), next_base;
	size_t recs = 0;
	for (size_t off = 32; off < len; recs++)
		off += 9 + tj_size(SEED, base + recs, 0);
	next_base = base + recs;
	assert_true(recs >= 3);
	uint64_t bad = base + recs / 2;
	size_t off = rec_offset(img, bad);
	img[off + 9 + tj_size(SEED, bad, 0) - 1] ^= 0x40; /* last payload byte, or CRC */
	spit(mid, img, len);

	FILE *logf = tmpfile();
	mote_log_setup(MOTE_LOG_WARN, logf);
	struct tj_seen seen;
	struct journal_recovery rec;
	tj_seen_init(&seen, SEED, 0);
	struct journal *j = open_j(f->dir, &seen, &rec);
	mote_log_setup(MOTE_LOG_INFO, NULL);
	assert_int_equal(seen.last, N);
	assert_int_equal(seen.count, N - (next_base - bad));
	assert_int_equal(seen.gaps, 1);
	assert_int_equal(seen.bad, 0);
	assert_int_equal(rec.damaged_segments, 1);
	assert_int_equal(rec.dropped_bytes, len - off);
	assert_int_equal(rec.segments, f->segs);
	/* The middle file is left alone: only the last one is ever cut. */
	assert_int_equal(tj_file_size(mid), (off_t)len);
	char *log = read_log(logf);
	snprintf(expect, sizeof expect, "file=00000002.log offset=%zu bytes=%zu reason=corrupt",
		 off, len - off);
	if (!strstr(log, expect))
		fail_msg("log lacks \"%s\":\n%s", expect, log);
	assert_non_null(strstr(log, "level=warn"));
	free(log);
	fclose(logf);

	uint64_t lsn;
	assert_int_equal(tj_append(j, SEED, 0, &lsn), MOTE_OK);
	assert_int_equal(lsn, N + 1);
	assert_int_equal(journal_commit(j), MOTE_OK);
	journal_close(j);
	tj_seen_free(&seen);
	free(img);
}

static void bad_headers(void **state)
{
	struct fixture *f = *state;
	char mid[600], last[600], third[600], junk[600];
	size_t len;
	tj_seg_path(mid, sizeof mid, f->dir, 2);
	tj_seg_path(third, sizeof third, f->dir, 3);
	tj_seg_path(last, sizeof last, f->dir, f->segs);
	uint8_t *img = slurp(third, &len);
	uint64_t base3 = base_lsn(img);
	free(img);
	img = slurp(mid, &len);
	uint64_t mid_base = base_lsn(img);
	img[3] ^= 1; /* magic */
	spit(mid, img, len);
	free(img);
	img = slurp(last, &len);
	uint64_t last_base = base_lsn(img);
	spit(last, img, 20); /* torn header */
	free(img);
	/* Not segments: ignored, not touched. */
	snprintf(junk, sizeof junk, "%s/1.log", f->dir);
	spit(junk, (const uint8_t *)"x", 1);
	snprintf(junk, sizeof junk, "%s/00000009.log.bak", f->dir);
	spit(junk, (const uint8_t *)"x", 1);

	struct tj_seen seen;
	struct journal_recovery rec;
	tj_seen_init(&seen, SEED, 0);
	mote_log_setup(MOTE_LOG_ERROR, NULL);
	struct journal *j = open_j(f->dir, &seen, &rec);
	mote_log_setup(MOTE_LOG_INFO, NULL);
	assert_int_equal(rec.damaged_segments, 2);
	assert_int_equal(seen.bad, 0);
	/* Segment 2 skipped whole; the last one's records go with its header. */
	assert_int_equal(seen.first, 1);
	assert_int_equal(seen.last, last_base - 1);
	assert_int_equal(seen.count, (mid_base - 1) + (last_base - base3));
	assert_int_equal(seen.gaps, base3 < last_base ? 1 : 0);
	assert_int_equal(tj_file_size(last), 32);
	uint64_t lsn;
	assert_int_equal(tj_append(j, SEED, 0, &lsn), MOTE_OK);
	assert_int_equal(lsn, last_base);
	assert_int_equal(journal_commit(j), MOTE_OK);
	journal_close(j);
	tj_seen_free(&seen);
	assert_int_equal(tj_file_size(junk), 1);

	/* The rewritten header holds: reopen replays the new record too. */
	tj_seen_init(&seen, SEED, 0);
	j = open_j(f->dir, &seen, &rec);
	assert_int_equal(seen.last, last_base);
	assert_int_equal(rec.damaged_segments, 1); /* segment 2 is still bad */
	journal_close(j);
	tj_seen_free(&seen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(torn_tail_every_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(flipped_bit_in_last_record, setup, teardown),
		cmocka_unit_test_setup_teardown(zero_filled_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_middle_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_headers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
