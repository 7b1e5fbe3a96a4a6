/*
 * log.h - structured (logfmt) logging to stderr.
 *
 * A line looks like:
 *   ts=2026-11-24T20:14:56.123Z level=info mod=broker event=connect client=s1
 * Callers pass the part after mod= as a printf format, written as key=value
 * pairs. Quote values that may contain spaces with mote_log_quote().
 *
 * State: one process-wide struct mote_log_state (level, output stream), set at
 * start-up before threads exist and read-only afterwards. Writing a line is
 * thread-safe (one fprintf per line, stdio locks the stream).
 */
#ifndef MOTE_BASE_LOG_H
#define MOTE_BASE_LOG_H

#include <stdio.h>

enum mote_log_level {
	MOTE_LOG_DEBUG = 0,
	MOTE_LOG_INFO,
	MOTE_LOG_WARN,
	MOTE_LOG_ERROR,
	MOTE_LOG_OFF
};

/* Set before starting threads. `out` NULL means stderr. */
void mote_log_setup(enum mote_log_level level, FILE *out);
/* Parses "debug|info|warn|error|off"; returns 0 on success, -1 if unknown. */
int mote_log_level_parse(const char *s, enum mote_log_level *out);
int mote_log_enabled(enum mote_log_level level);

void mote_log(enum mote_log_level level, const char *mod, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Writes `len` bytes of `s` as a logfmt-safe quoted value into `buf` (cap
 * bytes, always NUL-terminated, truncated with "..." when long). Non-printable
 * bytes become \xNN so hostile client ids cannot forge log lines.
 * Returns buf.
 */
char *mote_log_quote(char *buf, size_t cap, const void *s, size_t len);

#define MOTE_DEBUG(mod, ...) mote_log(MOTE_LOG_DEBUG, mod, __VA_ARGS__)
#define MOTE_INFO(mod, ...) mote_log(MOTE_LOG_INFO, mod, __VA_ARGS__)
#define MOTE_WARN(mod, ...) mote_log(MOTE_LOG_WARN, mod, __VA_ARGS__)
#define MOTE_ERROR(mod, ...) mote_log(MOTE_LOG_ERROR, mod, __VA_ARGS__)

#endif
