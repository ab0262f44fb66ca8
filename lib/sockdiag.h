/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal to libfdhandover: AF_UNIX socket details from NETLINK_SOCK_DIAG. */
#ifndef FDH_SOCKDIAG_H
#define FDH_SOCKDIAG_H

#include <stdint.h>

struct fdh_unix_diag {
	uint32_t type;			/* SOCK_STREAM, SOCK_DGRAM, ... */
	uint32_t state;			/* TCP_LISTEN, TCP_ESTABLISHED, ... */
	uint64_t peer_ino;		/* 0: no peer */
	char path[108];			/* bound name, "@..." if abstract */
};

/*
 * Look up the AF_UNIX socket with inode ino (UNIX_DIAG exact lookup).
 *
 * The kernel searches only the network namespace of the asking netlink
 * socket: netns_fd < 0 asks in ours, otherwise the netlink socket is made
 * in that namespace (an fd of /proc/PID/ns/net; needs CAP_SYS_ADMIN over
 * it).  Returns 0, -ENOENT (no unix socket with that inode there), -EPERM
 * (cannot enter netns_fd), -EPROTO (unexpected reply), or another -errno.
 * Never calls fdh_fail(): callers decide whether a miss is an error.
 */
int fdh_unix_diag(int netns_fd, uint64_t ino, struct fdh_unix_diag *ret);

#endif /* FDH_SOCKDIAG_H */
