// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The tracer's report as Chrome trace-event JSON, a report module of the
 * CLI beside tools/cmd-trace.c (the loader in bpf/ only returns the data),
 * which ui.perfetto.dev (and chrome://tracing) open: {"traceEvents": [...]}, times in microseconds
 * from the start of the trace, written with nanosecond precision.
 *
 *   tracks         one per process (pid) and thread (tid), named by "M"
 *                  metadata events; the wire is a process of its own
 *                  (HT_WIRE_PID) with one thread per direction
 *   "X" slices     libfdhandover phases (pull ⊃ pull_fd[i], verify[i],
 *                  commit), syscalls, the largest gap on the wire
 *   "i" instants   other probes, exec/exit/fork, every frame on the wire
 *   "b"/"e"        async slices: QEMU run/migration states, run-queue waits
 *   "C" counters   translate_block and wire frames per millisecond
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "fdh-shared.h"
#include "handover-trace.h"

/* Above PID_MAX_LIMIT (4M): never a real process. */
#define HT_WIRE_PID 4194400
#define HT_WIRE_TID(dir) (HT_WIRE_PID + 1 + (dir))

struct out {
	FILE *f;
	uint64_t t0;
	bool first;
	unsigned long async_id;
};

/* A string of at most max bytes: the CLI's one JSON quoter. */
static void put_str(FILE *f, const char *s, size_t max)
{
	fdh_json_quote(s, strnlen(s, max), fdh_put_file, f);
}

/* Microseconds with three decimals: exact, no float rounding. */
static void put_us(FILE *f, const char *key, uint64_t ns)
{
	fprintf(f, ",\"%s\":%" PRIu64 ".%03u", key, ns / 1000, (unsigned)(ns % 1000));
}

/* Start an event object: "{" name, ph, pid, tid, ts. */
static void begin(struct out *o, const char *name, char ph, int pid, int tid,
		  uint64_t ts)
{
	fputs(o->first ? "\n{" : ",\n{", o->f);
	o->first = false;
	fputs("\"name\":", o->f);
	put_str(o->f, name, 256);
	fprintf(o->f, ",\"ph\":\"%c\",\"pid\":%d,\"tid\":%d", ph, pid, tid);
	put_us(o->f, "ts", ts > o->t0 ? ts - o->t0 : 0);
}

static void meta(struct out *o, const char *what, int pid, int tid,
		 const char *name)
{
	fputs(o->first ? "\n{" : ",\n{", o->f);
	o->first = false;
	fprintf(o->f, "\"name\":\"%s\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
		"\"args\":{\"name\":", what, pid, tid);
	put_str(o->f, name, 256);
	fputs("}}", o->f);
}

static void write_tracks(struct out *o, const struct ht_report *r)
{
	char name[128];

	for (size_t i = 0; i < r->n_procs; i++) {
		const struct ht_process *p = &r->procs[i];

		snprintf(name, sizeof(name), "%.16s %d", p->comm[0] ? p->comm : "?",
			 p->pid);
		meta(o, "process_name", p->pid, p->pid, name);
	}
	for (size_t i = 0; i < r->n_threads; i++) {
		const struct ht_thread *t = &r->threads[i];

		snprintf(name, sizeof(name), "%.16s %d", t->comm[0] ? t->comm : "?",
			 t->tid);
		meta(o, "thread_name", t->pid, t->tid, name);
	}
	if (!r->tap[0])
		return;
	snprintf(name, sizeof(name), "wire %s (ifindex %u)", r->tap, r->ifindex);
	meta(o, "process_name", HT_WIRE_PID, HT_WIRE_PID, name);
	for (int d = 0; d < HT_WIRE__MAX; d++)
		meta(o, "thread_name", HT_WIRE_PID, HT_WIRE_TID(d),
		     ht_wire_dir_name((enum ht_wire_dir)d));
}

static void write_phases(struct out *o, const struct ht_report *r)
{
	char name[HT_PROBE_NAME_LEN + 16];

	for (size_t i = 0; i < r->n_phases; i++) {
		const struct ht_phase_row *p = &r->phases[i];
		bool state = p->phase == HT_PHASE_QEMU || p->phase == HT_PHASE_USER;

		if (p->phase == HT_PHASE_NONE)
			continue;	/* exec/exit: instants of their own below */

		if (p->index >= 0)
			snprintf(name, sizeof(name), "%s[%d]", p->name, p->index);
		else
			snprintf(name, sizeof(name), "%s", p->name);
		if (state) {
			/* Collapsed probes are drawn from their events; a
			 * state (runstate, vm, migration) spans to the next. */
			if (!p->state)
				continue;
			begin(o, name, 'b', p->pid, p->tid, p->start_ns);
			fprintf(o->f, ",\"cat\":\"qemu\",\"id\":%lu}", ++o->async_id);
			begin(o, name, 'e', p->pid, p->tid, p->end_ns);
			fprintf(o->f, ",\"cat\":\"qemu\",\"id\":%lu}", o->async_id);
			continue;
		}
		if (p->end_ns > p->start_ns) {
			begin(o, name, 'X', p->pid, p->tid, p->start_ns);
			put_us(o->f, "dur", p->end_ns - p->start_ns);
		} else {
			begin(o, name, 'i', p->pid, p->tid, p->start_ns);
			fputs(",\"s\":\"t\"", o->f);
		}
		fputs(",\"cat\":\"fdhandover\",\"args\":{\"detail\":", o->f);
		put_str(o->f, p->detail, sizeof(p->detail));
		fputs("}}", o->f);
	}
}

static void write_syscalls(struct out *o, const struct ht_report *r)
{
	for (size_t i = 0; i < r->n_syscalls; i++) {
		const struct ht_syscall_row *s = &r->syscalls[i];
		const char *err = ht_errno_name(s->err);

		if (s->enter_ns) {
			begin(o, ht_syscall_name(s->sys), 'X', s->pid, s->tid, s->enter_ns);
			put_us(o->f, "dur", s->exit_ns - s->enter_ns);
		} else {
			/* Refused before sys_enter (seccomp): no duration. */
			begin(o, ht_syscall_name(s->sys), 'i', s->pid, s->tid, s->exit_ns);
			fputs(",\"s\":\"t\"", o->f);
		}
		fprintf(o->f, ",\"cat\":\"syscall\",\"args\":{\"ret\":%" PRId64, s->ret);
		if (err) {
			fputs(",\"errno\":", o->f);
			put_str(o->f, err, 32);
		}
		fprintf(o->f, ",\"arg0\":%" PRIu64 ",\"arg1\":%" PRIu64 "}}",
			s->args[0], s->args[1]);
	}
}

static void write_events(struct out *o, const struct ht_report *r)
{
	char name[HT_PROBE_NAME_LEN + 96];

	for (size_t i = 0; i < r->n_events; i++) {
		const struct ht_event *e = &r->events[i];

		switch (e->type) {
		case HT_EV_USDT:
			if (e->usdt.phase != HT_PHASE_QEMU && e->usdt.phase != HT_PHASE_USER)
				break;
			begin(o, e->usdt.probe < r->n_probe_names ?
			      r->probe_names[e->usdt.probe] : "probe",
			      'i', (int)e->pid, (int)e->tid, e->ts);
			fprintf(o->f, ",\"s\":\"t\",\"cat\":\"usdt\",\"args\":{\"arg0\":%lld,"
				"\"arg1\":%lld,\"arg2\":%lld", (long long)e->usdt.args[0],
				(long long)e->usdt.args[1], (long long)e->usdt.args[2]);
			if (e->usdt.str[0]) {
				fputs(",\"str\":", o->f);
				put_str(o->f, e->usdt.str, sizeof(e->usdt.str));
			}
			fputs("}}", o->f);
			break;
		case HT_EV_PROC:
			if (e->proc.kind == HT_PROC_FORK)
				snprintf(name, sizeof(name), "fork %u", e->proc.other);
			else if (e->proc.kind == HT_PROC_EXEC)
				snprintf(name, sizeof(name), "exec %.64s", e->proc.filename);
			else if (e->proc.kind == HT_PROC_EXIT)
				snprintf(name, sizeof(name), "exit status 0x%x",
					 (unsigned)e->proc.exit_code);
			else
				break;
			begin(o, name, 'i', (int)e->pid, (int)e->tid, e->ts);
			fputs(",\"s\":\"p\",\"cat\":\"process\"}", o->f);
			break;
		case HT_EV_SCHED:
			begin(o, "runq wait", 'b', (int)e->pid, (int)e->tid,
			      e->ts - e->sched.wait_ns);
			fprintf(o->f, ",\"cat\":\"sched\",\"id\":%lu,\"args\":{\"tid\":%u,"
				"\"ran_before\":", ++o->async_id, e->tid);
			snprintf(name, sizeof(name), "%.16s %u", e->sched.prev_comm,
				 e->sched.prev_pid);
			put_str(o->f, name, sizeof(name));
			fprintf(o->f, ",\"preempted\":%u}}", e->sched.preempted);
			begin(o, "runq wait", 'e', (int)e->pid, (int)e->tid, e->ts);
			fprintf(o->f, ",\"cat\":\"sched\",\"id\":%lu}", o->async_id);
			break;
		default:
			break;
		}
	}
}

static void write_tb(struct out *o, const struct ht_report *r)
{
	for (size_t i = 0; i < r->n_tb; i++) {
		const struct ht_tb_row *t = &r->tb[i];
		bool last = i + 1 == r->n_tb || r->tb[i + 1].pid != t->pid;

		begin(o, "translate_block/ms", 'C', t->pid, t->pid, t->ms * 1000000);
		fprintf(o->f, ",\"args\":{\"blocks\":%" PRIu64 "}}", t->count);
		/* A counter holds its value: drop to 0 over idle milliseconds. */
		if (last || r->tb[i + 1].ms != t->ms + 1) {
			begin(o, "translate_block/ms", 'C', t->pid, t->pid,
			      (t->ms + 1) * 1000000);
			fputs(",\"args\":{\"blocks\":0}}", o->f);
		}
	}
}

/* Frames per millisecond and direction, a counter track of the wire:
 * the gap is where both fall to zero. */
static void write_wire_rate(struct out *o, const struct ht_report *r)
{
	uint64_t count[HT_WIRE__MAX] = { 0 }, ms;
	size_t i = 0;

	if (!r->n_packets)
		return;
	ms = r->packets[0].ts / 1000000;
	while (i < r->n_packets) {
		while (i < r->n_packets && r->packets[i].ts / 1000000 == ms) {
			if (r->packets[i].dir < HT_WIRE__MAX)
				count[r->packets[i].dir]++;
			i++;
		}
		begin(o, "frames/ms", 'C', HT_WIRE_PID, HT_WIRE_PID, ms * 1000000);
		fprintf(o->f, ",\"args\":{\"%s\":%" PRIu64 ",\"%s\":%" PRIu64 "}}",
			ht_wire_dir_name(HT_WIRE_FROM_GUEST), count[HT_WIRE_FROM_GUEST],
			ht_wire_dir_name(HT_WIRE_TO_GUEST), count[HT_WIRE_TO_GUEST]);
		count[HT_WIRE_FROM_GUEST] = count[HT_WIRE_TO_GUEST] = 0;
		ms++;
	}
	/* Back to zero after the last frame. */
	begin(o, "frames/ms", 'C', HT_WIRE_PID, HT_WIRE_PID, ms * 1000000);
	fprintf(o->f, ",\"args\":{\"%s\":0,\"%s\":0}}",
		ht_wire_dir_name(HT_WIRE_FROM_GUEST), ht_wire_dir_name(HT_WIRE_TO_GUEST));
}

static void write_wire(struct out *o, const struct ht_report *r)
{
	char name[64];

	if (!r->tap[0])
		return;
	write_wire_rate(o, r);
	if (r->switch_start_ns) {
		begin(o, "switch-over", 'X', HT_WIRE_PID, HT_WIRE_PID, r->switch_start_ns);
		put_us(o->f, "dur", r->switch_end_ns - r->switch_start_ns);
		fputs(",\"cat\":\"wire\"}", o->f);
	}
	for (size_t i = 0; i < r->n_packets; i++) {
		const struct ht_packet *p = &r->packets[i];

		begin(o, "frame", 'i', HT_WIRE_PID, HT_WIRE_TID(p->dir), p->ts);
		fprintf(o->f, ",\"s\":\"t\",\"cat\":\"wire\",\"args\":{\"len\":%u,"
			"\"ethertype\":\"0x%04x\"}}", p->len, p->proto);
	}
	for (int d = 0; d < HT_WIRE__MAX; d++) {
		const struct ht_wire_row *w = &r->wire[d];

		if (!w->max_gap_ns)
			continue;
		snprintf(name, sizeof(name), "largest gap %" PRIu64 ".%03u ms",
			 w->max_gap_ns / 1000000, (unsigned)(w->max_gap_ns / 1000 % 1000));
		begin(o, name, 'X', HT_WIRE_PID, HT_WIRE_TID(d), w->gap_start_ns);
		put_us(o->f, "dur", w->max_gap_ns);
		fprintf(o->f, ",\"cat\":\"wire\",\"args\":{\"packets\":%" PRIu64 "}}",
			w->packets);
		/* Two intervals between frames: the same one, or disjoint. */
		if (!w->switch_gap_ns || w->switch_gap_start_ns == w->gap_start_ns)
			continue;
		snprintf(name, sizeof(name), "switch-over gap %" PRIu64 ".%03u ms",
			 w->switch_gap_ns / 1000000,
			 (unsigned)(w->switch_gap_ns / 1000 % 1000));
		begin(o, name, 'X', HT_WIRE_PID, HT_WIRE_TID(d), w->switch_gap_start_ns);
		put_us(o->f, "dur", w->switch_gap_ns);
		fputs(",\"cat\":\"wire\"}", o->f);
	}
}

int trace_write_perfetto(const struct ht_report *r, FILE *f)
{
	struct out o = { .f = f, .t0 = r->start_ns, .first = true };

	fputs("{\"displayTimeUnit\":\"ms\",\"otherData\":{\"tool\":\"fd-handover trace\","
	      "\"clock\":\"CLOCK_MONOTONIC\",", f);
	fprintf(f, "\"start_ns\":%" PRIu64 ",\"lost_events\":%" PRIu64 "},", r->start_ns,
		r->lost_events);
	fputs("\"traceEvents\":[", f);
	write_tracks(&o, r);
	write_phases(&o, r);
	write_syscalls(&o, r);
	write_events(&o, r);
	write_tb(&o, r);
	write_wire(&o, r);
	fputs("\n]}\n", f);
	if (fflush(f) != 0 || ferror(f))
		return -EIO;
	return 0;
}
