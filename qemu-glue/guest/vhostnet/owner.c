// SPDX-License-Identifier: MIT
/*
 * owner.c -- A and B, the owners of the vhost device(s): A opens the TAP
 * and /dev/vhost-net and starts the rings; B pulls A's fds with
 * libfdhandover and never opens either.  Both then serve STOP (release),
 * TAKE/RESUME (take) and EXIT; vhostctl.c has the ioctl sequences.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <sched.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fdhandover.h>

#include "roles.h"

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

int role_source(int ctl, int memfd, unsigned nq, const int *kick,
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

/*
 * The target must manage without ever opening /dev/vhost-net or
 * /dev/net/tun (under libvirt it could not): give it a mount namespace whose
 * /dev is an empty tmpfs, and prove both opens fail.  libfdhandover reads
 * /proc only.  Returns 0 or -errno (-EEXIST: a node is still reachable).
 */
static int deny_dev_nodes(char *what, size_t n)
{
	static const char *const nodes[] = { "/dev/vhost-net", "/dev/net/tun" };

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("none", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=4k") < 0) {
		int e = -errno;
		snprintf(what, n, "mount namespace: %s", strerror(-e));
		return e;
	}
	for (unsigned i = 0; i < 2; i++) {
		int fd = open(nodes[i], O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			snprintf(what, n, "%s still opens", nodes[i]);
			return -EEXIST;
		}
	}
	snprintf(what, n, "open /dev/vhost-net and /dev/net/tun: ENOENT");
	return 0;
}

/* B: pull A's fds (libfdhandover), map the RAM, then serve TAKE. */
int role_target(int ctl)
{
	char denied[96];
	struct ctl m, r;
	struct owner o;
	int e;

	if (ctl_recv(ctl, &m, 120000))
		return 1;
	if (m.cmd == C_ABORT || m.cmd == C_EXIT)	/* the scenario ended early */
		return 0;
	if (m.cmd != C_PULL)
		return 1;
	memset(&r, 0, sizeof(r));
	r.cmd = C_PULLED;
	r.pid = getpid();
	e = deny_dev_nodes(denied, sizeof(denied));
	if (e) {
		r.err = e;
		snprintf(r.text, sizeof(r.text), "%s", denied);
		ctl_send(ctl, &r);
		return 1;
	}

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
		 "source owns: SET_OWNER=%d SET_MEM_TABLE=%d; %s", n,
		 fdh_transport_name(rep.transport), rep.n_kcmp_verified,
		 (unsigned long long)feat, own, tbl, denied);
	ctl_send(ctl, &r);
	return owner_loop(ctl, &o);
}
