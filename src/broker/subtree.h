/*
 * subtree.h - the subscription index (private to src/broker/).
 *
 * A trie keyed by topic level. Each node holds the plain subscriptions whose
 * filter ends there, and the shared-subscription groups ("$share/{group}/..."
 * is stored under its real filter, grouped by name). Lookup walks the levels
 * of a topic name once, following exact, '+' and '#' children, and applies
 * the '$' rule (a filter starting with '+' or '#' does not match a topic
 * starting with '$').
 *
 * The subscriber is an opaque `struct session *` owned by the broker; the tree
 * never dereferences it. A session has at most one subscription per filter
 * string (per group for shared ones): adding again replaces the options.
 * Nodes left empty by removals are freed, so memory follows live filters.
 *
 * Match cache: each tree remembers, per recently routed topic name, the
 * list of nodes the walk reached (node pointers, not subscribers), so a
 * repeated topic costs one hash lookup and the reports. Subscriptions and
 * shared groups inside those nodes are read live, so adding or removing a
 * subscriber invalidates nothing; creating or freeing a node invalidates
 * every entry at once. Results, their order and the round robin are exactly
 * those of the walk. Memory is bounded (subtree_cache_config).
 *
 * Ownership: the tree owns its nodes, copies of filter strings and its
 * cache; it borrows the session pointers, which the broker removes
 * (subtree_remove or subtree_remove_all) before freeing a session.
 *
 * Threading: single-threaded, owned by the broker's loop thread.
 */
#ifndef MOTE_BROKER_SUBTREE_H
#define MOTE_BROKER_SUBTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct session;
struct subtree;

struct sub_opts {
	uint8_t qos;              /* maximum QoS granted */
	bool no_local;
	bool retain_as_published;
	uint8_t retain_handling;  /* 0, 1, 2 */
	uint32_t sub_id;          /* 0 = none */
};

struct subtree *subtree_new(void); /* NULL on allocation failure */
void subtree_free(struct subtree *t);

/*
 * A shared subscription "$share/{group}/{filter}" is passed split: `group`
 * (NULL / 0 for a plain subscription) and the real `filter`. The caller
 * (the broker) splits and validates with the codec; the tree trusts that
 * `filter` is a valid topic filter.
 *
 * Adds or replaces the subscription of `s` to (group, filter). *existed (may
 * be NULL) tells whether it replaced one. MOTE_ENOMEM leaves the tree
 * unchanged.
 */
enum mote_err subtree_add(struct subtree *t, const uint8_t *group, size_t glen,
			  const uint8_t *filter, size_t flen, struct session *s,
			  const struct sub_opts *opts, bool *existed);

/* Removes it; MOTE_ENOTFOUND if `s` had no such subscription. */
enum mote_err subtree_remove(struct subtree *t, const uint8_t *group, size_t glen,
			     const uint8_t *filter, size_t flen, struct session *s);

/*
 * Calls `fn` once for each subscription matching topic `name`: every matching
 * plain subscription, and for each matching shared group exactly one member,
 * chosen round-robin among members for which `eligible(ctx, session)` returns
 * true (all members if eligible is NULL; if none is eligible, the next member
 * in turn). `shared` tells the callback which kind it is. A session with
 * several matching filters is reported once per filter; the caller merges.
 * The order of the calls is the same whether or not the cache answers.
 *
 * Allocation: a cache hit allocates nothing. A miss may allocate one cache
 * entry (malloc), create or double the cache's slot array (calloc) and, the
 * first time, the first-miss bitmap (calloc); it frees the entries it evicts
 * or replaces. Any of these failing only means the topic is not cached this
 * time: the calls to fn are made all the same, and subtree_match cannot
 * fail.
 *
 * fn and eligible must not modify the tree nor call subtree_match again
 * (the walk uses the tree's own scratch stack and cache entry).
 */
typedef void (*subtree_match_fn)(void *ctx, struct session *s, const struct sub_opts *opts,
				 bool shared);
typedef bool (*subtree_eligible_fn)(void *ctx, struct session *s);
void subtree_match(struct subtree *t, const uint8_t *name, size_t len, subtree_match_fn fn,
		   subtree_eligible_fn eligible, void *ctx);

/*
 * Match cache settings. A topic is cached when its name is at most 256 bytes,
 * its walk reached at most 32 nodes and cost at least `min_cost` (one per
 * trie level the walk enters, four per level looked up in a hashed child
 * table, i.e. under a node with more than 8 children: a cheaper walk costs
 * less than hashing the name), and, unless `admit_first`, on its second miss
 * within the last 2 * `entries` or so topics that missed for the first time
 * (a bitmap remembers them), so that topics seen once do not churn the
 * cache. While the cache is empty nothing is hashed.
 *
 * Memory, per tree: at most `entries` topics and `bytes` bytes of entries
 * (their requested sizes), plus a slot array of at most 64 bytes and a
 * bitmap of at most 2 bytes (never over 128 KiB) per entry allowed, both
 * half that when `entries` is a power of two: 1 MiB + 132 KiB at the
 * defaults.
 */
struct subtree_cache_cfg {
	uint32_t entries;  /* 0 turns the cache off */
	size_t bytes;
	uint32_t min_cost;
	bool admit_first;
};
#define SUBTREE_CACHE_DEFAULT ((struct subtree_cache_cfg){ 4096u, 1u << 20, 6u, false })

/* Empties the cache and applies cfg (copied). Never fails, never allocates. */
void subtree_cache_config(struct subtree *t, const struct subtree_cache_cfg *cfg);

/* What the cache holds and did (introspection: tests, metrics). */
struct subtree_cache_stats {
	uint32_t entries; /* topics held, current and stale */
	size_t bytes;     /* their requested sizes */
	uint64_t hits;    /* subtree_match calls answered from the cache */
	uint64_t misses;  /* calls that walked for a topic worth caching */
	uint64_t evicted; /* entries dropped to make room */
};
void subtree_cache_stats(const struct subtree *t, struct subtree_cache_stats *out);

/* Number of subscriptions (plain + shared members). */
size_t subtree_count(const struct subtree *t);

/* Number of trie nodes below the root (introspection: tests, metrics). */
size_t subtree_node_count(const struct subtree *t);

/*
 * Removes every subscription of `s` (used when a session ends). Costs a walk
 * of the whole tree; the broker prefers subtree_remove per filter it tracked.
 */
void subtree_remove_all(struct subtree *t, struct session *s);

#endif
