/*
 * sub.c - `mote sub`: subscribe to one or more filters and print each
 * message, like mosquitto_sub (-v "topic payload", -N no newline, -C
 * count, -W timeout, -R skip retained).
 *
 * Invariants:
 *   - SIGINT / SIGTERM only set a flag (handlers installed without
 *     SA_RESTART, so a blocked poll() returns at once); the loop then sends
 *     DISCONNECT and exits 0. Nothing else runs in signal context.
 *   - After the -C'th message nothing more is printed; incoming QoS 2
 *     exchanges still open are finished (bounded wait) before DISCONNECT,
 *     so the server does not keep them half-done.
 *   - Each message is flushed as it is printed: the output is often a
 *     pipe read by a script waiting for that line.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "cli/client_opts.h"

#define SUBACK_TIMEOUT_MS 10000u
#define DRAIN_MS 2000u
#define TICK_MS 500u
#define EXIT_TIMED_OUT 27 /* what mosquitto_sub returns for -W */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

struct sub_state {
	unsigned long got;
	bool done;
};

static void on_message(struct client_session *s, const struct mqtt_publish *p)
{
	const struct client_opts *o = s->o;
	struct sub_state *st = s->user;

	if (st->done || (o->skip_retained && p->retain))
		return;
	if (o->verbose) {
		fwrite(p->topic.p, 1, p->topic.len, stdout);
		fputc(' ', stdout);
	}
	if (p->payload.len)
		fwrite(p->payload.p, 1, p->payload.len, stdout);
	if (!o->no_newline)
		fputc('\n', stdout);
	fflush(stdout);
	if (o->count && ++st->got >= o->count)
		st->done = true;
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: interrupt poll() */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* Subscribes to every -t; returns the exit status (0 if any was granted). */
static int subscribe_all(struct client_session *s)
{
	const struct client_opts *o = s->o;
	struct mqtt_sub_entry *subs = calloc(o->ntopics, sizeof *subs);
	uint8_t *reasons = calloc(o->ntopics, 1);
	size_t refused = 0;
	int status = 0;
	enum mote_err err;

	if (!subs || !reasons) {
		fprintf(stderr, "%s: out of memory\n", o->prog);
		status = 1;
		goto out;
	}
	for (size_t i = 0; i < o->ntopics; i++) {
		subs[i].filter.p = (const uint8_t *)o->topics[i];
		subs[i].filter.len = (uint16_t)strlen(o->topics[i]);
		subs[i].opts.qos = o->qos;
	}
	err = mote_client_subscribe(&s->c, subs, o->ntopics, &o->props[CMD_SUBSCRIBE].props,
				    reasons, SUBACK_TIMEOUT_MS);
	if (err != MOTE_OK) {
		status = client_session_fail(s, "subscribing", err);
		goto out;
	}
	for (size_t i = 0; i < o->ntopics; i++) {
		if (reasons[i] < 0x80)
			continue;
		refused++;
		fprintf(stderr, "%s: subscription to '%s' refused: %s (0x%02x)\n", o->prog,
			o->topics[i], cli_reason_name(reasons[i]), reasons[i]);
	}
	if (refused == o->ntopics) {
		fprintf(stderr, "%s: every subscription was refused: check the filters and the "
				"server's access rules\n", o->prog);
		status = 1;
	}
out:
	free(subs);
	free(reasons);
	return status;
}

/* Receives until -C, -W or a signal; returns the exit status. */
static int receive(struct client_session *s, struct sub_state *st)
{
	const struct client_opts *o = s->o;
	uint64_t start = mote_mono_ms();
	uint64_t limit = (uint64_t)o->timeout_s * 1000u;

	while (!stop_signal && !st->done) {
		uint64_t elapsed = mote_mono_ms() - start;
		uint32_t wait = TICK_MS;
		enum mote_err err;

		if (limit && elapsed >= limit) {
			fprintf(stderr, "Timed out\n");
			return EXIT_TIMED_OUT;
		}
		if (limit && limit - elapsed < wait)
			wait = (uint32_t)(limit - elapsed);
		err = mote_client_process(&s->c, wait);
		if (err != MOTE_OK)
			return client_session_fail(s, "waiting for messages", err);
	}
	if (st->done) {
		uint64_t t0 = mote_mono_ms();
		while (mote_client_inflight(&s->c) && mote_mono_ms() - t0 < DRAIN_MS && !stop_signal)
			if (mote_client_process(&s->c, 100) != MOTE_OK)
				break;
	}
	return 0;
}

int cli_sub(int argc, char **argv)
{
	struct client_opts o;
	struct client_session s;
	struct sub_state st = { 0, false };
	char err[512];
	bool opened = false;
	int status = 0;

	if (client_opts_parse(&o, CLIENT_SUB, argc, argv, err, sizeof err) != MOTE_OK) {
		fprintf(stderr, "mote sub: %s\n", err);
		status = 2;
		goto out;
	}
	if (o.help) {
		client_opts_usage(CLIENT_SUB, stdout);
		goto out;
	}
	catch_signals();
	opened = true;
	if ((status = client_session_open(&s, &o, on_message, &st)) != 0)
		goto out;
	if ((status = subscribe_all(&s)) != 0)
		goto out;
	status = receive(&s, &st);
out:
	if (opened)
		client_session_close(&s);
	client_opts_free(&o);
	return status;
}
