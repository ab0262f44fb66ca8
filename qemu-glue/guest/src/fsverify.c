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
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BS 4096
#define GAP_MS 25
#define MAGIC 0x46444846u /* "FDHF" */

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
	double max_s = 3600, gap, maxgap = 0, maxgap_at = 0, last, t0, next_report;
	double wgap = 0, wgap_at = 0;
	unsigned long long ops = 0, ioerr = 0, bad = 0, before_ok = 0, before_bad = 0;
	static uint32_t wbuf[BS / 4], rbuf[BS / 4], expect[BS / 4];
	uint32_t *gens;
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
	gens = calloc(nblocks, sizeof(*gens));
	if (!gens)
		return 1;
	bfd = open_in(dir, "before", O_RDWR | O_CREAT | O_TRUNC);
	fd = open_in(dir, "loop", O_RDWR | O_CREAT | O_TRUNC);
	if (bfd < 0 || fd < 0) {
		printf("FDH-FS: open in %s: %s\n", dir, strerror(errno));
		return 1;
	}
	fill(wbuf, 0, 1);
	if (pwrite(bfd, wbuf, BS, 0) != BS || fsync(bfd) || fstat(bfd, &st)) {
		printf("FDH-FS: writing %s/before: %s\n", dir, strerror(errno));
		return 1;
	}
	printf("FDH-FS: started dir=%s blocks=%u before_ino=%llu\n", dir, nblocks,
	       (unsigned long long)st.st_ino);
	fflush(stdout);

	t0 = last = now();
	next_report = t0 + 1;
	for (uint64_t it = 0; now() - t0 < max_s; it++) {
		uint32_t b = it % nblocks;
		off_t off = (off_t)b * BS;
		double t;

		if (gens[b]) {
			if (pread(fd, rbuf, BS, off) != BS) {
				ioerr++;
			} else {
				fill(expect, b, gens[b]);
				if (memcmp(rbuf, expect, BS)) {
					bad++;
					printf("FDH-FS: BAD old block %u gen %u\n", b, gens[b]);
				}
			}
			ops++;
		}
		fill(wbuf, b, gens[b] + 1);
		if (pwrite(fd, wbuf, BS, off) != BS || fsync(fd)) {
			ioerr++;
			printf("FDH-FS: write error block %u: %s\n", b, strerror(errno));
		} else {
			gens[b]++;
		}
		ops++;
		if (pread(fd, rbuf, BS, off) != BS) {
			ioerr++;
		} else if (memcmp(rbuf, wbuf, BS)) {
			bad++;
			printf("FDH-FS: BAD new block %u gen %u\n", b, gens[b]);
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
			printf("FDH-FS: gap_ms=%.1f end=%.3f\n", gap * 1e3, t);
			fflush(stdout);
		}
		last = t;
		if (t >= next_report) {
			/* the file made first, by the fd that has stayed open */
			fill(expect, 0, 1);
			if (pread(bfd, rbuf, BS, 0) == BS && !memcmp(rbuf, expect, BS)) {
				before_ok++;
			} else {
				before_bad++;
				printf("FDH-FS: BAD before: %s\n", strerror(errno));
			}
			if (fstat(bfd, &st))
				st.st_ino = 0;
			printf("FDH-FS: ops=%llu ioerr=%llu bad=%llu maxgap_ms=%.1f at=%.3f "
			       "wgap_ms=%.1f wgap_end=%.3f now=%.3f before_ok=%llu "
			       "before_bad=%llu ino=%llu\n",
			       ops, ioerr, bad, maxgap * 1e3, maxgap_at,
			       wgap * 1e3, wgap_at, t, before_ok, before_bad,
			       (unsigned long long)st.st_ino);
			fflush(stdout);
			wgap = 0;
			next_report = t + 1;
		}
	}
	printf("FDH-FS: done ops=%llu ioerr=%llu bad=%llu maxgap_ms=%.1f\n",
	       ops, ioerr, bad, maxgap * 1e3);
	return ioerr || bad;
}
