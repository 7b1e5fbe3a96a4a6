/*
 * test_sdk_client.c - the SDK client against a scripted in-memory broker.
 *
 * The fake transport decodes what the client sends with the codec (as a
 * server would), records every packet, and answers from a script: CONNACK
 * with chosen reason and properties, PUBACK/PUBREC/PUBCOMP with chosen
 * reasons, SUBACK/UNSUBACK with chosen codes, PINGRESP. Tests also push
 * packets or raw bytes of their own. The clock is fake: a recv that finds
 * nothing advances it by the whole timeout, so keep-alive runs in no time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sdk/mote_client.h"

/* ---- the fake broker --------------------------------------------------- */

#define MAX_SEEN 128

struct fake {
	uint8_t version;
	uint32_t now;
	/* server -> client */
	uint8_t in[32768];
	size_t in_len, in_off;
	size_t recv_chunk;        /* 0: everything available */
	enum mote_err recv_fail;  /* returned once the input is drained */
	/* client -> server */
	uint8_t out[32768];
	size_t out_len, out_off;
	size_t send_chunk;        /* 0: everything */
	struct mqtt_packet seen[MAX_SEEN]; /* views into out[], which only grows */
	size_t nseen;
	enum mote_err decode_err; /* the client sent something undecodable */
	/* script */
	bool connack;
	uint8_t connack_reason;
	bool session_present;
	struct mqtt_props connack_props;
	const uint8_t *connack_raw;
	size_t connack_raw_len;
	bool acks;
	bool pubcomp;
	uint8_t puback_reason, pubrec_reason, pubcomp_reason;
	bool subacks;
	uint8_t suback_reasons[8];
	size_t suback_n;          /* 0: grant what was asked */
	uint8_t unsuback_reasons[8];
	bool pingresp;
};

static void push_raw(struct fake *f, const void *p, size_t n)
{
	assert_true(f->in_len + n <= sizeof f->in);
	memcpy(f->in + f->in_len, p, n);
	f->in_len += n;
}

static void push(struct fake *f, const struct mqtt_packet *pkt)
{
	size_t n = 0;
	assert_int_equal(mqtt_encode(pkt, f->version, f->in + f->in_len, sizeof f->in - f->in_len,
				     &n),
			 MOTE_OK);
	f->in_len += n;
}

static void push_ack(struct fake *f, enum mqtt_type type, uint16_t id, uint8_t reason)
{
	struct mqtt_packet p;
	memset(&p, 0, sizeof p);
	p.type = type;
	p.u.ack.packet_id = id;
	p.u.ack.reason = reason;
	push(f, &p);
}

static void push_publish(struct fake *f, const char *topic, const char *payload, uint8_t qos,
			 uint16_t id, bool dup)
{
	struct mqtt_packet p;
	memset(&p, 0, sizeof p);
	p.type = MQTT_PUBLISH;
	p.u.publish.qos = qos;
	p.u.publish.dup = dup;
	p.u.publish.packet_id = id;
	p.u.publish.topic.p = (const uint8_t *)topic;
	p.u.publish.topic.len = (uint16_t)strlen(topic);
	p.u.publish.payload.p = (const uint8_t *)payload;
	p.u.publish.payload.len = (uint32_t)strlen(payload);
	push(f, &p);
}

static void respond(struct fake *f, const struct mqtt_packet *pkt)
{
	struct mqtt_packet r;
	memset(&r, 0, sizeof r);
	switch (pkt->type) {
	case MQTT_CONNECT:
		if (f->connack_raw) {
			push_raw(f, f->connack_raw, f->connack_raw_len);
		} else if (f->connack) {
			r.type = MQTT_CONNACK;
			r.u.connack.reason = f->connack_reason;
			r.u.connack.session_present = f->session_present;
			r.u.connack.props = f->connack_props;
			push(f, &r);
		}
		break;
	case MQTT_PUBLISH:
		if (f->acks && pkt->u.publish.qos == 1)
			push_ack(f, MQTT_PUBACK, pkt->u.publish.packet_id, f->puback_reason);
		if (f->acks && pkt->u.publish.qos == 2)
			push_ack(f, MQTT_PUBREC, pkt->u.publish.packet_id, f->pubrec_reason);
		break;
	case MQTT_PUBREL:
		if (f->acks && f->pubcomp)
			push_ack(f, MQTT_PUBCOMP, pkt->u.ack.packet_id, f->pubcomp_reason);
		break;
	case MQTT_SUBSCRIBE: {
		uint8_t granted[8];
		struct mqtt_topic_iter it;
		struct mqtt_sub_entry e;
		uint32_t n = 0;
		if (!f->subacks)
			break;
		mqtt_subscribe_iter(&it, &pkt->u.subscribe);
		while (mqtt_topics_next(&it, &e) && n < 8)
			granted[n++] = e.opts.qos;
		r.type = MQTT_SUBACK;
		r.u.suback.packet_id = pkt->u.subscribe.packet_id;
		r.u.suback.count = f->suback_n ? (uint32_t)f->suback_n : n;
		r.u.suback.reasons = f->suback_n ? f->suback_reasons : granted;
		push(f, &r);
		break;
	}
	case MQTT_UNSUBSCRIBE:
		if (!f->subacks)
			break;
		r.type = MQTT_UNSUBACK;
		r.u.suback.packet_id = pkt->u.unsubscribe.packet_id;
		r.u.suback.count = f->version == MQTT_V5 ? pkt->u.unsubscribe.count : 0;
		r.u.suback.reasons = f->unsuback_reasons;
		push(f, &r);
		break;
	case MQTT_PINGREQ:
		if (f->pingresp) {
			r.type = MQTT_PINGRESP;
			push(f, &r);
		}
		break;
	default:
		break;
	}
}

/* Decodes every whole packet the client has sent so far. */
static void absorb(struct fake *f)
{
	for (;;) {
		struct mqtt_frame fr;
		struct mqtt_packet *pkt;
		enum mote_err err = mqtt_frame_parse(f->out + f->out_off, f->out_len - f->out_off, 0,
						     &fr, NULL);
		if (err == MOTE_EAGAIN)
			return;
		if (err != MOTE_OK) {
			f->decode_err = err;
			return;
		}
		assert_true(f->nseen < MAX_SEEN);
		pkt = &f->seen[f->nseen];
		err = mqtt_decode(f->out + f->out_off, fr.total_len, f->version, true, pkt, NULL);
		if (err != MOTE_OK) {
			f->decode_err = err;
			return;
		}
		f->out_off += fr.total_len;
		f->nseen++;
		if (pkt->type == MQTT_CONNECT)
			f->version = pkt->u.connect.version;
		respond(f, pkt);
	}
}

static enum mote_err fake_send(void *ctx, const uint8_t *buf, size_t len, uint32_t timeout_ms,
			       size_t *sent)
{
	struct fake *f = ctx;
	size_t n = f->send_chunk && f->send_chunk < len ? f->send_chunk : len;
	(void)timeout_ms;
	assert_true(f->out_len + n <= sizeof f->out);
	memcpy(f->out + f->out_len, buf, n);
	f->out_len += n;
	*sent = n;
	absorb(f);
	return MOTE_OK;
}

static enum mote_err fake_recv(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms,
			       size_t *got)
{
	struct fake *f = ctx;
	size_t n = f->in_len - f->in_off;
	*got = 0;
	if (n == 0) {
		if (f->recv_fail != MOTE_OK)
			return f->recv_fail;
		f->now += timeout_ms;
		return MOTE_ETIMEDOUT;
	}
	if (f->recv_chunk && n > f->recv_chunk)
		n = f->recv_chunk;
	if (n > cap)
		n = cap;
	memcpy(buf, f->in + f->in_off, n);
	f->in_off += n;
	*got = n;
	return MOTE_OK;
}

static uint32_t fake_now(void *ctx)
{
	return ((struct fake *)ctx)->now;
}

/* The type and packet id of seen packet i. */
static enum mqtt_type seen_type(const struct fake *f, size_t i)
{
	assert_true(i < f->nseen);
	return f->seen[i].type;
}

static const struct mqtt_packet *last_seen(const struct fake *f)
{
	assert_true(f->nseen > 0);
	return &f->seen[f->nseen - 1];
}

static size_t count_seen(const struct fake *f, enum mqtt_type type)
{
	size_t n = 0;
	for (size_t i = 0; i < f->nseen; i++)
		n += f->seen[i].type == type;
	return n;
}

/* ---- a client wired to the fake ---------------------------------------- */

#define MAX_GOT 8

struct rig {
	struct fake f;
	struct mote_client c;
	struct mote_client_cfg cfg;
	uint8_t tx[1024];
	uint8_t rx[1024];
	struct mote_inflight slots[4];
	uint8_t alias[MOTE_CLIENT_ALIAS_MEM(2, 16)];
	/* what callbacks saw */
	size_t ngot;
	char got_topic[MAX_GOT][64];
	char got_payload[MAX_GOT][64];
	uint8_t got_qos[MAX_GOT];
	size_t ndone;
	uint16_t done_id[8];
	uint8_t done_reason[8];
	size_t ndisc;
	uint8_t disc_reason;
	char disc_string[32];
	bool publish_from_callback;
	enum mote_err callback_call_err;
};

static void copy_str(char *dst, size_t cap, const uint8_t *p, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, p, n);
	dst[n] = 0;
}

static void on_publish(struct mote_client *c, const struct mqtt_publish *pub, void *user)
{
	struct rig *r = user;
	assert_true(r->ngot < MAX_GOT);
	copy_str(r->got_topic[r->ngot], 64, pub->topic.p, pub->topic.len);
	copy_str(r->got_payload[r->ngot], 64, pub->payload.p, pub->payload.len);
	r->got_qos[r->ngot] = pub->qos;
	r->ngot++;
	/* Re-entering the receive path from a callback is refused... */
	r->callback_call_err = mote_client_process(c, 0);
	/* ...but publishing is allowed. */
	if (r->publish_from_callback) {
		struct mote_publish p = { .topic = "echo", .payload = "e", .payload_len = 1 };
		assert_int_equal(mote_client_publish_start(c, &p, NULL), MOTE_OK);
	}
}

static void on_pub_done(struct mote_client *c, uint16_t id, uint8_t reason, void *user)
{
	struct rig *r = user;
	(void)c;
	assert_true(r->ndone < 8);
	r->done_id[r->ndone] = id;
	r->done_reason[r->ndone] = reason;
	r->ndone++;
}

static void on_disconnect(struct mote_client *c, const struct mqtt_reason_only *d, void *user)
{
	struct rig *r = user;
	(void)c;
	r->ndisc++;
	r->disc_reason = d->reason;
	copy_str(r->disc_string, sizeof r->disc_string, d->props.reason_string.p,
		 d->props.reason_string.len);
}

static struct rig *rig_new(void)
{
	struct rig *r = calloc(1, sizeof *r);
	assert_non_null(r);
	r->f.connack = true;
	r->f.acks = true;
	r->f.pubcomp = true;
	r->f.subacks = true;
	r->f.pingresp = true;
	r->f.now = 1000;
	r->cfg.transport.ctx = &r->f;
	r->cfg.transport.send = fake_send;
	r->cfg.transport.recv = fake_recv;
	r->cfg.clock.ctx = &r->f;
	r->cfg.clock.now_ms = fake_now;
	r->cfg.tx_buf = r->tx;
	r->cfg.tx_cap = sizeof r->tx;
	r->cfg.rx_buf = r->rx;
	r->cfg.rx_cap = sizeof r->rx;
	r->cfg.inflight = r->slots;
	r->cfg.inflight_len = 4;
	r->cfg.alias_mem = r->alias;
	r->cfg.alias_mem_len = sizeof r->alias;
	r->cfg.alias_max = 2;
	r->cfg.cb.on_publish = on_publish;
	r->cfg.cb.on_pub_done = on_pub_done;
	r->cfg.cb.on_disconnect = on_disconnect;
	r->cfg.user = r;
	return r;
}

static void rig_init(struct rig *r)
{
	assert_int_equal(mote_client_init(&r->c, &r->cfg), MOTE_OK);
}

static enum mote_err rig_connect(struct rig *r, uint8_t version)
{
	struct mote_connect_opts o = { .version = version, .client_id = "dev1",
				       .clean_start = true, .keep_alive_s = 60 };
	return mote_client_connect(&r->c, &o, NULL, 5000);
}

/* A connected client on a fresh rig. */
static struct rig *connected(uint8_t version)
{
	struct rig *r = rig_new();
	rig_init(r);
	assert_int_equal(rig_connect(r, version), MOTE_OK);
	assert_int_equal(mote_client_state(&r->c), MOTE_CLIENT_CONNECTED);
	return r;
}

static bool str_is(struct mqtt_str s, const char *want)
{
	return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

static bool bin_is(struct mqtt_bin b, const char *want)
{
	return b.len == strlen(want) && (b.len == 0 || memcmp(b.p, want, b.len) == 0);
}

/* ---- connect ----------------------------------------------------------- */

static void connect_v5_sends_options_and_reads_limits(void **state)
{
	(void)state;
	struct rig *r = rig_new();
	struct mote_connack_info info;
	struct mqtt_user_prop up = { { (const uint8_t *)"site", 4 }, { (const uint8_t *)"lab", 3 } };
	struct mote_will will = { .topic = "dev/1/status", .payload = "gone", .payload_len = 4,
				  .qos = 1, .retain = true };
	struct mote_connect_opts o = {
		.version = MQTT_V5, .client_id = "dev1", .clean_start = true, .keep_alive_s = 30,
		.username = "alice", .password = "s3cret", .password_len = 6, .will = &will,
		.session_expiry = 600, .user_props = &up, .user_prop_count = 1,
	};
	struct mqtt_props *cp = &r->f.connack_props;

	MQTT_SET(cp, MQTT_PROP_RECEIVE_MAX);
	cp->receive_max = 5;
	MQTT_SET(cp, MQTT_PROP_MAX_QOS);
	cp->max_qos = 1;
	MQTT_SET(cp, MQTT_PROP_RETAIN_AVAILABLE);
	cp->retain_available = 0;
	MQTT_SET(cp, MQTT_PROP_MAX_PACKET_SIZE);
	cp->max_packet_size = 200;
	MQTT_SET(cp, MQTT_PROP_TOPIC_ALIAS_MAX);
	cp->topic_alias_max = 3;
	MQTT_SET(cp, MQTT_PROP_SERVER_KEEP_ALIVE);
	cp->server_keep_alive = 20;
	r->f.session_present = false;
	rig_init(r);

	assert_int_equal(mote_client_connect(&r->c, &o, &info, 5000), MOTE_OK);
	assert_int_equal(mote_client_state(&r->c), MOTE_CLIENT_CONNECTED);
	assert_int_equal(r->f.nseen, 1);
	assert_int_equal(seen_type(&r->f, 0), MQTT_CONNECT);
	const struct mqtt_connect *cn = &r->f.seen[0].u.connect;
	assert_int_equal(cn->version, MQTT_V5);
	assert_true(str_is(cn->client_id, "dev1"));
	assert_true(cn->clean_start);
	assert_int_equal(cn->keep_alive, 30);
	assert_true(cn->has_username && str_is(cn->username, "alice"));
	assert_true(cn->has_password && bin_is(cn->password, "s3cret"));
	assert_true(cn->will && cn->will_retain);
	assert_int_equal(cn->will_qos, 1);
	assert_true(str_is(cn->will_topic, "dev/1/status"));
	assert_true(bin_is(cn->will_payload, "gone"));
	assert_true(MQTT_HAS(&cn->props, MQTT_PROP_SESSION_EXPIRY));
	assert_int_equal(cn->props.session_expiry, 600);
	assert_int_equal(cn->props.receive_max, 4);          /* inflight_len */
	assert_int_equal(cn->props.max_packet_size, 1024);   /* rx_cap */
	assert_int_equal(cn->props.topic_alias_max, 2);      /* alias_max */
	assert_int_equal(cn->props.user_count, 1);
	assert_true(str_is(cn->props.user_first.key, "site"));
	assert_true(str_is(cn->props.user_first.val, "lab"));

	assert_false(info.session_present);
	assert_int_equal(info.reason, 0);
	assert_int_equal(info.keep_alive_s, 20);
	assert_int_equal(info.server_receive_max, 5);
	assert_int_equal(info.max_qos, 1);
	assert_false(info.retain_available);
	assert_int_equal(info.max_packet_size, 200);
	assert_int_equal(info.topic_alias_max, 3);

	/* The server's limits are enforced before anything is sent. */
	size_t before = r->f.nseen;
	struct mote_publish p = { .topic = "t", .payload = "x", .payload_len = 1, .qos = 2 };
	assert_int_equal(mote_client_publish_start(&r->c, &p, NULL), MOTE_EINVAL);
	p.qos = 0;
	p.retain = true;
	assert_int_equal(mote_client_publish_start(&r->c, &p, NULL), MOTE_EINVAL);
	char big[300];
	memset(big, 'b', sizeof big);
	p.retain = false;
	p.payload = big;
	p.payload_len = sizeof big;
	assert_int_equal(mote_client_publish_start(&r->c, &p, NULL), MOTE_ETOOBIG);
	assert_int_equal(r->f.nseen, before);
	assert_int_equal(mote_client_state(&r->c), MOTE_CLIENT_CONNECTED);
	free(r);
}

static void connect_v311(void **state)
{
	(void)state;
	struct rig *r = rig_new();
	struct mote_connack_info info;
	struct mote_connect_opts o = { .version = MQTT_V311, .client_id = "old", .keep_alive_s = 5,
				       .username = "u" };

	r->f.session_present = true;
	rig_init(r);
	assert_int_equal(mote_client_connect(&r->c, &o, &info, 5000), MOTE_OK);
	const struct mqtt_connect *cn = &r->f.seen[0].u.connect;
	assert_int_equal(cn->version, MQTT_V311);
	assert_false(cn->clean_start);
	assert_true(str_is(cn->client_id, "old"));
	assert_true(cn->has_username);
	assert_false(cn->has_password);
	assert_true(info.session_present);
	assert_int_equal(info.keep_alive_s, 5);
	free(r);
}

static void connect_refused_and_bad_options(void **state)
{
	(void)state;
	struct rig *r = rig_new();
	struct mote_connack_info info;
	struct mote_connect_opts o = { .version = MQTT_V5, .client_id = "x" };

	r->f.connack_reason = MQTT_RC_NOT_AUTHORIZED;
	rig_init(r);
	assert_int_equal(mote_client_connect(&r->c, &o, &info, 5000), MOTE_EDENIED);
	assert_int_equal(info.reason, MQTT_RC_NOT_AUTHORIZED);
	assert_int_equal(mote_client_state(&r->c), MOTE_CLIENT_CLOSED);
	assert_int_equal(mote_client_error(&r->c), MOTE_EDENIED);
	struct mote_publish p = { .topic = "t" };
	assert_int_equal(mote_client_publish_start(&r->c, &p, NULL), MOTE_EDENIED);

	/* 3.1.1 return codes come back the same way. */
	o.version = MQTT_V311;
	r->f.connack_reason = MQTT311_CONNACK_BAD_USER_OR_PASSWORD;
	assert_int_equal(mote_client_connect(&r->c, &o, &info, 5000), MOTE_EDENIED);
	assert_int_equal(info.reason, MQTT311_CONNACK_BAD_USER_OR_PASSWORD);

	/* Options the protocol cannot carry are refused before sending. */
	size_t sent = r->f.out_len;
	o.password = "p";
	o.password_len = 1;
	assert_int_equal(mote_client_connect(&r->c, &o, &info, 5000), MOTE_EINVAL);
	struct mote_will w = { .topic = "bad/+/will" };
	o.password = NULL;
	o.will = &w;
	assert_int_equal(mote_client_connect(&r->c, &o, &info, 5000), MOTE_EINVAL);
	assert_int_equal(r->f.out_len, sent);
	free(r);
}

static void connect_v5_to_a_311_server(void **state)
{
	(void)state;
	static const uint8_t v311_refusal[] = { 0x20, 0x02, 0x00, 0x01 };
	struct rig *r = rig_new();
	struct mote_connack_info info;
	struct mote_connect_opts o = { .version = MQTT_V5, .client_id = "x" };

	r->f.connack_raw = v311_refusal;
	r->f.connack_raw_len = sizeof v311_refusal;
	rig_init(r);
	assert_int_equal(mote_client_connect(&r->c, &o, &info, 5000), MOTE_EDENIED);
	assert_int_equal(info.reason, MQTT_RC_UNSUPPORTED_VERSION);
	free(r);
}

static void connect_times_out(void **state)
{
	(void)state;
	struct rig *r = rig_new();
	r->f.connack = false;
	rig_init(r);
	uint32_t t0 = r->f.now;
	assert_int_equal(rig_connect(r, MQTT_V5), MOTE_ETIMEDOUT);
	assert_int_equal(r->f.now - t0, 5000);
	assert_int_equal(mote_client_state(&r->c), MOTE_CLIENT_CLOSED);
	free(r);
}

/* ---- outgoing PUBLISH -------------------------------------------------- */

static void publish_qos0(void **state)
{
	(void)state;
	struct rig *r = connected(MQTT_V5);
	struct mote_publish p = { .topic = "dev/1/telemetry", .payload = "{\"t\":21.5}",
				  .payload_len = 10, .retain = true };
	uint8_t reason = 0xEE;

	assert_int_equal(mote_client_publish(&r->c, &p, &reason, 1000), MOTE_OK);
	assert_int_equal(reason, 0);
	const struct mqtt_publish *pub = &last_seen(&r->f)->u.publish;
	assert_int_equal(last_seen(&r->f)->type, MQTT_PUBLISH);
	assert_int_equal(pub->qos, 0);
	assert_true(pub->retain);
	assert_int_equal(pub->packet_id, 0);
	assert_true(str_is(pub->topic, "dev/1/telemetry"));
	assert_true(bin_is(pub->payload, "{\"t\":21.5}"));
	assert_int_equal(mote_client_inflight(&r->c), 0);
	free(r);
}

static void publish_qos1_waits_for_puback(void **state)
{
	(void)state;
	struct rig *r = connected(MQTT_V5);
	struct mqtt_user_prop up[2] = {
		{ { (const uint8_t *)"a", 1 }, { (const uint8_t *)"1", 1 } },
		{ { (const uint8_t *)"b", 1 }, { (const uint8_t *)"22", 2 } },
	};
	struct mqtt_props props;
	memset(&props, 0, sizeof props);
	MQTT_SET(&props, MQTT_PROP_CONTENT_TYPE);
	props.content_type.p = (const uint8_t *)"text/plain";
	props.content_type.len = 10;
	struct mote_publish p = { .topic = "q/1", .payload = "hello", .payload_len = 5, .qos = 1,
				  .props = &props, .user_props = up, .user_prop_count = 2 };
	uint8_t reason = 0xEE;

	r->f.puback_reason = MQTT_RC_NO_MATCHING_SUBSCRIBERS;
	assert_int_equal(mote_client_publish(&r->c, &p, &reason, 1000), MOTE_OK);
	assert_int_equal(reason, MQTT_RC_NO_MATCHING_SUBSCRIBERS);
	const struct mqtt_publish *pub = &last_seen(&r->f)->u.publish;
	assert_int_equal(pub->qos, 1);
	assert_int_not_equal(pub->packet_id, 0);
	assert_true(bin_is(pub->payload, "hello"));
	assert_true(str_is(pub->props.content_type, "text/plain"));
	assert_int_equal(pub->props.user_count, 2);
	assert_true(str_is(pub->props.user_first.key, "a"));
	assert_int_equal(r->ndone, 1);
	assert_int_equal(r->done_id[0], pub->packet_id);
	assert_int_equal(r->done_reason[0], MQTT_RC_NO_MATCHING_SUBSCRIBERS);
	assert_int_equal(mote_client_inflight(&r->c), 0);

	/* Both user_props and raw_extra: refused. */
	uint8_t raw[8];
	props.raw_extra.p = raw;
	props.raw_extra.len = 1;
	assert_int_equal(mote_client_publish(&r->c, &p, &reason, 1000), MOTE_EINVAL);
	free(r);
}

static void publish_qos2_full_flow(void **state)
{
	(void)state;
	struct rig *r = connected(MQTT_V5);
	struct mote_publish p = { .topic = "q/2", .payload = "exactly", .payload_len = 7,
				  .qos = 2 };
	uint8_t reason = 0xEE;
	size_t first = r->f.nseen;

	assert_int_equal(mote_client_publish(&r->c, &p, &reason, 1000), MOTE_OK);
	assert_int_equal(reason, 0);
	assert_int_equal(r->f.nseen, first + 2);
	assert_int_equal(seen_type(&r->f, first), MQTT_PUBLISH);
	assert_int_equal(seen_type(&r->f, first + 1), MQTT_PUBREL);
	uint16_t id = r->f.seen[first].u.publish.packet_id;
	assert_int_equal(r->f.seen[first + 1].u.ack.packet_id, id);
	assert_int_equal(mote_client_inflight(&r->c), 0);

	/* The next exchange takes another identifier. */
	assert_int_equal(mote_client_publish(&r->c, &p, &reason, 1000), MOTE_OK);
	assert_int_not_equal(r->f.seen[first + 2].u.publish.packet_id, id);
	free(r);
}

static void publish_qos2_refused_by_pubrec(void **state)
{
	(void)state;
	struct rig *r = connected(MQTT_V5);
	struct mote_publish p = { .topic = "q/2", .payload = "x", .payload_len = 1, .qos = 2 };
	uint8_t reason = 0;

	r->f.pubrec_reason = MQTT_RC_NOT_AUTHORIZED;
	assert_int_equal(mote_client_publish(&r->c, &p, &reason, 1000), MOTE_OK);
	assert_int_equal(reason, MQTT_RC_NOT_AUTHORIZED);
	assert_int_equal(count_seen(&r->f, MQTT_PUBREL), 0);
	assert_int_equal(mote_client_inflight(&r->c), 0);
	free(r);
}

static void publish_over_a_trickling_transport(void **state)
{
	(void)state;
	struct rig *r = rig_new();
	r->f.send_chunk = 3;
	r->f.recv_chunk = 1;
	rig_init(r);
	assert_int_equal(rig_connect(r, MQTT_V5), MOTE_OK);
	struct mote_publish p = { .topic = "slow/link", .payload = "one byte at a time",
				  .payload_len = 18, .qos = 2 };
	uint8_t reason = 0xEE;
	assert_int_equal(mote_client_publish(&r->c, &p, &reason, 1000), MOTE_OK);
	assert_int_equal(reason, 0);
	assert_int_equal(r->f.decode_err, MOTE_OK);
	assert_true(bin_is(r->f.seen[1].u.publish.payload, "one byte at a time"));
	free(r);
}

static void publish_timeout_then_late_ack(void **state)
{
	(void)state;
	struct rig *r = connected(MQTT_V5);
	struct mote_publish p = { .topic = "t", .payload = "x", .payload_len = 1, .qos = 1 };

	r->f.acks = false;
	assert_int_equal(mote_client_publish(&r->c, &p, NULL, 300), MOTE_ETIMEDOUT);
	assert_int_equal(mote_client_inflight(&r->c), 1);
	uint16_t id = last_seen(&r->f)->u.publish.packet_id;
	push_ack(&r->f, MQTT_PUBACK, id, 0);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_OK);
	assert_int_equal(mote_client_inflight(&r->c), 0);
	assert_int_equal(r->ndone, 1);
	assert_int_equal(r->done_id[0], id);
	free(r);
}

static void inflight_window_is_bounded(void **state)
{
	(void)state;
	struct rig *r = rig_new();
	uint16_t ids[4];
	struct mote_publish p = { .topic = "t", .payload = "x", .payload_len = 1, .qos = 1 };

	r->f.acks = false;
	rig_init(r);
	assert_int_equal(rig_connect(r, MQTT_V5), MOTE_OK);
	for (int i = 0; i < 4; i++)
		assert_int_equal(mote_client_publish_start(&r->c, &p, &ids[i]), MOTE_OK);
	assert_int_equal(mote_client_publish_start(&r->c, &p, NULL), MOTE_EFULL);
	/* Identifiers are distinct while in flight. */
	for (int i = 0; i < 4; i++)
		for (int j = i + 1; j < 4; j++)
			assert_int_not_equal(ids[i], ids[j]);
	push_ack(&r->f, MQTT_PUBACK, ids[2], 0);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_OK);
	assert_int_equal(r->ndone, 1);
	assert_int_equal(r->done_id[0], ids[2]);
	assert_int_equal(mote_client_publish_start(&r->c, &p, NULL), MOTE_OK);
	free(r);

	/* The server's Receive Maximum applies too. */
	r = rig_new();
	r->f.acks = false;
	MQTT_SET(&r->f.connack_props, MQTT_PROP_RECEIVE_MAX);
	r->f.connack_props.receive_max = 1;
	rig_init(r);
	assert_int_equal(rig_connect(r, MQTT_V5), MOTE_OK);
	assert_int_equal(mote_client_publish_start(&r->c, &p, NULL), MOTE_OK);
	assert_int_equal(mote_client_publish_start(&r->c, &p, NULL), MOTE_EFULL);
	free(r);
}

/* ---- incoming PUBLISH -------------------------------------------------- */

static void inbound_qos0_and_qos1(void **state)
{
	(void)state;
	struct rig *r = connected(MQTT_V311);

	push_publish(&r->f, "a/b", "zero", 0, 0, false);
	push_publish(&r->f, "a/c", "one", 1, 42, false);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_OK);
	assert_int_equal(r->ngot, 2);
	assert_string_equal(r->got_topic[0], "a/b");
	assert_string_equal(r->got_payload[0], "zero");
	assert_string_equal(r->got_topic[1], "a/c");
	assert_string_equal(r->got_payload[1], "one");
	assert_int_equal(r->got_qos[1], 1);
	assert_int_equal(last_seen(&r->f)->type, MQTT_PUBACK);
	assert_int_equal(last_seen(&r->f)->u.ack.packet_id, 42);
	assert_int_equal(count_seen(&r->f, MQTT_PUBACK), 1);
	/* The callback could not re-enter the client. */
	assert_int_equal(r->callback_call_err, MOTE_EINVAL);
	free(r);
}

static void inbound_qos2_delivered_once(void **state)
{
	(void)state;
	struct rig *r = connected(MQTT_V5);

	push_publish(&r->f, "cmd/1", "reboot", 2, 7, false);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_OK);
	assert_int_equal(r->ngot, 1);
	assert_string_equal(r->got_payload[0], "reboot");
	assert_int_equal(last_seen(&r->f)->type, MQTT_PUBREC);
	assert_int_equal(last_seen(&r->f)->u.ack.packet_id, 7);
	assert_int_equal(mote_client_inflight(&r->c), 1);

	/* The server did not see the PUBREC and sends the message again. */
	push_publish(&r->f, "cmd/1", "reboot", 2, 7, true);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_OK);
	assert_int_equal(r->ngot, 1);
	assert_int_equal(count_seen(&r->f, MQTT_PUBREC), 2);

	push_ack(&r->f, MQTT_PUBREL, 7, 0);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_OK);
	assert_int_equal(last_seen(&r->f)->type, MQTT_PUBCOMP);
	assert_int_equal(last_seen(&r->f)->u.ack.packet_id, 7);
	assert_int_equal(last_seen(&r->f)->u.ack.reason, 0);
	assert_int_equal(mote_client_inflight(&r->c), 0);

	/* Identifier 7 is free again: a new message with it is new. */
	push_publish(&r->f, "cmd/1", "again", 2, 7, false);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_OK);
	assert_int_equal(r->ngot, 2);

	/* A PUBREL for an unknown identifier is answered "not found". */
	push_ack(&r->f, MQTT_PUBREL, 99, 0);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_OK);
	assert_int_equal(last_seen(&r->f)->u.ack.reason, MQTT_RC_PACKET_ID_NOT_FOUND);
	free(r);
}

static void inbound_qos2_over_receive_maximum(void **state)
{
	(void)state;
	struct rig *r = connected(MQTT_V5); /* announced receive maximum 4 */

	for (uint16_t id = 1; id <= 5; id++)
		push_publish(&r->f, "flood", "x", 2, id, false);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_EPROTO);
	assert_int_equal(r->ngot, 4);
	assert_int_equal(last_seen(&r->f)->type, MQTT_DISCONNECT);
	assert_int_equal(last_seen(&r->f)->u.disconnect.reason, MQTT_RC_RECEIVE_MAX_EXCEEDED);
	free(r);
}

static void publish_from_callback(void **state)
{
	(void)state;
	struct rig *r = connected(MQTT_V5);

	r->publish_from_callback = true;
	push_publish(&r->f, "ping", "p", 1, 3, false);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_OK);
	assert_int_equal(r->ngot, 1);
	/* The echo went out inside the callback, the PUBACK after it. */
	size_t n = r->f.nseen;
	assert_int_equal(seen_type(&r->f, n - 2), MQTT_PUBLISH);
	assert_true(str_is(r->f.seen[n - 2].u.publish.topic, "echo"));
	assert_int_equal(seen_type(&r->f, n - 1), MQTT_PUBACK);
	free(r);
}

static void topic_alias_from_server(void **state)
{
	(void)state;
	struct rig *r = connected(MQTT_V5);
	struct mqtt_packet p;

	memset(&p, 0, sizeof p);
	p.type = MQTT_PUBLISH;
	p.u.publish.topic.p = (const uint8_t *)"dev/42/temp";
	p.u.publish.topic.len = 11;
	p.u.publish.payload.p = (const uint8_t *)"21";
	p.u.publish.payload.len = 2;
	MQTT_SET(&p.u.publish.props, MQTT_PROP_TOPIC_ALIAS);
	p.u.publish.props.topic_alias = 1;
	push(&r->f, &p);
	/* Same alias, no topic: the client fills it in. */
	p.u.publish.topic.p = NULL;
	p.u.publish.topic.len = 0;
	p.u.publish.payload.p = (const uint8_t *)"22";
	push(&r->f, &p);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_OK);
	assert_int_equal(r->ngot, 2);
	assert_string_equal(r->got_topic[0], "dev/42/temp");
	assert_string_equal(r->got_topic[1], "dev/42/temp");
	assert_string_equal(r->got_payload[1], "22");

	/* An alias never set is a protocol error. */
	p.u.publish.props.topic_alias = 2;
	push(&r->f, &p);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_EPROTO);
	assert_int_equal(last_seen(&r->f)->u.disconnect.reason, MQTT_RC_PROTOCOL_ERROR);
	free(r);

	/* An alias above the announced maximum is "topic alias invalid". */
	r = connected(MQTT_V5);
	p.u.publish.topic.p = (const uint8_t *)"x";
	p.u.publish.topic.len = 1;
	p.u.publish.props.topic_alias = 3;
	push(&r->f, &p);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_EPROTO);
	assert_int_equal(last_seen(&r->f)->type, MQTT_DISCONNECT);
	assert_int_equal(last_seen(&r->f)->u.disconnect.reason, MQTT_RC_TOPIC_ALIAS_INVALID);
	assert_int_equal(r->ngot, 0);
	free(r);

	/* A topic longer than a slot is delivered, but the alias cannot be
	 * used later. */
	r = connected(MQTT_V5);
	p.u.publish.topic.p = (const uint8_t *)"a/very/long/topic/name";
	p.u.publish.topic.len = 22;
	p.u.publish.props.topic_alias = 1;
	push(&r->f, &p);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_OK);
	assert_string_equal(r->got_topic[0], "a/very/long/topic/name");
	p.u.publish.topic.p = NULL;
	p.u.publish.topic.len = 0;
	push(&r->f, &p);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_ETOOBIG);
	assert_int_equal(r->ngot, 1);
	free(r);
}

/* ---- subscribe --------------------------------------------------------- */

static void subscribe_and_unsubscribe(void **state)
{
	(void)state;
	struct rig *r = connected(MQTT_V5);
	struct mqtt_sub_entry subs[2] = {
		{ { (const uint8_t *)"dev/+/telemetry", 15 }, { .qos = 1, .no_local = true } },
		{ { (const uint8_t *)"$twin/#", 7 }, { .qos = 2, .retain_handling = 2 } },
	};
	uint8_t reasons[2] = { 0xEE, 0xEE };

	r->f.suback_reasons[0] = 1;
	r->f.suback_reasons[1] = MQTT_RC_NOT_AUTHORIZED;
	r->f.suback_n = 2;
	assert_int_equal(mote_client_subscribe(&r->c, subs, 2, NULL, reasons, 1000), MOTE_OK);
	assert_int_equal(reasons[0], 1);
	assert_int_equal(reasons[1], MQTT_RC_NOT_AUTHORIZED);

	const struct mqtt_packet *s = last_seen(&r->f);
	struct mqtt_topic_iter it;
	struct mqtt_sub_entry e;
	assert_int_equal(s->type, MQTT_SUBSCRIBE);
	assert_int_equal(s->u.subscribe.count, 2);
	mqtt_subscribe_iter(&it, &s->u.subscribe);
	assert_true(mqtt_topics_next(&it, &e));
	assert_true(str_is(e.filter, "dev/+/telemetry"));
	assert_int_equal(e.opts.qos, 1);
	assert_true(e.opts.no_local);
	assert_true(mqtt_topics_next(&it, &e));
	assert_true(str_is(e.filter, "$twin/#"));
	assert_int_equal(e.opts.retain_handling, 2);
	assert_false(mqtt_topics_next(&it, &e));

	/* A SUBACK with the wrong number of codes is a protocol error. */
	r->f.suback_n = 1;
	assert_int_equal(mote_client_subscribe(&r->c, subs, 2, NULL, reasons, 1000), MOTE_EPROTO);
	assert_int_equal(mote_client_state(&r->c), MOTE_CLIENT_CLOSED);
	free(r);

	r = connected(MQTT_V5);
	struct mqtt_str filters[2] = { { (const uint8_t *)"a/b", 3 }, { (const uint8_t *)"c", 1 } };
	r->f.unsuback_reasons[0] = 0;
	r->f.unsuback_reasons[1] = MQTT_RC_NO_SUBSCRIPTION_EXISTED;
	assert_int_equal(mote_client_unsubscribe(&r->c, filters, 2, NULL, reasons, 1000), MOTE_OK);
	assert_int_equal(reasons[0], 0);
	assert_int_equal(reasons[1], MQTT_RC_NO_SUBSCRIPTION_EXISTED);
	assert_int_equal(last_seen(&r->f)->type, MQTT_UNSUBSCRIBE);

	/* Invalid filters never leave the client. */
	size_t n = r->f.nseen;
	struct mqtt_sub_entry bad = { { (const uint8_t *)"a/#/b", 5 }, { .qos = 0 } };
	assert_int_equal(mote_client_subscribe(&r->c, &bad, 1, NULL, reasons, 1000), MOTE_EINVAL);
	assert_int_equal(mote_client_subscribe(&r->c, subs, 0, NULL, reasons, 1000), MOTE_EINVAL);
	assert_int_equal(r->f.nseen, n);
	free(r);

	/* 3.1.1: UNSUBACK has no codes; all are reported as success. */
	r = connected(MQTT_V311);
	reasons[0] = reasons[1] = 0xEE;
	assert_int_equal(mote_client_unsubscribe(&r->c, filters, 2, NULL, reasons, 1000), MOTE_OK);
	assert_int_equal(reasons[0], 0);
	assert_int_equal(reasons[1], 0);
	free(r);
}

/* ---- keep-alive -------------------------------------------------------- */

static void keepalive_sends_pings(void **state)
{
	(void)state;
	struct rig *r = rig_new();
	struct mote_connect_opts o = { .version = MQTT_V5, .client_id = "k", .keep_alive_s = 10 };

	rig_init(r);
	assert_int_equal(mote_client_connect(&r->c, &o, NULL, 1000), MOTE_OK);
	uint32_t t0 = r->f.now;
	while (r->f.now - t0 < 25000)
		assert_int_equal(mote_client_process(&r->c, 1000), MOTE_OK);
	/* Pings at 10 s and 20 s after CONNECT, each answered. */
	assert_int_equal(count_seen(&r->f, MQTT_PINGREQ), 2);
	assert_int_equal(mote_client_state(&r->c), MOTE_CLIENT_CONNECTED);

	/* Traffic resets the timer: a publish at 25 s moves the next ping. */
	struct mote_publish p = { .topic = "t", .payload = "x", .payload_len = 1 };
	assert_int_equal(mote_client_publish(&r->c, &p, NULL, 100), MOTE_OK);
	while (r->f.now - t0 < 34000)
		assert_int_equal(mote_client_process(&r->c, 1000), MOTE_OK);
	assert_int_equal(count_seen(&r->f, MQTT_PINGREQ), 2);
	free(r);
}

static void keepalive_detects_a_dead_server(void **state)
{
	(void)state;
	struct rig *r = rig_new();
	struct mote_connect_opts o = { .version = MQTT_V311, .client_id = "k", .keep_alive_s = 5 };
	enum mote_err err = MOTE_OK;
	int rounds = 0;

	r->f.pingresp = false;
	rig_init(r);
	assert_int_equal(mote_client_connect(&r->c, &o, NULL, 1000), MOTE_OK);
	uint32_t t0 = r->f.now;
	while (err == MOTE_OK && rounds++ < 100)
		err = mote_client_process(&r->c, 1000);
	assert_int_equal(err, MOTE_ETIMEDOUT);
	/* Ping at 5 s, no answer within the 5 s ping timeout. */
	assert_int_equal(r->f.now - t0, 10000);
	assert_int_equal(count_seen(&r->f, MQTT_PINGREQ), 1);
	assert_int_equal(mote_client_state(&r->c), MOTE_CLIENT_CLOSED);
	assert_int_equal(mote_client_error(&r->c), MOTE_ETIMEDOUT);
	free(r);
}

static void late_pingresp_already_received_counts(void **state)
{
	(void)state;
	struct rig *r = rig_new();
	struct mote_connect_opts o = { .version = MQTT_V5, .client_id = "k", .keep_alive_s = 5 };
	struct mqtt_packet resp;
	int rounds = 0;

	r->f.pingresp = false;
	rig_init(r);
	assert_int_equal(mote_client_connect(&r->c, &o, NULL, 1000), MOTE_OK);
	while (count_seen(&r->f, MQTT_PINGREQ) == 0 && rounds++ < 100)
		assert_int_equal(mote_client_process(&r->c, 1000), MOTE_OK);
	/* The answer is in the socket, but the application comes back late. */
	memset(&resp, 0, sizeof resp);
	resp.type = MQTT_PINGRESP;
	push(&r->f, &resp);
	r->f.now += 7000;
	assert_int_equal(mote_client_process(&r->c, 0), MOTE_OK);
	assert_int_equal(mote_client_state(&r->c), MOTE_CLIENT_CONNECTED);
	free(r);
}

/* ---- the server ends the session --------------------------------------- */

static void server_disconnect(void **state)
{
	(void)state;
	struct rig *r = connected(MQTT_V5);
	struct mqtt_packet d;

	memset(&d, 0, sizeof d);
	d.type = MQTT_DISCONNECT;
	d.u.disconnect.reason = MQTT_RC_SERVER_SHUTTING_DOWN;
	MQTT_SET(&d.u.disconnect.props, MQTT_PROP_REASON_STRING);
	d.u.disconnect.props.reason_string.p = (const uint8_t *)"maintenance";
	d.u.disconnect.props.reason_string.len = 11;
	push(&r->f, &d);
	r->f.recv_fail = MOTE_ECLOSED;
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_ECLOSED);
	assert_int_equal(mote_client_disconnect_reason(&r->c), MQTT_RC_SERVER_SHUTTING_DOWN);
	assert_int_equal(r->ndisc, 1);
	assert_int_equal(r->disc_reason, MQTT_RC_SERVER_SHUTTING_DOWN);
	assert_string_equal(r->disc_string, "maintenance");
	assert_int_equal(mote_client_state(&r->c), MOTE_CLIENT_CLOSED);
	/* The client does not answer a DISCONNECT. */
	assert_int_equal(last_seen(&r->f)->type, MQTT_CONNECT);
	struct mote_publish p = { .topic = "t" };
	assert_int_equal(mote_client_publish_start(&r->c, &p, NULL), MOTE_ECLOSED);
	assert_int_equal(mote_client_process(&r->c, 0), MOTE_ECLOSED);
	free(r);

	/* The stream just ends. */
	r = connected(MQTT_V311);
	r->f.recv_fail = MOTE_ECLOSED;
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_ECLOSED);
	assert_int_equal(mote_client_disconnect_reason(&r->c), 0);
	free(r);
}

static void client_disconnect(void **state)
{
	(void)state;
	struct rig *r = connected(MQTT_V5);
	assert_int_equal(mote_client_disconnect(&r->c, MQTT_RC_DISCONNECT_WITH_WILL, NULL), MOTE_OK);
	assert_int_equal(last_seen(&r->f)->type, MQTT_DISCONNECT);
	assert_int_equal(last_seen(&r->f)->u.disconnect.reason, MQTT_RC_DISCONNECT_WITH_WILL);
	assert_int_equal(mote_client_state(&r->c), MOTE_CLIENT_CLOSED);
	assert_int_equal(mote_client_disconnect(&r->c, 0, NULL), MOTE_ECLOSED);
	free(r);
}

/* ---- bad input --------------------------------------------------------- */

struct bad_case {
	const char *what;
	uint8_t bytes[16];
	size_t len;
	enum mote_err want;
	uint8_t reason; /* in the client's DISCONNECT */
};

static void malformed_server_bytes_are_errors(void **state)
{
	(void)state;
	static const struct bad_case cases[] = {
		{ "varint with a fifth byte", { 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }, 6,
		  MOTE_EMALFORMED, MQTT_RC_MALFORMED },
		{ "PUBACK too short", { 0x40, 0x01, 0x00 }, 3, MOTE_EMALFORMED, MQTT_RC_MALFORMED },
		{ "PUBLISH QoS 3", { 0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01 }, 7, MOTE_EMALFORMED,
		  MQTT_RC_MALFORMED },
		{ "packet type 0", { 0x00, 0x00 }, 2, MOTE_EMALFORMED, MQTT_RC_MALFORMED },
		{ "second CONNACK", { 0x20, 0x03, 0x00, 0x00, 0x00 }, 5, MOTE_EPROTO,
		  MQTT_RC_PROTOCOL_ERROR },
		{ "SUBSCRIBE from a server", { 0x82, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, 'a' }, 8,
		  MOTE_EPROTO, MQTT_RC_PROTOCOL_ERROR },
		{ "topic with a wildcard", { 0x30, 0x05, 0x00, 0x01, '#', 0x00, 'x' }, 7, MOTE_EPROTO,
		  MQTT_RC_TOPIC_NAME_INVALID },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct rig *r = connected(MQTT_V5);
		enum mote_err err;
		push_raw(&r->f, cases[i].bytes, cases[i].len);
		err = mote_client_process(&r->c, 100);
		if (err == MOTE_OK || mote_client_state(&r->c) != MOTE_CLIENT_CLOSED)
			fail_msg("%s: accepted", cases[i].what);
		if (err != cases[i].want)
			fail_msg("%s: error %d, want %d", cases[i].what, err, cases[i].want);
		if (last_seen(&r->f)->type != MQTT_DISCONNECT)
			fail_msg("%s: no DISCONNECT", cases[i].what);
		if (last_seen(&r->f)->u.disconnect.reason != cases[i].reason)
			fail_msg("%s: reason 0x%02x, want 0x%02x", cases[i].what,
				 last_seen(&r->f)->u.disconnect.reason, cases[i].reason);
		free(r);
	}
}

static void random_bytes_never_crash(void **state)
{
	(void)state;
	uint32_t seed = 12345;
	size_t closed = 0;
	for (int round = 0; round < 300; round++) {
		struct rig *r = connected(round & 1 ? MQTT_V5 : MQTT_V311);
		uint8_t junk[64];
		for (size_t i = 0; i < sizeof junk; i++) {
			seed = seed * 1103515245u + 12345u;
			junk[i] = (uint8_t)(seed >> 16);
		}
		/* A plausible first byte makes the decoder go deeper. */
		junk[0] = (uint8_t)(0x30 | (junk[0] & 0x0F));
		junk[1] = (uint8_t)(junk[1] & 0x3F);
		push_raw(&r->f, junk, sizeof junk);
		for (int k = 0; k < 4 && mote_client_state(&r->c) == MOTE_CLIENT_CONNECTED; k++)
			(void)mote_client_process(&r->c, 10);
		closed += mote_client_state(&r->c) == MOTE_CLIENT_CLOSED;
		free(r);
	}
	/* Random bytes are almost never a valid stream. */
	assert_true(closed > 250);
}

static void small_buffers_give_enospc(void **state)
{
	(void)state;
	struct rig *r = rig_new();
	struct mote_client c;

	r->cfg.tx_cap = MOTE_CLIENT_MIN_BUF - 1;
	assert_int_equal(mote_client_init(&c, &r->cfg), MOTE_ENOSPC);
	r->cfg.tx_cap = sizeof r->tx;
	r->cfg.rx_cap = 4;
	assert_int_equal(mote_client_init(&c, &r->cfg), MOTE_ENOSPC);
	r->cfg.rx_cap = sizeof r->rx;
	r->cfg.alias_mem_len = 5; /* two aliases need at least 3 bytes each */
	assert_int_equal(mote_client_init(&c, &r->cfg), MOTE_ENOSPC);
	r->cfg.alias_mem_len = sizeof r->alias;
	r->cfg.transport.recv = NULL;
	assert_int_equal(mote_client_init(&c, &r->cfg), MOTE_EINVAL);
	r->cfg.transport.recv = fake_recv;

	/* CONNECT larger than tx: refused before sending, state unchanged. */
	r->cfg.tx_cap = 32;
	rig_init(r);
	struct mote_connect_opts o = { .version = MQTT_V5,
				       .client_id = "a-client-id-that-is-much-too-long" };
	assert_int_equal(mote_client_connect(&r->c, &o, NULL, 1000), MOTE_ENOSPC);
	assert_int_equal(r->f.out_len, 0);
	assert_int_equal(mote_client_state(&r->c), MOTE_CLIENT_IDLE);

	/* A PUBLISH head larger than tx; the payload does not count. */
	o.client_id = "c";
	assert_int_equal(mote_client_connect(&r->c, &o, NULL, 1000), MOTE_OK);
	static char payload[600];
	memset(payload, 'p', sizeof payload);
	struct mote_publish p = { .topic = "a/topic/name/that/is/far/too/long/for/tx", .payload = payload,
				  .payload_len = sizeof payload };
	assert_int_equal(mote_client_publish_start(&r->c, &p, NULL), MOTE_ENOSPC);
	p.topic = "short";
	assert_int_equal(mote_client_publish_start(&r->c, &p, NULL), MOTE_OK);
	assert_int_equal(last_seen(&r->f)->u.publish.payload.len, sizeof payload);
	free(r);

	/* A packet larger than rx: MOTE_ETOOBIG and DISCONNECT 0x95. */
	r = rig_new();
	r->cfg.rx_cap = 64;
	rig_init(r);
	assert_int_equal(rig_connect(r, MQTT_V5), MOTE_OK);
	assert_int_equal(r->f.seen[0].u.connect.props.max_packet_size, 64);
	push_publish(&r->f, "t", "0123456789012345678901234567890123456789012345678901234567890123",
		     0, 0, false);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_ETOOBIG);
	assert_int_equal(last_seen(&r->f)->u.disconnect.reason, MQTT_RC_PACKET_TOO_LARGE);
	assert_int_equal(r->ngot, 0);
	free(r);
}

static void size_helpers_match_what_tx_needs(void **state)
{
	(void)state;
	struct mote_will will = { .topic = "dev/9/status", .payload = "offline", .payload_len = 7 };
	struct mote_connect_opts o = { .version = MQTT_V5, .client_id = "dev-0009",
				       .keep_alive_s = 30, .username = "dev-0009",
				       .password = "pw", .password_len = 2, .will = &will,
				       .session_expiry = 60 };
	struct mqtt_user_prop up = { { (const uint8_t *)"fw", 2 }, { (const uint8_t *)"1.2.3", 5 } };
	size_t need = 0;

	/* CONNECT: exactly enough works, one byte less does not. */
	for (int shrink = 0; shrink <= 1; shrink++) {
		struct rig *r = rig_new();
		assert_int_equal(mote_client_init(&r->c, &r->cfg), MOTE_OK);
		assert_int_equal(mote_client_connect_size(&r->c, &o, &need), MOTE_OK);
		r->cfg.tx_cap = need - (size_t)shrink;
		rig_init(r);
		assert_int_equal(mote_client_connect(&r->c, &o, NULL, 1000),
				 shrink ? MOTE_ENOSPC : MOTE_OK);
		if (!shrink)
			assert_int_equal(r->f.out_len, need);
		free(r);
	}

	/* With user properties the answer is a bound that works. */
	o.user_props = &up;
	o.user_prop_count = 1;
	struct rig *r = rig_new();
	rig_init(r);
	assert_int_equal(mote_client_connect_size(&r->c, &o, &need), MOTE_OK);
	r->cfg.tx_cap = need;
	rig_init(r);
	assert_int_equal(mote_client_connect(&r->c, &o, NULL, 1000), MOTE_OK);
	assert_true(need - r->f.out_len <= r->f.out_len);

	/* PUBLISH head: payload sizes on both sides of a varint step. */
	static char payload[300];
	memset(payload, 'x', sizeof payload);
	struct mqtt_props props;
	memset(&props, 0, sizeof props);
	MQTT_SET(&props, MQTT_PROP_CONTENT_TYPE);
	props.content_type.p = (const uint8_t *)"text/plain";
	props.content_type.len = 10;
	size_t lens[] = { 0, 80, 100, 300 }; /* head 33 bytes: 1- and 2-byte lengths */
	for (size_t i = 0; i < 4; i++) {
		struct mote_publish p = { .topic = "dev/9/telemetry", .payload = payload,
					  .payload_len = lens[i], .qos = 1, .props = &props };
		size_t before = r->f.out_len;
		assert_int_equal(mote_client_publish_size(&r->c, &p, &need), MOTE_OK);
		assert_int_equal(mote_client_publish(&r->c, &p, NULL, 1000), MOTE_OK);
		/* The PUBACK is not counted: it came the other way. */
		assert_int_equal(r->f.out_len - before - lens[i], need);
	}
	free(r);
}

/* ---- sessions ---------------------------------------------------------- */

static void session_resume_resends_pubrel(void **state)
{
	(void)state;
	struct rig *r = rig_new();
	struct mote_connect_opts o = { .version = MQTT_V5, .client_id = "s", .clean_start = false,
				       .session_expiry = 3600 };
	struct mote_publish q2 = { .topic = "t", .payload = "2", .payload_len = 1, .qos = 2 };
	struct mote_publish q1 = { .topic = "t", .payload = "1", .payload_len = 1, .qos = 1 };
	uint16_t id2, id1;

	r->f.pubcomp = false; /* the connection drops after PUBREC */
	rig_init(r);
	assert_int_equal(mote_client_connect(&r->c, &o, NULL, 1000), MOTE_OK);
	assert_int_equal(mote_client_publish_start(&r->c, &q2, &id2), MOTE_OK);
	r->f.acks = false;
	assert_int_equal(mote_client_publish_start(&r->c, &q1, &id1), MOTE_OK);
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_OK); /* PUBREC -> PUBREL */
	assert_int_equal(last_seen(&r->f)->type, MQTT_PUBREL);
	r->f.recv_fail = MOTE_ECLOSED;
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_ECLOSED);
	assert_int_equal(mote_client_inflight(&r->c), 2);

	/* Reconnect; the server kept the session. */
	r->f.recv_fail = MOTE_OK;
	r->f.acks = true;
	r->f.pubcomp = true;
	r->f.session_present = true;
	assert_int_equal(mote_client_connect(&r->c, &o, NULL, 1000), MOTE_OK);
	/* The PUBREL went out again with the same identifier... */
	size_t n = r->f.nseen;
	assert_int_equal(seen_type(&r->f, n - 2), MQTT_CONNECT);
	assert_int_equal(seen_type(&r->f, n - 1), MQTT_PUBREL);
	assert_int_equal(r->f.seen[n - 1].u.ack.packet_id, id2);
	/* ...the QoS 1 message without a payload copy is reported lost... */
	assert_int_equal(r->ndone, 1);
	assert_int_equal(r->done_id[0], id1);
	assert_int_equal(r->done_reason[0], MQTT_RC_UNSPECIFIED);
	/* ...and the PUBCOMP completes the QoS 2 one. */
	assert_int_equal(mote_client_process(&r->c, 100), MOTE_OK);
	assert_int_equal(r->ndone, 2);
	assert_int_equal(r->done_id[1], id2);
	assert_int_equal(r->done_reason[1], 0);
	assert_int_equal(mote_client_inflight(&r->c), 0);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(connect_v5_sends_options_and_reads_limits),
		cmocka_unit_test(connect_v311),
		cmocka_unit_test(connect_refused_and_bad_options),
		cmocka_unit_test(connect_v5_to_a_311_server),
		cmocka_unit_test(connect_times_out),
		cmocka_unit_test(publish_qos0),
		cmocka_unit_test(publish_qos1_waits_for_puback),
		cmocka_unit_test(publish_qos2_full_flow),
		cmocka_unit_test(publish_qos2_refused_by_pubrec),
		cmocka_unit_test(publish_over_a_trickling_transport),
		cmocka_unit_test(publish_timeout_then_late_ack),
		cmocka_unit_test(inflight_window_is_bounded),
		cmocka_unit_test(inbound_qos0_and_qos1),
		cmocka_unit_test(inbound_qos2_delivered_once),
		cmocka_unit_test(inbound_qos2_over_receive_maximum),
		cmocka_unit_test(publish_from_callback),
		cmocka_unit_test(topic_alias_from_server),
		cmocka_unit_test(subscribe_and_unsubscribe),
		cmocka_unit_test(keepalive_sends_pings),
		cmocka_unit_test(keepalive_detects_a_dead_server),
		cmocka_unit_test(late_pingresp_already_received_counts),
		cmocka_unit_test(server_disconnect),
		cmocka_unit_test(client_disconnect),
		cmocka_unit_test(malformed_server_bytes_are_errors),
		cmocka_unit_test(random_bytes_never_crash),
		cmocka_unit_test(small_buffers_give_enospc),
		cmocka_unit_test(size_helpers_match_what_tx_needs),
		cmocka_unit_test(session_resume_resends_pubrel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
