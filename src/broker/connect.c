/*
 * connect.c - CONNECT and DISCONNECT: authentication, client identifiers,
 * session start / resume / takeover, wills, keep alive, CONNACK.
 *
 * Order of CONNECT handling follows section 3.1.4 of MQTT 5.0: validate,
 * authenticate, then act on an existing session with the same client id
 * (take it over, or discard it for clean start), then CONNACK, then resend
 * what the resumed session had in flight.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/broker_int.h"

/* 3.1.1 has six return codes; map the 5.0 reason to the closest one. */
static uint8_t v311_code(uint8_t rc)
{
	switch (rc) {
	case MQTT_RC_SUCCESS:
		return MQTT311_CONNACK_ACCEPTED;
	case MQTT_RC_UNSUPPORTED_VERSION:
		return MQTT311_CONNACK_BAD_VERSION;
	case MQTT_RC_CLIENT_ID_INVALID:
		return MQTT311_CONNACK_ID_REJECTED;
	case MQTT_RC_SERVER_UNAVAILABLE:
	case MQTT_RC_SERVER_BUSY:
	case MQTT_RC_SERVER_SHUTTING_DOWN:
		return MQTT311_CONNACK_UNAVAILABLE;
	case MQTT_RC_BAD_USER_OR_PASSWORD:
	case MQTT_RC_BAD_AUTH_METHOD:
		return MQTT311_CONNACK_BAD_USER_OR_PASSWORD;
	default:
		return MQTT311_CONNACK_NOT_AUTHORIZED;
	}
}

/* CONNACK with a refusal, then close (no will: the session never started). */
static void refuse(struct conn *c, uint8_t rc, const char *why)
{
	struct mqtt_packet p = { .type = MQTT_CONNACK };
	conn_log_fault(c, "connect_refused", why);
	c->will_on_close = false;
	if (c->version == MQTT_V5) {
		p.u.connack.reason = rc;
		if (why) {
			p.u.connack.props.reason_string =
				(struct mqtt_str){ (const uint8_t *)why, (uint16_t)strlen(why) };
			MQTT_SET(&p.u.connack.props, MQTT_PROP_REASON_STRING);
		}
	} else {
		p.u.connack.reason = v311_code(rc);
	}
	conn_send_packet(c, &p);
	conn_close(c, -1, NULL);
}

void handle_connect_fault(struct conn *c, const struct mqtt_packet *p, const struct mqtt_fault *f)
{
	uint8_t seen = p->u.connect.version;
	if (f->reason == MQTT_RC_UNSUPPORTED_VERSION) {
		/* [MQTT-3.1.2-2] answer in a format the client can read: levels
		 * from 5 up get the 5.0 CONNACK (0x84), older ones 3.1.1's rc 1. */
		c->version = seen >= MQTT_V5 ? MQTT_V5 : MQTT_V311;
		refuse(c, MQTT_RC_UNSUPPORTED_VERSION, f->why);
		return;
	}
	if (seen == MQTT_V5) {
		c->version = MQTT_V5;
		refuse(c, f->reason, f->why);
		return;
	}
	conn_log_fault(c, "protocol_error", f->why); /* 3.1.1: close, no CONNACK */
	conn_close(c, -1, NULL);
}

static uint8_t authenticate(struct conn *c, const struct mqtt_connect *p)
{
	struct broker *b = c->b;
	if (b->hooks.authenticate) {
		struct broker_client info;
		conn_fill_client(c, &info);
		info.client_id = p->client_id.p;
		info.client_id_len = p->client_id.len;
		info.principal_out = &c->principal;
		return b->hooks.authenticate(b->hooks.ctx, &info, p);
	}
	if (!b->cfg.allow_anonymous)
		return p->has_username ? MQTT_RC_BAD_USER_OR_PASSWORD : MQTT_RC_NOT_AUTHORIZED;
	return MQTT_RC_SUCCESS;
}

/* The forwarded properties of a will, as for a PUBLISH (see msg.h). */
static struct msg *make_will(struct broker *b, const struct mqtt_connect *p, uint64_t origin)
{
	struct mqtt_publish pub = {
		.qos = p->will_qos,
		.retain = p->will_retain,
		.topic = p->will_topic,
		.props = p->will_props,
		.payload = p->will_payload,
	};
	struct msg *m = NULL;
	if (route_msg_from_publish(b, &pub, p->will_topic.p, p->will_topic.len, origin, &m) !=
	    MOTE_OK)
		return NULL;
	return m;
}

static void assign_client_id(struct broker *b, char *buf, size_t cap)
{
	/* Unique for this process: a counter mixed with the start time, so ids
	 * from an earlier run are unlikely to collide with offline sessions. */
	/* The id must live on this shard (shard.c): draw until it does, which
	 * takes nshards draws on average. */
	do {
		uint64_t x = (b->started_ms << 20) ^ ++b->auto_id_counter;
		x ^= (uint64_t)b->shard_id << 52;
		x ^= x >> 33;
		x *= 0xff51afd7ed558ccdull;
		x ^= x >> 33;
		snprintf(buf, cap, "auto-%016" PRIx64, x);
	} while (shard_of_id(b, (const uint8_t *)buf, strlen(buf)) != b->shard_id);
}

static uint16_t effective_keepalive(const struct broker *b, uint16_t asked)
{
	uint16_t cap = b->cfg.max_keepalive;
	if (cap && (asked == 0 || asked > cap))
		return cap;
	return asked;
}

void handle_connect(struct conn *c, const struct mqtt_connect *p)
{
	struct broker *b = c->b;
	char assigned[32] = "";
	const uint8_t *id = p->client_id.p;
	uint16_t id_len = p->client_id.len;

	c->version = p->version;
	if (b->shutting_down) {
		/* 0x8B is not a CONNACK reason code (3.2.2.2): say unavailable */
		refuse(c, MQTT_RC_SERVER_UNAVAILABLE, "server shutting down");
		return;
	}
	if (id_len == 0) {
		if (c->version == MQTT_V311 && !p->clean_start) {
			/* [MQTT-3.1.3-8] */
			refuse(c, MQTT_RC_CLIENT_ID_INVALID, "empty client id needs clean session");
			return;
		}
		assign_client_id(b, assigned, sizeof assigned);
		id = (const uint8_t *)assigned;
		id_len = (uint16_t)strlen(assigned);
	}
	if (MQTT_HAS(&p->props, MQTT_PROP_AUTH_METHOD)) {
		refuse(c, MQTT_RC_BAD_AUTH_METHOD, "no enhanced authentication method is offered");
		return;
	}
	if (p->will && !mqtt_topic_name_valid(p->will_topic.p, p->will_topic.len)) {
		refuse(c, MQTT_RC_TOPIC_NAME_INVALID, "invalid will topic");
		return;
	}
	if (p->will && p->will_props.payload_format == 1 &&
	    !mqtt_utf8_valid(p->will_payload.p, p->will_payload.len)) {
		refuse(c, MQTT_RC_PAYLOAD_FORMAT_INVALID, "will payload is not UTF-8");
		return;
	}
	uint16_t keepalive = effective_keepalive(b, p->keep_alive);
	if (c->version == MQTT_V311 && keepalive != p->keep_alive) {
		/* 3.1.1 cannot tell the client another keep alive. */
		refuse(c, MQTT_RC_CLIENT_ID_INVALID, "keep alive above the server maximum");
		return;
	}
	if (p->has_username) {
		c->username = malloc(p->username.len ? p->username.len : 1);
		if (!c->username) {
			conn_close(c, -1, NULL);
			return;
		}
		memcpy(c->username, p->username.p, p->username.len);
		c->username_len = p->username.len;
	}
	uint8_t rc = authenticate(c, p);
	if (rc != MQTT_RC_SUCCESS) {
		refuse(c, rc, "not authorized");
		return;
	}
	/* The will is a PUBLISH by this client, judged now, with everything
	 * known about who it is: when it fires the connection is gone. */
	if (p->will && !broker_authorize_id(b, c, id, id_len, p->will_topic.p, p->will_topic.len)) {
		refuse(c, MQTT_RC_NOT_AUTHORIZED, "will topic not authorized");
		return;
	}

	/* Session expiry in force for this connection. */
	uint32_t expiry;
	if (c->version == MQTT_V5)
		expiry = p->props.session_expiry;
	else
		expiry = p->clean_start ? 0 : SESSION_NEVER_EXPIRES;
	bool expiry_capped = false;
	if (b->cfg.max_session_expiry && expiry > b->cfg.max_session_expiry) {
		expiry = b->cfg.max_session_expiry;
		expiry_capped = c->version == MQTT_V5;
	}
	c->connect_expiry_zero = expiry == 0;

	/* An existing connection with this id is taken over [MQTT-3.1.4-3]. */
	struct session *s = session_find(b, id, id_len);
	if (s && s->conn) {
		struct conn *old = s->conn;
		conn_log_fault(old, "session_taken_over", "same client id connected again");
		conn_close(old, MQTT_RC_SESSION_TAKEN_OVER, "session taken over");
		s = session_find(b, id, id_len); /* it may have ended with that close */
	}
	if (s && p->clean_start) {
		session_destroy(s);
		s = NULL;
	}
	bool present = s != NULL;
	if (s) {
		session_cancel_will(s); /* reconnected within the will delay */
	} else if (session_create(b, id, id_len, &s) != MOTE_OK) {
		refuse(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
		return;
	}
	loop_timer_stop(b->loop, &s->expiry_timer);
	s->conn = c;
	c->session = s;
	s->version = c->version;
	s->expiry_s = expiry;
	if (b->ps && (expiry > 0 || s->persisted))
		persist_session(b, s); /* new, resumed, or its expiry changed */

	/* The client's limits. */
	c->keepalive_s = keepalive;
	c->client_receive_max = 65535;
	if (MQTT_HAS(&p->props, MQTT_PROP_RECEIVE_MAX))
		c->client_receive_max = p->props.receive_max;
	if (MQTT_HAS(&p->props, MQTT_PROP_MAX_PACKET_SIZE))
		c->client_max_packet = p->props.max_packet_size;
	if (MQTT_HAS(&p->props, MQTT_PROP_TOPIC_ALIAS_MAX))
		c->client_alias_max = p->props.topic_alias_max;
	c->window = c->client_receive_max < b->cfg.max_inflight ? c->client_receive_max
								 : b->cfg.max_inflight;
	if (c->window == 0)
		c->window = 1;
	/* The in-flight array grows on demand (deliver.c), up to the window:
	 * an idle or QoS 0 client never pays for it. */

	if (p->will) {
		struct msg *will = make_will(b, p, s->uid);
		if (!will) {
			refuse(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
			return;
		}
		session_set_will(s, will, c->version == MQTT_V5 ? p->will_props.will_delay : 0);
		persist_will(b, s);
	}

	struct mqtt_packet ack = { .type = MQTT_CONNACK };
	struct mqtt_connack *ca = &ack.u.connack;
	ca->session_present = present;
	if (c->version == MQTT_V5) {
		struct mqtt_props *pr = &ca->props;
		pr->receive_max = b->cfg.receive_max;
		MQTT_SET(pr, MQTT_PROP_RECEIVE_MAX);
		pr->max_packet_size = b->cfg.max_packet_size;
		MQTT_SET(pr, MQTT_PROP_MAX_PACKET_SIZE);
		pr->topic_alias_max = b->cfg.topic_alias_max;
		if (pr->topic_alias_max)
			MQTT_SET(pr, MQTT_PROP_TOPIC_ALIAS_MAX);
		pr->retain_available = 1;
		MQTT_SET(pr, MQTT_PROP_RETAIN_AVAILABLE);
		pr->wildcard_sub_available = 1;
		MQTT_SET(pr, MQTT_PROP_WILDCARD_SUB_AVAILABLE);
		pr->sub_id_available = 1;
		MQTT_SET(pr, MQTT_PROP_SUB_ID_AVAILABLE);
		pr->shared_sub_available = 1;
		MQTT_SET(pr, MQTT_PROP_SHARED_SUB_AVAILABLE);
		if (assigned[0]) {
			pr->assigned_client_id = (struct mqtt_str){ id, id_len };
			MQTT_SET(pr, MQTT_PROP_ASSIGNED_CLIENT_ID);
		}
		if (keepalive != p->keep_alive) {
			pr->server_keep_alive = keepalive;
			MQTT_SET(pr, MQTT_PROP_SERVER_KEEP_ALIVE);
		}
		if (expiry_capped) {
			pr->session_expiry = expiry;
			MQTT_SET(pr, MQTT_PROP_SESSION_EXPIRY);
		}
	}
	c->state = CONN_ACTIVE;
	if (conn_send_packet(c, &ack) != MOTE_OK)
		return;
	STAT_ADD(b, clients_connected, 1);
	conn_start_keepalive(c);

	char idq[96], peer[NET_PEER_TEXT], cert[160] = "";
	const struct net_peer_cert *pc =
		c->stream.ops->peer_cert ? c->stream.ops->peer_cert(&c->stream) : NULL;
	if (pc) {
		char cnq[96] = "\"\"";
		if (pc->cn)
			mote_log_quote(cnq, sizeof cnq, pc->cn, strlen(pc->cn));
		snprintf(cert, sizeof cert, " cert_cn=%s cert_serial=%s", cnq,
			 pc->serial ? pc->serial : "?");
	}
	MOTE_INFO("broker",
		  "event=connect peer=%s client=%s version=%u clean=%d present=%d keepalive=%u "
		  "shard=%u%s",
		  conn_peer(c, peer), mote_log_quote(idq, sizeof idq, id, id_len), c->version,
		  p->clean_start, present, keepalive, b->shard_id, cert);
	if (b->hooks.on_connect) {
		struct broker_client info;
		conn_fill_client(c, &info);
		b->hooks.on_connect(b->hooks.ctx, &info);
	}
	if (present)
		deliver_resume(s);
}

void handle_disconnect(struct conn *c, const struct mqtt_reason_only *d)
{
	struct session *s = c->session;
	if (c->version == MQTT_V5 && MQTT_HAS(&d->props, MQTT_PROP_SESSION_EXPIRY)) {
		if (c->connect_expiry_zero && d->props.session_expiry != 0) {
			/* [MQTT-3.14.2-2] */
			struct mqtt_fault f = { MQTT_RC_PROTOCOL_ERROR,
						"session expiry set at DISCONNECT after 0 at CONNECT" };
			conn_log_fault(c, "protocol_error", f.why);
			conn_close(c, f.reason, f.why);
			return;
		}
		uint32_t e = d->props.session_expiry;
		if (c->b->cfg.max_session_expiry && e > c->b->cfg.max_session_expiry)
			e = c->b->cfg.max_session_expiry;
		s->expiry_s = e;
	}
	/* [MQTT-3.14.4-3] a normal DISCONNECT discards the will; 0x04 keeps it */
	c->will_on_close = c->version == MQTT_V5 && d->reason == MQTT_RC_DISCONNECT_WITH_WILL;
	conn_close(c, -1, NULL);
}
