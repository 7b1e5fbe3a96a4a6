/*
 * shard.c - one event loop per thread, and how the loops talk.
 *
 * The broker is N shards (struct broker), N = --threads (default: one per
 * CPU). Shard 0 runs on the caller's loop and owns the listeners; shards
 * 1..N-1 each run a loop of their own on a thread started here.
 *
 * Where things live:
 *   - A client id lives on shard_of_id(id): its session, its connection, its
 *     will and expiry timers. A connection is accepted on shard 0, handed
 *     round robin to a shard, and moved once more to its id's shard when its
 *     CONNECT names one that lives elsewhere (conn.c). Session takeover and
 *     resumption therefore never cross threads.
 *   - Each shard has its own subscription tree (its own sessions'
 *     subscriptions) and its own retained index. A message is routed on the
 *     shard it was published on, then handed by reference to every other
 *     shard that has subscriptions (or always, when retained, so that every
 *     retained index sees it), which routes it in its own tree.
 *   - A shared group "$share/g/f" is owned by shard_of_group(g, f); members
 *     living on other shards are stubs in the owner's tree (share.c), so
 *     exactly one shard chooses the member for each message.
 *
 * Ordering: what one shard sends another goes through one FIFO inbox, in
 * the order sent, so messages from one publisher reach every subscriber in
 * the order published (MQTT 4.6), whatever shard the subscriber is on.
 *
 * Inbox: a mutex-guarded array that any shard appends to and the owner takes
 * whole (swapping arrays), so the lock is held for an append or a swap,
 * never while work is done. Senders stage items per target and hand them
 * over when their own loop runs dry (loop_defer_idle): one lock and at most one
 * wake-up per batch, not per message. A stage is also handed over as soon
 * as it holds STAGE_BATCH items, so that a shard that never runs dry still
 * feeds the others steadily (they work in parallel) with bounded memory.
 *
 * Congestion: when a shard's inbox holds more than INBOX_MAX_QOS0 items, it
 * is not keeping up; QoS 0 messages for it are then dropped (and counted),
 * as they are for a client whose output buffer is full. QoS 1/2 messages
 * and control items are never dropped here.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "broker/broker_int.h"

#define STAGE_BATCH 1024u
#define INBOX_MAX_QOS0 (1u << 20)

/* FNV-1a, then a mix so that nearby ids spread. */
static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint32_t pick(uint64_t h, uint32_t n)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)(h % n);
}

uint32_t shard_of_id(const struct broker *b, const uint8_t *id, size_t len)
{
	if (b->nshards <= 1)
		return 0;
	return pick(hash_bytes(14695981039346656037ull, id, len), b->nshards);
}

uint32_t shard_of_group(const struct broker *b, const uint8_t *group, size_t glen,
			const uint8_t *filter, size_t flen)
{
	if (b->nshards <= 1)
		return 0;
	uint64_t h = hash_bytes(14695981039346656037ull, group, glen);
	h = hash_bytes(h ^ 0x2f, filter, flen);
	return pick(h, b->nshards);
}

/* ---- item vectors ------------------------------------------------------ */

static bool vec_push(struct item_vec *v, const struct inbox_slot *it)
{
	if (v->len == v->cap) {
		uint32_t cap = v->cap ? v->cap * 2 : 64;
		struct inbox_slot *n = realloc(v->v, cap * sizeof *n);
		if (!n)
			return false;
		v->v = n;
		v->cap = cap;
	}
	v->v[v->len++] = *it;
	return true;
}

void inbox_item_free(struct inbox_item *it)
{
	msg_unref(it->m);
	free(it->data);
	if (it->kind == IN_ADOPT && it->stream.ops)
		it->stream.ops->close(&it->stream);
	it->m = NULL;
	it->data = NULL;
	it->stream.ops = NULL;
}

static void slot_free(struct inbox_slot *sl)
{
	msg_unref(sl->m);
	if (sl->full) {
		inbox_item_free(sl->full);
		free(sl->full);
	}
	sl->m = NULL;
	sl->full = NULL;
}

static void vec_free(struct item_vec *v)
{
	for (uint32_t i = 0; i < v->len; i++)
		slot_free(&v->v[i]);
	free(v->v);
	memset(v, 0, sizeof *v);
}

/* ---- sending ----------------------------------------------------------- */

/* Hands what is staged for shard t over to its inbox. */
static void stage_flush_one(struct broker *b, uint32_t t)
{
	struct item_vec *st = &b->stage[t];
	if (st->len == 0)
		return;
	struct broker *to = b->shards[t];
	pthread_mutex_lock(&to->inbox_mu);
	bool wake = to->inbox.len == 0;
	uint32_t i = st->len;
	if (to->inbox.len == 0) {
		/* Hand the whole array over: no copy. */
		struct item_vec tmp = to->inbox;
		to->inbox = *st;
		*st = tmp;
	} else {
		for (i = 0; i < st->len; i++)
			if (!vec_push(&to->inbox, &st->v[i]))
				break;
	}
	atomic_store_explicit(&to->inbox_len, to->inbox.len, memory_order_relaxed);
	pthread_mutex_unlock(&to->inbox_mu);
	if (i < st->len) { /* out of memory: the rest is lost */
		MOTE_WARN("broker", "event=shard_send_failed count=%u why=\"out of memory\"",
			  st->len - i);
		for (; i < st->len; i++)
			slot_free(&st->v[i]);
	}
	st->len = 0;
	if (wake)
		loop_wake(to->loop);
}

void shard_flush_stage(struct broker *b)
{
	for (uint32_t t = 0; t < b->nshards; t++)
		stage_flush_one(b, t);
}

/* Hands everything staged to its target shards (loop_defer_idle callback). */
static void stage_flush(struct loop *loop, void *data)
{
	(void)loop;
	shard_flush_stage(data);
}

static void stage_push(struct broker *b, uint32_t to, const struct inbox_slot *sl)
{
	if (!vec_push(&b->stage[to], sl)) {
		MOTE_WARN("broker", "event=shard_send_failed count=1 why=\"out of memory\"");
		struct inbox_slot tmp = *sl;
		slot_free(&tmp);
		return;
	}
	if (b->stage[to].len >= STAGE_BATCH)
		stage_flush_one(b, to);
	else
		loop_defer_idle(b->loop, &b->stage_idle, stage_flush, b);
}

void shard_send(struct broker *b, uint32_t to, struct inbox_item *it)
{
	struct inbox_slot sl = { .kind = it->kind };
	sl.full = malloc(sizeof *sl.full);
	if (!sl.full) {
		MOTE_WARN("broker", "event=shard_send_failed count=1 why=\"out of memory\"");
		inbox_item_free(it);
		return;
	}
	*sl.full = *it;
	stage_push(b, to, &sl);
}

/* Sends now, not at idle: shutdown must not wait for a busy loop. */
static void send_now(struct broker *b, uint32_t to, uint8_t kind)
{
	struct inbox_item it = { .kind = kind };
	shard_send(b, to, &it);
	stage_flush(b->loop, b);
}

bool shard_forward(struct broker *b, struct msg *m)
{
	bool interested = false;
	for (uint32_t t = 0; t < b->nshards; t++) {
		if (t == b->shard_id)
			continue;
		struct broker *to = b->shards[t];
		bool subs = atomic_load_explicit(&to->route_interest, memory_order_acquire) > 0;
		if (!subs && !m->retain)
			continue;
		interested |= subs;
		if (m->qos == 0 &&
		    atomic_load_explicit(&to->inbox_len, memory_order_relaxed) > INBOX_MAX_QOS0) {
			STAT_ADD(b, msgs_dropped, 1); /* that shard is not keeping up */
			continue;
		}
		struct inbox_slot sl = { .kind = IN_ROUTE, .m = msg_ref(m) };
		stage_push(b, t, &sl);
	}
	return interested;
}

void shard_note_interest(struct broker *b)
{
	atomic_store_explicit(&b->route_interest, (uint32_t)subtree_count(b->subs),
			      memory_order_release);
}

/* ---- receiving --------------------------------------------------------- */

static void handle_item(struct broker *b, struct inbox_item *it)
{
	switch (it->kind) {
	case IN_ADOPT:
		if (b->shutting_down)
			break; /* inbox_item_free closes the stream */
		conn_adopt(b, &it->stream, &it->peer, it->transport, it->data, it->len);
		it->stream.ops = NULL; /* the connection owns it now */
		break;
	case IN_RECHECK:
		conn_recheck_all(b);
		break;
	case IN_ROUTE: /* routed messages come as slots (inbox_drain) */
		break;
	case IN_SHARE_SUB:
		share_on_sub(b, it);
		break;
	case IN_SHARE_UNSUB:
		share_on_unsub(b, it);
		break;
	case IN_SHARE_DELIVER:
		share_on_deliver(b, it);
		break;
	case IN_SHUTDOWN:
		broker_shutdown_shard(b);
		break;
	case IN_STOPPED: /* shard 0 stops once every other shard has */
		broker_conn_gone(b);
		break;
	case IN_PAUSE:
		snapshot_park(b);
		break;
	}
}

/* Loop wake callback: takes the whole inbox and works through it. */
static void inbox_drain(struct loop *loop, void *data)
{
	(void)loop;
	struct broker *b = data;
	if (b->shard_id == 0 && atomic_exchange(&b->shared->shutdown_asked, false))
		broker_shutdown(b); /* broker_shutdown_async */
	persist_poll(b); /* the committer woke us: held operations may go */
	pthread_mutex_lock(&b->inbox_mu);
	struct item_vec tmp = b->inbox;
	b->inbox = b->inbox_work;
	b->inbox_work = tmp;
	atomic_store_explicit(&b->inbox_len, 0, memory_order_relaxed);
	pthread_mutex_unlock(&b->inbox_mu);
	struct item_vec *w = &b->inbox_work;
	b->draining = true;
	for (uint32_t i = 0; i < w->len; i++) {
		struct inbox_slot *sl = &w->v[i];
		b->inbox_pos = i;
		if (sl->kind == IN_ROUTE)
			route_local(b, sl->m);
		else
			handle_item(b, sl->full);
		slot_free(sl);
	}
	b->draining = false;
	w->len = 0;
}

/* ---- lifetime ---------------------------------------------------------- */

static void *shard_thread(void *arg)
{
	struct broker *b = arg;
	msg_pool_bind(b->pool);
	if (loop_run(b->loop) != MOTE_OK)
		MOTE_ERROR("broker", "event=loop_failed shard=%u", b->shard_id);
	/* Tell shard 0, which stops the process's loop once all have stopped. */
	atomic_fetch_sub_explicit(&b->shared->running, 1, memory_order_acq_rel);
	send_now(b, 0, IN_STOPPED);
	return NULL;
}

enum mote_err shard_init(struct broker *b, struct loop *loop)
{
	if (pthread_mutex_init(&b->inbox_mu, NULL) != 0)
		return MOTE_ENOMEM;
	b->inbox_mu_ready = true;
	b->stage = calloc(b->nshards, sizeof *b->stage);
	if (!b->stage)
		return MOTE_ENOMEM;
	if (!loop) {
		enum mote_err err = loop_new(&b->loop);
		if (err != MOTE_OK)
			return err;
		b->own_loop = true;
	} else {
		b->loop = loop;
	}
	loop_set_wake_fn(b->loop, inbox_drain, b);
	b->next_uid = b->shard_id; /* uids step by nshards: unique over all shards */
	return MOTE_OK;
}

enum mote_err shard_start_threads(struct broker *b0)
{
	for (uint32_t i = 1; i < b0->nshards; i++) {
		struct broker *b = b0->shards[i];
		atomic_fetch_add_explicit(&b0->shared->running, 1, memory_order_acq_rel);
		if (pthread_create(&b->thread, NULL, shard_thread, b) != 0) {
			atomic_fetch_sub_explicit(&b0->shared->running, 1, memory_order_acq_rel);
			return MOTE_ENOMEM;
		}
		b->thread_started = true;
	}
	return MOTE_OK;
}

void broker_shutdown_async(struct broker *b)
{
	/* A flag, not an inbox item: nothing to allocate, nothing to fail. */
	atomic_store(&b->shared->shutdown_asked, true);
	loop_wake(b->shards[0]->loop);
}

void shard_shutdown_others(struct broker *b0)
{
	for (uint32_t i = 1; i < b0->nshards; i++)
		if (b0->shards[i] && b0->shards[i]->thread_started)
			send_now(b0, i, IN_SHUTDOWN);
}

bool shard_all_stopped(const struct broker *b0)
{
	return atomic_load_explicit(&b0->shared->running, memory_order_acquire) == 0;
}

void shard_join_and_free(struct broker *b)
{
	if (b->thread_started) {
		pthread_join(b->thread, NULL);
		b->thread_started = false;
	}
	if (b->stage) {
		for (uint32_t t = 0; t < b->nshards; t++)
			vec_free(&b->stage[t]);
		free(b->stage);
		b->stage = NULL;
	}
	if (b->inbox_mu_ready) {
		vec_free(&b->inbox);
		vec_free(&b->inbox_work);
		pthread_mutex_destroy(&b->inbox_mu);
		b->inbox_mu_ready = false;
	}
	if (b->loop)
		loop_defer_cancel(b->loop, &b->stage_idle);
}
