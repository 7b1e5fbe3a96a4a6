/*
 * test_broker_hooks.c - the broker's hooks, seen from a real TCP client:
 * authenticate, authorize (publish and subscribe), tap, connect/disconnect
 * events and the persistence hook refusing a QoS 1 publish.
 *
 * The broker runs on its own loop thread; the test thread speaks MQTT 5.0
 * over a blocking socket with the codec. Hook records are guarded by a mutex.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "broker/broker.h"
#include "broker_thread.h"

struct records {
	pthread_mutex_t mu;
	int connects;
	int disconnects;
	int taps;
	char last_tap[64];
	char last_client[64];
};

struct fixture {
	struct broker_thread bt;
	uint16_t port;
	struct records rec;
};

static uint8_t hook_auth(void *ctx, const struct broker_client *c, const struct mqtt_connect *p)
{
	(void)ctx;
	(void)c;
	if (p->has_username && p->username.len == 4 && memcmp(p->username.p, "good", 4) == 0)
		return MQTT_RC_SUCCESS;
	return MQTT_RC_BAD_USER_OR_PASSWORD;
}

static bool hook_authorize(void *ctx, const struct broker_client *c, enum broker_access a,
			   const uint8_t *topic, size_t len)
{
	(void)ctx;
	(void)c;
	if (a == BROKER_ACCESS_PUBLISH)
		return !(len >= 7 && memcmp(topic, "secret/", 7) == 0);
	return !(len >= 8 && memcmp(topic, "private/", 8) == 0);
}

static void hook_tap(void *ctx, const struct broker_client *c, const struct broker_msg_view *m)
{
	struct records *r = ctx;
	if (m->topic_len >= 4 && memcmp(m->topic, "$SYS", 4) == 0)
		return;
	pthread_mutex_lock(&r->mu);
	r->taps++;
	/* A client's message is tapped with its publisher. */
	snprintf(r->last_tap, sizeof r->last_tap, "%.*s from %.*s", (int)m->topic_len, m->topic,
		 c ? (int)c->client_id_len : 4, c ? (const char *)c->client_id : "none");
	pthread_mutex_unlock(&r->mu);
}

static void hook_connect(void *ctx, const struct broker_client *c)
{
	struct records *r = ctx;
	pthread_mutex_lock(&r->mu);
	r->connects++;
	snprintf(r->last_client, sizeof r->last_client, "%.*s", c->client_id_len, c->client_id);
	pthread_mutex_unlock(&r->mu);
}

static void hook_disconnect(void *ctx, const struct broker_client *c, uint8_t reason)
{
	(void)c;
	(void)reason;
	struct records *r = ctx;
	pthread_mutex_lock(&r->mu);
	r->disconnects++;
	pthread_mutex_unlock(&r->mu);
}

static enum mote_err hook_persist(void *ctx, const struct broker_client *c,
				  const struct broker_msg_view *m)
{
	(void)ctx;
	(void)c;
	return (m->topic_len >= 5 && memcmp(m->topic, "full/", 5) == 0) ? MOTE_EIO : MOTE_OK;
}

static int setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof f);
	pthread_mutex_init(&f.rec.mu, NULL);
	mote_log_setup(MOTE_LOG_WARN, NULL);
	struct broker_config cfg;
	broker_config_defaults(&cfg);
	cfg.sys_interval_s = 0;
	struct broker_hooks hooks = {
		.ctx = &f.rec,
		.authenticate = hook_auth,
		.authorize = hook_authorize,
		.tap = hook_tap,
		.on_connect = hook_connect,
		.on_disconnect = hook_disconnect,
		.persist_publish = hook_persist,
	};
	static struct broker_hooks keep; /* hooks are borrowed: keep them alive */
	keep = hooks;
	if (broker_thread_start(&f.bt, &cfg, &keep) != 0)
		return -1;
	f.port = f.bt.port;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	broker_thread_stop(&f->bt);
	pthread_mutex_destroy(&f->rec.mu);
	return 0;
}

/* ---- a blocking MQTT 5.0 client on the codec ---------------------------- */

static int dial(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

static void send_pkt(int fd, const struct mqtt_packet *p)
{
	uint8_t buf[1024];
	size_t n;
	assert_int_equal(mqtt_encode(p, MQTT_V5, buf, sizeof buf, &n), MOTE_OK);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
}

/* Reads one packet into buf and decodes it; false on close/timeout. */
static bool recv_pkt(int fd, uint8_t *buf, size_t cap, struct mqtt_packet *out)
{
	size_t have = 0;
	for (;;) {
		struct mqtt_frame fr;
		enum mote_err e = mqtt_frame_parse(buf, have, 0, &fr, NULL);
		if (e == MOTE_OK && fr.total_len <= have) {
			struct mqtt_fault fault;
			assert_int_equal(mqtt_decode(buf, fr.total_len, MQTT_V5, false, out, &fault),
					 MOTE_OK);
			return true;
		}
		assert_true(have < cap);
		ssize_t n = read(fd, buf + have, (e == MOTE_OK ? fr.total_len : have + 1) - have);
		if (n <= 0)
			return false;
		have += (size_t)n;
	}
}

static void connect_as(int fd, const char *id, const char *user)
{
	struct mqtt_packet p = { .type = MQTT_CONNECT };
	p.u.connect.version = MQTT_V5;
	p.u.connect.clean_start = true;
	p.u.connect.keep_alive = 60;
	p.u.connect.client_id = (struct mqtt_str){ (const uint8_t *)id, (uint16_t)strlen(id) };
	if (user) {
		p.u.connect.has_username = true;
		p.u.connect.username = (struct mqtt_str){ (const uint8_t *)user, (uint16_t)strlen(user) };
	}
	send_pkt(fd, &p);
}

static uint8_t publish_qos1(int fd, const char *topic, uint16_t id)
{
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	p.u.publish.qos = 1;
	p.u.publish.packet_id = id;
	p.u.publish.topic = (struct mqtt_str){ (const uint8_t *)topic, (uint16_t)strlen(topic) };
	p.u.publish.payload = (struct mqtt_bin){ (const uint8_t *)"x", 1 };
	send_pkt(fd, &p);
	uint8_t buf[512];
	struct mqtt_packet r;
	assert_true(recv_pkt(fd, buf, sizeof buf, &r));
	assert_int_equal(r.type, MQTT_PUBACK);
	assert_int_equal(r.u.ack.packet_id, id);
	return r.u.ack.reason;
}

static void authenticate_refuses_with_reason(void **state)
{
	struct fixture *f = *state;
	int fd = dial(f->port);
	connect_as(fd, "intruder", "bad");
	uint8_t buf[512];
	struct mqtt_packet r;
	assert_true(recv_pkt(fd, buf, sizeof buf, &r));
	assert_int_equal(r.type, MQTT_CONNACK);
	assert_int_equal(r.u.connack.reason, MQTT_RC_BAD_USER_OR_PASSWORD);
	assert_false(recv_pkt(fd, buf, sizeof buf, &r)); /* then the broker closes */
	close(fd);
	pthread_mutex_lock(&f->rec.mu);
	assert_int_equal(f->rec.connects, 0);
	pthread_mutex_unlock(&f->rec.mu);
}

static void hooks_see_a_session(void **state)
{
	struct fixture *f = *state;
	int fd = dial(f->port);
	connect_as(fd, "c1", "good");
	uint8_t buf[512];
	struct mqtt_packet r;
	assert_true(recv_pkt(fd, buf, sizeof buf, &r));
	assert_int_equal(r.type, MQTT_CONNACK);
	assert_int_equal(r.u.connack.reason, MQTT_RC_SUCCESS);

	/* authorize: denied publish -> 0x87 and not tapped; allowed -> routed */
	assert_int_equal(publish_qos1(fd, "secret/x", 1), MQTT_RC_NOT_AUTHORIZED);
	assert_int_equal(publish_qos1(fd, "open/x", 2), MQTT_RC_NO_MATCHING_SUBSCRIBERS);
	/* persistence refusing: 0x97 quota exceeded, nothing routed */
	assert_int_equal(publish_qos1(fd, "full/x", 3), MQTT_RC_QUOTA_EXCEEDED);

	/* authorize on subscribe: one filter denied, one granted */
	struct mqtt_sub_entry entries[2] = {
		{ { (const uint8_t *)"private/#", 9 }, { .qos = 1 } },
		{ { (const uint8_t *)"open/#", 6 }, { .qos = 1 } },
	};
	struct mqtt_packet s = { .type = MQTT_SUBSCRIBE };
	s.u.subscribe.packet_id = 9;
	s.u.subscribe.count = 2;
	s.u.subscribe.entries = entries;
	send_pkt(fd, &s);
	assert_true(recv_pkt(fd, buf, sizeof buf, &r));
	assert_int_equal(r.type, MQTT_SUBACK);
	assert_int_equal(r.u.suback.count, 2);
	assert_int_equal(r.u.suback.reasons[0], MQTT_RC_NOT_AUTHORIZED);
	assert_int_equal(r.u.suback.reasons[1], 1);

	struct mqtt_packet d = { .type = MQTT_DISCONNECT };
	send_pkt(fd, &d);
	assert_false(recv_pkt(fd, buf, sizeof buf, &r));
	close(fd);

	pthread_mutex_lock(&f->rec.mu);
	assert_int_equal(f->rec.connects, 1);
	assert_string_equal(f->rec.last_client, "c1");
	assert_int_equal(f->rec.taps, 1);
	assert_string_equal(f->rec.last_tap, "open/x from c1");
	pthread_mutex_unlock(&f->rec.mu);
	/* the disconnect event is raised as the broker closes; wait briefly */
	for (int i = 0; i < 100; i++) {
		pthread_mutex_lock(&f->rec.mu);
		int n = f->rec.disconnects;
		pthread_mutex_unlock(&f->rec.mu);
		if (n == 1)
			return;
		usleep(10000);
	}
	fail_msg("on_disconnect was not called");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(authenticate_refuses_with_reason),
		cmocka_unit_test(hooks_see_a_session),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
