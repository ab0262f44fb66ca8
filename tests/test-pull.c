// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Pulling by pidfd_getfd, verified, and its SCM_RIGHTS fallback.  Source
 * and puller run as the same unprivileged uid: root's CAP_SYS_PTRACE
 * would pass every check and hide permission bugs.
 */
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kcmp.h>
#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdh-internal.h"
#include "fdsrc.h"
#include "harness.h"

#define TAP_NAME "fdhtap0"

FIXTURE(pull) {
	struct fdsrc child;		/* the source, in its own netns */
	struct fdh_source *src;
	int fds_before;			/* our open fds before the test */
};

FIXTURE_SETUP(pull)
{
	int r;

	self->child.pid = -1;
	if (geteuid() != 0)
		SKIP("needs root to create the netns and TAP, then drops to uid %u",
		     fdsrc_test_uid());
	r = fdsrc_start_unprivileged(&self->child, TAP_NAME);
	if (fdsrc_start_refused(r))
		SKIP("cannot create a netns with a TAP here: %s", strerror(-r));
	ASSERT_EQ(r, 0, "source and puller as uid %u: %s", fdsrc_test_uid(),
		  strerror(-r));
	/* Through its cooperation socket: pidfd_getfd first, SCM_RIGHTS
	 * when that is refused. */
	ASSERT_EQ(fdh_source_open_socket(self->child.coop, &self->src), 0,
		  "%s", fdh_last_error()->msg);
	self->fds_before = fdsrc_count_own_fds();
}

FIXTURE_TEARDOWN(pull)
{
	fdh_source_free(self->src);
	fdsrc_stop(&self->child);
}

#define remote fdsrc_make_entry

static bool same_file(pid_t pid, int local, int remote_fd)
{
	return fdh_sys_kcmp(getpid(), pid, KCMP_FILE, (unsigned long)local,
			    (unsigned long)remote_fd) == 0;
}

TEST_F(pull, memfd_keeps_bytes_seals_and_identity)
{
	struct fdh_pull_report report;
	struct fdh_pull_entry e;
	unsigned char *p;
	int fd = -1;

	ASSERT_EQ(remote(&self->child, &e, "ram0",
			 "memfd ram0 8192 6" /* F_SEAL_SHRINK|F_SEAL_GROW */), 0);
	ASSERT_EQ(fdh_pull(self->src, &e, 1, &fd, &report), 0, "%s",
		  fdh_last_error()->msg);
	EXPECT_EQ(report.transport, FDH_TRANSPORT_PIDFD);
	EXPECT_EQ(report.n_kcmp_verified, 1);
	EXPECT_TRUE(same_file(self->child.pid, fd, e.remote_fd));
	EXPECT_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	EXPECT_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW);
	p = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_TRUE(p != MAP_FAILED);
	for (int i = 0; i < 8192; i++)
		ASSERT_EQ(p[i], i & 0xff, "byte %d of the pulled memfd", i);
	munmap(p, 8192);
	close(fd);
}

TEST_F(pull, eventfd_keeps_its_count)
{
	struct fdh_pull_entry e;
	uint64_t count = 0;
	int fd = -1;

	ASSERT_EQ(remote(&self->child, &e, "kick0", "eventfd 7 0"), 0);
	ASSERT_NE(e.expect.kind_id, 0, "an eventfd is known by its eventfd-id");
	ASSERT_EQ(fdh_pull(self->src, &e, 1, &fd, NULL), 0, "%s",
		  fdh_last_error()->msg);
	ASSERT_EQ(read(fd, &count, sizeof(count)), sizeof(count));
	EXPECT_EQ(count, 7, "the count signalled in the source is not lost");
	close(fd);
}

static int tap_name(int fd, char name[IFNAMSIZ], short *flags)
{
	struct ifreq ifr = { 0 };

	if (ioctl(fd, TUNGETIFF, &ifr) < 0)
		return -errno;
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	*flags = ifr.ifr_flags;
	return 0;
}

TEST_F(pull, tap_queues_keep_their_interface)
{
	struct fdh_pull_entry e[2];
	char name[IFNAMSIZ];
	short flags = 0;
	int fds[2];

	ASSERT_EQ(remote(&self->child, &e[0], "net0.q0", "tap " TAP_NAME), 0);
	ASSERT_EQ(remote(&self->child, &e[1], "net0.q1", "tap " TAP_NAME), 0);
	EXPECT_STREQ(e[0].expect.name, TAP_NAME);
	ASSERT_EQ(fdh_pull(self->src, e, 2, fds, NULL), 0, "%s",
		  fdh_last_error()->msg);
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(tap_name(fds[i], name, &flags), 0);
		EXPECT_STREQ(name, TAP_NAME);
		EXPECT_TRUE(flags & IFF_TAP);
		EXPECT_TRUE(flags & IFF_VNET_HDR);
		EXPECT_TRUE(same_file(self->child.pid, fds[i], e[i].remote_fd));
		close(fds[i]);
	}
}

TEST_F(pull, socket_and_pipe_ends)
{
	struct fdh_pull_entry e[2];
	int fds[2], other_sock, other_pipe;
	char buf[8] = "";

	e[0].remote_fd = fdsrc_cmd2(&self->child, &other_sock, "socketpair");
	ASSERT_GE(e[0].remote_fd, 0);
	ASSERT_EQ(fdsrc_entry(&self->child, e[0].remote_fd, "sock", &e[0]), 0);
	e[1].remote_fd = fdsrc_cmd2(&self->child, &other_pipe, "pipe");
	ASSERT_GE(e[1].remote_fd, 0);
	ASSERT_EQ(fdsrc_entry(&self->child, e[1].remote_fd, "pipe", &e[1]), 0);
	EXPECT_EQ(e[0].expect.kind, FDH_KIND_UNIX_SOCKET);
	EXPECT_EQ(e[1].expect.kind, FDH_KIND_PIPE);
	ASSERT_EQ(fdh_pull(self->src, e, 2, fds, NULL), 0, "%s",
		  fdh_last_error()->msg);
	/* The child cannot write for us; prove the ends by their kcmp. */
	EXPECT_TRUE(same_file(self->child.pid, fds[0], e[0].remote_fd));
	EXPECT_TRUE(same_file(self->child.pid, fds[1], e[1].remote_fd));
	EXPECT_EQ(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
	EXPECT_EQ(read(fds[1], buf, sizeof(buf)), -1);
	EXPECT_EQ(errno, EAGAIN, "the pipe is empty and now non-blocking");
	close(fds[0]);
	close(fds[1]);
}

/* Documented behaviour: the pulled fd shares the open file description. */
TEST_F(pull, file_status_flags_are_shared_with_the_source)
{
	struct fdh_pull_entry e;
	char text[512];
	uint64_t flags;
	int fd;

	ASSERT_EQ(remote(&self->child, &e, "kick", "eventfd 0 0"), 0);
	ASSERT_EQ(fdh_pull(self->src, &e, 1, &fd, NULL), 0);
	ASSERT_EQ(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
	ASSERT_GT(fdh_fdinfo_read(self->child.pid, e.remote_fd, text,
				  sizeof(text)), 0);
	ASSERT_EQ(fdh_fdinfo_get_u64(text, "flags", 8, &flags), 0);
	EXPECT_TRUE(flags & O_NONBLOCK,
		    "O_NONBLOCK set on our copy shows on the source's copy");
	close(fd);
}

TEST_F(pull, all_or_nothing_when_one_entry_is_closed)
{
	struct fdh_pull_entry e[4];
	int fds[4] = { -2, -2, -2, -2 };

	ASSERT_EQ(remote(&self->child, &e[0], "a", "memfd a 16 0"), 0);
	ASSERT_EQ(remote(&self->child, &e[1], "b", "eventfd 1 0"), 0);
	ASSERT_EQ(remote(&self->child, &e[2], "c", "tap " TAP_NAME), 0);
	ASSERT_EQ(remote(&self->child, &e[3], "d", "memfd d 16 0"), 0);
	ASSERT_EQ(fdsrc_cmd(&self->child, "close %d", e[3].remote_fd), 0);

	ASSERT_EQ(fdh_pull(self->src, e, 4, fds, NULL), -EBADF);
	EXPECT_EQ(fdh_last_error()->entry, 3, "the error names the closed entry");
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "'d'") != NULL, "%s",
		    fdh_last_error()->msg);
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(fds[i], -2, "ret_fds untouched on failure");
	EXPECT_EQ(fdsrc_count_own_fds(), self->fds_before,
		  "the three fds pulled before the failure were closed");
}

/*
 * Describe what `made` makes, then put what `replacement` makes at the
 * same number: the pull must refuse it (-ESTALE, saying why), take
 * nothing and leak nothing.
 */
static void expect_stale(struct th_meta *_meta, FIXTURE(pull) *self,
			 const char *made, const char *replacement,
			 const char *why)
{
	struct fdh_pull_entry e;
	int other, fd = -2;

	ASSERT_EQ(remote(&self->child, &e, "entry", made), 0);
	other = fdsrc_cmd(&self->child, "%s", replacement);
	ASSERT_GE(other, 0);
	ASSERT_EQ(fdsrc_cmd(&self->child, "dup2 %d %d", other, e.remote_fd),
		  e.remote_fd);
	ASSERT_EQ(fdh_pull(self->src, &e, 1, &fd, NULL), -ESTALE);
	EXPECT_TRUE(strstr(fdh_last_error()->msg, why) != NULL, "%s",
		    fdh_last_error()->msg);
	EXPECT_EQ(fd, -2);
	EXPECT_EQ(fdsrc_count_own_fds(), self->fds_before);
}

/* Same number, another eventfd: same dev/ino, another eventfd-id. */
TEST_F(pull, identity_mismatch_when_the_number_was_reused)
{
	expect_stale(_meta, self, "eventfd 0 0", "eventfd 0 0", "eventfd id");
}

TEST_F(pull, identity_mismatch_when_a_memfd_was_replaced)
{
	expect_stale(_meta, self, "memfd ram0 4096 0", "memfd ram0 4096 0",
		     "dev/ino");
}

TEST_F(pull, identity_mismatch_when_a_tap_became_another_kind)
{
	expect_stale(_meta, self, "tap " TAP_NAME, "memfd x 1 0", "dev/ino");
}

TEST_F(pull, refuses_two_entries_that_are_one_open_file)
{
	struct fdh_pull_entry e[2];
	int fds[2];

	ASSERT_EQ(remote(&self->child, &e[0], "net0.q0", "tap " TAP_NAME), 0);
	/* A dup of queue 0 posing as queue 1. */
	e[1] = e[0];
	e[1].label = "net0.q1";
	e[1].remote_fd = fdsrc_cmd(&self->child, "dup2 %d 200", e[0].remote_fd);
	ASSERT_EQ(e[1].remote_fd, 200);
	ASSERT_EQ(fdh_pull(self->src, e, 2, fds, NULL), -EINVAL);
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "same open file") != NULL,
		    "%s", fdh_last_error()->msg);
	EXPECT_EQ(fdsrc_count_own_fds(), self->fds_before);
}

/*
 * Three queues of one TAP where the third is a dup of the first: in fd
 * order the dup is nobody's neighbour, so a check of neighbours only
 * passes it.  Every pair of equal identities must be compared.
 */
TEST_F(pull, refuses_a_dup_that_is_no_neighbour_in_fd_order)
{
	struct fdh_pull_entry e[3];
	int fds[3] = { -2, -2, -2 };

	ASSERT_EQ(remote(&self->child, &e[0], "net0.q0", "tap " TAP_NAME), 0);
	ASSERT_EQ(remote(&self->child, &e[1], "net0.q1", "tap " TAP_NAME), 0);
	/* q0 is the lower number: fd order is q0, q1, q2. */
	if (e[0].remote_fd > e[1].remote_fd) {
		struct fdh_pull_entry t = e[0];

		e[0] = e[1];
		e[1] = t;
		e[0].label = "net0.q0";
		e[1].label = "net0.q1";
	}
	e[2] = e[0];
	e[2].label = "net0.q2";
	e[2].remote_fd = fdsrc_cmd(&self->child, "dup2 %d 300", e[0].remote_fd);
	ASSERT_EQ(e[2].remote_fd, 300);
	ASSERT_EQ(fdh_pull(self->src, e, 3, fds, NULL), -EINVAL);
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "'net0.q0'") &&
		    strstr(fdh_last_error()->msg, "'net0.q2'") &&
		    strstr(fdh_last_error()->msg, "same open file"),
		    "names both entries: %s", fdh_last_error()->msg);
	EXPECT_EQ(fdh_last_error()->entry, 2);
	EXPECT_EQ(fds[0], -2, "ret_fds untouched");
	EXPECT_EQ(fdsrc_count_own_fds(), self->fds_before);
}

/* Many queues of one device, all distinct: every pair is one kcmp sort. */
TEST_F(pull, accepts_many_distinct_queues_of_one_tap)
{
	enum { N = 16 };
	struct fdh_pull_entry e[N];
	struct fdh_pull_report report;
	int fds[N];

	for (int i = 0; i < N; i++)
		ASSERT_EQ(remote(&self->child, &e[i], "net0", "tap " TAP_NAME), 0);
	ASSERT_EQ(fdh_pull(self->src, e, N, fds, &report), 0, "%s",
		  fdh_last_error()->msg);
	EXPECT_EQ(report.n_kcmp_verified, N);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	EXPECT_EQ(fdsrc_count_own_fds(), self->fds_before);
}

/* Sorted by kcmp's order, a dup among many queues meets its original. */
TEST_F(pull, refuses_a_dup_among_many_queues)
{
	enum { N = 12 };
	struct fdh_pull_entry e[N];
	int fds[N];

	for (int i = 0; i < N - 1; i++)
		ASSERT_EQ(remote(&self->child, &e[i], "net0", "tap " TAP_NAME), 0);
	e[N - 1] = e[5];
	e[N - 1].remote_fd = fdsrc_cmd(&self->child, "dup2 %d 301", e[5].remote_fd);
	ASSERT_EQ(e[N - 1].remote_fd, 301);
	ASSERT_EQ(fdh_pull(self->src, e, N, fds, NULL), -EINVAL);
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "entries 5 ") &&
		    strstr(fdh_last_error()->msg, "and 11 "),
		    "names entries 5 and 11: %s", fdh_last_error()->msg);
	EXPECT_EQ(fdsrc_count_own_fds(), self->fds_before);
}

TEST_F(pull, refuses_the_same_number_twice)
{
	struct fdh_pull_entry e[2];
	int fds[2];

	ASSERT_EQ(remote(&self->child, &e[0], "a", "memfd a 1 0"), 0);
	e[1] = e[0];
	ASSERT_EQ(fdh_pull(self->src, e, 2, fds, NULL), -EINVAL);
	EXPECT_EQ(fdsrc_count_own_fds(), self->fds_before);
}

TEST_F(pull, rejects_bad_arguments)
{
	struct fdh_pull_entry e = { .remote_fd = -1 };
	int fd;

	EXPECT_EQ(fdh_pull(self->src, &e, 1, &fd, NULL), -EINVAL);
	EXPECT_EQ(fdh_pull(self->src, &e, 0, &fd, NULL), -EINVAL);
	EXPECT_EQ(fdh_pull(self->src, NULL, 1, &fd, NULL), -EINVAL);
	EXPECT_EQ(fdh_pull(self->src, &e, FDH_PULL_MAX + 1, &fd, NULL), -EINVAL);
}

TEST_F(pull, fails_esrch_after_the_source_exited)
{
	struct fdh_pull_entry e;
	int fd;

	ASSERT_EQ(remote(&self->child, &e, "ram0", "memfd ram0 16 0"), 0);
	ASSERT_EQ(fdsrc_send(&self->child, "exit"), 0);
	ASSERT_EQ(waitpid(self->child.pid, NULL, 0), self->child.pid);
	self->child.pid = -1;
	ASSERT_EQ(fdh_pull(self->src, &e, 1, &fd, NULL), -ESRCH);
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "exited") != NULL, "%s",
		    fdh_last_error()->msg);
}

TEST_F(pull, many_fds_at_once)
{
	enum { N = 300 };
	struct fdh_pull_entry e[N];
	int fds[N];

	for (int i = 0; i < N; i++)
		ASSERT_EQ(remote(&self->child, &e[i], "m", "memfd m 0 0"), 0);
	ASSERT_EQ(fdh_pull(self->src, e, N, fds, NULL), 0, "%s",
		  fdh_last_error()->msg);
	for (int i = 0; i < N; i++) {
		EXPECT_TRUE(same_file(self->child.pid, fds[i], e[i].remote_fd));
		close(fds[i]);
	}
	EXPECT_EQ(fdsrc_count_own_fds(), self->fds_before);
}

/* Permission: without ptrace rights over the source, a clear -EPERM. */
static void pull_without_permission(struct th_meta *_meta, uid_t source_uid,
				    uid_t puller_uid, bool source_dumpable)
{
	struct fdsrc_opts opts = {
		.uid = source_uid, .not_dumpable = !source_dumpable,
	};
	struct fdh_pull_entry e;
	struct fdh_source *src;
	struct fdsrc child;
	int fd;

	if (geteuid() != 0)
		SKIP("needs root to set up two uids");
	ASSERT_EQ(fdsrc_start(&child, &opts), 0);
	ASSERT_EQ(remote(&child, &e, "ram0", "memfd ram0 16 0"), 0);
	ASSERT_EQ(fdsrc_drop_to(puller_uid), 0);
	ASSERT_EQ(fdh_source_open_pid(child.pid, 0, &src), 0, "%s",
		  fdh_last_error()->msg);
	ASSERT_EQ(fdh_pull(src, &e, 1, &fd, NULL), -EPERM);
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "ptrace permission") != NULL,
		    "the message says what to do: %s", fdh_last_error()->msg);
	fdh_source_free(src);
	fdsrc_stop(&child);
}

TEST(source_of_another_uid_fails_eperm)
{
	pull_without_permission(_meta, fdsrc_test_uid(), 12345, true);
}

TEST(non_dumpable_source_fails_eperm)
{
	pull_without_permission(_meta, fdsrc_test_uid(), fdsrc_test_uid(),
				false);
}

/* ------------------------------------------------------------------ */
/*
 * The SCM_RIGHTS fallback: when pidfd_getfd is refused (forced here with a
 * seccomp filter) the cooperating source sends the same set, and it is
 * verified the same way.
 */

/* A memfd, an eventfd and a TAP queue: one of each kind that matters. */
static int make_set(struct fdsrc *child, struct fdh_pull_entry e[3])
{
	int r = remote(child, &e[0], "ram0", "memfd ram0 4096 0");

	if (r == 0)
		r = remote(child, &e[1], "kick0", "eventfd 3 0");
	if (r == 0)
		r = remote(child, &e[2], "net0", "tap " TAP_NAME);
	return r;
}

static void fallback_completes(struct th_meta *_meta,
			       FIXTURE(pull) *self, int forced)
{
	struct fdh_pull_report report;
	struct fdh_pull_entry e[3];
	uint64_t count;
	int fds[3];

	ASSERT_EQ(make_set(&self->child, e), 0);
	ASSERT_EQ(fdsrc_deny_syscall("pidfd_getfd", forced), 0);
	ASSERT_EQ(fdsrc_send(&self->child, "serve"), 0);
	ASSERT_EQ(fdh_pull(self->src, e, 3, fds, &report), 0, "%s",
		  fdh_last_error()->msg);
	ASSERT_EQ(fdsrc_reply(&self->child), 3, "the source sent three fds");
	EXPECT_EQ(report.transport, FDH_TRANSPORT_SCM_RIGHTS);
	EXPECT_EQ(report.fallback_reason, -forced);
	EXPECT_EQ(report.n_kcmp_verified, 3,
		  "kcmp still works: only pidfd_getfd is filtered");
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(fdh_sys_kcmp(getpid(), self->child.pid, KCMP_FILE,
				       (unsigned long)fds[i],
				       (unsigned long)e[i].remote_fd), 0);
	ASSERT_EQ(read(fds[1], &count, sizeof(count)), sizeof(count));
	EXPECT_EQ(count, 3);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	EXPECT_EQ(fdsrc_count_own_fds(), self->fds_before);
}

TEST_F(pull, eperm_from_pidfd_getfd_falls_back_to_scm_rights)
{
	fallback_completes(_meta, self, EPERM);
}

TEST_F(pull, enosys_from_pidfd_getfd_falls_back_to_scm_rights)
{
	fallback_completes(_meta, self, ENOSYS);
}

TEST_F(pull, batches_more_fds_than_one_message_carries)
{
	enum { N = 600 };	/* > 2 * SCM_MAX_FD */
	static struct fdh_pull_entry e[N];
	int fds[N];

	for (int i = 0; i < N; i++)
		ASSERT_EQ(remote(&self->child, &e[i], "m", "eventfd 0 0"), 0);
	ASSERT_EQ(fdsrc_deny_syscall("pidfd_getfd", EPERM), 0);
	ASSERT_EQ(fdsrc_send(&self->child, "serve"), 0);
	ASSERT_EQ(fdh_pull(self->src, e, N, fds, NULL), 0, "%s",
		  fdh_last_error()->msg);
	ASSERT_EQ(fdsrc_reply(&self->child), N);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	EXPECT_EQ(fdsrc_count_own_fds(), self->fds_before);
}

TEST_F(pull, source_refuses_a_closed_number_and_nothing_leaks)
{
	struct fdh_pull_entry e[3];
	int fds[3] = { -2, -2, -2 };

	ASSERT_EQ(make_set(&self->child, e), 0);
	ASSERT_EQ(fdsrc_cmd(&self->child, "close %d", e[1].remote_fd), 0);
	ASSERT_EQ(fdsrc_deny_syscall("pidfd_getfd", EPERM), 0);
	ASSERT_EQ(fdsrc_send(&self->child, "serve"), 0);
	ASSERT_EQ(fdh_pull(self->src, e, 3, fds, NULL), -EBADF);
	EXPECT_EQ(fdh_last_error()->entry, 1);
	EXPECT_EQ(fdsrc_reply(&self->child), -EBADF);
	EXPECT_EQ(fds[0], -2);
	EXPECT_EQ(fdsrc_count_own_fds(), self->fds_before);
}

TEST_F(pull, identity_is_verified_after_scm_rights_too)
{
	struct fdh_pull_entry e[3];
	int fds[3], other;

	ASSERT_EQ(make_set(&self->child, e), 0);
	other = fdsrc_cmd(&self->child, "eventfd 0 0");
	ASSERT_EQ(fdsrc_cmd(&self->child, "dup2 %d %d", other, e[1].remote_fd),
		  e[1].remote_fd);
	ASSERT_EQ(fdsrc_deny_syscall("pidfd_getfd", EPERM), 0);
	ASSERT_EQ(fdsrc_send(&self->child, "serve"), 0);
	ASSERT_EQ(fdh_pull(self->src, e, 3, fds, NULL), -ESTALE);
	EXPECT_EQ(fdh_last_error()->entry, 1);
	EXPECT_EQ(fdsrc_reply(&self->child), 3);
	EXPECT_EQ(fdsrc_count_own_fds(), self->fds_before,
		  "all three received fds were closed on the mismatch");
}

TEST_F(pull, times_out_when_the_source_does_not_serve)
{
	struct fdh_pull_entry e[3];
	int fds[3];

	ASSERT_EQ(make_set(&self->child, e), 0);
	ASSERT_EQ(fdsrc_deny_syscall("pidfd_getfd", EPERM), 0);
	ASSERT_EQ(fdh_pull(self->src, e, 3, fds, NULL), -ETIMEDOUT);
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "serving") != NULL, "%s",
		    fdh_last_error()->msg);
}

TEST(eperm_without_a_cooperation_socket_is_a_clear_error)
{
	struct fdh_pull_entry e;
	struct fdh_source *src;
	struct fdsrc child;
	int fd;

	ASSERT_EQ(fdsrc_start(&child, NULL), 0);
	ASSERT_EQ(remote(&child, &e, "ram0", "memfd ram0 16 0"), 0);
	ASSERT_EQ(fdh_source_open_pid(child.pid, 0, &src), 0);
	ASSERT_EQ(fdsrc_deny_syscall("pidfd_getfd", EPERM), 0);
	ASSERT_EQ(fdh_pull(src, &e, 1, &fd, NULL), -EPERM);
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "cooperation socket") != NULL,
		    "%s", fdh_last_error()->msg);
	fdh_source_free(src);
	fdsrc_stop(&child);
}

/* ------------------------------------------------------------------ */
/*
 * A source that answers the fallback with crafted replies: the puller
 * must judge each reply before it trusts it, and never wait for ever.
 * The source here is this process (its own fds are the remote ones); a
 * forked child holds the other end of the cooperation socket and plays
 * the source's fdh_serve_one().
 */
struct crafted_reply {
	int32_t status;
	uint32_t first, n;
	unsigned int n_fds;	/* fds really attached (copies of fd) */
};

static void read_request(int sock)
{
	char buf[4096];

	/* A request of at most a few entries arrives in one read. */
	while (read(sock, buf, sizeof(buf)) < 0 && errno == EINTR)
		;
}

static void send_crafted(int sock, const struct crafted_reply *c, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} control;
	struct fdh_wire_reply reply = { FDH_WIRE_MAGIC, c->status, c->first, c->n };
	struct iovec iov = { &reply, sizeof(reply) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[4] = { fd, fd, fd, fd };

	if (c->n_fds) {
		struct cmsghdr *cm;

		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * c->n_fds);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * c->n_fds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * c->n_fds);
	}
	sendmsg(sock, &msg, MSG_NOSIGNAL);
}

/*
 * Pull n entries (copies of one memfd of ours, fd numbers fd_base + i
 * after dup2) through the fallback while a child sends replies[] for
 * rounds rounds.  Returns fdh_pull()'s result; nothing may leak.
 */
static void pull_crafted(struct th_meta *_meta,
			 const struct crafted_reply *replies,
			 size_t n_replies, unsigned int rounds, size_t n,
			 int *ret)
{
	struct fdh_pull_entry e[4];
	struct fdh_source *src;
	int sv[2], fds[4] = { -2, -2, -2, -2 }, memfd, before, r;
	pid_t server;

	memfd = memfd_create("crafted", MFD_CLOEXEC);
	ASSERT_GE(memfd, 0);
	for (size_t i = 0; i < n; i++) {
		int fd = fcntl(memfd, F_DUPFD_CLOEXEC, 100);

		/* Distinct numbers, one file: only the transport is tested. */
		e[i] = (struct fdh_pull_entry){ .remote_fd = fd, .label = "m" };
		ASSERT_GE(fd, 0);
		ASSERT_EQ(fdh_identity_of_fd(fd, &e[i].expect), 0);
	}
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	server = fork();
	if (server == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		read_request(sv[1]);
		for (unsigned int k = 0; k < rounds; k++)
			for (size_t i = 0; i < n_replies; i++)
				send_crafted(sv[1], &replies[i], memfd);
		pause();
		_exit(0);
	}
	close(sv[1]);
	ASSERT_GE(server, 0);
	ASSERT_EQ(fdh_source_open_pid(getpid(), 0, &src), 0);
	ASSERT_EQ(fdh_source_set_socket(src, sv[0]), 0);
	ASSERT_EQ(fdsrc_deny_syscall("pidfd_getfd", EPERM), 0);
	before = fdsrc_count_own_fds();
	r = fdh_pull(src, e, n, fds, NULL);
	EXPECT_EQ(fdsrc_count_own_fds(), before, "every received fd closed");
	EXPECT_EQ(fds[0], -2, "ret_fds untouched");
	fdh_source_free(src);
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	*ret = r;
}

TEST_TIMEOUT(empty_batches_are_malformed_not_waited_on, 20)
{
	/* Before: the pull took them, waited for more, and timed out
	 * (fed for ever, it never ended). */
	static const struct crafted_reply empty = { 0, 0, 0, 0 };
	struct timespec t0, t1;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pull_crafted(_meta, &empty, 1, 50, 2, &r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	EXPECT_EQ(r, -EPROTO, "%s", fdh_last_error()->msg);
	EXPECT_LT(t1.tv_sec - t0.tv_sec, 2, "refused at once, not timed out");
}

TEST(a_refusal_with_fds_attached_is_malformed)
{
	static const struct crafted_reply refusal = { -EBADF, 0, 0, 1 };
	int r;

	pull_crafted(_meta, &refusal, 1, 1, 2, &r);
	EXPECT_EQ(r, -EPROTO, "%s", fdh_last_error()->msg);
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "malformed") != NULL,
		    "%s", fdh_last_error()->msg);
}

TEST(a_refusal_that_announces_fds_is_malformed)
{
	static const struct crafted_reply refusal = { -EBADF, 0, 2, 0 };
	int r;

	pull_crafted(_meta, &refusal, 1, 1, 2, &r);
	EXPECT_EQ(r, -EPROTO, "%s", fdh_last_error()->msg);
}

TEST(a_batch_out_of_order_is_malformed)
{
	/* Entry 0 twice, entry 1 never. */
	static const struct crafted_reply twice[] = {
		{ 0, 0, 1, 1 }, { 0, 0, 1, 1 },
	};
	int r;

	pull_crafted(_meta, twice, 2, 1, 2, &r);
	EXPECT_EQ(r, -EPROTO, "%s", fdh_last_error()->msg);
}

TEST(a_batch_past_the_request_is_malformed)
{
	static const struct crafted_reply past = { 0, 1, 2, 2 };
	int r;

	pull_crafted(_meta, &past, 1, 1, 2, &r);
	EXPECT_EQ(r, -EPROTO, "%s", fdh_last_error()->msg);
}

TEST(batches_in_order_are_taken)
{
	static const struct crafted_reply ok[] = {
		{ 0, 0, 1, 1 }, { 0, 1, 2, 2 },
	};
	int r;

	/* The fds are one memfd under three numbers: the pull gets them all,
	 * then refuses them as one open file — after the transport. */
	pull_crafted(_meta, ok, 2, 1, 3, &r);
	EXPECT_EQ(r, -EINVAL, "%s", fdh_last_error()->msg);
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "same open file") != NULL,
		    "%s", fdh_last_error()->msg);
}

static void on_signal(int sig)
{
	(void)sig;
}

/*
 * A signal while the request is still being written (the source reads it
 * late) and while waiting for the reply: the pull carries on.  Before, an
 * interrupted sendmsg() ended the pull with -EPROTO (a short write) or
 * -EINTR.
 */
TEST(a_signal_does_not_break_the_request_or_the_wait)
{
	enum { N = 4096 };
	static struct fdh_pull_entry e[N];
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART */
	struct fdh_source *src;
	int sv[2], memfd, sndbuf = 4096, fds[1], r;
	pid_t server, self = getpid();

	ASSERT_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	memfd = memfd_create("m", MFD_CLOEXEC);
	ASSERT_GE(memfd, 0);
	e[0] = (struct fdh_pull_entry){ .remote_fd = memfd };
	ASSERT_EQ(fdh_identity_of_fd(memfd, &e[0].expect), 0);
	for (int i = 1; i < N; i++)
		e[i] = e[0];	/* a 16 KiB request; refused before the check */
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ASSERT_EQ(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
			     sizeof(sndbuf)), 0);
	server = fork();
	ASSERT_GE(server, 0);
	if (server == 0) {
		struct timespec t = { 0, 100 * 1000 * 1000 };
		static char buf[8 + 4 * N];
		size_t done = 0;
		struct crafted_reply refusal = { -EPERM, 0, 0, 0 };

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		nanosleep(&t, NULL);
		kill(self, SIGUSR1);	/* the puller is blocked writing */
		nanosleep(&t, NULL);
		while (done < sizeof(buf)) {
			ssize_t n = read(sv[1], buf + done, sizeof(buf) - done);

			if (n <= 0)
				_exit(1);
			done += (size_t)n;
		}
		nanosleep(&t, NULL);
		kill(self, SIGUSR1);	/* the puller waits for the reply */
		nanosleep(&t, NULL);
		send_crafted(sv[1], &refusal, -1);
		pause();
		_exit(0);
	}
	close(sv[1]);
	ASSERT_EQ(fdh_source_open_pid(getpid(), 0, &src), 0);
	ASSERT_EQ(fdh_source_set_socket(src, sv[0]), 0);
	ASSERT_EQ(fdsrc_deny_syscall("pidfd_getfd", EPERM), 0);
	r = fdh_pull(src, e, N, fds, NULL);
	EXPECT_EQ(r, -EPERM, "the source's refusal, not a broken request: %s",
		  fdh_last_error()->msg);
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "refused") != NULL, "%s",
		    fdh_last_error()->msg);
	fdh_source_free(src);
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
}

/* fdh_serve_one(): a request that begins must end, in 5 s. */
TEST_TIMEOUT(serve_gives_up_on_a_request_that_stops_half_way, 20)
{
	struct fdh_wire_request req = { FDH_WIRE_MAGIC, 2 };
	struct timespec t0, t1;
	int sv[2], memfd = memfd_create("m", MFD_CLOEXEC);

	ASSERT_GE(memfd, 0);
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* The header and one of the two numbers announced, then nothing. */
	ASSERT_EQ(write(sv[0], &req, sizeof(req)), (ssize_t)sizeof(req));
	ASSERT_EQ(write(sv[0], &memfd, sizeof(memfd)), (ssize_t)sizeof(memfd));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_EQ(fdh_serve_one(sv[1], NULL, 0), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "not all sent") != NULL,
		    "%s", fdh_last_error()->msg);
	EXPECT_GE(t1.tv_sec - t0.tv_sec, 4);
	EXPECT_LE(t1.tv_sec - t0.tv_sec, 7);
}

TEST(serve_answers_on_a_non_blocking_socket)
{
	struct fdh_wire_request req = { FDH_WIRE_MAGIC, 1 };
	struct fdh_wire_reply reply;
	int sv[2], memfd = memfd_create("m", MFD_CLOEXEC);
	pid_t client;

	ASSERT_GE(memfd, 0);
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
			     SOCK_NONBLOCK, 0, sv), 0);
	client = fork();
	ASSERT_GE(client, 0);
	if (client == 0) {
		struct timespec t = { 0, 50 * 1000 * 1000 };

		/* Late, in two pieces: the server must wait, not fail EAGAIN. */
		nanosleep(&t, NULL);
		if (write(sv[0], &req, sizeof(req)) != sizeof(req))
			_exit(1);
		nanosleep(&t, NULL);
		if (write(sv[0], &memfd, sizeof(memfd)) != sizeof(memfd))
			_exit(1);
		_exit(0);
	}
	EXPECT_EQ(fdh_serve_one(sv[1], NULL, 0), 1, "%s", fdh_last_error()->msg);
	waitpid(client, NULL, 0);
	ASSERT_EQ(recv(sv[0], &reply, sizeof(reply), 0), (ssize_t)sizeof(reply));
	EXPECT_EQ(reply.status, 0);
	EXPECT_EQ(reply.n, 1);
}

TEST_HARNESS_MAIN
