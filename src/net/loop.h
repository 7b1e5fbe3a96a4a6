/*
 * loop.h - an epoll event loop with timers: the face of src/net/.
 *
 * One struct loop per thread. Watchers (struct loop_io) and timers
 * (struct loop_timer) are embedded in their owner's structs: the loop never
 * allocates them and never frees them; it only keeps pointers while they are
 * started. Stop a watcher or timer before freeing its owner.
 *
 * Timers live in a binary min-heap ordered by deadline (monotonic ms). The
 * heap array grows by doubling; loop_timer_start can therefore fail with
 * MOTE_ENOMEM, and never otherwise.
 *
 * Threading: everything here runs on the loop's own thread, except
 * loop_wake(), which any thread may call to make loop_run() return from
 * epoll_wait (cross-thread work queues build on it).
 */
#ifndef MOTE_NET_LOOP_H
#define MOTE_NET_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct loop;
struct loop_io;
struct loop_timer;

/* Event bits passed to loop_io callbacks and to loop_io_start/modify. */
#define LOOP_READ 1u
#define LOOP_WRITE 2u
#define LOOP_ERROR 4u /* hang-up or error on the fd; sent with READ */

typedef void (*loop_io_fn)(struct loop *loop, struct loop_io *io, uint32_t events);
typedef void (*loop_timer_fn)(struct loop *loop, struct loop_timer *timer);

struct loop_io {
	int fd;
	uint32_t events;   /* LOOP_READ | LOOP_WRITE currently asked for */
	bool active;
	loop_io_fn fn;
	void *data;        /* the owner's pointer, untouched by the loop */
};

struct loop_timer {
	uint64_t due_ms;   /* monotonic deadline */
	uint32_t heap_idx; /* position in the heap while active */
	bool active;
	loop_timer_fn fn;
	void *data;
};

/* Creates a loop (epoll fd + eventfd for loop_wake). Caller owns it. */
enum mote_err loop_new(struct loop **out);
/* Frees the loop. Watchers and timers still started are forgotten, not called. */
void loop_free(struct loop *loop);

/* Runs until loop_stop(). Returns MOTE_OK, or MOTE_EIO if epoll fails. */
enum mote_err loop_run(struct loop *loop);
/* Makes loop_run return after the current iteration (loop thread only). */
void loop_stop(struct loop *loop);
/* Wakes loop_run from another thread; `fn` runs on the loop thread. */
void loop_set_wake_fn(struct loop *loop, void (*fn)(struct loop *loop, void *data), void *data);
void loop_wake(struct loop *loop);

/* Monotonic ms, cached once per iteration (cheap; refreshed by loop_update_now). */
uint64_t loop_now(const struct loop *loop);
void loop_update_now(struct loop *loop);

/* Starts watching fd. io is borrowed until loop_io_stop. */
enum mote_err loop_io_start(struct loop *loop, struct loop_io *io, int fd, uint32_t events,
			    loop_io_fn fn, void *data);
enum mote_err loop_io_modify(struct loop *loop, struct loop_io *io, uint32_t events);
/* Stops watching (the fd stays open; the owner closes it). Idempotent. */
void loop_io_stop(struct loop *loop, struct loop_io *io);

/*
 * Deferred work: `fn(loop, data)` runs once on the loop thread after the
 * current batch of events (or the current timer), in the order deferred. Owners free themselves this
 * way so that no watcher is freed while epoll_wait's batch may still point at
 * it. d is borrowed until fn runs; deferring an already queued d does nothing.
 */
typedef void (*loop_defer_fn)(struct loop *loop, void *data);
struct loop_defer {
	struct loop_defer *next;
	loop_defer_fn fn;
	void *data;
	bool queued;
};
void loop_defer(struct loop *loop, struct loop_defer *d, loop_defer_fn fn, void *data);

/*
 * Coalesced work: like loop_defer, but `fn(loop, data)` runs when the loop
 * runs out of ready events (a zero-timeout epoll_wait finds none), or after
 * LOOP_IDLE_MAX_ROUNDS busy rounds, whichever comes first. Under load this
 * lets output for many connections pile up over several input batches and
 * leave in one write each; when idle it adds no delay (one extra
 * epoll_wait). Adding an already queued entry does nothing.
 */
#define LOOP_IDLE_MAX_ROUNDS 8
void loop_defer_idle(struct loop *loop, struct loop_defer *d, loop_defer_fn fn, void *data);
/* Takes d off whichever list it waits on (O(entries queued)); idempotent.
 * Call before freeing d's owner if it may still be queued. */
void loop_defer_cancel(struct loop *loop, struct loop_defer *d);

/* Prepares a timer (not started). */
void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *data);
/* (Re)starts the timer to fire once after delay_ms. */
enum mote_err loop_timer_start(struct loop *loop, struct loop_timer *t, uint64_t delay_ms);
/* Stops it if started. Idempotent. */
void loop_timer_stop(struct loop *loop, struct loop_timer *t);

#endif
