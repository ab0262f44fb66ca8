// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What every subcommand shares: options, errors with hints, the JSON
 * writer, the text table and strict number parsing.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdhandover.h"
#include "fdh-shared.h"

struct cli_opts cli;

bool cli_common_opt(int c)
{
	if (c != 'j' && c != 'p')
		return false;
	/* Pretty output is JSON output. */
	cli.json = true;
	if (c == 'p')
		cli.pretty = true;
	return true;
}

int cli_print_usage(const char *usage)
{
	fputs(usage, stdout);
	return CLI_EXIT_OK;
}

int cli_bad_option(int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		return cli_usage("option '%s' needs an argument", arg);
	if (optopt && arg[0] == '-' && arg[1] != '-')
		return cli_usage("unknown option '-%c'", optopt);
	return cli_usage("unknown option '%s'", arg);
}

int cli_getopt(int argc, char **argv, const char *optstring,
	       const struct option *longopts, const char *usage,
	       int *ret_exit)
{
	int c;

	while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
		if (cli_common_opt(c))
			continue;
		if (c == 'h') {
			*ret_exit = cli_print_usage(usage);
			return CLI_GETOPT_EXIT;
		}
		if (c == '?' || c == ':') {
			*ret_exit = cli_bad_option(c, argv);
			return CLI_GETOPT_EXIT;
		}
		return c;
	}
	return -1;
}

int cli_fd_args(const char *what, pid_t pid, int argc, char **argv,
		int **ret_fds, size_t *ret_n, bool *ret_named)
{
	char hint[512];
	int *fds;
	int r;

	if (argc <= 0) {
		*ret_named = false;
		r = proc_fds(pid, ret_fds, ret_n);
		if (r < 0)
			return cli_fail_hint(r, cli_hint(r, pid, false, hint, sizeof(hint)),
					     "%s: reading /proc/%d/fd: %s", what,
					     pid, strerror(-r));
		return 0;
	}
	fds = calloc((size_t)argc, sizeof(*fds));
	if (!fds)
		return cli_fail(-ENOMEM, "%s: out of memory", what);
	for (int i = 0; i < argc; i++) {
		if (cli_parse_int(argv[i], 0, &fds[i]) < 0) {
			free(fds);
			return cli_usage("%s: '%s' is not an fd number", what,
					 argv[i]);
		}
	}
	*ret_fds = fds;
	*ret_n = (size_t)argc;
	*ret_named = true;
	return 0;
}

/* ------------------------------------------------------------------ */
/* JSON writer                                                        */

#define JSON_MAX_DEPTH 32

static struct {
	int depth;
	bool first[JSON_MAX_DEPTH];	/* nothing written yet at this level */
	bool array[JSON_MAX_DEPTH];
} jw;

static void json_indent(void)
{
	fputc('\n', stdout);
	for (int i = 0; i < jw.depth; i++)
		fputs("  ", stdout);
}

/* The one JSON string quoter (lib/fdh-shared.h), onto stdout. */
static void json_quote(const char *s)
{
	fdh_json_quote(s, strlen(s), fdh_put_file, stdout);
}

static void json_next(const char *key)
{
	if (jw.depth > 0) {
		if (!jw.first[jw.depth])
			fputc(',', stdout);
		jw.first[jw.depth] = false;
		if (cli.pretty)
			json_indent();
		/* A key only inside an object; inside arrays it is ignored. */
		if (key && !jw.array[jw.depth]) {
			json_quote(key);
			fputs(cli.pretty ? ": " : ":", stdout);
		}
	}
}

static void json_open(const char *key, bool array)
{
	json_next(key);
	fputc(array ? '[' : '{', stdout);
	if (jw.depth + 1 < JSON_MAX_DEPTH)
		jw.depth++;
	jw.first[jw.depth] = true;
	jw.array[jw.depth] = array;
}

static void json_close(void)
{
	bool empty = jw.first[jw.depth];
	bool array = jw.array[jw.depth];

	if (jw.depth > 0)
		jw.depth--;
	if (cli.pretty && !empty)
		json_indent();
	fputc(array ? ']' : '}', stdout);
}

void json_begin_object(const char *key)
{
	json_open(key, false);
}

void json_end_object(void)
{
	json_close();
}

void json_begin_array(const char *key)
{
	json_open(key, true);
}

void json_end_array(void)
{
	json_close();
}

void json_string(const char *key, const char *value)
{
	json_next(key);
	if (value)
		json_quote(value);
	else
		fputs("null", stdout);
}

void json_u64(const char *key, uint64_t value)
{
	json_next(key);
	printf("%" PRIu64, value);
}

void json_i64(const char *key, int64_t value)
{
	json_next(key);
	printf("%" PRId64, value);
}

void json_bool(const char *key, bool value)
{
	json_next(key);
	fputs(value ? "true" : "false", stdout);
}

void json_double(const char *key, double value)
{
	char buf[32];

	json_next(key);
	/* The shortest of the two that reads back as the same double. */
	snprintf(buf, sizeof(buf), "%.15g", value);
	if (strtod(buf, NULL) != value)
		snprintf(buf, sizeof(buf), "%.17g", value);
	fputs(buf, stdout);
}

void json_null(const char *key)
{
	json_next(key);
	fputs("null", stdout);
}

void json_raw(const char *key, const char *json_text)
{
	size_t len = strlen(json_text);

	json_next(key);
	/* The library ends its document with a newline; ours goes on. */
	while (len && json_text[len - 1] == '\n')
		len--;
	fwrite(json_text, 1, len, stdout);
}

void json_end(void)
{
	while (jw.depth > 0)
		json_close();
	fputc('\n', stdout);
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Errors                                                             */

int cli_exit_code(int err)
{
	switch (err) {
	case 0:
		return CLI_EXIT_OK;
	case -ESRCH:
		return CLI_EXIT_NO_PROCESS;
	case -EPERM:
	case -EACCES:
		return CLI_EXIT_PERMISSION;
	case -E2BIG:
		/* More fds than one pull takes: the arguments' fault. */
		return CLI_EXIT_USAGE;
	default:
		return CLI_EXIT_FAILURE;
	}
}

static const char *errno_name(int err)
{
	switch (-err) {
	case 0: return NULL;
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EBADF: return "EBADF";
	case EACCES: return "EACCES";
	case EINVAL: return "EINVAL";
	case EMFILE: return "EMFILE";
	case ENOMEM: return "ENOMEM";
	case ENOSYS: return "ENOSYS";
	case ESTALE: return "ESTALE";
	case EBADMSG: return "EBADMSG";
	case EPROTO: return "EPROTO";
	case E2BIG: return "E2BIG";
	case EFBIG: return "EFBIG";
	case EEXIST: return "EEXIST";
	case EIO: return "EIO";
	case EINTR: return "EINTR";
	case EPIPE: return "EPIPE";
	case ENOEXEC: return "ENOEXEC";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ECONNREFUSED: return "ECONNREFUSED";
	}
	return "EOTHER";
}

/*
 * Under -j an error is part of the document on stdout, so that a caller
 * parsing our output always gets JSON.  Output already begun (an error
 * after the first row) gets the error as its last member, then closes.
 */
__attribute__((format(printf, 4, 0)))
static int vfail(int err, int code, const char *hint, const char *fmt,
		 va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (cli.json) {
		if (jw.depth > 0 && jw.array[jw.depth])
			json_begin_object(NULL);
		if (jw.depth == 0)
			json_begin_object(NULL);
		json_string("error", msg);
		json_string("errno", errno_name(err));
		json_i64("exit_code", code);
		if (hint)
			json_string("hint", hint);
		json_end();
	} else {
		fflush(stdout);
		fprintf(stderr, "fd-handover: %s\n", msg);
		if (hint)
			fprintf(stderr, "fd-handover: hint: %s\n", hint);
	}
	return code;
}

int cli_fail(int err, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vfail(err, cli_exit_code(err), NULL, fmt, ap);
	va_end(ap);
	return r;
}

int cli_fail_hint(int err, const char *hint, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vfail(err, cli_exit_code(err), hint, fmt, ap);
	va_end(ap);
	return r;
}

int cli_fail_exit(int code, int err, const char *hint, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vfail(err, code, hint, fmt, ap);
	va_end(ap);
	return r;
}

int cli_usage(const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vfail(-EINVAL, CLI_EXIT_USAGE,
		  "see `fd-handover help` and fd-handover(1)", fmt, ap);
	va_end(ap);
	return r;
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("fd-handover: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Yama's ptrace_scope, or -1 where Yama is not built in. */
static int yama_scope(void)
{
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
	int scope = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &scope) != 1)
		scope = -1;
	fclose(f);
	return scope;
}

const char *cli_hint(int err, pid_t pid, bool attach, char *buf, size_t size)
{
	int scope;

	switch (err) {
	case -EPERM:
	case -EACCES:
		if (!attach) {
			snprintf(buf, size,
				 "needs ptrace read permission over PID %d: the same uid and a dumpable process, or CAP_SYS_PTRACE (run as its user or as root)",
				 pid);
			return buf;
		}
		scope = yama_scope();
		if (scope < 0)
			snprintf(buf, size,
				 "needs ptrace permission over PID %d: the same uid and a dumpable process, or CAP_SYS_PTRACE (run as its user or as root)",
				 pid);
		else
			snprintf(buf, size,
				 "needs ptrace permission over PID %d: same uid and Yama ptrace_scope <= 1 (it is %d here), or CAP_SYS_PTRACE; at scope 1 the source may allow us with prctl(PR_SET_PTRACER)",
				 pid, scope);
		return buf;
	case -ESRCH:
		snprintf(buf, size,
			 "process %d does not exist (any more); check the PID, e.g. with `ps -p %d`",
			 pid, pid);
		return buf;
	case -EBADF:
		snprintf(buf, size,
			 "list the fds process %d holds with `fd-handover ls %d`",
			 pid, pid);
		return buf;
	case -ESTALE:
		return "the number now names another file: the process changed it since it was described; describe it again (fd-handover ls / manifest make)";
	case -EMFILE:
		return "too many open files: raise the limit (ulimit -n) or pull fewer fds";
	case -ENOSYS:
		return "this kernel lacks pidfd_open/pidfd_getfd (Linux 5.6) or a seccomp filter blocks them";
	}
	return NULL;
}

int cli_fail_lib(int err, const char *what, pid_t pid, bool attach)
{
	const struct fdh_error *e = fdh_last_error();
	char hint[512];
	const char *h = cli_hint(err, pid, attach, hint, sizeof(hint));

	/* The detail is the library's when it describes this failure. */
	if (e->code == err && e->msg[0])
		return cli_fail_hint(err, h, "%s: %s", what, e->msg);
	return cli_fail_hint(err, h, "%s: pid %d: %s", what, pid, strerror(-err));
}

/* ------------------------------------------------------------------ */
/* Arguments                                                          */

int cli_parse_int(const char *s, int min, int *ret)
{
	long v;
	char *end;

	/* Digits only: no sign, blanks, hex or trailing text ("12x"). */
	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > INT_MAX)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

int cli_parse_pid(const char *s, pid_t *ret)
{
	int v;

	if (cli_parse_int(s, 1, &v) < 0)
		return cli_usage("'%s' is not a process id (a number above 0)",
				 s ? s : "");
	*ret = v;
	return 0;
}

void cli_escape(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '\\') {
			if (n + 2 > size)
				break;
			dst[n++] = (char)*p;
		} else {
			if (n + 5 > size)
				break;
			n += (size_t)snprintf(dst + n, size - n, "\\x%02x", *p);
		}
	}
	dst[n] = '\0';
}

int cli_read_file(const char *path, size_t max, void **ret_buf,
		  size_t *ret_len)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	int fd, r = 0;

	if (!buf)
		return -ENOMEM;
	if (strcmp(path, "-") == 0) {
		fd = STDIN_FILENO;
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			free(buf);
			return -errno;
		}
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *grown;

			/* One byte past max tells "too big" from "max". */
			if (cap > max) {
				r = -EFBIG;
				break;
			}
			cap *= 2;
			grown = realloc(buf, cap);
			if (!grown) {
				r = -ENOMEM;
				break;
			}
			buf = grown;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			r = -EFBIG;
			break;
		}
	}
	if (fd != STDIN_FILENO)
		close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Text table                                                         */

struct cli_table {
	size_t n_cols;
	size_t n_cells, cap;
	char **cells;		/* row-major */
};

struct cli_table *cli_table_new(size_t n_cols, const char *const *headers)
{
	struct cli_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->n_cols = n_cols;
	for (size_t i = 0; headers && i < n_cols; i++)
		cli_table_add(t, "%s", headers[i]);
	return t;
}

void cli_table_add(struct cli_table *t, const char *fmt, ...)
{
	va_list ap;
	char *cell;

	if (!t)
		return;
	va_start(ap, fmt);
	if (vasprintf(&cell, fmt, ap) < 0)
		cell = NULL;
	va_end(ap);
	if (t->n_cells == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		char **grown = realloc(t->cells, ncap * sizeof(*grown));

		if (!grown) {
			free(cell);
			return;
		}
		t->cells = grown;
		t->cap = ncap;
	}
	/* A cell that could not be made still holds its place. */
	t->cells[t->n_cells++] = cell;
}

void cli_table_print(struct cli_table *t, FILE *out)
{
	size_t *width;

	if (!t || !t->n_cols)
		return;
	width = calloc(t->n_cols, sizeof(*width));
	if (!width)
		return;
	/* The layout the library's manifest text uses too. */
	fdh_table_layout((const char *const *)t->cells, t->n_cells, t->n_cols,
			 width, "", fdh_put_file, out);
	free(width);
}

void cli_table_free(struct cli_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_cells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

const struct cli_cmd *cli_find_cmd(const struct cli_cmd *cmds, size_t n,
				   const char *name, bool *ret_ambiguous)
{
	const struct cli_cmd *match = NULL;
	size_t len = strlen(name);

	*ret_ambiguous = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
		if (len && strncmp(cmds[i].name, name, len) == 0) {
			if (match)
				*ret_ambiguous = true;
			match = &cmds[i];
		}
	}
	return *ret_ambiguous ? NULL : match;
}
