/*
 * test_broker_subtree.c - the subscription trie: wildcard rules, the '$'
 * rule, overlapping filters, replace, removal and pruning, shared-group
 * round robin with the eligible filter, deep filters and large fan-out, and a
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

#include "broker/subtree.h"
#include "subtree_record.h"
#include "topic_oracle.h"

static enum mote_err add(struct subtree *t, const char *group, const char *filter,
			 struct session *s, uint32_t sub_id, uint8_t qos, bool *existed)
{
	struct sub_opts o = { .qos = qos, .sub_id = sub_id };
	return subtree_add(t, (const uint8_t *)group, group ? strlen(group) : 0,
			   (const uint8_t *)filter, strlen(filter), s, &o, existed);
}

static enum mote_err del(struct subtree *t, const char *group, const char *filter,
			 struct session *s)
{
	return subtree_remove(t, (const uint8_t *)group, group ? strlen(group) : 0,
			      (const uint8_t *)filter, strlen(filter), s);
}

/* ---- fixed cases ---- */

static const struct {
	const char *filter, *topic;
	bool match;
} cases[] = {
	{ "a/b", "a/b", true },
	{ "a/b", "a", false },
	{ "a", "a/b", false },
	{ "a/b", "a/bc", false },
	{ "a/+", "a/b", true },
	{ "a/+", "a", false },
	{ "a/+", "a/b/c", false },
	{ "a/+", "a/", true },
	{ "+", "a", true },
	{ "+", "/a", false },
	{ "+/+", "/a", true },
	{ "/+", "/a", true },
	{ "+/a", "/a", true },
	{ "/a", "a", false },
	{ "/a", "/a", true },
	{ "a/#", "a", true },
	{ "a/#", "a/", true },
	{ "a/#", "a/b/c", true },
	{ "a/#", "ab", false },
	{ "a/#", "b/a", false },
	{ "#", "a/b", true },
	{ "#", "/", true },
	{ "+/#", "a", true },
	{ "+/#", "a/b/c", true },
	{ "+/+/#", "a", false },
	{ "a/+/#", "a/b", true },
	{ "a//b", "a//b", true },
	{ "a/+/b", "a//b", true },
	{ "a/b", "a//b", false },
	{ "a//b", "a/b", false },
	{ "//", "//", true },
	{ "+/+/+", "//", true },
	{ "sport/tennis/+", "sport/tennis/player1", true },
	{ "sport/+", "sport", false },
	{ "$SYS/#", "$SYS/a", true },
	{ "$SYS/#", "$SYS", true },
	{ "$SYS/+", "$SYS/a", true },
	{ "#", "$SYS/a", false },
	{ "+/a", "$SYS/a", false },
	{ "+", "$SYS", false },
	{ "+/#", "$SYS/a", false },
	{ "+/$x", "a/$x", true },
	{ "#", "a/$x", true },
	{ "a/+", "a/$x", true },
};

static void wildcard_cases(void **state)
{
	(void)state;
	struct session s = { 1 };
	struct rec r = { 0 };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		/* the test's own matcher agrees with the table */
		assert_int_equal(oracle_match(cases[i].filter, cases[i].topic), cases[i].match);
		for (int shared = 0; shared < 2; shared++) {
			struct subtree *t = subtree_new();
			assert_non_null(t);
			assert_int_equal(add(t, shared ? "g" : NULL, cases[i].filter, &s, 7, 1, NULL),
					 MOTE_OK);
			match(t, cases[i].topic, &r);
			if (r.n != (cases[i].match ? 1u : 0u))
				fail_msg("filter \"%s\" topic \"%s\": %zu hits", cases[i].filter,
					 cases[i].topic, r.n);
			if (r.n) {
				assert_int_equal(r.h[0].id, 1);
				assert_int_equal(r.h[0].sub_id, 7);
				assert_int_equal(r.h[0].shared, shared);
			}
			subtree_free(t);
		}
	}
	/* All filters in one tree: each reported at most once. */
	struct subtree *t = subtree_new();
	assert_non_null(t);
	size_t nc = sizeof cases / sizeof cases[0];
	for (size_t i = 0; i < nc; i++) {
		bool existed = false;
		assert_int_equal(add(t, NULL, cases[i].filter, &s, (uint32_t)i + 1, 0, &existed),
				 MOTE_OK);
		/* a filter listed twice in the table replaces its earlier entry */
		for (size_t j = 0; j < i; j++)
			if (strcmp(cases[j].filter, cases[i].filter) == 0)
				assert_true(existed);
	}
	for (size_t i = 0; i < nc; i++) {
		match(t, cases[i].topic, &r);
		size_t want = 0;
		for (size_t j = 0; j < nc; j++) {
			bool later_dup = false;
			for (size_t k = j + 1; k < nc; k++)
				later_dup |= strcmp(cases[j].filter, cases[k].filter) == 0;
			if (!later_dup && oracle_match(cases[j].filter, cases[i].topic))
				want++;
		}
		assert_int_equal(r.n, want);
	}
	subtree_free(t);
	free(r.h);
}

static void overlapping_filters_reported_once_each(void **state)
{
	(void)state;
	struct subtree *t = subtree_new();
	assert_non_null(t);
	struct session a = { 1 }, b = { 2 };
	const char *filters[] = { "a/b", "a/+", "#", "+/b", "a/#", "+/+", "+/#" };
	for (uint32_t i = 0; i < 7; i++)
		assert_int_equal(add(t, NULL, filters[i], &a, i + 1, (uint8_t)(i % 3), NULL),
				 MOTE_OK);
	assert_int_equal(add(t, NULL, "a/c", &b, 100, 2, NULL), MOTE_OK);
	assert_int_equal(subtree_count(t), 8);
	struct rec r = { 0 };
	match(t, "a/b", &r);
	assert_int_equal(r.n, 7);
	unsigned seen = 0;
	for (size_t i = 0; i < r.n; i++) {
		assert_int_equal(r.h[i].id, 1);
		assert_false(r.h[i].shared);
		assert_true(r.h[i].sub_id >= 1 && r.h[i].sub_id <= 7);
		assert_int_equal(r.h[i].qos, (r.h[i].sub_id - 1) % 3); /* its own options */
		assert_false(seen & (1u << r.h[i].sub_id));
		seen |= 1u << r.h[i].sub_id;
	}
	match(t, "a/c", &r); /* a/+ # a/# +/+ +/# from a, a/c from b */
	assert_int_equal(r.n, 6);
	match(t, "a", &r); /* # a/# +/# */
	assert_int_equal(r.n, 3);
	subtree_free(t);
	free(r.h);
}

static void re_adding_replaces_options(void **state)
{
	(void)state;
	struct subtree *t = subtree_new();
	assert_non_null(t);
	struct session a = { 1 }, b = { 2 };
	bool existed = true;
	assert_int_equal(add(t, NULL, "x/+", &a, 1, 0, &existed), MOTE_OK);
	assert_false(existed);
	assert_int_equal(add(t, NULL, "x/+", &a, 2, 2, &existed), MOTE_OK);
	assert_true(existed);
	assert_int_equal(add(t, NULL, "x/+", &b, 3, 1, &existed), MOTE_OK);
	assert_false(existed);
	/* the same filter in a group is a different subscription */
	assert_int_equal(add(t, "g", "x/+", &a, 4, 1, &existed), MOTE_OK);
	assert_false(existed);
	assert_int_equal(add(t, "g", "x/+", &a, 5, 0, &existed), MOTE_OK);
	assert_true(existed);
	assert_int_equal(add(t, "h", "x/+", &a, 6, 0, &existed), MOTE_OK);
	assert_false(existed);
	assert_int_equal(add(t, NULL, "x/+", &a, 7, 1, NULL), MOTE_OK); /* existed may be NULL */
	assert_int_equal(subtree_count(t), 4);
	assert_int_equal(subtree_node_count(t), 2);

	struct rec r = { 0 };
	match(t, "x/y", &r);
	assert_int_equal(r.n, 4);
	uint32_t sum = 0;
	for (size_t i = 0; i < r.n; i++) {
		sum += r.h[i].sub_id;
		if (r.h[i].sub_id == 7)
			assert_int_equal(r.h[i].qos, 1);
		if (r.h[i].sub_id == 5)
			assert_true(r.h[i].shared);
	}
	assert_int_equal(sum, 7 + 3 + 5 + 6);
	subtree_free(t);
	free(r.h);
}

static void removal_prunes_nodes(void **state)
{
	(void)state;
	struct subtree *t = subtree_new();
	assert_non_null(t);
	struct session a = { 1 }, b = { 2 };
	assert_int_equal(subtree_node_count(t), 0);
	assert_int_equal(add(t, NULL, "a/b/c", &a, 0, 0, NULL), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 3);
	assert_int_equal(add(t, NULL, "a/b", &a, 0, 0, NULL), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 3);
	assert_int_equal(add(t, NULL, "a/+/c", &a, 0, 0, NULL), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 5);
	assert_int_equal(add(t, NULL, "a/#", &a, 0, 0, NULL), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 6);
	assert_int_equal(add(t, NULL, "#", &a, 0, 0, NULL), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 7);
	assert_int_equal(add(t, NULL, "$SYS/x", &a, 0, 0, NULL), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 9);
	assert_int_equal(add(t, "g", "a/b", &b, 0, 0, NULL), MOTE_OK);
	assert_int_equal(add(t, NULL, "a//", &b, 0, 0, NULL), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 11);
	assert_int_equal(subtree_count(t), 8);

	/* not there: wrong session, wrong group, plain vs shared, missing path */
	assert_int_equal(del(t, NULL, "a/b/c", &b), MOTE_ENOTFOUND);
	assert_int_equal(del(t, "h", "a/b", &b), MOTE_ENOTFOUND);
	assert_int_equal(del(t, NULL, "a/b", &b), MOTE_ENOTFOUND);
	assert_int_equal(del(t, "g", "a/b", &a), MOTE_ENOTFOUND);
	assert_int_equal(del(t, NULL, "a/b/c/d", &a), MOTE_ENOTFOUND);
	assert_int_equal(del(t, NULL, "a/+/+", &a), MOTE_ENOTFOUND);
	char deep[400];
	for (int i = 0; i < 199; i++)
		memcpy(deep + 2 * i, "a/", 2);
	deep[398] = 'a';
	deep[399] = 0; /* 200 levels, deeper than any filter added */
	assert_int_equal(del(t, NULL, deep, &a), MOTE_ENOTFOUND);
	assert_int_equal(subtree_count(t), 8);
	assert_int_equal(subtree_node_count(t), 11);

	assert_int_equal(del(t, NULL, "a/b/c", &a), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 10); /* c goes; b keeps a/b */
	assert_int_equal(del(t, NULL, "a/b/c", &a), MOTE_ENOTFOUND);
	assert_int_equal(del(t, NULL, "a/b", &a), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 10); /* b keeps the group */
	assert_int_equal(del(t, "g", "a/b", &b), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 9);
	assert_int_equal(del(t, NULL, "a/+/c", &a), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 7);
	assert_int_equal(del(t, NULL, "$SYS/x", &a), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 5);
	assert_int_equal(del(t, NULL, "a//", &b), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 3); /* a, a/#, # */
	assert_int_equal(del(t, NULL, "a/#", &a), MOTE_OK);
	assert_int_equal(del(t, NULL, "#", &a), MOTE_OK);
	assert_int_equal(subtree_count(t), 0);
	assert_int_equal(subtree_node_count(t), 0);
	struct rec r = { 0 };
	match(t, "a/b", &r);
	assert_int_equal(r.n, 0);
	subtree_free(t);
	free(r.h);
}

static void remove_all_drops_one_session(void **state)
{
	(void)state;
	struct subtree *t = subtree_new();
	assert_non_null(t);
	struct session a = { 1 }, b = { 2 };
	assert_int_equal(add(t, NULL, "a/b", &a, 1, 0, NULL), MOTE_OK);
	assert_int_equal(add(t, NULL, "a/+", &a, 2, 0, NULL), MOTE_OK);
	assert_int_equal(add(t, NULL, "#", &a, 3, 0, NULL), MOTE_OK);
	assert_int_equal(add(t, "g", "x/y", &a, 4, 0, NULL), MOTE_OK);
	assert_int_equal(add(t, "h", "x/y", &a, 5, 0, NULL), MOTE_OK);
	assert_int_equal(add(t, NULL, "a/b", &b, 6, 0, NULL), MOTE_OK);
	assert_int_equal(add(t, "g", "x/y", &b, 7, 0, NULL), MOTE_OK);
	assert_int_equal(add(t, NULL, "q/r/s", &b, 8, 0, NULL), MOTE_OK);
	/* many siblings so the walk crosses a hash-table child map */
	char f[32];
	for (int i = 0; i < 100; i++) {
		snprintf(f, sizeof f, "m/%d", i);
		assert_int_equal(add(t, NULL, f, i % 2 ? &a : &b, 0, 0, NULL), MOTE_OK);
	}
	assert_int_equal(subtree_count(t), 108);
	subtree_remove_all(t, &a);
	assert_int_equal(subtree_count(t), 53);
	/* a, a/b, x, x/y, q, q/r, q/r/s, m, 50 m/even */
	assert_int_equal(subtree_node_count(t), 58);
	struct rec r = { 0 };
	match(t, "a/b", &r);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.h[0].id, 2);
	match(t, "x/y", &r);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.h[0].sub_id, 7);
	match(t, "m/3", &r);
	assert_int_equal(r.n, 0);
	match(t, "m/4", &r);
	assert_int_equal(r.n, 1);
	subtree_remove_all(t, &a); /* nothing left of a: no change */
	assert_int_equal(subtree_count(t), 53);
	subtree_remove_all(t, &b);
	assert_int_equal(subtree_count(t), 0);
	assert_int_equal(subtree_node_count(t), 0);
	subtree_free(t);
	free(r.h);
}

static void shared_groups_rotate_fairly(void **state)
{
	(void)state;
	struct subtree *t = subtree_new();
	assert_non_null(t);
	struct session s[10];
	for (int i = 0; i < 10; i++)
		s[i].id = i;
	for (int i = 1; i <= 3; i++)
		assert_int_equal(add(t, "g", "dev/+/t", &s[i], (uint32_t)i, 1, NULL), MOTE_OK);
	assert_int_equal(add(t, "h", "dev/+/t", &s[4], 4, 1, NULL), MOTE_OK);
	assert_int_equal(add(t, "h", "dev/+/t", &s[5], 5, 1, NULL), MOTE_OK);
	assert_int_equal(add(t, "g", "dev/x/+", &s[6], 6, 1, NULL), MOTE_OK); /* same name, other filter */
	assert_int_equal(add(t, NULL, "dev/#", &s[9], 9, 0, NULL), MOTE_OK);

	int got[10] = { 0 };
	struct rec r = { 0 };
	for (int m = 0; m < 300; m++) {
		match(t, "dev/x/t", &r);
		assert_int_equal(r.n, 4); /* plain + g + h + g on the other filter */
		int g = 0, h = 0, plain = 0, other = 0;
		for (size_t i = 0; i < r.n; i++) {
			int id = r.h[i].id;
			got[id]++;
			assert_int_equal(r.h[i].shared, id != 9);
			if (id >= 1 && id <= 3)
				g = id;
			else if (id == 4 || id == 5)
				h = id;
			else if (id == 9)
				plain++;
			else if (id == 6)
				other++;
		}
		assert_int_equal(g, 1 + m % 3); /* strict rotation in join order */
		assert_int_equal(h, 4 + m % 2);
		assert_int_equal(plain, 1);
		assert_int_equal(other, 1);
	}
	const int want[10] = { 0, 100, 100, 100, 150, 150, 300, 0, 0, 300 };
	for (int i = 0; i < 10; i++)
		assert_int_equal(got[i], want[i]);
	/* a topic matching only dev/#: groups not reported, cursors untouched */
	match(t, "dev/y", &r);
	assert_int_equal(r.n, 1);
	match(t, "dev/x/t", &r);
	bool saw1 = false;
	for (size_t i = 0; i < r.n; i++)
		saw1 |= r.h[i].id == 1;
	assert_true(saw1); /* 300 % 3 == 0: member 1's turn again */
	subtree_free(t);
	free(r.h);
}

static void eligible_filter_skips_members(void **state)
{
	(void)state;
	struct subtree *t = subtree_new();
	assert_non_null(t);
	struct session s[5];
	for (int i = 0; i < 5; i++) {
		s[i].id = i;
		if (i)
			assert_int_equal(add(t, "g", "t", &s[i], (uint32_t)i, 0, NULL), MOTE_OK);
	}
	bool off[5] = { false, false, true, false, false };
	struct rec r = { 0 };
	r.ineligible = off;
	int got[5] = { 0 };
	/* members 1..4, 2 offline: 1,3,4,1,3,4,... */
	for (int m = 0; m < 99; m++) {
		match(t, "t", &r);
		assert_int_equal(r.n, 1);
		const int seq[3] = { 1, 3, 4 };
		assert_int_equal(r.h[0].id, seq[m % 3]);
		got[r.h[0].id]++;
	}
	assert_int_equal(got[1], 33);
	assert_int_equal(got[2], 0);
	assert_int_equal(got[3], 33);
	assert_int_equal(got[4], 33);

	/* nobody eligible: plain rotation over everyone, from where it was */
	bool all_off[5] = { true, true, true, true, true };
	r.ineligible = all_off;
	for (int m = 0; m < 8; m++) {
		match(t, "t", &r);
		assert_int_equal(r.n, 1);
		assert_int_equal(r.h[0].id, 1 + m % 4);
	}
	/* NULL eligible: everyone */
	r.n = 0;
	subtree_match(t, (const uint8_t *)"t", 1, on_hit, NULL, &r);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.h[0].id, 1);

	/* removing members keeps the turn: next is 2; drop 1 (before the
	 * cursor) and 2 stays next; drop 2 itself and 3 is next */
	r.ineligible = NULL;
	assert_int_equal(del(t, "g", "t", &s[1]), MOTE_OK);
	match(t, "t", &r);
	assert_int_equal(r.h[0].id, 2);
	assert_int_equal(del(t, "g", "t", &s[3]), MOTE_OK); /* the one whose turn it was */
	match(t, "t", &r);
	assert_int_equal(r.h[0].id, 4);
	assert_int_equal(del(t, "g", "t", &s[4]), MOTE_OK); /* last in line: wraps */
	match(t, "t", &r);
	assert_int_equal(r.h[0].id, 2);
	assert_int_equal(del(t, "g", "t", &s[2]), MOTE_OK);
	match(t, "t", &r);
	assert_int_equal(r.n, 0);
	assert_int_equal(subtree_node_count(t), 0);

	/* the member whose turn it is leaves from the end of the line: wrap */
	for (int i = 1; i <= 3; i++)
		assert_int_equal(add(t, "g", "t", &s[i], (uint32_t)i, 0, NULL), MOTE_OK);
	match(t, "t", &r);
	assert_int_equal(r.h[0].id, 1);
	match(t, "t", &r);
	assert_int_equal(r.h[0].id, 2);
	assert_int_equal(del(t, "g", "t", &s[3]), MOTE_OK);
	for (int m = 0; m < 4; m++) { /* without eligible: the cursor is used as is */
		r.n = 0;
		subtree_match(t, (const uint8_t *)"t", 1, on_hit, NULL, &r);
		assert_int_equal(r.n, 1);
		assert_int_equal(r.h[0].id, 1 + m % 2);
	}
	subtree_free(t);
	free(r.h);
}

/* Filters far deeper than anything real: walks must not recurse. */
static void very_deep_filters(void **state)
{
	(void)state;
	const size_t levels = 30000;
	size_t len = 2 * levels - 1;
	char *f = malloc(len + 3);
	assert_non_null(f);
	for (size_t i = 0; i < levels; i++) {
		f[2 * i] = 'a';
		if (i + 1 < levels)
			f[2 * i + 1] = '/';
	}
	f[len] = 0;
	struct subtree *t = subtree_new();
	assert_non_null(t);
	struct session a = { 1 }, b = { 2 };
	assert_int_equal(add(t, NULL, f, &a, 1, 0, NULL), MOTE_OK);
	f[len - 1] = '+';
	assert_int_equal(add(t, NULL, f, &b, 2, 0, NULL), MOTE_OK);
	f[len - 1] = 'a';
	assert_int_equal(subtree_node_count(t), levels + 1);
	struct rec r = { 0 };
	match(t, f, &r);
	assert_int_equal(r.n, 2);
	memcpy(f + len, "/#", 3); /* one more level under the first filter */
	assert_int_equal(add(t, NULL, f, &a, 3, 0, NULL), MOTE_OK);
	f[len] = 0;
	match(t, f, &r); /* a/.../a matches a/.../a/# through the parent rule */
	assert_int_equal(r.n, 3);
	subtree_remove_all(t, &a);
	assert_int_equal(subtree_node_count(t), levels);
	match(t, f, &r);
	assert_int_equal(r.n, 1);
	subtree_free(t); /* frees the rest without recursion */
	free(f);
	free(r.h);
}

static void large_fan_out(void **state)
{
	(void)state;
	const int n = 100000;
	struct session *s = calloc((size_t)n + 1, sizeof *s);
	assert_non_null(s);
	struct subtree *t = subtree_new();
	assert_non_null(t);
	char f[48];
	for (int i = 0; i < n; i++) {
		s[i].id = i;
		snprintf(f, sizeof f, "dev/%d/telemetry", i);
		assert_int_equal(add(t, NULL, f, &s[i], (uint32_t)i, 0, NULL), MOTE_OK);
	}
	s[n].id = n;
	assert_int_equal(add(t, NULL, "dev/+/telemetry", &s[n], 0, 0, NULL), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 1 + 2 * (size_t)n + 2);
	struct rec r = { 0 };
	for (int i = 0; i < n; i += 997) {
		snprintf(f, sizeof f, "dev/%d/telemetry", i);
		match(t, f, &r);
		assert_int_equal(r.n, 2);
		assert_int_equal(r.h[0].id + r.h[1].id, i + n);
	}
	match(t, "dev/100000/telemetry", &r); /* only the wildcard */
	assert_int_equal(r.n, 1);
	for (int i = 0; i < n; i++) {
		snprintf(f, sizeof f, "dev/%d/telemetry", i);
		assert_int_equal(del(t, NULL, f, &s[i]), MOTE_OK);
	}
	assert_int_equal(subtree_node_count(t), 3);
	assert_int_equal(del(t, NULL, "dev/+/telemetry", &s[n]), MOTE_OK);
	assert_int_equal(subtree_node_count(t), 0);
	subtree_free(t);
	free(s);
	free(r.h);
}

/* ---- random cross-check ---- */

static uint64_t rnd(uint64_t *st)
{
	*st ^= *st >> 12;
	*st ^= *st << 25;
	*st ^= *st >> 27;
	return *st * 0x2545f4914f6cdd1dull;
}

static const char *const topic_lv[] = { "a", "b", "c", "", "$x", "dev" };
#define N_TOPIC_LV (sizeof topic_lv / sizeof topic_lv[0])

static void random_name(uint64_t *st, char *out, bool filter)
{
	int levels = 1 + (int)(rnd(st) % 5);
	out[0] = 0;
	for (int i = 0; i < levels; i++) {
		if (i)
			strcat(out, "/");
		uint64_t k = rnd(st) % (N_TOPIC_LV + (filter ? 3 : 0));
		if (k < N_TOPIC_LV) {
			strcat(out, topic_lv[k]);
		} else if (k == N_TOPIC_LV + 2 || i + 1 == levels) {
			strcat(out, k == N_TOPIC_LV ? "+" : "#");
			if (k != N_TOPIC_LV)
				return; /* '#' ends a filter */
		} else {
			strcat(out, "+");
		}
	}
}

struct model_sub {
	int sid;
	int group; /* -1 plain */
	char filter[40];
	uint32_t sub_id;
	uint8_t qos;
	bool alive;
};

struct model {
	struct model_sub *e;
	size_t n;
	struct model_sub **by_id; /* sub_id -> entry */
	struct session *sess;
	size_t alive;
};

static const char *const groups[] = { "g1", "g2", "g3" };

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_topic(struct subtree *t, const struct model *m, const char *topic,
			struct rec *r)
{
	match(t, topic, r);
	uint32_t *want = malloc((m->n + 1) * sizeof *want), *got = malloc((r->n + 1) * sizeof *got);
	char **want_keys = malloc((m->n + 1) * sizeof *want_keys);
	char **got_keys = malloc((r->n + 1) * sizeof *got_keys);
	assert_true(want && got && want_keys && got_keys);
	size_t nw = 0, ng = 0, nwk = 0, ngk = 0;
	for (size_t i = 0; i < m->n; i++) {
		const struct model_sub *e = &m->e[i];
		if (!e->alive || !oracle_match(e->filter, topic))
			continue;
		if (e->group < 0) {
			want[nw++] = e->sub_id;
			continue;
		}
		char *key = malloc(48);
		assert_non_null(key);
		snprintf(key, 48, "%s %s", groups[e->group], e->filter);
		bool dup = false;
		for (size_t k = 0; k < nwk && !dup; k++)
			dup = strcmp(want_keys[k], key) == 0;
		if (dup)
			free(key);
		else
			want_keys[nwk++] = key;
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct hit *h = &r->h[i];
		struct model_sub *e = m->by_id[h->sub_id];
		assert_non_null(e);
		assert_true(e->alive);
		assert_int_equal(e->sid, h->id);
		assert_int_equal(e->qos, h->qos);
		assert_int_equal(e->group >= 0, h->shared);
		assert_true(oracle_match(e->filter, topic));
		if (!h->shared) {
			got[ng++] = h->sub_id;
			continue;
		}
		char *key = malloc(48);
		assert_non_null(key);
		snprintf(key, 48, "%s %s", groups[e->group], e->filter);
		got_keys[ngk++] = key;
	}
	qsort(want, nw, sizeof *want, cmp_u32);
	qsort(got, ng, sizeof *got, cmp_u32);
	if (nw != ng)
		fail_msg("topic \"%s\": %zu plain hits, want %zu", topic, ng, nw);
	for (size_t i = 0; i < nw; i++)
		assert_int_equal(want[i], got[i]);
	/* one member per matching (group, filter), no group twice */
	qsort(want_keys, nwk, sizeof *want_keys, cmp_str);
	qsort(got_keys, ngk, sizeof *got_keys, cmp_str);
	assert_int_equal(nwk, ngk);
	for (size_t i = 0; i < nwk; i++)
		assert_string_equal(want_keys[i], got_keys[i]);
	for (size_t i = 0; i < nwk; i++)
		free(want_keys[i]);
	for (size_t i = 0; i < ngk; i++)
		free(got_keys[i]);
	free(want);
	free(got);
	free(want_keys);
	free(got_keys);
}

static void check_many(struct subtree *t, struct model *m, uint64_t *st, int topics,
		       struct rec *r)
{
	assert_int_equal(subtree_count(t), m->alive);
	char topic[64];
	for (int i = 0; i < topics; i++) {
		random_name(st, topic, false);
		check_topic(t, m, topic, r);
	}
}

static void random_cross_check(void **state)
{
	(void)state;
	const int nsess = 300, nops = 10000;
	uint64_t st = 0x9e3779b97f4a7c15ull;
	struct model m = { 0 };
	m.e = calloc((size_t)nops, sizeof *m.e);
	m.by_id = calloc((size_t)nops + 1, sizeof *m.by_id);
	m.sess = calloc((size_t)nsess, sizeof *m.sess);
	assert_true(m.e && m.by_id && m.sess);
	for (int i = 0; i < nsess; i++)
		m.sess[i].id = i;
	struct subtree *t = subtree_new();
	assert_non_null(t);
	struct rec r = { 0 };

	for (int op = 0; op < nops; op++) {
		struct model_sub x = { .sid = (int)(rnd(&st) % (uint64_t)nsess),
				       .group = rnd(&st) % 5 == 0 ? (int)(rnd(&st) % 3) : -1,
				       .sub_id = (uint32_t)op + 1,
				       .qos = (uint8_t)(rnd(&st) % 3),
				       .alive = true };
		random_name(&st, x.filter, true);
		struct model_sub *old = NULL;
		for (size_t i = 0; i < m.n && !old; i++)
			if (m.e[i].alive && m.e[i].sid == x.sid && m.e[i].group == x.group &&
			    strcmp(m.e[i].filter, x.filter) == 0)
				old = &m.e[i];
		bool existed = !old;
		assert_int_equal(add(t, x.group < 0 ? NULL : groups[x.group], x.filter,
				     &m.sess[x.sid], x.sub_id, x.qos, &existed),
				 MOTE_OK);
		assert_int_equal(existed, old != NULL);
		if (old) {
			m.by_id[old->sub_id] = NULL;
			old->sub_id = x.sub_id;
			old->qos = x.qos;
			m.by_id[x.sub_id] = old;
		} else {
			m.e[m.n] = x;
			m.by_id[x.sub_id] = &m.e[m.n];
			m.n++;
			m.alive++;
		}
	}
	assert_true(m.alive > 1000); /* the generator does produce a real mix */
	check_many(t, &m, &st, 800, &r);

	/* remove about half, one by one, plus some that are not there */
	for (size_t i = 0; i < m.n; i++) {
		struct model_sub *e = &m.e[i];
		if (rnd(&st) % 2)
			continue;
		const char *g = e->group < 0 ? NULL : groups[e->group];
		assert_int_equal(del(t, g, e->filter, &m.sess[e->sid]), MOTE_OK);
		assert_int_equal(del(t, g, e->filter, &m.sess[e->sid]), MOTE_ENOTFOUND);
		e->alive = false;
		m.alive--;
	}
	check_many(t, &m, &st, 400, &r);

	/* sessions ending */
	for (int sid = 0; sid < nsess; sid += 3) {
		subtree_remove_all(t, &m.sess[sid]);
		for (size_t i = 0; i < m.n; i++)
			if (m.e[i].alive && m.e[i].sid == sid) {
				m.e[i].alive = false;
				m.alive--;
			}
	}
	check_many(t, &m, &st, 400, &r);

	for (size_t i = 0; i < m.n; i++) {
		struct model_sub *e = &m.e[i];
		if (!e->alive)
			continue;
		assert_int_equal(del(t, e->group < 0 ? NULL : groups[e->group], e->filter,
				     &m.sess[e->sid]),
				 MOTE_OK);
		e->alive = false;
		m.alive--;
	}
	assert_int_equal(subtree_count(t), 0);
	assert_int_equal(subtree_node_count(t), 0);
	subtree_free(t);
	free(m.e);
	free(m.by_id);
	free(m.sess);
	free(r.h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wildcard_cases),
		cmocka_unit_test(overlapping_filters_reported_once_each),
		cmocka_unit_test(re_adding_replaces_options),
		cmocka_unit_test(removal_prunes_nodes),
		cmocka_unit_test(remove_all_drops_one_session),
		cmocka_unit_test(shared_groups_rotate_fairly),
		cmocka_unit_test(eligible_filter_skips_members),
		cmocka_unit_test(very_deep_filters),
		cmocka_unit_test(large_fan_out),
		cmocka_unit_test(random_cross_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
