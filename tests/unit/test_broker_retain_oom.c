/*
 * test_broker_retain_oom.c - allocation-failure injection for the retained
 * store: every allocation of retain_set, in turn, fails; it must return
 * MOTE_ENOMEM and leave the store as it was (same messages, counts, bytes,
 * nodes, reference counts; ASan reports leaks). Deletion and expiry only
 * shrink memory, so failures there must not change their result.
 *
 * How: this file compiles its own copy of retain.c, trie.c and level_map.c
 * with the allocator redirected by oom_inject.h; msg.c comes from the
 * library, unwrapped, so test messages are never the ones that fail.
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
#include "broker/retain.c"
#undef malloc
#undef calloc
#undef realloc

static struct msg *mk(const char *topic, const char *payload, uint64_t expiry_ms)
{
	struct msg *m = msg_new(NULL, (const uint8_t *)topic, (uint16_t)strlen(topic), NULL, 0,
				(const uint8_t *)payload, (uint32_t)strlen(payload), 0, true,
				expiry_ms, 0);
	assert_non_null(m);
	return m;
}

static void put(struct retain *r, const char *topic, const char *payload, uint64_t expiry_ms)
{
	struct msg *m = mk(topic, payload, expiry_ms);
	assert_int_equal(retain_set(r, m), MOTE_OK);
	msg_unref(m);
}

struct seen {
	size_t n;
	uint64_t sum; /* of payload bytes and topic lengths: order-free fingerprint */
};

static void on_msg(void *ctx, struct msg *m)
{
	struct seen *s = ctx;
	s->n++;
	s->sum += m->topic_len * 131u + m->payload_len;
	for (uint32_t i = 0; i < m->payload_len; i++)
		s->sum += msg_payload(m)[i];
}

static void grab(void *ctx, struct msg *m)
{
	struct msg **out = ctx;
	assert_null(*out);
	*out = msg_ref(m);
}

struct snap {
	size_t count, bytes, nodes;
	struct seen all;
};

static void snapshot(struct retain *r, struct snap *s)
{
	s->count = retain_count(r);
	s->bytes = retain_bytes(r);
	s->nodes = retain_node_count(r);
	s->all = (struct seen){ 0, 0 };
	retain_match(r, (const uint8_t *)"#", 1, 0, on_msg, &s->all);
	struct seen dollar = { 0, 0 };
	retain_match(r, (const uint8_t *)"$SYS/#", 6, 0, on_msg, &dollar);
	s->all.n += dollar.n;
	s->all.sum += dollar.sum;
}

static void assert_same(const struct snap *a, const struct snap *b)
{
	assert_int_equal(a->count, b->count);
	assert_int_equal(a->bytes, b->bytes);
	assert_int_equal(a->nodes, b->nodes);
	assert_int_equal(a->all.n, b->all.n);
	assert_int_equal(a->all.sum, b->all.sum);
}

static struct retain *base_store(void)
{
	struct retain *r = retain_new();
	assert_non_null(r);
	put(r, "a/b", "one", 0);
	put(r, "$SYS/up", "1", 0);
	char t[16];
	for (int i = 0; i < 12; i++) { /* 12 children: a table at its load limit */
		snprintf(t, sizeof t, "f/%d", i);
		put(r, t, "ff", 0);
	}
	return r;
}

static void failed_set_leaves_store_unchanged(void **state)
{
	(void)state;
	const char *topics[] = {
		"n/e/w",                                          /* new chain */
		"a/b",                                            /* replace: no allocation */
		"a/b/c",                                          /* one new level */
		"f/x",                                            /* 13th child: table doubles */
		"deep/0/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", /* frame stack grows */
		"$SYS/down",
	};
	for (size_t k = 0; k < sizeof topics / sizeof topics[0]; k++) {
		for (int persist = 0; persist < 2; persist++) {
			long n = 0;
			for (;; n++) {
				struct retain *r = base_store();
				struct snap before, after;
				snapshot(r, &before);
				struct msg *m = mk(topics[k], "new!", 0);
				struct msg *old = NULL;
				if (k == 1) /* hold the old one to check its refs */
					retain_match(r, (const uint8_t *)"a/b", 3, 0, grab, &old);
				arm(n, persist);
				enum mote_err err = retain_set(r, m);
				long used = fault.calls;
				disarm();
				if (err == MOTE_OK) {
					assert_true(used <= n);
					assert_int_equal(m->refs, 2);
					snapshot(r, &after);
					assert_int_equal(after.count, before.count + (k == 1 ? 0 : 1));
					if (old)
						assert_int_equal(old->refs, 1);
					msg_unref(old);
					msg_unref(m);
					retain_free(r);
					break;
				}
				assert_int_equal(err, MOTE_ENOMEM);
				assert_int_equal(m->refs, 1); /* not kept */
				snapshot(r, &after);
				assert_same(&before, &after);
				assert_int_equal(retain_set(r, m), MOTE_OK); /* and it recovers */
				msg_unref(m);
				msg_unref(old);
				retain_free(r);
			}
			if (k == 1)
				assert_int_equal(n, 0); /* replacing allocates nothing */
			else
				assert_true(n >= 1);
		}
	}
}

static void new_store_fails_cleanly(void **state)
{
	(void)state;
	for (long n = 0;; n++) {
		arm(n, true);
		struct retain *r = retain_new();
		disarm();
		if (r) {
			retain_free(r);
			assert_true(n >= 2);
			break;
		}
	}
}

/* Deletes and expiry only give memory back: failed shrinks change nothing. */
static void deletion_and_expiry_survive_failed_shrinks(void **state)
{
	(void)state;
	for (long n = 0; n < 40; n++) {
		struct retain *r = base_store();
		char t[16];
		for (int i = 0; i < 60; i++) {
			snprintf(t, sizeof t, "x/%d", i);
			put(r, t, "xx", i % 2 ? 0 : 10);
			snprintf(t, sizeof t, "f/%d", 100 + i);
			put(r, t, "g", 0);
		}
		arm(n, n % 2 == 0);
		for (int i = 0; i < 60; i++) {
			snprintf(t, sizeof t, "f/%d", 100 + i);
			put(r, t, "", 0);
		}
		struct seen s = { 0, 0 };
		retain_match(r, (const uint8_t *)"x/+", 3, 20, on_msg, &s); /* 30 expire */
		disarm();
		assert_int_equal(s.n, 30);
		assert_int_equal(retain_count(r), 2 + 12 + 30);
		assert_int_equal(retain_bytes(r), 3 + 1 + 24 + 60);
		assert_int_equal(retain_node_count(r), 2 + 2 + 13 + 31);
		retain_free(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(failed_set_leaves_store_unchanged),
		cmocka_unit_test(new_store_fails_cleanly),
		cmocka_unit_test(deletion_and_expiry_survive_failed_shrinks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
