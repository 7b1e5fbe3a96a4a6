/*
 * test_provision_service.c - the hub's provisioning service (src/provision):
 * the answers it builds (certificate chain, {"error":...}, no paths for
 * internal failures), the audit records, which taps it ignores, its
 * per-claim rate limit and bounded queue, and the whole path through a real
 * broker: a raw MQTT 3.1.1 client subscribes to $provision/ID/#, publishes
 * its CSR and receives the certificate that the worker signed and the hub
 * loop published. There is no TLS here, so the test's tap hook lends the
 * client the certificate CN a TLS listener would have verified.
 */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/clock.h"
#include "base/log.h"
#include "pki/pki.h"
#include "provision/provision.h"

struct fx {
	char dir[64];
	char err[512];
	pthread_mutex_t mu;
	char audit_event[64];
	char audit_fields[1024];
	int audits;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	struct mote_pki_init_opts o = { 0 };
	struct mote_pki_claim_opts c = { .prefix = "pump-", .max = 3 };

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/mote-prov-XXXXXX");
	if (!mkdtemp(f->dir) || mote_pki_init(f->dir, &o, f->err, sizeof f->err) ||
	    mote_pki_claim(f->dir, "b1", &c, NULL, NULL, f->err, sizeof f->err))
		return -1;
	pthread_mutex_init(&f->mu, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	tmpdir_remove(f->dir);
	pthread_mutex_destroy(&f->mu);
	free(f);
	return 0;
}

static void on_audit(void *ctx, const char *event, const char *fields)
{
	struct fx *f = ctx;

	pthread_mutex_lock(&f->mu);
	snprintf(f->audit_event, sizeof f->audit_event, "%s", event);
	snprintf(f->audit_fields, sizeof f->audit_fields, "%s", fields);
	f->audits++;
	pthread_mutex_unlock(&f->mu);
}

static char *make_csr(const char *cn)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *req = X509_REQ_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long len;

	assert_non_null(k);
	assert_non_null(req);
	assert_non_null(b);
	assert_true(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
					       (const unsigned char *)cn, -1, -1, 0));
	assert_true(X509_REQ_set_pubkey(req, k));
	assert_true(X509_REQ_sign(req, k, EVP_sha256()) > 0);
	assert_true(PEM_write_bio_X509_REQ(b, req));
	len = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)len);
	assert_non_null(out);
	BIO_free(b);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	return out;
}

static struct provision *new_service(struct fx *f, uint32_t queue_max, uint32_t burst)
{
	struct provision_config pc = { .pki_dir = f->dir, .queue_max = queue_max, .burst = burst,
				       .audit = on_audit, .audit_ctx = f };
	struct provision *p;

	assert_int_equal(provision_new(&pc, &p), MOTE_OK);
	return p;
}

static void test_handle_answers(void **state)
{
	struct fx *f = *state;
	struct provision *p = new_service(f, 0, 0);
	char *csr = make_csr("pump-1"), *topic, path[PATH_MAX];
	const uint8_t *ans;
	size_t tlen, alen;
	X509 *d;
	BIO *b;

	assert_int_equal(provision_handle(p, "b1", "pump-1", "1.2.3.4:5", (const uint8_t *)csr,
					  strlen(csr), &topic, &tlen, &ans, &alen),
			 MOTE_OK);
	assert_int_equal(tlen, strlen("$provision/pump-1/cert"));
	assert_memory_equal(topic, "$provision/pump-1/cert", tlen);
	b = BIO_new_mem_buf(ans, (int)alen);
	d = PEM_read_bio_X509(b, NULL, NULL, NULL);
	assert_non_null(d);
	X509_free(d);
	d = PEM_read_bio_X509(b, NULL, NULL, NULL); /* the CA follows */
	assert_non_null(d);
	assert_int_equal(X509_check_ca(d), 1);
	X509_free(d);
	BIO_free(b);
	free(topic);
	assert_string_equal(f->audit_event, "provision_issued");
	assert_non_null(strstr(f->audit_fields, "{\"claim\":\"b1\",\"id\":\"pump-1\","
						"\"peer\":\"1.2.3.4:5\",\"serial\":\""));

	/* A refusal: JSON with the reason, on .../rejected. */
	assert_int_equal(provision_handle(p, "b1", "pump-2", "p", (const uint8_t *)csr,
					  strlen(csr), &topic, &tlen, &ans, &alen),
			 MOTE_OK);
	assert_memory_equal(topic, "$provision/pump-2/rejected", tlen);
	assert_true(alen > 12 && memcmp(ans, "{\"error\":\"the CSR's CN must be", 30) == 0);
	assert_int_equal(ans[alen - 1], '}');
	assert_string_equal(f->audit_event, "provision_refused");
	free(topic);

	/* An internal failure names no file to the device. */
	snprintf(path, sizeof path, "%s/ca.key", f->dir);
	assert_int_equal(chmod(path, 0), 0);
	if (access(path, R_OK) != 0) { /* root reads it anyway: nothing to test then */
		char *csr3 = make_csr("pump-3");

		assert_int_equal(provision_handle(p, "b1", "pump-3", "p", (const uint8_t *)csr3,
						  strlen(csr3), &topic, &tlen, &ans, &alen),
				 MOTE_OK);
		assert_memory_equal(ans, "{\"error\":\"internal error; try again later\"}", alen);
		free(topic);
		free(csr3);
	}
	chmod(path, 0600);
	{
		struct provision_stats st;

		provision_get_stats(p, &st);
		assert_int_equal(st.issued, 1);
		assert_true(st.refused >= 1);
	}
	free(csr);
	provision_free(p);
}

static void test_claim_check(void **state)
{
	struct fx *f = *state;
	struct provision *p = new_service(f, 0, 0);
	char why[256];

	assert_int_equal(provision_claim_check(p, "b1", "pump-9", why, sizeof why), MOTE_OK);
	assert_int_equal(provision_claim_check(p, "b1", "valve-9", why, sizeof why), MOTE_EINVAL);
	assert_non_null(strstr(why, "pump-"));
	assert_int_equal(provision_claim_check(p, "zz", "pump-9", why, sizeof why),
			 MOTE_ENOTFOUND);
	provision_free(p);
}

static void tap(struct provision *p, const char *cn, const char *uri, const char *client,
		const char *topic, const char *payload)
{
	struct broker_client c = { .client_id = (const uint8_t *)client,
				   .client_id_len = (uint16_t)strlen(client),
				   .peer = "127.0.0.1:1",
				   .cert_cn = cn,
				   .cert_uri = uri };
	struct broker_msg_view m = { .topic = (const uint8_t *)topic,
				     .topic_len = (uint16_t)strlen(topic),
				     .payload = (const uint8_t *)payload,
				     .payload_len = (uint32_t)strlen(payload),
				     .qos = 1 };

	provision_tap(p, &c, &m);
}

static void test_tap_filters_and_limits(void **state)
{
	struct fx *f = *state;
	struct provision *p = new_service(f, 2, 3); /* not started: requests stay queued */
	struct provision_stats st;

	/* Not for the service: other topics, answers, no claim, wrong id,
	 * disagreeing names. */
	tap(p, "claim:b1", NULL, "pump-1", "dev/pump-1/csr", "x");
	tap(p, "claim:b1", NULL, "pump-1", "$provision/pump-1/cert", "x");
	tap(p, "claim:b1", NULL, "pump-1", "$provision/pump-1/csr/x", "x");
	tap(p, "pump-1", NULL, "pump-1", "$provision/pump-1/csr", "x");
	tap(p, NULL, NULL, "pump-1", "$provision/pump-1/csr", "x");
	tap(p, "claim:b1", NULL, "pump-2", "$provision/pump-1/csr", "x");
	tap(p, "claim:b1", "urn:mote:claim:b2", "pump-1", "$provision/pump-1/csr", "x");
	tap(p, "claim:../b1", NULL, "pump-1", "$provision/pump-1/csr", "x");
	provision_get_stats(p, &st);
	assert_int_equal(st.requests, 0);

	/* Burst 3, queue 2: two queued, one busy, then rate limited. */
	for (int i = 0; i < 5; i++)
		tap(p, "claim:b1", "urn:mote:claim:b1", "pump-1", "$provision/pump-1/csr", "x");
	provision_get_stats(p, &st);
	assert_int_equal(st.requests, 5);
	assert_int_equal(st.busy, 1);
	assert_int_equal(st.limited, 2);
	/* A flood is one record per 10 s, not one per refusal: busy, then the
	 * first of the two rate-limited ones. */
	assert_int_equal(f->audits, 2);
	/* Another claim has its own bucket. */
	tap(p, "claim:b2", NULL, "pump-1", "$provision/pump-1/csr", "x");
	provision_get_stats(p, &st);
	assert_int_equal(st.limited, 2);
	assert_int_equal(st.busy, 2);
	assert_int_equal(f->audits, 3);
	assert_string_equal(f->audit_event, "provision_refused");
	assert_non_null(strstr(f->audit_fields, "busy"));
	provision_free(p); /* frees what is still queued */
}

/* --- end to end through a broker ------------------------------------- */

struct e2e {
	struct provision *prov;
	struct loop *loop;
	struct broker *broker;
	pthread_t thread;
	uint16_t port;
};

/* What a TLS listener would have verified: the client id "claim-as-X"
 * stands for a client holding claim b1. */
static void e2e_tap(void *ctx, const struct broker_client *c, const struct broker_msg_view *m)
{
	struct e2e *e = ctx;
	struct broker_client lent;

	if (!c) {
		provision_tap(e->prov, c, m);
		return;
	}
	lent = *c;
	lent.cert_cn = "claim:b1";
	provision_tap(e->prov, &lent, m);
}

static void *e2e_main(void *arg)
{
	struct e2e *e = arg;

	loop_run(e->loop);
	return NULL;
}

static void put_len(uint8_t **p, size_t n)
{
	do {
		uint8_t b = n & 0x7f;

		n >>= 7;
		*(*p)++ = b | (n ? 0x80 : 0);
	} while (n);
}

static void put_str(uint8_t **p, const char *s, size_t n)
{
	*(*p)++ = (uint8_t)(n >> 8);
	*(*p)++ = (uint8_t)n;
	memcpy(*p, s, n);
	*p += n;
}

static void send_all(int fd, const uint8_t *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);

		assert_true(w > 0);
		b += w;
		n -= (size_t)w;
	}
}

static void send_packet(int fd, uint8_t type, const uint8_t *body, size_t n)
{
	uint8_t head[5], *p = head;

	*p++ = type;
	put_len(&p, n);
	send_all(fd, head, (size_t)(p - head));
	send_all(fd, body, n);
}

static int read_full(int fd, uint8_t *b, size_t n, uint64_t deadline)
{
	while (n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = mote_mono_ms();
		ssize_t r;

		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0)
			return -1;
		r = read(fd, b, n);
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* One packet: type byte, body (malloc'd) of *n bytes; -1 on timeout. */
static int recv_packet(int fd, uint8_t *type, uint8_t **body, size_t *n, uint64_t deadline)
{
	size_t len = 0;
	int shift = 0;
	uint8_t c;

	if (read_full(fd, type, 1, deadline))
		return -1;
	do {
		if (read_full(fd, &c, 1, deadline))
			return -1;
		len |= (size_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	*body = malloc(len + 1);
	assert_non_null(*body);
	if (len && read_full(fd, *body, len, deadline)) {
		free(*body);
		return -1;
	}
	*n = len;
	return 0;
}

static int connect_client(uint16_t port, const char *id, const char *filter)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	uint8_t buf[256], *p = buf, type, *body;
	size_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	put_str(&p, "MQTT", 4);
	*p++ = 4;    /* 3.1.1 */
	*p++ = 0x02; /* clean session */
	*p++ = 0;
	*p++ = 60;
	put_str(&p, id, strlen(id));
	send_packet(fd, 0x10, buf, (size_t)(p - buf));
	assert_int_equal(recv_packet(fd, &type, &body, &n, mote_mono_ms() + 5000), 0);
	assert_int_equal(type, 0x20);
	assert_int_equal(body[1], 0);
	free(body);
	p = buf;
	*p++ = 0;
	*p++ = 1;
	put_str(&p, filter, strlen(filter));
	*p++ = 1;
	send_packet(fd, 0x82, buf, (size_t)(p - buf));
	assert_int_equal(recv_packet(fd, &type, &body, &n, mote_mono_ms() + 5000), 0);
	assert_int_equal(type, 0x90);
	free(body);
	return fd;
}

static void publish(int fd, const char *topic, const char *payload)
{
	size_t tl = strlen(topic), pl = strlen(payload);
	uint8_t *buf = malloc(2 + tl + pl), *p = buf;

	assert_non_null(buf);
	put_str(&p, topic, tl);
	memcpy(p, payload, pl);
	send_packet(fd, 0x30, buf, 2 + tl + pl);
	free(buf);
}

/* The next PUBLISH on a topic ending in /cert or /rejected (acked when
 * QoS 1): its payload (malloc'd) and whether it was a certificate. */
static char *await_answer(int fd, int *is_cert)
{
	uint64_t deadline = mote_mono_ms() + 10000;
	uint8_t type, *body;
	size_t n;

	while (recv_packet(fd, &type, &body, &n, deadline) == 0) {
		if ((type & 0xf0) == 0x30) {
			size_t tl = ((size_t)body[0] << 8) | body[1], off = 2 + tl;
			char *topic = strndup((char *)body + 2, tl), *out;

			if ((type & 0x06) != 0) {
				uint8_t ack[2] = { body[off], body[off + 1] };

				send_packet(fd, 0x40, ack, 2);
				off += 2;
			}
			assert_non_null(topic);
			if (strstr(topic, "/cert") || strstr(topic, "/rejected")) {
				*is_cert = strstr(topic, "/cert") != NULL;
				out = strndup((char *)body + off, n - off);
				free(topic);
				free(body);
				return out;
			}
			free(topic);
		}
		free(body);
	}
	fail_msg("no answer within 10 s");
	return NULL;
}

static void test_end_to_end(void **state)
{
	struct fx *f = *state;
	struct e2e e = { .prov = new_service(f, 0, 0) };
	struct broker_hooks hooks = { .ctx = &e, .tap = e2e_tap };
	struct broker_config cfg;
	char err[128], *csr = make_csr("pump-5"), *ans;
	int fd, is_cert = 0;
	X509 *d;
	BIO *b;

	broker_config_defaults(&cfg);
	cfg.allow_anonymous = true;
	cfg.threads = 2;
	assert_int_equal(loop_new(&e.loop), MOTE_OK);
	assert_int_equal(broker_new(&cfg, &hooks, e.loop, &e.broker), MOTE_OK);
	assert_int_equal(broker_listen_tcp(e.broker, "127.0.0.1:0", err, sizeof err), MOTE_OK);
	e.port = broker_last_port(e.broker);
	assert_int_equal(provision_start(e.prov, e.loop, e.broker), MOTE_OK);
	assert_int_equal(pthread_create(&e.thread, NULL, e2e_main, &e), 0);

	fd = connect_client(e.port, "pump-5", "$provision/pump-5/#");
	publish(fd, "$provision/pump-5/csr", csr);
	ans = await_answer(fd, &is_cert);
	assert_true(is_cert);
	b = BIO_new_mem_buf(ans, -1);
	d = PEM_read_bio_X509(b, NULL, NULL, NULL);
	assert_non_null(d);
	X509_free(d);
	BIO_free(b);
	free(ans);
	/* The same id again: refused, and the answer says why. */
	publish(fd, "$provision/pump-5/csr", csr);
	ans = await_answer(fd, &is_cert);
	assert_false(is_cert);
	assert_non_null(strstr(ans, "issued before"));
	free(ans);
	/* Garbage. */
	publish(fd, "$provision/pump-5/csr", "\x01\x02 not a CSR");
	ans = await_answer(fd, &is_cert);
	assert_false(is_cert);
	assert_non_null(strstr(ans, "not a PEM certificate request"));
	free(ans);
	close(fd);

	broker_shutdown_async(e.broker);
	pthread_join(e.thread, NULL);
	provision_stop(e.prov);
	broker_free(e.broker);
	provision_free(e.prov);
	loop_free(e.loop);
	free(csr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handle_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tap_filters_and_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_end_to_end, setup, teardown),
	};

	mote_log_setup(getenv("LOGDEBUG") ? MOTE_LOG_DEBUG : MOTE_LOG_ERROR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
