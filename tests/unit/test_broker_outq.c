/* test_broker_outq.c - output queues and the shard's buffer cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/outq.h"

static void queue_bytes(struct outq *q, struct outq_cache *c, const char *text)
{
	size_t n = strlen(text);
	uint8_t *dst = outq_reserve(q, c, n);
	assert_non_null(dst);
	memcpy(dst, text, n);
	assert_int_equal(outq_commit(q, c, n), MOTE_OK);
}

static void drained_buffers_go_to_the_cache_and_come_back(void **state)
{
	(void)state;
	static struct outq_cache cache;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct net_stream s;
	net_stream_tcp(&s, sv[0]);

	struct outq a;
	outq_init(&a);
	queue_bytes(&a, &cache, "hello ");
	queue_bytes(&a, &cache, "world");
	assert_int_equal(a.pending, 11);
	void *arena = a.arena, *segs = a.segs;
	size_t written;
	assert_int_equal(outq_write(&a, &cache, &s, &written), MOTE_OK);
	assert_int_equal(written, 11);
	char got[32] = { 0 };
	assert_int_equal(read(sv[1], got, sizeof got), 11);
	assert_string_equal(got, "hello world");
	/* Drained: nothing held by the queue, both buffers in the cache. */
	assert_null(a.arena);
	assert_null(a.segs);
	assert_int_equal(cache.n_arenas, 1);
	assert_int_equal(cache.n_segs, 1);

	struct outq b;
	outq_init(&b);
	queue_bytes(&b, &cache, "again");
	assert_ptr_equal(b.arena, arena); /* reused, not malloc'd */
	assert_ptr_equal(b.segs, segs);
	assert_int_equal(cache.n_arenas, 0);
	/* A big packet grows the arena past the cached size: freed, not kept. */
	uint8_t *big = outq_reserve(&b, &cache, 3 * OUTQ_BLOCK);
	assert_non_null(big);
	assert_true(b.arena_cap > OUTQ_BLOCK);
	outq_free(&b, &cache);
	assert_int_equal(cache.n_arenas, 0);
	assert_int_equal(cache.n_segs, 1);

	outq_cache_drain(&cache);
	assert_int_equal(cache.n_segs, 0);
	s.ops->close(&s);
	close(sv[1]);
}

static void cache_keeps_at_most_its_limit(void **state)
{
	(void)state;
	static struct outq_cache cache;
	static struct outq qs[OUTQ_CACHE_KEEP + 5];
	for (unsigned i = 0; i < OUTQ_CACHE_KEEP + 5; i++) {
		outq_init(&qs[i]);
		queue_bytes(&qs[i], &cache, "x");
	}
	for (unsigned i = 0; i < OUTQ_CACHE_KEEP + 5; i++)
		outq_free(&qs[i], &cache);
	assert_int_equal(cache.n_arenas, OUTQ_CACHE_KEEP);
	assert_int_equal(cache.n_segs, OUTQ_CACHE_KEEP);
	outq_cache_drain(&cache); /* LSan: the extra five were freed */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(drained_buffers_go_to_the_cache_and_come_back),
		cmocka_unit_test(cache_keeps_at_most_its_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
