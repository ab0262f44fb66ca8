/* SPDX-License-Identifier: MIT */
/*
 * vhostctl.h -- the vhost-net ioctl sequences of a handover: take ownership
 * of a /dev/vhost-net fd and start its two rings on a TAP queue, and stop
 * them and give ownership up.  Documentation/vhost-net.md explains each
 * ioctl.  Every function returns 0 or -errno and adds the time each ioctl
 * took to ns[step].  skip (1u << step, per step) leaves steps out: that is
 * how the minimal sequence was found; the tests skip nothing but the
 * "reset only" release.
 */
#ifndef VH_VHOSTCTL_H
#define VH_VHOSTCTL_H

#include <stdint.h>

enum vh_step {
	VH_SET_OWNER,
	VH_SET_FEATURES,
	VH_SET_MEM_TABLE,
	VH_SET_VRING_NUM,
	VH_SET_VRING_BASE,
	VH_SET_VRING_ADDR,
	VH_SET_VRING_KICK,
	VH_SET_VRING_CALL,
	VH_SET_BACKEND,		/* the TAP */
	VH_SET_BACKEND_OFF,	/* fd -1 */
	VH_GET_VRING_BASE,
	VH_RESET_OWNER,
	VH_STEP_MAX
};

const char *vh_step_name(enum vh_step step);

/* One vhost-net device: one queue pair (rx = ring 0, tx = ring 1). */
struct vh_dev {
	int vhost;		/* /dev/vhost-net fd */
	int tap;		/* the TAP queue it serves */
	int kick[2];		/* eventfds, rx then tx */
	int call[2];
	unsigned pair;		/* which pair: rings at vring.h's vq 2p, 2p+1 */
	uint8_t *ram;		/* the owner's own mapping of the memfd */
	uint64_t features;	/* acked virtio features */
};

/*
 * Become the owner and start both rings at base[] (the avail index each
 * ring resumes from): SET_OWNER, SET_FEATURES, SET_MEM_TABLE, per ring
 * NUM, BASE, ADDR, KICK, CALL, then SET_BACKEND (the TAP) per ring.
 * *ret_failed names the step that failed.
 */
int vh_dev_take(const struct vh_dev *d, const uint16_t base[2], unsigned skip,
		uint64_t *ns, enum vh_step *ret_failed);
/*
 * Stop both rings and give ownership up: SET_BACKEND -1 per ring, then
 * GET_VRING_BASE per ring (into ret_base), then RESET_OWNER.  With
 * GET_VRING_BASE skipped, ret_base is each ring's used->idx read after
 * RESET_OWNER (equal for vhost-net's in-order copy datapath).
 */
int vh_dev_release(const struct vh_dev *d, uint16_t ret_base[2], unsigned skip,
		   uint64_t *ns, enum vh_step *ret_failed);
/* "SET_FEATURES,GET_VRING_BASE" -> skip mask; -EINVAL for an unknown name. */
int vh_steps_parse(const char *names, unsigned *ret_mask);

uint64_t vh_now_ns(void);

#endif
