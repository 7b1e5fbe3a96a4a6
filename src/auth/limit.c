/*
 * limit.c - the rate-limit tables (see limit.h).
 *
 * One table serves both kinds of key: an address (family + 16 bytes) or an
 * opaque 64-bit key (budgets), stored as family 0 and the key's bytes.
 * Memory is fixed at creation: sets x 4 slots.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth/limit.h"

#define WAYS 4
#define STRIPES 64

struct slot {
	bool used;
	uint8_t family;
	uint8_t ip[16];
	uint64_t seen_ms;
	/* failed logins */
	uint32_t fails;
	uint32_t level;           /* refusals so far: the next one lasts block_s << level */
	uint64_t fail_start_ms;
	uint64_t blocked_until_ms;
	/* connections: tokens in thousandths */
	uint64_t tokens_milli;
	uint64_t tokens_ms;
	/* budgets */
	uint64_t window_ms;
	uint32_t count, suppressed;
};

struct limiter {
	struct limit_cfg cfg;
	unsigned sets;
	struct slot *slots;
	pthread_mutex_t mu[STRIPES];
};

enum mote_err limiter_new(const struct limit_cfg *cfg, unsigned sets, struct limiter **out)
{
	struct limiter *l = calloc(1, sizeof *l);
	if (!l)
		return MOTE_ENOMEM;
	l->slots = calloc((size_t)sets * WAYS, sizeof *l->slots);
	if (!l->slots) {
		free(l);
		return MOTE_ENOMEM;
	}
	l->cfg = *cfg;
	l->sets = sets;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&l->mu[i], NULL);
	*out = l;
	return MOTE_OK;
}

void limiter_free(struct limiter *l)
{
	if (!l)
		return;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&l->mu[i]);
	free(l->slots);
	free(l);
}

static uint64_t mix(const uint8_t *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 29;
	return h;
}

/* The slot for key in its set, locked (unlock with the returned stripe). */
static struct slot *find(struct limiter *l, uint8_t family, const uint8_t ip[16], uint64_t now,
			 pthread_mutex_t **lock)
{
	uint64_t h = mix(ip, 16, 0xcbf29ce484222325ull ^ family);
	unsigned set = (unsigned)(h % l->sets);
	*lock = &l->mu[set % STRIPES];
	pthread_mutex_lock(*lock);
	struct slot *s = &l->slots[(size_t)set * WAYS], *victim = NULL;
	for (int i = 0; i < WAYS; i++) {
		if (s[i].used && s[i].family == family && memcmp(s[i].ip, ip, 16) == 0) {
			s[i].seen_ms = now;
			return &s[i];
		}
	}
	/* Evict: a free slot, else the oldest not refusing, else the oldest. */
	for (int i = 0; i < WAYS; i++) {
		if (!s[i].used) {
			victim = &s[i];
			break;
		}
		bool busy = s[i].blocked_until_ms > now;
		if (!victim || (victim->blocked_until_ms > now && !busy) ||
		    ((victim->blocked_until_ms > now) == busy && s[i].seen_ms < victim->seen_ms))
			victim = &s[i];
	}
	memset(victim, 0, sizeof *victim);
	victim->used = true;
	victim->family = family;
	memcpy(victim->ip, ip, 16);
	victim->seen_ms = now;
	victim->tokens_milli = (uint64_t)l->cfg.conn_burst * 1000;
	victim->tokens_ms = now;
	return victim;
}

uint64_t limiter_blocked(struct limiter *l, const struct limit_addr *addr, uint64_t now_ms)
{
	pthread_mutex_t *lock;
	struct slot *s = find(l, addr->family, addr->ip, now_ms, &lock);
	uint64_t left = s->blocked_until_ms > now_ms ? s->blocked_until_ms - now_ms : 0;
	pthread_mutex_unlock(lock);
	return left;
}

uint64_t limiter_fail(struct limiter *l, const struct limit_addr *addr, uint64_t now_ms)
{
	pthread_mutex_t *lock;
	uint64_t block = 0;
	if (l->cfg.fail_max == 0)
		return 0;
	struct slot *s = find(l, addr->family, addr->ip, now_ms, &lock);
	uint64_t window = (uint64_t)l->cfg.fail_window_s * 1000;
	/* A quiet spell as long as the longest refusal forgives the past. */
	if (s->level && s->fail_start_ms + window + (uint64_t)l->cfg.block_max_s * 1000 < now_ms)
		s->level = 0;
	if (s->fails == 0 || now_ms - s->fail_start_ms > window) {
		s->fails = 0;
		s->fail_start_ms = now_ms;
	}
	if (++s->fails >= l->cfg.fail_max) {
		uint64_t secs = (uint64_t)l->cfg.block_s << (s->level < 20 ? s->level : 20);
		if (secs > l->cfg.block_max_s)
			secs = l->cfg.block_max_s;
		block = secs * 1000;
		s->blocked_until_ms = now_ms + block;
		s->level++;
		s->fails = 0;
	}
	pthread_mutex_unlock(lock);
	return block;
}

bool limiter_connect(struct limiter *l, const struct limit_addr *addr, uint64_t now_ms)
{
	pthread_mutex_t *lock;
	if (l->cfg.conn_rate == 0)
		return true;
	struct slot *s = find(l, addr->family, addr->ip, now_ms, &lock);
	uint64_t cap = (uint64_t)l->cfg.conn_burst * 1000;
	uint64_t add = (now_ms - s->tokens_ms) * l->cfg.conn_rate; /* ms x per-s = milli */
	s->tokens_ms = now_ms;
	s->tokens_milli = s->tokens_milli + add > cap ? cap : s->tokens_milli + add;
	bool ok = s->tokens_milli >= 1000;
	if (ok)
		s->tokens_milli -= 1000;
	pthread_mutex_unlock(lock);
	return ok;
}

bool limiter_budget(struct limiter *l, uint64_t key, uint32_t per_10s, uint64_t now_ms,
		    uint32_t *suppressed)
{
	pthread_mutex_t *lock;
	uint8_t ip[16] = { 0 };
	memcpy(ip, &key, sizeof key);
	struct slot *s = find(l, 0, ip, now_ms, &lock);
	*suppressed = 0;
	if (now_ms - s->window_ms >= 10000 || s->window_ms == 0) {
		s->window_ms = now_ms ? now_ms : 1;
		s->count = 0;
	}
	bool ok = s->count < per_10s;
	if (ok) {
		s->count++;
		*suppressed = s->suppressed;
		s->suppressed = 0;
	} else {
		s->suppressed++;
	}
	pthread_mutex_unlock(lock);
	return ok;
}
