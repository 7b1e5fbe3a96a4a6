/*
 * level_map.h - topic-level helpers shared by the subscription trie
 * (subtree.c) and the retained store (retain.c); private to src/broker/.
 *
 * Two things live here so the two tries do not each carry a copy:
 *  - splitting a topic name or filter into '/'-separated levels, where empty
 *    levels are real levels ("a//b" has 3, "/a" has 2, "" has 1);
 *  - the child table of a trie node: a map from level bytes to a child,
 *    a packed array while small and a keyed hash table once it has more than
 *    LM_SMALL children, so 100k devices under one level stay O(1) to find.
 *
 * The table stores pointers to a `struct lm_link` embedded in each child
 * node; the node owns the key bytes the link points at. The map never
 * allocates or frees links, only its own slot array.
 *
 * The hash is SipHash-2-4 under a per-tree random key (struct lm_key), so
 * clients choosing topic levels cannot aim for collisions in a table.
 *
 * Threading: none; each map belongs to the single thread owning its tree.
 */
#ifndef MOTE_BROKER_LEVEL_MAP_H
#define MOTE_BROKER_LEVEL_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/err.h"

/* Up to this many children a node keeps a packed array, scanned linearly. */
#define LM_SMALL 8u

/* The node of type `type` whose member `member` is at `ptr`. */
#define LM_CONTAINER(ptr, type, member)                                                     \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Offset just past the level starting at `pos`: the next '/' or `len`. */
static inline size_t lvl_end(const uint8_t *s, size_t len, size_t pos)
{
	if (pos >= len)
		return len;
	const uint8_t *p = memchr(s + pos, '/', len - pos);
	return p ? (size_t)(p - s) : len;
}

/* Number of levels in s (separators + 1; never 0). */
size_t lvl_count(const uint8_t *s, size_t len);

static inline bool lvl_is_plus(const uint8_t *lv, size_t n)
{
	return n == 1 && lv[0] == '+';
}
static inline bool lvl_is_hash(const uint8_t *lv, size_t n)
{
	return n == 1 && lv[0] == '#';
}

struct lm_key {
	uint64_t k0, k1;
};

/* Fills k with random bytes (getrandom; a clock/address mix if that fails). */
void lm_key_init(struct lm_key *k);
/* SipHash-2-4 of s under k (exposed for its test vector). */
uint64_t lm_siphash(const struct lm_key *k, const uint8_t *s, size_t n);

/* Embedded in every child node. key points into the node (owned by it). */
struct lm_link {
	const uint8_t *key;
	uint32_t klen;
	uint32_t hash; /* low 32 bits of lm_siphash(tree key, key) */
};

/* Sets l to key/klen (borrowed, must outlive l) and computes its hash. */
void lm_link_init(struct lm_link *l, const struct lm_key *k, const uint8_t *key, uint32_t klen);

/* A zero-initialised struct level_map is an empty map. */
struct level_map {
	struct lm_link **slots;
	uint32_t len; /* children */
	uint32_t cap; /* slots; <= LM_SMALL: packed array, else hash table */
};

/* The child with these level bytes, or NULL. Never allocates. */
struct lm_link *lm_find(const struct level_map *m, const struct lm_key *k, const uint8_t *key,
			size_t klen);
/*
 * Adds l, which must not be in the map (nor another link with its key).
 * MOTE_ENOMEM leaves the map unchanged. The map borrows l.
 */
enum mote_err lm_insert(struct level_map *m, struct lm_link *l);
/* Removes l, which must be in the map; may shrink the slot array. */
void lm_remove(struct level_map *m, struct lm_link *l);
/* Frees the slot array (not the links); the map is empty afterwards. */
void lm_release(struct level_map *m);
/*
 * Gives back slot memory after removals made through lm_iter_remove (which
 * never resizes). An allocation failure here just keeps the larger array.
 */
void lm_shrink(struct level_map *m);

/*
 * Iteration. Between lm_iter_init and the end of the walk the map must not
 * gain entries nor be resized (no lm_insert, lm_remove, lm_shrink); the only
 * change allowed is lm_iter_remove of the link last returned. With that,
 * every link present at lm_iter_init and not removed is returned exactly
 * once. Call lm_shrink after the walk if anything was removed.
 */
struct lm_iter {
	uint32_t start; /* first slot visited (table: just past an empty slot) */
	uint32_t step;  /* slots visited so far */
	uint32_t slot;  /* slot of the link last returned */
};
void lm_iter_init(const struct level_map *m, struct lm_iter *it);
struct lm_link *lm_iter_next(const struct level_map *m, struct lm_iter *it);
void lm_iter_remove(struct level_map *m, struct lm_iter *it);

#endif
