/*
 * retain.c - the retained-message store; see retain.h.
 *
 * A trie with one node per topic-name prefix (the plain trie of trie.h, the
 * same base as the subscription trie). A node holds at most one message: the
 * retained message of the topic ending there.
 *
 * Invariants:
 *  - every node but the root holds a message or a child: deleting a message
 *    (empty payload, or expired when met by retain_match) frees the nodes it
 *    leaves empty up the path;
 *  - count = nodes holding a message, bytes = sum of their payload lengths;
 *  - walks use the trie's frame stack (see trie.h): it never overflows and
 *    never allocates.
 *
 * Out of memory: retain_set allocates the frame stack, the new nodes and the
 * parent's child-table slot (trie_path_build, trie_path_attach) before
 * touching the old message. A failure can leave grown capacity behind,
 * never a node.
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

#include "broker/trie.h"

struct rnode {
	struct trie_node base; /* first: the trie allocates and frees nodes through it */
	struct msg *msg;       /* one reference, or NULL */
};
static_assert(offsetof(struct rnode, base) == 0, "trie node base must come first");

/* Walk frame flags (struct trie_frame.flags). */
enum {
	RF_ALL = 1,         /* n is under a '#': it and everything below it match */
	RF_KIDS_ALL = 2,    /* the children being iterated are under a '#' */
	RF_SKIP_DOLLAR = 4, /* [MQTT-4.7.2-1] wildcard at the first level */
};

struct retain {
	struct trie trie; /* walk frames: pos = start of the filter level applied at n
			   * (> len when none left), end = end of that level */
	size_t count;
	size_t bytes;
};

static struct rnode *rn(struct trie_node *b)
{
	return LM_CONTAINER(b, struct rnode, base);
}

static bool payload_empty(const struct trie_node *b)
{
	return !LM_CONTAINER(b, const struct rnode, base)->msg;
}

/* No payload_release: a node's message is dropped before the node goes. */
static const struct trie_ops retain_ops = {
	.node_size = sizeof(struct rnode),
	.wild = false,
	.payload_empty = payload_empty,
};

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
	size_t d = trie_path_find(&r->trie, topic, len);
	if (d == 0 || !rn(r->trie.frames[d].n)->msg)
		return;
	drop_msg(r, rn(r->trie.frames[d].n));
	trie_prune_path(&r->trie, d);
}

struct retain *retain_new(void)
{
	struct retain *r = calloc(1, sizeof *r);
	if (r && trie_init(&r->trie, &retain_ops) != MOTE_OK) {
		free(r);
		r = NULL;
	}
	return r;
}

enum mote_err retain_set(struct retain *r, struct msg *m)
{
	enum mote_err err = MOTE_OK;
	const uint8_t *topic = msg_topic(m);
	size_t len = m->topic_len;
	struct trie_path path = { .chain = NULL }; /* new nodes: not in the tree until attached */

	if (m->payload_len == 0) {
		delete_topic(r, topic, len);
		goto out;
	}
	if ((err = trie_path_build(&r->trie, topic, len, &path)) != MOTE_OK)
		goto out;
	if ((err = trie_path_attach(&r->trie, &path)) != MOTE_OK)
		goto out;

	/* Nothing below can fail. Ref before unref: m may be the stored one. */
	struct rnode *n = rn(path.node);
	msg_ref(m);
	if (n->msg)
		drop_msg(r, n);
	n->msg = m;
	r->count++;
	r->bytes += m->payload_len;
out:
	trie_path_drop(&r->trie, &path);
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
	struct trie_frame *f = r->trie.frames;
	size_t top = 0;
	f[0] = (struct trie_frame){ .n = r->trie.root, .flags = destroy ? RF_ALL : 0 };
	for (;;) {
		struct trie_frame *cur = &f[top];
		struct rnode *n = rn(cur->n);
		struct trie_node *next = NULL;
		if (cur->stage == RS_ENTER) {
			cur->stage = RS_DONE;
			if (cur->flags & RF_ALL) {
				visit(r, n, destroy, now_ms, fn, ctx);
				cur->flags |= RF_KIDS_ALL;
				cur->stage = RS_KIDS;
			} else if (cur->pos > flen) {
				visit(r, n, destroy, now_ms, fn, ctx);
			} else {
				cur->end = lvl_end(filter, flen, cur->pos);
				const uint8_t *lv = filter + cur->pos;
				size_t lvlen = cur->end - cur->pos;
				uint8_t first = top == 0 ? RF_SKIP_DOLLAR : 0;
				if (lvl_is_hash(lv, lvlen)) {
					/* "a/#" matches "a" too; the root holds no message */
					visit(r, n, destroy, now_ms, fn, ctx);
					cur->flags |= RF_KIDS_ALL | first;
					cur->stage = RS_KIDS;
				} else if (lvl_is_plus(lv, lvlen)) {
					cur->flags |= first;
					cur->stage = RS_KIDS;
				} else {
					next = trie_child(&r->trie, cur->n, lv, lvlen);
				}
			}
			if (cur->stage == RS_KIDS)
				lm_iter_init(&cur->n->kids, &cur->it);
		}
		if (cur->stage == RS_KIDS) {
			bool skip_dollar = cur->flags & RF_SKIP_DOLLAR;
			struct lm_link *l;
			while (!next && (l = lm_iter_next(&cur->n->kids, &cur->it))) {
				if (!(skip_dollar && l->klen > 0 && l->key[0] == '$'))
					next = trie_node_of(l);
			}
			if (!next) {
				lm_shrink(&cur->n->kids);
				cur->stage = RS_DONE;
			}
		}
		if (next) {
			assert(top + 1 < r->trie.nframes);
			bool all = cur->stage == RS_KIDS && (cur->flags & RF_KIDS_ALL);
			f[++top] = (struct trie_frame){ .n = next,
							.pos = cur->end + 1,
							.flags = all ? RF_ALL : 0 };
			continue;
		}
		if (top == 0)
			break;
		top--;
		/* p walking its kids: n is the link it returned last; else an exact lookup */
		struct trie_frame *p = &f[top];
		struct lm_iter *it = p->stage == RS_KIDS ? &p->it : NULL;
		if (!n->msg)
			trie_drop_if_leaf(&r->trie, p->n, cur->n, it);
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
	trie_fini(&r->trie);
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
	return r->trie.nodes;
}
