/*
 * nab_csv.c - the NAB CSV reader (policy in nab_csv.h).
 *
 * One pass over the buffer, line by line; nothing is copied but the field
 * being converted (bounded by NAB_CSV_MAX_LINE). Rows grow by doubling.
 */
#include "analytics/nab_csv.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"

__attribute__((format(printf, 4, 5))) static enum mote_err
fail(struct nab_csv_error *err, enum mote_err code, uint32_t line, const char *fmt, ...)
{
	va_list ap;
	err->line = line;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return code;
}

enum mote_err nab_parse_timestamp(const char *s, size_t len, int64_t *ms)
{
	int y, mo, d, h, mi, se, frac = 0;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (len < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') ||
	    s[13] != ':' || s[16] != ':')
		return MOTE_EMALFORMED;
	if (!mote_parse_digits(s, 4, &y) || !mote_parse_digits(s + 5, 2, &mo) ||
	    !mote_parse_digits(s + 8, 2, &d) || !mote_parse_digits(s + 11, 2, &h) ||
	    !mote_parse_digits(s + 14, 2, &mi) || !mote_parse_digits(s + 17, 2, &se))
		return MOTE_EMALFORMED;
	if (len > 19) {
		/* fraction of a second: up to 9 digits, milliseconds kept */
		if (s[19] != '.' || len == 20 || len > 29)
			return MOTE_EMALFORMED;
		for (size_t i = 20; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return MOTE_EMALFORMED;
			if (i < 23)
				frac = frac * 10 + (s[i] - '0');
		}
		for (size_t i = len; i < 23; i++)
			frac *= 10;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
		return MOTE_EMALFORMED;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return MOTE_EMALFORMED;
	*ms = ((mote_days_from_civil(y, (unsigned)mo, (unsigned)d) * 24 + h) * 60 + mi) * 60000 +
	      (int64_t)se * 1000 + frac;
	return MOTE_OK;
}

/* The field as [b, e) without surrounding blanks and one pair of double quotes. */
static void trim(const char **b, const char **e)
{
	while (*b < *e && (**b == ' ' || **b == '\t'))
		(*b)++;
	while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
		(*e)--;
	if (*e - *b >= 2 && **b == '"' && (*e)[-1] == '"') {
		(*b)++;
		(*e)--;
	}
}

#define MAX_FIELDS 64

/* Splits [line, end) at commas; returns the field count (at most MAX_FIELDS + 1). */
static int split(const char *line, const char *end, const char **fb, const char **fe)
{
	int n = 0;
	const char *p = line;
	for (;;) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		const char *stop = c ? c : end;
		if (n < MAX_FIELDS) {
			fb[n] = p;
			fe[n] = stop;
			trim(&fb[n], &fe[n]);
		}
		n++;
		if (!c || n > MAX_FIELDS)
			return n;
		p = c + 1;
	}
}

static void show(char *dst, size_t cap, const char *b, const char *e)
{
	size_t n = (size_t)(e - b);
	if (n > 40)
		n = 40;
	size_t j = 0;
	for (size_t i = 0; i < n && j + 1 < cap; i++)
		dst[j++] = (b[i] >= 0x20 && b[i] < 0x7f) ? b[i] : '?';
	dst[j] = 0;
}

enum mote_err nab_csv_parse(const char *buf, size_t len, struct nab_series *out, struct nab_csv_error *err)
{
	enum mote_err rc = MOTE_OK;
	const char *p = buf, *end = buf + len;
	const char *fb[MAX_FIELDS], *fe[MAX_FIELDS];
	int ti = -1, vi = -1, need = 0;
	uint32_t line = 0;
	size_t cap = 0;
	int64_t min_dt = 0;
	char shown[48];

	memset(out, 0, sizeof *out);
	err->line = 0;
	err->msg[0] = 0;
	if (memchr(buf, 0, len))
		return fail(err, MOTE_EMALFORMED, 0, "contains a NUL byte: not a text file");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *next = nl ? nl + 1 : end;
		line++;
		if (le - p > NAB_CSV_MAX_LINE) {
			rc = fail(err, MOTE_ETOOBIG, line, "line longer than %d bytes", NAB_CSV_MAX_LINE);
			goto out;
		}
		if (le > p && le[-1] == '\r')
			le--;
		if (line == 1 && le - p >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
			p += 3; /* UTF-8 byte order mark */
		const char *q = p;
		while (q < le && (*q == ' ' || *q == '\t'))
			q++;
		if (q == le) { /* blank line */
			p = next;
			continue;
		}
		int nf = split(p, le, fb, fe);
		if (nf > MAX_FIELDS) {
			rc = fail(err, MOTE_EMALFORMED, line, "more than %d fields", MAX_FIELDS);
			goto out;
		}
		if (ti < 0) { /* the header */
			for (int i = 0; i < nf; i++) {
				size_t n = (size_t)(fe[i] - fb[i]);
				if (n == 9 && memcmp(fb[i], "timestamp", 9) == 0 && ti < 0)
					ti = i;
				else if (n == 5 && memcmp(fb[i], "value", 5) == 0 && vi < 0)
					vi = i;
			}
			if (ti < 0 || vi < 0) {
				show(shown, sizeof shown, p, le);
				rc = fail(err, MOTE_EMALFORMED, line, "header must name the columns timestamp and value (found \"%s\")",
					  shown);
				ti = -1;
				goto out;
			}
			need = (ti > vi ? ti : vi) + 1;
			p = next;
			continue;
		}
		if (nf < need) {
			rc = fail(err, MOTE_EMALFORMED, line, "expected at least %d fields, found %d", need, nf);
			goto out;
		}
		struct nab_row r = { .line = line };
		if (nab_parse_timestamp(fb[ti], (size_t)(fe[ti] - fb[ti]), &r.ts_ms) != MOTE_OK) {
			show(shown, sizeof shown, fb[ti], fe[ti]);
			rc = fail(err, MOTE_EMALFORMED, line, "bad timestamp \"%s\" (want YYYY-MM-DD HH:MM:SS)", shown);
			goto out;
		}
		r.ts_text = fb[ti];
		r.ts_len = (uint32_t)(fe[ti] - fb[ti]);
		{
			char num[NAB_CSV_MAX_LINE + 1];
			size_t n = (size_t)(fe[vi] - fb[vi]);
			memcpy(num, fb[vi], n);
			num[n] = 0;
			char *stop;
			errno = 0;
			r.value = n ? strtod(num, &stop) : 0;
			if (n == 0 || *stop != 0 || !isfinite(r.value)) {
				show(shown, sizeof shown, fb[vi], fe[vi]);
				rc = fail(err, MOTE_EMALFORMED, line, "value \"%s\" is not a finite number", shown);
				goto out;
			}
		}
		if (out->count == NAB_CSV_MAX_ROWS) {
			rc = fail(err, MOTE_ETOOBIG, line, "more than %u rows", NAB_CSV_MAX_ROWS);
			goto out;
		}
		if (out->count == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			struct nab_row *nr = realloc(out->rows, ncap * sizeof *nr);
			if (!nr) {
				rc = fail(err, MOTE_ENOMEM, line, "out of memory");
				goto out;
			}
			out->rows = nr;
			cap = ncap;
		}
		if (out->count > 0) {
			int64_t prev = out->rows[out->count - 1].ts_ms;
			int64_t dt = r.ts_ms - prev;
			if (dt <= 0) {
				if (dt == 0)
					out->duplicates++;
				else
					out->out_of_order++;
				if (!out->first_warning_line)
					out->first_warning_line = line;
			} else {
				if (min_dt && dt > 4 * min_dt)
					out->gaps++;
				if (!min_dt || dt < min_dt)
					min_dt = dt;
			}
		}
		out->rows[out->count++] = r;
		p = next;
	}
	if (ti < 0)
		rc = fail(err, MOTE_EMALFORMED, line, "empty file: no header");
	else if (out->count == 0)
		rc = fail(err, MOTE_EMALFORMED, line, "no data rows after the header");
out:
	if (rc != MOTE_OK)
		nab_series_free(out);
	return rc;
}

void nab_series_free(struct nab_series *s)
{
	free(s->rows);
	memset(s, 0, sizeof *s);
}
