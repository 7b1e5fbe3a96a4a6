/*
 * client_connect.c - opening and closing a session: CONNECT, CONNACK
 * (server limits, session resumption), DISCONNECT.
 *
 * Invariants:
 *   - mote_client_connect() validates everything and encodes CONNECT before
 *     touching the session state, so a refused call (MOTE_EINVAL,
 *     MOTE_ENOSPC) leaves the client exactly as it was.
 *   - The server's limits (Receive Maximum, Maximum QoS, Retain Available,
 *     Maximum Packet Size, Topic Alias Maximum) start at the protocol
 *     defaults on each connect and are replaced only by what CONNACK says.
 */
#include <string.h>

#include "sdk/client_int.h"

#define MAX_PING_TIMEOUT_MS 30000u

static bool str_ok(const char *s, bool name)
{
	size_t n = strlen(s);

	if (n > 0xFFFFu)
		return false;
	if (name)
		return mqtt_topic_name_valid((const uint8_t *)s, n);
	return mqtt_utf8_valid((const uint8_t *)s, n);
}

static struct mqtt_str view(const char *s)
{
	struct mqtt_str v = { (const uint8_t *)s, (uint16_t)strlen(s) };
	if (!v.len)
		v.p = NULL;
	return v;
}

static enum mote_err check_opts(const struct mote_connect_opts *o, uint8_t version)
{
	const struct mote_will *w = o->will;

	if (version != MQTT_V311 && version != MQTT_V5)
		return MOTE_EINVAL;
	if ((o->client_id && !str_ok(o->client_id, false)) ||
	    (o->username && !str_ok(o->username, false)))
		return MOTE_EINVAL;
	if (o->password_len > 0xFFFFu || (o->password_len && !o->password))
		return MOTE_EINVAL;
	/* 3.1.1 allows a password only after a user name (MQTT-3.1.2-22). */
	if (version == MQTT_V311 && o->password && !o->username)
		return MOTE_EINVAL;
	if (w && (!w->topic || !str_ok(w->topic, true) || w->qos > 2 ||
		  w->payload_len > 0xFFFFu || (w->payload_len && !w->payload)))
		return MOTE_EINVAL;
	return MOTE_OK;
}

/* The packet; props and will_props are filled in *props / *will_props. */
static void build_connect(const struct mote_client *c, const struct mote_connect_opts *o,
			  uint8_t version, uint16_t recv_max, struct mqtt_packet *pkt)
{
	struct mqtt_connect *cn = &pkt->u.connect;
	const struct mote_will *w = o->will;

	memset(pkt, 0, sizeof *pkt);
	pkt->type = MQTT_CONNECT;
	cn->version = version;
	cn->clean_start = o->clean_start;
	cn->keep_alive = o->keep_alive_s;
	cn->client_id = view(o->client_id ? o->client_id : "");
	if (o->username) {
		cn->has_username = true;
		cn->username = view(o->username);
	}
	if (o->password) {
		cn->has_password = true;
		cn->password.p = o->password;
		cn->password.len = (uint32_t)o->password_len;
	}
	if (w) {
		cn->will = true;
		cn->will_qos = w->qos;
		cn->will_retain = w->retain;
		cn->will_topic = view(w->topic);
		cn->will_payload.p = w->payload;
		cn->will_payload.len = (uint32_t)w->payload_len;
		if (w->props)
			cn->will_props = *w->props;
	}
	if (version != MQTT_V5)
		return;
	if (o->props)
		cn->props = *o->props;
	if (o->session_expiry) {
		MQTT_SET(&cn->props, MQTT_PROP_SESSION_EXPIRY);
		cn->props.session_expiry = o->session_expiry;
	}
	MQTT_SET(&cn->props, MQTT_PROP_RECEIVE_MAX);
	cn->props.receive_max = recv_max;
	MQTT_SET(&cn->props, MQTT_PROP_MAX_PACKET_SIZE);
	/* Through uint64_t so a 32-bit size_t does not make this always false. */
	uint64_t rx_cap = c->cfg.rx_cap;
	uint32_t limit = rx_cap > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)rx_cap;
	cn->props.max_packet_size =
		(o->max_packet_size && o->max_packet_size < limit) ? o->max_packet_size : limit;
	if (c->cfg.alias_max) {
		MQTT_SET(&cn->props, MQTT_PROP_TOPIC_ALIAS_MAX);
		cn->props.topic_alias_max = c->cfg.alias_max;
	}
}

static uint16_t announced_recv_max(const struct mote_client *c,
				   const struct mote_connect_opts *o)
{
	if (o->receive_max)
		return o->receive_max;
	if (c->cfg.inflight_len == 0)
		return 1;
	return (uint16_t)(c->cfg.inflight_len > 0xFFFFu ? 0xFFFFu : c->cfg.inflight_len);
}

/*
 * User property pairs are counted, not encoded (that needs tx): once inside
 * the packet and once at the tail, plus up to 3 bytes each for the property
 * length and remaining length growing a varint byte or more.
 */
enum mote_err mote_client_connect_size(const struct mote_client *c,
				       const struct mote_connect_opts *o, size_t *tx_bytes)
{
	uint8_t version;
	struct mqtt_packet pkt;
	size_t size = 0, users = 0;
	enum mote_err err;

	if (!c || !o || !tx_bytes)
		return MOTE_EINVAL;
	version = o->version ? o->version : MQTT_V5;
	if ((err = check_opts(o, version)) != MOTE_OK)
		return err;
	build_connect(c, o, version, announced_recv_max(c, o), &pkt);
	if ((err = mqtt_encoded_size(&pkt, version, &size)) != MOTE_OK)
		return err;
	if (version == MQTT_V5 && o->user_prop_count)
		users = client_user_props_size(o->user_props, o->user_prop_count);
	*tx_bytes = size + (users ? 2 * users + 6 : 0);
	return MOTE_OK;
}

static void reset_session_state(struct mote_client *c, const struct mote_connect_opts *o,
				uint8_t version, uint16_t recv_max)
{
	c->version = version;
	c->rx_len = 0;
	c->error = MOTE_OK;
	c->disconnect_reason = 0;
	c->recv_max = recv_max;
	c->keep_alive_s = o->keep_alive_s;
	c->ping_timeout_ms = o->ping_timeout_ms;
	c->ping_outstanding = false;
	c->srv_receive_max = 0xFFFFu;
	c->srv_alias_max = 0;
	c->srv_max_qos = 2;
	c->srv_retain = true;
	c->srv_max_packet = 0;
	memset(&c->wait, 0, sizeof c->wait);
	/* Aliases live for one network connection only (MQTT-3.3.2-7). */
	if (c->cfg.alias_mem)
		memset(c->cfg.alias_mem, 0, c->cfg.alias_mem_len);
}

static void set_ping_timeout(struct mote_client *c)
{
	uint32_t ka = (uint32_t)c->keep_alive_s * 1000u;

	if (!c->ping_timeout_ms)
		c->ping_timeout_ms = ka < MAX_PING_TIMEOUT_MS ? ka : MAX_PING_TIMEOUT_MS;
}

enum mote_err mote_client_connect(struct mote_client *c, const struct mote_connect_opts *o,
				  struct mote_connack_info *info, uint32_t timeout_ms)
{
	uint8_t version;
	uint16_t recv_max;
	size_t tail = 0, len = 0;
	struct mqtt_packet pkt;
	enum mote_err err;

	if (!c || !o || c->in_rx || c->wait.type)
		return MOTE_EINVAL;
	if (c->state == MOTE_CLIENT_CONNECTING || c->state == MOTE_CLIENT_CONNECTED)
		return MOTE_EINVAL;
	version = o->version ? o->version : MQTT_V5;
	if ((err = check_opts(o, version)) != MOTE_OK)
		return err;
	recv_max = announced_recv_max(c, o);
	build_connect(c, o, version, recv_max, &pkt);
	if (version == MQTT_V5 &&
	    (err = client_user_props(c, o->user_props, o->user_prop_count,
				     &pkt.u.connect.props, &tail)) != MOTE_OK)
		return err;
	/* Find out now, before any state changes, whether CONNECT fits. */
	if (tail > c->cfg.tx_cap)
		return MOTE_ENOSPC;
	if ((err = mqtt_encode(&pkt, version, c->cfg.tx_buf, c->cfg.tx_cap - tail, &len)) !=
	    MOTE_OK)
		return err;

	reset_session_state(c, o, version, recv_max);
	set_ping_timeout(c);
	c->state = MOTE_CLIENT_CONNECTING;
	c->wait.type = MQTT_CONNACK;
	c->wait.connack = info;
	if (info)
		memset(info, 0, sizeof *info);
	err = client_send_packet(c, &pkt, tail);
	if (err == MOTE_OK)
		err = client_wait(c, timeout_ms);
	if (err == MOTE_OK && c->wait.reason != 0)
		err = MOTE_EDENIED;
	memset(&c->wait, 0, sizeof c->wait);
	if (err != MOTE_OK)
		client_close(c, err, 0);
	return err;
}

/* Session resumption after a successful CONNACK: see mote_client_connect(). */
static enum mote_err resume_slots(struct mote_client *c, bool session_present)
{
	for (size_t i = 0; i < c->cfg.inflight_len; i++) {
		struct mote_inflight *s = &c->cfg.inflight[i];
		uint16_t id = s->packet_id;
		enum mote_err err;

		if (s->state == SLOT_FREE)
			continue;
		if (session_present && s->state == SLOT_IN_PUBREL)
			continue;
		if (session_present && s->state == SLOT_OUT_PUBCOMP) {
			err = client_send_ack(c, MQTT_PUBREL, id, MQTT_RC_SUCCESS);
			if (err != MOTE_OK)
				return err;
			continue;
		}
		bool out = s->state != SLOT_IN_PUBREL;
		s->state = SLOT_FREE;
		s->packet_id = 0;
		if (out && c->cfg.cb.on_pub_done)
			c->cfg.cb.on_pub_done(c, id, MQTT_RC_UNSPECIFIED, c->cfg.user);
	}
	return MOTE_OK;
}

static void copy_limits(struct mote_client *c, const struct mqtt_props *p)
{
	if (MQTT_HAS(p, MQTT_PROP_RECEIVE_MAX))
		c->srv_receive_max = p->receive_max;
	if (MQTT_HAS(p, MQTT_PROP_MAX_QOS))
		c->srv_max_qos = p->max_qos;
	if (MQTT_HAS(p, MQTT_PROP_RETAIN_AVAILABLE))
		c->srv_retain = p->retain_available != 0;
	if (MQTT_HAS(p, MQTT_PROP_MAX_PACKET_SIZE))
		c->srv_max_packet = p->max_packet_size;
	if (MQTT_HAS(p, MQTT_PROP_TOPIC_ALIAS_MAX))
		c->srv_alias_max = p->topic_alias_max;
	if (MQTT_HAS(p, MQTT_PROP_SERVER_KEEP_ALIVE)) {
		/* The server's keep alive wins (MQTT-3.2.2-21). */
		c->keep_alive_s = p->server_keep_alive;
		c->ping_timeout_ms = 0;
		set_ping_timeout(c);
	}
}

enum mote_err client_on_connack(struct mote_client *c, const struct mqtt_connack *ca)
{
	struct mote_connack_info *info = c->wait.connack;
	uint8_t reason = ca->reason;

	/* 0x01 is no 5.0 reason code: a 3.1.1 server refusing version 5. */
	if (c->version == MQTT_V5 && reason == MQTT311_CONNACK_BAD_VERSION)
		reason = MQTT_RC_UNSUPPORTED_VERSION;
	c->wait.done = true;
	c->wait.reason = reason;
	if (reason != 0) {
		if (info)
			info->reason = reason;
		return client_close(c, MOTE_EDENIED, 0);
	}
	c->state = MOTE_CLIENT_CONNECTED;
	if (c->version == MQTT_V5)
		copy_limits(c, &ca->props);
	if (info) {
		info->session_present = ca->session_present;
		info->reason = reason;
		info->keep_alive_s = c->keep_alive_s;
		info->server_receive_max = c->srv_receive_max;
		info->max_qos = c->srv_max_qos;
		info->retain_available = c->srv_retain;
		info->max_packet_size = c->srv_max_packet;
		info->topic_alias_max = c->srv_alias_max;
	}
	/* Keep-alive counts from CONNECT, which was the last packet sent. */
	return resume_slots(c, ca->session_present);
}

enum mote_err mote_client_disconnect(struct mote_client *c, uint8_t reason,
				     const struct mqtt_props *props)
{
	struct mqtt_packet pkt;
	enum mote_err err;

	if (!c || c->in_rx || c->wait.type)
		return MOTE_EINVAL;
	if (c->state != MOTE_CLIENT_CONNECTED)
		return client_closed_err(c);
	memset(&pkt, 0, sizeof pkt);
	pkt.type = MQTT_DISCONNECT;
	if (c->version == MQTT_V5) {
		pkt.u.disconnect.reason = reason;
		if (props)
			pkt.u.disconnect.props = *props;
	}
	err = client_send_packet(c, &pkt, 0);
	client_close(c, MOTE_ECLOSED, 0);
	return err;
}
