// SPDX-License-Identifier: MIT
/*
 * traffic.c -- the two ends of the traffic: D, a split-ring virtio-net
 * driver over the memfd (vring.c) that sends and counts sequence-numbered
 * UDP, and P, a UDP socket on the TAP's address.  Both count unique
 * sequence numbers, the largest gap between arrivals, and how many of the
 * frames sent inside the switch window arrived.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "roles.h"

/* ------------------------------------------------------------------ */
/* Sequence accounting (D and P)                                      */

struct counter {
	uint8_t *seen;			/* SEQ_BITS bits */
	uint64_t *sent_ns;		/* per seq: the sender's clock */
	struct stats st;
	uint64_t last_ns;
};

static void counter_init(struct counter *c)
{
	memset(c, 0, sizeof(*c));
	c->seen = calloc(SEQ_BITS / 8, 1);
	c->sent_ns = calloc(SEQ_BITS, sizeof(uint64_t));
	if (!c->seen || !c->sent_ns)
		_exit(3);
}

static void counter_add(struct counter *c, uint32_t seq, uint64_t sent_ns,
			unsigned q)
{
	uint64_t now = vh_now_ns();

	if (seq >= SEQ_BITS) {
		c->st.other++;
		return;
	}
	if (c->seen[seq / 8] & (1u << (seq % 8))) {
		c->st.dup++;
		return;
	}
	c->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
	c->sent_ns[seq] = sent_ns;
	c->st.uniq++;
	if (q < VH_MAX_PAIRS)
		c->st.rx_q[q]++;
	if (c->last_ns && now - c->last_ns > c->st.max_gap_ns) {
		c->st.max_gap_ns = now - c->last_ns;
		c->st.max_gap_at_ns = c->last_ns;
	}
	c->last_ns = now;
	c->st.last_rx_ns = now;
}

/* How many of the received were sent inside [win[0], win[1]]. */
static void counter_window(struct counter *c, const uint64_t *win)
{
	for (uint32_t i = 0; i < SEQ_BITS; i++)
		if ((c->seen[i / 8] & (1u << (i % 8))) && c->sent_ns[i] >= win[0] &&
		    c->sent_ns[i] <= win[1])
			c->st.in_window++;
}

struct payload {
	uint32_t magic;
	uint32_t seq;
	uint64_t t_ns;
};

/* ------------------------------------------------------------------ */
/* D: the driver                                                      */

static uint16_t ip_csum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(b[i] << 8 | b[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* Ethernet + IPv4 + UDP (checksum 0: none) from D to P. */
static size_t build_frame(uint8_t *f, uint32_t seq)
{
	struct payload pl = { .magic = MAGIC, .seq = seq, .t_ns = vh_now_ns() };
	uint16_t ulen = (uint16_t)(8 + sizeof(pl));
	uint16_t tlen = (uint16_t)(20 + ulen);
	uint8_t *ip = f + 14, *udp = ip + 20;
	uint16_t sport = (uint16_t)(D_PORT + seq % N_FLOWS);
	struct in_addr src, dst;

	memcpy(f, mac_tap, 6);
	memcpy(f + 6, mac_drv, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	inet_pton(AF_INET, DRV_IP, &src);
	inet_pton(AF_INET, HOST_IP, &dst);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(tlen >> 8);
	ip[3] = (uint8_t)tlen;
	ip[6] = 0x40;			/* DF */
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	uint16_t c = ip_csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	udp[0] = (uint8_t)(sport >> 8);
	udp[1] = (uint8_t)sport;
	udp[2] = (uint8_t)(P_PORT >> 8);
	udp[3] = (uint8_t)P_PORT;
	udp[4] = (uint8_t)(ulen >> 8);
	udp[5] = (uint8_t)ulen;
	udp[6] = udp[7] = 0;
	memcpy(udp + 8, &pl, sizeof(pl));
	return 14 + tlen;
}

static void drv_rx(void *ctx, unsigned vq, const uint8_t *f, uint32_t len)
{
	struct counter *c = ctx;
	struct payload pl;

	if (len < 14 + 20 + 8 + sizeof(pl) || f[12] != 0x08 || f[13] != 0x00 ||
	    f[14 + 9] != 17) {
		c->st.other++;
		return;
	}
	unsigned ihl = (f[14] & 0xf) * 4u;
	if (len < 14 + ihl + 8 + sizeof(pl)) {
		c->st.other++;
		return;
	}
	memcpy(&pl, f + 14 + ihl + 8, sizeof(pl));
	if (pl.magic != MAGIC) {
		c->st.other++;
		return;
	}
	counter_add(c, pl.seq, pl.t_ns, vq / 2);
}

int role_driver(int ctl, int memfd, unsigned nq, const int *kick,
		       const int *call, unsigned pps)
{
	struct vh_vq vqs[VH_MAX_VQS];
	struct counter rx;
	struct ctl m;
	uint8_t frame[128];
	uint8_t *ram = mmap(NULL, VH_MEM_SIZE, PROT_READ | PROT_WRITE,
			    MAP_SHARED, memfd, 0);

	if (ram == MAP_FAILED) {
		ctl_reply(ctl, C_READY, -errno, "mmap");
		return 1;
	}
	for (unsigned v = 0; v < 2 * nq; v++)
		vh_vq_init(&vqs[v], ram, v, kick[v], call[v], (v % 2) == 0);
	counter_init(&rx);
	ctl_reply(ctl, C_READY, 0, NULL);
	if (ctl_expect(ctl, &m, C_GO, 60000))
		return 1;

	uint64_t period = 1000000000ull / pps, next = vh_now_ns();
	uint64_t stop_at = 0;
	uint32_t seq = 0;
	uint64_t win[2] = { 0, 0 };
	bool pending = false;
	size_t flen = 0;

	for (;;) {
		uint64_t now = vh_now_ns();
		struct pollfd pf[1 + VH_MAX_VQS];
		unsigned n = 0;

		if (stop_at && now >= stop_at)
			break;
		if (!stop_at && now >= next) {
			if (!pending) {
				flen = build_frame(frame, seq);
				pending = true;
			}
			/* A full tx ring (no owner for 256 ms) holds the
			 * frame back; it is never counted before it is
			 * queued, so only the device can lose it. */
			if (vh_tx_frame(&vqs[(seq % nq) * 2 + 1], frame,
					(uint32_t)flen) == 0) {
				rx.st.sent++;
				seq++;
				pending = false;
			} else {
				rx.st.tx_full++;
			}
			next += period;
			if (next < now)
				next = now + period;	/* skip, never burst */
		}
		pf[n++] = (struct pollfd){ .fd = ctl, .events = POLLIN };
		for (unsigned v = 0; v < 2 * nq; v += 2)
			pf[n++] = (struct pollfd){ .fd = call[v], .events = POLLIN };
		uint64_t until = stop_at ? stop_at : next;
		now = vh_now_ns();
		struct timespec ts = { 0, 0 };
		if (until > now) {
			ts.tv_sec = (time_t)((until - now) / 1000000000u);
			ts.tv_nsec = (long)((until - now) % 1000000000u);
		}
		/* Poll the rings at least every 2 ms even without a call. */
		if (ts.tv_sec || ts.tv_nsec > 2000000)
			ts = (struct timespec){ 0, 2000000 };
		ppoll(pf, n, &ts, NULL);
		if (pf[0].revents & POLLIN) {
			if (ctl_recv(ctl, &m, 0) || m.cmd != C_STOP)
				return 1;
			win[0] = m.win[0];
			win[1] = m.win[1];
			stop_at = vh_now_ns() + DRAIN_MS * 1000000ull;
		}
		for (unsigned v = 0; v < 2 * nq; v++) {
			uint64_t cnt;
			if (read(call[v], &cnt, sizeof(cnt)) < 0)
				(void)0;	/* EAGAIN: no call */
		}
		for (unsigned v = 0; v < 2 * nq; v += 2)
			vh_rx_poll(&vqs[v], drv_rx, &rx);
	}
	memset(&m, 0, sizeof(m));
	m.cmd = C_STATS;
	m.pid = getpid();
	counter_window(&rx, win);
	m.st = rx.st;
	for (unsigned v = 0; v < 2 * nq; v++)
		m.used[v] = vh_used_idx(&vqs[v]);
	ctl_send(ctl, &m);
	return 0;
}

/* ------------------------------------------------------------------ */
/* P: the peer on the TAP's address                                   */

int role_peer(int ctl, unsigned pps)
{
	struct sockaddr_in me, to;
	struct counter rx;
	struct ctl m;
	int one = 1, big = 4 << 20;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (s < 0) {
		ctl_reply(ctl, C_READY, -errno, "socket");
		return 1;
	}
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	sin_set((struct sockaddr *)&me, HOST_IP);
	me.sin_port = htons(P_PORT);
	if (bind(s, (struct sockaddr *)&me, sizeof(me)) < 0) {
		ctl_reply(ctl, C_READY, -errno, "bind %s:%d", HOST_IP, P_PORT);
		return 1;
	}
	counter_init(&rx);
	ctl_reply(ctl, C_READY, 0, NULL);
	if (ctl_expect(ctl, &m, C_GO, 60000))
		return 1;
	sin_set((struct sockaddr *)&to, DRV_IP);

	uint64_t period = 1000000000ull / pps, next = vh_now_ns(), stop_at = 0;
	uint64_t win[2] = { 0, 0 };
	uint32_t seq = 0;

	for (;;) {
		uint64_t now = vh_now_ns();

		if (stop_at && now >= stop_at)
			break;
		if (!stop_at && now >= next) {
			struct payload pl = { MAGIC, seq, now };

			to.sin_port = htons((uint16_t)(D_PORT + seq % N_FLOWS));
			if (sendto(s, &pl, sizeof(pl), 0, (struct sockaddr *)&to,
				   sizeof(to)) == (ssize_t)sizeof(pl))
				rx.st.sent++;
			else
				rx.st.tx_full++;	/* send error: counted apart */
			seq++;
			next += period;
			if (next < now)
				next = now + period;
		}
		struct pollfd pf[2] = { { .fd = ctl, .events = POLLIN },
					{ .fd = s, .events = POLLIN } };
		uint64_t until = stop_at ? stop_at : next;
		now = vh_now_ns();
		struct timespec ts = { 0, until > now ? (long)(until - now) : 0 };
		if (until > now + 1000000000ull)
			ts = (struct timespec){ 1, 0 };
		ppoll(pf, 2, &ts, NULL);
		if (pf[0].revents & POLLIN) {
			if (ctl_recv(ctl, &m, 0) || m.cmd != C_STOP)
				return 1;
			win[0] = m.win[0];
			win[1] = m.win[1];
			stop_at = vh_now_ns() + DRAIN_MS * 1000000ull;
		}
		for (;;) {
			struct payload pl;
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			ssize_t r = recvfrom(s, &pl, sizeof(pl), 0,
					     (struct sockaddr *)&from, &fl);
			if (r < 0)
				break;
			if (r != (ssize_t)sizeof(pl) || pl.magic != MAGIC) {
				rx.st.other++;
				continue;
			}
			counter_add(&rx, pl.seq, pl.t_ns, 0);
		}
	}
	memset(&m, 0, sizeof(m));
	m.cmd = C_STATS;
	m.pid = getpid();
	counter_window(&rx, win);
	m.st = rx.st;
	ctl_send(ctl, &m);
	return 0;
}
