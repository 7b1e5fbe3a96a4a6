/*
 * bench_int.h - private structs of src/bench/: the shared run state, the
 * per-thread worker and the per-connection client. Nothing outside
 * src/bench/ includes this.
 */
#ifndef MOTE_BENCH_INT_H
#define MOTE_BENCH_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "bench/bench.h"
#include "mqtt/mqtt.h"
#include "net/loop.h"
#include "net/tcp.h"

/* Run phases, advanced only by the controller thread. */
enum phase {
	PH_SETUP = 0, /* connecting (and subscribing) */
	PH_RUN,       /* publishing / holding */
	PH_DRAIN,     /* no new publishes; waiting for acks and deliveries */
	PH_STOP,      /* workers disconnect and leave their loops */
};

enum role { ROLE_CONN, ROLE_PUB, ROLE_SUB };

enum cstate {
	CS_IDLE,       /* not opened yet */
	CS_CONNECTING, /* TCP connect in progress */
	CS_CONNACK,    /* CONNECT sent, waiting for CONNACK */
	CS_SUBACK,     /* SUBSCRIBE sent, waiting for SUBACK */
	CS_READY,      /* set up */
	CS_CLOSED,     /* failed, lost or finished; fd closed */
};

struct shared {
	const struct bench_cfg *cfg;
	_Atomic int phase;
	_Atomic uint64_t start_ns; /* when PH_RUN began */
};

/* Counters a worker updates and the controller reads (relaxed atomics, one writer). */
struct counters {
	_Atomic uint64_t attempted, connected, setup_done, closed_ready;
	_Atomic uint64_t sent, acked, received, bytes_sent, bytes_received;
	_Atomic uint64_t expected;   /* deliveries the sent messages should cause */
	_Atomic uint64_t pubs_done;  /* publishers finished (count reached, all acked) */
	_Atomic uint64_t subs_done;  /* subscribers that received their count */
	_Atomic uint64_t inflight;   /* unacked QoS 1/2 publishes */
	_Atomic uint64_t last_rx_ns;
	_Atomic uint64_t last_pub_ns; /* last publish written or acked */
	_Atomic uint64_t last_connect_ns;
	_Atomic uint64_t e_refused, e_failed, e_disc, e_proto, e_ack;
	_Atomic uint64_t held;       /* READY when the run stopped */
};

struct worker;

struct bclient {
	struct worker *w;
	enum role role;
	enum cstate state;
	uint32_t index;      /* index within its role, across threads */
	uint32_t seq_id;     /* number in the client id */
	struct net_stream s;
	struct loop_io io;
	uint64_t deadline_ms; /* connect / connack / suback timeout */
	uint64_t last_tx_ms;
	char topic[256];     /* publish topic or subscribe filter */
	uint16_t topic_len;
	uint16_t next_pid;
	uint16_t max_inflight;
	uint32_t inflight;
	uint32_t deliveries;  /* subscribers each publish of this client should reach */
	uint64_t sent;
	uint64_t received;
	bool done;            /* counted in pubs_done / subs_done */
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t *out;
	size_t out_len, out_cap;
};

struct worker {
	struct shared *sh;
	uint32_t id;
	pthread_t thread;
	struct loop *loop;
	struct loop_timer tick;
	struct bclient *clients;
	uint32_t nclients;
	uint32_t next_open;   /* clients [0, next_open) have been opened */
	uint64_t setup_start_ms;
	uint32_t src_rr;
	bool stopping;
	bool opening;         /* inside open_due (a failed open may end a setup) */
	struct counters c;
	struct hist lat;      /* end-to-end latency, us */
	enum mote_err err;    /* setup failure of the thread itself */
};

/* client.c */
void client_open(struct bclient *c);
/* Writes as many publishes as rate, inflight and buffer space allow. */
void client_pump(struct bclient *c);
void client_tick(struct bclient *c, uint64_t now_ms);
/* Sends DISCONNECT (best effort) and closes. */
void client_finish(struct bclient *c);
void client_free(struct bclient *c);

/* worker.c */
void *worker_main(void *arg);
/* A client finished its setup (ready or failed): with --conn-parallel the
 * next one opens now, not at the next tick. */
void worker_setup_ended(struct worker *w);

#define CNT_ADD(w, field, n) atomic_fetch_add_explicit(&(w)->c.field, (n), memory_order_relaxed)
#define CNT_GET(w, field) atomic_load_explicit(&(w)->c.field, memory_order_relaxed)

#endif
