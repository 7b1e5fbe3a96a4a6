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
 *    never allocates.
 *
 * Out of memory: subtree_add allocates everything first (frame stack, new
 * nodes, the group, the entry slot, the parent's child-table slot) and
 * links the new nodes last (trie_path_build, then trie_path_attach). A
 * failure can leave grown capacity behind (a longer frame stack, vector or
 * table), never a node, group or entry.
 *
 * Match cache: a hash table from topic name to the nodes the walk reported
 * for it, in report order. Which nodes a walk reaches, and in which order,
 * depends only on the trie's structure (which nodes exist and where they
 * hang), never on what they hold; so a recorded list stays exact until a node
 * is linked or unlinked, which changes t->trie.shape (trie.h). Entries are
 * stamped with the shape they were recorded under and one from another shape
 * is never reported: its next lookup walks and refreshes it (or drops it, if
 * the topic is no longer worth caching), and eviction takes it first.
 * That also keeps freed nodes from being touched: unlinking changes the shape
 * before the node is freed. What sits inside a node (subscriptions, groups,
 * the round-robin cursor) is read at report time, exactly as the walk does.
 *
 * Cache invariants:
 *  - the slot array is open addressing with linear probing, cap a power of
 *    two and at most half full (every probe ends at an empty slot); removal
 *    shifts the rest of the cluster back, so there are no tombstones; a slot
 *    holds its topic's hash, so probing past other topics reads no entry;
 *  - len <= cfg.entries and bytes <= cfg.bytes (bytes = the sum of the
 *    entries' requested sizes);
 *  - a topic is in the table at most once.
 * Eviction is a clock over the slots (second chance): a hit sets the entry's
 * ref bit, the hand clears set bits and evicts the first entry found without
 * one, or any stale one. Chosen over clear-all because a working set just
 * above the limit would then lose every hot topic at each overflow; over LRU
 * because a hit only sets a bit (no list to relink on the hot path). New
 * entries start without the bit, so a topic seen once is the first to go.
 *
 * What is not worth caching (measured, see subtree_cache_cfg): a walk that
 * costs less than hashing the name (a tree holding only "bench/+": a hit
 * took 34 ns, the walk 20 ns), and topics that do not come back soon (100k
 * devices each on its own topic, cycling through more than the cache holds:
 * inserting and evicting on every message made matching about a third
 * slower than the bare walk). The first is the min_cost test after the walk
 * (and an empty cache is not even hashed into), the second the first-miss
 * bitmap (mc_admit). Neither changes what a match reports.
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

#define MC_MAX_TOPIC 256u /* longer topic names are not cached */
#define MC_MAX_NODES 32u  /* nor topics that reach more nodes than this */
#define MC_MIN_SLOTS 16u
#define MC_MAX_LIMIT (1u << 24) /* entries: keeps 2 * cap in a uint32_t */
#define MC_DOOR_MIN 512u        /* bits in the first-miss bitmap */
#define MC_DOOR_MAX (1u << 20)
#define MC_COST_TABLE 4u /* walk cost of a hashed child lookup (a level is 1) */

struct mc_entry {
	uint64_t shape; /* t->trie.shape when the nodes were recorded */
	uint32_t size;  /* requested bytes, for the budget */
	uint16_t tlen;  /* topic bytes, stored after the nodes */
	uint8_t n;      /* nodes, in report order */
	uint8_t ref;    /* clock: hit since the hand last passed */
	struct snode *nodes[];
};

/* The hash sits in the slot so probes past other topics touch no entry. */
struct mc_slot {
	uint64_t hash; /* lm_siphash of the topic under the trie's key */
	struct mc_entry *e; /* NULL: empty */
};

struct mcache {
	struct mc_slot *slots;
	uint32_t cap, len, hand;
	size_t bytes;
	struct subtree_cache_cfg cfg;
	uint64_t *door;     /* first misses (bit = hash bits), allocated on use */
	uint32_t door_bits; /* a power of two */
	uint32_t door_set;  /* bits set since the bitmap was last cleared */
	uint64_t hits, misses, evicted;
};

struct subtree {
	struct trie trie; /* match frames: pos = start of the topic level n consumes
			   * (> len when none left), end = end of that level */
	size_t count;     /* plain subscriptions + shared members */
	struct mcache cache;
	/* the nodes the current walk reported, for the cache; nseen stops at
	 * MC_MAX_NODES + 1, which means too many to cache */
	struct snode *seen[MC_MAX_NODES];
	uint32_t nseen;
	uint32_t cost; /* of the current walk (see subtree_cache_cfg) */
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

/* ---- match cache ---- */

static const uint8_t *mc_topic(const struct mc_entry *e)
{
	return (const uint8_t *)&e->nodes[e->n];
}

/* The entry for this topic, or NULL; *slot is where it sits. */
static struct mc_entry *mc_find(const struct mcache *c, uint64_t h, const uint8_t *name,
				size_t len, uint32_t *slot)
{
	if (!c->cap)
		return NULL;
	uint32_t mask = c->cap - 1;
	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		struct mc_entry *e = c->slots[i].e;
		if (!e)
			return NULL;
		if (c->slots[i].hash == h && e->tlen == len &&
		    memcmp(mc_topic(e), name, len) == 0) {
			*slot = i;
			return e;
		}
	}
}

/* Frees the entry at slot i and closes the gap in its cluster. */
static void mc_delete(struct mcache *c, uint32_t i)
{
	uint32_t mask = c->cap - 1;
	c->bytes -= c->slots[i].e->size;
	c->len--;
	free(c->slots[i].e);
	c->slots[i].e = NULL;
	for (uint32_t j = (i + 1) & mask; c->slots[j].e; j = (j + 1) & mask) {
		uint32_t home = (uint32_t)c->slots[j].hash & mask;
		/* the entry at j may fill the hole unless its home is in (i, j] */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			c->slots[i] = c->slots[j];
			c->slots[j].e = NULL;
			i = j;
		}
	}
}

/* Clock: evicts one entry, stale ones and unreferenced ones first. len > 0. */
static void mc_evict_one(struct mcache *c, uint64_t shape)
{
	for (;;) {
		if (c->hand >= c->cap)
			c->hand = 0;
		struct mc_entry *e = c->slots[c->hand].e;
		if (e && (e->shape != shape || !e->ref)) {
			/* the hand stays: mc_delete may shift an unseen entry here */
			mc_delete(c, c->hand);
			c->evicted++;
			return;
		}
		if (e)
			e->ref = 0;
		c->hand++;
	}
}

/* Doubles the slot array (or creates it); false, with nothing changed, on OOM. */
static bool mc_grow(struct mcache *c)
{
	uint32_t ncap = c->cap ? c->cap * 2 : MC_MIN_SLOTS;
	struct mc_slot *ns = calloc(ncap, sizeof *ns);
	if (!ns)
		return false;
	for (uint32_t i = 0; i < c->cap; i++) {
		if (!c->slots[i].e)
			continue;
		uint32_t k = (uint32_t)c->slots[i].hash & (ncap - 1);
		while (ns[k].e)
			k = (k + 1) & (ncap - 1);
		ns[k] = c->slots[i];
	}
	free(c->slots);
	c->slots = ns;
	c->cap = ncap;
	c->hand = 0;
	return true;
}

static void mc_clear(struct mcache *c)
{
	for (uint32_t i = 0; i < c->cap; i++)
		free(c->slots[i].e);
	free(c->slots);
	free(c->door);
	c->slots = NULL;
	c->door = NULL;
	c->cap = c->len = c->hand = c->door_set = 0;
	c->bytes = 0;
}

/*
 * Whether a topic not in the cache gets in: on a miss that finds both of its
 * bits set (or at once with admit_first). A first miss sets them. The bitmap
 * is cleared after door_bits / 4 first misses, so "second" means "within the
 * last door_bits / 4 first misses", and at most half the bits are set: a
 * topic seen once gets in by collision with probability under 1/4, about
 * 1/20 on average over a period. No bitmap (allocation failure) means no
 * admission.
 */
static bool mc_admit(struct mcache *c, uint64_t h)
{
	if (c->cfg.admit_first)
		return true;
	if (!c->door && !(c->door = calloc(c->door_bits / 64, sizeof *c->door)))
		return false;
	/* hash bits 44.. and 24..: not the low ones that pick the slot */
	uint32_t b1 = (uint32_t)(h >> 44) & (c->door_bits - 1);
	uint32_t b2 = (uint32_t)(h >> 24) & (c->door_bits - 1);
	uint64_t m1 = 1ull << (b1 % 64), m2 = 1ull << (b2 % 64);
	if ((c->door[b1 / 64] & m1) && (c->door[b2 / 64] & m2))
		return true;
	c->door[b1 / 64] |= m1;
	c->door[b2 / 64] |= m2;
	if (++c->door_set >= c->door_bits / 4) {
		memset(c->door, 0, c->door_bits / 8);
		c->door_set = 0;
	}
	return false;
}

/*
 * Records the walk just made (t->seen) for this topic. `old` is its stale
 * entry at `slot`, if any. Allocation failure just leaves the topic out.
 */
static void mc_store(struct subtree *t, uint64_t h, const uint8_t *name, size_t len,
		     struct mc_entry *old, uint32_t slot)
{
	struct mcache *c = &t->cache;
	uint32_t n = t->nseen;
	struct mc_entry *e = NULL;
	if (old && old->n == n) { /* the usual refresh: same size, in place */
		memcpy(old->nodes, t->seen, n * sizeof *old->nodes);
		old->shape = t->trie.shape;
		old->ref = 1;
		goto out;
	}
	if (old)
		mc_delete(c, slot);
	else if (!mc_admit(c, h))
		goto out;
	size_t size = sizeof *e + n * sizeof *e->nodes + len;
	if (size > c->cfg.bytes || !(e = malloc(size)))
		goto out;
	*e = (struct mc_entry){ .shape = t->trie.shape, .size = (uint32_t)size,
				.tlen = (uint16_t)len, .n = (uint8_t)n, .ref = old != NULL };
	memcpy(e->nodes, t->seen, n * sizeof *e->nodes);
	memcpy((uint8_t *)&e->nodes[n], name, len);
	while (c->len && (c->len >= c->cfg.entries || c->bytes + size > c->cfg.bytes))
		mc_evict_one(c, t->trie.shape);
	if ((c->len + 1) * 2 > c->cap && !mc_grow(c))
		goto out;
	uint32_t mask = c->cap - 1, i = (uint32_t)h & mask;
	while (c->slots[i].e)
		i = (i + 1) & mask;
	c->slots[i] = (struct mc_slot){ h, e };
	c->len++;
	c->bytes += size;
	e = NULL;
out:
	free(e); /* not inserted */
}

/* ---- public ---- */

struct subtree *subtree_new(void)
{
	struct subtree *t = calloc(1, sizeof *t);
	if (t && trie_init(&t->trie, &subtree_ops) != MOTE_OK) {
		free(t);
		t = NULL;
	}
	if (t)
		subtree_cache_config(t, &SUBTREE_CACHE_DEFAULT);
	return t;
}

void subtree_cache_config(struct subtree *t, const struct subtree_cache_cfg *cfg)
{
	struct mcache *c = &t->cache;
	mc_clear(c);
	c->cfg = *cfg;
	if (c->cfg.entries > MC_MAX_LIMIT)
		c->cfg.entries = MC_MAX_LIMIT;
	c->door_bits = MC_DOOR_MIN;
	while (c->door_bits < MC_DOOR_MAX && c->door_bits < 8 * c->cfg.entries)
		c->door_bits *= 2;
}

void subtree_cache_stats(const struct subtree *t, struct subtree_cache_stats *out)
{
	const struct mcache *c = &t->cache;
	*out = (struct subtree_cache_stats){ .entries = c->len, .bytes = c->bytes,
					     .hits = c->hits, .misses = c->misses,
					     .evicted = c->evicted };
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

/* Reports n and records it in t->seen for the cache. */
static void visit(struct subtree *t, struct snode *n, subtree_match_fn fn,
		  subtree_eligible_fn eligible, void *ctx)
{
	if (t->nseen < MC_MAX_NODES)
		t->seen[t->nseen] = n;
	if (t->nseen <= MC_MAX_NODES)
		t->nseen++;
	report(n, fn, eligible, ctx);
}

/*
 * Depth-first over the nodes the topic can reach. Frame stages: 0 = not yet
 * looked at, 1 = exact child done (try '+'), 2 = done. A node whose level is
 * past the end of the topic matches it whole, and so does its '#' child
 * ("a/#" matches "a"). Otherwise its '#' child matches the rest of the topic.
 * Nothing here looks at a node's payload: that is what makes t->seen
 * cacheable (see the top of the file).
 */
static void walk(struct subtree *t, const uint8_t *name, size_t len, subtree_match_fn fn,
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
			visit(t, n, fn, eligible, ctx);
			if (n->w.hash)
				visit(t, sn(n->w.hash), fn, eligible, ctx);
			cur->stage = 2;
		}
		if (cur->stage == 0) {
			cur->stage = 1;
			cur->end = lvl_end(name, len, cur->pos);
			if (wild && n->w.hash)
				visit(t, sn(n->w.hash), fn, eligible, ctx);
			t->cost += n->w.base.kids.cap > LM_SMALL ? MC_COST_TABLE : 0;
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
			t->cost++;
			continue;
		}
		if (top == 0)
			break;
		top--;
	}
}

void subtree_match(struct subtree *t, const uint8_t *name, size_t len, subtree_match_fn fn,
		   subtree_eligible_fn eligible, void *ctx)
{
	struct mcache *c = &t->cache;
	struct mc_entry *e = NULL;
	uint32_t slot = 0;
	uint64_t h = 0;
	bool cacheable = c->cfg.entries && len <= MC_MAX_TOPIC;
	bool hashed = cacheable && c->len; /* an empty cache is not even hashed into */
	if (hashed) {
		h = lm_siphash(&t->trie.key, name, len);
		e = mc_find(c, h, name, len, &slot);
		if (e && e->shape == t->trie.shape) {
			c->hits++;
			e->ref = 1;
			for (uint32_t i = 0; i < e->n; i++)
				report(e->nodes[i], fn, eligible, ctx);
			return;
		}
	}
	t->nseen = 0;
	t->cost = 0;
	walk(t, name, len, fn, eligible, ctx);
	if (!cacheable)
		return;
	if (t->nseen > MC_MAX_NODES || t->cost < c->cfg.min_cost) {
		if (e) /* stale, and no longer worth keeping */
			mc_delete(c, slot);
		return;
	}
	c->misses++;
	if (!hashed)
		h = lm_siphash(&t->trie.key, name, len);
	mc_store(t, h, name, len, e, slot);
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
	mc_clear(&t->cache);
	trie_fini(&t->trie);
	free(t);
}
