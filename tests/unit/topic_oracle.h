/*
 * topic_oracle.h - a brute-force MQTT topic matcher for the broker's trie
 * tests, written from the MQTT 5.0 rules (4.7.1, 4.7.2) and sharing no code
 * with src/broker/: split both strings into levels and compare them in
 * order. Header-only so each test executable gets its own copy.
 */
#ifndef MOTE_TEST_TOPIC_ORACLE_H
#define MOTE_TEST_TOPIC_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define ORACLE_MAX_LEVELS 64

/* Splits s at '/': "a//b" -> 3 levels, "/a" -> 2, "" -> 1. Returns the count
 * or 0 if there are more than ORACLE_MAX_LEVELS. */
static inline size_t oracle_split(const char *s, const char *lv[ORACLE_MAX_LEVELS],
				  size_t len[ORACLE_MAX_LEVELS])
{
	size_t n = 0;
	for (;;) {
		const char *e = strchr(s, '/');
		if (n == ORACLE_MAX_LEVELS)
			return 0;
		lv[n] = s;
		len[n] = e ? (size_t)(e - s) : strlen(s);
		n++;
		if (!e)
			return n;
		s = e + 1;
	}
}

static inline bool oracle_level_is(const char *lv, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(lv, want, len) == 0;
}

/* Whether topic name `topic` matches topic filter `filter`. */
static inline bool oracle_match(const char *filter, const char *topic)
{
	const char *fl[ORACLE_MAX_LEVELS], *tl[ORACLE_MAX_LEVELS];
	size_t fn[ORACLE_MAX_LEVELS], tn[ORACLE_MAX_LEVELS];
	size_t nf = oracle_split(filter, fl, fn), nt = oracle_split(topic, tl, tn);
	if (nf == 0 || nt == 0)
		return false;
	/* a topic starting with '$' is not matched by a leading wildcard */
	if (topic[0] == '$' &&
	    (oracle_level_is(fl[0], fn[0], "+") || oracle_level_is(fl[0], fn[0], "#")))
		return false;
	for (size_t i = 0; i < nf; i++) {
		if (oracle_level_is(fl[i], fn[i], "#"))
			return true; /* the rest, including nothing (the parent level) */
		if (i >= nt)
			return false;
		if (oracle_level_is(fl[i], fn[i], "+"))
			continue;
		if (fn[i] != tn[i] || memcmp(fl[i], tl[i], fn[i]) != 0)
			return false;
	}
	return nf == nt;
}

#endif
