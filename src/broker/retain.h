/*
 * retain.h - the retained-message store (private to src/broker/).
 *
 * A trie keyed by topic level holding at most one message per topic name.
 * Setting a message with an empty payload deletes the topic's message.
 * Lookup by filter walks only the branches the filter can match and applies
 * the '$' rule.
 *
 * Ownership: the store holds one reference (msg_ref) on each stored message
 * and drops it on replace, delete or retain_free. Messages passed to the
 * callback are borrowed for the duration of the call (take a reference to
 * keep one).
 *
 * Threading: single-threaded, owned by the broker's loop thread.
 */
#ifndef MOTE_BROKER_RETAIN_H
#define MOTE_BROKER_RETAIN_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "broker/msg.h"

struct retain;

struct retain *retain_new(void); /* NULL on allocation failure */
void retain_free(struct retain *r);

/*
 * Stores m under its topic, replacing any earlier message; an empty payload
 * deletes instead. MOTE_ENOMEM leaves the store unchanged.
 */
enum mote_err retain_set(struct retain *r, struct msg *m);

/*
 * Calls fn for each stored message whose topic matches `filter` (a valid
 * topic filter, not a $share one). Messages found expired at now_ms are
 * removed instead of reported; the only allocation is shrinking a child
 * table after such removals, and its failure is harmless. fn must not
 * modify the store nor call retain_match again.
 */
typedef void (*retain_fn)(void *ctx, struct msg *m);
void retain_match(struct retain *r, const uint8_t *filter, size_t len, uint64_t now_ms,
		  retain_fn fn, void *ctx);

size_t retain_count(const struct retain *r);
/* Total payload bytes held. */
size_t retain_bytes(const struct retain *r);
/* Number of trie nodes below the root (introspection: tests, metrics). */
size_t retain_node_count(const struct retain *r);

#endif
