/*
 * claim.c - provisioning by claim for `mote sim --claim-cert/--claim-key`:
 * a device without a certificate of its own gets one before the fleet
 * starts, the way a device of a production batch does (docs/security.md,
 * "Provisioning by claim"): it makes its own key and CSR, connects over TLS
 * with the batch's claim certificate and its own client id, asks on
 * $provision/ID/csr and takes the answer from $provision/ID/cert (or
 * /rejected), then disconnects. The key never leaves this machine.
 *
 * One device at a time on the preparing thread, each bounded by
 * CLAIM_TIMEOUT_MS; the connection is a struct sim_dev of its own with the
 * device transport of device.c, so the bytes go the same way as later.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "pki/pki.h"
#include "sim/sim_int.h"
#include "tls/tls.h"

#define CLAIM_TIMEOUT_MS 20000u
#define ANSWER_MAX 65536u

/* What came back on $provision/ID/...: owned copy of the first answer. */
struct answer {
	char t_cert[SIM_TOPIC_MAX], t_rejected[SIM_TOPIC_MAX];
	int kind; /* 0 none yet, 1 certificate, 2 rejected */
	char *data; /* owned */
	size_t len;
	bool too_big;
};

static void on_answer(struct mote_client *c, const struct mqtt_publish *p, void *user)
{
	struct answer *a = user;
	(void)c;
	if (a->kind)
		return;
	int kind = sim_topic_is(p, a->t_cert) ? 1 : sim_topic_is(p, a->t_rejected) ? 2 : 0;
	if (!kind)
		return;
	if (p->payload.len > ANSWER_MAX) {
		a->too_big = true;
		a->kind = kind;
		return;
	}
	a->data = malloc(p->payload.len + 1);
	if (!a->data)
		return; /* counted as no answer: the caller times out and says so */
	memcpy(a->data, p->payload.p, p->payload.len);
	a->data[p->payload.len] = '\0';
	a->len = p->payload.len;
	a->kind = kind;
}

static uint32_t left_ms(uint64_t deadline)
{
	uint64_t now = mote_mono_ms();
	return now >= deadline ? 0 : (uint32_t)(deadline - now);
}

/* TCP connect and TLS handshake with the claim certificate, by deadline. */
static enum mote_err open_tls(struct sim_fleet *f, struct tls_client *claim, struct sim_dev *d,
			      uint64_t deadline, char *err, size_t errcap)
{
	int one = 1, fd = socket(f->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errcap, "socket: %s", strerror(errno));
		return MOTE_EIO;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (const struct sockaddr *)&f->addr, f->addr_len) != 0 &&
	    errno != EINPROGRESS) {
		snprintf(err, errcap, "connect: %s", strerror(errno));
		close(fd);
		return MOTE_EIO;
	}
	if (tls_stream_client(claim, &d->s, fd, f->host) != MOTE_OK) {
		close(fd);
		snprintf(err, errcap, "out of memory for TLS");
		return MOTE_ENOMEM;
	}
	/* The stream's flush drives the handshake; between steps, wait for the
	 * socket (the peer's part, or room to write). */
	while (tls_stream_handshaking(&d->s)) {
		if (d->s.ops->flush(&d->s) < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			snprintf(err, errcap, "TLS handshake: %s",
				 d->s.fault ? d->s.fault : strerror(errno));
			return MOTE_EIO;
		}
		if (!tls_stream_handshaking(&d->s))
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN | (d->s.want_write ? POLLOUT : 0) };
		uint32_t ms = left_ms(deadline);
		if (ms == 0 || poll(&p, 1, ms > 1000 ? 1000 : (int)ms) < 0) {
			snprintf(err, errcap, "TLS handshake: %s",
				 ms == 0 ? "timed out" : strerror(errno));
			return MOTE_ETIMEDOUT;
		}
	}
	return MOTE_OK;
}

/* CONNECT as id, SUBSCRIBE to the answers, PUBLISH the CSR, wait. */
static enum mote_err ask(struct sim_dev *d, const char *id, const char *csr, size_t csr_len,
			 struct answer *a, uint64_t deadline, char *err, size_t errcap)
{
	struct mote_connect_opts o = { .version = MQTT_V5, .client_id = id, .clean_start = true,
				       .keep_alive_s = 30 };
	struct mote_connack_info info;
	enum mote_err rc = mote_client_connect(&d->mc, &o, &info, left_ms(deadline));
	if (rc == MOTE_EDENIED) {
		/* 0x87 not authorized: the claim's template refused this id
		 * (prefix, quota, expiry, already issued); the hub's log says which. */
		snprintf(err, errcap, "the hub refused the claim CONNECT (reason 0x%02x); its log "
			 "and audit log say why (prefix, quota, expiry, id already issued)",
			 info.reason);
		return rc;
	}
	if (rc != MOTE_OK) {
		snprintf(err, errcap, "CONNECT: %s%s%s", mote_strerror(rc), d->s.fault ? ": " : "",
			 d->s.fault ? d->s.fault : "");
		return rc;
	}
	struct mqtt_sub_entry subs[2];
	uint8_t reasons[2];
	const char *filters[2] = { a->t_cert, a->t_rejected };
	memset(subs, 0, sizeof subs);
	for (int i = 0; i < 2; i++) {
		subs[i].filter.p = (const uint8_t *)filters[i];
		subs[i].filter.len = (uint16_t)strlen(filters[i]);
		subs[i].opts.qos = 1;
	}
	rc = mote_client_subscribe(&d->mc, subs, 2, NULL, reasons, left_ms(deadline));
	if (rc != MOTE_OK || reasons[0] >= 0x80 || reasons[1] >= 0x80) {
		snprintf(err, errcap, "SUBSCRIBE to %s: %s", a->t_cert,
			 rc != MOTE_OK ? mote_strerror(rc) : "refused by the hub");
		return rc != MOTE_OK ? rc : MOTE_EDENIED;
	}
	char t_csr[SIM_TOPIC_MAX];
	snprintf(t_csr, sizeof t_csr, "$provision/%s/csr", id);
	struct mote_publish pub = { .topic = t_csr, .payload = csr, .payload_len = csr_len,
				    .qos = 1 };
	uint8_t reason = 0;
	rc = mote_client_publish(&d->mc, &pub, &reason, left_ms(deadline));
	if (rc != MOTE_OK || reason >= 0x80) {
		snprintf(err, errcap, "PUBLISH %s: %s", t_csr,
			 rc != MOTE_OK ? mote_strerror(rc) : "refused by the hub");
		return rc != MOTE_OK ? rc : MOTE_EDENIED;
	}
	while (!a->kind) {
		uint32_t ms = left_ms(deadline);
		if (ms == 0) {
			snprintf(err, errcap, "no answer on %s within %u s (is the hub run with "
				 "--pki?)", a->t_cert, CLAIM_TIMEOUT_MS / 1000);
			return MOTE_ETIMEDOUT;
		}
		rc = mote_client_process(&d->mc, ms > 500 ? 500 : ms);
		if (rc == MOTE_EAGAIN)
			rc = MOTE_OK; /* a signal: Ctrl-C is looked at between devices */
		if (rc == MOTE_OK && mote_client_state(&d->mc) != MOTE_CLIENT_CONNECTED)
			rc = mote_client_error(&d->mc) != MOTE_OK ? mote_client_error(&d->mc)
								   : MOTE_ECLOSED;
		if (rc != MOTE_OK) {
			snprintf(err, errcap, "waiting for the certificate: %s", mote_strerror(rc));
			return rc;
		}
	}
	return MOTE_OK;
}

enum mote_err sim_claim_device(struct sim_fleet *f, struct tls_client *claim, const char *id,
			       const char *cert_path, const char *key_path, char *err,
			       size_t errcap)
{
	char key_part[PATH_MAX], e[512];
	char *csr = NULL;
	size_t csr_len = 0;
	uint64_t deadline = mote_mono_ms() + CLAIM_TIMEOUT_MS;
	struct answer a = { .kind = 0 };
	/* Its own sim_dev: the transport of device.c wants one (large: the
	 * SDK's buffers), and this one never joins the fleet. */
	struct sim_dev *d = calloc(1, sizeof *d);
	enum mote_err rc;

	if (!d) {
		snprintf(err, errcap, "out of memory");
		return MOTE_ENOMEM;
	}
	d->s.fd = -1;
	snprintf(a.t_cert, sizeof a.t_cert, "$provision/%s/cert", id);
	snprintf(a.t_rejected, sizeof a.t_rejected, "$provision/%s/rejected", id);
	/* The new key waits under another name until the certificate is here. */
	snprintf(key_part, sizeof key_part, "%s.part", key_path);
	rc = mote_pki_make_csr(id, key_part, &csr, &csr_len, e, sizeof e);
	if (rc != MOTE_OK) {
		snprintf(err, errcap, "%s", e);
		goto out;
	}
	const struct mote_client_cb cb = { .on_publish = on_answer };
	if ((rc = dev_client_init(d, CLAIM_TIMEOUT_MS, &cb, &a)) != MOTE_OK) {
		snprintf(err, errcap, "SDK client: %s", mote_strerror(rc));
		goto out;
	}
	if ((rc = open_tls(f, claim, d, deadline, err, errcap)) != MOTE_OK ||
	    (rc = ask(d, id, csr, csr_len, &a, deadline, err, errcap)) != MOTE_OK)
		goto out;
	if (a.too_big) {
		snprintf(err, errcap, "the answer on $provision/%s/ is over %u bytes", id, ANSWER_MAX);
		rc = MOTE_EPROTO;
	} else if (a.kind == 2) {
		snprintf(err, errcap, "the hub rejected the request: %.300s", a.data);
		rc = MOTE_EDENIED;
	} else if ((rc = mote_pki_save_cert(cert_path, id, a.data, a.len, e, sizeof e)) !=
		   MOTE_OK) {
		snprintf(err, errcap, "%s", e);
	} else if (rename(key_part, key_path) != 0) {
		snprintf(err, errcap, "%s: %s", key_path, strerror(errno));
		rc = MOTE_EIO;
	}
out:
	if (d->s.ops) {
		if (mote_client_state(&d->mc) == MOTE_CLIENT_CONNECTED)
			(void)mote_client_disconnect(&d->mc, MQTT_RC_SUCCESS, NULL);
		d->s.ops->close(&d->s);
	}
	if (rc != MOTE_OK)
		unlink(key_part);
	free(a.data);
	free(csr);
	free(d);
	return rc;
}
