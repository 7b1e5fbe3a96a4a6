/*
 * clock.h - time sources. Monotonic for timers and expiry, wall clock for
 * timestamps shown to people. Stateless, thread-safe.
 */
#ifndef MOTE_BASE_CLOCK_H
#define MOTE_BASE_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

uint64_t mote_mono_ms(void); /* CLOCK_MONOTONIC in milliseconds */
uint64_t mote_mono_ns(void); /* CLOCK_MONOTONIC in nanoseconds */
uint64_t mote_wall_ms(void); /* CLOCK_REALTIME in ms since the Unix epoch */
/* ts + ms, normalized. */
void mote_timespec_add_ms(struct timespec *ts, uint64_t ms);
/* CLOCK_MONOTONIC now + ms: a deadline for pthread_cond_timedwait on a
 * condition variable whose clock is CLOCK_MONOTONIC. */
struct timespec mote_mono_deadline(uint64_t ms);

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; m 1..12, d 1..31,
 * not checked: the callers parse and range-check dates themselves). */
int64_t mote_days_from_civil(int64_t y, unsigned m, unsigned d);
/* The n ASCII digits at s as a number into *out; 0 if any is not a digit
 * (n <= 9, so it fits). */
int mote_parse_digits(const char *s, size_t n, int *out);

#endif
