/*
 * senml.c - the SenML packs `mote bench --senml N` publishes (bench.h): the
 * telemetry load of issue 6. Built by hand, not with printf, so that making
 * a pack costs the load generator far less than decoding it costs the hub.
 */
#include <string.h>

#include "bench/bench.h"

static size_t put_str(uint8_t *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return n;
}

static size_t put_uint(uint8_t *p, uint64_t x)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + x % 10);
		x /= 10;
	} while (x);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)tmp[n - 1 - i];
	return n;
}

size_t bench_senml(uint8_t *out, uint32_t npts, uint64_t seq, int64_t base_s)
{
	uint32_t secs = (npts + 4) / 5; /* seconds of device time per pack */
	size_t o = 0;
	out[o++] = '[';
	for (uint32_t i = 0; i < npts; i++) {
		uint32_t m = i % 5, k = i / 5;
		if (i) {
			out[o++] = ',';
		}
		if (i == 0) {
			o += put_str(out + o, "{\"bt\":");
			o += put_uint(out + o, (uint64_t)base_s + seq * secs);
			o += put_str(out + o, ",\"n\":\"m");
		} else {
			o += put_str(out + o, "{\"n\":\"m");
		}
		out[o++] = (uint8_t)('0' + m);
		out[o++] = '"';
		if (k) {
			o += put_str(out + o, ",\"t\":");
			o += put_uint(out + o, k);
		}
		/* a slow wave with two decimals per metric: 20.00 .. 29.99 */
		uint64_t x = 2000 + ((seq * secs + k) * (m + 1) * 7) % 1000;
		o += put_str(out + o, ",\"v\":");
		o += put_uint(out + o, x / 100);
		out[o++] = '.';
		out[o++] = (uint8_t)('0' + x / 10 % 10);
		out[o++] = (uint8_t)('0' + x % 10);
		out[o++] = '}';
	}
	out[o++] = ']';
	return o;
}
