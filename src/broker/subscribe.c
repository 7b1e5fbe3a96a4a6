/*
 * subscribe.c - SUBSCRIBE and UNSUBSCRIBE: per-filter validation and
 * authorization, the subscription tree, the session's own list of its
 * subscriptions (so ending a session removes exactly its entries), and
 * retained messages sent on subscribe per Retain Handling.
 *
 * Each filter of a SUBSCRIBE gets its own reason code [MQTT-3.8.4-6]; one bad
 * filter does not fail the others. The SUBACK goes out before any retained
 * message, so clients see their grant first.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/broker_int.h"

static struct session_sub **find_sub(struct session *s, const struct mqtt_str *group,
				     const struct mqtt_str *filter)
{
	struct session_sub **pp = &s->subs;
	for (; *pp; pp = &(*pp)->next) {
		struct session_sub *e = *pp;
		if (e->group_len == group->len && e->filter_len == filter->len &&
		    (group->len == 0 || memcmp(e->text, group->p, group->len) == 0) &&
		    memcmp(e->text + group->len, filter->p, filter->len) == 0)
			return pp;
	}
	return pp;
}

static bool remember_sub(struct session *s, const struct mqtt_str *group,
			 const struct mqtt_str *filter, const struct sub_opts *o)
{
	struct session_sub **pp = find_sub(s, group, filter);
	if (*pp) {
		(*pp)->opts = *o;
		return true;
	}
	struct session_sub *e = malloc(sizeof *e + group->len + filter->len);
	if (!e)
		return false;
	e->next = NULL;
	e->opts = *o;
	e->group_len = group->len;
	e->filter_len = filter->len;
	if (group->len)
		memcpy(e->text, group->p, group->len);
	memcpy(e->text + group->len, filter->p, filter->len);
	*pp = e;
	return true;
}

/* Subscriptions of persistent sessions, counted over all shards: while
 * there are none, QoS 1/2 messages need not be written (persist.c). */
static void count_persistent(struct session *s, int delta)
{
	if (!s->persisted)
		return;
	if (delta > 0)
		atomic_fetch_add_explicit(&s->b->shared->persist_subs, 1, memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&s->b->shared->persist_subs, 1, memory_order_relaxed);
}

void session_drop_subs(struct session *s)
{
	struct broker *b = s->b;
	while (s->subs) {
		struct session_sub *e = s->subs;
		s->subs = e->next;
		count_persistent(s, -1);
		if (e->group_len && shard_of_group(b, e->text, e->group_len, e->text + e->group_len,
						   e->filter_len) != b->shard_id) {
			share_remote_unsub(s, e->text, e->group_len, e->text + e->group_len,
					   e->filter_len);
			STAT_SUB(b, subscriptions, 1);
		} else if (subtree_remove(b->subs, e->group_len ? e->text : NULL, e->group_len,
					  e->text + e->group_len, e->filter_len, s) == MOTE_OK) {
			STAT_SUB(b, subscriptions, 1);
		}
		free(e);
	}
	shard_note_interest(b);
}

enum mote_err session_subscribe(struct session *s, const struct mqtt_str *group,
				const struct mqtt_str *filter, const struct sub_opts *o, bool *existed)
{
	struct broker *b = s->b;
	*existed = false;
	if (group->len && shard_of_group(b, group->p, group->len, filter->p, filter->len) !=
				  b->shard_id) {
		/* The group's owner shard keeps the members (shard.c). */
		*existed = *find_sub(s, group, filter) != NULL;
		if (!remember_sub(s, group, filter, o))
			return MOTE_ENOMEM;
		share_remote_sub(s, group, filter, o);
	} else if (!remember_sub(s, group, filter, o) ||
		   subtree_add(b->subs, group->p, group->len, filter->p, filter->len, s, o,
			       existed) != MOTE_OK) {
		return MOTE_ENOMEM;
	}
	if (!*existed) {
		STAT_ADD(b, subscriptions, 1);
		count_persistent(s, +1);
	}
	struct precord r = { .opts = { o->qos, o->no_local, o->retain_as_published,
				       o->retain_handling, o->sub_id } };
	persist_sub(b, s, group->p, group->len, filter->p, filter->len, &r);
	return MOTE_OK;
}

bool session_unsubscribe(struct session *s, const struct mqtt_str *group,
			 const struct mqtt_str *filter)
{
	struct broker *b = s->b;
	struct session_sub **pp = find_sub(s, group, filter);
	bool had = *pp != NULL;
	if (*pp) {
		struct session_sub *gone = *pp;
		*pp = gone->next;
		free(gone);
	}
	bool removed = false;
	if (group->len && shard_of_group(b, group->p, group->len, filter->p, filter->len) !=
				  b->shard_id) {
		if (had) {
			share_remote_unsub(s, group->p, group->len, filter->p, filter->len);
			removed = true;
		}
	} else {
		removed = subtree_remove(b->subs, group->p, group->len, filter->p, filter->len,
					 s) == MOTE_OK;
	}
	if (had)
		count_persistent(s, -1);
	if (removed) {
		STAT_SUB(b, subscriptions, 1);
		persist_unsub(b, s, group->p, group->len, filter->p, filter->len);
	}
	return removed;
}

/* Retained messages for one new subscription. */
struct retained_ctx {
	struct session *s;
	uint8_t qos;
	uint32_t sub_id;
};

static void send_retained(void *ctx, struct msg *m)
{
	struct retained_ctx *r = ctx;
	uint8_t qos = m->qos < r->qos ? m->qos : r->qos;
	/* Not implied by a routed PR_MSG: the delivery needs its own record. */
	persist_enq(r->s->b, r->s, m, qos, true, &r->sub_id, r->sub_id ? 1 : 0);
	/* [MQTT-3.3.1-9] retained messages sent on subscribe carry RETAIN 1 */
	deliver(r->s, m, qos, true, &r->sub_id, r->sub_id ? 1 : 0);
}

/*
 * Whether a SUBACK / UNSUBACK waits for its records: for a persistent
 * session, unless the disk is failing (then subscribing keeps working, in
 * memory, as reads do), and always behind acks already held.
 */
static bool hold_grant(const struct conn *c)
{
	const struct broker *b = c->b;
	return b->ps && ((c->session->persisted && !persist_failing(b)) || c->held_ops > 0);
}

/*
 * A persistent session's SUBACK (UNSUBACK) waits until its PR_SUB (PR_UNSUB)
 * records are safe, and the retained messages a SUBACK's grant brings wait
 * with it (they must come after it). The held operation owns one buffer:
 * the encoded ack, then for each filter of p (NULL for an UNSUBACK) that
 * wants retained messages: qos u8, sub id u32, length u16, filter bytes.
 */
static void hold_ack(struct conn *c, const struct mqtt_packet *ack,
		     const struct mqtt_subscribe *p, const uint8_t *want_retained, uint32_t n,
		     uint32_t sub_id)
{
	size_t size, used, extra = 0;
	struct mqtt_topic_iter it;
	struct mqtt_sub_entry e;
	if (mqtt_encoded_size(ack, c->version, &size) != MOTE_OK) {
		conn_fail(c);
		return;
	}
	if (p) {
		mqtt_subscribe_iter(&it, p);
		for (uint32_t k = 0; k < n && mqtt_topics_next(&it, &e); k++)
			if (want_retained[k])
				extra += 7u + e.filter.len;
	}
	uint8_t *buf = malloc(size + extra);
	if (!buf || mqtt_encode(ack, c->version, buf, size, &used) != MOTE_OK) {
		free(buf);
		conn_fail(c); /* no ack: the client asks again */
		return;
	}
	uint8_t *q = buf + used;
	if (p)
		mqtt_subscribe_iter(&it, p);
	for (uint32_t k = 0; p && k < n && mqtt_topics_next(&it, &e); k++) {
		if (!want_retained[k])
			continue;
		*q++ = e.opts.qos;
		memcpy(q, &sub_id, 4);
		q += 4;
		memcpy(q, &e.filter.len, 2);
		q += 2;
		memcpy(q, e.filter.p, e.filter.len);
		q += e.filter.len;
	}
	struct held_op op = { .kind = HELD_PACKET, .c = c, .data = buf,
			      .len = (uint32_t)(q - buf), .split = (uint32_t)used };
	persist_hold(c->b, &op);
}

void subscribe_release_held(struct conn *c, const uint8_t *data, uint32_t len, uint32_t split)
{
	if (c->state != CONN_ACTIVE || conn_send_bytes(c, data, split) != MOTE_OK)
		return;
	struct broker *b = c->b;
	const uint8_t *q = data + split, *end = data + len;
	while (q + 7 <= end) {
		uint8_t qos = q[0];
		uint32_t sub_id;
		uint16_t flen;
		memcpy(&sub_id, q + 1, 4);
		memcpy(&flen, q + 5, 2);
		q += 7;
		if ((size_t)(end - q) < flen)
			break;
		struct retained_ctx r = { c->session, qos, sub_id };
		retain_match(b->retained, q, flen, loop_now(b->loop), send_retained, &r);
		q += flen;
	}
}

void handle_subscribe(struct conn *c, const struct mqtt_subscribe *p)
{
	struct broker *b = c->b;
	struct session *s = c->session;
	bool v5 = c->version == MQTT_V5;
	uint8_t *reasons = malloc(p->count);
	uint8_t *want_retained = calloc(p->count, 1);
	if (!reasons || !want_retained) {
		conn_fail(c);
		goto out;
	}
	uint32_t sub_id = MQTT_HAS(&p->props, MQTT_PROP_SUBSCRIPTION_ID) ? p->props.sub_id : 0;

	struct mqtt_topic_iter it;
	struct mqtt_sub_entry e;
	uint32_t i = 0;
	mqtt_subscribe_iter(&it, p);
	for (; i < p->count && mqtt_topics_next(&it, &e); i++) {
		struct mqtt_str group = { NULL, 0 }, filter = e.filter;
		uint8_t fail = v5 ? MQTT_RC_TOPIC_FILTER_INVALID : MQTT311_SUBACK_FAILURE;
		reasons[i] = fail;
		if (!mqtt_topic_filter_valid(e.filter.p, e.filter.len))
			continue;
		bool shared = mqtt_shared_split(e.filter.p, e.filter.len, &group, &filter);
		if (shared && e.opts.no_local) {
			/* [MQTT-3.8.3-4] */
			conn_log_fault(c, "protocol_error", "no local on a shared subscription");
			conn_close(c, MQTT_RC_PROTOCOL_ERROR, "no local on a shared subscription");
			goto out;
		}
		if (!broker_authorize(b, c, BROKER_ACCESS_SUBSCRIBE, e.filter.p, e.filter.len)) {
			reasons[i] = v5 ? MQTT_RC_NOT_AUTHORIZED : MQTT311_SUBACK_FAILURE;
			continue;
		}
		struct sub_opts o = { .qos = e.opts.qos,
				      .no_local = e.opts.no_local,
				      .retain_as_published = e.opts.retain_as_published,
				      .retain_handling = e.opts.retain_handling,
				      .sub_id = sub_id };
		bool existed = false;
		if (session_subscribe(s, &group, &filter, &o, &existed) != MOTE_OK) {
			reasons[i] = v5 ? MQTT_RC_UNSPECIFIED : MQTT311_SUBACK_FAILURE;
			continue;
		}
		reasons[i] = e.opts.qos;
		/* Shared subscriptions get no retained messages [MQTT-3.8.4-?]. */
		want_retained[i] = !shared && (o.retain_handling == 0 ||
					       (o.retain_handling == 1 && !existed));
	}

	shard_note_interest(b);
	/* Only now, with the shard's interest published to the other shards,
	 * would a message routed from elsewhere reach the new subscriptions. */
	if (b->hooks.subscribed) {
		struct broker_client info;
		conn_fill_client(c, &info);
		mqtt_subscribe_iter(&it, p);
		for (uint32_t k = 0; k < i && mqtt_topics_next(&it, &e); k++)
			if (reasons[k] <= 2)
				b->hooks.subscribed(b->hooks.ctx, &info, e.filter.p, e.filter.len);
	}
	struct mqtt_packet ack = { .type = MQTT_SUBACK };
	ack.u.suback.packet_id = p->packet_id;
	ack.u.suback.count = i;
	ack.u.suback.reasons = reasons;
	if (hold_grant(c)) {
		hold_ack(c, &ack, p, want_retained, i, sub_id);
		goto out;
	}
	if (conn_send_packet(c, &ack) != MOTE_OK)
		goto out;

	mqtt_subscribe_iter(&it, p);
	for (uint32_t k = 0; k < i && mqtt_topics_next(&it, &e); k++) {
		if (!want_retained[k])
			continue;
		struct retained_ctx r = { s, e.opts.qos, sub_id };
		retain_match(b->retained, e.filter.p, e.filter.len, loop_now(b->loop),
			     send_retained, &r);
	}
out:
	free(reasons);
	free(want_retained);
}

void handle_unsubscribe(struct conn *c, const struct mqtt_unsubscribe *p)
{
	struct broker *b = c->b;
	struct session *s = c->session;
	uint8_t *reasons = malloc(p->count);
	if (!reasons) {
		conn_fail(c);
		return;
	}
	struct mqtt_topic_iter it;
	struct mqtt_sub_entry e;
	uint32_t i = 0;
	mqtt_unsubscribe_iter(&it, p);
	for (; i < p->count && mqtt_topics_next(&it, &e); i++) {
		struct mqtt_str group = { NULL, 0 }, filter = e.filter;
		reasons[i] = MQTT_RC_NO_SUBSCRIPTION_EXISTED;
		if (!mqtt_topic_filter_valid(e.filter.p, e.filter.len)) {
			reasons[i] = MQTT_RC_TOPIC_FILTER_INVALID;
			continue;
		}
		mqtt_shared_split(e.filter.p, e.filter.len, &group, &filter);
		if (session_unsubscribe(s, &group, &filter))
			reasons[i] = MQTT_RC_SUCCESS;
	}
	shard_note_interest(b);
	struct mqtt_packet ack = { .type = MQTT_UNSUBACK };
	ack.u.suback.packet_id = p->packet_id;
	ack.u.suback.count = c->version == MQTT_V5 ? i : 0;
	ack.u.suback.reasons = reasons;
	if (hold_grant(c))
		hold_ack(c, &ack, NULL, NULL, 0, 0);
	else
		conn_send_packet(c, &ack);
	free(reasons);
}
