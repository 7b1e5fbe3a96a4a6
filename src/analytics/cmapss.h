/*
 * cmapss.h - reader for NASA C-MAPSS run-to-failure files (train_FD00x.txt,
 * test_FD00x.txt) and their truth files (RUL_FD00x.txt).
 *
 * A data file has one row per engine cycle: 26 whitespace-separated numbers,
 * unit number, cycle, three operational settings and 21 sensors. The reader
 * is strict, because a silently skipped or reordered row shifts every RUL
 * label after it: each engine's rows must be contiguous, engines in
 * increasing unit order, cycles 1, 2, 3, ... without duplicates or gaps, and
 * every value a finite number. The first violation stops the parse with a
 * message "NAME:LINE: what is wrong". Blank (whitespace-only) lines are
 * skipped.
 *
 * Threading: no shared state; a struct cmapss belongs to its caller.
 */
#ifndef MOTE_ANALYTICS_CMAPSS_H
#define MOTE_ANALYTICS_CMAPSS_H

#include <stddef.h>

#include "base/err.h"

#define CMAPSS_SETTINGS 3
#define CMAPSS_SENSORS 21
#define CMAPSS_COLUMNS (2 + CMAPSS_SETTINGS + CMAPSS_SENSORS)
/* Bounds that keep hostile input from asking for absurd memory. The real
 * files have at most 61,249 rows (FD004 train) and 543 cycles per engine. */
#define CMAPSS_MAX_ROWS 4000000
#define CMAPSS_MAX_UNIT 1000000
#define CMAPSS_MAX_CYCLE 100000
#define CMAPSS_MAX_FILE (512u << 20)

struct cmapss_row {
	double setting[CMAPSS_SETTINGS];
	double sensor[CMAPSS_SENSORS];
};

/* One engine: rows [first, first + cycles) of the data set; row first + i is
 * cycle i + 1. */
struct cmapss_unit {
	int id;
	size_t first;
	size_t cycles;
};

struct cmapss {
	struct cmapss_row *rows;
	size_t nrows;
	struct cmapss_unit *units;
	size_t nunits;
};

/*
 * Parses len bytes of text (need not be NUL-terminated; NUL bytes are an
 * error) named name in messages. On success *out owns its arrays (free with
 * cmapss_free). On failure *out is empty and err (errlen bytes, may be 0)
 * holds "name:line: reason". MOTE_EMALFORMED for bad content, MOTE_ETOOBIG
 * past the limits above, MOTE_ENOMEM.
 */
enum mote_err cmapss_parse(const char *name, const char *text, size_t len, struct cmapss *out,
			   char *err, size_t errlen);

/* Reads and parses path (cmapss_parse, plus "path: cannot read: ..."). */
enum mote_err cmapss_load(const char *path, struct cmapss *out, char *err, size_t errlen);

/* Releases what a successful parse allocated; *d is empty afterwards. */
void cmapss_free(struct cmapss *d);

/*
 * A truth file: one non-negative integer RUL per line, one line per test
 * engine in engine order. *out (n values) is the caller's to free.
 */
enum mote_err cmapss_parse_truth(const char *name, const char *text, size_t len, double **out,
				 size_t *n, char *err, size_t errlen);
enum mote_err cmapss_load_truth(const char *path, double **out, size_t *n, char *err,
				size_t errlen);

#endif
