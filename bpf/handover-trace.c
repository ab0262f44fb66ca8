// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Loader of handover.bpf.c: one skeleton lifecycle, open → knobs in
 * .rodata → load → pin → attach → poll → free, and the USDT attachment
 * that libbpf leaves to us (which files, which probes, which cookie).
 */
#include "handover-trace.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "fdh-shared.h"
#include "handover-analyze.h"
#include "handover.skel.h"
#include "stapsdt.h"

_Static_assert(sizeof(enum ht_phase) == 4 && sizeof(enum ht_syscall) == 4 &&
	       sizeof(enum ht_wire_dir) == 4,
	       "enums are 4 bytes in the maps shared with the BPF side");

#define TRACEFS "/sys/kernel/tracing"
#define BPFFS "/sys/fs/bpf"
#define VMLINUX_BTF "/sys/kernel/btf/vmlinux"

/* What is kept in memory; beyond it events are counted as lost. */
#define MAX_EVENTS (1u << 19)
#define MAX_PACKETS (1u << 22)

/* ------------------------------------------------------------------ */
/* Errors                                                             */

/* The tracer's own last error, recorded as libfdhandover records its. */
static __thread struct fdh_error last_error = { .entry = -1 };

const char *ht_last_error(void)
{
	return last_error.msg;
}

__attribute__((format(printf, 2, 3)))
static int fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fdh_error_vrecord(&last_error, err, -1, fmt, ap);
	va_end(ap);
	return err;
}

/* ------------------------------------------------------------------ */
/* Which probes mean what                                             */

static const struct {
	const char *name;
	enum ht_phase phase;
} fdh_probes[] = {
	{ "source_opened", HT_PHASE_SOURCE_OPENED },
	{ "pull_begin", HT_PHASE_PULL_BEGIN },
	{ "pull_fd", HT_PHASE_PULL_FD },
	{ "verify", HT_PHASE_VERIFY },
	{ "fallback", HT_PHASE_FALLBACK },
	{ "serve", HT_PHASE_SERVE },
	{ "manifest_encoded", HT_PHASE_MANIFEST_ENCODED },
	{ "manifest_decoded", HT_PHASE_MANIFEST_DECODED },
	{ "commit", HT_PHASE_COMMIT },
	{ "rollback", HT_PHASE_ROLLBACK },
};

/*
 * QEMU's trace events that mark the phases of a migration or CPR upgrade,
 * with the 1-based position of a string argument worth copying (QEMU
 * passes "running", "paused", ... next to the enum value).  A short list
 * on purpose: every probe site is a uprobe whose detach waits for an RCU
 * grace period (~0.1 s each); more with --usdt-probe BINARY:qemu:GLOB.
 * libbpf 1.1 cannot read runstate_set's first argument (a %rip-relative
 * global) and refuses it; vm_state_notify gives the same stops and starts.
 */
static const struct {
	const char *pattern;
	unsigned int str_arg;
} qemu_probes[] = {
	{ "runstate_set", 4 },			/* (cur, cur_str, new, new_str) */
	{ "vm_state_notify", 3 },		/* (running, reason, reason_str) */
	{ "migrate_set_state", 1 },		/* (new_state) */
	{ "cpr_state_save", 1 },		/* (mode) */
	{ "cpr_state_load", 1 },		/* (mode) */
	{ "cpr_transfer_*", 1 },		/* (path) */
	{ "migration_completion_*", 0 },
	{ "migration_thread_setup_complete", 0 },
	{ "migration_thread_after_loop", 0 },
	{ "migration_set_incoming_channel", 0 },
	{ "migration_set_outgoing_channel", 0 },
	{ "migration_cleanup", 0 },
	{ "migration_cancel", 0 },
	{ "savevm_state_*", 0 },
	{ "loadvm_state_*", 0 },
	{ "qemu_loadvm_state_post_main", 0 },
	{ "vhost_dev_start", 0 },
	{ "vhost_dev_stop", 0 },
	{ "vhost_commit", 0 },
	/* kernel vhost-net across a handover (patch 0023, issue 14) */
	{ "vhost_kernel_ioctl", 4 },		/* (fd, us, r, req) */
	{ "vhost_dev_handover_*", 0 },
	{ "vhost_net_handover_*", 0 },
	{ "tap_*", 0 },
	/* the steps inside STOP -> RESUME, one row per hit (issue 15) */
	{ "vmstate_downtime_checkpoint", 1 },	/* (checkpoint) */
	{ "vmstate_downtime_save", 2 },		/* (type, idstr, id, us) */
	{ "vmstate_downtime_load", 2 },		/* (type, idstr, id, us) */
	{ "fd_handover_*", 0 },
};

#define QEMU_TB_PROBE "translate_block"

struct probe_entry {
	char label[HT_PROBE_NAME_LEN];	/* "provider:name" */
};

struct user_probe {
	char *binary, *provider, *pattern;
	dev_t dev;
	ino_t ino;
	bool resolved;
};

struct binary {
	dev_t dev;
	ino_t ino;
};

struct ht_trace {
	struct handover_bpf *skel;
	struct ring_buffer *rb;
	bool qemu;
	bool light;
	bool str_prog;			/* handle_usdt_str is loaded */

	struct bpf_link **links;
	size_t n_links, cap_links;
	size_t n_usdt;			/* USDT probes attached */

	struct probe_entry *probes;	/* cookie index → name */
	size_t n_probes;

	struct binary *bins;
	size_t n_bins;
	char *bin_list;			/* "path (n probes), ..." */
	size_t bin_list_len;

	struct user_probe *user;
	size_t n_user;

	struct ht_event *events;
	size_t n_events, cap_events;
	struct ht_packet *packets;
	size_t n_packets, cap_packets;
	uint64_t overflow;

	uint64_t phase_seen[HT_PHASE__MAX];
	uint64_t start_ns;
	char tap[HT_COMM_LEN];
	uint32_t ifindex;
	uint32_t netns_ino;
	uint64_t sched_min_ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Environment: BTF, tracefs, bpffs                                   */

static int check_btf(void)
{
	if (access(VMLINUX_BTF, R_OK) < 0)
		return fail(-EOPNOTSUPP,
			    "%s: %s: the kernel has no BTF (CONFIG_DEBUG_INFO_BTF=y is needed for CO-RE)",
			    VMLINUX_BTF, strerror(errno));
	return 0;
}

/* The syscalls:* tracepoints are found by their id in tracefs. */
static int ensure_tracefs(void)
{
	if (access(TRACEFS "/events", F_OK) == 0 ||
	    access("/sys/kernel/debug/tracing/events", F_OK) == 0)
		return 0;
	if (mount("nodev", TRACEFS, "tracefs", 0, NULL) < 0)
		return fail(-errno,
			    "tracefs is not mounted and mounting it failed (%s): run 'mount -t tracefs nodev %s' as root",
			    strerror(errno), TRACEFS);
	return 0;
}

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

static int ensure_pin_dir(const char *dir)
{
	if (strncmp(dir, BPFFS "/", sizeof(BPFFS)) == 0 && !is_bpffs(BPFFS) &&
	    mount("bpf", BPFFS, "bpf", 0, "mode=0700") < 0)
		return fail(-errno,
			    "bpffs is not mounted on %s and mounting it failed (%s): run 'mount -t bpf bpf %s'",
			    BPFFS, strerror(errno), BPFFS);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return fail(-errno, "mkdir %s: %s", dir, strerror(errno));
	if (!is_bpffs(dir))
		return fail(-EINVAL, "%s is not on a bpf filesystem", dir);
	return 0;
}

/* Pinned maps outlive the tracer for `bpftool map dump`; a new run
 * replaces them. */
static int pin_maps(struct ht_trace *t, const char *dir)
{
	struct bpf_map *maps[] = {
		t->skel->maps.phase_log, t->skel->maps.syscall_stats,
		t->skel->maps.wire_stats, t->skel->maps.sched_stats,
		t->skel->maps.tb_count, t->skel->maps.probe_names,
		t->skel->maps.traced,
	};
	char path[PATH_MAX];
	int r;

	r = ensure_pin_dir(dir);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(maps[i]));
		if (unlink(path) < 0 && errno != ENOENT)
			return fail(-errno, "unlink %s: %s", path, strerror(errno));
		r = bpf_map__pin(maps[i], path);
		if (r < 0)
			return fail(r, "pin %s: %s", path, strerror(-r));
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The TAP                                                            */

static int resolve_tap(const char *ifname, const char *netns,
		       uint32_t *ret_ifindex, uint32_t *ret_netns_ino)
{
	char path[PATH_MAX];
	int nsfd, self = -1, r = 0;
	unsigned int ifindex = 0;
	struct stat st;

	if (!netns)
		snprintf(path, sizeof(path), "/proc/thread-self/ns/net");
	else if (strchr(netns, '/'))
		snprintf(path, sizeof(path), "%s", netns);
	else
		snprintf(path, sizeof(path), "/run/netns/%s", netns);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return fail(-errno, "network namespace %s: %s", path, strerror(errno));
	if (fstat(nsfd, &st) < 0) {
		r = fail(-errno, "fstat %s: %s", path, strerror(errno));
		goto out;
	}
	if (netns) {
		/* Interface indexes are per namespace: ask inside it. */
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
			r = fail(-errno, "entering network namespace %s: %s", path,
				 strerror(errno));
			goto out;
		}
	}
	ifindex = if_nametoindex(ifname);
	/* Not here and no namespace named: it may be in one that does not
	 * exist yet (a VM test harness makes its own); match the name. */
	if (!ifindex && netns)
		r = fail(-ENODEV, "no interface '%s' in network namespace %s",
			 ifname, path);
	if (netns && setns(self, CLONE_NEWNET) < 0)
		r = fail(-errno, "returning to our network namespace: %s",
			 strerror(errno));
	if (r == 0) {
		*ret_ifindex = ifindex;
		*ret_netns_ino = ifindex ? (uint32_t)st.st_ino : 0;
	}
out:
	if (self >= 0)
		close(self);
	close(nsfd);
	return r;
}

/* ------------------------------------------------------------------ */
/* USDT attachment                                                    */

/* Room for one more element of a growing array; NULL past max or ENOMEM. */
static void *append(void *pv, size_t *n, size_t *cap, size_t size, size_t max)
{
	void **p = pv;

	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 64;
		void *v = c <= max ? realloc(*p, c * size) : NULL;

		if (!v)
			return NULL;
		*p = v;
		*cap = c;
	}
	return (char *)*p + (*n)++ * size;
}

static int add_link(struct ht_trace *t, struct bpf_link *link)
{
	struct bpf_link **slot = append(&t->links, &t->n_links, &t->cap_links,
					sizeof(*slot), SIZE_MAX);

	if (!slot) {
		bpf_link__destroy(link);
		return -ENOMEM;
	}
	*slot = link;
	return 0;
}

/* The index of provider:name in the cookie and probe_names map. */
static int probe_index(struct ht_trace *t, const char *provider, const char *name)
{
	char label[HT_PROBE_NAME_LEN] = "";	/* zeroed: it goes into a map */
	struct ht_probe_name value = { 0 };
	struct probe_entry *v;
	__u32 key;
	int r;

	/* Display only: a longer name is cut, the probe still attaches. */
	snprintf(label, sizeof(label), "%.16s:%.46s", provider, name);
	for (size_t i = 0; i < t->n_probes; i++)
		if (strcmp(t->probes[i].label, label) == 0)
			return (int)i;
	if (t->n_probes >= HT_MAX_PROBES)
		return -E2BIG;
	v = realloc(t->probes, (t->n_probes + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->probes = v;
	memcpy(v[t->n_probes].label, label, sizeof(label));
	memcpy(value.name, label, sizeof(label));
	key = (__u32)t->n_probes;
	r = bpf_map__update_elem(t->skel->maps.probe_names, &key, sizeof(key),
				 &value, sizeof(value), BPF_ANY);
	if (r < 0)
		return r;
	return (int)t->n_probes++;
}

/*
 * Should this probe of this file be attached, and how?  Returns false to
 * skip it; *phase and *str_arg describe it otherwise.  *counter: the
 * translate_block counter program instead of an event.
 */
static bool want_probe(const struct ht_trace *t, const struct stat *st,
		       const struct stapsdt_probe *p, enum ht_phase *phase,
		       unsigned int *str_arg, bool *counter)
{
	bool qemu = strcmp(p->provider, "qemu") == 0;
	bool want = false;

	*phase = qemu ? HT_PHASE_QEMU : HT_PHASE_USER;
	*str_arg = 0;
	*counter = false;
	if (strcmp(p->provider, "fdhandover") == 0) {
		for (size_t i = 0; i < sizeof(fdh_probes) / sizeof(fdh_probes[0]); i++)
			if (strcmp(p->name, fdh_probes[i].name) == 0)
				*phase = fdh_probes[i].phase;
		/* Light: nothing that fires once per fd. */
		return !(t->light && (*phase == HT_PHASE_PULL_FD ||
				      *phase == HT_PHASE_VERIFY));
	}
	if (qemu && t->qemu) {
		if (strcmp(p->name, QEMU_TB_PROBE) == 0) {
			*counter = true;
			return true;
		}
		for (size_t i = 0; i < sizeof(qemu_probes) / sizeof(qemu_probes[0]); i++) {
			if (fnmatch(qemu_probes[i].pattern, p->name, 0) == 0) {
				*str_arg = qemu_probes[i].str_arg;
				want = true;
				break;
			}
		}
	}
	for (size_t i = 0; i < t->n_user; i++) {
		const struct user_probe *u = &t->user[i];

		if (u->resolved && u->dev == st->st_dev && u->ino == st->st_ino &&
		    strcmp(u->provider, p->provider) == 0 &&
		    fnmatch(u->pattern, p->name, 0) == 0)
			want = true;
	}
	if (want && qemu && strcmp(p->name, QEMU_TB_PROBE) == 0)
		*counter = true;
	return want;
}

static void note_binary(struct ht_trace *t, const char *path, int n, int failed,
			int first_err)
{
	char item[PATH_MAX + 96];
	int len;
	char *v;

	if (failed)
		len = snprintf(item, sizeof(item), "%s%s (%d probes, %d failed: %s)",
			       t->bin_list_len ? ", " : "", path, n, failed,
			       strerror(-first_err));
	else
		len = snprintf(item, sizeof(item), "%s%s (%d probes)",
			       t->bin_list_len ? ", " : "", path, n);
	v = realloc(t->bin_list, t->bin_list_len + (size_t)len + 1);
	if (!v)
		return;
	memcpy(v + t->bin_list_len, item, (size_t)len + 1);
	t->bin_list = v;
	t->bin_list_len += (size_t)len;
}

int ht_trace_add_binary(struct ht_trace *t, const char *path)
{
	struct stapsdt_probe *probes = NULL;
	int n_ok = 0, failed = 0, first_err = 0, r;
	struct binary *bins;
	size_t n = 0;
	struct stat st;

	if (stat(path, &st) < 0)
		return fail(-errno, "%s: %s", path, strerror(errno));
	for (size_t i = 0; i < t->n_bins; i++)
		if (t->bins[i].dev == st.st_dev && t->bins[i].ino == st.st_ino)
			return 0;
	r = stapsdt_list(path, &probes, &n);
	if (r < 0)
		return fail(r, "reading the USDT notes of %s: %s", path, strerror(-r));
	bins = realloc(t->bins, (t->n_bins + 1) * sizeof(*bins));
	if (!bins) {
		free(probes);
		return -ENOMEM;
	}
	t->bins = bins;
	t->bins[t->n_bins++] = (struct binary){ st.st_dev, st.st_ino };

	for (size_t i = 0; i < n; i++) {
		LIBBPF_OPTS(bpf_usdt_opts, uo);
		const struct stapsdt_probe *p = &probes[i];
		struct bpf_program *prog = t->skel->progs.handle_usdt;
		enum ht_phase phase;
		unsigned int str_arg;
		struct bpf_link *link;
		bool counter;
		int idx;

		if (!want_probe(t, &st, p, &phase, &str_arg, &counter))
			continue;
		if (counter)
			prog = t->skel->progs.handle_translate_block;
		else if (str_arg && t->str_prog)
			prog = t->skel->progs.handle_usdt_str;
		idx = probe_index(t, p->provider, p->name);
		if (idx < 0) {
			r = idx;
			goto next_err;
		}
		uo.usdt_cookie = HT_COOKIE(idx, phase, str_arg);
		/* pid -1: every process mapping the file; the BPF side
		 * filters by the traced set. */
		link = bpf_program__attach_usdt(prog, -1, path, p->provider,
						p->name, &uo);
		if (!link) {
			r = -errno;
			goto next_err;
		}
		r = add_link(t, link);
		if (r < 0)
			goto next_err;
		n_ok++;
		continue;
next_err:
		if (!failed++)
			first_err = r;
	}
	free(probes);
	t->n_usdt += (size_t)n_ok;
	if (n_ok || failed)
		note_binary(t, path, n_ok, failed, first_err);
	if (!n_ok && failed)
		return fail(first_err, "attaching the USDT probes of %s: %s", path,
			    strerror(-first_err));
	return n_ok;
}

/* A process's own executable and any libfdhandover it has mapped. */
static int add_process_binaries(struct ht_trace *t, pid_t pid)
{
	char path[PATH_MAX], line[PATH_MAX + 128];
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	r = ht_trace_add_binary(t, path);
	if (r < 0 && r != -ENOENT && r != -EACCES)
		return r;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;	/* gone already: its exit is in the trace */
	while (fgets(line, sizeof(line), f)) {
		char *file = strchr(line, '/');
		char *base;

		if (!file)
			continue;
		file[strcspn(file, "\n")] = '\0';
		base = strrchr(file, '/') + 1;
		if (strncmp(base, "libfdhandover", 13) != 0)
			continue;
		/* Through map_files the path works across mount namespaces,
		 * but libbpf wants a real file: use the path when it exists. */
		if (access(file, R_OK) == 0)
			ht_trace_add_binary(t, file);
	}
	fclose(f);
	return 0;
}

static int parse_user_probe(struct user_probe *u, const char *spec)
{
	char *copy = strdup(spec), *name, *provider;
	struct stat st;

	if (!copy)
		return -ENOMEM;
	/* BINARY may itself contain ':'; PROVIDER and NAME may not. */
	name = strrchr(copy, ':');
	if (!name)
		goto bad;
	*name++ = '\0';
	provider = strrchr(copy, ':');
	if (!provider || !*name || provider == copy)
		goto bad;
	*provider++ = '\0';
	if (!*provider)
		goto bad;
	u->binary = copy;
	u->provider = strdup(provider);
	u->pattern = strdup(name);
	if (!u->provider || !u->pattern)
		return -ENOMEM;
	if (stat(copy, &st) < 0)
		return fail(-errno, "--usdt-probe %s: %s: %s", spec, copy, strerror(errno));
	u->dev = st.st_dev;
	u->ino = st.st_ino;
	u->resolved = true;
	return 0;
bad:
	free(copy);
	return fail(-EINVAL, "--usdt-probe %s: expected BINARY:PROVIDER:NAME", spec);
}

/* ------------------------------------------------------------------ */
/* Events                                                             */

static void keep_packet(struct ht_trace *t, const struct ht_event *e)
{
	struct ht_packet *p = append(&t->packets, &t->n_packets, &t->cap_packets,
				     sizeof(*p), MAX_PACKETS);

	if (!p) {
		t->overflow++;
		return;
	}
	*p = (struct ht_packet){
		.ts = e->ts, .len = e->pkt.len, .proto = e->pkt.proto,
		.dir = (uint8_t)e->pkt.dir,
	};
}

static void keep_event(struct ht_trace *t, const struct ht_event *e)
{
	struct ht_event *v = append(&t->events, &t->n_events, &t->cap_events,
				    sizeof(*v), MAX_EVENTS);

	if (!v) {
		t->overflow++;
		return;
	}
	*v = *e;
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct ht_trace *t = ctx;
	const struct ht_event *e = data;
	char path[64];

	if (size < sizeof(*e))
		return 0;
	if (e->type == HT_EV_PACKET) {
		keep_packet(t, e);
		return 0;
	}
	if (e->type == HT_EV_USDT && e->usdt.phase < HT_PHASE__MAX)
		t->phase_seen[e->usdt.phase] = e->ts;
	if (e->type == HT_EV_PROC && e->proc.kind == HT_PROC_EXEC) {
		/* A traced process became another program: its probes. */
		snprintf(path, sizeof(path), "/proc/%u/exe", e->pid);
		ht_trace_add_binary(t, path);
	}
	keep_event(t, e);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                          */

static int check_pids(const struct ht_trace_opts *o)
{
	for (size_t i = 0; i < o->n_pids; i++) {
		char path[64];

		if (o->pids[i] <= 0)
			return fail(-EINVAL, "invalid pid %d", o->pids[i]);
		snprintf(path, sizeof(path), "/proc/%d", o->pids[i]);
		if (access(path, F_OK) < 0)
			return fail(-ESRCH, "pid %d: no such process", o->pids[i]);
	}
	return 0;
}

/* bpf_copy_from_user_str (Linux 6.12), for handle_usdt_str. */
static bool kernel_has_kfunc(const char *name)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	bool found;

	if (!vmlinux)
		return false;
	found = btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) >= 0;
	btf__free(vmlinux);
	return found;
}

/* Knobs in .rodata and which programs load at all. */
static void configure(struct ht_trace *t, const struct ht_trace_opts *o,
		      uint32_t ifindex, uint32_t netns_ino)
{
	struct handover_bpf *s = t->skel;
	bool wire = o->tap != NULL;

	s->rodata->filter_tgid = o->n_pids > 0;
	s->rodata->follow_children = true;
	s->rodata->sched_min_ns = t->sched_min_ns;
	s->rodata->tap_ifindex = ifindex;
	s->rodata->tap_netns_ino = netns_ino;
	if (wire && !ifindex) {
		char name[sizeof(s->rodata->tap_name)] = "";

		/* IF_NAMESIZE with its NUL: the kernel's dev->name bytes. */
		strncpy(name, o->tap, sizeof(name) - 1);
		memcpy((void *)s->rodata->tap_name, name, sizeof(name));
	}
	s->rodata->packet_events = !o->no_packets;
	memcpy((void *)s->rodata->ethertypes, o->ethertypes, sizeof(o->ethertypes));

	bpf_program__set_autoload(s->progs.handle_netif_receive_skb, wire);
	bpf_program__set_autoload(s->progs.handle_start_xmit, wire);
	bpf_program__set_autoload(s->progs.handle_wakeup, !o->no_sched);
	bpf_program__set_autoload(s->progs.handle_wakeup_new, !o->no_sched);
	bpf_program__set_autoload(s->progs.handle_switch, !o->no_sched);
	/* One syscall tracepoint puts every syscall of every task on the
	 * slow path: light tracing has none. */
	bpf_program__set_autoload(s->progs.enter_pidfd_open, !o->light);
	bpf_program__set_autoload(s->progs.exit_pidfd_open, !o->light);
	bpf_program__set_autoload(s->progs.enter_pidfd_getfd, !o->light);
	bpf_program__set_autoload(s->progs.exit_pidfd_getfd, !o->light);
	bpf_program__set_autoload(s->progs.enter_kcmp, !o->light);
	bpf_program__set_autoload(s->progs.exit_kcmp, !o->light);
	/* String arguments: sleepable, so a page never touched faults in. */
	t->str_prog = kernel_has_kfunc("bpf_copy_from_user_str");
	if (t->str_prog)
		bpf_program__set_flags(s->progs.handle_usdt_str, BPF_F_SLEEPABLE);
	else
		bpf_program__set_autoload(s->progs.handle_usdt_str, false);
}

int ht_trace_open(const struct ht_trace_opts *o, struct ht_trace **ret_trace)
{
	uint32_t ifindex = 0, netns_ino = 0;
	struct ht_trace *t;
	int r;

	if (!o || !ret_trace || (o->n_pids && !o->pids) ||
	    (o->n_usdt_paths && !o->usdt_paths) ||
	    (o->n_usdt_probes && !o->usdt_probes))
		return fail(-EINVAL, "invalid arguments");
	if (o->tap && strlen(o->tap) >= IF_NAMESIZE)
		return fail(-EINVAL, "interface name '%s' is too long", o->tap);
	r = check_btf();
	if (r == 0)
		r = check_pids(o);
	if (r == 0 && !o->light)
		r = ensure_tracefs();
	if (r == 0 && o->tap)
		r = resolve_tap(o->tap, o->netns, &ifindex, &netns_ino);
	if (r < 0)
		return r;

	t = calloc(1, sizeof(*t));
	if (!t)
		return fail(-ENOMEM, "out of memory");
	t->qemu = !o->no_qemu_probes;
	t->light = o->light;
	t->sched_min_ns = o->sched_min_ns ? o->sched_min_ns : HT_SCHED_MIN_NS_DEFAULT;
	t->ifindex = ifindex;
	t->netns_ino = netns_ino;
	if (o->tap)
		snprintf(t->tap, sizeof(t->tap), "%s", o->tap);
	if (o->n_usdt_probes) {
		t->user = calloc(o->n_usdt_probes, sizeof(*t->user));
		if (!t->user) {
			r = fail(-ENOMEM, "out of memory");
			goto cleanup;
		}
		t->n_user = o->n_usdt_probes;
		for (size_t i = 0; i < o->n_usdt_probes; i++) {
			r = parse_user_probe(&t->user[i], o->usdt_probes[i]);
			if (r < 0)
				goto cleanup;
		}
	}

	t->skel = handover_bpf__open();
	if (!t->skel) {
		r = fail(-errno, "opening the BPF object: %s", strerror(errno));
		goto cleanup;
	}
	configure(t, o, ifindex, netns_ino);
	r = handover_bpf__load(t->skel);
	if (r < 0) {
		/* EPERM: no CAP_BPF/CAP_PERFMON (or lockdown); the verifier
		 * says EACCES or EINVAL. */
		if (r == -EPERM)
			r = fail(r, "loading the BPF programs: %s (CAP_BPF and CAP_PERFMON are needed)",
				 strerror(-r));
		else
			r = fail(r == -EACCES ? -EINVAL : r,
				 "loading the BPF programs: the kernel refused one (%s); -v shows the verifier's log",
				 strerror(-r));
		goto cleanup;
	}
	/* Named from the start, so that a dump of an idle direction says
	 * which one it is. */
	for (__u32 d = 0; o->tap && d < HT_WIRE__MAX; d++) {
		struct ht_wire_stat w = { .dir = d, .ifindex = ifindex };

		bpf_map__update_elem(t->skel->maps.wire_stats, &d, sizeof(d), &w,
				     sizeof(w), BPF_ANY);
	}
	for (size_t i = 0; i < o->n_pids; i++) {
		__u32 key = (__u32)o->pids[i], one = 1;

		r = bpf_map__update_elem(t->skel->maps.traced, &key, sizeof(key),
					 &one, sizeof(one), BPF_ANY);
		if (r < 0) {
			r = fail(r, "adding pid %d: %s", o->pids[i], strerror(-r));
			goto cleanup;
		}
	}
	if (o->pin_dir) {
		r = pin_maps(t, o->pin_dir);
		if (r < 0)
			goto cleanup;
	}
	/* Tracepoints and tp_btf attach by section name; USDT is ours.
	 * Time zero is now: no event can be older. */
	t->start_ns = now_ns();
	r = handover_bpf__attach(t->skel);
	if (r < 0) {
		r = fail(r, "attaching the tracepoints: %s", strerror(-r));
		goto cleanup;
	}
	for (size_t i = 0; i < o->n_usdt_paths; i++) {
		r = ht_trace_add_binary(t, o->usdt_paths[i]);
		if (r < 0)
			goto cleanup;
	}
	for (size_t i = 0; i < t->n_user; i++) {
		r = ht_trace_add_binary(t, t->user[i].binary);
		if (r < 0)
			goto cleanup;
	}
	for (size_t i = 0; i < o->n_pids; i++) {
		r = add_process_binaries(t, o->pids[i]);
		if (r < 0)
			goto cleanup;
	}
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), on_event, t, NULL);
	if (!t->rb) {
		r = fail(-errno, "ring buffer: %s", strerror(errno));
		goto cleanup;
	}
	*ret_trace = t;
	return 0;

cleanup:
	ht_trace_free(t);
	return r;
}

int ht_trace_poll(struct ht_trace *t, int timeout_ms)
{
	int n, m;

	/* Events are submitted without wakeup unless the buffer fills up,
	 * so the epoll wait mostly times out: consume after it anyway. */
	n = ring_buffer__poll(t->rb, timeout_ms);
	if (n == -EINTR)
		n = 0;
	if (n < 0)
		return fail(n, "polling the ring buffer: %s", strerror(-n));
	m = ring_buffer__consume(t->rb);
	if (m < 0 && m != -EINTR)
		return fail(m, "reading the ring buffer: %s", strerror(-m));
	return n + (m > 0 ? m : 0);
}

uint64_t ht_trace_phase_seen(const struct ht_trace *t, enum ht_phase phase)
{
	return phase < HT_PHASE__MAX ? t->phase_seen[phase] : 0;
}

uint64_t ht_trace_start_ns(const struct ht_trace *t)
{
	return t->start_ns;
}

size_t ht_trace_n_probes(const struct ht_trace *t)
{
	return t->n_usdt;
}

const char *ht_trace_binaries(const struct ht_trace *t)
{
	return t->bin_list ? t->bin_list : "";
}

void ht_trace_free(struct ht_trace *t)
{
	if (!t)
		return;
	ring_buffer__free(t->rb);
	/* Each detach waits for RCU grace periods under a kernel mutex:
	 * about 0.1 s per perf-event link, and no faster in parallel. */
	for (size_t i = 0; i < t->n_links; i++)
		bpf_link__destroy(t->links[i]);
	free(t->links);
	handover_bpf__destroy(t->skel);
	for (size_t i = 0; i < t->n_user; i++) {
		free(t->user[i].binary);
		free(t->user[i].provider);
		free(t->user[i].pattern);
	}
	free(t->user);
	free(t->probes);
	free(t->bins);
	free(t->bin_list);
	free(t->events);
	free(t->packets);
	free(t);
}

/* ------------------------------------------------------------------ */
/* Report: the collected events plus what the maps summed up          */

static int read_wire_stats(struct ht_trace *t, struct ht_report *r)
{
	for (__u32 d = 0; d < HT_WIRE__MAX; d++) {
		struct ht_wire_stat w;
		struct ht_wire_row *row = &r->wire[d];

		row->dir = d;
		if (!t->tap[0])
			continue;
		if (bpf_map__lookup_elem(t->skel->maps.wire_stats, &d, sizeof(d),
					 &w, sizeof(w), 0) < 0)
			continue;
		if (!r->ifindex)
			r->ifindex = w.ifindex;	/* matched by name */
		row->packets = w.packets;
		row->skipped = w.skipped;
		row->bytes = w.bytes;
		row->first_ns = w.first_ts;
		row->last_ns = w.last_ts;
		row->max_gap_ns = w.max_gap_ns;
		row->gap_end_ns = w.max_gap_end_ts;
		row->gap_start_ns = w.max_gap_end_ts - w.max_gap_ns;
	}
	return 0;
}

static int read_sched_stats(struct ht_trace *t, struct ht_report *r)
{
	struct bpf_map *map = t->skel->maps.sched_stats;
	__u32 key, next, *prev = NULL;
	size_t cap = 0;

	while (bpf_map__get_next_key(map, prev, &next, sizeof(next)) == 0) {
		struct ht_sched_stat st;
		struct ht_sched_row *row;

		key = next;
		prev = &key;
		if (bpf_map__lookup_elem(map, &key, sizeof(key), &st, sizeof(st), 0) < 0)
			continue;
		row = append(&r->sched, &r->n_sched, &cap, sizeof(*row), SIZE_MAX);
		if (!row)
			return -ENOMEM;
		memset(row, 0, sizeof(*row));
		row->pid = (pid_t)st.pid;
		row->tid = (pid_t)st.tid;
		memcpy(row->comm, st.comm, sizeof(row->comm));
		row->waits = st.waits;
		row->total_ns = st.total_ns;
		row->max_ns = st.max_ns;
		row->max_end_ns = st.max_ts;
		row->max_prev_pid = (pid_t)st.max_prev_pid;
		memcpy(row->max_prev_comm, st.max_prev_comm, sizeof(row->max_prev_comm));
	}
	return 0;
}

static int read_tb_count(struct ht_trace *t, struct ht_report *r)
{
	struct bpf_map *map = t->skel->maps.tb_count;
	struct ht_tb_key key, next, *prev = NULL;
	size_t cap = 0;

	while (bpf_map__get_next_key(map, prev, &next, sizeof(next)) == 0) {
		struct ht_tb_row *row;
		__u64 count;

		key = next;
		prev = &key;
		if (bpf_map__lookup_elem(map, &key, sizeof(key), &count,
					 sizeof(count), 0) < 0)
			continue;
		row = append(&r->tb, &r->n_tb, &cap, sizeof(*row), SIZE_MAX);
		if (!row)
			return -ENOMEM;
		*row = (struct ht_tb_row){
			.pid = (pid_t)key.pid, .ms = key.ms, .count = count,
		};
	}
	return 0;
}

/* A copy of n elements (NULL for none); false when out of memory. */
static bool dup_array(void *ret, const void *v, size_t n, size_t size)
{
	void *copy = n ? malloc(n * size) : NULL;

	if (n && !copy)
		return false;
	if (n)
		memcpy(copy, v, n * size);
	memcpy(ret, &copy, sizeof(copy));
	return true;
}

static int copy_collected(struct ht_trace *t, struct ht_report *r)
{
	if (!dup_array(&r->events, t->events, t->n_events, sizeof(*r->events)) ||
	    !dup_array(&r->packets, t->packets, t->n_packets, sizeof(*r->packets)))
		return -ENOMEM;
	r->n_events = t->n_events;
	r->n_packets = t->n_packets;
	if (t->n_probes) {
		r->probe_names = malloc(t->n_probes * sizeof(*r->probe_names));
		if (!r->probe_names)
			return -ENOMEM;
		for (size_t i = 0; i < t->n_probes; i++)
			memcpy(r->probe_names[i], t->probes[i].label, HT_PROBE_NAME_LEN);
		r->n_probe_names = t->n_probes;
	}
	return 0;
}

int ht_trace_report(struct ht_trace *t, struct ht_report **ret_report)
{
	struct ht_report *r = calloc(1, sizeof(*r));
	int e;

	if (!r)
		return fail(-ENOMEM, "out of memory");
	r->start_ns = t->start_ns;
	r->end_ns = now_ns();
	r->lost_events = t->skel->bss->dropped_events + t->overflow;
	memcpy(r->tap, t->tap, sizeof(r->tap));
	r->ifindex = t->ifindex;
	r->tap_by_name = t->tap[0] && !t->ifindex;
	r->netns_ino = r->tap_by_name ? t->skel->bss->tap_netns_seen : t->netns_ino;
	r->sched_min_ns = t->sched_min_ns;
	e = copy_collected(t, r);
	if (e == 0)
		e = read_wire_stats(t, r);
	if (e == 0)
		e = read_sched_stats(t, r);
	if (e == 0)
		e = read_tb_count(t, r);
	if (e == 0)
		e = ht_analyze(r);
	if (e < 0) {
		ht_report_free(r);
		return fail(e, "building the report: %s", strerror(-e));
	}
	*ret_report = r;
	return 0;
}
