/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared by the fd-handover subcommands: global options, output in text or
 * JSON, and errors that name what failed and what to do.  Only the CLI
 * prints; the library returns -errno and fdh_last_error().
 */
#ifndef FDH_CLI_H
#define FDH_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit codes, documented in fd-handover(1). */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILURE = 1,		/* the operation failed */
	CLI_EXIT_USAGE = 2,		/* bad arguments */
	CLI_EXIT_NO_PROCESS = 3,	/* the process does not exist (ESRCH) */
	CLI_EXIT_PERMISSION = 4,	/* EPERM/EACCES: see the hint */
	CLI_EXIT_MISMATCH = 5,		/* manifest verify: entries differ */
	/* take: CMD could not be run, as env(1) and the shells report it. */
	CLI_EXIT_CANNOT_EXEC = 126,
	CLI_EXIT_NOT_FOUND = 127,
};

struct cli_opts {
	bool json;		/* -j/--json: output and errors in JSON */
	bool pretty;		/* -p/--pretty: indented JSON (implies -j) */
};

extern struct cli_opts cli;

/* One subcommand: argv[0] is its name; returns an enum cli_exit. */
struct cli_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis;	/* one line for `help` */
};

/*
 * The command of cmds[0..n) that name names: its exact name, else the one
 * it is a prefix of; NULL when none is (or name is empty), and then
 * *ret_ambiguous says whether several were.  For the top level
 * (tools/main.c) and for a command's verbs (manifest show|verify|make).
 */
const struct cli_cmd *cli_find_cmd(const struct cli_cmd *cmds, size_t n,
				   const char *name, bool *ret_ambiguous);

/* The subcommands, one file each (cmd_trace: the eBPF tracer). */
int cmd_ls(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_manifest(int argc, char **argv);
int cmd_take(int argc, char **argv);
int cmd_upgrade(int argc, char **argv);
int cmd_trace(int argc, char **argv);

/*
 * Options every subcommand takes, wherever they stand (getopt permutes):
 * -j/--json, -p/--pretty, -h/--help.  A subcommand's option table starts
 * with CLI_COMMON_LONGOPTS and its short options with CLI_COMMON_SHORTOPTS;
 * cli_common_opt() handles -j and -p and says whether it did.
 */
#define CLI_COMMON_SHORTOPTS "jph"
#define CLI_COMMON_LONGOPTS					\
	{ "json", no_argument, NULL, 'j' },			\
	{ "pretty", no_argument, NULL, 'p' },			\
	{ "help", no_argument, NULL, 'h' }
bool cli_common_opt(int c);
/* Print usage (text to stdout) and return CLI_EXIT_OK. */
int cli_print_usage(const char *usage);
/*
 * getopt returned '?' or ':' (opterr is off, so that errors stay JSON
 * under -j): report the option at argv[optind - 1].
 */
int cli_bad_option(int c, char **argv);
/*
 * getopt_long for a subcommand, with the common options done: returns
 * the command's own next option, -1 at the end, or CLI_GETOPT_EXIT when
 * the command is to return *ret_exit (after --help, or a bad option).
 * optstring starts with ":" (or "+:") and includes CLI_COMMON_SHORTOPTS.
 */
#define CLI_GETOPT_EXIT (-2)
int cli_getopt(int argc, char **argv, const char *optstring,
	       const struct option *longopts, const char *usage,
	       int *ret_exit);
/*
 * The fds a command is to look at: the numbers in argv[0..argc-1], or, if
 * there are none, every fd open in pid now (*ret_named false).  0, or an
 * exit code after reporting the error; *ret_fds is malloc'd.
 */
int cli_fd_args(const char *what, pid_t pid, int argc, char **argv,
		int **ret_fds, size_t *ret_n, bool *ret_named);

/*
 * Print an error (text to stderr, or {"error": ...} to stdout under -j)
 * and return the exit code that fits err (-errno).
 */
int cli_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, with a second line saying what to do (NULL: none). */
int cli_fail_hint(int err, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Same, with an exit code of the caller's choosing. */
int cli_fail_exit(int code, int err, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/*
 * A library call failed with err: report fdh_last_error()->msg, prefixed
 * by what ("take", "ls 4121"), with the hint that fits err for process pid.
 * attach: the operation needs ptrace *attach* permission (pidfd_getfd),
 * not only read permission (/proc/PID/fdinfo).
 */
int cli_fail_lib(int err, const char *what, pid_t pid, bool attach);
/* What to do about err for process pid, or NULL; buf holds the text. */
const char *cli_hint(int err, pid_t pid, bool attach, char *buf, size_t size);
/* Same for bad usage: exit code CLI_EXIT_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Map -errno to an exit code. */
int cli_exit_code(int err);
/* Print a warning to stderr (never into JSON output). */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A small streaming JSON writer for stdout: objects, arrays, and scalar
 * members.  Commas and indentation (under -p) are handled for the caller.
 */
void json_begin_object(const char *key);	/* key NULL inside arrays/top */
void json_end_object(void);
void json_begin_array(const char *key);
void json_end_array(void);
void json_string(const char *key, const char *value);	/* NULL → null */
void json_u64(const char *key, uint64_t value);
void json_i64(const char *key, int64_t value);
void json_bool(const char *key, bool value);
void json_double(const char *key, double value);
void json_null(const char *key);
/* A complete JSON value made elsewhere (the library's manifest JSON). */
void json_raw(const char *key, const char *json_text);
/* Finish the document (newline). */
void json_end(void);

/* Parse a pid / fd argument strictly; -EINVAL if not a plain number. */
int cli_parse_int(const char *s, int min, int *ret);
/* A pid argument: a usage error names the argument when it is not one. */
int cli_parse_pid(const char *s, pid_t *ret);

/*
 * Bytes from another process (comm, memfd names, paths) made safe for a
 * terminal: printable ASCII stays, anything else becomes \xHH.  Always
 * terminated; cut to fit size.
 */
void cli_escape(char *dst, size_t size, const char *src);

/*
 * An aligned text table: cells are added row by row, then printed with
 * each column as wide as its widest cell; the last column is not padded.
 */
struct cli_table;
struct cli_table *cli_table_new(size_t n_cols, const char *const *headers);
void cli_table_add(struct cli_table *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cli_table_print(struct cli_table *t, FILE *out);
void cli_table_free(struct cli_table *t);

/* ------------------------------------------------------------------ */
/* Processes, from /proc (tools/proc.c)                               */

/* /proc/PID/comm without the newline; 0 or -errno. */
int proc_comm(pid_t pid, char comm[16]);
/* /proc/PID/cmdline split into *ret_argv (NULL-terminated, one malloc'd
 * block: free(*ret_argv)); a kernel thread has none (-ENOENT). */
int proc_cmdline(pid_t pid, char ***ret_argv, int *ret_argc);

/* Who holds a socket: the answer to one question of proc_socket_holders. */
struct sock_holder {
	uint64_t ino;		/* in: the socket inode asked about */
	pid_t pid;		/* out: 0 if no holder was found */
	int fd;
	char comm[16];
};

/*
 * Find, for each socket inode in h[], a process holding it, by reading the
 * "socket:[INO]" links of every /proc/PID/fd.  A holder other than avoid
 * is preferred (the peer of a QEMU's socket is interesting when it is not
 * QEMU itself); avoid is the answer only when no other process has it.
 * Bounded (PROC_SCAN_MAX_LINKS links) and tolerant: processes that exit or
 * cannot be read are skipped.  Returns how many inodes got a holder.
 */
#define PROC_SCAN_MAX_LINKS (1u << 20)
int proc_socket_holders(struct sock_holder *h, size_t n, pid_t avoid);

/*
 * How many vhost devices pid owns: the kernel names each owned device's
 * worker "vhost-<owner pid>", a kernel thread up to 6.3, a thread of the
 * owner itself since 6.4 (vhost_task); both are counted.  The kernel does
 * not say which fd a worker serves.  0 when none (released, or never
 * owned), -errno if /proc cannot be read.
 */
int proc_vhost_workers(pid_t pid);

/* The fd numbers open in pid, sorted; *ret_fds is malloc'd. */
int proc_fds(pid_t pid, int **ret_fds, size_t *ret_n);

/* Read a whole file or stdin ("-"), at most max bytes; -EFBIG past it. */
int cli_read_file(const char *path, size_t max, void **ret_buf,
		  size_t *ret_len);

/* ------------------------------------------------------------------ */
/* Describing one fd (tools/describe.c), for ls and whatever shows fds */

struct fdh_fd_info;

/* "reg", "chr", "sock", ... from st_mode; "unknown" for none. */
const char *describe_type(uint32_t mode);
/* "r", "w" or "rw" and the flags that matter ("rw,nonblock,cloexec"). */
void describe_open_flags(uint32_t flags, char *buf, size_t size);
/* The kind's details in one line ("name \"ram0\" size 4096 seals grow");
 * peer, if not NULL, is the holder of a unix socket's other end. */
void describe_text(const struct fdh_fd_info *info,
		   const struct sock_holder *peer, char *buf, size_t size);
/* The same as members of the JSON object being written. */
void describe_json(const struct fdh_fd_info *info,
		   const struct sock_holder *peer);

/* ------------------------------------------------------------------ */
/* The tracer's report (tools/cmd-trace.c prints text and JSON)       */

struct ht_report;
/*
 * The report (the tracer's data, bpf/handover-trace.h) as Chrome/Perfetto
 * trace-event JSON, which ui.perfetto.dev opens: one track per process
 * and thread, slices for phases and syscalls, run-queue waits as async
 * slices, a "wire" process with one track per direction
 * (tools/trace-perfetto.c).  0 or -errno (from writing f).
 */
int trace_write_perfetto(const struct ht_report *r, FILE *f);

#endif /* FDH_CLI_H */
