// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The kinds of fd: one table, kinds[] at the end of this file, and the
 * functions its entries point to.  Each kind says here how it is found
 * (inspecting another process through /proc, and as a local fd), what it
 * adds to dev/ino as an identity, and what its manifest entry carries;
 * the rest of the library asks the table (lib/kind.h) and never switches
 * on a kind.  Kinds are told apart as util-linux lsfd does: the first
 * entry of probe_order[] whose link target or probe matches fills in the
 * kind's details, and an fd no entry knows is FDH_KIND_OTHER with the
 * generic fields.  Unknown fdinfo keys and link forms are ignored.
 *
 * The common path of inspecting costs a stat, a readlink and one fdinfo
 * read (lib/inspect.c).  Only what /proc lacks costs more: a memfd's seals
 * (a read-only reopen, or a pulled copy), a socket's family (a getxattr),
 * a unix socket's peer (a sock_diag query), a TAP's flags (a pulled copy,
 * FDH_INSPECT_PULL only).  An identity asks the kernel only what the kind
 * needs (one ioctl for a TAP, one fdinfo read for an eventfd): it is on
 * the pull's hot path.
 *
 * Adding a kind: a value in enum fdh_kind (fdhandover.h), its entry in
 * kinds[] (name, probe, identity, manifest detail), its place in
 * probe_order[], and the functions the entry names.  A kind with fields
 * of its own in the manifest also needs an enum fdh_detail value and its
 * wire form in lib/manifest.c (a new manifest version).
 */
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "fdh-internal.h"
#include "kind.h"
#include "sockdiag.h"

/* Character devices recognised by number (misc major 10), so that a
 * device node opened under another path still counts. */
#define MISC_MAJOR 10
#define TUN_MINOR 200
#define VHOST_NET_MINOR 238
/* A memfd's link: "/memfd:NAME (deleted)". */
#define MEMFD_LINK "/memfd:"

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool is_misc_dev(const struct stat *st, unsigned int minor_nr)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == MISC_MAJOR &&
	       minor(st->st_rdev) == minor_nr;
}

/* ------------------------------------------------------------------ */
/* Inspecting: temporary copies, for what only the open file can tell */

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
static int pulled_copy(const struct fdh_probe_ctx *c,
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
static int reopened_copy(const struct fdh_probe_ctx *c,
			 const struct fdh_fd_info *info)
{
	char path[64];
	int pathfd, copy;

	fdh_proc_fd_path(path, sizeof(path), c->pid, c->fd);
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

static bool memfd_probe(const struct fdh_probe_ctx *c)
{
	return S_ISREG(c->st->st_mode) &&
	       has_prefix(c->target, MEMFD_LINK);
}

static void memfd_fill(const struct fdh_probe_ctx *c, struct fdh_fd_info *info)
{
	static const char deleted[] = " (deleted)";
	const size_t deleted_len = sizeof(deleted) - 1;
	const char *name = c->target + strlen(MEMFD_LINK);
	size_t len = strlen(name);
	int copy, seals;

	if (len >= deleted_len && strcmp(name + len - deleted_len, deleted) == 0)
		len -= deleted_len;
	fdh_copy_bytes(info->u.memfd.name, sizeof(info->u.memfd.name), name, len);
	info->u.memfd.size = (uint64_t)c->st->st_size;

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

static bool tap_probe(const struct fdh_probe_ctx *c)
{
	return is_misc_dev(c->st, TUN_MINOR);
}

static void tap_fill(const struct fdh_probe_ctx *c, struct fdh_fd_info *info)
{
	const char *iff = fdh_fdinfo_get(c->fdinfo, "iff");
	struct ifreq ifr = { 0 };
	int copy, hdr_sz;

	info->u.tap.vnet_hdr_sz = -1;
	/* "iff:" is empty while the tun fd is attached to no device. */
	if (iff)
		fdh_copy_bytes(info->u.tap.ifname, sizeof(info->u.tap.ifname), iff,
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

static bool vhost_net_probe(const struct fdh_probe_ctx *c)
{
	return is_misc_dev(c->st, VHOST_NET_MINOR);
}

static void eventfd_fill(const struct fdh_probe_ctx *c, struct fdh_fd_info *info)
{
	const char *text = c->fdinfo;

	/* eventfd-semaphore appeared in 6.x; older kernels read as false. */
	info->u.eventfd.count = fdh_fdinfo_u64(text, "eventfd-count", 16);
	info->u.eventfd.id = fdh_fdinfo_u64(text, "eventfd-id", 10);
	info->u.eventfd.semaphore =
		fdh_fdinfo_u64(text, "eventfd-semaphore", 10) != 0;
}

static void pidfd_fill(const struct fdh_probe_ctx *c, struct fdh_fd_info *info)
{
	const char *pid = fdh_fdinfo_get(c->fdinfo, "Pid");

	/* -1 once the process has been reaped, 0 outside our pid namespace. */
	if (pid)
		info->u.pidfd.pid = (pid_t)strtol(pid, NULL, 10);
}

static void epoll_fill(const struct fdh_probe_ctx *c, struct fdh_fd_info *info)
{
	const char *p = c->fdinfo;

	/* One "tfd:" line per watched fd; fdh_fdinfo_get() resumes after the
	 * value it returned, on the next line.  Only the first
	 * FDH_EPOLL_MAX are kept, so n_tfds never exceeds the array. */
	while (info->u.epoll.n_tfds < FDH_EPOLL_MAX &&
	       (p = fdh_fdinfo_get(p, "tfd")))
		info->u.epoll.tfds[info->u.epoll.n_tfds++] =
			(int32_t)strtol(p, NULL, 10);
}

static bool socket_probe(const struct fdh_probe_ctx *c)
{
	return S_ISSOCK(c->st->st_mode) ||
	       has_prefix(c->target, "socket:[");
}

static uint64_t socket_ino(const struct fdh_probe_ctx *c)
{
	if (c->st->st_ino)
		return c->st->st_ino;
	return strtoull(c->target + strlen("socket:["), NULL, 10);
}

/*
 * unix_diag searches only the asking socket's network namespace: a
 * process in another one is asked about from inside it.
 */
static int unix_lookup(const struct fdh_probe_ctx *c, struct fdh_unix_diag *ret)
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

static bool unix_probe(const struct fdh_probe_ctx *c)
{
	struct fdh_unix_diag diag;
	char path[64], proto[32];
	ssize_t n;

	if (!socket_probe(c))
		return false;
	/* sockfs names each socket after its protocol ("UNIX",
	 * "UNIX-STREAM", "TCP", ...): cheaper than netlink and the same in
	 * every network namespace.  lsfd reads it too. */
	fdh_proc_fd_path(path, sizeof(path), c->pid, c->fd);
	n = getxattr(path, "system.sockprotoname", proto, sizeof(proto) - 1);
	if (n > 0) {
		proto[n] = '\0';
		return strcmp(proto, "UNIX") == 0 || has_prefix(proto, "UNIX-");
	}
	/* Without the name: a unix socket is one that unix_diag knows. */
	return unix_lookup(c, &diag) == 0;
}

static void unix_fill(const struct fdh_probe_ctx *c, struct fdh_fd_info *info)
{
	struct fdh_unix_diag diag;

	info->u.unix_socket.ino = socket_ino(c);
	if (unix_lookup(c, &diag) < 0)
		return;
	info->u.unix_socket.peer_ino = diag.peer_ino;
	info->u.unix_socket.type = diag.type;
	info->u.unix_socket.state = diag.state;
	fdh_copy_bytes(info->u.unix_socket.path, sizeof(info->u.unix_socket.path),
		   diag.path, sizeof(diag.path));
}

static bool pipe_probe(const struct fdh_probe_ctx *c)
{
	/* Named FIFOs too: the same pipe_inode_info behind a path. */
	return S_ISFIFO(c->st->st_mode) ||
	       has_prefix(c->target, "pipe:[");
}

static bool file_probe(const struct fdh_probe_ctx *c)
{
	return S_ISREG(c->st->st_mode);
}

/* ------------------------------------------------------------------ */
/* Local fds                                                          */

static const struct fdh_kind_ops kinds[FDH_KIND__MAX];

/*
 * A local fd's kind by its /proc/self/fd link, as inspecting reads the
 * links of another process: a memfd's "/memfd:NAME", else the kind whose
 * link it is (eventfd, pidfd, epoll), else FDH_KIND_OTHER; or -errno.
 */
static int link_kind(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	if (has_prefix(target, MEMFD_LINK))
		return FDH_KIND_MEMFD;
	for (int k = 0; k < FDH_KIND__MAX; k++)
		if (kinds[k].link && strcmp(target, kinds[k].link) == 0)
			return k;
	return FDH_KIND_OTHER;
}

/*
 * The kernel's eventfd-id of a local eventfd (its context's ida id).
 * fdinfo_dir: an fd of /proc/self/fdinfo, or -1.  One read(): fdinfo is
 * a single seq_file record (~120 bytes for an eventfd) that the kernel
 * hands over whole, so reading again only to see EOF is a wasted syscall;
 * a full buffer falls back to the reader that loops.
 */
static int eventfd_id(int fdinfo_dir, int fd, uint64_t *ret)
{
	char path[48], text[512];
	ssize_t n;
	int f, r;

	if (fdinfo_dir >= 0)
		snprintf(path, sizeof(path), "%d", fd);
	else
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = openat(fdinfo_dir >= 0 ? fdinfo_dir : AT_FDCWD, path,
		   O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return errno == ENOENT ? -EBADF : -errno;
	do {
		n = read(f, text, sizeof(text) - 1);
	} while (n < 0 && errno == EINTR);
	r = n < 0 ? -errno : 0;
	close(f);
	if (r < 0)
		return r;
	if ((size_t)n == sizeof(text) - 1) {
		r = fdh_fdinfo_read(0, fd, text, sizeof(text));
		if (r < 0)
			return r;
	} else {
		text[n] = '\0';
	}
	return fdh_fdinfo_get_u64(text, "eventfd-id", 10, ret);
}

/* TUNGETIFF: the attached interface's name; -EBADFD if none. */
static int tap_ifname(int fd, char name[IFNAMSIZ])
{
	struct ifreq ifr = { 0 };

	if (ioctl(fd, TUNGETIFF, &ifr) < 0)
		return -errno;
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	name[IFNAMSIZ - 1] = '\0';
	return 0;
}

enum fdh_kind fdh_kind_of_local_fd(int fd, const struct stat *st)
{
	int domain;
	socklen_t len = sizeof(domain);

	switch (st->st_mode & S_IFMT) {
	case S_IFCHR:
		if (is_misc_dev(st, TUN_MINOR))
			return FDH_KIND_TAP;
		if (is_misc_dev(st, VHOST_NET_MINOR))
			return FDH_KIND_VHOST_NET;
		return FDH_KIND_OTHER;
	case S_IFSOCK:
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
		    domain == AF_UNIX)
			return FDH_KIND_UNIX_SOCKET;
		return FDH_KIND_SOCKET;
	case S_IFIFO:
		return FDH_KIND_PIPE;
	case S_IFREG:
		return link_kind(fd) == FDH_KIND_MEMFD ? FDH_KIND_MEMFD :
							  FDH_KIND_FILE;
	case 0: {	/* anonymous inodes have no file type */
		int k = link_kind(fd);

		return k < 0 ? FDH_KIND_OTHER : (enum fdh_kind)k;
	}
	}
	return FDH_KIND_OTHER;
}

/* ------------------------------------------------------------------ */
/* Identity: the kind's own key                                       */

static int eventfd_read_id(int fdinfo_dir, int fd, const struct stat *st,
			   struct fdh_identity *id)
{
	(void)st;
	return eventfd_id(fdinfo_dir, fd, &id->kind_id);
}

/* sockfs inodes are unique: the inode is the socket. */
static int socket_read_id(int fdinfo_dir, int fd, const struct stat *st,
			  struct fdh_identity *id)
{
	(void)fdinfo_dir;
	(void)fd;
	id->kind_id = st->st_ino;
	return 0;
}

/* A tun fd not yet attached has no name; that is not an error. */
static int tap_read_id(int fdinfo_dir, int fd, const struct stat *st,
		       struct fdh_identity *id)
{
	(void)fdinfo_dir;
	(void)st;
	if (tap_ifname(fd, id->name) < 0)
		id->name[0] = '\0';
	return 0;
}

/* Each must agree with its read_id on a pulled copy. */
static void eventfd_id_from_info(const struct fdh_fd_info *info,
				 struct fdh_identity *id)
{
	id->kind_id = info->u.eventfd.id;
}

static void socket_id_from_info(const struct fdh_fd_info *info,
				struct fdh_identity *id)
{
	id->kind_id = info->ino;
}

static void tap_id_from_info(const struct fdh_fd_info *info,
			     struct fdh_identity *id)
{
	fdh_copy_bytes(id->name, sizeof(id->name), info->u.tap.ifname,
		       sizeof(info->u.tap.ifname));
}

static void tap_id_from_entry(const struct fdh_manifest_entry *e,
			      struct fdh_identity *id)
{
	fdh_copy_bytes(id->name, sizeof(id->name), e->u.tap.ifname,
		       sizeof(e->u.tap.ifname));
}

/* ------------------------------------------------------------------ */
/* Manifest: what inspecting fills into an entry's detail             */

static void memfd_entry(const struct fdh_fd_info *info,
			struct fdh_manifest_entry *e)
{
	fdh_copy_bytes(e->u.memfd.name, sizeof(e->u.memfd.name),
		       info->u.memfd.name, sizeof(info->u.memfd.name) - 1);
	e->u.memfd.size = info->u.memfd.size;
	e->u.memfd.seals = info->u.memfd.seals_known ? info->u.memfd.seals : 0;
}

static void tap_entry(const struct fdh_fd_info *info,
		      struct fdh_manifest_entry *e)
{
	fdh_copy_bytes(e->u.tap.ifname, sizeof(e->u.tap.ifname),
		       info->u.tap.ifname, sizeof(info->u.tap.ifname) - 1);
	/* The queue index is not visible from outside: the caller that
	 * knows it sets u.tap.queue. */
	e->u.tap.iff_flags = info->u.tap.details_known ? info->u.tap.iff_flags : 0;
	e->u.tap.vnet_hdr_sz = info->u.tap.details_known ?
			       info->u.tap.vnet_hdr_sz : -1;
}

static void eventfd_entry(const struct fdh_fd_info *info,
			  struct fdh_manifest_entry *e)
{
	e->u.eventfd.semaphore = info->u.eventfd.semaphore;
}

/* ------------------------------------------------------------------ */
/* The table                                                          */

#define KIND_ID FDH_IDENTITY_KIND_ID
#define NAME FDH_IDENTITY_NAME

/*
 * Indexed by enum fdh_kind.  carrier 0 (FDH_KIND_OTHER) means "itself".
 * pins_file: an eventfd-id names its counter, a socket inode its socket
 * (a socket has one open file; /proc/PID/fd/N of it cannot be re-opened),
 * a memfd's inode its memory (re-opened through /proc it is another open
 * file of the same memory, and the memory is what a memfd is handed over
 * for).  Not so for a TAP (every queue of a device is /dev/net/tun with
 * that name), a pipe (both ends share the inode), a pidfd (one pidfs
 * inode per process), epoll (no id), vhost-net, or a regular file (opened
 * twice, two open files with two offsets).
 */
static const struct fdh_kind_ops kinds[FDH_KIND__MAX] = {
	[FDH_KIND_OTHER] = {
		.name = "other", .detail = FDH_DETAIL_NONE,
	},
	[FDH_KIND_MEMFD] = {
		.name = "memfd", .probe = memfd_probe, .fill = memfd_fill,
		.pins_file = true,
		.detail = FDH_DETAIL_MEMFD, .entry_from_info = memfd_entry,
	},
	[FDH_KIND_TAP] = {
		.name = "tap", .link = "/dev/net/tun", .probe = tap_probe,
		.fill = tap_fill,
		.compares = NAME, .read_id = tap_read_id,
		.id_from_info = tap_id_from_info,
		.id_from_entry = tap_id_from_entry,
		.detail = FDH_DETAIL_TAP, .entry_from_info = tap_entry,
	},
	[FDH_KIND_EVENTFD] = {
		.name = "eventfd", .link = "anon_inode:[eventfd]",
		.fill = eventfd_fill,
		.compares = KIND_ID, .pins_file = true, .id_reads_fdinfo = true,
		.id_name = "eventfd-id", .read_id = eventfd_read_id,
		.id_from_info = eventfd_id_from_info,
		.detail = FDH_DETAIL_EVENTFD, .entry_from_info = eventfd_entry,
	},
	[FDH_KIND_VHOST_NET] = {
		.name = "vhost-net", .link = "/dev/vhost-net",
		.probe = vhost_net_probe,
		.detail = FDH_DETAIL_NONE,
	},
	/* Named by a caller that knows the protocol; a unix socket to the
	 * kernel, to /proc, and to inspecting. */
	[FDH_KIND_VHOST_USER] = {
		.name = "vhost-user",
		.compares = KIND_ID, .carrier = FDH_KIND_UNIX_SOCKET,
		.pins_file = true, .read_id = socket_read_id,
		.id_from_info = socket_id_from_info,
		.detail = FDH_DETAIL_VHOST_USER,
	},
	[FDH_KIND_UNIX_SOCKET] = {
		.name = "unix", .probe = unix_probe, .fill = unix_fill,
		.compares = KIND_ID, .pins_file = true,
		.read_id = socket_read_id, .id_from_info = socket_id_from_info,
		.detail = FDH_DETAIL_NONE,
	},
	/* pidfs (6.9+) keeps the anon_inode name for compatibility. */
	[FDH_KIND_PIDFD] = {
		.name = "pidfd", .link = "anon_inode:[pidfd]", .fill = pidfd_fill,
		.detail = FDH_DETAIL_NONE,
	},
	[FDH_KIND_EPOLL] = {
		.name = "epoll", .link = "anon_inode:[eventpoll]",
		.fill = epoll_fill,
		.detail = FDH_DETAIL_NONE,
	},
	[FDH_KIND_PIPE] = {
		.name = "pipe", .probe = pipe_probe,
		.detail = FDH_DETAIL_NONE,
	},
	[FDH_KIND_FILE] = {
		.name = "file", .probe = file_probe,
		.detail = FDH_DETAIL_NONE,
	},
	[FDH_KIND_SOCKET] = {
		.name = "socket", .probe = socket_probe,
		.compares = KIND_ID, .pins_file = true,
		.read_id = socket_read_id, .id_from_info = socket_id_from_info,
		.detail = FDH_DETAIL_NONE,
	},
};

/* Inspecting: first match wins; order matters where kinds overlap. */
static const enum fdh_kind probe_order[] = {
	FDH_KIND_MEMFD,		/* before FILE: a memfd is a regular file too */
	FDH_KIND_TAP,
	FDH_KIND_VHOST_NET,
	FDH_KIND_EVENTFD,
	FDH_KIND_PIDFD,
	FDH_KIND_EPOLL,
	FDH_KIND_UNIX_SOCKET,	/* before SOCKET, which takes every other family */
	FDH_KIND_SOCKET,
	FDH_KIND_PIPE,
	FDH_KIND_FILE,
};

const struct fdh_kind_ops *fdh_kind_ops(uint32_t kind)
{
	static const struct fdh_kind_ops unknown = { .detail = FDH_DETAIL_NONE };

	return kind < FDH_KIND__MAX ? &kinds[kind] : &unknown;
}

void fdh_kind_classify(const struct fdh_probe_ctx *c, struct fdh_fd_info *info)
{
	for (size_t i = 0; i < sizeof(probe_order) / sizeof(probe_order[0]); i++) {
		const struct fdh_kind_ops *k = &kinds[probe_order[i]];

		if ((k->link && strcmp(c->target, k->link) == 0) ||
		    (k->probe && k->probe(c))) {
			info->kind = probe_order[i];
			if (k->fill)
				k->fill(c, info);
			return;
		}
	}
	info->kind = FDH_KIND_OTHER;
}

const char *fdh_kind_name(enum fdh_kind kind)
{
	return fdh_kind_ops(kind)->name;
}

int fdh_kind_from_name(const char *name)
{
	for (int k = 0; k < FDH_KIND__MAX; k++)
		if (name && strcmp(name, kinds[k].name) == 0)
			return k;
	return fdh_fail(-EINVAL, -1, "no fd kind named '%s'",
			name ? name : "(null)");
}
