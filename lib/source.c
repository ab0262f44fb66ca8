// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The source handle: a pidfd on the process we take fds from, plus what
 * proves it is the process we meant (pid, start time, uid, comm).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "fdh-internal.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77		/* Linux 6.5 */
#endif

struct fdh_source {
	pid_t pid;
	int pidfd;
	int sockfd;
	uid_t uid;
	uint64_t start_time;
	char comm[16];
};

/*
 * Alive check through the pidfd, so that what we read from /proc/PID
 * after pidfd_open() is known to belong to the pidfd's process: a pid is
 * not reused before its process is reaped.  -EPERM still means alive.
 */
static int pidfd_alive(int pidfd)
{
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0 ||
	    errno == EPERM)
		return 0;
	return -errno;
}

/* The pid a pidfd refers to, from its fdinfo "Pid:" (-1 once it died). */
static int pidfd_pid(int pidfd, pid_t *ret_pid)
{
	char text[512];
	const char *v;
	int r;

	r = fdh_fdinfo_read(0, pidfd, text, sizeof(text));
	if (r < 0)
		return r;
	v = fdh_fdinfo_get(text, "Pid");
	if (!v)
		return -EBADF;		/* not a pidfd */
	*ret_pid = (pid_t)strtol(v, NULL, 10);
	return *ret_pid > 0 ? 0 : -ESRCH;
}

/* Fill s from /proc after s->pid and s->pidfd are set. */
static int source_describe(struct fdh_source *s, uint64_t expect_start_time)
{
	int r;

	r = fdh_proc_stat(s->pid, &s->start_time, &s->uid, s->comm);
	if (r < 0)
		return fdh_fail(r, -1, "reading /proc/%d/stat: %s", s->pid,
				strerror(-r));
	r = pidfd_alive(s->pidfd);
	if (r < 0)
		return fdh_fail(-ESRCH, -1,
				"pid %d exited while being opened", s->pid);
	if (expect_start_time && s->start_time != expect_start_time)
		return fdh_fail(-ESRCH, -1,
				"pid %d is another process than expected (start time %llu, expected %llu): the source exited and its pid was reused",
				s->pid, (unsigned long long)s->start_time,
				(unsigned long long)expect_start_time);
	return 0;
}

static struct fdh_source *source_alloc(void)
{
	struct fdh_source *s = calloc(1, sizeof(*s));

	if (s) {
		s->pidfd = -1;
		s->sockfd = -1;
	}
	return s;
}

void fdh_source_free(struct fdh_source *s)
{
	if (!s)
		return;
	if (s->pidfd >= 0)
		close(s->pidfd);
	if (s->sockfd >= 0)
		close(s->sockfd);
	free(s);
}

static int source_finish(struct fdh_source *s, uint64_t expect_start_time,
			 struct fdh_source **ret_source)
{
	int r = source_describe(s, expect_start_time);

	if (r < 0) {
		fdh_source_free(s);
		return r;
	}
	FDH_PROBE3(source_opened, s->pid, s->pidfd, s->sockfd);
	fdh_clear_error();
	*ret_source = s;
	return 0;
}

int fdh_source_open_pid(pid_t pid, uint64_t expect_start_time,
			struct fdh_source **ret_source)
{
	struct fdh_source *s;

	if (pid <= 0 || !ret_source)
		return fdh_fail(-EINVAL, -1, "invalid pid %d", pid);
	s = source_alloc();
	if (!s)
		return fdh_fail(-ENOMEM, -1, "out of memory");
	s->pid = pid;
	s->pidfd = fdh_sys_pidfd_open(pid, 0);
	if (s->pidfd < 0) {
		int e = -errno;

		fdh_source_free(s);
		if (e == -ENOSYS)
			return fdh_fail(e, -1, "pidfd_open(%d): not supported by this kernel (needs Linux 5.3) or blocked by seccomp", pid);
		return fdh_fail(e, -1, "pidfd_open(%d): %s%s", pid,
				strerror(-e),
				e == -ESRCH ? ": no such process" : "");
	}
	return source_finish(s, expect_start_time, ret_source);
}

/*
 * The manifest's source, pinned by everything the manifest recorded: boot
 * id, pid and start time (fdh_source_open_pid), uid.  The one place that
 * compares a manifest's source with a live process.
 */
int fdh_source_open_manifest(const struct fdh_manifest *m,
			     struct fdh_source **ret_source)
{
	char boot_id[sizeof(m->source.boot_id)];
	struct fdh_source *s;
	int r;

	if (!m || !ret_source)
		return fdh_fail(-EINVAL, -1, "open_manifest: manifest or ret_source is NULL");
	r = fdh_manifest_validate_source(&m->source);
	if (r < 0)
		return r;
	r = fdh_read_boot_id(boot_id);
	if (r < 0)
		return r;
	if (strcmp(boot_id, m->source.boot_id) != 0)
		return fdh_fail(-ESRCH, -1,
				"the manifest of pid %d was made in another boot (boot id %s, now %s): its process is gone",
				m->source.pid, m->source.boot_id, boot_id);
	r = fdh_source_open_pid(m->source.pid, m->source.start_time, &s);
	if (r < 0)
		return r;
	if (s->uid != m->source.uid) {
		r = fdh_fail(-ESTALE, -1,
			     "pid %d runs as uid %u, the manifest says uid %u: its credentials changed after the manifest was made; make a new one",
			     s->pid, (unsigned int)s->uid, m->source.uid);
		fdh_source_free(s);
		return r;
	}
	*ret_source = s;
	return 0;
}

int fdh_source_open_pidfd(int pidfd, struct fdh_source **ret_source)
{
	struct fdh_source *s;
	int r;

	if (pidfd < 0 || !ret_source)
		return fdh_fail(-EBADF, -1, "invalid pidfd %d", pidfd);
	s = source_alloc();
	if (!s)
		return fdh_fail(-ENOMEM, -1, "out of memory");
	r = pidfd_pid(pidfd, &s->pid);
	if (r < 0) {
		fdh_source_free(s);
		return fdh_fail(r, -1, "fd %d: %s", pidfd,
				r == -ESRCH ? "the process has exited" :
				"not a pidfd");
	}
	s->pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
	if (s->pidfd < 0) {
		r = -errno;
		fdh_source_free(s);
		return fdh_fail(r, -1, "dup of pidfd %d: %s", pidfd, strerror(-r));
	}
	return source_finish(s, 0, ret_source);
}

static uint64_t boottime_ticks(void)
{
	struct timespec ts;
	long hz = sysconf(_SC_CLK_TCK);

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * (uint64_t)hz +
	       (uint64_t)ts.tv_nsec / (1000000000ull / (uint64_t)hz);
}

/*
 * Before SO_PEERPIDFD (Linux 6.5): the peer's pid from SO_PEERCRED, then
 * pidfd_open().  The pid may have been recycled since connect(); a
 * process that started after this call began, or runs as another uid,
 * cannot be the peer.
 */
static int peer_by_cred(int sockfd, struct fdh_source *s)
{
	uint64_t now = boottime_ticks(), start;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uid_t uid;

	if (getsockopt(sockfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return fdh_fail(-errno, -1, "getsockopt(SO_PEERCRED) on fd %d: %m",
				sockfd);
	s->pid = cred.pid;
	s->pidfd = fdh_sys_pidfd_open(cred.pid, 0);
	if (s->pidfd < 0)
		return fdh_fail(-errno, -1, "pidfd_open(%d) of the socket's peer: %m",
				cred.pid);
	if (fdh_proc_stat(cred.pid, &start, &uid, NULL) < 0 ||
	    start > now + 1 || uid != cred.uid)
		return fdh_fail(-ESRCH, -1,
				"the socket's peer pid %d has exited or was reused by another process",
				cred.pid);
	return 0;
}

int fdh_source_open_socket(int sockfd, struct fdh_source **ret_source)
{
	struct fdh_source *s;
	socklen_t len = sizeof(int);
	int pidfd, r;

	if (!ret_source)
		return fdh_fail(-EINVAL, -1, "ret_source is NULL");
	s = source_alloc();
	if (!s)
		return fdh_fail(-ENOMEM, -1, "out of memory");

	if (getsockopt(sockfd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0) {
		s->pidfd = pidfd;
		r = pidfd_pid(pidfd, &s->pid);
		if (r < 0)
			r = fdh_fail(-ESRCH, -1, "the socket's peer has exited");
	} else if (errno == ENOPROTOOPT) {
		r = peer_by_cred(sockfd, s);
	} else {
		r = fdh_fail(-errno, -1, "getsockopt(SO_PEERPIDFD) on fd %d: %m",
			     sockfd);
	}
	if (r == 0) {
		s->sockfd = fcntl(sockfd, F_DUPFD_CLOEXEC, 3);
		if (s->sockfd < 0)
			r = fdh_fail(-errno, -1, "dup of socket %d: %m", sockfd);
	}
	if (r < 0) {
		fdh_source_free(s);
		return r;
	}
	return source_finish(s, 0, ret_source);
}

int fdh_source_set_socket(struct fdh_source *s, int sockfd)
{
	int fd;

	if (!s)
		return fdh_fail(-EINVAL, -1, "source is NULL");
	fd = fcntl(sockfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return fdh_fail(-errno, -1, "dup of socket %d: %m", sockfd);
	if (s->sockfd >= 0)
		close(s->sockfd);
	s->sockfd = fd;
	return 0;
}

int fdh_source_get_info(const struct fdh_source *s,
			struct fdh_source_info *ret_info)
{
	if (!s || !ret_info)
		return fdh_fail(-EINVAL, -1, "source or ret_info is NULL");
	*ret_info = (struct fdh_source_info){
		.pid = s->pid,
		.uid = s->uid,
		.start_time = s->start_time,
		.pidfd = s->pidfd,
		.sockfd = s->sockfd,
	};
	memcpy(ret_info->comm, s->comm, sizeof(s->comm));
	return 0;
}
