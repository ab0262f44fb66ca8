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
#include <fcntl.h>
#include <stdlib.h>

#include "verifyloop.h"

#define MAGIC 0x46444842u /* "FDHB" */

int main(int argc, char **argv)
{
	const char *dev = "/dev/vda";
	uint32_t nblocks = 2048;
	double max_s = 3600, t0, next_report;
	struct vloop v = { .tag = "FDH-BLK", .magic = MAGIC };
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
	v.gens = calloc(nblocks, sizeof(*v.gens));
	if (!v.gens || posix_memalign((void **)&v.wbuf, BS, BS) ||
	    posix_memalign((void **)&v.rbuf, BS, BS) ||
	    posix_memalign((void **)&v.expect, BS, BS))
		return 1;
	printf("FDH-BLK: started dev=%s blocks=%u\n", dev, nblocks);
	fflush(stdout);

	t0 = v.last = vl_now();
	next_report = t0 + 1;
	for (uint64_t it = 0; vl_now() - t0 < max_s; it++) {
		double t;

		vl_step(&v, fd, it % nblocks, 0);
		t = vl_now();
		vl_tick(&v, t);
		if (t >= next_report) {
			vl_report(&v, t);
			printf("\n");
			fflush(stdout);
			v.wgap = 0;
			next_report = t + 1;
		}
	}
	return vl_done(&v);
}
