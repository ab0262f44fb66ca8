/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The downtime tracer's loader, as a small C API: `fd-handover trace`
 * (tools/cmd-trace.c) and bench/trace-overhead use it.
 *
 *	ht_trace_open()		open → set knobs → load → pin → attach
 *	ht_trace_add_binary()	attach the probes of one more ELF file
 *	ht_trace_poll()		drain the ring buffer (call it often)
 *	ht_trace_report()	what happened: phases, pulls, syscalls, wire
 *	ht_trace_free()		detach everything (pinned maps stay)
 *
 * Conventions as in libfdhandover: 0/positive or -errno, never prints;
 * ht_last_error() says what failed and what to do.  Needs root (or
 * CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN for the mounts and pins) and a
 * kernel with BTF.  Timestamps are CLOCK_MONOTONIC ns throughout.
 */
#ifndef FDH_BPF_HANDOVER_TRACE_H
#define FDH_BPF_HANDOVER_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "handover.h"

#define HT_PIN_DIR "/sys/fs/bpf/fd-handover"
#define HT_SCHED_MIN_NS_DEFAULT 100000ull

struct ht_trace_opts {
	const pid_t *pids;		/* trace these and their children;  */
	size_t n_pids;			/* none: every process hitting a probe */
	const char *const *usdt_paths;	/* ELF files (libfdhandover.so, an */
	size_t n_usdt_paths;		/* executable, QEMU) to attach */
	const char *const *usdt_probes;	/* "BINARY:PROVIDER:NAME", NAME may */
	size_t n_usdt_probes;		/* be a glob ("migration_*") */
	bool no_qemu_probes;		/* skip the built-in QEMU list */
	const char *tap;		/* trace frames on this interface */
	const char *netns;		/* its namespace: a name under /run/netns
					   or a path (/proc/PID/ns/net); NULL:
					   the caller's, or, if tap is not
					   there, its name in any namespace */
	bool light;			/* per-pull phases only: no per-fd probes
					   (pull_fd, verify) and no syscall
					   tracepoints, which cost ~1.5 us per
					   probe hit and slow every syscall */
	bool no_packets;		/* per-direction summary only */
	uint16_t ethertypes[HT_MAX_ETHERTYPES];	/* count only these frames
					   (0x0800, ...); 0-terminated, all 0:
					   every frame but QEMU's RARP */
	bool no_sched;			/* no run-queue latency */
	uint64_t sched_min_ns;		/* 0: HT_SCHED_MIN_NS_DEFAULT */
	const char *pin_dir;		/* pin the stats maps; NULL: don't */
};

struct ht_trace;

/* Thread-local description of the last failure (never NULL). */
const char *ht_last_error(void);

/*
 * Load and attach.  Mounts tracefs and bpffs when they are missing.
 * Errors: -EPERM (not root), -EOPNOTSUPP (no BTF), -ENODEV (no such TAP in
 * that namespace), -ENOENT (a --usdt path), -EINVAL (bad opts), and what
 * libbpf returns.
 */
int ht_trace_open(const struct ht_trace_opts *opts, struct ht_trace **ret_trace);

/*
 * Attach the probes path carries: libfdhandover's, QEMU's built-in list,
 * and the matching --usdt-probe entries.  A file already attached (same
 * inode) is skipped.  Returns the number of probes attached (0 if it has
 * none), or -errno.
 */
int ht_trace_add_binary(struct ht_trace *t, const char *path);

/* Consume events, waiting up to timeout_ms; returns how many, or -errno. */
int ht_trace_poll(struct ht_trace *t, int timeout_ms);

/* ts of the last hit of a libfdhandover phase (0: not seen). */
uint64_t ht_trace_phase_seen(const struct ht_trace *t, enum ht_phase phase);
/* CLOCK_MONOTONIC when tracing started (all probes attached). */
uint64_t ht_trace_start_ns(const struct ht_trace *t);
/* Number of probes attached, and a printable list of the attached files. */
size_t ht_trace_n_probes(const struct ht_trace *t);
const char *ht_trace_binaries(const struct ht_trace *t);

void ht_trace_free(struct ht_trace *t);

/* ------------------------------------------------------------------ */
/* The report: what the events mean                                   */

struct ht_process {
	pid_t pid;
	pid_t parent;			/* 0: not forked while traced */
	char comm[HT_COMM_LEN];		/* last seen */
	char exe[HT_PATH_LEN];		/* exec filename, "" if no exec seen */
	uint64_t fork_ns, exec_ns, exit_ns;	/* 0: not seen */
	int exit_status;		/* wait status, valid when exit_ns */
};

struct ht_thread {
	pid_t pid, tid;
	char comm[HT_COMM_LEN];
};

/*
 * One row of the phase table.  libfdhandover's probes fire after each
 * step, so a step runs from the previous probe of the same thread to its
 * own: pull_fd[i] is the pidfd_getfd of entry i, verify[i] its checks,
 * commit the final distinctness check; "pull" spans pull_begin to
 * commit/rollback.  QEMU's runstate_set, vm_state_notify and
 * migrate_set_state open a state ("runstate paused", "vm running",
 * "migration active") that lasts until the next one of that probe; its
 * other probes are collapsed into one row per (process, probe) with a
 * count.  exec and exit of the
 * traced processes are rows too (phase HT_PHASE_NONE).
 */
struct ht_phase_row {
	char name[HT_PROBE_NAME_LEN];	/* "pull_fd", "runstate running", "qemu:vhost_commit" */
	char detail[128];
	enum ht_phase phase;
	pid_t pid, tid;
	int index;			/* fd index of pull_fd/verify, else -1 */
	int depth;			/* 1: a step inside "pull" */
	unsigned int count;		/* hits collapsed into the row */
	bool state;			/* a QEMU state until the next one */
	uint64_t start_ns, end_ns;	/* end == start: an instant */
};

/* One pulled fd: pull_fd + verify + its pidfd_getfd. */
struct ht_pull_row {
	pid_t pid, tid;			/* the puller */
	pid_t source_pid;
	int index, remote_fd, local_fd;
	int err;			/* errno of pidfd_getfd, 0 if pulled */
	bool verified;			/* a verify probe was seen */
	int verify_err;			/* its -errno result as errno, 0 ok */
	bool kcmp_ok;
	uint64_t ts_ns;			/* the pull_fd probe */
	uint64_t getfd_ns;		/* pidfd_getfd latency, 0 unknown */
};

struct ht_syscall_row {
	pid_t pid, tid;
	char comm[HT_COMM_LEN];
	enum ht_syscall sys;
	uint64_t enter_ns;		/* 0: entry not seen (seccomp) */
	uint64_t exit_ns;
	int64_t ret;
	int err;			/* errno, 0 on success */
	uint64_t args[HT_SYS_ARGS];
};

struct ht_wire_row {
	enum ht_wire_dir dir;
	uint64_t packets, bytes;
	uint64_t first_ns, last_ns;
	uint64_t max_gap_ns;		/* 0: fewer than two packets */
	uint64_t gap_start_ns, gap_end_ns;
	bool exact;			/* from every frame's event, not the
					   in-kernel summary */
	uint64_t skipped;		/* QEMU's RARP self-announcements and
					   other ethertypes than asked: not in
					   packets, never end a gap */
	/* The gap across the switch-over: the longest interval between
	 * two frames that overlaps switch_start..switch_end (0: none). */
	uint64_t switch_gap_ns;
	uint64_t switch_gap_start_ns, switch_gap_end_ns;
};

struct ht_sched_row {
	pid_t pid, tid;
	char comm[HT_COMM_LEN];
	uint64_t waits, total_ns, max_ns;
	uint64_t max_end_ns;
	pid_t max_prev_pid;
	char max_prev_comm[HT_COMM_LEN];
};

struct ht_tb_row {
	pid_t pid;
	uint64_t ms;			/* absolute ms (CLOCK_MONOTONIC / 1e6) */
	uint64_t count;
};

struct ht_packet {
	uint64_t ts;
	uint32_t len;
	uint16_t proto;			/* ethertype */
	uint8_t dir;
};

struct ht_report {
	uint64_t start_ns, end_ns;
	uint64_t lost_events;		/* ring buffer was full */
	char tap[HT_COMM_LEN];		/* "" without --tap */
	uint32_t ifindex;		/* as the frames carried it */
	bool tap_by_name;		/* not in our netns, none given: the
					   name matched in the namespace where
					   a traced process first wrote to it */
	uint32_t netns_ino;		/* that namespace (0: none yet) */
	uint64_t sched_min_ns;
	/*
	 * The switch-over: from the first stop (a QEMU "vm stopped" or
	 * "runstate paused/finish-migrate", or the first pull_begin) to the
	 * first "vm running"/"runstate running" after it (else the end of
	 * that pull).  0: no such phase was seen.
	 */
	uint64_t switch_start_ns, switch_end_ns;

	struct ht_process *procs;	size_t n_procs;
	struct ht_thread *threads;	size_t n_threads;
	struct ht_phase_row *phases;	size_t n_phases;
	struct ht_pull_row *pulls;	size_t n_pulls;
	struct ht_syscall_row *syscalls; size_t n_syscalls;
	struct ht_wire_row wire[HT_WIRE__MAX];
	struct ht_sched_row *sched;	size_t n_sched;
	struct ht_tb_row *tb;		size_t n_tb;

	/* Everything seen, by time, for the Perfetto file. */
	struct ht_event *events;	size_t n_events;
	struct ht_packet *packets;	size_t n_packets;
	char (*probe_names)[HT_PROBE_NAME_LEN];	size_t n_probe_names;
};

/* Take what was collected so far (call after the last poll). */
int ht_trace_report(struct ht_trace *t, struct ht_report **ret_report);
void ht_report_free(struct ht_report *r);

const char *ht_phase_name(enum ht_phase phase);		/* "pull_fd" */
const char *ht_syscall_name(enum ht_syscall sys);	/* "pidfd_getfd" */
const char *ht_wire_dir_name(enum ht_wire_dir dir);	/* "from-guest" */
const char *ht_errno_name(int err);			/* "EPERM", or NULL */

#endif /* FDH_BPF_HANDOVER_TRACE_H */
