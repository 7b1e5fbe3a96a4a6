/* pipeline.h - the platform's private state and its thread (src/platform only). */
#ifndef MOTE_PLATFORM_PIPELINE_H
#define MOTE_PLATFORM_PIPELINE_H

#include <pthread.h>
#include <stdatomic.h>

#include "platform/platform.h"
#include "platform/queue.h"

struct platform {
	struct platform_config cfg;
	const struct mote_sink *sink;   /* borrowed */
	struct queue q;
	bool q_ready;
	pthread_t thread;
	bool thread_started;
	sqlite3 *db;                    /* DATA/mote.db, owned; pipeline thread only */
	struct registry *registry;
	struct twin_service *twins;
	struct rules *rules;
	struct insight *insight;
	struct tstore *store;
	struct telemetry_batch batch;   /* reused per message */
	/* Read by platform_get_stats from any thread. */
	_Atomic uint64_t inflight_since_ms; /* oldest message being handled, 0 = none */
	_Atomic uint64_t telemetry_messages, telemetry_points, telemetry_invalid;
	_Atomic uint64_t devices, devices_online, alloc_failed;
	/* Log lines that a flood could repeat: at most a few per second each. */
	struct log_budget {
		uint64_t window_ms;
		unsigned logged, held;
	} invalid_log, append_log;
};

void *pipeline_main(void *arg);
/* registry_removed_fn of the hub's registry. */
void pipeline_device_removed(void *ctx, const char *id);

#endif
