/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kinds of fd, one table (lib/kind.c): everything libfdhandover knows
 * about a kind is an entry there and the functions it points to.  The
 * rest of the library asks the table and never switches on a kind.
 * Internal: never installed.
 */
#ifndef FDH_KIND_H
#define FDH_KIND_H

#include <stdbool.h>
#include <sys/stat.h>

#include "fdhandover.h"

/*
 * The kinds with fields of their own in a manifest entry, in the order of
 * the maybes at the end of an entry on the wire (lib/manifest.c encodes,
 * decodes and validates each): that order is the wire format.
 */
enum fdh_detail {
	FDH_DETAIL_NONE = -1,
	FDH_DETAIL_TAP,
	FDH_DETAIL_MEMFD,
	FDH_DETAIL_EVENTFD,
	FDH_DETAIL_VHOST_USER,
	FDH_DETAIL__MAX
};

/* What one fd of a live process looks like from /proc (lib/inspect.c). */
struct fdh_probe_ctx {
	pid_t pid;
	int fd;
	unsigned int flags;		/* enum fdh_inspect_flags */
	const struct stat *st;		/* all zero if stat failed */
	const char *target;		/* the /proc/PID/fd/N link, untruncated */
	const char *fdinfo;		/* /proc/PID/fdinfo/N */
};

struct fdh_kind_ops {
	/* fdh_kind_name(): part of the JSON and text formats. */
	const char *name;

	/* Inspect: the kind's exact link target, if it has one; otherwise
	 * (or also) a test on what /proc shows (NULL: link only, and
	 * neither: never found by inspecting, e.g. vhost-user, which only a
	 * caller that knows the protocol names). */
	const char *link;
	bool (*probe)(const struct fdh_probe_ctx *c);
	/* The kind's own details.  What cannot be read stays unknown: it is
	 * not an error, the generic fields are still right.  NULL: none. */
	void (*fill)(const struct fdh_probe_ctx *c, struct fdh_fd_info *info);

	/* Identity (struct fdh_identity): beyond dev, ino and file type,
	 * which fields the kind's identity compares (FDH_IDENTITY_KIND_ID,
	 * FDH_IDENTITY_NAME); the kind a local fd of this kind reads as
	 * (a vhost-user socket is a unix socket to the kernel); whether the
	 * identity names one open file and no other (so that fdh_pull can
	 * skip kcmp); whether reading it costs an fdinfo read. */
	unsigned int compares;
	enum fdh_kind carrier;
	bool pins_file;
	bool id_reads_fdinfo;
	/* Read the kind's own key of a local fd into id (fdinfo_dir: an fd
	 * of /proc/self/fdinfo, or -1); 0 or -errno, which only a kind whose
	 * key proves the kind returns (id_name names the key in messages).
	 * NULL: nothing to read. */
	const char *id_name;
	int (*read_id)(int fdinfo_dir, int fd, const struct stat *st,
		       struct fdh_identity *id);
	/* The same key from what inspecting showed, and from a manifest
	 * entry.  NULL: none. */
	void (*id_from_info)(const struct fdh_fd_info *info,
			     struct fdh_identity *id);
	void (*id_from_entry)(const struct fdh_manifest_entry *e,
			      struct fdh_identity *id);

	/* Manifest: the entry's detail section, and how inspecting fills it
	 * (NULL: nothing to fill). */
	enum fdh_detail detail;
	void (*entry_from_info)(const struct fdh_fd_info *info,
				struct fdh_manifest_entry *e);
};

/* The entry of kind; for a kind out of range, one that knows nothing
 * (name NULL, compares nothing, no detail).  Never NULL. */
const struct fdh_kind_ops *fdh_kind_ops(uint32_t kind);

/* Inspect: the first kind whose link or probe matches, its details
 * filled in; FDH_KIND_OTHER with none. */
void fdh_kind_classify(const struct fdh_probe_ctx *c, struct fdh_fd_info *info);

/* The kind of a local fd (fstat'ed as st), by the kernel's answers only:
 * what fdh_identity_of_fd() records. */
enum fdh_kind fdh_kind_of_local_fd(int fd, const struct stat *st);

#endif /* FDH_KIND_H */
