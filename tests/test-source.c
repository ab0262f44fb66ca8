// SPDX-License-Identifier: LGPL-2.1-or-later
/* Opening a source: by pid, pidfd, socket; recycled pids refused. */
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdh-internal.h"
#include "fdsrc.h"
#include "harness.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* A child that sleeps until killed (dies with the test). */
static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pause();
		_exit(0);
	}
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

TEST(open_pid_records_pid_start_time_uid_comm)
{
	struct fdh_source_info info;
	struct fdh_source *src;
	uint64_t start;
	uid_t uid;
	char comm[16];
	pid_t pid = spawn_sleeper();

	ASSERT_GT(pid, 0);
	ASSERT_EQ(fdh_proc_stat(pid, &start, &uid, comm), 0);
	ASSERT_EQ(fdh_source_open_pid(pid, start, &src), 0, "%s",
		  fdh_last_error()->msg);
	ASSERT_EQ(fdh_source_get_info(src, &info), 0);
	EXPECT_EQ(info.pid, pid);
	EXPECT_EQ(info.start_time, start);
	EXPECT_EQ(info.uid, getuid());
	EXPECT_STREQ(info.comm, comm);
	EXPECT_TRUE(info.pidfd >= 0);
	EXPECT_EQ(info.sockfd, -1, "opened by pid: no cooperation socket");
	fdh_source_free(src);
	reap(pid);
}

TEST(open_pid_of_exited_process_fails_esrch)
{
	struct fdh_source *src = NULL;
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	ASSERT_EQ(waitpid(pid, NULL, 0), pid);
	ASSERT_EQ(fdh_source_open_pid(pid, 0, &src), -ESRCH);
	EXPECT_TRUE(src == NULL, "ret_source is untouched on failure");
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "no such process") != NULL,
		    "message: %s", fdh_last_error()->msg);
}

TEST(open_pid_rejects_invalid_pid)
{
	struct fdh_source *src;

	ASSERT_EQ(fdh_source_open_pid(0, 0, &src), -EINVAL);
	ASSERT_EQ(fdh_source_open_pid(-5, 0, &src), -EINVAL);
}

TEST(open_pid_with_wrong_start_time_is_refused)
{
	struct fdh_source *src;
	uint64_t start;
	pid_t pid = spawn_sleeper();

	ASSERT_EQ(fdh_proc_stat(pid, &start, NULL, NULL), 0);
	ASSERT_EQ(fdh_source_open_pid(pid, start + 1, &src), -ESRCH,
		  "a different start time means another process");
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "reused") != NULL,
		    "message: %s", fdh_last_error()->msg);
	reap(pid);
}

/*
 * The manifest-driven pull path: a manifest of a live child, one field
 * changed, must not open.  OPEN_FROM_MANIFEST is what the target calls.
 */
#ifndef OPEN_FROM_MANIFEST
#define OPEN_FROM_MANIFEST fdh_source_open_manifest
#endif

static void check_manifest_open(struct th_meta *_meta,
				void (*mutate)(struct fdh_manifest *m),
				int expect, const char *needle)
{
	struct fdh_manifest *m = fdh_manifest_new();
	struct fdh_source_info info;
	struct fdh_source *src = NULL;
	pid_t pid = spawn_sleeper();

	ASSERT_GT(pid, 0);
	ASSERT_TRUE(m != NULL);
	ASSERT_EQ(fdh_manifest_set_source(m, pid), 0, "%s",
		  fdh_last_error()->msg);
	mutate(m);
	EXPECT_EQ(OPEN_FROM_MANIFEST(m, &src), expect, "%s",
		  fdh_last_error()->msg);
	if (expect == 0 && src) {
		ASSERT_EQ(fdh_source_get_info(src, &info), 0);
		EXPECT_EQ(info.pid, pid);
	} else {
		EXPECT_TRUE(src == NULL, "ret_source untouched");
		EXPECT_TRUE(strstr(fdh_last_error()->msg, needle) != NULL,
			    "message names the cause ('%s'): %s", needle,
			    fdh_last_error()->msg);
	}
	fdh_source_free(src);
	fdh_manifest_free(m);
	reap(pid);
}

static void keep(struct fdh_manifest *m) { (void)m; }
static void other_uid(struct fdh_manifest *m) { m->source.uid += 1; }
static void other_boot(struct fdh_manifest *m)
{
	m->source.boot_id[0] = m->source.boot_id[0] == '0' ? '1' : '0';
}
static void other_start(struct fdh_manifest *m) { m->source.start_time += 1; }
static void no_start(struct fdh_manifest *m) { m->source.start_time = 0; }

TEST(open_manifest_opens_the_manifest_process)
{
	check_manifest_open(_meta, keep, 0, "");
}

TEST(open_manifest_refuses_a_uid_other_than_the_manifest)
{
	check_manifest_open(_meta, other_uid, -ESTALE, "uid");
}

TEST(open_manifest_refuses_a_manifest_of_another_boot)
{
	check_manifest_open(_meta, other_boot, -ESRCH, "another boot");
}

TEST(open_manifest_refuses_another_start_time)
{
	check_manifest_open(_meta, other_start, -ESRCH, "reused");
}

TEST(open_manifest_never_skips_the_start_time)
{
	check_manifest_open(_meta, no_start, -EINVAL, "start_time");
}

TEST(open_manifest_refuses_null)
{
	struct fdh_source *src = NULL;

	EXPECT_EQ(fdh_source_open_manifest(NULL, &src), -EINVAL);
	EXPECT_TRUE(src == NULL);
}

/* clone3() with set_tid: a child with exactly this pid number. */
static pid_t spawn_with_pid(pid_t want)
{
	pid_t tid = want;
	struct clone_args args = {
		.exit_signal = SIGCHLD,
		.set_tid = (uint64_t)(uintptr_t)&tid,
		.set_tid_size = 1,
	};
	long pid = syscall(SYS_clone3, &args, sizeof(args));

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pause();
		_exit(0);
	}
	return (pid_t)pid;
}

TEST(open_pid_refuses_a_really_recycled_pid)
{
	struct timespec tick = { 0, 30 * 1000 * 1000 };
	struct fdh_source *src;
	uint64_t first_start, second_start;
	pid_t first, second;

	if (geteuid() != 0)
		SKIP("clone3 set_tid needs CAP_SYS_ADMIN (run as root)");
	first = spawn_sleeper();
	ASSERT_EQ(fdh_proc_stat(first, &first_start, NULL, NULL), 0);
	reap(first);
	/* Start times count clock ticks: make the reuse land on a later one. */
	nanosleep(&tick, NULL);
	second = spawn_with_pid(first);
	if (second < 0)
		SKIP("clone3 set_tid=%d refused: %s", first, strerror(errno));
	ASSERT_EQ(second, first, "the pid number was reused");
	ASSERT_EQ(fdh_proc_stat(second, &second_start, NULL, NULL), 0);
	ASSERT_NE(second_start, first_start);

	ASSERT_EQ(fdh_source_open_pid(second, first_start, &src), -ESRCH,
		  "same number, another process: refused");
	ASSERT_EQ(fdh_source_open_pid(second, second_start, &src), 0);
	fdh_source_free(src);
	reap(second);
}

TEST(open_pidfd_names_its_process)
{
	struct fdh_source_info info;
	struct fdh_source *src;
	pid_t pid = spawn_sleeper();
	int pidfd = fdh_sys_pidfd_open(pid, 0);

	ASSERT_TRUE(pidfd >= 0);
	ASSERT_EQ(fdh_source_open_pidfd(pidfd, &src), 0, "%s",
		  fdh_last_error()->msg);
	ASSERT_EQ(fdh_source_get_info(src, &info), 0);
	EXPECT_EQ(info.pid, pid);
	EXPECT_NE(info.pidfd, pidfd, "the handle keeps its own duplicate");
	fdh_source_free(src);
	EXPECT_EQ(fcntl(pidfd, F_GETFD) >= 0, 1, "the caller's pidfd stays open");
	reap(pid);
	ASSERT_EQ(fdh_source_open_pidfd(pidfd, &src), -ESRCH,
		  "a pidfd of an exited process");
	close(pidfd);
}

TEST(open_pidfd_rejects_a_non_pidfd)
{
	struct fdh_source *src;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	ASSERT_EQ(fdh_source_open_pidfd(fd, &src), -EBADF);
	close(fd);
}

static void check_socket_peer(struct th_meta *_meta)
{
	struct fdh_source_info info;
	struct fdh_source *src;
	struct fdsrc child;

	ASSERT_EQ(fdsrc_start(&child, NULL), 0);
	ASSERT_EQ(fdh_source_open_socket(child.coop, &src), 0, "%s",
		  fdh_last_error()->msg);
	ASSERT_EQ(fdh_source_get_info(src, &info), 0);
	EXPECT_EQ(info.pid, child.pid, "the peer is the process that made the socket");
	EXPECT_TRUE(info.sockfd >= 0, "the socket is kept for the fallback");
	fdh_source_free(src);
	fdsrc_stop(&child);
}

TEST(open_socket_uses_so_peerpidfd)
{
	check_socket_peer(_meta);
}

TEST(open_socket_falls_back_to_so_peercred)
{
	/* As on kernels before 6.5, which do not know SO_PEERPIDFD. */
	int pidfd, sv[2];
	socklen_t len = sizeof(pidfd);

	ASSERT_EQ(fdsrc_deny_sockopt(SO_PEERPIDFD, ENOPROTOOPT), 0);
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ASSERT_EQ(getsockopt(sv[0], SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len), -1);
	ASSERT_EQ(errno, ENOPROTOOPT, "the filter really hides SO_PEERPIDFD");
	check_socket_peer(_meta);
}

TEST(open_socket_of_exited_peer_fails_esrch)
{
	struct fdh_source *src;
	struct fdsrc child;

	ASSERT_EQ(fdsrc_start(&child, NULL), 0);
	kill(child.pid, SIGKILL);
	waitpid(child.pid, NULL, 0);
	child.pid = -1;
	ASSERT_EQ(fdh_source_open_socket(child.coop, &src), -ESRCH, "%s",
		  fdh_last_error()->msg);
	fdsrc_stop(&child);
}

TEST(allow_successor_succeeds_with_or_without_yama)
{
	ASSERT_EQ(fdh_allow_successor(0), 0, "%s", fdh_last_error()->msg);
	ASSERT_EQ(fdh_allow_successor(getppid()), 0, "%s",
		  fdh_last_error()->msg);
}

TEST_HARNESS_MAIN
