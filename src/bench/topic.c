/*
 * topic.c - topic patterns of mote bench: %i is the client index, %t the
 * thread index, %% a percent sign. Pure string work, no state.
 */
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"

enum mote_err bench_topic(const char *pattern, uint32_t index, uint32_t thread, char *buf,
			  size_t cap, size_t *len)
{
	size_t n = 0;
	for (const char *p = pattern; *p; p++) {
		char num[16];
		const char *piece = p;
		size_t plen = 1;
		if (p[0] == '%' && (p[1] == 'i' || p[1] == 't')) {
			int k = snprintf(num, sizeof num, "%u", p[1] == 'i' ? index : thread);
			piece = num;
			plen = (size_t)k;
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			p++;
		}
		if (n + plen >= cap)
			return MOTE_ENOSPC;
		memcpy(buf + n, piece, plen);
		n += plen;
	}
	if (cap == 0)
		return MOTE_ENOSPC;
	buf[n] = '\0';
	*len = n;
	return MOTE_OK;
}

enum mote_err bench_topic_filter(const char *pattern, char *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	const char *p = pattern;
	for (;;) {
		const char *end = strchr(p, '/');
		size_t ll = end ? (size_t)(end - p) : strlen(p);
		char level[256];
		size_t lvl_len = 0;
		bool wild = false;
		for (size_t i = 0; i < ll; i++) {
			if (p[i] == '%' && i + 1 < ll && (p[i + 1] == 'i' || p[i + 1] == 't'))
				wild = true;
		}
		if (wild) {
			level[0] = '+';
			lvl_len = 1;
		} else {
			char tmp[256];
			if (ll >= sizeof tmp)
				return MOTE_ENOSPC;
			memcpy(tmp, p, ll);
			tmp[ll] = '\0';
			if (bench_topic(tmp, 0, 0, level, sizeof level, &lvl_len) != MOTE_OK)
				return MOTE_ENOSPC;
		}
		if (n + lvl_len + 2 > cap)
			return MOTE_ENOSPC;
		memcpy(buf + n, level, lvl_len);
		n += lvl_len;
		if (!end)
			break;
		buf[n++] = '/';
		p = end + 1;
	}
	buf[n] = '\0';
	*len = n;
	return MOTE_OK;
}
