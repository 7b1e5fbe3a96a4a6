/*
 * test_broker_retain.c - the retained-message store: set, replace, delete,
 * reference counts, counts and bytes, matching with wildcards and the '$'
 * rule, expiry met during a match (with pruning), very deep topics, and a
 * random cross-check against the brute-force matcher in topic_oracle.h.
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

#include "broker/retain.h"
#include "topic_oracle.h"

static struct msg *mk_len(const char *topic, const char *payload, uint32_t plen,
			  uint64_t expiry_ms)
{
	struct msg *m = msg_new(NULL, (const uint8_t *)topic, (uint16_t)strlen(topic), NULL, 0,
				(const uint8_t *)payload, plen, 1, true, expiry_ms, 0);
	assert_non_null(m);
	return m;
}

static struct msg *mk(const char *topic, const char *payload, uint64_t expiry_ms)
{
	return mk_len(topic, payload, (uint32_t)strlen(payload), expiry_ms);
}

/* Stores a message and drops the caller's reference: the store keeps its own. */
static void put_len(struct retain *r, const char *topic, const char *payload, uint32_t plen,
		    uint64_t expiry_ms)
{
	struct msg *m = mk_len(topic, payload, plen, expiry_ms);
	assert_int_equal(retain_set(r, m), MOTE_OK);
	msg_unref(m);
}

static void put(struct retain *r, const char *topic, const char *payload, uint64_t expiry_ms)
{
	put_len(r, topic, payload, (uint32_t)strlen(payload), expiry_ms);
}

struct found {
	char **topics;
	size_t n, cap;
	uint64_t now; /* nothing expired at now may be reported */
};

static void on_msg(void *ctx, struct msg *m)
{
	struct found *f = ctx;
	assert_false(msg_expired(m, f->now));
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->topics = realloc(f->topics, f->cap * sizeof *f->topics);
		assert_non_null(f->topics);
	}
	char *t = malloc((size_t)m->topic_len + 1);
	assert_non_null(t);
	memcpy(t, msg_topic(m), m->topic_len);
	t[m->topic_len] = 0;
	f->topics[f->n++] = t;
}

static void found_clear(struct found *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->topics[i]);
	f->n = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void find(struct retain *r, const char *filter, uint64_t now, struct found *f)
{
	found_clear(f);
	f->now = now;
	retain_match(r, (const uint8_t *)filter, strlen(filter), now, on_msg, f);
	if (f->n)
		qsort(f->topics, f->n, sizeof *f->topics, cmp_str);
}

/* want: sorted, NULL-terminated */
static void expect(struct retain *r, const char *filter, const char *const *want)
{
	struct found f = { 0 };
	find(r, filter, 0, &f);
	size_t n = 0;
	while (want[n])
		n++;
	if (f.n != n)
		fail_msg("filter \"%s\": %zu messages, want %zu", filter, f.n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(f.topics[i], want[i]);
	found_clear(&f);
	free(f.topics);
}

static void set_replace_delete(void **state)
{
	(void)state;
	struct retain *r = retain_new();
	assert_non_null(r);
	struct msg *m1 = mk("a/b", "hello", 0);
	assert_int_equal(retain_set(r, m1), MOTE_OK);
	assert_int_equal(m1->refs, 2);
	assert_int_equal(retain_count(r), 1);
	assert_int_equal(retain_bytes(r), 5);
	assert_int_equal(retain_node_count(r), 2);

	struct msg *m2 = mk("a/b", "hi!", 0);
	assert_int_equal(retain_set(r, m2), MOTE_OK);
	assert_int_equal(m1->refs, 1); /* replaced: the store let go */
	assert_int_equal(m2->refs, 2);
	assert_int_equal(retain_count(r), 1);
	assert_int_equal(retain_bytes(r), 3);

	assert_int_equal(retain_set(r, m2), MOTE_OK); /* the same message again */
	assert_int_equal(m2->refs, 2);
	assert_int_equal(retain_count(r), 1);
	assert_int_equal(retain_bytes(r), 3);

	put(r, "a", "xy", 0);
	assert_int_equal(retain_count(r), 2);
	assert_int_equal(retain_bytes(r), 5);
	assert_int_equal(retain_node_count(r), 2);

	struct msg *del = mk("a/b", "", 0);
	assert_int_equal(retain_set(r, del), MOTE_OK);
	assert_int_equal(del->refs, 1); /* an empty payload is never stored */
	assert_int_equal(m2->refs, 1);
	assert_int_equal(retain_count(r), 1);
	assert_int_equal(retain_bytes(r), 2);
	assert_int_equal(retain_node_count(r), 1); /* b pruned, a holds a message */
	assert_int_equal(retain_set(r, del), MOTE_OK); /* deleting nothing */
	assert_int_equal(retain_count(r), 1);
	msg_unref(del);

	del = mk("zz/top", "", 0);
	assert_int_equal(retain_set(r, del), MOTE_OK);
	msg_unref(del);
	assert_int_equal(retain_node_count(r), 1);
	del = mk("a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v", "", 0); /* deeper than any */
	assert_int_equal(retain_set(r, del), MOTE_OK);
	msg_unref(del);

	const char *want[] = { "a", NULL };
	expect(r, "#", want);
	del = mk("a", "", 0);
	assert_int_equal(retain_set(r, del), MOTE_OK);
	msg_unref(del);
	assert_int_equal(retain_count(r), 0);
	assert_int_equal(retain_bytes(r), 0);
	assert_int_equal(retain_node_count(r), 0);

	/* an interior node keeps its children when its own message goes */
	put(r, "p", "1", 0);
	put(r, "p/q/r", "22", 0);
	assert_int_equal(retain_node_count(r), 3);
	del = mk("p", "", 0);
	assert_int_equal(retain_set(r, del), MOTE_OK);
	msg_unref(del);
	assert_int_equal(retain_node_count(r), 3);
	assert_int_equal(retain_bytes(r), 2);
	const char *want2[] = { "p/q/r", NULL };
	expect(r, "p/#", want2);

	retain_free(r); /* still holding p/q/r: freed with the store */
	msg_unref(m1);
	msg_unref(m2);
}

static void match_with_wildcards(void **state)
{
	(void)state;
	struct retain *r = retain_new();
	assert_non_null(r);
	const char *topics[] = { "a", "a/b", "a/b/c", "a//c", "a/", "/a", "b", "$SYS",
				 "$SYS/x", "$SYS/x/y", "c/$x", "/" };
	for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
		put(r, topics[i], "p", 0);
	assert_int_equal(retain_count(r), 12);
	{
		const char *w[] = { "/", "/a", "a", "a/", "a//c", "a/b", "a/b/c", "b", "c/$x",
				    NULL };
		expect(r, "#", w);
	}
	{
		const char *w[] = { "a", "b", NULL };
		expect(r, "+", w);
	}
	{
		const char *w[] = { "a", "a/", "a//c", "a/b", "a/b/c", NULL };
		expect(r, "a/#", w);
	}
	{
		const char *w[] = { "a/", "a/b", NULL };
		expect(r, "a/+", w);
	}
	{
		const char *w[] = { "/", "/a", "a/", "a/b", "c/$x", NULL };
		expect(r, "+/+", w);
	}
	{
		const char *w[] = { "a//c", "a/b/c", NULL };
		expect(r, "a/+/c", w);
	}
	{
		const char *w[] = { "/", "/a", NULL };
		expect(r, "/+", w);
	}
	{
		const char *w[] = { "/", "/a", NULL };
		expect(r, "/#", w);
	}
	{
		const char *w[] = { "a//c", NULL };
		expect(r, "a//c", w);
	}
	{
		const char *w[] = { "$SYS", "$SYS/x", "$SYS/x/y", NULL };
		expect(r, "$SYS/#", w);
	}
	{
		const char *w[] = { "$SYS/x", NULL };
		expect(r, "$SYS/+", w);
	}
	{
		const char *w[] = { "c/$x", NULL };
		expect(r, "+/$x", w);
	}
	{
		const char *w[] = { NULL };
		expect(r, "+/x", w); /* not $SYS/x */
		expect(r, "a/b/c/d", w);
		expect(r, "q/#", w);
		expect(r, "+/+/+/+", w);
	}
	{
		/* '+' then '#' (parent rule): every non-'$' topic, one level or more */
		const char *w[] = { "/", "/a", "a", "a/", "a//c", "a/b", "a/b/c", "b", "c/$x",
				    NULL };
		expect(r, "+/#", w);
	}
	retain_free(r);
}

static void expired_messages_are_removed_when_met(void **state)
{
	(void)state;
	struct retain *r = retain_new();
	assert_non_null(r);
	struct msg *m3 = mk("e/3/x", "333", 50);
	put(r, "e/1", "1", 100);
	put(r, "e/2", "22", 0);
	assert_int_equal(retain_set(r, m3), MOTE_OK);
	assert_int_equal(retain_count(r), 3);
	assert_int_equal(retain_bytes(r), 6);
	assert_int_equal(retain_node_count(r), 5);

	struct found f = { 0 };
	find(r, "e/#", 10, &f);
	assert_int_equal(f.n, 3);
	find(r, "e/1", 60, &f); /* e/3/x expired but not met: stays */
	assert_int_equal(f.n, 1);
	assert_int_equal(retain_count(r), 3);
	assert_int_equal(m3->refs, 2);
	find(r, "e/#", 60, &f);
	assert_int_equal(f.n, 2);
	assert_int_equal(retain_count(r), 2);
	assert_int_equal(retain_bytes(r), 3);
	assert_int_equal(retain_node_count(r), 3); /* 3 and x pruned */
	assert_int_equal(m3->refs, 1);
	find(r, "+/+", 100, &f); /* expiry is "at or after" */
	assert_int_equal(f.n, 1);
	assert_string_equal(f.topics[0], "e/2");
	assert_int_equal(retain_count(r), 1);
	assert_int_equal(retain_bytes(r), 2);
	assert_int_equal(retain_node_count(r), 2);
	found_clear(&f);
	free(f.topics);
	msg_unref(m3);
	retain_free(r);
}

/* Many expiries in one walk: removal while iterating a hash-table child map. */
static void mass_expiry_under_wildcards(void **state)
{
	(void)state;
	struct retain *r = retain_new();
	assert_non_null(r);
	char t[32];
	size_t want_after = 0, nodes_after = 1; /* "x" */
	for (int i = 0; i < 1000; i++) {
		snprintf(t, sizeof t, "x/%d", i);
		put(r, t, "abcd", i % 2 ? 0 : 100);
		if (i % 2)
			want_after++;
		bool keep_node = i % 2;
		if (i % 3 == 0) {
			snprintf(t, sizeof t, "x/%d/y", i);
			put(r, t, "z", 0);
			want_after++;
			keep_node = true;
			nodes_after++;
		}
		nodes_after += keep_node;
	}
	assert_int_equal(retain_count(r), 1000 + 334);
	assert_int_equal(retain_bytes(r), 4000 + 334);
	struct found f = { 0 };
	find(r, "x/#", 200, &f);
	assert_int_equal(f.n, want_after);
	for (size_t i = 1; i < f.n; i++)
		assert_true(strcmp(f.topics[i - 1], f.topics[i]) < 0); /* each once */
	assert_int_equal(retain_count(r), want_after);
	assert_int_equal(retain_bytes(r), 500 * 4 + 334);
	assert_int_equal(retain_node_count(r), nodes_after);
	find(r, "x/+", 300, &f);
	assert_int_equal(f.n, 500);
	/* now expire through '+' iteration */
	retain_free(r);
	r = retain_new();
	assert_non_null(r);
	for (int i = 0; i < 600; i++) {
		snprintf(t, sizeof t, "y/%d", i);
		put(r, t, "q", i % 4 ? 10 : 0);
	}
	find(r, "y/+", 10, &f);
	assert_int_equal(f.n, 150);
	assert_int_equal(retain_count(r), 150);
	assert_int_equal(retain_node_count(r), 151);
	find(r, "+/+", 10, &f);
	assert_int_equal(f.n, 150);
	found_clear(&f);
	free(f.topics);
	retain_free(r);
}

static void very_deep_topic(void **state)
{
	(void)state;
	const size_t levels = 30000;
	size_t len = 2 * levels - 1;
	char *t = malloc(len + 1);
	assert_non_null(t);
	for (size_t i = 0; i < levels; i++) {
		t[2 * i] = 'd';
		if (i + 1 < levels)
			t[2 * i + 1] = '/';
	}
	t[len] = 0;
	struct retain *r = retain_new();
	assert_non_null(r);
	put(r, t, "deep", 0);
	put(r, "d", "top", 0);
	assert_int_equal(retain_node_count(r), levels);
	struct found f = { 0 };
	find(r, "#", 0, &f);
	assert_int_equal(f.n, 2);
	find(r, "d/#", 0, &f);
	assert_int_equal(f.n, 2);
	find(r, t, 0, &f);
	assert_int_equal(f.n, 1);
	t[len - 1] = '+';
	find(r, t, 0, &f);
	assert_int_equal(f.n, 1);
	t[len - 1] = 'd';
	put(r, t, "", 0); /* delete: prunes 29999 nodes */
	assert_int_equal(retain_node_count(r), 1);
	put(r, t, "again", 1);
	find(r, "#", 5, &f); /* expires it and prunes through the walk */
	assert_int_equal(f.n, 1);
	assert_int_equal(retain_node_count(r), 1);
	found_clear(&f);
	free(f.topics);
	retain_free(r);
	free(t);
}

/* ---- random cross-check ---- */

static uint64_t rnd(uint64_t *st)
{
	*st ^= *st >> 12;
	*st ^= *st << 25;
	*st ^= *st >> 27;
	return *st * 0x2545f4914f6cdd1dull;
}

static const char *const lvls[] = { "a", "b", "c", "", "$x", "dev", "7" };
#define N_LV (sizeof lvls / sizeof lvls[0])

static void random_topic(uint64_t *st, char *out, bool filter)
{
	int levels = 1 + (int)(rnd(st) % 5);
	out[0] = 0;
	for (int i = 0; i < levels; i++) {
		if (i)
			strcat(out, "/");
		uint64_t k = rnd(st) % (N_LV + (filter ? 3 : 0));
		if (k < N_LV) {
			strcat(out, lvls[k]);
		} else if (k == N_LV + 2) {
			strcat(out, "#");
			return;
		} else {
			strcat(out, "+");
		}
	}
}

struct entry {
	char topic[40];
	uint32_t len;
	uint64_t expiry;
	bool alive;
};

struct model {
	struct entry *e;
	size_t n;
	size_t count, bytes;
};

static struct entry *model_find(struct model *m, const char *topic)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->e[i].alive && strcmp(m->e[i].topic, topic) == 0)
			return &m->e[i];
	return NULL;
}

/* Distinct level prefixes of live topics: the nodes a pruned trie has. */
static size_t model_nodes(const struct model *m)
{
	char **p = malloc((m->n * 6 + 1) * sizeof *p);
	assert_non_null(p);
	size_t np = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (!m->e[i].alive)
			continue;
		const char *t = m->e[i].topic;
		for (size_t k = 0;; k++) {
			if (t[k] == '/' || t[k] == 0) {
				p[np] = strndup(t, k);
				assert_non_null(p[np]);
				np++;
			}
			if (t[k] == 0)
				break;
		}
	}
	qsort(p, np, sizeof *p, cmp_str);
	size_t distinct = 0;
	for (size_t i = 0; i < np; i++)
		if (i == 0 || strcmp(p[i - 1], p[i]) != 0)
			distinct++;
	for (size_t i = 0; i < np; i++)
		free(p[i]);
	free(p);
	return distinct;
}

static void random_cross_check(void **state)
{
	(void)state;
	uint64_t st = 0xdeadbeefcafef00dull;
	const int nops = 6000;
	struct model m = { calloc((size_t)nops, sizeof(struct entry)), 0, 0, 0 };
	assert_non_null(m.e);
	struct retain *r = retain_new();
	assert_non_null(r);
	struct found f = { 0 };
	uint64_t now = 1;
	char topic[40];

	for (int op = 0; op < nops; op++) {
		random_topic(&st, topic, false);
		uint32_t plen = (uint32_t)(rnd(&st) % 9); /* 0 = delete */
		uint64_t expiry = rnd(&st) % 3 == 0 ? now + rnd(&st) % 400 : 0;
		put_len(r, topic, "abcdefgh", plen, expiry);
		struct entry *old = model_find(&m, topic);
		if (old) {
			old->alive = false;
			m.count--;
			m.bytes -= old->len;
		}
		if (plen) {
			struct entry *e = &m.e[m.n++];
			snprintf(e->topic, sizeof e->topic, "%s", topic);
			e->len = plen;
			e->expiry = expiry;
			e->alive = true;
			m.count++;
			m.bytes += plen;
		}
		assert_int_equal(retain_count(r), m.count);
		assert_int_equal(retain_bytes(r), m.bytes);

		if (op % 10 != 0)
			continue;
		/* a subscribe: compare with the oracle, then expire what it met */
		now += rnd(&st) % 20;
		char filter[40];
		random_topic(&st, filter, true);
		find(r, filter, now, &f);
		size_t want = 0;
		for (size_t i = 0; i < m.n; i++) {
			struct entry *e = &m.e[i];
			if (!e->alive || !oracle_match(filter, e->topic))
				continue;
			if (e->expiry && now >= e->expiry) {
				e->alive = false;
				m.count--;
				m.bytes -= e->len;
				continue;
			}
			bool hit = false;
			for (size_t k = 0; k < f.n && !hit; k++)
				hit = strcmp(f.topics[k], e->topic) == 0;
			if (!hit)
				fail_msg("filter \"%s\" missed \"%s\"", filter, e->topic);
			want++;
		}
		if (f.n != want)
			fail_msg("filter \"%s\": %zu messages, want %zu", filter, f.n, want);
		for (size_t k = 1; k < f.n; k++)
			assert_true(strcmp(f.topics[k - 1], f.topics[k]) < 0);
		assert_int_equal(retain_count(r), m.count);
		assert_int_equal(retain_bytes(r), m.bytes);
		if (op % 500 == 0)
			assert_int_equal(retain_node_count(r), model_nodes(&m));
	}
	assert_true(m.count > 50);
	assert_int_equal(retain_node_count(r), model_nodes(&m));
	/* everything expires or is deleted: the trie empties */
	find(r, "#", UINT64_MAX, &f);
	for (size_t i = 0; i < m.n; i++)
		if (m.e[i].alive && m.e[i].topic[0] == '$') {
			put(r, m.e[i].topic, "", 0);
			m.e[i].alive = false;
		}
	for (size_t i = 0; i < m.n; i++)
		if (m.e[i].alive && m.e[i].expiry == 0) {
			put(r, m.e[i].topic, "", 0);
			m.e[i].alive = false;
		}
	assert_int_equal(retain_count(r), 0);
	assert_int_equal(retain_bytes(r), 0);
	assert_int_equal(retain_node_count(r), 0);
	found_clear(&f);
	free(f.topics);
	free(m.e);
	retain_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(set_replace_delete),
		cmocka_unit_test(match_with_wildcards),
		cmocka_unit_test(expired_messages_are_removed_when_met),
		cmocka_unit_test(mass_expiry_under_wildcards),
		cmocka_unit_test(very_deep_topic),
		cmocka_unit_test(random_cross_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
