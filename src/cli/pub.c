/*
 * pub.c - `mote pub`: publish one message (-m, -f, -n, -s) or one message
 * per line of stdin (-l), like mosquitto_pub, over the device SDK client.
 *
 * Invariants:
 *   - QoS 1/2 messages are confirmed (PUBACK / PUBCOMP) before the next
 *     one is sent and before DISCONNECT, so exit status 0 means the server
 *     has every message.
 *   - With -l the client keeps serving keep-alive while it waits for
 *     input: stdin is polled with a timeout and the client processed in
 *     between, so a slow producer does not get the session dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client_opts.h"

#define ACK_TIMEOUT_MS 30000u
#define MAX_MESSAGE ((size_t)MQTT_MAX_REMAINING_LENGTH)

/*
 * Reads fd to its end into a malloc'd buffer (*out, never NULL on success;
 * the caller frees it). On failure *os_err is the errno to report.
 */
static enum mote_err read_all(int fd, uint8_t **out, size_t *len, int *os_err)
{
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	enum mote_err err = MOTE_OK;

	*os_err = 0;
	if (!buf) {
		*os_err = ENOMEM;
		return MOTE_ENOMEM;
	}
	for (;;) {
		ssize_t r;
		if (n == cap) {
			uint8_t *grown = cap >= MAX_MESSAGE ? NULL : realloc(buf, cap * 2);
			if (!grown) {
				*os_err = cap >= MAX_MESSAGE ? EFBIG : ENOMEM;
				err = cap >= MAX_MESSAGE ? MOTE_ETOOBIG : MOTE_ENOMEM;
				goto out;
			}
			buf = grown;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*os_err = errno;
			err = MOTE_EIO;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
out:
	if (err != MOTE_OK) {
		free(buf);
		return err;
	}
	*out = buf;
	*len = n;
	return MOTE_OK;
}

static int publish_one(struct client_session *s, const void *payload, size_t len)
{
	const struct client_opts *o = s->o;
	const struct mqtt_props *props = &o->props[CMD_PUBLISH].props;
	struct mote_publish pub = { .topic = o->topics[0], .payload = payload, .payload_len = len,
				    .qos = o->qos, .retain = o->retain, .props = props };
	uint8_t reason = 0;
	enum mote_err err = mote_client_publish(&s->c, &pub, &reason, ACK_TIMEOUT_MS);

	if (err == MOTE_EINVAL && o->qos > s->info.max_qos) {
		fprintf(stderr, "%s: the server accepts QoS up to %u: use -q %u\n", o->prog,
			s->info.max_qos, s->info.max_qos);
		return 1;
	}
	if (err == MOTE_EINVAL && o->retain && !s->info.retain_available) {
		fprintf(stderr, "%s: the server does not keep retained messages: drop -r\n", o->prog);
		return 1;
	}
	if (err == MOTE_EINVAL && MQTT_HAS(props, MQTT_PROP_TOPIC_ALIAS)) {
		fprintf(stderr, "%s: -D publish topic-alias %u is above the server's limit (%u)\n",
			o->prog, props->topic_alias, s->info.topic_alias_max);
		return 1;
	}
	if (err == MOTE_ETOOBIG) {
		fprintf(stderr, "%s: the message (%zu bytes) is larger than the server accepts "
				"(%u bytes per packet)\n",
			o->prog, len, s->info.max_packet_size);
		return 1;
	}
	if (err != MOTE_OK)
		return client_session_fail(s, "publishing", err);
	if (reason >= 0x80) {
		fprintf(stderr, "%s: the server refused the message: %s (0x%02x)%s%s\n", o->prog,
			cli_reason_name(reason), reason, s->reason_string[0] ? ": " : "",
			s->reason_string);
		return 1;
	}
	return 0;
}

/* -l: one message per line (without its '\n'); a last unterminated line
 * is sent too. Empty lines are sent as empty messages, as mosquitto_pub
 * does. */
static int publish_lines(struct client_session *s)
{
	size_t cap = 4096, len = 0, scanned = 0;
	char *buf = malloc(cap);
	bool eof = false;
	int status = 0;

	if (!buf) {
		fprintf(stderr, "%s: out of memory\n", s->o->prog);
		return 1;
	}
	while (!eof && status == 0) {
		/* The socket too: a PINGRESP or DISCONNECT is handled when it
		 * comes, not when the next line does. */
		struct pollfd p[2] = { { .fd = STDIN_FILENO, .events = POLLIN, .revents = 0 },
				       { .fd = s->tcp.fd, .events = POLLIN, .revents = 0 } };
		int n = poll(p, 2, 1000);
		enum mote_err err;

		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "%s: cannot wait for stdin: %s\n", s->o->prog, strerror(errno));
			status = 1;
			break;
		}
		if (n > 0 && p[0].revents) {
			ssize_t r;
			if (len == cap) {
				char *grown = cap >= MAX_MESSAGE ? NULL : realloc(buf, cap * 2);
				if (!grown) {
					fprintf(stderr, "%s: a line of stdin is too long\n", s->o->prog);
					status = 1;
					break;
				}
				buf = grown;
				cap *= 2;
			}
			r = read(STDIN_FILENO, buf + len, cap - len);
			if (r < 0 && errno != EINTR && errno != EAGAIN) {
				fprintf(stderr, "%s: cannot read stdin: %s\n", s->o->prog,
					strerror(errno));
				status = 1;
				break;
			}
			if (r == 0)
				eof = true;
			if (r > 0)
				len += (size_t)r;
			size_t start = 0;
			for (; scanned < len && status == 0; scanned++) {
				if (buf[scanned] != '\n')
					continue;
				status = publish_one(s, buf + start, scanned - start);
				start = scanned + 1;
			}
			memmove(buf, buf + start, len - start);
			len -= start;
			scanned -= start;
		}
		/* Keep-alive and any acks while stdin is quiet. */
		if (status == 0 && (err = mote_client_process(&s->c, 0)) != MOTE_OK)
			status = client_session_fail(s, "waiting for stdin", err);
	}
	if (status == 0 && len)
		status = publish_one(s, buf, len);
	free(buf);
	return status;
}

int cli_pub(int argc, char **argv)
{
	struct client_opts o;
	struct client_session s;
	char err[512];
	uint8_t *data = NULL;
	size_t len = 0;
	bool opened = false;
	int status = 0, e;

	if (client_opts_parse(&o, CLIENT_PUB, argc, argv, err, sizeof err) != MOTE_OK) {
		fprintf(stderr, "mote pub: %s\n", err);
		status = 2;
		goto out;
	}
	if (o.help) {
		client_opts_usage(CLIENT_PUB, stdout);
		goto out;
	}
	if (o.source == MSG_FILE) {
		int fd = open(o.message, O_RDONLY | O_CLOEXEC);
		e = errno;
		if (fd >= 0) {
			(void)read_all(fd, &data, &len, &e);
			close(fd);
		}
		if (fd < 0 || e) {
			fprintf(stderr, "mote pub: cannot read '%s': %s\n", o.message, strerror(e));
			status = 1;
			goto out;
		}
	} else if (o.source == MSG_STDIN_ALL) {
		if (read_all(STDIN_FILENO, &data, &len, &e) != MOTE_OK) {
			fprintf(stderr, "mote pub: cannot read stdin: %s\n", strerror(e));
			status = 1;
			goto out;
		}
	}

	opened = true;
	if ((status = client_session_open(&s, &o, NULL, NULL)) != 0)
		goto out;
	switch (o.source) {
	case MSG_ARG:
		status = publish_one(&s, o.message, strlen(o.message));
		break;
	case MSG_STDIN_LINES:
		status = publish_lines(&s);
		break;
	case MSG_NULL:
		status = publish_one(&s, NULL, 0);
		break;
	default:
		status = publish_one(&s, data, len);
		break;
	}
out:
	if (opened)
		client_session_close(&s);
	free(data);
	client_opts_free(&o);
	return status;
}
