/*
 * test_broker_subtree_cache.c - the subscription trie's match cache.
 *
 * Fixed cases: a repeat is a hit; a subscriber added to or removed from an
 * existing node (even one no filter ended at before) is seen without
 * invalidation; creating and freeing nodes invalidates; shared groups keep
 * rotating per message; the '$' rule; the entry, byte, topic-length and
 * node-count limits; the clock keeps a hot topic.
 *
 * Random: long add / remove / remove-all / match sequences drive a cached
 * tree (under several limits) and a twin with the cache off through the same
 * operations; every match must give the same calls in the same order
 * (sessions, options, shared picks), and the set of plain hits must agree
 * with the brute-force matcher of topic_oracle.h. Topics come from a small
 * pool so the same topic is matched again and again across structural
 * changes; the test counts those re-matches to prove it.
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

#include "broker/subtree.h"
#include "subtree_record.h"
#include "topic_oracle.h"

static enum mote_err add(struct subtree *t, const char *group, const char *filter,
			 struct session *s, uint32_t sub_id)
{
	struct sub_opts o = { .qos = (uint8_t)(sub_id % 3), .sub_id = sub_id };
	return subtree_add(t, (const uint8_t *)group, group ? strlen(group) : 0,
			   (const uint8_t *)filter, strlen(filter), s, &o, NULL);
}

static enum mote_err del(struct subtree *t, const char *group, const char *filter,
			 struct session *s)
{
	return subtree_remove(t, (const uint8_t *)group, group ? strlen(group) : 0,
			      (const uint8_t *)filter, strlen(filter), s);
}

static struct subtree_cache_stats stats(const struct subtree *t)
{
	struct subtree_cache_stats st;
	subtree_cache_stats(t, &st);
	return st;
}

/* The sub_ids of r, in order, as "1,2,3" (compact to assert on). */
static const char *ids(const struct rec *r, char *buf, size_t cap)
{
	size_t used = 0;
	buf[0] = 0;
	for (size_t i = 0; i < r->n && used < cap; i++)
		used += (size_t)snprintf(buf + used, cap - used, "%s%u", i ? "," : "",
					 (unsigned)r->h[i].sub_id);
	return buf;
}

#define ASSERT_IDS(r, want)                                                                 \
	do {                                                                                \
		char buf_[256];                                                             \
		assert_string_equal(ids((r), buf_, sizeof buf_), (want));                   \
	} while (0)

/* Every topic cached on its first miss, however cheap its walk, so the
 * fixed cases can count hits exactly; the defaults have their own test. */
static void eager(struct subtree *t, uint32_t entries, size_t bytes)
{
	struct subtree_cache_cfg cfg = { .entries = entries, .bytes = bytes, .admit_first = true };
	subtree_cache_config(t, &cfg);
}

static struct subtree *new_eager(void)
{
	struct subtree *t = subtree_new();
	assert_non_null(t);
	eager(t, SUBTREE_CACHE_DEFAULT.entries, SUBTREE_CACHE_DEFAULT.bytes);
	return t;
}

/* ---- fixed cases ---- */

static void repeat_is_a_hit(void **state)
{
	(void)state;
	struct subtree *t = new_eager();
	struct session a = { 1 };
	assert_int_equal(add(t, NULL, "a/b", &a, 1), MOTE_OK);
	assert_int_equal(add(t, NULL, "a/+", &a, 2), MOTE_OK);
	assert_int_equal(add(t, NULL, "#", &a, 3), MOTE_OK);
	struct rec r = { 0 };
	match(t, "a/b", &r);
	ASSERT_IDS(&r, "3,1,2"); /* walk order: '#' at the root, exact, then '+' */
	struct subtree_cache_stats st = stats(t);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.entries, 1);
	/* 16-byte header, 3 node pointers, 3 topic bytes */
	assert_int_equal(st.bytes, 16 + 3 * sizeof(void *) + 3);
	for (int i = 0; i < 5; i++) {
		match(t, "a/b", &r);
		ASSERT_IDS(&r, "3,1,2");
	}
	st = stats(t);
	assert_int_equal(st.hits, 5);
	assert_int_equal(st.misses, 1);
	match(t, "a/c", &r);
	ASSERT_IDS(&r, "3,2");
	match(t, "x", &r);
	ASSERT_IDS(&r, "3");
	st = stats(t);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.misses, 3);
	subtree_free(t);
	free(r.h);
}

/* Subscribers come and go on existing nodes: no invalidation, seen live. */
static void payload_changes_are_live(void **state)
{
	(void)state;
	struct subtree *t = new_eager();
	struct session a = { 1 }, b = { 2 }, c = { 3 };
	assert_int_equal(add(t, NULL, "a/b", &a, 1), MOTE_OK);
	struct rec r = { 0 };
	match(t, "a/b", &r);
	ASSERT_IDS(&r, "1");
	match(t, "a", &r); /* reaches node "a", which holds nothing yet */
	assert_int_equal(r.n, 0);
	size_t nodes = subtree_node_count(t);

	assert_int_equal(add(t, NULL, "a/b", &b, 2), MOTE_OK);
	assert_int_equal(add(t, "g", "a/b", &c, 3), MOTE_OK);
	assert_int_equal(add(t, NULL, "a", &c, 4), MOTE_OK); /* node "a" gets its first */
	assert_int_equal(subtree_node_count(t), nodes);      /* no node was created */
	struct subtree_cache_stats st0 = stats(t);
	match(t, "a/b", &r);
	ASSERT_IDS(&r, "1,2,3");
	assert_true(r.h[2].shared);
	match(t, "a", &r);
	ASSERT_IDS(&r, "4");
	struct subtree_cache_stats st1 = stats(t);
	assert_int_equal(st1.hits, st0.hits + 2); /* both answered by the cache */
	assert_int_equal(st1.misses, st0.misses);

	/* options replaced in place are seen too */
	struct sub_opts o = { .qos = 2, .sub_id = 9 };
	assert_int_equal(subtree_add(t, NULL, 0, (const uint8_t *)"a/b", 3, &b, &o, NULL),
			 MOTE_OK);
	match(t, "a/b", &r);
	ASSERT_IDS(&r, "1,9,3");
	assert_int_equal(r.h[1].qos, 2);

	assert_int_equal(del(t, NULL, "a/b", &a), MOTE_OK);
	assert_int_equal(del(t, NULL, "a", &c), MOTE_OK);
	assert_int_equal(subtree_node_count(t), nodes); /* b and g keep the nodes */
	match(t, "a/b", &r);
	ASSERT_IDS(&r, "9,3");
	match(t, "a", &r);
	assert_int_equal(r.n, 0);
	assert_int_equal(stats(t).hits, st1.hits + 3);
	subtree_free(t);
	free(r.h);
}

/* New and freed nodes change what matches: the cache must follow. */
static void structural_changes_invalidate(void **state)
{
	(void)state;
	struct subtree *t = new_eager();
	struct session a = { 1 }, b = { 2 };
	assert_int_equal(add(t, NULL, "a/b", &a, 1), MOTE_OK);
	struct rec r = { 0 };
	match(t, "a/b", &r);
	match(t, "a/b", &r);
	ASSERT_IDS(&r, "1");
	assert_int_equal(stats(t).hits, 1);

	assert_int_equal(add(t, NULL, "a/+", &b, 2), MOTE_OK); /* new node */
	match(t, "a/b", &r);
	ASSERT_IDS(&r, "1,2");
	assert_int_equal(stats(t).hits, 1); /* stale: walked again */
	match(t, "a/b", &r);
	ASSERT_IDS(&r, "1,2");
	assert_int_equal(stats(t).hits, 2);

	assert_int_equal(add(t, NULL, "+/#", &b, 3), MOTE_OK); /* two new nodes */
	match(t, "a/b", &r);
	ASSERT_IDS(&r, "1,2,3");
	assert_int_equal(add(t, NULL, "zzz", &b, 4), MOTE_OK); /* elsewhere: still stale */
	match(t, "a/b", &r);
	ASSERT_IDS(&r, "1,2,3");

	/* freed nodes: under ASan a stale pointer would be a use after free */
	assert_int_equal(del(t, NULL, "a/+", &b), MOTE_OK);
	match(t, "a/b", &r);
	ASSERT_IDS(&r, "1,3");
	assert_int_equal(del(t, NULL, "+/#", &b), MOTE_OK);
	match(t, "a/b", &r);
	ASSERT_IDS(&r, "1");
	subtree_remove_all(t, &a); /* frees a and a/b */
	match(t, "a/b", &r);
	assert_int_equal(r.n, 0);
	assert_int_equal(add(t, NULL, "a/b", &b, 5), MOTE_OK); /* same path, new nodes */
	match(t, "a/b", &r);
	ASSERT_IDS(&r, "5");
	match(t, "a/b", &r);
	ASSERT_IDS(&r, "5");
	/* refreshed in place or replaced, the topic is held once */
	assert_int_equal(stats(t).entries, 1);
	subtree_free(t);
	free(r.h);
}

static void shared_groups_rotate_through_cache(void **state)
{
	(void)state;
	struct subtree *t = new_eager();
	struct session s[5] = { { 0 }, { 1 }, { 2 }, { 3 }, { 4 } };
	for (int i = 1; i <= 3; i++)
		assert_int_equal(add(t, "g", "t/+", &s[i], (uint32_t)i), MOTE_OK);
	struct rec r = { 0 };
	for (int m = 0; m < 9; m++) {
		match(t, "t/x", &r);
		assert_int_equal(r.n, 1);
		assert_int_equal(r.h[0].id, 1 + m % 3);
	}
	assert_int_equal(stats(t).hits, 8);
	/* the eligible filter is read at match time too */
	bool off[5] = { false, false, true, false, false };
	r.ineligible = off;
	const int seq[4] = { 1, 3, 1, 3 };
	for (int m = 0; m < 4; m++) {
		match(t, "t/x", &r);
		assert_int_equal(r.h[0].id, seq[m]);
	}
	r.ineligible = NULL;
	/* a new member joins the rotation without a new node */
	assert_int_equal(add(t, "g", "t/+", &s[4], 4), MOTE_OK);
	int got[5] = { 0 };
	for (int m = 0; m < 8; m++) {
		match(t, "t/y", &r);
		got[r.h[0].id]++;
	}
	assert_int_equal(got[1] + got[2] + got[3] + got[4], 8);
	for (int i = 1; i <= 4; i++)
		assert_int_equal(got[i], 2);
	assert_int_equal(stats(t).hits, 8 + 4 + 7);
	subtree_free(t);
	free(r.h);
}

static void dollar_rule_through_cache(void **state)
{
	(void)state;
	struct subtree *t = new_eager();
	struct session a = { 1 };
	assert_int_equal(add(t, NULL, "#", &a, 1), MOTE_OK);
	assert_int_equal(add(t, NULL, "+/x", &a, 2), MOTE_OK);
	assert_int_equal(add(t, NULL, "$SYS/#", &a, 3), MOTE_OK);
	assert_int_equal(add(t, NULL, "$SYS/x/#", &a, 4), MOTE_OK);
	struct rec r = { 0 };
	for (int i = 0; i < 3; i++) {
		match(t, "$SYS/x", &r);
		ASSERT_IDS(&r, "3,4");
		match(t, "SYS/x", &r);
		ASSERT_IDS(&r, "1,2");
		match(t, "$SYS", &r);
		ASSERT_IDS(&r, "3");
	}
	assert_int_equal(stats(t).hits, 6);
	subtree_free(t);
	free(r.h);
}

static void limits_hold(void **state)
{
	(void)state;
	struct subtree *t = new_eager();
	struct session a = { 1 };
	assert_int_equal(add(t, NULL, "d/+", &a, 1), MOTE_OK);
	struct rec r = { 0 };
	char topic[400];

	/* entries */
	eager(t, 4, SUBTREE_CACHE_DEFAULT.bytes);
	for (int i = 0; i < 10; i++) {
		snprintf(topic, sizeof topic, "d/%d", i);
		match(t, topic, &r);
		ASSERT_IDS(&r, "1");
	}
	struct subtree_cache_stats st = stats(t);
	assert_int_equal(st.entries, 4);
	assert_int_equal(st.evicted, 6);
	assert_int_equal(st.misses, 10);

	/* bytes: each "d/N" entry is 16 + 1 pointer + 3 bytes */
	size_t one = 16 + sizeof(void *) + 3;
	eager(t, 100, 3 * one + one / 2);
	assert_int_equal(stats(t).entries, 0); /* a new limit empties the cache */
	for (int i = 0; i < 10; i++) {
		snprintf(topic, sizeof topic, "d/%d", i);
		match(t, topic, &r);
		ASSERT_IDS(&r, "1");
	}
	st = stats(t);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.bytes, 3 * one);
	eager(t, 100, one - 1); /* no entry fits: nothing cached */
	match(t, "d/1", &r);
	match(t, "d/1", &r);
	ASSERT_IDS(&r, "1");
	assert_int_equal(stats(t).entries, 0);
	assert_int_equal(stats(t).hits, 0);

	/* long topics are walked, not cached */
	eager(t, SUBTREE_CACHE_DEFAULT.entries, SUBTREE_CACHE_DEFAULT.bytes);
	memset(topic, 'x', sizeof topic);
	memcpy(topic, "d/", 2);
	topic[256] = 0; /* 256 bytes: the longest cached */
	match(t, topic, &r);
	ASSERT_IDS(&r, "1");
	assert_int_equal(stats(t).entries, 1);
	topic[256] = 'x';
	topic[257] = 0;
	uint64_t misses = stats(t).misses;
	match(t, topic, &r);
	match(t, topic, &r);
	ASSERT_IDS(&r, "1");
	st = stats(t);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.misses, misses); /* not cacheable: not a miss either */
	assert_int_equal(st.hits, 0);

	/* off */
	eager(t, 0, SUBTREE_CACHE_DEFAULT.bytes);
	match(t, "d/1", &r);
	match(t, "d/1", &r);
	ASSERT_IDS(&r, "1");
	st = stats(t);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.hits, 0);
	subtree_free(t);
	free(r.h);
}

/* A topic reaching more than 32 nodes is walked every time, correctly. */
static void many_nodes_not_cached(void **state)
{
	(void)state;
	struct subtree *t = new_eager();
	struct session a = { 1 };
	/* every mix of exact and '+' over 6 levels: 64 filters match a/b/c/d/e/f */
	const char *lv = "abcdef";
	char f[16];
	for (uint32_t m = 0; m < 64; m++) {
		for (int i = 0; i < 6; i++) {
			f[2 * i] = m & (1u << i) ? '+' : lv[i];
			f[2 * i + 1] = '/';
		}
		f[11] = 0;
		assert_int_equal(add(t, NULL, f, &a, m + 1), MOTE_OK);
	}
	struct rec r = { 0 };
	for (int k = 0; k < 2; k++) {
		match(t, "a/b/c/d/e/f", &r);
		assert_int_equal(r.n, 64);
		uint64_t seen = 0;
		for (size_t i = 0; i < r.n; i++)
			seen |= 1ull << (r.h[i].sub_id - 1);
		assert_true(seen == ~0ull);
	}
	match(t, "a/b/c/d/e/x", &r); /* 32 filters: cacheable */
	assert_int_equal(r.n, 32);
	match(t, "a/b/c/d/e/x", &r);
	assert_int_equal(r.n, 32);
	struct subtree_cache_stats st = stats(t);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.hits, 1);
	subtree_free(t);
	free(r.h);
}

/* Clock: a topic hit between insertions survives a stream of one-offs. */
static void clock_keeps_hot_topic(void **state)
{
	(void)state;
	struct subtree *t = new_eager();
	struct session a = { 1 };
	assert_int_equal(add(t, NULL, "#", &a, 1), MOTE_OK);
	eager(t, 4, SUBTREE_CACHE_DEFAULT.bytes);
	struct rec r = { 0 };
	char topic[32];
	for (int i = 0; i < 200; i++) {
		match(t, "hot", &r);
		snprintf(topic, sizeof topic, "cold/%d", i);
		match(t, topic, &r);
	}
	struct subtree_cache_stats st = stats(t);
	assert_int_equal(st.hits, 199);    /* every "hot" after the first */
	assert_int_equal(st.misses, 201);  /* "hot" once, every cold one */
	assert_int_equal(st.evicted, 197); /* 201 stored, 4 left */
	assert_int_equal(st.entries, 4);
	subtree_free(t);
	free(r.h);
}

/* The defaults leave out walks cheaper than a hash and topics seen once. */
static void defaults_skip_cheap_and_one_off(void **state)
{
	(void)state;
	struct subtree *t = subtree_new(); /* default settings */
	assert_non_null(t);
	struct session a = { 1 }, b = { 2 };
	assert_int_equal(add(t, NULL, "bench/+", &a, 1), MOTE_OK);
	struct rec r = { 0 };
	for (int i = 0; i < 10; i++) { /* two levels, no hashed lookup: cost 2 */
		match(t, "bench/1", &r);
		ASSERT_IDS(&r, "1");
	}
	struct subtree_cache_stats st = stats(t);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.misses, 0);

	/* over 8 children: "bench" hashes its lookups; cost 1 + 4 + 1 (the '+') */
	char topic[32];
	for (int i = 0; i < 9; i++) {
		snprintf(topic, sizeof topic, "bench/%d", 100 + i);
		assert_int_equal(add(t, NULL, topic, &b, 100 + (uint32_t)i), MOTE_OK);
	}
	match(t, "bench/1", &r); /* first miss: remembered, not cached */
	ASSERT_IDS(&r, "1");
	st = stats(t);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.entries, 0);
	match(t, "bench/1", &r); /* second miss: cached */
	assert_int_equal(stats(t).entries, 1);
	match(t, "bench/1", &r);
	ASSERT_IDS(&r, "1");
	st = stats(t);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 2);
	match(t, "bench/104", &r);
	match(t, "bench/104", &r);
	match(t, "bench/104", &r);
	ASSERT_IDS(&r, "104,1");
	assert_int_equal(stats(t).hits, 2);

	/* 5000 topics seen once: only bitmap collisions get in (about 2% here:
	 * 32768 bits, up to 10000 set; the hash key is random, so a range) */
	for (int i = 0; i < 5000; i++) {
		snprintf(topic, sizeof topic, "bench/x%d", i);
		match(t, topic, &r);
		ASSERT_IDS(&r, "1");
	}
	st = stats(t);
	assert_true(st.entries >= 2 && st.entries < 2 + 250);
	/* hot topics still get in, on their second miss */
	match(t, "bench/hot", &r);
	match(t, "bench/hot", &r);
	uint64_t hits = stats(t).hits;
	match(t, "bench/hot", &r);
	assert_int_equal(stats(t).hits, hits + 1);
	subtree_free(t);
	free(r.h);
}

/* ---- random: cached tree against an uncached twin and the oracle ---- */

static uint64_t rnd(uint64_t *st)
{
	*st ^= *st >> 12;
	*st ^= *st << 25;
	*st ^= *st >> 27;
	return *st * 0x2545f4914f6cdd1dull;
}

static const char *const topic_lv[] = { "a", "b", "", "$x", "dev" };
#define N_TOPIC_LV (sizeof topic_lv / sizeof topic_lv[0])

static void random_name(uint64_t *st, char *out, bool filter)
{
	int levels = 1 + (int)(rnd(st) % 4);
	out[0] = 0;
	for (int i = 0; i < levels; i++) {
		if (i)
			strcat(out, "/");
		uint64_t k = rnd(st) % (N_TOPIC_LV + (filter ? 2 : 0));
		if (k < N_TOPIC_LV) {
			strcat(out, topic_lv[k]);
		} else if (k == N_TOPIC_LV) {
			strcat(out, "+");
		} else {
			strcat(out, "#");
			return; /* '#' ends a filter */
		}
	}
}

#define NSESS 24
#define NPOOL 48
#define MAXSUBS 4096

struct rsub {
	int sid;
	int group; /* -1 plain */
	char filter[32];
	uint32_t sub_id;
	bool alive;
};

static const char *const groups[] = { "g1", "g2" };

struct world {
	struct subtree *t, *u; /* cached, uncached */
	struct session sess[NSESS];
	struct rsub subs[MAXSUBS];
	size_t nsubs;
	char pool[NPOOL][32];
	size_t nodes_at[NPOOL]; /* node count when the topic was last matched */
	bool matched[NPOOL];
	uint32_t next_id;
	size_t rematch_after_change;
	struct rec rt, ru;
	bool off[NSESS];
};

static struct rsub *find_sub(struct world *w, int sid, int group, const char *filter)
{
	for (size_t i = 0; i < w->nsubs; i++) {
		struct rsub *e = &w->subs[i];
		if (e->alive && e->sid == sid && e->group == group && strcmp(e->filter, filter) == 0)
			return e;
	}
	return NULL;
}

/* reuse: a filter already in the tree when there is one (no new node) */
static void op_add(struct world *w, uint64_t *st, bool reuse)
{
	int sid = (int)(rnd(st) % NSESS);
	int group = rnd(st) % 4 == 0 ? (int)(rnd(st) % 2) : -1;
	char filter[32];
	random_name(st, filter, true);
	if (reuse && w->nsubs) {
		const struct rsub *o = &w->subs[rnd(st) % w->nsubs];
		if (o->alive)
			strcpy(filter, o->filter);
	}
	uint32_t id = ++w->next_id;
	const char *g = group < 0 ? NULL : groups[group];
	assert_int_equal(add(w->t, g, filter, &w->sess[sid], id), MOTE_OK);
	assert_int_equal(add(w->u, g, filter, &w->sess[sid], id), MOTE_OK);
	struct rsub *e = find_sub(w, sid, group, filter);
	if (e) {
		e->sub_id = id;
		return;
	}
	for (size_t i = 0; i < w->nsubs && !e; i++) /* reuse a dead record */
		if (!w->subs[i].alive)
			e = &w->subs[i];
	if (!e) {
		assert_true(w->nsubs < MAXSUBS);
		e = &w->subs[w->nsubs++];
	}
	*e = (struct rsub){ .sid = sid, .group = group, .sub_id = id, .alive = true };
	strcpy(e->filter, filter);
}

static void op_del(struct world *w, uint64_t *st)
{
	if (!w->nsubs)
		return;
	struct rsub *e = &w->subs[rnd(st) % w->nsubs];
	const char *g = e->group < 0 ? NULL : groups[e->group];
	enum mote_err want = e->alive ? MOTE_OK : MOTE_ENOTFOUND;
	if (!e->alive && find_sub(w, e->sid, e->group, e->filter))
		return; /* re-added since: that one is alive */
	assert_int_equal(del(w->t, g, e->filter, &w->sess[e->sid]), want);
	assert_int_equal(del(w->u, g, e->filter, &w->sess[e->sid]), want);
	e->alive = false;
}

static void op_remove_all(struct world *w, uint64_t *st)
{
	int sid = (int)(rnd(st) % NSESS);
	subtree_remove_all(w->t, &w->sess[sid]);
	subtree_remove_all(w->u, &w->sess[sid]);
	for (size_t i = 0; i < w->nsubs; i++)
		if (w->subs[i].sid == sid)
			w->subs[i].alive = false;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void op_match(struct world *w, uint64_t *st)
{
	size_t k = rnd(st) % NPOOL;
	const char *topic = w->pool[k];
	size_t nodes = subtree_node_count(w->t);
	if (w->matched[k] && w->nodes_at[k] != nodes)
		w->rematch_after_change++;
	w->matched[k] = true;
	w->nodes_at[k] = nodes;

	w->rt.ineligible = w->ru.ineligible = w->off;
	match(w->t, topic, &w->rt);
	match(w->u, topic, &w->ru);
	/* the same calls in the same order */
	if (w->rt.n != w->ru.n)
		fail_msg("topic \"%s\": %zu calls cached, %zu uncached", topic, w->rt.n, w->ru.n);
	for (size_t i = 0; i < w->rt.n; i++) {
		const struct hit *a = &w->rt.h[i], *b = &w->ru.h[i];
		if (a->id != b->id || a->sub_id != b->sub_id || a->qos != b->qos ||
		    a->shared != b->shared)
			fail_msg("topic \"%s\" call %zu: cached %d/%u, uncached %d/%u", topic, i,
				 a->id, (unsigned)a->sub_id, b->id, (unsigned)b->sub_id);
	}
	/* and the plain ones are exactly what the rules say */
	uint32_t want[MAXSUBS], got[MAXSUBS];
	size_t nw = 0, ng = 0;
	for (size_t i = 0; i < w->nsubs; i++) {
		const struct rsub *e = &w->subs[i];
		if (e->alive && e->group < 0 && oracle_match(e->filter, topic))
			want[nw++] = e->sub_id;
	}
	for (size_t i = 0; i < w->rt.n; i++)
		if (!w->rt.h[i].shared)
			got[ng++] = w->rt.h[i].sub_id;
	qsort(want, nw, sizeof *want, cmp_u32);
	qsort(got, ng, sizeof *got, cmp_u32);
	if (nw != ng)
		fail_msg("topic \"%s\": %zu plain hits, oracle says %zu", topic, ng, nw);
	for (size_t i = 0; i < nw; i++)
		assert_int_equal(want[i], got[i]);
}

static void run_random(uint64_t seed, const struct subtree_cache_cfg *cfg, int nops)
{
	struct world *w = calloc(1, sizeof *w);
	assert_non_null(w);
	uint64_t st = seed;
	w->t = subtree_new();
	w->u = subtree_new();
	assert_true(w->t && w->u);
	subtree_cache_config(w->t, cfg);
	subtree_cache_config(w->u, &(struct subtree_cache_cfg){ .entries = 0 });
	for (int i = 0; i < NSESS; i++)
		w->sess[i].id = i;
	for (int i = 0; i < NPOOL; i++)
		random_name(&st, w->pool[i], false);
	strcpy(w->pool[0], "$x"); /* sure to be there: the '$' rule */
	strcpy(w->pool[1], "a");  /* "a/#" matching "a" */

	/* Phases of 500 operations: churn (structure changes all the time),
	 * then quiet (mostly matches, adds mostly on existing nodes). */
	for (int op = 0; op < nops; op++) {
		bool quiet = (op / 500) % 2;
		uint64_t k = rnd(&st) % 100;
		if (k < (quiet ? 85u : 50u))
			op_match(w, &st);
		else if (k < (quiet ? 93u : 75u))
			op_add(w, &st, quiet);
		else if (k < 97)
			op_del(w, &st);
		else if (k < 99)
			op_remove_all(w, &st);
		else /* who is eligible for shared groups changes now and then */
			for (int i = 0; i < NSESS; i++)
				w->off[i] = rnd(&st) % 3 == 0;
	}
	struct subtree_cache_stats cs = stats(w->t);
	assert_int_equal(subtree_count(w->t), subtree_count(w->u));
	assert_int_equal(subtree_node_count(w->t), subtree_node_count(w->u));
	/* the test did what it says: hits, and re-matches across structure changes */
	assert_true(w->rematch_after_change > (size_t)nops / 20);
	assert_true(cs.hits > (uint64_t)nops / (cfg->admit_first && cfg->entries >= 4096 ? 5 : 100));
	assert_true(cs.entries <= cfg->entries);
	assert_true(cs.bytes <= cfg->bytes);
	assert_int_equal(stats(w->u).entries, 0);
	subtree_free(w->t);
	subtree_free(w->u);
	free(w->rt.h);
	free(w->ru.h);
	free(w);
}

static void random_against_uncached(void **state)
{
	(void)state;
	const size_t mib = 1u << 20;
	/* the pool fits: every topic is a hit until the structure changes */
	run_random(0x9e3779b97f4a7c15ull,
		   &(struct subtree_cache_cfg){ .entries = 4096, .bytes = mib, .admit_first = true },
		   60000);
	/* fewer entries than the pool: the clock evicts all the time */
	run_random(0x243f6a8885a308d3ull,
		   &(struct subtree_cache_cfg){ .entries = 8, .bytes = mib, .admit_first = true },
		   60000);
	run_random(0x13198a2e03707344ull,
		   &(struct subtree_cache_cfg){ .entries = 1, .bytes = mib, .admit_first = true },
		   20000);
	/* the byte budget bites before the entry count */
	run_random(0xa4093822299f31d0ull,
		   &(struct subtree_cache_cfg){ .entries = 1000, .bytes = 600, .admit_first = true },
		   20000);
	/* the defaults: second-miss admission, cheap walks not cached */
	run_random(0x082efa98ec4e6c89ull, &SUBTREE_CACHE_DEFAULT, 60000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(repeat_is_a_hit),
		cmocka_unit_test(payload_changes_are_live),
		cmocka_unit_test(structural_changes_invalidate),
		cmocka_unit_test(shared_groups_rotate_through_cache),
		cmocka_unit_test(dollar_rule_through_cache),
		cmocka_unit_test(limits_hold),
		cmocka_unit_test(many_nodes_not_cached),
		cmocka_unit_test(clock_keeps_hot_topic),
		cmocka_unit_test(defaults_skip_cheap_and_one_off),
		cmocka_unit_test(random_against_uncached),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
