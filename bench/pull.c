// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * bench/pull: what verification costs per fd, next to what taking the fd
 * costs at all.  In one run, against one live source process:
 *
 *   bare      pidfd_getfd() for each of N remote fds, nothing else;
 *   verified  fdh_pull(): pidfd_getfd + fstat/kind identity + kcmp per fd,
 *             and the distinctness check of the whole set;
 *   scm       a raw SCM_RIGHTS baseline: one fdh_wire_request to the
 *             source, which answers with fdh_serve_one() (batches of up to
 *             253 fds); timed end to end on the receiving side, request
 *             round trip included, nothing verified;
 *   fallback  (-f) fdh_pull() through its SCM_RIGHTS fallback, in a forked
 *             puller whose pidfd_getfd seccomp refuses with EPERM.
 *
 * The methods are interleaved per repetition (bare, verified, scm,
 * [fallback], bare, ...) so that noise on a shared machine lands on all of
 * them alike.  Only getting the fds is timed (CLOCK_MONOTONIC); closing
 * them happens after the clock stops, the same way for every method.
 * Misses of the targets are reported, never turned into an exit status.
 * See bench/README.md.
 */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdh-internal.h"

#define MAX_SIZES 16
#define MAX_REPS 100000
#define DEFAULT_REPS 25
#define MEMFD_SIZE (2u << 20)	/* sparse; the size costs nothing to pull */

/* The targets this bench checks (see Documentation/design.md). */
#define TARGET_RATIO 1.5	/* verified per fd <= 1.5x bare per fd */
#define TARGET_N 64		/* ... judged at this N */
#define TARGET_TOTAL_US 150.0	/* 64 fds pulled+verified */

enum method { M_BARE, M_VERIFIED, M_SCM, M_FALLBACK, M__MAX };

static const char *const method_names[M__MAX] = {
	[M_BARE] = "bare",
	[M_VERIFIED] = "verified",
	[M_SCM] = "scm",
	[M_FALLBACK] = "fallback",
};

enum bench_kind { K_MEMFD, K_EVENTFD, K_MIXED };

static const char *const bench_kind_names[] = {
	[K_MEMFD] = "memfd",
	[K_EVENTFD] = "eventfd",
	[K_MIXED] = "mixed",
};

struct options {
	int reps;
	enum bench_kind kind;
	size_t sizes[MAX_SIZES];
	size_t n_sizes;
	bool fallback;
	bool json;
};

/* Written by the source before it says "ready", read by everyone after. */
struct shared {
	size_t n;
	int remote_fds[FDH_PULL_MAX];
	struct fdh_identity ids[FDH_PULL_MAX];
};

/* Fallback puller protocol over a SOCK_SEQPACKET pair. */
struct puller_cmd {
	uint32_t n;		/* 0: exit */
};

struct puller_reply {
	int32_t r;		/* fdh_pull()'s result */
	uint32_t transport;
	uint64_t kcmp_verified;
	uint64_t elapsed_ns;
};

struct stats {
	double med_total_us;
	double med_us, min_us, max_us;	/* per fd */
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("pull: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

/* fork(); the child closes the given fds (-1 skipped): the parent's ends. */
static pid_t fork_closing(int *close_in_child, size_t n)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %m");
	if (pid == 0)
		close_fds(close_in_child, n);
	return pid;
}

/* Enough fd slots for the largest set twice over, plus slack. */
static void raise_nofile(size_t max_n)
{
	rlim_t need = (rlim_t)(2 * max_n + 256);
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit: %m");
	if (rl.rlim_cur >= need)
		return;
	if (rl.rlim_max < need)
		rl.rlim_max = need;	/* works for root (CAP_SYS_RESOURCE) */
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("setrlimit(RLIMIT_NOFILE, %llu): %m (raise the hard limit: ulimit -Hn)",
		    (unsigned long long)need);
}

/* ------------------------------------------------------------------ */
/* Source process                                                     */

static int make_fd(enum bench_kind kind, size_t i)
{
	char name[32];
	int fd;

	if (kind == K_EVENTFD || (kind == K_MIXED && i % 2)) {
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	} else {
		snprintf(name, sizeof(name), "bench-ram%zu", i);
		fd = memfd_create(name, MFD_CLOEXEC);
		if (fd >= 0 && ftruncate(fd, MEMFD_SIZE) < 0)
			return -1;
	}
	return fd;
}

/*
 * The source: holds n fds of the kind, publishes their numbers and
 * identities (as a real source publishes its manifest), then serves
 * fallback requests on its cooperation sockets until ctl closes.
 */
static void source_main(struct shared *sh, enum bench_kind kind, size_t n,
			int ctl, int coop_scm, int coop_fallback)
{
	struct pollfd p[3] = {
		{ .fd = ctl, .events = POLLIN },
		{ .fd = coop_scm, .events = POLLIN },
		{ .fd = coop_fallback, .events = POLLIN },
	};
	char ready = 'R';

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (size_t i = 0; i < n; i++) {
		int fd = make_fd(kind, i);

		if (fd < 0 || fdh_identity_of_fd(fd, &sh->ids[i]) < 0)
			_exit(3);
		sh->remote_fds[i] = fd;
	}
	sh->n = n;
	if (write(ctl, &ready, 1) != 1)
		_exit(3);
	for (;;) {
		if (poll(p, coop_fallback >= 0 ? 3 : 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(4);
		}
		if (p[0].revents)
			_exit(0);	/* ctl closed: the bench is done */
		for (int j = 1; j < 3; j++)
			if (p[j].fd >= 0 && p[j].revents &&
			    fdh_serve_one(p[j].fd, NULL, 0) <= 0)
				_exit(0);
	}
}

/* ------------------------------------------------------------------ */
/* The measured operations                                            */

struct ctx {
	const struct shared *sh;
	struct fdh_source *src;
	int pidfd;
	int coop_scm;			/* our end; the source serves the other */
	int puller;			/* ctl of the fallback puller, or -1 */
	struct fdh_pull_entry *entries;
	int *fds;
	size_t kcmp_verified[M__MAX];	/* of the last verified/fallback pull */
};

static uint64_t run_bare(struct ctx *c, size_t n)
{
	uint64_t t0, t1;

	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		c->fds[i] = fdh_sys_pidfd_getfd(c->pidfd, c->sh->remote_fds[i], 0);
		if (c->fds[i] < 0)
			die("pidfd_getfd(fd %d): %m", c->sh->remote_fds[i]);
	}
	t1 = now_ns();
	close_fds(c->fds, n);
	return t1 - t0;
}

static uint64_t run_verified(struct ctx *c, size_t n)
{
	struct fdh_pull_report report;
	uint64_t t0, t1;
	int r;

	t0 = now_ns();
	r = fdh_pull(c->src, c->entries, n, c->fds, &report);
	t1 = now_ns();
	if (r < 0)
		die("fdh_pull(%zu): %s", n, fdh_last_error()->msg);
	if (report.transport != FDH_TRANSPORT_PIDFD)
		die("fdh_pull(%zu) took %s: not the path this bench measures",
		    n, fdh_transport_name(report.transport));
	c->kcmp_verified[M_VERIFIED] = report.n_kcmp_verified;
	close_fds(c->fds, n);
	return t1 - t0;
}

static void scm_request(int sock, const int *remote_fds, size_t n)
{
	struct fdh_wire_request req = { FDH_WIRE_MAGIC, (uint32_t)n };
	struct iovec iov[2] = {
		{ &req, sizeof(req) },
		{ (void *)remote_fds, n * sizeof(int32_t) },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

	if (sendmsg(sock, &msg, MSG_NOSIGNAL) !=
	    (ssize_t)(sizeof(req) + n * sizeof(int32_t)))
		die("SCM_RIGHTS request: %m");
}

/* One reply of fdh_serve_one(): its header and up to 253 fds. */
static size_t scm_receive(int sock, int *fds, size_t n)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDH_SCM_BATCH)];
		struct cmsghdr align;
	} control;
	struct fdh_wire_reply reply;
	struct iovec iov = { &reply, sizeof(reply) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof(control.buf),
	};
	size_t got = 0;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != (ssize_t)sizeof(reply) ||
	    reply.magic != FDH_WIRE_MAGIC || reply.status != 0 ||
	    (msg.msg_flags & MSG_CTRUNC))
		die("SCM_RIGHTS reply: bad message (%m)");
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm;
	     cm = CMSG_NXTHDR(&msg, cm)) {
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
		    reply.first + got + k > n)
			die("SCM_RIGHTS reply: unexpected control message");
		memcpy(fds + reply.first + got, CMSG_DATA(cm), k * sizeof(int));
		got += k;
	}
	if (got != reply.n)
		die("SCM_RIGHTS reply: %zu fds attached, header says %u",
		    got, reply.n);
	return got;
}

static uint64_t run_scm(struct ctx *c, size_t n)
{
	uint64_t t0, t1;
	size_t done = 0;

	t0 = now_ns();
	scm_request(c->coop_scm, c->sh->remote_fds, n);
	while (done < n)
		done += scm_receive(c->coop_scm, c->fds, n);
	t1 = now_ns();
	close_fds(c->fds, n);
	return t1 - t0;
}

static uint64_t run_fallback(struct ctx *c, size_t n)
{
	struct puller_cmd cmd = { (uint32_t)n };
	struct puller_reply rep;

	if (send(c->puller, &cmd, sizeof(cmd), MSG_NOSIGNAL) != sizeof(cmd) ||
	    recv(c->puller, &rep, sizeof(rep), 0) != sizeof(rep))
		die("fallback puller: no answer");
	if (rep.r < 0)
		die("fallback puller: fdh_pull(%zu): %s", n, strerror(-rep.r));
	if (rep.transport != FDH_TRANSPORT_SCM_RIGHTS)
		die("fallback puller: fdh_pull(%zu) took %s: not the fallback path",
		    n, fdh_transport_name(rep.transport));
	c->kcmp_verified[M_FALLBACK] = (size_t)rep.kcmp_verified;
	return rep.elapsed_ns;
}

/*
 * A puller whose pidfd_getfd fails with EPERM (seccomp, as a container
 * runtime's profile would), so that fdh_pull() falls back to SCM_RIGHTS.
 * Timed here, around fdh_pull() only.
 */
static void puller_main(const struct shared *sh, pid_t source_pid, int ctl,
			int coop)
{
	struct fdh_pull_entry *entries = calloc(sh->n, sizeof(*entries));
	int *fds = malloc(sh->n * sizeof(*fds));
	struct fdh_source *src;
	scmp_filter_ctx filter;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!entries || !fds)
		_exit(3);
	for (size_t i = 0; i < sh->n; i++) {
		entries[i].remote_fd = sh->remote_fds[i];
		entries[i].expect = sh->ids[i];
	}
	if (fdh_source_open_pid(source_pid, 0, &src) < 0 ||
	    fdh_source_set_socket(src, coop) < 0)
		_exit(3);
	close(coop);
	filter = seccomp_init(SCMP_ACT_ALLOW);
	if (!filter ||
	    seccomp_rule_add(filter, SCMP_ACT_ERRNO(EPERM),
			     SCMP_SYS(pidfd_getfd), 0) < 0 ||
	    seccomp_load(filter) < 0)
		_exit(5);
	seccomp_release(filter);

	for (;;) {
		struct puller_cmd cmd;
		struct puller_reply rep = { 0 };
		struct fdh_pull_report report = { 0 };
		uint64_t t0, t1;

		if (recv(ctl, &cmd, sizeof(cmd), 0) != sizeof(cmd) || cmd.n == 0 ||
		    cmd.n > sh->n)
			_exit(0);
		t0 = now_ns();
		rep.r = fdh_pull(src, entries, cmd.n, fds, &report);
		t1 = now_ns();
		rep.transport = report.transport;
		rep.kcmp_verified = report.n_kcmp_verified;
		rep.elapsed_ns = t1 - t0;
		if (rep.r == 0)
			close_fds(fds, cmd.n);
		if (send(ctl, &rep, sizeof(rep), MSG_NOSIGNAL) != sizeof(rep))
			_exit(0);
	}
}

/* ------------------------------------------------------------------ */
/* Statistics and output                                              */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static struct stats stats_of(const uint64_t *samples, int reps, size_t n)
{
	uint64_t *s = malloc((size_t)reps * sizeof(*s));
	struct stats st;
	double med;

	if (!s)
		die("out of memory");
	memcpy(s, samples, (size_t)reps * sizeof(*s));
	qsort(s, (size_t)reps, sizeof(*s), cmp_u64);
	med = reps % 2 ? (double)s[reps / 2] :
			 ((double)s[reps / 2 - 1] + (double)s[reps / 2]) / 2;
	st.med_total_us = med / 1e3;
	st.med_us = med / 1e3 / (double)n;
	st.min_us = (double)s[0] / 1e3 / (double)n;
	st.max_us = (double)s[reps - 1] / 1e3 / (double)n;
	free(s);
	return st;
}

static void read_loadavg(char *buf, size_t size)
{
	FILE *f = fopen("/proc/loadavg", "re");

	buf[0] = '\0';
	if (f) {
		if (fgets(buf, (int)size, f))
			buf[strcspn(buf, " ")] = '\0';	/* the 1-minute figure */
		fclose(f);
	}
}

struct results {
	const struct options *o;
	int n_methods;
	uint64_t *samples[MAX_SIZES][M__MAX];	/* [size][method][rep] */
	struct stats st[MAX_SIZES][M__MAX];
	size_t kcmp_verified[MAX_SIZES][M__MAX];
	char kernel[128];
	char load_before[32], load_after[32];
	long cpus;
};

static int target_index(const struct results *res)
{
	int best = -1;

	for (size_t s = 0; s < res->o->n_sizes; s++) {
		if (res->o->sizes[s] == TARGET_N)
			return (int)s;
		best = (int)s;	/* else the largest N (sizes are sorted) */
	}
	return best;
}

static const char *verdict(bool pass)
{
	return pass ? "PASS" : "MISS";
}

static void print_text(const struct results *res)
{
	const struct options *o = res->o;
	int t = target_index(res);
	double ratio = res->st[t][M_VERIFIED].med_us / res->st[t][M_BARE].med_us;
	double total = 0;
	bool have_total = false;

	printf("bench/pull: kind %s, %d repetitions per N, methods interleaved per repetition\n",
	       bench_kind_names[o->kind], o->reps);
	printf("kernel %s, %ld CPUs, loadavg(1m) %s before, %s after; CLOCK_MONOTONIC\n\n",
	       res->kernel, res->cpus, res->load_before, res->load_after);
	printf("%6s  %-9s %10s %10s %10s %12s %6s\n", "", "", "per fd µs", "", "",
	       "total µs", "kcmp");
	printf("%6s  %-9s %10s %10s %10s %12s %6s\n", "N", "method", "median",
	       "min", "max", "median", "");
	for (size_t s = 0; s < o->n_sizes; s++) {
		for (int m = 0; m < res->n_methods; m++) {
			const struct stats *st = &res->st[s][m];

			if (m == 0)
				printf("%6zu  ", o->sizes[s]);
			else
				printf("%6s  ", "");
			printf("%-9s %10.3f %10.3f %10.3f %12.1f",
			       method_names[m], st->med_us, st->min_us,
			       st->max_us, st->med_total_us);
			if (m == M_VERIFIED || m == M_FALLBACK)
				printf(" %6zu", res->kcmp_verified[s][m]);
			else
				printf(" %6s", "-");
			printf("\n");
		}
	}
	printf("\nratios of the per-fd medians\n");
	printf("%6s  %14s %9s", "N", "verified/bare", "scm/bare");
	if (res->n_methods > M_FALLBACK)
		printf(" %14s", "fallback/bare");
	printf("\n");
	for (size_t s = 0; s < o->n_sizes; s++) {
		double bare = res->st[s][M_BARE].med_us;

		printf("%6zu  %14.2f %9.2f", o->sizes[s],
		       res->st[s][M_VERIFIED].med_us / bare,
		       res->st[s][M_SCM].med_us / bare);
		if (res->n_methods > M_FALLBACK)
			printf(" %14.2f", res->st[s][M_FALLBACK].med_us / bare);
		printf("\n");
	}

	for (size_t s = 0; s < o->n_sizes; s++)
		if (o->sizes[s] == TARGET_N) {
			total = res->st[s][M_VERIFIED].med_total_us;
			have_total = true;
		}
	printf("\ntargets (N=%zu)\n", o->sizes[t]);
	printf("verified pull ≤ %.1f× bare per fd: %.2f (%s by %.0f%%)\n",
	       TARGET_RATIO, ratio, verdict(ratio <= TARGET_RATIO),
	       100.0 * (ratio > TARGET_RATIO ? ratio / TARGET_RATIO - 1 :
						1 - ratio / TARGET_RATIO));
	if (have_total)
		printf("%d fds pulled+verified ≤ %.0f µs: %.1f (%s)\n",
		       TARGET_N, TARGET_TOTAL_US, total,
		       verdict(total <= TARGET_TOTAL_US));
	else
		printf("%d fds pulled+verified ≤ %.0f µs: not measured (add %d to -n)\n",
		       TARGET_N, TARGET_TOTAL_US, TARGET_N);
}

static void print_json(const struct results *res)
{
	const struct options *o = res->o;
	int t = target_index(res);
	double ratio = res->st[t][M_VERIFIED].med_us / res->st[t][M_BARE].med_us;

	printf("{\n  \"bench\": \"pull\",\n  \"kind\": \"%s\",\n  \"repetitions\": %d,\n",
	       bench_kind_names[o->kind], o->reps);
	printf("  \"clock\": \"CLOCK_MONOTONIC\",\n  \"kernel\": \"%s\",\n  \"cpus\": %ld,\n",
	       res->kernel, res->cpus);
	printf("  \"loadavg_1m_before\": %s,\n  \"loadavg_1m_after\": %s,\n",
	       res->load_before[0] ? res->load_before : "null",
	       res->load_after[0] ? res->load_after : "null");
	printf("  \"results\": [\n");
	for (size_t s = 0; s < o->n_sizes; s++) {
		double bare = res->st[s][M_BARE].med_us;

		printf("    {\n      \"n\": %zu,\n      \"methods\": {\n", o->sizes[s]);
		for (int m = 0; m < res->n_methods; m++) {
			const struct stats *st = &res->st[s][m];

			printf("        \"%s\": {\"median_us_per_fd\": %.4f, \"min_us_per_fd\": %.4f, \"max_us_per_fd\": %.4f, \"median_total_us\": %.3f, ",
			       method_names[m], st->med_us, st->min_us,
			       st->max_us, st->med_total_us);
			if (m == M_VERIFIED || m == M_FALLBACK)
				printf("\"kcmp_verified\": %zu, ",
				       res->kcmp_verified[s][m]);
			printf("\"samples_ns\": [");
			for (int r = 0; r < o->reps; r++)
				printf("%s%" PRIu64, r ? ", " : "",
				       res->samples[s][m][r]);
			printf("]}%s\n", m + 1 < res->n_methods ? "," : "");
		}
		printf("      },\n      \"ratios\": {\"verified_over_bare\": %.4f, \"scm_over_bare\": %.4f",
		       res->st[s][M_VERIFIED].med_us / bare,
		       res->st[s][M_SCM].med_us / bare);
		if (res->n_methods > M_FALLBACK)
			printf(", \"fallback_over_bare\": %.4f",
			       res->st[s][M_FALLBACK].med_us / bare);
		printf("}\n    }%s\n", s + 1 < o->n_sizes ? "," : "");
	}
	printf("  ],\n  \"targets\": [\n");
	printf("    {\"name\": \"verified_over_bare_per_fd\", \"n\": %zu, \"limit\": %.2f, \"value\": %.4f, \"pass\": %s},\n",
	       o->sizes[t], TARGET_RATIO, ratio,
	       ratio <= TARGET_RATIO ? "true" : "false");
	printf("    {\"name\": \"verified_total_us\", \"n\": %d, \"limit\": %.1f, ",
	       TARGET_N, TARGET_TOTAL_US);
	if (o->sizes[t] == TARGET_N) {
		double total = res->st[t][M_VERIFIED].med_total_us;

		printf("\"value\": %.3f, \"pass\": %s}\n", total,
		       total <= TARGET_TOTAL_US ? "true" : "false");
	} else {
		printf("\"value\": null, \"pass\": null}\n");
	}
	printf("  ]\n}\n");
}

/* ------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pull [-r REPS] [-k memfd|eventfd|mixed] [-n N,N,...] [-f] [--json]\n"
		"Per-fd cost of bare pidfd_getfd, fdh_pull() (pull + verification) and a raw\n"
		"SCM_RIGHTS transfer from a live source process, interleaved per repetition.\n"
		"  -r, --reps REPS      repetitions per N (default %d, at least 1)\n"
		"  -k, --kind KIND      fds the source holds: memfd (default), eventfd, or\n"
		"                       mixed (alternating memfd, eventfd)\n"
		"  -n, --sizes LIST     set sizes N (default 1,16,64,256,1024; max %d)\n"
		"  -f, --fallback       also time fdh_pull() over its SCM_RIGHTS fallback\n"
		"                       (a forked puller with pidfd_getfd denied by seccomp)\n"
		"      --json           machine-readable output\n"
		"  -h, --help           this text\n"
		"Target misses are printed as MISS; the exit status is 0 unless the bench\n"
		"itself failed (2).\n",
		DEFAULT_REPS, FDH_PULL_MAX);
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

static void parse_sizes(struct options *o, const char *arg)
{
	char *copy = strdup(arg), *save = NULL;

	if (!copy)
		die("out of memory");
	o->n_sizes = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long v = strtoul(tok, &end, 10);

		if (*end || v == 0 || v > FDH_PULL_MAX || o->n_sizes == MAX_SIZES)
			die("-n: '%s': need up to %d sizes in 1..%d", tok,
			    MAX_SIZES, FDH_PULL_MAX);
		o->sizes[o->n_sizes++] = v;
	}
	free(copy);
	if (!o->n_sizes)
		die("-n: no sizes");
	qsort(o->sizes, o->n_sizes, sizeof(o->sizes[0]), cmp_size);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "reps", required_argument, NULL, 'r' },
		{ "kind", required_argument, NULL, 'k' },
		{ "sizes", required_argument, NULL, 'n' },
		{ "fallback", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c;

	*o = (struct options){ .reps = DEFAULT_REPS, .kind = K_MEMFD };
	parse_sizes(o, "1,16,64,256,1024");
	while ((c = getopt_long(argc, argv, "r:k:n:fh", longopts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'r':
			o->reps = (int)strtol(optarg, &end, 10);
			if (*end || o->reps < 1 || o->reps > MAX_REPS)
				die("-r: need 1..%d repetitions", MAX_REPS);
			break;
		case 'k':
			if (strcmp(optarg, "memfd") == 0)
				o->kind = K_MEMFD;
			else if (strcmp(optarg, "eventfd") == 0)
				o->kind = K_EVENTFD;
			else if (strcmp(optarg, "mixed") == 0)
				o->kind = K_MIXED;
			else
				die("-k: unknown kind '%s' (memfd, eventfd, mixed)",
				    optarg);
			break;
		case 'n':
			parse_sizes(o, optarg);
			break;
		case 'f':
			o->fallback = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		usage(stderr);
		exit(2);
	}
}

static uint64_t run(struct ctx *c, enum method m, size_t n)
{
	switch (m) {
	case M_BARE:
		return run_bare(c, n);
	case M_VERIFIED:
		return run_verified(c, n);
	case M_SCM:
		return run_scm(c, n);
	default:
		return run_fallback(c, n);
	}
}

int main(int argc, char **argv)
{
	struct options o;
	struct results res = { .o = &o };
	struct shared *sh;
	struct ctx c = { .puller = -1 };
	int ctl[2], scm[2], fb[2] = { -1, -1 }, pctl[2] = { -1, -1 };
	pid_t source_pid, puller_pid = -1;
	size_t max_n;
	struct utsname un;
	char ready;

	parse_options(argc, argv, &o);
	max_n = o.sizes[o.n_sizes - 1];
	res.n_methods = o.fallback ? M__MAX : M_FALLBACK;
	raise_nofile(max_n);
	signal(SIGPIPE, SIG_IGN);

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap: %m");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, scm) < 0 ||
	    (o.fallback &&
	     socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fb) < 0))
		die("socketpair: %m");

	source_pid = fork_closing((int[]){ ctl[0], scm[0], fb[0] }, 3);
	if (source_pid == 0)
		source_main(sh, o.kind, max_n, ctl[1], scm[1], fb[1]);
	close_fds((int[]){ ctl[1], scm[1], fb[1] }, 3);
	if (read(ctl[0], &ready, 1) != 1 || sh->n != max_n)
		die("the source could not make %zu fds", max_n);

	if (o.fallback) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pctl) < 0)
			die("socketpair: %m");
		puller_pid = fork_closing((int[]){ pctl[0], ctl[0], scm[0] }, 3);
		if (puller_pid == 0)
			puller_main(sh, source_pid, pctl[1], fb[0]);
		close_fds((int[]){ pctl[1], fb[0] }, 2);
		c.puller = pctl[0];
	}

	c.sh = sh;
	c.coop_scm = scm[0];
	if (fdh_source_open_pid(source_pid, 0, &c.src) < 0)
		die("%s", fdh_last_error()->msg);
	{
		struct fdh_source_info info;

		fdh_source_get_info(c.src, &info);
		c.pidfd = info.pidfd;
	}
	c.entries = calloc(max_n, sizeof(*c.entries));
	c.fds = malloc(max_n * sizeof(*c.fds));
	if (!c.entries || !c.fds)
		die("out of memory");
	for (size_t i = 0; i < max_n; i++) {
		c.entries[i].remote_fd = sh->remote_fds[i];
		c.entries[i].expect = sh->ids[i];
		c.fds[i] = -1;
	}

	uname(&un);
	snprintf(res.kernel, sizeof(res.kernel), "%s", un.release);
	res.cpus = sysconf(_SC_NPROCESSORS_ONLN);
	read_loadavg(res.load_before, sizeof(res.load_before));

	for (size_t s = 0; s < o.n_sizes; s++) {
		size_t n = o.sizes[s];

		for (int m = 0; m < res.n_methods; m++) {
			res.samples[s][m] = calloc((size_t)o.reps, sizeof(uint64_t));
			if (!res.samples[s][m])
				die("out of memory");
			run(&c, (enum method)m, n);	/* warm-up, not kept */
		}
		for (int r = 0; r < o.reps; r++)
			for (int m = 0; m < res.n_methods; m++)
				res.samples[s][m][r] = run(&c, (enum method)m, n);
		for (int m = 0; m < res.n_methods; m++) {
			res.st[s][m] = stats_of(res.samples[s][m], o.reps, n);
			res.kcmp_verified[s][m] = c.kcmp_verified[m];
		}
	}
	read_loadavg(res.load_after, sizeof(res.load_after));

	if (o.json)
		print_json(&res);
	else
		print_text(&res);

	/* Closing ctl ends the source; a zero command ends the puller. */
	if (c.puller >= 0) {
		struct puller_cmd stop = { 0 };

		send(c.puller, &stop, sizeof(stop), MSG_NOSIGNAL);
		close(c.puller);
		waitpid(puller_pid, NULL, 0);
	}
	close(ctl[0]);
	close(scm[0]);
	waitpid(source_pid, NULL, 0);
	fdh_source_free(c.src);
	for (size_t s = 0; s < o.n_sizes; s++)
		for (int m = 0; m < res.n_methods; m++)
			free(res.samples[s][m]);
	free(c.entries);
	free(c.fds);
	munmap(sh, sizeof(*sh));
	return 0;
}
