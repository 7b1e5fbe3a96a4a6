/*
 * broker_thread.h - a broker on its own thread, for unit tests that talk to
 * it over sockets (header-only; each test includes it once).
 *
 * broker_thread_start creates a loop and a broker listening on
 * 127.0.0.1:<free port> and runs the loop on a new thread;
 * broker_thread_stop asks for a clean shutdown (broker_shutdown_async), joins
 * and frees everything. hooks (may be NULL) must outlive the broker.
 */
#ifndef MOTE_TESTS_BROKER_THREAD_H
#define MOTE_TESTS_BROKER_THREAD_H

#include <pthread.h>

#include "broker/broker.h"

struct broker_thread {
	struct loop *loop;
	struct broker *broker;
	pthread_t thread;
	uint16_t port;
};

static void *broker_thread_main(void *arg)
{
	struct broker_thread *t = arg;
	loop_run(t->loop);
	return NULL;
}

static inline int broker_thread_start(struct broker_thread *t, const struct broker_config *cfg,
				      const struct broker_hooks *hooks)
{
	char err[128];
	if (loop_new(&t->loop) != MOTE_OK ||
	    broker_new(cfg, hooks, t->loop, &t->broker) != MOTE_OK ||
	    broker_listen_tcp(t->broker, "127.0.0.1:0", err, sizeof err) != MOTE_OK)
		return -1;
	t->port = broker_last_port(t->broker);
	return pthread_create(&t->thread, NULL, broker_thread_main, t) == 0 ? 0 : -1;
}

static inline void broker_thread_stop(struct broker_thread *t)
{
	broker_shutdown_async(t->broker);
	pthread_join(t->thread, NULL);
	broker_free(t->broker);
	loop_free(t->loop);
}

#endif
