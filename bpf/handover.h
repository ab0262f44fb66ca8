/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by handover.bpf.c and its loader: the ring-buffer event and the
 * values of the pinned maps.  Fixed-width, pointer-free, the same layout
 * on both sides.  The pinned maps carry BTF, so `bpftool map dump pinned
 * /sys/fs/bpf/fd-handover/<map>` prints these field names (and the enum
 * fields by enumerator name); Documentation/tracing.md shows the output.
 *
 * All timestamps are bpf_ktime_get_ns(): CLOCK_MONOTONIC, in ns.
 */
#ifndef FDH_BPF_HANDOVER_H
#define FDH_BPF_HANDOVER_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define HT_COMM_LEN 16
#define HT_STR_LEN 32		/* one string argument of a USDT probe */
#define HT_PATH_LEN 64		/* exec filename, truncated */
#define HT_PROBE_NAME_LEN 64
#define HT_USDT_ARGS 6		/* args kept per probe hit (USDT allows 12) */
#define HT_SYS_ARGS 5		/* kcmp has five */
#define HT_PHASE_LOG 1024	/* entries of the phase_log ring */
#define HT_MAX_PROBES 1024	/* distinct probe names attached */
#define HT_MAX_ETHERTYPES 4	/* --ethertype filters */

/* What an event in the ring buffer is. */
enum ht_event_type {
	HT_EV_USDT = 1,		/* a USDT probe fired (libfdhandover, QEMU, user) */
	HT_EV_SYSCALL = 2,	/* pidfd_open / pidfd_getfd / kcmp returned */
	HT_EV_PROC = 3,		/* fork, new thread, exec, exit */
	HT_EV_SCHED = 4,	/* a traced thread waited on a run queue */
	HT_EV_PACKET = 5,	/* a frame crossed the traced TAP */
};

/*
 * What a probe means: libfdhandover's probes each have their phase,
 * any other probe is QEMU's or one the user named.
 */
enum ht_phase {
	HT_PHASE_NONE = 0,
	HT_PHASE_SOURCE_OPENED = 1,	/* (pid, pidfd, sockfd) */
	HT_PHASE_PULL_BEGIN = 2,	/* (pid, n) */
	HT_PHASE_PULL_FD = 3,		/* (i, remote_fd, local_fd, err) */
	HT_PHASE_VERIFY = 4,		/* (i, r, kcmp_ok) */
	HT_PHASE_FALLBACK = 5,		/* (pid, err) */
	HT_PHASE_SERVE = 6,		/* (n, status) */
	HT_PHASE_MANIFEST_ENCODED = 7,	/* (n, len) */
	HT_PHASE_MANIFEST_DECODED = 8,	/* (len, err) */
	HT_PHASE_COMMIT = 9,		/* (pid, n, transport) */
	HT_PHASE_ROLLBACK = 10,		/* (entry, err) */
	HT_PHASE_QEMU = 11,		/* any probe of provider "qemu" */
	HT_PHASE_USER = 12,		/* a --usdt-probe of another provider */
	HT_PHASE__MAX
};

enum ht_syscall {
	HT_SYS_PIDFD_OPEN = 1,
	HT_SYS_PIDFD_GETFD = 2,
	HT_SYS_KCMP = 3,
	HT_SYS__MAX
};

enum ht_proc_kind {
	HT_PROC_FORK = 1,	/* pid forked other (a new process) */
	HT_PROC_THREAD = 2,	/* pid started thread other */
	HT_PROC_EXEC = 3,	/* pid exec'd filename */
	HT_PROC_EXIT = 4,	/* the last thread of pid exited */
};

/*
 * Wire directions, named from the side of whoever holds the TAP fd (the
 * guest, through QEMU).  A write() to the fd enters the host stack:
 * netif_receive_skb on the TAP.  The host sending to the TAP is
 * net_dev_start_xmit; the frame then waits for a read() of the fd.
 */
enum ht_wire_dir {
	HT_WIRE_FROM_GUEST = 0,
	HT_WIRE_TO_GUEST = 1,
	HT_WIRE__MAX
};

/*
 * The USDT cookie each attachment carries: which probe (index into the
 * loader's table and the probe_names map), its phase, and which
 * argument, if any, is a string to copy (1-based; 0: none).
 */
#define HT_COOKIE(probe, phase, str_arg)				\
	((__u64)(probe) | ((__u64)(phase) << 16) | ((__u64)(str_arg) << 24))
#define HT_COOKIE_PROBE(c) ((__u32)((c) & 0xffff))
#define HT_COOKIE_PHASE(c) ((__u32)(((c) >> 16) & 0xff))
#define HT_COOKIE_STR_ARG(c) ((__u32)(((c) >> 24) & 0xff))

struct ht_usdt_event {
	__u32 probe;		/* index into probe_names */
	__u32 phase;		/* enum ht_phase */
	__u32 nargs;		/* arguments the probe has */
	__u32 pad;
	__s64 args[HT_USDT_ARGS];
	char str[HT_STR_LEN];	/* the string argument, if the cookie names one */
};

struct ht_syscall_event {
	__u32 sys;		/* enum ht_syscall */
	__s32 err;		/* errno (positive), 0 on success */
	__s64 ret;
	__u64 enter_ts;		/* 0: entry not seen (seccomp refused it before
				   sys_enter, or the call began before attach) */
	__u64 args[HT_SYS_ARGS];
};

struct ht_proc_event {
	__u32 kind;		/* enum ht_proc_kind */
	__u32 other;		/* child pid, new thread id, or old pid on exec */
	__s32 exit_code;	/* wait status: code << 8 | signal */
	__u32 pad;
	char filename[HT_PATH_LEN];
};

struct ht_sched_event {
	__u64 wait_ns;		/* runnable but not running for this long */
	__u32 prev_pid;		/* who had the CPU just before (tgid, tid) */
	__u32 prev_tid;
	char prev_comm[HT_COMM_LEN];
	__u32 preempted;	/* 1: was preempted, 0: was woken up */
	__u32 pad;
};

struct ht_packet_event {
	__u32 dir;		/* enum ht_wire_dir */
	__u32 len;
	__u32 ifindex;
	__u16 proto;		/* ethertype, host order */
	__u16 pad;
};

struct ht_event {
	__u64 ts;
	__u32 type;		/* enum ht_event_type */
	__u32 pid;		/* tgid */
	__u32 tid;
	__u32 cpu;
	char comm[HT_COMM_LEN];
	union {
		struct ht_usdt_event usdt;
		struct ht_syscall_event sys;
		struct ht_proc_event proc;
		struct ht_sched_event sched;
		struct ht_packet_event pkt;
	};
};

/* ---- pinned maps (values typed for bpftool) ---- */

/* phase_log: HASH of HT_PHASE_LOG slots, a ring of the last probe hits. */
struct ht_phase_rec {
	__u64 seq;		/* 1, 2, ...: slot = (seq - 1) % HT_PHASE_LOG */
	__u64 ts;
	enum ht_phase phase;
	__u32 pid;
	__u32 tid;
	__u32 probe;
	__s64 args[4];
	char name[HT_PROBE_NAME_LEN];	/* "fdhandover:pull_fd" */
};

/* syscall_stats: HASH keyed by (pid, syscall, errno). */
struct ht_sys_key {
	__u32 pid;
	enum ht_syscall sys;
	__s32 err;		/* errno, 0 for success */
};

struct ht_sys_stat {
	__u64 count;
	__u64 total_ns;		/* of the calls whose entry was seen */
	__u64 max_ns;
	__u64 last_ts;
};

/* wire_stats: ARRAY indexed by enum ht_wire_dir. */
struct ht_wire_stat {
	enum ht_wire_dir dir;
	__u32 ifindex;
	__u64 packets;
	__u64 bytes;
	__u64 first_ts;
	__u64 last_ts;
	__u64 max_gap_ns;	/* largest interval between two packets */
	__u64 max_gap_end_ts;	/* the packet that ended it */
	__u64 skipped;		/* frames not counted in packets nor gaps:
				   QEMU's own RARP announcements of a migrated
				   guest, and ethertypes other than asked */
};

/* sched_stats: HASH keyed by thread id. */
struct ht_sched_stat {
	__u32 pid;
	__u32 tid;
	char comm[HT_COMM_LEN];
	__u64 waits;
	__u64 total_ns;
	__u64 max_ns;
	__u64 max_ts;		/* when the longest wait ended */
	char max_prev_comm[HT_COMM_LEN];	/* who ran just before it */
	__u32 max_prev_pid;
	__u32 pad;
};

/* tb_count: HASH of translate_block hits per process and millisecond. */
struct ht_tb_key {
	__u32 pid;
	__u32 pad;
	__u64 ms;		/* ts / 1000000 */
};

/* probe_names: ARRAY of HT_MAX_PROBES, filled by the loader. */
struct ht_probe_name {
	char name[HT_PROBE_NAME_LEN];	/* "provider:name" */
};

#endif /* FDH_BPF_HANDOVER_H */
