// SPDX-License-Identifier: MIT
/*
 * vring.c -- minimal split-ring driver (see vring.h).  Single producer and
 * single consumer per ring; the device is the kernel's vhost worker, which
 * reads avail->idx with acquire semantics and publishes used->idx with
 * release semantics, so the driver pairs with __atomic acquire/release.
 * The driver kicks after every batch: with EVENT_IDX it could skip kicks
 * the device's avail_event says it does not need, but an extra kick is
 * harmless and a pending one is what a handover must not lose.
 */
#include <string.h>
#include <unistd.h>

#include "vring.h"

void vh_vq_init(struct vh_vq *vq, uint8_t *ram, unsigned index, int kick,
		int call, int is_rx)
{
	uint8_t *b = ram + (size_t)index * VH_VQ_STRIDE;

	memset(vq, 0, sizeof(*vq));
	vq->index = index;
	vq->base = b;
	vq->desc = (struct vring_desc *)(b + VH_DESC_OFF);
	vq->avail = (struct vring_avail *)(b + VH_AVAIL_OFF);
	vq->used = (struct vring_used *)(b + VH_USED_OFF);
	vq->kick = kick;
	vq->call = call;
	memset(b, 0, VH_BUF_OFF);
	for (unsigned i = 0; i < VH_QSZ; i++) {
		vq->desc[i].addr = vh_gpa(index, VH_BUF_OFF + i * VH_BUF_SZ);
		vq->desc[i].len = VH_BUF_SZ;
		vq->desc[i].flags = is_rx ? VRING_DESC_F_WRITE : 0;
		vq->desc[i].next = 0;
	}
	if (is_rx) {
		for (unsigned i = 0; i < VH_QSZ; i++)
			vq->avail->ring[i] = (uint16_t)i;
		vq->avail_idx = (uint16_t)VH_QSZ;
		__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
	}
}

void vh_vq_kick(struct vh_vq *vq)
{
	uint64_t one = 1;
	ssize_t r = write(vq->kick, &one, sizeof(one));

	(void)r;	/* EAGAIN only at a counter of 2^64 - 2 */
}

uint16_t vh_used_idx(const struct vh_vq *vq)
{
	return __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
}

unsigned vh_rx_poll(struct vh_vq *vq,
		    void (*fn)(void *ctx, unsigned vq, const uint8_t *frame,
			       uint32_t len),
		    void *ctx)
{
	uint16_t used = vh_used_idx(vq);
	unsigned n = 0;

	while (vq->last_used != used) {
		struct vring_used_elem e = vq->used->ring[vq->last_used % VH_QSZ];
		uint32_t id = e.id % VH_QSZ;
		const uint8_t *buf = vq->base + VH_BUF_OFF + id * VH_BUF_SZ;

		if (e.len > VH_HDR_LEN && e.len <= VH_BUF_SZ)
			fn(ctx, vq->index, buf + VH_HDR_LEN, e.len - VH_HDR_LEN);
		vq->desc[id].len = VH_BUF_SZ;
		vq->avail->ring[vq->avail_idx % VH_QSZ] = (uint16_t)id;
		vq->avail_idx++;
		vq->last_used++;
		n++;
	}
	if (n) {
		/* EVENT_IDX: call us when the device passes what we consumed
		 * (the driver polls as well, so a late call costs latency only). */
		vq->avail->ring[VH_QSZ] = vq->last_used;
		__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
		vh_vq_kick(vq);
	}
	return n;
}

int vh_tx_frame(struct vh_vq *vq, const uint8_t *frame, uint32_t len)
{
	/* The device completes tx in order (copy mode), so reclaiming is just
	 * catching up with used->idx; slot = avail index. */
	vq->last_used = vh_used_idx(vq);
	if ((uint16_t)(vq->avail_idx - vq->last_used) >= VH_QSZ)
		return -1;
	if (len + VH_HDR_LEN > VH_BUF_SZ)
		return -1;
	unsigned slot = vq->avail_idx % VH_QSZ;
	uint8_t *buf = vq->base + VH_BUF_OFF + slot * VH_BUF_SZ;

	memset(buf, 0, VH_HDR_LEN);	/* no checksum offload, no GSO */
	memcpy(buf + VH_HDR_LEN, frame, len);
	vq->desc[slot].len = len + VH_HDR_LEN;
	vq->desc[slot].flags = 0;
	vq->avail->ring[slot] = (uint16_t)slot;
	vq->avail_idx++;
	__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
	vh_vq_kick(vq);
	return 0;
}
