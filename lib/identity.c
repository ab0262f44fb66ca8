// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Identity of a local fd, and comparison with an expected identity.
 *
 * dev/ino is not enough: every eventfd has the same anonymous inode and
 * every TAP queue is /dev/net/tun, so each kind adds its own key (see
 * struct fdh_identity).  This file is on the pull's hot path: it asks the
 * kernel only what the kind needs (one ioctl for a TAP, one fdinfo read
 * for an eventfd).
 */
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "fdh-internal.h"

/* Character devices we recognise by number (misc major 10). */
#define TUN_MINOR 200
#define VHOST_NET_MINOR 238

static int anon_inode_kind(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	if (strcmp(target, "anon_inode:[eventfd]") == 0)
		return FDH_KIND_EVENTFD;
	if (strcmp(target, "anon_inode:[pidfd]") == 0)
		return FDH_KIND_PIDFD;
	if (strcmp(target, "anon_inode:[eventpoll]") == 0)
		return FDH_KIND_EPOLL;
	if (strncmp(target, "/memfd:", 7) == 0)
		return FDH_KIND_MEMFD;
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

static enum fdh_kind kind_of(int fd, const struct stat *st)
{
	int domain;
	socklen_t len = sizeof(domain);

	switch (st->st_mode & S_IFMT) {
	case S_IFCHR:
		if (major(st->st_rdev) == 10 && minor(st->st_rdev) == TUN_MINOR)
			return FDH_KIND_TAP;
		if (major(st->st_rdev) == 10 &&
		    minor(st->st_rdev) == VHOST_NET_MINOR)
			return FDH_KIND_VHOST_NET;
		return FDH_KIND_OTHER;
	case S_IFSOCK:
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
		    domain == AF_UNIX)
			return FDH_KIND_UNIX_SOCKET;
		return FDH_KIND_SOCKET;
	case S_IFIFO:
		return FDH_KIND_PIPE;
	case S_IFREG: {
		int k = anon_inode_kind(fd);

		return k == FDH_KIND_MEMFD ? FDH_KIND_MEMFD : FDH_KIND_FILE;
	}
	case 0: {	/* anonymous inodes have no file type */
		int k = anon_inode_kind(fd);

		return k < 0 ? FDH_KIND_OTHER : (enum fdh_kind)k;
	}
	}
	return FDH_KIND_OTHER;
}

int fdh_identity_of_fd(int fd, struct fdh_identity *ret_identity)
{
	struct fdh_identity id = { 0 };
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return fdh_fail(-errno, -1, "fstat(fd %d): %m", fd);
	id.kind = kind_of(fd, &st);
	id.dev = st.st_dev;
	id.ino = st.st_ino;
	id.mode = st.st_mode;
	switch (id.kind) {
	case FDH_KIND_EVENTFD:
		r = eventfd_id(-1, fd, &id.kind_id);
		if (r < 0)
			return fdh_fail(r, -1, "fdinfo of eventfd %d: no eventfd-id (%s)",
					fd, strerror(-r));
		break;
	case FDH_KIND_UNIX_SOCKET:
	case FDH_KIND_SOCKET:
		id.kind_id = st.st_ino;
		break;
	case FDH_KIND_TAP:
		/* A tun fd not yet attached has no name; that is not an error. */
		if (tap_ifname(fd, id.name) < 0)
			id.name[0] = '\0';
		break;
	default:
		break;
	}
	*ret_identity = id;
	return 0;
}

static bool is_socket_kind(uint32_t kind)
{
	return kind == FDH_KIND_UNIX_SOCKET || kind == FDH_KIND_SOCKET ||
	       kind == FDH_KIND_VHOST_USER;
}

int fdh_identity_compare(const struct fdh_identity *expect,
			 const struct fdh_identity *got, char *why,
			 size_t why_size)
{
	if (expect->dev != got->dev || expect->ino != got->ino) {
		snprintf(why, why_size,
			 "dev/ino %llu:%llu, expected %llu:%llu",
			 (unsigned long long)got->dev,
			 (unsigned long long)got->ino,
			 (unsigned long long)expect->dev,
			 (unsigned long long)expect->ino);
		return -ESTALE;
	}
	if ((expect->mode & S_IFMT) != (got->mode & S_IFMT)) {
		snprintf(why, why_size, "file type 0%o, expected 0%o",
			 got->mode & S_IFMT, expect->mode & S_IFMT);
		return -ESTALE;
	}
	/* Kinds that one fdh_identity_of_fd() cannot tell apart from their
	 * carrier: a vhost-user socket is a unix socket. */
	if (expect->kind != got->kind &&
	    !(expect->kind == FDH_KIND_VHOST_USER &&
	      got->kind == FDH_KIND_UNIX_SOCKET) &&
	    expect->kind != FDH_KIND_OTHER) {
		snprintf(why, why_size, "kind %s, expected %s",
			 fdh_kind_name(got->kind) ?: "?",
			 fdh_kind_name(expect->kind) ?: "?");
		return -ESTALE;
	}
	/* eventfd-id 0 is a real id (the first eventfd after boot). */
	if ((expect->kind == FDH_KIND_EVENTFD || is_socket_kind(expect->kind)) &&
	    expect->kind_id != got->kind_id) {
		snprintf(why, why_size, "%s id %llu, expected %llu",
			 fdh_kind_name(expect->kind),
			 (unsigned long long)got->kind_id,
			 (unsigned long long)expect->kind_id);
		return -ESTALE;
	}
	if (expect->kind == FDH_KIND_TAP && expect->name[0] &&
	    strncmp(expect->name, got->name, sizeof(expect->name)) != 0) {
		snprintf(why, why_size, "TAP interface '%s', expected '%s'",
			 got->name, expect->name);
		return -ESTALE;
	}
	return 0;
}

int fdh_identity_check_fd(int fdinfo_dir, int fd,
			  const struct fdh_identity *expect, char *why,
			  size_t why_size)
{
	struct fdh_identity got = { .kind = expect->kind };
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0) {
		snprintf(why, why_size, "fstat: %s", strerror(errno));
		return -errno;
	}
	got.dev = st.st_dev;
	got.ino = st.st_ino;
	got.mode = st.st_mode;
	/* Only what the expected kind needs: a readable eventfd-id proves an
	 * eventfd, a TUNGETIFF answer proves a TAP. */
	switch (expect->kind) {
	case FDH_KIND_EVENTFD:
		r = eventfd_id(fdinfo_dir, fd, &got.kind_id);
		if (r < 0) {
			snprintf(why, why_size, "not an eventfd (no eventfd-id)");
			return -ESTALE;
		}
		break;
	case FDH_KIND_TAP:
		if (tap_ifname(fd, got.name) < 0)
			got.name[0] = '\0';
		break;
	case FDH_KIND_UNIX_SOCKET:
	case FDH_KIND_SOCKET:
	case FDH_KIND_VHOST_USER:
		got.kind_id = st.st_ino;
		break;
	default:
		break;
	}
	return fdh_identity_compare(expect, &got, why, why_size);
}
