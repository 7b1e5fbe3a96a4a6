/* buf.c - the API's growable text buffer (buf.h). */
#include "api/buf.h"
#include "store/telemetry.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool grow(struct sbuf *b, size_t more)
{
	if (b->oom)
		return false;
	if (b->n + more + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->n + more + 1) {
		if (cap > ((size_t)-1) / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (!grow(b, n))
		return;
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

void sb_puts(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if ((size_t)n < sizeof tmp) {
		sb_put(b, tmp, (size_t)n);
		return;
	}
	if (!grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)n;
}

void sb_json_str(struct sbuf *b, const char *s)
{
	sb_put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char e[2] = { '\\', (char)*p };
			sb_put(b, e, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			sb_printf(b, "\\u%04x", *p);
		} else {
			sb_put(b, (const char *)p, 1);
		}
	}
	sb_put(b, "\"", 1);
}

void sb_json_num(struct sbuf *b, double v)
{
	/* printf-free for values with few decimals (telemetry rows: a day is 86,400 of them) */
	char tmp[32];
	size_t n = telemetry_format_value(v, tmp);
	if (!n) {
		sb_puts(b, "null");
		return;
	}
	sb_put(b, tmp, n);
}

char *sb_take(struct sbuf *b)
{
	if (b->oom) {
		sb_free(b);
		return NULL;
	}
	if (!b->p && !grow(b, 0))
		return NULL;
	if (!b->n)
		b->p[0] = '\0';
	char *p = b->p;
	b->p = NULL;
	b->n = b->cap = 0;
	return p;
}

void sb_free(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}
