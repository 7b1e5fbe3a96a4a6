/* test_broker_msgpool.c - message pools: reuse, cross-thread frees, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "broker/msg.h"

static struct msg *make(struct msg_pool *p, size_t payload_len)
{
	static const uint8_t payload[8192];
	return msg_new(p, (const uint8_t *)"t/1", 3, NULL, 0, payload, (uint32_t)payload_len, 1,
		       false, 0, 7);
}

static void freed_block_is_reused_by_the_owner(void **state)
{
	(void)state;
	struct msg_pool *p;
	assert_int_equal(msg_pool_new(&p), MOTE_OK);
	struct msg *a = make(p, 100);
	assert_non_null(a);
	assert_ptr_equal(a->pool, p);
	assert_int_equal(a->payload_len, 100);
	assert_memory_equal(msg_topic(a), "t/1", 3);
	msg_ref(a);
	msg_unref(a); /* still referenced: not freed */
	assert_int_equal(msg_pool_cached(p), 0);
	msg_unref(a);
	assert_int_equal(msg_pool_cached(p), 1);
	struct msg *b = make(p, 90); /* same size class */
	assert_ptr_equal(b, a);
	assert_int_equal(msg_pool_cached(p), 0);
	assert_int_equal(b->payload_len, 90);
	msg_unref(b);
	msg_pool_free(p);
}

static void large_and_poolless_messages_use_malloc(void **state)
{
	(void)state;
	struct msg_pool *p;
	assert_int_equal(msg_pool_new(&p), MOTE_OK);
	struct msg *big = make(p, 8000); /* above the largest class */
	struct msg *loose = make(NULL, 10);
	assert_non_null(big);
	assert_non_null(loose);
	assert_null(big->pool);
	assert_null(loose->pool);
	msg_unref(big);
	msg_unref(loose);
	assert_int_equal(msg_pool_cached(p), 0);
	msg_pool_free(p);
}

#define CROSS 2000

static void *unref_all(void *arg)
{
	struct msg **ms = arg;
	for (int i = 0; i < CROSS; i++)
		msg_unref(ms[i]);
	return NULL;
}

static void frees_from_another_thread_come_back(void **state)
{
	(void)state;
	struct msg_pool *p;
	static struct msg *ms[CROSS];
	assert_int_equal(msg_pool_new(&p), MOTE_OK);
	for (int i = 0; i < CROSS; i++) {
		ms[i] = make(p, 100);
		assert_non_null(ms[i]);
	}
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, unref_all, ms), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	/* Remote frees wait on the pool's stack until the owner runs dry. */
	assert_int_equal(msg_pool_cached(p), 0);
	struct msg *again = make(p, 100);
	assert_non_null(again);
	/* The owner took them all back, keeping at most MSG_POOL_KEEP. */
	assert_int_equal(msg_pool_cached(p), MSG_POOL_KEEP - 1);
	int found = 0;
	for (int i = 0; i < CROSS; i++)
		found += ms[i] == again;
	assert_int_equal(found, 1);
	msg_unref(again);
	msg_pool_free(p); /* ASan/LSan: nothing leaks, nothing freed twice */
}

static void owner_keeps_at_most_the_limit(void **state)
{
	(void)state;
	struct msg_pool *p;
	static struct msg *ms[MSG_POOL_KEEP + 10];
	assert_int_equal(msg_pool_new(&p), MOTE_OK);
	for (int i = 0; i < MSG_POOL_KEEP + 10; i++)
		ms[i] = make(p, 100);
	for (int i = 0; i < MSG_POOL_KEEP + 10; i++)
		msg_unref(ms[i]);
	assert_int_equal(msg_pool_cached(p), MSG_POOL_KEEP);
	msg_pool_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(freed_block_is_reused_by_the_owner),
		cmocka_unit_test(large_and_poolless_messages_use_malloc),
		cmocka_unit_test(frees_from_another_thread_come_back),
		cmocka_unit_test(owner_keeps_at_most_the_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
