/*
 * oom_inject.h - allocation-failure injection for the *_oom unit tests.
 *
 * A test includes this header and then the .c files under test, so that
 * their malloc/calloc/realloc go through a counting wrapper which fails on
 * request; afterwards it #undefs malloc, calloc and realloc. This keeps fault
 * injection local to the test (no link-time wrapping, nothing in the
 * sources). The library's copies of those files are not linked in: a static
 * archive only supplies members for undefined symbols, and these are all
 * defined in the test.
 *
 * arm(n, persist): from now on, allocation number n (0-based) fails, and with
 * persist every later one too; fault.calls counts allocations seen since.
 * disarm(): allocations succeed again (fault.calls keeps its value).
 */
#ifndef MOTE_TESTS_OOM_INJECT_H
#define MOTE_TESTS_OOM_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

/* Process-wide because malloc has no context argument. */
static struct {
	long calls;   /* allocations seen since arming */
	long fail_at; /* index of the first one to fail; -1 = none */
	bool persist; /* keep failing after the first failure */
	bool armed;
} fault;

static void arm(long fail_at, bool persist)
{
	fault.calls = 0;
	fault.fail_at = fail_at;
	fault.persist = persist;
	fault.armed = true;
}

static void disarm(void)
{
	fault.armed = false;
}

static bool must_fail(void)
{
	if (!fault.armed)
		return false;
	long i = fault.calls++;
	return fault.fail_at >= 0 && (i == fault.fail_at || (fault.persist && i > fault.fail_at));
}

/* unused is allowed: the files under test may not call every one of them */
__attribute__((unused)) static void *t_malloc(size_t n)
{
	return must_fail() ? NULL : malloc(n);
}
__attribute__((unused)) static void *t_calloc(size_t a, size_t b)
{
	return must_fail() ? NULL : calloc(a, b);
}
__attribute__((unused)) static void *t_realloc(void *p, size_t n)
{
	return must_fail() ? NULL : realloc(p, n);
}

#define malloc(n) t_malloc(n)
#define calloc(a, b) t_calloc(a, b)
#define realloc(p, n) t_realloc(p, n)

#endif
