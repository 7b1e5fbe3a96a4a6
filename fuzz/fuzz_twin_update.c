/* fuzz_twin_update.c - any bytes as a twin request (update, patch or get)
 * against a document that earlier inputs shaped. A request is refused with a
 * 400 or 413 and a sentence, or applied; an applied document keeps the
 * invariants (metadata mirrors state, no empty objects, within the size
 * limit, version + 1) and survives the stored form. The same bytes then go
 * through the service over an in-memory SQLite database, whose replies must
 * be JSON objects. The first byte picks the request kind and the source. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "twin/doc.h"
#include "twin/twin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct twin_limits lim;
static struct twin_doc doc;
static sqlite3 *db;
static struct twin_service *svc;

/* meta mirrors state; no object inside state is empty */
static void check_mirror(const cJSON *s, const cJSON *m, int top)
{
	if (!cJSON_IsObject(m))
		__builtin_trap();
	if (!top && !s->child)
		__builtin_trap();
	for (const cJSON *c = s->child; c; c = c->next) {
		const cJSON *mk = cJSON_GetObjectItemCaseSensitive(m, c->string);
		if (!mk)
			__builtin_trap();
		if (cJSON_IsObject(c))
			check_mirror(c, mk, 0);
		else if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(mk, "timestamp")))
			__builtin_trap();
	}
	int ns = cJSON_GetArraySize(s), nm = cJSON_GetArraySize(m);
	if (ns != nm)
		__builtin_trap();
}

static void on_publish(void *ctx, const char *topic, const void *payload, size_t len,
		       uint8_t qos, bool retain)
{
	(void)ctx;
	if (qos != 1 || retain || strncmp(topic, "$twin/fz/", 9) != 0)
		__builtin_trap();
	cJSON *j = cJSON_ParseWithLength(payload, len);
	if (!cJSON_IsObject(j))
		__builtin_trap();
	cJSON_Delete(j);
}

static const struct mote_sink sink = { .publish = on_publish };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!db) {
		twin_limits_defaults(&lim);
		lim.max_state_bytes = 2048;
		lim.updates_per_s = 0;
		char err[128];
		if (!twin_doc_init(&doc, 0) || sqlite3_open(":memory:", &db) != SQLITE_OK ||
		    twin_service_open(db, &lim, &sink, &svc, err, sizeof err) != MOTE_OK)
			abort();
	}
	if (size < 1)
		return 0;
	enum twin_req kind = data[0] % 3 == 0 ? TWIN_REQ_UPDATE
			     : data[0] % 3 == 1 ? TWIN_REQ_PATCH
						: TWIN_REQ_GET;
	bool device = data[0] & 0x80;
	data++;
	size--;

	struct twin_request req;
	char msg[256] = "";
	int st = twin_request_parse(data, size, kind, &lim, &req, msg, sizeof msg);
	if (st && ((st != 400 && st != 413) || !msg[0]))
		__builtin_trap();
	if (!st && kind != TWIN_REQ_GET) {
		struct twin_doc next;
		if (!twin_doc_copy(&next, &doc))
			abort();
		int ast = twin_doc_apply(&next, &req, (int64_t)size, &lim, msg, sizeof msg);
		if (ast == 0) {
			if (next.version != doc.version + 1 ||
			    twin_doc_state_bytes(&next) != next.bytes ||
			    next.bytes > lim.max_state_bytes)
				__builtin_trap();
			check_mirror(next.desired, next.meta_desired, 1);
			check_mirror(next.reported, next.meta_reported, 1);
			char *text = twin_doc_store_text(&next);
			struct twin_doc back;
			if (!text || !twin_doc_load(&back, text, next.version))
				__builtin_trap();
			if (!cJSON_Compare(back.desired, next.desired, 1) ||
			    !cJSON_Compare(back.meta_reported, next.meta_reported, 1))
				__builtin_trap();
			cJSON *delta = twin_doc_delta(&next);
			cJSON *dm = delta ? twin_doc_delta_meta(&next, delta) : NULL;
			if (!delta || !dm || cJSON_GetArraySize(delta) != cJSON_GetArraySize(dm))
				__builtin_trap();
			cJSON_Delete(delta);
			cJSON_Delete(dm);
			twin_doc_free(&back);
			cJSON_free(text);
			twin_doc_free(&doc);
			doc = next;
		} else if (ast == 413) {
			twin_doc_free(&next);
		} else {
			__builtin_trap();
		}
	}
	twin_request_free(&req);

	if (kind == TWIN_REQ_PATCH) {
		struct mote_reply r = { 0 };
		twin_service_patch(svc, "fz", (const char *)data, size, 1, &r);
		if (!r.body || (r.status != 200 && r.status != 400 && r.status != 404 &&
				r.status != 409 && r.status != 413))
			__builtin_trap();
		mote_reply_clear(&r);
	} else {
		twin_service_mqtt(svc, "fz", true, kind == TWIN_REQ_GET ? "get" : "update",
				  device ? TWIN_SOURCE_DEVICE : TWIN_SOURCE_OPERATOR, data, size, 1);
	}
	return 0;
}
