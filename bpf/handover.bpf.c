// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The downtime tracer's kernel side.  One clock (bpf_ktime_get_ns), one
 * ring buffer of struct ht_event, and a few small maps that stay pinned
 * for bpftool.  This kernel has no kprobes and refuses fentry, so every
 * hook is a tracepoint (tp_btf where BTF gives typed arguments, classic
 * syscalls:* tracepoints for the three syscalls) or a USDT probe.
 *
 * Which processes: the "traced" set, filled by the loader with the pids
 * it was given, grows with their children (fork) and, when the loader
 * traces every process, with whoever hits a probe.  Lifecycle and
 * scheduling hooks only ever look at that set.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* --usdt-probe may add hundreds of QEMU's probes: room for them. */
#define BPF_USDT_MAX_SPEC_CNT 1024
#define BPF_USDT_MAX_IP_CNT 4096
#include <bpf/usdt.bpf.h>

#include "handover.h"

/*
 * tp_btf programs read kernel structs directly (p->tgid): BTF-typed
 * pointers need no bpf_probe_read call, and vmlinux.h's
 * preserve_access_index makes each access a CO-RE relocation.
 */

/* Knobs, set by the loader between open and load. */
const volatile bool filter_tgid = true;		/* false: every process */
const volatile bool follow_children = true;
const volatile __u64 sched_min_ns = 100000;	/* emit waits this long */
const volatile __u32 tap_ifindex = 0;		/* 0: by name, or no wire */
const volatile __u32 tap_netns_ino = 0;		/* 0: any namespace */
/* A TAP not (yet) in our namespace, none given: match it by name, in the
 * namespace where a traced process writes to it (tap_netns_seen). */
const volatile __u64 tap_name[2] = {};		/* IFNAMSIZ bytes, 0: none */
const volatile bool packet_events = true;	/* one event per frame */
/* Count only frames of these ethertypes (host order; 0: any). */
const volatile __u16 ethertypes[HT_MAX_ETHERTYPES] = {};

/* Read by the loader. */
__u64 dropped_events = 0;
__u64 phase_seq = 0;
__u32 tap_netns_seen = 0;	/* by name: the namespace it locked on */

#define ETH_P_RARP 0x8035	/* not in vmlinux.h: a #define of if_ether.h */

/* Wake the reader only when this much is waiting (it polls anyway). */
#define HT_WAKEUP_BYTES (256 * 1024)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);		/* tgid */
	__type(value, __u32);		/* 1 */
} traced SEC(".maps");

struct sys_enter_rec {
	__u64 ts;
	__u64 args[HT_SYS_ARGS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);		/* tid */
	__type(value, struct sys_enter_rec);
} sys_start SEC(".maps");

struct runq_rec {
	__u64 ts;
	__u32 preempted;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);		/* tid */
	__type(value, struct runq_rec);
} runq_since SEC(".maps");

/* A hash keyed by slot, not an array: a dump shows only used slots. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HT_PHASE_LOG);
	__type(key, __u32);		/* (seq - 1) % HT_PHASE_LOG */
	__type(value, struct ht_phase_rec);
} phase_log SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ht_sys_key);
	__type(value, struct ht_sys_stat);
} syscall_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HT_WIRE__MAX);
	__type(key, __u32);
	__type(value, struct ht_wire_stat);
} wire_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);		/* tid */
	__type(value, struct ht_sched_stat);
} sched_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ht_tb_key);
	__type(value, __u64);
} tb_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HT_MAX_PROBES);
	__type(key, __u32);
	__type(value, struct ht_probe_name);
} probe_names SEC(".maps");

static __always_inline bool in_set(__u32 tgid)
{
	return bpf_map_lookup_elem(&traced, &tgid) != NULL;
}

static __always_inline bool is_traced(__u32 tgid)
{
	return !filter_tgid || in_set(tgid);
}

static __always_inline void adopt(__u32 tgid)
{
	__u32 one = 1;

	bpf_map_update_elem(&traced, &tgid, &one, BPF_NOEXIST);
}

static __always_inline struct ht_event *event_new(__u32 type)
{
	struct ht_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	__u64 id;

	if (!e) {
		__sync_fetch_and_add(&dropped_events, 1);
		return NULL;
	}
	id = bpf_get_current_pid_tgid();
	e->ts = bpf_ktime_get_ns();
	e->type = type;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->cpu = bpf_get_smp_processor_id();
	/* Frames arrive in whatever task (or softirq) ran: no name. */
	if (type == HT_EV_PACKET)
		e->comm[0] = '\0';
	else
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

static __always_inline void event_submit(struct ht_event *e)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= HT_WAKEUP_BYTES)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

/* ---- USDT: libfdhandover, QEMU, user probes ---- */

static __always_inline void log_phase(const struct ht_event *e)
{
	__u64 seq = __sync_fetch_and_add(&phase_seq, 1) + 1;
	__u32 slot = (__u32)((seq - 1) % HT_PHASE_LOG);
	__u32 probe = e->usdt.probe;
	struct ht_probe_name *pn;
	struct ht_phase_rec r = {
		.seq = seq,
		.ts = e->ts,
		.phase = e->usdt.phase,
		.pid = e->pid,
		.tid = e->tid,
		.probe = probe,
	};

	for (int i = 0; i < 4; i++)
		r.args[i] = e->usdt.args[i];
	pn = bpf_map_lookup_elem(&probe_names, &probe);
	if (pn)
		__builtin_memcpy(r.name, pn->name, sizeof(r.name));
	bpf_map_update_elem(&phase_log, &slot, &r, BPF_ANY);
}

/*
 * Copies a string that may sit on a page the process never touched (QEMU's
 * "running", "paused" in .rodata): faults it in, so only a sleepable
 * program may call it (Linux 6.12).  Weak: where it is missing the loader
 * leaves handle_usdt_str out and bpf_probe_read_user_str does its best.
 */
extern int bpf_copy_from_user_str(void *dst, __u32 dst__sz, const void *unsafe_ptr__ign,
				  __u64 flags) __ksym __weak;

static __always_inline int usdt_event(struct pt_regs *ctx, bool sleepable)
{
	__u64 cookie = bpf_usdt_cookie(ctx);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 str_arg = HT_COOKIE_STR_ARG(cookie);
	struct ht_event *e;
	const void *str;
	int n;

	if (!is_traced(tgid))
		return 0;
	/* Tracing everyone: whoever takes part in a handover is involved. */
	if (!filter_tgid)
		adopt(tgid);
	e = event_new(HT_EV_USDT);
	if (!e)
		return 0;
	n = bpf_usdt_arg_cnt(ctx);
	e->usdt.probe = HT_COOKIE_PROBE(cookie);
	e->usdt.phase = HT_COOKIE_PHASE(cookie);
	e->usdt.nargs = n < 0 ? 0 : n;
	e->usdt.pad = 0;
	for (int i = 0; i < HT_USDT_ARGS; i++) {
		long v = 0;

		if (i < n)
			bpf_usdt_arg(ctx, i, &v);
		e->usdt.args[i] = v;
	}
	e->usdt.str[0] = '\0';
	if (str_arg >= 1 && str_arg <= HT_USDT_ARGS) {
		__u32 i = (str_arg - 1) & 7;

		str = i < HT_USDT_ARGS ? (const void *)e->usdt.args[i] : NULL;
		if (sleepable)
			bpf_copy_from_user_str(e->usdt.str, sizeof(e->usdt.str), str, 0);
		else
			bpf_probe_read_user_str(e->usdt.str, sizeof(e->usdt.str), str);
	}
	log_phase(e);
	event_submit(e);
	return 0;
}

SEC("usdt")
int handle_usdt(struct pt_regs *ctx)
{
	return usdt_event(ctx, false);
}

/* For probes with a string argument; made sleepable by the loader. */
SEC("usdt")
int handle_usdt_str(struct pt_regs *ctx)
{
	return usdt_event(ctx, true);
}

/* QEMU's translate_block fires per translated block: count, don't log. */
SEC("usdt")
int handle_translate_block(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct ht_tb_key key = { .pid = tgid };
	__u64 one = 1, *count;

	if (!is_traced(tgid))
		return 0;
	key.ms = bpf_ktime_get_ns() / 1000000;
	count = bpf_map_lookup_elem(&tb_count, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&tb_count, &key, &one, BPF_NOEXIST);
	return 0;
}

/* ---- syscalls: pidfd_open, pidfd_getfd, kcmp ---- */

static __always_inline int sys_enter(struct trace_event_raw_sys_enter *ctx,
				     int nargs)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct sys_enter_rec rec = { .ts = bpf_ktime_get_ns() };

	if (!is_traced(id >> 32))
		return 0;
	/*
	 * One by one: ctx only takes constant offsets from its base.  And
	 * no further than this syscall's record: perf refuses to attach a
	 * program that may read past it (EACCES).
	 */
	rec.args[0] = ctx->args[0];
	rec.args[1] = ctx->args[1];
	if (nargs > 2)
		rec.args[2] = ctx->args[2];
	if (nargs > 4) {
		rec.args[3] = ctx->args[3];
		rec.args[4] = ctx->args[4];
	}
	bpf_map_update_elem(&sys_start, &tid, &rec, BPF_ANY);
	return 0;
}

static __always_inline void sys_account(__u32 pid, __u32 sys, __s32 err,
					__u64 ts, __u64 lat)
{
	struct ht_sys_key key = { .pid = pid, .sys = sys, .err = err };
	struct ht_sys_stat *st, init = { 0 };

	st = bpf_map_lookup_elem(&syscall_stats, &key);
	if (!st) {
		bpf_map_update_elem(&syscall_stats, &key, &init, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&syscall_stats, &key);
		if (!st)
			return;
	}
	__sync_fetch_and_add(&st->count, 1);
	__sync_fetch_and_add(&st->total_ns, lat);
	if (lat > st->max_ns)
		st->max_ns = lat;
	st->last_ts = ts;
}

/*
 * A call seccomp refuses never reaches sys_enter (seccomp runs first),
 * but sys_exit still fires with its -errno: such calls are reported with
 * enter_ts 0.
 */
static __always_inline int sys_exit(struct trace_event_raw_sys_exit *ctx,
				    __u32 sys)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct sys_enter_rec *rec;
	struct ht_event *e;
	long ret;

	if (!is_traced(id >> 32))
		return 0;
	e = event_new(HT_EV_SYSCALL);
	if (!e) {
		bpf_map_delete_elem(&sys_start, &tid);
		return 0;
	}
	ret = ctx->ret;
	e->sys.sys = sys;
	e->sys.ret = ret;
	e->sys.err = ret < 0 && ret >= -4095 ? (__s32)-ret : 0;
	e->sys.enter_ts = 0;
	for (int i = 0; i < HT_SYS_ARGS; i++)
		e->sys.args[i] = 0;
	rec = bpf_map_lookup_elem(&sys_start, &tid);
	if (rec) {
		e->sys.enter_ts = rec->ts;
		for (int i = 0; i < HT_SYS_ARGS; i++)
			e->sys.args[i] = rec->args[i];
		bpf_map_delete_elem(&sys_start, &tid);
	}
	sys_account(e->pid, sys, e->sys.err, e->ts,
		    e->sys.enter_ts ? e->ts - e->sys.enter_ts : 0);
	event_submit(e);
	return 0;
}

#define SYSCALL_HOOKS(name, nr, nargs)					\
	SEC("tracepoint/syscalls/sys_enter_" #name)			\
	int enter_##name(struct trace_event_raw_sys_enter *ctx)	\
	{								\
		return sys_enter(ctx, nargs);				\
	}								\
	SEC("tracepoint/syscalls/sys_exit_" #name)			\
	int exit_##name(struct trace_event_raw_sys_exit *ctx)		\
	{								\
		return sys_exit(ctx, nr);				\
	}

SYSCALL_HOOKS(pidfd_open, HT_SYS_PIDFD_OPEN, 2)
SYSCALL_HOOKS(pidfd_getfd, HT_SYS_PIDFD_GETFD, 3)
SYSCALL_HOOKS(kcmp, HT_SYS_KCMP, 5)

/* ---- process lifecycle ---- */

static __always_inline void proc_event(__u32 kind, __u32 pid, __u32 tid,
				       __u32 other)
{
	struct ht_event *e = event_new(HT_EV_PROC);

	if (!e)
		return;
	/* fork runs in the parent, but name the process it concerns. */
	e->pid = pid;
	e->tid = tid;
	e->proc.kind = kind;
	e->proc.other = other;
	e->proc.exit_code = 0;
	e->proc.pad = 0;
	e->proc.filename[0] = '\0';
	event_submit(e);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid;
	__u32 ctgid = child->tgid;
	__u32 ctid = child->pid;

	if (!in_set(ptgid))
		return 0;
	if (ctgid == ptgid) {
		proc_event(HT_PROC_THREAD, ptgid, parent->pid, ctid);
		return 0;
	}
	if (!follow_children)
		return 0;
	adopt(ctgid);
	proc_event(HT_PROC_FORK, ptgid, parent->pid, ctgid);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	__u32 tgid = p->tgid;
	struct ht_event *e;

	if (!in_set(tgid))
		return 0;
	e = event_new(HT_EV_PROC);
	if (!e)
		return 0;
	e->proc.kind = HT_PROC_EXEC;
	e->proc.other = old_pid;
	e->proc.exit_code = 0;
	e->proc.pad = 0;
	bpf_probe_read_kernel_str(e->proc.filename, sizeof(e->proc.filename),
				  bprm->filename);
	event_submit(e);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;
	struct ht_event *e;

	if (!in_set(tgid))
		return 0;
	/* Only the end of the process: signal->live reached 0. */
	if (p->signal->live.counter != 0)
		return 0;
	e = event_new(HT_EV_PROC);
	if (e) {
		e->proc.kind = HT_PROC_EXIT;
		e->proc.other = 0;
		e->proc.exit_code = p->exit_code;
		e->proc.pad = 0;
		e->proc.filename[0] = '\0';
		event_submit(e);
	}
	/* The pid may be reused by anyone: forget it. */
	bpf_map_delete_elem(&traced, &tgid);
	return 0;
}

/* ---- run-queue latency of traced threads ---- */

static __always_inline void runq_enter(struct task_struct *p, __u32 preempted)
{
	struct runq_rec rec = { .ts = bpf_ktime_get_ns(), .preempted = preempted };
	__u32 tid = p->pid;

	if (!in_set(p->tgid))
		return;
	bpf_map_update_elem(&runq_since, &tid, &rec, BPF_ANY);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(handle_wakeup, struct task_struct *p)
{
	runq_enter(p, 0);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(handle_wakeup_new, struct task_struct *p)
{
	runq_enter(p, 0);
	return 0;
}

static __always_inline void sched_account(struct task_struct *next,
					  struct task_struct *prev,
					  __u32 tid, __u64 now, __u64 wait)
{
	struct ht_sched_stat *st, init = { 0 };

	st = bpf_map_lookup_elem(&sched_stats, &tid);
	if (!st) {
		init.pid = next->tgid;
		init.tid = tid;
		BPF_CORE_READ_STR_INTO(&init.comm, next, comm);
		bpf_map_update_elem(&sched_stats, &tid, &init, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&sched_stats, &tid);
		if (!st)
			return;
	}
	/* The name it has now: exec and prctl rename threads. */
	BPF_CORE_READ_STR_INTO(&st->comm, next, comm);
	st->waits++;
	st->total_ns += wait;
	if (wait > st->max_ns) {
		st->max_ns = wait;
		st->max_ts = now;
		st->max_prev_pid = prev->tgid;
		BPF_CORE_READ_STR_INTO(&st->max_prev_comm, prev, comm);
	}
}

SEC("tp_btf/sched_switch")
int BPF_PROG(handle_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	__u32 tid = next->pid;
	struct runq_rec *rec;
	struct ht_event *e;
	__u64 now, wait;
	__u32 preempted;

	/* Still runnable while switched out: it waits on the run queue. */
	if (prev_state == 0 /* TASK_RUNNING */)
		runq_enter(prev, 1);
	rec = bpf_map_lookup_elem(&runq_since, &tid);
	if (!rec)
		return 0;
	now = bpf_ktime_get_ns();
	wait = now - rec->ts;
	preempted = rec->preempted;
	bpf_map_delete_elem(&runq_since, &tid);
	sched_account(next, prev, tid, now, wait);
	if (wait < sched_min_ns)
		return 0;
	e = event_new(HT_EV_SCHED);
	if (!e)
		return 0;
	e->ts = now;
	e->pid = next->tgid;
	e->tid = tid;
	BPF_CORE_READ_STR_INTO(&e->comm, next, comm);
	e->sched.wait_ns = wait;
	e->sched.prev_pid = prev->tgid;
	e->sched.prev_tid = prev->pid;
	BPF_CORE_READ_STR_INTO(&e->sched.prev_comm, prev, comm);
	e->sched.preempted = preempted;
	e->sched.pad = 0;
	event_submit(e);
	return 0;
}

/* ---- the wire: frames on the chosen TAP ---- */

/*
 * QEMU announces a migrated guest itself (RARP, 50 ms after resume, then
 * every 100 ms): those frames are not the guest's and would split its
 * silence in two.  --ethertype narrows further (the guest's ARP may come
 * before its data resumes).
 */
static __always_inline bool counted(__u16 proto)
{
	bool any = true;

	if (proto == ETH_P_RARP)
		return false;
	for (int i = 0; i < HT_MAX_ETHERTYPES; i++) {
		if (!ethertypes[i])
			break;
		any = false;
		if (ethertypes[i] == proto)
			return true;
	}
	return any;
}

static __always_inline void wire_packet(struct net_device *dev,
					struct sk_buff *skb, __u32 dir)
{
	struct ht_wire_stat *w;
	struct ht_event *e;
	__u64 now, prev;
	__u32 ifindex;
	__u16 proto;

	if (!dev)
		return;
	ifindex = dev->ifindex;
	if (tap_ifindex) {
		if (ifindex != tap_ifindex)
			return;
		/* ifindex is per namespace: the same number may be another
		 * device. */
		if (tap_netns_ino && dev->nd_net.net->ns.inum != tap_netns_ino)
			return;
	} else {
		__u64 name[2];
		__u32 ns;

		if (!tap_name[0] ||
		    bpf_probe_read_kernel(name, sizeof(name), dev->name) < 0 ||
		    name[0] != tap_name[0] || name[1] != tap_name[1])
			return;
		/*
		 * Other namespaces may have a TAP of that name (another VM):
		 * lock on the one a traced process writes to.  A write()
		 * to a TAP fd reaches netif_receive_skb in the writer's
		 * context, so current is the guest's QEMU.
		 */
		ns = dev->nd_net.net->ns.inum;
		if (!tap_netns_seen) {
			if (dir != HT_WIRE_FROM_GUEST ||
			    !is_traced(bpf_get_current_pid_tgid() >> 32))
				return;
			__sync_val_compare_and_swap(&tap_netns_seen, 0, ns);
		}
		if (ns != tap_netns_seen)
			return;
	}
	w = bpf_map_lookup_elem(&wire_stats, &dir);
	proto = bpf_ntohs(skb->protocol);
	if (!counted(proto)) {
		if (w)
			__sync_fetch_and_add(&w->skipped, 1);
		return;
	}
	now = bpf_ktime_get_ns();
	if (w) {
		/* Frames of one direction come from one writer, mostly:
		 * a rare race here only blurs the in-kernel summary, the
		 * loader recomputes gaps from the events. */
		prev = w->last_ts;
		w->dir = dir;
		w->ifindex = ifindex;
		w->last_ts = now;
		__sync_fetch_and_add(&w->packets, 1);
		__sync_fetch_and_add(&w->bytes, skb->len);
		if (!w->first_ts)
			w->first_ts = now;
		if (prev && prev < now && now - prev > w->max_gap_ns) {
			w->max_gap_ns = now - prev;
			w->max_gap_end_ts = now;
		}
	}
	if (!packet_events)
		return;
	e = event_new(HT_EV_PACKET);
	if (!e)
		return;
	e->ts = now;
	e->pkt.dir = dir;
	e->pkt.len = skb->len;
	e->pkt.ifindex = ifindex;
	e->pkt.proto = proto;
	e->pkt.pad = 0;
	event_submit(e);
}

/* A write() to the TAP fd enters the stack here (one hook per frame:
 * netif_rx and GRO paths end up here too). */
SEC("tp_btf/netif_receive_skb")
int BPF_PROG(handle_netif_receive_skb, struct sk_buff *skb)
{
	wire_packet(skb->dev, skb, HT_WIRE_FROM_GUEST);
	return 0;
}

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(handle_start_xmit, struct sk_buff *skb, struct net_device *dev)
{
	wire_packet(dev, skb, HT_WIRE_TO_GUEST);
	return 0;
}

/*
 * The kernel wants a GPL-compatible license for bpf_probe_read_*_str;
 * LGPL-2.1 (section 3) lets this file be used under the GPL.
 */
char LICENSE[] SEC("license") = "GPL";
