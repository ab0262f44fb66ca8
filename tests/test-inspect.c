// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fdh_inspect_fd / fdh_inspect_process / fdh_identity_from_info against a
 * real process: the fdsrc child makes each kind of fd, the test describes
 * it from the outside.  Kinds fdsrc cannot make (pidfd, epoll, files) are
 * made here and described through our own /proc/PID.
 */
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fdhandover.h"
#include "fdsrc.h"
#include "harness.h"

#define TAP_NAME "fdhtap0"
#define TAP_FLAGS (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE)
/* sizeof(struct virtio_net_hdr): what a TAP starts with. */
#define DEFAULT_VNET_HDR_SZ 10

/* Ask the child to make an fd, then describe it: its number, or -errno. */
static int make_and_inspect(struct fdsrc *src, unsigned int flags,
			    struct fdh_fd_info *ret_info, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int make_and_inspect(struct fdsrc *src, unsigned int flags,
			    struct fdh_fd_info *ret_info, const char *fmt, ...)
{
	char cmd[256];
	va_list ap;
	int fd, r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fd = fdsrc_cmd(src, "%s", cmd);
	if (fd < 0)
		return fd;
	r = fdh_inspect_fd(src->pid, fd, flags, ret_info);
	return r < 0 ? r : fd;
}

/* Make a pair in the child ("socketpair", "pipe"); describe both ends. */
static int make_and_inspect_pair(struct fdsrc *src, const char *cmd,
				 struct fdh_fd_info *ret_a,
				 struct fdh_fd_info *ret_b)
{
	int a, b, r;

	a = fdsrc_cmd2(src, &b, "%s", cmd);
	if (a < 0)
		return a;
	r = fdh_inspect_fd(src->pid, a, 0, ret_a);
	return r < 0 ? r : fdh_inspect_fd(src->pid, b, 0, ret_b);
}

/* Describe one of our own fds, as another process would see it. */
static int inspect_own(int fd, struct fdh_fd_info *ret_info)
{
	return fdh_inspect_fd(getpid(), fd, 0, ret_info);
}

/* unshare and TUN refusals mean "not here", not "broken". */
static bool cannot_have(int r)
{
	return r == -EPERM || r == -EACCES || r == -EINVAL || r == -ENOENT ||
	       r == -ENODEV || r == -EOPNOTSUPP;
}

static int pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* The first field in which two identities differ, or NULL. */
static const char *identity_diff(const struct fdh_identity *a,
				 const struct fdh_identity *b)
{
	if (a->kind != b->kind)
		return "kind";
	if (a->dev != b->dev || a->ino != b->ino)
		return "dev/ino";
	if ((a->mode & S_IFMT) != (b->mode & S_IFMT))
		return "file type";
	if (a->kind_id != b->kind_id)
		return "kind_id";
	if (strcmp(a->name, b->name) != 0)
		return "name";
	return NULL;
}

/* ------------------------------------------------------------------ */
/* A source child in our own network namespace                        */

FIXTURE(child) {
	struct fdsrc src;	/* the process whose fds are described */
	char sock_path[108];	/* bound by a test, unlinked at teardown */
};

FIXTURE_SETUP(child)
{
	ASSERT_EQ(fdsrc_start(&self->src, NULL), 0,
		  "the source child must start");
}

FIXTURE_TEARDOWN(child)
{
	fdsrc_stop(&self->src);
	if (self->sock_path[0])
		unlink(self->sock_path);
}

TEST_F(child, memfd_reports_name_size_and_seals)
{
	struct fdh_fd_info info;
	int fd;

	fd = make_and_inspect(&self->src, 0, &info, "memfd ram0 8192 %d",
			      F_SEAL_SHRINK | F_SEAL_GROW);
	ASSERT_GE(fd, 0, "a memfd must be described: %s",
		  fdh_last_error()->msg);
	ASSERT_EQ(info.kind, FDH_KIND_MEMFD, "link '%s' is a memfd",
		  info.target);
	EXPECT_EQ(info.fd, fd, "the info names the fd asked about");
	EXPECT_STREQ(info.u.memfd.name, "ram0",
		     "the name without '/memfd:' and ' (deleted)'");
	EXPECT_EQ(info.u.memfd.size, 8192, "size from stat");
	ASSERT_TRUE(info.u.memfd.seals_known,
		    "seals are readable through a /proc reopen without a pull");
	EXPECT_EQ(info.u.memfd.seals, F_SEAL_SHRINK | F_SEAL_GROW,
		  "exactly the seals the child added");
}

TEST_F(child, eventfd_reports_count_and_semaphore)
{
	static const struct {
		unsigned int count;
		bool semaphore;
	} cases[] = {
		{ 0, false },
		{ 5, true },
		/* Decimal and hex differ here: fdinfo prints it in hex. */
		{ 0x1234, false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fdh_fd_info info;
		int fd;

		fd = make_and_inspect(&self->src, 0, &info, "eventfd %u %d",
				      cases[i].count, cases[i].semaphore);
		ASSERT_GE(fd, 0, "an eventfd must be described: %s",
			  fdh_last_error()->msg);
		ASSERT_EQ(info.kind, FDH_KIND_EVENTFD, "link '%s'",
			  info.target);
		EXPECT_EQ(info.u.eventfd.count, cases[i].count,
			  "case %zu: the counter as fdinfo shows it", i);
		EXPECT_EQ(info.u.eventfd.semaphore, cases[i].semaphore,
			  "case %zu: EFD_SEMAPHORE as fdinfo shows it", i);
	}
}

TEST_F(child, eventfds_share_inode_but_differ_in_kind_id)
{
	struct fdh_fd_info a, b;
	struct fdh_identity ida, idb;

	ASSERT_GE(make_and_inspect(&self->src, 0, &a, "eventfd 0 0"), 0,
		  "first eventfd: %s", fdh_last_error()->msg);
	ASSERT_GE(make_and_inspect(&self->src, 0, &b, "eventfd 0 0"), 0,
		  "second eventfd: %s", fdh_last_error()->msg);
	fdh_identity_from_info(&a, &ida);
	fdh_identity_from_info(&b, &idb);
	EXPECT_EQ(ida.kind, FDH_KIND_EVENTFD, "the identity keeps the kind");
	EXPECT_TRUE(ida.dev == idb.dev && ida.ino == idb.ino,
		    "all eventfds share one anonymous inode");
	EXPECT_EQ(ida.kind_id, a.u.eventfd.id, "kind_id is the eventfd-id");
	EXPECT_NE(ida.kind_id, idb.kind_id,
		  "eventfd-id is what tells two eventfds apart");
}

TEST_F(child, socketpair_ends_name_each_other_as_peer)
{
	struct fdh_fd_info a, b;

	ASSERT_EQ(make_and_inspect_pair(&self->src, "socketpair", &a, &b), 0,
		  "both ends must be described: %s", fdh_last_error()->msg);
	ASSERT_EQ(a.kind, FDH_KIND_UNIX_SOCKET, "link '%s'", a.target);
	EXPECT_EQ(a.u.unix_socket.ino, a.ino, "the socket's own inode");
	EXPECT_EQ(a.u.unix_socket.type, SOCK_STREAM, "fdsrc makes streams");
	EXPECT_EQ(a.u.unix_socket.peer_ino, b.ino, "a's peer is b");
	EXPECT_EQ(b.u.unix_socket.peer_ino, a.ino, "b's peer is a");
	EXPECT_EQ(a.u.unix_socket.state, TCP_ESTABLISHED,
		  "a socketpair is connected");
}

TEST_F(child, listening_socket_reports_path_and_state)
{
	struct fdh_fd_info info;

	snprintf(self->sock_path, sizeof(self->sock_path),
		 "/tmp/fdh-inspect-%d.sock", getpid());
	ASSERT_GE(make_and_inspect(&self->src, 0, &info, "unix-listen %s",
				   self->sock_path), 0,
		  "a listening socket must be described: %s",
		  fdh_last_error()->msg);
	ASSERT_EQ(info.kind, FDH_KIND_UNIX_SOCKET, "link '%s'", info.target);
	EXPECT_STREQ(info.u.unix_socket.path, self->sock_path,
		     "the bound path, from sock_diag");
	EXPECT_EQ(info.u.unix_socket.state, TCP_LISTEN, "listen() was called");
	EXPECT_EQ(info.u.unix_socket.peer_ino, 0, "a listener has no peer");
}

TEST_F(child, pipe_ends_are_pipes_of_one_inode)
{
	struct fdh_fd_info rd, wr;

	ASSERT_EQ(make_and_inspect_pair(&self->src, "pipe", &rd, &wr), 0,
		  "both ends must be described: %s", fdh_last_error()->msg);
	EXPECT_EQ(rd.kind, FDH_KIND_PIPE, "link '%s'", rd.target);
	EXPECT_EQ(wr.kind, FDH_KIND_PIPE, "link '%s'", wr.target);
	EXPECT_EQ(rd.ino, wr.ino, "both ends are one pipe inode");
	EXPECT_EQ(rd.flags & O_ACCMODE, O_RDONLY, "fdinfo flags: read end");
	EXPECT_EQ(wr.flags & O_ACCMODE, O_WRONLY, "fdinfo flags: write end");
}

TEST_F(child, pidfd_reports_its_process)
{
	struct fdh_fd_info info;
	int pidfd = pidfd_open(self->src.pid);

	ASSERT_GE(pidfd, 0, "pidfd_open of our own child");
	ASSERT_EQ(inspect_own(pidfd, &info), 0, "%s", fdh_last_error()->msg);
	EXPECT_EQ(info.kind, FDH_KIND_PIDFD, "link '%s'", info.target);
	EXPECT_EQ(info.u.pidfd.pid, self->src.pid,
		  "fdinfo 'Pid:' names the child, not the holder");
}

TEST_F(child, closed_fd_is_ebadf)
{
	struct fdh_fd_info info;
	int fd = fdsrc_cmd(&self->src, "eventfd 0 0");

	ASSERT_GE(fd, 0, "the child must make an eventfd");
	ASSERT_EQ(fdsrc_cmd(&self->src, "close %d", fd), 0, "and close it");
	EXPECT_EQ(fdh_inspect_fd(self->src.pid, fd, 0, &info), -EBADF,
		  "a closed number is not open");
	EXPECT_EQ(fdh_last_error()->code, -EBADF, "the detail agrees");
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "fd") != NULL,
		    "the message names the fd: %s", fdh_last_error()->msg);
}

TEST_F(child, process_listing_is_complete_and_sorted)
{
	static const struct {
		const char *cmd;
		int moved_to;	/* dup2 target: out of creation order */
		enum fdh_kind kind;
	} made[] = {
		{ "eventfd 0 0", 200, FDH_KIND_EVENTFD },
		{ "memfd m 4096 0", 150, FDH_KIND_MEMFD },
		{ "pipe", 0, FDH_KIND_PIPE },
	};
	struct fdh_fd_info *infos = NULL;
	size_t n = 0, found = 0;
	int fds[3];

	for (size_t i = 0; i < 3; i++) {
		fds[i] = fdsrc_cmd(&self->src, "%s", made[i].cmd);
		ASSERT_GE(fds[i], 0, "the child must make '%s'", made[i].cmd);
		if (made[i].moved_to)
			fds[i] = fdsrc_cmd(&self->src, "dup2 %d %d", fds[i],
					   made[i].moved_to);
		ASSERT_GE(fds[i], 0, "dup2 in the child");
	}
	ASSERT_EQ(fdh_inspect_process(self->src.pid, 0, &infos, &n), 0, "%s",
		  fdh_last_error()->msg);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			EXPECT_TRUE(infos[i - 1].fd < infos[i].fd,
				    "sorted by number, no duplicates: %d then %d",
				    infos[i - 1].fd, infos[i].fd);
		for (size_t j = 0; j < 3; j++)
			if (infos[i].fd == fds[j]) {
				EXPECT_EQ(infos[i].kind, made[j].kind,
					  "fd %d ('%s')", fds[j], made[j].cmd);
				found++;
			}
	}
	free(infos);
	EXPECT_EQ(found, 3, "every fd the child made is listed");
}

/* ------------------------------------------------------------------ */
/* Processes that are gone, or not ours to read                       */

/* A child that has exited: reaped (gone) or not (a zombie). */
static pid_t exited_child(bool reap)
{
	siginfo_t si;
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	if (pid < 0)
		return -errno;
	if (reap)
		waitpid(pid, NULL, 0);
	else
		waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT);
	return pid;
}

TEST(exited_process_is_esrch)
{
	static const struct {
		bool reap;
		const char *why;
	} cases[] = {
		{ true, "a reaped process is gone, not merely without the fd" },
		{ false, "a zombie's fds are closed: it is gone too" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fdh_fd_info info;
		pid_t pid = exited_child(cases[i].reap);

		ASSERT_GT(pid, 0, "fork");
		EXPECT_EQ(fdh_inspect_fd(pid, 0, 0, &info), -ESRCH, "%s",
			  cases[i].why);
		EXPECT_EQ(fdh_last_error()->code, -ESRCH, "the detail agrees");
	}
}

TEST(process_gone_means_reaped_or_zombie)
{
	pid_t reaped = exited_child(true), zombie = exited_child(false);

	ASSERT_GT(reaped, 0, "fork");
	ASSERT_GT(zombie, 0, "fork");
	EXPECT_FALSE(fdh_process_gone(getpid()), "we run");
	EXPECT_TRUE(fdh_process_gone(reaped), "no /proc entry");
	EXPECT_TRUE(fdh_process_gone(zombie), "a zombie holds no fds");
	waitpid(zombie, NULL, 0);
}

TEST(listing_reaped_process_is_esrch)
{
	struct fdh_fd_info *infos = NULL;
	size_t n = 0;
	pid_t pid = exited_child(true);

	ASSERT_GT(pid, 0, "fork");
	EXPECT_EQ(fdh_inspect_process(pid, 0, &infos, &n), -ESRCH,
		  "the whole process is gone");
	EXPECT_TRUE(infos == NULL, "outputs untouched on failure");
}

TEST(unreadable_process_is_eacces_with_advice)
{
	struct fdh_fd_info info;
	struct fdsrc src;
	uid_t uid = fdsrc_test_uid();
	int r;

	if (getuid() != 0 || uid == 0)
		SKIP("needs root to drop to an unprivileged uid");
	ASSERT_EQ(fdsrc_start(&src, NULL), 0, "a root-owned source child");
	ASSERT_EQ(fdsrc_drop_to(uid), 0, "drop to uid %u", (unsigned)uid);
	r = fdh_inspect_fd(src.pid, 0, 0, &info);
	EXPECT_TRUE(r == -EACCES || r == -EPERM,
		    "another uid's fds are not ours to read (got %d)", r);
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "ptrace") != NULL,
		    "the message says what permission is missing: %s",
		    fdh_last_error()->msg);
	fdsrc_stop(&src);
}

TEST(same_uid_unprivileged_reads_memfd_seals)
{
	struct fdsrc_opts opts = { .uid = fdsrc_test_uid() };
	struct fdh_fd_info info;
	struct fdsrc src;

	if (getuid() != 0 || opts.uid == 0)
		SKIP("needs root to drop to an unprivileged uid");
	ASSERT_EQ(fdsrc_start(&src, &opts), 0, "a source child of uid %u",
		  (unsigned)opts.uid);
	ASSERT_EQ(fdsrc_drop_to(opts.uid), 0, "drop to the same uid");
	ASSERT_GE(make_and_inspect(&src, 0, &info, "memfd ram0 4096 %d",
				   F_SEAL_GROW), 0,
		  "ptrace read permission is enough: %s",
		  fdh_last_error()->msg);
	EXPECT_TRUE(info.u.memfd.seals_known,
		    "the /proc reopen works without CAP_SYS_PTRACE");
	EXPECT_EQ(info.u.memfd.seals, F_SEAL_GROW, "the seal the child added");
	fdsrc_stop(&src);
}

TEST(unknown_flags_are_einval)
{
	struct fdh_fd_info info;

	EXPECT_EQ(fdh_inspect_fd(getpid(), 0, 1u << 31, &info), -EINVAL,
		  "flags this version does not know are refused");
}

/* ------------------------------------------------------------------ */
/* Kinds made here, described through our own /proc/PID               */

TEST(epoll_lists_watched_fds)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct fdh_fd_info info;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int watched[2], seen = 0;

	ASSERT_GE(ep, 0, "epoll_create1");
	for (int i = 0; i < 2; i++) {
		watched[i] = eventfd(0, EFD_CLOEXEC);
		ASSERT_GE(watched[i], 0, "eventfd");
		ev.data.fd = watched[i];
		ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, watched[i], &ev), 0,
			  "epoll_ctl");
	}
	ASSERT_EQ(inspect_own(ep, &info), 0, "%s", fdh_last_error()->msg);
	ASSERT_EQ(info.kind, FDH_KIND_EPOLL, "link '%s'", info.target);
	ASSERT_EQ(info.u.epoll.n_tfds, 2, "one tfd per watched fd");
	for (uint32_t i = 0; i < info.u.epoll.n_tfds; i++)
		seen += info.u.epoll.tfds[i] == watched[0] ||
			info.u.epoll.tfds[i] == watched[1];
	EXPECT_EQ(seen, 2, "the tfds are the watched numbers");
}

TEST(regular_file_is_file_not_memfd)
{
	char path[] = "/tmp/fdh-inspect-XXXXXX";
	struct fdh_fd_info info;
	int fd = mkstemp(path);

	ASSERT_GE(fd, 0, "mkstemp");
	unlink(path);
	ASSERT_EQ(inspect_own(fd, &info), 0, "%s", fdh_last_error()->msg);
	EXPECT_EQ(info.kind, FDH_KIND_FILE, "link '%s'", info.target);
	EXPECT_TRUE(S_ISREG(info.mode), "stat through the link");
	EXPECT_TRUE(strncmp(info.target, path, strlen(path)) == 0,
		    "the target is the path: '%s'", info.target);
}

TEST(inet_socket_is_socket_keyed_by_inode)
{
	struct fdh_identity id;
	struct fdh_fd_info info;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ASSERT_GE(fd, 0, "socket(AF_INET)");
	ASSERT_EQ(inspect_own(fd, &info), 0, "%s", fdh_last_error()->msg);
	EXPECT_EQ(info.kind, FDH_KIND_SOCKET, "not AF_UNIX: '%s'",
		  info.target);
	fdh_identity_from_info(&info, &id);
	EXPECT_EQ(id.kind_id, info.ino, "a socket's identity is its inode");
}

TEST(unknown_anon_inode_is_other)
{
	struct fdh_fd_info info;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);

	ASSERT_GE(fd, 0, "timerfd_create");
	ASSERT_EQ(inspect_own(fd, &info), 0,
		  "an unknown kind is described, not refused: %s",
		  fdh_last_error()->msg);
	EXPECT_EQ(info.kind, FDH_KIND_OTHER, "no handler knows timerfds");
	EXPECT_STREQ(info.target, "anon_inode:[timerfd]", "the raw link");
}

TEST(vhost_net_is_vhost_net)
{
	struct fdh_fd_info info;
	int fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		SKIP("/dev/vhost-net: %s", strerror(errno));
	ASSERT_EQ(inspect_own(fd, &info), 0, "%s", fdh_last_error()->msg);
	EXPECT_EQ(info.kind, FDH_KIND_VHOST_NET, "link '%s'", info.target);
}

/* Our own fds of every kind made here: memfd, eventfd, pipe, unix and
 * inet sockets, epoll, pidfd, file, timerfd. */
static int make_local_fds(int *fds, size_t max)
{
	int pair[2];
	size_t n = 0;

	if (max < 10 || pipe2(pair, O_CLOEXEC) < 0)
		return -EINVAL;
	fds[n++] = pair[0];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
		return -errno;
	fds[n++] = pair[0];
	fds[n++] = memfd_create("local", MFD_CLOEXEC);
	fds[n++] = eventfd(0, EFD_CLOEXEC);
	fds[n++] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	fds[n++] = epoll_create1(EPOLL_CLOEXEC);
	fds[n++] = pidfd_open(getpid());
	fds[n++] = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	fds[n++] = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	for (size_t i = 0; i < n; i++)
		if (fds[i] < 0)
			return -errno;
	return (int)n;
}

TEST(identity_from_info_agrees_with_identity_of_fd)
{
	int fds[16], n = make_local_fds(fds, 16);

	ASSERT_GT(n, 0, "making local fds: %s", strerror(-n));
	for (int i = 0; i < n; i++) {
		struct fdh_identity from_info, of_fd;
		struct fdh_fd_info info;
		const char *diff;

		ASSERT_EQ(inspect_own(fds[i], &info), 0, "%s",
			  fdh_last_error()->msg);
		ASSERT_EQ(fdh_identity_of_fd(fds[i], &of_fd), 0, "%s",
			  fdh_last_error()->msg);
		fdh_identity_from_info(&info, &from_info);
		diff = identity_diff(&from_info, &of_fd);
		EXPECT_TRUE(diff == NULL,
			    "fd %d '%s' (%s): the manifest would expect what a pull then finds, differs in %s",
			    fds[i], info.target, fdh_kind_name(info.kind),
			    diff ? diff : "");
	}
}

/* The rule fdh_pull() and `manifest verify` share, field by field. */
TEST(identity_diff_follows_each_kinds_rule)
{
	struct fdh_identity a = {
		.kind = FDH_KIND_EVENTFD, .dev = 1, .ino = 2,
		.mode = 0600, .kind_id = 7,
	}, b = a;

	EXPECT_EQ(fdh_identity_diff(&a, &b), 0u, "an identity is itself");
	b.kind_id = 8;
	EXPECT_EQ(fdh_identity_diff(&a, &b), (unsigned)FDH_IDENTITY_KIND_ID,
		  "an eventfd's id counts");
	a.kind = b.kind = FDH_KIND_FILE;
	EXPECT_EQ(fdh_identity_diff(&a, &b), 0u,
		  "a file has no kind id: dev/ino suffice");
	a.kind = FDH_KIND_VHOST_USER;
	b.kind = FDH_KIND_UNIX_SOCKET;
	b.kind_id = a.kind_id;
	EXPECT_EQ(fdh_identity_diff(&a, &b), 0u,
		  "a vhost-user socket is a unix socket to the kernel");
	b.kind = FDH_KIND_PIPE;
	EXPECT_EQ(fdh_identity_diff(&a, &b), (unsigned)FDH_IDENTITY_KIND,
		  "but not a pipe");
	a.kind = FDH_KIND_OTHER;
	EXPECT_EQ(fdh_identity_diff(&a, &b), 0u, "\"other\" says nothing of the kind");
	a.kind = b.kind = FDH_KIND_TAP;
	strcpy(b.name, "tap1");
	EXPECT_EQ(fdh_identity_diff(&a, &b), 0u, "a TAP name counts only when expected");
	strcpy(a.name, "tap0");
	b.ino = 3;
	b.mode = S_IFSOCK;
	EXPECT_EQ(fdh_identity_diff(&a, &b),
		  (unsigned)(FDH_IDENTITY_NAME | FDH_IDENTITY_INO | FDH_IDENTITY_TYPE),
		  "every differing field is reported");
}

TEST(kind_names_round_trip_and_unknown_is_einval_with_error)
{
	for (int k = 0; k < FDH_KIND__MAX; k++)
		EXPECT_EQ(fdh_kind_from_name(fdh_kind_name(k)), k, "kind %d", k);
	EXPECT_TRUE(fdh_kind_name(FDH_KIND__MAX) == NULL);
	EXPECT_EQ(fdh_kind_from_name("tapx"), -EINVAL);
	EXPECT_EQ(fdh_last_error()->code, -EINVAL, "the header's contract");
	EXPECT_TRUE(strstr(fdh_last_error()->msg, "tapx") != NULL, "%s",
		    fdh_last_error()->msg);
}

/* ------------------------------------------------------------------ */
/* A source child in a private network namespace, holding a TAP       */

FIXTURE(netns) {
	struct fdsrc src;	/* in its own netns, so the TAP is private */
	int tap_fd;		/* the child's queue of TAP_NAME */
};

FIXTURE_SETUP(netns)
{
	struct fdsrc_opts opts = { .netns = true, .tap = TAP_NAME };
	int r = fdsrc_start(&self->src, &opts);

	if (cannot_have(r))
		SKIP("no private netns with a TAP here: %s", strerror(-r));
	ASSERT_EQ(r, 0, "the netns source child must start");
	self->tap_fd = fdsrc_cmd(&self->src, "tap %s", TAP_NAME);
	ASSERT_GE(self->tap_fd, 0, "the child must attach a TAP queue");
}

FIXTURE_TEARDOWN(netns)
{
	fdsrc_stop(&self->src);
}

TEST_F(netns, tap_reports_ifname_without_pull)
{
	struct fdh_fd_info info;

	ASSERT_EQ(fdh_inspect_fd(self->src.pid, self->tap_fd, 0, &info), 0,
		  "%s", fdh_last_error()->msg);
	ASSERT_EQ(info.kind, FDH_KIND_TAP, "link '%s'", info.target);
	EXPECT_STREQ(info.u.tap.ifname, TAP_NAME, "from fdinfo 'iff:'");
	EXPECT_TRUE(!info.u.tap.details_known,
		     "flags need a pulled copy, which was not allowed");
	EXPECT_EQ(info.u.tap.vnet_hdr_sz, -1, "unknown without a pull");
}

TEST_F(netns, tap_pull_reports_flags_and_vnet_hdr_sz)
{
	struct fdh_fd_info info;

	ASSERT_EQ(fdh_inspect_fd(self->src.pid, self->tap_fd,
				 FDH_INSPECT_PULL, &info), 0,
		  "%s", fdh_last_error()->msg);
	ASSERT_EQ(info.kind, FDH_KIND_TAP, "link '%s'", info.target);
	ASSERT_TRUE(info.u.tap.details_known, "root may pull a copy");
	EXPECT_EQ(info.u.tap.iff_flags & TAP_FLAGS, TAP_FLAGS,
		  "the flags fdsrc attached with (0x%x)", info.u.tap.iff_flags);
	EXPECT_EQ(info.u.tap.vnet_hdr_sz, DEFAULT_VNET_HDR_SZ,
		  "TUNGETVNETHDRSZ of a fresh TAP");
}

TEST_F(netns, tap_pull_leaves_no_copy_behind)
{
	struct fdh_fd_info info;
	int before = fdsrc_count_own_fds();

	ASSERT_EQ(fdh_inspect_fd(self->src.pid, self->tap_fd,
				 FDH_INSPECT_PULL, &info), 0,
		  "%s", fdh_last_error()->msg);
	EXPECT_EQ(fdsrc_count_own_fds(), before,
		  "the temporary copy is closed");
}

TEST_F(netns, tap_identity_names_the_interface)
{
	struct fdh_identity id;
	struct fdh_fd_info info;

	ASSERT_EQ(fdh_inspect_fd(self->src.pid, self->tap_fd, 0, &info), 0,
		  "%s", fdh_last_error()->msg);
	fdh_identity_from_info(&info, &id);
	EXPECT_EQ(id.kind, FDH_KIND_TAP, "kind carried over");
	EXPECT_STREQ(id.name, TAP_NAME,
		     "every TAP is /dev/net/tun: the name tells them apart");
}

TEST_F(netns, socketpair_peer_found_across_namespaces)
{
	struct fdh_fd_info a, b;

	ASSERT_EQ(make_and_inspect_pair(&self->src, "socketpair", &a, &b), 0,
		  "both ends must be described: %s", fdh_last_error()->msg);
	ASSERT_EQ(a.kind, FDH_KIND_UNIX_SOCKET,
		  "a unix socket in another netns is still a unix socket");
	EXPECT_EQ(a.u.unix_socket.peer_ino, b.ino,
		  "sock_diag asked from inside the child's namespace");
}

TEST_HARNESS_MAIN
