/*
 * fuzz_broker_subtree.c - libFuzzer target for the subscription trie and its
 * match cache.
 *
 * The input is a program run on two trees at once, one with the match cache
 * (settings from the first byte: tiny limits so the clock evicts, admission
 * on the first or the second miss) and one without. After every operation
 * both must agree: every match makes the same callback calls in the same
 * order (session, subscription id, shared or not), and the counts agree.
 *
 * Operations (one byte, then its arguments):
 *   op % 4 == 0  add: session byte, group byte, filter
 *   op % 4 == 1  remove: session byte, group byte, filter
 *   op % 4 == 2  remove every subscription of a session: session byte
 *   op % 4 == 3  match: topic name
 * A filter or name is a length byte (levels, 1-6) and one byte per level
 * picking from a small alphabet, so the same levels keep coming back; names
 * never get '+' or '#', and '#' ends a filter.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/subtree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct session {
	int id;
};

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_broker_subtree: %s\n", what);
		__builtin_trap();
	}
}

#define MAX_CALLS 4096

struct calls {
	uint64_t v[MAX_CALLS];
	size_t n;
};

static void on_hit(void *ctx, struct session *s, const struct sub_opts *o, bool shared)
{
	struct calls *c = ctx;
	if (c->n < MAX_CALLS)
		c->v[c->n] = (uint64_t)s->id << 40 | (uint64_t)o->sub_id << 1 | shared;
	c->n++;
}

/* Every other session is offline for shared groups. */
static bool eligible(void *ctx, struct session *s)
{
	(void)ctx;
	return s->id % 2 == 0;
}

struct reader {
	const uint8_t *p;
	size_t left;
};

static uint8_t next(struct reader *r)
{
	if (!r->left)
		return 0;
	r->left--;
	return *r->p++;
}

static const char *const levels[] = { "a", "b", "", "$x", "dev", "+", "#" };

/* Builds a filter (wild) or a topic name into out (room for 64 bytes). */
static size_t build(struct reader *r, bool wild, char *out)
{
	size_t n = 1 + next(r) % 6, len = 0;
	for (size_t i = 0; i < n; i++) {
		const char *lv = levels[next(r) % (wild ? 7 : 5)];
		if (i)
			out[len++] = '/';
		memcpy(out + len, lv, strlen(lv));
		len += strlen(lv);
		if (lv[0] == '#')
			break;
	}
	return len;
}

static const char *const groups[] = { NULL, "g1", "g2" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct calls a, b;
	struct session sess[8];
	for (int i = 0; i < 8; i++)
		sess[i].id = i;
	struct reader r = { data, size };
	uint8_t mode = next(&r);
	struct subtree *t = subtree_new(), *u = subtree_new();
	if (!t || !u)
		goto out;
	struct subtree_cache_cfg cfg = { .entries = 1 + mode % 8, .bytes = 1u << 20,
					 .admit_first = mode & 8 };
	subtree_cache_config(t, &cfg);
	subtree_cache_config(u, &(struct subtree_cache_cfg){ .entries = 0 });
	uint32_t id = 0;
	char s[64];
	while (r.left) {
		uint8_t op = next(&r);
		if (op % 4 == 0 || op % 4 == 1) {
			struct session *se = &sess[next(&r) % 8];
			const char *g = groups[next(&r) % 3];
			size_t glen = g ? strlen(g) : 0, len = build(&r, true, s);
			const uint8_t *f = (const uint8_t *)s;
			if (op % 4 == 0) {
				struct sub_opts o = { .qos = (uint8_t)(op / 4 % 3), .sub_id = ++id };
				bool e1, e2;
				enum mote_err x = subtree_add(t, (const uint8_t *)g, glen, f, len, se,
							      &o, &e1);
				enum mote_err y = subtree_add(u, (const uint8_t *)g, glen, f, len, se,
							      &o, &e2);
				check(x == MOTE_OK && y == MOTE_OK, "add failed");
				check(e1 == e2, "add: existed differs");
			} else {
				enum mote_err x = subtree_remove(t, (const uint8_t *)g, glen, f, len, se);
				enum mote_err y = subtree_remove(u, (const uint8_t *)g, glen, f, len, se);
				check(x == y, "remove results differ");
			}
		} else if (op % 4 == 2) {
			struct session *se = &sess[next(&r) % 8];
			subtree_remove_all(t, se);
			subtree_remove_all(u, se);
		} else {
			size_t len = build(&r, false, s);
			a.n = b.n = 0;
			subtree_match(t, (const uint8_t *)s, len, on_hit, eligible, &a);
			subtree_match(u, (const uint8_t *)s, len, on_hit, eligible, &b);
			check(a.n == b.n, "match: call counts differ");
			size_t n = a.n < MAX_CALLS ? a.n : MAX_CALLS;
			check(memcmp(a.v, b.v, n * sizeof a.v[0]) == 0, "match: calls differ");
		}
		check(subtree_count(t) == subtree_count(u), "counts differ");
		check(subtree_node_count(t) == subtree_node_count(u), "node counts differ");
	}
	struct subtree_cache_stats st;
	subtree_cache_stats(t, &st);
	check(st.entries <= cfg.entries, "cache over its entry limit");
out:
	subtree_free(t);
	subtree_free(u);
	return 0;
}
