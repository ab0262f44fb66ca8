// SPDX-License-Identifier: LGPL-2.1-or-later
/* The test source process: see fdsrc.h. */
#include "fdsrc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <seccomp.h>

#include "fdhandover.h"

#define TAP_FLAGS (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE)

/* Reply: "R first second" as text; first < 0 is -errno. */
static void reply(int ctl, int first, int second)
{
	char buf[64];
	int len = snprintf(buf, sizeof(buf), "R %d %d", first, second);

	if (send(ctl, buf, (size_t)len, MSG_NOSIGNAL) < 0)
		_exit(3);
}

static int make_memfd(const char *name, size_t size, unsigned int seals)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	unsigned char *p;

	if (fd < 0)
		return -errno;
	if (size) {
		if (ftruncate(fd, (off_t)size) < 0)
			return -errno;
		p = mmap(NULL, size, PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			return -errno;
		for (size_t i = 0; i < size; i++)
			p[i] = (unsigned char)i;
		munmap(p, size);
	}
	if (seals && fcntl(fd, F_ADD_SEALS, seals) < 0)
		return -errno;
	return fd;
}

/*
 * /dev/net/tun may be root-only (0600) where udev did not open it up, so
 * the child opens a few tun fds before dropping privileges; attaching one
 * to a persistent TAP owned by our uid needs no privilege.
 */
#define TUN_POOL 16
static int tun_pool[TUN_POOL];
static int tun_pool_n;

static int open_tun(void)
{
	if (tun_pool_n > 0)
		return tun_pool[--tun_pool_n];
	return open("/dev/net/tun", O_RDWR | O_CLOEXEC);
}

static int attach_tap(const char *ifname)
{
	struct ifreq ifr = { .ifr_flags = TAP_FLAGS };
	int fd = open_tun();

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.107s", path);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 16) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int ret_or_errno(int r)
{
	return r < 0 ? -errno : r;
}

static int become(uid_t uid);

static void child_loop(int ctl, int coop)
{
	char cmd[256], a[128];
	unsigned long long x, y;
	int pair[2], r, second;

	for (;;) {
		ssize_t n = recv(ctl, cmd, sizeof(cmd) - 1, 0);

		if (n <= 0)
			_exit(0);
		cmd[n] = '\0';
		second = -1;
		if (sscanf(cmd, "memfd %127s %llu %llu", a, &x, &y) == 3) {
			r = make_memfd(a, x, (unsigned int)y);
		} else if (sscanf(cmd, "eventfd %llu %llu", &x, &y) == 2) {
			r = ret_or_errno(eventfd((unsigned int)x,
						 EFD_CLOEXEC | (y ? EFD_SEMAPHORE : 0)));
		} else if (sscanf(cmd, "tap %127s", a) == 1) {
			r = attach_tap(a);
		} else if (strcmp(cmd, "socketpair") == 0) {
			r = ret_or_errno(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
						    0, pair));
			if (r == 0) {
				r = pair[0];
				second = pair[1];
			}
		} else if (strcmp(cmd, "pipe") == 0) {
			r = ret_or_errno(pipe2(pair, O_CLOEXEC));
			if (r == 0) {
				r = pair[0];
				second = pair[1];
			}
		} else if (sscanf(cmd, "unix-listen %127s", a) == 1) {
			r = listen_unix(a);
		} else if (sscanf(cmd, "close %llu", &x) == 1) {
			r = ret_or_errno(close((int)x));
		} else if (sscanf(cmd, "dup2 %llu %llu", &x, &y) == 2) {
			r = ret_or_errno(dup2((int)x, (int)y));
		} else if (sscanf(cmd, "identity %llu", &x) == 1) {
			struct fdh_identity id;

			r = fdh_identity_of_fd((int)x, &id);
			if (r == 0) {
				if (send(ctl, &id, sizeof(id), MSG_NOSIGNAL) < 0)
					_exit(3);
				continue;
			}
		} else if (sscanf(cmd, "become %llu", &x) == 1) {
			r = become((uid_t)x);
		} else if (strcmp(cmd, "serve") == 0) {
			r = fdh_serve_one(coop, NULL, 0);
		} else if (strcmp(cmd, "exit") == 0) {
			_exit(0);
		} else {
			r = -EINVAL;
		}
		reply(ctl, r, second);
	}
}

static int become(uid_t uid)
{
	if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		return -errno;
	/* A uid change clears the dumpable flag, and pidfd_getfd (ptrace
	 * ATTACH) from a same-uid process needs it set. */
	if (prctl(PR_SET_DUMPABLE, 1) < 0)
		return -errno;
	return 0;
}

int fdsrc_drop_to(uid_t uid)
{
	return become(uid);
}

/* Create the persistent TAP, owned by uid, inside our fresh netns. */
static int make_persistent_tap(const char *ifname, uid_t uid)
{
	int fd = attach_tap(ifname);

	if (fd < 0)
		return fd;
	if (ioctl(fd, TUNSETOWNER, (unsigned long)uid) < 0 ||
	    ioctl(fd, TUNSETPERSIST, 1UL) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	close(fd);
	return 0;
}

static int child_setup(const struct fdsrc_opts *o)
{
	int r;

	if (o->netns && unshare(CLONE_NEWNET) < 0)
		return -errno;
	if (o->netns && o->tap) {
		r = make_persistent_tap(o->tap, o->uid);
		if (r < 0)
			return r;
	}
	if (o->uid) {
		while (tun_pool_n < TUN_POOL) {
			int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

			if (fd < 0)
				break;
			tun_pool[tun_pool_n++] = fd;
		}
		r = become(o->uid);
		if (r < 0)
			return r;
	}
	if (o->not_dumpable && prctl(PR_SET_DUMPABLE, 0) < 0)
		return -errno;
	return 0;
}

static int send_fd(int sock, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char byte = 'C';
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

static int recv_fd(int sock)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char byte;
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -EPROTO;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

int fdsrc_start(struct fdsrc *s, const struct fdsrc_opts *opts)
{
	struct fdsrc_opts none = { 0 };
	const struct fdsrc_opts *o = opts ? opts : &none;
	int ctl[2], r;

	s->pid = -1;
	s->ctl = s->coop = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0)
		return -errno;
	s->pid = fork();
	if (s->pid < 0) {
		r = -errno;
		close(ctl[0]);
		close(ctl[1]);
		return r;
	}
	if (s->pid == 0) {
		int coop[2];

		close(ctl[0]);
		r = child_setup(o);
		/* After child_setup: a uid change clears the death signal. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(0);
		/* The coop pair is made here so that SO_PEERCRED and
		 * SO_PEERPIDFD name this child, not the test. */
		if (r == 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
					 coop) < 0)
			r = -errno;
		reply(ctl[1], r, 0);
		if (r < 0)
			_exit(2);
		if (send_fd(ctl[1], coop[0]) < 0)
			_exit(2);
		close(coop[0]);
		child_loop(ctl[1], coop[1]);
	}
	close(ctl[1]);
	s->ctl = ctl[0];
	r = fdsrc_reply(s);
	if (r == 0) {
		s->coop = recv_fd(s->ctl);
		if (s->coop < 0)
			r = s->coop;
	}
	if (r < 0)
		fdsrc_stop(s);
	return r;
}

__attribute__((format(printf, 2, 0)))
static int vsend(struct fdsrc *s, const char *fmt, va_list ap)
{
	char cmd[256];
	int len = vsnprintf(cmd, sizeof(cmd), fmt, ap);

	if (send(s->ctl, cmd, (size_t)len, MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

static int reply2(struct fdsrc *s, int *ret_second)
{
	char buf[sizeof(struct fdh_identity) + 1];
	int first, second;
	ssize_t n = recv(s->ctl, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return -ECONNRESET;
	buf[n] = '\0';
	if (sscanf(buf, "R %d %d", &first, &second) != 2)
		return -EPROTO;
	if (ret_second)
		*ret_second = second;
	return first;
}

int fdsrc_reply(struct fdsrc *s)
{
	return reply2(s, NULL);
}

int fdsrc_send(struct fdsrc *s, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsend(s, fmt, ap);
	va_end(ap);
	return r;
}

int fdsrc_cmd2(struct fdsrc *s, int *ret_second, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsend(s, fmt, ap);
	va_end(ap);
	return r < 0 ? r : reply2(s, ret_second);
}

void fdsrc_stop(struct fdsrc *s)
{
	/* Closing ctl ends the child even where we may no longer signal it
	 * (a test that dropped to another uid). */
	if (s->ctl >= 0)
		close(s->ctl);
	if (s->coop >= 0)
		close(s->coop);
	s->ctl = s->coop = -1;
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = -1;
	}
}

int fdsrc_count_own_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own fd */
}

uid_t fdsrc_test_uid(void)
{
	struct passwd *pw = getpwnam("nobody");

	return pw ? pw->pw_uid : 65534;
}

int fdsrc_ip(const char *fmt, ...)
{
	char args[512], cmd[600];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "timeout 10 ip %s >/dev/null 2>&1", args);
	r = system(cmd);
	if (r == -1)
		return -errno;
	return WIFEXITED(r) && WEXITSTATUS(r) == 0 ? 0 : -EIO;
}

int fdsrc_deny_syscall(const char *name, int err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r;

	if (!ctx)
		return -ENOMEM;
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO((unsigned int)err),
			     seccomp_syscall_resolve_name(name), 0);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

int fdsrc_deny_sockopt(int optname, int err)
{
	struct scmp_arg_cmp is_optname = {
		.arg = 2, .op = SCMP_CMP_EQ, .datum_a = (scmp_datum_t)optname,
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r;

	if (!ctx)
		return -ENOMEM;

	r = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO((unsigned int)err),
				   SCMP_SYS(getsockopt), 1, &is_optname);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

int fdsrc_entry(struct fdsrc *s, int remote_fd, const char *label,
		struct fdh_pull_entry *ret_entry)
{
	struct fdh_identity id;
	char buf[sizeof(id) + 64];
	ssize_t n;
	int r;

	r = fdsrc_send(s, "identity %d", remote_fd);
	if (r < 0)
		return r;
	n = recv(s->ctl, buf, sizeof(buf), 0);
	if (n == (ssize_t)sizeof(id)) {
		memcpy(&id, buf, sizeof(id));
		*ret_entry = (struct fdh_pull_entry){
			.remote_fd = remote_fd, .expect = id, .label = label,
		};
		return 0;
	}
	if (n > 0 && sscanf(buf, "R %d", &r) == 1)
		return r;
	return -EPROTO;
}

int fdsrc_make_entry(struct fdsrc *s, struct fdh_pull_entry *e,
		     const char *label, const char *cmd)
{
	int fd = fdsrc_cmd(s, "%s", cmd);

	return fd < 0 ? fd : fdsrc_entry(s, fd, label, e);
}

int fdsrc_start_unprivileged(struct fdsrc *s, const char *tap)
{
	struct fdsrc_opts opts = {
		.uid = fdsrc_test_uid(), .netns = true, .tap = tap,
	};
	int r = fdsrc_start(s, &opts);

	return r < 0 ? r : fdsrc_drop_to(opts.uid);
}

bool fdsrc_start_refused(int r)
{
	return r == -EPERM || r == -ENOENT || r == -ENODEV;
}
