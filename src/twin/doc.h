/*
 * doc.h - the twin document model inside src/twin/ (not part of the
 * module's face; twin.h is): parsing and validating requests, the deep
 * merge with null-deletes and per-leaf metadata, the delta, and the JSON
 * shapes of the document. Pure functions over cJSON trees: no SQLite, no
 * sink, no clock; the unit tests call them directly.
 *
 * Statuses are HTTP codes (0 or 200 means fine); a failing function writes
 * a sentence into msg. Threading: none of these keep state.
 */
#ifndef MOTE_TWIN_DOC_H
#define MOTE_TWIN_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "twin/twin.h"

#define TWIN_TOKEN_MAX 64   /* clientToken bytes */
#define TWIN_KEY_MAX 256    /* bytes of one key in state */

struct twin_doc {
	cJSON *desired, *reported;           /* objects, never NULL */
	cJSON *meta_desired, *meta_reported; /* mirror the sections; leaf: {"timestamp":ms} */
	int64_t version;
	int64_t timestamp;                   /* last accepted change (creation for 0) */
	size_t bytes;                        /* twin_doc_state_bytes, kept up to date */
};

enum twin_req {
	TWIN_REQ_GET,    /* empty, or {"clientToken":".."} */
	TWIN_REQ_UPDATE, /* {"state":{"desired":..,"reported":..},"version":N,"clientToken":".."} */
	TWIN_REQ_PATCH,  /* REST: {"desired":..,"version":N} */
};

/* A parsed request. desired / reported: NULL when absent, a cJSON null
 * when the whole section is cleared, else an object. */
struct twin_request {
	cJSON *root; /* owns everything below */
	const cJSON *desired, *reported;
	bool has_version;
	int64_t version;
	bool has_token;
	char token[TWIN_TOKEN_MAX + 1];
};

/* Largest payload looked at before parsing; beyond: 413. */
size_t twin_payload_cap(const struct twin_limits *lim);

/* Strict UTF-8 (no overlongs, surrogates, > U+10FFFF) and no NUL byte. */
bool twin_utf8_valid(const uint8_t *s, size_t len);

/*
 * Parses and validates p[0..len): 0, or 400 / 413 with msg. On failure
 * req->has_token still says whether a clientToken could be read (to echo).
 * The caller frees with twin_request_free either way.
 */
int twin_request_parse(const uint8_t *p, size_t len, enum twin_req kind,
		       const struct twin_limits *lim, struct twin_request *req, char *msg,
		       size_t cap);
void twin_request_free(struct twin_request *req);

/* An empty document (version 0). false: out of memory. */
bool twin_doc_init(struct twin_doc *d, int64_t now_ms);
bool twin_doc_copy(struct twin_doc *dst, const struct twin_doc *src);
void twin_doc_free(struct twin_doc *d);

/*
 * Applies req to d (merge, metadata, version + 1, timestamp = now_ms):
 * 0, 413 (state over max_state_bytes) or 500 (out of memory). d may be
 * half-changed on failure, so callers apply to a copy.
 */
int twin_doc_apply(struct twin_doc *d, const struct twin_request *req, int64_t now_ms,
		   const struct twin_limits *lim, char *msg, size_t cap);

/* Bytes of desired + reported serialized without spaces. */
size_t twin_doc_state_bytes(const struct twin_doc *d);

/* New trees (NULL: out of memory). delta: desired keys that differ from
 * reported, recursively; delta_meta: the desired metadata of those keys. */
cJSON *twin_doc_delta(const struct twin_doc *d);
cJSON *twin_doc_delta_meta(const struct twin_doc *d, const cJSON *delta);
/* The metadata of what a request wrote: its shape, each leaf stamped. */
cJSON *twin_request_meta(const cJSON *section, int64_t now_ms);

/* The document as GET returns it, with the delta (computed when NULL). */
cJSON *twin_doc_json(const struct twin_doc *d, const cJSON *delta);
/* {"state":{desired,reported},"metadata":{..},"version":N} (documents). */
cJSON *twin_doc_history_json(const struct twin_doc *d);

/* The stored form and back. load: false when text is not a document. */
char *twin_doc_store_text(const struct twin_doc *d);
bool twin_doc_load(struct twin_doc *d, const char *text, int64_t version);

#endif
