/*
 * audit.h - the audit log: append-only JSON lines, each record chained to
 * the one before it by SHA-256. The face of src/audit/ (docs/security.md,
 * "Audit log").
 *
 * A record is one line, its members always in this order:
 *
 *   {"seq":N,"time":"2026-12-05T03:10:00.123Z","event":"NAME","fields":{...},
 *    "prev":"<64 hex>","hash":"<64 hex>"}
 *
 * `hash` is the SHA-256 of the line's bytes before `,"hash":` and `prev` is
 * the hash of the record before it (64 zeros for the first), so editing,
 * removing or reordering any record breaks the chain at that line.
 *
 * Threading: audit_append is safe from any number of threads and never
 * blocks on the disk: it formats the record's event part and queues it
 * (bounded; a full queue drops the record and counts it, and the next record
 * written carries the count as "dropped"). One writer thread per struct audit
 * takes the file's flock, re-reads the tail when another process appended
 * (the hub and `mote token ...` share one file), chains, writes and
 * fdatasyncs each batch. Event loop threads therefore never write or sync.
 */
#ifndef MOTE_AUDIT_H
#define MOTE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct audit;

/* Largest `fields` object accepted; a larger one is replaced by
 * {"truncated":true} so a record line always stays under 8 KiB. */
#define AUDIT_MAX_FIELDS 4096

/*
 * Opens (creating, 0600) the log at path and starts its writer thread.
 * MOTE_EIO (errno says why), MOTE_ENOMEM. Caller owns *out.
 */
enum mote_err audit_open(const char *path, struct audit **out);

/*
 * Queues a record. event: a short name ([a-z_]); fields_json: a JSON object
 * text such as {"client":"a"} (NULL: {}), not checked beyond its braces.
 * MOTE_EFULL when the queue is full (the record is dropped and counted),
 * MOTE_EINVAL for a bad event name or fields that are not an object.
 */
enum mote_err audit_append(struct audit *a, const char *event, const char *fields_json);

/* Waits until everything queued so far is written and synced; MOTE_EIO if a
 * write failed since the last flush. */
enum mote_err audit_flush(struct audit *a);

/* Flushes, stops the writer, closes. NULL is accepted. */
void audit_close(struct audit *a);

/*
 * Writes s as a JSON string (quotes included, control characters and
 * non-UTF-8 bytes escaped) into buf; returns the length it needs, as
 * snprintf does. Helper for callers building fields_json.
 */
size_t audit_json_str(char *buf, size_t cap, const void *s, size_t len);

struct audit_verify_result {
	uint64_t records;     /* records that verified */
	uint64_t bad_line;    /* first failing line (1-based), 0 when all verified */
	char last_hash[65];   /* hash of the last verified record */
	char why[200];        /* what is wrong at bad_line */
};

/*
 * Checks the whole chain of the log at path. MOTE_OK with r->bad_line 0:
 * intact. MOTE_EMALFORMED with r->bad_line and r->why: the first record
 * that is broken, edited, out of order, or preceded by removed records.
 * MOTE_EIO when the file cannot be read.
 */
enum mote_err audit_verify(const char *path, struct audit_verify_result *r);

#endif
