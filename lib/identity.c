// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Identity of a local fd, and comparison with an expected identity.
 *
 * dev/ino is not enough: every eventfd has the same anonymous inode and
 * every TAP queue is /dev/net/tun, so each kind adds its own key (see
 * struct fdh_identity); which one, and how it is read, the kind table says
 * (lib/kind.c).  This file is on the pull's hot path: it asks the kernel
 * only what the kind needs.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fdh-internal.h"
#include "kind.h"

int fdh_identity_of_fd(int fd, struct fdh_identity *ret_identity)
{
	const struct fdh_kind_ops *k;
	struct fdh_identity id = { 0 };
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return fdh_fail(-errno, -1, "fstat(fd %d): %m", fd);
	id.kind = fdh_kind_of_local_fd(fd, &st);
	id.dev = st.st_dev;
	id.ino = st.st_ino;
	id.mode = st.st_mode;
	k = fdh_kind_ops(id.kind);
	if (k->read_id) {
		r = k->read_id(-1, fd, &st, &id);
		if (r < 0)
			return fdh_fail(r, -1, "fdinfo of %s %d: no %s (%s)",
					k->name, fd, k->id_name, strerror(-r));
	}
	*ret_identity = id;
	return 0;
}

unsigned int fdh_identity_diff(const struct fdh_identity *expect,
			       const struct fdh_identity *got)
{
	const struct fdh_kind_ops *k = fdh_kind_ops(expect->kind);
	unsigned int diff = 0;

	/* An expected "other" says nothing of the kind; a kind that the
	 * kernel shows as its carrier (a vhost-user socket is a unix
	 * socket) matches the carrier. */
	if (expect->kind != got->kind && expect->kind != FDH_KIND_OTHER &&
	    !(k->carrier && got->kind == (uint32_t)k->carrier))
		diff |= FDH_IDENTITY_KIND;
	if (expect->dev != got->dev)
		diff |= FDH_IDENTITY_DEV;
	if (expect->ino != got->ino)
		diff |= FDH_IDENTITY_INO;
	if ((expect->mode & S_IFMT) != (got->mode & S_IFMT))
		diff |= FDH_IDENTITY_TYPE;
	/* eventfd-id 0 is a real id (the first eventfd after boot). */
	if ((k->compares & FDH_IDENTITY_KIND_ID) &&
	    expect->kind_id != got->kind_id)
		diff |= FDH_IDENTITY_KIND_ID;
	if ((k->compares & FDH_IDENTITY_NAME) && expect->name[0] &&
	    strncmp(expect->name, got->name, sizeof(expect->name)) != 0)
		diff |= FDH_IDENTITY_NAME;
	return diff;
}

int fdh_identity_compare(const struct fdh_identity *expect,
			 const struct fdh_identity *got, char *why,
			 size_t why_size)
{
	unsigned int diff = fdh_identity_diff(expect, got);

	/* The first difference, in the order that reads best. */
	if (diff & (FDH_IDENTITY_DEV | FDH_IDENTITY_INO))
		snprintf(why, why_size,
			 "dev/ino %llu:%llu, expected %llu:%llu",
			 (unsigned long long)got->dev,
			 (unsigned long long)got->ino,
			 (unsigned long long)expect->dev,
			 (unsigned long long)expect->ino);
	else if (diff & FDH_IDENTITY_TYPE)
		snprintf(why, why_size, "file type 0%o, expected 0%o",
			 got->mode & S_IFMT, expect->mode & S_IFMT);
	else if (diff & FDH_IDENTITY_KIND)
		snprintf(why, why_size, "kind %s, expected %s",
			 fdh_kind_name(got->kind) ?: "?",
			 fdh_kind_name(expect->kind) ?: "?");
	else if (diff & FDH_IDENTITY_KIND_ID)
		snprintf(why, why_size, "%s id %llu, expected %llu",
			 fdh_kind_name(expect->kind),
			 (unsigned long long)got->kind_id,
			 (unsigned long long)expect->kind_id);
	else if (diff & FDH_IDENTITY_NAME)
		snprintf(why, why_size, "TAP interface '%s', expected '%s'",
			 got->name, expect->name);
	return diff ? -ESTALE : 0;
}

int fdh_identity_check_fd(int fdinfo_dir, int fd,
			  const struct fdh_identity *expect, char *why,
			  size_t why_size)
{
	const struct fdh_kind_ops *k = fdh_kind_ops(expect->kind);
	struct fdh_identity got = { .kind = expect->kind };
	struct stat st;

	if (fstat(fd, &st) < 0) {
		snprintf(why, why_size, "fstat: %s", strerror(errno));
		return -errno;
	}
	got.dev = st.st_dev;
	got.ino = st.st_ino;
	got.mode = st.st_mode;
	/* Only what the expected kind needs: a readable eventfd-id proves an
	 * eventfd, a TUNGETIFF answer proves a TAP. */
	if (k->read_id && k->read_id(fdinfo_dir, fd, &st, &got) < 0) {
		snprintf(why, why_size, "not a%s %s (no %s)",
			 strchr("aeiou", k->name[0]) ? "n" : "", k->name,
			 k->id_name);
		return -ESTALE;
	}
	return fdh_identity_compare(expect, &got, why, why_size);
}
