/*
 * client_rx.c - the receive path: read from the transport into rx, cut
 * whole packets out with the codec, decode, dispatch; keep-alive; incoming
 * PUBLISH (topic aliases, the QoS 1 and QoS 2 receiver flows).
 *
 * Invariants:
 *   - rx[0..rx_len) never holds a whole packet between calls: after each
 *     read every complete packet is handled and the rest is moved to the
 *     front. A packet larger than rx can never complete, so the frame
 *     parser refuses it (MOTE_ETOOBIG) as soon as its header is in.
 *   - Views handed to callbacks point into rx and die when the handler
 *     returns; c->in_rx is set meanwhile so that API calls that would
 *     re-enter this path are refused.
 *   - Nothing the server sends can make this code abort: every failure
 *     becomes an error return and a closed session (with a 5.0
 *     DISCONNECT that says why when the spec gives a reason code).
 *   - A QoS 2 message is delivered once: its identifier sits in a
 *     SLOT_IN_PUBREL slot from the first PUBLISH until the PUBREL, and
 *     copies arriving meanwhile are answered but not delivered.
 */
#include <string.h>

#include "sdk/client_int.h"

#define ALIAS_TOO_LONG 0xFFFFu

/* ---- keep-alive -------------------------------------------------------- */

static bool keepalive_on(const struct mote_client *c)
{
	return c->state == MOTE_CLIENT_CONNECTED && c->keep_alive_s;
}

/* Milliseconds until the next keep-alive event, UINT32_MAX if none. */
static uint32_t keepalive_due(const struct mote_client *c)
{
	uint32_t now, elapsed, limit;

	if (!keepalive_on(c))
		return UINT32_MAX;
	now = client_now(c);
	if (c->ping_outstanding) {
		elapsed = now - c->ping_sent_ms;
		limit = c->ping_timeout_ms;
	} else {
		elapsed = now - c->last_tx_ms;
		limit = (uint32_t)c->keep_alive_s * 1000u;
	}
	return elapsed >= limit ? 0 : limit - elapsed;
}

static enum mote_err keepalive(struct mote_client *c)
{
	struct mqtt_packet ping;
	enum mote_err err;

	if (keepalive_due(c) != 0)
		return MOTE_OK;
	if (c->ping_outstanding)
		/* No 5.0 reason code fits a client that gives up on the server:
		 * close without a DISCONNECT. */
		return client_close(c, MOTE_ETIMEDOUT, 0);
	memset(&ping, 0, sizeof ping);
	ping.type = MQTT_PINGREQ;
	err = client_send_packet(c, &ping, 0);
	if (err != MOTE_OK)
		return err;
	c->ping_outstanding = true;
	c->ping_sent_ms = c->last_tx_ms;
	return MOTE_OK;
}

/* ---- incoming PUBLISH -------------------------------------------------- */

static uint8_t *alias_slot(struct mote_client *c, uint16_t alias)
{
	return c->cfg.alias_mem + (size_t)(alias - 1u) * ((size_t)c->alias_topic_max + 2u);
}

/* Learns or applies a server topic alias; leaves p->topic non-empty. */
static enum mote_err resolve_alias(struct mote_client *c, struct mqtt_publish *p)
{
	uint16_t alias, len;
	uint8_t *slot;

	if (c->version != MQTT_V5 || !MQTT_HAS(&p->props, MQTT_PROP_TOPIC_ALIAS)) {
		if (p->topic.len == 0)
			return client_close(c, MOTE_EPROTO, MQTT_RC_PROTOCOL_ERROR);
		return MOTE_OK;
	}
	alias = p->props.topic_alias;
	if (alias == 0 || alias > c->cfg.alias_max)
		return client_close(c, MOTE_EPROTO, MQTT_RC_TOPIC_ALIAS_INVALID);
	slot = alias_slot(c, alias);
	if (p->topic.len) {
		/* Too long to keep: remember that, fail only if it is used. */
		len = p->topic.len > c->alias_topic_max ? ALIAS_TOO_LONG : p->topic.len;
		slot[0] = (uint8_t)(len >> 8);
		slot[1] = (uint8_t)len;
		if (len != ALIAS_TOO_LONG)
			memcpy(slot + 2, p->topic.p, len);
		return MOTE_OK;
	}
	len = (uint16_t)(slot[0] << 8 | slot[1]);
	if (len == 0)
		return client_close(c, MOTE_EPROTO, MQTT_RC_PROTOCOL_ERROR);
	if (len == ALIAS_TOO_LONG)
		return client_close(c, MOTE_ETOOBIG, MQTT_RC_IMPL_SPECIFIC);
	p->topic.p = slot + 2;
	p->topic.len = len;
	return MOTE_OK;
}

static void deliver(struct mote_client *c, const struct mqtt_publish *p)
{
	if (c->cfg.cb.on_publish)
		c->cfg.cb.on_publish(c, p, c->cfg.user);
}

static enum mote_err on_publish(struct mote_client *c, struct mqtt_publish *p)
{
	struct mote_inflight *slot;
	enum mote_err err = resolve_alias(c, p);

	if (err != MOTE_OK)
		return err;
	if (p->qos == 0) {
		deliver(c, p);
		return MOTE_OK;
	}
	if (p->qos == 1) {
		deliver(c, p);
		return client_send_ack(c, MQTT_PUBACK, p->packet_id, MQTT_RC_SUCCESS);
	}
	if (client_slot_find(c, SLOT_IN_PUBREL, p->packet_id))
		/* A copy of one already delivered: only answer again. */
		return client_send_ack(c, MQTT_PUBREC, p->packet_id, MQTT_RC_SUCCESS);
	if (c->version == MQTT_V5 && client_slot_count(c, false) >= c->recv_max)
		return client_close(c, MOTE_EPROTO, MQTT_RC_RECEIVE_MAX_EXCEEDED);
	slot = client_slot_free(c);
	if (!slot) {
		/* Within the announced window but the slots are taken by our own
		 * publishes: 5.0 can refuse this one message; 3.1.1 has no way
		 * to, so the session ends and the server resends it later. */
		if (c->version == MQTT_V5)
			return client_send_ack(c, MQTT_PUBREC, p->packet_id,
					       MQTT_RC_QUOTA_EXCEEDED);
		return client_close(c, MOTE_EFULL, 0);
	}
	slot->state = SLOT_IN_PUBREL;
	slot->packet_id = p->packet_id;
	slot->reason = 0;
	deliver(c, p);
	return client_send_ack(c, MQTT_PUBREC, p->packet_id, MQTT_RC_SUCCESS);
}

static enum mote_err on_pubrel(struct mote_client *c, const struct mqtt_ack *a)
{
	struct mote_inflight *slot = client_slot_find(c, SLOT_IN_PUBREL, a->packet_id);

	if (!slot)
		return client_send_ack(c, MQTT_PUBCOMP, a->packet_id,
				       MQTT_RC_PACKET_ID_NOT_FOUND);
	slot->state = SLOT_FREE;
	slot->packet_id = 0;
	return client_send_ack(c, MQTT_PUBCOMP, a->packet_id, MQTT_RC_SUCCESS);
}

static enum mote_err on_disconnect(struct mote_client *c, const struct mqtt_reason_only *d)
{
	c->disconnect_reason = d->reason;
	client_close(c, MOTE_ECLOSED, 0);
	if (c->cfg.cb.on_disconnect)
		c->cfg.cb.on_disconnect(c, d, c->cfg.user);
	return MOTE_ECLOSED;
}

/* ---- dispatch ---------------------------------------------------------- */

static enum mote_err dispatch(struct mote_client *c, struct mqtt_packet *pkt)
{
	bool connecting = c->state == MOTE_CLIENT_CONNECTING;

	if (connecting != (pkt->type == MQTT_CONNACK))
		/* CONNACK comes first and only once (MQTT-3.2.0-1). */
		return client_close(c, MOTE_EPROTO, MQTT_RC_PROTOCOL_ERROR);
	switch (pkt->type) {
	case MQTT_CONNACK:
		return client_on_connack(c, &pkt->u.connack);
	case MQTT_PUBLISH:
		return on_publish(c, &pkt->u.publish);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		return client_on_ack(c, (uint8_t)pkt->type, &pkt->u.ack);
	case MQTT_PUBREL:
		return on_pubrel(c, &pkt->u.ack);
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		return client_on_suback(c, (uint8_t)pkt->type, &pkt->u.suback);
	case MQTT_PINGRESP:
		c->ping_outstanding = false;
		return MOTE_OK;
	case MQTT_DISCONNECT:
		return on_disconnect(c, &pkt->u.disconnect);
	default:
		/* AUTH: the client never starts enhanced authentication. */
		return client_close(c, MOTE_EPROTO, MQTT_RC_PROTOCOL_ERROR);
	}
}

/*
 * A 3.1.1 server answers a 5.0 CONNECT with a 3.1.1 CONNACK (two bytes,
 * return code 1). Read it as one so the caller learns "unsupported
 * version" instead of "malformed".
 */
static uint8_t decode_version(const struct mote_client *c, const struct mqtt_frame *f)
{
	if (c->state == MOTE_CLIENT_CONNECTING && c->version == MQTT_V5 &&
	    f->type == MQTT_CONNACK && f->remaining_len == 2)
		return MQTT_V311;
	return c->version;
}

static enum mote_err handle_buffered(struct mote_client *c, bool *handled)
{
	uint8_t *rx = c->cfg.rx_buf;
	size_t off = 0;
	enum mote_err err = MOTE_OK;
	uint32_t max = c->cfg.rx_cap > MQTT_MAX_REMAINING_LENGTH + MQTT_MAX_FIXED_HEADER
			       ? 0
			       : (uint32_t)c->cfg.rx_cap;

	c->in_rx = true;
	while (c->state != MOTE_CLIENT_CLOSED) {
		struct mqtt_frame f;
		struct mqtt_fault fault = { MQTT_RC_MALFORMED, NULL };
		struct mqtt_packet pkt;

		err = mqtt_frame_parse(rx + off, c->rx_len - off, max, &f, &fault);
		if (err == MOTE_EAGAIN) {
			err = MOTE_OK;
			break;
		}
		if (err == MOTE_OK)
			err = mqtt_decode(rx + off, f.total_len, decode_version(c, &f), false, &pkt,
					  &fault);
		if (err != MOTE_OK) {
			err = client_close(c, err, fault.reason);
			break;
		}
		off += f.total_len;
		*handled = true;
		if (c->cfg.cb.on_packet)
			c->cfg.cb.on_packet(c, false, &pkt, c->cfg.user);
		err = dispatch(c, &pkt);
		if (err != MOTE_OK)
			break;
	}
	c->in_rx = false;
	if (c->state == MOTE_CLIENT_CLOSED) {
		/* Whatever follows a fatal packet is not read. */
		c->rx_len = 0;
		return err != MOTE_OK ? err : client_closed_err(c);
	}
	memmove(rx, rx + off, c->rx_len - off);
	c->rx_len -= off;
	return err;
}

/*
 * One read (waiting at most max_wait, less if keep-alive needs attention
 * sooner) and the handling of what it completed. MOTE_EAGAIN when the
 * transport was interrupted.
 */
static enum mote_err step(struct mote_client *c, uint32_t max_wait, bool *handled)
{
	const struct mote_transport *t = &c->cfg.transport;
	size_t got = 0, room = c->cfg.rx_cap - c->rx_len;
	uint32_t wait;
	enum mote_err err;

	*handled = false;
	/* Read before judging keep-alive: an overdue PINGRESP may be waiting
	 * in the socket, and with wait 0 this only takes what is there. */
	wait = keepalive_due(c);
	if (wait > max_wait)
		wait = max_wait;
	err = t->recv(t->ctx, c->cfg.rx_buf + c->rx_len, room, wait, &got);
	if (err == MOTE_OK) {
		if (got == 0 || got > room)
			return client_close(c, MOTE_EIO, 0);
		c->rx_len += got;
		err = handle_buffered(c, handled);
	} else if (err == MOTE_ETIMEDOUT) {
		err = MOTE_OK;
	} else if (err != MOTE_EAGAIN) {
		err = client_close(c, err, 0);
	}
	if (err != MOTE_OK)
		return err;
	return keepalive(c);
}

enum mote_err client_wait(struct mote_client *c, uint32_t timeout_ms)
{
	uint32_t start = client_now(c);

	for (;;) {
		uint32_t elapsed;
		bool handled;
		enum mote_err err;

		if (c->wait.done)
			return MOTE_OK;
		if (c->state == MOTE_CLIENT_CLOSED)
			return client_closed_err(c);
		elapsed = client_now(c) - start;
		if (elapsed >= timeout_ms)
			return MOTE_ETIMEDOUT;
		err = step(c, timeout_ms - elapsed, &handled);
		/* The answer may have come with the packets that closed the
		 * session (a SUBACK, then DISCONNECT): it still counts. */
		if (c->wait.done)
			return MOTE_OK;
		if (err != MOTE_OK && err != MOTE_EAGAIN)
			return err;
	}
}

enum mote_err mote_client_process(struct mote_client *c, uint32_t timeout_ms)
{
	uint32_t start;

	if (!c || c->in_rx || c->wait.type)
		return MOTE_EINVAL;
	if (c->state != MOTE_CLIENT_CONNECTED)
		return client_closed_err(c);
	start = client_now(c);
	for (;;) {
		uint32_t elapsed = client_now(c) - start;
		uint32_t left = elapsed >= timeout_ms ? 0 : timeout_ms - elapsed;
		bool handled;
		enum mote_err err = step(c, left, &handled);

		if (err == MOTE_EAGAIN)
			return MOTE_OK;
		if (err != MOTE_OK)
			return err;
		if (handled || left == 0)
			return MOTE_OK;
	}
}
