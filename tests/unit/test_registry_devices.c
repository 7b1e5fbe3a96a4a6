/*
 * test_registry_devices.c - the device registry on a real SQLite file:
 * add/list/show/update/remove and their REST shapes, bad ids, names, models
 * and tags (and hostile JSON bodies), connection state kept in memory and
 * flushed, and a second connection (another process: `mote device`) whose
 * changes the first notices, including removals reported to the callback.
 */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "tmpdir.h"

#include "registry/registry.h"

struct fx {
	char dir[64];
	char path[128];
	sqlite3 *db;
	struct registry *r;
	char removed[8][130];
	int nremoved;
};

static sqlite3 *open_db(const char *path)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 2000);
	sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
	return db;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	char err[256];
	strcpy(f->dir, "/tmp/mote-registry-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof f->path, "%s/mote.db", f->dir);
	f->db = open_db(f->path);
	if (registry_open(f->db, &f->r, err, sizeof err) != MOTE_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	registry_close(f->r);
	sqlite3_close(f->db);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static cJSON *reply_doc(struct mote_reply *rep, int status)
{
	assert_int_equal(rep->status, status);
	assert_non_null(rep->body);
	cJSON *d = cJSON_Parse(rep->body);
	assert_non_null(d);
	mote_reply_clear(rep);
	return d;
}

static void add_and_show(void **state)
{
	struct fx *f = *state;
	char err[256];
	assert_int_equal(registry_add(f->r, "pump-1", "Pump 1", "pump", "{\"site\":\"north\"}",
				      1000, err, sizeof err),
			 MOTE_OK);
	assert_true(registry_exists(f->r, "pump-1"));
	assert_string_equal(registry_model(f->r, "pump-1"), "pump");
	assert_null(registry_model(f->r, "pump-2"));
	assert_int_equal(registry_add(f->r, "pump-1", NULL, NULL, NULL, 2000, err, sizeof err),
			 MOTE_EEXIST);

	struct mote_reply rep = { 0 };
	registry_get_json(f->r, "pump-1", &rep);
	cJSON *d = reply_doc(&rep, 200);
	assert_string_equal(cJSON_GetObjectItem(d, "name")->valuestring, "Pump 1");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "tags"), "site")->valuestring,
			    "north");
	assert_int_equal((int)cJSON_GetObjectItem(d, "created")->valuedouble, 1000);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(d, "last_seen")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(d, "last_error_at")));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(d, "online")));
	cJSON_Delete(d);

	registry_get_json(f->r, "nope", &rep);
	d = reply_doc(&rep, 404);
	assert_string_equal(cJSON_GetObjectItem(d, "error")->valuestring, "not_found");
	cJSON_Delete(d);
}

static void refuses_bad_fields(void **state)
{
	struct fx *f = *state;
	char err[256];
	const char *bad_ids[] = { "", "a/b", "a+b", "#", "..", "x y", "\xff\xfe" };
	for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++)
		assert_int_equal(registry_add(f->r, bad_ids[i], NULL, NULL, NULL, 1, err, sizeof err),
				 MOTE_EINVAL);
	char long_id[200];
	memset(long_id, 'a', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = '\0';
	assert_int_equal(registry_add(f->r, long_id, NULL, NULL, NULL, 1, err, sizeof err),
			 MOTE_EINVAL);
	assert_int_equal(registry_add(f->r, "d1", NULL, "bad model!", NULL, 1, err, sizeof err),
			 MOTE_EINVAL);
	assert_int_equal(registry_add(f->r, "d1", NULL, NULL, "[1,2]", 1, err, sizeof err),
			 MOTE_EINVAL);
	assert_int_equal(registry_add(f->r, "d1", NULL, NULL, "{\"a\":1}", 1, err, sizeof err),
			 MOTE_EINVAL);
	assert_int_equal(registry_add(f->r, "d1", NULL, NULL, "{\"a:b\":\"x\"}", 1, err,
				      sizeof err),
			 MOTE_EINVAL);
	assert_int_equal(registry_add(f->r, "d1", NULL, NULL, "{", 1, err, sizeof err),
			 MOTE_EINVAL);
	assert_int_equal(registry_count(f->r), 0);

	/* REST bodies: not JSON, not an object, unknown members, wrong types. */
	const char *bodies[] = { "", "nul", "[]", "{\"id\":5}", "{\"name\":\"x\"}",
				 "{\"id\":\"d1\",\"colour\":\"red\"}", "{\"id\":\"d1\",\"tags\":[]}",
				 "{\"id\":\"d1\",\"model\":{}}",
				 "{\"id\":\"d1\"" };
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		struct mote_reply rep = { 0 };
		registry_create_json(f->r, bodies[i], strlen(bodies[i]), 1, &rep);
		cJSON *d = reply_doc(&rep, 400);
		assert_non_null(cJSON_GetObjectItem(d, "message"));
		cJSON_Delete(d);
	}
	/* Deep nesting in a body is a clean 400, not a crash. */
	size_t n = 100000;
	char *deep = malloc(2 * n + 1);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = '\0';
	struct mote_reply rep = { 0 };
	registry_create_json(f->r, deep, 2 * n, 1, &rep);
	assert_int_equal(rep.status, 400);
	mote_reply_clear(&rep);
	free(deep);
	assert_int_equal(registry_count(f->r), 0);
}

static void rest_create_update_list(void **state)
{
	struct fx *f = *state;
	const char *body = "{\"id\":\"m-1\",\"model\":\"motor\",\"tags\":{\"site\":\"south\"}}";
	struct mote_reply rep = { 0 };
	registry_create_json(f->r, body, strlen(body), 5, &rep);
	cJSON_Delete(reply_doc(&rep, 201));
	registry_create_json(f->r, body, strlen(body), 5, &rep);
	cJSON_Delete(reply_doc(&rep, 409));
	body = "{\"id\":\"p-1\",\"model\":\"pump\",\"name\":\"North pump\",\"tags\":{\"site\":\"north\"}}";
	registry_create_json(f->r, body, strlen(body), 6, &rep);
	cJSON_Delete(reply_doc(&rep, 201));

	const char *patch = "{\"name\":\"Motor one\",\"tags\":{\"site\":\"north\",\"line\":\"3\"}}";
	registry_update_json(f->r, "m-1", patch, strlen(patch), &rep);
	cJSON *d = reply_doc(&rep, 200);
	assert_string_equal(cJSON_GetObjectItem(d, "name")->valuestring, "Motor one");
	assert_string_equal(cJSON_GetObjectItem(d, "model")->valuestring, "motor");
	cJSON_Delete(d);
	registry_update_json(f->r, "zz", patch, strlen(patch), &rep);
	cJSON_Delete(reply_doc(&rep, 404));
	registry_update_json(f->r, "m-1", "{\"id\":\"x\"}", 10, &rep);
	cJSON_Delete(reply_doc(&rep, 400));

	struct {
		struct registry_filter f;
		int total;
	} cases[] = {
		{ { 0 }, 2 },
		{ { .model = "pump" }, 1 },
		{ { .tag = "site:north" }, 2 },
		{ { .tag = "line" }, 1 },
		{ { .tag = "site:west" }, 0 },
		{ { .q = "North" }, 1 },
		{ { .status = "online" }, 0 },
		{ { .status = "offline" }, 2 },
		{ { .limit = 1 }, 2 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		registry_list_json(f->r, &cases[i].f, &rep);
		d = reply_doc(&rep, 200);
		assert_int_equal((int)cJSON_GetObjectItem(d, "total")->valuedouble, cases[i].total);
		int shown = cJSON_GetArraySize(cJSON_GetObjectItem(d, "devices"));
		assert_int_equal(shown, cases[i].f.limit && cases[i].total > (int)cases[i].f.limit
						? (int)cases[i].f.limit
						: cases[i].total);
		cJSON_Delete(d);
	}
	struct registry_filter bad = { .status = "sideways" };
	registry_list_json(f->r, &bad, &rep);
	cJSON_Delete(reply_doc(&rep, 400));
}

static void connection_state(void **state)
{
	struct fx *f = *state;
	char err[256];
	assert_int_equal(registry_add(f->r, "d1", NULL, NULL, NULL, 1, err, sizeof err), MOTE_OK);
	assert_string_equal(registry_model(f->r, "d1"), ""); /* none given */
	assert_null(registry_cert_serial(f->r, "d1"));
	registry_set_online(f->r, "d1", true, 100, "ABCD");
	assert_string_equal(registry_cert_serial(f->r, "d1"), "ABCD");
	/* A session takeover: the new connection comes before the old one ends. */
	registry_set_online(f->r, "d1", true, 110, "ABCD");
	assert_string_equal(registry_cert_serial(f->r, "d1"), "ABCD");
	registry_set_online(f->r, "d1", false, 120, NULL);
	assert_int_equal(registry_online_count(f->r), 1);
	registry_set_error(f->r, "d1", "record 1: \"v\" is not a number", 130);
	registry_set_online(f->r, "ghost", true, 140, NULL); /* unknown: ignored */
	assert_int_equal(registry_flush(f->r), MOTE_OK);

	struct mote_reply rep = { 0 };
	registry_get_json(f->r, "d1", &rep);
	cJSON *d = reply_doc(&rep, 200);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "online")));
	assert_int_equal((int)cJSON_GetObjectItem(d, "last_seen")->valuedouble, 130);
	assert_string_equal(cJSON_GetObjectItem(d, "cert_serial")->valuestring, "ABCD");
	assert_int_equal((int)cJSON_GetObjectItem(d, "invalid_payloads")->valuedouble, 1);
	assert_non_null(strstr(cJSON_GetObjectItem(d, "last_error")->valuestring, "not a number"));
	assert_int_equal((int)cJSON_GetObjectItem(d, "last_error_at")->valuedouble, 130);
	cJSON_Delete(d);

	registry_set_online(f->r, "d1", false, 150, NULL);
	assert_int_equal(registry_online_count(f->r), 0);
	/* A renewed certificate: the new serial replaces the old one. */
	registry_set_online(f->r, "d1", true, 151, "0123456789ABCDEF");
	registry_set_online(f->r, "d1", false, 152, NULL);
	assert_string_equal(registry_cert_serial(f->r, "d1"), "0123456789ABCDEF");
	/* The hub restarts: nobody is online until they connect again. */
	registry_set_online(f->r, "d1", true, 160, NULL);
	registry_flush(f->r);
	assert_int_equal(registry_all_offline(f->r), MOTE_OK);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(f->db, "SELECT online FROM devices WHERE id='d1'", -1, &st, NULL);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
}

static void on_removed(void *ctx, const char *id)
{
	struct fx *f = ctx;
	snprintf(f->removed[f->nremoved++], sizeof f->removed[0], "%s", id);
}

static void another_process(void **state)
{
	struct fx *f = *state;
	char err[256];
	registry_on_removed(f->r, on_removed, f);
	assert_int_equal(registry_add(f->r, "a", NULL, NULL, NULL, 1, err, sizeof err), MOTE_OK);
	assert_int_equal(registry_add(f->r, "b", NULL, NULL, NULL, 1, err, sizeof err), MOTE_OK);
	registry_set_online(f->r, "b", true, 5, "B1");
	assert_false(registry_refresh(f->r)); /* our own writes are no news */

	/* `mote device` in another process: its own connection and registry. */
	sqlite3 *db2 = open_db(f->path);
	struct registry *r2;
	assert_int_equal(registry_open(db2, &r2, err, sizeof err), MOTE_OK);
	assert_true(registry_exists(r2, "a"));
	assert_int_equal(registry_add(r2, "c", NULL, "hvac", NULL, 9, err, sizeof err), MOTE_OK);
	assert_int_equal(registry_remove(r2, "a"), MOTE_OK);
	assert_int_equal(registry_remove(r2, "a"), MOTE_ENOTFOUND);
	registry_close(r2);
	sqlite3_close(db2);

	assert_true(registry_refresh(f->r));
	assert_true(registry_exists(f->r, "c"));
	assert_string_equal(registry_model(f->r, "c"), "hvac");
	assert_false(registry_exists(f->r, "a"));
	assert_int_equal(f->nremoved, 1);
	assert_string_equal(f->removed[0], "a");
	/* The live connection of b survived the reload, its serial read back. */
	assert_int_equal(registry_online_count(f->r), 1);
	assert_string_equal(registry_cert_serial(f->r, "b"), "B1");
}

/* A mote.db written before last_error_at existed: the column is added, old
 * rows read back with no error time, and new errors get one. */
static void table_from_before_last_error_at(void **state)
{
	struct fx *f = *state;
	char err[256];
	registry_close(f->r);
	f->r = NULL;
	assert_int_equal(sqlite3_exec(f->db, "DROP TABLE devices;"
				      "CREATE TABLE devices (id TEXT PRIMARY KEY,"
				      " name TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '',"
				      " tags TEXT NOT NULL DEFAULT '{}', created INTEGER NOT NULL,"
				      " last_seen INTEGER NOT NULL DEFAULT 0,"
				      " online INTEGER NOT NULL DEFAULT 0, cert_serial TEXT,"
				      " last_error TEXT, invalid_payloads INTEGER NOT NULL DEFAULT 0"
				      ") WITHOUT ROWID;"
				      "INSERT INTO devices(id, model, created, last_error, invalid_payloads)"
				      " VALUES ('old-1', 'pump', 5, 'bad json', 2);",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(registry_open(f->db, &f->r, err, sizeof err), MOTE_OK);
	assert_string_equal(registry_model(f->r, "old-1"), "pump");
	struct mote_reply rep = { 0 };
	registry_get_json(f->r, "old-1", &rep);
	cJSON *d = reply_doc(&rep, 200);
	assert_string_equal(cJSON_GetObjectItem(d, "last_error")->valuestring, "bad json");
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(d, "last_error_at")));
	cJSON_Delete(d);

	registry_set_error(f->r, "old-1", "still bad", 777);
	assert_int_equal(registry_flush(f->r), MOTE_OK);
	registry_get_json(f->r, "old-1", &rep);
	d = reply_doc(&rep, 200);
	assert_int_equal((int)cJSON_GetObjectItem(d, "last_error_at")->valuedouble, 777);
	assert_int_equal((int)cJSON_GetObjectItem(d, "invalid_payloads")->valuedouble, 3);
	cJSON_Delete(d);
	/* Opening again finds the column there and adds nothing. */
	registry_close(f->r);
	assert_int_equal(registry_open(f->db, &f->r, err, sizeof err), MOTE_OK);
	assert_true(registry_exists(f->r, "old-1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(add_and_show, setup, teardown),
		cmocka_unit_test_setup_teardown(table_from_before_last_error_at, setup, teardown),
		cmocka_unit_test_setup_teardown(refuses_bad_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(rest_create_update_list, setup, teardown),
		cmocka_unit_test_setup_teardown(connection_state, setup, teardown),
		cmocka_unit_test_setup_teardown(another_process, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
