/* fuzz_analytics_nab_csv.c - the NAB CSV reader must accept or refuse any bytes
 * without crashing; a refusal always says why (and where, past the header),
 * an accepted series is ordered by line with finite values, and the detector
 * runs over it with scores in [0, 1]. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/anomaly.h"
#include "analytics/nab_csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	/* an exact-size copy, so a read past the end is caught by ASan */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	struct nab_series s;
	struct nab_csv_error err;
	enum mote_err rc = nab_csv_parse(text, size, &s, &err);
	if (rc != MOTE_OK) {
		if (err.msg[0] == '\0' || s.rows || s.count)
			__builtin_trap();
	} else {
		static struct mote_anomaly det;
		mote_anomaly_init(&det, NULL);
		if (s.count == 0)
			__builtin_trap();
		for (size_t i = 0; i < s.count; i++) {
			const struct nab_row *r = &s.rows[i];
			if (!isfinite(r->value) || r->ts_len < 19 || r->ts_text < text ||
			    r->ts_text + r->ts_len > text + size || r->line < 2 ||
			    (i && r->line <= s.rows[i - 1].line))
				__builtin_trap();
			double sc = mote_anomaly_step(&det, r->ts_ms, r->value);
			if (!(sc >= 0.0 && sc <= 1.0))
				__builtin_trap();
		}
		nab_series_free(&s);
	}
	free(text);
	return 0;
}
