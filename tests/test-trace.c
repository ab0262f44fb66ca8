// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The eBPF downtime tracer, end to end.  `fd-handover trace` runs as a
 * subprocess, attached to this test process (whose executable carries
 * libfdhandover's USDT probes: the library is linked in statically), while
 * the test pulls from a real source process; its --json output and the
 * maps it pins are checked.  Needs root and a kernel with BTF: without
 * them every test is skipped with the reason.
 */
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdhandover.h"
#include "fdsrc.h"
#include "harness.h"

#define TAP_NAME "fdhtr0"	/* in the source's netns */
#define WIRE_TAP "fdhtw0"	/* in the sender's netns */
#define BPFTOOL "/usr/sbin/bpftool"
#define PIN_DIR "/sys/fs/bpf/fd-handover"

/* ------------------------------------------------------------------ */
/* A small JSON reader: the tracer's and bpftool's output are checked   */
/* as documents, not as text.                                          */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
	enum jtype type;
	long long num;		/* numbers, truncated to integers */
	bool b;
	char *str;
	size_t n;		/* items of an array or object */
	struct jval *items;
	char **keys;		/* objects */
};

struct jparser {
	const char *p;
	int depth;
};

static void jskip(struct jparser *jp)
{
	while (*jp->p == ' ' || *jp->p == '\n' || *jp->p == '\t' || *jp->p == '\r')
		jp->p++;
}

static int jvalue(struct jparser *jp, struct jval *v);

static int jstring(struct jparser *jp, char **ret)
{
	size_t cap = 32, n = 0;
	char *s = malloc(cap);

	if (!s || *jp->p++ != '"')
		goto bad;
	while (*jp->p && *jp->p != '"') {
		char c = *jp->p++;

		if (c == '\\') {
			c = *jp->p++;
			if (c == 'u') {
				/* Non-ASCII is not compared here: keep a mark. */
				for (int i = 0; i < 4; i++)
					if (!*jp->p++)
						goto bad;
				c = '?';
			} else if (c == 'n') {
				c = '\n';
			} else if (c == 't') {
				c = '\t';
			} else if (c != '"' && c != '\\' && c != '/') {
				c = '?';
			}
		}
		if (n + 2 > cap) {
			char *g = realloc(s, cap *= 2);

			if (!g)
				goto bad;
			s = g;
		}
		s[n++] = c;
	}
	if (*jp->p++ != '"')
		goto bad;
	s[n] = '\0';
	*ret = s;
	return 0;
bad:
	free(s);
	return -EBADMSG;
}

static int jitems(struct jparser *jp, struct jval *v, bool object)
{
	char close = object ? '}' : ']';

	jp->p++;
	jskip(jp);
	if (*jp->p == close) {
		jp->p++;
		return 0;
	}
	for (;;) {
		struct jval *items = realloc(v->items, (v->n + 1) * sizeof(*items));
		char **keys;

		if (!items)
			return -ENOMEM;
		v->items = items;
		memset(&items[v->n], 0, sizeof(*items));
		if (object) {
			keys = realloc(v->keys, (v->n + 1) * sizeof(*keys));
			if (!keys)
				return -ENOMEM;
			v->keys = keys;
			keys[v->n] = NULL;
			jskip(jp);
			if (*jp->p != '"' || jstring(jp, &keys[v->n]) < 0)
				return -EBADMSG;
			jskip(jp);
			if (*jp->p++ != ':')
				return -EBADMSG;
		}
		v->n++;
		if (jvalue(jp, &items[v->n - 1]) < 0)
			return -EBADMSG;
		jskip(jp);
		if (*jp->p == ',') {
			jp->p++;
			continue;
		}
		if (*jp->p++ != close)
			return -EBADMSG;
		return 0;
	}
}

static int jscalar(struct jparser *jp, struct jval *v)
{
	char *end;

	if (strncmp(jp->p, "null", 4) == 0 || strncmp(jp->p, "true", 4) == 0) {
		v->type = *jp->p == 'n' ? J_NULL : J_BOOL;
		v->b = *jp->p == 't';
		jp->p += 4;
		return 0;
	}
	if (strncmp(jp->p, "false", 5) == 0) {
		v->type = J_BOOL;
		jp->p += 5;
		return 0;
	}
	v->type = J_NUM;
	v->num = strtoll(jp->p, &end, 10);
	if (end == jp->p)
		return -EBADMSG;
	strtod(jp->p, &end);	/* past a fraction or exponent */
	jp->p = end;
	return 0;
}

static int jvalue(struct jparser *jp, struct jval *v)
{
	int r;

	if (jp->depth >= 64)
		return -EBADMSG;
	jp->depth++;
	jskip(jp);
	if (*jp->p == '{' || *jp->p == '[') {
		v->type = *jp->p == '{' ? J_OBJ : J_ARR;
		r = jitems(jp, v, v->type == J_OBJ);
	} else if (*jp->p == '"') {
		v->type = J_STR;
		r = jstring(jp, &v->str);
	} else {
		r = jscalar(jp, v);
	}
	jp->depth--;
	return r;
}

static void jfree_items(struct jval *v)
{
	for (size_t i = 0; i < v->n; i++) {
		jfree_items(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
}

static void jfree(struct jval *v)
{
	if (v) {
		jfree_items(v);
		free(v);
	}
}

/* The whole text must be one JSON value; NULL otherwise. */
static struct jval *jparse(const char *text)
{
	struct jparser jp = { .p = text };
	struct jval *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	if (jvalue(&jp, v) < 0) {
		jfree(v);
		return NULL;
	}
	jskip(&jp);
	if (*jp.p) {
		jfree(v);
		return NULL;
	}
	return v;
}

static const struct jval *jget(const struct jval *v, const char *key)
{
	for (size_t i = 0; v && v->type == J_OBJ && i < v->n; i++)
		if (strcmp(v->keys[i], key) == 0)
			return &v->items[i];
	return NULL;
}

static long long jnum(const struct jval *v, const char *key)
{
	const struct jval *m = jget(v, key);

	return m && m->type == J_NUM ? m->num : LLONG_MIN;
}

static bool jbool(const struct jval *v, const char *key)
{
	const struct jval *m = jget(v, key);

	return m && m->type == J_BOOL && m->b;
}

/* A string member, "" when absent, "null" when null. */
static const char *jstr(const struct jval *v, const char *key)
{
	const struct jval *m = jget(v, key);

	if (!m)
		return "";
	return m->type == J_STR ? m->str : m->type == J_NULL ? "null" : "";
}

/* ------------------------------------------------------------------ */
/* The tracer as a subprocess                                         */

struct tracer {
	pid_t pid;
	int out, err;			/* its stdout and stderr */
	char err_text[2048];		/* what it said on stderr */
	size_t err_len;
};

/* build/tests/test-trace → build/tools/fd-handover */
static int cli_path(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	char *slash;

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	slash = strrchr(buf, '/');
	if (!slash || (size_t)(slash - buf) + sizeof("/tools/fd-handover") > size)
		return -ENOENT;
	strcpy(slash, "/tools/fd-handover");
	return access(buf, X_OK) == 0 ? 0 : -ENOENT;
}

static void read_err(struct tracer *t)
{
	ssize_t n = read(t->err, t->err_text + t->err_len,
			 sizeof(t->err_text) - 1 - t->err_len);

	if (n > 0) {
		t->err_len += (size_t)n;
		t->err_text[t->err_len] = '\0';
		if (t->err_len == sizeof(t->err_text) - 1)
			t->err_len = 0;	/* keep the tail */
	}
}

/*
 * Start `fd-handover trace ARGS...` and wait until it says "Tracing" (all
 * attached).  0, or -ENOENT (not built), or -EIO (it exited: err_text).
 */
static int tracer_start(struct tracer *t, const char *const *args)
{
	char path[PATH_MAX];
	const char *argv[32] = { path, "trace" };
	int out[2], err[2], n = 2;

	t->pid = -1;
	t->err_text[0] = '\0';
	t->err_len = 0;
	if (cli_path(path, sizeof(path)) < 0) {
		snprintf(t->err_text, sizeof(t->err_text),
			 "no tools/fd-handover next to this test");
		return -ENOENT;
	}
	while (args[n - 2] && n < 31) {
		argv[n] = args[n - 2];
		n++;
	}
	argv[n] = NULL;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		return -errno;
	t->pid = fork();
	if (t->pid < 0)
		return -errno;
	if (t->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(out[1], 1);
		dup2(err[1], 2);
		execv(path, (char **)argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	t->out = out[0];
	t->err = err[0];
	/* Loading and attaching takes well under a second; allow 20. */
	for (int waited = 0; waited < 20000; waited += 100) {
		struct pollfd p = { .fd = t->err, .events = POLLIN };

		if (strstr(t->err_text, "Tracing"))
			return 0;
		if (poll(&p, 1, 100) > 0) {
			size_t before = t->err_len;

			read_err(t);
			if (t->err_len == before && !strstr(t->err_text, "Tracing"))
				break;	/* EOF: it exited */
		}
	}
	/* Under --json its error is on stdout: keep that too. */
	kill(t->pid, SIGKILL);
	waitpid(t->pid, NULL, 0);
	t->pid = -1;
	if (t->err_len < sizeof(t->err_text) - 1) {
		ssize_t got = read(t->out, t->err_text + t->err_len,
				   sizeof(t->err_text) - 1 - t->err_len);

		if (got > 0)
			t->err_text[t->err_len + (size_t)got] = '\0';
	}
	t->err_text[strcspn(t->err_text, "\n")] = '\0';	/* one line for SKIP */
	close(t->out);
	close(t->err);
	return -EIO;
}

/* Cannot run here (no privilege, no BTF, no BPF): skip, do not fail. */
static bool tracer_unsupported(const char *err_text)
{
	return strstr(err_text, "BTF") || strstr(err_text, "not permitted") ||
	       strstr(err_text, "Permission denied") || strstr(err_text, "not built");
}

/*
 * Signal it (sig 0: let it stop by itself) and read its stdout to the end,
 * within timeout_s; returns the text (malloc'd) and its exit code.
 */
static char *tracer_finish(struct tracer *t, int sig, int timeout_s, int *ret_code)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);
	struct timespec start, now;
	int status = 0;

	if (!buf)
		return NULL;
	if (sig)
		kill(t->pid, sig);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = t->out, .events = POLLIN },
			{ .fd = t->err, .events = POLLIN },
		};
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > timeout_s) {
			kill(t->pid, SIGKILL);
			break;
		}
		if (poll(p, 2, 200) <= 0)
			continue;
		if (p[1].revents)
			read_err(t);
		if (!p[0].revents)
			continue;
		if (len + 4096 > cap) {
			char *g = realloc(buf, cap *= 2);

			if (!g)
				break;
			buf = g;
		}
		n = read(t->out, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	waitpid(t->pid, &status, 0);
	t->pid = -1;
	close(t->out);
	close(t->err);
	*ret_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return buf;
}

static void tracer_kill(struct tracer *t)
{
	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
		close(t->out);
		close(t->err);
		t->pid = -1;
	}
}

#define TRACER_START(tr, ...)						\
	do {								\
		const char *_args[] = { __VA_ARGS__, NULL };		\
		int _r = tracer_start(tr, _args);			\
									\
		if (_r == -ENOENT || (_r < 0 && tracer_unsupported((tr)->err_text))) \
			SKIP("the tracer cannot run here: %s", (tr)->err_text); \
		ASSERT_EQ(_r, 0, "starting the tracer: %s", (tr)->err_text); \
	} while (0)

/* ------------------------------------------------------------------ */

FIXTURE(trace) {
	struct tracer tr;		/* fd-handover trace, a subprocess */
	struct fdsrc child;		/* the source */
	struct fdh_source *src;
	struct jval *doc;		/* the tracer's --json output */
	char pid_arg[16];		/* this process, for --pid */
};

FIXTURE_SETUP(trace)
{
	self->tr.pid = -1;
	self->child.pid = -1;
	if (geteuid() != 0)
		SKIP("needs root: BPF, tracefs, bpffs");
	if (access("/sys/kernel/btf/vmlinux", R_OK) < 0)
		SKIP("the kernel has no BTF (/sys/kernel/btf/vmlinux): CO-RE cannot load");
	snprintf(self->pid_arg, sizeof(self->pid_arg), "%d", getpid());
}

FIXTURE_TEARDOWN(trace)
{
	tracer_kill(&self->tr);
	fdh_source_free(self->src);
	fdsrc_stop(&self->child);
	jfree(self->doc);
}

static int remote(struct fdsrc *child, struct fdh_pull_entry *e,
		  const char *label, const char *cmd)
{
	int fd = fdsrc_cmd(child, "%s", cmd);

	return fd < 0 ? fd : fdsrc_entry(child, fd, label, e);
}

/* Wait for the tracer's end and parse its JSON into self->doc. */
#define FINISH_JSON(sig)						\
	do {								\
		int _code;						\
		char *_out = tracer_finish(&self->tr, sig, 20, &_code);	\
									\
		ASSERT_TRUE(_out != NULL);				\
		ASSERT_EQ(_code, 0, "the tracer failed: %s", self->tr.err_text); \
		self->doc = jparse(_out);				\
		ASSERT_TRUE(self->doc != NULL, "--json output is not JSON: %.300s", _out); \
		free(_out);						\
	} while (0)

static const struct jval *find_syscall(const struct jval *doc, const char *name,
				       pid_t pid, long long ret)
{
	const struct jval *calls = jget(doc, "syscalls");

	for (size_t i = 0; calls && i < calls->n; i++) {
		const struct jval *c = &calls->items[i];

		if (strcmp(jstr(c, "name"), name) == 0 && jnum(c, "pid") == pid &&
		    jnum(c, "ret") == ret)
			return c;
	}
	return NULL;
}

/* pid called pidfd_open(target) successfully. */
static bool opened_pidfd_of(const struct jval *doc, pid_t pid, pid_t target)
{
	const struct jval *calls = jget(doc, "syscalls");

	for (size_t i = 0; calls && i < calls->n; i++) {
		const struct jval *c = &calls->items[i];
		const struct jval *args = jget(c, "args");

		if (strcmp(jstr(c, "name"), "pidfd_open") == 0 && jnum(c, "pid") == pid &&
		    jnum(c, "ret") >= 0 && args && args->n > 0 &&
		    args->items[0].num == target)
			return true;
	}
	return false;
}

TEST_F(trace, handover_shows_every_phase_in_order_with_pids_and_fds)
{
	static const char *const expect[] = {
		"source_opened", "pull", "pull_fd[0]", "pull_fd[1]", "pull_fd[2]",
		"verify[0]", "verify[1]", "verify[2]", "commit",
	};
	struct fdsrc_opts opts = { .netns = true, .tap = TAP_NAME };
	struct fdh_pull_report report;
	struct fdh_pull_entry e[3];
	const struct jval *phases, *pulls, *procs;
	size_t n_seen = 0;
	bool child_seen = false;
	int fds[3], r;

	/* No --duration: it must stop by itself, 1 s after the commit. */
	TRACER_START(&self->tr, "--json", "--no-pin", "--pid", self->pid_arg);
	r = fdsrc_start(&self->child, &opts);
	if (r == -EPERM || r == -ENOENT || r == -ENODEV)
		SKIP("cannot create a netns with a TAP here: %s", strerror(-r));
	ASSERT_EQ(r, 0);
	ASSERT_EQ(remote(&self->child, &e[0], "ram0", "memfd ram0 4096 0"), 0);
	ASSERT_EQ(remote(&self->child, &e[1], "kick0", "eventfd 1 0"), 0);
	ASSERT_EQ(remote(&self->child, &e[2], "net0.q0", "tap " TAP_NAME), 0);
	ASSERT_EQ(fdh_source_open_pid(self->child.pid, 0, &self->src), 0, "%s",
		  fdh_last_error()->msg);
	ASSERT_EQ(fdh_pull(self->src, e, 3, fds, &report), 0, "%s",
		  fdh_last_error()->msg);
	FINISH_JSON(0);

	phases = jget(self->doc, "phases");
	ASSERT_TRUE(phases && phases->type == J_ARR, "a phases array");
	for (size_t i = 0; i < phases->n; i++) {
		const struct jval *p = &phases->items[i];
		char name[64];

		if (jnum(p, "pid") != getpid())
			continue;
		if (jget(p, "index"))
			snprintf(name, sizeof(name), "%s[%lld]", jstr(p, "name"),
				 jnum(p, "index"));
		else
			snprintf(name, sizeof(name), "%s", jstr(p, "name"));
		ASSERT_LT(n_seen, 9, "an unexpected extra phase '%s'", name);
		EXPECT_STREQ(name, expect[n_seen], "phase %zu in time order", n_seen);
		EXPECT_EQ(jnum(p, "tid"), getpid(), "the puller's only thread");
		n_seen++;
	}
	ASSERT_EQ(n_seen, 9, "every phase of the handover is in the trace");

	pulls = jget(self->doc, "pulls");
	ASSERT_TRUE(pulls && pulls->n == 3, "one pull row per fd moved");
	for (size_t i = 0; i < 3; i++) {
		const struct jval *p = &pulls->items[i];

		EXPECT_EQ(jnum(p, "index"), i);
		EXPECT_EQ(jnum(p, "pid"), getpid(), "the puller");
		EXPECT_EQ(jnum(p, "source_pid"), self->child.pid, "the source");
		EXPECT_EQ(jnum(p, "remote_fd"), e[i].remote_fd, "fd %zu in the source", i);
		EXPECT_EQ(jnum(p, "local_fd"), fds[i], "fd %zu as we got it", i);
		EXPECT_STREQ(jstr(p, "errno"), "null");
		EXPECT_TRUE(jbool(p, "verified"));
		EXPECT_TRUE(jbool(p, "kcmp"), "proven by kcmp");
		/* The syscall under it, with its result and a latency. */
		const struct jval *c = find_syscall(self->doc, "pidfd_getfd", getpid(), fds[i]);

		ASSERT_TRUE(c != NULL, "pidfd_getfd returning %d is traced", fds[i]);
		EXPECT_TRUE(jbool(c, "entry_seen"));
		EXPECT_GT(jnum(c, "latency_ns"), 0);
		EXPECT_GT(jnum(p, "getfd_ns"), 0, "the pull knows its syscall's latency");
	}
	EXPECT_TRUE(opened_pidfd_of(self->doc, getpid(), self->child.pid),
		    "pidfd_open of the source is traced too");
	EXPECT_EQ(report.transport, FDH_TRANSPORT_PIDFD);

	/* The source was forked while traced: followed as a child. */
	procs = jget(self->doc, "processes");
	for (size_t i = 0; procs && i < procs->n; i++)
		if (jnum(&procs->items[i], "pid") == self->child.pid)
			child_seen = jnum(&procs->items[i], "parent") == getpid();
	EXPECT_TRUE(child_seen, "the source appears as our child");
	for (int i = 0; i < 3; i++)
		close(fds[i]);
}

/* ------------------------------------------------------------------ */
/* The wire                                                           */

#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

#define WIRE_FRAMES 600
#define WIRE_PAUSE_AFTER 300		/* frames before the pause */
#define WIRE_PAUSE_NS 50000000ll	/* 50 ms */

struct sender_result {
	int err;			/* 0 or -errno */
	/*
	 * Bounds of the largest gap between two writes as the kernel saw
	 * them: each write's tracepoint fires between the clock readings
	 * just before and just after it, wherever the scheduler put us.
	 */
	long long gap_lo_ns, gap_hi_ns;
	int frames;
};

static long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/*
 * In a fresh netns: a TAP, then WIRE_FRAMES frames at 1000 per second,
 * written to the TAP fd as a guest would, with one pause.  The frames go
 * to a MAC nobody has, with a local experimental ethertype, in a netns
 * nobody else uses: the stack drops them after the tracepoint.
 */
static void sender(int ready, int go)
{
	struct sender_result res = { 0 };
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	unsigned char frame[60] = {
		0x02, 0x00, 0x00, 0x00, 0x00, 0x01,	/* dst: nobody */
		0x02, 0x00, 0x00, 0x00, 0x00, 0x02,	/* src */
		0x88, 0xb5,				/* local experimental */
	};
	long long next, prev_before = 0, prev_after = 0;
	char byte;
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(CLONE_NEWNET) < 0)
		res.err = -errno;
	fd = res.err ? -1 : open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (!res.err && fd < 0)
		res.err = -errno;
	snprintf(ifr.ifr_name, IFNAMSIZ, WIRE_TAP);
	if (!res.err && ioctl(fd, TUNSETIFF, &ifr) < 0)
		res.err = -errno;
	if (!res.err)
		res.err = fdsrc_ip("link set %s up", WIRE_TAP);
	if (write(ready, &res, sizeof(res)) != sizeof(res) || res.err)
		_exit(1);
	if (read(go, &byte, 1) != 1)
		_exit(1);
	next = mono_ns();
	for (int i = 0; i < WIRE_FRAMES; i++) {
		struct timespec ts = { next / 1000000000ll, next % 1000000000ll };
		long long t, after;

		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		t = mono_ns();
		frame[14] = (unsigned char)i;
		if (write(fd, frame, sizeof(frame)) != sizeof(frame)) {
			res.err = -errno;
			break;
		}
		after = mono_ns();
		if (i > 0) {
			res.gap_lo_ns = MAX(res.gap_lo_ns, t - prev_after);
			res.gap_hi_ns = MAX(res.gap_hi_ns, after - prev_before);
		}
		prev_before = t;
		prev_after = after;
		res.frames++;
		next += 1000000;
		if (i + 1 == WIRE_PAUSE_AFTER)
			next += WIRE_PAUSE_NS;
	}
	if (write(ready, &res, sizeof(res)) != sizeof(res))
		_exit(1);
	_exit(0);
}

TEST_F(trace, wire_gap_matches_the_pause_the_sender_measured)
{
	struct sender_result res;
	const struct jval *wire, *dirs, *from = NULL;
	char netns[64];
	int ready[2], go[2];
	pid_t pid;
	long long gap;

	ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		sender(ready[1], go[0]);
	/* The fixture reaps it like a source: kill + waitpid. */
	self->child.pid = pid;
	ASSERT_EQ(read(ready[0], &res, sizeof(res)), sizeof(res));
	if (res.err == -EPERM || res.err == -ENOENT || res.err == -ENODEV)
		SKIP("cannot create a netns with a TAP here: %s", strerror(-res.err));
	ASSERT_EQ(res.err, 0, "sender setup: %s", strerror(-res.err));

	/* The TAP is named in the sender's namespace, as with --netns NAME. */
	snprintf(netns, sizeof(netns), "/proc/%d/ns/net", pid);
	TRACER_START(&self->tr, "--json", "--no-pin", "--no-sched", "--tap", WIRE_TAP,
		     "--netns", netns, "--duration", "10");
	ASSERT_EQ(write(go[1], "g", 1), 1);
	ASSERT_EQ(read(ready[0], &res, sizeof(res)), sizeof(res));
	ASSERT_EQ(res.err, 0, "sending: %s", strerror(-res.err));
	ASSERT_EQ(res.frames, WIRE_FRAMES);
	usleep(100000);		/* the last frames' events reach the reader */
	FINISH_JSON(SIGINT);

	wire = jget(self->doc, "wire");
	dirs = jget(wire, "directions");
	ASSERT_TRUE(dirs && dirs->type == J_ARR, "a wire section with directions");
	for (size_t i = 0; i < dirs->n; i++)
		if (strcmp(jstr(&dirs->items[i], "direction"), "from-guest") == 0)
			from = &dirs->items[i];
	ASSERT_TRUE(from != NULL, "writes to the TAP fd are the from-guest direction");
	EXPECT_EQ(jnum(from, "packets"), WIRE_FRAMES, "every frame seen once");
	EXPECT_TRUE(jbool(from, "exact"), "computed from every frame, none lost");
	gap = jnum(from, "largest_gap_ns");
	TH_LOG("sender: the largest gap is %.3f..%.3f ms; tracer %.3f ms",
	       res.gap_lo_ns / 1e6, res.gap_hi_ns / 1e6, gap / 1e6);
	EXPECT_GE(gap, res.gap_lo_ns, "no shorter than the sender's clock allows");
	EXPECT_LE(gap, res.gap_hi_ns, "no longer than the sender's clock allows");
	EXPECT_GE(res.gap_hi_ns, WIRE_PAUSE_NS, "the sender did pause");
}

/* ------------------------------------------------------------------ */

TEST_F(trace, refused_pidfd_getfd_shows_with_its_errno)
{
	const struct jval *calls, *pulls, *phases, *refused = NULL;
	struct fdh_pull_entry e;
	bool rollback = false;
	int fd = -1;

	TRACER_START(&self->tr, "--json", "--no-pin", "--pid", self->pid_arg);
	ASSERT_EQ(fdsrc_start(&self->child, NULL), 0);
	ASSERT_EQ(remote(&self->child, &e, "ram0", "memfd ram0 4096 0"), 0);
	ASSERT_EQ(fdh_source_open_pid(self->child.pid, 0, &self->src), 0, "%s",
		  fdh_last_error()->msg);
	/* After the tracer started: its own pidfd_getfd-free work is not
	 * ours to break. */
	ASSERT_EQ(fdsrc_deny_syscall("pidfd_getfd", EPERM), 0);
	ASSERT_EQ(fdh_pull(self->src, &e, 1, &fd, NULL), -EPERM,
		  "no cooperation socket: the refusal is final");
	FINISH_JSON(0);

	calls = jget(self->doc, "syscalls");
	for (size_t i = 0; calls && i < calls->n; i++) {
		const struct jval *c = &calls->items[i];

		if (strcmp(jstr(c, "name"), "pidfd_getfd") == 0 &&
		    jnum(c, "pid") == getpid())
			refused = c;
	}
	ASSERT_TRUE(refused != NULL, "the refused pidfd_getfd is in the trace");
	EXPECT_STREQ(jstr(refused, "errno"), "EPERM");
	EXPECT_EQ(jnum(refused, "ret"), -EPERM);
	/* seccomp answers before sys_enter; sys_exit still sees the call. */
	EXPECT_TRUE(jget(refused, "entry_seen") && !jbool(refused, "entry_seen"),
		    "seccomp refused it before entry");

	pulls = jget(self->doc, "pulls");
	ASSERT_TRUE(pulls && pulls->n == 1);
	EXPECT_STREQ(jstr(&pulls->items[0], "errno"), "EPERM", "the pull_fd probe says so");
	phases = jget(self->doc, "phases");
	for (size_t i = 0; phases && i < phases->n; i++)
		rollback |= strcmp(jstr(&phases->items[i], "name"), "rollback") == 0;
	EXPECT_TRUE(rollback, "the pull rolled back");
}

/* ------------------------------------------------------------------ */

/* Run `bpftool -j map dump pinned PATH`; its output, parsed. */
static struct jval *bpftool_dump(const char *map)
{
	char cmd[256], *buf;
	size_t len = 0, cap = 1 << 20;
	struct jval *v = NULL;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "timeout 10 %s -j map dump pinned %s/%s",
		 BPFTOOL, PIN_DIR, map);
	buf = malloc(cap);
	p = popen(cmd, "r");
	if (!buf || !p) {
		free(buf);
		if (p)
			pclose(p);
		return NULL;
	}
	for (size_t n; (n = fread(buf + len, 1, cap - 1 - len, p)) > 0;)
		len += n;
	buf[len] = '\0';
	if (pclose(p) == 0)
		v = jparse(buf);
	free(buf);
	return v;
}

/* bpftool -j gives {"key": [hex...], "value": [hex...], "formatted": {...}}. */
static const struct jval *formatted(const struct jval *elem, const char *part)
{
	return jget(jget(elem, "formatted"), part);
}

TEST_F(trace, pinned_maps_dump_with_named_fields)
{
	struct fdh_pull_entry e;
	struct jval *log, *stats;
	bool commit = false, getfd = false;
	int fd = -1;

	if (access(BPFTOOL, X_OK) < 0)
		SKIP("no %s (Debian package bpftool)", BPFTOOL);
	TRACER_START(&self->tr, "--json", "--pid", self->pid_arg);
	ASSERT_EQ(fdsrc_start(&self->child, NULL), 0);
	ASSERT_EQ(remote(&self->child, &e, "ram0", "memfd ram0 4096 0"), 0);
	ASSERT_EQ(fdh_source_open_pid(self->child.pid, 0, &self->src), 0);
	ASSERT_EQ(fdh_pull(self->src, &e, 1, &fd, NULL), 0, "%s", fdh_last_error()->msg);
	FINISH_JSON(0);
	close(fd);

	/* The tracer has exited: the pinned maps outlive it. */
	log = bpftool_dump("phase_log");
	ASSERT_TRUE(log && log->type == J_ARR && log->n > 0,
		    "bpftool dumps %s/phase_log as a JSON array", PIN_DIR);
	for (size_t i = 0; i < log->n; i++) {
		const struct jval *v = formatted(&log->items[i], "value");

		ASSERT_TRUE(v != NULL, "BTF gives a formatted value");
		EXPECT_TRUE(jget(v, "phase") && jget(v, "pid") && jget(v, "ts") &&
			    jget(v, "seq") && jget(v, "name"), "named fields");
		if (strcmp(jstr(v, "phase"), "HT_PHASE_COMMIT") == 0 &&
		    jnum(v, "pid") == getpid()) {
			commit = true;
			EXPECT_STREQ(jstr(v, "name"), "fdhandover:commit");
			EXPECT_GT(jnum(v, "ts"), 0);
		}
	}
	EXPECT_TRUE(commit, "our commit, with its phase by enumerator name");
	jfree(log);

	stats = bpftool_dump("syscall_stats");
	ASSERT_TRUE(stats && stats->type == J_ARR, "syscall_stats dumps");
	for (size_t i = 0; i < stats->n; i++) {
		const struct jval *k = formatted(&stats->items[i], "key");
		const struct jval *v = formatted(&stats->items[i], "value");

		if (jnum(k, "pid") == getpid() &&
		    strcmp(jstr(k, "sys"), "HT_SYS_PIDFD_GETFD") == 0 &&
		    jnum(k, "err") == 0) {
			getfd = true;
			EXPECT_EQ(jnum(v, "count"), 1, "one pidfd_getfd");
			EXPECT_GT(jnum(v, "max_ns"), 0);
		}
	}
	EXPECT_TRUE(getfd, "syscall_stats keyed by (pid, sys, err)");
	jfree(stats);
}

TEST_HARNESS_MAIN
