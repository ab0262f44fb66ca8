// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The fd-handover command, run as a user runs it: the built binary
 * against real processes (fdsrc children, a fake QEMU, an echo server),
 * its JSON read back through python3's json module, its listing
 * cross-checked with util-linux lsfd.
 *
 * The binary is $FDH_CLI, else ../tools/fd-handover beside this test's
 * own directory in the build tree.  This test binary doubles as the
 * helper processes (an echo server, a fake QEMU): FDH_TEST_HELPER in the
 * environment selects one instead of the tests.
 */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdsrc.h"
#include "harness.h"

/* Exit codes of fd-handover(1), as tools/cli.h defines them. */
#define EXIT_USAGE 2
#define EXIT_NO_PROCESS 3
#define EXIT_PERMISSION 4
#define EXIT_MISMATCH 5
#define EXIT_NOT_FOUND 127

#define CLI_TIMEOUT_MS 30000
#define OUTPUT_MAX (8u << 20)

extern char **environ;

/* ------------------------------------------------------------------ */
/* Running things                                                     */

static const char *cli_path(void)
{
	static char path[PATH_MAX + 32];
	const char *env = getenv("FDH_CLI");
	char self[PATH_MAX], *slash;
	ssize_t n;

	if (env && env[0])
		return env;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return "fd-handover";
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	snprintf(path, sizeof(path), "%s/../tools/fd-handover", self);
	return path;
}

static const char *self_exe(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

	path[n > 0 ? n : 0] = '\0';
	return path;
}

struct spawn {
	const char *const *argv;	/* argv[0] is looked up in PATH */
	const char *const *env;		/* "K=V" added to ours, or NULL */
	uid_t uid;			/* run as this uid (0: as we are) */
	int in, out, err;		/* -1: /dev/null */
};

static void child_fd(int fd, int target)
{
	if (fd < 0)
		fd = open("/dev/null", O_RDWR);
	if (fd != target)
		dup2(fd, target);
	else
		fcntl(fd, F_SETFD, 0);
}

static pid_t spawn(const struct spawn *s)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	child_fd(s->in, 0);
	child_fd(s->out, 1);
	child_fd(s->err, 2);
	for (const char *const *e = s->env; e && *e; e++)
		putenv((char *)*e);
	if (s->uid && (setgroups(0, NULL) < 0 || setresgid(s->uid, s->uid, s->uid) < 0 ||
		       setresuid(s->uid, s->uid, s->uid) < 0))
		_exit(126);
	execvp(s->argv[0], (char *const *)s->argv);
	_exit(errno == ENOENT ? 127 : 126);
}

/* Exit code, 128 + signal, or -1 after killing it on timeout. */
static int wait_for(pid_t pid, int timeout_ms)
{
	struct timespec tick = { 0, 1000000 };
	int status;

	for (int ms = 0; ms < timeout_ms; ms++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) :
						   128 + WTERMSIG(status);
		if (r < 0)
			return -1;
		nanosleep(&tick, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static char *slurp(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1);
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while (buf && (n = read(fd, buf + len, cap - len)) > 0) {
		len += (size_t)n;
		if (len == cap && cap < OUTPUT_MAX) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
	}
	if (buf)
		buf[len] = '\0';
	return buf ? buf : strdup("");
}

struct run {
	int status;		/* exit code, 128 + signal, -1 timed out */
	char *out;
	char *err;
};

/* Free what a run captured (also as a cleanup attribute). */
static void run_clear(struct run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

/*
 * Run argv with stdin from `in` (may be -1), capturing stdout/stderr.
 * r must be zeroed or hold an earlier run, whose output is freed.
 */
static void run_argv(struct run *r, uid_t uid, const char *const *env,
		     const char *const *argv, int in)
{
	int out = memfd_create("out", MFD_CLOEXEC);
	int err = memfd_create("err", MFD_CLOEXEC);
	struct spawn s = {
		.argv = argv, .env = env, .uid = uid,
		.in = in, .out = out, .err = err,
	};
	pid_t pid = spawn(&s);

	run_clear(r);
	r->status = pid < 0 ? -1 : wait_for(pid, CLI_TIMEOUT_MS);
	r->out = slurp(out);
	r->err = slurp(err);
	close(out);
	close(err);
}

#define CLI_ARGS_MAX 32

/* fd-handover ARGS..., the args given as printf-formatted words. */
static void cli_as(struct run *r, uid_t uid, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void cli_as(struct run *r, uid_t uid, const char *fmt, ...)
{
	const char *argv[CLI_ARGS_MAX + 2];
	char *line, *save = NULL;
	int n = 0;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) < 0)
		line = NULL;
	va_end(ap);
	argv[n++] = cli_path();
	for (char *w = line ? strtok_r(line, " ", &save) : NULL;
	     w && n <= CLI_ARGS_MAX; w = strtok_r(NULL, " ", &save))
		argv[n++] = w;
	argv[n] = NULL;
	run_argv(r, uid, NULL, argv, -1);
	free(line);
}

#define cli(r, ...) cli_as(r, 0, __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* JSON, read back through python3                                    */

/*
 * Flatten a JSON document to "a.b.0.c=value" lines (lists also give
 * "a.b#=length"), so that the tests look values up by path.  python3's
 * json module is the reference parser: a document it rejects fails.
 */
static const char flatten_py[] =
	"import json, sys\n"
	"def walk(p, v):\n"
	"    k = '.'.join(p)\n"
	"    if isinstance(v, dict):\n"
	"        for key, x in v.items(): walk(p + [key], x)\n"
	"    elif isinstance(v, list):\n"
	"        print(k + '#=' + str(len(v)))\n"
	"        for i, x in enumerate(v): walk(p + [str(i)], x)\n"
	"    else:\n"
	"        s = 'null' if v is None else 'true' if v is True else 'false' if v is False else str(v)\n"
	"        print(k + '=' + s.replace('\\n', ' '))\n"
	"walk([], json.loads(sys.stdin.read()))\n";

struct flat {
	char *text;
	size_t n;
	char **keys;
	char **vals;
};

static bool have_python(void)
{
	const char *argv[] = { "python3", "-c", "import json", NULL };
	struct run r = { 0 };

	run_argv(&r, 0, NULL, argv, -1);
	run_clear(&r);
	return r.status == 0;
}

/* Free a flattened document (also as a cleanup attribute). */
static void flat_clear(struct flat *f)
{
	free(f->text);
	free(f->keys);
	free(f->vals);
	memset(f, 0, sizeof(*f));
}

/*
 * 0, or -1 when json is not one valid JSON document.  f must be zeroed
 * or hold an earlier document, which is freed.
 */
static int flatten(struct flat *f, const char *json)
{
	const char *argv[] = { "python3", "-c", flatten_py, NULL };
	int in = memfd_create("json", MFD_CLOEXEC);
	struct run r = { 0 };
	size_t cap = 0;

	flat_clear(f);
	if (write(in, json, strlen(json)) != (ssize_t)strlen(json))
		return -1;
	lseek(in, 0, SEEK_SET);
	run_argv(&r, 0, NULL, argv, in);
	close(in);
	free(r.err);
	if (r.status != 0) {
		free(r.out);
		return -1;
	}
	f->text = r.out;
	for (char *save = NULL, *line = strtok_r(f->text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		if (!eq)
			continue;
		if (f->n == cap) {
			cap = cap ? cap * 2 : 256;
			f->keys = realloc(f->keys, cap * sizeof(char *));
			f->vals = realloc(f->vals, cap * sizeof(char *));
		}
		*eq = '\0';
		f->keys[f->n] = line;
		f->vals[f->n++] = eq + 1;
	}
	return 0;
}

static const char *fget(const struct flat *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static const char *fget(const struct flat *f, const char *fmt, ...)
{
	char key[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(key, sizeof(key), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->keys[i], key) == 0)
			return f->vals[i];
	return NULL;
}

#define NO_VALUE LLONG_MIN

static long long fnum(const struct flat *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static long long fnum(const struct flat *f, const char *fmt, ...)
{
	char key[256];
	const char *v;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(key, sizeof(key), fmt, ap);
	va_end(ap);
	v = fget(f, "%s", key);
	return v && strcmp(v, "null") != 0 ? strtoll(v, NULL, 10) : NO_VALUE;
}

/* Does the list at key hold the string value? */
static bool fhas(const struct flat *f, const char *key, const char *value)
{
	long long n = fnum(f, "%s#", key);

	for (long long i = 0; i < n; i++) {
		const char *v = fget(f, "%s.%lld", key, i);

		if (v && strcmp(v, value) == 0)
			return true;
	}
	return false;
}

/* Index of fd in an `ls --json` document's "fds", or -1. */
static int ls_index(const struct flat *f, int fd)
{
	long long n = fnum(f, "fds#");

	for (long long i = 0; i < n; i++)
		if (fnum(f, "fds.%lld.fd", i) == fd)
			return (int)i;
	return -1;
}

/* ------------------------------------------------------------------ */
/* Helper processes (this binary, with FDH_TEST_HELPER set)           */

static volatile sig_atomic_t helper_stop;

static void on_term(int sig)
{
	(void)sig;
	helper_stop = 1;
}

/*
 * Echo server: answers each connection with "PID GENERATION\n" and closes
 * it.  The generation lives in a memfd, so a successor that took the
 * memfd answers with the next one.  "old" makes the listening socket and
 * the memfd; "new" gets them as LISTEN_FDS 3 and 4 (fd-handover take).
 * SIGTERM makes it stop accepting and exit: the socket stays open in
 * whoever else holds it, so no client is refused.
 */
static int echo_server(const char *mode)
{
	struct sigaction sa = { .sa_handler = on_term };
	int lfd, mfd, cfd;
	uint64_t *gen;
	char line[64];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigaction(SIGTERM, &sa, NULL);	/* no SA_RESTART: poll returns */
	if (strcmp(mode, "echo-old") == 0) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		const char *path = getenv("FDH_TEST_SOCK");

		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path ? path : "");
		unlink(sun.sun_path);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
		    listen(lfd, 512) < 0)
			_exit(2);
		mfd = memfd_create("echo-state", MFD_ALLOW_SEALING);
		if (mfd < 0 || ftruncate(mfd, 4096) < 0)
			_exit(2);
		gen = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		if (gen == MAP_FAILED)
			_exit(2);
		*gen = 1;
		printf("ready %d %d %d\n", getpid(), lfd, mfd);
	} else {
		const char *fds = getenv("LISTEN_FDS");
		const char *names = getenv("LISTEN_FDNAMES");
		const char *lpid = getenv("LISTEN_PID");

		if (!fds || strcmp(fds, "2") != 0 || !lpid ||
		    atoi(lpid) != getpid() || !names ||
		    strcmp(names, "listen:state") != 0)
			_exit(3);
		lfd = 3;
		mfd = 4;
		gen = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		if (gen == MAP_FAILED)
			_exit(3);
		*gen += 1;
		printf("ready %d %llu\n", getpid(), (unsigned long long)*gen);
	}
	fflush(stdout);
	while (!helper_stop) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		int len;

		if (poll(&p, 1, 20) <= 0)
			continue;
		/* Both servers may wake for one client: EAGAIN for the loser. */
		cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			continue;
		len = snprintf(line, sizeof(line), "%d %llu\n", getpid(),
			       (unsigned long long)*gen);
		if (write(cfd, line, (size_t)len) < 0)
			_exit(4);
		close(cfd);
	}
	_exit(0);
}

/* A persistent TAP in our own (fresh) network namespace. */
static int make_tap(const char *ifname, int *ret_fd)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		close(fd);
		return -errno;
	}
	*ret_fd = fd;
	return 0;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, 8) < 0)
		return -1;
	return fd;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * Fake QEMU: started as "qemu-system-x86_64 -machine ... -object
 * memory-backend-memfd,id=ram0,size=1M -netdev tap,id=net0,ifname=T
 * -chardev socket,id=vu0,path=P,server=on -netdev vhost-user,...", it
 * holds what such a QEMU would: the backend's memfd (named as QEMU names
 * it), an aux-ram-share RAM block memfd, a TAP queue (in a netns of its
 * own), an eventfd, and a vhost-user server socket with a backend (a
 * child process) connected.  Prints "ready" and waits to be killed.
 */
static int fake_qemu(void)
{
	const char *tap = getenv("FDH_TEST_TAP"), *sock = getenv("FDH_TEST_SOCK");
	int tapfd, lfd, cfd, ram, bios;
	pid_t backend;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(CLONE_NEWNET) < 0 || make_tap(tap, &tapfd) < 0) {
		printf("skip %s\n", strerror(errno));
		fflush(stdout);
		_exit(0);
	}
	/* memory-backend-memfd names its memfds after the type, not the id;
	 * aux-ram-share names them after the RAM block. */
	ram = memfd_create("memory-backend-memfd", MFD_CLOEXEC);
	bios = memfd_create("pc.bios", MFD_CLOEXEC);
	if (ram < 0 || bios < 0 || ftruncate(ram, 1 << 20) < 0 ||
	    ftruncate(bios, 256 << 10) < 0)
		_exit(2);
	if (eventfd(0, EFD_CLOEXEC) < 0)
		_exit(2);
	lfd = listen_unix(sock);
	if (lfd < 0)
		_exit(2);
	backend = fork();
	if (backend == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (connect_unix(sock) < 0)
			_exit(2);
		pause();
		_exit(0);
	}
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd < 0)
		_exit(2);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}

static int helper_main(const char *helper)
{
	if (strncmp(helper, "echo-", 5) == 0)
		return echo_server(helper);
	if (strcmp(helper, "fake-qemu") == 0)
		return fake_qemu();
	return 99;
}

/* A line from fd (a pipe), waiting at most timeout_ms; "" on EOF. */
static void read_line(int fd, char *buf, size_t size, int timeout_ms)
{
	size_t n = 0;

	buf[0] = '\0';
	while (n + 1 < size) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char c;

		if (poll(&p, 1, timeout_ms) <= 0 || read(fd, &c, 1) != 1)
			break;
		if (c == '\n')
			break;
		buf[n++] = c;
		buf[n] = '\0';
	}
}

/* ------------------------------------------------------------------ */
/* ls: one test per kind fdsrc makes                                  */

FIXTURE(ls) {
	struct fdsrc child;	/* the process listed */
	struct run run;		/* its `ls --json` */
	struct flat json;
};

FIXTURE_SETUP(ls)
{
	self->child.pid = -1;
	if (!have_python())
		SKIP("python3 (the JSON reference parser) is not installed");
	ASSERT_EQ(fdsrc_start(&self->child, NULL), 0, "starting the source child");
}

FIXTURE_TEARDOWN(ls)
{
	run_clear(&self->run);
	flat_clear(&self->json);
	fdsrc_stop(&self->child);
}

/* Run `ls PID --json` on the child; the index of fd in it. */
static int ls_json(struct th_meta *_meta, struct fdsrc *child, struct run *run,
		   struct flat *json, int fd)
{
	cli(run, "ls %d --json", child->pid);
	if (run->status != 0 || flatten(json, run->out) < 0) {
		th_fail(_meta, true, __FILE__, __LINE__, "ls --json",
			" exit %d, stdout '%.200s', stderr '%.300s'",
			run->status, run->out, run->err);
		return -1;
	}
	return ls_index(json, fd);
}

TEST_F(ls, json_reports_memfd_name_size_and_seals)
{
	int fd = fdsrc_cmd(&self->child, "memfd ram0 8192 %d",
			   F_SEAL_GROW | F_SEAL_SHRINK);
	int i;

	ASSERT_GE(fd, 0, "the child makes a sealed memfd");
	i = ls_json(_meta, &self->child, &self->run, &self->json, fd);
	ASSERT_GE(i, 0, "fd %d must be listed", fd);
	EXPECT_STREQ(fget(&self->json, "fds.%d.kind", i), "memfd");
	EXPECT_STREQ(fget(&self->json, "fds.%d.memfd.name", i), "ram0");
	EXPECT_EQ(fnum(&self->json, "fds.%d.memfd.size", i), 8192);
	EXPECT_EQ(fnum(&self->json, "fds.%d.memfd.seals_mask", i),
		  F_SEAL_GROW | F_SEAL_SHRINK, "seals are read from the inode");
	{
		char key[64];

		snprintf(key, sizeof(key), "fds.%d.memfd.seals", i);
		EXPECT_TRUE(fhas(&self->json, key, "grow") &&
			    fhas(&self->json, key, "shrink"), "seal names are listed");
	}
}

TEST_F(ls, json_reports_eventfd_count_and_semaphore)
{
	int fd = fdsrc_cmd(&self->child, "eventfd 5 1");
	int i;

	ASSERT_GE(fd, 0);
	i = ls_json(_meta, &self->child, &self->run, &self->json, fd);
	ASSERT_GE(i, 0, "fd %d must be listed", fd);
	EXPECT_STREQ(fget(&self->json, "fds.%d.kind", i), "eventfd");
	EXPECT_EQ(fnum(&self->json, "fds.%d.eventfd.count", i), 5);
	EXPECT_STREQ(fget(&self->json, "fds.%d.eventfd.semaphore", i), "true");
	EXPECT_NE(fnum(&self->json, "fds.%d.eventfd.id", i), NO_VALUE,
		  "the eventfd-id is its identity");
}

/*
 * Make a pair ("pipe", "socketpair") in the child and list it: the first
 * end's fd number, and the JSON indexes of both ends in *i and *j (-1 if
 * anything failed).
 */
static int ls_json_pair(struct th_meta *_meta, FIXTURE(ls) *self,
			const char *what, int *i, int *j)
{
	int second = -1, first = fdsrc_cmd2(&self->child, &second, "%s", what);

	*i = *j = -1;
	if (first < 0)
		return first;
	*i = ls_json(_meta, &self->child, &self->run, &self->json, first);
	*j = ls_index(&self->json, second);
	return *i >= 0 && *j >= 0 ? first : -1;
}

TEST_F(ls, json_reports_both_ends_of_a_pipe)
{
	int i, j, rd = ls_json_pair(_meta, self, "pipe", &i, &j);

	ASSERT_GE(rd, 0);
	EXPECT_STREQ(fget(&self->json, "fds.%d.kind", i), "pipe");
	EXPECT_STREQ(fget(&self->json, "fds.%d.type", i), "fifo");
	EXPECT_EQ(fnum(&self->json, "fds.%d.ino", i), fnum(&self->json, "fds.%d.ino", j),
		  "both ends are one pipe inode");
	EXPECT_TRUE(strncmp(fget(&self->json, "fds.%d.open", i), "r,", 2) == 0,
		    "the read end is open for reading: %s",
		    fget(&self->json, "fds.%d.open", i));
}

TEST_F(ls, json_names_the_peer_of_a_socketpair)
{
	int i, j, b, a = ls_json_pair(_meta, self, "socketpair", &i, &j);

	ASSERT_GE(a, 0);
	b = atoi(fget(&self->json, "fds.%d.fd", j));
	EXPECT_STREQ(fget(&self->json, "fds.%d.kind", i), "unix");
	EXPECT_STREQ(fget(&self->json, "fds.%d.unix.type", i), "stream");
	EXPECT_STREQ(fget(&self->json, "fds.%d.unix.state", i), "connected");
	EXPECT_EQ(fnum(&self->json, "fds.%d.unix.peer.ino", i),
		  fnum(&self->json, "fds.%d.ino", j), "peer inode is the other end");
	EXPECT_EQ(fnum(&self->json, "fds.%d.unix.peer.pid", i), self->child.pid);
	EXPECT_EQ(fnum(&self->json, "fds.%d.unix.peer.fd", i), b);
}

TEST_F(ls, json_names_a_unix_peer_held_by_another_process)
{
	long long n;
	bool found = false;

	/* The child's end of its cooperation socket: the peer is ours. */
	ls_json(_meta, &self->child, &self->run, &self->json, 0);
	n = fnum(&self->json, "fds#");
	for (long long i = 0; i < n; i++)
		if (fnum(&self->json, "fds.%lld.unix.peer.pid", i) == getpid() &&
		    fnum(&self->json, "fds.%lld.unix.peer.fd", i) == self->child.coop)
			found = true;
	EXPECT_TRUE(found, "a socket of pid %d must name pid %d fd %d as its peer",
		    self->child.pid, getpid(), self->child.coop);
}

TEST_F(ls, json_reports_a_listening_socket_with_its_path)
{
	char path[64];
	int fd, i;

	snprintf(path, sizeof(path), "/tmp/fdh-cli-%d.sock", getpid());
	fd = fdsrc_cmd(&self->child, "unix-listen %s", path);
	ASSERT_GE(fd, 0);
	i = ls_json(_meta, &self->child, &self->run, &self->json, fd);
	unlink(path);
	ASSERT_GE(i, 0);
	EXPECT_STREQ(fget(&self->json, "fds.%d.unix.state", i), "listening");
	EXPECT_STREQ(fget(&self->json, "fds.%d.unix.path", i), path);
	EXPECT_STREQ(fget(&self->json, "fds.%d.unix.peer", i), "null");
}

TEST_F(ls, kind_filter_keeps_only_that_kind)
{
	long long n;

	ASSERT_GE(fdsrc_cmd(&self->child, "memfd a 0 0"), 0);
	ASSERT_GE(fdsrc_cmd(&self->child, "eventfd 0 0"), 0);
	cli(&self->run, "ls %d --kind memfd --json", self->child.pid);
	ASSERT_EQ(self->run.status, 0, "%s", self->run.err);
	ASSERT_EQ(flatten(&self->json, self->run.out), 0);
	n = fnum(&self->json, "fds#");
	EXPECT_GE(n, 1, "the memfd is listed");
	for (long long i = 0; i < n; i++)
		EXPECT_STREQ(fget(&self->json, "fds.%lld.kind", i), "memfd");
}

TEST_F(ls, text_table_columns_are_aligned)
{
	char *line, *save = NULL, *header = NULL;
	size_t col = 0;
	int rows = 0;

	ASSERT_GE(fdsrc_cmd(&self->child, "memfd ram0 4096 0"), 0);
	ASSERT_GE(fdsrc_cmd(&self->child, "eventfd 1 0"), 0);
	cli(&self->run, "ls %d", self->child.pid);
	ASSERT_EQ(self->run.status, 0, "%s", self->run.err);
	for (line = strtok_r(self->run.out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!header) {
			if (strncmp(line, "FD ", 3) == 0) {
				header = line;
				col = (size_t)(strstr(line, "KIND") - line);
			}
			continue;
		}
		/* Every row's second column starts under "KIND". */
		ASSERT_GT(strlen(line), col, "row '%s'", line);
		EXPECT_TRUE(line[col - 1] == ' ' && line[col] != ' ',
			    "row '%s' is aligned with the KIND column at %zu", line, col);
		rows++;
	}
	ASSERT_TRUE(header != NULL, "a header line: %s", self->run.out);
	EXPECT_GE(rows, 2);
}

TEST_TIMEOUT(ls_json_of_a_shell_is_valid_json, 60)
{
	char script[PATH_MAX + 128];
	const char *argv[] = { "sh", "-c", script, NULL };
	struct run r __attribute__((cleanup(run_clear))) = { 0 };

	if (!have_python())
		SKIP("python3 is not installed");
	snprintf(script, sizeof(script),
		 "'%s' ls $$ --json | python3 -m json.tool >/dev/null", cli_path());
	run_argv(&r, 0, NULL, argv, -1);
	EXPECT_EQ(r.status, 0, "fd-handover ls $$ --json | python3 -m json.tool: %s",
		  r.err);
}

TEST(ls_json_reports_epoll_watch_list_and_pidfd_target)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct fdsrc child;
	struct flat json __attribute__((cleanup(flat_clear))) = { 0 };
	struct run r __attribute__((cleanup(run_clear))) = { 0 };
	int p[2], ep, pidfd, i;

	if (!have_python())
		SKIP("python3 is not installed");
	ASSERT_EQ(fdsrc_start(&child, NULL), 0);
	ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_GE(ep, 0);
	ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), 0);
	pidfd = (int)syscall(SYS_pidfd_open, child.pid, 0);
	ASSERT_GE(pidfd, 0);
	/* Our own process: epoll and pidfd are not among fdsrc's kinds. */
	cli(&r, "ls %d %d %d --json", getpid(), ep, pidfd);
	ASSERT_EQ(r.status, 0, "%s", r.err);
	ASSERT_EQ(flatten(&json, r.out), 0, "%s", r.out);
	i = ls_index(&json, ep);
	ASSERT_GE(i, 0);
	EXPECT_STREQ(fget(&json, "fds.%d.kind", i), "epoll");
	EXPECT_EQ(fnum(&json, "fds.%d.epoll.tfds.0", i), p[0], "the watched pipe");
	i = ls_index(&json, pidfd);
	ASSERT_GE(i, 0);
	EXPECT_STREQ(fget(&json, "fds.%d.kind", i), "pidfd");
	EXPECT_EQ(fnum(&json, "fds.%d.pidfd.pid", i), child.pid);
	fdsrc_stop(&child);
}

#define TAP_NAME "fdhcli0"

TEST(ls_json_reports_tap_ifname_flags_and_vnet_header)
{
	struct fdsrc_opts opts = { .netns = true, .tap = TAP_NAME };
	struct fdsrc child;
	struct flat json __attribute__((cleanup(flat_clear))) = { 0 };
	struct run r __attribute__((cleanup(run_clear))) = { 0 };
	int fd, err;

	if (geteuid() != 0)
		SKIP("needs root to make a netns with a TAP");
	if (!have_python())
		SKIP("python3 is not installed");
	err = fdsrc_start(&child, &opts);
	if (err == -EPERM || err == -ENOENT || err == -ENODEV)
		SKIP("cannot create a netns with a TAP here: %s", strerror(-err));
	ASSERT_EQ(err, 0);
	fd = fdsrc_cmd(&child, "tap %s", TAP_NAME);
	ASSERT_GE(fd, 0, "attach a queue: %s", strerror(-fd));
	cli(&r, "ls %d %d --json", child.pid, fd);
	ASSERT_EQ(r.status, 0, "%s", r.err);
	ASSERT_EQ(flatten(&json, r.out), 0);
	EXPECT_STREQ(fget(&json, "fds.0.kind"), "tap");
	EXPECT_STREQ(fget(&json, "fds.0.tap.ifname"), TAP_NAME);
	EXPECT_TRUE(fhas(&json, "fds.0.tap.iff_flags", "tap") &&
		    fhas(&json, "fds.0.tap.iff_flags", "no_pi") &&
		    fhas(&json, "fds.0.tap.iff_flags", "vnet_hdr") &&
		    fhas(&json, "fds.0.tap.iff_flags", "multi_queue"),
		    "flags from the pulled copy: %s", r.out);
	/* The kernel's default: sizeof(struct virtio_net_hdr). */
	EXPECT_EQ(fnum(&json, "fds.0.tap.vnet_hdr_sz"), 10);
	fdsrc_stop(&child);
}

/* ------------------------------------------------------------------ */
/* ls against lsfd                                                    */

/* lsfd's TYPE for our kinds where both tell the kind (lsfd 2.38). */
static bool lsfd_agrees(const char *kind, const char *type, const char *name)
{
	if (strcmp(kind, "memfd") == 0)
		return strcmp(type, "REG") == 0 && strncmp(name, "/memfd:", 7) == 0;
	if (strcmp(kind, "file") == 0)
		return strcmp(type, "REG") == 0;
	if (strcmp(kind, "pipe") == 0)
		return strcmp(type, "FIFO") == 0;
	if (strcmp(kind, "unix") == 0)
		return (strcmp(type, "SOCK") == 0 || strncmp(type, "UNIX", 4) == 0) &&
		       strncmp(name, "UNIX", 4) == 0;
	if (strcmp(kind, "eventfd") == 0)
		return strstr(name, "eventfd") != NULL;
	if (strcmp(kind, "epoll") == 0)
		return strstr(name, "eventpoll") != NULL;
	if (strcmp(kind, "pidfd") == 0)
		return strstr(name, "pidfd") != NULL;
	return true;	/* a kind lsfd does not tell apart */
}

TEST(ls_agrees_with_lsfd_on_fds_inodes_and_kinds)
{
	const char *argv[] = { "lsfd", "-J", "-p", NULL, NULL };
	struct flat ours __attribute__((cleanup(flat_clear))) = { 0 };
	struct flat theirs __attribute__((cleanup(flat_clear))) = { 0 };
	struct fdsrc child;
	char pid[16], path[64];
	struct run r __attribute__((cleanup(run_clear))) = { 0 };
	struct run l __attribute__((cleanup(run_clear))) = { 0 };
	long long n_ours, n_theirs, n_fds = 0;
	int b;

	if (access("/usr/bin/lsfd", X_OK) != 0 && access("/bin/lsfd", X_OK) != 0)
		SKIP("util-linux lsfd is not installed (apt-get install util-linux, 2.38+)");
	if (!have_python())
		SKIP("python3 is not installed");
	ASSERT_EQ(fdsrc_start(&child, NULL), 0);
	snprintf(path, sizeof(path), "/tmp/fdh-lsfd-%d.sock", getpid());
	ASSERT_GE(fdsrc_cmd(&child, "memfd ram0 4096 0"), 0);
	ASSERT_GE(fdsrc_cmd(&child, "eventfd 0 0"), 0);
	ASSERT_GE(fdsrc_cmd2(&child, &b, "pipe"), 0);
	ASSERT_GE(fdsrc_cmd2(&child, &b, "socketpair"), 0);
	ASSERT_GE(fdsrc_cmd(&child, "unix-listen %s", path), 0);

	cli(&r, "ls %d --json", child.pid);
	snprintf(pid, sizeof(pid), "%d", child.pid);
	argv[3] = pid;
	run_argv(&l, 0, NULL, argv, -1);
	unlink(path);
	ASSERT_EQ(r.status, 0, "%s", r.err);
	ASSERT_EQ(l.status, 0, "lsfd -J -p %d: %s", child.pid, l.err);
	ASSERT_EQ(flatten(&ours, r.out), 0);
	ASSERT_EQ(flatten(&theirs, l.out), 0, "lsfd's JSON");

	n_ours = fnum(&ours, "fds#");
	n_theirs = fnum(&theirs, "lsfd#");
	for (long long j = 0; j < n_theirs; j++) {
		const char *assoc = fget(&theirs, "lsfd.%lld.assoc", j);
		const char *type = fget(&theirs, "lsfd.%lld.type", j);
		const char *name = fget(&theirs, "lsfd.%lld.name", j);
		char *end;
		long fd;
		int i;

		/* cwd, rtd, txt, mem, namespaces: not fds. */
		fd = assoc ? strtol(assoc, &end, 10) : -1;
		if (!assoc || *end || fd < 0)
			continue;
		n_fds++;
		i = ls_index(&ours, (int)fd);
		EXPECT_GE(i, 0, "lsfd lists fd %ld (%s), fd-handover must too", fd, name);
		if (i < 0)
			continue;
		EXPECT_EQ(fnum(&ours, "fds.%d.ino", i), fnum(&theirs, "lsfd.%lld.inode", j),
			  "fd %ld: same inode", fd);
		EXPECT_TRUE(lsfd_agrees(fget(&ours, "fds.%d.kind", i), type, name),
			    "fd %ld: our kind %s vs lsfd's %s '%s'", fd,
			    fget(&ours, "fds.%d.kind", i), type, name);
	}
	EXPECT_EQ(n_fds, n_ours, "the same number of fds");
	fdsrc_stop(&child);
}

/* ------------------------------------------------------------------ */
/* ls where processes and fds come and go                             */

TEST_TIMEOUT(ls_tolerates_fds_closing_during_listing, 120)
{
	struct flat json __attribute__((cleanup(flat_clear))) = { 0 };
	pid_t churn;

	if (!have_python())
		SKIP("python3 is not installed");
	churn = fork();
	ASSERT_GE(churn, 0);
	if (churn == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;) {
			int fds[64];

			for (int i = 0; i < 64; i++)
				fds[i] = i % 2 ? eventfd(0, 0) : memfd_create("churn", 0);
			for (int i = 0; i < 64; i++)
				close(fds[i]);
		}
	}
	for (int i = 0; i < 30; i++) {
		struct run r __attribute__((cleanup(run_clear))) = { 0 };

		cli(&r, "ls %d --json", churn);
		ASSERT_EQ(r.status, 0, "run %d: exit %d: %s", i, r.status, r.err);
		ASSERT_EQ(flatten(&json, r.out), 0, "run %d: valid JSON", i);
		run_clear(&r);
	}
	kill(churn, SIGKILL);
	waitpid(churn, NULL, 0);
}

TEST_TIMEOUT(ls_tolerates_a_process_exiting_during_listing, 120)
{
	int exits[2] = { 0, 0 };

	for (int i = 0; i < 40; i++) {
		struct timespec life = { 0, (i % 10) * 3000000L };
		struct run r __attribute__((cleanup(run_clear))) = { 0 };
		pid_t victim = fork();

		ASSERT_GE(victim, 0);
		if (victim == 0) {
			for (int k = 0; k < 200; k++)
				if (eventfd(0, 0) < 0)
					break;
			nanosleep(&life, NULL);
			_exit(0);
		}
		cli(&r, "ls %d", victim);
		waitpid(victim, NULL, 0);
		ASSERT_TRUE(r.status == 0 || r.status == EXIT_NO_PROCESS,
			    "run %d: exit %d (0 or %d expected): %s", i, r.status,
			    EXIT_NO_PROCESS, r.err);
		exits[r.status == 0 ? 0 : 1]++;
		run_clear(&r);
	}
	TH_LOG("complete listings %d, process gone %d", exits[0], exits[1]);
}

/* ------------------------------------------------------------------ */
/* Errors                                                             */

static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

TEST(ls_of_a_dead_pid_exits_3_and_says_so)
{
	struct run r __attribute__((cleanup(run_clear))) = { 0 };

	cli(&r, "ls %d", dead_pid());
	EXPECT_EQ(r.status, EXIT_NO_PROCESS, "%s", r.err);
	EXPECT_TRUE(strstr(r.err, "does not exist") != NULL, "%s", r.err);
}

TEST(errors_under_json_are_one_json_object_on_stdout)
{
	struct flat json __attribute__((cleanup(flat_clear))) = { 0 };
	struct run r __attribute__((cleanup(run_clear))) = { 0 };

	if (!have_python())
		SKIP("python3 is not installed");
	cli(&r, "--json ls %d", dead_pid());
	EXPECT_EQ(r.status, EXIT_NO_PROCESS);
	ASSERT_EQ(flatten(&json, r.out), 0, "stdout is JSON: %s", r.out);
	EXPECT_STREQ(fget(&json, "errno"), "ESRCH");
	EXPECT_EQ(fnum(&json, "exit_code"), EXIT_NO_PROCESS);
	EXPECT_TRUE(fget(&json, "error") != NULL);
	EXPECT_TRUE(fget(&json, "hint") != NULL);
}

TEST(ls_of_another_users_process_exits_4_with_a_hint)
{
	struct fdsrc_opts opts = { .uid = fdsrc_test_uid() };
	struct fdsrc child;
	uid_t third = opts.uid - 1;
	struct run r __attribute__((cleanup(run_clear))) = { 0 };

	if (geteuid() != 0)
		SKIP("needs root to run the child and the CLI as two other uids");
	ASSERT_EQ(fdsrc_start(&child, &opts), 0);
	/* Neither root nor the child's uid: no ptrace read permission. */
	cli_as(&r, third, "ls %d", child.pid);
	if (r.status == 126)
		SKIP("uid %u cannot run %s (build tree not executable by others)",
		     third, cli_path());
	EXPECT_EQ(r.status, EXIT_PERMISSION, "stderr: %s", r.err);
	EXPECT_TRUE(strstr(r.err, "ptrace") != NULL, "the hint says why: %s", r.err);
	EXPECT_TRUE(strstr(r.err, "CAP_SYS_PTRACE") != NULL, "and what to do: %s", r.err);
	fdsrc_stop(&child);
}

TEST(take_from_another_users_process_exits_4_naming_ptrace)
{
	struct fdsrc_opts opts = { .uid = fdsrc_test_uid() };
	struct fdsrc child;
	struct run r __attribute__((cleanup(run_clear))) = { 0 };
	int fd;

	if (geteuid() != 0)
		SKIP("needs root to run the child and the CLI as two other uids");
	ASSERT_EQ(fdsrc_start(&child, &opts), 0);
	fd = fdsrc_cmd(&child, "memfd x 0 0");
	ASSERT_GE(fd, 0);
	cli_as(&r, opts.uid - 1, "take %d %d -- true", child.pid, fd);
	if (r.status == 126)
		SKIP("the build tree is not executable by uid %u", opts.uid - 1);
	EXPECT_EQ(r.status, EXIT_PERMISSION, "stderr: %s", r.err);
	EXPECT_TRUE(strstr(r.err, "ptrace") != NULL, "%s", r.err);
	EXPECT_TRUE(strstr(r.err, "fd-handover: hint:") != NULL, "%s", r.err);
	fdsrc_stop(&child);
}

TEST(malformed_arguments_exit_2_without_crashing)
{
	static const char *const cases[] = {
		"", "nosuchcommand", "ls", "ls 12x", "ls 0", "ls -5", "ls 1 x",
		"ls --kind nosuchkind 1", "ls 1 --bogus", "plan", "plan 1 2",
		"manifest", "manifest nosuchverb", "manifest show",
		"manifest verify 1", "manifest make", "take", "take 1",
		"take 1 3", "take 1 -- true", "take 1 3=4 5 -- true",
		"take 1 3 3 -- true", "take 1 3=5 4=5 -- true", "help nosuch",
		"--bogus",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct run r __attribute__((cleanup(run_clear))) = { 0 };

		cli(&r, "%s", cases[i]);
		EXPECT_EQ(r.status, EXIT_USAGE, "'fd-handover %s': %s", cases[i], r.err);
		EXPECT_TRUE(r.err[0] != '\0' || r.out[0] != '\0',
			    "'fd-handover %s' says what is wrong", cases[i]);
		run_clear(&r);
	}
}

TEST(help_and_version_exit_0)
{
	static const char *const cases[] = {
		"help", "--help", "help ls", "help plan", "help manifest",
		"help take", "help trace", "ls --help", "take --help", "version",
		"--version", "--json version",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct run r __attribute__((cleanup(run_clear))) = { 0 };

		cli(&r, "%s", cases[i]);
		EXPECT_EQ(r.status, 0, "'fd-handover %s': %s", cases[i], r.err);
		EXPECT_TRUE(r.out[0] != '\0', "'fd-handover %s' prints something",
			    cases[i]);
		run_clear(&r);
	}
}

/* ------------------------------------------------------------------ */
/* manifest                                                           */

FIXTURE(manifest) {
	struct fdsrc child;
	int memfd, eventfd, sock;	/* in the child */
	char file[64];			/* the manifest made of them */
	struct run run;
	struct flat json;
};

FIXTURE_SETUP(manifest)
{
	struct run r __attribute__((cleanup(run_clear))) = { 0 };
	int other;

	self->child.pid = -1;
	if (!have_python())
		SKIP("python3 is not installed");
	ASSERT_EQ(fdsrc_start(&self->child, NULL), 0);
	self->memfd = fdsrc_cmd(&self->child, "memfd ram0 4096 0");
	self->eventfd = fdsrc_cmd(&self->child, "eventfd 0 0");
	self->sock = fdsrc_cmd2(&self->child, &other, "socketpair");
	ASSERT_GE(self->memfd, 0);
	ASSERT_GE(self->eventfd, 0);
	ASSERT_GE(self->sock, 0);
	snprintf(self->file, sizeof(self->file), "/tmp/fdh-cli-%d.fdhm", getpid());
	cli(&r, "manifest make %d %d %d %d -o %s", self->child.pid, self->memfd,
	    self->eventfd, self->sock, self->file);
	ASSERT_EQ(r.status, 0, "manifest make: %s", r.err);
}

FIXTURE_TEARDOWN(manifest)
{
	run_clear(&self->run);
	flat_clear(&self->json);
	unlink(self->file);
	fdsrc_stop(&self->child);
}

/* `manifest verify --json` of the fixture's manifest: its exit code. */
static int verify(struct th_meta *_meta, FIXTURE(manifest) *self)
{
	cli(&self->run, "manifest verify %d %s --json", self->child.pid, self->file);
	if (flatten(&self->json, self->run.out) < 0) {
		th_fail(_meta, false, __FILE__, __LINE__, "verify --json",
			" not JSON: %.300s / %.300s", self->run.out, self->run.err);
		return -1;
	}
	return self->run.status;
}

TEST_F(manifest, show_decodes_what_make_wrote)
{
	cli(&self->run, "manifest show %s --json", self->file);
	ASSERT_EQ(self->run.status, 0, "%s", self->run.err);
	ASSERT_EQ(flatten(&self->json, self->run.out), 0, "%s", self->run.out);
	EXPECT_EQ(fnum(&self->json, "source.pid"), self->child.pid);
	EXPECT_EQ(fnum(&self->json, "entries#"), 3);
	EXPECT_STREQ(fget(&self->json, "entries.0.kind"), "memfd");
	EXPECT_EQ(fnum(&self->json, "entries.0.remote_fd"), self->memfd);
	EXPECT_STREQ(fget(&self->json, "entries.1.kind"), "eventfd");
	EXPECT_STREQ(fget(&self->json, "entries.2.kind"), "unix");
	{
		char owner[16];

		snprintf(owner, sizeof(owner), "fd%d", self->memfd);
		EXPECT_STREQ(fget(&self->json, "entries.0.owner"), owner);
	}
}

TEST_F(manifest, show_reads_stdin)
{
	const char *argv[] = { cli_path(), "manifest", "show", "-", NULL };
	int in = open(self->file, O_RDONLY | O_CLOEXEC);
	struct run r __attribute__((cleanup(run_clear))) = { 0 };

	ASSERT_GE(in, 0);
	run_argv(&r, 0, NULL, argv, in);
	close(in);
	EXPECT_EQ(r.status, 0, "%s", r.err);
	EXPECT_TRUE(strstr(r.out, "memfd") != NULL, "%s", r.out);
}

TEST_F(manifest, verify_passes_when_nothing_changed)
{
	EXPECT_EQ(verify(_meta, self), 0, "%s", self->run.out);
	EXPECT_STREQ(fget(&self->json, "ok"), "true");
	EXPECT_STREQ(fget(&self->json, "source.state"), "alive");
	EXPECT_EQ(fnum(&self->json, "counts.ok"), 3);
}

TEST_F(manifest, verify_detects_a_closed_fd)
{
	ASSERT_EQ(fdsrc_cmd(&self->child, "close %d", self->eventfd), 0);
	EXPECT_EQ(verify(_meta, self), EXIT_MISMATCH);
	EXPECT_STREQ(fget(&self->json, "entries.1.state"), "closed");
	EXPECT_STREQ(fget(&self->json, "entries.0.state"), "ok", "the others still match");
	EXPECT_STREQ(fget(&self->json, "entries.2.state"), "ok");
	EXPECT_STREQ(fget(&self->json, "ok"), "false");
}

TEST_F(manifest, verify_detects_a_replaced_fd)
{
	int other = fdsrc_cmd(&self->child, "memfd impostor 4096 0");

	ASSERT_GE(other, 0);
	/* Same number, same kind, another file. */
	ASSERT_EQ(fdsrc_cmd(&self->child, "dup2 %d %d", other, self->memfd), self->memfd);
	EXPECT_EQ(verify(_meta, self), EXIT_MISMATCH);
	EXPECT_STREQ(fget(&self->json, "entries.0.state"), "replaced");
	EXPECT_TRUE(fhas(&self->json, "entries.0.differs", "ino"), "%s", self->run.out);
	EXPECT_STREQ(fget(&self->json, "entries.0.now.target"), "/memfd:impostor (deleted)");
	EXPECT_STREQ(fget(&self->json, "entries.1.state"), "ok");
}

TEST_F(manifest, verify_detects_a_source_under_another_uid)
{
	if (geteuid() != 0)
		SKIP("changing the source's uid needs root");
	/* The very process of the manifest, but a pull would refuse it. */
	ASSERT_EQ(fdsrc_cmd(&self->child, "become 65534"), 0);
	EXPECT_EQ(verify(_meta, self), EXIT_MISMATCH, "%s", self->run.out);
	EXPECT_STREQ(fget(&self->json, "source.state"), "uid-changed");
	EXPECT_STREQ(fget(&self->json, "ok"), "false");
}

TEST_F(manifest, verify_detects_a_dead_source)
{
	pid_t pid = self->child.pid;

	fdsrc_stop(&self->child);
	cli(&self->run, "manifest verify %d %s --json", pid, self->file);
	EXPECT_EQ(self->run.status, EXIT_MISMATCH, "%s", self->run.err);
	ASSERT_EQ(flatten(&self->json, self->run.out), 0, "%s", self->run.out);
	EXPECT_STREQ(fget(&self->json, "source.state"), "dead");
	EXPECT_STREQ(fget(&self->json, "entries.0.state"), "gone");
	EXPECT_EQ(fnum(&self->json, "counts.gone"), 3);
}

TEST(manifest_show_rejects_a_file_that_is_no_manifest)
{
	char path[64];
	struct run r __attribute__((cleanup(run_clear))) = { 0 };
	int fd;

	snprintf(path, sizeof(path), "/tmp/fdh-cli-junk-%d", getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, "FDHM\x07\0\0\0garbage", 15), 15);
	close(fd);
	cli(&r, "manifest show %s", path);
	unlink(path);
	EXPECT_EQ(r.status, 1, "%s", r.err);
	EXPECT_TRUE(strstr(r.err, path) != NULL, "the error names the file: %s", r.err);
}

/* ------------------------------------------------------------------ */
/* plan                                                               */

TEST(plan_moves_every_handoverable_fd_of_a_plain_process)
{
	struct fdsrc child;
	struct flat json __attribute__((cleanup(flat_clear))) = { 0 };
	struct run r __attribute__((cleanup(run_clear))) = { 0 };
	int m, e, rd, wr, a, b;
	long long n;
	int found = 0;

	if (!have_python())
		SKIP("python3 is not installed");
	ASSERT_EQ(fdsrc_start(&child, NULL), 0);
	m = fdsrc_cmd(&child, "memfd state 4096 0");
	e = fdsrc_cmd(&child, "eventfd 0 0");
	rd = fdsrc_cmd2(&child, &wr, "pipe");
	a = fdsrc_cmd2(&child, &b, "socketpair");
	ASSERT_GE(m, 0);
	ASSERT_GE(e, 0);
	ASSERT_GE(rd, 0);
	ASSERT_GE(a, 0);
	cli(&r, "plan %d --json", child.pid);
	ASSERT_EQ(r.status, 0, "%s", r.err);
	ASSERT_EQ(flatten(&json, r.out), 0, "%s", r.out);
	EXPECT_STREQ(fget(&json, "qemu"), "false");
	n = fnum(&json, "move#");
	for (long long i = 0; i < n; i++) {
		long long fd = fnum(&json, "move.%lld.fd", i);
		char owner[16];

		snprintf(owner, sizeof(owner), "fd%lld", fd);
		EXPECT_STREQ(fget(&json, "move.%lld.owner", i), owner);
		EXPECT_TRUE(fget(&json, "move.%lld.why", i) != NULL);
		if (fd == m || fd == e || fd == rd || fd == a)
			found++;
	}
	EXPECT_EQ(found, 4, "memfd, eventfd, pipe and socket all move: %s", r.out);
	EXPECT_EQ(fnum(&json, "manifest.entries#"), n, "the preview has one entry per move");
	fdsrc_stop(&child);
}

/* The move entry of a QEMU plan with that owner and kind, or -1. */
static long long plan_entry(const struct flat *json, const char *owner,
			    const char *kind)
{
	long long n = fnum(json, "move#");

	for (long long i = 0; i < n; i++) {
		const char *o = fget(json, "move.%lld.owner", i);
		const char *k = fget(json, "move.%lld.kind", i);

		if (o && k && strcmp(o, owner) == 0 && strcmp(k, kind) == 0)
			return i;
	}
	return -1;
}

TEST(plan_names_qemu_fds_after_its_command_line)
{
	char sock[64], env_sock[96], line[128];
	const char *env[] = {
		"FDH_TEST_HELPER=fake-qemu", "FDH_TEST_TAP=fdhcliq0", env_sock, NULL,
	};
	const char *argv[] = {
		"qemu-system-x86_64", "-machine", "pc,aux-ram-share=on",
		"-object", "memory-backend-memfd,id=ram0,size=1M",
		"-netdev", "tap,id=net0,ifname=fdhcliq0,script=no",
		"-chardev", NULL, "-netdev", "vhost-user,id=net1,chardev=vu0",
		NULL,
	};
	char chardev[128];
	struct spawn s = { .argv = argv, .env = env, .in = -1, .err = -1 };
	struct flat json __attribute__((cleanup(flat_clear))) = { 0 };
	struct run r __attribute__((cleanup(run_clear))) = { 0 };
	int out[2];
	pid_t qemu;

	if (geteuid() != 0)
		SKIP("needs root for the fake QEMU's netns and TAP");
	if (!have_python())
		SKIP("python3 is not installed");
	snprintf(sock, sizeof(sock), "/tmp/fdh-cli-vu-%d.sock", getpid());
	snprintf(env_sock, sizeof(env_sock), "FDH_TEST_SOCK=%s", sock);
	snprintf(chardev, sizeof(chardev), "socket,id=vu0,path=%s,server=on", sock);
	argv[8] = chardev;
	ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
	s.out = out[1];
	/* argv[0] names QEMU; the program is this binary. */
	{
		pid_t pid;

		fflush(NULL);
		pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			child_fd(s.out, 1);
			for (const char *const *e = env; *e; e++)
				putenv((char *)*e);
			execv(self_exe(), (char *const *)argv);
			_exit(127);
		}
		qemu = pid;
	}
	close(out[1]);
	read_line(out[0], line, sizeof(line), 10000);
	if (strncmp(line, "skip", 4) == 0)
		SKIP("fake QEMU cannot make a netns with a TAP: %s", line);
	ASSERT_STREQ(line, "ready", "the fake QEMU starts");

	cli(&r, "plan %d --json", qemu);
	unlink(sock);
	ASSERT_EQ(r.status, 0, "%s", r.err);
	ASSERT_EQ(flatten(&json, r.out), 0, "%s", r.out);
	EXPECT_STREQ(fget(&json, "qemu"), "true");
	EXPECT_GE(plan_entry(&json, "ram0", "memfd"), 0,
		  "guest RAM belongs to memory-backend-memfd id=ram0: %s", r.out);
	EXPECT_GE(plan_entry(&json, "pc.bios", "memfd"), 0,
		  "an aux-ram-share block is named after itself");
	EXPECT_GE(plan_entry(&json, "net0", "tap"), 0,
		  "the TAP queue belongs to -netdev id=net0");
	EXPECT_GE(plan_entry(&json, "eventfd", "eventfd"), 0);
	EXPECT_GE(plan_entry(&json, "vu0", "vhost-user"), 0,
		  "the accepted socket on the chardev path is vhost-user");
	EXPECT_EQ(fnum(&json, "manifest.entries#"), fnum(&json, "move#"));
	kill(qemu, SIGKILL);
	waitpid(qemu, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* take                                                               */

TEST(take_places_fds_at_3_4_with_listen_env)
{
	char script[] =
		"echo \"$LISTEN_FDS $LISTEN_FDNAMES $LISTEN_PID $$\"; "
		"stat -L -c %i /proc/$$/fd/3 /proc/$$/fd/4";
	char pid[16], spec_m[32], spec_e[16];
	struct stat m_st, e_st;
	char expect[256], path[64];
	struct fdsrc child;
	struct run r __attribute__((cleanup(run_clear))) = { 0 };
	int m, e, lpid = 0, spid = -1;
	char names[128] = "";
	unsigned long long ino3 = 0, ino4 = 0;
	int n_listen = 0;

	ASSERT_EQ(fdsrc_start(&child, NULL), 0);
	m = fdsrc_cmd(&child, "memfd state 4096 0");
	e = fdsrc_cmd(&child, "eventfd 0 0");
	ASSERT_GE(m, 0);
	ASSERT_GE(e, 0);
	snprintf(pid, sizeof(pid), "%d", child.pid);
	snprintf(spec_m, sizeof(spec_m), "%d:state", m);
	snprintf(spec_e, sizeof(spec_e), "%d", e);
	{
		const char *argv[] = { cli_path(), "take", pid, spec_m, spec_e,
				       "--", "sh", "-c", script, NULL };

		run_argv(&r, 0, NULL, argv, -1);
	}
	ASSERT_EQ(r.status, 0, "%s", r.err);
	ASSERT_EQ(sscanf(r.out, "%d %127s %d %d\n%llu\n%llu", &n_listen, names,
			 &lpid, &spid, &ino3, &ino4), 6, "output: %s", r.out);
	EXPECT_EQ(n_listen, 2);
	snprintf(expect, sizeof(expect), "state:fd%d", e);
	EXPECT_STREQ(names, expect);
	EXPECT_EQ(lpid, spid, "LISTEN_PID is CMD's own pid");
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", child.pid, m);
	ASSERT_EQ(stat(path, &m_st), 0);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", child.pid, e);
	ASSERT_EQ(stat(path, &e_st), 0);
	EXPECT_EQ(ino3, m_st.st_ino, "fd 3 is the memfd, without O_CLOEXEC");
	EXPECT_EQ(ino4, e_st.st_ino, "fd 4 is the eventfd");
	fdsrc_stop(&child);
}

TEST(take_swaps_fds_whose_targets_collide)
{
	char script[] = "stat -L -c %i /proc/$$/fd/3 /proc/$$/fd/4 /proc/$$/fd/5";
	char pid[16], s1[16], s2[16], s3[16], path[64];
	unsigned long long got[3];
	struct fdsrc child;
	struct run r __attribute__((cleanup(run_clear))) = { 0 };
	int fd[3];

	ASSERT_EQ(fdsrc_start(&child, NULL), 0);
	for (int i = 0; i < 3; i++) {
		fd[i] = fdsrc_cmd(&child, "memfd m%d 0 0", i);
		ASSERT_GE(fd[i], 0);
	}
	/* Pulled fds land on the lowest free numbers: 3, 4, 5 are among
	 * them, so each target may hold another pulled fd. */
	snprintf(pid, sizeof(pid), "%d", child.pid);
	snprintf(s1, sizeof(s1), "%d=5", fd[0]);
	snprintf(s2, sizeof(s2), "%d=3", fd[1]);
	snprintf(s3, sizeof(s3), "%d=4", fd[2]);
	{
		const char *argv[] = { cli_path(), "take", pid, s1, s2, s3, "--",
				       "sh", "-c", script, NULL };

		run_argv(&r, 0, NULL, argv, -1);
	}
	ASSERT_EQ(r.status, 0, "%s", r.err);
	ASSERT_EQ(sscanf(r.out, "%llu %llu %llu", &got[0], &got[1], &got[2]), 3,
		  "%s", r.out);
	for (int i = 0; i < 3; i++) {
		static const int where[3] = { 1, 2, 0 };	/* fd 3 holds fd[1]... */
		struct stat st;

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", child.pid, fd[where[i]]);
		ASSERT_EQ(stat(path, &st), 0);
		EXPECT_EQ(got[i], st.st_ino, "fd %d holds source fd %d", 3 + i,
			  fd[where[i]]);
	}
	fdsrc_stop(&child);
}

/*
 * `fd-handover take PID FD ARGS` where FD is a memfd a new source child
 * holds: FD, or -errno when the child could not be made.
 */
static int take_a_memfd(struct fdsrc *child, struct run *r, const char *args)
{
	int m = fdsrc_start(child, NULL);

	if (m == 0)
		m = fdsrc_cmd(child, "memfd keep 0 0");
	if (m >= 0)
		cli(r, "take %d %d %s", child->pid, m, args);
	return m;
}

TEST(take_is_all_or_nothing_when_an_fd_is_closed)
{
	struct run r __attribute__((cleanup(run_clear))) = { 0 };
	struct fdsrc child;
	int m = take_a_memfd(&child, &r, "999 -- echo CMD-RAN");

	ASSERT_GE(m, 0);
	EXPECT_EQ(r.status, 1, "%s", r.err);
	EXPECT_TRUE(strstr(r.out, "CMD-RAN") == NULL, "CMD must not run");
	EXPECT_TRUE(strstr(r.err, "fd 999") != NULL, "the error names the fd: %s", r.err);
	EXPECT_TRUE(strstr(r.err, "fd-handover ls") != NULL, "and what to do: %s", r.err);
	cli(&r, "ls %d %d", child.pid, m);
	EXPECT_EQ(r.status, 0, "the source still holds fd %d", m);
	fdsrc_stop(&child);
}

TEST(take_exits_127_when_cmd_does_not_exist)
{
	struct run r __attribute__((cleanup(run_clear))) = { 0 };
	struct fdsrc child;

	ASSERT_GE(take_a_memfd(&child, &r, "-- /nonexistent/cmd"), 0);
	EXPECT_EQ(r.status, EXIT_NOT_FOUND, "%s", r.err);
	EXPECT_TRUE(strstr(r.err, "/nonexistent/cmd") != NULL, "%s", r.err);
	fdsrc_stop(&child);
}

/* Spawn argv with stdout on a new pipe; out[0] is ours to read. */
static pid_t spawn_piped(const char *const *argv, const char *const *env,
			 int out[2])
{
	struct spawn s = { .argv = argv, .env = env, .in = -1, .err = -1 };
	pid_t pid;

	if (pipe2(out, O_CLOEXEC) < 0)
		return -1;
	s.out = out[1];
	pid = spawn(&s);
	close(out[1]);
	return pid;
}

/* Client loop: connects until max_conn or max_ms; counts outcomes. */
struct client_result {
	int attempts, served, refused, failed;
	int by_old, by_new;
	unsigned long long max_gen;
};

static void client_loop(const char *path, pid_t old, int max_conn, int max_ms,
			volatile int *stop, struct client_result *res)
{
	struct timespec start, now, pause_ = { 0, 500000 };

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (res->attempts < max_conn && !*stop) {
		char buf[64];
		unsigned long long gen;
		int fd, pid;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 +
		    (now.tv_nsec - start.tv_nsec) / 1000000 > max_ms)
			break;
		res->attempts++;
		fd = connect_unix(path);
		if (fd < 0) {
			if (errno == ECONNREFUSED || errno == ENOENT)
				res->refused++;
			else
				res->failed++;
			continue;
		}
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0) {
			res->failed++;
			continue;
		}
		buf[n] = '\0';
		if (sscanf(buf, "%d %llu", &pid, &gen) != 2) {
			res->failed++;
			continue;
		}
		res->served++;
		if (pid == old)
			res->by_old++;
		else
			res->by_new++;
		if (gen > res->max_gen)
			res->max_gen = gen;
		nanosleep(&pause_, NULL);
	}
}

TEST_TIMEOUT(take_moves_a_listening_socket_without_refusing_a_connection, 120)
{
	char sock[64], env_sock[96], line[128], spec_l[16], spec_m[16], pid_s[16];
	const char *old_env[] = { "FDH_TEST_HELPER=echo-old", env_sock, NULL };
	const char *new_env[] = { "FDH_TEST_HELPER=echo-new", NULL };
	const char *old_argv[] = { self_exe(), NULL };
	struct client_result *res;
	volatile int *stop;
	int old_out[2], new_out[2], lfd, mfd;
	pid_t old, client, take, new_pid = -1;
	unsigned long long new_gen = 0;

	snprintf(sock, sizeof(sock), "/tmp/fdh-cli-echo-%d.sock", getpid());
	snprintf(env_sock, sizeof(env_sock), "FDH_TEST_SOCK=%s", sock);
	res = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(res != MAP_FAILED);
	stop = (volatile int *)(res + 1);
	memset(res, 0, sizeof(*res));

	/* 1. The old server: a listening socket and a memfd of state. */
	old = spawn_piped(old_argv, old_env, old_out);
	ASSERT_GT(old, 0);
	read_line(old_out[0], line, sizeof(line), 10000);
	ASSERT_EQ(sscanf(line, "ready %*d %d %d", &lfd, &mfd), 2, "old server: '%s'", line);

	/* 2. Clients, from before the switch until well after it. */
	client = fork();
	ASSERT_GE(client, 0);
	if (client == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		client_loop(sock, old, 2000, 5000, stop, res);
		_exit(0);
	}
	usleep(300 * 1000);

	/* 3. The successor takes both fds and execs into the new server. */
	snprintf(pid_s, sizeof(pid_s), "%d", old);
	snprintf(spec_l, sizeof(spec_l), "%d:listen", lfd);
	snprintf(spec_m, sizeof(spec_m), "%d:state", mfd);
	{
		const char *argv[] = { cli_path(), "take", pid_s, spec_l, spec_m,
				       "--", self_exe(), NULL };

		take = spawn_piped(argv, new_env, new_out);
	}
	ASSERT_GT(take, 0);
	read_line(new_out[0], line, sizeof(line), 10000);
	ASSERT_EQ(sscanf(line, "ready %d %llu", &new_pid, &new_gen), 2,
		  "the new server starts with the taken fds: '%s'", line);
	EXPECT_EQ(new_pid, take, "take execs CMD in its own process");
	EXPECT_EQ(new_gen, 2, "the memfd carried the old generation over");

	/* 4. The old server stops accepting and exits. */
	usleep(300 * 1000);
	kill(old, SIGTERM);
	EXPECT_EQ(wait_for(old, 5000), 0, "the old server exits cleanly");

	/* 5. Clients go on against the new server alone. */
	EXPECT_EQ(wait_for(client, 10000), 0);
	TH_LOG("%d connects: %d served (%d old, %d new), %d refused, %d failed",
	       res->attempts, res->served, res->by_old, res->by_new,
	       res->refused, res->failed);
	EXPECT_EQ(res->refused, 0, "no connection refused during the switch");
	EXPECT_EQ(res->failed, 0, "every connection answered");
	EXPECT_GT(res->by_old, 0, "the old server served before the switch");
	EXPECT_GT(res->by_new, 0, "the new server served after it");
	EXPECT_EQ(res->max_gen, 2);
	kill(take, SIGKILL);
	waitpid(take, NULL, 0);
	unlink(sock);
}

int main(int argc, char **argv)
{
	const char *helper = getenv("FDH_TEST_HELPER");

	if (helper)
		return helper_main(helper);
	return th_main(argc, argv);
}
