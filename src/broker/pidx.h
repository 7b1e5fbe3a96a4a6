/*
 * pidx.h - packet identifiers in use by one session's outbound window,
 * indexed by id (private to src/broker/).
 *
 * Maps each id in use to the number of the in-flight slot holding its
 * message, so an ack finds its message in O(1) and allocating a fresh id
 * costs O(1) amortised, whatever the window size (up to 65535).
 *
 * Layout: a direct-mapped table of 2^k buckets; id lives in bucket
 * id & mask, and an id is only handed out when its bucket is empty, so
 * there are never collisions. The table keeps at least twice as many
 * buckets as ids in use (up to 65536, one per id), which bounds the ids
 * skipped by allocation to one per id handed out, amortised: each sweep of
 * the cursor over the buckets skips at most the ids that were in use when
 * it began, and fills every bucket it finds empty.
 *
 * Ids go out in increasing order from a cursor (kept by the caller),
 * wrapping from 65535 to 1; 0 is never used.
 *
 * Memory: nothing until the first pidx_reserve(); the table grows on
 * demand and pidx_free() gives it back.
 * Threading: owned by the session's loop thread.
 */
#ifndef MOTE_BROKER_PIDX_H
#define MOTE_BROKER_PIDX_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

#define PIDX_MAX_LIVE 65535u /* every non-zero id */

struct pidx_bucket {
	uint16_t id;    /* 0: empty */
	uint32_t slot;
};

struct pidx {
	struct pidx_bucket *b;  /* NULL until the first reserve */
	uint32_t mask;          /* bucket count - 1 */
	uint32_t live;          /* ids in use */
};

/* A zeroed struct is an empty index. */
void pidx_free(struct pidx *x);

/*
 * Makes room for `n` ids in use, so that n - live more pidx_add() calls
 * cannot fail. MOTE_ENOMEM on allocation failure (the index is unchanged),
 * MOTE_EINVAL when n > PIDX_MAX_LIVE.
 */
enum mote_err pidx_reserve(struct pidx *x, uint32_t n);

/*
 * Takes the next id not in use at or after *cursor (skipping 0), records
 * that it belongs to `slot`, and moves *cursor past it. The caller made room
 * with pidx_reserve(x, live + 1).
 */
uint16_t pidx_add(struct pidx *x, uint16_t *cursor, uint32_t slot);

/*
 * Records a given id (not in use) for `slot`, growing the table as needed
 * (restoring a window after a restart). MOTE_EINVAL for 0 or an id in use,
 * MOTE_ENOMEM.
 */
enum mote_err pidx_add_id(struct pidx *x, uint16_t id, uint32_t slot);

/* The slot of an id in use; false for an id not in use (or 0). */
bool pidx_find(const struct pidx *x, uint16_t id, uint32_t *slot);

/* Records that id (in use) now belongs to `slot`. */
void pidx_move(struct pidx *x, uint16_t id, uint32_t slot);

/* Frees id; an id not in use is ignored. */
void pidx_remove(struct pidx *x, uint16_t id);

#endif
