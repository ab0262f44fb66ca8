// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fd-handover trace: where the milliseconds of a handover go, across the
 * source, the target, the kernel and the wire (Documentation/tracing.md).
 *
 * The loader (bpf/handover-trace.h) does the BPF; this file decides what
 * to trace from the arguments, runs CMD or waits for the end, and prints
 * the report as tables, JSON, and a Perfetto file.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "cli.h"
#include "fdhandover.h"
#include "handover-trace.h"

static const char usage[] =
	"Usage: fd-handover trace [OPTIONS] [--pid PID]... [-- CMD [ARGS...]]\n"
	"\n"
	"Trace a handover: libfdhandover's phases (USDT), pidfd_open, pidfd_getfd\n"
	"and kcmp with latency and errno, exec/fork/exit, run-queue waits of the\n"
	"traced threads, QEMU's migration/runstate/vhost probes when its binary\n"
	"has them, and every frame on a TAP in both directions.  With CMD: run it\n"
	"and trace it and its children until it exits.  With --pid: trace those\n"
	"processes (and their children) until Ctrl-C, --duration, or 1 s after\n"
	"a commit or rollback.  With neither: every process that hits a probe.\n"
	"\n"
	"Options:\n"
	"  --pid PID            trace PID and its children (repeatable)\n"
	"  --tap IFNAME         timestamp every frame on this TAP; the gap across\n"
	"                       the switch-over is the downtime the guest sees\n"
	"  --netns NAME|PATH    the TAP's network namespace (/run/netns/NAME, or a\n"
	"                       path such as /proc/PID/ns/net); default: ours, or\n"
	"                       if IFNAME is not in ours, its name in any netns\n"
	"  --usdt PATH          attach the probes of this ELF file too (repeatable);\n"
	"                       default: our libfdhandover, the installed one, and\n"
	"                       each traced process's executable\n"
	"  --usdt-probe BINARY:PROVIDER:NAME\n"
	"                       attach this probe (NAME may be a glob; repeatable)\n"
	"  --no-qemu            skip the built-in QEMU probe list\n"
	"  --duration S         stop after S seconds\n"
	"  --perfetto FILE      write a Chrome/Perfetto trace (ui.perfetto.dev)\n"
	"  --sched-min US       list run-queue waits of at least US us (default 100)\n"
	"  --no-sched           no run-queue latency\n"
	"  --no-packets         per-direction totals only, no per-frame events\n"
	"  --ethertype LIST     count only these frames in the wire gaps (hex,\n"
	"                       e.g. 0x0800,0x86dd); QEMU's RARP never counts\n"
	"  --light              per-pull phases only: no per-fd probes and no\n"
	"                       syscall tracepoints (a few % per fd instead of 3x)\n"
	"  --pin-dir DIR        pin the stats maps there (default " HT_PIN_DIR ")\n"
	"  --no-pin             do not pin\n"
	"  -v, --verbose        libbpf's messages; the files whose probes attached\n"
	"  -j, --json           JSON output (Documentation/tracing.md)\n"
	"  -p, --pretty         indented JSON\n"
	"  -h, --help           this help\n"
	"\n"
	"Needs root (BPF, tracefs, bpffs).  With CMD the exit code is CMD's.\n";

/* After commit/rollback, keep tracing this long: the wire recovers later. */
#define LINGER_NS 1000000000ull
#define POLL_MS 50

enum {
	OPT_PID = 0x100, OPT_TAP, OPT_NETNS, OPT_USDT, OPT_USDT_PROBE,
	OPT_NO_QEMU, OPT_DURATION, OPT_PERFETTO, OPT_SCHED_MIN, OPT_NO_SCHED,
	OPT_NO_PACKETS, OPT_PIN_DIR, OPT_NO_PIN, OPT_LIGHT, OPT_ETHERTYPE,
};

struct args {
	pid_t *pids;
	size_t n_pids;
	const char **usdt;
	size_t n_usdt;
	const char **probes;
	size_t n_probes;
	struct ht_trace_opts o;
	double duration_s;
	const char *perfetto;
	bool verbose;
	char **cmd;			/* NULL-terminated, or NULL */
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static bool verbose_libbpf;

__attribute__((format(printf, 2, 0)))
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!verbose_libbpf || level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int push(void *pv, size_t *n, size_t size, const void *item)
{
	void **p = pv;
	void *v = realloc(*p, (*n + 1) * size);

	if (!v)
		return -ENOMEM;
	memcpy((char *)v + *n * size, item, size);
	*p = v;
	(*n)++;
	return 0;
}

/* "0x0800,0x86dd" into a 0-terminated list. */
static int parse_ethertypes(const char *arg, uint16_t out[HT_MAX_ETHERTYPES])
{
	const char *p = arg;
	int n = 0;

	memset(out, 0, HT_MAX_ETHERTYPES * sizeof(*out));
	while (*p) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(p, &end, 16);
		if (errno || end == p || v == 0 || v > 0xffff || n == HT_MAX_ETHERTYPES ||
		    (*end && *end != ','))
			return -EINVAL;
		out[n++] = (uint16_t)v;
		p = *end ? end + 1 : end;
	}
	return n ? 0 : -EINVAL;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "pid", required_argument, NULL, OPT_PID },
		{ "tap", required_argument, NULL, OPT_TAP },
		{ "netns", required_argument, NULL, OPT_NETNS },
		{ "usdt", required_argument, NULL, OPT_USDT },
		{ "usdt-probe", required_argument, NULL, OPT_USDT_PROBE },
		{ "no-qemu", no_argument, NULL, OPT_NO_QEMU },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "perfetto", required_argument, NULL, OPT_PERFETTO },
		{ "sched-min", required_argument, NULL, OPT_SCHED_MIN },
		{ "no-sched", no_argument, NULL, OPT_NO_SCHED },
		{ "no-packets", no_argument, NULL, OPT_NO_PACKETS },
		{ "light", no_argument, NULL, OPT_LIGHT },
		{ "ethertype", required_argument, NULL, OPT_ETHERTYPE },
		{ "pin-dir", required_argument, NULL, OPT_PIN_DIR },
		{ "no-pin", no_argument, NULL, OPT_NO_PIN },
		{ "verbose", no_argument, NULL, 'v' },
		CLI_COMMON_LONGOPTS,
		{ 0 }
	};
	char *end;
	pid_t pid;
	int c, us;

	a->o.pin_dir = HT_PIN_DIR;
	while ((c = getopt_long(argc, argv, "+:" CLI_COMMON_SHORTOPTS "v", opts,
				NULL)) != -1) {
		if (cli_common_opt(c))
			continue;
		switch (c) {
		case 'h':
			cli_print_usage(usage);
			return -1;	/* done: exit 0 */
		case 'v':
			a->verbose = true;
			break;
		case OPT_PID:
			/* It reports a bad pid itself, and returns the exit code. */
			if (cli_parse_pid(optarg, &pid) != 0)
				return CLI_EXIT_USAGE;
			if (push(&a->pids, &a->n_pids, sizeof(pid), &pid) < 0)
				return cli_fail(-ENOMEM, "out of memory");
			break;
		case OPT_TAP:
			a->o.tap = optarg;
			break;
		case OPT_NETNS:
			a->o.netns = optarg;
			break;
		case OPT_USDT:
			if (push(&a->usdt, &a->n_usdt, sizeof(char *), &optarg) < 0)
				return cli_fail(-ENOMEM, "out of memory");
			break;
		case OPT_USDT_PROBE:
			if (push(&a->probes, &a->n_probes, sizeof(char *), &optarg) < 0)
				return cli_fail(-ENOMEM, "out of memory");
			break;
		case OPT_NO_QEMU:
			a->o.no_qemu_probes = true;
			break;
		case OPT_DURATION:
			errno = 0;
			a->duration_s = strtod(optarg, &end);
			if (errno || end == optarg || *end || a->duration_s <= 0)
				return cli_usage("--duration %s: not a positive number of seconds",
						 optarg);
			break;
		case OPT_PERFETTO:
			a->perfetto = optarg;
			break;
		case OPT_SCHED_MIN:
			if (cli_parse_int(optarg, 1, &us) < 0)
				return cli_usage("--sched-min %s: not a number of microseconds",
						 optarg);
			a->o.sched_min_ns = (uint64_t)us * 1000;
			break;
		case OPT_NO_SCHED:
			a->o.no_sched = true;
			break;
		case OPT_NO_PACKETS:
			a->o.no_packets = true;
			break;
		case OPT_LIGHT:
			a->o.light = true;
			break;
		case OPT_ETHERTYPE:
			if (parse_ethertypes(optarg, a->o.ethertypes) < 0)
				return cli_usage("--ethertype %s: expected up to %d hex ethertypes, e.g. 0x0800,0x86dd",
						 optarg, HT_MAX_ETHERTYPES);
			break;
		case OPT_PIN_DIR:
			a->o.pin_dir = optarg;
			break;
		case OPT_NO_PIN:
			a->o.pin_dir = NULL;
			break;
		default:
			return cli_bad_option(c, argv);
		}
	}
	if (a->o.netns && !a->o.tap)
		return cli_usage("--netns only says where the --tap is");
	if (optind < argc)
		a->cmd = argv + optind;
	return 0;
}

/* ------------------------------------------------------------------ */
/* What to attach by default                                          */

/* The libfdhandover this program runs with: a CMD built against the
 * same tree most likely uses it too. */
static const char *our_library(void)
{
	Dl_info info;

	if (dladdr((void *)fdh_version, &info) && info.dli_fname &&
	    strstr(info.dli_fname, "libfdhandover"))
		return info.dli_fname;
	return NULL;
}

static const char *installed_library(void)
{
	static const char *const candidates[] = {
		"/usr/local/lib/x86_64-linux-gnu/libfdhandover.so.0",
		"/usr/local/lib/libfdhandover.so.0",
		"/usr/lib/x86_64-linux-gnu/libfdhandover.so.0",
		"/usr/lib/libfdhandover.so.0",
	};

	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
		if (access(candidates[i], R_OK) == 0)
			return candidates[i];
	return NULL;
}

/* execvp's search, so that CMD's probes attach before it runs. */
static int resolve_cmd(const char *name, char *buf, size_t size)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/')) {
		snprintf(buf, size, "%s", name);
		return access(buf, X_OK) == 0 ? 0 : -errno;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");

		snprintf(buf, size, "%.*s/%s", (int)len, len ? path : ".", name);
		if (access(buf, X_OK) == 0)
			return 0;
		path += len + (path[len] == ':');
	}
	return -ENOENT;
}

/* ------------------------------------------------------------------ */
/* CMD                                                                */

struct child {
	pid_t pid;
	int gate;			/* write end: closing it lets CMD exec */
	int status_pipe;		/* read end: exec's errno, or EOF */
};

/* Fork CMD, held before exec until the tracer is ready. */
static int child_start(struct child *c, char **cmd)
{
	int gate[2], st[2];

	if (pipe2(gate, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(st, O_CLOEXEC) < 0) {
		close(gate[0]);
		close(gate[1]);
		return -errno;
	}
	c->pid = fork();
	if (c->pid < 0) {
		int e = -errno;

		close(gate[0]);
		close(gate[1]);
		close(st[0]);
		close(st[1]);
		return e;
	}
	if (c->pid == 0) {
		char byte;
		int e;

		close(gate[1]);
		close(st[0]);
		/* EOF without a byte: the tracer gave up, do not run. */
		if (read(gate[0], &byte, 1) != 1)
			_exit(CLI_EXIT_FAILURE);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		execvp(cmd[0], cmd);
		e = errno;
		if (write(st[1], &e, sizeof(e)) < 0)
			_exit(CLI_EXIT_CANNOT_EXEC);
		_exit(e == ENOENT ? CLI_EXIT_NOT_FOUND : CLI_EXIT_CANNOT_EXEC);
	}
	close(gate[0]);
	close(st[1]);
	c->gate = gate[1];
	c->status_pipe = st[0];
	return 0;
}

/* Let CMD exec; returns its exec errno, 0 when it runs. */
static int child_release(struct child *c)
{
	int e = 0;
	ssize_t n;

	n = write(c->gate, "x", 1);
	close(c->gate);
	c->gate = -1;
	if (n != 1)
		return EPIPE;
	n = read(c->status_pipe, &e, sizeof(e));
	close(c->status_pipe);
	c->status_pipe = -1;
	return n == sizeof(e) ? e : 0;
}

static void child_abort(struct child *c)
{
	if (c->gate >= 0)
		close(c->gate);	/* it exits without running CMD */
	if (c->status_pipe >= 0)
		close(c->status_pipe);
	if (c->pid > 0)
		waitpid(c->pid, NULL, 0);
	c->pid = -1;
}

/* ------------------------------------------------------------------ */
/* The wait                                                           */

static bool all_gone(const pid_t *pids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!fdh_process_gone(pids[i]))
			return false;
	return n > 0;
}

/*
 * Poll until the end: a signal, --duration, CMD's exit, or (attached to
 * --pid without --duration) 1 s after commit/rollback or all pids gone.
 * Returns 0 or -errno; *ret_status is CMD's wait status.
 */
static int trace_loop(struct ht_trace *t, const struct args *a, struct child *c,
		      int *ret_status)
{
	uint64_t start = now_ns(), deadline = 0, end_after = 0;
	int r;

	if (a->duration_s > 0)
		deadline = start + (uint64_t)(a->duration_s * 1e9);
	while (!stop_signal) {
		uint64_t now, done;

		r = ht_trace_poll(t, POLL_MS);
		if (r < 0)
			return r;
		now = now_ns();
		if (deadline && now >= deadline)
			break;
		if (c->pid > 0) {
			if (waitpid(c->pid, ret_status, WNOHANG) == c->pid) {
				c->pid = -1;
				/* Its exit and last events are in flight. */
				end_after = now + 100000000ull;
			}
		} else if (!deadline && !a->cmd) {
			done = ht_trace_phase_seen(t, HT_PHASE_COMMIT);
			if (ht_trace_phase_seen(t, HT_PHASE_ROLLBACK) > done)
				done = ht_trace_phase_seen(t, HT_PHASE_ROLLBACK);
			if (done && !end_after)
				end_after = done + LINGER_NS;
			if (!end_after && all_gone(a->pids, a->n_pids))
				end_after = now + 100000000ull;
		}
		if (end_after && now >= end_after)
			break;
	}
	return ht_trace_poll(t, 0) < 0 ? -EIO : 0;
}

/* ------------------------------------------------------------------ */
/* Text                                                               */

/* "12.345" ms from the trace start, or "-". */
static void fmt_ms(char *buf, size_t size, uint64_t ns, uint64_t t0)
{
	if (!ns || ns < t0)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.3f", (double)(ns - t0) / 1e6);
}

static void print_phases(const struct ht_report *r)
{
	static const char *const hdr[] = {
		"PHASE", "PID", "TID", "START ms", "DUR ms", "DETAIL",
	};
	struct cli_table *tb;
	char start[32], name[HT_PROBE_NAME_LEN + 24];

	printf("\n");
	if (!r->n_phases) {
		printf("No probe fired (is the process using a libfdhandover whose probes were attached? see -v).\n");
		return;
	}
	tb = cli_table_new(6, hdr);
	for (size_t i = 0; i < r->n_phases; i++) {
		const struct ht_phase_row *p = &r->phases[i];

		snprintf(name, sizeof(name), "%s%s", p->depth ? "  " : "", p->name);
		if (p->index >= 0)
			snprintf(name + strlen(name), sizeof(name) - strlen(name), "[%d]",
				 p->index);
		if (p->count > 1)
			snprintf(name + strlen(name), sizeof(name) - strlen(name), " x%u",
				 p->count);
		fmt_ms(start, sizeof(start), p->start_ns, r->start_ns);
		cli_table_add(tb, "%s", name);
		cli_table_add(tb, "%d", p->pid);
		cli_table_add(tb, "%d", p->tid);
		cli_table_add(tb, "%s", start);
		cli_table_add(tb, "%.3f", (double)(p->end_ns - p->start_ns) / 1e6);
		cli_table_add(tb, "%s", p->detail);
	}
	cli_table_print(tb, stdout);
	cli_table_free(tb);
}

static void print_pulls(const struct ht_report *r)
{
	static const char *const hdr[] = {
		"PULLED", "PID", "SOURCE", "REMOTE FD", "LOCAL FD", "GETFD us",
		"RESULT", "VERIFY", "KCMP",
	};
	struct cli_table *tb;

	if (!r->n_pulls)
		return;
	printf("\n");
	tb = cli_table_new(9, hdr);
	for (size_t i = 0; i < r->n_pulls; i++) {
		const struct ht_pull_row *p = &r->pulls[i];

		cli_table_add(tb, "[%d]", p->index);
		cli_table_add(tb, "%d", p->pid);
		cli_table_add(tb, "%d", p->source_pid);
		cli_table_add(tb, "%d", p->remote_fd);
		cli_table_add(tb, "%d", p->local_fd);
		if (p->getfd_ns)
			cli_table_add(tb, "%.1f", (double)p->getfd_ns / 1e3);
		else
			cli_table_add(tb, "-");
		cli_table_add(tb, "%s", p->err ? ht_errno_name(p->err) : "ok");
		if (!p->verified)
			cli_table_add(tb, "-");
		else
			cli_table_add(tb, "%s", p->verify_err ? ht_errno_name(p->verify_err) : "ok");
		cli_table_add(tb, "%s", p->verified ? (p->kcmp_ok ? "yes" : "no") : "-");
	}
	cli_table_print(tb, stdout);
	cli_table_free(tb);
}

/* Calls grouped by (pid, syscall, errno); failures listed one by one. */
static void print_syscalls(const struct ht_report *r)
{
	static const char *const hdr[] = {
		"SYSCALL", "PID", "CALLS", "RESULT", "MEDIAN us", "MAX us",
	};
	struct cli_table *tb;
	bool *done;
	char ms[32];

	if (!r->n_syscalls)
		return;
	done = calloc(r->n_syscalls, sizeof(*done));
	if (!done)
		return;
	printf("\n");
	tb = cli_table_new(6, hdr);
	for (size_t i = 0; i < r->n_syscalls; i++) {
		const struct ht_syscall_row *s = &r->syscalls[i];
		uint64_t lat[64], max = 0;
		size_t calls = 0, n_lat = 0;

		if (done[i])
			continue;
		for (size_t j = i; j < r->n_syscalls; j++) {
			const struct ht_syscall_row *o = &r->syscalls[j];

			if (done[j] || o->pid != s->pid || o->sys != s->sys || o->err != s->err)
				continue;
			done[j] = true;
			calls++;
			if (!o->enter_ns)
				continue;
			if (o->exit_ns - o->enter_ns > max)
				max = o->exit_ns - o->enter_ns;
			if (n_lat < 64) {
				size_t k = n_lat++;

				/* Insertion into sorted lat[] for the median. */
				while (k > 0 && lat[k - 1] > o->exit_ns - o->enter_ns) {
					lat[k] = lat[k - 1];
					k--;
				}
				lat[k] = o->exit_ns - o->enter_ns;
			}
		}
		cli_table_add(tb, "%s", ht_syscall_name(s->sys));
		cli_table_add(tb, "%d", s->pid);
		cli_table_add(tb, "%zu", calls);
		cli_table_add(tb, "%s", s->err ? ht_errno_name(s->err) : "ok");
		if (n_lat) {
			cli_table_add(tb, "%.1f", (double)lat[n_lat / 2] / 1e3);
			cli_table_add(tb, "%.1f", (double)max / 1e3);
		} else {
			cli_table_add(tb, "-");
			cli_table_add(tb, "-");
		}
	}
	cli_table_print(tb, stdout);
	cli_table_free(tb);
	free(done);
	for (size_t i = 0; i < r->n_syscalls; i++) {
		const struct ht_syscall_row *s = &r->syscalls[i];

		if (!s->err)
			continue;
		fmt_ms(ms, sizeof(ms), s->exit_ns, r->start_ns);
		printf("  %s ms: pid %d tid %d %s(%" PRIu64 ", %" PRIu64 ") = %" PRId64 " %s%s\n",
		       ms, s->pid, s->tid, ht_syscall_name(s->sys), s->args[0], s->args[1],
		       s->ret, ht_errno_name(s->err),
		       s->enter_ns ? "" : " (refused before entry, e.g. by seccomp)");
	}
}

/*
 * What happened while the wire was silent: the phase rows that begin
 * inside the gap across the switch-over (else the largest gap; steps of a
 * pull folded into it), from its start.
 */
static void print_gap_split(const struct ht_report *r, const struct ht_wire_row *w)
{
	bool sw = w->switch_gap_ns != 0;
	uint64_t from = sw ? w->switch_gap_start_ns : w->gap_start_ns;
	uint64_t to = sw ? w->switch_gap_end_ns : w->gap_end_ns;
	bool any = false;

	if (to - from < 1000000)
		return;
	for (size_t i = 0; i < r->n_phases; i++) {
		const struct ht_phase_row *p = &r->phases[i];

		if (p->depth || p->start_ns < from || p->start_ns > to)
			continue;
		if (!any)
			printf("\nInside the %s gap %s (%.3f ms), from its start:\n",
			       ht_wire_dir_name(w->dir), sw ? "across the switch-over" : "",
			       (double)(to - from) / 1e6);
		any = true;
		printf("  +%9.3f ms  %-26s pid %-7d %9.3f ms  %s\n",
		       (double)(p->start_ns - from) / 1e6, p->name, p->pid,
		       (double)(p->end_ns - p->start_ns) / 1e6, p->detail);
	}
	if (any)
		printf("  +%9.3f ms  (first frame again)\n", (double)(to - from) / 1e6);
}

/* "12.345 (100.000-112.345)" or "-". */
static void fmt_gap(char *buf, size_t size, uint64_t gap, uint64_t from, uint64_t to,
		    uint64_t t0)
{
	if (!gap) {
		snprintf(buf, size, "-");
		return;
	}
	snprintf(buf, size, "%.3f (%.3f-%.3f)", (double)gap / 1e6,
		 (double)(from - t0) / 1e6, (double)(to - t0) / 1e6);
}

static void print_wire(const struct ht_report *r)
{
	static const char *const hdr[] = {
		"WIRE", "PACKETS", "SKIPPED", "LARGEST GAP ms (from-to)",
		"SWITCH-OVER GAP ms (from-to)", "SOURCE",
	};
	struct cli_table *tb;
	char largest[96], across[96];

	if (!r->tap[0])
		return;
	printf("\nWire: %s (ifindex %u, netns inode %u%s)\n", r->tap, r->ifindex,
	       r->netns_ino, r->tap_by_name ?
	       ", found by name where a traced process writes to it" : "");
	if (r->switch_start_ns)
		printf("Switch-over: %.3f-%.3f ms (first stop or pull to first resume)\n",
		       (double)(r->switch_start_ns - r->start_ns) / 1e6,
		       (double)(r->switch_end_ns - r->start_ns) / 1e6);
	tb = cli_table_new(6, hdr);
	for (int d = 0; d < HT_WIRE__MAX; d++) {
		const struct ht_wire_row *w = &r->wire[d];

		fmt_gap(largest, sizeof(largest), w->max_gap_ns, w->gap_start_ns,
			w->gap_end_ns, r->start_ns);
		fmt_gap(across, sizeof(across), w->switch_gap_ns, w->switch_gap_start_ns,
			w->switch_gap_end_ns, r->start_ns);
		cli_table_add(tb, "%s", ht_wire_dir_name(w->dir));
		cli_table_add(tb, "%" PRIu64, w->packets);
		cli_table_add(tb, "%" PRIu64, w->skipped);
		cli_table_add(tb, "%s", largest);
		cli_table_add(tb, "%s", across);
		cli_table_add(tb, "%s", !w->packets ? "-" :
			      w->exact ? "every frame" : "in-kernel summary");
	}
	cli_table_print(tb, stdout);
	cli_table_free(tb);
	/* Only from-guest is what the guest lives through: to-guest frames
	 * are handed to the TAP and wait there for the (new) process. */
	print_gap_split(r, &r->wire[HT_WIRE_FROM_GUEST]);
}

static void print_sched(const struct ht_report *r)
{
	static const char *const hdr[] = {
		"RUNQ", "PID", "TID", "COMM", "WAITS", "TOTAL ms", "MAX ms", "AT ms",
		"RAN BEFORE",
	};
	struct cli_table *tb;
	char at[32];
	size_t n = r->n_sched < 10 ? r->n_sched : 10;

	if (!n)
		return;
	printf("\nRun-queue waits of the traced threads (longest %zu):\n", n);
	tb = cli_table_new(9, hdr);
	for (size_t i = 0; i < n; i++) {
		const struct ht_sched_row *s = &r->sched[i];

		fmt_ms(at, sizeof(at), s->max_end_ns, r->start_ns);
		cli_table_add(tb, "%zu", i + 1);
		cli_table_add(tb, "%d", s->pid);
		cli_table_add(tb, "%d", s->tid);
		cli_table_add(tb, "%.16s", s->comm);
		cli_table_add(tb, "%" PRIu64, s->waits);
		cli_table_add(tb, "%.3f", (double)s->total_ns / 1e6);
		cli_table_add(tb, "%.3f", (double)s->max_ns / 1e6);
		cli_table_add(tb, "%s", at);
		cli_table_add(tb, "%.16s (%d)", s->max_prev_comm, s->max_prev_pid);
	}
	cli_table_print(tb, stdout);
	cli_table_free(tb);
}

/* The last "vm running" (or "runstate running") of pid: where QEMU resumed. */
static uint64_t resumed_at(const struct ht_report *r, pid_t pid)
{
	uint64_t ts = 0;

	for (size_t i = 0; i < r->n_phases; i++)
		if (r->phases[i].pid == pid && r->phases[i].state &&
		    (strcmp(r->phases[i].name, "vm running") == 0 ||
		     strcmp(r->phases[i].name, "runstate running") == 0))
			ts = r->phases[i].start_ns > ts ? r->phases[i].start_ns : ts;
	return ts;
}

static void print_tb(const struct ht_report *r)
{
	for (size_t i = 0; i < r->n_tb;) {
		pid_t pid = r->tb[i].pid;
		uint64_t total = 0, peak = 0, peak_ms = 0, resume = resumed_at(r, pid);
		size_t j;

		for (j = i; j < r->n_tb && r->tb[j].pid == pid; j++) {
			total += r->tb[j].count;
			if (r->tb[j].count > peak) {
				peak = r->tb[j].count;
				peak_ms = r->tb[j].ms;
			}
		}
		printf("\ntranslate_block, pid %d: %" PRIu64 " blocks, peak %" PRIu64
		       "/ms at %.0f ms", pid, total, peak,
		       ((double)peak_ms * 1e6 - (double)r->start_ns) / 1e6);
		if (resume) {
			uint64_t ms0 = resume / 1000000;

			printf("; per ms after resume (%.3f ms):", (double)(resume - r->start_ns) / 1e6);
			for (uint64_t ms = ms0; ms < ms0 + 10; ms++) {
				uint64_t count = 0;

				for (size_t k = i; k < j; k++)
					if (r->tb[k].ms == ms)
						count = r->tb[k].count;
				printf(" %" PRIu64, count);
			}
		}
		printf("\n");
		i = j;
	}
}

static void print_processes(const struct ht_report *r)
{
	static const char *const hdr[] = {
		"PROCESS", "PARENT", "COMM", "FORK ms", "EXEC ms", "EXIT ms", "STATUS", "EXE",
	};
	struct cli_table *tb;
	char fork_ms[32], exec_ms[32], exit_ms[32];

	if (!r->n_procs)
		return;
	printf("\n");
	tb = cli_table_new(8, hdr);
	for (size_t i = 0; i < r->n_procs; i++) {
		const struct ht_process *p = &r->procs[i];

		fmt_ms(fork_ms, sizeof(fork_ms), p->fork_ns, r->start_ns);
		fmt_ms(exec_ms, sizeof(exec_ms), p->exec_ns, r->start_ns);
		fmt_ms(exit_ms, sizeof(exit_ms), p->exit_ns, r->start_ns);
		cli_table_add(tb, "%d", p->pid);
		cli_table_add(tb, p->parent ? "%d" : "-", p->parent);
		cli_table_add(tb, "%.16s", p->comm);
		cli_table_add(tb, "%s", fork_ms);
		cli_table_add(tb, "%s", exec_ms);
		cli_table_add(tb, "%s", exit_ms);
		if (!p->exit_ns)
			cli_table_add(tb, "-");
		else if (WIFSIGNALED(p->exit_status))
			cli_table_add(tb, "signal %d", WTERMSIG(p->exit_status));
		else
			cli_table_add(tb, "exit %d", WEXITSTATUS(p->exit_status));
		cli_table_add(tb, "%s", p->exe[0] ? p->exe : "-");
	}
	cli_table_print(tb, stdout);
	cli_table_free(tb);
}

static void print_text(const struct ht_report *r)
{
	printf("fd-handover trace: %.3f s, %zu processes, %zu events, %zu frames, %" PRIu64
	       " lost; times in ms from the start of tracing\n",
	       (double)(r->end_ns - r->start_ns) / 1e9, r->n_procs, r->n_events,
	       r->n_packets, r->lost_events);
	print_phases(r);
	print_pulls(r);
	print_syscalls(r);
	print_wire(r);
	print_processes(r);
	print_sched(r);
	print_tb(r);
}

/* ------------------------------------------------------------------ */
/* JSON: times in ns, offsets from the start of tracing               */

static uint64_t rel(const struct ht_report *r, uint64_t ns)
{
	return ns > r->start_ns ? ns - r->start_ns : 0;
}

static void json_errno(const char *key, int err)
{
	json_string(key, err ? ht_errno_name(err) : NULL);
}

static void json_phases(const struct ht_report *r)
{
	json_begin_array("phases");
	for (size_t i = 0; i < r->n_phases; i++) {
		const struct ht_phase_row *p = &r->phases[i];

		json_begin_object(NULL);
		json_string("name", p->name);
		if (p->index >= 0)
			json_i64("index", p->index);
		json_i64("pid", p->pid);
		json_i64("tid", p->tid);
		json_u64("offset_ns", rel(r, p->start_ns));
		json_u64("duration_ns", p->end_ns - p->start_ns);
		json_u64("count", p->count);
		json_bool("in_pull", p->depth > 0);
		json_string("detail", p->detail);
		json_end_object();
	}
	json_end_array();
}

static void json_pulls(const struct ht_report *r)
{
	json_begin_array("pulls");
	for (size_t i = 0; i < r->n_pulls; i++) {
		const struct ht_pull_row *p = &r->pulls[i];

		json_begin_object(NULL);
		json_i64("index", p->index);
		json_i64("pid", p->pid);
		json_i64("tid", p->tid);
		json_i64("source_pid", p->source_pid);
		json_i64("remote_fd", p->remote_fd);
		json_i64("local_fd", p->local_fd);
		json_errno("errno", p->err);
		json_u64("offset_ns", rel(r, p->ts_ns));
		json_u64("getfd_ns", p->getfd_ns);
		json_bool("verified", p->verified);
		json_errno("verify_errno", p->verify_err);
		json_bool("kcmp", p->kcmp_ok);
		json_end_object();
	}
	json_end_array();
}

static void json_syscalls(const struct ht_report *r)
{
	json_begin_array("syscalls");
	for (size_t i = 0; i < r->n_syscalls; i++) {
		const struct ht_syscall_row *s = &r->syscalls[i];

		json_begin_object(NULL);
		json_string("name", ht_syscall_name(s->sys));
		json_i64("pid", s->pid);
		json_i64("tid", s->tid);
		json_string("comm", s->comm);
		json_i64("ret", s->ret);
		json_errno("errno", s->err);
		json_bool("entry_seen", s->enter_ns != 0);
		json_u64("offset_ns", rel(r, s->enter_ns ? s->enter_ns : s->exit_ns));
		json_u64("latency_ns", s->enter_ns ? s->exit_ns - s->enter_ns : 0);
		json_begin_array("args");
		for (int k = 0; k < HT_SYS_ARGS; k++)
			json_u64(NULL, s->args[k]);
		json_end_array();
		json_end_object();
	}
	json_end_array();
}

static void json_wire(const struct ht_report *r)
{
	if (!r->tap[0]) {
		json_null("wire");
		return;
	}
	json_begin_object("wire");
	json_string("tap", r->tap);
	json_u64("ifindex", r->ifindex);
	json_bool("matched_by_name", r->tap_by_name);
	json_u64("netns_inode", r->netns_ino);
	json_begin_array("directions");
	for (int d = 0; d < HT_WIRE__MAX; d++) {
		const struct ht_wire_row *w = &r->wire[d];

		json_begin_object(NULL);
		json_string("direction", ht_wire_dir_name(w->dir));
		json_u64("packets", w->packets);
		json_u64("bytes", w->bytes);
		json_bool("exact", w->exact);
		json_u64("skipped", w->skipped);
		json_u64("largest_gap_ns", w->max_gap_ns);
		json_u64("gap_start_offset_ns", w->max_gap_ns ? rel(r, w->gap_start_ns) : 0);
		json_u64("gap_end_offset_ns", w->max_gap_ns ? rel(r, w->gap_end_ns) : 0);
		json_u64("switch_gap_ns", w->switch_gap_ns);
		json_u64("switch_gap_start_offset_ns",
			 w->switch_gap_ns ? rel(r, w->switch_gap_start_ns) : 0);
		json_u64("switch_gap_end_offset_ns",
			 w->switch_gap_ns ? rel(r, w->switch_gap_end_ns) : 0);
		json_end_object();
	}
	json_end_array();
	json_end_object();
}

static void json_processes(const struct ht_report *r)
{
	json_begin_array("processes");
	for (size_t i = 0; i < r->n_procs; i++) {
		const struct ht_process *p = &r->procs[i];

		json_begin_object(NULL);
		json_i64("pid", p->pid);
		json_i64("parent", p->parent);
		json_string("comm", p->comm);
		json_string("exe", p->exe[0] ? p->exe : NULL);
		json_u64("fork_offset_ns", rel(r, p->fork_ns));
		json_u64("exec_offset_ns", rel(r, p->exec_ns));
		json_u64("exit_offset_ns", rel(r, p->exit_ns));
		if (p->exit_ns)
			json_i64("wait_status", p->exit_status);
		json_end_object();
	}
	json_end_array();
}

static void json_sched(const struct ht_report *r)
{
	json_begin_array("sched");
	for (size_t i = 0; i < r->n_sched; i++) {
		const struct ht_sched_row *s = &r->sched[i];

		json_begin_object(NULL);
		json_i64("pid", s->pid);
		json_i64("tid", s->tid);
		json_string("comm", s->comm);
		json_u64("waits", s->waits);
		json_u64("total_ns", s->total_ns);
		json_u64("max_ns", s->max_ns);
		json_u64("max_end_offset_ns", rel(r, s->max_end_ns));
		json_i64("ran_before_pid", s->max_prev_pid);
		json_string("ran_before_comm", s->max_prev_comm);
		json_end_object();
	}
	json_end_array();
}

static void json_tb(const struct ht_report *r)
{
	json_begin_array("translate_block");
	for (size_t i = 0; i < r->n_tb; i++) {
		json_begin_object(NULL);
		json_i64("pid", r->tb[i].pid);
		json_u64("offset_ms", rel(r, r->tb[i].ms * 1000000) / 1000000);
		json_u64("blocks", r->tb[i].count);
		json_end_object();
	}
	json_end_array();
}

static void print_json(const struct ht_report *r)
{
	json_begin_object(NULL);
	json_u64("start_ns", r->start_ns);
	json_u64("duration_ns", r->end_ns - r->start_ns);
	json_u64("events", r->n_events);
	json_u64("lost_events", r->lost_events);
	json_u64("sched_min_ns", r->sched_min_ns);
	json_u64("switch_start_offset_ns", rel(r, r->switch_start_ns));
	json_u64("switch_end_offset_ns", rel(r, r->switch_end_ns));
	json_phases(r);
	json_pulls(r);
	json_syscalls(r);
	json_wire(r);
	json_processes(r);
	json_sched(r);
	json_tb(r);
	json_end();
}

static int write_perfetto(const struct ht_report *r, const char *path)
{
	FILE *f = fopen(path, "we");
	int e;

	if (!f)
		return cli_fail(-errno, "--perfetto %s: %s", path, strerror(errno));
	e = trace_write_perfetto(r, f);
	if (fclose(f) != 0 && e == 0)
		e = -errno;
	if (e < 0)
		return cli_fail(e, "writing %s: %s", path, strerror(-e));
	return 0;
}

/* ------------------------------------------------------------------ */

static int open_tracer(struct args *a, struct child *c, struct ht_trace **ret)
{
	const char *lib = our_library(), *installed = installed_library();
	char cmd_path[PATH_MAX];
	int r;

	if (lib && push(&a->usdt, &a->n_usdt, sizeof(char *), &lib) < 0)
		return -ENOMEM;
	if (installed && push(&a->usdt, &a->n_usdt, sizeof(char *), &installed) < 0)
		return -ENOMEM;
	if (c->pid > 0 && push(&a->pids, &a->n_pids, sizeof(pid_t), &c->pid) < 0)
		return -ENOMEM;
	a->o.pids = a->pids;
	a->o.n_pids = a->n_pids;
	a->o.usdt_paths = a->usdt;
	a->o.n_usdt_paths = a->n_usdt;
	a->o.usdt_probes = a->probes;
	a->o.n_usdt_probes = a->n_probes;
	r = ht_trace_open(&a->o, ret);
	if (r < 0)
		return r;
	/* CMD's probes before it runs: uprobes follow the inode. */
	if (a->cmd && resolve_cmd(a->cmd[0], cmd_path, sizeof(cmd_path)) == 0) {
		r = ht_trace_add_binary(*ret, cmd_path);
		if (r < 0 && r != -ENOENT && r != -EACCES && r != -ENOEXEC) {
			ht_trace_free(*ret);
			*ret = NULL;
			return r;
		}
	}
	return 0;
}

static const char *open_hint(int r)
{
	switch (r) {
	case -EPERM:
	case -EACCES:
		return "run as root: loading BPF needs CAP_BPF and CAP_PERFMON, the mounts CAP_SYS_ADMIN";
	case -EOPNOTSUPP:
		return "this kernel was built without BTF (CONFIG_DEBUG_INFO_BTF)";
	case -ENODEV:
		return "check the name with `ip link` (inside the namespace: `ip -n NAME link`)";
	default:
		return NULL;
	}
}

int cmd_trace(int argc, char **argv)
{
	struct args a = { 0 };
	struct child c = { .pid = -1, .gate = -1, .status_pipe = -1 };
	struct ht_trace *t = NULL;
	struct ht_report *rep = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	int status = 0, r, ret;

	r = parse_args(argc, argv, &a);
	if (r != 0) {
		ret = r < 0 ? CLI_EXIT_OK : r;
		goto cleanup;
	}
	verbose_libbpf = a.verbose;
	libbpf_set_print(libbpf_print);
	/* No SA_RESTART: the poll returns and the loop sees the flag. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (a.cmd) {
		r = child_start(&c, a.cmd);
		if (r < 0) {
			ret = cli_fail(r, "fork: %s", strerror(-r));
			goto cleanup;
		}
	}
	r = open_tracer(&a, &c, &t);
	if (r < 0) {
		ret = cli_fail_hint(r, open_hint(r), "trace: %s",
				    ht_last_error()[0] ? ht_last_error() : strerror(-r));
		goto cleanup;
	}
	if (a.verbose)
		fprintf(stderr, "Probes attached: %s\n", ht_trace_binaries(t));
	fprintf(stderr, "Tracing %zu processes%s, %zu probes%s%s... %s\n",
		a.n_pids, a.n_pids ? "" : " (all)", ht_trace_n_probes(t),
		a.o.tap ? ", wire " : "", a.o.tap ? a.o.tap : "",
		a.cmd ? "until CMD exits." : "Hit Ctrl-C to end.");
	if (a.cmd) {
		r = child_release(&c);
		if (r) {
			ret = cli_fail_exit(r == ENOENT ? CLI_EXIT_NOT_FOUND : CLI_EXIT_CANNOT_EXEC,
					    -r, NULL, "%s: %s", a.cmd[0], strerror(r));
			goto cleanup;
		}
	}
	r = trace_loop(t, &a, &c, &status);
	if (r == 0)
		r = ht_trace_report(t, &rep);
	if (r < 0) {
		ret = cli_fail(r, "trace: %s", ht_last_error());
		goto cleanup;
	}
	if (a.perfetto) {
		ret = write_perfetto(rep, a.perfetto);
		if (ret)
			goto cleanup;
	}
	if (cli.json)
		print_json(rep);
	else
		print_text(rep);
	ret = CLI_EXIT_OK;
	if (a.cmd && c.pid < 0)
		ret = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);

cleanup:
	ht_report_free(rep);
	ht_trace_free(t);
	if (c.pid > 0 && c.gate >= 0)
		child_abort(&c);
	free(a.pids);
	free(a.usdt);
	free(a.probes);
	return ret;
}
