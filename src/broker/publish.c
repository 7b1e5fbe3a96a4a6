/*
 * publish.c - inbound PUBLISH and PUBREL: topic aliases from the client,
 * payload format check, authorization, the persistence hook, routing and the
 * acknowledgement (PUBACK, or PUBREC ... PUBREL ... PUBCOMP).
 *
 * QoS 2 uses method A of the spec (4.3.3): the message is routed when the
 * PUBLISH arrives and its packet id is remembered until PUBREL, so a resent
 * PUBLISH with the same id is acknowledged again but not routed twice. The
 * remembered ids live in the session, so this holds across reconnects.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/broker_int.h"

/* ---- remembered inbound QoS 2 ids (sorted array) ------------------------ */

static bool qos2_find(const struct session *s, uint16_t id, uint32_t *pos)
{
	uint32_t lo = 0, hi = s->qos2_in_count;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (s->qos2_in[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return lo < s->qos2_in_count && s->qos2_in[lo] == id;
}

static bool qos2_add(struct session *s, uint16_t id, uint32_t pos)
{
	if (s->qos2_in_count == s->qos2_in_cap) {
		uint32_t cap = s->qos2_in_cap ? s->qos2_in_cap * 2 : 8;
		uint16_t *a = realloc(s->qos2_in, cap * sizeof *a);
		if (!a)
			return false;
		s->qos2_in = a;
		s->qos2_in_cap = cap;
	}
	memmove(s->qos2_in + pos + 1, s->qos2_in + pos,
		(s->qos2_in_count - pos) * sizeof *s->qos2_in);
	s->qos2_in[pos] = id;
	s->qos2_in_count++;
	return true;
}

enum mote_err session_qos2_hold(struct session *s, uint16_t id)
{
	uint32_t pos;
	if (qos2_find(s, id, &pos))
		return MOTE_OK;
	return qos2_add(s, id, pos) ? MOTE_OK : MOTE_ENOMEM;
}

bool session_qos2_release(struct session *s, uint16_t id)
{
	uint32_t pos;
	if (!qos2_find(s, id, &pos))
		return false;
	memmove(s->qos2_in + pos, s->qos2_in + pos + 1,
		(s->qos2_in_count - pos - 1) * sizeof *s->qos2_in);
	s->qos2_in_count--;
	return true;
}

static void fault(struct conn *c, uint8_t reason, const char *why)
{
	conn_log_fault(c, "protocol_error", why);
	conn_close(c, reason, why);
}

/* Resolves the topic through the inbound alias table [MQTT-3.3.2-7..12]. */
static bool resolve_alias(struct conn *c, struct mqtt_publish *p)
{
	struct broker *b = c->b;
	if (!MQTT_HAS(&p->props, MQTT_PROP_TOPIC_ALIAS))
		return true;
	uint16_t alias = p->props.topic_alias;
	if (alias == 0 || alias > b->cfg.topic_alias_max) {
		fault(c, MQTT_RC_TOPIC_ALIAS_INVALID, "topic alias out of range");
		return false;
	}
	if (!c->alias_in) {
		c->alias_in = calloc((size_t)b->cfg.topic_alias_max + 1, sizeof *c->alias_in);
		if (!c->alias_in) {
			conn_fail(c);
			return false;
		}
	}
	struct out_alias *slot = &c->alias_in[alias];
	if (p->topic.len > 0) {
		uint8_t *t = malloc(p->topic.len);
		if (!t) {
			conn_fail(c);
			return false;
		}
		memcpy(t, p->topic.p, p->topic.len);
		free(slot->topic);
		slot->topic = t;
		slot->len = p->topic.len;
		return true;
	}
	if (!slot->topic) {
		fault(c, MQTT_RC_PROTOCOL_ERROR, "unknown topic alias");
		return false;
	}
	p->topic = (struct mqtt_str){ slot->topic, slot->len };
	return true;
}

bool broker_authorize_id(struct broker *b, const struct conn *c, const uint8_t *id,
			 uint16_t id_len, const uint8_t *topic, size_t len)
{
	if (b->hooks.authorize) {
		struct broker_client info;
		conn_fill_client(c, &info);
		info.client_id = id;
		info.client_id_len = id_len;
		return b->hooks.authorize(b->hooks.ctx, &info, BROKER_ACCESS_PUBLISH, topic, len);
	}
	return !(len >= 4 && memcmp(topic, "$SYS", 4) == 0);
}

bool broker_authorize(struct broker *b, const struct conn *c, enum broker_access a,
		      const uint8_t *topic, size_t len)
{
	if (b->hooks.authorize) {
		struct broker_client info;
		conn_fill_client(c, &info);
		return b->hooks.authorize(b->hooks.ctx, &info, a, topic, len);
	}
	/* $SYS belongs to the broker: clients may read it, never write it. */
	if (a == BROKER_ACCESS_PUBLISH && len >= 4 && memcmp(topic, "$SYS", 4) == 0)
		return false;
	return true;
}

/* The message cannot be kept: 5.0 says quota exceeded (0x97); 3.1.1 has no
 * negative ack, so the connection closes and the client sends it again. */
static void send_ack_ordered(struct conn *c, uint8_t type, uint16_t id, uint8_t reason,
			     bool needs_hold);

static void refuse_quota(struct conn *c, uint8_t ack, uint16_t packet_id)
{
	if (c->version == MQTT_V5) {
		/* Behind any ack still held: acks never overtake each other. */
		send_ack_ordered(c, ack, packet_id, MQTT_RC_QUOTA_EXCEEDED, false);
		return;
	}
	conn_log_fault(c, "publish_refused", "message cannot be stored");
	conn_close(c, -1, NULL);
}

/* An ack that must not overtake acks still held for durability. */
static void send_ack_ordered(struct conn *c, uint8_t type, uint16_t id, uint8_t reason,
			     bool needs_hold)
{
	if (needs_hold || c->held_ops > 0) {
		struct held_op op = { .kind = HELD_ACK, .c = c, .ack_type = type,
				      .reason = reason, .packet_id = id };
		persist_hold(c->b, &op);
		return;
	}
	conn_send_ack(c, type, id, reason);
}

/*
 * The durable path of an accepted PUBLISH (m: our reference, given up here):
 * its records are staged, and routing plus the ack wait in the held FIFO
 * until they are safe. Also taken when nothing needs writing but earlier
 * acks of this connection are held, so acks keep their order.
 */
static void publish_held(struct conn *c, const struct mqtt_publish *p, struct msg *m,
			 bool write_msg, bool write_id)
{
	struct broker *b = c->b;
	struct session *s = c->session;
	uint8_t ack = p->qos == 1 ? MQTT_PUBACK : p->qos == 2 ? MQTT_PUBREC : 0;
	if ((write_msg || write_id) && persist_failing(b)) {
		if (p->qos == 0) {
			route_message(b, m, c); /* QoS 0 promises nothing: deliver it */
		} else {
			STAT_ADD(b, persist_refused, 1);
			refuse_quota(c, ack, p->packet_id);
		}
		msg_unref(m);
		return;
	}
	/* The id first: a record whose message could not then be tracked
	 * would be routed by a replay although the client was refused. */
	if (p->qos == 2 && session_qos2_hold(s, p->packet_id) != MOTE_OK) {
		msg_unref(m);
		conn_fail(c);
		return;
	}
	if (write_msg && persist_msg(b, m, s) != MOTE_OK) {
		if (p->qos == 0) {
			route_message(b, m, c);
		} else {
			if (p->qos == 2)
				session_qos2_release(s, p->packet_id);
			refuse_quota(c, ack, p->packet_id);
		}
		msg_unref(m);
		return;
	}
	if (write_id)
		persist_q2(b, s, PR_Q2IN, p->packet_id);
	struct held_op op = { .kind = HELD_ROUTE, .m = m, .c = c, .ack_type = ack,
			      .packet_id = p->packet_id };
	persist_hold(b, &op);
}

void handle_publish(struct conn *c, struct mqtt_publish *p)
{
	struct broker *b = c->b;
	struct session *s = c->session;
	STAT_ADD(b, msgs_received, 1);

	if (!resolve_alias(c, p))
		return;
	if (p->qos == 2) {
		uint32_t pos;
		if (qos2_find(s, p->packet_id, &pos)) {
			/* a resend: ack, don't route (after the first PUBREC, if held) */
			send_ack_ordered(c, MQTT_PUBREC, p->packet_id, 0, false);
			return;
		}
		if (s->qos2_in_count >= b->cfg.receive_max) {
			/* [MQTT-3.3.4-9] */
			fault(c, MQTT_RC_RECEIVE_MAX_EXCEEDED, "receive maximum exceeded");
			return;
		}
	}
	if (MQTT_HAS(&p->props, MQTT_PROP_PAYLOAD_FORMAT) && p->props.payload_format == 1 &&
	    !mqtt_utf8_valid(p->payload.p, p->payload.len)) {
		if (p->qos == 0 || c->version != MQTT_V5) {
			fault(c, MQTT_RC_PAYLOAD_FORMAT_INVALID, "payload is not UTF-8");
			return;
		}
		conn_send_ack(c, p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p->packet_id,
			 MQTT_RC_PAYLOAD_FORMAT_INVALID);
		return;
	}
	if (!broker_authorize(b, c, BROKER_ACCESS_PUBLISH, p->topic.p, p->topic.len)) {
		char t[96], peer[NET_PEER_TEXT];
		/* debug only: the authorize hook reports denials, rate-limited
		 * per client, so a flood cannot fill the disk with this line */
		MOTE_DEBUG("broker", "event=publish_denied peer=%s topic=%s", conn_peer(c, peer),
			  mote_log_quote(t, sizeof t, p->topic.p, p->topic.len));
		/* 3.1.1 has no way to say no: acknowledge and drop [MQTT-3.3.5-2] */
		if (p->qos == 1)
			conn_send_ack(c, MQTT_PUBACK, p->packet_id, MQTT_RC_NOT_AUTHORIZED);
		else if (p->qos == 2)
			conn_send_ack(c, MQTT_PUBREC, p->packet_id, MQTT_RC_NOT_AUTHORIZED);
		return;
	}

	struct msg *m;
	if (route_msg_from_publish(b, p, p->topic.p, p->topic.len, s->uid, &m) != MOTE_OK) {
		conn_fail(c);
		return;
	}
	if (p->qos > 0 && b->hooks.persist_publish) {
		struct broker_client info;
		struct broker_msg_view v = { p->topic.p, p->topic.len, p->payload.p,
					     p->payload.len, p->qos, p->retain };
		conn_fill_client(c, &info);
		if (b->hooks.persist_publish(b->hooks.ctx, &info, &v) != MOTE_OK) {
			msg_unref(m);
			refuse_quota(c, p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p->packet_id);
			return;
		}
	}
	/* Durability: write first, route and acknowledge once it is safe. */
	bool write_msg = persist_wants_msg(b, m);
	bool write_id = p->qos == 2 && s->persisted && b->ps;
	if (write_msg || write_id || c->held_ops > 0) {
		publish_held(c, p, m, write_msg, write_id);
		return;
	}
	uint32_t receivers = route_message(b, m, c);
	msg_unref(m);

	uint8_t rc = receivers ? MQTT_RC_SUCCESS : MQTT_RC_NO_MATCHING_SUBSCRIBERS;
	if (p->qos == 1) {
		conn_send_ack(c, MQTT_PUBACK, p->packet_id, rc);
	} else if (p->qos == 2) {
		if (session_qos2_hold(s, p->packet_id) != MOTE_OK) {
			conn_fail(c);
			return;
		}
		conn_send_ack(c, MQTT_PUBREC, p->packet_id, rc);
	}
}

void handle_pubrel(struct conn *c, const struct mqtt_ack *a)
{
	struct session *s = c->session;
	if (!session_qos2_release(s, a->packet_id)) {
		send_ack_ordered(c, MQTT_PUBCOMP, a->packet_id, MQTT_RC_PACKET_ID_NOT_FOUND, false);
		return;
	}
	/* PUBCOMP lets the client reuse the id: the release must be safe first,
	 * or a restart would take a new message with that id for a resend. */
	bool held = s->persisted && c->b->ps;
	if (held)
		persist_q2(c->b, s, PR_Q2REL, a->packet_id);
	send_ack_ordered(c, MQTT_PUBCOMP, a->packet_id, 0, held);
}

void publish_internal(struct broker *b, struct msg *m, const struct session *origin)
{
	if (persist_wants_msg(b, m) && !persist_failing(b) &&
	    persist_msg(b, m, origin) == MOTE_OK) {
		struct held_op op = { .kind = HELD_ROUTE, .m = msg_ref(m) };
		persist_hold(b, &op);
		return;
	}
	route_message(b, m, NULL); /* nothing to keep, or it cannot be kept: deliver */
}
