/*
 * format.h - the on-disk format of journal segments, with no I/O: encoders
 * for the segment header and record header, and a scanner that walks the
 * records of a segment held in memory. Used by the journal and by the fuzz
 * target (which therefore needs no files). docs/durability.md describes the
 * format for people.
 *
 * All integers are little-endian, written byte by byte.
 *
 * Segment header (JOURNAL_SEG_HDR bytes):
 *   0  magic "MOTEJRNL" (8)   8 version u32   12 segment number u32
 *   16 base LSN u64 (the LSN of the segment's first record)
 *   24 reserved u32 (0)       28 CRC32C of bytes 0..27
 * Record (JOURNAL_REC_HDR bytes of header, then the payload):
 *   0 payload length u32   4 type u8 (0 is never written)
 *   5 CRC32C of type byte + payload, u32   9 payload
 * Records follow each other with no padding; LSNs are implicit: the n-th
 * record (from 0) of a segment has LSN base + n.
 *
 * Threading: stateless, safe from any thread.
 */
#ifndef MOTE_JOURNAL_FORMAT_H
#define MOTE_JOURNAL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define JOURNAL_MAGIC "MOTEJRNL"
#define JOURNAL_VERSION 1u
#define JOURNAL_SEG_HDR 32u
#define JOURNAL_REC_HDR 9u
/* Largest payload the format accepts; a longer length field is corruption. */
#define JOURNAL_MAX_PAYLOAD (64u * 1024u * 1024u)

struct journal_seg_hdr {
	uint32_t segno;
	uint64_t base_lsn;
};

void journal_seg_hdr_encode(uint8_t out[JOURNAL_SEG_HDR], const struct journal_seg_hdr *h);
/* MOTE_EMALFORMED if len is short, the magic, version or CRC is wrong. */
enum mote_err journal_seg_hdr_decode(const uint8_t *buf, size_t len, struct journal_seg_hdr *h);

/* Writes the record header for (type, payload) into out. */
void journal_rec_hdr_encode(uint8_t out[JOURNAL_REC_HDR], uint8_t type, const void *payload,
			    uint32_t len);

/*
 * Called once per intact record in order. `payload` points into the
 * scanned buffer (valid during the call only). A non-zero return stops the
 * scan and is returned by journal_scan_records().
 */
typedef enum mote_err (*journal_record_fn)(void *arg, uint64_t lsn, uint8_t type,
					    const uint8_t *payload, size_t len);

enum journal_scan_end {
	JOURNAL_SCAN_CLEAN,   /* the buffer ends exactly after a record */
	JOURNAL_SCAN_TORN,    /* the last record is cut short */
	JOURNAL_SCAN_CORRUPT, /* a record header or checksum is wrong */
};

struct journal_scan {
	uint64_t records;   /* intact records reported */
	size_t good_bytes;  /* bytes from the start of buf to the first bad byte */
	enum journal_scan_end end;
};

/*
 * Walks the records in buf[0..len) (the bytes after the segment header),
 * numbering them from base_lsn, and calls fn for each intact one until the
 * first torn or corrupt record. Reads nothing outside buf. Returns MOTE_OK
 * (the result in *res, also for torn or corrupt data) or fn's error.
 */
enum mote_err journal_scan_records(const uint8_t *buf, size_t len, uint64_t base_lsn,
				   journal_record_fn fn, void *arg, struct journal_scan *res);

#endif
