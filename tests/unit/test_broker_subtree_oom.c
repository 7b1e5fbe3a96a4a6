/*
 * test_broker_subtree_oom.c - allocation-failure injection for the
 * subscription trie: every allocation of subtree_add, in turn, fails; the
 * add must return MOTE_ENOMEM and leave the tree as it was (ASan reports any
 * leak of the half-built parts). Removal paths only shrink memory, so a
 * failure there must not change their result. Matching allocates only for
 * its cache (entries, the slot array): every one of those allocations, in
 * turn, fails, and the matches must report exactly what a tree without a
 * cache reports, in the same order; a cache hit allocates nothing.
 *
 * How: this file compiles its own copy of subtree.c, trie.c and level_map.c
 * with malloc/calloc/realloc redirected to a counting wrapper (oom_inject.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oom_inject.h"
#include "broker/level_map.c"
#include "broker/trie.c"
#include "broker/subtree.c"
#undef malloc
#undef calloc
#undef realloc

struct session {
	int id;
};

struct probe {
	uint32_t plain[64];
	size_t nplain, nshared;
};

static void on_hit(void *ctx, struct session *s, const struct sub_opts *o, bool shared)
{
	struct probe *p = ctx;
	(void)s;
	if (shared) {
		p->nshared++;
	} else {
		assert_true(p->nplain < 64);
		p->plain[p->nplain++] = o->sub_id;
	}
}

static const char *const probes[] = { "a/b", "a/b/c", "f/3", "f/x", "g/h", "$SYS/q",
				      "n/e/w", "deep/0/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18" };
#define NPROBES (sizeof probes / sizeof probes[0])

/* What the tree looks like from outside: counts and, per probe topic, the
 * plain subscriptions (order-free: summed and counted) and shared hits. */
struct snap {
	size_t count, nodes;
	size_t nplain[NPROBES], nshared[NPROBES];
	uint64_t sum[NPROBES];
};

static void snapshot(struct subtree *t, struct snap *s)
{
	memset(s, 0, sizeof *s);
	s->count = subtree_count(t);
	s->nodes = subtree_node_count(t);
	for (size_t i = 0; i < NPROBES; i++) {
		struct probe p = { .nplain = 0 };
		subtree_match(t, (const uint8_t *)probes[i], strlen(probes[i]), on_hit, NULL, &p);
		s->nplain[i] = p.nplain;
		s->nshared[i] = p.nshared;
		for (size_t k = 0; k < p.nplain; k++)
			s->sum[i] += p.plain[k] * 2654435761u;
	}
}

static void assert_same(const struct snap *a, const struct snap *b)
{
	assert_int_equal(a->count, b->count);
	assert_int_equal(a->nodes, b->nodes);
	for (size_t i = 0; i < NPROBES; i++) {
		assert_int_equal(a->nplain[i], b->nplain[i]);
		assert_int_equal(a->nshared[i], b->nshared[i]);
		assert_int_equal(a->sum[i], b->sum[i]);
	}
}

static enum mote_err add(struct subtree *t, const char *group, const char *filter,
			 struct session *s, uint32_t sub_id)
{
	struct sub_opts o = { .qos = 1, .sub_id = sub_id };
	return subtree_add(t, (const uint8_t *)group, group ? strlen(group) : 0,
			   (const uint8_t *)filter, strlen(filter), s, &o, NULL);
}

static enum mote_err del(struct subtree *t, const char *filter, struct session *s)
{
	return subtree_remove(t, NULL, 0, (const uint8_t *)filter, strlen(filter), s);
}

static struct session sess[8] = { { 0 }, { 1 }, { 2 }, { 3 }, { 4 }, { 5 }, { 6 }, { 7 } };

static struct subtree *base_tree(void)
{
	struct subtree *t = subtree_new();
	assert_non_null(t);
	assert_int_equal(add(t, NULL, "a/b", &sess[0], 1), MOTE_OK);
	assert_int_equal(add(t, NULL, "a/+", &sess[1], 2), MOTE_OK);
	assert_int_equal(add(t, NULL, "#", &sess[2], 3), MOTE_OK);
	assert_int_equal(add(t, "g", "g/h", &sess[3], 4), MOTE_OK);
	char f[16];
	for (int i = 0; i < 12; i++) { /* 12 children: a hash table at its load limit */
		snprintf(f, sizeof f, "f/%d", i);
		assert_int_equal(add(t, NULL, f, &sess[4], 10 + (uint32_t)i), MOTE_OK);
	}
	return t;
}

/* The adds under test; each grows something different. */
static enum mote_err op_add(struct subtree *t, int which)
{
	switch (which) {
	case 0:
		return add(t, NULL, "n/e/w", &sess[5], 50); /* new chain */
	case 1:
		return add(t, NULL, "a/b", &sess[5], 51); /* existing node, vector grows */
	case 2:
		return add(t, "k", "a/b", &sess[5], 52); /* new group on existing node */
	case 3:
		return add(t, "g", "g/h", &sess[5], 53); /* new member, members grow */
	case 4:
		return add(t, NULL, "f/x", &sess[5], 54); /* 13th child: table doubles */
	case 5: /* 20 levels: the frame stack grows, plus a long chain */
		return add(t, "k", "deep/0/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/+", &sess[5],
			   55);
	case 6:
		return add(t, NULL, "$SYS/#", &sess[5], 56); /* chain ending in '#' */
	default:
		return add(t, "g", "f/3", &sess[6], 57); /* group on a table child */
	}
}

static void failed_add_leaves_tree_unchanged(void **state)
{
	(void)state;
	for (int which = 0; which < 8; which++) {
		for (int persist = 0; persist < 2; persist++) {
			long n = 0;
			for (;; n++) {
				struct subtree *t = base_tree();
				struct snap before, after;
				snapshot(t, &before);
				arm(n, persist);
				enum mote_err err = op_add(t, which);
				long used = fault.calls;
				disarm();
				if (err == MOTE_OK) {
					assert_true(used <= n); /* no failure was injected */
					snapshot(t, &after);
					assert_int_equal(after.count, before.count + 1);
					subtree_free(t);
					break;
				}
				assert_int_equal(err, MOTE_ENOMEM);
				snapshot(t, &after);
				assert_same(&before, &after);
				/* and it still works afterwards */
				assert_int_equal(op_add(t, which), MOTE_OK);
				subtree_free(t);
			}
			assert_true(n >= 1); /* every op allocates something */
		}
	}
}

static void new_tree_fails_cleanly(void **state)
{
	(void)state;
	for (long n = 0;; n++) {
		arm(n, true);
		struct subtree *t = subtree_new();
		disarm();
		if (t) {
			subtree_free(t);
			assert_true(n >= 2);
			break;
		}
	}
}

/* Removals only give memory back; a failed shrink must not change results. */
static void removal_survives_failed_shrinks(void **state)
{
	(void)state;
	struct session big[40];
	for (int i = 0; i < 40; i++)
		big[i].id = 100 + i;
	for (long n = 0; n < 60; n++) {
		struct subtree *t = base_tree();
		char f[16];
		for (int i = 0; i < 40; i++) {
			assert_int_equal(add(t, NULL, "a/b", &big[i], 100), MOTE_OK);
			snprintf(f, sizeof f, "f/%d", i);
			assert_int_equal(add(t, NULL, f, &sess[6], 200), MOTE_OK);
		}
		arm(n, n % 2 == 0);
		for (int i = 0; i < 40; i++) { /* the f table shrinks as it empties */
			snprintf(f, sizeof f, "f/%d", i);
			assert_int_equal(del(t, f, &sess[6]), MOTE_OK);
		}
		for (int i = 0; i < 36; i++) /* 41 -> 5 entries: the vector shrinks */
			assert_int_equal(del(t, "a/b", &big[i]), MOTE_OK);
		subtree_remove_all(t, &sess[4]); /* the f/0..11 of the base tree */
		disarm();
		/* left: a/b (sess 0 and big 36..39), a/+, #, g/h in g */
		assert_int_equal(subtree_count(t), 8);
		assert_int_equal(subtree_node_count(t), 6);
		struct probe p = { .nplain = 0 };
		subtree_match(t, (const uint8_t *)"a/b", 3, on_hit, NULL, &p);
		assert_int_equal(p.nplain, 7);
		p.nplain = 0;
		subtree_match(t, (const uint8_t *)"f/3", 3, on_hit, NULL, &p);
		assert_int_equal(p.nplain, 1); /* only '#' */
		subtree_free(t);
	}
}

/* Every report of a match, in order: session, subscription id, kind. */
struct seq {
	uint64_t v[4096];
	size_t n;
};

static void on_seq(void *ctx, struct session *s, const struct sub_opts *o, bool shared)
{
	struct seq *q = ctx;
	assert_true(q->n < 4096);
	q->v[q->n++] = (uint64_t)s->id << 33 | (uint64_t)o->sub_id << 1 | shared;
}

/* The probes, then 40 more topics (the slot array grows twice), twice over. */
static void match_all(struct subtree *t, struct seq *q)
{
	char topic[16];
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < NPROBES; i++)
			subtree_match(t, (const uint8_t *)probes[i], strlen(probes[i]), on_seq, NULL,
				      q);
		for (int i = 0; i < 40; i++) {
			snprintf(topic, sizeof topic, "f/%d", i);
			subtree_match(t, (const uint8_t *)topic, strlen(topic), on_seq, NULL, q);
		}
	}
}

/* White box (this file compiles subtree.c): every entry is found from its
 * home slot, the counts add up, the limits and the load bound hold. */
static void check_cache_table(const struct subtree *t)
{
	const struct mcache *c = &t->cache;
	uint32_t n = 0;
	size_t bytes = 0;
	for (uint32_t i = 0; i < c->cap; i++) {
		const struct mc_entry *e = c->slots[i].e;
		if (!e)
			continue;
		n++;
		bytes += e->size;
		uint32_t slot = UINT32_MAX;
		assert_ptr_equal(mc_find(c, c->slots[i].hash, mc_topic(e), e->tlen, &slot), e);
		assert_int_equal(slot, i);
		/* the hash in the slot is the topic's */
		assert_true(c->slots[i].hash == lm_siphash(&t->trie.key, mc_topic(e), e->tlen));
	}
	assert_int_equal(n, c->len);
	assert_int_equal(bytes, c->bytes);
	assert_true(c->len <= c->cfg.entries && c->bytes <= c->cfg.bytes);
	assert_true(c->len * 2 <= c->cap || c->cap == 0);
}

/* Two trees given the same subscriptions, one with the cache off. */
static void twin_trees(struct subtree **t, struct subtree **u)
{
	*t = base_tree();
	*u = base_tree();
	subtree_cache_config(*u, &(struct subtree_cache_cfg){ .entries = 0 });
	assert_int_equal(op_add(*t, 5), MOTE_OK); /* a shared group on a deep '+' */
	assert_int_equal(op_add(*u, 5), MOTE_OK);
	assert_int_equal(add(*t, "g", "f/+", &sess[7], 60), MOTE_OK);
	assert_int_equal(add(*u, "g", "f/+", &sess[7], 60), MOTE_OK);
	assert_int_equal(add(*t, "g", "f/+", &sess[6], 61), MOTE_OK); /* round robin of 2 */
	assert_int_equal(add(*u, "g", "f/+", &sess[6], 61), MOTE_OK);
}

static void match_survives_failed_cache_allocations(void **state)
{
	(void)state;
	static struct seq got, want;
	/* The base tree's walks are cheap: min_cost 0 so they are cached at all.
	 * Every topic on its first miss; then 8 entries (the clock evicts while
	 * failing); then on the second miss (the first-miss bitmap allocates). */
	const struct subtree_cache_cfg cfgs[3] = {
		{ .entries = 4096, .bytes = 1 << 20, .admit_first = true },
		{ .entries = 8, .bytes = 1 << 20, .admit_first = true },
		{ .entries = 4096, .bytes = 1 << 20 },
	};
	for (int k = 0; k < 3; k++) {
		bool small = cfgs[k].entries == 8;
		for (int persist = 0; persist < 2; persist++) {
			long n = 0;
			for (;; n++) {
				struct subtree *t, *u;
				twin_trees(&t, &u);
				subtree_cache_config(t, &cfgs[k]);
				got.n = want.n = 0;
				arm(n, persist);
				match_all(t, &got);
				long used = fault.calls;
				match_all(u, &want); /* no cache: allocates nothing */
				assert_int_equal(fault.calls, used);
				disarm();
				assert_int_equal(got.n, want.n);
				for (size_t i = 0; i < want.n; i++)
					assert_int_equal(got.v[i], want.v[i]);
				check_cache_table(t);
				struct subtree_cache_stats st;
				subtree_cache_stats(t, &st);
				if (small && used <= n) /* the run without failures */
					assert_true(st.evicted > 0);
				if (persist && n == 0)
					assert_int_equal(st.entries, 0); /* nothing could be cached */
				subtree_free(t);
				subtree_free(u);
				if (used <= n) /* no failure was injected: every one was tried */
					break;
			}
			assert_true(n >= 3); /* slot array, then entries, then growth */
		}
	}
}

static void cache_hit_does_not_allocate(void **state)
{
	(void)state;
	struct subtree *t = base_tree();
	assert_int_equal(op_add(t, 5), MOTE_OK);
	subtree_cache_config(t, &(struct subtree_cache_cfg){ .entries = 4096, .bytes = 1 << 20,
							      .admit_first = true });
	struct probe p = { .nplain = 0 };
	for (size_t i = 0; i < NPROBES; i++) /* fills the cache */
		subtree_match(t, (const uint8_t *)probes[i], strlen(probes[i]), on_hit, NULL, &p);
	struct subtree_cache_stats before, after;
	subtree_cache_stats(t, &before);
	assert_int_equal(before.entries, NPROBES);
	arm(0, true); /* any allocation would fail, and be counted */
	for (size_t i = 0; i < NPROBES; i++)
		subtree_match(t, (const uint8_t *)probes[i], strlen(probes[i]), on_hit, NULL, &p);
	long used = fault.calls;
	disarm();
	assert_int_equal(used, 0);
	subtree_cache_stats(t, &after);
	assert_int_equal(after.hits, before.hits + NPROBES);
	assert_int_equal(after.misses, before.misses);
	subtree_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(failed_add_leaves_tree_unchanged),
		cmocka_unit_test(new_tree_fails_cleanly),
		cmocka_unit_test(removal_survives_failed_shrinks),
		cmocka_unit_test(match_survives_failed_cache_allocations),
		cmocka_unit_test(cache_hit_does_not_allocate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
