// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Pull: take a set of fds out of the source, verify each, all or nothing.
 *
 * Ownership: until fdh_pull() returns 0 every fd it took is its own and
 * is closed on any failure (rollback); on success they all pass to the
 * caller at once (commit).  The source keeps its copies either way.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <linux/kcmp.h>

#include "fdh-internal.h"
#include "kind.h"

/* How long the fallback waits for each reply from a cooperating source. */
#define FALLBACK_TIMEOUT_MS 5000

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *label_of(const struct fdh_pull_entry *e)
{
	return e->label ? e->label : "";
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

static int check_arguments(const struct fdh_pull_entry *entries, size_t n,
			   const int *ret_fds)
{
	if (!entries || !ret_fds || n == 0 || n > FDH_PULL_MAX)
		return fdh_fail(-EINVAL, -1,
				"pull of %zu entries: needs 1..%d entries and an output array",
				n, FDH_PULL_MAX);
	for (size_t i = 0; i < n; i++)
		if (entries[i].remote_fd < 0)
			return fdh_fail(-EINVAL, (int)i,
					"entry %zu '%s': invalid remote fd %d",
					i, label_of(&entries[i]),
					entries[i].remote_fd);
	return 0;
}

/* Whether a verified fd's kind_id is known to equal expect.kind_id. */
static bool kind_id_verified(const struct fdh_identity *id)
{
	return fdh_kind_ops(id->kind)->compares & FDH_IDENTITY_KIND_ID;
}

/* qsort() has no context argument: what is being sorted, per thread. */
static _Thread_local struct {
	const struct fdh_pull_entry *entries;
	const int *fds;
	pid_t self;
} sort_ctx;

/* Order by what verification proved of the file: dev, ino, remote fd. */
static int compare_dev_ino(const void *pa, const void *pb)
{
	const struct fdh_pull_entry *a = &sort_ctx.entries[*(const size_t *)pa];
	const struct fdh_pull_entry *b = &sort_ctx.entries[*(const size_t *)pb];

	if (a->expect.dev != b->expect.dev)
		return a->expect.dev < b->expect.dev ? -1 : 1;
	if (a->expect.ino != b->expect.ino)
		return a->expect.ino < b->expect.ino ? -1 : 1;
	return a->remote_fd < b->remote_fd ? -1 : a->remote_fd > b->remote_fd;
}

static int compare_kind_id(const void *pa, const void *pb)
{
	uint64_t a = sort_ctx.entries[*(const size_t *)pa].expect.kind_id;
	uint64_t b = sort_ctx.entries[*(const size_t *)pb].expect.kind_id;

	return a < b ? -1 : a > b;
}

static int same_file_error(const struct fdh_pull_entry *entries, size_t a,
			   size_t b)
{
	if (a > b) {
		size_t t = a;

		a = b;
		b = t;
	}
	return fdh_fail(-EINVAL, (int)b,
			"entries %zu '%s' and %zu '%s' (remote fds %d and %d) are the same open file",
			a, label_of(&entries[a]), b, label_of(&entries[b]),
			entries[a].remote_fd, entries[b].remote_fd);
}

/*
 * kcmp's order of entries a and b: -1, 0 (one open file) or 1.  2 when
 * there is none: *ret_err is then -errno, or -EOPNOTSUPP where the
 * kernel gives no order (kcmp returns 3).
 */
#define KCMP_NO_ORDER 2
static int kcmp_order(size_t a, size_t b, int *ret_err)
{
	int r = fdh_sys_kcmp(sort_ctx.self, sort_ctx.self, KCMP_FILE,
			     (unsigned long)sort_ctx.fds[a],
			     (unsigned long)sort_ctx.fds[b]);

	switch (r) {
	case 0:
		return 0;
	case 1:
		return -1;
	case 2:
		return 1;
	default:
		*ret_err = r < 0 ? -errno : -EOPNOTSUPP;
		return KCMP_NO_ORDER;
	}
}

/*
 * No two of the k entries in group (equal identities, so possibly one
 * open file) are one open file.  Every pair counts, not only neighbours
 * in fd order: merge sort by kcmp's own order (kcmp orders open files
 * consistently for a boot; k log k calls), stopping at the first pair
 * found equal; then equal files would be adjacent, and the neighbours are
 * compared once more.  Our own merge sort, not qsort(): a comparison that
 * fails half way must not leave qsort() with an inconsistent order.
 * Where the kernel gives no order, every pair; kcmp refused altogether
 * proves nothing either way (see fdh_pull()).  scratch holds k entries.
 */
static int check_group(size_t *group, size_t k, size_t *scratch)
{
	int c = 0, err = 0;

	for (size_t width = 1; width < k && !err; width *= 2) {
		for (size_t lo = 0; lo < k && !err; lo += 2 * width) {
			size_t mid = lo + width < k ? lo + width : k;
			size_t hi = lo + 2 * width < k ? lo + 2 * width : k;
			size_t i = lo, j = mid, o = lo;

			while (i < mid && j < hi) {
				c = kcmp_order(group[i], group[j], &err);
				if (c == 0)
					return same_file_error(sort_ctx.entries,
							       group[i], group[j]);
				if (c == KCMP_NO_ORDER)
					break;
				scratch[o++] = c < 0 ? group[i++] : group[j++];
			}
			while (i < mid)
				scratch[o++] = group[i++];
			while (j < hi)
				scratch[o++] = group[j++];
		}
		if (!err)
			memcpy(group, scratch, k * sizeof(*group));
	}
	if (err == -EOPNOTSUPP) {
		for (size_t i = 0; i < k; i++)
			for (size_t j = i + 1; j < k; j++)
				if (kcmp_order(group[i], group[j], &err) == 0)
					return same_file_error(sort_ctx.entries,
							       group[i], group[j]);
		return 0;
	}
	if (err)
		return 0;
	for (size_t i = 1; i < k; i++)
		if (kcmp_order(group[i - 1], group[i], &err) == 0)
			return same_file_error(sort_ctx.entries, group[i - 1],
					       group[i]);
	return 0;
}

/*
 * No two entries may name one open file: the same number twice, or two
 * numbers that are dup()s of one description (say two "queues" that are
 * one TAP queue).  Called after every fd was verified, so its dev and ino
 * are the expected ones, and so is kind_id where kind_id_verified():
 * only entries equal in those can be one file.  Sort by (dev, ino), then
 * kcmp only inside runs of equals (split further by kind_id when every
 * entry of the run has its kind_id verified: eventfds share one inode):
 * n log n, and no kcmp at all for distinct memfds, eventfds or sockets.
 */
static int check_distinct(pid_t self, const struct fdh_pull_entry *entries,
			  size_t n, const int *fds)
{
	size_t *order, *scratch;
	int r = 0;

	order = malloc(2 * n * sizeof(*order));
	if (!order)
		return fdh_fail(-ENOMEM, -1, "out of memory");
	scratch = order + n;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	sort_ctx.entries = entries;
	sort_ctx.fds = fds;
	sort_ctx.self = self;
	qsort(order, n, sizeof(*order), compare_dev_ino);
	/* One number is one file: the same number twice sorts adjacent. */
	for (size_t i = 1; i < n && r == 0; i++)
		if (entries[order[i - 1]].remote_fd == entries[order[i]].remote_fd)
			r = fdh_fail(-EINVAL, (int)order[i],
				     "entries %zu and %zu both name remote fd %d",
				     order[i - 1], order[i],
				     entries[order[i]].remote_fd);
	for (size_t lo = 0, hi; lo < n && r == 0; lo = hi) {
		const struct fdh_identity *first = &entries[order[lo]].expect;
		bool ids_known = kind_id_verified(first);

		for (hi = lo + 1; hi < n; hi++) {
			const struct fdh_identity *id = &entries[order[hi]].expect;

			if (id->dev != first->dev || id->ino != first->ino)
				break;
			ids_known = ids_known && kind_id_verified(id);
		}
		if (hi - lo < 2)
			continue;
		if (!ids_known) {
			r = check_group(order + lo, hi - lo, scratch);
			continue;
		}
		qsort(order + lo, hi - lo, sizeof(*order), compare_kind_id);
		for (size_t a = lo, b; a < hi && r == 0; a = b) {
			for (b = a + 1; b < hi &&
			     entries[order[b]].expect.kind_id ==
			     entries[order[a]].expect.kind_id; b++)
				;
			if (b - a > 1)
				r = check_group(order + a, b - a, scratch);
		}
	}
	free(order);
	return r;
}

/*
 * Whether the identity, once fstat and the kind's own key match, names one
 * open file of the source and no other (the kind table says, with why:
 * lib/kind.c).
 */
static bool identity_pins_the_file(uint32_t kind)
{
	return fdh_kind_ops(kind)->pins_file;
}

/*
 * Prove that local fd is the file entry describes and the very open file
 * description the source holds at remote_fd.
 *
 * pidfd_getfd(pidfd, N) is itself that proof: the kernel hands over the
 * file at N in the fd table of the process the pidfd pins (a pidfd is
 * never recycled), at the moment of the call.  kcmp(KCMP_FILE) against N
 * afterwards asks the same question a few microseconds later; it adds
 * something only where the number could have been re-pointed at another
 * file with the same identity in between (a source that is not paused
 * and shuffles its TAP queues), i.e. where the identity does not pin the
 * file.  Everywhere else a re-pointed number is caught by the identity
 * itself, whether before or during the pull, so the kcmp is skipped: it
 * was most of a verified pull's cost (a ptrace check and two fd-table
 * lookups per fd).  Over the SCM_RIGHTS fallback the source chose what to
 * send, so every fd is compared with kcmp.
 *
 * kcmp refused by the kernel (-EPERM, -ENOSYS) leaves *kcmp_ok false,
 * nothing else.
 */
static int verify_one(pid_t self, int fdinfo_dir,
		      struct fdh_source_info *src, size_t i,
		      const struct fdh_pull_entry *e, int fd,
		      enum fdh_transport transport, bool *kcmp_ok)
{
	char why[160];
	int r;

	r = fdh_identity_check_fd(fdinfo_dir, fd, &e->expect, why,
				  sizeof(why));
	if (r < 0)
		return fdh_fail(-ESTALE, (int)i,
				"entry %zu '%s': fd %d of pid %d is not the file the manifest describes: %s",
				i, label_of(e), e->remote_fd, src->pid, why);

	if (transport == FDH_TRANSPORT_PIDFD &&
	    identity_pins_the_file(e->expect.kind)) {
		*kcmp_ok = true;
		return 0;
	}
	*kcmp_ok = false;
	r = fdh_sys_kcmp(self, src->pid, KCMP_FILE, (unsigned long)fd,
			 (unsigned long)e->remote_fd);
	if (r == 0) {
		*kcmp_ok = true;
		return 0;
	}
	if (r > 0)
		return fdh_fail(-ESTALE, (int)i,
				"entry %zu '%s': fd %d of pid %d was replaced by another file while being pulled",
				i, label_of(e), e->remote_fd, src->pid);
	r = -errno;
	if (r == -EPERM || r == -ENOSYS || r == -EACCES)
		return 0;
	if (r == -ESRCH)
		return fdh_fail(r, (int)i, "kcmp(pid %d): the source exited",
				src->pid);
	return fdh_fail(r, (int)i,
			"kcmp(pid %d, fd %d) for entry %zu '%s': %s",
			src->pid, e->remote_fd, i, label_of(e), strerror(-r));
}

static int getfd_error(const struct fdh_source_info *src, size_t i,
		       const struct fdh_pull_entry *e, int r)
{
	const char *hint;

	switch (r) {
	case -EBADF:
		hint = "no such fd in the source (closed?)";
		break;
	case -ESRCH:
		hint = "the source process has exited";
		break;
	case -EPERM:
		hint = "the puller needs ptrace permission over the source: same uid and a dumpable source (Yama ptrace_scope <= 1, or the source calls fdh_allow_successor()), or CAP_SYS_PTRACE; or give the source a cooperation socket for the SCM_RIGHTS fallback";
		break;
	case -ENOSYS:
		hint = "pidfd_getfd is missing (Linux < 5.6) or blocked by seccomp; give the source a cooperation socket for the SCM_RIGHTS fallback";
		break;
	case -EMFILE:
		hint = "this process is out of fd slots: raise RLIMIT_NOFILE";
		break;
	default:
		hint = strerror(-r);
	}
	return fdh_fail(r, (int)i, "pidfd_getfd(pid %d, fd %d '%s'): %s: %s",
			src->pid, e->remote_fd, label_of(e), strerror(-r),
			hint);
}

/*
 * Wait until sockfd is ready for events or the fallback's patience runs
 * out; a signal does not restart the clock.
 */
static int wait_ready(int sockfd, short events)
{
	return fdh_poll_until(sockfd, events,
			      fdh_now_ms() + FALLBACK_TIMEOUT_MS);
}

/*
 * Receive the reply for the batch that starts at entry first, its fds
 * into fds[first..).  Every fd that arrives is ours to close until the
 * reply is judged well-formed: a refusal carries none, a batch carries
 * exactly the count it announces, at least one (an empty batch would
 * never finish the pull), and continues where the last one ended.
 */
static int receive_batch(int sockfd, int *fds, size_t n_total, size_t first,
			 struct fdh_wire_reply *ret_reply)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDH_SCM_BATCH)];
		struct cmsghdr align;
	} control;
	struct fdh_wire_reply reply;
	struct iovec iov = { &reply, sizeof(reply) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof(control.buf),
	};
	int got_fds[FDH_SCM_BATCH];
	struct cmsghdr *c;
	size_t got = 0, excess = 0;
	ssize_t len;
	int r;

	do {
		r = wait_ready(sockfd, POLLIN);
		if (r < 0)
			return r;
		len = recvmsg(sockfd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (len < 0 && (errno == EINTR || errno == EAGAIN));
	if (len < 0)
		return -errno;

	/* Take ownership of whatever arrived before judging the message. */
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t j = 0; j < k; j++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
			if (got < FDH_SCM_BATCH) {
				got_fds[got++] = fd;
			} else {
				close(fd);
				excess++;
			}
		}
	}
	if (len == 0)
		r = -ECONNRESET;
	else if (len != (ssize_t)sizeof(reply) ||
		 reply.magic != FDH_WIRE_MAGIC ||
		 (msg.msg_flags & MSG_CTRUNC) || excess)
		r = -EPROTO;
	else if (reply.status < 0)
		/* A refusal: an errno, and nothing attached. */
		r = reply.status > -4096 && reply.n == 0 && got == 0 ?
		    0 : -EPROTO;
	else if (reply.status > 0 || reply.first != first ||
		 reply.n == 0 || reply.n > FDH_SCM_BATCH ||
		 reply.n > n_total - first || got != reply.n)
		r = -EPROTO;
	if (r < 0 || reply.status < 0) {
		for (size_t j = 0; j < got; j++)
			close(got_fds[j]);
		if (r < 0)
			return r;
	} else {
		memcpy(fds + first, got_fds, got * sizeof(int));
	}
	*ret_reply = reply;
	return 0;
}

/* The request in one buffer, sent whole: a signal or a short write
 * continues where it stopped. */
static int send_request(int sockfd, const struct fdh_pull_entry *entries,
			size_t n)
{
	struct fdh_wire_request req = { FDH_WIRE_MAGIC, (uint32_t)n };
	size_t size = sizeof(req) + n * sizeof(int32_t), done = 0;
	char *buf;
	int r = 0;

	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, &req, sizeof(req));
	for (size_t i = 0; i < n; i++) {
		int32_t fd = entries[i].remote_fd;

		memcpy(buf + sizeof(req) + i * sizeof(fd), &fd, sizeof(fd));
	}
	while (done < size) {
		ssize_t len = send(sockfd, buf + done, size - done,
				   MSG_NOSIGNAL | MSG_DONTWAIT);

		if (len >= 0) {
			done += (size_t)len;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			r = -errno;
			break;
		}
		r = wait_ready(sockfd, POLLOUT);
		if (r < 0)
			break;
	}
	free(buf);
	return r;
}

/* The source's cooperation: it sends the same set over SCM_RIGHTS. */
static int pull_scm_rights(const struct fdh_source_info *src,
			   const struct fdh_pull_entry *entries, size_t n,
			   int *fds)
{
	struct fdh_wire_reply reply;
	size_t done = 0;
	int r;

	r = send_request(src->sockfd, entries, n);
	if (r < 0)
		return fdh_fail(r, -1, "SCM_RIGHTS fallback: request to pid %d: %s",
				src->pid, strerror(-r));
	while (done < n) {
		r = receive_batch(src->sockfd, fds, n, done, &reply);
		if (r < 0)
			return fdh_fail(r, -1,
					"SCM_RIGHTS fallback: reply from pid %d: %s%s",
					src->pid, strerror(-r),
					r == -ETIMEDOUT ? " (is the source serving its cooperation socket?)" :
					r == -EPROTO ? " (a malformed reply: wrong size or magic, a batch out of order, empty or with another number of fds than it announces, or a refusal with fds attached)" : "");
		if (reply.status < 0) {
			size_t i = reply.first < n ? reply.first : 0;

			return fdh_fail(reply.status, (int)i,
					"SCM_RIGHTS fallback: pid %d refused entry %zu '%s' (fd %d): %s",
					src->pid, i, label_of(&entries[i]),
					entries[i].remote_fd,
					strerror(-reply.status));
		}
		done += reply.n;
	}
	return 0;
}

static int pull_pidfd(const struct fdh_source_info *src,
		      const struct fdh_pull_entry *entries, size_t n, int *fds)
{
	for (size_t i = 0; i < n; i++) {
		int fd = fdh_sys_pidfd_getfd(src->pidfd, entries[i].remote_fd, 0);
		int err = fd < 0 ? -errno : 0;

		FDH_PROBE4(pull_fd, i, entries[i].remote_fd, fd, err);
		if (fd < 0)
			return getfd_error(src, i, &entries[i], err);
		fds[i] = fd;
	}
	return 0;
}

int fdh_pull(struct fdh_source *source, const struct fdh_pull_entry *entries,
	     size_t n, int *ret_fds, struct fdh_pull_report *ret_report)
{
	struct fdh_pull_report report = { .transport = FDH_TRANSPORT_PIDFD };
	struct fdh_source_info src;
	uint64_t start = now_ns();
	pid_t self = getpid();	/* a real syscall since glibc 2.25: once */
	int *fds = NULL;
	int fdinfo_dir = -1;
	size_t n_eventfds = 0;
	int r;

	r = check_arguments(entries, n, ret_fds);
	if (r < 0)
		return r;
	r = fdh_source_get_info(source, &src);
	if (r < 0)
		return r;
	fds = malloc(n * sizeof(*fds));
	if (!fds)
		return fdh_fail(-ENOMEM, -1, "out of memory");
	for (size_t i = 0; i < n; i++)
		fds[i] = -1;

	FDH_PROBE2(pull_begin, src.pid, n);
	r = pull_pidfd(&src, entries, n, fds);
	if ((r == -EPERM || r == -ENOSYS) && src.sockfd >= 0) {
		FDH_PROBE2(fallback, src.pid, r);
		close_all(fds, n);
		report.transport = FDH_TRANSPORT_SCM_RIGHTS;
		report.fallback_reason = r;
		r = pull_scm_rights(&src, entries, n, fds);
	}
	/* eventfd-ids are read from fdinfo: past one eventfd, resolving
	 * /proc/self/fdinfo once beats walking it for each. */
	for (size_t i = 0; i < n; i++)
		n_eventfds += fdh_kind_ops(entries[i].expect.kind)->id_reads_fdinfo;
	if (r == 0 && n_eventfds > 1)
		fdinfo_dir = open("/proc/self/fdinfo",
				  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < n && r == 0; i++) {
		bool kcmp_ok = false;

		r = verify_one(self, fdinfo_dir, &src, i, &entries[i], fds[i],
			       report.transport, &kcmp_ok);
		FDH_PROBE3(verify, i, r, kcmp_ok);
		report.n_kcmp_verified += kcmp_ok;
	}
	if (fdinfo_dir >= 0)
		close(fdinfo_dir);
	if (r == 0)
		r = check_distinct(self, entries, n, fds);
	if (r < 0) {
		FDH_PROBE2(rollback, fdh_last_error()->entry, r);
		close_all(fds, n);
		free(fds);
		return r;
	}

	memcpy(ret_fds, fds, n * sizeof(*fds));
	free(fds);
	report.elapsed_ns = now_ns() - start;
	FDH_PROBE3(commit, src.pid, n, report.transport);
	if (ret_report)
		*ret_report = report;
	fdh_clear_error();
	return 0;
}
