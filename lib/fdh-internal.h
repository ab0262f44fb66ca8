/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal to libfdhandover: never installed. */
#ifndef FDH_INTERNAL_H
#define FDH_INTERNAL_H

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdhandover.h"
#include "probes.h"


/*
 * Record the detail of a failure for fdh_last_error() and return code
 * (a negative errno), so that callers can write
 *	return fdh_fail(-EBADF, i, "pidfd_getfd(...): ...");
 */
int fdh_fail(int code, int entry, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void fdh_clear_error(void);

/* CLOCK_MONOTONIC in milliseconds. */
static inline uint64_t fdh_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Wait for events on fd until deadline (fdh_now_ms() time), or for ever
 * if deadline is 0: 0, -ETIMEDOUT or -errno.  A signal neither ends the
 * wait nor restarts the clock.  For the SCM_RIGHTS fallback's two sides
 * (lib/pull.c, lib/serve.c).
 */
static inline int fdh_poll_until(int fd, short events, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	for (;;) {
		int timeout = -1;

		if (deadline) {
			uint64_t now = fdh_now_ms();

			if (now >= deadline)
				return -ETIMEDOUT;
			timeout = (int)(deadline - now);
		}
		r = poll(&p, 1, timeout);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* glibc 2.36 has no wrappers for these. */
static inline int fdh_sys_pidfd_open(pid_t pid, unsigned int flags)
{
	return (int)syscall(SYS_pidfd_open, pid, flags);
}

static inline int fdh_sys_pidfd_getfd(int pidfd, int fd, unsigned int flags)
{
	return (int)syscall(SYS_pidfd_getfd, pidfd, fd, flags);
}

static inline int fdh_sys_kcmp(pid_t pid1, pid_t pid2, int type,
			       unsigned long idx1, unsigned long idx2)
{
	return (int)syscall(SYS_kcmp, pid1, pid2, type, idx1, idx2);
}

/*
 * /proc/PID/fdinfo/FD as text (pid 0: this process).  Returns the length
 * read or -errno: -ENOENT is mapped to -EBADF when the process exists and
 * to -ESRCH when it does not.
 */
int fdh_fdinfo_read(pid_t pid, int fd, char *buf, size_t size);
/*
 * Value of "key:" in fdinfo text, with leading blanks skipped, or NULL.
 * The value runs to the end of its line.
 */
const char *fdh_fdinfo_get(const char *text, const char *key);
/* Parse the value of key as an unsigned number in base (0: auto). */
int fdh_fdinfo_get_u64(const char *text, const char *key, int base,
		       uint64_t *ret);

/* A numeric fdinfo value, 0 when absent or unparsable. */
static inline uint64_t fdh_fdinfo_u64(const char *text, const char *key,
				      int base)
{
	uint64_t v;

	return fdh_fdinfo_get_u64(text, key, base, &v) == 0 ? v : 0;
}

/* Copy up to len bytes of src, stopping at a NUL; always terminated. */
static inline void fdh_copy_bytes(char *dst, size_t size, const char *src,
				  size_t len)
{
	size_t n = 0;

	while (n < len && n + 1 < size && src[n]) {
		dst[n] = src[n];
		n++;
	}
	dst[n] = '\0';
}

static inline void fdh_proc_fd_path(char *buf, size_t size, pid_t pid, int fd)
{
	snprintf(buf, size, "/proc/%d/fd/%d", pid, fd);
}

/* Start time (clock ticks after boot) and uid of a live process. */
int fdh_proc_stat(pid_t pid, uint64_t *ret_start_time, uid_t *ret_uid,
		  char ret_comm[16]);

/* /proc/sys/kernel/random/boot_id without its newline. */
int fdh_read_boot_id(char ret_boot_id[37]);

/* Check a manifest's source fields (the part of fdh_manifest_validate()
 * that fdh_source_open_manifest() relies on); 0 or -EINVAL. */
int fdh_manifest_validate_source(const struct fdh_manifest_source *src);

/* Compare a local fd's identity with what was expected; 0 or -ESTALE,
 * with the differing field written to why. */
int fdh_identity_compare(const struct fdh_identity *expect,
			 const struct fdh_identity *got, char *why,
			 size_t why_size);

/*
 * Check a local fd against an expected identity, asking the kernel only
 * what the expected kind needs (the pull's hot path).  fdinfo_dir is an
 * fd of /proc/self/fdinfo to read eventfd-ids relative to, or -1.
 * 0 or -ESTALE.
 */
int fdh_identity_check_fd(int fdinfo_dir, int fd,
			  const struct fdh_identity *expect, char *why,
			  size_t why_size);

/*
 * SCM_RIGHTS fallback protocol, one request per call:
 *   request  = struct fdh_wire_request, then n int32 fd numbers;
 *   reply    = one struct fdh_wire_reply per batch of up to
 *              FDH_SCM_BATCH fds, the fds attached as SCM_RIGHTS.
 * status < 0 ends the reply early with an errno and the failing index.
 */
#define FDH_WIRE_MAGIC 0x46444852u	/* "FDHR" */
#define FDH_SCM_BATCH 253		/* SCM_MAX_FD */

struct fdh_wire_request {
	uint32_t magic;
	uint32_t n;
};

struct fdh_wire_reply {
	uint32_t magic;
	int32_t status;			/* 0 or -errno */
	uint32_t first;			/* index of the first fd in this batch */
	uint32_t n;			/* fds attached to this message */
};

#endif /* FDH_INTERNAL_H */
