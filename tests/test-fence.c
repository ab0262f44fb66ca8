// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fdh_fence_fds(): after a handover the source fences the numbers it
 * handed over.  Each test runs in its own forked process (the harness), so
 * the filter it installs dies with it; a test that needs an unfenced
 * process or one that may be killed forks it before fencing.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <linux/close_range.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fdhandover.h"
#include "harness.h"

/* "Key:\tvalue" of /proc/thread-self/status as a number; -1 if absent. */
static long status_value(const char *key)
{
	char line[256];
	size_t len = strlen(key);
	long value = -1;
	FILE *f = fopen("/proc/thread-self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, len) == 0 && line[len] == ':') {
			value = strtol(line + len + 1, NULL, 10);
			break;
		}
	fclose(f);
	return value;
}

/* seccomp(2) with TSYNC (libseccomp API level 2) or SKIP. */
#define REQUIRE_SECCOMP()						\
	do {								\
		if (seccomp_api_get() < 2)				\
			SKIP("no seccomp(2) with TSYNC here (libseccomp API level %u)", \
			     seccomp_api_get());			\
	} while (0)

#define FENCE(fds, n)							\
	ASSERT_EQ(fdh_fence_fds((fds), (n), 0), 0, "%s",		\
		  fdh_last_error()->msg)

/* call must fail with -1 and EBADF: the fence, not the file, refused it. */
#define ASSERT_FENCED(call, what)					\
	do {								\
		long _r;						\
		int _e;							\
		errno = 0;						\
		_r = (long)(call);					\
		_e = errno;						\
		ASSERT_EQ(_r, -1, "%s on a fenced fd must fail", what);	\
		ASSERT_EQ(_e, EBADF, "%s must fail with EBADF, got %s",	\
			  what, strerror(_e));				\
	} while (0)

/* A refused fence leaves this thread without a filter. */
#define ASSERT_NO_FILTER()						\
	do {								\
		ASSERT_EQ(status_value("Seccomp"), 0,			\
			  "a refused fence must install no filter");	\
		ASSERT_LE(status_value("Seccomp_filters"), 0);		\
	} while (0)

/* ... and, refused before the kernel is asked, without no_new_privs. */
#define ASSERT_NOTHING_INSTALLED()					\
	do {								\
		ASSERT_NO_FILTER();					\
		ASSERT_EQ(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0,	\
			  "a refused fence must not set no_new_privs");	\
	} while (0)

#define ASSERT_REFUSED(call, want)					\
	do {								\
		int _r = (call);					\
		ASSERT_EQ(_r, want, "%s", fdh_last_error()->msg);	\
		ASSERT_EQ(fdh_last_error()->code, want);		\
		ASSERT_NE(fdh_last_error()->msg[0], '\0',		\
			  "a refusal must say why");			\
		ASSERT_NOTHING_INSTALLED();				\
	} while (0)

TEST(fenced_pipe_read_and_write_fail_with_ebadf)
{
	int fenced[2], open_[2];
	char c = 'x';

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(fenced, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(open_, O_CLOEXEC), 0);
	ASSERT_EQ(write(fenced[1], &c, 1), 1, "before the fence it works");
	FENCE(fenced, 2);

	ASSERT_FENCED(write(fenced[1], &c, 1), "write()");
	ASSERT_FENCED(read(fenced[0], &c, 1), "read() with a byte pending");
	ASSERT_EQ(status_value("Seccomp"), 2, "SECCOMP_MODE_FILTER");
	ASSERT_EQ(status_value("Seccomp_filters"), 1);

	ASSERT_EQ(write(open_[1], &c, 1), 1, "an unfenced fd must still work: %m");
	ASSERT_EQ(read(open_[0], &c, 1), 1, "an unfenced fd must still work: %m");
}

TEST(fenced_vector_and_positioned_io_fail_with_ebadf)
{
	char buf[8] = "fenced!";
	struct iovec iov = { buf, sizeof(buf) };
	int fenced, open_;

	REQUIRE_SECCOMP();
	fenced = memfd_create("fenced", MFD_CLOEXEC);
	open_ = memfd_create("open", MFD_CLOEXEC);
	ASSERT_GE(fenced, 0);
	ASSERT_GE(open_, 0);
	ASSERT_EQ(pwrite(fenced, buf, sizeof(buf), 0), sizeof(buf));
	FENCE(&fenced, 1);

	ASSERT_FENCED(readv(fenced, &iov, 1), "readv()");
	ASSERT_FENCED(writev(fenced, &iov, 1), "writev()");
	ASSERT_FENCED(pread(fenced, buf, sizeof(buf), 0), "pread64()");
	ASSERT_FENCED(pwrite(fenced, buf, sizeof(buf), 0), "pwrite64()");
	ASSERT_FENCED(preadv(fenced, &iov, 1, 0), "preadv()");
	ASSERT_FENCED(pwritev(fenced, &iov, 1, 0), "pwritev()");
	ASSERT_FENCED(preadv2(fenced, &iov, 1, 0, 0), "preadv2()");
	ASSERT_FENCED(pwritev2(fenced, &iov, 1, 0, 0), "pwritev2()");
	ASSERT_FENCED(lseek(fenced, 0, SEEK_SET), "lseek() (the offset is shared)");
	ASSERT_FENCED(ftruncate(fenced, 0), "ftruncate()");
	ASSERT_FENCED(fallocate(fenced, 0, 0, 4096), "fallocate()");

	ASSERT_EQ(pwritev2(open_, &iov, 1, 0, 0), sizeof(buf), "%m");
	ASSERT_EQ(preadv(open_, &iov, 1, 0), sizeof(buf), "%m");
	ASSERT_EQ(ftruncate(open_, 0), 0, "%m");
}

/*
 * A raw syscall whose fd register has garbage above bit 31 still names the
 * fd (the kernel reads 32 bits): the fence must compare the same way.
 */
TEST(fence_ignores_the_upper_half_of_the_fd_register)
{
	int p[2];
	char c = 'x';

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	FENCE(&p[1], 1);
	ASSERT_FENCED(syscall(SYS_write, 0xdead00000000ul | (unsigned long)p[1], &c, 1ul),
		      "write() with garbage in the upper half of the fd");
}

TEST(close_of_a_fenced_fd_works_and_the_number_stays_fenced)
{
	int fenced[2], other[2];
	char c = 'x';

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(fenced, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(other, O_CLOEXEC), 0);
	FENCE(&fenced[1], 1);

	ASSERT_EQ(close(fenced[1]), 0, "close() stays allowed: %m");
	ASSERT_EQ(write(other[1], &c, 1), 1, "%m");
	/* The fence is on the number: a file opened on it is fenced too. */
	ASSERT_EQ(dup2(other[1], fenced[1]), fenced[1],
		  "dup2() onto a fenced number stays allowed: %m");
	ASSERT_FENCED(write(fenced[1], &c, 1), "write() on a reused fenced number");
	ASSERT_EQ(write(other[1], &c, 1), 1, "the same pipe by its own number: %m");
	/* fenced[1] stays occupied until exit, as the API asks. */
}

TEST(keep_open_keeps_the_fenced_number_taken)
{
	int fenced[2], other[2];
	char c = 'x';

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(fenced, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(other, O_CLOEXEC), 0);
	ASSERT_EQ(fdh_fence_fds(&fenced[1], 1, FDH_FENCE_KEEP_OPEN), 0, "%s",
		  fdh_last_error()->msg);

	ASSERT_FENCED(close(fenced[1]), "close() of a kept-open fenced fd");
	ASSERT_GE(fcntl(fenced[1], F_GETFD), 0, "the fd is still open: %m");
	ASSERT_FENCED(dup2(other[1], fenced[1]), "dup2() onto a kept-open number");
	ASSERT_FENCED(dup3(other[1], fenced[1], O_CLOEXEC), "dup3() onto it");
	errno = 0;
	ASSERT_EQ(syscall(SYS_close_range, 0u, ~0u, 0u), -1,
		  "close_range() over a kept-open number fails");
	ASSERT_EQ(errno, ENOSYS, "as unsupported, so callers close fd by fd");
	ASSERT_FENCED(write(fenced[1], &c, 1), "write() stays fenced");
	ASSERT_GE(fcntl(fenced[1], F_GETFD), 0,
		  "still open, so no new file can land on the number: %m");
	/* Other numbers close as usual, and close_range() past the fence too. */
	ASSERT_EQ(close(other[0]), 0, "%m");
	ASSERT_EQ(syscall(SYS_close_range, (unsigned int)fenced[1] + 1, ~0u, 0u), 0,
		  "close_range() above the fenced number: %m");
}

static ssize_t send_text(int fd, const char *text)
{
	struct iovec iov = { (void *)text, strlen(text) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	return sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static ssize_t recv_text(int fd, char *buf, size_t size)
{
	struct iovec iov = { buf, size - 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = '\0';
	return n;
}

/*
 * other: a process forked before the fence, holding the same open file as
 * our fenced end.  It waits for a byte on go, then receives and sends on
 * its copy; exit status 0 means both worked.
 */
static void other_process(int sock, int go)
{
	char buf[32], c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (read(go, &c, 1) != 1)
		_exit(10);
	if (recv_text(sock, buf, sizeof(buf)) < 0 || strcmp(buf, "from-peer") != 0)
		_exit(11);
	if (send_text(sock, "from-other") != (ssize_t)strlen("from-other"))
		_exit(12);
	_exit(0);
}

TEST(fence_is_per_process_not_per_open_file)
{
	int sv[2], go[2], status;
	char buf[32];
	pid_t other;

	REQUIRE_SECCOMP();
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
	other = fork();
	ASSERT_GE(other, 0, "fork: %m");
	if (other == 0)
		other_process(sv[0], go[0]);

	FENCE(&sv[0], 1);
	/* A message is pending on the fenced end: the fence, not an empty
	 * queue, must refuse it, and leave it there. */
	ASSERT_EQ(send_text(sv[1], "from-peer"), strlen("from-peer"),
		  "the peer end is unfenced: %m");
	ASSERT_FENCED(recv_text(sv[0], buf, sizeof(buf)), "recvmsg()");
	ASSERT_FENCED(recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT), "recvfrom()");
	ASSERT_FENCED(send_text(sv[0], "from-fenced"), "sendmsg()");
	ASSERT_FENCED(send(sv[0], "x", 1, MSG_NOSIGNAL), "sendto()");

	/* The other process's copy of the same open file is not fenced. */
	ASSERT_EQ(write(go[1], "g", 1), 1);
	ASSERT_EQ(waitpid(other, &status, 0), other);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "the other process must use the open file freely (status %#x)",
		    status);
	ASSERT_EQ(recv_text(sv[1], buf, sizeof(buf)), strlen("from-other"), "%m");
	ASSERT_STREQ(buf, "from-other");
}

TEST(fenced_socket_cannot_accept_listen_shutdown_or_be_tuned)
{
	struct sockaddr_un autobind = { .sun_family = AF_UNIX };
	int lsock, sv[2], one = 1, value = 0;
	socklen_t len = sizeof(value);
	int fenced[2];

	REQUIRE_SECCOMP();
	lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_GE(lsock, 0);
	/* An address of just the family: the kernel autobinds an abstract name. */
	ASSERT_EQ(bind(lsock, (struct sockaddr *)&autobind, sizeof(sa_family_t)), 0, "%m");
	ASSERT_EQ(listen(lsock, 1), 0);
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fenced[0] = lsock;
	fenced[1] = sv[0];
	FENCE(fenced, 2);

	ASSERT_FENCED(accept4(lsock, NULL, NULL, SOCK_NONBLOCK), "accept4()");
	ASSERT_FENCED(accept(lsock, NULL, NULL), "accept()");
	ASSERT_FENCED(listen(lsock, 8), "listen()");
	ASSERT_FENCED(shutdown(sv[0], SHUT_RDWR), "shutdown() (it would end the successor's stream)");
	ASSERT_FENCED(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)),
		      "setsockopt()");
	ASSERT_EQ(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &value, &len), 0,
		  "getsockopt() only reads and stays allowed: %m");
	ASSERT_EQ(value, SOCK_STREAM);
	ASSERT_EQ(shutdown(sv[1], SHUT_WR), 0, "the unfenced peer: %m");
}

TEST(fenced_eventfd_ioctl_read_and_write_fail_with_ebadf)
{
	uint64_t v = 1;
	int fenced, open_, n = 0, on = 1;

	REQUIRE_SECCOMP();
	fenced = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	open_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_GE(fenced, 0);
	ASSERT_GE(open_, 0);
	ASSERT_EQ(write(fenced, &v, sizeof(v)), sizeof(v));
	/* Unfenced, an eventfd answers FIONREAD with ENOTTY, not EBADF. */
	errno = 0;
	ASSERT_EQ(ioctl(open_, FIONREAD, &n), -1);
	ASSERT_NE(errno, EBADF);
	FENCE(&fenced, 1);

	ASSERT_FENCED(ioctl(fenced, FIONREAD, &n), "ioctl(FIONREAD)");
	ASSERT_FENCED(ioctl(fenced, FIONBIO, &on), "ioctl(FIONBIO)");
	ASSERT_FENCED(read(fenced, &v, sizeof(v)), "eventfd read() with a count pending");
	ASSERT_FENCED(write(fenced, &v, sizeof(v)), "eventfd write()");

	ASSERT_EQ(ioctl(open_, FIONBIO, &on), 0, "generic ioctls on an unfenced fd: %m");
	ASSERT_EQ(write(open_, &v, sizeof(v)), sizeof(v), "%m");
	ASSERT_EQ(read(open_, &v, sizeof(v)), sizeof(v), "%m");
}

TEST(fenced_fd_fails_on_either_end_of_zero_copy_calls)
{
	int fenced[2], open_[2], memfd, other_memfd;
	off_t off = 0;

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(fenced, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(open_, O_CLOEXEC), 0);
	memfd = memfd_create("zero-copy", MFD_CLOEXEC);
	other_memfd = memfd_create("zero-copy-other", MFD_CLOEXEC);
	ASSERT_GE(memfd, 0);
	ASSERT_GE(other_memfd, 0);
	ASSERT_EQ(write(open_[1], "abcd", 4), 4);
	ASSERT_EQ(write(fenced[1], "abcd", 4), 4);
	ASSERT_EQ(write(other_memfd, "abcd", 4), 4);
	FENCE(fenced, 2);

	ASSERT_FENCED(splice(fenced[0], NULL, open_[1], NULL, 1, SPLICE_F_NONBLOCK),
		      "splice() from a fenced fd");
	ASSERT_FENCED(splice(open_[0], NULL, fenced[1], NULL, 1, SPLICE_F_NONBLOCK),
		      "splice() into a fenced fd");
	ASSERT_FENCED(tee(fenced[0], open_[1], 1, SPLICE_F_NONBLOCK), "tee() from a fenced fd");
	ASSERT_FENCED(tee(open_[0], fenced[1], 1, SPLICE_F_NONBLOCK), "tee() into a fenced fd");
	ASSERT_FENCED(sendfile(fenced[1], other_memfd, &off, 1), "sendfile() into a fenced fd");
	ASSERT_FENCED(sendfile(open_[1], fenced[0], NULL, 1), "sendfile() from a fenced fd");
	ASSERT_FENCED(copy_file_range(fenced[0], NULL, memfd, NULL, 1, 0),
		      "copy_file_range() from a fenced fd");
	ASSERT_FENCED(copy_file_range(other_memfd, &off, fenced[1], NULL, 1, 0),
		      "copy_file_range() into a fenced fd");

	ASSERT_EQ(splice(open_[0], NULL, memfd, NULL, 4, 0), 4,
		  "splice() between unfenced fds: %m");
}

TEST(fenced_memfd_cannot_be_mapped_but_anonymous_maps_work)
{
	void *p;
	int memfd;

	REQUIRE_SECCOMP();
	memfd = memfd_create("guest-ram", MFD_CLOEXEC);
	ASSERT_GE(memfd, 0);
	ASSERT_EQ(ftruncate(memfd, 4096), 0);
	FENCE(&memfd, 1);

	ASSERT_FENCED(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0),
		      "mmap() of a fenced memfd");
	/* MAP_ANONYMOUS ignores the fd argument, whatever number it holds. */
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, memfd, 0);
	ASSERT_TRUE(p != MAP_FAILED, "an anonymous map naming the number: %m");
	munmap(p, 4096);
}

TEST(fenced_fd_cannot_be_aliased_or_have_its_status_flags_changed)
{
	int p[2], flags;

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	FENCE(&p[1], 1);

	ASSERT_FENCED(dup(p[1]), "dup()");
	ASSERT_FENCED(dup2(p[1], 100), "dup2() from a fenced fd");
	ASSERT_FENCED(dup3(p[1], 100, O_CLOEXEC), "dup3() from a fenced fd");
	ASSERT_FENCED(fcntl(p[1], F_DUPFD, 100), "fcntl(F_DUPFD)");
	ASSERT_FENCED(fcntl(p[1], F_DUPFD_CLOEXEC, 100), "fcntl(F_DUPFD_CLOEXEC)");
	ASSERT_FENCED(fcntl(p[1], F_SETFL, O_NONBLOCK),
		      "fcntl(F_SETFL) (status flags are shared with the successor)");
	flags = fcntl(p[1], F_GETFL);
	ASSERT_GE(flags, 0, "fcntl(F_GETFL) stays allowed: %m");
	ASSERT_EQ(flags & O_NONBLOCK, 0, "the refused F_SETFL changed nothing");
}

/* pidfd_getfd() of our own fenced number would be an unfenced dup(). */
TEST(fenced_fd_cannot_be_pulled_back_with_pidfd_getfd)
{
	int p[2], pidfd, copy;

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (pidfd < 0)
		SKIP("pidfd_open: %m");
	copy = (int)syscall(SYS_pidfd_getfd, pidfd, p[0], 0);
	if (copy < 0)
		SKIP("pidfd_getfd of our own fd refused before the fence: %m");
	close(copy);
	FENCE(&p[1], 1);
	ASSERT_FENCED(syscall(SYS_pidfd_getfd, pidfd, p[1], 0),
		      "pidfd_getfd() of our own fenced number");
	copy = (int)syscall(SYS_pidfd_getfd, pidfd, p[0], 0);
	ASSERT_GE(copy, 0, "an unfenced number still can: %m");
}

/*
 * fcntl: only F_GETFD, F_SETFD and F_GETFL.  Each of these changed what
 * the successor shares (owner and signal of the open file, pipe size,
 * lease, seals, locks of the inode) and succeeded before.
 */
TEST(fenced_fd_fcntl_allows_only_getfd_setfd_getfl)
{
	struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct f_owner_ex owner = { F_OWNER_PID, 0 };
	int memfd, p[2], file;
	char path[] = "/tmp/fdh-fence-XXXXXX";

	REQUIRE_SECCOMP();
	memfd = memfd_create("sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ASSERT_GE(memfd, 0);
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	file = mkstemp(path);
	ASSERT_GE(file, 0);
	unlink(path);
	int fenced[] = { memfd, p[0], file };
	FENCE(fenced, 3);

	ASSERT_FENCED(fcntl(memfd, F_SETOWN, getpid()), "fcntl(F_SETOWN)");
	ASSERT_FENCED(fcntl(memfd, F_SETOWN_EX, &owner), "fcntl(F_SETOWN_EX)");
	ASSERT_FENCED(fcntl(memfd, F_SETSIG, SIGUSR1), "fcntl(F_SETSIG)");
	ASSERT_FENCED(fcntl(p[0], F_SETPIPE_SZ, 1 << 16), "fcntl(F_SETPIPE_SZ)");
	ASSERT_FENCED(fcntl(file, F_SETLEASE, F_WRLCK), "fcntl(F_SETLEASE)");
	ASSERT_FENCED(fcntl(memfd, F_ADD_SEALS, F_SEAL_GROW), "fcntl(F_ADD_SEALS)");
	ASSERT_FENCED(fcntl(file, F_OFD_SETLK, &lk), "fcntl(F_OFD_SETLK)");
	ASSERT_FENCED(fcntl(file, F_OFD_SETLKW, &lk), "fcntl(F_OFD_SETLKW)");
	ASSERT_FENCED(fcntl(file, F_SETLK, &lk), "fcntl(F_SETLK)");
	ASSERT_FENCED(fcntl(file, F_SETLKW, &lk), "fcntl(F_SETLKW)");
	ASSERT_FENCED(fcntl(memfd, F_GET_SEALS), "fcntl(F_GET_SEALS): only three commands pass");
	ASSERT_FENCED(fcntl(memfd, 0x7fff), "an unknown command");
	ASSERT_EQ(fcntl(memfd, F_GETFD), FD_CLOEXEC, "fcntl(F_GETFD): %m");
	ASSERT_EQ(fcntl(memfd, F_SETFD, FD_CLOEXEC), 0, "fcntl(F_SETFD): %m");
	ASSERT_GE(fcntl(memfd, F_GETFL), 0, "fcntl(F_GETFL): %m");
	/* Nothing changed behind the refusals. */
	ASSERT_EQ(fcntl(memfd, F_GETOWN), -1, "F_GETOWN is refused too");
}

TEST(fenced_fd_cannot_be_flocked_or_have_its_inode_changed)
{
	char path[] = "/tmp/fdh-fence-XXXXXX";
	int file, dir;
	char buf[256];

	REQUIRE_SECCOMP();
	file = mkstemp(path);
	ASSERT_GE(file, 0);
	unlink(path);
	dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_GE(dir, 0);
	int fenced[] = { file, dir };
	FENCE(fenced, 2);

	ASSERT_FENCED(flock(file, LOCK_EX | LOCK_NB), "flock()");
	ASSERT_FENCED(fchmod(file, 0644), "fchmod()");
	ASSERT_FENCED(fchown(file, getuid(), getgid()), "fchown()");
	ASSERT_FENCED(fsetxattr(file, "user.fdh", "x", 1, 0), "fsetxattr()");
	ASSERT_FENCED(fremovexattr(file, "user.fdh"), "fremovexattr()");
	ASSERT_FENCED(syscall(SYS_getdents64, dir, buf, sizeof(buf)),
		      "getdents64() (moves the shared directory offset)");
}

TEST(fenced_epoll_fd_cannot_be_waited_on_or_changed)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ep, other, p[2];

	REQUIRE_SECCOMP();
	ep = epoll_create1(EPOLL_CLOEXEC);
	other = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_GE(ep, 0);
	ASSERT_GE(other, 0);
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	ASSERT_EQ(epoll_ctl(other, EPOLL_CTL_ADD, ep, &ev), 0);
	FENCE(&ep, 1);

	ASSERT_FENCED(epoll_wait(ep, &ev, 1, 0), "epoll_wait() (takes events)");
	ASSERT_FENCED(epoll_pwait(ep, &ev, 1, 0, NULL), "epoll_pwait()");
	ASSERT_FENCED(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev),
		      "epoll_ctl() on the fenced epoll fd (its interest list is shared)");
	ASSERT_EQ(epoll_ctl(other, EPOLL_CTL_DEL, ep, NULL), 0,
		  "unregistering the fenced fd from another epoll stays allowed: %m");
}

/*
 * recvmmsg_time64 exists only on 32-bit ABIs (x86_64's recvmmsg already
 * takes a 64-bit timespec): libseccomp resolves the name to a pseudo
 * number here, which it leaves out of a native filter, and the fence
 * lists it for the ABIs that have it.  i386 calls pass the fence anyway
 * (a foreign ABI; see foreign_abi_calls_pass_the_fence).
 */
TEST(recvmmsg_time64_is_listed_where_the_abi_has_it)
{
	int native = seccomp_syscall_resolve_name("recvmmsg_time64");
	int i386 = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86,
						     "recvmmsg_time64");
	int p[2];

	REQUIRE_SECCOMP();
#if defined(__x86_64__)
	ASSERT_LT(native, 0, "no native recvmmsg_time64 on x86_64 (%d)", native);
	ASSERT_EQ(i386, 417, "recvmmsg_time64 is syscall 417 on i386");
#else
	(void)native;
	(void)i386;
#endif
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	FENCE(&p[0], 1);
	ASSERT_FENCED(recvmmsg(p[0], NULL, 0, 0, NULL), "recvmmsg()");
}

/*
 * What QEMU's qemu_close_all_open_fd() does in a helper it forks (and
 * systemd's close_all_fds(), CPython's os.closerange()): close_range(),
 * and if that fails, one pass over /proc/self/fd closing each fd.
 */
static void close_all_from(unsigned int first)
{
	struct dirent *de;
	DIR *dir;

	if (syscall(SYS_close_range, first, ~0u, 0u) == 0)
		return;
	dir = opendir("/proc/self/fd");
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] != '.' && fd >= (int)first && fd != dirfd(dir))
			close(fd);
	}
	closedir(dir);
}

/*
 * Under FDH_FENCE_KEEP_OPEN, a helper forked later that closes "every fd
 * from 3" closes every unfenced fd and keeps the fenced ones: close_range()
 * fails with ENOSYS, which callers take as "not supported" and close fd by
 * fd.  Before, it failed with EBADF, which QEMU answered the same way but
 * a caller that checks for ENOSYS takes as failure.
 */
TEST(keep_open_lets_a_forked_helper_close_everything_else)
{
	int fenced[2], other[2], status;
	pid_t helper;

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(fenced, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(other, O_CLOEXEC), 0);
	ASSERT_EQ(fdh_fence_fds(&fenced[0], 1, FDH_FENCE_KEEP_OPEN), 0, "%s",
		  fdh_last_error()->msg);
	helper = fork();
	ASSERT_GE(helper, 0);
	if (helper == 0) {
		if (syscall(SYS_close_range, 3u, ~0u, 0u) != -1 || errno != ENOSYS)
			_exit(10);
		if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0)
			_exit(11);
		close_all_from(3);
		if (fcntl(other[0], F_GETFD) != -1 || fcntl(other[1], F_GETFD) != -1)
			_exit(12);	/* an unfenced fd survived */
		if (fcntl(fenced[0], F_GETFD) < 0)
			_exit(13);	/* the fenced number was freed */
		_exit(0);
	}
	ASSERT_EQ(waitpid(helper, &status, 0), helper);
	ASSERT_TRUE(WIFEXITED(status), "status %#x", status);
	ASSERT_EQ(WEXITSTATUS(status), 0,
		  "10: close_range not ENOSYS, 11: CLOEXEC refused, 12: other fd left open, 13: fenced fd closed");
}

static int open_many(int *fds, size_t n);

/* A range that holds no fenced number closes as usual below and above. */
TEST(keep_open_close_range_outside_the_fenced_numbers_works)
{
	int fds[4];

	REQUIRE_SECCOMP();
	ASSERT_EQ(open_many(fds, 4), 0);
	ASSERT_EQ(fdh_fence_fds(&fds[1], 2, FDH_FENCE_KEEP_OPEN), 0, "%s",
		  fdh_last_error()->msg);
	ASSERT_EQ(syscall(SYS_close_range, (unsigned int)fds[0],
			  (unsigned int)fds[0], 0u), 0,
		  "below the lowest fenced number: %m");
	ASSERT_EQ(syscall(SYS_close_range, (unsigned int)fds[3], ~0u, 0u), 0,
		  "above the highest: %m");
	ASSERT_GE(fcntl(fds[1], F_GETFD), 0);
	ASSERT_GE(fcntl(fds[2], F_GETFD), 0);
}

TEST(bookkeeping_calls_on_a_fenced_fd_still_work)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct stat st;
	int p[2], ep;

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_GE(ep, 0);
	ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), 0);
	FENCE(&p[0], 1);

	ASSERT_EQ(fstat(p[0], &st), 0, "fstat(): %m");
	ASSERT_TRUE(S_ISFIFO(st.st_mode));
	ASSERT_EQ(fcntl(p[0], F_GETFD), FD_CLOEXEC, "fcntl(F_GETFD): %m");
	ASSERT_EQ(fcntl(p[0], F_SETFD, 0), 0, "fcntl(F_SETFD) is per process: %m");
	ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL), 0,
		  "a shutdown must still unregister a fenced fd: %m");
	ASSERT_EQ(close(p[0]), 0, "%m");
	ASSERT_EQ(dup2(p[1], p[0]), p[0], "keep the fenced number occupied: %m");
}

/* Effective capabilities of this thread, via capget(2). */
static int cap_get(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };

	return (int)syscall(SYS_capget, &hdr, data);
}

static bool has_cap_sys_admin(void)
{
	struct __user_cap_data_struct data[2];

	return cap_get(data) == 0 &&
	       (data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &
		CAP_TO_MASK(CAP_SYS_ADMIN));
}

struct fence_thread {
	int go;			/* read end: the thread waits for a byte */
	int fd;			/* the fd to write */
	int result;		/* write()'s result */
	int error;		/* its errno */
	long seccomp_filters;	/* Seccomp_filters of the thread itself */
	long no_new_privs;	/* NoNewPrivs of the thread itself */
};

static void *fence_thread_main(void *arg)
{
	struct fence_thread *t = arg;
	char c;

	if (t->go >= 0 && read(t->go, &c, 1) != 1)
		return NULL;
	errno = 0;
	t->result = (int)write(t->fd, "t", 1);
	t->error = errno;
	t->seccomp_filters = status_value("Seccomp_filters");
	t->no_new_privs = status_value("NoNewPrivs");
	return NULL;
}

/*
 * A thread started now that writes to a new pipe (t->fd) once a byte comes
 * on *ret_go.  0 or -errno.
 */
static int start_waiting_thread(struct fence_thread *t, int *ret_go,
				pthread_t *thread)
{
	int p[2], go[2];

	if (pipe2(p, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
		return -errno;
	t->go = go[0];
	t->fd = p[1];
	*ret_go = go[1];
	return -pthread_create(thread, NULL, fence_thread_main, t);
}

TEST(thread_started_before_the_fence_is_fenced)
{
	struct fence_thread t = { .result = -2 };
	pthread_t thread;
	int go;

	REQUIRE_SECCOMP();
	ASSERT_EQ(start_waiting_thread(&t, &go, &thread), 0);
	FENCE(&t.fd, 1);
	ASSERT_EQ(write(go, "g", 1), 1);
	ASSERT_EQ(pthread_join(thread, NULL), 0);

	ASSERT_EQ(t.result, -1, "TSYNC: a thread older than the fence is fenced");
	ASSERT_EQ(t.error, EBADF, "%s", strerror(t.error));
	ASSERT_EQ(t.seccomp_filters, 1);
}

TEST(thread_started_after_the_fence_is_fenced)
{
	struct fence_thread t = { .go = -1, .result = -2 };
	pthread_t thread;
	int p[2];

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	t.fd = p[1];
	FENCE(&p[1], 1);
	ASSERT_EQ(pthread_create(&thread, NULL, fence_thread_main, &t), 0);
	ASSERT_EQ(pthread_join(thread, NULL), 0);
	ASSERT_EQ(t.result, -1);
	ASSERT_EQ(t.error, EBADF, "%s", strerror(t.error));
}

/* A thread with a filter of its own cannot be synchronised. */
static void *own_filter_thread_main(void *arg)
{
	int *gate = arg;	/* [0]: report the load's result; [1]: wait here */
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r = -ENOMEM;
	char c;

	if (ctx) {
		/* Any rule makes it a real filter; acct(2) is never used here. */
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(acct), 0);
		if (r == 0)
			r = seccomp_load(ctx);
		seccomp_release(ctx);
	}
	if (write(gate[0], &r, sizeof(r)) != sizeof(r))
		return NULL;
	if (read(gate[1], &c, 1) != 1)
		return NULL;
	return NULL;
}

TEST(tsync_failure_installs_nothing)
{
	int report[2], wait_[2], gate[2], r = -1, p[2];
	pthread_t thread;

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(wait_, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	gate[0] = report[1];
	gate[1] = wait_[0];
	ASSERT_EQ(pthread_create(&thread, NULL, own_filter_thread_main, gate), 0);
	ASSERT_EQ(read(report[0], &r, sizeof(r)), sizeof(r));
	if (r != 0) {
		ASSERT_EQ(write(wait_[1], "g", 1), 1);
		pthread_join(thread, NULL);
		SKIP("a thread cannot load its own filter here: %s", strerror(-r));
	}

	r = fdh_fence_fds(&p[1], 1, 0);
	ASSERT_EQ(write(wait_[1], "g", 1), 1);
	ASSERT_EQ(pthread_join(thread, NULL), 0);
	ASSERT_EQ(r, -ESRCH, "a thread TSYNC cannot reach: %s", fdh_last_error()->msg);
	ASSERT_EQ(fdh_last_error()->code, -ESRCH);
	ASSERT_TRUE(strstr(fdh_last_error()->msg, "TSYNC") != NULL,
		    "the message names the failing step: %s", fdh_last_error()->msg);
	ASSERT_NO_FILTER();
	/* Without CAP_SYS_ADMIN no_new_privs had to be set before TSYNC
	 * could fail (documented); with it, nothing at all is left. */
	if (has_cap_sys_admin())
		ASSERT_EQ(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0);
	ASSERT_EQ(write(p[1], "x", 1), 1, "nothing is fenced: %m");
}

TEST(refuses_an_empty_or_missing_set)
{
	int p[2];

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	ASSERT_REFUSED(fdh_fence_fds(NULL, 0, 0), -EINVAL);
	ASSERT_REFUSED(fdh_fence_fds(NULL, 1, 0), -EINVAL);
	ASSERT_REFUSED(fdh_fence_fds(p, 0, 0), -EINVAL);
}

TEST(refuses_a_negative_fd)
{
	int p[2], fds[2];

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	fds[0] = p[0];
	fds[1] = -1;
	ASSERT_REFUSED(fdh_fence_fds(fds, 2, 0), -EINVAL);
	ASSERT_EQ(fdh_last_error()->entry, 1, "the entry is named");
}

TEST(refuses_unknown_flags)
{
	int p[2];

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	ASSERT_REFUSED(fdh_fence_fds(p, 2, 1u << 31), -EINVAL);
	ASSERT_REFUSED(fdh_fence_fds(p, 2, FDH_FENCE_KEEP_OPEN << 1), -EINVAL);
}

TEST(refuses_a_repeated_fd)
{
	int p[2], fds[3];

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	fds[0] = p[0];
	fds[1] = p[1];
	fds[2] = p[0];
	ASSERT_REFUSED(fdh_fence_fds(fds, 3, 0), -EINVAL);
	ASSERT_EQ(fdh_last_error()->entry, 2);
}

TEST(refuses_a_closed_fd_with_ebadf)
{
	int p[2], fds[2];

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	fds[0] = p[0];
	fds[1] = p[1];
	ASSERT_EQ(close(p[1]), 0);
	/* Fencing a free number would fence whatever is opened on it next. */
	ASSERT_REFUSED(fdh_fence_fds(fds, 2, 0), -EBADF);
	ASSERT_EQ(fdh_last_error()->entry, 1);
	ASSERT_TRUE(strstr(fdh_last_error()->msg, "not open") != NULL, "%s",
		    fdh_last_error()->msg);
}

/* Opens FDH_FENCE_MAX + 1 fds on /dev/null into fds; 0 or -errno. */
static int open_many(int *fds, size_t n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n + 64) {
		rl.rlim_cur = rl.rlim_max < n + 64 ? rl.rlim_max : n + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (size_t i = 0; i < n; i++) {
		fds[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fds[i] < 0)
			return -errno;
	}
	return 0;
}

TEST(refuses_more_than_fdh_fence_max_fds)
{
	int fds[FDH_FENCE_MAX + 1];
	int r;

	REQUIRE_SECCOMP();
	r = open_many(fds, FDH_FENCE_MAX + 1);
	if (r == -EMFILE)
		SKIP("RLIMIT_NOFILE too low for %d fds", FDH_FENCE_MAX + 1);
	ASSERT_EQ(r, 0, "%s", strerror(-r));
	ASSERT_REFUSED(fdh_fence_fds(fds, FDH_FENCE_MAX + 1, 0), -E2BIG);
	ASSERT_TRUE(strstr(fdh_last_error()->msg, "FDH_FENCE_MAX") != NULL,
		    "%s", fdh_last_error()->msg);
}

TEST(fences_fdh_fence_max_fds_at_once)
{
	int fds[FDH_FENCE_MAX];
	int r;

	REQUIRE_SECCOMP();
	r = open_many(fds, FDH_FENCE_MAX);
	if (r == -EMFILE)
		SKIP("RLIMIT_NOFILE too low for %d fds", FDH_FENCE_MAX);
	ASSERT_EQ(r, 0, "%s", strerror(-r));
	FENCE(fds, FDH_FENCE_MAX);
	ASSERT_FENCED(write(fds[0], "x", 1), "write() on the first fd");
	ASSERT_FENCED(write(fds[FDH_FENCE_MAX - 1], "x", 1), "write() on the last fd");
	ASSERT_FENCED(read(fds[FDH_FENCE_MAX / 2], &r, 1), "read() on one in the middle");
}

/* The largest set with both flags still fits one filter. */
TEST(fences_fdh_fence_max_fds_at_once_keeping_them_open)
{
	int fds[FDH_FENCE_MAX];
	int r;

	REQUIRE_SECCOMP();
	r = open_many(fds, FDH_FENCE_MAX);
	if (r == -EMFILE)
		SKIP("RLIMIT_NOFILE too low for %d fds", FDH_FENCE_MAX);
	ASSERT_EQ(r, 0, "%s", strerror(-r));
	ASSERT_EQ(fdh_fence_fds(fds, FDH_FENCE_MAX, FDH_FENCE_KEEP_OPEN), 0,
		  "%s", fdh_last_error()->msg);
	ASSERT_FENCED(write(fds[FDH_FENCE_MAX - 1], "x", 1), "write() on the last fd");
	ASSERT_FENCED(close(fds[0]), "close() of the first");
}

TEST(successive_fences_stack)
{
	int a[2], b[2], c[2];
	char x = 'x';

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(a, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(b, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(c, O_CLOEXEC), 0);
	FENCE(&a[1], 1);
	FENCE(&b[1], 1);
	ASSERT_EQ(status_value("Seccomp_filters"), 2);

	ASSERT_FENCED(write(a[1], &x, 1), "write() on the first fence's fd");
	ASSERT_FENCED(write(b[1], &x, 1), "write() on the second fence's fd");
	ASSERT_EQ(write(c[1], &x, 1), 1, "neither fence covers it: %m");
	/* Fencing a number again is allowed: it was never unfenced. */
	FENCE(&a[1], 1);
	ASSERT_FENCED(write(a[1], &x, 1), "write() on a twice-fenced fd");
}

TEST(kill_flag_kills_the_process_with_sigsys)
{
	struct rlimit no_core = { 0, 0 };
	int p[2], status;
	pid_t child;

	REQUIRE_SECCOMP();
	if (seccomp_api_get() < 3)
		SKIP("no SECCOMP_RET_KILL_PROCESS here (Linux < 4.14)");
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	child = fork();
	ASSERT_GE(child, 0, "fork: %m");
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setrlimit(RLIMIT_CORE, &no_core);
		if (fdh_fence_fds(&p[1], 1, FDH_FENCE_KILL) != 0)
			_exit(10);
		(void)!write(p[1], "x", 1);
		_exit(11);		/* the fence did not kill us */
	}
	ASSERT_EQ(waitpid(child, &status, 0), child);
	ASSERT_TRUE(WIFSIGNALED(status), "the fenced write must kill (status %#x)",
		    status);
	ASSERT_EQ(WTERMSIG(status), SIGSYS);
}

#if defined(__x86_64__)
/* getpid through the i386 ABI (int 0x80, syscall 20) in a child; its status. */
static int i386_getpid_in_child(const int *fence_fd)
{
	int status = -1;
	pid_t child = fork();

	if (child < 0)
		return -1;
	if (child == 0) {
		long ret = 20;	/* __NR_getpid on i386 */

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fence_fd && fdh_fence_fds(fence_fd, 1, 0) != 0)
			_exit(10);
		__asm__ volatile("int $0x80" : "+a"(ret) : :
				 "r8", "r9", "r10", "r11", "memory");
		_exit(ret == getpid() ? 0 : 11);
	}
	if (waitpid(child, &status, 0) != child)
		return -1;
	return status;
}

/* libseccomp would kill a thread making a foreign-ABI call; the fence must
 * not take an unrelated caller down with it. */
TEST(foreign_abi_calls_pass_the_fence)
{
	int p[2], status;

	REQUIRE_SECCOMP();
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	status = i386_getpid_in_child(NULL);
	if (status != 0)
		SKIP("no i386 syscall ABI here (int 0x80: status %#x)", status);
	status = i386_getpid_in_child(&p[1]);
	ASSERT_EQ(status, 0, "an i386 getpid() after the fence must work (status %#x)",
		  status);
}
#endif

TEST(with_cap_sys_admin_no_new_privs_stays_unset)
{
	int p[2];

	REQUIRE_SECCOMP();
	if (!has_cap_sys_admin())
		SKIP("needs CAP_SYS_ADMIN");
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	FENCE(&p[1], 1);
	ASSERT_EQ(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0,
		  "a privileged caller may still exec setuid helpers");
}

TEST(without_cap_sys_admin_no_new_privs_is_set_on_every_thread)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	struct fence_thread t = { .result = -2 };
	pthread_t thread;
	int go;

	REQUIRE_SECCOMP();
	ASSERT_EQ(start_waiting_thread(&t, &go, &thread), 0);
	/* Drop CAP_SYS_ADMIN from this thread's effective set only. */
	ASSERT_EQ(cap_get(data), 0, "capget: %m");
	data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
	ASSERT_EQ(syscall(SYS_capset, &hdr, data), 0, "capset: %m");
	ASSERT_FALSE(has_cap_sys_admin());
	ASSERT_EQ(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0);

	FENCE(&t.fd, 1);
	ASSERT_EQ(write(go, "g", 1), 1);
	ASSERT_EQ(pthread_join(thread, NULL), 0);
	ASSERT_EQ(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 1,
		  "the kernel requires no_new_privs without CAP_SYS_ADMIN");
	ASSERT_EQ(t.no_new_privs, 1, "TSYNC carries no_new_privs to every thread");
	ASSERT_EQ(t.result, -1);
	ASSERT_EQ(t.error, EBADF);
	ASSERT_FENCED(write(t.fd, "x", 1), "write()");
}

TEST_HARNESS_MAIN
