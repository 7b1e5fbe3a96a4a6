/*
 * cmapss.c - strict C-MAPSS reader (cmapss.h).
 *
 * The parser walks the buffer line by line with explicit bounds (the input
 * may hold NUL bytes or lack a final newline), splits each line on blanks and
 * tabs, and converts each field from a bounded copy so strtod never reads
 * past the line. Arrays grow by doubling; on any error everything built so
 * far is released, so the caller sees all or nothing.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/cmapss.h"
#include "base/file.h"

#define FIELD_MAX 64 /* longest number we accept, in characters */

__attribute__((format(printf, 5, 6))) static void fail(char *err, size_t errlen, const char *name,
						       size_t line, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	int n = line ? snprintf(err, errlen, "%s:%zu: ", name, line)
		     : snprintf(err, errlen, "%s: ", name);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* The next blank-separated field of the line at *q (up to eol): its start,
 * with *q moved to its end; NULL when only blanks are left. */
static const char *next_field(const char **q, const char *eol)
{
	const char *s = *q;
	while (s < eol && is_blank(*s))
		s++;
	if (s == eol)
		return NULL;
	const char *e = s;
	while (e < eol && !is_blank(*e))
		e++;
	*q = e;
	return s;
}

/* Copies field [p, e) into buf as a C string; 0 if it is too long. */
static int field_copy(const char *p, const char *e, char buf[FIELD_MAX + 1])
{
	size_t n = (size_t)(e - p);
	if (n > FIELD_MAX)
		return 0;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 1;
}

/* A positive decimal integer up to max, digits only. */
static int parse_count(const char *s, long max, long *out)
{
	long v = 0;
	if (!*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		v = v * 10 + (*s - '0');
		if (v > max)
			return 0;
	}
	*out = v;
	return 1;
}

/* A finite decimal number (no hex floats, no nan/inf spellings). */
static int parse_number(const char *s, double *out)
{
	for (const char *q = s; *q; q++)
		if (!strchr("0123456789+-.eE", *q))
			return 0;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno == ERANGE || !isfinite(v))
		return 0;
	*out = v;
	return 1;
}

static const char *ordinal_name(int col)
{
	static const char *const names[CMAPSS_COLUMNS] = {
	    "unit",	 "cycle",     "setting 1", "setting 2", "setting 3", "sensor 1",
	    "sensor 2",	 "sensor 3",  "sensor 4",  "sensor 5",	"sensor 6",  "sensor 7",
	    "sensor 8",	 "sensor 9",  "sensor 10", "sensor 11", "sensor 12", "sensor 13",
	    "sensor 14", "sensor 15", "sensor 16", "sensor 17", "sensor 18", "sensor 19",
	    "sensor 20", "sensor 21",
	};
	return names[col];
}

void cmapss_free(struct cmapss *d)
{
	free(d->rows);
	free(d->units);
	memset(d, 0, sizeof *d);
}

static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 1;
	size_t ncap = *cap ? *cap * 2 : 256;
	while (ncap < need)
		ncap *= 2;
	void *p = realloc(*arr, ncap * size);
	if (!p)
		return 0;
	*arr = p;
	*cap = ncap;
	return 1;
}

enum mote_err cmapss_parse(const char *name, const char *text, size_t len, struct cmapss *out,
			   char *err, size_t errlen)
{
	struct cmapss d = {0};
	size_t rows_cap = 0, units_cap = 0;
	enum mote_err rc = MOTE_OK;
	const char *p = text, *end = text + len;
	size_t line = 0;
	char buf[FIELD_MAX + 1];

	memset(out, 0, sizeof *out);
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		line++;
		const char *q = p;
		const char *next = eol < end ? eol + 1 : end;
		if (memchr(p, '\0', (size_t)(eol - p))) {
			fail(err, errlen, name, line, "NUL byte in a text file");
			rc = MOTE_EMALFORMED;
			goto out;
		}
		double v[CMAPSS_COLUMNS];
		long unit = 0, cycle = 0;
		int col = 0;
		for (;;) {
			const char *f = next_field(&q, eol);
			if (!f)
				break;
			if (col == CMAPSS_COLUMNS) {
				fail(err, errlen, name, line, "more than %d columns",
				     CMAPSS_COLUMNS);
				rc = MOTE_EMALFORMED;
				goto out;
			}
			if (!field_copy(f, q, buf)) {
				fail(err, errlen, name, line, "%s: value longer than %d characters",
				     ordinal_name(col), FIELD_MAX);
				rc = MOTE_EMALFORMED;
				goto out;
			}
			int ok = col == 0 ? parse_count(buf, CMAPSS_MAX_UNIT, &unit) && unit > 0
				 : col == 1
				     ? parse_count(buf, CMAPSS_MAX_CYCLE, &cycle) && cycle > 0
				     : parse_number(buf, &v[col]);
			if (!ok) {
				if (col < 2)
					fail(err, errlen, name, line,
					     "%s: '%s' is not an integer between 1 and %ld",
					     ordinal_name(col), buf,
					     col == 0 ? (long)CMAPSS_MAX_UNIT
						      : (long)CMAPSS_MAX_CYCLE);
				else
					fail(err, errlen, name, line,
					     "%s: '%s' is not a finite number", ordinal_name(col),
					     buf);
				rc = MOTE_EMALFORMED;
				goto out;
			}
			col++;
		}
		p = next;
		if (col == 0)
			continue; /* blank line */
		if (col < CMAPSS_COLUMNS) {
			fail(err, errlen, name, line,
			     "%d columns, expected %d (unit, cycle, 3 settings, 21 sensors)", col,
			     CMAPSS_COLUMNS);
			rc = MOTE_EMALFORMED;
			goto out;
		}
		struct cmapss_unit *u = d.nunits ? &d.units[d.nunits - 1] : NULL;
		if (!u || unit != u->id) {
			if (u && unit < u->id) {
				fail(err, errlen, name, line,
				     "unit %ld after unit %d: units must be in increasing order, "
				     "each "
				     "engine's rows together",
				     unit, u->id);
				rc = MOTE_EMALFORMED;
				goto out;
			}
			if (cycle != 1) {
				fail(err, errlen, name, line,
				     "unit %ld starts at cycle %ld, expected 1", unit, cycle);
				rc = MOTE_EMALFORMED;
				goto out;
			}
			if (!grow((void **)&d.units, &units_cap, d.nunits + 1, sizeof *d.units)) {
				rc = MOTE_ENOMEM;
				fail(err, errlen, name, line, "out of memory");
				goto out;
			}
			u = &d.units[d.nunits++];
			u->id = (int)unit;
			u->first = d.nrows;
			u->cycles = 0;
		} else if ((size_t)cycle != u->cycles + 1) {
			const char *what = (size_t)cycle == u->cycles  ? "duplicate cycle"
					   : (size_t)cycle < u->cycles ? "cycle out of order"
								       : "gap in cycles";
			fail(err, errlen, name, line, "unit %ld: %s: cycle %ld after cycle %zu",
			     unit, what, cycle, u->cycles);
			rc = MOTE_EMALFORMED;
			goto out;
		}
		if (d.nrows == CMAPSS_MAX_ROWS) {
			fail(err, errlen, name, line, "more than %d rows", CMAPSS_MAX_ROWS);
			rc = MOTE_ETOOBIG;
			goto out;
		}
		if (!grow((void **)&d.rows, &rows_cap, d.nrows + 1, sizeof *d.rows)) {
			rc = MOTE_ENOMEM;
			fail(err, errlen, name, line, "out of memory");
			goto out;
		}
		struct cmapss_row *r = &d.rows[d.nrows++];
		memcpy(r->setting, &v[2], sizeof r->setting);
		memcpy(r->sensor, &v[2 + CMAPSS_SETTINGS], sizeof r->sensor);
		u->cycles++;
	}
	if (d.nrows == 0) {
		fail(err, errlen, name, 0, "no data rows");
		rc = MOTE_EMALFORMED;
		goto out;
	}
	*out = d;
	return MOTE_OK;
out:
	cmapss_free(&d);
	return rc;
}

static enum mote_err load(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
	enum mote_err rc = mote_read_file(path, CMAPSS_MAX_FILE, text, len);
	if (rc == MOTE_ETOOBIG)
		fail(err, errlen, path, 0, "larger than %u MiB", CMAPSS_MAX_FILE >> 20);
	else if (rc == MOTE_EIO)
		fail(err, errlen, path, 0, "cannot read: %s", strerror(errno));
	else if (rc != MOTE_OK)
		fail(err, errlen, path, 0, "cannot read: %s", mote_strerror(rc));
	return rc;
}

enum mote_err cmapss_load(const char *path, struct cmapss *out, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	memset(out, 0, sizeof *out);
	enum mote_err rc = load(path, &text, &len, err, errlen);
	if (rc == MOTE_OK)
		rc = cmapss_parse(path, text, len, out, err, errlen);
	free(text);
	return rc;
}

enum mote_err cmapss_parse_truth(const char *name, const char *text, size_t len, double **out,
				 size_t *n, char *err, size_t errlen)
{
	double *vals = NULL;
	size_t nvals = 0, cap = 0, line = 0;
	enum mote_err rc = MOTE_OK;
	const char *p = text, *end = text + len;
	char buf[FIELD_MAX + 1];

	*out = NULL;
	*n = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		line++;
		const char *q = p;
		p = eol < end ? eol + 1 : end;
		if (memchr(q, '\0', (size_t)(eol - q))) {
			fail(err, errlen, name, line, "NUL byte in a text file");
			rc = MOTE_EMALFORMED;
			goto out;
		}
		const char *f = next_field(&q, eol);
		if (!f)
			continue;
		const char *after = q;
		long v;
		if (next_field(&after, eol)) {
			fail(err, errlen, name, line, "more than one value (one RUL per line)");
			rc = MOTE_EMALFORMED;
			goto out;
		}
		if (!field_copy(f, q, buf) || !parse_count(buf, CMAPSS_MAX_CYCLE, &v)) {
			if ((size_t)(q - f) <= FIELD_MAX)
				fail(err, errlen, name, line,
				     "'%s' is not a RUL (an integer between 0 and %d)", buf,
				     CMAPSS_MAX_CYCLE);
			else
				fail(err, errlen, name, line, "value longer than %d characters",
				     FIELD_MAX);
			rc = MOTE_EMALFORMED;
			goto out;
		}
		if (nvals == CMAPSS_MAX_UNIT) {
			fail(err, errlen, name, line, "more than %d values", CMAPSS_MAX_UNIT);
			rc = MOTE_ETOOBIG;
			goto out;
		}
		if (!grow((void **)&vals, &cap, nvals + 1, sizeof *vals)) {
			fail(err, errlen, name, line, "out of memory");
			rc = MOTE_ENOMEM;
			goto out;
		}
		vals[nvals++] = (double)v;
	}
	if (nvals == 0) {
		fail(err, errlen, name, 0, "no values");
		rc = MOTE_EMALFORMED;
		goto out;
	}
	*out = vals;
	*n = nvals;
	return MOTE_OK;
out:
	free(vals);
	return rc;
}

enum mote_err cmapss_load_truth(const char *path, double **out, size_t *n, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	*out = NULL;
	*n = 0;
	enum mote_err rc = load(path, &text, &len, err, errlen);
	if (rc == MOTE_OK)
		rc = cmapss_parse_truth(path, text, len, out, n, err, errlen);
	free(text);
	return rc;
}
