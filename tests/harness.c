// SPDX-License-Identifier: LGPL-2.1-or-later
/* The runner behind harness.h: fork per test, KTAP out, kill the group. */
#include "harness.h"

#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TH_EXIT_SKIP 4	/* kselftest's KSFT_SKIP */

/*
 * Tests end with _exit(), which skips LeakSanitizer's exit-time check:
 * under ASan, ask for it explicitly so a leak fails the test.
 */
#if defined(__SANITIZE_ADDRESS__)
#define TH_LEAK_CHECK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TH_LEAK_CHECK 1
#endif
#endif
#ifdef TH_LEAK_CHECK
#include <sanitizer/lsan_interface.h>
#endif

static struct th_test *th_head, **th_tail = &th_head;

void th_register(struct th_test *t)
{
	*th_tail = t;
	th_tail = &t->next;
}

void th_diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

const char *th_cmp_text(const char *expr, long long a, long long b)
{
	static char text[320];

	snprintf(text, sizeof(text), "%s (%lld vs %lld)", expr, a, b);
	return text;
}

void th_fail(struct th_meta *meta, bool fatal, const char *file, int line,
	     const char *expr, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	meta->failed = 1;
	th_diag("%s:%d: %s: %s%s%s", file, line, fatal ? "ASSERT" : "EXPECT",
		expr, why[1] ? " —" : "", why);
}

void th_skip(struct th_meta *meta, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(meta->reason, sizeof(meta->reason), fmt, ap);
	va_end(ap);
	meta->skipped = 1;
	fflush(stdout);
	_exit(TH_EXIT_SKIP);
}

static volatile sig_atomic_t th_timed_out;

static void th_on_alarm(int sig)
{
	(void)sig;
	th_timed_out = 1;
}

/* Run one test in a child of its own process group; 0 pass, 1 fail, 2 skip. */
static int th_run(struct th_test *t, struct th_meta *meta)
{
	struct sigaction sa = { .sa_handler = th_on_alarm };
	int status = 0;
	pid_t pid;

	memset(meta, 0, sizeof(*meta));
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		snprintf(meta->reason, sizeof(meta->reason), "fork: %m");
		return 1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		t->fn(meta);
#ifdef TH_LEAK_CHECK
		if (__lsan_do_recoverable_leak_check()) {
			th_diag("%s: LeakSanitizer found leaks", t->name);
			meta->failed = 1;
		}
#endif
		fflush(stdout);
		_exit(meta->failed ? 1 : 0);
	}
	setpgid(pid, pid);

	th_timed_out = 0;
	sigaction(SIGALRM, &sa, NULL);
	alarm(t->timeout_s);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno == EINTR && th_timed_out) {
			kill(-pid, SIGKILL);
			th_diag("%s: timed out after %u s", t->name, t->timeout_s);
			meta->failed = 1;
		} else if (errno != EINTR) {
			break;
		}
	}
	alarm(0);
	/* Whatever the test left behind dies with it. */
	kill(-pid, SIGKILL);

	if (meta->skipped)
		return 2;
	if (meta->failed)
		return 1;
	if (WIFSIGNALED(status)) {
		th_diag("%s: killed by signal %d", t->name, WTERMSIG(status));
		return 1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return 1;
	return 0;
}

int th_main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	unsigned int n = 0, i = 0, pass = 0, fail = 0, skip = 0;
	struct th_meta *meta;
	struct th_test *t;

	meta = mmap(NULL, sizeof(*meta), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (meta == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (t = th_head; t; t = t->next)
		if (!filter || strstr(t->name, filter))
			n++;

	printf("TAP version 13\n1..%u\n", n);
	for (t = th_head; t; t = t->next) {
		if (filter && !strstr(t->name, filter))
			continue;
		i++;
		switch (th_run(t, meta)) {
		case 0:
			printf("ok %u %s\n", i, t->name);
			pass++;
			break;
		case 2:
			printf("ok %u %s # SKIP %s\n", i, t->name, meta->reason);
			skip++;
			break;
		default:
			printf("not ok %u %s\n", i, t->name);
			fail++;
		}
	}
	printf("# Totals: pass:%u fail:%u xfail:0 xpass:0 skip:%u error:0\n",
	       pass, fail, skip);
	return fail ? 1 : 0;
}
