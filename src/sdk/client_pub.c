/*
 * client_pub.c - outgoing PUBLISH and the sender side of the QoS 1 and
 * QoS 2 flows (PUBACK; PUBREC -> PUBREL -> PUBCOMP).
 *
 * Invariants:
 *   - A slot is taken only once the PUBLISH is fully sent, so a refused
 *     publish (bad arguments, too big, no room in tx) leaves no trace.
 *   - Each QoS 1/2 exchange ends exactly once, in finish(): the slot is
 *     freed, a blocking waiter for that identifier is released and
 *     on_pub_done is told.
 *   - Acks for identifiers the client does not know are answered where the
 *     protocol needs an answer (PUBREC -> PUBREL) and otherwise ignored:
 *     a late duplicate is not worth closing the session over.
 */
#include <string.h>

#include "sdk/client_int.h"

static enum mote_err check_publish(const struct mote_client *c, const struct mote_publish *pub,
				   size_t topic_len)
{
	const struct mqtt_props *pr = pub->props;
	bool v5 = c->version == MQTT_V5;
	bool alias = v5 && pr && MQTT_HAS(pr, MQTT_PROP_TOPIC_ALIAS);

	if (topic_len > 0xFFFFu || pub->qos > 2 || (pub->payload_len && !pub->payload))
		return MOTE_EINVAL;
	if (topic_len == 0 ? !alias : !mqtt_topic_name_valid((const uint8_t *)pub->topic, topic_len))
		return MOTE_EINVAL;
	if (alias && (pr->topic_alias == 0 || pr->topic_alias > c->srv_alias_max))
		return MOTE_EINVAL;
	if (pub->qos > c->srv_max_qos || (pub->retain && !c->srv_retain))
		return MOTE_EINVAL;
	if (pub->payload_len > MQTT_MAX_REMAINING_LENGTH)
		return MOTE_ETOOBIG;
	return MOTE_OK;
}

enum mote_err mote_client_publish_start(struct mote_client *c, const struct mote_publish *pub,
					uint16_t *packet_id)
{
	struct mote_inflight *slot = NULL;
	struct mqtt_packet pkt;
	struct mqtt_publish *p = &pkt.u.publish;
	size_t topic_len, tail = 0;
	enum mote_err err;

	if (packet_id)
		*packet_id = 0;
	if (!c || !pub || !pub->topic)
		return MOTE_EINVAL;
	if (c->state != MOTE_CLIENT_CONNECTED)
		return client_closed_err(c);
	topic_len = strlen(pub->topic);
	if ((err = check_publish(c, pub, topic_len)) != MOTE_OK)
		return err;
	if (pub->qos) {
		if (client_slot_count(c, true) >= c->srv_receive_max)
			return MOTE_EFULL;
		if (!(slot = client_slot_free(c)))
			return MOTE_EFULL;
	}

	memset(&pkt, 0, sizeof pkt);
	pkt.type = MQTT_PUBLISH;
	p->qos = pub->qos;
	p->retain = pub->retain;
	p->topic.p = topic_len ? (const uint8_t *)pub->topic : NULL;
	p->topic.len = (uint16_t)topic_len;
	p->payload.p = pub->payload;
	p->payload.len = (uint32_t)pub->payload_len;
	if (c->version == MQTT_V5) {
		if (pub->props)
			p->props = *pub->props;
		err = client_user_props(c, pub->user_props, pub->user_prop_count, &p->props, &tail);
		if (err != MOTE_OK)
			return err;
	}
	if (slot && !(p->packet_id = client_next_id(c)))
		return MOTE_EFULL;

	err = client_send_publish(c, &pkt, tail);
	if (err != MOTE_OK)
		return err;
	if (slot) {
		slot->state = pub->qos == 1 ? SLOT_OUT_PUBACK : SLOT_OUT_PUBREC;
		slot->packet_id = p->packet_id;
		slot->reason = 0;
		if (packet_id)
			*packet_id = p->packet_id;
	}
	return MOTE_OK;
}

enum mote_err mote_client_publish_size(const struct mote_client *c,
				       const struct mote_publish *pub, size_t *tx_bytes)
{
	struct mqtt_packet pkt;
	struct mqtt_publish *p = &pkt.u.publish;
	uint8_t version = c && c->version ? c->version : MQTT_V5;
	size_t bare = 0, users = 0;
	uint32_t rest, with;
	enum mote_err err;

	if (!c || !pub || !pub->topic || !tx_bytes || strlen(pub->topic) > 0xFFFFu ||
	    pub->payload_len > MQTT_MAX_REMAINING_LENGTH)
		return MOTE_EINVAL;
	memset(&pkt, 0, sizeof pkt);
	pkt.type = MQTT_PUBLISH;
	p->qos = pub->qos;
	p->packet_id = pub->qos ? 1 : 0;
	p->topic.len = (uint16_t)strlen(pub->topic);
	p->topic.p = p->topic.len ? (const uint8_t *)pub->topic : NULL;
	if (version == MQTT_V5 && pub->props)
		p->props = *pub->props;
	if (version == MQTT_V5 && pub->user_prop_count)
		users = client_user_props_size(pub->user_props, pub->user_prop_count);
	/* Size the packet without payload, then let the remaining length
	 * count the payload: the head is everything but the payload bytes. */
	if ((err = mqtt_encoded_size(&pkt, version, &bare)) != MOTE_OK)
		return err;
	/* bare = 1 + varint(rest) + rest: find the rest that fits. */
	rest = 0;
	for (uint32_t k = 1; k <= 4; k++) {
		rest = (uint32_t)bare - 1u - k;
		if (mqtt_varint_size(rest) == k)
			break;
	}
	with = mqtt_varint_size(rest + (uint32_t)pub->payload_len);
	if (!with)
		return MOTE_ETOOBIG;
	*tx_bytes = 1u + with + rest + (users ? 2 * users + 6 : 0);
	return MOTE_OK;
}

enum mote_err mote_client_publish(struct mote_client *c, const struct mote_publish *pub,
				  uint8_t *reason, uint32_t timeout_ms)
{
	uint16_t id = 0;
	enum mote_err err;

	if (reason)
		*reason = 0;
	if (!c || c->in_rx || c->wait.type)
		return MOTE_EINVAL;
	err = mote_client_publish_start(c, pub, &id);
	if (err != MOTE_OK || id == 0)
		return err;
	c->wait.type = MQTT_PUBACK; /* stands for "this exchange completed" */
	c->wait.packet_id = id;
	err = client_wait(c, timeout_ms);
	if (err == MOTE_OK && reason)
		*reason = c->wait.reason;
	memset(&c->wait, 0, sizeof c->wait);
	return err;
}

static void finish(struct mote_client *c, struct mote_inflight *slot, uint8_t reason)
{
	uint16_t id = slot->packet_id;

	slot->state = SLOT_FREE;
	slot->packet_id = 0;
	if (c->wait.type == MQTT_PUBACK && c->wait.packet_id == id) {
		c->wait.done = true;
		c->wait.reason = reason;
	}
	if (c->cfg.cb.on_pub_done)
		c->cfg.cb.on_pub_done(c, id, reason, c->cfg.user);
}

enum mote_err client_on_ack(struct mote_client *c, uint8_t type, const struct mqtt_ack *ack)
{
	struct mote_inflight *slot;
	uint16_t id = ack->packet_id;

	switch (type) {
	case MQTT_PUBACK:
		if ((slot = client_slot_find(c, SLOT_OUT_PUBACK, id)))
			finish(c, slot, ack->reason);
		return MOTE_OK;
	case MQTT_PUBCOMP:
		if ((slot = client_slot_find(c, SLOT_OUT_PUBCOMP, id)))
			finish(c, slot, ack->reason);
		return MOTE_OK;
	default: /* MQTT_PUBREC */
		break;
	}
	slot = client_slot_find(c, SLOT_OUT_PUBREC, id);
	if (!slot)
		slot = client_slot_find(c, SLOT_OUT_PUBCOMP, id); /* a repeated PUBREC */
	if (!slot)
		return client_send_ack(c, MQTT_PUBREL, id, MQTT_RC_PACKET_ID_NOT_FOUND);
	if (ack->reason >= 0x80) {
		/* The server refused the message; the exchange ends here. */
		finish(c, slot, ack->reason);
		return MOTE_OK;
	}
	slot->state = SLOT_OUT_PUBCOMP;
	return client_send_ack(c, MQTT_PUBREL, id, MQTT_RC_SUCCESS);
}
