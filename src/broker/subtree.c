/*
 * subtree.c - the subscription trie; see subtree.h.
 *
 * One node per distinct filter prefix, one level per edge, on the wild trie
 * of trie.h: a node's literal children sit in a level_map (array, then hash
 * table); its '+' and '#' children have their own pointers so the match walk
 * reaches wildcards without hashing. Subscriptions ending at a node are a
 * small vector of (session, opts); shared subscriptions are per-node groups
 * keyed by name, each with members in join order and a round-robin cursor.
 *
 * Invariants:
 *  - every node but the root holds a subscription, a group or a child
 *    (removals prune empty nodes up the path; adds link nodes only once
 *    everything they need is allocated);
 *  - a '#' node has no children (the codec guarantees '#' is last);
 *  - a session appears at most once in a node's `subs` and at most once in
 *    each group; a group has >= 1 member and cursor < its member count;
 *  - walks use the trie's frame stack (see trie.h): it never overflows and
 *    never allocates, so subtree_match allocates nothing.
 *
 * Out of memory: subtree_add allocates everything first (frame stack, new
 * nodes, the group, the entry slot, the parent's child-table slot) and
 * links the new nodes last (trie_path_build, then trie_path_attach). A
 * failure can leave grown capacity behind (a longer frame stack, vector or
 * table), never a node, group or entry.
 *
 * Callbacks (subtree_match's fn and eligible) must not modify the tree.
 */
#include "broker/subtree.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "broker/trie.h"

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
	struct trie_wnode w; /* first: the trie allocates and frees nodes through it */
	struct sub_vec subs;
	struct group **groups;
	uint32_t ngroups, gcap;
};
static_assert(offsetof(struct snode, w) == 0, "trie node base must come first");

struct subtree {
	struct trie trie; /* match frames: pos = start of the topic level n consumes
			   * (> len when none left), end = end of that level */
	size_t count;     /* plain subscriptions + shared members */
};

static struct snode *sn(struct trie_node *b)
{
	return LM_CONTAINER(b, struct snode, w.base);
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

/* ---- nodes (the payload side; structure is trie.c's) ---- */

static bool payload_empty(const struct trie_node *b)
{
	const struct snode *n = LM_CONTAINER(b, const struct snode, w.base);
	return n->subs.len == 0 && n->ngroups == 0;
}

static void payload_release(struct trie_node *b)
{
	struct snode *n = sn(b);
	free(n->subs.v);
	for (uint32_t i = 0; i < n->ngroups; i++)
		group_free(n->groups[i]);
	free(n->groups);
}

static const struct trie_ops subtree_ops = {
	.node_size = sizeof(struct snode),
	.wild = true,
	.payload_empty = payload_empty,
	.payload_release = payload_release,
};

/* ---- public ---- */

struct subtree *subtree_new(void)
{
	struct subtree *t = calloc(1, sizeof *t);
	if (t && trie_init(&t->trie, &subtree_ops) != MOTE_OK) {
		free(t);
		t = NULL;
	}
	return t;
}

enum mote_err subtree_add(struct subtree *t, const uint8_t *group, size_t glen,
			  const uint8_t *filter, size_t flen, struct session *s,
			  const struct sub_opts *opts, bool *existed)
{
	enum mote_err err = MOTE_OK;
	struct trie_path path = { .chain = NULL }; /* new nodes: not in the tree until attached */
	struct group *newg = NULL;                 /* a new group, not yet in its node */

	if (existed)
		*existed = false;
	if (flen > UINT32_MAX || glen > UINT32_MAX) {
		err = MOTE_EINVAL;
		goto out;
	}
	if ((err = trie_path_build(&t->trie, filter, flen, &path)) != MOTE_OK)
		goto out;
	struct snode *n = sn(path.node);
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
	if ((err = trie_path_attach(&t->trie, &path)) != MOTE_OK)
		goto out;

	/* Nothing below can fail. */
	vec->v[vec->len++] = (struct sub_entry){ s, *opts };
	if (newg) {
		n->groups[n->ngroups++] = newg;
		newg = NULL;
	}
	t->count++;
out:
	trie_path_drop(&t->trie, &path);
	group_free(newg);
	return err;
}

enum mote_err subtree_remove(struct subtree *t, const uint8_t *group, size_t glen,
			     const uint8_t *filter, size_t flen, struct session *s)
{
	enum mote_err err = MOTE_ENOTFOUND;
	size_t d = trie_path_find(&t->trie, filter, flen);
	if (d == 0)
		goto out;
	struct snode *n = sn(t->trie.frames[d].n);
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
	trie_prune_path(&t->trie, d);
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
	struct trie_frame *f = t->trie.frames;
	size_t top = 0;
	f[0] = (struct trie_frame){ .n = t->trie.root, .pos = 0 };
	for (;;) {
		struct trie_frame *cur = &f[top];
		struct snode *n = sn(cur->n);
		struct trie_node *next = NULL;
		bool wild = !(top == 0 && dollar);
		if (cur->stage == 0 && cur->pos > len) {
			report(n, fn, eligible, ctx);
			if (n->w.hash)
				report(sn(n->w.hash), fn, eligible, ctx);
			cur->stage = 2;
		}
		if (cur->stage == 0) {
			cur->stage = 1;
			cur->end = lvl_end(name, len, cur->pos);
			if (wild && n->w.hash)
				report(sn(n->w.hash), fn, eligible, ctx);
			struct lm_link *l = lm_find(&n->w.base.kids, &t->trie.key, name + cur->pos,
						    cur->end - cur->pos);
			if (l)
				next = trie_node_of(l);
		}
		if (!next && cur->stage == 1) {
			cur->stage = 2;
			if (wild)
				next = n->w.plus;
		}
		if (next) {
			assert(top + 1 < t->trie.nframes);
			f[++top] = (struct trie_frame){ .n = next, .pos = cur->end + 1 };
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
	return t->trie.nodes;
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
	struct trie_frame *f = t->trie.frames;
	size_t top = 0;
	f[0] = (struct trie_frame){ .n = t->trie.root, .stage = ST_ENTER };
	for (;;) {
		struct trie_frame *cur = &f[top];
		struct snode *n = sn(cur->n);
		struct trie_node *next = NULL;
		if (cur->stage == ST_ENTER) {
			purge(t, n, s, all);
			lm_iter_init(&n->w.base.kids, &cur->it);
			cur->stage = ST_KIDS;
		}
		if (cur->stage == ST_KIDS) {
			struct lm_link *l = lm_iter_next(&n->w.base.kids, &cur->it);
			if (l) {
				next = trie_node_of(l);
			} else {
				lm_shrink(&n->w.base.kids);
				cur->stage = ST_PLUS;
			}
		}
		if (!next && cur->stage == ST_PLUS) {
			cur->stage = ST_HASH;
			next = n->w.plus;
		}
		if (!next && cur->stage == ST_HASH) {
			cur->stage = ST_DONE;
			next = n->w.hash;
		}
		if (next) {
			assert(top + 1 < t->trie.nframes);
			f[++top] = (struct trie_frame){ .n = next, .stage = ST_ENTER };
			continue;
		}
		if (top == 0)
			break;
		top--;
		/* a literal n is the link f[top].it returned last (plus/hash go by level) */
		if (payload_empty(cur->n))
			trie_drop_if_leaf(&t->trie, f[top].n, cur->n, &f[top].it);
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
	trie_fini(&t->trie);
	free(t);
}
