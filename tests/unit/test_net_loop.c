/* test_net_loop.c - the event loop: timers, io watchers, deferred work, wake-ups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "net/loop.h"
#include "net/tcp.h"

struct rec {
	int order[16];
	int n;
	struct loop_timer t[8];
	struct loop_defer d[4];
	struct loop_io io;
	char got[32];
};

static void record(struct loop *loop, struct loop_timer *t)
{
	struct rec *r = t->data;
	r->order[r->n++] = (int)(t - r->t);
	if (r->n == 5)
		loop_stop(loop);
}

static void timers_fire_in_deadline_order(void **state)
{
	(void)state;
	struct loop *loop;
	struct rec r = { 0 };
	uint64_t t0 = mote_mono_ms();
	assert_int_equal(loop_new(&loop), MOTE_OK);
	const uint64_t delays[6] = { 40, 10, 30, 0, 20, 5 };
	for (int i = 0; i < 6; i++) {
		loop_timer_init(&r.t[i], record, &r);
		assert_int_equal(loop_timer_start(loop, &r.t[i], delays[i]), MOTE_OK);
	}
	loop_timer_stop(loop, &r.t[5]); /* stopped timers never fire */
	loop_timer_stop(loop, &r.t[5]); /* and stopping twice is harmless */
	assert_int_equal(loop_run(loop), MOTE_OK);
	assert_int_equal(r.n, 5);
	const int want[5] = { 3, 1, 4, 2, 0 };
	for (int i = 0; i < 5; i++)
		assert_int_equal(r.order[i], want[i]);
	/* due times are whole ms from the loop's cached clock: allow 1 ms */
	assert_true(mote_mono_ms() - t0 >= 39);
	loop_free(loop);
}

static void restart_moves_deadline(void **state)
{
	(void)state;
	struct loop *loop;
	struct rec r = { 0 };
	assert_int_equal(loop_new(&loop), MOTE_OK);
	for (int i = 0; i < 5; i++) {
		loop_timer_init(&r.t[i], record, &r);
		loop_timer_start(loop, &r.t[i], (uint64_t)(i + 1) * 5);
	}
	loop_timer_start(loop, &r.t[0], 50); /* was first, now last */
	loop_run(loop);
	const int want[5] = { 1, 2, 3, 4, 0 };
	for (int i = 0; i < 5; i++)
		assert_int_equal(r.order[i], want[i]);
	loop_free(loop);
}

static void on_readable(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct rec *r = io->data;
	assert_true(events & LOOP_READ);
	ssize_t n = read(io->fd, r->got, sizeof r->got - 1);
	assert_true(n > 0);
	r->got[n] = '\0';
	loop_io_stop(loop, io);
	loop_stop(loop);
}

static void io_watcher_sees_data(void **state)
{
	(void)state;
	struct loop *loop;
	struct rec r = { 0 };
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(loop_new(&loop), MOTE_OK);
	assert_int_equal(loop_io_start(loop, &r.io, sv[0], LOOP_READ, on_readable, &r), MOTE_OK);
	assert_int_equal(write(sv[1], "hello", 5), 5);
	loop_run(loop);
	assert_string_equal(r.got, "hello");
	loop_free(loop);
	close(sv[0]);
	close(sv[1]);
}

static void deferred(struct loop *loop, void *data)
{
	struct rec *r = data;
	r->order[r->n] = 100 + r->n;
	r->n++;
	if (r->n == 1) /* deferring from a deferred callback runs it in this pass */
		loop_defer(loop, &r->d[2], deferred, r);
	if (r->n == 3)
		loop_stop(loop);
}

static void start_defers(struct loop *loop, struct loop_timer *t)
{
	struct rec *r = t->data;
	loop_defer(loop, &r->d[0], deferred, r);
	loop_defer(loop, &r->d[1], deferred, r);
	loop_defer(loop, &r->d[1], deferred, r); /* already queued: ignored */
}

static void defers_run_once_in_order(void **state)
{
	(void)state;
	struct loop *loop;
	struct rec r = { 0 };
	assert_int_equal(loop_new(&loop), MOTE_OK);
	loop_timer_init(&r.t[0], start_defers, &r);
	loop_timer_start(loop, &r.t[0], 0);
	loop_run(loop);
	assert_int_equal(r.n, 3);
	loop_free(loop);
}

/* ---- coalesced (idle) work ---------------------------------------------- */

struct busy {
	int fds[2];
	struct loop_io io;
	struct loop_defer idle, cancelled;
	int reads;        /* readable events handled */
	int rearm;        /* keep the fd readable for this many events */
	int idle_runs;
	int idle_at_read; /* reads seen when the idle work ran */
	int cancelled_runs;
};

static void busy_idle(struct loop *loop, void *data)
{
	struct busy *b = data;
	b->idle_runs++;
	b->idle_at_read = b->reads;
	if (b->reads >= b->rearm)
		loop_stop(loop);
}

static void busy_cancelled(struct loop *loop, void *data)
{
	(void)loop;
	((struct busy *)data)->cancelled_runs++;
}

static void busy_read(struct loop *loop, struct loop_io *io, uint32_t events)
{
	(void)events;
	struct busy *b = io->data;
	char c;
	assert_int_equal(read(b->fds[0], &c, 1), 1);
	b->reads++;
	if (b->reads == 1) {
		loop_defer_idle(loop, &b->idle, busy_idle, b);
		loop_defer_idle(loop, &b->idle, busy_idle, b); /* queued once */
		loop_defer_idle(loop, &b->cancelled, busy_cancelled, b);
		loop_defer_cancel(loop, &b->cancelled);
		loop_defer_cancel(loop, &b->cancelled); /* idempotent */
	}
	if (b->reads < b->rearm)
		assert_int_equal(write(b->fds[1], "x", 1), 1);
	else if (b->idle_runs)
		loop_stop(loop);
}

static void run_busy(struct busy *b, int rearm)
{
	struct loop *loop;
	memset(b, 0, sizeof *b);
	b->rearm = rearm;
	assert_int_equal(loop_new(&loop), MOTE_OK);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b->fds), 0);
	assert_int_equal(loop_io_start(loop, &b->io, b->fds[0], LOOP_READ, busy_read, b), MOTE_OK);
	assert_int_equal(write(b->fds[1], "x", 1), 1);
	assert_int_equal(loop_run(loop), MOTE_OK);
	loop_io_stop(loop, &b->io);
	close(b->fds[0]);
	close(b->fds[1]);
	loop_free(loop);
}

static void idle_work_waits_until_input_runs_dry(void **state)
{
	(void)state;
	struct busy b;
	run_busy(&b, 3); /* fewer busy rounds than the cap */
	assert_int_equal(b.idle_runs, 1);
	assert_int_equal(b.idle_at_read, 3);
	assert_int_equal(b.cancelled_runs, 0);
}

static void idle_work_runs_after_max_busy_rounds(void **state)
{
	(void)state;
	struct busy b;
	run_busy(&b, 5 * LOOP_IDLE_MAX_ROUNDS); /* input never runs dry for long */
	/* It ran while input was still arriving, within the cap. */
	assert_true(b.idle_runs >= 1);
	assert_true(b.idle_at_read >= 1);
	assert_true(b.idle_at_read <= LOOP_IDLE_MAX_ROUNDS + 1);
	assert_int_equal(b.cancelled_runs, 0);
}

static void on_wake(struct loop *loop, void *data)
{
	*(int *)data += 1;
	loop_stop(loop);
}

static void *waker(void *arg)
{
	usleep(20000);
	loop_wake(arg);
	return NULL;
}

static void wake_from_another_thread(void **state)
{
	(void)state;
	struct loop *loop;
	int woken = 0;
	pthread_t th;
	assert_int_equal(loop_new(&loop), MOTE_OK);
	loop_set_wake_fn(loop, on_wake, &woken);
	pthread_create(&th, NULL, waker, loop);
	loop_run(loop);
	pthread_join(th, NULL);
	assert_int_equal(woken, 1);
	loop_free(loop);
}

static void addr_parse_and_format(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	socklen_t len;
	char err[128], text[64];
	assert_int_equal(net_addr_parse("127.0.0.1:1883", &ss, &len, err, sizeof err), MOTE_OK);
	assert_string_equal(net_addr_format((struct sockaddr *)&ss, text, sizeof text),
			    "127.0.0.1:1883");
	assert_int_equal(net_addr_parse("[::1]:8883", &ss, &len, err, sizeof err), MOTE_OK);
	assert_string_equal(net_addr_format((struct sockaddr *)&ss, text, sizeof text), "[::1]:8883");
	assert_int_equal(net_addr_parse("127.0.0.1", &ss, &len, err, sizeof err), MOTE_EINVAL);
	assert_non_null(strstr(err, "host:port"));
	assert_int_equal(net_addr_parse("127.0.0.1:70000", &ss, &len, err, sizeof err), MOTE_EINVAL);
	assert_int_equal(net_addr_parse("127.0.0.1:", &ss, &len, err, sizeof err), MOTE_EINVAL);
	assert_int_equal(net_addr_parse("[::1:80", &ss, &len, err, sizeof err), MOTE_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(timers_fire_in_deadline_order),
		cmocka_unit_test(restart_moves_deadline),
		cmocka_unit_test(io_watcher_sees_data),
		cmocka_unit_test(defers_run_once_in_order),
		cmocka_unit_test(wake_from_another_thread),
		cmocka_unit_test(idle_work_waits_until_input_runs_dry),
		cmocka_unit_test(idle_work_runs_after_max_busy_rounds),
		cmocka_unit_test(addr_parse_and_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
