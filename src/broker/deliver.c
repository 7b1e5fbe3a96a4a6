/*
 * deliver.c - outbound messages of one session: QoS 0 sends, the QoS 1/2
 * in-flight window (Receive Maximum), the queue behind it, acks from the
 * client, redelivery with DUP after a reconnect, topic aliases towards the
 * client, message expiry and the client's Maximum Packet Size.
 *
 * Ordering: QoS 1/2 messages leave in the order they were given to the
 * session: nothing bypasses a non-empty queue, and redelivery resends the
 * in-flight window in original send order before the queue moves on.
 * QoS 0 messages are not subject to the window and are sent at once; they are
 * not queued for an offline session (as Mosquitto's default).
 *
 * A PUBLISH is encoded as a header in the connection's outq followed by a
 * reference to the payload inside the shared struct msg: no payload copy.
 * Heads come from the broker's pubhead cache, so a fan-out encodes each
 * distinct head once rather than once per subscriber.
 *
 * The window: slots inflight[0..inflight_count) are in use, packed (a
 * released slot is filled with the last one), in no particular order; the
 * pidx maps each packet id in use to its slot, so acks and id allocation
 * cost O(1) whatever the window. Send order lives in delivery.seq, and
 * redelivery sorts by it. Nothing keeps a slot pointer across a release or
 * a slot_room() call: both move slots.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/broker_int.h"

/* ---- the queue --------------------------------------------------------- */

static uint64_t dsize(const struct delivery *d)
{
	return (uint64_t)d->m->topic_len + d->m->payload_len;
}

static bool dqueue_push(struct dqueue *q, const struct delivery *d)
{
	if (q->count == q->cap) {
		uint32_t cap = q->cap ? q->cap * 2 : 8;
		struct delivery *items = malloc(cap * sizeof *items);
		if (!items)
			return false;
		for (uint32_t i = 0; i < q->count; i++)
			items[i] = q->items[(q->head + i) % q->cap];
		free(q->items);
		q->items = items;
		q->cap = cap;
		q->head = 0;
	}
	q->items[(q->head + q->count++) % q->cap] = *d;
	q->bytes += dsize(d);
	return true;
}

static void dqueue_pop(struct dqueue *q, struct delivery *out)
{
	*out = q->items[q->head];
	q->head = (q->head + 1) % q->cap;
	q->count--;
	q->bytes -= dsize(out);
	if (q->count == 0 && q->cap > 64) { /* give memory back after a burst */
		free(q->items);
		q->items = NULL;
		q->cap = q->head = 0;
	}
}

void dqueue_free(struct dqueue *q)
{
	for (uint32_t i = 0; i < q->count; i++)
		msg_unref(q->items[(q->head + i) % q->cap].m);
	free(q->items);
	memset(q, 0, sizeof *q);
}

void session_release_inflight(struct session *s)
{
	for (uint32_t i = 0; i < s->inflight_count; i++) {
		msg_unref(s->inflight[i].m);
		s->inflight[i].m = NULL;
	}
	s->inflight_count = 0;
	pidx_free(&s->ids);
}

/* ---- encoding one PUBLISH ---------------------------------------------- */

enum send_result { SENT, DROPPED, FAILED };

/* Finds or assigns an outbound alias for the topic; 0 = none. *is_new when
 * the topic must be sent with it this time. Does not commit a new one. */
static uint16_t pick_alias(struct conn *c, const struct msg *m, bool *is_new)
{
	*is_new = false;
	uint16_t max = c->client_alias_max < MAX_OUT_ALIASES ? c->client_alias_max
							     : MAX_OUT_ALIASES;
	if (max == 0)
		return 0;
	for (uint16_t i = 0; i < c->alias_out_used; i++) {
		struct out_alias *a = &c->alias_out[i];
		if (a->len == m->topic_len && memcmp(a->topic, msg_topic(m), a->len) == 0)
			return (uint16_t)(i + 1);
	}
	if (c->alias_out_used >= max)
		return 0;
	*is_new = true;
	return (uint16_t)(c->alias_out_used + 1);
}

static bool commit_alias(struct conn *c, const struct msg *m)
{
	if (!c->alias_out) {
		c->alias_out = calloc(MAX_OUT_ALIASES, sizeof *c->alias_out);
		if (!c->alias_out)
			return false;
	}
	uint8_t *t = malloc(m->topic_len);
	if (!t)
		return false;
	memcpy(t, msg_topic(m), m->topic_len);
	c->alias_out[c->alias_out_used++] = (struct out_alias){ t, m->topic_len };
	return true;
}

static enum send_result send_publish(struct conn *c, const struct delivery *d, bool dup)
{
	struct broker *b = c->b;
	const struct msg *m = d->m;
	uint64_t now = loop_now(b->loop);
	if (msg_expired(m, now))
		return DROPPED;

	struct mqtt_publish pub = {
		.qos = d->qos,
		.dup = dup,
		.retain = d->retain,
		.topic = { msg_topic(m), m->topic_len },
		.packet_id = d->qos ? d->packet_id : 0,
		.payload = { NULL, m->payload_len },
	};
	bool new_alias = false;
	uint16_t alias = 0;
	if (c->version == MQTT_V5) {
		struct mqtt_props *pr = &pub.props;
		if (m->expiry_ms) {
			/* [MQTT-3.3.2-6] the interval left, rounded up */
			pr->message_expiry = (uint32_t)((m->expiry_ms - now + 999) / 1000);
			MQTT_SET(pr, MQTT_PROP_MESSAGE_EXPIRY);
		}
		alias = pick_alias(c, m, &new_alias);
		if (alias) {
			pr->topic_alias = alias;
			MQTT_SET(pr, MQTT_PROP_TOPIC_ALIAS);
			if (!new_alias)
				pub.topic = (struct mqtt_str){ NULL, 0 };
		}
		pr->sub_ids = d->sub_ids;
		pr->sub_id_count = d->n_sub_ids;
		pr->raw_extra = (struct mqtt_bin){ msg_props(m), m->props_len };
	}

	/* Header bound: fixed header, topic, id, property block with its length. */
	size_t bound = MQTT_MAX_FIXED_HEADER + 2 + pub.topic.len + 2 + 4 + m->props_len + 5 +
		       3 + 5 + (size_t)d->n_sub_ids * 5 + 4;
	uint8_t *dst = outq_reserve(&c->out, &c->b->outbufs, bound);
	if (!dst)
		return FAILED;
	size_t head;
	if (pubhead_encode(&b->heads, &pub, c->version, dst, bound, &head) != MOTE_OK)
		return FAILED;
	if (c->client_max_packet && head + m->payload_len > c->client_max_packet) {
		/* [MQTT-3.1.2-25] never send more than the client accepts */
		STAT_ADD(b, msgs_dropped, 1);
		return DROPPED;
	}
	if (new_alias && !commit_alias(c, m))
		return FAILED;
	if (outq_commit(&c->out, &c->b->outbufs, head) != MOTE_OK ||
	    outq_push_payload(&c->out, &c->b->outbufs, (struct msg *)m, 0, m->payload_len) != MOTE_OK)
		return FAILED;
	STAT_ADD(b, msgs_sent, 1);
	conn_schedule_flush(c);
	return SENT;
}

/* ---- the in-flight window ---------------------------------------------- */

/* Ends d's flow: its id is free again and the last slot fills its place. */
static void release(struct session *s, struct delivery *d)
{
	uint32_t i = (uint32_t)(d - s->inflight);
	uint32_t last = s->inflight_count - 1;
	persist_ack(s->b, s, d->m);
	msg_unref(d->m);
	pidx_remove(&s->ids, d->packet_id);
	if (i != last) {
		*d = s->inflight[last];
		pidx_move(&s->ids, d->packet_id, i);
	}
	s->inflight[last].m = NULL;
	s->inflight_count = last;
	/* Give memory back after a burst. Only large windows: regrowing costs
	 * about 20 reallocs, small next to the 1024+ deliveries that grew it,
	 * while freeing small ones would churn on every idle moment. */
	if (last == 0 && s->inflight_cap > 1024) {
		free(s->inflight);
		s->inflight = NULL;
		s->inflight_cap = 0;
		pidx_free(&s->ids);
	}
}

static bool window_open(const struct session *s)
{
	const struct conn *c = s->conn;
	return c && c->state == CONN_ACTIVE && !c->failing && s->inflight_count < c->window;
}

/*
 * Makes sure one more message can go in flight: a free slot (growing the
 * array by doubling, from 4, up to the window) and room in the id index.
 */
static bool slot_room(struct session *s)
{
	if (s->inflight_count == s->inflight_cap) {
		uint32_t cap = s->inflight_cap ? s->inflight_cap * 2 : 4;
		uint32_t window = s->conn ? s->conn->window : cap;
		if (cap > window)
			cap = window > s->inflight_cap ? window : s->inflight_cap + 1;
		struct delivery *arr = realloc(s->inflight, cap * sizeof *arr);
		if (!arr)
			return false;
		s->inflight = arr;
		s->inflight_cap = cap;
	}
	return pidx_reserve(&s->ids, s->inflight_count + 1) == MOTE_OK;
}

/* Puts d (its reference moves in) into the next free slot and sends it. The
 * caller made room with slot_room(). */
static void start_inflight(struct session *s, const struct delivery *d)
{
	struct delivery *slot = &s->inflight[s->inflight_count];
	*slot = *d;
	slot->packet_id = pidx_add(&s->ids, &s->next_packet_id, s->inflight_count);
	slot->state = DLV_PUBLISH_SENT;
	slot->seq = ++s->send_seq;
	s->inflight_count++;
	if (slot->qos == 2 && s->persisted && s->b->ps && slot->m->plsn) {
		/* The id must be safe before the PUBLISH leaves: after a crash the
		 * resend has to carry the same id, or the client takes it twice. */
		slot->state = DLV_SEND_HELD;
		persist_sent(s->b, s, slot->m, slot->packet_id);
		struct held_op op = { .kind = HELD_SEND, .c = s->conn,
				      .packet_id = slot->packet_id };
		persist_hold(s->b, &op);
		return;
	}
	enum send_result r = send_publish(s->conn, slot, false);
	if (r == DROPPED) {
		release(s, slot); /* as if completed [MQTT-3.1.2-25] */
	} else if (r == FAILED) {
		conn_fail(s->conn); /* stays in flight: resent after reconnect */
	}
}

void deliver_pump(struct session *s)
{
	while (s->queue.count > 0 && window_open(s)) {
		if (!slot_room(s)) {
			conn_fail(s->conn); /* the queue keeps the messages */
			return;
		}
		struct delivery d;
		dqueue_pop(&s->queue, &d);
		if (msg_expired(d.m, loop_now(s->b->loop))) {
			persist_ack(s->b, s, d.m);
			msg_unref(d.m);
			STAT_ADD(s->b, msgs_dropped, 1);
			continue;
		}
		start_inflight(s, &d);
	}
}

static void queue_bounded(struct session *s, struct delivery *d);

void deliver(struct session *s, struct msg *m, uint8_t qos, bool retain, const uint32_t *sub_ids,
	     uint8_t n_sub_ids)
{
	struct broker *b = s->b;
	struct delivery d = { .m = m, .qos = qos, .retain = retain, .n_sub_ids = n_sub_ids };
	memcpy(d.sub_ids, sub_ids, (size_t)n_sub_ids * sizeof *sub_ids);

	struct conn *c = s->conn;
	bool online = c && c->state == CONN_ACTIVE && !c->failing;
	if (qos == 0) {
		if (!online)
			return; /* QoS 0 is not kept for offline sessions */
		if (c->out.pending > b->cfg.max_client_outbuf) {
			STAT_ADD(b, msgs_dropped, 1); /* slow consumer: shed QoS 0 */
			return;
		}
		if (send_publish(c, &d, false) == FAILED)
			conn_fail(c);
		return;
	}
	msg_ref(m);
	if (s->queue.count == 0 && window_open(s) && slot_room(s)) {
		start_inflight(s, &d);
		return;
	}
	queue_bounded(s, &d);
}

/* Logs a bound that acted: the first time for the session, then every 1000th. */
static void note_queue_drop(struct session *s, const char *policy)
{
	struct broker *b = s->b;
	STAT_ADD(b, msgs_dropped, 1);
	STAT_ADD(b, queue_dropped, 1);
	if (s->queue_drops++ % 1000 != 0)
		return;
	char idq[96];
	MOTE_WARN("broker",
		  "event=queue_full client=%s policy=%s queued=%u bytes=%llu dropped_total=%llu",
		  mote_log_quote(idq, sizeof idq, s->client_id, s->client_id_len), policy,
		  s->queue.count, (unsigned long long)s->queue.bytes,
		  (unsigned long long)s->queue_drops);
}

/* Queues d (its reference moves in) within the session's bounds. */
static void queue_bounded(struct session *s, struct delivery *d)
{
	struct broker *b = s->b;
	const struct broker_config *cfg = &b->cfg;
	uint64_t size = dsize(d);
	if (b->replaying) { /* the log holds the drops that happened (PR_ACK) */
		if (!dqueue_push(&s->queue, d)) {
			msg_unref(d->m);
			STAT_ADD(b, msgs_dropped, 1);
		}
		return;
	}
	bool drop_oldest = cfg->queue_full == BROKER_QUEUE_DROP_OLDEST;
	uint32_t dropped_old = 0;
	while (s->queue.count > 0 && (s->queue.count >= cfg->max_queued ||
				       s->queue.bytes + size > cfg->max_queued_bytes)) {
		if (!drop_oldest)
			break;
		struct delivery old;
		dqueue_pop(&s->queue, &old);
		persist_ack(b, s, old.m);
		msg_unref(old.m);
		dropped_old++;
	}
	bool over = s->queue.count >= cfg->max_queued ||
		    s->queue.bytes + size > cfg->max_queued_bytes;
	if (over || !dqueue_push(&s->queue, d)) {
		persist_ack(b, s, d->m); /* replay would queue it again */
		msg_unref(d->m);
		if (over)
			note_queue_drop(s, drop_oldest ? "drop-oldest" : "refuse-newest");
		else
			STAT_ADD(b, msgs_dropped, 1);
	}
	/* Logged once the new one is in, so queued= is what the session holds. */
	while (dropped_old--)
		note_queue_drop(s, "drop-oldest");
}

/* ---- acks from the client ----------------------------------------------- */

static struct delivery *find_inflight(struct session *s, uint16_t id, uint8_t state)
{
	uint32_t slot;
	if (!pidx_find(&s->ids, id, &slot) || s->inflight[slot].state != state)
		return NULL;
	return &s->inflight[slot];
}

void handle_puback(struct conn *c, const struct mqtt_ack *a)
{
	struct session *s = c->session;
	struct delivery *d = find_inflight(s, a->packet_id, DLV_PUBLISH_SENT);
	if (!d || d->qos != 1)
		return; /* unknown ids are ignored: the client may repeat an ack */
	release(s, d);
	deliver_pump(s);
}

void handle_pubrec(struct conn *c, const struct mqtt_ack *a)
{
	struct session *s = c->session;
	struct delivery *d = find_inflight(s, a->packet_id, DLV_PUBLISH_SENT);
	if (!d || d->qos != 2) {
		if (!find_inflight(s, a->packet_id, DLV_PUBREL_SENT))
			conn_send_ack(c, MQTT_PUBREL, a->packet_id,
				 c->version == MQTT_V5 ? MQTT_RC_PACKET_ID_NOT_FOUND : 0);
		else
			conn_send_ack(c, MQTT_PUBREL, a->packet_id, 0);
		return;
	}
	if (a->reason >= 0x80) { /* the client refused it: the flow ends here */
		release(s, d);
		deliver_pump(s);
		return;
	}
	d->state = DLV_PUBREL_SENT;
	if (s->persisted && c->b->ps && d->m->plsn) {
		/* After PUBREL the client forgets the id: a crash must not make us
		 * send the PUBLISH again, so the PUBREL waits for its record. */
		persist_rel(c->b, s, d->m, a->packet_id);
		struct held_op op = { .kind = HELD_ACK, .c = c, .ack_type = MQTT_PUBREL,
				      .packet_id = a->packet_id };
		persist_hold(c->b, &op);
		return;
	}
	conn_send_ack(c, MQTT_PUBREL, a->packet_id, 0);
}

void handle_pubcomp(struct conn *c, const struct mqtt_ack *a)
{
	struct session *s = c->session;
	struct delivery *d = find_inflight(s, a->packet_id, DLV_PUBREL_SENT);
	if (!d)
		return;
	release(s, d);
	deliver_pump(s);
}

/* ---- reconnect ---------------------------------------------------------- */

struct resend {
	uint64_t seq;
	uint16_t id;
};

static int by_seq(const void *a, const void *b)
{
	const struct resend *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void deliver_resume(struct session *s)
{
	struct conn *c = s->conn;
	if (s->inflight_count > 0) {
		/* By id, not slot: a release (dropped on resend) moves slots. */
		uint32_t n = s->inflight_count;
		struct resend *order = malloc(n * sizeof *order);
		if (!order) {
			conn_fail(c);
			return;
		}
		for (uint32_t i = 0; i < n; i++)
			order[i] = (struct resend){ s->inflight[i].seq, s->inflight[i].packet_id };
		qsort(order, n, sizeof *order, by_seq);
		/* [MQTT-4.4.0-1] resend unacknowledged PUBLISH (DUP) and PUBREL */
		for (uint32_t i = 0; i < n && c->state == CONN_ACTIVE; i++) {
			uint32_t slot;
			if (!pidx_find(&s->ids, order[i].id, &slot))
				continue;
			struct delivery *d = &s->inflight[slot];
			if (d->state == DLV_PUBREL_SENT) {
				conn_send_ack(c, MQTT_PUBREL, d->packet_id, 0);
				continue;
			}
			/* A held one never left: it goes now, not as a duplicate. */
			bool dup = d->state != DLV_SEND_HELD;
			d->state = DLV_PUBLISH_SENT;
			enum send_result r = send_publish(c, d, dup);
			if (r == DROPPED)
				release(s, d);
			else if (r == FAILED)
				conn_fail(c);
		}
		free(order);
	}
	deliver_pump(s);
}

void deliver_send_held(struct conn *c, uint16_t packet_id)
{
	struct session *s = c->session;
	uint32_t slot;
	if (!s || c->state != CONN_ACTIVE || !pidx_find(&s->ids, packet_id, &slot) ||
	    s->inflight[slot].state != DLV_SEND_HELD)
		return; /* the connection changed: deliver_resume sends it */
	struct delivery *d = &s->inflight[slot];
	d->state = DLV_PUBLISH_SENT;
	enum send_result r = send_publish(c, d, false);
	if (r == DROPPED)
		release(s, d);
	else if (r == FAILED)
		conn_fail(c);
}

/* ---- replay (replay.c): rebuilding a session's deliveries ------------------------ */

void deliver_restore(struct session *s, struct msg *m, uint8_t qos, bool retain,
		     const uint32_t *sub_ids, uint8_t n_sub_ids, uint16_t packet_id, uint8_t state)
{
	struct delivery d = { .m = msg_ref(m), .qos = qos, .retain = retain,
			      .n_sub_ids = n_sub_ids, .packet_id = packet_id, .state = state };
	memcpy(d.sub_ids, sub_ids, (size_t)n_sub_ids * sizeof *sub_ids);
	if (!dqueue_push(&s->queue, &d)) {
		msg_unref(m);
		STAT_ADD(s->b, msgs_dropped, 1);
	}
}

/* The queued delivery of the message with journal LSN plsn, or NULL. */
static struct delivery *queued_by_lsn(struct session *s, uint64_t plsn, uint32_t *pos)
{
	struct dqueue *q = &s->queue;
	for (uint32_t i = 0; i < q->count; i++) {
		struct delivery *d = &q->items[(q->head + i) % q->cap];
		if (d->m->plsn == plsn) {
			*pos = i;
			return d;
		}
	}
	return NULL;
}

void deliver_forget(struct session *s, uint64_t plsn)
{
	struct dqueue *q = &s->queue;
	uint32_t pos;
	struct delivery *d = queued_by_lsn(s, plsn, &pos);
	if (!d)
		return; /* routed before its subscription in another order: nothing to do */
	q->bytes -= dsize(d);
	msg_unref(d->m);
	/* Close the gap; acks come mostly from the front, so this is short. */
	for (uint32_t i = pos; i > 0; i--)
		q->items[(q->head + i) % q->cap] = q->items[(q->head + i - 1) % q->cap];
	q->head = (q->head + 1) % q->cap;
	q->count--;
}

void deliver_mark(struct session *s, uint64_t plsn, uint16_t packet_id, uint8_t state)
{
	uint32_t pos;
	struct delivery *d = queued_by_lsn(s, plsn, &pos);
	if (d) {
		d->packet_id = packet_id;
		d->state = state;
	}
}

void deliver_restore_finish(struct session *s)
{
	/* Deliveries that had an id go back into the window with it, in order,
	 * so the reconnecting client gets them with DUP (or their PUBREL). */
	struct dqueue *q = &s->queue;
	struct dqueue rest = { 0 };
	uint32_t n = q->count;
	for (uint32_t i = 0; i < n; i++) {
		struct delivery d;
		dqueue_pop(q, &d);
		if (d.packet_id && d.state != DLV_QUEUED && s->inflight_count < PIDX_MAX_LIVE) {
			if (s->inflight_count == s->inflight_cap) {
				uint32_t cap = s->inflight_cap ? s->inflight_cap * 2 : 4;
				struct delivery *arr = realloc(s->inflight, cap * sizeof *arr);
				if (!arr)
					goto requeue;
				s->inflight = arr;
				s->inflight_cap = cap;
			}
			if (pidx_add_id(&s->ids, d.packet_id, s->inflight_count) != MOTE_OK)
				goto requeue;
			d.seq = ++s->send_seq;
			if (d.state == DLV_SEND_HELD)
				d.state = DLV_PUBLISH_SENT;
			s->inflight[s->inflight_count++] = d;
			continue;
		}
requeue:
		d.packet_id = 0;
		d.state = DLV_QUEUED;
		if (!dqueue_push(&rest, &d)) {
			msg_unref(d.m);
			STAT_ADD(s->b, msgs_dropped, 1);
		}
	}
	dqueue_free(q);
	*q = rest;
}
