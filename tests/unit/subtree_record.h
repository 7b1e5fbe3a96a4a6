/*
 * subtree_record.h - what the subscription-tree tests share: a stand-in
 * session (the tree never looks inside one), and a recorder of every call of
 * the match callback, in order, with an optional "ineligible" set for the
 * shared-group filter. Header-only; include after cmocka.h.
 */
#ifndef MOTE_TESTS_SUBTREE_RECORD_H
#define MOTE_TESTS_SUBTREE_RECORD_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/subtree.h"

struct session {
	int id;
};

/* One call of the match callback. */
struct hit {
	int id;
	uint32_t sub_id;
	uint8_t qos;
	bool shared;
};

struct rec {
	struct hit *h;
	size_t n, cap;
	const bool *ineligible; /* indexed by session id; NULL = all eligible */
};

static void on_hit(void *ctx, struct session *s, const struct sub_opts *o, bool shared)
{
	struct rec *r = ctx;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->h = realloc(r->h, r->cap * sizeof *r->h);
		assert_non_null(r->h);
	}
	r->h[r->n++] = (struct hit){ s->id, o->sub_id, o->qos, shared };
}

static bool is_eligible(void *ctx, struct session *s)
{
	const struct rec *r = ctx;
	return !r->ineligible || !r->ineligible[s->id];
}

/* Records the matches of `topic` in r (from empty). */
static void match(struct subtree *t, const char *topic, struct rec *r)
{
	r->n = 0;
	subtree_match(t, (const uint8_t *)topic, strlen(topic), on_hit, is_eligible, r);
}

#endif
