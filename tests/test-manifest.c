// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The manifest, as Documentation/manifest.md specifies it: every kind
 * survives encode and decode byte for byte, every validation rule rejects
 * on its own and names its field, and no damaged, truncated or foreign
 * input gets through decode.  Most tests are rows of a table (an X-macro
 * list) run by one check function, so a rule is one line to add.
 *
 * Every test runs in the "manifest" fixture, whose teardown asks
 * LeakSanitizer (in -Dsanitize=true builds) whether the test leaked: the
 * harness ends each test with _exit(), where LSan would not look.
 */
#include "harness.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

#include "fdhandover.h"
#include "manifest-internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* Written out again here, from the spec, to check the library against it. */
#define MANIFEST_TYPE							\
	"((itayuay)a(ayuuittuutm(ayuuiu)m(aytu)mbm(ttqqt))a(ayta(uutttqq)))"
#define HEADER_LEN 8

#define BOOT_ID "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"

FIXTURE(manifest) {
	int unused;
};

FIXTURE_SETUP(manifest)
{
}

FIXTURE_TEARDOWN(manifest)
{
#ifdef HAVE_LSAN
	EXPECT_EQ(__lsan_do_recoverable_leak_check(), 0,
		  "the test leaked memory (report on stderr)");
#endif
}

#define EXPECT_MSG(needle)						\
	EXPECT_TRUE(strstr(fdh_last_error()->msg, (needle)) != NULL,	\
		    "message '%s' lacks '%s'", fdh_last_error()->msg,	\
		    (needle))

/* ------------------------------------------------------------------ */
/* A sample manifest: entries[k] is of kind k, two devices            */

static mode_t kind_mode(uint32_t kind)
{
	switch (kind) {
	case FDH_KIND_MEMFD:
	case FDH_KIND_FILE:
		return S_IFREG | 0600;
	case FDH_KIND_TAP:
	case FDH_KIND_VHOST_NET:
		return S_IFCHR | 0666;
	case FDH_KIND_UNIX_SOCKET:
	case FDH_KIND_VHOST_USER:
	case FDH_KIND_SOCKET:
		return S_IFSOCK | 0777;
	case FDH_KIND_PIPE:
		return S_IFIFO | 0600;
	default:
		return 0600;	/* anonymous inodes have no file type */
	}
}

static void sample_entry(uint32_t kind, struct fdh_manifest_entry *e)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->owner, sizeof(e->owner), "own-%s", fdh_kind_name(kind));
	e->index = kind;
	e->kind = kind;
	e->remote_fd = 30 + (int32_t)kind;
	e->dev = makedev(0, 10 + kind);
	e->ino = 5000 + kind;
	e->mode = kind_mode(kind);
	e->open_flags = O_RDWR | O_CLOEXEC;
	e->kind_id = 7000 + kind;
	switch (kind) {
	case FDH_KIND_TAP:
		strcpy(e->u.tap.ifname, "tap-net0");
		e->u.tap.queue = 3;
		e->u.tap.iff_flags = 0x5002;
		e->u.tap.vnet_hdr_sz = 12;
		e->u.tap.offloads = 0x1f;
		break;
	case FDH_KIND_MEMFD:
		strcpy(e->u.memfd.name, "qemu-ram");
		e->u.memfd.size = 1ull << 30;
		e->u.memfd.seals = 0xf;
		break;
	case FDH_KIND_EVENTFD:
		e->u.eventfd.semaphore = true;
		break;
	case FDH_KIND_VHOST_USER:
		e->u.vhost_user.inflight_size = 8192;
		e->u.vhost_user.inflight_offset = 4096;
		e->u.vhost_user.inflight_queue_size = 256;
		e->u.vhost_user.inflight_num_queues = 2;
		e->u.vhost_user.protocol_features = 0x3fff;
		break;
	}
}

/* Rings in a deliberately unsorted order: only uniqueness is required. */
static void sample_device(struct fdh_manifest_device *d, const char *owner,
			  uint32_t n_vrings)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->owner, sizeof(d->owner), "%s", owner);
	d->acked_features = n_vrings ? 0x130000000ull : 777;
	d->n_vrings = n_vrings;
	for (uint32_t i = 0; i < n_vrings; i++) {
		struct fdh_vring *v = &d->vrings[i];

		v->index = n_vrings - 1 - i;
		v->size = 256u << (i % 8);	/* up to 32768 */
		v->desc = 0x7f0000010000ull + 0x10000ull * i;
		v->avail = v->desc + 0x4000;
		v->used = v->desc + 0x8000;
		v->last_avail_idx = (uint16_t)(65530 + i);
		v->used_idx = (uint16_t)(65529 + i);
	}
}

static struct fdh_manifest *sample_source_only(void)
{
	struct fdh_manifest *m = fdh_manifest_new();

	if (!m)
		return NULL;
	m->source.pid = 4242;
	m->source.start_time = 987654321;
	strcpy(m->source.boot_id, BOOT_ID);
	m->source.uid = 1000;
	strcpy(m->source.comm, "qemu-kvm");
	return m;
}

/* Every kind once, a device with four rings and one with none. */
static struct fdh_manifest *sample(void)
{
	struct fdh_manifest *m = sample_source_only();
	struct fdh_manifest_device d;
	struct fdh_manifest_entry e;
	int r = m ? 0 : -ENOMEM;

	for (uint32_t k = 0; r == 0 && k < FDH_KIND__MAX; k++) {
		sample_entry(k, &e);
		r = fdh_manifest_add_entry(m, &e);
	}
	sample_device(&d, "net0", 4);
	if (r == 0)
		r = fdh_manifest_add_device(m, &d);
	sample_device(&d, "blk0", 0);
	if (r == 0)
		r = fdh_manifest_add_device(m, &d);
	if (r < 0) {
		fdh_manifest_free(m);
		return NULL;
	}
	return m;
}

/*
 * The source, an entry of kind (none for FDH_KIND__MAX) and a device
 * with n_vrings rings (none for 0).
 */
static struct fdh_manifest *with(uint32_t kind, uint32_t n_vrings)
{
	struct fdh_manifest *m = sample_source_only();
	struct fdh_manifest_device d;
	struct fdh_manifest_entry e;
	int r = m ? 0 : -ENOMEM;

	if (r == 0 && kind < FDH_KIND__MAX) {
		sample_entry(kind, &e);
		r = fdh_manifest_add_entry(m, &e);
	}
	if (r == 0 && n_vrings) {
		sample_device(&d, "net0", n_vrings);
		r = fdh_manifest_add_device(m, &d);
	}
	if (r < 0) {
		fdh_manifest_free(m);
		return NULL;
	}
	return m;
}

/* Strings at their longest, and bytes that are not UTF-8 or printable. */
static struct fdh_manifest *with_extreme_strings(void)
{
	struct fdh_manifest *m = sample();

	if (!m)
		return NULL;
	strcpy(m->source.comm, "q\xff\x01\"\\ 012345678");
	memset(m->entries[0].owner, 'o', FDH_OWNER_MAX - 1);
	memset(m->entries[FDH_KIND_TAP].u.tap.ifname, 'i', 15);
	memset(m->entries[FDH_KIND_MEMFD].u.memfd.name, '\x80',
	       FDH_NAME_MAX - 1);
	memset(m->devices[1].owner, '\xfe', FDH_OWNER_MAX - 1);
	return m;
}

/* ------------------------------------------------------------------ */
/* Round trips                                                        */

enum rendering { TEXT, JSON, JSON_PRETTY };

/* m rendered, or NULL. */
static char *render_of(const struct fdh_manifest *m, enum rendering how)
{
	char *out = NULL;
	int r;

	if (how == TEXT)
		r = fdh_manifest_to_text(m, &out);
	else
		r = fdh_manifest_to_json(m, how == JSON_PRETTY, &out);
	return r < 0 ? NULL : out;
}

static bool same_bytes(const void *a, const void *b, size_t n)
{
	return n == 0 || memcmp(a, b, n) == 0;
}

/*
 * Every field of two manifests, byte for byte.  Both sides are built in
 * zeroed memory (the samples memset, decode callocs, the add functions
 * copy whole structs), so padding and unused union bytes are zero on
 * both.  On a difference, both JSON renderings go to the log.
 */
static void expect_manifest_eq(struct th_meta *_meta,
			       const struct fdh_manifest *a,
			       const struct fdh_manifest *b)
{
	bool same = a->version == b->version &&
		    same_bytes(&a->source, &b->source, sizeof(a->source)) &&
		    a->n_entries == b->n_entries &&
		    a->n_devices == b->n_devices &&
		    same_bytes(a->entries, b->entries,
			       a->n_entries * sizeof(*a->entries)) &&
		    same_bytes(a->devices, b->devices,
			       a->n_devices * sizeof(*a->devices));
	g_autofree char *ja = same ? NULL : render_of(a, JSON_PRETTY);
	g_autofree char *jb = same ? NULL : render_of(b, JSON_PRETTY);

	EXPECT_TRUE(same, "the manifests differ:\n%s\n%s", ja, jb);
}

/* Encode m, decode it, expect the same manifest back; frees m. */
static void check_round_trip(struct th_meta *_meta, struct fdh_manifest *m)
{
	struct fdh_manifest *back = NULL;
	size_t len;
	void *buf;

	ASSERT_TRUE(m != NULL, "%s", fdh_last_error()->msg);
	ASSERT_EQ(fdh_manifest_encode(m, &buf, &len), 0, "%s",
		  fdh_last_error()->msg);
	ASSERT_EQ(fdh_manifest_decode(buf, len, &back), 0, "%s",
		  fdh_last_error()->msg);
	free(buf);
	expect_manifest_eq(_meta, m, back);
	fdh_manifest_free(back);
	fdh_manifest_free(m);
}

#define KINDS(X)							\
	X(other, FDH_KIND_OTHER)					\
	X(memfd, FDH_KIND_MEMFD)					\
	X(tap, FDH_KIND_TAP)						\
	X(eventfd, FDH_KIND_EVENTFD)					\
	X(vhost_net, FDH_KIND_VHOST_NET)				\
	X(vhost_user_with_inflight, FDH_KIND_VHOST_USER)		\
	X(unix_socket, FDH_KIND_UNIX_SOCKET)				\
	X(pidfd, FDH_KIND_PIDFD)					\
	X(epoll, FDH_KIND_EPOLL)					\
	X(pipe, FDH_KIND_PIPE)						\
	X(file, FDH_KIND_FILE)						\
	X(socket, FDH_KIND_SOCKET)

#define KIND_ROUND_TRIP(name, kind)					\
	X_ROUND_TRIP(round_trip_keeps_##name##_entry, with(kind, 0))

#define ROUND_TRIPS(X)							\
	X(round_trip_keeps_device_vrings,				\
	  with(FDH_KIND__MAX, FDH_MANIFEST_MAX_VRINGS))			\
	X(round_trip_keeps_whole_sample, sample())			\
	X(round_trip_keeps_empty_manifest, sample_source_only())	\
	X(round_trip_keeps_strings_byte_for_byte, with_extreme_strings())

#define X_ROUND_TRIP(name, build)					\
	TEST_F(manifest, name)						\
	{								\
		check_round_trip(_meta, build);				\
	}
KINDS(KIND_ROUND_TRIP)
ROUND_TRIPS(X_ROUND_TRIP)

TEST_F(manifest, kinds_list_covers_every_kind)
{
#define COUNT_KIND(name, kind) + 1
	ASSERT_EQ(0 KINDS(COUNT_KIND), FDH_KIND__MAX,
		  "a kind was added: give it a round-trip test");
#undef COUNT_KIND
}

static void *encode_sample(size_t *ret_len)
{
	struct fdh_manifest *m = sample();
	void *buf = NULL;

	if (m && fdh_manifest_encode(m, &buf, ret_len) < 0)
		buf = NULL;
	fdh_manifest_free(m);
	return buf;
}

TEST_F(manifest, encode_writes_magic_and_little_endian_version)
{
	size_t len;
	uint8_t *buf = encode_sample(&len);

	ASSERT_TRUE(buf != NULL);
	EXPECT_TRUE(memcmp(buf, "FDHM\x01\x00\x00\x00", 8) == 0);
	free(buf);
}

TEST_F(manifest, reencoding_a_decoded_manifest_gives_the_same_bytes)
{
	struct fdh_manifest *back = NULL;
	size_t len, len2;
	void *buf = encode_sample(&len), *again;

	ASSERT_TRUE(buf != NULL);
	ASSERT_EQ(fdh_manifest_decode(buf, len, &back), 0);
	ASSERT_EQ(fdh_manifest_encode(back, &again, &len2), 0);
	fdh_manifest_free(back);
	EXPECT_TRUE(len == len2 && memcmp(buf, again, len) == 0,
		    "normal form: one manifest, one encoding");
	free(buf);
	free(again);
}

/* ------------------------------------------------------------------ */
/* Validation rules: each breaks one field of a valid sample          */

/* Grow an array to n zeroed elements past the limits. */
static void resize(void **array, size_t *n, size_t new_n, size_t size)
{
	void *p = calloc(new_n, size);

	if (!p)
		abort();
	memcpy(p, *array, *n * size);
	free(*array);
	*array = p;
	*n = new_n;
}

#define set_n_entries(m, n)						\
	resize((void **)&(m)->entries, &(m)->n_entries, (n),		\
	       sizeof(*(m)->entries))
#define set_n_devices(m, n)						\
	resize((void **)&(m)->devices, &(m)->n_devices, (n),		\
	       sizeof(*(m)->devices))

/*
 * Break the sample with mutate: validate and encode must refuse it with
 * -EINVAL and a message naming field; written out anyway (wire), decode
 * must refuse it with -EBADMSG naming the same field.
 */
static void check_rule(struct th_meta *_meta,
		       void (*mutate)(struct fdh_manifest *m), int entry,
		       const char *field, const char *detail, bool wire)
{
	struct fdh_manifest *m = sample(), *back = NULL;
	const struct fdh_error *err = fdh_last_error();
	void *buf;
	size_t len;

	ASSERT_TRUE(m != NULL, "%s", err->msg);
	mutate(m);
	EXPECT_EQ(fdh_manifest_validate(m), -EINVAL);
	EXPECT_TRUE(strstr(err->msg, field) && strstr(err->msg, detail),
		    "message '%s' lacks '%s' or '%s'", err->msg, field,
		    detail);
	EXPECT_EQ(err->entry, entry, "the failing entry");
	EXPECT_EQ(fdh_manifest_encode(m, &buf, &len), -EINVAL,
		  "encode validates");
	if (wire) {
		ASSERT_EQ(fdh_manifest_encode_unchecked(m, &buf, &len), 0);
		EXPECT_EQ(fdh_manifest_decode(buf, len, &back), -EBADMSG);
		EXPECT_TRUE(strstr(err->msg, field) != NULL,
			    "decode message '%s' lacks '%s'", err->msg, field);
		EXPECT_EQ(err->entry, entry, "the failing entry");
		free(buf);
	}
	fdh_manifest_free(m);
}

/* The mutation of the sample named by a test. */
#define MUTATOR(name, ...)						\
	static void mutate_##name(struct fdh_manifest *m)		\
	{								\
		__VA_ARGS__;						\
	}

#define E(kind) m->entries[FDH_KIND_##kind]
#define TAP_AT "entries[2]."
#define VU_AT "entries[5].vhost_user."

/* name, entry, field, detail, also through the wire, mutation */
#define RULES(X)							\
	X(rejects_unknown_version, -1, "version", "unknown version 2",	\
	  true, m->version = 2)						\
	X(rejects_zero_pid, -1, "source.pid", "not a process id", true,	\
	  m->source.pid = 0)						\
	X(rejects_zero_start_time, -1, "source.start_time", "required",	\
	  true, m->source.start_time = 0)				\
	X(rejects_boot_id_not_uuid, -1, "source.boot_id", "UUID", true,	\
	  strcpy(m->source.boot_id, "not-a-uuid"))			\
	X(rejects_boot_id_in_capitals, -1, "source.boot_id", "UUID",	\
	  true, m->source.boot_id[0] = 'F')				\
	X(rejects_boot_id_without_nul, -1, "source.boot_id",		\
	  "not NUL-terminated within 37 bytes", true,			\
	  memset(m->source.boot_id, 'a', sizeof(m->source.boot_id)))	\
	X(rejects_invalid_uid, -1, "source.uid", "not a uid", true,	\
	  m->source.uid = UINT32_MAX)					\
	X(rejects_comm_without_nul, -1, "source.comm",			\
	  "not NUL-terminated within 16 bytes", true,			\
	  memset(m->source.comm, 'c', sizeof(m->source.comm)))		\
	X(rejects_too_many_entries, -1, "entries", "1025, more than 1024", \
	  true, set_n_entries(m, FDH_MANIFEST_MAX_ENTRIES + 1))		\
	X(rejects_entries_missing, -1, "entries", "NULL", false,	\
	  free(m->entries), m->entries = NULL)				\
	X(rejects_empty_owner, 0, "entries[0].owner", "empty", true,	\
	  m->entries[0].owner[0] = '\0')				\
	X(rejects_owner_without_nul, 1, "entries[1].owner",		\
	  "not NUL-terminated within 64 bytes", true,			\
	  memset(m->entries[1].owner, 'o', FDH_OWNER_MAX))		\
	X(rejects_unknown_kind, 0, "entries[0].kind", "unknown kind 99", \
	  true, m->entries[0].kind = 99)				\
	X(rejects_negative_remote_fd, 3, "entries[3].remote_fd",	\
	  "negative", true, E(EVENTFD).remote_fd = -1)			\
	X(rejects_mode_beyond_type_and_permissions, 1, "entries[1].mode", \
	  "bits beyond", true, E(MEMFD).mode |= 0x10000000)		\
	X(rejects_tap_without_ifname, 2, TAP_AT "tap.ifname", "empty",	\
	  true, E(TAP).u.tap.ifname[0] = '\0')				\
	X(rejects_tap_ifname_without_nul, 2, TAP_AT "tap.ifname",	\
	  "not NUL-terminated within 16 bytes", true,			\
	  memset(E(TAP).u.tap.ifname, 't', 16))				\
	X(rejects_tap_queue_beyond_kernel_limit, 2, TAP_AT "tap.queue",	\
	  "256, not below 256", true, E(TAP).u.tap.queue = 256)		\
	X(rejects_tap_vnet_hdr_too_small, 2, TAP_AT "tap.vnet_hdr_sz",	\
	  "neither -1", true, E(TAP).u.tap.vnet_hdr_sz = 4)		\
	X(rejects_memfd_name_without_nul, 1, "entries[1].memfd.name",	\
	  "not NUL-terminated within 64 bytes", true,			\
	  memset(E(MEMFD).u.memfd.name, 'm', FDH_NAME_MAX))		\
	X(rejects_inflight_geometry_without_region, 5,			\
	  VU_AT "inflight_size", "0, but", true,			\
	  E(VHOST_USER).u.vhost_user.inflight_size = 0)			\
	X(rejects_inflight_region_overflow, 5, VU_AT "inflight_offset",	\
	  "overflows", true,						\
	  E(VHOST_USER).u.vhost_user.inflight_offset = UINT64_MAX)	\
	X(rejects_inflight_queue_size_not_power_of_two, 5,		\
	  VU_AT "inflight_queue_size", "1000, not a power of two", true, \
	  E(VHOST_USER).u.vhost_user.inflight_queue_size = 1000)	\
	X(rejects_inflight_without_queues, 5,				\
	  VU_AT "inflight_num_queues", "0, not between 1 and 64", true,	\
	  E(VHOST_USER).u.vhost_user.inflight_num_queues = 0)		\
	X(rejects_inflight_too_many_queues, 5,				\
	  VU_AT "inflight_num_queues", "65, not between", true,		\
	  E(VHOST_USER).u.vhost_user.inflight_num_queues = 65)		\
	X(rejects_duplicate_remote_fd, 4, "entries[4].remote_fd",	\
	  "also entries[1]", true,					\
	  E(VHOST_NET).remote_fd = E(MEMFD).remote_fd)			\
	X(rejects_duplicate_owner_and_index, 4, "entries[4].index",	\
	  "also entries[1]", true,					\
	  strcpy(E(VHOST_NET).owner, E(MEMFD).owner),			\
	  E(VHOST_NET).index = E(MEMFD).index)				\
	X(rejects_too_many_devices, -1, "devices", "65, more than 64",	\
	  true, set_n_devices(m, FDH_MANIFEST_MAX_DEVICES + 1))		\
	X(rejects_devices_missing, -1, "devices", "NULL", false,	\
	  free(m->devices), m->devices = NULL)				\
	X(rejects_device_without_owner, -1, "devices[1].owner", "empty", \
	  true, m->devices[1].owner[0] = '\0')				\
	X(rejects_device_owner_without_nul, -1, "devices[0].owner",	\
	  "not NUL-terminated within 64 bytes", true,			\
	  memset(m->devices[0].owner, 'd', FDH_OWNER_MAX))		\
	X(rejects_duplicate_device_owner, -1, "devices[1].owner",	\
	  "also the owner of devices[0]", true,				\
	  strcpy(m->devices[1].owner, m->devices[0].owner))		\
	X(rejects_too_many_vrings, -1, "devices[0].n_vrings",		\
	  "65, more than 64", false,					\
	  m->devices[0].n_vrings = FDH_MANIFEST_MAX_VRINGS + 1)		\
	X(rejects_vring_index_beyond_count, -1,				\
	  "devices[0].vrings[1].index", "4, not below n_vrings 4", true, \
	  m->devices[0].vrings[1].index = 4)				\
	X(rejects_duplicate_vring_index, -1, "devices[0].vrings[1].index", \
	  "also vrings[0]", true,					\
	  m->devices[0].vrings[1].index = m->devices[0].vrings[0].index) \
	X(rejects_vring_size_not_power_of_two, -1,			\
	  "devices[0].vrings[2].size", "1000, not a power of two", true, \
	  m->devices[0].vrings[2].size = 1000)				\
	X(rejects_vring_size_zero, -1, "devices[0].vrings[0].size",	\
	  "0, not a power of two", true, m->devices[0].vrings[0].size = 0) \
	X(rejects_vring_size_beyond_32768, -1,				\
	  "devices[0].vrings[3].size", "65536, not a power of two up to", \
	  true, m->devices[0].vrings[3].size = 65536)

#define RULE_TEST(name, entry, field, detail, wire, ...)		\
	MUTATOR(name, __VA_ARGS__)					\
	TEST_F(manifest, name)						\
	{								\
		check_rule(_meta, mutate_##name, entry, field, detail,	\
			   wire);					\
	}
RULES(RULE_TEST)

/* What the rules allow, and the sample itself, validate and encode. */
static void check_accepted(struct th_meta *_meta,
			   void (*mutate)(struct fdh_manifest *m))
{
	struct fdh_manifest *m = sample();

	ASSERT_TRUE(m != NULL, "%s", fdh_last_error()->msg);
	mutate(m);
	EXPECT_EQ(fdh_manifest_validate(m), 0, "%s", fdh_last_error()->msg);
	check_round_trip(_meta, m);
}

#define ACCEPTS(X)							\
	X(sample_is_valid, (void)m)					\
	X(validate_accepts_unknown_tap_vnet_hdr_size,			\
	  E(TAP).u.tap.vnet_hdr_sz = -1)				\
	X(validate_accepts_vhost_user_without_inflight_region,		\
	  memset(&E(VHOST_USER).u.vhost_user, 0,			\
		 sizeof(E(VHOST_USER).u.vhost_user)))			\
	X(validate_accepts_empty_comm_and_memfd_name,			\
	  memset(m->source.comm, 0, sizeof(m->source.comm)),		\
	  memset(E(MEMFD).u.memfd.name, 0, FDH_NAME_MAX))		\
	X(validate_accepts_largest_vring, m->devices[0].vrings[0].size = 32768)

#define ACCEPT_TEST(name, ...)						\
	MUTATOR(name, __VA_ARGS__)					\
	TEST_F(manifest, name)						\
	{								\
		check_accepted(_meta, mutate_##name);			\
	}
ACCEPTS(ACCEPT_TEST)

TEST_F(manifest, validate_refuses_null)
{
	EXPECT_EQ(fdh_manifest_validate(NULL), -EINVAL);
}

/* ------------------------------------------------------------------ */
/* Building                                                           */

TEST_F(manifest, new_manifest_is_empty_at_current_version)
{
	struct fdh_manifest *m = fdh_manifest_new();

	ASSERT_TRUE(m != NULL);
	EXPECT_EQ(m->version, FDH_MANIFEST_VERSION);
	EXPECT_EQ(m->n_entries, 0);
	EXPECT_EQ(m->n_devices, 0);
	fdh_manifest_free(m);
	fdh_manifest_free(NULL);
}

/*
 * Add to the sample a new entry (a copy of its pipe entry under a new
 * index and fd) or a new device (a copy of net0 under a new owner), after
 * mutate: the add function must answer expect, naming field, and a
 * refused element must leave the manifest as it was.
 */
static void check_add(struct th_meta *_meta,
		      void (*mutate)(const struct fdh_manifest *m,
				     struct fdh_manifest_entry *e,
				     struct fdh_manifest_device *d),
		      bool device, int expect, const char *field)
{
	struct fdh_manifest *m = sample();
	struct fdh_manifest_entry e;
	struct fdh_manifest_device d;
	int r;

	ASSERT_TRUE(m != NULL);
	e = m->entries[FDH_KIND_PIPE];
	e.index = 99;
	e.remote_fd = 99;
	d = m->devices[0];
	strcpy(d.owner, "new0");
	mutate(m, &e, &d);
	r = device ? fdh_manifest_add_device(m, &d) :
		     fdh_manifest_add_entry(m, &e);
	EXPECT_EQ(r, expect, "%s", fdh_last_error()->msg);
	if (expect) {
		EXPECT_MSG(field);
		EXPECT_EQ(m->n_entries + m->n_devices, FDH_KIND__MAX + 2,
			  "nothing added");
	}
	EXPECT_EQ(fdh_manifest_validate(m), 0, "%s", fdh_last_error()->msg);
	fdh_manifest_free(m);
}

#define ADDS(X)								\
	X(add_entry_accepts_new_entry, false, 0, "", (void)e)		\
	X(add_device_accepts_new_device, true, 0, "", (void)d)		\
	X(add_entry_refuses_invalid_entry, false, -EINVAL,		\
	  "entries[12].tap.ifname", e->kind = FDH_KIND_TAP)		\
	X(add_entry_refuses_duplicate_remote_fd, false, -EINVAL,	\
	  "entries[12].remote_fd", e->remote_fd = m->entries[1].remote_fd) \
	X(add_entry_refuses_duplicate_owner_and_index, false, -EINVAL,	\
	  "entries[12].index", e->index = FDH_KIND_PIPE)		\
	X(add_device_refuses_duplicate_owner, true, -EINVAL,		\
	  "devices[2].owner", strcpy(d->owner, "blk0"))			\
	X(add_device_refuses_invalid_vring, true, -EINVAL,		\
	  "devices[2].vrings[0].size", d->vrings[0].size = 3)

#define ADD_TEST(name, device, expect, field, ...)			\
	static void add_##name(const struct fdh_manifest *m,		\
			       struct fdh_manifest_entry *e,		\
			       struct fdh_manifest_device *d)		\
	{								\
		__VA_ARGS__;						\
	}								\
	TEST_F(manifest, name)						\
	{								\
		check_add(_meta, add_##name, device, expect, field);	\
	}
ADDS(ADD_TEST)

/* The i-th of many distinct entries, every string at its longest. */
static int add_nth_entry(struct fdh_manifest *m, int i)
{
	struct fdh_manifest_entry e;

	sample_entry(FDH_KIND_MEMFD, &e);
	memset(e.u.memfd.name, 'n', sizeof(e.u.memfd.name) - 1);
	snprintf(e.owner, sizeof(e.owner), "%063d", i);
	e.remote_fd = i;
	return fdh_manifest_add_entry(m, &e);
}

static int add_nth_device(struct fdh_manifest *m, int i)
{
	struct fdh_manifest_device d;

	sample_device(&d, "", FDH_MANIFEST_MAX_VRINGS);
	snprintf(d.owner, sizeof(d.owner), "%063d", i);
	return fdh_manifest_add_device(m, &d);
}

static int fill(struct fdh_manifest *m, int (*add)(struct fdh_manifest *, int),
		int n)
{
	int r = 0;

	for (int i = 0; i < n && r == 0; i++)
		r = add(m, i);
	return r;
}

/* An add function takes max elements, refuses one more with -E2BIG. */
static void check_limit(struct th_meta *_meta,
			int (*add)(struct fdh_manifest *, int), int max)
{
	struct fdh_manifest *m = sample_source_only();

	ASSERT_TRUE(m != NULL);
	ASSERT_EQ(fill(m, add, max), 0, "%s", fdh_last_error()->msg);
	EXPECT_EQ(add(m, max), -E2BIG);
	EXPECT_EQ(m->n_entries + m->n_devices, max);
	EXPECT_EQ(fdh_manifest_validate(m), 0, "%s", fdh_last_error()->msg);
	fdh_manifest_free(m);
}

TEST_F(manifest, add_entry_stops_at_limit)
{
	check_limit(_meta, add_nth_entry, FDH_MANIFEST_MAX_ENTRIES);
}

TEST_F(manifest, add_device_stops_at_limit)
{
	check_limit(_meta, add_nth_device, FDH_MANIFEST_MAX_DEVICES);
}

/* Every count and string at its limit still fits FDH_MANIFEST_MAX_BYTES. */
TEST_F(manifest, largest_manifest_fits_max_bytes)
{
	struct fdh_manifest *m = sample_source_only();
	void *buf;
	size_t len;

	ASSERT_TRUE(m != NULL);
	ASSERT_EQ(fill(m, add_nth_entry, FDH_MANIFEST_MAX_ENTRIES), 0);
	ASSERT_EQ(fill(m, add_nth_device, FDH_MANIFEST_MAX_DEVICES), 0);
	ASSERT_EQ(fdh_manifest_encode(m, &buf, &len), 0, "%s",
		  fdh_last_error()->msg);
	free(buf);
	TH_LOG("largest manifest: %zu bytes", len);
	EXPECT_LE(len, FDH_MANIFEST_MAX_BYTES / 2, "the bound has room");
	check_round_trip(_meta, m);
}

static void tap_info(struct fdh_fd_info *info, bool details_known)
{
	memset(info, 0, sizeof(*info));
	info->fd = 41;
	info->kind = FDH_KIND_TAP;
	strcpy(info->target, "/dev/net/tun");
	info->dev = makedev(0, 5);
	info->ino = 1234;
	info->mode = S_IFCHR | 0666;
	info->flags = O_RDWR | O_NONBLOCK;
	strcpy(info->u.tap.ifname, "tap-net0");
	info->u.tap.iff_flags = 0x5002;
	info->u.tap.vnet_hdr_sz = 12;
	info->u.tap.details_known = details_known;
}

TEST_F(manifest, entry_from_info_copies_tap_fields)
{
	struct fdh_manifest_entry e;
	struct fdh_identity id;
	struct fdh_fd_info info;

	tap_info(&info, true);
	fdh_manifest_entry_from_info(&info, "net0", 3, &e);
	fdh_identity_from_info(&info, &id);
	EXPECT_STREQ(e.owner, "net0");
	EXPECT_EQ(e.index, 3);
	EXPECT_EQ(e.kind, FDH_KIND_TAP);
	EXPECT_EQ(e.remote_fd, 41);
	EXPECT_EQ(e.dev, info.dev);
	EXPECT_EQ(e.ino, 1234);
	EXPECT_EQ(e.mode, S_IFCHR | 0666);
	EXPECT_EQ(e.open_flags, O_RDWR | O_NONBLOCK);
	EXPECT_EQ(e.kind_id, id.kind_id, "what fdh_pull() would check");
	EXPECT_STREQ(e.u.tap.ifname, "tap-net0");
	EXPECT_EQ(e.u.tap.iff_flags, 0x5002);
	EXPECT_EQ(e.u.tap.vnet_hdr_sz, 12);
}

TEST_F(manifest, entry_from_info_marks_unknown_tap_details)
{
	struct fdh_manifest_entry e;
	struct fdh_fd_info info;

	tap_info(&info, false);
	fdh_manifest_entry_from_info(&info, "net0", 0, &e);
	EXPECT_EQ(e.u.tap.vnet_hdr_sz, -1, "unknown, not 12");
	EXPECT_EQ(e.u.tap.iff_flags, 0);
}

TEST_F(manifest, entry_from_info_copies_memfd_and_eventfd_fields)
{
	struct fdh_fd_info info = { .fd = 7, .kind = FDH_KIND_MEMFD };
	struct fdh_manifest_entry e;
	struct fdh_identity id;

	strcpy(info.u.memfd.name, "guest-ram");
	info.u.memfd.size = 1 << 20;
	info.u.memfd.seals = 0x5;
	info.u.memfd.seals_known = true;
	fdh_manifest_entry_from_info(&info, "ram0", 0, &e);
	EXPECT_STREQ(e.u.memfd.name, "guest-ram");
	EXPECT_EQ(e.u.memfd.size, 1 << 20);
	EXPECT_EQ(e.u.memfd.seals, 0x5);

	memset(&info, 0, sizeof(info));
	info.kind = FDH_KIND_EVENTFD;
	info.u.eventfd.id = 99;
	info.u.eventfd.semaphore = true;
	fdh_manifest_entry_from_info(&info, "irq0", 0, &e);
	fdh_identity_from_info(&info, &id);
	EXPECT_EQ(e.u.eventfd.semaphore, true);
	EXPECT_EQ(e.kind_id, id.kind_id, "the eventfd's own identity");
}

TEST_F(manifest, entry_from_info_leaves_overlong_owner_invalid)
{
	struct fdh_manifest *m = sample_source_only();
	char owner[FDH_OWNER_MAX + 8];
	struct fdh_manifest_entry e;
	struct fdh_fd_info info;

	ASSERT_TRUE(m != NULL);
	memset(owner, 'x', sizeof(owner) - 1);
	owner[sizeof(owner) - 1] = '\0';
	tap_info(&info, true);
	fdh_manifest_entry_from_info(&info, owner, 0, &e);
	EXPECT_EQ(fdh_manifest_add_entry(m, &e), -EINVAL,
		  "a cut owner would name another entry");
	EXPECT_MSG("entries[0].owner");
	fdh_manifest_free(m);
}

TEST_F(manifest, entry_identity_is_what_pull_checks)
{
	struct fdh_manifest_entry e;
	struct fdh_identity id;

	for (uint32_t k = 0; k < FDH_KIND__MAX; k++) {
		sample_entry(k, &e);
		fdh_manifest_entry_identity(&e, &id);
		EXPECT_EQ(id.kind, k);
		EXPECT_EQ(id.dev, e.dev);
		EXPECT_EQ(id.ino, e.ino);
		EXPECT_EQ(id.mode, e.mode);
		EXPECT_EQ(id.kind_id, e.kind_id);
		EXPECT_STREQ(id.name, k == FDH_KIND_TAP ? "tap-net0" : "",
			     "only a TAP's name is compared");
	}
}

/* Field 22 of /proc/self/stat, read independently of the library. */
static uint64_t own_start_time(void)
{
	char buf[1024], *p;
	unsigned long long t = 0;
	FILE *f = fopen("/proc/self/stat", "r");

	if (!f)
		return 0;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p)
		sscanf(p, " %llu", &t);
	return t;
}

static void read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");

	buf[0] = '\0';
	if (f) {
		if (fgets(buf, (int)size, f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
}

TEST_F(manifest, set_source_describes_a_live_process)
{
	struct fdh_manifest *m = fdh_manifest_new();
	char boot_id[64], comm[64];

	ASSERT_TRUE(m != NULL);
	ASSERT_EQ(fdh_manifest_set_source(m, getpid()), 0, "%s",
		  fdh_last_error()->msg);
	read_line("/proc/sys/kernel/random/boot_id", boot_id,
		  sizeof(boot_id));
	read_line("/proc/self/comm", comm, sizeof(comm));
	EXPECT_EQ(m->source.pid, getpid());
	EXPECT_EQ(m->source.uid, getuid());
	EXPECT_EQ(m->source.start_time, own_start_time());
	EXPECT_STREQ(m->source.boot_id, boot_id);
	EXPECT_STREQ(m->source.comm, comm);
	EXPECT_EQ(fdh_manifest_validate(m), 0, "%s", fdh_last_error()->msg);
	fdh_manifest_free(m);
}

/* The sample, encoded, in a fresh file of dir with mode; its path. */
static int write_sample_file(const char *dir, const char *name, mode_t mode,
			     char *ret_path, size_t size)
{
	struct fdh_manifest *m = sample();
	void *buf = NULL;
	size_t len = 0;
	int fd, r;

	if (!m)
		return -ENOMEM;
	r = fdh_manifest_encode(m, &buf, &len);
	fdh_manifest_free(m);
	if (r < 0)
		return r;
	snprintf(ret_path, size, "%s/%s", dir, name);
	fd = open(ret_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		r = -errno;
	if (fd >= 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

/* A private directory for files, removed with everything in it. */
FIXTURE(manifest_file) {
	char dir[64];
	char path[128];
};

FIXTURE_SETUP(manifest_file)
{
	strcpy(self->dir, "/tmp/fdh-test-manifest-XXXXXX");
	ASSERT_TRUE(mkdtemp(self->dir) != NULL, "mkdtemp: %s", strerror(errno));
}

FIXTURE_TEARDOWN(manifest_file)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", self->dir);
}

TEST_F(manifest_file, read_file_decodes_an_owned_file)
{
	struct fdh_manifest *m = NULL, *want = sample();

	ASSERT_EQ(write_sample_file(self->dir, "m.fdhm", 0600, self->path,
				    sizeof(self->path)), 0);
	ASSERT_EQ(fdh_manifest_read_file(self->path, &m), 0, "%s",
		  fdh_last_error()->msg);
	EXPECT_EQ(m->n_entries, want->n_entries);
	EXPECT_EQ(m->source.start_time, want->source.start_time);
	fdh_manifest_free(m);
	fdh_manifest_free(want);
}

TEST_F(manifest_file, read_file_refuses_a_symlink)
{
	struct fdh_manifest *m = NULL;
	char link[160];

	ASSERT_EQ(write_sample_file(self->dir, "m.fdhm", 0600, self->path,
				    sizeof(self->path)), 0);
	snprintf(link, sizeof(link), "%s/link", self->dir);
	ASSERT_EQ(symlink(self->path, link), 0);
	EXPECT_EQ(fdh_manifest_read_file(link, &m), -ELOOP);
	EXPECT_MSG("symbolic link");
	EXPECT_TRUE(m == NULL, "ret_manifest untouched");
}

TEST_F(manifest_file, read_file_refuses_a_group_or_world_writable_file)
{
	struct fdh_manifest *m = NULL;

	ASSERT_EQ(write_sample_file(self->dir, "g.fdhm", 0620, self->path,
				    sizeof(self->path)), 0);
	EXPECT_EQ(fdh_manifest_read_file(self->path, &m), -EPERM);
	EXPECT_MSG("chmod go-w");
	ASSERT_EQ(write_sample_file(self->dir, "o.fdhm", 0602, self->path,
				    sizeof(self->path)), 0);
	EXPECT_EQ(fdh_manifest_read_file(self->path, &m), -EPERM);
	EXPECT_TRUE(m == NULL, "ret_manifest untouched");
}

TEST_F(manifest_file, read_file_refuses_a_file_of_another_user)
{
	struct fdh_manifest *m = NULL;

	if (geteuid() != 0)
		SKIP("needs root to give the file to another uid");
	ASSERT_EQ(write_sample_file(self->dir, "m.fdhm", 0644, self->path,
				    sizeof(self->path)), 0);
	ASSERT_EQ(chown(self->path, 65534, 65534), 0);
	EXPECT_EQ(fdh_manifest_read_file(self->path, &m), -EPERM);
	EXPECT_MSG("owned by uid 65534");
}

TEST_F(manifest_file, read_file_refuses_what_is_not_a_regular_file)
{
	struct fdh_manifest *m = NULL;

	snprintf(self->path, sizeof(self->path), "%s/fifo", self->dir);
	ASSERT_EQ(mkfifo(self->path, 0600), 0);
	EXPECT_EQ(fdh_manifest_read_file(self->path, &m), -EINVAL,
		  "a FIFO is refused without waiting for a writer");
	EXPECT_MSG("not a regular file");
	EXPECT_EQ(fdh_manifest_read_file(self->dir, &m), -EINVAL);
	EXPECT_EQ(fdh_manifest_read_file(NULL, &m), -EINVAL);
}

TEST_F(manifest_file, read_file_refuses_a_file_past_the_size_limit)
{
	struct fdh_manifest *m = NULL;
	int fd;

	snprintf(self->path, sizeof(self->path), "%s/big", self->dir);
	fd = open(self->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(ftruncate(fd, FDH_MANIFEST_MAX_BYTES + 1), 0);
	close(fd);
	EXPECT_EQ(fdh_manifest_read_file(self->path, &m), -EFBIG);
}

TEST_F(manifest_file, read_file_names_the_file_when_decoding_fails)
{
	struct fdh_manifest *m = NULL;
	int fd;

	snprintf(self->path, sizeof(self->path), "%s/junk", self->dir);
	fd = open(self->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, "FDHX", 4), 4);
	close(fd);
	EXPECT_EQ(fdh_manifest_read_file(self->path, &m), -EBADMSG);
	EXPECT_MSG("junk");
}

TEST_F(manifest, set_source_refuses_exited_process)
{
	struct fdh_manifest *m = sample_source_only();
	pid_t pid;

	ASSERT_TRUE(m != NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(0);
	ASSERT_EQ(waitpid(pid, NULL, 0), pid);
	EXPECT_EQ(fdh_manifest_set_source(m, pid), -ESRCH);
	EXPECT_EQ(m->source.pid, 4242, "the source is left as it was");
	fdh_manifest_free(m);
}

/* ------------------------------------------------------------------ */
/* Decoding what was not written by encode                            */

static size_t sample_len(void)
{
	size_t len = 0;

	free(encode_sample(&len));
	return len;
}

/*
 * Decode the sample's encoding cut or zero-padded to len bytes, placed
 * offset bytes into an allocation of exactly offset + len bytes, so that
 * ASan sees any read beyond the end.
 */
static int decode_sample_copy(size_t offset, size_t len)
{
	struct fdh_manifest *m = NULL;
	size_t full;
	uint8_t *buf = encode_sample(&full), *copy = calloc(1, offset + len);
	int r = -ENOMEM;

	if (buf && copy) {
		memcpy(copy + offset, buf, len < full ? len : full);
		r = fdh_manifest_decode(copy + offset, len, &m);
	}
	fdh_manifest_free(m);
	free(copy);
	free(buf);
	return r;
}

/* A decode of the sample copied and resized; full is its length. */
#define COPIES(X)							\
	X(decode_accepts_unaligned_buffer, 1, full, 0, "")		\
	X(decode_rejects_trailing_byte, 0, full + 1, -EBADMSG,		\
	  "normal form")						\
	X(decode_rejects_header_without_body, 0, HEADER_LEN, -EBADMSG,	\
	  "normal form")						\
	X(decode_rejects_more_than_max_bytes, 0,			\
	  FDH_MANIFEST_MAX_BYTES + 1, -EBADMSG, "more than")

#define COPY_TEST(name, offset, len, expect, needle)			\
	TEST_F(manifest, name)						\
	{								\
		size_t full = sample_len();				\
									\
		EXPECT_EQ(decode_sample_copy(offset, len), expect, "%s", \
			  fdh_last_error()->msg);			\
		EXPECT_MSG(needle);					\
		(void)full;						\
	}
COPIES(COPY_TEST)

TEST_F(manifest, decode_rejects_every_truncation)
{
	size_t full = sample_len();

	ASSERT_GT(full, HEADER_LEN);
	for (size_t n = 0; n < full; n++)
		EXPECT_EQ(decode_sample_copy(0, n), -EBADMSG,
			  "cut at %zu of %zu", n, full);
}

/* Bytes overwritten in the sample's header. */
static void check_patched(struct th_meta *_meta, size_t offset,
			  const char *bytes, size_t n, const char *msg)
{
	size_t len;
	uint8_t *buf = encode_sample(&len);
	struct fdh_manifest *m = NULL;

	ASSERT_TRUE(buf != NULL);
	memcpy(buf + offset, bytes, n);
	EXPECT_EQ(fdh_manifest_decode(buf, len, &m), -EBADMSG);
	EXPECT_MSG(msg);
	fdh_manifest_free(m);
	free(buf);
}

#define PATCHES(X)							\
	X(decode_rejects_wrong_magic, 0, "X", "magic: 58 44 48 4d")	\
	X(decode_rejects_version_0, 4, "\0", "unknown version 0")	\
	X(decode_rejects_version_2, 4, "\2", "unknown version 2")	\
	X(decode_rejects_version_in_big_endian, 4, "\0\0\0\1",		\
	  "unknown version 16777216")

#define PATCH_TEST(name, offset, bytes, needle)				\
	TEST_F(manifest, name)						\
	{								\
		check_patched(_meta, offset, bytes, sizeof(bytes) - 1,	\
			      needle);					\
	}
PATCHES(PATCH_TEST)

TEST_F(manifest, decode_refuses_null_arguments)
{
	struct fdh_manifest *m = NULL;

	EXPECT_EQ(fdh_manifest_decode(NULL, 8, &m), -EINVAL);
	EXPECT_EQ(fdh_manifest_decode("FDHM", 4, NULL), -EINVAL);
}

/*
 * Whatever decode makes of damaged input, it either refuses it or returns
 * a valid manifest that encodes back to exactly those bytes.
 */
static void check_decoded_is_canonical(struct th_meta *_meta,
				       const uint8_t *buf, size_t len)
{
	struct fdh_manifest *m = NULL;
	void *again;
	size_t len2;
	int r = fdh_manifest_decode(buf, len, &m);

	ASSERT_TRUE(r == 0 || r == -EBADMSG, "decode: %d", r);
	if (r < 0)
		return;
	EXPECT_EQ(fdh_manifest_validate(m), 0, "%s", fdh_last_error()->msg);
	ASSERT_EQ(fdh_manifest_encode(m, &again, &len2), 0);
	fdh_manifest_free(m);
	EXPECT_TRUE(len2 == len && memcmp(again, buf, len) == 0,
		    "a decodable input is the encoding of what it decodes to");
	free(again);
}

TEST_F(manifest, decode_of_any_bit_flip_fails_or_is_canonical)
{
	size_t len;
	uint8_t *buf = encode_sample(&len);

	ASSERT_TRUE(buf != NULL);
	for (size_t bit = 0; bit < len * 8 && !_meta->failed; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		check_decoded_is_canonical(_meta, buf, len);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	free(buf);
}

TEST_F(manifest, decode_of_random_bodies_fails_or_is_canonical)
{
	GRand *rand = g_rand_new_with_seed(20240611);
	uint8_t buf[600];

	for (int i = 0; i < 20000 && !_meta->failed; i++) {
		size_t len = HEADER_LEN +
			     (size_t)g_rand_int_range(rand, 0, 592);

		memcpy(buf, "FDHM\1\0\0\0", HEADER_LEN);
		for (size_t j = HEADER_LEN; j < len; j++)
			buf[j] = (uint8_t)g_rand_int(rand);
		check_decoded_is_canonical(_meta, buf, len);
	}
	g_rand_free(rand);
}

static GVariant *body_variant(const uint8_t *buf, size_t len)
{
	return g_variant_ref_sink(g_variant_new_from_data(
		G_VARIANT_TYPE(MANIFEST_TYPE), buf + HEADER_LEN,
		len - HEADER_LEN, FALSE, NULL, NULL));
}

/* Header + the serialised v, in malloc() memory. */
static uint8_t *wire_of(GVariant *v, size_t *ret_len)
{
	size_t len = HEADER_LEN + g_variant_get_size(v);
	uint8_t *buf = malloc(len);

	if (buf) {
		memcpy(buf, "FDHM\1\0\0\0", HEADER_LEN);
		g_variant_store(v, buf + HEADER_LEN);
		*ret_len = len;
	}
	return buf;
}

/*
 * Find a bit flip that leaves the data out of normal form while its
 * normal form is still a valid manifest (a padding byte, a boolean of 2):
 * decode must refuse it for the form alone.
 */
TEST_F(manifest, decode_rejects_non_normal_form)
{
	size_t len, nlen = 0;
	uint8_t *buf = encode_sample(&len), *norm = NULL;
	struct fdh_manifest *m = NULL;
	bool found = false;

	ASSERT_TRUE(buf != NULL);
	for (size_t bit = HEADER_LEN * 8; bit < len * 8 && !found; bit++) {
		GVariant *v, *n;

		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		v = body_variant(buf, len);
		if (!g_variant_is_normal_form(v)) {
			n = g_variant_get_normal_form(v);
			norm = wire_of(n, &nlen);
			found = norm &&
				fdh_manifest_decode(norm, nlen, &m) == 0;
			fdh_manifest_free(m);
			m = NULL;
			g_variant_unref(n);
			free(norm);
		}
		g_variant_unref(v);
		if (!found)
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	ASSERT_TRUE(found, "no flip gave a non-normal but valid manifest");
	EXPECT_EQ(fdh_manifest_decode(buf, len, &m), -EBADMSG);
	EXPECT_MSG("normal form");
	free(buf);
}

/* "[0x6f, 0x77, 0x6e]", as g_variant_print() writes an "ay". */
static char *ay_text(const char *s, size_t n)
{
	GString *t = g_string_new("[");

	for (size_t i = 0; i < n; i++)
		g_string_append_printf(t, "%s0x%02x", i ? ", " : "",
				       (unsigned char)s[i]);
	g_string_append_c(t, ']');
	return g_string_free(t, FALSE);
}

/* The device blk0 ("777, [])" in the text form) given n rings. */
static char *rings_text(int n)
{
	GString *t = g_string_new("777, [");

	for (int i = 0; i < n; i++)
		g_string_append_printf(t, "%s(%d, 256, 0, 0, 0, 0, 0)",
				       i ? ", " : "", i);
	g_string_append(t, "])");
	return g_string_free(t, FALSE);
}

/*
 * Decode the sample after an edit of its GVariant text form: from must
 * occur exactly once.  Returns decode's result, or 1 if the edit failed.
 */
static int decode_edited(const char *from, const char *to)
{
	size_t len, nlen;
	uint8_t *buf = encode_sample(&len), *edited;
	GVariant *v = buf ? body_variant(buf, len) : NULL, *nv;
	gchar *text = v ? g_variant_print(v, FALSE) : NULL;
	gchar **parts = text ? g_strsplit(text, from, 3) : NULL;
	struct fdh_manifest *m = NULL;
	gchar *joined;
	int r = 1;

	if (parts && g_strv_length(parts) == 2) {
		joined = g_strjoinv(to, parts);
		nv = g_variant_parse(G_VARIANT_TYPE(MANIFEST_TYPE), joined,
				     NULL, NULL, NULL);
		edited = nv ? wire_of(nv, &nlen) : NULL;
		if (edited)
			r = fdh_manifest_decode(edited, nlen, &m);
		fdh_manifest_free(m);
		free(edited);
		if (nv)
			g_variant_unref(nv);
		g_free(joined);
	}
	g_strfreev(parts);
	g_free(text);
	if (v)
		g_variant_unref(v);
	free(buf);
	return r;
}

/* from and to are g_malloc'd and freed here. */
static void check_edit(struct th_meta *_meta, char *from, char *to,
		       int expect, const char *msg)
{
	int r = decode_edited(from, to);

	g_free(from);
	g_free(to);
	EXPECT_EQ(r, expect, "%s", fdh_last_error()->msg);
	EXPECT_MSG(msg);
}

#define EVENTFD_TAIL "nothing, nothing, true, nothing)"

#define EDITS(X)							\
	X(decode_accepts_unedited_text_form, g_strdup("777, [])"),	\
	  g_strdup("777, [])"), 0, "")					\
	X(decode_rejects_string_holding_nul, ay_text("own-memfd", 9),	\
	  ay_text("own\0memfd", 9), -EBADMSG,				\
	  "entries[1].owner: holds a NUL byte")				\
	X(decode_rejects_entry_lacking_its_kind_fields,			\
	  g_strdup(EVENTFD_TAIL),					\
	  g_strdup("nothing, nothing, nothing, nothing)"), -EBADMSG,	\
	  "entries[3].eventfd: missing for kind 3")			\
	X(decode_rejects_entry_with_another_kinds_fields,		\
	  g_strdup(EVENTFD_TAIL),					\
	  g_strdup("nothing, nothing, true, (0, 0, 0, 0, 0))"),		\
	  -EBADMSG, "entries[3].vhost_user: present for kind 3")	\
	X(decode_rejects_more_vrings_than_max, rings_text(0),		\
	  rings_text(FDH_MANIFEST_MAX_VRINGS + 1), -EBADMSG,		\
	  "devices[1].vrings: 65, more than 64")

#define EDIT_TEST(name, from, to, expect, needle)			\
	TEST_F(manifest, name)						\
	{								\
		check_edit(_meta, from, to, expect, needle);		\
	}
EDITS(EDIT_TEST)

/* ------------------------------------------------------------------ */
/* Renderings                                                         */

/*
 * A small JSON checker (RFC 8259 syntax, integers only: the renderer
 * writes no others).  Returns the end of the value, or NULL.
 */
static const char *json_value(const char *p, int depth);

static const char *json_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *json_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (; *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return NULL;	/* raw control character, or the end */
		if (*p != '\\')
			continue;
		p++;
		if (*p == 'u') {
			for (int i = 1; i <= 4; i++)
				if (!g_ascii_isxdigit(p[i]))
					return NULL;
			p += 4;
		} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
			return NULL;
		}
	}
	return p + 1;
}

static const char *json_number(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		return p + 1;
	if (!g_ascii_isdigit(*p))
		return NULL;
	while (g_ascii_isdigit(*p))
		p++;
	return p;
}

/* Members of an object (with keys) or elements of an array. */
static const char *json_members(const char *p, int depth, char close,
				bool keys)
{
	p = json_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (keys) {
			p = json_string(json_ws(p));
			if (!p || *(p = json_ws(p)) != ':')
				return NULL;
			p++;
		}
		p = json_value(p, depth + 1);
		if (!p)
			return NULL;
		p = json_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *json_value(const char *p, int depth)
{
	p = json_ws(p);
	if (depth > 16)
		return NULL;
	if (*p == '{')
		return json_members(p, depth, '}', true);
	if (*p == '[')
		return json_members(p, depth, ']', false);
	if (*p == '"')
		return json_string(p);
	for (const char *const *w = (const char *const[]){ "true", "false",
		"null", NULL }; *w; w++)
		if (strncmp(p, *w, strlen(*w)) == 0)
			return p + strlen(*w);
	return json_number(p);
}

static bool json_valid(const char *text)
{
	const char *end = json_value(text, 0);

	return end && !*json_ws(end) && g_utf8_validate(text, -1, NULL);
}

TEST_F(manifest, json_checker_refuses_broken_json)
{
	EXPECT_TRUE(json_valid("{\"a\": [1, -2, \"x\\u0001\"], \"b\": {}}"));
	EXPECT_TRUE(!json_valid("{\"a\": [1, 2}"));
	EXPECT_TRUE(!json_valid("{\"a\": \"x\"y\"}"));
	EXPECT_TRUE(!json_valid("{\"a\": \"\x01\"}"));
	EXPECT_TRUE(!json_valid("{\"a\": 1,}"));
}

static char *render_sample(enum rendering how)
{
	struct fdh_manifest *m = sample();
	char *out = m ? render_of(m, how) : NULL;

	fdh_manifest_free(m);
	return out;
}

static void expect_contains_all(struct th_meta *_meta, const char *text,
				const char *const *needles)
{
	for (; *needles; needles++)
		EXPECT_TRUE(strstr(text, *needles) != NULL,
			    "'%s' missing from:\n%s", *needles, text);
}

TEST_F(manifest, json_carries_every_field_by_name)
{
	char *json = render_sample(JSON);

	ASSERT_TRUE(json != NULL, "%s", fdh_last_error()->msg);
	EXPECT_TRUE(json_valid(json), "%s", json);
	expect_contains_all(_meta, json, (const char *const[]){
		"{\"version\":1,\"source\":{\"pid\":4242,",
		"\"start_time\":987654321,\"boot_id\":\"" BOOT_ID "\",",
		"\"uid\":1000,\"comm\":\"qemu-kvm\"}",
		"{\"owner\":\"own-tap\",\"index\":2,\"kind\":\"tap\",\"remote_fd\":32,",
		"\"dev\":12,\"ino\":5002,\"mode\":8630,\"open_flags\":524290,\"kind_id\":7002,",
		"\"tap\":{\"ifname\":\"tap-net0\",\"queue\":3,\"iff_flags\":20482,"
		"\"vnet_hdr_sz\":12,\"offloads\":31}}",
		"\"memfd\":{\"name\":\"qemu-ram\",\"size\":1073741824,\"seals\":15}",
		"\"eventfd\":{\"semaphore\":true}",
		"\"vhost_user\":{\"inflight_size\":8192,\"inflight_offset\":4096,"
		"\"inflight_queue_size\":256,\"inflight_num_queues\":2,"
		"\"protocol_features\":16383}",
		"\"kind\":\"vhost-net\",\"remote_fd\":34,\"dev\":14,\"ino\":5004,"
		"\"mode\":8630,\"open_flags\":524290,\"kind_id\":7004},",
		"\"devices\":[{\"owner\":\"net0\",\"acked_features\":5100273664,"
		"\"vrings\":[{\"index\":3,\"size\":256,\"desc\":139637976793088,",
		"\"last_avail_idx\":65530,\"used_idx\":65529}",
		"{\"owner\":\"blk0\",\"acked_features\":777,\"vrings\":[]}]}",
		NULL });
	free(json);
}

TEST_F(manifest, json_pretty_indents_and_stays_valid)
{
	char *json = render_sample(JSON_PRETTY);

	ASSERT_TRUE(json != NULL);
	EXPECT_TRUE(json_valid(json), "%s", json);
	expect_contains_all(_meta, json, (const char *const[]){
		"{\n  \"version\": 1,\n  \"source\": {\n    \"pid\": 4242,",
		"\n      \"vrings\": []\n    }\n  ]\n}\n", NULL });
	free(json);
}

TEST_F(manifest, text_shows_source_entries_and_vrings)
{
	char *text = render_sample(TEXT);

	ASSERT_TRUE(text != NULL, "%s", fdh_last_error()->msg);
	expect_contains_all(_meta, text, (const char *const[]){
		"version: 1\n",
		"source: pid 4242  start_time 987654321  boot_id \"" BOOT_ID
		"\"  uid 1000  comm \"qemu-kvm\"\n",
		"entries: 12\n", "\"own-vhost-user\"",
		"ifname \"tap-net0\" queue 3 iff_flags 0x5002 vnet_hdr_sz 12 offloads 0x1f",
		"name \"qemu-ram\" size 1073741824 seals 0xf",
		"semaphore yes",
		"inflight_size 8192 inflight_offset 4096 inflight_queue_size 256 inflight_num_queues 2 protocol_features 0x3fff",
		"devices: 2\n",
		"  owner \"net0\"  acked_features 0x130000000  vrings 4\n",
		"    #  INDEX  SIZE  DESC", "0x7f0000010000", "65530",
		"  owner \"blk0\"  acked_features 0x309  vrings 0\n", NULL });
	free(text);
}

/* Every entry row has its kind where the header has KIND. */
TEST_F(manifest, text_aligns_entry_columns)
{
	char *text = render_sample(TEXT);
	char *header, *line;
	size_t col;

	ASSERT_TRUE(text != NULL);
	header = strstr(text, "\n  #  ");
	ASSERT_TRUE(header != NULL, "%s", text);
	header++;
	col = (size_t)(strstr(header, "KIND ") - header);
	line = strchr(header, '\n') + 1;
	for (uint32_t k = 0; k < FDH_KIND__MAX; k++) {
		const char *name = fdh_kind_name(k);

		EXPECT_TRUE(strncmp(line + col, name, strlen(name)) == 0,
			    "row %u: %.60s", k, line);
		line = strchr(line, '\n') + 1;
	}
	free(text);
}

/*
 * The sample with comm set to a hostile string, rendered: the output
 * holds expect, no raw escape character, and JSON stays valid JSON.
 */
static void check_comm_rendering(struct th_meta *_meta, const char *comm,
				 enum rendering how, const char *expect)
{
	struct fdh_manifest *m = sample();
	char *out;

	ASSERT_TRUE(m != NULL);
	strcpy(m->source.comm, comm);
	out = render_of(m, how);
	fdh_manifest_free(m);
	ASSERT_TRUE(out != NULL, "%s", fdh_last_error()->msg);
	EXPECT_TRUE(strstr(out, expect) != NULL, "'%s' missing from %s",
		    expect, out);
	EXPECT_TRUE(strchr(out, '\x1b') == NULL,
		    "no raw escape reaches a terminal");
	EXPECT_TRUE(how == TEXT || json_valid(out), "%s", out);
	free(out);
}

#define COMM_RENDERINGS(X)						\
	X(json_escapes_quotes_backslashes_and_controls, JSON,		\
	  "a\"b\\c\x01\n\x1b\x7f",					\
	  "\"comm\":\"a\\\"b\\\\c\\u0001\\n\\u001b\\u007f\"")		\
	X(json_replaces_invalid_utf8, JSON, "\xc3\xa9\xff\xc3",		\
	  "\"comm\":\"\xc3\xa9\\ufffd\\ufffd\"")			\
	X(text_escapes_control_characters, TEXT, "\x1b[31mred\"\\",	\
	  "comm \"\\x1b[31mred\\\"\\\\\"")

#define COMM_TEST(name, how, comm, expect)				\
	TEST_F(manifest, name)						\
	{								\
		check_comm_rendering(_meta, comm, how, expect);		\
	}
COMM_RENDERINGS(COMM_TEST)

TEST_F(manifest, renderings_refuse_invalid_manifest)
{
	struct fdh_manifest *m = sample();
	char *out = NULL;

	ASSERT_TRUE(m != NULL);
	m->entries[0].kind = 99;
	EXPECT_EQ(fdh_manifest_to_json(m, false, &out), -EINVAL);
	EXPECT_EQ(fdh_manifest_to_text(m, &out), -EINVAL);
	EXPECT_TRUE(out == NULL);
	fdh_manifest_free(m);
}

TEST_HARNESS_MAIN
