/*
 * clock.h - time sources. Monotonic for timers and expiry, wall clock for
 * timestamps shown to people. Stateless, thread-safe.
 */
#ifndef MOTE_BASE_CLOCK_H
#define MOTE_BASE_CLOCK_H

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

#endif
