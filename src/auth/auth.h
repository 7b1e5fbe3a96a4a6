/*
 * auth.h - who a client is and what it may do: the broker's accept,
 * authenticate and authorize hooks. The face of src/auth/
 * (docs/security.md, "Authentication and authorization", "Rate limits").
 *
 * Identities, in order:
 *  - a verified client certificate (mTLS): a device (identity from the CN or
 *    from a urn:mote:dev:ID URI SAN, by default equal to the client id) gets
 *    the built-in role device; a claim certificate (CN claim:NAME or URI
 *    urn:mote:claim:NAME) gets the role claim once the hub's claim check
 *    agrees (no check set: refused);
 *  - username + password: a user of DATA/users (argon2id) and its role;
 *  - username "token" + an API token as password: role = the token's scope;
 *  - nobody: only with allow_anonymous (development), which also lets an
 *    unknown username in as anonymous; anonymous clients may do anything
 *    but publish to $SYS.
 *
 * Threading: every hook is called on any of the broker's loop threads at
 * once; struct auth is safe for that (immutable roles, a lock-guarded user
 * store swapped on change, striped locks for the bounded rate-limit tables).
 * auth_new / auth_free: one thread, outside the broker's life.
 */
#ifndef MOTE_AUTH_H
#define MOTE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "audit/audit.h"
#include "base/err.h"
#include "broker/broker.h"

struct auth;

enum auth_identity { AUTH_IDENTITY_CN, AUTH_IDENTITY_URI };

/*
 * The hub's claim check (src/provision): may the holder of claim NAME
 * become device client_id? true: yes. false: why says in words (template
 * expired, prefix mismatch, id already issued, quota used). Called on loop
 * threads: thread-safe, fast.
 */
typedef bool (*auth_claim_check_fn)(void *ctx, const char *claim, const char *client_id,
				    char *why, size_t whycap);

struct auth_config {
	const char *data_dir;        /* DATA: the user store DATA/users */
	const char *acl_file;        /* roles (NULL: DATA/acl.conf if it exists) */
	bool allow_anonymous;
	uint8_t identity;            /* enum auth_identity: device id from CN or URI SAN */
	bool identity_must_match;    /* certificate identity == client id (default on) */
	/* Failed authentication per source address. */
	uint32_t fail_max;           /* failures ... (default 5) */
	uint32_t fail_window_s;      /* ... within this many seconds (default 60) */
	uint32_t block_s;            /* first refusal period, doubling each time (default 30) */
	uint32_t block_max_s;        /* longest refusal period (default 3600) */
	/* New connections per source address: a token bucket, 0 = off. */
	uint32_t conn_rate;          /* per second (default 20) */
	uint32_t conn_burst;         /* bucket size (default 100) */
	bool conn_limit_loopback;    /* also limit 127.0.0.0/8 and ::1 (default off) */
	uint32_t cache_s;            /* remember a verified password this long (default 60) */
	/* argon2id verifications per second over all addresses (default 10,
	 * 0 = unlimited): bounds what guessing from many addresses costs the
	 * loop threads; over it, CONNACK 0x89 server busy. */
	uint32_t hash_rate;
	uint32_t denied_log_per_10s; /* denial log lines + audit records per client (default 10) */
	struct audit *audit;         /* borrowed; NULL: no audit records */
	FILE *secret_out;            /* the first start's admin secret goes here (stdout) */
};

void auth_config_defaults(struct auth_config *cfg);

/*
 * Loads the roles and the user store. MOTE_EINVAL / MOTE_EIO with a
 * sentence in err. Caller owns *out.
 */
enum mote_err auth_new(const struct auth_config *cfg, struct auth **out, char *err,
		       size_t errcap);

/*
 * First start: when there was no DATA/users at auth_new, creates it with
 * user admin and a random secret printed once to cfg->secret_out (the
 * secret and its argon2id hash are made in auth_new, the hash in a child
 * process: call auth_new before starting threads that allocate). Does
 * nothing otherwise.
 * The hub calls it once its listeners are bound, before it serves.
 */
enum mote_err auth_first_start(struct auth *a, char *err, size_t errcap);
void auth_free(struct auth *a);

/* Before the broker starts. */
void auth_set_claim_check(struct auth *a, auth_claim_check_fn fn, void *ctx);

/* How a connection authenticated, from the principal the broker keeps. */
enum auth_kind {
	AUTH_KIND_NONE,
	AUTH_KIND_DEVICE,    /* its own client certificate */
	AUTH_KIND_CLAIM,     /* a claim certificate (provisioning only) */
	AUTH_KIND_USER,
	AUTH_KIND_TOKEN,
	AUTH_KIND_ANONYMOUS, /* allow_anonymous: the client id is all we know */
};
enum auth_kind auth_principal_kind(uint64_t principal);

/*
 * An API bearer token (`mote token create`): MOTE_OK with *scope_role the
 * token's role (ACL_ROLE_ADMIN, ACL_ROLE_WRITE or ACL_ROLE_READ) and name
 * its name (or "token:ID" when unnamed); MOTE_EDENIED for an unknown or
 * revoked one. Picks up a token created or revoked while the hub runs (the
 * user store is re-read when DATA/users changed, as for MQTT logins); the
 * digest is compared with every entry in constant time. Any thread.
 */
enum mote_err auth_check_token(struct auth *a, const char *token, size_t len, int *scope_role,
			       char *name, size_t namecap);
/*
 * The same for a client at address sa (an HTTP request): an address that
 * failed too often (MQTT logins and bad tokens count together) is refused
 * before the check with MOTE_EAGAIN and *retry_ms; a bad token counts
 * against the address and is logged and audited like a failed login.
 * sa NULL: no address limits.
 */
enum mote_err auth_check_token_from(struct auth *a, const struct sockaddr *sa, const char *token,
				    size_t len, int *scope_role, char *name, size_t namecap,
				    uint64_t *retry_ms);

/* Fills h->ctx, accept, authenticate and authorize; the rest is untouched. */
void auth_hooks(struct auth *a, struct broker_hooks *h);

/* The hooks themselves (ctx = struct auth), for hubs composing their own. */
bool auth_accept(void *ctx, const struct net_peer *peer);
uint8_t auth_authenticate(void *ctx, const struct broker_client *c,
			  const struct mqtt_connect *pkt);
bool auth_authorize(void *ctx, const struct broker_client *c, enum broker_access access,
		    const uint8_t *topic, size_t len);

#endif
