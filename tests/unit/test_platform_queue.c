/*
 * test_platform_queue.c - the pipeline's bounded queue: telemetry over the
 * byte bound is dropped and counted while connection events are always
 * kept, calls are handed out ahead of queued messages and their callers
 * wait until they are done, order is kept, and closing wakes everyone.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/clock.h"
#include "platform/queue.h"

static struct item *telemetry(const char *id, size_t payload_len)
{
	uint8_t *buf = calloc(1, payload_len + 1);
	struct item *it = item_new(ITEM_TELEMETRY, id, strlen(id), NULL, 0, buf, payload_len);
	free(buf);
	assert_non_null(it);
	return it;
}

static void free_list(struct item *it)
{
	while (it) {
		struct item *next = it->next;
		free(it);
		it = next;
	}
}

static void bound_drops_telemetry_only(void **state)
{
	(void)state;
	struct queue q;
	assert_int_equal(queue_init(&q, 4096), MOTE_OK);
	assert_true(queue_push(&q, telemetry("a", 1000)));
	assert_true(queue_push(&q, telemetry("a", 1000)));
	assert_true(queue_push(&q, telemetry("a", 1000)));
	assert_false(queue_push(&q, telemetry("a", 1000))); /* over 4096 bytes */
	struct item *c = item_new(ITEM_CONNECT, "a", 1, NULL, 0, NULL, 0);
	assert_true(queue_push(&q, c)); /* connection state is never dropped */
	uint64_t items, bytes, dropped, lag;
	queue_stats(&q, mote_mono_ms(), &items, &bytes, &dropped, &lag);
	assert_int_equal(items, 4);
	assert_int_equal(dropped, 1);
	assert_true(bytes > 3000);

	struct item *calls, *msgs;
	assert_true(queue_take(&q, 0, &calls, &msgs));
	assert_null(calls);
	int n = 0;
	uint8_t kinds[8];
	for (struct item *it = msgs; it; it = it->next)
		kinds[n++] = it->kind;
	assert_int_equal(n, 4);
	assert_int_equal(kinds[3], ITEM_CONNECT); /* order kept */
	free_list(msgs);
	/* Room again once taken. */
	assert_true(queue_push(&q, telemetry("a", 1000)));
	assert_true(queue_take(&q, 0, &calls, &msgs));
	free_list(msgs);
	queue_destroy(&q);
}

static void item_copies(void **state)
{
	(void)state;
	const uint8_t payload[] = { '{', '}', 0, 'x' };
	struct item *it = item_new(ITEM_TWIN, "dev-1", 5, "update", 6, payload, sizeof payload);
	assert_string_equal(it->id, "dev-1");
	assert_string_equal(it->op, "update");
	assert_int_equal(it->len, 4);
	assert_memory_equal(it->payload, payload, 4);
	assert_int_equal(it->payload[4], 0); /* NUL after the payload */
	free(it);
}

struct caller {
	struct queue *q;
	int *counter;
	enum mote_err rc;
};

static void bump(struct platform_services *s, void *arg)
{
	(void)s;
	(*(int *)arg)++;
}

static void *call_thread(void *arg)
{
	struct caller *c = arg;
	c->rc = queue_call(c->q, bump, c->counter);
	return NULL;
}

static void calls_first_and_waited_for(void **state)
{
	(void)state;
	struct queue q;
	assert_int_equal(queue_init(&q, 1 << 20), MOTE_OK);
	for (int i = 0; i < 10; i++)
		assert_true(queue_push(&q, telemetry("a", 10)));
	int counter = 0;
	struct caller c = { &q, &counter, MOTE_EIO };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, call_thread, &c), 0);

	/* The pipeline's side: the call comes out with the messages, first. */
	struct item *calls = NULL, *msgs = NULL;
	uint64_t deadline = mote_mono_ms() + 5000;
	while (!calls && mote_mono_ms() < deadline) {
		struct item *more_msgs;
		assert_true(queue_take(&q, 50, &calls, &more_msgs));
		if (more_msgs) {
			assert_null(msgs);
			msgs = more_msgs;
		}
	}
	assert_non_null(calls);
	assert_null(calls->next);
	calls->fn(NULL, calls->arg);
	queue_calls_done(&q, calls);
	pthread_join(t, NULL);
	assert_int_equal(c.rc, MOTE_OK);
	assert_int_equal(counter, 1);
	free_list(msgs);
	queue_destroy(&q);
}

static void close_refuses_and_wakes(void **state)
{
	(void)state;
	struct queue q;
	assert_int_equal(queue_init(&q, 1 << 20), MOTE_OK);
	queue_close(&q);
	assert_false(queue_push(&q, telemetry("a", 10)));
	int counter = 0;
	assert_int_equal(queue_call(&q, bump, &counter), MOTE_ECLOSED);
	struct item *calls, *msgs;
	uint64_t t0 = mote_mono_ms();
	assert_false(queue_take(&q, 2000, &calls, &msgs)); /* closed and empty: at once */
	assert_true(mote_mono_ms() - t0 < 1000);
	queue_destroy(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bound_drops_telemetry_only),
		cmocka_unit_test(item_copies),
		cmocka_unit_test(calls_first_and_waited_for),
		cmocka_unit_test(close_refuses_and_wakes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
