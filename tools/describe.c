// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * One fd, described for people (a line of details) and for tools (JSON
 * members, schema in Documentation/cli-json.md).  Flag words are decoded
 * here once so that ls and plan say the same thing.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_tun.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "cli.h"
#include "fdhandover.h"

/* Not in glibc 2.36's <fcntl.h>: newer memfd seals. */
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

/* unix_diag reports a unix socket's state in TCP terms. */
#define UNIX_STATE_ESTABLISHED 1
#define UNIX_STATE_CLOSE 7
#define UNIX_STATE_LISTEN 10

struct flag_name {
	uint32_t bit;
	const char *name;
};

static const struct flag_name seal_names[] = {
	{ F_SEAL_SEAL, "seal" },
	{ F_SEAL_SHRINK, "shrink" },
	{ F_SEAL_GROW, "grow" },
	{ F_SEAL_WRITE, "write" },
	{ F_SEAL_FUTURE_WRITE, "future_write" },
	{ F_SEAL_EXEC, "exec" },
	{ 0, NULL }
};

/* TUNGETIFF's answer; IFF_NOFILTER shares IFF_NO_PI's bit and is left
 * out: on a TAP fd the bit reads as no_pi. */
static const struct flag_name iff_names[] = {
	{ IFF_TUN, "tun" },
	{ IFF_TAP, "tap" },
	{ IFF_NAPI, "napi" },
	{ IFF_NAPI_FRAGS, "napi_frags" },
	{ IFF_NO_CARRIER, "no_carrier" },
	{ IFF_MULTI_QUEUE, "multi_queue" },
	{ IFF_ATTACH_QUEUE, "attach_queue" },
	{ IFF_DETACH_QUEUE, "detach_queue" },
	{ IFF_PERSIST, "persist" },
	{ IFF_NO_PI, "no_pi" },
	{ IFF_ONE_QUEUE, "one_queue" },
	{ IFF_VNET_HDR, "vnet_hdr" },
	{ IFF_TUN_EXCL, "tun_excl" },
	{ 0, NULL }
};

/*
 * fdinfo shows the kernel's O_LARGEFILE, which 64-bit kernels set on every
 * open and which glibc defines as 0 there: left out, by its kernel value.
 */
#if defined(__aarch64__) || defined(__arm__)
#define KERNEL_O_LARGEFILE 0400000
#elif defined(__powerpc__)
#define KERNEL_O_LARGEFILE 0200000
#else
#define KERNEL_O_LARGEFILE 0100000
#endif

static const struct flag_name open_names[] = {
	{ O_APPEND, "append" },
	{ O_NONBLOCK, "nonblock" },
	{ O_CLOEXEC, "cloexec" },
	{ O_DIRECT, "direct" },
	{ O_DSYNC, "dsync" },
	{ O_NOATIME, "noatime" },
	{ O_PATH, "path" },
	{ 0, NULL }
};

/* "a,b,c", unknown bits as one hex number; "none" for 0. */
static void flag_words(const struct flag_name *names, uint32_t value,
		       char *buf, size_t size)
{
	size_t n = 0;
	uint32_t rest = value;

	buf[0] = '\0';
	for (const struct flag_name *f = names; f->name; f++) {
		/* O_SYNC includes O_DSYNC's bit, for instance: whole masks. */
		if ((value & f->bit) != f->bit)
			continue;
		n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s",
				      n ? "," : "", f->name);
		rest &= ~f->bit;
	}
	if (rest)
		n += (size_t)snprintf(buf + n, n < size ? size - n : 0,
				      "%s0x%" PRIx32, n ? "," : "", rest);
	if (!n)
		snprintf(buf, size, "none");
}

static void json_flag_words(const char *key, const struct flag_name *names,
			    uint32_t value)
{
	json_begin_array(key);
	for (const struct flag_name *f = names; f->name; f++)
		if ((value & f->bit) == f->bit)
			json_string(NULL, f->name);
	json_end_array();
}

const char *describe_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "reg";
	case S_IFDIR: return "dir";
	case S_IFCHR: return "chr";
	case S_IFBLK: return "blk";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "sock";
	case S_IFLNK: return "lnk";
	}
	return "unknown";
}

static const char *access_mode(uint32_t flags)
{
	switch (flags & O_ACCMODE) {
	case O_RDONLY: return "r";
	case O_WRONLY: return "w";
	case O_RDWR: return "rw";
	}
	return "?";
}

void describe_open_flags(uint32_t flags, char *buf, size_t size)
{
	char words[128];

	flag_words(open_names, flags & ~(uint32_t)(O_ACCMODE | KERNEL_O_LARGEFILE),
		   words, sizeof(words));
	if (strcmp(words, "none") == 0)
		snprintf(buf, size, "%s", access_mode(flags));
	else
		snprintf(buf, size, "%s,%s", access_mode(flags), words);
}

static const char *sock_type_name(uint32_t type)
{
	switch (type) {
	case SOCK_STREAM: return "stream";
	case SOCK_DGRAM: return "dgram";
	case SOCK_SEQPACKET: return "seqpacket";
	case 0: return NULL;
	}
	return "other";
}

static const char *unix_state_name(uint32_t state)
{
	switch (state) {
	case UNIX_STATE_ESTABLISHED: return "connected";
	case UNIX_STATE_LISTEN: return "listening";
	case UNIX_STATE_CLOSE: return "unconnected";
	case 0: return NULL;
	}
	return "other";
}

/* snprintf that appends and never runs past the end. */
static size_t append(char *buf, size_t size, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static size_t append(char *buf, size_t size, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (n >= size)
		return n;
	va_start(ap, fmt);
	r = vsnprintf(buf + n, size - n, fmt, ap);
	va_end(ap);
	return r < 0 ? n : n + (size_t)r;
}

/*
 * Each kind's details in one line.  The kind's own fields, or (pipe,
 * socket, vhost-net, other: no text function) the link, which says it all.
 */
static size_t memfd_text(const struct fdh_fd_info *info,
			 const struct sock_holder *peer, char *buf, size_t size)
{
	char esc[FDH_NAME_MAX * 4 + 1], words[256];
	size_t n;

	(void)peer;
	cli_escape(esc, sizeof(esc), info->u.memfd.name);
	n = append(buf, size, 0, "name \"%s\" size %" PRIu64, esc,
		   info->u.memfd.size);
	if (!info->u.memfd.seals_known)
		return append(buf, size, n, " seals ?");
	flag_words(seal_names, info->u.memfd.seals, words, sizeof(words));
	return append(buf, size, n, " seals %s", words);
}

static size_t tap_text(const struct fdh_fd_info *info,
		       const struct sock_holder *peer, char *buf, size_t size)
{
	char esc[16 * 4 + 1], words[256];
	size_t n;

	(void)peer;
	cli_escape(esc, sizeof(esc), info->u.tap.ifname);
	n = append(buf, size, 0, "ifname %s", esc[0] ? esc : "(detached)");
	if (!info->u.tap.details_known)
		return append(buf, size, n,
			      " flags ? vnet_hdr_sz ? (needs a pulled copy: ptrace permission)");
	flag_words(iff_names, info->u.tap.iff_flags, words, sizeof(words));
	return append(buf, size, n, " flags %s vnet_hdr_sz %" PRId32, words,
		      info->u.tap.vnet_hdr_sz);
}

static size_t eventfd_text(const struct fdh_fd_info *info,
			   const struct sock_holder *peer, char *buf,
			   size_t size)
{
	(void)peer;
	return append(buf, size, 0, "count %" PRIu64 " id %" PRIu64 "%s",
		      info->u.eventfd.count, info->u.eventfd.id,
		      info->u.eventfd.semaphore ? " semaphore" : "");
}

static size_t unix_text(const struct fdh_fd_info *info,
			const struct sock_holder *peer, char *buf, size_t size)
{
	const char *type = sock_type_name(info->u.unix_socket.type);
	const char *state = unix_state_name(info->u.unix_socket.state);
	char esc[sizeof(info->u.unix_socket.path) * 4 + 1];
	size_t n;

	n = append(buf, size, 0, "%s %s", type ? type : "?", state ? state : "?");
	if (info->u.unix_socket.path[0]) {
		cli_escape(esc, sizeof(esc), info->u.unix_socket.path);
		n = append(buf, size, n, " path %s", esc);
	}
	if (!info->u.unix_socket.peer_ino)
		return n;
	n = append(buf, size, n, " peer %" PRIu64, info->u.unix_socket.peer_ino);
	if (!peer || !peer->pid)
		return n;
	cli_escape(esc, sizeof(esc), peer->comm);
	return append(buf, size, n, " pid %d (%s) fd %d", peer->pid, esc,
		      peer->fd);
}

static size_t pidfd_text(const struct fdh_fd_info *info,
			 const struct sock_holder *peer, char *buf, size_t size)
{
	(void)peer;
	return append(buf, size, 0, "pid %d%s", info->u.pidfd.pid,
		      info->u.pidfd.pid == -1 ? " (exited)" :
		      info->u.pidfd.pid == 0 ? " (other pid namespace)" : "");
}

static size_t epoll_text(const struct fdh_fd_info *info,
			 const struct sock_holder *peer, char *buf, size_t size)
{
	size_t n;

	(void)peer;
	n = append(buf, size, 0, "watches");
	if (!info->u.epoll.n_tfds)
		n = append(buf, size, n, " nothing");
	for (uint32_t i = 0; i < info->u.epoll.n_tfds; i++)
		n = append(buf, size, n, "%s%d", i ? "," : " ",
			   info->u.epoll.tfds[i]);
	if (info->u.epoll.n_tfds >= FDH_EPOLL_MAX)
		n = append(buf, size, n, ",...");
	return n;
}

static size_t file_text(const struct fdh_fd_info *info,
			const struct sock_holder *peer, char *buf, size_t size)
{
	char esc[FDH_PATH_MAX * 4 + 1];

	(void)peer;
	cli_escape(esc, sizeof(esc), info->target);
	return append(buf, size, 0, "%s pos %" PRIu64, esc, info->pos);
}

static void memfd_json(const struct fdh_fd_info *info,
		       const struct sock_holder *peer)
{
	(void)peer;
	json_begin_object("memfd");
	json_string("name", info->u.memfd.name);
	json_u64("size", info->u.memfd.size);
	if (info->u.memfd.seals_known) {
		json_u64("seals_mask", info->u.memfd.seals);
		json_flag_words("seals", seal_names, info->u.memfd.seals);
	} else {
		json_null("seals_mask");
		json_null("seals");
	}
	json_end_object();
}

static void tap_json(const struct fdh_fd_info *info,
		     const struct sock_holder *peer)
{
	(void)peer;
	json_begin_object("tap");
	json_string("ifname", info->u.tap.ifname[0] ? info->u.tap.ifname : NULL);
	if (info->u.tap.details_known) {
		json_u64("iff_flags_mask", info->u.tap.iff_flags);
		json_flag_words("iff_flags", iff_names, info->u.tap.iff_flags);
		json_i64("vnet_hdr_sz", info->u.tap.vnet_hdr_sz);
	} else {
		json_null("iff_flags_mask");
		json_null("iff_flags");
		json_null("vnet_hdr_sz");
	}
	/* Linux shows neither a queue's index nor the offloads set on it. */
	json_null("queue");
	json_null("offloads");
	json_end_object();
}

static void unix_json(const struct fdh_fd_info *info,
		      const struct sock_holder *peer)
{
	json_begin_object("unix");
	json_u64("ino", info->u.unix_socket.ino);
	json_string("type", sock_type_name(info->u.unix_socket.type));
	json_string("state", unix_state_name(info->u.unix_socket.state));
	json_string("path", info->u.unix_socket.path[0] ?
		    info->u.unix_socket.path : NULL);
	if (!info->u.unix_socket.peer_ino) {
		json_null("peer");
	} else {
		json_begin_object("peer");
		json_u64("ino", info->u.unix_socket.peer_ino);
		if (peer && peer->pid) {
			json_i64("pid", peer->pid);
			json_string("comm", peer->comm);
			json_i64("fd", peer->fd);
		} else {
			json_null("pid");
			json_null("comm");
			json_null("fd");
		}
		json_end_object();
	}
	json_end_object();
}

static void eventfd_json(const struct fdh_fd_info *info,
			 const struct sock_holder *peer)
{
	(void)peer;
	json_begin_object("eventfd");
	json_u64("count", info->u.eventfd.count);
	json_u64("id", info->u.eventfd.id);
	json_bool("semaphore", info->u.eventfd.semaphore);
	json_end_object();
}

static void pidfd_json(const struct fdh_fd_info *info,
		       const struct sock_holder *peer)
{
	(void)peer;
	json_begin_object("pidfd");
	json_i64("pid", info->u.pidfd.pid);
	json_end_object();
}

static void epoll_json(const struct fdh_fd_info *info,
		       const struct sock_holder *peer)
{
	(void)peer;
	json_begin_object("epoll");
	json_begin_array("tfds");
	for (uint32_t i = 0; i < info->u.epoll.n_tfds; i++)
		json_i64(NULL, info->u.epoll.tfds[i]);
	json_end_array();
	json_bool("truncated", info->u.epoll.n_tfds >= FDH_EPOLL_MAX);
	json_end_object();
}

/*
 * The CLI's side of each kind (lib/kind.c is the library's): how its
 * details read in a line and as a JSON member.  NULL text: the link
 * target; NULL json: no member.  A new kind gets its entry here and its
 * plan in tools/cmd-plan.c.
 */
static const struct {
	size_t (*text)(const struct fdh_fd_info *info,
		       const struct sock_holder *peer, char *buf, size_t size);
	void (*json)(const struct fdh_fd_info *info,
		     const struct sock_holder *peer);
} kinds[FDH_KIND__MAX] = {
	[FDH_KIND_MEMFD] = { memfd_text, memfd_json },
	[FDH_KIND_TAP] = { tap_text, tap_json },
	[FDH_KIND_EVENTFD] = { eventfd_text, eventfd_json },
	[FDH_KIND_VHOST_USER] = { unix_text, unix_json },
	[FDH_KIND_UNIX_SOCKET] = { unix_text, unix_json },
	[FDH_KIND_PIDFD] = { pidfd_text, pidfd_json },
	[FDH_KIND_EPOLL] = { epoll_text, epoll_json },
	[FDH_KIND_FILE] = { file_text, NULL },
};

void describe_text(const struct fdh_fd_info *info,
		   const struct sock_holder *peer, char *buf, size_t size)
{
	char esc[FDH_PATH_MAX * 4 + 1];

	buf[0] = '\0';
	if ((unsigned int)info->kind < FDH_KIND__MAX && kinds[info->kind].text) {
		kinds[info->kind].text(info, peer, buf, size);
		return;
	}
	cli_escape(esc, sizeof(esc), info->target);
	append(buf, size, 0, "%s", esc);
}

void describe_json(const struct fdh_fd_info *info,
		   const struct sock_holder *peer)
{
	if ((unsigned int)info->kind < FDH_KIND__MAX && kinds[info->kind].json)
		kinds[info->kind].json(info, peer);
}
