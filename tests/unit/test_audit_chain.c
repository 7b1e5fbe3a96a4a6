/*
 * test_audit_chain.c - the audit log: many threads and two handles on one
 * file (as two processes would have: separate open files, one flock) keep a
 * single unbroken chain; verify finds an edited record, a removed one, a
 * reordered pair and a torn last line; JSON string escaping.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/audit.h"

#define THREADS 4
#define PER_THREAD 300

struct worker {
	struct audit *a;
	int n;
};

static void *run(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		char f[64];
		snprintf(f, sizeof f, "{\"i\":%d}", i);
		while (audit_append(w->a, "test_event", f) == MOTE_EFULL)
			usleep(100);
		w->n++;
	}
	return NULL;
}

static char *temp_path(void)
{
	char *p = strdup("/tmp/mote-audit-XXXXXX");
	int fd = mkstemp(p);
	assert_true(fd >= 0);
	close(fd);
	return p;
}

static char **read_lines(const char *path, int *n)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char **lines = calloc(4096, sizeof *lines), buf[8192];
	*n = 0;
	while (fgets(buf, sizeof buf, f))
		lines[(*n)++] = strdup(buf);
	fclose(f);
	return lines;
}

static void write_lines(const char *path, char **lines, int n)
{
	FILE *f = fopen(path, "w");
	for (int i = 0; i < n; i++)
		fputs(lines[i], f);
	fclose(f);
}

static void test_threads_and_two_handles(void **state)
{
	(void)state;
	char *path = temp_path();
	struct audit *a, *b;
	assert_int_equal(audit_open(path, &a), MOTE_OK);
	assert_int_equal(audit_open(path, &b), MOTE_OK);
	pthread_t t[THREADS];
	struct worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ i % 2 ? b : a, 0 };
		pthread_create(&t[i], NULL, run, &w[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(audit_flush(a), MOTE_OK);
	assert_int_equal(audit_flush(b), MOTE_OK);
	audit_close(a);
	audit_close(b);
	struct audit_verify_result r;
	assert_int_equal(audit_verify(path, &r), MOTE_OK);
	assert_int_equal(r.records, THREADS * PER_THREAD);
	/* a later open goes on from the tail */
	assert_int_equal(audit_open(path, &a), MOTE_OK);
	assert_int_equal(audit_append(a, "again", NULL), MOTE_OK);
	audit_close(a);
	assert_int_equal(audit_verify(path, &r), MOTE_OK);
	assert_int_equal(r.records, THREADS * PER_THREAD + 1);
	unlink(path);
	free(path);
}

static void test_tampering_found(void **state)
{
	(void)state;
	char *path = temp_path();
	struct audit *a;
	assert_int_equal(audit_open(path, &a), MOTE_OK);
	for (int i = 0; i < 6; i++)
		assert_int_equal(audit_append(a, "e", "{\"k\":\"v\"}"), MOTE_OK);
	audit_close(a);
	int n;
	char **lines = read_lines(path, &n);
	assert_int_equal(n, 6);
	struct audit_verify_result r;

	char *orig = lines[3];
	lines[3] = strdup(orig);
	char *v = strstr(lines[3], "\"v\"");
	v[1] = 'w';
	write_lines(path, lines, n);
	assert_int_equal(audit_verify(path, &r), MOTE_EMALFORMED);
	assert_int_equal(r.bad_line, 4);
	assert_non_null(strstr(r.why, "edited"));
	free(lines[3]);
	lines[3] = orig;

	char *gone[5] = { lines[0], lines[1], lines[3], lines[4], lines[5] };
	write_lines(path, gone, 5);
	assert_int_equal(audit_verify(path, &r), MOTE_EMALFORMED);
	assert_int_equal(r.bad_line, 3);
	assert_non_null(strstr(r.why, "removed"));

	char *swapped[6] = { lines[0], lines[2], lines[1], lines[3], lines[4], lines[5] };
	write_lines(path, swapped, 6);
	assert_int_equal(audit_verify(path, &r), MOTE_EMALFORMED);
	assert_int_equal(r.bad_line, 2);

	char *first_gone[5] = { lines[1], lines[2], lines[3], lines[4], lines[5] };
	write_lines(path, first_gone, 5);
	assert_int_equal(audit_verify(path, &r), MOTE_EMALFORMED);
	assert_int_equal(r.bad_line, 1);

	/* a torn tail: reported; a new writer starts on a fresh line */
	write_lines(path, lines, 6);
	FILE *f = fopen(path, "a");
	fputs("{\"seq\":7,\"ti", f);
	fclose(f);
	assert_int_equal(audit_verify(path, &r), MOTE_EMALFORMED);
	assert_int_equal(r.bad_line, 7);
	assert_int_equal(r.records, 6);
	assert_int_equal(audit_open(path, &a), MOTE_OK);
	assert_int_equal(audit_append(a, "after_crash", NULL), MOTE_OK);
	audit_close(a);
	assert_int_equal(audit_verify(path, &r), MOTE_EMALFORMED);
	assert_int_equal(r.bad_line, 7);

	for (int i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	unlink(path);
	free(path);
}

static void test_refusals_and_escaping(void **state)
{
	(void)state;
	char *path = temp_path();
	struct audit *a;
	assert_int_equal(audit_open(path, &a), MOTE_OK);
	assert_int_equal(audit_append(a, "Bad Name", NULL), MOTE_EINVAL);
	assert_int_equal(audit_append(a, "e", "[1]"), MOTE_EINVAL);
	assert_int_equal(audit_append(a, "e", "{\"a\":\"x\ny\"}"), MOTE_EINVAL);
	audit_close(a);
	char buf[64];
	size_t n = audit_json_str(buf, sizeof buf, "a\"b\\c\n\xff", 7);
	assert_string_equal(buf, "\"a\\\"b\\\\c\\u000a\\u00ff\"");
	assert_int_equal(n, strlen(buf));
	/* too small: truncated, NUL-terminated, full length reported */
	char small[4];
	assert_int_equal(audit_json_str(small, sizeof small, "abcdef", 6), 8);
	assert_int_equal(strlen(small), 3);
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_and_two_handles),
		cmocka_unit_test(test_tampering_found),
		cmocka_unit_test(test_refusals_and_escaping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
