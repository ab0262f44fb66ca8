/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * verifyloop.h -- the write / read-verify loop that blkverify (a block
 * device, O_DIRECT) and fsverify (a file on virtio-fs) share, so the block
 * format, the checks and the gap accounting are written once.
 *
 * Block i of generation g is one BS-byte block: a header (magic, i, g) and a
 * pattern derived from them.  vl_step() first re-reads and verifies what the
 * previous generation left (if any), then writes the next one (fsync'ed when
 * asked) and reads it back; vl_tick() does the gap accounting that the
 * programs' "PREFIX: ops=... maxgap_ms=..." lines report (times are guest
 * CLOCK_MONOTONIC seconds).  Header only: both programs stay one static .c.
 */
#ifndef VERIFYLOOP_H
#define VERIFYLOOP_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BS 4096
#define GAP_MS 25	/* report every gap this long */

struct vloop {
	const char *tag;	/* "FDH-BLK", "FDH-FS": the prefix of every line */
	uint32_t magic;
	uint32_t *gens;		/* generation last written per block (0: none) */
	uint32_t *wbuf, *rbuf, *expect;	/* BS bytes each, aligned as the fd needs */
	unsigned long long ops, ioerr, bad;
	double last, maxgap, maxgap_at, wgap, wgap_at;
};

static inline double vl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void vl_fill(const struct vloop *v, uint32_t *p, uint32_t block, uint32_t gen)
{
	uint32_t x = block * 2654435761u ^ gen * 40503u;

	p[0] = v->magic;
	p[1] = block;
	p[2] = gen;
	for (size_t i = 3; i < BS / 4; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = x;
	}
}

/* One iteration on block b of fd; sync: fsync after the write. */
static inline void vl_step(struct vloop *v, int fd, uint32_t b, int sync)
{
	off_t off = (off_t)b * BS;

	/* 1. what we wrote last time must still be there */
	if (v->gens[b]) {
		if (pread(fd, v->rbuf, BS, off) != BS) {
			v->ioerr++;
		} else {
			vl_fill(v, v->expect, b, v->gens[b]);
			if (memcmp(v->rbuf, v->expect, BS)) {
				v->bad++;
				printf("%s: BAD old block %u gen %u\n", v->tag, b, v->gens[b]);
			}
		}
		v->ops++;
	}
	/* 2. write a new generation and read it back */
	vl_fill(v, v->wbuf, b, v->gens[b] + 1);
	if (pwrite(fd, v->wbuf, BS, off) != BS || (sync && fsync(fd))) {
		v->ioerr++;
		printf("%s: write error block %u: %s\n", v->tag, b, strerror(errno));
	} else {
		v->gens[b]++;
	}
	v->ops++;
	if (pread(fd, v->rbuf, BS, off) != BS) {
		v->ioerr++;
	} else if (memcmp(v->rbuf, v->wbuf, BS)) {
		v->bad++;
		printf("%s: BAD new block %u gen %u\n", v->tag, b, v->gens[b]);
	}
	v->ops++;
}

/* Gap accounting after an iteration that ended at t; prints every gap >= GAP_MS. */
static inline void vl_tick(struct vloop *v, double t)
{
	double gap = t - v->last;

	if (gap > v->maxgap) {
		v->maxgap = gap;
		v->maxgap_at = t;
	}
	if (gap > v->wgap) {
		v->wgap = gap;
		v->wgap_at = t;
	}
	if (gap * 1e3 >= GAP_MS) {
		printf("%s: gap_ms=%.1f end=%.3f\n", v->tag, gap * 1e3, t);
		fflush(stdout);
	}
	v->last = t;
}

/* The once-a-second line's common part, without its newline. */
static inline void vl_report(const struct vloop *v, double t)
{
	printf("%s: ops=%llu ioerr=%llu bad=%llu maxgap_ms=%.1f at=%.3f "
	       "wgap_ms=%.1f wgap_end=%.3f now=%.3f",
	       v->tag, v->ops, v->ioerr, v->bad, v->maxgap * 1e3, v->maxgap_at,
	       v->wgap * 1e3, v->wgap_at, t);
}

static inline int vl_done(const struct vloop *v)
{
	printf("%s: done ops=%llu ioerr=%llu bad=%llu maxgap_ms=%.1f\n",
	       v->tag, v->ops, v->ioerr, v->bad, v->maxgap * 1e3);
	return v->ioerr || v->bad;
}

#endif
