// SPDX-License-Identifier: MIT
/*
 * vhost-handover -- runs inside the vhost-net test guest (static, PID 1's
 * child).  Proves that a /dev/vhost-net device serving a TAP can change
 * owner between two processes with traffic flowing and nothing lost.
 *
 * Processes of one scenario (all forked from this program, no exec):
 *   O  the orchestrator (main): creates the "guest RAM" memfd and the
 *      kick/call eventfds (KVM's ioeventfd/irqfd in a real VM), forks the
 *      others, drives them over SOCK_SEQPACKET pairs, judges, prints;
 *   D  the driver ("the guest"): a split-ring virtio-net driver over the
 *      memfd (vring.c), sends sequence-numbered UDP through the tx rings and
 *      counts what arrives on the rx rings;
 *   A  the source owner ("the old QEMU"): opens the TAP queue(s) and
 *      /dev/vhost-net, owns the vhost device(s) and starts the rings;
 *   B  the target ("the new QEMU"): pulls A's vhost, TAP, memfd and eventfd
 *      fds with pidfd_getfd (libfdhandover's fdh_pull), never opening any
 *      itself, and takes ownership once A has given it up;
 *   P  the peer: a UDP socket on the TAP's address in the guest's own
 *      network stack, sending to and counting from D.
 * Traffic never leaves the guest: D <-> vhost <-> TAP vhn0 <-> P.
 *
 * Scenarios: handover (A releases, B takes, A exits), rollback (A releases,
 * B gives up, A takes back), and target killed after taking (what the
 * kernel then allows the source), with 1 and 2 queue pairs.
 *
 * Output on stdout (the console): KTAP ("ok N name # ..."), one
 * "VHN-RESULT {json}" line per scenario and "VHN-DONE passed=N failed=N".
 *
 * Usage: vhost-handover [-r PPS] [-t SECONDS_AROUND_SWITCH] [-H HOLD_MS]
 *                       [-X TAKE_STEPS_TO_SKIP] [-Y RELEASE_STEPS_TO_SKIP] [NAME-FILTER]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fdhandover.h>

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

static int ctl_send(int s, const struct ctl *m)
{
	return send(s, m, sizeof(*m), MSG_NOSIGNAL) == (ssize_t)sizeof(*m) ? 0 : -errno;
}

/* Receive one message within timeout_ms; -ETIMEDOUT, -EPIPE on EOF. */
static int ctl_recv(int s, struct ctl *m, int timeout_ms)
{
	struct pollfd p = { .fd = s, .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);

	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	ssize_t n = recv(s, m, sizeof(*m), 0);
	if (n == 0)
		return -EPIPE;
	if (n != (ssize_t)sizeof(*m))
		return n < 0 ? -errno : -EPROTO;
	return 0;
}

static int ctl_expect(int s, struct ctl *m, uint32_t cmd, int timeout_ms)
{
	int r = ctl_recv(s, m, timeout_ms);

	if (r)
		return r;
	return m->cmd == cmd ? 0 : -EPROTO;
}

static void ctl_reply(int s, uint32_t cmd, int err, const char *fmt, ...)
{
	struct ctl m = { .cmd = cmd, .err = err, .pid = getpid() };
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(m.text, sizeof(m.text), fmt, ap);
		va_end(ap);
	}
	ctl_send(s, &m);
}

/* ------------------------------------------------------------------ */
/* Network setup (A): the TAP and its address, all inside the guest   */

static int tun_open(bool mq)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", IFNAME);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
			(mq ? IFF_MULTI_QUEUE : 0);
	int hdr = (int)VH_HDR_LEN;	/* VERSION_1 / MRG_RXBUF header */
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static void sin_set(struct sockaddr *sa, const char *ip)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)sa;

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sin->sin_addr);
}

static int tap_configure(char *why, size_t whylen)
{
	struct ifreq ifr;
	struct arpreq arp;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int fd;

	if (s < 0)
		return -errno;
	/* No IPv6 chatter (router solicitations, MLD) into the rings. */
	fd = open("/proc/sys/net/ipv6/conf/" IFNAME "/disable_ipv6", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0)
			(void)0;
		close(fd);
	}
#define IFREQ_DO(req, what)                                                   \
	do {                                                                  \
		if (ioctl(s, req, &ifr) < 0) {                                \
			int e_ = -errno;                                      \
			snprintf(why, whylen, "%s: %s", what, strerror(-e_)); \
			close(s);                                             \
			return e_;                                            \
		}                                                             \
	} while (0)
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", IFNAME);
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, mac_tap, 6);
	IFREQ_DO(SIOCSIFHWADDR, "SIOCSIFHWADDR");
	sin_set(&ifr.ifr_addr, HOST_IP);
	IFREQ_DO(SIOCSIFADDR, "SIOCSIFADDR");
	sin_set(&ifr.ifr_netmask, "255.255.255.0");
	IFREQ_DO(SIOCSIFNETMASK, "SIOCSIFNETMASK");
	IFREQ_DO(SIOCGIFFLAGS, "SIOCGIFFLAGS");
	ifr.ifr_flags |= IFF_UP;
	IFREQ_DO(SIOCSIFFLAGS, "SIOCSIFFLAGS");
#undef IFREQ_DO
	/* A permanent neighbour for D: no ARP through the rings. */
	memset(&arp, 0, sizeof(arp));
	sin_set(&arp.arp_pa, DRV_IP);
	arp.arp_ha.sa_family = ARPHRD_ETHER;
	memcpy(arp.arp_ha.sa_data, mac_drv, 6);
	arp.arp_flags = ATF_PERM | ATF_COM;
	snprintf(arp.arp_dev, sizeof(arp.arp_dev), "%s", IFNAME);
	if (ioctl(s, SIOCSARP, &arp) < 0) {
		int e = -errno;
		snprintf(why, whylen, "SIOCSARP: %s", strerror(-e));
		close(s);
		return e;
	}
	close(s);
	return 0;
}

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

static int role_driver(int ctl, int memfd, unsigned nq, const int *kick,
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

static int role_peer(int ctl, unsigned pps)
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

/* ------------------------------------------------------------------ */
/* A and B: owners of the vhost device(s)                             */

struct owner {
	unsigned nq;
	struct vh_dev dev[VH_MAX_PAIRS];
	uint8_t *ram;
	int memfd;
};

static void owner_devs(struct owner *o, const int *tap, const int *vhost,
		       const int *kick, const int *call)
{
	for (unsigned p = 0; p < o->nq; p++) {
		struct vh_dev *d = &o->dev[p];

		d->vhost = vhost[p];
		d->tap = tap[p];
		d->kick[0] = kick[2 * p];
		d->kick[1] = kick[2 * p + 1];
		d->call[0] = call[2 * p];
		d->call[1] = call[2 * p + 1];
		d->pair = p;
		d->ram = o->ram;
		d->features = VH_FEATURES;
	}
}

/* Take every device at bases (per global vq); fills m->ns, m->t_ns. */
static int owner_take(struct owner *o, const uint16_t *base, unsigned skip,
		      struct ctl *m)
{
	uint64_t t0 = vh_now_ns();

	for (unsigned p = 0; p < o->nq; p++) {
		enum vh_step failed = VH_STEP_MAX;
		int r = vh_dev_take(&o->dev[p], base + 2 * p, skip, m->ns, &failed);
		if (r) {
			snprintf(m->text, sizeof(m->text), "pair %u: %s: %s", p,
				 vh_step_name(failed), strerror(-r));
			return r;
		}
	}
	m->t_ns = vh_now_ns() - t0;
	return 0;
}

static int owner_release(struct owner *o, unsigned skip, struct ctl *m)
{
	uint64_t t0 = vh_now_ns();

	for (unsigned p = 0; p < o->nq; p++) {
		enum vh_step failed = VH_STEP_MAX;
		int r = vh_dev_release(&o->dev[p], m->base + 2 * p, skip, m->ns,
				       &failed);
		if (r) {
			snprintf(m->text, sizeof(m->text), "pair %u: %s: %s", p,
				 vh_step_name(failed), strerror(-r));
			return r;
		}
	}
	m->t_ns = vh_now_ns() - t0;
	for (unsigned v = 0; v < 2 * o->nq; v++) {
		const struct vring_used *u = (const void *)(o->ram +
			(size_t)v * VH_VQ_STRIDE + VH_USED_OFF);
		m->used[v] = __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
	}
	return 0;
}

/* Serve STOP / RESUME / RESET / EXIT until EXIT (or the channel dies). */
static int owner_loop(int ctl, struct owner *o)
{
	struct ctl m, r;

	for (;;) {
		int e = ctl_recv(ctl, &m, 120000);
		if (e)
			return 1;
		memset(&r, 0, sizeof(r));
		r.pid = getpid();
		switch (m.cmd) {
		case C_STOP:
			r.cmd = C_STOPPED;
			r.err = owner_release(o, m.skip, &r);
			break;
		case C_TAKE:
		case C_RESUME:
			r.cmd = m.cmd == C_TAKE ? C_TAKEN : C_RESUMED;
			r.err = owner_take(o, m.base, m.skip, &r);
			break;
		case C_RESET: {
			/* Only to show what the kernel answers a non-owner. */
			uint64_t t0 = vh_now_ns();
			r.cmd = C_RESET;
			r.err = ioctl(o->dev[0].vhost, VHOST_RESET_OWNER) < 0 ? -errno : 0;
			r.t_ns = vh_now_ns() - t0;
			break;
		}
		case C_ABORT:	/* the target gives up: drop what it pulled */
		case C_EXIT:
			for (unsigned p = 0; p < o->nq; p++) {
				close(o->dev[p].vhost);
				close(o->dev[p].tap);
			}
			munmap(o->ram, VH_MEM_SIZE);
			return 0;
		default:
			return 1;
		}
		ctl_send(ctl, &r);
	}
}

static int role_source(int ctl, int memfd, unsigned nq, const int *kick,
		       const int *call)
{
	struct owner o = { .nq = nq, .memfd = memfd };
	int tap[VH_MAX_PAIRS] = { -1, -1 }, vhost[VH_MAX_PAIRS] = { -1, -1 };
	uint16_t base[VH_MAX_VQS] = { 0 };
	char why[160];
	struct ctl m;

	memset(&m, 0, sizeof(m));
	m.cmd = C_READY;
	m.pid = getpid();
	o.ram = mmap(NULL, VH_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		     memfd, 0);
	if (o.ram == MAP_FAILED) {
		ctl_reply(ctl, C_READY, -errno, "mmap");
		return 1;
	}
	for (unsigned p = 0; p < nq; p++) {
		tap[p] = tun_open(nq > 1);
		if (tap[p] < 0) {
			ctl_reply(ctl, C_READY, tap[p], "open /dev/net/tun + TUNSETIFF %s", IFNAME);
			return 1;
		}
	}
	int r = tap_configure(why, sizeof(why));
	if (r) {
		ctl_reply(ctl, C_READY, r, "%s", why);
		return 1;
	}
	for (unsigned p = 0; p < nq; p++) {
		vhost[p] = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
		if (vhost[p] < 0) {
			ctl_reply(ctl, C_READY, -errno, "open /dev/vhost-net");
			return 1;
		}
	}
	owner_devs(&o, tap, vhost, kick, call);
	r = owner_take(&o, base, 0, &m);
	if (r) {
		m.err = r;
		ctl_send(ctl, &m);
		return 1;
	}
	for (unsigned p = 0; p < nq; p++) {
		m.fds.tap[p] = tap[p];
		m.fds.vhost[p] = vhost[p];
	}
	for (unsigned v = 0; v < 2 * nq; v++) {
		m.fds.kick[v] = kick[v];
		m.fds.call[v] = call[v];
	}
	m.fds.memfd = memfd;
	m.map_addr = (uint64_t)(uintptr_t)o.ram;
	ctl_send(ctl, &m);
	return owner_loop(ctl, &o);
}

/* B: pull A's fds (libfdhandover), map the RAM, then serve TAKE. */
static int role_target(int ctl)
{
	struct ctl m, r;
	struct owner o;
	int e;

	if (ctl_expect(ctl, &m, C_PULL, 120000))
		return 1;
	if (m.cmd == C_ABORT)
		return 0;
	memset(&r, 0, sizeof(r));
	r.cmd = C_PULLED;
	r.pid = getpid();

	unsigned nq = m.nq, n = 0;
	struct fdh_pull_entry ent[1 + 3 * VH_MAX_PAIRS + 2 * VH_MAX_VQS];
	char labels[sizeof(ent) / sizeof(ent[0])][24];
	int remote[sizeof(ent) / sizeof(ent[0])], local[sizeof(ent) / sizeof(ent[0])];
	struct fdh_source *src = NULL;
	struct fdh_pull_report rep;
	uint64_t t0 = vh_now_ns();

#define ADD(fd, ...)                                                     \
	do {                                                             \
		remote[n] = (fd);                                        \
		snprintf(labels[n], sizeof(labels[n]), __VA_ARGS__);     \
		n++;                                                     \
	} while (0)
	ADD(m.fds.memfd, "ram");
	for (unsigned p = 0; p < nq; p++) {
		ADD(m.fds.vhost[p], "vhost%u", p);
		ADD(m.fds.tap[p], "tap.q%u", p);
	}
	for (unsigned v = 0; v < 2 * nq; v++) {
		ADD(m.fds.kick[v], "kick%u", v);
		ADD(m.fds.call[v], "call%u", v);
	}
#undef ADD
	e = fdh_source_open_pid(m.pid, 0, &src);
	for (unsigned i = 0; !e && i < n; i++) {
		struct fdh_fd_info info;

		e = fdh_inspect_fd(m.pid, remote[i], 0, &info);
		if (e)
			break;
		memset(&ent[i], 0, sizeof(ent[i]));
		ent[i].remote_fd = remote[i];
		ent[i].label = labels[i];
		fdh_identity_from_info(&info, &ent[i].expect);
		if (strcmp(labels[i], "vhost0") == 0 && info.kind != FDH_KIND_VHOST_NET)
			e = -EMEDIUMTYPE;
	}
	if (!e)
		e = fdh_pull(src, ent, n, local, &rep);
	if (e) {
		r.err = e;
		snprintf(r.text, sizeof(r.text), "pull: %s", fdh_last_error()->msg);
		ctl_send(ctl, &r);
		return 1;
	}
	fdh_source_free(src);

	int tap[VH_MAX_PAIRS], vhost[VH_MAX_PAIRS], kick[VH_MAX_VQS], call[VH_MAX_VQS];
	unsigned k = 1;
	for (unsigned p = 0; p < nq; p++) {
		vhost[p] = local[k++];
		tap[p] = local[k++];
	}
	for (unsigned v = 0; v < 2 * nq; v++) {
		kick[v] = local[k++];
		call[v] = local[k++];
	}
	memset(&o, 0, sizeof(o));
	o.nq = nq;
	o.memfd = local[0];
	o.ram = mmap(NULL, VH_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		     o.memfd, 0);
	if (o.ram != MAP_FAILED && (uint64_t)(uintptr_t)o.ram == m.map_addr) {
		/* Same address as A by chance: take another, so the memory
		 * table really changes. */
		uint8_t *again = mmap(NULL, VH_MEM_SIZE, PROT_READ | PROT_WRITE,
				      MAP_SHARED, o.memfd, 0);
		munmap(o.ram, VH_MEM_SIZE);
		o.ram = again;
	}
	if (o.ram == MAP_FAILED) {
		r.err = -errno;
		snprintf(r.text, sizeof(r.text), "mmap pulled memfd");
		ctl_send(ctl, &r);
		return 1;
	}
	owner_devs(&o, tap, vhost, kick, call);
	/* Before the window: the features are readable without ownership. */
	uint64_t feat = 0;
	if (ioctl(vhost[0], VHOST_GET_FEATURES, &feat) < 0) {
		r.err = -errno;
		snprintf(r.text, sizeof(r.text), "VHOST_GET_FEATURES on the pulled fd");
		ctl_send(ctl, &r);
		return 1;
	}
	r.t_ns = vh_now_ns() - t0;
	/* What the kernel lets a non-owner do while A owns the device: take
	 * it (EBUSY expected) or program it (EPERM expected).  Nothing of the
	 * take can move before A's RESET_OWNER. */
	struct {
		struct vhost_memory m;
		struct vhost_memory_region r[1];
	} mem = { .m.nregions = 1,
		  .r[0] = { .memory_size = VH_MEM_SIZE,
			    .userspace_addr = (uint64_t)(uintptr_t)o.ram } };
	int own = ioctl(vhost[0], VHOST_SET_OWNER) < 0 ? -errno : 0;
	int tbl = ioctl(vhost[0], VHOST_SET_MEM_TABLE, &mem) < 0 ? -errno : 0;
	r.map_addr = (uint64_t)(uintptr_t)o.ram;
	snprintf(r.text, sizeof(r.text),
		 "%u fds by %s, %zu kcmp-verified, features 0x%llx; while the "
		 "source owns: SET_OWNER=%d SET_MEM_TABLE=%d", n,
		 fdh_transport_name(rep.transport), rep.n_kcmp_verified,
		 (unsigned long long)feat, own, tbl);
	ctl_send(ctl, &r);
	return owner_loop(ctl, &o);
}

/* ------------------------------------------------------------------ */
/* O: scenarios                                                       */

enum mode { HANDOVER, ROLLBACK, TARGET_KILLED };

struct scenario {
	const char *name;
	unsigned nq;
	enum mode mode;
	unsigned release_skip;		/* vh_step bits the release leaves out */
};

#define RESET_ONLY ((1u << VH_SET_BACKEND_OFF) | (1u << VH_GET_VRING_BASE))

static const struct scenario scenarios[] = {
	{ "vhost_net_handover_1q", 1, HANDOVER, 0 },
	{ "vhost_net_handover_2q", 2, HANDOVER, 0 },
	{ "vhost_net_rollback_1q", 1, ROLLBACK, 0 },
	{ "vhost_net_rollback_2q", 2, ROLLBACK, 0 },
	{ "vhost_net_handover_reset_only_1q", 1, HANDOVER, RESET_ONLY },
	{ "vhost_net_handover_reset_only_2q", 2, HANDOVER, RESET_ONLY },
	{ "vhost_net_target_killed_after_take_1q", 1, TARGET_KILLED, 0 },
};

/* -X: steps every handover leaves out (experiments, see vhost-net.md). */
static unsigned opt_skip_take, opt_skip_release;

static unsigned opt_pps = 1000;
static unsigned opt_ms = 1000;		/* traffic before and after the switch */
static unsigned opt_hold_ms = 50;	/* ownerless between release and take */

struct proc {
	pid_t pid;
	int ctl;
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Number of tasks named "vhost-PID" (the 6.1 vhost worker kthreads). */
static unsigned count_workers(pid_t owner)
{
	char want[32], path[300], comm[32];
	unsigned n = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;

	snprintf(want, sizeof(want), "vhost-%d\n", owner);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (r <= 0)
			continue;
		comm[r] = 0;
		if (strcmp(comm, want) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* waitpid with a deadline; SIGKILL past it.  Returns the wait status. */
static int reap(pid_t pid, unsigned timeout_ms)
{
	int st = -1;

	for (unsigned t = 0; t <= timeout_ms; t += 10) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0)
			return -1;
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return 0x7f00 | SIGKILL;	/* "killed by us" */
}

static struct proc spawn(int (*fn)(int ctl, void *arg), void *arg, int *close_in_child,
			 unsigned n_close)
{
	int sv[2];
	struct proc p = { -1, -1 };

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return p;
	p.pid = fork();
	if (p.pid == 0) {
		close(sv[0]);
		for (unsigned i = 0; i < n_close; i++)
			if (close_in_child[i] >= 0)
				close(close_in_child[i]);
		alarm(120);	/* bounded, whatever happens */
		_exit(fn(sv[1], arg));
	}
	close(sv[1]);
	p.ctl = sv[0];
	return p;
}

struct shared {
	unsigned nq;
	int memfd;
	int kick[VH_MAX_VQS], call[VH_MAX_VQS];
};

static int run_driver(int ctl, void *arg)
{
	struct shared *s = arg;
	return role_driver(ctl, s->memfd, s->nq, s->kick, s->call, opt_pps);
}

static int run_source(int ctl, void *arg)
{
	struct shared *s = arg;
	return role_source(ctl, s->memfd, s->nq, s->kick, s->call);
}

static int run_peer(int ctl, void *arg)
{
	(void)arg;
	return role_peer(ctl, opt_pps);
}

static int run_target(int ctl, void *arg)
{
	(void)arg;
	return role_target(ctl);
}

/* What one scenario measured. */
struct result {
	bool ok;
	char why[1024];
	struct ctl a_ready, pulled, stopped, taken, resumed, reset, d_st, p_st;
	pid_t a_pid, b_pid;
	int a_status, b_status;
	unsigned workers_a, workers_b, workers_b_after_exit;
	uint64_t window_ns, t_switch_ns;
	int resume_err, reset_err;
};

#define FAIL(...)                                                     \
	do {                                                          \
		if (res->ok)                                          \
			snprintf(res->why, sizeof(res->why), __VA_ARGS__); \
		res->ok = false;                                      \
	} while (0)

static void wait_tap_gone(void)
{
	for (int i = 0; i < 300 && if_nametoindex(IFNAME); i++)
		sleep_ms(10);
}

static void run_scenario(const struct scenario *sc, struct result *res)
{
	struct shared sh = { .nq = sc->nq };
	struct proc d = { -1, -1 }, a = { -1, -1 }, p = { -1, -1 }, b = { -1, -1 };
	struct ctl m;
	uint64_t t0 = 0;
	int e;

	memset(res, 0, sizeof(*res));
	res->ok = true;
	res->resume_err = res->reset_err = 1;
	wait_tap_gone();
	sh.memfd = memfd_create("vhn-guest-ram", MFD_CLOEXEC);
	if (sh.memfd < 0 || ftruncate(sh.memfd, VH_MEM_SIZE) < 0) {
		FAIL("memfd: %s", strerror(errno));
		return;
	}
	for (unsigned v = 0; v < 2 * sc->nq; v++) {
		sh.kick[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		sh.call[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	}

	d = spawn(run_driver, &sh, NULL, 0);
	if (d.pid < 0 || (e = ctl_expect(d.ctl, &m, C_READY, CTL_TIMEOUT_MS)) || m.err) {
		FAIL("driver not ready");
		goto out;
	}
	a = spawn(run_source, &sh, &d.ctl, 1);
	if (a.pid < 0 || (e = ctl_expect(a.ctl, &res->a_ready, C_READY, CTL_TIMEOUT_MS))) {
		FAIL("source not ready: %s", strerror(-e));
		goto out;
	}
	res->a_pid = a.pid;
	if (res->a_ready.err) {
		FAIL("source: %s: %s", res->a_ready.text, strerror(-res->a_ready.err));
		goto out;
	}
	/* From here O holds nothing of the device's: the target can only get
	 * the fds from A. */
	close(sh.memfd);
	sh.memfd = -1;
	for (unsigned v = 0; v < 2 * sc->nq; v++) {
		close(sh.kick[v]);
		close(sh.call[v]);
	}
	int ctls[3] = { d.ctl, a.ctl, -1 };
	p = spawn(run_peer, NULL, ctls, 2);
	if (p.pid < 0 || ctl_expect(p.ctl, &m, C_READY, CTL_TIMEOUT_MS) || m.err) {
		FAIL("peer not ready: %s", m.text);
		goto out;
	}
	ctls[2] = p.ctl;
	b = spawn(run_target, NULL, ctls, 3);
	res->b_pid = b.pid;

	ctl_reply(d.ctl, C_GO, 0, NULL);
	ctl_reply(p.ctl, C_GO, 0, NULL);
	sleep_ms(opt_ms);

	/* Before the stop window: B pulls every fd and maps the RAM. */
	memset(&m, 0, sizeof(m));
	m.cmd = C_PULL;
	m.pid = a.pid;
	m.nq = sc->nq;
	m.fds = res->a_ready.fds;
	m.map_addr = res->a_ready.map_addr;
	ctl_send(b.ctl, &m);
	if ((e = ctl_expect(b.ctl, &res->pulled, C_PULLED, CTL_TIMEOUT_MS)) || res->pulled.err) {
		FAIL("target pull: %s %s", e ? strerror(-e) : "", res->pulled.text);
		goto out;
	}
	sleep_ms(100);

	/* The stop window: A releases, B (or A again) takes. */
	t0 = vh_now_ns();
	memset(&m, 0, sizeof(m));
	m.cmd = C_STOP;
	m.skip = sc->release_skip | opt_skip_release;
	ctl_send(a.ctl, &m);
	if ((e = ctl_expect(a.ctl, &res->stopped, C_STOPPED, CTL_TIMEOUT_MS)) || res->stopped.err) {
		FAIL("source release: %s %s", e ? strerror(-e) : "", res->stopped.text);
		goto out;
	}
	/* Hold the device ownerless a while, as a slow switch would: frames
	 * keep arriving on both sides meanwhile and must all get through. */
	sleep_ms(opt_hold_ms);
	memset(&m, 0, sizeof(m));
	memcpy(m.base, res->stopped.base, sizeof(m.base));
	if (sc->mode == ROLLBACK) {
		ctl_reply(b.ctl, C_ABORT, 0, NULL);	/* the target gives up */
		m.cmd = C_RESUME;
		ctl_send(a.ctl, &m);
		if ((e = ctl_expect(a.ctl, &res->resumed, C_RESUMED, CTL_TIMEOUT_MS)) ||
		    res->resumed.err) {
			FAIL("source re-take: %s %s", e ? strerror(-e) : "", res->resumed.text);
			goto out;
		}
	} else {
		m.cmd = C_TAKE;
		m.skip = opt_skip_take;
		ctl_send(b.ctl, &m);
		if ((e = ctl_expect(b.ctl, &res->taken, C_TAKEN, CTL_TIMEOUT_MS)) ||
		    res->taken.err) {
			FAIL("target take: %s %s", e ? strerror(-e) : "", res->taken.text);
			goto out;
		}
	}
	res->t_switch_ns = vh_now_ns();
	res->window_ns = res->t_switch_ns - t0;

	if (sc->mode == ROLLBACK)
		res->b_status = reap(b.pid, 3000), b.pid = -1;
	sleep_ms(50);
	res->workers_a = count_workers(a.pid);
	res->workers_b = count_workers(res->b_pid);

	if (sc->mode == HANDOVER) {
		ctl_reply(a.ctl, C_EXIT, 0, NULL);
		res->a_status = reap(a.pid, 3000);
		a.pid = -1;
	} else if (sc->mode == TARGET_KILLED) {
		/* The target dies owning the device: what can the source do? */
		kill(b.pid, SIGKILL);
		res->b_status = reap(b.pid, 3000);
		b.pid = -1;
		sleep_ms(50);
		res->workers_b_after_exit = count_workers(res->b_pid);
		m.cmd = C_RESUME;
		ctl_send(a.ctl, &m);
		if (ctl_expect(a.ctl, &res->resumed, C_RESUMED, CTL_TIMEOUT_MS) == 0)
			res->resume_err = res->resumed.err;
		ctl_reply(a.ctl, C_RESET, 0, NULL);
		if (ctl_expect(a.ctl, &res->reset, C_RESET, CTL_TIMEOUT_MS) == 0)
			res->reset_err = res->reset.err;
	}
	sleep_ms(opt_ms);

	memset(&m, 0, sizeof(m));
	m.cmd = C_STOP;
	m.win[0] = t0;
	m.win[1] = res->t_switch_ns;
	ctl_send(d.ctl, &m);
	ctl_send(p.ctl, &m);
	if (ctl_expect(d.ctl, &res->d_st, C_STATS, CTL_TIMEOUT_MS))
		FAIL("no stats from the driver");
	if (ctl_expect(p.ctl, &res->p_st, C_STATS, CTL_TIMEOUT_MS))
		FAIL("no stats from the peer");
out:
	if (b.pid > 0) {
		ctl_reply(b.ctl, C_EXIT, 0, NULL);
		res->b_status = reap(b.pid, 3000);
	}
	if (a.pid > 0) {
		ctl_reply(a.ctl, C_EXIT, 0, NULL);
		int st = reap(a.pid, 3000);
		if (sc->mode != HANDOVER)
			res->a_status = st;
	}
	if (p.pid > 0)
		reap(p.pid, 3000);
	if (d.pid > 0)
		reap(d.pid, 3000);
	int all[] = { d.ctl, a.ctl, p.ctl, b.ctl };
	for (unsigned i = 0; i < 4; i++)
		if (all[i] >= 0)
			close(all[i]);
	if (sh.memfd >= 0) {
		close(sh.memfd);
		for (unsigned v = 0; v < 2 * sc->nq; v++) {
			close(sh.kick[v]);
			close(sh.call[v]);
		}
	}
}

/* For a JSON string: no quotes, backslashes or control characters. */
static const char *jsafe(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = '\'';
	return s;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void judge(const struct scenario *sc, struct result *res)
{
	const struct stats *h2d = &res->d_st.st, *d2h = &res->p_st.st;
	uint64_t lost_d2h, lost_h2d;

	/* D counts its own tx in d_st.sent; P counts what D sent it. */
	lost_d2h = res->d_st.st.sent > d2h->uniq ? res->d_st.st.sent - d2h->uniq : 0;
	lost_h2d = res->p_st.st.sent > h2d->uniq ? res->p_st.st.sent - h2d->uniq : 0;

	if (!res->ok)
		return;
	/* Under TCG the guest reaches a fraction of the rate: ask for a tenth
	 * of it, 2 x opt_ms of traffic, each way. */
	uint64_t least = (uint64_t)opt_pps * opt_ms / 5000;
	if (res->d_st.st.sent < least || res->p_st.st.sent < least)
		FAIL("too little traffic: driver sent %llu, peer sent %llu",
		     (unsigned long long)res->d_st.st.sent,
		     (unsigned long long)res->p_st.st.sent);
	if (lost_d2h || lost_h2d)
		FAIL("lost %llu driver->peer, %llu peer->driver",
		     (unsigned long long)lost_d2h, (unsigned long long)lost_h2d);
	/* Frames sent while no one owned the device were delivered, both ways
	 * (the TAP's queue holds the peer's, the tx ring the driver's). */
	if (opt_hold_ms >= 20 && sc->mode != TARGET_KILLED &&
	    (!d2h->in_window || !h2d->in_window))
		FAIL("nothing sent inside the window was delivered: %llu driver->peer, %llu peer->driver",
		     (unsigned long long)d2h->in_window, (unsigned long long)h2d->in_window);
	/* Traffic went on after the switch, both ways. */
	uint64_t after = res->t_switch_ns + (uint64_t)opt_ms * 500000ull;
	if (d2h->last_rx_ns < after || h2d->last_rx_ns < after)
		FAIL("no traffic after the switch");
	if (sc->nq > 1 && (!d2h->uniq || !h2d->rx_q[0] || !h2d->rx_q[1]))
		FAIL("a queue pair carried nothing: rx q0 %llu q1 %llu",
		     (unsigned long long)h2d->rx_q[0], (unsigned long long)h2d->rx_q[1]);
	switch (sc->mode) {
	case HANDOVER:
		if (res->workers_b != sc->nq || res->workers_a != 0)
			FAIL("workers after the switch: vhost-%d x%u, vhost-%d x%u",
			     res->a_pid, res->workers_a, res->b_pid, res->workers_b);
		if (res->a_status != 0)
			FAIL("source exit status 0x%x", res->a_status);
		if (res->pulled.map_addr == res->a_ready.map_addr)
			FAIL("target mapped the RAM at the source's address");
		if (res->b_status != 0)
			FAIL("target exit status 0x%x", res->b_status);
		break;
	case ROLLBACK:
		if (res->workers_a != sc->nq || res->workers_b != 0)
			FAIL("workers after the rollback: vhost-%d x%u, vhost-%d x%u",
			     res->a_pid, res->workers_a, res->b_pid, res->workers_b);
		if (res->b_status != 0 || res->a_status != 0)
			FAIL("exit status: target 0x%x, source 0x%x",
			     res->b_status, res->a_status);
		break;
	case TARGET_KILLED:
		/* Expected on 6.1: SET_OWNER EBUSY (the dead target still owns
		 * the device), RESET_OWNER EPERM (only the owner may), the
		 * worker outlives its owner, and the rings keep running on
		 * the dead target's address space. */
		if (res->resume_err != -EBUSY || res->reset_err != -EPERM)
			FAIL("source after the target died: SET_OWNER %s, RESET_OWNER %s",
			     strerror(-res->resume_err), strerror(-res->reset_err));
		break;
	}
}

static void print_result(unsigned idx, const struct scenario *sc, struct result *res)
{
	const struct stats *h2d = &res->d_st.st, *d2h = &res->p_st.st;
	long long lost_d2h = (long long)res->d_st.st.sent - (long long)d2h->uniq;
	long long lost_h2d = (long long)res->p_st.st.sent - (long long)h2d->uniq;
	const struct ctl *take = sc->mode == ROLLBACK ? &res->resumed : &res->taken;

	printf("VHN-RESULT {\"name\":\"%s\",\"ok\":%s,\"queues\":%u,\"mode\":\"%s\","
	       "\"why\":\"%s\",\"pps\":%u,"
	       "\"driver_sent\":%llu,\"peer_received\":%llu,\"lost_driver_to_peer\":%lld,"
	       "\"peer_sent\":%llu,\"driver_received\":%llu,\"lost_peer_to_driver\":%lld,"
	       "\"dup\":%llu,\"driver_rx_q\":[%llu,%llu],\"tx_ring_full\":%llu,"
	       "\"delivered_sent_in_window\":[%llu,%llu],\"max_gap_ms_driver_to_peer\":%.3f,\"max_gap_ms_peer_to_driver\":%.3f,"
	       "\"release_skip\":\"0x%x\",\"take_skip\":\"0x%x\",\"window_ms\":%.3f,\"hold_ms\":%u,\"release_ms\":%.3f,\"take_ms\":%.3f,\"pull_ms\":%.3f,"
	       "\"source_pid\":%d,\"target_pid\":%d,\"workers_source\":%u,\"workers_target\":%u,"
	       "\"workers_target_after_its_death\":%u,"
	       "\"source_exit\":%d,\"target_exit\":%d,\"source_map\":\"0x%llx\",\"target_map\":\"0x%llx\","
	       "\"bases\":[%u,%u,%u,%u],\"used_idx\":[%u,%u,%u,%u],"
	       "\"resume_after_death\":%d,\"reset_after_death\":%d,\"pulled\":\"%s\",\"ioctl_us\":{",
	       sc->name, res->ok ? "true" : "false", sc->nq,
	       sc->mode == HANDOVER ? "handover" : sc->mode == ROLLBACK ? "rollback" : "target-killed",
	       jsafe(res->why), opt_pps,
	       (unsigned long long)res->d_st.st.sent, (unsigned long long)d2h->uniq, lost_d2h,
	       (unsigned long long)res->p_st.st.sent, (unsigned long long)h2d->uniq, lost_h2d,
	       (unsigned long long)(h2d->dup + d2h->dup),
	       (unsigned long long)h2d->rx_q[0], (unsigned long long)h2d->rx_q[1],
	       (unsigned long long)h2d->tx_full,
	       (unsigned long long)d2h->in_window, (unsigned long long)h2d->in_window,
	       ms(d2h->max_gap_ns), ms(h2d->max_gap_ns),
	       sc->release_skip | opt_skip_release, opt_skip_take, ms(res->window_ns), opt_hold_ms, ms(res->stopped.t_ns), ms(take->t_ns), ms(res->pulled.t_ns),
	       res->a_pid, res->b_pid, res->workers_a, res->workers_b,
	       res->workers_b_after_exit,
	       WIFEXITED(res->a_status) ? WEXITSTATUS(res->a_status) : -1,
	       WIFEXITED(res->b_status) ? WEXITSTATUS(res->b_status) : -1,
	       (unsigned long long)res->a_ready.map_addr, (unsigned long long)res->pulled.map_addr,
	       res->stopped.base[0], res->stopped.base[1], res->stopped.base[2], res->stopped.base[3],
	       res->stopped.used[0], res->stopped.used[1], res->stopped.used[2], res->stopped.used[3],
	       res->resume_err, res->reset_err, jsafe(res->pulled.text));
	bool first = true;
	for (unsigned s = 0; s < VH_STEP_MAX; s++) {
		uint64_t ns = res->stopped.ns[s] + take->ns[s];
		if (!ns)
			continue;
		printf("%s\"%s\":%.1f", first ? "" : ",", vh_step_name(s), (double)ns / 1e3);
		first = false;
	}
	printf("}}\n");
	printf("%s %u %s # window %.3f ms (release %.3f, hold, take %.3f); lost %lld/%lld; max gap %.1f/%.1f ms%s%s\n",
	       res->ok ? "ok" : "not ok", idx, sc->name, ms(res->window_ns),
	       ms(res->stopped.t_ns), ms(take->t_ns), lost_d2h, lost_h2d,
	       ms(d2h->max_gap_ns), ms(h2d->max_gap_ns), res->ok ? "" : "; ", res->why);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *filter = "";
	int c;

	while ((c = getopt(argc, argv, "r:t:H:X:Y:")) != -1) {
		switch (c) {
		case 'r':
			opt_pps = (unsigned)atoi(optarg);
			break;
		case 't':
			opt_ms = (unsigned)(atof(optarg) * 1000);
			break;
		case 'H':
			opt_hold_ms = (unsigned)atoi(optarg);
			break;
		case 'X':	/* take steps to leave out */
		case 'Y':	/* release steps to leave out */
			if (vh_steps_parse(optarg, c == 'X' ? &opt_skip_take
							    : &opt_skip_release)) {
				fprintf(stderr, "vhost-handover: unknown step in %s\n", optarg);
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: vhost-handover [-r PPS] [-t SECONDS] [-H HOLD_MS] [-X TAKE_STEPS_TO_SKIP] [-Y RELEASE_STEPS_TO_SKIP] [FILTER]\n");
			return 2;
		}
	}
	if (optind < argc)
		filter = argv[optind];
	if (opt_pps < 10 || opt_pps > 100000 || opt_ms < 200 || opt_ms > 30000 ||
	    opt_hold_ms > 5000) {
		fprintf(stderr, "vhost-handover: -r 10..100000, -t 0.2..30, -H 0..5000\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(600);

	unsigned n = 0, idx = 0, passed = 0;
	for (unsigned i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		n += strstr(scenarios[i].name, filter) != NULL;
	printf("KTAP version 1\n1..%u\n", n);
	for (unsigned i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		static struct result res;

		if (!strstr(scenarios[i].name, filter))
			continue;
		run_scenario(&scenarios[i], &res);
		judge(&scenarios[i], &res);
		print_result(++idx, &scenarios[i], &res);
		passed += res.ok;
	}
	printf("VHN-DONE passed=%u failed=%u\n", passed, idx - passed);
	return passed == idx ? 0 : 1;
}
