// SPDX-License-Identifier: LGPL-2.1-or-later
/* Reading /proc: fdinfo text and a process's stat line. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fdh-internal.h"

static int read_file(const char *path, char *buf, size_t size)
{
	ssize_t n;
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len + 1 < size) {
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			n = -errno;
			close(fd);
			return (int)n;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (int)len;
}

static bool process_exists(pid_t pid)
{
	char path[32];

	snprintf(path, sizeof(path), "/proc/%d", pid);
	return access(path, F_OK) == 0;
}

int fdh_fdinfo_read(pid_t pid, int fd, char *buf, size_t size)
{
	char path[64];
	int r;

	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	else
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	r = read_file(path, buf, size);
	if (r == -ENOENT)
		return pid == 0 || process_exists(pid) ? -EBADF : -ESRCH;
	return r;
}

const char *fdh_fdinfo_get(const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
			p += klen + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

int fdh_fdinfo_get_u64(const char *text, const char *key, int base,
		       uint64_t *ret)
{
	const char *v = fdh_fdinfo_get(text, key);
	char *end;
	unsigned long long x;

	if (!v)
		return -ENOENT;
	errno = 0;
	x = strtoull(v, &end, base);
	if (errno || end == v)
		return -EINVAL;
	*ret = x;
	return 0;
}

int fdh_proc_stat(pid_t pid, uint64_t *ret_start_time, uid_t *ret_uid,
		  char ret_comm[16])
{
	char path[64], buf[1024], status[4096];
	unsigned long long start;
	uint64_t uid;
	char *open_paren, *close_paren, *p;
	int r, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	r = read_file(path, buf, sizeof(buf));
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	/* comm may hold spaces and parentheses: it ends at the last ')'. */
	open_paren = strchr(buf, '(');
	close_paren = strrchr(buf, ')');
	if (!open_paren || !close_paren || close_paren < open_paren)
		return -EPROTO;
	/* Field 3 starts after ") "; start time is field 22. */
	p = close_paren + 2;
	for (field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p || sscanf(p, "%llu", &start) != 1)
		return -EPROTO;

	/* The real uid, as ptrace permission checks it; /proc/PID's owner
	 * turns root when the process is not dumpable. */
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	r = read_file(path, status, sizeof(status));
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	r = fdh_fdinfo_get_u64(status, "Uid", 10, &uid);
	if (r < 0)
		return -EPROTO;

	if (ret_start_time)
		*ret_start_time = start;
	if (ret_uid)
		*ret_uid = (uid_t)uid;
	if (ret_comm) {
		size_t len = (size_t)(close_paren - open_paren - 1);

		if (len > 15)
			len = 15;
		memcpy(ret_comm, open_paren + 1, len);
		ret_comm[len] = '\0';
	}
	return 0;
}

bool fdh_process_gone(pid_t pid)
{
	char path[64], buf[512];
	const char *paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 && errno == ESRCH;
	buf[n] = '\0';
	/* comm may hold ')': the state follows the last one. */
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}
