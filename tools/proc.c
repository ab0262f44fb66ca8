// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What the CLI reads from /proc beyond the library: comm, cmdline, and who
 * holds a given socket.  Every reader tolerates processes that exit while
 * it runs: a vanished process is skipped or reported, never fatal.
 */
#include "cli.h"

#include "fdhandover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* /proc/PID/cmdline is cut at this size; QEMU command lines fit. */
#define CMDLINE_MAX (256 * 1024)

int proc_comm(pid_t pid, char comm[16])
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, comm, 15);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n < 0)
		return (int)n;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	return 0;
}

int proc_cmdline(pid_t pid, char ***ret_argv, int *ret_argc)
{
	char path[64], *buf, **argv;
	size_t len = 0;
	int fd, argc = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	buf = malloc(CMDLINE_MAX + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len < CMDLINE_MAX) {
		n = read(fd, buf + len, CMDLINE_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len == 0) {
		free(buf);
		return -ENOENT;
	}
	buf[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0')
			argc++;
	if (buf[len - 1] != '\0')
		argc++;
	/* One block: the pointers, then the strings they point into. */
	argv = malloc((size_t)(argc + 1) * sizeof(*argv) + len + 1);
	if (!argv) {
		free(buf);
		return -ENOMEM;
	}
	memcpy(argv + argc + 1, buf, len + 1);
	free(buf);
	buf = (char *)(argv + argc + 1);
	for (int i = 0; i < argc; i++) {
		argv[i] = buf;
		buf += strlen(buf) + 1;
	}
	argv[argc] = NULL;
	*ret_argv = argv;
	*ret_argc = argc;
	return 0;
}

/* "socket:[12345]" → 12345; 0 for any other link. */
static uint64_t socket_link_ino(const char *link)
{
	static const char prefix[] = "socket:[";
	char *end;
	uint64_t ino;

	if (strncmp(link, prefix, sizeof(prefix) - 1) != 0)
		return 0;
	ino = strtoull(link + sizeof(prefix) - 1, &end, 10);
	return *end == ']' ? ino : 0;
}

struct scan {
	struct sock_holder *h;
	size_t n;
	pid_t avoid;
	bool *by_other;		/* h[i] is held by a process not avoid */
	size_t n_other;
	unsigned int links_left;
};

static void note_holder(struct scan *s, pid_t pid, int fd, uint64_t ino)
{
	for (size_t i = 0; i < s->n; i++) {
		struct sock_holder *h = &s->h[i];

		if (h->ino != ino || s->by_other[i])
			continue;
		/* avoid only until someone else turns up. */
		if (pid == s->avoid && h->pid)
			continue;
		h->pid = pid;
		h->fd = fd;
		if (proc_comm(pid, h->comm) < 0)
			h->comm[0] = '\0';
		if (pid != s->avoid) {
			s->by_other[i] = true;
			s->n_other++;
		}
	}
}

/* One process; false once the scan's budget is spent. */
static bool scan_process(struct scan *s, pid_t pid)
{
	char path[64], link[64];
	struct dirent *de;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir)
		return true;	/* exited, or not ours to read: skip */
	while ((de = readdir(dir))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		ssize_t n;
		uint64_t ino;

		if (de->d_name[0] == '.' || *end || fd < 0 || fd > INT_MAX)
			continue;
		if (s->links_left-- == 0) {
			closedir(dir);
			return false;
		}
		snprintf(path, sizeof(path), "/proc/%d/fd/%ld", pid, fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;	/* closed meanwhile */
		link[n] = '\0';
		ino = socket_link_ino(link);
		if (ino)
			note_holder(s, pid, (int)fd, ino);
	}
	closedir(dir);
	return true;
}

int proc_socket_holders(struct sock_holder *h, size_t n, pid_t avoid)
{
	struct scan s = {
		.h = h, .n = n, .avoid = avoid,
		.links_left = PROC_SCAN_MAX_LINKS,
	};
	struct dirent *de;
	size_t found = 0;
	DIR *proc;

	if (!n)
		return 0;
	s.by_other = calloc(n, sizeof(*s.by_other));
	if (!s.by_other)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		h[i].pid = 0;
		h[i].fd = -1;
		h[i].comm[0] = '\0';
	}
	proc = opendir("/proc");
	if (!proc) {
		free(s.by_other);
		return -errno;
	}
	/* Every process is read: there is no index from socket to holder. */
	while (s.n_other < n && (de = readdir(proc))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (de->d_name[0] == '.' || *end || pid <= 0 || pid > INT_MAX)
			continue;
		if (!scan_process(&s, (pid_t)pid))
			break;
	}
	closedir(proc);
	for (size_t i = 0; i < n; i++)
		if (h[i].pid)
			found++;
	free(s.by_other);
	return (int)found;
}

static int compare_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

int proc_fds(pid_t pid, int **ret_fds, size_t *ret_n)
{
	size_t n = 0, cap = 0;
	struct dirent *de;
	int *fds = NULL;
	char path[64];
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((de = readdir(dir))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);

		if (de->d_name[0] == '.' || *end || fd < 0 || fd > INT_MAX)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			int *grown = realloc(fds, ncap * sizeof(*fds));

			if (!grown) {
				free(fds);
				closedir(dir);
				return -ENOMEM;
			}
			fds = grown;
			cap = ncap;
		}
		fds[n++] = (int)fd;
	}
	closedir(dir);
	/* A zombie lists no fds: it is gone, not a process without fds. */
	if (n == 0 && fdh_process_gone(pid)) {
		free(fds);
		return -ESRCH;
	}
	if (n > 1)	/* qsort(NULL, 0) is undefined */
		qsort(fds, n, sizeof(*fds), compare_int);
	*ret_fds = fds;
	*ret_n = n;
	return 0;
}

/* "vhost-<owner>" is task tid's name (a thread's /proc/<tid> exists unlisted). */
static bool is_vhost_worker(pid_t tid, const char *want)
{
	char comm[16];

	return proc_comm(tid, comm) == 0 && strcmp(comm, want) == 0;
}

int proc_vhost_workers(pid_t pid)
{
	char want[32], dir[64];
	struct dirent *d;
	DIR *proc;
	int n = 0;

	snprintf(want, sizeof(want), "vhost-%d", (int)pid);
	/* 6.4+: threads of the owner (never the main thread). */
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	proc = opendir(dir);
	if (!proc)
		return -errno;
	while ((d = readdir(proc))) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9' ||
		    atoi(d->d_name) == pid)
			continue;
		n += is_vhost_worker(atoi(d->d_name), want);
	}
	closedir(proc);
	if (n)
		return n;
	/* Up to 6.3: kernel threads, children of kthreadd (pid 2). */
	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while ((d = readdir(proc))) {
		char stat[320], buf[256], *rp;
		FILE *f;
		int ppid = -1;

		if (d->d_name[0] < '1' || d->d_name[0] > '9' ||
		    !is_vhost_worker(atoi(d->d_name), want))
			continue;
		snprintf(stat, sizeof(stat), "/proc/%s/stat", d->d_name);
		f = fopen(stat, "re");
		if (!f)
			continue;
		/* "pid (comm) S ppid ...": comm may hold anything, so from the last ')' */
		if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')))
			sscanf(rp + 1, " %*c %d", &ppid);
		fclose(f);
		n += ppid == 2;
	}
	closedir(proc);
	return n;
}
