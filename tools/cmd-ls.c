// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fd-handover ls PID [FD...]: every fd of a process with its kind and what
 * a handover would need to know about it.
 *
 * Each fd is described on its own (fdh_inspect_fd), so that one fd that
 * cannot be read shows as a row with its error instead of failing the
 * listing, fds that close meanwhile drop out, and a process that exits
 * meanwhile leaves what was read, marked incomplete.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fdhandover.h"

static const char usage[] =
	"Usage: fd-handover ls [OPTIONS] PID [FD...]\n"
	"\n"
	"List the fds of process PID (or only FD...) with their kind and the\n"
	"details a handover needs: memfd name, size and seals; TAP interface,\n"
	"flags and vnet header size; eventfd count; unix socket state, path and\n"
	"the process holding its peer; epoll watched fds; pidfd target.\n"
	"\n"
	"Options:\n"
	"  -k, --kind KIND[,KIND...]  only these kinds: memfd tap eventfd vhost-net\n"
	"                             vhost-user unix pidfd epoll pipe file socket other\n"
	"  -n, --no-pull              never pull a temporary copy (pidfd_getfd); TAP\n"
	"                             flags and some memfd seals then stay unknown\n"
	"  -j, --json                 JSON output (Documentation/cli-json.md)\n"
	"  -p, --pretty               indented JSON\n"
	"  -h, --help                 this help\n";

struct row {
	int err;			/* 0, or why this fd has no description */
	char *errmsg;			/* malloc'd, with err */
	struct fdh_fd_info info;	/* info.fd is set even with err */
	struct sock_holder peer;	/* unix sockets with a peer */
};

struct listing {
	pid_t pid;
	char comm[16];
	bool complete;			/* false: the process exited meanwhile */
	int vhost_workers;		/* proc_vhost_workers(), if a vhost-net fd */
	size_t n;
	struct row *rows;
};

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->rows[i].errmsg);
	free(l->rows);
}

/* Bitmask of kinds from "memfd,tap"; a usage error names a bad one. */
static int parse_kinds(const char *arg, unsigned int *mask)
{
	char *copy = strdup(arg), *save = NULL;
	int r = 0;

	if (!copy)
		return cli_fail(-ENOMEM, "ls: out of memory");
	for (char *k = strtok_r(copy, ",", &save); k;
	     k = strtok_r(NULL, ",", &save)) {
		int kind = fdh_kind_from_name(k);

		if (kind < 0) {
			r = cli_usage("ls: unknown kind '%s' (kinds: memfd tap eventfd vhost-net vhost-user unix pidfd epoll pipe file socket other)",
				      k);
			break;
		}
		*mask |= 1u << kind;
	}
	free(copy);
	return r;
}

/*
 * Describe one fd into l.  Returns 0 (added, skipped as closed, or added
 * with its error), 1 when the process is gone, or an exit code when the
 * listing as a whole must fail.
 */
static int describe_one(struct listing *l, int fd, unsigned int flags,
			bool named)
{
	struct row *row = &l->rows[l->n];
	int r;

	memset(row, 0, sizeof(*row));
	r = fdh_inspect_fd(l->pid, fd, flags, &row->info);
	if (r == 0) {
		l->n++;
		return 0;
	}
	switch (r) {
	case -EBADF:
		/* Named on the command line: the caller wants to know. */
		if (named)
			return cli_fail_lib(r, "ls", l->pid, false);
		return 0;	/* closed since the directory was read */
	case -ESRCH:
		return 1;
	case -EACCES:
	case -EPERM:
		/* The first fd decides: the whole process is unreadable. */
		if (l->n == 0)
			return cli_fail_lib(r, "ls", l->pid, false);
		break;
	}
	row->err = r;
	row->errmsg = strdup(fdh_last_error()->msg);
	row->info.fd = fd;
	row->info.kind = FDH_KIND_OTHER;
	l->n++;
	return 0;
}

static void find_peers(struct listing *l)
{
	struct sock_holder *asks;
	size_t n = 0;

	asks = calloc(l->n ? l->n : 1, sizeof(*asks));
	if (!asks)
		return;
	for (size_t i = 0; i < l->n; i++)
		if (!l->rows[i].err && l->rows[i].info.kind == FDH_KIND_UNIX_SOCKET &&
		    l->rows[i].info.u.unix_socket.peer_ino)
			asks[n++].ino = l->rows[i].info.u.unix_socket.peer_ino;
	/* One pass over /proc answers every socket at once. */
	if (n && proc_socket_holders(asks, n, l->pid) >= 0) {
		size_t j = 0;

		for (size_t i = 0; i < l->n; i++)
			if (!l->rows[i].err &&
			    l->rows[i].info.kind == FDH_KIND_UNIX_SOCKET &&
			    l->rows[i].info.u.unix_socket.peer_ino)
				l->rows[i].peer = asks[j++];
	}
	free(asks);
}

static void print_json(const struct listing *l)
{
	char words[128];

	json_begin_object(NULL);
	json_i64("pid", l->pid);
	json_string("comm", l->comm);
	json_bool("complete", l->complete);
	json_begin_array("fds");
	for (size_t i = 0; i < l->n; i++) {
		const struct row *row = &l->rows[i];
		const struct fdh_fd_info *info = &row->info;

		json_begin_object(NULL);
		json_i64("fd", info->fd);
		if (row->err) {
			json_null("kind");
			json_string("error", row->errmsg ? row->errmsg : strerror(-row->err));
			json_end_object();
			continue;
		}
		json_string("kind", fdh_kind_name(info->kind));
		json_string("target", info->target);
		json_string("type", describe_type(info->mode));
		json_u64("dev", info->dev);
		json_u64("ino", info->ino);
		json_u64("mode", info->mode);
		json_u64("flags", info->flags);
		describe_open_flags(info->flags, words, sizeof(words));
		json_string("open", words);
		json_u64("pos", info->pos);
		json_u64("mnt_id", info->mnt_id);
		describe_json(info, &row->peer);
		if (info->kind == FDH_KIND_VHOST_NET && l->vhost_workers >= 0)
			json_i64("owner_vhost_workers", l->vhost_workers);
		json_end_object();
	}
	json_end_array();
	json_end();
}

/*
 * Who owns a vhost-net device is the kernel's, and it names no fd: it
 * shows only as workers "vhost-<owner pid>", one per owned device.  So
 * the row says how many this process owns; none means the devices are
 * released (a handover source after its stop) or not yet taken (a
 * target before its start).
 */
static void vhost_owner_text(const struct listing *l, char *buf, size_t size)
{
	size_t n = strlen(buf);

	if (l->vhost_workers < 0)
		snprintf(buf + n, size - n, "; owner unknown");
	else if (l->vhost_workers == 0)
		snprintf(buf + n, size - n,
			 "; owner: none of pid %d's (no worker vhost-%d: released or not yet taken)",
			 l->pid, l->pid);
	else
		snprintf(buf + n, size - n,
			 "; owner: pid %d, which owns %d vhost device%s (workers vhost-%d)",
			 l->pid, l->vhost_workers,
			 l->vhost_workers == 1 ? "" : "s", l->pid);
}

static void print_text(const struct listing *l)
{
	static const char *const headers[] = {
		"FD", "KIND", "OPEN", "INODE", "DETAILS",
	};
	struct cli_table *t = cli_table_new(5, headers);
	char comm[64], details[1024], words[128];

	cli_escape(comm, sizeof(comm), l->comm);
	printf("pid %d (%s): %zu fd%s%s\n", l->pid, comm, l->n,
	       l->n == 1 ? "" : "s",
	       l->complete ? "" : " (incomplete: the process exited during the listing)");
	for (size_t i = 0; i < l->n; i++) {
		const struct row *row = &l->rows[i];
		const struct fdh_fd_info *info = &row->info;

		cli_table_add(t, "%d", info->fd);
		if (row->err) {
			cli_table_add(t, "?");
			cli_table_add(t, "?");
			cli_table_add(t, "?");
			cli_table_add(t, "error: %s",
				      row->errmsg ? row->errmsg : strerror(-row->err));
			continue;
		}
		cli_table_add(t, "%s", fdh_kind_name(info->kind));
		describe_open_flags(info->flags, words, sizeof(words));
		cli_table_add(t, "%s", words);
		cli_table_add(t, "%" PRIu64, info->ino);
		describe_text(info, &row->peer, details, sizeof(details));
		if (info->kind == FDH_KIND_VHOST_NET)
			vhost_owner_text(l, details, sizeof(details));
		cli_table_add(t, "%s", details);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	fflush(stdout);
}

/* Keep only the rows of the kinds asked for (rows in error stay). */
static void filter_kinds(struct listing *l, unsigned int mask)
{
	size_t kept = 0;

	for (size_t i = 0; i < l->n; i++) {
		if (l->rows[i].err || (mask & (1u << l->rows[i].info.kind))) {
			l->rows[kept++] = l->rows[i];
		} else {
			free(l->rows[i].errmsg);
		}
	}
	l->n = kept;
}

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_COMMON_LONGOPTS,
		{ "kind", required_argument, NULL, 'k' },
		{ "no-pull", no_argument, NULL, 'n' },
		{ 0 }
	};
	struct listing l = { .complete = true };
	unsigned int flags = FDH_INSPECT_PULL, kinds = 0;
	int *fds = NULL, c, r, code = CLI_EXIT_OK;
	size_t n_fds = 0;
	bool named;

	while ((c = cli_getopt(argc, argv, ":" CLI_COMMON_SHORTOPTS "k:n", opts,
			       usage, &r)) > 0) {
		switch (c) {
		case 'k':
			r = parse_kinds(optarg, &kinds);
			if (r)
				return r;
			break;
		case 'n':
			flags &= ~(unsigned int)FDH_INSPECT_PULL;
			break;
		}
	}
	if (c == CLI_GETOPT_EXIT)
		return r;
	if (optind >= argc)
		return cli_usage("ls: which process? (fd-handover ls PID [FD...])");
	r = cli_parse_pid(argv[optind++], &l.pid);
	if (r)
		return r;
	r = cli_fd_args("ls", l.pid, argc - optind, argv + optind, &fds, &n_fds,
			&named);
	if (r)
		return r;
	if (proc_comm(l.pid, l.comm) < 0 && fdh_process_gone(l.pid)) {
		free(fds);
		return cli_fail_lib(-ESRCH, "ls", l.pid, false);
	}

	l.rows = calloc(n_fds ? n_fds : 1, sizeof(*l.rows));
	if (!l.rows) {
		free(fds);
		return cli_fail(-ENOMEM, "ls: out of memory for %zu fds", n_fds);
	}
	for (size_t i = 0; i < n_fds; i++) {
		r = describe_one(&l, fds[i], flags, named);
		if (r == 1) {
			l.complete = false;
			break;
		}
		if (r) {
			code = r;
			goto out;
		}
	}
	if (!l.complete && l.n == 0) {
		code = cli_fail_hint(-ESRCH, NULL, "ls: process %d exited before its fds could be read",
				     l.pid);
		goto out;
	}
	if (kinds)
		filter_kinds(&l, kinds);
	find_peers(&l);
	l.vhost_workers = -1;
	for (size_t i = 0; i < l.n; i++)
		if (!l.rows[i].err && l.rows[i].info.kind == FDH_KIND_VHOST_NET) {
			l.vhost_workers = proc_vhost_workers(l.pid);
			break;
		}
	if (cli.json)
		print_json(&l);
	else
		print_text(&l);
	if (!l.complete) {
		cli_warn("process %d exited during the listing: what was read is shown",
			 l.pid);
		code = CLI_EXIT_NO_PROCESS;
	}
out:
	free(fds);
	listing_free(&l);
	return code;
}
