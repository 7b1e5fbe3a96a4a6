/* log.c - logfmt lines on stderr; see log.h for the format and threading. */
#include "base/log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

/* The only process-wide logging state; written once at start-up. */
static struct mote_log_state {
	enum mote_log_level level;
	FILE *out;
} mote_log_state = { MOTE_LOG_INFO, NULL };

void mote_log_setup(enum mote_log_level level, FILE *out)
{
	mote_log_state.level = level;
	mote_log_state.out = out;
}

int mote_log_level_parse(const char *s, enum mote_log_level *out)
{
	static const char *const names[] = { "debug", "info", "warn", "error", "off" };
	for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum mote_log_level)i;
			return 0;
		}
	}
	return -1;
}

int mote_log_enabled(enum mote_log_level level)
{
	return level >= mote_log_state.level && level < MOTE_LOG_OFF;
}

void mote_log(enum mote_log_level level, const char *mod, const char *fmt, ...)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	if (!mote_log_enabled(level))
		return;
	FILE *out = mote_log_state.out ? mote_log_state.out : stderr;

	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);

	char body[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(body, sizeof body, fmt, ap);
	va_end(ap);

	fprintf(out, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s mod=%s %s\n",
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		tm.tm_sec, ts.tv_nsec / 1000000L, names[level], mod, body);
	fflush(out);
}

char *mote_log_quote(char *buf, size_t cap, const void *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = s;
	size_t o = 0;
	if (cap < 8) {
		if (cap)
			buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		size_t need = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? 4 : 1;
		if (o + need + 5 > cap) { /* room for ..." and NUL */
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (need == 1) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
