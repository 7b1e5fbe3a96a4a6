/*
 * snapshot.c - compaction: the whole durable state written as one run of
 * records between PR_SNAP_BEGIN and PR_SNAP_END, after which every log
 * segment before PR_SNAP_BEGIN can go (persist.h, docs/durability.md).
 *
 * It runs at start-up (after replay, before any thread) and in the
 * background once the log has grown by max(64 MiB (compact_min_bytes),
 * 2x the last snapshot)
 * since the last one, so the log stays within a small multiple of the live
 * state and compaction costs O(1) per record written.
 *
 * A background snapshot stops the world for the time it takes to encode
 * the state (not to write it: the committer thread does that): shard 0 asks
 * every shard to hand over its stage and its staged shard items and park on
 * a barrier; it then reads every shard's sessions, inboxes and held
 * operations, submits the snapshot, and lets them go. Messages in flight
 * between shards at that moment (inboxes) are written as PR_ROUTE records,
 * held messages not yet routed as PR_MSG with PR_MSG_ROUTE.
 *
 * Threading: snapshot_write runs on one thread while no other shard runs.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "broker/broker_int.h"

#define SNAP_MIN_GROWTH (64ull << 20)
#define SNAP_CHECK_MS 1000u

struct snap {
	struct broker *b0;
	struct jrec_buf out;
	struct penc enc;
	uint64_t next_lsn; /* LSN of the next record put in out */
	uint64_t epoch;
	bool oom;
};

static void put(struct snap *sn, uint8_t type)
{
	uint8_t *p;
	if (sn->enc.oom || jrec_begin(&sn->out, sn->enc.len, &p) != MOTE_OK) {
		sn->oom = true;
		sn->enc.oom = false;
		return;
	}
	if (sn->enc.len)
		memcpy(p, sn->enc.p, sn->enc.len);
	jrec_seal(&sn->out, type, sn->enc.len);
	sn->next_lsn++;
}

/* Writes m's content once per snapshot; its plsn becomes the new record's. */
static void put_msg(struct snap *sn, struct msg *m, uint8_t flags)
{
	if (m->snap_epoch == sn->epoch && !flags)
		return;
	precord_msg(&sn->enc, flags, persist_wall_deadline(m->expiry_ms, mote_mono_ms()), m->qos, m->retain, msg_topic(m),
		    m->topic_len, msg_props(m), m->props_len, NULL, 0, msg_payload(m),
		    m->payload_len);
	m->plsn = sn->next_lsn;
	m->snap_epoch = sn->epoch;
	put(sn, PR_MSG);
}

static void put_retained(void *ctx, struct msg *m)
{
	put_msg(ctx, m, PR_MSG_RETAINED);
}

static void put_delivery(struct snap *sn, struct session *s, const struct delivery *d,
			 bool inflight)
{
	put_msg(sn, d->m, 0);
	uint8_t state = inflight ? d->state : DLV_QUEUED;
	if (state == DLV_SEND_HELD)
		state = DLV_PUBLISH_SENT;
	precord_enq(&sn->enc, s->client_id, s->client_id_len, d->m->plsn, d->qos, d->retain,
		    d->sub_ids, d->n_sub_ids, inflight ? d->packet_id : 0, state);
	put(sn, PR_ENQ);
}

static int by_seq(const void *a, const void *b)
{
	const struct delivery *x = *(const struct delivery *const *)a;
	const struct delivery *y = *(const struct delivery *const *)b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void put_will(struct snap *sn, struct session *s)
{
	persist_encode_will(&sn->enc, s, mote_mono_ms());
	put(sn, PR_WILL);
	s->will_persisted = true;
}

static void put_session(struct snap *sn, struct broker *b, struct session *s)
{
	if (!s->persisted) {
		if (s->will)
			put_will(sn, s); /* a clean session's will still goes out after a crash */
		return;
	}
	precord_session(&sn->enc, s->client_id, s->client_id_len, s->expiry_s, s->version,
			s->conn ? 0 : s->offline_wall_ms, (uint16_t)b->shard_id);
	put(sn, PR_SESSION);
	for (struct session_sub *e = s->subs; e; e = e->next) {
		struct sub_opts_rec o = { e->opts.qos, e->opts.no_local, e->opts.retain_as_published,
					  e->opts.retain_handling, e->opts.sub_id };
		precord_sub(&sn->enc, s->client_id, s->client_id_len, e->text, e->group_len,
			    e->text + e->group_len, e->filter_len, &o);
		put(sn, PR_SUB);
	}
	for (uint32_t i = 0; i < s->qos2_in_count; i++) {
		precord_pid(&sn->enc, s->client_id, s->client_id_len, s->qos2_in[i]);
		put(sn, PR_Q2IN);
	}
	if (s->inflight_count) {
		const struct delivery **order = malloc(s->inflight_count * sizeof *order);
		if (!order) {
			sn->oom = true;
			return;
		}
		for (uint32_t i = 0; i < s->inflight_count; i++)
			order[i] = &s->inflight[i];
		qsort(order, s->inflight_count, sizeof *order, by_seq);
		for (uint32_t i = 0; i < s->inflight_count; i++)
			put_delivery(sn, s, order[i], true);
		free(order);
	}
	for (uint32_t i = 0; i < s->queue.count; i++)
		put_delivery(sn, s, &s->queue.items[(s->queue.head + i) % s->queue.cap], false);
	if (s->will)
		put_will(sn, s);
}

/* What shard b has received from others and not handled yet. */
static void put_inbox_slots(struct snap *sn, struct broker *b, const struct item_vec *v,
			    uint32_t from)
{
	for (uint32_t i = from; i < v->len; i++) {
		const struct inbox_slot *sl = &v->v[i];
		if (sl->kind == IN_ROUTE) {
			put_msg(sn, sl->m, 0);
			precord_route(&sn->enc, sl->m->plsn, (uint16_t)b->shard_id);
			put(sn, PR_ROUTE);
		} else if (sl->kind == IN_SHARE_DELIVER) {
			struct inbox_item *it = sl->full;
			struct session *s = session_find(b, it->data, (uint16_t)it->len);
			if (!s || !s->persisted || it->qos == 0)
				continue;
			put_msg(sn, it->m, 0);
			precord_enq(&sn->enc, s->client_id, s->client_id_len, it->m->plsn, it->qos,
				    it->flag, it->sub_ids, it->n_sub_ids, 0, DLV_QUEUED);
			put(sn, PR_ENQ);
		}
	}
}

enum mote_err snapshot_write(struct broker *b0, uint64_t *begin, uint64_t *end, uint64_t *bytes)
{
	struct shared_state *sh = b0->shared;
	struct snap sn = { .b0 = b0, .epoch = ++sh->snap_epoch };
	sn.next_lsn = jcommit_next_lsn(sh->jc);
	*begin = sn.next_lsn;

	precord_u64(&sn.enc, mote_wall_ms());
	put(&sn, PR_SNAP_BEGIN);
	retain_match(b0->retained, (const uint8_t *)"#", 1, loop_now(b0->loop), put_retained, &sn);
	for (uint32_t k = 0; k < b0->nshards; k++) {
		struct broker *b = b0->shards[k];
		for (uint32_t i = 0; i < b->sessions.cap; i++)
			for (struct session *s = b->sessions.slots[i]; s; s = s->hnext)
				put_session(&sn, b, s);
	}
	/* After every session and subscription: replay routes these. */
	for (uint32_t k = 0; k < b0->nshards; k++) {
		struct broker *b = b0->shards[k];
		if (b->draining)
			put_inbox_slots(&sn, b, &b->inbox_work, b->inbox_pos + 1);
		put_inbox_slots(&sn, b, &b->inbox, 0);
		struct persist_shard *ps = b->ps;
		for (uint32_t i = 0; i < ps->ops_count; i++) {
			struct held_op *op = &ps->ops[(ps->ops_head + i) % ps->ops_cap];
			if (op->kind == HELD_ROUTE && op->m)
				put_msg(&sn, op->m, PR_MSG_ROUTE);
		}
	}
	precord_u64(&sn.enc, 0);
	sn.enc.len = 0;
	put(&sn, PR_SNAP_END);
	*end = sn.next_lsn - 1;
	*bytes = sn.out.len;

	enum mote_err err = sn.oom ? MOTE_ENOMEM : MOTE_OK;
	uint64_t first = 0;
	if (err == MOTE_OK)
		err = jcommit_submit(sh->jc, &sn.out, &first);
	if (err == MOTE_OK && first != *begin) {
		MOTE_ERROR("broker", "event=snapshot_failed why=\"log moved while paused\"");
		err = MOTE_EIO;
	}
	jrec_buf_free(&sn.out);
	penc_free(&sn.enc);
	return err;
}

/* ---- the background pause ---------------------------------------------------------- */

void snapshot_park(struct broker *b)
{
	persist_shard_flush(b);
	shard_flush_stage(b);
	pthread_barrier_wait(&b->shared->pause_in);
	pthread_barrier_wait(&b->shared->pause_out);
}

static void background(struct broker *b0)
{
	struct shared_state *sh = b0->shared;
	for (uint32_t k = 1; k < b0->nshards; k++) {
		struct inbox_item it = { .kind = IN_PAUSE };
		shard_send(b0, k, &it);
	}
	persist_shard_flush(b0);
	shard_flush_stage(b0);
	pthread_barrier_wait(&sh->pause_in);
	uint64_t t0 = mote_mono_ms(), begin, end, bytes;
	enum mote_err err = snapshot_write(b0, &begin, &end, &bytes);
	pthread_barrier_wait(&sh->pause_out);
	if (err != MOTE_OK) {
		MOTE_WARN("broker", "event=snapshot_failed why=\"%s\"", mote_strerror(err));
		return;
	}
	sh->snap_release = begin - 1;
	sh->snap_end = end;
	sh->last_snap_bytes = bytes;
	MOTE_INFO("broker", "event=snapshot bytes=%llu records=%llu pause_ms=%llu",
		  (unsigned long long)bytes, (unsigned long long)(end - begin + 1),
		  (unsigned long long)(mote_mono_ms() - t0));
}

static void check_cb(struct loop *loop, struct loop_timer *t)
{
	struct broker *b0 = t->data;
	struct shared_state *sh = b0->shared;
	if (b0->shutting_down)
		return;
	if (sh->snap_end && jcommit_safe_lsn(sh->jc) >= sh->snap_end) {
		jcommit_request_release(sh->jc, sh->snap_release);
		sh->snap_end = 0;
	}
	uint64_t floor = b0->cfg.compact_min_bytes ? b0->cfg.compact_min_bytes : SNAP_MIN_GROWTH;
	uint64_t limit = sh->last_snap_bytes * 2;
	if (limit < floor)
		limit = floor;
	if (!sh->snap_end && !persist_failing(b0) && jcommit_bytes_since_release(sh->jc) > limit)
		background(b0);
	loop_timer_start(loop, t, SNAP_CHECK_MS);
}

void snapshot_start_timer(struct broker *b0)
{
	loop_timer_init(&b0->snap_timer, check_cb, b0);
	loop_timer_start(b0->loop, &b0->snap_timer, SNAP_CHECK_MS);
}
