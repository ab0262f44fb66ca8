/* SPDX-License-Identifier: MIT */
/*
 * roles.h -- what the processes of vhost-handover share: the addresses of
 * the in-guest network, the control messages the orchestrator drives the
 * roles with (SOCK_SEQPACKET, one struct ctl per message), and the roles.
 */
#ifndef VH_ROLES_H
#define VH_ROLES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "vhostctl.h"
#include "vring.h"

#define IFNAME "vhn0"
#define HOST_IP "10.77.0.1"		/* P, on the TAP */
#define DRV_IP "10.77.0.2"		/* D, behind vhost */
#define P_PORT 6000
#define D_PORT 5000			/* + flow (0..N_FLOWS-1) */
#define N_FLOWS 4
#define MAGIC 0x56484e31u		/* "VHN1" */
#define SEQ_BITS (1u << 18)		/* 262 s at 1000/s */
#define CTL_TIMEOUT_MS 10000
#define DRAIN_MS 300

static const uint8_t mac_tap[6] = { 0x02, 0, 0, 0, 0x77, 0x01 };
static const uint8_t mac_drv[6] = { 0x02, 0, 0, 0, 0x77, 0x02 };

/* ------------------------------------------------------------------ */
/* Control messages                                                   */

enum cmd {
	C_READY = 1, C_GO, C_PULL, C_PULLED, C_STOP, C_STOPPED, C_TAKE,
	C_TAKEN, C_RESUME, C_RESUMED, C_ABORT, C_EXIT, C_STATS, C_RESET,
};

struct fdset {				/* fd numbers in A */
	int tap[VH_MAX_PAIRS];
	int vhost[VH_MAX_PAIRS];
	int memfd;
	int kick[VH_MAX_VQS];
	int call[VH_MAX_VQS];
};

struct stats {
	uint64_t sent, uniq, dup, other, tx_full;
	uint64_t max_gap_ns, max_gap_at_ns, last_rx_ns;
	uint64_t rx_q[VH_MAX_PAIRS];
	uint64_t in_window;		/* received, sent while no one owned the rings */
};

struct ctl {
	uint32_t cmd;
	int32_t err;
	int32_t pid;
	uint32_t nq;
	uint32_t skip;			/* STOP/TAKE: ioctl steps to leave out */
	uint16_t base[VH_MAX_VQS];	/* per global vq */
	uint16_t used[VH_MAX_VQS];	/* used->idx seen by the releaser */
	struct fdset fds;
	uint64_t map_addr;
	uint64_t ns[VH_STEP_MAX];
	uint64_t t_ns;
	uint64_t win[2];		/* STOP to D and P: the switch window */
	struct stats st;
	char text[600];
};

int ctl_send(int s, const struct ctl *m);
/* Receive one message within timeout_ms; -ETIMEDOUT, -EPIPE on EOF. */
int ctl_recv(int s, struct ctl *m, int timeout_ms);
/* ctl_recv, and -EPROTO unless it is cmd. */
int ctl_expect(int s, struct ctl *m, uint32_t cmd, int timeout_ms);
void ctl_reply(int s, uint32_t cmd, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void sin_set(struct sockaddr *sa, const char *ip);

/* D (traffic.c): the split-ring driver; sends to and counts from P. */
int role_driver(int ctl, int memfd, unsigned nq, const int *kick,
		const int *call, unsigned pps);
/* P (traffic.c): the UDP peer on the TAP's address. */
int role_peer(int ctl, unsigned pps);
/* A (owner.c): opens the TAP and /dev/vhost-net, owns the device(s). */
int role_source(int ctl, int memfd, unsigned nq, const int *kick,
		const int *call);
/* B (owner.c): pulls A's fds and takes the device(s) over. */
int role_target(int ctl);

#endif
