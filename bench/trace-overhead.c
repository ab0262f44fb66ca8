// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * bench/trace-overhead: what the downtime tracer costs what it traces.
 * In one run, with the tracer off and on in alternate rounds (off, on,
 * off, on, ...), so that drift and noise land on both alike:
 *
 *   pull  fdh_pull() of N memfds (default 64) from a live source process,
 *         timed per call and divided by N: libfdhandover's per-fd probes
 *         (pull_fd, verify) and the pidfd_getfd/kcmp tracepoints fire here;
 *   gap   a sender in its own netns writes frames to a TAP fd at 1000/s
 *         and stops once per round, as a guest does while it is moved:
 *         the bench then waits -s ms (the rest of a VM's stop, default 50)
 *         and pulls the N memfds, and only then lets the sender resume.
 *         The silence on the wire, measured by the sender around its
 *         stop (and, tracer on, reported by the tracer), is the
 *         guest-visible downtime with a handover inside it; also the cost
 *         of each write() (the wire hook runs inside it).
 *
 * Three modes, rotated round by round (off, full, light, off, ...):
 *   off    no tracer;
 *   full   the tracer as `fd-handover trace --pid SELF --tap ...` runs it:
 *          every program, this process traced (its executable carries the
 *          probes: the library is linked in), a thread draining the ring;
 *   light  the same with --light: per-pull probes only, no per-fd probes
 *          and no syscall tracepoints.
 * Opening and closing the tracer is not timed.  Needs root.  See
 * bench/README.md ("trace-overhead").
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdhandover.h"
#include "handover-trace.h"

#define TAP_NAME "fdhbench0"
#define MAX_FDS 1024
#define TARGET_RATIO 1.02	/* the issue's target: at most 2% */

struct options {
	int rounds;		/* per mode */
	int n_fds;
	int pulls;		/* per round */
	int frames;		/* per round; 0: no wire part */
	int stop_ms;		/* the rest of the downtime around the pull */
};

struct shared {
	int n;
	int remote_fds[MAX_FDS];
	struct fdh_identity ids[MAX_FDS];
};

/*
 * Sender protocol over a SOCK_SEQPACKET pair: the bench sends a frame count;
 * the sender writes half of them, says 'S' (stopped), waits for 'R'
 * (resume), writes the rest and answers with a burst_reply.
 */
struct burst_reply {
	int err;
	int frames;
	int64_t gap_ns;			/* last frame before the stop to the
					   first after, sender's clock */
	int64_t write_med_ns;		/* median write() of the burst */
};

struct samples {
	double *v;
	size_t n, cap;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("trace-overhead: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void add(struct samples *s, double v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			die("out of memory");
	}
	s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(struct samples *s)
{
	if (!s->n)
		return 0;
	qsort(s->v, s->n, sizeof(*s->v), cmp_double);
	return s->n % 2 ? s->v[s->n / 2] : (s->v[s->n / 2 - 1] + s->v[s->n / 2]) / 2;
}

/* After median(): sorted. */
static double lo(const struct samples *s) { return s->n ? s->v[0] : 0; }
static double hi(const struct samples *s) { return s->n ? s->v[s->n - 1] : 0; }

/* ------------------------------------------------------------------ */
/* The source: N memfds, their numbers and identities published        */

static pid_t source_start(struct shared *sh, int n)
{
	int ready[2];
	pid_t pid;
	char c;

	if (pipe2(ready, O_CLOEXEC) < 0)
		die("pipe: %m");
	pid = fork();
	if (pid < 0)
		die("fork: %m");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (int i = 0; i < n; i++) {
			char name[32];
			int fd;

			snprintf(name, sizeof(name), "bench-ram%d", i);
			fd = memfd_create(name, MFD_CLOEXEC);
			if (fd < 0 || ftruncate(fd, 1 << 20) < 0 ||
			    fdh_identity_of_fd(fd, &sh->ids[i]) < 0)
				_exit(1);
			sh->remote_fds[i] = fd;
		}
		sh->n = n;
		if (write(ready[1], "R", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1)
		die("the source failed to start");
	close(ready[0]);
	return pid;
}

/* ------------------------------------------------------------------ */
/* The sender: a TAP in its own netns, bursts on request               */

static int tap_up(const char *name)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

	if (s < 0)
		return -errno;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		r = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (r == 0 && ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		r = -errno;
	close(s);
	return r;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* frames at 1000/s, stopped in the middle until the bench says resume;
 * to a MAC nobody has, in a netns nobody else uses. */
static struct burst_reply burst(int fd, int sock, int frames)
{
	unsigned char frame[60] = {
		0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x88, 0xb5,
	};
	struct burst_reply res = { 0 };
	int64_t *cost = calloc((size_t)frames, sizeof(*cost));
	int64_t next = now_ns(), before = 0;

	if (!cost) {
		res.err = -ENOMEM;
		return res;
	}
	for (int i = 0; i < frames; i++) {
		struct timespec ts = { next / 1000000000ll, next % 1000000000ll };
		int64_t t;

		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		t = now_ns();
		if (i == frames / 2)
			res.gap_ns = t - before;
		before = t;
		if (write(fd, frame, sizeof(frame)) != sizeof(frame)) {
			res.err = -errno;
			break;
		}
		cost[res.frames++] = now_ns() - t;
		next += 1000000;
		if (i + 1 == frames / 2) {
			char c = 'S';

			/* The guest stops; it goes on once the handover is
			 * done, at once. */
			if (write(sock, &c, 1) != 1 || read(sock, &c, 1) != 1 || c != 'R') {
				res.err = -EPROTO;
				break;
			}
			next = now_ns();
		}
	}
	qsort(cost, (size_t)res.frames, sizeof(*cost), cmp_i64);
	res.write_med_ns = res.frames ? cost[res.frames / 2] : 0;
	free(cost);
	return res;
}

static void sender_main(int sock)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	struct burst_reply res = { 0 };
	int fd = -1, frames;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(CLONE_NEWNET) < 0)
		res.err = -errno;
	if (!res.err && (fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)) < 0)
		res.err = -errno;
	snprintf(ifr.ifr_name, IFNAMSIZ, TAP_NAME);
	if (!res.err && ioctl(fd, TUNSETIFF, &ifr) < 0)
		res.err = -errno;
	if (!res.err)
		res.err = tap_up(TAP_NAME);
	if (write(sock, &res, sizeof(res)) != sizeof(res) || res.err)
		_exit(1);
	while (read(sock, &frames, sizeof(frames)) == sizeof(frames) && frames > 0) {
		res = burst(fd, sock, frames);
		if (write(sock, &res, sizeof(res)) != sizeof(res))
			_exit(1);
	}
	_exit(0);
}

/* ------------------------------------------------------------------ */
/* The tracer, on                                                      */

struct tracer {
	struct ht_trace *t;
	pthread_t thread;
	volatile int stop;
};

static void *drain(void *arg)
{
	struct tracer *tr = arg;

	while (!tr->stop)
		ht_trace_poll(tr->t, 50);
	return NULL;
}

static void tracer_on(struct tracer *tr, pid_t sender, bool light)
{
	pid_t self = getpid();
	char netns[64];
	struct ht_trace_opts o = { .pids = &self, .n_pids = 1, .light = light };
	int r;

	if (sender > 0) {
		snprintf(netns, sizeof(netns), "/proc/%d/ns/net", sender);
		o.tap = TAP_NAME;
		o.netns = netns;
	}
	r = ht_trace_open(&o, &tr->t);
	if (r < 0)
		die("the tracer: %s", ht_last_error());
	if (!ht_trace_n_probes(tr->t))
		die("no USDT probe attached to this executable");
	tr->stop = 0;
	if (pthread_create(&tr->thread, NULL, drain, tr) != 0)
		die("pthread_create failed");
}

/* Off again; the largest from-guest gap it saw (0: none). */
static int64_t tracer_off(struct tracer *tr, uint64_t *ret_lost)
{
	struct ht_report *rep;
	int64_t gap = 0;

	tr->stop = 1;
	pthread_join(tr->thread, NULL);
	ht_trace_poll(tr->t, 0);
	if (ht_trace_report(tr->t, &rep) < 0)
		die("report: %s", ht_last_error());
	gap = (int64_t)rep->wire[HT_WIRE_FROM_GUEST].max_gap_ns;
	*ret_lost = rep->lost_events;
	ht_report_free(rep);
	ht_trace_free(tr->t);
	tr->t = NULL;
	return gap;
}

/* ------------------------------------------------------------------ */

static void pull_round(struct fdh_source *src, const struct shared *sh,
		       const struct options *o, struct samples *per_fd)
{
	struct fdh_pull_entry e[MAX_FDS];
	int fds[MAX_FDS];

	for (int i = 0; i < sh->n; i++)
		e[i] = (struct fdh_pull_entry){
			.remote_fd = sh->remote_fds[i], .expect = sh->ids[i],
		};
	for (int p = 0; p < o->pulls; p++) {
		int64_t t0 = now_ns(), t1;
		int r = fdh_pull(src, e, (size_t)sh->n, fds, NULL);

		t1 = now_ns();
		if (r < 0)
			die("fdh_pull: %s", fdh_last_error()->msg);
		add(per_fd, (double)(t1 - t0) / 1e3 / sh->n);
		for (int i = 0; i < sh->n; i++)
			close(fds[i]);
	}
}

static void usage(void)
{
	fputs("Usage: trace-overhead [-r ROUNDS] [-n FDS] [-p PULLS] [-w FRAMES] [-s MS]\n"
	      "  -r ROUNDS  rounds per mode; off, full, light in turn (default 20)\n"
	      "  -n FDS     memfds per fdh_pull (default 64)\n"
	      "  -p PULLS   fdh_pull calls per round (default 10)\n"
	      "  -w FRAMES  frames per round at 1000/s, 0: no wire part (default 200)\n"
	      "  -s MS      the stop around the pull in the gap (default 50; 0: the pull only)\n",
	      stderr);
	exit(2);
}

enum mode { OFF, FULL, LIGHT, N_MODES };

static const char *const mode_names[N_MODES] = { "off", "full", "light" };

static void print_row(const char *what, struct samples m[N_MODES])
{
	double med[N_MODES];

	printf("%-24s", what);
	for (int i = 0; i < N_MODES; i++) {
		med[i] = median(&m[i]);
		printf("  %8.3f %8.3f %8.3f", med[i], lo(&m[i]), hi(&m[i]));
	}
	printf("   %6.3f %6.3f\n", med[FULL] / med[OFF], med[LIGHT] / med[OFF]);
}

static void verdict(const char *what, struct samples m[N_MODES])
{
	double off = median(&m[OFF]);

	for (int i = FULL; i < N_MODES; i++)
		printf("%-12s overhead, %-5s %+7.1f%%  (target <= %+.0f%%: %s)\n", what,
		       mode_names[i], (median(&m[i]) / off - 1) * 100,
		       (TARGET_RATIO - 1) * 100,
		       median(&m[i]) <= TARGET_RATIO * off ? "PASS" : "MISS");
}

int main(int argc, char **argv)
{
	struct options o = {
		.rounds = 20, .n_fds = 64, .pulls = 10, .frames = 200, .stop_ms = 50,
	};
	struct samples pull[N_MODES] = { 0 }, wr[N_MODES] = { 0 }, gap[N_MODES] = { 0 };
	struct samples gap_err = { 0 };
	struct shared *sh;
	struct fdh_source *src;
	struct tracer tr = { 0 };
	struct burst_reply br;
	uint64_t lost_total = 0;
	pid_t source, sender = -1;
	int sv[2], c;

	while ((c = getopt(argc, argv, "r:n:p:w:s:h")) != -1) {
		switch (c) {
		case 'r': o.rounds = atoi(optarg); break;
		case 'n': o.n_fds = atoi(optarg); break;
		case 'p': o.pulls = atoi(optarg); break;
		case 'w': o.frames = atoi(optarg); break;
		case 's': o.stop_ms = atoi(optarg); break;
		default: usage();
		}
	}
	if (o.rounds < 1 || o.n_fds < 1 || o.n_fds > MAX_FDS || o.pulls < 1 ||
	    o.frames < 0 || (o.frames && o.frames < 4) || o.stop_ms < 0)
		usage();
	if (geteuid() != 0)
		die("needs root: BPF, and a netns with a TAP for the wire part");

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap: %m");
	source = source_start(sh, o.n_fds);
	if (fdh_source_open_pid(source, 0, &src) < 0)
		die("%s", fdh_last_error()->msg);
	if (o.frames) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			die("socketpair: %m");
		sender = fork();
		if (sender < 0)
			die("fork: %m");
		if (sender == 0)
			sender_main(sv[1]);
		close(sv[1]);
		if (read(sv[0], &br, sizeof(br)) != sizeof(br) || br.err)
			die("the sender could not make its TAP: %s", strerror(-br.err));
	}

	/* One untimed pull to warm caches and the page tables. */
	pull_round(src, sh, &(struct options){ .pulls = 1 }, &(struct samples){ 0 });
	for (int round = 0; round < N_MODES * o.rounds; round++) {
		enum mode mode = (enum mode)(round % N_MODES);
		uint64_t lost = 0;
		int64_t traced_gap = 0;

		if (mode != OFF)
			tracer_on(&tr, sender, mode == LIGHT);
		pull_round(src, sh, &o, &pull[mode]);
		if (o.frames) {
			char msg;

			if (write(sv[0], &o.frames, sizeof(o.frames)) != sizeof(o.frames) ||
			    read(sv[0], &msg, 1) != 1 || msg != 'S')
				die("the sender failed to stop");
			/* Downtime: the rest of a VM's stop, then the pull. */
			usleep((useconds_t)o.stop_ms * 1000);
			pull_round(src, sh, &(struct options){ .pulls = 1 }, &(struct samples){ 0 });
			msg = 'R';
			if (write(sv[0], &msg, 1) != 1 ||
			    read(sv[0], &br, sizeof(br)) != sizeof(br) || br.err)
				die("the sender failed: %s", strerror(-br.err));
			add(&wr[mode], (double)br.write_med_ns / 1e3);
			add(&gap[mode], (double)br.gap_ns / 1e6);
		}
		if (mode != OFF) {
			/* The last frames' events are in the ring already: the
			 * tracepoint ran inside write(). */
			traced_gap = tracer_off(&tr, &lost);
			lost_total += lost;
			if (o.frames)
				add(&gap_err, (double)(traced_gap - br.gap_ns) / 1e6);
		}
		fprintf(stderr, "\rround %d/%d", round + 1, N_MODES * o.rounds);
	}
	fprintf(stderr, "\n");

	printf("trace-overhead: %d rounds per mode (off, full, light in turn), %d memfds x %d fdh_pull per round,\n"
	       "%d frames per round stopped once for %d ms + one fdh_pull of %d memfds\n\n",
	       o.rounds, o.n_fds, o.pulls, o.frames, o.stop_ms, o.n_fds);
	printf("%-24s  %-26s  %-26s  %-26s   %s\n", "", "off", "full", "light",
	       "full/off light/off");
	printf("%-24s", "");
	for (int i = 0; i < N_MODES; i++)
		printf("  %8s %8s %8s", "median", "min", "max");
	printf("\n");
	print_row("fdh_pull per fd (us)", pull);
	if (o.frames) {
		print_row("wire gap (ms)", gap);
		print_row("write() per frame (us)", wr);
	}
	printf("\n");
	verdict("per-fd pull", pull);
	if (o.frames) {
		double err_med;

		verdict("wire gap", gap);
		verdict("write()", wr);
		/* median() sorts: lo() and hi() after it. */
		err_med = median(&gap_err);
		printf("tracer's gap - sender's gap: median %+.3f ms, min %+.3f, max %+.3f\n",
		       err_med, lo(&gap_err), hi(&gap_err));
	}
	printf("events lost: %" PRIu64 "\n", lost_total);

	if (o.frames) {
		int zero = 0;

		if (write(sv[0], &zero, sizeof(zero)) < 0)
			perror("stopping the sender");
		waitpid(sender, NULL, 0);
	}
	fdh_source_free(src);
	kill(source, SIGKILL);
	waitpid(source, NULL, 0);
	for (int i = 0; i < N_MODES; i++) {
		free(pull[i].v);
		free(wr[i].v);
		free(gap[i].v);
	}
	free(gap_err.v);
	return 0;
}
