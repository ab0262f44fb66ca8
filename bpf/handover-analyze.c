// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * From events to tables.  Everything here is plain computation over the
 * report; no BPF, no I/O.  How a phase row is delimited is documented at
 * struct ht_phase_row and in Documentation/tracing.md.
 */
#include "handover-analyze.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Append one zeroed element to a growing array; NULL when out of memory. */
static void *grow(void *pv, size_t *n, size_t *cap, size_t size)
{
	void **p = pv;

	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 16;
		void *v = realloc(*p, c * size);

		if (!v)
			return NULL;
		*p = v;
		*cap = c;
	}
	memset((char *)*p + *n * size, 0, size);
	return (char *)*p + (*n)++ * size;
}

/* ------------------------------------------------------------------ */
/* Names                                                              */

const char *ht_phase_name(enum ht_phase phase)
{
	static const char *const names[HT_PHASE__MAX] = {
		[HT_PHASE_NONE] = "none",
		[HT_PHASE_SOURCE_OPENED] = "source_opened",
		[HT_PHASE_PULL_BEGIN] = "pull_begin",
		[HT_PHASE_PULL_FD] = "pull_fd",
		[HT_PHASE_VERIFY] = "verify",
		[HT_PHASE_FALLBACK] = "fallback",
		[HT_PHASE_SERVE] = "serve",
		[HT_PHASE_MANIFEST_ENCODED] = "manifest_encoded",
		[HT_PHASE_MANIFEST_DECODED] = "manifest_decoded",
		[HT_PHASE_COMMIT] = "commit",
		[HT_PHASE_ROLLBACK] = "rollback",
		[HT_PHASE_QEMU] = "qemu",
		[HT_PHASE_USER] = "user",
	};

	return phase < HT_PHASE__MAX ? names[phase] : "unknown";
}

const char *ht_syscall_name(enum ht_syscall sys)
{
	switch (sys) {
	case HT_SYS_PIDFD_OPEN:
		return "pidfd_open";
	case HT_SYS_PIDFD_GETFD:
		return "pidfd_getfd";
	case HT_SYS_KCMP:
		return "kcmp";
	case HT_SYS__MAX:
		break;
	}
	return "unknown";
}

const char *ht_wire_dir_name(enum ht_wire_dir dir)
{
	return dir == HT_WIRE_FROM_GUEST ? "from-guest" :
	       dir == HT_WIRE_TO_GUEST ? "to-guest" : "unknown";
}

const char *ht_errno_name(int err)
{
	return err > 0 ? strerrorname_np(err) : NULL;
}

static const char *errstr(int err)
{
	const char *s = ht_errno_name(err);

	return s ? s : "error";
}

static const char *transport_name(long transport)
{
	/* enum fdh_transport */
	return transport == 1 ? "pidfd_getfd" : transport == 2 ? "scm_rights" : "none";
}

/* ------------------------------------------------------------------ */
/* Sorting: events come nearly in order (one ring, per-CPU skew only), */
/* so a stable insertion sort is linear in practice.                  */

_Static_assert(__builtin_offsetof(struct ht_event, ts) == 0 &&
	       __builtin_offsetof(struct ht_packet, ts) == 0,
	       "both are sorted by a leading u64 ts");

static uint64_t ts_at(const char *base, size_t i, size_t size)
{
	uint64_t ts;

	memcpy(&ts, base + i * size, sizeof(ts));
	return ts;
}

/* Stable by the leading ts; tmp holds one element. */
static void sort_by_ts(void *v, size_t n, size_t size, void *tmp)
{
	char *base = v;

	for (size_t i = 1; i < n; i++) {
		uint64_t ts = ts_at(base, i, size);
		size_t j = i;

		while (j > 0 && ts_at(base, j - 1, size) > ts)
			j--;
		if (j == i)
			continue;
		memcpy(tmp, base + i * size, size);
		memmove(base + (j + 1) * size, base + j * size, (i - j) * size);
		memcpy(base + j * size, tmp, size);
	}
}

/* ------------------------------------------------------------------ */
/* Processes and threads                                              */

struct builder {
	struct ht_report *r;
	size_t cap_procs, cap_threads, cap_phases, cap_pulls, cap_syscalls;
	struct tstate *ts;
	size_t n_ts, cap_ts;
	struct keyed *keyed;		/* QEMU state and collapsed rows */
	size_t n_keyed, cap_keyed;
};

static struct ht_process *process(struct builder *b, pid_t pid)
{
	struct ht_report *r = b->r;
	struct ht_process *p;

	for (size_t i = 0; i < r->n_procs; i++)
		if (r->procs[i].pid == pid)
			return &r->procs[i];
	p = grow(&r->procs, &r->n_procs, &b->cap_procs, sizeof(*p));
	if (p)
		p->pid = pid;
	return p;
}

static struct ht_thread *thread(struct builder *b, pid_t pid, pid_t tid)
{
	struct ht_report *r = b->r;
	struct ht_thread *t;

	for (size_t i = 0; i < r->n_threads; i++)
		if (r->threads[i].tid == tid)
			return &r->threads[i];
	t = grow(&r->threads, &r->n_threads, &b->cap_threads, sizeof(*t));
	if (t) {
		t->pid = pid;
		t->tid = tid;
	}
	return t;
}

static int see_task(struct builder *b, const struct ht_event *e)
{
	struct ht_process *p = process(b, (pid_t)e->pid);
	struct ht_thread *t = thread(b, (pid_t)e->pid, (pid_t)e->tid);

	if (!p || !t)
		return -ENOMEM;
	if (e->comm[0]) {
		memcpy(t->comm, e->comm, sizeof(t->comm));
		if (e->pid == e->tid)
			memcpy(p->comm, e->comm, sizeof(p->comm));
	}
	return 0;
}

static int see_proc_event(struct builder *b, const struct ht_event *e)
{
	struct ht_process *p, *child;
	struct ht_thread *t;

	switch (e->proc.kind) {
	case HT_PROC_FORK:
		child = process(b, (pid_t)e->proc.other);
		if (!child)
			return -ENOMEM;
		child->parent = (pid_t)e->pid;
		child->fork_ns = e->ts;
		if (!child->comm[0])
			memcpy(child->comm, e->comm, sizeof(child->comm));
		break;
	case HT_PROC_THREAD:
		t = thread(b, (pid_t)e->pid, (pid_t)e->proc.other);
		if (!t)
			return -ENOMEM;
		if (!t->comm[0])
			memcpy(t->comm, e->comm, sizeof(t->comm));
		break;
	case HT_PROC_EXEC:
		p = process(b, (pid_t)e->pid);
		if (!p)
			return -ENOMEM;
		p->exec_ns = e->ts;
		memcpy(p->exe, e->proc.filename, sizeof(p->exe));
		p->exe[sizeof(p->exe) - 1] = '\0';
		break;
	case HT_PROC_EXIT:
		p = process(b, (pid_t)e->pid);
		if (!p)
			return -ENOMEM;
		p->exit_ns = e->ts;
		p->exit_status = e->proc.exit_code;
		break;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Phases                                                             */

/* Per thread: where the current step began, the open pull. */
struct tstate {
	pid_t tid;
	uint64_t boundary;		/* end of the previous step */
	long pull_row;			/* phases[] of the open "pull", or -1 */
	pid_t source;
	size_t first_pull;		/* pulls[] of this pull session */
	long getfd_sys;			/* syscalls[] of the last pidfd_getfd */
	long open_sys;			/* syscalls[] of the last pidfd_open */
};

/* Rows looked up by (pid, probe): a QEMU state in progress, or a
 * collapsed probe. */
struct keyed {
	pid_t pid;
	uint32_t probe;
	bool state;
	size_t row;
};

static struct tstate *tstate(struct builder *b, pid_t tid)
{
	struct tstate *s;

	for (size_t i = 0; i < b->n_ts; i++)
		if (b->ts[i].tid == tid)
			return &b->ts[i];
	s = grow(&b->ts, &b->n_ts, &b->cap_ts, sizeof(*s));
	if (s) {
		s->tid = tid;
		s->pull_row = -1;
		s->getfd_sys = -1;
		s->open_sys = -1;
	}
	return s;
}

static struct ht_phase_row *new_row(struct builder *b, const struct ht_event *e,
				    const char *name, uint64_t start)
{
	struct ht_report *r = b->r;
	struct ht_phase_row *row;

	row = grow(&r->phases, &r->n_phases, &b->cap_phases, sizeof(*row));
	if (!row)
		return NULL;
	snprintf(row->name, sizeof(row->name), "%s", name);
	row->phase = e->usdt.phase;
	row->pid = (pid_t)e->pid;
	row->tid = (pid_t)e->tid;
	row->index = -1;
	row->count = 1;
	row->start_ns = start ? start : e->ts;
	row->end_ns = e->ts;
	return row;
}

/* A step that ends at this probe and began at the thread's boundary. */
static struct ht_phase_row *step_row(struct builder *b, struct tstate *s,
				     const struct ht_event *e)
{
	struct ht_phase_row *row;

	row = new_row(b, e, ht_phase_name(e->usdt.phase), s->boundary);
	if (!row)
		return NULL;
	row->depth = s->pull_row >= 0;
	s->boundary = e->ts;
	return row;
}

static struct ht_pull_row *pull_of(struct builder *b, struct tstate *s, long index)
{
	struct ht_report *r = b->r;

	for (size_t i = r->n_pulls; i > s->first_pull; i--)
		if (r->pulls[i - 1].tid == s->tid && r->pulls[i - 1].index == index)
			return &r->pulls[i - 1];
	return NULL;
}

static struct ht_pull_row *new_pull(struct builder *b, struct tstate *s,
				    const struct ht_event *e, long index)
{
	struct ht_report *r = b->r;
	struct ht_pull_row *p;

	p = grow(&r->pulls, &r->n_pulls, &b->cap_pulls, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = (pid_t)e->pid;
	p->tid = (pid_t)e->tid;
	p->source_pid = s->source;
	p->index = (int)index;
	p->remote_fd = -1;
	p->local_fd = -1;
	p->ts_ns = e->ts;
	return p;
}

static void end_pull(struct builder *b, struct tstate *s, const struct ht_event *e,
		     const char *outcome)
{
	struct ht_phase_row *pull;
	size_t len;

	if (s->pull_row < 0)
		return;
	pull = &b->r->phases[s->pull_row];
	pull->end_ns = e->ts;
	len = strlen(pull->detail);
	snprintf(pull->detail + len, sizeof(pull->detail) - len, ", %s", outcome);
	s->pull_row = -1;
	s->boundary = 0;
}

static int fdh_phase(struct builder *b, const struct ht_event *e)
{
	const __s64 *a = e->usdt.args;
	struct ht_report *r = b->r;
	struct tstate *s = tstate(b, (pid_t)e->tid);
	struct ht_phase_row *row = NULL;
	struct ht_pull_row *p;
	char outcome[64];

	if (!s)
		return -ENOMEM;
	switch ((enum ht_phase)e->usdt.phase) {
	case HT_PHASE_SOURCE_OPENED: {
		uint64_t start = 0;

		/* It began with the pidfd_open that made this pidfd. */
		if (s->open_sys >= 0 && r->syscalls[s->open_sys].ret == a[1])
			start = r->syscalls[s->open_sys].enter_ns;
		row = new_row(b, e, "source_opened", start);
		if (row)
			snprintf(row->detail, sizeof(row->detail),
				 "source %lld, pidfd %lld, sockfd %lld",
				 (long long)a[0], (long long)a[1], (long long)a[2]);
		s->open_sys = -1;
		break;
	}
	case HT_PHASE_PULL_BEGIN:
		row = new_row(b, e, "pull", 0);
		if (!row)
			break;
		snprintf(row->detail, sizeof(row->detail), "source %lld, %lld fds",
			 (long long)a[0], (long long)a[1]);
		s->pull_row = (long)(row - r->phases);
		s->source = (pid_t)a[0];
		s->first_pull = r->n_pulls;
		s->boundary = e->ts;
		break;
	case HT_PHASE_PULL_FD:
		row = step_row(b, s, e);
		if (!row)
			break;
		row->index = (int)a[0];
		if (a[3])
			snprintf(row->detail, sizeof(row->detail), "fd %lld: %s",
				 (long long)a[1], errstr((int)-a[3]));
		else
			snprintf(row->detail, sizeof(row->detail), "fd %lld -> %lld",
				 (long long)a[1], (long long)a[2]);
		p = new_pull(b, s, e, a[0]);
		if (!p)
			return -ENOMEM;
		p->remote_fd = (int)a[1];
		p->local_fd = (int)a[2];
		p->err = (int)-a[3];
		if (s->getfd_sys >= 0) {
			const struct ht_syscall_row *sc = &r->syscalls[s->getfd_sys];

			if (sc->enter_ns)
				p->getfd_ns = sc->exit_ns - sc->enter_ns;
		}
		s->getfd_sys = -1;
		break;
	case HT_PHASE_FALLBACK:
		row = step_row(b, s, e);
		if (row)
			snprintf(row->detail, sizeof(row->detail),
				 "pidfd_getfd refused (%s): scm_rights from %lld",
				 errstr((int)-a[1]), (long long)a[0]);
		break;
	case HT_PHASE_VERIFY:
		row = step_row(b, s, e);
		if (!row)
			break;
		row->index = (int)a[0];
		if (a[1])
			snprintf(row->detail, sizeof(row->detail), "failed: %s",
				 errstr((int)-a[1]));
		else
			snprintf(row->detail, sizeof(row->detail), "ok%s",
				 a[2] ? ", kcmp" : ", no kcmp");
		p = pull_of(b, s, a[0]);
		if (!p)	/* pulled over SCM_RIGHTS: no pull_fd probe */
			p = new_pull(b, s, e, a[0]);
		if (!p)
			return -ENOMEM;
		p->verified = true;
		p->verify_err = (int)-a[1];
		p->kcmp_ok = a[2] != 0;
		break;
	case HT_PHASE_COMMIT:
		row = step_row(b, s, e);
		if (!row)
			break;
		snprintf(row->detail, sizeof(row->detail), "%lld fds from %lld over %s",
			 (long long)a[1], (long long)a[0], transport_name(a[2]));
		snprintf(outcome, sizeof(outcome), "committed over %s",
			 transport_name(a[2]));
		end_pull(b, s, e, outcome);
		break;
	case HT_PHASE_ROLLBACK:
		row = step_row(b, s, e);
		if (!row)
			break;
		snprintf(row->detail, sizeof(row->detail), "entry %lld: %s",
			 (long long)a[0], errstr((int)-a[1]));
		snprintf(outcome, sizeof(outcome), "rolled back (%s)",
			 errstr((int)-a[1]));
		end_pull(b, s, e, outcome);
		break;
	case HT_PHASE_SERVE:
		row = new_row(b, e, "serve", 0);
		if (row && a[1] < 0)
			snprintf(row->detail, sizeof(row->detail), "%lld fds requested: %s",
				 (long long)a[0], errstr((int)-a[1]));
		else if (row)
			snprintf(row->detail, sizeof(row->detail), "%lld fds sent",
				 (long long)a[0]);
		break;
	case HT_PHASE_MANIFEST_ENCODED:
		row = new_row(b, e, "manifest_encoded", 0);
		if (row)
			snprintf(row->detail, sizeof(row->detail), "%lld entries, %lld bytes",
				 (long long)a[0], (long long)a[1]);
		break;
	case HT_PHASE_MANIFEST_DECODED:
		row = new_row(b, e, "manifest_decoded", 0);
		if (row)
			snprintf(row->detail, sizeof(row->detail), "%lld bytes%s%s",
				 (long long)a[0], a[1] ? ": " : ", valid",
				 a[1] ? errstr((int)-a[1]) : "");
		break;
	default:
		return 0;
	}
	return row ? 0 : -ENOMEM;
}

static struct keyed *keyed(struct builder *b, pid_t pid, uint32_t probe, bool state)
{
	for (size_t i = 0; i < b->n_keyed; i++)
		if (b->keyed[i].pid == pid && b->keyed[i].probe == probe &&
		    b->keyed[i].state == state)
			return &b->keyed[i];
	return NULL;
}

static int add_keyed(struct builder *b, const struct ht_event *e, bool state,
		     const struct ht_phase_row *row)
{
	struct keyed *k = grow(&b->keyed, &b->n_keyed, &b->cap_keyed, sizeof(*k));

	if (!k)
		return -ENOMEM;
	k->pid = (pid_t)e->pid;
	k->probe = e->usdt.probe;
	k->state = state;
	k->row = (size_t)(row - b->r->phases);
	return 0;
}

static const char *probe_short(const struct ht_report *r, uint32_t probe)
{
	const char *label, *colon;

	if (probe >= r->n_probe_names)
		return "?";
	label = r->probe_names[probe];
	colon = strchr(label, ':');
	return colon ? colon + 1 : label;
}

/* "runstate paused", "vm running", "migration active"; false if the
 * probe opens no state. */
static bool state_label(const char *probe, const struct ht_event *e,
			char *label, size_t size)
{
	const char *str = e->usdt.str[0] ? e->usdt.str : "?";

	if (strcmp(probe, "runstate_set") == 0)
		snprintf(label, size, "runstate %.32s", str);
	else if (strcmp(probe, "migrate_set_state") == 0)
		snprintf(label, size, "migration %.32s", str);
	else if (strcmp(probe, "vm_state_notify") == 0 && e->usdt.args[0])
		snprintf(label, size, "vm running");
	else if (strcmp(probe, "vm_state_notify") == 0)
		snprintf(label, size, "vm stopped %.32s", str);
	else
		return false;
	return true;
}

/*
 * The steps of QEMU's downtime, a row per hit: vmstate_downtime_checkpoint
 * is an instant ("ckpt src-vm-stopped"); vmstate_downtime_save/_load fire
 * after one device's section with its duration in us (the 4th argument),
 * so the row starts that long before the probe.  The fd_handover_*
 * events of the patch series are a row per hit too, with their arguments.
 */
static int downtime_row(struct builder *b, const struct ht_event *e, const char *name)
{
	char label[HT_PROBE_NAME_LEN];
	const char *str = e->usdt.str[0] ? e->usdt.str : "?";
	uint64_t us = 0;
	struct ht_phase_row *row;

	if (strcmp(name, "vmstate_downtime_checkpoint") == 0) {
		snprintf(label, sizeof(label), "ckpt %.40s", str);
	} else if (strcmp(name, "vmstate_downtime_save") == 0 ||
		   strcmp(name, "vmstate_downtime_load") == 0) {
		snprintf(label, sizeof(label), "%s %.40s", name[17] == 's' ? "save" : "load", str);
		if (e->usdt.nargs >= 4 && e->usdt.args[3] > 0)
			us = (uint64_t)e->usdt.args[3];
	} else if (strncmp(name, "fd_handover_", 12) == 0) {
		/* the patch series' own steps: few, and each one matters */
		row = new_row(b, e, name, 0);
		if (!row)
			return -ENOMEM;
		snprintf(row->detail, sizeof(row->detail), "%lld %lld %lld",
			 (long long)e->usdt.args[0], (long long)e->usdt.args[1],
			 (long long)e->usdt.args[2]);
		return 0;
	} else {
		return 1;
	}
	row = new_row(b, e, label, us && us * 1000 < e->ts ? e->ts - us * 1000 : 0);
	return row ? 0 : -ENOMEM;
}

/*
 * runstate_set, vm_state_notify and migrate_set_state open a state that
 * lasts until the next one of that probe in the same process; every other
 * probe is one collapsed row.
 */
static int other_phase(struct builder *b, const struct ht_event *e)
{
	struct ht_report *r = b->r;
	const char *name = probe_short(r, e->usdt.probe);
	bool runstate = strcmp(name, "runstate_set") == 0;
	struct ht_phase_row *row;
	struct keyed *k;
	char label[HT_PROBE_NAME_LEN];
	int d = downtime_row(b, e, name);

	if (d <= 0)
		return d;
	if (state_label(name, e, label, sizeof(label))) {
		k = keyed(b, (pid_t)e->pid, e->usdt.probe, true);
		if (k)
			r->phases[k->row].end_ns = e->ts;
		row = new_row(b, e, label, 0);
		if (!row)
			return -ENOMEM;
		row->state = true;
		row->end_ns = 0;	/* open until the next state */
		if (runstate)
			snprintf(row->detail, sizeof(row->detail), "state %lld -> %lld",
				 (long long)e->usdt.args[0], (long long)e->usdt.args[2]);
		if (k) {
			k->row = (size_t)(row - r->phases);
			return 0;
		}
		return add_keyed(b, e, true, row);
	}
	k = keyed(b, (pid_t)e->pid, e->usdt.probe, false);
	if (k) {
		row = &r->phases[k->row];
		row->count++;
		row->end_ns = e->ts;
		return 0;
	}
	snprintf(label, sizeof(label), "%s", r->probe_names && e->usdt.probe < r->n_probe_names ?
		 r->probe_names[e->usdt.probe] : "?");
	row = new_row(b, e, label, 0);
	if (!row)
		return -ENOMEM;
	if (e->usdt.str[0])
		snprintf(row->detail, sizeof(row->detail), "%.32s", e->usdt.str);
	else if (e->usdt.nargs)
		snprintf(row->detail, sizeof(row->detail), "first: %lld %lld %lld",
			 (long long)e->usdt.args[0], (long long)e->usdt.args[1],
			 (long long)e->usdt.args[2]);
	return add_keyed(b, e, false, row);
}

/* exec and exit are phases of an upgrade too: rows of their own. */
static int lifecycle_row(struct builder *b, const struct ht_event *e)
{
	struct ht_phase_row *row;
	int st = e->proc.exit_code;

	if (e->proc.kind != HT_PROC_EXEC && e->proc.kind != HT_PROC_EXIT)
		return 0;
	row = new_row(b, e, e->proc.kind == HT_PROC_EXEC ? "exec" : "exit", 0);
	if (!row)
		return -ENOMEM;
	row->phase = HT_PHASE_NONE;
	if (e->proc.kind == HT_PROC_EXEC)
		snprintf(row->detail, sizeof(row->detail), "%.64s", e->proc.filename);
	else if (st & 0x7f)
		snprintf(row->detail, sizeof(row->detail), "%.16s, signal %d", e->comm,
			 st & 0x7f);
	else
		snprintf(row->detail, sizeof(row->detail), "%.16s, status %d", e->comm,
			 (st >> 8) & 0xff);
	return 0;
}

static int see_syscall(struct builder *b, const struct ht_event *e)
{
	struct ht_report *r = b->r;
	struct ht_syscall_row *sc;
	struct tstate *s;

	sc = grow(&r->syscalls, &r->n_syscalls, &b->cap_syscalls, sizeof(*sc));
	s = tstate(b, (pid_t)e->tid);
	if (!sc || !s)
		return -ENOMEM;
	sc->pid = (pid_t)e->pid;
	sc->tid = (pid_t)e->tid;
	memcpy(sc->comm, e->comm, sizeof(sc->comm));
	sc->sys = e->sys.sys;
	sc->enter_ns = e->sys.enter_ts;
	sc->exit_ns = e->ts;
	sc->ret = e->sys.ret;
	sc->err = e->sys.err;
	memcpy(sc->args, e->sys.args, sizeof(sc->args));
	if (e->sys.sys == HT_SYS_PIDFD_GETFD)
		s->getfd_sys = (long)(r->n_syscalls - 1);
	else if (e->sys.sys == HT_SYS_PIDFD_OPEN)
		s->open_sys = (long)(r->n_syscalls - 1);
	return 0;
}

/* Open states and pulls end where the trace ends. */
static void close_open_rows(struct builder *b)
{
	struct ht_report *r = b->r;

	for (size_t i = 0; i < r->n_phases; i++)
		if (!r->phases[i].end_ns)
			r->phases[i].end_ns = r->end_ns > r->phases[i].start_ns ?
					      r->end_ns : r->phases[i].start_ns;
	for (size_t i = 0; i < b->n_ts; i++) {
		struct tstate *s = &b->ts[i];
		struct ht_phase_row *pull;
		size_t len;

		if (s->pull_row < 0)
			continue;
		pull = &r->phases[s->pull_row];
		if (s->boundary > pull->end_ns)
			pull->end_ns = s->boundary;
		len = strlen(pull->detail);
		snprintf(pull->detail + len, sizeof(pull->detail) - len,
			 ", no commit seen");
	}
}

/* By start; a "pull" before the steps that share its start. */
static void sort_phases(struct ht_phase_row *v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct ht_phase_row row = v[i];
		size_t j = i;

		while (j > 0 && (v[j - 1].start_ns > row.start_ns ||
				 (v[j - 1].start_ns == row.start_ns &&
				  v[j - 1].depth > row.depth))) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = row;
	}
}

/* ------------------------------------------------------------------ */
/* Wire                                                               */

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* See struct ht_report: where the switch-over begins and ends. */
static void find_switch(struct ht_report *r)
{
	const struct ht_phase_row *pull = NULL;

	for (size_t i = 0; i < r->n_phases; i++) {
		const struct ht_phase_row *p = &r->phases[i];
		bool stop = (p->state && (starts_with(p->name, "vm stopped") ||
					  strcmp(p->name, "runstate paused") == 0 ||
					  strcmp(p->name, "runstate finish-migrate") == 0)) ||
			    (p->phase == HT_PHASE_PULL_BEGIN && strcmp(p->name, "pull") == 0);

		if (stop && (!r->switch_start_ns || p->start_ns < r->switch_start_ns)) {
			r->switch_start_ns = p->start_ns;
			pull = strcmp(p->name, "pull") == 0 ? p : NULL;
		}
	}
	if (!r->switch_start_ns)
		return;
	r->switch_end_ns = pull ? pull->end_ns : r->switch_start_ns;
	for (size_t i = 0; i < r->n_phases; i++) {
		const struct ht_phase_row *p = &r->phases[i];

		/* Sorted by start: the first resume after the stop. */
		if (p->state && p->start_ns >= r->switch_start_ns &&
		    (strcmp(p->name, "vm running") == 0 ||
		     strcmp(p->name, "runstate running") == 0)) {
			r->switch_end_ns = p->start_ns;
			break;
		}
	}
}

/* From every frame, when none was lost: the in-kernel summary may race. */
static void wire_exact(struct ht_report *r)
{
	for (int d = 0; d < HT_WIRE__MAX; d++) {
		struct ht_wire_row w = { .dir = (enum ht_wire_dir)d, .exact = true };
		uint64_t prev = 0;

		for (size_t i = 0; i < r->n_packets; i++) {
			const struct ht_packet *p = &r->packets[i];

			if (p->dir != d)
				continue;
			w.packets++;
			w.bytes += p->len;
			if (!w.first_ns)
				w.first_ns = p->ts;
			w.last_ns = p->ts;
			if (prev && p->ts - prev > w.max_gap_ns) {
				w.max_gap_ns = p->ts - prev;
				w.gap_start_ns = prev;
				w.gap_end_ns = p->ts;
			}
			if (prev && r->switch_start_ns && prev <= r->switch_end_ns &&
			    p->ts >= r->switch_start_ns && p->ts - prev > w.switch_gap_ns) {
				w.switch_gap_ns = p->ts - prev;
				w.switch_gap_start_ns = prev;
				w.switch_gap_end_ns = p->ts;
			}
			prev = p->ts;
		}
		w.skipped = r->wire[d].skipped;
		if (w.packets && w.packets == r->wire[d].packets)
			r->wire[d] = w;
	}
}

static int cmp_sched(const void *a, const void *b)
{
	const struct ht_sched_row *x = a, *y = b;

	return x->max_ns < y->max_ns ? 1 : x->max_ns > y->max_ns ? -1 : 0;
}

static int cmp_tb(const void *a, const void *b)
{
	const struct ht_tb_row *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->ms < y->ms ? -1 : x->ms > y->ms;
}

int ht_analyze(struct ht_report *r)
{
	struct builder b = { .r = r };
	int e = 0;

	struct ht_event tmp;

	sort_by_ts(r->events, r->n_events, sizeof(*r->events), &tmp);
	sort_by_ts(r->packets, r->n_packets, sizeof(*r->packets), &tmp);
	for (size_t i = 0; i < r->n_events && e == 0; i++) {
		const struct ht_event *ev = &r->events[i];

		e = see_task(&b, ev);
		if (e < 0)
			break;
		switch (ev->type) {
		case HT_EV_PROC:
			e = see_proc_event(&b, ev);
			if (e == 0)
				e = lifecycle_row(&b, ev);
			break;
		case HT_EV_SYSCALL:
			e = see_syscall(&b, ev);
			break;
		case HT_EV_USDT:
			if (ev->usdt.phase == HT_PHASE_QEMU ||
			    ev->usdt.phase == HT_PHASE_USER)
				e = other_phase(&b, ev);
			else
				e = fdh_phase(&b, ev);
			break;
		default:
			break;
		}
	}
	if (e == 0) {
		close_open_rows(&b);
		sort_phases(r->phases, r->n_phases);
		find_switch(r);
		wire_exact(r);
		if (r->n_sched)
			qsort(r->sched, r->n_sched, sizeof(*r->sched), cmp_sched);
		if (r->n_tb)
			qsort(r->tb, r->n_tb, sizeof(*r->tb), cmp_tb);
	}
	free(b.ts);
	free(b.keyed);
	return e;
}

void ht_report_free(struct ht_report *r)
{
	if (!r)
		return;
	free(r->procs);
	free(r->threads);
	free(r->phases);
	free(r->pulls);
	free(r->syscalls);
	free(r->sched);
	free(r->tb);
	free(r->events);
	free(r->packets);
	free(r->probe_names);
	free(r);
}
