/*
 * msg.c - reference-counted application messages and their pools; see msg.h.
 *
 * Pool invariants: a block on a free list is at least as large as its class
 * (128 << class bytes) and was obtained from malloc; `local[c]` is touched by
 * the owner thread only; `remote[c]` is a Treiber stack that other threads
 * push onto and only the owner empties, with one atomic exchange, so no
 * ABA problem can arise (nothing is ever popped one at a time).
 */
#include "broker/msg.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct free_block {
	struct free_block *next;
};

struct msg_pool {
	pthread_t owner;
	struct free_block *local[MSG_POOL_CLASSES];
	uint32_t local_count[MSG_POOL_CLASSES];
	_Atomic(struct free_block *) remote[MSG_POOL_CLASSES];
};

enum mote_err msg_pool_new(struct msg_pool **out)
{
	struct msg_pool *p = calloc(1, sizeof *p);
	if (!p)
		return MOTE_ENOMEM;
	p->owner = pthread_self();
	for (int c = 0; c < MSG_POOL_CLASSES; c++)
		atomic_init(&p->remote[c], NULL);
	*out = p;
	return MOTE_OK;
}

void msg_pool_bind(struct msg_pool *p)
{
	p->owner = pthread_self();
}

static void free_list(struct free_block *b)
{
	while (b) {
		struct free_block *next = b->next;
		free(b);
		b = next;
	}
}

void msg_pool_free(struct msg_pool *p)
{
	if (!p)
		return;
	for (int c = 0; c < MSG_POOL_CLASSES; c++) {
		free_list(p->local[c]);
		free_list(atomic_exchange(&p->remote[c], NULL));
	}
	free(p);
}

uint32_t msg_pool_cached(const struct msg_pool *p)
{
	uint32_t n = 0;
	for (int c = 0; c < MSG_POOL_CLASSES; c++)
		n += p->local_count[c];
	return n;
}

static size_t class_size(int c)
{
	return (size_t)128 << c;
}

static int class_of(size_t n)
{
	for (int c = 0; c < MSG_POOL_CLASSES; c++)
		if (n <= class_size(c))
			return c;
	return MSG_POOL_CLASSES;
}

/* Owner thread: keep the block if the list has room, else free it. */
static void keep_local(struct msg_pool *p, int c, struct free_block *b)
{
	if (p->local_count[c] >= MSG_POOL_KEEP) {
		free(b);
		return;
	}
	b->next = p->local[c];
	p->local[c] = b;
	p->local_count[c]++;
}

static void *pool_take(struct msg_pool *p, int c)
{
	if (!p->local[c]) {
		/* Take back what other threads freed, all at once. */
		struct free_block *b = atomic_exchange_explicit(&p->remote[c], NULL,
								memory_order_acquire);
		while (b) {
			struct free_block *next = b->next;
			keep_local(p, c, b);
			b = next;
		}
	}
	struct free_block *b = p->local[c];
	if (!b)
		return malloc(class_size(c));
	p->local[c] = b->next;
	p->local_count[c]--;
	return b;
}

struct msg *msg_new(struct msg_pool *pool, const uint8_t *topic, uint16_t topic_len,
		    const uint8_t *props, uint32_t props_len, const uint8_t *payload,
		    uint32_t payload_len, uint8_t qos, bool retain, uint64_t expiry_ms,
		    uint64_t origin)
{
	size_t n = sizeof(struct msg) + (size_t)topic_len + props_len + payload_len;
	int c = pool ? class_of(n) : MSG_POOL_CLASSES;
	struct msg *m = c < MSG_POOL_CLASSES ? pool_take(pool, c) : malloc(n);
	if (!m)
		return NULL;
	atomic_init(&m->refs, 1);
	m->qos = qos;
	m->retain = retain;
	m->size_class = (uint8_t)c;
	m->pool = c < MSG_POOL_CLASSES ? pool : NULL;
	m->topic_len = topic_len;
	m->props_len = props_len;
	m->payload_len = payload_len;
	m->expiry_ms = expiry_ms;
	m->origin = origin;
	m->plsn = 0;
	m->snap_epoch = 0;
	if (topic_len)
		memcpy(m->data, topic, topic_len);
	if (props_len)
		memcpy(m->data + topic_len, props, props_len);
	if (payload_len)
		memcpy(m->data + topic_len + props_len, payload, payload_len);
	return m;
}

void msg_unref(struct msg *m)
{
	if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	struct msg_pool *p = m->pool;
	int c = m->size_class;
	if (!p) {
		free(m);
		return;
	}
	struct free_block *b = (struct free_block *)(void *)m;
	if (pthread_equal(p->owner, pthread_self())) {
		keep_local(p, c, b);
		return;
	}
	struct free_block *head = atomic_load_explicit(&p->remote[c], memory_order_relaxed);
	do {
		b->next = head;
	} while (!atomic_compare_exchange_weak_explicit(&p->remote[c], &head, b,
							memory_order_release,
							memory_order_relaxed));
}
