/*
 * bench.h - the load generator behind `mote bench`: the face of src/bench/.
 *
 * bench_run() opens the configured MQTT clients on one event loop per
 * thread, runs the scenario and fills a report. The caller owns cfg and
 * report; nothing passed in is kept after bench_run returns.
 *
 * Threading: bench_run starts cfg->threads worker threads and joins them
 * before returning. Each worker owns its clients, counters and histogram;
 * the controller (the calling thread) only reads workers' counters through
 * relaxed atomics and publishes the run phase through one atomic.
 */
#ifndef MOTE_BENCH_H
#define MOTE_BENCH_H

#include <signal.h>
#include <stdio.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/err.h"
#include "bench/histogram.h"

enum bench_mode { BENCH_CONN, BENCH_PUB, BENCH_SUB, BENCH_PUBSUB };
enum bench_shape { SHAPE_ONE_TO_ONE, SHAPE_FAN_OUT, SHAPE_FAN_IN };

#define BENCH_MAX_SOURCES 64
#define BENCH_MIN_PAYLOAD 16 /* 8-byte send timestamp + 8-byte sequence */

struct bench_cfg {
	enum bench_mode mode;
	enum bench_shape shape;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	struct sockaddr_storage sources[BENCH_MAX_SOURCES]; /* --source-ip */
	uint32_t nsources;
	uint32_t pubs;          /* publishers (pub, pubsub) */
	uint32_t subs;          /* subscribers (sub, pubsub) */
	uint32_t conns;         /* idle connections (conn) */
	uint32_t threads;
	uint8_t qos;
	uint8_t version;        /* MQTT_V311 or MQTT_V5 */
	uint32_t duration_s;    /* 0: run by count */
	uint64_t count;         /* messages per publisher (or per subscriber in sub), 0: by time */
	double rate;            /* msgs/s per publisher, 0 = as fast as acked */
	double conn_rate;       /* new connections per second, 0 = all at once */
	uint32_t conn_parallel; /* connections in setup at once (all threads), 0 = no cap */
	/* TLS: every connection runs a full handshake with this client context
	 * (tls.h; borrowed), checking the server's certificate for tls_host. */
	struct tls_client *tls;
	const char *tls_host;
	uint32_t payload;       /* bytes, >= BENCH_MIN_PAYLOAD */
	uint32_t inflight;      /* unacked QoS 1/2 messages per publisher */
	/* 0: clean sessions. > 0: every client's session outlives its connection
	 * (3.1.1 clean session 0; 5.0 Session Expiry Interval, 0xFFFFFFFF never),
	 * which makes a broker keep (and, if it persists, store) QoS 1/2 state. */
	uint32_t session_expiry;
	const char *topic;      /* pattern: %i client index, %t thread index */
	const char *username;   /* NULL: none */
	const char *password;   /* NULL: none */
	const char *id_prefix;
	/* > 0: every publish is a SenML pack of this many points (5 metrics m0..m4,
	 * one record per metric and second, 1 Hz device time from senml_base_s on,
	 * values with two decimals) instead of `payload` bytes: the telemetry load
	 * of issue 6. */
	uint32_t senml;
	int64_t senml_base_s;
	bool quiet;
	/* Set asynchronously (SIGINT) to end the run early; may be NULL. */
	volatile sig_atomic_t *interrupted;
};

struct bench_errors {
	uint64_t connect_refused; /* TCP refused or CONNACK with a failure code */
	uint64_t connect_failed;  /* other connect failures and timeouts */
	uint64_t disconnects;     /* connections lost after CONNACK */
	uint64_t protocol;        /* malformed or unexpected packets */
	uint64_t ack_failures;    /* PUBACK/PUBREC/SUBACK failure reason codes */
};

struct bench_report {
	uint64_t attempted;       /* connections attempted */
	uint64_t connected;       /* CONNACK success */
	uint64_t held;            /* still connected when the run ended */
	double connect_s;         /* time to establish the connections */
	uint64_t sent;            /* PUBLISH packets written */
	uint64_t acked;           /* QoS 1/2 publishes completed */
	uint64_t received;        /* PUBLISH packets received by subscribers */
	uint64_t bytes_sent;      /* payload bytes */
	uint64_t bytes_received;
	double send_s;            /* publishing phase, seconds */
	double recv_s;            /* publishing start to last message received */
	struct bench_errors err;
	struct hist latency;      /* end-to-end, microseconds */
	bool stopped_by_error;    /* nothing could be measured */
	char why[160];            /* when stopped_by_error */
};

/*
 * Expands a topic pattern (%i client index, %t thread index, %% a percent)
 * into buf. MOTE_ENOSPC if it does not fit.
 */
enum mote_err bench_topic(const char *pattern, uint32_t index, uint32_t thread, char *buf,
			  size_t cap, size_t *len);

/*
 * The filter one subscriber needs to see every topic of the pattern: each
 * level holding %i or %t becomes '+' ("bench/%i" -> "bench/+").
 */
enum mote_err bench_topic_filter(const char *pattern, char *buf, size_t cap, size_t *len);

/*
 * Runs the benchmark. MOTE_OK when the run happened (errors are counted in
 * the report; report->stopped_by_error says whether they stopped it),
 * MOTE_ENOMEM / MOTE_EIO when threads or loops cannot be set up. The report
 * must be heap or static memory (it holds a histogram of about 18 KB).
 */
enum mote_err bench_run(const struct bench_cfg *cfg, struct bench_report *report);

#define BENCH_SENML_MAX 1000
/* The SenML pack number seq of a publisher into out (at least npts * 48 + 64 bytes); its length. */
size_t bench_senml(uint8_t *out, uint32_t npts, uint64_t seq, int64_t base_s);

/* Final report: human text or one JSON object. */
void bench_print(FILE *out, const struct bench_cfg *cfg, const struct bench_report *r, bool json);

#endif
