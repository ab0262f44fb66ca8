// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fd-handover take PID FD[=NEWFD][:NAME]... [--] CMD [ARGS...]: the
 * generic successor start.  Pull the named fds out of PID (verified, all
 * or nothing), put them where CMD expects them, and exec CMD, which thus
 * inherits them without knowing about this library.
 *
 * Without =NEWFD the fds go to 3, 4, ... in the order given, and
 * LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID say so, as systemd's socket
 * activation does (sd_listen_fds(3)): daemons that support it need no
 * change at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fdhandover.h"

static const char usage[] =
	"Usage: fd-handover take [OPTIONS] PID FD[=NEWFD][:NAME]... [--] CMD [ARGS...]\n"
	"\n"
	"Pull fds FD... out of the live process PID (pidfd_getfd, each verified,\n"
	"all or nothing) and exec CMD with them.\n"
	"\n"
	"  FD          placed at 3, 4, ... in the order given, with LISTEN_FDS,\n"
	"              LISTEN_FDNAMES (NAME, default \"fd<FD>\") and LISTEN_PID set\n"
	"              as systemd socket activation does\n"
	"  FD=NEWFD    placed at NEWFD exactly; LISTEN_* are removed from the\n"
	"              environment (every FD must then say where it goes)\n"
	"\n"
	"The source keeps its own copies: both share the open files until it\n"
	"closes them or exits.  Options come before PID:\n"
	"  -v, --verbose  say what was pulled and how, on stderr, before exec\n"
	"  -j, --json     errors as JSON\n"
	"  -h, --help     this help\n";

/* systemd's limit on one fd name (sd_listen_fds_with_names). */
#define FDNAME_MAX 255

struct spec {
	int fd;			/* in the source */
	int newfd;		/* where CMD gets it; -1: 3 + position */
	char name[FDNAME_MAX + 1];
};

static bool fdname_ok(const char *s)
{
	size_t len = strlen(s);

	if (!len || len > FDNAME_MAX)
		return false;
	/* Printable ASCII but ':', which separates names in LISTEN_FDNAMES. */
	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == ':')
			return false;
	return true;
}

/* "7", "7=3", "7:listen", "7=3:listen"; false if arg is no spec. */
static bool parse_spec(const char *arg, struct spec *s)
{
	char num[16];
	const char *name = strchr(arg, ':');
	const char *eq;
	size_t len = name ? (size_t)(name - arg) : strlen(arg);

	if (len >= sizeof(num))
		return false;
	memcpy(num, arg, len);
	num[len] = '\0';
	s->newfd = -1;
	eq = strchr(num, '=');
	if (eq) {
		num[eq - num] = '\0';
		if (cli_parse_int(eq + 1, 0, &s->newfd) < 0)
			return false;
	}
	if (cli_parse_int(num, 0, &s->fd) < 0)
		return false;
	if (name) {
		if (!fdname_ok(name + 1))
			return false;
		snprintf(s->name, sizeof(s->name), "%s", name + 1);
	} else {
		snprintf(s->name, sizeof(s->name), "fd%d", s->fd);
	}
	return true;
}

static int check_specs(const struct spec *specs, size_t n, bool *ret_listen)
{
	size_t explicit = 0;

	for (size_t i = 0; i < n; i++) {
		if (specs[i].newfd >= 0)
			explicit++;
		for (size_t j = 0; j < i; j++) {
			if (specs[j].fd == specs[i].fd)
				return cli_usage("take: fd %d is named twice",
						 specs[i].fd);
			if (specs[i].newfd >= 0 && specs[j].newfd == specs[i].newfd)
				return cli_usage("take: two fds would both go to %d",
						 specs[i].newfd);
		}
	}
	if (explicit && explicit != n)
		return cli_usage("take: either every FD says =NEWFD or none does (then they go to 3, 4, ... with LISTEN_FDS)");
	*ret_listen = explicit == 0;
	return 0;
}

/*
 * Describe each fd and pull them all.  The identity expected is the one
 * /proc shows now: the pull then proves, by fstat, the kind's own id and
 * kcmp, that each fd it got is that file and not a number reused since.
 * Returns an exit code, after reporting any error.
 */
static int pull_all(pid_t pid, const struct spec *specs, size_t n, int *fds,
		    bool verbose)
{
	struct fdh_pull_entry *entries;
	struct fdh_pull_report report;
	struct fdh_source *src;
	int code, r;

	r = fdh_source_open_pid(pid, 0, &src);
	if (r < 0)
		return cli_fail_lib(r, "take", pid, true);
	entries = calloc(n, sizeof(*entries));
	if (!entries) {
		fdh_source_free(src);
		return cli_fail(-ENOMEM, "take: out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		struct fdh_fd_info info;

		r = fdh_inspect_fd(pid, specs[i].fd, 0, &info);
		if (r < 0) {
			/* Reading /proc needs less than the pull will: the
			 * hint names what take needs in the end. */
			code = cli_fail_lib(r, "take", pid, true);
			goto out;
		}
		entries[i].remote_fd = specs[i].fd;
		entries[i].label = specs[i].name;
		fdh_identity_from_info(&info, &entries[i].expect);
	}
	r = fdh_pull(src, entries, n, fds, &report);
	if (r < 0) {
		code = cli_fail_lib(r, "take", pid, true);
		goto out;
	}
	if (verbose)
		fprintf(stderr,
			"fd-handover: took %zu fd%s from pid %d by %s (%zu verified by kcmp) in %" PRIu64 " us\n",
			n, n == 1 ? "" : "s", pid,
			fdh_transport_name(report.transport),
			report.n_kcmp_verified, report.elapsed_ns / 1000);
	code = CLI_EXIT_OK;
out:
	free(entries);
	fdh_source_free(src);
	return code;
}

/*
 * Put fds[i] at target[i] without O_CLOEXEC.  A pulled fd may sit on
 * another's target (pulled fds take the lowest free numbers, the very
 * 3, 4, ... asked for): every fd first moves above the highest target,
 * after which no dup onto a target can clobber a pulled fd.
 */
static int place(int *fds, const int *targets, size_t n)
{
	int hi = 0;

	for (size_t i = 0; i < n; i++)
		if (targets[i] > hi)
			hi = targets[i];
	for (size_t i = 0; i < n; i++) {
		int moved;

		if (fds[i] > hi)
			continue;
		moved = fcntl(fds[i], F_DUPFD_CLOEXEC, hi + 1);
		if (moved < 0)
			return -errno;
		close(fds[i]);
		fds[i] = moved;
	}
	for (size_t i = 0; i < n; i++) {
		if (dup3(fds[i], targets[i], 0) < 0)
			return -errno;
		close(fds[i]);
		fds[i] = targets[i];
	}
	return 0;
}

static int set_listen_env(const struct spec *specs, size_t n)
{
	char num[32], *names;
	size_t len = 0;

	names = malloc(n * (FDNAME_MAX + 1) + 1);
	if (!names)
		return -ENOMEM;
	names[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(names + len, "%s%s", i ? ":" : "",
				       specs[i].name);
	snprintf(num, sizeof(num), "%zu", n);
	if (setenv("LISTEN_FDS", num, 1) < 0 ||
	    setenv("LISTEN_FDNAMES", names, 1) < 0) {
		free(names);
		return -errno;
	}
	free(names);
	/* exec keeps our pid: CMD checks LISTEN_PID against getpid(). */
	snprintf(num, sizeof(num), "%d", (int)getpid());
	return setenv("LISTEN_PID", num, 1) < 0 ? -errno : 0;
}

int cmd_take(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_COMMON_LONGOPTS,
		{ "verbose", no_argument, NULL, 'v' },
		{ 0 }
	};
	struct spec *specs = NULL;
	int *fds = NULL, *targets = NULL;
	bool verbose = false, listen = true;
	size_t n = 0;
	/* code: an exit code (enum cli_exit); err: a -errno, never returned. */
	int c, code, err;
	pid_t pid;

	/* "+": options only before PID; CMD's options are CMD's. */
	while ((c = cli_getopt(argc, argv, "+:" CLI_COMMON_SHORTOPTS "v", opts,
			       usage, &code)) > 0)
		if (c == 'v')
			verbose = true;
	if (c == CLI_GETOPT_EXIT)
		return code;
	if (optind >= argc)
		return cli_usage("take: needs PID FD... [--] CMD");
	code = cli_parse_pid(argv[optind++], &pid);
	if (code)
		return code;
	specs = calloc((size_t)argc, sizeof(*specs));
	if (!specs)
		return cli_fail(-ENOMEM, "take: out of memory");
	while (optind < argc && strcmp(argv[optind], "--") != 0 &&
	       parse_spec(argv[optind], &specs[n])) {
		n++;
		optind++;
	}
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (n == 0) {
		code = cli_usage("take: no FD to take%s%s%s",
			      optind < argc ? " ('" : "",
			      optind < argc ? argv[optind] : "",
			      optind < argc ? "' is not FD[=NEWFD][:NAME])" : "");
		goto out;
	}
	if (n > FDH_PULL_MAX) {
		code = cli_usage("take: %zu fds, more than one pull takes (%d)", n,
			      FDH_PULL_MAX);
		goto out;
	}
	if (optind >= argc) {
		code = cli_usage("take: no CMD to run with the fds");
		goto out;
	}
	code = check_specs(specs, n, &listen);
	if (code)
		goto out;

	fds = calloc(n, sizeof(*fds));
	targets = calloc(n, sizeof(*targets));
	if (!fds || !targets) {
		code = cli_fail(-ENOMEM, "take: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		targets[i] = listen ? 3 + (int)i : specs[i].newfd;

	code = pull_all(pid, specs, n, fds, verbose);
	if (code)
		goto out;
	err = place(fds, targets, n);
	if (err < 0) {
		code = cli_fail(err, "take: placing the pulled fds (dup3): %s",
				strerror(-err));
		goto out;
	}
	if (listen) {
		err = set_listen_env(specs, n);
	} else {
		/* Inherited ones would describe fds that are not there. */
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
		unsetenv("LISTEN_PID");
		err = 0;
	}
	if (err < 0) {
		code = cli_fail(err, "take: setting LISTEN_*: %s", strerror(-err));
		goto out;
	}
	fflush(NULL);
	execvp(argv[optind], argv + optind);
	err = -errno;
	/* As env(1) and the shells: 127 not found, 126 found but not run. */
	code = cli_fail_exit(err == -ENOENT ? CLI_EXIT_NOT_FOUND : CLI_EXIT_CANNOT_EXEC,
			     err, "the source still holds its own copies; nothing was changed there",
			     "take: execvp(%s): %s", argv[optind], strerror(-err));
out:
	free(specs);
	free(fds);
	free(targets);
	return code;
}
