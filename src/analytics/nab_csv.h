/*
 * nab_csv.h - reading a NAB-format series: a CSV with a header naming the
 * columns `timestamp` and `value` (any order, other columns ignored), one
 * point per line, timestamps "YYYY-MM-DD HH:MM:SS[.fff]" (or with a 'T') in UTC.
 *
 * What is an error and what is a warning (the `mote analyze nab` policy):
 *   - errors make the file unusable, because the detector's output must have
 *     one row per data row: no header / missing column, a row with too few
 *     fields, a timestamp that does not parse, a value that is not a finite
 *     number, a line longer than NAB_CSV_MAX_LINE, more than NAB_CSV_MAX_ROWS
 *     rows, a NUL byte, no data rows. The first one found is reported with its
 *     1-based line number.
 *   - warnings keep the row: a timestamp equal to the previous one (duplicate)
 *     or older (out of order); the detector ignores such a point (score 0).
 *     Gaps are normal in real series and are only counted.
 * Blank lines and a final line without a newline are accepted; CRLF too.
 *
 * Memory: nab_csv_parse keeps pointers into the caller's buffer (the
 * timestamp text of each row), so the buffer must outlive the series;
 * nab_series_free releases what the parse allocated. On error nothing is
 * left allocated.
 * Threading: no shared state.
 */
#ifndef MOTE_ANALYTICS_NAB_CSV_H
#define MOTE_ANALYTICS_NAB_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define NAB_CSV_MAX_LINE 4096
#define NAB_CSV_MAX_ROWS 10000000u

struct nab_row {
	int64_t ts_ms;
	double value;
	const char *ts_text; /* the timestamp as written (not NUL-terminated) */
	uint32_t ts_len;
	uint32_t line; /* 1-based line in the file */
};

struct nab_series {
	struct nab_row *rows;
	size_t count;
	size_t duplicates;   /* rows whose timestamp equals the previous one */
	size_t out_of_order; /* rows whose timestamp is older than the previous one */
	size_t gaps;	     /* intervals longer than 4x the shortest positive interval so far */
	uint32_t first_warning_line; /* line of the first duplicate / out-of-order row, 0 if none */
};

struct nab_csv_error {
	uint32_t line; /* 0: not about a line (e.g. empty file) */
	char msg[160];
};

/* Parses buf[0..len). MOTE_EMALFORMED (err says where and what), MOTE_ETOOBIG
 * (too many rows or a too-long line, also in err), MOTE_ENOMEM. */
enum mote_err nab_csv_parse(const char *buf, size_t len, struct nab_series *out,
			    struct nab_csv_error *err);

void nab_series_free(struct nab_series *s);

/* "YYYY-MM-DD HH:MM:SS[.f...]" (or 'T' between date and time) -> ms since the
 * epoch, UTC. MOTE_EMALFORMED for anything else, including impossible dates. */
enum mote_err nab_parse_timestamp(const char *s, size_t len, int64_t *ms);

#endif
