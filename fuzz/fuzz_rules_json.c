/* fuzz_rules_json.c - rule JSON validation takes any bytes: the reply is
 * 201 or a 400/413 error in the API's one error shape; an accepted rule
 * reads back with the same fields and can be PUT back unchanged (its
 * canonical form is itself valid), and is then deleted. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rules *rules_obj;
static sqlite3 *db;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!rules_obj) {
		char err[200];
		if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
		    rules_open(db, NULL, NULL, &rules_obj, err, sizeof err) != MOTE_OK)
			__builtin_trap();
	}
	struct mote_reply rep = { 0 };
	rules_create(rules_obj, (const char *)data, size, &rep);
	cJSON *j = rep.body ? cJSON_Parse(rep.body) : NULL;
	if (!j)
		__builtin_trap(); /* every reply is JSON */
	if (rep.status != 201) {
		if ((rep.status != 400 && rep.status != 413) ||
		    !cJSON_IsString(cJSON_GetObjectItem(j, "message")) ||
		    !cJSON_IsString(cJSON_GetObjectItem(j, "error")))
			__builtin_trap();
		cJSON_Delete(j);
		mote_reply_clear(&rep);
		return 0;
	}
	char id[32];
	snprintf(id, sizeof id, "%.0f", cJSON_GetObjectItem(j, "id")->valuedouble);
	struct mote_reply got = { 0 }, put = { 0 }, del = { 0 };
	rules_get(rules_obj, id, &got);
	if (got.status != 200 || strcmp(got.body, rep.body) != 0)
		__builtin_trap();
	rules_update(rules_obj, id, got.body, strlen(got.body), &put);
	if (put.status != 200)
		__builtin_trap();
	/* a device sends something and time passes: evaluation of any accepted rule is safe */
	struct telemetry_point pts[2] = { { "temp", 0, 1e300 }, { "rpm", 1000, -5 } };
	rules_on_points(rules_obj, "dev", "pump", pts, 2, 1000);
	rules_tick(rules_obj, 1000000);
	rules_delete(rules_obj, id, &del);
	if (del.status != 204)
		__builtin_trap();
	cJSON_Delete(j);
	mote_reply_clear(&rep);
	mote_reply_clear(&got);
	mote_reply_clear(&put);
	mote_reply_clear(&del);
	return 0;
}
