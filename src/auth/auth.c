/*
 * auth.c - the broker's accept, authenticate and authorize hooks (auth.h).
 *
 * CONNECT speed. argon2id is slow on purpose (about 20-40 ms here, see
 * docs/security.md), and the authenticate hook runs on a loop thread that
 * serves thousands of other connections, synchronously (the broker has no
 * way to park a CONNECT). So a verified (username, password) pair is
 * remembered for cache_s seconds as a keyed SHA-256 digest (a per-process
 * random key; never the password), and a reconnect within that time costs
 * a hash and a table look-up. A change of the user store (a new
 * generation) forgets every entry. Certificate and token logins never run
 * argon2id. Failed logins are not cached and are what the per-address
 * refusal (limit.c) bounds: 5 failures cost one loop thread ~150 ms and
 * then the address is refused before any hashing.
 *
 * The principal the broker keeps for a connection: bits 0-15 role index + 1,
 * bits 16-23 kind, bits 32-63 the token id of a token login.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "auth/acl.h"
#include "auth/auth.h"
#include "auth/limit.h"
#include "auth/store.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"

/* The same order as enum auth_kind (auth.h). */
enum kind { K_NONE, K_DEVICE, K_CLAIM, K_USER, K_TOKEN, K_ANON };
static const char *const kind_names[] = { "none", "device", "claim", "user", "token",
					  "anonymous" };

#define CACHE_SLOTS 1024
#define ADMIN_SECRET_LEN 32

struct cache_slot {
	unsigned char key[32];
	uint64_t gen;
	uint64_t expires_ms;
	int role;
	bool used;
};

struct auth {
	struct auth_config cfg;
	char data_dir[4096];
	struct acl *acl;
	/* The user store: swapped whole when the file changes. */
	pthread_rwlock_t store_lock;
	struct store *store;
	uint64_t store_gen;
	pthread_mutex_t reload_mu;
	ino_t store_ino;
	off_t store_size;
	struct timespec store_mtime;
	/* Verified passwords. */
	pthread_mutex_t cache_mu;
	struct cache_slot cache[CACHE_SLOTS];
	unsigned char cache_secret[32];
	/* Verified against when the user is unknown: the same cost. Made on
	 * first use, so a start does not pay for a second argon2id. */
	pthread_mutex_t dummy_mu;
	char *dummy_hash;
	struct limiter *addrs;   /* failed logins, connection buckets */
	struct limiter *budgets; /* denial and refusal reports */
	auth_claim_check_fn claim_check;
	void *claim_ctx;
	_Atomic uint64_t argon2_runs;
	/* The global argon2id budget (cfg.hash_rate): a token bucket whose
	 * size is one second's worth. */
	pthread_mutex_t hash_mu;
	double hash_tokens;
	uint64_t hash_last_ms;
	bool first_start_pending; /* no DATA/users at auth_new */
	/* The first start's admin secret and its hash, made in auth_new: the
	 * hash comes from a forked child, and a fork is only safe while the
	 * hub has no busy threads (one inside malloc at fork time leaves the
	 * child's allocator locked for good). Cleansed once used. */
	char first_secret[ADMIN_SECRET_LEN + 1];
	char *first_hash;
};

/* A key of the report budget table that no address can produce. */
#define HASH_BUDGET_KEY 0x68617368627564ull

/*
 * One argon2id run from the global budget. Per-address refusals stop one
 * guesser; this stops many addresses together from keeping the loop
 * threads busy hashing (each run is ~20 ms of a loop thread).
 */
static bool hash_budget_take(struct auth *a, uint64_t now)
{
	if (a->cfg.hash_rate == 0)
		return true;
	pthread_mutex_lock(&a->hash_mu);
	double cap = a->cfg.hash_rate;
	if (now > a->hash_last_ms) {
		a->hash_tokens += (double)(now - a->hash_last_ms) * cap / 1000.0;
		if (a->hash_tokens > cap)
			a->hash_tokens = cap;
		a->hash_last_ms = now;
	}
	bool ok = a->hash_tokens >= 1.0;
	if (ok)
		a->hash_tokens -= 1.0;
	pthread_mutex_unlock(&a->hash_mu);
	return ok;
}

void auth_config_defaults(struct auth_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->data_dir = "data";
	cfg->identity = AUTH_IDENTITY_CN;
	cfg->identity_must_match = true;
	cfg->fail_max = 5;
	cfg->fail_window_s = 60;
	cfg->block_s = 30;
	cfg->block_max_s = 3600;
	cfg->conn_rate = 20;
	cfg->conn_burst = 100;
	cfg->cache_s = 60;
	cfg->hash_rate = 10;
	cfg->denied_log_per_10s = 10;
	cfg->secret_out = stdout;
}

/* ---- small helpers ---- */

static void audit_rec(struct auth *a, const char *event, const char *fields)
{
	if (a->cfg.audit)
		audit_append(a->cfg.audit, event, fields);
}

static bool addr_from_text(const char *peer, struct limit_addr *out)
{
	char host[64];
	memset(out, 0, sizeof *out);
	if (!peer)
		return false;
	if (peer[0] == '[') {
		const char *close = strchr(peer, ']');
		if (!close || (size_t)(close - peer - 1) >= sizeof host)
			return false;
		memcpy(host, peer + 1, (size_t)(close - peer - 1));
		host[close - peer - 1] = '\0';
		out->family = AF_INET6;
		return inet_pton(AF_INET6, host, out->ip) == 1;
	}
	const char *colon = strrchr(peer, ':');
	size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
	if (n >= sizeof host)
		return false;
	memcpy(host, peer, n);
	host[n] = '\0';
	out->family = AF_INET;
	return inet_pton(AF_INET, host, out->ip) == 1;
}

static void addr_text(const struct limit_addr *ad, char *buf, size_t cap)
{
	if (!inet_ntop(ad->family == AF_INET6 ? AF_INET6 : AF_INET, ad->ip, buf, (socklen_t)cap))
		snprintf(buf, cap, "?");
}

static bool is_loopback(const struct limit_addr *ad)
{
	static const uint8_t v6_loop[16] = { [15] = 1 };
	if (ad->family == AF_INET)
		return ad->ip[0] == 127;
	return memcmp(ad->ip, v6_loop, 16) == 0;
}

static uint64_t key_of(const void *p, size_t n, uint64_t salt)
{
	uint64_t h = 0xcbf29ce484222325ull ^ salt;
	const uint8_t *s = p;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static bool device_id_valid(const char *s, size_t n)
{
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static uint64_t principal(enum kind k, int role, uint32_t token)
{
	return ((uint64_t)token << 32) | ((uint64_t)k << 16) | (uint64_t)(role + 1);
}

enum auth_kind auth_principal_kind(uint64_t p)
{
	unsigned k = (unsigned)((p >> 16) & 0xff);
	return k <= K_ANON ? (enum auth_kind)k : AUTH_KIND_NONE;
}

static void set_principal(const struct broker_client *c, uint64_t p)
{
	if (c->principal_out)
		*c->principal_out = p;
}

/* ---- the user store ---- */

static bool store_path_of(const struct auth *a, char *buf, size_t cap)
{
	return store_path(a->data_dir, buf, cap);
}

/* Re-reads DATA/users when it is not the file read last time. */
static void maybe_reload(struct auth *a)
{
	char path[4200];
	struct stat st;
	if (!store_path_of(a, path, sizeof path))
		return;
	bool gone = stat(path, &st) != 0;
	pthread_mutex_lock(&a->reload_mu);
	if (gone) {
		if (a->store_ino != 0) {
			/* Deleted while running: nobody logs in by password. */
			struct store *empty = calloc(1, sizeof *empty);
			if (empty) {
				pthread_rwlock_wrlock(&a->store_lock);
				struct store *old = a->store;
				a->store = empty;
				a->store_gen++;
				pthread_rwlock_unlock(&a->store_lock);
				store_free(old);
				a->store_ino = 0;
				MOTE_WARN("auth", "event=user_store_missing path=%s", path);
			}
		}
		goto out;
	}
	if (st.st_ino == a->store_ino && st.st_size == a->store_size &&
	    st.st_mtim.tv_sec == a->store_mtime.tv_sec && st.st_mtim.tv_nsec == a->store_mtime.tv_nsec)
		goto out;
	struct store *fresh = NULL;
	char err[512];
	enum mote_err e = store_load(path, &fresh, err, sizeof err);
	if (e != MOTE_OK) {
		/* Keep serving the last good store; say so once per change. */
		MOTE_ERROR("auth", "event=user_store_invalid why=\"%s\" action=kept_previous", err);
	} else {
		pthread_rwlock_wrlock(&a->store_lock);
		struct store *old = a->store;
		a->store = fresh;
		a->store_gen++;
		pthread_rwlock_unlock(&a->store_lock);
		store_free(old);
		MOTE_INFO("auth", "event=user_store_loaded users=%u tokens=%u", fresh->nusers,
			  fresh->ntokens);
	}
	a->store_ino = st.st_ino;
	a->store_size = st.st_size;
	a->store_mtime = st.st_mtim;
out:
	pthread_mutex_unlock(&a->reload_mu);
}

/* The dummy hash (NULL only when it cannot be made: out of memory). */
static const char *dummy_hash(struct auth *a)
{
	pthread_mutex_lock(&a->dummy_mu);
	if (!a->dummy_hash) {
		char dummy[ADMIN_SECRET_LEN + 1];
		if (store_random_secret(dummy, ADMIN_SECRET_LEN) == MOTE_OK)
			store_hash_password(dummy, ADMIN_SECRET_LEN, &a->dummy_hash);
		OPENSSL_cleanse(dummy, sizeof dummy);
	}
	const char *h = a->dummy_hash;
	pthread_mutex_unlock(&a->dummy_mu);
	return h;
}

/* ---- the verified-password cache ---- */

static void cache_key(const struct auth *a, const uint8_t *user, size_t ulen, const uint8_t *pw,
		      size_t pwlen, unsigned char out[32])
{
	/* SHA-256(secret || len16(user) || user || password): the length keeps
	 * ("ab","c") and ("a","bc") apart; the secret keeps the table useless
	 * to anyone who reads process memory without it. */
	uint8_t ul[2] = { (uint8_t)(ulen >> 8), (uint8_t)ulen };
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, a->cache_secret, sizeof a->cache_secret) != 1 ||
	    EVP_DigestUpdate(ctx, ul, 2) != 1 || EVP_DigestUpdate(ctx, user, ulen) != 1 ||
	    EVP_DigestUpdate(ctx, pw, pwlen) != 1 || EVP_DigestFinal_ex(ctx, out, &n) != 1) {
		/* No digest: a key that no entry holds (the cache only misses). */
		RAND_bytes(out, 32);
	}
	EVP_MD_CTX_free(ctx);
}

static int cache_find(struct auth *a, const unsigned char key[32], uint64_t gen, uint64_t now)
{
	int role = -1;
	struct cache_slot *s = &a->cache[(key[0] | (key[1] << 8)) % CACHE_SLOTS];
	pthread_mutex_lock(&a->cache_mu);
	if (s->used && s->gen == gen && s->expires_ms > now && CRYPTO_memcmp(s->key, key, 32) == 0)
		role = s->role;
	pthread_mutex_unlock(&a->cache_mu);
	return role;
}

static void cache_put(struct auth *a, const unsigned char key[32], uint64_t gen, uint64_t now,
		      int role)
{
	if (a->cfg.cache_s == 0)
		return;
	struct cache_slot *s = &a->cache[(key[0] | (key[1] << 8)) % CACHE_SLOTS];
	pthread_mutex_lock(&a->cache_mu);
	memcpy(s->key, key, 32);
	s->gen = gen;
	s->expires_ms = now + (uint64_t)a->cfg.cache_s * 1000;
	s->role = role;
	s->used = true;
	pthread_mutex_unlock(&a->cache_mu);
}

/* ---- reports ---- */

static char *q(char *buf, size_t cap, const void *s, size_t n)
{
	return mote_log_quote(buf, cap, s, n);
}

/* An address crossed the failed-login limit: a log line and an audit record. */
static void report_block(struct auth *a, const char *at, uint64_t block_ms)
{
	MOTE_WARN("auth", "event=auth_rate_limited address=%s seconds=%" PRIu64
			  " why=\"%u failed logins within %u s\"",
		  at, block_ms / 1000, a->cfg.fail_max, a->cfg.fail_window_s);
	char fields[200];
	snprintf(fields, sizeof fields, "{\"address\":\"%s\",\"seconds\":%" PRIu64 "}", at,
		 block_ms / 1000);
	audit_rec(a, "auth_rate_limited", fields);
}

/* A failed login: log, audit, count against the address. */
static void login_failed(struct auth *a, const struct broker_client *c,
			 const struct limit_addr *ad, bool have_addr, const char *why,
			 uint64_t now)
{
	char id[96], user[96] = "\"\"", jid[200], juser[200], jpeer[120], jwhy[120];
	q(id, sizeof id, c->client_id, c->client_id_len);
	if (c->username)
		q(user, sizeof user, c->username, c->username_len);
	uint64_t block = have_addr ? limiter_fail(a->addrs, ad, now) : 0;
	uint32_t sup = 0;
	uint64_t key = have_addr ? key_of(ad->ip, 16, ad->family) : 0;
	if (limiter_budget(a->budgets, key, a->cfg.denied_log_per_10s, now, &sup)) {
		MOTE_WARN("auth", "event=auth_failed peer=%s client=%s username=%s why=\"%s\" "
				  "unreported_before=%" PRIu32,
			  c->peer ? c->peer : "?", id, user, why, sup);
		audit_json_str(jid, sizeof jid, c->client_id, c->client_id_len);
		audit_json_str(juser, sizeof juser, c->username ? c->username : (const uint8_t *)"",
			       c->username_len);
		audit_json_str(jpeer, sizeof jpeer, c->peer ? c->peer : "", c->peer ? strlen(c->peer) : 0);
		audit_json_str(jwhy, sizeof jwhy, why, strlen(why));
		char fields[900];
		snprintf(fields, sizeof fields,
			 "{\"peer\":%s,\"client\":%s,\"username\":%s,\"reason\":%s,\"unreported\":%" PRIu32
			 "}",
			 jpeer, jid, juser, jwhy, sup);
		audit_rec(a, "auth_failed", fields);
	}
	if (block) {
		char at[64];
		addr_text(ad, at, sizeof at);
		report_block(a, at, block);
	}
}

/* ---- certificate identities ---- */

static const char *prefixed(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	return s && strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

static uint8_t cert_login(struct auth *a, const struct broker_client *c)
{
	const char *claim = prefixed(c->cert_cn, "claim:");
	if (!claim)
		claim = prefixed(c->cert_uri, "urn:mote:claim:");
	char id[96], cid[96];
	q(cid, sizeof cid, c->client_id, c->client_id_len);
	if (claim) {
		char client[65], why[200] = "claim certificates are not accepted: provisioning is off";
		bool ok = a->claim_check && c->client_id_len <= 64 &&
			  device_id_valid((const char *)c->client_id, c->client_id_len);
		if (ok) {
			memcpy(client, c->client_id, c->client_id_len);
			client[c->client_id_len] = '\0';
			why[0] = '\0';
			ok = a->claim_check(a->claim_ctx, claim, client, why, sizeof why);
		} else if (a->claim_check) {
			snprintf(why, sizeof why, "client id is not a valid device id");
		}
		if (!ok) {
			MOTE_WARN("auth", "event=auth_failed peer=%s client=%s claim=%s why=\"%s\"",
				  c->peer ? c->peer : "?", cid,
				  q(id, sizeof id, claim, strlen(claim)), why);
			char jc[200], jcl[200], jw[300], fields[800];
			audit_json_str(jc, sizeof jc, c->client_id, c->client_id_len);
			audit_json_str(jcl, sizeof jcl, claim, strlen(claim));
			audit_json_str(jw, sizeof jw, why, strlen(why));
			snprintf(fields, sizeof fields, "{\"client\":%s,\"claim\":%s,\"reason\":%s}", jc,
				 jcl, jw);
			audit_rec(a, "claim_refused", fields);
			return MQTT_RC_NOT_AUTHORIZED;
		}
		set_principal(c, principal(K_CLAIM, ACL_ROLE_CLAIM, 0));
		return MQTT_RC_SUCCESS;
	}
	const char *ident = a->cfg.identity == AUTH_IDENTITY_URI
				    ? prefixed(c->cert_uri, "urn:mote:dev:")
				    : c->cert_cn;
	const char *why = NULL;
	uint8_t rc = MQTT_RC_SUCCESS;
	if (!ident || !device_id_valid(ident, strlen(ident))) {
		why = a->cfg.identity == AUTH_IDENTITY_URI
			      ? "certificate has no urn:mote:dev:ID URI with a valid device id"
			      : "certificate CN is not a valid device id";
		rc = MQTT_RC_NOT_AUTHORIZED;
	} else if (a->cfg.identity_must_match &&
		   (strlen(ident) != c->client_id_len ||
		    memcmp(ident, c->client_id, c->client_id_len) != 0)) {
		why = "certificate identity differs from the client id";
		rc = MQTT_RC_CLIENT_ID_INVALID;
	}
	if (rc != MQTT_RC_SUCCESS) {
		MOTE_WARN("auth", "event=auth_failed peer=%s client=%s identity=%s why=\"%s\"",
			  c->peer ? c->peer : "?", cid,
			  ident ? q(id, sizeof id, ident, strlen(ident)) : "\"\"", why);
		char jc[200], ji[200], jw[200], fields[700];
		audit_json_str(jc, sizeof jc, c->client_id, c->client_id_len);
		audit_json_str(ji, sizeof ji, ident ? ident : "", ident ? strlen(ident) : 0);
		audit_json_str(jw, sizeof jw, why, strlen(why));
		snprintf(fields, sizeof fields, "{\"client\":%s,\"identity\":%s,\"reason\":%s}", jc, ji,
			 jw);
		audit_rec(a, "auth_failed", fields);
		return rc;
	}
	set_principal(c, principal(K_DEVICE, ACL_ROLE_DEVICE, 0));
	return MQTT_RC_SUCCESS;
}

/* ---- the hooks ---- */

bool auth_accept(void *ctx, const struct net_peer *peer)
{
	struct auth *a = ctx;
	struct limit_addr ad = { .family = peer->family };
	memcpy(ad.ip, peer->ip, 16);
	if (a->cfg.conn_rate == 0 || (!a->cfg.conn_limit_loopback && is_loopback(&ad)))
		return true;
	uint64_t now = mote_mono_ms();
	if (limiter_connect(a->addrs, &ad, now))
		return true;
	uint32_t sup;
	if (limiter_budget(a->budgets, key_of(ad.ip, 16, ad.family ^ 0x55), 1, now, &sup)) {
		char at[64];
		addr_text(&ad, at, sizeof at);
		MOTE_WARN("auth", "event=connection_rate_limited address=%s rate=%u burst=%u "
				  "refused_before=%" PRIu32,
			  at, a->cfg.conn_rate, a->cfg.conn_burst, sup);
	}
	return false;
}

static uint8_t password_login(struct auth *a, const struct broker_client *c,
			      const struct mqtt_connect *p, const struct limit_addr *ad,
			      bool have_addr, uint64_t now)
{
	const uint8_t *pw = p->has_password ? p->password.p : (const uint8_t *)"";
	size_t pwlen = p->has_password ? p->password.len : 0;
	size_t ulen = p->username.len;
	const uint8_t *user = p->username.p;

	maybe_reload(a);
	if (ulen == strlen(STORE_TOKEN_USERNAME) && memcmp(user, STORE_TOKEN_USERNAME, ulen) == 0) {
		unsigned char d[32];
		store_token_digest(pw, pwlen, d);
		pthread_rwlock_rdlock(&a->store_lock);
		const struct store_token *t = store_find_token(a->store, d);
		int role = -1;
		uint32_t tid = 0;
		if (t) {
			role = t->scope == STORE_SCOPE_ADMIN   ? ACL_ROLE_ADMIN
			       : t->scope == STORE_SCOPE_WRITE ? ACL_ROLE_WRITE
							       : ACL_ROLE_READ;
			tid = (uint32_t)strtoul(t->id, NULL, 16);
		}
		pthread_rwlock_unlock(&a->store_lock);
		OPENSSL_cleanse(d, sizeof d);
		if (role < 0) {
			login_failed(a, c, ad, have_addr, "unknown or revoked token", now);
			return MQTT_RC_BAD_USER_OR_PASSWORD;
		}
		set_principal(c, principal(K_TOKEN, role, tid));
		return MQTT_RC_SUCCESS;
	}

	unsigned char key[32];
	cache_key(a, user, ulen, pw, pwlen, key);
	pthread_rwlock_rdlock(&a->store_lock);
	uint64_t gen = a->store_gen;
	const struct store_user *u = store_find_user(a->store, user, ulen);
	char *hash = u ? strdup(u->hash) : NULL;
	char role_name[STORE_NAME_MAX + 1] = "";
	if (u)
		snprintf(role_name, sizeof role_name, "%s", u->role);
	pthread_rwlock_unlock(&a->store_lock);

	uint8_t rc = MQTT_RC_SUCCESS;
	int role = cache_find(a, key, gen, now);
	if (role >= 0) {
		set_principal(c, principal(K_USER, role, 0));
		goto out;
	}
	if (!u && a->cfg.allow_anonymous) {
		/* Development listeners: unknown names are anonymous, as before
		 * there was a user store. */
		set_principal(c, principal(K_ANON, 0, 0));
		goto out;
	}
	if (u && !hash) {
		rc = MQTT_RC_SERVER_UNAVAILABLE;
		goto out;
	}
	if (!hash_budget_take(a, now)) {
		uint32_t sup;
		if (limiter_budget(a->budgets, HASH_BUDGET_KEY, 1, now, &sup))
			MOTE_WARN("auth", "event=auth_refused why=hash_budget rate=%u/s refused_before=%" PRIu32
					  " hint=\"many password logins at once (guessing from many addresses?); "
					  "--auth-hash-rate raises the budget\"",
				  a->cfg.hash_rate, sup);
		rc = MQTT_RC_SERVER_BUSY;
		goto out;
	}
	atomic_fetch_add_explicit(&a->argon2_runs, 1, memory_order_relaxed);
	/* An unknown name costs the same as a wrong password: no way to tell
	 * which names exist by timing. */
	const char *against = hash ? hash : dummy_hash(a);
	bool ok = against && store_verify_password(against, pw, pwlen) && u;
	if (!ok) {
		login_failed(a, c, ad, have_addr, u ? "wrong password" : "unknown user", now);
		rc = MQTT_RC_BAD_USER_OR_PASSWORD;
		goto out;
	}
	role = acl_role_find(a->acl, role_name, strlen(role_name));
	if (role < 0) {
		login_failed(a, c, ad, have_addr, "the user's role is not defined", now);
		rc = MQTT_RC_NOT_AUTHORIZED;
		goto out;
	}
	cache_put(a, key, gen, now, role);
	set_principal(c, principal(K_USER, role, 0));
out:
	OPENSSL_cleanse(key, sizeof key);
	free(hash);
	return rc;
}

uint8_t auth_authenticate(void *ctx, const struct broker_client *c,
			  const struct mqtt_connect *p)
{
	struct auth *a = ctx;
	uint64_t now = mote_mono_ms();
	struct limit_addr ad;
	bool have_addr = addr_from_text(c->peer, &ad);

	/* The TLS handshake proved the key: certificates are not guessed, so
	 * the per-address refusal does not apply to them. */
	if (c->cert_cn || c->cert_uri)
		return cert_login(a, c);
	uint64_t left = have_addr ? limiter_blocked(a->addrs, &ad, now) : 0;
	if (left) {
		uint32_t sup;
		if (limiter_budget(a->budgets, key_of(ad.ip, 16, ad.family ^ 0xaa), 1, now, &sup)) {
			char at[64];
			addr_text(&ad, at, sizeof at);
			MOTE_INFO("auth", "event=auth_refused address=%s why=rate_limited "
					  "seconds_left=%" PRIu64 " refused_before=%" PRIu32,
				  at, (left + 999) / 1000, sup);
		}
		return MQTT_RC_CONNECTION_RATE_EXCEEDED;
	}
	if (!p->has_username) {
		if (a->cfg.allow_anonymous) {
			set_principal(c, principal(K_ANON, 0, 0));
			return MQTT_RC_SUCCESS;
		}
		login_failed(a, c, &ad, have_addr, "no credentials", now);
		return MQTT_RC_NOT_AUTHORIZED;
	}
	return password_login(a, c, p, &ad, have_addr, now);
}

bool auth_authorize(void *ctx, const struct broker_client *c, enum broker_access access,
		    const uint8_t *topic, size_t len)
{
	struct auth *a = ctx;
	enum kind k = (enum kind)((c->principal >> 16) & 0xff);
	int role = (int)(c->principal & 0xffff) - 1;
	struct acl_subject who = { c->client_id, c->client_id_len, c->username, c->username_len };
	bool ok;
	if (k == K_ANON) {
		ok = access == BROKER_ACCESS_SUBSCRIBE ||
		     !(len >= 4 && memcmp(topic, "$SYS", 4) == 0);
	} else if (k == K_NONE || k > K_ANON) {
		ok = false;
	} else {
		if (k == K_DEVICE && !a->cfg.identity_must_match) {
			/* %c is the certificate's identity, not a chosen id. */
			const char *ident = a->cfg.identity == AUTH_IDENTITY_URI
						    ? prefixed(c->cert_uri, "urn:mote:dev:")
						    : c->cert_cn;
			who.client_id = (const uint8_t *)(ident ? ident : "");
			who.client_id_len = ident ? strlen(ident) : 0;
		}
		ok = access == BROKER_ACCESS_PUBLISH
			     ? acl_may_publish(a->acl, role, &who, topic, len)
			     : acl_may_subscribe(a->acl, role, &who, topic, len);
	}
	if (ok)
		return true;

	uint32_t sup = 0;
	uint64_t now = mote_mono_ms();
	if (!limiter_budget(a->budgets, key_of(c->client_id, c->client_id_len, 0x1d), a->cfg.denied_log_per_10s,
			    now, &sup))
		return false;
	char id[96], t[160], ident[120];
	const char *acc = access == BROKER_ACCESS_PUBLISH ? "publish" : "subscribe";
	q(id, sizeof id, c->client_id, c->client_id_len);
	q(t, sizeof t, topic, len);
	char identity_raw[100];
	if (k == K_TOKEN)
		snprintf(identity_raw, sizeof identity_raw, "token:%08" PRIx32,
			 (uint32_t)(c->principal >> 32));
	else if (k == K_USER && c->username)
		snprintf(identity_raw, sizeof identity_raw, "user:%.*s",
			 (int)(c->username_len > 64 ? 64 : c->username_len), (const char *)c->username);
	else if (k == K_DEVICE || k == K_CLAIM)
		snprintf(identity_raw, sizeof identity_raw, "%s:%s", kind_names[k],
			 c->cert_cn ? c->cert_cn : c->cert_uri ? c->cert_uri : "?");
	else
		snprintf(identity_raw, sizeof identity_raw, "%s", kind_names[k]);
	q(ident, sizeof ident, identity_raw, strlen(identity_raw));
	MOTE_WARN("auth",
		  "event=denied client=%s identity=%s role=%s access=%s topic=%s unreported_before=%" PRIu32,
		  id, ident, k == K_ANON ? "anonymous" : acl_role_name(a->acl, role), acc, t, sup);
	char jid[200], jident[240], jt[400], fields[1000];
	audit_json_str(jid, sizeof jid, c->client_id, c->client_id_len);
	audit_json_str(jident, sizeof jident, identity_raw, strlen(identity_raw));
	audit_json_str(jt, sizeof jt, topic, len > 256 ? 256 : len);
	snprintf(fields, sizeof fields,
		 "{\"client\":%s,\"identity\":%s,\"access\":\"%s\",\"topic\":%s,\"unreported\":%" PRIu32
		 "}",
		 jid, jident, acc, jt, sup);
	audit_rec(a, "denied", fields);
	return false;
}

/* ---- API bearer tokens ---- */

enum mote_err auth_check_token(struct auth *a, const char *token, size_t len, int *scope_role,
			       char *name, size_t namecap)
{
	/* The same re-read as a password login: a token made or revoked by
	 * `mote token` while the hub runs counts from the next request. */
	maybe_reload(a);
	unsigned char d[32];
	store_token_digest(token, len, d);
	int role = -1;
	pthread_rwlock_rdlock(&a->store_lock);
	const struct store_token *t = store_find_token(a->store, d);
	if (t) {
		role = t->scope == STORE_SCOPE_ADMIN   ? ACL_ROLE_ADMIN
		       : t->scope == STORE_SCOPE_WRITE ? ACL_ROLE_WRITE
						       : ACL_ROLE_READ;
		if (name && namecap) {
			if (strcmp(t->name, "-") == 0)
				snprintf(name, namecap, "token:%s", t->id);
			else
				snprintf(name, namecap, "%s", t->name);
		}
	}
	pthread_rwlock_unlock(&a->store_lock);
	OPENSSL_cleanse(d, sizeof d);
	if (role < 0)
		return MOTE_EDENIED;
	*scope_role = role;
	return MOTE_OK;
}

static bool addr_from_sockaddr(const struct sockaddr *sa, struct limit_addr *out)
{
	memset(out, 0, sizeof *out);
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		out->family = AF_INET;
		memcpy(out->ip, &in->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		out->family = AF_INET6;
		memcpy(out->ip, &in6->sin6_addr, 16);
		return true;
	}
	return false;
}

enum mote_err auth_check_token_from(struct auth *a, const struct sockaddr *sa, const char *token,
				    size_t len, int *scope_role, char *name, size_t namecap,
				    uint64_t *retry_ms)
{
	struct limit_addr ad;
	bool have_addr = addr_from_sockaddr(sa, &ad);
	uint64_t now = mote_mono_ms();
	if (have_addr) {
		uint64_t left = limiter_blocked(a->addrs, &ad, now);
		if (left) {
			if (retry_ms)
				*retry_ms = left;
			return MOTE_EAGAIN;
		}
	}
	enum mote_err e = auth_check_token(a, token, len, scope_role, name, namecap);
	if (e == MOTE_OK || !have_addr)
		return e;
	char at[64];
	addr_text(&ad, at, sizeof at);
	uint64_t block = limiter_fail(a->addrs, &ad, now);
	uint32_t sup = 0;
	if (limiter_budget(a->budgets, key_of(ad.ip, 16, ad.family), a->cfg.denied_log_per_10s, now,
			   &sup)) {
		MOTE_WARN("auth", "event=auth_failed transport=http peer=%s why=\"unknown or revoked "
				  "token\" unreported_before=%" PRIu32,
			  at, sup);
		char fields[300];
		snprintf(fields, sizeof fields,
			 "{\"peer\":\"%s\",\"transport\":\"http\",\"reason\":\"unknown or revoked "
			 "token\",\"unreported\":%" PRIu32 "}",
			 at, sup);
		audit_rec(a, "auth_failed", fields);
	}
	if (block)
		report_block(a, at, block);
	return MOTE_EDENIED;
}

void auth_hooks(struct auth *a, struct broker_hooks *h)
{
	h->ctx = a;
	h->accept = auth_accept;
	h->authenticate = auth_authenticate;
	h->authorize = auth_authorize;
}

void auth_set_claim_check(struct auth *a, auth_claim_check_fn fn, void *ctx)
{
	a->claim_check = fn;
	a->claim_ctx = ctx;
}

/* ---- life ---- */

static enum mote_err read_text(const char *path, char **out, size_t *len, char *err,
			       size_t errcap)
{
	enum mote_err e = mote_read_file(path, 16u << 20, out, len);
	if (e == MOTE_ETOOBIG)
		snprintf(err, errcap, "%s: larger than 16 MiB", path);
	else if (e != MOTE_OK)
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
	return e;
}

/* No user store yet: create one whose admin password is printed once. */
static enum mote_err first_start(struct auth *a, char *err, size_t errcap)
{
	int lockfd;
	struct store *s;
	bool existed;
	enum mote_err e = store_edit_begin(a->data_dir, &lockfd, &s, &existed, err, errcap);
	if (e != MOTE_OK)
		return e;
	if (existed) { /* another process made it meanwhile */
		store_edit_end(a->data_dir, lockfd, s, false, err, errcap);
		store_free(s);
		return MOTE_OK;
	}
	const char *secret = a->first_secret;
	e = a->first_hash ? store_add_user(s, "admin", "admin", a->first_hash) : MOTE_ENOMEM;
	if (e == MOTE_OK)
		e = store_edit_end(a->data_dir, lockfd, s, true, err, errcap);
	else
		store_edit_end(a->data_dir, lockfd, s, false, err, errcap);
	if (e == MOTE_OK) {
		FILE *out = a->cfg.secret_out ? a->cfg.secret_out : stdout;
		fprintf(out,
			"mote: first start: created user 'admin' with password %s\n"
			"mote: this password is shown only now; %s/users keeps only its argon2id "
			"hash. Add users with 'mote user add', tokens with 'mote token create'.\n",
			secret, a->data_dir);
		fflush(out);
		audit_rec(a, "user_added", "{\"name\":\"admin\",\"role\":\"admin\",\"by\":\"first_start\"}");
	} else if (!err[0]) {
		snprintf(err, errcap, "cannot create the user store: %s", mote_strerror(e));
	}
	OPENSSL_cleanse(a->first_secret, sizeof a->first_secret);
	free(a->first_hash);
	a->first_hash = NULL;
	store_free(s);
	return e;
}

enum mote_err auth_first_start(struct auth *a, char *err, size_t errcap)
{
	if (!a->first_start_pending)
		return MOTE_OK;
	err[0] = '\0';
	enum mote_err e = first_start(a, err, errcap);
	if (e == MOTE_OK) {
		a->first_start_pending = false;
		maybe_reload(a);
	}
	return e;
}

enum mote_err auth_new(const struct auth_config *cfg, struct auth **out, char *err,
		       size_t errcap)
{
	struct auth *a = calloc(1, sizeof *a);
	enum mote_err e;
	char *text = NULL;
	size_t len = 0;
	err[0] = '\0';
	if (!a)
		return MOTE_ENOMEM;
	a->cfg = *cfg;
	snprintf(a->data_dir, sizeof a->data_dir, "%s", cfg->data_dir ? cfg->data_dir : "data");
	pthread_rwlock_init(&a->store_lock, NULL);
	pthread_mutex_init(&a->reload_mu, NULL);
	pthread_mutex_init(&a->cache_mu, NULL);
	pthread_mutex_init(&a->dummy_mu, NULL);
	pthread_mutex_init(&a->hash_mu, NULL);
	a->hash_tokens = cfg->hash_rate;
	struct limit_cfg lc = { cfg->fail_max, cfg->fail_window_s, cfg->block_s, cfg->block_max_s,
				cfg->conn_rate, cfg->conn_burst };
	e = limiter_new(&lc, 2048, &a->addrs);
	if (e == MOTE_OK)
		e = limiter_new(&lc, 1024, &a->budgets);
	if (e != MOTE_OK)
		goto fail;
	if (RAND_bytes(a->cache_secret, sizeof a->cache_secret) != 1) {
		e = MOTE_EIO;
		snprintf(err, errcap, "no randomness for the login cache");
		goto fail;
	}
	/* Roles: --acl FILE, else DATA/acl.conf when present. */
	char acl_path[4200];
	const char *acl_file = cfg->acl_file;
	if (!acl_file) {
		snprintf(acl_path, sizeof acl_path, "%s/acl.conf", a->data_dir);
		if (access(acl_path, F_OK) == 0)
			acl_file = acl_path;
	}
	if (acl_file) {
		e = read_text(acl_file, &text, &len, err, errcap);
		if (e != MOTE_OK)
			goto fail;
	}
	char perr[256] = "";
	e = acl_parse(text, len, &a->acl, perr, sizeof perr);
	if (e != MOTE_OK) {
		snprintf(err, errcap, "%s: %s", acl_file ? acl_file : "built-in roles", perr);
		goto fail;
	}
	char path[4200];
	store_path(a->data_dir, path, sizeof path);
	struct stat st;
	if (stat(path, &st) != 0 && errno == ENOENT) {
		/* auth_first_start makes it; until then nobody logs in by password */
		a->first_start_pending = true;
		a->store = calloc(1, sizeof *a->store);
		e = a->store ? MOTE_OK : MOTE_ENOMEM;
		if (e == MOTE_OK)
			e = store_random_secret(a->first_secret, ADMIN_SECRET_LEN);
		if (e == MOTE_OK)
			e = store_hash_password_apart(a->first_secret, ADMIN_SECRET_LEN,
						      &a->first_hash);
	} else {
		e = store_load(path, &a->store, err, errcap);
		if (e == MOTE_OK && stat(path, &st) != 0)
			e = MOTE_EIO;
		if (e == MOTE_OK) {
			a->store_ino = st.st_ino;
			a->store_size = st.st_size;
			a->store_mtime = st.st_mtim;
		}
	}
	if (e != MOTE_OK)
		goto fail;
	free(text);
	MOTE_INFO("auth", "event=auth_ready roles=%u anonymous=%s identity=%s conn_rate=%u "
			  "fail_max=%u fail_window_s=%u",
		  acl_role_count(a->acl), cfg->allow_anonymous ? "allowed" : "refused",
		  cfg->identity == AUTH_IDENTITY_URI ? "uri" : "cn", cfg->conn_rate, cfg->fail_max,
		  cfg->fail_window_s);
	*out = a;
	return MOTE_OK;
fail:
	if (!err[0])
		snprintf(err, errcap, "%s", mote_strerror(e));
	free(text);
	auth_free(a);
	return e;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	acl_free(a->acl);
	store_free(a->store);
	limiter_free(a->addrs);
	limiter_free(a->budgets);
	free(a->dummy_hash);
	free(a->first_hash);
	OPENSSL_cleanse(a->first_secret, sizeof a->first_secret);
	OPENSSL_cleanse(a->cache, sizeof a->cache);
	OPENSSL_cleanse(a->cache_secret, sizeof a->cache_secret);
	pthread_rwlock_destroy(&a->store_lock);
	pthread_mutex_destroy(&a->reload_mu);
	pthread_mutex_destroy(&a->cache_mu);
	pthread_mutex_destroy(&a->dummy_mu);
	pthread_mutex_destroy(&a->hash_mu);
	free(a);
}
