/*
 * outq.h - a connection's output queue (private to src/broker/).
 *
 * Bytes waiting to be written to one connection, as a list of segments:
 * packet headers and small packets are appended to a byte arena owned by the
 * queue; PUBLISH payloads larger than OUTQ_COPY_MAX are referenced in place
 * in their struct msg (the queue holds one msg_ref per payload segment), so
 * fan-out to N subscribers never copies a large payload. Smaller payloads are
 * copied into the arena: a 100-byte memcpy costs less than an iovec entry and
 * a refcount touch, and back-to-back small packets then leave as one
 * contiguous segment. outq_write() sends as much as the socket takes, up to
 * OUTQ_IOV segments per writev.
 *
 * Ownership: the queue owns its arena and segment array and one reference on
 * each queued msg; outq_free() drops them.
 * Threading: owned by the connection's loop thread.
 */
#ifndef MOTE_BROKER_OUTQ_H
#define MOTE_BROKER_OUTQ_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "broker/msg.h"
#include "net/tcp.h"

#define OUTQ_IOV 256
#define OUTQ_COPY_MAX 512

struct outq_seg {
	struct msg *m;    /* payload segment: reference held; NULL: arena bytes */
	uint32_t off;     /* arena offset (m == NULL) or offset in msg payload */
	uint32_t len;
};

struct outq {
	uint8_t *arena;
	uint32_t arena_head;  /* first unsent arena byte */
	uint32_t arena_len;
	uint32_t arena_cap;
	struct outq_seg *segs;
	uint32_t seg_head;    /* ring of segments */
	uint32_t seg_count;
	uint32_t seg_cap;
	size_t pending;       /* bytes queued and not yet written */
};

/*
 * Buffers a shard keeps for its connections' queues: an idle connection
 * gives its arena and segment array back when its queue drains, and the next
 * connection with output takes them from here instead of from malloc. Holds
 * at most OUTQ_CACHE_KEEP of each (1 MiB of arenas). One per shard (loop
 * thread); every outq function takes it, or NULL to use malloc/free alone.
 */
#define OUTQ_BLOCK 4096u      /* first arena size: the size the cache keeps */
#define OUTQ_FIRST_SEGS 16u   /* first segment array size: the size the cache keeps */
#define OUTQ_CACHE_KEEP 256u
struct outq_cache {
	void *arenas[OUTQ_CACHE_KEEP];
	void *segs[OUTQ_CACHE_KEEP];
	uint32_t n_arenas, n_segs;
};
/* Frees what the cache holds. */
void outq_cache_drain(struct outq_cache *c);

void outq_init(struct outq *q);
void outq_free(struct outq *q, struct outq_cache *cache);

/*
 * Reserves n arena bytes to encode a packet into; commit the bytes actually
 * used with outq_commit(). NULL on allocation failure. The pointer is valid
 * until the next call on the queue.
 */
uint8_t *outq_reserve(struct outq *q, struct outq_cache *cache, size_t n);
enum mote_err outq_commit(struct outq *q, struct outq_cache *cache, size_t used);

/* Queues m's payload bytes [off, off+len) by reference (takes a msg_ref). */
enum mote_err outq_push_payload(struct outq *q, struct outq_cache *cache, struct msg *m,
				uint32_t off, uint32_t len);

/*
 * Writes what the stream accepts. MOTE_OK when everything was written,
 * MOTE_EAGAIN when bytes remain (wait for writability), MOTE_EIO / MOTE_ECLOSED
 * on a socket error. *written gets the byte count.
 */
enum mote_err outq_write(struct outq *q, struct outq_cache *cache, struct net_stream *s,
			 size_t *written);

#endif
