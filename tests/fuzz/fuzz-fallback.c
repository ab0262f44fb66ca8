// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: both ends of the SCM_RIGHTS fallback on any bytes.
 * The first byte picks the end:
 *   even: the puller.  The rest is a list of replies, 17 bytes each (a
 *         struct fdh_wire_reply and how many fds, 0..4, to attach), that
 *         a "source" sends before fdh_pull() of three memfds reads them;
 *   odd:  the source.  The rest is the request fdh_serve_one() reads,
 *         allowing our three memfds, or (bit 1 set) any open fd.
 * Whatever the bytes, the call must return (the sending end is shut down
 * after the input, so nothing waits), give a result in range, and leave
 * no fd behind; anything else aborts.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "fdh-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_ENTRIES 3
#define REPLY_RECORD (sizeof(struct fdh_wire_reply) + 1)

static struct fdh_pull_entry entries[N_ENTRIES];
static int allowed[N_ENTRIES];
static bool ready;

static int count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!dir)
		abort();
	while ((de = readdir(dir)))
		n += de->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* Three memfds of ours are the source's fds; pidfd_getfd is refused so
 * every pull takes the fallback. */
static void setup(void)
{
	scmp_filter_ctx ctx;

	for (int i = 0; i < N_ENTRIES; i++) {
		allowed[i] = memfd_create("fuzz", MFD_CLOEXEC);
		if (allowed[i] < 0)
			abort();
		entries[i].remote_fd = allowed[i];
		entries[i].label = "fuzz";
		if (fdh_identity_of_fd(allowed[i], &entries[i].expect) < 0)
			abort();
	}
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
				     SCMP_SYS(pidfd_getfd), 0) < 0 ||
	    seccomp_load(ctx) < 0)
		abort();
	seccomp_release(ctx);
	ready = true;
}

/* Send one crafted reply; false once the socket takes no more. */
static bool send_reply(int sock, const uint8_t *record)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} control;
	struct fdh_wire_reply reply;
	struct iovec iov = { &reply, sizeof(reply) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	unsigned int n = record[sizeof(reply)] % 5;

	memcpy(&reply, record, sizeof(reply));
	if (n) {
		struct cmsghdr *c;
		int fds[4] = { allowed[0], allowed[1], allowed[2], allowed[0] };

		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) ==
	       (ssize_t)sizeof(reply);
}

/* Read and close whatever is queued on sock, fds included. */
static void drain(int sock)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDH_SCM_BATCH)];
		struct cmsghdr align;
	} control;
	char buf[4096];

	for (;;) {
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr msg = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = control.buf,
			.msg_controllen = sizeof(control.buf),
		};
		struct cmsghdr *c;

		if (recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
			return;
		for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t j = 0; j < k; j++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + j * sizeof(int),
				       sizeof(int));
				close(fd);
			}
		}
	}
}

static void fuzz_puller(const uint8_t *data, size_t size)
{
	struct fdh_source *src;
	int sv[2], fds[N_ENTRIES], r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	for (size_t off = 0; off + REPLY_RECORD <= size; off += REPLY_RECORD)
		if (!send_reply(sv[1], data + off))
			break;
	shutdown(sv[1], SHUT_WR);
	if (fdh_source_open_pid(getpid(), 0, &src) < 0 ||
	    fdh_source_set_socket(src, sv[0]) < 0)
		abort();
	r = fdh_pull(src, entries, N_ENTRIES, fds, NULL);
	if (r == 0) {
		for (int i = 0; i < N_ENTRIES; i++)
			close(fds[i]);
	} else if (r < -4095) {
		abort();
	}
	fdh_source_free(src);
	close(sv[0]);
	close(sv[1]);
}

static void fuzz_source(const uint8_t *data, size_t size, bool any_fd)
{
	int sv[2], r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (size && send(sv[0], data, size, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		abort();
	shutdown(sv[0], SHUT_WR);
	r = fdh_serve_one(sv[1], any_fd ? NULL : allowed, N_ENTRIES);
	if (r > FDH_PULL_MAX || r < -4095)
		abort();
	drain(sv[0]);
	close(sv[0]);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int baseline;

	if (!ready)
		setup();
	if (size == 0)
		return 0;
	baseline = count_fds();
	if (data[0] & 1)
		fuzz_source(data + 1, size - 1, data[0] & 2);
	else
		fuzz_puller(data + 1, size - 1);
	if (count_fds() != baseline)
		abort();	/* an fd leaked */
	return 0;
}
