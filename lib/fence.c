// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The source's last step: fence the fd numbers it has handed over, so that
 * a stray use after the handover fails at once (EBADF, or the process dies)
 * instead of racing the successor on the shared open file description.
 *
 * One seccomp filter per call, loaded with TSYNC so every thread is covered
 * or none is.  The filter matches fd *numbers*: it is a guard against our
 * own mistakes, not a sandbox (see fdhandover.h for what it cannot see).
 */
#include <fcntl.h>
#include <linux/close_range.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>

#include "fdh-internal.h"

/*
 * One rule: syscall name fails when argument fd_arg holds a fenced fd and,
 * if when.op is set, argument when.arg compares with when.op against
 * when.a (and when.b for SCMP_CMP_MASKED_EQ: (arg & a) == b).
 */
struct fence_rule {
	const char *name;
	unsigned int fd_arg;
	struct {
		unsigned int arg;
		enum scmp_compare op;	/* 0: no condition */
		scmp_datum_t a, b;
	} when;
};

#define FD_AT(call, pos) { call, pos, { 0, 0, 0, 0 } }
#define FD_AT_WHEN(call, pos, arg, op, a, b) { call, pos, { arg, op, a, b } }

/*
 * Calls that move data through the file or change state the successor
 * shares (offset, status flags, size, locks, seals, owner, socket state,
 * an epoll set), and calls that would make an unfenced alias of a fenced
 * number.  Names the native ABI lacks (mmap2, _llseek, recv, fcntl64,
 * recvmmsg_time64 and the like on x86_64) resolve to libseccomp's pseudo
 * numbers, which it leaves out of a native filter; they are listed for the
 * ABIs that have them.
 * Left out on purpose: close, close_range, fstat/statx, getsockopt,
 * getsockname, epoll_ctl with the number as its target, fsync —
 * bookkeeping and metadata that a clean shutdown still does and that
 * change nothing the successor sees.
 */
static const struct fence_rule fence_rules[] = {
	/* data */
	FD_AT("read", 0), FD_AT("write", 0),
	FD_AT("readv", 0), FD_AT("writev", 0),
	FD_AT("pread64", 0), FD_AT("pwrite64", 0),
	FD_AT("preadv", 0), FD_AT("pwritev", 0),
	FD_AT("preadv2", 0), FD_AT("pwritev2", 0),
	FD_AT("getdents", 0), FD_AT("getdents64", 0),
	/* sockets */
	FD_AT("recv", 0), FD_AT("recvfrom", 0), FD_AT("recvmsg", 0),
	FD_AT("recvmmsg", 0), FD_AT("recvmmsg_time64", 0),
	FD_AT("send", 0), FD_AT("sendto", 0), FD_AT("sendmsg", 0),
	FD_AT("sendmmsg", 0),
	FD_AT("accept", 0), FD_AT("accept4", 0), FD_AT("connect", 0),
	FD_AT("bind", 0), FD_AT("listen", 0), FD_AT("shutdown", 0),
	FD_AT("setsockopt", 0),
	/* an epoll fd handed over: its events and its interest list */
	FD_AT("epoll_wait", 0), FD_AT("epoll_pwait", 0),
	FD_AT("epoll_pwait2", 0), FD_AT("epoll_ctl", 0),
	/* device and file control, the inode's owner, mode and xattrs */
	FD_AT("ioctl", 0),
	FD_AT("lseek", 0), FD_AT("_llseek", 0),
	FD_AT("ftruncate", 0), FD_AT("ftruncate64", 0), FD_AT("fallocate", 0),
	FD_AT("flock", 0),
	FD_AT("fchmod", 0), FD_AT("fchown", 0), FD_AT("fchown32", 0),
	FD_AT("fsetxattr", 0), FD_AT("fremovexattr", 0),
	/*
	 * fcntl: allow F_GETFD (1), F_SETFD (2, per process) and F_GETFL (3),
	 * refuse every other command — F_DUPFD (0) and everything above 3:
	 * F_SETFL, locks, owner, signal, lease, notify, pipe size, seals,
	 * F_DUPFD_CLOEXEC and whatever comes next.  Two rules per fd where a
	 * list of setters would cost one each and miss new ones.  The
	 * comparison is on all 64 bits: garbage above cmd fails closed.
	 */
	FD_AT_WHEN("fcntl", 0, 1, SCMP_CMP_LT, F_GETFD, 0),
	FD_AT_WHEN("fcntl", 0, 1, SCMP_CMP_GT, F_GETFL, 0),
	FD_AT_WHEN("fcntl64", 0, 1, SCMP_CMP_LT, F_GETFD, 0),
	FD_AT_WHEN("fcntl64", 0, 1, SCMP_CMP_GT, F_GETFL, 0),
	/* zero-copy: either end */
	FD_AT("splice", 0), FD_AT("splice", 2),
	FD_AT("tee", 0), FD_AT("tee", 1),
	FD_AT("sendfile", 0), FD_AT("sendfile", 1),
	FD_AT("sendfile64", 0), FD_AT("sendfile64", 1),
	FD_AT("copy_file_range", 0), FD_AT("copy_file_range", 2),
	FD_AT("vmsplice", 0),
	/* a new mapping of the file; MAP_ANONYMOUS ignores the fd argument */
	FD_AT_WHEN("mmap", 4, 3, SCMP_CMP_MASKED_EQ, MAP_ANONYMOUS, 0),
	FD_AT_WHEN("mmap2", 4, 3, SCMP_CMP_MASKED_EQ, MAP_ANONYMOUS, 0),
	/* aliases: the source number only; dup2(other, fenced) stays allowed */
	FD_AT("dup", 0), FD_AT("dup2", 0), FD_AT("dup3", 0),
	/*
	 * pidfd_getfd(pidfd, fenced number) of our own pidfd is a dup().
	 * The filter cannot see whose pidfd it is, so the number is refused
	 * from any process (documented).
	 */
	FD_AT("pidfd_getfd", 1),
};

/*
 * The kernel reads an fd argument as a 32-bit int whatever the register
 * holds above it, so compare the low 32 bits only: garbage in the upper
 * half must not slip past the fence.
 */
static int add_fd_rules(scmp_filter_ctx ctx, uint32_t action, int fd,
			const char **ret_call)
{
	for (size_t i = 0; i < sizeof(fence_rules) / sizeof(fence_rules[0]); i++) {
		const struct fence_rule *rule = &fence_rules[i];
		struct scmp_arg_cmp cmp[2] = {
			SCMP_CMP(rule->fd_arg, SCMP_CMP_MASKED_EQ, 0xffffffffu,
				 (unsigned int)fd),
			{ .arg = rule->when.arg, .op = rule->when.op,
			  .datum_a = rule->when.a, .datum_b = rule->when.b },
		};
		int nr = seccomp_syscall_resolve_name(rule->name);
		int r;

		if (nr == __NR_SCMP_ERROR)	/* unknown to this libseccomp */
			continue;
		r = seccomp_rule_add_array(ctx, action, nr,
					   rule->when.op ? 2 : 1, cmp);
		if (r < 0) {
			*ret_call = rule->name;
			return r;
		}
	}
	return 0;
}

/*
 * FDH_FENCE_KEEP_OPEN: the number stays taken.  Never a kill: a process
 * that closes what it handed over on its way out must still get out.
 * close() of the number and dup2()/dup3() onto it fail with EBADF.
 */
static int add_keep_open_rules(scmp_filter_ctx ctx, int fd, const char **ret_call)
{
	struct scmp_arg_cmp cmp[1];
	const struct {
		const char *name;
		unsigned int fd_arg;
	} rules[] = { { "close", 0 }, { "dup2", 1 }, { "dup3", 1 } };

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		int nr = seccomp_syscall_resolve_name(rules[i].name);
		int r;

		if (nr == __NR_SCMP_ERROR)
			continue;
		cmp[0] = SCMP_CMP(rules[i].fd_arg, SCMP_CMP_MASKED_EQ,
				  0xffffffffu, (unsigned int)fd);
		r = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EBADF), nr, 1, cmp);
		if (r < 0) {
			*ret_call = rules[i].name;
			return r;
		}
	}
	return 0;
}

/*
 * FDH_FENCE_KEEP_OPEN and close_range(first, last, flags).  Seccomp allows
 * or refuses a whole call, it cannot close part of a range, so:
 *  - a range that may hold a fenced number fails with ENOSYS and closes
 *    nothing.  ENOSYS is what QEMU's qemu_close_all_open_fd(), systemd's
 *    close_all_fds() and CPython's os.closerange() take as "no
 *    close_range() here": they close fd by fd in one pass over
 *    /proc/self/fd, which closes every other fd and leaves the fenced ones
 *    open.  glibc's closefrom() does not get out: its fallback reads
 *    /proc/self/fd again after every pass that tried a close, so a number
 *    that never closes keeps it looping (the header says so).
 *  - a fake success would leave every fd of the range open in a helper
 *    forked later, silently; letting it through would free the numbers
 *    this flag exists to keep.
 *  - CLOSE_RANGE_CLOEXEC closes nothing and stays allowed.
 * One rule for the whole set, first <= the highest fenced number and
 * last >= the lowest: a per-fd range rule made libseccomp's filter grow
 * beyond the kernel's 4096 instructions from about 50 fds and take
 * minutes to build at 256.  A range between two fenced numbers that holds
 * none of them is refused too; the fallback above serves it the same way.
 */
static int add_close_range_rule(scmp_filter_ctx ctx, const int *fds,
				size_t n_fds)
{
	unsigned int lo = (unsigned int)fds[0], hi = (unsigned int)fds[0];
	int nr = seccomp_syscall_resolve_name("close_range");

	if (nr == __NR_SCMP_ERROR)
		return 0;
	for (size_t i = 1; i < n_fds; i++) {
		if ((unsigned int)fds[i] < lo)
			lo = (unsigned int)fds[i];
		if ((unsigned int)fds[i] > hi)
			hi = (unsigned int)fds[i];
	}
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 3,
				SCMP_A0(SCMP_CMP_LE, hi, 0),
				SCMP_A1(SCMP_CMP_GE, lo, 0),
				SCMP_A2(SCMP_CMP_MASKED_EQ, CLOSE_RANGE_CLOEXEC, 0));
}

#define FENCE_FLAGS (FDH_FENCE_KILL | FDH_FENCE_KEEP_OPEN)

static int check_fence_arguments(const int *fds, size_t n_fds,
				 unsigned int flags)
{
	if (flags & ~(unsigned int)FENCE_FLAGS)
		return fdh_fail(-EINVAL, -1,
				"fence: unknown flags %#x (known: FDH_FENCE_KILL, FDH_FENCE_KEEP_OPEN)",
				flags & ~(unsigned int)FENCE_FLAGS);
	if (n_fds > FDH_FENCE_MAX)
		return fdh_fail(-E2BIG, -1,
				"fence of %zu fds: one filter holds at most FDH_FENCE_MAX = %d; nothing was fenced (fence the rest in a second call, or hand over fewer fds)",
				n_fds, FDH_FENCE_MAX);
	if (!fds || n_fds == 0)
		return fdh_fail(-EINVAL, -1,
				"fence of %zu fds: needs an array of 1..%d fds",
				n_fds, FDH_FENCE_MAX);
	for (size_t i = 0; i < n_fds; i++) {
		if (fds[i] < 0)
			return fdh_fail(-EINVAL, (int)i,
					"fence: fds[%zu] = %d is not an fd number",
					i, fds[i]);
		for (size_t j = 0; j < i; j++)
			if (fds[j] == fds[i])
				return fdh_fail(-EINVAL, (int)i,
						"fence: fd %d is listed twice (fds[%zu] and fds[%zu])",
						fds[i], j, i);
		/* A free number would fence whatever opens it next. */
		if (fcntl(fds[i], F_GETFD) < 0)
			return fdh_fail(-EBADF, (int)i,
					"fence: fd %d (fds[%zu]) is not open; fence only the numbers you handed over, before closing them",
					fds[i], i);
	}
	return 0;
}

/* seccomp_load() with raw return codes; NNP only if the kernel insists. */
static int load_filter(scmp_filter_ctx ctx, size_t n_fds)
{
	int r = seccomp_load(ctx);

	/*
	 * -EACCES: neither no_new_privs nor CAP_SYS_ADMIN in our user
	 * namespace.  The kernel checks this before anything is installed
	 * or any thread synchronised, so trying without NNP first leaves
	 * a privileged caller free to exec setuid helpers later.
	 */
	if (r == -EACCES) {
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
		if (r == 0)
			r = seccomp_load(ctx);
	}
	switch (r) {
	case 0:
		return 0;
	case -ESRCH:
		return fdh_fail(r, -1,
				"seccomp(SECCOMP_SET_MODE_FILTER, TSYNC) fencing %zu fds: a thread has a seccomp filter of its own, so not every thread can be fenced; no filter was installed — fence before such threads install filters, or from the thread that did",
				n_fds);
	case -ENOMEM:
		return fdh_fail(r, -1,
				"seccomp(SECCOMP_SET_MODE_FILTER) fencing %zu fds: ENOMEM — out of memory, or this thread's stacked filters would pass the kernel's 32768-instruction budget (fence all handed fds in one call)",
				n_fds);
	case -EINVAL:
		return fdh_fail(r, -1,
				"seccomp(SECCOMP_SET_MODE_FILTER) fencing %zu fds: EINVAL — the process is in strict seccomp mode, or the kernel refused the filter",
				n_fds);
	default:
		return fdh_fail(r, -1, "seccomp_load() fencing %zu fds: %s",
				n_fds, strerror(-r));
	}
}

int fdh_fence_fds(const int *fds, size_t n_fds, unsigned int flags)
{
	unsigned int api = seccomp_api_get();
	const char *call = NULL;
	scmp_filter_ctx ctx;
	uint32_t action;
	int r;

	fdh_clear_error();
	r = check_fence_arguments(fds, n_fds, flags);
	if (r < 0)
		return r;
	/* API level 2: seccomp(2) with TSYNC (Linux 3.17); 3: KILL_PROCESS (4.14). */
	if (api < 2)
		return fdh_fail(-ENOSYS, -1,
				"fence: the kernel has no seccomp(2) with SECCOMP_FILTER_FLAG_TSYNC (Linux >= 3.17 with CONFIG_SECCOMP_FILTER; libseccomp API level %u)",
				api);
	if ((flags & FDH_FENCE_KILL) && api < 3)
		return fdh_fail(-EOPNOTSUPP, -1,
				"fence: FDH_FENCE_KILL needs SECCOMP_RET_KILL_PROCESS (Linux >= 4.14); fence without it to get EBADF");

	action = (flags & FDH_FENCE_KILL) ? SCMP_ACT_KILL_PROCESS :
					    SCMP_ACT_ERRNO(EBADF);
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return fdh_fail(-ENOMEM, -1, "fence: seccomp_init(): out of memory");

	/*
	 * Every thread or none; raw errnos from the kernel; no NNP until
	 * load_filter() learns it is needed; a binary tree of syscalls, since
	 * every syscall of the process runs this filter from now on; and
	 * syscalls of a foreign ABI (i386 or x32 on x86_64) pass untouched
	 * rather than killing the thread (libseccomp's default).
	 */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (r == 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
	if (r == 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (r == 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (r == 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW);
	if (r < 0) {
		r = fdh_fail(r, -1, "fence: seccomp_attr_set(): %s (libseccomp >= 2.5 needed)",
			     strerror(-r));
		goto out;
	}

	for (size_t i = 0; i < n_fds; i++) {
		r = add_fd_rules(ctx, action, fds[i], &call);
		if (r == 0 && (flags & FDH_FENCE_KEEP_OPEN))
			r = add_keep_open_rules(ctx, fds[i], &call);
		if (r < 0) {
			r = fdh_fail(r, (int)i, "fence: seccomp_rule_add(%s, fd %d): %s",
				     call, fds[i], strerror(-r));
			goto out;
		}
	}

	if (flags & FDH_FENCE_KEEP_OPEN) {
		r = add_close_range_rule(ctx, fds, n_fds);
		if (r < 0) {
			r = fdh_fail(r, -1, "fence: seccomp_rule_add(close_range): %s",
				     strerror(-r));
			goto out;
		}
	}

	r = load_filter(ctx, n_fds);
out:
	seccomp_release(ctx);
	return r;
}
