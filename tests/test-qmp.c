// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The QMP client of fd-handover upgrade (tools/qmp.c) against a fake QMP
 * server: a child process that accepts one connection on a unix socket
 * and plays a script — greeting, replies, error replies, events between
 * replies, a hang, a close in the middle of a command, garbage.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "qmp.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 10}, \"package\": \"\"}, \"capabilities\": [\"oob\"]}}"
#define SHORT_MS 300

/* ------------------------------------------------------------------ */
/* The fake server (in the child: plain blocking I/O)                 */

struct server {
	int fd;
	FILE *in;
};

static void srv_send(struct server *s, const char *line)
{
	size_t len = strlen(line);

	if (write(s->fd, line, len) != (ssize_t)len || write(s->fd, "\n", 1) != 1)
		_exit(3);
}

/* The next command: its name (g_free) and id (as JSON text, g_free). */
static char *srv_recv(struct server *s, char **ret_id)
{
	g_autoptr(JsonParser) p = json_parser_new();
	char line[4096];
	JsonObject *o;

	if (!fgets(line, sizeof(line), s->in))
		_exit(0);	/* the client closed: the script ends */
	if (!json_parser_load_from_data(p, line, -1, NULL))
		_exit(4);
	o = json_node_get_object(json_parser_get_root(p));
	*ret_id = json_to_string(json_object_get_member(o, "id"), FALSE);
	return g_strdup(json_object_get_string_member(o, "execute"));
}

/* Expect cmd; answer with the "return" value ret (JSON text). */
static void srv_reply(struct server *s, const char *cmd, const char *ret)
{
	g_autofree char *id = NULL;
	g_autofree char *got = srv_recv(s, &id);
	g_autofree char *line = NULL;

	if (strcmp(got, cmd))
		_exit(5);
	line = g_strdup_printf("{\"return\": %s, \"id\": %s}", ret, id);
	srv_send(s, line);
}

static void srv_event(struct server *s, const char *name, const char *data,
		      int us)
{
	g_autofree char *line = g_strdup_printf(
		"{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": %d}, \"event\": \"%s\"%s%s}",
		us, name, data ? ", \"data\": " : "", data ? data : "");

	srv_send(s, line);
}

static void srv_hello(struct server *s)
{
	srv_send(s, GREETING);
	srv_reply(s, "qmp_capabilities", "{}");
}

static void serve_basic(struct server *s)
{
	srv_hello(s);
	srv_reply(s, "query-status", "{\"status\": \"running\", \"running\": true}");
	srv_recv(s, &(char *){ NULL });
}

static void serve_errors(struct server *s)
{
	g_autofree char *id = NULL;
	char line[512];

	srv_hello(s);
	for (int i = 0; i < 3; i++) {
		static const char *const classes[] = {
			"CommandNotFound", "GenericError", "SomethingNew",
		};

		g_free(srv_recv(s, &id));
		snprintf(line, sizeof(line),
			 "{\"error\": {\"class\": \"%s\", \"desc\": \"it went wrong %d\"}, \"id\": %s}",
			 classes[i], i, id);
		g_clear_pointer(&id, g_free);
		srv_send(s, line);
	}
	srv_recv(s, &id);
}

static void serve_events(struct server *s)
{
	g_autofree char *id = NULL;
	g_autofree char *line = NULL;

	srv_hello(s);
	g_free(srv_recv(s, &id));
	srv_event(s, "STOP", NULL, 1);
	srv_event(s, "MIGRATION", "{\"status\": \"active\"}", 2);
	/* A reply to nobody's command is ignored. */
	srv_send(s, "{\"return\": {}, \"id\": 9999}");
	line = g_strdup_printf("{\"return\": {}, \"id\": %s}", id);
	srv_send(s, line);
	srv_event(s, "MIGRATION", "{\"status\": \"completed\"}", 3);
	srv_reply(s, "query-migrate", "{\"status\": \"completed\", \"downtime\": 4}");
	srv_recv(s, &id);
}

/* What QEMU never sends but a monitor could: types json-glib turns to NULL. */
static void serve_malformed(struct server *s)
{
	static const char *const replies[] = {	/* each with the id after it */
		"\"error\": {\"class\": \"GenericError\", \"desc\": 5},",
		"\"error\": {\"class\": 7, \"desc\": {}},",
		"",
	};
	g_autofree char *id = NULL;
	g_autofree char *line = NULL;

	srv_hello(s);
	for (size_t i = 0; i < G_N_ELEMENTS(replies); i++) {
		g_free(srv_recv(s, &id));
		line = g_strdup_printf("{%s \"id\": %s}", replies[i], id);
		g_clear_pointer(&id, g_free);
		srv_send(s, line);
		g_clear_pointer(&line, g_free);
	}
	g_free(srv_recv(s, &id));
	srv_send(s, "{\"event\": 5, \"data\": {\"status\": \"x\"}}");
	srv_send(s, "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 9223372036854775807, \"microseconds\": 1}}");
	line = g_strdup_printf("{\"return\": {}, \"id\": %s}", id);
	srv_send(s, line);
	srv_recv(s, &id);
}

static void serve_hang_on_command(struct server *s)
{
	srv_hello(s);
	for (;;)
		pause();
}

static void serve_no_greeting(struct server *s)
{
	for (;;)
		pause();
}

static void serve_close_mid_command(struct server *s)
{
	g_autofree char *id = NULL;

	srv_hello(s);
	g_free(srv_recv(s, &id));
	_exit(0);
}

static void serve_garbage(struct server *s)
{
	g_autofree char *id = NULL;

	srv_hello(s);
	g_free(srv_recv(s, &id));
	srv_send(s, "this is not JSON");
	srv_recv(s, &id);
}

struct fake {
	char dir[64];
	char path[96];
	pid_t pid;
};

/* Listen before forking: the client's connect never races the server. */
static int fake_start(struct fake *f, void (*serve)(struct server *))
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd;

	snprintf(f->dir, sizeof(f->dir), "/tmp/fdh-test-qmp-XXXXXX");
	if (!mkdtemp(f->dir))
		return -errno;
	snprintf(f->path, sizeof(f->path), "%s/qmp.sock", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 1) < 0)
		return -errno;
	f->pid = fork();
	if (f->pid < 0)
		return -errno;
	if (f->pid == 0) {
		struct server s;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		s.fd = accept(lfd, NULL, NULL);
		if (s.fd < 0)
			_exit(2);
		s.in = fdopen(dup(s.fd), "r");
		serve(&s);
		_exit(0);
	}
	close(lfd);
	return 0;
}

static void fake_stop(struct fake *f)
{
	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
	}
	unlink(f->path);
	rmdir(f->dir);
}

/* ------------------------------------------------------------------ */
/* What the client saw                                                */

struct seen {
	char events[8][32];
	int64_t ts[8];
	int n_events;
	int closed;
	int n_events_at_reply;
};

static void on_event(struct qmp *q, const char *name, JsonObject *data,
		     int64_t ts, void *opaque)
{
	struct seen *s = opaque;

	if (s->n_events < 8) {
		snprintf(s->events[s->n_events], sizeof(s->events[0]), "%s%s%s",
			 name, data ? ":" : "",
			 data ? json_object_get_string_member(data, "status") : "");
		s->ts[s->n_events] = ts;
	}
	s->n_events++;
}

static void on_closed(struct qmp *q, const GError *why, void *opaque)
{
	((struct seen *)opaque)->closed++;
}

static gboolean cancel_it(gpointer c)
{
	g_cancellable_cancel(c);
	return G_SOURCE_REMOVE;
}

static void iterate_ms(int ms)
{
	gint64 end = g_get_monotonic_time() + ms * 1000;

	while (g_get_monotonic_time() < end)
		g_main_context_iteration(NULL, FALSE);
}

FIXTURE(qmp) {
	struct fake fake;	/* the server child and its socket */
	struct qmp *q;		/* the client, NULL until connected */
	struct seen seen;	/* events and closes the client reported */
};

FIXTURE_SETUP(qmp)
{
	self->fake.pid = -1;
}

FIXTURE_TEARDOWN(qmp)
{
	qmp_free(self->q);
	fake_stop(&self->fake);
}

/* Start the fake server with script serve and connect to it. */
#define CONNECT(serve)							\
	do {								\
		g_autoptr(GError) _e = NULL;				\
		ASSERT_EQ(fake_start(&self->fake, serve), 0, "fake server"); \
		self->q = qmp_connect(self->fake.path, "fake", 5000, NULL, &_e); \
		ASSERT_TRUE(self->q, "connect: %s", _e ? _e->message : "?"); \
		qmp_set_handlers(self->q, on_event, on_closed, &self->seen); \
	} while (0)

TEST_F(qmp, greeting_capabilities_and_a_reply)
{
	g_autoptr(GError) e = NULL;
	g_autoptr(JsonNode) ret = NULL;
	JsonObject *ver;

	CONNECT(serve_basic);
	ver = json_object_get_object_member(qmp_greeting(self->q), "version");
	ASSERT_EQ(json_object_get_int_member(json_object_get_object_member(ver, "qemu"),
					     "major"), 10, "the greeting is kept");
	ASSERT_TRUE(qmp_execute(self->q, "query-status", NULL, &ret, 5000, &e),
		    "query-status: %s", e ? e->message : "");
	ASSERT_STREQ(json_object_get_string_member(json_node_get_object(ret), "status"),
		     "running");
}

TEST_F(qmp, error_replies_carry_class_and_desc)
{
	static const int codes[] = {
		QMP_ERROR_COMMAND_NOT_FOUND, QMP_ERROR_GENERIC, QMP_ERROR_GENERIC,
	};
	static const char *const classes[] = {
		"CommandNotFound", "GenericError", "GenericError",
	};

	CONNECT(serve_errors);
	for (int i = 0; i < 3; i++) {
		g_autoptr(GError) e = NULL;
		g_autofree char *desc = g_strdup_printf("it went wrong %d", i);

		ASSERT_FALSE(qmp_execute(self->q, "cmd", NULL, NULL, 5000, &e),
			     "an error reply fails the command");
		ASSERT_EQ(e->domain, QMP_ERROR);
		ASSERT_EQ(e->code, codes[i], "class of reply %d: %s", i, e->message);
		ASSERT_STREQ(qmp_error_class(e), classes[i]);
		ASSERT_TRUE(strstr(e->message, desc), "desc in '%s'", e->message);
		ASSERT_TRUE(strstr(e->message, "fake: cmd: "),
			    "the message names connection and command: '%s'",
			    e->message);
	}
}

TEST_F(qmp, unknown_error_class_is_generic_and_named)
{
	g_autoptr(GError) e = NULL;

	CONNECT(serve_errors);
	qmp_execute(self->q, "a", NULL, NULL, 5000, NULL);
	qmp_execute(self->q, "b", NULL, NULL, 5000, NULL);
	ASSERT_FALSE(qmp_execute(self->q, "c", NULL, NULL, 5000, &e));
	ASSERT_EQ(e->code, QMP_ERROR_GENERIC);
	ASSERT_TRUE(strstr(e->message, "(class SomethingNew)"),
		    "an unknown class is not lost: '%s'", e->message);
}

TEST_F(qmp, malformed_replies_fail_and_odd_events_keep_a_name)
{
	static const int codes[] = {
		QMP_ERROR_GENERIC, QMP_ERROR_GENERIC, QMP_ERROR_PROTOCOL,
	};

	CONNECT(serve_malformed);
	for (size_t i = 0; i < G_N_ELEMENTS(codes); i++) {
		g_autoptr(GError) e = NULL;

		ASSERT_FALSE(qmp_execute(self->q, "cmd", NULL, NULL, 5000, &e),
			     "reply %zu is no success", i);
		ASSERT_EQ(e->domain, QMP_ERROR);
		ASSERT_EQ(e->code, codes[i], "reply %zu: %s", i, e->message);
		ASSERT_TRUE(strstr(e->message, "fake: cmd: "),
			    "the message names connection and command: '%s'",
			    e->message);
	}
	ASSERT_TRUE(qmp_execute(self->q, "events", NULL, NULL, 5000, NULL));
	ASSERT_EQ(self->seen.n_events, 2);
	ASSERT_STREQ(self->seen.events[0], ":x", "a name that is no string is \"\"");
	ASSERT_STREQ(self->seen.events[1], "STOP");
	ASSERT_EQ(self->seen.ts[1], 0, "a timestamp out of range is none");
	ASSERT_FALSE(qmp_is_closed(self->q), "none of this closes the connection");
}

TEST_F(qmp, events_between_replies_arrive_in_order)
{
	g_autoptr(GError) e = NULL;
	g_autoptr(JsonNode) ret = NULL;
	gint64 end;

	CONNECT(serve_events);
	ASSERT_TRUE(qmp_execute(self->q, "migrate", NULL, NULL, 5000, &e),
		    "migrate: %s", e ? e->message : "");
	ASSERT_EQ(self->seen.n_events, 2,
		  "STOP and MIGRATION active came before the reply");
	ASSERT_STREQ(self->seen.events[0], "STOP");
	ASSERT_STREQ(self->seen.events[1], "MIGRATION:active");
	ASSERT_EQ(self->seen.ts[0], 1700000000LL * 1000000 + 1, "timestamp in us");
	/* The event after the reply comes with no command waiting. */
	end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	while (self->seen.n_events < 3 && g_get_monotonic_time() < end)
		g_main_context_iteration(NULL, TRUE);
	ASSERT_EQ(self->seen.n_events, 3);
	ASSERT_STREQ(self->seen.events[2], "MIGRATION:completed");
	ASSERT_TRUE(qmp_execute(self->q, "query-migrate", NULL, &ret, 5000, &e),
		    "the stray reply id 9999 did not confuse the next command");
	ASSERT_EQ(json_object_get_int_member(json_node_get_object(ret), "downtime"), 4);
}

TEST_F(qmp, a_server_that_hangs_times_out)
{
	g_autoptr(GError) e = NULL;
	gint64 t0;

	CONNECT(serve_hang_on_command);
	t0 = g_get_monotonic_time();
	ASSERT_FALSE(qmp_execute(self->q, "query-status", NULL, NULL, SHORT_MS, &e));
	ASSERT_TRUE(g_error_matches(e, QMP_ERROR, QMP_ERROR_TIMEOUT),
		    "timeout, got: %s", e->message);
	ASSERT_GE(g_get_monotonic_time() - t0, SHORT_MS * 1000LL);
	ASSERT_LT(g_get_monotonic_time() - t0, 5000 * 1000LL,
		  "the timeout is the command's, not something longer");
	ASSERT_FALSE(qmp_is_closed(self->q), "a timeout does not close");
}

TEST_F(qmp, no_greeting_times_out_the_connect)
{
	g_autoptr(GError) e = NULL;
	struct qmp *q;

	ASSERT_EQ(fake_start(&self->fake, serve_no_greeting), 0);
	q = qmp_connect(self->fake.path, "fake", SHORT_MS, NULL, &e);
	ASSERT_TRUE(q == NULL, "no greeting, no connection");
	ASSERT_TRUE(g_error_matches(e, QMP_ERROR, QMP_ERROR_TIMEOUT),
		    "got: %s", e->message);
}

TEST_F(qmp, a_close_mid_command_fails_it_and_reports_the_close)
{
	g_autoptr(GError) e = NULL;
	g_autoptr(GError) e2 = NULL;

	CONNECT(serve_close_mid_command);
	ASSERT_FALSE(qmp_execute(self->q, "quit", NULL, NULL, 5000, &e));
	ASSERT_TRUE(g_error_matches(e, QMP_ERROR, QMP_ERROR_CLOSED),
		    "closed, got: %s", e->message);
	ASSERT_EQ(self->seen.closed, 1, "on_closed called once");
	ASSERT_TRUE(qmp_is_closed(self->q));
	ASSERT_EQ(qmp_send(self->q, "x", NULL, 0, NULL, NULL, &e2), 0,
		  "nothing is sent on a closed connection");
	ASSERT_TRUE(g_error_matches(e2, QMP_ERROR, QMP_ERROR_CLOSED));
}

TEST_F(qmp, garbage_from_the_server_ends_the_connection)
{
	g_autoptr(GError) e = NULL;

	CONNECT(serve_garbage);
	ASSERT_FALSE(qmp_execute(self->q, "query-status", NULL, NULL, 5000, &e));
	ASSERT_TRUE(g_error_matches(e, QMP_ERROR, QMP_ERROR_CLOSED),
		    "got: %s", e->message);
	ASSERT_TRUE(strstr(e->message, "not a QMP message"), "why: %s", e->message);
}

TEST_F(qmp, the_abort_cancellable_ends_a_wait_at_once)
{
	g_autoptr(GCancellable) abort = g_cancellable_new();
	g_autoptr(GError) e = NULL;
	gint64 t0;

	CONNECT(serve_hang_on_command);
	qmp_set_abort(self->q, abort);
	g_timeout_add(50, cancel_it, abort);
	t0 = g_get_monotonic_time();
	ASSERT_FALSE(qmp_execute(self->q, "migrate", NULL, NULL, 10000, &e));
	ASSERT_TRUE(g_error_matches(e, QMP_ERROR, QMP_ERROR_ABORTED),
		    "got: %s", e->message);
	ASSERT_LT(g_get_monotonic_time() - t0, 5000 * 1000LL);
	/* The forgotten command's timeout must not fire into freed memory. */
	iterate_ms(100);
}

TEST(connect_to_nothing_says_not_found_or_refused)
{
	g_autoptr(GError) e = NULL;
	g_autoptr(GError) e2 = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/fdh-test-qmp-XXXXXX";
	int fd;

	ASSERT_TRUE(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
	ASSERT_TRUE(!qmp_connect(sa.sun_path, "x", 1000, NULL, &e));
	ASSERT_TRUE(g_error_matches(e, G_IO_ERROR, G_IO_ERROR_NOT_FOUND),
		    "the driver retries on this: %s", e->message);
	/* A socket file nobody listens on (a QEMU that died). */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ASSERT_TRUE(!qmp_connect(sa.sun_path, "x", 1000, NULL, &e2));
	ASSERT_TRUE(g_error_matches(e2, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED),
		    "got: %s", e2->message);
	unlink(sa.sun_path);
	rmdir(dir);
}

TEST(args_builder_makes_an_object)
{
	g_autoptr(JsonNode) a = qmp_args("uri", QMP_STR, "unix:/x",
					 "announce-rounds", QMP_INT, 0,
					 "on", QMP_BOOL, 1, NULL);
	g_autofree char *text = json_to_string(a, FALSE);

	ASSERT_STREQ(text, "{\"uri\":\"unix:/x\",\"announce-rounds\":0,\"on\":true}");
}

TEST_HARNESS_MAIN
