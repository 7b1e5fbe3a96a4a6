/*
 * client_sub.c - SUBSCRIBE / UNSUBSCRIBE and their acks.
 *
 * Invariants:
 *   - Only one SUBSCRIBE or UNSUBSCRIBE is outstanding (the helpers block),
 *     and its identifier is reserved in c->wait so that no PUBLISH takes it.
 *   - A SUBACK / UNSUBACK for another identifier (one that came after its
 *     helper timed out) is ignored; one for ours with the wrong number of
 *     reason codes is a protocol error.
 */
#include <string.h>

#include "sdk/client_int.h"

static bool filter_ok(struct mqtt_str f)
{
	return f.len && f.p && mqtt_topic_filter_valid(f.p, f.len);
}

static enum mote_err check_call(const struct mote_client *c, size_t n, const uint8_t *reasons)
{
	if (!c || c->in_rx || c->wait.type || n == 0 || !reasons)
		return MOTE_EINVAL;
	if (n > 0xFFFFu) /* more than any packet could hold */
		return MOTE_ETOOBIG;
	if (c->state != MOTE_CLIENT_CONNECTED)
		return client_closed_err(c);
	return MOTE_OK;
}

/* Sends pkt, whose identifier is already in c->wait, and waits for the ack. */
static enum mote_err exchange(struct mote_client *c, struct mqtt_packet *pkt,
			      uint8_t *reasons, size_t n, uint32_t timeout_ms)
{
	enum mote_err err;

	c->wait.reasons = reasons;
	c->wait.count = n;
	err = client_send_packet(c, pkt, 0);
	if (err == MOTE_OK)
		err = client_wait(c, timeout_ms);
	memset(&c->wait, 0, sizeof c->wait);
	return err;
}

enum mote_err mote_client_subscribe(struct mote_client *c, const struct mqtt_sub_entry *subs,
				    size_t n, const struct mqtt_props *props, uint8_t *reasons,
				    uint32_t timeout_ms)
{
	struct mqtt_packet pkt;
	uint16_t id;
	enum mote_err err;

	if ((err = check_call(c, n, reasons)) != MOTE_OK)
		return err;
	if (!subs)
		return MOTE_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!filter_ok(subs[i].filter) || subs[i].opts.qos > 2 ||
		    subs[i].opts.retain_handling > 2)
			return MOTE_EINVAL;
	if (!(id = client_next_id(c)))
		return MOTE_EFULL;
	memset(&pkt, 0, sizeof pkt);
	pkt.type = MQTT_SUBSCRIBE;
	pkt.u.subscribe.packet_id = id;
	pkt.u.subscribe.entries = subs;
	pkt.u.subscribe.count = (uint32_t)n;
	if (props && c->version == MQTT_V5)
		pkt.u.subscribe.props = *props;
	c->wait.type = MQTT_SUBACK;
	c->wait.packet_id = id;
	return exchange(c, &pkt, reasons, n, timeout_ms);
}

enum mote_err mote_client_unsubscribe(struct mote_client *c, const struct mqtt_str *filters,
				      size_t n, const struct mqtt_props *props,
				      uint8_t *reasons, uint32_t timeout_ms)
{
	struct mqtt_packet pkt;
	uint16_t id;
	enum mote_err err;

	if ((err = check_call(c, n, reasons)) != MOTE_OK)
		return err;
	if (!filters)
		return MOTE_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!filter_ok(filters[i]))
			return MOTE_EINVAL;
	if (!(id = client_next_id(c)))
		return MOTE_EFULL;
	memset(&pkt, 0, sizeof pkt);
	pkt.type = MQTT_UNSUBSCRIBE;
	pkt.u.unsubscribe.packet_id = id;
	pkt.u.unsubscribe.filters = filters;
	pkt.u.unsubscribe.count = (uint32_t)n;
	if (props && c->version == MQTT_V5)
		pkt.u.unsubscribe.props = *props;
	c->wait.type = MQTT_UNSUBACK;
	c->wait.packet_id = id;
	return exchange(c, &pkt, reasons, n, timeout_ms);
}

enum mote_err client_on_suback(struct mote_client *c, uint8_t type, const struct mqtt_suback *s)
{
	if (c->wait.type != type || c->wait.packet_id != s->packet_id || c->wait.done)
		return MOTE_OK;
	if (type == MQTT_UNSUBACK && c->version != MQTT_V5) {
		/* 3.1.1 UNSUBACK carries no reason codes: all succeeded. */
		memset(c->wait.reasons, 0, c->wait.count);
	} else {
		if (s->count != c->wait.count)
			return client_close(c, MOTE_EPROTO, MQTT_RC_PROTOCOL_ERROR);
		memcpy(c->wait.reasons, s->reasons, c->wait.count);
	}
	c->wait.done = true;
	return MOTE_OK;
}
