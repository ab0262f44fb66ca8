// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fd-handover manifest {show | verify | make}: read a handover manifest,
 * check it against the live process, or write one for a process's fds.
 *
 * verify answers the operator's question before a handover: does every fd
 * the manifest names still hold the file it names?  The identity compared
 * is the one fdh_pull() would check (kind, dev, ino, file type, the kind's
 * own id, a TAP's interface name), read from /proc without pulling.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fdhandover.h"

static const char usage[] =
	"Usage: fd-handover manifest show [OPTIONS] FILE|-\n"
	"       fd-handover manifest verify [OPTIONS] PID FILE|-\n"
	"       fd-handover manifest make [OPTIONS] PID [FD...] [-o FILE]\n"
	"\n"
	"show    decode a manifest and print it (text, or JSON with -j)\n"
	"verify  check every entry against process PID: is its fd still open\n"
	"        and the same file?  Exit code 5 when any entry differs or the\n"
	"        source is gone\n"
	"make    write a manifest for PID's fds (all, or FD...), owners \"fd<N>\"\n"
	"\n"
	"Options:\n"
	"  -o, --output FILE  make: write to FILE instead of stdout\n"
	"  -n, --no-pull      make: describe from /proc only (no pidfd_getfd)\n"
	"  -j, --json         JSON output (Documentation/cli-json.md)\n"
	"  -p, --pretty       indented JSON\n"
	"  -h, --help         this help\n";

/* Options shared by the three verbs; each uses what it needs. */
struct mopts {
	const char *output;
	unsigned int inspect_flags;
};

/* 0, or CLI_GETOPT_EXIT with the exit code in *ret_exit. */
static int parse_opts(int argc, char **argv, struct mopts *o, int *ret_exit)
{
	static const struct option opts[] = {
		CLI_COMMON_LONGOPTS,
		{ "output", required_argument, NULL, 'o' },
		{ "no-pull", no_argument, NULL, 'n' },
		{ 0 }
	};
	int c;

	o->output = NULL;
	o->inspect_flags = FDH_INSPECT_PULL;
	while ((c = cli_getopt(argc, argv, ":" CLI_COMMON_SHORTOPTS "o:n", opts,
			       usage, ret_exit)) > 0) {
		if (c == 'o')
			o->output = optarg;
		else if (c == 'n')
			o->inspect_flags &= ~(unsigned int)FDH_INSPECT_PULL;
	}
	return c == CLI_GETOPT_EXIT ? c : 0;
}

/* Read and decode FILE or stdin; an exit code on failure. */
static int load(const char *verb, const char *path, struct fdh_manifest **ret)
{
	void *buf;
	size_t len;
	int r;

	r = cli_read_file(path, FDH_MANIFEST_MAX_BYTES, &buf, &len);
	if (r == -EFBIG)
		return cli_fail(-EBADMSG, "manifest %s: %s: larger than %u bytes, the most a manifest may be",
				verb, path, FDH_MANIFEST_MAX_BYTES);
	if (r < 0)
		return cli_fail(r, "manifest %s: reading %s: %s", verb,
				strcmp(path, "-") == 0 ? "stdin" : path,
				strerror(-r));
	r = fdh_manifest_decode(buf, len, ret);
	free(buf);
	if (r < 0)
		return cli_fail_hint(r, "is it a manifest written by `fd-handover manifest make` or libfdhandover (magic \"FDHM\")?",
				     "manifest %s: %s: %s", verb, path,
				     fdh_last_error()->msg);
	return 0;
}

/* ------------------------------------------------------------------ */
/* show                                                               */

static int manifest_show(int argc, char **argv)
{
	struct fdh_manifest *m;
	struct mopts o;
	char *out;
	int r;

	if (parse_opts(argc, argv, &o, &r))
		return r;
	if (argc - optind != 1)
		return cli_usage("manifest show: needs one FILE (or - for stdin)");
	r = load("show", argv[optind], &m);
	if (r)
		return r;
	if (cli.json)
		r = fdh_manifest_to_json(m, cli.pretty, &out);
	else
		r = fdh_manifest_to_text(m, &out);
	fdh_manifest_free(m);
	if (r < 0)
		return cli_fail(r, "manifest show: %s", fdh_last_error()->msg);
	fputs(out, stdout);
	if (out[0] && out[strlen(out) - 1] != '\n')
		fputc('\n', stdout);
	free(out);
	return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* verify                                                             */

enum entry_state {
	STATE_OK,
	STATE_CLOSED,		/* the number is not open */
	STATE_REPLACED,		/* open, but another file */
	STATE_GONE,		/* the source is dead: nothing to check */
	STATE_ERROR,		/* could not be read */
};

static const char *const state_names[] = {
	[STATE_OK] = "ok",
	[STATE_CLOSED] = "closed",
	[STATE_REPLACED] = "replaced",
	[STATE_GONE] = "gone",
	[STATE_ERROR] = "error",
};

struct check {
	enum entry_state state;
	char differs[128];		/* "ino,kind_id" */
	/* Room for an escaped target or a library message, and the rest. */
	char detail[FDH_PATH_MAX * 4 + 640];
	bool have_now;
	struct fdh_fd_info now;
};

enum source_state {
	SOURCE_ALIVE,		/* the process the manifest was made from */
	SOURCE_OTHER,		/* PID is another process than the manifest's */
	SOURCE_DEAD,
	SOURCE_RECYCLED,	/* the pid now names another process */
	SOURCE_OTHER_BOOT,	/* made before the last boot */
	SOURCE_UID_CHANGED,	/* that process, now under another uid */
};

static const char *const source_names[] = {
	[SOURCE_ALIVE] = "alive",
	[SOURCE_OTHER] = "other-process",
	[SOURCE_DEAD] = "dead",
	[SOURCE_RECYCLED] = "recycled",
	[SOURCE_OTHER_BOOT] = "other-boot",
	[SOURCE_UID_CHANGED] = "uid-changed",
};

static bool source_lost(enum source_state s)
{
	return s == SOURCE_DEAD || s == SOURCE_RECYCLED || s == SOURCE_OTHER_BOOT;
}

static enum source_state check_source(const struct fdh_manifest *m, pid_t pid,
				      struct fdh_manifest_source *live)
{
	struct fdh_manifest *now = fdh_manifest_new();
	enum source_state s;

	memset(live, 0, sizeof(*live));
	if (!now)
		return SOURCE_DEAD;
	if (fdh_manifest_set_source(now, pid) < 0 || fdh_process_gone(pid)) {
		fdh_manifest_free(now);
		return SOURCE_DEAD;
	}
	*live = now->source;
	fdh_manifest_free(now);
	if (strcmp(live->boot_id, m->source.boot_id) != 0)
		s = SOURCE_OTHER_BOOT;
	else if (pid != m->source.pid)
		s = SOURCE_OTHER;
	else if (live->start_time != m->source.start_time)
		s = SOURCE_RECYCLED;
	else if (live->uid != m->source.uid)
		s = SOURCE_UID_CHANGED;	/* a pull refuses it: -ESTALE */
	else
		s = SOURCE_ALIVE;
	return s;
}

/* Append a field name to c->differs. */
static void differ(struct check *c, const char *field)
{
	size_t n = strlen(c->differs);

	snprintf(c->differs + n, sizeof(c->differs) - n, "%s%s",
		 n ? "," : "", field);
}

/*
 * Check one entry.  Returns 0, 1 when the process turned out to be gone,
 * or -EACCES/-EPERM when it cannot be read at all.
 */
static int check_entry(pid_t pid, const struct fdh_manifest_entry *e,
		       struct check *c)
{
	/* The names in "differs" (Documentation/cli-json.md), in order. */
	static const struct {
		unsigned int bit;
		const char *name;
	} fields[] = {
		{ FDH_IDENTITY_KIND, "kind" },
		{ FDH_IDENTITY_DEV, "dev" },
		{ FDH_IDENTITY_INO, "ino" },
		{ FDH_IDENTITY_TYPE, "type" },
		{ FDH_IDENTITY_KIND_ID, "kind_id" },
		{ FDH_IDENTITY_NAME, "name" },
	};
	struct fdh_identity want, got;
	char esc[FDH_PATH_MAX * 4 + 1];
	unsigned int diff;
	int r;

	memset(c, 0, sizeof(*c));
	r = fdh_inspect_fd(pid, e->remote_fd, 0, &c->now);
	switch (r) {
	case 0:
		break;
	case -EBADF:
		c->state = STATE_CLOSED;
		snprintf(c->detail, sizeof(c->detail), "fd %" PRId32 " is not open",
			 e->remote_fd);
		return 0;
	case -ESRCH:
		return 1;
	case -EACCES:
	case -EPERM:
		return r;
	default:
		c->state = STATE_ERROR;
		snprintf(c->detail, sizeof(c->detail), "%s",
			 fdh_last_error()->msg);
		return 0;
	}
	c->have_now = true;
	fdh_manifest_entry_identity(e, &want);
	fdh_identity_from_info(&c->now, &got);
	/* fdh_pull's own rule, field by field. */
	diff = fdh_identity_diff(&want, &got);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (diff & fields[i].bit)
			differ(c, fields[i].name);
	if (!c->differs[0]) {
		c->state = STATE_OK;
		return 0;
	}
	c->state = STATE_REPLACED;
	cli_escape(esc, sizeof(esc), c->now.target);
	snprintf(c->detail, sizeof(c->detail), "%s differ%s; now %s %s (ino %" PRIu64 ")",
		 c->differs, strchr(c->differs, ',') ? "" : "s",
		 fdh_kind_name(c->now.kind), esc, c->now.ino);
	return 0;
}

static void print_verify_json(const struct fdh_manifest *m, pid_t pid,
			      enum source_state ss,
			      const struct fdh_manifest_source *live,
			      const struct check *checks, const size_t *counts,
			      bool ok)
{
	json_begin_object(NULL);
	json_i64("pid", pid);
	json_bool("ok", ok);
	json_begin_object("source");
	json_string("state", source_names[ss]);
	json_i64("pid", m->source.pid);
	json_string("comm", m->source.comm);
	json_u64("start_time", m->source.start_time);
	if (ss == SOURCE_DEAD)
		json_null("now_start_time");
	else
		json_u64("now_start_time", live->start_time);
	json_end_object();
	json_begin_object("counts");
	for (int s = STATE_OK; s <= STATE_ERROR; s++)
		json_u64(state_names[s], counts[s]);
	json_end_object();
	json_begin_array("entries");
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct fdh_manifest_entry *e = &m->entries[i];
		const struct check *c = &checks[i];

		json_begin_object(NULL);
		json_u64("entry", i);
		json_string("owner", e->owner);
		json_u64("index", e->index);
		json_i64("fd", e->remote_fd);
		json_string("kind", fdh_kind_name(e->kind));
		json_string("state", state_names[c->state]);
		json_begin_array("differs");
		if (c->state == STATE_REPLACED) {
			char copy[sizeof(c->differs)], *save = NULL;

			snprintf(copy, sizeof(copy), "%s", c->differs);
			for (char *f = strtok_r(copy, ",", &save); f;
			     f = strtok_r(NULL, ",", &save))
				json_string(NULL, f);
		}
		json_end_array();
		if (c->have_now && c->state != STATE_OK) {
			json_begin_object("now");
			json_string("kind", fdh_kind_name(c->now.kind));
			json_string("target", c->now.target);
			json_u64("dev", c->now.dev);
			json_u64("ino", c->now.ino);
			json_end_object();
		} else {
			json_null("now");
		}
		json_string("detail", c->detail[0] ? c->detail : NULL);
		json_end_object();
	}
	json_end_array();
	json_end();
}

static void print_verify_text(const struct fdh_manifest *m, pid_t pid,
			      enum source_state ss,
			      const struct check *checks, const size_t *counts,
			      bool ok)
{
	static const char *const headers[] = {
		"ENTRY", "OWNER", "INDEX", "FD", "KIND", "STATE", "DETAIL",
	};
	char comm[64], owner[FDH_OWNER_MAX * 4 + 1];
	struct cli_table *t;

	cli_escape(comm, sizeof(comm), m->source.comm);
	printf("manifest of pid %" PRId32 " (%s), %zu entr%s; checking pid %d: ",
	       m->source.pid, comm, m->n_entries,
	       m->n_entries == 1 ? "y" : "ies", pid);
	switch (ss) {
	case SOURCE_ALIVE:
		printf("the same process, alive\n");
		break;
	case SOURCE_OTHER:
		printf("another process than the manifest's (entries checked by identity)\n");
		break;
	case SOURCE_DEAD:
		printf("DEAD: the source has exited\n");
		break;
	case SOURCE_RECYCLED:
		printf("RECYCLED: pid %d is now another process (start time differs)\n",
		       pid);
		break;
	case SOURCE_OTHER_BOOT:
		printf("OTHER BOOT: the manifest was made before the last boot\n");
		break;
	case SOURCE_UID_CHANGED:
		printf("UID CHANGED: the same process, not under uid %u any more: a pull refuses it\n",
		       (unsigned)m->source.uid);
		break;
	}
	t = cli_table_new(7, headers);
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct fdh_manifest_entry *e = &m->entries[i];

		cli_escape(owner, sizeof(owner), e->owner);
		cli_table_add(t, "%zu", i);
		cli_table_add(t, "%s", owner);
		cli_table_add(t, "%" PRIu32, e->index);
		cli_table_add(t, "%" PRId32, e->remote_fd);
		cli_table_add(t, "%s", fdh_kind_name(e->kind));
		cli_table_add(t, "%s", state_names[checks[i].state]);
		cli_table_add(t, "%s", checks[i].detail[0] ? checks[i].detail : "-");
	}
	if (m->n_entries)
		cli_table_print(t, stdout);
	cli_table_free(t);
	printf("%s: %zu ok, %zu closed, %zu replaced, %zu gone, %zu error\n",
	       ok ? "MATCH" : "MISMATCH", counts[STATE_OK], counts[STATE_CLOSED],
	       counts[STATE_REPLACED], counts[STATE_GONE], counts[STATE_ERROR]);
}

static int manifest_verify(int argc, char **argv)
{
	size_t counts[STATE_ERROR + 1] = { 0 };
	struct fdh_manifest_source live;
	struct fdh_manifest *m = NULL;
	struct check *checks = NULL;
	enum source_state ss;
	struct mopts o;
	int r, code;
	pid_t pid;
	bool ok;

	if (parse_opts(argc, argv, &o, &r))
		return r;
	if (argc - optind != 2)
		return cli_usage("manifest verify: needs PID and FILE (or - for stdin)");
	r = cli_parse_pid(argv[optind], &pid);
	if (r)
		return r;
	r = load("verify", argv[optind + 1], &m);
	if (r)
		return r;
	checks = calloc(m->n_entries ? m->n_entries : 1, sizeof(*checks));
	if (!checks) {
		fdh_manifest_free(m);
		return cli_fail(-ENOMEM, "manifest verify: out of memory");
	}

	ss = check_source(m, pid, &live);
	for (size_t i = 0; i < m->n_entries; i++) {
		if (source_lost(ss)) {
			checks[i].state = STATE_GONE;
			continue;
		}
		r = check_entry(pid, &m->entries[i], &checks[i]);
		if (r == 1) {
			/* Died while we looked: nothing left is checkable. */
			ss = SOURCE_DEAD;
			for (size_t j = 0; j <= i; j++)
				checks[j].state = STATE_GONE;
		} else if (r < 0) {
			code = cli_fail_lib(r, "manifest verify", pid, false);
			goto out;
		}
	}
	for (size_t i = 0; i < m->n_entries; i++)
		counts[checks[i].state]++;
	ok = !source_lost(ss) && ss != SOURCE_UID_CHANGED &&
	     counts[STATE_OK] == m->n_entries;
	if (cli.json)
		print_verify_json(m, pid, ss, &live, checks, counts, ok);
	else
		print_verify_text(m, pid, ss, checks, counts, ok);
	code = ok ? CLI_EXIT_OK : CLI_EXIT_MISMATCH;
out:
	free(checks);
	fdh_manifest_free(m);
	return code;
}

/* ------------------------------------------------------------------ */
/* make                                                               */

/*
 * Add fd to m as owner "fd<N>".  0 (added, or closed meanwhile and left
 * out because it was not named), or an exit code.
 */
static int add_fd(struct fdh_manifest *m, pid_t pid, int fd, bool named,
		  unsigned int flags)
{
	struct fdh_manifest_entry e;
	struct fdh_fd_info info;
	char owner[16];
	int r;

	r = fdh_inspect_fd(pid, fd, flags, &info);
	if (r == -EBADF && !named)
		return 0;
	if (r < 0)
		return cli_fail_lib(r, "manifest make", pid, false);
	snprintf(owner, sizeof(owner), "fd%d", fd);
	fdh_manifest_entry_from_info(&info, owner, 0, &e);
	r = fdh_manifest_add_entry(m, &e);
	if (r < 0)
		return cli_fail(r, "manifest make: pid %d fd %d: %s", pid, fd,
				fdh_last_error()->msg);
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_manifest(const struct fdh_manifest *m, const char *path)
{
	void *buf;
	size_t len;
	int fd, r;

	r = fdh_manifest_encode(m, &buf, &len);
	if (r < 0)
		return cli_fail(r, "manifest make: encoding: %s",
				fdh_last_error()->msg);
	if (path && strcmp(path, "-") != 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			r = -errno;
			free(buf);
			return cli_fail(r, "manifest make: open %s: %s", path,
					strerror(-r));
		}
	} else {
		fd = STDOUT_FILENO;
	}
	r = write_all(fd, buf, len);
	if (fd != STDOUT_FILENO && close(fd) < 0 && r == 0)
		r = -errno;
	free(buf);
	if (r < 0)
		return cli_fail(r, "manifest make: writing %s: %s",
				path ? path : "stdout", strerror(-r));
	if (path && strcmp(path, "-") != 0) {
		if (cli.json) {
			json_begin_object(NULL);
			json_string("output", path);
			json_i64("pid", m->source.pid);
			json_u64("entries", m->n_entries);
			json_u64("bytes", len);
			json_end();
		} else {
			printf("wrote %zu entries (%zu bytes) for pid %" PRId32 " to %s\n",
			       m->n_entries, len, m->source.pid, path);
		}
	}
	return 0;
}

static int manifest_make(int argc, char **argv)
{
	struct fdh_manifest *m;
	int *fds = NULL, r, code = CLI_EXIT_OK;
	size_t n_fds = 0;
	struct mopts o;
	bool named;
	pid_t pid;

	if (parse_opts(argc, argv, &o, &r))
		return r;
	if (optind >= argc)
		return cli_usage("manifest make: needs PID [FD...]");
	r = cli_parse_pid(argv[optind++], &pid);
	if (r)
		return r;
	if (!o.output || strcmp(o.output, "-") == 0) {
		/* The manifest is binary: keep it off terminals and JSON. */
		if (cli.json)
			return cli_usage("manifest make: with --json, give -o FILE (the manifest itself is binary)");
		if (isatty(STDOUT_FILENO))
			return cli_usage("manifest make: stdout is a terminal; give -o FILE or redirect");
	}
	r = cli_fd_args("manifest make", pid, argc - optind, argv + optind, &fds,
			&n_fds, &named);
	if (r)
		return r;
	m = fdh_manifest_new();
	if (!m) {
		free(fds);
		return cli_fail(-ENOMEM, "manifest make: out of memory");
	}
	r = fdh_manifest_set_source(m, pid);
	if (r < 0) {
		code = cli_fail_lib(r, "manifest make", pid, false);
		goto out;
	}
	for (size_t i = 0; i < n_fds; i++) {
		r = add_fd(m, pid, fds[i], named, o.inspect_flags);
		if (r) {
			code = r;
			goto out;
		}
	}
	code = write_manifest(m, o.output);
out:
	fdh_manifest_free(m);
	free(fds);
	return code;
}

/* ------------------------------------------------------------------ */

static const struct cli_cmd verbs[] = {
	{ "show", manifest_show, "show FILE|-" },
	{ "verify", manifest_verify, "verify PID FILE|-" },
	{ "make", manifest_make, "make PID [FD...] [-o FILE]" },
};

int cmd_manifest(int argc, char **argv)
{
	const struct cli_cmd *match;
	bool ambiguous;

	/* Global options may stand before the verb too. */
	while (argc > 1 && argv[1][0] == '-' && argv[1][1]) {
		if (strcmp(argv[1], "-j") == 0 || strcmp(argv[1], "--json") == 0)
			cli_common_opt('j');
		else if (strcmp(argv[1], "-p") == 0 || strcmp(argv[1], "--pretty") == 0)
			cli_common_opt('p');
		else
			break;
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	if (argc < 2)
		return cli_usage("manifest: which verb? show, verify or make");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0)
		return cli_print_usage(usage);
	match = cli_find_cmd(verbs, sizeof(verbs) / sizeof(verbs[0]), argv[1],
			     &ambiguous);
	if (ambiguous)
		return cli_usage("manifest: '%s' is ambiguous", argv[1]);
	if (!match)
		return cli_usage("manifest: no verb '%s' (show, verify, make)",
				 argv[1]);
	optind = 0;
	return match->run(argc - 1, argv + 1);
}
