/*
 * client.c - the client context: init, accessors, the send path, packet
 * identifiers and in-flight slots.
 *
 * Invariants:
 *   - Every byte the client sends goes through send_all() with one
 *     deadline per packet, so a stalled transport cannot hold the caller
 *     longer than cfg.send_timeout_ms per packet.
 *   - A transport failure while sending closes the session: a packet may
 *     have gone out half-written and the stream cannot be trusted any more.
 *   - An encoding failure (MOTE_ENOSPC, MOTE_EINVAL) happens before any
 *     byte is sent and leaves the session as it was.
 *   - Outgoing packet identifiers are unique among the outgoing slots and
 *     the SUBSCRIBE / UNSUBSCRIBE being waited for; incoming identifiers
 *     are the server's and live in their own space (slots SLOT_IN_*).
 */
#include <string.h>

#include "sdk/client_int.h"

#define DEFAULT_SEND_TIMEOUT_MS 10000u

enum mote_err mote_client_init(struct mote_client *c, const struct mote_client_cfg *cfg)
{
	if (!c || !cfg || !cfg->transport.send || !cfg->transport.recv || !cfg->clock.now_ms ||
	    !cfg->tx_buf || !cfg->rx_buf || (cfg->inflight_len && !cfg->inflight) ||
	    (cfg->alias_max && !cfg->alias_mem))
		return MOTE_EINVAL;
	if (cfg->tx_cap < MOTE_CLIENT_MIN_BUF || cfg->rx_cap < MOTE_CLIENT_MIN_BUF)
		return MOTE_ENOSPC;
	/* An alias slot is two length bytes plus at least one topic byte. */
	if (cfg->alias_max && cfg->alias_mem_len / cfg->alias_max < 3)
		return MOTE_ENOSPC;

	memset(c, 0, sizeof *c);
	c->cfg = *cfg;
	if (!c->cfg.send_timeout_ms)
		c->cfg.send_timeout_ms = DEFAULT_SEND_TIMEOUT_MS;
	if (c->cfg.alias_max) {
		size_t per = c->cfg.alias_mem_len / c->cfg.alias_max - 2;
		/* 0xFFFF marks a slot whose topic was too long to keep. */
		c->alias_topic_max = (uint16_t)(per > 0xFFFEu ? 0xFFFEu : per);
	}
	memset(c->cfg.inflight, 0, c->cfg.inflight_len * sizeof *c->cfg.inflight);
	c->next_id = 1;
	c->state = MOTE_CLIENT_IDLE;
	return MOTE_OK;
}

enum mote_client_state mote_client_state(const struct mote_client *c)
{
	return (enum mote_client_state)c->state;
}

enum mote_err mote_client_error(const struct mote_client *c)
{
	return c->error;
}

uint8_t mote_client_disconnect_reason(const struct mote_client *c)
{
	return c->disconnect_reason;
}

size_t mote_client_inflight(const struct mote_client *c)
{
	return client_slot_count(c, true) + client_slot_count(c, false);
}

/* ---- sending ----------------------------------------------------------- */

static enum mote_err send_all(struct mote_client *c, const uint8_t *p, size_t len,
			      uint32_t start)
{
	const struct mote_transport *t = &c->cfg.transport;
	uint32_t limit = c->cfg.send_timeout_ms;

	while (len) {
		uint32_t elapsed = client_now(c) - start;
		size_t sent = 0;
		enum mote_err err;

		if (elapsed >= limit)
			return MOTE_ETIMEDOUT;
		err = t->send(t->ctx, p, len, limit - elapsed, &sent);
		if (err == MOTE_EAGAIN)
			continue;
		if (err != MOTE_OK)
			return err;
		/* A transport that claims more than it was given is broken. */
		if (sent == 0 || sent > len)
			return MOTE_EIO;
		p += sent;
		len -= sent;
	}
	return MOTE_OK;
}

static void trace(struct mote_client *c, bool sent, const struct mqtt_packet *pkt)
{
	if (c->cfg.cb.on_packet)
		c->cfg.cb.on_packet(c, sent, pkt, c->cfg.user);
}

static bool over_server_limit(const struct mote_client *c, size_t total)
{
	return c->version == MQTT_V5 && c->srv_max_packet && total > c->srv_max_packet;
}

enum mote_err client_send_packet(struct mote_client *c, const struct mqtt_packet *pkt,
				 size_t tail)
{
	uint32_t start = client_now(c);
	size_t len = 0;
	enum mote_err err;

	if (tail > c->cfg.tx_cap)
		return MOTE_ENOSPC;
	err = mqtt_encode(pkt, c->version, c->cfg.tx_buf, c->cfg.tx_cap - tail, &len);
	if (err != MOTE_OK)
		return err;
	if (over_server_limit(c, len))
		return MOTE_ETOOBIG;
	err = send_all(c, c->cfg.tx_buf, len, start);
	if (err != MOTE_OK)
		return client_close(c, err, 0);
	c->last_tx_ms = client_now(c);
	trace(c, true, pkt);
	return MOTE_OK;
}

enum mote_err client_send_publish(struct mote_client *c, const struct mqtt_packet *pkt,
				  size_t tail)
{
	const struct mqtt_publish *pub = &pkt->u.publish;
	uint32_t start = client_now(c);
	size_t head = 0;
	enum mote_err err;

	if (tail > c->cfg.tx_cap)
		return MOTE_ENOSPC;
	err = mqtt_encode_publish_head(pub, c->version, c->cfg.tx_buf, c->cfg.tx_cap - tail,
				       &head);
	if (err != MOTE_OK)
		return err;
	if (over_server_limit(c, head + pub->payload.len))
		return MOTE_ETOOBIG;
	err = send_all(c, c->cfg.tx_buf, head, start);
	if (err == MOTE_OK && pub->payload.len)
		err = send_all(c, pub->payload.p, pub->payload.len, start);
	if (err != MOTE_OK)
		return client_close(c, err, 0);
	c->last_tx_ms = client_now(c);
	trace(c, true, pkt);
	return MOTE_OK;
}

enum mote_err client_send_ack(struct mote_client *c, uint8_t type, uint16_t packet_id,
			      uint8_t reason)
{
	struct mqtt_packet pkt;

	memset(&pkt, 0, sizeof pkt);
	pkt.type = (enum mqtt_type)type;
	pkt.u.ack.packet_id = packet_id;
	pkt.u.ack.reason = c->version == MQTT_V5 ? reason : 0;
	return client_send_packet(c, &pkt, 0);
}

enum mote_err client_close(struct mote_client *c, enum mote_err err, uint8_t reason)
{
	bool tell = reason && c->version == MQTT_V5 && c->state == MOTE_CLIENT_CONNECTED;

	if (c->state == MOTE_CLIENT_CLOSED)
		return err;
	/* Closed before the DISCONNECT goes out: a failure while sending it
	 * comes back here and must not recurse. */
	c->state = MOTE_CLIENT_CLOSED;
	c->error = err;
	c->ping_outstanding = false;
	if (tell) {
		struct mqtt_packet pkt;
		memset(&pkt, 0, sizeof pkt);
		pkt.type = MQTT_DISCONNECT;
		pkt.u.disconnect.reason = reason;
		(void)client_send_packet(c, &pkt, 0);
	}
	return err;
}

size_t client_user_props_size(const struct mqtt_user_prop *pairs, size_t n)
{
	size_t need = 0;

	for (size_t i = 0; pairs && i < n; i++)
		need += MOTE_CLIENT_USER_PROP_SIZE(pairs[i].key.len, pairs[i].val.len);
	return need;
}

enum mote_err client_user_props(struct mote_client *c, const struct mqtt_user_prop *pairs,
				size_t n, struct mqtt_props *props, size_t *tail)
{
	size_t need = 0, used = 0;
	uint8_t *dst;
	enum mote_err err;

	*tail = 0;
	if (n == 0)
		return MOTE_OK;
	if (!pairs || props->raw_extra.len)
		return MOTE_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if ((pairs[i].key.len && !pairs[i].key.p) || (pairs[i].val.len && !pairs[i].val.p))
			return MOTE_EINVAL;
		need += MOTE_CLIENT_USER_PROP_SIZE(pairs[i].key.len, pairs[i].val.len);
		if (need > c->cfg.tx_cap)
			return MOTE_ENOSPC;
	}
	dst = c->cfg.tx_buf + c->cfg.tx_cap - need;
	err = mqtt_user_props_encode(pairs, n, dst, need, &used);
	if (err != MOTE_OK)
		return err;
	props->raw_extra.p = dst;
	props->raw_extra.len = (uint32_t)used;
	*tail = need;
	return MOTE_OK;
}

/* ---- packet identifiers and slots -------------------------------------- */

static bool id_in_use(const struct mote_client *c, uint16_t id)
{
	if (c->wait.type && c->wait.packet_id == id)
		return true;
	for (size_t i = 0; i < c->cfg.inflight_len; i++) {
		const struct mote_inflight *s = &c->cfg.inflight[i];
		if (s->packet_id == id && s->state != SLOT_FREE && s->state != SLOT_IN_PUBREL)
			return true;
	}
	return false;
}

uint16_t client_next_id(struct mote_client *c)
{
	/* At most inflight_len + 1 identifiers are taken, so this ends after
	 * a few steps unless the array holds tens of thousands of slots. */
	for (uint32_t tries = 0; tries < 65535u; tries++) {
		uint16_t id = c->next_id;
		c->next_id = (uint16_t)(id == 65535u ? 1u : id + 1u);
		if (!id_in_use(c, id))
			return id;
	}
	return 0;
}

struct mote_inflight *client_slot_find(struct mote_client *c, uint8_t state,
				       uint16_t packet_id)
{
	for (size_t i = 0; i < c->cfg.inflight_len; i++) {
		struct mote_inflight *s = &c->cfg.inflight[i];
		if (s->state == state && s->packet_id == packet_id)
			return s;
	}
	return NULL;
}

struct mote_inflight *client_slot_free(struct mote_client *c)
{
	for (size_t i = 0; i < c->cfg.inflight_len; i++)
		if (c->cfg.inflight[i].state == SLOT_FREE)
			return &c->cfg.inflight[i];
	return NULL;
}

size_t client_slot_count(const struct mote_client *c, bool out)
{
	size_t n = 0;
	for (size_t i = 0; i < c->cfg.inflight_len; i++) {
		uint8_t st = c->cfg.inflight[i].state;
		if (st == SLOT_FREE)
			continue;
		if ((st == SLOT_IN_PUBREL) != out)
			n++;
	}
	return n;
}
