// SPDX-License-Identifier: MIT
/*
 * vhostctl.c -- vhost-net ownership handover, ioctl by ioctl.
 *
 * Linux 6.1 (drivers/vhost/net.c, vhost.c) is the reference:
 *  - every ioctl but SET_OWNER and the GET_*FEATURES queries checks that the
 *    caller's mm is the owner's (vhost_dev_check_owner, else EPERM), so the
 *    successor can do nothing with the pulled fd until the owner has run
 *    RESET_OWNER;
 *  - RESET_OWNER wipes every ring (vhost_vq_reset: num, addresses,
 *    last_avail_idx, kick, call, acked features) and the memory table, and
 *    vhost_net_vq_reset zeroes the vnet header lengths: the new owner
 *    programs all of it again;
 *  - SET_VRING_NUM and SET_VRING_BASE are refused (EBUSY) while a backend is
 *    attached, so the TAP goes on last.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include <linux/vhost.h>

#include "vhostctl.h"
#include "vring.h"

static const char *const step_names[VH_STEP_MAX] = {
	[VH_SET_OWNER] = "SET_OWNER",
	[VH_SET_FEATURES] = "SET_FEATURES",
	[VH_SET_MEM_TABLE] = "SET_MEM_TABLE",
	[VH_SET_VRING_NUM] = "SET_VRING_NUM",
	[VH_SET_VRING_BASE] = "SET_VRING_BASE",
	[VH_SET_VRING_ADDR] = "SET_VRING_ADDR",
	[VH_SET_VRING_KICK] = "SET_VRING_KICK",
	[VH_SET_VRING_CALL] = "SET_VRING_CALL",
	[VH_SET_BACKEND] = "NET_SET_BACKEND(tap)",
	[VH_SET_BACKEND_OFF] = "NET_SET_BACKEND(-1)",
	[VH_GET_VRING_BASE] = "GET_VRING_BASE",
	[VH_RESET_OWNER] = "RESET_OWNER",
};

const char *vh_step_name(enum vh_step step)
{
	return step < VH_STEP_MAX ? step_names[step] : "?";
}

uint64_t vh_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int vh_steps_parse(const char *names, unsigned *ret_mask)
{
	unsigned mask = 0;
	const char *p = names;

	while (p && *p) {
		size_t n = strcspn(p, ",");
		unsigned s;

		for (s = 0; s < VH_STEP_MAX; s++)
			if (strlen(step_names[s]) == n && strncmp(step_names[s], p, n) == 0)
				break;
		if (s == VH_STEP_MAX)
			return -EINVAL;
		mask |= 1u << s;
		p += n + (p[n] == ',');
	}
	*ret_mask = mask;
	return 0;
}

/* Each function below is called with its skip mask as `skip`. */
#define timed(fd, req, arg, step, ns, failed) \
	((skip & (1u << (step))) ? 0 : timed_ioctl(fd, req, arg, step, ns, failed))

/* ioctl, timed into ns[step]; -errno on failure with *failed = step. */
static int timed_ioctl(int fd, unsigned long req, void *arg, enum vh_step step,
		       uint64_t *ns, enum vh_step *failed)
{
	uint64_t t0 = vh_now_ns();
	int r = ioctl(fd, req, arg);
	int e = errno;

	ns[step] += vh_now_ns() - t0;
	if (r < 0) {
		*failed = step;
		return -e;
	}
	return 0;
}

int vh_dev_take(const struct vh_dev *d, const uint16_t base[2], unsigned skip,
		uint64_t *ns, enum vh_step *ret_failed)
{
	struct {
		struct vhost_memory m;
		struct vhost_memory_region r[1];
	} mem;
	uint64_t features = d->features;
	int r;

	r = timed(d->vhost, VHOST_SET_OWNER, NULL, VH_SET_OWNER, ns, ret_failed);
	if (r)
		return r;
	/* Also sets the vnet header lengths: 12 bytes on the socket side (a
	 * TAP with IFF_VNET_HDR) with MRG_RXBUF or VERSION_1, 0 in vhost.
	 * RESET_OWNER zeroed both, and acked features decide the header
	 * size, endianness and EVENT_IDX: the new owner cannot skip it. */
	r = timed(d->vhost, VHOST_SET_FEATURES, &features, VH_SET_FEATURES, ns,
		  ret_failed);
	if (r)
		return r;
	memset(&mem, 0, sizeof(mem));
	mem.m.nregions = 1;
	mem.r[0].guest_phys_addr = 0;
	mem.r[0].memory_size = VH_MEM_SIZE;
	mem.r[0].userspace_addr = (uint64_t)(uintptr_t)d->ram;
	r = timed(d->vhost, VHOST_SET_MEM_TABLE, &mem, VH_SET_MEM_TABLE, ns,
		  ret_failed);
	if (r)
		return r;
	for (unsigned i = 0; i < 2; i++) {
		unsigned vq = d->pair * 2 + i;
		uint8_t *b = d->ram + (size_t)vq * VH_VQ_STRIDE;
		struct vhost_vring_state num = { .index = i, .num = VH_QSZ };
		struct vhost_vring_state bs = { .index = i, .num = base[i] };
		/* Ring addresses are the owner's virtual addresses (not GPAs). */
		struct vhost_vring_addr addr = {
			.index = i,
			.desc_user_addr = (uint64_t)(uintptr_t)(b + VH_DESC_OFF),
			.avail_user_addr = (uint64_t)(uintptr_t)(b + VH_AVAIL_OFF),
			.used_user_addr = (uint64_t)(uintptr_t)(b + VH_USED_OFF),
		};
		struct vhost_vring_file kick = { .index = i, .fd = d->kick[i] };
		struct vhost_vring_file call = { .index = i, .fd = d->call[i] };

		r = timed(d->vhost, VHOST_SET_VRING_NUM, &num, VH_SET_VRING_NUM,
			  ns, ret_failed);
		if (!r)
			r = timed(d->vhost, VHOST_SET_VRING_BASE, &bs,
				  VH_SET_VRING_BASE, ns, ret_failed);
		if (!r)
			r = timed(d->vhost, VHOST_SET_VRING_ADDR, &addr,
				  VH_SET_VRING_ADDR, ns, ret_failed);
		/* A kick already pending on the eventfd (the driver kicked
		 * while no one owned the ring) is seen here: vhost_poll_start
		 * finds the eventfd readable and queues the handler. */
		if (!r)
			r = timed(d->vhost, VHOST_SET_VRING_KICK, &kick,
				  VH_SET_VRING_KICK, ns, ret_failed);
		if (!r)
			r = timed(d->vhost, VHOST_SET_VRING_CALL, &call,
				  VH_SET_VRING_CALL, ns, ret_failed);
		if (r)
			return r;
	}
	for (unsigned i = 0; i < 2; i++) {
		/* Reads used->idx from the ring (vhost_vq_init_access) and
		 * polls the TAP: frames queued meanwhile are received now. */
		struct vhost_vring_file be = { .index = i, .fd = d->tap };

		r = timed(d->vhost, VHOST_NET_SET_BACKEND, &be, VH_SET_BACKEND,
			  ns, ret_failed);
		if (r)
			return r;
	}
	return 0;
}

int vh_dev_release(const struct vh_dev *d, uint16_t ret_base[2], unsigned skip,
		   uint64_t *ns, enum vh_step *ret_failed)
{
	uint16_t base[2];
	int r;

	/* Detach first: the worker stops touching the rings (the handler
	 * returns at once without a backend), and rx frames the worker had
	 * batched out of the TAP are put back into the TAP's queue
	 * (vhost_net_buf_unproduce).  Without it the worker could still move
	 * last_avail_idx between GET_VRING_BASE and RESET_OWNER. */
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_file be = { .index = i, .fd = -1 };

		r = timed(d->vhost, VHOST_NET_SET_BACKEND, &be,
			  VH_SET_BACKEND_OFF, ns, ret_failed);
		if (r)
			return r;
	}
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_state s = { .index = i, .num = 0 };

		r = timed(d->vhost, VHOST_GET_VRING_BASE, &s, VH_GET_VRING_BASE,
			  ns, ret_failed);
		if (r)
			return r;
		base[i] = (uint16_t)s.num;
	}
	/* Stops and frees the owner's worker thread, drops its mm. */
	r = timed(d->vhost, VHOST_RESET_OWNER, NULL, VH_RESET_OWNER, ns,
		  ret_failed);
	if (r)
		return r;
	if (skip & (1u << VH_GET_VRING_BASE)) {
		for (unsigned i = 0; i < 2; i++) {
			const struct vring_used *u = (const void *)(d->ram +
				(size_t)(d->pair * 2 + i) * VH_VQ_STRIDE + VH_USED_OFF);
			base[i] = __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
		}
	}
	ret_base[0] = base[0];
	ret_base[1] = base[1];
	return 0;
}
