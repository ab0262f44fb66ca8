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

#endif /* FDH_QEMU_CMDLINE_H */
