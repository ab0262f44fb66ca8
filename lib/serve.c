// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The source's side: answer an SCM_RIGHTS fallback request, and let a
 * successor pidfd_getfd from us under Yama.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

#include "fdh-internal.h"

/* How long a begun request may take to arrive, and a reply to be taken. */
#define SERVE_TIMEOUT_MS 5000

/*
 * Read exactly size bytes; 0 on an orderly end before the first byte.
 * Until a request begins (begun false, nothing read yet) wait as long as
 * it takes; from then on it must be complete by *deadline, which the
 * first byte sets.  Works on blocking and non-blocking sockets alike.
 */
static ssize_t read_full(int fd, void *buf, size_t size, uint64_t *deadline)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n;
		int r;

		r = fdh_poll_until(fd, POLLIN, *deadline);
		if (r < 0)
			return r;
		n = recv(fd, (char *)buf + done, size - done, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return done == 0 && !*deadline ? 0 : -EPROTO;
		if (!*deadline)
			*deadline = fdh_now_ms() + SERVE_TIMEOUT_MS;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int send_reply(int sockfd, int32_t status, uint32_t first,
		      const int *fds, uint32_t n)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDH_SCM_BATCH)];
		struct cmsghdr align;
	} control;
	struct fdh_wire_reply reply = { FDH_WIRE_MAGIC, status, first, n };
	struct iovec iov = { &reply, sizeof(reply) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	uint64_t deadline = fdh_now_ms() + SERVE_TIMEOUT_MS;
	ssize_t len;

	if (n) {
		struct cmsghdr *c;

		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	/* A puller that stops reading must not hold the source for ever. */
	for (;;) {
		int r;

		len = sendmsg(sockfd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (len >= 0 || (errno != EINTR && errno != EAGAIN))
			break;
		if (errno == EAGAIN) {
			r = fdh_poll_until(sockfd, POLLOUT, deadline);
			if (r < 0)
				return r;
		}
	}
	if (len < 0)
		return -errno;
	return len == (ssize_t)sizeof(reply) ? 0 : -EPROTO;
}

static bool allowed_fd(int fd, const int *allowed, size_t n_allowed)
{
	if (!allowed)
		return true;
	for (size_t i = 0; i < n_allowed; i++)
		if (allowed[i] == fd)
			return true;
	return false;
}

int fdh_serve_one(int sockfd, const int *allowed, size_t n_allowed)
{
	struct fdh_wire_request req;
	uint64_t deadline = 0;		/* none until a request begins */
	int32_t *numbers = NULL;
	ssize_t len;
	int r = 0;

	len = read_full(sockfd, &req, sizeof(req), &deadline);
	if (len <= 0)
		return len == 0 ? 0 : fdh_fail((int)len, -1,
					       "reading a fallback request: %s%s",
					       strerror((int)-len),
					       len == -ETIMEDOUT ? " (the puller began a request and stopped)" : "");
	if (req.magic != FDH_WIRE_MAGIC || req.n == 0 || req.n > FDH_PULL_MAX)
		return fdh_fail(-EPROTO, -1,
				"bad fallback request (magic %#x, %u fds)",
				req.magic, req.n);
	numbers = malloc(req.n * sizeof(*numbers));
	if (!numbers)
		return fdh_fail(-ENOMEM, -1, "out of memory");
	len = read_full(sockfd, numbers, req.n * sizeof(*numbers), &deadline);
	if (len != (ssize_t)(req.n * sizeof(*numbers))) {
		free(numbers);
		if (len == -ETIMEDOUT)
			return fdh_fail(-ETIMEDOUT, -1,
					"fallback request: %u fd numbers announced, not all sent within %d ms",
					req.n, SERVE_TIMEOUT_MS);
		return fdh_fail(len < 0 && len != -EPROTO ? (int)len : -EPROTO, -1,
				"truncated fallback request");
	}

	/* Refuse the whole set before sending any of it. */
	for (uint32_t i = 0; i < req.n; i++) {
		int err = 0;

		if (!allowed_fd(numbers[i], allowed, n_allowed))
			err = -EPERM;
		else if (numbers[i] < 0 || fcntl(numbers[i], F_GETFD) < 0)
			err = -EBADF;
		if (err) {
			int fd = numbers[i];

			FDH_PROBE2(serve, req.n, err);
			free(numbers);
			r = send_reply(sockfd, err, i, NULL, 0);
			return fdh_fail(r < 0 ? r : err, (int)i,
					"fallback request for fd %d refused: %s",
					fd, strerror(-err));
		}
	}
	for (uint32_t first = 0; first < req.n && r == 0;
	     first += FDH_SCM_BATCH) {
		uint32_t n = req.n - first < FDH_SCM_BATCH ?
			     req.n - first : FDH_SCM_BATCH;

		r = send_reply(sockfd, 0, first, numbers + first, n);
	}
	free(numbers);
	FDH_PROBE2(serve, req.n, r);
	if (r < 0)
		return fdh_fail(r, -1, "sending fds over SCM_RIGHTS: %s",
				strerror(-r));
	return (int)req.n;
}

int fdh_allow_successor(pid_t successor)
{
	unsigned long who = successor > 0 ? (unsigned long)successor :
					     (unsigned long)PR_SET_PTRACER_ANY;

	if (prctl(PR_SET_PTRACER, who, 0, 0, 0) == 0)
		return 0;
	/* Without Yama the call is unknown and nothing needs allowing. */
	if (errno == EINVAL)
		return 0;
	return fdh_fail(-errno, -1, "prctl(PR_SET_PTRACER, %d): %m", successor);
}
