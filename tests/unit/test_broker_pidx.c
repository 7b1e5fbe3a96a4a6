/*
 * test_broker_pidx.c - the packet id index of the outbound window: ids go
 * out in order and wrap from 65535 to 1, never one in use, lookups of ids
 * not in use fail, slots follow moves, the table grows and allocation stays
 * O(1) amortised. pidx_add_id (restoring a window after a restart): ids
 * that collide in the low bits make the table grow (up to one bucket per
 * id), an id in use or 0 is refused without change, and restored ids mix
 * with ones from the cursor. A model (one bool and slot per id) checks
 * every answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/pidx.h"

struct model {
	bool used[65536];
	uint32_t slot[65536];
	uint32_t live;
};

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return rng_state >> 8;
}

static uint16_t add(struct pidx *x, struct model *m, uint16_t *cursor, uint32_t slot)
{
	assert_int_equal(pidx_reserve(x, x->live + 1), MOTE_OK);
	uint16_t id = pidx_add(x, cursor, slot);
	assert_int_not_equal(id, 0);
	if (m->used[id])
		fail_msg("id %u handed out while in use", id);
	m->used[id] = true;
	m->slot[id] = slot;
	m->live++;
	assert_int_equal(x->live, m->live);
	return id;
}

static void drop(struct pidx *x, struct model *m, uint16_t id)
{
	pidx_remove(x, id);
	if (m->used[id]) {
		m->used[id] = false;
		m->live--;
	}
	assert_int_equal(x->live, m->live);
}

static void check_all(const struct pidx *x, const struct model *m)
{
	for (uint32_t id = 0; id < 65536; id++) {
		uint32_t slot = 0xdeadbeef;
		bool found = pidx_find(x, (uint16_t)id, &slot);
		if (found != m->used[id])
			fail_msg("id %u: index says %d, model %d", id, found, m->used[id]);
		if (found)
			assert_int_equal(slot, m->slot[id]);
	}
}

static void ids_in_order_from_the_cursor(void **state)
{
	(void)state;
	struct pidx x = { 0 };
	struct model *m = calloc(1, sizeof *m);
	uint16_t cursor = 1;
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(add(&x, m, &cursor, i * 10), i + 1);
	assert_int_equal(cursor, 6);
	uint32_t slot;
	assert_true(pidx_find(&x, 3, &slot));
	assert_int_equal(slot, 20);
	check_all(&x, m);
	pidx_free(&x);
	assert_false(pidx_find(&x, 3, &slot));
	assert_int_equal(x.live, 0);
	free(m);
}

static void wraps_past_65535_skipping_zero(void **state)
{
	(void)state;
	struct pidx x = { 0 };
	struct model *m = calloc(1, sizeof *m);
	uint16_t cursor = 65534;
	assert_int_equal(add(&x, m, &cursor, 0), 65534);
	assert_int_equal(add(&x, m, &cursor, 1), 65535);
	assert_int_equal(add(&x, m, &cursor, 2), 1); /* 0 is never an id */
	assert_int_equal(cursor, 2);
	check_all(&x, m);
	pidx_free(&x);
	free(m);
}

/*
 * A long-lived id (never acked) and a steady stream of short-lived ones
 * across several wraps: the held ids are skipped each time round, the
 * others are reused.
 */
static void wrapping_never_reuses_an_id_in_use(void **state)
{
	(void)state;
	struct pidx x = { 0 };
	struct model *m = calloc(1, sizeof *m);
	uint16_t cursor = 1;
	uint16_t held[3];
	for (int i = 0; i < 3; i++)
		held[i] = add(&x, m, &cursor, 1000u + (uint32_t)i);
	uint16_t ring[16] = { 0 };
	uint32_t wraps = 0;
	uint16_t prev = 0;
	for (uint32_t n = 0; n < 4 * 65536; n++) {
		if (ring[n % 16])
			drop(&x, m, ring[n % 16]);
		ring[n % 16] = add(&x, m, &cursor, n % 16);
		if (ring[n % 16] < prev)
			wraps++;
		prev = ring[n % 16];
		for (int i = 0; i < 3; i++)
			assert_int_not_equal(ring[n % 16], held[i]);
	}
	assert_true(wraps >= 3);
	for (int i = 0; i < 3; i++) {
		uint32_t slot;
		assert_true(pidx_find(&x, held[i], &slot));
		assert_int_equal(slot, 1000u + (uint32_t)i);
	}
	check_all(&x, m);
	pidx_free(&x);
	free(m);
}

static void unknown_ids_are_not_found_and_removing_them_changes_nothing(void **state)
{
	(void)state;
	struct pidx x = { 0 };
	struct model *m = calloc(1, sizeof *m);
	uint32_t slot;
	assert_false(pidx_find(&x, 7, &slot)); /* nothing allocated yet */
	pidx_remove(&x, 7);
	uint16_t cursor = 1;
	for (uint32_t i = 0; i < 6; i++)
		add(&x, m, &cursor, i);
	/* 14 shares bucket bits with a live id in a small table */
	uint16_t unknown[] = { 0, 7, 14, 9, 65535, 4 + 8 };
	for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
		assert_false(pidx_find(&x, unknown[i], &slot));
		drop(&x, m, unknown[i]);
	}
	drop(&x, m, 3);
	drop(&x, m, 3); /* the client repeating an ack */
	assert_false(pidx_find(&x, 3, &slot));
	check_all(&x, m);
	pidx_free(&x);
	free(m);
}

static void moves_follow_slots(void **state)
{
	(void)state;
	struct pidx x = { 0 };
	struct model *m = calloc(1, sizeof *m);
	uint16_t cursor = 100;
	uint16_t a = add(&x, m, &cursor, 0);
	uint16_t b = add(&x, m, &cursor, 1);
	pidx_move(&x, b, 0); /* a released, b packed into its slot */
	drop(&x, m, a);
	m->slot[b] = 0;
	check_all(&x, m);
	pidx_free(&x);
	free(m);
}

static void every_id_can_be_in_use(void **state)
{
	(void)state;
	struct pidx x = { 0 };
	struct model *m = calloc(1, sizeof *m);
	uint16_t cursor = 40000;
	for (uint32_t i = 0; i < PIDX_MAX_LIVE; i++)
		add(&x, m, &cursor, i);
	assert_int_equal(x.mask + 1, 65536);
	assert_int_equal(pidx_reserve(&x, PIDX_MAX_LIVE + 1), MOTE_EINVAL);
	check_all(&x, m);
	/* one freed in the middle is the next one out, wherever the cursor is */
	drop(&x, m, 12345);
	assert_int_equal(add(&x, m, &cursor, 7), 12345);
	pidx_free(&x);
	free(m);
}

/*
 * Random acks (any order) against a model, the number in flight held at a
 * few hundred, then a few thousand (the table grows), then back. Also checks
 * the amortised bound: with the table at least twice the ids in use, the
 * cursor moves at most twice per id handed out, plus one sweep of the table.
 */
static void random_traffic_matches_the_model(void **state)
{
	(void)state;
	struct pidx x = { 0 };
	struct model *m = calloc(1, sizeof *m);
	uint16_t *live = malloc(65536 * sizeof *live);
	uint32_t n_live = 0;
	uint16_t cursor = 1;
	uint64_t steps = 0, allocs = 0;
	const uint32_t targets[] = { 200, 3000, 50, 3000 };
	for (uint32_t phase = 0; phase < 4; phase++) {
		for (uint32_t round = 0; round < 100000; round++) {
			if (n_live >= targets[phase]) { /* an ack for any of them */
				uint32_t i = rnd() % n_live;
				drop(&x, m, live[i]);
				live[i] = live[--n_live];
			}
			if (n_live < targets[phase]) {
				uint16_t before = cursor;
				live[n_live++] = add(&x, m, &cursor, round);
				steps += (uint16_t)(cursor - before);
				allocs++;
			}
		}
		check_all(&x, m);
	}
	if (steps > 2 * allocs + x.mask + 1)
		fail_msg("cursor moved %llu times for %llu ids", (unsigned long long)steps,
			 (unsigned long long)allocs);
	pidx_free(&x);
	free(live);
	free(m);
}

/*
 * The worst case for the cursor: many ids never acked, and one at a time
 * going out and coming back. Every sweep skips all the held ones; the table
 * being at least twice their number keeps that to under one skip per id
 * handed out. (A table only just large enough would take ~3.7 moves per id
 * here.)
 */
static void held_ids_are_skipped_cheaply(void **state)
{
	(void)state;
	struct pidx x = { 0 };
	struct model *m = calloc(1, sizeof *m);
	uint16_t cursor = 1;
	for (uint32_t i = 0; i < 3000; i++)
		add(&x, m, &cursor, i);
	uint64_t steps = 0, allocs = 0;
	for (uint32_t n = 0; n < 200000; n++) {
		uint16_t before = cursor;
		uint16_t id = add(&x, m, &cursor, 3000);
		steps += (uint16_t)(cursor - before);
		allocs++;
		drop(&x, m, id);
	}
	if (steps > 2 * allocs)
		fail_msg("cursor moved %llu times for %llu ids", (unsigned long long)steps,
			 (unsigned long long)allocs);
	check_all(&x, m);
	pidx_free(&x);
	free(m);
}

/* ---- pidx_add_id: restoring a window after a restart ---------------------------- */

static void add_given(struct pidx *x, struct model *m, uint16_t id, uint32_t slot)
{
	enum mote_err err = pidx_add_id(x, id, slot);
	if (err != MOTE_OK)
		fail_msg("pidx_add_id(%u): %s", id, mote_strerror(err));
	assert_false(m->used[id]);
	m->used[id] = true;
	m->slot[id] = slot;
	m->live++;
	assert_int_equal(x->live, m->live);
	/* the bound the cursor's amortised cost rests on (see pidx.h) */
	uint32_t want = 2 * x->live < 65536 ? 2 * x->live : 65536;
	if (x->mask + 1 < want)
		fail_msg("%u buckets for %u ids", x->mask + 1, x->live);
}

/* An id already in use, or 0, is refused and changes nothing. */
static void refused(struct pidx *x, const struct model *m, uint16_t id)
{
	uint32_t buckets = x->b ? x->mask + 1 : 0, live = x->live;
	assert_int_equal(pidx_add_id(x, id, 0xabcdef), MOTE_EINVAL);
	assert_int_equal(x->b ? x->mask + 1 : 0, buckets);
	assert_int_equal(x->live, live);
	uint32_t slot = 0;
	if (id) {
		assert_int_equal(pidx_find(x, id, &slot), m->used[id]);
		if (m->used[id])
			assert_int_equal(slot, m->slot[id]);
	}
}

/*
 * 1, 9, 17, 33, ... 1 + 32768: each shares its low bits with the ones
 * before in any smaller table, so every one makes the table grow, up to one
 * bucket per id.
 */
static void add_id_grows_past_colliding_low_bits(void **state)
{
	(void)state;
	struct pidx x = { 0 };
	struct model *m = calloc(1, sizeof *m);
	refused(&x, m, 0); /* before any table */
	assert_null(x.b);
	add_given(&x, m, 1, 100);
	for (unsigned k = 3; k <= 15; k++) {
		uint32_t before = x.mask + 1;
		uint16_t id = (uint16_t)(1u + (1u << k));
		add_given(&x, m, id, 100 + k);
		assert_true(x.mask + 1 > before);
		assert_int_equal(id & x.mask, id); /* its own bucket now */
		check_all(&x, m);
	}
	assert_int_equal(x.mask + 1, 65536);
	assert_int_equal(x.live, 14);
	/* in use (also one differing from another only in bit 15) and 0 */
	refused(&x, m, 1);
	refused(&x, m, 1 + 32768);
	refused(&x, m, 9);
	refused(&x, m, 0);
	check_all(&x, m);

	/* The cursor goes round them; removals and re-adds stay consistent. */
	uint16_t cursor = 1;
	assert_int_equal(add(&x, m, &cursor, 7), 2);
	cursor = 9;
	assert_int_equal(add(&x, m, &cursor, 8), 10);
	cursor = 32769;
	assert_int_equal(add(&x, m, &cursor, 9), 32770);
	drop(&x, m, 17);
	drop(&x, m, 17);
	uint32_t slot;
	assert_false(pidx_find(&x, 17, &slot));
	add_given(&x, m, 17, 5);
	pidx_move(&x, 17, 6);
	m->slot[17] = 6;
	cursor = 17;
	assert_int_equal(add(&x, m, &cursor, 10), 18);
	check_all(&x, m);
	pidx_free(&x);
	assert_int_equal(x.live, 0);
	assert_false(pidx_find(&x, 1, &slot));
	/* usable again after free */
	memset(m, 0, sizeof *m);
	add_given(&x, m, 65535, 1);
	check_all(&x, m);
	pidx_free(&x);
	free(m);
}

/* Ids restored next to ones handed out by the cursor: neither kind is
 * handed out twice, and the cursor skips restored ids. */
static void add_id_mixes_with_add(void **state)
{
	(void)state;
	struct pidx x = { 0 };
	struct model *m = calloc(1, sizeof *m);
	uint16_t cursor = 1;
	for (uint32_t i = 0; i < 10; i++)
		add(&x, m, &cursor, i);
	refused(&x, m, 5);
	add_given(&x, m, 11, 50);
	add_given(&x, m, 13, 51);
	add_given(&x, m, 11 + 64, 52); /* collides with 11 in a small table */
	assert_int_equal(add(&x, m, &cursor, 60), 12);
	assert_int_equal(add(&x, m, &cursor, 61), 14);
	check_all(&x, m);
	pidx_free(&x);
	free(m);
}

/* A large window restored in random order, then random traffic on it. */
static void add_id_restores_a_large_window(void **state)
{
	(void)state;
	struct pidx x = { 0 };
	struct model *m = calloc(1, sizeof *m);
	uint16_t *live = malloc(65536 * sizeof *live);
	uint32_t n_live = 0;
	while (n_live < 5000) {
		uint16_t id = (uint16_t)rnd();
		if (id == 0 || m->used[id]) {
			refused(&x, m, id);
			continue;
		}
		add_given(&x, m, id, n_live);
		live[n_live++] = id;
	}
	check_all(&x, m);
	uint16_t cursor = (uint16_t)(rnd() | 1);
	for (uint32_t round = 0; round < 100000; round++) {
		uint32_t r = rnd();
		if (r % 3 == 0 && n_live) {
			uint32_t i = rnd() % n_live;
			drop(&x, m, live[i]);
			live[i] = live[--n_live];
		} else if (r % 3 == 1) {
			live[n_live++] = add(&x, m, &cursor, round);
		} else {
			uint16_t id = (uint16_t)rnd();
			if (id == 0 || m->used[id]) {
				refused(&x, m, id);
			} else {
				add_given(&x, m, id, round);
				live[n_live++] = id;
			}
		}
		if (n_live > 20000) { /* keep the window from filling up */
			drop(&x, m, live[0]);
			live[0] = live[--n_live];
		}
	}
	check_all(&x, m);
	pidx_free(&x);
	free(live);
	free(m);
}

/* Every id restored: the table holds them all and refuses any more. */
static void add_id_every_id(void **state)
{
	(void)state;
	struct pidx x = { 0 };
	struct model *m = calloc(1, sizeof *m);
	/* a permutation of 1..65535: 7919 is odd, so i * 7919 mod 2^16 visits all */
	for (uint32_t i = 1; i <= 65535; i++)
		add_given(&x, m, (uint16_t)(i * 7919u), i);
	assert_int_equal(x.live, PIDX_MAX_LIVE);
	assert_int_equal(x.mask + 1, 65536);
	check_all(&x, m);
	refused(&x, m, 1);
	refused(&x, m, 65535);
	refused(&x, m, 0);
	assert_int_equal(pidx_reserve(&x, PIDX_MAX_LIVE), MOTE_OK);
	drop(&x, m, 4242);
	uint16_t cursor = 60000;
	assert_int_equal(add(&x, m, &cursor, 77), 4242);
	pidx_free(&x);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ids_in_order_from_the_cursor),
		cmocka_unit_test(wraps_past_65535_skipping_zero),
		cmocka_unit_test(wrapping_never_reuses_an_id_in_use),
		cmocka_unit_test(unknown_ids_are_not_found_and_removing_them_changes_nothing),
		cmocka_unit_test(moves_follow_slots),
		cmocka_unit_test(every_id_can_be_in_use),
		cmocka_unit_test(random_traffic_matches_the_model),
		cmocka_unit_test(held_ids_are_skipped_cheaply),
		cmocka_unit_test(add_id_grows_past_colliding_low_bits),
		cmocka_unit_test(add_id_mixes_with_add),
		cmocka_unit_test(add_id_restores_a_large_window),
		cmocka_unit_test(add_id_every_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
