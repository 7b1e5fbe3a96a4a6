/* fuzz_store_telemetry.c - any payload is decoded or refused with a sentence;
 * accepted points always satisfy the decoder's promises (names 1..64 bytes of
 * the RFC 8428 charset, finite values, times within limits). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/telemetry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > TELEMETRY_METRIC_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || !strchr("-:./_", c)))
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64_t now = 1733380000000LL;
	struct telemetry_limits lim;
	struct telemetry_batch b = { 0 };
	char err[256];
	telemetry_limits_defaults(&lim);
	enum mote_err e = telemetry_decode(data, size, now, &lim, &b, err, sizeof err);
	if (e == MOTE_OK) {
		if (b.n > lim.max_points)
			__builtin_trap();
		for (size_t i = 0; i < b.n; i++) {
			if (!name_ok(b.pts[i].metric) || !isfinite(b.pts[i].value) ||
			    b.pts[i].ts_ms < 0 || b.pts[i].ts_ms > now + lim.max_future_ms)
				__builtin_trap();
		}
	} else if (err[0] == '\0' || b.n != 0) {
		__builtin_trap();
	}
	telemetry_batch_clear(&b);
	return 0;
}
