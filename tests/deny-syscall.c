// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * deny-syscall NAME ERRNO -- CMD [ARGS...]: run CMD with syscall NAME
 * failing with ERRNO (a name like EPERM or a number), by seccomp.  The
 * end-to-end tests use it to make a target QEMU's pidfd_getfd fail.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int errno_of(const char *s)
{
	static const struct { const char *name; int value; } names[] = {
		{ "EPERM", EPERM }, { "ENOSYS", ENOSYS }, { "EACCES", EACCES },
		{ "EBADF", EBADF }, { "ESRCH", ESRCH },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].value;
	return atoi(s);
}

int main(int argc, char **argv)
{
	scmp_filter_ctx ctx;
	int nr, err, r;

	if (argc < 5 || strcmp(argv[3], "--") != 0) {
		fprintf(stderr, "usage: deny-syscall NAME ERRNO -- CMD [ARGS...]\n");
		return 2;
	}
	nr = seccomp_syscall_resolve_name(argv[1]);
	err = errno_of(argv[2]);
	if (nr == __NR_SCMP_ERROR || err <= 0) {
		fprintf(stderr, "deny-syscall: unknown syscall '%s' or errno '%s'\n",
			argv[1], argv[2]);
		return 2;
	}
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return 1;
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO((unsigned int)err), nr, 0);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	if (r < 0) {
		fprintf(stderr, "deny-syscall: seccomp: %s\n", strerror(-r));
		return 1;
	}
	execvp(argv[4], argv + 4);
	fprintf(stderr, "deny-syscall: %s: %s\n", argv[4], strerror(errno));
	return 127;
}
