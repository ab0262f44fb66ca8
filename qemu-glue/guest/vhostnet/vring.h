/* SPDX-License-Identifier: MIT */
/*
 * vring.h -- the "guest RAM" of vhost-handover and a minimal split-ring
 * virtio-net driver over it.
 *
 * The RAM is one memfd of VH_MEM_SIZE bytes.  Its offsets are the guest
 * physical addresses (GPAs) the descriptors carry; every owner of the vhost
 * device maps it wherever it likes and tells the kernel with
 * VHOST_SET_MEM_TABLE (GPA 0 -> its own address).  Virtqueue v (pair p:
 * rx = 2p, tx = 2p + 1, as virtio-net numbers them) lives at v * VH_VQ_STRIDE:
 *
 *   +0x0000  descriptor table   (16 * VH_QSZ bytes)
 *   +0x1000  avail ring
 *   +0x2000  used ring
 *   +0x4000  VH_QSZ buffers of VH_BUF_SZ bytes (descriptor i -> buffer i)
 *
 * Features: what QEMU's virtio-net negotiates with vhost-net on a modern
 * guest, as far as a minimal driver needs: VERSION_1, MRG_RXBUF and
 * RING_EVENT_IDX.  Every frame is a 12-byte struct virtio_net_hdr_mrg_rxbuf
 * followed by the Ethernet frame, in one descriptor (a frame always fits one
 * buffer, so num_buffers is 1); the TAP's vnet header size is set to 12.
 */
#ifndef VH_VRING_H
#define VH_VRING_H

#include <stdint.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#define VH_MAX_PAIRS 2
#define VH_MAX_VQS (2 * VH_MAX_PAIRS)
#define VH_QSZ 256u
#define VH_BUF_SZ 2048u
#define VH_VQ_STRIDE 0x100000u
#define VH_MEM_SIZE (VH_VQ_STRIDE * VH_MAX_VQS)
#define VH_DESC_OFF 0x0000u
#define VH_AVAIL_OFF 0x1000u
#define VH_USED_OFF 0x2000u
#define VH_BUF_OFF 0x4000u
#define VH_HDR_LEN ((uint32_t)sizeof(struct virtio_net_hdr_mrg_rxbuf))
#define VH_FEATURES ((1ull << VIRTIO_F_VERSION_1) | \
		     (1ull << VIRTIO_NET_F_MRG_RXBUF) | \
		     (1ull << VIRTIO_RING_F_EVENT_IDX))

static inline uint64_t vh_gpa(unsigned vq, uint32_t off)
{
	return (uint64_t)vq * VH_VQ_STRIDE + off;
}

/* One virtqueue as the driver sees it. */
struct vh_vq {
	unsigned index;			/* global: pair * 2 + (0 rx | 1 tx) */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint8_t *base;			/* this vq's region in the driver's map */
	uint16_t avail_idx;		/* next avail slot the driver fills */
	uint16_t last_used;		/* used entries consumed so far */
	int kick;			/* eventfd: driver -> device */
	int call;			/* eventfd: device -> driver */
};

/* Point vq at its region of ram and reset the ring (rx: post every buffer). */
void vh_vq_init(struct vh_vq *vq, uint8_t *ram, unsigned index, int kick,
		int call, int is_rx);
/* Tell the device there is work (eventfd write; never fails in practice). */
void vh_vq_kick(struct vh_vq *vq);
/* rx: call fn for every used buffer, repost it; returns how many. */
unsigned vh_rx_poll(struct vh_vq *vq,
		    void (*fn)(void *ctx, unsigned vq, const uint8_t *frame,
			       uint32_t len),
		    void *ctx);
/* tx: queue one frame (vnet header added here); -1 when the ring is full. */
int vh_tx_frame(struct vh_vq *vq, const uint8_t *frame, uint32_t len);
/* used->idx as the device last published it. */
uint16_t vh_used_idx(const struct vh_vq *vq);

#endif
