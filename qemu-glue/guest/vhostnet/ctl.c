// SPDX-License-Identifier: MIT
/*
 * ctl.c -- the control messages between the orchestrator and the roles
 * (one struct ctl per SOCK_SEQPACKET message), and sin_set().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "roles.h"

int ctl_send(int s, const struct ctl *m)
{
	return send(s, m, sizeof(*m), MSG_NOSIGNAL) == (ssize_t)sizeof(*m) ? 0 : -errno;
}

/* Receive one message within timeout_ms; -ETIMEDOUT, -EPIPE on EOF. */
int ctl_recv(int s, struct ctl *m, int timeout_ms)
{
	struct pollfd p = { .fd = s, .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);

	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	ssize_t n = recv(s, m, sizeof(*m), 0);
	if (n == 0)
		return -EPIPE;
	if (n != (ssize_t)sizeof(*m))
		return n < 0 ? -errno : -EPROTO;
	return 0;
}

int ctl_expect(int s, struct ctl *m, uint32_t cmd, int timeout_ms)
{
	int r = ctl_recv(s, m, timeout_ms);

	if (r)
		return r;
	return m->cmd == cmd ? 0 : -EPROTO;
}

void ctl_reply(int s, uint32_t cmd, int err, const char *fmt, ...)
{
	struct ctl m = { .cmd = cmd, .err = err, .pid = getpid() };
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(m.text, sizeof(m.text), fmt, ap);
		va_end(ap);
	}
	ctl_send(s, &m);
}


void sin_set(struct sockaddr *sa, const char *ip)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)sa;

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sin->sin_addr);
}
