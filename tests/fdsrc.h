/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fdsrc: a real source process for tests.  fdsrc_start() forks a child
 * that makes each fd kind on demand and answers with the fd number it
 * holds, so tests pull from a live process, not from themselves.
 *
 * The child dies with the test (PR_SET_PDEATHSIG) and lives in its own
 * network namespace when asked, so a TAP it creates never touches the
 * host's network.  With .uid set it drops to that uid (and stays dumpable,
 * which setuid would otherwise clear) so permission bugs are not hidden
 * by root's CAP_SYS_PTRACE.
 */
#ifndef FDH_TEST_FDSRC_H
#define FDH_TEST_FDSRC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct fdsrc_opts {
	uid_t uid;		/* 0: stay root */
	bool netns;		/* unshare(CLONE_NEWNET) first (needs root) */
	const char *tap;	/* with netns: create this persistent
				   multiqueue TAP owned by uid before
				   dropping privileges */
	bool not_dumpable;	/* set true to make the child non-dumpable */
};

struct fdsrc {
	pid_t pid;
	int ctl;		/* command socket (SOCK_SEQPACKET) */
	int coop;		/* a socket whose peer is the child: for
				   fdh_source_open_socket() and fallback */
};

/* 0 or -errno; on -EPERM/-EINVAL from unshare or TUN, the caller SKIPs. */
int fdsrc_start(struct fdsrc *s, const struct fdsrc_opts *opts);

/*
 * Ask the child to make something; returns its fd number (>= 0) or
 * -errno from the child.  Commands (space separated):
 *   memfd NAME SIZE SEALS     memfd filled with SIZE bytes of pattern
 *                             (byte i = i & 0xff), SEALS added with F_ADD_SEALS
 *   eventfd COUNT SEMAPHORE   eventfd(COUNT, SEMAPHORE ? EFD_SEMAPHORE : 0)
 *   tap IFNAME                attach a queue of TAP IFNAME (IFF_TAP |
 *                             IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE)
 *   become UID                setresuid/gid to UID (root only), stays dumpable
 *   socketpair                returns one end; the other end is fdsrc_cmd's
 *                             second result (see fdsrc_cmd2)
 *   pipe                      returns the read end (write end second)
 *   unix-listen PATH          a listening AF_UNIX stream socket
 *   close FD                  close(FD), returns 0
 *   dup2 OLD NEW              dup2(OLD, NEW), returns NEW
 *   identity FD               (internal to fdsrc_entry)
 *   serve                     answer one fdh_serve_one() on the coop socket,
 *                             returns the number of fds sent
 *   exit                      exit(0) without reply
 */
#define fdsrc_cmd(s, ...) fdsrc_cmd2(s, NULL, __VA_ARGS__)
/* Like fdsrc_cmd, also returning the second number of the reply. */
int fdsrc_cmd2(struct fdsrc *s, int *ret_second, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Send a command without waiting for its reply ("serve", "exit"). */
int fdsrc_send(struct fdsrc *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Read the reply of a command sent with fdsrc_send. */
int fdsrc_reply(struct fdsrc *s);
/*
 * A pull entry for the child's fd, with the identity the child itself
 * computes for it (fdh_identity_of_fd), as a real source would publish.
 */
struct fdh_pull_entry;
int fdsrc_entry(struct fdsrc *s, int remote_fd, const char *label,
		struct fdh_pull_entry *ret_entry);

/* Make one thing in the child (a command above) and describe it. */
int fdsrc_make_entry(struct fdsrc *s, struct fdh_pull_entry *e,
		     const char *label, const char *cmd);

/*
 * The unprivileged pair: a child as fdsrc_test_uid() in a netns of its own
 * with persistent TAP tap, then this process drops to the same uid.
 * Root only; fdsrc_start_refused(r) says the host cannot (SKIP).
 */
int fdsrc_start_unprivileged(struct fdsrc *s, const char *tap);
bool fdsrc_start_refused(int r);

/* Kill and reap the child; closes ctl and coop.  Safe to call twice. */
void fdsrc_stop(struct fdsrc *s);

/* Count the entries of /proc/self/fd (to prove nothing leaked). */
int fdsrc_count_own_fds(void);

/* Drop this (test) process to uid/gid and stay dumpable. */
int fdsrc_drop_to(uid_t uid);

/* An unprivileged uid for tests ("nobody", 65534), or 0 if none. */
uid_t fdsrc_test_uid(void);

/* Make this process's calls of syscall `name` fail with err (seccomp). */
int fdsrc_deny_syscall(const char *name, int err);
/* Make getsockopt(..., optname, ...) fail with err (seccomp). */
int fdsrc_deny_sockopt(int optname, int err);

/* Run `ip ARGS...` (bounded); 0 or -errno. */
int fdsrc_ip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* FDH_TEST_FDSRC_H */
