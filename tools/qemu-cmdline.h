/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a QEMU command line says about the fds its process holds: which
 * netdev a TAP belongs to, which memory backend a RAM memfd is, which
 * chardev a unix socket serves.  Only what `plan` needs; see
 * tools/qemu-cmdline.c for the forms understood.
 */
#ifndef FDH_QEMU_CMDLINE_H
#define FDH_QEMU_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum qemu_opt_kind {
	QEMU_NETDEV,		/* -netdev (and -nic, id "nicN") */
	QEMU_OBJECT,		/* -object */
	QEMU_CHARDEV,		/* -chardev */
	QEMU_DEVICE,		/* -device */
	QEMU_MON,		/* -mon */
};

#define QEMU_OPT_MAX_FDS 16

struct qemu_opt {
	enum qemu_opt_kind kind;
	char type[64];		/* "tap", "memory-backend-memfd", "socket", ... */
	char id[64];		/* "" when none was given */
	char ifname[16];	/* netdev tap */
	char path[108];		/* chardev socket */
	char chardev[64];	/* the chardev a netdev/device/mon uses */
	uint64_t size;		/* object memory-backend-*: bytes */
	bool vhost;		/* netdev tap,vhost=on */
	bool server;		/* chardev socket,server=on */
	/* fds handed to QEMU: netdev tap fd=/fds=, vhostfd=/vhostfds= */
	int fds[QEMU_OPT_MAX_FDS];
	size_t n_fds;
	int vhostfds[QEMU_OPT_MAX_FDS];
	size_t n_vhostfds;
};

struct qemu_cmdline {
	size_t n;
	struct qemu_opt *opts;
	bool aux_ram_share;	/* -machine aux-ram-share=on */
};

/* A QEMU system emulator, by comm or by argv[0]'s basename. */
bool qemu_is_qemu(const char *comm, char *const *argv);
/* 0 or -ENOMEM; unknown options and malformed values are skipped. */
int qemu_cmdline_parse(char *const *argv, int argc, struct qemu_cmdline *ret);
void qemu_cmdline_free(struct qemu_cmdline *q);
/* The -netdev/-device/-mon that uses chardev id, or NULL. */
const struct qemu_opt *qemu_chardev_user(const struct qemu_cmdline *q,
					 const char *id);

/*
 * One item of a QEMU option string "type,key=val,key=val": key NULL for a
 * bare item (the leading type, or a legacy flag such as "server").  The
 * one tokenizer of such strings (QEMU's rule: ",," is a literal comma),
 * used by `plan` and by the target argv rewriter.
 */
struct qemu_kv {
	char *key;
	char *val;
};

struct qemu_keyval {
	struct qemu_kv *items;
	size_t n;
};

void qemu_keyval_parse(const char *arg, struct qemu_keyval *ret);
/* The last value of key (QEMU: the last one wins), or NULL. */
const char *qemu_keyval_get(const struct qemu_keyval *kv, const char *key);
/* Replaces every key=... by one key=val in place of the first, or appends. */
void qemu_keyval_set(struct qemu_keyval *kv, const char *key, const char *val);
void qemu_keyval_del(struct qemu_keyval *kv, const char *key);
/* Back into an option string, commas in values doubled; g_free. */
char *qemu_keyval_format(const struct qemu_keyval *kv);
void qemu_keyval_free(struct qemu_keyval *kv);

/* A listening unix socket of the source: bound to path, at fd in the source. */
struct qemu_listener {
	const char *path;	/* as bound (getsockname, /proc/net/unix) */
	int fd;
};

/* What the target of an upgrade is started with; see qemu_target_argv_build. */
struct qemu_target_spec {
	const char *qemu;	/* the new binary: argv[0] */
	const char *manifest;	/* -object x-fd-handover,id=fdh0,manifest=PATH */
	const char *qmp_path;	/* the driver's own QMP socket for the target */
	const char *workdir;	/* where target-only files go */
	/*
	 * Optional: the source's listening unix sockets.  A chardev that
	 * listens on one of these paths is served by the target from the
	 * same socket (fd=N, inherited); one that is not is dropped if it
	 * is a monitor, refused otherwise.
	 */
	const struct qemu_listener *listeners;
	size_t n_listeners;
	/*
	 * Optional: the -netdev ids whose vhost-net devices the source
	 * hands over (its manifest has kind vhost-net entries owned by
	 * "<id>.vhost": its QEMU has patch 0023).  Only those keep
	 * vhost=on / vhostfd(s)=; any other tap with vhost is refused.
	 */
	const char *const *vhost_netdevs;
	size_t n_vhost_netdevs;
};

struct qemu_target_argv {
	char **argv;		/* NULL-terminated target command line (g_strfreev-able) */
	/*
	 * fd numbers of the SOURCE the target must hold at the SAME number
	 * (fd=N chardevs, -add-fd fd=N, ...); the driver pulls them with
	 * pidfd_getfd and dup2()s them into the child.
	 */
	int *inherit_fds;
	size_t n_inherit_fds;
	/*
	 * The source's -pidfile PATH (dropped from argv): the driver writes
	 * the target's pid there after the source has exited; NULL if none.
	 */
	char *pidfile;
	/* -S was given and dropped: the migration's global state decides. */
	bool had_S;
	/* What was changed and why, one line each (NULL-terminated). */
	char **notes;
};

/*
 * The unix socket path of the first QMP monitor (-qmp/-qmp-pretty
 * unix:P or unix:path=P, chardev:ID; or -mon mode=control on -chardev
 * socket,path=P), or NULL (none, or only by fd=).  g_free.  The one
 * reader of a monitor's path: `upgrade --pid` finds the source with it.
 */
char *qemu_cmdline_qmp_path(char *const *argv, int argc);

/* 0 or -errno; *ret_error (g_free) says what was refused and why */
int qemu_target_argv_build(char *const *src_argv, int argc,
			   const struct qemu_target_spec *spec,
			   struct qemu_target_argv *ret, char **ret_error);
void qemu_target_argv_free(struct qemu_target_argv *t);

#endif /* FDH_QEMU_CMDLINE_H */
