// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mktap NAME QUEUES -- create a persistent TAP with a virtio-net header
 * (IFF_VNET_HDR), multi-queue when QUEUES > 1: what the e2e harness makes
 * with `ip tuntap add ... vnet_hdr [multi_queue]` (busybox's ip cannot).
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

int main(int argc, char **argv)
{
	struct ifreq ifr;
	int fd, queues;

	if (argc != 3 || strlen(argv[1]) >= IFNAMSIZ) {
		fprintf(stderr, "usage: mktap NAME QUEUES\n");
		return 2;
	}
	queues = atoi(argv[2]);
	fd = open("/dev/net/tun", O_RDWR);
	if (fd < 0) {
		perror("mktap: /dev/net/tun");
		return 1;
	}
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, argv[1]);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
			(queues > 1 ? IFF_MULTI_QUEUE : 0);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0) {
		perror("mktap: TUNSETIFF/TUNSETPERSIST");
		return 1;
	}
	close(fd);
	return 0;
}
