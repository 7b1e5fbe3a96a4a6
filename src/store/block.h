/*
 * block.h - the compressed block format of the telemetry store (private to
 * src/store). A block holds up to BLOCK_MAX_POINTS (time, value) pairs of one
 * series in arrival order:
 *
 *   byte 0      version (1)
 *   byte 1      value mode: 0 = XOR of IEEE bits, 1..7 = decimal with k = mode-1
 *               digits (every value is an integer / 10^k, stored as that integer)
 *   varint      n (points)
 *   n times     zigzag varint of the time's delta-of-delta (the first point: its
 *               time, the second: its delta), then the value:
 *                 XOR mode: a control byte (high nibble: leading zero bytes of
 *                 x = bits ^ previous bits, low nibble: trailing zero bytes),
 *                 then the 8 - lead - trail middle bytes of x, big end first;
 *                 the first value is XORed with 0.
 *                 decimal mode: zigzag varint of the integer's delta-of-delta.
 *
 * Why: sensors report at a steady rate (delta-of-delta 0 = one byte) and
 * mostly values with few decimals (21.53 -> 2153; small deltas = one or two
 * bytes), so a typical point takes 2-3 bytes; arbitrary doubles fall back to
 * byte-aligned XOR (Gorilla's idea without bit packing, which is simpler and
 * decodes faster). Arithmetic wraps in uint64, so any int64 time survives.
 *
 * Pure functions, any thread.
 */
#ifndef MOTE_STORE_BLOCK_H
#define MOTE_STORE_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define BLOCK_MAX_POINTS 1024u
/* No block of n points is larger than this. */
#define BLOCK_BOUND(n) (2u + 10u + (size_t)(n) * 20u)

/* Encodes n points (n <= 65536) into out (at least BLOCK_BOUND(n) bytes); returns the length. */
size_t block_encode(const int64_t *ts, const double *v, size_t n, uint8_t *out);

/* The point count a block claims, checked against its length. MOTE_EMALFORMED if impossible. */
enum mote_err block_count(const uint8_t *in, size_t len, size_t *n);

/*
 * Decodes a block into ts[] and v[] (room for block_count's n points each).
 * MOTE_EMALFORMED for any inconsistency (truncated, trailing bytes, bad
 * control byte, bad version); never reads outside in[0..len).
 */
enum mote_err block_decode(const uint8_t *in, size_t len, int64_t *ts, double *v, size_t cap,
			   size_t *n);

#endif
