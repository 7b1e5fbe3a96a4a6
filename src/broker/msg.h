/*
 * msg.h - an application message inside the broker (private to src/broker/).
 *
 * One struct msg per accepted PUBLISH, shared by reference by every queue it
 * sits in (subscriber queues, in-flight windows, the retained store): fan-out
 * never copies the payload. Immutable after msg_new() except `refs`.
 *
 * Layout: one allocation; topic, forwarded properties and payload follow the
 * header in `data`.
 *
 * Forwarded properties (`props`) are the 5.0 properties a subscriber must
 * receive unchanged, pre-encoded as wire entries: payload format indicator,
 * content type, response topic, correlation data, user properties (in the
 * order received). Message expiry is kept as a deadline and re-encoded per
 * delivery; topic alias and subscription identifiers are per subscriber.
 *
 * Threading: a message is handed between loops (one per shard) by
 * reference, so refs is atomic; everything else is immutable once created.
 *
 * Allocation: messages come from a struct msg_pool, one per shard: freed
 * blocks of a few size classes are kept on per-class free lists and reused,
 * so routing a message does not call malloc once the pool is warm. A message
 * freed on another shard's thread goes back to its pool through a lock-free
 * stack that the owning thread takes whole when its own list runs empty.
 * Each list keeps at most MSG_POOL_KEEP blocks; the rest go back to free().
 * Larger messages, and pool == NULL, use malloc/free directly.
 */
#ifndef MOTE_BROKER_MSG_H
#define MOTE_BROKER_MSG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct msg_pool;

struct msg {
	_Atomic uint32_t refs;
	uint8_t qos;            /* QoS it was published with */
	bool retain;            /* RETAIN flag as published */
	uint8_t size_class;     /* pool class, MSG_POOL_CLASSES = malloc'd */
	uint16_t topic_len;
	uint32_t props_len;
	uint32_t payload_len;
	uint64_t expiry_ms;     /* monotonic deadline; 0 = never expires */
	uint64_t origin;        /* id of the publishing session (no-local), 0 = internal */
	/* LSN of its journal record, 0 = not written (persist.h). Set by the
	 * publishing shard before the message is routed, and by the snapshot
	 * writer while every shard is paused: never while others read it. */
	uint64_t plsn;
	uint64_t snap_epoch;    /* snapshot.c: written in snapshot number ... */
	struct msg_pool *pool;  /* where the block goes back to, NULL = free() */
	uint8_t data[];         /* topic | props | payload */
};

static inline const uint8_t *msg_topic(const struct msg *m) { return m->data; }
static inline const uint8_t *msg_props(const struct msg *m) { return m->data + m->topic_len; }
static inline const uint8_t *msg_payload(const struct msg *m)
{
	return m->data + m->topic_len + m->props_len;
}

#define MSG_POOL_CLASSES 6   /* blocks of 128 B .. 4 KiB */
#define MSG_POOL_KEEP 1024   /* free blocks kept per class */

/*
 * A pool belongs to one thread: the one that calls msg_pool_bind (the
 * creating thread until then). MOTE_ENOMEM. msg_pool_free may only run when
 * no message of the pool is alive any more; it frees the kept blocks.
 */
enum mote_err msg_pool_new(struct msg_pool **out);
void msg_pool_bind(struct msg_pool *p);
void msg_pool_free(struct msg_pool *p);
/* Blocks on the owner's free lists (introspection: tests). */
uint32_t msg_pool_cached(const struct msg_pool *p);

/*
 * Creates a message with refs = 1, copying topic, props and payload, from
 * `pool` (NULL: malloc). Call on the pool's thread. Returns NULL on
 * allocation failure. The caller owns the reference.
 */
struct msg *msg_new(struct msg_pool *pool, const uint8_t *topic, uint16_t topic_len, const uint8_t *props,
		    uint32_t props_len, const uint8_t *payload, uint32_t payload_len,
		    uint8_t qos, bool retain, uint64_t expiry_ms, uint64_t origin);

static inline struct msg *msg_ref(struct msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}
/* Drops one reference; frees at zero (back to its pool, from any thread).
 * NULL is accepted. */
void msg_unref(struct msg *m);

/* Whether the message has expired at monotonic time now_ms. */
static inline bool msg_expired(const struct msg *m, uint64_t now_ms)
{
	return m->expiry_ms != 0 && now_ms >= m->expiry_ms;
}

#endif
