/*
 * run.c - bench_run: builds the clients, starts one worker thread per loop,
 * and acts as the controller: advances the phase (setup -> run -> drain ->
 * stop), prints the progress line and merges the workers' results.
 *
 * Invariants:
 *   - Only this thread writes sh->phase and sh->start_ns; workers only read.
 *   - Workers' counters are read with relaxed atomics while they run; their
 *     histograms only after pthread_join.
 *   - Clients are spread round robin: role index g lives on thread
 *     g % threads, so a 1:1 subscriber can compute its publisher's topic
 *     (including %t) without asking anyone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "bench/bench_int.h"

#define POLL_MS 20u
#define SETUP_GRACE_MS 30000u  /* beyond conn-rate pacing */
#define DRAIN_IDLE_MS 2000u    /* end drain when nothing moves this long */
#define DRAIN_MAX_MS 15000u

struct totals {
	uint64_t attempted, connected, setup_done, closed_ready, sent, acked, received;
	uint64_t bytes_sent, bytes_received, expected, pubs_done, subs_done, inflight;
	uint64_t last_rx_ns, last_pub_ns, last_connect_ns, held;
	struct bench_errors err;
};

static void sum(struct worker *ws, uint32_t n, struct totals *t)
{
	memset(t, 0, sizeof *t);
	for (uint32_t i = 0; i < n; i++) {
		struct worker *w = &ws[i];
		t->attempted += CNT_GET(w, attempted);
		t->connected += CNT_GET(w, connected);
		t->setup_done += CNT_GET(w, setup_done);
		t->closed_ready += CNT_GET(w, closed_ready);
		t->sent += CNT_GET(w, sent);
		t->acked += CNT_GET(w, acked);
		t->received += CNT_GET(w, received);
		t->bytes_sent += CNT_GET(w, bytes_sent);
		t->bytes_received += CNT_GET(w, bytes_received);
		t->expected += CNT_GET(w, expected);
		t->pubs_done += CNT_GET(w, pubs_done);
		t->subs_done += CNT_GET(w, subs_done);
		t->inflight += CNT_GET(w, inflight);
		t->held += CNT_GET(w, held);
		uint64_t v = CNT_GET(w, last_rx_ns);
		if (v > t->last_rx_ns)
			t->last_rx_ns = v;
		v = CNT_GET(w, last_pub_ns);
		if (v > t->last_pub_ns)
			t->last_pub_ns = v;
		v = CNT_GET(w, last_connect_ns);
		if (v > t->last_connect_ns)
			t->last_connect_ns = v;
		t->err.connect_refused += CNT_GET(w, e_refused);
		t->err.connect_failed += CNT_GET(w, e_failed);
		t->err.disconnects += CNT_GET(w, e_disc);
		t->err.protocol += CNT_GET(w, e_proto);
		t->err.ack_failures += CNT_GET(w, e_ack);
	}
}

static uint64_t errors_of(const struct bench_errors *e)
{
	return e->connect_refused + e->connect_failed + e->disconnects + e->protocol +
	       e->ack_failures;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Fills one client's role, topic and buffers. */
static enum mote_err setup_client(const struct bench_cfg *cfg, struct bclient *c, enum role role,
				  uint32_t index)
{
	enum mote_err err = MOTE_OK;
	size_t tl = 0;
	c->role = role;
	c->index = index;
	c->state = CS_IDLE;
	c->max_inflight = 1;
	if (role == ROLE_PUB) {
		uint32_t ti = cfg->shape == SHAPE_FAN_OUT ? 0 : index;
		err = bench_topic(cfg->topic, ti, ti % cfg->threads, c->topic, sizeof c->topic, &tl);
		if (cfg->mode == BENCH_PUBSUB) {
			if (cfg->shape == SHAPE_ONE_TO_ONE)
				c->deliveries = index < cfg->subs ? 1 : 0;
			else
				c->deliveries = cfg->subs;
		}
	} else if (role == ROLE_SUB) {
		if (cfg->mode == BENCH_PUBSUB && cfg->shape == SHAPE_FAN_IN)
			err = bench_topic_filter(cfg->topic, c->topic, sizeof c->topic, &tl);
		else if (cfg->mode == BENCH_PUBSUB && cfg->shape == SHAPE_FAN_OUT)
			err = bench_topic(cfg->topic, 0, 0, c->topic, sizeof c->topic, &tl);
		else
			err = bench_topic(cfg->topic, index, index % cfg->threads, c->topic,
					  sizeof c->topic, &tl);
	}
	if (err != MOTE_OK)
		return MOTE_EINVAL;
	c->topic_len = (uint16_t)tl;
	size_t msg = (size_t)cfg->payload + tl + 64;
	size_t user = (cfg->username ? strlen(cfg->username) : 0) +
		      (cfg->password ? strlen(cfg->password) : 0);
	c->in_cap = role == ROLE_SUB ? 16384 + msg : 4096;
	c->out_cap = (role == ROLE_PUB ? 32768 + msg : 1024) + user + 512;
	c->in = malloc(c->in_cap);
	c->out = malloc(c->out_cap);
	if (!c->in || !c->out)
		return MOTE_ENOMEM;
	/* Payload padding is whatever was here: make it defined once. */
	memset(c->out, 'm', c->out_cap);
	return MOTE_OK;
}

static enum mote_err build(const struct bench_cfg *cfg, struct worker *ws)
{
	uint32_t nroles[3] = { 0, 0, 0 };
	if (cfg->mode == BENCH_CONN)
		nroles[ROLE_CONN] = cfg->conns;
	if (cfg->mode == BENCH_PUB || cfg->mode == BENCH_PUBSUB)
		nroles[ROLE_PUB] = cfg->pubs;
	if (cfg->mode == BENCH_SUB || cfg->mode == BENCH_PUBSUB)
		nroles[ROLE_SUB] = cfg->subs;
	for (uint32_t t = 0; t < cfg->threads; t++) {
		uint32_t n = 0;
		for (int r = 0; r < 3; r++)
			n += nroles[r] / cfg->threads + (t < nroles[r] % cfg->threads ? 1 : 0);
		ws[t].clients = calloc(n ? n : 1, sizeof *ws[t].clients);
		if (!ws[t].clients)
			return MOTE_ENOMEM;
	}
	/* Subscribers first so that they are opened first. */
	static const enum role order[3] = { ROLE_SUB, ROLE_CONN, ROLE_PUB };
	for (int k = 0; k < 3; k++) {
		enum role r = order[k];
		for (uint32_t g = 0; g < nroles[r]; g++) {
			struct worker *w = &ws[g % cfg->threads];
			struct bclient *c = &w->clients[w->nclients];
			c->w = w;
			c->seq_id = w->nclients;
			w->nclients++;
			enum mote_err err = setup_client(cfg, c, r, g);
			if (err != MOTE_OK)
				return err;
		}
	}
	return MOTE_OK;
}

static void progress(const struct bench_cfg *cfg, double el, const struct totals *t,
		     const struct totals *prev)
{
	if (cfg->quiet)
		return;
	fprintf(stderr,
		"[%6.1fs] sent %8llu/s  recv %8llu/s  connected %6llu  errors %llu\n", el,
		(unsigned long long)(t->sent - prev->sent),
		(unsigned long long)(t->received - prev->received),
		(unsigned long long)(t->connected - t->closed_ready),
		(unsigned long long)errors_of(&t->err));
}

/* The controller: returns when every worker has been told to stop. */
static void control(const struct bench_cfg *cfg, struct shared *sh, struct worker *ws,
		    uint32_t total, struct bench_report *r)
{
	uint64_t t0 = mote_mono_ns(), last_print = t0, drain_start = 0, drain_moved = 0;
	uint64_t setup_limit_ms = SETUP_GRACE_MS;
	uint64_t drain_mark = UINT64_MAX;
	struct totals t, prev;
	if (cfg->conn_rate > 0)
		setup_limit_ms += (uint64_t)((double)total / cfg->conn_rate * 1000.0);
	memset(&prev, 0, sizeof prev);
	for (;;) {
		sleep_ms(POLL_MS);
		uint64_t now = mote_mono_ns();
		int phase = atomic_load_explicit(&sh->phase, memory_order_relaxed);
		bool intr = cfg->interrupted && *cfg->interrupted;
		sum(ws, cfg->threads, &t);
		if (now - last_print >= 1000000000ull) {
			progress(cfg, (double)(now - t0) / 1e9, &t, &prev);
			prev = t;
			last_print = now;
		}
		int next = phase;
		if (phase == PH_SETUP) {
			bool setup_over = t.setup_done >= total || intr ||
					  (now - t0) / 1000000u > setup_limit_ms;
			if (setup_over) {
				r->connect_s = t.last_connect_ns > t0 ? (double)(t.last_connect_ns - t0) / 1e9 : 0;
				if (t.connected == 0) {
					r->stopped_by_error = true;
					snprintf(r->why, sizeof r->why,
						 "no connection succeeded (%llu attempted)",
						 (unsigned long long)t.attempted);
					next = PH_STOP;
				} else if (intr) {
					next = PH_STOP;
				} else {
					atomic_store_explicit(&sh->start_ns, now, memory_order_relaxed);
					next = PH_RUN;
				}
			}
		} else if (phase == PH_RUN) {
			uint64_t start = atomic_load_explicit(&sh->start_ns, memory_order_relaxed);
			bool end = intr;
			if (cfg->duration_s && now - start >= (uint64_t)cfg->duration_s * 1000000000ull)
				end = true;
			if (cfg->count && cfg->mode != BENCH_CONN) {
				if (cfg->mode == BENCH_SUB ? t.subs_done >= cfg->subs
							   : t.pubs_done >= cfg->pubs)
					end = true;
			}
			if (t.closed_ready >= t.connected && t.setup_done >= total) {
				end = true; /* every connection is gone */
				r->stopped_by_error = true;
				snprintf(r->why, sizeof r->why, "every connection was lost");
			}
			if (end) {
				r->send_s = (double)(now - start) / 1e9;
				bool drain = cfg->mode == BENCH_PUB || cfg->mode == BENCH_PUBSUB;
				next = drain && !r->stopped_by_error ? PH_DRAIN : PH_STOP;
				drain_start = drain_moved = now;
				drain_mark = t.received + t.acked;
			}
		} else if (phase == PH_DRAIN) {
			bool subs_ok = cfg->mode != BENCH_PUBSUB || t.received >= t.expected;
			if (t.received + t.acked != drain_mark) {
				drain_mark = t.received + t.acked;
				drain_moved = now;
			}
			if ((t.inflight == 0 && subs_ok) || intr ||
			    now - drain_moved > DRAIN_IDLE_MS * 1000000ull ||
			    now - drain_start > DRAIN_MAX_MS * 1000000ull)
				next = PH_STOP;
		}
		if (next != phase)
			atomic_store_explicit(&sh->phase, next, memory_order_release);
		if (next == PH_STOP)
			break;
	}
	uint64_t start = atomic_load_explicit(&sh->start_ns, memory_order_relaxed);
	sum(ws, cfg->threads, &t);
	/* By count, publishing ended with the last write or ack, not when this
	 * thread noticed (up to POLL_MS later). */
	if (cfg->count && !cfg->duration_s && t.last_pub_ns > start && start)
		r->send_s = (double)(t.last_pub_ns - start) / 1e9;
	r->recv_s = t.last_rx_ns > start && start ? (double)(t.last_rx_ns - start) / 1e9 : r->send_s;
}

enum mote_err bench_run(const struct bench_cfg *cfg, struct bench_report *r)
{
	enum mote_err err = MOTE_OK;
	struct shared sh = { .cfg = cfg };
	struct worker *ws = calloc(cfg->threads, sizeof *ws);
	uint32_t started = 0, total = 0;

	memset(r, 0, sizeof *r);
	hist_init(&r->latency);
	atomic_init(&sh.phase, PH_SETUP);
	atomic_init(&sh.start_ns, 0);
	if (!ws)
		return MOTE_ENOMEM;
	for (uint32_t i = 0; i < cfg->threads; i++) {
		ws[i].sh = &sh;
		ws[i].id = i;
		hist_init(&ws[i].lat);
	}
	err = build(cfg, ws);
	if (err != MOTE_OK)
		goto out;
	for (uint32_t i = 0; i < cfg->threads; i++) {
		total += ws[i].nclients;
		err = loop_new(&ws[i].loop);
		if (err != MOTE_OK)
			goto out;
	}
	for (; started < cfg->threads; started++) {
		if (pthread_create(&ws[started].thread, NULL, worker_main, &ws[started]) != 0) {
			err = MOTE_EIO;
			atomic_store(&sh.phase, PH_STOP);
			goto out;
		}
	}
	control(cfg, &sh, ws, total, r);
out:
	for (uint32_t i = 0; i < started; i++)
		pthread_join(ws[i].thread, NULL);
	if (started == cfg->threads) {
		struct totals t;
		sum(ws, cfg->threads, &t);
		r->attempted = t.attempted;
		r->connected = t.connected;
		r->held = t.held;
		r->sent = t.sent;
		r->acked = t.acked;
		r->received = t.received;
		r->bytes_sent = t.bytes_sent;
		r->bytes_received = t.bytes_received;
		r->err = t.err;
		for (uint32_t i = 0; i < cfg->threads; i++) {
			hist_merge(&r->latency, &ws[i].lat);
			if (ws[i].err != MOTE_OK && err == MOTE_OK)
				err = ws[i].err;
		}
	}
	for (uint32_t i = 0; i < cfg->threads; i++) {
		for (uint32_t k = 0; k < ws[i].nclients; k++)
			client_free(&ws[i].clients[k]);
		free(ws[i].clients);
		if (ws[i].loop)
			loop_free(ws[i].loop);
	}
	free(ws);
	return err;
}
