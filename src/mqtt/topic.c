/*
 * topic.c - topic names, topic filters, shared subscriptions and matching
 * (5.0 section 4.7 and 4.8.2, 3.1.1 section 4.7).
 *
 * A topic is a sequence of levels separated by '/'; empty levels are real
 * levels ("a//b" has three, "/" has two). Matching walks filter and name
 * one level at a time; '+' takes exactly one name level (which may be
 * empty), '#' takes whatever is left including nothing, which is why
 * "a/#" matches "a" [MQTT-4.7.1-2]. A filter whose first character is a
 * wildcard never matches a name starting with '$' [MQTT-4.7.2-1].
 *
 * Everything here assumes valid input where the header says so and never
 * reads outside [s, s + len).
 */
#include <string.h>

#include "mqtt/mqtt.h"

#define SHARE_PREFIX "$share/"
#define SHARE_PREFIX_LEN 7

static bool has_byte(const uint8_t *s, size_t len, uint8_t b)
{
	return len && memchr(s, b, len) != NULL;
}

bool mqtt_topic_name_valid(const uint8_t *s, size_t len)
{
	/* [MQTT-4.7.3-1] at least one character; [MQTT-3.3.2-2] no wildcards */
	if (len == 0 || len > UINT16_MAX)
		return false;
	if (has_byte(s, len, '+') || has_byte(s, len, '#'))
		return false;
	return mqtt_utf8_valid(s, len);
}

/* Wildcard placement only: '+' a whole level, '#' the whole last level. */
static bool plain_filter_valid(const uint8_t *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool level_start = i == 0 || s[i - 1] == '/';
		bool level_end = i + 1 == len || s[i + 1] == '/';
		if (s[i] == '+' && !(level_start && level_end))
			return false; /* [MQTT-4.7.1-2] */
		if (s[i] == '#' && !(level_start && i + 1 == len))
			return false; /* [MQTT-4.7.1-1] */
	}
	return true;
}

bool mqtt_shared_split(const uint8_t *s, size_t len, struct mqtt_str *group,
		       struct mqtt_str *filter)
{
	if (len < SHARE_PREFIX_LEN || memcmp(s, SHARE_PREFIX, SHARE_PREFIX_LEN) != 0)
		return false;
	const uint8_t *g = s + SHARE_PREFIX_LEN;
	size_t rest = len - SHARE_PREFIX_LEN;
	const uint8_t *slash = rest ? memchr(g, '/', rest) : NULL;
	if (!slash)
		return false;
	size_t glen = (size_t)(slash - g);
	group->p = g;
	group->len = (uint16_t)glen;
	filter->p = slash + 1;
	filter->len = (uint16_t)(rest - glen - 1);
	return true;
}

bool mqtt_topic_filter_valid(const uint8_t *s, size_t len)
{
	if (len == 0 || len > UINT16_MAX || !mqtt_utf8_valid(s, len))
		return false;
	if (len >= SHARE_PREFIX_LEN && memcmp(s, SHARE_PREFIX, SHARE_PREFIX_LEN) == 0) {
		/* 5.0 section 4.8.2: "$share/" ShareName "/" filter, with
		 * ShareName at least one character and free of '/', '+', '#'
		 * [MQTT-4.8.2-1] [MQTT-4.8.2-2]. */
		struct mqtt_str group, filter;
		if (!mqtt_shared_split(s, len, &group, &filter))
			return false;
		if (group.len == 0 || has_byte(group.p, group.len, '+') ||
		    has_byte(group.p, group.len, '#'))
			return false;
		return plain_filter_valid(filter.p, filter.len);
	}
	return plain_filter_valid(s, len);
}

/* The level starting at *pos: [*pos, end of level). Moves *pos past the
 * '/' or to len + 1 after the last level. */
static size_t next_level(const uint8_t *s, size_t len, size_t *pos)
{
	size_t start = *pos, i = start;
	while (i < len && s[i] != '/')
		i++;
	*pos = i + 1;
	return i - start;
}

bool mqtt_topic_match(const uint8_t *filter, size_t flen, const uint8_t *name, size_t nlen)
{
	if (flen == 0 || nlen == 0)
		return false;
	if (name[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return false; /* [MQTT-4.7.2-1] */

	/* A position <= len means a level starts there (possibly empty). */
	size_t fp = 0, np = 0;
	for (;;) {
		if (fp > flen)
			return np > nlen; /* filter used up: so must the name be */
		const uint8_t *fl = filter + fp;
		size_t fl_len = next_level(filter, flen, &fp);
		if (fl_len == 1 && fl[0] == '#')
			return true; /* the rest, including no level at all */
		if (np > nlen)
			return false; /* name used up, filter is not */
		const uint8_t *nl = name + np;
		size_t nl_len = next_level(name, nlen, &np);
		if (fl_len == 1 && fl[0] == '+')
			continue;
		if (fl_len != nl_len || (fl_len && memcmp(fl, nl, fl_len) != 0))
			return false;
	}
}
