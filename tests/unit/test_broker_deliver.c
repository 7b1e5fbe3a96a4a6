/*
 * test_broker_deliver.c - outbound delivery seen from real TCP clients:
 * the QoS 1 in-flight window with acks in any order, acks of unknown ids,
 * the queue behind a small window, redelivery after reconnect (DUP, same
 * ids, original order), and one message fanned out to subscribers that
 * each need a different PUBLISH (3.1.1, 5.0, subscription id, topic alias,
 * maximum packet size, QoS 0), twice in a row so cached heads are reused.
 *
 * The broker runs on its own loop thread; the test thread speaks MQTT over
 * blocking sockets with the codec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "broker/broker.h"
#include "broker_thread.h"

struct fixture {
	struct broker_thread bt;
	uint16_t port;
};

static int setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof f);
	mote_log_setup(MOTE_LOG_WARN, NULL);
	struct broker_config cfg;
	broker_config_defaults(&cfg);
	cfg.sys_interval_s = 0;
	cfg.max_inflight = 2000;
	cfg.allow_anonymous = true;
	if (broker_thread_start(&f.bt, &cfg, NULL) != 0)
		return -1;
	f.port = f.bt.port;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	broker_thread_stop(&f->bt);
	return 0;
}

/* ---- a blocking client on the codec -------------------------------------- */

struct client {
	int fd;
	uint8_t version;
	uint8_t buf[16384]; /* bytes read; the last packet decoded is at the front */
	size_t have;
	size_t used;        /* bytes of that packet */
};

static void send_pkt(struct client *c, const struct mqtt_packet *p)
{
	uint8_t buf[1024];
	size_t n;
	assert_int_equal(mqtt_encode(p, c->version, buf, sizeof buf, &n), MOTE_OK);
	assert_int_equal(write(c->fd, buf, n), (ssize_t)n);
}

/* Reads and decodes one packet (views valid until the next call); false on
 * close or timeout. */
static bool recv_pkt(struct client *c, struct mqtt_packet *out)
{
	memmove(c->buf, c->buf + c->used, c->have - c->used);
	c->have -= c->used;
	c->used = 0;
	for (;;) {
		struct mqtt_frame fr;
		enum mote_err e = mqtt_frame_parse(c->buf, c->have, 0, &fr, NULL);
		if (e == MOTE_OK && fr.total_len <= c->have) {
			struct mqtt_fault fault;
			assert_int_equal(mqtt_decode(c->buf, fr.total_len, c->version, false, out, &fault),
					 MOTE_OK);
			c->used = fr.total_len;
			return true;
		}
		assert_true(c->have < sizeof c->buf);
		ssize_t n = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
		if (n <= 0)
			return false;
		c->have += (size_t)n;
	}
}

static void expect(struct client *c, enum mqtt_type type, struct mqtt_packet *out)
{
	assert_true(recv_pkt(c, out));
	if (out->type != type)
		fail_msg("expected packet type %d, got %d", type, out->type);
}

struct opts {
	bool resume;           /* clean start off */
	uint32_t expiry;       /* session expiry (5.0) */
	uint16_t receive_max;  /* 0: not sent */
	uint16_t alias_max;
	uint32_t max_packet;
};

static void dial(struct client *c, uint16_t port, uint8_t version, const char *id,
		 const struct opts *o)
{
	c->version = version;
	c->have = c->used = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = { 5, 0 };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);

	struct mqtt_packet p = { .type = MQTT_CONNECT };
	struct mqtt_connect *cp = &p.u.connect;
	cp->version = version;
	cp->clean_start = !o->resume;
	cp->keep_alive = 60;
	cp->client_id = (struct mqtt_str){ (const uint8_t *)id, (uint16_t)strlen(id) };
	if (o->expiry) {
		cp->props.session_expiry = o->expiry;
		MQTT_SET(&cp->props, MQTT_PROP_SESSION_EXPIRY);
	}
	if (o->receive_max) {
		cp->props.receive_max = o->receive_max;
		MQTT_SET(&cp->props, MQTT_PROP_RECEIVE_MAX);
	}
	if (o->alias_max) {
		cp->props.topic_alias_max = o->alias_max;
		MQTT_SET(&cp->props, MQTT_PROP_TOPIC_ALIAS_MAX);
	}
	if (o->max_packet) {
		cp->props.max_packet_size = o->max_packet;
		MQTT_SET(&cp->props, MQTT_PROP_MAX_PACKET_SIZE);
	}
	send_pkt(c, &p);
	struct mqtt_packet r;
	expect(c, MQTT_CONNACK, &r);
	assert_int_equal(r.u.connack.reason, 0);
	assert_int_equal(r.u.connack.session_present, o->resume);
}

static void subscribe(struct client *c, const char *filter, uint8_t qos, uint32_t sub_id)
{
	struct mqtt_sub_entry e = { { (const uint8_t *)filter, (uint16_t)strlen(filter) },
				    { .qos = qos } };
	struct mqtt_packet s = { .type = MQTT_SUBSCRIBE };
	s.u.subscribe.packet_id = 1;
	s.u.subscribe.count = 1;
	s.u.subscribe.entries = &e;
	if (sub_id) {
		s.u.subscribe.props.sub_id = sub_id;
		MQTT_SET(&s.u.subscribe.props, MQTT_PROP_SUBSCRIPTION_ID);
	}
	send_pkt(c, &s);
	struct mqtt_packet r;
	expect(c, MQTT_SUBACK, &r);
	assert_int_equal(r.u.suback.reasons[0], qos);
}

static void ack(struct client *c, uint16_t id)
{
	struct mqtt_packet a = { .type = MQTT_PUBACK };
	a.u.ack.packet_id = id;
	send_pkt(c, &a);
}

/* Nothing else is on its way: a PINGREQ is answered next. */
static void quiet(struct client *c)
{
	struct mqtt_packet p = { .type = MQTT_PINGREQ }, r;
	send_pkt(c, &p);
	expect(c, MQTT_PINGRESP, &r);
}

static void bye(struct client *c)
{
	struct mqtt_packet d = { .type = MQTT_DISCONNECT };
	send_pkt(c, &d);
	close(c->fd);
}

/* QoS 1 publish with a numbered payload; waits for the PUBACK. */
static void publish_n(struct client *c, const char *topic, int n, uint16_t id)
{
	char payload[16];
	snprintf(payload, sizeof payload, "m%05d", n);
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	p.u.publish.qos = 1;
	p.u.publish.packet_id = id;
	p.u.publish.topic = (struct mqtt_str){ (const uint8_t *)topic, (uint16_t)strlen(topic) };
	p.u.publish.payload = (struct mqtt_bin){ (const uint8_t *)payload, 6 };
	send_pkt(c, &p);
	struct mqtt_packet r;
	expect(c, MQTT_PUBACK, &r);
	assert_int_equal(r.u.ack.packet_id, id);
}

/* Receives a numbered QoS 1 PUBLISH; returns its number. */
static int recv_n(struct client *c, bool dup, uint16_t *id)
{
	struct mqtt_packet r;
	expect(c, MQTT_PUBLISH, &r);
	assert_int_equal(r.u.publish.qos, 1);
	assert_int_equal(r.u.publish.dup, dup);
	assert_int_not_equal(r.u.publish.packet_id, 0);
	assert_int_equal(r.u.publish.payload.len, 6);
	*id = r.u.publish.packet_id;
	char num[6] = { 0 };
	memcpy(num, r.u.publish.payload.p + 1, 5);
	return atoi(num);
}

/* ---- the window ------------------------------------------------------------ */

/*
 * 300 in flight at once, acked in reverse order with every third one left
 * out and an unknown id among them; after a reconnect the hundred left come
 * again with DUP and their ids, oldest first.
 */
static void wide_window_redelivers_in_order(void **state)
{
	struct fixture *f = *state;
	struct client sub, pub;
	dial(&sub, f->port, MQTT_V5, "wide-sub", &(struct opts){ .expiry = 300, .receive_max = 500 });
	subscribe(&sub, "wide/#", 1, 0);
	dial(&pub, f->port, MQTT_V5, "wide-pub", &(struct opts){ 0 });
	enum { N = 300 };
	for (int i = 0; i < N; i++)
		publish_n(&pub, "wide/x", i, (uint16_t)(i + 1));

	static bool in_flight[65536];
	memset(in_flight, 0, sizeof in_flight);
	uint16_t ids[N];
	for (int i = 0; i < N; i++) {
		assert_int_equal(recv_n(&sub, false, &ids[i]), i);
		if (in_flight[ids[i]])
			fail_msg("id %u given to two messages in flight", ids[i]);
		in_flight[ids[i]] = true;
	}
	uint16_t unknown = 1;
	while (in_flight[unknown])
		unknown++;
	ack(&sub, unknown); /* ignored */
	for (int i = N - 1; i >= 0; i--)
		if (i % 3 != 0)
			ack(&sub, ids[i]);
	ack(&sub, ids[1]); /* a repeated ack: ignored too */
	quiet(&sub);
	bye(&sub);

	dial(&sub, f->port, MQTT_V5, "wide-sub",
	     &(struct opts){ .resume = true, .expiry = 300, .receive_max = 500 });
	for (int i = 0; i < N; i += 3) {
		uint16_t id;
		assert_int_equal(recv_n(&sub, true, &id), i);
		assert_int_equal(id, ids[i]);
		ack(&sub, id);
	}
	quiet(&sub);
	/* the window is empty again: new messages flow with fresh ids */
	publish_n(&pub, "wide/x", N, 1);
	uint16_t id;
	assert_int_equal(recv_n(&sub, false, &id), N);
	ack(&sub, id);
	quiet(&sub);
	bye(&pub);
	bye(&sub);
}

/*
 * A window of 8 in front of 40 messages: acks in any order open one slot
 * each and the queue moves on in order; after a reconnect the window is
 * resent first (oldest first), then the queue continues.
 */
static void small_window_queue_then_redelivery(void **state)
{
	struct fixture *f = *state;
	struct client sub, pub;
	const struct opts so = { .expiry = 300, .receive_max = 8 };
	dial(&sub, f->port, MQTT_V5, "small-sub", &so);
	subscribe(&sub, "small/#", 1, 0);
	dial(&pub, f->port, MQTT_V311, "small-pub", &(struct opts){ 0 });
	enum { N = 40 };
	for (int i = 0; i < N; i++)
		publish_n(&pub, "small/x", i, (uint16_t)(100 + i));

	uint16_t ids[N];
	for (int i = 0; i < 8; i++)
		assert_int_equal(recv_n(&sub, false, &ids[i]), i);
	quiet(&sub); /* the window is full */
	int order[] = { 3, 0, 7 };
	for (int k = 0; k < 3; k++) {
		ack(&sub, ids[order[k]]);
		assert_int_equal(recv_n(&sub, false, &ids[8 + k]), 8 + k);
	}
	quiet(&sub);
	bye(&sub);

	const struct opts again = { .resume = true, .expiry = 300, .receive_max = 8 };
	dial(&sub, f->port, MQTT_V5, "small-sub", &again);
	int left[] = { 1, 2, 4, 5, 6, 8, 9, 10 };
	for (int k = 0; k < 8; k++) {
		uint16_t id;
		assert_int_equal(recv_n(&sub, true, &id), left[k]);
		assert_int_equal(id, ids[left[k]]);
	}
	quiet(&sub);
	for (int k = 7; k >= 0; k--)
		ack(&sub, ids[left[k]]);
	for (int i = 11; i < N; i++) { /* the rest of the queue, in order */
		uint16_t id;
		assert_int_equal(recv_n(&sub, false, &id), i);
		ack(&sub, id);
	}
	quiet(&sub);
	bye(&pub);
	bye(&sub);
}

/* n QoS 1 publishes numbered from first in one write, then their PUBACKs. */
static void publish_batch(struct client *c, const char *topic, int first, int n)
{
	static uint8_t buf[1100 * 32];
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		char payload[16];
		snprintf(payload, sizeof payload, "m%05d", (first + i) % 100000);
		struct mqtt_packet p = { .type = MQTT_PUBLISH };
		p.u.publish.qos = 1;
		p.u.publish.packet_id = (uint16_t)(i + 1);
		p.u.publish.topic = (struct mqtt_str){ (const uint8_t *)topic, (uint16_t)strlen(topic) };
		p.u.publish.payload = (struct mqtt_bin){ (const uint8_t *)payload, 6 };
		size_t used;
		assert_int_equal(mqtt_encode(&p, c->version, buf + len, sizeof buf - len, &used),
				 MOTE_OK);
		len += used;
	}
	assert_int_equal(write(c->fd, buf, len), (ssize_t)len);
	for (int i = 0; i < n; i++) {
		struct mqtt_packet r;
		expect(c, MQTT_PUBACK, &r);
	}
}

static void ack_batch(struct client *c, const uint16_t *ids, int n)
{
	static uint8_t buf[1100 * 4];
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		struct mqtt_packet a = { .type = MQTT_PUBACK };
		a.u.ack.packet_id = ids[i];
		size_t used;
		assert_int_equal(mqtt_encode(&a, c->version, buf + len, sizeof buf - len, &used),
				 MOTE_OK);
		len += used;
	}
	assert_int_equal(write(c->fd, buf, len), (ssize_t)len);
}

/*
 * Packet ids wrap from 65535 to 1 inside one window: redelivery still goes
 * by send order (65535 before 1), not by id, and the ids are kept. Windows
 * of 1100 also make the broker give the window's memory back each time one
 * is acked in full.
 */
static void redelivery_order_survives_the_id_wrap(void **state)
{
	struct fixture *f = *state;
	struct client sub, pub;
	const struct opts so = { .expiry = 300, .receive_max = 1500 };
	dial(&sub, f->port, MQTT_V5, "wrap-sub", &so);
	subscribe(&sub, "wrap/#", 1, 0);
	dial(&pub, f->port, MQTT_V311, "wrap-pub", &(struct opts){ 0 });
	enum { B = 1100 };
	static uint16_t ids[B];
	int sent = 0;
	uint16_t last = 0;
	while (65535 - last > 300) { /* use ids up to 65235, each batch acked */
		int n = 65535 - last - 300 < B ? 65535 - last - 300 : B;
		publish_batch(&pub, "wrap/x", sent, n);
		for (int i = 0; i < n; i++) {
			assert_int_equal(recv_n(&sub, false, &ids[i]), (sent + i) % 100000);
			assert_int_equal(ids[i], last + 1 + i);
		}
		last = ids[n - 1];
		ack_batch(&sub, ids, n);
		sent += n;
	}
	/* this batch stays unacked: 65236..65535, then 1..800 */
	publish_batch(&pub, "wrap/x", sent, B);
	for (int i = 0; i < B; i++) {
		assert_int_equal(recv_n(&sub, false, &ids[i]), (sent + i) % 100000);
		assert_int_equal(ids[i], i < 300 ? 65236 + i : i - 299);
	}
	quiet(&sub);
	bye(&sub);

	dial(&sub, f->port, MQTT_V5, "wrap-sub",
	     &(struct opts){ .resume = true, .expiry = 300, .receive_max = 1500 });
	for (int i = 0; i < B; i++) {
		uint16_t id;
		assert_int_equal(recv_n(&sub, true, &id), (sent + i) % 100000);
		assert_int_equal(id, ids[i]);
	}
	ack_batch(&sub, ids, B);
	quiet(&sub);
	bye(&pub);
	bye(&sub);
}

/* ---- fan-out -------------------------------------------------------------- */

static const uint8_t user_prop[] = { 0x26, 0, 2, 'k', '1', 0, 2, 'v', '1' };

static void publish_fan(struct client *c, uint32_t payload_len, uint16_t id)
{
	static uint8_t payload[200];
	memset(payload, 'p', sizeof payload);
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	p.u.publish.qos = 1;
	p.u.publish.packet_id = id;
	p.u.publish.topic = (struct mqtt_str){ (const uint8_t *)"fan/a", 5 };
	p.u.publish.payload = (struct mqtt_bin){ payload, payload_len };
	p.u.publish.props.message_expiry = 100;
	MQTT_SET(&p.u.publish.props, MQTT_PROP_MESSAGE_EXPIRY);
	p.u.publish.props.raw_extra = (struct mqtt_bin){ user_prop, sizeof user_prop };
	send_pkt(c, &p);
	struct mqtt_packet r;
	expect(c, MQTT_PUBACK, &r);
}

struct want {
	uint8_t qos;
	bool topic;        /* the topic name is sent */
	uint16_t alias;    /* 0: none */
	uint32_t sub_id;   /* 0: none */
};

static void check_fan(struct client *c, uint32_t payload_len, const struct want *w)
{
	struct mqtt_packet r;
	expect(c, MQTT_PUBLISH, &r);
	const struct mqtt_publish *p = &r.u.publish;
	assert_int_equal(p->qos, w->qos);
	assert_false(p->dup);
	assert_false(p->retain);
	if (w->qos)
		assert_int_not_equal(p->packet_id, 0);
	assert_int_equal(p->topic.len, w->topic ? 5 : 0);
	if (w->topic)
		assert_memory_equal(p->topic.p, "fan/a", 5);
	assert_int_equal(p->payload.len, payload_len);
	if (c->version == MQTT_V5) {
		const struct mqtt_props *pr = &p->props;
		assert_true(MQTT_HAS(pr, MQTT_PROP_MESSAGE_EXPIRY));
		assert_in_range(pr->message_expiry, 95, 100);
		assert_int_equal(pr->user_count, 1);
		assert_memory_equal(pr->user_first.key.p, "k1", 2);
		assert_memory_equal(pr->user_first.val.p, "v1", 2);
		assert_int_equal(MQTT_HAS(pr, MQTT_PROP_TOPIC_ALIAS), w->alias != 0);
		if (w->alias)
			assert_int_equal(pr->topic_alias, w->alias);
		assert_int_equal(pr->sub_id_count_decoded, w->sub_id ? 1 : 0);
		if (w->sub_id)
			assert_int_equal(pr->sub_id, w->sub_id);
	}
	if (w->qos)
		ack(c, p->packet_id);
}

static void fan_out_gives_each_subscriber_its_own_packet(void **state)
{
	struct fixture *f = *state;
	enum { V311, V5, SUBID, ALIAS, SMALL, QOS0, COUNT };
	struct client s[COUNT], pub;
	dial(&s[V311], f->port, MQTT_V311, "fan-311", &(struct opts){ 0 });
	dial(&s[V5], f->port, MQTT_V5, "fan-5", &(struct opts){ 0 });
	dial(&s[SUBID], f->port, MQTT_V5, "fan-id", &(struct opts){ 0 });
	dial(&s[ALIAS], f->port, MQTT_V5, "fan-alias", &(struct opts){ .alias_max = 4 });
	dial(&s[SMALL], f->port, MQTT_V5, "fan-small", &(struct opts){ .max_packet = 100 });
	dial(&s[QOS0], f->port, MQTT_V5, "fan-q0", &(struct opts){ 0 });
	for (int i = 0; i < COUNT; i++)
		subscribe(&s[i], "fan/#", i == QOS0 ? 0 : 1, i == SUBID ? 77 : 0);
	dial(&pub, f->port, MQTT_V5, "fan-pub", &(struct opts){ 0 });

	/* twice the same head: the second time comes from the cache */
	for (int round = 0; round < 2; round++) {
		publish_fan(&pub, 150, (uint16_t)(10 + round));
		check_fan(&s[V311], 150, &(struct want){ .qos = 1, .topic = true });
		check_fan(&s[V5], 150, &(struct want){ .qos = 1, .topic = true });
		check_fan(&s[SUBID], 150, &(struct want){ .qos = 1, .topic = true, .sub_id = 77 });
		check_fan(&s[ALIAS], 150,
			  &(struct want){ .qos = 1, .topic = round == 0, .alias = 1 });
		check_fan(&s[QOS0], 150, &(struct want){ .qos = 0, .topic = true });
	}
	/* too large for fan-small (dropped for it alone); a short one fits */
	publish_fan(&pub, 20, 12);
	check_fan(&s[SMALL], 20, &(struct want){ .qos = 1, .topic = true });
	check_fan(&s[V311], 20, &(struct want){ .qos = 1, .topic = true });
	check_fan(&s[V5], 20, &(struct want){ .qos = 1, .topic = true });
	check_fan(&s[SUBID], 20, &(struct want){ .qos = 1, .topic = true, .sub_id = 77 });
	check_fan(&s[ALIAS], 20, &(struct want){ .qos = 1, .topic = false, .alias = 1 });
	check_fan(&s[QOS0], 20, &(struct want){ .qos = 0, .topic = true });
	for (int i = 0; i < COUNT; i++) {
		quiet(&s[i]);
		bye(&s[i]);
	}
	bye(&pub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wide_window_redelivers_in_order),
		cmocka_unit_test(small_window_queue_then_redelivery),
		cmocka_unit_test(redelivery_order_survives_the_id_wrap),
		cmocka_unit_test(fan_out_gives_each_subscriber_its_own_packet),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
