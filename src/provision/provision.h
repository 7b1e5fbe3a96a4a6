/*
 * provision.h - provisioning by claim, the hub's side (docs/security.md,
 * "Provisioning by claim"): a device connected with a claim certificate
 * (CN claim:NAME) and client id ID publishes a PEM CSR to
 * $provision/ID/csr; the hub answers on $provision/ID/cert (the device
 * certificate, then the CA certificate) or $provision/ID/rejected
 * ({"error":"..."}), QoS 1, not retained. The PKI work is src/pki's
 * (mote_pki_claim_check, mote_pki_claim_sign) on the `mote pki` directory the
 * hub was started with (--pki DIR).
 *
 * Threading: the broker's tap hook calls provision_tap on any loop thread;
 * it only copies the request into a bounded queue (full: answered "busy")
 * after a per-claim rate limit. One worker thread signs. Answers go back
 * through an eventfd watched by the hub loop (the broker's first loop), where
 * broker_publish may be called. provision_claim_check (auth's CONNECT check)
 * may be called on any thread. provision_new/start/stop/free: the hub loop's
 * thread.
 *
 * Ownership: provision_new copies the config (and the directory name);
 * the loop and broker given to provision_start are borrowed until
 * provision_stop.
 */
#ifndef MOTE_PROVISION_H
#define MOTE_PROVISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "broker/broker.h"
#include "net/loop.h"

struct provision;

struct provision_config {
	const char *pki_dir;   /* a `mote pki` directory (copied) */
	uint32_t queue_max;    /* requests waiting for the signer; 0 = 32 */
	uint32_t rate_per_min; /* requests per claim per minute; 0 = 30 */
	uint32_t burst;        /* requests per claim at once; 0 = 10 */
	/*
	 * Audit trail (optional): called from the worker thread (and from loop
	 * threads for requests refused before signing) with an event name
	 * ("provision_issued", "provision_refused") and a JSON object
	 * ({"claim":"b1","id":"pump-1","peer":"...","serial"|"reason":"..."}),
	 * the shape of audit_append. Must be thread-safe.
	 */
	void (*audit)(void *ctx, const char *event, const char *json_fields);
	void *audit_ctx;
};

struct provision_stats {
	uint64_t requests; /* CSRs seen from claim holders */
	uint64_t issued;
	uint64_t refused;  /* by the template or the CSR checks */
	uint64_t busy;     /* queue full */
	uint64_t limited;  /* over the per-claim rate */
	uint64_t dropped;  /* answers lost: too many waiting for the hub loop */
};

/* MOTE_ENOMEM / MOTE_EINVAL (no directory). Caller owns *out. */
enum mote_err provision_new(const struct provision_config *cfg, struct provision **out);

/*
 * Starts the worker thread and watches the answer eventfd on `loop`, which
 * must be broker b's first loop (broker_publish runs there). MOTE_EIO.
 */
enum mote_err provision_start(struct provision *p, struct loop *loop, struct broker *b);

/*
 * Stops the worker (a request being signed finishes first) and the watcher;
 * requests and answers still waiting are dropped. After it, provision_tap
 * drops everything. Call on the loop thread after loop_run returned and
 * before broker_free. Idempotent.
 */
void provision_stop(struct provision *p);

/* Frees p (stopping it first if needed). NULL is accepted. Call after
 * broker_free: tap calls must have ended. */
void provision_free(struct provision *p);

/* The broker's tap hook body: any loop thread; cheap for other topics. */
void provision_tap(struct provision *p, const struct broker_client *c,
		   const struct broker_msg_view *m);

/*
 * The CONNECT check for a claim certificate: may the holder of claim
 * `claim` connect with client id `client_id`? MOTE_OK, or an error with a
 * reason for the client in reason[cap] (internal failures are logged with
 * their details and reported as "internal error").
 */
enum mote_err provision_claim_check(struct provision *p, const char *claim,
				    const char *client_id, char *reason, size_t cap);

/*
 * One request, synchronously, as the worker handles it (for tests and the
 * fuzz target): claim and id as the tap found them, the payload as sent.
 * On MOTE_OK *topic and *payload (one malloc'd block at *topic; free
 * *topic only) hold the answer to publish. MOTE_ENOMEM otherwise.
 */
enum mote_err provision_handle(struct provision *p, const char *claim, const char *id,
			       const char *peer, const uint8_t *payload, size_t len, char **topic,
			       size_t *topic_len, const uint8_t **answer, size_t *answer_len);

void provision_get_stats(struct provision *p, struct provision_stats *out);

#endif
