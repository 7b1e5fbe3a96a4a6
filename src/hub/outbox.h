/*
 * outbox.h - publishes from any thread, delivered on the hub's loop thread.
 *
 * broker_publish must run on the broker's first loop; the platform's
 * pipeline thread and the rules' webhook thread are elsewhere. They append
 * to this bounded list and an eventfd wakes the loop, which drains it into
 * broker_publish. Beyond max_bytes a publish is dropped and counted: a stuck
 * loop must not grow memory without bound.
 *
 * Ownership: the outbox copies every message; the hub owns the outbox.
 */
#ifndef MOTE_HUB_OUTBOX_H
#define MOTE_HUB_OUTBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "broker/broker.h"
#include "net/loop.h"

struct outbox_msg;

struct outbox {
	pthread_mutex_t mu;
	struct outbox_msg *head, *tail;
	size_t bytes, max_bytes;
	uint64_t dropped;
	int efd;
	struct loop_io io;
	struct loop *loop;      /* borrowed, set by outbox_start */
	struct broker *broker;  /* borrowed */
};

enum mote_err outbox_init(struct outbox *o, size_t max_bytes);
/* From now on messages go to broker_publish on loop's thread. */
enum mote_err outbox_start(struct outbox *o, struct loop *loop, struct broker *b);
/* Stops delivering (loop thread); queued messages stay until outbox_destroy. */
void outbox_stop(struct outbox *o);
void outbox_destroy(struct outbox *o);
/* Any thread. false: dropped (full or out of memory). */
bool outbox_publish(struct outbox *o, const char *topic, const void *payload, size_t len,
		    uint8_t qos, bool retain);

#endif
