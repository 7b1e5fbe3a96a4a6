/*
 * provision.c - the hub's provisioning service (see provision.h).
 *
 *   loop threads                worker thread              hub loop
 *   provision_tap ──requests──> mote_pki_claim_sign ──answers──> broker_publish
 *   (copy, rate limit,          (flock on DIR/.lock,          (eventfd wakes it)
 *    bounded queue)              may take milliseconds)
 *
 * Both lists live under one mutex; the tap holds it only to link a copied
 * request, so routing never waits for signing. Requests are bounded by
 * queue_max (a full queue is answered "busy" at once); answers by
 * 2 * queue_max + ANSWER_SLACK, beyond which an answer is dropped and counted
 * (its device times out and asks again). A request is never answered twice
 * and never leaves the hub loop unanswered except at stop.
 *
 * Who sent the request is decided only from what the TLS layer verified
 * (cert_cn, cert_uri) and the client id: the auth helper's ACL already lets
 * only claim holders publish to their own $provision/ID/csr, and this file
 * checks it again so a mistake there cannot mint certificates.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "pki/pki.h"
#include "provision/provision.h"

#define TOPIC_ROOT "$provision/"
#define TOPIC_ROOT_LEN (sizeof TOPIC_ROOT - 1)
#define ANSWER_SLACK 16
#define MAX_BUCKETS 256
#define LIMIT_REPORT_MS 10000

struct req {
	struct req *next;
	char claim[MOTE_PKI_CLAIM_MAX + 1];
	char id[MOTE_PKI_DEVID_MAX + 1];
	char peer[56];
	size_t len;
	uint8_t payload[];
};

/* One answer: the topic, a NUL, then the payload, in one block. */
struct ans {
	struct ans *next;
	size_t topic_len, payload_len;
	char data[];
};

/* A token bucket per claim name, refilled at rate_per_min. */
struct bucket {
	char claim[MOTE_PKI_CLAIM_MAX + 1];
	double tokens;
	uint64_t last_ms;
	/* A flood of refusals makes one log line and audit record per
	 * LIMIT_REPORT_MS, carrying how many it stands for. */
	uint64_t reported_ms;
	uint32_t unreported;
};

struct provision {
	char *dir;
	uint32_t queue_max, rate_per_min, burst;
	void (*audit)(void *ctx, const char *event, const char *json_fields);
	void *audit_ctx;

	pthread_mutex_t mu; /* everything below */
	pthread_cond_t cv;  /* the worker waits for requests or stop */
	struct req *req_head, *req_tail;
	uint32_t nreq;
	struct ans *ans_head, *ans_tail;
	uint32_t nans;
	bool stopping;
	struct bucket buckets[MAX_BUCKETS];
	size_t nbuckets;
	struct provision_stats stats;

	int efd; /* written by the hub loop thread under mu, read under mu */

	/* Hub loop thread only. */
	bool started;
	pthread_t worker;
	struct loop_io io;
	struct loop *loop;
	struct broker *broker;
};

enum mote_err provision_new(const struct provision_config *cfg, struct provision **out)
{
	struct provision *p;

	*out = NULL;
	if (!cfg->pki_dir || !*cfg->pki_dir)
		return MOTE_EINVAL;
	p = calloc(1, sizeof *p);
	if (!p)
		return MOTE_ENOMEM;
	p->dir = strdup(cfg->pki_dir);
	if (!p->dir) {
		free(p);
		return MOTE_ENOMEM;
	}
	p->queue_max = cfg->queue_max ? cfg->queue_max : 32;
	p->rate_per_min = cfg->rate_per_min ? cfg->rate_per_min : 30;
	p->burst = cfg->burst ? cfg->burst : 10;
	p->audit = cfg->audit;
	p->audit_ctx = cfg->audit_ctx;
	p->efd = -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	*out = p;
	return MOTE_OK;
}

/* JSON string contents for s (quotes and control bytes escaped, other
 * bytes as they are: every text here is ASCII from pki or validated ids). */
static void json_str(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
}

static void audit(struct provision *p, const char *event, const char *claim, const char *id,
		  const char *peer, const char *key, const char *value)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (!p->audit)
		return;
	f = open_memstream(&text, &len);
	if (!f)
		return;
	fputs("{\"claim\":\"", f);
	json_str(f, claim);
	fputs("\",\"id\":\"", f);
	json_str(f, id);
	fputs("\",\"peer\":\"", f);
	json_str(f, peer);
	fprintf(f, "\",\"%s\":\"", key);
	json_str(f, value);
	fputs("\"}", f);
	if (fclose(f) == 0)
		p->audit(p->audit_ctx, event, text);
	free(text);
}

static struct ans *ans_make(const char *id, const char *kind, const void *payload, size_t len)
{
	size_t tlen = TOPIC_ROOT_LEN + strlen(id) + 1 + strlen(kind);
	struct ans *a = malloc(sizeof *a + tlen + 1 + len);

	if (!a)
		return NULL;
	a->next = NULL;
	a->topic_len = tlen;
	a->payload_len = len;
	snprintf(a->data, tlen + 1, "%s%s/%s", TOPIC_ROOT, id, kind);
	if (len)
		memcpy(a->data + tlen + 1, payload, len);
	return a;
}

static struct ans *ans_rejected(const char *id, const char *why)
{
	char *json = NULL;
	size_t len = 0;
	struct ans *a = NULL;
	FILE *f = open_memstream(&json, &len);

	if (!f)
		return NULL;
	fputs("{\"error\":\"", f);
	json_str(f, why);
	fputs("\"}", f);
	if (fclose(f) == 0)
		a = ans_make(id, "rejected", json, len);
	free(json);
	return a;
}

/* The worker's part of one request: sign or refuse, log, audit, count. */
static struct ans *handle(struct provision *p, const char *claim, const char *id,
			  const char *peer, const uint8_t *payload, size_t len)
{
	char err[512] = "", serial[68] = "", qid[96], qclaim[96];
	char *pem = NULL;
	size_t pem_len = 0;
	struct ans *a;
	enum mote_err rc = mote_pki_claim_sign(p->dir, claim, id, payload, len, &pem, &pem_len,
					       serial, err, sizeof err);

	mote_log_quote(qid, sizeof qid, id, strlen(id));
	mote_log_quote(qclaim, sizeof qclaim, claim, strlen(claim));
	if (rc == MOTE_OK) {
		MOTE_INFO("provision", "event=issued claim=%s id=%s serial=%s peer=%s", qclaim, qid,
			  serial, peer);
		audit(p, "provision_issued", claim, id, peer, "serial", serial);
		a = ans_make(id, "cert", pem, pem_len);
	} else {
		char qerr[600];
		bool refusal = rc == MOTE_EDENIED || rc == MOTE_EINVAL || rc == MOTE_ENOTFOUND;

		mote_log_quote(qerr, sizeof qerr, err, strlen(err));
		if (refusal) {
			MOTE_WARN("provision", "event=refused claim=%s id=%s peer=%s why=%s", qclaim,
				  qid, peer, qerr);
		} else {
			MOTE_ERROR("provision", "event=sign_failed claim=%s id=%s peer=%s why=%s "
				   "hint=\"check the --pki directory\"", qclaim, qid, peer, qerr);
			/* Paths and OpenSSL details stay in the log. */
			snprintf(err, sizeof err, "internal error; try again later");
		}
		audit(p, "provision_refused", claim, id, peer, "reason", err);
		a = ans_rejected(id, err);
	}
	free(pem);
	pthread_mutex_lock(&p->mu);
	if (rc == MOTE_OK)
		p->stats.issued++;
	else
		p->stats.refused++;
	pthread_mutex_unlock(&p->mu);
	return a;
}

enum mote_err provision_handle(struct provision *p, const char *claim, const char *id,
			       const char *peer, const uint8_t *payload, size_t len, char **topic,
			       size_t *topic_len, const uint8_t **answer, size_t *answer_len)
{
	struct ans *a = handle(p, claim, id, peer, payload, len);
	size_t size;

	if (!a)
		return MOTE_ENOMEM;
	size = a->topic_len + 1 + a->payload_len;
	*topic = malloc(size);
	if (!*topic) {
		free(a);
		return MOTE_ENOMEM;
	}
	memcpy(*topic, a->data, size);
	*topic_len = a->topic_len;
	*answer = (const uint8_t *)*topic + a->topic_len + 1;
	*answer_len = a->payload_len;
	free(a);
	return MOTE_OK;
}

/* Under p->mu. Takes a; drops it when too many answers wait already. */
static bool push_answer(struct provision *p, struct ans *a)
{
	if (p->stopping || p->nans >= 2 * p->queue_max + ANSWER_SLACK) {
		p->stats.dropped++;
		free(a);
		return false;
	}
	if (p->ans_tail)
		p->ans_tail->next = a;
	else
		p->ans_head = a;
	p->ans_tail = a;
	p->nans++;
	return true;
}

static void wake_hub(struct provision *p)
{
	uint64_t one = 1;

	if (p->efd < 0) /* not started: tests that call provision_tap alone */
		return;
	/* EAGAIN means the counter is full, so the loop wakes anyway. */
	if (write(p->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		MOTE_ERROR("provision", "event=wake_failed why=\"%s\"", strerror(errno));
}

/* Under p->mu. */
static void queue_answer(struct provision *p, struct ans *a)
{
	if (!a)
		p->stats.dropped++;
	else if (push_answer(p, a))
		wake_hub(p);
}

static void *worker_main(void *arg)
{
	struct provision *p = arg;

	for (;;) {
		struct req *r;
		struct ans *a;

		pthread_mutex_lock(&p->mu);
		while (!p->stopping && !p->req_head)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stopping) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		r = p->req_head;
		p->req_head = r->next;
		if (!p->req_head)
			p->req_tail = NULL;
		p->nreq--;
		pthread_mutex_unlock(&p->mu);

		a = handle(p, r->claim, r->id, r->peer, r->payload, r->len);
		free(r);
		pthread_mutex_lock(&p->mu);
		queue_answer(p, a);
		pthread_mutex_unlock(&p->mu);
	}
}

static void on_answers(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct provision *p = io->data;
	struct ans *list;
	uint64_t n;

	(void)loop;
	(void)events;
	while (read(p->efd, &n, sizeof n) > 0)
		;
	pthread_mutex_lock(&p->mu);
	list = p->ans_head;
	p->ans_head = p->ans_tail = NULL;
	p->nans = 0;
	pthread_mutex_unlock(&p->mu);
	while (list) {
		struct ans *a = list;
		enum mote_err rc;

		list = a->next;
		rc = broker_publish(p->broker, (const uint8_t *)a->data, a->topic_len,
				    (const uint8_t *)a->data + a->topic_len + 1, a->payload_len, 1,
				    false);
		if (rc) {
			char qt[160];

			mote_log_quote(qt, sizeof qt, a->data, a->topic_len);
			MOTE_WARN("provision", "event=answer_lost topic=%s why=\"%s\"", qt,
				  mote_strerror(rc));
		}
		free(a);
	}
}

enum mote_err provision_start(struct provision *p, struct loop *loop, struct broker *b)
{
	enum mote_err rc;

	if (p->started)
		return MOTE_EINVAL;
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0)
		return MOTE_EIO;
	p->loop = loop;
	p->broker = b;
	rc = loop_io_start(loop, &p->io, p->efd, LOOP_READ, on_answers, p);
	if (rc)
		goto fail;
	if (pthread_create(&p->worker, NULL, worker_main, p) != 0) {
		loop_io_stop(loop, &p->io);
		rc = MOTE_EIO;
		goto fail;
	}
	p->started = true;
	return MOTE_OK;
fail:
	close(p->efd);
	p->efd = -1;
	return rc;
}

void provision_stop(struct provision *p)
{
	struct req *r;
	struct ans *a;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (p->started) {
		int fd;

		pthread_join(p->worker, NULL);
		loop_io_stop(p->loop, &p->io);
		pthread_mutex_lock(&p->mu);
		fd = p->efd;
		p->efd = -1;
		pthread_mutex_unlock(&p->mu);
		close(fd);
		p->started = false;
	}
	pthread_mutex_lock(&p->mu);
	r = p->req_head;
	a = p->ans_head;
	p->req_head = p->req_tail = NULL;
	p->ans_head = p->ans_tail = NULL;
	p->nreq = p->nans = 0;
	pthread_mutex_unlock(&p->mu);
	while (r) {
		struct req *next = r->next;

		free(r);
		r = next;
	}
	while (a) {
		struct ans *next = a->next;

		free(a);
		a = next;
	}
}

void provision_free(struct provision *p)
{
	if (!p)
		return;
	provision_stop(p);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->dir);
	free(p);
}

enum token { TOKEN_TAKEN, TOKEN_REFUSED_REPORT, TOKEN_REFUSED_QUIET };

/* Under p->mu: takes a token of claim's bucket. When it is empty, says
 * whether this refusal is the one to log (*unreported: how many it stands
 * for). */
static enum token take_token(struct provision *p, const char *claim, uint32_t *unreported)
{
	uint64_t now = mote_mono_ms();
	struct bucket *b = NULL;

	for (size_t i = 0; i < p->nbuckets && !b; i++)
		if (strcmp(p->buckets[i].claim, claim) == 0)
			b = &p->buckets[i];
	if (!b) {
		/* Claim names come only from certificates the CA signed, so the
		 * table stays small; when full, the longest-idle bucket goes. */
		if (p->nbuckets < MAX_BUCKETS) {
			b = &p->buckets[p->nbuckets++];
		} else {
			b = &p->buckets[0];
			for (size_t i = 1; i < p->nbuckets; i++)
				if (p->buckets[i].last_ms < b->last_ms)
					b = &p->buckets[i];
		}
		memset(b, 0, sizeof *b);
		snprintf(b->claim, sizeof b->claim, "%s", claim);
		b->tokens = p->burst;
		b->last_ms = now;
	}
	b->tokens += (double)(now - b->last_ms) * p->rate_per_min / 60000.0;
	if (b->tokens > p->burst)
		b->tokens = p->burst;
	b->last_ms = now;
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return TOKEN_TAKEN;
	}
	b->unreported++;
	if (b->reported_ms && now - b->reported_ms < LIMIT_REPORT_MS)
		return TOKEN_REFUSED_QUIET;
	b->reported_ms = now;
	*unreported = b->unreported;
	b->unreported = 0;
	return TOKEN_REFUSED_REPORT;
}

/* "$provision/ID/csr" -> ID (NUL-terminated into id); false for anything else. */
static bool csr_topic(const uint8_t *t, size_t len, char id[MOTE_PKI_DEVID_MAX + 1])
{
	size_t idlen;

	if (len < TOPIC_ROOT_LEN + 5 || memcmp(t, TOPIC_ROOT, TOPIC_ROOT_LEN) != 0 ||
	    memcmp(t + len - 4, "/csr", 4) != 0)
		return false;
	idlen = len - TOPIC_ROOT_LEN - 4;
	if (idlen > MOTE_PKI_DEVID_MAX || memchr(t + TOPIC_ROOT_LEN, '/', idlen) ||
	    memchr(t + TOPIC_ROOT_LEN, 0, idlen))
		return false;
	memcpy(id, t + TOPIC_ROOT_LEN, idlen);
	id[idlen] = 0;
	return true;
}

/* The claim name the client's verified certificate carries, or NULL. */
static bool claim_of(const struct broker_client *c, char name[MOTE_PKI_CLAIM_MAX + 1])
{
	size_t cnlen = strlen(MOTE_PKI_CLAIM_CN), urilen = strlen(MOTE_PKI_CLAIM_URI);

	if (!c->cert_cn || strncmp(c->cert_cn, MOTE_PKI_CLAIM_CN, cnlen) != 0 ||
	    strlen(c->cert_cn + cnlen) > MOTE_PKI_CLAIM_MAX)
		return false;
	strcpy(name, c->cert_cn + cnlen);
	if (mote_pki_check_claim_name(name, NULL, 0))
		return false;
	/* Both names are ours; a certificate whose two names disagree is not. */
	if (c->cert_uri && strncmp(c->cert_uri, MOTE_PKI_CLAIM_URI, urilen) == 0 &&
	    strcmp(c->cert_uri + urilen, name) != 0)
		return false;
	return true;
}

void provision_tap(struct provision *p, const struct broker_client *c,
		   const struct broker_msg_view *m)
{
	char id[MOTE_PKI_DEVID_MAX + 1], claim[MOTE_PKI_CLAIM_MAX + 1], qid[96];
	const char *why = NULL, *peer;
	struct req *r = NULL;
	enum token token = TOKEN_TAKEN;
	uint32_t unreported = 0;
	bool stopping;

	if (!c || !csr_topic(m->topic, m->topic_len, id))
		return;
	peer = c->peer ? c->peer : "";
	mote_log_quote(qid, sizeof qid, c->client_id, c->client_id_len);
	if (!claim_of(c, claim)) {
		MOTE_WARN("provision", "event=ignored client=%s peer=%s why=\"not a claim "
			  "certificate\"", qid, peer);
		return;
	}
	if (c->client_id_len != strlen(id) || memcmp(c->client_id, id, c->client_id_len) != 0) {
		MOTE_WARN("provision", "event=ignored client=%s peer=%s why=\"topic names another "
			  "client id\"", qid, peer);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->stats.requests++;
	stopping = p->stopping;
	if (!stopping)
		token = take_token(p, claim, &unreported);
	if (token != TOKEN_TAKEN)
		p->stats.limited++;
	pthread_mutex_unlock(&p->mu);
	if (stopping)
		return;
	if (token != TOKEN_TAKEN)
		why = "rate limited; try again in a minute";
	else if (m->payload_len > MOTE_PKI_CSR_MAX)
		why = "the CSR is too large";
	else if (!(r = malloc(sizeof *r + m->payload_len)))
		why = "busy; try again later";
	if (r) {
		r->next = NULL;
		strcpy(r->claim, claim);
		strcpy(r->id, id);
		snprintf(r->peer, sizeof r->peer, "%s", peer);
		r->len = m->payload_len;
		if (m->payload_len)
			memcpy(r->payload, m->payload, m->payload_len);
		pthread_mutex_lock(&p->mu);
		if (p->nreq < p->queue_max && !p->stopping) {
			if (p->req_tail)
				p->req_tail->next = r;
			else
				p->req_head = r;
			p->req_tail = r;
			p->nreq++;
			r = NULL;
			pthread_cond_signal(&p->cv);
		} else {
			p->stats.busy++;
		}
		pthread_mutex_unlock(&p->mu);
		if (!r)
			return;
		free(r);
		why = "busy; try again later";
	}
	if (token == TOKEN_REFUSED_REPORT) {
		MOTE_WARN("provision", "event=refused client=%s peer=%s why=\"%s\" count=%u", qid,
			  peer, why, unreported);
		audit(p, "provision_refused", claim, id, peer, "reason", why);
	} else if (token == TOKEN_TAKEN) {
		MOTE_WARN("provision", "event=refused client=%s peer=%s why=\"%s\"", qid, peer, why);
		audit(p, "provision_refused", claim, id, peer, "reason", why);
	}
	{
		struct ans *a = ans_rejected(id, why);

		pthread_mutex_lock(&p->mu);
		queue_answer(p, a);
		pthread_mutex_unlock(&p->mu);
	}
}

enum mote_err provision_claim_check(struct provision *p, const char *claim,
				    const char *client_id, char *reason, size_t cap)
{
	char err[512] = "";
	enum mote_err rc = mote_pki_claim_check(p->dir, claim, client_id, err, sizeof err);

	if (rc == MOTE_OK || rc == MOTE_EDENIED || rc == MOTE_EINVAL || rc == MOTE_ENOTFOUND) {
		snprintf(reason, cap, "%s", err);
	} else {
		char q[600];

		mote_log_quote(q, sizeof q, err, strlen(err));
		MOTE_ERROR("provision", "event=claim_check_failed why=%s "
			   "hint=\"check the --pki directory\"", q);
		snprintf(reason, cap, "internal error");
	}
	return rc;
}

void provision_get_stats(struct provision *p, struct provision_stats *out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->stats;
	pthread_mutex_unlock(&p->mu);
}
