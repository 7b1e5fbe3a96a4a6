/*
 * loop.c - epoll + timer heap; see loop.h.
 *
 * Invariants: heap[i]->heap_idx == i for every active timer; a timer is in the
 * heap iff active. An io watcher is registered with epoll iff active. The
 * eventfd for loop_wake is registered with a NULL data pointer so it cannot be
 * mistaken for a watcher.
 */
#include "net/loop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/clock.h"

#define MAX_EVENTS 256

struct loop {
	int epfd;
	int wakefd;
	bool stopping;
	uint64_t now_ms;
	struct loop_timer **heap;
	uint32_t heap_len;
	uint32_t heap_cap;
	void (*wake_fn)(struct loop *loop, void *data);
	void *wake_data;
	/* Cross-thread wake-ups (loop_wake): the eventfd is written only while
	 * the loop sleeps in epoll_wait; a busy loop picks wake_pending up on
	 * its next iteration, so a stream of wake-ups costs no syscalls. */
	atomic_bool wake_pending;
	atomic_bool sleeping;
	/* FIFO run after each event batch: a flush queued before a free runs first */
	struct loop_defer *defer_head;
	struct loop_defer *defer_tail;
	/* Coalesced work (loop_defer_idle), in the order added; rounds since it last ran */
	struct loop_defer *idle_head;
	struct loop_defer *idle_tail;
	uint32_t busy_rounds;
};

enum mote_err loop_new(struct loop **out)
{
	enum mote_err err = MOTE_EIO;
	struct loop *l = calloc(1, sizeof *l);
	if (!l)
		return MOTE_ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->epfd < 0 || l->wakefd < 0)
		goto fail;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) != 0)
		goto fail;
	l->now_ms = mote_mono_ms();
	*out = l;
	return MOTE_OK;
fail:
	loop_free(l);
	return err;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wakefd >= 0)
		close(l->wakefd);
	free(l->heap);
	free(l);
}

uint64_t loop_now(const struct loop *l) { return l->now_ms; }
void loop_update_now(struct loop *l) { l->now_ms = mote_mono_ms(); }
void loop_stop(struct loop *l) { l->stopping = true; }

void loop_set_wake_fn(struct loop *l, void (*fn)(struct loop *, void *), void *data)
{
	l->wake_fn = fn;
	l->wake_data = data;
}

void loop_wake(struct loop *l)
{
	/* Either the loop sees wake_pending before it sleeps, or we see it
	 * sleeping (both sequentially consistent: a Dekker pair). */
	if (atomic_exchange(&l->wake_pending, true))
		return; /* already pending: the first waker takes care of it */
	if (atomic_load(&l->sleeping)) {
		uint64_t one = 1;
		/* EAGAIN means the counter is already non-zero: a wake is pending. */
		ssize_t r = write(l->wakefd, &one, sizeof one);
		(void)r;
	}
}

/* Runs the wake callback if a wake-up is pending. */
static void take_wake(struct loop *l)
{
	if (atomic_load_explicit(&l->wake_pending, memory_order_relaxed) &&
	    atomic_exchange(&l->wake_pending, false) && l->wake_fn)
		l->wake_fn(l, l->wake_data);
}

static uint32_t to_epoll(uint32_t events)
{
	uint32_t e = 0;
	if (events & LOOP_READ)
		e |= EPOLLIN | EPOLLRDHUP;
	if (events & LOOP_WRITE)
		e |= EPOLLOUT;
	return e;
}

enum mote_err loop_io_start(struct loop *l, struct loop_io *io, int fd, uint32_t events,
			    loop_io_fn fn, void *data)
{
	io->fd = fd;
	io->events = events;
	io->fn = fn;
	io->data = data;
	struct epoll_event ev = { .events = to_epoll(events), .data.ptr = io };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
		return errno == ENOMEM ? MOTE_ENOMEM : MOTE_EIO;
	io->active = true;
	return MOTE_OK;
}

enum mote_err loop_io_modify(struct loop *l, struct loop_io *io, uint32_t events)
{
	if (!io->active)
		return MOTE_EINVAL;
	if (events == io->events)
		return MOTE_OK;
	struct epoll_event ev = { .events = to_epoll(events), .data.ptr = io };
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) != 0)
		return MOTE_EIO;
	io->events = events;
	return MOTE_OK;
}

void loop_io_stop(struct loop *l, struct loop_io *io)
{
	if (!io->active)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->active = false;
}

/* Appends d to a singly linked FIFO (head, tail). */
static void fifo_add(struct loop_defer **head, struct loop_defer **tail, struct loop_defer *d,
		     loop_defer_fn fn, void *data)
{
	if (d->queued)
		return;
	d->fn = fn;
	d->data = data;
	d->queued = true;
	d->next = NULL;
	if (*tail)
		(*tail)->next = d;
	else
		*head = d;
	*tail = d;
}

static struct loop_defer *fifo_pop(struct loop_defer **head, struct loop_defer **tail)
{
	struct loop_defer *d = *head;
	*head = d->next;
	if (!*head)
		*tail = NULL;
	d->next = NULL;
	d->queued = false;
	return d;
}

static bool fifo_remove(struct loop_defer **head, struct loop_defer **tail, struct loop_defer *d)
{
	struct loop_defer *prev = NULL;
	for (struct loop_defer *x = *head; x; prev = x, x = x->next) {
		if (x != d)
			continue;
		if (prev)
			prev->next = d->next;
		else
			*head = d->next;
		if (*tail == d)
			*tail = prev;
		d->next = NULL;
		d->queued = false;
		return true;
	}
	return false;
}

void loop_defer(struct loop *l, struct loop_defer *d, loop_defer_fn fn, void *data)
{
	fifo_add(&l->defer_head, &l->defer_tail, d, fn, data);
}

void loop_defer_idle(struct loop *l, struct loop_defer *d, loop_defer_fn fn, void *data)
{
	fifo_add(&l->idle_head, &l->idle_tail, d, fn, data);
}

void loop_defer_cancel(struct loop *l, struct loop_defer *d)
{
	if (d->queued && !fifo_remove(&l->idle_head, &l->idle_tail, d))
		fifo_remove(&l->defer_head, &l->defer_tail, d);
}

static void run_deferred(struct loop *l)
{
	while (l->defer_head) {
		struct loop_defer *d = fifo_pop(&l->defer_head, &l->defer_tail);
		d->fn(l, d->data); /* may free d's owner */
	}
}

/* Runs the coalesced work queued so far (entries added meanwhile wait). */
static void run_idle(struct loop *l)
{
	struct loop_defer *last = l->idle_tail;
	l->busy_rounds = 0;
	while (l->idle_head) {
		bool was_last = l->idle_head == last;
		struct loop_defer *d = fifo_pop(&l->idle_head, &l->idle_tail);
		d->fn(l, d->data); /* may free d's owner */
		run_deferred(l);
		if (was_last)
			break;
	}
}

/* ---- timer heap ---------------------------------------------------------- */

static void heap_set(struct loop *l, uint32_t i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->heap_idx = i;
}

static void sift_up(struct loop *l, uint32_t i)
{
	struct loop_timer *t = l->heap[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (l->heap[parent]->due_ms <= t->due_ms)
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, t);
}

static void sift_down(struct loop *l, uint32_t i)
{
	struct loop_timer *t = l->heap[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= l->heap_len)
			break;
		if (c + 1 < l->heap_len && l->heap[c + 1]->due_ms < l->heap[c]->due_ms)
			c++;
		if (t->due_ms <= l->heap[c]->due_ms)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *data)
{
	t->due_ms = 0;
	t->heap_idx = 0;
	t->active = false;
	t->fn = fn;
	t->data = data;
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
	if (!t->active)
		return;
	uint32_t i = t->heap_idx;
	t->active = false;
	l->heap_len--;
	if (i == l->heap_len)
		return;
	heap_set(l, i, l->heap[l->heap_len]);
	sift_down(l, i);
	sift_up(l, i); /* the moved-in timer may also belong above i */
}

enum mote_err loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t delay_ms)
{
	loop_timer_stop(l, t);
	if (l->heap_len == l->heap_cap) {
		uint32_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
		struct loop_timer **h = realloc(l->heap, cap * sizeof *h);
		if (!h)
			return MOTE_ENOMEM;
		l->heap = h;
		l->heap_cap = cap;
	}
	t->due_ms = l->now_ms + delay_ms;
	t->active = true;
	heap_set(l, l->heap_len++, t);
	sift_up(l, t->heap_idx);
	return MOTE_OK;
}

/* Fires due timers; returns the epoll timeout until the next one (-1: none). */
static int run_timers(struct loop *l)
{
	while (l->heap_len > 0 && !l->stopping) {
		struct loop_timer *t = l->heap[0];
		if (t->due_ms > l->now_ms) {
			uint64_t wait = t->due_ms - l->now_ms;
			return wait > 60000 ? 60000 : (int)wait;
		}
		loop_timer_stop(l, t);
		t->fn(l, t); /* may restart t or free its owner */
		run_deferred(l);
	}
	return l->stopping ? 0 : -1;
}

enum mote_err loop_run(struct loop *l)
{
	struct epoll_event events[MAX_EVENTS];
	l->stopping = false;
	while (!l->stopping) {
		loop_update_now(l);
		int timeout = run_timers(l);
		if (l->stopping)
			break;
		int n;
		if (l->idle_head) {
			/* Poll first: coalesced work runs only when nothing is ready. */
			n = epoll_wait(l->epfd, events, MAX_EVENTS, 0);
			if (n == 0 || ++l->busy_rounds >= LOOP_IDLE_MAX_ROUNDS) {
				run_idle(l);
				if (n == 0)
					continue;
			}
		} else {
			if (timeout != 0) {
				atomic_store(&l->sleeping, true);
				if (atomic_load(&l->wake_pending))
					timeout = 0;
			}
			n = epoll_wait(l->epfd, events, MAX_EVENTS, timeout);
			atomic_store_explicit(&l->sleeping, false, memory_order_relaxed);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return MOTE_EIO;
		}
		loop_update_now(l);
		for (int i = 0; i < n && !l->stopping; i++) {
			struct loop_io *io = events[i].data.ptr;
			if (io == NULL) {
				uint64_t v;
				ssize_t r = read(l->wakefd, &v, sizeof v);
				(void)r;
				take_wake(l);
				continue;
			}
			uint32_t e = 0;
			if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				e |= LOOP_READ;
			if (events[i].events & EPOLLOUT)
				e |= LOOP_WRITE;
			if (events[i].events & (EPOLLHUP | EPOLLERR))
				e |= LOOP_ERROR;
			if (io->active)
				io->fn(l, io, e);
		}
		take_wake(l);
		run_deferred(l);
	}
	run_deferred(l);
	return MOTE_OK;
}
