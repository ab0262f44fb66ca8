// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The SCM_RIGHTS fallback: when pidfd_getfd is refused (forced here with a
 * seccomp filter) the cooperating source sends the same set, and it is
 * verified the same way.
 */
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fdh-internal.h"
#include "fdsrc.h"
#include "harness.h"

#define TAP_NAME "fdhtap1"

FIXTURE(fallback) {
	struct fdsrc child;
	struct fdh_source *src;		/* opened through the coop socket */
	int fds_before;
};

FIXTURE_SETUP(fallback)
{
	struct fdsrc_opts opts = {
		.uid = fdsrc_test_uid(), .netns = true, .tap = TAP_NAME,
	};
	int r;

	self->child.pid = -1;
	if (geteuid() != 0)
		SKIP("needs root to create the netns and TAP");
	r = fdsrc_start(&self->child, &opts);
	if (r == -EPERM || r == -ENOENT || r == -ENODEV)
		SKIP("cannot create a netns with a TAP here: %s", strerror(-r));
	ASSERT_EQ(r, 0);
	ASSERT_EQ(fdsrc_drop_to(opts.uid), 0);
	ASSERT_EQ(fdh_source_open_socket(self->child.coop, &self->src), 0,
		  "%s", fdh_last_error()->msg);
	self->fds_before = fdsrc_count_own_fds();
}

FIXTURE_TEARDOWN(fallback)
{
	fdh_source_free(self->src);
	fdsrc_stop(&self->child);
}

static int remote(struct fdsrc *child, struct fdh_pull_entry *e,
		  const char *label, const char *cmd)
{
	int fd = fdsrc_cmd(child, "%s", cmd);

	return fd < 0 ? fd : fdsrc_entry(child, fd, label, e);
}

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
			       FIXTURE(fallback) *self, int forced)
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

TEST_F(fallback, eperm_from_pidfd_getfd_falls_back_to_scm_rights)
{
	fallback_completes(_meta, self, EPERM);
}

TEST_F(fallback, enosys_from_pidfd_getfd_falls_back_to_scm_rights)
{
	fallback_completes(_meta, self, ENOSYS);
}

TEST_F(fallback, batches_more_fds_than_one_message_carries)
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

TEST_F(fallback, source_refuses_a_closed_number_and_nothing_leaks)
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

TEST_F(fallback, identity_is_verified_after_scm_rights_too)
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

TEST_F(fallback, times_out_when_the_source_does_not_serve)
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

TEST_HARNESS_MAIN
