/*
 * sim.h - the simulated fleet of `mote sim`: the face of src/sim/ (the
 * physics is asset.h, the twin handling desired.h).
 *
 * A fleet is N simulated devices, each a device-SDK client (src/sdk/) over
 * its own TCP or mutual-TLS connection, spread over a few worker threads,
 * each an epoll loop (src/net/loop.h). Devices publish telemetry, keep
 * their twin, obey desired properties and reconnect with backoff; see
 * docs/sim.md for the contract (ids, topics, metrics, twin keys).
 *
 * Life: sim_fleet_new() does the slow, fallible preparation on the calling
 * thread (certificates, registration over the REST API, TLS contexts) and
 * returns a fleet ready to run; sim_fleet_start() starts the workers;
 * sim_fleet_stats() may be called from any thread while they run;
 * sim_fleet_stop() disconnects every device cleanly and joins the workers;
 * sim_fleet_free() releases everything.
 *
 * Threading: the functions above are for one controlling thread; the
 * workers own their devices. Signals: workers inherit the caller's signal
 * mask, so a caller that handles SIGINT/SIGTERM with sigwait blocks them
 * before sim_fleet_start(). Streams write with write(2): ignore SIGPIPE.
 */
#ifndef MOTE_SIM_SIM_H
#define MOTE_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "sim/asset.h"

#define SIM_ID_MAX 96

struct sim_config {
	const char *host;        /* the hub's MQTT listener */
	uint16_t port;
	bool tls;                /* --mqtts: mutual TLS */
	unsigned devices;        /* 1.. */
	enum sim_model models[SIM_MODEL_COUNT * 4]; /* round robin */
	size_t nmodels;
	const char *prefix;      /* "" or e.g. "site1-" */
	const char *pki_dir;     /* --pki: issue missing device certificates */
	const char *certs_dir;   /* --certs: DIR/ID.pem + DIR/ID.key */
	/* --claim-cert/--claim-key: a device missing from certs_dir gets its
	 * certificate by claim first (provisioning by claim), saved there. */
	const char *claim_cert, *claim_key;
	const char *ca_file;     /* the CA that signed the hub (--ca, or PKI/ca.pem) */
	const char *api_url;     /* --api: register devices first */
	const char *token;
	uint32_t api_wait_ms;    /* wait this long for an API that refuses connections */
	uint32_t interval_ms;
	uint64_t seed;
	double fault_rate;       /* random faults per hour across the fleet */
	double speed;            /* simulated seconds per real second */
	unsigned threads;        /* 0: min(4, CPUs) */
	unsigned connect_rate;   /* new connections per second, whole fleet */
	bool verbose;            /* log every connection failure, not only the first */
	/* Polled during the preparation (certificates, registration), which can
	 * take a while: true stops it with MOTE_EAGAIN. May be NULL. */
	bool (*cancelled)(void *ctx);
	void *cancel_ctx;
};

struct sim_stats {
	unsigned devices;
	unsigned connected;      /* now */
	uint64_t telemetry;      /* messages published */
	uint64_t reconnects;     /* connections lost and tried again */
	uint64_t connect_failures;
	uint64_t reports;        /* twin reports published */
	uint64_t desired;        /* twin messages with desired keys handled */
};

struct sim_fleet;

/*
 * Device id of fleet member i (0-based): {prefix}{model}-{NNN}, NNN from 1,
 * at least 3 digits, more when the fleet has more than 999 devices.
 * Returns the length, 0 if it does not fit.
 */
size_t sim_device_id(const struct sim_config *cfg, unsigned i, char *buf, size_t cap);
enum sim_model sim_device_model(const struct sim_config *cfg, unsigned i);

/*
 * Prepares the fleet: ids, certificates (issued from cfg->pki_dir when
 * missing), TLS contexts, registration (cfg->api_url). On failure err says
 * what went wrong and what to do; MOTE_EINVAL (configuration), MOTE_EIO
 * (files, the API unreachable), MOTE_EDENIED (the API refused the token),
 * MOTE_ENOMEM, MOTE_EAGAIN (cancelled() said stop). The caller owns *out.
 */
enum mote_err sim_fleet_new(const struct sim_config *cfg, struct sim_fleet **out, char *err,
			    size_t errcap);
enum mote_err sim_fleet_start(struct sim_fleet *f, char *err, size_t errcap);
void sim_fleet_stats(struct sim_fleet *f, struct sim_stats *out);
/* Disconnects every device (MQTT DISCONNECT), stops and joins the workers. */
void sim_fleet_stop(struct sim_fleet *f);
void sim_fleet_free(struct sim_fleet *f);

#endif
