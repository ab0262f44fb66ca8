// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Inspect: describe the fds of a live process from the outside.
 *
 * The generic fields come from /proc/PID/fd/N (stat and link target) and
 * /proc/PID/fdinfo/N, which need only ptrace *read* permission.  Kinds are
 * told apart as util-linux lsfd does, by a table of per-kind handlers: the
 * first whose link target or probe matches fills in the kind's details,
 * and an fd no handler knows is FDH_KIND_OTHER with the generic fields.
 * Unknown fdinfo keys and link forms are ignored, never errors.
 *
 * The common path costs a stat, a readlink and one fdinfo read.  Only
 * what /proc lacks costs more: a memfd's seals (a read-only reopen, or a
 * pulled copy), a socket's family (a getxattr), a unix socket's peer (a
 * sock_diag query), a TAP's flags (a pulled copy, FDH_INSPECT_PULL only).
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <linux/if_tun.h>

#include "fdh-internal.h"
#include "sockdiag.h"

/* Character devices recognised by number (misc major 10), as identity.c
 * does, so that a device node opened under another path still counts. */
#define MISC_MAJOR 10
#define TUN_MINOR 200
#define VHOST_NET_MINOR 238

/* An epoll's fdinfo runs ~80 bytes per watched fd: room for well over
 * FDH_EPOLL_MAX of them; a longer text is cut, which only drops tfds. */
#define FDINFO_MAX 8192
/* Reads that disagree (the number closed and reused between them) are
 * retried; a number reused that fast thrice is described as last seen. */
#define SNAPSHOT_TRIES 3

#define KNOWN_FLAGS FDH_INSPECT_PULL

/* What /proc says about one fd, read as close together as we can. */
struct snapshot {
	struct stat st;			/* all zero if stat failed */
	char target[PATH_MAX];		/* untruncated link target */
	char fdinfo[FDINFO_MAX];
};

struct probe_ctx {
	pid_t pid;
	int fd;
	unsigned int flags;
	const struct snapshot *snap;
};

struct kind_ops {
	enum fdh_kind kind;
	/* The kind's exact link target, if it has one. */
	const char *link;
	/* Otherwise (or also) a test on the snapshot; NULL: link only. */
	bool (*probe)(const struct probe_ctx *c);
	/* The kind's own details.  What cannot be read stays unknown: it is
	 * not an error, the generic fields are still right.  NULL: none. */
	void (*fill)(const struct probe_ctx *c, struct fdh_fd_info *info);
};

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Copy up to len bytes of src, stopping at a NUL; always terminated. */
static void copy_bytes(char *dst, size_t size, const char *src, size_t len)
{
	size_t n = 0;

	while (n < len && n + 1 < size && src[n]) {
		dst[n] = src[n];
		n++;
	}
	dst[n] = '\0';
}

static void proc_fd_path(char *buf, size_t size, pid_t pid, int fd)
{
	snprintf(buf, size, "/proc/%d/fd/%d", pid, fd);
}

/* A numeric fdinfo value, 0 when absent or unparsable. */
static uint64_t fdinfo_u64(const char *text, const char *key, int base)
{
	uint64_t v;

	return fdh_fdinfo_get_u64(text, key, base, &v) == 0 ? v : 0;
}

static bool is_misc_dev(const struct stat *st, unsigned int minor_nr)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == MISC_MAJOR &&
	       minor(st->st_rdev) == minor_nr;
}

/* ------------------------------------------------------------------ */
/* Errors                                                             */

/*
 * Record why reading /proc failed.  ENOENT means the fd or the whole
 * process is gone; which one decides between -EBADF and -ESRCH.
 */
static int inspect_fail(pid_t pid, int fd, const char *what, int r)
{
	char who[48];

	if (fd >= 0)
		snprintf(who, sizeof(who), "pid %d fd %d", pid, fd);
	else
		snprintf(who, sizeof(who), "pid %d", pid);
	if (r == -ENOENT || r == -EBADF || r == -ESRCH)
		r = fdh_process_gone(pid) ? -ESRCH : -EBADF;

	switch (r) {
	case -ESRCH:
		return fdh_fail(r, -1, "inspect %s: no such process (it exited)",
				who);
	case -EBADF:
		return fdh_fail(r, -1, "inspect %s: no such fd open in that process",
				who);
	case -EACCES:
	case -EPERM:
		return fdh_fail(r, -1,
				"inspect %s: %s: %s; needs ptrace read permission over pid %d: same uid and dumpable, or CAP_SYS_PTRACE",
				who, what, strerror(-r), pid);
	}
	return fdh_fail(r, -1, "inspect %s: %s: %s", who, what, strerror(-r));
}

/* ------------------------------------------------------------------ */
/* Temporary copies, for what only the open file itself can tell      */

/*
 * The copy must be the file we described: the number may have been
 * closed and reused since.  Returns copy, or -ESTALE having closed it.
 */
static int check_same_file(int copy, const struct fdh_fd_info *info)
{
	struct stat st;

	if (fstat(copy, &st) < 0 || st.st_dev != info->dev ||
	    st.st_ino != info->ino) {
		close(copy);
		return -ESTALE;
	}
	return copy;
}

/* pidfd_getfd (ptrace attach permission); our own fds are duplicated. */
static int pulled_copy(const struct probe_ctx *c,
		       const struct fdh_fd_info *info)
{
	int pidfd, copy;

	if (c->pid == getpid()) {
		copy = fcntl(c->fd, F_DUPFD_CLOEXEC, 3);
		if (copy < 0)
			return -errno;
	} else {
		pidfd = fdh_sys_pidfd_open(c->pid, 0);
		if (pidfd < 0)
			return -errno;
		copy = fdh_sys_pidfd_getfd(pidfd, c->fd, 0);
		if (copy < 0)
			copy = -errno;
		close(pidfd);
		if (copy < 0)
			return copy;
	}
	return check_same_file(copy, info);
}

/*
 * A new read-only open file of the same inode, through /proc (ptrace read
 * permission only).  O_PATH first: it opens nothing on a driver, and lets
 * the inode be checked before the real open, so a number reused by some
 * device in the meantime is never opened for real.
 */
static int reopened_copy(const struct probe_ctx *c,
			 const struct fdh_fd_info *info)
{
	char path[64];
	int pathfd, copy;

	proc_fd_path(path, sizeof(path), c->pid, c->fd);
	pathfd = open(path, O_PATH | O_CLOEXEC);
	if (pathfd < 0)
		return -errno;
	pathfd = check_same_file(pathfd, info);
	if (pathfd < 0)
		return pathfd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", pathfd);
	copy = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (copy < 0)
		copy = -errno;
	close(pathfd);
	return copy;
}

/* ------------------------------------------------------------------ */
/* Kinds                                                              */

static bool memfd_probe(const struct probe_ctx *c)
{
	return S_ISREG(c->snap->st.st_mode) &&
	       has_prefix(c->snap->target, "/memfd:");
}

static void memfd_fill(const struct probe_ctx *c, struct fdh_fd_info *info)
{
	static const char deleted[] = " (deleted)";
	const size_t deleted_len = sizeof(deleted) - 1;
	const char *name = c->snap->target + strlen("/memfd:");
	size_t len = strlen(name);
	int copy, seals;

	if (len >= deleted_len && strcmp(name + len - deleted_len, deleted) == 0)
		len -= deleted_len;
	copy_bytes(info->u.memfd.name, sizeof(info->u.memfd.name), name, len);
	info->u.memfd.size = (uint64_t)c->snap->st.st_size;

	/* Seals belong to the inode: any open file of it answers. */
	copy = reopened_copy(c, info);
	if (copy < 0 && (c->flags & FDH_INSPECT_PULL))
		copy = pulled_copy(c, info);
	if (copy < 0)
		return;
	seals = fcntl(copy, F_GET_SEALS);
	if (seals >= 0) {
		info->u.memfd.seals = (uint32_t)seals;
		info->u.memfd.seals_known = true;
	}
	close(copy);
}

static bool tap_probe(const struct probe_ctx *c)
{
	return is_misc_dev(&c->snap->st, TUN_MINOR);
}

static void tap_fill(const struct probe_ctx *c, struct fdh_fd_info *info)
{
	const char *iff = fdh_fdinfo_get(c->snap->fdinfo, "iff");
	struct ifreq ifr = { 0 };
	int copy, hdr_sz;

	info->u.tap.vnet_hdr_sz = -1;
	/* "iff:" is empty while the tun fd is attached to no device. */
	if (iff)
		copy_bytes(info->u.tap.ifname, sizeof(info->u.tap.ifname), iff,
			   strcspn(iff, "\n"));
	if (!(c->flags & FDH_INSPECT_PULL))
		return;

	copy = pulled_copy(c, info);
	if (copy < 0)
		return;
	/* Both ioctls only read; the TAP is left exactly as it was.  The
	 * name check catches a number reused by another queue meanwhile. */
	if (ioctl(copy, TUNGETIFF, &ifr) == 0 &&
	    strncmp(ifr.ifr_name, info->u.tap.ifname, IFNAMSIZ) == 0 &&
	    ioctl(copy, TUNGETVNETHDRSZ, &hdr_sz) == 0) {
		info->u.tap.iff_flags = (uint16_t)ifr.ifr_flags;
		info->u.tap.vnet_hdr_sz = hdr_sz;
		info->u.tap.details_known = true;
	}
	close(copy);
}

static bool vhost_net_probe(const struct probe_ctx *c)
{
	return is_misc_dev(&c->snap->st, VHOST_NET_MINOR);
}

static void eventfd_fill(const struct probe_ctx *c, struct fdh_fd_info *info)
{
	const char *text = c->snap->fdinfo;

	/* eventfd-semaphore appeared in 6.x; older kernels read as false. */
	info->u.eventfd.count = fdinfo_u64(text, "eventfd-count", 16);
	info->u.eventfd.id = fdinfo_u64(text, "eventfd-id", 10);
	info->u.eventfd.semaphore =
		fdinfo_u64(text, "eventfd-semaphore", 10) != 0;
}

static void pidfd_fill(const struct probe_ctx *c, struct fdh_fd_info *info)
{
	const char *pid = fdh_fdinfo_get(c->snap->fdinfo, "Pid");

	/* -1 once the process has been reaped, 0 outside our pid namespace. */
	if (pid)
		info->u.pidfd.pid = (pid_t)strtol(pid, NULL, 10);
}

static void epoll_fill(const struct probe_ctx *c, struct fdh_fd_info *info)
{
	const char *p = c->snap->fdinfo;

	/* One "tfd:" line per watched fd; fdh_fdinfo_get() resumes after the
	 * value it returned, on the next line.  Only the first
	 * FDH_EPOLL_MAX are kept, so n_tfds never exceeds the array. */
	while (info->u.epoll.n_tfds < FDH_EPOLL_MAX &&
	       (p = fdh_fdinfo_get(p, "tfd")))
		info->u.epoll.tfds[info->u.epoll.n_tfds++] =
			(int32_t)strtol(p, NULL, 10);
}

static bool socket_probe(const struct probe_ctx *c)
{
	return S_ISSOCK(c->snap->st.st_mode) ||
	       has_prefix(c->snap->target, "socket:[");
}

static uint64_t socket_ino(const struct probe_ctx *c)
{
	if (c->snap->st.st_ino)
		return c->snap->st.st_ino;
	return strtoull(c->snap->target + strlen("socket:["), NULL, 10);
}

/*
 * unix_diag searches only the asking socket's network namespace: a
 * process in another one is asked about from inside it.
 */
static int unix_lookup(const struct probe_ctx *c, struct fdh_unix_diag *ret)
{
	struct stat ours, theirs;
	char path[64];
	int nsfd, r;

	r = fdh_unix_diag(-1, socket_ino(c), ret);
	if (r != -ENOENT)
		return r;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", c->pid);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return r;
	/* thread-self: the netlink socket is made in this thread's netns. */
	if (fstat(nsfd, &theirs) == 0 &&
	    stat("/proc/thread-self/ns/net", &ours) == 0 &&
	    (theirs.st_dev != ours.st_dev || theirs.st_ino != ours.st_ino))
		r = fdh_unix_diag(nsfd, socket_ino(c), ret);
	close(nsfd);
	return r;
}

static bool unix_probe(const struct probe_ctx *c)
{
	struct fdh_unix_diag diag;
	char path[64], proto[32];
	ssize_t n;

	if (!socket_probe(c))
		return false;
	/* sockfs names each socket after its protocol ("UNIX",
	 * "UNIX-STREAM", "TCP", ...): cheaper than netlink and the same in
	 * every network namespace.  lsfd reads it too. */
	proc_fd_path(path, sizeof(path), c->pid, c->fd);
	n = getxattr(path, "system.sockprotoname", proto, sizeof(proto) - 1);
	if (n > 0) {
		proto[n] = '\0';
		return strcmp(proto, "UNIX") == 0 || has_prefix(proto, "UNIX-");
	}
	/* Without the name: a unix socket is one that unix_diag knows. */
	return unix_lookup(c, &diag) == 0;
}

static void unix_fill(const struct probe_ctx *c, struct fdh_fd_info *info)
{
	struct fdh_unix_diag diag;

	info->u.unix_socket.ino = socket_ino(c);
	if (unix_lookup(c, &diag) < 0)
		return;
	info->u.unix_socket.peer_ino = diag.peer_ino;
	info->u.unix_socket.type = diag.type;
	info->u.unix_socket.state = diag.state;
	copy_bytes(info->u.unix_socket.path, sizeof(info->u.unix_socket.path),
		   diag.path, sizeof(diag.path));
}

static bool pipe_probe(const struct probe_ctx *c)
{
	/* Named FIFOs too: the same pipe_inode_info behind a path. */
	return S_ISFIFO(c->snap->st.st_mode) ||
	       has_prefix(c->snap->target, "pipe:[");
}

static bool file_probe(const struct probe_ctx *c)
{
	return S_ISREG(c->snap->st.st_mode);
}

/* First match wins; order matters where kinds overlap (noted). */
static const struct kind_ops kinds[] = {
	/* Before FILE: a memfd is a regular file too. */
	{ FDH_KIND_MEMFD, NULL, memfd_probe, memfd_fill },
	{ FDH_KIND_TAP, "/dev/net/tun", tap_probe, tap_fill },
	{ FDH_KIND_VHOST_NET, "/dev/vhost-net", vhost_net_probe, NULL },
	{ FDH_KIND_EVENTFD, "anon_inode:[eventfd]", NULL, eventfd_fill },
	/* pidfs (6.9+) keeps the anon_inode name for compatibility. */
	{ FDH_KIND_PIDFD, "anon_inode:[pidfd]", NULL, pidfd_fill },
	{ FDH_KIND_EPOLL, "anon_inode:[eventpoll]", NULL, epoll_fill },
	/* Before SOCKET, which takes every other family. */
	{ FDH_KIND_UNIX_SOCKET, NULL, unix_probe, unix_fill },
	{ FDH_KIND_SOCKET, NULL, socket_probe, NULL },
	{ FDH_KIND_PIPE, NULL, pipe_probe, NULL },
	{ FDH_KIND_FILE, NULL, file_probe, NULL },
};

static void classify(const struct probe_ctx *c, struct fdh_fd_info *info)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const struct kind_ops *k = &kinds[i];

		if ((k->link && strcmp(c->snap->target, k->link) == 0) ||
		    (k->probe && k->probe(c))) {
			info->kind = k->kind;
			if (k->fill)
				k->fill(c, info);
			return;
		}
	}
	info->kind = FDH_KIND_OTHER;
}

/* ------------------------------------------------------------------ */
/* Public                                                             */

/* 0, 1 when the reads disagree (retry), or -errno recorded. */
static int take_snapshot(pid_t pid, int fd, struct snapshot *s)
{
	char path[64];
	uint64_t ino;
	ssize_t n;
	int r;

	proc_fd_path(path, sizeof(path), pid, fd);
	if (stat(path, &s->st) < 0) {
		r = -errno;
		if (r == -ENOENT || r == -EACCES || r == -EPERM)
			return inspect_fail(pid, fd, "stat", r);
		/* The file behind the link would not stat (a dead network
		 * mount, say): its identity stays unknown, the rest is read. */
		memset(&s->st, 0, sizeof(s->st));
	}
	n = readlink(path, s->target, sizeof(s->target) - 1);
	if (n < 0)
		return inspect_fail(pid, fd, "readlink", -errno);
	s->target[n] = '\0';
	r = fdh_fdinfo_read(pid, fd, s->fdinfo, sizeof(s->fdinfo));
	if (r < 0)
		return inspect_fail(pid, fd, "read fdinfo", r);
	if (s->st.st_ino &&
	    fdh_fdinfo_get_u64(s->fdinfo, "ino", 10, &ino) == 0 &&
	    ino != s->st.st_ino)
		return 1;
	return 0;
}

int fdh_inspect_fd(pid_t pid, int fd, unsigned flags,
		   struct fdh_fd_info *ret_info)
{
	struct fdh_fd_info info;
	struct snapshot *s;
	struct probe_ctx c;
	int r, tries = 0;

	if (pid <= 0 || !ret_info || (flags & ~KNOWN_FLAGS))
		return fdh_fail(-EINVAL, -1,
				"inspect pid %d fd %d: needs a pid > 0, an output and known flags (0x%x given)",
				pid, fd, flags);
	if (fd < 0)
		return fdh_fail(-EBADF, -1, "inspect pid %d fd %d: not an fd number",
				pid, fd);
	/* ~12 KiB: too much for the stack of a caller's small thread. */
	s = malloc(sizeof(*s));
	if (!s)
		return fdh_fail(-ENOMEM, -1, "inspect pid %d fd %d: out of memory",
				pid, fd);
	do
		r = take_snapshot(pid, fd, s);
	while (r > 0 && ++tries < SNAPSHOT_TRIES);
	if (r < 0) {
		free(s);
		return r;
	}

	memset(&info, 0, sizeof(info));
	info.fd = fd;
	copy_bytes(info.target, sizeof(info.target), s->target,
		   sizeof(s->target));
	info.dev = s->st.st_dev;
	info.ino = s->st.st_ino ? s->st.st_ino : fdinfo_u64(s->fdinfo, "ino", 10);
	info.mode = s->st.st_mode;
	info.flags = (uint32_t)fdinfo_u64(s->fdinfo, "flags", 8);
	info.pos = fdinfo_u64(s->fdinfo, "pos", 10);
	info.mnt_id = fdinfo_u64(s->fdinfo, "mnt_id", 10);

	c = (struct probe_ctx){
		.pid = pid, .fd = fd, .flags = flags, .snap = s,
	};
	classify(&c, &info);
	free(s);
	*ret_info = info;
	return 0;
}

static int compare_fd(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* The numbers listed in /proc/PID/fd, unsorted; *ret_fds is malloc'd. */
static int list_fds(pid_t pid, int **ret_fds, size_t *ret_n)
{
	struct dirent *de;
	char path[64];
	size_t n = 0, cap = 0;
	int *fds = NULL, r = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir)
		return inspect_fail(pid, -1, "opendir fd directory", -errno);
	for (;;) {
		char *end;
		long v;

		errno = 0;
		de = readdir(dir);
		if (!de) {
			if (errno)
				r = inspect_fail(pid, -1, "readdir fd directory",
						 -errno);
			break;
		}
		v = strtol(de->d_name, &end, 10);
		if (de->d_name[0] == '.' || *end || v < 0 || v > INT_MAX)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			int *grown = realloc(fds, ncap * sizeof(*fds));

			if (!grown) {
				r = fdh_fail(-ENOMEM, -1,
					     "inspect pid %d: out of memory listing fds",
					     pid);
				break;
			}
			fds = grown;
			cap = ncap;
		}
		fds[n++] = (int)v;
	}
	closedir(dir);
	if (r < 0) {
		free(fds);
		return r;
	}
	*ret_fds = fds;
	*ret_n = n;
	return 0;
}

int fdh_inspect_process(pid_t pid, unsigned flags,
			struct fdh_fd_info **ret_infos, size_t *ret_n)
{
	struct fdh_fd_info *infos;
	size_t n_fds = 0, n = 0;
	int *fds = NULL;
	int r;

	if (pid <= 0 || !ret_infos || !ret_n)
		return fdh_fail(-EINVAL, -1,
				"inspect pid %d: needs a pid > 0 and outputs", pid);
	r = list_fds(pid, &fds, &n_fds);
	if (r < 0)
		return r;
	/* A zombie lists no fds: it is gone, not a process without fds. */
	if (n_fds == 0 && fdh_process_gone(pid)) {
		free(fds);
		return inspect_fail(pid, -1, "list fds", -ESRCH);
	}
	if (n_fds > 1)	/* qsort(NULL, 0) is undefined */
		qsort(fds, n_fds, sizeof(*fds), compare_fd);

	infos = calloc(n_fds ? n_fds : 1, sizeof(*infos));
	if (!infos) {
		free(fds);
		return fdh_fail(-ENOMEM, -1, "inspect pid %d: out of memory for %zu fds",
				pid, n_fds);
	}
	for (size_t i = 0; i < n_fds; i++) {
		r = fdh_inspect_fd(pid, fds[i], flags, &infos[n]);
		/* Closed between the listing and now (our own listing's
		 * directory fd among them): left out, as documented. */
		if (r == -EBADF)
			continue;
		if (r < 0) {
			free(infos);
			free(fds);
			return r;
		}
		n++;
	}
	free(fds);
	*ret_infos = infos;
	*ret_n = n;
	return 0;
}

void fdh_identity_from_info(const struct fdh_fd_info *info,
			    struct fdh_identity *ret_identity)
{
	struct fdh_identity id = { 0 };

	if (!info || !ret_identity)
		return;
	id.kind = info->kind;
	id.dev = info->dev;
	id.ino = info->ino;
	id.mode = info->mode;
	/* Must agree with fdh_identity_of_fd() on a pulled copy. */
	switch (info->kind) {
	case FDH_KIND_EVENTFD:
		id.kind_id = info->u.eventfd.id;
		break;
	case FDH_KIND_UNIX_SOCKET:
	case FDH_KIND_SOCKET:
	case FDH_KIND_VHOST_USER:
		/* sockfs inodes are unique: the inode is the socket. */
		id.kind_id = info->ino;
		break;
	case FDH_KIND_TAP:
		copy_bytes(id.name, sizeof(id.name), info->u.tap.ifname,
			   sizeof(info->u.tap.ifname));
		break;
	default:
		break;
	}
	*ret_identity = id;
}
