/*
 * reply.h - the answer of a platform operation that the API (and MQTT
 * replies) pass on: an HTTP-style status and a JSON body.
 *
 * Every service operation that a REST route calls fills one. Errors use the
 * one stable shape of the API (docs/api.md):
 *   {"status":404,"error":"not_found","message":"no device 'pump-7'"}
 * where error is the short word for the status (bad_request, unauthorized,
 * forbidden, not_found, conflict, payload_too_large, too_many_requests,
 * internal, unavailable, unsupported_media_type, method_not_allowed).
 *
 * Ownership: body is malloc'd and owned by the reply; mote_reply_clear frees
 * it. A reply whose body could not be allocated has status 500 and body NULL
 * (the API then sends a fixed error text).
 */
#ifndef MOTE_BASE_REPLY_H
#define MOTE_BASE_REPLY_H

#include <stddef.h>

struct mote_reply {
	int status;   /* 200, 201, 204, 400, 401, 403, 404, 409, 413, 429, 500, 503 */
	char *body;   /* JSON text (NUL-terminated), malloc'd; NULL for 204 */
	const char *content_type; /* static; NULL means application/json */
};

/* Takes ownership of json (may be NULL: then status becomes 500). */
void mote_reply_json(struct mote_reply *r, int status, char *json);
/* Prints a cJSON tree into the reply and deletes the tree (NULL, or no
 * memory to print: 500). */
struct cJSON;
void mote_reply_cjson(struct mote_reply *r, int status, struct cJSON *o);
/* An error in the stable shape; message is printf-formatted. */
void mote_reply_error(struct mote_reply *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The short word for an HTTP status ("not_found"). */
const char *mote_reply_word(int status);
void mote_reply_clear(struct mote_reply *r);

#endif
