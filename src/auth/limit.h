/*
 * limit.h - bounded, thread-safe tables behind the rate limits (part of
 * src/auth): per source address (failed logins with growing refusal
 * periods; a token bucket of new connections) and per key (a budget of
 * lines per 10 s, for denial logs and audit records).
 *
 * Each table has a fixed size chosen at creation and evicts: a set of 4
 * slots per hash, the least recently seen slot giving way (one that is
 * refusing its address only when all four are). Locks are striped by set.
 */
#ifndef MOTE_AUTH_LIMIT_H
#define MOTE_AUTH_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

struct limit_addr {
	uint8_t family; /* AF_INET / AF_INET6 */
	uint8_t ip[16];
};

struct limit_cfg {
	uint32_t fail_max, fail_window_s, block_s, block_max_s;
	uint32_t conn_rate, conn_burst;
};

struct limiter;

enum mote_err limiter_new(const struct limit_cfg *cfg, unsigned sets, struct limiter **out);
void limiter_free(struct limiter *l);

/* Remaining refusal in ms for addr (0: not refused). */
uint64_t limiter_blocked(struct limiter *l, const struct limit_addr *addr, uint64_t now_ms);
/* A failed login; returns the refusal in ms it started (0: none). */
uint64_t limiter_fail(struct limiter *l, const struct limit_addr *addr, uint64_t now_ms);
/* A new connection: false when addr's bucket is empty. */
bool limiter_connect(struct limiter *l, const struct limit_addr *addr, uint64_t now_ms);

/*
 * Budget of `per_10s` events per key and 10 s window. true: report this one;
 * *suppressed is the count not reported in earlier windows (then reset).
 */
bool limiter_budget(struct limiter *l, uint64_t key, uint32_t per_10s, uint64_t now_ms,
		    uint32_t *suppressed);

#endif
