/*
 * buf.h - a growable text buffer for the API's answers (private to
 * src/api). An allocation failure makes the buffer sticky-failed (oom);
 * the caller checks once at the end and answers 500.
 */
#ifndef MOTE_API_BUF_H
#define MOTE_API_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

void sb_put(struct sbuf *b, const char *s, size_t n);
void sb_puts(struct sbuf *b, const char *s);
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string, quotes included. */
void sb_json_str(struct sbuf *b, const char *s);
/* A double as JSON: the shortest of %.15g/%.17g that reads back exactly;
 * null for NaN and infinities. */
void sb_json_num(struct sbuf *b, double v);
/* The text (NUL-terminated, malloc'd; the caller frees) or NULL after oom. */
char *sb_take(struct sbuf *b);
void sb_free(struct sbuf *b);

#endif
