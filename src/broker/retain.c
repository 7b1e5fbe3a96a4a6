/*
 * retain.c - the retained-message store; see retain.h.
 *
 * A trie with one node per topic-name prefix (same level splitting and child
 * tables as the subscription trie, from level_map). A node holds at most one
 * message: the retained message of the topic ending there.
 *
 * Invariants:
 *  - every node but the root holds a message or a child: deleting a message
 *    (empty payload, or expired when met by retain_match) frees the nodes it
 *    leaves empty up the path;
 *  - count = nodes holding a message, bytes = sum of their payload lengths;
 *  - r->frames holds at least (levels of the deepest topic ever stored) + 2
 *    frames, so walks use an explicit stack that never overflows and never
 *    allocates (no recursion: a topic may have 32k levels).
 *
 * Out of memory: retain_set allocates the frame stack, the new nodes and the
 * parent's child-table slot before linking anything and before touching the
 * old message. A failure can leave grown capacity behind, never a node.
 *
 * Matching walks only what the filter can reach: one child for a literal
 * level, every child for '+', the whole subtree for '#'. The walk removes
 * expired messages and prunes their nodes as it goes, which is why child
 * tables support removal during iteration (lm_iter_remove).
 *
 * retain_fn callbacks must not modify the store.
 */
#include "broker/retain.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "broker/level_map.h"

#define MIN_FRAMES 16

struct rnode {
	struct lm_link link; /* this node's level, in the parent's kids */
	struct level_map kids;
	struct msg *msg; /* one reference, or NULL */
	uint8_t key[];
};

/* One entry of the walk stack; frame d holds a node at depth d. */
struct rframe {
	struct rnode *n;
	size_t pos; /* start of the filter level applied at n; > len when none left */
	size_t end; /* end of that level */
	struct lm_iter it;
	uint8_t stage;
	bool all;         /* n is under a '#': it and everything below it match */
	bool kids_all;    /* the children being iterated are under a '#' */
	bool skip_dollar; /* [MQTT-4.7.2-1] wildcard at the first level */
};

struct retain {
	struct rnode *root;
	struct lm_key key;
	size_t count;
	size_t bytes;
	size_t nodes; /* below the root */
	struct rframe *frames;
	size_t nframes;
};

static struct rnode *as_node(struct lm_link *l)
{
	return LM_CONTAINER(l, struct rnode, link);
}

static struct rnode *node_new(const struct lm_key *k, const uint8_t *lv, size_t len)
{
	struct rnode *c = calloc(1, sizeof *c + len);
	if (!c)
		return NULL;
	if (len)
		memcpy(c->key, lv, len);
	lm_link_init(&c->link, k, c->key, (uint32_t)len);
	return c;
}

/* Frees n; its message and children must already be gone. */
static void node_free(struct rnode *n)
{
	lm_release(&n->kids);
	free(n);
}

static bool node_empty(const struct rnode *n)
{
	return !n->msg && n->kids.len == 0;
}

static struct rnode *node_child(const struct retain *r, const struct rnode *n,
				const uint8_t *lv, size_t len)
{
	struct lm_link *l = lm_find(&n->kids, &r->key, lv, len);
	return l ? as_node(l) : NULL;
}

/* Frees a chain built by retain_set that never got linked: one child each. */
static void chain_free(struct rnode *c)
{
	while (c) {
		struct rnode *next = c->kids.len ? as_node(c->kids.slots[0]) : NULL;
		node_free(c);
		c = next;
	}
}

static enum mote_err frames_reserve(struct retain *r, size_t levels)
{
	if (levels + 2 <= r->nframes)
		return MOTE_OK;
	if (levels > SIZE_MAX / sizeof(struct rframe) - 2)
		return MOTE_ENOMEM;
	struct rframe *nf = realloc(r->frames, (levels + 2) * sizeof *nf);
	if (!nf)
		return MOTE_ENOMEM;
	r->frames = nf;
	r->nframes = levels + 2;
	return MOTE_OK;
}

static void drop_msg(struct retain *r, struct rnode *n)
{
	r->count--;
	r->bytes -= n->msg->payload_len;
	msg_unref(n->msg);
	n->msg = NULL;
}

/* Deletes the message stored under topic, if any, and prunes its path. */
static void delete_topic(struct retain *r, const uint8_t *topic, size_t len)
{
	struct rframe *f = r->frames;
	size_t d = 0, pos = 0;
	f[0].n = r->root;
	for (;;) {
		size_t end = lvl_end(topic, len, pos);
		if (d + 2 > r->nframes)
			return; /* deeper than anything stored */
		struct rnode *c = node_child(r, f[d].n, topic + pos, end - pos);
		if (!c)
			return;
		f[++d].n = c;
		if (end == len)
			break;
		pos = end + 1;
	}
	if (!f[d].n->msg)
		return;
	drop_msg(r, f[d].n);
	for (; d > 0 && node_empty(f[d].n); d--) {
		lm_remove(&f[d - 1].n->kids, &f[d].n->link);
		node_free(f[d].n);
		r->nodes--;
	}
}

struct retain *retain_new(void)
{
	struct retain *r = calloc(1, sizeof *r);
	if (!r)
		goto fail;
	lm_key_init(&r->key);
	r->root = node_new(&r->key, NULL, 0);
	r->frames = calloc(MIN_FRAMES, sizeof *r->frames);
	if (!r->root || !r->frames)
		goto fail;
	r->nframes = MIN_FRAMES;
	return r;
fail:
	if (r) {
		free(r->root);
		free(r->frames);
		free(r);
	}
	return NULL;
}

enum mote_err retain_set(struct retain *r, struct msg *m)
{
	enum mote_err err = MOTE_OK;
	const uint8_t *topic = msg_topic(m);
	size_t len = m->topic_len;
	struct rnode *chain = NULL;  /* new nodes, linked to each other, not yet to the tree */
	struct rnode *attach = NULL; /* the existing node the chain will hang from */
	struct rnode *n = r->root;
	size_t added = 0, pos = 0;
	bool whole = false;

	if (m->payload_len == 0) {
		delete_topic(r, topic, len);
		goto out;
	}
	if ((err = frames_reserve(r, lvl_count(topic, len))) != MOTE_OK)
		goto out;
	for (;;) {
		size_t end = lvl_end(topic, len, pos);
		struct rnode *c = node_child(r, n, topic + pos, end - pos);
		if (!c)
			break;
		n = c;
		if (end == len) {
			whole = true;
			break;
		}
		pos = end + 1;
	}
	if (!whole) {
		attach = n;
		struct rnode *last = NULL;
		for (;;) {
			size_t end = lvl_end(topic, len, pos);
			struct rnode *c = node_new(&r->key, topic + pos, end - pos);
			if (!c) {
				err = MOTE_ENOMEM;
				goto out;
			}
			if (!last) {
				chain = c;
			} else if ((err = lm_insert(&last->kids, &c->link)) != MOTE_OK) {
				node_free(c);
				goto out;
			}
			last = c;
			added++;
			if (end == len)
				break;
			pos = end + 1;
		}
		if ((err = lm_insert(&attach->kids, &chain->link)) != MOTE_OK)
			goto out;
		chain = NULL;
		r->nodes += added;
		n = last;
	}

	/* Nothing below can fail. Ref before unref: m may be the stored one. */
	msg_ref(m);
	if (n->msg)
		drop_msg(r, n);
	n->msg = m;
	r->count++;
	r->bytes += m->payload_len;
out:
	chain_free(chain);
	return err;
}

/* Reports n's message, or removes it if expired (or if destroying). */
static void visit(struct retain *r, struct rnode *n, bool destroy, uint64_t now_ms, retain_fn fn,
		  void *ctx)
{
	if (!n->msg)
		return;
	if (destroy || msg_expired(n->msg, now_ms))
		drop_msg(r, n);
	else
		fn(ctx, n->msg);
}

enum { RS_ENTER, RS_KIDS, RS_DONE };

/*
 * Depth-first over what `filter` can reach, pruning nodes emptied by expiry
 * on the way back up. With `destroy` it walks everything, drops every
 * message and so frees every node.
 */
static void walk(struct retain *r, const uint8_t *filter, size_t flen, bool destroy,
		 uint64_t now_ms, retain_fn fn, void *ctx)
{
	struct rframe *f = r->frames;
	size_t top = 0;
	f[0] = (struct rframe){ .n = r->root, .all = destroy };
	for (;;) {
		struct rframe *cur = &f[top];
		struct rnode *n = cur->n, *next = NULL;
		if (cur->stage == RS_ENTER) {
			cur->stage = RS_DONE;
			if (cur->all) {
				visit(r, n, destroy, now_ms, fn, ctx);
				cur->kids_all = true;
				cur->stage = RS_KIDS;
			} else if (cur->pos > flen) {
				visit(r, n, destroy, now_ms, fn, ctx);
			} else {
				cur->end = lvl_end(filter, flen, cur->pos);
				const uint8_t *lv = filter + cur->pos;
				size_t lvlen = cur->end - cur->pos;
				if (lvl_is_hash(lv, lvlen)) {
					/* "a/#" matches "a" too; the root holds no message */
					visit(r, n, destroy, now_ms, fn, ctx);
					cur->kids_all = true;
					cur->skip_dollar = top == 0;
					cur->stage = RS_KIDS;
				} else if (lvl_is_plus(lv, lvlen)) {
					cur->skip_dollar = top == 0;
					cur->stage = RS_KIDS;
				} else {
					next = node_child(r, n, lv, lvlen);
				}
			}
			if (cur->stage == RS_KIDS)
				lm_iter_init(&n->kids, &cur->it);
		}
		if (cur->stage == RS_KIDS) {
			struct lm_link *l;
			while (!next && (l = lm_iter_next(&n->kids, &cur->it))) {
				struct rnode *c = as_node(l);
				if (!(cur->skip_dollar && c->link.klen > 0 && c->key[0] == '$'))
					next = c;
			}
			if (!next) {
				lm_shrink(&n->kids);
				cur->stage = RS_DONE;
			}
		}
		if (next) {
			assert(top + 1 < r->nframes);
			bool all = cur->stage == RS_KIDS && cur->kids_all;
			f[++top] = (struct rframe){ .n = next, .pos = cur->end + 1, .all = all };
			continue;
		}
		if (top == 0)
			break;
		top--;
		if (!node_empty(n))
			continue;
		struct rframe *p = &f[top];
		if (p->stage == RS_KIDS)
			lm_iter_remove(&p->n->kids, &p->it); /* p is walking its kids */
		else
			lm_remove(&p->n->kids, &n->link); /* reached by exact lookup */
		node_free(n);
		r->nodes--;
	}
}

void retain_match(struct retain *r, const uint8_t *filter, size_t len, uint64_t now_ms,
		  retain_fn fn, void *ctx)
{
	walk(r, filter, len, false, now_ms, fn, ctx);
}

void retain_free(struct retain *r)
{
	if (!r)
		return;
	walk(r, NULL, 0, true, 0, NULL, NULL);
	node_free(r->root);
	free(r->frames);
	free(r);
}

size_t retain_count(const struct retain *r)
{
	return r->count;
}

size_t retain_bytes(const struct retain *r)
{
	return r->bytes;
}

size_t retain_node_count(const struct retain *r)
{
	return r->nodes;
}
