// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fd-handover upgrade: replace a running QEMU by a new QEMU binary, on the
 * same host, by fd handover (Documentation/upgrade.md has the QMP sequence
 * this runs).
 *
 * Phases, one progress line each:
 *   source       connect to the source's QMP; its identity (pid + start
 *                time) from the manifest of x-query-fd-handover
 *   manifest     write that manifest for the target
 *   target       start the new binary (tools/qemu-cmdline.c rewrites the
 *                source's argv); it pulls every fd before creating the
 *                machine; its own monitor comes up
 *   prepare      capabilities and parameters on both (the source's old
 *                values are kept for a rollback)
 *   migrate      migrate-incoming on the target, migrate on the source
 *   switch       events only: the source's MIGRATION "completed" is the
 *                commit point, then the target's RESUME
 *   source-exit  quit the source (its threads at nice 19 first)
 *   manifest-in  save the manifest the target received in the stream
 *
 * The commit point is the source's MIGRATION "completed": the patched
 * QEMU reports it once the target has loaded everything and said so, and
 * the target runs no guest code before it.  Before it, any failure (the
 * driver's own SIGINT/SIGTERM/SIGHUP too) rolls back: migrate_cancel and
 * the source's final status decides, then the target's process group is
 * killed, the source resumed if it ran, its settings restored.  After it,
 * the driver never kills the target and never resumes the source.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib-unix.h>

#include "cli.h"
#include "fdhandover.h"
#include "qemu-cmdline.h"
#include "qmp.h"

static const char usage[] =
	"Usage: fd-handover upgrade {--qmp SOCKET | --pid PID} --new-qemu PATH [OPTIONS]\n"
	"\n"
	"Replace the running QEMU (the source) by a new QEMU binary, locally: the\n"
	"new process pulls guest RAM, TAP queues and vhost-user connections out\n"
	"of the source with pidfd_getfd (verified, all or nothing); the migration\n"
	"stream carries only device state.\n"
	"\n"
	"  --qmp SOCKET          the source's QMP unix socket\n"
	"  --pid PID             the source's pid (its QMP socket is read from its\n"
	"                        command line; with --qmp, checked against it)\n"
	"  --new-qemu PATH       the new QEMU binary\n"
	"  --timeout SECONDS     how long each waiting step may take (default 30)\n"
	"  --workdir DIR         manifests, sockets and the target's log\n"
	"                        (default: a new directory in $TMPDIR)\n"
	"  --target-wrapper CMD  a command (split as a shell would) the target's\n"
	"                        argv is appended to, e.g. a sandbox; it must\n"
	"                        leave the inherited fds open for QEMU\n"
	"  --dry-run             print the plan and the target's argv, start nothing\n"
	"  --keep-source         do not quit the source after the commit, nor\n"
	"                        let it quit by itself (x-fd-handover-quit)\n"
	"  -j, --json            the report (or error) as JSON (cli-json.md)\n"
	"  -p, --pretty          indented JSON\n"
	"  -h, --help            this help\n"
	"\n"
	"Any failure before the source commits (its migration completes) rolls\n"
	"back: the target is killed and the source runs on as before.\n";

#define DEFAULT_TIMEOUT_S 30
/* Retrying connect while the target's monitor comes up. */
#define CONNECT_RETRY_MS 10
/* Killing and reaping the target, and the final status of a cancel. */
#define ROLLBACK_WAIT_MS 5000
#define LOG_TAIL_MAX 2000

/*
 * The name of a listening socket the target inherits, kept across the
 * source's quit: QEMU unlinks a listener's path when it closes it.
 */
struct kept_name {
	char *path;		/* the socket's name, absolute */
	char *keep;		/* path + ".fdh-keep": a hard link to it */
};

struct phase_rec {
	char *name;
	double ms;
	char *detail;
};

struct upgrade {
	/* Options. */
	const char *qmp_opt;
	pid_t pid_opt;
	const char *new_qemu;
	int timeout_ms;
	const char *workdir_opt;
	const char *wrapper;
	bool dry_run;
	bool keep_source;

	char *workdir;
	/* Cancelled by a signal or the target's exit before the commit: it
	 * ends every synchronous QMP wait at once. */
	GCancellable *abort;
	const char *signal;		/* "SIGTERM" once one arrived */

	/* Source. */
	struct qmp *src;
	char *src_qmp_path;
	struct fdh_source *fsrc;
	int src_pidfd;			/* owned by fsrc */
	pid_t src_pid;
	char **src_argv;		/* proc_cmdline: one block */
	int src_argc;
	char *src_cwd;
	bool src_was_running;
	char *src_status;		/* at the start */
	/* Its listening AF_UNIX sockets with a name (paths g_free'd). */
	struct qemu_listener *listeners;
	size_t n_listeners;
	GArray *kept;			/* struct kept_name, while kept */
	struct fdh_manifest *manifest;
	void *manifest_buf;
	size_t manifest_len;
	char *manifest_path;

	/* Target. */
	struct qemu_target_argv targ;
	bool have_targ;
	char **target_argv;		/* the wrapper's words, then targ.argv */
	char *dst_qmp_path;
	char *log_path;
	GPid target_pid;
	guint child_watch;
	bool target_exited;
	int target_wstatus;
	struct qmp *dst;
	int64_t dst_entries;

	/* What prepare changed on the source, to put back on a rollback. */
	JsonNode *saved_caps;		/* [{capability, state}] */
	char *saved_mode;
	/* The source offers x-fd-handover-quit: committed, it exits by
	 * itself, so a driver killed after the commit leaves no source. */
	bool src_can_quit;
	bool caps_changed;
	bool params_changed;

	/* Migration, from events. */
	bool migrate_sent;
	char *src_mig_status;		/* last MIGRATION status of the source */
	bool src_closed;
	bool source_exited;
	bool committed;
	/* The source died mid-switch and the target lives: it decides. */
	bool undecided;
	int64_t stop_us;		/* QEMU timestamps, realtime */
	int64_t resume_us;
	bool target_resumed;
	bool target_completed;
	gint64 t_migrate;		/* monotonic, us */
	gint64 t_running;
	double migrate_wall;
	int64_t downtime_ms;		/* -1: unknown */

	/* Report. */
	GArray *phases;
	char *error;
	int err;			/* -errno of error */
	char *hint;
	char *rolled_back;
	char *source_status;
	char *stream_manifest;
	char *warning;
	gint64 t_start;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */

__attribute__((format(printf, 3, 4)))
static int fail(struct upgrade *u, int err, const char *fmt, ...)
{
	va_list ap;

	g_free(u->error);
	va_start(ap, fmt);
	u->error = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	u->err = err;
	return err;
}

static void set_hint(struct upgrade *u, const char *hint)
{
	g_free(u->hint);
	u->hint = g_strdup(hint);
}

static int gerror_errno(const GError *e)
{
	if (e->domain == QMP_ERROR) {
		switch (e->code) {
		case QMP_ERROR_TIMEOUT:
			return -ETIMEDOUT;
		case QMP_ERROR_CLOSED:
			return -EPIPE;
		case QMP_ERROR_ABORTED:
			return -EINTR;
		case QMP_ERROR_PROTOCOL:
			return -EPROTO;
		default:
			return -EIO;
		}
	}
	if (e->domain == G_IO_ERROR) {
		switch (e->code) {
		case G_IO_ERROR_NOT_FOUND:
			return -ENOENT;
		case G_IO_ERROR_PERMISSION_DENIED:
			return -EACCES;
		case G_IO_ERROR_CONNECTION_REFUSED:
			return -ECONNREFUSED;
		}
	}
	return -EIO;
}

static int fail_gerror(struct upgrade *u, GError *e)
{
	return fail(u, gerror_errno(e), "%s", e->message);
}

static gboolean set_flag(gpointer data)
{
	*(bool *)data = true;
	return G_SOURCE_REMOVE;
}

/* Iterate the main context until done(u) or timeout_ms; done(u) after. */
static bool wait_until(struct upgrade *u, bool (*done)(struct upgrade *),
		       int timeout_ms)
{
	GSource *timer = g_timeout_source_new((guint)MAX(timeout_ms, 0));
	bool expired = false;

	g_source_set_callback(timer, set_flag, &expired, NULL);
	g_source_attach(timer, NULL);
	while (!done(u) && !expired)
		g_main_context_iteration(NULL, TRUE);
	g_source_destroy(timer);
	g_source_unref(timer);
	return done(u);
}

static bool never(struct upgrade *u)
{
	return false;
}

static void sleep_ms(struct upgrade *u, int ms)
{
	wait_until(u, never, ms);
}

/* Execute on c with the driver's timeout; a failure is recorded in u. */
static int execute(struct upgrade *u, struct qmp *c, const char *cmd,
		   JsonNode *args, JsonNode **ret)
{
	g_autoptr(GError) e = NULL;

	if (!qmp_execute(c, cmd, args, ret, u->timeout_ms, &e))
		return fail_gerror(u, e);
	return 0;
}

/* A string member of an object, or NULL: QEMU's JSON is not trusted. */
static const char *object_string(JsonObject *o, const char *key)
{
	JsonNode *m = o ? json_object_get_member(o, key) : NULL;

	if (!m || !JSON_NODE_HOLDS_VALUE(m) ||
	    json_node_get_value_type(m) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(m);
}

static const char *member_string(JsonNode *n, const char *key)
{
	return object_string(n && JSON_NODE_HOLDS_OBJECT(n) ?
			     json_node_get_object(n) : NULL, key);
}

static int64_t member_int(JsonNode *n, const char *key, int64_t dflt)
{
	JsonObject *o = n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
	JsonNode *m = o ? json_object_get_member(o, key) : NULL;

	if (!m || !JSON_NODE_HOLDS_VALUE(m) ||
	    json_node_get_value_type(m) != G_TYPE_INT64)
		return dflt;
	return json_node_get_int(m);
}

/* A new file of ours only: never through a link, never over another. */
static int write_new_file(const char *path, const void *buf, size_t len,
			  mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		      mode);
	const char *p = buf;
	int r = 0;

	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

/* The last bytes of the target's log, for an error message. */
static char *log_tail(const struct upgrade *u)
{
	g_autofree char *text = NULL;
	gsize len = 0;

	if (!u->log_path || !g_file_get_contents(u->log_path, &text, &len, NULL) ||
	    !len)
		return g_strdup("");
	while (len && text[len - 1] == '\n')
		text[--len] = '\0';
	return g_strdup_printf(":\n%s", len > LOG_TAIL_MAX ?
			       text + len - LOG_TAIL_MAX : text);
}

static char *wait_status_text(int ws)
{
	if (WIFEXITED(ws))
		return g_strdup_printf("exit status %d", WEXITSTATUS(ws));
	if (WIFSIGNALED(ws))
		return g_strdup_printf("signal %s", sigabbrev_np(WTERMSIG(ws)) ?
				       sigabbrev_np(WTERMSIG(ws)) : "?");
	return g_strdup("unknown status");
}

/* ------------------------------------------------------------------ */
/* Events and processes                                               */

static bool status_final(const char *s)
{
	return s && (strcmp(s, "completed") == 0 || strcmp(s, "failed") == 0 ||
		     strcmp(s, "cancelled") == 0);
}

static void on_src_event(struct qmp *q, const char *name, JsonObject *data,
			 int64_t ts, void *opaque)
{
	struct upgrade *u = opaque;

	if (!u->migrate_sent)
		return;
	if (strcmp(name, "STOP") == 0 && !u->stop_us) {
		u->stop_us = ts;
	} else if (strcmp(name, "X_FD_HANDOVER_COMMITTED") == 0 && data &&
		   json_object_has_member(data, "downtime")) {
		/*
		 * The source's own downtime, sent with its commit (patch
		 * 0028): a source with x-fd-handover-quit exits right after
		 * it, before query-migrate could be answered.
		 */
		u->downtime_ms = json_object_get_int_member(data, "downtime");
	} else if (strcmp(name, "MIGRATION") == 0 && object_string(data, "status")) {
		g_free(u->src_mig_status);
		u->src_mig_status = g_strdup(object_string(data, "status"));
		/* The commit point (the source has the target's 'loaded'). */
		if (strcmp(u->src_mig_status, "completed") == 0)
			u->committed = true;
	}
}

static void on_dst_event(struct qmp *q, const char *name, JsonObject *data,
			 int64_t ts, void *opaque)
{
	struct upgrade *u = opaque;

	if (strcmp(name, "RESUME") == 0 && !u->target_resumed) {
		u->target_resumed = true;
		u->resume_us = ts;
		u->t_running = g_get_monotonic_time();
	} else if (strcmp(name, "MIGRATION") == 0 &&
		   g_strcmp0(object_string(data, "status"), "completed") == 0) {
		u->target_completed = true;
		if (!u->t_running)
			u->t_running = g_get_monotonic_time();
	}
}

static void on_src_closed(struct qmp *q, const GError *why, void *opaque)
{
	((struct upgrade *)opaque)->src_closed = true;
}

static void on_target_exit(GPid pid, gint wstatus, gpointer opaque)
{
	struct upgrade *u = opaque;

	u->target_exited = true;
	u->target_wstatus = wstatus;
	u->child_watch = 0;
	g_spawn_close_pid(pid);
	if (!u->committed)
		g_cancellable_cancel(u->abort);
}

static gboolean on_signal(gpointer data, int sig)
{
	struct upgrade *u = data;

	if (u->committed) {
		cli_warn("upgrade: %s after the commit point: finishing the upgrade (the target owns the guest)",
			 sigabbrev_np(sig));
		return G_SOURCE_CONTINUE;
	}
	if (!u->signal)
		u->signal = sig == SIGINT ? "SIGINT" : sig == SIGTERM ?
			"SIGTERM" : "SIGHUP";
	g_cancellable_cancel(u->abort);
	return G_SOURCE_CONTINUE;
}

static gboolean on_sigint(gpointer u) { return on_signal(u, SIGINT); }
static gboolean on_sigterm(gpointer u) { return on_signal(u, SIGTERM); }
static gboolean on_sighup(gpointer u) { return on_signal(u, SIGHUP); }

/* A fresh abort for both monitors: waits after this are not cut short. */
static void reset_abort(struct upgrade *u)
{
	g_object_unref(u->abort);
	u->abort = g_cancellable_new();
	if (u->src)
		qmp_set_abort(u->src, u->abort);
	if (u->dst)
		qmp_set_abort(u->dst, u->abort);
}

/* ------------------------------------------------------------------ */
/* Phase: source                                                      */

static int query_source_manifest(struct upgrade *u)
{
	g_autoptr(JsonNode) info = NULL;
	const char *role, *b64;
	guchar *raw;
	gsize len;
	int r;

	if ((r = execute(u, u->src, "x-query-fd-handover", NULL, &info)) < 0) {
		set_hint(u, "the source must be a QEMU built with the fd-handover patches (qemu-glue/patches)");
		return r;
	}
	role = member_string(info, "role");
	b64 = member_string(info, "manifest");
	if (!role || strcmp(role, "source") || !b64)
		return fail(u, -EPROTO,
			    "x-query-fd-handover says role '%s', not 'source': an incoming migration is still under way there",
			    role ? role : "?");
	raw = g_base64_decode(b64, &len);
	r = fdh_manifest_decode(raw, len, &u->manifest);
	if (r < 0) {
		g_free(raw);
		return fail(u, r, "the source's manifest does not decode: %s",
			    fdh_last_error()->msg);
	}
	u->manifest_buf = raw;
	u->manifest_len = len;
	return 0;
}

static int open_source(struct upgrade *u)
{
	const struct fdh_manifest_source *ms = &u->manifest->source;
	struct fdh_source_info info;
	char path[64];
	int r;

	if (u->pid_opt && u->pid_opt != ms->pid)
		return fail(u, -ESRCH,
			    "the QEMU behind %s is pid %d, not --pid %d",
			    u->src_qmp_path, ms->pid, u->pid_opt);
	/* Pid and start time, from the source's own word: a recycled pid is
	 * refused.  Not SO_PEERCRED: that names whoever called listen(). */
	r = fdh_source_open_manifest(u->manifest, &u->fsrc);
	if (r < 0)
		return fail(u, r, "pid %d of the manifest: %s", ms->pid,
			    fdh_last_error()->msg);
	fdh_source_get_info(u->fsrc, &info);
	u->src_pid = info.pid;
	u->src_pidfd = info.pidfd;
	r = proc_cmdline(u->src_pid, &u->src_argv, &u->src_argc);
	if (r < 0)
		return fail(u, r, "reading /proc/%d/cmdline: %s", u->src_pid,
			    strerror(-r));
	snprintf(path, sizeof(path), "/proc/%d/cwd", u->src_pid);
	u->src_cwd = g_file_read_link(path, NULL);
	if (!u->src_cwd)
		return fail(u, errno ? -errno : -EACCES,
			    "reading the source's working directory %s: %s",
			    path, strerror(errno));
	/* What /proc said is the pidfd's process's only while it lives. */
	if (syscall(SYS_pidfd_send_signal, u->src_pidfd, 0, NULL, 0) < 0)
		return fail(u, -ESRCH, "the source pid %d exited", u->src_pid);
	return 0;
}

/* unix_diag's state of a listening socket (it reuses TCP_LISTEN). */
#define UNIX_STATE_LISTEN 10

/*
 * The source's listening unix sockets bound to a path, for the argv
 * rewriter: a chardev that listens on one of them is served by the
 * target from the same socket (fd=N), and the driver keeps its name.
 * Without them a monitor listening by path is dropped from the target,
 * so a failure here is a warning, not the end of the upgrade.
 */
static void find_listeners(struct upgrade *u)
{
	struct fdh_fd_info *infos = NULL;
	size_t n = 0;
	int r = fdh_inspect_process(u->src_pid, 0, &infos, &n);

	if (r < 0) {
		cli_warn("upgrade: listing the fds of the source pid %d: %s: a monitor that listens by path is left to the source",
			 u->src_pid, strerror(-r));
		return;
	}
	u->listeners = g_new0(struct qemu_listener, n + 1);
	for (size_t i = 0; i < n; i++) {
		const struct fdh_fd_info *f = &infos[i];
		const char *path = f->u.unix_socket.path;

		/* An abstract name ("@...") has no file to keep. */
		if ((f->kind != FDH_KIND_UNIX_SOCKET &&
		     f->kind != FDH_KIND_VHOST_USER) ||
		    f->u.unix_socket.state != UNIX_STATE_LISTEN ||
		    !path[0] || path[0] == '@')
			continue;
		u->listeners[u->n_listeners].path = g_strdup(path);
		u->listeners[u->n_listeners++].fd = f->fd;
	}
	free(infos);
}

static int phase_source(struct upgrade *u, GString *detail)
{
	g_autoptr(GError) e = NULL;
	g_autoptr(JsonNode) st = NULL;
	const char *status;
	int r;

	if (u->qmp_opt) {
		u->src_qmp_path = g_strdup(u->qmp_opt);
	} else {
		char **argv;
		int argc;

		r = proc_cmdline(u->pid_opt, &argv, &argc);
		if (r < 0)
			return fail(u, r, "reading /proc/%d/cmdline: %s",
				    u->pid_opt, strerror(-r));
		u->src_qmp_path = qemu_cmdline_qmp_path(argv, argc);
		free(argv);
		if (!u->src_qmp_path) {
			set_hint(u, "pass its monitor socket with --qmp SOCKET");
			return fail(u, -ENOENT,
				    "pid %d has no QMP unix socket on its command line (-qmp unix:PATH, or -chardev socket,path=... with -mon mode=control)",
				    u->pid_opt);
		}
	}
	u->src = qmp_connect(u->src_qmp_path, "source QMP", u->timeout_ms,
			     u->abort, &e);
	if (!u->src)
		return fail_gerror(u, e);
	qmp_set_handlers(u->src, on_src_event, on_src_closed, u);
	if ((r = execute(u, u->src, "query-status", NULL, &st)) < 0)
		return r;
	status = member_string(st, "status");
	if (!status || (strcmp(status, "running") && strcmp(status, "paused")))
		return fail(u, -EINVAL,
			    "the source VM is '%s', not running or paused",
			    status ? status : "?");
	u->src_status = g_strdup(status);
	u->src_was_running = strcmp(status, "running") == 0;
	if ((r = query_source_manifest(u)) < 0 || (r = open_source(u)) < 0)
		return r;
	/* A source kept alive goes on serving its monitors: two processes
	 * accepting on one socket would answer a client at random. */
	if (!u->keep_source)
		find_listeners(u);
	g_string_printf(detail, "pid %d, %s, %s", u->src_pid, status,
			u->src_argv[0] ? strrchr(u->src_argv[0], '/') ?
			strrchr(u->src_argv[0], '/') + 1 : u->src_argv[0] : "?");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Phases: manifest, target                                           */

static int phase_manifest(struct upgrade *u, GString *detail)
{
	/* Readable by a target that a --target-wrapper runs as another uid;
	 * the work directory's own mode says who may reach it. */
	int r = write_new_file(u->manifest_path, u->manifest_buf,
			       u->manifest_len, 0644);

	if (r < 0)
		return fail(u, r, "writing %s: %s", u->manifest_path,
			    strerror(-r));
	g_string_printf(detail, "%zu fds -> %s", u->manifest->n_entries,
			u->manifest_path);
	return 0;
}

/*
 * The -netdev ids whose vhost-net devices the source hands over: its
 * manifest's vhost-net entries, owned by "<id>.vhost" (patch 0023).
 */
static GPtrArray *manifest_vhost_netdevs(const struct fdh_manifest *m)
{
	static const char suffix[] = ".vhost";
	GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);

	for (size_t i = 0; m && i < m->n_entries; i++) {
		const struct fdh_manifest_entry *e = &m->entries[i];

		if (e->kind == FDH_KIND_VHOST_NET && g_str_has_suffix(e->owner, suffix))
			g_ptr_array_add(ids, g_strndup(e->owner,
						       strlen(e->owner) - (sizeof(suffix) - 1)));
	}
	return ids;
}

static int build_target_argv(struct upgrade *u)
{
	g_autoptr(GPtrArray) vhost_ids = manifest_vhost_netdevs(u->manifest);
	struct qemu_target_spec spec = {
		.vhost_netdevs = (const char *const *)vhost_ids->pdata,
		.n_vhost_netdevs = vhost_ids->len,
		.qemu = u->new_qemu,
		.manifest = u->manifest_path,
		.qmp_path = u->dst_qmp_path,
		.workdir = u->workdir,
		.listeners = u->listeners,
		.n_listeners = u->n_listeners,
	};
	g_autoptr(GError) e = NULL;
	g_autofree char *why = NULL;
	g_auto(GStrv) wrap = NULL;
	GPtrArray *all;
	int r;

	r = qemu_target_argv_build(u->src_argv, u->src_argc, &spec, &u->targ,
				   &why);
	if (r < 0)
		return fail(u, r, "the source's command line: %s",
			    why ? why : strerror(-r));
	u->have_targ = true;
	if (u->wrapper && *u->wrapper &&
	    !g_shell_parse_argv(u->wrapper, NULL, &wrap, &e))
		return fail(u, -EINVAL, "--target-wrapper: %s", e->message);
	all = g_ptr_array_new();
	for (char **w = wrap; w && *w; w++)
		g_ptr_array_add(all, g_strdup(*w));
	for (char **a = u->targ.argv; *a; a++)
		g_ptr_array_add(all, g_strdup(*a));
	g_ptr_array_add(all, NULL);
	u->target_argv = (char **)g_ptr_array_free(all, FALSE);
	return 0;
}

struct child_setup {
	pid_t driver;
};

/* In the child, between fork and exec: async-signal-safe calls only. */
static void target_child_setup(gpointer data)
{
	const struct child_setup *cs = data;

	/* Its own process group: a rollback kills all it started. */
	if (setsid() < 0)
		_exit(126);
	/* A killed driver leaves no target holding the source's fds; the
	 * patched QEMU clears this once the source has its 'loaded'. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != cs->driver)
		_exit(126);
}

/* Pull the fds the target must hold at the source's numbers. */
static int pull_inherited(struct upgrade *u, int *local)
{
	char hint[512];

	for (size_t i = 0; i < u->targ.n_inherit_fds; i++) {
		int fd = (int)syscall(SYS_pidfd_getfd, u->src_pidfd,
				      u->targ.inherit_fds[i], 0);

		if (fd < 0) {
			int r = -errno;

			set_hint(u, cli_hint(r, u->src_pid, true, hint,
					     sizeof(hint)));
			return fail(u, r,
				    "pidfd_getfd(pid %d, fd %d), which the target inherits at the same number: %s",
				    u->src_pid, u->targ.inherit_fds[i],
				    strerror(-r));
		}
		local[i] = fd;
	}
	return 0;
}

static bool target_gone_or_interrupted(struct upgrade *u)
{
	return u->target_exited || u->signal;
}

static int connect_target(struct upgrade *u)
{
	gint64 deadline = g_get_monotonic_time() +
		(gint64)u->timeout_ms * 1000;

	for (;;) {
		g_autoptr(GError) e = NULL;
		gint64 left = (deadline - g_get_monotonic_time()) / 1000;

		if (target_gone_or_interrupted(u))
			return fail(u, -EINTR, "the target's monitor did not come up");
		if (left <= 0)
			return fail(u, -ETIMEDOUT,
				    "the target's monitor %s did not come up within %d ms",
				    u->dst_qmp_path, u->timeout_ms);
		u->dst = qmp_connect(u->dst_qmp_path, "target QMP", (int)left,
				     u->abort, &e);
		if (u->dst)
			return 0;
		if (!g_error_matches(e, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) &&
		    !g_error_matches(e, G_IO_ERROR,
				     G_IO_ERROR_CONNECTION_REFUSED))
			return fail_gerror(u, e);
		sleep_ms(u, CONNECT_RETRY_MS);
	}
}

static int phase_target(struct upgrade *u, GString *detail)
{
	struct child_setup cs = { .driver = getpid() };
	g_autoptr(GError) e = NULL;
	g_autoptr(JsonNode) info = NULL;
	g_autofree int *local = NULL;
	const char *role;
	int logfd, r;
	bool ok;

	if ((r = build_target_argv(u)) < 0)
		return r;
	local = g_new0(int, u->targ.n_inherit_fds + 1);
	for (size_t i = 0; i < u->targ.n_inherit_fds; i++)
		local[i] = -1;
	r = pull_inherited(u, local);
	if (r == 0) {
		logfd = open(u->log_path, O_WRONLY | O_CREAT | O_EXCL |
			     O_NOFOLLOW | O_CLOEXEC, 0600);
		if (logfd < 0)
			r = fail(u, -errno, "creating %s: %s", u->log_path,
				 strerror(errno));
	}
	if (r == 0) {
		/* From the source's cwd, so that its relative paths resolve as
		 * they did for the source.  GLib places the inherited fds at
		 * their numbers (without close-on-exec) and closes all others. */
		ok = g_spawn_async_with_pipes_and_fds(
			u->src_cwd, (const char *const *)u->target_argv, NULL,
			G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH |
			G_SPAWN_STDIN_FROM_DEV_NULL,
			target_child_setup, &cs, -1, logfd, logfd, local,
			u->targ.inherit_fds, u->targ.n_inherit_fds,
			&u->target_pid, NULL, NULL, NULL, &e);
		close(logfd);
		if (!ok)
			r = fail(u, -ENOEXEC, "starting %s: %s",
				 u->target_argv[0], e->message);
	}
	for (size_t i = 0; i < u->targ.n_inherit_fds; i++)
		if (local[i] >= 0)
			close(local[i]);
	if (r < 0)
		return r;
	u->child_watch = g_child_watch_add(u->target_pid, on_target_exit, u);

	if ((r = connect_target(u)) < 0)
		return r;
	qmp_set_handlers(u->dst, on_dst_event, NULL, u);
	if ((r = execute(u, u->dst, "x-query-fd-handover", NULL, &info)) < 0)
		return r;
	role = member_string(info, "role");
	if (!role || strcmp(role, "target"))
		return fail(u, -EPROTO,
			    "the target says role '%s': it did not pull from the source (is --new-qemu built with the fd-handover patches?)",
			    role ? role : "?");
	u->dst_entries = member_int(info, "entries", 0);
	g_string_printf(detail, "pid %d, pulled %" G_GINT64_FORMAT " fds",
			u->target_pid, u->dst_entries);
	if (u->targ.n_inherit_fds)
		g_string_append_printf(detail, ", inherited %zu",
				       u->targ.n_inherit_fds);
	g_string_append(detail, ", monitor up");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Phases: prepare, migrate, switch                                   */

static const char *const handover_caps[] = {
	"x-fd-handover", "return-path", "events",
};
#define QUIT_CAP "x-fd-handover-quit"

static JsonNode *caps_args(JsonNode *caps)
{
	return qmp_args("capabilities", QMP_NODE, caps, NULL);
}

static void add_cap(JsonBuilder *b, const char *name, gboolean state)
{
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "capability");
	json_builder_add_string_value(b, name);
	json_builder_set_member_name(b, "state");
	json_builder_add_boolean_value(b, state);
	json_builder_end_object(b);
}

/* with_quit: the source's list, which also has it quit once committed. */
static JsonNode *handover_caps_on(bool with_quit)
{
	g_autoptr(JsonBuilder) b = json_builder_new_immutable();

	json_builder_begin_array(b);
	for (size_t i = 0; i < G_N_ELEMENTS(handover_caps); i++)
		add_cap(b, handover_caps[i], TRUE);
	if (with_quit)
		add_cap(b, QUIT_CAP, TRUE);
	json_builder_end_array(b);
	return json_builder_get_root(b);
}

/* The source's current state of the capabilities we turn on. */
static int save_source_settings(struct upgrade *u)
{
	g_autoptr(JsonNode) caps = NULL, params = NULL;
	g_autoptr(JsonBuilder) b = json_builder_new_immutable();
	JsonArray *a;
	int r;

	if ((r = execute(u, u->src, "query-migrate-capabilities", NULL,
			 &caps)) < 0 ||
	    (r = execute(u, u->src, "query-migrate-parameters", NULL,
			 &params)) < 0)
		return r;
	if (!JSON_NODE_HOLDS_ARRAY(caps))
		return fail(u, -EPROTO, "query-migrate-capabilities: not a list");
	a = json_node_get_array(caps);
	json_builder_begin_array(b);
	for (guint i = 0; i < json_array_get_length(a); i++) {
		JsonNode *c = json_array_get_element(a, i);
		const char *name = member_string(c, "capability");

		/* An older source (series before 0016) lacks it: it then
		 * stays until we quit it. */
		if (name && strcmp(name, QUIT_CAP) == 0) {
			u->src_can_quit = true;
			json_builder_add_value(b, json_node_copy(c));
		}
		for (size_t k = 0; name && k < G_N_ELEMENTS(handover_caps); k++)
			if (strcmp(name, handover_caps[k]) == 0)
				json_builder_add_value(b, json_node_copy(c));
	}
	json_builder_end_array(b);
	u->saved_caps = json_builder_get_root(b);
	u->saved_mode = g_strdup(member_string(params, "mode"));
	return 0;
}

/* ------------------------------------------------------------------ */
/* The names of the listening sockets the target inherits              */

static const struct qemu_listener *listener_at(const struct upgrade *u,
					       int fd)
{
	for (size_t i = 0; i < u->n_listeners; i++)
		if (u->listeners[i].fd == fd)
			return &u->listeners[i];
	return NULL;
}

static void kept_name_clear(gpointer p)
{
	struct kept_name *k = p;

	g_free(k->path);
	g_free(k->keep);
}

/*
 * QEMU 10.0 unlinks the path of every listening unix socket it closes
 * (socket_listen_cleanup(), fd-passed ones included) when it quits, so
 * the source would take the name of the socket the target now serves
 * along.  A hard link to the socket's inode keeps it; restore_names()
 * puts it back once the source has exited.  Without the link the upgrade
 * goes on: the target serves the socket, only its name goes.
 */
static void keep_names(struct upgrade *u)
{
	for (size_t i = 0; i < u->targ.n_inherit_fds; i++) {
		const struct qemu_listener *l =
			listener_at(u, u->targ.inherit_fds[i]);
		struct kept_name k;
		struct stat st;

		if (!l)
			continue;
		k.path = g_path_is_absolute(l->path) ? g_strdup(l->path) :
			g_build_filename(u->src_cwd, l->path, NULL);
		k.keep = g_strconcat(k.path, ".fdh-keep", NULL);
		/* Left by a driver that was killed: ours to replace. */
		if (lstat(k.keep, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(k.keep);
		if (link(k.path, k.keep) < 0) {
			cli_warn("upgrade: keeping the name of the listening socket %s (link to %s): %s; the target serves the socket, but the source removes its name when it quits: clients cannot connect to %s after that",
				 k.path, k.keep, strerror(errno), k.path);
			kept_name_clear(&k);
			continue;
		}
		g_array_append_val(u->kept, k);
	}
}

/* The source has exited: each kept name back to its socket's path. */
static size_t restore_names(struct upgrade *u)
{
	size_t n = 0;

	for (guint i = 0; i < u->kept->len; i++) {
		const struct kept_name *k =
			&g_array_index(u->kept, struct kept_name, i);
		struct stat a, b;

		/* Never over a file that took the name meanwhile. */
		if (renameat2(AT_FDCWD, k->keep, AT_FDCWD, k->path,
			      RENAME_NOREPLACE) == 0) {
			n++;
			continue;
		}
		if (errno == EEXIST && lstat(k->path, &a) == 0 &&
		    lstat(k->keep, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino) {
			/* The source left the name (a QEMU that does not unlink). */
			unlink(k->keep);
			n++;
			continue;
		}
		cli_warn("upgrade: giving the listening socket its name back (rename %s to %s): %s; the target's socket is reachable as %s",
			 k->keep, k->path, strerror(errno), k->keep);
	}
	g_array_set_size(u->kept, 0);
	return n;
}

/* Rolled back: the source keeps its socket and its name. */
static void drop_kept_names(struct upgrade *u)
{
	for (guint i = 0; i < u->kept->len; i++)
		unlink(g_array_index(u->kept, struct kept_name, i).keep);
	g_array_set_size(u->kept, 0);
}

/* Names still kept at the end: the source has not exited. */
static void warn_kept_names(struct upgrade *u)
{
	for (guint i = 0; i < u->kept->len; i++) {
		const struct kept_name *k =
			&g_array_index(u->kept, struct kept_name, i);

		cli_warn("upgrade: the target serves the listening socket %s; its name is kept as %s: once the source pid %d has exited, rename it back (mv %s %s)",
			 k->path, k->keep, u->src_pid, k->keep, k->path);
	}
}

static bool source_gone(const struct upgrade *u)
{
	struct pollfd p = { .fd = u->src_pidfd, .events = POLLIN };

	/* A pidfd polls readable once its process has exited. */
	return u->fsrc && poll(&p, 1, 0) == 1;
}

static int phase_prepare(struct upgrade *u, GString *detail)
{
	g_autoptr(JsonNode) on = handover_caps_on(false);
	g_autoptr(JsonNode) a1 = NULL, a2 = NULL, a3 = NULL, a4 = NULL;
	bool quit;
	int r;

	if ((r = save_source_settings(u)) < 0)
		return r;
	/* return-path: the source completes only once the target has loaded
	 * everything and said so; that makes 'completed' the commit point.
	 * x-fd-handover-quit: after it, the source exits by itself even if
	 * we are killed; our own quit then finds its monitor closed. */
	quit = u->src_can_quit && !u->keep_source;
	a1 = caps_args(handover_caps_on(quit));
	u->caps_changed = true;
	if ((r = execute(u, u->src, "migrate-set-capabilities", a1, NULL)) < 0)
		return r;
	a2 = qmp_args("mode", QMP_STR, "cpr-transfer", NULL);
	u->params_changed = true;
	if ((r = execute(u, u->src, "migrate-set-parameters", a2, NULL)) < 0)
		return r;
	a3 = caps_args(json_node_copy(on));
	if ((r = execute(u, u->dst, "migrate-set-capabilities", a3, NULL)) < 0)
		return r;
	/* The TAP itself is kept: nothing to announce. */
	a4 = qmp_args("announce-rounds", QMP_INT, 0, NULL);
	if ((r = execute(u, u->dst, "migrate-set-parameters", a4, NULL)) < 0)
		return r;
	/* Before the migration: the source may die any time after it. */
	keep_names(u);
	g_string_printf(detail, "x-fd-handover, return-path%s, cpr-transfer, announce-rounds 0",
			quit ? ", " QUIT_CAP : "");
	if (u->kept->len)
		g_string_append_printf(detail, "; %u socket name%s kept",
				       u->kept->len, u->kept->len > 1 ? "s" : "");
	return 0;
}

static int phase_migrate(struct upgrade *u, GString *detail)
{
	g_autofree char *uri = g_strdup_printf("unix:%s/migrate.sock",
					       u->workdir);
	g_autoptr(JsonNode) args = qmp_args("uri", QMP_STR, uri, NULL);
	int r;

	if ((r = execute(u, u->dst, "migrate-incoming", args, NULL)) < 0)
		return r;
	u->t_migrate = g_get_monotonic_time();
	u->migrate_wall = (double)g_get_real_time() / G_USEC_PER_SEC;
	/* From here a rollback must ask the source how it ended. */
	u->migrate_sent = true;
	if ((r = execute(u, u->src, "migrate", args, NULL)) < 0)
		return r;
	g_string_assign(detail, uri);
	return 0;
}

static bool target_settled(struct upgrade *u)
{
	return u->src_was_running ? u->target_resumed : u->target_completed;
}

/* Done, or nothing more will come before the commit. */
static bool switch_settled(struct upgrade *u)
{
	if (u->committed)
		return target_settled(u) || u->target_exited;
	return status_final(u->src_mig_status) || u->target_exited ||
	       u->signal || u->src_closed;
}

static int phase_switch(struct upgrade *u, GString *detail)
{
	g_autoptr(JsonNode) info = NULL;

	wait_until(u, switch_settled, u->timeout_ms);
	if (!u->committed) {
		if (u->src_mig_status && status_final(u->src_mig_status))
			return fail(u, -EIO, "the source's migration %s",
				    u->src_mig_status);
		if (u->src_closed)
			return fail(u, -EPIPE, "the source's monitor closed during the migration");
		if (u->target_exited || u->signal)
			return fail(u, -EINTR, "interrupted");
		return fail(u, -ETIMEDOUT,
			    "the source did not complete the migration within %d ms (last status: %s)",
			    u->timeout_ms, u->src_mig_status ? u->src_mig_status : "none");
	}
	if (!target_settled(u)) {
		g_autofree char *how = u->target_exited ?
			wait_status_text(u->target_wstatus) : NULL;

		if (how)
			return fail(u, -EIO,
				    "the source committed the handover, then the target (pid %d) exited with %s: the guest ran in it",
				    u->target_pid, how);
		return fail(u, -ETIMEDOUT,
			    "the source committed the handover, but the target (pid %d) did not %s within %d ms",
			    u->target_pid, u->src_was_running ?
			    "resume" : "complete its incoming migration",
			    u->timeout_ms);
	}
	/*
	 * The source's own downtime figure: from its commit event, else (a
	 * source without patch 0028) one question after the fact.
	 */
	if (u->downtime_ms < 0 &&
	    qmp_execute(u->src, "query-migrate", NULL, &info, u->timeout_ms,
			NULL))
		u->downtime_ms = member_int(info, "downtime", -1);
	g_string_printf(detail, "target %s; QEMU downtime ",
			u->src_was_running ? "running" : "paused, as the source was");
	if (u->downtime_ms >= 0)
		g_string_append_printf(detail, "%" G_GINT64_FORMAT " ms",
				       u->downtime_ms);
	else
		g_string_append(detail, "unknown");
	if (u->stop_us && u->resume_us)
		g_string_append_printf(detail, ", STOP->RESUME %.2f ms",
				       (double)(u->resume_us - u->stop_us) / 1000);
	return 0;
}

/* ------------------------------------------------------------------ */
/* After the commit: source-exit, manifest-in                         */

static int renice_threads(pid_t pid, int nice)
{
	char path[64];
	GDir *dir;
	const char *name;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = g_dir_open(path, 0, NULL);
	if (!dir)
		return 0;
	/* Linux nice values are per thread; exited or foreign ones are skipped. */
	while ((name = g_dir_read_name(dir)))
		if (setpriority(PRIO_PROCESS, (id_t)atoi(name), nice) == 0)
			n++;
	g_dir_close(dir);
	return n;
}

static gboolean on_pidfd(gint fd, GIOCondition cond, gpointer data)
{
	*(bool *)data = true;
	return G_SOURCE_REMOVE;
}

static bool source_exit_seen(struct upgrade *u)
{
	return u->source_exited;
}

static void write_pidfile(struct upgrade *u)
{
	g_autofree char *path = g_path_is_absolute(u->targ.pidfile) ?
		g_strdup(u->targ.pidfile) :
		g_build_filename(u->src_cwd, u->targ.pidfile, NULL);
	g_autofree char *tmp = g_strdup_printf("%s.fdh-%d", path, getpid());
	g_autofree char *text = g_strdup_printf("%d\n", u->target_pid);
	int r;

	unlink(tmp);
	r = write_new_file(tmp, text, strlen(text), 0644);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		cli_warn("upgrade: writing the target's pid to the pidfile %s: %s",
			 path, strerror(-r));
	}
}

static int phase_source_exit(struct upgrade *u, GString *detail)
{
	size_t restored;
	guint watch;
	int lowered;

	if (u->keep_source) {
		g_autoptr(JsonNode) st = NULL;

		if (qmp_execute(u->src, "query-status", NULL, &st,
				u->timeout_ms, NULL))
			u->source_status = g_strdup(member_string(st, "status"));
		g_string_printf(detail, "pid %d kept alive (--keep-source)",
				u->src_pid);
		return 0;
	}
	/* Its teardown (unmapping guest RAM) must not compete for the CPU
	 * with the target's first milliseconds. */
	lowered = renice_threads(u->src_pid, 19);
	/* The source may close the socket before it answers. */
	qmp_execute(u->src, "quit", NULL, NULL, u->timeout_ms, NULL);
	/* A pidfd polls readable once its process has exited. */
	watch = g_unix_fd_add(u->src_pidfd, G_IO_IN, on_pidfd, &u->source_exited);
	if (!wait_until(u, source_exit_seen, u->timeout_ms)) {
		g_source_remove(watch);
		u->source_status = g_strdup("running");
		cli_warn("upgrade: the source pid %d did not exit within %d ms after quit: kill it (the target owns the guest)",
			 u->src_pid, u->timeout_ms);
		g_string_printf(detail, "pid %d did not exit", u->src_pid);
		return 0;
	}
	u->source_status = g_strdup("exited");
	/* First the sockets' names: clients are waiting to connect. */
	restored = restore_names(u);
	if (u->targ.pidfile)
		write_pidfile(u);
	g_string_printf(detail, "pid %d quit (%d threads at nice 19)",
			u->src_pid, lowered);
	if (restored)
		g_string_append_printf(detail, ", %zu socket name%s restored",
				       restored, restored > 1 ? "s" : "");
	return 0;
}

static int phase_manifest_in(struct upgrade *u, GString *detail)
{
	g_autoptr(JsonNode) info = NULL;
	g_autofree guchar *raw = NULL;
	g_autofree char *path = g_build_filename(u->workdir, "stream.fdhm",
						 NULL);
	const char *b64;
	gsize len;
	int r;

	/* After the switch, off the guest's critical path. */
	if ((r = execute(u, u->dst, "x-query-fd-handover", NULL, &info)) < 0)
		return r;
	b64 = member_string(info, "received");
	if (!b64)
		return fail(u, -ENOENT, "the target has no manifest from the stream");
	raw = g_base64_decode(b64, &len);
	if ((r = write_new_file(path, raw, len, 0600)) < 0)
		return fail(u, r, "writing %s: %s", path, strerror(-r));
	u->stream_manifest = g_steal_pointer(&path);
	g_string_assign(detail, u->stream_manifest);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Rollback                                                           */

static bool source_final(struct upgrade *u)
{
	return status_final(u->src_mig_status) || u->src_closed;
}

static bool target_reaped(struct upgrade *u)
{
	return u->target_exited;
}

/*
 * Before the commit point: ask the source how its migration ends.  true
 * when it rolled back; false when the source completed after all (the
 * commit happened: go forward).
 */
static bool rollback(struct upgrade *u)
{
	g_autoptr(JsonNode) st = NULL;
	const char *status = NULL;

	/* Bounded by each command's timeout, not cut short by a signal or
	 * by the target's exit (the kill below makes one). */
	if (u->src)
		qmp_set_abort(u->src, NULL);
	if (u->dst)
		qmp_set_abort(u->dst, NULL);
	if (u->migrate_sent) {
		if (u->src && !u->src_closed && !source_final(u)) {
			qmp_execute(u->src, "migrate_cancel", NULL, NULL,
				    u->timeout_ms, NULL);
			if (!wait_until(u, source_final, ROLLBACK_WAIT_MS)) {
				g_autoptr(JsonNode) info = NULL;

				/* No event: its status, once. */
				if (qmp_execute(u->src, "query-migrate", NULL,
						&info, u->timeout_ms, NULL) &&
				    status_final(member_string(info, "status"))) {
					g_free(u->src_mig_status);
					u->src_mig_status = g_strdup(
						member_string(info, "status"));
				}
			}
		}
		if (u->src_mig_status &&
		    strcmp(u->src_mig_status, "completed") == 0) {
			u->committed = true;
			return false;
		}
		if (!status_final(u->src_mig_status)) {
			/*
			 * The source died or went silent during the switch:
			 * whether it committed only the target knows.  Without
			 * the commit it exits by itself (patch 0009), with it
			 * it is the only copy of the guest: never kill it.
			 */
			wait_until(u, target_reaped, u->timeout_ms);
			if (!u->target_exited) {
				u->undecided = true;
				return true;
			}
		}
	}
	u->rolled_back = g_strdup(u->error);
	if (u->target_pid && !u->target_exited) {
		kill(-u->target_pid, SIGKILL);
		kill(u->target_pid, SIGKILL);	/* if setsid had not run yet */
		if (!wait_until(u, target_reaped, ROLLBACK_WAIT_MS))
			cli_warn("upgrade: the target pid %d was killed but not reaped",
				 u->target_pid);
	}
	if (!u->src || u->src_closed) {
		u->source_status = g_strdup("unknown (its monitor closed)");
		return true;
	}
	if (qmp_execute(u->src, "query-status", NULL, &st, u->timeout_ms, NULL))
		status = member_string(st, "status");
	if (u->src_was_running && status && strcmp(status, "running")) {
		g_autoptr(GError) e = NULL;

		if (!qmp_execute(u->src, "cont", NULL, NULL, u->timeout_ms, &e))
			cli_warn("upgrade: resuming the source: %s", e->message);
		g_clear_pointer(&st, json_node_unref);
		status = NULL;
		if (qmp_execute(u->src, "query-status", NULL, &st,
				u->timeout_ms, NULL))
			status = member_string(st, "status");
	}
	if (u->caps_changed && u->saved_caps) {
		g_autoptr(JsonNode) a = caps_args(json_node_copy(u->saved_caps));
		g_autoptr(GError) e = NULL;

		if (!qmp_execute(u->src, "migrate-set-capabilities", a, NULL,
				 u->timeout_ms, &e))
			cli_warn("upgrade: restoring the source's capabilities: %s",
				 e->message);
	}
	if (u->params_changed && u->saved_mode) {
		g_autoptr(JsonNode) a = qmp_args("mode", QMP_STR, u->saved_mode,
						 NULL);
		g_autoptr(GError) e = NULL;

		if (!qmp_execute(u->src, "migrate-set-parameters", a, NULL,
				 u->timeout_ms, &e))
			cli_warn("upgrade: restoring the source's migration mode: %s",
				 e->message);
	}
	u->source_status = g_strdup(status ? status : "unknown");
	return true;
}

/* ------------------------------------------------------------------ */
/* Driver                                                             */

typedef int (*phase_fn)(struct upgrade *u, GString *detail);

static double ms_since(gint64 t0)
{
	return (double)(g_get_monotonic_time() - t0) / 1000;
}

static int phase(struct upgrade *u, const char *name, phase_fn fn)
{
	g_autoptr(GString) detail = g_string_new(NULL);
	gint64 t0 = g_get_monotonic_time();
	struct phase_rec rec;
	int r;

	r = fn(u, detail);
	/* The first cause, not its echo in whatever was waiting. */
	if (r < 0 && !u->committed && u->signal) {
		r = fail(u, -EINTR, "interrupted by %s", u->signal);
	} else if (r < 0 && !u->committed && u->target_exited) {
		g_autofree char *how = wait_status_text(u->target_wstatus);
		g_autofree char *tail = log_tail(u);

		r = fail(u, -EIO, "the target exited with %s%s", how, tail);
	}
	if (r < 0) {
		char *msg = g_strdup_printf("%s: %s", name, u->error);

		g_free(u->error);
		u->error = msg;
		return r;
	}
	rec.name = g_strdup(name);
	rec.ms = ms_since(t0);
	rec.detail = g_strdup(detail->str);
	g_array_append_val(u->phases, rec);
	if (!cli.json)
		printf("%-12s %9.1f ms  %s\n", name, rec.ms, rec.detail);
	fflush(stdout);
	return 0;
}

static int make_workdir(struct upgrade *u)
{
	g_autoptr(GError) e = NULL;

	if (u->workdir_opt) {
		if (mkdir(u->workdir_opt, 0700) < 0 && errno != EEXIST)
			return fail(u, -errno, "--workdir %s: %s",
				    u->workdir_opt, strerror(errno));
		u->workdir = g_canonicalize_filename(u->workdir_opt, NULL);
	} else {
		u->workdir = g_dir_make_tmp("fdh-upgrade-XXXXXX", &e);
		if (!u->workdir)
			return fail(u, -EIO, "a work directory: %s", e->message);
	}
	return 0;
}

static void set_paths(struct upgrade *u)
{
	u->manifest_path = g_build_filename(u->workdir, "source.fdhm", NULL);
	u->dst_qmp_path = g_build_filename(u->workdir, "target-qmp.sock", NULL);
	u->log_path = g_build_filename(u->workdir, "target.log", NULL);
}

static int run_phases(struct upgrade *u)
{
	int r;

	if (u->dry_run) {
		u->workdir = g_strdup(u->workdir_opt ? u->workdir_opt :
				      "$TMPDIR/fdh-upgrade-XXXXXX");
		set_paths(u);
		if ((r = phase(u, "source", phase_source)) < 0)
			return r;
		if ((r = build_target_argv(u)) < 0) {
			char *msg = g_strdup_printf("target: %s", u->error);

			g_free(u->error);
			u->error = msg;
		}
		return r;
	}
	if ((r = phase(u, "source", phase_source)) < 0)
		return r;
	if ((r = make_workdir(u)) < 0)
		return r;
	set_paths(u);
	if ((r = phase(u, "manifest", phase_manifest)) < 0 ||
	    (r = phase(u, "target", phase_target)) < 0 ||
	    (r = phase(u, "prepare", phase_prepare)) < 0 ||
	    (r = phase(u, "migrate", phase_migrate)) < 0 ||
	    (r = phase(u, "switch", phase_switch)) < 0) {
		/* Nothing was started or changed yet: nothing to undo. */
		if (u->committed || (!u->target_pid && !u->caps_changed))
			return r;
		if (rollback(u)) {
			/* Undecided: the source is gone, the target may own
			 * the guest; a living source keeps its names. */
			if (u->undecided && source_gone(u))
				restore_names(u);
			else if (!u->undecided)
				drop_kept_names(u);
			return r;
		}
		/* The source completed after all: the commit happened. */
		g_clear_pointer(&u->error, g_free);
		reset_abort(u);
		if ((r = phase(u, "switch", phase_switch)) < 0)
			return r;
	}
	phase(u, "source-exit", phase_source_exit);
	if (phase(u, "manifest-in", phase_manifest_in) < 0) {
		u->warning = g_steal_pointer(&u->error);
		cli_warn("upgrade: %s", u->warning);
		/* Its monitor may have gone with the target itself, whose
		 * exit (seen by the child watch, not yet run) decides below.
		 * Only then: a target that is merely slow is left alone. */
		if (u->dst && qmp_is_closed(u->dst))
			wait_until(u, target_reaped, ROLLBACK_WAIT_MS);
	}
	/* The target took the guest over and then went: nothing runs the
	 * guest now (the committed source refuses to), so this is no upgrade
	 * to report as done. */
	if (u->target_exited) {
		g_autofree char *how = wait_status_text(u->target_wstatus);

		return fail(u, -EIO,
			    "the target (pid %d) exited with %s after it took the guest over",
			    u->target_pid, how);
	}
	return 0;
}

static int run(struct upgrade *u)
{
	int r = run_phases(u);

	warn_kept_names(u);
	return r;
}

/* ------------------------------------------------------------------ */
/* Report                                                             */

static void print_plan(struct upgrade *u)
{
	const struct fdh_manifest *m = u->manifest;

	printf("\nplan (dry run: nothing was started)\n");
	printf("  source QMP      %s\n", u->src_qmp_path);
	printf("  source cwd      %s\n", u->src_cwd);
	printf("  hand over       %zu fds:", m->n_entries);
	for (size_t i = 0; i < m->n_entries; i++) {
		char owner[FDH_OWNER_MAX * 4];

		cli_escape(owner, sizeof(owner), m->entries[i].owner);
		printf(" %s.%u %s fd %d%s", owner, m->entries[i].index,
		       fdh_kind_name(m->entries[i].kind) ?
		       fdh_kind_name(m->entries[i].kind) : "?",
		       m->entries[i].remote_fd, i + 1 < m->n_entries ? "," : "");
	}
	printf("\n");
	if (u->targ.n_inherit_fds) {
		printf("  inherited       ");
		for (size_t i = 0; i < u->targ.n_inherit_fds; i++)
			printf("%s%d", i ? " " : "", u->targ.inherit_fds[i]);
		printf(" (the target holds them at the same numbers)\n");
	}
	if (u->targ.pidfile)
		printf("  pidfile         %s (the target's pid, once the source has exited)\n",
		       u->targ.pidfile);
	if (u->targ.had_S)
		printf("  -S              dropped: the target runs if the source runs\n");
	for (char **n = u->targ.notes; n && *n; n++)
		printf("  note            %s\n", *n);
	printf("  then            prepare, migrate (unix:%s/migrate.sock), switch, %s, manifest-in\n",
	       u->workdir, u->keep_source ? "source kept" : "source-exit");
	printf("  target argv    ");
	for (char **a = u->target_argv; *a; a++) {
		g_autofree char *q = g_shell_quote(*a);

		printf(" %s", q);
	}
	printf("\n");
}

static void emit_json(struct upgrade *u, bool ok)
{
	json_begin_object(NULL);
	json_bool("ok", ok);
	json_bool("committed", u->committed);
	if (u->undecided)
		json_bool("undecided", true);
	if (u->dry_run)
		json_bool("dry_run", true);
	if (u->rolled_back)
		json_string("rolled_back", u->rolled_back);
	if (u->source_status)
		json_string("source_status", u->source_status);
	json_begin_array("phases");
	for (guint i = 0; i < u->phases->len; i++) {
		struct phase_rec *p = &g_array_index(u->phases, struct phase_rec, i);

		json_begin_object(NULL);
		json_string("phase", p->name);
		json_double("ms", p->ms);
		json_string("detail", p->detail);
		json_end_object();
	}
	json_end_array();
	if (u->workdir)
		json_string("workdir", u->workdir);
	if (u->src_pid)
		json_i64("source_pid", u->src_pid);
	if (u->manifest) {
		json_string("manifest", u->manifest_path);
		json_u64("entries", u->manifest->n_entries);
	}
	if (u->target_argv) {
		json_begin_array("target_argv");
		for (char **a = u->target_argv; *a; a++)
			json_string(NULL, *a);
		json_end_array();
		json_begin_array("inherit_fds");
		for (size_t i = 0; i < u->targ.n_inherit_fds; i++)
			json_i64(NULL, u->targ.inherit_fds[i]);
		json_end_array();
		json_string("pidfile", u->targ.pidfile);
		json_bool("had_S", u->targ.had_S);
	}
	if (u->target_pid)
		json_i64("target_pid", u->target_pid);
	if (u->migrate_sent)
		json_double("migrate_wall", u->migrate_wall);
	if (u->stop_us)
		json_double("stop_wall", (double)u->stop_us / G_USEC_PER_SEC);
	if (u->resume_us)
		json_double("resume_wall", (double)u->resume_us / G_USEC_PER_SEC);
	if (ok && !u->dry_run) {
		if (u->downtime_ms >= 0)
			json_i64("qemu_downtime_ms", u->downtime_ms);
		else
			json_null("qemu_downtime_ms");
		json_double("migrate_to_running_ms",
			    (double)(u->t_running - u->t_migrate) / 1000);
		if (u->stop_us && u->resume_us)
			json_double("stop_to_resume_ms",
				    (double)(u->resume_us - u->stop_us) / 1000);
		json_string("stream_manifest", u->stream_manifest);
	}
	if (u->warning)
		json_string("warning", u->warning);
	json_double("total_ms", ms_since(u->t_start));
}

static void print_text(struct upgrade *u)
{
	if (u->dry_run) {
		print_plan(u);
		return;
	}
	printf("\nupgrade complete in %.1f ms: target pid %d runs the VM\n",
	       ms_since(u->t_start), u->target_pid);
	if (u->downtime_ms >= 0)
		printf("  QEMU downtime        %" G_GINT64_FORMAT
		       " ms (the source's, STOP to its commit: it includes the"
		       " target's load; stock QEMU's ends at its last byte)\n",
		       u->downtime_ms);
	if (u->stop_us && u->resume_us)
		printf("  source STOP->RESUME  %.2f ms\n",
		       (double)(u->resume_us - u->stop_us) / 1000);
	printf("  migrate->running     %.2f ms\n",
	       (double)(u->t_running - u->t_migrate) / 1000);
	if (u->stream_manifest)
		printf("  manifest (stream)    %s\n", u->stream_manifest);
	if (u->keep_source)
		printf("  source               pid %d kept (%s): quit it yourself\n",
		       u->src_pid, u->source_status ? u->source_status : "?");
}

/* After a failure: what state things are in, and what to do. */
static int report_failure(struct upgrade *u)
{
	g_autofree char *hint = NULL;
	int code = cli_exit_code(u->err);

	if (u->committed && u->target_exited) {
		hint = g_strdup_printf(
			"the guest is gone with the target (pid %d): the source (pid %d) handed it over and cannot run it again (it is fenced); quit the source if it still runs and start the guest afresh",
			u->target_pid, u->src_pid);
		code = CLI_EXIT_FAILURE;
	} else if (u->committed) {
		hint = g_strdup_printf(
			"the target (pid %d) owns the guest now: check it with query-status on %s; never resume the source (pid %d): it is fenced; quit it once the target runs",
			u->target_pid, u->dst_qmp_path, u->src_pid);
		code = CLI_EXIT_FAILURE;
	} else if (u->undecided) {
		hint = g_strdup_printf(
			"the source (pid %d) did not say how its migration ended; the target (pid %d) was left alone: it runs the guest if the source committed, and exits by itself within seconds if not; check it with query-status on %s",
			u->src_pid, u->target_pid, u->dst_qmp_path);
		code = CLI_EXIT_FAILURE;
	} else if (u->rolled_back) {
		hint = g_strdup_printf(
			"rolled back: the target was killed, the source is %s; the target's log is %s%s%s",
			u->source_status, u->log_path,
			u->hint ? "; " : "", u->hint ? u->hint : "");
		if (code == CLI_EXIT_OK || code == CLI_EXIT_NO_PROCESS)
			code = CLI_EXIT_FAILURE;
	} else {
		hint = g_strdup_printf("nothing was changed%s%s",
				       u->hint ? ": " : "",
				       u->hint ? u->hint : "");
	}
	if (cli.json)
		emit_json(u, false);
	return cli_fail_exit(code, u->err, hint, "upgrade: %s", u->error);
}

static void upgrade_free(struct upgrade *u)
{
	if (u->child_watch)
		g_source_remove(u->child_watch);
	qmp_free(u->dst);
	qmp_free(u->src);
	fdh_source_free(u->fsrc);
	fdh_manifest_free(u->manifest);
	g_free(u->manifest_buf);
	free(u->src_argv);
	if (u->have_targ)
		qemu_target_argv_free(&u->targ);
	g_strfreev(u->target_argv);
	if (u->saved_caps)
		json_node_unref(u->saved_caps);
	for (guint i = 0; i < u->phases->len; i++) {
		struct phase_rec *p = &g_array_index(u->phases, struct phase_rec, i);

		g_free(p->name);
		g_free(p->detail);
	}
	g_array_free(u->phases, TRUE);
	g_object_unref(u->abort);
	g_free(u->workdir);
	g_free(u->src_qmp_path);
	g_free(u->src_cwd);
	g_free(u->src_status);
	g_free(u->manifest_path);
	g_free(u->dst_qmp_path);
	g_free(u->log_path);
	g_free(u->saved_mode);
	g_free(u->src_mig_status);
	g_free(u->error);
	g_free(u->hint);
	g_free(u->rolled_back);
	g_free(u->source_status);
	g_free(u->stream_manifest);
	g_free(u->warning);
	for (size_t i = 0; i < u->n_listeners; i++)
		g_free((char *)u->listeners[i].path);
	g_free(u->listeners);
	g_array_free(u->kept, TRUE);
}

static int parse_options(struct upgrade *u, int argc, char **argv,
			 int *ret_exit)
{
	enum {
		OPT_QMP = 0x100, OPT_PID, OPT_NEW_QEMU, OPT_TIMEOUT,
		OPT_WORKDIR, OPT_WRAPPER, OPT_DRY_RUN, OPT_KEEP_SOURCE,
	};
	static const struct option opts[] = {
		CLI_COMMON_LONGOPTS,
		{ "qmp", required_argument, NULL, OPT_QMP },
		{ "pid", required_argument, NULL, OPT_PID },
		{ "new-qemu", required_argument, NULL, OPT_NEW_QEMU },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "workdir", required_argument, NULL, OPT_WORKDIR },
		{ "target-wrapper", required_argument, NULL, OPT_WRAPPER },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "keep-source", no_argument, NULL, OPT_KEEP_SOURCE },
		{ 0 }
	};
	double timeout_s = DEFAULT_TIMEOUT_S;
	char *end;
	int c;

	while ((c = cli_getopt(argc, argv, ":" CLI_COMMON_SHORTOPTS, opts,
			       usage, ret_exit)) != -1) {
		switch (c) {
		case CLI_GETOPT_EXIT:
			return -1;
		case OPT_QMP:
			u->qmp_opt = optarg;
			break;
		case OPT_PID:
			if (cli_parse_pid(optarg, &u->pid_opt) < 0) {
				*ret_exit = cli_usage("upgrade: --pid '%s' is not a pid",
						      optarg);
				return -1;
			}
			break;
		case OPT_NEW_QEMU:
			u->new_qemu = optarg;
			break;
		case OPT_TIMEOUT:
			errno = 0;
			timeout_s = strtod(optarg, &end);
			if (errno || *end || !(timeout_s > 0) || timeout_s > 86400) {
				*ret_exit = cli_usage("upgrade: --timeout '%s' is not a number of seconds in (0, 86400]",
						      optarg);
				return -1;
			}
			break;
		case OPT_WORKDIR:
			u->workdir_opt = optarg;
			break;
		case OPT_WRAPPER:
			u->wrapper = optarg;
			break;
		case OPT_DRY_RUN:
			u->dry_run = true;
			break;
		case OPT_KEEP_SOURCE:
			u->keep_source = true;
			break;
		default:
			*ret_exit = cli_bad_option(c, argv);
			return -1;
		}
	}
	u->timeout_ms = (int)(timeout_s * 1000);
	if (optind < argc) {
		*ret_exit = cli_usage("upgrade: unexpected argument '%s'",
				      argv[optind]);
		return -1;
	}
	if (!u->qmp_opt && !u->pid_opt) {
		*ret_exit = cli_usage("upgrade: --qmp SOCKET or --pid PID is required");
		return -1;
	}
	if (!u->new_qemu) {
		*ret_exit = cli_usage("upgrade: --new-qemu PATH is required");
		return -1;
	}
	if (access(u->new_qemu, X_OK) < 0) {
		*ret_exit = cli_usage("upgrade: --new-qemu %s: not an executable: %s",
				      u->new_qemu, strerror(errno));
		return -1;
	}
	return 0;
}

int cmd_upgrade(int argc, char **argv)
{
	struct upgrade u = {
		.downtime_ms = -1,
		.t_start = g_get_monotonic_time(),
	};
	guint sigs[3];
	int code, r;

	if (parse_options(&u, argc, argv, &code) < 0)
		return code;
	u.abort = g_cancellable_new();
	u.phases = g_array_new(FALSE, TRUE, sizeof(struct phase_rec));
	u.kept = g_array_new(FALSE, TRUE, sizeof(struct kept_name));
	g_array_set_clear_func(u.kept, kept_name_clear);
	/* Caught, not fatal: before the commit they roll back. */
	sigs[0] = g_unix_signal_add(SIGINT, on_sigint, &u);
	sigs[1] = g_unix_signal_add(SIGTERM, on_sigterm, &u);
	sigs[2] = g_unix_signal_add(SIGHUP, on_sighup, &u);

	r = run(&u);
	if (r < 0) {
		code = report_failure(&u);
	} else {
		code = CLI_EXIT_OK;
		if (cli.json) {
			emit_json(&u, true);
			json_end();
		} else {
			print_text(&u);
		}
	}
	for (size_t i = 0; i < G_N_ELEMENTS(sigs); i++)
		g_source_remove(sigs[i]);
	upgrade_free(&u);
	return code;
}
