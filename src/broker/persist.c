/*
 * persist.c - the live side of durability: staging records, handing them to
 * the committer at loop idle, and the FIFO of operations held until their
 * records are safe (see persist.h).
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "broker/broker_int.h"

#define HANDOFF_RETRY_MS 100

static bool active(const struct broker *b)
{
	return b->ps && !b->replaying;
}


bool persist_failing(const struct broker *b)
{
	return b->shared->jc && jcommit_failing(b->shared->jc);
}

bool persist_wants_msg(const struct broker *b, const struct msg *m)
{
	if (!active(b))
		return false;
	if (m->retain)
		return !(m->topic_len >= 4 && memcmp(msg_topic(m), "$SYS", 4) == 0);
	return m->qos > 0 &&
	       atomic_load_explicit(&b->shared->persist_subs, memory_order_relaxed) > 0;
}

/* ---- staging ------------------------------------------------------------------- */

static void handoff_idle(struct loop *loop, void *data);

static void schedule(struct broker *b)
{
	loop_defer_idle(b->loop, &b->ps->idle, handoff_idle, b);
}

/* Moves the record encoded in ps->enc into the stage. */
static enum mote_err stage(struct broker *b, uint8_t type)
{
	struct persist_shard *ps = b->ps;
	enum mote_err err = ps->enc.oom ? MOTE_ENOMEM : MOTE_OK;
	uint8_t *p = NULL;
	if (err == MOTE_OK)
		err = jrec_begin(&ps->stage, ps->enc.len, &p);
	if (err != MOTE_OK) {
		ps->enc.oom = false;
		MOTE_WARN("broker", "event=persist_failed type=%u why=\"%s\"", type,
			  mote_strerror(err));
		return err;
	}
	if (ps->enc.len)
		memcpy(p, ps->enc.p, ps->enc.len);
	jrec_seal(&ps->stage, type, ps->enc.len);
	schedule(b);
	return MOTE_OK;
}

uint64_t persist_wall_deadline(uint64_t mono_deadline, uint64_t now_mono)
{
	if (!mono_deadline)
		return 0;
	return mote_wall_ms() + (mono_deadline > now_mono ? mono_deadline - now_mono : 0);
}

void persist_encode_will(struct penc *e, const struct session *s, uint64_t now_mono)
{
	const struct msg *w = s->will;
	precord_will(e, s->client_id, s->client_id_len, s->will_delay_s,
		     persist_wall_deadline(w->expiry_ms, now_mono), w->qos, w->retain, msg_topic(w),
		     w->topic_len, msg_props(w), w->props_len, msg_payload(w), w->payload_len);
}

enum mote_err persist_msg(struct broker *b, struct msg *m, const struct session *origin)
{
	struct persist_shard *ps = b->ps;
	if (ps->n_stage_msgs == ps->cap_stage_msgs) {
		uint32_t cap = ps->cap_stage_msgs ? ps->cap_stage_msgs * 2 : 64;
		struct msg **mm = realloc(ps->stage_msgs, cap * sizeof *mm);
		if (!mm)
			return MOTE_ENOMEM;
		ps->stage_msgs = mm;
		uint32_t *ii = realloc(ps->stage_idx, cap * sizeof *ii);
		if (!ii)
			return MOTE_ENOMEM;
		ps->stage_idx = ii;
		ps->cap_stage_msgs = cap;
	}
	precord_msg(&ps->enc, PR_MSG_ROUTE, persist_wall_deadline(m->expiry_ms, loop_now(b->loop)),
		    m->qos, m->retain,
		    msg_topic(m), m->topic_len, msg_props(m), m->props_len,
		    origin ? origin->client_id : NULL, origin ? origin->client_id_len : 0,
		    msg_payload(m), m->payload_len);
	uint32_t idx = ps->stage.nrec;
	enum mote_err err = stage(b, PR_MSG);
	if (err != MOTE_OK)
		return err;
	ps->stage_msgs[ps->n_stage_msgs] = msg_ref(m); /* dropped at hand-over */
	ps->stage_idx[ps->n_stage_msgs++] = idx;
	return MOTE_OK;
}

void persist_session(struct broker *b, struct session *s)
{
	if (!active(b))
		return;
	precord_session(&b->ps->enc, s->client_id, s->client_id_len, s->expiry_s, s->version, 0,
			(uint16_t)b->shard_id);
	if (stage(b, PR_SESSION) == MOTE_OK)
		s->persisted = true;
}

void persist_session_end(struct broker *b, struct session *s)
{
	if (!active(b) || !s->persisted || b->shutting_down)
		return;
	precord_client(&b->ps->enc, s->client_id, s->client_id_len);
	stage(b, PR_SESSION_END);
}

void persist_offline(struct broker *b, struct session *s)
{
	if (!active(b) || !s->persisted)
		return;
	s->offline_wall_ms = mote_wall_ms(); /* the snapshot writes it too */
	precord_offline(&b->ps->enc, s->client_id, s->client_id_len, s->offline_wall_ms,
			s->expiry_s);
	stage(b, PR_OFFLINE);
}

void persist_sub(struct broker *b, struct session *s, const uint8_t *group, uint16_t glen,
		 const uint8_t *filter, uint16_t flen, const struct precord *o)
{
	if (!active(b) || !s->persisted)
		return;
	precord_sub(&b->ps->enc, s->client_id, s->client_id_len, group, glen, filter, flen,
		    &o->opts);
	stage(b, PR_SUB);
}

void persist_unsub(struct broker *b, struct session *s, const uint8_t *group, uint16_t glen,
		   const uint8_t *filter, uint16_t flen)
{
	if (!active(b) || !s->persisted)
		return;
	precord_unsub(&b->ps->enc, s->client_id, s->client_id_len, group, glen, filter, flen);
	stage(b, PR_UNSUB);
}

void persist_enq(struct broker *b, struct session *s, const struct msg *m, uint8_t qos,
		 bool retain, const uint32_t *sub_ids, uint8_t n_sub_ids)
{
	if (!active(b) || !s->persisted || qos == 0 || m->plsn == 0)
		return;
	precord_enq(&b->ps->enc, s->client_id, s->client_id_len, m->plsn, qos, retain, sub_ids,
		    n_sub_ids, 0, DLV_QUEUED);
	stage(b, PR_ENQ);
}

static void msgref(struct broker *b, struct session *s, const struct msg *m, uint16_t pid,
		   uint8_t type)
{
	if (!active(b) || !s->persisted || m->plsn == 0)
		return;
	precord_msgref(&b->ps->enc, s->client_id, s->client_id_len, m->plsn, pid);
	stage(b, type);
}

void persist_ack(struct broker *b, struct session *s, const struct msg *m)
{
	msgref(b, s, m, 0, PR_ACK);
}

void persist_sent(struct broker *b, struct session *s, const struct msg *m, uint16_t pid)
{
	msgref(b, s, m, pid, PR_SENT);
}

void persist_rel(struct broker *b, struct session *s, const struct msg *m, uint16_t pid)
{
	msgref(b, s, m, pid, PR_REL);
}

void persist_q2(struct broker *b, struct session *s, uint8_t type, uint16_t pid)
{
	if (!active(b) || !s->persisted)
		return;
	precord_pid(&b->ps->enc, s->client_id, s->client_id_len, pid);
	stage(b, type);
}

void persist_will(struct broker *b, struct session *s)
{
	if (!active(b) || !s->will)
		return;
	persist_encode_will(&b->ps->enc, s, loop_now(b->loop));
	if (stage(b, PR_WILL) == MOTE_OK)
		s->will_persisted = true;
}

void persist_will_end(struct broker *b, struct session *s)
{
	if (!s->will_persisted)
		return;
	s->will_persisted = false;
	if (!active(b) || b->shutting_down)
		return; /* a will pending at shutdown goes out after the restart */
	precord_client(&b->ps->enc, s->client_id, s->client_id_len);
	stage(b, PR_WILL_END);
}

/* ---- generations and the held FIFO --------------------------------------------------- */

/* A ring of n elements of `size` bytes starting at head, copied into a new
 * array of `cap` elements starting at 0. NULL when out of memory. */
static void *ring_grow(const void *ring, uint32_t head, uint32_t n, uint32_t old_cap,
		       uint32_t cap, size_t size)
{
	uint8_t *out = malloc((size_t)cap * size);
	if (!out)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		memcpy(out + i * size, (const uint8_t *)ring + ((head + i) % old_cap) * size, size);
	return out;
}

static bool ends_push(struct persist_shard *ps, uint64_t gen, uint64_t lsn)
{
	if (ps->ends_count == ps->ends_cap) {
		uint32_t cap = ps->ends_cap ? ps->ends_cap * 2 : 16;
		struct gen_end *e = ring_grow(ps->ends, ps->ends_head, ps->ends_count,
					      ps->ends_cap, cap, sizeof *e);
		if (!e)
			return false;
		free(ps->ends);
		ps->ends = e;
		ps->ends_cap = cap;
		ps->ends_head = 0;
	}
	ps->ends[(ps->ends_head + ps->ends_count++) % ps->ends_cap] = (struct gen_end){ gen, lsn };
	return true;
}

/* Hands the stage to the committer: one generation ends. */
static void handoff(struct broker *b)
{
	struct persist_shard *ps = b->ps;
	bool held = ps->ops_count > 0 &&
		    ps->ops[(ps->ops_head + ps->ops_count - 1) % ps->ops_cap].gen == ps->gen;
	if (ps->stage.nrec == 0 && !held)
		return;
	uint64_t first = 0, last = ps->last_lsn;
	if (ps->stage.nrec) {
		enum mote_err err = jcommit_submit(b->shared->jc, &ps->stage, &first);
		if (err != MOTE_OK) {
			/* Kept staged; the held operations wait. Retried by the
			 * next hand-over (a loop round with anything new). */
			if (!ps->failing_logged)
				MOTE_WARN("broker", "event=persist_backlog records=%u why=\"%s\"",
					  ps->stage.nrec, mote_strerror(err));
			ps->failing_logged = true;
			loop_timer_start(b->loop, &ps->retry, HANDOFF_RETRY_MS);
			return;
		}
		ps->failing_logged = false;
		last = first + ps->stage.nrec - 1;
		for (uint32_t i = 0; i < ps->n_stage_msgs; i++) {
			ps->stage_msgs[i]->plsn = first + ps->stage_idx[i];
			msg_unref(ps->stage_msgs[i]);
		}
		ps->n_stage_msgs = 0;
		ps->stage.len = 0;
		ps->stage.nrec = 0;
	}
	ps->last_lsn = last;
	if (!ends_push(ps, ps->gen, last)) {
		/* The generation stays open and ends with the next hand-over,
		 * whose last LSN covers these records too. */
		MOTE_WARN("broker", "event=persist_failed why=\"out of memory\"");
		return;
	}
	ps->gen++;
}

static void retry_cb(struct loop *loop, struct loop_timer *t)
{
	(void)loop;
	struct broker *b = t->data;
	handoff(b);
	persist_poll(b);
}

static void handoff_idle(struct loop *loop, void *data)
{
	(void)loop;
	struct broker *b = data;
	handoff(b);
	persist_poll(b);
}

void persist_hold(struct broker *b, const struct held_op *op)
{
	struct persist_shard *ps = b->ps;
	if (ps->ops_count == ps->ops_cap) {
		uint32_t cap = ps->ops_cap ? ps->ops_cap * 2 : 64;
		struct held_op *o = ring_grow(ps->ops, ps->ops_head, ps->ops_count, ps->ops_cap,
					      cap, sizeof *o);
		if (!o) {
			MOTE_WARN("broker", "event=persist_hold_failed why=\"out of memory\"");
			if (op->m)
				msg_unref(op->m);
			free(op->data);
			if (op->c)
				conn_fail(op->c); /* no ack: the client sends it again */
			return;
		}
		free(ps->ops);
		ps->ops = o;
		ps->ops_cap = cap;
		ps->ops_head = 0;
	}
	struct held_op *slot = &ps->ops[(ps->ops_head + ps->ops_count++) % ps->ops_cap];
	*slot = *op;
	slot->gen = ps->gen;
	if (slot->c)
		slot->c->held_ops++;
	schedule(b);
}

void persist_forget_conn(struct broker *b, struct conn *c)
{
	struct persist_shard *ps = b->ps;
	if (!ps || c->held_ops == 0)
		return;
	for (uint32_t i = 0; i < ps->ops_count; i++) {
		struct held_op *o = &ps->ops[(ps->ops_head + i) % ps->ops_cap];
		if (o->c == c)
			o->c = NULL;
	}
	c->held_ops = 0;
}

static void do_op(struct broker *b, struct held_op *op)
{
	struct conn *c = op->c;
	if (c)
		c->held_ops--;
	switch (op->kind) {
	case HELD_ROUTE: {
		uint32_t n = 1;
		if (op->m) {
			n = route_message(b, op->m, c);
			msg_unref(op->m);
		}
		if (c && op->ack_type)
			conn_send_ack(c, op->ack_type, op->packet_id,
				      n ? MQTT_RC_SUCCESS : MQTT_RC_NO_MATCHING_SUBSCRIBERS);
		break;
	}
	case HELD_ACK:
		if (c)
			conn_send_ack(c, op->ack_type, op->packet_id, op->reason);
		break;
	case HELD_SEND:
		if (c)
			deliver_send_held(c, op->packet_id);
		break;
	case HELD_PACKET:
		if (c)
			subscribe_release_held(c, op->data, op->len, op->split);
		free(op->data);
		break;
	}
}

void persist_poll(struct broker *b)
{
	struct persist_shard *ps = b->ps;
	if (!ps)
		return;
	for (;;) {
		uint64_t safe = jcommit_safe_lsn(b->shared->jc);
		while (ps->ends_count && ps->ends[ps->ends_head].last_lsn <= safe) {
			ps->safe_gen = ps->ends[ps->ends_head].gen;
			ps->ends_head = (ps->ends_head + 1) % ps->ends_cap;
			ps->ends_count--;
		}
		while (ps->ops_count && ps->ops[ps->ops_head].gen <= ps->safe_gen) {
			struct held_op op = ps->ops[ps->ops_head];
			ps->ops_head = (ps->ops_head + 1) % ps->ops_cap;
			ps->ops_count--;
			do_op(b, &op); /* may hold new operations: they go to the back */
		}
		if (!ps->ends_count) {
			atomic_store(&ps->wait_lsn, 0);
			return;
		}
		/* Dekker with persist_notify: publish the wait, then look again. */
		uint64_t want = ps->ends[ps->ends_head].last_lsn;
		atomic_store(&ps->wait_lsn, want);
		if (jcommit_safe_lsn(b->shared->jc) < want)
			return;
	}
}

void persist_notify(void *ctx)
{
	struct broker *b0 = ctx;
	uint64_t safe = jcommit_safe_lsn(b0->shared->jc);
	for (uint32_t i = 0; i < b0->nshards; i++) {
		struct broker *b = b0->shards[i];
		uint64_t w = atomic_load(&b->ps->wait_lsn);
		if (w && w <= safe)
			loop_wake(b->loop);
	}
}

/* ---- lifetime ------------------------------------------------------------------------ */

enum mote_err persist_shard_new(struct broker *b)
{
	struct persist_shard *ps = calloc(1, sizeof *ps);
	if (!ps)
		return MOTE_ENOMEM;
	ps->gen = 1;
	loop_timer_init(&ps->retry, retry_cb, b);
	b->ps = ps;
	return MOTE_OK;
}

void persist_shard_flush(struct broker *b)
{
	if (b->ps && b->shared->jc)
		handoff(b);
}

void persist_shard_free(struct broker *b)
{
	struct persist_shard *ps = b->ps;
	if (!ps)
		return;
	if (b->loop) {
		loop_defer_cancel(b->loop, &ps->idle);
		loop_timer_stop(b->loop, &ps->retry);
	}
	/* Held messages not routed: their records are in the log (or the
	 * stage just handed over), so the next start routes them. */
	while (ps->ops_count) {
		struct held_op *op = &ps->ops[ps->ops_head];
		msg_unref(op->m);
		free(op->data);
		ps->ops_head = (ps->ops_head + 1) % ps->ops_cap;
		ps->ops_count--;
	}
	for (uint32_t i = 0; i < ps->n_stage_msgs; i++)
		msg_unref(ps->stage_msgs[i]);
	free(ps->ops);
	free(ps->ends);
	free(ps->stage_msgs);
	free(ps->stage_idx);
	jrec_buf_free(&ps->stage);
	penc_free(&ps->enc);
	free(ps);
	b->ps = NULL;
}
