/*
 * subtree.c - the subscription trie; see subtree.h.
 *
 * One node per distinct filter prefix, one level per edge. A node's literal
 * children sit in a level_map (array, then hash table); its '+' and '#'
 * children have their own pointers so the match walk reaches wildcards
 * without hashing. Subscriptions ending at a node are a small vector of
 * (session, opts); shared subscriptions are per-node groups keyed by name,
 * each with members in join order and a round-robin cursor.
 *
 * Invariants:
 *  - every node but the root holds a subscription, a group or a child
 *    (removals prune empty nodes up the path; adds link nodes only once
 *    everything they need is allocated);
 *  - a '#' node has no children (the codec guarantees '#' is last);
 *  - a session appears at most once in a node's `subs` and at most once in
 *    each group; a group has >= 1 member and cursor < its member count;
 *  - t->frames holds at least (levels of the deepest filter ever added) + 2
 *    frames, and a node at depth d is reached with d+1 frames, so walks use
 *    an explicit stack that never overflows and never allocates. Walks do
 *    not recurse because a valid filter may have 32k levels.
 *
 * Out of memory: subtree_add allocates everything first (frame stack, new
 * nodes, the group, the entry slot, the parent's child-table slot) and
 * links the new nodes last. A failure can leave grown capacity behind (a
 * longer frame stack, vector or table), never a node, group or entry.
 *
 * Callbacks (subtree_match's fn and eligible) must not modify the tree.
 */
#include "broker/subtree.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "broker/level_map.h"

#define MIN_FRAMES 16

struct sub_entry {
	struct session *s;
	struct sub_opts o;
};

struct sub_vec {
	struct sub_entry *v;
	uint32_t len, cap;
};

struct group {
	struct sub_vec members; /* join order = round-robin order */
	uint32_t cursor;        /* the member whose turn is next */
	uint32_t name_len;
	uint8_t name[];
};

struct snode {
	struct lm_link link;   /* this node's level; in the parent's kids if literal */
	struct level_map kids; /* literal children */
	struct snode *plus;
	struct snode *hash;
	struct sub_vec subs;
	struct group **groups;
	uint32_t ngroups, gcap;
	uint8_t key[];
};

/* One entry of an explicit walk stack; frame d holds a node at depth d. */
struct frame {
	struct snode *n;
	size_t pos; /* match: start of the topic level n consumes; > len when none left */
	size_t end; /* match: end of that level */
	struct lm_iter it;
	uint8_t stage;
};

struct subtree {
	struct snode *root;
	struct lm_key key;
	size_t count; /* plain subscriptions + shared members */
	size_t nodes; /* nodes below the root */
	struct frame *frames;
	size_t nframes;
};

static struct snode *as_node(struct lm_link *l)
{
	return LM_CONTAINER(l, struct snode, link);
}

/* ---- vectors and groups ---- */

/* Index of s in v, or v->len. */
static uint32_t vec_index(const struct sub_vec *v, const struct session *s)
{
	uint32_t i = 0;
	while (i < v->len && v->v[i].s != s)
		i++;
	return i;
}

/* Room for one more entry. MOTE_ENOMEM leaves v as it was. */
static enum mote_err vec_reserve(struct sub_vec *v)
{
	if (v->len < v->cap)
		return MOTE_OK;
	if (v->cap > UINT32_MAX / 2)
		return MOTE_ENOMEM;
	uint32_t ncap = v->cap ? v->cap * 2 : 1;
	struct sub_entry *nv = realloc(v->v, (size_t)ncap * sizeof *nv);
	if (!nv)
		return MOTE_ENOMEM;
	v->v = nv;
	v->cap = ncap;
	return MOTE_OK;
}

/* Gives memory back once mostly unused; a failed realloc keeps the old one. */
static void vec_shrink(struct sub_vec *v)
{
	if (v->len == 0) {
		free(v->v);
		v->v = NULL;
		v->cap = 0;
	} else if (v->cap >= 8 && v->len <= v->cap / 4) {
		struct sub_entry *nv = realloc(v->v, (size_t)(v->cap / 2) * sizeof *nv);
		if (nv) {
			v->v = nv;
			v->cap /= 2;
		}
	}
}

/* Plain subscribers are unordered: fill the hole with the last one. */
static void vec_swap_remove(struct sub_vec *v, uint32_t i)
{
	v->v[i] = v->v[--v->len];
	vec_shrink(v);
}

static struct group *group_new(const uint8_t *name, size_t len)
{
	struct group *g = malloc(sizeof *g + len);
	if (!g)
		return NULL;
	memset(g, 0, sizeof *g);
	g->name_len = (uint32_t)len;
	memcpy(g->name, name, len);
	return g;
}

static void group_free(struct group *g)
{
	if (!g)
		return;
	free(g->members.v);
	free(g);
}

static struct group *group_find(const struct snode *n, const uint8_t *name, size_t len,
				uint32_t *idx)
{
	for (uint32_t i = 0; i < n->ngroups; i++) {
		struct group *g = n->groups[i];
		if (g->name_len == len && memcmp(g->name, name, len) == 0) {
			*idx = i;
			return g;
		}
	}
	return NULL;
}

/* Members keep their order so the rotation stays fair across leaves. */
static void group_drop_member(struct group *g, uint32_t i)
{
	struct sub_vec *v = &g->members;
	memmove(&v->v[i], &v->v[i + 1], (size_t)(v->len - i - 1) * sizeof *v->v);
	v->len--;
	if (i < g->cursor)
		g->cursor--;
	if (g->cursor >= v->len)
		g->cursor = 0;
	vec_shrink(v);
}

/* The member whose turn it is, skipping ineligible ones; advances the turn. */
static struct sub_entry *group_pick(struct group *g, subtree_eligible_fn eligible, void *ctx)
{
	uint32_t n = g->members.len;
	uint32_t chosen = g->cursor;
	if (eligible) {
		for (uint32_t i = 0; i < n; i++) {
			uint32_t k = g->cursor + i;
			if (k >= n)
				k -= n;
			if (eligible(ctx, g->members.v[k].s)) {
				chosen = k;
				break;
			}
		}
	}
	g->cursor = chosen + 1 == n ? 0 : chosen + 1;
	return &g->members.v[chosen];
}

static enum mote_err groups_reserve(struct snode *n)
{
	if (n->ngroups < n->gcap)
		return MOTE_OK;
	if (n->gcap > UINT32_MAX / 2)
		return MOTE_ENOMEM;
	uint32_t ncap = n->gcap ? n->gcap * 2 : 1;
	struct group **ng = realloc(n->groups, (size_t)ncap * sizeof *ng);
	if (!ng)
		return MOTE_ENOMEM;
	n->groups = ng;
	n->gcap = ncap;
	return MOTE_OK;
}

/* Groups are unordered within a node: the last one fills the hole. */
static void node_drop_group(struct snode *n, uint32_t gi)
{
	group_free(n->groups[gi]);
	n->groups[gi] = n->groups[--n->ngroups];
	if (n->ngroups == 0) {
		free(n->groups);
		n->groups = NULL;
		n->gcap = 0;
	}
}

/* ---- nodes ---- */

static struct snode *node_new(const struct lm_key *k, const uint8_t *lv, size_t len)
{
	struct snode *c = calloc(1, sizeof *c + len);
	if (!c)
		return NULL;
	if (len)
		memcpy(c->key, lv, len);
	lm_link_init(&c->link, k, c->key, (uint32_t)len);
	return c;
}

/* Frees n and what it holds; its children must be gone or freed separately. */
static void node_free(struct snode *n)
{
	free(n->subs.v);
	for (uint32_t i = 0; i < n->ngroups; i++)
		group_free(n->groups[i]);
	free(n->groups);
	lm_release(&n->kids);
	free(n);
}

static bool node_empty(const struct snode *n)
{
	return n->subs.len == 0 && n->ngroups == 0 && n->kids.len == 0 && !n->plus && !n->hash;
}

static struct snode *node_child(const struct subtree *t, const struct snode *n,
				const uint8_t *lv, size_t len)
{
	if (lvl_is_plus(lv, len))
		return n->plus;
	if (lvl_is_hash(lv, len))
		return n->hash;
	struct lm_link *l = lm_find(&n->kids, &t->key, lv, len);
	return l ? as_node(l) : NULL;
}

static enum mote_err link_child(struct snode *p, struct snode *c)
{
	if (lvl_is_plus(c->key, c->link.klen)) {
		p->plus = c;
		return MOTE_OK;
	}
	if (lvl_is_hash(c->key, c->link.klen)) {
		p->hash = c;
		return MOTE_OK;
	}
	return lm_insert(&p->kids, &c->link);
}

/* Not for use while p->kids is being iterated (lm_remove may resize). */
static void unlink_child(struct snode *p, struct snode *c)
{
	if (p->plus == c)
		p->plus = NULL;
	else if (p->hash == c)
		p->hash = NULL;
	else
		lm_remove(&p->kids, &c->link);
}

/* Frees a chain built by subtree_add that never got linked: one child each. */
static void chain_free(struct snode *c)
{
	while (c) {
		struct snode *next = c->plus ? c->plus : c->hash;
		if (!next && c->kids.len)
			next = as_node(c->kids.slots[0]);
		node_free(c);
		c = next;
	}
}

static enum mote_err frames_reserve(struct subtree *t, size_t levels)
{
	if (levels + 2 <= t->nframes)
		return MOTE_OK;
	if (levels > SIZE_MAX / sizeof(struct frame) - 2)
		return MOTE_ENOMEM;
	struct frame *nf = realloc(t->frames, (levels + 2) * sizeof *nf);
	if (!nf)
		return MOTE_ENOMEM;
	t->frames = nf;
	t->nframes = levels + 2;
	return MOTE_OK;
}

/* ---- public ---- */

struct subtree *subtree_new(void)
{
	struct subtree *t = calloc(1, sizeof *t);
	if (!t)
		goto fail;
	lm_key_init(&t->key);
	t->root = node_new(&t->key, NULL, 0);
	t->frames = calloc(MIN_FRAMES, sizeof *t->frames);
	if (!t->root || !t->frames)
		goto fail;
	t->nframes = MIN_FRAMES;
	return t;
fail:
	if (t) {
		free(t->root);
		free(t->frames);
		free(t);
	}
	return NULL;
}

enum mote_err subtree_add(struct subtree *t, const uint8_t *group, size_t glen,
			  const uint8_t *filter, size_t flen, struct session *s,
			  const struct sub_opts *opts, bool *existed)
{
	enum mote_err err = MOTE_OK;
	struct snode *chain = NULL;  /* new nodes, linked to each other, not yet to the tree */
	struct snode *attach = NULL; /* the existing node the chain will hang from */
	struct group *newg = NULL;   /* a new group, not yet in its node */
	size_t added = 0;
	struct snode *n = t->root;
	size_t pos = 0;
	bool whole = false;

	if (existed)
		*existed = false;
	if (flen > UINT32_MAX || glen > UINT32_MAX) {
		err = MOTE_EINVAL;
		goto out;
	}
	if ((err = frames_reserve(t, lvl_count(filter, flen))) != MOTE_OK)
		goto out;

	/* Follow the part of the path that exists. */
	for (;;) {
		size_t end = lvl_end(filter, flen, pos);
		struct snode *c = node_child(t, n, filter + pos, end - pos);
		if (!c)
			break;
		n = c;
		if (end == flen) {
			whole = true;
			break;
		}
		pos = end + 1;
	}
	/* Build the missing levels off the tree. */
	if (!whole) {
		attach = n;
		struct snode *last = NULL;
		for (;;) {
			size_t end = lvl_end(filter, flen, pos);
			struct snode *c = node_new(&t->key, filter + pos, end - pos);
			if (!c) {
				err = MOTE_ENOMEM;
				goto out;
			}
			if (!last) {
				chain = c;
			} else if ((err = link_child(last, c)) != MOTE_OK) {
				node_free(c);
				goto out;
			}
			last = c;
			added++;
			if (end == flen)
				break;
			pos = end + 1;
		}
		n = last;
	}

	struct sub_vec *vec = &n->subs;
	if (glen) {
		uint32_t gi;
		struct group *g = group_find(n, group, glen, &gi);
		if (!g) {
			if ((err = groups_reserve(n)) != MOTE_OK)
				goto out;
			if (!(g = newg = group_new(group, glen))) {
				err = MOTE_ENOMEM;
				goto out;
			}
		}
		vec = &g->members;
	}
	uint32_t i = vec_index(vec, s);
	if (i < vec->len) {
		/* Only possible on an existing node and group: nothing new to free. */
		vec->v[i].o = *opts;
		if (existed)
			*existed = true;
		goto out;
	}
	if ((err = vec_reserve(vec)) != MOTE_OK)
		goto out;
	if (chain && (err = link_child(attach, chain)) != MOTE_OK)
		goto out;

	/* Nothing below can fail. */
	vec->v[vec->len++] = (struct sub_entry){ s, *opts };
	if (newg) {
		n->groups[n->ngroups++] = newg;
		newg = NULL;
	}
	chain = NULL;
	t->nodes += added;
	t->count++;
out:
	chain_free(chain);
	group_free(newg);
	return err;
}

enum mote_err subtree_remove(struct subtree *t, const uint8_t *group, size_t glen,
			     const uint8_t *filter, size_t flen, struct session *s)
{
	enum mote_err err = MOTE_ENOTFOUND;
	struct frame *f = t->frames;
	size_t d = 0, pos = 0;

	/* Record the path; it cannot be deeper than the frames (see top). */
	f[0].n = t->root;
	for (;;) {
		size_t end = lvl_end(filter, flen, pos);
		if (d + 2 > t->nframes)
			goto out;
		struct snode *c = node_child(t, f[d].n, filter + pos, end - pos);
		if (!c)
			goto out;
		f[++d].n = c;
		if (end == flen)
			break;
		pos = end + 1;
	}
	struct snode *n = f[d].n;
	if (glen) {
		uint32_t gi;
		struct group *g = group_find(n, group, glen, &gi);
		if (!g)
			goto out;
		uint32_t i = vec_index(&g->members, s);
		if (i == g->members.len)
			goto out;
		group_drop_member(g, i);
		if (g->members.len == 0)
			node_drop_group(n, gi);
	} else {
		uint32_t i = vec_index(&n->subs, s);
		if (i == n->subs.len)
			goto out;
		vec_swap_remove(&n->subs, i);
	}
	t->count--;
	err = MOTE_OK;
	for (; d > 0 && node_empty(f[d].n); d--) {
		unlink_child(f[d - 1].n, f[d].n);
		node_free(f[d].n);
		t->nodes--;
	}
out:
	return err;
}

static void report(struct snode *n, subtree_match_fn fn, subtree_eligible_fn eligible, void *ctx)
{
	for (uint32_t i = 0; i < n->subs.len; i++)
		fn(ctx, n->subs.v[i].s, &n->subs.v[i].o, false);
	for (uint32_t i = 0; i < n->ngroups; i++) {
		struct sub_entry *e = group_pick(n->groups[i], eligible, ctx);
		fn(ctx, e->s, &e->o, true);
	}
}

/*
 * Depth-first over the nodes the topic can reach. Frame stages: 0 = not yet
 * looked at, 1 = exact child done (try '+'), 2 = done. A node whose level is
 * past the end of the topic matches it whole, and so does its '#' child
 * ("a/#" matches "a"). Otherwise its '#' child matches the rest of the topic.
 */
void subtree_match(struct subtree *t, const uint8_t *name, size_t len, subtree_match_fn fn,
		   subtree_eligible_fn eligible, void *ctx)
{
	/* [MQTT-4.7.2-1] wildcards at the first level never match a '$' topic */
	bool dollar = len > 0 && name[0] == '$';
	struct frame *f = t->frames;
	size_t top = 0;
	f[0] = (struct frame){ .n = t->root, .pos = 0 };
	for (;;) {
		struct frame *cur = &f[top];
		struct snode *n = cur->n, *next = NULL;
		bool wild = !(top == 0 && dollar);
		if (cur->stage == 0 && cur->pos > len) {
			report(n, fn, eligible, ctx);
			if (n->hash)
				report(n->hash, fn, eligible, ctx);
			cur->stage = 2;
		}
		if (cur->stage == 0) {
			cur->stage = 1;
			cur->end = lvl_end(name, len, cur->pos);
			if (wild && n->hash)
				report(n->hash, fn, eligible, ctx);
			struct lm_link *l =
				lm_find(&n->kids, &t->key, name + cur->pos, cur->end - cur->pos);
			if (l)
				next = as_node(l);
		}
		if (!next && cur->stage == 1) {
			cur->stage = 2;
			if (wild)
				next = n->plus;
		}
		if (next) {
			assert(top + 1 < t->nframes);
			f[++top] = (struct frame){ .n = next, .pos = cur->end + 1 };
			continue;
		}
		if (top == 0)
			break;
		top--;
	}
}

size_t subtree_count(const struct subtree *t)
{
	return t->count;
}

size_t subtree_node_count(const struct subtree *t)
{
	return t->nodes;
}

/* Drops the entries of s at n, or all of them when `all`. */
static void purge(struct subtree *t, struct snode *n, const struct session *s, bool all)
{
	if (all) {
		t->count -= n->subs.len;
		n->subs.len = 0;
		vec_shrink(&n->subs);
	} else {
		uint32_t i = vec_index(&n->subs, s);
		if (i < n->subs.len) {
			vec_swap_remove(&n->subs, i);
			t->count--;
		}
	}
	/* Downwards, so the group node_drop_group moves into gi was already seen. */
	for (uint32_t gi = n->ngroups; gi-- > 0;) {
		struct group *g = n->groups[gi];
		if (all) {
			t->count -= g->members.len;
			g->members.len = 0;
		} else {
			uint32_t i = vec_index(&g->members, s);
			if (i == g->members.len)
				continue;
			group_drop_member(g, i);
			t->count--;
		}
		if (g->members.len == 0)
			node_drop_group(n, gi);
	}
}

enum { ST_ENTER, ST_KIDS, ST_PLUS, ST_HASH, ST_DONE };

/* Post-order walk of the whole tree: purge each node, free it once empty. */
static void walk_purge(struct subtree *t, const struct session *s, bool all)
{
	struct frame *f = t->frames;
	size_t top = 0;
	f[0] = (struct frame){ .n = t->root, .stage = ST_ENTER };
	for (;;) {
		struct frame *cur = &f[top];
		struct snode *n = cur->n, *next = NULL;
		if (cur->stage == ST_ENTER) {
			purge(t, n, s, all);
			lm_iter_init(&n->kids, &cur->it);
			cur->stage = ST_KIDS;
		}
		if (cur->stage == ST_KIDS) {
			struct lm_link *l = lm_iter_next(&n->kids, &cur->it);
			if (l) {
				next = as_node(l);
			} else {
				lm_shrink(&n->kids);
				cur->stage = ST_PLUS;
			}
		}
		if (!next && cur->stage == ST_PLUS) {
			cur->stage = ST_HASH;
			next = n->plus;
		}
		if (!next && cur->stage == ST_HASH) {
			cur->stage = ST_DONE;
			next = n->hash;
		}
		if (next) {
			assert(top + 1 < t->nframes);
			f[++top] = (struct frame){ .n = next, .stage = ST_ENTER };
			continue;
		}
		if (top == 0)
			break;
		top--;
		if (!node_empty(n))
			continue;
		struct snode *p = f[top].n;
		if (p->plus == n)
			p->plus = NULL;
		else if (p->hash == n)
			p->hash = NULL;
		else
			lm_iter_remove(&p->kids, &f[top].it); /* p is walking its kids */
		node_free(n);
		t->nodes--;
	}
}

void subtree_remove_all(struct subtree *t, struct session *s)
{
	walk_purge(t, s, false);
}

void subtree_free(struct subtree *t)
{
	if (!t)
		return;
	walk_purge(t, NULL, true);
	node_free(t->root);
	free(t->frames);
	free(t);
}
