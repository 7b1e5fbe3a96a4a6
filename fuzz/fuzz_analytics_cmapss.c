/* fuzz_analytics_cmapss.c - the C-MAPSS data and truth readers must accept or
 * refuse any bytes without crashing; an accepted file must satisfy the
 * reader's invariants (contiguous engines in increasing order, cycles 1..n,
 * finite values), and every refusal must name the file. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/cmapss.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	/* No NUL terminator on purpose: the reader must respect len. */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	struct cmapss d;
	char err[256] = "";
	if (cmapss_parse("fuzz", text, size, &d, err, sizeof err) == MOTE_OK) {
		size_t rows = 0;
		for (size_t u = 0; u < d.nunits; u++) {
			if (d.units[u].first != rows || d.units[u].cycles == 0 ||
			    (u > 0 && d.units[u].id <= d.units[u - 1].id))
				__builtin_trap();
			rows += d.units[u].cycles;
		}
		if (rows != d.nrows || rows == 0)
			__builtin_trap();
		for (size_t r = 0; r < d.nrows; r++)
			for (int s = 0; s < CMAPSS_SENSORS; s++)
				if (!isfinite(d.rows[r].sensor[s]))
					__builtin_trap();
		cmapss_free(&d);
	} else if (strncmp(err, "fuzz", 4) != 0) {
		__builtin_trap();
	}
	double *v;
	size_t n;
	if (cmapss_parse_truth("fuzz", text, size, &v, &n, err, sizeof err) == MOTE_OK) {
		if (n == 0)
			__builtin_trap();
		for (size_t i = 0; i < n; i++)
			if (!(v[i] >= 0))
				__builtin_trap();
		free(v);
	} else if (strncmp(err, "fuzz", 4) != 0) {
		__builtin_trap();
	}
	free(text);
	return 0;
}
