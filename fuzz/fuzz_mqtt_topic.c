/*
 * fuzz_mqtt_topic.c - libFuzzer target for topic names, filters, shared
 * subscriptions and matching.
 *
 * Input: filter, a 0x00 byte, name (0x00 cannot occur in a valid topic,
 * so it is a free separator); without a separator the input is both.
 * mqtt_topic_match() is compared with a deliberately naive reference
 * (split into levels, recurse), and the laws that must hold for any valid
 * name are checked: it matches itself, "#" matches it unless it starts
 * with '$', and so does the filter made of one '+' per level.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/mqtt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_mqtt_topic: %s\n", what);
		__builtin_trap();
	}
}

struct level {
	const uint8_t *p;
	size_t len;
};

/* Splits s into levels; returns the count (caller frees *out). */
static size_t split(const uint8_t *s, size_t len, struct level **out)
{
	size_t n = 1;
	for (size_t i = 0; i < len; i++)
		n += s[i] == '/';
	struct level *lv = malloc(n * sizeof *lv);
	if (!lv)
		return 0;
	size_t k = 0, start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '/') {
			lv[k].p = s + start;
			lv[k].len = i - start;
			k++;
			start = i + 1;
		}
	}
	*out = lv;
	return n;
}

static bool is(const struct level *l, char c)
{
	return l->len == 1 && l->p[0] == c;
}

static bool ref_levels(const struct level *f, size_t fn, const struct level *n, size_t nn)
{
	if (fn == 0)
		return nn == 0;
	if (is(&f[0], '#'))
		return true;
	if (nn == 0)
		return false;
	if (!is(&f[0], '+') &&
	    (f[0].len != n[0].len || (f[0].len && memcmp(f[0].p, n[0].p, f[0].len) != 0)))
		return false;
	return ref_levels(f + 1, fn - 1, n + 1, nn - 1);
}

static bool ref_match(const uint8_t *f, size_t flen, const uint8_t *n, size_t nlen)
{
	if (n[0] == '$' && (f[0] == '+' || f[0] == '#'))
		return false;
	struct level *fl = NULL, *nl = NULL;
	size_t fn = split(f, flen, &fl), nn = split(n, nlen, &nl);
	bool r = fn && nn && ref_levels(fl, fn, nl, nn);
	free(fl);
	free(nl);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = size ? memchr(data, 0, size) : NULL;
	size_t flen = sep ? (size_t)(sep - data) : size;
	const uint8_t *name = sep ? sep + 1 : data;
	size_t nlen = sep ? size - flen - 1 : size;
	/* Own allocations so that any overread is caught. */
	uint8_t *f = malloc(flen ? flen : 1), *n = malloc(nlen ? nlen : 1);
	if (!f || !n)
		goto out;
	memcpy(f, data, flen);
	memcpy(n, name, nlen);

	bool fvalid = mqtt_topic_filter_valid(f, flen);
	bool nvalid = mqtt_topic_name_valid(n, nlen);
	struct mqtt_str group, inner;

	if (fvalid) {
		check(mqtt_utf8_valid(f, flen), "valid filter that is not UTF-8");
		if (mqtt_shared_split(f, flen, &group, &inner)) {
			check(group.len > 0, "shared filter with an empty group");
			check(!memchr(group.p, '+', group.len) && !memchr(group.p, '#', group.len) &&
				      !memchr(group.p, '/', group.len),
			      "shared group with a wildcard or '/'");
			check(inner.p + inner.len == f + flen, "shared split lost bytes");
			/* The inner filter is judged as a plain one (a nested
			 * "$share/" is just text): prefixing a level keeps
			 * its validity but stops it looking shared. */
			uint8_t *plain = malloc((size_t)inner.len + 2);
			if (plain) {
				plain[0] = 'x';
				plain[1] = '/';
				memcpy(plain + 2, inner.p, inner.len);
				check(mqtt_topic_filter_valid(plain, (size_t)inner.len + 2),
				      "shared filter whose inner filter is invalid");
				free(plain);
			}
		}
	}
	if (nvalid) {
		check(mqtt_utf8_valid(n, nlen), "valid name that is not UTF-8");
		check(!memchr(n, '+', nlen) && !memchr(n, '#', nlen), "valid name with wildcard");
		check(mqtt_topic_match(n, nlen, n, nlen), "a name does not match itself");
		check(mqtt_topic_match((const uint8_t *)"#", 1, n, nlen) == (n[0] != '$'),
		      "'#' and the '$' rule");
		/* one '+' per level */
		size_t levels = 1;
		for (size_t i = 0; i < nlen; i++)
			levels += n[i] == '/';
		uint8_t *plus = malloc(2 * levels);
		if (plus) {
			for (size_t i = 0; i < levels; i++) {
				plus[2 * i] = '+';
				plus[2 * i + 1] = '/';
			}
			size_t plen = 2 * levels - 1;
			check(mqtt_topic_filter_valid(plus, plen), "'+/+...' is not a valid filter");
			check(mqtt_topic_match(plus, plen, n, nlen) == (n[0] != '$'),
			      "one '+' per level does not match");
			free(plus);
		}
		if (!(nlen >= 7 && memcmp(n, "$share/", 7) == 0))
			check(mqtt_topic_filter_valid(n, nlen), "a valid name is not a valid filter");
	}
	if (fvalid && nvalid) {
		const uint8_t *fp = f;
		size_t fl = flen;
		if (mqtt_shared_split(f, flen, &group, &inner)) {
			fp = inner.p;
			fl = inner.len;
		}
		check(mqtt_topic_match(fp, fl, n, nlen) == ref_match(fp, fl, n, nlen),
		      "match disagrees with the reference");
	}
out:
	free(f);
	free(n);
	return 0;
}
