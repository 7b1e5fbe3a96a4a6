/*
 * trie.c - the topic-level trie base; see trie.h.
 *
 * Invariants (the owners' invariants build on these):
 *  - a '+' or '#' level of a wild trie is only ever in its parent's plus or
 *    hash pointer, every other level only in the parent's kids, so where a
 *    child hangs follows from its level bytes alone;
 *  - a chain built by trie_path_build has one child per node and is not
 *    reachable from the root until trie_path_attach links it, which is the
 *    last step that can fail;
 *  - t->nodes counts linked nodes below the root;
 *  - t->shape changes exactly where a node becomes reachable from the root
 *    (trie_path_attach) or stops being (trie_drop_if_leaf), so it changes
 *    before any linked node can be freed.
 *
 * Names here are all trie_-prefixed, static ones included: the allocation
 * failure tests compile this file into one unit with its owners.
 */
#include "broker/trie.h"

#include <stdlib.h>
#include <string.h>

#define TRIE_MIN_FRAMES 16

static struct trie_node *trie_node_new(const struct trie *t, const uint8_t *lv, size_t len)
{
	size_t size = t->ops->node_size;
	struct trie_node *n = calloc(1, size + len);
	if (!n)
		return NULL;
	uint8_t *key = (uint8_t *)n + size;
	if (len)
		memcpy(key, lv, len);
	lm_link_init(&n->link, &t->key, key, (uint32_t)len);
	return n;
}

/* Frees n and what it holds; its children must be gone or freed separately. */
static void trie_node_free(const struct trie *t, struct trie_node *n)
{
	if (t->ops->payload_release)
		t->ops->payload_release(n);
	lm_release(&n->kids);
	free(n);
}

static bool trie_has_kids(const struct trie *t, const struct trie_node *n)
{
	if (n->kids.len)
		return true;
	if (!t->wild)
		return false;
	const struct trie_wnode *w = LM_CONTAINER(n, const struct trie_wnode, base);
	return w->plus || w->hash;
}

static enum mote_err trie_link(const struct trie *t, struct trie_node *p, struct trie_node *c)
{
	struct trie_node **slot = trie_wild_slot(t, p, c->link.key, c->link.klen);
	if (slot) {
		*slot = c;
		return MOTE_OK;
	}
	return lm_insert(&p->kids, &c->link);
}

/* Frees an unattached chain: one child per node, wherever it hangs. */
static void trie_chain_free(const struct trie *t, struct trie_node *c)
{
	while (c) {
		struct trie_node *next = NULL;
		if (c->kids.len) {
			next = trie_node_of(c->kids.slots[0]);
		} else if (t->wild) {
			struct trie_wnode *w = LM_CONTAINER(c, struct trie_wnode, base);
			next = w->plus ? w->plus : w->hash;
		}
		trie_node_free(t, c);
		c = next;
	}
}

static enum mote_err trie_frames_reserve(struct trie *t, size_t levels)
{
	if (levels + 2 <= t->nframes)
		return MOTE_OK;
	if (levels > SIZE_MAX / sizeof(struct trie_frame) - 2)
		return MOTE_ENOMEM;
	struct trie_frame *nf = realloc(t->frames, (levels + 2) * sizeof *nf);
	if (!nf)
		return MOTE_ENOMEM;
	t->frames = nf;
	t->nframes = levels + 2;
	return MOTE_OK;
}

enum mote_err trie_init(struct trie *t, const struct trie_ops *ops)
{
	*t = (struct trie){ .ops = ops, .wild = ops->wild };
	lm_key_init(&t->key);
	t->root = trie_node_new(t, NULL, 0);
	t->frames = calloc(TRIE_MIN_FRAMES, sizeof *t->frames);
	if (!t->root || !t->frames) {
		free(t->root);
		free(t->frames);
		return MOTE_ENOMEM;
	}
	t->nframes = TRIE_MIN_FRAMES;
	return MOTE_OK;
}

void trie_fini(struct trie *t)
{
	trie_node_free(t, t->root);
	free(t->frames);
	t->root = NULL;
	t->frames = NULL;
	t->nframes = 0;
}

size_t trie_path_find(struct trie *t, const uint8_t *s, size_t len)
{
	struct trie_frame *f = t->frames;
	size_t d = 0, pos = 0;
	f[0].n = t->root;
	for (;;) {
		size_t end = lvl_end(s, len, pos);
		if (d + 2 > t->nframes)
			return 0; /* deeper than any path built */
		struct trie_node *c = trie_child(t, f[d].n, s + pos, end - pos);
		if (!c)
			return 0;
		f[++d].n = c;
		if (end == len)
			return d;
		pos = end + 1;
	}
}

enum mote_err trie_path_build(struct trie *t, const uint8_t *s, size_t len, struct trie_path *p)
{
	enum mote_err err = MOTE_OK;
	struct trie_node *n = t->root, *last = NULL;
	size_t pos = 0;

	*p = (struct trie_path){ .node = NULL };
	if ((err = trie_frames_reserve(t, lvl_count(s, len))) != MOTE_OK)
		goto out;
	/* Follow the part of the path that exists. */
	for (;;) {
		size_t end = lvl_end(s, len, pos);
		struct trie_node *c = trie_child(t, n, s + pos, end - pos);
		if (!c)
			break;
		n = c;
		if (end == len) {
			p->node = n;
			goto out;
		}
		pos = end + 1;
	}
	/* Build the missing levels off the tree. */
	p->attach = n;
	for (;;) {
		size_t end = lvl_end(s, len, pos);
		struct trie_node *c = trie_node_new(t, s + pos, end - pos);
		if (!c) {
			err = MOTE_ENOMEM;
			goto out;
		}
		if (!last) {
			p->chain = c;
		} else if ((err = trie_link(t, last, c)) != MOTE_OK) {
			trie_node_free(t, c);
			goto out;
		}
		last = c;
		p->added++;
		if (end == len)
			break;
		pos = end + 1;
	}
	p->node = last;
out:
	if (err != MOTE_OK)
		trie_path_drop(t, p);
	return err;
}

enum mote_err trie_path_attach(struct trie *t, struct trie_path *p)
{
	if (!p->chain)
		return MOTE_OK;
	enum mote_err err = trie_link(t, p->attach, p->chain);
	if (err != MOTE_OK)
		return err;
	p->chain = NULL;
	t->nodes += p->added;
	t->shape++;
	return MOTE_OK;
}

void trie_path_drop(struct trie *t, struct trie_path *p)
{
	trie_chain_free(t, p->chain);
	p->chain = NULL;
}

bool trie_drop_if_leaf(struct trie *t, struct trie_node *p, struct trie_node *c,
		       struct lm_iter *it)
{
	if (trie_has_kids(t, c))
		return false;
	struct trie_node **slot = trie_wild_slot(t, p, c->link.key, c->link.klen);
	if (slot)
		*slot = NULL;
	else if (it)
		lm_iter_remove(&p->kids, it);
	else
		lm_remove(&p->kids, &c->link);
	trie_node_free(t, c);
	t->nodes--;
	t->shape++;
	return true;
}

void trie_prune_path(struct trie *t, size_t d)
{
	struct trie_frame *f = t->frames;
	while (d > 0 && t->ops->payload_empty(f[d].n) &&
	       trie_drop_if_leaf(t, f[d - 1].n, f[d].n, NULL))
		d--;
}
