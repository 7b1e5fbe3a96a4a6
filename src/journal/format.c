/*
 * format.c - encoding and scanning of segment headers and records (see
 * format.h for the layout). The scanner trusts nothing in the buffer: every
 * length is checked against what is left before it is used, and a record is
 * reported only after its CRC matches, so a caller never sees a payload that
 * was not written as such.
 */
#include "journal/format.h"

#include <string.h>

#include "journal/crc32c.h"

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void journal_seg_hdr_encode(uint8_t out[JOURNAL_SEG_HDR], const struct journal_seg_hdr *h)
{
	memcpy(out, JOURNAL_MAGIC, 8);
	put32(out + 8, JOURNAL_VERSION);
	put32(out + 12, h->segno);
	put64(out + 16, h->base_lsn);
	put32(out + 24, 0);
	put32(out + 28, crc32c_update(0, out, 28));
}

enum mote_err journal_seg_hdr_decode(const uint8_t *buf, size_t len, struct journal_seg_hdr *h)
{
	if (len < JOURNAL_SEG_HDR || memcmp(buf, JOURNAL_MAGIC, 8) != 0 ||
	    get32(buf + 28) != crc32c_update(0, buf, 28) || get32(buf + 8) != JOURNAL_VERSION)
		return MOTE_EMALFORMED;
	h->segno = get32(buf + 12);
	h->base_lsn = get64(buf + 16);
	return MOTE_OK;
}

static uint32_t rec_crc(uint8_t type, const void *payload, size_t len)
{
	return crc32c_update(crc32c_update(0, &type, 1), payload, len);
}

void journal_rec_hdr_encode(uint8_t out[JOURNAL_REC_HDR], uint8_t type, const void *payload,
			    uint32_t len)
{
	put32(out, len);
	out[4] = type;
	put32(out + 5, rec_crc(type, payload, len));
}

enum mote_err journal_scan_records(const uint8_t *buf, size_t len, uint64_t base_lsn,
				   journal_record_fn fn, void *arg, struct journal_scan *res)
{
	enum mote_err err = MOTE_OK;
	size_t off = 0;

	res->records = 0;
	res->end = JOURNAL_SCAN_CLEAN;
	while (off < len) {
		size_t left = len - off;
		if (left < JOURNAL_REC_HDR) {
			res->end = JOURNAL_SCAN_TORN;
			break;
		}
		const uint8_t *h = buf + off;
		uint32_t plen = get32(h);
		if (h[4] == 0 || plen > JOURNAL_MAX_PAYLOAD) {
			res->end = JOURNAL_SCAN_CORRUPT;
			break;
		}
		if (plen > left - JOURNAL_REC_HDR) {
			res->end = JOURNAL_SCAN_TORN;
			break;
		}
		const uint8_t *payload = h + JOURNAL_REC_HDR;
		if (get32(h + 5) != rec_crc(h[4], payload, plen)) {
			res->end = JOURNAL_SCAN_CORRUPT;
			break;
		}
		if (fn) {
			err = fn(arg, base_lsn + res->records, h[4], payload, plen);
			if (err)
				break;
		}
		res->records++;
		off += JOURNAL_REC_HDR + (size_t)plen;
	}
	res->good_bytes = off;
	return err;
}
