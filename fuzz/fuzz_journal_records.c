/*
 * fuzz_journal_records.c - libFuzzer target for the recovery scanner.
 *
 * Input: the bytes of a segment file. The header is decoded (its verdict
 * does not matter) and the records after it are scanned from memory, so
 * no files are involved; the whole input is also scanned as records from
 * offset 0. Checked for every reported record: the payload lies inside the
 * input, right after its 9-byte header whose length and type it matches,
 * the CRC32C recomputed here over type + payload equals the stored one,
 * LSNs count up from the base, and the scan's totals agree with what was
 * reported. ASan catches any read outside the input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/crc32c.h"
#include "journal/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_journal_records: %s\n", what);
		__builtin_trap();
	}
}

struct walk {
	const uint8_t *start, *end;
	const uint8_t *next; /* where the next record header must be */
	uint64_t next_lsn;
	uint64_t count;
};

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static enum mote_err on_record(void *arg, uint64_t lsn, uint8_t type, const uint8_t *payload,
			       size_t len)
{
	struct walk *w = arg;
	const uint8_t *h = payload - JOURNAL_REC_HDR;
	check(h == w->next, "record not contiguous with the previous one");
	check(h >= w->start && payload <= w->end && len <= (size_t)(w->end - payload),
	      "payload outside the input");
	check(lsn == w->next_lsn, "LSN out of sequence");
	check(type != 0 && type == h[4], "type mismatch");
	check(get32(h) == len, "length mismatch");
	uint32_t crc = crc32c_update(crc32c_update(0, &type, 1), payload, len);
	check(crc == get32(h + 5), "reported a record whose CRC does not match");
	w->next = payload + len;
	w->next_lsn++;
	w->count++;
	return MOTE_OK;
}

static void scan(const uint8_t *buf, size_t len, uint64_t base)
{
	struct walk w = { buf, buf + len, buf, base, 0 };
	struct journal_scan s;
	check(journal_scan_records(buf, len, base, on_record, &w, &s) == MOTE_OK, "scan error");
	check(s.records == w.count, "record count mismatch");
	check(s.good_bytes == (size_t)(w.next - buf), "good_bytes mismatch");
	check(s.good_bytes <= len, "good_bytes past the end");
	check((s.end == JOURNAL_SCAN_CLEAN) == (s.good_bytes == len), "clean end mismatch");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Copy so that ASan sees the exact bounds of the input. */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct journal_seg_hdr h = { 0, 1 };
	if (journal_seg_hdr_decode(buf, size, &h) != MOTE_OK)
		h.base_lsn = 1;
	if (size >= JOURNAL_SEG_HDR)
		scan(buf + JOURNAL_SEG_HDR, size - JOURNAL_SEG_HDR, h.base_lsn);
	scan(buf, size, 7);
	free(buf);
	return 0;
}
