/* fuzz_registry_json.c - the registry's REST bodies take any bytes: a
 * create answers 201 or a 400/409 error in the API's one error shape, and an
 * accepted device reads back (200) with the id it was given; the same bytes
 * as a PATCH of an existing device answer 200 or 400. The device is removed
 * again so the table stays small. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "registry/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fuzzer's one registry, on an in-memory database (a fuzz target's
 * process-wide state: libFuzzer calls in with no context). */
static struct registry *reg;
static sqlite3 *db;

static cJSON *checked(struct mote_reply *rep, const int *ok, size_t nok)
{
	cJSON *j = rep->body ? cJSON_Parse(rep->body) : NULL;
	bool status_ok = false;
	for (size_t i = 0; i < nok; i++)
		status_ok = status_ok || rep->status == ok[i];
	if (!j || !status_ok)
		__builtin_trap(); /* every reply is JSON with an expected status */
	if (rep->status >= 400 && (!cJSON_IsString(cJSON_GetObjectItem(j, "message")) ||
				   !cJSON_IsString(cJSON_GetObjectItem(j, "error"))))
		__builtin_trap();
	return j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!reg) {
		char err[200];
		if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
		    registry_open(db, &reg, err, sizeof err) != MOTE_OK)
			__builtin_trap();
		registry_add(reg, "probe", NULL, NULL, NULL, 1, err, sizeof err);
	}
	struct mote_reply rep = { 0 };
	registry_create_json(reg, (const char *)data, size, 1, &rep);
	static const int create_ok[] = { 201, 400, 409 };
	cJSON *j = checked(&rep, create_ok, 3);
	if (rep.status == 201) {
		const cJSON *id = cJSON_GetObjectItem(j, "id");
		if (!cJSON_IsString(id) || !registry_exists(reg, id->valuestring))
			__builtin_trap();
		registry_remove(reg, id->valuestring);
	}
	cJSON_Delete(j);
	mote_reply_clear(&rep);

	registry_update_json(reg, "probe", (const char *)data, size, &rep);
	static const int update_ok[] = { 200, 400 };
	j = checked(&rep, update_ok, 2);
	cJSON_Delete(j);
	mote_reply_clear(&rep);
	return 0;
}
