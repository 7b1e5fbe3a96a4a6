/*
 * test_journal_format.c - CRC32C against published check values, and the
 * record scanner on hand-built buffers: clean end, torn record, corrupt
 * CRC, reserved type 0, oversized length, LSN numbering from the base.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "journal/crc32c.h"
#include "journal/format.h"

static void crc_vectors(void **state)
{
	(void)state;
	/* RFC 3720 B.4 and the common "check" value of CRC-32C. */
	assert_int_equal(crc32c_update(0, "123456789", 9), 0xe3069283u);
	uint8_t zeros[32] = { 0 }, ones[32], inc[32];
	memset(ones, 0xff, sizeof ones);
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	assert_int_equal(crc32c_update(0, zeros, 32), 0x8a9136aau);
	assert_int_equal(crc32c_update(0, ones, 32), 0x62a8ab43u);
	assert_int_equal(crc32c_update(0, inc, 32), 0x46dd794eu);
	assert_int_equal(crc32c_update(0, "", 0), 0u);
	/* Chaining over any split equals one pass (covers the 8-byte path). */
	for (size_t cut = 0; cut <= 32; cut++)
		assert_int_equal(crc32c_update(crc32c_update(0, inc, cut), inc + cut, 32 - cut),
				 0x46dd794eu);
}

/* The hardware path (when the CPU has one) and the table agree on every
 * length, offset and chained split. */
static void crc_hw_matches_table(void **state)
{
	(void)state;
	uint8_t buf[600];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof buf; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	for (size_t off = 0; off < 9; off++)
		for (size_t len = 0; len + off <= sizeof buf; len += 7) {
			uint32_t sw = crc32c_update_sw(0, buf + off, len);
			assert_int_equal(crc32c_update(0, buf + off, len), sw);
			size_t cut = len / 3;
			assert_int_equal(crc32c_update(crc32c_update(0, buf + off, cut),
						       buf + off + cut, len - cut),
					 sw);
		}
	assert_int_equal(crc32c_update_sw(0, "123456789", 9), 0xe3069283u);
}

struct got {
	uint64_t lsn[8];
	uint8_t type[8];
	size_t len[8];
	int n;
};

static enum mote_err collect(void *arg, uint64_t lsn, uint8_t type, const uint8_t *p, size_t len)
{
	struct got *g = arg;
	(void)p;
	if (g->n == 8)
		return MOTE_EFULL;
	g->lsn[g->n] = lsn;
	g->type[g->n] = type;
	g->len[g->n] = len;
	g->n++;
	return MOTE_OK;
}

/* Builds three records "a", "", "hello" of types 1, 2, 3. */
static size_t build(uint8_t *buf)
{
	const char *pay[3] = { "a", "", "hello" };
	size_t off = 0;
	for (int i = 0; i < 3; i++) {
		uint32_t len = (uint32_t)strlen(pay[i]);
		journal_rec_hdr_encode(buf + off, (uint8_t)(i + 1), pay[i], len);
		memcpy(buf + off + JOURNAL_REC_HDR, pay[i], len);
		off += JOURNAL_REC_HDR + len;
	}
	return off;
}

static void scan_clean(void **state)
{
	(void)state;
	uint8_t buf[64];
	size_t len = build(buf);
	struct got g = { 0 };
	struct journal_scan s;
	assert_int_equal(journal_scan_records(buf, len, 41, collect, &g, &s), MOTE_OK);
	assert_int_equal(s.end, JOURNAL_SCAN_CLEAN);
	assert_int_equal(s.records, 3);
	assert_int_equal(s.good_bytes, len);
	assert_int_equal(g.n, 3);
	assert_int_equal(g.lsn[0], 41);
	assert_int_equal(g.lsn[2], 43);
	assert_int_equal(g.type[2], 3);
	assert_int_equal(g.len[0], 1);
	assert_int_equal(g.len[1], 0);
	assert_int_equal(g.len[2], 5);
}

static void scan_torn_every_cut(void **state)
{
	(void)state;
	uint8_t buf[64];
	size_t len = build(buf);
	size_t third = len - (JOURNAL_REC_HDR + 5);
	for (size_t cut = third + 1; cut < len; cut++) {
		struct got g = { 0 };
		struct journal_scan s;
		assert_int_equal(journal_scan_records(buf, cut, 1, collect, &g, &s), MOTE_OK);
		assert_int_equal(s.end, JOURNAL_SCAN_TORN);
		assert_int_equal(s.records, 2);
		assert_int_equal(s.good_bytes, third);
	}
}

static void scan_corrupt(void **state)
{
	(void)state;
	uint8_t buf[64];
	size_t len = build(buf);
	size_t third = len - (JOURNAL_REC_HDR + 5);
	/* Every single-bit flip in the last record is caught. */
	for (size_t i = third; i < len; i++) {
		for (int b = 0; b < 8; b++) {
			struct got g = { 0 };
			struct journal_scan s;
			buf[i] ^= (uint8_t)(1u << b);
			assert_int_equal(journal_scan_records(buf, len, 1, collect, &g, &s),
					 MOTE_OK);
			assert_int_not_equal(s.end, JOURNAL_SCAN_CLEAN);
			assert_int_equal(s.records, 2);
			assert_int_equal(g.n, 2);
			assert_int_equal(s.good_bytes, third);
			buf[i] ^= (uint8_t)(1u << b);
		}
	}
	/* Type 0 is never written: a zero-filled tail is corrupt, not records. */
	uint8_t zeros[40] = { 0 };
	struct journal_scan s;
	assert_int_equal(journal_scan_records(zeros, sizeof zeros, 1, NULL, NULL, &s), MOTE_OK);
	assert_int_equal(s.end, JOURNAL_SCAN_CORRUPT);
	assert_int_equal(s.records, 0);
	/* A length over the format limit is corrupt even with bytes to spare. */
	uint8_t big[JOURNAL_REC_HDR];
	journal_rec_hdr_encode(big, 1, "", 0);
	big[0] = 0xff, big[1] = 0xff, big[2] = 0xff, big[3] = 0xff;
	assert_int_equal(journal_scan_records(big, sizeof big, 1, NULL, NULL, &s), MOTE_OK);
	assert_int_equal(s.end, JOURNAL_SCAN_CORRUPT);
}

static void scan_callback_error(void **state)
{
	(void)state;
	uint8_t buf[64];
	size_t len = build(buf);
	struct got g = { .n = 7 };
	struct journal_scan s;
	assert_int_equal(journal_scan_records(buf, len, 1, collect, &g, &s), MOTE_EFULL);
	assert_int_equal(s.records, 1);
}

static void seg_header(void **state)
{
	(void)state;
	uint8_t h[JOURNAL_SEG_HDR];
	struct journal_seg_hdr in = { 7, 0x123456789abcull }, out = { 0, 0 };
	journal_seg_hdr_encode(h, &in);
	assert_memory_equal(h, "MOTEJRNL", 8);
	assert_int_equal(journal_seg_hdr_decode(h, sizeof h, &out), MOTE_OK);
	assert_int_equal(out.segno, 7);
	assert_int_equal(out.base_lsn, 0x123456789abcull);
	assert_int_equal(journal_seg_hdr_decode(h, sizeof h - 1, &out), MOTE_EMALFORMED);
	for (size_t i = 0; i < sizeof h; i++) {
		h[i] ^= 0x10;
		assert_int_equal(journal_seg_hdr_decode(h, sizeof h, &out), MOTE_EMALFORMED);
		h[i] ^= 0x10;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crc_vectors), cmocka_unit_test(crc_hw_matches_table),	       cmocka_unit_test(scan_clean),
		cmocka_unit_test(scan_torn_every_cut), cmocka_unit_test(scan_corrupt),
		cmocka_unit_test(scan_callback_error), cmocka_unit_test(seg_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
