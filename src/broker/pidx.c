/*
 * pidx.c - the packet id index; see pidx.h.
 *
 * Invariants: every id in use sits in bucket id & mask (so no two ids in
 * use share low bits); bucket count is a power of two, at least 8, and at
 * least min(2 * live, 65536) after pidx_reserve. Growing keeps the first
 * invariant: two ids that differ in their low k+1 bits differ in their
 * low k bits or in bit k, so rehashing into a larger table never collides.
 */
#include "broker/pidx.h"

#include <assert.h>
#include <stdlib.h>

#define MIN_BUCKETS 8u
#define ALL_IDS 65536u

void pidx_free(struct pidx *x)
{
	free(x->b);
	x->b = NULL;
	x->mask = 0;
	x->live = 0;
}

enum mote_err pidx_reserve(struct pidx *x, uint32_t n)
{
	if (n > PIDX_MAX_LIVE)
		return MOTE_EINVAL;
	uint32_t want = n * 2 < ALL_IDS ? n * 2 : ALL_IDS;
	uint32_t have = x->b ? x->mask + 1 : 0;
	if (have >= want && have)
		return MOTE_OK;
	uint32_t size = have ? have : MIN_BUCKETS;
	while (size < want)
		size *= 2;
	struct pidx_bucket *nb = calloc(size, sizeof *nb);
	if (!nb)
		return MOTE_ENOMEM;
	for (uint32_t i = 0; i < have; i++)
		if (x->b[i].id)
			nb[x->b[i].id & (size - 1)] = x->b[i];
	free(x->b);
	x->b = nb;
	x->mask = size - 1;
	return MOTE_OK;
}

uint16_t pidx_add(struct pidx *x, uint16_t *cursor, uint32_t slot)
{
	/* Room was reserved, so an empty bucket, and an id reaching it, exist. */
	assert(x->b && x->live < PIDX_MAX_LIVE && x->live < x->mask + 1);
	for (;;) {
		uint16_t id = (*cursor)++;
		if (*cursor == 0)
			*cursor = 1;
		struct pidx_bucket *bk = &x->b[id & x->mask];
		if (id != 0 && bk->id == 0) {
			bk->id = id;
			bk->slot = slot;
			x->live++;
			return id;
		}
	}
}

bool pidx_find(const struct pidx *x, uint16_t id, uint32_t *slot)
{
	if (!x->b || id == 0)
		return false;
	const struct pidx_bucket *bk = &x->b[id & x->mask];
	if (bk->id != id)
		return false;
	*slot = bk->slot;
	return true;
}

void pidx_move(struct pidx *x, uint16_t id, uint32_t slot)
{
	assert(x->b && id && x->b[id & x->mask].id == id);
	x->b[id & x->mask].slot = slot;
}

void pidx_remove(struct pidx *x, uint16_t id)
{
	if (!x->b || id == 0)
		return;
	struct pidx_bucket *bk = &x->b[id & x->mask];
	if (bk->id != id)
		return;
	bk->id = 0;
	x->live--;
}

/* Doubles the table (up to one bucket per id): see the top comment. */
static enum mote_err grow(struct pidx *x)
{
	uint32_t have = x->b ? x->mask + 1 : 0;
	if (have >= ALL_IDS)
		return MOTE_EINVAL;
	return pidx_reserve(x, have ? have : MIN_BUCKETS / 2);
}

enum mote_err pidx_add_id(struct pidx *x, uint16_t id, uint32_t slot)
{
	if (id == 0)
		return MOTE_EINVAL;
	if (!x->b) {
		enum mote_err err = pidx_reserve(x, 1);
		if (err)
			return err;
	}
	/* Grow until the id's bucket is free: with one bucket per id it is,
	 * unless the id is in use already. */
	while (x->b[id & x->mask].id != 0) {
		if (x->b[id & x->mask].id == id)
			return MOTE_EINVAL;
		enum mote_err err = grow(x);
		if (err)
			return err;
	}
	if (x->live + 1 > (x->mask + 1) / 2) {
		enum mote_err err = pidx_reserve(x, x->live + 1);
		if (err)
			return err;
	}
	x->b[id & x->mask] = (struct pidx_bucket){ id, slot };
	x->live++;
	return MOTE_OK;
}
