/*
 * worker.c - one benchmark thread: a loop, its clients and a tick timer.
 *
 * The tick is the only place a worker looks at the shared phase: it opens
 * new connections at the configured rate during setup, paces rate-limited
 * publishers, checks setup timeouts and keep-alive, and at PH_STOP counts
 * the connections still held, disconnects them and leaves the loop.
 * Everything else is driven by socket events. Invariant: only this thread
 * touches its clients and histogram; the controller reads `c` only.
 */
#include "bench/bench_int.h"

#define TICK_RATE_MS 5u   /* when publishers are paced */
#define TICK_IDLE_MS 20u

static void open_due(struct worker *w, uint64_t now_ms)
{
	const struct bench_cfg *cfg = w->sh->cfg;
	uint32_t allowed = w->nclients;
	if (cfg->conn_rate > 0) {
		double per_thread = cfg->conn_rate / (double)cfg->threads;
		double a = per_thread * (double)(now_ms - w->setup_start_ms) / 1000.0 + 1.0;
		if (a < (double)allowed)
			allowed = (uint32_t)a;
	}
	uint32_t parallel = 0;
	if (cfg->conn_parallel) {
		parallel = cfg->conn_parallel / cfg->threads +
			   (w->id < cfg->conn_parallel % cfg->threads ? 1 : 0);
		if (parallel == 0)
			parallel = 1;
	}
	w->opening = true;
	while (w->next_open < allowed) {
		if (parallel && w->next_open - CNT_GET(w, setup_done) >= parallel)
			break;
		client_open(&w->clients[w->next_open++]);
	}
	w->opening = false;
}

void worker_setup_ended(struct worker *w)
{
	if (w->opening || !w->sh->cfg->conn_parallel ||
	    atomic_load_explicit(&w->sh->phase, memory_order_acquire) != PH_SETUP)
		return;
	open_due(w, loop_now(w->loop));
}

static void on_tick(struct loop *loop, struct loop_timer *t)
{
	struct worker *w = t->data;
	const struct bench_cfg *cfg = w->sh->cfg;
	uint64_t now = loop_now(loop);
	int phase = atomic_load_explicit(&w->sh->phase, memory_order_acquire);

	if (phase == PH_STOP) {
		uint64_t held = 0;
		for (uint32_t i = 0; i < w->nclients; i++)
			held += w->clients[i].state == CS_READY;
		CNT_ADD(w, held, held);
		for (uint32_t i = 0; i < w->nclients; i++)
			client_finish(&w->clients[i]);
		loop_stop(loop);
		return;
	}
	if (phase == PH_SETUP)
		open_due(w, now);
	for (uint32_t i = 0; i < w->nclients; i++)
		client_tick(&w->clients[i], now);
	uint64_t next = cfg->rate > 0 && phase == PH_RUN ? TICK_RATE_MS : TICK_IDLE_MS;
	if (loop_timer_start(loop, t, next) != MOTE_OK) {
		w->err = MOTE_ENOMEM;
		loop_stop(loop);
	}
}

void *worker_main(void *arg)
{
	struct worker *w = arg;
	loop_update_now(w->loop);
	w->setup_start_ms = loop_now(w->loop);
	loop_timer_init(&w->tick, on_tick, w);
	w->err = loop_timer_start(w->loop, &w->tick, 0);
	if (w->err == MOTE_OK)
		w->err = loop_run(w->loop);
	/* On a loop failure the clients still need closing. */
	for (uint32_t i = 0; i < w->nclients; i++)
		client_finish(&w->clients[i]);
	loop_timer_stop(w->loop, &w->tick);
	return NULL;
}
