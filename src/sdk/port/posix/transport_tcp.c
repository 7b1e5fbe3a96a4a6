/*
 * transport_tcp.c - POSIX TCP transport and clock for the SDK client.
 *
 * Invariants:
 *   - The socket is non-blocking from creation, so connect(), send() and
 *     recv() never block; every wait is a poll() bounded by the caller's
 *     timeout.
 *   - recv returns MOTE_OK only with at least one byte, MOTE_ECLOSED on
 *     an orderly shutdown by the peer, as mote_client.h requires.
 *   - errno is saved in last_errno at each failure, before anything else
 *     can overwrite it, so the caller can print the real cause.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sdk/port/posix/transport_tcp.h"

static uint32_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

void mote_tcp_init(struct mote_tcp *t)
{
	t->fd = -1;
	t->last_errno = 0;
	t->gai_error = 0;
}

static int poll_ms(uint32_t ms)
{
	return ms > (uint32_t)INT32_MAX ? INT32_MAX : (int)ms;
}

/* Waits for fd to become ready for `events`: MOTE_OK, MOTE_ETIMEDOUT,
 * MOTE_EAGAIN (signal) or MOTE_EIO. */
static enum mote_err wait_fd(struct mote_tcp *t, short events, uint32_t timeout_ms)
{
	struct pollfd p = { .fd = t->fd, .events = events, .revents = 0 };
	int n = poll(&p, 1, poll_ms(timeout_ms));

	if (n < 0) {
		t->last_errno = errno;
		return errno == EINTR ? MOTE_EAGAIN : MOTE_EIO;
	}
	return n == 0 ? MOTE_ETIMEDOUT : MOTE_OK;
}

/* One connect attempt to one address within timeout_ms. */
static enum mote_err try_addr(struct mote_tcp *t, const struct addrinfo *ai, uint32_t timeout_ms)
{
	int fd, soerr = 0, one = 1;
	socklen_t len = sizeof soerr;
	uint32_t start = mono_ms();
	enum mote_err err = MOTE_EIO;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		t->last_errno = errno;
		return MOTE_EIO;
	}
	t->fd = fd;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		goto connected;
	if (errno != EINPROGRESS) {
		t->last_errno = errno;
		goto out;
	}
	for (;;) {
		uint32_t elapsed = mono_ms() - start;
		if (elapsed >= timeout_ms) {
			err = MOTE_ETIMEDOUT;
			goto out;
		}
		err = wait_fd(t, POLLOUT, timeout_ms - elapsed);
		if (err == MOTE_OK)
			break;
		if (err != MOTE_EAGAIN && err != MOTE_ETIMEDOUT)
			goto out;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0) {
		t->last_errno = soerr ? soerr : errno;
		err = MOTE_EIO;
		goto out;
	}
connected:
	/* MQTT packets are small and latency matters more than batching. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	t->last_errno = 0;
	return MOTE_OK;
out:
	close(fd);
	t->fd = -1;
	return err;
}

enum mote_err mote_tcp_connect(struct mote_tcp *t, const char *host, uint16_t port,
			       uint32_t timeout_ms)
{
	struct addrinfo hints, *res = NULL;
	char service[8];
	uint32_t start = mono_ms();
	enum mote_err err = MOTE_EIO;

	if (!host || t->fd >= 0)
		return MOTE_EINVAL;
	t->last_errno = 0;
	t->gai_error = 0;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(service, sizeof service, "%u", (unsigned)port);
	t->gai_error = getaddrinfo(host, service, &hints, &res);
	if (t->gai_error != 0) {
		t->last_errno = t->gai_error == EAI_SYSTEM ? errno : 0;
		return MOTE_ENOTFOUND;
	}
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		uint32_t elapsed = mono_ms() - start;
		if (elapsed >= timeout_ms) {
			err = MOTE_ETIMEDOUT;
			break;
		}
		err = try_addr(t, ai, timeout_ms - elapsed);
		if (err == MOTE_OK)
			break;
	}
	freeaddrinfo(res);
	return err;
}

void mote_tcp_close(struct mote_tcp *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

static enum mote_err tcp_send(void *ctx, const uint8_t *buf, size_t len, uint32_t timeout_ms,
			      size_t *sent)
{
	struct mote_tcp *t = ctx;
	uint32_t start = mono_ms();

	*sent = 0;
	if (t->fd < 0)
		return MOTE_ECLOSED;
	/* Full write: keep going until everything is out or time is up. */
	while (*sent < len) {
		ssize_t n = send(t->fd, buf + *sent, len - *sent, MSG_NOSIGNAL);
		if (n > 0) {
			*sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			t->last_errno = errno;
			return *sent ? MOTE_OK : (errno == EPIPE || errno == ECONNRESET)
							 ? MOTE_ECLOSED
							 : MOTE_EIO;
		}
		uint32_t elapsed = mono_ms() - start;
		if (elapsed >= timeout_ms)
			return *sent ? MOTE_OK : MOTE_ETIMEDOUT;
		enum mote_err err = wait_fd(t, POLLOUT, timeout_ms - elapsed);
		if (err == MOTE_EAGAIN && *sent == 0)
			return MOTE_EAGAIN;
		if (err == MOTE_EIO)
			return *sent ? MOTE_OK : MOTE_EIO;
	}
	return MOTE_OK;
}

static enum mote_err tcp_recv(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms,
			      size_t *got)
{
	struct mote_tcp *t = ctx;
	enum mote_err err;
	ssize_t n;

	*got = 0;
	if (t->fd < 0)
		return MOTE_ECLOSED;
	if (cap == 0)
		return MOTE_EINVAL;
	for (;;) {
		n = recv(t->fd, buf, cap, 0);
		if (n > 0) {
			*got = (size_t)n;
			return MOTE_OK;
		}
		if (n == 0)
			return MOTE_ECLOSED;
		if (errno == EINTR)
			return MOTE_EAGAIN;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			t->last_errno = errno;
			return errno == ECONNRESET ? MOTE_ECLOSED : MOTE_EIO;
		}
		if (timeout_ms == 0)
			return MOTE_ETIMEDOUT;
		err = wait_fd(t, POLLIN, timeout_ms);
		if (err != MOTE_OK)
			return err;
		/* Readable: read once more, without waiting again. */
		timeout_ms = 0;
	}
}

struct mote_transport mote_tcp_transport(struct mote_tcp *t)
{
	struct mote_transport tr = { .ctx = t, .send = tcp_send, .recv = tcp_recv };
	return tr;
}

static uint32_t clock_now(void *ctx)
{
	(void)ctx;
	return mono_ms();
}

struct mote_clock mote_posix_clock(void)
{
	struct mote_clock c = { .ctx = NULL, .now_ms = clock_now };
	return c;
}
