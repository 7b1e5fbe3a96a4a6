/* queue.c - the pipeline's bounded queue (see queue.h). */
#include "platform/queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"

enum mote_err queue_init(struct queue *q, size_t max_bytes)
{
	memset(q, 0, sizeof *q);
	q->max_bytes = max_bytes;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&q->mu, NULL) != 0)
		return MOTE_ENOMEM;
	if (pthread_cond_init(&q->ready, &ca) != 0 || pthread_cond_init(&q->done, NULL) != 0) {
		pthread_mutex_destroy(&q->mu);
		return MOTE_ENOMEM;
	}
	pthread_condattr_destroy(&ca);
	return MOTE_OK;
}

static void free_list(struct item *it)
{
	while (it) {
		struct item *next = it->next;
		free(it);
		it = next;
	}
}

void queue_destroy(struct queue *q)
{
	free_list(q->head);
	pthread_cond_destroy(&q->ready);
	pthread_cond_destroy(&q->done);
	pthread_mutex_destroy(&q->mu);
}

struct item *item_new(uint8_t kind, const char *id, size_t id_len, const char *op,
		      size_t op_len, const uint8_t *payload, size_t len)
{
	size_t bytes = sizeof(struct item) + id_len + 1 + (op ? op_len + 1 : 0) + len + 1;
	struct item *it = malloc(bytes);
	if (!it)
		return NULL;
	memset(it, 0, sizeof *it);
	char *p = (char *)(it + 1);
	it->kind = kind;
	it->bytes = bytes;
	it->id = p;
	memcpy(p, id, id_len);
	p[id_len] = '\0';
	p += id_len + 1;
	if (op) {
		it->op = p;
		memcpy(p, op, op_len);
		p[op_len] = '\0';
		p += op_len + 1;
	}
	it->payload = (uint8_t *)p;
	if (len)
		memcpy(p, payload, len);
	p[len] = '\0'; /* a NUL after the payload lets parsers treat it as text */
	it->len = len;
	return it;
}

bool queue_push(struct queue *q, struct item *it)
{
	it->enqueued_ms = mote_mono_ms();
	it->next = NULL;
	pthread_mutex_lock(&q->mu);
	bool must_keep = it->kind != ITEM_TELEMETRY;
	if (q->closing || (!must_keep && q->bytes + it->bytes > q->max_bytes)) {
		q->dropped++;
		pthread_mutex_unlock(&q->mu);
		free(it);
		return false;
	}
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->items++;
	q->bytes += it->bytes;
	bool wake = q->items == 1;
	pthread_mutex_unlock(&q->mu);
	if (wake)
		pthread_cond_signal(&q->ready);
	return true;
}

enum mote_err queue_call(struct queue *q, platform_fn fn, void *arg)
{
	struct item call;
	memset(&call, 0, sizeof call);
	call.kind = ITEM_CALL;
	call.fn = fn;
	call.arg = arg;
	pthread_mutex_lock(&q->mu);
	if (q->closing) {
		pthread_mutex_unlock(&q->mu);
		return MOTE_ECLOSED;
	}
	if (q->calls_tail)
		q->calls_tail->next = &call;
	else
		q->calls = &call;
	q->calls_tail = &call;
	pthread_cond_signal(&q->ready);
	while (!call.done)
		pthread_cond_wait(&q->done, &q->mu);
	pthread_mutex_unlock(&q->mu);
	return MOTE_OK;
}

bool queue_take(struct queue *q, uint64_t wait_ms, struct item **calls, struct item **msgs)
{
	pthread_mutex_lock(&q->mu);
	if (!q->head && !q->calls && !q->closing && wait_ms) {
		struct timespec ts = mote_mono_deadline(wait_ms);
		while (!q->head && !q->calls && !q->closing &&
		       pthread_cond_timedwait(&q->ready, &q->mu, &ts) != ETIMEDOUT) {
		}
	}
	*calls = q->calls;
	q->calls = q->calls_tail = NULL;
	*msgs = q->head;
	q->head = q->tail = NULL;
	q->items = 0;
	q->bytes = 0;
	bool more = !(q->closing && !*calls && !*msgs);
	pthread_mutex_unlock(&q->mu);
	return more;
}

void queue_calls_done(struct queue *q, struct item *calls)
{
	if (!calls)
		return;
	pthread_mutex_lock(&q->mu);
	while (calls) {
		struct item *next = calls->next;
		calls->done = true; /* the caller's stack item: untouched after this */
		calls = next;
	}
	pthread_mutex_unlock(&q->mu);
	pthread_cond_broadcast(&q->done);
}

void queue_close(struct queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->closing = true;
	pthread_mutex_unlock(&q->mu);
	pthread_cond_broadcast(&q->ready);
}

void queue_stats(struct queue *q, uint64_t now_mono_ms, uint64_t *items, uint64_t *bytes,
		 uint64_t *dropped, uint64_t *lag_ms)
{
	pthread_mutex_lock(&q->mu);
	*items = q->items;
	*bytes = q->bytes;
	*dropped = q->dropped;
	*lag_ms = q->head && now_mono_ms > q->head->enqueued_ms ? now_mono_ms - q->head->enqueued_ms
								: 0;
	pthread_mutex_unlock(&q->mu);
}
