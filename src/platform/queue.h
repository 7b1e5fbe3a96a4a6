/*
 * queue.h - the pipeline's bounded queue (private to src/platform).
 *
 * Producers are the broker's loop threads (telemetry, twin requests,
 * connection events) and API threads (calls). Calls go ahead of everything
 * else and are never refused for size: they are few and someone waits for
 * them. Messages are bounded by their bytes: over the bound a telemetry
 * message is dropped and counted; connection events and twin requests are
 * small and always kept, so the registry's online state stays right.
 */
#ifndef MOTE_PLATFORM_QUEUE_H
#define MOTE_PLATFORM_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform/platform.h"

enum item_kind {
	ITEM_TELEMETRY,
	ITEM_TWIN,
	ITEM_CONNECT,
	ITEM_DISCONNECT,
	ITEM_SUBSCRIBE,
	ITEM_CALL,
};

/* One allocation: the header, then id, op and payload bytes (owned by the
 * queue until popped, then by the pipeline, which frees it). */
struct item {
	struct item *next;
	uint8_t kind;          /* enum item_kind */
	bool is_device;        /* the sender authenticated as the device it names */
	uint64_t enqueued_ms;  /* monotonic, for the lag */
	size_t bytes;          /* counted against the bound */
	char *id;              /* device id, NUL-terminated */
	char *op;              /* twin op / subscribe filter / cert serial, or NULL */
	uint8_t *payload;
	size_t len;
	/* ITEM_CALL: the function and its completion (owned by the caller). */
	platform_fn fn;
	void *arg;
	bool done;
};

struct queue {
	pthread_mutex_t mu;
	pthread_cond_t ready;   /* the pipeline waits for work */
	pthread_cond_t done;    /* callers wait for their call */
	struct item *head, *tail;       /* messages */
	struct item *calls, *calls_tail;
	size_t items, bytes, max_bytes;
	uint64_t dropped;
	bool closing;
};

enum mote_err queue_init(struct queue *q, size_t max_bytes);
void queue_destroy(struct queue *q);
/* Makes an item with room for id, op and payload copies. NULL: no memory. */
struct item *item_new(uint8_t kind, const char *id, size_t id_len, const char *op,
		      size_t op_len, const uint8_t *payload, size_t len);
/* false: dropped (full or closing); the item was freed. */
bool queue_push(struct queue *q, struct item *it);
/* Runs a call on the pipeline and waits. MOTE_ECLOSED when closing. */
enum mote_err queue_call(struct queue *q, platform_fn fn, void *arg);
/*
 * Takes everything queued (calls first), waiting up to wait_ms when empty.
 * *calls and *msgs are lists the caller owns. false once closing and empty.
 */
bool queue_take(struct queue *q, uint64_t wait_ms, struct item **calls, struct item **msgs);
/* The pipeline finished these calls: wake their callers. */
void queue_calls_done(struct queue *q, struct item *calls);
void queue_close(struct queue *q);
/* Depth, bytes, drops and the age of the oldest message. */
void queue_stats(struct queue *q, uint64_t now_mono_ms, uint64_t *items, uint64_t *bytes,
		 uint64_t *dropped, uint64_t *lag_ms);

#endif
