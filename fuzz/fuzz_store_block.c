/* fuzz_store_block.c - a block read from a damaged file is refused or decoded
 * within its bounds, never a crash; and whatever decodes re-encodes to a block
 * that decodes to the same points (the codec is lossless). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/block.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n;
	if (block_count(data, size, &n) != MOTE_OK)
		return 0;
	int64_t *ts = malloc((n + 1) * sizeof *ts), *ts2 = malloc((n + 1) * sizeof *ts2);
	double *v = malloc((n + 1) * sizeof *v), *v2 = malloc((n + 1) * sizeof *v2);
	uint8_t *buf = malloc(BLOCK_BOUND(n));
	size_t m;
	if (ts && ts2 && v && v2 && buf && block_decode(data, size, ts, v, n, &n) == MOTE_OK) {
		size_t len = block_encode(ts, v, n, buf);
		if (len > BLOCK_BOUND(n) || block_decode(buf, len, ts2, v2, n, &m) != MOTE_OK ||
		    m != n || memcmp(ts, ts2, n * sizeof *ts) || memcmp(v, v2, n * sizeof *v))
			__builtin_trap();
	}
	free(ts);
	free(ts2);
	free(v);
	free(v2);
	free(buf);
	return 0;
}
