// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The commit point and rollback of `fd-handover upgrade`, without QEMU:
 * the built command against two fake QEMUs that speak just enough QMP.
 * This test binary doubles as both: FDH_FAKE_SOURCE / FDH_FAKE_TARGET in
 * the environment make it a fake source / target playing a scenario, and
 * every command it receives is appended to FDH_FAKE_LOG (source) so that
 * the test can check what the driver asked for.
 *
 * The fake source's manifest is a real one naming its own process (no
 * entries), so the driver identifies it by pid and start time as it would
 * a QEMU; the fake target is the driver's --new-qemu.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "fdhandover.h"
#include "harness.h"

#define RUN_TIMEOUT_S 30

/* ------------------------------------------------------------------ */
/* The fake QEMU (a separate process: blocking I/O, exits on EOF)      */

struct fake {
	bool source;
	const char *scenario;
	int fd;
	FILE *in;
	FILE *log;
	const char *status;	/* query-status */
	const char *mig;	/* query-migrate status */
	char *manifest;		/* base64 */
	const char *path;	/* its QMP socket's name */
};

static void say(struct fake *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(struct fake *f, const char *fmt, ...)
{
	g_autofree char *line = NULL;
	va_list ap;

	va_start(ap, fmt);
	line = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (dprintf(f->fd, "%s\n", line) < 0)
		_exit(0);
}

static void event(struct fake *f, const char *name, const char *status)
{
	if (status)
		say(f, "{\"event\": \"%s\", \"data\": {\"status\": \"%s\"}, \"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 5}}",
		    name, status);
	else
		say(f, "{\"event\": \"%s\", \"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 5}}",
		    name);
}

static bool is(const struct fake *f, const char *scenario)
{
	return strcmp(f->scenario, scenario) == 0;
}

/* The canned reply of cmd, then what the scenario does after it. */
static void answer(struct fake *f, const char *cmd, const char *id)
{
	if (strcmp(cmd, "query-status") == 0) {
		say(f, "{\"return\": {\"status\": \"%s\", \"running\": %s}, \"id\": %s}",
		    f->status, strcmp(f->status, "running") ? "false" : "true", id);
	} else if (strcmp(cmd, "x-query-fd-handover") == 0) {
		say(f, "{\"return\": {\"role\": \"%s\", \"entries\": 0, \"manifest\": \"%s\"%s%s%s}, \"id\": %s}",
		    f->source ? "source" : "target", f->manifest,
		    f->source ? "" : ", \"received\": \"", f->source ? "" : f->manifest,
		    f->source ? "" : "\"", id);
	} else if (strcmp(cmd, "query-migrate-capabilities") == 0) {
		/* Patch 0016 adds x-fd-handover-quit; older sources lack it. */
		say(f, "{\"return\": [{\"capability\": \"events\", \"state\": false}, {\"capability\": \"return-path\", \"state\": false}, {\"capability\": \"x-fd-handover\", \"state\": false}, %s{\"capability\": \"xbzrle\", \"state\": false}], \"id\": %s}",
		    is(f, "commit-quits") ? "{\"capability\": \"x-fd-handover-quit\", \"state\": false}, " : "",
		    id);
	} else if (strcmp(cmd, "query-migrate-parameters") == 0) {
		say(f, "{\"return\": {\"mode\": \"normal\", \"announce-rounds\": 5}, \"id\": %s}", id);
	} else if (strcmp(cmd, "query-migrate") == 0) {
		say(f, "{\"return\": {\"status\": \"%s\", \"downtime\": 3}, \"id\": %s}",
		    f->mig, id);
	} else if (strcmp(cmd, "cont") == 0 && !f->source) {
		say(f, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"not expected\"}, \"id\": %s}", id);
	} else {
		say(f, "{\"return\": {}, \"id\": %s}", id);
	}

	/* As QEMU 10.0 does: a listener's name goes with it. */
	if (strcmp(cmd, "quit") == 0) {
		if (f->source)
			unlink(f->path);
		_exit(0);
	}
	if (strcmp(cmd, "cont") == 0)
		f->status = "running";
	if (f->source && strcmp(cmd, "migrate") == 0) {
		f->status = "paused";
		event(f, "STOP", NULL);
		f->mig = "active";
		event(f, "MIGRATION", f->mig);
		/* A status that is not a string: QEMU's JSON is input. */
		if (is(f, "odd-status"))
			say(f, "{\"event\": \"MIGRATION\", \"data\": {\"status\": 5}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 0}}");
		if (is(f, "commit") || is(f, "commit-no-resume") ||
		    is(f, "odd-status") || is(f, "commit-quits"))
			f->mig = "completed";
		else if (is(f, "fail"))
			f->mig = "failed";
		if (strcmp(f->mig, "active"))
			event(f, "MIGRATION", f->mig);
	}
	/* x-fd-handover-quit: committed, it exits by itself, with no
	 * teardown (its listener keeps its name). */
	if (f->source && strcmp(cmd, "migrate") == 0 && is(f, "commit-quits"))
		_exit(0);
	/* Killed in the switch, before it could say how it ended. */
	if (f->source && strcmp(cmd, "migrate") == 0 && is(f, "die-in-switch"))
		_exit(9);
	if (f->source && strcmp(cmd, "migrate_cancel") == 0) {
		/* After a late commit migrate_cancel does nothing. */
		f->mig = is(f, "late-commit") ? "completed" : "cancelled";
		if (!is(f, "late-commit"))
			f->status = "running";	/* QEMU resumes a failed source */
		event(f, "MIGRATION", f->mig);
	}
	if (!f->source && strcmp(cmd, "migrate-incoming") == 0 &&
	    is(f, "resume")) {
		/* As the patched QEMU does once the source has its 'loaded':
		 * the driver's exit no longer takes the target along. */
		prctl(PR_SET_PDEATHSIG, 0);
		f->status = "running";
		event(f, "MIGRATION", "completed");
		event(f, "RESUME", NULL);
	}
	/* Resumed, then crashed: the guest went with it. */
	if (!f->source && strcmp(cmd, "migrate-incoming") == 0 &&
	    is(f, "resume-then-die")) {
		prctl(PR_SET_PDEATHSIG, 0);
		event(f, "MIGRATION", "completed");
		event(f, "RESUME", NULL);
		_exit(6);
	}
}

static int fake_qemu(int argc, char **argv, bool source, const char *scenario)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fdh_manifest *m = fdh_manifest_new();
	struct fake f = {
		.source = source, .scenario = scenario,
		.status = source ? "running" : "paused", .mig = "none",
	};
	const char *log = getenv("FDH_FAKE_LOG");
	char line[8192];
	void *buf;
	size_t len;
	int lfd;

	/* The source's manifest names itself; the target echoes its file. */
	if (!m || fdh_manifest_set_source(m, getpid()) < 0 ||
	    fdh_manifest_encode(m, &buf, &len) < 0)
		return 10;
	f.manifest = g_base64_encode(buf, len);
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "-qmp") == 0 &&
		    g_str_has_prefix(argv[i + 1], "unix:"))
			snprintf(sa.sun_path, sizeof(sa.sun_path), "%.*s",
				 (int)strcspn(argv[i + 1] + 5, ","), argv[i + 1] + 5);
	if (!sa.sun_path[0])
		return 11;
	f.path = sa.sun_path;
	f.log = source && log ? fopen(log, "a") : NULL;
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 1) < 0)
		return 12;
	f.fd = accept(lfd, NULL, NULL);
	if (f.fd < 0)
		return 13;
	f.in = fdopen(dup(f.fd), "r");
	say(&f, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 10}}, \"capabilities\": []}}");
	while (fgets(line, sizeof(line), f.in)) {
		g_autoptr(JsonParser) p = json_parser_new();
		g_autofree char *id = NULL;
		g_autofree char *args = NULL;
		JsonObject *o;
		const char *cmd;

		if (!json_parser_load_from_data(p, line, -1, NULL))
			return 14;
		o = json_node_get_object(json_parser_get_root(p));
		cmd = json_object_get_string_member(o, "execute");
		id = json_to_string(json_object_get_member(o, "id"), FALSE);
		args = json_object_has_member(o, "arguments") ?
			json_to_string(json_object_get_member(o, "arguments"), FALSE) :
			g_strdup("");
		if (f.log) {
			fprintf(f.log, "%s %s\n", cmd, args);
			fflush(f.log);
		}
		answer(&f, cmd, id);
	}
	/* A target that resumed runs on, as QEMU would, its inherited fds
	 * with it, until the test kills it (or the alarm does). */
	if (!source && is(&f, "resume") && strcmp(f.status, "running") == 0) {
		alarm(RUN_TIMEOUT_S);
		for (;;)
			pause();
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The test side                                                      */

static const char *self_exe(void)
{
	static char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

	path[n > 0 ? n : 0] = '\0';
	return path;
}

static char *cli_path(void)
{
	const char *env = getenv("FDH_CLI");
	g_autofree char *dir = g_path_get_dirname(self_exe());

	if (env && *env)
		return g_strdup(env);
	return g_build_filename(dir, "..", "tools", "fd-handover", NULL);
}

FIXTURE(up) {
	char *dir;		/* the run's directory: sockets, logs, workdir */
	GPid source;		/* the fake source */
	GPid driver;		/* fd-handover upgrade, while it runs */
	int out;		/* the driver's stdout */
	JsonObject *report;	/* its JSON, once it ended */
	JsonParser *parser;
	int status;		/* its wait status */
	pid_t target;		/* from the report, 0 if none */
};

FIXTURE_SETUP(up)
{
	self->dir = g_dir_make_tmp("fdh-test-upgrade-XXXXXX", NULL);
	ASSERT_TRUE(self->dir, "a temporary directory");
}

FIXTURE_TEARDOWN(up)
{
	if (self->target > 0)
		kill(-self->target, SIGKILL);
	if (self->driver > 0)
		kill(self->driver, SIGKILL);
	if (self->source > 0) {
		kill(self->source, SIGKILL);
		waitpid(self->source, NULL, 0);
	}
	if (self->parser)
		g_object_unref(self->parser);
	if (self->dir) {
		g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", self->dir);

		if (system(cmd) != 0)
			TH_LOG("could not remove %s", self->dir);
	}
	g_free(self->dir);
}

static char *in_dir(FIXTURE(up) *self, const char *name)
{
	return g_build_filename(self->dir, name, NULL);
}

static bool start_source(FIXTURE(up) *self, const char *scenario)
{
	g_autofree char *sock = in_dir(self, "source.sock");
	g_autofree char *qmp = g_strdup_printf("unix:%s,server=on,wait=off", sock);
	g_autofree char *log = in_dir(self, "source.log");
	const char *argv[] = { self_exe(), "-name", "fake", "-qmp", qmp, NULL };
	char **env = g_get_environ();

	env = g_environ_setenv(env, "FDH_FAKE_SOURCE", scenario, TRUE);
	env = g_environ_setenv(env, "FDH_FAKE_LOG", log, TRUE);
	if (!g_spawn_async(self->dir, (char **)argv, env, G_SPAWN_DO_NOT_REAP_CHILD,
			   NULL, NULL, &self->source, NULL)) {
		g_strfreev(env);
		return false;
	}
	g_strfreev(env);
	for (int i = 0; i < 500 && access(sock, F_OK) < 0; i++)
		usleep(10000);
	return access(sock, F_OK) == 0;
}

/* Start the driver against the fake source; the fake target plays target. */
static bool start_driver(FIXTURE(up) *self, const char *target,
			 const char *timeout_s)
{
	g_autofree char *cli = cli_path();
	g_autofree char *sock = in_dir(self, "source.sock");
	g_autofree char *work = in_dir(self, "work");
	const char *argv[] = {
		cli, "-j", "upgrade", "--qmp", sock, "--new-qemu", self_exe(),
		"--workdir", work, "--timeout", timeout_s, NULL,
	};
	char **env = g_environ_setenv(g_get_environ(), "FDH_FAKE_TARGET",
				      target, TRUE);
	bool ok;

	ok = g_spawn_async_with_pipes(self->dir, (char **)argv, env,
				      G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
				      &self->driver, NULL, &self->out, NULL,
				      NULL);
	g_strfreev(env);
	return ok;
}

/* Wait for the driver and parse its report. */
static bool finish_driver(FIXTURE(up) *self)
{
	GString *out = g_string_new(NULL);
	char buf[4096];
	ssize_t n;

	while ((n = read(self->out, buf, sizeof(buf))) > 0)
		g_string_append_len(out, buf, n);
	close(self->out);
	waitpid(self->driver, &self->status, 0);
	self->driver = 0;
	self->parser = json_parser_new();
	if (!json_parser_load_from_data(self->parser, out->str, -1, NULL)) {
		TH_LOG("not JSON: %s", out->str);
		g_string_free(out, TRUE);
		return false;
	}
	g_string_free(out, TRUE);
	self->report = json_node_get_object(json_parser_get_root(self->parser));
	self->target = (pid_t)json_object_get_int_member_with_default(
		self->report, "target_pid", 0);
	return true;
}

/* Everything the driver asked the source, one "cmd args" per line. */
static char *source_log(FIXTURE(up) *self)
{
	g_autofree char *path = in_dir(self, "source.log");
	char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return g_strdup("");
	return text;
}

/* Wait until the source was asked cmd (a line starting with it). */
static bool source_asked(FIXTURE(up) *self, const char *cmd)
{
	g_autofree char *needle = g_strdup_printf("\n%s ", cmd);

	for (int i = 0; i < 1000; i++) {
		g_autofree char *log = source_log(self);
		g_autofree char *text = g_strconcat("\n", log, NULL);

		if (strstr(text, needle))
			return true;
		usleep(10000);
	}
	return false;
}

static bool asked(const char *log, const char *line)
{
	g_autofree char *text = g_strconcat("\n", log, NULL);
	g_autofree char *needle = g_strconcat("\n", line, NULL);

	return strstr(text, needle) != NULL;
}

static bool alive(pid_t pid)
{
	return pid > 0 && kill(pid, 0) == 0;
}

static bool gone_soon(pid_t pid)
{
	for (int i = 0; i < 500 && alive(pid); i++)
		usleep(10000);
	return !alive(pid);
}

static const char *member(JsonObject *o, const char *key)
{
	return json_object_get_string_member_with_default(o, key, "");
}

TEST_F_TIMEOUT(up, commit_then_resume_is_an_upgrade, RUN_TIMEOUT_S)
{
	g_autofree char *log = NULL;

	ASSERT_TRUE(start_source(self, "commit"), "fake source up");
	ASSERT_TRUE(start_driver(self, "resume", "10"));
	ASSERT_TRUE(finish_driver(self));
	log = source_log(self);
	ASSERT_EQ(WEXITSTATUS(self->status), 0, "exit 0: %s", member(self->report, "error"));
	ASSERT_TRUE(json_object_get_boolean_member(self->report, "ok"));
	ASSERT_TRUE(json_object_get_boolean_member(self->report, "committed"));
	EXPECT_FALSE(asked(log, "cont"), "a committed source is never resumed");
	EXPECT_TRUE(asked(log, "quit"), "the source is told to quit");
	EXPECT_STREQ(member(self->report, "source_status"), "exited");
	EXPECT_TRUE(alive(self->target), "the target runs on");
}

/*
 * A source that offers x-fd-handover-quit is asked to quit by itself once
 * committed (the target only gets the handover's own capabilities): a
 * driver killed after the commit then leaves no source behind.  Its
 * leaving before our quit is an ordinary end.
 */
TEST_F_TIMEOUT(up, a_source_that_can_quit_by_itself_is_asked_to, RUN_TIMEOUT_S)
{
	g_autofree char *log = NULL;

	ASSERT_TRUE(start_source(self, "commit-quits"), "fake source up");
	ASSERT_TRUE(start_driver(self, "resume", "10"));
	ASSERT_TRUE(finish_driver(self));
	log = source_log(self);
	ASSERT_EQ(WEXITSTATUS(self->status), 0, "exit 0: %s", member(self->report, "error"));
	ASSERT_TRUE(json_object_get_boolean_member(self->report, "committed"));
	EXPECT_TRUE(asked(log, "migrate-set-capabilities {\"capabilities\":[{\"capability\":\"x-fd-handover\",\"state\":true},{\"capability\":\"return-path\",\"state\":true},{\"capability\":\"events\",\"state\":true},{\"capability\":\"x-fd-handover-quit\",\"state\":true}]}"),
		    "the source is asked to quit once committed:\n%s", log);
	EXPECT_FALSE(asked(log, "cont"), "a committed source is never resumed");
	EXPECT_STREQ(member(self->report, "source_status"), "exited");
	EXPECT_TRUE(alive(self->target), "the target runs on");
}

/* A connect() to path: 0 or -errno. */
static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r;

	if (c < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	r = connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	close(c);
	return r;
}

/* A socket file left at path by a process that is gone. */
static bool stale_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ok = s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (s >= 0)
		close(s);
	return ok;
}

/*
 * The source's monitor listens by path (-qmp unix:P,server=on): the target
 * serves it from the source's listening socket (fd=N, inherited), and P,
 * which the source unlinks when it quits, names that socket afterwards.
 */
TEST_F_TIMEOUT(up, a_monitor_listening_by_path_moves_to_the_target_with_its_name,
	       RUN_TIMEOUT_S)
{
	g_autofree char *sock = in_dir(self, "source.sock");
	g_autofree char *sock_keep = in_dir(self, "source.sock.fdh-keep");
	g_autofree char *cmdline_path = NULL;
	g_autofree char *cmdline = NULL;
	gsize len = 0;

	ASSERT_TRUE(start_source(self, "commit"), "fake source up");
	ASSERT_TRUE(start_driver(self, "resume", "10"));
	ASSERT_TRUE(finish_driver(self));
	ASSERT_EQ(WEXITSTATUS(self->status), 0, "exit 0: %s", member(self->report, "error"));
	ASSERT_TRUE(alive(self->target), "the target runs on");
	/* The test's child: reaped here, or it would linger as a zombie. */
	ASSERT_EQ(waitpid(self->source, NULL, 0), self->source, "the source quit");
	self->source = 0;
	cmdline_path = g_strdup_printf("/proc/%d/cmdline", self->target);
	ASSERT_TRUE(g_file_get_contents(cmdline_path, &cmdline, &len, NULL));
	for (gsize i = 0; i + 1 < len; i++)
		if (!cmdline[i])
			cmdline[i] = ' ';
	EXPECT_TRUE(strstr(cmdline, "-chardev socket,") && strstr(cmdline, ",fd=") &&
		    strstr(cmdline, "mode=control"),
		    "the source's monitor becomes fd=N of its listener: %s", cmdline);
	EXPECT_FALSE(access(sock_keep, F_OK) == 0, "the kept name is renamed back");
	/* The source exited: only the target holds the socket now. */
	EXPECT_EQ(connect_to(sock), 0, "%s reaches the target's listener", sock);
}

TEST_F_TIMEOUT(up, a_stale_kept_name_of_a_killed_driver_is_replaced, RUN_TIMEOUT_S)
{
	g_autofree char *sock = in_dir(self, "source.sock");
	g_autofree char *sock_keep = in_dir(self, "source.sock.fdh-keep");

	ASSERT_TRUE(start_source(self, "commit"), "fake source up");
	ASSERT_TRUE(stale_socket(sock_keep), "a stale %s", sock_keep);
	ASSERT_TRUE(start_driver(self, "resume", "10"));
	ASSERT_TRUE(finish_driver(self));
	ASSERT_EQ(WEXITSTATUS(self->status), 0, "exit 0: %s", member(self->report, "error"));
	ASSERT_EQ(waitpid(self->source, NULL, 0), self->source, "the source quit");
	self->source = 0;
	EXPECT_FALSE(access(sock_keep, F_OK) == 0, "the kept name is renamed back");
	EXPECT_EQ(connect_to(sock), 0, "%s reaches the target's listener", sock);
}

TEST_F_TIMEOUT(up, a_name_that_cannot_be_kept_does_not_stop_the_upgrade, RUN_TIMEOUT_S)
{
	g_autofree char *sock = in_dir(self, "source.sock");
	g_autofree char *sock_keep = in_dir(self, "source.sock.fdh-keep");
	struct stat st;

	ASSERT_TRUE(start_source(self, "commit"), "fake source up");
	/* Not a socket: not the driver's to replace, so link() fails. */
	ASSERT_TRUE(g_file_set_contents(sock_keep, "someone's", -1, NULL));
	ASSERT_TRUE(start_driver(self, "resume", "10"));
	ASSERT_TRUE(finish_driver(self));
	ASSERT_EQ(WEXITSTATUS(self->status), 0, "the upgrade goes on: %s",
		  member(self->report, "error"));
	ASSERT_TRUE(json_object_get_boolean_member(self->report, "committed"));
	ASSERT_EQ(waitpid(self->source, NULL, 0), self->source, "the source quit");
	self->source = 0;
	EXPECT_TRUE(alive(self->target), "the target runs");
	EXPECT_TRUE(stat(sock_keep, &st) == 0 && S_ISREG(st.st_mode),
		    "the file in the way is left alone");
	EXPECT_EQ(connect_to(sock), -ENOENT,
		  "the source took the name along when it quit");
}

TEST_F_TIMEOUT(up, failed_migration_rolls_back_and_restores_settings, RUN_TIMEOUT_S)
{
	g_autofree char *log = NULL;
	g_autofree char *sock = in_dir(self, "source.sock");
	g_autofree char *sock_keep = in_dir(self, "source.sock.fdh-keep");

	ASSERT_TRUE(start_source(self, "fail"), "fake source up");
	ASSERT_TRUE(start_driver(self, "never", "10"));
	ASSERT_TRUE(finish_driver(self));
	log = source_log(self);
	ASSERT_EQ(WEXITSTATUS(self->status), 1);
	ASSERT_FALSE(json_object_get_boolean_member(self->report, "committed"));
	ASSERT_TRUE(strlen(member(self->report, "rolled_back")) > 0, "says it rolled back");
	EXPECT_TRUE(gone_soon(self->target), "the target's process group was killed");
	EXPECT_TRUE(asked(log, "cont "), "the source ran, so it is resumed:\n%s", log);
	EXPECT_TRUE(asked(log, "migrate-set-capabilities {\"capabilities\":[{\"capability\":\"events\",\"state\":false},{\"capability\":\"return-path\",\"state\":false},{\"capability\":\"x-fd-handover\",\"state\":false}]}"),
		    "the capabilities are put back as they were:\n%s", log);
	EXPECT_TRUE(asked(log, "migrate-set-parameters {\"mode\":\"normal\"}"),
		    "and the mode:\n%s", log);
	EXPECT_FALSE(asked(log, "quit"), "the source is not told to quit");
	EXPECT_STREQ(member(self->report, "source_status"), "running");
	EXPECT_FALSE(access(sock_keep, F_OK) == 0,
		     "the kept name of the source's socket is removed");
	EXPECT_TRUE(access(sock, F_OK) == 0, "the source keeps its socket's name");
}

/* After the commit a signal ends the driver, and nothing else. */
TEST_F_TIMEOUT(up, sigterm_after_commit_neither_kills_nor_resumes, RUN_TIMEOUT_S)
{
	g_autofree char *log = NULL;

	ASSERT_TRUE(start_source(self, "commit-no-resume"), "fake source up");
	ASSERT_TRUE(start_driver(self, "never", "20"));
	ASSERT_TRUE(source_asked(self, "migrate"), "the migration starts");
	usleep(300000);		/* the source's 'completed' is read */
	kill(self->driver, SIGTERM);
	ASSERT_TRUE(finish_driver(self));
	log = source_log(self);
	ASSERT_EQ(WEXITSTATUS(self->status), 1, "not a success");
	ASSERT_TRUE(json_object_get_boolean_member(self->report, "committed"));
	EXPECT_FALSE(json_object_has_member(self->report, "rolled_back"));
	EXPECT_FALSE(asked(log, "cont"), "the source is never resumed:\n%s", log);
	EXPECT_FALSE(asked(log, "migrate_cancel"), "nor cancelled:\n%s", log);
	EXPECT_TRUE(alive(self->target), "the target is never killed after the commit");
}

TEST_F_TIMEOUT(up, sigterm_before_commit_cancels_and_rolls_back, RUN_TIMEOUT_S)
{
	g_autofree char *log = NULL;

	ASSERT_TRUE(start_source(self, "hang"), "fake source up");
	ASSERT_TRUE(start_driver(self, "never", "20"));
	ASSERT_TRUE(source_asked(self, "migrate"), "the migration starts");
	usleep(100000);
	kill(self->driver, SIGTERM);
	ASSERT_TRUE(finish_driver(self));
	log = source_log(self);
	ASSERT_EQ(WEXITSTATUS(self->status), 1);
	ASSERT_TRUE(strstr(member(self->report, "error"), "SIGTERM"), "names the signal: %s",
		    member(self->report, "error"));
	ASSERT_FALSE(json_object_get_boolean_member(self->report, "committed"));
	EXPECT_TRUE(asked(log, "migrate_cancel"), "the source's migration is cancelled:\n%s", log);
	EXPECT_TRUE(gone_soon(self->target), "the target was killed");
	EXPECT_STREQ(member(self->report, "source_status"), "running");
}

TEST_F_TIMEOUT(up, a_cancel_that_finds_the_commit_goes_forward, RUN_TIMEOUT_S)
{
	g_autofree char *log = NULL;

	/* The source completes as the driver cancels: it committed. */
	ASSERT_TRUE(start_source(self, "late-commit"), "fake source up");
	ASSERT_TRUE(start_driver(self, "resume", "20"));
	ASSERT_TRUE(source_asked(self, "migrate"), "the migration starts");
	usleep(100000);
	kill(self->driver, SIGTERM);
	ASSERT_TRUE(finish_driver(self));
	log = source_log(self);
	ASSERT_EQ(WEXITSTATUS(self->status), 0, "the upgrade completes: %s",
		  member(self->report, "error"));
	ASSERT_TRUE(json_object_get_boolean_member(self->report, "committed"));
	EXPECT_FALSE(json_object_has_member(self->report, "rolled_back"));
	EXPECT_FALSE(asked(log, "cont"), "never resumed after the commit:\n%s", log);
	EXPECT_TRUE(alive(self->target), "the target is not killed");
}

TEST_F_TIMEOUT(up, after_commit_a_silent_target_is_left_alone, RUN_TIMEOUT_S)
{
	g_autofree char *log = NULL;
	const char *hint;

	ASSERT_TRUE(start_source(self, "commit-no-resume"), "fake source up");
	ASSERT_TRUE(start_driver(self, "never", "1"));
	ASSERT_TRUE(finish_driver(self));
	log = source_log(self);
	ASSERT_EQ(WEXITSTATUS(self->status), 1, "not a success");
	ASSERT_TRUE(json_object_get_boolean_member(self->report, "committed"));
	EXPECT_FALSE(json_object_has_member(self->report, "rolled_back"));
	EXPECT_FALSE(asked(log, "cont"), "the source is never resumed:\n%s", log);
	EXPECT_TRUE(alive(self->target), "the target is never killed after the commit");
	hint = member(self->report, "hint");
	EXPECT_TRUE(strstr(hint, "never resume the source"), "what to do: %s", hint);
}

TEST_F_TIMEOUT(up, a_target_that_dies_after_resuming_is_no_success, RUN_TIMEOUT_S)
{
	g_autofree char *log = NULL;
	const char *err;

	/* test_faults.py's "source quits" x SIGKILL target: the driver said ok. */
	ASSERT_TRUE(start_source(self, "commit"), "fake source up");
	ASSERT_TRUE(start_driver(self, "resume-then-die", "10"));
	ASSERT_TRUE(finish_driver(self));
	log = source_log(self);
	ASSERT_EQ(WEXITSTATUS(self->status), 1, "not a success");
	EXPECT_FALSE(json_object_get_boolean_member(self->report, "ok"));
	EXPECT_TRUE(json_object_get_boolean_member(self->report, "committed"));
	err = member(self->report, "error");
	EXPECT_TRUE(strstr(err, "exited with exit status 6 after it took the guest over"),
		    "error: %s", err);
	EXPECT_TRUE(strstr(member(self->report, "hint"), "guest is gone"),
		    "what to do: %s", member(self->report, "hint"));
	EXPECT_FALSE(asked(log, "cont"), "a committed source is never resumed:\n%s", log);
}

TEST_F_TIMEOUT(up, target_dying_before_its_monitor_changes_nothing, RUN_TIMEOUT_S)
{
	g_autofree char *log = NULL;

	ASSERT_TRUE(start_source(self, "commit"), "fake source up");
	ASSERT_TRUE(start_driver(self, "exit", "10"));
	ASSERT_TRUE(finish_driver(self));
	log = source_log(self);
	ASSERT_EQ(WEXITSTATUS(self->status), 1);
	ASSERT_TRUE(strstr(member(self->report, "error"), "the target exited with exit status 7"),
		    "error: %s", member(self->report, "error"));
	EXPECT_FALSE(asked(log, "migrate-set-capabilities"), "nothing was changed:\n%s", log);
	EXPECT_FALSE(asked(log, "cont"));
}

TEST_F_TIMEOUT(up, a_migration_event_with_a_non_string_status_is_ignored, RUN_TIMEOUT_S)
{
	/* Found by fuzz-qmp: strcmp(NULL) on {"status": 5}. */
	ASSERT_TRUE(start_source(self, "odd-status"), "fake source up");
	ASSERT_TRUE(start_driver(self, "resume", "20"));
	ASSERT_TRUE(finish_driver(self));
	ASSERT_TRUE(WIFEXITED(self->status), "the driver did not crash");
	ASSERT_EQ(WEXITSTATUS(self->status), 0, "the upgrade completes: %s",
		  member(self->report, "error"));
}

TEST_F_TIMEOUT(up, a_source_dying_in_the_switch_leaves_the_target_to_decide, RUN_TIMEOUT_S)
{
	/*
	 * Whether the source committed before it died only the target knows
	 * (it exits by itself without the commit): killing it could kill the
	 * only copy of the guest.
	 */
	ASSERT_TRUE(start_source(self, "die-in-switch"), "fake source up");
	ASSERT_TRUE(start_driver(self, "never", "1"));
	ASSERT_TRUE(finish_driver(self));
	ASSERT_EQ(WEXITSTATUS(self->status), 1, "not a success");
	EXPECT_TRUE(alive(self->target), "the target is not killed");
	EXPECT_FALSE(json_object_has_member(self->report, "rolled_back"));
	EXPECT_TRUE(json_object_get_boolean_member(self->report, "undecided"));
	EXPECT_TRUE(strstr(member(self->report, "hint"), "exits by itself"),
		    "what to do: %s", member(self->report, "hint"));
}

int main(int argc, char **argv)
{
	const char *src = getenv("FDH_FAKE_SOURCE");
	const char *dst = getenv("FDH_FAKE_TARGET");

	if (src)
		return fake_qemu(argc, argv, true, src);
	if (dst && strcmp(dst, "exit") == 0)
		return 7;
	if (dst)
		return fake_qemu(argc, argv, false, dst);
	return th_main(argc, argv);
}
