/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blkverify -- guest side of the vhost-user-blk handover test.
 *
 *   blkverify [-d /dev/vda] [-n BLOCKS] [-t SECONDS]
 *
 * A continuous O_DIRECT write/read loop with data verification on the
 * first BLOCKS 4 KiB blocks of the disk: block i is written with a header
 * (magic, block number, generation) and a pattern derived from them, read
 * back at once and compared; every block's previous contents are read and
 * verified before it is overwritten.  Once a second it prints
 *
 *   FDH-BLK: ops=N ioerr=E bad=B maxgap_ms=G at=T wgap_ms=W wgap_end=U now=V
 *
 * (maxgap_ms: the largest time between two completed iterations so far,
 * ending at T; wgap_ms: the largest since the previous line, ending at U;
 * now: when the line is printed; all times guest CLOCK_MONOTONIC seconds),
 * and after every gap of GAP_MS or more
 *
 *   FDH-BLK: gap_ms=G end=T
 *
 * Exits after SECONDS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BS 4096
#define GAP_MS 25	/* report every gap this long */
#define MAGIC 0x46444842u /* "FDHB" */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill(uint32_t *p, uint32_t block, uint32_t gen)
{
	uint32_t x = block * 2654435761u ^ gen * 40503u;

	p[0] = MAGIC;
	p[1] = block;
	p[2] = gen;
	for (size_t i = 3; i < BS / 4; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = x;
	}
}

int main(int argc, char **argv)
{
	const char *dev = "/dev/vda";
	uint32_t nblocks = 2048;
	double max_s = 3600, gap, maxgap = 0, maxgap_at = 0, last, t0, next_report;
	double wgap = 0, wgap_at = 0;
	unsigned long long ops = 0, ioerr = 0, bad = 0;
	uint32_t *gens, *wbuf, *rbuf, *expect;
	int opt, fd;

	while ((opt = getopt(argc, argv, "d:n:t:")) != -1) {
		switch (opt) {
		case 'd': dev = optarg; break;
		case 'n': nblocks = strtoul(optarg, NULL, 0); break;
		case 't': max_s = atof(optarg); break;
		default:
			fprintf(stderr, "usage: blkverify [-d DEV] [-n BLOCKS] [-t S]\n");
			return 2;
		}
	}
	fd = open(dev, O_RDWR | O_DIRECT | O_SYNC);
	if (fd < 0) {
		printf("FDH-BLK: open %s: %s\n", dev, strerror(errno));
		return 1;
	}
	gens = calloc(nblocks, sizeof(*gens));
	if (!gens || posix_memalign((void **)&wbuf, BS, BS) ||
	    posix_memalign((void **)&rbuf, BS, BS) ||
	    posix_memalign((void **)&expect, BS, BS))
		return 1;
	printf("FDH-BLK: started dev=%s blocks=%u\n", dev, nblocks);
	fflush(stdout);

	t0 = last = now();
	next_report = t0 + 1;
	for (uint64_t it = 0; now() - t0 < max_s; it++) {
		uint32_t b = it % nblocks;
		off_t off = (off_t)b * BS;
		double t;

		/* 1. what we wrote last time must still be there */
		if (gens[b]) {
			if (pread(fd, rbuf, BS, off) != BS) {
				ioerr++;
			} else {
				fill(expect, b, gens[b]);
				if (memcmp(rbuf, expect, BS)) {
					bad++;
					printf("FDH-BLK: BAD old block %u gen %u\n", b, gens[b]);
				}
			}
			ops++;
		}
		/* 2. write a new generation and read it back */
		fill(wbuf, b, gens[b] + 1);
		if (pwrite(fd, wbuf, BS, off) != BS) {
			ioerr++;
			printf("FDH-BLK: write error block %u: %s\n", b, strerror(errno));
		} else {
			gens[b]++;
		}
		ops++;
		if (pread(fd, rbuf, BS, off) != BS) {
			ioerr++;
		} else if (memcmp(rbuf, wbuf, BS)) {
			bad++;
			printf("FDH-BLK: BAD new block %u gen %u\n", b, gens[b]);
		}
		ops++;

		t = now();
		gap = t - last;
		if (gap > maxgap) {
			maxgap = gap;
			maxgap_at = t;
		}
		if (gap > wgap) {
			wgap = gap;
			wgap_at = t;
		}
		if (gap * 1e3 >= GAP_MS) {
			printf("FDH-BLK: gap_ms=%.1f end=%.3f\n", gap * 1e3, t);
			fflush(stdout);
		}
		last = t;
		if (t >= next_report) {
			printf("FDH-BLK: ops=%llu ioerr=%llu bad=%llu maxgap_ms=%.1f at=%.3f "
			       "wgap_ms=%.1f wgap_end=%.3f now=%.3f\n",
			       ops, ioerr, bad, maxgap * 1e3, maxgap_at,
			       wgap * 1e3, wgap_at, t);
			fflush(stdout);
			wgap = 0;
			next_report = t + 1;
		}
	}
	printf("FDH-BLK: done ops=%llu ioerr=%llu bad=%llu maxgap_ms=%.1f\n",
	       ops, ioerr, bad, maxgap * 1e3);
	return ioerr || bad;
}
