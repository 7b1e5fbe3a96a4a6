/*
 * sim_int.h - what src/sim/'s own files share; nothing outside includes it.
 *
 * Ownership: struct sim_fleet owns the workers and the devices (one array);
 * a device belongs to exactly one worker, whose thread alone touches it
 * once the workers run. Counters in struct sim_counters are the only state
 * read across threads (atomics, relaxed: they are statistics).
 */
#ifndef MOTE_SIM_INT_H
#define MOTE_SIM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "net/loop.h"
#include "net/tcp.h"
#include "sdk/mote_client.h"
#include "sim/desired.h"
#include "sim/sim.h"
#include "tls/tls.h"

#define SIM_RX_CAP 16384u   /* largest twin message a device takes */
#define SIM_TX_CAP 512u     /* CONNECT, SUBSCRIBE, PUBLISH heads */
#define SIM_OUT_CAP 4096u   /* bytes waiting for the socket */
#define SIM_INFLIGHT 4u
#define SIM_TOPIC_MAX (SIM_ID_MAX + 32)

enum dev_state {
	D_WAIT = 0,   /* not connected; conn_timer: next attempt */
	D_TCP,        /* non-blocking connect in progress */
	D_TLS,        /* TLS handshake in progress */
	D_UP,         /* MQTT session open */
	D_STOPPED,
};

struct sim_worker;

struct sim_dev {
	struct sim_worker *w;
	unsigned index;
	char id[SIM_ID_MAX];
	enum sim_model model;
	char t_tel[SIM_TOPIC_MAX], t_get[SIM_TOPIC_MAX], t_update[SIM_TOPIC_MAX];
	char t_delta[SIM_TOPIC_MAX], t_get_acc[SIM_TOPIC_MAX], t_upd_acc[SIM_TOPIC_MAX];
	struct tls_client *tls; /* owned when own_tls */
	bool own_tls;

	/* the machine and what it was told */
	struct sim_asset asset;
	struct sim_rng frng;    /* random faults */
	struct sim_settings set;
	char last_error[SIM_ERROR_MAX];
	/* what was last reported, to report changes only */
	struct sim_settings rep;
	char rep_error[SIM_ERROR_MAX];
	bool rep_valid;
	bool report_pending;
	bool got_twin;
	uint64_t last_step_ms;  /* real time the asset was last advanced to */
	uint64_t next_tel_ms;

	/* connection */
	enum dev_state state;
	struct net_stream s;
	struct loop_io io;
	struct loop_timer conn_timer, tick_timer;
	unsigned backoff_n;
	bool warned;            /* a connection failure was logged */
	bool broken;            /* the transport failed inside an SDK call */
	struct mote_client mc;
	struct mote_inflight inflight[SIM_INFLIGHT];
	uint8_t tx[SIM_TX_CAP];
	uint8_t rx[SIM_RX_CAP];
	uint8_t out[SIM_OUT_CAP];
	size_t out_len;
};

struct sim_counters {
	atomic_uint connected;
	atomic_uint_fast64_t telemetry;
	atomic_uint_fast64_t reconnects;
	atomic_uint_fast64_t connect_failures;
	atomic_uint_fast64_t reports;
	atomic_uint_fast64_t desired;
	/* rate limit of connection failure warnings (device.c) */
	atomic_uint_fast64_t warned_ms;
	atomic_uint_fast64_t unlogged;
};

struct sim_worker {
	struct sim_fleet *f;
	unsigned id;
	struct loop *loop;
	pthread_t thread;
	bool started;
	struct sim_dev **devs;
	size_t ndevs;
	/* connect pacing: a token bucket */
	double tokens;
	uint64_t tokens_ms;
	double rate;            /* tokens per second */
	struct sim_rng rng;
};

struct sim_fleet {
	struct sim_config cfg;
	char *host;              /* for the TLS name check */
	char *prefix;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	struct tls_client *shared_tls; /* --mqtts without client certificates */
	struct sim_dev *devs;
	struct sim_worker *workers;
	unsigned nworkers;
	struct sim_counters c;
	uint64_t start_wall_ms;
	bool running;
};

/* device.c */
void dev_setup(struct sim_fleet *f, struct sim_dev *d, unsigned index, uint64_t now_ms);
/* On the worker's thread: arm the timers (first connect after delay_ms). */
enum mote_err dev_start(struct sim_dev *d, uint64_t delay_ms);
/* On the worker's thread: DISCONNECT if up, close, stop timers. */
void dev_stop(struct sim_dev *d);
/* Whether a received PUBLISH is on topic t. */
static inline bool sim_topic_is(const struct mqtt_publish *p, const char *t)
{
	size_t n = strlen(t);
	return p->topic.len == n && memcmp(p->topic.p, t, n) == 0;
}

/* d->mc over d->s with d's buffers (its transport blocks up to the SDK's
 * timeouts, with poll); cb and user as in struct mote_client_cfg. */
enum mote_err dev_client_init(struct sim_dev *d, uint32_t send_timeout_ms,
			      const struct mote_client_cb *cb, void *user);

/* claim.c: device id gets its certificate by claim (the connection uses the
 * claim's TLS context): key to key_path (0600), certificate to cert_path.
 * Blocking, at most 20 s. err says what failed and what to check. */
enum mote_err sim_claim_device(struct sim_fleet *f, struct tls_client *claim, const char *id,
			       const char *cert_path, const char *key_path, char *err,
			       size_t errcap);

/* register.c */
enum mote_err sim_register(struct sim_fleet *f, char *err, size_t errcap);

#endif
