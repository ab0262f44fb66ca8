// SPDX-License-Identifier: MIT
/*
 * gueststream -- runs inside the test guest (static binary in the initramfs).
 *
 * Sends STREAM datagrams to the host peer at a fixed rate (default 1000/s) and
 * echoes every PROBE datagram it receives back to the sender, so the peer can
 * measure both directions.  Answers STATQ with STAT (final counters) and stops
 * on STOP, on SIGTERM/SIGINT, or after --max-secs (always bounded).
 *
 * Missed send slots (e.g. while the VM is paused) are skipped, never sent in a
 * burst: a gap in the stream's arrival times at the peer is the blackout, and
 * the sequence numbers stay dense so that only real drops count as lost.
 *
 * Usage: gueststream [-p PEER_IP] [-P PEER_PORT] [-l LOCAL_PORT] [-r PPS] [-t MAX_SECS]
 *                    [-c CHANNELS [-i IFNAME]]
 *
 * -c sets the interface's combined channel count first (ethtool -L IF combined N),
 * for multiqueue virtio-net with fewer vCPUs than queue pairs.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fdhproto.h"

static volatile sig_atomic_t stop_sig;

static void on_sig(int s)
{
	(void)s;
	stop_sig = 1;
}

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The unsigned number in a one-line file (sysfs), or -1 if there is none. */
static int read_u64_file(const char *path, uint64_t *v)
{
	unsigned long long x;
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%llu", &x) == 1;
	fclose(f);
	if (!ok)
		return -1;
	*v = x;
	return 0;
}

/* Udp: InErrors and RcvbufErrors from /proc/net/snmp: a header line of
 * names, then a line of values. */
static int read_udp_snmp(uint64_t *in_errors, uint64_t *rcvbuf_errors)
{
	char names[1024], vals[1024];
	int found = -1;
	FILE *f = fopen("/proc/net/snmp", "re");

	if (!f)
		return -1;
	while (fgets(names, sizeof(names), f)) {
		if (strncmp(names, "Udp: ", 5) || !fgets(vals, sizeof(vals), f))
			continue;
		char *sn, *sv;
		char *n = strtok_r(names, " \n", &sn), *v = strtok_r(vals, " \n", &sv);

		found = 0;
		while ((n = strtok_r(NULL, " \n", &sn)) && (v = strtok_r(NULL, " \n", &sv))) {
			if (!strcmp(n, "InErrors"))
				*in_errors = strtoull(v, NULL, 10);
			else if (!strcmp(n, "RcvbufErrors"))
				*rcvbuf_errors = strtoull(v, NULL, 10);
		}
		break;
	}
	fclose(f);
	return found;
}

/* The "drops" column (the last) of the socket bound to `port` in
 * /proc/net/udp: what the kernel dropped on that socket alone. */
static int read_sock_drops(int port, uint64_t *drops)
{
	char line[512];
	int found = -1;
	FILE *f = fopen("/proc/net/udp", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned lport;
		char *last;

		if (sscanf(line, " %*u: %*x:%x", &lport) != 1 || (int)lport != port)
			continue;
		/* the kernel pads each line with spaces (seq_pad) */
		for (size_t n = strlen(line); n && (line[n - 1] == ' ' || line[n - 1] == '\n');)
			line[--n] = '\0';
		last = strrchr(line, ' ');
		if (!last)
			continue;
		*drops = strtoull(last + 1, NULL, 10);
		found = 0;
		break;
	}
	fclose(f);
	return found;
}

/* The guest's drop counters, for a DROPS reply (fdhproto.h). */
static void read_drops(const char *ifname, int port, struct fdh_drops *d)
{
	char path[128];

	memset(d, 0, sizeof(*d));
	d->magic = FDH_MAGIC;
	d->type = FDH_DROPS;
#define NIC(field, name)                                                                  \
	do {                                                                              \
		snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/" name, ifname); \
		if (read_u64_file(path, &d->field))                                       \
			d->flags |= FDH_DROPS_NO_NIC;                                     \
	} while (0)
	NIC(rx_packets, "rx_packets");
	NIC(rx_dropped, "rx_dropped");
	NIC(rx_missed_errors, "rx_missed_errors");
#undef NIC
	if (read_udp_snmp(&d->udp_in_errors, &d->udp_rcvbuf_errors))
		d->flags |= FDH_DROPS_NO_SNMP;
	if (read_sock_drops(port, &d->sock_drops))
		d->flags |= FDH_DROPS_NO_SOCK;
}

static void usage(void)
{
	fprintf(stderr, "usage: gueststream [-p PEER_IP] [-P PEER_PORT] [-l LOCAL_PORT] "
			"[-r PPS] [-t MAX_SECS] [-c CHANNELS [-i IFNAME]]\n");
	exit(2);
}

static void set_channels(const char *ifname, unsigned n)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr = { 0 };

	if (s < 0)
		return;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&ch;
	if (ioctl(s, SIOCETHTOOL, &ifr) < 0) {
		perror("gueststream: ETHTOOL_GCHANNELS");
		close(s);
		return;
	}
	if (n > ch.max_combined)
		n = ch.max_combined;
	ch.cmd = ETHTOOL_SCHANNELS;
	ch.combined_count = n;
	if (ioctl(s, SIOCETHTOOL, &ifr) < 0)
		perror("gueststream: ETHTOOL_SCHANNELS");
	else
		printf("gueststream: %s combined channels = %u (max %u)\n", ifname, n,
		       ch.max_combined);
	close(s);
}

int main(int argc, char **argv)
{
	const char *peer_ip = "10.99.0.1";
	int peer_port = FDH_PEER_PORT, local_port = FDH_GUEST_PORT;
	long pps = 1000, max_secs = 3600;
	const char *ifname = "eth0";
	int opt, channels = 0;

	while ((opt = getopt(argc, argv, "p:P:l:r:t:c:i:h")) != -1) {
		switch (opt) {
		case 'c': channels = atoi(optarg); break;
		case 'i': ifname = optarg; break;
		case 'p': peer_ip = optarg; break;
		case 'P': peer_port = atoi(optarg); break;
		case 'l': local_port = atoi(optarg); break;
		case 'r': pps = atol(optarg); break;
		case 't': max_secs = atol(optarg); break;
		default: usage();
		}
	}
	if (pps < 1 || pps > 100000 || max_secs < 1 || max_secs > 7 * 86400)
		usage();

	if (channels > 0)
		set_channels(ifname, (unsigned)channels);

	struct sigaction sa = { .sa_handler = on_sig };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	uint64_t boot_id = 0;
	if (getrandom(&boot_id, sizeof(boot_id), GRND_INSECURE) != sizeof(boot_id)) /* never blocks */
		boot_id = now_ns(CLOCK_BOOTTIME) ^ ((uint64_t)getpid() << 48);

	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("gueststream: socket");
		return 1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	int buf = 1 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	struct sockaddr_in la = { .sin_family = AF_INET, .sin_port = htons(local_port),
				  .sin_addr.s_addr = htonl(INADDR_ANY) };
	if (bind(fd, (struct sockaddr *)&la, sizeof(la)) < 0) {
		perror("gueststream: bind");
		return 1;
	}
	struct sockaddr_in pa = { .sin_family = AF_INET, .sin_port = htons(peer_port) };
	if (inet_pton(AF_INET, peer_ip, &pa.sin_addr) != 1) {
		fprintf(stderr, "gueststream: bad peer ip %s\n", peer_ip);
		return 2;
	}

	const uint64_t period = 1000000000ull / (uint64_t)pps;
	const uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	const uint64_t t_end = t0 + (uint64_t)max_secs * 1000000000ull;
	uint64_t next = t0;
	uint64_t seq = 0, probes_rx = 0, probe_hi = 0, echoes = 0, send_err = 0;
	int stopped_by_peer = 0;

	printf("gueststream: started pps=%ld peer=%s:%d port=%d max=%lds boot_id=%016llx uptime_ms=%llu\n",
	       pps, peer_ip, peer_port, local_port, max_secs, (unsigned long long)boot_id,
	       (unsigned long long)(now_ns(CLOCK_BOOTTIME) / 1000000ull));
	fflush(stdout);

	while (!stop_sig && !stopped_by_peer) {
		uint64_t now = now_ns(CLOCK_MONOTONIC);

		if (now >= t_end)
			break;
		if (now >= next) {
			struct fdh_pkt p = {
				.magic = FDH_MAGIC, .type = FDH_STREAM, .seq = seq,
				.t_ns = now, .uptime_ns = now_ns(CLOCK_BOOTTIME),
				.boot_id = boot_id, .aux1 = probes_rx, .aux2 = probe_hi,
				.aux3 = echoes,
			};
			if (sendto(fd, &p, sizeof(p), 0, (struct sockaddr *)&pa, sizeof(pa)) < 0)
				send_err++; /* the datagram is lost; seq still advances */
			seq++;
			next += period;
			if (next <= now) /* behind (VM was paused): skip missed slots */
				next = now + period;
			continue;
		}

		uint64_t wait = next - now;
		struct timespec to = { .tv_sec = (time_t)(wait / 1000000000ull),
				       .tv_nsec = (long)(wait % 1000000000ull) };
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = ppoll(&pfd, 1, &to, NULL);
		if (r <= 0)
			continue;
		for (int n = 0; n < 256; n++) { /* bounded drain */
			struct fdh_pkt q;
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			ssize_t len = recvfrom(fd, &q, sizeof(q), 0, (struct sockaddr *)&from, &fl);

			if (len < 0)
				break;
			if (len != sizeof(q) || q.magic != FDH_MAGIC)
				continue;
			if (q.type == FDH_PROBE) {
				probes_rx++;
				if (q.seq + 1 > probe_hi)
					probe_hi = q.seq + 1;
				struct fdh_pkt e = {
					.magic = FDH_MAGIC, .type = FDH_ECHO, .seq = q.seq,
					.t_ns = now_ns(CLOCK_MONOTONIC),
					.uptime_ns = now_ns(CLOCK_BOOTTIME), .boot_id = boot_id,
					.aux1 = q.t_ns, .aux2 = probes_rx,
				};
				if (sendto(fd, &e, sizeof(e), 0, (struct sockaddr *)&from, fl) < 0)
					send_err++;
				else
					echoes++;
			} else if (q.type == FDH_STATQ) {
				struct fdh_pkt s = {
					.magic = FDH_MAGIC, .type = FDH_STAT, .seq = q.seq,
					.t_ns = now_ns(CLOCK_MONOTONIC),
					.uptime_ns = now_ns(CLOCK_BOOTTIME), .boot_id = boot_id,
					.aux1 = probes_rx, .aux2 = probe_hi, .aux3 = seq,
				};
				sendto(fd, &s, sizeof(s), 0, (struct sockaddr *)&from, fl);
				struct fdh_drops d;

				read_drops(ifname, local_port, &d);
				d.seq = q.seq;
				sendto(fd, &d, sizeof(d), 0, (struct sockaddr *)&from, fl);
				printf("FDH-DROPS: statq=%llu rx_packets=%llu rx_dropped=%llu "
				       "rx_missed_errors=%llu udp_in_errors=%llu "
				       "udp_rcvbuf_errors=%llu sock_drops=%llu flags=%u\n",
				       (unsigned long long)q.seq, (unsigned long long)d.rx_packets,
				       (unsigned long long)d.rx_dropped,
				       (unsigned long long)d.rx_missed_errors,
				       (unsigned long long)d.udp_in_errors,
				       (unsigned long long)d.udp_rcvbuf_errors,
				       (unsigned long long)d.sock_drops, d.flags);
				fflush(stdout);
			} else if (q.type == FDH_STOP) {
				stopped_by_peer = 1;
			}
		}
	}

	printf("gueststream: stopped (%s) stream_sent=%llu probes_rx=%llu echoes=%llu send_err=%llu\n",
	       stopped_by_peer ? "peer" : stop_sig ? "signal" : "max-secs",
	       (unsigned long long)seq, (unsigned long long)probes_rx,
	       (unsigned long long)echoes, (unsigned long long)send_err);
	fflush(stdout);
	close(fd);
	return 0;
}
