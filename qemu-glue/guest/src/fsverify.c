/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsverify -- guest side of the virtio-fs handover test.
 *
 *   fsverify [-d DIR] [-n BLOCKS] [-t SECONDS]
 *
 * On a virtio-fs mount DIR: first creates DIR/before (one 4 KiB block,
 * generation 1, fsync'ed) and keeps it open; then runs a write / fsync /
 * read-verify loop on the first BLOCKS 4 KiB blocks of DIR/loop, through
 * one fd that stays open: block i is written with a header (magic, block
 * number, generation) and a pattern derived from them, fsync'ed, read back
 * and compared; every block's previous contents are read and verified
 * before it is overwritten.  Once a second it reads DIR/before again by
 * its first fd and verifies it, and prints
 *
 *   FDH-FS: ops=N ioerr=E bad=B maxgap_ms=G at=T wgap_ms=W wgap_end=U now=V
 *           before_ok=K before_bad=L ino=I
 *
 * (on one line; the times as blkverify.c's: guest CLOCK_MONOTONIC s;
 * ino: DIR/before's inode number by fstat of the first fd) and after every
 * gap of GAP_MS or more "FDH-FS: gap_ms=G end=T".  Exits after SECONDS.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "verifyloop.h"

#define MAGIC 0x46444846u /* "FDHF" */

static int open_in(const char *dir, const char *name, int flags)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return open(path, flags, 0644);
}

int main(int argc, char **argv)
{
	const char *dir = "/mnt";
	uint32_t nblocks = 64;
	double max_s = 3600, t0, next_report;
	unsigned long long before_ok = 0, before_bad = 0;
	static uint32_t wbuf[BS / 4], rbuf[BS / 4], expect[BS / 4];
	struct vloop v = { .tag = "FDH-FS", .magic = MAGIC,
			   .wbuf = wbuf, .rbuf = rbuf, .expect = expect };
	struct stat st;
	int opt, fd, bfd;

	while ((opt = getopt(argc, argv, "d:n:t:")) != -1) {
		switch (opt) {
		case 'd': dir = optarg; break;
		case 'n': nblocks = strtoul(optarg, NULL, 0); break;
		case 't': max_s = atof(optarg); break;
		default:
			fprintf(stderr, "usage: fsverify [-d DIR] [-n BLOCKS] [-t S]\n");
			return 2;
		}
	}
	v.gens = calloc(nblocks, sizeof(*v.gens));
	if (!v.gens)
		return 1;
	bfd = open_in(dir, "before", O_RDWR | O_CREAT | O_TRUNC);
	fd = open_in(dir, "loop", O_RDWR | O_CREAT | O_TRUNC);
	if (bfd < 0 || fd < 0) {
		printf("FDH-FS: open in %s: %s\n", dir, strerror(errno));
		return 1;
	}
	vl_fill(&v, wbuf, 0, 1);
	if (pwrite(bfd, wbuf, BS, 0) != BS || fsync(bfd) || fstat(bfd, &st)) {
		printf("FDH-FS: writing %s/before: %s\n", dir, strerror(errno));
		return 1;
	}
	printf("FDH-FS: started dir=%s blocks=%u before_ino=%llu\n", dir, nblocks,
	       (unsigned long long)st.st_ino);
	fflush(stdout);

	t0 = v.last = vl_now();
	next_report = t0 + 1;
	for (uint64_t it = 0; vl_now() - t0 < max_s; it++) {
		double t;

		vl_step(&v, fd, it % nblocks, 1);
		t = vl_now();
		vl_tick(&v, t);
		if (t >= next_report) {
			/* the file made first, by the fd that has stayed open */
			vl_fill(&v, expect, 0, 1);
			if (pread(bfd, rbuf, BS, 0) == BS && !memcmp(rbuf, expect, BS)) {
				before_ok++;
			} else {
				before_bad++;
				printf("FDH-FS: BAD before: %s\n", strerror(errno));
			}
			if (fstat(bfd, &st))
				st.st_ino = 0;
			vl_report(&v, t);
			printf(" before_ok=%llu before_bad=%llu ino=%llu\n",
			       before_ok, before_bad, (unsigned long long)st.st_ino);
			fflush(stdout);
			v.wgap = 0;
			next_report = t + 1;
		}
	}
	return vl_done(&v);
}
