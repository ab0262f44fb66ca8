// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Inspect: describe the fds of a live process from the outside.
 *
 * The generic fields come from /proc/PID/fd/N (stat and link target) and
 * /proc/PID/fdinfo/N, which need only ptrace *read* permission, read here
 * as one snapshot; the kind and its details come from the kind table
 * (lib/kind.c), which is handed the snapshot.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fdh-internal.h"
#include "kind.h"

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
/* Public                                                             */

/* 0, 1 when the reads disagree (retry), or -errno recorded. */
static int take_snapshot(pid_t pid, int fd, struct snapshot *s)
{
	char path[64];
	uint64_t ino;
	ssize_t n;
	int r;

	fdh_proc_fd_path(path, sizeof(path), pid, fd);
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
	struct fdh_probe_ctx c;
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
	fdh_copy_bytes(info.target, sizeof(info.target), s->target,
		   sizeof(s->target));
	info.dev = s->st.st_dev;
	info.ino = s->st.st_ino ? s->st.st_ino : fdh_fdinfo_u64(s->fdinfo, "ino", 10);
	info.mode = s->st.st_mode;
	info.flags = (uint32_t)fdh_fdinfo_u64(s->fdinfo, "flags", 8);
	info.pos = fdh_fdinfo_u64(s->fdinfo, "pos", 10);
	info.mnt_id = fdh_fdinfo_u64(s->fdinfo, "mnt_id", 10);

	c = (struct fdh_probe_ctx){
		.pid = pid, .fd = fd, .flags = flags,
		.st = &s->st, .target = s->target, .fdinfo = s->fdinfo,
	};
	fdh_kind_classify(&c, &info);
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
	const struct fdh_kind_ops *k;
	struct fdh_identity id = { 0 };

	if (!info || !ret_identity)
		return;
	k = fdh_kind_ops(info->kind);
	id.kind = info->kind;
	id.dev = info->dev;
	id.ino = info->ino;
	id.mode = info->mode;
	/* Must agree with fdh_identity_of_fd() on a pulled copy. */
	if (k->id_from_info)
		k->id_from_info(info, &id);
	*ret_identity = id;
}
