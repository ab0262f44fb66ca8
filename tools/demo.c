// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fd-handover-demo: hand a TAP + memfd + eventfd set from one process to
 * another, verified, and report what moved and how long each phase took.
 *
 * Run it inside a network namespace of its own (scripts/demo.sh does):
 * the TAP it creates and the frames it writes never leave that namespace.
 *
 *   source (child)                      successor (this process)
 *   makes TAP, 64 MiB memfd, eventfd    inspects the source's fds
 *   pauses                              builds + encodes the manifest
 *                                       decodes + validates it
 *                                       pulls + verifies (kcmp)
 *                                       checks the state that moved
 *   is killed                           keeps using the TAP alone
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdhandover.h"

#define TAP_NAME "fdhdemo0"
#define RAM_SIZE (64u << 20)
#define EVENT_COUNT 42
#define PATTERN 0x9e3779b97f4a7c15ull

struct source_fds {
	int tap, ram, kick;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int die(const char *what)
{
	const struct fdh_error *e = fdh_last_error();

	fprintf(stderr, "fd-handover-demo: %s: %s\n", what,
		e->msg[0] ? e->msg : strerror(errno));
	return 1;
}

/* A checksum that touches every page: proves the bytes, not the inode. */
static uint64_t ram_checksum(int fd)
{
	const uint64_t *p = mmap(NULL, RAM_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	uint64_t sum = 0;

	if (p == MAP_FAILED)
		return 0;
	for (size_t i = 0; i < RAM_SIZE / sizeof(*p); i += 512)
		sum = sum * 31 + p[i];
	munmap((void *)p, RAM_SIZE);
	return sum;
}

/* The same checksum over the pattern the source wrote. */
static uint64_t pattern_checksum(void)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < RAM_SIZE / sizeof(uint64_t); i += 512)
		sum = sum * 31 + i * PATTERN;
	return sum;
}

static int make_source_fds(struct source_fds *s)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	uint64_t *p;

	s->tap = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	snprintf(ifr.ifr_name, IFNAMSIZ, TAP_NAME);
	if (s->tap < 0 || ioctl(s->tap, TUNSETIFF, &ifr) < 0)
		return -errno;
	s->ram = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (s->ram < 0 || ftruncate(s->ram, RAM_SIZE) < 0)
		return -errno;
	p = mmap(NULL, RAM_SIZE, PROT_WRITE, MAP_SHARED, s->ram, 0);
	if (p == MAP_FAILED)
		return -errno;
	for (size_t i = 0; i < RAM_SIZE / sizeof(*p); i++)
		p[i] = i * PATTERN;
	munmap(p, RAM_SIZE);
	if (fcntl(s->ram, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		return -errno;
	s->kick = eventfd(EVENT_COUNT, EFD_CLOEXEC | EFD_NONBLOCK);
	return s->kick < 0 ? -errno : 0;
}

/* The source: make the fds, report their numbers, wait to be killed. */
static pid_t start_source(struct source_fds *ret)
{
	int pipefd[2];
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		struct source_fds s;
		int r;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(pipefd[0]);
		r = make_source_fds(&s);
		if (r < 0)
			s.tap = r;
		if (write(pipefd[1], &s, sizeof(s)) != sizeof(s))
			_exit(1);
		for (;;)
			pause();
	}
	close(pipefd[1]);
	if (pid < 0 || read(pipefd[0], ret, sizeof(*ret)) != sizeof(*ret)) {
		close(pipefd[0]);
		return -1;
	}
	close(pipefd[0]);
	if (ret->tap < 0) {
		errno = -ret->tap;
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static uint64_t tap_rx_packets(void)
{
	FILE *f = fopen("/sys/class/net/" TAP_NAME "/statistics/rx_packets", "r");
	unsigned long long n = 0;

	if (f) {
		if (fscanf(f, "%llu", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n;
}

/*
 * Write one frame into the TAP: the namespace's own stack receives it
 * (an experimental ethertype, dropped after counting), so it goes
 * nowhere else.  Needs the link up.
 */
static int tap_write_frame(int fd)
{
	unsigned char frame[10 + 60] = { 0 };	/* virtio_net_hdr + frame */
	unsigned char *eth = frame + 10;

	memset(eth, 0xff, 6);			/* broadcast */
	memcpy(eth + 6, "\x02\xfd\x00\x00\x00\x01", 6);
	eth[12] = 0x88;
	eth[13] = 0xb5;				/* IEEE local experimental */
	memcpy(eth + 14, "fd-handover demo", 16);
	return write(fd, frame, sizeof(frame)) == (ssize_t)sizeof(frame) ? 0 : -errno;
}

static int link_up(void)
{
	return system("ip link set " TAP_NAME " up") == 0 ? 0 : -EIO;
}

static void tap_what(const struct fdh_manifest_entry *e, char *buf, size_t size)
{
	snprintf(buf, size, "ifname %s, vnet hdr %d", e->u.tap.ifname,
		 e->u.tap.vnet_hdr_sz);
}

static void memfd_what(const struct fdh_manifest_entry *e, char *buf,
		       size_t size)
{
	snprintf(buf, size, "name %s, %" PRIu64 " MiB, seals %#x",
		 e->u.memfd.name, e->u.memfd.size >> 20, e->u.memfd.seals);
}

static void eventfd_what(const struct fdh_manifest_entry *e, char *buf,
			 size_t size)
{
	snprintf(buf, size, "eventfd-id %" PRIu64, e->kind_id);
}

/* The kinds this demo hands over, and what it shows of each. */
static void (*const whats[FDH_KIND__MAX])(const struct fdh_manifest_entry *,
					  char *, size_t) = {
	[FDH_KIND_TAP] = tap_what,
	[FDH_KIND_MEMFD] = memfd_what,
	[FDH_KIND_EVENTFD] = eventfd_what,
};

static void print_entry(const struct fdh_manifest_entry *e, int local)
{
	char what[128] = "";

	if (e->kind < FDH_KIND__MAX && whats[e->kind])
		whats[e->kind](e, what, sizeof(what));
	printf("  %-8s %-8s fd %3d -> fd %3d   ino %-8" PRIu64 " %s\n",
	       e->owner, fdh_kind_name(e->kind), e->remote_fd, local, e->ino,
	       what);
}

int main(void)
{
	struct source_fds remote;
	struct fdh_manifest *m, *got;
	struct fdh_pull_entry entries[3];
	struct fdh_pull_report report;
	struct fdh_source *src;
	const char *owners[3] = { "net0", "ram0", "kick0" };
	int remote_fds[3], fds[3];
	uint64_t t0, t_manifest, t_codec, t_open, t_pull, count, rx_before;
	uint64_t want_sum, got_sum;
	void *wire;
	size_t wire_len;
	char ifname[IFNAMSIZ];
	struct ifreq ifr = { 0 };
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	pid = start_source(&remote);
	if (pid < 0)
		return die("starting the source (needs root inside a netns: run scripts/demo.sh)");
	remote_fds[0] = remote.tap;
	remote_fds[1] = remote.ram;
	remote_fds[2] = remote.kick;
	if (link_up() < 0)
		return die("ip link set " TAP_NAME " up");
	want_sum = pattern_checksum();
	printf("source pid %d holds TAP %s (fd %d), memfd guest-ram %u MiB (fd %d), eventfd count %d (fd %d)\n",
	       pid, TAP_NAME, remote.tap, RAM_SIZE >> 20, remote.ram,
	       EVENT_COUNT, remote.kick);

	/* 1. Describe: what a source publishes in its migration stream. */
	t0 = now_ns();
	m = fdh_manifest_new();
	if (!m || fdh_manifest_set_source(m, pid) < 0)
		return die("manifest source");
	for (int i = 0; i < 3; i++) {
		struct fdh_manifest_entry e;
		struct fdh_fd_info info;

		if (fdh_inspect_fd(pid, remote_fds[i], FDH_INSPECT_PULL, &info) < 0)
			return die("inspect");
		fdh_manifest_entry_from_info(&info, owners[i], 0, &e);
		if (fdh_manifest_add_entry(m, &e) < 0)
			return die("manifest entry");
	}
	t_manifest = now_ns();

	/* 2. The wire: encode, then decode and validate as the target would. */
	if (fdh_manifest_encode(m, &wire, &wire_len) < 0)
		return die("encode");
	if (fdh_manifest_decode(wire, wire_len, &got) < 0)
		return die("decode");
	t_codec = now_ns();

	/* 3. Open the manifest's source: a recycled pid, a manifest of another
	 * boot or a changed uid is refused. */
	if (fdh_source_open_manifest(got, &src) < 0)
		return die("open source");
	t_open = now_ns();

	/* 4. Pull and verify, all or nothing. */
	for (size_t i = 0; i < got->n_entries; i++) {
		entries[i] = (struct fdh_pull_entry){
			.remote_fd = got->entries[i].remote_fd,
			.label = got->entries[i].owner,
		};
		fdh_manifest_entry_identity(&got->entries[i], &entries[i].expect);
	}
	if (fdh_pull(src, entries, got->n_entries, fds, &report) < 0)
		return die("pull");
	t_pull = now_ns();

	printf("\nmoved (manifest %zu bytes, %s, %zu/%zu proven the source's):\n",
	       wire_len, fdh_transport_name(report.transport),
	       report.n_kcmp_verified, got->n_entries);
	for (size_t i = 0; i < got->n_entries; i++)
		print_entry(&got->entries[i], fds[i]);

	/* 5. The state moved with the files. */
	got_sum = ram_checksum(fds[1]);
	if (read(fds[2], &count, sizeof(count)) != sizeof(count))
		count = 0;
	if (ioctl(fds[0], TUNGETIFF, &ifr) < 0)
		return die("TUNGETIFF on the pulled TAP");
	memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
	printf("\nchecks:\n");
	printf("  memfd checksum %016" PRIx64 " %s source's\n", got_sum,
	       got_sum == want_sum ? "==" : "!=");
	printf("  eventfd count  %" PRIu64 " (source signalled %d)\n", count,
	       EVENT_COUNT);
	printf("  TAP            %s (TUNGETIFF on the pulled fd)\n", ifname);

	/* 6. The source goes away; the successor alone drives the TAP. */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	rx_before = tap_rx_packets();
	if (tap_write_frame(fds[0]) < 0)
		return die("writing a frame through the pulled TAP");
	printf("  after the source exited: a frame written through the pulled TAP, rx_packets %" PRIu64 " -> %" PRIu64 "\n",
	       rx_before, tap_rx_packets());

	printf("\ntimings:\n");
	printf("  inspect + build manifest   %8.1f us\n", (t_manifest - t0) / 1e3);
	printf("  encode + decode + validate %8.1f us\n", (t_codec - t_manifest) / 1e3);
	printf("  open source (pidfd)        %8.1f us\n", (t_open - t_codec) / 1e3);
	printf("  pull + verify, 3 fds       %8.1f us (%.1f us per fd)\n",
	       (t_pull - t_open) / 1e3, (t_pull - t_open) / 3e3);

	if (got_sum != want_sum || count != EVENT_COUNT ||
	    strcmp(ifname, TAP_NAME) != 0 || tap_rx_packets() != rx_before + 1) {
		fprintf(stderr, "fd-handover-demo: a check failed\n");
		return 1;
	}
	printf("\nhandover complete: 3 fds moved, verified, state intact.\n");
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	fdh_source_free(src);
	fdh_manifest_free(got);
	fdh_manifest_free(m);
	free(wire);
	return 0;
}
