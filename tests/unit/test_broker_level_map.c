/*
 * test_broker_level_map.c - level splitting, SipHash and the trie child table
 * (array <-> hash table shapes, removal, iteration with removal).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/level_map.h"

/* xorshift64*: deterministic test randomness. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

struct item {
	struct lm_link link;
	uint32_t idx;
	int seen;
	uint8_t key[16];
};

static struct item *make_items(const struct lm_key *k, uint32_t n)
{
	struct item *it = calloc(n, sizeof *it);
	assert_non_null(it);
	for (uint32_t i = 0; i < n; i++) {
		it[i].idx = i;
		/* index 0 gets the empty key; "k1" and "k10" share a prefix */
		int len = i == 0 ? 0 : snprintf((char *)it[i].key, sizeof it[i].key, "k%u", i);
		lm_link_init(&it[i].link, k, it[i].key, (uint32_t)len);
	}
	return it;
}

static struct item *item_of(struct lm_link *l)
{
	return LM_CONTAINER(l, struct item, link);
}

static void check_shape(const struct level_map *m)
{
	if (m->len == 0)
		return;
	if (m->cap <= LM_SMALL) {
		assert_true(m->len <= m->cap);
	} else {
		assert_int_equal(m->cap & (m->cap - 1), 0);
		assert_true((uint64_t)m->len * 4 <= (uint64_t)m->cap * 3);
	}
}

static void siphash_reference_vectors(void **state)
{
	(void)state;
	/* SipHash paper, appendix A: key 00..0f, message 00..0e */
	struct lm_key k = { 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull };
	uint8_t msg[15];
	for (int i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	assert_int_equal(lm_siphash(&k, msg, 15), 0xa129ca6149be45e5ull);
	/* first entry of the reference implementation's vectors (empty input) */
	assert_int_equal(lm_siphash(&k, msg, 0), 0x726fdb47dd0e0e31ull);
	/* keyed: another key gives another hash */
	struct lm_key k2 = { 1, 2 };
	assert_true(lm_siphash(&k2, msg, 15) != 0xa129ca6149be45e5ull);
}

static void levels_are_split_on_slash(void **state)
{
	(void)state;
	const struct {
		const char *s;
		size_t n;
	} cases[] = { { "a", 1 }, { "", 1 }, { "/", 2 }, { "/a", 2 }, { "a//b", 3 },
		      { "a/b/c/", 4 }, { "//", 3 } };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_int_equal(lvl_count((const uint8_t *)cases[i].s, strlen(cases[i].s)),
				 cases[i].n);
	const uint8_t *t = (const uint8_t *)"ab//c";
	assert_int_equal(lvl_end(t, 5, 0), 2);
	assert_int_equal(lvl_end(t, 5, 3), 3); /* the empty level */
	assert_int_equal(lvl_end(t, 5, 4), 5);
	assert_int_equal(lvl_end(t, 5, 5), 5);
	assert_true(lvl_is_plus((const uint8_t *)"+", 1));
	assert_false(lvl_is_plus((const uint8_t *)"++", 2));
	assert_true(lvl_is_hash((const uint8_t *)"#", 1));
	assert_false(lvl_is_hash((const uint8_t *)"", 0));
}

static void insert_find_remove_through_all_shapes(void **state)
{
	(void)state;
	struct lm_key k;
	lm_key_init(&k);
	const uint32_t n = 5000;
	struct item *it = make_items(&k, n);
	struct level_map m = { 0 };
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(lm_insert(&m, &it[i].link), MOTE_OK);
		assert_int_equal(m.len, i + 1);
		check_shape(&m);
		if (i + 1 == LM_SMALL)
			assert_int_equal(m.cap, LM_SMALL);
		if (i + 1 == LM_SMALL + 1)
			assert_true(m.cap > LM_SMALL);
	}
	for (uint32_t i = 0; i < n; i++)
		assert_ptr_equal(lm_find(&m, &k, it[i].key, it[i].link.klen), &it[i].link);
	assert_null(lm_find(&m, &k, (const uint8_t *)"k5000", 5));
	assert_null(lm_find(&m, &k, (const uint8_t *)"k", 1));

	/* remove in a random order; the rest stays findable */
	uint32_t *order = malloc(n * sizeof *order);
	assert_non_null(order);
	for (uint32_t i = 0; i < n; i++)
		order[i] = i;
	uint64_t seed = 0x1234567;
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(rnd(&seed) % (i + 1));
		uint32_t tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	for (uint32_t r = 0; r < n; r++) {
		struct item *gone = &it[order[r]];
		lm_remove(&m, &gone->link);
		assert_int_equal(m.len, n - r - 1);
		check_shape(&m);
		assert_null(lm_find(&m, &k, gone->key, gone->link.klen));
		if (m.len > LM_SMALL) /* shrinks keep load at least 1/8 */
			assert_true((uint64_t)m.len * 8 >= m.cap);
		if (m.len > 0 && m.len <= LM_SMALL / 2)
			assert_true(m.cap <= LM_SMALL);
		if (r % 97 == 0 || m.len < 40)
			for (uint32_t q = r + 1; q < n; q++)
				assert_ptr_equal(lm_find(&m, &k, it[order[q]].key,
							 it[order[q]].link.klen),
						 &it[order[q]].link);
	}
	assert_null(m.slots);
	assert_int_equal(m.cap, 0);
	free(order);
	free(it);
}

/* Iterating while removing returns every entry exactly once, for many keys
 * (so tables with clusters wrapping around the end are covered). */
static void iteration_sees_each_entry_once_while_removing(void **state)
{
	(void)state;
	const uint32_t sizes[] = { 0, 1, 2, 5, 8, 9, 12, 13, 24, 47, 48, 96, 700 };
	uint64_t seed = 99;
	for (int round = 0; round < 200; round++) {
		struct lm_key k = { rnd(&seed), rnd(&seed) };
		for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
			uint32_t n = sizes[si];
			struct item *it = make_items(&k, n ? n : 1);
			struct level_map m = { 0 };
			for (uint32_t i = 0; i < n; i++)
				assert_int_equal(lm_insert(&m, &it[i].link), MOTE_OK);
			uint32_t mod = 2 + (uint32_t)(round % 3); /* drop every 2nd, 3rd or 4th */
			if (round % 5 == 0)
				mod = 1; /* drop everything */
			struct lm_iter iter;
			struct lm_link *l;
			uint32_t visits = 0, removed = 0;
			lm_iter_init(&m, &iter);
			while ((l = lm_iter_next(&m, &iter))) {
				struct item *x = item_of(l);
				x->seen++;
				visits++;
				if (x->idx % mod == 0) {
					lm_iter_remove(&m, &iter);
					removed++;
				}
			}
			assert_int_equal(visits, n);
			for (uint32_t i = 0; i < n; i++)
				assert_int_equal(it[i].seen, 1);
			assert_int_equal(m.len, n - removed);
			lm_shrink(&m);
			check_shape(&m);
			for (uint32_t i = 0; i < n; i++) {
				struct lm_link *f = lm_find(&m, &k, it[i].key, it[i].link.klen);
				if (i % mod == 0)
					assert_null(f);
				else
					assert_ptr_equal(f, &it[i].link);
			}
			if (m.len == 0)
				assert_null(m.slots);
			lm_release(&m);
			free(it);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(siphash_reference_vectors),
		cmocka_unit_test(levels_are_split_on_slash),
		cmocka_unit_test(insert_find_remove_through_all_shapes),
		cmocka_unit_test(iteration_sees_each_entry_once_while_removing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
