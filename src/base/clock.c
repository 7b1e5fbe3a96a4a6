/* clock.c - see clock.h. */
#include "base/clock.h"

#include <time.h>

static uint64_t read_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t mote_mono_ns(void) { return read_ns(CLOCK_MONOTONIC); }
uint64_t mote_mono_ms(void) { return read_ns(CLOCK_MONOTONIC) / 1000000ull; }
uint64_t mote_wall_ms(void) { return read_ns(CLOCK_REALTIME) / 1000000ull; }

void mote_timespec_add_ms(struct timespec *ts, uint64_t ms)
{
	ts->tv_sec += (time_t)(ms / 1000u);
	ts->tv_nsec += (long)(ms % 1000u) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

struct timespec mote_mono_deadline(uint64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	mote_timespec_add_ms(&ts, ms);
	return ts;
}
