// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * AF_UNIX socket details by inode, from NETLINK_SOCK_DIAG (unix_diag).
 *
 * fdinfo says nothing about a socket beyond its inode; sock_diag's exact
 * lookup gives type, state, bound name and the peer's inode, which is how
 * two ends of a socketpair are matched up (ss -x does the same, by dump).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#include "sockdiag.h"

#define DIAG_SEQ 1

static int diag_socket(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	return fd < 0 ? -errno : fd;
}

struct netns_job {
	int netns_fd;
	int result;		/* the netlink socket, or -errno */
};

/*
 * A netlink socket belongs to the namespace of the thread that creates
 * it, and setns(CLONE_NEWNET) moves only the calling thread: a short
 * helper thread enters the namespace, makes the socket and ends, so the
 * caller's threads never change namespace.
 */
static void *netns_socket_thread(void *arg)
{
	struct netns_job *job = arg;

	if (setns(job->netns_fd, CLONE_NEWNET) < 0)
		job->result = -errno;
	else
		job->result = diag_socket();
	return NULL;
}

static int diag_socket_in(int netns_fd)
{
	struct netns_job job = { .netns_fd = netns_fd, .result = -EIO };
	sigset_t all, saved;
	pthread_t thread;
	int r;

	/* The helper must not take the caller's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	r = pthread_create(&thread, NULL, netns_socket_thread, &job);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (r != 0)
		return -r;
	pthread_join(thread, NULL);
	return job.result;
}

static void copy_name(char *dst, size_t size, const char *name, size_t len)
{
	size_t at = 0;

	/* Abstract names start with a NUL; show them as ss and lsfd do. */
	if (len > 0 && name[0] == '\0') {
		dst[at++] = '@';
		name++;
		len--;
	}
	while (len > 0 && *name && at + 1 < size) {
		dst[at++] = *name++;
		len--;
	}
	dst[at] = '\0';
}

static int parse_reply(const struct nlmsghdr *h, uint32_t ino,
		       struct fdh_unix_diag *ret)
{
	const struct unix_diag_msg *msg = NLMSG_DATA(h);
	struct fdh_unix_diag d = { 0 };
	const struct rtattr *rta;
	int len;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*msg)) ||
	    msg->udiag_family != AF_UNIX || msg->udiag_ino != ino)
		return -EPROTO;
	d.type = msg->udiag_type;
	d.state = msg->udiag_state;
	len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*msg)));
	rta = (const struct rtattr *)((const char *)msg +
				      NLMSG_ALIGN(sizeof(*msg)));
	/* Attributes we did not ask for, or do not know, are skipped. */
	for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
		uint32_t peer;

		switch (rta->rta_type) {
		case UNIX_DIAG_NAME:
			copy_name(d.path, sizeof(d.path), RTA_DATA(rta),
				  RTA_PAYLOAD(rta));
			break;
		case UNIX_DIAG_PEER:
			if (RTA_PAYLOAD(rta) < sizeof(peer))
				return -EPROTO;
			memcpy(&peer, RTA_DATA(rta), sizeof(peer));
			d.peer_ino = peer;
			break;
		}
	}
	*ret = d;
	return 0;
}

static int diag_query(int nl, uint32_t ino, struct fdh_unix_diag *ret)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} request = {
		.nlh = {
			.nlmsg_len = sizeof(request),
			.nlmsg_type = SOCK_DIAG_BY_FAMILY,
			/* No NLM_F_DUMP: the exact lookup by udiag_ino. */
			.nlmsg_flags = NLM_F_REQUEST,
			.nlmsg_seq = DIAG_SEQ,
		},
		.req = {
			.sdiag_family = AF_UNIX,
			.udiag_states = ~0u,
			.udiag_ino = ino,
			.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER,
			.udiag_cookie = { INET_DIAG_NOCOOKIE,
					  INET_DIAG_NOCOOKIE },
		},
	};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	union {
		struct nlmsghdr align;
		char buf[8192];
	} reply;
	const struct nlmsghdr *h;
	ssize_t n;

	if (sendto(nl, &request, sizeof(request), 0,
		   (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	/* The kernel answers within sendto(): the reply is already queued,
	 * so never wait for one that will not come. */
	do
		n = recv(nl, reply.buf, sizeof(reply.buf), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -EPROTO : -errno;

	/* A fresh socket with one request in flight: the first message is
	 * the answer, an exact lookup is never multipart. */
	h = &reply.align;
	if ((size_t)n < sizeof(*h) || h->nlmsg_len < sizeof(*h) ||
	    h->nlmsg_len > (size_t)n || h->nlmsg_seq != DIAG_SEQ)
		return -EPROTO;
	switch (h->nlmsg_type) {
	case NLMSG_ERROR: {
		const struct nlmsgerr *err = NLMSG_DATA(h);

		if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*err)))
			return -EPROTO;
		return err->error < 0 ? err->error : -EPROTO;
	}
	case NLMSG_DONE:
		return -ENOENT;
	case SOCK_DIAG_BY_FAMILY:
		return parse_reply(h, ino, ret);
	}
	return -EPROTO;
}

int fdh_unix_diag(int netns_fd, uint64_t ino, struct fdh_unix_diag *ret)
{
	int nl, r;

	/* udiag_ino is 32 bits; sockfs inodes come from get_next_ino(). */
	if (ino == 0 || ino > UINT32_MAX)
		return -ENOENT;
	nl = netns_fd < 0 ? diag_socket() : diag_socket_in(netns_fd);
	if (nl < 0)
		return nl;
	r = diag_query(nl, (uint32_t)ino, ret);
	close(nl);
	return r;
}
