/* tcp.c - listening, accepting and the plain TCP stream; see tcp.h. */
#include "net/tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum mote_err net_addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len,
			     char *errbuf, size_t errcap)
{
	char host[256];
	const char *port;
	const char *colon;

	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (!end || end[1] != ':') {
			snprintf(errbuf, errcap, "'%s': expected [ipv6]:port", text);
			return MOTE_EINVAL;
		}
		colon = end + 1;
		size_t hl = (size_t)(end - text - 1);
		if (hl >= sizeof host)
			goto toolong;
		memcpy(host, text + 1, hl);
		host[hl] = '\0';
	} else {
		colon = strrchr(text, ':');
		if (!colon) {
			snprintf(errbuf, errcap, "'%s': expected host:port, e.g. 127.0.0.1:1883", text);
			return MOTE_EINVAL;
		}
		size_t hl = (size_t)(colon - text);
		if (hl >= sizeof host)
			goto toolong;
		memcpy(host, text, hl);
		host[hl] = '\0';
	}
	port = colon + 1;
	char *endp;
	long p = strtol(port, &endp, 10);
	if (*port == '\0' || *endp != '\0' || p < 0 || p > 65535) {
		snprintf(errbuf, errcap, "'%s': port must be a number from 0 to 65535", text);
		return MOTE_EINVAL;
	}

	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc != 0 || !res) {
		snprintf(errbuf, errcap, "'%s': cannot resolve host: %s", text, gai_strerror(rc));
		return MOTE_EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return MOTE_OK;
toolong:
	snprintf(errbuf, errcap, "'%.40s...': host name too long", text);
	return MOTE_EINVAL;
}

char *net_addr_format(const struct sockaddr *sa, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		port = ntohs(in->sin_port);
		snprintf(buf, cap, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		port = ntohs(in6->sin6_port);
		snprintf(buf, cap, "[%s]:%u", host, port);
	} else {
		snprintf(buf, cap, "unknown");
	}
	return buf;
}

void net_peer_from(const struct sockaddr *sa, struct net_peer *out)
{
	memset(out, 0, sizeof *out);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		out->family = AF_INET;
		out->port = ntohs(in->sin_port);
		memcpy(out->ip, &in->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		out->family = AF_INET6;
		out->port = ntohs(in6->sin6_port);
		memcpy(out->ip, &in6->sin6_addr, 16);
	}
}

char *net_peer_format(const struct net_peer *p, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (p->family == AF_INET) {
		inet_ntop(AF_INET, p->ip, host, sizeof host);
		snprintf(buf, cap, "%s:%u", host, (unsigned)p->port);
	} else if (p->family == AF_INET6) {
		inet_ntop(AF_INET6, p->ip, host, sizeof host);
		snprintf(buf, cap, "[%s]:%u", host, (unsigned)p->port);
	} else {
		snprintf(buf, cap, "unknown");
	}
	return buf;
}

enum mote_err net_listen(const struct sockaddr *sa, socklen_t len, int backlog, int *fd)
{
	int s = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return MOTE_EIO;
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(s, sa, len) != 0 || listen(s, backlog) != 0) {
		int e = errno;
		close(s);
		errno = e;
		return MOTE_EIO;
	}
	*fd = s;
	return MOTE_OK;
}

enum mote_err net_accept(int lfd, int *fd, struct sockaddr_storage *peer, socklen_t *plen)
{
	*plen = sizeof *peer;
	int s = accept4(lfd, (struct sockaddr *)peer, plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (s < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
		    errno == ECONNABORTED)
			return MOTE_EAGAIN;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			return MOTE_EFULL;
		return MOTE_EIO;
	}
	int one = 1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	*fd = s;
	return MOTE_OK;
}

static ssize_t tcp_read(struct net_stream *s, void *buf, size_t len)
{
	return read(s->fd, buf, len);
}

static ssize_t tcp_writev(struct net_stream *s, const struct iovec *iov, int iovcnt)
{
	return writev(s->fd, iov, iovcnt);
}

static void tcp_close(struct net_stream *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static const struct net_stream_ops tcp_ops = { .read = tcp_read, .writev = tcp_writev,
					       .close = tcp_close };

void net_stream_tcp(struct net_stream *s, int fd)
{
	*s = (struct net_stream){ .ops = &tcp_ops, .fd = fd };
}
