// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mktap NAME QUEUES
 *	create a persistent TAP with a virtio-net header (IFF_VNET_HDR),
 *	multi-queue when QUEUES > 1: what the e2e harness makes with
 *	`ip tuntap add ... vnet_hdr [multi_queue]` (busybox's ip cannot).
 * mktap -x NAME QUEUES -- CMD [ARG...]
 *	open QUEUES queues of that TAP and QUEUES /dev/vhost-net fds, leave
 *	them open across exec, and exec CMD with "@TAPFDS@" and "@VHOSTFDS@"
 *	in its arguments replaced by their numbers ("3" or "3:4"): how
 *	libvirt starts QEMU (-netdev tap,fd=N,vhost=on,vhostfd=M; QEMU opens
 *	neither itself).
 * Runs inside the outer guest of the nested vhost-net test, in the
 * scenario's own network namespace.
 */
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MAX_QUEUES 8

static int open_queue(const char *name, int queues, int persist)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR);

	if (fd < 0) {
		perror("mktap: /dev/net/tun");
		exit(1);
	}
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
			(queues > 1 ? IFF_MULTI_QUEUE : 0);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 ||
	    (persist && ioctl(fd, TUNSETPERSIST, 1) < 0)) {
		perror("mktap: TUNSETIFF/TUNSETPERSIST");
		exit(1);
	}
	return fd;
}

/* "a:b:c" of n fds */
static void join(char *out, size_t len, const int *fds, int n)
{
	size_t o = 0;

	for (int i = 0; i < n && o < len; i++)
		o += snprintf(out + o, len - o, "%s%d", i ? ":" : "", fds[i]);
}

/* arg with every "@KEY@" replaced by val (a new string) */
static char *subst(const char *arg, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val), n = 0;
	const char *p;
	char *out, *o;

	for (p = arg; (p = strstr(p, key)); p += kl)
		n++;
	out = malloc(strlen(arg) + n * vl + 1);
	if (!out)
		exit(1);
	for (o = out, p = arg; *p;) {
		if (!strncmp(p, key, kl)) {
			memcpy(o, val, vl);
			o += vl;
			p += kl;
		} else {
			*o++ = *p++;
		}
	}
	*o = 0;
	return out;
}

int main(int argc, char **argv)
{
	int tap[MAX_QUEUES], vhost[MAX_QUEUES], queues;
	char taps[64], vhosts[64];

	if (argc == 3 && strlen(argv[1]) < IFNAMSIZ) {
		queues = atoi(argv[2]);
		close(open_queue(argv[1], queues, 1));
		return 0;
	}
	if (argc < 6 || strcmp(argv[1], "-x") || strlen(argv[2]) >= IFNAMSIZ ||
	    strcmp(argv[4], "--")) {
		fprintf(stderr, "usage: mktap NAME QUEUES\n"
				"       mktap -x NAME QUEUES -- CMD [ARG...]\n");
		return 2;
	}
	queues = atoi(argv[3]);
	if (queues < 1 || queues > MAX_QUEUES)
		return 2;
	for (int i = 0; i < queues; i++) {
		tap[i] = open_queue(argv[2], queues, 0);
		vhost[i] = open("/dev/vhost-net", O_RDWR);
		if (vhost[i] < 0) {
			perror("mktap: /dev/vhost-net");
			return 1;
		}
	}
	join(taps, sizeof(taps), tap, queues);
	join(vhosts, sizeof(vhosts), vhost, queues);
	for (int i = 5; i < argc; i++)
		argv[i] = subst(subst(argv[i], "@TAPFDS@", taps), "@VHOSTFDS@", vhosts);
	execvp(argv[5], argv + 5);
	perror("mktap: exec");
	return 127;
}
