// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The handover manifest: building, validating, and the wire form.
 *
 * Wire form (Documentation/manifest.md): "FDHM", u32 LE version, then one
 * GVariant of MANIFEST_TYPE in normal form, little-endian.  Decoding
 * trusts nothing: lengths and counts are bounded before anything is
 * allocated, the GVariant must be in normal form (so one manifest has
 * exactly one encoding), and the result is validated completely before
 * it is returned.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <glib.h>

#include "fdh-internal.h"
#include "kind.h"
#include "manifest-internal.h"

/*
 * source  (pid, start_time, boot_id, uid, comm)
 * entry   (owner, index, kind, remote_fd, dev, ino, mode, open_flags,
 *          kind_id, tap?, memfd?, eventfd?, vhost_user?)
 * device  (owner, acked_features, vrings)
 * vring   (index, size, desc, avail, used, last_avail_idx, used_idx)
 *
 * Strings are "ay" without a terminator: comm, memfd names and interface
 * names are bytes to the kernel, not necessarily UTF-8, which "s" needs.
 */
#define SOURCE_TYPE "(itayuay)"
#define TAP_TYPE "(ayuuiu)"
#define MEMFD_TYPE "(aytu)"
#define EVENTFD_TYPE "b"
#define VHOST_USER_TYPE "(ttqqt)"
#define ENTRY_TYPE							\
	"(ayuuittuutm" TAP_TYPE "m" MEMFD_TYPE "m" EVENTFD_TYPE		\
	"m" VHOST_USER_TYPE ")"
#define VRING_TYPE "(uutttqq)"
#define DEVICE_TYPE "(ayta" VRING_TYPE ")"
#define MANIFEST_TYPE "(" SOURCE_TYPE "a" ENTRY_TYPE "a" DEVICE_TYPE ")"

#define HEADER_LEN 8		/* magic + version */
#define UUID_LEN 36
#define TAP_QUEUES_MAX 256	/* the kernel's MAX_TAP_QUEUES */
#define VNET_HDR_MIN 10		/* sizeof(struct virtio_net_hdr) */
#define VRING_SIZE_MAX 32768	/* virtio's largest split ring */

#define ENTRY_FIRST_DETAIL 9	/* child index of the tap maybe */

struct where;

/*
 * The detail sections of an entry (enum fdh_detail, lib/kind.h): exactly
 * the one of the entry's kind (the kind table says which) is present.
 * Each is encoded, decoded and validated by its own functions, below.
 */
struct detail_ops {
	const char *name;
	const char *type;
	GVariant *(*encode)(const struct fdh_manifest_entry *e);
	int (*decode)(const struct where *w, GVariant *v,
		      struct fdh_manifest_entry *e);
	/* NULL: nothing to check beyond the wire type. */
	int (*validate)(const struct where *w,
			const struct fdh_manifest_entry *e);
};

static const struct detail_ops details[FDH_DETAIL__MAX];

/* ------------------------------------------------------------------ */
/* Naming the failing field                                           */

/*
 * Where a check runs: the errno to report (-EINVAL when validating what a
 * caller built, -EBADMSG when decoding), the entry index for
 * fdh_last_error()->entry, and the path that prefixes every message.
 */
struct where {
	int code;
	int entry;
	char path[48];		/* "entries[3]", "devices[1].vrings[2]" */
};

static void where_init(struct where *w, int code, int entry,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void where_init(struct where *w, int code, int entry,
		       const char *fmt, ...)
{
	va_list ap;

	w->code = code;
	w->entry = entry;
	va_start(ap, fmt);
	vsnprintf(w->path, sizeof(w->path), fmt, ap);
	va_end(ap);
}

/*
 * "entries[3].tap.ifname: not NUL-terminated within 16 bytes".  Messages
 * never quote the manifest's own strings: they come from the source
 * process and may hold terminal escapes.
 */
static int bad(const struct where *w, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(const struct where *w, const char *field, const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return fdh_fail(w->code, w->entry, "%s%s%s: %s", w->path,
			w->path[0] && field[0] ? "." : "", field, detail);
}

/* ------------------------------------------------------------------ */
/* Validation                                                         */

static int check_string(const struct where *w, const char *field,
			const char *s, size_t size, bool nonempty)
{
	if (!memchr(s, '\0', size))
		return bad(w, field, "not NUL-terminated within %zu bytes",
			   size);
	if (nonempty && !s[0])
		return bad(w, field, "empty");
	return 0;
}

static bool is_power_of_two(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* The kernel writes boot_id as 8-4-4-4-12 lowercase hex digits. */
static bool is_uuid(const char *s)
{
	for (int i = 0; i < UUID_LEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		bool hex = (s[i] >= '0' && s[i] <= '9') ||
			   (s[i] >= 'a' && s[i] <= 'f');

		if (dash ? s[i] != '-' : !hex)
			return false;
	}
	return s[UUID_LEN] == '\0';
}

static int validate_source(const struct fdh_manifest_source *src, int code)
{
	struct where w;
	int r;

	where_init(&w, code, -1, "source");
	if (src->pid <= 0)
		return bad(&w, "pid", "%" PRId32 " is not a process id",
			   src->pid);
	/* Without it nothing tells the manifest's process from the next one
	 * to get its pid. */
	if (src->start_time == 0)
		return bad(&w, "start_time",
			   "0; the source's start time (/proc/PID/stat field 22) pins its pid and is required");
	r = check_string(&w, "boot_id", src->boot_id, sizeof(src->boot_id),
			 false);
	if (r < 0)
		return r;
	if (!is_uuid(src->boot_id))
		return bad(&w, "boot_id",
			   "not a 36-character lowercase UUID");
	if (src->uid == UINT32_MAX)
		return bad(&w, "uid", "4294967295 is not a uid");
	return check_string(&w, "comm", src->comm, sizeof(src->comm), false);
}

static int validate_tap(const struct where *w,
			const struct fdh_manifest_entry *e)
{
	int r;

	r = check_string(w, "tap.ifname", e->u.tap.ifname,
			 sizeof(e->u.tap.ifname), true);
	if (r < 0)
		return r;
	if (e->u.tap.queue >= TAP_QUEUES_MAX)
		return bad(w, "tap.queue", "%" PRIu32 ", not below %d",
			   e->u.tap.queue, TAP_QUEUES_MAX);
	if (e->u.tap.vnet_hdr_sz != -1 &&
	    e->u.tap.vnet_hdr_sz < VNET_HDR_MIN)
		return bad(w, "tap.vnet_hdr_sz",
			   "%" PRId32 ", neither -1 (unknown) nor at least %d",
			   e->u.tap.vnet_hdr_sz, VNET_HDR_MIN);
	return 0;
}

static int validate_memfd(const struct where *w,
			  const struct fdh_manifest_entry *e)
{
	return check_string(w, "memfd.name", e->u.memfd.name,
			    sizeof(e->u.memfd.name), false);
}

static int validate_vhost_user(const struct where *w,
			       const struct fdh_manifest_entry *e)
{
	uint64_t size = e->u.vhost_user.inflight_size;
	uint64_t offset = e->u.vhost_user.inflight_offset;
	uint16_t qsize = e->u.vhost_user.inflight_queue_size;
	uint16_t nq = e->u.vhost_user.inflight_num_queues;

	if (!size) {
		/* No inflight region: its geometry must be empty too. */
		if (offset || qsize || nq)
			return bad(w, "vhost_user.inflight_size",
				   "0, but offset, queue size or queue count is set");
		return 0;
	}
	if (offset > UINT64_MAX - size)
		return bad(w, "vhost_user.inflight_offset",
			   "offset + size overflows 64 bits");
	if (!is_power_of_two(qsize) || qsize > VRING_SIZE_MAX)
		return bad(w, "vhost_user.inflight_queue_size",
			   "%u, not a power of two up to %d", qsize,
			   VRING_SIZE_MAX);
	if (!nq || nq > FDH_MANIFEST_MAX_VRINGS)
		return bad(w, "vhost_user.inflight_num_queues",
			   "%u, not between 1 and %d", nq,
			   FDH_MANIFEST_MAX_VRINGS);
	return 0;
}

/* One entry on its own; duplicates across entries are checked apart. */
static int validate_entry(const struct where *w,
			  const struct fdh_manifest_entry *e)
{
	enum fdh_detail d;
	int r;

	r = check_string(w, "owner", e->owner, sizeof(e->owner), true);
	if (r < 0)
		return r;
	if (e->kind >= FDH_KIND__MAX)
		return bad(w, "kind", "unknown kind %" PRIu32, e->kind);
	if (e->remote_fd < 0)
		return bad(w, "remote_fd", "%" PRId32 " is negative",
			   e->remote_fd);
	if (e->mode & ~(uint32_t)(S_IFMT | 07777))
		return bad(w, "mode",
			   "0%" PRIo32 " has bits beyond S_IFMT and 07777",
			   e->mode);
	d = fdh_kind_ops(e->kind)->detail;
	if (d != FDH_DETAIL_NONE && details[d].validate)
		return details[d].validate(w, e);
	return 0;
}

/* An entry against the n before it: names and fd numbers are unique. */
static int validate_entry_unique(const struct where *w,
				 const struct fdh_manifest_entry *entries,
				 size_t n, const struct fdh_manifest_entry *e)
{
	for (size_t j = 0; j < n; j++) {
		if (entries[j].remote_fd == e->remote_fd)
			return bad(w, "remote_fd",
				   "fd %" PRId32 " is also entries[%zu]",
				   e->remote_fd, j);
		if (entries[j].index == e->index &&
		    strcmp(entries[j].owner, e->owner) == 0)
			return bad(w, "index",
				   "owner and index %" PRIu32 " are also entries[%zu]",
				   e->index, j);
	}
	return 0;
}

static int validate_vring(const struct where *w,
			  const struct fdh_manifest_device *d, uint32_t i)
{
	const struct fdh_vring *v = &d->vrings[i];

	if (v->index >= d->n_vrings)
		return bad(w, "index",
			   "%" PRIu32 ", not below n_vrings %" PRIu32,
			   v->index, d->n_vrings);
	if (!is_power_of_two(v->size) || v->size > VRING_SIZE_MAX)
		return bad(w, "size",
			   "%" PRIu32 ", not a power of two up to %d",
			   v->size, VRING_SIZE_MAX);
	for (uint32_t j = 0; j < i; j++)
		if (d->vrings[j].index == v->index)
			return bad(w, "index",
				   "%" PRIu32 " is also vrings[%" PRIu32 "]",
				   v->index, j);
	return 0;
}

static int validate_device(const struct where *w,
			   const struct fdh_manifest_device *d)
{
	struct where vw;
	int r;

	r = check_string(w, "owner", d->owner, sizeof(d->owner), true);
	if (r < 0)
		return r;
	if (d->n_vrings > FDH_MANIFEST_MAX_VRINGS)
		return bad(w, "n_vrings", "%" PRIu32 ", more than %d",
			   d->n_vrings, FDH_MANIFEST_MAX_VRINGS);
	for (uint32_t i = 0; i < d->n_vrings; i++) {
		where_init(&vw, w->code, -1, "%s.vrings[%" PRIu32 "]", w->path,
			   i);
		r = validate_vring(&vw, d, i);
		if (r < 0)
			return r;
	}
	return 0;
}

static int validate_device_unique(const struct where *w,
				  const struct fdh_manifest_device *devices,
				  size_t n, const struct fdh_manifest_device *d)
{
	for (size_t j = 0; j < n; j++)
		if (strcmp(devices[j].owner, d->owner) == 0)
			return bad(w, "owner", "also the owner of devices[%zu]",
				   j);
	return 0;
}

/*
 * The two arrays of a manifest, described once for validate, the add
 * functions and decode: check() judges elem as if appended to the n
 * elements of array.
 */
struct array_desc {
	const char *name;
	size_t max;
	size_t elem_size;
	size_t array_offset;	/* of the array pointer in fdh_manifest */
	size_t count_offset;	/* of its element count */
	bool is_entries;	/* failures name fdh_error.entry */
	int (*check)(const struct where *w, const void *array, size_t n,
		     const void *elem);
};

static int check_entry(const struct where *w, const void *array, size_t n,
		       const void *elem)
{
	int r = validate_entry(w, elem);

	return r < 0 ? r : validate_entry_unique(w, array, n, elem);
}

static int check_device(const struct where *w, const void *array, size_t n,
			const void *elem)
{
	int r = validate_device(w, elem);

	return r < 0 ? r : validate_device_unique(w, array, n, elem);
}

#define ARRAY_DESC(array, count, max_, check_, is_entries_) {		\
	.name = #array,							\
	.max = (max_),							\
	.elem_size = sizeof(*((struct fdh_manifest *)NULL)->array),	\
	.array_offset = offsetof(struct fdh_manifest, array),		\
	.count_offset = offsetof(struct fdh_manifest, count),		\
	.is_entries = (is_entries_),					\
	.check = (check_),						\
}

static const struct array_desc entries_desc =
	ARRAY_DESC(entries, n_entries, FDH_MANIFEST_MAX_ENTRIES, check_entry,
		   true);
static const struct array_desc devices_desc =
	ARRAY_DESC(devices, n_devices, FDH_MANIFEST_MAX_DEVICES, check_device,
		   false);

static void **array_of(const struct fdh_manifest *m,
		       const struct array_desc *desc)
{
	return (void **)((char *)m + desc->array_offset);
}

static size_t *count_of(const struct fdh_manifest *m,
			const struct array_desc *desc)
{
	return (size_t *)((char *)m + desc->count_offset);
}

/* Where element i of an array is: "entries[3]". */
static void where_elem(struct where *w, int code,
		       const struct array_desc *desc, size_t i)
{
	where_init(w, code, desc->is_entries ? (int)i : -1, "%s[%zu]",
		   desc->name, i);
}

static int check_array(const struct fdh_manifest *m, int code,
		       const struct array_desc *desc)
{
	const void *array = *array_of(m, desc);
	size_t n = *count_of(m, desc);
	struct where w;
	int r = 0;

	where_init(&w, code, -1, "%s", "");
	if (n > desc->max)
		return bad(&w, desc->name, "%zu, more than %zu", n, desc->max);
	if (n && !array)
		return bad(&w, desc->name, "NULL with %zu elements", n);
	for (size_t i = 0; i < n && r == 0; i++) {
		where_elem(&w, code, desc, i);
		r = desc->check(&w, array, i,
				(const char *)array + i * desc->elem_size);
	}
	return r;
}

static int manifest_check(const struct fdh_manifest *m, int code)
{
	struct where w;
	int r;

	where_init(&w, code, -1, "%s", "");
	if (m->version != FDH_MANIFEST_VERSION)
		return bad(&w, "version",
			   "unknown version %" PRIu32 " (this library knows %d)",
			   m->version, FDH_MANIFEST_VERSION);
	r = validate_source(&m->source, code);
	if (r == 0)
		r = check_array(m, code, &entries_desc);
	if (r == 0)
		r = check_array(m, code, &devices_desc);
	return r;
}

int fdh_manifest_validate(const struct fdh_manifest *m)
{
	if (!m)
		return fdh_fail(-EINVAL, -1, "manifest is NULL");
	return manifest_check(m, -EINVAL);
}

/* ------------------------------------------------------------------ */
/* Building                                                           */

/*
 * Arrays grow in powers of two; the capacity follows from the count, so
 * that decode and the add functions agree without a field for it.
 */
static size_t capacity_for(size_t n)
{
	size_t c = 4;

	while (c < n)
		c *= 2;
	return c;
}

static int grow(void **array, size_t n, size_t elem_size)
{
	void *p;

	if (*array && capacity_for(n + 1) == capacity_for(n))
		return 0;
	p = realloc(*array, capacity_for(n + 1) * elem_size);
	if (!p)
		return fdh_fail(-ENOMEM, -1, "out of memory");
	*array = p;
	return 0;
}

struct fdh_manifest *fdh_manifest_new(void)
{
	struct fdh_manifest *m = calloc(1, sizeof(*m));

	if (m)
		m->version = FDH_MANIFEST_VERSION;
	return m;
}

void fdh_manifest_free(struct fdh_manifest *m)
{
	if (!m)
		return;
	free(m->entries);
	free(m->devices);
	free(m);
}

int fdh_manifest_validate_source(const struct fdh_manifest_source *src)
{
	return validate_source(src, -EINVAL);
}

int fdh_read_boot_id(char ret_boot_id[UUID_LEN + 1])
{
	char buf[UUID_LEN + 2];
	ssize_t n;
	int fd;

	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fdh_fail(-errno, -1,
				"open /proc/sys/kernel/random/boot_id: %m");
	n = read(fd, buf, sizeof(buf));
	if (n < 0)
		n = -errno;
	close(fd);
	if (n < 0)
		return fdh_fail((int)n, -1,
				"read /proc/sys/kernel/random/boot_id: %s",
				strerror((int)-n));
	if (n != UUID_LEN + 1 || buf[UUID_LEN] != '\n')
		return fdh_fail(-EPROTO, -1,
				"/proc/sys/kernel/random/boot_id: not a UUID line");
	memcpy(ret_boot_id, buf, UUID_LEN);
	ret_boot_id[UUID_LEN] = '\0';
	return 0;
}

int fdh_manifest_set_source(struct fdh_manifest *m, pid_t pid)
{
	struct fdh_manifest_source src = { .pid = pid };
	uid_t uid;
	int r;

	if (!m || pid <= 0)
		return fdh_fail(-EINVAL, -1,
				"set_source: no manifest or pid %d", (int)pid);
	r = fdh_proc_stat(pid, &src.start_time, &uid, src.comm);
	if (r < 0)
		return fdh_fail(r, -1, "reading /proc/%d/stat: %s", (int)pid,
				strerror(-r));
	src.uid = uid;
	r = fdh_read_boot_id(src.boot_id);
	if (r < 0)
		return r;
	m->source = src;
	return 0;
}

/* Append a copy of elem to an array of m, once desc's check accepts it. */
static int add_element(struct fdh_manifest *m, const void *elem,
		       const struct array_desc *desc)
{
	void **array;
	struct where w;
	size_t *n;
	int r;

	if (!m || !elem)
		return fdh_fail(-EINVAL, -1, "add to %s: NULL argument",
				desc->name);
	array = array_of(m, desc);
	n = count_of(m, desc);
	if (*n >= desc->max)
		return fdh_fail(-E2BIG, -1,
				"%s: already %zu, the most a manifest holds",
				desc->name, desc->max);
	where_elem(&w, -EINVAL, desc, *n);
	r = desc->check(&w, *array, *n, elem);
	if (r == 0)
		r = grow(array, *n, desc->elem_size);
	if (r < 0)
		return r;
	memcpy((char *)*array + *n * desc->elem_size, elem, desc->elem_size);
	(*n)++;
	return 0;
}

int fdh_manifest_add_entry(struct fdh_manifest *m,
			   const struct fdh_manifest_entry *entry)
{
	return add_element(m, entry, &entries_desc);
}

int fdh_manifest_add_device(struct fdh_manifest *m,
			    const struct fdh_manifest_device *device)
{
	return add_element(m, device, &devices_desc);
}

/* Copy a string field that the source bounds but may fill completely. */
static void copy_string(char *dst, size_t size, const char *src)
{
	size_t len = src ? strnlen(src, size - 1) : 0;

	memcpy(dst, src ? src : "", len);
	dst[len] = '\0';
}

void fdh_manifest_entry_from_info(const struct fdh_fd_info *info,
				  const char *owner, uint32_t index,
				  struct fdh_manifest_entry *ret_entry)
{
	struct fdh_manifest_entry e = { .index = index };
	struct fdh_identity id;

	/* An owner too long for the field makes the entry invalid rather
	 * than silently naming another one: leave it unterminated. */
	if (owner && strlen(owner) >= sizeof(e.owner))
		memcpy(e.owner, owner, sizeof(e.owner));
	else
		copy_string(e.owner, sizeof(e.owner), owner);
	fdh_identity_from_info(info, &id);
	e.kind = info->kind;
	e.remote_fd = info->fd;
	e.dev = info->dev;
	e.ino = info->ino;
	e.mode = info->mode;
	e.open_flags = info->flags;
	e.kind_id = id.kind_id;
	if (fdh_kind_ops(info->kind)->entry_from_info)
		fdh_kind_ops(info->kind)->entry_from_info(info, &e);
	*ret_entry = e;
}

void fdh_manifest_entry_identity(const struct fdh_manifest_entry *entry,
				 struct fdh_identity *ret_identity)
{
	struct fdh_identity id = {
		.kind = entry->kind,
		.dev = entry->dev,
		.ino = entry->ino,
		.mode = entry->mode,
		.kind_id = entry->kind_id,
	};

	if (fdh_kind_ops(entry->kind)->id_from_entry)
		fdh_kind_ops(entry->kind)->id_from_entry(entry, &id);
	*ret_identity = id;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                           */

/* A string field as "ay"; strnlen so that even an unvalidated field
 * (tests encode those on purpose) is never overrun. */
static GVariant *bytes_new(const char *s, size_t size)
{
	return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, s,
					 strnlen(s, size), 1);
}

#define BYTES(field) bytes_new((field), sizeof(field))

static GVariant *tap_encode(const struct fdh_manifest_entry *e)
{
	return g_variant_new("(@ayuuiu)", BYTES(e->u.tap.ifname),
			     e->u.tap.queue, e->u.tap.iff_flags,
			     e->u.tap.vnet_hdr_sz, e->u.tap.offloads);
}

static GVariant *memfd_encode(const struct fdh_manifest_entry *e)
{
	return g_variant_new("(@aytu)", BYTES(e->u.memfd.name),
			     (guint64)e->u.memfd.size, e->u.memfd.seals);
}

static GVariant *eventfd_encode(const struct fdh_manifest_entry *e)
{
	return g_variant_new_boolean(e->u.eventfd.semaphore);
}

static GVariant *vhost_user_encode(const struct fdh_manifest_entry *e)
{
	const __typeof__(e->u.vhost_user) *vu = &e->u.vhost_user;

	return g_variant_new("(ttqqt)", (guint64)vu->inflight_size,
			     (guint64)vu->inflight_offset,
			     vu->inflight_queue_size, vu->inflight_num_queues,
			     (guint64)vu->protocol_features);
}

static GVariant *entry_new(const struct fdh_manifest_entry *e)
{
	enum fdh_detail want = fdh_kind_ops(e->kind)->detail;
	GVariant *maybes[FDH_DETAIL__MAX];

	for (int d = 0; d < FDH_DETAIL__MAX; d++)
		maybes[d] = g_variant_new_maybe(
			G_VARIANT_TYPE(details[d].type),
			d == (int)want ? details[d].encode(e) : NULL);
	return g_variant_new("(@ayuuittuut@m" TAP_TYPE "@m" MEMFD_TYPE
			     "@m" EVENTFD_TYPE "@m" VHOST_USER_TYPE ")",
			     BYTES(e->owner), e->index, e->kind, e->remote_fd,
			     (guint64)e->dev, (guint64)e->ino, e->mode,
			     e->open_flags, (guint64)e->kind_id,
			     maybes[FDH_DETAIL_TAP], maybes[FDH_DETAIL_MEMFD],
			     maybes[FDH_DETAIL_EVENTFD],
			     maybes[FDH_DETAIL_VHOST_USER]);
}

static GVariant *device_new(const struct fdh_manifest_device *d)
{
	GVariantBuilder vrings;
	uint32_t n = d->n_vrings;

	/* Unvalidated devices (tests) may claim more rings than exist. */
	if (n > FDH_MANIFEST_MAX_VRINGS)
		n = FDH_MANIFEST_MAX_VRINGS;
	g_variant_builder_init(&vrings, G_VARIANT_TYPE("a" VRING_TYPE));
	for (uint32_t i = 0; i < n; i++) {
		const struct fdh_vring *v = &d->vrings[i];

		g_variant_builder_add(&vrings, VRING_TYPE, v->index, v->size,
				      (guint64)v->desc, (guint64)v->avail,
				      (guint64)v->used, v->last_avail_idx,
				      v->used_idx);
	}
	return g_variant_new("(@ayt@a" VRING_TYPE ")", BYTES(d->owner),
			     (guint64)d->acked_features,
			     g_variant_builder_end(&vrings));
}

GVariant *fdh_manifest_variant(const struct fdh_manifest *m)
{
	const struct fdh_manifest_source *src = &m->source;
	GVariantBuilder entries, devices;

	g_variant_builder_init(&entries, G_VARIANT_TYPE("a" ENTRY_TYPE));
	for (size_t i = 0; i < m->n_entries; i++)
		g_variant_builder_add_value(&entries,
					    entry_new(&m->entries[i]));
	g_variant_builder_init(&devices, G_VARIANT_TYPE("a" DEVICE_TYPE));
	for (size_t i = 0; i < m->n_devices; i++)
		g_variant_builder_add_value(&devices,
					    device_new(&m->devices[i]));
	return g_variant_ref_sink(g_variant_new(
		"((it@ayu@ay)@a" ENTRY_TYPE "@a" DEVICE_TYPE ")",
		src->pid, (guint64)src->start_time, BYTES(src->boot_id),
		src->uid, BYTES(src->comm), g_variant_builder_end(&entries),
		g_variant_builder_end(&devices)));
}

int fdh_manifest_encode_unchecked(const struct fdh_manifest *m,
				  void **ret_buf, size_t *ret_len)
{
	GVariant *v = fdh_manifest_variant(m);
	uint32_t version_le = GUINT32_TO_LE(m->version);
	size_t size, len;
	uint8_t *buf;

	/* The wire form is little-endian whatever the host. */
	if (G_BYTE_ORDER != G_LITTLE_ENDIAN) {
		GVariant *swapped = g_variant_byteswap(v);

		g_variant_unref(v);
		v = swapped;
	}
	size = g_variant_get_size(v);
	len = HEADER_LEN + size;
	if (len > FDH_MANIFEST_MAX_BYTES) {
		g_variant_unref(v);
		return fdh_fail(-E2BIG, -1, "manifest: %zu bytes, more than %u",
				len, FDH_MANIFEST_MAX_BYTES);
	}
	buf = malloc(len);
	if (!buf) {
		g_variant_unref(v);
		return fdh_fail(-ENOMEM, -1, "out of memory");
	}
	memcpy(buf, FDH_MANIFEST_MAGIC, 4);
	memcpy(buf + 4, &version_le, 4);
	g_variant_store(v, buf + HEADER_LEN);
	g_variant_unref(v);
	FDH_PROBE2(manifest_encoded, m->n_entries, len);
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

int fdh_manifest_encode(const struct fdh_manifest *m, void **ret_buf,
			size_t *ret_len)
{
	int r;

	if (!m || !ret_buf || !ret_len)
		return fdh_fail(-EINVAL, -1, "encode: NULL argument");
	r = manifest_check(m, -EINVAL);
	if (r < 0)
		return r;
	return fdh_manifest_encode_unchecked(m, ret_buf, ret_len);
}

/* ------------------------------------------------------------------ */
/* Decoding                                                           */

/* An "ay" child into a char field, NUL-terminated, no NUL inside. */
static int get_string(const struct where *w, const char *field,
		      GVariant *tuple, size_t child, char *dst, size_t size)
{
	GVariant *ay = g_variant_get_child_value(tuple, child);
	const char *p;
	gsize n;
	int r = 0;

	p = g_variant_get_fixed_array(ay, &n, 1);
	if (n >= size)
		r = bad(w, field, "%zu bytes, longer than %zu", (size_t)n,
			size - 1);
	else if (n && memchr(p, '\0', n))
		r = bad(w, field, "holds a NUL byte");
	else if (n)
		memcpy(dst, p, n);
	if (r == 0)
		dst[n] = '\0';
	g_variant_unref(ay);
	return r;
}

#define GET_STRING(w, name, tuple, child, field)			\
	get_string((w), (name), (tuple), (child), (field), sizeof(field))

static int tap_decode(const struct where *w, GVariant *v,
		      struct fdh_manifest_entry *e)
{
	g_variant_get(v, "(@ayuuiu)", NULL, &e->u.tap.queue,
		      &e->u.tap.iff_flags, &e->u.tap.vnet_hdr_sz,
		      &e->u.tap.offloads);
	return GET_STRING(w, "tap.ifname", v, 0, e->u.tap.ifname);
}

static int memfd_decode(const struct where *w, GVariant *v,
			struct fdh_manifest_entry *e)
{
	g_variant_get(v, "(@aytu)", NULL, &e->u.memfd.size, &e->u.memfd.seals);
	return GET_STRING(w, "memfd.name", v, 0, e->u.memfd.name);
}

static int eventfd_decode(const struct where *w, GVariant *v,
			  struct fdh_manifest_entry *e)
{
	(void)w;
	e->u.eventfd.semaphore = g_variant_get_boolean(v);
	return 0;
}

static int vhost_user_decode(const struct where *w, GVariant *v,
			     struct fdh_manifest_entry *e)
{
	(void)w;
	g_variant_get(v, "(ttqqt)", &e->u.vhost_user.inflight_size,
		      &e->u.vhost_user.inflight_offset,
		      &e->u.vhost_user.inflight_queue_size,
		      &e->u.vhost_user.inflight_num_queues,
		      &e->u.vhost_user.protocol_features);
	return 0;
}

/* In the order of the maybes on the wire (enum fdh_detail). */
static const struct detail_ops details[FDH_DETAIL__MAX] = {
	[FDH_DETAIL_TAP] = { "tap", TAP_TYPE, tap_encode, tap_decode,
			     validate_tap },
	[FDH_DETAIL_MEMFD] = { "memfd", MEMFD_TYPE, memfd_encode,
			       memfd_decode, validate_memfd },
	[FDH_DETAIL_EVENTFD] = { "eventfd", EVENTFD_TYPE, eventfd_encode,
				 eventfd_decode, NULL },
	[FDH_DETAIL_VHOST_USER] = { "vhost_user", VHOST_USER_TYPE,
				    vhost_user_encode, vhost_user_decode,
				    validate_vhost_user },
};

/* Exactly the maybe of the entry's kind is present. */
static int decode_details(const struct where *w, GVariant *v,
			  struct fdh_manifest_entry *e)
{
	enum fdh_detail want = fdh_kind_ops(e->kind)->detail;
	int r = 0;

	for (int d = 0; d < FDH_DETAIL__MAX && r == 0; d++) {
		size_t child = ENTRY_FIRST_DETAIL + (size_t)d;
		GVariant *mv = g_variant_get_child_value(v, child);
		GVariant *inner = g_variant_get_maybe(mv);

		if (d == (int)want && inner)
			r = details[d].decode(w, inner, e);
		else if (d == (int)want)
			r = bad(w, details[d].name, "missing for kind %" PRIu32,
				e->kind);
		else if (inner)
			r = bad(w, details[d].name, "present for kind %" PRIu32,
				e->kind);
		if (inner)
			g_variant_unref(inner);
		g_variant_unref(mv);
	}
	return r;
}

static int decode_entry(GVariant *v, size_t i, void *elem)
{
	struct fdh_manifest_entry *e = elem;
	struct where w;
	int r;

	where_init(&w, -EBADMSG, (int)i, "entries[%zu]", i);
	g_variant_get(v, "(@ayuuittuut@m" TAP_TYPE "@m" MEMFD_TYPE
		      "@m" EVENTFD_TYPE "@m" VHOST_USER_TYPE ")", NULL,
		      &e->index, &e->kind, &e->remote_fd, &e->dev, &e->ino,
		      &e->mode, &e->open_flags, &e->kind_id, NULL, NULL, NULL,
		      NULL);
	r = GET_STRING(&w, "owner", v, 0, e->owner);
	if (r < 0)
		return r;
	return decode_details(&w, v, e);
}

static int decode_device(GVariant *v, size_t i, void *elem)
{
	struct fdh_manifest_device *d = elem;
	GVariant *vrings;
	struct where w;
	size_t n;
	int r;

	where_init(&w, -EBADMSG, -1, "devices[%zu]", i);
	g_variant_get(v, "(@ayt@a" VRING_TYPE ")", NULL, &d->acked_features,
		      &vrings);
	n = g_variant_n_children(vrings);
	if (n > FDH_MANIFEST_MAX_VRINGS) {
		r = bad(&w, "vrings", "%zu, more than %d", n,
			FDH_MANIFEST_MAX_VRINGS);
	} else {
		d->n_vrings = (uint32_t)n;
		for (size_t j = 0; j < n; j++) {
			struct fdh_vring *vr = &d->vrings[j];

			g_variant_get_child(vrings, j, VRING_TYPE, &vr->index,
					    &vr->size, &vr->desc, &vr->avail,
					    &vr->used, &vr->last_avail_idx,
					    &vr->used_idx);
		}
		r = GET_STRING(&w, "owner", v, 0, d->owner);
	}
	g_variant_unref(vrings);
	return r;
}

/*
 * The list child of top into a new array of its elements, decoded one by
 * one; counts beyond the limit are refused before anything is allocated.
 */
static int decode_list(GVariant *top, size_t child,
		       const struct array_desc *desc,
		       int (*decode_one)(GVariant *v, size_t i, void *elem),
		       struct fdh_manifest *m)
{
	GVariant *list = g_variant_get_child_value(top, child);
	void **ret_elems = array_of(m, desc);
	size_t *ret_n = count_of(m, desc);
	size_t n = g_variant_n_children(list);
	struct where w;
	int r = 0;

	where_init(&w, -EBADMSG, -1, "%s", "");
	if (n > desc->max)
		r = bad(&w, desc->name, "%zu, more than %zu", n, desc->max);
	if (r == 0 && n) {
		*ret_elems = calloc(capacity_for(n), desc->elem_size);
		if (!*ret_elems)
			r = fdh_fail(-ENOMEM, -1, "out of memory");
	}
	if (r == 0)
		*ret_n = n;
	for (size_t i = 0; r == 0 && i < n; i++) {
		GVariant *v = g_variant_get_child_value(list, i);

		r = decode_one(v, i, (char *)*ret_elems + i * desc->elem_size);
		g_variant_unref(v);
	}
	g_variant_unref(list);
	return r;
}

static int decode_source(GVariant *top, struct fdh_manifest_source *src)
{
	GVariant *v = g_variant_get_child_value(top, 0);
	struct where w;
	int r;

	where_init(&w, -EBADMSG, -1, "source");
	g_variant_get(v, "(it@ayu@ay)", &src->pid, &src->start_time, NULL,
		      &src->uid, NULL);
	r = GET_STRING(&w, "boot_id", v, 2, src->boot_id);
	if (r == 0)
		r = GET_STRING(&w, "comm", v, 4, src->comm);
	g_variant_unref(v);
	return r;
}

static int decode_variant(GVariant *top, struct fdh_manifest *m)
{
	int r;

	r = decode_source(top, &m->source);
	if (r == 0)
		r = decode_list(top, 1, &entries_desc, decode_entry, m);
	if (r == 0)
		r = decode_list(top, 2, &devices_desc, decode_device, m);
	return r;
}

static int decode_header(const uint8_t *buf, size_t len)
{
	uint32_t version;

	if (len < HEADER_LEN)
		return fdh_fail(-EBADMSG, -1,
				"manifest: %zu bytes, shorter than its %d-byte header",
				len, HEADER_LEN);
	if (len > FDH_MANIFEST_MAX_BYTES)
		return fdh_fail(-EBADMSG, -1,
				"manifest: %zu bytes, more than %u", len,
				FDH_MANIFEST_MAX_BYTES);
	if (memcmp(buf, FDH_MANIFEST_MAGIC, 4) != 0)
		return fdh_fail(-EBADMSG, -1,
				"magic: %02x %02x %02x %02x, expected \"%s\": not a manifest",
				buf[0], buf[1], buf[2], buf[3],
				FDH_MANIFEST_MAGIC);
	memcpy(&version, buf + 4, 4);
	version = GUINT32_FROM_LE(version);
	if (version != FDH_MANIFEST_VERSION)
		return fdh_fail(-EBADMSG, -1,
				"version: unknown version %" PRIu32 " (this library knows %d): written by another fd-handover",
				version, FDH_MANIFEST_VERSION);
	return 0;
}

static int decode(const uint8_t *buf, size_t len, struct fdh_manifest *m)
{
	GVariant *v, *native;
	void *copy;
	int r;

	r = decode_header(buf, len);
	if (r < 0)
		return r;
	/* A copy: GVariant wants its data aligned, and buf may not be. */
	copy = g_memdup2(buf + HEADER_LEN, len - HEADER_LEN);
	v = g_variant_ref_sink(g_variant_new_from_data(
		G_VARIANT_TYPE(MANIFEST_TYPE), copy, len - HEADER_LEN, FALSE,
		g_free, copy));
	/* Non-normal data would still read as something; refusing it keeps
	 * one manifest to one encoding and leaves nothing to guess. */
	if (!g_variant_is_normal_form(v)) {
		g_variant_unref(v);
		return fdh_fail(-EBADMSG, -1,
				"manifest: not a GVariant of type %s in normal form",
				MANIFEST_TYPE);
	}
	native = v;
	if (G_BYTE_ORDER != G_LITTLE_ENDIAN) {
		native = g_variant_byteswap(v);
		g_variant_unref(v);
	}
	m->version = FDH_MANIFEST_VERSION;
	r = decode_variant(native, m);
	g_variant_unref(native);
	if (r < 0)
		return r;
	return manifest_check(m, -EBADMSG);
}

int fdh_manifest_decode(const void *buf, size_t len,
			struct fdh_manifest **ret_manifest)
{
	struct fdh_manifest *m;
	int r;

	/* Zero bytes at NULL are an empty (so truncated) manifest. */
	if ((!buf && len) || !ret_manifest)
		return fdh_fail(-EINVAL, -1, "decode: NULL argument");
	m = fdh_manifest_new();
	if (!m)
		return fdh_fail(-ENOMEM, -1, "out of memory");
	r = decode(buf, len, m);
	FDH_PROBE2(manifest_decoded, len, r);
	if (r < 0) {
		fdh_manifest_free(m);
		return r;
	}
	*ret_manifest = m;
	return 0;
}

/* Open path for reading only if nobody but its owner could have written it. */
static int open_owned_file(const char *path, struct stat *ret_st)
{
	uid_t euid = geteuid();
	int fd, r;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
			O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		return fdh_fail(r, -1, "manifest '%s': open: %s%s", path,
				strerror(-r),
				r == -ELOOP ? " (a symbolic link: name the file itself)" : "");
	}
	if (fstat(fd, ret_st) < 0) {
		r = fdh_fail(-errno, -1, "manifest '%s': fstat: %m", path);
	} else if (!S_ISREG(ret_st->st_mode)) {
		r = fdh_fail(-EINVAL, -1, "manifest '%s': not a regular file (mode %06o)",
			     path, (unsigned int)ret_st->st_mode);
	} else if (ret_st->st_uid != euid && ret_st->st_uid != 0) {
		r = fdh_fail(-EPERM, -1,
			     "manifest '%s': owned by uid %u, neither this process's uid %u nor root: anybody could have written it",
			     path, (unsigned int)ret_st->st_uid, (unsigned int)euid);
	} else if (ret_st->st_mode & (S_IWGRP | S_IWOTH)) {
		r = fdh_fail(-EPERM, -1,
			     "manifest '%s': mode %04o lets group or others write it; chmod go-w",
			     path, (unsigned int)(ret_st->st_mode & 07777));
	} else if (ret_st->st_size > (off_t)FDH_MANIFEST_MAX_BYTES) {
		r = fdh_fail(-EFBIG, -1, "manifest '%s': %lld bytes, more than the %u a manifest may have",
			     path, (long long)ret_st->st_size, FDH_MANIFEST_MAX_BYTES);
	} else {
		return fd;
	}
	close(fd);
	return r;
}

int fdh_manifest_read_file(const char *path,
			   struct fdh_manifest **ret_manifest)
{
	struct fdh_error failed;
	struct stat st;
	size_t len = 0, size;
	char *buf;
	int fd, r = 0;

	if (!path || !ret_manifest)
		return fdh_fail(-EINVAL, -1, "read_file: NULL argument");
	fd = open_owned_file(path, &st);
	if (fd < 0)
		return fd;
	/* One byte more than allowed, to see a file that grew meanwhile. */
	size = FDH_MANIFEST_MAX_BYTES + 1;
	buf = malloc(size);
	if (!buf) {
		close(fd);
		return fdh_fail(-ENOMEM, -1, "out of memory");
	}
	while (len < size) {
		ssize_t n = read(fd, buf + len, size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = fdh_fail(-errno, -1, "manifest '%s': read: %m", path);
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (r == 0 && len > FDH_MANIFEST_MAX_BYTES)
		r = fdh_fail(-EFBIG, -1, "manifest '%s': more than the %u bytes a manifest may have",
			     path, FDH_MANIFEST_MAX_BYTES);
	if (r == 0) {
		r = fdh_manifest_decode(buf, len, ret_manifest);
		if (r < 0) {
			failed = *fdh_last_error();
			fdh_fail(r, failed.entry, "manifest '%s': %s", path,
				 failed.msg);
		}
	}
	free(buf);
	return r;
}
