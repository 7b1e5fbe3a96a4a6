/*
 * trie.h - the topic-level trie shared by the subscription index (subtree.c)
 * and the retained store (retain.c); private to src/broker/.
 *
 * What both tries have in common lives here once: the node base (its level
 * bytes and child table), the root, the hash key, the node count, the
 * explicit walk stack, finding or building the node for a path with
 * all-or-nothing allocation, and freeing nodes left empty.
 *
 * A node is the owner's struct with the base as its FIRST member (the trie
 * allocates and frees whole nodes through the base pointer). Its level bytes
 * are stored just past the owner's struct, in the same allocation.
 *
 * A "wild" trie (subscription filters) keeps '+' and '#' children in their
 * own pointers (struct trie_wnode) so matching reaches them without a
 * lookup; in a plain trie (topic names) every level is a literal child.
 *
 * The owner's payload is opaque here: struct trie_ops says whether a node
 * holds any, and frees what an empty payload may still hold (capacity).
 *
 * Frames: t->frames holds at least (levels of the deepest path ever built)
 * + 2 frames and a node at depth d is reached with d + 1 frames, so walks
 * over built paths use t->frames as an explicit stack that never overflows
 * and never allocates (no recursion: a path may have 32k levels).
 *
 * Shape: t->shape changes whenever a node is linked into or unlinked from
 * the tree (never for payload changes). Whoever remembers node pointers
 * across calls (subtree.c's match cache) may use them only while t->shape is
 * what it was when they were taken: a freed node always changes it.
 *
 * Ownership: the trie owns its nodes and the frame stack.
 * Threading: none; a trie belongs to the single thread owning its owner.
 */
#ifndef MOTE_BROKER_TRIE_H
#define MOTE_BROKER_TRIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "broker/level_map.h"

struct trie_node {
	struct lm_link link;   /* this node's level; in the parent's kids if literal */
	struct level_map kids; /* literal children */
};

/* The base of a node in a wild trie. */
struct trie_wnode {
	struct trie_node base;
	struct trie_node *plus;
	struct trie_node *hash;
};

struct trie_ops {
	size_t node_size; /* sizeof the owner's node struct (base first) */
	bool wild;        /* nodes are trie_wnodes with '+' and '#' apart */
	/* True when n holds no payload (trie_prune_path; children are the trie's). */
	bool (*payload_empty)(const struct trie_node *n);
	/* Frees what n's payload holds, if anything, before n is freed; may be NULL. */
	void (*payload_release)(struct trie_node *n);
};

/* One entry of a walk stack; frame d holds a node at depth d. */
struct trie_frame {
	struct trie_node *n;
	size_t pos; /* owner-defined: usually the start of the level applied at n */
	size_t end; /* owner-defined: usually the end of that level */
	struct lm_iter it;
	uint8_t stage; /* owner-defined */
	uint8_t flags; /* owner-defined */
};

struct trie {
	const struct trie_ops *ops;
	bool wild; /* ops->wild, kept here for the lookups */
	struct trie_node *root;
	struct lm_key key;
	size_t nodes;   /* below the root */
	uint64_t shape; /* bumped by every link and unlink of a node (see above) */
	struct trie_frame *frames;
	size_t nframes;
};

/* The node whose lm_link is l. */
static inline struct trie_node *trie_node_of(struct lm_link *l)
{
	return LM_CONTAINER(l, struct trie_node, link);
}

/* Root and frame stack; MOTE_ENOMEM leaves nothing allocated. ops is borrowed. */
enum mote_err trie_init(struct trie *t, const struct trie_ops *ops);
/* Frees the root and the frame stack; every other node must be gone. */
void trie_fini(struct trie *t);

/* The slot of n that holds a child with level lv, or NULL if it goes in kids. */
static inline struct trie_node **trie_wild_slot(const struct trie *t, struct trie_node *n,
						const uint8_t *lv, size_t len)
{
	if (!t->wild)
		return NULL;
	struct trie_wnode *w = LM_CONTAINER(n, struct trie_wnode, base);
	if (lvl_is_plus(lv, len))
		return &w->plus;
	if (lvl_is_hash(lv, len))
		return &w->hash;
	return NULL;
}

/* The child of n for these level bytes, or NULL. Never allocates. */
static inline struct trie_node *trie_child(const struct trie *t, struct trie_node *n,
					   const uint8_t *lv, size_t len)
{
	struct trie_node **slot = trie_wild_slot(t, n, lv, len);
	if (slot)
		return *slot;
	struct lm_link *l = lm_find(&n->kids, &t->key, lv, len);
	return l ? trie_node_of(l) : NULL;
}

/*
 * Records the nodes for the levels of s in t->frames[0..d] (frame 0 the
 * root) and returns d, or 0 when some level has no node. Never allocates.
 */
size_t trie_path_find(struct trie *t, const uint8_t *s, size_t len);

/*
 * Finding or building the node for a path, all or nothing:
 *   trie_path_build   reserves frames, follows the existing part of the
 *                     path and builds the missing levels off the tree;
 *   (the owner allocates what its payload needs at p->node)
 *   trie_path_attach  links the new levels into the tree;
 *   trie_path_drop    frees new levels that were not attached (also their
 *                     payload), so calling it on every exit path is safe.
 * Until attach succeeds the tree is unchanged (capacity aside). s must be
 * shorter than 2^32 bytes.
 */
struct trie_path {
	struct trie_node *node;   /* the node of the whole path */
	struct trie_node *attach; /* the existing node the new chain hangs from */
	struct trie_node *chain;  /* first new node; NULL when nothing new or attached */
	size_t added;             /* new nodes */
};
enum mote_err trie_path_build(struct trie *t, const uint8_t *s, size_t len, struct trie_path *p);
enum mote_err trie_path_attach(struct trie *t, struct trie_path *p);
void trie_path_drop(struct trie *t, struct trie_path *p);

/*
 * c, a child of p, holds no payload (the caller checked): frees it if it has
 * no children either; true if it did. `it` is p's kids iteration when c is
 * the link it last returned (the walk goes on), else NULL.
 */
bool trie_drop_if_leaf(struct trie *t, struct trie_node *p, struct trie_node *c,
		       struct lm_iter *it);

/* Frees the empty nodes of the path in t->frames[1..d], deepest first. */
void trie_prune_path(struct trie *t, size_t d);

#endif
