/*
 * test_journal_crash.c - kill -9 while committing. A child process appends
 * and commits (policy always, small segments so rolls happen too) and
 * writes each committed LSN to a pipe only after journal_commit() returned;
 * the parent SIGKILLs it at a random moment, then reopens the journal:
 * every LSN the child reported must come back, intact and in order. The
 * rounds share one directory, so each child also recovers its
 * predecessor's (possibly torn) tail before appending.
 *
 * SIGKILL loses no page-cache data, so this proves the process-crash path
 * (torn writes, recovery, LSN continuity), not power loss; fdatasync is
 * covered by the ALWAYS policy contract and test_journal_sync.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "test_journal_util.h"

#define SEED 0xc0ffeeu
#define ROUNDS 6

static void child(const char *dir, int wfd)
{
	struct journal_opts o = { .dir = dir, .sync = JOURNAL_SYNC_ALWAYS,
				  .segment_bytes = 16 * 1024 };
	struct journal *j = NULL;
	uint64_t lsn, n = 0;
	if (journal_open(&o, NULL, NULL, &j, NULL) != MOTE_OK)
		_exit(2);
	for (;;) {
		int k = 1 + (int)(tj_mix(++n) % 5);
		for (int i = 0; i < k; i++)
			if (tj_append(j, SEED, 4096, &lsn) != MOTE_OK)
				_exit(3);
		if (journal_commit(j) != MOTE_OK)
			_exit(4);
		if (write(wfd, &lsn, sizeof lsn) != (ssize_t)sizeof lsn)
			_exit(5);
	}
}

static void crash_loop(void **state)
{
	(void)state;
	char *root = tj_mkdtemp(), *dir = tj_subdir(root);
	uint64_t reported = 0;
	struct timespec seed;
	clock_gettime(CLOCK_MONOTONIC, &seed);
	uint64_t rng = tj_mix((uint64_t)seed.tv_nsec);
	print_message("crash_loop seed %llu\n", (unsigned long long)rng);

	for (int round = 0; round < ROUNDS; round++) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			child(dir, p[1]);
		}
		close(p[1]);
		/* Wait for the first report, then kill after 0..30 ms. */
		uint64_t lsn;
		ssize_t r;
		do
			r = read(p[0], &lsn, sizeof lsn);
		while (r < 0 && errno == EINTR);
		assert_int_equal(r, (ssize_t)sizeof lsn);
		assert_true(lsn > reported);
		reported = lsn;
		rng = tj_mix(rng + (uint64_t)round);
		struct timespec ts = { 0, (long)(rng % 30000) * 1000L };
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		/* Reports still in the pipe were sent after their commit returned. */
		while ((r = read(p[0], &lsn, sizeof lsn)) == (ssize_t)sizeof lsn) {
			assert_true(lsn > reported);
			reported = lsn;
		}
		close(p[0]);

		struct journal_opts o = { .dir = dir, .sync = JOURNAL_SYNC_ALWAYS };
		struct journal *j = NULL;
		struct tj_seen seen;
		tj_seen_init(&seen, SEED, 4096);
		assert_int_equal(journal_open(&o, tj_replay, &seen, &j, NULL), MOTE_OK);
		if (seen.last < reported)
			fail_msg("round %d: child reported LSN %llu committed, recovered only %llu",
				 round, (unsigned long long)reported,
				 (unsigned long long)seen.last);
		assert_int_equal(seen.first, 1);
		assert_int_equal(seen.count, seen.last);
		assert_int_equal(seen.gaps + seen.bad, 0);
		print_message("round %d: reported %llu, recovered %llu\n", round,
			      (unsigned long long)reported, (unsigned long long)seen.last);
		journal_close(j);
		tj_seen_free(&seen);
	}
	tj_rmrf(root);
	free(dir);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crash_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
