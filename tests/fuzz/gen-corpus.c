// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Write the fuzzer's seed corpus: a few small, valid manifests that
 * between them hold every kind, an inflight region and devices with rings.
 * Entries are made the way a real caller makes them, from struct
 * fdh_fd_info through fdh_manifest_entry_from_info().
 *
 *	gen-corpus tests/fuzz/corpus
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "fdhandover.h"

/*
 * A seed: its entries as "kind:owner:index" words (kinds by name), and
 * the device, if any, with its number of rings.
 */
static const struct seed {
	const char *file;
	const char *entries;
	const char *device;
	uint32_t n_vrings;
} seeds[] = {
	{ "empty.fdhm", "", NULL, 0 },
	{ "vm-net.fdhm", "memfd:ram0:0 tap:net0:0 tap:net0:1 "
	  "vhost-net:net0-vhost:0 eventfd:net0-kick:0 eventfd:net0-call:0",
	  "net0", 2 },
	{ "vhost-user.fdhm", "vhost-user:vu-blk0:0 memfd:vu-blk0-inflight:0",
	  "vu-blk0", 4 },
	{ "misc-kinds.fdhm", "other:misc:0 unix:misc:1 pidfd:misc:2 "
	  "epoll:misc:3 pipe:misc:4 file:misc:5 socket:misc:6", NULL, 0 },
};

/* What fdh_inspect_fd() would say about such an fd. */
static void info_for(int kind, const char *owner, int fd,
		     struct fdh_fd_info *info)
{
	memset(info, 0, sizeof(*info));
	info->fd = fd;
	info->kind = kind;
	info->dev = makedev(0, 20 + kind);
	info->ino = 40000 + (uint64_t)fd;
	info->mode = S_IFREG | 0600;
	info->flags = O_RDWR | O_CLOEXEC;
	if (kind == FDH_KIND_MEMFD) {
		snprintf(info->u.memfd.name, sizeof(info->u.memfd.name),
			 "%s", owner);
		info->u.memfd.size = 2ull << 20;
	} else if (kind == FDH_KIND_TAP) {
		info->mode = S_IFCHR | 0666;
		snprintf(info->u.tap.ifname, sizeof(info->u.tap.ifname),
			 "tap-%s", owner);
		info->u.tap.iff_flags = 0x5002;
		info->u.tap.vnet_hdr_sz = 12;
		info->u.tap.details_known = true;
	} else if (kind == FDH_KIND_EVENTFD) {
		info->u.eventfd.id = (uint64_t)fd;
	}
}

/* One "kind:owner:index" word; returns the rest of the list or NULL. */
static const char *add_word(struct fdh_manifest *m, const char *p, int fd,
			    int *ret)
{
	struct fdh_manifest_entry e;
	struct fdh_fd_info info;
	char kind[32], owner[FDH_OWNER_MAX];
	unsigned int index;
	int used = 0, k, n;

	n = sscanf(p, " %31[^:]:%63[^:]:%u%n", kind, owner, &index, &used);
	if (n != 3)
		*ret = n == EOF ? 0 : -EINVAL;
	if (n != 3)
		return NULL;
	k = fdh_kind_from_name(kind);
	*ret = k < 0 ? k : 0;
	if (k < 0)
		return NULL;
	info_for(k, owner, fd, &info);
	fdh_manifest_entry_from_info(&info, owner, index, &e);
	if (k == FDH_KIND_TAP)
		e.u.tap.queue = index;
	if (k == FDH_KIND_VHOST_USER) {
		/* One queue of 128 in a 4 KiB inflight region. */
		e.u.vhost_user.inflight_size = 4096;
		e.u.vhost_user.inflight_queue_size = 128;
		e.u.vhost_user.inflight_num_queues = 1;
		e.u.vhost_user.protocol_features = 0x8000;
	}
	*ret = fdh_manifest_add_entry(m, &e);
	return p + used;
}

static int build(const struct seed *seed, struct fdh_manifest *m)
{
	struct fdh_manifest_device d = { .acked_features = 0x130000000ull };
	const char *p = seed->entries;
	int r = 0;

	m->source = (struct fdh_manifest_source){
		.pid = 4121, .start_time = 123456, .uid = 1000,
		.boot_id = "6b1c3c5e-2f0d-4c3a-9e55-0d6f0a1b2c3d",
		.comm = "qemu-system-x86",
	};
	for (int fd = 30; p && r == 0; fd++)
		p = add_word(m, p, fd, &r);
	if (r < 0 || !seed->device)
		return r;
	snprintf(d.owner, sizeof(d.owner), "%s", seed->device);
	d.n_vrings = seed->n_vrings;
	for (uint32_t i = 0; i < d.n_vrings; i++) {
		struct fdh_vring *v = &d.vrings[i];

		v->index = i;
		v->size = 256;
		v->desc = 0x100000ull * (i + 1);
		v->avail = v->desc + 0x1000;
		v->used = v->desc + 0x2000;
		v->last_avail_idx = v->used_idx = (uint16_t)(7 * i);
	}
	return fdh_manifest_add_device(m, &d);
}

static int write_seed(const char *dir, const struct seed *seed)
{
	struct fdh_manifest *m = fdh_manifest_new();
	char path[4096];
	void *buf = NULL;
	size_t len = 0;
	FILE *f;
	int r;

	if (!m)
		return -ENOMEM;
	r = build(seed, m);
	if (r == 0)
		r = fdh_manifest_encode(m, &buf, &len);
	fdh_manifest_free(m);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/%s", dir, seed->file);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len)
		r = -errno;
	if (f && fclose(f) != 0)
		r = -errno;
	free(buf);
	return r;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		int r = write_seed(argv[1], &seeds[i]);

		if (r < 0) {
			fprintf(stderr, "%s: %s: %s\n", seeds[i].file,
				strerror(-r), fdh_last_error()->msg);
			return 1;
		}
	}
	return 0;
}
